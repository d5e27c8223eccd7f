/* The vault: routing (host-style and path-style), the 401 challenge, token verification,
 * authorization, api-versions, errors, ids, paging and the audit record of every request.
 * The endpoints themselves live in secrets.c and keys.c as tables of struct vroute. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "vault/vault_int.h"

#define PATH_PREFIX "/vaults/{vault}"
#define LATEST_API  "2025-07-01"

/* One mounted route: the vault, the route's description and the bc_route the adapter sees. */
struct vmount {
	struct vault *v;
	const struct vroute *vr;
	bool path_style;
	enum vault_rl_class rl_class; /* its Key Vault service-limit class */
	struct bc_route r;
};

struct vault_mounts {
	struct vmount *m; /* owned array */
	size_t n;
};
static void mounts_free(struct vault *v);

/* ---- errors and replies ---------------------------------------------------------------- */

static void error_body(struct bc_http_res *res, int http, const char *code, const char *inner,
		       const char *msg)
{
	json_t *e = json_object();
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", json_string(msg));
	if (inner)
		json_object_set_new(e, "innererror", json_pack("{s:s}", "code", inner));
	json_t *body = json_object();
	json_object_set_new(body, "error", e);
	bc_http_res_json(res, http, body);
}

void vault_error(struct vreq *q, int http, const char *code, const char *inner, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_body(q->res, http, code, inner, msg);
}

void vault_fail_reply(struct vreq *q, const struct vault_fail *f)
{
	error_body(q->res, f->http ? f->http : 400, f->code ? f->code : "BadParameter", f->inner, f->msg);
}

void vault_internal(struct vreq *q, const struct bc_error *err)
{
	bc_log(BC_LOG_ERROR, q->req->request_id, "vault: %s %s: %s", q->req->method, q->route->operation,
	       err ? err->msg : "internal error");
	if (err && (err->status == BC_ERR_CONFLICT || err->status == BC_ERR_UNAVAILABLE))
		vault_error(q, 503, "ServiceUnavailable", NULL,
			    "The service is busy; retry the request. Request id: %s", q->req->request_id);
	else
		vault_error(q, 500, "InternalServerError", NULL,
			    "The service encountered an internal error. Request id: %s", q->req->request_id);
}

void vault_reply(struct vreq *q, json_t *body)
{
	if (!body) {
		vault_internal(q, NULL);
		return;
	}
	bc_http_res_json(q->res, 200, body);
}

/* ---- small helpers shared by the endpoint modules -------------------------------------- */

const char *vault_recovery_level(const struct mgr_vault_info *info)
{
	int days = vault_recoverable_days(info);
	if (!info->soft_delete)
		return "Purgeable";
	if (info->purge_protection)
		return days == 90 ? "Recoverable" : "CustomizedRecoverable";
	return days == 90 ? "Recoverable+Purgeable" : "CustomizedRecoverable+Purgeable";
}

int vault_recoverable_days(const struct mgr_vault_info *info)
{
	if (!info->soft_delete)
		return 0;
	return info->retention_days > 0 ? info->retention_days : 90;
}

json_t *vault_attrs_json(const struct vreq *q, const struct vault_row *r, bool key)
{
	/* one definition of the document: vault_attrs_write's, read back as a tree */
	struct bc_buf b = {0};
	json_t *a = vault_attrs_write(q, r, key, &b) == BC_OK ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	bc_buf_release(&b);
	return a;
}

int vault_attrs_write(const struct vreq *q, const struct vault_row *r, bool key, struct bc_buf *out)
{
	/* the attributes object (vault_attrs_json reads this back as a tree) */
	int rc = bc_buf_appendf(out, "{\"enabled\":%s", r->enabled ? "true" : "false");
	if (rc == BC_OK && r->has_nbf)
		rc = bc_buf_appendf(out, ",\"nbf\":%lld", (long long)r->nbf);
	if (rc == BC_OK && r->has_exp)
		rc = bc_buf_appendf(out, ",\"exp\":%lld", (long long)r->exp);
	if (rc == BC_OK)
		rc = bc_buf_appendf(out, ",\"created\":%lld,\"updated\":%lld,\"recoveryLevel\":\"%s\"",
				    (long long)r->created, (long long)r->updated, vault_recovery_level(&q->info));
	if (rc == BC_OK && q->info.soft_delete)
		rc = bc_buf_appendf(out, ",\"recoverableDays\":%d", vault_recoverable_days(&q->info));
	if (rc == BC_OK && key)
		rc = bc_buf_appends(out, ",\"exportable\":false");
	if (rc == BC_OK)
		rc = bc_buf_appendc(out, '}');
	return rc;
}

