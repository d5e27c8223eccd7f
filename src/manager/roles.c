/* Built-in role definitions (Azure's ids, names and permissions), action matching, and the
 * Key Vault access-policy permission names and their RBAC data actions. Pure. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "core/json.h"
#include "manager/mgr_int.h"

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static const struct mgr_role roles[] = {
	{"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
	 "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
	 LIST("*"), NONE, NONE, NONE},
	{"b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
	 "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
	 LIST("*"),
	 LIST("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
	      "Microsoft.Authorization/elevateAccess/Action"),
	 NONE, NONE},
	{"acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow you to make any changes.",
	 LIST("*/read"), NONE, NONE, NONE},
	{"f1a07417-d97a-45cb-824c-7a7467783830", "Managed Identity Operator", "Read and Assign User Assigned Identity",
	 LIST("Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
	      "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", "Microsoft.Authorization/*/read",
	      "Microsoft.Insights/alertRules/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
	      "Microsoft.Resources/deployments/*", "Microsoft.Support/*"),
	 NONE, NONE, NONE},
	{"00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator",
	 "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and "
	 "secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use "
	 "the 'Azure role-based access control' permission model.",
	 LIST("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
	      "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
	      "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
	      "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read",
	      "Microsoft.KeyVault/operations/read"),
	 NONE, LIST("Microsoft.KeyVault/vaults/*"), NONE},
	{"b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer",
	 "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that "
	 "use the 'Azure role-based access control' permission model.",
	 LIST("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
	      "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
	      "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
	      "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read",
	      "Microsoft.KeyVault/operations/read"),
	 NONE, LIST("Microsoft.KeyVault/vaults/secrets/*"), NONE},
	{"4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User",
	 "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission "
	 "model.",
	 NONE, NONE,
	 LIST("Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
	 NONE},
	{"14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer",
	 "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults that use "
	 "the 'Azure role-based access control' permission model.",
	 LIST("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
	      "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
	      "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
	      "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read",
	      "Microsoft.KeyVault/operations/read"),
	 NONE, LIST("Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"), NONE},
	{"12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User",
	 "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access "
	 "control' permission model.",
	 NONE, NONE,
	 LIST("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/update/action",
	      "Microsoft.KeyVault/vaults/keys/backup/action", "Microsoft.KeyVault/vaults/keys/encrypt/action",
	      "Microsoft.KeyVault/vaults/keys/decrypt/action", "Microsoft.KeyVault/vaults/keys/wrap/action",
	      "Microsoft.KeyVault/vaults/keys/unwrap/action", "Microsoft.KeyVault/vaults/keys/sign/action",
	      "Microsoft.KeyVault/vaults/keys/verify/action"),
	 NONE},
};

size_t mgr_role_count(void)
{
	return sizeof(roles) / sizeof(roles[0]);
}

const struct mgr_role *mgr_role_at(size_t i)
{
	return i < mgr_role_count() ? &roles[i] : NULL;
}

const struct mgr_role *mgr_role_by_id(const char *s)
{
	const char *slash;
	if (!s)
		return NULL;
	slash = strrchr(s, '/');
	if (slash) {
		/* ".../providers/Microsoft.Authorization/roleDefinitions/GUID" */
		size_t pl = (size_t)(slash - s);
		static const char suffix[] = "/providers/Microsoft.Authorization/roleDefinitions";
		if (pl < sizeof(suffix) - 1 || strncasecmp(slash - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1))
			return NULL;
		s = slash + 1;
	}
	for (size_t i = 0; i < mgr_role_count(); i++)
		if (!strcasecmp(roles[i].id, s))
			return &roles[i];
	return NULL;
}

const struct mgr_role *mgr_role_by_name(const char *name)
{
	for (size_t i = 0; name && i < mgr_role_count(); i++)
		if (!strcasecmp(roles[i].name, name))
			return &roles[i];
	return NULL;
}

