/*
 * reader.c - opening .ellm files: header, metadata and directory are checked
 * (checksums, every offset and size inside the file) before anything else is
 * trusted. Payload checksums are checked when a tensor is loaded or verified.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "container/container.h"
#include "container/format.h"
#include "decode/decode.h"
#include "entropy/entropy.h"

/* A bounds-checked cursor over the directory bytes. */
typedef struct dir_cursor {
    const uint8_t *p, *end;
    const char *path;
    uint64_t base; /* file offset of the directory, for messages */
    const uint8_t *start;
} dir_cursor;

static ellm_status need(dir_cursor *c, size_t n, const char *what, ellm_error *err) {
    if ((size_t)(c->end - c->p) < n)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: directory truncated reading %s at byte %llu", c->path, what,
                         (unsigned long long)(c->base + (uint64_t)(c->p - c->start)));
    return ELLM_OK;
}

static ellm_status read_varint(dir_cursor *c, const char *what, uint64_t *v, ellm_error *err) {
    size_t n = ellm_get_varint(c->p, c->end, v);
    if (n == 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: directory: bad or truncated %s at byte %llu", c->path, what,
                         (unsigned long long)(c->base + (uint64_t)(c->p - c->start)));
    c->p += n;
    return ELLM_OK;
}

/* Reads a name stored relative to the previous one (see put_name in
 * writer.c and docs/FORMAT.md, "Names"); prev is NULL for the first. */
static ellm_status read_name(dir_cursor *c, const char *prev, char **name, ellm_error *err) {
    uint64_t pre, suf, mid;
    ellm_status s;
    if ((s = read_varint(c, "name prefix length", &pre, err)) || (s = read_varint(c, "name suffix length", &suf, err)) ||
        (s = read_varint(c, "name length", &mid, err)))
        return s;
    uint64_t pn = prev ? strlen(prev) : 0;
    if (pre > pn || suf > pn - pre || mid > ELLM_MAX_NAME || pre + suf + mid == 0 || pre + suf + mid > ELLM_MAX_NAME)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: bad name lengths (%llu+%llu+%llu) in directory at byte %llu",
                         c->path, (unsigned long long)pre, (unsigned long long)mid, (unsigned long long)suf,
                         (unsigned long long)(c->base + (uint64_t)(c->p - c->start)));
    if ((s = need(c, (size_t)mid, "a name", err))) return s;
    size_t n = (size_t)(pre + mid + suf);
    *name = malloc(n + 1);
    if (!*name) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    if (pre) memcpy(*name, prev, (size_t)pre);
    memcpy(*name + pre, c->p, (size_t)mid);
    if (suf) memcpy(*name + pre + mid, prev + pn - suf, (size_t)suf);
    (*name)[n] = 0;
    c->p += mid;
    return ELLM_OK;
}

static bool range_ok(uint64_t offset, uint64_t size, uint64_t limit) {
    uint64_t end;
    return ellm_add_u64(offset, size, &end) && end <= limit;
}

static ellm_status parse_blob(dir_cursor *c, const ellm_mmap *map, const char *prev, ellm_fblob *b,
                              ellm_error *err) {
    ellm_status s = read_name(c, prev, &b->name, err);
    if (s || (s = read_varint(c, "blob offset", &b->offset, err)) || (s = read_varint(c, "blob size", &b->size, err)) ||
        (s = need(c, 8, "a blob checksum", err)))
        return s;
    b->checksum = ellm_le64(c->p);
    c->p += 8;
    if (!range_ok(b->offset, b->size, map->size))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: blob %s (offset %llu, %llu bytes) lies outside the file", c->path,
                         b->name, (unsigned long long)b->offset, (unsigned long long)b->size);
    b->data = map->data + b->offset;
    if (ELLM_CHECKSUM_DIFFERS(ellm_checksum(b->data, b->size), b->checksum))
        return ellm_fail(err, ELLM_E_CHECKSUM, "%s: blob %s: checksum mismatch (bytes %llu..%llu are corrupted)",
                         c->path, b->name, (unsigned long long)b->offset,
                         (unsigned long long)(b->offset + b->size));
    return ELLM_OK;
}

