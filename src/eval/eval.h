/*
 * eval.h - evaluations: perplexity (llama.cpp convention), HellaSwag-style
 * multiple choice (lm-eval-harness scoring), GSM8k (k-shot chain of thought),
 * the latency table (the paper's Table II) and the report (Table I, Figure 4).
 * Conventions and formulas: docs/EVALUATION.md.
 *
 * Every evaluation is written against ellm_lm, a small interface that turns
 * token sequences into log-probabilities (and next-token logits for greedy
 * generation). ellm_lm_from_model() puts a loaded ellm_model behind it and
 * reuses the KV cache for the prefix two consecutive calls share; tests put a
 * fake model behind it.
 */
#ifndef ELLM_EVAL_H
#define ELLM_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ctype.h>
#include <string.h>

#include "entrollm.h"

/* ------------------------------------------------------------------------- */
/* The language model as the evaluations see it                              */
/* ------------------------------------------------------------------------- */

typedef struct ellm_lm {
    void *ctx;
    int n_ctx;       /* longest token sequence one call may take */
    int vocab_size;
    int32_t bos;     /* -1 if none */
    int32_t eos;     /* -1 if none */
    /* Encodes text; *ids is malloc'd. add_bos prepends BOS when there is one. */
    ellm_status (*tokenize)(void *ctx, const char *text, size_t len, int add_bos, int32_t **ids,
                            size_t *n_ids, ellm_error *err);
    /* The bytes a generated token stands for; returns the length. */
    size_t (*piece)(void *ctx, int32_t id, const char **piece);
    /* out[i - first] = ln P(tokens[i] | tokens[0..i-1]) for i in [first, n).
     * Needs 1 <= first <= n <= n_ctx. */
    ellm_status (*logprobs)(void *ctx, const int32_t *tokens, size_t n, size_t first, double *out,
                            ellm_error *err);
    /* The vocab_size logits of the token following tokens[0..n-1]; 1 <= n <= n_ctx. */
    ellm_status (*next_logits)(void *ctx, const int32_t *tokens, size_t n, float *logits,
                               ellm_error *err);
} ellm_lm;

/* Puts a loaded model behind ellm_lm (the model must outlive lm). n_ctx is
 * the model's context length. Release with ellm_lm_release. */
ellm_status ellm_lm_from_model(ellm_model *model, ellm_lm *lm, ellm_error *err);
void ellm_lm_release(ellm_lm *lm);

/* Loads a model (.ellm or source) with n_threads (0 = all cores) and puts
 * it behind lm. Close with ellm_eval_close. */
ellm_status ellm_eval_open(const char *path, int n_threads, ellm_progress_fn progress, void *progress_user,
                           ellm_model **model, ellm_lm *lm, ellm_error *err);
void ellm_eval_close(ellm_model *model, ellm_lm *lm);

/* ln softmax(logits)[target], computed stably in double. */
double ellm_log_softmax_at(const float *logits, int n, int32_t target);

/* Progress of a long evaluation (done out of total units). */
typedef struct ellm_eval_progress {
    ellm_progress_fn fn; /* may be NULL */
    void *user;
} ellm_eval_progress;

/* ------------------------------------------------------------------------- */
/* Statistics                                                                */
/* ------------------------------------------------------------------------- */

/* Standard error of the mean of a 0/1 sample with k ones out of n, as
 * lm-eval-harness computes it: sqrt(p(1-p)/(n-1)); 0 when n < 2. */
double ellm_stderr_binary(size_t k, size_t n);
/* Median of n values (sorts a copy); 0 when n == 0. */
double ellm_median(const double *v, size_t n);

/* ------------------------------------------------------------------------- */
/* Perplexity (llama.cpp's `perplexity` convention)                           */
/* ------------------------------------------------------------------------- */

typedef struct ellm_ppl_options {
    int n_ctx;        /* window length; 0 = min(512, model context) */
    int limit;        /* at most this many windows; 0 = all */
    ellm_eval_progress progress;
    /* Called after each window with the running estimate (may be NULL). */
    void (*on_window)(void *user, int window, int n_windows, double ppl, double ppl_stderr);
    void *window_user;
} ellm_ppl_options;

typedef struct ellm_ppl_result {
    double ppl;          /* exp(mean NLL) */
    double ppl_stderr;   /* ppl * stderr(mean NLL), as llama.cpp prints it */
    double mean_nll;     /* nats per token */
    double nll_stderr;
    uint64_t tokens_scored;
    uint64_t tokens_total; /* tokens in the whole text (incl. BOS) */
    int n_ctx;
    int windows;
} ellm_ppl_result;

