/*
 * tok_load.c - tokenizers from the files people have: llama2.c tokenizer.bin,
 * SentencePiece tokenizer.model (protobuf, parsed by hand), Hugging Face
 * tokenizer.json (+ tokenizer_config.json, special_tokens_map.json,
 * generation_config.json), and the dispatcher for paths and blobs.
 * GGUF vocabularies are in tok_gguf.c.
 *
 * Every length read from a file is checked against the bytes left before it
 * is used.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---- llama2.c tokenizer.bin --------------------------------------------- */

/* int32 max_token_length, then per token: float32 score, int32 len, bytes.
 * The count is not stored: tokens run to the end of the file. */
static ellm_status build_llama2c(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                 ellm_error *err) {
    *out = NULL;
    if (size < 4) return ellm_fail(err, ELLM_E_FORMAT, "%s: %zu bytes, too short for a llama2.c tokenizer", what, size);
    int32_t max_len = (int32_t)ellm_le32(data);
    if (max_len <= 0 || max_len > 65536)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: max_token_length %d out of range (not a llama2.c tokenizer?)",
                         what, (int)max_len);
    size_t pos = 4, n = 0;
    while (pos < size) {
        if (size - pos < 8)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: token %zu truncated at byte offset %zu", what, n, pos);
        float score;
        memcpy(&score, data + pos, 4);
        int32_t len = (int32_t)ellm_le32(data + pos + 4);
        if (!isfinite(score) || len < 0 || len > max_len || (size_t)len > size - pos - 8)
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: token %zu at byte offset %zu: length %d (max_token_length %d, %zu bytes left)",
                             what, n, pos, (int)len, (int)max_len, size - pos - 8);
        pos += 8 + (size_t)len;
        n++;
    }
    if (n < 3) return ellm_fail(err, ELLM_E_FORMAT, "%s: only %zu tokens", what, n);
    ellm_tokenizer *t = tok_alloc(ELLM_TOK_LLAMA2C, (int32_t)n, what, err);
    if (!t) return err ? err->code : ELLM_E_NOMEM;
    pos = 4;
    for (size_t i = 0; i < n; i++) {
        float score;
        memcpy(&score, data + pos, 4);
        uint32_t len = ellm_le32(data + pos + 4);
        const char *s = (const char *)data + pos + 8;
        ellm_tok_type type = ELLM_TOKT_NORMAL;
        if (tok_parse_byte_piece(s, len) >= 0) type = ELLM_TOKT_BYTE;
        else if (len == 5 && !memcmp(s, "<unk>", 5)) type = ELLM_TOKT_UNKNOWN;
        else if ((len == 5 && !memcmp(s, "\n<s>\n", 5)) || (len == 6 && !memcmp(s, "\n</s>\n", 6)))
            type = ELLM_TOKT_CONTROL;
        ellm_status st = tok_set_piece(t, (int32_t)i, s, len, score, type, err);
        if (st) {
            ellm_tokenizer_free(t);
            return st;
        }
        if (type == ELLM_TOKT_UNKNOWN && t->unk < 0) t->unk = (int32_t)i;
        if (type == ELLM_TOKT_CONTROL && len == 5 && t->bos < 0) t->bos = (int32_t)i;
        if (type == ELLM_TOKT_CONTROL && len == 6 && t->eos < 0) t->eos = (int32_t)i;
        pos += 8 + len;
    }
    t->add_bos = 1; /* run.c always starts with BOS */
    t->prefix_mode = TOK_PREFIX_FIRST;
    *out = t;
    return ELLM_OK;
}

/* ---- SentencePiece ModelProto ------------------------------------------- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return 0;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* Reads one field; for length-delimited fields *sub holds the bytes. */
static int pb_field(pb *r, uint32_t *field, uint32_t *wire, uint64_t *val, pb *sub) {
    uint64_t key;
    if (!pb_varint(r, &key)) return 0;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0:
        return pb_varint(r, val);
    case 1:
        if (r->end - r->p < 8) return 0;
        *val = ellm_le64(r->p);
        r->p += 8;
        return 1;
    case 5:
        if (r->end - r->p < 4) return 0;
        *val = ellm_le32(r->p);
        r->p += 4;
        return 1;
    case 2: {
        uint64_t len;
        if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return 0;
        sub->p = r->p;
        sub->end = r->p + len;
        r->p += len;
        *val = len;
        return 1;
    }
    default:
        return 0;
    }
}

