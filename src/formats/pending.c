/* pending.c - readers not written yet (replaced in the next commits). */
#include "common/common.h"
#include "formats/source.h"

ellm_status src_open_hf(const char *dir, src_model **out, ellm_error *err) {
    *out = NULL;
    return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: Hugging Face folders: reader not built yet", dir);
}
ellm_status src_open_gguf(const char *path, src_model **out, ellm_error *err) {
    *out = NULL;
    return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: GGUF models: reader not built yet", path);
}
