/*
 * test_chat.c - chat templates and special tokens:
 *  - Mistral v1 and v3: mistral-common's rendered 7-message chat
 *    (samples/no_tools) must come out as exactly its token ids;
 *  - Phi-3.5: the rendering equals what its tokenizer_config.json Jinja
 *    template gives (strings computed with jinja2 from that file), and the
 *    markers tokenize as control tokens with HF's rstrip;
 *  - Phi-3-mini (GGUF template), ChatML (SmolLM2 vocabulary);
 *  - special tokens are never produced from ordinary text, unknown
 *    templates are refused, stop ids come from the config files.
 */
#include <jansson.h>

#include "tokenizer/test_tok_util.h"

static const ellm_chat_message sample[] = {
    {"user", "What's the result of 5 + 5?"},
    {"assistant", "The result of 5 + 5 is 10."},
    {"user", "What is the square root of 64?"},
    {"assistant", "The square root of 64 is 8, because 8 x 8 equals 64."},
    {"user", "Can you multiply the results of the previous two questions?"},
    {"assistant", "Sure! The result of 10 x 8 is 80."},
    {"user", "Thanks"},
};

static int32_t *encode(const ellm_tokenizer *t, const char *s, int special, size_t *n) {
    int32_t *ids;
    ellm_error err;
    if (ellm_tokenize(t, s, strlen(s), 0, special, &ids, n, &err)) {
        fprintf(stderr, "FAIL: tokenize: %s\n", err.message);
        g_failures++;
        *n = 0;
        return NULL;
    }
    return ids;
}

static void mistral(const char *name, const char *model, const char *fmt, const char *tokens_json,
                    const char *text_rel) {
    ellm_tokenizer *t = load_tok(model);
    ellm_error err;
    if (fmt) CHECK(ellm_tokenizer_set_chat_template(t, fmt, &err) == ELLM_OK, "%s", err.message);
    char *text = NULL;
    CHECK(ellm_tokenizer_chat_render(t, sample, ELLM_ARRAY_LEN(sample), 1, &text, &err) == ELLM_OK, "%s",
          err.message);
    size_t jsz;
    uint8_t *j = read_data(tokens_json, &jsz);
    json_t *root = json_loadb((const char *)j, jsz, 0, NULL);
    json_t *arr = json_object_get(root, "tokens");
    size_t n_ref = json_array_size(arr), n = 0;
    int32_t *ids = text ? encode(t, text, 1, &n) : NULL;
    int same = n == n_ref;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == (int32_t)json_integer_value(json_array_get(arr, i));
    if (!same) {
        fprintf(stderr, "  rendered: %s\n", text);
        print_ids("got", ids, n);
    }
    /* the pieces of our ids, joined, are mistral-common's text_vN.txt */
    size_t tsz;
    uint8_t *ref_text = read_data(text_rel, &tsz);
    char joined[8192];
    size_t m = 0;
    for (size_t i = 0; i < n && m < sizeof joined - 64; i++) {
        const char *p;
        size_t l = ellm_tokenizer_raw_piece(t, ids[i], &p);
        memcpy(joined + m, p, l);
        m += l;
    }
    while (tsz && (ref_text[tsz - 1] == '\n')) tsz--;
    int text_same = m == tsz && !memcmp(joined, ref_text, m);
    printf("%s chat: ids %s (%zu tokens), pieces %s\n", name, same ? "match" : "DIFFER", n,
           text_same ? "match" : "DIFFER");
    CHECK(same, "%s: chat token ids differ from mistral-common", name);
    CHECK(text_same, "%s: pieces '%.*s'", name, (int)m, joined);
    CHECK(ellm_tokenizer_is_stop(t, ellm_tokenizer_eos(t)), "eos is a stop id");
    free(ref_text);
    free(ids);
    json_decref(root);
    free(j);
    free(text);
    ellm_tokenizer_free(t);
}

