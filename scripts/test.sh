#!/usr/bin/env bash
# The one test command of hutch.   Usage: sudo scripts/test.sh
#
# On Debian 12, as root: installs the dependencies (scripts/install-deps.sh), builds into
# build/, runs the unit tests with ctest, installs to /usr/local, then runs the black-box
# integration suite (build/tests/integration/hutch_integration_tests) three times:
#   root     as root                                      HUTCH_TEST_MODE=root
#   ranged   as hutch-ci, with /etc/subuid and /etc/subgid ranges   HUTCH_TEST_MODE=ranged
#   norange  as hutch-ci-norange, with no ranges at all             HUTCH_TEST_MODE=norange
# The two users are created when missing. Each stage runs even when an earlier one failed
# (as far as it can); the last line is "tests: N passed, M failed" (ctest tests plus gtest
# tests of the three runs), and the exit status is non-zero when anything failed.
#
# Environment: HUTCH_TEST_JOBS (build parallelism, default 2), HUTCH_TEST_TIMEOUT (seconds
# per integration run, default 900), HUTCH_TEST_FILTER (a --gtest_filter for the runs).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -- bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
# useradd, runuser and ldconfig live in sbin, which a bare environment may lack.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"
jobs=${HUTCH_TEST_JOBS:-2}
it_timeout=${HUTCH_TEST_TIMEOUT:-900}
ranged_user=hutch-ci
norange_user=hutch-ci-norange

passed=0
failed=0
problems=()
failed_tests=()

stage() { printf '\n==== %s\n' "$*"; }
problem() {
  problems+=("$*")
  echo "test.sh: $*" >&2
}

work=$(mktemp -d /tmp/hutch-test.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT

# ---- dependencies -------------------------------------------------------------------------------
stage "dependencies"
if ! bash scripts/install-deps.sh; then
  problem "scripts/install-deps.sh failed"
  failed=$((failed + 1))
fi
# What the integration suite itself uses: compressors for the import tests, user tools, curl for
# the registry fixture's own tests.
extra=()
for p in gzip xz-utils zstd tar coreutils passwd util-linux busybox-static uidmap curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra+=("$p")
done
if [ "${#extra[@]}" -gt 0 ]; then
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${extra[@]}"; }; then
    problem "could not install ${extra[*]}"
  fi
fi

# ---- build ----------------------------------------------------------------------------------------
stage "build"
built=0
if cmake -S . -B build && cmake --build build -j"$jobs"; then
  built=1
else
  problem "the build failed"
  failed=$((failed + 1))
fi

# ---- unit tests -----------------------------------------------------------------------------------
if [ "$built" -eq 1 ]; then
  stage "unit tests (ctest, as root)"
  log=$work/unit.log
  set +e
  ctest --test-dir build --output-on-failure 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line=$(grep -aE '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  nfail=0
  if [ -n "$line" ]; then
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    nfail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + total - nfail))
    failed=$((failed + nfail))
    while IFS= read -r t; do failed_tests+=("unit: $t"); done < <(sed -n '/The following tests FAILED/,$p' "$log" | grep -aE '^[[:space:]]+[0-9]+ - ' || true)
  fi
  if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
    problem "ctest exited $rc"
    failed=$((failed + 1))
  fi
fi

# ---- install --------------------------------------------------------------------------------------
installed=0
if [ "$built" -eq 1 ]; then
  stage "install to /usr/local"
  if cmake --install build && ldconfig; then
    installed=1
  else
    problem "cmake --install failed"
    failed=$((failed + 1))
  fi
fi

