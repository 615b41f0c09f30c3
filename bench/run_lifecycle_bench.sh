#!/usr/bin/env bash
# run_lifecycle_bench.sh - the container lifecycle of hutch (its per-container monitor,
# containers.json plus one state.json per container) against podman, measured in ONE run
# as an unprivileged user on one busybox-static image:
#
#   run -d throughput   N (default 50) `run -d --name ... IMAGE sleep 1000`, started one
#                       after the other, and separately all N at once: the wall time until
#                       every command has returned (run -d returns once the container
#                       runs), checked with `ps -q` (N running). Then `stop -t 0` of the N
#                       (one command, all names) and `rm` of the N (one command), timed too.
#                       Rounds (default 3), the engines taking turns.
#   ps -a latency       `ps -a` with 200 and with 1,000 containers in the store (default;
#                       --populations): 10 running (`run -d ... sleep 1000`), 20 % exited
#                       (`run ... /bin/true` without --rm) and the rest created
#                       (`create ... /bin/true`). Each population is built by adding
#                       containers to the one before, one command at a time, hutch and
#                       podman taking turns container by container (so those per-command
#                       times give a create / run / run -d comparison as well). Before the
#                       timing, `ps -a` is checked: the right number of lines, and of Up,
#                       Exited and Created. Timed with hyperfine (-N, warm-up runs), or
#                       with the built-in timer (the engines alternating run by run).
#   teardown            `rm -f` of the whole last population, one command per engine.
#
# Ratios are podman / hutch (how many times faster hutch is), of medians measured in this
# one run. The target, reported met or not (this is a benchmark, not a test): hutch's
# `ps -a` with 1,000 containers at least 5x faster than podman's.
#
# Usage: bench/run_lifecycle_bench.sh [options]            (as an unprivileged user), or
#        sudo bench/run_lifecycle_bench.sh --user NAME [options]
# Run with -h for the options. See bench/README.md for how to read the output.
#
# Host findings this script acts on (Debian 12, podman 4.3.1, runc 1.1.5, kernel 6.18,
# hybrid cgroups, no systemd; see run_runtime_bench.sh and bench/README.md):
#  * podman: --runtime runc (crun refuses the hybrid layout), --cgroup-manager cgroupfs,
#    --events-backend file, --storage-driver overlay with a private storage.conf, HOME and
#    XDG_RUNTIME_DIR, a --runroot of at most 50 characters (lib.sh: bench_private_env,
#    bench_podman_cmd).
#  * `sleep` as a container's PID 1 ignores SIGTERM (no handler), so a plain `stop` would
#    time the 10 s grace period: the bench stops with `-t 0` (SIGTERM, then SIGKILL at once)
#    on both engines, and removes with `rm -f -t 0` on podman (its `rm -f` waits for the
#    stop timeout too).
#  * Running containers outlive every command: at exit (and on Ctrl-C) the bench removes all
#    containers with `rm -f`, kills any hutch monitor of its own store that survived that,
#    and resets podman's store (which also stops podman's pause process).
set -uo pipefail   # no -e: a failure becomes a line in the report

PROG=${0##*/}
SCRIPT=$(readlink -f -- "$0")
REPO_ROOT=$(cd -- "$(dirname -- "$SCRIPT")/.." && pwd)

RUNS=${BENCH_RUNS:-20}
WARMUP=3
POPS_ARG=200,1000
RUNNING=10
EXITED_PCT=20
THROUGHPUT=${BENCH_THROUGHPUT:-50}
ROUNDS=${BENCH_ROUNDS:-3}
NETWORK=host
TIMER_KIND=""
OUT=""
JSON_OUT=""
RUN_AS=""
HUTCH=""
KEEP=0
STRICT=0
BUSYBOX=/bin/busybox
WORKDIR=""
CMD_TIMEOUT=120          # seconds, per engine command (builds, checks, throughput)
TARGET_PS=5              # hutch's ps -a at the last population: at least this much faster

usage() {
  cat <<EOF
Usage: $PROG [options]
  -n N                   timed ps -a runs per engine and population (default $RUNS; env
                         BENCH_RUNS)
  --warmup N             untimed ps -a runs before those (default $WARMUP)
  --populations LIST     container counts at which ps -a is timed, ascending (default
                         $POPS_ARG); each includes the running ones
  --running N            running containers in every population (default $RUNNING)
  --exited-pct P         percentage of each population made exited, by run without --rm
                         (default $EXITED_PCT); the rest is made with create
  -c N                   containers in the run -d throughput test (default $THROUGHPUT;
                         env BENCH_THROUGHPUT); 0 skips the test
  --rounds N             rounds of the throughput test (default $ROUNDS; env BENCH_ROUNDS)
  --network MODE         host (default) or none, for every run and create of both engines
  --timer KIND           hyperfine (default when installed) or builtin (bash's
                         \$EPOCHREALTIME, hutch and podman alternating run by run)
  -o FILE                also write the report (what is printed on stdout) to FILE
  --json FILE            also write every figure and sample as JSON to FILE
  --user NAME            as root: create NAME if missing (useradd -m), make sure it has
                         /etc/subuid and /etc/subgid ranges, then run as NAME
  --hutch PATH           the hutch binary (default: $REPO_ROOT/build/cli/hutch when it
                         exists, else hutch on PATH); a build tree's binary loads that
                         build tree's plugins
  --strict               exit 1 when any check or command failed (default: only when a
                         ps -a figure is missing)
  --busybox PATH         static busybox to build the image from (default $BUSYBOX)
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
    -n) [ $# -ge 2 ] || die "-n needs a number"; RUNS=$2; shift 2 ;;
    -n*) RUNS=${1#-n}; shift ;;
    --warmup) [ $# -ge 2 ] || die "--warmup needs a number"; WARMUP=$2; shift 2 ;;
    --warmup=*) WARMUP=${1#*=}; shift ;;
    --populations) [ $# -ge 2 ] || die "--populations needs a list"; POPS_ARG=$2; shift 2 ;;
    --populations=*) POPS_ARG=${1#*=}; shift ;;
    --running) [ $# -ge 2 ] || die "--running needs a number"; RUNNING=$2; shift 2 ;;
    --running=*) RUNNING=${1#*=}; shift ;;
    --exited-pct) [ $# -ge 2 ] || die "--exited-pct needs a number"; EXITED_PCT=$2; shift 2 ;;
    --exited-pct=*) EXITED_PCT=${1#*=}; shift ;;
    -c) [ $# -ge 2 ] || die "-c needs a number"; THROUGHPUT=$2; shift 2 ;;
    -c*) THROUGHPUT=${1#-c}; shift ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#*=}; shift ;;
    --network) [ $# -ge 2 ] || die "--network needs host or none"; NETWORK=$2; shift 2 ;;
    --network=*) NETWORK=${1#*=}; shift ;;
    --timer) [ $# -ge 2 ] || die "--timer needs hyperfine or builtin"; TIMER_KIND=$2; shift 2 ;;
    --timer=*) TIMER_KIND=${1#*=}; shift ;;
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
isnum "$RUNS" && [ "$RUNS" -ge 1 ] || die "-n wants a positive integer, not '$RUNS'"
isnum "$WARMUP" || die "--warmup wants a number, not '$WARMUP'"
isnum "$RUNNING" || die "--running wants a number, not '$RUNNING'"
isnum "$EXITED_PCT" && [ "$EXITED_PCT" -le 100 ] || die "--exited-pct wants 0..100, not '$EXITED_PCT'"
isnum "$THROUGHPUT" || die "-c wants a number, not '$THROUGHPUT'"
isnum "$ROUNDS" && [ "$ROUNDS" -ge 1 ] || die "--rounds wants a positive integer, not '$ROUNDS'"
case $NETWORK in host|none) ;; *) die "--network wants host or none, not '$NETWORK'" ;; esac
case $TIMER_KIND in ""|hyperfine|builtin) ;; *) die "--timer wants hyperfine or builtin, not '$TIMER_KIND'" ;; esac
IFS=', ' read -r -a POPS <<<"$POPS_ARG"
[ "${#POPS[@]}" -gt 0 ] || die "--populations is empty"
prev=0
for p in "${POPS[@]}"; do
  isnum "$p" || die "--populations: '$p' is not a number"
  [ "$p" -gt "$prev" ] || die "--populations must be ascending and positive: $POPS_ARG"
  prev=$p
