/* gsm8k.c - GSM8k: parsing, answer extraction, k-shot chain-of-thought. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "eval/eval.h"

void ellm_gsm_free(ellm_gsm_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].question);
        free(set->items[i].answer);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

/* ---- numbers ------------------------------------------------------------ */

bool ellm_gsm_normalize(const char *s, size_t len, char *out, size_t cap) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i])) i++;
    while (len > i && isspace((unsigned char)s[len - 1])) len--;
    bool neg = false;
    /* sign and currency in either order: "-$5", "$-5", "+5" */
    for (int k = 0; k < 2 && i < len; k++) {
        if (s[i] == '$') i++;
        else if (s[i] == '-' && !neg) neg = true, i++;
        else if (s[i] == '+') i++;
    }
    char digits[128];
    size_t n = 0;
    bool dot = false, any = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (n + 1 >= sizeof digits) return false;
            digits[n++] = c;
            any = true;
        } else if (c == ',' && any && !dot) {
            continue;
        } else if (c == '.' && !dot) {
            if (n + 1 >= sizeof digits) return false;
            digits[n++] = '.';
            dot = true;
        } else {
            return false;
        }
    }
    if (!any) return false;
    digits[n] = 0;
    if (dot) { /* trailing zeros of the fraction, then a bare '.' */
        while (n && digits[n - 1] == '0') digits[--n] = 0;
        if (n && digits[n - 1] == '.') digits[--n] = 0;
    }
    /* leading zeros of the integer part */
    char *d = digits;
    while (d[0] == '0' && d[1] >= '0' && d[1] <= '9') d++;
    if (d[0] == '.') { /* ".5" -> "0.5" */
        memmove(d + 1, d, strlen(d) + 1);
        d[0] = '0';
    }
    if (strcmp(d, "0") == 0) neg = false;
    int w = snprintf(out, cap, "%s%s", neg ? "-" : "", d);
    return w > 0 && (size_t)w < cap;
}

/* Finds the next number in s[from..]: -?\$?\d[\d,]*(\.\d+)? (a comma only
 * between digits). Returns its start and length, or false. */
static bool next_number(const char *s, size_t from, size_t *start, size_t *len) {
    size_t n = strlen(s);
    for (size_t i = from; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) continue;
        size_t b = i;
        if (b > 0 && s[b - 1] == '$') b--;
        if (b > 0 && s[b - 1] == '-') b--;
        size_t e = i;
        while (e < n && (isdigit((unsigned char)s[e]) ||
                         (s[e] == ',' && e + 1 < n && isdigit((unsigned char)s[e + 1]))))
            e++;
        if (e + 1 < n && s[e] == '.' && isdigit((unsigned char)s[e + 1])) {
            e++;
            while (e < n && isdigit((unsigned char)s[e])) e++;
        }
        *start = b;
        *len = e - b;
        return true;
    }
    return false;
}

bool ellm_gsm_extract_reference(const char *answer, char *out, size_t cap) {
    const char *mark = NULL;
    for (const char *p = strstr(answer, "####"); p; p = strstr(p + 4, "####")) mark = p;
    if (!mark) return false;
    mark += 4;
    size_t start, len;
    if (!next_number(mark, 0, &start, &len)) return false;
    return ellm_gsm_normalize(mark + start, len, out, cap);
}

static const char *last_ci(const char *s, const char *needle) {
    const char *last = NULL;
    size_t nl = strlen(needle);
    for (const char *p = s; *p; p++)
        if (strncasecmp(p, needle, nl) == 0) last = p;
    return last;
}

bool ellm_gsm_extract_prediction(const char *text, char *out, size_t cap) {
    size_t start, len;
    const char *mark = last_ci(text, "the answer is");
    if (mark && next_number(mark, 0, &start, &len) && ellm_gsm_normalize(mark + start, len, out, cap))
        return true;
    bool found = false;
    for (size_t from = 0; next_number(text, from, &start, &len); from = start + len) {
        if (ellm_gsm_normalize(text + start, len, out, cap)) found = true;
    }
    return found;
}

