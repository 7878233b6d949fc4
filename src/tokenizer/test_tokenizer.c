/*
 * test_tokenizer.c - behaviour beyond the reference pairs:
 *  - the same Llama 2 vocabulary through four loaders and both merge rules
 *    (scores: GGUF, tokenizer.model; llama2.c run.c rules: tokenizer.bin)
 *    gives identical ids on real text (WikiText-2, 200 KB) and on random text;
 *  - decode(encode(x)) == x for random bytes, invalid UTF-8 included, with
 *    every lossless tokenizer;
 *  - special tokens only with parse_special; user-defined pieces always;
 *  - pieces, stream pieces, BOS handling;
 *  - the tokenizer carried in a .ellm file, and a corrupted blob refused;
 *  - every loader refuses truncated and corrupted files with an error
 *    (never a crash), and bad ids are refused.
 */
#include <unistd.h>

#include "container/container.h"
#include "formats/gguf.h"
#include "tokenizer/test_tok_util.h"
#include "tokenizer/tok_internal.h"

static int32_t *enc(const ellm_tokenizer *t, const char *s, size_t len, int bos, int special, size_t *n) {
    int32_t *ids;
    ellm_error err;
    if (ellm_tokenize(t, s, len, bos, special, &ids, n, &err)) {
        fprintf(stderr, "FAIL: tokenize: %s\n", err.message);
        g_failures++;
        *n = 0;
        return calloc(1, sizeof(int32_t));
    }
    return ids;
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && !memcmp(a, b, na * sizeof *a);
}

static int roundtrip(const ellm_tokenizer *t, const char *s, size_t len) {
    size_t n;
    int32_t *ids = enc(t, s, len, 0, 0, &n);
    char *back;
    size_t blen;
    ellm_error err;
    int ok = ellm_detokenize(t, ids, n, &back, &blen, &err) == ELLM_OK && blen == len && !memcmp(back, s, len);
    if (ok) free(back);
    free(ids);
    return ok;
}

/* Random text: words of letters, digits, punctuation, spaces/newlines and
 * multi-byte characters, sometimes raw (invalid) bytes. */
static size_t random_text(ellm_rng *r, char *buf, size_t cap, int allow_invalid) {
    static const char *const pieces[] = {"the", " ", "  ", "\n", "\t", "a", "Hello", "1", "23", "456", ".",
                                         ",", "'s", "!", "ü", "é", "Ä", "中", "文", "🦙", "<s>",
                                         "[INST]", "\r\n", "x", "@-@", "ß", "ñ", "Ω", "  \n "};
    size_t n = 0;
    size_t want = 1 + (size_t)(ellm_rng_uniform(r) * (double)(cap / 8));
    while (n < want) {
        if (allow_invalid && ellm_rng_uniform(r) < 0.1) {
            buf[n++] = (char)(ellm_rng_next(r) & 0xff);
            continue;
        }
        const char *p = pieces[ellm_rng_next(r) % ELLM_ARRAY_LEN(pieces)];
        size_t l = strlen(p);
        if (n + l >= cap) break;
        memcpy(buf + n, p, l);
        n += l;
    }
    return n;
}

