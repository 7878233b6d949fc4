/*
 * test_kernels.c - the integer matrix products against a double-precision
 * reference computed from the dequantization formula w = s * (q - z), for
 * every bit width (8, 4, float), granularity (tensor, row, group, including
 * groups that straddle rows and odd row lengths for packed uint4), one and
 * several tokens, row offsets, 1 and 2 threads; and the vectorised path
 * (AVX2 on x86-64, NEON on aarch64) against the scalar twin.
 *
 * exact_case() makes every product an exact integer computation: unit scales,
 * integer activations with one |x| = 127 in every block of 32 (so the int8
 * block scale is exactly 1 and x8 == x), sums far below 2^24. Then the
 * vectorised and scalar paths must give the int64 reference sum((q - z) * x)
 * bit for bit, on the integer path (each block's integer sum exact) and on
 * the float path (odd lengths, tails), for extreme codes (0, 255, 15) and
 * activations (-127, 127) as well as random ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/pool.h"
#include "common/testing.h"
#include "model/model.h"


/* A random rows x cols tensor with the given bits and group size. */
static void make_tensor(ellm_qtensor *t, ellm_rng *rng, int64_t rows, int64_t cols, int bits, uint64_t group) {
    memset(t, 0, sizeof *t);
    t->name = "test";
    t->n_dims = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->n = (uint64_t)(rows * cols);
    t->bits = bits;
    t->owns_data = 1;
    if (bits == 32) {
        float *f = malloc(t->n * 4 + 64);
        for (uint64_t i = 0; i < t->n; i++) f[i] = (float)ellm_rng_normal(rng);
        t->data = (uint8_t *)f;
        return;
    }
    t->qp.bits = bits;
    t->qp.group_size = group;
    t->qp.n_groups = (t->n + group - 1) / group;
    t->qp.scales = malloc(t->qp.n_groups * sizeof(float));
    t->qp.zeros = malloc(t->qp.n_groups);
    int maxq = (1 << bits) - 1;
    for (uint64_t g = 0; g < t->qp.n_groups; g++) {
        t->qp.scales[g] = (float)(0.001 + 0.02 * ellm_rng_uniform(rng));
        t->qp.zeros[g] = (uint8_t)(ellm_rng_next(rng) % (uint64_t)(maxq + 1));
    }
    uint64_t bytes = bits == 8 ? t->n : (t->n + 1) / 2;
    t->data = calloc(bytes + 64, 1);
    for (uint64_t i = 0; i < t->n; i++) {
        int q = (int)(ellm_rng_next(rng) % (uint64_t)(maxq + 1));
        if (bits == 8) t->data[i] = (uint8_t)q;
        else t->data[i / 2] |= (uint8_t)(q << ((i & 1) * 4));
    }
}

static double ref_weight(const ellm_qtensor *t, uint64_t e) {
    if (t->bits == 32) return ((const float *)t->data)[e];
    int q = t->bits == 8 ? t->data[e] : (t->data[e / 2] >> ((e & 1) * 4)) & 15;
    uint64_t g = e / t->qp.group_size;
    return (double)t->qp.scales[g] * (double)(q - t->qp.zeros[g]);
}