done
[ "${POPS[0]}" -ge "$RUNNING" ] || die "the first population (${POPS[0]}) is smaller than --running $RUNNING"

# ---------------------------------------------------------------- root: set up, re-run as the user

if [ "$(id -u)" -eq 0 ]; then
  bench_prepare_user "$RUN_AS"
  uid=$BENCH_UID
  child_args=(-n "$RUNS" --warmup "$WARMUP" --populations "$POPS_ARG" --running "$RUNNING"
              --exited-pct "$EXITED_PCT" -c "$THROUGHPUT" --rounds "$ROUNDS" --network "$NETWORK"
              --busybox "$BUSYBOX")
  [ -n "$TIMER_KIND" ] && child_args+=(--timer "$TIMER_KIND")
  if [ -n "$HUTCH" ]; then
    case $HUTCH in /*) ;; *) HUTCH=$(readlink -f -- "$HUTCH") ;; esac
    child_args+=(--hutch "$HUTCH")
  fi
  [ "$STRICT" = 1 ] && child_args+=(--strict)
  [ "$KEEP" = 1 ] && child_args+=(--keep)
  [ -n "$WORKDIR" ] && child_args+=(--workdir "$WORKDIR")
  bench_child_begin lifecycle
  bench_child_script "$SCRIPT" "$RUN_AS"
  note "running as $RUN_AS (uid $uid): runuser -u $RUN_AS -- bash $BENCH_CHILD_SCRIPT ${child_args[*]}"
  # HUTCH_BENCH_VIA_ROOT tells the child that root started it; root's XDG_RUNTIME_DIR is never right.
  # Ctrl-C reaches the child too (same terminal), which removes its containers: root waits
  # for it. (A handler, not '' : an ignored SIGINT would be inherited, and bash could not
  # trap it in the child.)
  trap ':' INT
  runuser -u "$RUN_AS" -- env -u XDG_RUNTIME_DIR -u BENCH_RUNS -u BENCH_THROUGHPUT -u BENCH_ROUNDS \
    HUTCH_BENCH_VIA_ROOT=1 "${child_env[@]}" bash "$BENCH_CHILD_SCRIPT" "${child_args[@]}"
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
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install -y busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; the image has no libc. Install busybox-static or pass --busybox"
fi
MAKE_ROOTFS=${HUTCH_BENCH_MAKE_ROOTFS:-$REPO_ROOT/scripts/make-busybox-rootfs.sh}
[ -r "$MAKE_ROOTFS" ] || die "cannot read $MAKE_ROOTFS"
if [ -z "$HUTCH" ]; then
  if [ -x "$REPO_ROOT/build/cli/hutch" ]; then HUTCH=$REPO_ROOT/build/cli/hutch
  elif have hutch; then HUTCH=$(command -v hutch)
  else HUTCH=$REPO_ROOT/build/cli/hutch; fi
fi
[ -x "$HUTCH" ] || die "hutch not found at $HUTCH (build it: cmake -S . -B build && cmake --build build, or pass --hutch)"
if [ -z "$TIMER_KIND" ]; then
  if have hyperfine; then TIMER_KIND=hyperfine; else TIMER_KIND=builtin; note "hyperfine is not installed: using the built-in timer"; fi
elif [ "$TIMER_KIND" = hyperfine ] && ! have hyperfine; then
  die "--timer hyperfine: hyperfine is not installed (apt-get install -y hyperfine)"
fi

if [ -n "$WORKDIR" ]; then
  mkdir -p -- "$WORKDIR" || die "cannot create $WORKDIR"
  W=$(cd -- "$WORKDIR" && pwd)
else
  W=$(mktemp -d /tmp/hutch-lifecycle-bench.XXXXXX) || die "mktemp -d failed"
fi
chmod 0700 "$W"
LOGS=$W/logs
mkdir -p "$LOGS"
bench_private_env "$W"            # HOME, XDG_RUNTIME_DIR, storage.conf, RB
why_no_podman=$(bench_podman_missing "$RB/p/run")
if [ -n "$why_no_podman" ]; then
  [ "$RB" != "$W/run" ] && rm -rf -- "$RB"
  rm -rf -- "$W"
  die "$why_no_podman"
fi

# The report's stdout and stderr, kept for the traps: a Ctrl-C lands while some command runs
# with its output redirected, and the trap runs in that context. Engine commands do not get
# these copies: hutch's monitor keeps the descriptors it inherits, and one that held a pipe
# (bench ... | tee) would keep the reader waiting.
exec {SAVED_OUT}>&1 {SAVED_ERR}>&2
nofd() { "$@" {SAVED_OUT}>&- {SAVED_ERR}>&-; }
restore_fds() { exec 1>&"$SAVED_OUT" 2>&"$SAVED_ERR"; }

first_err() {  # LOG: its first line that is not known-harmless noise
  grep -v -e 'is not a shared mount' -e '^[[:space:]]*$' -e '^== ' "$1" 2>/dev/null | head -n 1 | cut -c1-300
}

# ---------------------------------------------------------------- engines
ENGINES=(h p)
declare -A E_NAME=([h]=hutch [p]=podman)
H=("$HUTCH" --root "$W/h/root" --runroot "$RB/h")
bench_podman_cmd "$W/p/root" "$RB/p/run" "$RB/p/tmp"
P=("${BENCH_PODMAN[@]}")
IMAGE=hutch-bench
declare -A E_IMAGE=([h]=$IMAGE [p]=localhost/$IMAGE:latest)
TO=(timeout -k 5 "$CMD_TIMEOUT")
# ENGINE ARGS... : run one engine command (under the timeout)
eng() { local e=$1; shift; if [ "$e" = h ]; then nofd "${TO[@]}" "${H[@]}" "$@"; else nofd "${TO[@]}" "${P[@]}" "$@"; fi; }
# ENGINE -> EA: the engine's command line as an array (no timeout)
eng_argv() { if [ "$1" = h ]; then EA=("${H[@]}"); else EA=("${P[@]}"); fi; }
# the stop and rm -f flags that make both engines kill at once
stop_args() { printf '%s\n' stop -t 0; }
rmf_args() { if [ "$1" = h ]; then printf '%s\n' rm -f; else printf '%s\n' rm -f -t 0; fi; }

# ---------------------------------------------------------------- cleanup (also on Ctrl-C)
BG_PIDS=()
IMPORTED_H=0 IMPORTED_P=0
remove_all() {  # ENGINE: rm -f every container of the engine's store, 100 names a command
  local e=$1 ids
  mapfile -t ids < <(eng "$e" ps -a -q --no-trunc 2>>"$LOGS/cleanup.log")
  [ "${#ids[@]}" -gt 0 ] || return 0
  eng_argv "$e"
  printf '%s\n' "${ids[@]}" | nofd xargs -r -n 100 timeout -k 5 600 "${EA[@]}" $(rmf_args "$e") >>"$LOGS/cleanup.log" 2>&1
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
cleanup() {
  local rc=$? p t
  trap - EXIT INT TERM
  restore_fds
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$IMPORTED_H" = 1 ]; then
    remove_all h
    kill_hutch_monitors
  fi
  if [ "$IMPORTED_P" = 1 ]; then
    remove_all p
  fi
  bench_podman_reset "$RB/p/tmp" "$LOGS/cleanup.log" "${P[@]}"
  if [ "$KEEP" = 1 ]; then
    [ "$RB" != "$W/run" ] && note "kept $RB (run-time state)"
    note "kept $W (logs in $LOGS); remove it with: $HUTCH unshare rm -rf $W"
    exit "$rc"
  fi
  # Layer and rootfs files belong to subordinate IDs: remove them as uid 0 of hutch's namespace.
  timeout 600 "${H[@]}" unshare rm -rf -- "$W/h" "$RB/h" >>"$LOGS/cleanup.log" 2>&1
  [ "$RB" != "$W/run" ] && rm -rf -- "$RB" 2>/dev/null
  chmod -R u+rwX "$W" 2>/dev/null
  rm -rf -- "$W" 2>/dev/null
  if [ -e "$W" ]; then
    t=$(mktemp -d /tmp/hutch-lifecycle-bench-rm.XXXXXX) || t=""
    [ -n "$t" ] && "$HUTCH" --root "$t/root" --runroot "$t/run" unshare rm -rf -- "$W" "$t/root" >/dev/null 2>&1
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
HUTCH_VERSION=$(timeout 10 "$HUTCH" --version 2>/dev/null | head -n 1)
if eng h import "$TARBALL" "$IMAGE" >"$LOGS/hutch-import.log" 2>&1; then
  IMPORTED_H=1
else
  die "hutch import failed: $(first_err "$LOGS/hutch-import.log")"
fi
eng h info >"$LOGS/hutch-info.txt" 2>&1
HUTCH_STORAGE=$(sed -n 's/^  storage: //p' "$LOGS/hutch-info.txt" | head -n 1)
PODMAN_VERSION=$(podman --version 2>/dev/null)
RUNC_VERSION=$(runc --version 2>/dev/null | head -n 1)
if eng p import "$TARBALL" "$IMAGE" >"$LOGS/podman-import.log" 2>&1; then
  IMPORTED_P=1
else
  die "podman import failed: $(first_err "$LOGS/podman-import.log")"
fi
PODMAN_DRIVER=$(eng p info --format '{{.Store.GraphDriverName}}' 2>/dev/null | tail -n 1)
# One run of each, so that neither engine's first-use costs (podman's pause process and
# network setup, hutch's first mount of the image) land in a timed figure.
for e in "${ENGINES[@]}"; do
  if ! eng "$e" run --rm --network "$NETWORK" "${E_IMAGE[$e]}" /bin/true >"$LOGS/$e-warmup.log" 2>&1; then
    eng_argv "$e"
    die "${E_NAME[$e]} cannot run a container: $(first_err "$LOGS/$e-warmup.log")
  command: $(printf '%q ' "${EA[@]}" run --rm --network "$NETWORK" "${E_IMAGE[$e]}" /bin/true)"
  fi
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_sample_load
PROBLEMS=()              # what went wrong, for the report (and --strict)
problem() { PROBLEMS+=("$*"); note "$*"; }

count_lines() { grep -c . ; }
running_count() { eng "$1" ps -q 2>>"$LOGS/$1-checks.log" | count_lines; }
all_count() { eng "$1" ps -a -q 2>>"$LOGS/$1-checks.log" | count_lines; }

# ---------------------------------------------------------------- run -d throughput
# T_WALL[e,test]: wall times (us) per round; T_FAIL[e,test]: failed commands per round.
declare -A T_WALL T_FAIL T_FIRST
TESTS=(seq conc stop rm)
declare -A T_DESC=([seq]="run -d, one after the other" [conc]="run -d, all at once"
                   [stop]="stop -t 0 of the N (one command)" [rm]="rm of the N (one command)")
tp_names() {  # KIND ROUND -> the names
  local i
  for ((i = 0; i < THROUGHPUT; i++)); do printf 'lb-%s%s-%s\n' "$1" "$2" "$i"; done
}
tp_note_fail() {  # ENGINE TEST LOG
  [ -z "${T_FIRST[$1,$2]:-}" ] && T_FIRST[$1,$2]="$(first_err "$3")"
}
tp_round() {  # ENGINE ROUND
  local e=$1 r=$2 d=$W/tp/$1.$2 i t0 t1 fails n names=() pids=() kind rc
  mkdir -p "$d"
  for kind in s c; do
    local tn=seq
    [ "$kind" = c ] && tn=conc
    mapfile -t names < <(tp_names "$kind" "$r")
    fails=0
    bench_sample_load
    if [ "$tn" = seq ]; then
      bench_stamp; t0=$_T
      for ((i = 0; i < THROUGHPUT; i++)); do
        eng "$e" run -d --name "${names[$i]}" --network "$NETWORK" "${E_IMAGE[$e]}" sleep 1000 >"$d/$kind$i.out" 2>"$d/$kind$i.err" </dev/null ||
          { fails=$((fails + 1)); tp_note_fail "$e" seq "$d/$kind$i.err"; }
      done
      bench_stamp; t1=$_T
    else
      pids=()
      bench_stamp; t0=$_T
      for ((i = 0; i < THROUGHPUT; i++)); do
        eng "$e" run -d --name "${names[$i]}" --network "$NETWORK" "${E_IMAGE[$e]}" sleep 1000 >"$d/$kind$i.out" 2>"$d/$kind$i.err" </dev/null &
        pids+=("$!")
      done
      BG_PIDS=("${pids[@]}")
      for i in "${!pids[@]}"; do
        wait "${pids[$i]}"; rc=$?
        [ "$rc" -ne 0 ] && { fails=$((fails + 1)); tp_note_fail "$e" conc "$d/$kind$i.err"; }
      done
      bench_stamp; t1=$_T
      BG_PIDS=()
    fi
    T_WALL[$e,$tn]+="$((t1 - t0)) "
    T_FAIL[$e,$tn]+="$fails "
    cat "$d/$kind"*.err >>"$LOGS/$e-throughput.log" 2>/dev/null
    n=$(running_count "$e")
    if [ "$n" -ne "$THROUGHPUT" ]; then
      problem "${E_NAME[$e]}: after ${T_DESC[$tn]} (round $((r + 1))), ps -q lists $n running, not $THROUGHPUT"
    fi
    # stop and remove them, each in one command, timed
    bench_stamp; t0=$_T
    eng "$e" $(stop_args) "${names[@]}" >"$d/stop.out" 2>"$d/stop.err" </dev/null; rc=$?
    bench_stamp; t1=$_T
    [ "$rc" -ne 0 ] && { tp_note_fail "$e" stop "$d/stop.err"; }
    T_WALL[$e,stop]+="$((t1 - t0)) "; T_FAIL[$e,stop]+="$((rc != 0)) "
    n=$(running_count "$e")
    [ "$n" -ne 0 ] && problem "${E_NAME[$e]}: after stop -t 0 of $THROUGHPUT (round $((r + 1))), ps -q still lists $n running"
    bench_stamp; t0=$_T
    eng "$e" rm "${names[@]}" >"$d/rm.out" 2>"$d/rm.err" </dev/null; rc=$?
    bench_stamp; t1=$_T
    [ "$rc" -ne 0 ] && { tp_note_fail "$e" rm "$d/rm.err"; }
    T_WALL[$e,rm]+="$((t1 - t0)) "; T_FAIL[$e,rm]+="$((rc != 0)) "
    cat "$d/stop.err" "$d/rm.err" >>"$LOGS/$e-throughput.log" 2>/dev/null
    n=$(all_count "$e")
    if [ "$n" -ne 0 ]; then
      problem "${E_NAME[$e]}: after rm of $THROUGHPUT (round $((r + 1))), ps -a still lists $n containers; removing them with rm -f"
      remove_all "$e"
    fi
  done
  rm -rf -- "$d"
}
if [ "$THROUGHPUT" -gt 0 ]; then
  note "run -d throughput: $ROUNDS rounds of $THROUGHPUT containers per engine"
  for ((r = 0; r < ROUNDS; r++)); do
    for ((j = 0; j < 2; j++)); do
      tp_round "${ENGINES[(j + r) % 2]}" "$r"
    done
  done
fi

# ---------------------------------------------------------------- populations and ps -a
# Built container by container, hutch and podman taking turns (who goes first alternates),
# each command timed: B_US[e,op] holds the samples (us) of op run (running), true (exited)
# and create.
declare -A B_US B_FAIL B_FIRST HAVE_R HAVE_X HAVE_C
for e in "${ENGINES[@]}"; do
  HAVE_R[$e]=0 HAVE_X[$e]=0 HAVE_C[$e]=0
  for op in rund runx create; do B_US[$e,$op]=""; B_FAIL[$e,$op]=0; done
done
declare -A OP_DESC=([rund]="run -d ... sleep 1000 (running)" [runx]="run ... /bin/true (exited)" [create]="create ... /bin/true (created)")
build_one() {  # ENGINE OP INDEX
  local e=$1 op=$2 i=$3 t0 t1 rc log=$LOGS/$1-build.log
  local args
  case $op in
    rund) args=(run -d --name "lb-r-$i" --network "$NETWORK" "${E_IMAGE[$e]}" sleep 1000) ;;
    runx) args=(run --name "lb-x-$i" --network "$NETWORK" "${E_IMAGE[$e]}" /bin/true) ;;
    create) args=(create --name "lb-c-$i" --network "$NETWORK" "${E_IMAGE[$e]}" /bin/true) ;;
  esac
  bench_stamp; t0=$_T
  eng "$e" "${args[@]}" >/dev/null 2>"$W/build.err" </dev/null; rc=$?
  bench_stamp; t1=$_T
  if [ "$rc" -eq 0 ]; then
    B_US[$e,$op]+="$((t1 - t0)) "
  else
    B_FAIL[$e,$op]=$((B_FAIL[$e,$op] + 1))
    [ -z "${B_FIRST[$e,$op]:-}" ] && B_FIRST[$e,$op]="${args[0]} exited $rc: $(first_err "$W/build.err")"
    cat "$W/build.err" >>"$log"
  fi
}
TURN=0
build_step() {  # OP INDEX: that container in both engines, taking turns
  local k
  for k in 0 1; do build_one "${ENGINES[(k + TURN) % 2]}" "$1" "$2"; done
  TURN=$((1 - TURN))
}
# ps -a checks: lines, Up / Exited / Created, as STATUS shows them
declare -A CHK
check_pop() {  # ENGINE POP -> CHK[e,pop]="lines up exited created other", 0 if as expected
  local e=$1 pop=$2 lines counts want_x want_c
  lines=$(eng "$e" ps -a 2>>"$LOGS/$e-checks.log" | tail -n +2 | count_lines)
  counts=$(eng "$e" ps -a --format '{{.Status}}' 2>>"$LOGS/$e-checks.log" |
    awk '/^Up/ { u++; next } /^Exited/ { x++; next } /^Created/ { c++; next } NF { o++ }
         END { printf "%d %d %d %d", u, x, c, o }')
  CHK[$e,$pop]="$lines $counts"
  want_x=$(( (pop * EXITED_PCT + 50) / 100 ))
  [ $((want_x + RUNNING)) -gt "$pop" ] && want_x=$((pop - RUNNING))
  want_c=$((pop - RUNNING - want_x))
  [ "${CHK[$e,$pop]}" = "$pop $RUNNING $want_x $want_c 0" ]
}
declare -A PS_SAMPLES PS_STATUS PS_REASON
ps_cmd() {  # ENGINE -> the ps -a command line, quoted
  local EA
  eng_argv "$1"
  printf '%q ' "${EA[@]}" ps -a
}
HF_VERSION=""
[ "$TIMER_KIND" = hyperfine ] && HF_VERSION=$(hyperfine --version 2>/dev/null | awk '{print $2}')
time_ps() {  # POP INDEX: ps -a of both engines, WARMUP + RUNS
  local pop=$1 li=$2 e k j r log t0 t1 rc order=()
  if ((li % 2 == 0)); then order=(h p); else order=(p h); fi
  for e in "${order[@]}"; do PS_STATUS[$e,$pop]=ok PS_REASON[$e,$pop]="" PS_SAMPLES[$e,$pop]=""; done
  if [ "$TIMER_KIND" = hyperfine ]; then
    for e in "${order[@]}"; do
      log=$LOGS/$e-ps-$pop.log
      bench_sample_load
      if hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$W/hf-$e-$pop.json" \
           -n "${E_NAME[$e]} ps -a" -- "$(ps_cmd "$e")" >"$log" 2>&1 </dev/null; then
        PS_SAMPLES[$e,$pop]=$(bench_hyperfine_times "$W/hf-$e-$pop.json")
      else
        PS_STATUS[$e,$pop]=FAILED PS_REASON[$e,$pop]="hyperfine: $(grep -v '^[[:space:]]*$' "$log" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
      fi
      bench_sample_load
    done
  else
    for ((r = -WARMUP; r < RUNS; r++)); do
      bench_sample_load
      for ((j = 0; j < 2; j++)); do
        e=${order[(j + (r < 0 ? 0 : r)) % 2]}
        [ "${PS_STATUS[$e,$pop]}" = ok ] || continue
        log=$LOGS/$e-ps-$pop.log
        local cmd
        cmd=$(ps_cmd "$e")
        bench_stamp; t0=$_T
        eval "$cmd" >/dev/null 2>>"$log" </dev/null; rc=$?
        bench_stamp; t1=$_T
        if [ "$rc" -ne 0 ]; then
          PS_STATUS[$e,$pop]=FAILED PS_REASON[$e,$pop]="ps -a exited $rc: $(first_err "$log")"
        elif [ "$r" -ge 0 ]; then
          PS_SAMPLES[$e,$pop]+="$((t1 - t0)) "
        fi
      done
    done
  fi
}
declare -A POP_BUILD_US POP_MIX
li=0
for pop in "${POPS[@]}"; do
  want_x=$(( (pop * EXITED_PCT + 50) / 100 ))
  [ $((want_x + RUNNING)) -gt "$pop" ] && want_x=$((pop - RUNNING))
  want_c=$((pop - RUNNING - want_x))
  POP_MIX[$pop]="$RUNNING $want_x $want_c"
  note "population $pop: $RUNNING running, $want_x exited, $want_c created (adding $((RUNNING - HAVE_R[h] + want_x - HAVE_X[h] + want_c - HAVE_C[h])) per engine)"
  bench_stamp; t0=$_T
  while [ "${HAVE_R[h]}" -lt "$RUNNING" ]; do
    build_step rund "${HAVE_R[h]}"; HAVE_R[h]=$((HAVE_R[h] + 1)); HAVE_R[p]=${HAVE_R[h]}
  done
  dx=$((want_x - HAVE_X[h])) dc=$((want_c - HAVE_C[h])) dn=$((dx + dc))
  for ((i = 0; i < dn; i++)); do   # exited ones spread evenly among the created ones
    if [ $(((i + 1) * dx / dn)) -ne $((i * dx / dn)) ]; then
      build_step runx "${HAVE_X[h]}"; HAVE_X[h]=$((HAVE_X[h] + 1)); HAVE_X[p]=${HAVE_X[h]}
    else
      build_step create "${HAVE_C[h]}"; HAVE_C[h]=$((HAVE_C[h] + 1)); HAVE_C[p]=${HAVE_C[h]}
    fi
    ((i % 100 == 99)) && { note "  $((i + 1)) of $dn"; bench_sample_load; }
  done
  bench_stamp; POP_BUILD_US[$pop]=$((_T - t0))
  for e in "${ENGINES[@]}"; do
    check_pop "$e" "$pop" || problem "${E_NAME[$e]}: with $pop containers (running exited created: ${POP_MIX[$pop]}), ps -a shows lines up exited created other: ${CHK[$e,$pop]}"
  done
  note "population $pop: timing ps -a ($TIMER_KIND, $WARMUP warm-up + $RUNS runs per engine)"
  time_ps "$pop" "$li"
  li=$((li + 1))
done

# ---------------------------------------------------------------- teardown of the last population
declare -A TD_US TD_RC TD_LEFT TD_N
LAST=${POPS[-1]}
for e in h p; do
  mapfile -t ids < <(eng "$e" ps -a -q --no-trunc 2>>"$LOGS/$e-checks.log")
  eng_argv "$e"
  bench_stamp; t0=$_T
  nofd timeout -k 5 600 "${EA[@]}" $(rmf_args "$e") "${ids[@]}" \
    >/dev/null 2>"$LOGS/$e-teardown.log" </dev/null
  TD_RC[$e]=$?
  bench_stamp; TD_US[$e]=$((_T - t0))
  TD_LEFT[$e]=$(all_count "$e")
  [ "${TD_RC[$e]}" -ne 0 ] && problem "${E_NAME[$e]}: rm -f of ${#ids[@]} containers exited ${TD_RC[$e]}: $(first_err "$LOGS/$e-teardown.log")"
  [ "${TD_LEFT[$e]}" -ne 0 ] && problem "${E_NAME[$e]}: after rm -f of ${#ids[@]} containers, ps -a still lists ${TD_LEFT[$e]}"
  TD_N[$e]=${#ids[@]}
done
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bench_sample_load
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- figures
declare -A S_MED S_P90 S_MIN S_MAX
for pop in "${POPS[@]}"; do
  for e in h p; do
    [ "${PS_STATUS[$e,$pop]}" = ok ] && [ -n "${PS_SAMPLES[$e,$pop]}" ] || continue
    read -r "S_MED[$e,$pop]" "S_P90[$e,$pop]" _ "S_MIN[$e,$pop]" "S_MAX[$e,$pop]" < <(bench_stats "${PS_SAMPLES[$e,$pop]}" 1000)
  done
done
declare -A PS_RATIO
for pop in "${POPS[@]}"; do
  PS_RATIO[$pop]=$(bench_ratio "${S_MED[p,$pop]:-}" "${S_MED[h,$pop]:-}")
done
declare -A TP_MED TP_RATIO TP_FAILS
for t in "${TESTS[@]}"; do
  for e in h p; do
    [ -n "${T_WALL[$e,$t]:-}" ] || continue
    read -r "TP_MED[$e,$t]" _ < <(bench_stats "${T_WALL[$e,$t]}" 1000000)
    f=0; for x in ${T_FAIL[$e,$t]}; do f=$((f + x)); done
    TP_FAILS[$e,$t]=$f
  done
  TP_RATIO[$t]=$(bench_ratio "${TP_MED[p,$t]:-}" "${TP_MED[h,$t]:-}")
done
declare -A B_MED B_RATIO B_N
for op in rund runx create; do
  for e in h p; do
    B_N[$e,$op]=$(printf '%s\n' ${B_US[$e,$op]} | count_lines)
    [ -n "${B_US[$e,$op]}" ] && read -r "B_MED[$e,$op]" _ < <(bench_stats "${B_US[$e,$op]}" 1000)
  done
  B_RATIO[$op]=$(bench_ratio "${B_MED[p,$op]:-}" "${B_MED[h,$op]:-}")
done
declare -A B_SUM
for e in h p; do
  s=0; for op in rund runx create; do for x in ${B_US[$e,$op]}; do s=$((s + x)); done; done
  B_SUM[$e]=$(awk -v s="$s" 'BEGIN { printf "%.1f", s / 1e6 }')
done
B_SUM_RATIO=$(bench_ratio "${B_SUM[p]}" "${B_SUM[h]}")
TD_S_H=$(awk -v u="${TD_US[h]}" 'BEGIN { printf "%.3f", u / 1e6 }')
TD_S_P=$(awk -v u="${TD_US[p]}" 'BEGIN { printf "%.3f", u / 1e6 }')
TD_RATIO=$(bench_ratio "$TD_S_P" "$TD_S_H")
TARGET_RATIO=${PS_RATIO[$LAST]}

# ---------------------------------------------------------------- the report
x() { [ -n "$1" ] && printf '%sx' "$1" || printf 'n/a'; }
report() {
  local pop e t op
  echo
  echo "Container lifecycle: hutch vs podman, as $ME, one busybox image, network $NETWORK"
  echo "  host: $(bench_host_desc); load $LOAD_BEFORE -> $LOAD_AFTER (1-minute max $BENCH_LOAD_MAX); $T_START .. $T_END"
  echo "  hutch: $HUTCH (${HUTCH_VERSION:-?}); storage ${HUTCH_STORAGE:-?}"
  echo "  podman: ${PODMAN_VERSION:-?}, --runtime runc (${RUNC_VERSION:-?}), graph driver ${PODMAN_DRIVER:-?}, cgroupfs, file events"
  if [ "$TIMER_KIND" = hyperfine ]; then
    echo "  ps -a timer: hyperfine $HF_VERSION -N, $WARMUP warm-up + $RUNS runs, one engine after the other (the first alternates)"
  else
    echo "  ps -a timer: bash \$EPOCHREALTIME, $WARMUP warm-up + $RUNS runs, hutch and podman alternating run by run"
  fi
  echo "  ratios: podman / hutch, of medians (>1: hutch is faster)"
  if [[ $(nproc 2>/dev/null) =~ ^[0-9]+$ ]] && bench_dec_gt "$BENCH_LOAD_MAX" "$(nproc)"; then
    echo "  WARNING: the machine was busy (1-minute load up to $BENCH_LOAD_MAX on $(nproc) CPUs): the ratios are rough"
  fi
  echo
  if [ "$THROUGHPUT" -gt 0 ]; then
    echo "run -d throughput: $THROUGHPUT x run -d --name ... IMAGE sleep 1000, wall time until all are running; $ROUNDS rounds, engines taking turns"
    printf '  %-36s %10s %10s %13s  %s\n' test "hutch s" "podman s" "podman/hutch" "failed (hutch, podman)"
    for t in "${TESTS[@]}"; do
      printf '  %-36s %10s %10s %13s  %s\n' "${T_DESC[$t]}" "${TP_MED[h,$t]:--}" "${TP_MED[p,$t]:--}" "$(x "${TP_RATIO[$t]}")" \
        "${TP_FAILS[h,$t]:-0}, ${TP_FAILS[p,$t]:-0} of $(case $t in seq|conc) echo "$((THROUGHPUT * ROUNDS)) commands" ;; *) echo "$((2 * ROUNDS)) commands" ;; esac)"
    done
    for t in "${TESTS[@]}"; do
      for e in h p; do
        [ -n "${T_FIRST[$e,$t]:-}" ] && echo "    ${E_NAME[$e]} ${T_DESC[$t]}: first failure: ${T_FIRST[$e,$t]}"
      done
    done
    for e in h p; do
      printf '  %s: %s ms per container one after the other, %s ms at once (median wall / %s)\n' "${E_NAME[$e]}" \
        "$(awk -v s="${TP_MED[$e,seq]:-0}" -v n="$THROUGHPUT" 'BEGIN { printf "%.1f", s * 1000 / n }')" \
        "$(awk -v s="${TP_MED[$e,conc]:-0}" -v n="$THROUGHPUT" 'BEGIN { printf "%.1f", s * 1000 / n }')" "$THROUGHPUT"
    done
    echo
  fi
  echo "ps -a latency (ms), with RUNNING running, EXITED exited and CREATED created containers"
  printf '  %-22s %9s %9s %9s %9s   %9s %9s %9s %9s  %12s\n' "containers (r/x/c)" "hutch" "p90" "min" "max" "podman" "p90" "min" "max" "podman/hutch"
  for pop in "${POPS[@]}"; do
    set -- ${POP_MIX[$pop]}
    printf '  %-22s %9s %9s %9s %9s   %9s %9s %9s %9s  %12s\n' "$pop ($1/$2/$3)" \
      "${S_MED[h,$pop]:-${PS_STATUS[h,$pop]:-}}" "${S_P90[h,$pop]:--}" "${S_MIN[h,$pop]:--}" "${S_MAX[h,$pop]:--}" \
      "${S_MED[p,$pop]:-${PS_STATUS[p,$pop]:-}}" "${S_P90[p,$pop]:--}" "${S_MIN[p,$pop]:--}" "${S_MAX[p,$pop]:--}" \
      "$(x "${PS_RATIO[$pop]}")"
  done
  for pop in "${POPS[@]}"; do
    for e in h p; do
      [ "${PS_STATUS[$e,$pop]:-}" = ok ] || echo "    ${E_NAME[$e]} at $pop: ${PS_STATUS[$e,$pop]:-not run}: ${PS_REASON[$e,$pop]:-}"
    done
  done
  echo "  checks before timing (ps -a rows; Up / Exited / Created / other in STATUS):"
  for pop in "${POPS[@]}"; do
    printf '    %-6s expected %s %s / %s / %s / 0' "$pop" "$pop" ${POP_MIX[$pop]}
    for e in h p; do
      set -- ${CHK[$e,$pop]:-- - - - -}
      printf ';  %s %s %s / %s / %s / %s' "${E_NAME[$e]}" "$1" "$2" "$3" "$4" "$5"
    done
    echo
  done
  echo
  echo "Building the populations (one command per container, hutch and podman taking turns; median ms per command)"
  printf '  %-36s %10s %10s %13s  %s\n' command "hutch ms" "podman ms" "podman/hutch" "count (failed)"
  for op in rund runx create; do
    printf '  %-36s %10s %10s %13s  %s\n' "${OP_DESC[$op]}" "${B_MED[h,$op]:--}" "${B_MED[p,$op]:--}" "$(x "${B_RATIO[$op]}")" \
      "${B_N[h,$op]} ($((B_FAIL[h,$op]))), ${B_N[p,$op]} ($((B_FAIL[p,$op])))"
    for e in h p; do
      [ -n "${B_FIRST[$e,$op]:-}" ] && echo "    ${E_NAME[$e]}: first failure: ${B_FIRST[$e,$op]}"
    done
  done
  printf '  %-36s %10s %10s %13s\n' "total seconds, $LAST containers" "${B_SUM[h]}" "${B_SUM[p]}" "$(x "$B_SUM_RATIO")"
  echo
  printf 'Teardown: rm -f of the %s containers (one command; podman with -t 0): hutch %s s, podman %s s, podman/hutch %s\n' \
    "${TD_N[h]}" "$TD_S_H" "$TD_S_P" "$(x "$TD_RATIO")"
  echo
  echo "Target"
  printf '  hutch ps -a with %s containers at least %sx faster than podman: %s\n' "$LAST" "$TARGET_PS" \
    "$(bench_verdict "$TARGET_RATIO" ge "$TARGET_PS")"
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
    printf '{\n  "schema": "hutch-lifecycle-bench/1",\n'
    printf '  "started": %s, "finished": %s, "network": %s, "timer": %s, "hyperfine": %s, "ps_runs": %s, "ps_warmup_runs": %s,\n' \
      "$(json_str "$T_START")" "$(json_str "$T_END")" "$(json_str "$NETWORK")" "$(json_str "$TIMER_KIND")" \
      "$(json_str "$HF_VERSION")" "$RUNS" "$WARMUP"
    printf '  "host": {"desc": %s, "cpus": %s, "user": %s, "loadavg_before": %s, "loadavg_after": %s, "loadavg_1min_max": %s},\n' \
      "$(json_str "$(bench_host_desc)")" "$(json_num "$(nproc 2>/dev/null)")" "$(json_str "$ME")" \
      "$(json_str "$LOAD_BEFORE")" "$(json_str "$LOAD_AFTER")" "$BENCH_LOAD_MAX"
    printf '  "versions": {"hutch": %s, "podman": %s, "runc": %s},\n' "$(json_str "$HUTCH_VERSION")" \
      "$(json_str "$PODMAN_VERSION")" "$(json_str "$RUNC_VERSION")"
    printf '  "hutch": {"path": %s, "storage": %s, "command": %s},\n' "$(json_str "$HUTCH")" "$(json_str "$HUTCH_STORAGE")" \
      "$(json_str "$(printf '%q ' "${H[@]}")")"
    printf '  "podman": {"graph_driver": %s, "command": %s},\n' "$(json_str "$PODMAN_DRIVER")" \
      "$(json_str "$(printf '%q ' "${P[@]}")")"
    printf '  "throughput": {"containers": %s, "rounds": %s, "tests": [' "$THROUGHPUT" "$ROUNDS"
    n=0
    if [ "$THROUGHPUT" -gt 0 ]; then
      for t in "${TESTS[@]}"; do
        [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
        printf '\n    {"test": %s, "desc": %s, "ratio_podman_to_hutch": %s' "$(json_str "$t")" "$(json_str "${T_DESC[$t]}")" \
          "$(json_num "${TP_RATIO[$t]}")"
        for e in h p; do
          printf ',\n     %s: {"median_s": %s, "walls_us": %s, "failed_per_round": %s, "first_failure": %s}' \
            "$(json_str "${E_NAME[$e]}")" "$(json_num "${TP_MED[$e,$t]:-}")" "$(json_list "${T_WALL[$e,$t]:-}")" \
            "$(json_list "${T_FAIL[$e,$t]:-}")" "$(json_str "${T_FIRST[$e,$t]:-}")"
        done
        printf '}'
      done
    fi
    printf '\n  ]},\n  "ps": {"running": %s, "exited_pct": %s, "target_ratio": %s, "target_met": %s, "populations": [' \
      "$RUNNING" "$EXITED_PCT" "$TARGET_PS" \
      "$([ -n "$TARGET_RATIO" ] && { awk -v a="$TARGET_RATIO" -v b="$TARGET_PS" 'BEGIN { exit !(a >= b) }' && echo true || echo false; } || echo null)"
    n=0
    for pop in "${POPS[@]}"; do
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      set -- ${POP_MIX[$pop]}
      printf '\n    {"containers": %s, "running": %s, "exited": %s, "created": %s, "build_s": %s, "ratio_podman_to_hutch": %s' \
        "$pop" "$1" "$2" "$3" "$(awk -v u="${POP_BUILD_US[$pop]:-0}" 'BEGIN { printf "%.3f", u / 1e6 }')" "$(json_num "${PS_RATIO[$pop]}")"
      for e in h p; do
        printf ',\n     %s: {"status": %s, "reason": %s, "check": %s, "median_ms": %s, "p90_ms": %s, "min_ms": %s, "max_ms": %s, "samples_us": %s}' \
          "$(json_str "${E_NAME[$e]}")" "$(json_str "${PS_STATUS[$e,$pop]:-not run}")" "$(json_str "${PS_REASON[$e,$pop]:-}")" \
          "$(json_str "${CHK[$e,$pop]:-}")" "$(json_num "${S_MED[$e,$pop]:-}")" "$(json_num "${S_P90[$e,$pop]:-}")" \
          "$(json_num "${S_MIN[$e,$pop]:-}")" "$(json_num "${S_MAX[$e,$pop]:-}")" "$(json_list "${PS_SAMPLES[$e,$pop]:-}")"
      done
      printf '}'
    done
    printf '\n  ]},\n  "build": {"total_s": {"hutch": %s, "podman": %s}, "ratio_total_podman_to_hutch": %s, "commands": [' \
      "${B_SUM[h]}" "${B_SUM[p]}" "$(json_num "$B_SUM_RATIO")"
    n=0
    for op in rund runx create; do
      [ "$n" -gt 0 ] && printf ','; n=$((n + 1))
      printf '\n    {"op": %s, "desc": %s, "ratio_podman_to_hutch": %s' "$(json_str "$op")" "$(json_str "${OP_DESC[$op]}")" \
        "$(json_num "${B_RATIO[$op]}")"
      for e in h p; do
        printf ',\n     %s: {"median_ms": %s, "failed": %s, "first_failure": %s, "samples_us": %s}' "$(json_str "${E_NAME[$e]}")" \
          "$(json_num "${B_MED[$e,$op]:-}")" "${B_FAIL[$e,$op]}" "$(json_str "${B_FIRST[$e,$op]:-}")" "$(json_list "${B_US[$e,$op]}")"
      done
      printf '}'
    done
    printf '\n  ]},\n  "teardown": {"containers": %s, "ratio_podman_to_hutch": %s, "hutch": {"s": %s, "rc": %s, "left": %s}, "podman": {"s": %s, "rc": %s, "left": %s}},\n' \
      "$LAST" "$(json_num "$TD_RATIO")" "$TD_S_H" "${TD_RC[h]}" "${TD_LEFT[h]}" "$TD_S_P" "${TD_RC[p]}" "${TD_LEFT[p]}"
    printf '  "problems": ['
    n=0
    for m in "${PROBLEMS[@]}"; do [ "$n" -gt 0 ] && printf ', '; n=$((n + 1)); json_str "$m"; done
    printf ']\n}\n'
  } >"$JSON_OUT" || note "could not write $JSON_OUT"
  [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $JSON_OUT"
fi

# ---------------------------------------------------------------- exit status
rc=0
for e in h p; do
  [ -n "${S_MED[$e,$LAST]:-}" ] || { note "${E_NAME[$e]}: no ps -a figure at $LAST containers"; rc=1; }
done
[ "$STRICT" = 1 ] && [ "${#PROBLEMS[@]}" -gt 0 ] && rc=1
exit "$rc"