/* The system prompt: before the first user message (v1), the last (v3). */
static void mistral_system(void) {
    const ellm_chat_message msgs[] = {{"system", "Be brief."}, {"user", "A"}, {"assistant", "B"}, {"user", "C"}};
    ellm_tokenizer *t = load_tok("hf/mistral-7b-instruct/mistral-common/tokenizer.model.v1");
    ellm_error err;
    char *text;
    CHECK(ellm_tokenizer_set_chat_template(t, "mistral-v1", &err) == ELLM_OK, "%s", err.message);
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<s>[INST] Be brief.\n\nA [/INST] B</s>[INST] C [/INST]"), "v1 system '%s'", text);
    free(text);
    ellm_tokenizer_free(t);
    t = load_tok("hf/mistral-7b-instruct/mistral-common/mistral_instruct_tokenizer_240323.model.v3");
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<s>[INST]A[/INST]B</s>[INST]Be brief.\n\nC[/INST]"), "v3 system '%s'", text);
    free(text);
    ellm_tokenizer_free(t);
}

static void phi35(void) {
    ellm_tokenizer *t = load_tok("hf/phi-3.5-mini-instruct");
    CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_PHI3, "format %s",
          ellm_chat_format_name(ellm_tokenizer_chat_format(t)));
    const ellm_chat_message msgs[] = {{"system", "You are terse."},
                                      {"user", "What is 2+2?"},
                                      {"assistant", "4."},
                                      {"user", "And 3+3?"}};
    /* jinja2 rendering of the template in tokenizer_config.json */
    const char *want_gen = "<|system|>\nYou are terse.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4."
                           "<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|assistant|>\n";
    const char *want_end = "<|system|>\nYou are terse.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4."
                           "<|end|>\n<|user|>\nAnd 3+3?<|end|>\n<|endoftext|>";
    char *text;
    ellm_error err;
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, want_gen), "phi-3.5 rendering '%s'", text);
    free(text);
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 0, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, want_end), "phi-3.5 rendering without generation prompt '%s'", text);
    free(text);
    /* markers are control tokens; rstrip (tokenizer.json) eats the newline after them */
    size_t n;
    int32_t *ids = encode(t, "<|user|>\nHello<|end|>\n<|assistant|>\n", 1, &n);
    int32_t want[] = {32010, 15043, 32007, 32001};
    CHECK(n == 4 && !memcmp(ids, want, sizeof want), "phi-3.5 markers");
    if (n != 4) print_ids("got", ids, n);
    free(ids);
    /* without parse_special the marker is ordinary text */
    ids = encode(t, "<|user|>", 0, &n);
    for (size_t i = 0; i < n; i++) CHECK(!ellm_tokenizer_is_special(t, ids[i]), "special id %d from text", ids[i]);
    CHECK(n > 1, "'<|user|>' as text is several pieces");
    free(ids);
    /* generation_config.json: eos_token_id [32007, 32001, 32000] */
    CHECK(ellm_tokenizer_is_stop(t, 32007) && ellm_tokenizer_is_stop(t, 32001) && ellm_tokenizer_is_stop(t, 32000),
          "phi-3.5 stop ids");
    CHECK(ellm_tokenizer_add_bos_default(t) == 0, "phi-3.5 add_bos_token false");
    printf("phi-3.5 chat: template rendering and markers checked\n");
    ellm_tokenizer_free(t);
}

/* A folder without tokenizer.json: tokenizer.model plus tokenizer_config.json,
 * whose added_tokens_decoder brings the chat markers (as HF's slow tokenizer). */
static void phi35_slow(void) {
    size_t ms, cs;
    uint8_t *model = read_data("hf/phi-3.5-mini-instruct/tokenizer.model", &ms);
    uint8_t *cfg = read_data("hf/phi-3.5-mini-instruct/tokenizer_config.json", &cs);
    ellm_blob_ref blobs[] = {{"tokenizer.model", model, ms}, {"tokenizer_config.json", cfg, cs}};
    ellm_tokenizer *t;
    ellm_error err;
    CHECK(ellm_tokenizer_from_blobs(blobs, 2, "phi-3.5 slow", &t, &err) == ELLM_OK, "%s", err.message);
    if (!g_failures) {
        CHECK(ellm_tokenizer_vocab_size(t) == 32011, "vocab %d", (int)ellm_tokenizer_vocab_size(t));
        CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_PHI3, "phi3 template");
        size_t n;
        int32_t *ids = encode(t, "<|user|>\nHello<|end|>\n<|assistant|>\n", 1, &n);
        int32_t want[] = {32010, 15043, 32007, 32001};
        CHECK(n == 4 && !memcmp(ids, want, sizeof want), "phi-3.5 markers through tokenizer.model + config");
        if (n != 4) print_ids("got", ids, n);
        free(ids);
        CHECK(ellm_tokenizer_eos(t) == 32000, "eos <|endoftext|>");
        ellm_tokenizer_free(t);
    }
    free(model);
    free(cfg);
    printf("phi-3.5 tokenizer.model + tokenizer_config.json: chat markers added\n");
}

