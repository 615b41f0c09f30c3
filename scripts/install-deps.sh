#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of hutch on Debian 12.
# Usage: sudo scripts/install-deps.sh        (idempotent; needs root)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  # build
  build-essential cmake pkg-config git
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  nlohmann-json3-dev libtomlplusplus-dev libgtest-dev libgmock-dev
  libarchive-dev libsubid-dev libcap-dev libseccomp-dev libssl-dev
  libcurl4-openssl-dev zlib1g-dev libzstd-dev libslirp-dev libglib2.0-dev
  # run: subordinate id helpers
  uidmap
  # tests: a static busybox to make images from, peers to compare with
  busybox-static tar procps gzip xz-utils zstd util-linux passwd
  # tests: a real terminal for run -it, attach and detach keys
  tmux
  # tests: a real registry (plain, TLS with htpasswd, token auth), and skopeo for interop
  docker-registry skopeo apache2-utils openssl
  # tests: the distribution's registries.conf drop-ins (short names), as podman brings them
  golang-github-containers-common
  # benchmark peers
  podman runc crun fuse-overlayfs slirp4netns passt
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
