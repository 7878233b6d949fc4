/* test_llama2c.c - the llama2.c reader on the real stories260K and
 * aidreams260K checkpoints, and its refusals of bad headers and sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/common.h"
#include "formats/llama2c.h"
#include "formats/source.h"
#include "formats/test_util.h"

static void check_stories(const char *data_dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", data_dir);
    ellm_error err = {0};
    src_model *m = NULL;
    CHECK_OK(src_open(path, NULL, &m, &err), err);
    CHECK(strcmp(m->format, "llama2c") == 0);
    /* embed + 5 layers x 9 + norm; shared classifier: no output.weight */
    CHECK(m->n_tensors == 1 + 5 * 9 + 1);
    CHECK(src_find(m, "output.weight") < 0);
    long wk = src_find(m, "layers.4.attention.wk.weight");
    CHECK(wk >= 0);
    CHECK(m->tensors[wk].n_dims == 2 && m->tensors[wk].shape[0] == 32 && m->tensors[wk].shape[1] == 64);
    long w2 = src_find(m, "layers.0.feed_forward.w2.weight");
    CHECK(w2 >= 0 && m->tensors[w2].shape[0] == 64 && m->tensors[w2].shape[1] == 172);
    long emb = src_find(m, "tok_embeddings.weight");
    CHECK(emb == 0 && m->tensors[0].offset == 28 && m->tensors[0].shape[0] == 512);
    /* rms_final sits right before the 512x8 freq_cis tables at the end */
    long norm = src_find(m, "norm.weight");
    CHECK(norm >= 0 && m->tensors[norm].offset == 1056540 - 512 * 8 * 4 - 64 * 4);

    /* Tensor data equals the raw floats at the computed offsets. */
    uint8_t *raw;
    size_t raw_size;
    CHECK_OK(ellm_read_file(path, &raw, &raw_size, &err), err);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const src_tensor *t = &m->tensors[i];
        float *f = malloc(t->n_bytes);
        CHECK_OK(src_read_f32(m, i, f, &err), err);
        CHECK(memcmp(f, raw + t->offset, t->n_bytes) == 0);
        free(f);
    }
    /* Norm weights of a trained model are positive, around 1; sanity. */
    float nw[64];
    CHECK_OK(src_read_f32(m, (size_t)norm, nw, &err), err);
    for (int i = 0; i < 64; i++) CHECK(isfinite(nw[i]) && fabsf(nw[i]) < 50);
    CHECK(m->source_checksum == ellm_checksum(raw, raw_size));
    free(raw);

    const src_blob *tok = src_find_blob(m, "tokenizer.bin");
    CHECK(tok && tok->size == 6227);
    json_error_t je;
    json_t *cfg = json_loads(m->config_json, 0, &je);
    CHECK(cfg);
    CHECK(json_integer_value(json_object_get(cfg, "hidden_size")) == 64);
    CHECK(json_integer_value(json_object_get(cfg, "intermediate_size")) == 172);
    CHECK(json_integer_value(json_object_get(cfg, "num_hidden_layers")) == 5);
    CHECK(json_integer_value(json_object_get(cfg, "num_attention_heads")) == 8);
    CHECK(json_integer_value(json_object_get(cfg, "num_key_value_heads")) == 4);
    CHECK(json_integer_value(json_object_get(cfg, "vocab_size")) == 512);
    CHECK(json_integer_value(json_object_get(cfg, "max_position_embeddings")) == 512);
    CHECK(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    CHECK(strcmp(json_string_value(json_object_get(cfg, "entrollm_rope_layout")), "interleaved") == 0);
    CHECK(strcmp(json_string_value(json_object_get(cfg, "model_type")), "llama") == 0);
    CHECK(fabs(json_number_value(json_object_get(cfg, "rms_norm_eps")) - 1e-5) < 1e-12);
    json_decref(cfg);
    CHECK(m->source_bytes == 1056540);
    src_close(m);
}

