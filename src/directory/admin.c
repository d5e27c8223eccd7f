/* The directory's administration API (what Microsoft Graph is to Entra ID, much smaller):
 * principals, their credentials, signing keys. Callers present a token for the admin audience
 * whose principal is a directory administrator. Errors are {"error":{"code","message"}}. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

#define ADMIN "/badge/directory/v1"

static void fail(struct bc_http_res *res, int status, const char *code, const char *fmt, ...) BC_PRINTF(4, 5);
static void fail(struct bc_http_res *res, int status, const char *code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bc_http_res_json(res, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

static void fail_status(struct bc_http_res *res, const struct bc_error *err)
{
	switch (err->status) {
	case BC_ERR_NOT_FOUND:
		fail(res, 404, "NotFound", "%s", err->msg);
		break;
	case BC_ERR_INVALID:
	case BC_ERR_LIMIT:
		fail(res, 400, "BadRequest", "%s", err->msg);
		break;
	case BC_ERR_EXISTS:
	case BC_ERR_CONFLICT:
		fail(res, 409, "Conflict", "%s", err->msg);
		break;
	default:
		bc_log_error("directory admin: %s", err->msg);
		fail(res, 500, "InternalError", "the directory could not complete the request");
	}
}

/* Authenticates and authorizes; answers and returns false when the caller may not proceed. */
static bool admin_only(struct dir *d, struct bc_http_req *req, struct bc_http_res *res)
{
	const char *h = bc_http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		bc_http_res_header(res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		fail(res, 401, "InvalidAuthenticationToken", "a bearer token is required");
		return false;
	}
	const char *aud[] = {d->cfg.admin_audience ? d->cfg.admin_audience : ""};
	struct dir_claims c;
	struct bc_error err;
	if (dir_token_verify(d, h + 7, strlen(h + 7), NULL, aud, 1, &c, &err) != BC_OK) {
		bc_http_res_header(res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		fail(res, 401, "InvalidAuthenticationToken", "%s", err.msg);
		return false;
	}
	if (!dir_principal_is_admin(d, c.oid)) {
		fail(res, 403, "Authorization_RequestDenied", "principal '%s' is not a directory administrator", c.oid);
		return false;
	}
	return true;
}

static json_t *principal_json(const struct dir_principal *p)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I}", "objectId", p->object_id, "appId", p->app_id,
			      "tenantId", p->tenant_id, "displayName", p->display_name, "servicePrincipalType", p->type,
			      "accountEnabled", p->enabled, "createdDateTime", (json_int_t)p->created);
	if (j && p->resource_id[0])
		json_object_set_new(j, "alternativeNames", json_pack("[s]", p->resource_id));
	return j;
}

static int list_row(void *ctx, const struct bc_row *row)
{
	struct dir_principal p;
	dir_principal_from_row(row, &p);
	json_array_append_new(ctx, principal_json(&p));
	return 0;
}

static int tenant_row(void *ctx, const struct bc_row *row)
{
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:b}", "tenantId", bc_row_text(row, 0), "displayName",
					     bc_row_text(row, 1) ? bc_row_text(row, 1) : "", "isDefault",
					     bc_row_int(row, 2) != 0));
	return 0;
}

static void tenants(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	if (!admin_only(d, req, res))
		return;
	json_t *arr = json_array();
	struct bc_error err;
	if (bc_store_exec(d->st, NULL, "SELECT id, display_name, is_default FROM dir_tenants ORDER BY created, id", NULL,
			  0, tenant_row, arr, NULL, &err)) {
		json_decref(arr);
		fail_status(res, &err);
		return;
	}
	bc_http_res_json(res, 200, json_pack("{s:o}", "value", arr));
}

static void principals_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	if (!admin_only(d, req, res))
		return;
	json_t *arr = json_array();
	struct bc_error err;
	const char *type = bc_http_query(req, "type");
	struct bc_param p[] = {BC_PTEXT(type)};
	int rc = bc_store_exec(d->st, NULL,
			       type ? "SELECT " DIR_PRINCIPAL_COLUMNS " FROM dir_principals WHERE type = ? ORDER BY created, object_id"
				    : "SELECT " DIR_PRINCIPAL_COLUMNS " FROM dir_principals ORDER BY created, object_id",
			       p, type ? 1 : 0, list_row, arr, NULL, &err);
	if (rc) {
		json_decref(arr);
		fail_status(res, &err);
		return;
	}
	bc_http_res_json(res, 200, json_pack("{s:o}", "value", arr));
}

