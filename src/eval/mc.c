/* mc.c - multiple-choice tasks (HellaSwag): parsers and scoring. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

void ellm_mc_free(ellm_mc_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->tasks[i].context);
        for (int e = 0; e < ELLM_MC_ENDINGS; e++) free(set->tasks[i].endings[e]);
    }
    free(set->tasks);
    set->tasks = NULL;
    set->n = 0;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static ellm_status grow_tasks(ellm_mc_set *set, size_t *cap, ellm_error *err) {
    if (set->n < *cap) return ELLM_OK;
    size_t nc = *cap ? *cap * 2 : 1024;
    ellm_mc_task *t = realloc(set->tasks, nc * sizeof *t);
    if (!t) return ellm_fail(err, ELLM_E_NOMEM, "out of memory reading tasks");
    set->tasks = t;
    *cap = nc;
    return ELLM_OK;
}

/* ---- llama.cpp's six-line text form ------------------------------------- */

ellm_status ellm_mc_parse_text(const char *data, size_t len, const char *what, ellm_mc_set *out,
                               ellm_error *err) {
    memset(out, 0, sizeof *out);
    size_t cap = 0, pos = 0, line_no = 0;
    const char *lines[6];
    size_t lens[6];
    int have = 0;
    const char *s;
    size_t n;
    while (ellm_next_line(data, len, &pos, &s, &n)) {
        line_no++;
        if (n && s[n - 1] == '\r') n--;
        if (memchr(s, 0, n)) {
            ellm_mc_free(out);
            return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu holds a NUL byte", what, line_no);
        }
        /* One trailing blank line (a file ending in "\n\n") is tolerated. */
        if (have == 0 && n == 0 && pos >= len) break;
        lines[have] = s;
        lens[have] = n;
        if (++have < 6) continue;
        have = 0;
        size_t first_line = line_no - 5;
        if (lens[1] != 1 || lines[1][0] < '0' || lines[1][0] > '3') {
            ellm_mc_free(out);
            return ellm_fail(err, ELLM_E_FORMAT,
                             "%s: line %zu: task %zu's gold label must be 0..3, found '%.*s'", what,
                             first_line + 1, out->n + 1, (int)ELLM_MIN(lens[1], (size_t)20), lines[1]);
        }
        if (grow_tasks(out, &cap, err) != ELLM_OK) {
            ellm_mc_free(out);
            return ELLM_E_NOMEM;
        }
        ellm_mc_task *t = &out->tasks[out->n];
        memset(t, 0, sizeof *t);
        t->label = lines[1][0] - '0';
        t->context = dup_n(lines[0], lens[0]);
        bool ok = t->context != NULL;
        for (int e = 0; e < ELLM_MC_ENDINGS; e++) {
            t->endings[e] = dup_n(lines[2 + e], lens[2 + e]);
            ok = ok && t->endings[e];
        }
        out->n++;
        if (!ok) {
            ellm_mc_free(out);
            return ellm_fail(err, ELLM_E_NOMEM, "%s: out of memory", what);
        }
    }
    if (have != 0) {
        size_t n = out->n;
        ellm_mc_free(out);
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: truncated: %d line(s) after task %zu, a task has 6 lines (context, "
                         "label, 4 endings)", what, have, n);
    }
    if (out->n == 0) return ellm_fail(err, ELLM_E_FORMAT, "%s: no task", what);
    return ELLM_OK;
}

/* ---- HellaSwag .jsonl, preprocessed as lm-eval-harness --------------------- */

/* Python's str.replace(old, new) on a malloc'd string; frees s. */
static char *replace_all(char *s, const char *old, const char *new_) {
    if (!s) return NULL;
    size_t lo = strlen(old), ln = strlen(new_), count = 0;
    for (const char *p = strstr(s, old); p; p = strstr(p + lo, old)) count++;
    if (!count) return s;
    char *r = malloc(strlen(s) - count * lo + count * ln + 1);
    if (!r) {
        free(s);
        return NULL;
    }
    char *w = r;
    const char *p = s;
    for (const char *h = strstr(p, old); h; h = strstr(p, old)) {
        memcpy(w, p, (size_t)(h - p));
        w += h - p;
        memcpy(w, new_, ln);
        w += ln;
        p = h + lo;
    }
    strcpy(w, p);
    free(s);
    return r;
}

