/* The resource manager: pure helpers, and the ARM routes and agent protocol driven through the
 * route table without sockets (bc_http_dispatch_test) against a SQLite store in a temp dir. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/pki.h"
#include "core/util.h"
#include "manager/mgr_int.h"
#include "test.h"
#include "stack.h"

#define MGMT STACK_MGMT
#define LOGIN STACK_LOGIN
#define HOST STACK_MGMT_HOST
#define AV "api-version=2023-01-31"

static int call(const char *method, const char *target, const char *body, json_t **out)
{
	return call_as(admin_token, method, target, body, out);
}

static const char *jpath(json_t *j, const char *a, const char *b, const char *c)
{
	json_t *x = json_object_get(j, a);
	if (b)
		x = json_object_get(x, b);
	if (c)
		x = json_object_get(x, c);
	return json_string_value(x);
}

static bool principal_exists(const char *oid)
{
	struct dir_principal p;
	struct bc_error err;
	return oid && dir_principal_get(d, NULL, oid, &p, &err) == BC_OK;
}

/* Sends a PUT as the admin after a delay, from another thread (to wake a parked request). */
struct later {
	int delay_ms;
	char target[2048];
	const char *body;
	int status;
};

static void *put_later(void *arg)
{
	struct later *l = arg;
	usleep((useconds_t)l->delay_ms * 1000);
	l->status = call("PUT", l->target, l->body ? l->body : "{\"location\":\"local\"}", NULL);
	return NULL;
}

/* ---- pure ---- */

TEST(rid_and_names)
{
	struct mgr_rid r;
	struct bc_error err;
	CHECK(mgr_rid_parse("/subscriptions/s1/resourceGroups/g1/providers/Microsoft.ManagedIdentity/"
			    "userAssignedIdentities/u1", &r, &err) == BC_OK);
	CHECK_STR(r.rg, "g1");
	CHECK_STR(r.name, "u1");
	CHECK(mgr_rid_parse("/SUBSCRIPTIONS/s1/providers/Badge.Compute/hosts/h1/", &r, &err) == BC_OK);
	CHECK_STR(r.rg, "");
	CHECK_STR(r.type, "hosts");
	CHECK(mgr_rid_parse("/subscriptions/s1//resourceGroups/g", &r, &err) != BC_OK);
	CHECK(mgr_rid_parse("subscriptions/s1", &r, &err) != BC_OK);
	CHECK(mgr_rid_parse("/subscriptions/s1/resourceGroups/g/providers/NS/t", &r, &err) != BC_OK);
	CHECK(mgr_name_vault("kv-1", &err) == BC_OK);
	CHECK(mgr_name_vault("1kv", &err) != BC_OK);
	CHECK(mgr_name_vault("k--v", &err) != BC_OK);
	CHECK(mgr_name_vault("kv", &err) != BC_OK);
	CHECK(mgr_name_group("rg.(x)_-", &err) == BC_OK);
	CHECK(mgr_name_group("rg.", &err) != BC_OK);
	CHECK(mgr_name_uai("ab", &err) != BC_OK);
	CHECK(mgr_name_vm("vm1", &err) == BC_OK);
	CHECK(mgr_name_vm("_vm", &err) != BC_OK);
	CHECK(mgr_name_vm("vm/1", &err) != BC_OK);
	CHECK(mgr_api_version_ok("2019-11-01"));
	CHECK(mgr_api_version_ok("2021-04-01-preview"));
	CHECK(!mgr_api_version_ok("2019-13-01"));
	CHECK(!mgr_api_version_ok("latest"));
	CHECK(!mgr_api_version_ok("2019-11-01x"));
}

TEST(roles_and_actions)
{
	CHECK(mgr_action_match("*/read", "Microsoft.Compute/virtualMachines/read"));
	CHECK(!mgr_action_match("*/read", "Microsoft.Compute/virtualMachines/write"));
	CHECK(mgr_action_match("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write"));
	CHECK(mgr_action_match("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action"));
	const struct mgr_role *c = mgr_role_by_name("contributor");
	REQUIRE(c);
	CHECK(mgr_role_permits(c, "Microsoft.Compute/virtualMachines/write", false));
	CHECK(!mgr_role_permits(c, "Microsoft.Authorization/roleAssignments/write", false));
	const struct mgr_role *su = mgr_role_by_id("4633458b-17de-408a-b874-0445c86b69e6");
	REQUIRE(su);
	CHECK_STR(su->name, "Key Vault Secrets User");
	CHECK(mgr_role_permits(su, mgr_kv_data_action("secrets", "get"), true));
	CHECK(!mgr_role_permits(su, mgr_kv_data_action("secrets", "set"), true));
	CHECK(mgr_role_by_id("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/"
			     "f1a07417-d97a-45cb-824c-7a7467783830") == mgr_role_by_name("Managed Identity Operator"));
	CHECK(mgr_scope_covers("/subscriptions/A", "/subscriptions/a/resourceGroups/g"));
	CHECK(!mgr_scope_covers("/subscriptions/a/resourceGroups/g", "/subscriptions/a/resourceGroups/g2"));
	CHECK(mgr_kv_perm_index("keys", "WrapKey") >= 0);
	CHECK(mgr_kv_perm_index("secrets", "wrapKey") < 0);
}

/* ---- ARM ---- */

