/* test_gguf.c - GGUF parser on the real vocabulary GGUFs, writer round trips
 * (metadata copied key by key, tensors of each float type), and refusals of
 * truncated or corrupted files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/gguf.h"
#include "formats/test_util.h"

static bool str_eq(gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static void load(const char *dir, const char *file, uint8_t **buf, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/%s", dir, file);
    ellm_error err = {0};
    CHECK_OK(ellm_read_file(path, buf, size, &err), err);
}

/* Copies every key into a writer, serialises, re-parses: every key must come
 * back with the same type and bytes. */
static void check_copy_round_trip(const gguf_ctx *src) {
    ellm_error err = {0};
    gguf_writer *w;
    CHECK_OK(gguf_writer_new(&w, &err), err);
    for (uint64_t i = 0; i < src->n_kv; i++) gguf_writer_copy_kv(w, src, &src->kv[i]);
    uint8_t *buf;
    size_t size;
    CHECK_OK(gguf_writer_to_buffer(w, &buf, &size, &err), err);
    gguf_ctx back;
    CHECK_OK(gguf_parse(buf, size, "round-trip", &back, &err), err);
    CHECK(back.n_kv == src->n_kv && back.n_tensors == 0 && back.version == 3);
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const gguf_kv *a = &src->kv[i], *b = &back.kv[i];
        CHECK(a->key.len == b->key.len && memcmp(a->key.ptr, b->key.ptr, a->key.len) == 0);
        CHECK(a->type == b->type);
        if (a->type == GGUF_TYPE_STRING) {
            CHECK(a->str.len == b->str.len && memcmp(a->str.ptr, b->str.ptr, a->str.len) == 0);
        } else if (a->type == GGUF_TYPE_ARRAY) {
            CHECK(a->arr_type == b->arr_type && a->arr_len == b->arr_len);
            if (a->arr_type == GGUF_TYPE_STRING) {
                gguf_str *x, *y;
                CHECK_OK(gguf_str_array(src, a, &x, &err), err);
                CHECK_OK(gguf_str_array(&back, b, &y, &err), err);
                for (uint64_t k = 0; k < a->arr_len; k++)
                    CHECK(x[k].len == y[k].len && memcmp(x[k].ptr, y[k].ptr, x[k].len) == 0);
                free(x);
                free(y);
            }
        } else {
            CHECK(memcmp(&a->v, &b->v, sizeof a->v) == 0);
        }
    }
    gguf_free(&back);
    /* every strict prefix of the serialised metadata must fail cleanly */
    size_t step = size / 97 + 1;
    for (size_t n = 0; n < size; n += step) {
        CHECK(gguf_parse(buf, n, "prefix", &back, &err) == ELLM_E_FORMAT);
    }
    free(buf);
    gguf_writer_free(w);
}

static void check_vocab_files(const char *dir) {
    ellm_error err = {0};
    struct {
        const char *file, *arch, *model;
        uint64_t n_tokens;
        const char *tok1;
    } cases[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", "llama", 32000, "<s>"},
        {"ggml-vocab-phi-3.gguf", "phi3", "llama", 32064, "<s>"},
        {"ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 50257, "\""},
        {"ggml-vocab-starcoder.gguf", "starcoder2", "gpt2", 49152, "<fim_prefix>"},
    };
    for (size_t c = 0; c < ELLM_ARRAY_LEN(cases); c++) {
        uint8_t *buf;
        size_t size;
        load(dir, cases[c].file, &buf, &size);
        gguf_ctx g;
        CHECK_OK(gguf_parse(buf, size, cases[c].file, &g, &err), err);
        CHECK(g.version == 3 && g.n_tensors == 0);
        gguf_str s;
        CHECK(gguf_get_str(&g, "general.architecture", &s) == 0 && str_eq(s, cases[c].arch));
        CHECK(gguf_get_str(&g, "tokenizer.ggml.model", &s) == 0 && str_eq(s, cases[c].model));
        const gguf_kv *toks = gguf_find(&g, "tokenizer.ggml.tokens");
        CHECK(toks && toks->type == GGUF_TYPE_ARRAY && toks->arr_type == GGUF_TYPE_STRING);
        CHECK(toks->arr_len == cases[c].n_tokens);
        gguf_str *items;
        CHECK_OK(gguf_str_array(&g, toks, &items, &err), err);
        if (!str_eq(items[1], cases[c].tok1)) {
            fprintf(stderr, "%s: token 1 is '%.*s'\n", cases[c].file, (int)items[1].len, items[1].ptr);
            CHECK(0);
        }
        free(items);
        /* type mismatches are refused by the getters */
        uint64_t u;
        double f;
        CHECK(gguf_get_u64(&g, "general.architecture", &u) == -1);
        CHECK(gguf_get_str(&g, "no.such.key", &s) == -1);
        CHECK(gguf_get_f64(&g, "tokenizer.ggml.tokens", &f) == -1);
        /* a string array of the wrong type is refused by gguf_str_array */
        const gguf_kv *scores = gguf_find(&g, "tokenizer.ggml.scores");
        if (scores) CHECK(gguf_str_array(&g, scores, &items, &err) == ELLM_E_FORMAT);
        check_copy_round_trip(&g);
        gguf_free(&g);
        /* truncated real files fail with a message naming the file */
        for (size_t n = 0; n < size; n += size / 13 + 1) {
            CHECK_FAIL(gguf_parse(buf, n, cases[c].file, &g, &err), ELLM_E_FORMAT, cases[c].file, err);
        }
        free(buf);
    }
    /* Phi-3's hyperparameters (Phi-3-mini-4k-instruct) */
    uint8_t *buf;
    size_t size;
    load(dir, "ggml-vocab-phi-3.gguf", &buf, &size);
    gguf_ctx g;
    CHECK_OK(gguf_parse(buf, size, "phi-3", &g, &err), err);
    uint64_t v;
    double f;
    CHECK(gguf_get_u64(&g, "phi3.embedding_length", &v) == 0 && v == 3072);
    CHECK(gguf_get_u64(&g, "phi3.feed_forward_length", &v) == 0 && v == 8192);
    CHECK(gguf_get_u64(&g, "phi3.block_count", &v) == 0 && v == 32);
    CHECK(gguf_get_u64(&g, "phi3.context_length", &v) == 0 && v == 4096);
    CHECK(gguf_get_f64(&g, "phi3.attention.layer_norm_rms_epsilon", &f) == 0 && fabs(f - 1e-5) < 1e-9);
    CHECK(gguf_get_u64(&g, "tokenizer.ggml.bos_token_id", &v) == 0 && v == 1);
    gguf_free(&g);
    free(buf);
}

