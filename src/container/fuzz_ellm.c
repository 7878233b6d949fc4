/*
 * fuzz_ellm.c - libFuzzer target for the .ellm reader: arbitrary bytes are
 * opened, every tensor verified, described and loaded. Must never crash, hang or read
 * out of bounds; errors are fine. Build: cmake -DELLM_FUZZ=ON with clang.
 * Run with scripts/fuzz.sh (seeds: stories260K compressed by the script, and
 * fuzz_seeds/fuzz_ellm/: an 11-tensor model of `entrollm synth` (hidden 8,
 * one layer, vocab 16) compressed uint4 Huffman, uint8 rANS per row, uint4 raw
 * groups of 4 with float norms, uint8 auto - small, so that mutations reach
 * the directory often; scripts/make-fuzz-seeds.sh re-makes them after a format change).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "container/container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_ellm_%d.ellm", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    ellm_file *f = NULL;
    ellm_error err;
    if (ellm_file_open(path, &f, &err) == ELLM_OK) {
        ellm_file_verify(f, 1, &err);
        for (size_t i = 0; i < f->n_tensors; i++) {
            ellm_tensor_info info;
            ellm_file_tensor_info(f, i, &info);
        }
        /* Loading copies scales, zeros and raw blocks out of unaligned payloads. */
        ellm_qtensor *q = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *q);
        if (q && ellm_file_load_tensors(f, NULL, f->n_tensors, NULL, 0, q, NULL, &err) == ELLM_OK)
            for (size_t i = 0; i < f->n_tensors; i++) ellm_qtensor_free(&q[i]);
        free(q);
        ellm_file_close(f);
    }
    unlink(path);
    return 0;
}
