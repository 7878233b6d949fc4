/*
 * safetensors.c - strict safetensors header parsing and streaming writing.
 *
 * Checks (as the reference Rust implementation does): the header length is
 * sane and inside the file; the header is one JSON object without duplicate
 * keys; every entry has a known dtype, a shape of non-negative integers, and
 * data_offsets [begin, end] with end - begin = elements x dtype size; sorted
 * by begin, the tensors tile the data section exactly (no gap, no overlap)
 * up to the end of the file.
 */
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */

static const struct {
    const char *name;
    unsigned size;
} ST_DTYPES[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},   {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

/* Byte size of one element of dtype, 0 if unknown. */
static unsigned dtype_size(const char *dtype) {
    for (size_t i = 0; i < ELLM_ARRAY_LEN(ST_DTYPES); i++)
        if (strcmp(ST_DTYPES[i].name, dtype) == 0) return ST_DTYPES[i].size;
    return 0;
}

void st_free(st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

static int by_begin(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static ellm_status parse_entry(const char *name, const char *key, json_t *v, uint64_t data_start,
                               st_tensor *t, ellm_error *err) {
    if (!json_is_object(v))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: safetensors entry %s is not an object", name, key);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: tensor %s: needs \"dtype\" (string), \"shape\" (array) and "
                         "\"data_offsets\" ([begin, end])",
                         name, key);
    const char *dtype = json_string_value(dt);
    unsigned es = dtype_size(dtype);
    if (!es || strlen(dtype) >= sizeof t->dtype)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: unknown dtype \"%.16s\"", name, key, dtype);
    size_t nd = json_array_size(shape);
    if (nd > 4)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tensor %s: %zu dimensions (at most 4 supported)",
                         name, key, nd);
    uint64_t n = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *x = json_array_get(shape, d);
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            !ellm_mul_u64(n, (uint64_t)json_integer_value(x), &n))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: shape[%zu] is not a non-negative integer",
                             name, key, d);
        t->shape[d] = json_integer_value(x);
    }
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: data_offsets are not 0 <= begin <= end", name,
                         key);
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e), bytes;
    if (!ellm_mul_u64(n, es, &bytes) || bytes != end - begin)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: tensor %s: data_offsets span %llu bytes but shape x %s needs %llu elements "
                         "x %u bytes",
                         name, key, (unsigned long long)(end - begin), dtype, (unsigned long long)n, es);
    t->name = ellm_strdup(key);
    if (!t->name) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->n_dims = (int)nd;
    if (!ellm_add_u64(begin, data_start, &t->begin) || !ellm_add_u64(end, data_start, &t->end))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: data_offsets overflow", name, key);
    return ELLM_OK;
}