static json_t *body_json(struct bc_http_req *req, struct bc_http_res *res)
{
	json_t *j = NULL;
	struct bc_error err;
	if (req->body_len == 0) {
		j = json_object();
	} else if (bc_json_parse(req->body, req->body_len, 0, &j, &err) != BC_OK) {
		fail(res, 400, "BadRequest", "request body is not valid JSON: %s", err.msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(res, 400, "BadRequest", "request body must be a JSON object");
		return NULL;
	}
	return j;
}

static void principals_create(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	if (!admin_only(d, req, res))
		return;
	json_t *b = body_json(req, res);
	if (!b)
		return;
	struct dir_principal p;
	struct bc_error err;
	const char *name = bc_json_str(b, "displayName"), *tenant = bc_json_str(b, "tenantId");
	const char *type = bc_json_str(b, "servicePrincipalType");
	if (type && strcmp(type, DIR_TYPE_APP) != 0) {
		fail(res, 400, "BadRequest",
		     "only Application principals are created here; managed identities come with their resource");
	} else if (!name) {
		fail(res, 400, "BadRequest", "displayName is required");
	} else if (dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, name, NULL, &p, &err) != BC_OK) {
		fail_status(res, &err);
	} else {
		bc_http_res_json(res, 201, principal_json(&p));
	}
	json_decref(b);
}

static bool load_principal(struct dir *d, struct bc_http_req *req, struct bc_http_res *res, struct dir_principal *p)
{
	struct bc_error err;
	if (dir_principal_get(d, NULL, req->captures[0], p, &err) != BC_OK) {
		fail_status(res, &err);
		return false;
	}
	return true;
}

static void principal_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	if (admin_only(d, req, res) && load_principal(d, req, res, &p))
		bc_http_res_json(res, 200, principal_json(&p));
}

static void principal_delete(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	struct bc_error err;
	if (!admin_only(d, req, res) || !load_principal(d, req, res, &p))
		return;
	if (strcmp(p.type, DIR_TYPE_MANAGED) == 0) {
		fail(res, 409, "Conflict",
		     "principal '%s' is a managed identity: delete its resource (%s) instead", p.object_id, p.resource_id);
		return;
	}
	if (dir_principal_delete(d, NULL, p.object_id, &err) != BC_OK)
		fail_status(res, &err);
	else
		bc_http_res_json(res, 204, NULL);
}

static int cred_row(void *ctx, const struct bc_row *row)
{
	const char *kind = bc_row_text(row, 1);
	json_t *c = json_pack("{s:s, s:s, s:I, s:I}", "credentialId", bc_row_text(row, 0), "type",
			      kind && strcmp(kind, "cert") == 0 ? "AsymmetricX509Cert" : "Password", "startDateTime",
			      (json_int_t)bc_row_int(row, 6), "endDateTime", (json_int_t)bc_row_int(row, 7));
	if (!c)
		return 0;
	if (kind && strcmp(kind, "cert") == 0) {
		json_object_set_new(c, "thumbprint", json_string(bc_row_text(row, 2) ? bc_row_text(row, 2) : ""));
		json_object_set_new(c, "x5t#S256", json_string(bc_row_text(row, 3) ? bc_row_text(row, 3) : ""));
	} else {
		json_object_set_new(c, "hint", json_string(bc_row_text(row, 4) ? bc_row_text(row, 4) : ""));
	}
	if (bc_row_text(row, 5) && *bc_row_text(row, 5))
		json_object_set_new(c, "hostId", json_string(bc_row_text(row, 5)));
	json_array_append_new(ctx, c);
	return 0;
}

static void credentials_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	struct bc_error err;
	if (!admin_only(d, req, res) || !load_principal(d, req, res, &p))
		return;
	json_t *arr = json_array();
	struct bc_param q[] = {BC_PTEXT(p.object_id)};
	if (bc_store_exec(d->st, NULL,
			  "SELECT id, kind, thumbprint, x5t256, secret_hint, host_id, not_before, not_after FROM dir_credentials"
			  " WHERE object_id = ? ORDER BY created, id",
			  q, 1, cred_row, arr, NULL, &err)) {
		json_decref(arr);
		fail_status(res, &err);
		return;
	}
	bc_http_res_json(res, 200, json_pack("{s:o}", "value", arr));
}

static void certificate_add(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	struct bc_error err;
	char id[37];
	if (!admin_only(d, req, res) || !load_principal(d, req, res, &p))
		return;
	json_t *b = body_json(req, res);
	if (!b)
		return;
	const char *pem = bc_json_str(b, "certificate");
	if (!pem)
		fail(res, 400, "BadRequest", "certificate (PEM) is required");
	else if (dir_credential_add_cert(d, NULL, p.object_id, pem, NULL, id, &err) != BC_OK)
		fail_status(res, &err);
	else
		bc_http_res_json(res, 201, json_pack("{s:s, s:s}", "credentialId", id, "type", "AsymmetricX509Cert"));
	json_decref(b);
}

