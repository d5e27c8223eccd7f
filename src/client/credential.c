/* libbadge credentials: the per-resource token cache shared by every flavour, single flight
 * (one upstream request however many threads want the same token), refresh ahead of expiry,
 * the retry loop and the token-response parser. The flavours' requests are in mi.c and aad.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "client/client_int.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/util.h"

const char *badge_status_name(int status)
{
	static const char *const names[] = {
		"BADGE_OK",         "BADGE_E_INVALID",      "BADGE_E_NOMEM",     "BADGE_E_UNAVAILABLE",
		"BADGE_E_AUTH",     "BADGE_E_UNAUTHORIZED", "BADGE_E_FORBIDDEN", "BADGE_E_NOT_FOUND",
		"BADGE_E_CONFLICT", "BADGE_E_HTTP",         "BADGE_E_PROTOCOL",  "BADGE_E_CHALLENGE",
		"BADGE_E_TLS",      "BADGE_E_INTERNAL",
	};
	if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]))
		return "BADGE_E_UNKNOWN";
	return names[status];
}

void badge_free(void *p)
{
	free(p);
}

void badge_free_secret(char *s)
{
	if (s) {
		bc_wipe(s, strlen(s));
		free(s);
	}
}

const char *client_ca_file(const char *explicit_ca)
{
	if (explicit_ca)
		return explicit_ca;
	const char *env = getenv("SSL_CERT_FILE");
	return env && *env ? env : NULL;
}

/* ---- clock -------------------------------------------------------------------------------- */

