/*
 * source.c - the source model shared by every reader: building it (files,
 * tensors, blobs), checking it, reading one tensor at a time as float32, and
 * format detection (src_open).
 */
#include "formats/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__F16C__) && defined(__AVX__) && !defined(ELLM_FORCE_SCALAR)
#include <immintrin.h>
#define SRC_F16C 1
#endif

const char *ellm_dtype_name(ellm_dtype d) {
    switch (d) {
    case ELLM_DTYPE_F32: return "F32";
    case ELLM_DTYPE_F16: return "F16";
    case ELLM_DTYPE_BF16: return "BF16";
    }
    return "?";
}

size_t ellm_dtype_size(ellm_dtype d) { return d == ELLM_DTYPE_F32 ? 4 : 2; }

/* ---- building a model ---------------------------------------------------- */

src_model *src_model_new(const char *path, const char *format, ellm_error *err) {
    src_model *m = ellm_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->path = ellm_strdup(path);
    m->format = format;
    if (!m->path) {
        free(m);
        ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        return NULL;
    }
    return m;
}

void src_close(src_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    for (size_t i = 0; i < m->n_blobs; i++) {
        free(m->blobs[i].name);
        free(m->blobs[i].data);
    }
    free(m->blobs);
    for (size_t i = 0; i < m->n_files; i++) {
        if (m->fds[i] >= 0) close(m->fds[i]);
        free(m->files[i]);
    }
    free(m->files);
    free(m->fds);
    free(m->config_json);
    free(m->path);
    free(m);
}

/* Grows *arr (of elements of size elem) so that it holds n+1 elements. */
static bool grow(void **arr, size_t n, size_t elem) {
    if (n & (n - 1)) return true; /* capacity is the next power of two >= n */
    size_t cap = n ? 2 * n : 4;
    void *p = realloc(*arr, cap * elem);
    if (!p) return false;
    *arr = p;
    return true;
}

