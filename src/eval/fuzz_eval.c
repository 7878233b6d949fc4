/* fuzz_eval.c - libFuzzer target: the evaluation parsers on arbitrary bytes
 * (HellaSwag text form and .jsonl, GSM8k .jsonl, the story-task builder, the
 * GSM8k number extraction). The first byte picks the parser. Whatever a
 * parser accepts must be well formed: labels 0..3, every string present,
 * every GSM8k target a normalised number. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

static void check_mc(const ellm_mc_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->tasks[i].label < 0 || s->tasks[i].label > 3 || !s->tasks[i].context) abort();
        for (int e = 0; e < ELLM_MC_ENDINGS; e++)
            if (!s->tasks[i].endings[e]) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ellm_error err;
    switch (data[0] % 5) {
    case 0: {
        ellm_mc_set s;
        if (ellm_mc_parse_text(text, len, "fuzz", &s, &err) == ELLM_OK) check_mc(&s), ellm_mc_free(&s);
        break;
    }
    case 1: {
        ellm_mc_set s;
        if (ellm_mc_parse_jsonl(text, len, "fuzz", &s, &err) == ELLM_OK) check_mc(&s), ellm_mc_free(&s);
        break;
    }
    case 2: {
        ellm_gsm_set s;
        if (ellm_gsm_parse(text, len, "fuzz", &s, &err) == ELLM_OK) {
            for (size_t i = 0; i < s.n; i++) {
                char again[64];
                /* a target is already normalised */
                if (!ellm_gsm_normalize(s.items[i].target, strlen(s.items[i].target), again, sizeof again) ||
                    strcmp(again, s.items[i].target) != 0)
                    abort();
                free(ellm_gsm_exemplar(&s.items[i]));
            }
            ellm_gsm_free(&s);
        }
        break;
    }
    case 3: {
        char *out;
        size_t out_len, n;
        if (ellm_build_story_task(text, len, 1, 1 + data[0] % 3, 0, &out, &out_len, &n, &err) == ELLM_OK) {
            /* what the builder writes, the text parser reads back */
            ellm_mc_set s;
            if (ellm_mc_parse_text(out, out_len, "story", &s, &err) != ELLM_OK || s.n != n) abort();
            ellm_mc_free(&s);
            free(out);
        }
        break;
    }
    default: {
        char *s = malloc(len + 1);
        if (!s) return 0;
        memcpy(s, text, len);
        s[len] = 0;
        char out[64];
        (void)ellm_gsm_extract_prediction(s, out, sizeof out);
        (void)ellm_gsm_extract_reference(s, out, sizeof out);
        (void)ellm_gsm_normalize(s, len, out, sizeof out);
        free(ellm_hellaswag_preprocess(s));
        free(s);
        break;
    }
    }
    return 0;
}