/* Parses the JSON header (hdr, hlen bytes) of a file of file_size bytes. */
static ellm_status parse_header(const char *hdr, size_t hlen, uint64_t file_size, const char *name,
                                st_file *out, ellm_error *err) {
    json_error_t je;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: safetensors header is not valid JSON: %s (line %d, column %d)",
                         name, je.text, je.line, je.column);
    ellm_status s = ELLM_OK;
    if (!json_is_object(root)) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: safetensors header is not a JSON object", name);
        goto done;
    }
    out->data_start = 8 + hlen;
    out->file_size = file_size;
    size_t cap = json_object_size(root);
    out->tensors = ellm_calloc(cap ? cap : 1, sizeof *out->tensors, err);
    if (!out->tensors) {
        s = ELLM_E_NOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                s = ellm_fail(err, ELLM_E_FORMAT, "%s: __metadata__ is not an object", name);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    s = ellm_fail(err, ELLM_E_FORMAT, "%s: __metadata__ value of %s is not a string", name, mk);
                    goto done;
                }
            }
            out->metadata_json = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (!out->metadata_json) {
                s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
                goto done;
            }
            continue;
        }
        s = parse_entry(name, key, v, out->data_start, &out->tensors[out->n_tensors], err);
        if (s) goto done;
        out->n_tensors++;
    }
    /* Data order, then check the tensors tile the data section exactly. */
    qsort(out->tensors, out->n_tensors, sizeof *out->tensors, by_begin);
    uint64_t at = out->data_start;
    for (size_t i = 0; i < out->n_tensors; i++) {
        const st_tensor *t = &out->tensors[i];
        if (t->begin != at) {
            s = ellm_fail(err, ELLM_E_FORMAT,
                          "%s: tensor %s: data begins at byte offset %llu but the previous tensor ends at "
                          "%llu (%s)",
                          name, t->name, (unsigned long long)t->begin, (unsigned long long)at,
                          t->begin < at ? "overlap" : "gap");
            goto done;
        }
        if (t->end > file_size) {
            s = ellm_fail(err, ELLM_E_FORMAT,
                          "%s: tensor %s: data at byte offset %llu..%llu lies beyond the end of the file "
                          "(%llu bytes): the file is truncated",
                          name, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)file_size);
            goto done;
        }
        at = t->end;
    }
    if (at != file_size)
        s = ellm_fail(err, ELLM_E_FORMAT,
                      "%s: %llu bytes after the last tensor's data (which ends at byte offset %llu)", name,
                      (unsigned long long)(file_size - at), (unsigned long long)at);
done:
    json_decref(root);
    return s;
}

static ellm_status check_header_len(uint64_t hlen, uint64_t file_size, const char *name, ellm_error *err) {
    if (hlen < 2 || hlen > ST_MAX_HEADER)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: not a safetensors file: header length %llu is not in [2, %u]", name,
                         (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > file_size - 8)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: safetensors file is truncated: header of %llu bytes, file has %llu bytes", name,
                         (unsigned long long)hlen, (unsigned long long)file_size);
    return ELLM_OK;
}

ellm_status st_parse_buffer(const uint8_t *buf, size_t size, const char *name, st_file *out,
                            ellm_error *err) {
    memset(out, 0, sizeof *out);
    if (size < 8)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not a safetensors file: %zu bytes", name, size);
    uint64_t hlen = ellm_le64(buf);
    ellm_status s = check_header_len(hlen, size, name, err);
    if (!s) s = parse_header((const char *)buf + 8, (size_t)hlen, size, name, out, err);
    if (s) st_free(out);
    return s;
}

ellm_status st_parse_file(const char *path, st_file *out, ellm_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t size;
    uint8_t len8[8];
    char *hdr = NULL;
    ellm_status s = ellm_file_size(path, &size, err);
    if (!s && size < 8)
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: not a safetensors file: %llu bytes", path,
                      (unsigned long long)size);
    if (!s) s = ellm_pread_exact(fd, path, len8, 8, 0, err);
    uint64_t hlen = s ? 0 : ellm_le64(len8);
    if (!s) s = check_header_len(hlen, size, path, err);
    if (!s && !(hdr = ellm_malloc((size_t)hlen, err))) s = ELLM_E_NOMEM;
    if (!s) s = ellm_pread_exact(fd, path, hdr, (size_t)hlen, 8, err);
    if (!s) s = parse_header(hdr, (size_t)hlen, size, path, out, err);
    free(hdr);
    close(fd);
    if (s) st_free(out);
    return s;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct st_wtensor {
    char *name;
    char dtype[8];
    int n_dims;
    int64_t shape[4];
    uint64_t bytes;
} st_wtensor;

struct st_writer {
    st_wtensor *t;
    size_t n, cap;
    json_t *metadata;
};