static void same_vocab_four_loaders(void) {
    const char *paths[] = {"llama2_tokenizer/tokenizer.model", "vocab/ggml-vocab-llama-spm.gguf",
                           "hf/phi-3.5-mini-instruct/tokenizer.json", "llama2_tokenizer/tokenizer.bin"};
    ellm_tokenizer *t[4];
    for (int i = 0; i < 4; i++) t[i] = load_tok(paths[i]);
    size_t size;
    uint8_t *wiki = read_data("wikitext2/wiki.test.raw", &size);
    size_t len = ELLM_MIN(size, (size_t)200000);
    size_t n0, n;
    int32_t *ref = enc(t[0], (const char *)wiki, len, 0, 0, &n0);
    for (int i = 1; i < 4; i++) {
        int32_t *ids = enc(t[i], (const char *)wiki, len, 0, 0, &n);
        CHECK(same_ids(ref, n0, ids, n), "WikiText-2 200 KB: %s gives %zu ids, %s %zu (or different ids)", paths[0],
              n0, paths[i], n);
        free(ids);
    }
    printf("Llama 2 vocabulary, 4 loaders: %zu identical ids on 200 KB of WikiText-2\n", n0);
    free(ref);
    free(wiki);
    /* random text (valid UTF-8: tokenizer.json cannot take anything else in HF) */
    ellm_rng r;
    ellm_rng_seed(&r, 42);
    char buf[4096];
    int agree = 0, total = 300;
    for (int k = 0; k < total; k++) {
        size_t l = random_text(&r, buf, sizeof buf, 0);
        ref = enc(t[0], buf, l, 0, 0, &n0);
        int ok = 1;
        for (int i = 1; i < 3; i++) { /* run.c's rules differ on purpose; compare the SentencePiece loaders */
            int32_t *ids = enc(t[i], buf, l, 0, 0, &n);
            if (!same_ids(ref, n0, ids, n)) {
                ok = 0;
                fprintf(stderr, "  random text %d: %s and %s differ: '%.*s'\n", k, paths[0], paths[i], (int)l, buf);
            }
            free(ids);
        }
        agree += ok;
        free(ref);
    }
    printf("Llama 2 vocabulary, 3 SentencePiece loaders: %d/%d random texts agree\n", agree, total);
    CHECK(agree == total, "loaders disagree");
    for (int i = 0; i < 4; i++) ellm_tokenizer_free(t[i]);
}

static void lossless(void) {
    /* SmolLM2's vocabulary lacks 21 bytes (0xF5..0xFF, 0xC0, 0xC1 and a few
     * control bytes), which HF drops: it is lossless on UTF-8 text only */
    const char *paths[] = {"hf/smollm2-1.7b-resaved/tokenizer.json",
                           "llama2_tokenizer/tokenizer.model",
                           "vocab/ggml-vocab-phi-3.gguf",
                           "hf/mistral-7b-instruct/mistral-common/mistral_instruct_tokenizer_240323.model.v3",
                           "vocab/ggml-vocab-gpt-2.gguf",
                           "stories260K/tok512.bin",
                           "aidreams260K/tok512.bin",
                           "llama2_tokenizer/tokenizer.bin"};
    ellm_rng r;
    ellm_rng_seed(&r, 7);
    char buf[2048];
    for (size_t i = 0; i < ELLM_ARRAY_LEN(paths); i++) {
        ellm_tokenizer *t = load_tok(paths[i]);
        int ok = 0, total = 300;
        for (int k = 0; k < total; k++) {
            size_t l = random_text(&r, buf, sizeof buf, i > 0);
            if (roundtrip(t, buf, l)) ok++;
            else if (ok + 3 > k) fprintf(stderr, "  %s: round trip fails on '%.*s'\n", paths[i], (int)l, buf);
        }
        printf("round trip %s: %d/%d random byte strings\n", paths[i], ok, total);
        CHECK(ok == total, "%s is not lossless", paths[i]);
        ellm_tokenizer_free(t);
    }
}

