/*
 * gguf.c - GGUF v2/v3 parser (on a memory buffer, every length checked) and
 * writer (metadata + tensors, written atomically).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 * n_kv x {string key, u32 type, value}, n_tensors x {string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml_type, u64 offset}, padding to general.alignment
 * (default 32), tensor data. A string is u64 length + bytes (no NUL); an array
 * is u32 element type + u64 count + elements.
 */
#include "formats/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* ---- ggml types ---------------------------------------------------------- */

typedef struct ggml_type_desc {
    const char *name;
    uint32_t block;      /* elements per block */
    uint32_t block_size; /* bytes per block */
} ggml_type_desc;

/* Indexed by ggml_type; removed/unused ids have a NULL name. */
static const ggml_type_desc GGML_TYPES[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};

static const ggml_type_desc *type_desc(uint32_t t) {
    if (t >= ELLM_ARRAY_LEN(GGML_TYPES) || !GGML_TYPES[t].name) return NULL;
    return &GGML_TYPES[t];
}

const char *ggml_type_name(uint32_t type) {
    const ggml_type_desc *d = type_desc(type);
    return d ? d->name : "unknown";
}

/* Bytes of a tensor of n elements of type t; false if unknown type, a
 * partial block, or overflow. */
bool gguf_tensor_bytes(uint32_t type, uint64_t n, uint64_t *bytes) {
    const ggml_type_desc *d = type_desc(type);
    if (!d || n % d->block) return false;
    return ellm_mul_u64(n / d->block, d->block_size, bytes);
}

static size_t scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *gguf_type_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return t < ELLM_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *buf;
    size_t size; /* bytes available */
    size_t pos;
    const char *name;
    ellm_error *err;
    bool truncated; /* failed only because the buffer ended */
} reader;

static ellm_status r_trunc(reader *r, size_t need, const char *what) {
    r->truncated = true;
    return ellm_fail(r->err, ELLM_E_FORMAT,
                     "%s: GGUF file is truncated: %s needs %zu bytes at byte offset %zu, only %zu left",
                     r->name, what, need, r->pos, r->size - r->pos);
}

static ellm_status r_bytes(reader *r, size_t n, const uint8_t **p, const char *what) {
    if (r->size - r->pos < n) return r_trunc(r, n, what);
    *p = r->buf + r->pos;
    r->pos += n;
    return ELLM_OK;
}

static ellm_status r_u32(reader *r, uint32_t *v, const char *what) {
    const uint8_t *p = NULL;
    ellm_status s = r_bytes(r, 4, &p, what);
    if (!s) *v = ellm_le32(p);
    return s;
}

static ellm_status r_u64(reader *r, uint64_t *v, const char *what) {
    const uint8_t *p = NULL;
    ellm_status s = r_bytes(r, 8, &p, what);
    if (!s) *v = ellm_le64(p);
    return s;
}

static ellm_status r_str(reader *r, gguf_str *out, const char *what) {
    uint64_t len;
    size_t at = r->pos;
    ellm_status s = r_u64(r, &len, what);
    if (s) return s;
    if (len > r->size - r->pos) {
        /* A length beyond any sane file is corruption, not truncation. */
        if (len > ((uint64_t)1 << 40)) {
            return ellm_fail(r->err, ELLM_E_FORMAT, "%s: %s at byte offset %zu has absurd length %llu",
                             r->name, what, at, (unsigned long long)len);
        }
        return r_trunc(r, (size_t)len, what);
    }
    out->ptr = (const char *)r->buf + r->pos;
    out->len = len;
    r->pos += (size_t)len;
    return ELLM_OK;
}