TEST(subscriptions_and_errors)
{
	json_t *j = NULL;
	CHECK_EQ_INT(call("GET", "/subscriptions?api-version=2019-11-01", NULL, &j), 200);
	json_t *s0 = json_array_get(json_object_get(j, "value"), 0);
	CHECK_STR(json_string_value(json_object_get(s0, "subscriptionId")), sub);
	CHECK_STR(json_string_value(json_object_get(s0, "state")), "Enabled");
	CHECK_STR(json_string_value(json_object_get(s0, "tenantId")), dir_default_tenant(d));
	CHECK(json_object_get(s0, "displayName") != NULL);
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "GET", "/subscriptions?api-version=2019-11-01", NULL, &j), 401);
	CHECK_STR(jpath(j, "error", "code", NULL), "AuthenticationFailed");
	json_decref(j);
	CHECK_EQ_INT(call_as("garbage", "GET", "/subscriptions?api-version=2019-11-01", NULL, &j), 401);
	CHECK_STR(jpath(j, "error", "code", NULL), "InvalidAuthenticationToken");
	json_decref(j);
	CHECK_EQ_INT(call("GET", "/subscriptions", NULL, &j), 400);
	CHECK_STR(jpath(j, "error", "code", NULL), "MissingApiVersionParameter");
	json_decref(j);
	CHECK_EQ_INT(call("GET", "/subscriptions?api-version=yesterday", NULL, &j), 400);
	CHECK_STR(jpath(j, "error", "code", NULL), "InvalidApiVersionParameter");
	json_decref(j);
	CHECK_EQ_INT(call("GET", "//metadata/endpoints?api-version=2015-01-01", NULL, &j), 200);
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(j, "authentication"), "audiences"), 0)),
		  MGMT);
	CHECK_STR(jpath(j, "authentication", "loginEndpoint", NULL), "https://login.badge.internal:8443/adfs/");
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "GET", "/metadata/endpoints?api-version=2022-09-01", NULL, &j), 200);
	CHECK_STR(jpath(json_array_get(j, 0), "suffixes", "keyVaultDns", NULL), "vault.badge.internal");
	json_decref(j);
	CHECK_EQ_INT(call("GET", "/tenants?api-version=2020-01-01", NULL, &j), 200);
	json_decref(j);
	/* the advertised "/adfs" authority is the default tenant with v2 endpoints (az, MSAL 1.21) */
	CHECK_EQ_INT(call_as(NULL, "GET", "/adfs/.well-known/openid-configuration", NULL, &j), 200);
	CHECK_STR(jpath(j, "token_endpoint", NULL, NULL),
		  fmt("https://%s/%s/oauth2/v2.0/token", HOST, dir_default_tenant(d)));
	CHECK_STR(jpath(j, "issuer", NULL, NULL), fmt("%s/%s/v2.0", LOGIN, dir_default_tenant(d)));
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "GET", "/ADFS/.well-known/openid-configuration", NULL, &j), 200);
	json_decref(j);
	/* other unknown tenants are still refused */
	CHECK_EQ_INT(call_as(NULL, "GET", "/adfsx/.well-known/openid-configuration", NULL, &j), 400);
	json_decref(j);
}

