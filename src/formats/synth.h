/*
 * synth.h - models with generated (not trained) weights in the exact tensor
 * names and shapes of a real architecture, written as a Hugging Face folder
 * (config.json + model.safetensors). Used by the demo and the speed
 * benchmarks, and to test every loader path at real shapes.
 */
#ifndef ELLM_SYNTH_H
#define ELLM_SYNTH_H

#include <stdint.h>

#include "entrollm.h"

/* Writes out_dir/config.json (the given config, num_hidden_layers replaced
 * when n_layers_override > 0, plus "entrollm_weights" saying the weights are
 * generated) and out_dir/model.safetensors, tensor by tensor (peak memory is
 * one tensor). Supported model_type: llama, mistral (q/k/v/o, gate/up/down),
 * phi3 (fused qkv_proj, gate_up_proj), qwen2 (llama + q/k/v biases).
 * Weights: linear and embeddings ~ N(0, 0.02), norms ~ 1 + N(0, 0.02),
 * biases ~ N(0, 0.02); each tensor seeded from (seed, its name), so the
 * output is deterministic. dtype: "f32", "f16" or "bf16". out_dir is created
 * if missing. */
ellm_status ellm_synth(const char *config_json_text, int n_layers_override, uint64_t seed, const char *dtype,
                       const char *out_dir, ellm_progress_fn progress, void *user, ellm_error *err);

/* Built-in config.json texts: "smollm-135m", "smollm-1.7b", "phi3-mini-4k",
 * "mistral-7b", "qwen2-0.5b". NULL for other names. */
const char *ellm_synth_builtin_config(const char *name);
/* The names above, NULL-terminated (for --help and error messages). */
const char *const *ellm_synth_builtin_names(void);

#endif /* ELLM_SYNTH_H */
