/*
 * tokenizer.h - the tokenizer stage's interface to the rest of entrollm.
 *
 * Three kinds of tokenizer, each conformant with its reference implementation
 * (see docs/TOKENIZERS.md):
 *   - SentencePiece-style BPE (Llama 2, Mistral, Phi-3): "▁" for spaces, a
 *     dummy-prefix space, merges by piece score (tokenizer.model, GGUF) or by
 *     merge rank (tokenizer.json), byte fallback <0xNN>;
 *   - byte-level BPE (GPT-2, StarCoder/SmolLM, Llama 3, Qwen2): bytes mapped
 *     to printable code points, the model's own pre-tokenizer regex run by
 *     PCRE2 (UTF + UCP), ranked merges;
 *   - the llama2.c tokenizer (.bin): run.c's encode/decode exactly.
 *
 * The public part (load, tokenize, detokenize, pieces) is in entrollm.h.
 */
#ifndef ELLM_TOKENIZER_H
#define ELLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "entrollm.h"

typedef enum ellm_tok_kind {
    ELLM_TOK_SPM = 0,     /* SentencePiece-style BPE */
    ELLM_TOK_BPE = 1,     /* byte-level BPE */
    ELLM_TOK_LLAMA2C = 2  /* llama2.c tokenizer.bin */
} ellm_tok_kind;

/* Token types (the GGUF / SentencePiece numbering). */
typedef enum ellm_tok_type {
    ELLM_TOKT_NORMAL = 1,
    ELLM_TOKT_UNKNOWN = 2,
    ELLM_TOKT_CONTROL = 3,      /* BOS, EOS, chat markers: only with parse_special */
    ELLM_TOKT_USER_DEFINED = 4, /* always matched as a whole in text */
    ELLM_TOKT_UNUSED = 5,
    ELLM_TOKT_BYTE = 6          /* <0xNN> byte fallback */
} ellm_tok_type;

/* Builds a tokenizer from the named files a model carries: "tokenizer.json",
 * "tokenizer_config.json", "tokenizer.model", "tokenizer.bin",
 * "tokenizer.gguf", "special_tokens_map.json", "generation_config.json",
 * "chat_template.jinja". Unknown names are ignored. The vocabulary comes from
 * the first present of tokenizer.json, tokenizer.model, tokenizer.gguf,
 * tokenizer.bin; the JSON config files add special tokens, BOS/EOS handling,
 * stop ids and the chat template. `what` names the source in messages.
 * The blobs may be freed after the call. */
ellm_status ellm_tokenizer_from_blobs(const ellm_blob_ref *blobs, size_t n, const char *what,
                                      ellm_tokenizer **out, ellm_error *err);

/* Single-format loaders (used by ellm_tokenizer_from_blobs and tests). */
ellm_status ellm_tokenizer_from_llama2c(const uint8_t *data, size_t size, const char *what,
                                        ellm_tokenizer **out, ellm_error *err);
ellm_status ellm_tokenizer_from_spm_model(const uint8_t *data, size_t size, const char *what,
                                          ellm_tokenizer **out, ellm_error *err);
ellm_status ellm_tokenizer_from_hf_json(const uint8_t *data, size_t size, const char *what,
                                        ellm_tokenizer **out, ellm_error *err);
ellm_status ellm_tokenizer_from_gguf(const uint8_t *data, size_t size, const char *what,
                                     ellm_tokenizer **out, ellm_error *err);

ellm_tok_kind ellm_tokenizer_kind(const ellm_tokenizer *t);
const char *ellm_tokenizer_kind_name(const ellm_tokenizer *t); /* "spm", "bpe", "llama2c" */
/* Whether the model's own configuration asks for BOS at the start of a text
 * (tokenizer_config add_bos_token, GGUF add_bos_token, SPM default yes). */
int ellm_tokenizer_add_bos_default(const ellm_tokenizer *t);
ellm_tok_type ellm_tokenizer_token_type(const ellm_tokenizer *t, int32_t id);
/* Non-zero for control and unknown tokens (BOS, EOS, <|im_end|>, [INST] in
 * Mistral v3...): tokens that ordinary text never produces. */
