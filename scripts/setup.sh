#!/usr/bin/env bash
# Installs the dependencies, builds hutch into build/ and installs it (to /usr/local, or
# PREFIX). Run it as your own user: the two steps that need root go through sudo; as root
# it needs no sudo.   Usage: scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -- "$@"
  else
    echo "setup.sh: \"$*\" needs root, and sudo is not installed; run this script as root once" >&2
    exit 1
  fi
}
as_root bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="${PREFIX:-/usr/local}" >/dev/null
cmake --build build -j"$(nproc)"
as_root cmake --install build >/dev/null
as_root ldconfig
echo "setup.sh: installed $(command -v hutch || echo "${PREFIX:-/usr/local}/bin/hutch")"
