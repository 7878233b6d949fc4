/* jsonl.c - the JSON-lines reader shared by the HellaSwag .jsonl and GSM8k
 * parsers (see eval.h). */
#include <jansson.h>

#include "common/common.h"
#include "eval/eval.h"

ellm_status ellm_jsonl_each(const char *data, size_t len, const char *what, ellm_jsonl_fn fn, void *user,
                            ellm_error *err) {
    size_t pos = 0, line_no = 0;
    const char *s;
    size_t n;
    while (ellm_next_line(data, len, &pos, &s, &n)) {
        line_no++;
        if (ellm_blank(s, n)) continue;
        json_error_t je;
        json_t *o = json_loadb(s, n, 0, &je);
        if (!json_is_object(o)) {
            json_decref(o);
            return ellm_fail(err, ELLM_E_FORMAT, "%s: line %zu: not a JSON object (%s)", what, line_no,
                             o ? "another JSON value" : je.text);
        }
        ellm_status st = fn(user, o, what, line_no, err);
        json_decref(o);
        if (st != ELLM_OK) return st;
    }
    return ELLM_OK;
}

const char *ellm_json_string(const struct json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
