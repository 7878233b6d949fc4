/*
 * bitalloc.h - bit allocation across tensors for a target size: given, for
 * every tensor, a few candidate encodings (e.g. uint8, uint4, uint4 with
 * groups) with their exact stored size and their quantization error, pick
 * one per tensor so that the total size fits a budget and the total error
 * is as small as the greedy marginal-analysis rule can make it.
 * docs/QUANTIZATION.md ("Bit allocation") says why and what it costs.
 */
#ifndef ELLM_BITALLOC_H
#define ELLM_BITALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "entrollm.h"

/* A candidate that does not exist for a tensor (e.g. a group larger than
 * the tensor) has bytes == ELLM_BITALLOC_NONE. */
#define ELLM_BITALLOC_NONE UINT64_MAX

/* bytes[t * n_cands + c] and error[t * n_cands + c] describe candidate c of
 * tensor t (every tensor needs at least one existing candidate). Writes
 * choice[t] (a candidate index) for each of the n_tensors tensors and the
 * total size in *used (may be NULL).
 *
 * Start: each tensor's smallest candidate (ties: the smaller error). Then,
 * repeatedly, among all moves of one tensor to a candidate of smaller error
 * that keep the total within `budget`, take the one with the largest error
 * reduction per added byte (a move that adds no bytes comes first; ties: the
 * lower tensor index, then the lower candidate index). Each move lowers the
 * total error, so it ends after at most n_tensors * (n_cands - 1) moves.
 * While every move fits this walks the lower convex hull of each tensor's
 * (size, error) points (marginal analysis); near the budget it fills what
 * is left with whatever single move still fits.
 *
 * Fails with ELLM_E_ARG when even the smallest choice exceeds the budget
 * (the message gives that minimum in bytes). */
ellm_status ellm_bitalloc(const uint64_t *bytes, const double *error, size_t n_tensors, size_t n_cands,
                          uint64_t budget, int *choice, uint64_t *used, ellm_error *err);

#endif /* ELLM_BITALLOC_H */