int ellm_tokenizer_is_special(const ellm_tokenizer *t, int32_t id);
/* The id of a piece written exactly as in the vocabulary ("<|im_end|>",
 * "▁the", "Ġthe"), or -1. */
int32_t ellm_tokenizer_find(const ellm_tokenizer *t, const char *piece, size_t len);
/* The piece as stored in the vocabulary (with "▁" / byte-level code points). */
size_t ellm_tokenizer_raw_piece(const ellm_tokenizer *t, int32_t id, const char **piece);

/* The ids generation stops on: EOS, the chat end-of-turn markers
 * (<|im_end|>, <|end|>, <|endoftext|>...), generation_config's eos_token_id.
 * Returns the count; *ids points into the tokenizer. */
size_t ellm_tokenizer_stop_ids(const ellm_tokenizer *t, const int32_t **ids);
int ellm_tokenizer_is_stop(const ellm_tokenizer *t, int32_t id);

/* Decoding with options: ELLM_DETOK_SPECIAL writes control tokens as their
 * text ("<|im_end|>") instead of dropping them; ELLM_DETOK_KEEP_LEADING_SPACE
 * keeps the dummy-prefix space of the first piece (SPM, llama2.c). */
enum { ELLM_DETOK_SPECIAL = 1, ELLM_DETOK_KEEP_LEADING_SPACE = 2 };
ellm_status ellm_tokenizer_decode(const ellm_tokenizer *t, const int32_t *ids, size_t n_ids,
                                  unsigned flags, char **text, size_t *len, ellm_error *err);

/* Streaming output during generation: the bytes to print for `id` when it
 * follows `prev` (-1 at the start). Strips the dummy-prefix space after BOS
 * or at the start, as llama2.c's run.c does; control tokens give "".
 * Byte-level pieces may be partial UTF-8 sequences: print them as they come. */
size_t ellm_tokenizer_stream_piece(const ellm_tokenizer *t, int32_t prev, int32_t id,
                                   const char **piece);

/* ---- chat templates ---------------------------------------------------- */

typedef enum ellm_chat_format {
    ELLM_CHAT_NONE = 0,
    ELLM_CHAT_CHATML,      /* SmolLM-Instruct, Qwen2: <|im_start|>role\n...<|im_end|>\n */
    ELLM_CHAT_PHI3,        /* Phi-3 / Phi-3.5: <|system|>\n...<|end|>\n<|user|>\n... */
    ELLM_CHAT_PHI3_MINI,   /* Phi-3-mini-4k GGUF form: bos, user turn opens <|assistant|> */
    ELLM_CHAT_MISTRAL_V1,  /* [INST] ... [/INST] as plain text pieces */
    ELLM_CHAT_MISTRAL_V3,  /* [INST]/[/INST] control tokens */
    ELLM_CHAT_LLAMA2,      /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] */
    ELLM_CHAT_LLAMA3,      /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    ELLM_CHAT_ZEPHYR       /* TinyLlama-Chat: <|user|>\n...</s>\n<|assistant|>\n */
} ellm_chat_format;

/* "chatml", "phi3", "phi3-mini", "mistral-v1", "mistral-v3", "llama2",
 * "llama3", "zephyr" */
const char *ellm_chat_format_name(ellm_chat_format f);
ellm_chat_format ellm_tokenizer_chat_format(const ellm_tokenizer *t);
/* Overrides the detected format: a name above, or the text of a Jinja chat
 * template (recognised by its markers; an unknown one is refused). */
ellm_status ellm_tokenizer_set_chat_template(ellm_tokenizer *t, const char *name_or_template,
                                             ellm_error *err);

/* Renders a chat into the text that ellm_tokenize(..., add_bos = 0,
 * parse_special = 1) turns into exactly the ids the model was trained on
 * (BOS, when the format has one, is written as its piece, e.g. "<s>").
 * Roles: "system", "user", "assistant". *out is malloc'd. Fails with a clear
 * message when the tokenizer has no recognised chat template. */
ellm_status ellm_tokenizer_chat_render(const ellm_tokenizer *t, const ellm_chat_message *msgs,
                                       size_t n, int add_generation_prompt, char **out,
                                       ellm_error *err);

#endif /* ELLM_TOKENIZER_H */
