/*
 * chat.c - chat templates of the instruction models we run.
 *
 * There is no Jinja engine: a model's template (tokenizer_config.json
 * "chat_template", GGUF tokenizer.chat_template) is recognised by its markers
 * and rendered by the code of its family below, exactly as the template (or,
 * for Mistral, mistral-common) renders it. An unknown template is refused.
 *
 * The rendered text is what ellm_tokenize(add_bos = 0, parse_special = 1)
 * must see to produce the ids the model was trained on. For SentencePiece
 * tokenizers that put the dummy-prefix "▁" at the start of every fragment
 * between special tokens (SentencePiece itself, llama.cpp, HF "legacy"), the
 * space that the model expects after a control token is that "▁", so it is
 * not written; tokenizers that prefix only the start of the input get a real
 * space there instead (see fragment_space()).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char *const format_names[] = {"none",       "chatml",     "phi3",   "phi3-mini", "mistral-v1",
                                           "mistral-v3", "llama2",     "llama3", "zephyr"};

const char *ellm_chat_format_name(ellm_chat_format f) {
    return (unsigned)f < ELLM_ARRAY_LEN(format_names) ? format_names[f] : "?";
}

ellm_chat_format ellm_tokenizer_chat_format(const ellm_tokenizer *t) { return t->chat; }

static int is_control(const ellm_tokenizer *t, const char *piece) {
    int32_t id = tok_find_cstr(t, piece);
    return id >= 0 && (t->types[id] == ELLM_TOKT_CONTROL || t->types[id] == ELLM_TOKT_USER_DEFINED);
}

/* ChatML templates that add a default system turn ("You are a helpful AI
 * assistant named SmolLM...") when the chat has none: the literal after
 * '<|im_start|>system\n' in the template. */
static char *chatml_default_system(const char *tmpl) {
    if (!strstr(tmpl, "messages[0]['role'] != 'system'") && !strstr(tmpl, "messages[0][\"role\"] != \"system\""))
        return NULL;
    const char *p = strstr(tmpl, "<|im_start|>system\\n");
    size_t skip = strlen("<|im_start|>system\\n");
    if (!p) return NULL;
    p += skip;
    const char *e = strstr(p, "<|im_end|>");
    if (!e) return NULL;
    char *s = malloc((size_t)(e - p) + 1);
    if (!s) return NULL;
    size_t m = 0;
    for (const char *q = p; q < e; q++) {
        if (q[0] == '\\' && q + 1 < e && q[1] == 'n') {
            s[m++] = '\n';
            q++;
        } else {
            s[m++] = *q;
        }
    }
    s[m] = 0;
    return s;
}

ellm_chat_format tok_chat_detect(const ellm_tokenizer *t, const char *tmpl, char **default_system) {
    *default_system = NULL;
    if (tmpl) {
        if (strstr(tmpl, "<|im_start|>")) {
            *default_system = chatml_default_system(tmpl);
            return ELLM_CHAT_CHATML;
        }
        if (strstr(tmpl, "<|start_header_id|>") && strstr(tmpl, "<|eot_id|>")) return ELLM_CHAT_LLAMA3;
        if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|end|>"))
            return strstr(tmpl, "<|system|>") || strstr(tmpl, "add_generation_prompt") ? ELLM_CHAT_PHI3
                                                                                    : ELLM_CHAT_PHI3_MINI;
        if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|assistant|>") && strstr(tmpl, "eos_token"))
            return ELLM_CHAT_ZEPHYR;
        if (strstr(tmpl, "[INST]")) {
            if (strstr(tmpl, "<<SYS>>")) return ELLM_CHAT_LLAMA2;
            return is_control(t, "[INST]") ? ELLM_CHAT_MISTRAL_V3 : ELLM_CHAT_MISTRAL_V1;
        }
        return ELLM_CHAT_NONE;
    }
    if (is_control(t, "<|im_start|>") && is_control(t, "<|im_end|>")) return ELLM_CHAT_CHATML;
    if (is_control(t, "<|start_header_id|>") && is_control(t, "<|eot_id|>")) return ELLM_CHAT_LLAMA3;
    if (is_control(t, "<|user|>") && is_control(t, "<|end|>")) return ELLM_CHAT_PHI3;
    if (is_control(t, "[INST]") && is_control(t, "[/INST]")) return ELLM_CHAT_MISTRAL_V3;
    return ELLM_CHAT_NONE;
}

