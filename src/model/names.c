/*
 * names.c - the one table of tensor names: every naming family a reader can
 * produce, mapped to the roles of the forward pass (see model.h).
 */
#include <stdio.h>
#include <string.h>

#include "model/model.h"

/* "%d" stands for the layer index. NULL: the naming has no such tensor. */
static const char *const k_names[ELLM_ROLE_COUNT][ELLM_NAMING_COUNT] = {
    [ELLM_ROLE_TOK_EMBD] = {"model.embed_tokens.weight", "tok_embeddings.weight", "token_embd.weight"},
    [ELLM_ROLE_OUTPUT_NORM] = {"model.norm.weight", "norm.weight", "output_norm.weight"},
    [ELLM_ROLE_OUTPUT] = {"lm_head.weight", "output.weight", "output.weight"},
    [ELLM_ROLE_ATTN_NORM] = {"model.layers.%d.input_layernorm.weight", "layers.%d.attention_norm.weight",
                             "blk.%d.attn_norm.weight"},
    [ELLM_ROLE_FFN_NORM] = {"model.layers.%d.post_attention_layernorm.weight", "layers.%d.ffn_norm.weight",
                            "blk.%d.ffn_norm.weight"},
    [ELLM_ROLE_WQ] = {"model.layers.%d.self_attn.q_proj.weight", "layers.%d.attention.wq.weight",
                      "blk.%d.attn_q.weight"},
    [ELLM_ROLE_WK] = {"model.layers.%d.self_attn.k_proj.weight", "layers.%d.attention.wk.weight",
                      "blk.%d.attn_k.weight"},
    [ELLM_ROLE_WV] = {"model.layers.%d.self_attn.v_proj.weight", "layers.%d.attention.wv.weight",
                      "blk.%d.attn_v.weight"},
    [ELLM_ROLE_WQKV] = {"model.layers.%d.self_attn.qkv_proj.weight", NULL, "blk.%d.attn_qkv.weight"},
    [ELLM_ROLE_WO] = {"model.layers.%d.self_attn.o_proj.weight", "layers.%d.attention.wo.weight",
                      "blk.%d.attn_output.weight"},
    [ELLM_ROLE_BQ] = {"model.layers.%d.self_attn.q_proj.bias", NULL, "blk.%d.attn_q.bias"},
    [ELLM_ROLE_BK] = {"model.layers.%d.self_attn.k_proj.bias", NULL, "blk.%d.attn_k.bias"},
    [ELLM_ROLE_BV] = {"model.layers.%d.self_attn.v_proj.bias", NULL, "blk.%d.attn_v.bias"},
    [ELLM_ROLE_W_GATE] = {"model.layers.%d.mlp.gate_proj.weight", "layers.%d.feed_forward.w1.weight",
                          "blk.%d.ffn_gate.weight"},
    [ELLM_ROLE_W_UP] = {"model.layers.%d.mlp.up_proj.weight", "layers.%d.feed_forward.w3.weight",
                        "blk.%d.ffn_up.weight"},
    /* GGUF stores Phi-3's fused gate+up as ffn_up with 2*hidden rows: the
     * binder recognises that by shape. */
    [ELLM_ROLE_W_GATE_UP] = {"model.layers.%d.mlp.gate_up_proj.weight", NULL, NULL},
    [ELLM_ROLE_W_DOWN] = {"model.layers.%d.mlp.down_proj.weight", "layers.%d.feed_forward.w2.weight",
                          "blk.%d.ffn_down.weight"},
};

int ellm_role_is_layer(ellm_role role) { return role >= ELLM_ROLE_ATTN_NORM && role < ELLM_ROLE_COUNT; }

/* Matches name against a pattern holding at most one "%d". */
static int match_pattern(const char *pat, const char *name, int *layer) {
    const char *d = strstr(pat, "%d");
    if (!d) {
        *layer = -1;
        return strcmp(pat, name) == 0;
    }
    size_t pre = (size_t)(d - pat);
    if (strncmp(pat, name, pre) != 0) return 0;
    const char *p = name + pre;
    if (*p < '0' || *p > '9') return 0;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return 0;
        p++;
    }
    if (strcmp(p, d + 2) != 0) return 0;
    *layer = (int)v;
    return 1;
}

int ellm_role_parse(const char *name, ellm_role *role, int *layer, ellm_naming *naming) {
    for (int r = 0; r < ELLM_ROLE_COUNT; r++)
        for (int n = 0; n < ELLM_NAMING_COUNT; n++) {
            const char *pat = k_names[r][n];
            int l;
            if (pat && match_pattern(pat, name, &l)) {
                *role = (ellm_role)r;
                *layer = l;
                if (naming) *naming = (ellm_naming)n;
                return 0;
            }
        }
    return -1;
}

int ellm_role_name(ellm_naming naming, ellm_role role, int layer, char *buf, size_t size) {
    if ((int)role < 0 || role >= ELLM_ROLE_COUNT || (int)naming < 0 || naming >= ELLM_NAMING_COUNT) return -1;
    const char *pat = k_names[role][naming];
    if (!pat) return -1;
    int n = ellm_role_is_layer(role) ? snprintf(buf, size, pat, layer) : snprintf(buf, size, "%s", pat);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}
