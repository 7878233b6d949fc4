/* fuzz_safetensors.c - libFuzzer target: the safetensors header parser on
 * arbitrary bytes; every accepted file must satisfy the parser's promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    ellm_error err;
    if (st_parse_buffer(data, size, "fuzz.safetensors", &f, &err) != ELLM_OK) return 0;
    /* Accepted: tensors tile [data_start, size) in order. */
    uint64_t at = f.data_start;
    for (size_t i = 0; i < f.n_tensors; i++) {
        if (f.tensors[i].begin != at || f.tensors[i].end < f.tensors[i].begin || f.tensors[i].end > size) abort();
        if (f.tensors[i].n_dims < 0 || f.tensors[i].n_dims > 4) abort();
        at = f.tensors[i].end;
    }
    if (at != size) abort();
    st_free(&f);
    return 0;
}
