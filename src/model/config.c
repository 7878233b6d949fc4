/*
 * config.c - reads the hyperparameters of a Llama-family model from its
 * HF-style config.json (the readers write one for llama2.c and GGUF sources;
 * .ellm files carry it in their metadata). Architectures and rope scalings we
 * do not run are refused by name, never guessed.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model.h"

static const struct {
    const char *model_type;
    const char *hf_class;
} k_archs[] = {
    {"llama", "LlamaForCausalLM"},
    {"mistral", "MistralForCausalLM"},
    {"phi3", "Phi3ForCausalLM"},
    {"qwen2", "Qwen2ForCausalLM"},
};

/* Integer member; absent or null -> def. Non-integers are an error. */
static ellm_status get_int(json_t *o, const char *key, long def, long lo, long hi, const char *what,
                           long *out, ellm_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return ELLM_OK;
    }
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
        *out = (long)json_real_value(v);
    } else if (!json_is_integer(v)) {
        return ellm_fail(err, ELLM_E_FORMAT, "%s: \"%s\" is not an integer", what, key);
    } else {
        *out = (long)json_integer_value(v);
    }
    if (*out < lo || *out > hi)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: \"%s\" = %ld is out of range [%ld, %ld]", what, key, *out,
                         lo, hi);
    return ELLM_OK;
}

static ellm_status get_num(json_t *o, const char *key, double def, const char *what, double *out,
                           ellm_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return ELLM_OK;
    }
    if (!json_is_number(v)) return ellm_fail(err, ELLM_E_FORMAT, "%s: \"%s\" is not a number", what, key);
    *out = json_number_value(v);
    if (!isfinite(*out)) return ellm_fail(err, ELLM_E_FORMAT, "%s: \"%s\" is not finite", what, key);
    return ELLM_OK;
}

/* A token id given as a number or a list (first element used). */
static int get_token_id(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

static ellm_status get_factors(json_t *rs, const char *key, int n, const char *what, float **out,
                               ellm_error *err) {
    json_t *a = json_object_get(rs, key);
    if (!json_is_array(a))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling.%s is missing or not a list", what, key);
    if ((int)json_array_size(a) != n)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling.%s has %zu entries, head_dim/2 = %d", what,
                         key, json_array_size(a), n);
    float *f = ellm_malloc((size_t)n * sizeof *f, err);
    if (!f) return ELLM_E_NOMEM;
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_number(v) || !(json_number_value(v) > 0)) {
            free(f);
            return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling.%s[%d] is not a positive number", what, key, i);
        }
        f[i] = (float)json_number_value(v);
    }
    *out = f;
    return ELLM_OK;
}

