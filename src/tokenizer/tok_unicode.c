/*
 * tok_unicode.c - Unicode NFC normalisation, for tokenizers that ask for it
 * (tokenizer.json "normalizer": {"type": "NFC"}, e.g. Qwen2).
 *
 * The standard algorithm (UAX #15): full canonical decomposition (tables
 * plus the Hangul arithmetic), canonical ordering of combining marks, then
 * canonical composition of primary composites. Tables are generated from
 * Unicode data by gen_unicode_tables.py. Bytes that are not valid UTF-8 pass
 * through unchanged and block composition, so the function is total.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode_tables.h"

#define INVALID_BYTE 0x80000000u /* | byte: an invalid UTF-8 byte kept as is */

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int ccc_of(uint32_t cp) {
    if (cp < 0x300 || (cp & INVALID_BYTE)) return 0;
    size_t lo = 0, hi = ELLM_ARRAY_LEN(tok_ccc);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok_ccc[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < ELLM_ARRAY_LEN(tok_ccc) && tok_ccc[lo].cp == cp ? tok_ccc[lo].ccc : 0;
}

static const uint32_t *decomp_of(uint32_t cp) {
    if (cp < 0xC0 || (cp & INVALID_BYTE)) return NULL;
    size_t lo = 0, hi = ELLM_ARRAY_LEN(tok_decomp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok_decomp[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < ELLM_ARRAY_LEN(tok_decomp) && tok_decomp[lo][0] == cp ? tok_decomp[lo] : NULL;
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if ((a | b) & INVALID_BYTE) return 0;
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = ELLM_ARRAY_LEN(tok_comp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tok_comp[mid][0] < a || (tok_comp[mid][0] == a && tok_comp[mid][1] < b)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < ELLM_ARRAY_LEN(tok_comp) && tok_comp[lo][0] == a && tok_comp[lo][1] == b) return tok_comp[lo][2];
    return 0;
}

/* Appends the full canonical decomposition of cp. Canonical decompositions
 * nest at most a few levels; the buffer has room for 4 code points per input
 * code point (the longest full canonical decomposition). */
static size_t decompose(uint32_t cp, uint32_t *out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT == 0) return 2;
        out[2] = TBASE + s % TCOUNT;
        return 3;
    }
    const uint32_t *d = decomp_of(cp);
    if (!d) {
        out[0] = cp;
        return 1;
    }
    size_t n = decompose(d[1], out);
    if (d[2]) n += decompose(d[2], out + n);
    return n;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp & INVALID_BYTE) {
        out[0] = (char)(cp & 0xFF);
        return 1;
    }
    return tok_utf8_encode(cp, out);
}

int tok_needs_nfc(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0xC3) return 1; /* U+00C0 and above may change */
    return 0;
}

ellm_status tok_nfc(const char *s, size_t n, char **out, size_t *out_len, ellm_error *err) {
    uint32_t *cps = malloc(sizeof(uint32_t) * (4 * n + 4));
    if (!cps) return ellm_fail(err, ELLM_E_NOMEM, "out of memory normalising %zu bytes", n);
    /* 1. decode and decompose */
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t *p = (const uint8_t *)s + i;
        size_t l = tok_utf8_len(p, n - i);
        uint32_t cp;
        if (l == 1 && p[0] >= 0x80) cp = INVALID_BYTE | p[0];
        else if (l == 1) cp = p[0];
        else if (l == 2) cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        else if (l == 3) cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        else cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
                  (p[3] & 0x3F);
        m += decompose(cp, cps + m);
        i += l;
    }
    /* 2. canonical ordering: a stable sort of each run of non-starters by class */
    for (size_t i = 1; i < m; i++) {
        int c = ccc_of(cps[i]);
        if (!c) continue;
        size_t j = i;
        while (j > 0 && ccc_of(cps[j - 1]) > c) {
            uint32_t tmp = cps[j];
            cps[j] = cps[j - 1];
            cps[j - 1] = tmp;
            j--;
        }
    }
    /* 3. canonical composition */
    size_t w = 0;
    if (m > 0) {
        size_t starter = 0;
        int last = ccc_of(cps[0]);
        if (last != 0) last = 256; /* no starter yet: nothing composes */
        w = 1;
        for (size_t i = 1; i < m; i++) {
            uint32_t ch = cps[i];
            int c = ccc_of(ch);
            uint32_t comp = last != 256 ? compose_pair(cps[starter], ch) : 0;
            if (comp && (last < c || last == 0)) {
                cps[starter] = comp;
                continue;
            }
            if (c == 0) starter = w;
            last = c;
            cps[w++] = ch;
        }
    }
    char *o = malloc(4 * w + 1);
    if (!o) {
        free(cps);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory normalising %zu bytes", n);
    }
    size_t len = 0;
    for (size_t i = 0; i < w; i++) len += utf8_put(cps[i], o + len);
    free(cps);
    *out = o;
    *out_len = len;
    return ELLM_OK;
}
