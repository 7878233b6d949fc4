/* test_synth.c - generated models: real tensor names and shapes per
 * architecture (read back through the HF reader), determinism, per-tensor
 * independence from the layer count, plausible distributions, bad configs. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/source.h"
#include "formats/synth.h"
#include "formats/test_util.h"

static void rm_dir(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void shape_is(const src_model *m, const char *name, int64_t r, int64_t c) {
    long i = src_find(m, name);
    if (i < 0 || m->tensors[i].shape[0] != r || (c && m->tensors[i].shape[1] != c) ||
        m->tensors[i].n_dims != (c ? 2 : 1)) {
        fprintf(stderr, "tensor %s: expected [%lld, %lld]\n", name, (long long)r, (long long)c);
        CHECK(0);
    }
}

static void stats(src_model *m, const char *name, double *mean, double *sd) {
    long i = src_find(m, name);
    CHECK(i >= 0);
    const src_tensor *t = &m->tensors[i];
    float *v = malloc(t->n_elements * 4);
    ellm_error err = {0};
    CHECK_OK(src_read_f32(m, (size_t)i, v, &err), err);
    double s = 0, s2 = 0;
    for (uint64_t k = 0; k < t->n_elements; k++) s += v[k];
    *mean = s / (double)t->n_elements;
    for (uint64_t k = 0; k < t->n_elements; k++) s2 += (v[k] - *mean) * (v[k] - *mean);
    *sd = sqrt(s2 / (double)t->n_elements);
    free(v);
}

/* The real config of a model folder with its big dimensions shrunk. */
static char *shrunk_config(const char *data, const char *model, int64_t hidden, int64_t heads, int64_t kv,
                           int64_t inter, int64_t vocab) {
    char p[1024];
    snprintf(p, sizeof p, "%s/hf/%s/config.json", data, model);
    json_error_t je;
    json_t *c = json_load_file(p, 0, &je);
    CHECK(c);
    json_object_set_new(c, "hidden_size", json_integer(hidden));
    json_object_set_new(c, "num_attention_heads", json_integer(heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(kv));
    json_object_set_new(c, "intermediate_size", json_integer(inter));
    json_object_set_new(c, "vocab_size", json_integer(vocab));
    json_object_del(c, "head_dim");
    char *s = json_dumps(c, 0);
    json_decref(c);
    return s;
}

/* smollm-135m at its real shape (one layer). */
static void check_smollm_real(const char *tmp) {
    ellm_error err = {0};
    char d1[1024];
    snprintf(d1, sizeof d1, "%s/real", tmp);
    const char *cfg = ellm_synth_builtin_config("smollm-135m");
    CHECK(cfg);
    CHECK_OK(ellm_synth(cfg, 1, 42, "bf16", d1, NULL, NULL, &err), err);
    src_model *a;
    CHECK_OK(src_open(d1, NULL, &a, &err), err);
    CHECK(a->n_tensors == 1 + 9 + 1); /* tied: no lm_head */
    shape_is(a, "model.embed_tokens.weight", 49152, 576);
    shape_is(a, "model.layers.0.self_attn.q_proj.weight", 576, 576);
    shape_is(a, "model.layers.0.self_attn.k_proj.weight", 192, 576);
    shape_is(a, "model.layers.0.self_attn.v_proj.weight", 192, 576);
    shape_is(a, "model.layers.0.self_attn.o_proj.weight", 576, 576);
    shape_is(a, "model.layers.0.mlp.gate_proj.weight", 1536, 576);
    shape_is(a, "model.layers.0.mlp.up_proj.weight", 1536, 576);
    shape_is(a, "model.layers.0.mlp.down_proj.weight", 576, 1536);
    shape_is(a, "model.layers.0.input_layernorm.weight", 576, 0);
    shape_is(a, "model.layers.0.post_attention_layernorm.weight", 576, 0);
    shape_is(a, "model.norm.weight", 576, 0);
    CHECK(src_find(a, "lm_head.weight") < 0 && a->tensors[0].dtype == ELLM_DTYPE_BF16);
    /* distributions */
    double mean, sd;
    stats(a, "model.layers.0.mlp.gate_proj.weight", &mean, &sd);
    CHECK(fabs(mean) < 2e-4 && fabs(sd - 0.02) < 4e-4);
    stats(a, "model.embed_tokens.weight", &mean, &sd);
    CHECK(fabs(mean) < 1e-4 && fabs(sd - 0.02) < 2e-4);
    stats(a, "model.layers.0.input_layernorm.weight", &mean, &sd);
    CHECK(fabs(mean - 1) < 5e-3 && fabs(sd - 0.02) < 5e-3);
    json_error_t je;
    json_t *j = json_loads(a->config_json, 0, &je);
    CHECK(json_integer_value(json_object_get(j, "num_hidden_layers")) == 1);
    CHECK(strstr(json_string_value(json_object_get(j, "entrollm_weights")), "generated, not trained"));
    CHECK(json_integer_value(json_object_get(j, "num_key_value_heads")) == 3);
    json_decref(j);
    src_close(a);
    rm_dir(d1);
}

/* Determinism: same seed same bytes; a tensor does not depend on the layer
 * count; another seed differs (small llama shape). */
static void check_determinism(const char *tmp) {
    ellm_error err = {0};
    char d1[1024], d2[1024], d3[1024];
    snprintf(d1, sizeof d1, "%s/s1", tmp);
    snprintf(d2, sizeof d2, "%s/s2", tmp);
    snprintf(d3, sizeof d3, "%s/s3", tmp);
    const char *cfg = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 3000, "
                      "\"num_hidden_layers\": 7, \"num_attention_heads\": 4, \"vocab_size\": 1000}";
    CHECK_OK(ellm_synth(cfg, 1, 42, "f16", d1, NULL, NULL, &err), err);
    CHECK_OK(ellm_synth(cfg, 1, 42, "f16", d2, NULL, NULL, &err), err);
    CHECK_OK(ellm_synth(cfg, 2, 42, "f16", d3, NULL, NULL, &err), err);
    src_model *a, *b, *c;
    CHECK_OK(src_open(d1, NULL, &a, &err), err);
    CHECK_OK(src_open(d2, NULL, &b, &err), err);
    CHECK_OK(src_open(d3, NULL, &c, &err), err);
    CHECK(a->n_tensors == 12 && c->n_tensors == 21 && src_find(a, "lm_head.weight") == 11);
    CHECK(a->source_checksum == b->source_checksum);
    CHECK(a->source_checksum != c->source_checksum);
    const char *same[] = {"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight",
                          "lm_head.weight"};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(same); i++) {
        const src_tensor *x = &a->tensors[src_find(a, same[i])], *y = &c->tensors[src_find(c, same[i])];
        uint8_t *p = malloc(x->n_bytes), *q = malloc(y->n_bytes);
        CHECK_OK(ellm_pread_exact(a->fds[x->file_index], "a", p, x->n_bytes, x->offset, &err), err);
        CHECK_OK(ellm_pread_exact(c->fds[y->file_index], "c", q, y->n_bytes, y->offset, &err), err);
        CHECK(x->n_bytes == y->n_bytes && memcmp(p, q, x->n_bytes) == 0);
        free(p);
        free(q);
    }
    /* gate_proj spans many blocks: no two blocks repeat */
    double mean, sd;
    stats(a, "model.layers.0.mlp.gate_proj.weight", &mean, &sd);
    CHECK(fabs(mean) < 2e-4 && fabs(sd - 0.02) < 4e-4);
    src_close(a);
    src_close(b);
    src_close(c);
    CHECK_OK(ellm_synth(cfg, 1, 43, "f16", d2, NULL, NULL, &err), err);
    CHECK_OK(src_open(d2, NULL, &b, &err), err);
    CHECK_OK(src_open(d1, NULL, &a, &err), err);
    CHECK(a->source_checksum != b->source_checksum);
    src_close(a);
    src_close(b);
    rm_dir(d1);
    rm_dir(d2);
    rm_dir(d3);
}

