/*
 * cmd_run.c - `entrollm run` (generate text from a prompt) and `entrollm chat`
 * (an interactive chat with the model's own chat template). Both load a .ellm
 * file (decoded in parallel) or a source model (float weights), so the two
 * can be compared.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* Options shared by run and chat. */
typedef struct gen_opts {
    const char *model;
    const char *tokenizer;
    long n_tokens, threads, ctx;
    double temp, top_p;
    uint64_t seed;
    bool seed_given, json;
} gen_opts;

/* The option-table entries shared by run and chat; default_tokens is the
 * default of -n as a string literal. */
#define GEN_OPT_ENTRIES(o, default_tokens)                                                                       \
    {CLI_INT("--tokens", "-n", &(o)->n_tokens, 0, 1L << 24, "N",                                                 \
             "tokens to generate at most (default " default_tokens "); generation also stops at the\n"          \
             "model's end-of-text / end-of-turn tokens and at the end of the context")},                         \
    {CLI_FLOAT("--temp", NULL, &(o)->temp, 0.0, 100.0, "T", "sampling temperature, 0 = greedy (default 0.8)")}, \
    {CLI_FLOAT("--top-p", NULL, &(o)->top_p, 1e-6, 1.0, "P",                                                    \
               "nucleus sampling threshold in (0, 1], 1 = off (default 0.9)")},                                  \
    {CLI_U64("--seed", NULL, &(o)->seed, 0, UINT64_MAX, "S",                                                     \
             "random seed (default: the time); the same seed gives the same text"),                              \
     .given = &(o)->seed_given},                                                                                 \
    {CLI_INT("--threads", "-t", &(o)->threads, 1, 1024, "N",                                                     \
             "threads for decoding and inference (default: all cores)")},                                        \
    {CLI_INT("--ctx", NULL, &(o)->ctx, 1, 1L << 24, "N", "cap the context length (default: the model's own)")},  \
    {CLI_STRING("--tokenizer", NULL, &(o)->tokenizer, "FILE",                                                    \
                "tokenizer to use (llama2.c checkpoints without one beside them, or to\n"                        \
                "replace the one in a .ellm file)")},                                                            \
    {CLI_FLAG("--json", NULL, &(o)->json, "print one JSON object on stdout instead of streaming text")}

static void gen_opts_default(gen_opts *o, long n_tokens) {
    memset(o, 0, sizeof *o);
    o->n_tokens = n_tokens;
    o->temp = 0.8;
    o->top_p = 0.9;
    o->seed = (uint64_t)time(NULL);
}

static ellm_status load_model(const gen_opts *o, ellm_model **m, ellm_error *err) {
    ellm_load_options lo;
    ellm_load_options_default(&lo);
    lo.n_threads = (int)o->threads;
    lo.max_ctx = (int)o->ctx;
    lo.tokenizer_path = o->tokenizer;
    ellm_progress prog;
    ellm_progress_init(&prog, "loading");
    lo.progress = ellm_progress_callback;
    lo.progress_user = &prog;
    ellm_status st = ellm_model_load(o->model, &lo, m, err);
    ellm_progress_finish(&prog);
    if (!st && !ellm_model_tokenizer(*m)) {
        st = ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: the model carries no tokenizer (give one with --tokenizer)",
                       o->model);
        ellm_model_free(*m);
        *m = NULL;
    }
    return st;
}

static void print_generated_note(const ellm_model_info *info) {
    if (info->generated_weights)
        fprintf(stderr, "note: this model's weights are generated (not trained); its text is meaningless.\n");
}

