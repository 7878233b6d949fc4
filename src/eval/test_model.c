/* test_model.c - the evaluation plumbing on the real stories260K model:
 * log-probabilities from batched scoring equal token-by-token ones and do
 * not depend on what the KV cache held before (prefix reuse); the plain
 * (RAW) twin of a .ellm file holds bit-identical integers; the Figure 4
 * histogram counts every quantized weight once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "common/pool.h"
#include "common/testing.h"
#include "container/container.h"
#include "entropy/entropy.h"
#include "eval/eval.h"

static void test_scoring(const char *path) {
    ellm_error err = {0};
    ellm_model *m;
    ellm_lm lm;
    if (ellm_eval_open(path, 1, NULL, NULL, &m, &lm, &err)) test_die("load", &err);
    CHECK(lm.n_ctx == 512 && lm.vocab_size == 512 && lm.bos == 1);
    const char *a = "Once upon a time, there was a little girl named Lily. She loved to play with her toys.";
    const char *b = "Once upon a time, there was a little girl named Lily. She saw a big dog in the park.";
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    if (lm.tokenize(lm.ctx, a, strlen(a), 1, &ia, &na, &err) || lm.tokenize(lm.ctx, b, strlen(b), 1, &ib, &nb, &err))
        test_die("tokenize", &err);
    CHECK(ia[0] == 1 && na > 10 && nb > 10);
    double *la = malloc(na * sizeof *la), *lb = malloc(nb * sizeof *lb), *lb2 = malloc(nb * sizeof *lb2);
    float *logits = malloc(512 * sizeof *logits);
    /* batched vs one token at a time */
    if (lm.logprobs(lm.ctx, ia, na, 1, la, &err)) test_die("logprobs", &err);
    double maxd = 0;
    for (size_t i = 1; i < na; i++) {
        if (lm.next_logits(lm.ctx, ia, i, logits, &err)) test_die("next_logits", &err);
        maxd = fmax(maxd, fabs(ellm_log_softmax_at(logits, 512, ia[i]) - la[i - 1]));
    }
    CHECK(maxd < 1e-4);
    /* b after a (shared prefix reused from the cache) == b on a fresh model */
    if (lm.logprobs(lm.ctx, ia, na, 1, la, &err) || lm.logprobs(lm.ctx, ib, nb, 5, lb, &err))
        test_die("logprobs", &err);
    ellm_model *m2;
    ellm_lm lm2;
    if (ellm_eval_open(path, 1, NULL, NULL, &m2, &lm2, &err)) test_die("load", &err);
    if (lm2.logprobs(lm2.ctx, ib, nb, 5, lb2, &err)) test_die("logprobs", &err);
    for (size_t i = 0; i + 5 < nb; i++) CHECK(lb[i] == lb2[i]);
    /* the contract is enforced */
    CHECK(lm.logprobs(lm.ctx, ia, na, 0, la, &err) == ELLM_E_ARG);
    int32_t bad[2] = {1, 600};
    CHECK(lm.logprobs(lm.ctx, bad, 2, 1, la, &err) == ELLM_E_ARG);
    int32_t *big = calloc(513, sizeof *big);
    CHECK(lm.logprobs(lm.ctx, big, 513, 1, la, &err) == ELLM_E_ARG);
    free(big);
    ellm_eval_close(m2, &lm2);
    ellm_eval_close(m, &lm);
    free(ia), free(ib), free(la), free(lb), free(lb2), free(logits);
}

