#!/usr/bin/env bash
# Cross-compiles entrollm for 64-bit ARM (aarch64) and runs the whole test
# suite under qemu-user on this x86-64 machine.
#   scripts/test-arm.sh                  ARMv8-A (NEON, SMULL kernels) in build-arm/, every test
#   scripts/test-arm.sh --dotprod        ARMv8.2-A+dotprod (SDOT kernels) in build-arm-dotprod/,
#                                        emulated with QEMU_CPU=max
#   scripts/test-arm.sh -R model_        extra arguments go to ctest
# Installs what it needs from Debian when missing (as root, or with sudo):
# the cross compiler, the arm64 -dev packages of the dependencies (multiarch,
# after `dpkg --add-architecture arm64`) and qemu-user. Tests read the
# reference data from ELLM_DATA_DIR (default: ../shared/data beside the
# checkout) and fail if it is missing. See docs/DEVELOPING.md, "ARM".
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-arm
march=armv8-a
if [ "${1:-}" = "--dotprod" ]; then
  shift
  dir=build-arm-dotprod
  march=armv8.2-a+dotprod
  # qemu-user's "max" CPU has every extension it emulates, dotprod included;
  # qemu reads QEMU_CPU itself, so ctest and the shell tests both get it.
  export QEMU_CPU=max
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

scripts/install-deps.sh   # cmake, pkg-config and jq for the host side

# --- the cross toolchain, the arm64 libraries, the emulator ------------------
LIBS=(libjansson-dev libxxhash-dev libpcre2-dev libzstd-dev liblzma-dev)
PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
for l in "${LIBS[@]}"; do PKGS+=("$l:arm64"); done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "test-arm: enabling the arm64 architecture in dpkg"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-arm: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -z "$qemu" ]; then
  echo "test-arm: qemu-aarch64 not found after installing qemu-user" >&2
  exit 1
fi

data=${ELLM_DATA_DIR:-$(cd .. && pwd)/shared/data}
if [ ! -d "$data" ]; then
  echo "test-arm: reference data not found at $data (set ELLM_DATA_DIR)" >&2
  exit 1
fi

# --- build --------------------------------------------------------------------
start=$(date +%s)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DELLM_ARM_MARCH="$march" \
  -DCMAKE_CROSSCOMPILING_EMULATOR="$qemu" -DELLM_DATA_DIR="$data" >/dev/null
cmake --build "$dir" -j"$(nproc)"
built=$(date +%s)

# --- run ----------------------------------------------------------------------
# ctest puts CMAKE_CROSSCOMPILING_EMULATOR in front of the C test executables
# itself. The shell tests (bash tools/entrollm/test_*.sh build-arm/entrollm)
# call the program directly: without a binfmt_misc handler for aarch64 ELF the
# kernel refuses it, so they run it through ELLM_EMULATOR instead. With a
# handler (qemu-user-static + binfmt-support) both ways work.
export ELLM_EMULATOR="$qemu"
export ELLM_NO_PROGRESS=1
if "$dir/entrollm" --help >/dev/null 2>&1; then
  echo "test-arm: binfmt_misc runs aarch64 programs directly"
else
  echo "test-arm: no binfmt_misc handler for aarch64; shell tests use ELLM_EMULATOR=$qemu"
fi
echo "test-arm: $("$qemu" "$dir/entrollm" --version 2>/dev/null || echo entrollm) built for aarch64 ($march) in $((built - start)) s; running the tests under $("$qemu" --version | head -1)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" "$@"
echo "test-arm: build $((built - start)) s, tests $(($(date +%s) - built)) s"