bool mgr_action_match(const char *p, const char *a)
{
	/* Iterative glob with backtracking to the last '*'. */
	const char *star = NULL, *resume = NULL;
	while (*a) {
		if (*p == '*') {
			star = p++;
			resume = a;
		} else if (*p && tolower((unsigned char)*p) == tolower((unsigned char)*a)) {
			p++;
			a++;
		} else if (star) {
			p = star + 1;
			a = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool any_match(const char *const *pats, const char *action)
{
	for (; pats && *pats; pats++)
		if (mgr_action_match(*pats, action))
			return true;
	return false;
}

bool mgr_role_permits(const struct mgr_role *r, const char *action, bool data)
{
	if (data)
		return any_match(r->data_actions, action) && !any_match(r->not_data_actions, action);
	return any_match(r->actions, action) && !any_match(r->not_actions, action);
}

static json_t *str_array(const char *const *l)
{
	json_t *a = json_array();
	for (; a && l && *l; l++)
		json_array_append_new(a, json_string(*l));
	return a;
}

json_t *mgr_role_json(const struct mgr_role *r, const char *sub)
{
	char id[256];
	json_t *perm, *perms, *scopes, *o;
	if (sub)
		snprintf(id, sizeof(id), "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", sub,
			 r->id);
	else
		snprintf(id, sizeof(id), "/providers/Microsoft.Authorization/roleDefinitions/%s", r->id);
	perm = json_pack("{s:o,s:o,s:o,s:o}", "actions", str_array(r->actions), "notActions", str_array(r->not_actions),
			 "dataActions", str_array(r->data_actions), "notDataActions", str_array(r->not_data_actions));
	perms = json_array();
	json_array_append_new(perms, perm);
	scopes = json_array();
	json_array_append_new(scopes, json_string("/"));
	o = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:o,s:o}}", "id", id, "name", r->id, "type",
		      "Microsoft.Authorization/roleDefinitions", "properties", "roleName", r->name, "type", "BuiltInRole",
		      "description", r->description, "assignableScopes", scopes, "permissions", perms);
	return o;
}

/* Access-policy permission names per category, in Azure's spelling. */
static const char *const perm_keys[] = {"get",     "list",    "update",   "create",  "import",           "delete",
					"recover", "backup",  "restore",  "decrypt", "encrypt",          "unwrapKey",
					"wrapKey", "verify",  "sign",     "purge",   "release",          "rotate",
					"getrotationpolicy", "setrotationpolicy", NULL};
static const char *const perm_secrets[] = {"get", "list", "set", "delete", "recover", "backup", "restore", "purge", NULL};
static const char *const perm_certs[] = {"get",     "list",           "update",        "create",     "import",
					 "delete",  "recover",        "backup",        "restore",    "managecontacts",
					 "manageissuers", "getissuers", "listissuers", "setissuers", "deleteissuers",
					 "purge",   NULL};

static const char *const *perm_list(const char *category)
{
	if (!category)
		return NULL;
	if (!strcasecmp(category, "keys"))
		return perm_keys;
	if (!strcasecmp(category, "secrets"))
		return perm_secrets;
	if (!strcasecmp(category, "certificates"))
		return perm_certs;
	return NULL;
}

int mgr_kv_perm_index(const char *category, const char *permission)
{
	const char *const *l = perm_list(category);
	if (!l || !permission)
		return -1;
	if (!strcasecmp(permission, "all"))
		return 63;
	for (int i = 0; l[i]; i++)
		if (!strcasecmp(l[i], permission))
			return i;
	return -1;
}

