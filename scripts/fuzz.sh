#!/usr/bin/env bash
# Builds every libFuzzer target (src/*/fuzz_*.c) with clang, ASan and UBSan,
# and runs each for SECONDS (default 60) on a seed corpus made from real files.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Fuzzing builds skip checksum comparisons (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
# so the fuzzer reaches the parsers behind them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true
data=${ELLM_DATA_DIR:-$(cd .. && pwd)/shared/data}
CC=clang cmake -S . -B build-fuzz -DELLM_FUZZ=ON -DELLM_NATIVE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS=-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in src/*/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
corpus_root=build-fuzz/corpus
mkdir -p "$corpus_root"
# Seeds: real model files, compressed files, vocabularies.
seeds="$corpus_root/seeds"
mkdir -p "$seeds"
if [ -d "$data" ]; then
  build/entrollm compress "$data/stories260K/stories260K.bin" -o "$seeds/s8.ellm" -q >/dev/null
  build/entrollm compress "$data/stories260K/stories260K.bin" -o "$seeds/s4.ellm" --bits 4 --coder rans -q >/dev/null
  cp "$data/stories260K/tok512.bin" "$data/stories260K/tok512.model" "$seeds/" 2>/dev/null || true
fi
for t in "${targets[@]}"; do
  echo "== $t ($secs s) =="
  mkdir -p "$corpus_root/$t"
  extra=()
  for d in src/*/fuzz_seeds/"$t"; do [ -d "$d" ] && extra+=("$d"); done
  build-fuzz/"$t" "$corpus_root/$t" "$seeds" "${extra[@]}" -max_total_time="$secs" -max_len=400000 -rss_limit_mb=4096 \
    -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units)|ERROR|SUMMARY" || true
done
