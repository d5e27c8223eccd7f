/* Shared plumbing of the resource-manager command families. */
#include "cli/armcli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json.h"

int armcli_init(struct armcli *c, int argc, char **argv)
{
	struct bc_error err = {0};
	memset(c, 0, sizeof(*c));
	if (cli_session_init(&c->s, &argc, argv, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	c->argc = argc;
	c->argv = argv;
	const char *o = armcli_opt(c, "--output", "-o");
	c->table = o && !strcmp(o, "table");
	return 0;
}

void armcli_release(struct armcli *c)
{
	cli_session_release(&c->s);
}

const char *armcli_opt(const struct armcli *c, const char *lng, const char *shrt)
{
	for (int i = 1; i + 1 < c->argc; i++)
		if ((lng && !strcmp(c->argv[i], lng)) || (shrt && !strcmp(c->argv[i], shrt)))
			return c->argv[i + 1];
	return NULL;
}

bool armcli_flag(const struct armcli *c, const char *lng)
{
	for (int i = 1; i < c->argc; i++)
		if (!strcmp(c->argv[i], lng))
			return true;
	return false;
}

int armcli_list(const struct armcli *c, const char *lng, const char **out, int n)
{
	int k = 0;
	for (int i = 1; i < c->argc; i++)
		if (!strcmp(c->argv[i], lng))
			for (int j = i + 1; j < c->argc && strncmp(c->argv[j], "--", 2) && k < n - 1; j++)
				out[k++] = c->argv[j];
	out[k] = NULL;
	return k;
}

int armcli_need(const char *what, const char *v)
{
	if (v && *v)
		return 0;
	fprintf(stderr, "badge: %s is required\n", what);
	return 2;
}

const char *armcli_group_path(struct armcli *c, const char *group)
{
	static char p[1024];
	snprintf(p, sizeof(p), "/subscriptions/%s/resourceGroups/%s", c->s.subscription_id, group);
	return p;
}

static void cell(const json_t *j, const char *path, char *out, size_t n)
{
	char key[128];
	const json_t *v = j;
	const char *p = path;
	while (v && *p) {
		size_t l = strcspn(p, ".");
		snprintf(key, sizeof(key), "%.*s", (int)l, p);
		v = json_object_get(v, key);
		p += l + (p[l] == '.');
	}
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (v && !json_is_null(v)) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(out, n, "%s", s ? s : "");
		free(s);
	} else
		snprintf(out, n, "%s", "");
}

void armcli_print(const struct armcli *c, json_t *j, const char *const *cols)
{
	if (!c->table || !cols) {
		if (j)
			cli_print_json(j);
		return;
	}
	json_t *rows = json_object_get(j, "value");
	size_t i;
	json_t *r;
	for (const char *const *col = cols; *col; col++) {
		const char *dot = strrchr(*col, '.');
		printf("%-28s ", dot ? dot + 1 : *col);
	}
	printf("\n");
	if (!rows) {
		rows = json_array();
		json_array_append(rows, j);
	} else {
		json_incref(rows);
	}
	json_array_foreach(rows, i, r)
	{
		for (const char *const *col = cols; *col; col++) {
			char v[512];
			cell(r, *col, v, sizeof(v));
			printf("%-28s ", v);
		}
		printf("\n");
	}
	json_decref(rows);
}

int armcli_get(struct armcli *c, const char *method, const char *path, json_t *body, json_t **out)
{
	struct bc_error err = {0};
	long status = 0;
	*out = NULL;
	if (cli_session_call(&c->s, method, path, body, &status, out, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	if (status < 200 || status > 299) {
		int rc = cli_session_fail(status, *out);
		json_decref(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

int armcli_do(struct armcli *c, const char *method, const char *path, json_t *body, const char *const *cols)
{
	json_t *out = NULL;
	int rc = armcli_get(c, method, path, body, &out);
	if (rc == 0)
		armcli_print(c, out, cols);
	json_decref(out);
	return rc;
}
