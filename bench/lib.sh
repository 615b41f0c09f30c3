# Shared by the bench scripts (sourced, after PROG is set): messages, the bench user and its
# subordinate ID ranges, and a copy of the script the user can read; the JSON helpers; and,
# used by run_lifecycle_bench.sh and run_pull_bench.sh, the timer, statistics and ratios, the
# private environment (HOME, XDG_RUNTIME_DIR, storage.conf, a short run-time dir) and podman's
# command line and clean-up as the benches run it on this host.

die() { echo "$PROG: error: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

subid_has() {  # FILE NAME UID -> 0 if the user owns a range there
  [ -f "$1" ] && grep -qE "^($2|$3):" "$1"
}
subid_overlap() {  # FILE NAME UID -> prints the overlapping lines, 0 if any
  awk -F: -v n="$2" -v u="$3" '
    ($1 == n || $1 == u) && NF >= 3 { s[NR] = $2 + 0; e[NR] = $2 + $3; l[NR] = $0; k[++c] = NR }
    END {
      bad = 0
      for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) {
        a = k[i]; b = k[j]
        if (s[a] < e[b] && s[b] < e[a]) { print "  " l[a] "  overlaps  " l[b]; bad = 1 }
      }
      exit bad ? 0 : 1
    }' "$1"
}
subid_add() {  # FILE NAME: append a free 65536-ID range above every existing one
  local start
  start=$(awk -F: 'NF >= 3 { e = $2 + $3; if (e > m) m = e } END { if (m < 100000) m = 100000; print m }' "$1" 2>/dev/null)
  [ -n "$start" ] || start=100000
  echo "$2:$start:65536" >>"$1"
  note "added $2:$start:65536 to $1"
}

# As root: makes sure USER exists with one non-overlapping subordinate range in each file;
# sets BENCH_UID.
bench_prepare_user() {
  local user=$1 f overl
  [ -n "$user" ] || die "rootless containers are the point: run as an unprivileged user, or as root with --user NAME"
  [ "$user" != root ] || die "--user must name an unprivileged user"
  command -v runuser >/dev/null || die "runuser (util-linux) is missing"
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$user" || die "useradd -m $user failed"
    note "created user $user"
  fi
  BENCH_UID=$(id -u "$user")
  [ "$BENCH_UID" -ne 0 ] || die "$user has uid 0"
  for f in /etc/subuid /etc/subgid; do
    [ -e "$f" ] || { : >"$f"; chmod 0644 "$f"; }
    subid_has "$f" "$user" "$BENCH_UID" || subid_add "$f" "$user"
    if overl=$(subid_overlap "$f" "$user" "$BENCH_UID"); then
      die "$f gives $user overlapping ranges; newuidmap/newgidmap (podman, hutch) will fail with EINVAL. Remove the duplicate:
$overl"
    fi
  done
}

