/*
 * tok_gguf.c - tokenizers from GGUF metadata (tokenizer.ggml.*), as llama.cpp
 * writes them: vocabulary-only GGUFs, whole GGUF models, and the
 * "tokenizer.gguf" blob inside .ellm files.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "tokenizer/tok_internal.h"

static int gstr_eq(gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static int get_bool(const gguf_ctx *g, const char *key, int dflt) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return dflt;
    return kv->v.u64 != 0;
}

static int32_t get_id(const gguf_ctx *g, const char *key, int32_t n) {
    uint64_t v;
    if (gguf_get_u64(g, key, &v) != 0 || v >= (uint64_t)n) return -1;
    return (int32_t)v;
}

static ellm_status gguf_merges(ellm_tokenizer *t, const gguf_ctx *g, const gguf_kv *kv, ellm_error *err) {
    gguf_str *items;
    ellm_status st = gguf_str_array(g, kv, &items, err);
    if (st) return ellm_fail_prefix(err, "%s", t->what);
    if ((st = tok_pairmap_reserve(&t->merges, (size_t)kv->arr_len + 1, err))) {
        free(items);
        return st;
    }
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < kv->arr_len && !st; i++) {
        const char *s = items[i].ptr;
        size_t n = (size_t)items[i].len;
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s))) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: merge %llu '%.*s' is not two pieces", t->what,
                           (unsigned long long)i, (int)ELLM_MIN(n, 100), s);
            break;
        }
        size_t la = (size_t)(sp - s), lb = n - la - 1;
        int32_t a = ellm_tokenizer_find(t, s, la), b = ellm_tokenizer_find(t, sp + 1, lb);
        if (la + lb > cap) {
            cap = (la + lb) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                st = ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
                break;
            }
            buf = nb;
        }
        memcpy(buf, s, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t ab = ellm_tokenizer_find(t, buf, la + lb);
        if (a < 0 || b < 0 || ab < 0) continue;
        st = tok_add_merge(t, a, b, ab, (int32_t)i, err);
    }
    free(buf);
    free(items);
    return st;
}

/* Builds an unfinished tokenizer (the caller runs tok_finish after applying
 * config files). Merges are resolved through the piece map, so for 'gpt2'
 * vocabularies tok_finish runs once early; it is idempotent. */
