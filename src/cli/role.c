/* badge role assignment create|list|delete (az role assignment). */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"
#include "core/httpc.h"
#include "core/util.h"

#define AV "api-version=2022-04-01"
static const char *const cols[] = {"name", "properties.principalId", "properties.roleDefinitionId", "properties.scope",
				   NULL};

int cli_role_main(int argc, char **argv)
{
	struct armcli c;
	char path[2048], scope_buf[1024];
	int rc;
	if (argc < 3 || strcmp(argv[1], "assignment")) {
		fprintf(stderr, "usage: badge role assignment create --assignee-object-id OID --role NAME|GUID [--scope S]\n"
				"       badge role assignment list [--assignee OID] [--scope S]\n"
				"       badge role assignment delete (--ids ID | --assignee OID --role R [--scope S])\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc - 1, argv + 1)))
		return rc;
	const char *cmd = argv[2], *scope = armcli_opt(&c, "--scope", NULL);
	const char *who = armcli_opt(&c, "--assignee-object-id", NULL);
	const char *role = armcli_opt(&c, "--role", NULL);
	if (!who)
		who = armcli_opt(&c, "--assignee", NULL);
	if (!scope) {
		snprintf(scope_buf, sizeof(scope_buf), "/subscriptions/%s", c.s.subscription_id);
		scope = scope_buf;
	}
	if (!strcmp(cmd, "create")) {
		char rd[512], guid[37];
		json_t *defs = NULL;
		if ((rc = armcli_need("--assignee-object-id", who)) || (rc = armcli_need("--role", role)))
			goto out;
		if (bc_is_uuid(role)) {
			snprintf(rd, sizeof(rd), "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s",
				 c.s.subscription_id, role);
		} else {
			struct bc_buf q = {0};
			if (bc_httpc_escape(role, &q) != BC_OK) {
				rc = cli_fail("out of memory");
				goto out;
			}
			snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/roleDefinitions?%s&$filter=roleName%%20eq%%20'%s'",
				 scope, AV, bc_buf_cstr(&q));
			bc_buf_release(&q);
			if ((rc = armcli_get(&c, "GET", path, NULL, &defs)))
				goto out;
			const char *id = json_string_value(json_object_get(json_array_get(json_object_get(defs, "value"), 0), "id"));
			if (!id) {
				json_decref(defs);
				rc = cli_fail("role '%s' does not exist", role);
				goto out;
			}
			snprintf(rd, sizeof(rd), "%s", id);
			json_decref(defs);
		}
		if (bc_uuid4(guid)) {
			rc = cli_fail("cannot generate an assignment id");
			goto out;
		}
		snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/roleAssignments/%s?%s", scope, guid, AV);
		json_t *b = json_pack("{s:{s:s,s:s,s:s}}", "properties", "roleDefinitionId", rd, "principalId", who,
				      "principalType", "ServicePrincipal");
		rc = armcli_do(&c, "PUT", path, b, cols);
		json_decref(b);
	} else if (!strcmp(cmd, "list")) {
		if (who)
			snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/roleAssignments?%s&$filter=principalId%%20eq%%20'%s'",
				 scope, AV, who);
		else
			snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/roleAssignments?%s", scope, AV);
		rc = armcli_do(&c, "GET", path, NULL, cols);
	} else if (!strcmp(cmd, "delete")) {
		const char *ids = armcli_opt(&c, "--ids", NULL);
		if (ids) {
			snprintf(path, sizeof(path), "%s?%s", ids, AV);
			rc = armcli_do(&c, "DELETE", path, NULL, NULL);
			goto out;
		}
		json_t *list = NULL;
		size_t i;
		json_t *a;
		if ((rc = armcli_need("--assignee", who)))
			goto out;
		snprintf(path, sizeof(path), "%s/providers/Microsoft.Authorization/roleAssignments?%s&$filter=principalId%%20eq%%20'%s'",
			 scope, AV, who);
		if ((rc = armcli_get(&c, "GET", path, NULL, &list)))
			goto out;
		json_array_foreach(json_object_get(list, "value"), i, a)
		{
			const char *sc = json_string_value(json_object_get(json_object_get(a, "properties"), "scope"));
			const char *rdid = json_string_value(json_object_get(json_object_get(a, "properties"), "roleDefinitionId"));
			if (!sc || strcasecmp(sc, scope) || (role && rdid && !strstr(rdid, role) && bc_is_uuid(role)))
				continue;
			snprintf(path, sizeof(path), "%s?%s", json_string_value(json_object_get(a, "id")), AV);
			json_t *o = NULL;
			if ((rc = armcli_get(&c, "DELETE", path, NULL, &o)))
				break;
			json_decref(o);
		}
		json_decref(list);
	} else {
		rc = cli_fail("unknown role assignment command '%s'", cmd);
	}
out:
	armcli_release(&c);
	return rc;
}