static void run_case(ellm_pool *pool, int64_t rows, int64_t cols, int bits, uint64_t group, int n_tok,
                     int64_t row0, int64_t n_rows, ellm_rng *rng) {
    ellm_qtensor t;
    make_tensor(&t, rng, rows, cols, bits, group);
    ellm_error err;
    CHECK(ellm_kernels_check_tensor(&t, &err) == ELLM_OK, "check_tensor: %s", err.message);
    float *x = malloc((size_t)n_tok * cols * sizeof(float));
    for (int64_t i = 0; i < n_tok * cols; i++) x[i] = (float)ellm_rng_normal(rng);
    float *y_simd = malloc((size_t)n_tok * n_rows * sizeof(float));
    float *y_scal = malloc((size_t)n_tok * n_rows * sizeof(float));
    float *xr = malloc((size_t)n_tok * cols * sizeof(float));
    for (int exact = 0; exact <= 1; exact++) {
        ellm_kernels ks, kv;
        CHECK(ellm_kernels_init(&ks, pool, cols, 1, &err) == ELLM_OK, "init");
        CHECK(ellm_kernels_init(&kv, pool, cols, 0, &err) == ELLM_OK, "init");
        ks.exact = kv.exact = exact;
        int int8 = ellm_matmul_uses_int8(&kv, &t);
        CHECK(int8 == (!exact && bits != 32 && cols % 32 == 0 && group % 32 == 0), "integer path choice");
        /* The reference multiplies with the activations the kernel sees:
         * x itself, or its int8 quantization dx * x8 on the integer path. */
        memcpy(xr, x, (size_t)n_tok * cols * sizeof(float));
        if (int8) {
            ellm_qacts qa = {0};
            CHECK(ellm_quantize_acts(&qa, x, n_tok, cols, &err) == ELLM_OK, "quantize acts");
            for (int64_t i = 0; i < n_tok * cols; i++) {
                xr[i] = qa.dx[i / 32] * (float)qa.x8[i];
                CHECK(fabsf(xr[i] - x[i]) <= qa.dx[i / 32] * 0.5f + 1e-7f, "activation error above dx/2");
            }
            ellm_qacts_free(&qa);
        }
        CHECK(ellm_matmul(&ks, &t, row0, n_rows, x, n_tok, y_scal, n_rows, &err) == ELLM_OK, "matmul");
        CHECK(ellm_matmul(&kv, &t, row0, n_rows, x, n_tok, y_simd, n_rows, &err) == ELLM_OK, "matmul");
        double worst_ref = 0, worst_pair = 0;
        for (int tk = 0; tk < n_tok; tk++)
            for (int64_t r = 0; r < n_rows; r++) {
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; c++) {
                    double p = ref_weight(&t, (uint64_t)((row0 + r) * cols + c)) * xr[tk * cols + c];
                    ref += p;
                    mag += fabs(p);
                }
                double tol = 1e-5 * mag + 1e-6;
                double a = y_scal[tk * n_rows + r], b = y_simd[tk * n_rows + r];
                worst_ref = fmax(worst_ref, fmax(fabs(a - ref), fabs(b - ref)) / tol);
                worst_pair = fmax(worst_pair, fabs(a - b) / tol);
            }
        CHECK(worst_ref <= 1.0 && worst_pair <= 1.0,
              "bits %d %lldx%lld group %llu n_tok %d rows [%lld,+%lld) %s: error/tolerance vs reference %.3g, "
              "simd vs scalar %.3g",
              bits, (long long)rows, (long long)cols, (unsigned long long)group, n_tok, (long long)row0,
              (long long)n_rows, int8 ? "int8 path" : "float path", worst_ref, worst_pair);
        /* One token at a time gives exactly the batched result. */
        if (n_tok > 1) {
            float *y1 = malloc((size_t)n_rows * sizeof(float));
            for (int tk = 0; tk < n_tok; tk++) {
                CHECK(ellm_matmul(&kv, &t, row0, n_rows, x + tk * cols, 1, y1, n_rows, &err) == ELLM_OK, "matvec");
                if (int8)
                    CHECK(memcmp(y1, y_simd + tk * n_rows, (size_t)n_rows * sizeof(float)) == 0,
                          "int8 path: token %d alone differs from the batch", tk);
            }
            free(y1);
        }
        ellm_kernels_free(&ks);
        ellm_kernels_free(&kv);
    }
    free(xr);

    /* Row dequantization (embedding lookups) in both paths. */
    float *row_a = malloc(cols * sizeof(float)), *row_b = malloc(cols * sizeof(float));
    int64_t r = rows - 1;
    ellm_row_dequant(&t, r, row_a, 1);
    ellm_row_dequant(&t, r, row_b, 0);
    for (int64_t c = 0; c < cols; c++) {
        double ref = ref_weight(&t, (uint64_t)(r * cols + c));
        CHECK(fabs(row_a[c] - ref) <= 1e-6 * fabs(ref) + 1e-9 && row_a[c] == row_b[c],
              "row_dequant bits %d col %lld: %g %g vs %g", bits, (long long)c, row_a[c], row_b[c], ref);
        if (test_failures > 20) break;
    }
    free(row_a);
    free(row_b);
    free(x);
    free(y_simd);
    free(y_scal);
    ellm_qtensor_free(&t);
}

