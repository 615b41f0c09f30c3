#!/usr/bin/env bash
# run_net_bench.sh - TCP throughput through the container network: hutch's own slirp network
# backend against podman with slirp4netns and podman with pasta, measured in ONE run as an
# unprivileged user on one busybox-static image, busybox nc at both ends:
#
#   host -> container   the container listens (`nc -l -p 5000`, its stdin held open, its
#                       output counted by `wc -c`) behind a published port
#                       (`-p 127.0.0.1:HP:5000`); the host sends SIZE bytes
#                       (`head -c SIZE /dev/zero | busybox nc 127.0.0.1 HP`). The clock runs
#                       from just before the host's nc starts until the container's `wc -c`
#                       line (the byte count, printed once its nc has seen the end of the
#                       stream) reaches the bench through the engine's foreground `run`.
#   container -> host   the host listens on 127.0.0.1:LP (`busybox nc -l -p LP 127.0.0.1`,
#                       stdin held open, counted by `wc -c`); the container sends SIZE bytes
#                       (`head -c SIZE /dev/zero | nc DEST LP`), DEST being the host's
#                       loopback as the network maps it: 10.0.2.2 with slirp (hutch
#                       `slirp:allow_host_loopback=true`, podman
#                       `slirp4netns:allow_host_loopback=true`), the container's own
#                       127.0.0.1 with pasta `-T LP` (pasta's splice to the host's loopback),
#                       and, with --pasta-gw, the default gateway with pasta's gateway mapping
#                       (through its tap device). The clock runs from the container's
#                       "sending" line until the host's nc has seen the end of the stream.
#   floor               host nc to host nc over the host's own loopback, no container: what
#                       busybox nc (1 KiB reads and writes) manages at most on this machine.
#
# Every transfer moves --size-mb MiB (default 1024) and checks the byte count at the
# receiving end. Rounds (default 3, -n): in each, every row moves SIZE once in each
# direction, the rows taking turns (the first one rotates); one small warm-up transfer per
# row and direction checks the path first (and records why a row cannot run). Figures are
# MiB/s (2^20 bytes per second), the median over the rounds, and the ratios hutch / row of
# those medians, all from this one run: above 1, hutch is faster. The target, reported met
# or not (this is a benchmark, not a test): hutch at least as fast as podman with
# slirp4netns, in both directions.
#
# Usage: bench/run_net_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_net_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# Host findings this script acts on (Debian 12, podman 4.3.1, passt 0.0~git20230309, runc
# 1.1.5, slirp4netns 1.2.0, kernel 6.18, no systemd; see bench/README.md):
#  * podman: --runtime runc, --cgroup-manager cgroupfs, --events-backend file, a private
#    HOME, XDG_RUNTIME_DIR and storage.conf, a --runroot of at most 50 characters (lib.sh).
#  * podman 4.3.1 has no pasta support (`--network pasta`: "unable to find network with
#    name or ID pasta"; it came with podman 4.4). The bench then does what podman 4.4 does:
#    the container gets `--network none` and the bench attaches pasta to its namespaces
#    (`pasta --config-net -t ... -u none -T ... -U none --no-map-gw PID`). A podman that
#    knows `--network pasta` is used directly.
#  * busybox nc exits as soon as its stdin ends (it half-closes, and the peer's nc quits on
#    that): both listeners get a stdin that never ends (a FIFO held open).
#  * /dev/net/tun must be usable by the user (slirp4netns, pasta and hutch's slirp open
#    it); Debian's udev makes it 0666, this VM has 0600: as root, --open-tun sets 0666 for
#    the run and restores the mode afterwards.
#  * podman's slirp4netns publishes ports with rootlessport (port_handler=rootlesskit, the
#    default): host -> container data goes through rootlessport's socket copy into the
#    namespace's loopback, not through slirp4netns. pasta splices host loopback traffic
#    into the namespace's loopback as well. container -> host goes through slirp4netns's
#    (or pasta's) TCP stack, except with pasta -T, which is a loopback splice too.
set -uo pipefail   # no -e: a failure becomes a line in the report

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

ROUNDS=${BENCH_RUNS:-3}
SIZE_MB=1024
WARMUP_MB=16
XFER_TIMEOUT=""          # seconds per transfer; default 60 + SIZE_MB / 4 (at least 4 MiB/s)
HUTCH_NET=slirp:allow_host_loopback=true
PASTA_GW=0
OPEN_TUN=0
OUT=""
JSON_OUT=""
RUN_AS=""
HUTCH=""
KEEP=0
STRICT=0
BUSYBOX=/bin/busybox
WORKDIR=""
CPORT=5000               # the port the container listens on

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   rounds: transfers per row and direction (default $ROUNDS; env
                         BENCH_RUNS)
  --size-mb N            MiB per transfer (default $SIZE_MB)
  --warmup-mb N          MiB of the untimed warm-up transfer per row and direction, which
                         checks the path first (default $WARMUP_MB; 0: none)
  --timeout S            seconds one transfer may take before it counts as failed
                         (default 60 + size-mb / 4)
  --hutch-network SPEC   hutch's --network for both directions (default $HUTCH_NET)
  --pasta-gw             add a container -> host row for pasta through its gateway mapping
                         (the tap device; slow with this pasta, see bench/README.md)
  --open-tun             as root: chmod 0666 /dev/net/tun for the run (restored after); the
                         slirp and pasta rows need it
  -o FILE                also write the report (what is printed on stdout) to FILE
  --json FILE            also write every figure and sample as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: $REPO_ROOT/build/cli/hutch when it
                         exists, else hutch on PATH)
  --strict               exit 1 when any row failed (default: only when no row produced
                         a figure)
  --busybox PATH         static busybox to build the image from, and the host's nc
                         (default $BUSYBOX)
  --workdir DIR          scratch directory (default: a new one under /tmp)
  --keep                 keep the scratch directory and the logs (the containers are
                         still removed)
  -h, --help             this text
EOF
}

