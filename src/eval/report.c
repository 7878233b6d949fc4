/* report.c - the paper's Table I (sizes, perplexity, accuracy for fp16 /
 * uint8 / uint4) and Figure 4 (histograms of the quantized values). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "common/pool.h"
#include "container/container.h"
#include "eval/eval.h"
#include "quant/quant.h"

/* ---- a growable text buffer ---------------------------------------------- */

typedef struct tbuf {
    char *s;
    size_t n, cap;
    bool oom;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) ELLM_PRINTF(2, 3);
static void tb_printf(tbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->n + (size_t)need < b->cap) {
            b->n += (size_t)need;
            return;
        }
        size_t nc = ELLM_MAX(b->cap * 2, b->n + (size_t)need + 1024);
        char *p = realloc(b->s, nc);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
}

static ellm_status write_text(const char *path, const char *s, size_t n, ellm_error *err) {
    ellm_outfile o;
    ellm_status st = ellm_outfile_open(&o, path, err);
    if (st == ELLM_OK) st = ellm_outfile_write(&o, s, n, err);
    if (st == ELLM_OK) st = ellm_outfile_commit(&o, err);
    if (st != ELLM_OK) ellm_outfile_abort(&o);
    return st;
}

/* ---- Figure 4 ------------------------------------------------------------ */

ellm_status ellm_eval_histogram(const char *ellm_path, int bits, int n_threads, ellm_histogram *h,
                                ellm_error *err) {
    memset(h, 0, sizeof *h);
    h->bits = bits;
    if (bits != 8 && bits != 4) return ellm_fail(err, ELLM_E_ARG, "histogram: bits must be 8 or 4");
    ellm_file *f = NULL;
    ellm_pool *pool = NULL;
    ellm_status st = ellm_file_open(ellm_path, &f, err);
    if (st == ELLM_OK) st = ellm_pool_create(n_threads, &pool, err);
    for (size_t i = 0; st == ELLM_OK && i < f->n_tensors; i++) {
        if (f->tensors[i].bits != bits) continue;
        ellm_qtensor q;
        st = ellm_file_load_tensors(f, &i, 1, pool, 0, &q, NULL, err);
        if (st != ELLM_OK) break;
        if (bits == 8) {
            for (uint64_t k = 0; k < q.n; k++) h->counts[q.data[k]]++;
        } else {
            for (uint64_t k = 0; k < q.n; k++) h->counts[(q.data[k / 2] >> (4 * (k & 1))) & 15]++;
        }
        h->total += q.n;
        h->n_tensors++;
        ellm_qtensor_free(&q);
    }
    ellm_pool_destroy(pool);
    ellm_file_close(f);
    if (st != ELLM_OK) return st;
    double H = 0;
    for (int v = 0; v < (1 << bits); v++)
        if (h->counts[v]) {
            double p = (double)h->counts[v] / (double)h->total;
            H -= p * log2(p);
        }
    h->entropy_bits = H;
    return ELLM_OK;
}

static void svg_escape(tbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '<') tb_printf(b, "&lt;");
        else if (*s == '>') tb_printf(b, "&gt;");
        else if (*s == '&') tb_printf(b, "&amp;");
        else if (*s == '"') tb_printf(b, "&quot;");
        else tb_printf(b, "%c", *s);
    }
}

/* One panel: bars of the share of weights at each integer value. */
static void svg_panel(tbuf *b, const ellm_histogram *h, double x0, double y0, double w, double ht) {
    const int nv = 1 << h->bits;
    const double left = 56, right = 12, top = 34, bottom = 44;
    const double pw = w - left - right, ph = ht - top - bottom;
    const double px = x0 + left, py = y0 + top;
    double maxp = 0;
    for (int v = 0; v < nv; v++)
        if (h->total) maxp = ELLM_MAX(maxp, (double)h->counts[v] / (double)h->total);
    /* y axis up to a round percentage */
    double ymax = 100 * maxp, step = 1;
    const double steps[] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25, 50};
    for (size_t i = 0; i < ELLM_ARRAY_LEN(steps); i++)
        if (ymax / steps[i] <= 6) {
            step = steps[i];
            break;
        }
    ymax = step * ceil(ymax / step + 1e-9);
    if (ymax <= 0) ymax = 1;
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">uint%d: %llu weights, %zu "
                 "tensors, entropy %.3f bits</text>\n",
              px, y0 + 20, h->bits, (unsigned long long)h->total, h->n_tensors, h->entropy_bits);
    /* grid and y labels */
    for (double y = 0; y <= ymax + 1e-9; y += step) {
        double yy = py + ph - ph * y / ymax;
        tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", px, yy, px + pw, yy);
        tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g%%</text>\n", px - 6,
                  yy + 4, y);
    }
    /* bars */
    double bw = pw / nv;
    for (int v = 0; v < nv; v++) {
        double p = h->total ? 100.0 * (double)h->counts[v] / (double)h->total : 0;
        double bh = ph * p / ymax;
        tb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#3572b0\"/>\n",
                  px + v * bw + (nv <= 16 ? bw * 0.1 : 0), py + ph - bh, nv <= 16 ? bw * 0.8 : bw, bh);
    }
    /* axes and x labels */
    tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", px, py + ph, px + pw,
              py + ph);
    tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", px, py, px, py + ph);
    int tick = nv <= 16 ? 1 : 32;
    for (int v = 0; v < nv; v += tick) {
        double xx = px + (v + 0.5) * bw;
        tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n", xx,
                  py + ph + 16, v);
    }
    if (nv > 16)
        tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n",
                  px + (nv - 0.5) * bw, py + ph + 16, nv - 1);
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">quantized value q</text>\n",
              px + pw / 2, py + ph + 34);
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f "
                 "%.1f)\">share of weights</text>\n",
              x0 + 14, py + ph / 2, x0 + 14, py + ph / 2);
}

