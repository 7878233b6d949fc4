/* test_hf.c - the Hugging Face folder reader on the real config.json and
 * model.safetensors.index.json files of Phi-3.5-mini and SmolLM2-1.7B, with
 * small generated shards holding every tensor the index lists; and its
 * refusals (missing shard, tensor absent from its shard, bad JSON, dtype). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "common/pool.h"
#include "formats/safetensors.h"
#include "formats/source.h"
#include "formats/test_util.h"

typedef struct shard_data {
    const char *dtype;
    size_t n;         /* tensors in this shard */
    int64_t cols[512];
} shard_data;

/* Tensor i of a shard is [2, cols] with values (i + j) % 7 - 3 (exact in
 * every float type). */
static ellm_status fill(void *user, size_t index, void *dst, size_t n_bytes, ellm_error *err) {
    shard_data *sd = user;
    size_t es = strcmp(sd->dtype, "F32") == 0 ? 4 : 2;
    for (size_t j = 0; j < n_bytes / es; j++) {
        float v = (float)((int)((index + j) % 7) - 3);
        if (es == 4) memcpy((uint8_t *)dst + 4 * j, &v, 4);
        else {
            uint16_t h = strcmp(sd->dtype, "F16") == 0 ? ellm_f32_to_f16(v) : ellm_f32_to_bf16(v);
            memcpy((uint8_t *)dst + 2 * j, &h, 2);
        }
    }
    return ELLM_OK;
}

static void copy_file(const char *src, const char *dst) {
    uint8_t *d;
    size_t n;
    ellm_error err = {0};
    CHECK_OK(ellm_read_file(src, &d, &n, &err), err);
    FILE *f = fopen(dst, "wb");
    CHECK(f && fwrite(d, 1, n, f) == n);
    fclose(f);
    free(d);
}

/* Writes the shards of `index` into dir; skip_name (if not NULL) is left out. */
static void write_shards(const char *dir, json_t *index, const char *dtype, const char *skip_name) {
    json_t *map = json_object_get(index, "weight_map");
    const char *shards[8];
    size_t n_shards = 0;
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v) {
        bool seen = false;
        for (size_t i = 0; i < n_shards; i++) seen |= strcmp(shards[i], json_string_value(v)) == 0;
        if (!seen) shards[n_shards++] = json_string_value(v);
    }
    for (size_t s = 0; s < n_shards; s++) {
        st_writer *w;
        ellm_error err = {0};
        CHECK_OK(st_writer_new(&w, &err), err);
        shard_data sd = {.dtype = dtype};
        json_object_foreach(map, k, v) {
            if (strcmp(json_string_value(v), shards[s]) != 0) continue;
            if (skip_name && strcmp(k, skip_name) == 0) continue;
            int64_t shape[2] = {2, (int64_t)(sd.n % 5 + 1)};
            size_t es = strcmp(dtype, "F32") == 0 ? 4 : 2;
            CHECK_OK(st_writer_add(w, k, dtype, 2, shape, (uint64_t)(2 * shape[1] * es), &err), err);
            sd.cols[sd.n++] = shape[1];
        }
        char *p = ellm_path_join(dir, shards[s]);
        CHECK_OK(st_writer_write(w, p, fill, &sd, &err), err);
        free(p);
        st_writer_free(w);
    }
}

