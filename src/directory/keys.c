/* Signing keys: per tenant, sealed at rest, published before they sign, kept published until
 * the longest token they signed has expired. The current key of a tenant is derived (the newest
 * whose signs_from has passed), so promotion needs no timer and replicas agree by reading. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

#define KEY_RELOAD_MIN_MS 1000

void dir_keyset_release(struct dir_keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		bc_jwk_free(ks->keys[i].jwk);
		json_decref(ks->keys[i].public_jwk);
	}
	free(ks->keys);
	ks->keys = NULL;
	ks->n = 0;
}

struct load_ctx {
	struct dir *d;
	struct dir_keyset ks;
	size_t alloc;
	int rc;
	struct bc_error *err;
};

static int load_row(void *vctx, const struct bc_row *row)
{
	struct load_ctx *c = vctx;
	if (c->ks.n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 8;
		struct dir_key *nk = realloc(c->ks.keys, na * sizeof(*nk));
		if (!nk) {
			c->rc = bc_error_set(c->err, BC_ERR_NOMEM, "out of memory");
			return 1;
		}
		c->ks.keys = nk;
		c->alloc = na;
	}
	struct dir_key *k = &c->ks.keys[c->ks.n];
	memset(k, 0, sizeof(*k));
	const char *kid = bc_row_text(row, 0), *sealed = bc_row_text(row, 2), *pub = bc_row_text(row, 3);
	snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
	snprintf(k->tenant_id, sizeof(k->tenant_id), "%s", bc_row_text(row, 1) ? bc_row_text(row, 1) : "");
	k->signs_from = bc_row_int(row, 4);
	k->seq = bc_row_int(row, 5);
	char aad[128];
	snprintf(aad, sizeof(aad), "dir_signing_keys:%s", k->kid);
	struct bc_buf plain = {0};
	int rc = bc_unseal(c->d->seal, aad, sealed ? sealed : "", sealed ? strlen(sealed) : 0, &plain, c->err);
	if (rc == BC_OK)
		rc = bc_jwk_from_json(&k->jwk, plain.data, plain.len, c->err);
	bc_buf_wipe(&plain);
	if (rc == BC_OK && (rc = bc_jwk_set_kid(k->jwk, k->kid)))
		bc_error_set(c->err, rc, "out of memory");
	if (rc == BC_OK && (rc = bc_json_parse(pub ? pub : "", pub ? strlen(pub) : 0, 0, &k->public_jwk, c->err)) == BC_OK) {
		char iss[DIR_URL_MAX + 64];
		dir_issuer(c->d, k->tenant_id, 2, iss, sizeof(iss));
		json_object_set_new(k->public_jwk, "issuer", json_string(iss));
	}
	if (rc) {
		bc_jwk_free(k->jwk);
		json_decref(k->public_jwk);
		c->rc = bc_error_wrap(c->err, "signing key %s", k->kid);
		return 1;
	}
	c->ks.n++;
	return 0;
}

/* Is a newer than b in signing order? */
static bool newer(const struct dir_key *a, const struct dir_key *b)
{
	return a->signs_from > b->signs_from || (a->signs_from == b->signs_from && a->seq > b->seq);
}

/* Fills retire_at: a key is superseded by the next newer key of its tenant that has started
 * signing; it stays published for one token lifetime (plus skew) after that. */
static void compute_retirement(struct dir *d, struct dir_keyset *ks, int64_t now)
{
	for (size_t i = 0; i < ks->n; i++) {
		ks->keys[i].retire_at = 0;
		for (size_t j = 0; j < ks->n; j++) {
			if (i == j || strcmp(ks->keys[i].tenant_id, ks->keys[j].tenant_id) != 0)
				continue;
			int64_t sf = ks->keys[j].signs_from;
			if (newer(&ks->keys[j], &ks->keys[i]) && sf <= now &&
			    (ks->keys[i].retire_at == 0 || sf + d->cfg.token_lifetime_s + BC_LIMIT_CLOCK_SKEW_S <
								   ks->keys[i].retire_at))
				ks->keys[i].retire_at = sf + d->cfg.token_lifetime_s + BC_LIMIT_CLOCK_SKEW_S;
		}
	}
}

