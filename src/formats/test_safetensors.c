/* test_safetensors.c - safetensors writer/parser round trip and the strict
 * header checks (lengths, JSON, dtypes, offsets vs shape, gaps, overlaps,
 * truncation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/safetensors.h"
#include "formats/source.h"
#include "formats/test_util.h"

static ellm_status fill(void *user, size_t index, void *dst, size_t n, ellm_error *err) {
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = (uint8_t)(index * 31 + i);
    return ELLM_OK;
}

/* Builds a safetensors buffer from a header text and data_len data bytes. */
static uint8_t *make(const char *header, size_t data_len, size_t *size) {
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    uint8_t *b = calloc(1, *size);
    ellm_put_le64(b, h);
    memcpy(b + 8, header, h);
    return b;
}

static void expect_bad(const char *header, size_t data_len, ellm_status code, const char *needle) {
    size_t size;
    uint8_t *b = make(header, data_len, &size);
    st_file f;
    ellm_error err = {0};
    CHECK_FAIL(st_parse_buffer(b, size, "bad.safetensors", &f, &err), code, needle, err);
    CHECK(strstr(err.message, "bad.safetensors"));
    free(b);
}

/* The F16C widening agrees with the scalar twin on all 65536 halves (NaNs
 * only need to stay NaN), and bf16 widening with ellm_bf16_to_f32. */
static void check_conversions(void) {
    uint16_t *h = malloc(65536 * 2 + 2);
    float *a = malloc(65537 * 4), *b = malloc(65537 * 4);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    h[65536] = 0x3c00;
    src_f16_to_f32(h, a, 65537); /* odd length: the tail goes through the scalar path */
    src_f16_to_f32_scalar(h, b, 65537);
    for (uint32_t i = 0; i < 65537; i++) {
        if (isnan(b[i])) CHECK(isnan(a[i]));
        else CHECK(memcmp(&a[i], &b[i], 4) == 0);
    }
    CHECK(a[65536] == 1.0f && a[0x3555] == b[0x3555] && a[1] == ldexpf(1, -24));
    src_bf16_to_f32(h, a, 65537);
    for (uint32_t i = 0; i < 65537; i++) {
        float e = ellm_bf16_to_f32(h[i]);
        CHECK(memcmp(&a[i], &e, 4) == 0);
    }
    /* narrowing: every float32 bit pattern with a 16-bit stride in its low
     * half plus random ones (ties, subnormals, overflow, infinities, NaNs) */
    enum { N = 1 << 20 };
    float *f = malloc(N * 4);
    uint16_t *x = malloc(N * 2), *y = malloc(N * 2);
    ellm_rng rng;
    ellm_rng_seed(&rng, 5);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t bits = i < 65536 ? (i << 16) | (i & 0x1fff) | 0x1000 : (uint32_t)ellm_rng_next(&rng);
        memcpy(&f[i], &bits, 4);
    }
    src_f32_to_f16(f, x, N - 3);
    src_f32_to_f16_scalar(f, y, N - 3);
    for (uint32_t i = 0; i < N - 3; i++) {
        if (isnan(f[i])) CHECK((x[i] & 0x7c00) == 0x7c00 && (x[i] & 0x3ff));
        else if (x[i] != y[i]) {
            fprintf(stderr, "f16 of %a: %04x vs %04x\n", (double)f[i], x[i], y[i]);
            CHECK(0);
        }
    }
    src_f32_to_bf16(f, x, N);
    for (uint32_t i = 0; i < N; i++) CHECK(x[i] == ellm_f32_to_bf16(f[i]));
    free(f);
    free(x);
    free(y);
    free(h);
    free(a);
    free(b);
    printf("conversions: %s\n", ellm_cpu_features());
}

