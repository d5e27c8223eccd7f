/* Subscriptions, tenants, locations and the cloud metadata document (`az cloud register`). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "manager/mgr_int.h"

static json_t *sub_json(const char *id, const char *tenant, const char *name, const char *state)
{
	char rid[64];
	snprintf(rid, sizeof(rid), "/subscriptions/%s", id);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[]}", "id", rid, "authorizationSource", "RoleBased",
			 "subscriptionId", id, "tenantId", tenant, "displayName", name, "state", state,
			 "subscriptionPolicies", "locationPlacementId", "Public_2014-09-01", "quotaId",
			 "PayAsYouGo_2014-09-01", "spendingLimit", "Off", "managedByTenants");
}

/* Does the caller hold any role assignment at, above or below /subscriptions/id? */
static bool sub_visible(const struct arm *a, const char *id)
{
	char scope[64];
	snprintf(scope, sizeof(scope), "/subscriptions/%s", id);
	for (size_t i = 0; i < a->ng; i++)
		if (mgr_scope_covers(a->g[i].scope, scope) || mgr_scope_covers(scope, a->g[i].scope))
			return true;
	return false;
}

struct sub_list {
	struct arm *a;
	json_t *arr;
	const char *only; /* lower id or NULL */
};

static int sub_row(void *ctx, const struct bc_row *row)
{
	struct sub_list *l = ctx;
	const char *id = bc_row_text(row, 0);
	if (!id || (l->only && strcmp(l->only, id)) || !sub_visible(l->a, id))
		return 0;
	json_array_append_new(l->arr, sub_json(id, bc_row_text(row, 1), bc_row_text(row, 2), bc_row_text(row, 3)));
	return 0;
}

static void subscriptions(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	struct sub_list l;
	char low[64] = "";
	if (!arm_begin(&a, ctx, req, res))
		return;
	(void)arm_can(&a, "Microsoft.Resources/subscriptions/read", "/"); /* loads the grants */
	l.a = &a;
	l.arr = json_array();
	l.only = NULL;
	if (req->ncaptures == 1) {
		if (!mgr_lower(req->captures[0], low, sizeof(low))) {
			json_decref(l.arr);
			arm_error(res, 404, "SubscriptionNotFound", "The subscription '%.64s' could not be found.",
				  req->captures[0]);
			goto out;
		}
		l.only = low;
	}
	if (bc_store_exec(a.m->st, NULL, "SELECT id, tenant_id, display_name, state FROM mgr_subscriptions ORDER BY id",
			  NULL, 0, sub_row, &l, NULL, &err) != BC_OK) {
		json_decref(l.arr);
		arm_error_from(res, &err);
		goto out;
	}
	if (l.only) {
		if (json_array_size(l.arr) == 0)
			arm_error(res, 404, "SubscriptionNotFound", "The subscription '%s' could not be found.", low);
		else
			arm_json(&a, 200, json_incref(json_array_get(l.arr, 0)));
		json_decref(l.arr);
	} else {
		arm_json(&a, 200, json_pack("{s:o}", "value", l.arr));
	}
out:
	arm_end(&a);
}

static void tenants(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	char id[64];
	if (!arm_begin(&a, ctx, req, res))
		return;
	snprintf(id, sizeof(id), "/tenants/%s", a.m->tenant);
	arm_json(&a, 200,
		 json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:[s],s:s}]}", "value", "id", id, "tenantId", a.m->tenant,
			   "tenantCategory", "Home", "displayName", "badge", "defaultDomain", a.m->domain, "domains",
			   a.m->domain, "tenantType", "AAD"));
	arm_end(&a);
}

static void locations(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	char id[128];
	if (!arm_begin(&a, ctx, req, res))
		return;
	snprintf(id, sizeof(id), "/subscriptions/%s/locations/%s", req->captures[0], a.m->location);
	arm_json(&a, 200,
		 json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "value", "id", id, "name", a.m->location, "displayName",
			   a.m->location, "regionalDisplayName", a.m->location));
	arm_end(&a);
}

/* A Host header is used to build URLs only when it is a plain host[:port]. */
static bool host_sane(const char *h)
{
	size_t n = h ? strlen(h) : 0;
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr(".-:[]", h[i]))
			return false;
	return true;
}

/* The authority and ARM base URLs as reachable from where the client stands. The authority is
 * advertised as "https://login.D[:P]/adfs/", the form Azure Stack Hub's ADFS clouds use: az (MSAL
 * Python 1.21) then talks to it directly, where any other host would first be checked by
 * instance discovery at login.microsoftonline.com. The directory serves "/adfs" as the default
 * tenant; the tenant named with `az login --tenant` is still the one az records. */
static void public_urls(struct mgr *m, const struct bc_http_req *req, char *login, size_t ln, char *rm, size_t rn)
{
	const char *h = req->host;
	if (!host_sane(h)) {
		snprintf(login, ln, "%s/adfs/", dir_login_url(m->dir));
		snprintf(rm, rn, "%s/", m->management_url);
		return;
	}
	snprintf(rm, rn, "https://%s/", h);
	if (!strncasecmp(h, "management.", 11))
		snprintf(login, ln, "https://login.%s/adfs/", h + 11);
	else
		snprintf(login, ln, "https://%s/adfs/", h);
}

static void metadata_endpoints(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct mgr *m = ctx;
	char login[320], rm[320], graph[320], gallery[320], portal[320];
	const char *v = bc_http_query(req, "api-version");
	public_urls(m, req, login, sizeof(login), rm, sizeof(rm));
	snprintf(graph, sizeof(graph), "https://graph.%s/", m->domain);
	snprintf(gallery, sizeof(gallery), "https://gallery.%s/", m->domain);
	snprintf(portal, sizeof(portal), "https://portal.%s/", m->domain);
	if (v && !mgr_api_version_ok(v)) {
		arm_error(res, 400, "InvalidApiVersionParameter", "The api-version '%.64s' is invalid.", v);
		return;
	}
	if (!v || strcmp(v, "2019-05-01") < 0) {
		bc_http_res_json(res, 200,
				 json_pack("{s:s,s:s,s:s,s:{s:s,s:[s]}}", "galleryEndpoint", gallery, "graphEndpoint", graph,
					   "portalEndpoint", portal, "authentication", "loginEndpoint", login, "audiences",
					   m->management_resource));
		return;
	}
	bc_http_res_json(res, 200,
			 json_pack("[{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:[s],s:s,s:s},s:{s:s}}]", "name", "badge",
				   "resourceManager", rm, "portal", portal, "gallery", gallery, "graph", graph,
				   "graphAudience", graph, "microsoftGraphResourceId", graph, "authentication",
				   "loginEndpoint", login, "audiences", m->management_resource, "tenant", "common",
				   "identityProvider", "ADFS", "suffixes", "keyVaultDns", m->vault_suffix));
}

const struct bc_route mgr_sub_routes[] = {
	{"GET", "/metadata/endpoints", metadata_endpoints, NULL, 0},
	{"GET", "/subscriptions", subscriptions, NULL, 0},
	{"GET", "/subscriptions/{sub}", subscriptions, NULL, 0},
	{"GET", "/subscriptions/{sub}/locations", locations, NULL, 0},
	{"GET", "/tenants", tenants, NULL, 0},
};
const size_t mgr_sub_nroutes = sizeof(mgr_sub_routes) / sizeof(mgr_sub_routes[0]);
