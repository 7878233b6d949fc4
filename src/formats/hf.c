/*
 * hf.c - reader for Hugging Face model folders: config.json plus either
 * model.safetensors or the shards listed in model.safetensors.index.json.
 * Only the safetensors headers are read here; tensor data is read later, one
 * tensor at a time (src_read_f32).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "formats/safetensors.h"
#include "formats/source.h"

/* Tokenizer and generation files carried into the .ellm file when present. */
static const char *const HF_BLOBS[] = {
    "tokenizer.json",         "tokenizer_config.json",   "tokenizer.model",
    "generation_config.json", "special_tokens_map.json", "chat_template.jinja",
};

static ellm_status dtype_of(const char *file, const st_tensor *t, ellm_dtype *d, ellm_error *err) {
    if (strcmp(t->dtype, "F32") == 0) *d = ELLM_DTYPE_F32;
    else if (strcmp(t->dtype, "F16") == 0) *d = ELLM_DTYPE_F16;
    else if (strcmp(t->dtype, "BF16") == 0) *d = ELLM_DTYPE_BF16;
    else
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: tensor %s has dtype %s: only F32, F16 and BF16 weights are supported "
                         "(already-quantized checkpoints are not)",
                         file, t->name, t->dtype);
    return ELLM_OK;
}

/* Adds the tensors of one parsed shard; with `wanted` (the index's weight
 * map) only those it assigns to this shard, else all of them. */
static ellm_status add_shard(src_model *m, const char *shard_path, const char *shard_name, json_t *wanted,
                             ellm_error *err) {
    st_file f;
    ellm_status s = st_parse_file(shard_path, &f, err);
    if (s) return s;
    int fi;
    s = src_add_file(m, shard_path, &fi, err);
    size_t used = 0;
    for (size_t i = 0; i < f.n_tensors && !s; i++) {
        const st_tensor *t = &f.tensors[i];
        if (wanted) {
            json_t *where = json_object_get(wanted, t->name);
            if (!where || strcmp(json_string_value(where), shard_name) != 0) continue;
        }
        used++;
        src_tensor st = {.name = t->name, .n_dims = t->n_dims, .file_index = fi, .offset = t->begin,
                         .n_bytes = t->end - t->begin};
        s = dtype_of(shard_path, t, &st.dtype, err);
        if (s) break;
        if (t->n_dims < 1) {
            s = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tensor %s is a scalar (0 dimensions)", shard_path,
                          t->name);
            break;
        }
        uint64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) {
            st.shape[d] = t->shape[d];
            n *= (uint64_t)t->shape[d];
        }
        if (n == 0) {
            s = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: tensor %s has no elements", shard_path, t->name);
            break;
        }
        st.n_elements = n;
        s = src_add_tensor(m, &st, err);
    }
    /* Every tensor the index puts in this shard must be there. */
    if (!s && wanted) {
        const char *key;
        json_t *v;
        size_t expected = 0;
        json_object_foreach(wanted, key, v) {
            if (strcmp(json_string_value(v), shard_name) != 0) continue;
            expected++;
            bool found = false;
            for (size_t i = 0; i < f.n_tensors && !found; i++) found = strcmp(f.tensors[i].name, key) == 0;
            if (!found) {
                s = ellm_fail(err, ELLM_E_FORMAT,
                              "%s: tensor %s is listed in model.safetensors.index.json but absent from "
                              "this shard",
                              shard_path, key);
                break;
            }
        }
        if (!s && expected != used)
            s = ellm_fail(err, ELLM_E_INTERNAL, "%s: %zu tensors expected, %zu used", shard_path, expected, used);
    }
    st_free(&f);
    return s;
}

static ellm_status load_json(const char *path, json_t **out, ellm_error *err) {
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        if (!ellm_path_exists(path)) return ellm_fail(err, ELLM_E_IO, "%s: file not found", path);
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, je.text,
                         je.line, je.column);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not a JSON object", path);
    }
    return ELLM_OK;
}

