/* cmd_tokenize.c - `entrollm tokenize MODEL [TEXT|-]` and `entrollm detokenize MODEL IDS...`. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "tokenizer/tokenizer.h"

static void tokenize_usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm tokenize MODEL [TEXT|-] [options]\n"
            "\n"
            "Shows how MODEL's tokenizer splits TEXT (or the exact bytes of standard input,\n"
            "with '-' or no TEXT; nothing is trimmed). MODEL is a model (.ellm file, Hugging\n"
            "Face folder, GGUF, llama2.c checkpoint with its tokenizer beside it) or a\n"
            "tokenizer file (tokenizer.json, tokenizer.model, llama2.c .bin, vocabulary GGUF).\n"
            "By default prints one token per line: id, then the piece as it appears in the\n"
            "vocabulary. No BOS/EOS is added unless asked. A TEXT starting with '-' follows '--'.\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

/* Reads a JSON array of {"role", "content"} into messages (strings owned by *root). */
static int read_chat(const char *path, json_t **root, ellm_chat_message **msgs, size_t *n) {
    json_error_t je;
    *root = json_load_file(path, 0, &je);
    if (!*root) {
        fprintf(stderr, "entrollm: %s: line %d: %s\n", path, je.line, je.text);
        return 0;
    }
    if (!json_is_array(*root) || json_array_size(*root) == 0) {
        fprintf(stderr, "entrollm: %s: expected a non-empty JSON array of {\"role\", \"content\"}\n", path);
        return 0;
    }
    *n = json_array_size(*root);
    *msgs = calloc(*n, sizeof **msgs);
    if (!*msgs) return 0;
    for (size_t i = 0; i < *n; i++) {
        const json_t *m = json_array_get(*root, i);
        const json_t *r = json_object_get(m, "role"), *c = json_object_get(m, "content");
        if (!json_is_string(r) || !json_is_string(c)) {
            fprintf(stderr, "entrollm: %s: message %zu needs string \"role\" and \"content\"\n", path, i);
            return 0;
        }
        (*msgs)[i].role = json_string_value(r);
        (*msgs)[i].content = json_string_value(c);
    }
    return 1;
}

static void detokenize_usage(FILE *out, const cli_opt *opts) {
    fprintf(out,
            "Usage: entrollm detokenize MODEL IDS... [options]\n"
            "\n"
            "Turns token ids back into text and writes its exact bytes to standard output\n"
            "(no newline is added). IDS are integers, as separate arguments or in one\n"
            "argument separated by spaces or commas; '-' reads them from standard input.\n"
            "Control tokens (BOS, EOS, chat markers) are left out unless --special.\n"
            "\n"
            "Options:\n");
    cli_print_options(out, opts);
}

/* A JSON string for bytes that may not be valid UTF-8 (byte-level pieces):
 * invalid bytes become U+FFFD. */
static json_t *json_bytes(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf) return json_null();
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t l = 1;
        unsigned char c = (unsigned char)s[i];
        size_t want = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = want > 0 && i + want <= n;
        for (size_t k = 1; ok && k < want; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok) {
            memcpy(buf + m, s + i, want);
            m += want;
            l = want;
        } else {
            memcpy(buf + m, "\xEF\xBF\xBD", 3);
            m += 3;
        }
        i += l;
    }
    j = json_stringn(buf, m);
    free(buf);
    return j ? j : json_null();
}

static int read_stdin(char **data, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return 0;
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return 0;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return 0;
    }
    *data = buf;
    *len = n;
    return 1;
}

/* Vocabulary pieces are printed as they are, except control characters, which
 * are escaped so that one token stays on one line. */
