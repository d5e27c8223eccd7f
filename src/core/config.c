/* Configuration files: "key = value" lines checked against a caller's spec table.
 *
 * A parse is all-or-nothing: every line is validated and converted into a pending list first,
 * and only a fully valid file is applied to the object, so a bad file never leaves a half-set
 * configuration behind. Each key appears at most once, so the list needs at most n entries. */
#include "core/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/limits.h"
#include "core/util.h"

struct pending {
	size_t idx; /* into spec */
	int line;
	char *s;   /* owned, BC_CONF_STRING */
	int64_t i; /* BC_CONF_INT, BC_CONF_DURATION */
	bool b;    /* BC_CONF_BOOL */
};

/* Sets err to "line N: <message>" (or just the message when line is 0). */
static int conf_err(struct bc_error *err, int st, int line, const char *fmt, ...) BC_PRINTF(4, 5);
static int conf_err(struct bc_error *err, int st, int line, const char *fmt, ...)
{
	char msg[BC_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		return bc_error_set(err, st, "line %d: %s", line, msg);
	return bc_error_set(err, st, "%s", msg);
}

int bc_duration_parse(const char *s, int64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return BC_ERR_INVALID;
	int64_t v = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return BC_ERR_INVALID;
		v = v * 10 + (*p - '0');
	}
	int64_t mult;
	switch (*p) {
	case '\0':
		mult = 1;
		break;
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return BC_ERR_INVALID;
	}
	if (*p && p[1] != '\0')
		return BC_ERR_INVALID;
	if (v > INT64_MAX / mult)
		return BC_ERR_INVALID;
	*out = v * mult;
	return BC_OK;
}

static int parse_int(const char *s, int64_t *out)
{
	if (!*s)
		return BC_ERR_INVALID;
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p < '0' || *p > '9') /* strtoll would accept leading spaces */
		return BC_ERR_INVALID;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return BC_ERR_INVALID;
	*out = v;
	return BC_OK;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (bc_streq_ci(s, yes[i])) {
			*out = true;
			return BC_OK;
		}
		if (bc_streq_ci(s, no[i])) {
			*out = false;
			return BC_OK;
		}
	}
	return BC_ERR_INVALID;
}

/* Converts value for spec entry sp into pv; on failure err names the key (and line). */
static int convert(const struct bc_config_spec *sp, const char *value, int line, struct pending *pv,
		   struct bc_error *err)
{
	switch (sp->type) {
	case BC_CONF_STRING:
		pv->s = strdup(value);
		if (!pv->s)
			return conf_err(err, BC_ERR_NOMEM, line, "%s: out of memory", sp->key);
		return BC_OK;
	case BC_CONF_BOOL:
		if (parse_bool(value, &pv->b) != BC_OK)
			return conf_err(err, BC_ERR_INVALID, line,
					"%s: invalid boolean '%.40s' (expected true or false)", sp->key,
					value);
		return BC_OK;
	case BC_CONF_INT:
		if (parse_int(value, &pv->i) != BC_OK)
			return conf_err(err, BC_ERR_INVALID, line, "%s: invalid integer '%.40s'", sp->key,
					value);
		break;
	case BC_CONF_DURATION:
		if (bc_duration_parse(value, &pv->i) != BC_OK)
			return conf_err(err, BC_ERR_INVALID, line,
					"%s: invalid duration '%.40s' (expected e.g. 90s, 15m, 24h, 7d)",
					sp->key, value);
		break;
	default:
		return conf_err(err, BC_ERR_INTERNAL, line, "%s: unknown type in spec", sp->key);
	}
	if ((sp->min || sp->max) && (pv->i < sp->min || pv->i > sp->max))
		return conf_err(err, BC_ERR_INVALID, line,
				"%s: %.40s out of range (%" PRId64 "..%" PRId64 ")", sp->key, value, sp->min,
				sp->max);
	return BC_OK;
}

static void pending_free(struct pending *pv, size_t np)
{
	for (size_t i = 0; i < np; i++)
		free(pv[i].s);
}

