/* badge vm create|show|list|delete and vm identity assign|remove|show (az vm). `vm exec` is in
 * vm_exec.c. Identities are named like az does: [system] for the system-assigned one, or a
 * user-assigned identity's name (in the vm's group) or resource id. */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"

#define AV "api-version=2023-03-01"
#define PT "providers/Microsoft.Compute/virtualMachines"
static const char *const cols[] = {"name", "location", "identity.type", "properties.hostId", NULL};

/* Adds the --assign-identity / --identities values: "[system]" or UAI names/ids. */
static void identities(struct armcli *c, const char *group, const char *flag, bool *sys, json_t *uas, bool null_value)
{
	const char *v[64];
	int n = armcli_list(c, flag, v, 64);
	for (int i = 0; i < n; i++) {
		char id[1024];
		if (!strcmp(v[i], "[system]")) {
			*sys = true;
			continue;
		}
		if (v[i][0] == '/')
			snprintf(id, sizeof(id), "%s", v[i]);
		else
			snprintf(id, sizeof(id), "%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s",
				 armcli_group_path(c, group), v[i]);
		json_object_set_new(uas, id, null_value ? json_null() : json_object());
	}
}

static const char *type_of(bool sys, bool ua)
{
	return sys && ua ? "SystemAssigned, UserAssigned" : sys ? "SystemAssigned" : ua ? "UserAssigned" : "None";
}

static int identity_cmd(struct armcli *c, const char *sub, const char *path, const char *g)
{
	json_t *vm = NULL, *b = NULL, *uas = json_object();
	bool sys = false;
	int rc = armcli_get(c, "GET", path, NULL, &vm);
	if (rc)
		goto out;
	json_t *ident = json_object_get(vm, "identity");
	const char *t = json_string_value(json_object_get(ident, "type")) ?: "None";
	bool has_sys = strstr(t, "SystemAssigned") != NULL;
	size_t have_ua = json_object_size(json_object_get(ident, "userAssignedIdentities"));
	if (!strcmp(sub, "show")) {
		armcli_print(c, ident ? ident : json_object(), NULL);
		goto out;
	}
	bool assign = !strcmp(sub, "assign");
	if (!assign && strcmp(sub, "remove")) {
		rc = cli_fail("unknown vm identity command '%s'", sub);
		goto out;
	}
	identities(c, g, "--identities", &sys, uas, !assign);
	if (!json_object_size(uas) && !sys && assign)
		sys = true; /* az: no --identities means the system-assigned one */
	bool new_sys = assign ? (has_sys || sys) : (has_sys && !sys);
	size_t ua_after = assign ? have_ua + json_object_size(uas) : (have_ua > json_object_size(uas) ? have_ua - json_object_size(uas) : 0);
	b = json_pack("{s:{s:s}}", "identity", "type", type_of(new_sys, ua_after > 0));
	if (json_object_size(uas) && ua_after > 0)
		json_object_set(json_object_get(b, "identity"), "userAssignedIdentities", uas);
	rc = armcli_get(c, "PATCH", path, b, &vm);
	if (!rc)
		armcli_print(c, json_object_get(vm, "identity") ?: json_object(), NULL);
out:
	json_decref(vm);
	json_decref(b);
	json_decref(uas);
	return rc;
}

int cli_vm_main(int argc, char **argv)
{
	struct armcli c;
	char path[1200];
	int rc;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge vm create -g GROUP -n NAME [--assign-identity [system] ID..] [--host HOST]\n"
				"       badge vm show|delete -g GROUP -n NAME | list [-g GROUP]\n"
				"       badge vm identity assign|remove|show -g GROUP -n NAME [--identities [system] ID..]\n"
				"       badge vm exec [--data-dir DIR] [-g GROUP] NAME | RESOURCE_ID -- CMD [ARG..]\n"
				"         (on the agent's host; -g or the resource id when instances share NAME)\n");
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
		goto out;
	}
	if ((rc = armcli_need("--resource-group", g)) || (rc = armcli_need("--name", n)))
		goto out;
	snprintf(path, sizeof(path), "%s/%s/%s?%s", armcli_group_path(&c, g), PT, n, AV);
	if (!strcmp(cmd, "create")) {
		bool sys = false;
		json_t *uas = json_object();
		const char *loc = armcli_opt(&c, "--location", "-l"), *host = armcli_opt(&c, "--host", NULL);
		identities(&c, g, "--assign-identity", &sys, uas, false);
		if (armcli_flag(&c, "--assign-identity") && !sys && !json_object_size(uas))
			sys = true;
		json_t *b = json_pack("{s:s,s:{}}", "location", loc ? loc : "local", "properties");
		if (host)
			json_object_set_new(json_object_get(b, "properties"), "hostId", json_string(host));
		if (sys || json_object_size(uas)) {
			json_t *id = json_pack("{s:s}", "type", type_of(sys, json_object_size(uas) > 0));
			if (json_object_size(uas))
				json_object_set(id, "userAssignedIdentities", uas);
			json_object_set_new(b, "identity", id);
		}
		rc = armcli_do(&c, "PUT", path, b, cols);
		json_decref(b);
		json_decref(uas);
	} else if (!strcmp(cmd, "show")) {
		rc = armcli_do(&c, "GET", path, NULL, cols);
	} else if (!strcmp(cmd, "delete")) {
		rc = armcli_do(&c, "DELETE", path, NULL, NULL);
	} else if (!strcmp(cmd, "identity") && argc > 2) {
		rc = identity_cmd(&c, argv[2], path, g);
	} else {
		rc = cli_fail("unknown vm command '%s'", cmd);
	}
out:
	armcli_release(&c);
	return rc;
}
