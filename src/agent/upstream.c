/* The agent's side of the server protocol (docs/agent-protocol.md): enrolment, the host's
 * management token, JSON calls, identity certificates and identity tokens. Every credential the
 * agent presents is a client assertion signed by a key that never left this host. */
#include "agent/agentint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/httpc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/util.h"

#define ENROLL_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MS 30000
#define TOKEN_TIMEOUT_MS 15000

int agent_assertion(const struct agent_cred *c, const char *client_id, const char *aud, struct bc_buf *out,
		    struct bc_error *err)
{
	char jti[37];
	int64_t now = bc_now();
	if (bc_uuid4(jti) != BC_OK)
		return bc_error_set(err, BC_ERR_CRYPTO, "no randomness for a jti");
	json_t *hdr = json_pack("{s:s, s:s}", "typ", "JWT", "x5t#S256", c->x5t256);
	json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", client_id, "sub",
				   client_id, "jti", jti, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
				   (json_int_t)(now + AGENT_ASSERTION_LIFETIME_S));
	char *payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
	int rc;
	if (!hdr || !payload)
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory building an assertion");
	else
		rc = bc_jws_sign(c->key, NULL, hdr, payload, strlen(payload), out, err);
	free(payload);
	json_decref(claims);
	json_decref(hdr);
	return rc;
}

/* POSTs a form and parses the JSON answer. */
static int post_form(struct agent *a, const char *url, const char *form, long timeout_ms, long *status,
		     json_t **out, struct bc_error *err)
{
	static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
					      "Accept: application/json", NULL};
	struct bc_httpc_req req = {.method = "POST", .url = url, .headers = headers, .body = form,
				   .body_len = strlen(form), .ca_file = a->ca_path[0] ? a->ca_path : NULL,
				   .timeout_ms = timeout_ms};
	struct bc_httpc_res res;
	bc_httpc_res_init(&res);
	*out = NULL;
	int rc = bc_httpc_do(&req, &res, err);
	if (rc == BC_OK) {
		*status = res.status;
		if (res.body.len && bc_json_parse(res.body.data, res.body.len, 0, out, NULL) != BC_OK)
			*out = NULL;
	}
	bc_buf_wipe(&res.body);
	bc_httpc_res_release(&res);
	return rc;
}

/* Builds client_credentials + client_assertion form fields. */
static int assertion_form(const struct agent_cred *c, const char *client_id, const char *aud, const char *first,
			  struct bc_buf *form, struct bc_error *err)
{
	struct bc_buf jwt = {0};
	int rc = agent_assertion(c, client_id, aud, &jwt, err);
	if (rc != BC_OK)
		return rc;
	if (bc_buf_appends(form, first) || bc_buf_appends(form, "&grant_type=client_credentials&client_id=") ||
	    bc_httpc_escape(client_id, form) ||
	    bc_buf_appends(form, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
				 "&client_assertion=") ||
	    bc_buf_append(form, jwt.data, jwt.len))
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	bc_buf_wipe(&jwt);
	return rc;
}

static int token_error(long status, const json_t *body, struct bc_error *err)
{
	const char *e = body ? bc_json_str(body, "error") : NULL;
	const char *d = body ? bc_json_str(body, "error_description") : NULL;
	int st = status == 400 ? BC_ERR_INVALID : status == 401 ? BC_ERR_UNAUTHENTICATED
			   : status >= 500 ? BC_ERR_UNAVAILABLE : BC_ERR_FORBIDDEN;
	return bc_error_set(err, st, "token endpoint answered %ld %s: %.160s", status, e ? e : "",
			    d ? d : "");
}

/* An integer member that may arrive as a number or a string of digits (Entra's v1 style). */
static int64_t int_member(const json_t *o, const char *key, int64_t dflt)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v)) {
		char *end;
		long long x = strtoll(json_string_value(v), &end, 10);
		if (end != json_string_value(v) && !*end)
			return x;
	}
	return dflt;
}

int agent_parse_token_response(const json_t *body, int64_t now, struct imds_token *out, struct bc_error *err)
{
	const char *tok = bc_json_str(body, "access_token");
	if (!tok || !*tok || strlen(tok) > BC_LIMIT_JWT_BYTES)
		return bc_error_set(err, BC_ERR_INVALID, "token response without an access_token");
	int64_t exp = int_member(body, "expires_on", 0);
	int64_t in = int_member(body, "expires_in", -1);
	if (exp <= 0 && in > 0)
		exp = now + in;
	if (exp <= now)
		return bc_error_set(err, BC_ERR_INVALID, "token response with no or a past expiry");
	memset(out, 0, sizeof(*out));
	if (!(out->access_token = strdup(tok)))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	out->expires_on = exp;
	out->not_before = int_member(body, "not_before", now);
	out->ext_expires_in = int_member(body, "ext_expires_in", 0);
	return BC_OK;
}

