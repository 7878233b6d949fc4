/*
 * decode.h - parallel decoding of coded blocks (the paper's parallel segment
 * decoding).
 *
 * All segments of all the blocks given form one job. Segments are handed to
 * threads in a shuffled order (a fixed-seed permutation), not in contiguous
 * runs, so that every thread gets an even share of long and short codes; each
 * segment is written straight to its final place in its tensor's buffer.
 */
#ifndef ELLM_DECODE_H
#define ELLM_DECODE_H

#include "common/pool.h"
#include "entropy/entropy.h"

/* Decodes views[i] into outs[i] (ec_decoded_bytes(...) bytes each) on the
 * pool (NULL = calling thread only). On a corrupt segment returns
 * ELLM_E_FORMAT naming the block (views[i] `what`) and segment. */
ellm_status ellm_decode_blocks(const ec_view *views, const char *const *names, uint8_t *const *outs,
                               size_t n_views, ellm_pool *pool, ellm_error *err);

#endif /* ELLM_DECODE_H */