/* Shards in order of first appearance in the weight map, sorted by name so
 * that data is read in file order (model-00001-of-N first). */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ellm_status open_sharded(src_model *m, const char *dir, const char *index_path, ellm_error *err) {
    json_t *index;
    ellm_status s = load_json(index_path, &index, err);
    if (s) return s;
    json_t *map = json_object_get(index, "weight_map");
    const char **shards = NULL;
    size_t n_shards = 0;
    if (!json_is_object(map) || json_object_size(map) == 0) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    shards = calloc(json_object_size(map), sizeof *shards);
    if (!shards) {
        s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *shard = json_string_value(v);
        if (!shard || !*shard || strchr(shard, '/') || strcmp(shard, "..") == 0) {
            s = ellm_fail(err, ELLM_E_FORMAT, "%s: weight_map entry for %s is not a file name in the folder",
                          index_path, key);
            goto done;
        }
        bool seen = false;
        for (size_t i = 0; i < n_shards && !seen; i++) seen = strcmp(shards[i], shard) == 0;
        if (!seen) shards[n_shards++] = shard;
    }
    qsort(shards, n_shards, sizeof *shards, cmp_str);
    for (size_t i = 0; i < n_shards && !s; i++) {
        char *p = ellm_path_join(dir, shards[i]);
        if (!p) s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        else if (!ellm_path_exists(p))
            s = ellm_fail(err, ELLM_E_IO, "%s: shard %s listed in model.safetensors.index.json is missing", dir,
                          shards[i]);
        else
            s = add_shard(m, p, shards[i], map, err);
        free(p);
    }
done:
    free(shards);
    json_decref(index);
    return s;
}

ellm_status src_open_hf(const char *dir, src_model **out, ellm_error *err) {
    *out = NULL;
    src_model *m = src_model_new(dir, "hf", err);
    if (!m) return ELLM_E_NOMEM;
    char *cfg_path = ellm_path_join(dir, "config.json");
    char *index_path = ellm_path_join(dir, "model.safetensors.index.json");
    char *single_path = ellm_path_join(dir, "model.safetensors");
    json_t *cfg = NULL;
    ellm_status s = ELLM_OK;
    if (!cfg_path || !index_path || !single_path) {
        s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    if (!ellm_path_exists(cfg_path)) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: no config.json: not a Hugging Face model folder", dir);
        goto done;
    }
    s = load_json(cfg_path, &cfg, err);
    if (s) goto done;
    json_object_set_new(cfg, "entrollm_rope_layout", json_string("half"));
    m->config_json = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!m->config_json) {
        s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        goto done;
    }
    if (ellm_path_exists(index_path)) {
        s = open_sharded(m, dir, index_path, err);
    } else if (ellm_path_exists(single_path)) {
        s = add_shard(m, single_path, "model.safetensors", NULL, err);
    } else {
        s = ellm_fail(err, ELLM_E_FORMAT,
                      "%s: neither model.safetensors nor model.safetensors.index.json is present "
                      "(pytorch_model.bin and consolidated.* checkpoints are not supported)",
                      dir);
    }
    if (s) goto done;
    if (m->n_tensors == 0) {
        s = ellm_fail(err, ELLM_E_FORMAT, "%s: the safetensors files hold no tensors", dir);
        goto done;
    }
    for (size_t i = 0; i < ELLM_ARRAY_LEN(HF_BLOBS) && !s; i++) {
        char *p = ellm_path_join(dir, HF_BLOBS[i]);
        if (!p) s = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        else if (ellm_path_exists(p)) s = src_add_blob_file(m, HF_BLOBS[i], p, err);
        free(p);
    }
    if (!s) s = src_finish(m, err);
done:
    json_decref(cfg);
    free(cfg_path);
    free(index_path);
    free(single_path);
    if (s) {
        src_close(m);
        return s;
    }
    *out = m;
    return ELLM_OK;
}
