#!/usr/bin/env bash
# run_runtime_bench.sh - container start time of `hutch run --rm IMAGE /bin/true` with each
# runtime plugin, against podman and against the raw OCI runtimes running the same bundle,
# measured in ONE run as an unprivileged user on one busybox-static image:
#
#   hutch native / crun / runc   hutch --runtime R run --rm --network host IMAGE /bin/true
#                                twice each: "new userns" (nothing else of hutch's runs, so
#                                the run makes hutch's user namespace, as a lone command
#                                does) and "userns joined" (another hutch process holds the
#                                namespace, so the run only setns()es into it)
#   podman                       podman run --rm --network host IMAGE /bin/true
#                                (--runtime runc, overlay, cgroupfs, file events)
#   raw crun / raw runc          crun run / runc run of a bundle made from the config.json
#                                hutch generates, on a directory copy of the image, started
#                                from a shell that lives in hutch's user namespace (uid 0
#                                there, the namespace hutch's containers use): the loop is
#                                inside that shell, so no unshare is counted per run. crun
#                                runs in a private mount namespace with the hybrid cgroup2
#                                mount hidden, as hutch's OCI runtime plugin runs it
#   raw ..., per-run unshare     the same, each run started from outside through
#                                `hutch unshare` (and `unshare -m` for crun): the other way
#                                of counting, shown for reference, not used as the floor
#   hutch native, store on tmpfs the native row with --root and --runroot in /dev/shm:
#                                what the store's filesystem (its fsyncs) costs
#
# For each: median and p90 over N runs (default 20, or $BENCH_RUNS), all runners
# interleaved round-robin. Ratios: hutch native / the floor (the lower raw median),
# podman / hutch native, hutch crun / raw crun, hutch runc / raw runc, and the targets
# (native within 1.5x of the floor, at least 4x faster than podman), met or not.
# Then concurrency: 50 (or $BENCH_CONCURRENCY) `run --rm` started at once, for hutch
# (each runtime that works, and the tmpfs store) and podman: wall time, whether all exited 0, and that no
# container is left (`ps -a` empty).
#
# Usage: bench/run_runtime_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_runtime_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# Host findings this script acts on (Debian 12, podman 4.3.1, runc 1.1.5, crun 1.8.1,
# kernel 6.18, hybrid cgroup v1 + a cgroup2 mount at /sys/fs/cgroup/unified holding
# hugetlb, no systemd; see also run_start_bench.sh and bench/README.md):
#  * crun refuses the hybrid layout ("cgroups in hybrid mode not supported, drop all
#    controllers from cgroupv2"), with --cgroup-manager=disabled too. Unmounting the cgroup2
#    mount does not work rootless: inside hutch's user namespace (or any user namespace)
#    umount2("/sys/fs/cgroup/unified", MNT_DETACH) fails with EINVAL, because a mount
#    inherited from the more privileged mount namespace is locked. Mounting a small tmpfs
#    over it in a private mount namespace (unshare -m --propagation slave) does work, and
#    crun then sees plain cgroup v1: that is what the raw crun rows do.
#  * runc refuses to mount sysfs without a network namespace of its own ("error mounting
#    sysfs ... operation not permitted"): hutch's default network is the host's, so the
#    bundle's sysfs mount, if the spec has one, is replaced by a read-only rbind of /sys
#    (what the native runtime does, and what hutch's spec generator now writes itself). With --network none the spec
#    has a network namespace and sysfs mounts: then the spec is left as it is.
#  * podman: --runtime runc (crun refuses the host), --cgroup-manager cgroupfs and
#    --events-backend file (what it picks without systemd; passed so a systemd host
#    measures the same), --storage-driver overlay with a private storage.conf, a private
#    HOME and XDG_RUNTIME_DIR, and a --runroot of at most 50 characters (podman refuses a
#    longer one).
#  * Joining hutch's namespace costs two syscalls; making it (fork, newuidmap, newgidmap,
#    re-exec of the pause process) about 4-5 ms here. A lone `hutch run` makes it; a run
#    while another hutch command runs joins it; podman's pause process stays, so podman
#    always joins. Hence the two hutch rows per runtime.
set -uo pipefail   # no -e: a runner that fails becomes a row that says so

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

RUNS=${BENCH_RUNS:-20}
CONC=${BENCH_CONCURRENCY:-50}
CONC_ROUNDS=${BENCH_CONC_ROUNDS:-3}
CONC_TIMEOUT=300
NETWORK=host
RUN_FLAGS=${BENCH_RUN_FLAGS:-}
RUNTIMES_ARG="native,crun,runc"
OUT=""
JSON_OUT=""
RUN_AS=""
HUTCH=""
KEEP=0
STRICT=0
TMPFS_ROW=1
BUSYBOX=/bin/busybox
WORKDIR=""

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   timed runs per runner (default $RUNS; env BENCH_RUNS), after one
                         warm-up run each; the runners take turns round-robin
  -c N                   containers started at once in the concurrency test (default
                         $CONC; env BENCH_CONCURRENCY); 0 skips the test
  --conc-rounds N        how many times the concurrency test is repeated per runner
                         (default $CONC_ROUNDS; env BENCH_CONC_ROUNDS); the median is reported
  --network MODE         host (default: hutch's default) or none, for hutch, podman and the
                         bundle the raw runtimes run
  --runtimes LIST        hutch runtime plugins to time (default $RUNTIMES_ARG)
  -o FILE                also write the report (what is printed on stdout) to FILE
  --json FILE            also write every figure and sample as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: hutch on PATH, else
                         $REPO_ROOT/build/cli/hutch); a build tree's binary loads
                         that build tree's plugins
  --no-tmpfs             leave out the row with hutch's store on tmpfs (/dev/shm)
  --strict               exit 1 when any runner failed (default: only when hutch native,
                         podman or both raw runtimes could not run)
  --busybox PATH         static busybox to build the image from (default $BUSYBOX)
  --workdir DIR          scratch directory (default: a new one under /tmp)
  --keep                 keep the scratch directory and the logs
  -h, --help             this text
EOF
}

# shellcheck source=lib.sh
. "$(dirname -- "$SCRIPT")/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || die "-n needs a number"; RUNS=$2; shift 2 ;;
    -n*) RUNS=${1#-n}; shift ;;
    -c) [ $# -ge 2 ] || die "-c needs a number"; CONC=$2; shift 2 ;;
    -c*) CONC=${1#-c}; shift ;;
    --conc-rounds) [ $# -ge 2 ] || die "$1 needs a number"; CONC_ROUNDS=$2; shift 2 ;;
    --conc-rounds=*) CONC_ROUNDS=${1#*=}; shift ;;
    --network) [ $# -ge 2 ] || die "--network needs host or none"; NETWORK=$2; shift 2 ;;
    --network=*) NETWORK=${1#*=}; shift ;;
    --run-flags) [ $# -ge 2 ] || die "--run-flags needs flags"; RUN_FLAGS=$2; shift 2 ;;
    --run-flags=*) RUN_FLAGS=${1#*=}; shift ;;
    --runtimes) [ $# -ge 2 ] || die "--runtimes needs a list"; RUNTIMES_ARG=$2; shift 2 ;;
    --runtimes=*) RUNTIMES_ARG=${1#*=}; shift ;;
    -o) [ $# -ge 2 ] || die "-o needs a file"; OUT=$2; shift 2 ;;
    --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
    --json=*) JSON_OUT=${1#*=}; shift ;;
    --user) [ $# -ge 2 ] || die "--user needs a name"; RUN_AS=$2; shift 2 ;;
    --user=*) RUN_AS=${1#*=}; shift ;;
    --hutch) [ $# -ge 2 ] || die "--hutch needs a path"; HUTCH=$2; shift 2 ;;
    --hutch=*) HUTCH=${1#*=}; shift ;;
    --strict) STRICT=1; shift ;;
    --no-tmpfs) TMPFS_ROW=0; shift ;;
    --busybox) [ $# -ge 2 ] || die "--busybox needs a path"; BUSYBOX=$2; shift 2 ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a path"; WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "-n wants a positive integer, not '$RUNS'"
[[ $CONC =~ ^[0-9]+$ ]] || die "-c wants a number, not '$CONC'"
[[ $CONC_ROUNDS =~ ^[0-9]+$ ]] && [ "$CONC_ROUNDS" -ge 1 ] || die "--conc-rounds wants a positive integer, not '$CONC_ROUNDS'"
case $NETWORK in host|none) ;; *) die "--network wants host or none, not '$NETWORK'" ;; esac
IFS=', ' read -r -a RUNTIMES <<<"$RUNTIMES_ARG"
[ "${#RUNTIMES[@]}" -gt 0 ] || die "--runtimes is empty"
for rt in "${RUNTIMES[@]}"; do
  [[ $rt =~ ^[a-z0-9_-]+$ ]] || die "--runtimes: '$rt' is not a plugin name"