static void test_raw_twin_and_histogram(const char *path, int bits, const char *dir) {
    ellm_error err = {0};
    char coded[512], plain[512];
    snprintf(coded, sizeof coded, "%s/u%d.ellm", dir, bits);
    snprintf(plain, sizeof plain, "%s/u%d-plain.ellm", dir, bits);
    ellm_compress_options o;
    ellm_compress_options_default(&o);
    o.bits = bits;
    o.n_threads = 1;
    if (bits == 8) o.keep = ELLM_KEEP_NORMS; /* float tensors travel into the twin too */
    if (ellm_compress(path, coded, &o, NULL, &err)) test_die("compress", &err);
    if (ellm_eval_store_raw(coded, plain, 2, &err)) test_die("store raw", &err);
    ellm_file *f1 = NULL, *f2 = NULL;
    if (ellm_file_open(coded, &f1, &err) || ellm_file_open(plain, &f2, &err)) test_die("open", &err);
    CHECK(f1->n_tensors == f2->n_tensors && f1->n_blobs == f2->n_blobs);
    ellm_qtensor *q1 = calloc(f1->n_tensors, sizeof *q1), *q2 = calloc(f2->n_tensors, sizeof *q2);
    if (ellm_file_load_tensors(f1, NULL, f1->n_tensors, NULL, 0, q1, NULL, &err) ||
        ellm_file_load_tensors(f2, NULL, f2->n_tensors, NULL, 0, q2, NULL, &err))
        test_die("load tensors", &err);
    uint64_t int_params = 0;
    size_t coded_tensors = 0;
    for (size_t i = 0; i < f1->n_tensors && i < f2->n_tensors; i++) {
        const ellm_ftensor *t = &f1->tensors[i];
        CHECK(strcmp(t->name, f2->tensors[i].name) == 0);
        CHECK(f2->tensors[i].coder == ELLM_CODER_RAW && f2->tensors[i].bits == t->bits);
        uint64_t bytes = t->bits == 32 ? t->n * 4 : ec_decoded_bytes(t->bits, t->n);
        CHECK(memcmp(q1[i].data, q2[i].data, bytes) == 0);
        if (t->bits != 32) {
            int_params += t->n;
            coded_tensors += t->coder != ELLM_CODER_RAW;
            CHECK(memcmp(q1[i].qp.scales, q2[i].qp.scales, t->n_groups * 4) == 0);
            CHECK(memcmp(q1[i].qp.zeros, q2[i].qp.zeros, t->n_groups) == 0);
        }
        ellm_qtensor_free(&q1[i]);
        ellm_qtensor_free(&q2[i]);
    }
    CHECK(coded_tensors > 0);
    if (bits == 8) CHECK(int_params < 260032); /* the norms stayed in float */
    for (size_t i = 0; i < f1->n_blobs && i < f2->n_blobs; i++)
        CHECK(f1->blobs[i].size == f2->blobs[i].size && memcmp(f1->blobs[i].data, f2->blobs[i].data, f1->blobs[i].size) == 0);
    free(q1), free(q2);
    ellm_file_close(f1);
    ellm_file_close(f2);

    /* Figure 4 counts every integer once; coded and plain give the same */
    ellm_histogram h1, h2;
    if (ellm_eval_histogram(coded, bits, 1, &h1, &err) || ellm_eval_histogram(plain, bits, 1, &h2, &err))
        test_die("histogram", &err);
    CHECK(h1.total == int_params && h1.total > 200000);
    CHECK(memcmp(h1.counts, h2.counts, sizeof h1.counts) == 0);
    uint64_t sum = 0;
    for (int v = 0; v < 256; v++) sum += h1.counts[v];
    CHECK(sum == h1.total);
    if (bits == 4)
        for (int v = 16; v < 256; v++) CHECK(h1.counts[v] == 0);
    CHECK(h1.entropy_bits > 0 && h1.entropy_bits <= bits);
    char svg[512];
    snprintf(svg, sizeof svg, "%s/fig%d.svg", dir, bits);
    if (ellm_write_histogram_svg(&h1, 1, "test <figure> & title", svg, &err)) test_die("svg", &err);
    uint8_t *text;
    size_t len;
    if (ellm_read_file(svg, &text, &len, &err)) test_die("read svg", &err);
    CHECK(strstr((char *)text, "<svg") && strstr((char *)text, "</svg>") && strstr((char *)text, "&lt;figure&gt; &amp;"));
    free(text);
    unlink(svg), unlink(coded), unlink(plain);
    /* a missing input names the file */
    CHECK(ellm_eval_store_raw("/nonexistent.ellm", plain, 1, &err) != ELLM_OK && strstr(err.message, "/nonexistent.ellm"));
    CHECK(!ellm_path_exists(plain));
}

int main(void) {
    char *path = test_data_path("stories260K/stories260K.bin");
    test_scoring(path);
    char dir[] = "/tmp/ellm-eval-test-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_raw_twin_and_histogram(path, 8, dir);
    test_raw_twin_and_histogram(path, 4, dir);
    rmdir(dir);
    free(path);
    return test_finish("eval on stories260K");
}