ellm_status src_add_file(src_model *m, const char *path, int *index, ellm_error *err) {
    if (!grow((void **)&m->files, m->n_files, sizeof *m->files) ||
        !grow((void **)&m->fds, m->n_files, sizeof *m->fds))
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *copy = ellm_strdup(path);
    if (!copy) {
        close(fd);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    m->files[m->n_files] = copy;
    m->fds[m->n_files] = fd;
    if (index) *index = (int)m->n_files;
    m->n_files++;
    return ELLM_OK;
}

ellm_status src_add_tensor(src_model *m, const src_tensor *t, ellm_error *err) {
    if (!grow((void **)&m->tensors, m->n_tensors, sizeof *m->tensors))
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    src_tensor *d = &m->tensors[m->n_tensors];
    *d = *t;
    d->name = ellm_strdup(t->name);
    if (!d->name) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    m->n_tensors++;
    return ELLM_OK;
}

ellm_status src_add_blob(src_model *m, const char *name, const uint8_t *data, size_t size, ellm_error *err) {
    if (!grow((void **)&m->blobs, m->n_blobs, sizeof *m->blobs))
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    src_blob *b = &m->blobs[m->n_blobs];
    b->name = ellm_strdup(name);
    b->data = malloc(size ? size : 1);
    if (!b->name || !b->data) {
        free(b->name);
        free(b->data);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    if (size) memcpy(b->data, data, size);
    b->size = size;
    m->n_blobs++;
    return ELLM_OK;
}

ellm_status src_add_blob_file(src_model *m, const char *name, const char *path, ellm_error *err) {
    uint8_t *data;
    size_t size;
    ellm_status s = ellm_read_file(path, &data, &size, err);
    if (s) return s;
    if (!grow((void **)&m->blobs, m->n_blobs, sizeof *m->blobs)) {
        free(data);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    src_blob *b = &m->blobs[m->n_blobs];
    b->name = ellm_strdup(name);
    if (!b->name) {
        free(data);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    b->data = data;
    b->size = size;
    m->n_blobs++;
    return ELLM_OK;
}

/* XXH3-64 over every data file, streamed in chunks (never the whole file). */
static ellm_status checksum_files(src_model *m, ellm_error *err) {
    enum { CHUNK = 4 << 20 };
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = malloc(CHUNK);
    if (!st || !buf) {
        XXH3_freeState(st);
        free(buf);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    XXH3_64bits_reset(st);
    ellm_status s = ELLM_OK;
    m->source_bytes = 0;
    for (size_t f = 0; f < m->n_files && !s; f++) {
        uint64_t size;
        s = ellm_file_size(m->files[f], &size, err);
        for (uint64_t off = 0; !s && off < size; off += CHUNK) {
            size_t n = (size_t)ELLM_MIN((uint64_t)CHUNK, size - off);
            s = ellm_pread_exact(m->fds[f], m->files[f], buf, n, off, err);
            if (!s) XXH3_64bits_update(st, buf, n);
        }
        if (!s) m->source_bytes += size;
    }
    m->source_checksum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    return s;
}

ellm_status src_finish(src_model *m, ellm_error *err) {
    uint64_t *sizes = ellm_calloc(m->n_files, sizeof *sizes, err);
    if (!sizes) return ELLM_E_NOMEM;
    ellm_status s = ELLM_OK;
    for (size_t f = 0; f < m->n_files && !s; f++) s = ellm_file_size(m->files[f], &sizes[f], err);
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const src_tensor *t = &m->tensors[i];
        const char *file = (t->file_index >= 0 && (size_t)t->file_index < m->n_files)
                               ? m->files[t->file_index] : m->path;
        if (t->file_index < 0 || (size_t)t->file_index >= m->n_files) {
            s = ellm_fail(err, ELLM_E_INTERNAL, "%s: tensor %s: bad file index %d", m->path, t->name,
                          t->file_index);
            break;
        }
        if (t->n_dims < 1 || t->n_dims > ELLM_MAX_DIMS) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: %d dimensions (1..%d supported)", file,
                          t->name, t->n_dims, ELLM_MAX_DIMS);
            break;
        }
        uint64_t n = 1, bytes, end;
        for (int d = 0; d < t->n_dims; d++) {
            if (t->shape[d] <= 0 || !ellm_mul_u64(n, (uint64_t)t->shape[d], &n)) {
                s = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s: bad dimension %d = %lld", file,
                              t->name, d, (long long)t->shape[d]);
                break;
            }
        }
        if (s) break;
        if (n != t->n_elements || !ellm_mul_u64(n, ellm_dtype_size(t->dtype), &bytes) ||
            bytes != t->n_bytes) {
            s = ellm_fail(err, ELLM_E_FORMAT,
                          "%s: tensor %s: %llu bytes of data do not match its shape and dtype %s "
                          "(%llu elements)",
                          file, t->name, (unsigned long long)t->n_bytes, ellm_dtype_name(t->dtype),
                          (unsigned long long)n);
            break;
        }
        if (!ellm_add_u64(t->offset, t->n_bytes, &end) || end > sizes[t->file_index]) {
            s = ellm_fail(err, ELLM_E_FORMAT,
                          "%s: tensor %s: data at byte offset %llu..%llu lies beyond the end of the "
                          "file (%llu bytes): the file is truncated",
                          file, t->name, (unsigned long long)t->offset, (unsigned long long)end,
                          (unsigned long long)sizes[t->file_index]);
            break;
        }
    }
    free(sizes);
    if (s) return s;
    return checksum_files(m, err);
}

/* ---- reading ------------------------------------------------------------- */

void src_f16_to_f32_scalar(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = ellm_f16_to_f32(in[i]);
}

void src_f16_to_f32(const uint16_t *in, float *out, size_t n) {
#ifdef SRC_F16C
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    src_f16_to_f32_scalar(in + i, out + i, n - i);
#else
    src_f16_to_f32_scalar(in, out, n);
#endif
}

void src_f32_to_f16_scalar(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = ellm_f32_to_f16(in[i]);
}

void src_f32_to_f16(const float *in, uint16_t *out, size_t n) {
#ifdef SRC_F16C
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    src_f32_to_f16_scalar(in + i, out + i, n - i);
#else
    src_f32_to_f16_scalar(in, out, n);
#endif
}

/* Same rounding as ellm_f32_to_bf16 (nearest even, NaN kept quiet), written
 * without calls so that the compiler vectorises it. */
void src_f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t x;
        memcpy(&x, &in[i], 4);
        uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1)) >> 16;
        uint32_t nan = (x >> 16) | 0x40u;
        out[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    }
}

/* bfloat16 is the top half of a float32: the loop vectorises as is. */
void src_bf16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)in[i] << 16;
        memcpy(&out[i], &bits, 4);
    }
}

