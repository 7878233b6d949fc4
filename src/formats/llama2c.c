/*
 * llama2c.c - reader for llama2.c checkpoints: Karpathy's run.c "version 0"
 * layout (7 int32 header, then float32 arrays, each kind of weight stored for
 * all layers contiguously) and export.py's float32 "version 1" (256-byte
 * header with magic "ak42", norms first, no RoPE tables). Exposes one tensor
 * per layer with Meta names.
 *
 * The header has no magic number, so it is validated strictly: every
 * dimension positive and sane, heads dividing dim, and the file size exactly
 * equal to the size the header implies.
 */
#include "formats/llama2c.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define LLAMA2C_MAX_DIM (1 << 16)
#define LLAMA2C_MAX_LAYERS 1024
#define LLAMA2C_MAX_VOCAB (1 << 22)
#define LLAMA2C_MAX_SEQ (1 << 22)

static ellm_status bad(ellm_error *err, const char *path, const char *what, int32_t v) {
    return ellm_fail(err, ELLM_E_FORMAT,
                     "%s: not a llama2.c checkpoint: header %s = %d is out of range", path, what, v);
}

/* Version-1 header: u32 magic "ak42", i32 version, the 7 int32 of v0 (vocab
 * always positive), u8 shared_classifier, zero padding to 256 bytes. */
#define LLAMA2C_MAGIC 0x616b3432u
#define LLAMA2C_V1_USED 37

ellm_status llama2c_parse_header(const uint8_t *buf, size_t n, uint64_t file_size, const char *path,
                                 llama2c_config *c, ellm_error *err) {
    memset(c, 0, sizeof *c);
    if (n < LLAMA2C_HEADER_BYTES)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: not a llama2.c checkpoint: %zu bytes is shorter than the 28-byte header",
                         path, n);
    const uint8_t *params = buf;
    int version = 0;
    if (ellm_le32(buf) == LLAMA2C_MAGIC) {
        version = (int32_t)ellm_le32(buf + 4);
        if (version == 2)
            return ellm_fail(err, ELLM_E_UNSUPPORTED,
                             "%s: llama2.c version-2 export holds Q8_0-quantized weights: give a float32 "
                             "checkpoint (export.py --version 0 or 1)",
                             path);
        if (version != 1)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: llama2.c checkpoint of unknown version %d (magic \"ak42\")",
                             path, version);
        if (n < LLAMA2C_V1_USED || file_size < LLAMA2C_V1_HEADER_BYTES)
            return ellm_fail(err, ELLM_E_FORMAT, "%s: llama2.c version-1 header is truncated (%llu bytes)", path,
                             (unsigned long long)file_size);
        params = buf + 8;
    }
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = (int32_t)ellm_le32(params + 4 * i);
    if (h[0] <= 0 || h[0] > LLAMA2C_MAX_DIM) return bad(err, path, "dim", h[0]);
    if (h[1] <= 0 || h[1] > 4 * LLAMA2C_MAX_DIM) return bad(err, path, "hidden_dim", h[1]);
    if (h[2] <= 0 || h[2] > LLAMA2C_MAX_LAYERS) return bad(err, path, "n_layers", h[2]);
    if (h[3] <= 0 || h[3] > h[0]) return bad(err, path, "n_heads", h[3]);
    if (h[4] <= 0 || h[4] > h[3]) return bad(err, path, "n_kv_heads", h[4]);
    if (h[5] == 0 || h[5] == INT32_MIN || abs(h[5]) > LLAMA2C_MAX_VOCAB || (version == 1 && h[5] < 0))
        return bad(err, path, "vocab_size", h[5]);
    if (h[6] <= 0 || h[6] > LLAMA2C_MAX_SEQ) return bad(err, path, "seq_len", h[6]);
    if (h[0] % h[3] != 0 || (h[0] / h[3]) % 2 != 0)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: not a llama2.c checkpoint: dim %d is not a multiple of n_heads %d with "
                         "an even head size",
                         path, h[0], h[3]);
    if (h[3] % h[4] != 0)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: not a llama2.c checkpoint: n_heads %d is not a multiple of n_kv_heads %d",
                         path, h[3], h[4]);
    if (version == 1 && buf[36] > 1)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: llama2.c version-1 header: shared_classifier flag is %u", path,
                         buf[36]);
    c->version = version;
    c->data_offset = version == 1 ? LLAMA2C_V1_HEADER_BYTES : LLAMA2C_HEADER_BYTES;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared_classifier = version == 1 ? buf[36] == 1 : h[5] > 0;
    c->vocab_size = abs(h[5]);
    c->seq_len = h[6];

    /* All products below fit easily in 64 bits given the bounds above. */
    uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t head = dim / (uint64_t)c->n_heads, kv_dim = head * (uint64_t)c->n_kv_heads;
    uint64_t V = (uint64_t)c->vocab_size;
    uint64_t floats = V * dim                              /* token embedding */
                      + L * dim                            /* rms_att */
                      + L * dim * dim + 2 * L * kv_dim * dim + L * dim * dim /* wq wk wv wo */
                      + L * dim                            /* rms_ffn */
                      + 3 * L * hid * dim                  /* w1 w2 w3 */
                      + dim;                               /* rms_final */
    if (version == 0) floats += (uint64_t)c->seq_len * head; /* freq_cis real + imag */
    if (!c->shared_classifier) floats += V * dim;
    uint64_t expect = c->data_offset + 4 * floats;
    if (file_size != expect)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: not a valid llama2.c checkpoint: the version-%d header (dim %d, hidden_dim %d, "
                         "n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) implies "
                         "%llu bytes but the file has %llu%s",
                         path, version, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, h[5],
                         c->seq_len, (unsigned long long)expect, (unsigned long long)file_size,
                         file_size < expect ? " (truncated)" : " (trailing data)");
    c->file_size = file_size;
    return ELLM_OK;
}

