/* The Key Vault client: https only, the challenge flow of the Azure SDKs (first request without a
 * token and without a body, resource from the 401's WWW-Authenticate, the vault host checked to
 * be a subdomain of the resource host), retries of 408/429/5xx, and the secret and key
 * operations. Nothing badge-specific goes on the wire. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client/client_int.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/util.h"

#define KV_DEFAULT_API "7.4"
#define KV_MAX_PAGES   10000

struct badge_keyvault {
	struct badge_credential *cred; /* borrowed from the caller */
	char *base;                    /* owned: the vault URL, no trailing '/' */
	char *ca_file;                 /* owned, NULL = SSL_CERT_FILE or the system default */
	char api[32];
	bool verify;
	char resource[BC_LIMIT_RESOURCE + 1]; /* from the challenge; "" until then */
	long status;
	char code[128];
	char errmsg[512];
};

/* ---- URLs and the challenge ------------------------------------------------------------------ */

/* The host of an absolute URL (no userinfo, no port, lower case) and the length of its origin
 * ("https://host:port"). */
static bool url_host(const char *url, char *host, size_t n, size_t *origin_len)
{
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	size_t olen = strcspn(p, "/?#");
	const char *at = memchr(p, '@', olen);
	if (at)
		return false;
	size_t hlen;
	if (*p == '[') {
		const char *close = memchr(p, ']', olen);
		if (!close)
			return false;
		hlen = (size_t)(close - p) + 1;
	} else {
		const char *colon = memchr(p, ':', olen);
		hlen = colon ? (size_t)(colon - p) : olen;
	}
	if (hlen == 0 || hlen >= n)
		return false;
	for (size_t i = 0; i < hlen; i++)
		host[i] = (char)tolower((unsigned char)p[i]);
	host[hlen] = '\0';
	if (origin_len)
		*origin_len = (size_t)(p - url) + olen;
	return true;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[16];
	return host[0] == '[' || inet_pton(AF_INET, host, buf) == 1;
}

bool kv_challenge_host_ok(const char *vault_url, const char *resource)
{
	char vh[256], rh[256];
	if (!url_host(vault_url, vh, sizeof(vh), NULL) || !url_host(resource, rh, sizeof(rh), NULL) ||
	    is_ip_literal(vh))
		return false;
	size_t vl = strlen(vh), rl = strlen(rh);
	return vl > rl + 1 && vh[vl - rl - 1] == '.' && strcmp(vh + vl - rl, rh) == 0;
}

/* Finds key="value" in a challenge (keys case-sensitive, as the Azure SDKs read them). */
static bool challenge_param(const char *h, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);
	for (const char *p = h; (p = strstr(p, key)) != NULL; p += kl) {
		bool start = p == h || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\t';
		if (!start || p[kl] != '=' || p[kl + 1] != '"')
			continue;
		const char *v = p + kl + 2, *end = strchr(v, '"');
		if (!end || (size_t)(end - v) >= n)
			return false;
		memcpy(out, v, (size_t)(end - v));
		out[end - v] = '\0';
		return true;
	}
	return false;
}