typedef struct spm_spec {
    int64_t model_type, unk_id, bos_id, eos_id, pad_id;
    int byte_fallback, add_dummy_prefix, remove_extra_ws, escape_ws, treat_ws_as_suffix;
    pb norm_name, charsmap;
} spm_spec;

static ellm_status build_spm_model(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                   ellm_error *err) {
    *out = NULL;
    spm_spec sp = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1,
                   .add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1};
    pb r = {data, data + size}, sub;
    uint32_t f, wire;
    uint64_t v;
    size_t n = 0;
    /* pass 1: count pieces, read the specs */
    while (r.p < r.end) {
        size_t off = (size_t)(r.p - data);
        if (!pb_field(&r, &f, &wire, &v, &sub))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: malformed protobuf field at byte offset %zu", what, off);
        if (f == 1 && wire == 2) {
            n++;
        } else if (f == 2 && wire == 2) { /* TrainerSpec */
            pb s = sub, x;
            while (s.p < s.end) {
                if (!pb_field(&s, &f, &wire, &v, &x))
                    return ellm_fail(err, ELLM_E_FORMAT, "%s: malformed trainer_spec at byte offset %zu", what,
                                     (size_t)(s.p - data));
                if (wire != 0) continue;
                if (f == 3) sp.model_type = (int64_t)v;
                else if (f == 35) sp.byte_fallback = v != 0;
                else if (f == 24) sp.treat_ws_as_suffix = v != 0;
                else if (f == 40) sp.unk_id = (int32_t)v;
                else if (f == 41) sp.bos_id = (int32_t)v;
                else if (f == 42) sp.eos_id = (int32_t)v;
                else if (f == 43) sp.pad_id = (int32_t)v;
            }
        } else if (f == 3 && wire == 2) { /* NormalizerSpec */
            pb s = sub, x;
            while (s.p < s.end) {
                if (!pb_field(&s, &f, &wire, &v, &x))
                    return ellm_fail(err, ELLM_E_FORMAT, "%s: malformed normalizer_spec at byte offset %zu", what,
                                     (size_t)(s.p - data));
                if (f == 1 && wire == 2) sp.norm_name = x;
                else if (f == 2 && wire == 2) sp.charsmap = x;
                else if (f == 3 && wire == 0) sp.add_dummy_prefix = v != 0;
                else if (f == 4 && wire == 0) sp.remove_extra_ws = v != 0;
                else if (f == 5 && wire == 0) sp.escape_ws = v != 0;
            }
        }
    }
    if (n == 0) return ellm_fail(err, ELLM_E_FORMAT, "%s: no pieces (not a SentencePiece model?)", what);
    if (sp.model_type != 2)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: SentencePiece model type %lld is not supported (only BPE, type 2; Unigram is not)",
                         what, (long long)sp.model_type);
    size_t name_len = sp.norm_name.p ? (size_t)(sp.norm_name.end - sp.norm_name.p) : 0;
    int identity = name_len == 0 || (name_len == 8 && !memcmp(sp.norm_name.p, "identity", 8));
    if (!identity && sp.charsmap.p && sp.charsmap.end > sp.charsmap.p)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: SentencePiece normalizer '%.*s' is not supported (only identity)",
                         what, (int)name_len, (const char *)sp.norm_name.p);
    if (sp.treat_ws_as_suffix || !sp.escape_ws)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: SentencePiece options treat_whitespace_as_suffix / no escape_whitespaces are not supported",
                         what);
    ellm_tokenizer *t = tok_alloc(ELLM_TOK_SPM, (int32_t)n, what, err);
    if (!t) return err ? err->code : ELLM_E_NOMEM;
    /* pass 2: pieces */
    r.p = data;
    int32_t id = 0;
    ellm_status st = ELLM_OK;
    while (!st && r.p < r.end) {
        pb_field(&r, &f, &wire, &v, &sub);
        if (f != 1 || wire != 2) continue;
        pb s = sub, x = {0};
        pb piece = {0};
        float score = 0;
        uint64_t type = ELLM_TOKT_NORMAL;
        while (s.p < s.end) {
            if (!pb_field(&s, &f, &wire, &v, &x)) {
                st = ellm_fail(err, ELLM_E_FORMAT, "%s: piece %d malformed at byte offset %zu", what, (int)id,
                               (size_t)(s.p - data));
                break;
            }
            if (f == 1 && wire == 2) piece = x;
            else if (f == 2 && wire == 5) {
                uint32_t bits = (uint32_t)v;
                memcpy(&score, &bits, 4);
            } else if (f == 3 && wire == 0) type = v;
        }
        if (st) break;
        if (type < 1 || type > 6) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: piece %d has type %llu", what, (int)id, (unsigned long long)type);
            break;
        }
        if (!isfinite(score)) score = -1e30f;
        st = tok_set_piece(t, id, (const char *)piece.p, piece.p ? (size_t)(piece.end - piece.p) : 0, score,
                           (ellm_tok_type)type, err);
        id++;
    }
    if (st) {
        ellm_tokenizer_free(t);
        return st;
    }
    t->unk = sp.unk_id >= 0 && sp.unk_id < (int64_t)n ? (int32_t)sp.unk_id : -1;
    t->bos = sp.bos_id >= 0 && sp.bos_id < (int64_t)n ? (int32_t)sp.bos_id : -1;
    t->eos = sp.eos_id >= 0 && sp.eos_id < (int64_t)n ? (int32_t)sp.eos_id : -1;
    t->pad = sp.pad_id >= 0 && sp.pad_id < (int64_t)n ? (int32_t)sp.pad_id : -1;
    t->byte_fallback = sp.byte_fallback;
    t->add_dummy_prefix = sp.add_dummy_prefix;
    t->remove_extra_ws = sp.remove_extra_ws;
    t->prefix_mode = TOK_PREFIX_EACH;
    t->userdef_in_model = 1;
    t->add_bos = 1;
    *out = t;
    return ELLM_OK;
}