static void decode_scalar(gguf_kv *kv, const uint8_t *p) {
    switch (kv->type) {
    case GGUF_TYPE_UINT8: kv->v.u64 = p[0]; break;
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_TYPE_BOOL: kv->v.u64 = p[0] != 0; break;
    case GGUF_TYPE_UINT16: kv->v.u64 = ellm_le16(p); break;
    case GGUF_TYPE_INT16: kv->v.i64 = (int16_t)ellm_le16(p); break;
    case GGUF_TYPE_UINT32: kv->v.u64 = ellm_le32(p); break;
    case GGUF_TYPE_INT32: kv->v.i64 = (int32_t)ellm_le32(p); break;
    case GGUF_TYPE_UINT64: kv->v.u64 = ellm_le64(p); break;
    case GGUF_TYPE_INT64: kv->v.i64 = (int64_t)ellm_le64(p); break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t b = ellm_le32(p);
        float f;
        memcpy(&f, &b, 4);
        kv->v.f64 = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t b = ellm_le64(p);
        memcpy(&kv->v.f64, &b, 8);
        break;
    }
    default: break;
    }
}

static ellm_status read_kv(reader *r, uint64_t index, gguf_kv *kv) {
    char what[64];
    snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)index);
    ellm_status s = r_str(r, &kv->key, what);
    uint32_t type;
    if (!s) s = r_u32(r, &type, what);
    if (s) return s;
    kv->type = (gguf_type)type;
    size_t at = r->pos;
    if (type == GGUF_TYPE_STRING) return r_str(r, &kv->str, what);
    if (type == GGUF_TYPE_ARRAY) {
        uint32_t at_type;
        uint64_t count;
        s = r_u32(r, &at_type, what);
        if (!s) s = r_u64(r, &count, what);
        if (s) return s;
        kv->arr_type = (gguf_type)at_type;
        kv->arr_len = count;
        kv->arr_data = r->buf + r->pos;
        if (at_type == GGUF_TYPE_STRING) {
            /* each string needs at least its 8-byte length */
            if (count > (r->size - r->pos) / 8 && count > ((uint64_t)1 << 40))
                return ellm_fail(r->err, ELLM_E_FORMAT,
                                 "%s: key %.*s: string array of absurd length %llu", r->name,
                                 (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr, (unsigned long long)count);
            for (uint64_t i = 0; i < count; i++) {
                gguf_str tmp;
                s = r_str(r, &tmp, what);
                if (s) return s;
            }
            return ELLM_OK;
        }
        size_t es = scalar_size((gguf_type)at_type);
        if (!es)
            return ellm_fail(r->err, ELLM_E_FORMAT,
                             "%s: key %.*s at byte offset %zu: array of unsupported element type %u (%s)",
                             r->name, (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr, at, at_type,
                             gguf_type_name(at_type));
        uint64_t bytes;
        if (!ellm_mul_u64(count, es, &bytes) || bytes > ((uint64_t)1 << 40))
            return ellm_fail(r->err, ELLM_E_FORMAT, "%s: key %.*s: array of absurd length %llu",
                             r->name, (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr,
                             (unsigned long long)count);
        const uint8_t *p = NULL;
        return r_bytes(r, (size_t)bytes, &p, what);
    }
    size_t es = scalar_size(kv->type);
    if (!es)
        return ellm_fail(r->err, ELLM_E_FORMAT, "%s: key %.*s at byte offset %zu: unknown value type %u",
                         r->name, (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr, at, type);
    const uint8_t *p = NULL;
    s = r_bytes(r, es, &p, what);
    if (!s) decode_scalar(kv, p);
    return s;
}

static ellm_status read_tensor_info(reader *r, uint64_t index, gguf_tensor_info *t) {
    char what[64];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    ellm_status s = r_str(r, &t->name, what);
    if (!s) s = r_u32(r, &t->n_dims, what);
    if (s) return s;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return ellm_fail(r->err, ELLM_E_FORMAT, "%s: tensor %.*s: %u dimensions (1..4 allowed)", r->name,
                         (int)ELLM_MIN(t->name.len, 200), t->name.ptr, t->n_dims);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims && !s; d++) s = r_u64(r, &t->ne[d], what);
    if (!s) s = r_u32(r, &t->ggml_type, what);
    if (!s) s = r_u64(r, &t->offset, what);
    return s;
}

/* Parses a GGUF file of total_size bytes whose first `avail` bytes are in
 * buf. *need_more is set when parsing failed only because buf ended before
 * the metadata did (the caller may retry with more of the file). */
ellm_status gguf_parse_prefix(const uint8_t *buf, size_t avail, uint64_t total_size, const char *name,
                              gguf_ctx *ctx, bool *need_more, ellm_error *err) {
    memset(ctx, 0, sizeof *ctx);
    if (need_more) *need_more = false;
    reader r = {.buf = buf, .size = avail, .name = name, .err = err};
    const uint8_t *magic = NULL;
    ellm_status s = r_bytes(&r, 4, &magic, "the magic");
    if (s) return s;
    if (memcmp(magic, "GGUF", 4) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not a GGUF file (magic is not \"GGUF\")", name);
    s = r_u32(&r, &ctx->version, "the version");
    if (!s && (ctx->version == 0x02000000u || ctx->version == 0x03000000u))
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: big-endian GGUF files are not supported", name);
    if (!s && (ctx->version < 2 || ctx->version > 3))
        return ellm_fail(err, ctx->version == 1 ? ELLM_E_UNSUPPORTED : ELLM_E_FORMAT,
                         "%s: GGUF version %u is not supported (2 and 3 are)", name, ctx->version);
    if (!s) s = r_u64(&r, &ctx->n_tensors, "the tensor count");
    if (!s) s = r_u64(&r, &ctx->n_kv, "the metadata count");
    if (s) goto fail;
    /* Each key-value takes >= 12 bytes and each tensor info >= 28: counts
     * beyond what the file could hold are corruption. */
    if (ctx->n_kv > total_size / 12 || ctx->n_tensors > total_size / 28) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: GGUF header claims %llu keys and %llu tensors, more than "
                      "a %llu-byte file can hold", name, (unsigned long long)ctx->n_kv,
                      (unsigned long long)ctx->n_tensors, (unsigned long long)total_size);
        goto fail;
    }
    ctx->kv = calloc(ctx->n_kv ? ctx->n_kv : 1, sizeof *ctx->kv);
    ctx->tensors = calloc(ctx->n_tensors ? ctx->n_tensors : 1, sizeof *ctx->tensors);
    if (!ctx->kv || !ctx->tensors) {
        s = ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory for GGUF metadata", name);
        goto fail;
    }
    for (uint64_t i = 0; i < ctx->n_kv && !s; i++) s = read_kv(&r, i, &ctx->kv[i]);
    for (uint64_t i = 0; i < ctx->n_tensors && !s; i++) s = read_tensor_info(&r, i, &ctx->tensors[i]);
    if (s) goto fail;

    ctx->buf = buf;
    ctx->size = avail;
    ctx->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find(ctx, "general.alignment");
    if (al) {
        uint64_t a;
        if (gguf_get_u64(ctx, "general.alignment", &a) != 0 || a == 0 || (a & (a - 1)) || a > (1u << 20)) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: general.alignment is not a power of two up to 1 MiB",
                          name);
            goto fail;
        }
        ctx->alignment = a;
    }
    uint64_t data = ((uint64_t)r.pos + ctx->alignment - 1) / ctx->alignment * ctx->alignment;
    if (ctx->n_tensors > 0 && data > total_size) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: GGUF file is truncated: tensor data would start at byte "
                      "offset %llu, past the end (%llu bytes)", name, (unsigned long long)data,
                      (unsigned long long)total_size);
        goto fail;
    }
    ctx->data_offset = data;
    for (uint64_t i = 0; i < ctx->n_tensors; i++) {
        const gguf_tensor_info *t = &ctx->tensors[i];
        int nl = (int)ELLM_MIN(t->name.len, 200);
        uint64_t n = 1, bytes, begin, end;
        bool ok = true;
        for (uint32_t d = 0; d < t->n_dims; d++) ok = ok && t->ne[d] > 0 && ellm_mul_u64(n, t->ne[d], &n);
        if (!ok || n > ((uint64_t)1 << 53)) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %.*s has a bad shape", name, nl, t->name.ptr);
            goto fail;
        }
        if (!type_desc(t->ggml_type)) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %.*s has unknown ggml type %u", name, nl,
                          t->name.ptr, t->ggml_type);
            goto fail;
        }
        if (!gguf_tensor_bytes(t->ggml_type, n, &bytes)) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %.*s: %llu elements are not whole %s blocks",
                          name, nl, t->name.ptr, (unsigned long long)n, ggml_type_name(t->ggml_type));
            goto fail;
        }
        if (t->offset % ctx->alignment) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %.*s: data offset %llu is not aligned to %llu",
                          name, nl, t->name.ptr, (unsigned long long)t->offset,
                          (unsigned long long)ctx->alignment);
            goto fail;
        }
        if (!ellm_add_u64(data, t->offset, &begin) || !ellm_add_u64(begin, bytes, &end) ||
            end > total_size) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %.*s: data at byte offset %llu + %llu bytes lies "
                          "beyond the end of the file (%llu bytes): the file is truncated", name, nl,
                          t->name.ptr, (unsigned long long)data + t->offset, (unsigned long long)bytes,
                          (unsigned long long)total_size);
            goto fail;
        }
    }
    return ELLM_OK;
