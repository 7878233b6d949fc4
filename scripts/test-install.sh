#!/usr/bin/env bash
# Installs the library into a temporary prefix and builds examples/minimal.c
# against it through pkg-config, then runs it on stories260K: the install
# target, the pkg-config file and the public header work for an outside user.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${ELLM_DATA_DIR:-$(cd .. && pwd)/shared/data}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
cmake --install build --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -Wall -Wextra -o "$prefix/minimal" examples/minimal.c $(pkg-config --cflags --libs entrollm)
LD_LIBRARY_PATH="$libdir" "$prefix/minimal" "$data/stories260K/stories260K.bin" "$prefix/s.ellm" "Once upon a time" \
  | tee "$prefix/out.txt"
grep -q "Once upon a time" "$prefix/out.txt"
echo "test-install: 1 passed, 0 failed"
