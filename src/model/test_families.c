/*
 * test_families.c - every target family through every loader path, with
 * generated weights (ellm_synth): the real configs of data/hf (Phi-3.5 with
 * LongRoPE, SmolLM2-1.7B) and the built-in ones (SmolLM-135M, Mistral-7B,
 * Phi-3-mini-4k, Qwen2-0.5B), shrunk in width (4 heads of the real head
 * dimension, the real GQA ratio, 2 layers, vocabulary 320) so the test takes
 * seconds, with everything else kept (architecture, rope scaling and theta,
 * sliding window, tied head, biases). Each loads as float, generates, then
 * compresses to uint8 and uint4 and runs from the .ellm file.
 *
 * And the family-specific pieces, each against an independent formulation:
 *   - fused qkv_proj / gate_up_proj (Phi-3) == separate projections (Llama)
 *     on the same weights;
 *   - a sliding window (Mistral) leaves positions inside it unchanged and
 *     changes the ones past it; a window longer than the text changes nothing;
 *   - LongRoPE: the real Phi-3.5 config parses to the HF values (attention
 *     factor sqrt(1 + ln 32 / ln 4096)), and the long factors take over once
 *     the sequence passes original_max_position_embeddings;
 *   - Qwen2 biases are applied (zeroing them changes the logits);
 *   - unknown architectures and rope scalings are refused by name.
 * The weights are generated, not trained: only structure is tested here.
 */
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "formats/synth.h"
#include "model/model.h"
#include "model/test_util.h"

#define N_POS 16

static char g_dir[] = "/tmp/ellm-test-families-XXXXXX";

