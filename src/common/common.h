/*
 * common.h - small utilities shared by every stage: errors, checked
 * allocation, whole-file and positional I/O, atomic output files, timing,
 * half-precision conversion, a progress bar.
 */
#ifndef ELLM_COMMON_H
#define ELLM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "entrollm.h"

#define ELLM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ELLM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ELLM_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define ELLM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ELLM_LIKELY(x) __builtin_expect(!!(x), 1)
#define ELLM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define ELLM_PRINTF(f, a)
#define ELLM_LIKELY(x) (x)
#define ELLM_UNLIKELY(x) (x)
#endif

/* A named byte string (a tokenizer or config file carried in a model). */
typedef struct ellm_blob_ref {
    const char *name;
    const uint8_t *data;
    size_t size;
} ellm_blob_ref;

/* Fills err (if not NULL) and returns code, so callers can write
 *   return ellm_fail(err, ELLM_E_FORMAT, "%s: bad magic", path); */
ellm_status ellm_fail(ellm_error *err, ellm_status code, const char *fmt, ...) ELLM_PRINTF(3, 4);
/* Prepends context to an existing message: "ctx: old message". */
ellm_status ellm_fail_prefix(ellm_error *err, const char *fmt, ...) ELLM_PRINTF(2, 3);
void ellm_error_clear(ellm_error *err);

/* Allocation that reports failure through err. */
void *ellm_malloc(size_t n, ellm_error *err);
void *ellm_calloc(size_t count, size_t size, ellm_error *err);
/* 64-byte aligned allocation (free with free()). */
void *ellm_aligned_alloc(size_t n, ellm_error *err);
char *ellm_strdup(const char *s);

/* Overflow-checked arithmetic: false on overflow. */
static inline bool ellm_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ellm_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Reads a whole file (adds a NUL after the data; *size excludes it). */
ellm_status ellm_read_file(const char *path, uint8_t **data, size_t *size, ellm_error *err);
/* Reads exactly n bytes at offset; a short read is a FORMAT error naming the file. */
ellm_status ellm_pread_exact(int fd, const char *path, void *buf, size_t n, uint64_t offset,
                             ellm_error *err);
ellm_status ellm_file_size(const char *path, uint64_t *size, ellm_error *err);
bool ellm_path_is_dir(const char *path);
bool ellm_path_exists(const char *path);
/* Joins dir and name with one '/'; malloc'd. */
char *ellm_path_join(const char *dir, const char *name);
/* Directory part of path ("." if none); malloc'd. */
char *ellm_path_dirname(const char *path);

/* Read-only memory map of a whole file. */
typedef struct ellm_mmap {
    const uint8_t *data;
    size_t size;
} ellm_mmap;
ellm_status ellm_mmap_open(const char *path, ellm_mmap *m, ellm_error *err);
void ellm_mmap_close(ellm_mmap *m);

/* An output file written under a temporary name in the same directory and
 * renamed to its final name only by ellm_outfile_commit, so a failure never
 * leaves a partial file behind. */
typedef struct ellm_outfile {
    FILE *fp;
    char *final_path;
    char *tmp_path;
    uint64_t offset; /* bytes written so far */
} ellm_outfile;
ellm_status ellm_outfile_open(ellm_outfile *o, const char *path, ellm_error *err);
ellm_status ellm_outfile_write(ellm_outfile *o, const void *data, size_t n, ellm_error *err);
/* Writes zero bytes until offset is a multiple of align. */
ellm_status ellm_outfile_pad(ellm_outfile *o, uint64_t align, ellm_error *err);
/* Overwrites bytes at an earlier offset (e.g. a header filled in last). */
ellm_status ellm_outfile_pwrite(ellm_outfile *o, const void *data, size_t n, uint64_t offset,
                                ellm_error *err);
ellm_status ellm_outfile_commit(ellm_outfile *o, ellm_error *err);
/* Closes and deletes the temporary file (safe after commit, and twice). */
void ellm_outfile_abort(ellm_outfile *o);

/* Monotonic clock in seconds. */
double ellm_now(void);
/* Number of online CPUs (at least 1). */
int ellm_cpu_count(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t ellm_peak_rss(void);
/* CPU features used by this build, e.g. "avx2 fma f16c" or "scalar". */
const char *ellm_cpu_features(void);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float ellm_f16_to_f32(uint16_t h);
uint16_t ellm_f32_to_f16(float f);
float ellm_bf16_to_f32(uint16_t h);
uint16_t ellm_f32_to_bf16(float f);

/* 64-bit checksum used throughout the .ellm format: XXH3-64, seed 0. */
uint64_t ellm_checksum(const void *data, size_t n);

/* Little-endian loads and stores (the file formats are little-endian). */
static inline uint16_t ellm_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ellm_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t ellm_le64(const uint8_t *p) {
    return (uint64_t)ellm_le32(p) | ((uint64_t)ellm_le32(p + 4) << 32);
}
static inline void ellm_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void ellm_put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ellm_put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A progress bar drawn on stderr when it is a terminal; silent otherwise. */
typedef struct ellm_progress {
    bool enabled;
    double start, last_draw;
    char label[64];
} ellm_progress;
void ellm_progress_init(ellm_progress *p, const char *label);
void ellm_progress_update(ellm_progress *p, uint64_t done, uint64_t total);
void ellm_progress_finish(ellm_progress *p);
/* Adapter usable as an ellm_progress_fn with user = ellm_progress*. */
void ellm_progress_callback(void *user, const char *what, uint64_t done, uint64_t total);

/* Deterministic pseudo-random numbers (xoshiro256**), one state per user. */
typedef struct ellm_rng {
    uint64_t s[4];
} ellm_rng;
void ellm_rng_seed(ellm_rng *r, uint64_t seed);
uint64_t ellm_rng_next(ellm_rng *r);
double ellm_rng_uniform(ellm_rng *r);  /* [0, 1) */
double ellm_rng_normal(ellm_rng *r);   /* standard normal */

#endif /* ELLM_COMMON_H */