json_t *vault_tags_json(const char *tags)
{
	if (!tags)
		return NULL;
	json_t *j = json_loads(tags, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void vault_audit_object(struct vreq *q, const char *collection, const char *name, const char *version)
{
	snprintf(q->audit.object, sizeof(q->audit.object), "%s/%s%s%s", collection, name ? name : "",
		 version && *version ? "/" : "", version && *version ? version : "");
}

int vault_page_params(struct vreq *q, int *limit, char *after, size_t after_len)
{
	const char *mr = bc_http_query(q->req, "maxresults");
	const char *tok = bc_http_query(q->req, "$skiptoken");
	*limit = BC_LIMIT_PAGE_SIZE;
	after[0] = '\0';
	if (mr && *mr) {
		char *end = NULL;
		long n = strtol(mr, &end, 10);
		if (*end || n < 1 || n > BC_LIMIT_PAGE_SIZE) {
			vault_error(q, 400, "BadParameter", NULL,
				    "Invalid value for maxresults: it must be between 1 and %d",
				    BC_LIMIT_PAGE_SIZE);
			return BC_ERR_INVALID;
		}
		*limit = (int)n;
	}
	if (tok && *tok) {
		uint8_t *raw = NULL;
		size_t n = 0;
		struct bc_error err = {0};
		if (strlen(tok) > 2 * after_len ||
		    bc_b64url_decode(tok, strlen(tok), &raw, &n, &err) != BC_OK || n >= after_len ||
		    memchr(raw, '\0', n)) {
			free(raw);
			vault_error(q, 400, "BadParameter", NULL, "Invalid value for $skiptoken");
			return BC_ERR_INVALID;
		}
		memcpy(after, raw, n);
		after[n] = '\0';
		free(raw);
	}
	return BC_OK;
}

/* The link base: where the client actually is (path-style keeps /vaults/NAME), because the
 * clients follow nextLink verbatim. */
static void link_base(const struct vreq *q, char *out, size_t n)
{
	if (strncmp(q->req->path, "/vaults/", 8) == 0 && q->req->host)
		snprintf(out, n, "https://%s/vaults/%s", q->req->host, q->req->captures[0]);
	else
		snprintf(out, n, "%s", q->base);
}

json_t *vault_next_link(const struct vreq *q, const char *path, const char *token, int limit)
{
	if (!token)
		return json_null();
	char lb[400];
	struct bc_buf b = {0};
	char *tok = bc_b64url_encode_str(token, strlen(token));
	link_base(q, lb, sizeof(lb));
	json_t *j = NULL;
	if (tok && bc_buf_appendf(&b, "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d", lb, path,
				  q->api_version, tok, limit) == BC_OK)
		j = json_string(bc_buf_cstr(&b));
	free(tok);
	bc_buf_release(&b);
	return j ? j : json_null();
}

/* ---- transactions ---------------------------------------------------------------------- */

static void audit_finish(struct vreq *q)
{
	q->audit.status = q->res->status ? q->res->status : 500;
	q->audit.duration_ms = bc_now_ms() - q->audit.duration_ms;
}

int vault_in_txn(struct vreq *q, vault_txn_fn fn, void *ctx, struct bc_error *err)
{
	int rc = BC_OK;
	int64_t t0 = q->audit.duration_ms;
	for (int attempt = 0; attempt < 4; attempt++) {
		struct bc_txn *txn = NULL;
		rc = bc_store_begin(q->v->st, &txn, err);
		/* the vault still exists, and stays so until this commits (a delete and purge racing
		 * with this write would otherwise leave its rows to the next vault of the name) */
		if (rc == BC_OK && (rc = mgr_vault_hold_txn(q->v->mgr, txn, q->vkey, err)) == BC_ERR_NOT_FOUND) {
			bc_txn_rollback(txn);
			vault_error(q, 404, "VaultNotFound", NULL, "The vault '%s' was not found.", q->vkey);
			return BC_OK;
		}
		if (rc == BC_OK)
			rc = fn(q, txn, ctx, err);
		bool ok = q->res->status >= 200 && q->res->status < 300;
		if (rc == BC_OK && ok && q->route->mutation) {
			audit_finish(q);
			rc = bc_audit_insert(q->v->audit->w, txn, &q->audit, err);
			if (rc != BC_OK)
				q->audit.duration_ms = t0;
		}
		/* every replica's read cache forgets what it holds once this commits */
		if (rc == BC_OK && ok) {
			char note[sizeof(q->v->self_id) + sizeof(q->vkey) + 1];
			snprintf(note, sizeof(note), "%s %s", q->v->self_id, q->vkey);
			rc = bc_store_notify(q->v->st, txn, VAULT_NOTIFY_CHANNEL, note, err);
		}
		if (rc == BC_OK && ok) {
			rc = bc_txn_commit(txn, err);
			txn = NULL;
			vault_cache_invalidate(q->v->cache); /* this replica's, before anyone is answered */
			if (rc == BC_OK && q->route->mutation)
				q->audit_in_txn = true;
		}
		bc_txn_rollback(txn);
		if (rc == BC_OK)
			return BC_OK;
		q->audit.duration_ms = t0;
		/* A busy store or a race on a unique name (two first writes at once): run it again. */
		if (rc != BC_ERR_CONFLICT && rc != BC_ERR_EXISTS)
			return rc;
		q->res->status = 0;
	}
	return rc;
}

/* ---- addressing ------------------------------------------------------------------------ */

static bool host_ok(const char *h)
{
	size_t n = h ? strlen(h) : 0;
	if (n == 0 || n > 260)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (!(isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

/* ":PORT" of a Host header, "" when it has none. */
static const char *host_port(const char *h)
{
	const char *p = h[0] == '[' ? strchr(h, ']') : h;
	p = p ? strrchr(p, ':') : NULL;
	if (!p || !p[1])
		return "";
	for (const char *d = p + 1; *d; d++)
		if (!isdigit((unsigned char)*d))
			return "";
	return p;
}

/* Ids are built on the vault's own host name, with the port the client used: the clients
 * parse /{collection}/{name}[/{version}] out of them, which a /vaults/NAME path would break. */
static bool make_base(struct vreq *q)
{
	const char *host = q->req->host;
	if (host && !host_ok(host))
		return false;
	const char *port = host ? host_port(host) : "";
	if (!*port)
		port = q->v->public_port;
	if (strcmp(port, ":443") == 0)
		port = "";
	int n = snprintf(q->base, sizeof(q->base), "https://%s%s%s", q->vkey, q->v->dot_suffix, port);
	return n > 0 && (size_t)n < sizeof(q->base);
}

/* ---- authentication -------------------------------------------------------------------- */

static void challenge(struct vault *v, struct bc_http_res *res, const char *tenant, const char *msg)
{
	char hdr[1024];
	snprintf(hdr, sizeof(hdr), "Bearer authorization=\"%s/%s\", resource=\"%s\"", dir_login_url(v->dir),
		 tenant, v->resource);
	error_body(res, 401, "Unauthorized", NULL, msg);
	if (bc_http_res_header(res, "WWW-Authenticate", hdr) != BC_OK)
		bc_log_error("vault: cannot add the WWW-Authenticate header");
}

static const char missing_msg[] = "AKV10000: Request is missing a Bearer or PoP token.";

/* A client-facing reason for a rejected token that says which check failed, not more. */
static const char *reject_msg(const struct bc_error *err)
{
	const char *m = err->msg;
	if (strstr(m, "audience") || strstr(m, "aud"))
		return "AKV10022: Invalid audience.";
	if (strstr(m, "issuer") || strstr(m, "iss") || strstr(m, "tenant"))
		return "AKV10032: Invalid issuer.";
	if (strstr(m, "expire") || strstr(m, "exp") || strstr(m, "nbf") || strstr(m, "not yet"))
		return "AKV10012: Token is expired or not yet valid.";
	if (strstr(m, "principal"))
		return "AKV10046: The token's principal no longer exists or is disabled.";
	return "AKV10017: Token validation failed.";
}

void vault_lower(char *dst, const char *src, size_t n)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static int lookup(struct vault *v, const char *label, struct mgr_vault_info *info)
{
	struct bc_error err = {0};
	char name[BC_LIMIT_NAME + 1];
	if (!vault_vault_name_valid(label))
		return BC_ERR_NOT_FOUND;
	vault_lower(name, label, sizeof(name));
	int rc = mgr_vault_lookup(v->mgr, name, info, &err);
	if (rc != BC_OK && rc != BC_ERR_NOT_FOUND)
		bc_log_error("vault: lookup of vault %s failed: %s", name, err.msg);
	return rc;
}

/* Verifies the bearer token of req for the vault (info NULL: not known). Answers 401 itself. */
static int authenticate(struct vault *v, struct bc_http_req *req, struct bc_http_res *res,
			const struct mgr_vault_info *info, struct dir_claims *claims)
{
	const char *tok = NULL;
	size_t len = 0;
	const char *tenant = info ? info->tenant_id : dir_default_tenant(v->dir);
	int rc = vault_parse_bearer(bc_http_header(req, "Authorization"), &tok, &len);
	if (rc == BC_ERR_UNAUTHENTICATED || bc_http_header_count(req, "Authorization") > 1) {
		challenge(v, res, tenant, missing_msg);
		return BC_ERR_UNAUTHENTICATED;
	}
	if (rc != BC_OK) {
		challenge(v, res, tenant, "AKV10017: Token validation failed.");
		return BC_ERR_UNAUTHENTICATED;
	}
	if (!info) /* an unknown vault: nothing to verify the token against */
		return BC_OK;
	struct bc_error err = {0};
	const char *auds[] = {v->resource};
	rc = dir_token_verify(v->dir, tok, len, info->tenant_id, auds, 1, claims, &err);
	if (rc != BC_OK) {
		bc_log(BC_LOG_INFO, req->request_id, "vault: token rejected: %s", err.msg);
		challenge(v, res, tenant, reject_msg(&err));
		return BC_ERR_UNAUTHENTICATED;
	}
	return BC_OK;
}

static void audit_begin(struct vreq *q)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	/* q->audit is zero: every vreq starts zeroed (calloc or an initialiser) */
	q->audit.time_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	q->audit.duration_ms = bc_now_ms();
	bc_strlcpy(q->audit.operation, q->route->operation, sizeof(q->audit.operation));
	bc_strlcpy(q->audit.client_ip, q->req->client_ip, sizeof(q->audit.client_ip));
	bc_strlcpy(q->audit.request_id, q->req->request_id, sizeof(q->audit.request_id));
	vault_lower(q->audit.scope, q->req->ncaptures ? q->req->captures[0] : "", sizeof(q->audit.scope));
}

static void audit_caller(struct vreq *q)
{
	bc_strlcpy(q->audit.oid, q->claims.oid, sizeof(q->audit.oid));
	bc_strlcpy(q->audit.appid, q->claims.appid, sizeof(q->audit.appid));
	bc_strlcpy(q->audit.xms_mirid, q->claims.xms_mirid, sizeof(q->audit.xms_mirid));
}

static void audit_end(struct vreq *q)
{
	if (q->audit_in_txn)
		return;
	audit_finish(q);
	audit_caller(q);
	vault_audit_enqueue(q->v->audit, &q->audit);
}

/* Runs before the body is read: a request without a (valid) bearer token is answered 401 here,
 * so the clients' body-less first request never meets a body check. */
static void vault_early(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct vmount *vm = ctx;
	struct mgr_vault_info info;
	struct dir_claims claims;
	const char *label = req->ncaptures ? req->captures[0] : "";
	/* GET and DELETE carry no body: the handler's own (cached) verification suffices, and the
	 * hot path (a GET with a token) costs nothing here. */
	bool has_body = strcmp(req->method, "GET") != 0 && strcmp(req->method, "DELETE") != 0 &&
			strcmp(req->method, "HEAD") != 0;
	const char *hdr = bc_http_header(req, "Authorization");
	/* For a body-less request only the scheme is looked at here: the handler parses the token. */
	if (!has_body && hdr && strncasecmp(hdr, "Bearer ", 7) == 0)
		return;
	const char *tok;
	size_t len;
	bool bearer = vault_parse_bearer(hdr, &tok, &len) == BC_OK;
	bool known = lookup(vm->v, label, &info) == BC_OK;
	if (!bearer || known) {
		if (authenticate(vm->v, req, res, known ? &info : NULL, &claims) != BC_OK) {
			struct vreq q = {.v = vm->v, .req = req, .res = res, .route = vm->vr};
			audit_begin(&q);
			audit_end(&q);
		}
	}
}

/* ---- the request ----------------------------------------------------------------------- */

static size_t pattern_captures(const char *p)
{
	size_t n = 0;
	for (; *p; p++)
		n += *p == '{';
	return n;
}

static void vault_handle(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct vmount *vm = ctx;
	struct vreq *q = calloc(1, sizeof(*q));
	if (!q) {
		error_body(res, 500, "InternalServerError", NULL, "out of memory");
		return;
	}
	q->v = vm->v;
	q->req = req;
	q->res = res;
	q->route = vm->vr;
	audit_begin(q);
	const char *label = req->ncaptures ? req->captures[0] : "";
	size_t nc = pattern_captures(vm->vr->pattern);
	if (nc >= 1 && req->ncaptures > 1)
		q->name = req->captures[1];
	if (nc >= 2 && req->ncaptures > 2)
		q->version = req->captures[2];

	int lrc = lookup(q->v, label, &q->info);
	if (authenticate(q->v, req, res, lrc == BC_OK ? &q->info : NULL, &q->claims) != BC_OK)
		goto done;
	audit_caller(q);
	if (lrc != BC_OK) {
		if (lrc == BC_ERR_NOT_FOUND)
			vault_error(q, 404, "VaultNotFound", NULL, "The vault '%s' was not found.", label);
		else
			vault_internal(q, NULL);
		goto done;
	}
	vault_lower(q->vkey, q->info.name, sizeof(q->vkey));
	bc_strlcpy(q->audit.scope, q->vkey, sizeof(q->audit.scope));
	if (!vault_throttle(q, vm->rl_class))
		goto done; /* 429, audited below like any answer */

	q->api_version = bc_http_query(req, "api-version");
	if (!q->api_version || !*q->api_version) {
		vault_error(q, 400, "BadParameter", NULL, "The api-version query parameter is missing.");
		goto done;
	}
	if (!vault_api_version_known(q->api_version)) {
		vault_error(q, 400, "BadParameter", NULL,
			    "The specified version (%.32s) is not recognized. Consider using the latest "
			    "supported version (%s).",
			    q->api_version, LATEST_API);
		goto done;
	}
	if (!make_base(q)) {
		vault_error(q, 400, "BadParameter", NULL, "The Host header is not valid.");
		goto done;
	}
	if (q->name && !vault_name_valid(q->name)) {
		vault_error(q, 400, "BadParameter", NULL, "The request URI contains an invalid name: %.140s",
			    q->name);
		goto done;
	}
	if (vm->vr->category) {
		struct bc_error err = {0};
		int rc = mgr_vault_authorize(q->v->mgr, &q->info, q->claims.oid, vm->vr->category,
					     vm->vr->permission, &err);
		if (rc == BC_ERR_FORBIDDEN) {
			if (q->info.rbac)
				vault_error(q, 403, "Forbidden", "ForbiddenByRbac",
					    "Caller is not authorized to perform action on resource. Caller: "
					    "appid=%s;oid=%s;iss=%s/%s/ "
					    "Action: 'Microsoft.KeyVault/vaults/%s/%s' Resource: '%s'",
					    q->claims.appid, q->claims.oid, dir_login_url(q->v->dir),
					    q->info.tenant_id, vm->vr->category, vm->vr->permission,
					    q->info.resource_id);
			else
				vault_error(q, 403, "Forbidden", "ForbiddenByPolicy",
					    "The user, group or application 'appid=%s;oid=%s;iss=%s/%s/' "
					    "does not have %s %s "
					    "permission on key vault '%s;location=local'. For help resolving "
					    "this issue, please see "
					    "https://go.microsoft.com/fwlink/?linkid=2125287",
					    q->claims.appid, q->claims.oid, dir_login_url(q->v->dir),
					    q->info.tenant_id, vm->vr->category, vm->vr->permission,
					    q->info.name);
			goto done;
		}
		if (rc != BC_OK) {
			vault_internal(q, &err);
			goto done;
		}
	}
	if (q->version && *q->version && !vault_version_valid(q->version)) {
		bool key = strcmp(vm->vr->category ? vm->vr->category : "", "keys") == 0;
		vault_error(q, 404, key ? "KeyNotFound" : "SecretNotFound", NULL,
			    "A %s with (name/id) %s/%.40s was not found in this key vault.",
			    key ? "key" : "secret", q->name, q->version);
		goto done;
	}
	vm->vr->fn(q);
done:
	audit_end(q);
	free(q);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

struct vault_priv {
	struct vault_mounts mounts;
};

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

#define PURGE_NOTE " purge" /* "<self_id> <vault> purge": the vault was purged for good */

static void on_objects_change(void *ctx, const char *channel, const char *payload)
{
	struct vault *v = ctx;
	size_t n = strlen(v->self_id), pl = strlen(payload), ml = strlen(PURGE_NOTE);
	(void)channel;
	/* our own changes were forgotten right after their commit; "" = anything may have changed */
	if (strncmp(payload, v->self_id, n) == 0 && payload[n] == ' ')
		return;
	vault_cache_invalidate(v->cache);
	/* a purged vault's data key is gone: a new vault of that name gets its own */
	const char *sp = strchr(payload, ' ');
	if (!*payload) {
		vault_crypt_forget(v->crypt, NULL);
	} else if (sp && pl > ml && !strcmp(payload + pl - ml, PURGE_NOTE)) {
		char name[BC_LIMIT_NAME + 1];
		size_t len = (size_t)(payload + pl - ml - (sp + 1));
		if (len < sizeof(name)) {
			memcpy(name, sp + 1, len);
			name[len] = '\0';
			vault_crypt_forget(v->crypt, name);
		} else {
			vault_crypt_forget(v->crypt, NULL);
		}
	}
}

/* The manager purges a vault (deletedVaults/{name}/purge, or its retention ended): in its
 * transaction, everything stored for the vault goes and every replica is told. */
static int purge_hook(void *ctx, struct bc_txn *txn, const char *vault, struct bc_error *err)
{
	struct vault *v = ctx;
	char note[sizeof(v->self_id) + BC_LIMIT_NAME + sizeof(PURGE_NOTE) + 2];
	int rc = vault_obj_purge_vault(v->st, txn, vault, err);
	snprintf(note, sizeof(note), "%s %s%s", v->self_id, vault, PURGE_NOTE);
	if (rc == BC_OK)
		rc = bc_store_notify(v->st, txn, VAULT_NOTIFY_CHANNEL, note, err);
	return rc;
}

/* After that commit, on this replica, before the caller is answered. */
static void purged_hook(void *ctx, const char *vault)
{
	struct vault *v = ctx;
	vault_cache_invalidate(v->cache);
	vault_crypt_forget(v->crypt, vault);
}

int vault_new(struct vault **out, struct bc_store *st, struct dir *d, struct mgr *m,
	      const struct vault_config *cfg, struct bc_error *err)
{
	if (!st || !d || !m || !cfg || !cfg->vault_suffix || !*cfg->vault_suffix || !cfg->vault_resource)
		return bc_error_set(err, BC_ERR_INVALID, "vault: incomplete configuration");
	struct vault *v = calloc(1, sizeof(*v) + sizeof(struct vault_priv));
	int rc;
	if (!v)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	v->st = st;
	v->dir = d;
	v->mgr = m;
	const char *suffix = cfg->vault_suffix[0] == '.' ? cfg->vault_suffix + 1 : cfg->vault_suffix;
	v->suffix = lower_dup(suffix);
	v->resource = strdup(cfg->vault_resource);
	v->public_port = strdup(cfg->public_port ? cfg->public_port : "");
	if (v->suffix && (v->dot_suffix = malloc(strlen(v->suffix) + 2)))
		sprintf(v->dot_suffix, ".%s", v->suffix);
	if (!v->suffix || !v->resource || !v->public_port || !v->dot_suffix) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = vault_schema_migrate(st, err)) != BC_OK)
		goto fail;
	if ((rc = vault_crypt_new(&v->crypt, cfg->master_key_file, st, err)) != BC_OK)
		goto fail;
	if ((rc = vault_audit_new(&v->audit, st, err)) != BC_OK)
		goto fail;
	uint8_t id[8];
	if (bc_random(id, sizeof(id)) != BC_OK) {
		rc = bc_error_set(err, BC_ERR_INTERNAL, "no randomness");
		goto fail;
	}
	bc_hex(id, sizeof(id), v->self_id);
	if ((rc = vault_throttle_init(v, cfg)) != BC_OK) {
		rc = bc_error_set(err, rc, "vault: bad throttling limits");
		goto fail;
	}
	if (vault_cache_new(&v->cache) != BC_OK) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (bc_store_subscribe(st, VAULT_NOTIFY_CHANNEL, on_objects_change, v, err) != BC_OK) {
		/* without other replicas' notifications the cache could serve their old versions */
		bc_log_warn("vault: no change notifications (%s); objects are read from the store each time", err->msg);
		bc_error_clear(err);
		vault_cache_free(v->cache);
		v->cache = NULL;
	}
	/* The first vault of a manager purges vaults' contents and sweeps expired deleted vaults
	 * (a second one on the same manager, as in tests, only serves requests). */
	v->hooks_set = mgr_vault_hooks_set(m, &(struct mgr_vault_hooks){.purge_txn = purge_hook,
									.purged = purged_hook, .ctx = v}) == BC_OK;
	if (v->hooks_set)
		vault_audit_sweep_vaults(v->audit, m);
	*out = v;
	return BC_OK;
fail:
	vault_free(v);
	return rc;
}

static struct vault_priv *priv(struct vault *v)
{
	return (struct vault_priv *)(v + 1);
}

static void mounts_free(struct vault *v)
{
	free(priv(v)->mounts.m);
	priv(v)->mounts.m = NULL;
	priv(v)->mounts.n = 0;
}

void vault_free(struct vault *v)
{
	if (!v)
		return;
	if (v->hooks_set)
		mgr_vault_hooks_clear(v->mgr, v);
	bc_store_unsubscribe(v->st, v);
	vault_audit_free(v->audit); /* stops the sweep, which may purge vaults (and use the cache) */
	vault_cache_free(v->cache);
	vault_crypt_free(v->crypt);
	vault_throttle_release(v);
	mounts_free(v);
	free(v->suffix);
	free(v->dot_suffix);
	free(v->resource);
	free(v->public_port);
	free(v);
}

int vault_mount(struct vault *v, struct bc_http_server *srv)
{
	const struct {
		const struct vroute *r;
		size_t n;
	} tables[] = {{vault_secret_routes, vault_secret_nroutes}, {vault_key_routes, vault_key_nroutes}};
	size_t total = 0;
	for (size_t t = 0; t < 2; t++)
		total += tables[t].n;
	if (priv(v)->mounts.m)
		return BC_ERR_EXISTS;
	struct vmount *ms = calloc(2 * total, sizeof(*ms));
	if (!ms)
		return BC_ERR_NOMEM;
	priv(v)->mounts.m = ms;
	priv(v)->mounts.n = 2 * total;
	/* Each route is a mount of its own, so that its handler's ctx says which route it is. */
	size_t k = 0;
	for (int style = 0; style < 2; style++)
		for (size_t t = 0; t < 2; t++)
			for (size_t i = 0; i < tables[t].n; i++, k++) {
				const struct vroute *vr = &tables[t].r[i];
				struct vmount *vm = &ms[k];
				vm->v = v;
				vm->vr = vr;
				vm->path_style = style == 1;
				vm->rl_class = vault_throttle_class(vr);
				vm->r = (struct bc_route){.method = vr->method,
							  .pattern = vr->pattern,
							  .handler = vault_handle,
							  .early = vault_early,
							  .max_body = vr->max_body};
				int rc = bc_http_mount(srv, style == 0 ? v->dot_suffix : NULL,
						       style == 0 ? NULL : PATH_PREFIX, &vm->r, 1, vm);
				if (rc != BC_OK)
					return rc;
			}
	return BC_OK;
}
