# Shared by the bench scripts (sourced, after PROG is set): messages, the bench user and its
# subordinate ID ranges, and a copy of the script the user can read.

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