ellm_status ellm_tokenizer_set_chat_template(ellm_tokenizer *t, const char *name_or_template, ellm_error *err) {
    for (size_t i = 1; i < ELLM_ARRAY_LEN(format_names); i++) {
        if (strcmp(name_or_template, format_names[i]) != 0) continue;
        t->chat = (ellm_chat_format)i;
        free(t->chat_default_system);
        t->chat_default_system = NULL;
        return ELLM_OK;
    }
    char *def = NULL;
    ellm_chat_format f = tok_chat_detect(t, name_or_template, &def);
    if (f == ELLM_CHAT_NONE)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: chat template not recognised: give one of chatml, phi3, phi3-mini, mistral-v1, "
                         "mistral-v3, llama2, llama3, zephyr, or a template of those families",
                         t->what);
    free(t->chat_default_system);
    t->chat_default_system = def;
    t->chat = f;
    char *copy = ellm_strdup(name_or_template);
    if (!copy) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", t->what);
    free(t->chat_template);
    t->chat_template = copy;
    return ELLM_OK;
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_piece(sbuf *b, const ellm_tokenizer *t, int32_t id) {
    const char *p;
    size_t l = ellm_tokenizer_raw_piece(t, id, &p);
    put(b, p, l);
}

/* Python's str.strip() on ASCII whitespace (the Llama-2 template strips). */
static void put_stripped(sbuf *b, const char *s) {
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\v\f", s[0])) s++, n--;
    while (n && strchr(" \t\n\r\v\f", s[n - 1])) n--;
    put(b, s, n);
}

/* The separator that makes the tokenizer start the fragment after a control
 * token with "▁": nothing where it adds the dummy prefix itself. */
static const char *fragment_space(const ellm_tokenizer *t) {
    return t->kind == ELLM_TOK_SPM && t->add_dummy_prefix && t->prefix_mode == TOK_PREFIX_EACH ? "" : " ";
}

static int role_is(const ellm_chat_message *m, const char *r) { return m->role && !strcmp(m->role, r); }

static ellm_status need_token(const ellm_tokenizer *t, const char *piece, int32_t *id, ellm_error *err) {
    *id = tok_find_cstr(t, piece);
    if (*id < 0)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: chat format %s needs the token %s, absent from the vocabulary",
                         t->what, ellm_chat_format_name(t->chat), piece);
    return ELLM_OK;
}

static ellm_status render_mistral(const ellm_tokenizer *t, const ellm_chat_message *msgs, size_t n, sbuf *b,
                                  ellm_error *err) {
    int v3 = t->chat == ELLM_CHAT_MISTRAL_V3;
    if (t->bos < 0 || t->eos < 0) return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Mistral chat needs BOS and EOS", t->what);
    const char *sp = fragment_space(t);
    /* mistral-common puts the system prompt before the first user message with
     * tokenizer v1, before the last one with v2/v3 (Mistral's cookbook,
     * concept-deep-dive/tokenization) */
    const char *system = NULL;
    size_t sys_user = n;
    for (size_t i = 0; i < n; i++) {
        if (role_is(&msgs[i], "system")) system = msgs[i].content;
        if (role_is(&msgs[i], "user") && (v3 || sys_user == n)) sys_user = i;
    }
    put_piece(b, t, t->bos);
    for (size_t i = 0; i < n; i++) {
        const ellm_chat_message *m = &msgs[i];
        if (role_is(m, "user")) {
            if (v3) {
                puts_(b, "[INST]");
                puts_(b, sp);
            } else {
                puts_(b, sp);
                puts_(b, "[INST] ");
            }
            if (i == sys_user && system && *system) {
                puts_(b, system);
                puts_(b, "\n\n");
            }
            puts_(b, m->content);
            puts_(b, v3 ? "[/INST]" : " [/INST]");
        } else if (role_is(m, "assistant")) {
            puts_(b, v3 ? sp : " ");
            puts_(b, m->content);
            put_piece(b, t, t->eos);
        } else if (!role_is(m, "system")) {
            return ellm_fail(err, ELLM_E_ARG, "chat message %zu: unknown role '%s'", i, m->role ? m->role : "(null)");
        }
    }
    return ELLM_OK;
}

