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

/* Where the next payload starts, and where the payloads must end (the
 * directory's first byte): offsets are implied by the sizes (FORMAT.md). */
typedef struct payload_cursor {
    uint64_t next, end;
} payload_cursor;

/* Claims the next `size` payload bytes; false if they run into the directory. */
static bool take_payload(payload_cursor *pc, uint64_t size, uint64_t *offset) {
    uint64_t end;
    if (!ellm_add_u64(pc->next, size, &end) || end > pc->end) return false;
    *offset = pc->next;
    pc->next = end;
    return true;
}

static ellm_status parse_blob(dir_cursor *c, const ellm_mmap *map, payload_cursor *pc, const char *prev,
                              ellm_fblob *b, ellm_error *err) {
    ellm_status s = read_name(c, prev, &b->name, err);
    if (s || (s = read_varint(c, "blob size", &b->size, err)) || (s = need(c, 4, "a blob checksum", err))) return s;
    uint32_t stored = ellm_le32(c->p);
    c->p += 4;
    if (!take_payload(pc, b->size, &b->offset))
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: blob %s (%llu bytes from byte %llu) runs past the payload area ending at byte %llu",
                         c->path, b->name, (unsigned long long)b->size, (unsigned long long)pc->next,
                         (unsigned long long)pc->end);
    b->data = map->data + b->offset;
    b->checksum = ellm_checksum(b->data, b->size);
    if (ELLM_CHECKSUM_DIFFERS((uint32_t)b->checksum, stored))
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

/* Checks the kind byte's fields fit each other: float <=> bits 32 <=> coder
 * raw <=> group_size 0. */
static ellm_status validate_kind(const char *path, const ellm_ftensor *t, uint64_t stored_group, ellm_error *err) {
#define BAD(...) tensor_bad(err, path, t->name, __VA_ARGS__)
    const bool is_float = t->scheme == ELLM_SCHEME_FLOAT;
    if (t->bits == 0) return BAD("unknown bits code 3");
    if (is_float != (t->bits == 32)) return BAD("bits %d do not fit scheme %d", t->bits, (int)t->scheme);
    if (t->coder > ELLM_CODER_RANS) return BAD("unknown coder %d", (int)t->coder);
    if (is_float && t->coder != ELLM_CODER_RAW) return BAD("float tensor with a coder");
    if (is_float && stored_group != 0) return BAD("float tensor with quantization groups");
    /* 0 is the only spelling of "the whole tensor": one record, one encoding. */
    if (!is_float && stored_group >= t->n)
        return BAD("group size %llu must be below its %llu elements (0 stands for the whole tensor)",
                   (unsigned long long)stored_group, (unsigned long long)t->n);
#undef BAD
    return ELLM_OK;
}

/* Group size stored -> group_size, n_groups, granularity (FORMAT.md). */
static void derive_groups(ellm_ftensor *t, uint64_t stored_group) {
    if (t->scheme == ELLM_SCHEME_FLOAT) {
        t->group_size = t->n_groups = 0;
        t->granularity = ELLM_GRAN_TENSOR;
        return;
    }
    t->group_size = stored_group ? stored_group : t->n;
    t->n_groups = t->n / t->group_size + (t->n % t->group_size != 0);
    uint64_t row = (uint64_t)t->shape[t->n_dims - 1];
    t->granularity = t->group_size == t->n ? ELLM_GRAN_TENSOR : t->group_size == row ? ELLM_GRAN_ROW : ELLM_GRAN_GROUP;
}

/* Checks the payload's parts against its size and the tensor's shape. */
static ellm_status validate_payload(const char *path, const ellm_ftensor *t, ellm_error *err) {
#define BAD(...) tensor_bad(err, path, t->name, __VA_ARGS__)
    if (t->payload_size < t->block_offset)
        return BAD("payload of %llu bytes is shorter than its %llu scales and zero points",
                   (unsigned long long)t->payload_size, (unsigned long long)t->n_groups);
    uint64_t want = t->scheme == ELLM_SCHEME_FLOAT ? t->n * 4 : ec_decoded_bytes(t->bits, t->n);
    if (t->coder == ELLM_CODER_RAW && t->block_size != want)
        return BAD("holds %llu bytes of plain data, its shape needs %llu", (unsigned long long)t->block_size,
                   (unsigned long long)want);
#undef BAD
    return ELLM_OK;
}

