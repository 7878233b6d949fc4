/*
 * tokenizer.c - the tokenizer handle, encoding and decoding.
 *
 * Encoding, for every kind:
 *   1. the text is cut at special tokens (control tokens only when the caller
 *      asks for parse_special; user-defined tokens always), longest match
 *      first, honouring lstrip/rstrip;
 *   2. each ordinary fragment is normalised (SentencePiece: dummy prefix,
 *      " " -> "▁") or pre-tokenized (byte-level BPE: the model's regexes);
 *   3. each piece is split into initial symbols (UTF-8 characters, or bytes)
 *      and merged with one priority queue: the best pair first (highest piece
 *      score, or lowest merge rank), the leftmost on ties, as SentencePiece,
 *      HF tokenizers and llama2.c's run.c all do. Stale queue entries are
 *      detected by the symbols' lengths, so the work is O(n log n);
 *   4. symbols that are not in the vocabulary fall back to <0xNN> byte tokens
 *      (or <unk>).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---- small helpers ------------------------------------------------------ */

static uint64_t hash_bytes(const void *p, size_t n) { return ellm_checksum(p, n); }

size_t tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (len > n) return 1;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    return len;
}

/* Decodes one UTF-8 code point (valid input assumed by callers). */
static uint32_t utf8_decode(const uint8_t *s, size_t len) {
    if (len == 1) return s[0];
    if (len == 2) return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    if (len == 3) return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* GPT-2 bytes_to_unicode(): printable bytes map to themselves, the others to
 * 256 + their rank among the non-printable ones. */
static int byte_is_printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* the non-printable bytes, in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD */
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (b - 0x7Fu);
    return 256u + 67u; /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    unsigned n = cp - 256;
    for (unsigned x = 0; x < 256; x++)
        if (!byte_is_printable(x) && n-- == 0) return (int)x;
    return -1;
}

int tok_parse_byte_piece(const char *s, size_t len) {
    if (len != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* ---- maps --------------------------------------------------------------- */

static const char *raw_ptr(const ellm_tokenizer *t, int32_t id) { return t->arena + t->raw_off[id]; }

static int32_t strmap_find(const ellm_tokenizer *t, const char *s, size_t n) {
    const tok_strmap *m = &t->vocab;
    if (!m->slots) return -1;
    uint32_t i = (uint32_t)hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (t->raw_len[id] == n && memcmp(raw_ptr(t, id), s, n) == 0) return id;
        i = (i + 1) & m->mask;
    }
}

static ellm_status strmap_build(ellm_tokenizer *t, ellm_error *err) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->vocab.slots = ellm_malloc(sizeof(int32_t) * cap, err);
    if (!t->vocab.slots) return err ? err->code : ELLM_E_NOMEM;
    memset(t->vocab.slots, 0xff, sizeof(int32_t) * cap);
    t->vocab.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->raw_len[id] == 0) continue;
        if (strmap_find(t, raw_ptr(t, id), t->raw_len[id]) >= 0) continue; /* first id wins */
        uint32_t i = (uint32_t)hash_bytes(raw_ptr(t, id), t->raw_len[id]) & t->vocab.mask;
        while (t->vocab.slots[i] >= 0) i = (i + 1) & t->vocab.mask;
        t->vocab.slots[i] = id;
    }
    return ELLM_OK;
}

static inline uint64_t pair_key(int32_t l, int32_t r) {
    return (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
}
static inline uint32_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

ellm_status tok_pairmap_reserve(tok_pairmap *m, size_t n, ellm_error *err) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    if (cap > (1ull << 31)) return ellm_fail(err, ELLM_E_FORMAT, "too many merges (%zu)", n);
    if (m->slots && cap <= (uint64_t)m->mask + 1) return ELLM_OK;
    tok_pair_entry *old = m->slots;
    uint32_t old_cap = old ? m->mask + 1 : 0;
    m->slots = ellm_calloc(cap, sizeof *m->slots, err);
    if (!m->slots) {
        m->slots = old;
        return ELLM_E_NOMEM;
    }
    m->mask = (uint32_t)cap - 1;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (!old[i].key) continue;
        uint32_t j = pair_hash(old[i].key) & m->mask;
        while (m->slots[j].key) j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
    return ELLM_OK;
}

static const tok_pair_entry *pair_find(const tok_pairmap *m, int32_t l, int32_t r) {
    if (!m->slots) return NULL;
    uint64_t k = pair_key(l, r);
    uint32_t i = pair_hash(k) & m->mask;
    for (;;) {
        const tok_pair_entry *e = &m->slots[i];
        if (e->key == k) return e;
        if (!e->key) return NULL;
        i = (i + 1) & m->mask;
    }
}

ellm_status tok_add_merge(ellm_tokenizer *t, int32_t left, int32_t right, int32_t merged, int32_t rank,
                          ellm_error *err) {
    tok_pairmap *m = &t->merges;
    if (!m->slots || (m->count + 1) * 2 > (size_t)m->mask + 1) {
        ellm_status st = tok_pairmap_reserve(m, (m->count + 1) * 2, err);
        if (st) return st;
    }
    uint64_t k = pair_key(left, right);
    uint32_t i = pair_hash(k) & m->mask;
    while (m->slots[i].key) {
        if (m->slots[i].key == k) return ELLM_OK; /* a repeated merge keeps its first rank */
        i = (i + 1) & m->mask;
    }
    m->slots[i].key = k;
    m->slots[i].rank = rank;
    m->slots[i].id = merged;
    m->count++;
    return ELLM_OK;
}

/* ---- construction ------------------------------------------------------- */