/* ---- failover between servers ---- */

int agent_servers_set(struct agent *a, const char *list, struct bc_error *err)
{
	size_t n = 0;
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && *p == ' ') {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '/'))
			len--;
		if (len) {
			if (n == AGENT_MAX_SERVERS)
				return bc_error_set(err, BC_ERR_LIMIT, "at most %d server URLs", AGENT_MAX_SERVERS);
			if (len >= AGENT_SERVER_URL_MAX)
				return bc_error_set(err, BC_ERR_LIMIT, "server URL too long");
			memcpy(a->servers[n], p, len);
			a->servers[n++][len] = '\0';
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (!n)
		return bc_error_set(err, BC_ERR_INVALID, "no server URL");
	a->nservers = n;
	a->active = 0;
	a->retry_preferred_at = 0;
	return BC_OK;
}

/* Seconds between tries of the preferred server while another one is in use. */
static int64_t failback_s(const struct agent *a)
{
	int s = a->cfg.failback_s;
	return s > 0 && s <= AGENT_FAILBACK_MAX_S ? s : AGENT_FAILBACK_S;
}

/* The server to try first (a->mu held): the one that answered last, or the preferred one once
 * its retry time has come (then not again before the failback interval). */
static size_t server_first(struct agent *a)
{
	int64_t now = bc_now();
	if (a->active && now >= a->retry_preferred_at) {
		a->retry_preferred_at = now + failback_s(a);
		return 0;
	}
	return a->active;
}

/* One attempt of a request at server base. Sets *sent once the request goes out (a failure
 * before that is local and no reason to try another server). */
typedef int (*attempt_fn)(struct agent *a, const char *base, void *arg, long *status, bool *sent,
			  struct bc_error *err);

/* Runs attempt on the servers in turn, from server_first, until one answers: a connection
 * failure or a 5xx moves on to the next. Called without a->mu. */
static int with_failover(struct agent *a, attempt_fn attempt, void *arg, long *status, struct bc_error *err)
{
	int rc = bc_error_set(err, BC_ERR_INVALID, "no server URL");
	pthread_mutex_lock(&a->mu);
	size_t n = a->nservers, start = server_first(a);
	pthread_mutex_unlock(&a->mu);
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		bool sent = false;
		bc_error_clear(err);
		*status = 0;
		rc = attempt(a, a->servers[i], arg, status, &sent, err);
		if (sent && (rc != BC_OK || *status >= 500)) {
			if (n > 1)
				bc_log_warn("agent: server %s: %s%s", a->servers[i], rc != BC_OK ? err->msg : "answered 5xx",
				    k + 1 < n ? "; trying the next one" : "");
			continue;
		}
		if (sent) {
			pthread_mutex_lock(&a->mu);
			if (a->active != i) {
				bc_log_info("agent: using server %s", a->servers[i]);
				bc_metrics_count("agent_server_switches", 1);
				if (i)
					a->retry_preferred_at = bc_now() + failback_s(a);
				a->active = i;
			}
			pthread_mutex_unlock(&a->mu);
		}
		break;
	}
	return rc;
}

/* A client-credentials token request signed by the host's key (object_id NULL) or an identity's. */
struct form_attempt {
	const char *object_id;
	const char *first;  /* leading form fields: "scope=..." or "resource=..." */
	bool v2;            /* the v2.0 endpoint */
	json_t *body;       /* owned: the answer */
};

static struct agent_cred *cred_find(struct agent *a, const char *object_id);