int main(void) {
    check_conversions();
    char tmp[] = "/tmp/ellm_test_st_XXXXXX";
    CHECK(mkdtemp(tmp));
    char path[1024];
    snprintf(path, sizeof path, "%s/m.safetensors", tmp);
    ellm_error err = {0};

    /* round trip */
    st_writer *w;
    CHECK_OK(st_writer_new(&w, &err), err);
    const int64_t s1[2] = {3, 4}, s2[1] = {5}, s3[3] = {2, 1, 3};
    CHECK_OK(st_writer_add(w, "z.weight", "F32", 2, s1, 48, &err), err);
    CHECK_OK(st_writer_add(w, "a.bias", "BF16", 1, s2, 10, &err), err);
    CHECK_OK(st_writer_add(w, "m.x", "F16", 3, s3, 12, &err), err);
    CHECK_FAIL(st_writer_add(w, "bad", "F32", 1, s2, 19, &err), ELLM_E_ARG, "do not match", err);
    CHECK_FAIL(st_writer_add(w, "bad", "Q4", 1, s2, 5, &err), ELLM_E_ARG, "unknown dtype", err);
    CHECK_FAIL(st_writer_add(w, "a.bias", "BF16", 1, s2, 10, &err), ELLM_E_ARG, "twice", err);
    st_writer_set_metadata(w, "format", "pt");
    st_writer_set_metadata(w, "note", "generated");
    CHECK_OK(st_writer_write(w, path, fill, NULL, &err), err);
    st_writer_free(w);

    st_file f;
    CHECK_OK(st_parse_file(path, &f, &err), err);
    CHECK(f.n_tensors == 3 && f.data_start % 8 == 0);
    CHECK(strcmp(f.tensors[0].name, "z.weight") == 0 && strcmp(f.tensors[0].dtype, "F32") == 0);
    CHECK(f.tensors[0].n_dims == 2 && f.tensors[0].shape[0] == 3 && f.tensors[0].shape[1] == 4);
    CHECK(strcmp(f.tensors[1].name, "a.bias") == 0 && f.tensors[1].begin == f.data_start + 48);
    CHECK(strcmp(f.tensors[2].name, "m.x") == 0 && f.tensors[2].n_dims == 3 && f.tensors[2].shape[2] == 3);
    CHECK(f.tensors[2].end == f.file_size);
    CHECK(f.metadata_json && strstr(f.metadata_json, "\"note\":\"generated\""));
    uint8_t *buf;
    size_t size;
    CHECK_OK(ellm_read_file(path, &buf, &size, &err), err);
    for (size_t t = 0; t < 3; t++)
        for (uint64_t i = f.tensors[t].begin; i < f.tensors[t].end; i++)
            CHECK(buf[i] == (uint8_t)(t * 31 + (i - f.tensors[t].begin)));
    /* the buffer parser agrees with the file parser */
    st_file g;
    CHECK_OK(st_parse_buffer(buf, size, path, &g, &err), err);
    CHECK(g.n_tensors == 3 && g.tensors[2].begin == f.tensors[2].begin);
    st_free(&g);
    /* every truncation fails (file and buffer) */
    for (size_t n = 0; n < size; n++) {
        CHECK(st_parse_buffer(buf, n, "trunc", &g, &err) == ELLM_E_FORMAT);
    }
    CHECK(truncate(path, (off_t)size - 1) == 0);
    CHECK_FAIL(st_parse_file(path, &g, &err), ELLM_E_FORMAT, "truncated", err);
    CHECK(strstr(err.message, "m.safetensors") && strstr(err.message, "m.x"));
    free(buf);
    st_free(&f);
    unlink(path);

    /* a failing callback leaves no file */
    CHECK_OK(st_writer_new(&w, &err), err);
    CHECK_OK(st_writer_add(w, "t", "U8", 1, s2, 5, &err), err);
    CHECK(st_writer_write(w, "/nonexistent-dir/x.safetensors", fill, NULL, &err) == ELLM_E_IO);
    st_writer_free(w);

    /* header checks */
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", 8, ELLM_E_FORMAT,
               "not valid JSON");
    expect_bad("[1, 2]", 0, ELLM_E_FORMAT, "not a JSON object");
    expect_bad("{\"a\": {\"dtype\": \"Q4_K\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, ELLM_E_FORMAT,
               "unknown dtype");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, ELLM_E_FORMAT,
               "needs 3 elements");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8, ELLM_E_FORMAT,
               "shape[0]");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, ELLM_E_FORMAT,
               "begin <= end");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, ELLM_E_FORMAT, "data_offsets");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12, ELLM_E_FORMAT,
               "gap");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
               12, ELLM_E_FORMAT, "overlap");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, ELLM_E_FORMAT,
               "truncated");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 9, ELLM_E_FORMAT,
               "after the last tensor");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
               " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
               16, ELLM_E_FORMAT, "not valid JSON");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,2], \"data_offsets\": [0, 8]}}", 8,
               ELLM_E_UNSUPPORTED, "5 dimensions");
    expect_bad("{\"__metadata__\": {\"k\": 3}}", 0, ELLM_E_FORMAT, "not a string");
    expect_bad("{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 8]}}",
               8, ELLM_E_FORMAT, "shape[1]");
    /* header length out of range */
    uint8_t small[16] = {0};
    ellm_put_le64(small, 1ull << 40);
    CHECK_FAIL(st_parse_buffer(small, 16, "bad.safetensors", &f, &err), ELLM_E_FORMAT, "header length", err);
    ellm_put_le64(small, 100);
    CHECK_FAIL(st_parse_buffer(small, 16, "bad.safetensors", &f, &err), ELLM_E_FORMAT, "truncated", err);
    CHECK_FAIL(st_parse_buffer(small, 7, "bad.safetensors", &f, &err), ELLM_E_FORMAT, "not a safetensors", err);
    /* an empty, valid file */
    size_t es;
    uint8_t *e = make("{}", 0, &es);
    CHECK_OK(st_parse_buffer(e, es, "empty", &f, &err), err);
    CHECK(f.n_tensors == 0 && f.metadata_json == NULL);
    st_free(&f);
    free(e);
    rmdir(tmp);
    printf("safetensors: ok\n");
    return 0;
}