ellm_tokenizer *tok_alloc(ellm_tok_kind kind, int32_t n_vocab, const char *what, ellm_error *err) {
    if (n_vocab <= 0 || n_vocab > (1 << 24)) {
        ellm_fail(err, ELLM_E_FORMAT, "%s: vocabulary size %d out of range", what, (int)n_vocab);
        return NULL;
    }
    ellm_tokenizer *t = ellm_calloc(1, sizeof *t, err);
    if (!t) return NULL;
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->what = ellm_strdup(what ? what : "tokenizer");
    t->bos = t->eos = t->unk = t->pad = -1;
    t->add_dummy_prefix = kind != ELLM_TOK_BPE;
    t->prefix_mode = kind == ELLM_TOK_SPM ? TOK_PREFIX_EACH
                     : kind == ELLM_TOK_LLAMA2C ? TOK_PREFIX_FIRST : TOK_PREFIX_NEVER;
    t->byte_fallback = 1;
    size_t n = (size_t)n_vocab;
    t->raw_off = calloc(n, sizeof(uint32_t));
    t->raw_len = calloc(n, sizeof(uint32_t));
    t->out_off = calloc(n, sizeof(uint32_t));
    t->out_len = calloc(n, sizeof(uint32_t));
    t->scores = calloc(n, sizeof(float));
    t->types = malloc(n);
    t->attrs = calloc(n, 1);
    if (!t->what || !t->raw_off || !t->raw_len || !t->out_off || !t->out_len || !t->scores || !t->types ||
        !t->attrs) {
        ellm_tokenizer_free(t);
        ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory for %d tokens", what, (int)n_vocab);
        return NULL;
    }
    memset(t->types, ELLM_TOKT_UNUSED, n);
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    return t;
}

static ellm_status arena_append(ellm_tokenizer *t, const char *s, size_t len, uint32_t *off, ellm_error *err) {
    if (t->arena_len + len + 1 > UINT32_MAX)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: vocabulary text too large", t->what);
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 1 << 16;
        while (cap < t->arena_len + len + 1) cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
        t->arena = a;
        t->arena_cap = cap;
    }
    *off = (uint32_t)t->arena_len;
    if (len) memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = 0;
    t->arena_len += len + 1;
    return ELLM_OK;
}

ellm_status tok_extend(ellm_tokenizer *t, int32_t n_vocab, ellm_error *err) {
    if (n_vocab <= t->n_vocab) return ELLM_OK;
    if (n_vocab > (1 << 24)) return ellm_fail(err, ELLM_E_FORMAT, "%s: token id %d out of range", t->what, (int)n_vocab - 1);
    size_t n = (size_t)n_vocab, old = (size_t)t->n_vocab;
    void *p[7] = {realloc(t->raw_off, n * 4), NULL, NULL, NULL, NULL, NULL, NULL};
    if (p[0]) t->raw_off = p[0];
    if (p[0] && (p[1] = realloc(t->raw_len, n * 4))) t->raw_len = p[1];
    if (p[1] && (p[2] = realloc(t->out_off, n * 4))) t->out_off = p[2];
    if (p[2] && (p[3] = realloc(t->out_len, n * 4))) t->out_len = p[3];
    if (p[3] && (p[4] = realloc(t->scores, n * sizeof(float)))) t->scores = p[4];
    if (p[4] && (p[5] = realloc(t->types, n))) t->types = p[5];
    if (p[5] && (p[6] = realloc(t->attrs, n))) t->attrs = p[6];
    if (!p[6]) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    for (size_t i = old; i < n; i++) {
        t->raw_off[i] = t->raw_len[i] = t->out_off[i] = t->out_len[i] = 0;
        t->scores[i] = 0;
        t->types[i] = ELLM_TOKT_UNUSED;
        t->attrs[i] = 0;
    }
    t->n_vocab = n_vocab;
    /* maps and output pieces are rebuilt by tok_finish */
    free(t->vocab.slots);
    t->vocab.slots = NULL;
    t->outputs_built = 0;
    return ELLM_OK;
}

ellm_status tok_set_piece(ellm_tokenizer *t, int32_t id, const char *s, size_t len, float score,
                          ellm_tok_type type, ellm_error *err) {
    if (id < 0 || id >= t->n_vocab)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: token id %d out of range [0, %d)", t->what, (int)id,
                         (int)t->n_vocab);
    if (len > 65536) return ellm_fail(err, ELLM_E_FORMAT, "%s: token %d: piece of %zu bytes", t->what, (int)id, len);
    ellm_status st = arena_append(t, s, len, &t->raw_off[id], err);
    if (st) return st;
    t->raw_len[id] = (uint32_t)len;
    t->scores[id] = score;
    t->types[id] = (uint8_t)type;
    return ELLM_OK;
}

int32_t tok_find_cstr(const ellm_tokenizer *t, const char *piece) {
    return strmap_find(t, piece, strlen(piece));
}

ellm_status tok_add_stop_id(ellm_tokenizer *t, int32_t id, ellm_error *err) {
    if (id < 0 || id >= t->n_vocab) return ELLM_OK;
    for (size_t i = 0; i < t->n_stop; i++)
        if (t->stop_ids[i] == id) return ELLM_OK;
    int32_t *p = realloc(t->stop_ids, (t->n_stop + 1) * sizeof *p);
    if (!p) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    t->stop_ids = p;
    t->stop_ids[t->n_stop++] = id;
    return ELLM_OK;
}

const char TOK_RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char TOK_RE_LLAMA3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char TOK_RE_QWEN2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char TOK_RE_DIGITS[] = "\\p{N}";

ellm_status tok_set_regexes(ellm_tokenizer *t, const char *const *patterns, int n, ellm_error *err) {
    for (int i = 0; i < n; i++) {
        if (t->n_re >= TOK_MAX_REGEX)
            return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: more than %d pre-tokenizer splits", t->what,
                             TOK_MAX_REGEX);
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: pre-tokenizer regex /%s/ at offset %zu: %s",
                             t->what, patterns[i], (size_t)eoff, (const char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
        t->re[t->n_re++] = re;
    }
    return ELLM_OK;
}

