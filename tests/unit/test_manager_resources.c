/* The generic resource list (GET /subscriptions/{sub}[/resourceGroups/{rg}]/resources): the
 * $filter parser and evaluator alone, then the routes through bc_http_dispatch_test against a
 * SQLite store in a temp dir: every stored type listed in ARM's generic shape, filters, $top and
 * nextLink paging, authorization by role assignment, and bad input that changes nothing. */
#include <stdarg.h>
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
#define HOST STACK_MGMT_HOST
#define AV "api-version=2021-04-01"

static int call(const char *method, const char *target, const char *body, json_t **out)
{
	return call_as(admin_token, method, target, body, out);
}

static const char *err_code(json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* The names of a list answer, sorted by the server's order, joined with ','. */
static const char *names(json_t *j)
{
	static char out[1024];
	size_t i, n = 0;
	json_t *e;
	out[0] = '\0';
	json_array_foreach(json_object_get(j, "value"), i, e)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "",
				      json_string_value(json_object_get(e, "name")) ?: "?");
	return out;
}

/* Lists target (as token) following every nextLink; returns the names and the page count. */
static const char *list_all(const char *token, const char *target, int *pages)
{
	static char out[1024];
	char next[4096];
	size_t n = 0;
	*pages = 0;
	out[0] = '\0';
	snprintf(next, sizeof(next), "%s", target);
	while (next[0] && *pages < 50) {
		json_t *j = NULL;
		if (call_as(token, "GET", next, NULL, &j) != 200) {
			json_decref(j);
			return "(error)";
		}
		(*pages)++;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", n ? "," : "", names(j));
		const char *nl = json_string_value(json_object_get(j, "nextLink"));
		const char *prefix = "https://" HOST;
		next[0] = '\0';
		if (nl) {
			CHECK(!strncmp(nl, prefix, strlen(prefix)));
			snprintf(next, sizeof(next), "%s", nl + strlen(prefix));
		}
		json_decref(j);
	}
	return out;
}

static json_t *find(json_t *list, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(list, "value"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "name")) ?: "", name))
			return e;
	return NULL;
}

/* ---- the filter alone ---- */

static bool fmatch(const char *filter, const struct mgr_fsubject *s)
{
	struct mgr_filter f;
	struct bc_error err;
	if (mgr_filter_parse(filter, &f, &err) != BC_OK) {
		fprintf(stderr, "filter %s: %s\n", filter ? filter : "(null)", err.msg);
		return false;
	}
	return mgr_filter_match(&f, s);
}

static bool fbad(const char *filter)
{
	struct mgr_filter f;
	struct bc_error err = {0};
	return mgr_filter_parse(filter, &f, &err) == BC_ERR_INVALID && err.msg[0] && f.root == -1;
}

