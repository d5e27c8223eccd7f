/* Fuzzes the configuration parser: arbitrary text against a spec of every type. Invariants: no
 * crash or leak, and a failed parse leaves the object exactly as it was. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"

struct conf {
	char *name;
	char *url;
	int64_t count;
	int64_t lifetime;
	int64_t any;
	bool flag;
};

static const struct bc_config_spec spec[] = {
	{"name", BC_CONF_STRING, offsetof(struct conf, name), "", "dflt", 0, 0},
	{"store.url", BC_CONF_STRING, offsetof(struct conf, url), "", NULL, 0, 0},
	{"count", BC_CONF_INT, offsetof(struct conf, count), "", "3", 1, 1000},
	{"any", BC_CONF_INT, offsetof(struct conf, any), "", NULL, 0, 0},
	{"lifetime", BC_CONF_DURATION, offsetof(struct conf, lifetime), "", "24h", 60, 7 * 86400},
	{"flag", BC_CONF_BOOL, offsetof(struct conf, flag), "", "false", 0, 0},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c = {0};
	struct bc_error err;
	if (bc_config_defaults(&c, spec, NSPEC, &err) != BC_OK)
		abort();
	int rc = bc_config_parse(&c, spec, NSPEC, (const char *)data, size, &err);
	if (rc != BC_OK) {
		if (!err.msg[0] || strcmp(c.name, "dflt") != 0 || c.count != 3 || c.lifetime != 86400 ||
		    c.flag || c.url)
			abort();
	} else if (c.count < 1 || c.count > 1000 || c.lifetime < 60 || c.lifetime > 7 * 86400) {
		abort(); /* a bound was not enforced */
	}
	bc_config_release(&c, spec, NSPEC);

	/* The same bytes as one flag value and as a duration. */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t d = -1;
	if (bc_duration_parse(s, &d) == BC_OK && d < 0)
		abort();
	struct conf c2 = {0};
	if (bc_config_set(&c2, spec, NSPEC, "name", s, &err) == BC_OK && strcmp(c2.name, s) != 0)
		abort();
	if (bc_config_set(&c2, spec, NSPEC, "count", s, &err) == BC_OK && (c2.count < 1 || c2.count > 1000))
		abort();
	if (bc_config_set(&c2, spec, NSPEC, "flag", s, &err) != BC_OK && !err.msg[0])
		abort();
	bc_config_release(&c2, spec, NSPEC);
	free(s);
	return 0;
}
