/* common.c - see common.h. */
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- errors ------------------------------------------------------------- */

const char *ellm_version(void) { return ELLM_VERSION_STRING; }

const char *ellm_status_name(ellm_status s) {
    switch (s) {
    case ELLM_OK: return "ok";
    case ELLM_E_IO: return "I/O error";
    case ELLM_E_FORMAT: return "malformed input";
    case ELLM_E_CHECKSUM: return "checksum mismatch";
    case ELLM_E_UNSUPPORTED: return "unsupported";
    case ELLM_E_ARG: return "bad argument";
    case ELLM_E_NOMEM: return "out of memory";
    case ELLM_E_INTERNAL: return "internal error";
    }
    return "unknown error";
}

ellm_status ellm_fail(ellm_error *err, ellm_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

ellm_status ellm_fail_prefix(ellm_error *err, const char *fmt, ...) {
    if (!err) return ELLM_E_INTERNAL;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t pl = strlen(prefix), cap = sizeof err->message;
    size_t ml = strnlen(err->message, cap - 1);
    if (pl + 2 + ml >= cap) ml = cap - 1 - pl - 2; /* keep the message's start */
    memmove(err->message + pl + 2, err->message, ml);
    memcpy(err->message, prefix, pl);
    err->message[pl] = ':';
    err->message[pl + 1] = ' ';
    err->message[pl + 2 + ml] = 0;
    return err->code;
}

void ellm_error_clear(ellm_error *err) {
    if (err) {
        err->code = ELLM_OK;
        err->message[0] = 0;
    }
}

/* ---- allocation --------------------------------------------------------- */

void *ellm_malloc(size_t n, ellm_error *err) {
    void *p = malloc(n ? n : 1);
    if (!p) ellm_fail(err, ELLM_E_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *ellm_calloc(size_t count, size_t size, ellm_error *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ellm_fail(err, ELLM_E_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *ellm_aligned_alloc(size_t n, ellm_error *err) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) {
        ellm_fail(err, ELLM_E_NOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

char *ellm_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- files -------------------------------------------------------------- */

ellm_status ellm_read_file(const char *path, uint8_t **data, size_t *size, ellm_error *err) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ellm_fail(err, ELLM_E_IO, "%s: not a regular file", path);
    }
    uint8_t *buf = ellm_malloc((size_t)st.st_size + 1, err);
    if (!buf) {
        close(fd);
        return ELLM_E_NOMEM;
    }
    ellm_status s = ellm_pread_exact(fd, path, buf, (size_t)st.st_size, 0, err);
    close(fd);
    if (s != ELLM_OK) {
        free(buf);
        return s;
    }
    buf[st.st_size] = 0;
    *data = buf;
    *size = (size_t)st.st_size;
    return ELLM_OK;
}

ellm_status ellm_pread_exact(int fd, const char *path, void *buf, size_t n, uint64_t offset,
                             ellm_error *err) {
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return ellm_fail(err, ELLM_E_IO, "%s: read error at byte %llu: %s", path,
                             (unsigned long long)(offset + done), strerror(errno));
        }
        if (r == 0)
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: file is truncated: needed %zu bytes at byte offset %llu, got %zu",
                             path, n, (unsigned long long)offset, done);
        done += (size_t)r;
    }
    return ELLM_OK;
}

ellm_status ellm_file_size(const char *path, uint64_t *size, ellm_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return ellm_fail(err, ELLM_E_IO, "%s: %s", path, strerror(errno));
    *size = (uint64_t)st.st_size;
    return ELLM_OK;
}

bool ellm_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool ellm_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *ellm_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

char *ellm_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return ellm_strdup(".");
    if (slash == path) return ellm_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

ellm_status ellm_mmap_open(const char *path, ellm_mmap *m, ellm_error *err) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ellm_fail(err, ELLM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ellm_fail(err, ELLM_E_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ellm_fail(err, ELLM_E_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return ellm_fail(err, ELLM_E_IO, "%s: cannot mmap: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    return ELLM_OK;
}

void ellm_mmap_close(ellm_mmap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

/* ---- atomic output files ------------------------------------------------ */

ellm_status ellm_outfile_open(ellm_outfile *o, const char *path, ellm_error *err) {
    memset(o, 0, sizeof *o);
    o->final_path = ellm_strdup(path);
    size_t n = strlen(path) + 32;
    o->tmp_path = malloc(n);
    if (!o->final_path || !o->tmp_path) {
        ellm_outfile_abort(o);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    snprintf(o->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp_path, "wb");
    if (!o->fp) {
        ellm_status s = ellm_fail(err, ELLM_E_IO, "%s: cannot create: %s", o->tmp_path, strerror(errno));
        free(o->tmp_path);
        o->tmp_path = NULL;
        ellm_outfile_abort(o);
        return s;
    }
    return ELLM_OK;
}

ellm_status ellm_outfile_write(ellm_outfile *o, const void *data, size_t n, ellm_error *err) {
    if (n && fwrite(data, 1, n, o->fp) != n)
        return ellm_fail(err, ELLM_E_IO, "%s: write failed at byte %llu: %s", o->final_path,
                         (unsigned long long)o->offset, strerror(errno));
    o->offset += n;
    return ELLM_OK;
}

ellm_status ellm_outfile_pad(ellm_outfile *o, uint64_t align, ellm_error *err) {
    static const uint8_t zeros[256];
    while (o->offset % align) {
        size_t n = (size_t)ELLM_MIN(align - o->offset % align, (uint64_t)sizeof zeros);
        ellm_status s = ellm_outfile_write(o, zeros, n, err);
        if (s) return s;
    }
    return ELLM_OK;
}

ellm_status ellm_outfile_pwrite(ellm_outfile *o, const void *data, size_t n, uint64_t offset,
                                ellm_error *err) {
    if (fflush(o->fp) != 0 || pwrite(fileno(o->fp), data, n, (off_t)offset) != (ssize_t)n)
        return ellm_fail(err, ELLM_E_IO, "%s: write failed at byte %llu: %s", o->final_path,
                         (unsigned long long)offset, strerror(errno));
    return ELLM_OK;
}

ellm_status ellm_outfile_commit(ellm_outfile *o, ellm_error *err) {
    if (fflush(o->fp) != 0 || fsync(fileno(o->fp)) != 0) {
        ellm_status s = ellm_fail(err, ELLM_E_IO, "%s: cannot flush: %s", o->final_path, strerror(errno));
        ellm_outfile_abort(o);
        return s;
    }
    fclose(o->fp);
    o->fp = NULL;
    if (rename(o->tmp_path, o->final_path) != 0) {
        ellm_status s = ellm_fail(err, ELLM_E_IO, "%s: cannot rename from %s: %s", o->final_path,
                                  o->tmp_path, strerror(errno));
        ellm_outfile_abort(o);
        return s;
    }
    free(o->tmp_path);
    o->tmp_path = NULL;
    ellm_outfile_abort(o);
    return ELLM_OK;
}

void ellm_outfile_abort(ellm_outfile *o) {
    if (o->fp) fclose(o->fp);
    o->fp = NULL;
    if (o->tmp_path) unlink(o->tmp_path);
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = NULL;
    o->final_path = NULL;
}

/* ---- system ------------------------------------------------------------- */

double ellm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ellm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

uint64_t ellm_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

const char *ellm_cpu_features(void) {
#if defined(ELLM_FORCE_SCALAR)
    return "scalar (SIMD disabled at build time)";
#elif defined(__AVX512F__) && defined(__AVX2__)
    return "avx2 fma f16c (avx512 available)";
#elif defined(__AVX2__)
    return "avx2 fma f16c";
#elif defined(__aarch64__) && defined(__ARM_NEON) && defined(__ARM_FEATURE_DOTPROD)
    return "neon dotprod";
#elif defined(__aarch64__) && defined(__ARM_NEON)
    return "neon (armv8-a, no dotprod)";
#else
    return "scalar";
#endif
}

/* ---- half precision ----------------------------------------------------- */

float ellm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ellm_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: correct */
    return (uint16_t)half;
}

float ellm_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ellm_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- checksum ----------------------------------------------------------- */

uint64_t ellm_checksum(const void *data, size_t n) { return XXH3_64bits(data, n); }

/* ---- progress bar ------------------------------------------------------- */

void ellm_progress_init(ellm_progress *p, const char *label) {
    memset(p, 0, sizeof *p);
    p->enabled = isatty(STDERR_FILENO) && !getenv("ELLM_NO_PROGRESS");
    p->start = ellm_now();
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
}

void ellm_progress_update(ellm_progress *p, uint64_t done, uint64_t total) {
    if (!p->enabled || total == 0) return;
    double now = ellm_now();
    if (done < total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    const int width = 30;
    double frac = (double)done / (double)total;
    if (frac > 1) frac = 1;
    int fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double el = now - p->start;
    double eta = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "\r%-20.20s [%s] %5.1f%% %6.1fs eta %5.1fs", p->label, bar, 100 * frac, el, eta);
    fflush(stderr);
}

void ellm_progress_finish(ellm_progress *p) {
    if (p->enabled && p->last_draw > 0) fprintf(stderr, "\r\033[K");
    p->last_draw = 0;
}

void ellm_progress_callback(void *user, const char *what, uint64_t done, uint64_t total) {
    ellm_progress *p = user;
    if (what && strncmp(p->label, what, sizeof p->label - 1) != 0)
        snprintf(p->label, sizeof p->label, "%s", what);
    ellm_progress_update(p, done, total);
}

/* ---- random numbers ----------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ellm_rng_seed(ellm_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ellm_rng_next(ellm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ellm_rng_uniform(ellm_rng *r) { return (double)(ellm_rng_next(r) >> 11) * 0x1.0p-53; }

double ellm_rng_normal(ellm_rng *r) {
    double u1 = ellm_rng_uniform(r), u2 = ellm_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