/* Checks that a llama2.c tokenizer file holds exactly vocab_size entries
 * (the count is not stored: the model header gives it). */
static ellm_status check_tokenizer(const src_blob *b, const char *path, int vocab, ellm_error *err) {
    if (b->size < 4)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: llama2.c tokenizer is truncated (%zu bytes)", path,
                         b->size);
    size_t off = 4;
    for (int i = 0; i < vocab; i++) {
        if (b->size - off < 8)
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: llama2.c tokenizer ends at token %d at byte offset %zu, but the "
                             "model has %d tokens: wrong tokenizer for this model?",
                             path, i, off, vocab);
        int32_t len = (int32_t)ellm_le32(b->data + off + 4);
        off += 8;
        if (len < 0 || (size_t)len > b->size - off)
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: llama2.c tokenizer token %d has bad length %d at byte offset %zu",
                             path, i, len, off - 4);
        off += (size_t)len;
    }
    if (off != b->size)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: llama2.c tokenizer has %zu bytes after its first %d tokens (byte offset %zu): it "
                         "holds more tokens than the model's %d: wrong tokenizer for this model?",
                         path, b->size - off, vocab, off, vocab);
    return ELLM_OK;
}

static char *config_json(const llama2c_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "hidden_size", json_integer(c->dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->dim / c->n_heads));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->seq_len));
    json_object_set_new(o, "rms_norm_eps", json_real(1e-5));
    json_object_set_new(o, "rope_theta", json_real(10000.0));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->shared_classifier));
    json_object_set_new(o, "bos_token_id", json_integer(1));
    json_object_set_new(o, "eos_token_id", json_integer(2));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "entrollm_rope_layout", json_string("interleaved"));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}

typedef struct kind {
    const char *fmt; /* name with %d for the layer, or a fixed name */
    int per_layer;
    int64_t rows, cols; /* cols 0 = vector */
} kind;

