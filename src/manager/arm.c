/* ARM request plumbing: the error table, api-version and bearer-token checks, the caller's role
 * assignments (cached) and the authorization decision. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "manager/mgr_int.h"

void arm_error(struct bc_http_res *res, int status, const char *code, const char *fmt, ...)
{
	char msg[BC_ERROR_MSG_MAX * 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bc_http_res_json(res, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* The one table from internal status to what an ARM client sees. */
static const struct {
	int st;
	int http;
	const char *code;
} err_map[] = {
	{BC_ERR_INVALID, 400, "InvalidRequestContent"},
	{BC_ERR_LIMIT, 400, "InvalidRequestContent"},
	{BC_ERR_NOT_FOUND, 404, "ResourceNotFound"},
	{BC_ERR_EXISTS, 409, "Conflict"},
	{BC_ERR_CONFLICT, 409, "Conflict"},
	{BC_ERR_UNAUTHENTICATED, 401, "AuthenticationFailed"},
	{BC_ERR_FORBIDDEN, 403, "AuthorizationFailed"},
	{BC_ERR_RATE, 429, "TooManyRequests"},
	{BC_ERR_UNAVAILABLE, 503, "ServiceUnavailable"},
};

void arm_error_from(struct bc_http_res *res, const struct bc_error *err)
{
	for (size_t i = 0; i < sizeof(err_map) / sizeof(err_map[0]); i++)
		if (err_map[i].st == err->status) {
			arm_error(res, err_map[i].http, err_map[i].code, "%s", err->msg);
			return;
		}
	bc_log_error("manager: %s: %s", bc_status_name(err->status), err->msg);
	arm_error(res, 500, "InternalServerError", "the server had an internal error");
}

static void unauthenticated(struct arm *a, const char *code, const char *desc)
{
	char hdr[768];
	snprintf(hdr, sizeof(hdr),
		 "Bearer authorization_uri=\"%s/\", error=\"invalid_token\", error_description=\"%s\"",
		 dir_login_url(a->m->dir), desc);
	arm_error(a->res, 401, code, "%s", desc);
	(void)bc_http_res_header(a->res, "WWW-Authenticate", hdr);
}

bool arm_begin(struct arm *a, struct mgr *m, struct bc_http_req *req, struct bc_http_res *res)
{
	const char *v, *auth;
	struct bc_error err = {0};
	memset(a, 0, sizeof(*a));
	a->m = m;
	a->req = req;
	a->res = res;

	if (bc_http_query_count(req, "api-version") == 0) {
		arm_error(res, 400, "MissingApiVersionParameter",
			  "The api-version query parameter (?api-version=) is required for all requests.");
		return false;
	}
	v = bc_http_query(req, "api-version");
	if (bc_http_query_count(req, "api-version") > 1 || !mgr_api_version_ok(v)) {
		arm_error(res, 400, "InvalidApiVersionParameter",
			  "The api-version '%.64s' is invalid. The supported versions are '2014-04-01' and later, "
			  "in the form YYYY-MM-DD[-preview].", v ? v : "");
		return false;
	}
	if (!mgr_api_version_known(v, bc_now())) {
		arm_error(res, 400, "NoRegisteredProviderFound",
			  "No registered resource provider found for API version '%.64s' and path '%.256s'. The "
			  "supported api-versions are '2014-04-01' up to today's date.", v, req->path);
		return false;
	}

	auth = bc_http_header(req, "Authorization");
	if (!auth || bc_http_header_count(req, "Authorization") != 1) {
		unauthenticated(a, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.");
		return false;
	}
	if (strncasecmp(auth, "Bearer ", 7) != 0) {
		unauthenticated(a, "AuthenticationFailed",
				"Authentication failed. The 'Authorization' header is provided in an invalid format.");
		return false;
	}
	auth += 7;
	while (*auth == ' ')
		auth++;
	const char *auds[2] = {m->management_resource, NULL};
	char alt[BC_LIMIT_RESOURCE + 2];
	size_t al = strlen(m->management_resource);
	if (al > 0 && al < sizeof(alt) - 1) {
		memcpy(alt, m->management_resource, al + 1);
		if (alt[al - 1] == '/')
			alt[al - 1] = '\0';
		else {
			alt[al] = '/';
			alt[al + 1] = '\0';
		}
		auds[1] = alt;
	}
	if (dir_token_verify(m->dir, auth, strlen(auth), NULL, auds, auds[1] ? 2 : 1, &a->claims, &err) != BC_OK) {
		bc_log(BC_LOG_INFO, req->request_id, "manager: token rejected: %s", err.msg);
		if (err.status == BC_ERR_UNAUTHENTICATED)
			unauthenticated(a, "InvalidAuthenticationToken", "The access token is invalid.");
		else
			arm_error_from(res, &err);
		return false;
	}
	return arm_throttle(a);
}

void arm_end(struct arm *a)
{
	mgr_grants_free(a->g, a->ng);
	a->g = NULL;
	a->ng = 0;
}

void mgr_grants_free(struct mgr_grant *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		free(g[i].scope);
	free(g);
}

static int copy_grants(const struct mgr_grant *src, size_t n, struct mgr_grant **out)
{
	struct mgr_grant *g = calloc(n ? n : 1, sizeof(*g));
	if (!g)
		return BC_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		g[i].role = src[i].role;
		if (!(g[i].scope = strdup(src[i].scope))) {
			mgr_grants_free(g, i);
			return BC_ERR_NOMEM;
		}
	}
	*out = g;
	return BC_OK;
}

