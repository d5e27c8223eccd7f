/* badge group create|show|list|delete (az group). */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"

#define AV "api-version=2022-09-01"
static const char *const cols[] = {"name", "location", "properties.provisioningState", NULL};

int cli_group_main(int argc, char **argv)
{
	struct armcli c;
	char path[1200];
	int rc;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge group create|show|delete -n NAME [-l LOCATION] | list [-o table]\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc, argv)))
		return rc;
	const char *cmd = argv[1], *name = armcli_opt(&c, "--name", "-n");
	if (!strcmp(cmd, "list")) {
		snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups?%s", c.s.subscription_id, AV);
		rc = armcli_do(&c, "GET", path, NULL, cols);
	} else if ((rc = armcli_need("--name", name))) {
	} else {
		snprintf(path, sizeof(path), "%s?%s", armcli_group_path(&c, name), AV);
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
			rc = cli_fail("unknown group command '%s'", cmd);
		}
	}
	armcli_release(&c);
	return rc;
}
