/*
 * test_reference.c - the forward pass of every family against an independent
 * implementation: src/model/reference_forward.py, a plain-Python (float64)
 * transcription of the Hugging Face modeling code (Llama, Mistral, Qwen2,
 * Phi-3: rotate_half rotary, LongRoPE short/long factors and attention factor,
 * Llama 3 rope scaling, sliding window, q/k/v biases, fused qkv/gate_up, GQA,
 * tied head). Its logits for the five tiny models below are stored in
 * reference_logits.h; here the same models are rebuilt (weights from a fixed
 * seed, written as HF folders), loaded, run, and compared within 5e-4 (logits
 * reach 9; float32 sums, observed 4e-6 to 1.3e-4: the long-factor Phi-3 model
 * multiplies attention scores by 8.5, which amplifies rounding).
 *
 * To regenerate the fixture (after a deliberate change of these models):
 *   ./model_test_reference --write DIR
 *   python3 src/model/reference_forward.py DIR > src/model/reference_logits.h
 */
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "model/model.h"
#include "model/reference_logits.h"
#include "model/test_util.h"

static const int32_t k_tokens[REF_N_TOKENS] = {3, 17, 50, 41, 9, 7, 30, 12};

static const char *const k_small[] = {
    /* mistral: GQA 4/2, sliding window 3 over 8 tokens, theta 1e6, separate head */
    "{\"architectures\":[\"MistralForCausalLM\"],\"model_type\":\"mistral\",\"hidden_size\":64,"
    "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"head_dim\":16,\"vocab_size\":64,\"max_position_embeddings\":128,\"rms_norm_eps\":1e-5,"
    "\"rope_theta\":1000000.0,\"sliding_window\":3,\"tie_word_embeddings\":false,\"hidden_act\":\"silu\"}",
    /* qwen2: q/k/v biases, GQA 4/1, tied head, a sliding window that is off */
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":64,"
    "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":1,"
    "\"vocab_size\":64,\"max_position_embeddings\":128,\"rms_norm_eps\":1e-6,\"rope_theta\":1000000.0,"
    "\"tie_word_embeddings\":true,\"hidden_act\":\"silu\",\"use_sliding_window\":false,\"sliding_window\":2}",
    /* llama with Llama 3.1 rope scaling: all three frequency regimes occur */
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,"
    "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":4,"
    "\"vocab_size\":64,\"max_position_embeddings\":1024,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
    "\"tie_word_embeddings\":true,\"hidden_act\":\"silu\",\"rope_scaling\":{\"rope_type\":\"llama3\","
    "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}}",
};

/* The real Phi-3.5 config, narrowed: 2 heads of 96 (so its 48 LongRoPE
 * factors apply), 2 layers, vocabulary 64. long: original context 4, so the
 * 8 tokens take the long factors. */