done

# ---------------------------------------------------------------- root: set up, re-run as the user

if [ "$(id -u)" -eq 0 ]; then
  bench_prepare_user "$RUN_AS"
  uid=$BENCH_UID
  child_args=(-n "$RUNS" -c "$CONC" --conc-rounds "$CONC_ROUNDS" --network "$NETWORK"
              --runtimes "$RUNTIMES_ARG" --busybox "$BUSYBOX" --run-flags "$RUN_FLAGS")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; */*) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ "$STRICT" = 1 ] && child_args+=(--strict)
  [ "$TMPFS_ROW" = 0 ] && child_args+=(--no-tmpfs)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  bench_child_begin runtime
  bench_child_script "$SCRIPT" "$RUN_AS"
  child_script=$BENCH_CHILD_SCRIPT
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $child_script ${child_args[*]}"
  # HUTCH_BENCH_VIA_ROOT tells the child that root started it; root's XDG_RUNTIME_DIR is never right.
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR -u BENCH_RUNS -u BENCH_CONCURRENCY -u BENCH_CONC_ROUNDS \
    HUTCH_BENCH_VIA_ROOT=1 "${child_env[@]}" bash "$child_script" "${child_args[@]}"
  rc=$?
  [ -n "$BENCH_CHILD_DIR" ] && rm -rf -- "$BENCH_CHILD_DIR"
  bench_child_end
  exit "$rc"
fi

# ---------------------------------------------------------------- from here on: the unprivileged user
ME=$(id -un)
if [ -n "$RUN_AS" ] && [ "$RUN_AS" != "$ME" ]; then
  die "--user $RUN_AS needs root to switch users; you are $ME (run it as $RUN_AS, or drop --user)"
fi
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH
export LC_ALL=C

[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi
MAKE_ROOTFS=${HUTCH_BENCH_MAKE_ROOTFS:-$REPO_ROOT/scripts/make-busybox-rootfs.sh}
[ -r "$MAKE_ROOTFS" ] || die "cannot read $MAKE_ROOTFS"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (\$EPOCHREALTIME, the fork-free timer)"

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d /tmp/hutch-runtime-bench.XXXXXX) || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS" "$W/home" "$W/xdg"
chmod 0700 "$W/xdg"
# Private HOME and XDG_RUNTIME_DIR for every runner: podman needs a runtime dir and
# writes under HOME; hutch reads HOME/XDG_* for its defaults and config.
export HOME=$W/home XDG_RUNTIME_DIR=$W/xdg
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME STORAGE_DRIVER STORAGE_OPTS HUTCH_CONFIG
printf '[storage]\ndriver = "vfs"\n' >"$W/storage.conf"   # flags pick the driver; no host conf adds options
export CONTAINERS_STORAGE_CONF=$W/storage.conf
# Run-time state (hutch --runroot, podman --runroot/--tmpdir): podman refuses a --runroot
# longer than 50 characters, so with a long W it goes to a short directory under /tmp.
RB=$W/run
if [ "${#RB}" -gt 40 ]; then
  RB=$(mktemp -d /tmp/hrb.XXXXXX) || die "mktemp -d failed"
fi
mkdir -p "$RB"
chmod 0700 "$RB"

stamp() { _T=${EPOCHREALTIME//[!0-9]/}; _T=$((10#$_T)); }   # microseconds, no fork
# CPU time (user + system) of the waited-for children so far, from bash's `times`
# (getrusage RUSAGE_CHILDREN, millisecond resolution), in microseconds, no fork: _C.
CPU_F=$W/times.txt
cpu_now() {
  local _a _b u s
  times >"$CPU_F"
  { read -r _a _b; read -r u s; } <"$CPU_F"
  _tus "$u"; _C=$_V
  _tus "$s"; _C=$((_C + _V))
}
_tus() {  # XmY.ZZZs -> _V microseconds
  [[ $1 =~ ^([0-9]+)m([0-9]+)[.,]([0-9]+)s$ ]] || { _V=0; return; }
  local f=${BASH_REMATCH[3]}000000
  _V=$((10#${BASH_REMATCH[1]} * 60000000 + 10#${BASH_REMATCH[2]} * 1000000 + 10#${f:0:6}))
}

# The first line of a log that is not known-harmless noise (podman's warnings, runc's
# oom-count warning).
NOISE=(-e 'is not a shared mount' -e '^[[:space:]]*$' -e 'Support for .* is experimental' -e '^== '
       -e 'unable to get oom kill count')
first_err() { grep -v "${NOISE[@]}" "$1" 2>/dev/null | head -n 1 | cut -c1-300; }
last_err() { grep -v "${NOISE[@]}" "$1" 2>/dev/null | tail -n 2 | tr '\n' ' ' | sed 's/[[:space:]]*$//' | cut -c1-300; }

# ---------------------------------------------------------------- runners: a registry
# KIND: cold (timed here, hutch's namespace is made by the run), held (timed here while a
# server holds the namespace), inner:SERVER (timed inside that server, held phase), podman.
RUNNERS=()
declare -A R_LABEL R_KIND R_CMD R_STATUS R_REASON R_SAMPLES R_CPU R_SETUP R_USERNS
add_runner() {  # ID LABEL KIND CMD-ARGS...
  local id=$1; RUNNERS+=("$id")
  R_LABEL[$id]=$2; R_KIND[$id]=$3; shift 3
  R_CMD[$id]=$(printf '%q ' "$@"); R_CMD[$id]=${R_CMD[$id]% }
  R_STATUS[$id]=pending; R_REASON[$id]=""; R_SAMPLES[$id]=""; R_CPU[$id]=""; R_SETUP[$id]=""; R_USERNS[$id]=""
}
fail_runner() { R_STATUS[$1]=$2; R_REASON[$1]=$3; }   # ID STATUS(FAILED|skipped) REASON
is_ok() { [ -n "$1" ] && [ "${R_STATUS[$1]:-}" = ok ]; }

# ---------------------------------------------------------------- cleanup
H=()                 # hutch with the bench's store
TS="" HT=()          # the tmpfs store and hutch with it
PODMAN=()            # podman with the bench's store
SERVER_PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p t
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "${#PODMAN[@]}" -gt 0 ]; then
    # system reset removes --root, --runroot, --tmpdir (files of subordinate IDs too);
    # then stop the rootless pause process that holds podman's user namespace.
    "${PODMAN[@]}" system reset --force >>"$LOGS/cleanup.log" 2>&1
    for p in "$RB/p/tmp/pause.pid" "$W/xdg/libpod/tmp/pause.pid"; do
      if [ -s "$p" ]; then
        t=$(cat "$p")
        [ -n "$t" ] && [ "$(stat -c %u "/proc/$t" 2>/dev/null)" = "$(id -u)" ] && kill "$t" 2>/dev/null
      fi
    done
  fi
  if [ "$KEEP" = 1 ]; then
    [ "$RB" != "$W/run" ] && note "kept $RB (run-time state)"
    [ -n "$TS" ] && note "kept $TS (the tmpfs store)"
    note "kept $W (logs in $LOGS); remove it with: hutch unshare rm -rf $W"
    exit "$rc"
  fi
  if [ "${#H[@]}" -gt 0 ]; then
    # Layer, container and rootfs files belong to subordinate IDs: remove them as uid 0
    # of hutch's user namespace. (hutch's pause process leaves by itself once no hutch
    # command runs.)
    "${H[@]}" unshare rm -rf -- "$W/h" "$W/bundle" "$RB/h" >>"$LOGS/cleanup.log" 2>&1
  fi
  if [ -n "$TS" ]; then
    "${HT[@]}" unshare rm -rf -- "$TS/root" "$TS/run" >>"$LOGS/cleanup.log" 2>&1
    rm -rf -- "$TS" 2>/dev/null
    [ -e "$TS" ] && note "could not remove all of $TS; remove it with: hutch unshare rm -rf $TS"
  fi
  [ "$RB" != "$W/run" ] && rm -rf -- "$RB" 2>/dev/null
  chmod -R u+rwX "$W" 2>/dev/null
  rm -rf -- "$W" 2>/dev/null
  if [ -e "$W" ]; then
    # Left-overs owned by subordinate IDs: remove them from a throw-away hutch namespace.
    t=$(mktemp -d /tmp/hutch-runtime-bench-rm.XXXXXX) || t=""
    if [ -n "$t" ] && [ -n "$HUTCH" ] && [ -x "$HUTCH" ]; then
      "$HUTCH" --root "$t/root" --runroot "$t/run" unshare rm -rf -- "$W" "$t/root" >/dev/null 2>&1
    fi
    [ -n "$t" ] && rm -rf -- "$t" 2>/dev/null
    rm -rf -- "$W" 2>/dev/null
    [ -e "$W" ] && note "could not remove all of $W; remove it with: hutch unshare rm -rf $W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the image
TARBALL=$W/busybox.tar
BUSYBOX="$BUSYBOX" sh "$MAKE_ROOTFS" "$TARBALL" >"$LOGS/make-rootfs.log" 2>&1 ||
  die "could not build the busybox image: $(last_err "$LOGS/make-rootfs.log")"
IMAGE=hutch-bench

# ---------------------------------------------------------------- hutch
if [ -z "$HUTCH" ]; then
  if have hutch; then HUTCH=$(command -v hutch); else HUTCH=$REPO_ROOT/build/cli/hutch; fi
fi
HUTCH_VERSION="" HUTCH_STORAGE="" HUTCH_IMAGE_ID="" HUTCH_PLUGINS=""
HUTCH_OK=0
is_runtime() { local x; for x in "${RUNTIMES[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
H=("$HUTCH" --root "$W/h/root" --runroot "$RB/h")
USERNS_PID=$RB/h/userns.pid
for rt in "${RUNTIMES[@]}"; do
  add_runner "h_$rt" "hutch $rt, new userns" cold "${H[@]}" --runtime "$rt" run --rm ${RUN_FLAGS} --network "$NETWORK" "$IMAGE" /bin/true
  R_USERNS[h_$rt]=$USERNS_PID
done
for rt in "${RUNTIMES[@]}"; do
  add_runner "hj_$rt" "hutch $rt, userns joined" held "${H[@]}" --runtime "$rt" run --rm ${RUN_FLAGS} --network "$NETWORK" "$IMAGE" /bin/true
done
if [ ! -x "$HUTCH" ]; then
  H=()
  for rt in "${RUNTIMES[@]}"; do fail_runner "h_$rt" FAILED "hutch not found at $HUTCH"; fail_runner "hj_$rt" FAILED "hutch not found at $HUTCH"; done
else
  mkdir -p "$W/h"
  HUTCH_VERSION=$(timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
  if HUTCH_IMAGE_ID=$(timeout 120 "${H[@]}" import "$TARBALL" "$IMAGE" 2>"$LOGS/hutch-import.log"); then
    HUTCH_OK=1
    HUTCH_IMAGE_ID=$(printf '%s\n' "$HUTCH_IMAGE_ID" | tail -n 1)
    timeout 30 "${H[@]}" info >"$LOGS/hutch-info.txt" 2>&1
    HUTCH_STORAGE=$(sed -n 's/^  storage: //p' "$LOGS/hutch-info.txt" | head -n 1)
    HUTCH_PLUGINS=$(sed -n 's/^plugins (available): //p' "$LOGS/hutch-info.txt" | head -n 1)
    case $HUTCH_STORAGE in
      overlay\ *) ;;
      *) note "hutch's default storage here is '${HUTCH_STORAGE:-?}', not overlay (see $LOGS/hutch-info.txt)" ;;
    esac
    for rt in "${RUNTIMES[@]}"; do
      R_SETUP[h_$rt]="storage ${HUTCH_STORAGE%% (*}"; R_SETUP[hj_$rt]=${R_SETUP[h_$rt]}
    done
  else
    r="hutch import failed: $(first_err "$LOGS/hutch-import.log")"
    for rt in "${RUNTIMES[@]}"; do fail_runner "h_$rt" FAILED "$r"; fail_runner "hj_$rt" FAILED "$r"; done
  fi
fi

# ---------------------------------------------------------------- hutch with its store on tmpfs
# The same run with --root and --runroot on tmpfs, where fsync costs nothing: a `run --rm`
# writes and fsyncs about a dozen small files (records, bundle files, runtime state), and
# on a disk that is busy each fsync waits for a journal commit.
if [ "$TMPFS_ROW" = 1 ] && [ "$HUTCH_OK" = 1 ] && is_runtime native; then
  add_runner h_native_tmpfs "hutch native, store on tmpfs" cold true
  if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" != tmpfs ] || [ ! -w /dev/shm ]; then
    fail_runner h_native_tmpfs skipped "/dev/shm is not a writable tmpfs"
  elif ! TS=$(mktemp -d /dev/shm/hutch-runtime-bench.XXXXXX); then
    TS=""; fail_runner h_native_tmpfs skipped "mktemp -d /dev/shm/... failed"
  else
    chmod 0700 "$TS"
    HT=("$HUTCH" --root "$TS/root" --runroot "$TS/run")
    R_CMD[h_native_tmpfs]=$(printf '%q ' "${HT[@]}" --runtime native run --rm ${RUN_FLAGS} --network "$NETWORK" "$IMAGE" /bin/true)
    R_USERNS[h_native_tmpfs]=$TS/run/userns.pid
    if timeout 120 "${HT[@]}" import "$TARBALL" "$IMAGE" >"$LOGS/hutch-tmpfs-import.log" 2>&1; then
      R_SETUP[h_native_tmpfs]="storage $(timeout 30 "${HT[@]}" info 2>/dev/null | sed -n 's/^  storage: \([^ ]*\).*/\1/p' | head -n 1) on tmpfs ($TS)"
    else
      fail_runner h_native_tmpfs FAILED "hutch import into $TS failed: $(first_err "$LOGS/hutch-tmpfs-import.log")"
    fi
  fi
