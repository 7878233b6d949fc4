#!/usr/bin/env bash
# Re-makes the small .ellm seed files of the fuzz_ellm target
# (src/container/fuzz_seeds/fuzz_ellm/) with the current format: an 11-tensor
# model of `entrollm synth` (hidden 8, one layer, vocabulary 16), compressed
# four ways so that mutations reach every kind of directory record and block.
# Run after a change to the .ellm or coded-block format:
#   scripts/make-fuzz-seeds.sh [build/entrollm]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/entrollm}
out=src/container/fuzz_seeds/fuzz_ellm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/config.json" <<'JSON'
{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":8,"intermediate_size":16,
 "num_attention_heads":2,"num_key_value_heads":1,"num_hidden_layers":1,"vocab_size":16,
 "max_position_embeddings":32,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false}
JSON
"$bin" synth "$tmp/config.json" -o "$tmp/m" >/dev/null 2>&1
mkdir -p "$out"
"$bin" compress "$tmp/m" -o "$out/tiny-u4-huffman.ellm" --bits 4 --coder huffman -q >/dev/null
"$bin" compress "$tmp/m" -o "$out/tiny-u8-rans-row.ellm" --bits 8 --coder rans --granularity row -q >/dev/null
"$bin" compress "$tmp/m" -o "$out/tiny-u4-raw-group-keep.ellm" --bits 4 --coder raw --granularity group:4 \
  --keep norms -q >/dev/null
"$bin" compress "$tmp/m" -o "$out/tiny-u8-auto.ellm" --bits 8 -q >/dev/null
for f in "$out"/*.ellm; do "$bin" verify "$f" >/dev/null; done
ls -l "$out"
