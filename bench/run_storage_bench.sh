#!/usr/bin/env bash
# run_storage_bench.sh - storage driver cost of hutch, next to podman with the same
# driver, measured in ONE run: for each driver, the wall time of
#
#   ENGINE ... run --rm --network none busybox sh -c \
#     'mkdir /d && cd /d && i=0; while [ $i -lt 20000 ]; do echo $i > f$i; i=$((i+1)); done; cat /d/* > /dev/null'
#
# i.e. start a container, write 20,000 small files into its root filesystem, read them
# all back, exit and remove the container. The same command runs under both engines.
#
#   driver           hutch                              podman (the reference)
#   vfs              --storage-driver vfs               --storage-driver vfs
#   overlay          --storage-driver overlay           --storage-driver overlay (native kernel
#                                                       overlayfs in the user namespace)
#   fuse-overlayfs   --storage-driver fuse-overlayfs    --storage-driver overlay --storage-opt
#                                                       overlay.mount_program=/usr/bin/fuse-overlayfs
#
# Every engine/driver pair gets its own fresh store (--root, --runroot; podman also
# --tmpdir), and the busybox image from scripts/make-busybox-rootfs.sh is imported into
# each. For each pair: median, min and max over N runs (default 5, after one warm-up
# run that also checks the files are there and which filesystem the container's / is),
# and the ratio hutch/podman of the medians.
#
# Usage: bench/run_storage_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_storage_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# Host findings this script acts on (Debian 12, podman 4.3.1, runc 1.1.5, kernel 6.18;
# see also run_start_bench.sh and bench/README.md):
#  * podman picks crun, which refuses the hybrid cgroup layout: podman gets --runtime
#    runc, plus --cgroup-manager cgroupfs --events-backend file (what it picks without
#    systemd anyway, passed explicitly so a systemd host measures the same thing).
#  * rootless podman needs XDG_RUNTIME_DIR and writes under HOME: both are private to
#    the run. CONTAINERS_STORAGE_CONF points at a private storage.conf that only names a
#    driver, so no host or user storage.conf can add options (a mount_program, say) to
#    the rows; the command-line flags above then pick the driver.
#  * /dev/fuse is mode 0600 on this host (udev on a stock distro makes it 0666), so
#    neither engine can run fuse-overlayfs as a user. Those rows are skipped with that
#    reason unless root passes --fix-dev-fuse (chmod 0666 for the run, restored after).
#  * Rootless podman refuses a --runroot longer than 50 characters: the run-time dirs
#    have short names (W/run/TAG/p/run), or move to a short /tmp dir if W is long.
#  * Files in the stores belong to subordinate IDs; the cleanup removes them from inside
#    the engines' user namespaces (podman system reset, hutch unshare rm -rf).
#  * The build tree gets relinked while the bench runs: hutch runs from a copy of the
#    binary, libhutch-core and its plugins taken at the start (--no-snapshot: in place).
set -uo pipefail   # no -e: an engine that fails becomes a row that says so

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

RUNS=5
OUT=""
JSON_OUT=""
RUN_AS=""
HUTCH=""
TIMER_KIND=""          # hyperfine | builtin; default: hyperfine when installed
KEEP=0
FIX_FUSE=0
FILES=20000
DRIVERS_ARG="vfs,overlay,fuse-overlayfs"
BUSYBOX=/bin/busybox
FUSE_OVERLAYFS=/usr/bin/fuse-overlayfs
DO_SYNC=1
SNAPSHOT=1
WORKDIR=""

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   timed runs per engine and driver (default $RUNS), after one
                         warm-up run each
  -o FILE                also write the report (the tables printed on stdout) to FILE
  --json FILE            also write the results, with every sample, as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: $REPO_ROOT/build/cli/hutch
                         if it exists, else hutch on PATH)
  --drivers LIST         comma-separated drivers to measure (default $DRIVERS_ARG)
  --files N              small files to write and read back (default $FILES)
  --timer KIND           hyperfine (default when installed) or builtin (bash timer,
                         hutch and podman interleaved run by run)
  --no-sync              do not run sync(1) before each timed run
  --no-snapshot          run the hutch binary and its plugins in place instead of from
                         a copy taken at the start (a copy survives a rebuild mid-run)
  --fix-dev-fuse         as root: chmod 0666 /dev/fuse for the run (restored after), the
                         mode distros' udev rules give it, so fuse-overlayfs can be used
  --fuse-overlayfs PATH  podman's overlay.mount_program (default $FUSE_OVERLAYFS)
  --busybox PATH         static busybox to build the image from (default $BUSYBOX)
  --workdir DIR          scratch directory (default: a new one under \${TMPDIR:-/tmp});
                         the stores live there, so its filesystem is the one measured
  --keep                 keep the scratch directory, its stores and the logs
  -h, --help             this text
EOF
}