/* llama.cpp's tokenizer.ggml.pre names -> the regexes they stand for. */
ellm_status tok_set_pre_by_name(ellm_tokenizer *t, const char *pre, ellm_error *err) {
    static const char *const gpt2_names[] = {"default", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de",
                                             "jina-v2-es", "jina-v2-de", "mpt", "olmo", "jais"};
    static const char *const digit_names[] = {"starcoder", "refact", "smollm", "codeshell", "exaone"};
    static const char *const llama3_names[] = {"llama3", "llama-v3", "llama-bpe", "smaug-bpe",
                                               "falcon3", "pixtral", "tekken"};
    static const char *const qwen2_names[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan"};
    free(t->pre_name);
    t->pre_name = ellm_strdup(pre);
    for (size_t i = 0; i < ELLM_ARRAY_LEN(gpt2_names); i++)
        if (!strcmp(pre, gpt2_names[i])) {
            const char *p[] = {TOK_RE_GPT2};
            return tok_set_regexes(t, p, 1, err);
        }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(digit_names); i++)
        if (!strcmp(pre, digit_names[i])) {
            const char *p[] = {TOK_RE_DIGITS, TOK_RE_GPT2};
            return tok_set_regexes(t, p, 2, err);
        }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(llama3_names); i++)
        if (!strcmp(pre, llama3_names[i])) {
            const char *p[] = {TOK_RE_LLAMA3};
            return tok_set_regexes(t, p, 1, err);
        }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(qwen2_names); i++)
        if (!strcmp(pre, qwen2_names[i])) {
            const char *p[] = {TOK_RE_QWEN2};
            return tok_set_regexes(t, p, 1, err);
        }
    return ellm_fail(err, ELLM_E_UNSUPPORTED,
                     "%s: pre-tokenizer '%s' is not supported (known: gpt-2, starcoder/smollm, llama3, qwen2 "
                     "families)",
                     t->what, pre);
}

static int is_special_type(uint8_t type) {
    return type == ELLM_TOKT_CONTROL || type == ELLM_TOKT_UNKNOWN || type == ELLM_TOKT_USER_DEFINED;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const ellm_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint8_t bx = (uint8_t)raw_ptr(t, x)[0], by = (uint8_t)raw_ptr(t, y)[0];
    if (bx != by) return bx < by ? -1 : 1;
    if (t->raw_len[x] != t->raw_len[y]) return t->raw_len[x] > t->raw_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* qsort_r is not C11; a small insertion + shell sort keeps this portable. */
static void sort_special(ellm_tokenizer *t) {
    int32_t *a = t->special_ids;
    size_t n = t->n_special;
    for (size_t gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++) {
            int32_t v = a[i];
            size_t j = i;
            while (j >= gap && cmp_special(&a[j - gap], &v, t) > 0) {
                a[j] = a[j - gap];
                j -= gap;
            }
            a[j] = v;
        }
}

static ellm_status build_outputs(ellm_tokenizer *t, ellm_error *err) {
    /* an output piece is never longer than its raw piece (or 5 bytes for <unk>) */
    char *buf = ellm_malloc(65536 + 8, err);
    if (!buf) return ELLM_E_NOMEM;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = raw_ptr(t, id);
        size_t n = t->raw_len[id], m = 0;
        uint8_t type = t->types[id];
        int b = type == ELLM_TOKT_BYTE ? tok_parse_byte_piece(s, n) : -1;
        if (b >= 0) {
            buf[m++] = (char)b;
        } else if (type == ELLM_TOKT_CONTROL || type == ELLM_TOKT_UNUSED) {
            memcpy(buf, s, n);
            m = n;
        } else if (t->kind == ELLM_TOK_SPM) {
            if (type == ELLM_TOKT_UNKNOWN) {
                memcpy(buf, " \xE2\x81\x87 ", 5); /* SentencePiece's unk surface " ⁇ " */
                m = 5;
            } else {
                for (size_t i = 0; i < n; i++) {
                    if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                        buf[m++] = ' ';
                        i += 2;
                    } else {
                        buf[m++] = s[i];
                    }
                }
            }
        } else if (t->kind == ELLM_TOK_BPE && type == ELLM_TOKT_NORMAL) {
            /* byte-level pieces: every code point maps back to one byte */
            size_t i = 0;
            while (i < n) {
                size_t l = tok_utf8_len((const uint8_t *)s + i, n - i);
                int byte = tok_cp_to_byte(utf8_decode((const uint8_t *)s + i, l));
                if (byte < 0) break;
                buf[m++] = (char)byte;
                i += l;
            }
            if (i < n) { /* not a byte-level piece (an added token written plainly) */
                memcpy(buf, s, n);
                m = n;
            }
        } else {
            memcpy(buf, s, n);
            m = n;
        }
        ellm_status st = arena_append(t, buf, m, &t->out_off[id], err);
        if (st) {
            free(buf);
            return st;
        }
        t->out_len[id] = (uint32_t)m;
    }
    free(buf);
    return ELLM_OK;
}

/* True when no piece that merges can form has a space marker after its
 * leading run of markers: then BPE never merges across a word start. */
static int words_are_independent(const ellm_tokenizer *t) {
    if (t->kind == ELLM_TOK_BPE) return 0;
    const char *mark = t->kind == ELLM_TOK_SPM ? "\xE2\x96\x81" : " ";
    size_t ml = strlen(mark);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->types[id];
        if (t->kind == ELLM_TOK_SPM && ty != ELLM_TOKT_NORMAL && ty != ELLM_TOKT_USER_DEFINED && ty != ELLM_TOKT_UNUSED)
            continue;
        const char *p = raw_ptr(t, id);
        size_t n = t->raw_len[id], i = 0;
        while (i + ml <= n && !memcmp(p + i, mark, ml)) i += ml;
        for (; i + ml <= n; i++)
            if (!memcmp(p + i, mark, ml)) return 0;
    }
    return 1;
}

ellm_status tok_build_map(ellm_tokenizer *t, ellm_error *err) {
    return t->vocab.slots ? ELLM_OK : strmap_build(t, err);
}

