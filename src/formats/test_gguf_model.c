/* test_gguf_model.c - the GGUF model reader: the real stories260K weights
 * written as a llama GGUF (F32 norms, F16 matrices, BF16 embeddings, the real
 * 512-token vocabulary) read back through src_open; refusals of quantized
 * tensors, unknown architectures, vocabulary-only files and truncation. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "formats/gguf.h"
#include "formats/source.h"
#include "formats/test_util.h"

typedef struct conv {
    src_model *src;
    long *map;        /* gguf tensor index -> source tensor index */
    uint32_t *types;
} conv;

static ellm_status give(void *user, size_t index, void *dst, size_t n, ellm_error *err) {
    conv *c = user;
    uint32_t ty = c->types[index];
    if (ty != GGML_TYPE_F32 && ty != GGML_TYPE_F16 && ty != GGML_TYPE_BF16) {
        memset(dst, 0, n); /* a quantized type: the bytes do not matter */
        return ELLM_OK;
    }
    const src_tensor *t = &c->src->tensors[c->map[index]];
    float *f = malloc(t->n_elements * 4);
    ellm_status s = src_read_f32(c->src, (size_t)c->map[index], f, err);
    for (uint64_t i = 0; i < t->n_elements && !s; i++) {
        if (c->types[index] == GGML_TYPE_F32) memcpy((uint8_t *)dst + 4 * i, &f[i], 4);
        else {
            uint16_t h = c->types[index] == GGML_TYPE_F16 ? ellm_f32_to_f16(f[i]) : ellm_f32_to_bf16(f[i]);
            memcpy((uint8_t *)dst + 2 * i, &h, 2);
        }
    }
    free(f);
    return s;
}

/* Meta name -> llama.cpp name. */
static void gguf_name(const char *meta, char *out, size_t n) {
    int l;
    char kind[64];
    if (strcmp(meta, "tok_embeddings.weight") == 0) snprintf(out, n, "token_embd.weight");
    else if (strcmp(meta, "norm.weight") == 0) snprintf(out, n, "output_norm.weight");
    else if (strcmp(meta, "output.weight") == 0) snprintf(out, n, "output.weight");
    else if (sscanf(meta, "layers.%d.%63s", &l, kind) == 2) {
        const char *k = strcmp(kind, "attention_norm.weight") == 0 ? "attn_norm"
                        : strcmp(kind, "attention.wq.weight") == 0 ? "attn_q"
                        : strcmp(kind, "attention.wk.weight") == 0 ? "attn_k"
                        : strcmp(kind, "attention.wv.weight") == 0 ? "attn_v"
                        : strcmp(kind, "attention.wo.weight") == 0 ? "attn_output"
                        : strcmp(kind, "ffn_norm.weight") == 0 ? "ffn_norm"
                        : strcmp(kind, "feed_forward.w1.weight") == 0 ? "ffn_gate"
                        : strcmp(kind, "feed_forward.w2.weight") == 0 ? "ffn_down"
                                                                       : "ffn_up";
        snprintf(out, n, "blk.%d.%s.weight", l, k);
    } else {
        CHECK(0);
    }
}

/* Writes stories260K as a GGUF; arch and an optional quantized tensor type
 * for the first matrix vary per case. */