static char *phi3(const char *real, int long_factors) {
    json_t *c = json_loads(real, 0, NULL);
    json_object_set_new(c, "hidden_size", json_integer(192));
    json_object_set_new(c, "num_attention_heads", json_integer(2));
    json_object_set_new(c, "num_key_value_heads", json_integer(2));
    json_object_set_new(c, "intermediate_size", json_integer(64));
    json_object_set_new(c, "vocab_size", json_integer(64));
    json_object_set_new(c, "num_hidden_layers", json_integer(2));
    if (long_factors) json_object_set_new(c, "original_max_position_embeddings", json_integer(4));
    char *s = json_dumps(c, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(c);
    return s;
}

typedef struct gen_tensor {
    char name[96];
    int n_dims;
    int64_t shape[2];
    float *data;
} gen_tensor;

typedef struct gen_model {
    gen_tensor t[64];
    int n;
} gen_model;

static void add(gen_model *g, ellm_rng *rng, const char *name, int64_t rows, int64_t cols, int kind) {
    gen_tensor *t = &g->t[g->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    t->data = malloc(n * sizeof(float));
    /* kind 0: matrix N(0, 0.2); 1: norm 1 + N(0, 0.1); 2: bias N(0, 0.2) */
    for (size_t i = 0; i < n; i++) {
        double v = ellm_rng_normal(rng);
        t->data[i] = (float)(kind == 1 ? 1.0 + 0.1 * v : 0.2 * v);
    }
}

static ellm_status data_cb(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    (void)err;
    memcpy(dst, ((gen_model *)user)->t[index].data, n_bytes);
    return ELLM_OK;
}

/* Writes DIR/config.json and DIR/model.safetensors for config text cfg. */
static void write_model(const char *cfg_text, const char *dir, uint64_t seed) {
    ellm_llm_config c;
    ellm_error err;
    if (ellm_llm_config_parse(cfg_text, dir, &c, &err)) t_die("config", &err);
    const int64_t D = c.dim, qd = (int64_t)c.n_heads * c.head_dim, kvd = (int64_t)c.n_kv_heads * c.head_dim;
    const int phi = strcmp(c.arch, "phi3") == 0, qwen = strcmp(c.arch, "qwen2") == 0;
    ellm_rng rng;
    ellm_rng_seed(&rng, seed);
    gen_model g = {.n = 0};
    char name[96];
    add(&g, &rng, "model.embed_tokens.weight", c.vocab_size, D, 0);
    for (int l = 0; l < c.n_layers; l++) {
#define N(fmt) (snprintf(name, sizeof name, "model.layers.%d." fmt, l), name)
        add(&g, &rng, N("input_layernorm.weight"), D, 0, 1);
        if (phi) {
            add(&g, &rng, N("self_attn.qkv_proj.weight"), qd + 2 * kvd, D, 0);
        } else {
            add(&g, &rng, N("self_attn.q_proj.weight"), qd, D, 0);
            add(&g, &rng, N("self_attn.k_proj.weight"), kvd, D, 0);
            add(&g, &rng, N("self_attn.v_proj.weight"), kvd, D, 0);
        }
        if (qwen) {
            add(&g, &rng, N("self_attn.q_proj.bias"), qd, 0, 2);
            add(&g, &rng, N("self_attn.k_proj.bias"), kvd, 0, 2);
            add(&g, &rng, N("self_attn.v_proj.bias"), kvd, 0, 2);
        }
        add(&g, &rng, N("self_attn.o_proj.weight"), D, qd, 0);
        add(&g, &rng, N("post_attention_layernorm.weight"), D, 0, 1);
        if (phi) {
            add(&g, &rng, N("mlp.gate_up_proj.weight"), 2 * (int64_t)c.hidden_dim, D, 0);
        } else {
            add(&g, &rng, N("mlp.gate_proj.weight"), c.hidden_dim, D, 0);
            add(&g, &rng, N("mlp.up_proj.weight"), c.hidden_dim, D, 0);
        }
        add(&g, &rng, N("mlp.down_proj.weight"), D, c.hidden_dim, 0);
#undef N
    }
    add(&g, &rng, "model.norm.weight", D, 0, 1);
    if (c.tie_embeddings != 1) add(&g, &rng, "lm_head.weight", c.vocab_size, D, 0);
    ellm_llm_config_free(&c);

    mkdir(dir, 0777);
    st_writer *w;
    if (st_writer_new(&w, &err)) t_die("st_writer", &err);
    for (int i = 0; i < g.n; i++)
        if (st_writer_add(w, g.t[i].name, "F32", g.t[i].n_dims, g.t[i].shape,
                          (uint64_t)g.t[i].shape[0] * (g.t[i].n_dims == 2 ? g.t[i].shape[1] : 1) * 4, &err))
            t_die("st_writer_add", &err);
    char *st = ellm_path_join(dir, "model.safetensors"), *cp = ellm_path_join(dir, "config.json");
    if (st_writer_write(w, st, data_cb, &g, &err)) t_die("write", &err);
    st_writer_free(w);
    FILE *f = fopen(cp, "wb");
    if (!f || fputs(cfg_text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", cp);
        exit(1);
    }
    for (int i = 0; i < g.n; i++) free(g.t[i].data);
    free(st), free(cp);
}

int main(int argc, char **argv) {
    const char *write_dir = argc == 3 && strcmp(argv[1], "--write") == 0 ? argv[2] : NULL;
    char tmp[] = "/tmp/ellm-test-reference-XXXXXX";
    const char *dir = write_dir;
    if (!dir) {
        if (!mkdtemp(tmp)) return 1;
        dir = tmp;
    } else {
        mkdir(dir, 0777);
    }
    char *real_path = t_data_path("hf/phi-3.5-mini-instruct/config.json");
    uint8_t *real;
    size_t n;
    ellm_error err;
    if (ellm_read_file(real_path, &real, &n, &err)) t_die("phi-3.5 config", &err);
    char *cfgs[REF_N_MODELS] = {phi3((char *)real, 0), phi3((char *)real, 1), ellm_strdup(k_small[0]),
                                ellm_strdup(k_small[1]), ellm_strdup(k_small[2])};
    for (int i = 0; i < REF_N_MODELS; i++) {
        char *md = ellm_path_join(dir, k_ref_names[i]);
        write_model(cfgs[i], md, 1000 + (uint64_t)i);
        if (!write_dir) {
            ellm_load_options lo;
            ellm_load_options_default(&lo);
            lo.n_threads = 2;
            ellm_model *m;
            if (ellm_model_load(md, &lo, &m, &err)) t_die(md, &err);
            float *l = malloc((size_t)REF_N_TOKENS * REF_VOCAB * sizeof(float));
            if (ellm_model_forward(m, k_tokens, REF_N_TOKENS, 0, l, 1, &err)) t_die("forward", &err);
            double d = 0, spread = 0;
            for (int j = 0; j < REF_N_TOKENS * REF_VOCAB; j++) {
                d = fmax(d, fabs((double)l[j] - k_ref_logits[i][j]));
                spread = fmax(spread, fabs(k_ref_logits[i][j]));
            }
            CHECK(d < 5e-4, "%s: logits differ from the reference by %g", k_ref_names[i], d);
            printf("%-8s max |logit - reference| %.2g (logits up to %.1f)\n", k_ref_names[i], d, spread);
            free(l);
            ellm_model_free(m);
            char cmd[600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", md);
            if (system(cmd) != 0) fprintf(stderr, "warning: cannot remove %s\n", md);
        }
        free(md);
        free(cfgs[i]);
    }
    if (!write_dir) rmdir(dir);
    free(real), free(real_path);
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    return 0;
}
