#!/usr/bin/env bash
# test_eval.sh ENTROLLM - the evaluation commands on the real stories260K
# model and data: per-document NLL against the reference figure, perplexity
# windows, the story-ending task far above chance, GSM8k and report
# plumbing, bench latency, and error exits.
set -u
BIN=${1:?usage: test_eval.sh path/to/entrollm}
NAME=test_eval
. "$(dirname "$0")/cli_test_setup.sh"
D=$DATA
STORIES=$D/tinystories/validation_100.txt
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# jget FILE KEY: a top-level number or string of a JSON object
jget() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -1; }
# ok EXPR: a floating-point comparison through awk
ok() { awk "BEGIN { exit !($1) }"; }

# 1. Teacher-forced NLL of the float model over the 100 stories: the data
#    manifest's reference is 1.3196 nats/token.
"$BIN" perplexity "$MODEL" "$STORIES" --docs '<|endoftext|>' --threads 1 --json > "$T/nll.json" || fail "perplexity --docs"
nll=$(jget "$T/nll.json" mean_nll)
ok "$nll > 1.3191 && $nll < 1.3201" || fail "mean NLL $nll, reference 1.3196"

# 2. llama.cpp windows: 2 windows of 512 score 2 * 255 tokens.
"$BIN" perplexity "$MODEL" "$STORIES" --limit 2 --threads 1 --json > "$T/ppl.json" || fail "perplexity"
[ "$(jget "$T/ppl.json" tokens_scored)" = 510 ] || fail "tokens_scored $(jget "$T/ppl.json" tokens_scored), expected 510"
[ "$(jget "$T/ppl.json" windows)" = 2 ] || fail "windows"
ppl=$(jget "$T/ppl.json" perplexity)
ok "$ppl > 2 && $ppl < 30" || fail "perplexity $ppl out of range"
"$BIN" perplexity "$MODEL" "$STORIES" --limit 2 --threads 1 > "$T/ppl.txt" || fail "perplexity text output"
grep -q '^\[1\][0-9.]* +/- [0-9.]*,\[2\]' "$T/ppl.txt" || fail "running estimate not printed"
grep -q '^Final estimate: PPL = [0-9.]* +/- [0-9.]*$' "$T/ppl.txt" || fail "final estimate not printed"

# 3. The story-ending task: deterministic, six lines per task, and the
#    float model far above chance (25%).
"$BIN" hellaswag --build-story-task "$STORIES" -o "$T/story.txt" --seed 1 > /dev/null || fail "build story task"
"$BIN" hellaswag --build-story-task "$STORIES" -o "$T/story2.txt" --seed 1 > /dev/null || fail "build story task"
cmp -s "$T/story.txt" "$T/story2.txt" || fail "story task not deterministic"
[ "$(wc -l < "$T/story.txt")" = 600 ] || fail "story task: $(wc -l < "$T/story.txt") lines, expected 600"
"$BIN" hellaswag "$MODEL" "$T/story.txt" --limit 60 --threads 1 --json > "$T/hs.json" || fail "hellaswag"
acc_norm=$(jget "$T/hs.json" acc_norm)
[ "$(jget "$T/hs.json" n)" = 60 ] || fail "hellaswag n"
ok "$acc_norm >= 0.45" || fail "story task acc_norm $acc_norm is not far above chance"
"$BIN" hellaswag "$MODEL" "$T/story.txt" --limit 3 --shots 2 --threads 1 --json > "$T/hs2.json" || fail "hellaswag 2-shot"
[ "$(jget "$T/hs2.json" shots)" = 2 ] || fail "hellaswag shots"

# 4. GSM8k plumbing (a 260K-parameter story model solves nothing).
"$BIN" gsm8k "$MODEL" "$D/gsm8k/test.jsonl" --train "$D/gsm8k/train.jsonl" --limit 1 --max-tokens 16 \
    --threads 1 --json > "$T/gsm.json" || fail "gsm8k"
[ "$(jget "$T/gsm.json" n)" = 1 ] || fail "gsm8k n"
grep -q '"accuracy": ' "$T/gsm.json" || fail "gsm8k accuracy key"

# 5. Report: Table I and Figure 4.
"$BIN" report "$MODEL" --text "$STORIES" --hellaswag "$T/story.txt" --limit 1 --threads 1 -o "$T/rep" \
    > "$T/rep.txt" 2> "$T/rep.err" || { cat "$T/rep.err" >&2; fail "report"; }
for f in report.md report.json figure4.svg model-uint8.ellm model-uint4.ellm; do
    [ -s "$T/rep/$f" ] || fail "report: $f missing"