static ellm_status parse_rope_scaling(json_t *root, ellm_llm_config *c, const char *what, ellm_error *err) {
    json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_scaling = ELLM_ROPE_SCALING_NONE;
    c->rope_factor = 1.0f;
    c->rope_attn_factor = 1.0f;
    if (!rs || json_is_null(rs)) return ELLM_OK;
    if (!json_is_object(rs)) return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling is not an object", what);
    json_t *t = json_object_get(rs, "rope_type");
    if (!json_is_string(t)) t = json_object_get(rs, "type");
    if (!json_is_string(t)) return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling has no type", what);
    const char *type = json_string_value(t);
    ellm_status st;
    double v = 0;
    long orig = 0;
    if (strcmp(type, "default") == 0) return ELLM_OK;
    if (strcmp(type, "linear") == 0 || strcmp(type, "llama3") == 0) {
        if ((st = get_num(rs, "factor", 0, what, &v, err))) return st;
        if (!(v > 0)) return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling.factor must be > 0", what);
        c->rope_factor = (float)v;
        if (type[1] == 'i') {
            c->rope_scaling = ELLM_ROPE_SCALING_LINEAR;
            return ELLM_OK;
        }
        c->rope_scaling = ELLM_ROPE_SCALING_LLAMA3;
        double lo = 0, hi = 0;
        if ((st = get_num(rs, "low_freq_factor", 1.0, what, &lo, err)) ||
            (st = get_num(rs, "high_freq_factor", 4.0, what, &hi, err)) ||
            (st = get_int(rs, "original_max_position_embeddings", 8192, 1, 1L << 30, what, &orig, err)))
            return st;
        if (!(hi > lo))
            return ellm_fail(err, ELLM_E_FORMAT, "%s: rope_scaling needs high_freq_factor > low_freq_factor", what);
        c->llama3_low_freq_factor = (float)lo;
        c->llama3_high_freq_factor = (float)hi;
        c->original_max_ctx = (int)orig;
        return ELLM_OK;
    }
    if (strcmp(type, "longrope") == 0 || strcmp(type, "su") == 0) {
        c->rope_scaling = ELLM_ROPE_SCALING_LONGROPE;
        c->n_rope_factors = c->head_dim / 2;
        if ((st = get_factors(rs, "short_factor", c->n_rope_factors, what, &c->rope_short_factor, err)) ||
            (st = get_factors(rs, "long_factor", c->n_rope_factors, what, &c->rope_long_factor, err)))
            return st;
        long top = 0;
        if ((st = get_int(root, "original_max_position_embeddings", c->max_ctx, 1, 1L << 30, what, &top, err)) ||
            (st = get_int(rs, "original_max_position_embeddings", top, 1, 1L << 30, what, &orig, err)))
            return st;
        c->original_max_ctx = (int)orig;
        /* Phi-3: cos and sin are multiplied by sqrt(1 + ln(s)/ln(orig)),
         * s = max_position_embeddings / original (1 when s <= 1). */
        double attn = 1;
        double s = (double)c->max_ctx / (double)orig;
        double def = s <= 1.0 ? 1.0 : sqrt(1.0 + log(s) / log((double)orig));
        if ((st = get_num(rs, "attention_factor", def, what, &attn, err))) return st;
        c->rope_attn_factor = (float)attn;
        return ELLM_OK;
    }
    return ellm_fail(err, ELLM_E_UNSUPPORTED,
                     "%s: rope_scaling type \"%s\" is not supported (supported: linear, llama3, longrope)", what,
                     type);
}