ellm_status tok_finish(ellm_tokenizer *t, ellm_error *err) {
    /* may run twice (GGUF merges need the piece map first): builds what is missing */
    ellm_status st = ELLM_OK;
    if (!t->vocab.slots && (st = strmap_build(t, err))) return st;
    /* byte tokens */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->kind == ELLM_TOK_BPE) break;
        if (t->types[id] != ELLM_TOKT_BYTE) continue;
        int b = tok_parse_byte_piece(raw_ptr(t, id), t->raw_len[id]);
        if (b < 0)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: byte token %d has piece '%s', not <0xNN>", t->what,
                             (int)id, raw_ptr(t, id));
        if (t->byte_tok[b] < 0) t->byte_tok[b] = id;
    }
    if (t->kind == ELLM_TOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char u[4];
            size_t l = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
            t->byte_tok[b] = strmap_find(t, u, l);
        }
    }
    if (!t->outputs_built) {
        if ((st = build_outputs(t, err))) return st;
        t->outputs_built = 1;
    }
    t->split_words = words_are_independent(t);
    /* special tokens matched before the model */
    free(t->special_ids);
    t->special_ids = malloc(sizeof(int32_t) * (size_t)t->n_vocab);
    if (!t->special_ids) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    t->n_special = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (is_special_type(t->types[id]) && t->raw_len[id] > 0) t->special_ids[t->n_special++] = id;
    sort_special(t);
    memset(t->special_start, 0, sizeof t->special_start);
    for (size_t i = 0; i < t->n_special; i++) t->special_start[(uint8_t)raw_ptr(t, t->special_ids[i])[0] + 1]++;
    for (int b = 0; b < 256; b++) t->special_start[b + 1] += t->special_start[b];
    /* ids */
    if (t->bos >= t->n_vocab || t->eos >= t->n_vocab || t->unk >= t->n_vocab)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: bos %d / eos %d / unk %d outside the vocabulary of %d",
                         t->what, (int)t->bos, (int)t->eos, (int)t->unk, (int)t->n_vocab);
    if (t->eos >= 0 && (st = tok_add_stop_id(t, t->eos, err))) return st;
    static const char *const end_markers[] = {"<|im_end|>", "<|end|>", "<|endoftext|>", "<|eot_id|>",
                                              "<|eom_id|>", "<end_of_turn>"};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(end_markers); i++) {
        int32_t id = tok_find_cstr(t, end_markers[i]);
        if (id >= 0 && t->types[id] == ELLM_TOKT_CONTROL && (st = tok_add_stop_id(t, id, err))) return st;
    }
    if (t->chat == ELLM_CHAT_NONE) {
        free(t->chat_default_system);
        t->chat_default_system = NULL;
        t->chat = tok_chat_detect(t, t->chat_template, &t->chat_default_system);
    }
    return ELLM_OK;
}

void ellm_tokenizer_free(ellm_tokenizer *t) {
    if (!t) return;
    free(t->what);
    free(t->arena);
    free(t->raw_off);
    free(t->raw_len);
    free(t->out_off);
    free(t->out_len);
    free(t->scores);
    free(t->types);
    free(t->attrs);
    free(t->vocab.slots);
    free(t->merges.slots);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t->pre_name);
    free(t->special_ids);
    free(t->stop_ids);
    free(t->chat_template);
    free(t->chat_default_system);
    free(t);
}

/* ---- accessors ---------------------------------------------------------- */

int32_t ellm_tokenizer_vocab_size(const ellm_tokenizer *t) { return t->n_vocab; }
int32_t ellm_tokenizer_bos(const ellm_tokenizer *t) { return t->bos; }
int32_t ellm_tokenizer_eos(const ellm_tokenizer *t) { return t->eos; }
ellm_tok_kind ellm_tokenizer_kind(const ellm_tokenizer *t) { return t->kind; }
const char *ellm_tokenizer_kind_name(const ellm_tokenizer *t) {
    return t->kind == ELLM_TOK_SPM ? "spm" : t->kind == ELLM_TOK_BPE ? "bpe" : "llama2c";
}
int ellm_tokenizer_add_bos_default(const ellm_tokenizer *t) { return t->add_bos && t->bos >= 0; }

ellm_tok_type ellm_tokenizer_token_type(const ellm_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return ELLM_TOKT_UNUSED;
    return (ellm_tok_type)t->types[id];
}

int ellm_tokenizer_is_special(const ellm_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return 0;
    return t->types[id] == ELLM_TOKT_CONTROL || t->types[id] == ELLM_TOKT_UNKNOWN;
}

int32_t ellm_tokenizer_find(const ellm_tokenizer *t, const char *piece, size_t len) {
    return strmap_find(t, piece, len);
}

size_t ellm_tokenizer_raw_piece(const ellm_tokenizer *t, int32_t id, const char **piece) {
    if (id < 0 || id >= t->n_vocab) {
        *piece = "";
        return 0;
    }
    *piece = raw_ptr(t, id);
    return t->raw_len[id];
}

size_t ellm_token_piece(const ellm_tokenizer *t, int32_t id, const char **piece) {
    if (id < 0 || id >= t->n_vocab) {
        *piece = "";
        return 0;
    }
    *piece = t->arena + t->out_off[id];
    return t->out_len[id];
}

size_t ellm_tokenizer_stop_ids(const ellm_tokenizer *t, const int32_t **ids) {
    *ids = t->stop_ids;
    return t->n_stop;
}

int ellm_tokenizer_is_stop(const ellm_tokenizer *t, int32_t id) {
    for (size_t i = 0; i < t->n_stop; i++)
        if (t->stop_ids[i] == id) return 1;
    return 0;
}

/* ---- encoding: per-call work area --------------------------------------- */

typedef struct tok_sym {
    int32_t prev, next;
    uint32_t start, len; /* len 0: merged away */
    int32_t id;          /* -1: not in the vocabulary */
    int32_t frozen;      /* never merged (user-defined pieces, bytes) */
} tok_sym;

typedef struct tok_cand {
    double prio; /* higher first */
    uint32_t pos;
    int32_t l, r, id;
    uint32_t size;
} tok_cand;