static void print_piece(FILE *out, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *chat_path = NULL, *tmpl = NULL;
    bool ids_only = false, pieces_only = false, bos = false, special = false, json = false;
    const cli_opt opts[] = {
        {CLI_FLAG("--ids", NULL, &ids_only, "print only the ids, on one line, separated by single spaces")},
        {CLI_FLAG("--pieces", NULL, &pieces_only,
                  "print only the vocabulary pieces, on one line, separated by spaces")},
        {CLI_FLAG("--bos", NULL, &bos, "start with the BOS token (when the tokenizer has one)")},
        {CLI_FLAG("--special", NULL, &special,
                  "recognise special tokens written in the text (<|im_start|>, [INST]...)")},
        {CLI_STRING("--chat", NULL, &chat_path, "FILE",
                    "instead of TEXT: render the chat in FILE (a JSON array of\n"
                    "{\"role\": ..., \"content\": ...}) with the model's chat template,\n"
                    "opening the assistant turn, and show the ids the model will see")},
        {CLI_STRING("--template", NULL, &tmpl, "NAME",
                    "with --chat: the template to use (chatml, phi3, phi3-mini,\n"
                    "mistral-v1, mistral-v3, llama2, llama3, zephyr, or a Jinja text)")},
        {CLI_FLAG("--json", NULL, &json,
                  "print one JSON object: model, kind, n_tokens, ids, pieces (and text\n"
                  "with --chat)")},
        {0},
    };
    /* room for every argument, so that a surplus word gets the hint below */
    const char **pos = malloc(sizeof *pos * (size_t)argc);
    if (!pos) return EXIT_FAIL;
    int n_pos, rc = cli_parse("tokenize", argc, argv, opts, pos, argc, &n_pos);
    const char *model = n_pos > 0 ? pos[0] : NULL, *text_arg = n_pos > 1 ? pos[1] : NULL;
    const char *surplus = n_pos > 2 ? pos[2] : NULL;
    free(pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (tokenize_usage(stdout, opts), EXIT_OK) : rc;
    if (surplus)
        return cli_usage_error("tokenize", "unexpected argument '%s' (quote the text as one argument)", surplus);
    bool have_text = text_arg != NULL;
    if (!model) return cli_usage_error("tokenize", "needs MODEL");
    if (ids_only && pieces_only) return cli_usage_error("tokenize", "--ids and --pieces exclude each other");
    if ((ids_only || pieces_only) && json) return cli_usage_error("tokenize", "--json prints ids and pieces already");
    if (chat_path && have_text) return cli_usage_error("tokenize", "give TEXT or --chat FILE, not both");
    if (tmpl && !chat_path) return cli_usage_error("tokenize", "--template applies to --chat");

    char *text = NULL;
    size_t len = 0;
    if (chat_path) {
        /* rendered below, once the tokenizer is loaded */
    } else if (!have_text || !strcmp(text_arg, "-")) {
        if (!read_stdin(&text, &len)) {
            fprintf(stderr, "entrollm: cannot read standard input\n");
            return EXIT_FAIL;
        }
    } else {
        len = strlen(text_arg);
        text = malloc(len + 1);
        if (!text) return EXIT_FAIL;
        memcpy(text, text_arg, len + 1);
    }
    ellm_error err = {0};
    ellm_tokenizer *t;
    if (ellm_tokenizer_load(model, &t, &err)) {
        free(text);
        return cli_report_error(&err);
    }
    if (chat_path) {
        json_t *root = NULL;
        ellm_chat_message *msgs = NULL;
        size_t n_msgs = 0;
        int ok = read_chat(chat_path, &root, &msgs, &n_msgs);
        ellm_status st = ELLM_OK;
        if (ok && tmpl) st = ellm_tokenizer_set_chat_template(t, tmpl, &err);
        if (ok && !st) st = ellm_tokenizer_chat_render(t, msgs, n_msgs, 1, &text, &err);
        free(msgs);
        json_decref(root);
        if (!ok || st) {
            ellm_tokenizer_free(t);
            return ok ? cli_report_error(&err) : EXIT_FAIL;
        }
        len = strlen(text);
        special = true; /* the template's markers are special tokens; BOS is written by the template */
        bos = false;
    }
    int32_t *ids;
    size_t n;
    if (ellm_tokenize(t, text, len, bos, special, &ids, &n, &err)) {
        free(text);
        ellm_tokenizer_free(t);
        return cli_report_error(&err);
    }
    if (json) {
        json_t *o = json_object(), *ja = json_array(), *jp = json_array();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "kind", json_string(ellm_tokenizer_kind_name(t)));
        json_object_set_new(o, "vocab_size", json_integer(ellm_tokenizer_vocab_size(t)));
        json_object_set_new(o, "bytes", json_integer((json_int_t)len));
        json_object_set_new(o, "n_tokens", json_integer((json_int_t)n));
        if (chat_path) {
            json_object_set_new(o, "chat_format", json_string(ellm_chat_format_name(ellm_tokenizer_chat_format(t))));
            json_object_set_new(o, "text", json_bytes(text, len));
        }
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t l = ellm_tokenizer_raw_piece(t, ids[i], &p);
            json_array_append_new(ja, json_integer(ids[i]));
            json_array_append_new(jp, json_bytes(p, l));
        }
        json_object_set_new(o, "ids", ja);
        json_object_set_new(o, "pieces", jp);
        char *s = json_dumps(o, JSON_COMPACT);
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
    } else if (ids_only) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    } else {
        if (chat_path && !pieces_only) {
            printf("# %s chat: ", ellm_chat_format_name(ellm_tokenizer_chat_format(t)));
            print_piece(stdout, text, len);
            putchar('\n');
        }
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t l = ellm_tokenizer_raw_piece(t, ids[i], &p);
            if (pieces_only) {
                if (i) putchar(' ');
                print_piece(stdout, p, l);
            } else {
                printf("%6d  ", (int)ids[i]);
                print_piece(stdout, p, l);
                putchar('\n');
            }
        }
        if (pieces_only) putchar('\n');
    }
    free(ids);
    free(text);
    ellm_tokenizer_free(t);
    return EXIT_OK;
}

