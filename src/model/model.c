/*
 * model.c - the public model API: load a .ellm file (payloads checked, then
 * every tensor entropy-decoded in parallel into its integer codes) or a
 * source model (llama2.c / HF / GGUF, read as float32), bind the tensors to
 * the forward pass, and run it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "container/container.h"
#include "formats/source.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

void ellm_load_options_default(ellm_load_options *o) {
    memset(o, 0, sizeof *o);
}

static ellm_status add_blob(ellm_model *m, const char *name, const uint8_t *data, size_t size, ellm_error *err) {
    ellm_owned_blob *nb = realloc(m->blobs, (m->n_blobs + 1) * sizeof *nb);
    if (!nb) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    m->blobs = nb;
    ellm_owned_blob *b = &m->blobs[m->n_blobs];
    b->name = ellm_strdup(name);
    b->data = malloc(size ? size : 1);
    b->size = size;
    if (!b->name || !b->data) {
        free(b->name);
        free(b->data);
        return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    memcpy(b->data, data, size);
    m->n_blobs++;
    return ELLM_OK;
}

static int is_ellm_file(const char *path) {
    if (ellm_path_is_dir(path)) return 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    char magic[8];
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    return n == 8 && memcmp(magic, ELLM_MAGIC, 8) == 0;
}

static ellm_status load_ellm(ellm_model *m, const char *path, ellm_error *err) {
    ellm_file *f = NULL;
    ellm_status st = ellm_file_open(path, &f, err);
    if (st) return st;
    snprintf(m->format, sizeof m->format, "ellm");
    json_error_t jerr;
    json_t *meta = json_loads(ellm_file_metadata_json(f), 0, &jerr);
    json_t *cfg = json_object_get(meta, "config");
    if (!json_is_object(cfg)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: metadata has no \"config\" object", path);
        goto done;
    }
    m->config_json = json_dumps(cfg, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!m->config_json) {
        st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < f->n_blobs && !st; i++)
        st = add_blob(m, f->blobs[i].name, f->blobs[i].data, f->blobs[i].size, err);
    if (st) goto done;
    m->n_tensors = f->n_tensors;
    m->tensors = ellm_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *m->tensors, err);
    if (!m->tensors) {
        st = ELLM_E_NOMEM;
        goto done;
    }
    double decode_s = 0;
    st = ellm_file_load_tensors(f, NULL, f->n_tensors, m->pool, 0, m->tensors, &decode_s, err);
    if (st) {
        m->n_tensors = 0; /* freed by the loader */
        goto done;
    }
    m->info.decode_seconds = decode_s;
    for (size_t i = 0; i < m->n_tensors; i++) {
        m->tensors[i].name = ellm_strdup(f->tensors[i].name); /* the file closes below */
        if (!m->tensors[i].name) st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
done:
    json_decref(meta);
    ellm_file_close(f);
    return st;
}

static ellm_status load_source(ellm_model *m, const char *path, const ellm_load_options *o, ellm_error *err) {
    src_model *src = NULL;
    /* A tokenizer the user gives is loaded on its own below (any format);
     * the readers only look for one beside the model. */
    ellm_status st = src_open(path, NULL, &src, err);
    if (st) return st;
    snprintf(m->format, sizeof m->format, "%s", src->format);
    m->config_json = ellm_strdup(src->config_json ? src->config_json : "");
    if (!m->config_json) st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < src->n_blobs && !st; i++)
        st = add_blob(m, src->blobs[i].name, src->blobs[i].data, src->blobs[i].size, err);
    if (!st) {
        m->tensors = ellm_calloc(src->n_tensors ? src->n_tensors : 1, sizeof *m->tensors, err);
        if (!m->tensors) st = ELLM_E_NOMEM;
    }
    for (size_t i = 0; i < src->n_tensors && !st; i++) {
        const src_tensor *s = &src->tensors[i];
        ellm_qtensor *t = &m->tensors[i];
        m->n_tensors = i + 1;
        t->name = ellm_strdup(s->name);
        t->n_dims = s->n_dims;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->n = s->n_elements;
        t->bits = 32;
        t->owns_data = 1;
        uint64_t bytes;
        if (!ellm_mul_u64(s->n_elements, 4, &bytes) || bytes > SIZE_MAX - 64) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: tensor %s is too large", path, s->name);
            break;
        }
        t->data = ellm_aligned_alloc((size_t)bytes + 64, err);
        if (!t->name || !t->data) {
            st = t->data ? ellm_fail(err, ELLM_E_NOMEM, "out of memory") : ELLM_E_NOMEM;
            break;
        }
        st = src_read_f32(src, i, (float *)t->data, err);
        if (o->progress) o->progress(o->progress_user, "read", i + 1, src->n_tensors);
    }
    src_close(src);
    return st;
}

/* The bit width holding most parameters, and the bytes of weights held. */
static void weight_stats(ellm_model *m) {
    uint64_t per_bits[33] = {0}, bytes = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ellm_qtensor *t = &m->tensors[i];
        per_bits[t->bits & 31 ? t->bits : 32] += t->n;
        if (t->bits == 32) bytes += t->n * 4;
        else bytes += (t->bits == 8 ? t->n : (t->n + 1) / 2) + t->qp.n_groups * 5;
    }
    int best = 32;
    for (int b = 0; b <= 32; b++)
        if (per_bits[b] > per_bits[best]) best = b;
    m->info.weight_bits = best;
    m->info.mixed_bits = per_bits[8] && per_bits[4];
    m->info.weight_bytes = bytes;
}

