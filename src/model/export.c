/*
 * export.c - writes a loaded model (float source or .ellm, dequantized) as a
 * Hugging Face folder or a GGUF file, in each format's own conventions:
 *
 *   HF:   config.json, model.safetensors (float32, HF tensor names), the
 *         tokenizer/config files the model carries. q and k projections in
 *         HF's rotate_half row order: a llama2.c / Meta / GGUF-llama source
 *         (interleaved pairs) is permuted as HF's convert_llama_weights_to_hf
 *         does: within each head, row 2i -> i and row 2i+1 -> d/2 + i.
 *   GGUF: llama.cpp tensor names and metadata keys, float32 tensors, q and k
 *         rows in the interleaved order for llama/mistral (llama.cpp permutes
 *         HF weights so when converting) and rotate_half for phi3/qwen2;
 *         tokenizer metadata from the model's "tokenizer.gguf" blob, or
 *         converted from a llama2.c tokenizer.bin.
 *
 * Tensors are produced one at a time by the writers' callbacks, so the
 * export holds one dequantized tensor beside the model.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/model.h"

typedef enum perm_kind { PERM_NONE, PERM_Q, PERM_K, PERM_QKV } perm_kind;

typedef struct ex_tensor {
    char name[128];
    const ellm_qtensor *t;
    perm_kind perm;
} ex_tensor;

typedef struct ex_plan {
    const ellm_model *m;
    ex_tensor *t;
    size_t n;
    int permute;        /* source and target rotary layouts differ */
    int to_interleaved; /* direction of the permutation */
} ex_plan;

/* Destination row of source row r within a head of d rows. */
static int64_t perm_row(int64_t r, int64_t d, int to_interleaved) {
    int64_t half = d / 2;
    if (to_interleaved) return r < half ? 2 * r : 2 * (r - half) + 1; /* half -> (2i, 2i+1) */
    return (r % 2 == 0) ? r / 2 : half + r / 2;                         /* (2i, 2i+1) -> half */
}

/* Fills dst (rows x cols float32) with tensor x's rows, permuted per head
 * over [row0, row0 + n_heads * d) when asked. */
static void permute_rows(const float *src, float *dst, int64_t cols, int64_t row0, int n_heads, int64_t d, int to_i) {
    for (int h = 0; h < n_heads; h++)
        for (int64_t r = 0; r < d; r++) {
            int64_t from = row0 + h * d + r, to = row0 + h * d + perm_row(r, d, to_i);
            memcpy(dst + to * cols, src + from * cols, (size_t)cols * sizeof(float));
        }
}

static ellm_status tensor_data(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    const ex_plan *p = user;
    const ex_tensor *e = &p->t[index];
    const ellm_qtensor *t = e->t;
    if (n_bytes != t->n * sizeof(float))
        return ellm_fail(err, ELLM_E_INTERNAL, "export: tensor %s: %zu bytes asked, %llu held", e->name, n_bytes,
                         (unsigned long long)(t->n * sizeof(float)));
    const int64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = t->n_dims == 2 ? t->shape[1] : (int64_t)t->n;
    float *full = dst;
    float *tmp = NULL;
    if (p->permute && e->perm != PERM_NONE) {
        tmp = ellm_malloc(n_bytes, err);
        if (!tmp) return ELLM_E_NOMEM;
        full = tmp;
    }
    if (t->n_dims == 2) {
        for (int64_t r = 0; r < rows; r++) ellm_row_dequant(t, r, full + r * cols, 0);
    } else {
        ellm_row_dequant(t, 0, full, 0); /* a 1-D tensor is one row */
    }
    if (tmp) {
        const ellm_llm_config *c = &p->m->llm.cfg;
        const int64_t hd = c->head_dim;
        /* 1-D biases permute like a one-column matrix. */
        const int64_t pc = t->n_dims == 2 ? cols : 1;
        memcpy(dst, tmp, n_bytes);
        if (e->perm == PERM_Q || e->perm == PERM_QKV) permute_rows(tmp, dst, pc, 0, c->n_heads, hd, p->to_interleaved);
        if (e->perm == PERM_K)
            permute_rows(tmp, dst, pc, 0, c->n_kv_heads, hd, p->to_interleaved);
        if (e->perm == PERM_QKV)
            permute_rows(tmp, dst, pc, (int64_t)c->n_heads * hd, c->n_kv_heads, hd, p->to_interleaved);
        free(tmp);
    }
    return ELLM_OK;
}

