/*
 * compress.c - the compression pipeline: source model -> per-tensor
 * quantization -> entropy coding -> .ellm file.
 *
 * It streams: one tensor is read, quantized, coded and written before the
 * next is read, so peak memory is about 6 bytes per element of the largest
 * tensor (its floats, its codes, its coded block) whatever the model's size.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "container/container.h"
#include "entropy/entropy.h"
#include "formats/source.h"
#include "quant/bitalloc.h"
#include "quant/quant.h"

void ellm_compress_options_default(ellm_compress_options *o) {
    memset(o, 0, sizeof *o);
    o->bits = 8;
    o->scheme = ELLM_SCHEME_AUTO;
    o->granularity = ELLM_GRAN_TENSOR;
    o->group_size = 0;
    o->coder = ELLM_CODER_AUTO;
    o->segment_symbols = 0;
    o->keep = ELLM_KEEP_NONE;
    o->n_threads = 0;
}

void ellm_compress_report_free(ellm_compress_report *r) {
    if (!r) return;
    free(r->tensors);
    free(r);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Why a tensor stays in float under the keep flags, or NULL to quantize it.
 * Names of every source convention: HF, llama2.c/Meta, GGUF. */
static const char *keep_reason(const char *name, unsigned keep) {
    if ((keep & ELLM_KEEP_NORMS) && strstr(name, "norm")) return "--keep norms";
    if ((keep & ELLM_KEEP_BIASES) && ends_with(name, ".bias")) return "--keep biases";
    if ((keep & ELLM_KEEP_EMBEDDINGS) &&
        (strstr(name, "embed_tokens") || strstr(name, "tok_embeddings") || strstr(name, "token_embd")))
        return "--keep embeddings";
    if ((keep & ELLM_KEEP_OUTPUT) && (strstr(name, "lm_head") || strcmp(name, "output.weight") == 0))
        return "--keep output";
    return NULL;
}

static const char *granularity_name(ellm_granularity g) {
    return g == ELLM_GRAN_ROW ? "row" : g == ELLM_GRAN_GROUP ? "group" : "tensor";
}

/* The metadata JSON: source, config, quantization choices. */
static char *build_metadata(const src_model *src, const ellm_compress_options *o, int *generated, ellm_error *err) {
    json_error_t jerr;
    json_t *config = json_loads(src->config_json ? src->config_json : "{}", 0, &jerr);
    if (!config || !json_is_object(config)) {
        json_decref(config);
        ellm_fail(err, ELLM_E_FORMAT, "%s: model config is not a JSON object: %s", src->path, jerr.text);
        return NULL;
    }
    char checksum[32];
    snprintf(checksum, sizeof checksum, "%016llx", (unsigned long long)src->source_checksum);
    json_t *keep = json_array();
    const char *keep_names[] = {"norms", "embeddings", "output", "biases"};
    for (int i = 0; i < 4; i++)
        if (o->keep & (1u << i)) json_array_append_new(keep, json_string(keep_names[i]));
    /* No "format"/"format_version": the header's magic and version say it. */
    json_t *meta = json_pack("{s:s, s:{s:s, s:s, s:s, s:I}, s:o, s:{s:i, s:s, s:s, s:I, s:s, s:I, s:o}}",
                             "producer", "entrollm " ELLM_VERSION_STRING, "source", "path", src->path, "format", src->format,
                             "checksum_xxh3", checksum, "bytes", (json_int_t)src->source_bytes, "config", config,
                             "quantization", "bits", o->bits, "scheme",
                             o->scheme == ELLM_SCHEME_AUTO ? "auto" : ellm_scheme_name(o->scheme), "granularity",
                             granularity_name(o->granularity), "group_size", (json_int_t)o->group_size, "coder",
                             o->coder == ELLM_CODER_AUTO ? "auto" : ellm_coder_name(o->coder), "segment_symbols", (json_int_t)o->segment_symbols, "keep",
                             keep);
    if (!meta) {
        ellm_fail(err, ELLM_E_INTERNAL, "cannot build metadata JSON");
        return NULL;
    }
    if (o->target_bits > 0) {
        json_t *q = json_object_get(meta, "quantization");
        json_object_set_new(q, "bits", json_string("per tensor"));
        json_object_set_new(q, "target_bits", json_real(o->target_bits));
        json_object_set_new(q, "alloc_error", json_string(o->alloc_error == ELLM_ALLOC_RELATIVE ? "relative" : "sse"));
    }
    /* ellm_synth marks its configs: "entrollm_weights": "generated, not trained ..." */
    const char *note = json_string_value(json_object_get(config, "entrollm_weights"));
    *generated = note && strncmp(note, "generated", 9) == 0;
    if (*generated) json_object_set_new(meta, "weights_generated", json_true());
    char *text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    if (!text) ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    return text;
}