/* Appends the integers in s (separated by spaces or commas) to *ids. */
static bool parse_ids(const char *s, int32_t **ids, size_t *n, size_t *cap) {
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        const char *start = p;
        while (*p && *p != ' ' && *p != ',' && *p != '\n' && *p != '\t' && *p != '\r') p++;
        char tok[32];
        size_t l = (size_t)(p - start);
        if (l >= sizeof tok) {
            cli_usage_error("detokenize", "'%.*s' is not a token id", (int)ELLM_MIN(l, 40), start);
            return false;
        }
        memcpy(tok, start, l);
        tok[l] = 0;
        long v;
        if (!cli_parse_int("detokenize", "IDS", tok, 0, INT32_MAX, &v)) return false;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            int32_t *q = realloc(*ids, *cap * sizeof *q);
            if (!q) return false;
            *ids = q;
        }
        (*ids)[(*n)++] = (int32_t)v;
    }
    return true;
}

/* The ids in args (an arg "-": those on standard input) appended to *ids;
 * an exit code. */
static int collect_ids(const char *const *args, int n_args, int32_t **ids, size_t *n) {
    size_t cap = 0;
    for (int k = 0; k < n_args; k++) {
        if (strcmp(args[k], "-") != 0) {
            if (!parse_ids(args[k], ids, n, &cap)) return EXIT_USAGE;
            continue;
        }
        char *in, *z;
        size_t len;
        if (!read_stdin(&in, &len)) {
            fprintf(stderr, "entrollm: cannot read standard input\n");
            return EXIT_FAIL;
        }
        if (!(z = realloc(in, len + 1))) {
            free(in);
            return EXIT_FAIL;
        }
        z[len] = 0;
        bool ok = parse_ids(z, ids, n, &cap);
        free(z);
        if (!ok) return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cmd_detokenize(int argc, char **argv) {
    bool special = false, json = false;
    const cli_opt opts[] = {
        {CLI_FLAG("--special", NULL, &special, "write control tokens as their text (<s>, <|im_end|>...)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object: model, n_ids, text")},
        {0},
    };
    const char **pos = malloc(sizeof *pos * (size_t)argc);
    if (!pos) return EXIT_FAIL;
    int n_pos, rc = cli_parse("detokenize", argc, argv, opts, pos, argc, &n_pos);
    if (rc != CLI_GO_ON) {
        free(pos);
        return rc == CLI_HELP ? (detokenize_usage(stdout, opts), EXIT_OK) : rc;
    }
    const char *model = n_pos > 0 ? pos[0] : NULL;
    bool saw_ids = n_pos > 1;
    int32_t *ids = NULL;
    size_t n = 0;
    rc = collect_ids(pos + 1, n_pos - 1, &ids, &n);
    free(pos);
    if (rc != EXIT_OK) {
        free(ids);
        return rc;
    }
    if (!model || !saw_ids) {
        free(ids);
        return cli_usage_error("detokenize", "needs MODEL and IDS");
    }
    ellm_error err = {0};
    ellm_tokenizer *t;
    if (ellm_tokenizer_load(model, &t, &err)) {
        free(ids);
        return cli_report_error(&err);
    }
    char *text;
    size_t len;
    if (ellm_tokenizer_decode(t, ids, n, special ? ELLM_DETOK_SPECIAL : 0, &text, &len, &err)) {
        rc = cli_report_error(&err);
    } else {
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "model", json_string(model));
            json_object_set_new(o, "n_ids", json_integer((json_int_t)n));
            json_object_set_new(o, "text", json_bytes(text, len));
            char *s = json_dumps(o, JSON_COMPACT);
            if (s) printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            fwrite(text, 1, len, stdout);
        }
        free(text);
    }
    free(ids);
    ellm_tokenizer_free(t);
    return rc;
}