# ---- test users -----------------------------------------------------------------------------------
# Drops the lines of a user (by name or uid) from a subordinate-ID file, keeping its inode and mode.
drop_subids() {
  local file=$1 user=$2 uid=$3
  [ -e "$file" ] || install -m 0644 /dev/null "$file" || return 1
  awk -F: -v u="$user" -v id="$uid" '$1 != u && $1 != id' "$file" >"$work/subid.tmp" || return 1
  cat "$work/subid.tmp" >"$file"
}
ensure_user() {
  local user=$1 home
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user" || return 1
  fi
  home=$(getent passwd "$user" | cut -d: -f6) || return 1
  if [ ! -d "$home" ]; then
    mkdir -p "$home" && chown "$user:$(id -gn "$user")" "$home" || return 1
  fi
  return 0
}
# (Called in an `if`: set -e is off in here, so every step checks itself.)
setup_users() {
  local f start
  ensure_user "$ranged_user" || return 1
  ensure_user "$norange_user" || return 1
  for f in /etc/subuid /etc/subgid; do
    drop_subids "$f" "$ranged_user" "$(id -u "$ranged_user")" || return 1
    drop_subids "$f" "$norange_user" "$(id -u "$norange_user")" || return 1
  done
  # One 65536-wide range above every range in either file.
  start=$(awk -F: 'NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { e = $2 + $3; if (e > m) m = e }
                   END { s = 100000; if (m > s) s = m; printf "%.0f\n", s }' /etc/subuid /etc/subgid) || return 1
  echo "$ranged_user:$start:65536" >>/etc/subuid || return 1
  echo "$ranged_user:$start:65536" >>/etc/subgid || return 1
  echo "$ranged_user: subordinate uids and gids $start-$((start + 65535))"
  echo "$norange_user: no subordinate ranges"
}
users_ok=0
stage "test users"
if setup_users; then
  users_ok=1
else
  problem "could not set up the test users"
  failed=$((failed + 1))
fi

# ---- device nodes ---------------------------------------------------------------------------------
# A fresh machine of this kind has /dev/fuse and /dev/net/tun at 0600; distributions make them 0666
# (udev's default rules), which fuse-overlayfs (and later slirp) need as a user. Do what a distro does.
for dev in /dev/fuse /dev/net/tun; do
  if [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    chmod 0666 "$dev" && echo "$dev: mode 0666, as a distribution sets it"
  fi
done

# ---- integration tests ----------------------------------------------------------------------------
it_bin=build/tests/integration/hutch_integration_tests
it_dir=$work/integration
mkdir -p "$it_dir/fixture-plugins"
if [ "$installed" -eq 1 ]; then
  if [ -x "$it_bin" ]; then
    cp "$it_bin" "$it_dir/"
  else
    problem "$it_bin was not built"
  fi
  [ -x build/tests/conformance/hutch_conformance_tests ] && cp build/tests/conformance/hutch_conformance_tests "$it_dir/"
  if [ -d build/tests/fixtures/plugins ]; then
    cp -r build/tests/fixtures/plugins/. "$it_dir/fixture-plugins/"
  else
    problem "build/tests/fixtures/plugins is missing"
  fi
  chmod -R a+rX "$work"
fi

run_integration() {
  local mode=$1 user=$2 home log rc ok bad started
  stage "integration tests, mode $mode, as $user"
  if [ "$installed" -ne 1 ] || [ ! -x "$it_dir/hutch_integration_tests" ]; then
    problem "integration ($mode) not run: nothing built or installed"
    failed=$((failed + 1))
    return
  fi
  if [ "$mode" != root ] && [ "$users_ok" -ne 1 ]; then
    problem "integration ($mode) not run: no test user"
    failed=$((failed + 1))
    return
  fi
  home=$(getent passwd "$user" | cut -d: -f6)
  log=$work/integration-$mode.log
  local filter=()
  [ -n "${HUTCH_TEST_FILTER:-}" ] && filter=("--gtest_filter=$HUTCH_TEST_FILTER")
  set +e
  (
    cd /tmp &&
      runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
        HUTCH_BIN=/usr/local/bin/hutch HUTCH_TEST_MODE="$mode" HUTCH_TEST_FIXTURE_PLUGINS="$it_dir/fixture-plugins" \
        timeout -k 30 "$it_timeout" "$it_dir/hutch_integration_tests" --gtest_color=no "${filter[@]}"
  ) 2>&1 </dev/null | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  count_log "$mode" "$log" "$rc"
}

# Adds a gtest log's results to the totals; `rc` is the suite's exit code.
count_log() {
  local mode=$1 log=$2 rc=$3 ok bad started
  ok=$(grep -acE '^\[       OK \] ' "$log" || true)
  bad=$(grep -acE '^\[  FAILED  \] .+ \([0-9]+ ms\)$' "$log" || true)
  started=$(grep -acE '^\[ RUN      \] ' "$log" || true)
  passed=$((passed + ok))
  failed=$((failed + bad))
  # A test that started and never finished (a crash, the timeout) failed too.
  if [ "$started" -gt $((ok + bad)) ]; then
    problem "integration ($mode): $((started - ok - bad)) test(s) never finished"
    failed=$((failed + started - ok - bad))
    bad=$((started - ok))
  fi
  while IFS= read -r t; do failed_tests+=("$mode: $t"); done < <(grep -aE '^\[  FAILED  \] .+ \([0-9]+ ms\)$' "$log" | sed -E 's/^\[  FAILED  \] //' || true)
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    problem "integration ($mode) exited $rc with no failed test reported (crash or timeout?)"
    failed=$((failed + 1))
  fi
  if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$rc" -eq 0 ]; then
    problem "integration ($mode) ran no test"
    failed=$((failed + 1))
  fi
}

# A conformance suite again, rootless: as the ranged user inside hutch's user namespace, where
# `hutch run` puts everything it does. Storage: whiteout devices, user.overlay xattrs and file
# capabilities as a user makes them. Runtime: native, crun and runc making their namespaces,
# mounts and devices inside it (limits cannot be enforced there: those tests skip).
run_rootless_conformance() {
  local user=$1 suite=$2 home log rc
  stage "$suite conformance, rootless, as $user"
  if [ "$installed" -ne 1 ] || [ "$users_ok" -ne 1 ] || [ ! -x "$it_dir/hutch_conformance_tests" ]; then
    problem "rootless $suite conformance not run: nothing built or installed, or no test user"
    failed=$((failed + 1))
    return
  fi
  home=$(getent passwd "$user" | cut -d: -f6)
  log=$work/conformance-rootless-$suite.log
  local filter
  case $suite in
    storage) filter='*StorageConformance*' ;;
    runtime) filter='*RuntimeConformance*' ;;
  esac
  set +e
  (
    cd /tmp &&
      runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin \
        HUTCH_CONFORMANCE_PLUGINS=/usr/local/lib/hutch/plugins HUTCH_CONFORMANCE_INIT=/usr/local/libexec/hutch/hutch-init \
        timeout -k 30 600 /usr/local/bin/hutch unshare "$it_dir/hutch_conformance_tests" --gtest_color=no \
        --gtest_filter="$filter"
  ) 2>&1 </dev/null | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  count_log "rootless $suite conformance" "$log" "$rc"
}

run_integration root root
run_integration ranged "$ranged_user"
run_integration norange "$norange_user"
run_rootless_conformance "$ranged_user" storage
run_rootless_conformance "$ranged_user" runtime

# ---- summary --------------------------------------------------------------------------------------
stage "summary"
for t in "${failed_tests[@]}"; do echo "  FAILED $t"; done
for p in "${problems[@]}"; do echo "  problem: $p"; done
echo "tests: $passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
