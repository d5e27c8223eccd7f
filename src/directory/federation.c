/* Workload identity federation: a client assertion signed not by a certificate registered for
 * the principal but by an external OIDC issuer (a Kubernetes cluster, a CI system) that one of
 * the principal's federated identity credentials names.
 *
 * Order matters: the assertion's iss, sub and aud must match a credential of the principal
 * before anything is fetched, so only issuers an identity writer configured are ever contacted.
 * Then its dates, then the issuer's keys (OpenID discovery, then its JWKS, over HTTPS with
 * verified TLS, bounded in time and size, cached for BC_LIMIT_FED_CACHE_S), then the signature
 * (RS256 or ES256, key chosen by kid). As in Entra, the same external token may be presented
 * again while it lives (a projected Kubernetes token serves every scope and refresh until the
 * kubelet replaces it): its jti is not a one-time nonce here. Credentials are read from the
 * store on every request: a deleted credential stops working at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/httpc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

/* One issuer's keys as fetched. Immutable once made; shared by requests through refs. */
struct fed_keys {
	char issuer[BC_LIMIT_FIC_FIELD + 1];
	struct bc_jwks *jwks; /* owned */
	int64_t fetched;
	unsigned refs; /* the slot's and each request's, under the cache's mu */
};

struct dir_fed_cache {
	pthread_mutex_t mu;
	struct fed_keys *slot[BC_LIMIT_FED_ISSUERS];
};

int dir_fed_init(struct dir *d)
{
	struct dir_fed_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return BC_ERR_NOMEM;
	pthread_mutex_init(&c->mu, NULL);
	d->fed = c;
	return BC_OK;
}

static void keys_put(struct dir_fed_cache *c, struct fed_keys *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&c->mu);
	bool last = --k->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (last) {
		bc_jwks_free(k->jwks);
		free(k);
	}
}

void dir_fed_free(struct dir *d)
{
	if (!d->fed)
		return;
	for (size_t i = 0; i < BC_LIMIT_FED_ISSUERS; i++)
		keys_put(d->fed, d->fed->slot[i]);
	pthread_mutex_destroy(&d->fed->mu);
	free(d->fed);
	d->fed = NULL;
}

static void fail_set(struct dir_fed_fail *f, int status, const char *error, int code, const char *fmt, ...)
	BC_PRINTF(5, 6);
static void fail_set(struct dir_fed_fail *f, int status, const char *error, int code, const char *fmt, ...)
{
	va_list ap;
	f->status = status;
	f->error = error;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

/* ---- fetching an issuer's keys ---- */

static bool https_url(const char *u)
{
	return u && strncasecmp(u, "https://", 8) == 0 && u[8] && strlen(u) <= BC_LIMIT_FIC_FIELD + 64 &&
	       !strpbrk(u, " \t\r\n#");
}

/* GETs url (https only) into res->body: BC_OK for a 200, else a reason in err. */
static int fetch(struct dir *d, const char *url, struct bc_httpc_res *res, struct bc_error *err)
{
	static const char *const headers[] = {"Accept: application/json", NULL};
	if (!https_url(url))
		return bc_error_set(err, BC_ERR_INVALID, "'%.200s' is not an https URL", url);
	struct bc_httpc_req req = {.method = "GET",
				   .url = url,
				   .headers = headers,
				   .ca_file = d->cfg.federation_ca_file,
				   .timeout_ms = BC_LIMIT_FED_FETCH_MS,
				   .connect_timeout_ms = BC_LIMIT_FED_CONNECT_MS,
				   .max_response = BC_LIMIT_FED_DOC_BYTES};
	int rc = bc_httpc_do(&req, res, err);
	if (rc)
		return rc;
	if (res->status != 200)
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "GET %.200s answered %ld", url, res->status);
	return BC_OK;
}

