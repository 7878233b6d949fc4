/* stories.c - the story-ending multiple-choice task built from TinyStories. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "eval/eval.h"

typedef struct span {
    const char *s;
    size_t n;
} span;

typedef struct story {
    span *sent;
    size_t n_sent;
} story;

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* A sentence ends after '.', '!' or '?', then any closing quotes/brackets
 * (ASCII '"' ''' ')' or UTF-8 right quotes), when followed by whitespace or
 * the end of the story. */
static size_t sentence_end(const char *s, size_t n, size_t i) {
    if (s[i] != '.' && s[i] != '!' && s[i] != '?') return 0;
    size_t e = i + 1;
    for (;;) {
        if (e < n && (s[e] == '"' || s[e] == '\'' || s[e] == ')')) e++;
        else if (e + 2 < n && (unsigned char)s[e] == 0xE2 && (unsigned char)s[e + 1] == 0x80 &&
                 ((unsigned char)s[e + 2] == 0x9D || (unsigned char)s[e + 2] == 0x99))
            e += 3;
        else break;
    }
    return (e == n || is_space(s[e])) ? e : 0;
}

static ellm_status split_sentences(const char *s, size_t n, story *st, ellm_error *err) {
    size_t cap = 0;
    st->sent = NULL;
    st->n_sent = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) i++;
        if (i >= n) break;
        size_t b = i, e = 0;
        for (; i < n; i++)
            if ((e = sentence_end(s, n, i)) != 0) break;
        if (!e) e = n; /* an unterminated tail counts as a sentence */
        i = e;
        if (st->n_sent == cap) {
            cap = cap ? cap * 2 : 16;
            span *p = realloc(st->sent, cap * sizeof *p);
            if (!p) return ellm_fail(err, ELLM_E_NOMEM, "story task: out of memory");
            st->sent = p;
        }
        st->sent[st->n_sent++] = (span){s + b, e - b};
    }
    return ELLM_OK;
}

/* Appends bytes; with `flatten`, newlines become spaces (a sentence's line
 * breaks must not break the six-line layout). */
static bool put_bytes(char **buf, size_t *len, size_t *cap, const char *s, size_t n, bool flatten) {
    if (*len + n + 2 > *cap) {
        size_t nc = (*len + n + 2) * 2;
        char *p = realloc(*buf, nc);
        if (!p) return false;
        *buf = p;
        *cap = nc;
    }
    for (size_t i = 0; i < n; i++)
        (*buf)[(*len)++] = (flatten && (s[i] == '\n' || s[i] == '\r')) ? ' ' : s[i];
    (*buf)[*len] = 0;
    return true;
}

static bool put_span(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    return put_bytes(buf, len, cap, s, n, true);
}

static bool put_str(char **buf, size_t *len, size_t *cap, const char *s) {
    return put_bytes(buf, len, cap, s, strlen(s), false);
}

static bool span_eq(span a, span b) { return a.n == b.n && memcmp(a.s, b.s, a.n) == 0; }

/* One task: story s cut after k sentences, three distractors, a drawn
 * position for the gold ending; appended to buf in the six-line form. */
static ellm_status emit_task(const story *stories, size_t n_stories, size_t s, size_t k, ellm_rng *rng,
                             char **buf, size_t *blen, size_t *bcap, ellm_error *err) {
    const story *sty = &stories[s];
    span gold = sty->sent[k];
    span endings[ELLM_MC_ENDINGS];
    int label = (int)(ellm_rng_next(rng) % ELLM_MC_ENDINGS);
    size_t used[ELLM_MC_ENDINGS] = {s, s, s, s};
    int d = 0;
    for (int e = 0; e < ELLM_MC_ENDINGS; e++) {
        if (e == label) {
            endings[e] = gold;
            continue;
        }
        for (int tries = 0;; tries++) { /* a non-first sentence of a story not used yet */
            if (tries > 100000)
                return ellm_fail(err, ELLM_E_ARG, "story task: story %zu: no distinct distractor found", s + 1);
            size_t o = (size_t)(ellm_rng_next(rng) % n_stories);
            bool taken = false;
            for (int u = 0; u <= d; u++) taken = taken || used[u] == o;
            if (taken || stories[o].n_sent < 2) continue;
            span c = stories[o].sent[1 + ellm_rng_next(rng) % (stories[o].n_sent - 1)];
            if (span_eq(c, gold)) continue;
            endings[e] = c;
            used[++d] = o;
            break;
        }
    }
    bool ok = true;
    for (size_t i = 0; i < k && ok; i++)
        ok = (i == 0 || put_str(buf, blen, bcap, " ")) && put_span(buf, blen, bcap, sty->sent[i].s, sty->sent[i].n);
    char label_line[8];
    snprintf(label_line, sizeof label_line, "\n%d\n", label);
    ok = ok && put_str(buf, blen, bcap, label_line);
    for (int e = 0; e < ELLM_MC_ENDINGS && ok; e++)
        ok = put_span(buf, blen, bcap, endings[e].s, endings[e].n) && put_str(buf, blen, bcap, "\n");
    return ok ? ELLM_OK : ellm_fail(err, ELLM_E_NOMEM, "story task: out of memory");
}

