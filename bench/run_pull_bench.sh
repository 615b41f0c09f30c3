#!/usr/bin/env bash
# run_pull_bench.sh - image pull: `hutch pull` of a multi-layer image from a registry on the
# loopback interface into an empty store, against `podman pull` and `skopeo copy`, measured
# in ONE run as an unprivileged user.
#
#   The image     a busybox rootfs (scripts/make-busybox-rootfs.sh) plus 5 layers of about
#                 40 MiB each (--layer-mb), 200 MiB in all: random data from /dev/urandom
#                 (incompressible) mixed with generated log-like text (compressible), one of
#                 them as 2,560 small files. Built with tar, gzip and sha256sum as an OCI
#                 layout (config, manifest and index.json written by hand) and cached
#                 (--cache), so later runs reuse it. The last layer holds /data/SHA256SUMS,
#                 the checksum of every data file.
#   The registry  docker-registry (CNCF distribution) started by the bench on a free
#                 127.0.0.1 port, plain HTTP, filesystem storage in the scratch dir; the
#                 image is pushed to it with skopeo copy. Stopped at exit.
#   The rounds    N rounds (default 5, -n); in each, every tool pulls once, into an empty
#                 store, the tools taking turns round-robin (the first one rotates):
#                   hutch   hutch --root R --runroot RR --storage-driver D pull --tls-verify=false REF
#                   podman  podman --root R ... --storage-driver D pull --tls-verify=false REF
#                   skopeo  skopeo copy --src-tls-verify=false docker://REF oci:DIR:latest
#                           and the same into dir:DIR
#                 Between two pulls the store is removed (hutch unshare rm -rf; podman
#                 system reset, which also stops its pause process), the blob-info caches
#                 under HOME are cleared, and `sync` runs; none of that is timed.
#   The checks    after each pull: the image is there (hutch images / podman image exists /
#                 every blob in the layout). After the first good pull of hutch and podman:
#                 `run --rm IMAGE sha256sum -c /data/SHA256SUMS` checks every file.
#
# Ratios are tool / hutch of medians (and of minimums): above 1, hutch is faster. The issue's
# target, reported met or not (this is a benchmark, not a test): hutch at least as fast as
# podman (podman/hutch of the medians >= 1).
#
# Not alike: skopeo stores the compressed blobs as they come (digest checks, no gunzip, no
# extraction), so it is the floor for the transfer; hutch and podman also decompress and
# unpack every layer into the store. The registry's blobs are in the page cache for every
# tool (written by the push, then read once before the rounds); the page cache cannot be
# dropped fairly as an unprivileged user, so it is not dropped at all.
#
# Usage: bench/run_pull_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_pull_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# Host findings this script acts on (Debian 12, podman 4.3.1, kernel 6.18, no systemd; see
# bench/README.md): podman needs --runtime runc, --cgroup-manager cgroupfs, --events-backend
# file, a private HOME, XDG_RUNTIME_DIR and storage.conf and a --runroot of at most 50
# characters (lib.sh: bench_private_env, bench_podman_cmd).
set -uo pipefail   # no -e: a failure becomes a line in the report

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

ROUNDS=5
DRIVER=overlay
LAYER_MB=40
PUSH_FORMAT=oci
CACHE=""
REBUILD=0
VERIFY=1
OUT=""
JSON_OUT=""
RUN_AS=""
HUTCH=""
KEEP=0
STRICT=0
BUSYBOX=/bin/busybox
WORKDIR=""
REGISTRY_BIN=""
PORT=""
PULL_TIMEOUT=900         # seconds, per pull
IMAGE_PATH=bench/big     # repository on the registry
IMAGE_VERSION=v1         # bump when the image recipe changes (the cache key)

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   rounds: pulls per tool (default $ROUNDS)
  --driver NAME          storage driver for hutch and podman: overlay (default) or vfs;
                         passed to both as --storage-driver
  --layer-mb N           size of each of the 5 big layers in MiB (default $LAYER_MB; a
                         multiple of 4)
  --push-format FMT      manifest format on the registry: oci (default, as built) or v2s2
                         (skopeo copy --format v2s2: Docker schema 2)
  --cache DIR            where the built image (an OCI layout) is kept between runs (default
                         /var/tmp/hutch-pull-bench-USER)
  --rebuild              build the image again even when the cache has it
  --no-verify            skip the sha256sum -c check inside a container
  -o FILE                also write the report (what is printed on stdout) to FILE
  --json FILE            also write every figure and sample as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: hutch on PATH, else
                         $REPO_ROOT/build/cli/hutch); a build tree's binary loads that
                         build tree's plugins. If it is missing or its pull fails, the
                         report says so and the peers are still measured
  --registry PATH        the registry binary (default: docker-registry on PATH, else
                         registry)
  --port N               registry port on 127.0.0.1 (default: a free one)
  --strict               exit 1 when any pull or check failed (default: only when no tool
                         produced a figure)
  --busybox PATH         static busybox for the base layer (default $BUSYBOX)
  --workdir DIR          scratch directory (default: a new one under /tmp)
  --keep                 keep the scratch directory and the logs (the stores are still
                         removed)
  -h, --help             this text
EOF
}

# shellcheck source=lib.sh
. "$(dirname -- "$SCRIPT")/lib.sh"