static void secret_add(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	struct bc_error err;
	char id[37], secret[128];
	if (!admin_only(d, req, res) || !load_principal(d, req, res, &p))
		return;
	json_t *b = body_json(req, res);
	if (!b)
		return;
	int64_t exp = bc_json_int(b, "endDateTime", 0);
	if (exp && exp <= bc_now())
		fail(res, 400, "BadRequest", "endDateTime must be in the future");
	else if (dir_credential_add_secret(d, NULL, p.object_id, exp, secret, sizeof(secret), id, &err) != BC_OK)
		fail_status(res, &err);
	else
		bc_http_res_json(res, 201, json_pack("{s:s, s:s, s:s, s:s}", "credentialId", id, "type", "Password",
						     "appId", p.app_id, "secretText", secret));
	bc_wipe(secret, sizeof(secret));
	json_decref(b);
}

static void credential_delete(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct dir_principal p;
	struct bc_error err;
	if (!admin_only(d, req, res) || !load_principal(d, req, res, &p))
		return;
	if (dir_credential_remove(d, NULL, p.object_id, req->captures[1], &err) != BC_OK)
		fail_status(res, &err);
	else
		bc_http_res_json(res, 204, NULL);
}

static void keys_rotate(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct bc_error err;
	json_t *result = NULL;
	if (!admin_only(d, req, res))
		return;
	json_t *b = body_json(req, res);
	if (!b)
		return;
	if (dir_rotate(d, bc_json_str(b, "tenantId"), bc_json_bool(b, "activate", false), &result, &err) != BC_OK)
		fail_status(res, &err);
	else
		bc_http_res_json(res, 200, result);
	json_decref(b);
}

static void keys_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	if (!admin_only(d, req, res))
		return;
	const char *t = bc_http_query(req, "tenantId");
	bc_http_res_json(res, 200, dir_keys_jwks(d, t ? t : d->default_tenant));
}

static int audit_row(void *ctx, const struct bc_row *row)
{
	json_t *o = json_object();
	static const char *const names[] = {"timeMs", "tenantId", "operation", "resource", "oid", "appid",
					    "xms_mirid", "clientAddress", "status", "durationMs", "requestId"};
	for (int i = 0; i < 11; i++) {
		if (i == 0 || i == 8 || i == 9)
			json_object_set_new(o, names[i], json_integer(bc_row_int(row, i)));
		else
			json_object_set_new(o, names[i], bc_row_text(row, i) ? json_string(bc_row_text(row, i)) : json_null());
	}
	json_array_append_new(ctx, o);
	return 0;
}

/* The token audit trail, oldest first from ?since= (epoch ms), at most ?limit= (default 1000). */
static void audit_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct dir *d = ctx;
	struct bc_error err;
	if (!admin_only(d, req, res))
		return;
	const char *since = bc_http_query(req, "since"), *limit = bc_http_query(req, "limit");
	long long s = since ? strtoll(since, NULL, 10) : 0, l = limit ? strtoll(limit, NULL, 10) : 1000;
	if (l <= 0 || l > 10000)
		l = 1000;
	bc_audit_flush(d->audit); /* what was issued before this request is in the answer */
	json_t *arr = json_array();
	struct bc_param p[] = {BC_PINT(s), BC_PINT(l)};
	if (bc_store_exec(d->st, NULL,
			  "SELECT time_ms, tenant, operation, object, oid, appid, xms_mirid, client_ip, status, duration_ms,"
			  " request_id FROM dir_audit WHERE time_ms >= ? ORDER BY time_ms, id LIMIT ?",
			  p, 2, audit_row, arr, NULL, &err)) {
		json_decref(arr);
		fail_status(res, &err);
		return;
	}
	bc_http_res_json(res, 200, json_pack("{s:o}", "value", arr));
}

static const struct bc_route admin_routes[] = {
	{"GET", ADMIN "/audit", audit_list, NULL, 0},
	{"GET", ADMIN "/tenants", tenants, NULL, 0},
	{"GET", ADMIN "/principals", principals_list, NULL, 0},
	{"POST", ADMIN "/principals", principals_create, NULL, 0},
	{"GET", ADMIN "/principals/{id}", principal_get, NULL, 0},
	{"DELETE", ADMIN "/principals/{id}", principal_delete, NULL, 0},
	{"GET", ADMIN "/principals/{id}/credentials", credentials_list, NULL, 0},
	{"POST", ADMIN "/principals/{id}/certificates", certificate_add, NULL, 0},
	{"POST", ADMIN "/principals/{id}/secrets", secret_add, NULL, 0},
	{"DELETE", ADMIN "/principals/{id}/credentials/{cred}", credential_delete, NULL, 0},
	{"POST", ADMIN "/keys/rotate", keys_rotate, NULL, 0},
	{"GET", ADMIN "/keys", keys_list, NULL, 0},
};

int dir_admin_mount(struct dir *d, struct bc_http_server *srv)
{
	return bc_http_mount(srv, NULL, NULL, admin_routes, sizeof(admin_routes) / sizeof(admin_routes[0]), d);
}
