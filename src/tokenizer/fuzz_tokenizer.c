/*
 * fuzz_tokenizer.c - libFuzzer target: encodes arbitrary bytes with real
 * vocabularies (one per kind) and checks decode(encode(x)) == x for the
 * lossless ones; also decodes arbitrary ids, and checks NFC is idempotent.
 * Needs ELLM_DATA_DIR.
 *
 *   cmake -S . -B build-fuzz -DELLM_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *   cmake --build build-fuzz --target fuzz_tokenizer
 *   ELLM_DATA_DIR=../shared/data build-fuzz/fuzz_tokenizer -max_total_time=60
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

typedef struct fuzz_tok {
    const char *rel;
    int lossless;      /* decode(encode(x)) == x for every byte string x */
    int utf8_lossless; /* ... for valid UTF-8 without U+2581 made of bytes it has */
    ellm_tokenizer *t;
    unsigned char byte_ok[256]; /* the byte alone round-trips (SmolLM2 lacks 21 bytes) */
} fuzz_tok;

static fuzz_tok toks[] = {
    {"llama2_tokenizer/tokenizer.model", 0, 1, NULL, {0}},       /* U+2581 in text decodes as a space */
    {"hf/phi-3.5-mini-instruct/tokenizer.json", 0, 1, NULL, {0}},
    {"vocab/ggml-vocab-gpt-2.gguf", 1, 1, NULL, {0}},
    {"hf/smollm2-1.7b-resaved/tokenizer.json", 0, 1, NULL, {0}}, /* lacks 21 of the 256 bytes */
    {"stories260K/tok512.bin", 1, 1, NULL, {0}},
};

static void load_all(void) {
    const char *dir = getenv("ELLM_DATA_DIR");
    if (!dir) {
        fprintf(stderr, "fuzz_tokenizer: set ELLM_DATA_DIR to the reference data\n");
        abort();
    }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(toks); i++) {
        char *p = ellm_path_join(dir, toks[i].rel);
        ellm_error err;
        if (ellm_tokenizer_load(p, &toks[i].t, &err)) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.message);
            abort();
        }
        free(p);
        for (int b = 0; b < 256; b++) {
            char c = (char)b, *back;
            int32_t *ids;
            size_t n, blen;
            toks[i].byte_ok[b] = 0;
            if (ellm_tokenize(toks[i].t, &c, 1, 0, 0, &ids, &n, &err)) continue;
            if (ellm_detokenize(toks[i].t, ids, n, &back, &blen, &err) == ELLM_OK) {
                toks[i].byte_ok[b] = blen == 1 && back[0] == c;
                free(back);
            }
            free(ids);
        }
    }
}

static int valid_utf8_no_meta(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (l == 2 && c < 0xC2) return 0;
        if (l == 3 && !memcmp(s + i, "\xE2\x96\x81", 3)) return 0;
        i += l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int loaded = 0;
    if (!loaded) {
        load_all();
        loaded = 1;
    }
    if (size == 0) return 0;
    /* first byte: flags (BOS, parse_special) */
    int add_bos = data[0] & 1, special = (data[0] >> 1) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int utf8 = valid_utf8_no_meta(data + 1, len);
    /* NFC is idempotent and leaves invalid bytes in place */
    {
        char *a, *b;
        size_t la, lb;
        ellm_error err;
        if (tok_nfc(text, len, &a, &la, &err) || tok_nfc(a, la, &b, &lb, &err)) abort();
        if (la != lb || memcmp(a, b, la)) abort();
        free(a);
        free(b);
    }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(toks); i++) {
        ellm_tokenizer *t = toks[i].t;
        int32_t *ids;
        size_t n;
        ellm_error err;
        if (ellm_tokenize(t, text, len, add_bos, special, &ids, &n, &err)) abort(); /* encoding never fails */
        int32_t vocab = ellm_tokenizer_vocab_size(t);
        for (size_t k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= vocab) abort();
        char *back;
        size_t blen;
        if (ellm_detokenize(t, ids, n, &back, &blen, &err)) abort();
        /* after a user-defined token (Phi-3's "</s>") the next fragment gets its
         * own dummy prefix, as in HF and llama.cpp: not a round trip */
        int has_user = 0;
        for (size_t k = 0; k < n; k++) has_user |= ellm_tokenizer_token_type(t, ids[k]) == ELLM_TOKT_USER_DEFINED;
        int has_bytes = !has_user;
        for (size_t k = 0; k < len && has_bytes; k++) has_bytes = toks[i].byte_ok[(uint8_t)text[k]];
        int expect = (toks[i].lossless && !has_user) || (toks[i].utf8_lossless && utf8 && has_bytes);
        if (!special && expect && (blen != len || memcmp(back, text, len))) {
            fprintf(stderr, "%s: round trip differs\n", toks[i].rel);
            abort();
        }
        free(back);
        free(ids);
        /* the input read as ids */
        size_t m = len / 4;
        int32_t *any = malloc((m ? m : 1) * sizeof *any);
        for (size_t k = 0; k < m; k++) {
            uint32_t v;
            memcpy(&v, text + 4 * k, 4);
            any[k] = (int32_t)(v % (uint32_t)(vocab + 2)) - 1; /* includes -1 and vocab: refused */
        }
        if (ellm_tokenizer_decode(t, any, m, ELLM_DETOK_SPECIAL, &back, &blen, &err) == ELLM_OK) free(back);
        free(any);
    }
    return 0;
}
