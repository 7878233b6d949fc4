/*
 * test_stories.c - the end-to-end reference: stories260K with float weights
 * at temperature 0, prompt "Once upon a time", 200 positions, must give
 * exactly the token ids the reference llama2.c run.c printed (data file
 * stories260K/reference-greedy-once-upon-a-time.txt). Checked three ways:
 * token by token as run.c does, with a batched prefill of the prompt, and
 * teacher-forced in one batch (logits of all positions); batched and
 * sequential logits must agree. Also: KV cache reset, errors for bad input.
 */
#include <math.h>

#include "model/test_util.h"

/* run.c's loop: -n counts all positions; stop when BOS is sampled. */
static size_t generate(ellm_model *m, const int32_t *prompt, size_t n_prompt, int steps, int prefill_batch,
                       int32_t *out) {
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    float *logits = malloc((size_t)info.vocab_size * sizeof(float));
    ellm_error err;
    ellm_model_reset(m);
    size_t n = 0;
    out[n++] = prompt[0];
    int pos = 0;
    int32_t token = prompt[0];
    if (prefill_batch && n_prompt > 1) {
        /* all prompt tokens but the last in one batch, no logits needed */
        if (ellm_model_forward(m, prompt, (int)n_prompt - 1, 0, NULL, 0, &err)) t_die("prefill", &err);
        for (size_t i = 1; i < n_prompt; i++) out[n++] = prompt[i];
        pos = (int)n_prompt - 1;
        token = prompt[n_prompt - 1];
    }
    while (pos < steps) {
        if (ellm_model_forward(m, &token, 1, pos, logits, 0, &err)) t_die("forward", &err);
        int32_t next;
        if ((size_t)pos + 1 < n_prompt) {
            next = prompt[pos + 1];
        } else {
            next = 0;
            for (int i = 1; i < info.vocab_size; i++)
                if (logits[i] > logits[next]) next = i;
        }
        pos++;
        if (next == 1) break;
        out[n++] = next;
        token = next;
    }
    free(logits);
    return n;
}