char *ellm_gsm_exemplar(const ellm_gsm_item *item) {
    const char *a = item->answer;
    const char *mark = NULL;
    for (const char *p = strstr(a, "####"); p; p = strstr(p + 4, "####")) mark = p;
    size_t body = mark ? (size_t)(mark - a) : strlen(a);
    const char *final = mark ? mark + 4 : "";
    while (*final == ' ') final++;
    size_t final_len = strcspn(final, "\r\n");
    while (final_len && isspace((unsigned char)final[final_len - 1])) final_len--;
    size_t cap = strlen(item->question) + body + final_len + 64;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t w = (size_t)snprintf(out, cap, "Question: %s\nAnswer:", item->question);
    bool space = true; /* a space is owed before the next word */
    for (size_t i = 0; i < body; i++) {
        char c = a[i];
        if (c == '<' && i + 1 < body && a[i + 1] == '<') { /* calculator annotation */
            const char *end = strstr(a + i + 2, ">>");
            if (end && (size_t)(end - a) < body) {
                i = (size_t)(end - a) + 1;
                continue;
            }
        }
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') {
            space = true;
            continue;
        }
        if (space) out[w++] = ' ';
        space = false;
        out[w++] = c;
    }
    w += (size_t)snprintf(out + w, cap - w, " The answer is %.*s.", (int)final_len, final);
    out[w] = 0;
    return out;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct gsm_parser {
    ellm_gsm_set *set;
    size_t cap;
} gsm_parser;

/* One line {"question": ..., "answer": "... #### N"}, appended to the set. */
static ellm_status add_question(void *user, const json_t *o, const char *what, size_t line_no, ellm_error *err) {
    gsm_parser *p = user;
    ellm_gsm_set *out = p->set;
    const char *q = ellm_json_string(o, "question"), *a = ellm_json_string(o, "answer");
    if (!q || !a)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: expected {\"question\": string, \"answer\": string}",
                         what, line_no);
    if (out->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 1024;
        ellm_gsm_item *it = realloc(out->items, nc * sizeof *it);
        if (!it) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
        out->items = it;
        p->cap = nc;
    }
    ellm_gsm_item *it = &out->items[out->n++];
    memset(it, 0, sizeof *it);
    it->question = ellm_strdup(q);
    it->answer = ellm_strdup(a);
    if (!it->question || !it->answer) return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
    if (!ellm_gsm_extract_reference(it->answer, it->target, sizeof it->target))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: the answer has no \"#### <number>\"", what, line_no);
    return ELLM_OK;
}

ellm_status ellm_gsm_parse(const char *data, size_t len, const char *what, ellm_gsm_set *out,
                           ellm_error *err) {
    memset(out, 0, sizeof *out);
    gsm_parser p = {out, 0};
    ellm_status st = ellm_jsonl_each(data, len, what, add_question, &p, err);
    if (st == ELLM_OK && out->n == 0) st = ellm_fail(err, ELLM_E_FORMAT, "%s: no question", what);
    if (st != ELLM_OK) ellm_gsm_free(out);
    return st;
}

ellm_status ellm_gsm_load(const char *path, ellm_gsm_set *out, ellm_error *err) {
    uint8_t *data;
    size_t size;
    memset(out, 0, sizeof *out);
    ellm_status st = ellm_read_file(path, &data, &size, err);
    if (st != ELLM_OK) return st;
    st = ellm_gsm_parse((const char *)data, size, path, out, err);
    free(data);
    return st;
}

/* ---- evaluation --------------------------------------------------------- */

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* The exemplar block: `shots` distinct train items (seeded), each followed
 * by a blank line. malloc'd. */
static char *build_exemplars(const ellm_gsm_set *train, int shots, uint64_t seed) {
    size_t cap = 1, n = 0;
    char *out = calloc(1, 1);
    size_t picked[64];
    ellm_rng rng;
    ellm_rng_seed(&rng, seed);
    for (int k = 0; k < shots && out; k++) {
        size_t j;
        bool dup;
        do {
            j = (size_t)(ellm_rng_next(&rng) % train->n);
            dup = false;
            for (int m = 0; m < k; m++) dup = dup || picked[m] == j;
        } while (dup);
        picked[k] = j;
        char *ex = ellm_gsm_exemplar(&train->items[j]);
        if (!ex) {
            free(out);
            return NULL;
        }
        size_t el = strlen(ex);
        char *grown = realloc(out, cap + el + 2);
        if (!grown) {
            free(ex), free(out);
            return NULL;
        }
        out = grown;
        cap += el + 2;
        memcpy(out + n, ex, el);
        memcpy(out + n + el, "\n\n", 3);
        n += el + 2;
        free(ex);
    }
    return out;
}

/* Greedy generation after prompt[0..n) (at most max_new tokens, the whole
 * sequence within n_ctx); stops at EOS/BOS, "Question:" or a blank line,
 * which are cut from *text. */