ellm_status ellm_llm_config_parse(const char *json_text, const char *what, ellm_llm_config *c,
                                  ellm_error *err) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loads(json_text ? json_text : "", 0, &jerr);
    if (!root)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: config JSON: %s at line %d", what, jerr.text, jerr.line);
    ellm_status st = ELLM_OK;
    if (!json_is_object(root)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: config is not a JSON object", what);
        goto done;
    }

    /* Architecture: model_type, else the class in "architectures". */
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    const char *cls = json_string_value(json_array_get(json_object_get(root, "architectures"), 0));
    int arch = -1;
    for (size_t i = 0; i < ELLM_ARRAY_LEN(k_archs); i++)
        if ((mt && strcmp(mt, k_archs[i].model_type) == 0) || (!mt && cls && strcmp(cls, k_archs[i].hf_class) == 0))
            arch = (int)i;
    if (arch < 0) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED,
                       "%s: architecture \"%s\" is not supported (supported: llama, mistral, phi3, qwen2)", what,
                       mt ? mt : cls ? cls : "(none given)");
        goto done;
    }
    snprintf(c->arch, sizeof c->arch, "%s", k_archs[arch].model_type);

    const char *act = json_string_value(json_object_get(root, "hidden_act"));
    if (act && strcmp(act, "silu") != 0) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu)", what, act);
        goto done;
    }
    double prf = 1;
    if ((st = get_num(root, "partial_rotary_factor", 1.0, what, &prf, err))) goto done;
    if (prf != 1.0) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported", what, prf);
        goto done;
    }

    long v = 0, heads = 0, kv = 0, hd = 0;
    const long big = 1L << 20;
    if ((st = get_int(root, "hidden_size", -1, 1, big, what, &v, err))) goto done;
    c->dim = (int)v;
    if ((st = get_int(root, "intermediate_size", -1, 1, big, what, &v, err))) goto done;
    c->hidden_dim = (int)v;
    if ((st = get_int(root, "num_hidden_layers", -1, 1, 4096, what, &v, err))) goto done;
    c->n_layers = (int)v;
    if ((st = get_int(root, "num_attention_heads", -1, 1, 4096, what, &heads, err))) goto done;
    if ((st = get_int(root, "num_key_value_heads", heads, 1, 4096, what, &kv, err))) goto done;
    if ((st = get_int(root, "vocab_size", -1, 1, 1L << 24, what, &v, err))) goto done;
    c->vocab_size = (int)v;
    if ((st = get_int(root, "max_position_embeddings", 2048, 1, 1L << 24, what, &v, err))) goto done;
    c->max_ctx = (int)v;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || heads <= 0 || c->vocab_size <= 0) {
        st = ellm_fail(err, ELLM_E_FORMAT,
                       "%s: config needs hidden_size, intermediate_size, num_hidden_layers, "
                       "num_attention_heads and vocab_size",
                       what);
        goto done;
    }
    if (heads % kv != 0) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: num_attention_heads %ld is not a multiple of num_key_value_heads %ld",
                       what, heads, kv);
        goto done;
    }
    if ((st = get_int(root, "head_dim", c->dim / heads, 2, 4096, what, &hd, err))) goto done;
    if (hd % 2 != 0 || (!json_object_get(root, "head_dim") && c->dim % heads != 0)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: head dimension %ld (hidden_size %d / %ld heads) must be even", what,
                       hd, c->dim, heads);
        goto done;
    }
    c->n_heads = (int)heads;
    c->n_kv_heads = (int)kv;
    c->head_dim = (int)hd;

    double d = 0;
    if ((st = get_num(root, "rms_norm_eps", 1e-6, what, &d, err))) goto done;
    c->norm_eps = (float)d;
    if ((st = get_num(root, "rope_theta", 10000.0, what, &d, err))) goto done;
    if (!(d > 0)) {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: rope_theta must be > 0", what);
        goto done;
    }
    c->rope_theta = (float)d;

    const char *layout = json_string_value(json_object_get(root, "entrollm_rope_layout"));
    if (!layout || strcmp(layout, "half") == 0) {
        c->rope_layout = ELLM_ROPE_HALF;
    } else if (strcmp(layout, "interleaved") == 0) {
        c->rope_layout = ELLM_ROPE_INTERLEAVED;
    } else {
        st = ellm_fail(err, ELLM_E_FORMAT, "%s: entrollm_rope_layout \"%s\" is neither \"half\" nor \"interleaved\"",
                       what, layout);
        goto done;
    }
    if ((st = parse_rope_scaling(root, c, what, err))) goto done;

    /* Sliding window: Mistral and Phi-3 when set; Qwen2 only with use_sliding_window. */
    long sw = 0;
    if (strcmp(c->arch, "qwen2") != 0 || json_is_true(json_object_get(root, "use_sliding_window")))
        if ((st = get_int(root, "sliding_window", 0, 0, 1L << 30, what, &sw, err))) goto done;
    c->sliding_window = (int)sw;

    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_embeddings = json_is_boolean(tie) ? json_is_true(tie) : -1;
    c->bos_id = get_token_id(root, "bos_token_id");
    c->eos_id = get_token_id(root, "eos_token_id");
done:
    json_decref(root);
    if (st) ellm_llm_config_free(c);
    return st;
}

void ellm_llm_config_free(ellm_llm_config *c) {
    free(c->rope_short_factor);
    free(c->rope_long_factor);
    c->rope_short_factor = c->rope_long_factor = NULL;
}