static ellm_status tensor_bad(ellm_error *err, const char *path, const char *name, const char *fmt, ...)
    ELLM_PRINTF(4, 5);
static ellm_status tensor_bad(ellm_error *err, const char *path, const char *name, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: %s", path, name, msg);
}

/* Checks a tensor record's fields are consistent with each other and the file. */
static ellm_status validate_tensor(const char *path, const ellm_ftensor *t, uint64_t file_size,
                                   ellm_error *err) {
#define BAD(...) tensor_bad(err, path, t->name, __VA_ARGS__)
    if (t->n_dims < 1 || t->n_dims > 4) return BAD("has %d dimensions (1..4 allowed)", t->n_dims);
    const bool is_float = t->scheme == ELLM_SCHEME_FLOAT;
    if (is_float ? t->bits != 32 : (t->bits != 8 && t->bits != 4))
        return BAD("bits %d do not fit scheme %d", t->bits, (int)t->scheme);
    if ((int)t->scheme < 0 || t->scheme > ELLM_SCHEME_FLOAT) return BAD("unknown scheme %d", (int)t->scheme);
    if ((int)t->granularity < 0 || t->granularity > ELLM_GRAN_GROUP)
        return BAD("unknown granularity %d", (int)t->granularity);
    if ((int)t->coder < 0 || t->coder > ELLM_CODER_RANS) return BAD("unknown coder %d", (int)t->coder);
    if (is_float && t->coder != ELLM_CODER_RAW) return BAD("float tensor with a coder");
    if (!is_float && (t->group_size == 0 || t->group_size > t->n))
        return BAD("group size %llu does not fit %llu elements", (unsigned long long)t->group_size,
                   (unsigned long long)t->n);
    if (is_float && t->group_size != 0) return BAD("float tensor with quantization groups");
    if (t->payload_offset % ELLM_ALIGN || !range_ok(t->payload_offset, t->payload_size, file_size) ||
        t->payload_offset < ELLM_HEADER_SIZE)
        return BAD("payload (offset %llu, %llu bytes) is misaligned or outside the file",
                                (unsigned long long)t->payload_offset, (unsigned long long)t->payload_size);
    if (t->block_offset < t->n_groups * 5 ||
        !range_ok(t->block_offset, t->block_size, t->payload_size) ||
        t->block_offset + t->block_size != t->payload_size)
        return BAD("data block (offset %llu, %llu bytes) does not fit its payload of %llu bytes",
                                (unsigned long long)t->block_offset, (unsigned long long)t->block_size,
                                (unsigned long long)t->payload_size);
    uint64_t want = is_float ? t->n * 4 : ec_decoded_bytes(t->bits, t->n);
    if ((is_float || t->coder == ELLM_CODER_RAW) && t->block_size != want)
        return BAD("holds %llu bytes of plain data, its shape needs %llu",
                                (unsigned long long)t->block_size, (unsigned long long)want);
#undef BAD
    return ELLM_OK;
}