static ellm_status parse_tensor(dir_cursor *c, const ellm_mmap *map, payload_cursor *pc, const char *prev,
                                ellm_ftensor *t, ellm_error *err) {
    ellm_status s = read_name(c, prev, &t->name, err);
    if (s || (s = need(c, 1, "a tensor record", err))) return s;
    int scheme, coder;
    ellm_kind_unpack(*c->p++, &t->n_dims, &scheme, &coder, &t->bits);
    t->scheme = (ellm_scheme)scheme;
    t->coder = (ellm_coder)coder;
    t->n = 1;
    for (int d = 0; d < t->n_dims; d++) {
        uint64_t dim;
        if ((s = read_varint(c, "tensor dimension", &dim, err))) return s;
        t->shape[d] = (int64_t)ELLM_MIN(dim, INT64_MAX);
        if (dim == 0 || dim > (1ull << 48) || !ellm_mul_u64(t->n, dim, &t->n) || t->n > (1ull << 48))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s has a bad dimension %llu", c->path, t->name,
                             (unsigned long long)dim);
    }
    uint64_t stored_group;
    if ((s = read_varint(c, "group size", &stored_group, err))) return s;
    if ((s = validate_kind(c->path, t, stored_group, err))) return s;
    derive_groups(t, stored_group);
    if ((s = need(c, 2, "entropy", err))) return s;
    uint16_t entropy = ellm_le16(c->p);
    c->p += 2;
    /* Float tensors store 0; they cost 32 bits a weight, which is what every
     * bits-per-weight sum over the directory wants to see. */
    t->entropy_bits = t->scheme == ELLM_SCHEME_FLOAT ? 32.0 : (double)entropy / ELLM_ENTROPY_UNIT;
    if ((s = read_varint(c, "payload size", &t->payload_size, err)) || (s = need(c, 4, "a checksum", err))) return s;
    t->payload_checksum = ellm_le32(c->p);
    c->p += 4;
    if (!take_payload(pc, t->payload_size, &t->payload_offset))
        return tensor_bad(err, c->path, t->name, "payload (%llu bytes from byte %llu) runs past the payload area ending at byte %llu",
                          (unsigned long long)t->payload_size, (unsigned long long)pc->next,
                          (unsigned long long)pc->end);
    t->block_offset = 5 * t->n_groups;
    t->block_size = t->payload_size >= t->block_offset ? t->payload_size - t->block_offset : 0;
    if ((s = validate_payload(c->path, t, err))) return s;
    const uint8_t *payload = map->data + t->payload_offset;
    t->scales = payload;
    t->zeros = payload + 4 * t->n_groups;
    t->block = payload + t->block_offset;
    return ELLM_OK;
}

static ellm_status parse_directory(ellm_file *f, const ellm_header *h, ellm_error *err) {
    uint64_t dir_offset = h->file_size - h->dir_size;
    dir_cursor c = {f->map.data + dir_offset, f->map.data + h->file_size, f->path, dir_offset,
                    f->map.data + dir_offset};
    payload_cursor pc = {ELLM_HEADER_SIZE + (uint64_t)h->meta_size, dir_offset};
    /* Every record takes at least a few bytes: bound the counts first. */
    if ((uint64_t)h->n_blobs * ELLM_MIN_BLOB_RECORD + (uint64_t)h->n_tensors * ELLM_MIN_TENSOR_RECORD > h->dir_size)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: directory of %u bytes cannot hold %u blobs and %u tensors", f->path,
                         h->dir_size, h->n_blobs, h->n_tensors);
    f->blobs = ellm_calloc(h->n_blobs ? h->n_blobs : 1, sizeof *f->blobs, err);
    f->tensors = ellm_calloc(h->n_tensors ? h->n_tensors : 1, sizeof *f->tensors, err);
    if (!f->blobs || !f->tensors) return ELLM_E_NOMEM;
    ellm_status s;
    for (uint32_t i = 0; i < h->n_blobs; i++) {
        f->n_blobs++;
        if ((s = parse_blob(&c, &f->map, &pc, i ? f->blobs[i - 1].name : NULL, &f->blobs[i], err))) return s;
    }
    for (uint32_t i = 0; i < h->n_tensors; i++) {
        f->n_tensors++;
        if ((s = parse_tensor(&c, &f->map, &pc, i ? f->tensors[i - 1].name : NULL, &f->tensors[i], err))) return s;
    }
    if (c.p != c.end)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: %lld unexpected bytes at the end of the directory (from byte %llu)",
                         f->path, (long long)(c.end - c.p), (unsigned long long)(c.base + (uint64_t)(c.p - c.start)));
    if (pc.next != pc.end)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: the payloads end at byte %llu but the directory starts at byte %llu (%llu bytes "
                         "unaccounted for)",
                         f->path, (unsigned long long)pc.next, (unsigned long long)pc.end,
                         (unsigned long long)(pc.end - pc.next));
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
    const uint8_t *meta = s ? NULL : f->map.data + ELLM_HEADER_SIZE;
    if (!s && ELLM_CHECKSUM_DIFFERS(ellm_checksum(meta, h.meta_size), h.meta_checksum))
        s = ellm_fail(err, ELLM_E_CHECKSUM, "%s: metadata checksum mismatch (bytes %d..%llu are corrupted)", path,
                      ELLM_HEADER_SIZE, (unsigned long long)ELLM_HEADER_SIZE + h.meta_size);
    if (!s && ELLM_CHECKSUM_DIFFERS(ellm_checksum(f->map.data + h.file_size - h.dir_size, h.dir_size),
                                    h.dir_checksum))
        s = ellm_fail(err, ELLM_E_CHECKSUM, "%s: directory checksum mismatch (bytes %llu..%llu are corrupted)", path,
                      (unsigned long long)(h.file_size - h.dir_size), (unsigned long long)h.file_size);
    if (!s) {
        f->version = h.version;
        f->meta_size = h.meta_size;
        f->dir_size = h.dir_size;
        f->metadata_json = ellm_malloc((size_t)h.meta_size + 1, err);
        if (!f->metadata_json) s = ELLM_E_NOMEM;
    }
    if (!s) {
        memcpy(f->metadata_json, meta, h.meta_size);
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
    uint32_t got = ellm_checksum32(f->map.data + t->payload_offset, t->payload_size);
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
            ec_view_rans_layout(&v, &info->rans_states, &info->rans_classes, &info->rans_class_axis);
            ec_view_close(&v);
        }
    }
    return ELLM_OK;
}
