/* federatedIdentityCredentials of user-assigned identities through the ARM routes (without
 * sockets): create, replace, get, list, delete, Azure's validation, the per-identity limit,
 * authorisation at the identity's scope, and removal with the identity. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/util.h"
#include "manager/mgr_int.h"
#include "test.h"
#include "stack.h"

#define AV "api-version=2023-01-31"
#define ISS "https://oidc.example.test/cluster-1"
#define BODY(iss, sub, aud) "{\"properties\":{\"issuer\":\"" iss "\",\"subject\":\"" sub "\",\"audiences\":[" aud "]}}"
#define XAUD "\"api://AzureADTokenExchange\""

static char uai[512]; /* the identity's path */
static char oid[37];

static void setup(void)
{
	bc_log_set_level(BC_LOG_ERROR);
	stack_open("mgrfic", true);
	json_t *j = NULL;
	mgmt_put(fmt("/subscriptions/%s/resourcegroups/rg1?api-version=2021-04-01", sub), "{\"location\":\"local\"}");
	snprintf(uai, sizeof(uai), "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/wid",
		 sub);
	REQUIRE(call_as(admin_token, "PUT", fmt("%s?%s", uai, AV), "{\"location\":\"local\"}", &j) == 201);
	snprintf(oid, sizeof(oid), "%s", json_string_value(json_object_get(json_object_get(j, "properties"), "principalId")));
	json_decref(j);
}

static int fic(const char *method, const char *name, const char *body, json_t **out)
{
	return call_as(admin_token, method, fmt("%s/federatedIdentityCredentials/%s?%s", uai, name, AV), body, out);
}

static const char *code_of(json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

TEST(create_get_list_delete)
{
	json_t *j = NULL;
	CHECK_EQ_INT(fic("PUT", "k8s-app", BODY(ISS, "system:serviceaccount:ns:app", XAUD), &j), 201);
	CHECK_STR(json_string_value(json_object_get(j, "type")),
		  "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials");
	CHECK_STR(json_string_value(json_object_get(j, "id")), fmt("%s/federatedIdentityCredentials/k8s-app", uai));
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "properties"), "issuer")), ISS);
	json_decref(j);
	/* the same name again replaces it: 200 */
	CHECK_EQ_INT(fic("PUT", "k8s-app", BODY(ISS, "system:serviceaccount:ns:app2", XAUD), &j), 200);
	json_decref(j);
	CHECK_EQ_INT(fic("GET", "K8S-APP", NULL, &j), 200);
	CHECK_STR(json_string_value(json_object_get(json_object_get(j, "properties"), "subject")),
		  "system:serviceaccount:ns:app2");
	CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(j, "properties"), "audiences"), 0)),
		  "api://AzureADTokenExchange");
	json_decref(j);
	CHECK_EQ_INT(call_as(admin_token, "GET", fmt("%s/federatedIdentityCredentials?%s", uai, AV), NULL, &j), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "value")), 1);
	json_decref(j);
	/* the directory holds it for the identity's principal */
	struct dir_fic got;
	struct bc_error err;
	CHECK_EQ_INT(dir_fic_get(d, NULL, oid, "k8s-app", &got, &err), BC_OK);
	CHECK_EQ_INT(fic("DELETE", "k8s-app", NULL, &j), 200);
	json_decref(j);
	CHECK_EQ_INT(fic("DELETE", "k8s-app", NULL, &j), 204);
	json_decref(j);
	CHECK_EQ_INT(fic("GET", "k8s-app", NULL, &j), 404);
	json_decref(j);
}