typedef struct cache_entry {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t ids_off, ids_len;
} cache_entry;

typedef struct tok_work {
    const ellm_tokenizer *t;
    ellm_error *err;
    int32_t *ids;
    size_t n_ids, cap_ids;
    tok_sym *syms;
    size_t cap_syms;
    tok_cand *heap;
    size_t n_heap, cap_heap;
    char *buf; /* normalised text */
    size_t cap_buf;
    pcre2_match_data *md;
    /* byte-level BPE: words already encoded in this call */
    cache_entry *cache;
    uint32_t cache_mask;
    size_t cache_count;
    char *ckeys;
    size_t n_ckeys, cap_ckeys;
    int32_t *cids;
    size_t n_cids, cap_cids;
} tok_work;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

static ellm_status oom(tok_work *w) { return ellm_fail(w->err, ELLM_E_NOMEM, "%s: out of memory while encoding", w->t->what); }

static ellm_status push_id(tok_work *w, int32_t id) {
    if (w->n_ids == w->cap_ids && !grow((void **)&w->ids, &w->cap_ids, w->n_ids + 1, sizeof(int32_t)))
        return oom(w);
    w->ids[w->n_ids++] = id;
    return ELLM_OK;
}

static inline int cand_better(const tok_cand *a, const tok_cand *b) {
    return a->prio > b->prio || (a->prio == b->prio && a->pos < b->pos);
}

static ellm_status heap_push(tok_work *w, const tok_cand *c) {
    if (w->n_heap == w->cap_heap && !grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof(tok_cand)))
        return oom(w);
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_better(c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = *c;
    return ELLM_OK;
}

static tok_cand heap_pop(tok_work *w) {
    tok_cand top = w->heap[0];
    tok_cand last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const tok_cand *bc = &last;
        if (l < n && cand_better(&w->heap[l], bc)) {
            best = l;
            bc = &w->heap[l];
        }
        if (l + 1 < n && cand_better(&w->heap[l + 1], bc)) best = l + 1;
        if (best == i) break;
        w->heap[i] = w->heap[best];
        i = best;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int mergeable(const ellm_tokenizer *t, int32_t id) {
    if (t->kind == ELLM_TOK_LLAMA2C) return 1; /* run.c looks every piece up */
    uint8_t ty = t->types[id];
    return ty == ELLM_TOKT_NORMAL || ty == ELLM_TOKT_USER_DEFINED || ty == ELLM_TOKT_UNUSED;
}

static ellm_status try_pair(tok_work *w, const char *text, int32_t l, int32_t r) {
    const ellm_tokenizer *t = w->t;
    const tok_sym *L = &w->syms[l], *R = &w->syms[r];
    if (L->frozen || R->frozen) return ELLM_OK;
    tok_cand c;
    c.pos = L->start;
    c.l = l;
    c.r = r;
    c.size = L->len + R->len;
    if (t->use_pair_ranks) {
        if (L->id < 0 || R->id < 0) return ELLM_OK;
        const tok_pair_entry *e = pair_find(&t->merges, L->id, R->id);
        if (!e) return ELLM_OK;
        c.prio = -(double)e->rank;
        c.id = e->id;
    } else {
        int32_t id = strmap_find(t, text + L->start, c.size);
        if (id < 0 || !mergeable(t, id)) return ELLM_OK;
        c.prio = t->scores[id];
        c.id = id;
    }
    return heap_push(w, &c);
}

/* Merges the n symbols in w->syms (a linked list 0..n-1 over `text`) and
 * appends the resulting ids. */
static ellm_status merge_and_emit(tok_work *w, const char *text, int32_t n) {
    const ellm_tokenizer *t = w->t;
    ellm_status st;
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < n; i++)
        if ((st = try_pair(w, text, i, i + 1))) return st;
    while (w->n_heap) {
        tok_cand c = heap_pop(w);
        tok_sym *L = &w->syms[c.l], *R = &w->syms[c.r];
        if (L->len == 0 || R->len == 0 || L->next != c.r || L->len + R->len != c.size) continue;
        L->len += R->len;
        L->id = c.id;
        L->next = R->next;
        if (R->next >= 0) w->syms[R->next].prev = c.l;
        R->len = 0;
        if (L->prev >= 0 && (st = try_pair(w, text, L->prev, c.l))) return st;
        if (L->next >= 0 && (st = try_pair(w, text, c.l, L->next))) return st;
    }
    for (int32_t i = 0; i >= 0 && n > 0; i = w->syms[i].next) {
        const tok_sym *s = &w->syms[i];
        if (s->id >= 0) {
            if ((st = push_id(w, s->id))) return st;
            continue;
        }
        /* not in the vocabulary: byte fallback, else <unk> */
        int all_bytes = t->byte_fallback;
        for (uint32_t k = 0; k < s->len && all_bytes; k++)
            if (t->byte_tok[(uint8_t)text[s->start + k]] < 0) all_bytes = 0;
        if (all_bytes) {
            for (uint32_t k = 0; k < s->len; k++)
                if ((st = push_id(w, t->byte_tok[(uint8_t)text[s->start + k]]))) return st;
        } else if (t->unk >= 0) {
            /* SentencePiece (and HF fuse_unk) merge a run of unknown pieces into one */
            int fuse = t->kind == ELLM_TOK_SPM && w->n_ids > 0 && w->ids[w->n_ids - 1] == t->unk && s->prev >= 0 &&
                       w->syms[s->prev].id < 0;
            if (!fuse && (st = push_id(w, t->unk))) return st;
        }
        /* else dropped, as HF's BPE does when the vocabulary has neither the
         * character, its bytes, nor an unknown token (SmolLM2 lacks the bytes
         * that never occur in UTF-8 text, e.g. 0xF5..0xFF) */
    }
    return ELLM_OK;
}

static int syms_reserve(tok_work *w, size_t n) { return grow((void **)&w->syms, &w->cap_syms, n, sizeof(tok_sym)); }

