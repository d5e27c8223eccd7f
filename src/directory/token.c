/* The OAuth2 token endpoints (v1 /{tenant}/oauth2/token, v2 /{tenant}/oauth2/v2.0/token):
 * client_credentials with a client secret or an RFC 7523 client assertion, answered the way
 * Entra ID answers (field names, AADSTS codes, status codes). */
#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

int dir_jti_use(struct dir *d, const char *client_id, const char *jti, int64_t exp, struct bc_error *err);
int dir_secret_hash(const char *secret, const char *salt_b64, struct bc_buf *out);

struct token_req {
	struct dir *d;
	struct bc_http_req *req;
	struct bc_http_res *res;
	int version;
	const char *tenant;
	struct bc_http_kv form[BC_LIMIT_FORM_FIELDS];
	size_t nform;
	struct bc_buf storage;
	struct dir_principal p;
	const char *acr; /* appidacr: "1" secret, "2" certificate */
	char sub_client[37]; /* client id taken from the assertion when the form has none */
	const char *client_id; /* as asked for (audited when no principal was found) */
	const char *resource;
	int64_t t0;
};

/* Every token request is audited, issued or refused: who, for what, result, duration. */
static void audit(struct token_req *t)
{
	struct bc_audit_rec r;
	memset(&r, 0, sizeof(r));
	r.time_ms = bc_audit_now_ms();
	snprintf(r.scope, sizeof(r.scope), "%s", t->p.tenant_id[0] ? t->p.tenant_id : t->tenant ? t->tenant : "");
	snprintf(r.operation, sizeof(r.operation), "%s", t->version == 2 ? "TokenIssueV2" : "TokenIssue");
	snprintf(r.object, sizeof(r.object), "%s", t->resource ? t->resource : "");
	snprintf(r.oid, sizeof(r.oid), "%s", t->p.object_id);
	snprintf(r.appid, sizeof(r.appid), "%s",
		 t->p.app_id[0] ? t->p.app_id : t->client_id && bc_is_uuid(t->client_id) ? t->client_id : "");
	snprintf(r.xms_mirid, sizeof(r.xms_mirid), "%s", t->p.resource_id);
	snprintf(r.client_ip, sizeof(r.client_ip), "%s", t->req->client_ip ? t->req->client_ip : "");
	r.status = t->res->status;
	r.duration_ms = bc_now_ms() - t->t0;
	snprintf(r.request_id, sizeof(r.request_id), "%s", t->req->request_id ? t->req->request_id : "");
	bc_audit_enqueue(t->d->audit, &r);
}

/* Entra-shaped error: {error, error_description "AADSTSnnn: ...\r\nTrace ID...", error_codes,
 * timestamp, trace_id, correlation_id, error_uri}. */
static void oauth_error(struct token_req *t, int status, const char *error, int code, const char *fmt, ...)
	BC_PRINTF(5, 6);