/* ---- exact integer cases ------------------------------------------------ */

enum { PAT_RANDOM, PAT_MIN, PAT_MAX, PAT_ALTERNATE, N_PAT };
static const char *const PAT_NAMES[N_PAT] = {"random", "min", "max", "alternating"};

/* A value in [lo, hi] following the pattern at position i. */
static int pattern_value(int pat, ellm_rng *rng, uint64_t i, int lo, int hi) {
    switch (pat) {
    case PAT_MIN: return lo;
    case PAT_MAX: return hi;
    case PAT_ALTERNATE: return (i & 1) ? hi : lo;
    default: return lo + (int)(ellm_rng_next(rng) % (uint64_t)(hi - lo + 1));
    }
}

static int code_at(const ellm_qtensor *t, uint64_t e) {
    return t->bits == 8 ? t->data[e] : (t->data[e / 2] >> ((e & 1) * 4)) & 15;
}

/* W (bits 8, 4 or 32; unit scales) times integer x, with the vectorised and
 * the scalar kernels, must equal the int64 reference exactly. zero: a zero
 * point for every group, or -1 for random ones. */
static void exact_case(ellm_pool *pool, ellm_rng *rng, int64_t rows, int64_t cols, int bits, uint64_t group,
                       int n_tok, int code_pat, int x_pat, int zero, int exact) {
    ellm_qtensor t;
    make_tensor(&t, rng, rows, cols, bits, group);
    const int maxq = bits == 32 ? 255 : (1 << bits) - 1, lo = bits == 32 ? -255 : 0;
    if (bits == 32) {
        for (uint64_t i = 0; i < t.n; i++) ((float *)t.data)[i] = (float)pattern_value(code_pat, rng, i, lo, maxq);
    } else {
        memset(t.data, 0, bits == 8 ? t.n : (t.n + 1) / 2);
        for (uint64_t i = 0; i < t.n; i++) {
            int q = pattern_value(code_pat, rng, i, 0, maxq);
            if (bits == 8) t.data[i] = (uint8_t)q;
            else t.data[i / 2] |= (uint8_t)(q << ((i & 1) * 4));
        }
        for (uint64_t g = 0; g < t.qp.n_groups; g++) {
            t.qp.scales[g] = 1.0f;
            t.qp.zeros[g] = (uint8_t)(zero >= 0 ? zero : (int)(ellm_rng_next(rng) % (uint64_t)(maxq + 1)));
        }
    }
    float *x = malloc((size_t)n_tok * (size_t)cols * sizeof(float));
    for (int64_t i = 0; i < n_tok * cols; i++) x[i] = (float)pattern_value(x_pat, rng, (uint64_t)i, -127, 127);
    /* one |x| = 127 in every block of 32 (the other patterns have them): block scale 1 */
    for (int64_t b0 = 0; x_pat == PAT_RANDOM && b0 < n_tok * cols; b0 += 32) {
        int64_t len = ELLM_MIN((int64_t)32, n_tok * cols - b0);
        x[b0 + (int64_t)(ellm_rng_next(rng) % (uint64_t)len)] = (ellm_rng_next(rng) & 1) ? 127.0f : -127.0f;
    }
    ellm_error err;
    ellm_kernels ks, kv;
    CHECK(ellm_kernels_init(&ks, pool, cols, 1, &err) == ELLM_OK, "init");
    CHECK(ellm_kernels_init(&kv, pool, cols, 0, &err) == ELLM_OK, "init");
    ks.exact = kv.exact = exact;
    const int int8 = ellm_matmul_uses_int8(&kv, &t);
    if (int8) { /* the premise: int8 activations are x itself, scale 1 */
        ellm_qacts qa = {0};
        CHECK(ellm_quantize_acts(&qa, x, n_tok, cols, &err) == ELLM_OK, "quantize acts");
        for (int64_t i = 0; i < n_tok * cols; i++)
            if (qa.x8[i] != (int8_t)x[i] || qa.dx[i / 32] != 1.0f) {
                CHECK(0, "exact case: activation %lld quantized to %d * %g, not %g", (long long)i, qa.x8[i],
                      qa.dx[i / 32], x[i]);
                break;
            }
        ellm_qacts_free(&qa);
    }
    float *ys = malloc((size_t)n_tok * (size_t)rows * sizeof(float));
    float *yv = malloc((size_t)n_tok * (size_t)rows * sizeof(float));
    CHECK(ellm_matmul(&ks, &t, 0, rows, x, n_tok, ys, rows, &err) == ELLM_OK, "matmul");
    CHECK(ellm_matmul(&kv, &t, 0, rows, x, n_tok, yv, rows, &err) == ELLM_OK, "matmul");
    int reported = 0;
    for (int tk = 0; tk < n_tok && !reported; tk++)
        for (int64_t r = 0; r < rows && !reported; r++) {
            int64_t ref = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                uint64_t e = (uint64_t)(r * cols + c);
                int64_t w = bits == 32 ? (int64_t)((const float *)t.data)[e]
                                       : code_at(&t, e) - (int64_t)t.qp.zeros[e / group];
                int64_t p = w * (int64_t)x[tk * cols + c];
                ref += p;
                mag += p < 0 ? -p : p;
            }
            CHECK(mag < (1 << 24), "exact case too large for float: %lld", (long long)mag);
            float a = ys[tk * rows + r], b = yv[tk * rows + r];
            if (a != (float)ref || b != (float)ref) {
                CHECK(0,
                      "exact: bits %d %lldx%lld group %llu n_tok %d codes %s x %s zero %d %s path: token %d row %lld: "
                      "scalar %.1f, simd %.1f, reference %lld",
                      bits, (long long)rows, (long long)cols, (unsigned long long)group, n_tok, PAT_NAMES[code_pat],
                      PAT_NAMES[x_pat], zero, int8 ? "int8" : "float", tk, (long long)r, a, b, (long long)ref);
                reported = 1;
            }
        }
    /* Row dequantization: s * (q - z) bit for bit in both paths, every row
     * (odd row lengths start uint4 rows on a high nibble). */
    if (bits != 32) {
        for (uint64_t g = 0; g < t.qp.n_groups; g++) t.qp.scales[g] = (float)(0.001 + ellm_rng_uniform(rng));
        float *ra = malloc((size_t)cols * sizeof(float)), *rb = malloc((size_t)cols * sizeof(float));
        for (int64_t r = 0; r < rows && !reported; r++) {
            ellm_row_dequant(&t, r, ra, 1);
            ellm_row_dequant(&t, r, rb, 0);
            for (int64_t c = 0; c < cols; c++) {
                uint64_t e = (uint64_t)(r * cols + c), g = e / group;
                float ref = t.qp.scales[g] * (float)(code_at(&t, e) - (int)t.qp.zeros[g]);
                if (ra[c] != ref || rb[c] != ref) {
                    CHECK(0, "row_dequant bits %d %lldx%lld row %lld col %lld: scalar %g simd %g reference %g", bits,
                          (long long)rows, (long long)cols, (long long)r, (long long)c, ra[c], rb[c], ref);
                    reported = 1;
                    break;
                }
            }
        }
        free(ra), free(rb);
    }
    ellm_kernels_free(&ks);
    ellm_kernels_free(&kv);
    free(x), free(ys), free(yv);
    ellm_qtensor_free(&t);
}