int dir_keys_load(struct dir *d, struct bc_error *err)
{
	struct load_ctx c = {.d = d, .err = err};
	int rc = bc_store_exec(d->st, NULL,
			       "SELECT kid, tenant_id, sealed_jwk, public_jwk, signs_from, seq FROM dir_signing_keys"
			       " ORDER BY signs_from, seq",
			       NULL, 0, load_row, &c, NULL, err);
	if (rc == BC_OK)
		rc = c.rc;
	if (rc) {
		dir_keyset_release(&c.ks);
		return rc;
	}
	compute_retirement(d, &c.ks, bc_now());
	pthread_rwlock_wrlock(&d->keys_lock);
	struct dir_keyset old = d->keys;
	d->keys = c.ks;
	pthread_rwlock_unlock(&d->keys_lock);
	atomic_store(&d->keys_loaded_ms, bc_now_ms());
	dir_keyset_release(&old);
	return BC_OK;
}

/* Tells every replica to reload its keys. */
static void notify_keys(struct dir *d, const char *kid)
{
	struct bc_error err;
	if (bc_store_notify(d->st, NULL, "dir_keys", kid, &err))
		bc_log_warn("directory: cannot announce key %s: %s", kid, err.msg);
}

static int insert_key(struct dir *d, const char *tenant_id, int64_t signs_from, char kid_out[64],
		      struct bc_error *err)
{
	struct bc_jwk *k = NULL;
	struct bc_buf priv = {0}, sealed = {0};
	char kid[44], *pub = NULL, aad[128];
	json_t *pj = NULL, *sj = NULL;
	int rc;
	if ((rc = bc_jwk_generate(&k, "RSA", 2048, err)) || (rc = bc_jwk_thumbprint(k, kid, err)))
		goto done;
	if ((rc = bc_jwk_set_kid(k, kid))) {
		bc_error_set(err, rc, "out of memory");
		goto done;
	}
	sj = bc_jwk_to_jansson(k, true);
	pj = bc_jwk_to_jansson(k, false);
	if (!sj || !pj) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "cannot export signing key");
		goto done;
	}
	json_object_set_new(pj, "use", json_string("sig"));
	json_object_set_new(pj, "alg", json_string("RS256"));
	json_object_set_new(pj, "x5t", json_string(kid));
	snprintf(aad, sizeof(aad), "dir_signing_keys:%s", kid);
	if ((rc = bc_json_dump(sj, &priv)) || (rc = bc_seal(d->seal, aad, priv.data, priv.len, &sealed, err)) ||
	    !(pub = bc_json_dumps(pj))) {
		rc = rc ? rc : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	struct bc_param p[] = {BC_PTEXT(kid), BC_PTEXT(tenant_id), BC_PTEXT(sealed.data), BC_PTEXT(pub),
			       BC_PINT(bc_now()), BC_PINT(signs_from)};
	if ((rc = bc_store_exec(d->st, NULL,
				"INSERT INTO dir_signing_keys (kid, tenant_id, sealed_jwk, public_jwk, created, signs_from, seq)"
				" SELECT ?, ?, ?, ?, ?, ?, COALESCE(MAX(seq), 0) + 1 FROM dir_signing_keys",
				p, 6, NULL, NULL, NULL, err)))
		goto done;
	if (kid_out)
		snprintf(kid_out, 64, "%s", kid);
	bc_log_info("directory: new signing key %s for tenant %s, signs from %lld", kid, tenant_id,
		    (long long)signs_from);
	notify_keys(d, kid);
done:
	if (sj) {
		/* the private JWK text lives in jansson's strings too; drop it promptly */
		json_decref(sj);
	}
	json_decref(pj);
	free(pub);
	bc_buf_wipe(&priv);
	bc_buf_release(&sealed);
	bc_jwk_free(k);
	return rc;
}

