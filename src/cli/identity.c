/* badge identity create|show|list|delete (az identity). */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"

#define AV "api-version=2023-01-31"
#define PT "providers/Microsoft.ManagedIdentity/userAssignedIdentities"
static const char *const cols[] = {"name", "location", "properties.clientId", "properties.principalId", NULL};

int cli_identity_main(int argc, char **argv)
{
	struct armcli c;
	char path[1200];
	int rc;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge identity create|show|delete -g GROUP -n NAME | list [-g GROUP]\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc, argv)))
		return rc;
	const char *cmd = argv[1], *g = armcli_opt(&c, "--resource-group", "-g"), *n = armcli_opt(&c, "--name", "-n");
	if (!strcmp(cmd, "list")) {
		if (g)
			snprintf(path, sizeof(path), "%s/%s?%s", armcli_group_path(&c, g), PT, AV);
		else
			snprintf(path, sizeof(path), "/subscriptions/%s/%s?%s", c.s.subscription_id, PT, AV);
		rc = armcli_do(&c, "GET", path, NULL, cols);
	} else if ((rc = armcli_need("--resource-group", g)) || (rc = armcli_need("--name", n))) {
	} else {
		snprintf(path, sizeof(path), "%s/%s/%s?%s", armcli_group_path(&c, g), PT, n, AV);
		if (!strcmp(cmd, "create")) {
			const char *loc = armcli_opt(&c, "--location", "-l");
			json_t *b = json_pack("{s:s}", "location", loc ? loc : "local");
			rc = armcli_do(&c, "PUT", path, b, cols);
			json_decref(b);
		} else if (!strcmp(cmd, "show")) {
			rc = armcli_do(&c, "GET", path, NULL, cols);
		} else if (!strcmp(cmd, "delete")) {
			rc = armcli_do(&c, "DELETE", path, NULL, NULL);
		} else {
			rc = cli_fail("unknown identity command '%s'", cmd);
		}
	}
	armcli_release(&c);
	return rc;
}
