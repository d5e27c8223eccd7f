/* Bearer-token verification for the manager and the vault, with a cache of verified tokens so
 * that a repeated token costs a hash and a lookup, not an RSA verification.
 *
 * Liveness: every cached entry remembers the principal epoch at which its principal was last
 * seen alive. Deleting or disabling any principal bumps the epoch (here at once, and again on
 * every replica when the change is committed, through the store's notifications), so the next
 * use of every cached token re-reads its principal: a deleted identity's token fails at once. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "directory/dirint.h"

#define CACHE_SLOTS 4096 /* direct-mapped; a collision just evicts */
#define CACHE_STRIPES 64

struct dir_cache_slot {
	uint8_t hash[32];
	bool used;
	uint64_t epoch;
	struct dir_claims claims;
};

struct dir_cache {
	pthread_mutex_t locks[CACHE_STRIPES];
	struct dir_cache_slot slots[CACHE_SLOTS];
};

static struct dir_cache *cache_of(struct dir *d)
{
	return (struct dir_cache *)d->cache;
}

static void on_principal_change(void *ctx, const char *channel, const char *payload)
{
	struct dir *d = ctx;
	(void)channel;
	(void)payload;
	atomic_fetch_add(&d->principal_epoch, 1);
}

static void on_keys_change(void *ctx, const char *channel, const char *payload)
{
	struct dir *d = ctx;
	struct bc_error err;
	(void)channel;
	(void)payload;
	if (dir_keys_load(d, &err) != BC_OK)
		bc_log_warn("directory: cannot reload signing keys: %s", err.msg);
}

int dir_cache_init(struct dir *d)
{
	struct dir_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return BC_ERR_NOMEM;
	for (int i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_init(&c->locks[i], NULL);
	d->cache = (struct dir_cache_slot *)c;
	atomic_store(&d->principal_epoch, 1);
	struct bc_error err;
	if (bc_store_subscribe(d->st, "dir_principal", on_principal_change, d, &err) ||
	    bc_store_subscribe(d->st, "dir_keys", on_keys_change, d, &err))
		bc_log_warn("directory: no change notifications (%s); caches rely on this replica's own changes",
			    err.msg);
	return BC_OK;
}

void dir_cache_free(struct dir *d)
{
	struct dir_cache *c = cache_of(d);
	if (!c)
		return;
	bc_store_unsubscribe(d->st, d); /* no notification reaches d once it is gone */
	for (int i = 0; i < CACHE_STRIPES; i++)
		pthread_mutex_destroy(&c->locks[i]);
	bc_wipe(c, sizeof(*c));
	free(c);
	d->cache = NULL;
}

void dir_cache_principal_gone(struct dir *d, const char *object_id)
{
	(void)object_id;
	atomic_fetch_add(&d->principal_epoch, 1);
}

static bool aud_matches(const char *aud, const char *const *audiences, size_t n)
{
	size_t al = strlen(aud);
	if (al > 0 && aud[al - 1] == '/')
		al--;
	for (size_t i = 0; i < n; i++) {
		size_t bl = strlen(audiences[i]);
		if (bl > 0 && audiences[i][bl - 1] == '/')
			bl--;
		if (al == bl && strncmp(aud, audiences[i], al) == 0)
			return true;
	}
	return false;
}

static int check_claims(const struct dir_claims *c, const char *tenant_id, const char *const *audiences, size_t naud,
			int64_t now, struct bc_error *err)
{
	if (now >= c->exp + BC_LIMIT_CLOCK_SKEW_S / 5)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token has expired");
	if (c->nbf && now + BC_LIMIT_CLOCK_SKEW_S / 5 < c->nbf)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token is not yet valid");
	if (tenant_id && strcmp(c->tid, tenant_id) != 0)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token was issued for another tenant");
	if (!aud_matches(c->aud, audiences, naud))
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token audience '%.128s' is not accepted here", c->aud);
	return BC_OK;
}

static int principal_alive(struct dir *d, const char *oid, struct bc_error *err)
{
	int64_t enabled = 0;
	bool found = false;
	struct bc_param p[] = {BC_PTEXT(oid)};
	int rc = bc_store_get_int(d->st, NULL, "SELECT enabled FROM dir_principals WHERE object_id = ?", p, 1,
				  &enabled, &found, err);
	if (rc)
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "cannot check the token's principal");
	if (!found)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "the token's principal no longer exists");
	if (!enabled)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "the token's principal is disabled");
	return BC_OK;
}

#define CLAIM_STR(field, name, required)                                                                       \
	do {                                                                                                   \
		const char *_v = bc_json_str(jwt.claims, name);                                                \
		if (!_v && required) {                                                                         \
			rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token has no '%s' claim", name);       \
			goto done;                                                                             \
		}                                                                                              \
		if (_v && strlen(_v) >= sizeof(c.field)) {                                                     \
			rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token claim '%s' is too long", name);  \
			goto done;                                                                             \
		}                                                                                              \
		snprintf(c.field, sizeof(c.field), "%s", _v ? _v : "");                                        \
	} while (0)