# shellcheck source=lib.sh
. "$(dirname -- "$SCRIPT")/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || die "-n needs a number"; RUNS=$2; shift 2 ;;
    -n*) RUNS=${1#-n}; shift ;;
    -o) [ $# -ge 2 ] || die "-o needs a file"; OUT=$2; shift 2 ;;
    --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
    --json=*) JSON_OUT=${1#*=}; shift ;;
    --user) [ $# -ge 2 ] || die "--user needs a name"; RUN_AS=$2; shift 2 ;;
    --user=*) RUN_AS=${1#*=}; shift ;;
    --hutch) [ $# -ge 2 ] || die "--hutch needs a path"; HUTCH=$2; shift 2 ;;
    --hutch=*) HUTCH=${1#*=}; shift ;;
    --drivers) [ $# -ge 2 ] || die "--drivers needs a list"; DRIVERS_ARG=$2; shift 2 ;;
    --drivers=*) DRIVERS_ARG=${1#*=}; shift ;;
    --files) [ $# -ge 2 ] || die "--files needs a number"; FILES=$2; shift 2 ;;
    --files=*) FILES=${1#*=}; shift ;;
    --timer) [ $# -ge 2 ] || die "--timer needs hyperfine or builtin"; TIMER_KIND=$2; shift 2 ;;
    --timer=*) TIMER_KIND=${1#*=}; shift ;;
    --no-sync) DO_SYNC=0; shift ;;
    --no-snapshot) SNAPSHOT=0; shift ;;
    --fix-dev-fuse) FIX_FUSE=1; shift ;;
    --fuse-overlayfs) [ $# -ge 2 ] || die "--fuse-overlayfs needs a path"; FUSE_OVERLAYFS=$2; shift 2 ;;
    --busybox) [ $# -ge 2 ] || die "--busybox needs a path"; BUSYBOX=$2; shift 2 ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a path"; WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "-n wants a positive integer, not '$RUNS'"
[[ $FILES =~ ^[0-9]+$ ]] && [ "$FILES" -ge 1 ] || die "--files wants a positive integer, not '$FILES'"
case $TIMER_KIND in ""|hyperfine|builtin) ;; *) die "--timer wants hyperfine or builtin, not '$TIMER_KIND'" ;; esac
IFS=', ' read -r -a DRIVERS <<<"$DRIVERS_ARG"
[ "${#DRIVERS[@]}" -gt 0 ] || die "--drivers is empty"
for d in "${DRIVERS[@]}"; do
  case $d in vfs|overlay|fuse-overlayfs) ;; *) die "unknown driver '$d' (vfs, overlay, fuse-overlayfs)" ;; esac
done

# ---------------------------------------------------------------- root: set up, re-run as the user

FUSE_MODE_SAVED=""
restore_fuse() {
  if [ -n "$FUSE_MODE_SAVED" ]; then
    chmod "$FUSE_MODE_SAVED" /dev/fuse && note "restored /dev/fuse to mode $FUSE_MODE_SAVED"
    FUSE_MODE_SAVED=""
  fi
}

