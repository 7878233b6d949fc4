/*
 * test_quality.c - what uint8 and uint4 weights cost in output quality, on a
 * real trained model: stories260K compressed to .ellm (per-tensor scales,
 * automatic scheme, Huffman) against its float weights, on TinyStories
 * validation text:
 *   - mean KL(p_float || p_quant) of the next-token distributions and the
 *     fraction of positions whose most likely next token is the same
 *     (teacher-forced over 4 windows of 256 tokens);
 *   - greedy generation from "Once upon a time" for 200 positions: the
 *     fraction of identical tokens and the length of the identical prefix.
 * The figures are printed (they go in the report) and held to bounds that
 * a broken kernel or scale would break.
 */
#include <math.h>
#include <unistd.h>

#include "model/test_util.h"

#define WINDOW 256
#define N_WINDOWS 4

typedef struct quality {
    double mean_kl, top1_agree, gen_same;
    size_t gen_prefix, gen_len;
} quality;

static void softmax_d(const float *l, int n, double *p) {
    double mx = l[0], s = 0;
    for (int i = 1; i < n; i++) mx = fmax(mx, l[i]);
    for (int i = 0; i < n; i++) s += p[i] = exp(l[i] - mx);
    for (int i = 0; i < n; i++) p[i] /= s;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static size_t greedy(ellm_model *m, const int32_t *prompt, size_t n_prompt, int steps, int32_t *out) {
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    float *logits = malloc((size_t)info.vocab_size * sizeof(float));
    ellm_error err;
    ellm_model_reset(m);
    if (ellm_model_forward(m, prompt, (int)n_prompt, 0, logits, 0, &err)) t_die("prefill", &err);
    memcpy(out, prompt, n_prompt * sizeof *out);
    size_t n = n_prompt;
    while ((int)n < steps) {
        int32_t next = argmax(logits, info.vocab_size);
        if (next == 1) break; /* BOS ends a llama2.c sample */
        out[n] = next;
        if (ellm_model_forward(m, &next, 1, (int)n, logits, 0, &err)) t_die("forward", &err);
        n++;
    }
    free(logits);
    return n;
}

static quality compare(ellm_model *ref, ellm_model *q, const int32_t *text, size_t n_text, const int32_t *prompt,
                       size_t n_prompt) {
    ellm_model_info info;
    ellm_model_get_info(ref, &info);
    const int V = info.vocab_size;
    float *la = malloc((size_t)WINDOW * V * sizeof(float)), *lb = malloc((size_t)WINDOW * V * sizeof(float));
    double *pa = malloc(V * sizeof(double)), *pb = malloc(V * sizeof(double));
    ellm_error err;
    double kl_sum = 0;
    size_t agree = 0, count = 0;
    for (int w = 0; w < N_WINDOWS && (size_t)(w + 1) * WINDOW <= n_text; w++) {
        const int32_t *ids = text + (size_t)w * WINDOW;
        ellm_model_reset(ref);
        ellm_model_reset(q);
        if (ellm_model_forward(ref, ids, WINDOW, 0, la, 1, &err) || ellm_model_forward(q, ids, WINDOW, 0, lb, 1, &err))
            t_die("window forward", &err);
        for (int p = 0; p < WINDOW; p++) {
            const float *a = la + (size_t)p * V, *b = lb + (size_t)p * V;
            softmax_d(a, V, pa);
            softmax_d(b, V, pb);
            double kl = 0;
            for (int i = 0; i < V; i++)
                if (pa[i] > 0) kl += pa[i] * (log(pa[i]) - log(fmax(pb[i], 1e-300)));
            kl_sum += kl;
            agree += argmax(a, V) == argmax(b, V);
            count++;
        }
    }
    quality r = {kl_sum / (double)count, (double)agree / (double)count, 0, 0, 0};
    int32_t ga[256], gb[256];
    size_t na = greedy(ref, prompt, n_prompt, 200, ga), nb = greedy(q, prompt, n_prompt, 200, gb);
    size_t same = 0, prefix = 0, n = na < nb ? na : nb;
    while (prefix < n && ga[prefix] == gb[prefix]) prefix++;
    for (size_t i = n_prompt; i < n; i++) same += ga[i] == gb[i];
    r.gen_len = na - n_prompt;
    r.gen_same = (double)same / (double)(na > n_prompt ? na - n_prompt : 1);
    r.gen_prefix = prefix > n_prompt ? prefix - n_prompt : 0;
    free(la), free(lb), free(pa), free(pb);
    return r;
}

int main(void) {
    char *model_path = t_data_path("stories260K/stories260K.bin");
    char *text_path = t_data_path("tinystories/validation_100.txt");
    char dir[] = "/tmp/ellm-test-quality-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "FAIL: cannot create a temporary directory\n");
        return 1;
    }
    ellm_error err;
    ellm_model *ref;
    if (ellm_model_load(model_path, NULL, &ref, &err)) t_die("load float", &err);

    uint8_t *text;
    size_t text_len;
    if (ellm_read_file(text_path, &text, &text_len, &err)) t_die("read text", &err);
    int32_t *ids, *prompt;
    size_t n_ids, n_prompt;
    const ellm_tokenizer *tok = ellm_model_tokenizer(ref);
    if (ellm_tokenize(tok, (const char *)text, text_len, 1, 0, &ids, &n_ids, &err)) t_die("tokenize", &err);
    if (ellm_tokenize(tok, "Once upon a time", 16, 1, 0, &prompt, &n_prompt, &err)) t_die("tokenize", &err);
    CHECK(n_ids >= N_WINDOWS * WINDOW, "only %zu tokens of text", n_ids);

    const int bits[3] = {8, 4, 4};
    const uint32_t group[3] = {0, 0, 32};
    /* Measured (int8 activations): uint8 KL 0.0042, top-1 95.8%; uint4 per
     * tensor KL 1.91, top-1 33% (16 levels across a whole tensor of a 260K
     * model is coarse); uint4 group 32 KL 0.15, top-1 81%. Bounds: a wrong
     * scale, zero point, nibble order or kernel drives agreement towards
     * chance (1/512) and the KL well above them. */
    const double max_kl[3] = {0.01, 2.5, 0.25}, min_top1[3] = {0.93, 0.25, 0.75};
    for (int b = 0; b < 3; b++) {
        char path[256];
        snprintf(path, sizeof path, "%s/stories260K-u%d.ellm", dir, bits[b]);
        ellm_compress_options co;
        ellm_compress_options_default(&co);
        co.bits = bits[b];
        co.n_threads = 2;
        if (group[b]) {
            co.granularity = ELLM_GRAN_GROUP;
            co.group_size = group[b];
        }
        if (ellm_compress(model_path, path, &co, NULL, &err)) t_die("compress", &err);
        ellm_model *q;
        if (ellm_model_load(path, NULL, &q, &err)) t_die("load .ellm", &err);
        ellm_model_info info;
        ellm_model_get_info(q, &info);
        CHECK(info.weight_bits == bits[b], "uint%d model reports %d-bit weights", bits[b], info.weight_bits);
        quality r = compare(ref, q, ids, n_ids, prompt, n_prompt);
        printf("uint%d %s vs float (stories260K, TinyStories, %d x %d tokens): mean KL %.5f nats, same top-1 %.2f%%; "
               "greedy 200 positions: %.1f%% identical tokens, identical prefix %zu of %zu\n",
               bits[b], group[b] ? "group 32" : "per tensor", N_WINDOWS, WINDOW, r.mean_kl, 100 * r.top1_agree, 100 * r.gen_same, r.gen_prefix, r.gen_len);
        CHECK(r.mean_kl >= 0 && r.mean_kl < max_kl[b], "uint%d: mean KL %.5f above %.3f", bits[b], r.mean_kl,
              max_kl[b]);
        CHECK(r.top1_agree > min_top1[b], "uint%d: top-1 agreement %.3f below %.2f", bits[b], r.top1_agree,
              min_top1[b]);
        ellm_model_free(q);
        unlink(path);
    }
    rmdir(dir);
    ellm_model_free(ref);
    free(ids), free(prompt), free(text), free(model_path), free(text_path);
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    return 0;
}