int kv_challenge_resource(const char *www_authenticate, char *out, size_t n)
{
	if (!www_authenticate || strncasecmp(www_authenticate, "Bearer", 6) != 0)
		return BADGE_E_PROTOCOL;
	if (challenge_param(www_authenticate, "resource", out, n) && *out)
		return BADGE_OK;
	if (challenge_param(www_authenticate, "scope", out, n) && *out) {
		size_t l = strlen(out);
		if (l > 9 && strcmp(out + l - 9, "/.default") == 0)
			out[l - 9] = '\0';
		return BADGE_OK;
	}
	return BADGE_E_PROTOCOL;
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

int badge_keyvault_new(struct badge_keyvault **out, const char *vault_url, struct badge_credential *cred)
{
	char host[256];
	if (!out || !vault_url || !cred)
		return BADGE_E_INVALID;
	if (strncasecmp(vault_url, "https://", 8) != 0)
		return BADGE_E_TLS;
	if (!url_host(vault_url, host, sizeof(host), NULL) || strlen(vault_url) > 1024 ||
	    strpbrk(vault_url, "?# \r\n"))
		return BADGE_E_INVALID;
	struct badge_keyvault *kv = calloc(1, sizeof(*kv));
	if (!kv || !(kv->base = strdup(vault_url))) {
		free(kv);
		return BADGE_E_NOMEM;
	}
	size_t l = strlen(kv->base);
	while (l > 8 && kv->base[l - 1] == '/')
		kv->base[--l] = '\0';
	kv->cred = cred;
	kv->verify = true;
	snprintf(kv->api, sizeof(kv->api), "%s", KV_DEFAULT_API);
	*out = kv;
	return BADGE_OK;
}

void badge_keyvault_free(struct badge_keyvault *kv)
{
	if (!kv)
		return;
	free(kv->base);
	free(kv->ca_file);
	free(kv);
}

int badge_keyvault_set_ca_file(struct badge_keyvault *kv, const char *path)
{
	if (!kv)
		return BADGE_E_INVALID;
	char *p = path ? strdup(path) : NULL;
	if (path && !p)
		return BADGE_E_NOMEM;
	free(kv->ca_file);
	kv->ca_file = p;
	return BADGE_OK;
}

int badge_keyvault_set_api_version(struct badge_keyvault *kv, const char *version)
{
	if (!kv || !version || !*version || strlen(version) >= sizeof(kv->api) ||
	    strspn(version, "0123456789.-") != strlen(version))
		return BADGE_E_INVALID;
	snprintf(kv->api, sizeof(kv->api), "%s", version);
	return BADGE_OK;
}

int badge_keyvault_set_challenge_verification(struct badge_keyvault *kv, int verify)
{
	if (!kv)
		return BADGE_E_INVALID;
	kv->verify = verify != 0;
	return BADGE_OK;
}

const char *badge_keyvault_errmsg(const struct badge_keyvault *kv)
{
	return kv ? kv->errmsg : "no vault client";
}

long badge_keyvault_http_status(const struct badge_keyvault *kv)
{
	return kv ? kv->status : 0;
}

const char *badge_keyvault_error_code(const struct badge_keyvault *kv)
{
	return kv ? kv->code : "";
}

/* ---- requests ------------------------------------------------------------------------------------ */

static int fail(struct badge_keyvault *kv, int st, const char *fmt, ...) BC_PRINTF(3, 4);
static int fail(struct badge_keyvault *kv, int st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(kv->errmsg, sizeof(kv->errmsg), fmt, ap);
	va_end(ap);
	return st;
}

/* The target: a path relative to the vault, or an absolute URL on the vault's own origin (a
 * nextLink: a token never goes anywhere else). api-version added when absent. */
static int build_target(struct badge_keyvault *kv, const char *path, struct bc_buf *url)
{
	int rc;
	if (strstr(path, "://")) {
		size_t ob = 0, ot = 0;
		char h1[256], h2[256];
		if (!url_host(kv->base, h1, sizeof(h1), &ob) || !url_host(path, h2, sizeof(h2), &ot) ||
		    ob != ot || strncasecmp(kv->base, path, ob) != 0)
			return fail(kv, BADGE_E_INVALID, "%.200s is not on the vault %.200s", path, kv->base);
		rc = bc_buf_appends(url, path);
	} else {
		if (path[0] != '/')
			return fail(kv, BADGE_E_INVALID, "a vault path starts with '/'");
		rc = bc_buf_appendf(url, "%s%s", kv->base, path);
	}
	if (!rc && !strstr(path, "api-version=") && !strstr(path, "api%2Dversion=") &&
	    !strstr(path, "api%2dversion="))
		rc = bc_buf_appendf(url, "%capi-version=%s", strchr(path, '?') ? '&' : '?', kv->api);
	return rc ? fail(kv, BADGE_E_NOMEM, "out of memory") : BADGE_OK;
}

static bool kv_retriable(long status)
{
	return status == 408 || status == 429 ||
	       (status >= 500 && status <= 599 && status != 501 && status != 505);
}

/* One exchange with the Key Vault retry policy. */
static int kv_send(struct badge_keyvault *kv, const char *method, const char *url, const char *token,
		   const char *body, struct bc_httpc_res *res)
{
	struct bc_buf auth = {0};
	if (token && bc_buf_appendf(&auth, "Authorization: Bearer %s", token) != BC_OK)
		return fail(kv, BADGE_E_NOMEM, "out of memory");
	const char *headers[] = {"Accept: application/json", "Content-Type: application/json",
				 token ? auth.data : NULL, NULL};
	struct bc_httpc_req req = {.method = method,
				   .url = url,
				   .headers = headers,
				   .body = body,
				   .body_len = body ? strlen(body) : 0,
				   .ca_file = client_ca_file(kv->ca_file)};
	int rc = BADGE_OK;
	for (int attempt = 0;; attempt++) {
		struct bc_error err = {0};
		int hrc = bc_httpc_do(&req, res, &err);
		if (hrc == BC_OK && (!kv_retriable(res->status) || attempt >= CLIENT_KV_RETRIES))
			break;
		if (hrc != BC_OK && (hrc != BC_ERR_UNAVAILABLE || attempt >= CLIENT_KV_RETRIES)) {
			bool tls = strstr(err.msg, "SSL") || strstr(err.msg, "certificate");
			rc = fail(kv,
				  tls                   ? BADGE_E_TLS
				  : hrc == BC_ERR_NOMEM ? BADGE_E_NOMEM
							: BADGE_E_UNAVAILABLE,
				  "vault request failed: %s", err.msg);
			break;
		}
		int64_t delay = (int64_t)CLIENT_BACKOFF_BASE_MS << attempt;
		if (hrc == BC_OK && res->retry_after_ms >= 0)
			delay = res->retry_after_ms > CLIENT_RETRY_AFTER_MAX_MS ? CLIENT_RETRY_AFTER_MAX_MS
										: res->retry_after_ms;
		cred_sleep(kv->cred, delay);
	}
	bc_buf_wipe(&auth);
	return rc;
}

/* Learns the resource from a 401's challenge and checks it. */
static int take_challenge(struct badge_keyvault *kv, const struct bc_httpc_res *res)
{
	char r[BC_LIMIT_RESOURCE + 1];
	if (kv_challenge_resource(res->www_authenticate, r, sizeof(r)) != BADGE_OK)
		return fail(kv, BADGE_E_PROTOCOL, "the vault answered 401 without a usable Bearer challenge");
	if (kv->verify && !kv_challenge_host_ok(kv->base, r))
		return fail(kv, BADGE_E_CHALLENGE,
			    "the challenge resource '%.200s' does not match the vault's host (%.200s); no "
			    "token was sent",
			    r, kv->base);
	snprintf(kv->resource, sizeof(kv->resource), "%s", r);
	return BADGE_OK;
}

static int get_token(struct badge_keyvault *kv, char **token)
{
	struct bc_error err = {0};
	int rc = cred_token(kv->cred, kv->resource, token, NULL, &err);
	return rc == BADGE_OK ? BADGE_OK : fail(kv, rc, "%s", err.msg);
}

/* An authenticated exchange: the challenge first when no resource is known yet, one retry with
 * a fresh token and challenge when the token is rejected. */
static int exchange(struct badge_keyvault *kv, const char *method, const char *path, const char *body,
		    struct bc_httpc_res *res)
{
	struct bc_buf url = {0};
	char *token = NULL;
	int rc = build_target(kv, path, &url);
	if (rc != BADGE_OK)
		goto out;
	if (!kv->resource[0]) {
		if ((rc = kv_send(kv, method, url.data, NULL, NULL, res)) != BADGE_OK)
			goto out;
		if (res->status != 401)
			goto out; /* no challenge: the answer is the answer */
		if ((rc = take_challenge(kv, res)) != BADGE_OK)
			goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = get_token(kv, &token)) != BADGE_OK ||
		    (rc = kv_send(kv, method, url.data, token, body, res)) != BADGE_OK)
			goto out;
		if (res->status != 401 || attempt == 1)
			break;
		/* rejected: drop that token, re-read the challenge (the resource may have moved) */
		cred_invalidate(kv->cred, kv->resource, token);
		badge_free_secret(token);
		token = NULL;
		if (res->www_authenticate[0] && (rc = take_challenge(kv, res)) != BADGE_OK)
			goto out;
	}
