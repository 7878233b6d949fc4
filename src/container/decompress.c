/*
 * decompress.c - a .ellm file back out as safetensors: either the decoded
 * integers (uint4 unpacked to one per byte) with their scales and zero points
 * as separate tensors "<name>.scales" (F32) and "<name>.zeros" (U8), or the
 * dequantized weights w = s*(q - z) as F32/F16 under the original names,
 * which other tools load directly. Tensors are decoded one at a time.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "container/container.h"
#include "formats/safetensors.h"

typedef enum part { PART_DATA, PART_SCALES, PART_ZEROS } part;

typedef struct out_entry {
    size_t tensor;
    part what;
} out_entry;

typedef struct decompress_ctx {
    ellm_file *f;
    ellm_pool *pool;
    ellm_export_dtype dtype;
    out_entry *entries;
    long cached;          /* index of the tensor held in `q`, or -1 */
    ellm_qtensor q;
} decompress_ctx;

static ellm_status ensure_decoded(decompress_ctx *c, size_t t, ellm_error *err) {
    if (c->cached == (long)t) return ELLM_OK;
    if (c->cached >= 0) ellm_qtensor_free(&c->q);
    c->cached = -1;
    ellm_status s = ellm_file_load_tensors(c->f, &t, 1, c->pool, 0, &c->q, NULL, err);
    if (!s) c->cached = (long)t;
    return s;
}

static ellm_status fill_entry(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    decompress_ctx *c = user;
    const out_entry *e = &c->entries[index];
    ellm_status s = ensure_decoded(c, e->tensor, err);
    if (s) return s;
    const ellm_qtensor *q = &c->q;
    if (e->what == PART_SCALES) {
        memcpy(dst, q->qp.scales, n_bytes); /* little-endian host assumed by st_writer users */
        return ELLM_OK;
    }
    if (e->what == PART_ZEROS) {
        memcpy(dst, q->qp.zeros, n_bytes);
        return ELLM_OK;
    }
    if (q->bits == 32 && c->dtype != ELLM_EXPORT_F16) {
        memcpy(dst, q->data, n_bytes);
    } else if (c->dtype == ELLM_EXPORT_INTEGERS) {
        if (q->bits == 4) ellm_unpack_u4(q->data, q->n, dst);
        else memcpy(dst, q->data, n_bytes);
    } else if (c->dtype == ELLM_EXPORT_F32) {
        float *out = dst;
        for (uint64_t i = 0; i < q->n; i++) out[i] = ellm_qtensor_get(q, i);
    } else {
        uint16_t *out = dst;
        for (uint64_t i = 0; i < q->n; i++) out[i] = ellm_f32_to_f16(ellm_qtensor_get(q, i));
    }
    return ELLM_OK;
}

static char *tensor_meta_json(const ellm_ftensor *t) {
    json_t *o = json_pack("{s:s, s:i, s:I, s:s}", "scheme", ellm_scheme_name(t->scheme), "bits", t->bits,
                          "group_size", (json_int_t)t->group_size, "formula", "w = scales[i / group_size] * (q - zeros[i / group_size])");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Declares every output tensor; fills entries in declaration order. */
static ellm_status declare(st_writer *w, decompress_ctx *c, ellm_error *err) {
    size_t k = 0;
    ellm_status s = ELLM_OK;
    for (size_t i = 0; i < c->f->n_tensors && !s; i++) {
        const ellm_ftensor *t = &c->f->tensors[i];
        bool is_float = t->bits == 32;
        const char *dtype = c->dtype == ELLM_EXPORT_F16 ? "F16"
                            : (is_float || c->dtype == ELLM_EXPORT_F32) ? "F32" : "U8";
        uint64_t elem = strcmp(dtype, "F32") == 0 ? 4 : strcmp(dtype, "F16") == 0 ? 2 : 1;
        s = st_writer_add(w, t->name, dtype, t->n_dims, t->shape, t->n * elem, err);
        c->entries[k++] = (out_entry){i, PART_DATA};
        if (s || is_float || c->dtype != ELLM_EXPORT_INTEGERS) continue;
        size_t len = strlen(t->name) + 8;
        char *name = malloc(len);
        if (!name) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        int64_t groups = (int64_t)t->n_groups;
        snprintf(name, len, "%s.scales", t->name);
        s = st_writer_add(w, name, "F32", 1, &groups, t->n_groups * 4, err);
        c->entries[k++] = (out_entry){i, PART_SCALES};
        snprintf(name, len, "%s.zeros", t->name);
        if (!s) s = st_writer_add(w, name, "U8", 1, &groups, t->n_groups, err);
        c->entries[k++] = (out_entry){i, PART_ZEROS};
        free(name);
        char *meta = tensor_meta_json(t);
        if (meta) st_writer_set_metadata(w, t->name, meta);
        free(meta);
    }
    return s;
}

ellm_status ellm_file_decompress(ellm_file *f, const char *out_path, ellm_export_dtype dtype, int n_threads,
                                 ellm_error *err) {
    decompress_ctx c = {.f = f, .dtype = dtype, .cached = -1};
    st_writer *w = NULL;
    ellm_status s = ellm_pool_create(n_threads, &c.pool, err);
    if (!s) {
        c.entries = ellm_calloc(f->n_tensors * 3, sizeof *c.entries, err);
        if (!c.entries) s = ELLM_E_NOMEM;
    }
    if (!s) s = st_writer_new(&w, err);
    if (!s) s = declare(w, &c, err);
    if (!s) {
        st_writer_set_metadata(w, "entrollm_source", f->path);
        st_writer_set_metadata(w, "entrollm_metadata", f->metadata_json);
        st_writer_set_metadata(w, "entrollm_content", dtype == ELLM_EXPORT_INTEGERS
                                                          ? "quantized integers with scales and zero points"
                                                          : "dequantized weights");
        s = st_writer_write(w, out_path, fill_entry, &c, err);
    }
    if (c.cached >= 0) ellm_qtensor_free(&c.q);
    st_writer_free(w);
    free(c.entries);
    ellm_pool_destroy(c.pool);
    return s;
}