static void write_gguf(const char *data, const char *out, const char *arch, uint32_t first_matrix_type,
                       int n_tokens /* 0: none; > 512: padded with extra pieces */) {
    char path[1024];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", data);
    ellm_error err = {0};
    conv c = {0};
    CHECK_OK(src_open(path, NULL, &c.src, &err), err);
    c.map = calloc(c.src->n_tensors, sizeof *c.map);
    c.types = calloc(c.src->n_tensors, sizeof *c.types);
    gguf_writer *w;
    CHECK_OK(gguf_writer_new(&w, &err), err);
    gguf_writer_set_str(w, "general.architecture", arch);
    char key[128];
#define K(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gguf_writer_set_u32(w, K("embedding_length"), 64);
    gguf_writer_set_u32(w, K("feed_forward_length"), 172);
    gguf_writer_set_u32(w, K("block_count"), 5);
    gguf_writer_set_u32(w, K("attention.head_count"), 8);
    gguf_writer_set_u32(w, K("attention.head_count_kv"), 4);
    gguf_writer_set_u32(w, K("context_length"), 512);
    gguf_writer_set_f32(w, K("rope.freq_base"), 10000.0f);
    gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (n_tokens) {
        /* the real vocabulary from tok512.bin */
        const src_blob *tb = src_find_blob(c.src, "tokenizer.bin");
        const char *items[600];
        size_t lens[600];
        float scores[600];
        size_t off = 4;
        CHECK(n_tokens >= 512 && n_tokens <= 600);
        for (int i = 0; i < n_tokens; i++) {
            if (i >= 512) {
                items[i] = "<extra>";
                lens[i] = 7;
                scores[i] = 0;
                continue;
            }
            memcpy(&scores[i], tb->data + off, 4);
            lens[i] = ellm_le32(tb->data + off + 4);
            items[i] = (const char *)tb->data + off + 8;
            off += 8 + lens[i];
        }
        gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", items, lens, (uint64_t)n_tokens);
        gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_tokens);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    }
    gguf_writer_set_u32(w, "general.file_type", 1);
    bool first = true;
    for (size_t i = 0; i < c.src->n_tensors; i++) {
        const src_tensor *t = &c.src->tensors[i];
        char name[128];
        gguf_name(t->name, name, sizeof name);
        uint32_t type = t->n_dims == 1 ? GGML_TYPE_F32 : i == 0 ? GGML_TYPE_BF16 : GGML_TYPE_F16;
        if (t->n_dims == 2 && i > 0 && first && first_matrix_type != GGML_TYPE_F16) {
            type = first_matrix_type;
            first = false;
        }
        c.map[i] = (long)i;
        c.types[i] = type;
        gguf_writer_add_tensor(w, name, t->n_dims, t->shape, type);
    }
    CHECK_OK(gguf_writer_write(w, out, give, &c, &err), err);
    gguf_writer_free(w);
    free(c.map);
    free(c.types);
    src_close(c.src);
}