# shellcheck source=lib.sh
. "$(dirname -- "$SCRIPT")/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || die "-n needs a number"; ROUNDS=$2; shift 2 ;;
    -n*) ROUNDS=${1#-n}; shift ;;
    --size-mb) [ $# -ge 2 ] || die "--size-mb needs a number"; SIZE_MB=$2; shift 2 ;;
    --size-mb=*) SIZE_MB=${1#*=}; shift ;;
    --warmup-mb) [ $# -ge 2 ] || die "--warmup-mb needs a number"; WARMUP_MB=$2; shift 2 ;;
    --warmup-mb=*) WARMUP_MB=${1#*=}; shift ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; XFER_TIMEOUT=$2; shift 2 ;;
    --timeout=*) XFER_TIMEOUT=${1#*=}; shift ;;
    --hutch-network) [ $# -ge 2 ] || die "--hutch-network needs a spec"; HUTCH_NET=$2; shift 2 ;;
    --hutch-network=*) HUTCH_NET=${1#*=}; shift ;;
    --pasta-gw) PASTA_GW=1; shift ;;
    --open-tun) OPEN_TUN=1; shift ;;
    -o) [ $# -ge 2 ] || die "-o needs a file"; OUT=$2; shift 2 ;;
    --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
    --json=*) JSON_OUT=${1#*=}; shift ;;
    --user) [ $# -ge 2 ] || die "--user needs a name"; RUN_AS=$2; shift 2 ;;
    --user=*) RUN_AS=${1#*=}; shift ;;
    --hutch) [ $# -ge 2 ] || die "--hutch needs a path"; HUTCH=$2; shift 2 ;;
    --hutch=*) HUTCH=${1#*=}; shift ;;
    --strict) STRICT=1; shift ;;
    --busybox) [ $# -ge 2 ] || die "--busybox needs a path"; BUSYBOX=$2; shift 2 ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a path"; WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum "$ROUNDS" && [ "$ROUNDS" -ge 1 ] || die "-n wants a positive integer, not '$ROUNDS'"
isnum "$SIZE_MB" && [ "$SIZE_MB" -ge 1 ] || die "--size-mb wants a positive integer, not '$SIZE_MB'"
isnum "$WARMUP_MB" || die "--warmup-mb wants a number, not '$WARMUP_MB'"
[ -z "$XFER_TIMEOUT" ] || { isnum "$XFER_TIMEOUT" && [ "$XFER_TIMEOUT" -ge 1 ]; } ||
  die "--timeout wants a positive number of seconds, not '$XFER_TIMEOUT'"
[ -n "$XFER_TIMEOUT" ] || XFER_TIMEOUT=$((60 + SIZE_MB / 4))
[[ $HUTCH_NET =~ ^[A-Za-z0-9_.:=,-]+$ ]] || die "--hutch-network: unexpected characters in '$HUTCH_NET'"

git_rev() {  # the repository's revision, +dirty when the tree has changes; empty outside git
  local rev g=(git -c safe.directory='*' -C "$REPO_ROOT")   # the repo may be another user's
  have git || return 0
  rev=$("${g[@]}" rev-parse --short HEAD 2>/dev/null) || return 0
  [ -n "$("${g[@]}" status --porcelain --untracked-files=no 2>/dev/null)" ] && rev+=+dirty
  printf '%s (%s)' "$rev" "$("${g[@]}" rev-parse --abbrev-ref HEAD 2>/dev/null)"
}

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
  child_args=(-n "$ROUNDS" --size-mb "$SIZE_MB" --warmup-mb "$WARMUP_MB" --timeout "$XFER_TIMEOUT"
              --hutch-network "$HUTCH_NET" --busybox "$BUSYBOX")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; *) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ "$PASTA_GW" = 1 ] && child_args+=(--pasta-gw)
  [ "$STRICT" = 1 ] && child_args+=(--strict)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  bench_child_begin net
  bench_child_script "$SCRIPT" "$RUN_AS"
  if [ "$OPEN_TUN" = 1 ] && [ -c /dev/net/tun ]; then
    TUN_MODE_SAVED=$(stat -c %a /dev/net/tun)
    if [ "$TUN_MODE_SAVED" != 666 ]; then
      trap 'restore_tun' EXIT
      chmod 0666 /dev/net/tun && note "chmod 0666 /dev/net/tun (was $TUN_MODE_SAVED) for this run"
    else
      TUN_MODE_SAVED=""
    fi
  fi
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $BENCH_CHILD_SCRIPT ${child_args[*]}"
  # HUTCH_BENCH_VIA_ROOT tells the child that root started it; root's XDG_RUNTIME_DIR is never
  # right. root reads the revision for the child (which may not be able to read the repository).
  # Ctrl-C reaches the child too (same terminal), which removes its containers: root waits for
  # it. (A handler, not '' : an ignored SIGINT would be inherited, and bash could not trap it in
  # the child.)
  trap ':' INT
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR -u BENCH_RUNS HUTCH_BENCH_VIA_ROOT=1 \
    HUTCH_BENCH_GIT_REV="$(git_rev)" "${child_env[@]}" bash "$BENCH_CHILD_SCRIPT" "${child_args[@]}"
  rc=$?
  restore_tun
  [ -n "$BENCH_CHILD_DIR" ] && rm -rf -- "$BENCH_CHILD_DIR"
  bench_child_end
  exit "$rc"
fi

# ---------------------------------------------------------------- from here on: the unprivileged user
ME=$(id -un)
if [ -n "$RUN_AS" ] && [ "$RUN_AS" != "$ME" ]; then
  die "--user $RUN_AS needs root to switch users; you are $ME (run it as $RUN_AS, or drop --user)"
fi
[ "$OPEN_TUN" = 1 ] && die "--open-tun needs root (it changes the mode of /dev/net/tun)"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH
export LC_ALL=C

[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (\$EPOCHREALTIME, the fork-free timer)"
for t in head timeout mkfifo awk; do have "$t" || die "$t is missing (coreutils, gawk/mawk)"; done
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi
"$BUSYBOX" nc --help >/dev/null 2>&1 || "$BUSYBOX" --list 2>/dev/null | grep -qx nc ||
  die "$BUSYBOX has no nc applet"
MAKE_ROOTFS=${HUTCH_BENCH_MAKE_ROOTFS:-$REPO_ROOT/scripts/make-busybox-rootfs.sh}
[ -r "$MAKE_ROOTFS" ] || die "cannot read $MAKE_ROOTFS"
if [ -z "$HUTCH" ]; then
  if [ -x "$REPO_ROOT/build/cli/hutch" ]; then HUTCH=$REPO_ROOT/build/cli/hutch
  elif have hutch; then HUTCH=$(command -v hutch)
  else HUTCH=$REPO_ROOT/build/cli/hutch; fi
fi
GIT_REV=${HUTCH_BENCH_GIT_REV:-$(git_rev)}

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d /tmp/hutch-net-bench.XXXXXX) || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS"
bench_private_env "$W"            # HOME, XDG_RUNTIME_DIR, storage.conf, RB
why_no_podman=$(bench_podman_missing "$RB/p/run")