# As root: the script (with this file next to it) where USER can read it: SCRIPT itself, or
# a copy in a temporary folder; sets BENCH_CHILD_SCRIPT and BENCH_CHILD_DIR (empty: no copy).
bench_child_script() {
  local script=$1 user=$2
  BENCH_CHILD_SCRIPT=$script
  BENCH_CHILD_DIR=""
  if ! runuser -u "$user" -- test -r "$script" || ! runuser -u "$user" -- test -r "$(dirname -- "$script")/lib.sh"; then
    BENCH_CHILD_DIR=$(mktemp -d /tmp/hutch-bench-script.XXXXXX) || die "mktemp -d failed"
    cp -- "$script" "$(dirname -- "$script")/lib.sh" "$BENCH_CHILD_DIR/"
    chmod 0755 "$BENCH_CHILD_DIR" "$BENCH_CHILD_DIR"/*
    BENCH_CHILD_SCRIPT=$BENCH_CHILD_DIR/$(basename -- "$script")
  fi
}

# The root half of a bench that re-runs itself as RUN_AS: temp files the child writes its -o and
# --json output to (appended to the caller's child_args), and a readable copy of the image
# script when RUN_AS cannot read the repo (HUTCH_BENCH_MAKE_ROOTFS in the caller's child_env).
# NAME names the temp files. Reads OUT, JSON_OUT, RUN_AS, REPO_ROOT; bench_child_end undoes it.
bench_child_begin() {
  local name=$1
  child_out="" child_json="" mkimg=""
  child_env=()
  if [ -n "$OUT" ]; then
    child_out=$(mktemp "/tmp/hutch-$name-bench-out.XXXXXX") || die "mktemp failed"
    chown "$RUN_AS" "$child_out"
    child_args+=(-o "$child_out")
  fi
  if [ -n "$JSON_OUT" ]; then
    child_json=$(mktemp "/tmp/hutch-$name-bench-json.XXXXXX") || die "mktemp failed"
    chown "$RUN_AS" "$child_json"
    child_args+=(--json "$child_json")
  fi
  if ! runuser -u "$RUN_AS" -- test -r "$REPO_ROOT/scripts/make-busybox-rootfs.sh"; then
    mkimg=$(mktemp "/tmp/hutch-$name-bench-mkimg.XXXXXX") || die "mktemp failed"
    cp -- "$REPO_ROOT/scripts/make-busybox-rootfs.sh" "$mkimg"; chmod 0755 "$mkimg"
    child_env+=(HUTCH_BENCH_MAKE_ROOTFS="$mkimg")
  fi
}

# Copies what the child wrote to OUT and JSON_OUT, and removes the temp files.
bench_child_end() {
  [ -n "${mkimg:-}" ] && rm -f -- "$mkimg"
  if [ -n "$child_out" ]; then
    if [ -s "$child_out" ]; then cat -- "$child_out" >"$OUT" && note "wrote $OUT"; fi
    rm -f -- "$child_out"
  fi
  if [ -n "$child_json" ]; then
    if [ -s "$child_json" ]; then cat -- "$child_json" >"$JSON_OUT" && note "wrote $JSON_OUT"; fi
    rm -f -- "$child_json"
  fi
  return 0
}

# JSON output helpers: a string literal, a number or null, a list of numbers.
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
  printf '"%s"' "$s"
}
json_num() { [ -n "$1" ] && printf '%s' "$1" || printf 'null'; }
json_list() { printf '[%s]' "$(printf '%s\n' $1 | paste -sd, -)"; }

# Prints the report (the output of the bench's `report` function) and writes it to OUT.
bench_write_report() {
  local text=$1
  printf '%s\n' "$text"
  if [ -n "$OUT" ]; then
    printf '%s\n' "$text" >"$OUT" || note "could not write $OUT"
    [ -z "${HUTCH_BENCH_VIA_ROOT:-}" ] && note "wrote $OUT"
  fi
  return 0
}

# ---------------------------------------------------------------- timing and figures
# (used by run_lifecycle_bench.sh and run_pull_bench.sh; the older scripts keep their own copies)

bench_stamp() { _T=${EPOCHREALTIME//[!0-9]/}; _T=$((10#$_T)); }   # _T: microseconds, no fork

# SAMPLES DIV -> "median p90 mean min max", each sample divided by DIV, 3 decimals; p90 is
# the nearest rank. Prints nothing for no samples.
bench_stats() {
  printf '%s\n' $1 | sort -n | awk -v d="$2" '
    NF { v[++n] = $1 / d; s += v[n] }
    END {
      if (n == 0) exit
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      i = int(0.9 * n); if (i < 0.9 * n) i++; if (i < 1) i = 1
      printf "%.3f %.3f %.3f %.3f %.3f\n", med, v[i], s / n, v[1], v[n]
    }'
}
bench_ratio() {  # A B -> A/B with 2 decimals, or nothing when either is missing or B is 0
  [ -n "$1" ] && [ -n "$2" ] || return 0
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
bench_verdict() {  # VALUE ge|le LIMIT -> "7.10x: met" / "3.00x: NOT met" / "n/a"
  [ -n "$1" ] || { printf 'n/a'; return; }
  if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { exit !((op == "le") ? a <= b : a >= b) }'; then
    printf '%sx: met' "$1"
  else
    printf '%sx: NOT met' "$1"
  fi
}
bench_dec_gt() {  # A B: decimal A > B (two decimals), in bash arithmetic, no fork
  local a=${1%.*} af=${1#*.} b=${2%.*} bf=${2#*.}
  [ "$a" = "$1" ] && af=00; [ "$b" = "$2" ] && bf=00
  af=${af}00 bf=${bf}00
  (( 10#$a * 100 + 10#${af:0:2} > 10#$b * 100 + 10#${bf:0:2} ))
}
BENCH_LOAD_MAX=0
bench_sample_load() {  # keeps the highest 1-minute load average seen in BENCH_LOAD_MAX, no fork
  local l _
  read -r l _ </proc/loadavg
  bench_dec_gt "$l" "$BENCH_LOAD_MAX" && BENCH_LOAD_MAX=$l
  return 0
}
# hyperfine --export-json FILE -> its "times" (seconds) as microseconds, space-separated
bench_hyperfine_times() {
  tr -d ' \n\t' <"$1" | sed -n 's/.*"times":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' |
    awk 'NF { printf "%d ", $1 * 1e6 + 0.5 }'
}
# One line on the host for a report header: kernel, CPUs, the cgroup layout.
bench_host_desc() {
  local layout cg2
  layout=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)
  cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
  case $layout in
    cgroup2fs) layout="cgroup v2" ;;
    tmpfs) layout="cgroup v1${cg2:+, hybrid: cgroup2 at $cg2 [$(cat "$cg2/cgroup.controllers" 2>/dev/null)]}" ;;
    *) layout="cgroups unknown ($layout)" ;;
  esac
  printf 'kernel %s, %s CPUs, %s' "$(uname -r)" "$(nproc 2>/dev/null || echo '?')" "$layout"
}

# ---------------------------------------------------------------- the private environment
# As the bench user: a private HOME and XDG_RUNTIME_DIR under W (rootless podman needs a
# runtime dir and writes under HOME even with --root; hutch reads HOME and XDG_* for its
# defaults), no host storage.conf (CONTAINERS_STORAGE_CONF names a private one that only
# names a driver; the flags pick the real one), and the run-time base RB: W/run, or a short
# /tmp dir when W is long, because podman refuses a --runroot longer than 50 characters.
bench_private_env() {  # W
  local w=$1
  mkdir -p "$w/home" "$w/xdg" || die "cannot create $w/home"
  chmod 0700 "$w/xdg"
  export HOME=$w/home XDG_RUNTIME_DIR=$w/xdg
  unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME STORAGE_DRIVER STORAGE_OPTS HUTCH_CONFIG CONTAINER_HOST
  printf '[storage]\ndriver = "vfs"\n' >"$w/storage.conf"
  export CONTAINERS_STORAGE_CONF=$w/storage.conf
  RB=$w/run
  if [ "${#RB}" -gt 40 ]; then
    RB=$(mktemp -d /tmp/hrb.XXXXXX) || die "mktemp -d failed"
  fi
  mkdir -p "$RB" && chmod 0700 "$RB"
}

# podman as the benches run it on this host: a private store, --runtime runc (crun refuses
# the hybrid cgroup layout), cgroupfs and file events (what podman picks without systemd,
# passed so that a systemd host measures the same), native overlay unless DRIVER names another
# (vfs). Sets BENCH_PODMAN.
bench_podman_cmd() {  # ROOT RUNROOT TMPDIR [DRIVER]
  BENCH_PODMAN=(podman --root "$1" --runroot "$2" --tmpdir "$3" --storage-driver "${4:-overlay}"
                --cgroup-manager cgroupfs --events-backend file --runtime runc)
}
# Why podman cannot be used here, or nothing: podman or runc missing, a runroot too long.
bench_podman_missing() {  # RUNROOT
  if ! have podman; then
    echo "podman is not installed (apt-get install -y podman); this bench measures hutch against it"
  elif ! have runc; then
    echo "runc is not installed (apt-get install -y runc); podman needs --runtime runc on this host"
  elif [ "${#1}" -gt 50 ]; then
    echo "podman's --runroot $1 would be longer than 50 characters (podman refuses it)"
  fi
}
# Removes podman's store (system reset also deletes files owned by subordinate IDs), then
# stops the rootless pause process that holds podman's user namespace, if it is still ours.
bench_podman_reset() {  # TMPDIR LOG PODMAN-ARGS...
  local tmp=$1 log=$2 p t pids=()
  shift 2
  for p in "$tmp/pause.pid" "$XDG_RUNTIME_DIR/libpod/tmp/pause.pid"; do
    [ -s "$p" ] && pids+=("$(cat "$p" 2>/dev/null)")
  done
  timeout 600 "$@" system reset --force >>"$log" 2>&1
  for t in "${pids[@]}"; do
    [[ $t =~ ^[0-9]+$ ]] && [ "$(stat -c %u "/proc/$t" 2>/dev/null)" = "$(id -u)" ] && kill "$t" 2>/dev/null
  done
  return 0
}