done
grep -q '^| uint4 |' "$T/rep/report.md" || fail "report.md has no uint4 row"
grep -q '</svg>' "$T/rep/figure4.svg" || fail "figure4.svg incomplete"
[ "$(grep -c '"name": "uint' "$T/rep/report.json")" = 2 ] || fail "report.json rows"

# 6. bench latency: the file and its plain twin.
"$BIN" bench latency "$T/rep/model-uint8.ellm" --repeat 1 --prompt-tokens 16 --gen-tokens 4 --threads 1 --json \
    > "$T/lat.json" || fail "bench latency"
grep -Eq '"coder": "(huffman|rans)"' "$T/lat.json" || fail "latency: no entropy-coded row"
grep -q '"coder": "raw"' "$T/lat.json" || fail "latency: no raw row"
grep -q '"cpu_features": ' "$T/lat.json" || fail "latency: cpu features"

# 7. Errors: usage 2, failure 1, never a crash.
"$BIN" perplexity "$MODEL" 2> /dev/null; [ $? = 2 ] || fail "missing TEXTFILE is not a usage error"
"$BIN" perplexity "$MODEL" "$STORIES" --ctx abc 2> /dev/null; [ $? = 2 ] || fail "bad --ctx accepted"
"$BIN" perplexity "$MODEL" "$STORIES" --ctx 1024 2> /dev/null; [ $? = 2 ] || fail "--ctx beyond the model accepted"
printf 'too short\n' > "$T/short.txt"
"$BIN" perplexity "$MODEL" "$T/short.txt" 2> "$T/err.txt"; [ $? = 2 ] || fail "short text"
grep -q 'needs at least' "$T/err.txt" || fail "short text message"
"$BIN" hellaswag "$MODEL" /nonexistent.txt 2> /dev/null; [ $? = 1 ] || fail "missing task file"
head -n 7 "$T/story.txt" > "$T/trunc.txt"
"$BIN" hellaswag "$MODEL" "$T/trunc.txt" 2> "$T/err.txt"; [ $? = 1 ] || fail "truncated task file"
grep -q 'trunc.txt' "$T/err.txt" || fail "truncated task file not named"
"$BIN" gsm8k "$MODEL" "$D/gsm8k/test.jsonl" 2> /dev/null; [ $? = 2 ] || fail "gsm8k without --train"
"$BIN" report "$MODEL" 2> /dev/null; [ $? = 2 ] || fail "report without -o"
"$BIN" bench latency /nonexistent.ellm 2> /dev/null; [ $? = 1 ] || fail "latency on a missing file"
# the shared option parser: a usage error (exit 2) naming the flag, before anything is loaded
usage_err() { # PATTERN ARGS...: exit 2 and PATTERN in the message
    local pat=$1; shift
    "$BIN" "$@" > /dev/null 2> "$T/err.txt"; local rc=$?
    [ $rc = 2 ] && grep -q -- "$pat" "$T/err.txt" || fail "$* -> exit $rc, $(head -c 200 "$T/err.txt")"
}
usage_err "'--frobnicate'" perplexity "$MODEL" "$STORIES" --frobnicate
usage_err "--limit needs K" perplexity "$MODEL" "$STORIES" --limit
usage_err "--threads needs an integer in \[1, 1024\], got '0'" perplexity "$MODEL" "$STORIES" --threads 0
usage_err "--docs needs SEP" perplexity "$MODEL" "$STORIES" --docs ''
usage_err "unexpected argument 'extra'" perplexity "$MODEL" "$STORIES" extra
usage_err "--shots needs an integer in \[0, 64\], got '65'" gsm8k "$MODEL" "$D/gsm8k/test.jsonl" --shots 65
usage_err "--train needs FILE" gsm8k "$MODEL" "$D/gsm8k/test.jsonl" --train
usage_err "--seed needs an integer" hellaswag "$MODEL" "$T/story.txt" --seed -1
usage_err "'--gen'" bench latency "$MODEL" --gen 4
usage_err "--repeat needs an integer in \[1, 1000\], got '1x'" bench latency "$MODEL" --repeat 1x
"$BIN" gsm8k --help | grep -q -- '-v, --verbose' || fail "gsm8k --help does not list -v, --verbose"
for c in perplexity hellaswag gsm8k report; do
    "$BIN" $c --help | grep -q Usage || fail "$c --help"
done
"$BIN" bench latency --help | grep -q Usage || fail "bench latency --help"

if [ $fails -ne 0 ]; then
    echo "$fails failure(s)" >&2
    exit 1
fi
echo "evaluation commands: all checks passed"