if [ "$(id -u)" -eq 0 ]; then
  bench_prepare_user "$RUN_AS"
  uid=$BENCH_UID
  child_args=(-n "$RUNS" --files "$FILES" --drivers "$DRIVERS_ARG" --fuse-overlayfs "$FUSE_OVERLAYFS" --busybox "$BUSYBOX")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; */*) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ -n "$TIMER_KIND" ] && child_args+=(--timer "$TIMER_KIND")
  [ "$DO_SYNC" = 0 ] && child_args+=(--no-sync)
  [ "$SNAPSHOT" = 0 ] && child_args+=(--no-snapshot)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  bench_child_begin storage
  bench_child_script "$SCRIPT" "$RUN_AS"
  child_script=$BENCH_CHILD_SCRIPT
  if [ "$FIX_FUSE" = 1 ]; then
    if [ -c /dev/fuse ]; then
      FUSE_MODE_SAVED=$(stat -c %a /dev/fuse)
      if [ "$FUSE_MODE_SAVED" != 666 ]; then
        trap 'restore_fuse' EXIT
        trap 'restore_fuse; exit 130' INT TERM
        chmod 0666 /dev/fuse && note "chmod 0666 /dev/fuse (was $FUSE_MODE_SAVED) for this run"
        child_env+=(HUTCH_BENCH_FUSE_WAS="$FUSE_MODE_SAVED")
      else
        FUSE_MODE_SAVED=""
      fi
    else
      note "--fix-dev-fuse: there is no /dev/fuse (modprobe fuse?)"
    fi
  fi
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $child_script ${child_args[*]}"
  # HUTCH_BENCH_VIA_ROOT tells the child that root started it; root's XDG_RUNTIME_DIR is never right.
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR HUTCH_BENCH_VIA_ROOT=1 "${child_env[@]}" \
    bash "$child_script" "${child_args[@]}"
  rc=$?
  restore_fuse
  [ -n "$BENCH_CHILD_DIR" ] && rm -rf -- "$BENCH_CHILD_DIR"
  bench_child_end
  exit "$rc"
fi

# ---------------------------------------------------------------- from here on: the unprivileged user
ME=$(id -un)
if [ -n "$RUN_AS" ] && [ "$RUN_AS" != "$ME" ]; then
  die "--user $RUN_AS needs root to switch users; you are $ME (run it as $RUN_AS, or drop --user)"
fi
[ "$FIX_FUSE" = 1 ] && [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] &&
  note "--fix-dev-fuse needs root (sudo $PROG --user $ME --fix-dev-fuse ...); going on without it"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH
export LC_ALL=C


if [ -z "$TIMER_KIND" ]; then
  if have hyperfine; then TIMER_KIND=hyperfine; else TIMER_KIND=builtin; fi
elif [ "$TIMER_KIND" = hyperfine ] && ! have hyperfine; then
  die "--timer hyperfine: hyperfine is not installed (apt-get install -y hyperfine)"
fi
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi
MAKE_ROOTFS=${HUTCH_BENCH_MAKE_ROOTFS:-$REPO_ROOT/scripts/make-busybox-rootfs.sh}
[ -r "$MAKE_ROOTFS" ] || die "cannot read $MAKE_ROOTFS"

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/hutch-storage-bench.XXXXXX") || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS" "$W/home" "$W/xdg"
chmod 0700 "$W/xdg"
# Private HOME and XDG_RUNTIME_DIR, the same for both engines: podman needs a runtime
# dir and writes under HOME; hutch reads HOME/XDG_* for its defaults.
export HOME=$W/home XDG_RUNTIME_DIR=$W/xdg
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME STORAGE_DRIVER STORAGE_OPTS
# podman: no storage.conf of the host or the user may add options to a row.
printf '[storage]\ndriver = "vfs"\n' >"$W/storage.conf"
export CONTAINERS_STORAGE_CONF=$W/storage.conf
# Stores: W/TAG/{h,p}/root. Run-time state: RB/TAG/h, RB/TAG/p/{run,tmp}. Rootless podman
# refuses a --runroot longer than 50 characters, so with a long W the run-time state goes
# to a short directory under /tmp instead (the stores stay in W).
tag() { case $1 in vfs) echo vfs ;; overlay) echo ovl ;; fuse-overlayfs) echo fuse ;; esac; }
RB=$W/run
if [ "${#RB}" -gt 36 ]; then
  RB=$(mktemp -d /tmp/hsb.XXXXXX) || die "mktemp -d failed"
  chmod 0700 "$RB"
fi

# ---------------------------------------------------------------- peers: a registry
# One peer per driver and engine, id "DRIVER/ENGINE" (ENGINE: hutch or podman).
PEERS=()
declare -A P_CMD P_CHECK P_STATUS P_REASON P_SAMPLES P_SETUP P_ROOTFS
add_peer() {  # ID CMD-ARGS... (the engine's command up to and including "run")
  local id=$1; shift
  PEERS+=("$id")
  P_CMD[$id]=$(printf '%q ' "$@" --rm --network none "$IMAGE_REF" sh -c "$WORKLOAD")
  P_CMD[$id]=${P_CMD[$id]% }
  P_CHECK[$id]=$(printf '%q ' "$@" --rm --network none "$IMAGE_REF" sh -c "$WORKLOAD; $CHECK")
  P_STATUS[$id]=pending
  P_REASON[$id]=""
  P_SAMPLES[$id]=""
  P_SETUP[$id]=""
  P_ROOTFS[$id]=""
}
skip_peer() { P_STATUS[$1]=$2; P_REASON[$1]=$3; }   # ID STATUS(skipped|failed) REASON

# The interesting lines of a log: the last ones that are not known-harmless noise.
why() {
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' -e 'Support for .* is experimental' -e '^== ' \
    -e 'unknown argument ignored' "$1" 2>/dev/null |
    tail -n 3 | tr '\n' ' ' | sed 's/[[:space:]]*$//' | cut -c1-400
}

FUSE_OK=0
if [ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ]; then FUSE_OK=1; fi
fuse_reason() {
  if [ ! -e /dev/fuse ]; then
    echo "/dev/fuse does not exist (modprobe fuse)"
  else
    echo "/dev/fuse is mode $(stat -c %a /dev/fuse) owner $(stat -c %U /dev/fuse), not usable by $ME; as root, --fix-dev-fuse makes it 0666 for the run (what distros' udev rules do: chmod 0666 /dev/fuse)"
  fi
}

# ---------------------------------------------------------------- cleanup
HUTCH_ROOTS=() HUTCH_RUNROOTS=()   # hutch stores, removed with hutch unshare rm -rf
HX=()                              # how the bench runs hutch (set below)
PODMAN_STORES=()   # driver names whose podman store exists
declare -A PODMAN_ARGS
podman_stop() {  # PODMAN-ARGS(%q-quoted) TMPDIR LOG: remove the store, stop its pause process
  eval "podman $1 system reset --force" >>"$3" 2>&1
  podman_unpause "$2"
}
podman_unpause() {  # TMPDIR: kill the rootless pause process of that store, if it is ours
  local pf pid
  for pf in "$1/pause.pid" "$W/xdg/libpod/tmp/pause.pid"; do
    if [ -s "$pf" ]; then
      pid=$(cat "$pf")
      [ -n "$pid" ] && [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$(id -u)" ] && kill "$pid" 2>/dev/null
    fi
  done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local d i t
  if [ "$KEEP" = 1 ]; then
    for d in "${PODMAN_STORES[@]}"; do podman_unpause "$RB/$(tag "$d")/p/tmp"; done
    [ "$RB" != "$W/run" ] && note "kept $RB (run-time state)"
    note "kept $W (logs in $LOGS); remove it with: hutch unshare rm -rf $W  (or podman unshare rm -rf $W)"
    exit "$rc"
  fi
  for d in "${PODMAN_STORES[@]}"; do
    # system reset removes --root, --runroot, --tmpdir (files of subordinate IDs too),
    # and stops the rootless pause process that holds podman's user namespace.
    podman_stop "${PODMAN_ARGS[$d]}" "$RB/$(tag "$d")/p/tmp" "$LOGS/cleanup.log"
  done
  if [ "${#HX[@]}" -gt 0 ]; then
    for i in "${!HUTCH_ROOTS[@]}"; do
      [ -e "${HUTCH_ROOTS[$i]}" ] || [ -e "${HUTCH_RUNROOTS[$i]}" ] || continue
      # Layer and container files belong to subordinate IDs: remove them as uid 0 of
      # hutch's user namespace. (hutch's pause process, which holds that namespace,
      # leaves by itself once no hutch command runs.)
      "${HX[@]}" --root "${HUTCH_ROOTS[$i]}" --runroot "${HUTCH_RUNROOTS[$i]}" unshare \
        rm -rf -- "${HUTCH_ROOTS[$i]}" "${HUTCH_RUNROOTS[$i]}" >>"$LOGS/cleanup.log" 2>&1
    done
  fi
  if [ -n "${RB:-}" ] && [ "$RB" != "$W/run" ]; then rm -rf -- "$RB" 2>/dev/null; fi
  chmod -R u+rwX "$W" 2>/dev/null
  rm -rf -- "$W" 2>/dev/null
  if [ -e "$W" ]; then
    # Left-overs owned by subordinate IDs: remove them from inside a user namespace that
    # maps them (hutch's, else podman's, each with a throw-away store), then once more.
    t=$(mktemp -d "${TMPDIR:-/tmp}/hutch-storage-bench-rm.XXXXXX") || t=""
    if [ -n "$t" ]; then
      if [ "${#HX[@]}" -gt 0 ]; then
        "${HX[@]}" --root "$t/h/root" --runroot "$t/h/runroot" unshare rm -rf -- "$W" "$t/h" >/dev/null 2>&1
      fi
      if [ -e "$W" ] && have podman; then
        local pa; pa=$(printf '%q ' --root "$t/p/root" --runroot "$t/p/runroot" --tmpdir "$t/p/tmp")
        eval "podman $pa unshare rm -rf -- $(printf %q "$W")" >/dev/null 2>&1
        podman_stop "$pa" "$t/p/tmp" /dev/null
      fi
      rm -rf -- "$t" 2>/dev/null
    fi
    rm -rf -- "$W" 2>/dev/null
    [ -e "$W" ] && note "could not remove all of $W; remove it with: podman unshare rm -rf $W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the image and the workload
TARBALL=$W/busybox.tar
BUSYBOX="$BUSYBOX" sh "$MAKE_ROOTFS" "$TARBALL" >"$LOGS/make-rootfs.log" 2>&1 ||
  die "could not build the busybox image: $(why "$LOGS/make-rootfs.log")"
IMAGE=busybox
WORKLOAD="mkdir /d && cd /d && i=0; while [ \$i -lt $FILES ]; do echo \$i > f\$i; i=\$((i+1)); done; cat /d/* > /dev/null"
# Appended for the warm-up run only: how many files are there, and what is mounted on /.
CHECK="ls /d | wc -l; awk '\$2 == \"/\" { print \$3; exit }' /proc/mounts"
expected_fs() {  # DRIVER -> the filesystem type the container's / should have
  case $1 in
    overlay) echo overlay ;;
    fuse-overlayfs) echo fuse.fuse-overlayfs ;;
    vfs) echo "not overlay" ;;
  esac
}
fs_matches() {  # DRIVER FSTYPE
  case $1 in
    vfs) case $2 in overlay|fuse*) return 1 ;; *) return 0 ;; esac ;;
    *) [ "$2" = "$(expected_fs "$1")" ] ;;
  esac
}

# ---------------------------------------------------------------- hutch
if [ -z "$HUTCH" ]; then
  # The build tree first: the storage drivers are plugins next to the binary being
  # developed, and an installed copy may predate them.
  if [ -x "$REPO_ROOT/build/cli/hutch" ]; then HUTCH=$REPO_ROOT/build/cli/hutch
  elif have hutch; then HUTCH=$(command -v hutch)
  else HUTCH=$REPO_ROOT/build/cli/hutch
  fi
fi
# A build tree relinks the binary now and then: give a missing one a minute to appear.
for _ in 1 2 3 4 5 6; do
  [ -x "$HUTCH" ] || [ ! -d "$(dirname -- "$HUTCH")" ] && break
  note "$HUTCH is missing (being relinked?); waiting 10 s"; sleep 10
done
HUTCH_VERSION="" H_SEARCH_PATH="" HUTCH_BUILT="" HUTCH_LIBS=()
if [ -x "$HUTCH" ]; then
  HUTCH_VERSION=$(timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
  # "plugin search path: DIR DIR ..." (the first directory holding a plugin wins)
  H_SEARCH_PATH=$(timeout 20 "$HUTCH" --root "$W/probe/root" --runroot "$RB/probe" info 2>/dev/null |
    sed -n 's/^plugin search path: //p')
  HUTCH_ROOTS+=("$W/probe/root") HUTCH_RUNROOTS+=("$RB/probe")
  HX=("$HUTCH")
  HUTCH_BUILT=$(date -u -d "@$(stat -c %Y -- "$HUTCH")" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
  # hutch's own shared libraries (libhutch-core), as "SONAME PATH"
  mapfile -t HUTCH_LIBS < <(ldd "$HUTCH" 2>/dev/null | awk '$1 ~ /^libhutch/ && $3 ~ /^\// { print $1, $3 }')
fi
# The binary, its libraries and its plugins may be rebuilt while the bench runs (in a
# build tree that happens all the time): a rebuild in the middle of a run would mix two
# builds, or find no binary at all while the linker writes it. So the bench runs a
# snapshot: a copy of the binary, libhutch-core and every plugin directory, taken while
# nothing changes and run with LD_LIBRARY_PATH and HUTCH_PLUGIN_PATH pointing at the
# copies. With --no-snapshot it runs the files in place and says if they changed.
build_stamp() {
  local dirs d l
  read -r -a dirs <<<"$H_SEARCH_PATH"
  { stat -c '%n %Y %s' -- "$HUTCH"
    for l in "${HUTCH_LIBS[@]}"; do stat -L -c '%n %Y %s' -- "${l#* }"; done
    for d in "${dirs[@]}"; do [ -d "$d" ] && stat -c '%n %Y %s' -- "$d"/*.so; done
  } 2>/dev/null | cksum
}
take_snapshot() {  # -> 0 when $SNAP holds a consistent copy that runs
  local dirs d i l s1 s2 pp=""
  read -r -a dirs <<<"$H_SEARCH_PATH"
  rm -rf -- "$SNAP"
  mkdir -p "$SNAP/lib" || return 1
  s1=$(build_stamp)
  cp -- "$HUTCH" "$SNAP/hutch" || return 1
  for l in "${HUTCH_LIBS[@]}"; do cp -L -- "${l#* }" "$SNAP/lib/${l%% *}" || return 1; done
  i=0
  for d in "${dirs[@]}"; do
    mkdir -p "$SNAP/plugins$i"
    if [ -d "$d" ]; then
      for l in "$d"/*.so; do [ -e "$l" ] && { cp -L -- "$l" "$SNAP/plugins$i/" || return 1; }; done
    fi
    pp+="${pp:+:}$SNAP/plugins$i"
    i=$((i + 1))
  done
  s2=$(build_stamp)
  [ "$s1" = "$s2" ] || return 1
  HX=(env "LD_LIBRARY_PATH=$SNAP/lib" "HUTCH_PLUGIN_PATH=$pp" "$SNAP/hutch")
  timeout 10 "${HX[@]}" --version >/dev/null 2>&1
}
SNAP_DESC=""
if [ -x "$HUTCH" ] && [ "$SNAPSHOT" = 1 ]; then
  SNAP=$W/snap
  for attempt in 1 2 3 4 5 6; do
    if take_snapshot; then
      SNAP_DESC="run from a snapshot copy taken $(date -u +%H:%M:%SZ) (in $SNAP)"
      break
    fi
    HX=("$HUTCH")   # until a snapshot works, the cleanup uses the original
    [ "$attempt" -lt 6 ] && { note "hutch is changing (a rebuild?); snapshot attempt $attempt failed, retrying in 15 s"; sleep 15; }
  done
  [ -z "$SNAP_DESC" ] && note "could not take a consistent snapshot of $HUTCH; running it in place"
fi
[ -z "$SNAP_DESC" ] && SNAP_DESC="run in place"
STAMP_BEFORE=$(build_stamp)

setup_hutch() {  # DRIVER
  local d=$1 id=$1/hutch t; t=$(tag "$1")
  local r=$W/$t/h/root rr=$RB/$t/h out rc plugin
  IMAGE_REF=$IMAGE
  local -a hx=("${HX[@]}")
  [ "${#hx[@]}" -gt 0 ] || hx=("$HUTCH")
  add_peer "$id" "${hx[@]}" --root "$r" --runroot "$rr" --storage-driver "$d" run
  if [ ! -x "$HUTCH" ]; then
    skip_peer "$id" skipped "hutch not found at $HUTCH"
    return
  fi
  mkdir -p "$W/$t/h" "$RB/$t"
  HUTCH_ROOTS+=("$r") HUTCH_RUNROOTS+=("$rr")
  out=$(timeout 120 "${HX[@]}" --root "$r" --runroot "$rr" --storage-driver "$d" import "$TARBALL" "$IMAGE" 2>"$LOGS/$d-hutch-import.log")
  rc=$?
  if [ "$rc" -ne 0 ]; then
    if grep -q 'no storage plugin named' "$LOGS/$d-hutch-import.log"; then
      skip_peer "$id" skipped "this hutch has no \"$d\" storage driver yet: $(why "$LOGS/$d-hutch-import.log")"
    elif [ "$d" = fuse-overlayfs ] && [ "$FUSE_OK" = 0 ]; then
      skip_peer "$id" skipped "$(fuse_reason); hutch import said (rc $rc): $(why "$LOGS/$d-hutch-import.log")"
    else
      skip_peer "$id" failed "hutch import failed (rc $rc): $(why "$LOGS/$d-hutch-import.log")"
    fi
    return
  fi
  plugin=$(timeout 20 "${HX[@]}" --root "$r" --runroot "$rr" --storage-driver "$d" info 2>/dev/null |
    sed -n 's/^  storage: //p' | head -n 1)
  P_SETUP[$id]="image $(printf '%s\n' "$out" | tail -n 1 | cut -c1-19); storage plugin: ${plugin:-?}"
}

# ---------------------------------------------------------------- podman
PODMAN_VERSION="" RUNC_VERSION="" PODMAN_RUNTIME=runc
have podman && PODMAN_VERSION=$(podman --version 2>/dev/null)
have "$PODMAN_RUNTIME" && RUNC_VERSION=$("$PODMAN_RUNTIME" --version 2>/dev/null | head -n 1)
setup_podman() {  # DRIVER
  local d=$1 id=$1/podman t; t=$(tag "$1")
  local base=$W/$t/p run=$RB/$t/p p args drvinfo
  local -a drv
  case $d in
    fuse-overlayfs) drv=(--storage-driver overlay --storage-opt "overlay.mount_program=$FUSE_OVERLAYFS") ;;
    *) drv=(--storage-driver "$d") ;;
  esac
  p=(podman --root "$base/root" --runroot "$run/run" --tmpdir "$run/tmp" "${drv[@]}"
     --cgroup-manager cgroupfs --events-backend file --runtime "$PODMAN_RUNTIME")
  IMAGE_REF=localhost/$IMAGE:latest
  add_peer "$id" "${p[@]}" run
  args=$(printf '%q ' "${p[@]:1}")
  if ! have podman; then
    skip_peer "$id" skipped "podman not installed (apt-get install -y podman)"; return
  elif ! have "$PODMAN_RUNTIME"; then
    skip_peer "$id" skipped "$PODMAN_RUNTIME not installed (podman needs --runtime runc here)"; return
  elif [ "$d" = fuse-overlayfs ] && [ ! -x "$FUSE_OVERLAYFS" ]; then
    skip_peer "$id" skipped "$FUSE_OVERLAYFS not installed (apt-get install -y fuse-overlayfs)"; return
  fi
  mkdir -p "$base" "$run"
  PODMAN_ARGS[$d]=$args
  PODMAN_STORES+=("$d")
  if ! timeout 120 "${p[@]}" import "$TARBALL" "$IMAGE" >"$LOGS/$d-podman-import.log" 2>&1; then
    skip_peer "$id" failed "podman import failed: $(why "$LOGS/$d-podman-import.log")"
    return
  fi
  drvinfo=$(timeout 60 "${p[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null | tail -n 1)
  P_SETUP[$id]="runtime $PODMAN_RUNTIME; podman info: graph driver ${drvinfo:-?}"
  [ "$d" = fuse-overlayfs ] && P_SETUP[$id]+=", mount_program $FUSE_OVERLAYFS"
}

for d in "${DRIVERS[@]}"; do
  setup_hutch "$d"
  setup_podman "$d"
done

# ---------------------------------------------------------------- warm-up and check: each peer once
for id in "${PEERS[@]}"; do
  [ "${P_STATUS[$id]}" = pending ] || continue
  d=${id%/*}
  log=$LOGS/${id//\//-}.log
  echo "== warm-up: ${P_CHECK[$id]}" >"$log"
  res=$(eval "timeout 600 ${P_CHECK[$id]}" 2>>"$log" </dev/null)
  rc=$?
  printf '%s\n' "$res" >>"$log"
  count=$(printf '%s\n' "$res" | sed -n 1p | tr -d ' ')
  fstype=$(printf '%s\n' "$res" | sed -n 2p | tr -d ' ')
  if [ "$rc" -ne 0 ]; then
    r=$(why "$log")
    [ "$rc" -eq 124 ] && r="timed out after 600 s; $r"
    if [ "$d" = fuse-overlayfs ] && [ "$FUSE_OK" = 0 ]; then
      skip_peer "$id" skipped "$(fuse_reason); the warm-up run said (rc $rc): $r"
    else
      skip_peer "$id" failed "warm-up run exited $rc: $r"
    fi
  elif [ "$count" != "$FILES" ]; then
    skip_peer "$id" failed "the warm-up run left ${count:-no} files in /d, not $FILES: $(why "$log")"
  else
    P_STATUS[$id]=ok
    P_ROOTFS[$id]=${fstype:-?}
    if ! fs_matches "$d" "${fstype:-?}"; then
      P_SETUP[$id]+="; WARNING: / in the container is ${fstype:-?}, expected $(expected_fs "$d")"
    fi
  fi
done

active_ids() { local id; for id in "${PEERS[@]}"; do [ "${P_STATUS[$id]}" = ok ] && printf '%s\n' "$id"; done; }
mapfile -t ACTIVE < <(active_ids)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---------------------------------------------------------------- timed runs
if [ "$TIMER_KIND" = hyperfine ]; then
  TIMER="hyperfine $(hyperfine --version 2>/dev/null | awk '{print $2}'), one peer after the other"
  hf_opts=(--runs "$RUNS" --style none)
  if hyperfine --help 2>/dev/null | grep -qE -- '(^|[[:space:]])-N([,[:space:]]|$)'; then
    hf_opts+=(-N); TIMER="$TIMER, no shell (-N)"
  else
    hf_opts+=(--shell bash); TIMER="$TIMER, through bash"
  fi
  [ "$DO_SYNC" = 1 ] && { hf_opts+=(--prepare sync); TIMER="$TIMER, sync before each run (not timed)"; }
  for id in "${ACTIVE[@]}"; do
    j=$W/hf-${id//\//-}.json
    log=$LOGS/${id//\//-}.log
    echo "== timed: hyperfine ${hf_opts[*]} -- ${P_CMD[$id]}" >>"$log"
    if hyperfine "${hf_opts[@]}" --export-json "$j" -- "${P_CMD[$id]}" >>"$log" 2>&1 </dev/null; then
      # hyperfine's "times" array (seconds) -> microseconds
      P_SAMPLES[$id]=$(tr -d ' \n\t' <"$j" | sed -n 's/.*"times":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' |
        awk 'NF { printf "%d ", $1 * 1e6 + 0.5 }')
    else
      skip_peer "$id" failed "a timed run failed under hyperfine: $(why "$log")"
    fi
  done
else
  if [ -n "${EPOCHREALTIME:-}" ]; then
    TIMER="bash \$EPOCHREALTIME, the peers of a driver interleaved run by run"
    stamp() { _T=${EPOCHREALTIME//[!0-9]/}; _T=$((10#$_T)); }   # microseconds, no fork
  else
    TIMER="date +%s%N, the peers of a driver interleaved run by run"
    stamp() { _T=$(( $(date +%s%N) / 1000 )); }
  fi
  [ "$DO_SYNC" = 1 ] && TIMER="$TIMER, sync before each run (not timed)"
  for d in "${DRIVERS[@]}"; do
    ids=()
    for id in "$d/hutch" "$d/podman"; do [ "${P_STATUS[$id]}" = ok ] && ids+=("$id"); done
    k=${#ids[@]}
    for ((r = 0; r < RUNS; r++)); do
      for ((j = 0; j < k; j++)); do
        id=${ids[(j + r) % k]}   # alternate who goes first in each round
        [ "${P_STATUS[$id]}" = ok ] || continue
        log=$LOGS/${id//\//-}.log
        [ "$DO_SYNC" = 1 ] && sync
        stamp; t0=$_T
        eval "${P_CMD[$id]}" >>"$log" 2>&1 </dev/null
        rc=$?
        stamp; t1=$_T
        if [ "$rc" -ne 0 ]; then
          skip_peer "$id" failed "timed run $((r + 1)) exited $rc: $(why "$log")"
          continue
        fi
        P_SAMPLES[$id]+="$((t1 - t0)) "
      done
    done
  done
fi
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
HUTCH_REBUILT=0
[ "$(build_stamp)" != "$STAMP_BEFORE" ] && HUTCH_REBUILT=1

# ---------------------------------------------------------------- statistics (seconds)
declare -A S_MED S_MEAN S_MIN S_MAX RATIO
for id in "${PEERS[@]}"; do
  [ "${P_STATUS[$id]}" = ok ] || continue
  read -r "S_MED[$id]" "S_MEAN[$id]" "S_MIN[$id]" "S_MAX[$id]" < <(
    printf '%s\n' ${P_SAMPLES[$id]} | sort -n | awk '
      { v[NR] = $1 / 1e6; s += v[NR] }
      END {
        n = NR
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "%.3f %.3f %.3f %.3f\n", med, s / n, v[1], v[n]
      }')
done
ratio() {  # A B -> A/B with 2 decimals, or empty
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
for d in "${DRIVERS[@]}"; do
  RATIO[$d]=""
  if [ "${P_STATUS[$d/hutch]}" = ok ] && [ "${P_STATUS[$d/podman]}" = ok ]; then
    RATIO[$d]=$(ratio "${S_MED[$d/hutch]}" "${S_MED[$d/podman]}")
  fi
done

# ---------------------------------------------------------------- the report
KERNEL=$(uname -r)
CPUS=$(nproc 2>/dev/null || echo '?')
STORE_FS=$(findmnt -n -o FSTYPE -T "$W" 2>/dev/null || stat -f -c %T "$W" 2>/dev/null)
FUSE_DESC="mode $(stat -c %a /dev/fuse 2>/dev/null || echo missing)"
[ -n "${HUTCH_BENCH_FUSE_WAS:-}" ] && FUSE_DESC="$FUSE_DESC for this run (--fix-dev-fuse; was ${HUTCH_BENCH_FUSE_WAS}, restored after)"
[ "$FUSE_OK" = 1 ] && FUSE_DESC="$FUSE_DESC, usable" || FUSE_DESC="$FUSE_DESC, not usable by $ME"
podman_flags() {  # DRIVER -> the storage flags of the podman row
  case $1 in
    fuse-overlayfs) echo "--storage-driver overlay --storage-opt overlay.mount_program=$FUSE_OVERLAYFS" ;;
    *) echo "--storage-driver $1" ;;
  esac
}
row() {  # ID ENGINE
  local id=$1
  if [ "${P_STATUS[$id]}" = ok ]; then
    printf '  %-7s %9s %9s %9s  %-20s %s\n' "$2" "${S_MED[$id]}" "${S_MIN[$id]}" "${S_MAX[$id]}" "${P_ROOTFS[$id]}" ok
  else
    printf '  %-7s %9s %9s %9s  %-20s %s\n' "$2" - - - - "${P_STATUS[$id]}: ${P_REASON[$id]}"
  fi
}
report() {
  echo
  echo "Storage drivers: ENGINE ... run --rm --network none busybox sh -c '<write $FILES files, read them back>'"
  echo "  in the container: sh -c '$WORKLOAD'"
  echo "  runs: $RUNS timed per engine and driver after 1 warm-up (which checks the files); timer: $TIMER"
  echo "  host: kernel $KERNEL, $CPUS CPUs; stores under $W (${STORE_FS:-?}); /dev/fuse $FUSE_DESC"
  [ "$RB" != "$W/run" ] && echo "  run-time state (--runroot, podman --tmpdir) under $RB: the path to W is too long for podman"
  echo "  user $ME; load $LOAD_BEFORE -> $LOAD_AFTER; started $T_START, finished $T_END"
  echo "  hutch: $HUTCH (${HUTCH_VERSION:-not found}${HUTCH_BUILT:+, built $HUTCH_BUILT}), $SNAP_DESC"
  echo "  podman: ${PODMAN_VERSION:-not installed}, --runtime runc (${RUNC_VERSION:-runc missing})"
  if [ "$HUTCH_REBUILT" = 1 ]; then
    case $SNAP_DESC in
      run\ from*) echo "  note: $HUTCH was rebuilt during the run; the rows measured the snapshot" ;;
      *) echo "  WARNING: $HUTCH or one of its plugins changed during the run (a rebuild?); the hutch rows may mix builds: run again" ;;
    esac
  fi
  local d id
  for d in "${DRIVERS[@]}"; do
    echo
    echo "driver $d: hutch --storage-driver $d  vs  podman $(podman_flags "$d")"
    printf '  %-7s %9s %9s %9s  %-20s %s\n' engine "median s" "min s" "max s" "/ in container" status
    row "$d/hutch" hutch
    row "$d/podman" podman
    if [ -n "${RATIO[$d]}" ]; then
      echo "  hutch/podman (median): ${RATIO[$d]}x"
    else
      echo "  hutch/podman (median): n/a (needs both rows)"
    fi
    for id in "$d/hutch" "$d/podman"; do
      [ -n "${P_SETUP[$id]}" ] && echo "  ${id#*/}: ${P_SETUP[$id]}"
    done
  done
  echo
  echo "Summary (median wall time of one run, seconds; hutch/podman < 1.00x means hutch is faster)"
  printf '  %-16s %10s %10s %13s\n' driver hutch podman hutch/podman
  for d in "${DRIVERS[@]}"; do
    local hm=${P_STATUS[$d/hutch]} pm=${P_STATUS[$d/podman]}
    [ "$hm" = ok ] && hm=${S_MED[$d/hutch]}
    [ "$pm" = ok ] && pm=${S_MED[$d/podman]}
    printf '  %-16s %10s %10s %13s\n' "$d" "$hm" "$pm" "$([ -n "${RATIO[$d]}" ] && echo "${RATIO[$d]}x" || echo n/a)"
  done
  [ "$KEEP" = 1 ] && echo "logs: $LOGS"
  return 0
}
REPORT=$(report)
bench_write_report "$REPORT"

