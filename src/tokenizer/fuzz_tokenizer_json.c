/*
 * fuzz_tokenizer_json.c - libFuzzer target for the tokenizer file parsers:
 * the first byte picks tokenizer.json, SentencePiece .model, llama2.c .bin,
 * GGUF or a set of blobs with config files; the rest is the file. Parsing must
 * fail cleanly or give a tokenizer that encodes and decodes without fault.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    ellm_tokenizer *t = NULL;
    ellm_error err;
    ellm_status st;
    switch (data[0] % 5) {
    case 0: st = ellm_tokenizer_from_hf_json(d, n, "fuzz.json", &t, &err); break;
    case 1: st = ellm_tokenizer_from_spm_model(d, n, "fuzz.model", &t, &err); break;
    case 2: st = ellm_tokenizer_from_llama2c(d, n, "fuzz.bin", &t, &err); break;
    case 3: st = ellm_tokenizer_from_gguf(d, n, "fuzz.gguf", &t, &err); break;
    default: {
        /* the input split in two: a SentencePiece model and a tokenizer_config.json */
        size_t half = n / 2;
        ellm_blob_ref blobs[] = {{"tokenizer.model", d, half}, {"tokenizer_config.json", d + half, n - half}};
        st = ellm_tokenizer_from_blobs(blobs, 2, "fuzz", &t, &err);
        break;
    }
    }
    if (st) {
        if (!err.message[0]) abort(); /* every error says why */
        return 0;
    }
    static const char sample[] = "Hello world! 123 <s>[INST] <|im_start|>\xF0\x9F\xA6\x99 \xff\n\t  x";
    int32_t *ids;
    size_t k;
    if (ellm_tokenize(t, sample, sizeof sample - 1, 1, 1, &ids, &k, &err) == ELLM_OK) {
        char *back;
        size_t blen;
        if (ellm_detokenize(t, ids, k, &back, &blen, &err) == ELLM_OK) free(back);
        free(ids);
    }
    const ellm_chat_message msgs[] = {{"system", "s"}, {"user", "u"}, {"assistant", "a"}};
    char *chat;
    if (ellm_tokenizer_chat_render(t, msgs, 3, 1, &chat, &err) == ELLM_OK) free(chat);
    ellm_tokenizer_free(t);
    return 0;
}