int main(void) {
    char *model_path = t_data_path("stories260K/stories260K.bin");
    size_t n_ref;
    int32_t *ref = t_reference_ids(&n_ref);
    CHECK(n_ref == 201, "reference has %zu ids, expected BOS + 200", n_ref);

    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = 2;
    ellm_model *m;
    ellm_error err;
    if (ellm_model_load(model_path, &lo, &m, &err)) t_die("load stories260K", &err);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    CHECK(info.weight_bits == 32 && info.dim == 64 && info.n_layers == 5 && info.n_kv_heads == 4 &&
              info.vocab_size == 512 && strcmp(info.arch, "llama") == 0,
          "model info: bits %d dim %d layers %d kv %d vocab %d arch %s", info.weight_bits, info.dim, info.n_layers,
          info.n_kv_heads, info.vocab_size, info.arch);

    /* The prompt through the model's own tokenizer (tok512.bin beside it). */
    const ellm_tokenizer *tok = ellm_model_tokenizer(m);
    CHECK(tok != NULL, "stories260K loaded without its tokenizer");
    if (!tok) return 1;
    int32_t *prompt;
    size_t n_prompt;
    const char *text = "Once upon a time";
    if (ellm_tokenize(tok, text, strlen(text), 1, 0, &prompt, &n_prompt, &err)) t_die("tokenize", &err);
    CHECK(n_prompt >= 2 && n_prompt < n_ref && memcmp(prompt, ref, n_prompt * sizeof *prompt) == 0,
          "prompt ids differ from the reference's first ids");

    int32_t *got = malloc(256 * sizeof *got);
    for (int batch = 0; batch <= 1; batch++) {
        size_t n = generate(m, prompt, n_prompt, 200, batch, got);
        size_t first_diff = 0;
        while (first_diff < n && first_diff < n_ref && got[first_diff] == ref[first_diff]) first_diff++;
        CHECK(n == n_ref && first_diff == n_ref, "%s: %zu ids, first difference at %zu (got %d, want %d)",
              batch ? "batched prefill" : "token by token", n, first_diff, first_diff < n ? got[first_diff] : -1,
              first_diff < n_ref ? ref[first_diff] : -1);
    }

    /* Teacher-forced: every position in one batch, logits for all. */
    const int V = info.vocab_size, N = (int)n_ref;
    float *all = malloc((size_t)N * V * sizeof(float));
    float *one = malloc((size_t)V * sizeof(float));
    ellm_model_reset(m);
    if (ellm_model_forward(m, ref, N, 0, all, 1, &err)) t_die("batched forward", &err);
    for (int p = (int)n_prompt - 1; p + 1 < N; p++) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (all[(size_t)p * V + i] > all[(size_t)p * V + best]) best = i;
        CHECK(best == ref[p + 1], "teacher-forced argmax at %d is %d, reference %d", p, best, ref[p + 1]);
    }
    /* Sequential logits equal batched ones (up to summation order). */
    ellm_model_reset(m);
    double worst = 0;
    for (int p = 0; p < N; p++) {
        if (ellm_model_forward(m, &ref[p], 1, p, one, 0, &err)) t_die("forward", &err);
        for (int i = 0; i < V; i++) worst = fmax(worst, fabs(one[i] - all[(size_t)p * V + i]));
    }
    CHECK(worst < 1e-4, "sequential vs batched logits differ by %g", worst);
    printf("stories260K: %zu reference ids reproduced; batched vs sequential logits max diff %.3g\n", n_ref, worst);

    /* A long batch (split internally into chunks) equals the same tokens
     * given in several calls. */
    {
        const int L = 400;
        int32_t *seq = malloc(L * sizeof *seq);
        for (int i = 0; i < L; i++) seq[i] = ref[i % N];
        float *big = malloc((size_t)L * V * sizeof(float)), *parts = malloc((size_t)L * V * sizeof(float));
        ellm_model_reset(m);
        if (ellm_model_forward(m, seq, L, 0, big, 1, &err)) t_die("long batch", &err);
        ellm_model_reset(m);
        for (int p = 0; p < L; p += 100)
            if (ellm_model_forward(m, seq + p, 100, p, parts + (size_t)p * V, 1, &err)) t_die("parts", &err);
        double dd = 0;
        for (size_t i = 0; i < (size_t)L * V; i++) dd = fmax(dd, fabs(big[i] - parts[i]));
        CHECK(dd < 1e-5, "400 tokens in one call vs 4 calls differ by %g", dd);
        free(seq), free(big), free(parts);
    }

    /* Rewinding: positions can be recomputed from any cached point. */
    if (ellm_model_forward(m, &ref[10], 1, 10, one, 0, &err)) t_die("rewind", &err);
    double d = 0;
    for (int i = 0; i < V; i++) d = fmax(d, fabs(one[i] - all[(size_t)10 * V + i]));
    CHECK(d < 1e-4, "recomputing position 10 differs by %g", d);

    /* Bad input is refused with a message, not a crash. */
    int32_t bad = 600;
    CHECK(ellm_model_forward(m, &bad, 1, 0, one, 0, &err) == ELLM_E_ARG && strstr(err.message, "600"),
          "out-of-vocabulary token accepted");
    int32_t ok = 5;
    CHECK(ellm_model_forward(m, &ok, 1, 50, one, 0, &err) == ELLM_E_ARG, "position past the cache accepted");
    ellm_model_reset(m);
    CHECK(ellm_model_forward(m, ref, 1, 512, one, 0, &err) == ELLM_E_ARG, "position past the context accepted");
    CHECK(ellm_model_forward(m, ref, 0, 0, one, 0, &err) == ELLM_E_ARG, "zero tokens accepted");

    /* The output head on the first thread count equals that of one thread. */
    ellm_model_free(m);
    lo.n_threads = 1;
    if (ellm_model_load(model_path, &lo, &m, &err)) t_die("load 1 thread", &err);
    size_t n1 = generate(m, prompt, n_prompt, 200, 1, got);
    CHECK(n1 == n_ref && memcmp(got, ref, n_ref * sizeof *ref) == 0, "1 thread: output differs");
    ellm_model_free(m);

    /* A missing file and an unknown architecture are reported. */
    CHECK(ellm_model_load("/nonexistent/model.bin", &lo, &m, &err) != ELLM_OK && m == NULL, "missing file loaded");

    free(all);
    free(one);
    free(got);
    free(prompt);
    free(ref);
    free(model_path);
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    return 0;
}