TEST(identity_lifecycle)
{
	json_t *j = NULL;
	const char *rgp = fmt("/subscriptions/%s/resourceGroups/rg1", sub);
	char uai_id[512], uai_oid[37], vm_oid[37], rg[256];
	snprintf(rg, sizeof(rg), "%s", rgp);
	CHECK_EQ_INT(call("PUT", fmt("%s?%s", rg, AV), "{\"location\":\"local\"}", &j), 201);
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1?%s", rg, AV),
			  "{\"location\":\"local\"}", &j), 201);
	snprintf(uai_id, sizeof(uai_id), "%s", json_string_value(json_object_get(j, "id")) ?: "");
	snprintf(uai_oid, sizeof(uai_oid), "%s", jpath(j, "properties", "principalId", NULL) ?: "");
	CHECK(principal_exists(uai_oid));
	CHECK(jpath(j, "properties", "clientId", NULL) != NULL);
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/h1?%s", sub, AV), "{}", &j), 201);
	json_decref(j);

	/* an instance with both kinds, placed on the only host */
	const char *vm = fmt("%s/providers/Microsoft.Compute/virtualMachines/vm1", rg);
	char vmp[512];
	snprintf(vmp, sizeof(vmp), "%s", vm);
	CHECK_EQ_INT(call("PUT", fmt("%s?%s", vmp, AV),
			  fmt("{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\","
			      "\"userAssignedIdentities\":{\"%s\":{}}}}", uai_id), &j), 201);
	snprintf(vm_oid, sizeof(vm_oid), "%s", jpath(j, "identity", "principalId", NULL) ?: "");
	CHECK(principal_exists(vm_oid));
	CHECK_STR(jpath(j, "identity", "type", NULL), "SystemAssigned, UserAssigned");
	CHECK_STR(jpath(j, "identity", "tenantId", NULL), dir_default_tenant(d));
	CHECK(json_object_get(json_object_get(json_object_get(j, "identity"), "userAssignedIdentities"), uai_id) != NULL);
	CHECK(strstr(jpath(j, "properties", "hostId", NULL) ?: "", "/providers/Badge.Compute/hosts/h1") != NULL);
	json_decref(j);
	struct dir_principal sp;
	struct bc_error err;
	REQUIRE(dir_principal_get(d, NULL, vm_oid, &sp, &err) == BC_OK);
	CHECK(strstr(sp.resource_id, "virtualMachines/vm1") != NULL);

	/* references to missing or foreign identities are refused, leaving nothing half-made */
	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.Compute/virtualMachines/vm2?%s", rg, AV),
			  fmt("{\"identity\":{\"type\":\"SystemAssigned,UserAssigned\",\"userAssignedIdentities\":"
			      "{\"%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope\":{}}}}", rg), &j), 400);
	json_decref(j);
	CHECK_EQ_INT(call("GET", fmt("%s/providers/Microsoft.Compute/virtualMachines/vm2?%s", rg, AV), NULL, &j), 404);
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.Compute/virtualMachines/vm2?%s", rg, AV),
			  "{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"/subscriptions/"
			  "00000000-0000-4000-8000-000000000000/resourceGroups/x/providers/Microsoft.ManagedIdentity/"
			  "userAssignedIdentities/other\":{}}}}", &j), 400);
	CHECK_STR(jpath(j, "error", "code", NULL), "FailedIdentityOperation");
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.Compute/virtualMachines/vm2?%s", rg, AV),
			  "{\"identity\":{\"type\":\"Sometimes\"}}", &j), 400);
	json_decref(j);

	/* deleting the user-assigned identity removes it from the instance and its principal */
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", uai_id, AV), NULL, &j), 200);
	json_decref(j);
	CHECK(!principal_exists(uai_oid));
	CHECK_EQ_INT(call("GET", fmt("%s?%s", vmp, AV), NULL, &j), 200);
	CHECK_STR(jpath(j, "identity", "type", NULL), "SystemAssigned");
	CHECK(json_object_get(json_object_get(j, "identity"), "userAssignedIdentities") == NULL);
	json_decref(j);

	/* PATCH to None deletes the system-assigned principal */
	CHECK_EQ_INT(call("PATCH", fmt("%s?%s", vmp, AV), "{\"identity\":{\"type\":\"None\"}}", &j), 200);
	CHECK(json_object_get(j, "identity") == NULL);
	json_decref(j);
	CHECK(!principal_exists(vm_oid));

	/* enable again, then delete the instance: the principal goes with it */
	CHECK_EQ_INT(call("PATCH", fmt("%s?%s", vmp, AV), "{\"identity\":{\"type\":\"SystemAssigned\"}}", &j), 200);
	snprintf(vm_oid, sizeof(vm_oid), "%s", jpath(j, "identity", "principalId", NULL) ?: "");
	json_decref(j);
	CHECK(principal_exists(vm_oid));
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", vmp, AV), NULL, NULL), 200);
	CHECK(!principal_exists(vm_oid));
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", vmp, AV), NULL, NULL), 204);

	/* a group deletion takes its identities with it */
	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2?%s", rg, AV),
			  "{\"location\":\"local\"}", &j), 201);
	snprintf(uai_oid, sizeof(uai_oid), "%s", jpath(j, "properties", "principalId", NULL) ?: "");
	json_decref(j);
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", rg, AV), NULL, NULL), 200);
	CHECK(!principal_exists(uai_oid));
	CHECK_EQ_INT(call("GET", fmt("%s?%s", rg, AV), NULL, &j), 404);
	CHECK_STR(jpath(j, "error", "code", NULL), "ResourceGroupNotFound");
	json_decref(j);
	CHECK_EQ_INT(call("DELETE", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/h1?%s", sub, AV), NULL, NULL), 200);
}

TEST(vaults_and_roles)
{
	json_t *j = NULL;
	struct bc_error err;
	char rg[256];
	snprintf(rg, sizeof(rg), "/subscriptions/%s/resourceGroups/rgv", sub);
	CHECK_EQ_INT(call("PUT", fmt("%s?%s", rg, AV), "{\"location\":\"local\"}", &j), 201);
	json_decref(j);
	struct dir_principal reader;
	REQUIRE(dir_principal_create(d, NULL, dir_default_tenant(d), DIR_TYPE_APP, "reader", "", &reader, &err) == BC_OK);
	const char *vault = fmt("%s/providers/Microsoft.KeyVault/vaults/kv1", rg);
	char vp[512];
	snprintf(vp, sizeof(vp), "%s", vault);
	CHECK_EQ_INT(call("PUT", fmt("%s?api-version=2023-07-01", vp),
			  fmt("{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
			      "\"name\":\"standard\"},\"accessPolicies\":[{\"tenantId\":\"%s\",\"objectId\":\"%s\","
			      "\"permissions\":{\"secrets\":[\"get\",\"list\"]}}]}}",
			      dir_default_tenant(d), dir_default_tenant(d), reader.object_id), &j), 201);
	CHECK_STR(jpath(j, "properties", "vaultUri", NULL), "https://kv1.vault.badge.internal:8443/");
	json_decref(j);
	struct mgr_vault_info vi;
	REQUIRE(mgr_vault_lookup(m, "KV1", &vi, &err) == BC_OK);
	CHECK(!vi.rbac);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "get", &err), BC_OK);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "set", &err), BC_ERR_FORBIDDEN);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, admin.object_id, "secrets", "get", &err), BC_ERR_FORBIDDEN);
	/* accessPolicies/add merges; the cache sees the change at once */
	CHECK_EQ_INT(call("PUT", fmt("%s/accessPolicies/add?api-version=2023-07-01", vp),
			  fmt("{\"properties\":{\"accessPolicies\":[{\"tenantId\":\"%s\",\"objectId\":\"%s\","
			      "\"permissions\":{\"secrets\":[\"set\"],\"keys\":[\"wrapKey\"]}}]}}",
			      dir_default_tenant(d), reader.object_id), &j), 200);
	json_decref(j);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "set", &err), BC_OK);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "get", &err), BC_OK);
	CHECK_EQ_INT(call("PUT", fmt("%s/accessPolicies/remove?api-version=2023-07-01", vp),
			  fmt("{\"properties\":{\"accessPolicies\":[{\"tenantId\":\"%s\",\"objectId\":\"%s\","
			      "\"permissions\":{\"secrets\":[\"get\"]}}]}}", dir_default_tenant(d), reader.object_id), &j), 200);
	json_decref(j);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "get", &err), BC_ERR_FORBIDDEN);
	CHECK_EQ_INT(call("PUT", fmt("%s?api-version=2023-07-01", vp), "{\"properties\":{\"accessPolicies\":[{\"objectId\":\"x\"}]}}", &j), 400);
	json_decref(j);
	/* the same name elsewhere is taken */
	CHECK_EQ_INT(call("PUT", fmt("/subscriptions/%s/resourceGroups/rgv/providers/Microsoft.KeyVault/vaults/KV1?api-version=2023-07-01", sub),
			  fmt("{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\"}}", dir_default_tenant(d)), &j), 200);
	json_decref(j);

	/* RBAC */
	CHECK_EQ_INT(call("PATCH", fmt("%s?api-version=2023-07-01", vp), "{\"properties\":{\"enableRbacAuthorization\":true}}", &j), 200);
	json_decref(j);
	REQUIRE(mgr_vault_lookup(m, "kv1", &vi, &err) == BC_OK);
	CHECK(vi.rbac);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "set", &err), BC_ERR_FORBIDDEN);
	char reader_token[4096];
	token_copy(&reader, MGMT, reader_token, sizeof(reader_token));
	const char *ra = fmt("%s/providers/Microsoft.Authorization/roleAssignments/11111111-2222-4333-8444-555555555555?api-version=2022-04-01", vp);
	char rap[1024];
	snprintf(rap, sizeof(rap), "%s", ra);
	const char *rabody = fmt("{\"properties\":{\"roleDefinitionId\":\"/subscriptions/%s/providers/Microsoft.Authorization/"
				 "roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6\",\"principalId\":\"%s\"}}",
				 sub, reader.object_id);
	char rab[1024];
	snprintf(rab, sizeof(rab), "%s", rabody);
	CHECK_EQ_INT(call_as(reader_token, "PUT", rap, rab, &j), 403);
	CHECK_STR(jpath(j, "error", "code", NULL), "AuthorizationFailed");
	json_decref(j);
	CHECK_EQ_INT(call("PUT", rap, rab, &j), 201);
	CHECK_STR(jpath(j, "properties", "principalId", NULL), reader.object_id);
	json_decref(j);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "get", &err), BC_OK);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "set", &err), BC_ERR_FORBIDDEN);
	CHECK_EQ_INT(call("GET", fmt("/subscriptions/%s/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%%20eq%%20'%s'", sub, reader.object_id), NULL, &j), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "value")), 1);
	json_decref(j);
	CHECK_EQ_INT(call("GET", fmt("/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%%20eq%%20'Key%%20Vault%%20Secrets%%20User'", sub), NULL, &j), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "value")), 1);
	json_decref(j);
	/* the reader sees no subscription (no assignment there) but may read nothing else */
	CHECK_EQ_INT(call_as(reader_token, "GET", fmt("%s?api-version=2023-07-01", vp), NULL, &j), 403);
	json_decref(j);
	CHECK_EQ_INT(call("DELETE", rap, NULL, &j), 200);
	json_decref(j);
	CHECK_EQ_INT(mgr_vault_authorize(m, &vi, reader.object_id, "secrets", "get", &err), BC_ERR_FORBIDDEN);
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", rg, AV), NULL, NULL), 200);
	CHECK_EQ_INT(mgr_vault_lookup(m, "kv1", &vi, &err), BC_ERR_NOT_FOUND);
}

