/*
 * test_conformance.c - every reference tokenization in the shared data,
 * through every loader that can read its vocabulary:
 *   vocab/ggml-vocab-*.gguf pairs (llama-spm, phi-3, gpt-2, starcoder), SmolLM through
 *   SmolLM2's tokenizer.json, Phi-3 through Phi-3.5's tokenizer.json and
 *   tokenizer.model, Llama 2 through llama2.c's tokenizer.model, Mistral v1/v3
 *   through mistral-common's .model files, and stories260K's tok512.bin
 *   against llama2.c's run.c output.
 * Prints "name: passed/total" per tokenizer; fails unless all pass.
 */
#include "tokenizer/test_tok_util.h"

static void pair(const char *name, const char *vocab, const char *inp, const char *out, ellm_tok_kind kind) {
    ellm_tokenizer *t = load_tok(vocab);
    CHECK(ellm_tokenizer_kind(t) == kind, "%s: kind %s", name, ellm_tokenizer_kind_name(t));
    run_cases(name, t, inp, out, 1);
    ellm_tokenizer_free(t);
}

/* stories260K: run.c encodes "Once upon a time" as BOS + the first prompt ids
 * of the reference id line, and decoding the whole line gives its text. */
static void stories260k(void) {
    size_t size;
    uint8_t *ref = read_data("stories260K/reference-greedy-once-upon-a-time.txt", &size);
    /* text: the lines between the comment header and "# ids:"; ids: the next line */
    char *s = (char *)ref;
    char *text = NULL, *ids_line = NULL;
    char *p = s;
    while (*p == '#') p = strchr(p, '\n') + 1;
    text = p;
    char *marker = strstr(p, "\n# ids:\n");
    CHECK(marker != NULL, "no '# ids:' line");
    if (!marker) return;
    size_t text_len = (size_t)(marker - text); /* run.c ends with printf("\n"): not part of the tokens */
    ids_line = marker + strlen("\n# ids:\n");
    int32_t ref_ids[1024];
    size_t n_ref = 0;
    for (char *q = ids_line; *q && *q != '\n' && n_ref < 1024;) {
        ref_ids[n_ref++] = (int32_t)strtol(q, &q, 10);
        while (*q == ' ') q++;
    }
    ellm_tokenizer *t = load_tok("stories260K/tok512.bin");
    CHECK(ellm_tokenizer_kind(t) == ELLM_TOK_LLAMA2C, "tok512.bin kind %s", ellm_tokenizer_kind_name(t));
    CHECK(ellm_tokenizer_vocab_size(t) == 512, "vocab %d", (int)ellm_tokenizer_vocab_size(t));
    int32_t *ids;
    size_t n;
    ellm_error err;
    const char *prompt = "Once upon a time";
    int ok = 0;
    if (ellm_tokenize(t, prompt, strlen(prompt), 1, 0, &ids, &n, &err) == ELLM_OK) {
        ok = n > 1 && n <= n_ref && !memcmp(ids, ref_ids, n * sizeof *ids) && ids[0] == 1;
        if (!ok) {
            print_ids("want", ref_ids, n < n_ref ? n + 1 : n_ref);
            print_ids("got ", ids, n);
        }
        free(ids);
    }
    char *dec;
    size_t dlen;
    int dec_ok = 0;
    if (ellm_detokenize(t, ref_ids, n_ref, &dec, &dlen, &err) == ELLM_OK) {
        dec_ok = dlen == text_len && !memcmp(dec, text, dlen);
        if (!dec_ok) fprintf(stderr, "  decoded:\n%s\n  want:\n%.*s\n", dec, (int)text_len, text);
        free(dec);
    }
    /* the same checkpoint's tokenizer found through the model path */
    ellm_tokenizer *t2 = load_tok("stories260K/stories260K.bin");
    CHECK(ellm_tokenizer_vocab_size(t2) == 512, "tokenizer beside stories260K.bin");
    ellm_tokenizer_free(t2);
    printf("stories260K tok512.bin: encode %d/1, decode %d/1 (%zu ids)\n", ok, dec_ok, n_ref);
    CHECK(ok, "encode 'Once upon a time'");
    CHECK(dec_ok, "decode the reference ids");
    ellm_tokenizer_free(t);
    free(ref);
}

int main(void) {
    pair("llama-spm (GGUF)", "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-llama-spm.gguf.inp",
         "vocab/ggml-vocab-llama-spm.gguf.out", ELLM_TOK_SPM);
    pair("llama-spm (llama2 tokenizer.model)", "llama2_tokenizer/tokenizer.model",
         "vocab/ggml-vocab-llama-spm.gguf.inp", "vocab/ggml-vocab-llama-spm.gguf.out", ELLM_TOK_SPM);
    pair("phi-3 (GGUF)", "vocab/ggml-vocab-phi-3.gguf", "vocab/ggml-vocab-phi-3.gguf.inp",
         "vocab/ggml-vocab-phi-3.gguf.out", ELLM_TOK_SPM);
    pair("phi-3 (phi-3.5 tokenizer.json)", "hf/phi-3.5-mini-instruct/tokenizer.json",
         "vocab/ggml-vocab-phi-3.gguf.inp", "vocab/ggml-vocab-phi-3.gguf.out", ELLM_TOK_SPM);
    pair("phi-3 (phi-3.5 tokenizer.model)", "hf/phi-3.5-mini-instruct/tokenizer.model",
         "vocab/ggml-vocab-phi-3.gguf.inp", "vocab/ggml-vocab-phi-3.gguf.out", ELLM_TOK_SPM);
    pair("mistral-v1 (tokenizer.model.v1)", "hf/mistral-7b-instruct/mistral-common/tokenizer.model.v1",
         "hf/mistral-7b-instruct/generated/mistral-v1.inp", "hf/mistral-7b-instruct/generated/mistral-v1.out",
         ELLM_TOK_SPM);
    pair("mistral-v3 (model.v3)", "hf/mistral-7b-instruct/mistral-common/mistral_instruct_tokenizer_240323.model.v3",
         "hf/mistral-7b-instruct/generated/mistral-v3.inp", "hf/mistral-7b-instruct/generated/mistral-v3.out",
         ELLM_TOK_SPM);
    pair("gpt-2 (GGUF)", "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-gpt-2.gguf.inp",
         "vocab/ggml-vocab-gpt-2.gguf.out", ELLM_TOK_BPE);
    pair("starcoder (GGUF)", "vocab/ggml-vocab-starcoder.gguf", "vocab/ggml-vocab-starcoder.gguf.inp",
         "vocab/ggml-vocab-starcoder.gguf.out", ELLM_TOK_BPE);
    pair("smollm (smollm2 tokenizer.json)", "hf/smollm2-1.7b-resaved/tokenizer.json",
         "vocab/ggml-vocab-smollm.gguf.inp", "vocab/ggml-vocab-smollm.gguf.out", ELLM_TOK_BPE);
    stories260k();
    if (g_failures) {
        fprintf(stderr, "%d failures\n", g_failures);
        return 1;
    }
    printf("all conformance cases pass\n");
    return 0;
}