/* The index of the tenant's current signing key, or -1. Caller holds keys_lock. */
static long current_key(const struct dir_keyset *ks, const char *tenant_id, int64_t now)
{
	long best = -1;
	for (size_t i = 0; i < ks->n; i++)
		if (strcmp(ks->keys[i].tenant_id, tenant_id) == 0 && ks->keys[i].signs_from <= now &&
		    (best < 0 || newer(&ks->keys[i], &ks->keys[best])))
			best = (long)i;
	return best;
}

int dir_keys_ensure(struct dir *d, const char *tenant_id, struct bc_error *err)
{
	pthread_rwlock_rdlock(&d->keys_lock);
	long cur = current_key(&d->keys, tenant_id, bc_now());
	pthread_rwlock_unlock(&d->keys_lock);
	if (cur >= 0)
		return BC_OK;
	int rc = insert_key(d, tenant_id, bc_now(), NULL, err);
	if (rc)
		return rc;
	return dir_keys_load(d, err);
}

int dir_keys_sign(struct dir *d, const char *tenant_id, const json_t *claims, struct bc_buf *out,
		  struct bc_error *err)
{
	int64_t now = bc_now();
	char *payload = bc_json_dumps(claims);
	if (!payload)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	int rc;
	pthread_rwlock_rdlock(&d->keys_lock);
	long cur = current_key(&d->keys, tenant_id, now);
	if (cur < 0) {
		rc = bc_error_set(err, BC_ERR_UNAVAILABLE, "tenant %s has no signing key", tenant_id);
	} else {
		json_t *hdr = json_pack("{s:s, s:s, s:s}", "typ", "JWT", "kid", d->keys.keys[cur].kid, "x5t",
					d->keys.keys[cur].kid);
		rc = hdr ? bc_jws_sign(d->keys.keys[cur].jwk, "RS256", hdr, payload, strlen(payload), out, err)
			 : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		json_decref(hdr);
	}
	pthread_rwlock_unlock(&d->keys_lock);
	free(payload);
	return rc;
}

static bool published(const struct dir_key *k, int64_t now)
{
	return k->retire_at == 0 || k->retire_at > now;
}

json_t *dir_keys_jwks(struct dir *d, const char *tenant_id)
{
	int64_t now = bc_now();
	json_t *keys = json_array();
	pthread_rwlock_rdlock(&d->keys_lock);
	for (size_t i = 0; keys && i < d->keys.n; i++) {
		const struct dir_key *k = &d->keys.keys[i];
		if ((!tenant_id || strcmp(k->tenant_id, tenant_id) == 0) && published(k, now))
			json_array_append(keys, k->public_jwk);
	}
	pthread_rwlock_unlock(&d->keys_lock);
	return keys ? json_pack("{s:o}", "keys", keys) : NULL;
}

static int find_locked(struct dir *d, const char *kid, const char *tenant_id, struct bc_jwk **out, bool *found,
		       struct bc_error *err)
{
	int64_t now = bc_now();
	int rc = BC_OK;
	*found = false;
	pthread_rwlock_rdlock(&d->keys_lock);
	for (size_t i = 0; i < d->keys.n; i++) {
		const struct dir_key *k = &d->keys.keys[i];
		if (strcmp(k->kid, kid) != 0)
			continue;
		*found = true;
		if (strcmp(k->tenant_id, tenant_id) != 0)
			rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "signing key belongs to another tenant");
		else if (!published(k, now))
			rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "signing key %s is retired", kid);
		else
			rc = bc_jwk_from_pkey(out, bc_jwk_pkey(k->jwk), err);
		break;
	}
	pthread_rwlock_unlock(&d->keys_lock);
	return rc;
}