static ellm_status parse_tensor(dir_cursor *c, const ellm_mmap *map, const char *prev, ellm_ftensor *t,
                                ellm_error *err) {
    ellm_status s = read_name(c, prev, &t->name, err);
    if (s || (s = need(c, 5, "a tensor record", err))) return s;
    t->n_dims = c->p[0];
    t->scheme = (ellm_scheme)c->p[1];
    t->bits = c->p[2];
    t->coder = (ellm_coder)c->p[3];
    t->granularity = (ellm_granularity)c->p[4];
    c->p += 5;
    if (t->n_dims < 1 || t->n_dims > 4)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s has %d dimensions (1..4 allowed)", c->path, t->name,
                         t->n_dims);
    t->n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t dim;
        if ((s = read_varint(c, "tensor dimension", &dim, err))) return s;
        t->shape[d] = (int64_t)dim;
        if (dim == 0 || dim > (1ull << 48) || !ellm_mul_u64(t->n, dim, &t->n) || t->n > (1ull << 48))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s has a bad dimension %llu", c->path, t->name,
                             (unsigned long long)dim);
    }
    if ((s = read_varint(c, "group size", &t->group_size, err)) || (s = need(c, 4, "entropy", err))) return s;
    uint32_t ebits = ellm_le32(c->p);
    float entropy;
    memcpy(&entropy, &ebits, 4);
    t->entropy_bits = entropy;
    c->p += 4;
    if ((s = read_varint(c, "payload offset", &t->payload_offset, err)) ||
        (s = read_varint(c, "payload size", &t->payload_size, err)) ||
        (s = read_varint(c, "block offset", &t->block_offset, err)) || (s = need(c, 8, "a checksum", err)))
        return s;
    t->payload_checksum = ellm_le64(c->p);
    c->p += 8;
    t->n_groups = t->group_size ? t->n / t->group_size + (t->n % t->group_size != 0) : 0;
    t->block_size = t->block_offset <= t->payload_size ? t->payload_size - t->block_offset : 0;
    if ((s = validate_tensor(c->path, t, map->size, err))) return s;
    const uint8_t *payload = map->data + t->payload_offset;
    t->scales = (const float *)payload; /* 8-byte aligned payload: the f32 scales are aligned */
    t->zeros = payload + 4 * t->n_groups;
    t->block = payload + t->block_offset;
    return ELLM_OK;
}

static ellm_status parse_directory(ellm_file *f, const ellm_header *h, ellm_error *err) {
    dir_cursor c = {f->map.data + h->dir_offset, f->map.data + h->dir_offset + h->dir_size, f->path,
                    h->dir_offset, f->map.data + h->dir_offset};
    /* Every record takes at least 2 + fixed bytes: bound the counts first. */
    if (h->n_blobs > h->dir_size / ELLM_MIN_BLOB_RECORD || h->n_tensors > h->dir_size / ELLM_MIN_TENSOR_RECORD)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: directory of %llu bytes cannot hold %llu blobs and %llu tensors",
                         f->path, (unsigned long long)h->dir_size, (unsigned long long)h->n_blobs,
                         (unsigned long long)h->n_tensors);
    f->blobs = ellm_calloc((size_t)h->n_blobs, sizeof *f->blobs, err);
    f->tensors = ellm_calloc((size_t)h->n_tensors, sizeof *f->tensors, err);
    if (!f->blobs || !f->tensors) return ELLM_E_NOMEM;
    ellm_status s;
    for (uint64_t i = 0; i < h->n_blobs; i++) {
        f->n_blobs++;
        if ((s = parse_blob(&c, &f->map, i ? f->blobs[i - 1].name : NULL, &f->blobs[i], err))) return s;
    }
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        f->n_tensors++;
        if ((s = parse_tensor(&c, &f->map, i ? f->tensors[i - 1].name : NULL, &f->tensors[i], err))) return s;
    }
    if (c.p != c.end)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: %lld unexpected bytes at the end of the directory", f->path,
                         (long long)(c.end - c.p));
    return ELLM_OK;
}