static void sym_init(tok_sym *s, int32_t i, uint32_t start, uint32_t len, int32_t id, int frozen) {
    s->prev = i - 1;
    s->next = i + 1;
    s->start = start;
    s->len = len;
    s->id = id;
    s->frozen = frozen;
}

/* Longest user-defined / special token matching at s (filtered by `types`
 * bitmask of ellm_tok_type), or -1. */
static int32_t match_special(const ellm_tokenizer *t, const char *s, size_t n, unsigned types) {
    uint8_t b = (uint8_t)s[0];
    for (uint32_t i = t->special_start[b]; i < t->special_start[b + 1]; i++) {
        int32_t id = t->special_ids[i];
        if (!(types & (1u << t->types[id]))) continue;
        size_t l = t->raw_len[id];
        if (l <= n && memcmp(raw_ptr(t, id), s, l) == 0) return id;
    }
    return -1;
}

#define CACHE_MAX_WORD 64

typedef ellm_status (*word_fn)(tok_work *w, const char *s, size_t n);

/* Encodes one word through `fn`, remembering the ids of short words for the
 * rest of the call (text repeats its words: this is most of the speed). */
static ellm_status cached_word(tok_work *w, const char *s, size_t n, word_fn fn) {
    if (n == 0) return ELLM_OK;
    if (n > CACHE_MAX_WORD) return fn(w, s, n);
    if (!w->cache || (w->cache_count + 1) * 2 > (size_t)w->cache_mask + 1) {
        uint32_t cap = w->cache ? (w->cache_mask + 1) * 2 : 4096;
        cache_entry *c = calloc(cap, sizeof *c);
        if (!c) return oom(w);
        for (uint32_t i = 0; w->cache && i <= w->cache_mask; i++) {
            if (!w->cache[i].key_len) continue;
            uint32_t j = (uint32_t)w->cache[i].hash & (cap - 1);
            while (c[j].key_len) j = (j + 1) & (cap - 1);
            c[j] = w->cache[i];
        }
        free(w->cache);
        w->cache = c;
        w->cache_mask = cap - 1;
    }
    uint64_t h = hash_bytes(s, n);
    uint32_t i = (uint32_t)h & w->cache_mask;
    for (; w->cache[i].key_len; i = (i + 1) & w->cache_mask) {
        const cache_entry *e = &w->cache[i];
        if (e->hash == h && e->key_len == n && memcmp(w->ckeys + e->key_off, s, n) == 0) {
            if (!grow((void **)&w->ids, &w->cap_ids, w->n_ids + e->ids_len, sizeof(int32_t))) return oom(w);
            memcpy(w->ids + w->n_ids, w->cids + e->ids_off, e->ids_len * sizeof(int32_t));
            w->n_ids += e->ids_len;
            return ELLM_OK;
        }
    }
    size_t first = w->n_ids;
    ellm_status st = fn(w, s, n);
    if (st) return st;
    size_t k = w->n_ids - first;
    if (!grow((void **)&w->ckeys, &w->cap_ckeys, w->n_ckeys + n, 1) ||
        !grow((void **)&w->cids, &w->cap_cids, w->n_cids + k, sizeof(int32_t)))
        return oom(w);
    cache_entry *e = &w->cache[i];
    e->hash = h;
    e->key_off = (uint32_t)w->n_ckeys;
    e->key_len = (uint32_t)n;
    e->ids_off = (uint32_t)w->n_cids;
    e->ids_len = (uint32_t)k;
    memcpy(w->ckeys + w->n_ckeys, s, n);
    memcpy(w->cids + w->n_cids, w->ids + first, k * sizeof(int32_t));
    w->n_ckeys += n;
    w->n_cids += k;
    w->cache_count++;
    return ELLM_OK;
}

/* SentencePiece-style BPE over one normalised piece. */
static ellm_status spm_piece(tok_work *w, const char *text, size_t n) {
    const ellm_tokenizer *t = w->t;
    if (!syms_reserve(w, n + 1)) return oom(w);
    int32_t count = 0;
    size_t pos = 0;
    while (pos < n) {
        int32_t ud = -1;
        if (t->userdef_in_model && t->special_start[(uint8_t)text[pos]] != t->special_start[(uint8_t)text[pos] + 1])
            ud = match_special(t, text + pos, n - pos, 1u << ELLM_TOKT_USER_DEFINED);
        if (ud >= 0) {
            sym_init(&w->syms[count], count, (uint32_t)pos, t->raw_len[ud], ud, 1);
            pos += t->raw_len[ud];
        } else {
            size_t l = tok_utf8_len((const uint8_t *)text + pos, n - pos);
            int32_t id = strmap_find(t, text + pos, l);
            if (id >= 0 && !mergeable(t, id)) id = -1;
            sym_init(&w->syms[count], count, (uint32_t)pos, (uint32_t)l, id, 0);
            pos += l;
        }
        count++;
    }
    if (count == 0) return ELLM_OK;
    w->syms[count - 1].next = -1;
    return merge_and_emit(w, text, count);
}

/* Cuts normalised text into words that BPE can encode one at a time: before
 * every space marker (`mark`) that follows another character. That is exact
 * when no mergeable piece has a marker after its leading run of markers
 * (t->split_words, checked at load: SentencePiece trains with
 * split_by_whitespace), because then no merge ever spans two words.
 * `every` cuts before every marker (HF Metaspace split=true). */
static ellm_status split_words(tok_work *w, const char *s, size_t n, const char *mark, size_t ml, int every,
                               word_fn fn) {
    if (!every && !w->t->split_words) return fn(w, s, n);
    size_t start = 0;
    for (size_t i = ml; i + ml <= n; i++) {
        if (s[i] != mark[0] || memcmp(s + i, mark, ml) != 0) continue;
        if (every || memcmp(s + i - ml, mark, ml) != 0) {
            ellm_status st = cached_word(w, s + start, i - start, fn);
            if (st) return st;
            start = i;
        }
        i += ml - 1;
    }
    return cached_word(w, s + start, n - start, fn);
}