# The report's stdout and stderr, kept for the traps (a Ctrl-C lands while some command runs
# with its output redirected, and the trap runs in that context), and HOLD: a FIFO opened for
# reading and writing, the stdin of every listening nc, which therefore never ends (busybox nc
# quits when its stdin ends). Engine commands get none of these: hutch's monitor keeps the
# descriptors it inherits.
exec {SAVED_OUT}>&1 {SAVED_ERR}>&2
mkfifo "$W/hold" || die "mkfifo $W/hold failed"
exec {HOLD}<>"$W/hold"
RFD=""                   # the read end of the running container's output, while there is one
nofd() {
  if [ -n "$RFD" ]; then "$@" {SAVED_OUT}>&- {SAVED_ERR}>&- {HOLD}>&- {RFD}<&-
  else "$@" {SAVED_OUT}>&- {SAVED_ERR}>&- {HOLD}>&-; fi
}
# For `bgexec CMD... &`: the background subshell becomes CMD, so $! is CMD's own PID (a
# function run with & would leave CMD a child of a subshell, out of reach of kill $!).
bgexec() {
  if [ -n "$RFD" ]; then exec "$@" {SAVED_OUT}>&- {SAVED_ERR}>&- {HOLD}>&- {RFD}<&-
  else exec "$@" {SAVED_OUT}>&- {SAVED_ERR}>&- {HOLD}>&-; fi
}
close_rfd() { [ -n "$RFD" ] && exec {RFD}<&-; RFD=""; }
restore_fds() { exec 1>&"$SAVED_OUT" 2>&"$SAVED_ERR"; }

first_err() {  # LOG: its first line that is not known-harmless noise
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' -e '^== ' "$1" 2>/dev/null | head -n 1 | cut -c1-300
}
last_err() {  # LOG: its last two lines that are not noise
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 2 | tr '\n' ' ' | cut -c1-300
}

# ---------------------------------------------------------------- rows
# h hutch, s podman slirp4netns, t podman + pasta (-T for container -> host), g podman + pasta
# through the gateway (--pasta-gw, container -> host only), f the floor (no container).
ROWS=(h s t)
[ "$PASTA_GW" = 1 ] && ROWS+=(g)
ROWS+=(f)
DIRS=(in out)
declare -A DIR_DESC=([in]="host -> container" [out]="container -> host")
declare -A R_NAME=([h]="hutch $HUTCH_NET" [s]="podman slirp4netns" [t]="podman + pasta"
                   [g]="podman + pasta, gateway" [f]="host loopback (floor)")
declare -A R_LABEL=([h]=hutch [s]=slirp4netns [t]=pasta [g]="pasta, gateway" [f]=floor)
declare -A R_STATUS R_REASON      # per row,dir: ok / missing / skipped / FAILED, and why
for r in "${ROWS[@]}"; do for d in "${DIRS[@]}"; do R_STATUS[$r,$d]=ok R_REASON[$r,$d]=""; done; done
R_STATUS[g,in]=n/a R_REASON[g,in]="same path as podman + pasta"
row_off() {  # ROW STATUS REASON: in both directions (where the row applies)
  local d
  for d in "${DIRS[@]}"; do [ "${R_STATUS[$1,$d]}" = ok ] && R_STATUS[$1,$d]=$2 R_REASON[$1,$d]=$3; done
  return 0
}

H=("$HUTCH" --root "$W/h/root" --runroot "$RB/h")
bench_podman_cmd "$W/p/root" "$RB/p/run" "$RB/p/tmp"
P=("${BENCH_PODMAN[@]}")
IMAGE=hutch-bench
HIMG=$IMAGE PIMG=localhost/$IMAGE:latest

TUN_MODE=$(stat -c %a /dev/net/tun 2>/dev/null || echo missing)
if ! [ -r /dev/net/tun ] || ! [ -w /dev/net/tun ]; then
  why_tun="/dev/net/tun is not usable by $ME (mode $TUN_MODE); as root, --open-tun makes it 0666 for the run"
  row_off h skipped "$why_tun"; row_off s skipped "$why_tun"; row_off t skipped "$why_tun"; row_off g skipped "$why_tun"
fi
if [ ! -x "$HUTCH" ]; then
  row_off h missing "hutch not found at $HUTCH (build it, or pass --hutch)"
fi
if [ -n "$why_no_podman" ]; then
  row_off s missing "$why_no_podman"; row_off t missing "$why_no_podman"; row_off g missing "$why_no_podman"
fi
have slirp4netns || row_off s missing "slirp4netns is not installed (apt-get install -y slirp4netns)"
if ! have pasta; then
  row_off t missing "pasta is not installed (apt-get install -y passt)"; row_off g missing "pasta is not installed (apt-get install -y passt)"