typedef struct tdata {
    const void *ptrs[4];
    size_t sizes[4];
} tdata;

static ellm_status give(void *user, size_t index, void *dst, size_t n, ellm_error *err) {
    tdata *t = user;
    if (n != t->sizes[index]) return ellm_fail(err, ELLM_E_INTERNAL, "size mismatch for %zu", index);
    memcpy(dst, t->ptrs[index], n);
    return ELLM_OK;
}

static ellm_status fail_cb(void *user, size_t index, void *dst, size_t n, ellm_error *err) {
    return ellm_fail(err, ELLM_E_IO, "callback failed at tensor %zu", index);
}

static void check_tensor_round_trip(const char *tmp) {
    ellm_error err = {0};
    float a[3 * 5];
    uint16_t b[7], c[2 * 3 * 4];
    for (int i = 0; i < 15; i++) a[i] = (float)i * 0.25f - 1;
    for (int i = 0; i < 7; i++) b[i] = ellm_f32_to_f16((float)i / 3);
    for (int i = 0; i < 24; i++) c[i] = ellm_f32_to_bf16((float)-i);
    gguf_writer *w;
    CHECK_OK(gguf_writer_new(&w, &err), err);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 2);
    gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_writer_set_bool(w, "general.flag", 1);
    const int64_t sa[2] = {3, 5}, sb[1] = {7}, sc[3] = {2, 3, 4};
    gguf_writer_add_tensor(w, "a", 2, sa, GGML_TYPE_F32);
    gguf_writer_add_tensor(w, "b", 1, sb, GGML_TYPE_F16);
    gguf_writer_add_tensor(w, "c", 3, sc, GGML_TYPE_BF16);
    char path[1024];
    snprintf(path, sizeof path, "%s/t.gguf", tmp);
    /* a failing callback leaves no file behind */
    CHECK(gguf_writer_write(w, path, fail_cb, NULL, &err) == ELLM_E_IO);
    CHECK(!ellm_path_exists(path));
    tdata td = {{a, b, c}, {sizeof a, sizeof b, sizeof c}};
    CHECK_OK(gguf_writer_write(w, path, give, &td, &err), err);
    gguf_writer_free(w);

    uint8_t *buf;
    size_t size;
    CHECK_OK(ellm_read_file(path, &buf, &size, &err), err);
    gguf_ctx g;
    CHECK_OK(gguf_parse(buf, size, path, &g, &err), err);
    CHECK(g.n_tensors == 3 && g.n_kv == 4 && g.alignment == 32 && g.data_offset % 32 == 0);
    uint64_t v;
    double f;
    gguf_str s;
    CHECK(gguf_get_u64(&g, "llama.block_count", &v) == 0 && v == 2);
    CHECK(gguf_get_f64(&g, "llama.rope.freq_base", &f) == 0 && f == 10000.0);
    CHECK(gguf_get_u64(&g, "general.flag", &v) == 0 && v == 1);
    CHECK(gguf_get_str(&g, "general.architecture", &s) == 0 && str_eq(s, "llama"));
    const gguf_tensor_info *t = g.tensors;
    CHECK(str_eq(t[0].name, "a") && t[0].n_dims == 2 && t[0].ne[0] == 5 && t[0].ne[1] == 3);
    CHECK(t[0].ggml_type == GGML_TYPE_F32);
    CHECK(str_eq(t[2].name, "c") && t[2].ne[0] == 4 && t[2].ne[1] == 3 && t[2].ne[2] == 2);
    CHECK(t[1].ggml_type == GGML_TYPE_F16 && t[2].ggml_type == GGML_TYPE_BF16);
    CHECK(memcmp(buf + g.data_offset + t[0].offset, a, sizeof a) == 0);
    CHECK(memcmp(buf + g.data_offset + t[1].offset, b, sizeof b) == 0);
    CHECK(memcmp(buf + g.data_offset + t[2].offset, c, sizeof c) == 0);
    for (int i = 0; i < 3; i++) CHECK(t[i].offset % 32 == 0);

    /* version 2 has the same layout */
    buf[4] = 2;
    gguf_ctx v2;
    CHECK_OK(gguf_parse(buf, size, path, &v2, &err), err);
    CHECK(v2.version == 2 && v2.n_tensors == 3);
    gguf_free(&v2);
    buf[4] = 3;

    /* prefix parsing: a short prefix asks for more, the whole file parses */
    bool more = false;
    gguf_ctx g2;
    CHECK(gguf_parse_prefix(buf, 40, size, path, &g2, &more, &err) == ELLM_E_FORMAT && more);
    CHECK_OK(gguf_parse_prefix(buf, (size_t)g.data_offset, size, path, &g2, &more, &err), err);
    gguf_free(&g2);

    /* truncating tensor data is caught (names the tensor) */
    CHECK_FAIL(gguf_parse(buf, size - 40, path, &g2, &err), ELLM_E_FORMAT, "tensor c", err);

    /* corruptions */
    uint8_t *bad = malloc(size);
    memcpy(bad, buf, size);
    bad[0] = 'X';
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "not a GGUF file", err);
    memcpy(bad, buf, size);
    ellm_put_le32(bad + 4, 1);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_UNSUPPORTED, "version 1", err);
    ellm_put_le32(bad + 4, 0x03000000u);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_UNSUPPORTED, "big-endian", err);
    ellm_put_le32(bad + 4, 7);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "version 7", err);
    memcpy(bad, buf, size);
    ellm_put_le64(bad + 16, 1ull << 50); /* n_kv */
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "keys", err);
    /* first key's length made huge */
    memcpy(bad, buf, size);
    ellm_put_le64(bad + 24, 1ull << 62);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "absurd length", err);
    /* tensor a's type made unknown, then quantized with a partial block */
    size_t tinfo = (size_t)((const uint8_t *)t[0].name.ptr - buf) + 1 + 4 + 16;
    memcpy(bad, buf, size);
    ellm_put_le32(bad + tinfo, 99);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "unknown ggml type 99", err);
    ellm_put_le32(bad + tinfo, 12);
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "Q4_K blocks", err);
    memcpy(bad, buf, size);
    ellm_put_le64(bad + tinfo + 4, 4); /* offset of tensor a not aligned */
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "not aligned", err);
    memcpy(bad, buf, size);
    ellm_put_le32(bad + tinfo - 16 - 4, 5); /* n_dims */
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "5 dimensions", err);
    memcpy(bad, buf, size);
    ellm_put_le64(bad + tinfo - 16, 0); /* ne[0] = 0 */
    CHECK_FAIL(gguf_parse(bad, size, "bad", &g2, &err), ELLM_E_FORMAT, "bad shape", err);
    free(bad);
    gguf_free(&g);
    free(buf);
    unlink(path);

    CHECK(strcmp(ggml_type_name(12), "Q4_K") == 0 && strcmp(ggml_type_name(30), "BF16") == 0);
    CHECK(strcmp(ggml_type_name(4), "unknown") == 0 && strcmp(ggml_type_name(100000), "unknown") == 0);
    uint64_t nb;
    CHECK(gguf_tensor_bytes(8, 64, &nb) && nb == 68);
    CHECK(!gguf_tensor_bytes(8, 33, &nb));

    /* a writer given an invalid tensor reports it at write time */
    CHECK_OK(gguf_writer_new(&w, &err), err);
    const int64_t s5[5] = {1, 1, 1, 1, 1};
    gguf_writer_add_tensor(w, "x", 5, s5, GGML_TYPE_F32);
    CHECK_FAIL(gguf_writer_write(w, path, give, &td, &err), ELLM_E_ARG, "tensor x", err);
    gguf_writer_free(w);
}

int main(void) {
    const char *dir = test_data_dir();
    char tmp[] = "/tmp/ellm_test_gguf_XXXXXX";
    CHECK(mkdtemp(tmp));
    check_vocab_files(dir);
    check_tensor_round_trip(tmp);
    rmdir(tmp);
    printf("gguf: ok\n");
    return 0;
}