ellm_status ellm_write_histogram_svg(const ellm_histogram *h, size_t n, const char *title, const char *path,
                                     ellm_error *err) {
    const double pw = 620, ph = 360, head = 40;
    double W = pw * (double)(n ? n : 1), H = ph + head;
    tbuf b = {0};
    tb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
                  "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
              W, H, W, H);
    tb_printf(&b, "<text x=\"16\" y=\"26\" font-size=\"17\">");
    svg_escape(&b, title);
    tb_printf(&b, "</text>\n");
    for (size_t i = 0; i < n; i++) svg_panel(&b, &h[i], pw * (double)i, head, pw, ph);
    tb_printf(&b, "</svg>\n");
    ellm_status st = b.oom ? ellm_fail(err, ELLM_E_NOMEM, "out of memory writing %s", path)
                           : write_text(path, b.s, b.n, err);
    free(b.s);
    return st;
}

/* ---- Table I --------------------------------------------------------------- */

static void stage(const ellm_report_options *o, const char *what) {
    if (o->on_stage) o->on_stage(o->stage_user, what);
}

static ellm_status evaluate(const ellm_report_options *o, ellm_report_row *row, ellm_error *err) {
    ellm_model *model = NULL;
    ellm_lm lm;
    char what[1200];
    snprintf(what, sizeof what, "%s: loading %s", row->name, row->path);
    stage(o, what);
    ellm_status st = ellm_eval_open(row->path, o->n_threads, NULL, NULL, &model, &lm, err);
    if (st != ELLM_OK) return st;
    if (st == ELLM_OK && o->text_path) {
        snprintf(what, sizeof what, "%s: perplexity over %s", row->name, o->text_path);
        stage(o, what);
        uint8_t *text;
        size_t len;
        st = ellm_read_file(o->text_path, &text, &len, err);
        if (st == ELLM_OK) {
            ellm_ppl_options po = {.n_ctx = o->n_ctx, .limit = (int)o->limit, .progress = o->progress};
            st = ellm_eval_perplexity(&lm, (const char *)text, len, &po, &row->ppl, err);
            free(text);
        }
        row->has_ppl = st == ELLM_OK;
    }
    if (st == ELLM_OK && o->hellaswag_path) {
        snprintf(what, sizeof what, "%s: multiple choice on %s", row->name, o->hellaswag_path);
        stage(o, what);
        ellm_mc_set set;
        st = ellm_mc_load(o->hellaswag_path, &set, err);
        if (st == ELLM_OK) {
            ellm_mc_options mo = {.shots = o->hellaswag_shots, .limit = o->limit, .seed = 1, .progress = o->progress};
            st = ellm_eval_multiple_choice(&lm, &set, &mo, &row->hellaswag, err);
            ellm_mc_free(&set);
        }
        row->has_hellaswag = st == ELLM_OK;
    }
    if (st == ELLM_OK && o->gsm8k_path) {
        snprintf(what, sizeof what, "%s: GSM8k on %s", row->name, o->gsm8k_path);
        stage(o, what);
        ellm_gsm_set test = {0}, train = {0};
        st = ellm_gsm_load(o->gsm8k_path, &test, err);
        if (st == ELLM_OK && o->train_path) st = ellm_gsm_load(o->train_path, &train, err);
        if (st == ELLM_OK) {
            ellm_gsm_options go = {.shots = o->train_path ? o->gsm8k_shots : 0, .limit = o->limit,
                                   .max_tokens = o->gsm8k_max_tokens, .seed = 1, .progress = o->progress};
            st = ellm_eval_gsm8k(&lm, &test, &train, &go, &row->gsm8k, err);
        }
        ellm_gsm_free(&test);
        ellm_gsm_free(&train);
        row->has_gsm8k = st == ELLM_OK;
    }
    ellm_eval_close(model, &lm);
    if (st != ELLM_OK) ellm_fail_prefix(err, "report: %s", row->name);
    return st;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

static void human(uint64_t n, char *buf, size_t size) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0) snprintf(buf, size, "%llu B", (unsigned long long)n);
    else snprintf(buf, size, "%.2f %s", v, u[i]);
}