static void check_aidreams(const char *data_dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/aidreams260K/aidreams260K.bin", data_dir);
    ellm_error err = {0};
    src_model *m = NULL;
    CHECK_OK(src_open(path, NULL, &m, &err), err);
    CHECK(m->n_tensors == 1 + 4 * 9 + 1);
    long wk = src_find(m, "layers.3.attention.wk.weight");
    CHECK(wk >= 0 && m->tensors[wk].shape[0] == 64);
    CHECK(src_find_blob(m, "tokenizer.bin")->size == 6290);
    src_close(m);
    /* the 32000-token Llama 2 tokenizer does not belong to a 512-token model */
    char tok[1024];
    snprintf(tok, sizeof tok, "%s/llama2_tokenizer/tokenizer.bin", data_dir);
    CHECK_FAIL(src_open(path, tok, &m, &err), ELLM_E_FORMAT, "wrong tokenizer for this model", err);
    CHECK(strstr(err.message, "llama2_tokenizer/tokenizer.bin"));
    /* a SentencePiece model given as the tokenizer is carried as such */
    snprintf(tok, sizeof tok, "%s/stories260K/tok512.model", data_dir);
    char sp[1024];
    snprintf(sp, sizeof sp, "%s/stories260K/stories260K.bin", data_dir);
    CHECK_OK(src_open(sp, tok, &m, &err), err);
    CHECK(m->n_blobs == 1 && src_find_blob(m, "tokenizer.model") && src_find_blob(m, "tokenizer.model")->size == 7645);
    src_close(m);
}

/* Writes a synthetic checkpoint with an unshared classifier (negative vocab)
 * and checks output.weight is the last array after freq_cis. */