struct grant_load {
	struct mgr_grant *g;
	size_t n;
	int st;
};

static int grant_row(void *ctx, const struct bc_row *row)
{
	struct grant_load *l = ctx;
	const struct mgr_role *r = mgr_role_by_id(bc_row_text(row, 1));
	const char *scope = bc_row_text(row, 0);
	if (!r || !scope)
		return 0;
	if (l->n == MGR_MAX_GRANTS)
		return 1;
	if (!(l->g[l->n].scope = strdup(scope))) {
		l->st = BC_ERR_NOMEM;
		return 1;
	}
	l->g[l->n++].role = r;
	return 0;
}

static size_t gslot(const char *oid)
{
	size_t h = 5381;
	for (; *oid; oid++)
		h = h * 33 + (unsigned char)*oid;
	return h % MGR_GCACHE_SLOTS;
}

int mgr_grants_load(struct mgr *m, const char *oid, struct mgr_grant **out, size_t *n, struct bc_error *err)
{
	struct grant_load l = {0};
	uint64_t gen;
	size_t slot = gslot(oid);
	int st;

	pthread_mutex_lock(&m->mu);
	struct mgr_gcache *c = &m->gcache[slot];
	if (c->gen == m->gen && c->g && !strcmp(c->oid, oid)) {
		st = copy_grants(c->g, c->n, out);
		if (st == BC_OK)
			*n = c->n;
		pthread_mutex_unlock(&m->mu);
		return st ? bc_error_set(err, st, "out of memory") : BC_OK;
	}
	gen = m->gen;
	pthread_mutex_unlock(&m->mu);

	l.g = calloc(MGR_MAX_GRANTS, sizeof(*l.g));
	if (!l.g)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	st = bc_store_exec(m->st, NULL, "SELECT scope_key, role FROM mgr_role_assignments WHERE principal = ?",
			   (struct bc_param[]){BC_PTEXT(oid)}, 1, grant_row, &l, NULL, err);
	if (st == BC_OK && l.st)
		st = bc_error_set(err, l.st, "out of memory");
	if (st != BC_OK) {
		mgr_grants_free(l.g, l.n);
		return st;
	}
	/* Install a copy in the cache when nothing changed meanwhile. */
	struct mgr_grant *copy = NULL;
	if (copy_grants(l.g, l.n, &copy) == BC_OK) {
		pthread_mutex_lock(&m->mu);
		if (m->gen == gen) {
			mgr_grants_free(c->g, c->n);
			snprintf(c->oid, sizeof(c->oid), "%s", oid);
			c->g = copy;
			c->n = l.n;
			c->gen = gen;
			copy = NULL;
		}
		pthread_mutex_unlock(&m->mu);
		mgr_grants_free(copy, l.n);
	}
	*out = l.g;
	*n = l.n;
	return BC_OK;
}

