#!/usr/bin/env bash
# run_start_bench.sh - container start latency of `hutch run --rm IMAGE /bin/true`,
# measured in ONE run side by side with its peers on the same busybox rootfs:
#
#   hutch          hutch run --rm --network none IMAGE /bin/true
#   podman         podman run --rm --network none IMAGE /bin/true   (the podman reference)
#   podman (net)   podman run --rm IMAGE /bin/true, default rootless network (slirp4netns)
#   runc           runc run of an OCI bundle made with `runc spec --rootless`
#   crun           crun run of the same bundle, if crun accepts this host
#   floor (+net)   the floor below plus a network namespace (what --network none adds)
#   floor          unshare --user --map-root-user --mount --pid --fork --uts --ipc
#                  chroot ROOTFS /bin/true                      (the floor reference)
#
# For each: median and p90 wall time over N runs, and the ratio of each to podman and
# to the floor (ratios survive a noisy machine better than milliseconds do).
#
# Usage: bench/run_start_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_start_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# What was found on the development host (Debian 12, podman 4.3.1, runc 1.1.5,
# crun 1.8.1, kernel 6.18, hybrid cgroup v1 with a cgroup2 mount holding only hugetlb,
# no systemd, no XDG_RUNTIME_DIR, "/" a private mount); each point is where the
# script acts on it:
#  * podman picks crun by default, and crun refuses the hybrid layout ("cgroups in
#    hybrid mode not supported, drop all controllers from cgroupv2"): podman needs
#    `--runtime runc`.
#  * --cgroup-manager cgroupfs and --events-backend file are what podman already picks
#    with no systemd; they are passed explicitly so a host with systemd measures the same
#    thing (systemd would add a D-Bus round trip per container, journald an extra hop).
#  * With a private --root and no storage.conf podman 4.3 falls back to the vfs driver,
#    which copies the whole rootfs per container. Kernel 6.18 has native rootless
#    overlayfs, so the bench passes --storage-driver overlay (the normal modern setup;
#    fuse-overlayfs is not needed, and /dev/fuse is mode 0600 here anyway). If overlay
#    fails, it falls back to vfs and says so.
#  * podman needs XDG_RUNTIME_DIR; the bench always gives it a private 0700 dir (and a
#    private HOME, --root, --runroot, --tmpdir), so it never shares the pause process
#    or locks with the user's own podman, and the cleanup can kill that pause process.
#    Without a private HOME podman writes ~/.config/cni and ~/.local/share/containers.
#  * podman's default rootless network is slirp4netns, which needs /dev/net/tun; that
#    node is mode 0600 here, so the "podman (net)" row is skipped unless root runs the
#    bench with --open-tun (chmod 0666 for the run, the stock Debian/udev mode, restored
#    afterwards).
#  * podman warns '"/" is not a shared mount' on every command; harmless here.
#  * `runc spec --rootless` needs three edits: args ["sh"] -> ["/bin/true"], terminal
#    false (no tty under the bench), and root.readonly false (podman and hutch give a
#    writable rootfs). runc refuses a root.path that is a symlink, so the bundle holds
#    the rootfs as a real directory (bundle/rootfs) and the floor chroots into the same
#    directory. runc makes its own user namespace from the spec (uid 0 -> your uid, one
#    ID), needs no newuidmap, and ignores cgroups it may not write on cgroup v1.
#  * the rootless spec has no network namespace, like the floor; podman and hutch with
#    --network none make one, hence the "floor (+net)" row.
#  * A user made by `useradd` on Debian 12 already gets /etc/subuid and /etc/subgid
#    ranges (SUB_UID_* in login.defs). Appending a second identical range makes podman
#    fail with "newuidmap: write to uid_map failed: Invalid argument" (the kernel
#    refuses overlapping ranges); the script adds a range only when there is none and
#    refuses to go on when the user's ranges overlap.
set -uo pipefail   # no -e: a peer that fails becomes a row that says so

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