static void check_unshared(const char *tmp) {
    int32_t h[7] = {16, 24, 2, 4, 2, -10, 8};
    uint64_t dim = 16, hid = 24, L = 2, kv = 8, V = 10, head = 4, seq = 8;
    uint64_t floats = V * dim + L * dim + L * dim * dim * 2 + 2 * L * kv * dim + L * dim +
                      3 * L * hid * dim + dim + seq * head + V * dim;
    char path[1024];
    snprintf(path, sizeof path, "%s/unshared.bin", tmp);
    FILE *f = fopen(path, "wb");
    fwrite(h, 4, 7, f);
    for (uint64_t i = 0; i < floats; i++) {
        float v = (float)i;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
    ellm_error err = {0};
    src_model *m = NULL;
    /* no tokenizer beside it: opens without one */
    CHECK_OK(src_open_llama2c(path, NULL, &m, &err), err);
    long out = src_find(m, "output.weight");
    CHECK(out == (long)m->n_tensors - 1);
    float *w = malloc(V * dim * 4);
    CHECK_OK(src_read_f32(m, (size_t)out, w, &err), err);
    CHECK(w[0] == (float)(floats - V * dim) && w[V * dim - 1] == (float)(floats - 1));
    free(w);
    CHECK(src_find_blob(m, "tokenizer.bin") == NULL);
    CHECK(strstr(m->config_json, "\"tie_word_embeddings\": false"));
    src_close(m);

    /* a tokenizer with too few entries is refused */
    char tokp[1024];
    snprintf(tokp, sizeof tokp, "%s/tok_short.bin", tmp);
    f = fopen(tokp, "wb");
    int32_t maxlen = 1;
    fwrite(&maxlen, 4, 1, f);
    for (int i = 0; i < 3; i++) {
        float sc = 0;
        int32_t len = 1;
        fwrite(&sc, 4, 1, f);
        fwrite(&len, 4, 1, f);
        fputc('a', f);
    }
    fclose(f);
    CHECK(src_open_llama2c(path, tokp, &m, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "tok_short.bin") && strstr(err.message, "10 tokens"));

    /* truncated: one float short */
    CHECK(truncate(path, (off_t)(28 + 4 * floats - 4)) == 0);
    CHECK(src_open(path, NULL, &m, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "unshared.bin") && strstr(err.message, "truncated"));
    /* trailing data */
    CHECK(truncate(path, (off_t)(28 + 4 * floats + 4)) == 0);
    CHECK(src_open(path, NULL, &m, &err) == ELLM_E_FORMAT);
    CHECK(strstr(err.message, "trailing data"));
    CHECK(truncate(path, (off_t)(28 + 4 * floats)) == 0); /* valid again, for check_v1 */
    unlink(tokp);
}

static void check_bad_headers(void) {
    ellm_error err = {0};
    llama2c_config c;
    uint8_t b[28];
    const int32_t good[7] = {64, 172, 5, 8, 4, 512, 512};
    struct {
        int field;
        int32_t value;
        const char *expect;
    } cases[] = {
        {0, 0, "dim = 0"},          {0, -64, "dim = -64"},     {1, 0, "hidden_dim"},
        {2, 0, "n_layers"},         {2, 100000, "n_layers"},   {3, 0, "n_heads"},
        {3, 7, "multiple of n_heads"}, {4, 0, "n_kv_heads"},   {4, 16, "n_kv_heads"},
        {4, 3, "multiple of n_kv_heads"}, {5, 0, "vocab_size"}, {5, INT32_MIN, "vocab_size"},
        {6, 0, "seq_len"},          {6, -1, "seq_len"},
    };
    for (size_t i = 0; i < ELLM_ARRAY_LEN(cases); i++) {
        int32_t h[7];
        memcpy(h, good, sizeof h);
        h[cases[i].field] = cases[i].value;
        memcpy(b, h, 28);
        CHECK(llama2c_parse_header(b, 28, 1056540, "x.bin", &c, &err) == ELLM_E_FORMAT);
        if (!strstr(err.message, cases[i].expect) || !strstr(err.message, "x.bin")) {
            fprintf(stderr, "case %zu: %s\n", i, err.message);
            CHECK(0);
        }
    }
    memcpy(b, good, 28);
    CHECK_OK(llama2c_parse_header(b, 28, 1056540, "x.bin", &c, &err), err);
    CHECK(llama2c_parse_header(b, 27, 1056540, "x.bin", &c, &err) == ELLM_E_FORMAT);
    CHECK(llama2c_parse_header(b, 28, 1056536, "x.bin", &c, &err) == ELLM_E_FORMAT);
    uint8_t v[64] = {0};
    ellm_put_le32(v, 0x616b3432u);
    ellm_put_le32(v + 4, 2);
    memcpy(v + 8, good, 28);
    CHECK_FAIL(llama2c_parse_header(v, 64, 1056540, "x.bin", &c, &err), ELLM_E_UNSUPPORTED, "Q8_0", err);
    ellm_put_le32(v + 4, 9);
    CHECK_FAIL(llama2c_parse_header(v, 64, 1056540, "x.bin", &c, &err), ELLM_E_FORMAT, "unknown version 9", err);
    ellm_put_le32(v + 4, 1);
    CHECK_FAIL(llama2c_parse_header(v, 30, 1056540, "x.bin", &c, &err), ELLM_E_FORMAT, "truncated", err);
    v[36] = 2;
    CHECK_FAIL(llama2c_parse_header(v, 64, 1056540, "x.bin", &c, &err), ELLM_E_FORMAT, "shared_classifier", err);
    v[36] = 1;
    ellm_put_le32(v + 8 + 20, (uint32_t)-512);
    CHECK_FAIL(llama2c_parse_header(v, 64, 1056540, "x.bin", &c, &err), ELLM_E_FORMAT, "vocab_size", err);
}

/* Rewrites a version-0 checkpoint as export.py's version 1 (norms first,
 * no RoPE tables) and checks every tensor reads back identically. */
static void write_v1(src_model *v0, const char *out, int shared) {
    FILE *f = fopen(out, "wb");
    CHECK(f);
    uint8_t hdr[256] = {0};
    ellm_put_le32(hdr, 0x616b3432u);
    ellm_put_le32(hdr + 4, 1);
    json_error_t je;
    json_t *cfg = json_loads(v0->config_json, 0, &je);
    const char *keys[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "vocab_size", "max_position_embeddings"};
    for (int i = 0; i < 7; i++) ellm_put_le32(hdr + 8 + 4 * i, (uint32_t)json_integer_value(json_object_get(cfg, keys[i])));
    int L = (int)json_integer_value(json_object_get(cfg, "num_hidden_layers"));
    json_decref(cfg);
    hdr[36] = (uint8_t)shared;
    fwrite(hdr, 1, 256, f);
    /* export.py version1_export order; %d = layer */
    const char *order[] = {"layers.%d.attention_norm.weight", "layers.%d.ffn_norm.weight", "norm.weight",
                           "tok_embeddings.weight", "layers.%d.attention.wq.weight", "layers.%d.attention.wk.weight",
                           "layers.%d.attention.wv.weight", "layers.%d.attention.wo.weight",
                           "layers.%d.feed_forward.w1.weight", "layers.%d.feed_forward.w2.weight",
                           "layers.%d.feed_forward.w3.weight", "output.weight"};
    for (size_t k = 0; k < ELLM_ARRAY_LEN(order) - (shared ? 1 : 0); k++) {
        bool per_layer = strstr(order[k], "%d") != NULL;
        for (int l = 0; l < (per_layer ? L : 1); l++) {
            char name[96];
            snprintf(name, sizeof name, order[k], l);
            long i = src_find(v0, name);
            CHECK(i >= 0);
            float *w = malloc(v0->tensors[i].n_bytes);
            ellm_error err = {0};
            CHECK_OK(src_read_f32(v0, (size_t)i, w, &err), err);
            fwrite(w, 1, v0->tensors[i].n_bytes, f);
            free(w);
        }
    }
    fclose(f);
}

static void check_v1(const char *data_dir, const char *tmp) {
    char v0p[1024], v1p[1024], unsh[1024];
    snprintf(v0p, sizeof v0p, "%s/stories260K/stories260K.bin", data_dir);
    snprintf(v1p, sizeof v1p, "%s/stories_v1.bin", tmp);
    snprintf(unsh, sizeof unsh, "%s/unshared.bin", tmp);
    ellm_error err = {0};
    src_model *a, *b;
    for (int shared = 1; shared >= 0; shared--) {
        CHECK_OK(src_open(shared ? v0p : unsh, NULL, &a, &err), err);
        write_v1(a, v1p, shared);
        char tok[1024];
        snprintf(tok, sizeof tok, "%s/stories260K/tok512.bin", data_dir);
        CHECK_OK(src_open(v1p, shared ? tok : NULL, &b, &err), err);
        CHECK(a->n_tensors == b->n_tensors && b->tensors[0].offset == 256);
        for (size_t i = 0; i < a->n_tensors; i++) {
            long j = src_find(b, a->tensors[i].name);
            CHECK(j >= 0 && b->tensors[j].shape[0] == a->tensors[i].shape[0] &&
                  b->tensors[j].shape[1] == a->tensors[i].shape[1]);
            float *x = malloc(a->tensors[i].n_bytes), *y = malloc(a->tensors[i].n_bytes);
            CHECK_OK(src_read_f32(a, i, x, &err), err);
            CHECK_OK(src_read_f32(b, (size_t)j, y, &err), err);
            CHECK(memcmp(x, y, a->tensors[i].n_bytes) == 0);
            free(x);
            free(y);
        }
        CHECK(strcmp(a->config_json, b->config_json) == 0);
        src_close(a);
        src_close(b);
        uint64_t size;
        CHECK_OK(ellm_file_size(v1p, &size, &err), err);
        CHECK(truncate(v1p, (off_t)size - 4) == 0);
        CHECK_FAIL(src_open(v1p, NULL, &b, &err), ELLM_E_FORMAT, "version-1 header", err);
        CHECK(strstr(err.message, "truncated"));
        CHECK(truncate(v1p, 100) == 0);
        CHECK_FAIL(src_open(v1p, NULL, &b, &err), ELLM_E_FORMAT, "truncated", err);
    }
    unlink(v1p);
}

int main(void) {
    const char *data = test_data_dir();
    char tmp[] = "/tmp/ellm_test_llama2c_XXXXXX";
    CHECK(mkdtemp(tmp));
    check_stories(data);
    check_aidreams(data);
    check_unshared(tmp);
    check_v1(data, tmp);
    check_bad_headers();
    /* a file that does not exist */
    ellm_error err = {0};
    src_model *m;
    CHECK(src_open("/nonexistent/model.bin", NULL, &m, &err) == ELLM_E_IO);
    CHECK(strstr(err.message, "/nonexistent/model.bin"));
    char up[1024];
    snprintf(up, sizeof up, "%s/unshared.bin", tmp);
    unlink(up);
    rmdir(tmp);
    printf("llama2c: ok\n");
    return 0;
}