/* Tokenizes the whole text with BOS, cuts it into non-overlapping windows of
 * n_ctx tokens (the tail that does not fill a window is dropped), sets each
 * window's first token to BOS and scores the tokens at window positions
 * n_ctx/2+1 .. n_ctx-1, each given all the window's earlier tokens. Needs
 * at least 2*n_ctx tokens, as llama.cpp does. */
ellm_status ellm_eval_perplexity(const ellm_lm *lm, const char *text, size_t len,
                                 const ellm_ppl_options *opts, ellm_ppl_result *res,
                                 ellm_error *err);

/* Teacher-forced mean NLL over documents separated by `separator` (e.g.
 * "<|endoftext|>"): each document (whitespace-trimmed) is tokenized with BOS,
 * cut to the model's context, and every token after BOS is scored given all
 * before it (tokens_total counts the tokens before the cut). */
ellm_status ellm_eval_doc_nll(const ellm_lm *lm, const char *text, size_t len, const char *separator,
                              int limit_docs, const ellm_eval_progress *progress,
                              ellm_ppl_result *res, ellm_error *err);

/* ------------------------------------------------------------------------- */
/* Multiple choice (HellaSwag and the story-ending task)                     */
/* ------------------------------------------------------------------------- */

#define ELLM_MC_ENDINGS 4

typedef struct ellm_mc_task {
    char *context;                   /* "activity_label: ctx" for HellaSwag */
    char *endings[ELLM_MC_ENDINGS];
    int label;                       /* 0..3 */
} ellm_mc_task;

typedef struct ellm_mc_set {
    size_t n;
    ellm_mc_task *tasks;
} ellm_mc_set;

/* llama.cpp's text form: six lines per task (context, gold label 0..3, four
 * endings); LF or CRLF. `what` names the input in messages. */
ellm_status ellm_mc_parse_text(const char *data, size_t len, const char *what, ellm_mc_set *out,
                               ellm_error *err);
/* The original HellaSwag .jsonl (activity_label, ctx_a/ctx_b or ctx, endings,
 * label), preprocessed exactly as lm-eval-harness does. */
ellm_status ellm_mc_parse_jsonl(const char *data, size_t len, const char *what, ellm_mc_set *out,
                                ellm_error *err);
/* Reads a file in either form (JSON Lines when its first non-blank byte is '{'). */
ellm_status ellm_mc_load(const char *path, ellm_mc_set *out, ellm_error *err);
void ellm_mc_free(ellm_mc_set *set);
/* lm-eval-harness's HellaSwag text preprocessing; returns a malloc'd string. */
char *ellm_hellaswag_preprocess(const char *s);

typedef struct ellm_mc_options {
    int shots;        /* exemplars (other tasks with their gold ending) prepended */
    size_t limit;     /* first `limit` tasks; 0 = all */
    uint64_t seed;    /* picks the exemplars */
    ellm_eval_progress progress;
} ellm_mc_options;

typedef struct ellm_mc_result {
    size_t n;
    size_t correct, correct_norm;
    double acc, acc_stderr;
    double acc_norm, acc_norm_stderr;
    size_t truncated; /* tasks whose prompt was cut on the left to fit n_ctx */
} ellm_mc_result;

/* Scores every ending by the sum of its tokens' log-probabilities given the
 * context (context tokens = tokenize(BOS + context), ending tokens = the rest
 * of tokenize(BOS + context + " " + ending)); acc picks the largest sum,
 * acc_norm the largest sum divided by the ending's length in bytes. */
ellm_status ellm_eval_multiple_choice(const ellm_lm *lm, const ellm_mc_set *set,
                                      const ellm_mc_options *opts, ellm_mc_result *res,
                                      ellm_error *err);

#define ELLM_STORY_MAX_CUTS 8

/* Builds the story-ending task from TinyStories-style text (stories separated
 * by "<|endoftext|>"): for every story with at least 3 sentences, per_story
 * distinct cut points k >= 2 are drawn (fewer if the story has fewer); for
 * each, the context is sentences 1..k, the gold ending sentence k+1, and three
 * distractors are sentences (not first ones) drawn from three other stories.
 * At most max_tasks tasks (0 = no limit). Output is in the six-line text form;
 * *out is malloc'd. Deterministic for a given seed. */
ellm_status ellm_build_story_task(const char *text, size_t len, uint64_t seed, int per_story, size_t max_tasks,
                                  char **out, size_t *out_len, size_t *n_tasks, ellm_error *err);