static int64_t real_now_ms(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void real_sleep_ms(void *ctx, int64_t ms)
{
	(void)ctx;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int64_t cred_now_ms(const struct badge_credential *c)
{
	return c->now_ms(c->clock_ctx);
}

void cred_sleep(const struct badge_credential *c, int64_t ms)
{
	if (ms > 0)
		c->sleep_ms(c->clock_ctx, ms);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

struct badge_credential *cred_alloc(enum cred_kind kind);
struct badge_credential *cred_alloc(enum cred_kind kind)
{
	struct badge_credential *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return NULL;
	}
	if (pthread_cond_init(&c->cv, NULL) != 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return NULL;
	}
	c->kind = kind;
	c->now_ms = real_now_ms;
	c->sleep_ms = real_sleep_ms;
	return c;
}

static void entry_free(struct cache_entry *e)
{
	free(e->resource);
	badge_free_secret(e->token);
	free(e);
}

void badge_credential_free(struct badge_credential *c)
{
	if (!c)
		return;
	for (struct cache_entry *e = c->cache, *next; e; e = next) {
		next = e->next;
		entry_free(e);
	}
	free(c->token_url);
	badge_free_secret(c->identity_header);
	free(c->id);
	free(c->client_id);
	badge_free_secret(c->secret);
	bc_jwk_free(c->key);
	free(c->ca_file);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static int set_str(char **dst, const char *v)
{
	char *copy = NULL;
	if (v && !(copy = strdup(v)))
		return BADGE_E_NOMEM;
	free(*dst);
	*dst = copy;
	return BADGE_OK;
}

int badge_credential_new_access_token(struct badge_credential **out, const char *token, int64_t expires_on)
{
	if (!out || !token || !*token || strlen(token) > BC_LIMIT_JWT_BYTES)
		return BADGE_E_INVALID;
	struct badge_credential *c = cred_alloc(CRED_FIXED);
	if (!c)
		return BADGE_E_NOMEM;
	if (!(c->secret = strdup(token))) {
		badge_credential_free(c);
		return BADGE_E_NOMEM;
	}
	c->fixed_expires_on = expires_on;
	*out = c;
	return BADGE_OK;
}

int badge_credential_set_ca_file(struct badge_credential *c, const char *path)
{
	return c ? set_str(&c->ca_file, path) : BADGE_E_INVALID;
}

int badge_credential_set_clock(struct badge_credential *c, badge_clock_fn now_ms, badge_sleep_fn sleep_ms,
			       void *ctx)
{
	if (!c)
		return BADGE_E_INVALID;
	c->now_ms = now_ms ? now_ms : real_now_ms;
	c->sleep_ms = sleep_ms ? sleep_ms : real_sleep_ms;
	c->clock_ctx = ctx;
	return BADGE_OK;
}

const char *badge_credential_kind(const struct badge_credential *c)
{
	static const char *const kinds[] = {"imds",          "pod-identity",       "app-service",
					    "client-secret", "client-certificate", "access-token"};
	return c ? kinds[c->kind] : "";
}

void badge_credential_errmsg(struct badge_credential *c, char *buf, size_t n)
{
	if (!buf || !n)
		return;
	if (!c) {
		snprintf(buf, n, "no credential");
		return;
	}
	pthread_mutex_lock(&c->mu);
	snprintf(buf, n, "%s", c->errmsg);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the cache ------------------------------------------------------------------------------ */

/* "https://vault.azure.net/.default" -> "https://vault.azure.net" */
static int normalise_resource(const char *resource, char *out, size_t n)
{
	size_t len = resource ? strlen(resource) : 0;
	static const char dflt[] = "/.default";
	if (len > sizeof(dflt) - 1 && strcmp(resource + len - (sizeof(dflt) - 1), dflt) == 0)
		len -= sizeof(dflt) - 1;
	if (len == 0 || len >= n)
		return BADGE_E_INVALID;
	memcpy(out, resource, len);
	out[len] = '\0';
	return BADGE_OK;
}

/* Called with the lock held. */
static struct cache_entry *entry_get(struct badge_credential *c, const char *resource)
{
	for (struct cache_entry *e = c->cache; e; e = e->next)
		if (strcmp(e->resource, resource) == 0)
			return e;
	if (c->ncache >= CLIENT_MAX_RESOURCES)
		return NULL;
	struct cache_entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->resource = strdup(resource))) {
		free(e);
		return NULL;
	}
	e->next = c->cache;
	c->cache = e;
	c->ncache++;
	return e;
}

static int64_t refresh_time(int64_t now_s, int64_t expires_on)
{
	int64_t life = expires_on - now_s;
	if (life > CLIENT_REFRESH_LONG_S)
		return now_s + life / 2;
	if (life > 2 * CLIENT_REFRESH_MARGIN_S)
		return expires_on - CLIENT_REFRESH_MARGIN_S;
	return now_s + life / 2; /* a short-lived token: refresh at half-life rather than on every call */
}

static int hand_out(const struct cache_entry *e, char **token, int64_t *expires_on, struct bc_error *err)
{
	char *t = strdup(e->token);
	if (!t)
		return bc_error_set(err, BADGE_E_NOMEM, "out of memory");
	*token = t;
	if (expires_on)
		*expires_on = e->expires_on;
	return BADGE_OK;
}

static int fetch(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
		 struct bc_error *err)
{
	if (c->kind == CRED_SECRET || c->kind == CRED_CERT)
		return aad_fetch(c, resource, token, expires_on, err);
	return mi_fetch(c, resource, token, expires_on, err);
}

/* Lock held on entry and exit; released while the upstream request runs. */
static int refresh_locked(struct badge_credential *c, struct cache_entry *e, char **token,
			  int64_t *expires_on, struct bc_error *err)
{
	char *fresh = NULL;
	int64_t exp = 0;
	e->fetching = true;
	pthread_mutex_unlock(&c->mu);
	struct bc_error ferr = {0};
	int rc = fetch(c, e->resource, &fresh, &exp, &ferr);
	int64_t now_s = cred_now_ms(c) / 1000;
	pthread_mutex_lock(&c->mu);
	e->fetching = false;
	e->gen++;
	e->last_rc = rc;
	snprintf(e->last_msg, sizeof(e->last_msg), "%s", rc == BADGE_OK ? "" : ferr.msg);
	if (rc == BADGE_OK) {
		badge_free_secret(e->token);
		e->token = fresh;
		e->expires_on = exp;
		e->refresh_at = refresh_time(now_s, exp);
	} else if (e->token && now_s < e->expires_on) {
		/* keep the valid token; ask again in a minute rather than on every call */
		e->refresh_at = now_s + CLIENT_REFRESH_RETRY_S < e->expires_on
					? now_s + CLIENT_REFRESH_RETRY_S
					: e->expires_on;
	}
	pthread_cond_broadcast(&c->cv);
	if (rc == BADGE_OK || (e->token && now_s < e->expires_on)) /* a failed refresh keeps a valid token */
		return hand_out(e, token, expires_on, err);
	return bc_error_set(err, rc, "%s", ferr.msg);
}

static int fixed_token(struct badge_credential *c, char **token, int64_t *expires_on, struct bc_error *err)
{
	if (c->fixed_expires_on && cred_now_ms(c) / 1000 >= c->fixed_expires_on)
		return bc_error_set(err, BADGE_E_AUTH, "the access token has expired");
	char *t = strdup(c->secret);
	if (!t)
		return bc_error_set(err, BADGE_E_NOMEM, "out of memory");
	*token = t;
	if (expires_on)
		*expires_on = c->fixed_expires_on;
	return BADGE_OK;
}

int cred_token(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	       struct bc_error *err)
{
	char res[BC_LIMIT_RESOURCE + 1];
	if (!c || !token || normalise_resource(resource, res, sizeof(res)) != BADGE_OK)
		return bc_error_set(err, BADGE_E_INVALID,
				    "a credential, a resource (at most %d bytes) and an output are required",
				    BC_LIMIT_RESOURCE);
	if (c->kind == CRED_FIXED)
		return fixed_token(c, token, expires_on, err);
	pthread_mutex_lock(&c->mu);
	struct cache_entry *e = entry_get(c, res);
	int rc;
	if (!e) {
		rc = bc_error_set(err, BADGE_E_NOMEM,
				  "too many resources cached (at most %d) or out of memory",
				  CLIENT_MAX_RESOURCES);
		goto out;
	}
	for (;;) {
		int64_t now_s = cred_now_ms(c) / 1000;
		if (e->token && now_s < e->refresh_at) {
			rc = hand_out(e, token, expires_on, err);
			goto out;
		}
		if (!e->fetching) {
			rc = refresh_locked(c, e, token, expires_on, err);
			goto out;
		}
		/* another thread is asking: a still-valid token is good enough meanwhile */
		if (e->token && now_s < e->expires_on) {
			rc = hand_out(e, token, expires_on, err);
			goto out;
		}
		uint64_t gen = e->gen;
		while (e->fetching && e->gen == gen)
			pthread_cond_wait(&c->cv, &c->mu);
		if (e->gen == gen)
			continue;
		/* the request we waited for finished: its token, or its failure (no second request) */
		if (e->token && cred_now_ms(c) / 1000 < e->expires_on) {
			rc = hand_out(e, token, expires_on, err);
			goto out;
		}
		if (e->last_rc != BADGE_OK) {
			rc = bc_error_set(err, e->last_rc, "%s", e->last_msg);
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void cred_invalidate(struct badge_credential *c, const char *resource, const char *token)
{
	char res[BC_LIMIT_RESOURCE + 1];
	if (c->kind == CRED_FIXED || normalise_resource(resource, res, sizeof(res)) != BADGE_OK)
		return;
	pthread_mutex_lock(&c->mu);
	for (struct cache_entry *e = c->cache; e; e = e->next)
		if (strcmp(e->resource, res) == 0 && e->token && strcmp(e->token, token) == 0 &&
		    !e->fetching) {
			badge_free_secret(e->token);
			e->token = NULL;
			e->refresh_at = e->expires_on = 0;
		}
	pthread_mutex_unlock(&c->mu);
}

int badge_credential_get_token(struct badge_credential *c, const char *resource, char **token,
			       int64_t *expires_on)
{
	struct bc_error err = {0};
	int rc = cred_token(c, resource, token, expires_on, &err);
	if (rc != BADGE_OK && c) {
		pthread_mutex_lock(&c->mu);
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", err.msg);
		pthread_mutex_unlock(&c->mu);
	}
	return rc;
}

/* ---- the retry loop ------------------------------------------------------------------------ */

static bool retriable(long status, bool mi)
{
	if (status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505))
		return true;
	return mi && (status == 404 || status == 410);
}

int client_http_retry(const struct badge_credential *c, const struct bc_httpc_req *req, bool mi,
		      struct bc_httpc_res *res, struct bc_error *err)
{
	int64_t start = cred_now_ms(c);
	for (int attempt = 0;; attempt++) {
		struct bc_error herr = {0};
		int rc = bc_httpc_do(req, res, &herr);
		long status = rc == BC_OK ? res->status : 0;
		bool again;
		if (rc == BC_OK)
			again = retriable(status, mi);
		else if (rc == BC_ERR_UNAVAILABLE)
			again = true;
		else
			return bc_error_set(err, rc == BC_ERR_NOMEM ? BADGE_E_NOMEM : BADGE_E_INVALID, "%s",
					    herr.msg);
		if (rc == BC_OK && (!again || status < 400))
			return BADGE_OK;
		int64_t delay = (int64_t)CLIENT_BACKOFF_BASE_MS << (attempt < 16 ? attempt : 16);
		if (rc == BC_OK && res->retry_after_ms >= 0)
			delay = res->retry_after_ms > CLIENT_RETRY_AFTER_MAX_MS ? CLIENT_RETRY_AFTER_MAX_MS
										: res->retry_after_ms;
		bool give_up = status == 410 ? cred_now_ms(c) + delay - start > CLIENT_GONE_WINDOW_MS
					     : attempt >= CLIENT_MAX_RETRIES;
		if (give_up) {
			if (rc == BC_OK)
				return BADGE_OK; /* the caller reports the final status */
			return bc_error_set(err, BADGE_E_UNAVAILABLE, "%s (after %d attempts)", herr.msg,
					    attempt + 1);
		}
		cred_sleep(c, delay);
	}
}

/* ---- token responses ------------------------------------------------------------------------ */

static bool json_int_or_string(const json_t *obj, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_real(v)) {
		*out = (int64_t)json_real_value(v);
		return true;
	}
	if (json_is_string(v)) {
		char *end;
		errno = 0;
		long long n = strtoll(json_string_value(v), &end, 10);
		if (end != json_string_value(v) && *end == '\0' && errno == 0) {
			*out = n;
			return true;
		}
	}
	return false;
}

static void error_text(const json_t *j, char *out, size_t n)
{
	const json_t *e = json_object_get(j, "error");
	const char *code = json_is_string(e) ? json_string_value(e) : bc_json_str(e, "code");
	const char *desc = bc_json_str(j, "error_description");
	if (!desc)
		desc = json_is_object(e) ? bc_json_str(e, "message") : bc_json_str(j, "message");
	snprintf(out, n, "%s%s%.*s", code ? code : "", code && desc ? ": " : "",
		 desc ? (int)strcspn(desc, "\r\n") : 0, desc ? desc : "");
}

int client_parse_token(const struct bc_httpc_res *res, int64_t now_s, char **token, int64_t *expires_on,
		       struct bc_error *err)
{
	json_t *j = NULL;
	int rc;
	char why[200] = "";
	if (bc_json_parse(bc_buf_cstr(&res->body), res->body.len, 0, &j, NULL) != BC_OK ||
	    !json_is_object(j)) {
		rc = res->status >= 200 && res->status < 300
			     ? bc_error_set(err, BADGE_E_PROTOCOL,
					    "the token endpoint answered %ld with a body that is not JSON",
					    res->status)
			     : bc_error_set(err,
					    res->status >= 500 || res->status == 429 || res->status == 404 ||
							    res->status == 410
						    ? BADGE_E_UNAVAILABLE
						    : BADGE_E_AUTH,
					    "the token endpoint answered %ld", res->status);
		goto out;
	}
	if (res->status < 200 || res->status > 299 || json_object_get(j, "error")) {
		error_text(j, why, sizeof(why));
		int st = res->status >= 500 || res->status == 429 || res->status == 404 || res->status == 410
				 ? BADGE_E_UNAVAILABLE
				 : BADGE_E_AUTH;
		rc = bc_error_set(err, st, "no token: the endpoint answered %ld%s%s", res->status,
				  why[0] ? ": " : "", why);
		goto out;
	}
	const char *at = bc_json_str(j, "access_token");
	int64_t exp = 0, in = 0;
	if (!at || !*at) {
		rc = bc_error_set(err, BADGE_E_PROTOCOL, "the token response has no access_token");
		goto out;
	}
	if (!json_int_or_string(j, "expires_on", &exp)) {
		if (!json_int_or_string(j, "expires_in", &in)) {
			rc = bc_error_set(err, BADGE_E_PROTOCOL,
					  "the token response has neither expires_on nor expires_in");
			goto out;
		}
		exp = now_s + in;
	}
	char *t = strdup(at);
	if (!t) {
		rc = bc_error_set(err, BADGE_E_NOMEM, "out of memory");
		goto out;
	}
	*token = t;
	*expires_on = exp;
	rc = BADGE_OK;
out:
	json_decref(j);
	return rc;
}
