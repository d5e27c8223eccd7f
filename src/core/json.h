/* JSON helpers over jansson. Remember: json_object_set_new/json_array_append_new steal. */
#ifndef BC_JSON_H
#define BC_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"

/* Parses untrusted JSON: size capped by max (0 = BC_LIMIT_JSON_BYTES), nesting capped by
 * BC_LIMIT_JSON_DEPTH, duplicate keys rejected. BC_ERR_INVALID with a message naming the
 * position on bad input. */
int bc_json_parse(const char *s, size_t n, size_t max, json_t **out, struct bc_error *err) BC_MUST_CHECK;
/* Compact serialisation appended to out: the bytes jansson's json_dumps(JSON_COMPACT) would
 * write. On failure out is left as it was. */
int bc_json_dump(const json_t *j, struct bc_buf *out) BC_MUST_CHECK;
/* Appends s[0..n) as a quoted JSON string (for writers that skip building a tree). s must be
 * UTF-8: BC_ERR_INVALID otherwise, and out is left as it was. */
int bc_json_put_str(struct bc_buf *out, const char *s, size_t n) BC_MUST_CHECK;
char *bc_json_dumps(const json_t *j); /* malloc'd compact string or NULL */

/* Typed getters: return NULL / dflt when absent or of the wrong type. */
const char *bc_json_str(const json_t *obj, const char *key);
int64_t bc_json_int(const json_t *obj, const char *key, int64_t dflt);
bool bc_json_bool(const json_t *obj, const char *key, bool dflt);
/* Sets obj[key] = string s (no-op for NULL s). Returns 0 or BC_ERR_NOMEM. */
int bc_json_set_str(json_t *obj, const char *key, const char *s);
int bc_json_set_int(json_t *obj, const char *key, int64_t v);

#endif