static ellm_status render_llama2(const ellm_tokenizer *t, const ellm_chat_message *msgs, size_t n, sbuf *b,
                                 ellm_error *err) {
    if (t->bos < 0 || t->eos < 0) return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Llama-2 chat needs BOS and EOS", t->what);
    size_t start = 0;
    const char *system = NULL;
    if (n > 0 && role_is(&msgs[0], "system")) {
        system = msgs[0].content;
        start = 1;
    }
    for (size_t i = start; i < n; i++) {
        const ellm_chat_message *m = &msgs[i];
        if (role_is(m, "user")) {
            put_piece(b, t, t->bos);
            puts_(b, "[INST] ");
            /* the template strips the whole content, system block included */
            sbuf c = {0};
            if (i == start && system) {
                puts_(&c, "<<SYS>>\n");
                puts_(&c, system);
                puts_(&c, "\n<</SYS>>\n\n");
            }
            puts_(&c, m->content);
            if (c.oom) {
                free(c.p);
                return ellm_fail(err, ELLM_E_NOMEM, "out of memory rendering a chat");
            }
            put_stripped(b, c.p ? c.p : "");
            free(c.p);
            puts_(b, " [/INST]");
        } else if (role_is(m, "assistant")) {
            puts_(b, " ");
            put_stripped(b, m->content);
            puts_(b, " ");
            put_piece(b, t, t->eos);
        } else {
            return ellm_fail(err, ELLM_E_ARG, "chat message %zu: role '%s' not allowed here (Llama-2 takes one system "
                             "message first, then user/assistant)", i, m->role ? m->role : "(null)");
        }
    }
    return ELLM_OK;
}