/* ---- Hugging Face tokenizer.json ---------------------------------------- */

static const char *jstr(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jbool(const json_t *o, const char *key, int dflt) {
    const json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int is_meta(const char *s) { return s && !strcmp(s, "\xE2\x96\x81"); }

/* The normalizers we apply: Prepend("▁") and Replace(" " -> "▁") (what every
 * SentencePiece fragment gets), and NFC. */
static ellm_status hf_normalizer(ellm_tokenizer *t, const json_t *nz, int *prepend, ellm_error *err) {
    if (!nz || json_is_null(nz)) return ELLM_OK;
    const char *type = jstr(nz, "type");
    if (!type) return ellm_fail(err, ELLM_E_FORMAT, "%s: normalizer without a type", t->what);
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(nz, "normalizers");
        size_t i;
        const json_t *x;
        json_array_foreach(list, i, x) {
            ellm_status st = hf_normalizer(t, x, prepend, err);
            if (st) return st;
        }
        return ELLM_OK;
    }
    if (!strcmp(type, "NFC")) {
        t->nfc = 1;
        return ELLM_OK;
    }
    if (t->kind == ELLM_TOK_BPE)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tokenizer.json normalizer '%s' on a byte-level BPE is not supported",
                         t->what, type);
    if (!strcmp(type, "Prepend") && is_meta(jstr(nz, "prepend"))) {
        *prepend = 1;
        return ELLM_OK;
    }
    if (!strcmp(type, "Replace")) {
        const json_t *pat = json_object_get(nz, "pattern");
        const char *from = jstr(pat, "String"), *to = jstr(nz, "content");
        if (from && to && !strcmp(from, " ") && is_meta(to)) return ELLM_OK; /* what every SPM fragment gets */
    }
    return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tokenizer.json normalizer '%s' is not supported", t->what, type);
}

