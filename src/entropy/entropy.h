/*
 * entropy.h - lossless coding of quantized integers in independently
 * decodable segments.
 *
 * A tensor's n symbols (each < 2^bits, bits = 8 or 4) are cut into segments
 * of S symbols (the last may be shorter). The encoder produces one "coded
 * block": a self-describing byte string holding the coder's table (Huffman
 * code lengths or rANS frequencies), the start offset of every segment and
 * the coded stream. Its exact layout is in docs/CODED_BLOCK.md.
 * The container stores the block as a tensor's payload unchanged, and the
 * decoder reads it in place (from the mmap).
 *
 * Decoded output is in the in-memory layout the kernels use:
 *   bits 8: one byte per symbol;
 *   bits 4: two symbols per byte, symbol 2k in the low nibble of byte k,
 *           symbol 2k+1 in the high nibble (S is even, so every segment
 *           starts on a byte boundary).
 * Decoding segment i writes only its own bytes, so segments can be decoded by
 * any thread in any order, straight into the final buffer.
 */
#ifndef ELLM_ENTROPY_H
#define ELLM_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"
#include "entrollm.h"

/* Huffman code lengths are limited to this, so one lookup in a table of
 * 2^EC_HUF_MAX_LEN entries decodes any symbol. */
#define EC_HUF_MAX_LEN 11

/* Bytes the fast decode loops may read past the end of a segment's data.
 * Blocks carry no padding: the decoder reads the last segments from a
 * padded copy (ec_tables.tail). */
#define EC_STREAM_PAD 16

/* Default symbols per segment when the caller passes 0. */
#define EC_DEFAULT_SEGMENT 16384

/* Shannon entropy (bits/symbol) of a histogram. */
double ec_entropy(const uint64_t *hist, int alphabet);
/* Histogram of n symbols (alphabet 256 or 16). */
void ec_histogram(const uint8_t *symbols, uint64_t n, int alphabet, uint64_t *hist);

/* Canonical Huffman: code lengths (0 = unused symbol) limited to max_len,
 * for the given histogram. Handles one used symbol (length 1) and all-zero
 * histograms (all lengths 0). */
ellm_status ec_huffman_lengths(const uint64_t *hist, int alphabet, int max_len, uint8_t *lens,
                               ellm_error *err);

/* Encodes symbols (one byte each, unpacked, values < 2^bits) into a coded
 * block. segment_symbols = 0 chooses EC_DEFAULT_SEGMENT (rounded to even).
 * pool may be NULL (single thread). *block is malloc'd. */
ellm_status ec_encode(ellm_coder coder, int bits, const uint8_t *symbols, uint64_t n,
                      uint32_t segment_symbols, ellm_pool *pool, uint8_t **block,
                      size_t *block_size, ellm_error *err);
/* The same for the symbols of a row-major tensor whose rows hold row_len
 * symbols (0 = not a matrix): rANS may then give classes of rows or of
 * columns their own frequency tables when that makes the block smaller. */
ellm_status ec_encode_rows(ellm_coder coder, int bits, const uint8_t *symbols, uint64_t n, uint64_t row_len,
                           uint32_t segment_symbols, ellm_pool *pool, uint8_t **block,
                           size_t *block_size, ellm_error *err);

/* A parsed, validated block with its decode tables built. */
typedef struct ec_view {
    ellm_coder coder;
    int bits;
    uint64_t n_symbols;
    uint32_t segment_symbols;
    uint64_t n_segments;
    const uint8_t *block;
    size_t block_size;
    void *tables; /* coder-specific decode tables (owned) */
} ec_view;

/* Validates the header, table and segment offsets of a block (every offset
 * inside the block, monotonic), and builds the decode tables. `what` names
 * the tensor in messages. */
ellm_status ec_view_open(const uint8_t *block, size_t block_size, const char *what, ec_view *v,
                         ellm_error *err);
void ec_view_close(ec_view *v);

/* rANS blocks: states per segment, frequency tables and the class axis (0
 * rows, 1 columns); zeros for Huffman. */
void ec_view_rans_layout(const ec_view *v, int *n_states, int *n_classes, int *axis);

/* Decoded size in bytes of the whole tensor (see layout above). */
uint64_t ec_decoded_bytes(int bits, uint64_t n_symbols);

/* Decodes one segment into out (the base of the whole tensor's buffer).
 * Returns ELLM_E_FORMAT if the segment's bits are inconsistent (a corrupted
 * stream never writes outside its own bytes). */
ellm_status ec_decode_segment(const ec_view *v, uint64_t segment, uint8_t *out, ellm_error *err);

#endif /* ELLM_ENTROPY_H */