static int form_attempt(struct agent *a, const char *base, void *arg, long *status, bool *sent, struct bc_error *err)
{
	struct form_attempt *x = arg;
	char url[1024];
	struct bc_buf form = {0};
	int rc;
	json_decref(x->body);
	x->body = NULL;
	pthread_mutex_lock(&a->mu);
	const struct agent_cred *c = x->object_id ? cred_find(a, x->object_id) : &a->host.cred;
	if (!c || !c->key || !c->cert_pem || (x->object_id && !c->client_id[0])) {
		pthread_mutex_unlock(&a->mu);
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "no credential for identity %s yet",
				    x->object_id ? x->object_id : "of the host");
	}
	const char *tenant = x->object_id && c->tenant_id[0] ? c->tenant_id : a->host.tenant_id;
	snprintf(url, sizeof(url), "%s/%s/oauth2/%s", base, tenant, x->v2 ? "v2.0/token" : "token");
	rc = assertion_form(c, x->object_id ? c->client_id : a->host.client_id, url, x->first, &form, err);
	pthread_mutex_unlock(&a->mu);
	if (rc == BC_OK) {
		*sent = true;
		if (x->object_id)
			bc_metrics_count("agent_upstream_token_requests", 1);
		rc = post_form(a, url, bc_buf_cstr(&form), TOKEN_TIMEOUT_MS, status, &x->body, err);
	}
	bc_buf_wipe(&form);
	return rc;
}

/* The host's management token, from cache or the v2 endpoint. Called with a->mu held; drops it
 * around the request. *token is a copy. */
static int host_token(struct agent *a, char **token, struct bc_error *err)
{
	int64_t now = bc_now();
	if (a->host_token && now < a->host_token_exp - TC_REFRESH_MARGIN_S) {
		*token = strdup(a->host_token);
		return *token ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	struct bc_buf first = {0};
	char scope[BC_LIMIT_RESOURCE + 16];
	snprintf(scope, sizeof(scope), "%s.default", a->host.management_resource);
	if (bc_buf_appends(&first, "scope=") || bc_httpc_escape(scope, &first)) {
		bc_buf_release(&first);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	struct form_attempt x = {.first = bc_buf_cstr(&first), .v2 = true};
	long status = 0;
	pthread_mutex_unlock(&a->mu);
	int rc = with_failover(a, form_attempt, &x, &status, err);
	pthread_mutex_lock(&a->mu);
	bc_buf_release(&first);
	json_t *body = x.body;
	struct imds_token t = {0};
	if (rc == BC_OK && status != 200)
		rc = token_error(status, body, err);
	if (rc == BC_OK)
		rc = agent_parse_token_response(body, bc_now(), &t, err);
	json_decref(body);
	if (rc != BC_OK)
		return bc_error_wrap(err, "host token");
	free(a->host_token);
	a->host_token = t.access_token;
	a->host_token_exp = t.expires_on;
	*token = strdup(a->host_token);
	return *token ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
}

struct call_attempt {
	const char *method, *path, *const *headers, *text;
	long timeout_ms;
	json_t **out;
};

static int call_attempt(struct agent *a, const char *base, void *arg, long *status, bool *sent, struct bc_error *err)
{
	struct call_attempt *x = arg;
	char url[2048];
	json_decref(*x->out);
	*x->out = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, x->path) >= sizeof(url))
		return bc_error_set(err, BC_ERR_LIMIT, "request url too long");
	struct bc_httpc_req req = {.method = x->method, .url = url, .headers = x->headers, .body = x->text,
				   .body_len = x->text ? strlen(x->text) : 0,
				   .ca_file = a->ca_path[0] ? a->ca_path : NULL,
				   .timeout_ms = x->timeout_ms ? x->timeout_ms : CALL_TIMEOUT_MS};
	struct bc_httpc_res res;
	bc_httpc_res_init(&res);
	*sent = true;
	int rc = bc_httpc_do(&req, &res, err);
	if (rc == BC_OK) {
		*status = res.status;
		if (res.status == 401) { /* the token may have been revoked or rotated: fetch anew next time */
			pthread_mutex_lock(&a->mu);
			free(a->host_token);
			a->host_token = NULL;
			pthread_mutex_unlock(&a->mu);
		}
		if (res.body.len && bc_json_parse(res.body.data, res.body.len, 0, x->out, NULL) != BC_OK)
			*x->out = NULL;
	}
	bc_httpc_res_release(&res);
	return rc;
}

int agent_call(struct agent *a, const char *method, const char *path, const json_t *body, long timeout_ms,
	       long *status, json_t **out, struct bc_error *err)
{
	char auth[BC_LIMIT_JWT_BYTES + 32];
	char *token = NULL;
	char *text = NULL;
	const char *headers[4] = {"Content-Type: application/json", "Accept: application/json", NULL, NULL};
	int rc;
	*out = NULL;
	pthread_mutex_lock(&a->mu);
	rc = host_token(a, &token, err);
	pthread_mutex_unlock(&a->mu);
	if (rc != BC_OK)
		return rc;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	headers[2] = auth;
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	struct call_attempt x = {.method = method, .path = path, .headers = headers, .text = text,
				 .timeout_ms = timeout_ms, .out = out};
	rc = with_failover(a, call_attempt, &x, status, err);
done:
	bc_wipe(auth, sizeof(auth));
	if (token) {
		bc_wipe(token, strlen(token));
		free(token);
	}
	free(text);
	return rc;
}

