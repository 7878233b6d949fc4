/*
 * test_tok_util.h - helpers for the tokenizer tests: reference data paths and
 * the llama.cpp .inp/.out conformance format (see data/vocab/README.md).
 */
#ifndef ELLM_TEST_TOK_UTIL_H
#define ELLM_TEST_TOK_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/testing.h"
#include "tokenizer/tokenizer.h"

/* The tokenizer tests' names for the shared helpers. */
#define g_failures test_failures
#define data_path test_data_path

static inline uint8_t *read_data(const char *rel, size_t *size) {
    char *p = data_path(rel);
    uint8_t *d;
    ellm_error err;
    if (ellm_read_file(p, &d, size, &err)) test_die("reading reference data", &err);
    free(p);
    return d;
}

static inline ellm_tokenizer *load_tok(const char *rel) {
    char *p = data_path(rel);
    ellm_tokenizer *t;
    ellm_error err;
    if (ellm_tokenizer_load(p, &t, &err)) test_die("loading a tokenizer", &err);
    free(p);
    return t;
}

typedef struct vocab_case {
    const char *text;
    size_t len;
    int32_t ids[512];
    size_t n_ids;
} vocab_case;

/* Splits .inp on the exact separator and reads one .out line per case. */
static inline size_t read_cases(const char *inp_rel, const char *out_rel, vocab_case **cases, uint8_t **keep_inp,
                         uint8_t **keep_out) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t isz, osz;
    uint8_t *inp = read_data(inp_rel, &isz), *out = read_data(out_rel, &osz);
    size_t cap = 64, n = 0;
    vocab_case *c = calloc(cap, sizeof *c);
    const char *p = (const char *)inp, *end = p + isz;
    while (p < end) {
        const char *s = NULL;
        for (const char *q = p; q + sizeof sep - 1 <= end; q++)
            if (!memcmp(q, sep, sizeof sep - 1)) {
                s = q;
                break;
            }
        if (!s) break;
        if (n == cap) c = realloc(c, (cap *= 2) * sizeof *c);
        memset(&c[n], 0, sizeof c[n]);
        c[n].text = p;
        c[n].len = (size_t)(s - p);
        n++;
        p = s + sizeof sep - 1;
    }
    char *o = (char *)out;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(o, '\n');
        if (!nl) {
            fprintf(stderr, "FAIL: %s has fewer lines than %s has cases\n", out_rel, inp_rel);
            exit(1);
        }
        *nl = 0;
        char *q = o;
        for (;;) {
            while (*q == ' ') q++;
            if (!*q) break;
            c[i].ids[c[i].n_ids++] = (int32_t)strtol(q, &q, 10);
        }
        o = nl + 1;
    }
    *cases = c;
    *keep_inp = inp;
    *keep_out = out;
    return n;
}

static inline void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s:", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* Runs every case: encode == reference ids; decode(reference ids) == text
 * when `lossless`. Prints "name: passed/total" and returns the failures. */
static inline int run_cases(const char *name, const ellm_tokenizer *t, const char *inp_rel, const char *out_rel,
                     int lossless) {
    vocab_case *c;
    uint8_t *inp, *out;
    size_t n = read_cases(inp_rel, out_rel, &c, &inp, &out);
    size_t enc_ok = 0, dec_ok = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t *ids;
        size_t k;
        ellm_error err;
        if (ellm_tokenize(t, c[i].text, c[i].len, 0, 0, &ids, &k, &err)) {
            fprintf(stderr, "  %s case %zu: %s\n", name, i, err.message);
            continue;
        }
        if (k == c[i].n_ids && !memcmp(ids, c[i].ids, k * sizeof *ids)) {
            enc_ok++;
        } else {
            fprintf(stderr, "  %s case %zu mismatch: '%.*s'\n", name, i, (int)c[i].len, c[i].text);
            print_ids("want", c[i].ids, c[i].n_ids);
            print_ids("got ", ids, k);
        }
        free(ids);
        char *text;
        size_t len;
        if (ellm_detokenize(t, c[i].ids, c[i].n_ids, &text, &len, &err) == ELLM_OK) {
            if (len == c[i].len && !memcmp(text, c[i].text, len)) dec_ok++;
            else if (lossless)
                fprintf(stderr, "  %s case %zu decode: '%s' != '%.*s'\n", name, i, text, (int)c[i].len, c[i].text);
            free(text);
        }
    }
    printf("%s: %zu/%zu", name, enc_ok, n);
    if (lossless) printf("  (decode %zu/%zu)", dec_ok, n);
    printf("\n");
    int fails = (int)(n - enc_ok) + (lossless ? (int)(n - dec_ok) : 0);
    if (n == 0) fails = 1;
    g_failures += fails;
    free(c);
    free(inp);
    free(out);
    return fails;
}

#endif /* ELLM_TEST_TOK_UTIL_H */
