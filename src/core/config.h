/* Configuration files: "key = value" lines, '#' comments, blank lines; values may be quoted
 * with "..." (backslash escapes \" \\ \n). Keys are declared by the caller in a spec table;
 * an unknown key, a duplicate key or a value of the wrong type is an error naming the line.
 * Flags given on the command line override the file (apply them after loading).
 * An unquoted value ends at a '#' that follows whitespace (a trailing comment) and is trimmed;
 * quote a value that must hold " #". Booleans: true/false, yes/no, on/off, 1/0. Parsing is
 * all-or-nothing: on any error nothing of the file is applied. Messages look like
 * "line 3: unknown key 'foo'" (bc_config_load prefixes the path). */
#ifndef BC_CONFIG_H
#define BC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

enum bc_config_type { BC_CONF_STRING, BC_CONF_INT, BC_CONF_BOOL, BC_CONF_DURATION /* "24h" "90s" "7d" -> seconds */ };

struct bc_config_spec {
	const char *key;
	enum bc_config_type type;
	size_t offset;      /* offsetof(struct yours, field): char * (owned, malloc'd), int64_t or bool */
	const char *help;   /* one line, for --help and the reference config */
	const char *dflt;   /* default as text, applied by bc_config_defaults (NULL = none) */
	int64_t min, max;   /* bounds for INT/DURATION (min == max == 0: unbounded) */
};

/* Applies every default of spec to obj. */
int bc_config_defaults(void *obj, const struct bc_config_spec *spec, size_t n, struct bc_error *err) BC_MUST_CHECK;
/* Parses text into obj (bounded by BC_LIMIT_CONFIG_BYTES / BC_LIMIT_CONFIG_LINE). */
int bc_config_parse(void *obj, const struct bc_config_spec *spec, size_t n, const char *text, size_t len,
		    struct bc_error *err) BC_MUST_CHECK;
int bc_config_load(void *obj, const struct bc_config_spec *spec, size_t n, const char *path,
		   struct bc_error *err) BC_MUST_CHECK;
/* Sets one key from a flag value (same checks as the file). */
int bc_config_set(void *obj, const struct bc_config_spec *spec, size_t n, const char *key, const char *value,
		  struct bc_error *err) BC_MUST_CHECK;
/* Frees the strings owned by obj. */
void bc_config_release(void *obj, const struct bc_config_spec *spec, size_t n);
/* Parses "24h", "90s", "15m", "7d", or plain seconds. */
int bc_duration_parse(const char *s, int64_t *out) BC_MUST_CHECK;

#endif