RUNS=20
OUT=""
RUN_AS=""
HUTCH=""
USE_HYPERFINE=0
KEEP=0
OPEN_TUN=0
CRUN_HIDE=0
BUSYBOX=/bin/busybox
PODMAN_DRIVER=overlay
WORKDIR=""

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   timed runs per peer (default $RUNS), after one warm-up run each
  -o FILE                also write the results as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: hutch on PATH, else
                         $REPO_ROOT/build/cli/hutch)
  --hyperfine            time with hyperfine (must be installed) instead of the built-in
                         bash timer; hyperfine runs peers one after another, the built-in
                         timer interleaves them
  --open-tun             as root: chmod 0666 /dev/net/tun for the run (restored after), so
                         podman's default slirp4netns network can be measured
  --crun-hide-cgroup2    add a row that runs crun inside unshare with a tmpfs over the
                         cgroup2 mount, which hides the hybrid layout crun refuses
  --podman-storage-driver DRV  podman storage driver (default overlay; vfs is the other)
  --busybox PATH         static busybox to build the image from (default $BUSYBOX)
  --workdir DIR          scratch directory (default: a new one under \${TMPDIR:-/tmp})
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
    -o) [ $# -ge 2 ] || die "-o needs a file"; OUT=$2; shift 2 ;;
    --user) [ $# -ge 2 ] || die "--user needs a name"; RUN_AS=$2; shift 2 ;;
    --user=*) RUN_AS=${1#*=}; shift ;;
    --hutch) [ $# -ge 2 ] || die "--hutch needs a path"; HUTCH=$2; shift 2 ;;
    --hutch=*) HUTCH=${1#*=}; shift ;;
    --hyperfine) USE_HYPERFINE=1; shift ;;
    --open-tun) OPEN_TUN=1; shift ;;
    --crun-hide-cgroup2) CRUN_HIDE=1; shift ;;
    --podman-storage-driver) [ $# -ge 2 ] || die "$1 needs a driver"; PODMAN_DRIVER=$2; shift 2 ;;
    --busybox) [ $# -ge 2 ] || die "--busybox needs a path"; BUSYBOX=$2; shift 2 ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a path"; WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "-n wants a positive integer, not '$RUNS'"

# ---------------------------------------------------------------- root: set up, re-run as the user

TUN_MODE_SAVED=""
restore_tun() {
  if [ -n "$TUN_MODE_SAVED" ]; then
    chmod "$TUN_MODE_SAVED" /dev/net/tun && note "restored /dev/net/tun to mode $TUN_MODE_SAVED"
    TUN_MODE_SAVED=""
  fi
}

if [ "$(id -u)" -eq 0 ]; then
  bench_prepare_user "$RUN_AS"
  uid=$BENCH_UID
  child_args=(-n "$RUNS")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; */*) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ "$USE_HYPERFINE" = 1 ] && child_args+=(--hyperfine)
  [ "$CRUN_HIDE" = 1 ] && child_args+=(--crun-hide-cgroup2)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  child_args+=(--podman-storage-driver "$PODMAN_DRIVER" --busybox "$BUSYBOX")
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  child_out=""
  if [ -n "$OUT" ]; then
    child_out=$(mktemp /tmp/hutch-start-bench-json.XXXXXX) || die "mktemp failed"
    chown "$RUN_AS" "$child_out"
    child_args+=(-o "$child_out")
  fi
  bench_child_script "$SCRIPT" "$RUN_AS"
  child_script=$BENCH_CHILD_SCRIPT
  if [ "$OPEN_TUN" = 1 ] && [ -c /dev/net/tun ]; then
    TUN_MODE_SAVED=$(stat -c %a /dev/net/tun)
    if [ "$TUN_MODE_SAVED" != 666 ]; then
      trap 'restore_tun' EXIT
      trap 'restore_tun; exit 130' INT TERM
      chmod 0666 /dev/net/tun && note "chmod 0666 /dev/net/tun (was $TUN_MODE_SAVED) for this run"
    else
      TUN_MODE_SAVED=""
    fi
  fi
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $child_script ${child_args[*]}"
  # HUTCH_BENCH_VIA_ROOT tells the child that root started it; root's XDG_RUNTIME_DIR is never right.
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR HUTCH_BENCH_VIA_ROOT=1 bash "$child_script" "${child_args[@]}"
  rc=$?
  restore_tun
  [ -n "$BENCH_CHILD_DIR" ] && rm -rf -- "$BENCH_CHILD_DIR"
  if [ -n "$child_out" ]; then
    if [ -s "$child_out" ]; then cp -- "$child_out" "$OUT" && note "wrote $OUT"; fi
    rm -f -- "$child_out"
  fi
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


if [ "$USE_HYPERFINE" = 1 ]; then
  have hyperfine || die "--hyperfine: hyperfine is not installed (apt-get install -y hyperfine)"
fi
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/hutch-start-bench.XXXXXX") || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS" "$W/home" "$W/xdg"
chmod 0700 "$W/xdg"
# Private HOME and XDG_RUNTIME_DIR for every peer (same environment for all): podman
# needs a runtime dir and writes under HOME; hutch reads HOME/XDG_* for its defaults.
export HOME=$W/home XDG_RUNTIME_DIR=$W/xdg
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME

# ---------------------------------------------------------------- peers: a registry
PEERS=()
declare -A P_LABEL P_CMD P_STATUS P_REASON P_SAMPLES P_SETUP
add_peer() {  # ID LABEL CMD-ARGS...
  local id=$1 label=$2; shift 2
  PEERS+=("$id")
  P_LABEL[$id]=$label
  P_CMD[$id]=$(printf '%q ' "$@")
  P_CMD[$id]=${P_CMD[$id]% }
  P_STATUS[$id]=pending
  P_REASON[$id]=""
  P_SAMPLES[$id]=""
  P_SETUP[$id]=""
}
skip_peer() { P_STATUS[$1]=$2; P_REASON[$1]=$3; }   # ID STATUS(missing|skipped|failed) REASON

# The interesting line of a log: the last one that is not podman's shared-mount warning.
why() {
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' -e 'Support for .* is experimental' -e '^== ' "$1" 2>/dev/null |
    tail -n 3 | tr '\n' ' ' | sed 's/[[:space:]]*$//' | cut -c1-300
}

# ---------------------------------------------------------------- cleanup
PODMAN=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${#PODMAN[@]}" -gt 0 ]; then
    # system reset removes --root, --runroot, --tmpdir (files of subordinate IDs too)
    # and stops the rootless pause process that holds podman's user namespace.
    "${PODMAN[@]}" system reset --force >>"$LOGS/cleanup.log" 2>&1
    local pf
    for pf in "$W/podman/tmp/pause.pid" "$W/xdg/libpod/tmp/pause.pid"; do
      if [ -s "$pf" ]; then
        local pid; pid=$(cat "$pf")
        [ -n "$pid" ] && [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$(id -u)" ] && kill "$pid" 2>/dev/null
      fi
    done
  fi
  if have runc && [ -d "$W/runc-state" ]; then runc --root "$W/runc-state" delete --force hutch-bench-runc >/dev/null 2>&1; fi
  if have crun && [ -d "$W/crun-state" ]; then crun --root "$W/crun-state" delete --force hutch-bench-crun >/dev/null 2>&1; fi
  if [ "$KEEP" = 1 ]; then
    note "kept $W (logs in $LOGS)"
  else
    chmod -R u+rwX "$W" 2>/dev/null
    rm -rf -- "$W" 2>/dev/null
    if [ -e "$W" ] && [ "${#PODMAN[@]}" -gt 0 ]; then
      # Left-overs owned by subordinate IDs: remove them from inside a user namespace
      # that maps them (podman's), then once more from outside.
      "${PODMAN[@]}" unshare rm -rf -- "$W" >/dev/null 2>&1
      rm -rf -- "$W" 2>/dev/null
    fi
    [ -e "$W" ] && note "could not remove all of $W; remove it with: podman unshare rm -rf $W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the image
ROOTFS=$W/bundle/rootfs
TARBALL=$W/busybox.tar
make_rootfs() {
  local d=$ROOTFS a
  mkdir -p "$d"/{bin,etc,tmp,proc,sys,dev,root} || return 1
  cp -- "$BUSYBOX" "$d/bin/busybox" || return 1
  chmod 0755 "$d/bin/busybox"
  for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a" || return 1
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
  chmod 1777 "$d/tmp"
  chmod 0700 "$d/root"
  tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$TARBALL" . || return 1
}
make_rootfs || die "could not build the busybox rootfs in $ROOTFS"
[ -x "$ROOTFS/bin/true" ] || die "the rootfs has no /bin/true (busybox --list lacks 'true'?)"

# ---------------------------------------------------------------- hutch
if [ -z "$HUTCH" ]; then
  if have hutch; then HUTCH=$(command -v hutch); else HUTCH=$REPO_ROOT/build/cli/hutch; fi
fi
HUTCH_IMAGE=hutch-bench:latest
HUTCH_ID=""
HUTCH_VERSION=""
H=("$HUTCH" --root "$W/hutch/root" --runroot "$W/hutch/runroot")
add_peer hutch "hutch --network none" "${H[@]}" run --rm --network none "$HUTCH_IMAGE" /bin/true
if [ ! -x "$HUTCH" ]; then
  skip_peer hutch missing "not found at $HUTCH"
else
  mkdir -p "$W/hutch"
  HUTCH_VERSION=$(timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
  if HUTCH_ID=$(timeout 120 "${H[@]}" import "$TARBALL" "$HUTCH_IMAGE" 2>"$LOGS/hutch-import.log"); then
    HUTCH_ID=$(printf '%s\n' "$HUTCH_ID" | tail -n 1)
    P_SETUP[hutch]="import $HUTCH_IMAGE -> ${HUTCH_ID:-?}"
  else
    skip_peer hutch failed "import failed (rc $?): $(why "$LOGS/hutch-import.log")"
  fi
fi

# ---------------------------------------------------------------- podman
PODMAN_VERSION="" PODMAN_RUNTIME=runc PODMAN_DRIVER_USED=""
PODMAN_IMAGE=localhost/hutch-bench:latest
podman_cmd() {
  PODMAN=(podman --root "$W/podman/root" --runroot "$W/podman/runroot" --tmpdir "$W/podman/tmp"
          --storage-driver "$1" --cgroup-manager cgroupfs --events-backend file --runtime "$PODMAN_RUNTIME")
}
podman_cmd "$PODMAN_DRIVER"
add_peer podman "podman --network none" "${PODMAN[@]}" run --rm --network none "$PODMAN_IMAGE" /bin/true
add_peer podman_net "podman (default network)" "${PODMAN[@]}" run --rm "$PODMAN_IMAGE" /bin/true
if ! have podman; then
  PODMAN=()
  skip_peer podman missing "podman not installed (apt-get install -y podman)"
  skip_peer podman_net missing "podman not installed"
elif ! have "$PODMAN_RUNTIME"; then
  PODMAN=()
  skip_peer podman missing "$PODMAN_RUNTIME not installed (podman needs --runtime runc here)"
  skip_peer podman_net missing "$PODMAN_RUNTIME not installed"
else
  PODMAN_VERSION=$(podman --version 2>/dev/null)
  mkdir -p "$W/podman"
  if timeout 120 "${PODMAN[@]}" import "$TARBALL" "$PODMAN_IMAGE" >"$LOGS/podman-import.log" 2>&1; then
    PODMAN_DRIVER_USED=$PODMAN_DRIVER
  elif [ "$PODMAN_DRIVER" != vfs ]; then
    note "podman import with --storage-driver $PODMAN_DRIVER failed ($(why "$LOGS/podman-import.log")); retrying with vfs"
    "${PODMAN[@]}" system reset --force >>"$LOGS/cleanup.log" 2>&1
    podman_cmd vfs
    if timeout 120 "${PODMAN[@]}" import "$TARBALL" "$PODMAN_IMAGE" >>"$LOGS/podman-import.log" 2>&1; then
      PODMAN_DRIVER_USED=vfs
      P_CMD[podman]=$(printf '%q ' "${PODMAN[@]}" run --rm --network none "$PODMAN_IMAGE" /bin/true)
      P_CMD[podman_net]=$(printf '%q ' "${PODMAN[@]}" run --rm "$PODMAN_IMAGE" /bin/true)
    fi
  fi
  if [ -z "$PODMAN_DRIVER_USED" ]; then
    skip_peer podman failed "podman import failed: $(why "$LOGS/podman-import.log")"
    skip_peer podman_net failed "podman import failed"
  else
    P_SETUP[podman]="runtime $PODMAN_RUNTIME, storage $PODMAN_DRIVER_USED"
    P_SETUP[podman_net]="runtime $PODMAN_RUNTIME, storage $PODMAN_DRIVER_USED, network slirp4netns"
    if [ ! -c /dev/net/tun ] || [ ! -r /dev/net/tun ] || [ ! -w /dev/net/tun ]; then
      skip_peer podman_net skipped "slirp4netns cannot open /dev/net/tun (mode $(stat -c %a /dev/net/tun 2>/dev/null || echo missing)); as root, --open-tun makes it 0666 for the run"
    fi
  fi
fi

# ---------------------------------------------------------------- runc / crun: one OCI bundle
BUNDLE=$W/bundle
RUNC_VERSION="" CRUN_VERSION=""
make_bundle_config() {  # runc spec --rootless, then the edits this host needs
  ( cd "$BUNDLE" && rm -f config.json && runc spec --rootless ) || return 1
  local c=$BUNDLE/config.json
  if have jq; then
    jq '.process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = false' "$c" >"$c.new" &&
      mv "$c.new" "$c" || return 1
  else
    sed -i -e 's/^\([[:space:]]*\)"sh"$/\1"\/bin\/true"/' -e 's/"terminal": true/"terminal": false/' \
      -e 's/"readonly": true/"readonly": false/' "$c" || return 1
  fi
  grep -q '"/bin/true"' "$c" && grep -q '"terminal": false' "$c"
}
add_peer runc "runc (rootless spec)" runc --root "$W/runc-state" run --bundle "$BUNDLE" hutch-bench-runc
add_peer crun "crun (rootless spec)" crun --root "$W/crun-state" run --bundle "$BUNDLE" hutch-bench-crun
BUNDLE_OK=0
if have runc; then
  RUNC_VERSION=$(runc --version 2>/dev/null | head -n 1)
  if make_bundle_config 2>"$LOGS/runc-spec.log"; then BUNDLE_OK=1; fi
fi
if ! have runc; then
  skip_peer runc missing "runc not installed (apt-get install -y runc)"
elif [ "$BUNDLE_OK" = 0 ]; then
  skip_peer runc failed "runc spec --rootless or its edits failed: $(why "$LOGS/runc-spec.log")"
else
  P_SETUP[runc]="runc spec --rootless; args /bin/true, terminal false, readonly false"
fi
if ! have crun; then
  skip_peer crun missing "crun not installed (apt-get install -y crun)"
else
  CRUN_VERSION=$(crun --version 2>/dev/null | head -n 1)
  if [ "$BUNDLE_OK" = 0 ]; then
    skip_peer crun skipped "no OCI bundle (the config comes from runc spec --rootless)"
  else
    P_SETUP[crun]="the runc bundle as is"
  fi
fi
# Optional: crun with the hybrid layout hidden. Inside `unshare --user --map-root-user
# --mount` a tmpfs over the cgroup2 mount makes crun see plain cgroup v1. The spec's
# mapping then points at uid/gid 0 of that outer namespace. Costs one more unshare+sh.
CG2_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
if [ "$CRUN_HIDE" = 1 ]; then
  add_peer crun_hidden "crun (cgroup2 hidden)" unshare --user --map-root-user --mount sh -c \
    "mount -t tmpfs tmpfs $(printf %q "${CG2_MOUNT:-/nonexistent}") && exec crun --root $(printf %q "$W/crun-state") run --bundle $(printf %q "$W/bundle2") hutch-bench-crun"
  if ! have crun; then
    skip_peer crun_hidden missing "crun not installed"
  elif [ "$BUNDLE_OK" = 0 ]; then
    skip_peer crun_hidden skipped "no OCI bundle"
  elif [ -z "$CG2_MOUNT" ] || [ "$CG2_MOUNT" = /sys/fs/cgroup ]; then
    skip_peer crun_hidden skipped "no hybrid cgroup2 mount to hide (${CG2_MOUNT:-none})"
  else
    mkdir -p "$W/bundle2"   # same rootfs, by absolute path
    if have jq; then
      jq --arg r "$ROOTFS" '.root.path = $r | .linux.uidMappings[0].hostID = 0 | .linux.gidMappings[0].hostID = 0' \
        "$BUNDLE/config.json" >"$W/bundle2/config.json"
    else
      sed -e "s|\"path\": \"rootfs\"|\"path\": \"$ROOTFS\"|" -e 's/"hostID": [0-9]*/"hostID": 0/' \
        "$BUNDLE/config.json" >"$W/bundle2/config.json"
    fi
    P_SETUP[crun_hidden]="tmpfs over $CG2_MOUNT in a user+mount namespace; mapping hostID 0"
  fi
fi

# ---------------------------------------------------------------- the floor
add_peer floor_net "floor (+net namespace)" unshare --user --map-root-user --mount --pid --fork --uts --ipc --net \
  chroot "$ROOTFS" /bin/true
add_peer floor "floor (unshare+chroot)" unshare --user --map-root-user --mount --pid --fork --uts --ipc \
  chroot "$ROOTFS" /bin/true
if ! have unshare || ! have chroot; then
  skip_peer floor missing "unshare or chroot missing (util-linux, coreutils)"
  skip_peer floor_net missing "unshare or chroot missing"
fi

# ---------------------------------------------------------------- warm-up: each peer once
for id in "${PEERS[@]}"; do
  [ "${P_STATUS[$id]}" = pending ] || continue
  log=$LOGS/$id.log
  echo "== warm-up: ${P_CMD[$id]}" >"$log"
  eval "timeout 120 ${P_CMD[$id]}" >>"$log" 2>&1 </dev/null
  rc=$?
  if [ "$rc" -eq 0 ]; then
    P_STATUS[$id]=ok
  else
    r=$(why "$log")
    [ "$rc" -eq 124 ] && r="timed out after 120 s; $r"
    case $id in
      crun) skip_peer "$id" skipped "crun refuses this host (rc $rc): $r" ;;
      podman_net) skip_peer "$id" skipped "default network does not work here (rc $rc): $r" ;;
      *) skip_peer "$id" failed "warm-up run exited $rc: $r" ;;
    esac
  fi