static void rm_dir(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static char *setup(const char *data, const char *model, const char *dtype, const char *skip, json_t **index_out) {
    char tmpl[] = "/tmp/ellm_test_hf_XXXXXX";
    CHECK(mkdtemp(tmpl));
    char *dir = ellm_strdup(tmpl);
    const char *files[] = {"config.json", "model.safetensors.index.json", "tokenizer.json",
                           "tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
                           "tokenizer.model"};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(files); i++) {
        char src[1024], dst[1024];
        snprintf(src, sizeof src, "%s/hf/%s/%s", data, model, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        if (ellm_path_exists(src)) copy_file(src, dst);
    }
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", dir);
    json_error_t je;
    json_t *index = json_load_file(ip, 0, &je);
    CHECK(index);
    write_shards(dir, index, dtype, skip);
    *index_out = index;
    return dir;
}

typedef struct par_ctx {
    src_model *m;
    float *out; /* 16 floats per tensor */
    int fail;
} par_ctx;

static void par_read(void *ctx, int64_t task, int thread) {
    par_ctx *pc = ctx;
    ellm_error err;
    if (src_read_f32(pc->m, (size_t)task, pc->out + 16 * task, &err) != ELLM_OK) pc->fail = 1;
}

static void check_model(const char *data, const char *model, const char *dtype, size_t n_expect,
                        int64_t hidden, const char *some_tensor, bool has_tok_model) {
    json_t *index;
    char *dir = setup(data, model, dtype, NULL, &index);
    ellm_error err = {0};
    src_model *m;
    CHECK_OK(src_open(dir, NULL, &m, &err), err);
    CHECK(strcmp(m->format, "hf") == 0);
    CHECK(m->n_tensors == n_expect && json_object_size(json_object_get(index, "weight_map")) == n_expect);
    CHECK(m->n_files == 2);
    CHECK(src_find(m, some_tensor) >= 0);
    CHECK(src_find(m, "model.embed_tokens.weight") >= 0 && src_find(m, "model.norm.weight") >= 0);
    /* tensors are in file order: shard 1 first, offsets increasing */
    for (size_t i = 1; i < m->n_tensors; i++) {
        const src_tensor *a = &m->tensors[i - 1], *b = &m->tensors[i];
        CHECK(a->file_index < b->file_index || (a->file_index == b->file_index && a->offset < b->offset));
    }
    /* data converts exactly */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const src_tensor *t = &m->tensors[i];
        CHECK(strcmp(ellm_dtype_name(t->dtype), dtype) == 0);
        float buf[16];
        CHECK(t->n_elements <= 16);
        CHECK_OK(src_read_f32(m, i, buf, &err), err);
        /* index within its shard: count earlier tensors of the same file */
        size_t k = 0;
        for (size_t j = 0; j < i; j++) k += m->tensors[j].file_index == t->file_index;
        for (uint64_t j = 0; j < t->n_elements; j++) CHECK(buf[j] == (float)((int)((k + j) % 7) - 3));
    }
    /* concurrent reads (pread) give the same floats as serial ones */
    {
        par_ctx pc = {.m = m, .out = calloc(m->n_tensors * 16, sizeof(float)), .fail = 0};
        ellm_pool *pool;
        CHECK_OK(ellm_pool_create(4, &pool, &err), err);
        ellm_pool_run(pool, (int64_t)m->n_tensors, par_read, &pc);
        ellm_pool_destroy(pool);
        CHECK(!pc.fail);
        for (size_t i = 0; i < m->n_tensors; i++) {
            float buf[16];
            CHECK_OK(src_read_f32(m, i, buf, &err), err);
            CHECK(memcmp(buf, pc.out + 16 * i, m->tensors[i].n_elements * 4) == 0);
        }
        free(pc.out);
    }
    json_error_t je;
    json_t *cfg = json_loads(m->config_json, 0, &je);
    CHECK(cfg);
    CHECK(strcmp(json_string_value(json_object_get(cfg, "entrollm_rope_layout")), "half") == 0);
    CHECK(json_integer_value(json_object_get(cfg, "hidden_size")) == hidden);
    json_decref(cfg);
    CHECK(src_find_blob(m, "tokenizer.json") && src_find_blob(m, "tokenizer_config.json"));
    CHECK(src_find_blob(m, "generation_config.json") && src_find_blob(m, "special_tokens_map.json"));
    CHECK((src_find_blob(m, "tokenizer.model") != NULL) == has_tok_model);
    CHECK(src_find_blob(m, "config.json") == NULL);
    src_close(m);
    /* a tokenizer given by the user replaces the carried ones */
    char tokp[1024];
    snprintf(tokp, sizeof tokp, "%s/stories260K/tok512.bin", data);
    CHECK_OK(src_open(dir, tokp, &m, &err), err);
    CHECK(!src_find_blob(m, "tokenizer.json") && !src_find_blob(m, "tokenizer.model"));
    CHECK(src_find_blob(m, "tokenizer.bin")->size == 6227 && src_find_blob(m, "tokenizer_config.json"));
    src_close(m);

    /* a missing shard is named */
    json_t *map = json_object_get(index, "weight_map");
    const char *shard1 = json_string_value(json_object_get(map, "model.embed_tokens.weight"));
    char *sp = ellm_path_join(dir, shard1);
    char *moved = ellm_path_join(dir, "moved.bin");
    CHECK(rename(sp, moved) == 0);
    CHECK_FAIL(src_open(dir, NULL, &m, &err), ELLM_E_IO, shard1, err);
    CHECK(strstr(err.message, "missing"));
    CHECK(rename(moved, sp) == 0);
    free(sp);
    free(moved);
    /* bad config.json */
    char *cp = ellm_path_join(dir, "config.json");
    FILE *f = fopen(cp, "wb");
    fputs("{\"hidden_size\": 64,\n \"oops\" }", f);
    fclose(f);
    CHECK_FAIL(src_open(dir, NULL, &m, &err), ELLM_E_FORMAT, "config.json: not valid JSON", err);
    CHECK(strstr(err.message, "line 2"));
    unlink(cp);
    CHECK_FAIL(src_open(dir, NULL, &m, &err), ELLM_E_FORMAT, "no config.json", err);
    free(cp);
    json_decref(index);
    rm_dir(dir);
    free(dir);

    /* a tensor listed in the index but absent from its shard */
    dir = setup(data, model, dtype, some_tensor, &index);
    CHECK_FAIL(src_open(dir, NULL, &m, &err), ELLM_E_FORMAT, some_tensor, err);
    CHECK(strstr(err.message, "absent"));
    json_decref(index);
    rm_dir(dir);
    free(dir);
}