char *ellm_hellaswag_preprocess(const char *in) {
    /* text.strip() */
    size_t n = strlen(in);
    while (n && isspace((unsigned char)in[n - 1])) n--;
    while (n && isspace((unsigned char)*in)) in++, n--;
    char *s = dup_n(in, n);
    /* text.replace(" [title]", ". ") */
    s = replace_all(s, " [title]", ". ");
    if (!s) return NULL;
    /* re.sub("\\[.*?\\]", "", text): drop every shortest "[...]" (no newline inside) */
    char *w = s;
    for (const char *p = s; *p;) {
        if (*p == '[') {
            const char *q = p + 1;
            while (*q && *q != ']' && *q != '\n') q++;
            if (*q == ']') {
                p = q + 1;
                continue;
            }
        }
        *w++ = *p++;
    }
    *w = 0;
    /* text.replace("  ", " ") */
    return replace_all(s, "  ", " ");
}

/* Python's str.capitalize() for ASCII: first letter upper, the rest lower. */
static void py_capitalize(char *s) {
    for (size_t i = 0; s[i]; i++)
        s[i] = (char)(i == 0 ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
}

static ellm_status parse_jsonl_task(const json_t *o, const char *what, size_t line_no, ellm_mc_task *t,
                                    ellm_error *err) {
    const char *label_s = ellm_json_string(o, "activity_label");
    const char *ctx_a = ellm_json_string(o, "ctx_a"), *ctx_b = ellm_json_string(o, "ctx_b");
    const char *ctx = ellm_json_string(o, "ctx");
    json_t *endings = json_object_get(o, "endings");
    json_t *label = json_object_get(o, "label");
    if (!json_is_array(endings) || json_array_size(endings) != ELLM_MC_ENDINGS)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: \"endings\" must be an array of 4 strings",
                         what, line_no);
    long gold = -1;
    if (json_is_integer(label)) gold = (long)json_integer_value(label);
    else if (json_is_string(label) && strlen(json_string_value(label)) == 1)
        gold = json_string_value(label)[0] - '0';
    if (gold < 0 || gold > 3)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: \"label\" must be 0..3", what, line_no);
    if (!(ctx_a && ctx_b) && !ctx)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: needs \"ctx_a\" and \"ctx_b\", or \"ctx\"",
                         what, line_no);
    /* ctx = ctx_a + " " + ctx_b.capitalize(); query = preprocess(label + ": " + ctx) */
    char *joined;
    if (ctx_a && ctx_b) {
        char *b = ellm_strdup(ctx_b);
        if (!b) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        py_capitalize(b);
        size_t n = strlen(label_s ? label_s : "") + strlen(ctx_a) + strlen(b) + 8;
        joined = malloc(n);
        if (joined) snprintf(joined, n, "%s%s%s %s", label_s ? label_s : "", label_s ? ": " : "", ctx_a, b);
        free(b);
    } else {
        size_t n = strlen(label_s ? label_s : "") + strlen(ctx) + 8;
        joined = malloc(n);
        if (joined) snprintf(joined, n, "%s%s%s", label_s ? label_s : "", label_s ? ": " : "", ctx);
    }
    if (!joined) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    memset(t, 0, sizeof *t);
    t->label = (int)gold;
    t->context = ellm_hellaswag_preprocess(joined);
    free(joined);
    bool ok = t->context != NULL;
    for (int e = 0; e < ELLM_MC_ENDINGS; e++) {
        json_t *v = json_array_get(endings, (size_t)e);
        if (!json_is_string(v)) {
            ok = false;
            break;
        }
        t->endings[e] = ellm_hellaswag_preprocess(json_string_value(v));
        ok = ok && t->endings[e];
    }
    if (!ok) {
        free(t->context);
        for (int e = 0; e < ELLM_MC_ENDINGS; e++) free(t->endings[e]);
        return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: bad ending", what, line_no);
    }
    return ELLM_OK;
}

typedef struct mc_parser {
    ellm_mc_set *set;
    size_t cap;
} mc_parser;