/* Discovery document, then JWKS. The document must name iss exactly as its issuer. */
static int load_keys(struct dir *d, const char *iss, struct fed_keys **out, struct bc_error *err)
{
	char url[BC_LIMIT_FIC_FIELD + 64];
	struct bc_httpc_res res;
	json_t *doc = NULL;
	struct fed_keys *k = NULL;
	int rc;
	size_t n = strlen(iss);
	while (n > 0 && iss[n - 1] == '/')
		n--;
	snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)n, iss);
	bc_httpc_res_init(&res);
	if ((rc = fetch(d, url, &res, err)))
		goto done;
	/* untrusted bytes: the bounded parser (depth pre-scan, duplicates refused) that fuzz_json covers */
	struct bc_error perr = {0};
	if (bc_json_parse(res.body.data ? (const char *)res.body.data : "", res.body.len, 0, &doc, &perr) != BC_OK)
		doc = NULL;
	const char *doc_iss = bc_json_str(doc, "issuer"), *jwks_uri = bc_json_str(doc, "jwks_uri");
	if (!doc_iss || strcmp(doc_iss, iss) != 0) {
		rc = bc_error_set(err, BC_ERR_INVALID, "the OpenID configuration at %.200s does not name issuer '%.200s'",
				  url, iss);
		goto done;
	}
	if (!https_url(jwks_uri)) {
		rc = bc_error_set(err, BC_ERR_INVALID, "the OpenID configuration of '%.200s' has no https jwks_uri", iss);
		goto done;
	}
	bc_httpc_res_release(&res);
	bc_httpc_res_init(&res);
	if ((rc = fetch(d, jwks_uri, &res, err)))
		goto done;
	if (!(k = calloc(1, sizeof(*k)))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = bc_jwks_parse(&k->jwks, res.body.data ? (const char *)res.body.data : "", res.body.len, err)))
		goto done;
	snprintf(k->issuer, sizeof(k->issuer), "%s", iss);
	k->fetched = bc_now();
	k->refs = 1;
	*out = k;
	k = NULL;
done:
	if (k) {
		bc_jwks_free(k->jwks);
		free(k);
	}
	json_decref(doc);
	bc_httpc_res_release(&res);
	return rc;
}

/* The issuer's keys, from the cache while they are younger than BC_LIMIT_FED_CACHE_S; an unknown
 * kid fetches them again, at most every BC_LIMIT_FED_REFETCH_S. */
static struct fed_keys *keys_get(struct dir *d, const char *iss, const char *kid, struct bc_error *err)
{
	struct dir_fed_cache *c = d->fed;
	struct fed_keys *k = NULL, *fresh = NULL;
	int64_t now = bc_now();
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < BC_LIMIT_FED_ISSUERS; i++)
		if (c->slot[i] && strcmp(c->slot[i]->issuer, iss) == 0) {
			k = c->slot[i];
			break;
		}
	if (k && (now - k->fetched >= BC_LIMIT_FED_CACHE_S || now < k->fetched ||
		  (kid && !bc_jwks_find(k->jwks, kid) && now - k->fetched >= BC_LIMIT_FED_REFETCH_S)))
		k = NULL; /* fetch again */
	if (k)
		k->refs++;
	pthread_mutex_unlock(&c->mu);
	if (k)
		return k;
	if (load_keys(d, iss, &fresh, err) != BC_OK)
		return NULL;
	pthread_mutex_lock(&c->mu);
	size_t at = 0;
	for (size_t i = 0; i < BC_LIMIT_FED_ISSUERS; i++) {
		if (c->slot[i] && strcmp(c->slot[i]->issuer, iss) == 0) {
			at = i;
			break;
		}
		if (!c->slot[i] || (c->slot[at] && c->slot[i]->fetched < c->slot[at]->fetched))
			at = i;
	}
	struct fed_keys *old = c->slot[at];
	c->slot[at] = fresh;
	fresh->refs++; /* the slot's and ours */
	pthread_mutex_unlock(&c->mu);
	keys_put(c, old);
	return fresh;
}

/* ---- matching ---- */

struct match {
	const json_t *aud; /* string or array of strings */
	bool matched;
	char name[BC_LIMIT_FIC_NAME + 1];
};