/* Scratch buffers reused across tensors (grown to the largest). */
typedef struct scratch {
    float *weights;
    uint8_t *codes;
    uint64_t cap;
} scratch;

static ellm_status scratch_reserve(scratch *s, uint64_t n, ellm_error *err) {
    if (n <= s->cap) return ELLM_OK;
    free(s->weights);
    free(s->codes);
    s->weights = ellm_malloc(n * sizeof(float), err);
    s->codes = ellm_malloc(n, err);
    s->cap = (s->weights && s->codes) ? n : 0;
    return s->cap ? ELLM_OK : ELLM_E_NOMEM;
}

/* How far the dequantized tensor is from the weights: the largest
 * |w - s(q - z)|, the largest |s| and the sum of squared errors. */
static void error_stats(const ellm_qparams *qp, const float *w, const uint8_t *codes, uint64_t n, float *max_err,
                        float *scale_max, double *sq_error) {
    float worst = 0, smax = 0;
    double sq = 0;
    for (uint64_t g = 0; g < qp->n_groups; g++) {
        uint64_t start = g * qp->group_size, len = ELLM_MIN(qp->group_size, n - start);
        float s = qp->scales[g];
        int z = qp->zeros[g];
        if (fabsf(s) > smax) smax = fabsf(s);
        for (uint64_t i = start; i < start + len; i++) {
            float e = s * (float)((int)codes[i] - z) - w[i];
            if (fabsf(e) > worst) worst = fabsf(e);
            sq += (double)e * (double)e;
        }
    }
    *max_err = worst;
    *scale_max = smax;
    *sq_error = sq;
}

/* Codes the integers with one coder: a coded block, or (raw) the plain
 * integers in the in-memory layout. */
static ellm_status encode_with(ellm_coder coder, int bits, const uint8_t *codes, uint64_t n, uint64_t row_len,
                               uint32_t segment, ellm_pool *pool, uint8_t **block, size_t *block_size,
                               ellm_error *err) {
    if (coder != ELLM_CODER_RAW)
        return ec_encode_rows(coder, bits, codes, n, row_len, segment, pool, block, block_size, err);
    *block_size = ec_decoded_bytes(bits, n);
    *block = ellm_malloc(*block_size, err);
    if (!*block) return ELLM_E_NOMEM;
    if (bits == 4) ellm_pack_u4(codes, n, *block);
    else memcpy(*block, codes, n);
    return ELLM_OK;
}

/* --coder auto: raw, Huffman and rANS in order of decode speed, keeping the
 * smallest; on tensors of AUTO_LARGE symbols or more (those rANS codes
 * with 8 states) a slower coder must save at least AUTO_MIN_GAIN of the size. So a large bell-shaped tensor
 * stays Huffman (rANS is ~0.7% smaller there but decodes at ~2/3 of the
 * speed), while small tensors, which decode in well under a millisecond
 * either way, take whatever is smallest (usually rANS: compact tables,
 * classes). */
#define AUTO_MIN_GAIN 0.01
#define AUTO_LARGE 65536u
static ellm_status encode_smallest(int bits, const uint8_t *codes, uint64_t n, uint64_t row_len, uint32_t segment,
                                   ellm_pool *pool,
                                   ellm_coder *chosen, uint8_t **block, size_t *block_size, ellm_error *err) {
    const ellm_coder order[] = {ELLM_CODER_RAW, ELLM_CODER_HUFFMAN, ELLM_CODER_RANS};
    *block = NULL;
    for (size_t i = 0; i < ELLM_ARRAY_LEN(order); i++) {
        uint8_t *b = NULL;
        size_t size = 0;
        ellm_status s = encode_with(order[i], bits, codes, n, row_len, segment, pool, &b, &size, err);
        if (s) {
            free(*block);
            *block = NULL;
            return s;
        }
        double need = n >= AUTO_LARGE ? 1 - AUTO_MIN_GAIN : 1;
        if (!*block || (double)size < (double)*block_size * need) {
            free(*block);
            *block = b;
            *block_size = size;
            *chosen = order[i];
        } else {
            free(b);
        }
    }
    return ELLM_OK;
}