ellm_status ellm_build_story_task(const char *text, size_t len, uint64_t seed, int per_story, size_t max_tasks,
                                  char **out, size_t *out_len, size_t *n_tasks, ellm_error *err) {
    static const char sep[] = "<|endoftext|>";
    if (per_story < 1 || per_story > ELLM_STORY_MAX_CUTS)
        return ellm_fail(err, ELLM_E_ARG, "story task: cuts per story must be in [1, %d], got %d", ELLM_STORY_MAX_CUTS,
                         per_story);
    *out = NULL;
    *out_len = 0;
    *n_tasks = 0;
    const char *nul = memchr(text, 0, len);
    if (nul)
        return ellm_fail(err, ELLM_E_FORMAT, "story task: the text holds a NUL byte at offset %zu", (size_t)(nul - text));
    /* Stories. */
    size_t cap = 0, n_stories = 0;
    story *stories = NULL;
    ellm_status st = ELLM_OK;
    for (size_t pos = 0; pos < len && st == ELLM_OK;) {
        const char *hit = NULL;
        for (size_t i = pos; i + sizeof sep - 1 <= len; i++)
            if (memcmp(text + i, sep, sizeof sep - 1) == 0) {
                hit = text + i;
                break;
            }
        size_t end = hit ? (size_t)(hit - text) : len;
        if (n_stories == cap) {
            cap = cap ? cap * 2 : 128;
            story *p = realloc(stories, cap * sizeof *p);
            if (!p) {
                st = ellm_fail(err, ELLM_E_NOMEM, "story task: out of memory");
                break;
            }
            stories = p;
        }
        st = split_sentences(text + pos, end - pos, &stories[n_stories], err);
        if (st == ELLM_OK && stories[n_stories].n_sent > 0) n_stories++;
        else if (st == ELLM_OK) free(stories[n_stories].sent);
        pos = hit ? end + sizeof sep - 1 : len;
    }
    size_t eligible = 0, donors = 0;
    for (size_t i = 0; i < n_stories; i++) {
        eligible += stories[i].n_sent >= 3;
        donors += stories[i].n_sent >= 2;
    }
    if (st == ELLM_OK && (eligible == 0 || donors < 4))
        st = ellm_fail(err, ELLM_E_ARG,
                       "story task: need stories of at least 3 sentences and 4 stories of 2 or more "
                       "(found %zu and %zu among %zu stories)", eligible, donors, n_stories);

    ellm_rng rng;
    ellm_rng_seed(&rng, seed);
    char *buf = NULL;
    size_t blen = 0, bcap = 0;
    for (size_t s = 0; s < n_stories && st == ELLM_OK; s++) {
        const story *sty = &stories[s];
        if (sty->n_sent < 3) continue;
        /* context = sentences [0, k), gold = sentence k, k in [2, n_sent - 1];
         * per_story distinct cuts, drawn first, emitted in story order */
        size_t cuts[ELLM_STORY_MAX_CUTS];
        size_t n_cuts = ELLM_MIN((size_t)per_story, sty->n_sent - 2);
        for (size_t c = 0; c < n_cuts; c++) {
            bool dup;
            do {
                cuts[c] = 2 + (size_t)(ellm_rng_next(&rng) % (sty->n_sent - 2));
                dup = false;
                for (size_t q = 0; q < c; q++) dup = dup || cuts[q] == cuts[c];
            } while (dup);
        }
        for (size_t c = 1; c < n_cuts; c++) /* ascending */
            for (size_t q = c; q > 0 && cuts[q - 1] > cuts[q]; q--) {
                size_t t = cuts[q];
                cuts[q] = cuts[q - 1];
                cuts[q - 1] = t;
            }
        for (size_t c = 0; c < n_cuts && st == ELLM_OK; c++) {
            if (max_tasks && *n_tasks >= max_tasks) break;
            st = emit_task(stories, n_stories, s, cuts[c], &rng, &buf, &blen, &bcap, err);
            if (st == ELLM_OK) (*n_tasks)++;
        }
    }
    for (size_t i = 0; i < n_stories; i++) free(stories[i].sent);
    free(stories);
    if (st != ELLM_OK) {
        free(buf);
        *n_tasks = 0;
        return st;
    }
    *out = buf;
    *out_len = blen;
    return ELLM_OK;
}