static bool aud_has(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v)
	{
		if (i >= 16)
			break;
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

static int match_row(void *vctx, const struct bc_row *row)
{
	struct match *m = vctx;
	const char *aud = bc_row_text(row, 1);
	if (aud && aud_has(m->aud, aud)) {
		m->matched = true;
		snprintf(m->name, sizeof(m->name), "%s", bc_row_text(row, 0) ? bc_row_text(row, 0) : "");
		return 1;
	}
	return 0;
}

static void aud_text(const json_t *aud, char *out, size_t n)
{
	if (json_is_string(aud)) {
		snprintf(out, n, "%.200s", json_string_value(aud));
		return;
	}
	char *s = aud ? json_dumps(aud, JSON_COMPACT) : NULL;
	snprintf(out, n, "%.200s", s ? s : "");
	free(s);
}

/* ---- the whole check ---- */

static bool dates_ok(const struct bc_jwt *jwt, struct dir_fed_fail *fail)
{
	int64_t now = bc_now(), exp = bc_json_int(jwt->claims, "exp", 0), nbf = bc_json_int(jwt->claims, "nbf", 0),
		iat = bc_json_int(jwt->claims, "iat", 0);
	if (!exp) {
		fail_set(fail, 401, "invalid_client", 700024, "Client assertion contains no 'exp' claim.");
		return false;
	}
	if (exp <= now - BC_LIMIT_CLOCK_SKEW_S / 5) {
		fail_set(fail, 401, "invalid_client", 700024,
			 "Client assertion is not within its valid time range. Current time: %lld, expiry time of "
			 "assertion %lld.",
			 (long long)now, (long long)exp);
		return false;
	}
	if ((nbf && nbf > now + BC_LIMIT_CLOCK_SKEW_S) || (iat && iat > now + BC_LIMIT_CLOCK_SKEW_S)) {
		fail_set(fail, 401, "invalid_client", 700024,
			 "Client assertion is not within its valid time range. Current time: %lld, assertion valid from "
			 "%lld.",
			 (long long)now, (long long)(nbf ? nbf : iat));
		return false;
	}
	int64_t from = iat ? iat : nbf ? nbf : now;
	if (exp - from > BC_LIMIT_FED_LIFETIME_S) {
		fail_set(fail, 401, "invalid_client", 700024,
			 "Client assertion lifetime is too long: at most %d seconds from its issue.",
			 BC_LIMIT_FED_LIFETIME_S);
		return false;
	}
	return true;
}

bool dir_fed_authenticate(struct dir *d, const struct bc_jwt *jwt, const struct dir_principal *p,
			  const char *request_id, struct dir_fed_fail *fail)
{
	struct bc_error err = {0};
	struct fed_keys *k = NULL;
	bool ok = false;
	const char *iss = bc_json_str(jwt->claims, "iss"), *sub = bc_json_str(jwt->claims, "sub");
	const char *jti = bc_json_str(jwt->claims, "jti");
	const json_t *aud = json_object_get(jwt->claims, "aud");
	char audt[256];
	aud_text(aud, audt, sizeof(audt));
	struct match m = {.aud = aud};
	if (iss && sub && strlen(iss) <= BC_LIMIT_FIC_FIELD && strlen(sub) <= BC_LIMIT_FIC_FIELD &&
	    (json_is_string(aud) || json_is_array(aud))) {
		struct bc_param prm[] = {BC_PTEXT(p->object_id), BC_PTEXT(iss), BC_PTEXT(sub)};
		if (bc_store_exec(d->st, NULL,
				  "SELECT name, audience FROM dir_federated WHERE object_id = ? AND issuer = ? AND subject = ?",
				  prm, 3, match_row, &m, NULL, &err)) {
			bc_log(BC_LOG_ERROR, request_id, "token: %s", err.msg);
			fail_set(fail, 500, "temporarily_unavailable", 90033,
				 "A transient error has occurred. Please try again.");
			return false;
		}
	}
	if (!m.matched) {
		fail_set(fail, 400, "invalid_request", 70021,
			 "No matching federated identity record found for presented assertion. Assertion Issuer: "
			 "'%.200s'. Assertion Subject: '%.200s'. Assertion Audience: '%s'.",
			 iss ? iss : "", sub ? sub : "", audt);
		return false;
	}
	if (!dates_ok(jwt, fail))
		return false;
	if (!jwt->alg || (strcmp(jwt->alg, "RS256") != 0 && strcmp(jwt->alg, "ES256") != 0)) {
		fail_set(fail, 401, "invalid_client", 700027,
			 "Client assertion failed signature validation. The algorithm '%.16s' is not allowed.",
			 jwt->alg ? jwt->alg : "");
		return false;
	}
	if (jti && (!*jti || strlen(jti) > 256)) {
		fail_set(fail, 401, "invalid_client", 700023, "Client assertion has an invalid 'jti' claim.");
		return false;
	}
	if (!(k = keys_get(d, iss, jwt->kid, &err))) {
		bc_log(BC_LOG_WARN, request_id, "token: federated credential '%s': issuer '%s': %s", m.name, iss, err.msg);
		fail_set(fail, 401, "invalid_client", 50166,
			 "Request to External OIDC endpoint failed. The OpenID configuration or keys of issuer "
			 "'%.200s' could not be fetched.",
			 iss);
		return false;
	}
	const struct bc_jwk *key = jwt->kid ? bc_jwks_find(k->jwks, jwt->kid)
			     : bc_jwks_count(k->jwks) == 1 ? bc_jwks_get(k->jwks, 0) : NULL;
	if (!key) {
		fail_set(fail, 401, "invalid_client", 700027,
			 "Client assertion failed signature validation. [Reason - The key was not found.] Issuer "
			 "'%.200s' publishes no key '%.64s'.",
			 iss, jwt->kid ? jwt->kid : "");
		goto done;
	}
	if (bc_jwt_verify(jwt, key, jwt->alg, &err) != BC_OK) {
		fail_set(fail, 401, "invalid_client", 700027,
			 "Client assertion failed signature validation. [Reason - %.200s.]", err.msg);
		goto done;
	}
	bc_log(BC_LOG_DEBUG, request_id, "token: federated credential '%s' of %s accepted", m.name, p->app_id);
	ok = true;
done:
	keys_put(d->fed, k);
	return ok;
}