/* The tensors to write, named in `naming`, with their permutations. */
static ellm_status make_plan(const ellm_model *m, ellm_naming naming, ellm_rope_layout target, ex_plan *p,
                             ellm_error *err) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->permute = m->llm.cfg.rope_layout != target;
    p->to_interleaved = target == ELLM_ROPE_INTERLEAVED;
    p->t = ellm_calloc(m->n_tensors ? m->n_tensors : 1, sizeof *p->t, err);
    if (!p->t) return ELLM_E_NOMEM;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ellm_qtensor *t = &m->tensors[i];
        ellm_role role;
        int layer;
        if (ellm_role_parse(t->name, &role, &layer, NULL) != 0) continue; /* e.g. rotary inv_freq buffers */
        if (role == ELLM_ROLE_W_UP && m->llm.layers[layer].w_gate_up == t) role = ELLM_ROLE_W_GATE_UP;
        ex_tensor *e = &p->t[p->n];
        e->t = t;
        e->perm = role == ELLM_ROLE_WQ || role == ELLM_ROLE_BQ   ? PERM_Q
                  : role == ELLM_ROLE_WK || role == ELLM_ROLE_BK ? PERM_K
                  : role == ELLM_ROLE_WQKV                       ? PERM_QKV
                                                                 : PERM_NONE;
        int ok = ellm_role_name(naming, role, layer, e->name, sizeof e->name) == 0;
        if (!ok && naming == ELLM_NAMING_GGUF && role == ELLM_ROLE_W_GATE_UP)
            ok = ellm_role_name(naming, ELLM_ROLE_W_UP, layer, e->name, sizeof e->name) == 0; /* llama.cpp's phi3 */
        if (!ok)
            return ellm_fail(err, ELLM_E_UNSUPPORTED, "export: tensor %s has no name in the target format", t->name);
        p->n++;
    }
    return ELLM_OK;
}

static ellm_status write_blob_file(const char *dir, const char *name, const uint8_t *data, size_t size,
                                   ellm_error *err) {
    char *path = ellm_path_join(dir, name);
    if (!path) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    ellm_outfile o;
    ellm_status st = ellm_outfile_open(&o, path, err);
    if (!st) st = ellm_outfile_write(&o, data, size, err);
    if (!st) st = ellm_outfile_commit(&o, err);
    else ellm_outfile_abort(&o);
    free(path);
    return st;
}

ellm_status ellm_model_export_hf(const ellm_model *m, const char *dir, ellm_error *err) {
    if (!ellm_path_is_dir(dir) && mkdir(dir, 0777) != 0)
        return ellm_fail(err, ELLM_E_IO, "%s: cannot create the directory", dir);
    ex_plan p;
    ellm_status st = make_plan(m, ELLM_NAMING_HF, ELLM_ROPE_HALF, &p, err);
    st_writer *w = NULL;
    if (!st) st = st_writer_new(&w, err);
    for (size_t i = 0; i < p.n && !st; i++)
        st = st_writer_add(w, p.t[i].name, "F32", p.t[i].t->n_dims, p.t[i].t->shape, p.t[i].t->n * sizeof(float), err);
    if (!st) {
        st_writer_set_metadata(w, "format", "pt");
        st_writer_set_metadata(w, "producer", "entrollm " ELLM_VERSION_STRING " export");
        char *path = ellm_path_join(dir, "model.safetensors");
        st = path ? st_writer_write(w, path, tensor_data, &p, err) : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        free(path);
    }
    if (w) st_writer_free(w);
    free(p.t);
    if (st) return st;

    /* config.json: the model's own, in HF's rotary layout and dtype. */
    json_t *cfg = json_loads(m->config_json, 0, NULL);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return ellm_fail(err, ELLM_E_INTERNAL, "export: the model's config is not a JSON object");
    }
    json_object_set_new(cfg, "entrollm_rope_layout", json_string("half"));
    json_object_set_new(cfg, "torch_dtype", json_string("float32"));
    json_object_set_new(cfg, "tie_word_embeddings", json_boolean(m->llm.output == m->llm.tok_embd));
    char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(cfg);
    if (!text) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    st = write_blob_file(dir, "config.json", (const uint8_t *)text, strlen(text), err);
    free(text);
    /* Tokenizer and generation files travel unchanged. */
    for (size_t i = 0; i < m->n_blobs && !st; i++) {
        if (strchr(m->blobs[i].name, '/') || strcmp(m->blobs[i].name, "config.json") == 0) continue;
        st = write_blob_file(dir, m->blobs[i].name, m->blobs[i].data, m->blobs[i].size, err);
    }
    return st;
}

/* ---- GGUF ---------------------------------------------------------------- */

/* Copies the tokenizer.* keys of a metadata-only GGUF blob. */
static ellm_status gguf_tokenizer_from_blob(gguf_writer *w, const ellm_owned_blob *b, ellm_error *err) {
    gguf_ctx g;
    ellm_status st = gguf_parse(b->data, b->size, "tokenizer.gguf", &g, err);
    if (st) return st;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_kv *kv = &g.kv[i];
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0) gguf_writer_copy_kv(w, &g, kv);
    }
    gguf_free(&g);
    return ELLM_OK;
}

/* llama2.c tokenizer.bin -> a 'llama' (SentencePiece) vocabulary: spaces
 * become U+2581, ids 1/2 are <s>/</s>, <0xNN> pieces are byte tokens. */