static void specials(void) {
    ellm_tokenizer *t = load_tok("vocab/ggml-vocab-llama-spm.gguf");
    size_t n;
    int32_t *ids = enc(t, "<s>Hi</s>", 9, 0, 0, &n);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 1 && ids[i] != 2, "BOS/EOS from plain text");
    free(ids);
    ids = enc(t, "<s>Hi</s>", 9, 0, 1, &n);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 6324 /* ▁Hi */ && ids[2] == 2, "parse_special <s>Hi</s>");
    if (n != 3) print_ids("got", ids, n);
    free(ids);
    ids = enc(t, "Hi", 2, 1, 0, &n);
    CHECK(n == 2 && ids[0] == 1, "add_bos");
    free(ids);
    /* SentencePiece reads a literal U+2581 as a space, and decodes it so */
    ids = enc(t, "a\xE2\x96\x81" "b", 5, 0, 0, &n);
    char *sp_text;
    ellm_error sp_err;
    CHECK(ellm_detokenize(t, ids, n, &sp_text, NULL, &sp_err) == ELLM_OK && !strcmp(sp_text, "a b"), "U+2581");
    free(sp_text);
    free(ids);
    ids = enc(t, "", 0, 1, 0, &n);
    CHECK(n == 1 && ids[0] == 1, "empty text with BOS is [BOS]");
    free(ids);
    ids = enc(t, "", 0, 0, 0, &n);
    CHECK(n == 0, "empty text is no tokens");
    free(ids);
    const char *p;
    size_t l = ellm_token_piece(t, 3 + 0x0A, &p); /* <0x0A> */
    CHECK(l == 1 && p[0] == '\n', "byte token piece");
    l = ellm_token_piece(t, 15043, &p);
    CHECK(l == 6 && !memcmp(p, " Hello", 6), "piece ▁Hello");
    l = ellm_tokenizer_stream_piece(t, 1, 15043, &p);
    CHECK(l == 5 && !memcmp(p, "Hello", 5), "stream piece after BOS drops the dummy space");
    l = ellm_tokenizer_stream_piece(t, 15043, 15043, &p);
    CHECK(l == 6, "stream piece mid-text keeps its space");
    CHECK(ellm_tokenizer_stream_piece(t, 15043, 2, &p) == 0, "EOS streams as nothing");
    CHECK(ellm_tokenizer_is_special(t, 1) && !ellm_tokenizer_is_special(t, 15043), "is_special");
    CHECK(ellm_tokenizer_bos(t) == 1 && ellm_tokenizer_eos(t) == 2 && ellm_tokenizer_add_bos_default(t), "bos/eos");
    int32_t bad[] = {15043, 32000};
    char *text;
    ellm_error err;
    CHECK(ellm_detokenize(t, bad, 2, &text, NULL, &err) == ELLM_E_ARG, "id 32000 accepted");
    int32_t neg[] = {-1};
    CHECK(ellm_detokenize(t, neg, 1, &text, NULL, &err) == ELLM_E_ARG, "id -1 accepted");
    int32_t with_ctl[] = {1, 15043, 2};
    size_t tl;
    CHECK(ellm_tokenizer_decode(t, with_ctl, 3, ELLM_DETOK_SPECIAL, &text, &tl, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<s>Hello</s>"), "decode with specials: '%s'", text);
    free(text);
    ellm_tokenizer_free(t);

    /* Mistral v3: [INST] is a control token (only with parse_special);
     * [REFERENCE_DOC_1] is user-defined: atomic even in plain text */
    t = load_tok("hf/mistral-7b-instruct/mistral-common/mistral_instruct_tokenizer_240323.model.v3");
    ids = enc(t, "[INST]", 6, 0, 0, &n);
    CHECK(n > 1, "[INST] from plain text must be pieces");
    free(ids);
    ids = enc(t, "[INST]", 6, 0, 1, &n);
    CHECK(n == 1 && ids[0] == 3, "[INST] with parse_special");
    free(ids);
    ids = enc(t, "see [REFERENCE_DOC_1] x", 23, 0, 0, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++) found |= ids[i] == 769;
    CHECK(found, "user-defined [REFERENCE_DOC_1] is one token");
    free(ids);
    ellm_tokenizer_free(t);
    printf("special tokens, pieces, BOS, bad ids: checked\n");
}

static void ellm_blob(void) {
    size_t size;
    uint8_t *tok = read_data("stories260K/tok512.bin", &size);
    char path[] = "/tmp/ellm_tok_test_XXXXXX.ellm";
    int fd = mkstemps(path, 5);
    CHECK(fd >= 0, "mkstemps");
    if (fd < 0) return;
    close(fd);
    ellm_writer *w;
    ellm_error err;
    ellm_status st = ellm_writer_open(path, "{}", &w, &err);
    if (!st) st = ellm_writer_add_blob(w, "tokenizer.bin", tok, size, &err);
    if (!st) st = ellm_writer_finish(w, NULL, &err);
    CHECK(st == ELLM_OK, "writing a .ellm with a tokenizer blob: %s", err.message);
    ellm_tokenizer *t;
    st = ellm_tokenizer_load(path, &t, &err);
    CHECK(st == ELLM_OK, "tokenizer from .ellm: %s", err.message);
    if (!st) {
        size_t n;
        int32_t *ids = enc(t, "Once upon a time", 16, 1, 0, &n);
        int32_t want[] = {1, 403, 407, 261, 378};
        CHECK(n == 5 && !memcmp(ids, want, sizeof want), "encode through the .ellm tokenizer");
        free(ids);
        ellm_tokenizer_free(t);
    }
    /* flip one byte inside the blob: the blob checksum must catch it */
    uint8_t *file;
    size_t fsize;
    if (ellm_read_file(path, &file, &fsize, &err) == ELLM_OK) {
        uint8_t *hit = NULL;
        for (size_t i = 0; i + size <= fsize; i++)
            if (!memcmp(file + i, tok, size)) {
                hit = file + i;
                break;
            }
        CHECK(hit != NULL, "blob bytes in the file");
        if (hit) {
            hit[size / 2] ^= 0x10;
            FILE *f = fopen(path, "wb");
            fwrite(file, 1, fsize, f);
            fclose(f);
            st = ellm_tokenizer_load(path, &t, &err);
            CHECK(st == ELLM_E_CHECKSUM, "corrupted tokenizer blob: status %d (%s)", st, err.message);
            if (!st) ellm_tokenizer_free(t);
        }
        free(file);
    }
    remove(path);
    free(tok);
    printf(".ellm tokenizer blob and its checksum: checked\n");
}

typedef ellm_status (*loader_fn)(const uint8_t *, size_t, const char *, ellm_tokenizer **, ellm_error *);

/* A small SentencePiece-style tokenizer.json (the real ones take 0.3 s each to
 * parse: too slow to corrupt 70 times). */
static const char small_json[] =
    "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
    " {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 9, \"content\": \"<|end|>\","
    " \"special\": true, \"rstrip\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\u2581\"},"
    " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]},"
    " \"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null,"
    " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"fuse_unk\": true,"
    " \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"\u2581\": 2, \"a\": 3, \"b\": 4, \"\u2581a\": 5, \"ab\": 6,"
    " \"\u2581ab\": 7, \"<0x41>\": 8},"
    " \"merges\": [\"a b\", \"\u2581 a\", \"\u2581a b\"]}}";

static void small_tokenizer_json(void) {
    ellm_tokenizer *t;
    ellm_error err;
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)small_json, strlen(small_json), "small", &t, &err) == ELLM_OK,
          "%s", err.message);
    size_t n;
    /* "a b" merges first (rank 0), then "▁ ab" has no merge: ▁ ab; "A" is not
     * in the vocabulary: byte fallback <0x41>; <|end|> eats the space after it
     * (rstrip); no BOS: this file names none, so add_bos adds nothing */
    int32_t *ids = enc(t, "ab A<|end|> ab", 14, 1, 1, &n);
    int32_t want[] = {2, 6, 2, 8, 9, 2, 6};
    CHECK(n == ELLM_ARRAY_LEN(want) && !memcmp(ids, want, sizeof want), "small tokenizer.json");
    if (n != ELLM_ARRAY_LEN(want)) print_ids("got", ids, n);
    free(ids);
    ellm_tokenizer_free(t);
    /* without byte fallback, a run of unknown characters is one <unk> (fuse_unk, SentencePiece) */
    char *nofb = ellm_strdup(small_json);
    char *p = strstr(nofb, "\"byte_fallback\": true");
    memcpy(p, "\"byte_fallback\": 0   ", strlen("\"byte_fallback\": true"));
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)nofb, strlen(nofb), "nofb", &t, &err) == ELLM_OK, "%s",
          err.message);
    ids = enc(t, "a\xe2\x82\xac\xe2\x82\xac" "b", 8, 0, 0, &n);
    int32_t want2[] = {5, 0, 4}; /* ▁a <unk> b */
    CHECK(n == 3 && !memcmp(ids, want2, sizeof want2), "unknown run fused");
    if (n != 3) print_ids("got", ids, n);
    free(ids);
    ellm_tokenizer_free(t);
    free(nofb);
}