while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || die "-n needs a number"; ROUNDS=$2; shift 2 ;;
    -n*) ROUNDS=${1#-n}; shift ;;
    --driver) [ $# -ge 2 ] || die "--driver needs overlay or vfs"; DRIVER=$2; shift 2 ;;
    --driver=*) DRIVER=${1#*=}; shift ;;
    --layer-mb) [ $# -ge 2 ] || die "--layer-mb needs a number"; LAYER_MB=$2; shift 2 ;;
    --layer-mb=*) LAYER_MB=${1#*=}; shift ;;
    --push-format) [ $# -ge 2 ] || die "--push-format needs oci or v2s2"; PUSH_FORMAT=$2; shift 2 ;;
    --push-format=*) PUSH_FORMAT=${1#*=}; shift ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --cache=*) CACHE=${1#*=}; shift ;;
    --rebuild) REBUILD=1; shift ;;
    --no-verify) VERIFY=0; shift ;;
    -o) [ $# -ge 2 ] || die "-o needs a file"; OUT=$2; shift 2 ;;
    --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
    --json=*) JSON_OUT=${1#*=}; shift ;;
    --user) [ $# -ge 2 ] || die "--user needs a name"; RUN_AS=$2; shift 2 ;;
    --user=*) RUN_AS=${1#*=}; shift ;;
    --hutch) [ $# -ge 2 ] || die "--hutch needs a path"; HUTCH=$2; shift 2 ;;
    --hutch=*) HUTCH=${1#*=}; shift ;;
    --registry) [ $# -ge 2 ] || die "--registry needs a path"; REGISTRY_BIN=$2; shift 2 ;;
    --registry=*) REGISTRY_BIN=${1#*=}; shift ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; PORT=$2; shift 2 ;;
    --port=*) PORT=${1#*=}; shift ;;
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
case $DRIVER in overlay|vfs) ;; *) die "--driver wants overlay or vfs, not '$DRIVER'" ;; esac
isnum "$LAYER_MB" && [ "$LAYER_MB" -ge 4 ] && [ $((LAYER_MB % 4)) -eq 0 ] ||
  die "--layer-mb wants a multiple of 4 (at least 4), not '$LAYER_MB'"
case $PUSH_FORMAT in oci|v2s2) ;; *) die "--push-format wants oci or v2s2, not '$PUSH_FORMAT'" ;; esac
[ -z "$PORT" ] || { isnum "$PORT" && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ]; } || die "--port wants 1..65535, not '$PORT'"

# ---------------------------------------------------------------- root: set up, re-run as the user

git_rev() {  # the repository's revision, +dirty when the tree has changes; empty outside git
  local rev g=(git -c safe.directory='*' -C "$REPO_ROOT")   # the repo may be another user's
  have git || return 0
  rev=$("${g[@]}" rev-parse --short HEAD 2>/dev/null) || return 0
  [ -n "$("${g[@]}" status --porcelain --untracked-files=no 2>/dev/null)" ] && rev+=+dirty
  printf '%s (%s)' "$rev" "$("${g[@]}" rev-parse --abbrev-ref HEAD 2>/dev/null)"
}