fi

# ---------------------------------------------------------------- podman
PODMAN_VERSION="" PODMAN_RUNTIME=runc PODMAN_DRIVER=""
P=(podman --root "$W/p/root" --runroot "$RB/p/run" --tmpdir "$RB/p/tmp" --storage-driver overlay
   --cgroup-manager cgroupfs --events-backend file --runtime "$PODMAN_RUNTIME")
add_runner podman "podman (runc, overlay)" podman "${P[@]}" run --rm ${RUN_FLAGS} --network "$NETWORK" "localhost/$IMAGE:latest" /bin/true
if ! have podman; then
  fail_runner podman FAILED "podman not installed (apt-get install -y podman)"
elif ! have "$PODMAN_RUNTIME"; then
  fail_runner podman FAILED "$PODMAN_RUNTIME not installed (podman needs --runtime runc here)"
elif [ "${#RB}" -gt 44 ]; then
  fail_runner podman FAILED "podman's --runroot $RB/p/run would be longer than 50 characters"
else
  PODMAN=("${P[@]}")
  PODMAN_VERSION=$(podman --version 2>/dev/null)
  mkdir -p "$W/p"
  if timeout 120 "${PODMAN[@]}" import "$TARBALL" "$IMAGE" >"$LOGS/podman-import.log" 2>&1; then
    PODMAN_DRIVER=$(timeout 60 "${PODMAN[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null | tail -n 1)
    R_SETUP[podman]="runtime $PODMAN_RUNTIME; podman info: graph driver ${PODMAN_DRIVER:-?}"
  else
    fail_runner podman FAILED "podman import failed: $(first_err "$LOGS/podman-import.log")"
  fi
fi

# ---------------------------------------------------------------- the bundle for the raw runtimes
# hutch's own config.json (a container run once without --rm), pointed at a directory copy
# of the image, with the bind-mounted files of the container copied next to it.
BUNDLE=$W/bundle
ROOTFS=$BUNDLE/rootfs
BUNDLE_WHY="" BUNDLE_EDITS=""
CG2_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
HIDE_CG2=""
[ -n "$CG2_MOUNT" ] && [ "$CG2_MOUNT" != /sys/fs/cgroup ] && HIDE_CG2=$CG2_MOUNT
make_bundle() {
  local id cdir c
  have jq || { BUNDLE_WHY="jq is missing (apt-get install -y jq)"; return 1; }
  [ "$HUTCH_OK" = 1 ] || { BUNDLE_WHY="no hutch store (see the hutch rows)"; return 1; }
  if ! timeout 120 "${H[@]}" run --name hutch-bench-spec ${RUN_FLAGS} --network "$NETWORK" "$IMAGE" /bin/true >"$LOGS/spec-run.log" 2>&1; then
    BUNDLE_WHY="hutch run (to get its config.json) failed: $(first_err "$LOGS/spec-run.log")"; return 1
  fi
  id=$("${H[@]}" ps -a -q --no-trunc 2>>"$LOGS/spec-run.log" | head -n 1)
  cdir=$W/h/root/containers/$id
  c=$cdir/config.json
  [ -n "$id" ] && [ -r "$c" ] || { BUNDLE_WHY="no config.json under $W/h/root/containers/"; return 1; }
  mkdir -p "$ROOTFS" "$W/state"
  cp -- "$c" "$BUNDLE/hutch-config.json"
  # Files the spec binds from the container's directory (hostname, hosts, resolv.conf)
  jq -r --arg d "$cdir/" '.mounts[] | select(.type == "bind" and (.source | startswith($d))) | .source' "$c" |
    while IFS= read -r f; do cp -- "$f" "$BUNDLE/"; done
  # The same image as a plain directory, unpacked as uid 0 of hutch's namespace.
  "${H[@]}" unshare tar --numeric-owner -xpf "$TARBALL" -C "$ROOTFS" >>"$LOGS/spec-run.log" 2>&1 ||
    { BUNDLE_WHY="unpacking the image into $ROOTFS failed: $(first_err "$LOGS/spec-run.log")"; return 1; }
  jq --arg root "$ROOTFS" --arg d "$cdir/" --arg b "$BUNDLE/" '
      .root.path = $root | .process.terminal = false | .process.args = ["/bin/true"]
      | .mounts |= map(if .type == "bind" and (.source | startswith($d)) then .source = $b + (.source | ltrimstr($d)) else . end)
      | if ([.linux.namespaces[]? | select(.type == "network")] | length) == 0
        then .mounts |= map(if .type == "sysfs"
                            then {destination, type: "bind", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"]}
                            else . end)
        else . end' "$c" >"$BUNDLE/config.json" ||
    { BUNDLE_WHY="jq could not edit $c"; return 1; }
  BUNDLE_EDITS="root.path -> a copy of the image, terminal false, args [/bin/true], bind sources copied"
  if ! jq -e '[.linux.namespaces[]? | select(.type == "network")] | length > 0' "$c" >/dev/null; then
    jq -e '[.mounts[] | select(.type == "sysfs")] | length > 0' "$c" >/dev/null &&
      BUNDLE_EDITS+=", sysfs -> rbind /sys ro (no network namespace)"
  fi
  "${H[@]}" rm hutch-bench-spec >>"$LOGS/spec-run.log" 2>&1
  return 0
}
CRUN_VERSION="" RUNC_VERSION=""
have crun && CRUN_VERSION=$(crun --version 2>/dev/null | head -n 1)
have runc && RUNC_VERSION=$(runc --version 2>/dev/null | head -n 1)
CRUN=(crun --cgroup-manager=disabled --root "$W/state/crun" run --bundle "$BUNDLE" hb-crun)
RUNC=(runc --root "$W/state/runc" run --bundle "$BUNDLE" hb-runc)
add_runner raw_crun "raw crun, in hutch's userns" inner:crun "${CRUN[@]}"
add_runner raw_runc "raw runc, in hutch's userns" inner:runc "${RUNC[@]}"
CRUN_W=(crun --cgroup-manager=disabled --root "$W/state/crun-w" run --bundle "$BUNDLE" hb-crun-w)
if [ -n "$HIDE_CG2" ]; then
  add_runner raw_crun_w "raw crun, per-run unshare" held "${H[@]}" unshare unshare -m --propagation slave sh -c \
    "mount -t tmpfs -o size=4k,mode=0555 hutch-bench $(printf %q "$HIDE_CG2") && exec $(printf '%q ' "${CRUN_W[@]}")"
else
  add_runner raw_crun_w "raw crun, per-run unshare" held "${H[@]}" unshare "${CRUN_W[@]}"
fi
add_runner raw_runc_w "raw runc, per-run unshare" held "${H[@]}" unshare runc --root "$W/state/runc-w" run --bundle "$BUNDLE" hb-runc-w
if make_bundle; then
  R_SETUP[raw_crun]="--cgroup-manager=disabled${HIDE_CG2:+; private mount namespace, tmpfs over $HIDE_CG2}"
  R_SETUP[raw_crun_w]="hutch unshare${HIDE_CG2:+ unshare -m, tmpfs over $HIDE_CG2,} then crun, every run"
  R_SETUP[raw_runc_w]="hutch unshare runc, every run"
else
  for id in raw_crun raw_runc raw_crun_w raw_runc_w; do fail_runner "$id" FAILED "no bundle: $BUNDLE_WHY"; done
fi
have crun || { fail_runner raw_crun FAILED "crun not installed (apt-get install -y crun)"; fail_runner raw_crun_w FAILED "crun not installed"; }
have runc || { fail_runner raw_runc FAILED "runc not installed (apt-get install -y runc)"; fail_runner raw_runc_w FAILED "runc not installed"; }

# ---------------------------------------------------------------- servers: shells in hutch's userns
# A server is `hutch unshare bash server.sh MODE` reading requests from a FIFO: each
# request is a log file and a command, which it runs and times, answering "RC MICROSECONDS".
# Mode crun: in a private mount namespace with a tmpfs over the hybrid cgroup2 mount.
# While a server runs, hutch's namespace is held, so hutch runs started then join it.
cat >"$W/server.sh" <<'EOF'
# server.sh MODE CG2-TO-HIDE: the raw runtimes' timing loop, inside hutch's namespace
mode=$1 hide=$2
if [ "$mode" = crun ] && [ -n "$hide" ]; then
  if ! err=$(mount -t tmpfs -o size=4k,mode=0555 hutch-bench "$hide" 2>&1); then
    echo "error cannot mount a tmpfs over $hide: $err" | tr '\n' ' '; echo; exit 1
  fi
fi
echo "ready uid $(id -u)"
tf=$3
_tus() {  # XmY.ZZZs -> _V microseconds
  [[ $1 =~ ^([0-9]+)m([0-9]+)[.,]([0-9]+)s$ ]] || { _V=0; return; }
  local f=${BASH_REMATCH[3]}000000
  _V=$((10#${BASH_REMATCH[1]} * 60000000 + 10#${BASH_REMATCH[2]} * 1000000 + 10#${f:0:6}))
}
cpu_now() {  # -> _C: CPU time of the waited-for children, microseconds
  local _a _b u s
  times >"$tf"
  { read -r _a _b; read -r u s; } <"$tf"
  _tus "$u"; _C=$_V; _tus "$s"; _C=$((_C + _V))
}
run_it() {  # LOG CMD... -> "RC WALL-US CPU-US"
  local log=$1 t0 t1 c0 rc; shift
  cpu_now; c0=$_C
  t0=${EPOCHREALTIME//[!0-9]/}
  "$@" >>"$log" 2>&1 </dev/null
  rc=$?
  t1=${EPOCHREALTIME//[!0-9]/}
  cpu_now
  echo "$rc $((10#$t1 - 10#$t0)) $((_C - c0))"
}
while IFS= read -r line; do
  [ "$line" = quit ] && exit 0
  eval "run_it $line"
done
EOF
declare -A S_PID S_IN S_OUT S_STATE S_WHY   # per server mode: crun, runc
server_start() {  # MODE -> 0 when ready
  local m=$1 fin fout line
  fin=$W/srv-$m.in fout=$W/srv-$m.out
  rm -f -- "$fin" "$fout"
  mkfifo -m 0600 "$fin" "$fout" || { S_STATE[$m]=dead; S_WHY[$m]="mkfifo failed"; return 1; }
  if [ "$m" = crun ] && [ -n "$HIDE_CG2" ]; then
    "${H[@]}" unshare unshare -m --propagation slave bash "$W/server.sh" crun "$HIDE_CG2" "$W/times-$m.txt" \
      <"$fin" >"$fout" 2>>"$LOGS/server-$m.log" &
  else
    "${H[@]}" unshare bash "$W/server.sh" "$m" "" "$W/times-$m.txt" <"$fin" >"$fout" 2>>"$LOGS/server-$m.log" &
  fi
  S_PID[$m]=$!
  SERVER_PIDS+=("$!")
  exec {fd_in}>"$fin" {fd_out}<"$fout"
  S_IN[$m]=$fd_in S_OUT[$m]=$fd_out
  if IFS= read -r -t 60 -u "$fd_out" line && [[ $line == ready* ]]; then
    S_STATE[$m]=up; return 0
  fi
  S_STATE[$m]=dead
  S_WHY[$m]="the server in hutch's namespace did not start: ${line:-$(last_err "$LOGS/server-$m.log")}"
  server_stop "$m"
  return 1
}
server_stop() {  # MODE
  local m=$1
  [ -n "${S_PID[$m]:-}" ] || return 0
  [ "${S_STATE[$m]}" = up ] && printf 'quit\n' 1>&"${S_IN[$m]}" 2>/dev/null
  local a=${S_IN[$m]} b=${S_OUT[$m]}
  exec {a}>&- {b}<&-
  wait "${S_PID[$m]}" 2>/dev/null
  S_PID[$m]=""
  rm -f -- "$W/srv-$m.in" "$W/srv-$m.out"
}
# Until no hutch process is left, hutch's pause process keeps the namespace; it removes
# userns.pid as it leaves. A "new userns" run starts only after that.
COLD_WAIT_TIMEOUTS=0
wait_userns_gone() {  # [PIDFILE]
  local i f=${1:-$USERNS_PID}
  for ((i = 0; i < 400; i++)); do
    [ -e "$f" ] || return 0
    sleep 0.005
  done
  COLD_WAIT_TIMEOUTS=$((COLD_WAIT_TIMEOUTS + 1))
  return 1
}

# ---------------------------------------------------------------- one run of a runner
# run_one ID LOG -> _RC, _US (wall time), _CPU (CPU time of the waited-for process tree),
# both in microseconds
HELD_MISSES=0
run_one() {
  local id=$1 log=$2 kind=${R_KIND[$1]} m rc us cpu t0 t1 c0
  case $kind in
    inner:*)
      m=${kind#inner:}
      if [ "${S_STATE[$m]:-}" != up ]; then _RC=255; _US=0; _CPU=0; printf '%s\n' "${S_WHY[$m]:-server not running}" >>"$log"; return; fi
      printf '%q %s\n' "$log" "${R_CMD[$id]}" 1>&"${S_IN[$m]}"
      if IFS=' ' read -r -t 120 -u "${S_OUT[$m]}" rc us cpu; then
        _RC=$rc _US=$us _CPU=$cpu
      else
        _RC=255 _US=0 _CPU=0
        S_STATE[$m]=dead; S_WHY[$m]="the server stopped answering (timeout or exit)"
        printf '%s\n' "${S_WHY[$m]}" >>"$log"
      fi
      ;;
    *)
      [ "$kind" = cold ] && [ -n "${R_USERNS[$id]}" ] && wait_userns_gone "${R_USERNS[$id]}"
      [ "$kind" = held ] && [ ! -e "$USERNS_PID" ] && HELD_MISSES=$((HELD_MISSES + 1))
      cpu_now; c0=$_C
      stamp; t0=$_T
      eval "${R_CMD[$id]}" >>"$log" 2>&1 </dev/null
      _RC=$?
      stamp; t1=$_T
      cpu_now
      _US=$((t1 - t0)) _CPU=$((_C - c0))
      ;;
  esac
}

# One phase: the runners of that phase, in turn, starting with a rotating one.
# held: the servers run (raw rows timed inside them, hutch rows joining the namespace).
run_phase() {  # PHASE(held|cold) ROUND(-1: warm-up)
  local ph=$1 r=$2 ids=() id k j log m
  for id in "${RUNNERS[@]}"; do
    [ "${R_STATUS[$id]}" = ok ] || { [ "$r" -lt 0 ] && [ "${R_STATUS[$id]}" = pending ]; } || continue
    case ${R_KIND[$id]} in
      cold|podman) [ "$ph" = cold ] && ids+=("$id") ;;
      *) [ "$ph" = held ] && ids+=("$id") ;;
    esac
  done
  k=${#ids[@]}
  [ "$k" -gt 0 ] || return 0
  if [ "$ph" = held ]; then
    server_start runc
    server_start crun
  fi
  for ((j = 0; j < k; j++)); do
    id=${ids[(j + (r < 0 ? 0 : r)) % k]}
    if [ "$r" -lt 0 ]; then
      log=$LOGS/$id.warmup.log
      : >"$log"
      run_one "$id" "$log"
      if [ "$_RC" -eq 0 ]; then
        R_STATUS[$id]=ok
      else
        fail_runner "$id" FAILED "$(first_err "$log")"
        [ -z "${R_REASON[$id]}" ] && R_REASON[$id]="exit $_RC, no message"
      fi
    else
      [ "${R_STATUS[$id]}" = ok ] || continue
      log=$LOGS/$id.log
      run_one "$id" "$log"
      if [ "$_RC" -ne 0 ]; then
        fail_runner "$id" FAILED "timed run $((r + 1)) exited $_RC: $(last_err "$log")"
        continue
      fi
      R_SAMPLES[$id]+="$_US "
      R_CPU[$id]+="$_CPU "
    fi
  done
  if [ "$ph" = held ]; then
    server_stop crun
    server_stop runc
    for m in crun runc; do
      [ "${S_STATE[$m]}" = dead ] && [ "$r" -lt 0 ] && for id in "${ids[@]}"; do
        [ "${R_KIND[$id]}" = "inner:$m" ] && [ "${R_STATUS[$id]}" = FAILED ] && R_REASON[$id]=${S_WHY[$m]}
      done
    done
  fi
}

# ---------------------------------------------------------------- warm-up, then the timed rounds
if [ "${#H[@]}" -gt 0 ] && [ "$HUTCH_OK" = 1 ]; then :; else
  for id in raw_crun raw_runc raw_crun_w raw_runc_w; do [ "${R_STATUS[$id]}" = pending ] && fail_runner "$id" FAILED "needs hutch"; done
fi
wait_userns_gone
run_phase held -1
wait_userns_gone
run_phase cold -1
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_MAX=0
sample_load() {  # the highest 1-minute load average seen, no fork
  local l _
  read -r l _ </proc/loadavg
  dec_gt "$l" "$LOAD_MAX" && LOAD_MAX=$l
}
dec_gt() {  # A B: decimal A > B, in bash arithmetic (two decimals)
  local a=${1%.*} af=${1#*.} b=${2%.*} bf=${2#*.}
  [ "$a" = "$1" ] && af=00; [ "$b" = "$2" ] && bf=00
  af=${af}00 bf=${bf}00
  (( 10#$a * 100 + 10#${af:0:2} > 10#$b * 100 + 10#${bf:0:2} ))
}
sample_load
for ((r = 0; r < RUNS; r++)); do
  sample_load
  if ((r % 2 == 0)); then run_phase held "$r"; run_phase cold "$r"
  else run_phase cold "$r"; run_phase held "$r"; fi
done
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sample_load
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- concurrency
# CONC runs at once (background jobs), wall time until the last exits; every exit code
# checked; afterwards `ps -a` must list nothing. A watchdog kills the jobs after
# CONC_TIMEOUT seconds.
CONC_IDS=()
declare -A C_LABEL C_WALLS C_FAILS C_FIRST C_LEFT C_STATUS
for rt in "${RUNTIMES[@]}"; do
  if is_ok "h_$rt"; then CONC_IDS+=("h_$rt"); fi
done
is_ok h_native_tmpfs && CONC_IDS+=(h_native_tmpfs)
is_ok podman && CONC_IDS+=(podman)
conc_round() {  # ID ROUND
  local id=$1 r=$2 d=$W/conc/$1.$2 i pids=() t0 t1 fails=0 rc wd first="" n
  mkdir -p "$d"
  [ -n "${R_USERNS[$id]}" ] && wait_userns_gone "${R_USERNS[$id]}"
  stamp; t0=$_T
  for ((i = 0; i < CONC; i++)); do
    eval "${R_CMD[$id]}" >"$d/$i.out" 2>"$d/$i.err" </dev/null &
    pids+=("$!")
  done
  (
    s=""
    trap 'kill $s 2>/dev/null; exit 0' TERM
    sleep "$CONC_TIMEOUT" & s=$!
    wait "$s"
    kill "${pids[@]}" 2>/dev/null
  ) >/dev/null 2>&1 &
  wd=$!
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    if [ "$rc" -ne 0 ]; then
      fails=$((fails + 1))
      [ -z "$first" ] && first="run $i exited $rc: $(first_err "$d/$i.err")"
    fi
  done
  stamp; t1=$_T
  kill "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
  C_WALLS[$id]+="$((t1 - t0)) "
  C_FAILS[$id]+="$fails "
  [ -z "${C_FIRST[$id]}" ] && C_FIRST[$id]=$first
  # nothing may be left: no container record, no container directory
  case $id in
    podman) n=$("${PODMAN[@]}" ps -a -q 2>>"$LOGS/conc-ps.log" | grep -c .) ;;
    h_native_tmpfs)
       n=$("${HT[@]}" ps -a -q 2>>"$LOGS/conc-ps.log" | grep -c .)
       n=$((n + $(find "$TS/root/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l))) ;;
    *) n=$("${H[@]}" ps -a -q 2>>"$LOGS/conc-ps.log" | grep -c .)
       n=$((n + $(find "$W/h/root/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l))) ;;
  esac
  C_LEFT[$id]+="$n "
  cat "$d"/*.err >>"$LOGS/conc-$id.log" 2>/dev/null
  rm -rf -- "$d"
}
if [ "$CONC" -gt 0 ]; then
  for id in "${CONC_IDS[@]}"; do
    C_LABEL[$id]=${R_LABEL[$id]%, new userns}
    C_WALLS[$id]="" C_FAILS[$id]="" C_FIRST[$id]="" C_LEFT[$id]="" C_STATUS[$id]=ok
  done
  for ((r = 0; r < CONC_ROUNDS; r++)); do
    k=${#CONC_IDS[@]}
    for ((j = 0; j < k; j++)); do
      conc_round "${CONC_IDS[(j + r) % k]}" "$r"
    done
  done
fi

# ---------------------------------------------------------------- statistics
declare -A S_MED S_P90 S_MEAN S_MIN S_MAX S_CPU
stats() {  # SAMPLES(us) DIV -> median p90 mean min max (in us/DIV)
  printf '%s\n' $1 | sort -n | awk -v d="$2" '
    { v[NR] = $1 / d; s += v[NR] }
    END {
      n = NR; if (n == 0) exit
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      i = int(0.9 * n); if (i < 0.9 * n) i++; if (i < 1) i = 1   # nearest rank
      printf "%.3f %.3f %.3f %.3f %.3f\n", med, v[i], s / n, v[1], v[n]
    }'
}
for id in "${RUNNERS[@]}"; do
  is_ok "$id" || continue
  read -r "S_MED[$id]" "S_P90[$id]" "S_MEAN[$id]" "S_MIN[$id]" "S_MAX[$id]" < <(stats "${R_SAMPLES[$id]}" 1000)
  read -r "S_CPU[$id]" _ < <(stats "${R_CPU[$id]}" 1000)
done
declare -A CS_MED CS_MIN CS_MAX
for id in "${CONC_IDS[@]}"; do
  [ -n "${C_WALLS[$id]:-}" ] || continue
  read -r "CS_MED[$id]" _ _ "CS_MIN[$id]" "CS_MAX[$id]" < <(stats "${C_WALLS[$id]}" 1000000)
  f=0; for x in ${C_FAILS[$id]}; do f=$((f + x)); done
  [ "$f" -eq $((CONC * CONC_ROUNDS)) ] && C_STATUS[$id]=FAILED   # every run failed
done
ratio() {  # A B -> A/B with 2 decimals, or empty
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
med() { is_ok "$1" && printf '%s' "${S_MED[$1]}"; }
FLOOR="" FLOOR_ID=""
for id in raw_crun raw_runc; do
  if is_ok "$id" && { [ -z "$FLOOR" ] || awk -v a="${S_MED[$id]}" -v b="$FLOOR" 'BEGIN { exit !(a < b) }'; }; then
    FLOOR=${S_MED[$id]} FLOOR_ID=$id
  fi
done
# ratios: name -> value, in report order
RATIO_KEYS=()
declare -A RATIO RATIO_DESC
add_ratio() { RATIO_KEYS+=("$1"); RATIO_DESC[$1]=$2; RATIO[$1]=$3; }  # KEY DESC VALUE
for v in h hj; do
  w="new userns"; [ "$v" = hj ] && w="userns joined"
  add_ratio "native_floor_$v" "hutch native ($w) / the floor" "$(ratio "$(med ${v}_native)" "$FLOOR")"
  add_ratio "native_crun_$v" "hutch native ($w) / raw crun" "$(ratio "$(med ${v}_native)" "$(med raw_crun)")"
  add_ratio "native_runc_$v" "hutch native ($w) / raw runc" "$(ratio "$(med ${v}_native)" "$(med raw_runc)")"
  add_ratio "podman_native_$v" "podman / hutch native ($w)" "$(ratio "$(med podman)" "$(med ${v}_native)")"
  add_ratio "crun_crun_$v" "hutch crun ($w) / raw crun" "$(ratio "$(med ${v}_crun)" "$(med raw_crun)")"
  add_ratio "runc_runc_$v" "hutch runc ($w) / raw runc" "$(ratio "$(med ${v}_runc)" "$(med raw_runc)")"
done
add_ratio "native_tmpfs_floor" "hutch native, store on tmpfs (new userns) / the floor" "$(ratio "$(med h_native_tmpfs)" "$FLOOR")"
add_ratio "floor_wrap_crun" "raw crun per-run unshare / raw crun" "$(ratio "$(med raw_crun_w)" "$(med raw_crun)")"
add_ratio "floor_wrap_runc" "raw runc per-run unshare / raw runc" "$(ratio "$(med raw_runc_w)" "$(med raw_runc)")"
# the same on CPU time (less exposed to a busy machine; see the note under the table)
cpu_med() { is_ok "$1" && printf '%s' "${S_CPU[$1]}"; }
add_ratio "cpu_native_floor_h" "CPU time: hutch native (new userns) / the floor" "$(ratio "$(cpu_med h_native)" "$(cpu_med "$FLOOR_ID")")"
add_ratio "cpu_native_floor_hj" "CPU time: hutch native (userns joined) / the floor" "$(ratio "$(cpu_med hj_native)" "$(cpu_med "$FLOOR_ID")")"
CONC_RATIO=""
CONC_RATIO=$(ratio "${CS_MED[podman]:-}" "${CS_MED[h_native]:-}")

# targets: native within 1.5x of the floor, at least 4x faster than podman
verdict() {  # VALUE OP LIMIT -> "1.23x: met" / "NOT met" / "n/a"
  [ -n "$1" ] || { printf 'n/a'; return; }
  if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { exit !((op == "le") ? a <= b : a >= b) }'; then
    printf '%sx: met' "$1"
  else
    printf '%sx: NOT met' "$1"
  fi
}

# ---------------------------------------------------------------- the report
KERNEL=$(uname -r)
CPUS=$(nproc 2>/dev/null || echo '?')
CG_LAYOUT=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)
case $CG_LAYOUT in
  cgroup2fs) CG_DESC="cgroup v2" ;;
  tmpfs) CG_DESC="cgroup v1${CG2_MOUNT:+, hybrid: cgroup2 at $CG2_MOUNT [$(cat "$CG2_MOUNT/cgroup.controllers" 2>/dev/null)]}" ;;
  *) CG_DESC="unknown ($CG_LAYOUT)" ;;
esac
x() { [ -n "$1" ] && printf '%sx' "$1" || printf 'n/a'; }
report() {
  local id v w
  echo
  echo "Container start: <runner> ... run --rm ${RUN_FLAGS:+$RUN_FLAGS }<busybox image> /bin/true, network $NETWORK, as $ME"
  echo "  runs: $RUNS timed per runner after 1 warm-up, all runners taking turns round-robin; timer: bash \$EPOCHREALTIME"
  echo "  host: kernel $KERNEL, $CPUS CPUs, $CG_DESC; load $LOAD_BEFORE -> $LOAD_AFTER; $T_START .. $T_END"
  echo "  hutch: $HUTCH (${HUTCH_VERSION:-not found}); storage: ${HUTCH_STORAGE:-?}"
  echo "         runtime plugins available: ${HUTCH_PLUGINS:-?}"
  echo "  podman: ${PODMAN_VERSION:-not run}, --runtime $PODMAN_RUNTIME, graph driver ${PODMAN_DRIVER:-?}"
  echo "  raw: ${CRUN_VERSION:-crun missing}, ${RUNC_VERSION:-runc missing}; bundle: hutch's config.json; ${BUNDLE_EDITS:-${BUNDLE_WHY:-}}"
  [ "$COLD_WAIT_TIMEOUTS" -gt 0 ] && echo "  note: $COLD_WAIT_TIMEOUTS times hutch's namespace was still there after 2 s before a 'new userns' run (so that run joined it)"
  if [[ $CPUS =~ ^[0-9]+$ ]] && dec_gt "$LOAD_MAX" "$CPUS"; then
    echo "  WARNING: the machine was busy (1-minute load up to $LOAD_MAX on $CPUS CPUs during the timed runs): wall times"
    echo "           are inflated, most for runs that sleep often (fsync, process hand-offs); compare the cpu ms column,"
    echo "           or run again on a quiet machine"
  fi
  [ "$HELD_MISSES" -gt 0 ] && echo "  note: $HELD_MISSES 'userns joined' or per-run-unshare runs found no namespace to join (so they made one)"
  echo
  printf '%-32s %10s %10s %10s %10s %10s %8s  %s\n' runner "median ms" "p90 ms" "mean ms" "min ms" "max ms" "cpu ms" status
  printf '%-32s %10s %10s %10s %10s %10s %8s  %s\n' "--------------------------------" ---------- ---------- ---------- ---------- ---------- -------- ------
  for id in "${RUNNERS[@]}"; do
    if is_ok "$id"; then
      printf '%-32s %10s %10s %10s %10s %10s %8s  %s\n' "${R_LABEL[$id]}" "${S_MED[$id]}" "${S_P90[$id]}" \
        "${S_MEAN[$id]}" "${S_MIN[$id]}" "${S_MAX[$id]}" "${S_CPU[$id]}" ok
    else
      printf '%-32s %10s %10s %10s %10s %10s %8s  %s\n' "${R_LABEL[$id]}" - - - - - - "${R_STATUS[$id]}"
    fi
  done
  echo "  (wall times; cpu ms: median user+system time of the process tree the timer waited for: it leaves out"
  echo "   podman's conmon and pause processes and hutch's pause process, which are not waited-for children)"
  echo
  for id in "${RUNNERS[@]}"; do
    is_ok "$id" && continue
    case $id in
      h_*) echo "hutch/${id#h_}: ${R_STATUS[$id]}: ${R_REASON[$id]}" ;;
      hj_*) echo "hutch/${id#hj_} (userns joined): ${R_STATUS[$id]}: ${R_REASON[$id]}" ;;
      *) echo "${R_LABEL[$id]}: ${R_STATUS[$id]}: ${R_REASON[$id]}" ;;
    esac
  done
  echo
  if [ -n "$FLOOR" ]; then
    echo "Ratios of medians (the floor: ${R_LABEL[$FLOOR_ID]}, $FLOOR ms, the lower raw runtime)"
  else
    echo "Ratios of medians (no floor: neither raw runtime ran)"
  fi
  for k in "${RATIO_KEYS[@]}"; do
    printf '  %-56s %s\n' "${RATIO_DESC[$k]}" "$(x "${RATIO[$k]}")"
  done
  echo
  echo "Targets"
  printf '  %-46s new userns %s; userns joined %s\n' "hutch native within 1.5x of the floor:" \
    "$(verdict "${RATIO[native_floor_h]}" le 1.5)" "$(verdict "${RATIO[native_floor_hj]}" le 1.5)"
  printf '  %-46s new userns %s; userns joined %s\n' "hutch native at least 4x faster than podman:" \
    "$(verdict "${RATIO[podman_native_h]}" ge 4)" "$(verdict "${RATIO[podman_native_hj]}" ge 4)"
  echo
  if [ "$CONC" -eq 0 ]; then
    echo "Concurrency: skipped (-c 0)"
  elif [ "${#CONC_IDS[@]}" -eq 0 ]; then
    echo "Concurrency: nothing to run (no hutch runtime and no podman passed the warm-up)"
  else
    echo "Concurrency: $CONC x run --rm ... /bin/true started at once, wall time until all exited; $CONC_ROUNDS rounds each, taking turns"
    printf '  %-30s %10s %8s %8s  %-14s %-12s %s\n' runner "median s" "min s" "max s" "failed runs" "left (ps -a)" status
    for id in "${CONC_IDS[@]}"; do
      local f=0 l=0 xx
      for xx in ${C_FAILS[$id]}; do f=$((f + xx)); done
      for xx in ${C_LEFT[$id]}; do l=$((l + xx)); done
      printf '  %-30s %10s %8s %8s  %-14s %-12s %s\n' "${C_LABEL[$id]}" "${CS_MED[$id]:--}" "${CS_MIN[$id]:--}" "${CS_MAX[$id]:--}" \
        "$f of $((CONC * CONC_ROUNDS))" "$l" "$([ "$f" -eq 0 ] && [ "$l" -eq 0 ] && echo ok || echo "${C_STATUS[$id]}")"
      [ -n "${C_FIRST[$id]}" ] && echo "    first failure: ${C_FIRST[$id]}"
      [ "$l" -gt 0 ] && echo "    after the rounds ps -a (plus container directories) counted: ${C_LEFT[$id]}"
    done
    for rt in "${RUNTIMES[@]}"; do
      is_ok "h_$rt" || echo "  hutch/$rt: not run (${R_STATUS[h_$rt]} above)"
    done
    is_ok podman || echo "  podman: not run (${R_STATUS[podman]} above)"
    printf '  podman / hutch native (median wall): %s\n' "$(x "$CONC_RATIO")"
  fi
  [ "$KEEP" = 1 ] && echo "logs: $LOGS"
  return 0
}
REPORT=$(report)
bench_write_report "$REPORT"

# ---------------------------------------------------------------- JSON
if [ -n "$JSON_OUT" ]; then
  {
    printf '{\n  "schema": "hutch-runtime-bench/1",\n'
    printf '  "started": %s, "finished": %s, "runs": %s, "warmup_runs": 1, "network": %s,\n' \
      "$(json_str "$T_START")" "$(json_str "$T_END")" "$RUNS" "$(json_str "$NETWORK")"
    printf '  "host": {"kernel": %s, "cpus": %s, "cgroups": %s, "user": %s, "loadavg_before": %s, "loadavg_after": %s, "loadavg_1min_max": %s},\n' \
      "$(json_str "$KERNEL")" "$(json_num "$CPUS")" "$(json_str "$CG_DESC")" "$(json_str "$ME")" \
      "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")" "$LOAD_MAX"
    printf '  "versions": {"hutch": %s, "podman": %s, "crun": %s, "runc": %s},\n' "$(json_str "$HUTCH_VERSION")" \
      "$(json_str "$PODMAN_VERSION")" "$(json_str "$CRUN_VERSION")" "$(json_str "$RUNC_VERSION")"
    printf '  "hutch": {"path": %s, "storage": %s, "image_id": %s},\n' "$(json_str "$HUTCH")" \
      "$(json_str "$HUTCH_STORAGE")" "$(json_str "$HUTCH_IMAGE_ID")"
    printf '  "bundle_edits": %s, "floor": {"runner": %s, "median_ms": %s},\n' "$(json_str "$BUNDLE_EDITS")" \
      "$(json_str "$FLOOR_ID")" "$(json_num "$FLOOR")"
    printf '  "runners": [\n'
    n=0
    for id in "${RUNNERS[@]}"; do
      [ "$n" -gt 0 ] && printf ',\n'; n=$((n + 1))
      printf '    {"id": %s, "label": %s, "status": %s, "command": %s, "setup": %s, "reason": %s' \
        "$(json_str "$id")" "$(json_str "${R_LABEL[$id]}")" "$(json_str "${R_STATUS[$id]}")" \
        "$(json_str "${R_CMD[$id]}")" "$(json_str "${R_SETUP[$id]}")" "$(json_str "${R_REASON[$id]}")"
      if is_ok "$id"; then
        printf ',\n     "median_ms": %s, "p90_ms": %s, "mean_ms": %s, "min_ms": %s, "max_ms": %s, "cpu_median_ms": %s,' \
          "${S_MED[$id]}" "${S_P90[$id]}" "${S_MEAN[$id]}" "${S_MIN[$id]}" "${S_MAX[$id]}" "${S_CPU[$id]}"
        printf '\n     "samples_us": %s, "cpu_samples_us": %s' "$(json_list "${R_SAMPLES[$id]}")" "$(json_list "${R_CPU[$id]}")"
      fi
      printf '}'
    done
    printf '\n  ],\n  "ratios": {'
    n=0
    for k in "${RATIO_KEYS[@]}"; do
      [ "$n" -gt 0 ] && printf ', '; n=$((n + 1))
      printf '%s: %s' "$(json_str "$k")" "$(json_num "${RATIO[$k]}")"
    done
    printf '},\n  "concurrency": {"containers": %s, "rounds": %s, "ratio_podman_to_hutch_native": %s, "runners": [' \
      "$CONC" "$CONC_ROUNDS" "$(json_num "$CONC_RATIO")"
    n=0
    for id in "${CONC_IDS[@]}"; do
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      printf '\n    {"id": %s, "median_s": %s, "walls_us": %s, "failed_per_round": %s, "left_per_round": %s, "first_failure": %s}' \
        "$(json_str "$id")" "$(json_num "${CS_MED[$id]:-}")" "$(json_list "${C_WALLS[$id]}")" \
        "$(json_list "${C_FAILS[$id]}")" "$(json_list "${C_LEFT[$id]}")" "$(json_str "${C_FIRST[$id]}")"
    done
    printf '\n  ]}\n}\n'
  } >"$JSON_OUT" || note "could not write $JSON_OUT"
  [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $JSON_OUT"
fi

# ---------------------------------------------------------------- exit status
# Needed: hutch native, podman, and at least one raw runtime (the floor). --strict: all.
rc=0
if [ -n "${R_STATUS[h_native]:-}" ]; then
  is_ok h_native || is_ok hj_native || { note "hutch native could not run"; rc=1; }
fi
is_ok podman || { note "podman could not run"; rc=1; }
[ -n "$FLOOR" ] || { note "neither raw runtime could run: no floor"; rc=1; }
if [ "$STRICT" = 1 ]; then
  for id in "${RUNNERS[@]}"; do is_ok "$id" || rc=1; done
  for id in "${CONC_IDS[@]}"; do [ "${C_STATUS[$id]}" = ok ] || rc=1; done
fi
exit "$rc"
