/* badge keyvault create|show|list|delete|set-policy|delete-policy (management, az keyvault). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/armcli.h"
#include "cli/cli.h"

#define AV "api-version=2023-07-01"
#define PT "providers/Microsoft.KeyVault/vaults"
static const char *const cols[] = {"name", "location", "properties.vaultUri", "properties.enableRbacAuthorization", NULL};

static json_t *perms(const struct armcli *c)
{
	static const struct {
		const char *flag, *cat;
	} m[] = {{"--secret-permissions", "secrets"}, {"--key-permissions", "keys"}, {"--certificate-permissions", "certificates"}};
	json_t *p = json_object();
	for (size_t i = 0; i < 3; i++) {
		const char *v[64];
		int n = armcli_list(c, m[i].flag, v, 64);
		if (!n)
			continue;
		json_t *a = json_array();
		for (int k = 0; k < n; k++)
			json_array_append_new(a, json_string(v[k]));
		json_object_set_new(p, m[i].cat, a);
	}
	return p;
}

/* Finds the vault's group from the vault list when -g is not given. */
static int vault_path(struct armcli *c, const char *name, char *out, size_t n)
{
	const char *g = armcli_opt(c, "--resource-group", "-g");
	if (g) {
		snprintf(out, n, "%s/%s/%s", armcli_group_path(c, g), PT, name);
		return 0;
	}
	char path[600];
	json_t *list = NULL, *v;
	size_t i;
	snprintf(path, sizeof(path), "/subscriptions/%s/%s?%s", c->s.subscription_id, PT, AV);
	int rc = armcli_get(c, "GET", path, NULL, &list);
	if (rc)
		return rc;
	rc = -1;
	json_array_foreach(json_object_get(list, "value"), i, v)
	{
		if (!strcasecmp(json_string_value(json_object_get(v, "name")) ?: "", name)) {
			snprintf(out, n, "%s", json_string_value(json_object_get(v, "id")));
			rc = 0;
		}
	}
	json_decref(list);
	return rc == -1 ? cli_fail("vault '%s' not found", name) : rc;
}

/* The permissions the vault's policy for oid has now ({} when it has none). */
static int current_perms(struct armcli *c, const char *base, const char *oid, json_t **out)
{
	char path[1200];
	json_t *v = NULL, *p;
	size_t i;
	snprintf(path, sizeof(path), "%s?%s", base, AV);
	int rc = armcli_get(c, "GET", path, NULL, &v);
	if (rc)
		return rc;
	*out = NULL;
	json_array_foreach(json_object_get(json_object_get(v, "properties"), "accessPolicies"), i, p)
	{
		const char *o = json_string_value(json_object_get(p, "objectId"));
		json_t *perm = json_object_get(p, "permissions");
		if (o && !strcasecmp(o, oid) && json_is_object(perm) && !json_object_get(p, "applicationId")) {
			*out = json_deep_copy(perm);
			break;
		}
	}
	json_decref(v);
	if (!*out)
		*out = json_object();
	return *out ? 0 : cli_fail("out of memory");
}

int cli_keyvault_main(int argc, char **argv)
{
	struct armcli c;
	char path[1200], base[1024];
	int rc;
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge keyvault create -g GROUP -n NAME [--enable-rbac-authorization] [--retention-days N]\n"
				"       badge keyvault show|delete -n NAME [-g GROUP] | list [-g GROUP]\n"
				"       badge keyvault set-policy -n NAME --object-id OID [--secret-permissions P..] "
				"[--key-permissions P..] [--certificate-permissions P..]\n"
				"       badge keyvault delete-policy -n NAME --object-id OID\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc, argv)))
		return rc;
	const char *cmd = argv[1], *n = armcli_opt(&c, "--name", "-n"), *g = armcli_opt(&c, "--resource-group", "-g");
	if (!strcmp(cmd, "list")) {
		if (g)
			snprintf(path, sizeof(path), "%s/%s?%s", armcli_group_path(&c, g), PT, AV);
		else
			snprintf(path, sizeof(path), "/subscriptions/%s/%s?%s", c.s.subscription_id, PT, AV);
		rc = armcli_do(&c, "GET", path, NULL, cols);
		goto out;
	}
	if ((rc = armcli_need("--name", n)))
		goto out;
	if (!strcmp(cmd, "create")) {
		if ((rc = armcli_need("--resource-group", g)))
			goto out;
		snprintf(path, sizeof(path), "%s/%s/%s?%s", armcli_group_path(&c, g), PT, n, AV);
		const char *loc = armcli_opt(&c, "--location", "-l"), *ret = armcli_opt(&c, "--retention-days", NULL);
		json_t *b = json_pack("{s:s,s:{s:s,s:{s:s,s:s},s:[],s:b}}", "location", loc ? loc : "local", "properties",
				      "tenantId", c.s.tenant_id, "sku", "family", "A", "name", "standard", "accessPolicies",
				      "enableRbacAuthorization", armcli_flag(&c, "--enable-rbac-authorization"));
		if (ret)
			json_object_set_new(json_object_get(b, "properties"), "softDeleteRetentionInDays",
					    json_integer(atoi(ret)));
		if (armcli_flag(&c, "--enable-purge-protection"))
			json_object_set_new(json_object_get(b, "properties"), "enablePurgeProtection", json_true());
		rc = armcli_do(&c, "PUT", path, b, cols);
		json_decref(b);
		goto out;
	}
	if ((rc = vault_path(&c, n, base, sizeof(base))))
		goto out;
	if (!strcmp(cmd, "show") || !strcmp(cmd, "delete")) {
		snprintf(path, sizeof(path), "%s?%s", base, AV);
		rc = armcli_do(&c, !strcmp(cmd, "show") ? "GET" : "DELETE", path, NULL, !strcmp(cmd, "show") ? cols : NULL);
	} else if (!strcmp(cmd, "set-policy") || !strcmp(cmd, "delete-policy")) {
		const char *oid = armcli_opt(&c, "--object-id", NULL);
		bool set = !strcmp(cmd, "set-policy");
		if ((rc = armcli_need("--object-id", oid)))
			goto out;
		json_t *entry;
		if (set) {
			/* As az does: the categories given replace that category of the object's policy,
			 * the others keep what the vault has. */
			json_t *merged = NULL;
			if ((rc = current_perms(&c, base, oid, &merged)))
				goto out;
			json_t *given = perms(&c);
			if (json_object_size(given) == 0) {
				json_decref(given);
				json_decref(merged);
				rc = cli_fail("set-policy needs --secret-permissions, --key-permissions or "
					      "--certificate-permissions");
				goto out;
			}
			json_object_update(merged, given);
			json_decref(given);
			entry = json_pack("{s:s,s:s,s:o}", "tenantId", c.s.tenant_id, "objectId", oid, "permissions", merged);
		} else {
			entry = json_pack("{s:s,s:s,s:o}", "tenantId", c.s.tenant_id, "objectId", oid, "permissions",
					  json_object());
		}
		json_t *b = json_pack("{s:{s:[o]}}", "properties", "accessPolicies", entry);
		snprintf(path, sizeof(path), "%s/accessPolicies/%s?%s", base, set ? "replace" : "remove", AV);
		json_t *o = NULL;
		if (!(rc = armcli_get(&c, "PUT", path, b, &o))) {
			json_decref(o);
			snprintf(path, sizeof(path), "%s?%s", base, AV);
			rc = armcli_do(&c, "GET", path, NULL, cols);
		}
		json_decref(b);
	} else {
		rc = cli_fail("unknown keyvault command '%s'", cmd);
	}
out:
	armcli_release(&c);
	return rc;
}
