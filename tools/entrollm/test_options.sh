#!/usr/bin/env bash
# test_options.sh - the option parsing every command shares (cli_parse in
# cli.c): each option that --help lists is parsed as listed (a missing value
# is a usage error naming the option, under both spellings), unknown options,
# surplus arguments and empty values are usage errors, '--' ends the options,
# and `export --to FORMAT DEST` takes two arguments wherever it stands.
# Usage: test_options.sh PATH/TO/entrollm   (ELLM_DATA_DIR must be set)
set -u
BIN=${1:?usage: test_options.sh ENTROLLM_BINARY}
NAME=test_options
. "$(dirname "$0")/cli_test_setup.sh"
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# expect_msg CODE PATTERN CMD...: exit code and a stderr line matching PATTERN
expect_msg() {
  local want=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err" </dev/null
  local got=$?
  [ "$got" = "$want" ] && ok || bad "exit $got (want $want): $* :: $(head -c 300 "$T/err")"
  grep -qE -- "$pat" "$T/err" && ok || bad "message /$pat/ not in: $(head -c 300 "$T/err") ($*)"
}

# Every option with a value in every command's --help: given last, without
# its value, it is a usage error naming it ("--ctx needs N ..."). This runs
# each row of each option table through the parser, under each spelling.
commands=(compress decompress export info verify synth tokenize detokenize report demo run chat perplexity
          hellaswag gsm8k "bench decode" "bench generate" "bench latency" "bench tokenize")
for c in "${commands[@]}"; do
  # shellcheck disable=SC2086
  "$BIN" $c --help >"$T/help" 2>&1 || { bad "$c --help"; continue; }
  grep -q -- "^  -h, --help " "$T/help" && ok || bad "$c --help has no '-h, --help' line"
  n_opts=0
  while IFS= read -r line; do
    label=${line#  }
    label=${label%%  *}
    read -r -a words <<<"$label"
    if [ "${words[0]: -1}" = "," ]; then spellings=("${words[0]%,}" "${words[1]}"); value=${words[2]:-}
    else spellings=("${words[0]}"); value=${words[1]:-}; fi
    [ "${spellings[-1]}" = "--help" ] && continue
    n_opts=$((n_opts + 1))
    [ -z "$value" ] && continue # a flag
    for s in "${spellings[@]}"; do
      # shellcheck disable=SC2086
      expect_msg 2 "^entrollm $c: $s needs " "$BIN" $c "$s"
    done
  done < <(grep -E '^  -' "$T/help")
  [ "$n_opts" -gt 0 ] && ok || bad "$c --help lists no options"
  # shellcheck disable=SC2086
  expect_msg 2 "unknown option '--frobnicate'" "$BIN" $c --frobnicate
done

# numbers: malformed or out of range, named with the flag and its bounds
expect_msg 2 "--threads needs an integer in \[1, 1024\], got '0'" "$BIN" verify x.ellm --threads 0
expect_msg 2 "--layers needs an integer in \[1, 30\], got '31'" "$BIN" demo --layers 31
expect_msg 2 "--seed needs an integer in \[0, 18446744073709551615\], got '-1'" "$BIN" synth --builtin smollm-135m \
  -o "$T/s" --seed -1
expect_msg 2 "--limit needs an integer in \[1, 1073741824\], got '1x'" "$BIN" report "$MODEL" -o "$T/r" --limit 1x
# empty strings and surplus arguments
expect_msg 2 "-o needs FILE, got an empty string" "$BIN" compress "$MODEL" -o ""
expect_msg 2 "unexpected argument 'b'" "$BIN" info a b
expect_msg 2 "unexpected argument 'x'" "$BIN" demo x
expect_msg 2 "unexpected argument 'world' \(quote the text as one argument\)" "$BIN" tokenize "$MODEL" hello world
# values checked after parsing keep their messages
expect_msg 2 "--dtype must be f32, f16 or bf16, got 'f64'" "$BIN" synth --builtin smollm-135m -o "$T/s" --dtype f64
expect_msg 2 "--dequantize must be f32 or f16" "$BIN" decompress x.ellm -o "$T/x" --dequantize f64
expect_msg 2 "unknown format 'onnx' \(hf, gguf\)" "$BIN" export "$MODEL" --to onnx "$T/x"
expect_msg 2 "--granularity must be tensor, row or group:N, got 'cols'" "$BIN" compress "$MODEL" -o "$T/x" \
  --granularity cols
expect_msg 2 "group size must be even, got 3" "$BIN" compress "$MODEL" -o "$T/x" --granularity group:3
expect_msg 2 "--bits must be 8 or 4, got 5" "$BIN" compress "$MODEL" -o "$T/x" --bits 5
[ ! -e "$T/x" ] && ok || bad "a refused command wrote $T/x"

# '--' ends the options: a text or an id that starts with '-'
"$BIN" tokenize "$MODEL" --ids -- -x >"$T/a" 2>"$T/err" && ok || bad "tokenize -- -x: $(cat "$T/err")"
printf -- '-x' | "$BIN" tokenize "$MODEL" --ids - >"$T/b" 2>"$T/err" && ok || bad "tokenize - : $(cat "$T/err")"
[ -s "$T/a" ] && cmp -s "$T/a" "$T/b" && ok || bad "tokenize -- -x: '$(cat "$T/a")' vs stdin '$(cat "$T/b")'"
expect_msg 2 "unknown option '-x'" "$BIN" tokenize "$MODEL" --ids -x
expect_msg 2 "IDS needs an integer in \[0, 2147483647\], got '-5'" "$BIN" detokenize "$MODEL" -- -5
# detokenize: ids from arguments and standard input, in order
printf '407' | "$BIN" detokenize "$MODEL" 1 403 - 261,378 >"$T/out" 2>"$T/err" && ok \
  || bad "detokenize: $(cat "$T/err")"
"$BIN" detokenize "$MODEL" 1 403 407 261 378 >"$T/ref" 2>/dev/null
[ -s "$T/ref" ] && cmp -s "$T/out" "$T/ref" && ok || bad "detokenize with '-': '$(cat "$T/out")' vs '$(cat "$T/ref")'"

# export --to FORMAT DEST: two arguments, before or after MODEL
"$BIN" export --to gguf "$T/a.gguf" "$MODEL" >"$T/out" 2>"$T/err" && ok || bad "export --to first: $(cat "$T/err")"
"$BIN" export "$MODEL" --to gguf "$T/b.gguf" >"$T/out" 2>"$T/err" && ok || bad "export --to last: $(cat "$T/err")"
[ -s "$T/a.gguf" ] && cmp -s "$T/a.gguf" "$T/b.gguf" && ok || bad "export --to: the two orders differ"
expect_msg 2 "--to needs hf\|gguf DEST" "$BIN" export "$MODEL" --to gguf

echo "test_options: $pass passed, $fail failed"
[ "$fail" = 0 ]