done

active_ids() { local id; for id in "${PEERS[@]}"; do [ "${P_STATUS[$id]}" = ok ] && printf '%s\n' "$id"; done; }
mapfile -t ACTIVE < <(active_ids)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---------------------------------------------------------------- timed runs
if [ "$USE_HYPERFINE" = 1 ]; then
  TIMER="hyperfine $(hyperfine --version 2>/dev/null | awk '{print $2}') (peers one after another)"
  hf_shell=()
  hyperfine --help 2>/dev/null | grep -qE -- '(^|[[:space:]])-N([,[:space:]]|$)' && hf_shell=(-N)
  [ "${#hf_shell[@]}" -eq 0 ] && TIMER="$TIMER, through a shell (hyperfine subtracts its start-up)"
  for id in "${ACTIVE[@]}"; do
    j=$W/hf-$id.json
    if hyperfine "${hf_shell[@]}" --runs "$RUNS" --style none --export-json "$j" -- "${P_CMD[$id]}" \
        >>"$LOGS/$id.log" 2>&1 </dev/null; then
      # hyperfine's "times" array (seconds) -> microseconds
      P_SAMPLES[$id]=$(tr -d ' \n\t' <"$j" | sed -n 's/.*"times":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' |
        awk 'NF { printf "%d ", $1 * 1e6 + 0.5 }')
    else
      skip_peer "$id" failed "a timed run failed under hyperfine: $(why "$LOGS/$id.log")"
    fi
  done