out:
	badge_free_secret(token);
	bc_buf_release(&url);
	return rc;
}

static int status_to_badge(long status)
{
	switch (status) {
	case 401:
		return BADGE_E_UNAUTHORIZED;
	case 403:
		return BADGE_E_FORBIDDEN;
	case 404:
		return BADGE_E_NOT_FOUND;
	case 409:
		return BADGE_E_CONFLICT;
	default:
		return BADGE_E_HTTP;
	}
}

/* A call whose success is a 2xx with a JSON body (or empty when allowed). *out gets the body. */
static int call(struct badge_keyvault *kv, const char *method, const char *path, const json_t *body,
		json_t **out)
{
	struct bc_httpc_res res;
	char *payload = NULL;
	json_t *j = NULL;
	int rc;
	bc_httpc_res_init(&res);
	kv->status = 0;
	kv->code[0] = kv->errmsg[0] = '\0';
	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		rc = fail(kv, BADGE_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = exchange(kv, method, path, payload, &res)) != BADGE_OK)
		goto out;
	kv->status = res.status;
	if (res.body.len && bc_json_parse(res.body.data, res.body.len, 0, &j, NULL) != BC_OK)
		j = NULL;
	if (res.status < 200 || res.status > 299) {
		const json_t *e = json_object_get(j, "error");
		const char *code = bc_json_str(e, "code"), *msg = bc_json_str(e, "message");
		snprintf(kv->code, sizeof(kv->code), "%s", code ? code : "");
		rc = fail(kv, status_to_badge(res.status), "the vault answered %ld%s%s%s%.300s", res.status,
			  code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
		goto out;
	}
	if (res.body.len && !j) {
		rc = fail(kv, BADGE_E_PROTOCOL, "the vault answered %ld with a body that is not JSON",
			  res.status);
		goto out;
	}
	*out = j;
	j = NULL;
out:
	json_decref(j);
	if (payload) {
		bc_wipe(payload, strlen(payload));
		free(payload);
	}
	bc_httpc_res_release(&res);
	return rc;
}