static ellm_status gguf_tokenizer_from_llama2c(gguf_writer *w, const ellm_owned_blob *b, int vocab, ellm_error *err) {
    char **tokens = ellm_calloc((size_t)vocab, sizeof *tokens, err);
    float *scores = ellm_calloc((size_t)vocab, sizeof *scores, err);
    int32_t *types = ellm_calloc((size_t)vocab, sizeof *types, err);
    ellm_status st = (tokens && scores && types) ? ELLM_OK : ELLM_E_NOMEM;
    size_t off = 4;
    for (int i = 0; i < vocab && !st; i++) {
        if (off + 8 > b->size) {
            st = ellm_fail(err, ELLM_E_FORMAT, "tokenizer.bin: truncated at token %d (byte %zu)", i, off);
            break;
        }
        uint32_t sb = ellm_le32(b->data + off), len = ellm_le32(b->data + off + 4);
        memcpy(&scores[i], &sb, 4);
        off += 8;
        if (len > b->size - off) {
            st = ellm_fail(err, ELLM_E_FORMAT, "tokenizer.bin: token %d length %u runs past the end", i, len);
            break;
        }
        const char *piece = (const char *)b->data + off;
        off += len;
        tokens[i] = malloc((size_t)len * 3 + 8);
        if (!tokens[i]) {
            st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
            break;
        }
        types[i] = 1;
        if (i == 0) strcpy(tokens[i], "<unk>"), types[i] = 2;
        else if (i == 1) strcpy(tokens[i], "<s>"), types[i] = 3;
        else if (i == 2) strcpy(tokens[i], "</s>"), types[i] = 3;
        else {
            size_t k = 0;
            for (uint32_t j = 0; j < len; j++) {
                if (piece[j] == ' ') {
                    memcpy(tokens[i] + k, "\xe2\x96\x81", 3);
                    k += 3;
                } else {
                    tokens[i][k++] = piece[j];
                }
            }
            tokens[i][k] = 0;
            if (len == 6 && memcmp(piece, "<0x", 3) == 0 && piece[5] == '>') types[i] = 6;
        }
    }
    if (!st) {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)tokens, NULL, (uint64_t)vocab);
        gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)vocab);
        gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)vocab);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    }
    for (int i = 0; tokens && i < vocab; i++) free(tokens[i]);
    free(tokens), free(scores), free(types);
    return st;
}

static const ellm_owned_blob *find_blob(const ellm_model *m, const char *name) {
    for (size_t i = 0; i < m->n_blobs; i++)
        if (strcmp(m->blobs[i].name, name) == 0) return &m->blobs[i];
    return NULL;
}

ellm_status ellm_model_export_gguf(const ellm_model *m, const char *path, ellm_error *err) {
    const ellm_llm_config *c = &m->llm.cfg;
    if (c->rope_scaling != ELLM_ROPE_SCALING_NONE)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "export: GGUF export of rope scaling (%s) is not supported", c->arch);
    /* llama.cpp runs Mistral as "llama"; phi3 and qwen2 keep rotate_half. */
    const char *arch = strcmp(c->arch, "mistral") == 0 ? "llama" : c->arch;
    const int half = strcmp(arch, "phi3") == 0 || strcmp(arch, "qwen2") == 0;
    ex_plan p;
    ellm_status st = make_plan(m, ELLM_NAMING_GGUF, half ? ELLM_ROPE_HALF : ELLM_ROPE_INTERLEAVED, &p, err);
    gguf_writer *w = NULL;
    if (!st) st = gguf_writer_new(&w, err);
    if (!st) {
        char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
        gguf_writer_set_str(w, "general.architecture", arch);
        gguf_writer_set_str(w, "general.name", "entrollm export");
        gguf_writer_set_u32(w, "general.file_type", 0); /* all F32 */
        gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)c->max_ctx);
        gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim);
        gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim);
        gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
        gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads);
        gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
        gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
        gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
        gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
        gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
        gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
        gguf_writer_set_f32(w, KEY("rope.freq_base"), c->rope_theta);
        if (c->sliding_window > 0) gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)c->sliding_window);
#undef KEY
        const ellm_owned_blob *tg = find_blob(m, "tokenizer.gguf"), *tb = find_blob(m, "tokenizer.bin");
        if (tg) st = gguf_tokenizer_from_blob(w, tg, err);
        else if (tb) st = gguf_tokenizer_from_llama2c(w, tb, c->vocab_size, err);
        /* HF tokenizer.json vocabularies are not converted (llama.cpp's
         * convert script does that); the GGUF then carries weights only. */
    }
    for (size_t i = 0; i < p.n && !st; i++)
        gguf_writer_add_tensor(w, p.t[i].name, p.t[i].t->n_dims, p.t[i].t->shape, GGML_TYPE_F32);
    if (!st) st = gguf_writer_write(w, path, tensor_data, &p, err);
    if (w) gguf_writer_free(w);
    free(p.t);
    return st;
}