typedef struct hf_pre {
    int byte_level, metaspace, metaspace_split, bytelevel_prefix;
    const char *prepend_scheme;
    const char *patterns[TOK_MAX_REGEX];
    char *owned[TOK_MAX_REGEX];
    int n;
} hf_pre;

static ellm_status hf_pretokenizer(const char *what, const json_t *pt, hf_pre *p, ellm_error *err) {
    if (!pt || json_is_null(pt)) return ELLM_OK;
    const char *type = jstr(pt, "type");
    if (!type) return ellm_fail(err, ELLM_E_FORMAT, "%s: pre_tokenizer without a type", what);
    if (!strcmp(type, "Sequence")) {
        size_t i;
        const json_t *x;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i, x) {
            ellm_status st = hf_pretokenizer(what, x, p, err);
            if (st) return st;
        }
        return ELLM_OK;
    }
    if (p->n >= TOK_MAX_REGEX)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: too many pre-tokenizer steps", what);
    if (!strcmp(type, "ByteLevel")) {
        p->byte_level = 1;
        p->bytelevel_prefix = jbool(pt, "add_prefix_space", 0);
        if (jbool(pt, "use_regex", 1)) p->patterns[p->n++] = TOK_RE_GPT2;
        return ELLM_OK;
    }
    if (!strcmp(type, "Digits")) {
        p->patterns[p->n++] = jbool(pt, "individual_digits", 0) ? TOK_RE_DIGITS : "\\p{N}+";
        return ELLM_OK;
    }
    if (!strcmp(type, "Split")) {
        const json_t *pat = json_object_get(pt, "pattern");
        const char *behavior = jstr(pt, "behavior");
        if (jbool(pt, "invert", 0) || !behavior || strcmp(behavior, "Isolated"))
            return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Split pre-tokenizer with behavior '%s'%s is not supported",
                             what, behavior ? behavior : "?", jbool(pt, "invert", 0) ? " (inverted)" : "");
        const char *re = jstr(pat, "Regex"), *lit = jstr(pat, "String");
        if (re) {
            p->patterns[p->n++] = re;
        } else if (lit) {
            size_t l = strlen(lit);
            char *q = malloc(l + 5);
            if (!q) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
            snprintf(q, l + 5, "\\Q%s\\E", lit);
            p->owned[p->n] = q;
            p->patterns[p->n++] = q;
        } else {
            return ellm_fail(err, ELLM_E_FORMAT, "%s: Split pre-tokenizer without a pattern", what);
        }
        return ELLM_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        if (!is_meta(jstr(pt, "replacement")))
            return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Metaspace with a replacement other than U+2581", what);
        p->metaspace = 1;
        p->prepend_scheme = jstr(pt, "prepend_scheme");
        if (!p->prepend_scheme) p->prepend_scheme = jbool(pt, "add_prefix_space", 1) ? "always" : "never";
        p->metaspace_split = jbool(pt, "split", 1);
        return ELLM_OK;
    }
    return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tokenizer.json pre_tokenizer '%s' is not supported", what, type);
}

static int32_t hf_vocab_id(const json_t *vocab, const char *piece) {
    const json_t *v = json_object_get(vocab, piece);
    return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

static ellm_status hf_merges(ellm_tokenizer *t, const json_t *vocab, const json_t *merges, ellm_error *err) {
    size_t n = json_array_size(merges);
    ellm_status st = tok_pairmap_reserve(&t->merges, n + 1, err);
    if (st) return st;
    char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                free(buf);
                return ellm_fail(err, ELLM_E_FORMAT, "%s: merge %zu '%s' is not two pieces", t->what, i, s);
            }
            a = s;
            la = (size_t)(sp - s);
            b = sp + 1;
            lb = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            la = strlen(a);
            lb = strlen(b);
        } else {
            free(buf);
            return ellm_fail(err, ELLM_E_FORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", t->what, i);
        }
        if (la + lb + 1 > cap) {
            cap = (la + lb + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
            }
            buf = nb;
        }
        memcpy(buf, a, la);
        buf[la] = 0;
        int32_t ia = hf_vocab_id(vocab, buf);
        memcpy(buf, b, lb);
        buf[lb] = 0;
        int32_t ib = hf_vocab_id(vocab, buf);
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        buf[la + lb] = 0;
        int32_t iab = hf_vocab_id(vocab, buf);
        if (ia < 0 || ib < 0 || iab < 0) continue; /* as HF: a merge whose pieces are absent never applies */
        if ((st = tok_add_merge(t, ia, ib, iab, (int32_t)i, err))) {
            free(buf);
            return st;
        }
    }
    free(buf);
    return ELLM_OK;
}