TEST(agent_protocol)
{
	json_t *j = NULL;
	struct bc_error err;
	char rg[256], token[128], host_token[4096];
	snprintf(rg, sizeof(rg), "/subscriptions/%s/resourceGroups/rga", sub);
	CHECK_EQ_INT(call("PUT", fmt("%s?%s", rg, AV), "{\"location\":\"local\"}", &j), 201);
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/ha?%s", sub, AV), "{}", &j), 201);
	json_decref(j);
	CHECK_EQ_INT(call("POST", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/ha/joinToken?%s", sub, AV), NULL, &j), 200);
	snprintf(token, sizeof(token), "%s", json_string_value(json_object_get(j, "joinToken")) ?: "");
	CHECK(json_object_get(j, "expiresOn") != NULL);
	json_decref(j);
	struct bc_jwk *k = NULL;
	struct bc_buf csr = {0};
	REQUIRE(bc_jwk_generate(&k, "EC", 256, &err) == BC_OK);
	REQUIRE(bc_csr_create(k, "host", &csr, &err) == BC_OK);
	json_t *eb = json_pack("{s:s,s:s,s:s}", "joinToken", token, "csr", bc_buf_cstr(&csr), "hostname", "ha.local");
	char *ebs = json_dumps(eb, 0);
	CHECK_EQ_INT(call_as(NULL, "POST", "/badge/agent/v1/enroll", ebs, &j), 200);
	const char *hoid = json_string_value(json_object_get(j, "objectId"));
	CHECK(json_object_get(j, "certificate") != NULL);
	CHECK(strstr(json_string_value(json_object_get(j, "caCertificate")) ?: "", "BEGIN CERTIFICATE") != NULL);
	struct dir_principal hp;
	REQUIRE(hoid && dir_principal_get(d, NULL, hoid, &hp, &err) == BC_OK);
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "POST", "/badge/agent/v1/enroll", ebs, &j), 401); /* single use */
	CHECK_STR(jpath(j, "error", "code", NULL), "InvalidJoinToken");
	json_decref(j);
	free(ebs);
	json_decref(eb);
	token_copy(&hp, MGMT, host_token, sizeof(host_token));

	CHECK_EQ_INT(call_as(host_token, "GET", "/badge/agent/v1/sync?since=0&timeout=0", NULL, &j), 200);
	int64_t rev = json_integer_value(json_object_get(j, "revision"));
	CHECK(rev > 0);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "instances")), 0);
	json_decref(j);
	/* nothing changed: an immediate timeout answers the same revision */
	CHECK_EQ_INT(call_as(host_token, "GET", fmt("/badge/agent/v1/sync?since=%lld&timeout=0", (long long)rev), NULL, &j), 200);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "revision")), rev);
	json_decref(j);
	/* without a revision (an agent retrying after a failed apply): the whole state at once, even
	 * with a timeout; a negative revision is refused */
	CHECK_EQ_INT(call_as(host_token, "GET", "/badge/agent/v1/sync?timeout=0", NULL, &j), 200);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "revision")), rev);
	json_decref(j);
	CHECK_EQ_INT(call_as(host_token, "GET", "/badge/agent/v1/sync?timeout=5", NULL, &j), 200);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "revision")), rev);
	json_decref(j);
	CHECK_EQ_INT(call_as(host_token, "GET", "/badge/agent/v1/sync?since=-1&timeout=0", NULL, &j), 400);
	json_decref(j);
	/* the admin is no host */
	CHECK_EQ_INT(call("GET", "/badge/agent/v1/sync?since=0&timeout=0", NULL, &j), 403);
	json_decref(j);

	CHECK_EQ_INT(call("PUT", fmt("%s/providers/Microsoft.Compute/virtualMachines/va?%s", rg, AV),
			  "{\"identity\":{\"type\":\"SystemAssigned\"},\"tags\":{\"a\":\"b\"}}", &j), 201);
	char vm_oid[37];
	snprintf(vm_oid, sizeof(vm_oid), "%s", jpath(j, "identity", "principalId", NULL) ?: "");
	json_decref(j);
	CHECK_EQ_INT(call_as(host_token, "GET", fmt("/badge/agent/v1/sync?since=%lld&timeout=5", (long long)rev), NULL, &j), 200);
	CHECK(json_integer_value(json_object_get(j, "revision")) > rev);
	json_t *inst = json_array_get(json_object_get(j, "instances"), 0);
	CHECK_STR(json_string_value(json_object_get(inst, "name")), "va");
	CHECK_STR(json_string_value(json_object_get(inst, "resourceGroupName")), "rga");
	json_t *id0 = json_array_get(json_object_get(inst, "identities"), 0);
	CHECK_STR(json_string_value(json_object_get(id0, "kind")), "SystemAssigned");
	CHECK_STR(json_string_value(json_object_get(id0, "objectId")), vm_oid);
	rev = json_integer_value(json_object_get(j, "revision"));
	json_decref(j);

	/* a parked sync: answered when the host's revision changes, not at its timeout */
	{
		struct later lt = {.delay_ms = 200};
		snprintf(lt.target, sizeof(lt.target), "%s/providers/Microsoft.Compute/virtualMachines/vb?%s", rg, AV);
		pthread_t th;
		int64_t t0 = bc_now_ms();
		REQUIRE(pthread_create(&th, NULL, put_later, &lt) == 0);
		CHECK_EQ_INT(call_as(host_token, "GET", fmt("/badge/agent/v1/sync?since=%lld&timeout=20", (long long)rev),
				     NULL, &j),
			     200);
		int64_t took = bc_now_ms() - t0;
		pthread_join(th, NULL);
		CHECK_EQ_INT(lt.status, 201);
		CHECK(took >= 150 && took < 10000);
		CHECK(json_integer_value(json_object_get(j, "revision")) > rev);
		CHECK_EQ_INT(json_array_size(json_object_get(j, "instances")), 2);
		rev = json_integer_value(json_object_get(j, "revision"));
		json_decref(j);
		/* a change elsewhere (a group) leaves it parked until its timeout; the same revision */
		lt = (struct later){.delay_ms = 100, .body = "{\"location\":\"local\"}"};
		snprintf(lt.target, sizeof(lt.target), "/subscriptions/%s/resourcegroups/rg-unrelated?%s", sub, AV);
		t0 = bc_now_ms();
		REQUIRE(pthread_create(&th, NULL, put_later, &lt) == 0);
		CHECK_EQ_INT(call_as(host_token, "GET", fmt("/badge/agent/v1/sync?since=%lld&timeout=1", (long long)rev),
				     NULL, &j),
			     200);
		took = bc_now_ms() - t0;
		pthread_join(th, NULL);
		CHECK_EQ_INT(lt.status, 201);
		CHECK(took >= 900);
		CHECK_EQ_INT(json_integer_value(json_object_get(j, "revision")), rev);
		json_decref(j);
		CHECK_EQ_INT(call("DELETE", fmt("%s/providers/Microsoft.Compute/virtualMachines/vb?%s", rg, AV), NULL, NULL),
			     200);
		CHECK_EQ_INT(call("DELETE", fmt("/subscriptions/%s/resourcegroups/rg-unrelated?%s", sub, AV), NULL, NULL), 200);
	}

	struct bc_buf icsr = {0};
	REQUIRE(bc_csr_create(k, "id", &icsr, &err) == BC_OK);
	json_t *cb = json_pack("{s:s,s:s}", "objectId", vm_oid, "csr", bc_buf_cstr(&icsr));
	char *cbs = json_dumps(cb, 0);
	CHECK_EQ_INT(call_as(host_token, "POST", "/badge/agent/v1/certificates", cbs, &j), 200);
	CHECK(json_integer_value(json_object_get(j, "notAfter")) > bc_now());
	CHECK(json_object_get(j, "credentialId") != NULL);
	json_decref(j);
	free(cbs);
	json_decref(cb);
	cb = json_pack("{s:s,s:s}", "objectId", admin.object_id, "csr", bc_buf_cstr(&icsr));
	cbs = json_dumps(cb, 0);
	CHECK_EQ_INT(call_as(host_token, "POST", "/badge/agent/v1/certificates", cbs, &j), 403);
	json_decref(j);
	free(cbs);
	json_decref(cb);
	cb = json_pack("{s:s}", "csr", bc_buf_cstr(&icsr));
	cbs = json_dumps(cb, 0);
	CHECK_EQ_INT(call_as(host_token, "POST", "/badge/agent/v1/host/certificate", cbs, &j), 200);
	json_decref(j);
	free(cbs);
	json_decref(cb);
	/* the host cannot go while it runs an instance */
	CHECK_EQ_INT(call("DELETE", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/ha?%s", sub, AV), NULL, &j), 409);
	json_decref(j);
	CHECK_EQ_INT(call("DELETE", fmt("%s?%s", rg, AV), NULL, NULL), 200);
	CHECK(!principal_exists(vm_oid));
	CHECK_EQ_INT(call("DELETE", fmt("/subscriptions/%s/providers/Badge.Compute/hosts/ha?%s", sub, AV), NULL, &j), 200);
	json_decref(j);
	CHECK(!principal_exists(hoid ? hp.object_id : NULL));
	bc_buf_release(&csr);
	bc_buf_release(&icsr);
	bc_jwk_free(k);
}

static int64_t count_principals(void)
{
	int64_t n = -1;
	bool found;
	struct bc_error err;
	if (bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM dir_principals", NULL, 0, &n, &found, &err) != BC_OK)
		return -1;
	return n;
}

/* Expects status and error code from a call as the admin. */
static void expect(const char *method, const char *target, const char *body, int status, const char *code,
		   const char *what)
{
	json_t *j = NULL;
	int got = call(method, target, body, &j);
	if (got != status || (code && strcmp(jpath(j, "error", "code", NULL) ?: "", code))) {
		fprintf(stderr, "%s: %s %s -> %d %s, expected %d %s\n", what, method, target, got,
			jpath(j, "error", "code", NULL) ?: "-", status, code ? code : "");
		CHECK(false);
	}
	/* an ARM error always has a message naming what was wrong */
	if (status >= 400)
		CHECK(jpath(j, "error", "message", NULL) && *jpath(j, "error", "message", NULL));
	json_decref(j);
}

struct racer {
	char target[1024];
	const char *body;
	int status;
};

static void *race_put(void *arg)
{
	struct racer *r = arg;
	r->status = call("PUT", r->target, r->body, NULL);
	return NULL;
}

/* Issue 3's "bad input and concurrency": clear ARM errors, no half-made state. */
TEST(bad_input)
{
	char rg[256], vmp[512], uaip[512];
	snprintf(rg, sizeof(rg), "/subscriptions/%s/resourceGroups/rgbad", sub);
	snprintf(vmp, sizeof(vmp), "%s/providers/Microsoft.Compute/virtualMachines", rg);
	snprintf(uaip, sizeof(uaip), "%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities", rg);
	expect("PUT", fmt("%s?%s", rg, AV), "{\"location\":\"local\"}", 201, NULL, "group");
	int64_t before = count_principals();
	REQUIRE(before > 0);

	/* api-versions: missing, malformed, duplicated, from the future */
	expect("GET", fmt("%s?api-version=2023-13-01", rg), NULL, 400, "InvalidApiVersionParameter", "month 13");
	expect("GET", fmt("%s?api-version=2013-12-31", rg), NULL, 400, "InvalidApiVersionParameter", "before 2014");
	expect("GET", fmt("%s?api-version=2023-01-01-alpha", rg), NULL, 400, "InvalidApiVersionParameter", "suffix");
	expect("GET", fmt("%s?api-version=2023-01-01&api-version=2023-01-01", rg), NULL, 400,
	       "InvalidApiVersionParameter", "twice");
	expect("PUT", fmt("%s/u-future?api-version=2099-01-01", uaip), "{\"location\":\"local\"}", 400,
	       "NoRegisteredProviderFound", "future version");
	expect("GET", fmt("%s?api-version=2023-01-01-preview", rg), NULL, 200, NULL, "preview");

	/* names outside Azure's rules */
	expect("PUT", fmt("%s/ab?%s", uaip, AV), "{\"location\":\"local\"}", 400, "InvalidResourceName", "uai too short");
	expect("PUT", fmt("%s/-lead?%s", uaip, AV), "{\"location\":\"local\"}", 400, "InvalidResourceName", "uai '-'");
	expect("PUT", fmt("%s/bad!name?%s", vmp, AV), "{\"location\":\"local\"}", 400, "InvalidParameter", "vm '!'");
	expect("PUT", fmt("%s/%s?%s", vmp, "v123456789012345678901234567890123456789012345678901234567890123456789", AV),
	       "{\"location\":\"local\"}", 400, "InvalidParameter", "vm too long");
	expect("PUT", fmt("/subscriptions/%s/resourceGroups/ends-with-dot.?%s", sub, AV), "{\"location\":\"local\"}", 400,
	       NULL, "group ending in '.'");
	expect("PUT", fmt("/subscriptions/%s/resourceGroups/%0100d?%s", sub, 0, AV), "{\"location\":\"local\"}", 400, NULL,
	       "group too long");
	const char *bad_vaults[] = {"kv", "1kv", "kv--x", "kv-", "kv_x", "kv12345678901234567890123"};
	for (size_t i = 0; i < sizeof(bad_vaults) / sizeof(bad_vaults[0]); i++)
		expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/%s?%s", rg, bad_vaults[i], AV),
		       fmt("{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
			   "\"name\":\"standard\"},\"accessPolicies\":[]}}", dir_default_tenant(d)),
		       400, NULL, bad_vaults[i]);

	/* bodies of the wrong shape */
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "not json", 400, "InvalidRequestContent", "not json");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "[]", 400, "InvalidRequestContent", "array body");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "", 400, "InvalidRequestContent", "empty body");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "{\"identity\":\"SystemAssigned\"}", 400, NULL, "identity string");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "{\"tags\":[\"a\"]}", 400, NULL, "tags array");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "{\"tags\":{\"a\":1}}", 400, NULL, "tag number");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV),
	       "{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":[]}}", 400, NULL, "uai array");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "{\"identity\":{\"type\":\"UserAssigned\"}}", 400, NULL,
	       "UserAssigned without identities");
	expect("PUT", fmt("%s/vshape?%s", vmp, AV), "{\"identity\":{\"type\":7}}", 400, NULL, "type number");
	expect("PUT", fmt("%s/ushape?%s", uaip, AV), "{\"tags\":\"x\"}", 400, NULL, "uai tags string");
	expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV), "{\"properties\":\"x\"}", 400,
	       NULL, "vault properties string");
	expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV),
	       "{\"properties\":{\"sku\":{\"name\":\"standard\"}}}", 400, NULL, "vault without tenantId");
	expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV),
	       fmt("{\"properties\":{\"tenantId\":\"%s\",\"softDeleteRetentionInDays\":3}}", dir_default_tenant(d)), 400,
	       NULL, "retention 3 days");
	expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV),
	       fmt("{\"properties\":{\"tenantId\":\"%s\",\"accessPolicies\":{}}}", dir_default_tenant(d)), 400, NULL,
	       "accessPolicies object");
	expect("PUT", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV),
	       "{\"properties\":{\"tenantId\":\"00000000-0000-4000-8000-000000000000\"}}", 400, NULL, "foreign tenant");

	/* malformed resource ids, references to what does not exist */
	expect("PUT", fmt("%s/vref?%s", vmp, AV),
	       "{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"not-a-resource-id\":{}}}}", 400,
	       "InvalidParameter", "uai key not an id");
	expect("PUT", fmt("%s/vref?%s", vmp, AV),
	       fmt("{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"%s/vother\":{}}}}", vmp), 400,
	       "InvalidParameter", "uai key of a vm");
	expect("PUT", fmt("%s/vref?%s", vmp, AV),
	       fmt("{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"%s/missing\":{}}}}", uaip),
	       400, "FailedIdentityOperation", "missing uai");
	expect("PUT", fmt("%s/vref?%s", vmp, AV), "{\"properties\":{\"hostId\":\"no such host!\"}}", 400, NULL,
	       "malformed host reference");
	expect("PUT", fmt("%s/vref?%s", vmp, AV),
	       fmt("{\"properties\":{\"hostId\":\"/subscriptions/%s/providers/Badge.Compute/hosts/nohost\"}}", sub), 400,
	       NULL, "missing host");
	expect("GET", fmt("/subscriptions/not-a-guid/resourceGroups/x?%s", AV), NULL, 404, "SubscriptionNotFound",
	       "malformed subscription");
	expect("PUT", fmt("/subscriptions/%s/resourceGroups/nogroup/providers/Microsoft.ManagedIdentity/"
			  "userAssignedIdentities/uu1?%s", sub, AV), "{\"location\":\"local\"}", 404, "ResourceGroupNotFound",
	       "missing group");
	expect("PUT", fmt("%s/providers/Microsoft.Authorization/roleAssignments/%s?api-version=2022-04-01", rg,
			  "not-a-guid"),
	       fmt("{\"properties\":{\"roleDefinitionId\":\"/providers/Microsoft.Authorization/roleDefinitions/"
		   "acdd72a7-3385-48ef-bd42-f606fba81ae7\",\"principalId\":\"%s\"}}", admin.object_id), 400, NULL,
	       "assignment name not a GUID");
	expect("PUT", fmt("%s/providers/Microsoft.Authorization/roleAssignments/%s?api-version=2022-04-01", rg,
			  "11111111-2222-4333-8444-555555555555"),
	       fmt("{\"properties\":{\"roleDefinitionId\":\"garbage\",\"principalId\":\"%s\"}}", admin.object_id), 400, NULL,
	       "role definition garbage");
	expect("PUT", fmt("%s/providers/Microsoft.Authorization/roleAssignments/%s?api-version=2022-04-01", rg,
			  "11111111-2222-4333-8444-555555555555"),
	       "{\"properties\":{\"roleDefinitionId\":\"/providers/Microsoft.Authorization/roleDefinitions/"
	       "acdd72a7-3385-48ef-bd42-f606fba81ae7\",\"principalId\":\"22222222-2222-4333-8444-555555555555\"}}", 400,
	       NULL, "assignment to a principal that does not exist");

	/* none of the refused requests left a principal or a resource behind */
	CHECK_EQ_INT(count_principals(), before);
	const char *never[] = {"vshape", "vref", "bad!name"};
	for (size_t i = 0; i < 3; i++)
		expect("GET", fmt("%s/%s?%s", vmp, never[i], AV), NULL, i == 2 ? 400 : 404, NULL, "never made");
	expect("GET", fmt("%s/ushape?%s", uaip, AV), NULL, 404, "ResourceNotFound", "uai never made");
	expect("GET", fmt("%s/providers/Microsoft.KeyVault/vaults/kvshape?%s", rg, AV), NULL, 404, NULL, "vault never made");

	/* an identity of another subscription (same tenant) cannot be assigned */
	{
		static const char other[] = "0b0b0b0b-0000-4000-8000-000000000001";
		struct bc_error err;
		char scope[64], key[256];
		snprintf(scope, sizeof(scope), "/subscriptions/%s", other);
		snprintf(key, sizeof(key), "%s/providers/microsoft.authorization/roleassignments/"
					   "0b0b0b0b-0000-4000-8000-000000000002", scope);
		REQUIRE(bc_store_exec(st, NULL, "INSERT INTO mgr_subscriptions (id, tenant_id, display_name, state, created) "
						"VALUES (?, ?, 'other', 'Enabled', 0)",
				      (struct bc_param[]){BC_PTEXT(other), BC_PTEXT(dir_default_tenant(d))}, 2, NULL, NULL,
				      NULL, &err) == BC_OK);
		REQUIRE(bc_store_exec(st, NULL, "INSERT INTO mgr_role_assignments (key, name, scope, scope_key, role, "
						"principal, principal_type, created, created_by) VALUES (?, "
						"'0b0b0b0b-0000-4000-8000-000000000002', ?, ?, "
						"'8e3af657-a8ff-443c-a75c-2fe8c4bcb635', ?, 'ServicePrincipal', 0, '')",
				      (struct bc_param[]){BC_PTEXT(key), BC_PTEXT(scope), BC_PTEXT(scope), BC_PTEXT(admin.object_id)},
				      4, NULL, NULL, NULL, &err) == BC_OK);
		mgr_changed(m);
		expect("PUT", fmt("%s/resourceGroups/org?%s", scope, AV), "{\"location\":\"local\"}", 201, NULL, "other group");
		char ouai[512];
		snprintf(ouai, sizeof(ouai), "%s/resourceGroups/org/providers/Microsoft.ManagedIdentity/"
					     "userAssignedIdentities/ou1", scope);
		expect("PUT", fmt("%s?%s", ouai, AV), "{\"location\":\"local\"}", 201, NULL, "other uai");
		int64_t n0 = count_principals();
		expect("PUT", fmt("%s/vcross?%s", vmp, AV),
		       fmt("{\"identity\":{\"type\":\"SystemAssigned, UserAssigned\",\"userAssignedIdentities\":"
			   "{\"%s\":{}}}}", ouai), 400, "FailedIdentityOperation", "identity of another subscription");
		CHECK_EQ_INT(count_principals(), n0); /* the system identity was not made either */
		expect("GET", fmt("%s/vcross?%s", vmp, AV), NULL, 404, NULL, "cross vm never made");
		expect("DELETE", fmt("%s/resourceGroups/org?%s", scope, AV), NULL, 200, NULL, "other group delete");
		CHECK_EQ_INT(count_principals(), n0 - 1);
	}

	/* concurrent PUTs of one instance and of one identity: one principal each, all answered */
	{
		enum { N = 8 };
		struct racer r[2 * N];
		pthread_t th[2 * N];
		int64_t n0 = count_principals();
		for (int i = 0; i < 2 * N; i++) {
			snprintf(r[i].target, sizeof(r[i].target), i < N ? "%s/vrace?%s" : "%s/urace?%s", i < N ? vmp : uaip,
				 AV);
			r[i].body = i < N ? "{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned\"}}"
					  : "{\"location\":\"local\"}";
			REQUIRE(pthread_create(&th[i], NULL, race_put, &r[i]) == 0);
		}
		int created = 0;
		for (int i = 0; i < 2 * N; i++) {
			pthread_join(th[i], NULL);
			CHECK(r[i].status == 200 || r[i].status == 201 || r[i].status == 409);
			created += r[i].status == 201;
		}
		CHECK_EQ_INT(created, 2);
		CHECK_EQ_INT(count_principals(), n0 + 2);
		json_t *j = NULL;
		CHECK_EQ_INT(call("GET", fmt("%s/vrace?%s", vmp, AV), NULL, &j), 200);
		CHECK(principal_exists(jpath(j, "identity", "principalId", NULL)));
		json_decref(j);
	}
	expect("DELETE", fmt("%s?%s", rg, AV), NULL, 200, NULL, "group delete");
	CHECK_EQ_INT(count_principals(), before);
}

static void run_all(void)
{
	stack_open("mgrtest", false);
	STACK_STEPS(T(subscriptions_and_errors), T(identity_lifecycle), T(vaults_and_roles), T(agent_protocol),
		    T(bad_input));
	stack_close();
}

TEST_MAIN({"rid_and_names", rid_and_names}, {"roles_and_actions", roles_and_actions}, {"arm", run_all})