/* The config shrunk in width; structure kept. Returns malloc'd JSON. */
static char *shrink(const char *config, const char *what) {
    json_t *c = json_loads(config, 0, NULL);
    if (!c) {
        fprintf(stderr, "FAIL: %s: config does not parse\n", what);
        exit(1);
    }
    long H = (long)json_integer_value(json_object_get(c, "num_attention_heads"));
    json_t *kvj = json_object_get(c, "num_key_value_heads");
    long KV = json_is_integer(kvj) ? (long)json_integer_value(kvj) : H;
    long hidden = (long)json_integer_value(json_object_get(c, "hidden_size"));
    json_t *hdj = json_object_get(c, "head_dim");
    long hd = json_is_integer(hdj) ? (long)json_integer_value(hdj) : hidden / H;
    long h2 = 4, kv2 = h2 / (H / KV) > 0 ? h2 / (H / KV) : 1;
    json_object_set_new(c, "num_attention_heads", json_integer(h2));
    json_object_set_new(c, "num_key_value_heads", json_integer(kv2));
    json_object_set_new(c, "head_dim", json_integer(hd));
    json_object_set_new(c, "hidden_size", json_integer(h2 * hd));
    json_object_set_new(c, "intermediate_size", json_integer(256));
    json_object_set_new(c, "vocab_size", json_integer(320));
    json_object_set_new(c, "num_hidden_layers", json_integer(2));
    char *s = json_dumps(c, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(c);
    return s;
}

static char *path_in(const char *name) {
    char *p = malloc(strlen(g_dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", g_dir, name);
    return p;
}

static ellm_model *load(const char *path) {
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = 2;
    ellm_model *m;
    ellm_error err;
    if (ellm_model_load(path, &lo, &m, &err)) t_die(path, &err);
    return m;
}

static const int32_t k_prompt[N_POS] = {3, 17, 250, 41, 99, 7, 300, 12, 64, 128, 5, 77, 200, 31, 8, 150};

static float *logits_all(ellm_model *m, int n) {
    float *l = malloc((size_t)n * m->llm.cfg.vocab_size * sizeof(float));
    ellm_error err;
    ellm_model_reset(m);
    if (ellm_model_forward(m, k_prompt, n, 0, l, 1, &err)) t_die("forward", &err);
    return l;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static double mean_kl(const float *a, const float *b, int n_pos, int V) {
    double total = 0;
    for (int p = 0; p < n_pos; p++) {
        const float *x = a + (size_t)p * V, *y = b + (size_t)p * V;
        double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0, kl = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, x[i]), my = fmax(my, y[i]);
        for (int i = 0; i < V; i++) sx += exp(x[i] - mx), sy += exp(y[i] - my);
        for (int i = 0; i < V; i++) {
            double px = exp(x[i] - mx) / sx, py = exp(y[i] - my) / sy;
            kl += px * (log(px) - log(py));
        }
        total += kl;
    }
    return total / n_pos;
}

/* Loads, checks and generates from one model; returns its logits. */
static float *exercise(const char *path, const char *what, int expect_bits) {
    ellm_model *m = load(path);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    CHECK(info.weight_bits == expect_bits && info.generated_weights, "%s: %d-bit, generated %d", what,
          info.weight_bits, info.generated_weights);
    const int V = info.vocab_size;
    float *all = logits_all(m, N_POS);
    int finite = 1;
    for (size_t i = 0; i < (size_t)N_POS * V; i++) finite &= isfinite(all[i]) != 0;
    CHECK(finite, "%s: non-finite logits", what);
    /* token by token == batched */
    float *one = malloc((size_t)V * sizeof(float));
    ellm_error err;
    ellm_model_reset(m);
    double d = 0;
    for (int p = 0; p < N_POS; p++) {
        if (ellm_model_forward(m, &k_prompt[p], 1, p, one, 0, &err)) t_die("forward", &err);
        d = fmax(d, max_diff(one, all + (size_t)p * V, V));
    }
    CHECK(expect_bits == 32 ? d < 1e-4 : d == 0, "%s: token-by-token vs batched logits differ by %g", what, d);
    /* generation through the shared loop */
    ellm_gen_params gp = {.max_new_tokens = 8, .sampler = {0.0f, 1.0f, 1}};
    ellm_gen_result res;
    ellm_model_reset(m);
    if (ellm_generate(m, k_prompt, 4, 0, &gp, &res, &err)) t_die("generate", &err);
    CHECK(res.n_prefilled == 4 && (res.n_generated == 8 || res.stop == ELLM_GEN_STOP_TOKEN), "%s: generated %d", what,
          res.n_generated);
    free(one);
    ellm_model_free(m);
    return all;
}

static void family(const char *name, const char *config) {
    char *small = shrink(config, name);
    char *dir = path_in(name);
    ellm_error err;
    if (ellm_synth(small, 0, 7, "f32", dir, NULL, NULL, &err)) t_die("synth", &err);
    float *lf = exercise(dir, name, 32);
    const int V = 320;
    double kl[2];
    for (int b = 0; b < 2; b++) {
        char fname[128];
        snprintf(fname, sizeof fname, "%s-u%d.ellm", name, b ? 4 : 8);
        char *out = path_in(fname);
        ellm_compress_options co;
        ellm_compress_options_default(&co);
        co.bits = b ? 4 : 8;
        co.n_threads = 2;
        if (ellm_compress(dir, out, &co, NULL, &err)) t_die("compress", &err);
        char what[160];
        snprintf(what, sizeof what, "%s uint%d", name, co.bits);
        float *lq = exercise(out, what, co.bits);
        kl[b] = mean_kl(lf, lq, N_POS, V);
        free(lq);
        unlink(out);
        free(out);
    }
    printf("%-14s float, uint8, uint4 load and generate; KL vs float: uint8 %.2e, uint4 %.2e\n", name, kl[0], kl[1]);
    CHECK(kl[0] < 0.01 && kl[0] <= kl[1] && kl[1] < 1.0, "%s: KL uint8 %g uint4 %g", name, kl[0], kl[1]);
    free(lf);
    free(small);
    free(dir);
}

/* Phi-3's fused projections on a llama model's own weights. */
typedef struct fuse_ctx {
    ellm_model *m;
    char names[64][96];
    int n;
} fuse_ctx;

static ellm_status fuse_data(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    fuse_ctx *f = user;
    const char *name = f->names[index];
    float *out = dst;
    int layer;
    char part[96];
    if (sscanf(name, "model.layers.%d.%95s", &layer, part) == 2 &&
        (strcmp(part, "self_attn.qkv_proj.weight") == 0 || strcmp(part, "mlp.gate_up_proj.weight") == 0)) {
        const ellm_layer *ly = &f->m->llm.layers[layer];
        const ellm_qtensor *parts[3] = {ly->wq, ly->wk, ly->wv};
        if (part[0] == 'm') parts[0] = ly->w_gate, parts[1] = ly->w_up, parts[2] = NULL;
        for (int i = 0; i < 3 && parts[i]; i++) {
            memcpy(out, parts[i]->data, parts[i]->n * sizeof(float));
            out += parts[i]->n;
        }
        return ELLM_OK;
    }
    long idx = -1;
    for (size_t i = 0; i < f->m->n_tensors; i++)
        if (strcmp(f->m->tensors[i].name, name) == 0) idx = (long)i;
    if (idx < 0 || f->m->tensors[idx].n * sizeof(float) != n_bytes)
        return ellm_fail(err, ELLM_E_INTERNAL, "fuse: %s", name);
    memcpy(dst, f->m->tensors[idx].data, n_bytes);
    return ELLM_OK;
}

static void fused_equals_separate(const char *llama_dir) {
    ellm_model *m = load(llama_dir);
    const ellm_llm_config *c = &m->llm.cfg;
    char *dir = path_in("fused");
    ellm_error err;
    if (!ellm_path_is_dir(dir) && mkdir(dir, 0777) != 0) t_die("mkdir", &err);
    st_writer *w;
    if (st_writer_new(&w, &err)) t_die("st_writer", &err);
    fuse_ctx f = {.m = m};
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ellm_qtensor *t = &m->tensors[i];
        if (strstr(t->name, "k_proj") || strstr(t->name, "v_proj") || strstr(t->name, "up_proj")) continue;
        char name[96];
        snprintf(name, sizeof name, "%s", t->name);
        int64_t shape[2] = {t->shape[0], t->n_dims == 2 ? t->shape[1] : 0};
        char *q = strstr(name, "q_proj"), *g = strstr(name, "gate_proj");
        if (q) {
            snprintf(name, sizeof name, "%.*sqkv_proj.weight", (int)(q - name), t->name);
            shape[0] = (int64_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
        } else if (g) {
            snprintf(name, sizeof name, "%.*sgate_up_proj.weight", (int)(g - name), t->name);
            shape[0] = 2 * (int64_t)c->hidden_dim;
        }
        snprintf(f.names[f.n++], sizeof f.names[0], "%s", name);
        if (st_writer_add(w, name, "F32", t->n_dims, shape, (uint64_t)shape[0] * (t->n_dims == 2 ? shape[1] : 1) * 4,
                          &err))
            t_die("st_writer_add", &err);
    }
    char *st = path_in("fused/model.safetensors"), *cfgp = path_in("fused/config.json");
    if (st_writer_write(w, st, fuse_data, &f, &err)) t_die("write fused", &err);
    st_writer_free(w);
    json_t *cj = json_loads(m->config_json, 0, NULL);
    json_object_set_new(cj, "model_type", json_string("phi3"));
    json_object_set_new(cj, "architectures", json_pack("[s]", "Phi3ForCausalLM"));
    if (json_dump_file(cj, cfgp, 0) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", cfgp);
        exit(1);
    }
    json_decref(cj);
    ellm_model *p = load(dir);
    CHECK(strcmp(p->llm.cfg.arch, "phi3") == 0 && p->llm.layers[0].wqkv && p->llm.layers[0].w_gate_up,
          "fused model not bound as fused");
    float *a = logits_all(m, N_POS), *b = logits_all(p, N_POS);
    double d = max_diff(a, b, (size_t)N_POS * c->vocab_size);
    CHECK(d < 1e-5, "fused qkv/gate_up vs separate: logits differ by %g", d);
    printf("fused qkv_proj/gate_up_proj == separate projections: max diff %.2g\n", d);
    free(a), free(b), free(st), free(cfgp), free(dir);
    ellm_model_free(p);
    ellm_model_free(m);
}

static void sliding_window(const char *mistral_dir) {
    ellm_model *a = load(mistral_dir), *b = load(mistral_dir);
    a->llm.cfg.sliding_window = 0;
    b->llm.cfg.sliding_window = 6;
    const int V = a->llm.cfg.vocab_size;
    float *la = logits_all(a, N_POS), *lb = logits_all(b, N_POS);
    double inside = max_diff(la, lb, (size_t)6 * V), past = 0;
    for (int p = 6; p < N_POS; p++) past = fmin(past == 0 ? 1e9 : past, max_diff(la + (size_t)p * V, lb + (size_t)p * V, V));
    CHECK(inside == 0 && past > 1e-4, "sliding window 6: positions < 6 differ by %g, later ones by at least %g", inside,
          past);
    b->llm.cfg.sliding_window = N_POS;
    float *lc = logits_all(b, N_POS);
    CHECK(max_diff(la, lc, (size_t)N_POS * V) == 0, "a window as long as the text changes the logits");
    printf("sliding window: unchanged inside (%.1g), changed past it (min %.2g)\n", inside, past);
    free(la), free(lb), free(lc);
    ellm_model_free(a), ellm_model_free(b);
}

static void longrope(const char *phi35_config) {
    ellm_llm_config c;
    ellm_error err;
    if (ellm_llm_config_parse(phi35_config, "phi-3.5 config", &c, &err)) t_die("parse phi-3.5", &err);
    double want = sqrt(1.0 + log(131072.0 / 4096.0) / log(4096.0));
    CHECK(c.rope_scaling == ELLM_ROPE_SCALING_LONGROPE && c.n_rope_factors == 48 && c.head_dim == 96 &&
              c.original_max_ctx == 4096 && fabs(c.rope_attn_factor - want) < 1e-6 && c.rope_short_factor[0] == 1.0f &&
              fabsf(c.rope_long_factor[47] - 64.84f) < 1e-3f && c.sliding_window == 262144 && c.tie_embeddings == 0,
          "phi-3.5 config: scaling %d, %d factors, attention factor %g (want %g), original %d", c.rope_scaling,
          c.n_rope_factors, c.rope_attn_factor, want, c.original_max_ctx);
    ellm_llm_config_free(&c);
    /* Long factors once the sequence outgrows the original context (HF). */
    char *small = shrink(phi35_config, "phi35");
    json_t *j = json_loads(small, 0, NULL);
    json_object_set_new(j, "original_max_position_embeddings", json_integer(8));
    free(small);
    small = json_dumps(j, 0);
    json_decref(j);
    char *dir = path_in("phi35-long");
    if (ellm_synth(small, 0, 3, "f32", dir, NULL, NULL, &err)) t_die("synth", &err);
    ellm_model *m = load(dir);
    const int V = m->llm.cfg.vocab_size;
    float *l8 = logits_all(m, 8), *l16 = logits_all(m, N_POS);
    double d = max_diff(l8, l16, (size_t)8 * V);
    CHECK(d > 1e-4, "LongRoPE: long factors not used past the original context (diff %g)", d);
    printf("LongRoPE: config values as HF computes them; long factors past the original context (diff %.2g)\n", d);
    free(l8), free(l16), free(small), free(dir);
    ellm_model_free(m);
}

static void qwen2_biases(const char *qwen_dir) {
    ellm_model *a = load(qwen_dir), *b = load(qwen_dir);
    CHECK(b->llm.layers[0].bq && b->llm.layers[0].bk && b->llm.layers[0].bv, "qwen2: biases not bound");
    for (int l = 0; l < b->llm.cfg.n_layers; l++) b->llm.layers[l].bq = b->llm.layers[l].bk = b->llm.layers[l].bv = NULL;
    float *la = logits_all(a, N_POS), *lb = logits_all(b, N_POS);
    double d = max_diff(la, lb, (size_t)N_POS * a->llm.cfg.vocab_size);
    CHECK(d > 1e-4, "qwen2: biases do not change the logits (%g)", d);
    free(la), free(lb);
    ellm_model_free(a), ellm_model_free(b);
}

static void refusals(void) {
    ellm_llm_config c;
    ellm_error err;
    CHECK(ellm_llm_config_parse("{\"model_type\": \"gpt2\", \"hidden_size\": 8}", "x", &c, &err) == ELLM_E_UNSUPPORTED &&
              strstr(err.message, "gpt2"),
          "unknown architecture accepted: %s", err.message);
    const char *yarn = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                       "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10, "
                       "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}}";
    CHECK(ellm_llm_config_parse(yarn, "x", &c, &err) == ELLM_E_UNSUPPORTED && strstr(err.message, "yarn"),
          "yarn rope scaling accepted: %s", err.message);
    CHECK(ellm_llm_config_parse("{\"model_type\": \"llama\"}", "x", &c, &err) == ELLM_E_FORMAT, "empty config accepted");
    CHECK(ellm_llm_config_parse("not json", "x", &c, &err) == ELLM_E_FORMAT, "bad JSON accepted");
}

int main(void) {
    if (!mkdtemp(g_dir)) return 1;
    char *phi35_path = t_data_path("hf/phi-3.5-mini-instruct/config.json");
    char *smol2_path = t_data_path("hf/smollm2-1.7b-resaved/config.json");
    uint8_t *phi35, *smol2;
    size_t n;
    ellm_error err;
    if (ellm_read_file(phi35_path, &phi35, &n, &err) || ellm_read_file(smol2_path, &smol2, &n, &err))
        t_die("read configs", &err);

    family("phi-3.5-mini", (const char *)phi35);
    family("smollm2-1.7b", (const char *)smol2);
    const char *builtins[] = {"smollm-135m", "mistral-7b", "phi3-mini-4k", "qwen2-0.5b"};
    for (size_t i = 0; i < 4; i++) family(builtins[i], ellm_synth_builtin_config(builtins[i]));

    char *llama = path_in("smollm-135m"), *mistral = path_in("mistral-7b"), *qwen = path_in("qwen2-0.5b");
    fused_equals_separate(llama);
    sliding_window(mistral);
    longrope((const char *)phi35);
    qwen2_biases(qwen);
    refusals();

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
    free(llama), free(mistral), free(qwen), free(phi35), free(smol2), free(phi35_path), free(smol2_path);
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    return 0;
}