static ellm_status add_jsonl_task(void *user, const json_t *o, const char *what, size_t line_no, ellm_error *err) {
    mc_parser *p = user;
    if (grow_tasks(p->set, &p->cap, err) != ELLM_OK) return ELLM_E_NOMEM;
    ellm_status st = parse_jsonl_task(o, what, line_no, &p->set->tasks[p->set->n], err);
    if (st == ELLM_OK) p->set->n++;
    return st;
}

ellm_status ellm_mc_parse_jsonl(const char *data, size_t len, const char *what, ellm_mc_set *out,
                                ellm_error *err) {
    memset(out, 0, sizeof *out);
    mc_parser p = {out, 0};
    ellm_status st = ellm_jsonl_each(data, len, what, add_jsonl_task, &p, err);
    if (st == ELLM_OK && out->n == 0) st = ellm_fail(err, ELLM_E_FORMAT, "%s: no task", what);
    if (st != ELLM_OK) ellm_mc_free(out);
    return st;
}

ellm_status ellm_mc_load(const char *path, ellm_mc_set *out, ellm_error *err) {
    uint8_t *data;
    size_t size;
    memset(out, 0, sizeof *out);
    ellm_status st = ellm_read_file(path, &data, &size, err);
    if (st != ELLM_OK) return st;
    size_t i = 0;
    while (i < size && isspace(data[i])) i++;
    if (i < size && data[i] == '{')
        st = ellm_mc_parse_jsonl((const char *)data, size, path, out, err);
    else
        st = ellm_mc_parse_text((const char *)data, size, path, out, err);
    free(data);
    return st;
}

/* ---- scoring ------------------------------------------------------------ */

/* A growable string. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static bool sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = ELLM_MAX(b->cap * 2, b->n + n + 256);
        char *p = realloc(b->s, nc);
        if (!p) return false;
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return true;
}
static bool sb_str(sbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

/* The prompt of task i: `shots` exemplars drawn from the other tasks, each
 * "context gold-ending", joined by blank lines, then the task's context. */
static bool build_prompt(const ellm_mc_set *set, size_t i, int shots, uint64_t seed, sbuf *b) {
    b->n = 0;
    if (!sb_add(b, "", 0)) return false;
    if (shots > 0) {
        ellm_rng rng;
        ellm_rng_seed(&rng, seed ^ (0x9E3779B97F4A7C15ull * (i + 1)));
        size_t picked[64];
        int n_picked = 0;
        while (n_picked < shots) {
            size_t j = (size_t)(ellm_rng_next(&rng) % set->n);
            bool dup = j == i;
            for (int k = 0; k < n_picked && !dup; k++) dup = picked[k] == j;
            if (dup) continue;
            picked[n_picked++] = j;
            const ellm_mc_task *ex = &set->tasks[j];
            if (!sb_str(b, ex->context) || !sb_str(b, " ") || !sb_str(b, ex->endings[ex->label]) ||
                !sb_str(b, "\n\n"))
                return false;
        }
    }
    return sb_str(b, set->tasks[i].context);
}