static ellm_status spm_fragment(tok_work *w, const char *s, size_t n, int prefix) {
    const ellm_tokenizer *t = w->t;
    /* worst case: every byte becomes "▁" (3 bytes), plus the prefix */
    if (!grow((void **)&w->buf, &w->cap_buf, n * 3 + 4, 1)) return oom(w);
    if (t->remove_extra_ws) {
        while (n && s[0] == ' ') s++, n--;
        while (n && s[n - 1] == ' ') n--;
    }
    if (n == 0) return ELLM_OK;
    char *o = w->buf;
    size_t m = 0;
    if (prefix && t->add_dummy_prefix) {
        memcpy(o, "\xE2\x96\x81", 3);
        m = 3;
    }
    int prev_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            if (t->remove_extra_ws && prev_space) continue;
            memcpy(o + m, "\xE2\x96\x81", 3);
            m += 3;
            prev_space = 1;
        } else {
            o[m++] = s[i];
            prev_space = 0;
        }
    }
    return split_words(w, o, m, "\xE2\x96\x81", 3, t->metaspace_split, spm_piece);
}

/* llama2.c run.c encode(): a " " dummy prefix, code points grouped as run.c
 * does (a byte and up to three continuation bytes), byte tokens for groups
 * not in the vocabulary, then score-ordered merges. */
static ellm_status llama2c_word(tok_work *w, const char *o, size_t m) {
    const ellm_tokenizer *t = w->t;
    if (!syms_reserve(w, m + 1)) return oom(w);
    int32_t count = 0;
    size_t pos = 0;
    while (pos < m) {
        size_t l = 1;
        while (pos + l < m && ((uint8_t)o[pos + l] & 0xC0) == 0x80 && l < 4) l++;
        int32_t id = strmap_find(t, o + pos, l);
        if (id >= 0) {
            sym_init(&w->syms[count], count, (uint32_t)pos, (uint32_t)l, id, 0);
            count++;
        } else { /* byte tokens; a missing one becomes <unk> in merge_and_emit */
            for (size_t k = 0; k < l; k++, count++)
                sym_init(&w->syms[count], count, (uint32_t)(pos + k), 1, t->byte_tok[(uint8_t)o[pos + k]], 1);
        }
        pos += l;
    }
    w->syms[count - 1].next = -1;
    return merge_and_emit(w, o, count);
}

static ellm_status llama2c_fragment(tok_work *w, const char *s, size_t n, int prefix) {
    const ellm_tokenizer *t = w->t;
    if (n == 0) return ELLM_OK;
    if (!grow((void **)&w->buf, &w->cap_buf, n + 2, 1)) return oom(w);
    char *o = w->buf;
    size_t m = 0;
    if (prefix && t->add_dummy_prefix) o[m++] = ' ';
    memcpy(o + m, s, n);
    m += n;
    return split_words(w, o, m, " ", 1, 0, llama2c_word);
}

/* ---- byte-level BPE ----------------------------------------------------- */

static ellm_status bpe_word_uncached(tok_work *w, const char *s, size_t n) {
    const ellm_tokenizer *t = w->t;
    if (t->ignore_merges && n <= 256) {
        char u[512];
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += tok_utf8_encode(tok_byte_to_cp((uint8_t)s[i]), u + m);
        int32_t id = strmap_find(t, u, m);
        if (id >= 0 && t->types[id] == ELLM_TOKT_NORMAL) return push_id(w, id);
    }
    if (!syms_reserve(w, n + 1)) return oom(w);
    for (size_t i = 0; i < n; i++) sym_init(&w->syms[i], (int32_t)i, (uint32_t)i, 1, t->byte_tok[(uint8_t)s[i]], 0);
    w->syms[n - 1].next = -1;
    return merge_and_emit(w, s, (int32_t)n);
}

/* Applies pre-tokenizer stage `stage` (a Split with Isolated behaviour: the
 * matches and the text between them are pieces) to s, recursing into the
 * next stage for each piece. */
