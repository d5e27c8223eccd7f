/* Shared plumbing of the resource-manager command families (group, identity, vm, keyvault,
 * role, host, login): flag lookup, ARM calls through the session, JSON or table output. */
#ifndef BADGE_CLI_ARMCLI_H
#define BADGE_CLI_ARMCLI_H

#include <jansson.h>
#include <stdbool.h>
#include "cli/session.h"

struct armcli {
	struct cli_session s;
	int argc;
	char **argv;
	bool table;
};

/* Initialises the session (consuming its flags) and "-o/--output". Returns 0 or prints. */
int armcli_init(struct armcli *c, int argc, char **argv);
void armcli_release(struct armcli *c);
/* Value of --long or -short (NULL when absent). */
const char *armcli_opt(const struct armcli *c, const char *lng, const char *shrt);
bool armcli_flag(const struct armcli *c, const char *lng);
/* Every value after --long up to the next flag, in *out (NULL-terminated, max n-1). */
int armcli_list(const struct armcli *c, const char *lng, const char **out, int n);
/* Calls the server and prints the result (JSON, or the table columns). Returns the exit code. */
int armcli_do(struct armcli *c, const char *method, const char *path, json_t *body, const char *const *cols);
/* Calls without printing; *out gets the body. Returns 0 on 2xx, prints the error otherwise. */
int armcli_get(struct armcli *c, const char *method, const char *path, json_t *body, json_t **out);
void armcli_print(const struct armcli *c, json_t *j, const char *const *cols);
int armcli_need(const char *what, const char *v); /* 0 when v set, else prints and returns 2 */
/* /subscriptions/S/resourceGroups/G */
const char *armcli_group_path(struct armcli *c, const char *group);

#endif
