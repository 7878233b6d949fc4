/* latency.c - the paper's Table II: decode, prefill, per-token and
 * first-token times of a .ellm file, and its plain (RAW) twin. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/pool.h"
#include "container/container.h"
#include "entropy/entropy.h"
#include "eval/eval.h"

/* Metadata of the twin: the same, with quantization.coder = "raw" and where
 * it came from. */
static char *raw_metadata(const ellm_file *f, ellm_error *err) {
    json_error_t je;
    json_t *meta = json_loads(f->metadata_json ? f->metadata_json : "{}", 0, &je);
    if (!json_is_object(meta)) {
        json_decref(meta);
        ellm_fail(err, ELLM_E_FORMAT, "%s: metadata is not a JSON object", f->path);
        return NULL;
    }
    json_t *q = json_object_get(meta, "quantization");
    if (json_is_object(q)) json_object_set_new(q, "coder", json_string("raw"));
    json_object_set_new(meta, "restored_plain_from", json_string(f->path));
    char *text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    if (!text) ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    return text;
}

ellm_status ellm_eval_store_raw(const char *in_path, const char *out_path, int n_threads, ellm_error *err) {
    ellm_file *f = NULL;
    ellm_pool *pool = NULL;
    ellm_qtensor *qt = NULL;
    ellm_writer *w = NULL;
    char *meta = NULL;
    ellm_status st = ellm_file_open(in_path, &f, err);
    if (st == ELLM_OK) st = ellm_pool_create(n_threads, &pool, err);
    if (st == ELLM_OK) {
        qt = ellm_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *qt, err);
        if (!qt) st = ELLM_E_NOMEM;
    }
    if (st == ELLM_OK) st = ellm_file_load_tensors(f, NULL, f->n_tensors, pool, 0, qt, NULL, err);
    bool loaded = st == ELLM_OK;
    if (st == ELLM_OK && !(meta = raw_metadata(f, err))) st = err ? err->code : ELLM_E_NOMEM;
    if (st == ELLM_OK) st = ellm_writer_open(out_path, meta, &w, err);
    for (size_t i = 0; st == ELLM_OK && i < f->n_blobs; i++)
        st = ellm_writer_add_blob(w, f->blobs[i].name, f->blobs[i].data, f->blobs[i].size, err);
    for (size_t i = 0; st == ELLM_OK && i < f->n_tensors; i++) {
        const ellm_ftensor *t = &f->tensors[i];
        bool is_float = t->bits == 32;
        ellm_wtensor wt = {
            .name = t->name,
            .n_dims = t->n_dims,
            .shape = t->shape,
            .scheme = t->scheme,
            .bits = t->bits,
            .qp = is_float ? NULL : &qt[i].qp,
            .coder = ELLM_CODER_RAW,
            .entropy_bits = t->entropy_bits,
            .block = qt[i].data,
            .block_size = is_float ? t->n * 4 : ec_decoded_bytes(t->bits, t->n),
        };
        st = ellm_writer_add_tensor(w, &wt, err);
    }
    if (w) {
        if (st == ELLM_OK) st = ellm_writer_finish(w, NULL, err);
        else ellm_writer_abort(w);
    }
    if (loaded)
        for (size_t i = 0; i < f->n_tensors; i++) ellm_qtensor_free(&qt[i]);
    free(qt);
    free(meta);
    ellm_pool_destroy(pool);
    ellm_file_close(f);
    if (st != ELLM_OK && err && !strstr(err->message, out_path))
        ellm_fail_prefix(err, "storing %s plainly as %s", in_path, out_path);
    return st;
}

/* A fixed English text, repeated, gives the prompt: every tokenizer
 * encodes it to ordinary tokens. */
static const char prompt_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park "
    "with her friends. One day, she saw a big red ball under a tree and asked her mom if she could "
    "play with it. Her mom said yes, and Lily ran to the ball with a happy smile. ";