static ellm_status build_hf_json(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                 ellm_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb((const char *)data, size, 0, &je);
    if (!root)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: invalid JSON at line %d column %d (byte offset %d): %s", what,
                         je.line, je.column, je.position, je.text);
    ellm_status st = ELLM_OK;
    ellm_tokenizer *t = NULL;
    hf_pre pre;
    memset(&pre, 0, sizeof pre);
    const json_t *model = json_object_get(root, "model");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    const json_t *added = json_object_get(root, "added_tokens");
    const char *mtype = jstr(model, "type");
    if (!json_is_object(model) || !json_is_object(vocab)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: no model.vocab object (not a tokenizer.json?)", what);
        goto done;
    }
    if ((mtype && strcmp(mtype, "BPE")) || !json_is_array(merges)) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tokenizer model '%s' is not supported (only BPE with merges)",
                       what, mtype ? mtype : "?");
        goto done;
    }
    if ((st = hf_pretokenizer(what, json_object_get(root, "pre_tokenizer"), &pre, err))) goto done;
    const json_t *dec = json_object_get(root, "decoder");
    const char *dtype = jstr(dec, "type");
    int byte_level = pre.byte_level || (dtype && !strcmp(dtype, "ByteLevel"));
    /* vocabulary size: the largest id + 1 */
    int64_t max_id = -1;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: vocab entry '%s' has no valid id", what, key);
            goto done;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    size_t i;
    const json_t *a;
    json_array_foreach(added, i, a) {
        const json_t *idv = json_object_get(a, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 || json_integer_value(idv) >= (1 << 24) ||
            !jstr(a, "content")) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: added_tokens[%zu] needs an id and a content", what, i);
            goto done;
        }
        if (json_integer_value(idv) > max_id) max_id = json_integer_value(idv);
    }
    t = tok_alloc(byte_level ? ELLM_TOK_BPE : ELLM_TOK_SPM, (int32_t)(max_id + 1), what, err);
    if (!t) {
        st = err ? err->code : ELLM_E_NOMEM;
        goto done;
    }
    if (jstr(model, "continuing_subword_prefix") || jstr(model, "end_of_word_suffix")) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported",
                       what);
        goto done;
    }
    t->use_pair_ranks = 1;
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    const char *unk = jstr(model, "unk_token");
    json_object_foreach((json_t *)vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        ellm_tok_type type = ELLM_TOKT_NORMAL;
        size_t l = strlen(key);
        if (!byte_level && t->byte_fallback && tok_parse_byte_piece(key, l) >= 0) type = ELLM_TOKT_BYTE;
        if (unk && !strcmp(key, unk)) type = ELLM_TOKT_UNKNOWN;
        if ((st = tok_set_piece(t, id, key, l, 0.0f, type, err))) goto done;
    }
    json_array_foreach(added, i, a) {
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        const char *c = jstr(a, "content");
        ellm_tok_type type = jbool(a, "special", 0) ? ELLM_TOKT_CONTROL : ELLM_TOKT_USER_DEFINED;
        if (unk && !strcmp(c, unk)) type = ELLM_TOKT_UNKNOWN;
        if ((st = tok_set_piece(t, id, c, strlen(c), 0.0f, type, err))) goto done;
        t->attrs[id] = (uint8_t)((jbool(a, "lstrip", 0) ? TOK_ATTR_LSTRIP : 0) |
                                 (jbool(a, "rstrip", 0) ? TOK_ATTR_RSTRIP : 0));
    }
    if (unk) t->unk = hf_vocab_id(vocab, unk);
    if ((st = hf_merges(t, vocab, merges, err))) goto done;
    if (byte_level) {
        int prepend = 0;
        if ((st = hf_normalizer(t, json_object_get(root, "normalizer"), &prepend, err))) goto done;
        t->add_dummy_prefix = 0;
        t->prefix_mode = TOK_PREFIX_NEVER;
        t->bpe_add_prefix_space = pre.bytelevel_prefix;
        if ((st = tok_set_regexes(t, pre.patterns, pre.n, err))) goto done;
    } else {
        int prepend = 0;
        if ((st = hf_normalizer(t, json_object_get(root, "normalizer"), &prepend, err))) goto done;
        if (pre.n > 0) {
            st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: regex pre-tokenizers on a SentencePiece-style BPE", what);
            goto done;
        }
        t->prefix_mode = TOK_PREFIX_EACH;
        t->add_dummy_prefix = prepend;
        if (pre.metaspace) {
            t->metaspace_split = pre.metaspace_split;
            if (!strcmp(pre.prepend_scheme, "first")) t->prefix_mode = TOK_PREFIX_FIRST;
            t->add_dummy_prefix = strcmp(pre.prepend_scheme, "never") != 0;
        }
    }
    /* BOS from the post-processor template ("<s> $A"), alone or in a Sequence */
    const json_t *pp = json_object_get(root, "post_processor");
    const char *pptype = jstr(pp, "type");
    if (pptype && !strcmp(pptype, "Sequence")) {
        const json_t *x, *tp = NULL;
        json_array_foreach(json_object_get(pp, "processors"), i, x) {
            const char *ty = jstr(x, "type");
            if (ty && !strcmp(ty, "TemplateProcessing")) tp = x;
        }
        pp = tp;
    }
    const json_t *single = json_object_get(pp, "single");
    if (json_is_array(single) && json_array_size(single) > 0) {
        const json_t *first = json_object_get(json_array_get(single, 0), "SpecialToken");
        const char *bos = jstr(first, "id");
        if (bos) {
            int32_t id = -1;
            json_array_foreach(added, i, a) if (!strcmp(jstr(a, "content"), bos)) id =
                (int32_t)json_integer_value(json_object_get(a, "id"));
            if (id < 0) id = hf_vocab_id(vocab, bos);
            if (id >= 0) {
                t->bos = id;
                t->add_bos = 1;
            }
        }
    }
