/* JSON helpers over jansson. Untrusted documents are bounded before jansson sees them: size by
 * the caller's cap, nesting by a pre-scan (jansson's own depth limit is 2048 and recursive). */
#include "core/json.h"

#include <stdio.h>
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

/* The serialiser: jansson's compact form, byte for byte (the same escapes, insertion order,
 * reals through jansson itself), without its per-character output callback. Strings held by
 * jansson are valid UTF-8 already, so only escaping is left. */
static const char hexd[] = "0123456789ABCDEF"; /* jansson writes \u001F */

/* 1 for the bytes that cannot appear raw inside a JSON string. */
static const unsigned char must_escape[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	['"'] = 1, ['\\'] = 1,
};

static int put_escaped(struct bc_buf *out, const char *s, size_t n)
{
	int rc = bc_buf_appendc(out, '"');
	size_t run = 0; /* start of the pending raw run */
	for (size_t i = 0; rc == BC_OK && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!must_escape[c])
			continue;
		rc = bc_buf_append(out, s + run, i - run);
		char e[6] = {'\\', 0};
		size_t en = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			memcpy(e, "\\u00", 4);
			e[4] = hexd[c >> 4];
			e[5] = hexd[c & 15];
			en = 6;
		}
		if (rc == BC_OK)
			rc = bc_buf_append(out, e, en);
		run = i + 1;
	}
	if (rc == BC_OK)
		rc = bc_buf_append(out, s + run, n - run);
	if (rc == BC_OK)
		rc = bc_buf_appendc(out, '"');
	return rc;
}

/* Is s[0..n) well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

int bc_json_put_str(struct bc_buf *out, const char *s, size_t n)
{
	if (!utf8_valid((const unsigned char *)s, n))
		return BC_ERR_INVALID;
	size_t before = out->len;
	int rc = put_escaped(out, s, n);
	if (rc != BC_OK) {
		out->len = before;
		if (out->data)
			out->data[before] = '\0';
	}
	return rc;
}

static int dump_value(const json_t *j, struct bc_buf *out, int depth)
{
	char num[64];
	int rc = BC_OK;
	if (depth > 2048) /* jansson's own bound; trees built in code never come near it */
		return BC_ERR_LIMIT;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		bool first = true;
		rc = bc_buf_appendc(out, '{');
		json_object_foreach((json_t *)j, k, v) {
			if (rc == BC_OK && !first)
				rc = bc_buf_appendc(out, ',');
			first = false;
			if (rc == BC_OK)
				rc = put_escaped(out, k, strlen(k));
			if (rc == BC_OK)
				rc = bc_buf_appendc(out, ':');
			if (rc == BC_OK)
				rc = dump_value(v, out, depth + 1);
			if (rc != BC_OK)
				return rc;
		}
		return rc == BC_OK ? bc_buf_appendc(out, '}') : rc;
	}
	case JSON_ARRAY: {
		rc = bc_buf_appendc(out, '[');
		for (size_t i = 0; rc == BC_OK && i < json_array_size(j); i++) {
			if (i)
				rc = bc_buf_appendc(out, ',');
			if (rc == BC_OK)
				rc = dump_value(json_array_get(j, i), out, depth + 1);
		}
		return rc == BC_OK ? bc_buf_appendc(out, ']') : rc;
	}
	case JSON_STRING:
		return put_escaped(out, json_string_value(j), json_string_length(j));
	case JSON_INTEGER: {
		int len = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return bc_buf_append(out, num, (size_t)len);
	}
	case JSON_REAL: {
		size_t len = json_dumpb(j, num, sizeof(num), JSON_ENCODE_ANY);
		if (len == 0 || len > sizeof(num))
			return BC_ERR_INVALID;
		return bc_buf_append(out, num, len);
	}
	case JSON_TRUE:
		return bc_buf_append(out, "true", 4);
	case JSON_FALSE:
		return bc_buf_append(out, "false", 5);
	case JSON_NULL:
		return bc_buf_append(out, "null", 4);
	}
	return BC_ERR_INVALID;
}

int bc_json_dump(const json_t *j, struct bc_buf *out)
{
	if (!j)
		return BC_ERR_INVALID;
	size_t before = out->len;
	int rc = dump_value(j, out, 0);
	if (rc != BC_OK) {
		out->len = before; /* nothing half-written stays behind */
		if (out->data)
			out->data[before] = '\0';
		return rc;
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
