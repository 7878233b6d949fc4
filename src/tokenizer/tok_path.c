/*
 * tok_path.c - ellm_tokenizer_load(): a tokenizer from whatever path the user
 * gives: an HF folder, tokenizer.json / tokenizer.model / llama2.c .bin /
 * vocabulary GGUF, a GGUF model, a llama2.c checkpoint (its tokenizer is
 * looked for beside it), or a .ellm file (the tokenizer blobs it carries).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char *const config_names[] = {"tokenizer_config.json", "special_tokens_map.json",
                                           "generation_config.json", "chat_template.jinja"};
static const char *const vocab_names[] = {"tokenizer.json", "tokenizer.model", "tokenizer.gguf", "tokenizer.bin"};

typedef struct blobset {
    ellm_blob_ref refs[16];
    uint8_t *owned[16];
    size_t n;
} blobset;

static void blobset_free(blobset *b) {
    for (size_t i = 0; i < b->n; i++) free(b->owned[i]);
    b->n = 0;
}

/* Adds dir/file under `name` when the file exists. */
static ellm_status blobset_add_file(blobset *b, const char *dir, const char *file, const char *name,
                                    ellm_error *err) {
    char *path = dir ? ellm_path_join(dir, file) : ellm_strdup(file);
    if (!path) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    ellm_status st = ELLM_OK;
    if (ellm_path_exists(path) && !ellm_path_is_dir(path) && b->n < ELLM_ARRAY_LEN(b->refs)) {
        uint8_t *data;
        size_t size;
        st = ellm_read_file(path, &data, &size, err);
        if (!st) {
            b->owned[b->n] = data;
            b->refs[b->n].name = name;
            b->refs[b->n].data = data;
            b->refs[b->n].size = size;
            b->n++;
        }
    }
    free(path);
    return st;
}

static ellm_status add_configs(blobset *b, const char *dir, ellm_error *err) {
    for (size_t i = 0; i < ELLM_ARRAY_LEN(config_names); i++) {
        ellm_status st = blobset_add_file(b, dir, config_names[i], config_names[i], err);
        if (st) return st;
    }
    return ELLM_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* A llama2.c checkpoint: 7 int32 header; the tokenizer is beside it
 * (tok<vocab>.bin as for stories260K, tokenizer.bin, tokenizer.model). */
static ellm_status load_llama2c_checkpoint(const char *path, const uint8_t *data, size_t size, ellm_tokenizer **out,
                                           ellm_error *err) {
    if (size < 28) return ellm_fail(err, ELLM_E_FORMAT, "%s: not a tokenizer nor a llama2.c checkpoint (%zu bytes)", path, size);
    int32_t vocab = (int32_t)ellm_le32(data + 20);
    if (vocab < 0) vocab = -vocab;
    if (vocab <= 0 || vocab > (1 << 24))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not a tokenizer; as a llama2.c checkpoint its vocab_size %d is invalid",
                         path, (int)vocab);
    char *dir = ellm_path_dirname(path);
    if (!dir) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    char tokname[64];
    snprintf(tokname, sizeof tokname, "tok%d.bin", (int)vocab);
    const char *candidates[] = {tokname, "tokenizer.bin", "tokenizer.model"};
    ellm_status st = ELLM_OK;
    int found = 0;
    for (size_t i = 0; i < ELLM_ARRAY_LEN(candidates) && !found; i++) {
        char *p = ellm_path_join(dir, candidates[i]);
        if (!p) {
            st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
            break;
        }
        if (ellm_path_exists(p)) {
            found = 1;
            st = ellm_tokenizer_load(p, out, err);
            if (!st && ellm_tokenizer_vocab_size(*out) != vocab) {
                st = ellm_fail(err, ELLM_E_FORMAT, "%s: %d tokens, but the checkpoint %s has vocab_size %d", p,
                               (int)ellm_tokenizer_vocab_size(*out), path, (int)vocab);
                ellm_tokenizer_free(*out);
                *out = NULL;
            }
        }
        free(p);
    }
    if (!found)
        st = ellm_fail(err, ELLM_E_FORMAT,
                       "%s: a llama2.c checkpoint without a tokenizer beside it (looked for %s, tokenizer.bin, "
                       "tokenizer.model in %s)",
                       path, tokname, dir);
    free(dir);
    return st;
}