if [ "$(id -u)" -eq 0 ]; then
  bench_prepare_user "$RUN_AS"
  uid=$BENCH_UID
  [ -n "$CACHE" ] || CACHE=/var/tmp/hutch-pull-bench-$RUN_AS
  case $CACHE in /*) ;; *) CACHE=$(pwd)/$CACHE ;; esac
  if [ ! -d "$CACHE" ]; then
    mkdir -p -- "$CACHE" && chown "$RUN_AS:" "$CACHE" && chmod 0700 "$CACHE" || die "cannot create $CACHE"
  fi
  [ "$(stat -c %u "$CACHE")" = "$uid" ] || die "the cache $CACHE belongs to uid $(stat -c %u "$CACHE"), not $RUN_AS; pass --cache"
  child_args=(-n "$ROUNDS" --driver "$DRIVER" --layer-mb "$LAYER_MB" --push-format "$PUSH_FORMAT"
              --cache "$CACHE" --busybox "$BUSYBOX")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; *) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ -n "$REGISTRY_BIN" ] && child_args+=(--registry "$REGISTRY_BIN")
  [ -n "$PORT" ] && child_args+=(--port "$PORT")
  [ "$REBUILD" = 1 ] && child_args+=(--rebuild)
  [ "$VERIFY" = 0 ] && child_args+=(--no-verify)
  [ "$STRICT" = 1 ] && child_args+=(--strict)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  bench_child_begin pull
  bench_child_script "$SCRIPT" "$RUN_AS"
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $BENCH_CHILD_SCRIPT ${child_args[*]}"
  # root reads the revision for the child (which may not be able to read the repository).
  # Ctrl-C reaches the child too (same terminal), which stops its registry: root waits for it.
  trap ':' INT
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR HUTCH_BENCH_VIA_ROOT=1 \
    HUTCH_BENCH_GIT_REV="$(git_rev)" "${child_env[@]}" bash "$BENCH_CHILD_SCRIPT" "${child_args[@]}"
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

[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or newer is needed (\$EPOCHREALTIME, the fork-free timer)"
for t in tar gzip sha256sum curl awk split truncate ss; do
  have "$t" || die "$t is missing (coreutils, tar, gzip, gawk/mawk, curl, iproute2)"
done
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi
MAKE_ROOTFS=${HUTCH_BENCH_MAKE_ROOTFS:-$REPO_ROOT/scripts/make-busybox-rootfs.sh}
[ -r "$MAKE_ROOTFS" ] || die "cannot read $MAKE_ROOTFS"
have skopeo || die "skopeo is missing (apt-get install -y skopeo): it pushes the image"
if [ -z "$REGISTRY_BIN" ]; then
  if have docker-registry; then REGISTRY_BIN=$(command -v docker-registry)
  elif have registry; then REGISTRY_BIN=$(command -v registry)
  else die "docker-registry is missing (apt-get install -y docker-registry), or pass --registry"; fi
fi
[ -x "$REGISTRY_BIN" ] || die "the registry $REGISTRY_BIN is not executable"
if [ -z "$HUTCH" ]; then
  if have hutch; then HUTCH=$(command -v hutch); else HUTCH=$REPO_ROOT/build/cli/hutch; fi
fi
[ -n "$CACHE" ] || CACHE=/var/tmp/hutch-pull-bench-$ME
mkdir -p -- "$CACHE" 2>/dev/null && [ -w "$CACHE" ] || die "cannot write the cache $CACHE (pass --cache)"
CACHE=$(cd -- "$CACHE" && pwd)
GIT_REV=${HUTCH_BENCH_GIT_REV:-$(git_rev)}

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d /tmp/hutch-pull-bench.XXXXXX) || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS"
bench_private_env "$W"            # HOME, XDG_RUNTIME_DIR, storage.conf, RB
why_no_podman=$(bench_podman_missing "$RB/p/run")

first_err() {  # LOG: its first line that is not known-harmless noise
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' -e '^== ' "$1" 2>/dev/null | head -n 1 | cut -c1-300
}
last_err() {  # LOG: its last two lines that are not noise (pull errors come last)
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 2 | tr '\n' ' ' | cut -c1-300
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ---------------------------------------------------------------- tools
TOOLS=(h p so sd)
declare -A T_NAME=([h]="hutch pull" [p]="podman pull" [so]="skopeo copy to oci:" [sd]="skopeo copy to dir:")
H=("$HUTCH" --root "$W/h/root" --runroot "$RB/h" --storage-driver "$DRIVER")
H_BARE=("$HUTCH" --root "$W/h/root" --runroot "$RB/h")
bench_podman_cmd "$W/p/root" "$RB/p/run" "$RB/p/tmp" "$DRIVER"
P=("${BENCH_PODMAN[@]}")
PCACHE=$HOME/.local/share/containers/cache   # containers/image's blob-info cache (podman, skopeo)
declare -A T_STATUS T_REASON T_SAMPLES T_DU T_CHECK
for t in "${TOOLS[@]}"; do T_STATUS[$t]=ok T_REASON[$t]="" T_SAMPLES[$t]="" T_DU[$t]="" T_CHECK[$t]=""; done
if [ ! -x "$HUTCH" ]; then
  T_STATUS[h]=missing T_REASON[h]="hutch not found at $HUTCH (build it, or pass --hutch)"
elif ! timeout 20 "$HUTCH" pull --help >"$LOGS/hutch-pull-help.log" 2>&1; then
  # no pull command yet: one real attempt in round 1 still records hutch's own message
  note "hutch pull --help failed ($(first_err "$LOGS/hutch-pull-help.log")); trying the pull anyway"
fi
[ -n "$why_no_podman" ] && T_STATUS[p]=missing T_REASON[p]=$why_no_podman
HUTCH_VERSION=$([ -x "$HUTCH" ] && timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
PODMAN_VERSION=$(podman --version 2>/dev/null)
RUNC_VERSION=$(runc --version 2>/dev/null | head -n 1)
SKOPEO_VERSION=$(skopeo --version 2>/dev/null)
REGISTRY_VERSION=$("$REGISTRY_BIN" --version 2>/dev/null | head -n 1)

# ---------------------------------------------------------------- cleanup (also on Ctrl-C)
REG_PID=""
# `timeout` puts its command in a process group of its own, so a Ctrl-C reaches only this
# shell, and bash runs a trap only once the foreground command has finished: a pull would
# run to its end first. The long commands (pulls, push, content checks) therefore run as a
# background job that `wait` waits for; a trapped signal interrupts `wait` at once. (Store
# removals stay in the foreground: short, and better not interrupted half-way.) The trap
# runs inside the command's redirections, so it restores the report's stdout and stderr
# (copies taken here) first.
exec {SAVED_OUT}>&1 {SAVED_ERR}>&2
restore_fds() { exec 1>&"$SAVED_OUT" 2>&"$SAVED_ERR"; }
CHILD=""
bg_wait() {  # CMD... -> its exit status
  "$@" &
  CHILD=$!
  wait "$CHILD"
  local rc=$?
  CHILD=""
  return "$rc"
}
remove_store() {  # TOOL: remove its store (not timed); 0 when nothing is left
  local t=$1 d
  case $t in
    h)
      if [ -x "$HUTCH" ] && { [ -e "$W/h" ] || [ -e "$RB/h" ]; }; then
        timeout 600 "${H_BARE[@]}" unshare rm -rf -- "$W/h" "$RB/h" >>"$LOGS/cleanup.log" 2>&1
      fi
      rm -rf -- "$W/h" "$RB/h" 2>/dev/null
      d="$W/h $RB/h" ;;
    p)
      if [ -z "$why_no_podman" ] && [ -e "$W/p" ]; then
        bench_podman_reset "$RB/p/tmp" "$LOGS/cleanup.log" "${P[@]}"
        rm -rf -- "$W/p" "$RB/p" 2>/dev/null
        if [ -e "$W/p" ]; then
          timeout 600 "${P[@]}" unshare rm -rf -- "$W/p" >>"$LOGS/cleanup.log" 2>&1
          bench_podman_reset "$RB/p/tmp" "$LOGS/cleanup.log" "${P[@]}"
        fi
      fi
      rm -rf -- "$W/p" "$RB/p" 2>/dev/null
      d="$W/p $RB/p" ;;
    so|sd) rm -rf -- "${W:?}/$t"; d=$W/$t ;;
  esac
  rm -rf -- "$PCACHE" 2>/dev/null
  for d in $d; do [ -e "$d" ] && return 1; done
  return 0
}
cleanup() {
  local rc=$? t
  trap - EXIT INT TERM
  restore_fds
  if [ -n "$CHILD" ]; then   # interrupted: timeout passes the TERM on to its command
    kill "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null
  fi
  for t in "${TOOLS[@]}"; do remove_store "$t" || note "could not remove the store of ${T_NAME[$t]}"; done
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; fi
  [ "$RB" != "$W/run" ] && rm -rf -- "$RB" 2>/dev/null
  if [ "$KEEP" = 1 ]; then
    note "kept $W (logs in $LOGS)"
    exit "$rc"
  fi
  chmod -R u+rwX "$W" 2>/dev/null
  rm -rf -- "$W" 2>/dev/null
  [ -e "$W" ] && note "could not remove all of $W; remove it with: $HUTCH unshare rm -rf $W"
  exit "$rc"
}
trap cleanup EXIT
trap 'restore_fds; note "interrupted: stopping the registry, removing the stores"; exit 130' INT TERM

# ---------------------------------------------------------------- the image (an OCI layout, cached)
# One random and one text generator. The text is log-like lines with a few random fields
# (gzip gets it to about a quarter); SEED keeps it the same from one build to the next.
gen_random() { head -c "$2" /dev/urandom >"$1"; }  # FILE BYTES
gen_text() {  # FILE BYTES SEED
  awk -v n="$2" -v seed="$3" 'BEGIN {
    srand(seed)
    split("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu", w, " ")
    split("INFO DEBUG WARN INFO INFO ERROR DEBUG INFO", lv, " ")
    split("GET PUT POST HEAD DELETE GET GET", m, " ")
    t = 0; i = 0
    while (t < n) {
      i++
      s = sprintf("2026-12-04T%02d:%02d:%02d.%03dZ %-5s [worker-%d] %s /v2/%s/%s/blobs/%08x took=%dms bytes=%d seq=%d",
        int(i / 3600000) % 24, int(i / 60000) % 60, int(i / 1000) % 60, i % 1000, lv[1 + int(rand() * 8)],
        int(rand() * 16), m[1 + int(rand() * 7)], w[1 + int(rand() * 26)], w[1 + int(rand() * 26)],
        int(rand() * 4294967295), int(rand() * 900), int(rand() * 1000000), i)
      print s
      t += length(s) + 1
    }
  }' >"$1" && truncate -s "$2" "$1"
}
# An OCI layout under $CACHE/oci-$IMAGE_VERSION-${LAYER_MB}m with layers.txt ("N digest
# gzip-bytes tar-bytes description" per layer) and .complete; sets IMG.
build_image() {
  local b t mb=$((LAYER_MB * 1048576)) q i tar dig diff size desc cfg man conf_json lay_json diffs hist rc
  IMG=$CACHE/oci-$IMAGE_VERSION-${LAYER_MB}m
  if [ "$REBUILD" = 0 ] && [ -f "$IMG/.complete" ]; then
    note "image: reusing $IMG"
    IMG_FROM="from the cache"
    return 0
  fi
  note "image: building $IMG (5 x $LAYER_MB MiB on a busybox base; tar, gzip, sha256sum; about a minute)"
  rm -rf -- "$IMG"
  b=$(mktemp -d "$CACHE/build.XXXXXX") || die "mktemp -d in $CACHE failed"
  # (set -e holds in a subshell only when its status is not tested by || or if)
  (
    set -e
    umask 022
    q=$((mb / 4))
    mkdir -p "$b/oci/blobs/sha256" "$b/s/l1/data/l1" "$b/s/l2/data/l2" "$b/s/l3/data/l3" \
      "$b/s/l4/data/l4/rand" "$b/s/l4/data/l4/text" "$b/s/l5/data/l5"
    BUSYBOX="$BUSYBOX" sh "$MAKE_ROOTFS" "$b/l0.tar" >/dev/null
    # 1: one random file; 2: four text files; 3: half and half; 4: 16 KiB files, half
    # random, half text; 5: a quarter random, three quarters text, and the checksums.
    gen_random "$b/s/l1/data/l1/random.bin" "$mb"
    for i in 0 1 2 3; do gen_text "$b/s/l2/data/l2/log-$i.txt" "$q" "2$i"; done
    gen_random "$b/s/l3/data/l3/random.bin" "$((2 * q))"
    gen_text "$b/s/l3/data/l3/text.txt" "$((2 * q))" 3
    gen_random "$b/l4r" "$((2 * q))"
    gen_text "$b/l4t" "$((2 * q))" 4
    (cd "$b/s/l4/data/l4/rand" && split -b 16384 -a 4 -d "$b/l4r" r)
    (cd "$b/s/l4/data/l4/text" && split -b 16384 -a 4 -d "$b/l4t" t)
    rm -f "$b/l4r" "$b/l4t"
    gen_random "$b/s/l5/data/l5/random.bin" "$q"
    gen_text "$b/s/l5/data/l5/text-0.txt" "$q" 50
    gen_text "$b/s/l5/data/l5/text-1.txt" "$((2 * q))" 51
    # absolute paths, so that the check runs from any directory inside the container
    for i in 1 2 3 4 5; do (cd "$b/s/l$i" && find data -type f | sort | xargs sha256sum | sed 's,  data/,  /data/,'); done \
      >"$b/SHA256SUMS"
    grep -c '  /data/' "$b/SHA256SUMS" >"$b/oci/files.txt"
    mv "$b/SHA256SUMS" "$b/s/l5/data/SHA256SUMS"
    for i in 1 2 3 4 5; do
      tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 -C "$b/s/l$i" -cf "$b/l$i.tar" .
      rm -rf "$b/s/l$i"
    done
    : >"$b/oci/layers.txt"
    for i in 0 1 2 3 4 5; do
      case $i in
        0) desc="busybox rootfs (scripts/make-busybox-rootfs.sh)" ;;
        1) desc="$LAYER_MB MiB random, one file" ;;
        2) desc="$LAYER_MB MiB text, 4 files" ;;
        3) desc="$((LAYER_MB / 2)) MiB random + $((LAYER_MB / 2)) MiB text" ;;
        4) desc="$((2 * q / 16384 * 2)) files of 16 KiB, half random, half text" ;;
        5) desc="$((LAYER_MB / 4)) MiB random + $((3 * LAYER_MB / 4)) MiB text, SHA256SUMS" ;;
      esac
      tar=$b/l$i.tar
      diff=$(sha256sum "$tar" | cut -d' ' -f1)
      size=$(stat -c %s "$tar")
      gzip -n -6 "$tar"
      dig=$(sha256sum "$tar.gz" | cut -d' ' -f1)
      mv "$tar.gz" "$b/oci/blobs/sha256/$dig"
      printf '%s %s %s %s %s\n' "$i" "$dig" "$(stat -c %s "$b/oci/blobs/sha256/$dig")" "$size" "$diff $desc" >>"$b/oci/layers.txt"
    done
    # layers.txt: N digest gzip-bytes tar-bytes diff-id description
    arch=$(uname -m)
    case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; armv7l) arch=arm ;; esac
    diffs="" hist="" lay_json=""
    while read -r i dig size _ diff desc; do
      diffs+="${diffs:+,}\"sha256:$diff\""
      hist+="${hist:+,}{\"created\":\"2023-11-14T22:13:20Z\",\"created_by\":\"hutch pull bench: $desc\"}"
      lay_json+="${lay_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}"
    done <"$b/oci/layers.txt"
    conf_json="{\"created\":\"2023-11-14T22:13:20Z\",\"architecture\":\"$arch\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"/bin/sh\"],\"Labels\":{\"org.opencontainers.image.title\":\"hutch pull bench\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diffs]},\"history\":[$hist]}"
    printf '%s' "$conf_json" >"$b/config.json"
    cfg=$(sha256sum "$b/config.json" | cut -d' ' -f1)
    printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg\",\"size\":$(stat -c %s "$b/config.json")},\"layers\":[$lay_json]}" >"$b/manifest.json"
    man=$(sha256sum "$b/manifest.json" | cut -d' ' -f1)
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
      "$man" "$(stat -c %s "$b/manifest.json")" >"$b/oci/index.json"
    mv "$b/config.json" "$b/oci/blobs/sha256/$cfg"
    mv "$b/manifest.json" "$b/oci/blobs/sha256/$man"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$b/oci/oci-layout"
  ) >"$LOGS/build-image.log" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ] || ! isnum "$(cat "$b/oci/files.txt" 2>/dev/null)"; then
    rm -rf -- "$b"
    die "building the image failed (exit $rc): $(last_err "$LOGS/build-image.log")"
  fi
  mv -- "$b/oci" "$IMG" && rm -rf -- "$b" || die "could not move the image into $IMG"
  touch "$IMG/.complete"
}
IMG_FROM=""
bench_stamp; t0=$_T
build_image
bench_stamp; [ -n "$IMG_FROM" ] || IMG_FROM="built in $(awk -v u="$((_T - t0))" 'BEGIN { printf "%.1f", u / 1e6 }') s"
mapfile -t LAYERS <"$IMG/layers.txt"
N_LAYERS=${#LAYERS[@]}
IMG_GZ=0 IMG_TAR=0 LAYER_DIGESTS=()
for l in "${LAYERS[@]}"; do
  read -r _ dig gz tarb _ <<<"$l"
  IMG_GZ=$((IMG_GZ + gz)) IMG_TAR=$((IMG_TAR + tarb)); LAYER_DIGESTS+=("$dig")
done
# the number of data files, for the content check (SHA256SUMS sits in the last layer)
N_FILES=$(cat "$IMG/files.txt" 2>/dev/null)
if ! isnum "${N_FILES:-x}"; then
  N_FILES=$(tar -xzOf "$IMG/blobs/sha256/${LAYER_DIGESTS[-1]}" ./data/SHA256SUMS 2>/dev/null | grep -c .)
fi

# ---------------------------------------------------------------- the registry
free_port() {  # a port nobody listens on, 20000-59999
  local used p i
  used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  return 1
}
start_registry() {  # PORT -> 0 when it answers /v2/
  local port=$1 i
  cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
  secret: hutch-pull-bench
EOF
  "$REGISTRY_BIN" serve "$W/registry.yml" >>"$LOGS/registry.log" 2>&1 </dev/null &
  REG_PID=$!
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
    kill -0 "$REG_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; REG_PID=""
  return 1
}
mkdir -p "$W/registry"
if [ -n "$PORT" ]; then
  start_registry "$PORT" || die "the registry did not come up on 127.0.0.1:$PORT: $(last_err "$LOGS/registry.log")"
else
  for _ in 1 2 3 4 5; do
    PORT=$(free_port) || die "no free port found"
    start_registry "$PORT" && break
    PORT=""
  done
  [ -n "$PORT" ] || die "the registry did not come up: $(last_err "$LOGS/registry.log")"
fi
REF=127.0.0.1:$PORT/$IMAGE_PATH:latest
note "registry: $REGISTRY_BIN on 127.0.0.1:$PORT (pid $REG_PID); pushing $N_LAYERS layers, $(mib "$IMG_GZ") MiB gzip"
push_args=(skopeo copy --retry-times 2 --dest-tls-verify=false)
[ "$PUSH_FORMAT" = v2s2 ] && push_args+=(--format v2s2)
bench_stamp; t0=$_T
bg_wait timeout 600 "${push_args[@]}" "oci:$IMG:latest" "docker://$REF" >"$LOGS/push.log" 2>&1 </dev/null ||
  die "skopeo could not push the image: $(last_err "$LOGS/push.log")"
bench_stamp; PUSH_S=$(awk -v u="$((_T - t0))" 'BEGIN { printf "%.1f", u / 1e6 }')
rm -rf -- "$PCACHE"
MANIFEST_TYPE=$(curl -fsS -o /dev/null -w '%{content_type}' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:$PORT/v2/$IMAGE_PATH/manifests/latest" 2>/dev/null)
[ -n "$MANIFEST_TYPE" ] || die "the registry does not serve $REF after the push"
# Read the registry's blobs once, so every tool finds them in the page cache.
find "$W/registry" -type f -exec cat {} + >/dev/null 2>&1

# ---------------------------------------------------------------- the rounds
PROBLEMS=()
problem() { PROBLEMS+=("$*"); note "$*"; }
TO=(timeout -k 10 "$PULL_TIMEOUT")
pull_argv() {  # TOOL -> PA: the timed command
  case $1 in
    h) PA=("${H[@]}" pull --tls-verify=false "$REF") ;;
    p) PA=("${P[@]}" pull --tls-verify=false "$REF") ;;
    so) PA=(skopeo copy --src-tls-verify=false "docker://$REF" "oci:$W/so:latest") ;;
    sd) PA=(skopeo copy --src-tls-verify=false "docker://$REF" "dir:$W/sd") ;;
  esac
}
check_pull() {  # TOOL -> 0 when the image is in the store; a reason on stdout otherwise
  local t=$1 d
  case $t in
    h) "${H[@]}" images >"$W/check.out" 2>&1 && grep -q "$IMAGE_PATH" "$W/check.out" ||
         { echo "hutch images does not list $IMAGE_PATH: $(last_err "$W/check.out")"; return 1; } ;;
    p) "${P[@]}" image exists "$REF" >"$W/check.out" 2>&1 ||
         { echo "podman image exists $REF: no $(last_err "$W/check.out")"; return 1; } ;;
    so|sd)
      for d in "${LAYER_DIGESTS[@]}"; do
        if [ "$t" = so ]; then [ -s "$W/so/blobs/sha256/$d" ]; else [ -s "$W/sd/$d" ]; fi ||
          { echo "layer $d is missing from $W/$t"; return 1; }
      done ;;
  esac
}
verify_content() {  # TOOL (h or p): sha256sum -c of every data file, inside a container
  local t=$1 rc ok
  [ "$VERIFY" = 1 ] || return 0
  case $t in
    h) bg_wait timeout 600 "${H[@]}" run --rm --network none "$REF" sha256sum -c /data/SHA256SUMS >"$LOGS/$t-verify.log" 2>&1 </dev/null ;;
    p) bg_wait timeout 600 "${P[@]}" run --rm --network none "$REF" sha256sum -c /data/SHA256SUMS >"$LOGS/$t-verify.log" 2>&1 </dev/null ;;
    *) return 0 ;;
  esac
  rc=$?
  ok=$(grep -c ': OK$' "$LOGS/$t-verify.log")
  if [ "$rc" -eq 0 ] && [ "$ok" = "$N_FILES" ]; then
    T_CHECK[$t]="ok ($ok files)"
  else
    T_CHECK[$t]="FAILED (exit $rc, $ok of $N_FILES files OK)"
    problem "${T_NAME[$t]}: sha256sum -c /data/SHA256SUMS in a container: exit $rc, $ok of $N_FILES files OK: $(last_err "$LOGS/$t-verify.log")"
  fi
}
store_du() {  # TOOL -> KiB the store takes (as this user; unreadable corners are skipped)
  case $1 in
    h) du -sk "$W/h/root" 2>/dev/null | cut -f1 ;;
    p) du -sk "$W/p/root" 2>/dev/null | cut -f1 ;;
    *) du -sk "$W/$1" 2>/dev/null | cut -f1 ;;
  esac
}
declare -A ROUND_S
HUTCH_STORAGE="" PODMAN_DRIVER=""
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_sample_load
for t in "${TOOLS[@]}"; do remove_store "$t"; done
note "$ROUNDS round(s) of: $(for t in "${TOOLS[@]}"; do printf '%s, ' "${T_NAME[$t]}"; done | sed 's/, $//') (store driver $DRIVER)"
for ((r = 0; r < ROUNDS; r++)); do
  for ((j = 0; j < ${#TOOLS[@]}; j++)); do
    t=${TOOLS[(j + r) % ${#TOOLS[@]}]}
    [ "${T_STATUS[$t]}" = ok ] || continue
    sync
    bench_sample_load
    pull_argv "$t"
    log=$LOGS/$t-pull-$((r + 1)).log
    bench_stamp; t0=$_T
    bg_wait "${TO[@]}" "${PA[@]}" >"$log" 2>&1 </dev/null; rc=$?
    bench_stamp; t1=$_T
    bench_sample_load
    if [ "$rc" -ne 0 ]; then
      T_STATUS[$t]=FAILED T_REASON[$t]="round $((r + 1)): exit $rc: $(last_err "$log")"
      problem "${T_NAME[$t]} failed in round $((r + 1)) (exit $rc): $(last_err "$log"); not run again"
    elif ! why=$(check_pull "$t"); then
      T_STATUS[$t]=FAILED T_REASON[$t]="round $((r + 1)): pulled, but $why"
      problem "${T_NAME[$t]}: round $((r + 1)): the pull exited 0, but $why; not run again"
    else
      T_SAMPLES[$t]+="$((t1 - t0)) "
      ROUND_S[$t,$r]=$(awk -v u="$((t1 - t0))" 'BEGIN { printf "%.3f", u / 1e6 }')
      note "  round $((r + 1)): ${T_NAME[$t]}: ${ROUND_S[$t,$r]} s"
      if [ -z "${T_DU[$t]}" ]; then
        T_DU[$t]=$(store_du "$t")
        case $t in
          h) "${H[@]}" info >"$LOGS/hutch-info.txt" 2>&1
             HUTCH_STORAGE=$(sed -n 's/^  storage: //p' "$LOGS/hutch-info.txt" | head -n 1) ;;
          p) PODMAN_DRIVER=$("${P[@]}" info --format '{{.Store.GraphDriverName}}' 2>/dev/null | tail -n 1) ;;
        esac
        verify_content "$t"
      fi
    fi
    remove_store "$t" || problem "${T_NAME[$t]}: could not remove its store after round $((r + 1))"
  done
done
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_sample_load
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- figures
declare -A S_MED S_MIN S_MAX S_MEAN RATIO_MED RATIO_MIN RATE
for t in "${TOOLS[@]}"; do
  [ -n "${T_SAMPLES[$t]}" ] || continue
  read -r "S_MED[$t]" _ "S_MEAN[$t]" "S_MIN[$t]" "S_MAX[$t]" < <(bench_stats "${T_SAMPLES[$t]}" 1000000)
  RATE[$t]=$(awk -v b="$IMG_GZ" -v s="${S_MED[$t]}" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s }')
done
for t in "${TOOLS[@]}"; do
  RATIO_MED[$t]=$(bench_ratio "${S_MED[$t]:-}" "${S_MED[h]:-}")
  RATIO_MIN[$t]=$(bench_ratio "${S_MIN[$t]:-}" "${S_MIN[h]:-}")
done
TARGET_RATIO=${RATIO_MED[p]}

# ---------------------------------------------------------------- the report
x() { [ -n "$1" ] && printf '%sx' "$1" || printf -- '-'; }
report() {
  local t r l i dig gz tarb diff desc
  echo
  echo "Image pull: $REF into an empty store, as $ME; $ROUNDS round(s), the tools taking turns"
  echo "  image: $N_LAYERS layers, $(mib "$IMG_TAR") MiB as tar, $(mib "$IMG_GZ") MiB gzip; $MANIFEST_TYPE ($IMG, $IMG_FROM)"
  for l in "${LAYERS[@]}"; do
    read -r i dig gz tarb diff desc <<<"$l"
    printf '    %s  sha256:%.12s  %7s MiB gzip  %7s MiB tar  %s\n' "$i" "$dig" "$(mib "$gz")" "$(mib "$tarb")" "$desc"
  done
  echo "  registry: $REGISTRY_VERSION on 127.0.0.1:$PORT, plain HTTP, filesystem storage; push ${PUSH_S} s; blobs in the page cache"
  echo "  host: $(bench_host_desc); load $LOAD_BEFORE -> $LOAD_AFTER (1-minute max $BENCH_LOAD_MAX); $T_START .. $T_END"
  echo "  revision: ${GIT_REV:-unknown}"
  echo "  hutch: $HUTCH (${HUTCH_VERSION:-?}); --storage-driver $DRIVER${HUTCH_STORAGE:+ (in use: $HUTCH_STORAGE)}"
  echo "  podman: ${PODMAN_VERSION:-?}, --storage-driver $DRIVER${PODMAN_DRIVER:+ (graph driver: $PODMAN_DRIVER)}, runc, cgroupfs, file events; each pull cold (store reset, pause process stopped)"
  echo "  skopeo: ${SKOPEO_VERSION:-?} (stores the gzip blobs as they come: no gunzip, no unpacking)"
  echo "  timer: bash \$EPOCHREALTIME around each command; sync before each pull; ratios: tool / hutch (>1: hutch is faster)"
  if [[ $(nproc 2>/dev/null) =~ ^[0-9]+$ ]] && bench_dec_gt "$BENCH_LOAD_MAX" "$(nproc)"; then
    echo "  WARNING: the machine was busy (1-minute load up to $BENCH_LOAD_MAX on $(nproc) CPUs): the ratios are rough"
  fi
  echo
  printf '%-22s %9s %9s %9s %9s %11s %11s %10s  %s\n' tool "median s" "min s" "max s" "MiB/s" "/hutch med" "/hutch min" "store MiB" status
  printf '%-22s %9s %9s %9s %9s %11s %11s %10s  %s\n' ---------------------- --------- --------- --------- --------- ----------- ----------- ---------- ------
  for t in "${TOOLS[@]}"; do
    printf '%-22s %9s %9s %9s %9s %11s %11s %10s  %s\n' "${T_NAME[$t]}" "${S_MED[$t]:--}" "${S_MIN[$t]:--}" "${S_MAX[$t]:--}" \
      "${RATE[$t]:--}" "$(x "${RATIO_MED[$t]}")" "$(x "${RATIO_MIN[$t]}")" \
      "$([ -n "${T_DU[$t]}" ] && awk -v k="${T_DU[$t]}" 'BEGIN { printf "%.1f", k / 1024 }' || echo -)" "${T_STATUS[$t]}"
  done
  echo "  (MiB/s: gzip MiB pulled / median; store MiB: du of the store after the first pull)"
  for t in "${TOOLS[@]}"; do
    [ "${T_STATUS[$t]}" = ok ] || echo "  ${T_NAME[$t]}: ${T_STATUS[$t]}: ${T_REASON[$t]}"
  done
  echo
  echo "Seconds per round (in the order they ran; the first tool rotates)"
  for ((r = 0; r < ROUNDS; r++)); do
    printf '  round %-3s' "$((r + 1))"
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do
      t=${TOOLS[(i + r) % ${#TOOLS[@]}]}
      printf '  %s %s' "${T_NAME[$t]%% *}$([ "$t" = so ] && echo ":oci")$([ "$t" = sd ] && echo ":dir")" "${ROUND_S[$t,$r]:--}"
    done
    echo
  done
  if [ "$VERIFY" = 1 ]; then
    echo
    echo "Content check (run --rm IMAGE sha256sum -c /data/SHA256SUMS, after the first good pull):"
    echo "  hutch: ${T_CHECK[h]:-not run}; podman: ${T_CHECK[p]:-not run}"
  fi
  echo
  echo "Target"
  printf '  hutch pull at least as fast as podman pull (podman/hutch of the medians >= 1): %s\n' \
    "$(bench_verdict "$TARGET_RATIO" ge 1)"
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
    printf '{\n  "schema": "hutch-pull-bench/1",\n'
    printf '  "started": %s, "finished": %s, "rounds": %s, "driver": %s, "revision": %s,\n' \
      "$(json_str "$T_START")" "$(json_str "$T_END")" "$ROUNDS" "$(json_str "$DRIVER")" "$(json_str "$GIT_REV")"
    printf '  "host": {"desc": %s, "cpus": %s, "user": %s, "loadavg_before": %s, "loadavg_after": %s, "loadavg_1min_max": %s},\n' \
      "$(json_str "$(bench_host_desc)")" "$(json_num "$(nproc 2>/dev/null)")" "$(json_str "$ME")" \
      "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")" "$BENCH_LOAD_MAX"
    printf '  "versions": {"hutch": %s, "podman": %s, "runc": %s, "skopeo": %s, "registry": %s},\n' \
      "$(json_str "$HUTCH_VERSION")" "$(json_str "$PODMAN_VERSION")" "$(json_str "$RUNC_VERSION")" \
      "$(json_str "$SKOPEO_VERSION")" "$(json_str "$REGISTRY_VERSION")"
    printf '  "image": {"ref": %s, "manifest_type": %s, "layers": %s, "tar_bytes": %s, "gzip_bytes": %s, "files_checked": %s, "push_s": %s, "layer_list": [' \
      "$(json_str "$REF")" "$(json_str "$MANIFEST_TYPE")" "$N_LAYERS" "$IMG_TAR" "$IMG_GZ" "$(json_num "$N_FILES")" "$PUSH_S"
    n=0
    for l in "${LAYERS[@]}"; do
      read -r i dig gz tarb diff desc <<<"$l"
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      printf '\n    {"digest": %s, "gzip_bytes": %s, "tar_bytes": %s, "diff_id": %s, "desc": %s}' \
        "$(json_str "sha256:$dig")" "$gz" "$tarb" "$(json_str "sha256:$diff")" "$(json_str "$desc")"
    done
    printf '\n  ]},\n  "target": {"ratio_podman_to_hutch": %s, "met": %s},\n  "tools": [' "$(json_num "$TARGET_RATIO")" \
      "$([ -n "$TARGET_RATIO" ] && { awk -v a="$TARGET_RATIO" 'BEGIN { exit !(a >= 1) }' && echo true || echo false; } || echo null)"
    n=0
    for t in "${TOOLS[@]}"; do
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      pull_argv "$t"
      printf '\n    {"tool": %s, "command": %s, "status": %s, "reason": %s, "median_s": %s, "min_s": %s, "max_s": %s, "mean_s": %s, "ratio_to_hutch_median": %s, "ratio_to_hutch_min": %s, "store_kib": %s, "content_check": %s, "samples_us": %s}' \
        "$(json_str "${T_NAME[$t]}")" "$(json_str "$(printf '%q ' "${PA[@]}")")" "$(json_str "${T_STATUS[$t]}")" \
        "$(json_str "${T_REASON[$t]}")" "$(json_num "${S_MED[$t]:-}")" "$(json_num "${S_MIN[$t]:-}")" \
        "$(json_num "${S_MAX[$t]:-}")" "$(json_num "${S_MEAN[$t]:-}")" "$(json_num "${RATIO_MED[$t]}")" \
        "$(json_num "${RATIO_MIN[$t]}")" "$(json_num "${T_DU[$t]}")" "$(json_str "${T_CHECK[$t]}")" \
        "$(json_list "${T_SAMPLES[$t]}")"
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
for t in "${TOOLS[@]}"; do [ -n "${S_MED[$t]:-}" ] && rc=0; done
[ "$rc" = 1 ] && note "no tool produced a figure"
[ "$STRICT" = 1 ] && [ "${#PROBLEMS[@]}" -gt 0 ] && rc=1
exit "$rc"