done:
    for (int k = 0; k < TOK_MAX_REGEX; k++) free(pre.owned[k]);
    json_decref(root);
    if (st) {
        ellm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ELLM_OK;
}

/* ---- config files ------------------------------------------------------- */

/* A token given as "text" or {"content": "text"} -> its id. */
static int32_t token_ref(const ellm_tokenizer *t, const json_t *v) {
    const char *s = json_is_string(v) ? json_string_value(v) : jstr(v, "content");
    return s ? tok_find_cstr(t, s) : -1;
}

static json_t *load_json_blob(const ellm_blob_ref *b, const char *what, ellm_error *err) {
    json_error_t je;
    json_t *j = json_loadb((const char *)b->data, b->size, 0, &je);
    if (!j)
        ellm_fail(err, ELLM_E_FORMAT, "%s: %s: invalid JSON at line %d column %d: %s", what, b->name, je.line,
                  je.column, je.text);
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        ellm_fail(err, ELLM_E_FORMAT, "%s: %s: not a JSON object", what, b->name);
    }
    return j;
}

static ellm_status set_template(ellm_tokenizer *t, const char *s, ellm_error *err) {
    free(t->chat_template);
    t->chat_template = ellm_strdup(s);
    if (!t->chat_template) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    return ELLM_OK;
}