static void check_arches(const char *data, const char *tmp) {
    ellm_error err = {0};
    char d[1024];
    snprintf(d, sizeof d, "%s/arch", tmp);
    src_model *m;
    /* phi3 (Phi-3.5-mini's real config, shrunk): fused qkv and gate_up, lm_head */
    char *cfg = shrunk_config(data, "phi-3.5-mini-instruct", 64, 8, 4, 96, 300);
    CHECK_OK(ellm_synth(cfg, 2, 1, "f16", d, NULL, NULL, &err), err);
    free(cfg);
    CHECK_OK(src_open(d, NULL, &m, &err), err);
    CHECK(m->n_tensors == 1 + 2 * 6 + 1 + 1);
    shape_is(m, "model.layers.1.self_attn.qkv_proj.weight", 64 + 2 * 32, 64);
    shape_is(m, "model.layers.1.mlp.gate_up_proj.weight", 192, 64);
    shape_is(m, "model.layers.1.mlp.down_proj.weight", 64, 96);
    shape_is(m, "lm_head.weight", 300, 64);
    CHECK(src_find(m, "model.layers.0.self_attn.q_proj.weight") < 0);
    CHECK(strstr(m->config_json, "longrope")); /* the rest of the real config is kept */
    src_close(m);
    rm_dir(d);
    /* smollm2 (real config, shrunk) */
    cfg = shrunk_config(data, "smollm2-1.7b-resaved", 64, 4, 4, 128, 100);
    CHECK_OK(ellm_synth(cfg, 1, 1, "f32", d, NULL, NULL, &err), err);
    free(cfg);
    CHECK_OK(src_open(d, NULL, &m, &err), err);
    CHECK(m->n_tensors == 11 && src_find(m, "lm_head.weight") < 0 && m->tensors[0].dtype == ELLM_DTYPE_F32);
    src_close(m);
    rm_dir(d);
    /* mistral built-in (GQA, explicit head_dim 128) at a small hidden size */
    json_error_t je;
    json_t *j = json_loads(ellm_synth_builtin_config("mistral-7b"), 0, &je);
    CHECK(j);
    json_object_set_new(j, "hidden_size", json_integer(256));
    json_object_set_new(j, "intermediate_size", json_integer(96));
    json_object_set_new(j, "vocab_size", json_integer(100));
    json_object_set_new(j, "head_dim", json_integer(16));
    cfg = json_dumps(j, 0);
    json_decref(j);
    CHECK_OK(ellm_synth(cfg, 1, 1, "bf16", d, NULL, NULL, &err), err);
    free(cfg);
    CHECK_OK(src_open(d, NULL, &m, &err), err);
    shape_is(m, "model.layers.0.self_attn.q_proj.weight", 32 * 16, 256);
    shape_is(m, "model.layers.0.self_attn.k_proj.weight", 8 * 16, 256);
    shape_is(m, "model.layers.0.self_attn.o_proj.weight", 256, 32 * 16);
    shape_is(m, "lm_head.weight", 100, 256);
    src_close(m);
    rm_dir(d);
    /* qwen2 built-in: q/k/v biases */
    j = json_loads(ellm_synth_builtin_config("qwen2-0.5b"), 0, &je);
    json_object_set_new(j, "hidden_size", json_integer(56));
    json_object_set_new(j, "intermediate_size", json_integer(64));
    json_object_set_new(j, "vocab_size", json_integer(100));
    cfg = json_dumps(j, 0);
    json_decref(j);
    CHECK_OK(ellm_synth(cfg, 1, 1, "f32", d, NULL, NULL, &err), err);
    free(cfg);
    CHECK_OK(src_open(d, NULL, &m, &err), err);
    shape_is(m, "model.layers.0.self_attn.q_proj.bias", 56, 0);
    shape_is(m, "model.layers.0.self_attn.k_proj.bias", 8, 0);
    shape_is(m, "model.layers.0.self_attn.v_proj.bias", 8, 0);
    CHECK(m->n_tensors == 1 + 12 + 1);
    src_close(m);
    rm_dir(d);
    /* every built-in parses and names a supported architecture */
    for (const char *const *n = ellm_synth_builtin_names(); *n; n++) {
        j = json_loads(ellm_synth_builtin_config(*n), 0, &je);
        CHECK(j && json_string_value(json_object_get(j, "model_type")));
        json_decref(j);
    }
    CHECK(ellm_synth_builtin_config("nope") == NULL);
}

