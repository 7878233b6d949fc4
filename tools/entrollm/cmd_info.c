/* cmd_info.c - `entrollm info` and `entrollm verify`: describe and check a .ellm file. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h"
#include "container/container.h"

static const char *gran_name(ellm_granularity g) {
    return g == ELLM_GRAN_ROW ? "row" : g == ELLM_GRAN_GROUP ? "group" : "tensor";
}

static void info_usage(FILE *out, const cli_opt *opts) {
    fprintf(out, "Usage: entrollm info FILE.ellm [--json]\n\n"
                 "Prints the metadata of a .ellm file (source, configuration, quantization) and every\n"
                 "tensor: shape, scheme, bits, granularity, coder, segments, rANS classes (rows:K or cols:K\n"
                 "when K classes of rows or columns have their own frequency tables), entropy and coded\n"
                 "size.\n"
                 "The header and directory checksums are checked on open. The summary gives the bytes\n"
                 "the container adds (header, metadata JSON, directory) to the payloads and blobs.\n\n"
                 "Options:\n");
    cli_print_options(out, opts);
}

static json_t *tensor_json(const ellm_tensor_info *t) {
    json_t *shape = json_array();
    for (int d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->shape[d]));
    double bpw = t->n_params ? 8.0 * (double)(t->coded_bytes + t->meta_bytes) / (double)t->n_params : 0;
    json_t *o = json_pack("{s:s, s:o, s:I, s:s, s:i, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:f, s:f}", "name", t->name, "shape",
                     shape, "params", (json_int_t)t->n_params, "scheme", ellm_scheme_name(t->scheme), "bits", t->bits,
                     "granularity", gran_name(t->granularity), "group_size", (json_int_t)t->group_size, "coder",
                     ellm_coder_name(t->coder), "segment_symbols", (json_int_t)t->segment_symbols, "segments",
                     (json_int_t)t->n_segments, "coded_bytes", (json_int_t)t->coded_bytes, "meta_bytes",
                     (json_int_t)t->meta_bytes, "entropy_bits", t->entropy_bits, "coded_bits_per_weight", bpw);
    if (o && t->coder == ELLM_CODER_RANS) {
        json_object_set_new(o, "rans_states", json_integer(t->rans_states));
        json_object_set_new(o, "rans_classes", json_integer(t->rans_classes));
        if (t->rans_classes > 1)
            json_object_set_new(o, "rans_class_axis", json_string(t->rans_class_axis ? "columns" : "rows"));
    }
    return o;
}

/* "rows:3" when rANS gives three classes of rows their own tables, else "". */
static const char *tables_text(const ellm_tensor_info *t, char *buf, size_t cap) {
    if (t->coder != ELLM_CODER_RANS || t->rans_classes < 2) return "-";
    snprintf(buf, cap, "%s:%d", t->rans_class_axis ? "cols" : "rows", t->rans_classes);
    return buf;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    const cli_opt opts[] = {
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout: the metadata, blobs and every tensor")},
        {0},
    };
    int n_pos, rc = cli_parse("info", argc, argv, opts, &path, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (info_usage(stdout, opts), EXIT_OK) : rc;
    if (!path) return cli_usage_error("info", "missing FILE.ellm");
    ellm_file *f;
    ellm_error err = {0};
    if (ellm_file_open(path, &f, &err)) return cli_report_error(&err);

    uint64_t params = 0, payload = 0, file_bytes = f->map.size, blob_bytes = 0;
    for (size_t i = 0; i < f->n_blobs; i++) blob_bytes += f->blobs[i].size;
    /* file = header + metadata + blobs + payloads + directory (docs/FORMAT.md) */
    const uint64_t header_bytes = ELLM_HEADER_SIZE;
    double entropy_sum = 0;
    json_t *tensors = json_array();
    if (!json) printf("%-44s %-16s %-10s %4s %-6s %-7s %8s %-7s %8s %8s\n", "tensor", "shape", "scheme", "bits", "gran",
                      "coder", "segments", "classes", "entropy", "coded");
    for (size_t i = 0; i < f->n_tensors; i++) {
        ellm_tensor_info t;
        ellm_file_tensor_info(f, i, &t);
        params += t.n_params;
        payload += t.coded_bytes + t.meta_bytes;
        entropy_sum += t.entropy_bits * (double)t.n_params;
        if (json) {
            json_array_append_new(tensors, tensor_json(&t));
            continue;
        }
        char shape[64] = "";
        for (int d = 0; d < t.n_dims; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "", (long long)t.shape[d]);
        char classes[16];
        printf("%-44s %-16s %-10s %4d %-6s %-7s %8llu %-7s %8.3f %8.3f\n", t.name, shape, ellm_scheme_name(t.scheme), t.bits,
               gran_name(t.granularity), ellm_coder_name(t.coder), (unsigned long long)t.n_segments,
               tables_text(&t, classes, sizeof classes), t.entropy_bits,
               t.n_params ? 8.0 * (double)(t.coded_bytes + t.meta_bytes) / (double)t.n_params : 0.0);
    }
    json_error_t jerr;
    json_t *meta = json_loads(f->metadata_json, 0, &jerr);
    if (json) {
        json_t *blobs = json_array();
        for (size_t i = 0; i < f->n_blobs; i++)
            json_array_append_new(blobs, json_pack("{s:s, s:I}", "name", f->blobs[i].name, "bytes",
                                                   (json_int_t)f->blobs[i].size));
        json_t *root = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:o, s:o}",
                                 "file", path, "format_version", (int)f->version, "file_bytes", (json_int_t)file_bytes,
                                 "header_bytes", (json_int_t)header_bytes, "metadata_bytes", (json_int_t)f->meta_size,
                                 "directory_bytes", (json_int_t)f->dir_size, "blob_bytes", (json_int_t)blob_bytes,
                                 "params", (json_int_t)params, "payload_bytes", (json_int_t)payload,
                                 "entropy_bits_per_weight", params ? entropy_sum / (double)params : 0.0,
                                 "coded_bits_per_weight", params ? 8.0 * (double)payload / (double)params : 0.0,
                                 "effective_bits_per_weight", params ? 8.0 * (double)file_bytes / (double)params : 0.0,
                                 "metadata", meta ? meta : json_null(), "blobs", blobs, "tensors", tensors);
        char *text = json_dumps(root, JSON_INDENT(1));
        puts(text);
        free(text);
        json_decref(root);
    } else {
        json_decref(tensors);
        printf("\nfile %s: format version %u, %llu bytes, %zu tensors, %zu blobs\n", path, f->version,
               (unsigned long long)file_bytes, f->n_tensors, f->n_blobs);
        uint64_t contents = payload + blob_bytes;
        printf("container: header %llu + metadata %llu + directory %llu bytes = %.2f%% over payloads and blobs\n",
               (unsigned long long)header_bytes, (unsigned long long)f->meta_size, (unsigned long long)f->dir_size,
               contents ? 100.0 * (double)(file_bytes - contents) / (double)contents : 0.0);
        for (size_t i = 0; i < f->n_blobs; i++)
            printf("  blob %-28s %llu bytes\n", f->blobs[i].name, (unsigned long long)f->blobs[i].size);
        if (params)
            printf("parameters %llu; entropy %.4f, coded payload %.4f, effective (file) %.4f bits/weight\n",
                   (unsigned long long)params, entropy_sum / (double)params, 8.0 * (double)payload / (double)params,
                   8.0 * (double)file_bytes / (double)params);
        if (meta) {
            json_t *q = json_object_get(meta, "quantization"), *src = json_object_get(meta, "source");
            char *qs = q ? json_dumps(q, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            char *ss = src ? json_dumps(src, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            if (ss) printf("source: %s\n", ss);
            if (qs) printf("quantization: %s\n", qs);
            if (json_is_true(json_object_get(meta, "weights_generated")))
                printf("NOTE: this model's weights were generated (not trained).\n");
            free(qs);
            free(ss);
            json_decref(meta);
        }
    }
    ellm_file_close(f);
    return EXIT_OK;
}

static void verify_usage(FILE *out, const cli_opt *opts) {
    fprintf(out, "Usage: entrollm verify FILE.ellm [--threads N] [--json]\n\n"
                 "Checks the header, metadata, directory and every payload checksum, then decodes every\n"
                 "segment of every tensor. Exit status 0 only if all of it succeeds; 3 on a checksum\n"
                 "mismatch or an undecodable segment, 1 if the file cannot be read.\n\n"
                 "Options:\n");
    cli_print_options(out, opts);
}

int cmd_verify(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    long threads = 0;
    const cli_opt opts[] = {
        {CLI_INT("--threads", NULL, &threads, 1, 1024, "N", "threads decoding the segments (default: all cores)")},
        {CLI_FLAG("--json", NULL, &json, "print one JSON object on stdout: file, ok, tensors, seconds, error")},
        {0},
    };
    int n_pos, rc = cli_parse("verify", argc, argv, opts, &path, 1, &n_pos);
    if (rc != CLI_GO_ON) return rc == CLI_HELP ? (verify_usage(stdout, opts), EXIT_OK) : rc;
    if (!path) return cli_usage_error("verify", "missing FILE.ellm");
    ellm_file *f = NULL;
    ellm_error err = {0};
    double t0 = ellm_now();
    ellm_status s = ellm_file_open(path, &f, &err);
    if (!s) s = ellm_file_verify(f, (int)threads, &err);
    double secs = ellm_now() - t0;
    size_t n_tensors = f ? f->n_tensors : 0;
    ellm_file_close(f);
    /* A file whose structure is corrupt is a verification failure too. */
    int code = s == ELLM_OK ? EXIT_OK : (s == ELLM_E_CHECKSUM || s == ELLM_E_FORMAT) ? EXIT_VERIFY : cli_exit_code(s);
    if (json) {
        json_t *root = json_pack("{s:s, s:b, s:I, s:f, s:s}", "file", path, "ok", s == ELLM_OK, "tensors",
                                 (json_int_t)n_tensors, "seconds", secs, "error", s ? err.message : "");
        char *text = json_dumps(root, JSON_COMPACT);
        puts(text);
        free(text);
        json_decref(root);
    }
    if (s) {
        fprintf(stderr, "entrollm: verify FAILED: %s\n", err.message);
        return code;
    }
    if (!json) printf("%s: OK (%zu tensors: every checksum matches, every segment decodes; %.2f s)\n", path, n_tensors, secs);
    return EXIT_OK;
}