int main(void) {
    const char *data = test_data_dir();
    char tmp[] = "/tmp/ellm_test_ggufm_XXXXXX";
    CHECK(mkdtemp(tmp));
    char out[1024], src_path[1024];
    snprintf(out, sizeof out, "%s/stories.gguf", tmp);
    snprintf(src_path, sizeof src_path, "%s/stories260K/stories260K.bin", data);
    ellm_error err = {0};
    write_gguf(data, out, "llama", GGML_TYPE_F16, 512);

    src_model *m, *ref;
    CHECK_OK(src_open(out, NULL, &m, &err), err);
    CHECK_OK(src_open(src_path, NULL, &ref, &err), err);
    CHECK(strcmp(m->format, "gguf") == 0 && m->n_tensors == ref->n_tensors);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const src_tensor *a = &m->tensors[i], *b = &ref->tensors[i];
        CHECK(a->n_dims == b->n_dims && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1]);
        CHECK(a->dtype == (a->n_dims == 1 ? ELLM_DTYPE_F32 : i == 0 ? ELLM_DTYPE_BF16 : ELLM_DTYPE_F16));
        float *x = malloc(a->n_elements * 4), *y = malloc(b->n_elements * 4);
        CHECK_OK(src_read_f32(m, i, x, &err), err);
        CHECK_OK(src_read_f32(ref, i, y, &err), err);
        for (uint64_t k = 0; k < a->n_elements; k++) {
            float e = a->dtype == ELLM_DTYPE_F32 ? y[k]
                      : a->dtype == ELLM_DTYPE_F16 ? ellm_f16_to_f32(ellm_f32_to_f16(y[k]))
                                                    : ellm_bf16_to_f32(ellm_f32_to_bf16(y[k]));
            CHECK(x[k] == e);
        }
        free(x);
        free(y);
    }
    CHECK(src_find(m, "blk.4.attn_k.weight") >= 0 && m->tensors[src_find(m, "blk.4.attn_k.weight")].shape[0] == 32);
    json_error_t je;
    json_t *cfg = json_loads(m->config_json, 0, &je);
    CHECK(cfg);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)), "LlamaForCausalLM") == 0);
    CHECK(json_integer_value(json_object_get(cfg, "hidden_size")) == 64);
    CHECK(json_integer_value(json_object_get(cfg, "num_key_value_heads")) == 4);
    CHECK(json_integer_value(json_object_get(cfg, "vocab_size")) == 512);
    CHECK(json_integer_value(json_object_get(cfg, "head_dim")) == 8);
    CHECK(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    CHECK(fabs(json_number_value(json_object_get(cfg, "rope_theta")) - 10000) < 1e-9);
    CHECK(fabs(json_number_value(json_object_get(cfg, "rms_norm_eps")) - 1e-5) < 1e-10);
    CHECK(strcmp(json_string_value(json_object_get(cfg, "entrollm_rope_layout")), "interleaved") == 0);
    json_decref(cfg);
    /* the tokenizer blob is a metadata-only GGUF with the vocabulary */
    const src_blob *tb = src_find_blob(m, "tokenizer.gguf");
    CHECK(tb);
    gguf_ctx g;
    CHECK_OK(gguf_parse(tb->data, tb->size, "tokenizer.gguf", &g, &err), err);
    CHECK(g.n_tensors == 0 && g.n_kv == 6); /* arch + model, tokens, scores, bos, eos */
    CHECK(gguf_find(&g, "tokenizer.ggml.tokens")->arr_len == 512);
    CHECK(!gguf_find(&g, "general.file_type") && !gguf_find(&g, "llama.block_count"));
    gguf_free(&g);
    src_close(ref);
    src_close(m);

    /* truncated: every cut fails and names the file */
    uint64_t size;
    CHECK_OK(ellm_file_size(out, &size, &err), err);
    uint64_t cuts[] = {3, 20, 200, 5000, size / 2, size - 1};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(cuts); i++) {
        CHECK(truncate(out, (off_t)cuts[i]) == 0);
        ellm_status s = src_open(out, NULL, &m, &err);
        if (s == ELLM_OK || !strstr(err.message, "stories.gguf")) {
            fprintf(stderr, "cut %llu: %d %s\n", (unsigned long long)cuts[i], s, err.message);
            CHECK(0);
        }
    }

    /* phi3: rope layout half, architecture class */
    write_gguf(data, out, "phi3", GGML_TYPE_F16, 512);
    CHECK_OK(src_open(out, NULL, &m, &err), err);
    CHECK(strstr(m->config_json, "\"Phi3ForCausalLM\"") && strstr(m->config_json, "\"half\""));
    src_close(m);
    /* quantized tensors are refused by name and type */
    write_gguf(data, out, "llama", 8, 512);
    CHECK_FAIL(src_open(out, NULL, &m, &err), ELLM_E_UNSUPPORTED,
               "tensor blk.0.attn_q.weight has type Q8_0: already-quantized GGUF files are not supported; "
               "give an F32/F16/BF16 model", err);
    CHECK(strstr(err.message, "stories.gguf"));
    /* unknown architecture */
    write_gguf(data, out, "gpt2", GGML_TYPE_F16, 512);
    CHECK_FAIL(src_open(out, NULL, &m, &err), ELLM_E_UNSUPPORTED, "architecture \"gpt2\" is not supported", err);
    /* no vocabulary: vocab from the embedding rows, no tokenizer blob */
    write_gguf(data, out, "mistral", GGML_TYPE_F16, 0);
    CHECK_OK(src_open(out, NULL, &m, &err), err);
    CHECK(strstr(m->config_json, "\"vocab_size\": 512") && !src_find_blob(m, "tokenizer.gguf"));
    src_close(m);
    /* more tokens than embedding rows */
    write_gguf(data, out, "llama", GGML_TYPE_F16, 513);
    CHECK_FAIL(src_open(out, NULL, &m, &err), ELLM_E_FORMAT, "513 tokens but token_embd.weight has only 512 rows",
               err);
    /* a corrupted string-array count in a large file: metadata reading stops
     * at its cap instead of loading the file (sparse 100 MiB file) */
    {
        FILE *f = fopen(out, "wb");
        uint8_t h[64] = {0};
        memcpy(h, "GGUF", 4);
        ellm_put_le32(h + 4, 3);
        ellm_put_le64(h + 8, 1);  /* tensors */
        ellm_put_le64(h + 16, 1); /* kvs */
        ellm_put_le64(h + 24, 1);
        h[32] = 'x';
        ellm_put_le32(h + 33, GGUF_TYPE_ARRAY);
        ellm_put_le32(h + 37, GGUF_TYPE_STRING);
        ellm_put_le64(h + 41, 1ull << 38); /* count: every string empty (zero bytes) */
        fwrite(h, 1, 49, f);
        fclose(f);
        CHECK(truncate(out, 100 << 20) == 0);
        CHECK_FAIL(src_open(out, NULL, &m, &err), ELLM_E_FORMAT, "GGUF metadata runs past 64 MiB", err);
    }
    /* a vocabulary-only GGUF is not a model */
    char vp[1024];
    snprintf(vp, sizeof vp, "%s/vocab/ggml-vocab-llama-spm.gguf", data);
    CHECK_FAIL(src_open(vp, NULL, &m, &err), ELLM_E_FORMAT, "without tensors", err);
    unlink(out);
    rmdir(tmp);
    printf("gguf model: ok\n");
    return 0;
}