TEST(validation)
{
	json_t *j = NULL;
	CHECK_EQ_INT(fic("PUT", "ab", BODY(ISS, "s", XAUD), &j), 400); /* too short */
	CHECK_STR(code_of(j), "InvalidResourceName");
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "-abc", BODY(ISS, "s", XAUD), &j), 400);
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "a.bc", BODY(ISS, "s", XAUD), &j), 400);
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "good", BODY("http://oidc.example.test", "s", XAUD), &j), 400); /* not https */
	CHECK_STR(code_of(j), "BadRequest");
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "good", BODY(ISS, "", XAUD), &j), 400);
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "good", BODY(ISS, "s", ""), &j), 400); /* no audience */
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "good", BODY(ISS, "s", XAUD ",\"b\""), &j), 400); /* two */
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "good", "{\"properties\":{}}", &j), 400);
	json_decref(j);
	/* an api-version before the type existed */
	CHECK_EQ_INT(call_as(admin_token, "PUT", fmt("%s/federatedIdentityCredentials/good?api-version=2018-11-30", uai),
			     BODY(ISS, "s", XAUD), &j),
		     400);
	CHECK_STR(code_of(j), "NoRegisteredProviderFound");
	json_decref(j);
	/* an identity that does not exist */
	CHECK_EQ_INT(call_as(admin_token, "PUT",
			     fmt("/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/"
				 "userAssignedIdentities/nobody/federatedIdentityCredentials/good?%s",
				 sub, AV),
			     BODY(ISS, "s", XAUD), &j),
		     404);
	json_decref(j);
	/* nothing was created by any of these */
	CHECK_EQ_INT(call_as(admin_token, "GET", fmt("%s/federatedIdentityCredentials?%s", uai, AV), NULL, &j), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "value")), 0);
	json_decref(j);
}

TEST(limit_and_uniqueness)
{
	json_t *j = NULL;
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(fic("PUT", fmt("c%02d", i), fmt(BODY(ISS, "sub-%d", XAUD), i), &j), 201);
		json_decref(j);
	}
	CHECK_EQ_INT(fic("PUT", "c20", BODY(ISS, "sub-20", XAUD), &j), 400);
	CHECK_STR(code_of(j), "BadRequest");
	json_decref(j);
	CHECK_EQ_INT(fic("DELETE", "c19", NULL, &j), 200);
	json_decref(j);
	/* same issuer and subject as c00 under another name */
	CHECK_EQ_INT(fic("PUT", "c20", BODY(ISS, "sub-0", XAUD), &j), 400);
	json_decref(j);
	CHECK_EQ_INT(fic("PUT", "c20", BODY(ISS, "sub-20", XAUD), &j), 201);
	json_decref(j);
}

TEST(authorization)
{
	struct dir_principal nobody;
	struct bc_error err;
	json_t *j = NULL;
	REQUIRE(dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, "nobody", NULL, &nobody, &err) == BC_OK);
	char *tok = token_for(&nobody, STACK_MGMT);
	CHECK_EQ_INT(call_as(tok, "PUT", fmt("%s/federatedIdentityCredentials/evil?%s", uai, AV), BODY(ISS, "x", XAUD), &j),
		     403);
	json_decref(j);
	CHECK_EQ_INT(call_as(tok, "GET", fmt("%s/federatedIdentityCredentials?%s", uai, AV), NULL, &j), 403);
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "GET", fmt("%s/federatedIdentityCredentials?%s", uai, AV), NULL, &j), 401);
	json_decref(j);
	free(tok);
}

static int count_row(void *ctx, const struct bc_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

TEST(identity_deletion_removes_them)
{
	json_t *j = NULL;
	int n = 0;
	struct bc_error err;
	CHECK_EQ_INT(call_as(admin_token, "DELETE", fmt("%s?%s", uai, AV), NULL, &j), 200);
	json_decref(j);
	struct bc_param prm[] = {BC_PTEXT(oid)};
	REQUIRE(bc_store_exec(st, NULL, "SELECT 1 FROM dir_federated WHERE object_id = ?", prm, 1, count_row, &n, NULL,
			      &err) == BC_OK);
	CHECK_EQ_INT(n, 0);
	struct dir_fic got;
	CHECK_EQ_INT(dir_fic_get(d, NULL, oid, "c00", &got, &err), BC_ERR_NOT_FOUND);
	/* a new identity of the same name starts with none */
	CHECK_EQ_INT(call_as(admin_token, "PUT", fmt("%s?%s", uai, AV), "{\"location\":\"local\"}", &j), 201);
	json_decref(j);
	CHECK_EQ_INT(call_as(admin_token, "GET", fmt("%s/federatedIdentityCredentials?%s", uai, AV), NULL, &j), 200);
	CHECK_EQ_INT(json_array_size(json_object_get(j, "value")), 0);
	json_decref(j);
	CHECK_EQ_INT(fic("GET", "c00", NULL, &j), 404);
	json_decref(j);
}

STACK_MAIN(setup, stack_close, T(create_get_list_delete), T(validation), T(limit_and_uniqueness), T(authorization),
	   T(identity_deletion_removes_them))
