#!/usr/bin/env bash
# test_cli.sh - the entrollm program as a user meets it: compress / info /
# verify / decompress on the real stories260K model, --help on every command,
# --json output, exit codes, and bad input of every kind leaving no partial
# output file. Usage: test_cli.sh PATH/TO/entrollm   (ELLM_DATA_DIR must be set)
set -u
BIN=${1:?usage: test_cli.sh ENTROLLM_BINARY}
NAME=test_cli
. "$(dirname "$0")/cli_test_setup.sh"
command -v jq >/dev/null || { echo "test_cli: jq is required (scripts/install-deps.sh installs it)" >&2; exit 1; }
pass=0 fail=0
ok()   { pass=$((pass + 1)); }
bad()  { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect CODE CMD...: runs CMD, checks its exit code
expect() {
  local want=$1; shift
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "exit $got (want $want): $* :: $(head -c 300 "$T/err")"; fi
}
# expect_msg CODE PATTERN CMD...: exit code and a stderr message matching PATTERN
expect_msg() {
  local want=$1 pat=$2; shift 2
  expect "$want" "$@"
  grep -qiE "$pat" "$T/err" && ok || bad "message /$pat/ not in: $(head -c 300 "$T/err") ($*)"
}

# --help on every command, exit 0, text on stdout
for c in compress info verify decompress bench demo; do
  expect 0 "$BIN" "$c" --help
  grep -q "Usage" "$T/out" && ok || bad "$c --help prints no usage"
done
expect 0 "$BIN" --help
expect 2 "$BIN" no-such-command

# compress: every bits x granularity x coder combination round-trips through verify
for bits in 8 4; do
  for gran in tensor row group:64; do
    for coder in huffman rans raw auto; do
      out="$T/m-$bits-${gran/:/}-$coder.ellm"
      expect 0 "$BIN" compress "$MODEL" -o "$out" --bits "$bits" --granularity "$gran" --coder "$coder" -q
      expect 0 "$BIN" verify "$out"
    done
  done
done

# --json: one object with the documented keys
expect 0 "$BIN" compress "$MODEL" -o "$T/s8.ellm" --json
jq -e '.params == 260032 and .file_bytes > 0 and .payload_bytes > 0 and (.entropy_bits_per_weight|type)=="number"
       and .coded_bits_per_weight <= .entropy_bits_per_weight + 0.05 and .effective_bits_per_weight > .coded_bits_per_weight
       and (.tensors|length) == 47 and (.tensors[0]|has("name") and has("shape") and has("scheme") and has("bits")
       and has("entropy_bits") and has("coded_bits_per_weight"))' "$T/out" >/dev/null && ok || bad "compress --json keys"
jq -e '[.tensors[] | select(.name|test("norm")) | .scheme] | all(. == "unsigned")' "$T/out" >/dev/null \
  && ok || bad "auto scheme: norm weights (all positive) must be unsigned"
jq -e '[.tensors[] | select(.name|test("wq")) | .scheme] | all(. == "asymmetric")' "$T/out" >/dev/null \
  && ok || bad "auto scheme: mixed-sign tensors must be asymmetric"
expect 0 "$BIN" info "$T/s8.ellm" --json
jq -e '.params == 260032 and (.tensors|length) == 47 and .metadata.config.hidden_size == 64
       and (.blobs|map(.name)|index("tokenizer.bin")) != null' "$T/out" >/dev/null && ok || bad "info --json"
# the file is exactly header + metadata + blobs + payloads + directory (docs/FORMAT.md, version 2)
jq -e '.format_version == 2 and .header_bytes == 64 and .file_bytes == .header_bytes + .metadata_bytes
       + .blob_bytes + .payload_bytes + .directory_bytes' "$T/out" >/dev/null && ok || bad "info --json byte accounting"
# the default coder gives the embeddings' columns their own rANS tables (docs/CODED_BLOCK.md 4.2)
jq -e '.tensors[] | select(.name == "tok_embeddings.weight") | .coder == "rans" and .rans_classes >= 2
       and .rans_class_axis == "columns" and .rans_states == 1' "$T/out" >/dev/null && ok || bad "info --json rans classes"
expect 0 "$BIN" info "$T/s8.ellm"
grep -q "tok_embeddings.weight" "$T/out" && ok || bad "info lists tensors"
grep -Eq "tok_embeddings.weight .* cols:[234] " "$T/out" && ok || bad "info shows the classes"

# --keep norms keeps them in float and says so
expect 0 "$BIN" compress "$MODEL" -o "$T/keep.ellm" --keep norms --json
jq -e '[.tensors[] | select(.name|test("norm"))] | all(.bits == 32 and .kept == "--keep norms")' "$T/out" >/dev/null \
  && ok || bad "--keep norms"

# decompress: integers and dequantized floats
expect 0 "$BIN" decompress "$T/s8.ellm" -o "$T/ints.safetensors"
expect 0 "$BIN" decompress "$T/s8.ellm" -o "$T/f16.safetensors" --dequantize f16
[ -s "$T/ints.safetensors" ] && [ -s "$T/f16.safetensors" ] && ok || bad "decompress outputs"

# verify catches a flipped bit in a payload (exit 3) and names the tensor
cp "$T/s8.ellm" "$T/flip.ellm"
off=$(( $(stat -c %s "$T/flip.ellm") / 2 ))
printf '\x5a' | dd of="$T/flip.ellm" bs=1 seek="$off" conv=notrunc 2>/dev/null
expect_msg 3 "checksum|corrupt" "$BIN" verify "$T/flip.ellm"
# truncated file
head -c 5000 "$T/s8.ellm" >"$T/trunc.ellm"
expect_msg 3 "truncated|outside|short" "$BIN" verify "$T/trunc.ellm"
# not an .ellm file
expect_msg 3 "magic" "$BIN" verify "$MODEL"
expect_msg 1 "cannot open|No such" "$BIN" info "$T/missing.ellm"

# bad flags: usage errors (exit 2) and no output file
for args in "--bits 5" "--bits x" "--scheme weird" "--granularity group:3" "--granularity cols" \
            "--coder zip" "--segment 7" "--threads 0" "--keep everything" "--frobnicate"; do
  # shellcheck disable=SC2086
  expect 2 "$BIN" compress "$MODEL" -o "$T/flag.ellm" $args
  [ ! -e "$T/flag.ellm" ] && ok || bad "output written despite bad flag $args"
done
expect 2 "$BIN" compress "$MODEL"
expect 2 "$BIN" verify

# bad models: messages name the file; no partial output left behind
head -c 1000 "$MODEL" >"$T/trunc.bin"
expect_msg 1 "trunc\\.bin" "$BIN" compress "$T/trunc.bin" -o "$T/out.ellm"
printf 'GGUF\x03\x00\x00\x00garbage' >"$T/bad.gguf"
expect_msg 1 "bad\\.gguf" "$BIN" compress "$T/bad.gguf" -o "$T/out.ellm"
mkdir -p "$T/hf"
echo '{"model_type": "llama"' >"$T/hf/config.json"
expect_msg 1 "config\\.json" "$BIN" compress "$T/hf" -o "$T/out.ellm"
ls "$T" | grep -q '^out\.ellm' && bad "partial output file left behind" || ok
ls "$T" | grep -q 'tmp' && bad "temporary file left behind: $(ls "$T" | grep tmp)" || ok

# synth: a generated model in a real config's shape, marked as generated all the way through
PHI=$DATA/hf/phi-3.5-mini-instruct/config.json
expect 0 "$BIN" synth "$PHI" -o "$T/phi" --layers 1 --dtype bf16
grep -qi "generated" "$T/out" && ok || bad "synth does not say the weights are generated"
[ -f "$T/phi/config.json" ] && [ -f "$T/phi/model.safetensors" ] && [ -f "$T/phi/tokenizer.json" ] && ok \
  || bad "synth output folder incomplete"
expect 0 "$BIN" compress "$T/phi" -o "$T/phi.ellm" --bits 4 --json
jq -e '.weights_generated == true and ([.tensors[].name] | index("model.layers.0.self_attn.qkv_proj.weight")) != null' \
  "$T/out" >/dev/null && ok || bad "compress of the synthesized Phi-3.5 folder"
expect 0 "$BIN" info "$T/phi.ellm"
grep -q "generated (not trained)" "$T/out" && ok || bad "info does not say the weights are generated"
expect 2 "$BIN" synth "$PHI" -o "$T/phi2" --layers 0
expect 1 "$BIN" synth "$T/missing.json" -o "$T/phi3"

# tokenize / detokenize: the reference prompt ids of llama2.c's run.c
expect 0 "$BIN" tokenize "$MODEL" "Once upon a time" --ids --bos
[ "$(cat "$T/out")" = "1 403 407 261 378" ] && ok || bad "tokenize ids: '$(cat "$T/out")'"
printf 'Once upon a time' | "$BIN" tokenize "$MODEL" - --ids >"$T/out" 2>"$T/err" && ok || bad "tokenize from stdin"
[ "$(cat "$T/out")" = "403 407 261 378" ] && ok || bad "tokenize stdin ids: '$(cat "$T/out")'"
expect 0 "$BIN" detokenize "$MODEL" 1 403 407 261 378
grep -q "^Once upon a time" "$T/out" && ok || bad "detokenize: '$(cat "$T/out")'"
expect 0 "$BIN" tokenize "$T/s8.ellm" "Once upon a time" --json
jq -e '.ids == [403, 407, 261, 378]' "$T/out" >/dev/null && ok || bad "tokenize --json from the .ellm: $(cat "$T/out")"
expect 2 "$BIN" tokenize "$MODEL" "x" --frobnicate
expect_msg 2 "outside the vocabulary" "$BIN" detokenize "$MODEL" 99999
for c in tokenize detokenize synth run chat export perplexity hellaswag gsm8k report; do
  expect 0 "$BIN" "$c" --help
done

# run: the float checkpoint reproduces llama2.c's greedy text; the .ellm runs; exports run the same
REF="Once upon a time, there was a little girl named Lily. She loved to play"
expect 0 "$BIN" run "$MODEL" -p "Once upon a time" -n 24 --temp 0
grep -qF "$REF" "$T/out" && ok || bad "run (float) is not llama2.c's greedy text: $(head -c 200 "$T/out")"
grep -qiE "tok(ens)?/s" "$T/err" && ok || bad "run prints no timings line: $(cat "$T/err")"
expect 0 "$BIN" run "$T/s8.ellm" -p "Once upon a time" -n 24 --temp 0
grep -q "^Once upon a time" "$T/out" && ok || bad "run from the .ellm"
expect 0 "$BIN" export "$MODEL" --to hf "$T/hf-export"
expect 0 "$BIN" run "$T/hf-export" -p "Once upon a time" -n 24 --temp 0 --tokenizer "$DATA/stories260K/tok512.bin"
grep -qF "$REF" "$T/out" && ok || bad "run of the HF export differs: $(head -c 200 "$T/out")"
expect 2 "$BIN" run "$MODEL" -n 5
expect 2 "$BIN" run "$MODEL" -p hi --temp -1
expect_msg 2 "[-]-tokens needs N" "$BIN" run "$MODEL" -p hi --tokens
expect_msg 2 "[-]t needs an integer in \\[1, 1024\\]" "$BIN" run "$MODEL" -p hi -t 2000
expect_msg 2 "unknown option '--topp'" "$BIN" chat "$MODEL" --topp 0.5
expect_msg 2 "unexpected argument 'two'" "$BIN" chat "$MODEL" two
# chat: a synthesized Phi-3.5 model answers a piped turn with its own template
printf 'Hello there\n' | "$BIN" chat "$T/phi.ellm" -n 4 --seed 1 >"$T/out" 2>"$T/err" && ok || bad "chat: $(cat "$T/err")"
# chat on a model without a chat template is refused clearly
printf 'hi\n' | "$BIN" chat "$MODEL" -n 4 >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" = 1 ] && grep -qi "template" "$T/err" && ok || bad "chat without a template: exit $rc, $(cat "$T/err")"

# bench decode: figures and --json keys (a small synthetic tensor; this is not a timed test)
expect 0 "$BIN" bench decode --synthetic 200000 --bits 4 --threads 2 --repeat 1 --json
jq -e '(.runs|length) == 2 and (.runs[0].symbols_per_second > 0) and .coded_bytes > 0 and .zstd_bytes > 0
       and .xz_bytes > 0' "$T/out" >/dev/null && ok || bad "bench decode --json: $(head -c 300 "$T/out")"

# ---------------------------------------------------------------------------
# compress --target-bits: bit allocation across tensors (docs/QUANTIZATION.md,
# "Bit allocation"). A mixed uint8/uint4 file within the target that verifies,
# runs and evaluates; bad targets are usage errors (exit 2) with no output.
expect 0 "$BIN" compress "$MODEL" -o "$T/t6.ellm" --target-bits 6 --json
jq -e '.target_bits == 6 and .coded_bits_per_weight <= 6 and .coded_bits_per_weight > 5.8
       and .alloc_error == "sse" and .tensors_uint8 > 0 and .tensors_uint4 > 0
       and ([.tensors[].bits] | all(. == 8 or . == 4))
       and (.tensors_uint8 + .tensors_uint4 == (.tensors | length))
       and (.tensors | all(has("granularity") and has("group_size") and has("sq_error")))' "$T/out" >/dev/null \
  && ok || bad "compress --target-bits 6 --json: $(head -c 300 "$T/out")"
expect 0 "$BIN" verify "$T/t6.ellm"
expect 0 "$BIN" info "$T/t6.ellm" --json
jq -e '[.tensors[].bits] | (index(8) != null) and (index(4) != null)' "$T/out" >/dev/null \
  && ok || bad "info of the mixed file does not show both widths"
expect 0 "$BIN" run "$T/t6.ellm" -p "Once upon a time" -n 16 --temp 0
grep -q "^Once upon a time" "$T/out" && ok || bad "run from the mixed file"
expect 0 "$BIN" perplexity "$T/t6.ellm" "$DATA/tinystories/validation_100.txt" --ctx 128 --limit 2 --json
jq -e '.perplexity > 1 and .perplexity < 30' "$T/out" >/dev/null && ok || bad "perplexity of the mixed file: $(head -c 200 "$T/out")"
expect 0 "$BIN" perplexity "$T/t6.ellm" "$DATA/tinystories/validation_100.txt" --ctx 128 --limit 2
grep -q "mixed 8/4-bit weights" "$T/out" && ok || bad "perplexity names the mixed widths: $(head -c 200 "$T/out")"
expect 0 "$BIN" compress "$MODEL" -o "$T/t5.ellm" --target-bits 5 --alloc-error relative -q
reached=$(sed -n 's/^target  *5\.0000 bits\/weight of coded payload: reached \([0-9.]*\) with .*least relative error$/\1/p' "$T/out")
[ -n "$reached" ] && awk -v r="$reached" 'BEGIN { exit !(r <= 5 && r > 4.8) }' && ok \
  || bad "compress --target-bits 5 text: $(cat "$T/out")"
expect_msg 2 "not both" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits 5 --bits 4
expect_msg 2 "target-bits" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits 9
expect_msg 2 "target-bits" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits 0
expect_msg 2 "target-bits" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits abc
expect_msg 2 "smallest payload.*bits/weight" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits 1.5
expect_msg 2 "only applies" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --alloc-error relative
expect_msg 2 "sse or relative" "$BIN" compress "$MODEL" -o "$T/tb.ellm" --target-bits 5 --alloc-error max
[ ! -e "$T/tb.ellm" ] && ok || bad "a refused --target-bits left $T/tb.ellm"

echo "test_cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