/* .ellm files: the tokenizer blobs the container carries (tok_ellm.c). */
ellm_status tok_load_ellm(const char *path, ellm_tokenizer **out, ellm_error *err);

ellm_status ellm_tokenizer_load(const char *path, ellm_tokenizer **out, ellm_error *err) {
    *out = NULL;
    if (!path) return ellm_fail(err, ELLM_E_ARG, "ellm_tokenizer_load: no path");
    ellm_status st;
    blobset b = {0};
    if (ellm_path_is_dir(path)) {
        for (size_t i = 0; i < ELLM_ARRAY_LEN(vocab_names); i++)
            if ((st = blobset_add_file(&b, path, vocab_names[i], vocab_names[i], err))) goto done;
        if (b.n == 0) {
            st = ellm_fail(err, ELLM_E_FORMAT, "%s: folder without tokenizer.json, tokenizer.model, tokenizer.bin", path);
            goto done;
        }
        if ((st = add_configs(&b, path, err))) goto done;
        st = ellm_tokenizer_from_blobs(b.refs, b.n, path, out, err);
        goto done;
    }
    ellm_mmap m;
    if ((st = ellm_mmap_open(path, &m, err))) return st;
    const uint8_t *d = m.data;
    size_t size = m.size;
    if (size >= 8 && !memcmp(d, "ENTROLLM", 8)) {
        ellm_mmap_close(&m);
        return tok_load_ellm(path, out, err);
    }
    if (size >= 4 && !memcmp(d, "GGUF", 4)) {
        st = ellm_tokenizer_from_gguf(d, size, path, out, err);
        ellm_mmap_close(&m);
        return st;
    }
    size_t i = 0;
    while (i < size && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t')) i++;
    const char *name = NULL;
    if (ends_with(path, ".json") || (i < size && d[i] == '{')) name = "tokenizer.json";
    else if (ends_with(path, ".model") || strstr(base_name(path), ".model")) name = "tokenizer.model";
    else if (ends_with(path, ".gguf")) name = "tokenizer.gguf";
    if (!name) {
        /* a llama2.c tokenizer .bin, or a llama2.c checkpoint */
        ellm_error e2;
        st = ellm_tokenizer_from_llama2c(d, size, path, out, &e2);
        if (st) {
            st = load_llama2c_checkpoint(path, d, size, out, err);
            /* neither: say both, the tokenizer reading first */
            if (st == ELLM_E_FORMAT && err) {
                char as_ckpt[sizeof err->message];
                snprintf(as_ckpt, sizeof as_ckpt, "%s", err->message);
                ellm_fail(err, ELLM_E_FORMAT, "%s; nor is it a llama2.c checkpoint: %s", e2.message, as_ckpt);
            }
        }
        ellm_mmap_close(&m);
        return st;
    }
    ellm_mmap_close(&m);
    /* the file itself, plus the config files beside it (chat template, BOS/EOS) */
    if ((st = blobset_add_file(&b, NULL, path, name, err))) goto done;
    if (b.n == 0) {
        st = ellm_fail(err, ELLM_E_IO, "%s: cannot read", path);
        goto done;
    }
    if (strcmp(base_name(path), "tokenizer_config.json") == 0) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: a tokenizer_config.json holds no vocabulary; give its folder", path);
        goto done;
    }
    {
        char *dir = ellm_path_dirname(path);
        if (!dir) {
            st = ellm_fail(err, ELLM_E_NOMEM, "out of memory");
            goto done;
        }
        st = add_configs(&b, dir, err);
        free(dir);
        if (st) goto done;
    }
    st = ellm_tokenizer_from_blobs(b.refs, b.n, path, out, err);
done:
    blobset_free(&b);
    return st;
}