ellm_status ellm_file_open(const char *path, ellm_file **out, ellm_error *err) {
    *out = NULL;
    ellm_file *f = ellm_calloc(1, sizeof *f, err);
    if (!f) return ELLM_E_NOMEM;
    f->path = ellm_strdup(path);
    ellm_status s = f->path ? ellm_mmap_open(path, &f->map, err) : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    ellm_header h;
    if (!s) s = ellm_header_decode(f->map.data, f->map.size, path, &h, err);
    if (!s && ELLM_CHECKSUM_DIFFERS(ellm_checksum(f->map.data + h.meta_offset, h.meta_size), h.meta_checksum))
        s = ellm_fail(err, ELLM_E_CHECKSUM, "%s: metadata checksum mismatch (bytes %llu..%llu are corrupted)", path,
                      (unsigned long long)h.meta_offset, (unsigned long long)(h.meta_offset + h.meta_size));
    if (!s && ELLM_CHECKSUM_DIFFERS(ellm_checksum(f->map.data + h.dir_offset, h.dir_size), h.dir_checksum))
        s = ellm_fail(err, ELLM_E_CHECKSUM, "%s: directory checksum mismatch (bytes %llu..%llu are corrupted)", path,
                      (unsigned long long)h.dir_offset, (unsigned long long)(h.dir_offset + h.dir_size));
    if (!s) {
        f->version = h.version;
        f->metadata_json = ellm_malloc(h.meta_size + 1, err);
        if (!f->metadata_json) s = ELLM_E_NOMEM;
    }
    if (!s) {
        memcpy(f->metadata_json, f->map.data + h.meta_offset, h.meta_size);
        f->metadata_json[h.meta_size] = 0;
        s = parse_directory(f, &h, err);
    }
    if (s) {
        ellm_file_close(f);
        return s;
    }
    *out = f;
    return ELLM_OK;
}

void ellm_file_close(ellm_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (size_t i = 0; i < f->n_blobs; i++) free(f->blobs[i].name);
    free(f->tensors);
    free(f->blobs);
    free(f->metadata_json);
    ellm_mmap_close(&f->map);
    free(f->path);
    free(f);
}

const char *ellm_file_metadata_json(const ellm_file *f) { return f->metadata_json; }
size_t ellm_file_tensor_count(const ellm_file *f) { return f->n_tensors; }

long ellm_file_find(const ellm_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return (long)i;
    return -1;
}

const ellm_fblob *ellm_file_blob(const ellm_file *f, const char *name) {
    for (size_t i = 0; i < f->n_blobs; i++)
        if (strcmp(f->blobs[i].name, name) == 0) return &f->blobs[i];
    return NULL;
}

ellm_status ellm_file_check_tensor(const ellm_file *f, size_t index, ellm_error *err) {
    const ellm_ftensor *t = &f->tensors[index];
    uint64_t got = ellm_checksum(f->map.data + t->payload_offset, t->payload_size);
    if (ELLM_CHECKSUM_DIFFERS(got, t->payload_checksum))
        return ellm_fail(err, ELLM_E_CHECKSUM,
                         "%s: tensor %s: payload checksum mismatch (bytes %llu..%llu are corrupted)", f->path,
                         t->name, (unsigned long long)t->payload_offset,
                         (unsigned long long)(t->payload_offset + t->payload_size));
    return ELLM_OK;
}

ellm_status ellm_file_tensor_info(const ellm_file *f, size_t index, ellm_tensor_info *info) {
    if (index >= f->n_tensors) return ELLM_E_ARG;
    const ellm_ftensor *t = &f->tensors[index];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->n_dims = t->n_dims;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->n_params = t->n;
    info->scheme = t->scheme;
    info->bits = t->bits;
    info->granularity = t->granularity;
    info->group_size = (uint32_t)ELLM_MIN(t->group_size, UINT32_MAX);
    info->coder = t->coder;
    info->entropy_bits = t->entropy_bits;
    info->meta_bytes = t->block_offset;
    info->coded_bytes = t->block_size;
    if (t->coder != ELLM_CODER_RAW) {
        ec_view v;
        if (ec_view_open(t->block, t->block_size, t->name, &v, NULL) == ELLM_OK) {
            info->segment_symbols = v.segment_symbols;
            info->n_segments = v.n_segments;
            ec_view_close(&v);
        }
    }
    return ELLM_OK;
}
