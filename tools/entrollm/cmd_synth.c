/* cmd_synth.c - `entrollm synth`: write a model with generated (not trained)
 * weights in the shape of a config.json or a built-in configuration. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "formats/source.h"
#include "formats/synth.h"

/* Files copied from beside CONFIG.json when present. */
static const char *const COPIED[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                     "generation_config.json", "special_tokens_map.json", "chat_template.jinja"};

static void usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm synth (CONFIG.json | --builtin NAME) -o DIR [options]\n\n"
            "Writes DIR/config.json and DIR/model.safetensors: a model with the tensor names and\n"
            "shapes of the architecture in CONFIG.json (llama, mistral, phi3, qwen2) and GENERATED\n"
            "weights (seeded normal: linear and embeddings N(0, 0.02), norms 1 + N(0, 0.02)).\n"
            "The weights are not trained: the model produces meaningless text. It is for tests,\n"
            "sizes and speed measurements. Tokenizer files beside CONFIG.json are copied.\n\n"
            "Options:\n");
    cli_print_options(out, opts);
}

static ellm_status copy_file(const char *src, const char *dst, ellm_error *err) {
    uint8_t *data;
    size_t size;
    ellm_status s = ellm_read_file(src, &data, &size, err);
    if (s) return s;
    ellm_outfile o;
    s = ellm_outfile_open(&o, dst, err);
    if (!s) s = ellm_outfile_write(&o, data, size, err);
    if (!s) s = ellm_outfile_commit(&o, err);
    else ellm_outfile_abort(&o);
    free(data);
    return s;
}

int cmd_synth(int argc, char **argv) {
    const char *config_path = NULL, *builtin = NULL, *out = NULL, *dtype = "bf16";
    long layers = 0;
    uint64_t seed = 1;
    bool json = false;
    char builtin_help[256] = "a built-in configuration:";
    for (const char *const *n = ellm_synth_builtin_names(); *n; n++)
        snprintf(builtin_help + strlen(builtin_help), sizeof builtin_help - strlen(builtin_help), " %s", *n);
    const cli_opt opts[] = {
        {CLI_STRING("--output", "-o", &out, "DIR", "output folder (created if missing)")},
        {CLI_STRING("--builtin", NULL, &builtin, "NAME", builtin_help)},
        {CLI_INT("--layers", NULL, &layers, 1, 1000, "L", "number of layers (default: the config's)")},
        {CLI_U64("--seed", NULL, &seed, 0, UINT64_MAX, "S", "random seed (default 1)")},
        {CLI_STRING("--dtype", NULL, &dtype, "T", "f32, f16 or bf16 (default bf16)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object describing the result")},
        {0},
    };
    int n_pos, rc = cli_parse("synth", argc, argv, opts, &config_path, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (usage(stdout, opts), EXIT_OK) : rc;
    if (strcmp(dtype, "f32") && strcmp(dtype, "f16") && strcmp(dtype, "bf16"))
        return cli_usage_error("synth", "--dtype must be f32, f16 or bf16, got '%s'", dtype);
    if (!config_path == !builtin) return cli_usage_error("synth", "give either CONFIG.json or --builtin NAME");
    if (!out) return cli_usage_error("synth", "missing -o DIR");

    ellm_error err = {0};
    char *text = NULL;
    const char *config = NULL;
    if (builtin) {
        config = ellm_synth_builtin_config(builtin);
        if (!config) return cli_usage_error("synth", "unknown built-in configuration '%s'", builtin);
    } else {
        size_t size;
        if (ellm_read_file(config_path, (uint8_t **)&text, &size, &err)) return cli_report_error(&err);
        config = text;
    }
    ellm_progress bar;
    ellm_progress_init(&bar, "synth");
    double t0 = ellm_now();
    ellm_status s = ellm_synth(config, (int)layers, seed, dtype, out, ellm_progress_callback, &bar, &err);
    ellm_progress_finish(&bar);
    free(text);
    if (s) {
        if (config_path) ellm_fail_prefix(&err, "%s", config_path);
        return cli_report_error(&err);
    }
    double seconds = ellm_now() - t0;

    json_t *copied = json_array();
    if (config_path) {
        char *dir = ellm_path_dirname(config_path);
        for (size_t i = 0; i < ELLM_ARRAY_LEN(COPIED) && !s; i++) {
            char *src = ellm_path_join(dir, COPIED[i]), *dst = ellm_path_join(out, COPIED[i]);
            if (ellm_path_exists(src)) {
                s = copy_file(src, dst, &err);
                json_array_append_new(copied, json_string(COPIED[i]));
            }
            free(src);
            free(dst);
        }
        free(dir);
        if (s) {
            json_decref(copied);
            return cli_report_error(&err);
        }
    }

    /* Read the result back: it checks the folder and gives the counts. */
    src_model *m;
    if (src_open(out, NULL, &m, &err)) {
        json_decref(copied);
        return cli_report_error(&err);
    }
    uint64_t params = 0;
    for (size_t i = 0; i < m->n_tensors; i++) params += m->tensors[i].n_elements;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:o, s:f, s:b, s:s}", "output", out, "config",
                              builtin ? builtin : config_path, "tensors", (json_int_t)m->n_tensors, "params",
                              (json_int_t)params, "bytes", (json_int_t)m->source_bytes, "dtype", dtype, "seed",
                              (json_int_t)seed, "copied", copied, "seconds", seconds, "generated_weights", 1,
                              "note", "weights are generated (seeded random), not trained");
        char *txt = json_dumps(o, JSON_INDENT(2));
        puts(txt);
        free(txt);
        json_decref(o);
    } else {
        char hb[32];
        printf("wrote %s: %zu tensors, %.1fM parameters, %s of %s safetensors in %.1fs\n", out, m->n_tensors,
               (double)params / 1e6, cli_human_bytes(m->source_bytes, hb, sizeof hb), dtype, seconds);
        for (size_t i = 0; i < json_array_size(copied); i++)
            printf("copied %s\n", json_string_value(json_array_get(copied, i)));
        printf("NOTE: the weights are GENERATED (seeded random, seed %llu), NOT TRAINED: this model's "
               "output is meaningless text. Use it for sizes, speed and loader tests only.\n",
               (unsigned long long)seed);
        json_decref(copied);
    }
    src_close(m);
    return EXIT_OK;
}