static int verify_full(struct dir *d, const char *token, size_t len, struct dir_claims *out, struct bc_error *err)
{
	struct bc_jwt jwt;
	struct bc_jwk *key = NULL;
	struct dir_claims c;
	int rc;
	bc_jwt_init(&jwt);
	memset(&c, 0, sizeof(c));
	if ((rc = bc_jwt_parse(&jwt, token, len, err))) {
		bc_error_wrap(err, "token is malformed");
		if (err)
			err->status = BC_ERR_UNAUTHENTICATED;
		rc = BC_ERR_UNAUTHENTICATED;
		goto done;
	}
	if (!jwt.claims) {
		rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token payload is not a JSON object");
		goto done;
	}
	/* The tenant decides the key set: tid first, then the key by kid within that tenant only. */
	CLAIM_STR(tid, "tid", true);
	if (!dir_id_ok(c.tid)) {
		rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token tenant is malformed");
		goto done;
	}
	if ((rc = dir_keys_find(d, jwt.kid, c.tid, &key, err)))
		goto done;
	if ((rc = bc_jwt_verify(&jwt, key, "RS256", err))) {
		if (err)
			err->status = BC_ERR_UNAUTHENTICATED;
		rc = BC_ERR_UNAUTHENTICATED;
		goto done;
	}
	const char *iss = bc_json_str(jwt.claims, "iss");
	char v1[DIR_URL_MAX + 64], v2[DIR_URL_MAX + 64];
	dir_issuer(d, c.tid, 1, v1, sizeof(v1));
	dir_issuer(d, c.tid, 2, v2, sizeof(v2));
	if (!iss || (strcmp(iss, v1) != 0 && strcmp(iss, v2) != 0)) {
		rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token issuer is not this directory");
		goto done;
	}
	CLAIM_STR(oid, "oid", true);
	CLAIM_STR(aud, "aud", true);
	CLAIM_STR(idtyp, "idtyp", false);
	CLAIM_STR(uti, "uti", false);
	CLAIM_STR(xms_mirid, "xms_mirid", false);
	const char *appid = bc_json_str(jwt.claims, "appid");
	if (!appid)
		appid = bc_json_str(jwt.claims, "azp");
	snprintf(c.appid, sizeof(c.appid), "%s", appid && strlen(appid) < sizeof(c.appid) ? appid : "");
	c.exp = bc_json_int(jwt.claims, "exp", 0);
	c.nbf = bc_json_int(jwt.claims, "nbf", 0);
	c.iat = bc_json_int(jwt.claims, "iat", 0);
	if (!c.exp) {
		rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token has no 'exp' claim");
		goto done;
	}
	*out = c;
	rc = BC_OK;
done:
	bc_jwk_free(key);
	bc_jwt_release(&jwt);
	return rc;
}

/* SHA-256 of the token, the cache key. The digest is fetched once and each thread keeps its
 * context: EVP_Digest would fetch and allocate both on every request. */
static EVP_MD *sha256_md;
static pthread_key_t md_ctx_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void md_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&md_ctx_key, md_ctx_free) != 0)
		sha256_md = NULL; /* token_hash falls back to EVP_Digest */
}

static int token_hash(const char *token, size_t len, uint8_t h[32])
{
	unsigned int hl = 0;
	pthread_once(&md_once, md_init);
	EVP_MD_CTX *ctx = sha256_md ? pthread_getspecific(md_ctx_key) : NULL;
	if (sha256_md && !ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(md_ctx_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	if (!ctx)
		return EVP_Digest(token, len, h, &hl, EVP_sha256(), NULL) == 1 ? 0 : -1;
	return EVP_DigestInit_ex2(ctx, sha256_md, NULL) == 1 && EVP_DigestUpdate(ctx, token, len) == 1 &&
			       EVP_DigestFinal_ex(ctx, h, &hl) == 1
		       ? 0
		       : -1;
}

int dir_token_verify(struct dir *d, const char *token, size_t len, const char *tenant_id,
		     const char *const *audiences, size_t naudiences, struct dir_claims *out, struct bc_error *err)
{
	if (!token || len == 0)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "no token");
	if (len > BC_LIMIT_JWT_BYTES)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token longer than %d bytes", BC_LIMIT_JWT_BYTES);
	uint8_t h[32];
	if (token_hash(token, len, h) != 0)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash token");
	struct dir_cache *cache = cache_of(d);
	size_t slot = ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16) % CACHE_SLOTS;
	pthread_mutex_t *lock = &cache->locks[slot % CACHE_STRIPES];
	struct dir_cache_slot *s = &cache->slots[slot];
	int64_t now = bc_now();
	uint64_t epoch = atomic_load(&d->principal_epoch);
	struct dir_claims c;
	bool hit = false, fresh = false;

	pthread_mutex_lock(lock);
	if (s->used && memcmp(s->hash, h, 32) == 0) {
		c = s->claims;
		hit = true;
		fresh = s->epoch == epoch;
	}
	pthread_mutex_unlock(lock);
	bc_metrics_count(hit ? "directory_token_cache_hits" : "directory_token_cache_misses", 1);

	int rc;
	if (!hit && (rc = verify_full(d, token, len, &c, err)))
		return rc;
	if ((rc = check_claims(&c, tenant_id, audiences, naudiences, now, err)))
		return rc;
	if (!fresh && (rc = principal_alive(d, c.oid, err)))
		return rc;
	if (!hit || !fresh) {
		pthread_mutex_lock(lock);
		memcpy(s->hash, h, 32);
		s->claims = c;
		s->epoch = epoch;
		s->used = true;
		pthread_mutex_unlock(lock);
	}
	if (out)
		*out = c;
	return BC_OK;
}
