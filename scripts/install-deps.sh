#!/usr/bin/env bash
# Installs what entrollm needs to build and test, from Debian's packages.
# Safe to run again; uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake pkg-config
      libjansson-dev libxxhash-dev libpcre2-dev libzstd-dev liblzma-dev
      clang jq)
# With the arm64 libraries installed too (scripts/test-arm.sh), a bare name is
# ambiguous to dpkg: ask for the native architecture's package then.
arch=$(dpkg --print-architecture)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || dpkg -s "$p:$arch" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # wait for another apt run to finish instead of failing on its lock
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
fi