fi
HUTCH_VERSION=$([ -x "$HUTCH" ] && timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
PODMAN_VERSION=$(podman --version 2>/dev/null)
RUNC_VERSION=$(runc --version 2>/dev/null | head -n 1)
SLIRP_VERSION=$(slirp4netns --version 2>/dev/null | head -n 1)
PASTA_VERSION=$(dpkg-query -W -f '${Version}' passt 2>/dev/null || pasta --version 2>/dev/null | head -n 1)
PASTA_MODE=""            # native (podman --network pasta) or attached (by the bench)
PASTA_WHY=""

# ---------------------------------------------------------------- cleanup (also on Ctrl-C)
IMPORTED_H=0 IMPORTED_P=0
PIDS=()                  # background processes of the transfer in progress
CUR_CTR=""               # ENGINE NAME of the container of the transfer in progress
eng() { local e=$1; shift; if [ "$e" = h ]; then nofd "${H[@]}" "$@"; else nofd "${P[@]}" "$@"; fi; }
rmf() {  # ENGINE NAMES...: rm -f (podman: -t 0, its rm -f waits for the stop timeout)
  local e=$1; shift
  if [ "$e" = h ]; then nofd timeout -k 5 120 "${H[@]}" rm -f "$@"; else nofd timeout -k 5 120 "${P[@]}" rm -f -t 0 "$@"; fi
}
remove_all() {  # ENGINE: rm -f every container of the engine's store
  local e=$1 ids
  mapfile -t ids < <(eng "$e" ps -a -q --no-trunc 2>>"$LOGS/cleanup.log")
  [ "${#ids[@]}" -gt 0 ] || return 0
  rmf "$e" "${ids[@]}" >>"$LOGS/cleanup.log" 2>&1
}
kill_hutch_monitors() {  # monitors of this store that outlived rm -f (each checked to be ours)
  local f pid me
  me=$(id -u)
  for f in "$W"/h/root/containers/*/state.json; do
    [ -f "$f" ] || continue
    pid=$(sed -n 's/.*"monitor_pid":\([0-9]*\).*/\1/p' "$f")
    [ -n "$pid" ] && [ "$pid" != 0 ] || continue
    [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = "$me" ] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$W/h/root" || continue
    note "killing hutch monitor $pid, left over after rm -f ($f)"
    kill -KILL "$pid" 2>/dev/null
  done
}
stop_xfer() {  # ends what a transfer left running: its container, nc processes, pasta
  local p
  if [ -n "$CUR_CTR" ]; then
    # shellcheck disable=SC2086
    rmf $CUR_CTR >>"$LOGS/cleanup.log" 2>&1
    CUR_CTR=""
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  PIDS=()
  return 0
}
cleanup() {
  local rc=$? t
  trap - EXIT INT TERM
  restore_fds
  stop_xfer
  exec {HOLD}>&-
  if [ "$IMPORTED_H" = 1 ]; then
    remove_all h
    kill_hutch_monitors
  fi
  [ "$IMPORTED_P" = 1 ] && remove_all p
  [ -z "$why_no_podman" ] && bench_podman_reset "$RB/p/tmp" "$LOGS/cleanup.log" "${P[@]}"
  if [ "$KEEP" = 1 ]; then
    [ "$RB" != "$W/run" ] && note "kept $RB (run-time state)"
    note "kept $W (logs in $LOGS); remove it with: $HUTCH unshare rm -rf $W"
    exit "$rc"
  fi
  # Layer and rootfs files belong to subordinate IDs: remove them as uid 0 of hutch's namespace.
  if [ -x "$HUTCH" ] && { [ -e "$W/h" ] || [ -e "$RB/h" ]; }; then
    timeout 600 "${H[@]}" unshare rm -rf -- "$W/h" "$RB/h" >>"$LOGS/cleanup.log" 2>&1
  fi
  if [ -e "$W/p" ] && [ -z "$why_no_podman" ]; then
    timeout 600 "${P[@]}" unshare rm -rf -- "$W/p" >>"$LOGS/cleanup.log" 2>&1
    bench_podman_reset "$RB/p/tmp" "$LOGS/cleanup.log" "${P[@]}"
  fi
  [ "$RB" != "$W/run" ] && rm -rf -- "$RB" 2>/dev/null
  chmod -R u+rwX "$W" 2>/dev/null
  rm -rf -- "$W" 2>/dev/null
  if [ -e "$W" ]; then
    t=$(mktemp -d /tmp/hutch-net-bench-rm.XXXXXX) || t=""
    [ -n "$t" ] && [ -x "$HUTCH" ] && "$HUTCH" --root "$t/root" --runroot "$t/run" unshare rm -rf -- "$W" "$t/root" >/dev/null 2>&1
    [ -n "$t" ] && rm -rf -- "$t" 2>/dev/null
    rm -rf -- "$W" 2>/dev/null
    [ -e "$W" ] && note "could not remove all of $W; remove it with: $HUTCH unshare rm -rf $W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'restore_fds; note "interrupted: removing the containers"; exit 130' INT TERM

# ---------------------------------------------------------------- the image, in both stores
TARBALL=$W/busybox.tar
BUSYBOX="$BUSYBOX" sh "$MAKE_ROOTFS" "$TARBALL" >"$LOGS/make-rootfs.log" 2>&1 ||
  die "could not build the busybox image: $(first_err "$LOGS/make-rootfs.log")"
mkdir -p "$W/h" "$W/p"
if [ "${R_STATUS[h,in]}" != missing ]; then
  if timeout 120 "${H[@]}" import "$TARBALL" "$HIMG" >"$LOGS/hutch-import.log" 2>&1 {HOLD}>&-; then
    IMPORTED_H=1
  else
    row_off h FAILED "hutch import failed: $(first_err "$LOGS/hutch-import.log")"
  fi
fi
if [ -z "$why_no_podman" ]; then
  if timeout 120 "${P[@]}" import "$TARBALL" "$IMAGE" >"$LOGS/podman-import.log" 2>&1 {HOLD}>&-; then
    IMPORTED_P=1
  else
    why="podman import failed: $(first_err "$LOGS/podman-import.log")"
    row_off s FAILED "$why"; row_off t FAILED "$why"; row_off g FAILED "$why"
  fi
fi
# pasta: podman's own --network pasta when it has one, else attached by the bench
if [ "${R_STATUS[t,out]}" = ok ]; then
  if timeout 60 "${P[@]}" run --rm --network pasta "$PIMG" /bin/true >"$LOGS/podman-pasta-probe.log" 2>&1 </dev/null {HOLD}>&-; then
    PASTA_MODE=native
  else
    PASTA_MODE=attached
    PASTA_WHY="$(podman --version 2>/dev/null | sed 's/^podman version /podman /') cannot run --network pasta ($(first_err "$LOGS/podman-pasta-probe.log")): the bench attaches pasta to a --network none container, as podman 4.4 and later do"
    note "$PASTA_WHY"
  fi
fi

# ---------------------------------------------------------------- one transfer
SIZE=$((SIZE_MB * 1048576))
USED_PORTS=" "
port_busy() {  # PORT: 0 if any socket of the host's network uses it
  local hex
  printf -v hex ':%04X ' "$1"
  grep -qF -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() {  # -> FP: a TCP port nothing on the host uses, and not used before in this run
  local i
  for ((i = 0; i < 200; i++)); do
    FP=$((20000 + RANDOM % 12000))
    case $USED_PORTS in *" $FP "*) continue ;; esac
    port_busy "$FP" || { USED_PORTS+="$FP "; return 0; }
  done
  return 1
}
host_listening() {  # PORT: 0 once a socket of the host listens on it (127.0.0.1 or any)
  local hex
  printf -v hex '%04X' "$1"
  grep -qE -- "^ *[0-9]+: (0100007F|00000000|0{32}|0{24}FFFF0000(0100007F|00000000)):$hex [0-9A-F]+:0000 0A " \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
wait_host_listening() {  # PORT SECONDS
  local i n=$(($2 * 50))
  for ((i = 0; i < n; i++)); do host_listening "$1" && return 0; sleep 0.02; done
  return 1
}
# The container's side (busybox sh). RECV: listen on CPORT, stdin a FIFO held open, count the
# bytes; say "listening" once the socket is in LISTEN state, then print the count, then "end".
RECV_SH='mkfifo /tmp/hold && exec 3<>/tmp/hold || { echo "error: mkfifo failed"; exit 1; }
nc -l -p "$1" <&3 | wc -c &
i=0
while ! grep -qE ":$2 [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
  i=$((i + 1)); [ "$i" -gt 1000 ] && { echo "error: nc does not listen on $1 after 10 s"; exit 1; }
  usleep 10000
done
echo listening
wait
echo end'
# SEND: wait for a default route (pasta attached later) and, for a loopback destination, for
# the port to be forwarded; say "sending DEST", send SIZE bytes, say "sent RC".
SEND_SH='i=0
echo waiting-net
while ! ip route 2>/dev/null | grep -q "^default"; do
  i=$((i + 1)); [ "$i" -gt 1000 ] && { echo "error: no default route after 10 s"; exit 1; }
  usleep 10000
done
dest=$1
[ "$dest" = gw ] && dest=$(ip route | awk "/^default/ { print \$3; exit }")
if [ "$dest" = 127.0.0.1 ]; then
  while ! grep -qE ":$4 [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
    i=$((i + 1)); [ "$i" -gt 2000 ] && { echo "error: nothing listens on $dest:$2 after 10 s"; exit 1; }
    usleep 10000
  done
fi
echo "sending $dest"
head -c "$3" /dev/zero | nc "$dest" "$2"
echo "sent $?"'

CTR_LOG="" PART="" LINE=""
ctr_expect() {  # REGEX DEADLINE_US: reads the container's lines until one matches (-> LINE);
                # 0 matched, 1 deadline, 2 end of output, 3 the container reported an error
  local l rc
  while :; do
    bench_stamp
    ((_T >= $2)) && return 1
    l=""
    IFS= read -r -t 1 -u "$RFD" l; rc=$?
    if ((rc == 0)); then
      l=$PART$l PART=""
      printf '%s\n' "$l" >>"$CTR_LOG"
      [[ $l =~ $1 ]] && { LINE=$l; return 0; }
      [[ $l == error:* ]] && { LINE=$l; return 3; }
    elif ((rc > 128)); then
      PART+=$l
    else
      [ -n "$PART" ] && printf '%s\n' "$PART" >>"$CTR_LOG"
      return 2
    fi
  done
}
pasta_attach() {  # ENGINE-NAME PASTA-ARGS...: pasta into the namespaces of the container's PID 1
  local name=$1 pid
  shift
  pid=$(nofd timeout 30 "${P[@]}" inspect --format '{{.State.Pid}}' "$name" 2>>"$XF_LOG")
  [[ $pid =~ ^[1-9][0-9]*$ ]] || { XF_ERR="podman inspect gave no PID for $name"; return 1; }
  bgexec pasta --config-net -q -f -u none -U none "$@" "$pid" >>"$LOGS/pasta.log" 2>&1 </dev/null &
  PIDS+=("$!")
  return 0
}

wait_file() {  # FILE SECONDS: until FILE is not empty (the listener's end stamp)
  local i n=$(($2 * 50))
  for ((i = 0; i < n; i++)); do [ -s "$1" ] && return 0; sleep 0.02; done
  return 1
}
# The host's listener: busybox nc on 127.0.0.1:PORT, stdin HOLD, its bytes counted into
# W/rx.n; once it exits, its status and the time into W/rx.t (stamped in the subshell, at once).
host_listen() {  # PORT
  rm -f -- "$W/rx.n" "$W/rx.t" "$W/rx.pid"
  ( "$BUSYBOX" nc -l -p "$1" 127.0.0.1 <&"$HOLD" > >(wc -c >"$W/rx.n") 2>>"$XF_LOG" {HOLD}>&- &
    echo "$!" >"$W/rx.pid"; wait "$!"; echo "$? $EPOCHREALTIME" >"$W/rx.t" ) &
  PIDS+=("$!")
  wait_host_listening "$1" 10 || return 1
  PIDS+=("$(cat "$W/rx.pid")")
}
host_listen_end() {  # -> t1 (us), n (bytes); fail set when the listener did not end well
  local lrc
  wait_file "$W/rx.t" 30 || { fail="the host's listening nc did not finish"; return 1; }
  read -r lrc t1 <"$W/rx.t"
  t1=${t1//[!0-9]/}
  n=$(tr -d ' ' <"$W/rx.n" 2>/dev/null)
  [ "$lrc" = 0 ] || { fail="the host's listening nc exited $lrc: $(last_err "$XF_LOG")"; return 1; }
  [ -n "$t1" ] || { fail="the host's listening nc left no time"; return 1; }
  t1=$((10#$t1))
}

XF_SEQ=0
# ROW DIR BYTES WARMUP(0/1) -> XF_SECS, XF_RATE (MiB/s); XF_ERR and 1 on failure
xfer() {
  local r=$1 d=$2 bytes=$3 warm=$4 name e net=() pa=() dest hp t0 t1 n rc deadline
  local fifo=$W/ctr.out cmd=() sender_rc fail="" sp
  XF_SECS="" XF_RATE="" XF_ERR=""
  XF_SEQ=$((XF_SEQ + 1))
  name=nb-$r-$d-$XF_SEQ
  XF_LOG=$LOGS/$r-$d.log
  CTR_LOG=$LOGS/$r-$d.ctr.log
  printf '== %s transfer %s: %s bytes\n' "$( [ "$warm" = 1 ] && echo warm-up || echo timed)" "$XF_SEQ" "$bytes" >>"$XF_LOG"
  printf '== %s\n' "$name" >>"$CTR_LOG"
  free_port || { XF_ERR="no free port"; return 1; }
  hp=$FP
  bench_stamp; deadline=$((_T + XFER_TIMEOUT * 1000000))

  # the floor: host nc to host nc
  if [ "$r" = f ]; then
    host_listen "$hp" || { XF_ERR="the host's nc does not listen on $hp"; stop_xfer; return 1; }
    bench_stamp; t0=$_T
    head -c "$bytes" /dev/zero | bgexec timeout -k 2 "$XFER_TIMEOUT" "$BUSYBOX" nc 127.0.0.1 "$hp" 2>>"$XF_LOG" &
    sp=$!
    PIDS+=("$sp")
    wait "$sp"; sender_rc=$?
    [ "$sender_rc" -eq 0 ] || fail="the host's sending nc exited $sender_rc: $(last_err "$XF_LOG")"
    [ -n "$fail" ] || host_listen_end
    stop_xfer
    [ -z "$fail" ] || { XF_ERR=$fail; return 1; }
    [ "$n" = "$bytes" ] || { XF_ERR="received ${n:-no} bytes, not $bytes"; return 1; }
    XF_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    XF_RATE=$(awk -v n="$bytes" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / 1048576 / ((b - a) / 1e6) }')
    return 0
  fi

  # the container's network and command
  e=p
  case $r in
    h) e=h; net=(--network "$HUTCH_NET"); dest=10.0.2.2 ;;
    s) net=(--network slirp4netns:allow_host_loopback=true); dest=10.0.2.2 ;;
    t|g)
      if [ "$PASTA_MODE" = native ]; then
        if [ "$d" = out ] && [ "$r" = t ]; then net=(--network "pasta:-T,$hp"); dest=127.0.0.1
        elif [ "$r" = g ]; then net=(--network pasta:--map-gw); dest=gw
        else net=(--network pasta); fi
      else
        net=(--network none)
        if [ "$d" = in ]; then pa=(-t "127.0.0.1/$hp:$CPORT" -T none --no-map-gw)
        elif [ "$r" = t ]; then pa=(-t none -T "$hp" --no-map-gw); dest=127.0.0.1
        else pa=(-t none -T none); dest=gw; fi
      fi ;;
  esac
  if [ "$d" = in ] && { [ "$r" != t ] || [ "$PASTA_MODE" = native ]; }; then
    net+=(-p "127.0.0.1:$hp:$CPORT")
  fi
  if [ "$e" = h ]; then cmd=("${H[@]}" run --rm --name "$name" "${net[@]}" "$HIMG")
  else cmd=("${P[@]}" run --rm --name "$name" "${net[@]}" "$PIMG"); fi
  local cport_hex hp_hex
  printf -v cport_hex '%04X' "$CPORT"
  printf -v hp_hex '%04X' "$hp"
  if [ "$d" = in ]; then cmd+=(sh -c "$RECV_SH" sh "$CPORT" "$cport_hex")
  else cmd+=(sh -c "$SEND_SH" sh "$dest" "$hp" "$bytes" "$hp_hex"); fi
  printf '$ %s\n' "$(printf '%q ' "${cmd[@]:0:${#cmd[@]}-2}")" >>"$XF_LOG"

  if [ "$d" = out ]; then   # the host listens first
    host_listen "$hp" || { XF_ERR="the host's nc does not listen on $hp"; stop_xfer; return 1; }
  fi
  rm -f -- "$fifo"; mkfifo "$fifo" || { XF_ERR="mkfifo failed"; stop_xfer; return 1; }
  local errf=$W/run.err    # the run's stderr (the engine's and the container's), per transfer
  : >"$errf"
  CUR_CTR="$e $name"
  bgexec timeout -k 5 "$((XFER_TIMEOUT + 60))" "${cmd[@]}" >"$fifo" 2>"$errf" </dev/null &
  local rp=$!
  PIDS+=("$rp")
  exec {RFD}<"$fifo"
  PART=""
  if [ "$d" = in ]; then
    ctr_expect '^listening$' "$deadline"; rc=$?
    if [ "$rc" -ne 0 ]; then
      fail="the container did not start listening"
    else
      if [ "${#pa[@]}" -gt 0 ]; then pasta_attach "$name" "${pa[@]}" || fail=$XF_ERR; fi
      if [ -z "$fail" ] && [ "$warm" = 1 ] && [ "${#pa[@]}" -eq 0 ]; then   # the published port, as the engine lists it
        eng "$e" port "$name" >"$W/port.out" 2>>"$XF_LOG"
        printf 'port: %s\n' "$(tr '\n' ' ' <"$W/port.out")" >>"$XF_LOG"
        grep -qF -- "127.0.0.1:$hp" "$W/port.out" || PORT_PROBLEM[$r]="\`port $name\` does not list 127.0.0.1:$hp: $(tr '\n' ' ' <"$W/port.out" | cut -c1-200)"
      fi
      if [ -z "$fail" ] && ! wait_host_listening "$hp" 10; then fail="nothing listens on the host's 127.0.0.1:$hp"; fi
    fi
    if [ -z "$fail" ]; then
      bench_stamp; t0=$_T
      head -c "$bytes" /dev/zero | bgexec timeout -k 2 "$XFER_TIMEOUT" "$BUSYBOX" nc 127.0.0.1 "$hp" 2>>"$XF_LOG" &
      sp=$!
      PIDS+=("$sp")
      ctr_expect '^ *[0-9]+$' "$deadline"; rc=$?
      bench_stamp; t1=$_T
      if [ "$rc" -eq 0 ]; then
        n=${LINE// /}
        wait "$sp"; sender_rc=$?
        [ "$sender_rc" -eq 0 ] || fail="the host's sending nc exited $sender_rc"
        ctr_expect '^end$' "$((t1 + 30000000))" || fail="the container did not end"
      else
        fail="the container did not report a byte count"
      fi
    fi
  else
    ctr_expect '^waiting-net$' "$deadline"; rc=$?
    if [ "$rc" -ne 0 ]; then
      fail="the container did not start"
    elif [ "${#pa[@]}" -gt 0 ]; then
      pasta_attach "$name" "${pa[@]}" || fail=$XF_ERR
    fi
    if [ -z "$fail" ]; then
      ctr_expect '^sending ' "$deadline"; rc=$?
      bench_stamp; t0=$_T
      if [ "$rc" -ne 0 ]; then
        fail="the container did not start sending"
      else
        printf 'destination: %s\n' "${LINE#sending }" >>"$XF_LOG"
        ctr_expect '^sent ' "$deadline"; rc=$?
        if [ "$rc" -ne 0 ]; then
          fail="the container's nc did not finish"
        elif [ "${LINE#sent }" != 0 ]; then
          fail="the container's nc exited ${LINE#sent }: $(grep -m 1 '^nc:' "$errf" || first_err "$errf")"
        else
          host_listen_end
        fi
      fi
    fi
  fi
  if [ -n "$fail" ]; then
    case $rc in
      1) fail+=" within ${XFER_TIMEOUT} s" ;;
      2) fail+=" (the engine's run ended: $(last_err "$errf"))" ;;
      3) fail+=" ($LINE)" ;;
    esac
    XF_ERR=$fail
    close_rfd
    stop_xfer
    cat "$errf" >>"$XF_LOG"
    return 1
  fi
  # the container exits by itself; wait for its run command (removal included, not timed)
  local i
  for ((i = 0; i < 600; i++)); do kill -0 "$rp" 2>/dev/null || break; sleep 0.05; done
  close_rfd
  if kill -0 "$rp" 2>/dev/null; then
    note "${R_NAME[$r]}: the run command did not return 30 s after the transfer; removing $name"
  else
    wait "$rp"; rc=$?
    [ "$rc" -ne 0 ] && printf 'run exited %s after the transfer\n' "$rc" >>"$XF_LOG"
    CUR_CTR=""              # run --rm removed it
  fi
  stop_xfer
  cat "$errf" >>"$XF_LOG"
  [ "$n" = "$bytes" ] || { XF_ERR="received ${n:-no} bytes, not $bytes"; return 1; }
  XF_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
  XF_RATE=$(awk -v n="$bytes" -v a="$t0" -v b="$t1" 'BEGIN { if (b > a) printf "%.1f", n / 1048576 / ((b - a) / 1e6) }')
  [ -n "$XF_RATE" ] || { XF_ERR="the clock did not advance"; return 1; }
  return 0
}

# ---------------------------------------------------------------- warm-up: every path once
declare -A PORT_PROBLEM
PROBLEMS=()
problem() { PROBLEMS+=("$*"); note "$*"; }
if [ "$WARMUP_MB" -gt 0 ]; then
  for d in "${DIRS[@]}"; do
    for r in "${ROWS[@]}"; do
      [ "${R_STATUS[$r,$d]}" = ok ] || continue
      note "warm-up: ${R_NAME[$r]}, ${DIR_DESC[$d]}, $WARMUP_MB MiB"
      if xfer "$r" "$d" "$((WARMUP_MB * 1048576))" 1; then
        note "  $XF_RATE MiB/s"
      else
        R_STATUS[$r,$d]=FAILED R_REASON[$r,$d]="warm-up: $XF_ERR"
        note "  failed: $XF_ERR"
      fi
    done
  done
fi
for r in "${!PORT_PROBLEM[@]}"; do problem "${R_NAME[$r]}: ${PORT_PROBLEM[$r]}"; done

# ---------------------------------------------------------------- the rounds
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_sample_load
declare -A S_RATE S_SECS S_FAIL S_FIRST
for r in "${ROWS[@]}"; do for d in "${DIRS[@]}"; do S_RATE[$r,$d]="" S_SECS[$r,$d]="" S_FAIL[$r,$d]=0; done; done
for ((k = 0; k < ROUNDS; k++)); do
  for d in "${DIRS[@]}"; do
    nr=${#ROWS[@]}
    for ((j = 0; j < nr; j++)); do
      r=${ROWS[(j + k) % nr]}
      [ "${R_STATUS[$r,$d]}" = ok ] || continue
      bench_sample_load
      note "round $((k + 1))/$ROUNDS: ${R_NAME[$r]}, ${DIR_DESC[$d]}, $SIZE_MB MiB"
      if xfer "$r" "$d" "$SIZE" 0; then
        S_RATE[$r,$d]+="$XF_RATE " S_SECS[$r,$d]+="$XF_SECS "
        note "  $XF_RATE MiB/s ($XF_SECS s)"
      else
        S_FAIL[$r,$d]=$((S_FAIL[$r,$d] + 1))
        [ -z "${S_FIRST[$r,$d]:-}" ] && S_FIRST[$r,$d]=$XF_ERR
        note "  failed: $XF_ERR"
      fi
      bench_sample_load
    done
  done
done
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- figures
declare -A M_MED M_MIN M_MAX M_SEC
for d in "${DIRS[@]}"; do
  for r in "${ROWS[@]}"; do
    if [ -n "${S_RATE[$r,$d]}" ]; then
      read -r "M_MED[$r,$d]" _ _ "M_MIN[$r,$d]" "M_MAX[$r,$d]" < <(bench_stats "${S_RATE[$r,$d]}" 1)
      read -r "M_SEC[$r,$d]" _ < <(bench_stats "${S_SECS[$r,$d]}" 1)
      M_MED[$r,$d]=$(awk -v v="${M_MED[$r,$d]}" 'BEGIN { printf "%.1f", v }')
      M_MIN[$r,$d]=$(awk -v v="${M_MIN[$r,$d]}" 'BEGIN { printf "%.1f", v }')
      M_MAX[$r,$d]=$(awk -v v="${M_MAX[$r,$d]}" 'BEGIN { printf "%.1f", v }')
    elif [ "${R_STATUS[$r,$d]}" = ok ]; then
      R_STATUS[$r,$d]=FAILED R_REASON[$r,$d]="every timed transfer failed; first: ${S_FIRST[$r,$d]:-?}"
    fi
  done
done
ratio_to() {  # DIR ROW -> hutch / ROW of the medians, or nothing
  bench_ratio "${M_MED[h,$1]:-}" "${M_MED[$2,$1]:-}"
}

# ---------------------------------------------------------------- the report
x() { [ -n "$1" ] && printf '%sx' "$1" || printf -- '-'; }
row_path() {  # ROW DIR -> what the row runs, in words
  case $1,$2 in
    h,in) echo "hutch run --network $HUTCH_NET -p 127.0.0.1:HP:$CPORT" ;;
    h,out) echo "hutch run --network $HUTCH_NET; the container sends to 10.0.2.2" ;;
    s,in) echo "podman run --network slirp4netns:allow_host_loopback=true -p 127.0.0.1:HP:$CPORT (rootlessport)" ;;
    s,out) echo "podman run --network slirp4netns:allow_host_loopback=true; the container sends to 10.0.2.2" ;;
    t,in) if [ "$PASTA_MODE" = native ]; then echo "podman run --network pasta -p 127.0.0.1:HP:$CPORT"
          else echo "podman run --network none + pasta --config-net -t 127.0.0.1/HP:$CPORT PID (attached by the bench)"; fi ;;
    t,out) if [ "$PASTA_MODE" = native ]; then echo "podman run --network pasta:-T,LP; the container sends to its 127.0.0.1:LP"
           else echo "podman run --network none + pasta --config-net -T LP PID; the container sends to its 127.0.0.1:LP"; fi ;;
    g,out) if [ "$PASTA_MODE" = native ]; then echo "podman run --network pasta:--map-gw; the container sends to its default gateway"
           else echo "podman run --network none + pasta --config-net PID (gateway mapped); the container sends to its default gateway"; fi ;;
    f,*) echo "busybox nc -l -p P 127.0.0.1 on the host, fed by busybox nc 127.0.0.1 P on the host" ;;
  esac
}
report() {
  local d r st
  echo
  echo "Network throughput: TCP through the container network, as $ME, busybox nc at both ends, $SIZE_MB MiB per transfer"
  echo "  host: $(bench_host_desc); /dev/net/tun mode $TUN_MODE; load $LOAD_BEFORE -> $LOAD_AFTER (1-minute max $BENCH_LOAD_MAX); $T_START .. $T_END"
  echo "  hutch: $HUTCH (${HUTCH_VERSION:-?}); bench revision ${GIT_REV:-?}"
  echo "  podman: ${PODMAN_VERSION:-?}, --runtime runc (${RUNC_VERSION:-?}), cgroupfs, file events; ${SLIRP_VERSION:-slirp4netns ?}; passt/pasta ${PASTA_VERSION:-?} (${PASTA_MODE:-not run})"
  echo "  rounds: $ROUNDS per row and direction, the rows taking turns (the first one rotates), after one $WARMUP_MB MiB warm-up transfer each"
  echo "  MiB/s: 2^20 bytes per second, the median over the rounds; ratios: hutch / that row, of the medians (>1: hutch is faster)"
  if [[ $(nproc 2>/dev/null) =~ ^[0-9]+$ ]] && bench_dec_gt "$BENCH_LOAD_MAX" "$(nproc)"; then
    echo "  WARNING: the machine was busy (1-minute load up to $BENCH_LOAD_MAX on $(nproc) CPUs): the figures are rough"
  fi
  for d in "${DIRS[@]}"; do
    echo
    if [ "$d" = in ]; then
      echo "host -> container: the host's nc sends to a published port, the container's nc -l counts"
    else
      echo "container -> host: the container's nc sends to a listener on the host's 127.0.0.1"
    fi
    printf '  %-40s %9s %9s %9s %9s %10s %10s  %s\n' row "MiB/s" min max "s (med)" hutch/slirp hutch/pasta status
    for r in "${ROWS[@]}"; do
      [ "${R_STATUS[$r,$d]}" = n/a ] && continue
      st=${R_STATUS[$r,$d]}
      [ "$st" = ok ] && [ "${S_FAIL[$r,$d]}" -gt 0 ] && st="ok, ${S_FAIL[$r,$d]} of $ROUNDS failed"
      printf '  %-40s %9s %9s %9s %9s %10s %10s  %s\n' "${R_NAME[$r]}" "${M_MED[$r,$d]:--}" "${M_MIN[$r,$d]:--}" \
        "${M_MAX[$r,$d]:--}" "${M_SEC[$r,$d]:--}" \
        "$([ "$r" = h ] && x "$(ratio_to "$d" s)" || printf -- '-')" \
        "$([ "$r" = h ] && x "$(ratio_to "$d" t)" || printf -- '-')" "$st"
    done
    for r in "${ROWS[@]}"; do
      [ "${R_STATUS[$r,$d]}" = n/a ] && continue
      printf '    %-16s %s\n' "${R_LABEL[$r]}:" "$(row_path "$r" "$d")"
    done
    for r in "${ROWS[@]}"; do
      case ${R_STATUS[$r,$d]} in ok|n/a) ;; *) echo "    ${R_NAME[$r]}: ${R_STATUS[$r,$d]}: ${R_REASON[$r,$d]}" ;; esac
      [ -n "${S_FIRST[$r,$d]:-}" ] && [ "${R_STATUS[$r,$d]}" = ok ] && echo "    ${R_NAME[$r]}: first failure: ${S_FIRST[$r,$d]}"
    done
    printf '  hutch vs the floor: %s of what busybox nc does over the host loopback\n' "$(x "$(ratio_to "$d" f)")"
  done
  echo
  echo "Target"
  printf '  hutch at least as fast as podman with slirp4netns, host -> container: %s\n' "$(bench_verdict "$(ratio_to in s)" ge 1)"
  printf '  hutch at least as fast as podman with slirp4netns, container -> host: %s\n' "$(bench_verdict "$(ratio_to out s)" ge 1)"
  [ -n "$PASTA_WHY" ] && { echo; echo "Note: $PASTA_WHY"; }
  if [ "${#PROBLEMS[@]}" -gt 0 ]; then
    echo
    echo "Problems"
    printf '  %s\n' "${PROBLEMS[@]}"
  fi
  [ "$KEEP" = 1 ] && echo "logs: $LOGS"
  return 0
}
REPORT=$(report)
bench_write_report "$REPORT"