static int server_error(const char *what, long status, const json_t *body, struct bc_error *err)
{
	const json_t *e = body ? json_object_get(body, "error") : NULL;
	const char *code = e ? bc_json_str(e, "code") : NULL;
	const char *msg = e ? bc_json_str(e, "message") : NULL;
	int st = status == 401 ? BC_ERR_UNAUTHENTICATED : status == 403 ? BC_ERR_FORBIDDEN
		 : status == 404 ? BC_ERR_NOT_FOUND : status >= 500 ? BC_ERR_UNAVAILABLE : BC_ERR_INVALID;
	return bc_error_set(err, st, "%s: server answered %ld %s: %.160s", what, status, code ? code : "",
			    msg ? msg : "");
}

int agent_enroll(struct agent *a, struct bc_error *err)
{
	char hostname[256] = "";
	struct bc_buf csr = {0};
	json_t *req = NULL, *resp = NULL;
	char *text = NULL;
	int rc;
	if (!a->cfg.join_token || !a->cfg.server_url)
		return bc_error_set(err, BC_ERR_INVALID, "not enrolled yet: --server and --join-token are required");
	if (a->cfg.hostname)
		snprintf(hostname, sizeof(hostname), "%s", a->cfg.hostname);
	else
		gethostname(hostname, sizeof(hostname) - 1);
	if ((rc = agent_generate_key(a, &a->host.cred.key, err)) != BC_OK)
		goto fail;
	if ((rc = bc_csr_create(a->host.cred.key, hostname, &csr, err)) != BC_OK)
		goto fail;
	req = json_pack("{s:s, s:s, s:s}", "joinToken", a->cfg.join_token, "csr", bc_buf_cstr(&csr), "hostname",
			hostname);
	if (!req || !(text = json_dumps(req, JSON_COMPACT))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto fail;
	}
	static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
	struct call_attempt x = {.method = "POST", .path = "/badge/agent/v1/enroll", .headers = headers, .text = text,
				 .timeout_ms = ENROLL_TIMEOUT_MS, .out = &resp};
	long status = 0;
	rc = with_failover(a, call_attempt, &x, &status, err);
	if (rc != BC_OK)
		goto fail;
	if (status != 200 || !resp) {
		rc = server_error("enrolment", status, resp, err);
		goto fail;
	}
	const char *cert = bc_json_str(resp, "certificate"), *ca = bc_json_str(resp, "caCertificate");
	const char *tenant = bc_json_str(resp, "tenantId"), *client = bc_json_str(resp, "clientId");
	if (!cert || !tenant || !client || !bc_json_str(resp, "hostId")) {
		rc = bc_error_set(err, BC_ERR_INVALID, "enrolment answer lacks certificate, tenantId, clientId or hostId");
		goto fail;
	}
	if ((rc = agent_cred_set_cert(&a->host.cred, cert, err)) != BC_OK)
		goto fail;
	struct agent_host *h = &a->host;
	snprintf(h->server_url, sizeof(h->server_url), "%s", a->cfg.server_url);
	snprintf(h->host_name, sizeof(h->host_name), "%s", bc_json_str(resp, "hostName") ? bc_json_str(resp, "hostName") : hostname);
	snprintf(h->host_id, sizeof(h->host_id), "%s", bc_json_str(resp, "hostId"));
	snprintf(h->tenant_id, sizeof(h->tenant_id), "%s", tenant);
	snprintf(h->client_id, sizeof(h->client_id), "%s", client);
	snprintf(h->object_id, sizeof(h->object_id), "%s", bc_json_str(resp, "objectId") ? bc_json_str(resp, "objectId") : "");
	/* optional extras a server may send; flags and defaults otherwise */
	const char *dom = bc_json_str(resp, "domain"), *mres = bc_json_str(resp, "managementResource");
	if (dom && !a->cfg.domain)
		snprintf(h->domain, sizeof(h->domain), "%s", dom);
	if (mres && !a->cfg.management_resource)
		snprintf(h->management_resource, sizeof(h->management_resource), "%s", mres);
	if (ca && strstr(ca, "-----BEGIN CERTIFICATE-----")) { /* else keep trusting --ca-file */
		char path[PATH_MAX];
		if (agent_state_path(a, "ca.pem", path, sizeof(path)) ||
		    (rc = bc_write_file_atomic(path, ca, strlen(ca), 0644, err)) != BC_OK)
			goto fail;
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", path);
	}
	if ((rc = agent_host_save(a, err)) != BC_OK)
		goto fail;
	bc_log_info("agent: enrolled as host %s (%s)", h->host_name, h->host_id);
fail:
	if (rc != BC_OK) {
		bc_jwk_free(a->host.cred.key);
		a->host.cred.key = NULL;
	}
	free(text);
	json_decref(req);
	json_decref(resp);
	bc_buf_release(&csr);
	return rc;
}