ellm_status tok_build_gguf(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                           ellm_error *err) {
    *out = NULL;
    gguf_ctx g;
    memset(&g, 0, sizeof g);
    ellm_status st = gguf_parse(data, size, what, &g, err);
    if (st) return st;
    ellm_tokenizer *t = NULL;
    gguf_str *tokens = NULL;
    gguf_str model;
    if (gguf_get_str(&g, "tokenizer.ggml.model", &model) != 0) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: no tokenizer.ggml.model key (a GGUF without a vocabulary)", what);
        goto done;
    }
    ellm_tok_kind kind;
    if (gstr_eq(model, "llama")) kind = ELLM_TOK_SPM;
    else if (gstr_eq(model, "gpt2")) kind = ELLM_TOK_BPE;
    else {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED,
                       "%s: tokenizer.ggml.model '%.*s' is not supported (only 'llama' SentencePiece BPE and 'gpt2' "
                       "byte-level BPE)",
                       what, (int)ELLM_MIN(model.len, 100), model.ptr);
        goto done;
    }
    const gguf_kv *ktok = gguf_find(&g, "tokenizer.ggml.tokens");
    if (!ktok || (st = gguf_str_array(&g, ktok, &tokens, err))) {
        if (!st) st = ellm_fail(err, ELLM_E_FORMAT, "%s: no tokenizer.ggml.tokens array", what);
        else ellm_fail_prefix(err, "%s", what);
        goto done;
    }
    if (ktok->arr_len == 0 || ktok->arr_len > (1u << 24)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: %llu tokens", what, (unsigned long long)ktok->arr_len);
        goto done;
    }
    int32_t n = (int32_t)ktok->arr_len;
    const gguf_kv *kscores = gguf_find(&g, "tokenizer.ggml.scores");
    const gguf_kv *ktypes = gguf_find(&g, "tokenizer.ggml.token_type");
    if (kscores && (kscores->type != GGUF_TYPE_ARRAY || kscores->arr_type != GGUF_TYPE_FLOAT32 ||
                    kscores->arr_len != (uint64_t)n)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: tokenizer.ggml.scores is not %d float32 values", what, (int)n);
        goto done;
    }
    if (ktypes && (ktypes->type != GGUF_TYPE_ARRAY ||
                   (ktypes->arr_type != GGUF_TYPE_INT32 && ktypes->arr_type != GGUF_TYPE_UINT32) ||
                   ktypes->arr_len != (uint64_t)n)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: tokenizer.ggml.token_type is not %d int32 values", what, (int)n);
        goto done;
    }
    if (kind == ELLM_TOK_SPM && !kscores) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: a 'llama' vocabulary needs tokenizer.ggml.scores", what);
        goto done;
    }
    t = tok_alloc(kind, n, what, err);
    if (!t) {
        st = err ? err->code : ELLM_E_NOMEM;
        goto done;
    }
    for (int32_t i = 0; i < n && !st; i++) {
        float score = 0;
        if (kscores) {
            uint32_t bits = ellm_le32(kscores->arr_data + 4 * (size_t)i);
            memcpy(&score, &bits, 4);
            if (!isfinite(score)) score = -1e30f;
        }
        int32_t type = ktypes ? (int32_t)ellm_le32(ktypes->arr_data + 4 * (size_t)i) : ELLM_TOKT_NORMAL;
        if (type < 1 || type > 6) type = ELLM_TOKT_NORMAL;
        st = tok_set_piece(t, i, tokens[i].ptr, (size_t)tokens[i].len, score, (ellm_tok_type)type, err);
    }
    if (st) goto done;
    if (!ktypes && kind == ELLM_TOK_SPM) /* old files without types: infer byte pieces */
        for (int32_t i = 0; i < n; i++)
            if (tok_parse_byte_piece(tokens[i].ptr, (size_t)tokens[i].len) >= 0) t->types[i] = ELLM_TOKT_BYTE;
    t->bos = get_id(&g, "tokenizer.ggml.bos_token_id", n);
    t->eos = get_id(&g, "tokenizer.ggml.eos_token_id", n);
    /* byte-level vocabularies that lack a byte drop it, as HF does (llama.cpp's
     * unknown_token_id there is <|endoftext|>, which must not enter text) */
    t->unk = kind == ELLM_TOK_SPM ? get_id(&g, "tokenizer.ggml.unknown_token_id", n) : -1;
    t->pad = get_id(&g, "tokenizer.ggml.padding_token_id", n);
    if (!ktypes) { /* ... and BOS/EOS/unk, so that text never produces them */
        if (t->bos >= 0) t->types[t->bos] = ELLM_TOKT_CONTROL;
        if (t->eos >= 0) t->types[t->eos] = ELLM_TOKT_CONTROL;
        int32_t unk = get_id(&g, "tokenizer.ggml.unknown_token_id", n);
        if (unk >= 0) t->types[unk] = ELLM_TOKT_UNKNOWN;
    }
    t->add_bos = get_bool(&g, "tokenizer.ggml.add_bos_token", kind == ELLM_TOK_SPM);
    t->add_eos = get_bool(&g, "tokenizer.ggml.add_eos_token", 0);
    gguf_str s;
    if (kind == ELLM_TOK_SPM) {
        t->add_dummy_prefix = get_bool(&g, "tokenizer.ggml.add_space_prefix", 1);
        t->prefix_mode = TOK_PREFIX_EACH;
        t->byte_fallback = 1;
    } else {
        const gguf_kv *km = gguf_find(&g, "tokenizer.ggml.merges");
        if (!km) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: a 'gpt2' vocabulary needs tokenizer.ggml.merges", what);
            goto done;
        }
        t->use_pair_ranks = 1;
        char pre[128] = "default";
        if (gguf_get_str(&g, "tokenizer.ggml.pre", &s) == 0)
            snprintf(pre, sizeof pre, "%.*s", (int)ELLM_MIN(s.len, 100), s.ptr);
        if ((st = tok_set_pre_by_name(t, pre, err))) goto done;
        if ((st = tok_finish(t, err))) goto done; /* builds the piece map used by the merges */
        if ((st = gguf_merges(t, &g, km, err))) goto done;
    }
    if (gguf_get_str(&g, "tokenizer.chat_template", &s) == 0) {
        t->chat_template = malloc((size_t)s.len + 1);
        if (!t->chat_template) {
            st = ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
            goto done;
        }
        memcpy(t->chat_template, s.ptr, (size_t)s.len);
        t->chat_template[s.len] = 0;
        t->chat = ELLM_CHAT_NONE; /* detected again by the final tok_finish */
    }
    /* llama.cpp strips the whitespace after Phi-3's chat markers, as HF does
     * (rstrip in its tokenizer.json); GGUF does not carry the flag. */
    gguf_str arch;
    if (gguf_get_str(&g, "general.architecture", &arch) == 0 && gstr_eq(arch, "phi3")) {
        for (int32_t i = 0; i < n; i++) {
            const char *p;
            size_t l = ellm_tokenizer_raw_piece(t, i, &p);
            int keep = (l == 5 && !memcmp(p, "<unk>", 5)) || (l == 3 && !memcmp(p, "<s>", 3)) ||
                       (l == 13 && !memcmp(p, "<|endoftext|>", 13));
            if ((t->types[i] == ELLM_TOKT_CONTROL && !keep) || (l == 4 && !memcmp(p, "</s>", 4)))
                t->attrs[i] |= TOK_ATTR_RSTRIP;
        }
    }
done:
    free(tokens);
    gguf_free(&g);
    if (st) {
        ellm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ELLM_OK;
}

ellm_status ellm_tokenizer_from_gguf(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                     ellm_error *err) {
    ellm_tokenizer *t;
    ellm_status st = tok_build_gguf(data, size, what, &t, err);
    if (st) return st;
    if ((st = tok_finish(t, err))) {
        ellm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ELLM_OK;
}
