/*
 * test_export.c - `export --to hf` and `--to gguf` on a real trained model:
 * stories260K (llama2.c, interleaved rotary pairs) written as an HF folder
 * (q/k rows permuted to rotate_half) and as a GGUF file, loaded back: the
 * logits over 128 positions equal the original's within 1e-4. The same HF
 * folder with its config claiming the interleaved layout gives different
 * logits: the permutation and the rotate_half forward pass are both needed,
 * which proves the HF rotary convention on trained weights. A uint8 .ellm
 * exported (dequantized) matches the .ellm model run with float activations.
 */
#include <math.h>
#include <unistd.h>

#include "model/model.h"
#include "model/test_util.h"

#define N_POS 128

static float *all_logits(ellm_model *m, const int32_t *ids, int n) {
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    float *l = malloc((size_t)n * info.vocab_size * sizeof(float));
    ellm_error err;
    ellm_model_reset(m);
    if (ellm_model_forward(m, ids, n, 0, l, 1, &err)) t_die("forward", &err);
    return l;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static ellm_model *load(const char *path, const char *tokenizer) {
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = 2;
    lo.tokenizer_path = tokenizer;
    ellm_model *m;
    ellm_error err;
    if (ellm_model_load(path, &lo, &m, &err)) t_die(path, &err);
    return m;
}

int main(void) {
    char *src = t_data_path("stories260K/stories260K.bin");
    size_t n_ref;
    int32_t *ids = t_reference_ids(&n_ref);
    CHECK(n_ref >= N_POS, "reference too short");
    char dir[] = "/tmp/ellm-test-export-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char hf[256], gguf[256], u8[256], hf8[256];
    snprintf(hf, sizeof hf, "%s/hf", dir);
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    snprintf(u8, sizeof u8, "%s/u8.ellm", dir);
    snprintf(hf8, sizeof hf8, "%s/hf8", dir);
    const size_t V = 512, n = (size_t)N_POS * V;
    ellm_error err;

    ellm_model *ref = load(src, NULL);
    float *lr = all_logits(ref, ids, N_POS);

    /* HF folder */
    if (ellm_model_export_hf(ref, hf, &err)) t_die("export hf", &err);
    ellm_model *mh = load(hf, NULL);
    CHECK(mh->llm.cfg.rope_layout == ELLM_ROPE_HALF, "HF export not in rotate_half layout");
    float *lh = all_logits(mh, ids, N_POS);
    double dh = max_diff(lr, lh, n);
    CHECK(dh < 1e-4, "HF export: logits differ by %g", dh);
    free(lh);
    ellm_model_free(mh);

    /* The same weights run with the interleaved pairing are a different
     * model: the permutation is needed, and so is rotate_half. */
    {
        ellm_model *mw = load(hf, NULL);
        mw->llm.cfg.rope_layout = ELLM_ROPE_INTERLEAVED;
        float *lw = all_logits(mw, ids, N_POS);
        double dw = max_diff(lr, lw, n);
        CHECK(dw > 1e-2, "HF weights with the wrong pairing give the same logits (diff %g)", dw);
        printf("export: HF logits max diff %.3g; with the wrong rotary pairing %.3g\n", dh, dw);
        free(lw);
        ellm_model_free(mw);
    }

    /* GGUF file, with the tokenizer converted from tokenizer.bin */
    if (ellm_model_export_gguf(ref, gguf, &err)) t_die("export gguf", &err);
    ellm_model *mg = load(gguf, NULL);
    CHECK(mg->llm.cfg.rope_layout == ELLM_ROPE_INTERLEAVED, "GGUF llama export not interleaved");
    float *lg = all_logits(mg, ids, N_POS);
    double dg = max_diff(lr, lg, n);
    CHECK(dg < 1e-4, "GGUF export: logits differ by %g", dg);
    const ellm_tokenizer *tok = ellm_model_tokenizer(mg);
    CHECK(tok != NULL, "GGUF export carries no tokenizer");
    if (tok) {
        int32_t *pid;
        size_t np;
        if (ellm_tokenize(tok, "Once upon a time", 16, 1, 0, &pid, &np, &err)) t_die("tokenize", &err);
        CHECK(np == 5 && memcmp(pid, ids, np * sizeof *pid) == 0, "GGUF tokenizer encodes the prompt differently");
        free(pid);
    }
    printf("export: GGUF logits max diff %.3g\n", dg);
    free(lg);
    ellm_model_free(mg);

    /* uint8 .ellm -> HF (dequantized) == the .ellm run with float activations */
    ellm_compress_options co;
    ellm_compress_options_default(&co);
    co.bits = 8;
    if (ellm_compress(src, u8, &co, NULL, &err)) t_die("compress", &err);
    ellm_model *mq = load(u8, NULL);
    mq->llm.kern.exact = 1;
    if (ellm_model_export_hf(mq, hf8, &err)) t_die("export hf from .ellm", &err);
    ellm_model *mq2 = load(hf8, NULL);
    float *lq = all_logits(mq, ids, N_POS), *lq2 = all_logits(mq2, ids, N_POS);
    double dq = max_diff(lq, lq2, n);
    CHECK(dq < 1e-4, "uint8 .ellm vs its HF export: logits differ by %g", dq);
    printf("export: uint8 .ellm vs its dequantized HF export max diff %.3g\n", dq);
    free(lq), free(lq2);
    ellm_model_free(mq), ellm_model_free(mq2);

    /* A destination that cannot be written is an error, not a crash. */
    CHECK(ellm_model_export_gguf(ref, "/nonexistent-dir/x.gguf", &err) != ELLM_OK, "export to a missing dir");
    CHECK(ellm_model_export_hf(ref, "/nonexistent-dir/sub/x", &err) == ELLM_E_IO, "export to a missing dir");

    free(lr);
    ellm_model_free(ref);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(ids), free(src);
    if (t_failures) {
        fprintf(stderr, "%d failures\n", t_failures);
        return 1;
    }
    return 0;
}