static ellm_status load_tokenizer(ellm_model *m, ellm_error *err) {
    if (m->n_blobs == 0) return ELLM_OK;
    ellm_blob_ref *refs = ellm_calloc(m->n_blobs, sizeof *refs, err);
    if (!refs) return ELLM_E_NOMEM;
    for (size_t i = 0; i < m->n_blobs; i++) refs[i] = (ellm_blob_ref){m->blobs[i].name, m->blobs[i].data, m->blobs[i].size};
    ellm_status st = ellm_tokenizer_from_blobs(refs, m->n_blobs, m->path, &m->tok, err);
    free(refs);
    if (st) return st;
    if (m->tok && ellm_tokenizer_vocab_size(m->tok) > m->llm.cfg.vocab_size)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: tokenizer has %d tokens, the model's vocabulary only %d", m->path,
                         ellm_tokenizer_vocab_size(m->tok), m->llm.cfg.vocab_size);
    return ELLM_OK;
}

ellm_status ellm_model_load(const char *path, const ellm_load_options *opts, ellm_model **out, ellm_error *err) {
    *out = NULL;
    ellm_load_options defaults;
    if (!opts) {
        ellm_load_options_default(&defaults);
        opts = &defaults;
    }
    if (opts->n_threads < 0 || opts->max_ctx < 0)
        return ellm_fail(err, ELLM_E_ARG, "load options: negative thread count or context");
    double t0 = ellm_now();
    ellm_model *m = ellm_calloc(1, sizeof *m, err);
    if (!m) return ELLM_E_NOMEM;
    m->path = ellm_strdup(path);
    ellm_status st = m->path ? ellm_pool_create(opts->n_threads, &m->pool, err) : ELLM_E_NOMEM;
    if (!st) st = is_ellm_file(path) ? load_ellm(m, path, err) : load_source(m, path, opts, err);
    if (!st) st = ellm_llm_config_parse(m->config_json, path, &m->llm.cfg, err);
    if (!st) {
        json_t *cj = json_loads(m->config_json, 0, NULL);
        /* ellm_synth notes it as "entrollm_weights": "generated, not trained..." */
        const char *note = json_string_value(json_object_get(cj, "entrollm_weights"));
        m->generated_weights = json_is_true(json_object_get(cj, "entrollm_generated_weights")) ||
                               (note && strstr(note, "generated"));
        json_decref(cj);
        if (opts->max_ctx > 0 && opts->max_ctx < m->llm.cfg.max_ctx) m->llm.cfg.max_ctx = opts->max_ctx;
        st = ellm_llm_bind(&m->llm, m->tensors, m->n_tensors, m->pool, 0, err);
        if (st) ellm_fail_prefix(err, "%s", path);
    }
    if (!st) st = load_tokenizer(m, err);
    if (!st && opts->tokenizer_path) {
        /* A tokenizer given by the user replaces the one the model carries. */
        if (m->tok) ellm_tokenizer_free(m->tok);
        m->tok = NULL;
        st = ellm_tokenizer_load(opts->tokenizer_path, &m->tok, err);
    }
    if (st) {
        ellm_model_free(m);
        return st;
    }
    weight_stats(m);
    const ellm_llm_config *c = &m->llm.cfg;
    ellm_model_info *i = &m->info;
    i->arch = c->arch;
    i->dim = c->dim;
    i->hidden_dim = c->hidden_dim;
    i->n_layers = c->n_layers;
    i->n_heads = c->n_heads;
    i->n_kv_heads = c->n_kv_heads;
    i->head_dim = c->head_dim;
    i->vocab_size = c->vocab_size;
    i->max_ctx = c->max_ctx;
    i->generated_weights = m->generated_weights;
    i->load_seconds = ellm_now() - t0;
    *out = m;
    return ELLM_OK;
}

void ellm_model_free(ellm_model *m) {
    if (!m) return;
    ellm_llm_free(&m->llm);
    for (size_t i = 0; i < m->n_tensors; i++) {
        free((char *)m->tensors[i].name);
        ellm_qtensor_free(&m->tensors[i]);
    }
    free(m->tensors);
    for (size_t i = 0; i < m->n_blobs; i++) {
        free(m->blobs[i].name);
        free(m->blobs[i].data);
    }
    free(m->blobs);
    if (m->tok) ellm_tokenizer_free(m->tok);
    ellm_pool_destroy(m->pool);
    free(m->config_json);
    free(m->path);
    free(m);
}

void ellm_model_get_info(const ellm_model *m, ellm_model_info *info) { *info = m->info; }

const ellm_tokenizer *ellm_model_tokenizer(const ellm_model *m) { return m->tok; }

void ellm_model_reset(ellm_model *m) { ellm_llm_reset(&m->llm); }

ellm_status ellm_model_forward(ellm_model *m, const int32_t *tokens, int n_tokens, int pos, float *logits,
                               int all_logits, ellm_error *err) {
    return ellm_llm_forward(&m->llm, tokens, n_tokens, pos, logits, all_logits, err);
}

ellm_status ellm_chat_render(const ellm_model *m, const ellm_chat_message *msgs, size_t n, int add_generation_prompt,
                             char **out, ellm_error *err) {
    *out = NULL;
    if (!m->tok) return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: the model carries no tokenizer", m->path);
    return ellm_tokenizer_chat_render(m->tok, msgs, n, add_generation_prompt, out, err);
}