# ---------------------------------------------------------------- JSON
if [ -n "$JSON_OUT" ]; then
  {
    printf '{\n  "schema": "hutch-net-bench/1",\n'
    printf '  "started": %s, "finished": %s, "rounds": %s, "size_mib": %s, "warmup_mib": %s, "timeout_s": %s, "revision": %s,\n' \
      "$(json_str "$T_START")" "$(json_str "$T_END")" "$ROUNDS" "$SIZE_MB" "$WARMUP_MB" "$XFER_TIMEOUT" "$(json_str "$GIT_REV")"
    printf '  "host": {"desc": %s, "cpus": %s, "user": %s, "tun_mode": %s, "loadavg_before": %s, "loadavg_after": %s, "loadavg_1min_max": %s},\n' \
      "$(json_str "$(bench_host_desc)")" "$(json_num "$(nproc 2>/dev/null)")" "$(json_str "$ME")" "$(json_str "$TUN_MODE")" \
      "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")" "$BENCH_LOAD_MAX"
    printf '  "versions": {"hutch": %s, "podman": %s, "runc": %s, "slirp4netns": %s, "passt": %s},\n' \
      "$(json_str "$HUTCH_VERSION")" "$(json_str "$PODMAN_VERSION")" "$(json_str "$RUNC_VERSION")" \
      "$(json_str "$SLIRP_VERSION")" "$(json_str "$PASTA_VERSION")"
    printf '  "hutch": {"path": %s, "network": %s}, "pasta_mode": %s, "pasta_note": %s,\n' "$(json_str "$HUTCH")" \
      "$(json_str "$HUTCH_NET")" "$(json_str "$PASTA_MODE")" "$(json_str "$PASTA_WHY")"
    printf '  "target": {"hutch_over_slirp4netns_at_least": 1, "host_to_container": %s, "container_to_host": %s},\n' \
      "$(json_num "$(ratio_to in s)")" "$(json_num "$(ratio_to out s)")"
    printf '  "directions": ['
    n=0
    for d in "${DIRS[@]}"; do
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      printf '\n    {"direction": %s, "desc": %s, "ratio_hutch_to_slirp4netns": %s, "ratio_hutch_to_pasta": %s, "ratio_hutch_to_floor": %s, "rows": [' \
        "$(json_str "$d")" "$(json_str "${DIR_DESC[$d]}")" "$(json_num "$(ratio_to "$d" s)")" \
        "$(json_num "$(ratio_to "$d" t)")" "$(json_num "$(ratio_to "$d" f)")"
      m=0
      for r in "${ROWS[@]}"; do
        [ "${R_STATUS[$r,$d]}" = n/a ] && continue
        [ "$m" -gt 0 ] && printf ','; m=$((m + 1))
        printf '\n      {"row": %s, "name": %s, "path": %s, "status": %s, "reason": %s, "median_mib_s": %s, "min_mib_s": %s, "max_mib_s": %s, "median_s": %s, "failed": %s, "first_failure": %s, "samples_mib_s": %s, "samples_s": %s}' \
          "$(json_str "$r")" "$(json_str "${R_NAME[$r]}")" "$(json_str "$(row_path "$r" "$d")")" \
          "$(json_str "${R_STATUS[$r,$d]}")" "$(json_str "${R_REASON[$r,$d]}")" "$(json_num "${M_MED[$r,$d]:-}")" \
          "$(json_num "${M_MIN[$r,$d]:-}")" "$(json_num "${M_MAX[$r,$d]:-}")" "$(json_num "${M_SEC[$r,$d]:-}")" \
          "${S_FAIL[$r,$d]}" "$(json_str "${S_FIRST[$r,$d]:-}")" "$(json_list "${S_RATE[$r,$d]}")" "$(json_list "${S_SECS[$r,$d]}")"
      done
      printf '\n    ]}'
    done
    printf '\n  ],\n  "problems": ['
    n=0
    for m in "${PROBLEMS[@]}"; do [ "$n" -gt 0 ] && printf ', '; n=$((n + 1)); json_str "$m"; done
    printf ']\n}\n'
  } >"$JSON_OUT" || note "could not write $JSON_OUT"
  [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $JSON_OUT"
fi

# ---------------------------------------------------------------- exit status
rc=1
for d in "${DIRS[@]}"; do for r in "${ROWS[@]}"; do [ -n "${M_MED[$r,$d]:-}" ] && rc=0; done; done
[ "$rc" = 1 ] && note "no row produced a figure"
if [ "$STRICT" = 1 ]; then
  for d in "${DIRS[@]}"; do
    for r in "${ROWS[@]}"; do
      case ${R_STATUS[$r,$d]} in ok|n/a) [ "${S_FAIL[$r,$d]}" -gt 0 ] && rc=1 ;; *) rc=1 ;; esac
    done
  done
  [ "${#PROBLEMS[@]}" -gt 0 ] && rc=1
fi
exit "$rc"
