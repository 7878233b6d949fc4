/*
 * generate.c - the generation loop shared by `run`, `chat` and the
 * benchmarks: prefill the prompt in one batch, then sample and run one token
 * at a time, timing both phases separately.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static int is_stop(const ellm_model *m, int32_t id) {
    if (!m->tok) return id == m->llm.cfg.eos_id;
    if (ellm_tokenizer_is_stop(m->tok, id)) return 1;
    /* llama2.c's run.c ends a sample when BOS comes back. */
    return ellm_tokenizer_kind(m->tok) == ELLM_TOK_LLAMA2C && id == ellm_tokenizer_bos(m->tok);
}

ellm_status ellm_generate(ellm_model *m, const int32_t *prompt, int n_prompt, int n_cached,
                          const ellm_gen_params *p, ellm_gen_result *res, ellm_error *err) {
    memset(res, 0, sizeof *res);
    res->n_prompt = n_prompt;
    res->last_token = -1;
    if (n_prompt < 1) return ellm_fail(err, ELLM_E_ARG, "generate: the prompt is empty");
    if (p->max_new_tokens < 0) return ellm_fail(err, ELLM_E_ARG, "generate: negative token count");
    const int V = m->llm.cfg.vocab_size, max_ctx = m->llm.cfg.max_ctx;
    if (n_prompt > max_ctx)
        return ellm_fail(err, ELLM_E_ARG, "generate: the prompt has %d tokens, the context only %d", n_prompt, max_ctx);
    n_cached = ELLM_MAX(0, ELLM_MIN(n_cached, ELLM_MIN(n_prompt - 1, m->llm.n_cached)));
    float *logits = ellm_malloc((size_t)V * sizeof(float), err);
    ellm_sampler *s = ellm_sampler_new(&p->sampler, V);
    ellm_status st = ELLM_OK;
    if (!logits || !s) {
        st = logits ? ellm_fail(err, ELLM_E_ARG, "generate: bad sampler options (temperature >= 0, 0 < top_p <= 1)")
                    : ELLM_E_NOMEM;
        goto done;
    }
    double t0 = ellm_now();
    st = ellm_model_forward(m, prompt + n_cached, n_prompt - n_cached, n_cached, logits, 0, err);
    if (st) goto done;
    res->prefill_seconds = ellm_now() - t0;
    res->n_prefilled = n_prompt - n_cached;

    int pos = n_prompt;
    int32_t prev = prompt[n_prompt - 1];
    t0 = ellm_now();
    for (;;) {
        if (res->n_generated >= p->max_new_tokens) {
            res->stop = ELLM_GEN_STOP_LENGTH;
            break;
        }
        int32_t next = ellm_sample(s, logits);
        res->last_token = next;
        if (is_stop(m, next)) {
            res->stop = ELLM_GEN_STOP_TOKEN;
            break;
        }
        res->n_generated++;
        if (p->on_token) {
            const char *piece = "";
            size_t len = m->tok ? ellm_tokenizer_stream_piece(m->tok, prev, next, &piece) : 0;
            if (p->on_token(p->user, next, piece, len)) {
                res->stop = ELLM_GEN_STOP_CALLER;
                break;
            }
        }
        if (res->n_generated >= p->max_new_tokens) {
            res->stop = ELLM_GEN_STOP_LENGTH;
            break; /* no forward pass for a token nobody will see */
        }
        if (pos >= max_ctx) {
            res->stop = ELLM_GEN_STOP_CONTEXT;
            break;
        }
        if ((st = ellm_model_forward(m, &next, 1, pos, logits, 0, err))) break;
        res->n_gen_forwards++;
        pos++;
        prev = next;
    }
    res->gen_seconds = ellm_now() - t0;
done:
    ellm_sampler_free(s);
    free(logits);
    return st;
}