int badge_keyvault_request(struct badge_keyvault *kv, const char *method, const char *path,
			   const char *body_json, long *http_status, char **json)
{
	if (!kv || !method || !path || !http_status || !json)
		return BADGE_E_INVALID;
	struct bc_httpc_res res;
	bc_httpc_res_init(&res);
	kv->status = 0;
	kv->code[0] = kv->errmsg[0] = '\0';
	int rc = exchange(kv, method, path, body_json, &res);
	if (rc == BADGE_OK) {
		char *copy = NULL;
		if (res.body.len && !(copy = strdup(res.body.data)))
			rc = fail(kv, BADGE_E_NOMEM, "out of memory");
		if (rc == BADGE_OK) {
			kv->status = *http_status = res.status;
			*json = copy;
		}
	}
	bc_httpc_res_release(&res);
	return rc;
}

/* ---- helpers for the typed operations ------------------------------------------------------------ */

/* "/COLL/NAME[/VERSION][SUFFIX]" with name and version percent-encoded. */
static int object_path(struct badge_keyvault *kv, const char *coll, const char *name, const char *version,
		       bool version_segment, const char *suffix, struct bc_buf *out)
{
	if (!name || !*name || strlen(name) > BC_LIMIT_NAME)
		return fail(kv, BADGE_E_INVALID, "an object name of 1 to %d characters is required",
			    BC_LIMIT_NAME);
	int rc = bc_buf_appendf(out, "/%s/", coll);
	if (!rc)
		rc = bc_httpc_escape(name, out);
	if (!rc && (version_segment || (version && *version)))
		rc = bc_buf_appendc(out, '/');
	if (!rc && version && *version)
		rc = bc_httpc_escape(version, out);
	if (!rc && suffix)
		rc = bc_buf_appends(out, suffix);
	return rc ? fail(kv, BADGE_E_NOMEM, "out of memory") : BADGE_OK;
}

static int dump_out(struct badge_keyvault *kv, const json_t *j, char **json)
{
	if (!json)
		return BADGE_OK;
	char *s = j ? json_dumps(j, JSON_COMPACT) : strdup("null");
	if (!s)
		return fail(kv, BADGE_E_NOMEM, "out of memory");
	*json = s;
	return BADGE_OK;
}

static int simple(struct badge_keyvault *kv, const char *method, const char *coll, const char *name,
		  const char *version, bool vseg, const char *suffix, const json_t *body, char **json)
{
	if (!kv)
		return BADGE_E_INVALID;
	struct bc_buf p = {0};
	json_t *out = NULL;
	int rc = object_path(kv, coll, name, version, vseg, suffix, &p);
	if (rc == BADGE_OK)
		rc = call(kv, method, p.data, body, &out);
	if (rc == BADGE_OK)
		rc = dump_out(kv, out, json);
	json_decref(out);
	bc_buf_release(&p);
	return rc;
}

/* ---- secrets ------------------------------------------------------------------------------------ */