static ellm_status make_prompt(const ellm_tokenizer *tok, int vocab, int n, int32_t *out, ellm_error *err) {
    int have = 0;
    if (!tok) { /* a model without a tokenizer (e.g. generated weights): fixed ids */
        for (int i = 0; i < n; i++) out[i] = (int32_t)(1 + ((int64_t)i * 7919) % (vocab > 1 ? vocab - 1 : 1));
        return ELLM_OK;
    }
    int32_t bos = ellm_tokenizer_bos(tok);
    if (bos >= 0) out[have++] = bos;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    ellm_status st = ellm_tokenize(tok, prompt_text, sizeof prompt_text - 1, 0, 0, &ids, &n_ids, err);
    if (st != ELLM_OK) return st;
    if (n_ids == 0) {
        free(ids);
        return ellm_fail(err, ELLM_E_INTERNAL, "latency: the prompt text tokenized to nothing");
    }
    while (have < n)
        for (size_t i = 0; i < n_ids && have < n; i++) out[have++] = ids[i];
    free(ids);
    return ELLM_OK;
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* One run: load (decode), prefill, generate. Times in seconds. */
typedef struct run_times {
    double load, decode, prefill, per_token, ttft;
} run_times;

static ellm_status run_once(const char *path, const ellm_latency_options *o, run_times *t, ellm_model_info *info,
                            ellm_error *err) {
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = o->n_threads;
    ellm_model *m = NULL;
    double t0 = ellm_now();
    ellm_status st = ellm_model_load(path, &lo, &m, err);
    if (st != ELLM_OK) return st;
    double t_loaded = ellm_now();
    ellm_model_get_info(m, info);
    int P = o->prompt_tokens, N = o->gen_tokens;
    if (P < 1 || N < 1 || P + N > info->max_ctx) {
        ellm_model_free(m);
        return ellm_fail(err, ELLM_E_ARG, "latency: %d prompt + %d generated tokens exceed the context of %d", P, N,
                         info->max_ctx);
    }
    int32_t *prompt = ellm_malloc((size_t)P * sizeof *prompt, err);
    float *logits = ellm_malloc((size_t)info->vocab_size * sizeof *logits, err);
    if (!prompt || !logits) st = ELLM_E_NOMEM;
    if (st == ELLM_OK) st = make_prompt(ellm_model_tokenizer(m), info->vocab_size, P, prompt, err);
    double t1 = ellm_now();
    if (st == ELLM_OK) st = ellm_model_forward(m, prompt, P, 0, logits, 0, err);
    int32_t tok = st == ELLM_OK ? argmax(logits, info->vocab_size) : 0;
    double t2 = ellm_now();
    for (int g = 0; g < N && st == ELLM_OK; g++) {
        st = ellm_model_forward(m, &tok, 1, P + g, logits, 0, err);
        tok = argmax(logits, info->vocab_size);
    }
    double t3 = ellm_now();
    t->load = t_loaded - t0;
    t->decode = info->decode_seconds;
    t->prefill = t2 - t1;
    t->per_token = (t3 - t2) / N;
    t->ttft = t->load + t->prefill; /* the prompt making is not counted */
    free(prompt);
    free(logits);
    ellm_model_free(m);
    return st;
}

ellm_status ellm_eval_latency(const char *path, const ellm_latency_options *o, ellm_latency_row *row,
                              ellm_error *err) {
    memset(row, 0, sizeof *row);
    int R = o->repeat > 0 ? o->repeat : 5;
    double *v[5];
    for (int k = 0; k < 5; k++) v[k] = ellm_calloc((size_t)R, sizeof(double), err);
    ellm_status st = (v[0] && v[1] && v[2] && v[3] && v[4]) ? ELLM_OK : ELLM_E_NOMEM;
    ellm_model_info info = {0};
    for (int r = 0; r < R && st == ELLM_OK; r++) {
        run_times t = {0};
        st = run_once(path, o, &t, &info, err);
        if (st != ELLM_OK) break;
        v[0][r] = t.load, v[1][r] = t.decode, v[2][r] = t.prefill, v[3][r] = t.per_token, v[4][r] = t.ttft;
        if (o->progress.fn) o->progress.fn(o->progress.user, "latency", (uint64_t)r + 1, (uint64_t)R);
    }
    if (st == ELLM_OK) {
        row->load_s = ellm_median(v[0], (size_t)R);
        row->decode_s = ellm_median(v[1], (size_t)R);
        row->prefill_s = ellm_median(v[2], (size_t)R);
        row->per_token_s = ellm_median(v[3], (size_t)R);
        row->ttft_s = ellm_median(v[4], (size_t)R);
        row->weight_bits = info.weight_bits;
        row->repeat = R;
        row->prompt_tokens = o->prompt_tokens;
        row->gen_tokens = o->gen_tokens;
        ellm_file_size(path, &row->file_bytes, NULL);
        /* the coder of the file: the first integer tensor's */
        ellm_file *f = NULL;
        row->coder = ELLM_CODER_RAW;
        if (ellm_file_open(path, &f, NULL) == ELLM_OK) {
            json_t *meta = json_loads(ellm_file_metadata_json(f), 0, NULL);
            row->weights_generated = meta && json_is_true(json_object_get(meta, "weights_generated"));
            json_decref(meta);
            for (size_t i = 0; i < f->n_tensors; i++)
                if (f->tensors[i].bits != 32) {
                    row->coder = f->tensors[i].coder;
                    break;
                }
            ellm_file_close(f);
        }
    }
    for (int k = 0; k < 5; k++) free(v[k]);
    return st;
}