TEST(filter)
{
	json_t *tags = json_pack("{s:s,s:s}", "Env", "Prod", "team", "a'b");
	struct mgr_fsubject s = {"Microsoft.Compute/virtualMachines", "web-01", "local", "Front", "p-1", tags};
	CHECK(fmatch(NULL, &s));
	CHECK(fmatch("   ", &s));
	CHECK(fmatch("resourceType eq 'microsoft.compute/VIRTUALMACHINES'", &s));
	CHECK(!fmatch("resourceType eq 'Microsoft.Compute/virtualMachine'", &s));
	CHECK(fmatch("RESOURCETYPE EQ 'Microsoft.Compute/virtualMachines'", &s));
	CHECK(fmatch("resourceType ne 'Microsoft.KeyVault/vaults'", &s));
	CHECK(fmatch("name eq 'WEB-01'", &s));
	CHECK(fmatch("substringof('EB-0', name)", &s));
	CHECK(!fmatch("substringof('ront', name)", &s));
	CHECK(fmatch("substringof('ront', resourceGroup)", &s));
	CHECK(fmatch("resourceGroup eq 'front' and location eq 'LOCAL'", &s));
	CHECK(fmatch("identity/principalId eq 'P-1'", &s));
	CHECK(fmatch("name eq 'x' or name eq 'web-01'", &s));
	CHECK(!fmatch("name eq 'x' or name eq 'y' and resourceGroup eq 'front'", &s));
	CHECK(fmatch("(name eq 'x' or name eq 'web-01') and resourceGroup eq 'front'", &s));
	CHECK(!fmatch("(name eq 'x' or name eq 'web-01') and resourceGroup eq 'back'", &s));
	/* tag predicates joined by and hold for one tag; names are case-insensitive, values not */
	CHECK(fmatch("tagname eq 'env' and tagvalue eq 'Prod'", &s));
	CHECK(!fmatch("tagName eq 'env' and tagValue eq 'prod'", &s));
	CHECK(!fmatch("tagName eq 'env' and tagValue eq 'a''b'", &s));
	CHECK(fmatch("tagName eq 'team' and tagValue eq 'a''b'", &s));
	CHECK(fmatch("startswith(tagName, 'TE')", &s));
	CHECK(fmatch("resourceType eq 'Microsoft.Compute/virtualMachines' and tagName eq 'env'", &s));
	struct mgr_fsubject none = {"Badge.Compute/hosts", "h1", "local", NULL, NULL, NULL};
	CHECK(!fmatch("tagName eq 'env'", &none));
	CHECK(!fmatch("resourceGroup eq 'front'", &none));
	CHECK(fmatch("resourceGroup ne 'front'", &none));
	CHECK(!fmatch("substringof('', resourceGroup)", &none));
	/* required conjuncts narrow the query; an or does not */
	struct mgr_filter f;
	struct bc_error err;
	REQUIRE(mgr_filter_parse("name eq 'a' and (resourceType eq 'T/x' and resourceGroup eq 'G')", &f, &err) == BC_OK);
	CHECK_STR(mgr_filter_required(&f, MGR_FP_TYPE), "T/x");
	CHECK_STR(mgr_filter_required(&f, MGR_FP_GROUP), "G");
	REQUIRE(mgr_filter_parse("resourceType eq 'T/x' or name eq 'a'", &f, &err) == BC_OK);
	CHECK(mgr_filter_required(&f, MGR_FP_TYPE) == NULL);
	REQUIRE(mgr_filter_parse("resourceType ne 'T/x'", &f, &err) == BC_OK);
	CHECK(mgr_filter_required(&f, MGR_FP_TYPE) == NULL);
	/* refused */
	CHECK(fbad("resourceType"));
	CHECK(fbad("resourceType eq"));
	CHECK(fbad("resourceType eq 'x"));
	CHECK(fbad("resourceType eq x"));
	CHECK(fbad("resourceType gt 'x'"));
	CHECK(fbad("plan eq 'x'"));
	CHECK(fbad("tags eq 'x'"));
	CHECK(fbad("name eq 'x' and"));
	CHECK(fbad("name eq 'x' xor name eq 'y'"));
	CHECK(fbad("name eq 'x')"));
	CHECK(fbad("(name eq 'x'"));
	CHECK(fbad("substringof('a', location)"));
	CHECK(fbad("substringof(name, 'a')"));
	CHECK(fbad("startswith(name, 'a')"));
	CHECK(fbad("tagName ne 'a'"));
	CHECK(fbad("((((((((((name eq 'x'))))))))))"));
	char big[MGR_FILTER_BYTES + 64];
	size_t n = 0;
	while (n + 20 < sizeof(big))
		n += (size_t)snprintf(big + n, sizeof(big) - n, "name eq 'x' or ");
	snprintf(big + n, sizeof(big) - n, "name eq 'y'");
	CHECK(fbad(big));
	n = 0;
	for (int i = 0; i < MGR_FILTER_NODES; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%sname eq ''", i ? " or " : "");
	CHECK(fbad(big)); /* 64 comparisons need 127 nodes */
	json_decref(tags);
}

/* ---- through the routes ---- */

static void make(const char *path, const char *body)
{
	json_t *j = NULL;
	int s = call("PUT", fmt("%s?%s", path, AV), body, &j);
	if (s != 200 && s != 201)
		fprintf(stderr, "PUT %s -> %d %s\n", path, s, err_code(j) ?: "");
	CHECK(s == 200 || s == 201);
	json_decref(j);
}

static void populate(void)
{
	const char *t = dir_default_tenant(d);
	make(fmt("/subscriptions/%s/resourceGroups/rga", sub), "{\"location\":\"local\",\"tags\":{\"env\":\"prod\"}}");
	make(fmt("/subscriptions/%s/resourceGroups/RGB", sub), "{\"location\":\"local\"}");
	make(fmt("/subscriptions/%s/resourceGroups/rgc", sub), "{\"location\":\"local\"}");
	make(fmt("/subscriptions/%s/providers/Badge.Compute/hosts/h1", sub), "{}");
	make(fmt("/subscriptions/%s/resourceGroups/rga/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ida",
		 sub), "{\"location\":\"local\",\"tags\":{\"env\":\"prod\",\"team\":\"a\"}}");
	make(fmt("/subscriptions/%s/resourceGroups/RGB/providers/Microsoft.ManagedIdentity/userAssignedIdentities/idb",
		 sub), "{\"location\":\"local\",\"tags\":{\"env\":\"dev\"}}");
	make(fmt("/subscriptions/%s/resourceGroups/rga/providers/Microsoft.Compute/virtualMachines/vm1", sub),
	     fmt("{\"location\":\"local\",\"identity\":{\"type\":\"SystemAssigned, UserAssigned\","
		 "\"userAssignedIdentities\":{\"/subscriptions/%s/resourceGroups/rga/providers/"
		 "Microsoft.ManagedIdentity/userAssignedIdentities/ida\":{}}}}", sub));
	make(fmt("/subscriptions/%s/resourceGroups/RGB/providers/Microsoft.KeyVault/vaults/kvb1", sub),
	     fmt("{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\",\"name\":"
		 "\"standard\"},\"accessPolicies\":[]}}", t));
}

#define SUBRES "/subscriptions/%s/resources?" AV

TEST(shape_and_scope)
{
	json_t *j = NULL;
	const char *t = dir_default_tenant(d);
	REQUIRE(call("GET", fmt(SUBRES, sub), NULL, &j) == 200);
	/* every stored type, in resource-id order, and no resource group */
	CHECK_STR(names(j), "h1,vm1,ida,kvb1,idb");
	CHECK(json_object_get(j, "nextLink") == NULL);
	json_t *vm = find(j, "vm1"), *ida = find(j, "ida"), *kv = find(j, "kvb1"), *h = find(j, "h1");
	REQUIRE(vm && ida && kv && h);
	CHECK_STR(json_string_value(json_object_get(vm, "type")), "Microsoft.Compute/virtualMachines");
	CHECK_STR(json_string_value(json_object_get(vm, "id")),
		  fmt("/subscriptions/%s/resourceGroups/rga/providers/Microsoft.Compute/virtualMachines/vm1", sub));
	CHECK_STR(json_string_value(json_object_get(vm, "location")), "local");
	json_t *ident = json_object_get(vm, "identity");
	CHECK_STR(json_string_value(json_object_get(ident, "type")), "SystemAssigned, UserAssigned");
	CHECK_STR(json_string_value(json_object_get(ident, "tenantId")), t);
	CHECK(bc_is_uuid(json_string_value(json_object_get(ident, "principalId"))));
	CHECK(json_object_size(json_object_get(ident, "userAssignedIdentities")) == 1);
	CHECK(json_object_get(vm, "properties") == NULL); /* the generic shape carries no properties */
	CHECK(json_object_get(vm, "tags") == NULL);        /* none given: none shown */
	CHECK_STR(json_string_value(json_object_get(ida, "type")), "Microsoft.ManagedIdentity/userAssignedIdentities");
	CHECK_STR(json_string_value(json_object_get(json_object_get(ida, "tags"), "team")), "a");
	CHECK(json_object_get(ida, "identity") == NULL);
	CHECK_STR(json_string_value(json_object_get(kv, "type")), "Microsoft.KeyVault/vaults");
	CHECK_STR(json_string_value(json_object_get(kv, "id")),
		  fmt("/subscriptions/%s/resourceGroups/RGB/providers/Microsoft.KeyVault/vaults/kvb1", sub));
	CHECK_STR(json_string_value(json_object_get(h, "type")), "Badge.Compute/hosts");
	CHECK(json_object_get(h, "createdTime") == NULL);
	json_decref(j);

	/* by group: the group's own resources; the path's group name in any case */
	REQUIRE(call("GET", fmt("/subscriptions/%s/resourceGroups/RGA/resources?%s", sub, AV), NULL, &j) == 200);
	CHECK_STR(names(j), "vm1,ida");
	json_decref(j);
	REQUIRE(call("GET", fmt("/subscriptions/%s/resourcegroups/rgb/resources?api-version=2022-09-01", sub), NULL, &j) == 200);
	CHECK_STR(names(j), "kvb1,idb");
	json_decref(j);
	REQUIRE(call("GET", fmt("/subscriptions/%s/resourceGroups/rgc/resources?%s", sub, AV), NULL, &j) == 200);
	CHECK_STR(names(j), "");
	CHECK(json_is_array(json_object_get(j, "value")));
	json_decref(j);

	/* $expand (what az resource list asks for) */
	REQUIRE(call("GET", fmt(SUBRES "&$expand=createdTime,changedTime,provisioningState&$filter=name%%20eq%%20'vm1'", sub),
		     NULL, &j) == 200);
	vm = json_array_get(json_object_get(j, "value"), 0);
	const char *ct = json_string_value(json_object_get(vm, "createdTime"));
	CHECK(ct && strlen(ct) == 28 && !strcmp(ct + 19, ".0000000Z"));
	CHECK(json_object_get(vm, "changedTime") != NULL);
	CHECK_STR(json_string_value(json_object_get(vm, "provisioningState")), "Succeeded");
	json_decref(j);

	/* percent-encoded keys (Python's requests) */
	REQUIRE(call("GET", fmt("/subscriptions/%s/resources?api%%2Dversion=2021-04-01&%%24filter=resourceType%%20eq%%20"
				"'Microsoft.KeyVault%%2Fvaults'", sub), NULL, &j) == 200);
	CHECK_STR(names(j), "kvb1");
	json_decref(j);
}

static const char *flist(const char *scope_path, const char *filter)
{
	static char out[1024];
	json_t *j = NULL;
	char enc[1024];
	size_t n = 0;
	for (const char *p = filter; *p && n + 4 < sizeof(enc); p++)
		n += (size_t)(*p == ' ' ? snprintf(enc + n, sizeof(enc) - n, "%%20") : snprintf(enc + n, sizeof(enc) - n, "%c", *p));
	enc[n] = '\0';
	int s = call("GET", fmt("%s?%s&$filter=%s", scope_path, AV, enc), NULL, &j);
	if (s != 200)
		snprintf(out, sizeof(out), "(%d %s)", s, err_code(j) ?: "");
	else
		snprintf(out, sizeof(out), "%s", names(j));
	json_decref(j);
	return out;
}

TEST(filters)
{
	char sp[128], rgb[160];
	snprintf(sp, sizeof(sp), "/subscriptions/%s/resources", sub);
	snprintf(rgb, sizeof(rgb), "/subscriptions/%s/resourceGroups/rgb/resources", sub);
	CHECK_STR(flist(sp, "resourceType eq 'microsoft.managedidentity/USERASSIGNEDIDENTITIES'"), "ida,idb");
	CHECK_STR(flist(sp, "resourceType eq 'Microsoft.KeyVault/vaults'"), "kvb1");
	CHECK_STR(flist(sp, "resourceType eq 'Badge.Compute/hosts'"), "h1");
	CHECK_STR(flist(sp, "resourceType eq 'Microsoft.Resources/resourceGroups'"), "");
	CHECK_STR(flist(sp, "resourceType ne 'Microsoft.ManagedIdentity/userAssignedIdentities'"), "h1,vm1,kvb1");
	CHECK_STR(flist(sp, "name eq 'VM1'"), "vm1");
	CHECK_STR(flist(sp, "substringof('id', name)"), "ida,idb");
	CHECK_STR(flist(sp, "substringof('RGA', resourceGroup)"), "vm1,ida");
	/* az resource list -g G asks the subscription with a resourceGroup filter */
	CHECK_STR(flist(sp, "resourceGroup eq 'rgb'"), "kvb1,idb");
	CHECK_STR(flist(sp, "resourceGroup eq 'rgb' and resourceType eq 'Microsoft.KeyVault/vaults'"), "kvb1");
	CHECK_STR(flist(rgb, "resourceType eq 'Microsoft.ManagedIdentity/userAssignedIdentities'"), "idb");
	CHECK_STR(flist(rgb, "resourceGroup eq 'rga'"), "");
	CHECK_STR(flist(sp, "location eq 'local' and name eq 'h1'"), "h1");
	CHECK_STR(flist(sp, "(name eq 'ida' or name eq 'idb') and resourceGroup eq 'RGB'"), "idb");
	CHECK_STR(flist(sp, "substringof('id', name) or resourceType eq 'Badge.Compute/hosts'"), "h1,ida,idb");
	/* tags, as az resource list --tag sends them; tags are then left out, as in Azure */
	CHECK_STR(flist(sp, "tagname eq 'env' and tagvalue eq 'prod'"), "ida");
	CHECK_STR(flist(sp, "tagname eq 'ENV'"), "ida,idb");
	CHECK_STR(flist(sp, "startswith(tagname, 'te')"), "ida");
	json_t *j = NULL;
	REQUIRE(call("GET", fmt("%s?%s&$filter=tagName%%20eq%%20'team'", sp, AV), NULL, &j) == 200);
	CHECK(json_object_get(find(j, "ida"), "tags") == NULL);
	json_decref(j);
	/* the identity's principal */
	REQUIRE(call("GET", fmt("%s?%s&$filter=name%%20eq%%20'vm1'", sp, AV), NULL, &j) == 200);
	char pid[64];
	snprintf(pid, sizeof(pid), "%s",
		 json_string_value(json_object_get(json_object_get(find(j, "vm1"), "identity"), "principalId")) ?: "");
	json_decref(j);
	CHECK_STR(flist(sp, fmt("identity/principalId eq '%s'", pid)), "vm1");
}

TEST(paging)
{
	int pages = 0;
	json_t *j = NULL;
	REQUIRE(call("GET", fmt(SUBRES "&$top=2", sub), NULL, &j) == 200);
	CHECK_STR(names(j), "h1,vm1");
	const char *nl = json_string_value(json_object_get(j, "nextLink"));
	CHECK(nl && strstr(nl, "https://" HOST "/subscriptions/") == nl && strstr(nl, "%24top=2") &&
	      strstr(nl, "%24skiptoken=") && strstr(nl, "api-version=2021-04-01"));
	json_decref(j);
	CHECK_STR(list_all(admin_token, fmt(SUBRES "&$top=2", sub), &pages), "h1,vm1,ida,kvb1,idb");
	CHECK_EQ_INT(pages, 3);
	CHECK_STR(list_all(admin_token, fmt(SUBRES "&$top=5", sub), &pages), "h1,vm1,ida,kvb1,idb");
	CHECK_EQ_INT(pages, 1);
	CHECK_STR(list_all(admin_token, fmt(SUBRES "&$top=1", sub), &pages), "h1,vm1,ida,kvb1,idb");
	CHECK_EQ_INT(pages, 5);
	/* the filter and $expand travel in the nextLink */
	const char *f = "&$filter=resourceType%20eq%20'Microsoft.ManagedIdentity/userAssignedIdentities'";
	CHECK_STR(list_all(admin_token, fmt(SUBRES "&$top=1%s", sub, f), &pages), "ida,idb");
	CHECK_EQ_INT(pages, 2);
	REQUIRE(call("GET", fmt(SUBRES "&$top=1&$expand=createdTime%s", sub, f), NULL, &j) == 200);
	nl = json_string_value(json_object_get(j, "nextLink"));
	CHECK(nl && strstr(nl, "%24filter=resourceType%20eq%20%27Microsoft.ManagedIdentity%2FuserAssignedIdentities%27") &&
	      strstr(nl, "%24expand=createdTime"));
	json_decref(j);
	CHECK_STR(list_all(admin_token, fmt("/subscriptions/%s/resourceGroups/rGb/resources?%s&$top=1", sub, AV), &pages),
		  "kvb1,idb");
	CHECK_EQ_INT(pages, 2);
	/* a resource deleted between pages is skipped, not repeated */
	REQUIRE(call("GET", fmt(SUBRES "&$top=2", sub), NULL, &j) == 200);
	char next[2048];
	snprintf(next, sizeof(next), "%s", json_string_value(json_object_get(j, "nextLink")) + strlen("https://" HOST));
	json_decref(j);
	CHECK_EQ_INT(call("DELETE", fmt("/subscriptions/%s/resourceGroups/rga/providers/Microsoft.ManagedIdentity/"
					"userAssignedIdentities/ida?%s", sub, AV), NULL, NULL), 200);
	REQUIRE(call("GET", next, NULL, &j) == 200);
	CHECK_STR(names(j), "kvb1,idb");
	CHECK(json_object_get(j, "nextLink") == NULL);
	json_decref(j);
}

TEST(authorization)
{
	struct dir_principal reader;
	struct bc_error err;
	char tok[4096];
	json_t *j = NULL;
	REQUIRE(dir_principal_create(d, NULL, dir_default_tenant(d), DIR_TYPE_APP, "rga-reader", "", &reader, &err) == BC_OK);
	token_copy(&reader, MGMT, tok, sizeof(tok));
	/* no role: an empty list, not an error (as ARM filters what a caller may read) */
	REQUIRE(call_as(tok, "GET", fmt(SUBRES, sub), NULL, &j) == 200);
	CHECK_STR(names(j), "");
	json_decref(j);
	CHECK_EQ_INT(call("PUT", fmt("/subscriptions/%s/resourceGroups/rga/providers/Microsoft.Authorization/roleAssignments/"
				     "21111111-2222-4333-8444-555555555555?api-version=2022-04-01", sub),
			  fmt("{\"properties\":{\"roleDefinitionId\":\"/subscriptions/%s/providers/Microsoft.Authorization/"
			      "roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7\",\"principalId\":\"%s\"}}",
			      sub, reader.object_id), NULL), 201);
	/* Reader on rga: rga's resources only, by subscription and by group, paged on what it sees */
	REQUIRE(call_as(tok, "GET", fmt(SUBRES, sub), NULL, &j) == 200);
	CHECK_STR(names(j), "vm1,ida");
	json_decref(j);
	int pages;
	CHECK_STR(list_all(tok, fmt(SUBRES "&$top=1", sub), &pages), "vm1,ida");
	CHECK_EQ_INT(pages, 2);
	REQUIRE(call_as(tok, "GET", fmt("/subscriptions/%s/resourceGroups/rga/resources?%s", sub, AV), NULL, &j) == 200);
	CHECK_STR(names(j), "vm1,ida");
	json_decref(j);
	REQUIRE(call_as(tok, "GET", fmt("/subscriptions/%s/resourceGroups/rgb/resources?%s", sub, AV), NULL, &j) == 200);
	CHECK_STR(names(j), "");
	json_decref(j);
	/* a group that does not exist: 404 to whom may read there, 403 to others */
	CHECK_EQ_INT(call_as(tok, "GET", fmt("/subscriptions/%s/resourceGroups/nope/resources?%s", sub, AV), NULL, &j), 403);
	CHECK_STR(err_code(j), "AuthorizationFailed");
	json_decref(j);
	CHECK_EQ_INT(call("GET", fmt("/subscriptions/%s/resourceGroups/nope/resources?%s", sub, AV), NULL, &j), 404);
	CHECK_STR(err_code(j), "ResourceGroupNotFound");
	json_decref(j);
	CHECK_EQ_INT(call_as(NULL, "GET", fmt(SUBRES, sub), NULL, &j), 401);
	CHECK_STR(err_code(j), "AuthenticationFailed");
	json_decref(j);
}

static void bad(const char *target, int status, const char *code)
{
	json_t *j = NULL;
	int got = call("GET", target, NULL, &j);
	if (got != status || strcmp(err_code(j) ?: "", code)) {
		fprintf(stderr, "GET %s -> %d %s, expected %d %s\n", target, got, err_code(j) ?: "-", status, code);
		CHECK(false);
	}
	const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	CHECK(msg && *msg);
	json_decref(j);
}

TEST(bad_input)
{
	json_t *before = NULL, *after = NULL;
	const char *all = fmt(SUBRES "&$expand=createdTime,changedTime", sub);
	char allp[512];
	snprintf(allp, sizeof(allp), "%s", all);
	REQUIRE(call("GET", allp, NULL, &before) == 200);
	bad(fmt("/subscriptions/%s/resources", sub), 400, "MissingApiVersionParameter");
	bad(fmt("/subscriptions/%s/resources?api-version=latest", sub), 400, "InvalidApiVersionParameter");
	bad(fmt("/subscriptions/%s/resources?api-version=2099-01-01", sub), 400, "NoRegisteredProviderFound");
	bad(fmt("/subscriptions/%s/resources?%s&%s", sub, AV, AV), 400, "InvalidApiVersionParameter");
	bad(fmt("/subscriptions/00000000-0000-4000-8000-000000000000/resources?%s", AV), 404, "SubscriptionNotFound");
	bad(fmt("/subscriptions/not-a-sub/resources?%s", AV), 404, "SubscriptionNotFound");
	bad(fmt(SUBRES "&$top=0", sub), 400, "InvalidTopInQueryString");
	bad(fmt(SUBRES "&$top=1001", sub), 400, "InvalidTopInQueryString");
	bad(fmt(SUBRES "&$top=2x", sub), 400, "InvalidTopInQueryString");
	bad(fmt(SUBRES "&$top=", sub), 400, "InvalidTopInQueryString");
	bad(fmt(SUBRES "&$top=1&$top=2", sub), 400, "InvalidTopInQueryString");
	bad(fmt(SUBRES "&$filter=resourceType%%20eq", sub), 400, "InvalidFilterInQueryString");
	bad(fmt(SUBRES "&$filter=plan%%20eq%%20'x'", sub), 400, "InvalidFilterInQueryString");
	bad(fmt(SUBRES "&$filter=name%%20eq%%20'x'%%20and", sub), 400, "InvalidFilterInQueryString");
	bad(fmt(SUBRES "&$filter=name%%20eq%%20'x'&$filter=name%%20eq%%20'y'", sub), 400, "InvalidFilterInQueryString");
	bad(fmt("/subscriptions/%s/resourceGroups/rga/resources?%s&$filter=substringof('a',location)", sub, AV), 400,
	    "InvalidFilterInQueryString");
	bad(fmt(SUBRES "&$skiptoken=%%25%%25", sub), 400, "InvalidSkipToken");
	bad(fmt(SUBRES "&$skiptoken=", sub), 400, "InvalidSkipToken");
	bad(fmt(SUBRES "&$skiptoken=AA", sub), 400, "InvalidSkipToken"); /* decodes to a NUL */
	bad(fmt("/subscriptions/%s/resourceGroups/nope/resources?%s", sub, AV), 404, "ResourceGroupNotFound");
	/* none of it changed anything */
	REQUIRE(call("GET", allp, NULL, &after) == 200);
	CHECK(json_equal(before, after));
	CHECK(json_array_size(json_object_get(after, "value")) == 4);
	json_decref(before);
	json_decref(after);
}

static void run_all(void)
{
	stack_open("restest", false);
	populate();
	STACK_STEPS(T(shape_and_scope), T(filters), T(authorization), T(paging) /* deletes ida */, T(bad_input));
	stack_close();
}

TEST_MAIN({"filter", filter}, {"resources", run_all})