ellm_status src_read_f32(src_model *m, size_t index, float *out, ellm_error *err) {
    if (index >= m->n_tensors)
        return ellm_fail(err, ELLM_E_ARG, "%s: tensor index %zu out of range (%zu tensors)", m->path,
                         index, m->n_tensors);
    const src_tensor *t = &m->tensors[index];
    int fd = m->fds[t->file_index];
    const char *file = m->files[t->file_index];
    if (t->dtype == ELLM_DTYPE_F32) {
        ellm_status s = ellm_pread_exact(fd, file, out, (size_t)t->n_bytes, t->offset, err);
        if (s) return ellm_fail_prefix(err, "tensor %s", t->name);
        return ELLM_OK;
    }
    /* 16-bit types: read in chunks and widen, so no second full-size buffer. */
    enum { CHUNK_ELEMS = 32768 };
    uint16_t chunk[CHUNK_ELEMS];
    for (uint64_t done = 0; done < t->n_elements;) {
        size_t n = (size_t)ELLM_MIN((uint64_t)CHUNK_ELEMS, t->n_elements - done);
        ellm_status s = ellm_pread_exact(fd, file, chunk, n * 2, t->offset + done * 2, err);
        if (s) return ellm_fail_prefix(err, "tensor %s", t->name);
        /* (the files are little-endian, as is every target of this code) */
        if (t->dtype == ELLM_DTYPE_F16) src_f16_to_f32(chunk, out + done, n);
        else src_bf16_to_f32(chunk, out + done, n);
        done += n;
    }
    return ELLM_OK;
}

long src_find(const src_model *m, const char *name) {
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return (long)i;
    return -1;
}

const src_blob *src_find_blob(const src_model *m, const char *name) {
    for (size_t i = 0; i < m->n_blobs; i++)
        if (strcmp(m->blobs[i].name, name) == 0) return &m->blobs[i];
    return NULL;
}

/* ---- format detection ------------------------------------------------------ */

const char *src_tokenizer_blob_name(const char *path) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.gguf"};
    static const char *const exts[] = {".json", ".model", ".gguf"};
    size_t n = strlen(path);
    for (size_t i = 0; i < 3; i++) {
        size_t e = strlen(exts[i]);
        if (n >= e && strcmp(path + n - e, exts[i]) == 0) return names[i];
    }
    return "tokenizer.bin";
}

/* For HF and GGUF sources: the user's tokenizer replaces the one carried. */
static ellm_status override_tokenizer(src_model *m, const char *tokenizer_path, ellm_error *err) {
    static const char *const kinds[] = {"tokenizer.json", "tokenizer.model", "tokenizer.gguf", "tokenizer.bin"};
    size_t k = 0;
    for (size_t i = 0; i < m->n_blobs; i++) {
        bool drop = false;
        for (size_t j = 0; j < 4; j++) drop |= strcmp(m->blobs[i].name, kinds[j]) == 0;
        if (drop) {
            free(m->blobs[i].name);
            free(m->blobs[i].data);
        } else {
            m->blobs[k++] = m->blobs[i];
        }
    }
    m->n_blobs = k;
    return src_add_blob_file(m, src_tokenizer_blob_name(tokenizer_path), tokenizer_path, err);
}

static ellm_status with_tokenizer(ellm_status s, src_model **out, const char *tokenizer_path, ellm_error *err) {
    if (s || !tokenizer_path) return s;
    s = override_tokenizer(*out, tokenizer_path, err);
    if (s) {
        src_close(*out);
        *out = NULL;
    }
    return s;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

ellm_status src_open(const char *path, const char *tokenizer_path, src_model **out, ellm_error *err) {
    *out = NULL;
    if (ellm_path_is_dir(path)) return with_tokenizer(src_open_hf(path, out, err), out, tokenizer_path, err);
    /* A file of a Hugging Face folder stands for its folder. */
    if (ends_with(path, ".safetensors") || ends_with(path, "config.json") ||
        ends_with(path, ".safetensors.index.json")) {
        if (!ellm_path_exists(path)) return ellm_fail(err, ELLM_E_IO, "%s: file not found", path);
        char *dir = ellm_path_dirname(path);
        if (!dir) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        ellm_status s = src_open_hf(dir, out, err);
        free(dir);
        return with_tokenizer(s, out, tokenizer_path, err);
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[4] = {0};
    ssize_t r = pread(fd, magic, 4, 0);
    close(fd);
    if (r == 4 && memcmp(magic, "GGUF", 4) == 0)
        return with_tokenizer(src_open_gguf(path, out, err), out, tokenizer_path, err);
    return src_open_llama2c(path, tokenizer_path, out, err);
}
