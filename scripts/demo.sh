#!/usr/bin/env bash
# Installs dependencies, builds, and runs the built-in demo: a model with
# SmolLM-135M's shape and generated (not trained) weights is written, compressed
# to uint8 and uint4 with Huffman coding, verified, decoded on every core and run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/entrollm demo "$@"