/* Llama 3 style: Split(Regex) + ByteLevel(use_regex false), ignore_merges,
 * BOS from a Sequence post-processor. With ignore_merges a word in the
 * vocabulary is one token even when no merge leads to it. */
static void llama3_style_json(void) {
    static const char j[] =
        "{\"added_tokens\": [{\"id\": 9, \"content\": \"<|begin_of_text|>\", \"special\": true}],"
        " \"normalizer\": null,"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\":"
        " {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        " \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
        " \"use_regex\": false}]},"
        " \"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"},"
        " {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\","
        " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}]},"
        " \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2,"
        " \"\u0120\": 3, \"\u0120abba\": 4, \"1\": 5, \"2\": 6, \"3\": 7, \"123\": 8, \"'\": 10, \"s\": 11, \"'S\": 12},"
        " \"merges\": [\"a b\"]}}";
    ellm_tokenizer *t;
    ellm_error err;
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)j, strlen(j), "llama3-style", &t, &err) == ELLM_OK, "%s",
          err.message);
    if (g_failures) return;
    size_t n;
    /* "ab abba 1231'S": ab | Ġabba (whole word, no merge path) | 123 | 1 | 'S */
    int32_t *ids = enc(t, "ab abba 1231'S", 14, ellm_tokenizer_add_bos_default(t), 0, &n);
    int32_t want[] = {9, 2, 4, 3, 8, 5, 12};
    CHECK(n == ELLM_ARRAY_LEN(want) && !memcmp(ids, want, sizeof want), "llama3-style tokenizer.json");
    if (n != ELLM_ARRAY_LEN(want)) print_ids("got", ids, n);
    free(ids);
    /* GPT-2's byte map: every byte to a distinct code point and back */
    int ok = 1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        ok &= tok_cp_to_byte(cp) == b && cp < 324;
        for (int c = 0; c < b; c++) ok &= tok_byte_to_cp((uint8_t)c) != cp;
    }
    CHECK(ok, "byte <-> code point map is a bijection");
    CHECK(tok_byte_to_cp(' ') == 0x120 && tok_byte_to_cp('\n') == 0x10A && tok_byte_to_cp(0xAD) == 0x143, "byte map");
    ellm_tokenizer_free(t);
    printf("Llama-3-style tokenizer.json (Split regex, ignore_merges, Sequence post-processor): checked\n");
}

