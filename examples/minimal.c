/*
 * minimal.c - the public API in a few lines: compress a model, verify the
 * .ellm file, load it and greedily continue a prompt.
 *
 *   cc minimal.c $(pkg-config --cflags --libs entrollm) -o minimal
 *   ./minimal MODEL OUT.ellm "Once upon a time"
 */
#include <entrollm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const ellm_error *err) {
    fprintf(stderr, "error: %s\n", err->message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL OUT.ellm PROMPT\n", argv[0]);
        return 2;
    }
    ellm_error err = {0};
    ellm_compress_options co;
    ellm_compress_options_default(&co); /* uint8, scheme chosen per tensor, Huffman */
    ellm_compress_report *report;
    if (ellm_compress(argv[1], argv[2], &co, &report, &err)) return fail(&err);
    printf("%llu parameters, %.3f bits/weight (entropy bound %.3f)\n", (unsigned long long)report->params,
           report->effective_bits_per_weight, report->entropy_bits_per_weight);
    ellm_compress_report_free(report);

    ellm_file *file;
    if (ellm_file_open(argv[2], &file, &err) || ellm_file_verify(file, 0, &err)) return fail(&err);
    ellm_file_close(file);

    ellm_load_options lo;
    ellm_load_options_default(&lo);
    ellm_model *model;
    if (ellm_model_load(argv[2], &lo, &model, &err)) return fail(&err);
    ellm_model_info info;
    ellm_model_get_info(model, &info);
    const ellm_tokenizer *tok = ellm_model_tokenizer(model);
    int32_t *ids;
    size_t n;
    if (ellm_tokenize(tok, argv[3], strlen(argv[3]), 1, 0, &ids, &n, &err)) return fail(&err);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    int32_t next = 0;
    size_t len = n;
    ids = realloc(ids, sizeof *ids * (n + 32));
    ellm_sampler_options so = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    ellm_sampler *sampler = ellm_sampler_new(&so, info.vocab_size);
    if (ellm_model_forward(model, ids, (int)n, 0, logits, 0, &err)) return fail(&err);
    for (int i = 0; i < 32; i++) {
        next = ellm_sample(sampler, logits);
        ids[len++] = next;
        if (ellm_model_forward(model, &next, 1, (int)len - 1, logits, 0, &err)) return fail(&err);
    }
    char *text;
    size_t text_len;
    if (ellm_detokenize(tok, ids, len, &text, &text_len, &err)) return fail(&err);
    printf("%s\n", text);
    free(text);
    free(ids);
    free(logits);
    ellm_sampler_free(sampler);
    ellm_model_free(model);
    return 0;
}