fail:
    if (need_more) *need_more = r.truncated && avail < total_size;
    gguf_free(ctx);
    return s;
}

ellm_status gguf_parse(const uint8_t *buf, size_t size, const char *name, gguf_ctx *ctx, ellm_error *err) {
    return gguf_parse_prefix(buf, size, size, name, ctx, NULL, err);
}

void gguf_free(gguf_ctx *ctx) {
    free(ctx->kv);
    free(ctx->tensors);
    memset(ctx, 0, sizeof *ctx);
}

const gguf_kv *gguf_find(const gguf_ctx *ctx, const char *key) {
    size_t n = strlen(key);
    for (uint64_t i = 0; i < ctx->n_kv; i++)
        if (ctx->kv[i].key.len == n && memcmp(ctx->kv[i].key.ptr, key, n) == 0) return &ctx->kv[i];
    return NULL;
}

static bool is_unsigned(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64 ||
           t == GGUF_TYPE_BOOL;
}
static bool is_signed(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out) {
    const gguf_kv *kv = gguf_find(ctx, key);
    if (!kv) return -1;
    if (is_unsigned(kv->type)) {
        *out = kv->v.u64;
        return 0;
    }
    if (is_signed(kv->type) && kv->v.i64 >= 0) {
        *out = (uint64_t)kv->v.i64;
        return 0;
    }
    return -1;
}