/* ------------------------------------------------------------------------- */
/* GSM8k                                                                     */
/* ------------------------------------------------------------------------- */

typedef struct ellm_gsm_item {
    char *question;
    char *answer;     /* the reference solution, "#### N" last */
    char target[64];  /* N, normalised */
} ellm_gsm_item;

typedef struct ellm_gsm_set {
    size_t n;
    ellm_gsm_item *items;
} ellm_gsm_set;

/* JSON Lines {"question", "answer"}; every answer must hold "#### N". */
ellm_status ellm_gsm_parse(const char *data, size_t len, const char *what, ellm_gsm_set *out,
                           ellm_error *err);
ellm_status ellm_gsm_load(const char *path, ellm_gsm_set *out, ellm_error *err);
void ellm_gsm_free(ellm_gsm_set *set);

/* Normalises a number as written ("1,000" "$5" "5.0" "-3." "+2" "0.50"):
 * drops '$', ',' and a leading '+', trailing zeros of a fraction and a bare
 * trailing '.'; "-0" becomes "0". Returns false when s is not a number. */
bool ellm_gsm_normalize(const char *s, size_t len, char *out, size_t cap);
/* The reference answer: the number after the last "####". */
bool ellm_gsm_extract_reference(const char *answer, char *out, size_t cap);
/* The model's answer: the first number after the last "The answer is"
 * (case-insensitive), else the last number in the text. */
bool ellm_gsm_extract_prediction(const char *text, char *out, size_t cap);
/* One exemplar: "Question: Q\nAnswer: R The answer is N." where R is the
 * reference reasoning with calculator annotations <<...>> removed and lines
 * joined by spaces. malloc'd. */
char *ellm_gsm_exemplar(const ellm_gsm_item *item);

typedef struct ellm_gsm_options {
    int shots;            /* default 8 */
    size_t limit;         /* first `limit` test questions; 0 = all */
    int max_tokens;       /* generated tokens per answer; default 256 */
    uint64_t seed;        /* picks the exemplars from train */
    ellm_eval_progress progress;
    /* Called per question with the generated text (may be NULL). */
    void (*on_item)(void *user, size_t index, const char *generated, const char *predicted,
                    const char *target, int correct);
    void *item_user;
} ellm_gsm_options;

typedef struct ellm_gsm_result {
    size_t n, correct;
    double accuracy, accuracy_stderr;
    size_t truncated; /* prompts cut on the left to fit n_ctx */
    size_t generated_tokens;
} ellm_gsm_result;

/* Prompt = the exemplars joined by "\n\n", then "\n\nQuestion: Q\nAnswer:";
 * greedy generation until "Question:", a blank line, EOS or max_tokens. */
ellm_status ellm_eval_gsm8k(const ellm_lm *lm, const ellm_gsm_set *test, const ellm_gsm_set *train,
                            const ellm_gsm_options *opts, ellm_gsm_result *res, ellm_error *err);

/* ------------------------------------------------------------------------- */
/* Latency (the paper's Table II)                                            */
/* ------------------------------------------------------------------------- */

typedef struct ellm_latency_options {
    int prompt_tokens;   /* P: prefill length */
    int gen_tokens;      /* N: tokens generated after the prompt */
    int repeat;          /* R runs; medians are reported (0 = 5) */
    int n_threads;       /* 0 = all cores */
    ellm_eval_progress progress;
} ellm_latency_options;

typedef struct ellm_latency_row {
    int weight_bits;
    ellm_coder coder;     /* of the file's integer tensors */
    uint64_t file_bytes;
    int prompt_tokens, gen_tokens, repeat;
    /* medians over the runs, seconds */
    double load_s;        /* ellm_model_load: open, checksums, parallel decode, binding */
    double decode_s;      /* the parallel entropy decode alone (0 for RAW) */
    double prefill_s;     /* one forward pass over the P prompt tokens */
    double per_token_s;   /* mean time of one generation step over the N tokens */
    double ttft_s;        /* time to first token: load + prefill (+ argmax) */
    bool weights_generated; /* the file's metadata says the weights are not trained */
} ellm_latency_row;

/* R times: load the model from path, prefill P tokens, generate N greedily. */
ellm_status ellm_eval_latency(const char *path, const ellm_latency_options *opts, ellm_latency_row *row,
                              ellm_error *err);

/* Writes the same quantized weights as in_path (decoded, checksums checked)
 * with the RAW coder (plain integers, uint4 packed) into out_path, with the
 * same metadata (quantization.coder set to "raw") and blobs. */
