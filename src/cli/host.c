/* badge host create|list|show|delete|join-token: hosts and their one-time join tokens.
 * `create` registers the host and prints a join token for `badge agent --join-token`. */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"

#define AV "api-version=2024-01-01"
static const char *const cols[] = {"name", "properties.state", "properties.hostname", "properties.instances", NULL};

int cli_host_main(int argc, char **argv)
{
	struct armcli c;
	char path[1200];
	int rc;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge host create|show|delete|join-token -n NAME | list [-o table]\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc, argv)))
		return rc;
	const char *cmd = argv[1], *n = armcli_opt(&c, "--name", "-n");
	if (!strcmp(cmd, "list")) {
		snprintf(path, sizeof(path), "/subscriptions/%s/providers/Badge.Compute/hosts?%s", c.s.subscription_id, AV);
		rc = armcli_do(&c, "GET", path, NULL, cols);
	} else if ((rc = armcli_need("--name", n))) {
	} else {
		snprintf(path, sizeof(path), "/subscriptions/%s/providers/Badge.Compute/hosts/%s", c.s.subscription_id, n);
		char full[1300];
		snprintf(full, sizeof(full), "%s?%s", path, AV);
		if (!strcmp(cmd, "create")) {
			json_t *b = json_object(), *host = NULL, *tok = NULL;
			rc = armcli_get(&c, "PUT", full, b, &host);
			json_decref(b);
			snprintf(full, sizeof(full), "%s/joinToken?%s", path, AV);
			if (!rc && !(rc = armcli_get(&c, "POST", full, NULL, &tok))) {
				json_object_set(host, "joinToken", json_object_get(tok, "joinToken"));
				json_object_set(host, "joinTokenExpiresOn", json_object_get(tok, "expiresOn"));
				armcli_print(&c, host, NULL);
			}
			json_decref(host);
			json_decref(tok);
		} else if (!strcmp(cmd, "join-token")) {
			snprintf(full, sizeof(full), "%s/joinToken?%s", path, AV);
			rc = armcli_do(&c, "POST", full, NULL, NULL);
		} else if (!strcmp(cmd, "show")) {
			rc = armcli_do(&c, "GET", full, NULL, cols);
		} else if (!strcmp(cmd, "delete")) {
			rc = armcli_do(&c, "DELETE", full, NULL, NULL);
		} else {
			rc = cli_fail("unknown host command '%s'", cmd);
		}
	}
	armcli_release(&c);
	return rc;
}