static void phi3_gguf(void) {
    ellm_tokenizer *t = load_tok("vocab/ggml-vocab-phi-3.gguf");
    CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_PHI3_MINI, "format %s",
          ellm_chat_format_name(ellm_tokenizer_chat_format(t)));
    const ellm_chat_message msgs[] = {{"system", "ignored"}, {"user", "What is 2+2?"}, {"assistant", "4."}, {"user", "And 3+3?"}};
    char *text;
    ellm_error err;
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    /* jinja2 rendering of the GGUF's tokenizer.chat_template */
    CHECK(!strcmp(text, "<s><|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4.<|end|>\n<|user|>\nAnd 3+3?<|end|>\n"
                        "<|assistant|>\n"),
          "phi-3 gguf rendering '%s'", text);
    size_t n;
    int32_t *ids = encode(t, text, 1, &n);
    CHECK(n > 3 && ids[0] == 1 && ids[1] == 32010 && ids[n - 1] == 32001, "phi-3 gguf chat ids");
    free(ids);
    free(text);
    ellm_tokenizer_free(t);
}

static void chatml(void) {
    ellm_tokenizer *t = load_tok("hf/smollm2-1.7b-resaved");
    CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_CHATML, "smollm2 format from the vocabulary: %s",
          ellm_chat_format_name(ellm_tokenizer_chat_format(t)));
    const ellm_chat_message msgs[] = {{"user", "Hi"}};
    char *text;
    ellm_error err;
    CHECK(ellm_tokenizer_chat_render(t, msgs, 1, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "chatml '%s'", text);
    size_t n;
    int32_t *ids = encode(t, text, 1, &n);
    /* <|im_start|> user \n Hi <|im_end|> \n <|im_start|> "assistant" (two pieces) \n */
    const int32_t want[] = {1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198};
    CHECK(n == ELLM_ARRAY_LEN(want) && !memcmp(ids, want, sizeof want), "chatml ids");
    if (n != ELLM_ARRAY_LEN(want)) print_ids("got", ids, n);
    int has_end = 0;
    for (size_t i = 0; i < n; i++) has_end |= ids[i] == 2;
    CHECK(has_end, "<|im_end|> recognised");
    free(ids);
    ids = encode(t, text, 0, &n);
    for (size_t i = 0; i < n; i++) CHECK(!ellm_tokenizer_is_special(t, ids[i]), "special id %d from plain text", ids[i]);
    free(ids);
    CHECK(ellm_tokenizer_is_stop(t, 2) && ellm_tokenizer_is_stop(t, 0), "smollm2 stops on <|im_end|> and <|endoftext|>");
    /* the SmolLM2-Instruct template adds its default system turn */
    const char *tmpl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                       "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                       "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
                       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
                       "'<|im_start|>assistant\\n' }}{% endif %}";
    CHECK(ellm_tokenizer_set_chat_template(t, tmpl, &err) == ELLM_OK, "%s", err.message);
    free(text);
    CHECK(ellm_tokenizer_chat_render(t, msgs, 1, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                        "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
          "smollm2-instruct '%s'", text);
    free(text);
    /* an unknown template is refused with a message */
    CHECK(ellm_tokenizer_set_chat_template(t, "{% for m in messages %}{{ m.content }}{% endfor %}", &err) ==
              ELLM_E_UNSUPPORTED,
          "unknown template accepted");
    ellm_tokenizer_free(t);
    /* a base SentencePiece vocabulary has no template: refused clearly */
    t = load_tok("hf/mistral-7b-instruct/mistral-common/tokenizer.model.v1");
    CHECK(ellm_tokenizer_chat_render(t, msgs, 1, 1, &text, &err) == ELLM_E_UNSUPPORTED, "no template accepted");
    ellm_tokenizer_free(t);
    printf("chatml / phi-3 gguf / refusals checked\n");
}

static void llama2_chat(void) {
    ellm_tokenizer *t = load_tok("llama2_tokenizer/tokenizer.model");
    ellm_error err;
    CHECK(ellm_tokenizer_set_chat_template(t, "llama2", &err) == ELLM_OK, "%s", err.message);
    const ellm_chat_message msgs[] = {{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello"}, {"user", "Bye"}};
    char *text;
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    /* jinja2 rendering of Llama-2-chat's template (it strips the content with
     * the system block in front, so the user's leading space stays) */
    CHECK(!strcmp(text, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello </s><s>[INST] Bye [/INST]"),
          "llama2 '%s'", text);
    size_t n;
    int32_t *ids = encode(t, text, 1, &n);
    CHECK(n > 4 && ids[0] == 1 && ids[1] == 518 /* ▁[ */, "llama2 chat ids start <s> ▁[");
    free(ids);
    free(text);
    ellm_tokenizer_free(t);
}

/* Llama 3 and Zephyr (TinyLlama-Chat): renderings equal jinja2's (HF's
 * trim_blocks/lstrip_blocks) for the templates those models ship. */
static void llama3_zephyr(void) {
    static const char j[] =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<|begin_of_text|>\", \"special\": true},"
        " {\"id\": 1, \"content\": \"<|start_header_id|>\", \"special\": true},"
        " {\"id\": 2, \"content\": \"<|end_header_id|>\", \"special\": true},"
        " {\"id\": 3, \"content\": \"<|eot_id|>\", \"special\": true}],"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\":"
        " \"<|begin_of_text|>\"}}, {\"Sequence\": {\"id\": \"A\"}}]},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4}, \"merges\": []}}";
    ellm_tokenizer *t;
    ellm_error err;
    CHECK(ellm_tokenizer_from_hf_json((const uint8_t *)j, strlen(j), "llama3", &t, &err) == ELLM_OK, "%s", err.message);
    if (g_failures) return;
    CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_LLAMA3, "llama3 from the vocabulary");
    CHECK(ellm_tokenizer_is_stop(t, 3), "<|eot_id|> stops");
    const ellm_chat_message msgs[] = {{"system", "You are terse."},
                                      {"user", " What is 2+2? "},
                                      {"assistant", "4."},
                                      {"user", "And 3+3?"}};
    char *text;
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>"
                        "assistant<|end_header_id|>\n\n4.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd "
                        "3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
          "llama3 '%s'", text);
    free(text);
    ellm_tokenizer_free(t);
    /* TinyLlama-1.1B-Chat's template, on the Llama 2 vocabulary */
    t = load_tok("llama2_tokenizer/tokenizer.model");
    const char *zephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
                         "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
                         "'<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
                         "'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
                         "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% "
                         "endfor %}";
    CHECK(ellm_tokenizer_set_chat_template(t, zephyr, &err) == ELLM_OK, "%s", err.message);
    CHECK(ellm_tokenizer_chat_format(t) == ELLM_CHAT_ZEPHYR, "zephyr detected");
    CHECK(ellm_tokenizer_chat_render(t, msgs, 4, 1, &text, &err) == ELLM_OK, "%s", err.message);
    CHECK(!strcmp(text, "<|system|>\nYou are terse.</s>\n<|user|>\n What is 2+2? </s>\n<|assistant|>\n4.</s>\n"
                        "<|user|>\nAnd 3+3?</s>\n<|assistant|>\n"),
          "zephyr '%s'", text);
    free(text);
    ellm_tokenizer_free(t);
    printf("llama3 / zephyr renderings checked\n");
}

int main(void) {
    mistral("mistral-v1", "hf/mistral-7b-instruct/mistral-common/tokenizer.model.v1", "mistral-v1",
            "hf/mistral-7b-instruct/mistral-common/samples/no_tools/tokens_v1.json",
            "hf/mistral-7b-instruct/mistral-common/samples/no_tools/text_v1.txt");
    mistral("mistral-v3", "hf/mistral-7b-instruct/mistral-common/mistral_instruct_tokenizer_240323.model.v3", NULL,
            "hf/mistral-7b-instruct/mistral-common/samples/no_tools/tokens_v3.json",
            "hf/mistral-7b-instruct/mistral-common/samples/no_tools/text_v3.txt");
    mistral_system();
    phi35();
    phi35_slow();
    phi3_gguf();
    chatml();
    llama2_chat();
    llama3_zephyr();
    if (g_failures) {
        fprintf(stderr, "%d failures\n", g_failures);
        return 1;
    }
    printf("all chat checks pass\n");
    return 0;
}
