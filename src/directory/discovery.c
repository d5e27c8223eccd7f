/* OpenID discovery: configuration documents (v1 and v2) and JWKS, per tenant and for "common",
 * plus MSAL's instance discovery so clients need not disable it. Issuers are fixed by the
 * configured authority; endpoint URLs follow the Host the client used, so they are reachable. */
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "directory/dirint.h"

static bool tenant_or_common(struct dir *d, const char *t, bool *common)
{
	*common = strcmp(t, "common") == 0 || strcmp(t, "organizations") == 0;
	return *common || dir_tenant_exists(d, t);
}

static void not_found_tenant(struct bc_http_res *res, const char *t)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "AADSTS90002: Tenant '%.64s' not found.", t);
	bc_http_res_json(res, 400, json_pack("{s:s, s:s, s:[i]}", "error", "invalid_tenant", "error_description", msg,
					     "error_codes", 90002));
}

static void openid_config(struct bc_http_req *req, struct bc_http_res *res, struct dir *d, int version)
{
	const char *t = req->captures[0];
	bool common;
	/* "/adfs": the authority az (MSAL Python < 1.19 semantics) uses without instance discovery
	 * at login.microsoftonline.com, as Azure Stack Hub's ADFS clouds do. It is the default
	 * tenant, with the v2 endpoints (MSAL sends scope=, and reads the tenant from token_endpoint). */
	if (!strcasecmp(t, "adfs")) {
		t = dir_default_tenant(d);
		version = 2;
	}
	if (!tenant_or_common(d, t, &common)) {
		not_found_tenant(res, t);
		return;
	}
	char base[DIR_URL_MAX], iss[DIR_URL_MAX + 64], tok[DIR_URL_MAX + 128], jwks[DIR_URL_MAX + 128],
		authz[DIR_URL_MAX + 128], logout[DIR_URL_MAX + 128];
	dir_request_base(d, req, base, sizeof(base));
	const char *v = version == 2 ? "/v2.0" : "";
	/* "common" advertises the issuer template, as Entra does */
	if (common)
		snprintf(iss, sizeof(iss), version == 2 ? "%s/{tenantid}/v2.0" : "%s/{tenantid}/", d->login_url);
	else
		dir_issuer(d, t, version, iss, sizeof(iss));
	snprintf(tok, sizeof(tok), "%s/%s/oauth2%s/token", base, t, v);
	snprintf(jwks, sizeof(jwks), "%s/%s/discovery%s/keys", base, t, v);
	snprintf(authz, sizeof(authz), "%s/%s/oauth2%s/authorize", base, t, v);
	snprintf(logout, sizeof(logout), "%s/%s/oauth2%s/logout", base, t, v);
	json_t *doc = json_pack(
		"{s:s, s:[s,s,s], s:s, s:[s], s:[s], s:[s], s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:[s,s,s,s]}",
		"token_endpoint", tok, "token_endpoint_auth_methods_supported", "client_secret_post", "private_key_jwt",
		"client_secret_basic", "jwks_uri", jwks, "response_modes_supported", "query", "subject_types_supported",
		"pairwise", "id_token_signing_alg_values_supported", "RS256", "response_types_supported", "token",
		"issuer", iss, "authorization_endpoint", authz, "end_session_endpoint", logout, "tenant_region_scope",
		"LOCAL", "cloud_instance_name", "badge", "cloud_graph_host_name", "graph.invalid",
		"request_uri_parameter_supported", 0, "grant_types_supported", "client_credentials",
		"urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "implicit", "authorization_code");
	if (version == 2)
		json_object_set_new(doc, "scopes_supported", json_pack("[s,s,s]", "openid", "profile", "offline_access"));
	bc_http_res_json(res, 200, doc);
	bc_http_res_header(res, "Cache-Control", "max-age=86400, private");
}

static void openid_v1(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	openid_config(req, res, ctx, 1);
}

static void openid_v2(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	openid_config(req, res, ctx, 2);
}

static void jwks(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	const char *t = req->captures[0];
	bool common;
	if (!tenant_or_common(d, t, &common)) {
		not_found_tenant(res, t);
		return;
	}
	json_t *doc = dir_keys_jwks(d, common ? NULL : t);
	if (!doc) {
		bc_http_res_json(res, 500, json_pack("{s:s}", "error", "temporarily_unavailable"));
		return;
	}
	bc_http_res_json(res, 200, doc);
	/* short, so that verifiers pick up a prepublished key well before it signs */
	bc_http_res_header(res, "Cache-Control", "max-age=300, private");
}

static void instance_discovery(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	char base[DIR_URL_MAX], disc[DIR_URL_MAX + 128];
	dir_request_base(d, req, base, sizeof(base));
	const char *authority = bc_http_query(req, "authorization_endpoint");
	(void)authority;
	snprintf(disc, sizeof(disc), "%s/{tenant}/v2.0/.well-known/openid-configuration", base);
	const char *host = base + strlen("https://");
	const char *login_host = strstr(d->login_url, "://") ? strstr(d->login_url, "://") + 3 : d->login_url;
	json_t *doc = json_pack("{s:s, s:s, s:[{s:s, s:s, s:[s,s]}]}", "tenant_discovery_endpoint", disc, "api-version",
				"1.1", "metadata", "preferred_network", host, "preferred_cache", host, "aliases", host,
				login_host);
	bc_http_res_json(res, 200, doc);
}

static const struct bc_route discovery_routes[] = {
	{"GET", "/{tenant}/.well-known/openid-configuration", openid_v1, NULL, 0},
	{"GET", "/{tenant}/v2.0/.well-known/openid-configuration", openid_v2, NULL, 0},
	{"GET", "/{tenant}/discovery/keys", jwks, NULL, 0},
	{"GET", "/{tenant}/discovery/v2.0/keys", jwks, NULL, 0},
	{"GET", "/common/discovery/instance", instance_discovery, NULL, 0},
};

int dir_discovery_mount(struct dir *d, struct bc_http_server *srv)
{
	return bc_http_mount(srv, NULL, NULL, discovery_routes, sizeof(discovery_routes) / sizeof(discovery_routes[0]),
			     d);
}