ellm_status ellm_eval_store_raw(const char *in_path, const char *out_path, int n_threads, ellm_error *err);

/* ------------------------------------------------------------------------- */
/* The report (the paper's Table I and Figure 4)                             */
/* ------------------------------------------------------------------------- */

/* Histogram of the quantized integers of every integer tensor of one bit
 * width in a .ellm file (decoded one tensor at a time). */
typedef struct ellm_histogram {
    int bits;              /* 8 or 4 */
    uint64_t counts[256];  /* 2^bits used */
    uint64_t total;
    double entropy_bits;   /* of this pooled histogram */
    size_t n_tensors;
} ellm_histogram;

ellm_status ellm_eval_histogram(const char *ellm_path, int bits, int n_threads, ellm_histogram *h,
                                ellm_error *err);
/* Writes the histograms side by side as an SVG image (atomically). */
ellm_status ellm_write_histogram_svg(const ellm_histogram *h, size_t n, const char *title, const char *path,
                                     ellm_error *err);

typedef struct ellm_report_options {
    const char *text_path;       /* perplexity text (llama.cpp windows); NULL = skip */
    const char *hellaswag_path;  /* NULL = skip */
    const char *gsm8k_path;      /* NULL = skip */
    const char *train_path;      /* GSM8k exemplars */
    size_t limit;                /* windows / tasks / questions per evaluation; 0 = all */
    int n_ctx;                   /* perplexity window; 0 = default */
    int hellaswag_shots;         /* default 0 */
    int gsm8k_shots;             /* default 8 */
    int gsm8k_max_tokens;        /* default 256 */
    int n_threads;
    const char *out_dir;         /* report.md, report.json, figure4.svg, the .ellm files */
    /* Called as each stage starts (may be NULL). */
    void (*on_stage)(void *user, const char *what);
    void *stage_user;
    ellm_eval_progress progress;
} ellm_report_options;

typedef struct ellm_report_row {
    char name[16];            /* "fp16", "uint8", "uint4" */
    char path[1024];          /* the model evaluated */
    int bits;
    uint64_t params;
    uint64_t size_bytes;      /* fp16: 2 bytes per parameter; others: the .ellm file */
    double effective_bits;    /* size * 8 / params */
    double entropy_bits;      /* size-weighted entropy of the integers (0 for fp16) */
    double coded_bits;        /* coded payload bits per weight (0 for fp16) */
    bool has_ppl, has_hellaswag, has_gsm8k;
    ellm_ppl_result ppl;
    ellm_mc_result hellaswag;
    ellm_gsm_result gsm8k;
} ellm_report_row;

/* Compresses source to uint8 and uint4 (.ellm files in out_dir), evaluates
 * the float source and both files on the data given, and writes
 * out_dir/report.md, report.json and figure4.svg. rows[0..2]: fp16, uint8,
 * uint4. */
ellm_status ellm_eval_report(const char *source, const ellm_report_options *opts, ellm_report_row rows[3],
                             ellm_error *err);

/* Line cursor over a text buffer, shared by the task-file parsers: points
 * line and n at the next line (without its newline) and advances pos; false
 * at the end of the buffer. */
static inline bool ellm_next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *n) {
    if (*pos >= len) return false;
    const char *s = data + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    *line = s;
    *n = nl ? (size_t)(nl - s) : len - *pos;
    *pos += *n + (nl ? 1 : 0);
    return true;
}

/* True if the n bytes at s are all white space (a blank JSON-lines line). */
static inline bool ellm_blank(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isspace((unsigned char)s[k])) return false;
    return true;
}

struct json_t;

/* What ellm_jsonl_each calls on each object: line_no counts from 1. */
typedef ellm_status (*ellm_jsonl_fn)(void *user, const struct json_t *obj, const char *what, size_t line_no,
                                     ellm_error *err);

/* The JSON-lines reader shared by the HellaSwag .jsonl and GSM8k parsers:
 * calls fn on the object of every non-blank line of data, in order, and
 * stops at the first failure: fn's, or ELLM_E_FORMAT naming what and the
 * line when a line is not a JSON object. */
ellm_status ellm_jsonl_each(const char *data, size_t len, const char *what, ellm_jsonl_fn fn, void *user,
                            ellm_error *err);

/* The string member key of the JSON object o, NULL when absent or not a string. */
const char *ellm_json_string(const struct json_t *o, const char *key);

#endif /* ELLM_EVAL_H */