ellm_status st_writer_new(st_writer **out, ellm_error *err) {
    st_writer *w = ellm_calloc(1, sizeof *w, err);
    if (!w) return ELLM_E_NOMEM;
    w->metadata = json_object();
    if (!w->metadata) {
        free(w);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    *out = w;
    return ELLM_OK;
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    json_decref(w->metadata);
    free(w);
}

ellm_status st_writer_add(st_writer *w, const char *name, const char *dtype, int n_dims,
                          const int64_t *shape, uint64_t n_bytes, ellm_error *err) {
    unsigned es = dtype_size(dtype);
    if (!es) return ellm_fail(err, ELLM_E_ARG, "safetensors writer: tensor %s: unknown dtype %s", name, dtype);
    if (n_dims < 0 || n_dims > 4)
        return ellm_fail(err, ELLM_E_ARG, "safetensors writer: tensor %s: %d dimensions", name, n_dims);
    if (strcmp(name, "__metadata__") == 0)
        return ellm_fail(err, ELLM_E_ARG, "safetensors writer: \"__metadata__\" is not a tensor name");
    uint64_t n = 1;
    for (int d = 0; d < n_dims; d++)
        if (shape[d] < 0 || !ellm_mul_u64(n, (uint64_t)shape[d], &n))
            return ellm_fail(err, ELLM_E_ARG, "safetensors writer: tensor %s: bad shape", name);
    if (!ellm_mul_u64(n, es, &n) || n != n_bytes)
        return ellm_fail(err, ELLM_E_ARG,
                         "safetensors writer: tensor %s: %llu bytes do not match its shape and dtype %s",
                         name, (unsigned long long)n_bytes, dtype);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ellm_fail(err, ELLM_E_ARG, "safetensors writer: tensor %s added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    st_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = ellm_strdup(name);
    if (!t->name) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->shape[d] = shape[d];
    t->bytes = n_bytes;
    w->n++;
    return ELLM_OK;
}

void st_writer_set_metadata(st_writer *w, const char *key, const char *value) {
    json_object_set_new(w->metadata, key, json_string(value));
}

/* The header JSON, padded with spaces to a multiple of 8 bytes (so the data
 * section is 8-byte aligned, as the reference writer does). */
static char *build_header(st_writer *w, size_t *len, ellm_error *err) {
    json_t *root = json_object();
    if (json_object_size(w->metadata)) json_object_set(root, "__metadata__", w->metadata);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(t->dtype));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + t->bytes)));
        json_object_set_new(root, t->name, e);
        off += t->bytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) {
        ellm_fail(err, ELLM_E_NOMEM, "out of memory building the safetensors header");
        return NULL;
    }
    size_t n = strlen(s), padded = (n + 8 - 1) / 8 * 8;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        return NULL;
    }
    memset(p + n, ' ', padded - n);
    p[padded] = 0;
    *len = padded;
    return p;
}

ellm_status st_writer_write(st_writer *w, const char *path, st_tensor_data_fn fn, void *user,
                            ellm_error *err) {
    size_t hlen;
    char *hdr = build_header(w, &hlen, err);
    if (!hdr) return ELLM_E_NOMEM;
    ellm_outfile o;
    ellm_status s = ellm_outfile_open(&o, path, err);
    if (s) {
        free(hdr);
        return s;
    }
    uint8_t len8[8];
    ellm_put_le64(len8, hlen);
    s = ellm_outfile_write(&o, len8, 8, err);
    if (!s) s = ellm_outfile_write(&o, hdr, hlen, err);
    free(hdr);
    /* One buffer, grown to the largest tensor so far (not one per tensor:
     * fresh pages for every tensor cost page faults). */
    void *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < w->n && !s; i++) {
        if (w->t[i].bytes > cap) {
            free(buf);
            cap = (size_t)w->t[i].bytes;
            buf = ellm_malloc(cap, err);
            if (!buf) {
                s = ELLM_E_NOMEM;
                break;
            }
        }
        s = fn(user, i, buf, (size_t)w->t[i].bytes, err);
        if (!s) s = ellm_outfile_write(&o, buf, (size_t)w->t[i].bytes, err);
    }
    free(buf);
    if (!s) return ellm_outfile_commit(&o, err);
    ellm_outfile_abort(&o);
    return s;
}