static ellm_status apply_tokenizer_config(ellm_tokenizer *t, const ellm_blob_ref *b, const char *what,
                                          ellm_error *err) {
    json_t *j = load_json_blob(b, what, err);
    if (!j) return err ? err->code : ELLM_E_FORMAT;
    ellm_status st = ELLM_OK;
    int32_t id;
    /* added tokens a slow tokenizer (tokenizer.model alone) does not have, e.g.
     * Phi-3's chat markers 32000..32010; and lstrip/rstrip for all of them */
    const char *key;
    const json_t *val;
    const json_t *atd = json_object_get(j, "added_tokens_decoder");
    int added = 0;
    json_object_foreach((json_t *)atd, key, val) {
        char *end;
        long tid = strtol(key, &end, 10);
        const char *content = jstr(val, "content");
        if (*end || tid < 0 || tid >= (1 << 24) || !content) continue;
        if (tid >= t->n_vocab && (st = tok_extend(t, (int32_t)tid + 1, err))) break;
        if (t->raw_len[tid] == 0) {
            ellm_tok_type type = jbool(val, "special", 0) ? ELLM_TOKT_CONTROL : ELLM_TOKT_USER_DEFINED;
            if ((st = tok_set_piece(t, (int32_t)tid, content, strlen(content), 0.0f, type, err))) break;
            added = 1;
        }
        t->attrs[tid] |= (uint8_t)((jbool(val, "lstrip", 0) ? TOK_ATTR_LSTRIP : 0) |
                                   (jbool(val, "rstrip", 0) ? TOK_ATTR_RSTRIP : 0));
    }
    if (!st && added) { /* new pieces: the piece map is rebuilt */
        free(t->vocab.slots);
        t->vocab.slots = NULL;
        st = tok_build_map(t, err);
    }
    if (st) {
        json_decref(j);
        return st;
    }
    if ((id = token_ref(t, json_object_get(j, "bos_token"))) >= 0) t->bos = id;
    if ((id = token_ref(t, json_object_get(j, "eos_token"))) >= 0) t->eos = id;
    /* unk_token here is the Python wrapper's; the model's own unk (tokenizer.json
     * model.unk_token) is what encoding falls back to, as in HF */
    if ((id = token_ref(t, json_object_get(j, "pad_token"))) >= 0) t->pad = id;
    const json_t *ab = json_object_get(j, "add_bos_token");
    if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
    const json_t *ae = json_object_get(j, "add_eos_token");
    if (json_is_boolean(ae)) t->add_eos = json_is_true(ae);
    const json_t *ct = json_object_get(j, "chat_template");
    if (json_is_string(ct)) {
        st = set_template(t, json_string_value(ct), err);
    } else if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
        size_t i;
        const json_t *x;
        const char *chosen = NULL;
        json_array_foreach(ct, i, x) {
            const char *name = jstr(x, "name"), *tmpl = jstr(x, "template");
            if (tmpl && (!chosen || (name && !strcmp(name, "default")))) chosen = tmpl;
        }
        if (chosen) st = set_template(t, chosen, err);
    }
    json_decref(j);
    return st;
}

static ellm_status apply_special_tokens_map(ellm_tokenizer *t, const ellm_blob_ref *b, const char *what,
                                            int have_config, ellm_error *err) {
    json_t *j = load_json_blob(b, what, err);
    if (!j) return err ? err->code : ELLM_E_FORMAT;
    int32_t id;
    if (!have_config) { /* tokenizer_config.json, when present, has the last word */
        if ((id = token_ref(t, json_object_get(j, "bos_token"))) >= 0) t->bos = id;
        if ((id = token_ref(t, json_object_get(j, "eos_token"))) >= 0) t->eos = id;
    }
    json_decref(j);
    return ELLM_OK;
}

