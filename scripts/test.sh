#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test.
#   scripts/test.sh              Release build (-march=native SIMD paths) in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   scripts/test.sh --scalar     portable scalar paths only (no SIMD) in build-scalar/
# Tests read the reference data from ELLM_DATA_DIR (default: ../shared/data beside
# the checkout) and fail if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

mode=${1:-release}
case "$mode" in
  release|"")  dir=build;        flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  --sanitize)  dir=build-asan;   flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DELLM_SANITIZE=ON) ;;
  --scalar)    dir=build-scalar; flags=(-DCMAKE_BUILD_TYPE=Release -DELLM_FORCE_SCALAR=ON) ;;
  *) echo "usage: scripts/test.sh [--sanitize|--scalar]" >&2; exit 2 ;;
esac

data=${ELLM_DATA_DIR:-$(cd .. && pwd)/shared/data}
if [ ! -d "$data" ]; then
  echo "scripts/test.sh: reference data not found at $data (set ELLM_DATA_DIR)" >&2
  exit 1
fi

cmake -S . -B "$dir" "${flags[@]}" -DELLM_DATA_DIR="$data" >/dev/null
cmake --build "$dir" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