static const struct {
	const char *cat, *perm, *action;
} kv_actions[] = {
	{"secrets", "get", "Microsoft.KeyVault/vaults/secrets/getSecret/action"},
	{"secrets", "list", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"},
	{"secrets", "set", "Microsoft.KeyVault/vaults/secrets/setSecret/action"},
	{"secrets", "delete", "Microsoft.KeyVault/vaults/secrets/delete"},
	{"secrets", "recover", "Microsoft.KeyVault/vaults/secrets/recover/action"},
	{"secrets", "backup", "Microsoft.KeyVault/vaults/secrets/backup/action"},
	{"secrets", "restore", "Microsoft.KeyVault/vaults/secrets/restore/action"},
	{"secrets", "purge", "Microsoft.KeyVault/vaults/secrets/purge/action"},
	{"keys", "get", "Microsoft.KeyVault/vaults/keys/read"},
	{"keys", "list", "Microsoft.KeyVault/vaults/keys/read"},
	{"keys", "update", "Microsoft.KeyVault/vaults/keys/update/action"},
	{"keys", "create", "Microsoft.KeyVault/vaults/keys/create/action"},
	{"keys", "import", "Microsoft.KeyVault/vaults/keys/import/action"},
	{"keys", "delete", "Microsoft.KeyVault/vaults/keys/delete"},
	{"keys", "recover", "Microsoft.KeyVault/vaults/keys/recover/action"},
	{"keys", "backup", "Microsoft.KeyVault/vaults/keys/backup/action"},
	{"keys", "restore", "Microsoft.KeyVault/vaults/keys/restore/action"},
	{"keys", "decrypt", "Microsoft.KeyVault/vaults/keys/decrypt/action"},
	{"keys", "encrypt", "Microsoft.KeyVault/vaults/keys/encrypt/action"},
	{"keys", "unwrapKey", "Microsoft.KeyVault/vaults/keys/unwrap/action"},
	{"keys", "wrapKey", "Microsoft.KeyVault/vaults/keys/wrap/action"},
	{"keys", "verify", "Microsoft.KeyVault/vaults/keys/verify/action"},
	{"keys", "sign", "Microsoft.KeyVault/vaults/keys/sign/action"},
	{"keys", "purge", "Microsoft.KeyVault/vaults/keys/purge/action"},
	{"keys", "release", "Microsoft.KeyVault/vaults/keys/release/action"},
	{"keys", "rotate", "Microsoft.KeyVault/vaults/keys/rotate/action"},
	{"keys", "getrotationpolicy", "Microsoft.KeyVault/vaults/keyrotationpolicies/read"},
	{"keys", "setrotationpolicy", "Microsoft.KeyVault/vaults/keyrotationpolicies/write"},
	{"certificates", "get", "Microsoft.KeyVault/vaults/certificates/read"},
	{"certificates", "list", "Microsoft.KeyVault/vaults/certificates/read"},
	{"certificates", "update", "Microsoft.KeyVault/vaults/certificates/update/action"},
	{"certificates", "create", "Microsoft.KeyVault/vaults/certificates/create/action"},
	{"certificates", "import", "Microsoft.KeyVault/vaults/certificates/import/action"},
	{"certificates", "delete", "Microsoft.KeyVault/vaults/certificates/delete"},
	{"certificates", "recover", "Microsoft.KeyVault/vaults/certificates/recover/action"},
	{"certificates", "backup", "Microsoft.KeyVault/vaults/certificates/backup/action"},
	{"certificates", "restore", "Microsoft.KeyVault/vaults/certificates/restore/action"},
	{"certificates", "purge", "Microsoft.KeyVault/vaults/certificates/purge/action"},
	{"certificates", "managecontacts", "Microsoft.KeyVault/vaults/certificatecontacts/write"},
	{"certificates", "manageissuers", "Microsoft.KeyVault/vaults/certificatecas/write"},
	{"certificates", "getissuers", "Microsoft.KeyVault/vaults/certificatecas/read"},
	{"certificates", "listissuers", "Microsoft.KeyVault/vaults/certificatecas/read"},
	{"certificates", "setissuers", "Microsoft.KeyVault/vaults/certificatecas/write"},
	{"certificates", "deleteissuers", "Microsoft.KeyVault/vaults/certificatecas/delete"},
};

const char *mgr_kv_data_action(const char *category, const char *permission)
{
	for (size_t i = 0; category && permission && i < sizeof(kv_actions) / sizeof(kv_actions[0]); i++)
		if (!strcasecmp(kv_actions[i].cat, category) && !strcasecmp(kv_actions[i].perm, permission))
			return kv_actions[i].action;
	return NULL;
}