bool mgr_grants_permit(const struct mgr_grant *g, size_t n, const char *action, const char *scope, bool data)
{
	for (size_t i = 0; i < n; i++)
		if (mgr_scope_covers(g[i].scope, scope) && mgr_role_permits(g[i].role, action, data))
			return true;
	return false;
}

bool arm_can(struct arm *a, const char *action, const char *scope)
{
	if (!a->grants_loaded) {
		struct bc_error err = {0};
		if (mgr_grants_load(a->m, a->claims.oid, &a->g, &a->ng, &err) != BC_OK) {
			bc_log_error("manager: loading role assignments: %s", err.msg);
			return false;
		}
		a->grants_loaded = true;
	}
	return mgr_grants_permit(a->g, a->ng, action, scope, false);
}

bool arm_allowed(struct arm *a, const char *action, const char *scope)
{
	if (arm_can(a, action, scope))
		return true;
	arm_error(a->res, 403, "AuthorizationFailed",
		  "The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope "
		  "'%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		  a->claims.oid, a->claims.oid, action, scope);
	return false;
}

json_t *arm_body(struct arm *a)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	if (a->req->body_len == 0) {
		arm_error(a->res, 400, "InvalidRequestContent", "The request content was invalid: the body is empty.");
		return NULL;
	}
	if (bc_json_parse(a->req->body, a->req->body_len, 0, &j, &err) != BC_OK) {
		arm_error(a->res, 400, "InvalidRequestContent", "The request content was invalid and could not be "
			  "deserialized: %s.", err.msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		arm_error(a->res, 400, "InvalidRequestContent", "The request content must be a JSON object.");
		return NULL;
	}
	return j;
}

void arm_json(struct arm *a, int status, json_t *body)
{
	if (!body) {
		arm_error(a->res, 500, "InternalServerError", "out of memory");
		return;
	}
	bc_http_res_json(a->res, status, body);
}

void arm_list_json(struct arm *a, int st, json_t *arr, const struct bc_error *err)
{
	if (st != BC_OK) {
		json_decref(arr);
		arm_error_from(a->res, err);
		return;
	}
	arm_json(a, 200, json_pack("{s:o}", "value", arr));
}

bool arm_sub_ok(struct arm *a, const char *sub)
{
	if (mgr_sub_known(a->m, sub))
		return true;
	arm_error(a->res, 404, "SubscriptionNotFound", "The subscription '%.64s' could not be found.", sub);
	return false;
}

int arm_tags(const json_t *body, json_t **out, struct bc_error *err)
{
	json_t *t = json_object_get(body, "tags"), *v;
	const char *k;
	if (!t || json_is_null(t)) {
		*out = json_object();
		return *out ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	if (!json_is_object(t))
		return bc_error_set(err, BC_ERR_INVALID, "tags must be an object of strings");
	if (json_object_size(t) > MGR_MAX_TAGS)
		return bc_error_set(err, BC_ERR_INVALID, "at most %d tags are allowed", MGR_MAX_TAGS);
	json_object_foreach(t, k, v)
	{
		if (!json_is_string(v) || strlen(k) > 512 || json_string_length(v) > 256 || !*k)
			return bc_error_set(err, BC_ERR_INVALID,
					    "tag '%.64s' is invalid: names are 1-512 characters, values strings of at "
					    "most 256", k);
	}
	*out = json_deep_copy(t);
	return *out ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
}

const char *arm_location(const json_t *body, const char *dflt)
{
	const char *l = bc_json_str(body, "location");
	return l && *l ? l : dflt;
}