int gguf_get_f64(const gguf_ctx *ctx, const char *key, double *out) {
    const gguf_kv *kv = gguf_find(ctx, key);
    if (!kv) return -1;
    if (kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64) *out = kv->v.f64;
    else if (is_unsigned(kv->type)) *out = (double)kv->v.u64;
    else if (is_signed(kv->type)) *out = (double)kv->v.i64;
    else return -1;
    return 0;
}

int gguf_get_str(const gguf_ctx *ctx, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(ctx, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return -1;
    *out = kv->str;
    return 0;
}

ellm_status gguf_str_array(const gguf_ctx *ctx, const gguf_kv *kv, gguf_str **items, ellm_error *err) {
    *items = NULL;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return ellm_fail(err, ELLM_E_FORMAT, "GGUF key %.*s is not an array of strings",
                         (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr);
    gguf_str *out = ellm_calloc((size_t)(kv->arr_len ? kv->arr_len : 1), sizeof *out, err);
    if (!out) return ELLM_E_NOMEM;
    /* The parser checked every length; re-walk them (bounds kept anyway). */
    const uint8_t *p = kv->arr_data, *end = ctx->buf + ctx->size;
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        if (end - p < 8) goto corrupt;
        uint64_t len = ellm_le64(p);
        p += 8;
        if (len > (uint64_t)(end - p)) goto corrupt;
        out[i].ptr = (const char *)p;
        out[i].len = len;
        p += len;
    }
    *items = out;
    return ELLM_OK;
corrupt:
    free(out);
    return ellm_fail(err, ELLM_E_FORMAT, "GGUF key %.*s: string array runs past the buffer",
                     (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr);
}

/* ---- writing ------------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wb_put(wbuf *b, const void *data, size_t n) {
    if (b->oom || n == 0) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void wb_u32(wbuf *b, uint32_t v) {
    uint8_t t[4];
    ellm_put_le32(t, v);
    wb_put(b, t, 4);
}
static void wb_u64(wbuf *b, uint64_t v) {
    uint8_t t[8];
    ellm_put_le64(t, v);
    wb_put(b, t, 8);
}
static void wb_str(wbuf *b, const char *s, size_t n) {
    wb_u64(b, n);
    wb_put(b, s, n);
}

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t bytes, offset;
} wtensor;

struct gguf_writer {
    wbuf kv;        /* serialised key-values, in order */
    uint64_t n_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    bool bad;       /* allocation failure or invalid tensor: reported at write */
    char bad_msg[256];
};

ellm_status gguf_writer_new(gguf_writer **out, ellm_error *err) {
    *out = ellm_calloc(1, sizeof **out, err);
    return *out ? ELLM_OK : ELLM_E_NOMEM;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

static void kv_head(gguf_writer *w, const char *key, size_t key_len, gguf_type type) {
    wb_str(&w->kv, key, key_len);
    wb_u32(&w->kv, type);
    w->n_kv++;
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    kv_head(w, key, strlen(key), GGUF_TYPE_UINT32);
    wb_u32(&w->kv, v);
}

void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t b;
    memcpy(&b, &v, 4);
    kv_head(w, key, strlen(key), GGUF_TYPE_FLOAT32);
    wb_u32(&w->kv, b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    kv_head(w, key, strlen(key), GGUF_TYPE_STRING);
    wb_str(&w->kv, v, strlen(v));
}

void gguf_writer_set_bool(gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    kv_head(w, key, strlen(key), GGUF_TYPE_BOOL);
    wb_put(&w->kv, &b, 1);
}

void gguf_writer_set_array(gguf_writer *w, const char *key, gguf_type elem_type, const void *data,
                           uint64_t n) {
    size_t es = scalar_size(elem_type);
    if (!es) {
        w->bad = true;
        snprintf(w->bad_msg, sizeof w->bad_msg, "key %s: arrays of type %u are not supported", key, elem_type);
        return;
    }
    kv_head(w, key, strlen(key), GGUF_TYPE_ARRAY);
    wb_u32(&w->kv, elem_type);
    wb_u64(&w->kv, n);
    wb_put(&w->kv, data, (size_t)(n * es));
}

void gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *items,
                               const size_t *lens, uint64_t n) {
    kv_head(w, key, strlen(key), GGUF_TYPE_ARRAY);
    wb_u32(&w->kv, GGUF_TYPE_STRING);
    wb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) wb_str(&w->kv, items[i], lens ? lens[i] : strlen(items[i]));
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_ctx *src, const gguf_kv *kv) {
    kv_head(w, kv->key.ptr, (size_t)kv->key.len, kv->type);
    if (kv->type == GGUF_TYPE_STRING) {
        wb_str(&w->kv, kv->str.ptr, (size_t)kv->str.len);
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        wb_u32(&w->kv, kv->arr_type);
        wb_u64(&w->kv, kv->arr_len);
        /* The elements are copied raw: find where they end. */
        const uint8_t *p = kv->arr_data, *end = src->buf + src->size;
        if (kv->arr_type == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < kv->arr_len; i++) {
                if (end - p < 8 || ellm_le64(p) > (uint64_t)(end - p - 8)) {
                    w->bad = true;
                    snprintf(w->bad_msg, sizeof w->bad_msg, "copied key %.*s runs past its buffer",
                             (int)ELLM_MIN(kv->key.len, 200), kv->key.ptr);
                    return;
                }
                p += 8 + ellm_le64(p);
            }
        } else {
            p += kv->arr_len * scalar_size(kv->arr_type);
        }
        wb_put(&w->kv, kv->arr_data, (size_t)(p - kv->arr_data));
    } else {
        uint8_t t[8];
        size_t n = scalar_size(kv->type);
        switch (kv->type) {
        case GGUF_TYPE_FLOAT32: {
            float f = (float)kv->v.f64;
            uint32_t b;
            memcpy(&b, &f, 4);
            ellm_put_le32(t, b);
            break;
        }
        case GGUF_TYPE_FLOAT64: {
            uint64_t b;
            memcpy(&b, &kv->v.f64, 8);
            ellm_put_le64(t, b);
            break;
        }
        default: ellm_put_le64(t, kv->v.u64); break; /* i64 shares the bits */
        }
        wb_put(&w->kv, t, n);
    }
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *shape,
                            uint32_t ggml_type) {
    if (w->bad) return;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        w->bad = true;
        snprintf(w->bad_msg, sizeof w->bad_msg, "tensor %s: %d dimensions (1..4 allowed)", name, n_dims);
        return;
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) {
            w->bad = true;
            snprintf(w->bad_msg, sizeof w->bad_msg, "out of memory");
            return;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = ellm_strdup(name);
    t->n_dims = (uint32_t)n_dims;
    t->type = ggml_type;
    uint64_t n = 1;
    bool ok = t->name != NULL;
    for (int d = 0; d < n_dims; d++) {
        t->ne[d] = (uint64_t)shape[n_dims - 1 - d]; /* GGUF: innermost first */
        ok = ok && shape[n_dims - 1 - d] > 0 && ellm_mul_u64(n, t->ne[d], &n);
    }
    if (!ok || !gguf_tensor_bytes(ggml_type, n, &t->bytes)) {
        free(t->name);
        w->bad = true;
        snprintf(w->bad_msg, sizeof w->bad_msg, "tensor %s: bad shape or type %u", name, ggml_type);
        return;
    }
    w->n_tensors++;
}