/* Writes the pending values into obj; cannot fail. Takes the strings. */
static void apply(void *obj, const struct bc_config_spec *spec, struct pending *pv, size_t np)
{
	for (size_t i = 0; i < np; i++) {
		const struct bc_config_spec *sp = &spec[pv[i].idx];
		char *field = (char *)obj + sp->offset;
		switch (sp->type) {
		case BC_CONF_STRING: {
			char **dst = (char **)(void *)field;
			free(*dst);
			*dst = pv[i].s;
			pv[i].s = NULL;
			break;
		}
		case BC_CONF_BOOL:
			*(bool *)(void *)field = pv[i].b;
			break;
		default:
			*(int64_t *)(void *)field = pv[i].i;
			break;
		}
	}
}

static const struct bc_config_spec *lookup(const struct bc_config_spec *spec, size_t n, const char *key,
					   size_t klen, size_t *idx)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(spec[i].key) == klen && memcmp(spec[i].key, key, klen) == 0) {
			*idx = i;
			return &spec[i];
		}
	}
	return NULL;
}

int bc_config_defaults(void *obj, const struct bc_config_spec *spec, size_t n, struct bc_error *err)
{
	struct pending *pv = calloc(n ? n : 1, sizeof(*pv));
	if (!pv)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		if (!spec[i].dflt)
			continue;
		pv[np].idx = i;
		if (convert(&spec[i], spec[i].dflt, 0, &pv[np], err) != BC_OK) {
			bc_error_wrap(err, "bad default");
			pending_free(pv, np);
			free(pv);
			return err ? err->status : BC_ERR_INTERNAL;
		}
		np++;
	}
	apply(obj, spec, pv, np);
	free(pv);
	return BC_OK;
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Reads a quoted value starting after the opening quote, into out (at least as large as the
 * line). *pp is left after the closing quote. */
static int read_quoted(const char **pp, const char *end, char *out, int line, struct bc_error *err)
{
	const char *p = *pp;
	size_t o = 0;
	for (;;) {
		if (p >= end)
			return conf_err(err, BC_ERR_INVALID, line, "unterminated quoted value");
		char c = *p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (p >= end)
				return conf_err(err, BC_ERR_INVALID, line, "unterminated quoted value");
			c = *p++;
			if (c == 'n')
				c = '\n';
			else if (c != '"' && c != '\\')
				return conf_err(err, BC_ERR_INVALID, line,
						"bad escape '\\%c' in quoted value",
						(c >= 0x20 && c < 0x7f) ? c : '?');
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*pp = p;
	return BC_OK;
}

/* Parses one line (without its newline) into pv[*np], unless it is blank or a comment. */
static int parse_line(const char *p, const char *end, int line, const struct bc_config_spec *spec, size_t n,
		      struct pending *pv, size_t *np, char *scratch, struct bc_error *err)
{
	if (end > p && end[-1] == '\r')
		end--;
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return BC_OK;
	const char *key = p;
	while (p < end && is_key_char(*p))
		p++;
	size_t klen = (size_t)(p - key);
	if (klen == 0)
		return conf_err(err, BC_ERR_INVALID, line, "expected 'key = value'");
	while (p < end && is_space(*p))
		p++;
	if (p == end || *p != '=')
		return conf_err(err, BC_ERR_INVALID, line, "expected '=' after '%.*s'",
				(int)(klen > 64 ? 64 : klen), key);
	p++;
	while (p < end && is_space(*p))
		p++;
	if (p < end && *p == '"') {
		p++;
		int rc = read_quoted(&p, end, scratch, line, err);
		if (rc)
			return rc;
		while (p < end && is_space(*p))
			p++;
		if (p < end && *p != '#')
			return conf_err(err, BC_ERR_INVALID, line, "unexpected text after quoted value");
	} else {
		/* Unquoted: up to a '#' that follows whitespace, trailing whitespace trimmed. */
		const char *v = p, *ve = p;
		for (; p < end; p++) {
			if (*p == '#' && p > v && is_space(p[-1]))
				break;
			if (!is_space(*p))
				ve = p + 1;
		}
		if (v < end && *v == '#')
			ve = v; /* "key = # comment": empty value */
		memcpy(scratch, v, (size_t)(ve - v));
		scratch[ve - v] = '\0';
	}
	size_t idx;
	const struct bc_config_spec *sp = lookup(spec, n, key, klen, &idx);
	if (!sp)
		return conf_err(err, BC_ERR_INVALID, line, "unknown key '%.*s'", (int)(klen > 64 ? 64 : klen),
				key);
	for (size_t i = 0; i < *np; i++)
		if (pv[i].idx == idx)
			return conf_err(err, BC_ERR_INVALID, line,
					"duplicate key '%s' (first set on line %d)", sp->key, pv[i].line);
	struct pending *e = &pv[*np];
	memset(e, 0, sizeof(*e));
	e->idx = idx;
	e->line = line;
	int rc = convert(sp, scratch, line, e, err);
	if (rc)
		return rc;
	(*np)++;
	return BC_OK;
}

int bc_config_parse(void *obj, const struct bc_config_spec *spec, size_t n, const char *text, size_t len,
		    struct bc_error *err)
{
	if (len > BC_LIMIT_CONFIG_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "configuration too large: %zu bytes (limit %d)", len,
				    BC_LIMIT_CONFIG_BYTES);
	int rc = BC_OK;
	size_t np = 0;
	struct pending *pv = calloc(n ? n : 1, sizeof(*pv));
	char *scratch = malloc(BC_LIMIT_CONFIG_LINE + 1);
	if (!pv || !scratch) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto out;
	}
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > BC_LIMIT_CONFIG_LINE) {
			rc = conf_err(err, BC_ERR_LIMIT, line, "line too long (limit %d bytes)",
				      BC_LIMIT_CONFIG_LINE);
			goto out;
		}
		if (memchr(p, '\0', (size_t)(le - p))) {
			rc = conf_err(err, BC_ERR_INVALID, line, "NUL byte");
			goto out;
		}
		rc = parse_line(p, le, line, spec, n, pv, &np, scratch, err);
		if (rc)
			goto out;
		p = nl ? nl + 1 : end;
	}
	apply(obj, spec, pv, np);
