/* pending.c - the GGUF model reader (replaced in the next commit). */
#include "common/common.h"
#include "formats/source.h"

ellm_status src_open_gguf(const char *path, src_model **out, ellm_error *err) {
    *out = NULL;
    return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: GGUF models: reader not built yet", path);
}