static void exact_cases(ellm_pool *pool, ellm_rng *rng) {
    /* every pattern of codes against every pattern of activations, extreme
     * zero points, integer path (x4 and one-token) and float path */
    for (int bits = 8; bits >= 4; bits -= 4) {
        const int maxq = (1 << bits) - 1, zeros[] = {-1, 0, maxq, 1 << (bits - 1)};
        for (int cp = 0; cp < N_PAT; cp++)
            for (int xp = 0; xp < N_PAT; xp++)
                for (size_t z = 0; z < ELLM_ARRAY_LEN(zeros); z++)
                    for (int exact = 0; exact <= 1; exact++) {
                        exact_case(pool, rng, 9, 96, bits, 9 * 96, 5, cp, xp, zeros[z], exact);
                        exact_case(pool, rng, 7, 96, bits, 96, 1, cp, xp, zeros[z], exact);
                    }
    }
    for (int cp = 0; cp < N_PAT; cp++)
        for (int xp = 0; xp < N_PAT; xp++) exact_case(pool, rng, 9, 99, 32, 1, cp == 0 ? 1 : 5, cp, xp, -1, 0);
    /* shapes: long rows, odd lengths and tails of every vector loop, groups
     * within rows and straddling them, 1 to 9 tokens */
    const int64_t cols_list[] = {512, 256, 160, 64, 32, 99, 77, 47, 33, 17, 15, 8, 1};
    const int toks[] = {1, 4, 9};
    for (size_t c = 0; c < ELLM_ARRAY_LEN(cols_list); c++) {
        int64_t cols = cols_list[c], rows = 11;
        const uint64_t groups[] = {(uint64_t)(rows * cols), (uint64_t)cols, 32, 64, 7};
        for (size_t tk = 0; tk < ELLM_ARRAY_LEN(toks); tk++) {
            for (int bits = 8; bits >= 4; bits -= 4)
                for (size_t g = 0; g < ELLM_ARRAY_LEN(groups); g++)
                    for (int exact = 0; exact <= 1; exact++)
                        exact_case(pool, rng, rows, cols, bits, groups[g], toks[tk], PAT_RANDOM, PAT_RANDOM, -1,
                                   exact);
            exact_case(pool, rng, rows, cols, 32, 1, toks[tk], PAT_RANDOM, PAT_RANDOM, -1, 0);
        }
    }
}