/* Header + key-values + tensor infos (offsets assigned), unpadded. */
static ellm_status serialise_meta(gguf_writer *w, wbuf *out, ellm_error *err) {
    if (w->bad) return ellm_fail(err, ELLM_E_ARG, "GGUF writer: %s", w->bad_msg);
    wb_put(out, "GGUF", 4);
    wb_u32(out, 3);
    wb_u64(out, w->n_tensors);
    wb_u64(out, w->n_kv);
    wb_put(out, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        t->offset = off;
        off = (off + t->bytes + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
        wb_str(out, t->name, strlen(t->name));
        wb_u32(out, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) wb_u64(out, t->ne[d]);
        wb_u32(out, t->type);
        wb_u64(out, t->offset);
    }
    if (w->kv.oom || out->oom) {
        free(out->p);
        out->p = NULL;
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory serialising GGUF metadata");
    }
    return ELLM_OK;
}

ellm_status gguf_writer_to_buffer(gguf_writer *w, uint8_t **buf, size_t *size, ellm_error *err) {
    *buf = NULL;
    *size = 0;
    wbuf out = {0};
    ellm_status s = serialise_meta(w, &out, err);
    if (s) return s;
    *buf = out.p ? out.p : malloc(1);
    *size = out.n;
    return ELLM_OK;
}

ellm_status gguf_writer_write(gguf_writer *w, const char *path, gguf_tensor_data_fn fn, void *user,
                              ellm_error *err) {
    wbuf meta = {0};
    ellm_status s = serialise_meta(w, &meta, err);
    if (s) return s;
    ellm_outfile o;
    s = ellm_outfile_open(&o, path, err);
    if (s) {
        free(meta.p);
        return s;
    }
    s = ellm_outfile_write(&o, meta.p, meta.n, err);
    free(meta.p);
    if (!s) s = ellm_outfile_pad(&o, GGUF_DEFAULT_ALIGNMENT, err);
    uint64_t data_start = o.offset;
    void *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < w->n_tensors && !s; i++) {
        const wtensor *t = &w->tensors[i];
        if (o.offset != data_start + t->offset) {
            s = ellm_fail(err, ELLM_E_INTERNAL, "%s: tensor %s: offset mismatch", path, t->name);
            break;
        }
        if (t->bytes > cap) { /* one buffer, grown to the largest tensor so far */
            free(buf);
            cap = (size_t)t->bytes;
            buf = ellm_malloc(cap, err);
            if (!buf) {
                s = ELLM_E_NOMEM;
                break;
            }
        }
        s = fn(user, i, buf, (size_t)t->bytes, err);
        if (!s) s = ellm_outfile_write(&o, buf, (size_t)t->bytes, err);
        if (!s) s = ellm_outfile_pad(&o, GGUF_DEFAULT_ALIGNMENT, err);
    }
    free(buf);
    if (!s) return ellm_outfile_commit(&o, err);
    ellm_outfile_abort(&o);
    return s;
}