# ---------------------------------------------------------------- JSON
if [ -n "$JSON_OUT" ]; then
  {
    printf '{\n'
    printf '  "schema": "hutch-storage-bench/1",\n'
    printf '  "started": %s, "finished": %s,\n' "$(json_str "$T_START")" "$(json_str "$T_END")"
    printf '  "runs": %s, "warmup_runs": 1, "files": %s, "timer": %s,\n' "$RUNS" "$FILES" "$(json_str "$TIMER")"
    printf '  "command_in_container": %s,\n' "$(json_str "$WORKLOAD")"
    printf '  "host": {"kernel": %s, "cpus": %s, "store_fs": %s, "dev_fuse": %s, "user": %s, "loadavg_before": %s, "loadavg_after": %s},\n' \
      "$(json_str "$KERNEL")" "$(json_num "$CPUS")" "$(json_str "$STORE_FS")" "$(json_str "$FUSE_DESC")" \
      "$(json_str "$ME")" "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")"
    printf '  "versions": {"hutch": %s, "podman": %s, "runc": %s},\n' "$(json_str "$HUTCH_VERSION")" \
      "$(json_str "$PODMAN_VERSION")" "$(json_str "$RUNC_VERSION")"
    printf '  "hutch": {"path": %s, "built": %s, "plugin_search_path": %s, "how_run": %s, "changed_during_run": %s},\n' \
      "$(json_str "$HUTCH")" "$(json_str "$HUTCH_BUILT")" "$(json_str "$H_SEARCH_PATH")" "$(json_str "$SNAP_DESC")" \
      "$([ "$HUTCH_REBUILT" = 1 ] && echo true || echo false)"
    printf '  "drivers": [\n'
    n=0
    for d in "${DRIVERS[@]}"; do
      [ "$n" -gt 0 ] && printf ',\n'
      n=$((n + 1))
      printf '    {"driver": %s, "ratio_median_hutch_to_podman": %s, "engines": [\n' "$(json_str "$d")" "$(json_num "${RATIO[$d]}")"
      m=0
      for id in "$d/hutch" "$d/podman"; do
        [ "$m" -gt 0 ] && printf ',\n'
        m=$((m + 1))
        printf '      {"engine": %s, "status": %s, "command": %s,\n' "$(json_str "${id#*/}")" \
          "$(json_str "${P_STATUS[$id]}")" "$(json_str "${P_CMD[$id]}")"
        printf '       "setup": %s, "reason": %s, "rootfs_fstype": %s' "$(json_str "${P_SETUP[$id]}")" \
          "$(json_str "${P_REASON[$id]}")" "$(json_str "${P_ROOTFS[$id]}")"
        if [ "${P_STATUS[$id]}" = ok ]; then
          printf ',\n       "median_s": %s, "mean_s": %s, "min_s": %s, "max_s": %s,\n' \
            "${S_MED[$id]}" "${S_MEAN[$id]}" "${S_MIN[$id]}" "${S_MAX[$id]}"
          printf '       "samples_us": [%s]' "$(printf '%s\n' ${P_SAMPLES[$id]} | paste -sd, -)"
        fi
        printf '}'
      done
      printf '\n    ]}'
    done
    printf '\n  ]\n}\n'
  } >"$JSON_OUT" || note "could not write $JSON_OUT"
  [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $JSON_OUT"
fi
[ "$(active_ids | wc -l)" -gt 0 ] || exit 1   # not a single peer ran
exit 0
