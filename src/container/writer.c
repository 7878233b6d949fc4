/*
 * writer.c - streaming .ellm writer (layout: docs/FORMAT.md).
 *
 * The header is written as zeros first and filled in at the end, the
 * metadata follows it, then every blob and tensor payload as it arrives,
 * back to back (no padding: offsets are implied by the sizes in the
 * directory), and the directory last. Only the directory (names, shapes,
 * sizes: about 16 bytes per tensor) is held in memory, so a model of any
 * size streams through. The file appears under its final name only when
 * complete.
 */
#include <stdlib.h>
#include <string.h>

#include "container/container.h"
#include "container/format.h"

struct ellm_writer {
    ellm_outfile out;
    uint64_t meta_size, meta_checksum;
    /* directory bytes built as entries arrive */
    uint8_t *blob_dir, *tensor_dir;
    size_t blob_dir_len, blob_dir_cap, tensor_dir_len, tensor_dir_cap;
    uint64_t n_blobs, n_tensors;
    char *prev_blob, *prev_tensor; /* names are stored relative to the previous one */
};

static ellm_status dir_append(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n,
                              ellm_error *err) {
    if (*len + n > *cap) {
        size_t nc = ELLM_MAX(*cap * 2, *len + n + 256);
        uint8_t *nb = realloc(*buf, nc);
        if (!nb) return ellm_fail(err, ELLM_E_NOMEM, "out of memory building the tensor directory");
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return ELLM_OK;
}

ellm_status ellm_writer_open(const char *path, const char *metadata_json, ellm_writer **out,
                             ellm_error *err) {
    *out = NULL;
    size_t meta_len = strlen(metadata_json);
    if (meta_len > UINT32_MAX)
        return ellm_fail(err, ELLM_E_ARG, "%s: metadata of %zu bytes exceeds the format's 4 GiB limit", path, meta_len);
    ellm_writer *w = ellm_calloc(1, sizeof *w, err);
    if (!w) return ELLM_E_NOMEM;
    ellm_status s = ellm_outfile_open(&w->out, path, err);
    if (s) {
        free(w);
        return s;
    }
    uint8_t zero_header[ELLM_HEADER_SIZE] = {0};
    w->meta_size = meta_len;
    w->meta_checksum = ellm_checksum(metadata_json, meta_len);
    if ((s = ellm_outfile_write(&w->out, zero_header, sizeof zero_header, err)) ||
        (s = ellm_outfile_write(&w->out, metadata_json, meta_len, err))) {
        ellm_writer_abort(w);
        return s;
    }
    *out = w;
    return ELLM_OK;
}

/* Writes a name relative to the previous one of its list (docs/FORMAT.md,
 * "Names"): varint bytes shared at the start, varint bytes shared at the end,
 * varint length of the middle, the middle. "layers.1.wq.weight" after
 * "layers.0.wq.weight" costs 4 bytes. Updates *prev to the name. */
static ellm_status put_name(uint8_t **buf, size_t *len, size_t *cap, const char *name, char **prev,
                            ellm_error *err) {
    size_t n = strlen(name), pn = *prev ? strlen(*prev) : 0;
    if (n == 0 || n > ELLM_MAX_NAME)
        return ellm_fail(err, ELLM_E_ARG, "name '%.64s' must be 1..%d bytes", name, ELLM_MAX_NAME);
    size_t pre = 0, suf = 0;
    while (pre < n && pre < pn && name[pre] == (*prev)[pre]) pre++;
    while (suf < n - pre && suf < pn - pre && name[n - 1 - suf] == (*prev)[pn - 1 - suf]) suf++;
    uint8_t l[3 * ELLM_VARINT_MAX];
    size_t k = ellm_put_varint(l, pre);
    k += ellm_put_varint(l + k, suf);
    k += ellm_put_varint(l + k, n - pre - suf);
    ellm_status s = dir_append(buf, len, cap, l, k, err);
    if (!s) s = dir_append(buf, len, cap, name + pre, n - pre - suf, err);
    free(*prev);
    *prev = ellm_strdup(name);
    return s ? s : *prev ? ELLM_OK : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
}

ellm_status ellm_writer_add_blob(ellm_writer *w, const char *name, const uint8_t *data, size_t size,
                                 ellm_error *err) {
    if (w->n_tensors)
        return ellm_fail(err, ELLM_E_ARG, "blob %s: blobs must be added before the first tensor", name);
    if (w->n_blobs == UINT32_MAX) return ellm_fail(err, ELLM_E_ARG, "blob %s: too many blobs", name);
    ellm_status s = ellm_outfile_write(&w->out, data, size, err);
    if (s) return s;
    if ((s = put_name(&w->blob_dir, &w->blob_dir_len, &w->blob_dir_cap, name, &w->prev_blob, err))) return s;
    uint8_t rec[ELLM_VARINT_MAX + 4];
    size_t k = ellm_put_varint(rec, size);
    ellm_put_le32(rec + k, ellm_checksum32(data, size));
    w->n_blobs++;
    return dir_append(&w->blob_dir, &w->blob_dir_len, &w->blob_dir_cap, rec, k + 4, err);
}

/* Bytes of scales and zeros at the start of a payload, before the block. */
static uint64_t params_bytes(uint64_t n_groups) { return n_groups * 5; }

/* entropy_bits as stored: u16 in units of 1/4096 bit, rounded to nearest. */
static uint16_t entropy_code(double bits) {
    double v = bits * ELLM_ENTROPY_UNIT + 0.5;
    return !(v >= 0) ? 0 : v >= UINT16_MAX ? UINT16_MAX : (uint16_t)v;
}

/* Writes scales (little-endian f32) and zeros, feeding the checksum. */
static ellm_status write_params(ellm_writer *w, const ellm_qparams *qp, XXH3_state_t *hs, ellm_error *err) {
    uint64_t n_groups = qp->n_groups;
    uint8_t *params = ellm_malloc(params_bytes(n_groups), err);
    if (!params) return ELLM_E_NOMEM;
    for (uint64_t g = 0; g < n_groups; g++) {
        uint32_t bits;
        memcpy(&bits, &qp->scales[g], 4);
        ellm_put_le32(params + 4 * g, bits);
    }
    memcpy(params + 4 * n_groups, qp->zeros, n_groups);
    XXH3_64bits_update(hs, params, params_bytes(n_groups));
    ellm_status s = ellm_outfile_write(&w->out, params, params_bytes(n_groups), err);
    free(params);
    return s;
}

ellm_status ellm_writer_add_tensor(ellm_writer *w, const ellm_wtensor *t, ellm_error *err) {
    const bool is_float = t->bits == 32;
    if (!is_float && !(t->bits == 8 || t->bits == 4))
        return ellm_fail(err, ELLM_E_ARG, "%s: bits must be 4, 8 or 32", t->name);
    if (t->n_dims < 1 || t->n_dims > 4)
        return ellm_fail(err, ELLM_E_ARG, "%s: %d dimensions (1..4 supported)", t->name, t->n_dims);
    if (is_float ? t->scheme != ELLM_SCHEME_FLOAT
                 : (t->scheme < ELLM_SCHEME_UNSIGNED || t->scheme > ELLM_SCHEME_ASYMMETRIC || !t->qp))
        return ellm_fail(err, ELLM_E_ARG, "%s: scheme %d does not fit %d bits", t->name, (int)t->scheme, t->bits);
    if (is_float ? t->coder != ELLM_CODER_RAW : (t->coder < ELLM_CODER_RAW || t->coder > ELLM_CODER_RANS))
        return ellm_fail(err, ELLM_E_ARG, "%s: coder %d does not fit %d bits", t->name, (int)t->coder, t->bits);
    if (w->n_tensors == UINT32_MAX) return ellm_fail(err, ELLM_E_ARG, "%s: too many tensors", t->name);
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        if (t->shape[d] <= 0 || !ellm_mul_u64(n, (uint64_t)t->shape[d], &n) || n > (1ull << 48))
            return ellm_fail(err, ELLM_E_ARG, "%s: bad shape", t->name);
    uint64_t n_groups = is_float ? 0 : t->qp->n_groups;
    if (!is_float && (t->qp->group_size == 0 || t->qp->group_size > n ||
                      n_groups != (n + t->qp->group_size - 1) / t->qp->group_size))
        return ellm_fail(err, ELLM_E_INTERNAL, "%s: %llu groups of %llu do not cover the tensor", t->name,
                         (unsigned long long)n_groups, (unsigned long long)t->qp->group_size);
    /* 0 stands for "the whole tensor" (and for float tensors). */
    uint64_t group_size = is_float || t->qp->group_size == n ? 0 : t->qp->group_size;

    uint64_t payload_offset = w->out.offset;
    /* The payload is checksummed as written: scales, zeros, block. */
    XXH3_state_t *hs = XXH3_createState();
    if (!hs) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    XXH3_64bits_reset(hs);
    ellm_status s = n_groups ? write_params(w, t->qp, hs, err) : ELLM_OK;
    if (!s) {
        XXH3_64bits_update(hs, t->block, t->block_size);
        s = ellm_outfile_write(&w->out, t->block, t->block_size, err);
    }
    uint32_t checksum = (uint32_t)XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    if (s) return s;

    size_t *len = &w->tensor_dir_len, *cap = &w->tensor_dir_cap;
    if ((s = put_name(&w->tensor_dir, len, cap, t->name, &w->prev_tensor, err))) return s;
    uint8_t rec[1 + 6 * ELLM_VARINT_MAX + 2 + 4];
    size_t k = 0;
    rec[k++] = ellm_kind_pack(t->n_dims, is_float ? ELLM_SCHEME_FLOAT : t->scheme, is_float ? ELLM_CODER_RAW : t->coder,
                              t->bits);
    for (int d = 0; d < t->n_dims; d++) k += ellm_put_varint(rec + k, (uint64_t)t->shape[d]);
    k += ellm_put_varint(rec + k, group_size);
    ellm_put_le16(rec + k, is_float ? 0 : entropy_code(t->entropy_bits));
    k += 2;
    k += ellm_put_varint(rec + k, w->out.offset - payload_offset);
    ellm_put_le32(rec + k, checksum);
    k += 4;
    w->n_tensors++;
    return dir_append(&w->tensor_dir, len, cap, rec, k, err);
}

ellm_status ellm_writer_finish(ellm_writer *w, uint64_t *file_bytes, ellm_error *err) {
    ellm_status s = ELLM_OK;
    uint64_t dir_size = (uint64_t)w->blob_dir_len + w->tensor_dir_len;
    uint64_t dir_checksum = 0;
    if (dir_size > UINT32_MAX)
        s = ellm_fail(err, ELLM_E_ARG, "directory of %llu bytes exceeds the format's 4 GiB limit",
                      (unsigned long long)dir_size);
    if (!s) {
        XXH3_state_t *hs = XXH3_createState();
        if (!hs) s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        if (!s) {
            XXH3_64bits_reset(hs);
            XXH3_64bits_update(hs, w->blob_dir, w->blob_dir_len);
            XXH3_64bits_update(hs, w->tensor_dir, w->tensor_dir_len);
            dir_checksum = XXH3_64bits_digest(hs);
            XXH3_freeState(hs);
        }
    }
    if (!s) s = ellm_outfile_write(&w->out, w->blob_dir, w->blob_dir_len, err);
    if (!s) s = ellm_outfile_write(&w->out, w->tensor_dir, w->tensor_dir_len, err);
    if (!s) {
        ellm_header h = {
            .version = ELLM_FORMAT_VERSION,
            .header_size = ELLM_HEADER_SIZE,
            .file_size = w->out.offset,
            .meta_size = (uint32_t)w->meta_size,
            .dir_size = (uint32_t)dir_size,
            .n_tensors = (uint32_t)w->n_tensors,
            .n_blobs = (uint32_t)w->n_blobs,
            .meta_checksum = w->meta_checksum,
            .dir_checksum = dir_checksum,
        };
        uint8_t bytes[ELLM_HEADER_SIZE];
        ellm_header_encode(&h, bytes);
        s = ellm_outfile_pwrite(&w->out, bytes, sizeof bytes, 0, err);
    }
    uint64_t size = w->out.offset;
    if (!s) s = ellm_outfile_commit(&w->out, err);
    if (s) {
        ellm_writer_abort(w);
        return s;
    }
    if (file_bytes) *file_bytes = size;
    free(w->blob_dir);
    free(w->tensor_dir);
    free(w->prev_blob);
    free(w->prev_tensor);
    free(w);
    return ELLM_OK;
}

void ellm_writer_abort(ellm_writer *w) {
    if (!w) return;
    ellm_outfile_abort(&w->out);
    free(w->blob_dir);
    free(w->tensor_dir);
    free(w->prev_blob);
    free(w->prev_tensor);
    free(w);
}