ellm_status src_open_llama2c(const char *path, const char *tokenizer_path, src_model **out,
                             ellm_error *err) {
    *out = NULL;
    uint64_t file_size;
    ellm_status s = ellm_file_size(path, &file_size, err);
    if (s) return s;
    src_model *m = src_model_new(path, "llama2c", err);
    if (!m) return ELLM_E_NOMEM;
    int fi;
    s = src_add_file(m, path, &fi, err);
    uint8_t hdr[LLAMA2C_V1_HEADER_BYTES];
    size_t got = (size_t)ELLM_MIN(file_size, (uint64_t)sizeof hdr);
    if (!s) s = ellm_pread_exact(m->fds[fi], path, hdr, got, 0, err);
    llama2c_config c;
    if (!s) s = llama2c_parse_header(hdr, got, file_size, path, &c, err);
    if (s) {
        src_close(m);
        return s;
    }

    const int64_t dim = c.dim, hid = c.hidden_dim, kv_dim = (int64_t)c.dim / c.n_heads * c.n_kv_heads;
    const int64_t head = dim / c.n_heads;
    const kind embed = {"tok_embeddings.weight", 0, c.vocab_size, dim},
               att_norm = {"layers.%d.attention_norm.weight", 1, dim, 0},
               wq = {"layers.%d.attention.wq.weight", 1, dim, dim},
               wk = {"layers.%d.attention.wk.weight", 1, kv_dim, dim},
               wv = {"layers.%d.attention.wv.weight", 1, kv_dim, dim},
               wo = {"layers.%d.attention.wo.weight", 1, dim, dim},
               ffn_norm = {"layers.%d.ffn_norm.weight", 1, dim, 0},
               w1 = {"layers.%d.feed_forward.w1.weight", 1, hid, dim},
               w2 = {"layers.%d.feed_forward.w2.weight", 1, dim, hid},
               w3 = {"layers.%d.feed_forward.w3.weight", 1, hid, dim},
               norm = {"norm.weight", 0, dim, 0},
               freq_cis = {NULL, 0, c.seq_len, head}, /* real + imag tables, skipped */
               output = {"output.weight", 0, c.vocab_size, dim};
    /* File order of each version (export.py legacy_export / version1_export). */
    const kind v0[] = {embed, att_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, norm, freq_cis, output};
    const kind v1[] = {att_norm, ffn_norm, norm, embed, wq, wk, wv, wo, w1, w2, w3, output};
    const kind *kinds = c.version == 1 ? v1 : v0;
    size_t n_kinds = c.version == 1 ? ELLM_ARRAY_LEN(v1) : ELLM_ARRAY_LEN(v0);
    if (c.shared_classifier) n_kinds--; /* output.weight is last in both */
    uint64_t off = c.data_offset;
    for (size_t k = 0; k < n_kinds && !s; k++) {
        const kind *kd = &kinds[k];
        uint64_t n = (uint64_t)kd->rows * (uint64_t)(kd->cols ? kd->cols : 1);
        if (!kd->fmt) {
            off += 4 * n;
            continue;
        }
        int layers = kd->per_layer ? c.n_layers : 1;
        for (int l = 0; l < layers && !s; l++) {
            char name[96];
            snprintf(name, sizeof name, kd->fmt, l);
            src_tensor t = {.name = name,
                            .n_dims = kd->cols ? 2 : 1,
                            .shape = {kd->rows, kd->cols},
                            .n_elements = n,
                            .dtype = ELLM_DTYPE_F32,
                            .file_index = fi,
                            .offset = off,
                            .n_bytes = 4 * n};
            s = src_add_tensor(m, &t, err);
            off += 4 * n;
        }
    }
    if (!s && off != file_size)
        s = ellm_fail(err, ELLM_E_INTERNAL, "%s: layout ends at %llu, file has %llu bytes", path,
                      (unsigned long long)off, (unsigned long long)file_size);

    /* Tokenizer: the one given (any kind), else tok512.bin or tokenizer.bin
     * beside the checkpoint. */
    if (!s) {
        char *found = NULL;
        if (tokenizer_path) {
            found = ellm_strdup(tokenizer_path);
        } else {
            char *dir = ellm_path_dirname(path);
            const char *cands[] = {"tok512.bin", "tokenizer.bin"};
            for (size_t i = 0; dir && i < 2 && !found; i++) {
                char *p = ellm_path_join(dir, cands[i]);
                if (p && ellm_path_exists(p)) found = p;
                else free(p);
            }
            free(dir);
        }
        if (found) {
            const char *kind = src_tokenizer_blob_name(found);
            s = src_add_blob_file(m, kind, found, err);
            if (!s && strcmp(kind, "tokenizer.bin") == 0)
                s = check_tokenizer(src_find_blob(m, "tokenizer.bin"), found, c.vocab_size, err);
            free(found);
        }
    }
    if (!s) {
        m->config_json = config_json(&c);
        if (!m->config_json) s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    }
    if (!s) s = src_finish(m, err);
    if (s) {
        src_close(m);
        return s;
    }
    *out = m;
    return ELLM_OK;
}