static json_t *row_json(const ellm_report_row *r) {
    json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:f}", "name", r->name, "path", r->path, "bits",
                          r->bits, "params", (json_int_t)r->params, "size_bytes", (json_int_t)r->size_bytes,
                          "effective_bits_per_weight", r->effective_bits, "entropy_bits_per_weight",
                          r->entropy_bits, "coded_bits_per_weight", r->coded_bits);
    if (r->bits == 16) { /* not coded: no entropy to speak of */
        json_object_set_new(o, "entropy_bits_per_weight", json_null());
        json_object_set_new(o, "coded_bits_per_weight", json_null());
    }
    if (r->has_ppl)
        json_object_set_new(o, "perplexity",
                            json_pack("{s:f, s:f, s:f, s:I, s:i, s:i}", "perplexity", r->ppl.ppl, "stderr",
                                      r->ppl.ppl_stderr, "mean_nll", r->ppl.mean_nll, "tokens_scored",
                                      (json_int_t)r->ppl.tokens_scored, "ctx", r->ppl.n_ctx, "windows",
                                      r->ppl.windows));
    if (r->has_hellaswag)
        json_object_set_new(o, "hellaswag",
                            json_pack("{s:f, s:f, s:f, s:f, s:I}", "acc", r->hellaswag.acc, "acc_stderr",
                                      r->hellaswag.acc_stderr, "acc_norm", r->hellaswag.acc_norm, "acc_norm_stderr",
                                      r->hellaswag.acc_norm_stderr, "n", (json_int_t)r->hellaswag.n));
    if (r->has_gsm8k)
        json_object_set_new(o, "gsm8k",
                            json_pack("{s:f, s:f, s:I}", "accuracy", r->gsm8k.accuracy, "accuracy_stderr",
                                      r->gsm8k.accuracy_stderr, "n", (json_int_t)r->gsm8k.n));
    return o;
}