/* How one tensor is quantized: width and granularity. */
typedef struct qchoice {
    int bits;
    ellm_granularity granularity;
    uint32_t group_size;
} qchoice;

/* Row length of a tensor as the quantizer and coders see it. */
static uint64_t tensor_row_len(const src_tensor *st) {
    return st->n_dims >= 2 ? (uint64_t)st->shape[st->n_dims - 1] : st->n_elements;
}

/* Quantizes w (the tensor st) as q asks into codes and qp, and codes the
 * integers with o->coder (auto: the smallest) into *block. */
static ellm_status quantize_and_code(const src_tensor *st, const float *w, const ellm_compress_options *o,
                                     const qchoice *q, ellm_pool *pool, uint8_t *codes, ellm_qparams *qp,
                                     ellm_coder *coder, uint8_t **block, size_t *block_size, ellm_error *err) {
    uint64_t n = st->n_elements, row_len = tensor_row_len(st);
    *block = NULL;
    ellm_status s = ellm_quantize(w, n, row_len, o->scheme, q->bits, q->granularity, q->group_size, st->name, qp,
                                  codes, err);
    if (s) return s;
    uint64_t matrix_row = st->n_dims >= 2 ? row_len : 0; /* rANS may give classes of rows/columns own tables */
    *coder = o->coder;
    if (*coder == ELLM_CODER_AUTO)
        s = encode_smallest(q->bits, codes, n, matrix_row, o->segment_symbols, pool, coder, block, block_size, err);
    else
        s = encode_with(*coder, q->bits, codes, n, matrix_row, o->segment_symbols, pool, block, block_size, err);
    if (s) {
        ellm_qparams_free(qp);
        return ellm_fail_prefix(err, "tensor %s", st->name);
    }
    return ELLM_OK;
}

/* Quantizes (as q says) and codes one tensor, writes it, fills its report row. */
static ellm_status compress_tensor(src_model *src, size_t idx, const ellm_compress_options *o, const qchoice *q,
                                   ellm_pool *pool, scratch *buf, ellm_writer *w, ellm_tensor_report *rep,
                                   ellm_error *err) {
    const src_tensor *st = &src->tensors[idx];
    uint64_t n = st->n_elements;
    ellm_status s = scratch_reserve(buf, n, err);
    if (s || (s = src_read_f32(src, idx, buf->weights, err))) return s;

    snprintf(rep->name, sizeof rep->name, "%s", st->name);
    rep->n_dims = st->n_dims;
    memcpy(rep->shape, st->shape, sizeof rep->shape);
    rep->n_params = n;
    rep->kept_reason = keep_reason(st->name, o->keep);
    ellm_wtensor wt = {.name = st->name, .n_dims = st->n_dims, .shape = st->shape};
    if (rep->kept_reason) {
        rep->scheme = ELLM_SCHEME_FLOAT;
        rep->bits = 32;
        rep->coder = ELLM_CODER_RAW;
        rep->entropy_bits = 32;
        wt.scheme = ELLM_SCHEME_FLOAT;
        wt.bits = 32;
        wt.coder = ELLM_CODER_RAW;
        wt.block = (const uint8_t *)buf->weights;
        wt.block_size = n * 4;
        rep->coded_bytes = n * 4;
        rep->coded_bits_per_weight = 32;
        return ellm_writer_add_tensor(w, &wt, err);
    }

    ellm_qparams qp;
    uint8_t *block = NULL;
    size_t block_size = 0;
    ellm_coder coder;
    s = quantize_and_code(st, buf->weights, o, q, pool, buf->codes, &qp, &coder, &block, &block_size, err);
    if (s) return ellm_fail_prefix(err, "%s", src->path);
    uint64_t hist[256] = {0};
    int alphabet = 1 << q->bits;
    ec_histogram(buf->codes, n, alphabet, hist);
    rep->entropy_bits = ec_entropy(hist, alphabet);
    error_stats(&qp, buf->weights, buf->codes, n, &rep->max_abs_error, &rep->scale_max, &rep->sq_error);
    rep->scheme = qp.scheme;
    rep->bits = q->bits;
    rep->granularity = qp.granularity;
    rep->group_size = (uint32_t)ELLM_MIN(qp.group_size, UINT32_MAX);
    rep->coder = coder;
    wt.scheme = qp.scheme;
    wt.bits = q->bits;
    wt.qp = &qp;
    wt.coder = coder;
    wt.entropy_bits = rep->entropy_bits;
    wt.block = block;
    wt.block_size = block_size;
    s = ellm_writer_add_tensor(w, &wt, err);
    rep->coded_bytes = block_size;
    rep->meta_bytes = qp.n_groups * 5;
    rep->coded_bits_per_weight = n ? 8.0 * (double)(rep->coded_bytes + rep->meta_bytes) / (double)n : 0;
    free(block);
    ellm_qparams_free(&qp);
    return s;
}