int main(void) {
    ellm_rng rng;
    ellm_rng_seed(&rng, 1234);
    printf("kernels: simd path %s (%s)\n", ellm_kernels_have_simd() ? "on" : "off", ellm_cpu_features());
    /* The build's vectorised path is really compiled in, and named. */
#if !defined(ELLM_FORCE_SCALAR) && ((defined(__AVX2__) && defined(__FMA__)) || defined(__aarch64__))
    CHECK(ellm_kernels_have_simd(), "this build should have a vectorised path");
#endif
#if defined(__aarch64__) && !defined(ELLM_FORCE_SCALAR)
    CHECK(strstr(ellm_cpu_features(), "neon") != NULL, "cpu features do not name NEON: %s", ellm_cpu_features());
#if defined(__ARM_FEATURE_DOTPROD)
    CHECK(strstr(ellm_cpu_features(), "dotprod") != NULL, "cpu features do not name dotprod: %s", ellm_cpu_features());
#endif
#endif
    for (int threads = 1; threads <= 2; threads++) {
        ellm_pool *pool;
        ellm_error err;
        if (ellm_pool_create(threads, &pool, &err)) {
            fprintf(stderr, "pool: %s\n", err.message);
            return 1;
        }
        exact_cases(pool, &rng);
        const int bits_list[] = {8, 4, 32};
        for (size_t b = 0; b < 3; b++) {
            int bits = bits_list[b];
            const int64_t rows = 37, shapes[][1] = {{64}, {256}, {200}, {77}, {8}, {1}};
            for (size_t s = 0; s < ELLM_ARRAY_LEN(shapes); s++) {
                int64_t cols = shapes[s][0];
                uint64_t n = (uint64_t)(rows * cols);
                /* tensor, row, groups dividing the row, groups straddling rows */
                const uint64_t groups[] = {n, (uint64_t)cols, 32, 7, 64, 96};
                for (size_t g = 0; g < ELLM_ARRAY_LEN(groups); g++) {
                    for (int n_tok = 1; n_tok <= 6; n_tok += 5) {
                        run_case(pool, rows, cols, bits, groups[g], n_tok, 0, rows, &rng);
                        run_case(pool, rows, cols, bits, groups[g], n_tok, 5, 17, &rng);
                    }
                    if (bits == 32) break; /* groups do not apply */
                }
            }
        }
        /* A realistic size: long rows, many rows, batched. */
        run_case(pool, 300, 576, 8, 300 * 576, 1, 0, 300, &rng);
        run_case(pool, 300, 576, 4, 576, 9, 0, 300, &rng);
        run_case(pool, 300, 576, 4, 128, 1, 0, 300, &rng);
        ellm_pool_destroy(pool);
    }
    /* Several products in one call (q/k/v, gate/up) == one call each,
     * bit for bit, also when the weights take different paths. */
    {
        ellm_pool *pool;
        ellm_error err;
        if (ellm_pool_create(2, &pool, &err)) return 1;
        ellm_qtensor a, b, c;
        make_tensor(&a, &rng, 300, 256, 8, 300 * 256);
        make_tensor(&b, &rng, 70, 256, 4, 32);
        make_tensor(&c, &rng, 50, 256, 32, 1);
        for (int n_tok = 1; n_tok <= 5; n_tok += 4) {
            float *x = malloc((size_t)n_tok * 256 * sizeof(float));
            for (int i = 0; i < n_tok * 256; i++) x[i] = (float)ellm_rng_normal(&rng);
            float *y1 = calloc((size_t)n_tok * 420, sizeof(float)), *y2 = calloc((size_t)n_tok * 420, sizeof(float));
            ellm_kernels k;
            ellm_kernels_init(&k, pool, 256, 0, &err);
            ellm_mm_out outs[3] = {{&a, 10, 290, y1, 420}, {&b, 0, 70, y1 + 290, 420}, {&c, 5, 45, y1 + 360, 420}};
            CHECK(ellm_matmul_multi(&k, outs, 3, x, n_tok, &err) == ELLM_OK, "multi");
            ellm_matmul(&k, &a, 10, 290, x, n_tok, y2, 420, &err);
            ellm_matmul(&k, &b, 0, 70, x, n_tok, y2 + 290, 420, &err);
            ellm_matmul(&k, &c, 5, 45, x, n_tok, y2 + 360, 420, &err);
            CHECK(memcmp(y1, y2, (size_t)n_tok * 420 * sizeof(float)) == 0, "multi-product call differs (%d tokens)",
                  n_tok);
            ellm_kernels_free(&k);
            free(x), free(y1), free(y2);
        }
        ellm_qtensor_free(&a), ellm_qtensor_free(&b), ellm_qtensor_free(&c);
        ellm_pool_destroy(pool);
    }

    /* A tensor the kernels cannot use is refused by name. */
    ellm_qtensor bad;
    make_tensor(&bad, &rng, 4, 8, 8, 8);
    bad.qp.n_groups = 1;
    ellm_error err;
    CHECK(ellm_kernels_check_tensor(&bad, &err) == ELLM_E_FORMAT && strstr(err.message, "test"),
          "inconsistent group count accepted");
    bad.qp.n_groups = 4;
    bad.bits = 4;
    bad.qp.zeros[2] = 200;
    CHECK(ellm_kernels_check_tensor(&bad, &err) == ELLM_E_FORMAT, "zero point 200 accepted for 4 bits");
    bad.bits = 8;
    bad.bits = 16;
    CHECK(ellm_kernels_check_tensor(&bad, &err) == ELLM_E_UNSUPPORTED, "16-bit accepted");
    bad.bits = 8;
    ellm_qtensor_free(&bad);
    return test_finish("kernels");
}