static void oauth_error(struct token_req *t, int status, const char *error, int code, const char *fmt, ...)
{
	char msg[512], desc[800], ts[32], trace[37] = "00000000-0000-0000-0000-000000000000", base[DIR_URL_MAX],
							  uri[DIR_URL_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	time_t now = (time_t)bc_now();
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
	if (bc_uuid4(trace))
		snprintf(trace, sizeof(trace), "%s", "00000000-0000-0000-0000-000000000000");
	snprintf(desc, sizeof(desc), "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, msg,
		 trace, t->req->request_id, ts);
	dir_request_base(t->d, t->req, base, sizeof(base));
	snprintf(uri, sizeof(uri), "%s/error?code=%d", base, code);
	json_t *body = json_pack("{s:s, s:s, s:[i], s:s, s:s, s:s, s:s}", "error", error, "error_description", desc,
				 "error_codes", code, "timestamp", ts, "trace_id", trace, "correlation_id",
				 t->req->request_id, "error_uri", uri);
	bc_http_res_json(t->res, status, body);
	bc_log(BC_LOG_INFO, t->req->request_id, "token: %s AADSTS%d: %s", error, code, msg);
}

static const char *form_get(struct token_req *t, const char *key)
{
	for (size_t i = 0; i < t->nform; i++)
		if (strcmp(t->form[i].key, key) == 0)
			return t->form[i].value;
	return NULL;
}

static bool form_dup(struct token_req *t, const char **which)
{
	for (size_t i = 0; i < t->nform; i++)
		for (size_t j = i + 1; j < t->nform; j++)
			if (strcmp(t->form[i].key, t->form[j].key) == 0) {
				*which = t->form[i].key;
				return true;
			}
	return false;
}

static void missing(struct token_req *t, const char *param)
{
	oauth_error(t, 400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.",
		    param);
}

/* ---- resources ---- */

static size_t trim_slash(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && s[n - 1] == '/' ? n - 1 : n;
}

/* The registered form of res (compared without a trailing '/', case-insensitively), or NULL.
 * Tokens carry the registered form as aud, as Entra puts a resource's identifier URI there. */
static const char *in_list(const char *res, const char *const *list, size_t n)
{
	size_t rl = trim_slash(res);
	for (size_t i = 0; i < n; i++)
		if (trim_slash(list[i]) == rl && strncasecmp(list[i], res, rl) == 0)
			return list[i];
	return NULL;
}

/* ---- client authentication ---- */

struct secret_ctx {
	const char *secret;
	int64_t now;
	bool matched, expired;
};

static int secret_row(void *vctx, const struct bc_row *row)
{
	struct secret_ctx *c = vctx;
	const char *stored = bc_row_text(row, 0);
	if (!stored || strncmp(stored, "sha256$", 7) != 0)
		return 0;
	const char *salt = stored + 7, *dollar = strchr(salt, '$');
	if (!dollar || dollar - salt > 64)
		return 0;
	char salt_b64[65];
	memcpy(salt_b64, salt, (size_t)(dollar - salt));
	salt_b64[dollar - salt] = 0;
	struct bc_buf h = {0};
	if (dir_secret_hash(c->secret, salt_b64, &h) == BC_OK &&
	    bc_ct_equal(h.data, h.len, stored, strlen(stored))) {
		if (bc_row_int(row, 1) <= c->now)
			c->expired = true;
		else
			c->matched = true;
	}
	bc_buf_release(&h);
	return c->matched;
}

static bool auth_secret(struct token_req *t, const char *secret)
{
	if (strlen(secret) > BC_LIMIT_SECRET_BYTES) {
		oauth_error(t, 401, "invalid_client", 7000215, "Invalid client secret provided.");
		return false;
	}
	struct secret_ctx c = {.secret = secret, .now = bc_now()};
	struct bc_param p[] = {BC_PTEXT(t->p.object_id)};
	struct bc_error err;
	if (bc_store_exec(t->d->st, NULL,
			  "SELECT secret_hash, not_after FROM dir_credentials WHERE object_id = ? AND kind = 'secret'", p,
			  1, secret_row, &c, NULL, &err)) {
		bc_log(BC_LOG_ERROR, t->req->request_id, "token: %s", err.msg);
		oauth_error(t, 500, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
		return false;
	}
	if (c.matched) {
		t->acr = "1";
		return true;
	}
	if (c.expired)
		oauth_error(t, 401, "invalid_client", 7000222,
			    "The provided client secret keys for app '%s' are expired.", t->p.app_id);
	else
		oauth_error(t, 401, "invalid_client", 7000215,
			    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
			    "secret value, not the client secret ID, for a secret added to app '%s'.",
			    t->p.app_id);
	return false;
}

struct cert_ctx {
	const char *x5t, *x5t256, *kid;
	char *pem; /* owned */
	int64_t not_before, not_after;
};

static int cert_row(void *vctx, const struct bc_row *row)
{
	struct cert_ctx *c = vctx;
	const char *x5t = bc_row_text(row, 0), *x5t256 = bc_row_text(row, 1), *hex = bc_row_text(row, 2);
	bool match = (c->x5t256 && x5t256 && strcmp(c->x5t256, x5t256) == 0) ||
		     (!c->x5t256 && c->x5t && x5t && strcmp(c->x5t, x5t) == 0) ||
		     (!c->x5t256 && !c->x5t && c->kid &&
		      ((x5t256 && strcmp(c->kid, x5t256) == 0) || (x5t && strcmp(c->kid, x5t) == 0) ||
		       (hex && strcasecmp(c->kid, hex) == 0)));
	if (!match)
		return 0;
	c->pem = strdup(bc_row_text(row, 3) ? bc_row_text(row, 3) : "");
	c->not_before = bc_row_int(row, 4);
	c->not_after = bc_row_int(row, 5);
	return 1;
}

/* Parsed client certificates. Decoding a PEM certificate costs more than checking the
 * assertion's signature, so keys are kept by the SHA-256 of their PEM text (the same bytes make
 * the same key; validity dates come from the credential row on every request). Direct-mapped;
 * a collision evicts. An entry lives while its slot or a request holds it. */
#define CERT_CACHE_SLOTS 256

struct cert_key {
	uint8_t hash[32];
	struct bc_jwk *key; /* owned; immutable, shared by threads */
	unsigned refs;      /* the slot's and each request's, under cert_cache_mu */
};

static pthread_mutex_t cert_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cert_key *cert_cache[CERT_CACHE_SLOTS];

static void cert_key_put(struct cert_key *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&cert_cache_mu);
	bool last = --e->refs == 0;
	pthread_mutex_unlock(&cert_cache_mu);
	if (last) {
		bc_jwk_free(e->key);
		free(e);
	}
}

static struct cert_key *cert_key_get(const char *pem, struct bc_error *err)
{
	uint8_t h[32];
	unsigned int hl = 0;
	size_t len = strlen(pem);
	if (EVP_Digest(pem, len, h, &hl, EVP_sha256(), NULL) != 1) {
		bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash a certificate");
		return NULL;
	}
	size_t slot = ((size_t)h[0] | (size_t)h[1] << 8) % CERT_CACHE_SLOTS;
	pthread_mutex_lock(&cert_cache_mu);
	struct cert_key *e = cert_cache[slot];
	if (e && memcmp(e->hash, h, sizeof(h)) == 0) {
		e->refs++;
		pthread_mutex_unlock(&cert_cache_mu);
		return e;
	}
	pthread_mutex_unlock(&cert_cache_mu);
	if (!(e = calloc(1, sizeof(*e)))) {
		bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (bc_jwk_from_pem(&e->key, pem, len, err) != BC_OK) {
		free(e);
		return NULL;
	}
	memcpy(e->hash, h, sizeof(h));
	e->refs = 2;
	pthread_mutex_lock(&cert_cache_mu);
	struct cert_key *old = cert_cache[slot];
	cert_cache[slot] = e;
	pthread_mutex_unlock(&cert_cache_mu);
	cert_key_put(old);
	return e;
}

/* Accepts the assertion's audience when it names this tenant's token endpoint (v1 or v2) on
 * this authority, reached by its configured name or by the Host the client used. */
static bool assertion_aud_ok(struct token_req *t, const char *aud)
{
	char base[DIR_URL_MAX], want[DIR_URL_MAX + 128];
	const char *bases[2] = {t->d->login_url, base};
	dir_request_base(t->d, t->req, base, sizeof(base));
	const char *paths[] = {"/oauth2/token", "/oauth2/v2.0/token", "/"};
	for (int b = 0; b < 2; b++)
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			snprintf(want, sizeof(want), "%s/%s%s", bases[b], t->tenant, paths[i]);
			if (strcasecmp(aud, want) == 0)
				return true;
			if (i == 2) { /* the issuer form without the trailing slash, and v2.0 */
				want[strlen(want) - 1] = 0;
				if (strcasecmp(aud, want) == 0)
					return true;
			}
		}
	return false;
}

static bool auth_assertion(struct token_req *t, const char *assertion, const char *client_id)
{
	struct bc_jwt jwt;
	struct bc_error err;
	struct cert_ctx cc = {0};
	struct cert_key *key = NULL;
	bool ok = false;
	bc_jwt_init(&jwt);
	if (bc_jwt_parse(&jwt, assertion, strlen(assertion), &err) != BC_OK || !jwt.claims) {
		oauth_error(t, 400, "invalid_request", 50027, "JWT token is invalid or malformed (%s).",
			    jwt.header ? "payload is not a JSON object" : err.msg);
		goto done;
	}
	const char *alg = jwt.alg;
	if (!alg || strcmp(alg, "none") == 0 || strncasecmp(alg, "HS", 2) == 0 || !bc_alg_md(alg)) {
		oauth_error(t, 401, "invalid_client", 700027,
			    "Client assertion failed signature validation. The algorithm '%.16s' is not allowed.",
			    alg ? alg : "");
		goto done;
	}
	const char *iss = bc_json_str(jwt.claims, "iss"), *sub = bc_json_str(jwt.claims, "sub");
	const char *aud = bc_json_str(jwt.claims, "aud"), *jti = bc_json_str(jwt.claims, "jti");
	if (iss && strcmp(iss, client_id) != 0 && (!strncasecmp(iss, "https://", 8) || !strncasecmp(iss, "http://", 7))) {
		/* signed by an external OIDC issuer: workload identity federation (federation.c) */
		struct dir_fed_fail f;
		if (!dir_fed_authenticate(t->d, &jwt, &t->p, t->req->request_id, &f)) {
			oauth_error(t, f.status, f.error, f.code, "%s", f.msg);
			goto done;
		}
		t->acr = "2";
		ok = true;
		goto done;
	}
	if (!iss || !sub || strcmp(iss, client_id) != 0 || strcmp(sub, client_id) != 0) {
		oauth_error(t, 401, "invalid_client", 700021,
			    "Client assertion application identifier doesn't match 'client_id' parameter.");
		goto done;
	}
	if (!aud || !assertion_aud_ok(t, aud)) {
		oauth_error(t, 401, "invalid_client", 700016 /* Entra: audience claim does not match the realm */,
			    "Client assertion audience claim does not match the token endpoint of tenant '%s'.",
			    t->tenant);
		goto done;
	}
	int64_t now = bc_now(), exp = bc_json_int(jwt.claims, "exp", 0), nbf = bc_json_int(jwt.claims, "nbf", 0),
		iat = bc_json_int(jwt.claims, "iat", 0);
	if (!exp || exp <= now - BC_LIMIT_CLOCK_SKEW_S / 5 || (nbf && nbf > now + BC_LIMIT_CLOCK_SKEW_S) ||
	    (iat && iat > now + BC_LIMIT_CLOCK_SKEW_S)) {
		oauth_error(t, 401, "invalid_client", 700024, "Client assertion is not within its valid time range.");
		goto done;
	}
	if (exp > now + BC_LIMIT_ASSERTION_LIFETIME_S + BC_LIMIT_CLOCK_SKEW_S) {
		oauth_error(t, 401, "invalid_client", 700024,
			    "Client assertion lifetime is too long: exp may be at most %d seconds away.",
			    BC_LIMIT_ASSERTION_LIFETIME_S);
		goto done;
	}
	if (!jti || !*jti || strlen(jti) > 256) {
		oauth_error(t, 401, "invalid_client", 700023, "Client assertion must contain a 'jti' claim.");
		goto done;
	}
	/* the key: only by thumbprint, among the principal's own certificates */
	cc.x5t256 = bc_json_str(jwt.header, "x5t#S256");
	cc.x5t = bc_json_str(jwt.header, "x5t");
	cc.kid = jwt.kid;
	if (!cc.x5t256 && !cc.x5t && !cc.kid) {
		oauth_error(t, 401, "invalid_client", 700027,
			    "Client assertion failed signature validation. The header names no key (x5t, x5t#S256 or kid).");
		goto done;
	}
	struct bc_param p[] = {BC_PTEXT(t->p.object_id)};
	if (bc_store_exec(t->d->st, NULL,
			  "SELECT x5t, x5t256, thumbprint, cert_pem, not_before, not_after FROM dir_credentials"
			  " WHERE object_id = ? AND kind = 'cert'",
			  p, 1, cert_row, &cc, NULL, &err)) {
		bc_log(BC_LOG_ERROR, t->req->request_id, "token: %s", err.msg);
		oauth_error(t, 500, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
		goto done;
	}
	if (!cc.pem) {
		oauth_error(t, 401, "invalid_client", 700027,
			    "Client assertion failed signature validation. [Reason - The key was not found.] The "
			    "certificate is not registered for application '%s'.",
			    t->p.app_id);
		goto done;
	}
	if (cc.not_after <= now || cc.not_before > now + BC_LIMIT_CLOCK_SKEW_S) {
		oauth_error(t, 401, "invalid_client", 700027,
			    "Client assertion failed signature validation. [Reason - The certificate is expired or not yet valid.]");
		goto done;
	}
	if (!(key = cert_key_get(cc.pem, &err)) || bc_jwt_verify(&jwt, key->key, NULL, &err) != BC_OK) {
		oauth_error(t, 401, "invalid_client", 700027,
			    "Client assertion failed signature validation. [Reason - %s.]", err.msg);
		goto done;
	}
	/* replay: only after the signature holds, so forged assertions cannot fill the table */
	/* When was it made? iat, else nbf (MSAL for Node sends no iat), else as early as its exp allows. */
	int64_t issued = iat ? iat : nbf ? nbf : exp - BC_LIMIT_ASSERTION_LIFETIME_S;
	if (issued < t->d->started && strcmp(bc_store_backend(t->d->st), "postgres") != 0) {
		oauth_error(t, 401, "invalid_client", 700024,
			    "Client assertion was issued before the authority started; sign a new one.");
		goto done;
	}
	int rc = dir_jti_use(t->d, client_id, jti, exp, &err);
	if (rc == BC_ERR_EXISTS) {
		oauth_error(t, 401, "invalid_client", 700025,
			    "Client assertion has already been used (its jti was seen before).");
		goto done;
	} else if (rc) {
		oauth_error(t, 503, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
		goto done;
	}
	t->acr = "2";
	ok = true;
done:
	free(cc.pem);
	cert_key_put(key);
	bc_jwt_release(&jwt);
	return ok;
}

/* ---- issuing ---- */

static int issue(struct dir *d, const struct dir_principal *p, const char *resource, int version, const char *acr,
		 struct bc_buf *out, int64_t *iat_out, int64_t *exp_out, struct bc_error *err)
{
	int64_t now = bc_now(), exp = now + d->cfg.token_lifetime_s;
	char iss[DIR_URL_MAX + 64], idp[DIR_URL_MAX + 64], uti[32];
	uint8_t raw[16];
	if (bc_random(raw, sizeof(raw)))
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot make a token id");
	char *u = bc_b64url_encode_str(raw, sizeof(raw));
	snprintf(uti, sizeof(uti), "%s", u ? u : "");
	free(u);
	dir_issuer(d, p->tenant_id, version, iss, sizeof(iss));
	dir_issuer(d, p->tenant_id, 1, idp, sizeof(idp));
	json_t *c = json_object();
	if (!c)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	json_object_set_new(c, "aud", json_string(resource));
	json_object_set_new(c, "iss", json_string(iss));
	json_object_set_new(c, "iat", json_integer(now));
	json_object_set_new(c, "nbf", json_integer(now));
	json_object_set_new(c, "exp", json_integer(exp));
	if (version == 2) {
		json_object_set_new(c, "azp", json_string(p->app_id));
		json_object_set_new(c, "azpacr", json_string(acr));
	} else {
		json_object_set_new(c, "appid", json_string(p->app_id));
		json_object_set_new(c, "appidacr", json_string(acr));
		json_object_set_new(c, "idp", json_string(idp));
	}
	json_object_set_new(c, "idtyp", json_string("app"));
	json_object_set_new(c, "oid", json_string(p->object_id));
	json_object_set_new(c, "sub", json_string(p->object_id));
	json_object_set_new(c, "tid", json_string(p->tenant_id));
	json_object_set_new(c, "uti", json_string(uti));
	json_object_set_new(c, "ver", json_string(version == 2 ? "2.0" : "1.0"));
	if (strcmp(p->type, DIR_TYPE_MANAGED) == 0 && p->resource_id[0])
		json_object_set_new(c, "xms_mirid", json_string(p->resource_id));
	int rc = dir_keys_sign(d, p->tenant_id, c, out, err);
	json_decref(c);
	if (rc == BC_OK) {
		*iat_out = now;
		*exp_out = exp;
	}
	return rc;
}

int dir_token_issue(struct dir *d, const struct dir_principal *p, const char *resource, int version,
		    struct bc_buf *out_token, int64_t *expires_on, struct bc_error *err)
{
	int64_t iat, exp;
	int rc = issue(d, p, resource, version, "2", out_token, &iat, &exp, err);
	if (rc == BC_OK && expires_on)
		*expires_on = exp;
	return rc;
}

static void token_endpoint(struct bc_http_req *req, struct bc_http_res *res, struct dir *d, int version)
{
	struct token_req t = {.d = d, .req = req, .res = res, .version = version, .tenant = req->captures[0],
			      .t0 = bc_now_ms()};
	struct bc_error err;
	struct bc_buf tok = {0};
	const char *dup;
	const char *ct = bc_http_header(req, "Content-Type");
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
		oauth_error(&t, 400, "invalid_request", 900144,
			    "The request body must be application/x-www-form-urlencoded.");
		goto done;
	}
	if (bc_http_form_parse(req->body, req->body_len, t.form, BC_LIMIT_FORM_FIELDS, &t.nform, &t.storage, &err)) {
		oauth_error(&t, 400, "invalid_request", 900144, "The request body is malformed: %s.", err.msg);
		goto done;
	}
	if (form_dup(&t, &dup)) {
		oauth_error(&t, 400, "invalid_request", 900144, "The parameter '%.64s' appears more than once.", dup);
		goto done;
	}
	if (!dir_tenant_exists(d, t.tenant)) {
		oauth_error(&t, 400, "invalid_request", 90002,
			    "Tenant '%.64s' not found. Check to make sure you have the correct tenant ID.", t.tenant);
		goto done;
	}
	const char *grant = form_get(&t, "grant_type");
	if (!grant) {
		missing(&t, "grant_type");
		goto done;
	}
	if (strcmp(grant, "client_credentials") != 0) {
		oauth_error(&t, 400, "unsupported_grant_type", 70003,
			    "The app requested an unsupported grant type '%.64s'. Only client_credentials is supported.",
			    grant);
		goto done;
	}
	const char *secret = form_get(&t, "client_secret"), *assertion = form_get(&t, "client_assertion");
	const char *atype = form_get(&t, "client_assertion_type"), *client_id = form_get(&t, "client_id");
	if (!client_id && assertion) {
		/* RFC 7523: the client may be identified by the assertion alone */
		struct bc_jwt j;
		bc_jwt_init(&j);
		if (bc_jwt_parse(&j, assertion, strlen(assertion), NULL) == BC_OK && j.claims) {
			const char *sub = bc_json_str(j.claims, "sub");
			if (sub && bc_is_uuid(sub)) {
				snprintf(t.sub_client, sizeof(t.sub_client), "%s", sub);
				client_id = t.sub_client;
			}
		}
		bc_jwt_release(&j);
	}
	t.client_id = client_id;
	if (!client_id) {
		missing(&t, "client_id");
		goto done;
	}
	const char *resource = NULL;
	char scope_res[BC_LIMIT_RESOURCE + 1];
	if (version == 1) {
		resource = form_get(&t, "resource");
		if (!resource) {
			missing(&t, "resource");
			goto done;
		}
	} else {
		const char *scope = form_get(&t, "scope");
		size_t sl = scope ? strlen(scope) : 0;
		if (!scope) {
			missing(&t, "scope");
			goto done;
		}
		if (sl < 10 || sl > BC_LIMIT_RESOURCE || strcmp(scope + sl - 9, "/.default") != 0 || strchr(scope, ' ')) {
			oauth_error(&t, 400, "invalid_scope", 1002012,
				    "The provided value for scope '%.128s' is not valid. Client credential flows must have "
				    "a scope value with /.default suffixed to the resource identifier (application ID URI).",
				    scope);
			goto done;
		}
		memcpy(scope_res, scope, sl - 9);
		scope_res[sl - 9] = 0;
		resource = scope_res;
	}
	t.resource = resource;
	const char *audience = strlen(resource) <= BC_LIMIT_RESOURCE ? in_list(resource, d->cfg.resources, d->cfg.nresources)
								     : NULL;
	if (!audience) {
		oauth_error(&t, 400, "invalid_resource", 500011,
			    "The resource principal named %.200s was not found in the tenant named %s.", resource, t.tenant);
		goto done;
	}
	if (!bc_is_uuid(client_id)) {
		oauth_error(&t, 400, "unauthorized_client", 700016,
			    "Application with identifier '%.64s' was not found in the directory '%s'.", client_id,
			    t.tenant);
		goto done;
	}
	/* Throttled before any credential work, as Entra answers client credentials: 429 + Retry-After */
	int64_t retry_s;
	const char *scope_hit;
	if (!dir_throttle_token(d, t.tenant, client_id, &retry_s, &scope_hit)) {
		char ra[24];
		oauth_error(&t, 429, "temporarily_unavailable", 90055,
			    "TenantThrottlingError - There are too many incoming requests (%s limit of %s). "
			    "Retry after %lld seconds.", scope_hit, !strcmp(scope_hit, "client") ? client_id : t.tenant,
			    (long long)retry_s);
		snprintf(ra, sizeof(ra), "%lld", (long long)retry_s);
		(void)bc_http_res_header(res, "Retry-After", ra);
		goto done;
	}
	int rc = dir_principal_get(d, NULL, client_id, &t.p, &err);
	if (rc == BC_ERR_NOT_FOUND || (rc == BC_OK && (strcmp(t.p.app_id, client_id) != 0 ||
						       strcmp(t.p.tenant_id, t.tenant) != 0))) {
		oauth_error(&t, 400, "unauthorized_client", 700016,
			    "Application with identifier '%s' was not found in the directory '%s'.", client_id, t.tenant);
		goto done;
	} else if (rc) {
		bc_log(BC_LOG_ERROR, req->request_id, "token: %s", err.msg);
		oauth_error(&t, 500, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
		goto done;
	}
	if (!t.p.enabled) {
		oauth_error(&t, 400, "unauthorized_client", 7000112, "Application '%s' is disabled.", t.p.app_id);
		goto done;
	}
	if (secret && assertion) {
		oauth_error(&t, 400, "invalid_request", 90015,
			    "Requested more than one client authentication method: client_secret and client_assertion.");
		goto done;
	}
	if (assertion) {
		if (!atype || strcmp(atype, ASSERTION_TYPE) != 0) {
			oauth_error(&t, 400, "invalid_request", 70021,
				    "The client_assertion_type must be '" ASSERTION_TYPE "'.");
			goto done;
		}
		if (!auth_assertion(&t, assertion, client_id))
			goto done;
	} else if (secret) {
		if (!auth_secret(&t, secret))
			goto done;
	} else {
		oauth_error(&t, 401, "invalid_client", 7000218,
			    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
		goto done;
	}
	int tver = in_list(resource, d->cfg.v2_resources, d->cfg.nv2_resources) != NULL ? 2 : 1;
	int64_t iat, exp;
	if (issue(d, &t.p, audience, tver, t.acr, &tok, &iat, &exp, &err)) {
		bc_log(BC_LOG_ERROR, req->request_id, "token: %s", err.msg);
		oauth_error(&t, 500, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
		goto done;
	}
	json_t *body;
	long life = (long)(exp - iat);
	if (version == 1) {
		char s_in[24], s_on[24], s_nbf[24];
		snprintf(s_in, sizeof(s_in), "%ld", life);
		snprintf(s_on, sizeof(s_on), "%lld", (long long)exp);
		snprintf(s_nbf, sizeof(s_nbf), "%lld", (long long)iat);
		body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "token_type", "Bearer", "expires_in", s_in,
				 "ext_expires_in", s_in, "expires_on", s_on, "not_before", s_nbf, "resource", resource,
				 "access_token", tok.data);
	} else {
		body = json_pack("{s:s, s:I, s:I, s:s}", "token_type", "Bearer", "expires_in", (json_int_t)life,
				 "ext_expires_in", (json_int_t)life, "access_token", tok.data);
	}
	bc_http_res_json(res, 200, body);
	bc_http_res_header(res, "Cache-Control", "no-store, no-cache");
	bc_http_res_header(res, "Pragma", "no-cache");
	bc_log(BC_LOG_DEBUG, req->request_id, "token: issued v%d token for %s to %s", tver, resource, t.p.app_id);
done:
	audit(&t);
	bc_buf_wipe(&tok);
	bc_buf_wipe(&t.storage);
}

static void token_v1(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	token_endpoint(req, res, ctx, 1);
}

static void token_v2(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	token_endpoint(req, res, ctx, 2);
}

static const struct bc_route token_routes[] = {
	{"POST", "/{tenant}/oauth2/token", token_v1, NULL, 64 * 1024},
	{"POST", "/{tenant}/oauth2/v2.0/token", token_v2, NULL, 64 * 1024},
};

int dir_token_mount(struct dir *d, struct bc_http_server *srv)
{
	return bc_http_mount(srv, NULL, NULL, token_routes, sizeof(token_routes) / sizeof(token_routes[0]), d);
}