/* ------------------------------------------------------------------------- */
/* Bit allocation (--target-bits): pass 1 measures every candidate of every  */
/* tensor, ellm_bitalloc picks one per tensor, pass 2 writes the file.       */
/* ------------------------------------------------------------------------- */

#define MAX_CANDS 5

/* The candidates: uint4 and uint8 at the chosen granularity and, when that
 * is per tensor (the default), uint4 with groups of 128, 64 and 32 too
 * (docs/QUANTIZATION.md has the measurements behind this set). */
static size_t alloc_candidates(const ellm_compress_options *o, qchoice *c) {
    size_t k = 0;
    c[k++] = (qchoice){4, o->granularity, o->group_size};
    c[k++] = (qchoice){8, o->granularity, o->group_size};
    if (o->granularity == ELLM_GRAN_TENSOR) {
        static const uint32_t groups[] = {128, 64, 32};
        for (size_t i = 0; i < ELLM_ARRAY_LEN(groups); i++) c[k++] = (qchoice){4, ELLM_GRAN_GROUP, groups[i]};
    }
    return k;
}

/* A candidate applies to a tensor when its groups are smaller than the
 * tensor (a group as large as the tensor is the per-tensor candidate). */
static bool candidate_applies(const qchoice *c, uint64_t n) {
    return c->granularity != ELLM_GRAN_GROUP || c->group_size < n;
}

/* The mean of w^2 (1 for an all-zero tensor, whose error is 0 anyway). */
static double mean_square(const float *w, uint64_t n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += (double)w[i] * (double)w[i];
    return sum > 0 ? sum / (double)n : 1;
}

/* Pass 1 for one tensor: stored bytes (coded block + scales/zeros) and
 * squared error of each candidate; float-kept tensors have one "candidate"
 * of 4 bytes a weight and no error. */
static ellm_status measure_tensor(src_model *src, size_t idx, const ellm_compress_options *o, const qchoice *cands,
                                  size_t n_cands, ellm_pool *pool, scratch *buf, uint64_t *bytes, double *error,
                                  ellm_error *err) {
    const src_tensor *st = &src->tensors[idx];
    uint64_t n = st->n_elements;
    for (size_t c = 0; c < n_cands; c++) bytes[c] = ELLM_BITALLOC_NONE, error[c] = 0;
    if (keep_reason(st->name, o->keep)) {
        bytes[0] = n * 4;
        return ELLM_OK;
    }
    ellm_status s = scratch_reserve(buf, n, err);
    if (s || (s = src_read_f32(src, idx, buf->weights, err))) return s;
    double scale = o->alloc_error == ELLM_ALLOC_RELATIVE ? 1 / mean_square(buf->weights, n) : 1;
    for (size_t c = 0; c < n_cands && !s; c++) {
        if (!candidate_applies(&cands[c], n)) continue;
        ellm_qparams qp;
        uint8_t *block = NULL;
        size_t block_size = 0;
        ellm_coder coder;
        s = quantize_and_code(st, buf->weights, o, &cands[c], pool, buf->codes, &qp, &coder, &block, &block_size,
                              err);
        if (s) return ellm_fail_prefix(err, "%s", src->path);
        float max_err, scale_max;
        error_stats(&qp, buf->weights, buf->codes, n, &max_err, &scale_max, &error[c]);
        error[c] *= scale;
        bytes[c] = block_size + qp.n_groups * 5;
        free(block);
        ellm_qparams_free(&qp);
    }
    return s;
}

/* Pass 1 over the whole model and the allocation: choice[t] indexes cands;
 * expect[t] is the size pass 2 must reproduce. */
