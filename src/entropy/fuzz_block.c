/*
 * fuzz_block.c - libFuzzer target: any byte string as a coded block.
 * ec_view_open must reject it cleanly or accept it; if accepted, every
 * segment is decoded into an exactly sized buffer (ASan reports any write
 * outside it) and may only fail with ELLM_E_FORMAT.
 *
 * Build: cmake -DELLM_FUZZ=ON -DCMAKE_C_COMPILER=clang; run e.g.
 *   ./fuzz_block -max_total_time=120 -max_len=4096
 */
#include <stdlib.h>
#include <string.h>

#include "entropy/entropy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact copy, so reads past the block are caught too. */
    uint8_t *block = malloc(size ? size : 1);
    if (!block) return 0;
    memcpy(block, data, size);
    ec_view v;
    ellm_error err;
    if (ec_view_open(block, size, "fuzz", &v, &err) == ELLM_OK) {
        uint64_t nb = ec_decoded_bytes(v.bits, v.n_symbols);
        /* bounded: a block of size bytes cannot describe more than ~size*8 symbols per segment
         * in a way that passes validation, but n_symbols itself is only bounded by the segment
         * count; keep memory sane */
        if (nb <= (64u << 20)) {
            uint8_t *out = malloc(nb ? nb : 1);
            if (out) {
                for (uint64_t i = 0; i < v.n_segments; i++) {
                    ellm_status st = ec_decode_segment(&v, i, out, &err);
                    if (st != ELLM_OK && st != ELLM_E_FORMAT) abort();
                }
                free(out);
            }
        }
        ec_view_close(&v);
    }
    free(block);
    return 0;
}
