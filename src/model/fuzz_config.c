/*
 * fuzz_config.c - libFuzzer target for the model configuration parser:
 * arbitrary bytes as config.json. Must never crash or leak; errors are fine.
 * Build: cmake -DELLM_FUZZ=ON with clang. Seeds: the config.json files under
 * ../shared/data/hf and those `entrollm synth` writes.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ellm_llm_config c;
    ellm_error err;
    if (ellm_llm_config_parse(text, "fuzz", &c, &err) == ELLM_OK) {
        /* invariants the forward pass relies on */
        if (c.dim <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0 || c.head_dim % 2 != 0 ||
            (c.rope_scaling == ELLM_ROPE_SCALING_LONGROPE && (!c.rope_short_factor || !c.rope_long_factor)))
            abort();
        ellm_llm_config_free(&c);
    }
    free(text);
    return 0;
}