static ellm_status allocate_bits(src_model *src, const ellm_compress_options *o, const qchoice *cands,
                                 size_t n_cands, ellm_pool *pool, scratch *buf, int *choice, uint64_t *expect,
                                 ellm_error *err) {
    size_t nt = src->n_tensors;
    uint64_t *bytes = ellm_calloc(nt ? nt * n_cands : 1, sizeof *bytes, err);
    double *error = ellm_calloc(nt ? nt * n_cands : 1, sizeof *error, err);
    ellm_status s = bytes && error ? ELLM_OK : ELLM_E_NOMEM;
    uint64_t params = 0, done = 0;
    for (size_t t = 0; t < nt; t++) params += src->tensors[t].n_elements;
    for (size_t t = 0; t < nt && !s; t++) {
        if (o->progress) o->progress(o->progress_user, "measuring", done, params);
        s = measure_tensor(src, t, o, cands, n_cands, pool, buf, bytes + t * n_cands, error + t * n_cands, err);
        done += src->tensors[t].n_elements;
    }
    if (!s) {
        /* payload bits/weight <= target  <=>  payload bytes <= target * params / 8 */
        uint64_t budget = (uint64_t)floor(o->target_bits * (double)params / 8.0), least = 0;
        for (size_t t = 0; t < nt; t++) {
            uint64_t m = UINT64_MAX;
            for (size_t c = 0; c < n_cands; c++) m = ELLM_MIN(m, bytes[t * n_cands + c]);
            least += m;
        }
        if (least > budget)
            s = ellm_fail(err, ELLM_E_ARG,
                          "%s: --target-bits %g is below the smallest payload the candidates reach: %.4f "
                          "bits/weight (%llu bytes for %llu weights)",
                          src->path, o->target_bits, 8.0 * (double)least / (double)params,
                          (unsigned long long)least, (unsigned long long)params);
        else s = ellm_bitalloc(bytes, error, nt, n_cands, budget, choice, NULL, err);
    }
    for (size_t t = 0; t < nt && !s; t++) expect[t] = bytes[t * n_cands + (size_t)choice[t]];
    free(bytes);
    free(error);
    return s;
}

static ellm_status check_options(const ellm_compress_options *o, ellm_error *err) {
    if (!(o->target_bits >= 0 && o->target_bits <= 8)) /* also NaN */
        return ellm_fail(err, ELLM_E_ARG, "--target-bits must be above 0 and at most 8, got %g", o->target_bits);
    if (o->alloc_error != ELLM_ALLOC_SSE && o->alloc_error != ELLM_ALLOC_RELATIVE)
        return ellm_fail(err, ELLM_E_ARG, "unknown allocation error measure %d", (int)o->alloc_error);
    if (o->target_bits == 0 && o->bits != 8 && o->bits != 4)
        return ellm_fail(err, ELLM_E_ARG, "--bits must be 8 or 4, got %d", o->bits);
    if (o->scheme < ELLM_SCHEME_AUTO || o->scheme > ELLM_SCHEME_ASYMMETRIC)
        return ellm_fail(err, ELLM_E_ARG, "unknown scheme %d", (int)o->scheme);
    if (o->granularity == ELLM_GRAN_GROUP && (o->group_size < 2 || o->group_size % 2))
        return ellm_fail(err, ELLM_E_ARG, "group size must be an even number >= 2, got %u", o->group_size);
    if (o->coder < ELLM_CODER_AUTO || o->coder > ELLM_CODER_RANS) return ellm_fail(err, ELLM_E_ARG, "unknown coder");
    if (o->segment_symbols == 1 || o->segment_symbols % 2)
        return ellm_fail(err, ELLM_E_ARG, "segment size must be an even number of symbols, got %u",
                         o->segment_symbols);
    return ELLM_OK;
}

static ellm_status add_blobs(const src_model *src, ellm_writer *w, uint64_t *bytes, ellm_error *err) {
    *bytes = 0;
    for (size_t i = 0; i < src->n_blobs; i++) {
        ellm_status s = ellm_writer_add_blob(w, src->blobs[i].name, src->blobs[i].data, src->blobs[i].size, err);
        if (s) return s;
        *bytes += src->blobs[i].size;
    }
    return ELLM_OK;
}