else
  if [ -n "${EPOCHREALTIME:-}" ]; then
    TIMER="bash \$EPOCHREALTIME, peers interleaved round-robin"
    stamp() { _T=${EPOCHREALTIME//[!0-9]/}; _T=$((10#$_T)); }   # microseconds, no fork
  else
    TIMER="date +%s%N, peers interleaved round-robin"
    stamp() { _T=$(( $(date +%s%N) / 1000 )); }
  fi
  for ((r = 0; r < RUNS; r++)); do
    k=${#ACTIVE[@]}
    for ((j = 0; j < k; j++)); do
      id=${ACTIVE[(j + r) % k]}   # rotate who goes first in each round
      [ "${P_STATUS[$id]}" = ok ] || continue
      stamp; t0=$_T
      eval "${P_CMD[$id]}" >>"$LOGS/$id.log" 2>&1 </dev/null
      rc=$?
      stamp; t1=$_T
      if [ "$rc" -ne 0 ]; then
        skip_peer "$id" failed "timed run $((r + 1)) exited $rc: $(why "$LOGS/$id.log")"
        continue
      fi
      P_SAMPLES[$id]+="$((t1 - t0)) "
    done
  done
fi
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- statistics
declare -A S_MED S_P90 S_MEAN S_MIN S_MAX
for id in "${PEERS[@]}"; do
  [ "${P_STATUS[$id]}" = ok ] || continue
  read -r "S_MED[$id]" "S_P90[$id]" "S_MEAN[$id]" "S_MIN[$id]" "S_MAX[$id]" < <(
    printf '%s\n' ${P_SAMPLES[$id]} | sort -n | awk '
      { v[NR] = $1 / 1000.0; s += v[NR] }
      END {
        n = NR
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        i = int(0.9 * n); if (i < 0.9 * n) i++; if (i < 1) i = 1   # nearest rank
        printf "%.3f %.3f %.3f %.3f %.3f\n", med, v[i], s / n, v[1], v[n]
      }')
done
ratio() {  # A B -> A/B with 2 decimals, or empty
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
ref_med() { [ "${P_STATUS[$1]:-}" = ok ] && printf '%s' "${S_MED[$1]}"; }
ref_p90() { [ "${P_STATUS[$1]:-}" = ok ] && printf '%s' "${S_P90[$1]}"; }
POD_MED=$(ref_med podman) POD_P90=$(ref_p90 podman)
FLOOR_MED=$(ref_med floor) FLOOR_P90=$(ref_p90 floor)
declare -A R_PM R_FM R_PP R_FP
for id in "${PEERS[@]}"; do
  [ "${P_STATUS[$id]}" = ok ] || continue
  R_PM[$id]=$(ratio "${S_MED[$id]}" "$POD_MED")
  R_FM[$id]=$(ratio "${S_MED[$id]}" "$FLOOR_MED")
  R_PP[$id]=$(ratio "${S_P90[$id]}" "$POD_P90")
  R_FP[$id]=$(ratio "${S_P90[$id]}" "$FLOOR_P90")
done

# ---------------------------------------------------------------- the table
x() { [ -n "$1" ] && printf '%sx' "$1" || printf 'n/a'; }
KERNEL=$(uname -r)
CPUS=$(nproc 2>/dev/null || echo '?')
CG_LAYOUT=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)
CG2_CTRL=""
[ -n "$CG2_MOUNT" ] && CG2_CTRL=$(cat "$CG2_MOUNT/cgroup.controllers" 2>/dev/null)
case $CG_LAYOUT in
  cgroup2fs) CG_DESC="cgroup v2" ;;
  tmpfs) CG_DESC="cgroup v1${CG2_MOUNT:+, hybrid: cgroup2 at $CG2_MOUNT with controllers [${CG2_CTRL}]}" ;;
  *) CG_DESC="unknown ($CG_LAYOUT)" ;;
esac
{
  echo
  echo "Container start latency: <peer> ... /bin/true on one busybox rootfs"
  echo "  runs: $RUNS timed per peer after 1 warm-up; timer: $TIMER"
  echo "  host: kernel $KERNEL, $CPUS CPUs, $CG_DESC; user $ME; load $LOAD_BEFORE -> $LOAD_AFTER"
  echo "  ratios: peer / podman --network none, and peer / floor (unshare+chroot); >1 is slower"
  echo
  printf '%-26s %10s %10s %9s %9s %9s %9s  %s\n' peer "median ms" "p90 ms" "med/pod" "med/floor" "p90/pod" "p90/floor" status
  printf '%-26s %10s %10s %9s %9s %9s %9s  %s\n' "--------------------------" "----------" "----------" \
    "---------" "---------" "---------" "---------" "------"
  for id in "${PEERS[@]}"; do
    if [ "${P_STATUS[$id]}" = ok ]; then
      printf '%-26s %10s %10s %9s %9s %9s %9s  %s\n' "${P_LABEL[$id]}" "${S_MED[$id]}" "${S_P90[$id]}" \
        "$(x "${R_PM[$id]}")" "$(x "${R_FM[$id]}")" "$(x "${R_PP[$id]}")" "$(x "${R_FP[$id]}")" ok
    else
      printf '%-26s %10s %10s %9s %9s %9s %9s  %s\n' "${P_LABEL[$id]}" - - - - - - "${P_STATUS[$id]}"
    fi
  done
  echo
  for id in "${PEERS[@]}"; do
    [ "${P_STATUS[$id]}" = ok ] && continue
    case $id in
      hutch) [ "${P_STATUS[$id]}" = missing ] && echo "hutch: ${P_REASON[$id]}" || echo "hutch: ${P_STATUS[$id]}: ${P_REASON[$id]}" ;;
      crun) echo "crun: ${P_STATUS[$id]}: ${P_REASON[$id]}" ;;
      *) echo "${P_LABEL[$id]}: ${P_STATUS[$id]}: ${P_REASON[$id]}" ;;
    esac
  done
  [ -z "$POD_MED" ] && echo "note: podman --network none produced no numbers, so there are no ratios to podman"
  [ -z "$FLOOR_MED" ] && echo "note: the floor produced no numbers, so there are no ratios to the floor"
  echo "versions: ${HUTCH_VERSION:-hutch -} | ${PODMAN_VERSION:-podman -} | ${RUNC_VERSION:-runc -} | ${CRUN_VERSION:-crun -}"
  [ "$KEEP" = 1 ] && echo "logs: $LOGS"
}

