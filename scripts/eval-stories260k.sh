#!/usr/bin/env bash
# eval-stories260k.sh - reproduces the figures of docs/EVALUATION.md for the
# stories260K model: uint8/uint4 files, perplexity (llama.cpp windows and
# per-document NLL) on TinyStories, the story-ending multiple-choice task
# (built deterministically from the same text), and the latency table.
#
#   scripts/eval-stories260k.sh [ENTROLLM] [DATA_DIR] [OUT_DIR]
#
# ENTROLLM defaults to build/entrollm, DATA_DIR to $ELLM_DATA_DIR or
# ../shared/data beside the checkout, OUT_DIR to a new temporary directory.
# Every result is kept there as JSON; a summary is printed at the end.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$here/build/entrollm}
D=${2:-${ELLM_DATA_DIR:-$here/../shared/data}}
OUT=${3:-$(mktemp -d "${TMPDIR:-/tmp}/entrollm-eval-XXXXXX")}
THREADS=${THREADS:-1}
PER_STORY=${PER_STORY:-1}
mkdir -p "$OUT"
MODEL=$D/stories260K/stories260K.bin
STORIES=$D/tinystories/validation_100.txt
[ -x "$BIN" ] || { echo "no entrollm binary at $BIN" >&2; exit 1; }
[ -f "$MODEL" ] && [ -f "$STORIES" ] || { echo "reference data not found under $D" >&2; exit 1; }

echo "results in $OUT" >&2
"$BIN" compress "$MODEL" -o "$OUT/uint8.ellm" --bits 8 --json > "$OUT/compress-uint8.json"
"$BIN" compress "$MODEL" -o "$OUT/uint4.ellm" --bits 4 --json > "$OUT/compress-uint4.json"
"$BIN" hellaswag --build-story-task "$STORIES" -o "$OUT/story_task.txt" --seed 1 --per-story "$PER_STORY" >&2

# jget FILE KEY: a top-level number of a JSON object printed by entrollm
jget() { sed -n "s/^ *\"$2\": *\([-0-9.eE+]*\),\{0,1\}$/\1/p" "$1" | head -1; }

printf '%-7s %22s %22s %18s %18s\n' weights "PPL (llama.cpp, 512)" "NLL per document" "story acc" "story acc_norm"
for w in float uint8 uint4; do
    m=$MODEL
    [ $w = float ] || m=$OUT/$w.ellm
    "$BIN" perplexity "$m" "$STORIES" --threads "$THREADS" --json > "$OUT/ppl-$w.json"
    "$BIN" perplexity "$m" "$STORIES" --docs '<|endoftext|>' --threads "$THREADS" --json > "$OUT/nll-$w.json"
    "$BIN" hellaswag "$m" "$OUT/story_task.txt" --threads "$THREADS" --json > "$OUT/story-$w.json"
    printf '%-7s %12.4f +/- %.4f %12.4f +/- %.4f %10.4f +/- %.3f %10.4f +/- %.3f\n' $w \
        "$(jget "$OUT/ppl-$w.json" perplexity)" "$(jget "$OUT/ppl-$w.json" stderr)" \
        "$(jget "$OUT/nll-$w.json" mean_nll)" "$(jget "$OUT/nll-$w.json" mean_nll_stderr)" \
        "$(jget "$OUT/story-$w.json" acc)" "$(jget "$OUT/story-$w.json" acc_stderr)" \
        "$(jget "$OUT/story-$w.json" acc_norm)" "$(jget "$OUT/story-$w.json" acc_norm_stderr)"
done
echo "(reference per-document NLL of the float model: 1.3196 nats/token; story task chance: 0.25)"
echo
for w in uint8 uint4; do
    "$BIN" bench latency "$OUT/$w.ellm" --repeat "${REPEAT:-7}" --threads "$THREADS" | tee "$OUT/latency-$w.txt"
    echo
done