ellm_status ellm_tokenizer_chat_render(const ellm_tokenizer *t, const ellm_chat_message *msgs, size_t n,
                                       int add_generation_prompt, char **out, ellm_error *err) {
    *out = NULL;
    sbuf b = {0};
    ellm_status st = ELLM_OK;
    int32_t id;
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return ellm_fail(err, ELLM_E_ARG, "chat message %zu has no role or no content", i);
    switch (t->chat) {
    case ELLM_CHAT_NONE:
        if (t->chat_template)
            return ellm_fail(err, ELLM_E_UNSUPPORTED,
                             "%s: the model's chat template is not one we recognise (ChatML, Phi-3, Mistral, "
                             "Llama-2, Llama-3, Zephyr); choose a format explicitly (chatml, phi3, phi3-mini, "
                             "mistral-v1, mistral-v3, llama2, llama3, zephyr)",
                             t->what);
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: no chat template (a base model?); choose a format explicitly (chatml, phi3, phi3-mini, "
                         "mistral-v1, mistral-v3, llama2, llama3, zephyr)",
                         t->what);
    case ELLM_CHAT_CHATML:
        if ((st = need_token(t, "<|im_start|>", &id, err))) return st;
        if (t->chat_default_system && (n == 0 || !role_is(&msgs[0], "system"))) {
            puts_(&b, "<|im_start|>system\n");
            puts_(&b, t->chat_default_system);
            puts_(&b, "<|im_end|>\n");
        }
        for (size_t i = 0; i < n; i++) {
            puts_(&b, "<|im_start|>");
            puts_(&b, msgs[i].role);
            puts_(&b, "\n");
            puts_(&b, msgs[i].content);
            puts_(&b, "<|im_end|>\n");
        }
        if (add_generation_prompt) puts_(&b, "<|im_start|>assistant\n");
        break;
    case ELLM_CHAT_PHI3:
        if ((st = need_token(t, "<|user|>", &id, err))) return st;
        for (size_t i = 0; i < n; i++) {
            const ellm_chat_message *m = &msgs[i];
            if (role_is(m, "system") && m->content[0]) puts_(&b, "<|system|>\n");
            else if (role_is(m, "user")) puts_(&b, "<|user|>\n");
            else if (role_is(m, "assistant")) puts_(&b, "<|assistant|>\n");
            else continue;
            puts_(&b, m->content);
            puts_(&b, "<|end|>\n");
        }
        if (add_generation_prompt) puts_(&b, "<|assistant|>\n");
        else if (t->eos >= 0) put_piece(&b, t, t->eos);
        break;
    case ELLM_CHAT_PHI3_MINI:
        if ((st = need_token(t, "<|user|>", &id, err))) return st;
        if (t->bos >= 0) put_piece(&b, t, t->bos);
        for (size_t i = 0; i < n; i++) {
            const ellm_chat_message *m = &msgs[i];
            if (role_is(m, "user")) {
                puts_(&b, "<|user|>\n");
                puts_(&b, m->content);
                puts_(&b, "<|end|>\n<|assistant|>\n");
            } else if (role_is(m, "assistant")) {
                puts_(&b, m->content);
                puts_(&b, "<|end|>\n");
            }
        }
        break;
    case ELLM_CHAT_MISTRAL_V1:
    case ELLM_CHAT_MISTRAL_V3:
        if (t->chat == ELLM_CHAT_MISTRAL_V3 && (st = need_token(t, "[INST]", &id, err))) return st;
        st = render_mistral(t, msgs, n, &b, err);
        break;
    case ELLM_CHAT_LLAMA2:
        st = render_llama2(t, msgs, n, &b, err);
        break;
    case ELLM_CHAT_LLAMA3:
        if ((st = need_token(t, "<|start_header_id|>", &id, err))) return st;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 && t->bos >= 0) put_piece(&b, t, t->bos);
            puts_(&b, "<|start_header_id|>");
            puts_(&b, msgs[i].role);
            puts_(&b, "<|end_header_id|>\n\n");
            put_stripped(&b, msgs[i].content); /* Jinja's trim */
            puts_(&b, "<|eot_id|>");
        }
        if (add_generation_prompt) puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case ELLM_CHAT_ZEPHYR:
        if (t->eos < 0) return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Zephyr chat needs an EOS token", t->what);
        for (size_t i = 0; i < n; i++) {
            const ellm_chat_message *m = &msgs[i];
            if (!role_is(m, "user") && !role_is(m, "system") && !role_is(m, "assistant")) continue;
            puts_(&b, "<|");
            puts_(&b, m->role);
            puts_(&b, "|>\n");
            puts_(&b, m->content);
            put_piece(&b, t, t->eos);
            puts_(&b, "\n");
        }
        if (add_generation_prompt) puts_(&b, "<|assistant|>\n");
        break;
    }
    if (!st && b.oom) st = ellm_fail(err, ELLM_E_NOMEM, "out of memory rendering a chat");
    if (st) {
        free(b.p);
        return st;
    }
    if (!b.p) b.p = calloc(1, 1);
    if (!b.p) return ellm_fail(err, ELLM_E_NOMEM, "out of memory rendering a chat");
    *out = b.p;
    return ELLM_OK;
}