static ellm_status generate(const ellm_lm *lm, int32_t *seq, size_t n, int max_new, char **text,
                            size_t *n_generated, ellm_error *err) {
    float *logits = ellm_malloc((size_t)lm->vocab_size * sizeof *logits, err);
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!logits || !out) {
        free(logits), free(out);
        return ellm_fail(err, ELLM_E_NOMEM, "gsm8k: out of memory");
    }
    out[0] = 0;
    ellm_status st = ELLM_OK;
    *n_generated = 0;
    for (int g = 0; g < max_new; g++) {
        st = lm->next_logits(lm->ctx, seq, n, logits, err);
        if (st != ELLM_OK) break;
        int32_t tok = argmax(logits, lm->vocab_size);
        (*n_generated)++;
        if (tok == lm->eos || tok == lm->bos) break;
        const char *piece;
        size_t pl = lm->piece(lm->ctx, tok, &piece);
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            char *p = realloc(out, cap);
            if (!p) {
                st = ellm_fail(err, ELLM_E_NOMEM, "gsm8k: out of memory");
                break;
            }
            out = p;
        }
        memcpy(out + len, piece, pl);
        len += pl;
        out[len] = 0;
        char *stop = strstr(out, "Question:");
        char *blank = strstr(out, "\n\n");
        if (blank && (!stop || blank < stop)) stop = blank;
        if (stop) {
            *stop = 0;
            break;
        }
        seq[n++] = tok;
    }
    free(logits);
    if (st != ELLM_OK) {
        free(out);
        return st;
    }
    *text = out;
    return ELLM_OK;
}

ellm_status ellm_eval_gsm8k(const ellm_lm *lm, const ellm_gsm_set *test, const ellm_gsm_set *train,
                            const ellm_gsm_options *opts, ellm_gsm_result *res, ellm_error *err) {
    memset(res, 0, sizeof *res);
    int shots = opts->shots;
    if (shots < 0 || shots > 64 || (train ? train->n : 0) < (size_t)shots)
        return ellm_fail(err, ELLM_E_ARG, "gsm8k: %d shots need at least as many training questions (max 64)",
                         shots);
    int max_tokens = opts->max_tokens > 0 ? opts->max_tokens : 256;
    /* Leave the prompt at least half of the context. */
    max_tokens = ELLM_MIN(max_tokens, lm->n_ctx / 2);
    size_t n = opts->limit && opts->limit < test->n ? opts->limit : test->n;
    char *exemplars = shots ? build_exemplars(train, shots, opts->seed) : ellm_strdup("");
    int32_t *seq = ellm_malloc((size_t)lm->n_ctx * sizeof *seq, err);
    if (!exemplars || !seq) {
        free(exemplars), free(seq);
        return ellm_fail(err, ELLM_E_NOMEM, "gsm8k: out of memory");
    }
    ellm_status st = ELLM_OK;
    for (size_t i = 0; i < n && st == ELLM_OK; i++) {
        const ellm_gsm_item *it = &test->items[i];
        size_t pl = strlen(exemplars) + strlen(it->question) + 32;
        char *prompt = malloc(pl);
        if (!prompt) {
            st = ellm_fail(err, ELLM_E_NOMEM, "gsm8k: out of memory");
            break;
        }
        snprintf(prompt, pl, "%sQuestion: %s\nAnswer:", exemplars, it->question);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        st = lm->tokenize(lm->ctx, prompt, strlen(prompt), 1, &ids, &n_ids, err);
        free(prompt);
        if (st != ELLM_OK) {
            ellm_fail_prefix(err, "gsm8k: question %zu", i + 1);
            break;
        }
        /* Too long: keep the first token (BOS) and the prompt's end. */
        size_t keep = (size_t)(lm->n_ctx - max_tokens);
        size_t skip = n_ids > keep ? n_ids - keep : 0;
        size_t sn = n_ids - skip;
        if (n_ids == 0) {
            free(ids);
            st = ellm_fail(err, ELLM_E_INTERNAL, "gsm8k: question %zu tokenized to nothing", i + 1);
            break;
        }
        seq[0] = ids[0];
        memcpy(seq + 1, ids + 1 + skip, (sn - 1) * sizeof *seq);
        free(ids);
        res->truncated += skip > 0;
        char *text = NULL;
        size_t n_gen = 0;
        st = generate(lm, seq, sn, max_tokens, &text, &n_gen, err);
        if (st != ELLM_OK) {
            ellm_fail_prefix(err, "gsm8k: question %zu", i + 1);
            break;
        }
        res->generated_tokens += n_gen;
        char pred[64] = "";
        bool have = ellm_gsm_extract_prediction(text, pred, sizeof pred);
        int correct = have && strcmp(pred, it->target) == 0;
        res->n++;
        res->correct += (size_t)correct;
        if (opts->on_item) opts->on_item(opts->item_user, i, text, have ? pred : "", it->target, correct);
        free(text);
        if (opts->progress.fn) opts->progress.fn(opts->progress.user, "gsm8k", i + 1, n);
    }
    if (res->n) {
        res->accuracy = (double)res->correct / (double)res->n;
        res->accuracy_stderr = ellm_stderr_binary(res->correct, res->n);
    }
    free(exemplars), free(seq);
    return st;
}