static void markdown(tbuf *b, const char *source, const ellm_report_options *o, const ellm_report_row *rows,
                     const ellm_histogram *h, bool generated) {
    tb_printf(b, "# entrollm report: %s\n\n", base_name(source));
    tb_printf(b, "Source model `%s`, %llu parameters. entrollm %s, threads: %d, CPU features: %s.\n\n", source,
              (unsigned long long)rows[0].params, ellm_version(), o->n_threads ? o->n_threads : ellm_cpu_count(),
              ellm_cpu_features());
    if (generated)
        tb_printf(b, "**The weights of this model are generated, not trained: its accuracy figures mean "
                     "nothing about any real model.**\n\n");
    tb_printf(b, "## Table I\n\n| model | params | bits/weight (effective) | size | entropy bits/weight |");
    if (o->text_path) tb_printf(b, " perplexity |");
    if (o->hellaswag_path) tb_printf(b, " acc | acc_norm |");
    if (o->gsm8k_path) tb_printf(b, " GSM8k |");
    tb_printf(b, "\n|---|---:|---:|---:|---:|");
    if (o->text_path) tb_printf(b, "---:|");
    if (o->hellaswag_path) tb_printf(b, "---:|---:|");
    if (o->gsm8k_path) tb_printf(b, "---:|");
    tb_printf(b, "\n");
    for (int i = 0; i < 3; i++) {
        const ellm_report_row *r = &rows[i];
        char size[32];
        human(r->size_bytes, size, sizeof size);
        tb_printf(b, "| %s | %llu | %.3f | %s | ", r->name, (unsigned long long)r->params, r->effective_bits, size);
        if (r->bits == 16) tb_printf(b, "— |");
        else tb_printf(b, "%.3f |", r->entropy_bits);
        if (o->text_path) tb_printf(b, " %.4f ± %.4f |", r->ppl.ppl, r->ppl.ppl_stderr);
        if (o->hellaswag_path)
            tb_printf(b, " %.2f%% ± %.2f | %.2f%% ± %.2f |", 100 * r->hellaswag.acc, 100 * r->hellaswag.acc_stderr,
                      100 * r->hellaswag.acc_norm, 100 * r->hellaswag.acc_norm_stderr);
        if (o->gsm8k_path) tb_printf(b, " %.2f%% ± %.2f |", 100 * r->gsm8k.accuracy, 100 * r->gsm8k.accuracy_stderr);
        tb_printf(b, "\n");
    }
    tb_printf(b, "\nHow each column was measured:\n\n");
    tb_printf(b, "- **fp16** is the float source evaluated as it is (float32 in memory); its size is the fp16 "
                 "size, 2 bytes per parameter. **uint8 / uint4** are the `.ellm` files beside this report "
                 "(per-tensor mixed quantization, Huffman-coded); their size is the whole file (weights, "
                 "scales, code tables, segment offsets, tokenizer, metadata) and bits/weight = size × 8 / "
                 "parameters. Entropy: size-weighted Shannon entropy of each tensor's integers.\n");
    if (o->text_path)
        tb_printf(b, "- Perplexity over `%s` in llama.cpp's convention: windows of %d tokens, each starting at "
                     "BOS, the later half scored; %llu tokens scored%s. ± is the standard error.\n",
                  o->text_path, rows[0].ppl.n_ctx, (unsigned long long)rows[0].ppl.tokens_scored,
                  o->limit ? " (limited)" : "");
    if (o->hellaswag_path)
        tb_printf(b, "- Multiple choice on `%s`, %d-shot, %zu tasks: acc by the summed log-likelihood of each "
                     "ending, acc_norm by it divided by the ending's bytes (lm-eval-harness). Chance is 25%%.\n",
                  o->hellaswag_path, o->hellaswag_shots, rows[0].hellaswag.n);
    if (o->gsm8k_path)
        tb_printf(b, "- GSM8k on `%s`, %d-shot chain of thought (exemplars from `%s`), %zu questions, greedy, "
                     "exact match of the final number.\n",
                  o->gsm8k_path, o->train_path ? o->gsm8k_shots : 0, o->train_path ? o->train_path : "-",
                  rows[0].gsm8k.n);
    tb_printf(b, "\n## Figure 4: quantized values\n\n![Figure 4](figure4.svg)\n\n");
    for (int i = 0; i < 2; i++)
        tb_printf(b, "- uint%d: %llu weights in %zu tensors; entropy of the pooled histogram %.3f bits/weight "
                     "(the per-tensor entropies, which the coder meets, average %.3f).\n",
                  h[i].bits, (unsigned long long)h[i].total, h[i].n_tensors, h[i].entropy_bits, rows[1 + i].entropy_bits);
    tb_printf(b, "\nThe same figures are in `report.json`.\n");
}

static bool metadata_says_generated(const char *ellm_path) {
    ellm_file *f = NULL;
    if (ellm_file_open(ellm_path, &f, NULL) != ELLM_OK) return false;
    bool gen = false;
    json_t *m = json_loads(ellm_file_metadata_json(f), 0, NULL);
    if (m) gen = json_is_true(json_object_get(m, "weights_generated"));
    json_decref(m);
    ellm_file_close(f);
    return gen;
}