static void check_errors(const char *tmp) {
    ellm_error err = {0};
    char d[1024];
    snprintf(d, sizeof d, "%s/bad", tmp);
    CHECK_FAIL(ellm_synth("{\"model_type\": \"llama\",", 0, 1, "f32", d, NULL, NULL, &err), ELLM_E_FORMAT,
               "not valid JSON", err);
    CHECK_FAIL(ellm_synth("{\"model_type\": \"gpt2\"}", 0, 1, "f32", d, NULL, NULL, &err), ELLM_E_UNSUPPORTED,
               "gpt2", err);
    CHECK_FAIL(ellm_synth("{\"model_type\": \"llama\", \"hidden_size\": 64}", 0, 1, "f32", d, NULL, NULL, &err),
               ELLM_E_FORMAT, "intermediate_size", err);
    CHECK_FAIL(ellm_synth("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 8, "
                          "\"num_hidden_layers\": 1, \"num_attention_heads\": 6, \"vocab_size\": 9}",
                          0, 1, "f32", d, NULL, NULL, &err),
               ELLM_E_FORMAT, "multiple of num_attention_heads", err);
    CHECK_FAIL(ellm_synth("{\"model_type\": \"llama\", \"hidden_size\": -64}", 0, 1, "f32", d, NULL, NULL, &err),
               ELLM_E_FORMAT, "hidden_size", err);
    CHECK_FAIL(ellm_synth(ellm_synth_builtin_config("smollm-135m"), 0, 1, "f8", d, NULL, NULL, &err), ELLM_E_ARG,
               "f8", err);
    CHECK(!ellm_path_exists(d));
}

int main(void) {
    const char *data = test_data_dir();
    char tmp[] = "/tmp/ellm_test_synth_XXXXXX";
    CHECK(mkdtemp(tmp));
    check_smollm_real(tmp);
    check_determinism(tmp);
    check_arches(data, tmp);
    check_errors(tmp);
    rm_dir(tmp);
    printf("synth: ok\n");
    return 0;
}