static ellm_status bpe_split(tok_work *w, const char *s, size_t n, int stage) {
    const ellm_tokenizer *t = w->t;
    if (n == 0) return ELLM_OK;
    if (stage >= t->n_re) return cached_word(w, s, n, bpe_word_uncached);
    size_t pos = 0;
    ellm_status st;
    while (pos < n) {
        int rc = pcre2_match(t->re[stage], (PCRE2_SPTR)s, n, pos, 0, w->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ellm_fail(w->err, ELLM_E_INTERNAL, "%s: pre-tokenizer regex failed: %s", t->what,
                             (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t a = ov[0], b = ov[1];
        if (b <= a) { /* an empty match: step over one character */
            size_t l = tok_utf8_len((const uint8_t *)s + a, n - a);
            if ((st = bpe_split(w, s + pos, a + l - pos, stage + 1))) return st;
            pos = a + l;
            continue;
        }
        if (a > pos && (st = bpe_split(w, s + pos, a - pos, stage + 1))) return st;
        if ((st = bpe_split(w, s + a, b - a, stage + 1))) return st;
        pos = b;
    }
    return bpe_split(w, s + pos, n - pos, stage + 1);
}

static ellm_status bpe_fragment(tok_work *w, const char *s, size_t n, int at_start) {
    if (w->t->bpe_add_prefix_space && at_start && n > 0 && s[0] != ' ') {
        /* a private copy: w->buf is shared with nothing here, but keep it simple */
        char *copy = malloc(n + 1);
        if (!copy) return oom(w);
        copy[0] = ' ';
        memcpy(copy + 1, s, n);
        ellm_status st = bpe_split(w, copy, n + 1, 0);
        free(copy);
        return st;
    }
    return bpe_split(w, s, n, 0);
}

static ellm_status encode_fragment_normalized(tok_work *w, const char *s, size_t n, size_t offset);

/* Encodes the ordinary text between special tokens; `offset` is where it
 * starts in the input (the dummy prefix and BPE prefix space depend on it). */
static ellm_status encode_fragment(tok_work *w, const char *s, size_t n, size_t offset) {
    if (n == 0 || !w->t->nfc || !tok_needs_nfc(s, n)) return encode_fragment_normalized(w, s, n, offset);
    char *norm;
    size_t len;
    ellm_status st = tok_nfc(s, n, &norm, &len, w->err);
    if (st) return st;
    st = encode_fragment_normalized(w, norm, len, offset);
    free(norm);
    return st;
}

static ellm_status encode_fragment_normalized(tok_work *w, const char *s, size_t n, size_t offset) {
    const ellm_tokenizer *t = w->t;
    if (n == 0) return ELLM_OK;
    switch (t->kind) {
    case ELLM_TOK_SPM: {
        int prefix = t->prefix_mode == TOK_PREFIX_EACH || (t->prefix_mode == TOK_PREFIX_FIRST && offset == 0);
        return spm_fragment(w, s, n, prefix);
    }
    case ELLM_TOK_LLAMA2C:
        return llama2c_fragment(w, s, n, offset == 0);
    case ELLM_TOK_BPE:
        return bpe_fragment(w, s, n, 1); /* HF ByteLevel(add_prefix_space) prefixes every fragment */
    }
    return ellm_fail(w->err, ELLM_E_INTERNAL, "%s: unknown tokenizer kind %d", t->what, (int)t->kind);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void work_free(tok_work *w) {
    free(w->syms);
    free(w->heap);
    free(w->buf);
    if (w->md) pcre2_match_data_free(w->md);
    free(w->cache);
    free(w->ckeys);
    free(w->cids);
}

ellm_status ellm_tokenize(const ellm_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                          int32_t **ids, size_t *n_ids, ellm_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return ellm_fail(err, ELLM_E_ARG, "ellm_tokenize: NULL text");
    /* symbol indices and cache offsets are 32-bit */
    if (len > ((size_t)1 << 30))
        return ellm_fail(err, ELLM_E_ARG, "%s: text of %zu bytes: at most 1 GiB per call", t->what, len);
    tok_work w;
    memset(&w, 0, sizeof w);
    w.t = t;
    w.err = err;
    ellm_status st = ELLM_OK;
    if (t->n_re > 0) {
        w.md = pcre2_match_data_create(1, NULL);
        if (!w.md) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    }
    if (add_bos && t->bos >= 0) st = push_id(&w, t->bos);
    unsigned types = 0;
    if (!t->userdef_in_model) types |= 1u << ELLM_TOKT_USER_DEFINED;
    if (parse_special) types |= (1u << ELLM_TOKT_CONTROL) | (1u << ELLM_TOKT_UNKNOWN);
    size_t pos = 0, frag = 0;
    while (!st && pos < len) {
        uint8_t b = (uint8_t)text[pos];
        int32_t id = -1;
        if (types && t->special_start[b] != t->special_start[b + 1])
            id = match_special(t, text + pos, len - pos, types);
        if (id < 0) {
            pos++;
            continue;
        }
        size_t end = pos;
        if (t->attrs[id] & TOK_ATTR_LSTRIP)
            while (end > frag && is_ws(text[end - 1])) end--;
        st = encode_fragment(&w, text + frag, end - frag, frag);
        if (!st) st = push_id(&w, id);
        pos += t->raw_len[id];
        if (t->attrs[id] & TOK_ATTR_RSTRIP)
            while (pos < len && is_ws(text[pos])) pos++;
        frag = pos;
    }
    if (!st) st = encode_fragment(&w, text + frag, len - frag, frag);
    if (st) {
        free(w.ids);
        work_free(&w);
        return st;
    }
    work_free(&w);
    *ids = w.ids ? w.ids : malloc(sizeof(int32_t));
    if (!*ids) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    *n_ids = w.n_ids;
    return ELLM_OK;
}

/* ---- decoding ----------------------------------------------------------- */

static int strips_leading_space(const ellm_tokenizer *t) {
    return t->kind != ELLM_TOK_BPE && t->add_dummy_prefix && t->prefix_mode != TOK_PREFIX_NEVER;
}

ellm_status ellm_tokenizer_decode(const ellm_tokenizer *t, const int32_t *ids, size_t n_ids, unsigned flags,
                                  char **text, size_t *len, ellm_error *err) {
    *text = NULL;
    if (len) *len = 0;
    size_t total = 1;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ellm_fail(err, ELLM_E_ARG, "%s: token id %d at position %zu is outside the vocabulary [0, %d)",
                             t->what, (int)ids[i], i, (int)t->n_vocab);
        total += t->out_len[ids[i]];
    }
    char *out = ellm_malloc(total, err);
    if (!out) return ELLM_E_NOMEM;
    size_t m = 0;
    int first = !(flags & ELLM_DETOK_KEEP_LEADING_SPACE) && strips_leading_space(t);
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (t->types[id] == ELLM_TOKT_CONTROL && !(flags & ELLM_DETOK_SPECIAL)) continue;
        const char *p = t->arena + t->out_off[id];
        size_t l = t->out_len[id];
        if (first && t->types[id] != ELLM_TOKT_CONTROL) {
            if (l > 0 && p[0] == ' ') p++, l--;
            first = 0;
        }
        memcpy(out + m, p, l);
        m += l;
    }
    out[m] = 0;
    *text = out;
    if (len) *len = m;
    return ELLM_OK;
}

ellm_status ellm_detokenize(const ellm_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len,
                            ellm_error *err) {
    return ellm_tokenizer_decode(t, ids, n_ids, 0, text, len, err);
}

size_t ellm_tokenizer_stream_piece(const ellm_tokenizer *t, int32_t prev, int32_t id, const char **piece) {
    *piece = "";
    if (id < 0 || id >= t->n_vocab || t->types[id] == ELLM_TOKT_CONTROL) return 0;
    const char *p = t->arena + t->out_off[id];
    size_t l = t->out_len[id];
    if (strips_leading_space(t) && (prev < 0 || prev == t->bos) && l > 0 && p[0] == ' ') p++, l--;
    *piece = p;
    return l;
}