ellm_status ellm_eval_report(const char *source, const ellm_report_options *o, ellm_report_row rows[3],
                             ellm_error *err) {
    memset(rows, 0, 3 * sizeof *rows);
    if (!o->out_dir) return ellm_fail(err, ELLM_E_ARG, "report: no output directory");
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return ellm_fail(err, ELLM_E_IO, "%s: cannot create directory: %s", o->out_dir, strerror(errno));
    if (!ellm_path_is_dir(o->out_dir)) return ellm_fail(err, ELLM_E_IO, "%s: not a directory", o->out_dir);
    if (o->gsm8k_path && o->gsm8k_shots > 0 && !o->train_path)
        return ellm_fail(err, ELLM_E_ARG, "report: GSM8k with %d shots needs the training split", o->gsm8k_shots);

    /* rows 1, 2: compress */
    ellm_status st = ELLM_OK;
    const int bits[2] = {8, 4};
    for (int i = 0; i < 2 && st == ELLM_OK; i++) {
        ellm_report_row *r = &rows[1 + i];
        snprintf(r->name, sizeof r->name, "uint%d", bits[i]);
        char file[32];
        snprintf(file, sizeof file, "model-uint%d.ellm", bits[i]);
        char *path = ellm_path_join(o->out_dir, file);
        if (!path) return ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        snprintf(r->path, sizeof r->path, "%s", path);
        free(path);
        char what[1200];
        snprintf(what, sizeof what, "compressing %s to %s", source, r->path);
        stage(o, what);
        ellm_compress_options co;
        ellm_compress_options_default(&co);
        co.bits = bits[i];
        co.n_threads = o->n_threads;
        co.progress = o->progress.fn;
        co.progress_user = o->progress.user;
        ellm_compress_report *cr = NULL;
        st = ellm_compress(source, r->path, &co, &cr, err);
        if (st != ELLM_OK) break;
        r->bits = bits[i];
        r->params = cr->params;
        r->size_bytes = cr->file_bytes;
        r->effective_bits = cr->effective_bits_per_weight;
        r->entropy_bits = cr->entropy_bits_per_weight;
        r->coded_bits = cr->coded_bits_per_weight;
        if (i == 0) {
            snprintf(rows[0].name, sizeof rows[0].name, "fp16");
            snprintf(rows[0].path, sizeof rows[0].path, "%s", source);
            rows[0].bits = 16;
            rows[0].params = cr->params;
            rows[0].size_bytes = cr->fp16_bytes;
            rows[0].effective_bits = cr->params ? 8.0 * (double)cr->fp16_bytes / (double)cr->params : 0;
        }
        ellm_compress_report_free(cr);
    }
    for (int i = 0; i < 3 && st == ELLM_OK; i++)
        if (o->text_path || o->hellaswag_path || o->gsm8k_path) st = evaluate(o, &rows[i], err);
    if (st != ELLM_OK) return st;

    /* Figure 4 */
    stage(o, "histograms of the quantized values");
    ellm_histogram h[2];
    for (int i = 0; i < 2 && st == ELLM_OK; i++) st = ellm_eval_histogram(rows[1 + i].path, bits[i], o->n_threads, &h[i], err);
    bool generated = st == ELLM_OK && metadata_says_generated(rows[1].path);
    char title[512];
    snprintf(title, sizeof title, "Figure 4: quantized weight values of %s (uint8 and uint4, all quantized tensors)%s",
             base_name(source), generated ? " - GENERATED weights, not trained" : "");
    char *svg = ellm_path_join(o->out_dir, "figure4.svg");
    char *md_path = ellm_path_join(o->out_dir, "report.md");
    char *js_path = ellm_path_join(o->out_dir, "report.json");
    if (!svg || !md_path || !js_path) st = st ? st : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
    if (st == ELLM_OK) st = ellm_write_histogram_svg(h, 2, title, svg, err);

    if (st == ELLM_OK) {
        tbuf md = {0};
        markdown(&md, source, o, rows, h, generated);
        st = md.oom ? ellm_fail(err, ELLM_E_NOMEM, "out of memory") : write_text(md_path, md.s, md.n, err);
        free(md.s);
    }
    if (st == ELLM_OK) {
        json_t *arr = json_array();
        for (int i = 0; i < 3; i++) json_array_append_new(arr, row_json(&rows[i]));
        json_t *hist = json_array();
        for (int i = 0; i < 2; i++) {
            json_t *counts = json_array();
            for (int v = 0; v < (1 << h[i].bits); v++) json_array_append_new(counts, json_integer((json_int_t)h[i].counts[v]));
            json_array_append_new(hist, json_pack("{s:i, s:I, s:I, s:f, s:o}", "bits", h[i].bits, "total",
                                                  (json_int_t)h[i].total, "tensors", (json_int_t)h[i].n_tensors,
                                                  "entropy_bits", h[i].entropy_bits, "counts", counts));
        }
        json_t *root = json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "source", source, "entrollm", ellm_version(),
                                 "cpu_features", ellm_cpu_features(), "weights_generated", generated, "rows", arr,
                                 "histograms", hist);
        if (o->text_path) json_object_set_new(root, "text", json_string(o->text_path));
        if (o->hellaswag_path) json_object_set_new(root, "hellaswag_file", json_string(o->hellaswag_path));
        if (o->gsm8k_path) json_object_set_new(root, "gsm8k_file", json_string(o->gsm8k_path));
        json_object_set_new(root, "limit", json_integer((json_int_t)o->limit));
        char *text = json_dumps(root, JSON_INDENT(1));
        json_decref(root);
        st = text ? write_text(js_path, text, strlen(text), err) : ellm_fail(err, ELLM_E_NOMEM, "out of memory");
        free(text);
    }
    free(svg), free(md_path), free(js_path);
    return st;
}