out:
	if (pv)
		pending_free(pv, np);
	free(pv);
	free(scratch);
	return rc;
}

int bc_config_load(void *obj, const struct bc_config_spec *spec, size_t n, const char *path,
		   struct bc_error *err)
{
	char *text;
	size_t len;
	int rc = bc_read_file(path, BC_LIMIT_CONFIG_BYTES, &text, &len, err);
	if (rc) {
		if (rc == BC_ERR_LIMIT)
			bc_error_set(err, rc, "configuration too large: %s (limit %d bytes)", path,
				     BC_LIMIT_CONFIG_BYTES);
		return rc;
	}
	rc = bc_config_parse(obj, spec, n, text, len, err);
	free(text);
	if (rc)
		bc_error_wrap(err, "%s", path);
	return rc;
}

int bc_config_set(void *obj, const struct bc_config_spec *spec, size_t n, const char *key, const char *value,
		  struct bc_error *err)
{
	size_t idx;
	const struct bc_config_spec *sp = lookup(spec, n, key, strlen(key), &idx);
	if (!sp)
		return bc_error_set(err, BC_ERR_INVALID, "unknown key '%.64s'", key);
	if (strlen(value) > BC_LIMIT_CONFIG_LINE)
		return bc_error_set(err, BC_ERR_LIMIT, "%s: value too long (limit %d bytes)", sp->key,
				    BC_LIMIT_CONFIG_LINE);
	struct pending pv = {.idx = idx};
	int rc = convert(sp, value, 0, &pv, err);
	if (rc)
		return rc;
	apply(obj, spec, &pv, 1);
	return BC_OK;
}

void bc_config_release(void *obj, const struct bc_config_spec *spec, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (spec[i].type != BC_CONF_STRING)
			continue;
		char **dst = (char **)(void *)((char *)obj + spec[i].offset);
		free(*dst);
		*dst = NULL;
	}
}