int badge_keyvault_secret_get(struct badge_keyvault *kv, const char *name, const char *version, char **value,
			      char **json)
{
	if (!kv)
		return BADGE_E_INVALID;
	struct bc_buf p = {0};
	json_t *out = NULL;
	char *v = NULL, *js = NULL;
	int rc = object_path(kv, "secrets", name, version, true, NULL, &p);
	if (rc == BADGE_OK)
		rc = call(kv, "GET", p.data, NULL, &out);
	const char *sv = rc == BADGE_OK ? bc_json_str(out, "value") : NULL;
	if (rc == BADGE_OK && value && !sv)
		rc = fail(kv, BADGE_E_PROTOCOL, "the secret bundle has no value");
	if (rc == BADGE_OK && value && !(v = strdup(sv)))
		rc = fail(kv, BADGE_E_NOMEM, "out of memory");
	if (rc == BADGE_OK)
		rc = dump_out(kv, out, json ? &js : NULL);
	if (rc == BADGE_OK) {
		if (value)
			*value = v;
		if (json)
			*json = js;
		v = NULL;
	}
	badge_free_secret(v);
	if (out) {
		json_t *val = json_object_get(out, "value");
		if (json_is_string(val))
			bc_wipe((void *)json_string_value(val), json_string_length(val));
	}
	json_decref(out);
	bc_buf_release(&p);
	return rc;
}

int badge_keyvault_secret_set(struct badge_keyvault *kv, const char *name, const char *value,
			      const char *content_type, char **json)
{
	if (!kv || !value)
		return BADGE_E_INVALID;
	json_t *b = json_pack("{s:s,s:{}}", "value", value, "attributes");
	if (!b)
		return fail(kv, BADGE_E_INVALID, "the secret value must be UTF-8 text");
	if (content_type && json_object_set_new(b, "contentType", json_string(content_type)) != 0) {
		json_decref(b);
		return fail(kv, BADGE_E_INVALID, "the content type must be UTF-8 text");
	}
	int rc = simple(kv, "PUT", "secrets", name, NULL, false, NULL, b, json);
	json_decref(b);
	return rc;
}

int badge_keyvault_secret_list(struct badge_keyvault *kv, char **json)
{
	if (!kv || !json)
		return BADGE_E_INVALID;
	json_t *all = json_array();
	char *next = strdup("/secrets");
	int rc = all && next ? BADGE_OK : fail(kv, BADGE_E_NOMEM, "out of memory");
	for (int pages = 0; rc == BADGE_OK && next; pages++) {
		json_t *out = NULL;
		if (pages >= KV_MAX_PAGES) {
			rc = fail(kv, BADGE_E_PROTOCOL, "more than %d pages", KV_MAX_PAGES);
			break;
		}
		if ((rc = call(kv, "GET", next, NULL, &out)) != BADGE_OK)
			break;
		const json_t *v = json_object_get(out, "value");
		const char *nl = bc_json_str(out, "nextLink");
		free(next);
		next = nl && *nl ? strdup(nl) : NULL;
		if (!json_is_array(v) || json_array_extend(all, (json_t *)v) != 0 || (nl && *nl && !next))
			rc = fail(kv, BADGE_E_PROTOCOL, "a list page without a value array");
		json_decref(out);
	}
	if (rc == BADGE_OK)
		rc = dump_out(kv, all, json);
	free(next);
	json_decref(all);
	return rc;
}

int badge_keyvault_secret_delete(struct badge_keyvault *kv, const char *name, char **json)
{
	return simple(kv, "DELETE", "secrets", name, NULL, false, NULL, NULL, json);
}

int badge_keyvault_secret_recover(struct badge_keyvault *kv, const char *name, char **json)
{
	return simple(kv, "POST", "deletedsecrets", name, NULL, false, "/recover", NULL, json);
}

/* ---- keys --------------------------------------------------------------------------------------- */

int badge_keyvault_key_get(struct badge_keyvault *kv, const char *name, const char *version, char **json)
{
	return simple(kv, "GET", "keys", name, version, true, NULL, NULL, json);
}

