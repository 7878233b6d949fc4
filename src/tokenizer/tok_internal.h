/*
 * tok_internal.h - the tokenizer handle's layout, shared by the files of the
 * tokenizer stage (core, loaders, chat templates). Not for other stages:
 * they use tokenizer.h.
 */
#ifndef ELLM_TOK_INTERNAL_H
#define ELLM_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

/* Open-addressing map from a byte string (a piece in the arena) to its id. */
typedef struct tok_strmap {
    int32_t *slots; /* id, or -1 when empty */
    uint32_t mask;
} tok_strmap;

/* Open-addressing map from a pair of ids to (merge rank, merged id). */
typedef struct tok_pair_entry {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t id;
} tok_pair_entry;
typedef struct tok_pairmap {
    tok_pair_entry *slots;
    uint32_t mask;
    size_t count;
} tok_pairmap;

/* When the SentencePiece dummy-prefix space is added to a text fragment. */
typedef enum tok_prefix_mode {
    TOK_PREFIX_NEVER = 0,
    TOK_PREFIX_EACH = 1,  /* every fragment between special tokens (SentencePiece, llama.cpp,
                           * HF Prepend normalizer, Metaspace "always") */
    TOK_PREFIX_FIRST = 2  /* only a fragment at the very start (Metaspace "first"; llama2.c) */
} tok_prefix_mode;

#define TOK_ATTR_LSTRIP 1u
#define TOK_ATTR_RSTRIP 2u
#define TOK_MAX_REGEX 4

struct ellm_tokenizer {
    ellm_tok_kind kind;
    char *what;         /* where it came from, for messages */
    int32_t n_vocab;

    /* Pieces as stored in the vocabulary, and as they appear in output. */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *raw_off, *raw_len;
    uint32_t *out_off, *out_len;
    int outputs_built;
    float *scores;
    uint8_t *types;     /* ellm_tok_type */
    uint8_t *attrs;     /* TOK_ATTR_* */
    tok_strmap vocab;   /* raw piece -> id */

    /* Merge rule: by pair rank (tokenizer.json, GGUF gpt2) or by the score
     * of the merged piece (SentencePiece, GGUF llama, llama2.c). */
    int use_pair_ranks;
    tok_pairmap merges;
    int32_t byte_tok[256]; /* byte fallback (SPM) / initial symbol (BPE) per byte; -1 if none */

    int32_t bos, eos, unk, pad;
    int add_bos, add_eos;

    /* SentencePiece normalisation */
    int add_dummy_prefix;
    tok_prefix_mode prefix_mode;
    int remove_extra_ws;
    int byte_fallback;
    int userdef_in_model; /* SentencePiece .model: user-defined pieces are atomic
                             symbols inside the model, not split before it */
    int nfc;              /* tokenizer.json NFC normalizer (Qwen2) */
    int metaspace_split;  /* HF Metaspace split=true: BPE each "▁word" alone */
    int split_words;      /* no merge crosses a word start: encode word by word (cached) */

    /* byte-level BPE pre-tokenizer: Split(Isolated) stages applied in order */
    pcre2_code *re[TOK_MAX_REGEX];
    int n_re;
    int bpe_add_prefix_space;
    int ignore_merges;    /* HF BPE ignore_merges (Llama 3): a word in the vocabulary is one token */
    char *pre_name;

    /* Tokens matched as a whole before the model: per first byte, ids sorted
     * by length (longest first). */
    int32_t *special_ids;
    size_t n_special;
    uint32_t special_start[257]; /* special_ids[special_start[b]..special_start[b+1]) start with byte b */

    int32_t *stop_ids;
    size_t n_stop;

    ellm_chat_format chat;
    char *chat_template;
    char *chat_default_system; /* ChatML templates that add a system turn when none is given */
};

/* ---- construction helpers (tokenizer.c) --------------------------------- */
ellm_tokenizer *tok_alloc(ellm_tok_kind kind, int32_t n_vocab, const char *what, ellm_error *err);
/* Grows the vocabulary to n_vocab ids (new ones empty and unused). */
ellm_status tok_extend(ellm_tokenizer *t, int32_t n_vocab, ellm_error *err);
ellm_status tok_set_piece(ellm_tokenizer *t, int32_t id, const char *s, size_t len, float score,
                          ellm_tok_type type, ellm_error *err);
/* Builds the piece -> id map (needed before ids can be looked up by piece). */
ellm_status tok_build_map(ellm_tokenizer *t, ellm_error *err);
/* Builds the maps and output pieces; call after every piece is set. */
ellm_status tok_finish(ellm_tokenizer *t, ellm_error *err);
ellm_status tok_add_merge(ellm_tokenizer *t, int32_t left, int32_t right, int32_t merged,
                          int32_t rank, ellm_error *err);
ellm_status tok_pairmap_reserve(tok_pairmap *m, size_t n, ellm_error *err);
ellm_status tok_set_regexes(ellm_tokenizer *t, const char *const *patterns, int n, ellm_error *err);
ellm_status tok_set_pre_by_name(ellm_tokenizer *t, const char *pre, ellm_error *err);
ellm_status tok_add_stop_id(ellm_tokenizer *t, int32_t id, ellm_error *err);
/* Finds every token's id by its piece in a NUL-terminated string, -1 if absent. */
int32_t tok_find_cstr(const ellm_tokenizer *t, const char *piece);
int tok_parse_byte_piece(const char *s, size_t len); /* "<0xNN>" -> NN, else -1 */

/* GPT-2's byte <-> printable code point map. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 if cp is not in the map */
/* UTF-8 helpers */
size_t tok_utf8_encode(uint32_t cp, char *out);
/* Length of the UTF-8 sequence at s (1..4; 1 for invalid bytes), bounded by n. */
size_t tok_utf8_len(const uint8_t *s, size_t n);

/* The regexes of the pre-tokenizers we know (PCRE2 syntax). */
extern const char TOK_RE_GPT2[];
extern const char TOK_RE_LLAMA3[];
extern const char TOK_RE_QWEN2[];
extern const char TOK_RE_DIGITS[];

/* tok_unicode.c: Unicode NFC (invalid UTF-8 bytes pass through). *out is malloc'd. */
int tok_needs_nfc(const char *s, size_t n);
ellm_status tok_nfc(const char *s, size_t n, char **out, size_t *out_len, ellm_error *err);

/* chat.c: detection from a template text / the vocabulary */
ellm_chat_format tok_chat_detect(const ellm_tokenizer *t, const char *tmpl, char **default_system);

#endif /* ELLM_TOK_INTERNAL_H */