# ---------------------------------------------------------------- JSON
if [ -n "$OUT" ]; then
  {
    printf '{\n'
    printf '  "schema": "hutch-start-bench/1",\n'
    printf '  "started": %s, "finished": %s,\n' "$(json_str "$T_START")" "$(json_str "$T_END")"
    printf '  "runs": %s, "warmup_runs": 1, "timer": %s,\n' "$RUNS" "$(json_str "$TIMER")"
    printf '  "command_in_container": "/bin/true",\n'
    printf '  "host": {"kernel": %s, "cpus": %s, "cgroups": %s, "user": %s, "loadavg_before": %s, "loadavg_after": %s},\n' \
      "$(json_str "$KERNEL")" "$(json_num "$CPUS")" "$(json_str "$CG_DESC")" "$(json_str "$ME")" \
      "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")"
    printf '  "versions": {"hutch": %s, "podman": %s, "runc": %s, "crun": %s},\n' "$(json_str "$HUTCH_VERSION")" \
      "$(json_str "$PODMAN_VERSION")" "$(json_str "$RUNC_VERSION")" "$(json_str "$CRUN_VERSION")"
    printf '  "references": {"podman": "podman", "floor": "floor"},\n'
    printf '  "hutch": {"path": %s, "image_id": %s},\n' "$(json_str "$HUTCH")" "$(json_str "$HUTCH_ID")"
    printf '  "peers": [\n'
    n=0
    for id in "${PEERS[@]}"; do
      [ "$n" -gt 0 ] && printf ',\n'
      n=$((n + 1))
      printf '    {"id": %s, "label": %s, "status": %s,\n' "$(json_str "$id")" "$(json_str "${P_LABEL[$id]}")" \
        "$(json_str "${P_STATUS[$id]}")"
      printf '     "command": %s,\n' "$(json_str "${P_CMD[$id]}")"
      printf '     "setup": %s, "reason": %s' "$(json_str "${P_SETUP[$id]}")" "$(json_str "${P_REASON[$id]}")"
      if [ "${P_STATUS[$id]}" = ok ]; then
        printf ',\n     "median_ms": %s, "p90_ms": %s, "mean_ms": %s, "min_ms": %s, "max_ms": %s,\n' \
          "${S_MED[$id]}" "${S_P90[$id]}" "${S_MEAN[$id]}" "${S_MIN[$id]}" "${S_MAX[$id]}"
        printf '     "ratio_median_to_podman": %s, "ratio_median_to_floor": %s, "ratio_p90_to_podman": %s, "ratio_p90_to_floor": %s,\n' \
          "$(json_num "${R_PM[$id]}")" "$(json_num "${R_FM[$id]}")" "$(json_num "${R_PP[$id]}")" "$(json_num "${R_FP[$id]}")"
        printf '     "samples_us": [%s]' "$(printf '%s\n' ${P_SAMPLES[$id]} | paste -sd, -)"
      fi
      printf '}'
    done
    printf '\n  ]\n}\n'
  } >"$OUT" || note "could not write $OUT"
  [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $OUT"
fi
[ "${#ACTIVE[@]}" -gt 0 ] || exit 1   # not a single peer ran
exit 0