/* ---- run ------------------------------------------------------------------- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool stream;
} text_buf;

static void text_append(text_buf *b, const char *s, size_t n) {
    if (b->stream) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) return;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static int on_token(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    text_append(user, piece, len);
    return 0;
}

static const char *stop_name(ellm_gen_stop s) {
    switch (s) {
    case ELLM_GEN_STOP_TOKEN: return "stop token";
    case ELLM_GEN_STOP_CONTEXT: return "context full";
    case ELLM_GEN_STOP_CALLER: return "stopped";
    default: return "length";
    }
}

static void run_usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm run MODEL -p PROMPT [options]\n\n"
            "Generates text from PROMPT. MODEL is a .ellm file (its integers are entropy-decoded in\n"
            "parallel at load) or a source model: a Hugging Face folder, a GGUF file or a llama2.c\n"
            "checkpoint (float weights). The prompt is echoed, the generated text streamed on stdout,\n"
            "then a line of timings on stderr: load (and parallel decode) time, prefill and generation\n"
            "speed.\n\nOptions:\n");
    cli_print_options(out, opts);
}

int cmd_run(int argc, char **argv) {
    gen_opts o;
    gen_opts_default(&o, 256);
    const char *prompt = NULL;
    const cli_opt opts[] = {
        {CLI_STRING("--prompt", "-p", &prompt, "TEXT", "the prompt (required)")},
        GEN_OPT_ENTRIES(&o, "256"),
        {0},
    };
    int n_pos, rc = cli_parse("run", argc, argv, opts, &o.model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (run_usage(stdout, opts), EXIT_OK) : rc;
    if (!o.model) return cli_usage_error("run", "missing MODEL");
    if (!prompt) return cli_usage_error("run", "missing -p PROMPT");

    ellm_error err = {0};
    ellm_model *m;
    if (load_model(&o, &m, &err)) return cli_report_error(&err);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    if (!o.json) print_generated_note(&info);
    const ellm_tokenizer *tok = ellm_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    rc = EXIT_OK;
    if (ellm_tokenize(tok, prompt, strlen(prompt), ellm_tokenizer_add_bos_default(tok), 0, &ids, &n_ids, &err)) {
        rc = cli_report_error(&err);
        goto done;
    }
    if (n_ids == 0) {
        rc = cli_usage_error("run", "the prompt gives no tokens");
        goto done;
    }
    text_buf out = {.stream = !o.json};
    /* Echo the prompt as the model sees it (as llama2.c's run.c does). */
    for (size_t i = 0; i < n_ids; i++) {
        const char *piece;
        size_t len = ellm_tokenizer_stream_piece(tok, i ? ids[i - 1] : -1, ids[i], &piece);
        text_append(&out, piece, len);
    }
    size_t prompt_text_len = out.len;
    ellm_gen_params gp = {.max_new_tokens = (int)o.n_tokens,
                          .sampler = {(float)o.temp, (float)o.top_p, o.seed},
                          .on_token = on_token,
                          .user = &out};
    ellm_gen_result res;
    ellm_status st = ellm_generate(m, ids, (int)n_ids, 0, &gp, &res, &err);
    if (st) {
        if (!o.json) putchar('\n');
        rc = cli_report_error(&err);
        free(out.data);
        goto done;
    }
    double prefill_tps = res.prefill_seconds > 0 ? res.n_prefilled / res.prefill_seconds : 0;
    double gen_tps = res.gen_seconds > 0 && res.n_gen_forwards ? res.n_gen_forwards / res.gen_seconds : 0;
    if (o.json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:b, s:s, s:i, s:i, s:s, s:f, s:f, s:I, s:f, s:f, s:f, s:f, s:s, "
                              "s:i, s:I, s:f, s:f}",
                              "model", o.model, "arch", info.arch, "prompt", prompt, "weight_bits", info.weight_bits,
                              "weights_generated", info.generated_weights, "text",
                              out.data ? out.data + prompt_text_len : "", "prompt_tokens", (int)n_ids,
                              "generated_tokens", res.n_generated, "stop", stop_name(res.stop), "load_seconds",
                              info.load_seconds, "decode_seconds", info.decode_seconds, "weight_bytes",
                              (json_int_t)info.weight_bytes, "prefill_seconds", res.prefill_seconds,
                              "prefill_tokens_per_second", prefill_tps, "generation_seconds", res.gen_seconds,
                              "generation_tokens_per_second", gen_tps, "cpu_features", ellm_cpu_features(), "threads",
                              (int)o.threads, "seed", (json_int_t)o.seed, "temperature", o.temp, "top_p", o.top_p);
        char *s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(j);
    } else {
        putchar('\n');
        fflush(stdout);
        fprintf(stderr,
                "load %.3f s (parallel decode %.3f s) | prefill %d tokens %.3f s, %.1f tokens/s | generation %d "
                "tokens %.3f s, %.1f tokens/s | %s weights, %s, seed %llu\n",
                info.load_seconds, info.decode_seconds, res.n_prefilled, res.prefill_seconds, prefill_tps,
                res.n_generated, res.gen_seconds, gen_tps, cli_weights_text(&info), ellm_cpu_features(),
                (unsigned long long)o.seed);
    }
    free(out.data);
done:
    free(ids);
    ellm_model_free(m);
    return rc;
}

/* ---- chat ------------------------------------------------------------------ */

static void chat_usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm chat MODEL [--system TEXT] [options]\n\n"
            "Chats with an instruction model using its own chat template (from the model's\n"
            "tokenizer_config.json / GGUF metadata: ChatML for SmolLM and Qwen2, Phi-3's, Mistral's\n"
            "[INST] forms...). Each line read on stdin is a user turn; the reply is printed on stdout.\n"
            "Works when stdin is not a terminal (one turn per line). An empty line is skipped;\n"
            "end of input or /exit ends the chat. The KV cache is kept across turns.\n\nOptions:\n");
    cli_print_options(out, opts);
}

typedef struct chat_state {
    ellm_chat_message *msgs;
    size_t n, cap;
} chat_state;

