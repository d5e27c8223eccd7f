/* JSON helpers over jansson. Untrusted documents are bounded before jansson sees them: size by
 * the caller's cap, nesting by a pre-scan (jansson's own depth limit is 2048 and recursive). */
#include "core/json.h"

#include <stdlib.h>
#include <string.h>
#include "core/limits.h"

/* Deepest nesting of [ and { outside strings; stops counting once past limit. */
static size_t json_depth(const char *s, size_t n, size_t limit)
{
	size_t depth = 0, max = 0;
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++; /* skip the escaped character, whatever it is */
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* jansson's messages may quote the input ("... near 'secret'"); the quote is cut so that no part
 * of a document (which may hold a secret) reaches a log or an error. */
static void strip_near(char *text)
{
	char *p = strstr(text, " near '");
	if (p)
		*p = '\0';
}

int bc_json_parse(const char *s, size_t n, size_t max, json_t **out, struct bc_error *err)
{
	if (max == 0)
		max = BC_LIMIT_JSON_BYTES;
	if (n > max)
		return bc_error_set(err, BC_ERR_LIMIT, "json document too large: %zu bytes (limit %zu)", n,
				    max);
	if (json_depth(s, n, BC_LIMIT_JSON_DEPTH) > BC_LIMIT_JSON_DEPTH)
		return bc_error_set(err, BC_ERR_LIMIT, "json nested too deeply (limit %d)",
				    BC_LIMIT_JSON_DEPTH);
	json_error_t je;
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		strip_near(je.text);
		return bc_error_set(err, BC_ERR_INVALID, "invalid json at line %d column %d (byte %d): %s",
				    je.line, je.column, je.position, je.text);
	}
	*out = j;
	return BC_OK;
}

struct dump_ctx {
	struct bc_buf *b;
	int rc; /* the first failure of bc_buf_append: the cap or memory */
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
	struct dump_ctx *c = data;
	if (!c->rc)
		c->rc = bc_buf_append(c->b, buffer, size);
	return c->rc ? -1 : 0;
}

int bc_json_dump(const json_t *j, struct bc_buf *out)
{
	if (!j)
		return BC_ERR_INVALID;
	size_t before = out->len;
	struct dump_ctx c = {out, BC_OK};
	if (json_dump_callback(j, dump_cb, &c, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
		out->len = before; /* nothing half-written stays behind */
		if (out->data)
			out->data[before] = '\0';
		return c.rc ? c.rc : BC_ERR_NOMEM;
	}
	return bc_buf_append(out, "", 0); /* NUL-terminates an empty dump too */
}

char *bc_json_dumps(const json_t *j)
{
	if (!j)
		return NULL;
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

const char *bc_json_str(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t bc_json_int(const json_t *obj, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool bc_json_bool(const json_t *obj, const char *key, bool dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int bc_json_set_str(json_t *obj, const char *key, const char *s)
{
	if (!s)
		return BC_OK;
	/* json_string fails on memory or on s that is not UTF-8; json_object_set_new steals v even
	 * when it fails. */
	json_t *v = json_string(s);
	if (!v)
		return BC_ERR_NOMEM;
	return json_object_set_new(obj, key, v) == 0 ? BC_OK : BC_ERR_NOMEM;
}

int bc_json_set_int(json_t *obj, const char *key, int64_t v)
{
	json_t *n = json_integer((json_int_t)v);
	if (!n)
		return BC_ERR_NOMEM;
	return json_object_set_new(obj, key, n) == 0 ? BC_OK : BC_ERR_NOMEM;
}