/* A GGUF vocabulary written here: scores and no token types (older files),
 * then the same with a "tokenizer.gguf" blob as models carry it. */
static void gguf_without_types(void) {
    const char *toks[] = {"<unk>", "<s>", "</s>", "<0x3C>", "\xE2\x96\x81", "a", ("\xE2\x96\x81" "a"), "s", ">"};
    float scores[] = {0, 0, 0, 0, -5, -3, -1, -4, -4};
    gguf_writer *w;
    ellm_error err;
    CHECK(gguf_writer_new(&w, &err) == ELLM_OK, "%s", err.message);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, NULL, 9);
    gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 9);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    uint8_t *buf;
    size_t size;
    CHECK(gguf_writer_to_buffer(w, &buf, &size, &err) == ELLM_OK, "%s", err.message);
    gguf_writer_free(w);
    ellm_blob_ref blobs[] = {{"tokenizer.gguf", buf, size}};
    ellm_tokenizer *t;
    CHECK(ellm_tokenizer_from_blobs(blobs, 1, "model", &t, &err) == ELLM_OK, "%s", err.message);
    if (g_failures) {
        free(buf);
        return;
    }
    size_t n;
    /* "<s>a" as text: '<' has no piece but a byte token, "s", ">", "▁a" */
    int32_t *ids = enc(t, "<s> a", 5, 0, 0, &n);
    int32_t want[] = {4, 3, 7, 8, 6};
    CHECK(n == ELLM_ARRAY_LEN(want) && !memcmp(ids, want, sizeof want), "GGUF without token types");
    if (n != ELLM_ARRAY_LEN(want)) print_ids("got", ids, n);
    free(ids);
    /* after a special token the fragment gets its own dummy prefix: "▁▁a" */
    ids = enc(t, "<s> a", 5, 0, 1, &n);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 4 && ids[2] == 6, "BOS with parse_special");
    free(ids);
    ellm_tokenizer_free(t);
    free(buf);
    printf("GGUF vocabulary without token types (as a tokenizer.gguf blob): checked\n");
}