static void check_single_file(void) {
    char tmpl[] = "/tmp/ellm_test_hf1_XXXXXX";
    CHECK(mkdtemp(tmpl));
    ellm_error err = {0};
    char *cp = ellm_path_join(tmpl, "config.json"), *mp = ellm_path_join(tmpl, "model.safetensors");
    FILE *f = fopen(cp, "wb");
    fputs("{\"model_type\": \"llama\", \"hidden_size\": 4}", f);
    fclose(f);
    src_model *m;
    CHECK_FAIL(src_open(tmpl, NULL, &m, &err), ELLM_E_FORMAT, "neither model.safetensors", err);
    st_writer *w;
    CHECK_OK(st_writer_new(&w, &err), err);
    const int64_t shape[2] = {2, 2};
    CHECK_OK(st_writer_add(w, "model.norm.weight", "F16", 2, shape, 8, &err), err);
    CHECK_OK(st_writer_add(w, "model.x", "I8", 2, shape, 4, &err), err);
    shard_data sd = {.dtype = "F16"};
    CHECK_OK(st_writer_write(w, mp, fill, &sd, &err), err);
    st_writer_free(w);
    CHECK_FAIL(src_open(tmpl, NULL, &m, &err), ELLM_E_UNSUPPORTED, "tensor model.x has dtype I8", err);
    CHECK(strstr(err.message, "model.safetensors"));
    CHECK_OK(st_writer_new(&w, &err), err);
    CHECK_OK(st_writer_add(w, "model.norm.weight", "F16", 2, shape, 8, &err), err);
    CHECK_OK(st_writer_write(w, mp, fill, &sd, &err), err);
    st_writer_free(w);
    CHECK_OK(src_open(mp, NULL, &m, &err), err); /* a file of the folder opens the folder */
    CHECK(m->n_tensors == 1 && strcmp(m->format, "hf") == 0);
    src_close(m);
    CHECK_OK(src_open(tmpl, NULL, &m, &err), err);
    CHECK(m->n_tensors == 1 && m->tensors[0].dtype == ELLM_DTYPE_F16 && m->n_blobs == 0);
    float v[4];
    CHECK_OK(src_read_f32(m, 0, v, &err), err);
    CHECK(v[0] == -3 && v[1] == -2 && v[3] == 0);
    src_close(m);
    free(cp);
    free(mp);
    rm_dir(tmpl);
}

int main(void) {
    const char *data = test_data_dir();
    check_model(data, "phi-3.5-mini-instruct", "BF16", 195, 3072, "model.layers.31.self_attn.qkv_proj.weight", true);
    check_model(data, "smollm2-1.7b-resaved", "F32", 218, 2048, "model.layers.23.mlp.gate_proj.weight", false);
    check_single_file();
    printf("hf: ok\n");
    return 0;
}