/* POST /keys/NAME/VERSION/OP (an empty version segment means the latest, as the SDKs send it). */
static int key_op(struct badge_keyvault *kv, const char *name, const char *version, const char *op,
		  json_t *body, json_t **out)
{
	struct bc_buf p = {0};
	char suffix[32];
	snprintf(suffix, sizeof(suffix), "/%s", op);
	int rc = body ? BADGE_OK : fail(kv, BADGE_E_NOMEM, "out of memory");
	if (rc == BADGE_OK)
		rc = object_path(kv, "keys", name, version, true, suffix, &p);
	/* without a version: "/keys/NAME//op", exactly what the SDKs send for the latest version */
	if (rc == BADGE_OK)
		rc = call(kv, "POST", p.data, body, out);
	json_decref(body);
	bc_buf_release(&p);
	return rc;
}

static int b64_field(struct badge_keyvault *kv, const json_t *j, const char *key, uint8_t **out, size_t *n)
{
	const char *v = bc_json_str(j, key);
	struct bc_error err = {0};
	if (!v || bc_b64url_decode(v, strlen(v), out, n, &err) != BC_OK)
		return fail(kv, BADGE_E_PROTOCOL, "the vault's answer has no base64url '%s'", key);
	return BADGE_OK;
}

static int crypt_op(struct badge_keyvault *kv, const char *name, const char *version, const char *op,
		    const char *alg, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	if (!kv || !alg || !in || !out || !out_len || in_len > BC_LIMIT_CRYPTO_INPUT)
		return kv ? fail(kv, BADGE_E_INVALID,
				 "an algorithm, input (at most %d bytes) and outputs are required",
				 BC_LIMIT_CRYPTO_INPUT)
			  : BADGE_E_INVALID;
	char *v = bc_b64url_encode_str(in, in_len);
	json_t *body = v ? json_pack("{s:s,s:s}", "alg", alg, "value", v) : NULL, *res = NULL;
	if (v) {
		bc_wipe(v, strlen(v));
		free(v);
	}
	int rc = key_op(kv, name, version, op, body, &res);
	if (rc == BADGE_OK)
		rc = b64_field(kv, res, "value", out, out_len);
	json_decref(res);
	return rc;
}

int badge_keyvault_key_sign(struct badge_keyvault *kv, const char *name, const char *version, const char *alg,
			    const uint8_t *digest, size_t digest_len, uint8_t **sig, size_t *sig_len)
{
	return crypt_op(kv, name, version, "sign", alg, digest, digest_len, sig, sig_len);
}

int badge_keyvault_key_verify(struct badge_keyvault *kv, const char *name, const char *version,
			      const char *alg, const uint8_t *digest, size_t digest_len, const uint8_t *sig,
			      size_t sig_len, int *valid)
{
	if (!kv || !alg || !digest || !sig || !valid || digest_len > BC_LIMIT_CRYPTO_INPUT ||
	    sig_len > BC_LIMIT_CRYPTO_INPUT)
		return kv ? fail(kv, BADGE_E_INVALID,
				 "an algorithm, a digest, a signature and an output are required")
			  : BADGE_E_INVALID;
	char *d = bc_b64url_encode_str(digest, digest_len), *s = bc_b64url_encode_str(sig, sig_len);
	json_t *body = d && s ? json_pack("{s:s,s:s,s:s}", "alg", alg, "digest", d, "value", s) : NULL,
	       *res = NULL;
	free(d);
	free(s);
	int rc = key_op(kv, name, version, "verify", body, &res);
	if (rc == BADGE_OK) {
		const json_t *v = json_object_get(res, "value");
		if (!json_is_boolean(v))
			rc = fail(kv, BADGE_E_PROTOCOL, "the vault's verify answer has no boolean value");
		else
			*valid = json_is_true(v) ? 1 : 0;
	}
	json_decref(res);
	return rc;
}

int badge_keyvault_key_encrypt(struct badge_keyvault *kv, const char *name, const char *version,
			       const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			       size_t *out_len)
{
	return crypt_op(kv, name, version, "encrypt", alg, in, in_len, out, out_len);
}

int badge_keyvault_key_decrypt(struct badge_keyvault *kv, const char *name, const char *version,
			       const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			       size_t *out_len)
{
	return crypt_op(kv, name, version, "decrypt", alg, in, in_len, out, out_len);
}

int badge_keyvault_key_wrap(struct badge_keyvault *kv, const char *name, const char *version, const char *alg,
			    const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	return crypt_op(kv, name, version, "wrapkey", alg, in, in_len, out, out_len);
}

int badge_keyvault_key_unwrap(struct badge_keyvault *kv, const char *name, const char *version,
			      const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			      size_t *out_len)
{
	return crypt_op(kv, name, version, "unwrapkey", alg, in, in_len, out, out_len);
}