/* POSTs a CSR for a fresh key; fills cred with key and certificate. */
static int request_cert(struct agent *a, const char *path, const char *object_id, const char *cn,
			struct agent_cred *cred, struct bc_error *err)
{
	struct bc_jwk *key = NULL;
	struct bc_buf csr = {0};
	json_t *body = NULL, *resp = NULL;
	long status = 0;
	int rc = agent_generate_key(a, &key, err);
	if (rc == BC_OK)
		rc = bc_csr_create(key, cn, &csr, err);
	if (rc != BC_OK)
		goto done;
	body = object_id ? json_pack("{s:s, s:s}", "objectId", object_id, "csr", bc_buf_cstr(&csr))
			 : json_pack("{s:s}", "csr", bc_buf_cstr(&csr));
	if (!body) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = agent_call(a, "POST", path, body, 0, &status, &resp, err)) != BC_OK)
		goto done;
	const char *cert = resp ? bc_json_str(resp, "certificate") : NULL;
	if (status != 200 || !cert) {
		rc = server_error("certificate", status, resp, err);
		goto done;
	}
	struct agent_cred fresh = {0};
	if ((rc = agent_cred_set_cert(&fresh, cert, err)) != BC_OK)
		goto done;
	agent_cred_release(cred);
	cred->key = key;
	key = NULL;
	cred->cert_pem = fresh.cert_pem;
	memcpy(cred->x5t256, fresh.x5t256, sizeof(cred->x5t256));
	cred->not_before = fresh.not_before;
	cred->not_after = fresh.not_after;
	cred->issued_at = fresh.issued_at;
done:
	bc_jwk_free(key);
	bc_buf_release(&csr);
	json_decref(body);
	json_decref(resp);
	return rc;
}

int agent_identity_cert(struct agent *a, const char *object_id, struct agent_cred *out, struct bc_error *err)
{
	return request_cert(a, "/badge/agent/v1/certificates", object_id, object_id, out, err);
}

int agent_host_cert_renew(struct agent *a, struct bc_error *err)
{
	struct agent_cred fresh = {0};
	int rc = request_cert(a, "/badge/agent/v1/host/certificate", NULL, a->host.host_name, &fresh, err);
	if (rc != BC_OK)
		return rc;
	pthread_mutex_lock(&a->mu);
	struct agent_cred old = a->host.cred;
	a->host.cred.key = fresh.key;
	a->host.cred.cert_pem = fresh.cert_pem;
	memcpy(a->host.cred.x5t256, fresh.x5t256, sizeof(fresh.x5t256));
	a->host.cred.not_before = fresh.not_before;
	a->host.cred.not_after = fresh.not_after;
	a->host.cred.issued_at = fresh.issued_at;
	rc = agent_host_save(a, err);
	pthread_mutex_unlock(&a->mu);
	agent_cred_release(&old);
	return rc;
}

static struct agent_cred *cred_find(struct agent *a, const char *object_id)
{
	for (struct agent_cred *c = a->creds; c; c = c->next)
		if (!strcmp(c->object_id, object_id))
			return c;
	return NULL;
}

int agent_fetch_token(void *ctx, const char *object_id, const char *resource, struct imds_token *out,
		      struct bc_error *err)
{
	struct agent *a = ctx;
	struct bc_buf first = {0};
	if (bc_buf_appends(&first, "resource=") || bc_httpc_escape(resource, &first)) {
		bc_buf_release(&first);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	struct form_attempt x = {.object_id = object_id, .first = bc_buf_cstr(&first)};
	long status = 0;
	int rc = with_failover(a, form_attempt, &x, &status, err);
	bc_buf_release(&first);
	json_t *body = x.body;
	if (rc == BC_OK && status != 200)
		rc = token_error(status, body, err);
	if (rc == BC_OK)
		rc = agent_parse_token_response(body, bc_now(), out, err);
	json_decref(body);
	return rc;
}