/* Every prefix of the file (at a few dozen lengths) and byte flips must give
 * OK or an error with a message, never a crash (ASan runs this in CI). */
static void corrupt(const char *rel, loader_fn fn) {
    size_t size;
    uint8_t *d;
    if (rel) {
        d = read_data(rel, &size);
    } else {
        rel = "small tokenizer.json";
        size = strlen(small_json);
        d = malloc(size);
        memcpy(d, small_json, size);
    }
    int refused = 0, runs = 0;
    for (int k = 0; k < 40; k++) {
        size_t cut = k < 8 ? (size_t)k : (size_t)((double)size * k / 40.0);
        ellm_tokenizer *t = NULL;
        ellm_error err = {0};
        ellm_status st = fn(d, cut, rel, &t, &err);
        runs++;
        if (st) {
            refused++;
            CHECK(err.message[0] != 0, "%s cut at %zu: error without a message", rel, cut);
        } else {
            ellm_tokenizer_free(t);
        }
    }
    ellm_rng r;
    ellm_rng_seed(&r, 3);
    uint8_t *copy = malloc(size);
    for (int k = 0; k < 30; k++) {
        memcpy(copy, d, size);
        for (int j = 0; j < 4; j++) copy[ellm_rng_next(&r) % size] ^= (uint8_t)(1u << (ellm_rng_next(&r) % 8));
        ellm_tokenizer *t = NULL;
        ellm_error err = {0};
        if (fn(copy, size, rel, &t, &err) == ELLM_OK) {
            size_t n;
            int32_t *ids = enc(t, "Hello world 123 \xF0\x9F\xA6\x99", 20, 1, 1, &n);
            free(ids);
            ellm_tokenizer_free(t);
        }
        runs++;
    }
    free(copy);
    printf("corrupted %s: %d runs, %d truncations refused\n", rel, runs, refused);
    CHECK(refused >= 30, "%s: truncated files accepted", rel);
    free(d);
}

static void bad_inputs(void) {
    corrupt("stories260K/tok512.bin", ellm_tokenizer_from_llama2c);
    corrupt("stories260K/tok512.model", ellm_tokenizer_from_spm_model);
    corrupt("vocab/ggml-vocab-gpt-2.gguf", ellm_tokenizer_from_gguf);
    corrupt(NULL, ellm_tokenizer_from_hf_json);
    ellm_tokenizer *t;
    ellm_error err;
    const char *unigram = "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}";
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)unigram, strlen(unigram), "x", &t, &err) != ELLM_OK,
          "Unigram accepted");
    const char *nfkc = "{\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": null, \"model\": {\"type\": \"BPE\", "
                       "\"vocab\": {\"a\": 0}, \"merges\": []}}";
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)nfkc, strlen(nfkc), "x", &t, &err) == ELLM_E_UNSUPPORTED,
          "NFKC normalizer silently ignored");
    CHECK(strstr(err.message, "NFKC") != NULL, "message names the normalizer: %s", err.message);
    char *dir = data_path("hf/mistral-7b-instruct");
    CHECK(ellm_tokenizer_load(dir, &t, &err) == ELLM_E_FORMAT, "folder without tokenizer accepted");
    free(dir);
    CHECK(ellm_tokenizer_load("/nonexistent/tokenizer.json", &t, &err) == ELLM_E_IO, "missing file: %s", err.message);
    ellm_blob_ref none[] = {{"config.json", (const uint8_t *)"{}", 2}};
    CHECK(ellm_tokenizer_from_blobs(none, 1, "model", &t, &err) == ELLM_E_FORMAT, "no tokenizer blob accepted");
}

int main(void) {
    same_vocab_four_loaders();
    lossless();
    specials();
    small_tokenizer_json();
    llama3_style_json();
    gguf_without_types();
    ellm_blob();
    bad_inputs();
    if (g_failures) {
        fprintf(stderr, "%d failures\n", g_failures);
        return 1;
    }
    printf("all tokenizer checks pass\n");
    return 0;
}