static bool chat_push(chat_state *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        ellm_chat_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return false;
        c->msgs = m;
        c->cap = cap;
    }
    char *dup = ellm_strdup(content);
    if (!dup) return false;
    c->msgs[c->n++] = (ellm_chat_message){role, dup};
    return true;
}

int cmd_chat(int argc, char **argv) {
    gen_opts o;
    gen_opts_default(&o, 512);
    const char *system = NULL, *tmpl = NULL;
    const cli_opt opts[] = {
        {CLI_STRING("--system", NULL, &system, "TEXT", "a system message opening the conversation")},
        {CLI_STRING("--template", NULL, &tmpl, "NAME",
                    "use this chat format instead of the model's own: chatml, phi3,\n"
                    "phi3-mini, mistral-v1, mistral-v3, llama2")},
        GEN_OPT_ENTRIES(&o, "512"),
        {0},
    };
    int n_pos, rc = cli_parse("chat", argc, argv, opts, &o.model, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (chat_usage(stdout, opts), EXIT_OK) : rc;
    if (!o.model) return cli_usage_error("chat", "missing MODEL");
    if (o.json) return cli_usage_error("chat", "--json is not available for chat");

    ellm_error err = {0};
    ellm_model *m;
    if (load_model(&o, &m, &err)) return cli_report_error(&err);
    ellm_model_info info;
    ellm_model_get_info(m, &info);
    print_generated_note(&info);
    const ellm_tokenizer *tok = ellm_model_tokenizer(m);
    const bool tty = isatty(STDIN_FILENO);
    chat_state chat = {0};
    rc = EXIT_OK;
    if (tmpl && ellm_tokenizer_set_chat_template(m->tok, tmpl, &err)) {
        rc = err.code == ELLM_E_ARG ? cli_usage_error("chat", "%s", err.message) : cli_report_error(&err);
        goto done;
    }
    if (system && !chat_push(&chat, "system", system)) {
        rc = EXIT_FAIL;
        goto done;
    }
    /* Render a probe conversation first, so a model without a chat template
     * is refused before the user types anything. */
    char *probe = NULL;
    ellm_chat_message hello = {"user", "hello"};
    if (ellm_chat_render(m, &hello, 1, 1, &probe, &err)) {
        rc = cli_report_error(&err);
        goto done;
    }
    free(probe);
    if (tty) fprintf(stderr, "chat with %s (%s, %s weights); /exit or Ctrl-D to end\n", o.model, info.arch,
                     cli_weights_text(&info));

    int32_t *cached = NULL; /* tokens in the KV cache */
    size_t n_cached = 0;
    char *line = NULL;
    size_t line_cap = 0;
    for (;;) {
        if (tty) fputs("> ", stderr);
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (strcmp(line, "/exit") == 0) break;
        if (!chat_push(&chat, "user", line)) {
            rc = EXIT_FAIL;
            break;
        }
        char *text = NULL;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (ellm_chat_render(m, chat.msgs, chat.n, 1, &text, &err) ||
            ellm_tokenize(tok, text, strlen(text), 0, 1, &ids, &n_ids, &err)) {
            free(text);
            rc = cli_report_error(&err);
            break;
        }
        free(text);
        /* Reuse the cache up to the first token that differs. */
        size_t same = 0;
        while (same < n_cached && same < n_ids && cached[same] == ids[same]) same++;
        text_buf reply = {.stream = true};
        ellm_gen_params gp = {.max_new_tokens = (int)o.n_tokens,
                              .sampler = {(float)o.temp, (float)o.top_p, o.seed + chat.n},
                              .on_token = on_token,
                              .user = &reply};
        ellm_gen_result res;
        if (n_ids > 0 && ellm_generate(m, ids, (int)n_ids, (int)same, &gp, &res, &err)) {
            free(ids);
            free(reply.data);
            putchar('\n');
            rc = cli_report_error(&err);
            break;
        }
        putchar('\n');
        fflush(stdout);
        if (tty)
            fprintf(stderr, "[%d tokens, %.1f tokens/s]\n", res.n_generated,
                    res.gen_seconds > 0 ? res.n_gen_forwards / res.gen_seconds : 0.0);
        /* The cache now holds the prompt and every generated token but the last. */
        free(cached);
        cached = ids;
        n_cached = n_ids;
        bool ok = chat_push(&chat, "assistant", reply.data ? reply.data : "");
        free(reply.data);
        if (!ok) {
            rc = EXIT_FAIL;
            break;
        }
        if (res.stop == ELLM_GEN_STOP_CONTEXT) {
            fprintf(stderr, "entrollm: the context is full; ending the chat\n");
            break;
        }
    }
    free(line);
    free(cached);
done:
    for (size_t i = 0; i < chat.n; i++) free((char *)chat.msgs[i].content);
    free(chat.msgs);
    ellm_model_free(m);
    return rc;
}