static ellm_status apply_generation_config(ellm_tokenizer *t, const ellm_blob_ref *b, const char *what,
                                           ellm_error *err) {
    json_t *j = load_json_blob(b, what, err);
    if (!j) return err ? err->code : ELLM_E_FORMAT;
    ellm_status st = ELLM_OK;
    const json_t *e = json_object_get(j, "eos_token_id");
    if (json_is_integer(e)) {
        st = tok_add_stop_id(t, (int32_t)json_integer_value(e), err);
    } else if (json_is_array(e)) {
        size_t i;
        const json_t *x;
        json_array_foreach(e, i, x) if (!st && json_is_integer(x)) st =
            tok_add_stop_id(t, (int32_t)json_integer_value(x), err);
    }
    json_decref(j);
    return st;
}

/* ---- public entry points ------------------------------------------------ */

typedef ellm_status (*build_fn)(const uint8_t *, size_t, const char *, ellm_tokenizer **, ellm_error *);

static ellm_status build_and_finish(build_fn fn, const uint8_t *data, size_t size, const char *what,
                                    ellm_tokenizer **out, ellm_error *err) {
    ellm_tokenizer *t;
    ellm_status st = fn(data, size, what, &t, err);
    if (st) return st;
    if ((st = tok_finish(t, err))) {
        ellm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ELLM_OK;
}

ellm_status ellm_tokenizer_from_llama2c(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                        ellm_error *err) {
    return build_and_finish(build_llama2c, data, size, what, out, err);
}

ellm_status ellm_tokenizer_from_spm_model(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                          ellm_error *err) {
    return build_and_finish(build_spm_model, data, size, what, out, err);
}

ellm_status ellm_tokenizer_from_hf_json(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                                        ellm_error *err) {
    return build_and_finish(build_hf_json, data, size, what, out, err);
}

/* tok_gguf.c */
ellm_status tok_build_gguf(const uint8_t *data, size_t size, const char *what, ellm_tokenizer **out,
                           ellm_error *err);

static const ellm_blob_ref *find_blob(const ellm_blob_ref *blobs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (blobs[i].name && !strcmp(blobs[i].name, name)) return &blobs[i];
    return NULL;
}

ellm_status ellm_tokenizer_from_blobs(const ellm_blob_ref *blobs, size_t n, const char *what,
                                      ellm_tokenizer **out, ellm_error *err) {
    *out = NULL;
    static const struct {
        const char *name;
        build_fn fn;
    } sources[] = {{"tokenizer.json", build_hf_json},
                   {"tokenizer.model", build_spm_model},
                   {"tokenizer.gguf", tok_build_gguf},
                   {"tokenizer.bin", build_llama2c}};
    ellm_tokenizer *t = NULL;
    ellm_status st = ELLM_OK;
    char name[1024];
    for (size_t i = 0; i < ELLM_ARRAY_LEN(sources) && !t; i++) {
        const ellm_blob_ref *b = find_blob(blobs, n, sources[i].name);
        if (!b) continue;
        snprintf(name, sizeof name, "%s: %s", what, b->name);
        if ((st = sources[i].fn(b->data, b->size, name, &t, err))) return st;
    }
    if (!t)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: no tokenizer (none of tokenizer.json, tokenizer.model, tokenizer.gguf, tokenizer.bin)",
                         what);
    st = tok_build_map(t, err);
    const ellm_blob_ref *cfg = find_blob(blobs, n, "tokenizer_config.json");
    const ellm_blob_ref *stm = find_blob(blobs, n, "special_tokens_map.json");
    const ellm_blob_ref *gen = find_blob(blobs, n, "generation_config.json");
    const ellm_blob_ref *jinja = find_blob(blobs, n, "chat_template.jinja");
    if (!st && cfg) st = apply_tokenizer_config(t, cfg, what, err);
    if (!st && stm) st = apply_special_tokens_map(t, stm, what, cfg != NULL, err);
    if (!st && gen) st = apply_generation_config(t, gen, what, err);
    if (!st && jinja) {
        char *s = malloc(jinja->size + 1);
        if (!s) st = ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
        else {
            memcpy(s, jinja->data, jinja->size);
            s[jinja->size] = 0;
            st = set_template(t, s, err);
            free(s);
        }
    }
    if (!st) st = tok_finish(t, err);
    if (st) {
        ellm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ELLM_OK;
}