static void finish_report(ellm_compress_report *r) {
    double entropy_sum = 0;
    uint64_t plain = 0;
    for (size_t i = 0; i < r->n_tensors; i++) {
        const ellm_tensor_report *t = &r->tensors[i];
        r->params += t->n_params;
        r->payload_bytes += t->coded_bytes + t->meta_bytes;
        entropy_sum += t->entropy_bits * (double)t->n_params;
        r->sq_error += t->sq_error;
        plain += t->bits == 32 ? t->n_params * 4 : (t->n_params * (uint64_t)t->bits + 7) / 8 + t->meta_bytes;
    }
    r->fp16_bytes = r->params * 2;
    r->plain_bytes = plain;
    if (r->params) {
        r->entropy_bits_per_weight = entropy_sum / (double)r->params;
        r->coded_bits_per_weight = 8.0 * (double)r->payload_bytes / (double)r->params;
        r->effective_bits_per_weight = 8.0 * (double)r->file_bytes / (double)r->params;
    }
}

ellm_status ellm_compress(const char *source_path, const char *out_path, const ellm_compress_options *opts,
                          ellm_compress_report **report, ellm_error *err) {
    ellm_compress_options o;
    if (opts) o = *opts;
    else ellm_compress_options_default(&o);
    if (report) *report = NULL;
    double t0 = ellm_now();
    ellm_status s = check_options(&o, err);
    if (s) return s;
    src_model *src = NULL;
    if ((s = src_open(source_path, o.tokenizer_path, &src, err))) return s;
    ellm_compress_report *r = ellm_calloc(1, sizeof *r, err);
    ellm_pool *pool = NULL;
    ellm_writer *w = NULL;
    char *meta = NULL;
    scratch buf = {0};
    if (!r) s = ELLM_E_NOMEM;
    if (!s) {
        r->n_tensors = src->n_tensors;
        r->tensors = ellm_calloc(src->n_tensors, sizeof *r->tensors, err);
        if (!r->tensors) s = ELLM_E_NOMEM;
    }
    if (!s) s = ellm_pool_create(o.n_threads, &pool, err);
    /* One choice for every tensor, or (--target-bits) one per tensor. */
    qchoice cands[MAX_CANDS] = {{o.bits, o.granularity, o.group_size}};
    size_t n_cands = 1;
    int *choice = NULL;
    uint64_t *expect = NULL;
    if (!s) {
        choice = ellm_calloc(src->n_tensors ? src->n_tensors : 1, sizeof *choice, err);
        expect = ellm_calloc(src->n_tensors ? src->n_tensors : 1, sizeof *expect, err);
        if (!choice || !expect) s = ELLM_E_NOMEM;
    }
    if (!s && o.target_bits > 0) {
        n_cands = alloc_candidates(&o, cands);
        s = allocate_bits(src, &o, cands, n_cands, pool, &buf, choice, expect, err);
    }
    if (!s && !(meta = build_metadata(src, &o, &r->weights_generated, err))) s = err ? err->code : ELLM_E_INTERNAL;
    if (!s) s = ellm_writer_open(out_path, meta, &w, err);
    if (!s) s = add_blobs(src, w, &r->tokenizer_bytes, err);
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < src->n_tensors; i++) total += src->tensors[i].n_elements;
    for (size_t i = 0; i < src->n_tensors && !s; i++) {
        if (o.progress) o.progress(o.progress_user, "compressing", done, total);
        ellm_tensor_report *rep = &r->tensors[i];
        s = compress_tensor(src, i, &o, &cands[choice[i]], pool, &buf, w, rep, err);
        /* Pass 2 must store exactly what pass 1 measured (same input, same
         * deterministic quantizer and coders), or the budget does not hold. */
        if (!s && o.target_bits > 0 && rep->coded_bytes + rep->meta_bytes != expect[i])
            s = ellm_fail(err, ELLM_E_INTERNAL, "%s: tensor %s: stored %llu bytes, measured %llu in the first pass",
                          src->path, rep->name, (unsigned long long)(rep->coded_bytes + rep->meta_bytes),
                          (unsigned long long)expect[i]);
        done += src->tensors[i].n_elements;
    }
    if (!s && o.progress) o.progress(o.progress_user, "compressing", total, total);
    if (!s) {
        s = ellm_writer_finish(w, &r->file_bytes, err);
        w = NULL;
    }
    if (w) ellm_writer_abort(w);
    free(buf.weights);
    free(buf.codes);
    free(choice);
    free(expect);
    free(meta);
    ellm_pool_destroy(pool);
    src_close(src);
    if (s) {
        ellm_compress_report_free(r);
        return s;
    }
    r->seconds = ellm_now() - t0;
    r->target_bits = o.target_bits;
    finish_report(r);
    if (report) *report = r;
    else ellm_compress_report_free(r);
    return ELLM_OK;
}