int dir_keys_find(struct dir *d, const char *kid, const char *tenant_id, struct bc_jwk **out, struct bc_error *err)
{
	if (!kid || !*kid || strlen(kid) > BC_LIMIT_KID)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "token has no usable kid");
	bool found;
	int rc = find_locked(d, kid, tenant_id, out, &found, err);
	if (found)
		return rc;
	/* Another replica may have published a key we have not loaded yet; reload, at most once a
	 * second, so that unknown kids cannot make every request hit the store. */
	int64_t now = bc_now_ms();
	long long last = atomic_load(&d->keys_loaded_ms);
	if (now - last >= KEY_RELOAD_MIN_MS && atomic_compare_exchange_strong(&d->keys_loaded_ms, &last, now)) {
		struct bc_error e2;
		if (dir_keys_load(d, &e2) != BC_OK)
			bc_log_warn("directory: cannot reload signing keys: %s", e2.msg);
		rc = find_locked(d, kid, tenant_id, out, &found, err);
		if (found)
			return rc;
	}
	return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "signing key '%.64s' is not one of this directory's", kid);
}

int dir_rotate(struct dir *d, const char *tenant_id, bool activate, json_t **result, struct bc_error *err)
{
	int64_t now = bc_now();
	char kid[64] = "";
	int rc;
	if (!tenant_id)
		tenant_id = d->default_tenant;
	if (!dir_tenant_exists(d, tenant_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "tenant '%s' not found", tenant_id);
	if ((rc = dir_keys_load(d, err)))
		return rc;
	/* A key already published but not yet signing: activate promotes it now; otherwise publish one. */
	pthread_rwlock_rdlock(&d->keys_lock);
	for (size_t i = 0; i < d->keys.n; i++)
		if (strcmp(d->keys.keys[i].tenant_id, tenant_id) == 0 && d->keys.keys[i].signs_from > now)
			snprintf(kid, sizeof(kid), "%s", d->keys.keys[i].kid);
	pthread_rwlock_unlock(&d->keys_lock);
	if (!kid[0]) {
		int64_t from = now + (activate ? 0 : d->cfg.key_prepublish_s);
		if ((rc = insert_key(d, tenant_id, from, kid, err)))
			return rc;
	} else if (activate) {
		struct bc_param p[] = {BC_PINT(now), BC_PTEXT(kid)};
		if ((rc = bc_store_exec(d->st, NULL,
					"UPDATE dir_signing_keys SET signs_from = ?,"
					" seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM dir_signing_keys) WHERE kid = ?",
					p, 2, NULL, NULL, NULL, err)))
			return rc;
		notify_keys(d, kid);
	}
	if ((rc = dir_keys_load(d, err)))
		return rc;
	if (result) {
		json_t *arr = json_array();
		pthread_rwlock_rdlock(&d->keys_lock);
		long cur = current_key(&d->keys, tenant_id, bc_now());
		for (size_t i = 0; arr && i < d->keys.n; i++) {
			const struct dir_key *k = &d->keys.keys[i];
			if (strcmp(k->tenant_id, tenant_id) != 0 || !published(k, bc_now()))
				continue;
			json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s}", "kid", k->kid, "signsFrom",
							     (json_int_t)k->signs_from, "retireAt",
							     (json_int_t)k->retire_at, "state",
							     (long)i == cur ? "signing" : k->signs_from > now ? "published" : "retiring"));
		}
		pthread_rwlock_unlock(&d->keys_lock);
		*result = arr ? json_pack("{s:s, s:s, s:o}", "tenantId", tenant_id, "newKid", kid, "keys", arr) : NULL;
	}
	return BC_OK;
}

int dir_rotate_keys(struct dir *d, struct bc_error *err)
{
	return dir_rotate(d, NULL, false, NULL, err);
}

int dir_reload(struct dir *d, struct bc_error *err)
{
	return dir_keys_load(d, err);
}