ellm_status ellm_eval_multiple_choice(const ellm_lm *lm, const ellm_mc_set *set,
                                      const ellm_mc_options *opts, ellm_mc_result *res,
                                      ellm_error *err) {
    memset(res, 0, sizeof *res);
    size_t n = opts->limit && opts->limit < set->n ? opts->limit : set->n;
    if (n == 0) return ellm_fail(err, ELLM_E_ARG, "hellaswag: no task to score");
    if (opts->shots < 0 || opts->shots > 64 || (size_t)opts->shots >= set->n)
        return ellm_fail(err, ELLM_E_ARG, "hellaswag: %d shots need more tasks than the %zu given (max 64)",
                         opts->shots, set->n);
    if (lm->n_ctx < 8) return ellm_fail(err, ELLM_E_ARG, "hellaswag: context of %d tokens too short", lm->n_ctx);
    sbuf prompt = {0}, full = {0};
    int32_t *window = ellm_malloc((size_t)lm->n_ctx * sizeof *window, err);
    double *lp = ellm_malloc((size_t)lm->n_ctx * sizeof *lp, err);
    ellm_status st = (window && lp) ? ELLM_OK : ELLM_E_NOMEM;
    for (size_t i = 0; i < n && st == ELLM_OK; i++) {
        const ellm_mc_task *t = &set->tasks[i];
        if (!build_prompt(set, i, opts->shots, opts->seed, &prompt)) {
            st = ellm_fail(err, ELLM_E_NOMEM, "hellaswag: out of memory");
            break;
        }
        int32_t *ctx_ids = NULL;
        size_t n_ctx_ids = 0;
        st = lm->tokenize(lm->ctx, prompt.s, prompt.n, 1, &ctx_ids, &n_ctx_ids, err);
        if (st != ELLM_OK) {
            ellm_fail_prefix(err, "hellaswag: task %zu", i + 1);
            break;
        }
        double best = -INFINITY, best_norm = -INFINITY;
        int pick = 0, pick_norm = 0;
        bool truncated = false;
        for (int e = 0; e < ELLM_MC_ENDINGS && st == ELLM_OK; e++) {
            const char *ending = t->endings[e];
            full.n = 0;
            if (!sb_add(&full, prompt.s, prompt.n) || !sb_str(&full, " ") || !sb_str(&full, ending)) {
                st = ellm_fail(err, ELLM_E_NOMEM, "hellaswag: out of memory");
                break;
            }
            int32_t *ids = NULL;
            size_t n_ids = 0;
            st = lm->tokenize(lm->ctx, full.s, full.n, 1, &ids, &n_ids, err);
            if (st != ELLM_OK) {
                ellm_fail_prefix(err, "hellaswag: task %zu ending %d", i + 1, e);
                break;
            }
            /* As lm-eval-harness: the continuation is what follows the
             * context's own encoding in the encoding of the whole. */
            size_t cont = ELLM_MIN(n_ctx_ids, n_ids > 0 ? n_ids - 1 : 0);
            if (cont == 0) cont = 1;
            size_t n_cont = n_ids - cont;
            if (n_ids < 2 || n_cont + 2 > (size_t)lm->n_ctx) {
                free(ids);
                st = ellm_fail(err, ELLM_E_ARG,
                               "hellaswag: task %zu ending %d: %zu tokens do not fit a context of %d",
                               i + 1, e, n_ids, lm->n_ctx);
                break;
            }
            /* Too long: keep BOS (or the first token) and the last n_ctx-1. */
            size_t wn = n_ids, skip = 0;
            if (n_ids > (size_t)lm->n_ctx) {
                skip = n_ids - (size_t)lm->n_ctx;
                wn = (size_t)lm->n_ctx;
                truncated = true;
            }
            window[0] = ids[0];
            memcpy(window + 1, ids + 1 + skip, (wn - 1) * sizeof *window);
            size_t first = cont - skip;
            st = lm->logprobs(lm->ctx, window, wn, first, lp, err);
            free(ids);
            if (st != ELLM_OK) {
                ellm_fail_prefix(err, "hellaswag: task %zu ending %d", i + 1, e);
                break;
            }
            double sum = 0;
            for (size_t k = 0; k < wn - first; k++) sum += lp[k];
            size_t bytes = strlen(ending);
            double norm = sum / (double)(bytes ? bytes : 1);
            if (sum > best) best = sum, pick = e;
            if (norm > best_norm) best_norm = norm, pick_norm = e;
        }
        free(ctx_ids);
        if (st != ELLM_OK) break;
        res->n++;
        res->correct += pick == t->label;
        res->correct_norm += pick_norm == t->label;
        res->truncated += truncated;
        if (opts->progress.fn) opts->progress.fn(opts->progress.user, "hellaswag", i + 1, n);
    }
    if (res->n) {
        res->acc = (double)res->correct / (double)res->n;
        res->acc_norm = (double)res->correct_norm / (double)res->n;
        res->acc_stderr = ellm_stderr_binary(res->correct, res->n);
        res->acc_norm_stderr = ellm_stderr_binary(res->correct_norm, res->n);
    }
    free(prompt.s), free(full.s), free(window), free(lp);
    return st;
}
