/* JOSE over OpenSSL 3's EVP layer.
 *
 * cjose 0.6.2 keeps its keys as legacy RSA / EC_KEY objects behind OpenSSL's deprecated APIs
 * and copies and re-serialises on every JWS; here a struct bc_jwk owns exactly one EVP_PKEY that
 * every signature and verification reuses (a token issuance costs one RSA signature and nothing
 * else), and JWK members go straight to and from OSSL_PARAMs. cjose serves as the independent
 * implementation in the unit tests instead.
 *
 * An EVP_PKEY is read-only after import, so many threads may sign or verify with one key at
 * once: each operation makes its own EVP_PKEY_CTX.
 *
 * This file: the algorithm and curve tables, digests, the key object and key sets (JWKS). JWK and
 * PEM import and export are in jose_key.c, signatures and JWS in jose_jws.c, JWT parsing and claim
 * checks in jose_jwt.c; jose_int.h is what they share. */
#include "core/jose.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/jose_int.h"
#include "core/json.h"
#include "core/limits.h"

struct bc_jwks {
	struct bc_jwk **keys; /* owned, each owned */
	size_t n, alloc;
};

static const struct curve curves[] = {
	{"P-256", "prime256v1", 256, 32, "ES256", MD_256},
	{"P-384", "secp384r1", 384, 48, "ES384", MD_384},
	{"P-521", "secp521r1", 521, 66, "ES512", MD_512},
};

static const struct alg algs[] = {
	{"RS256", ALG_RS, MD_256}, {"RS384", ALG_RS, MD_384}, {"RS512", ALG_RS, MD_512},
	{"PS256", ALG_PS, MD_256}, {"PS384", ALG_PS, MD_384}, {"PS512", ALG_PS, MD_512},
	{"ES256", ALG_ES, MD_256}, {"ES384", ALG_ES, MD_384}, {"ES512", ALG_ES, MD_512},
};

/* Digests are fetched once: an implicit fetch per EVP_Digest call takes the provider store's
 * lock on every token. */
static EVP_MD *mds[MD_COUNT];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void)
{
	static const char *const names[MD_COUNT] = {"SHA256", "SHA384", "SHA512"};
	for (int i = 0; i < MD_COUNT; i++)
		mds[i] = EVP_MD_fetch(NULL, names[i], NULL);
}

const EVP_MD *bc_jose_md(enum md_id id)
{
	pthread_once(&mds_once, fetch_mds);
	return mds[id];
}

const struct alg *bc_jose_find_alg(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	return NULL;
}

const struct curve *bc_jose_curve_by(const char *crv, const char *group)
{
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if ((crv && strcmp(curves[i].crv, crv) == 0) || (group && strcmp(curves[i].group, group) == 0))
			return &curves[i];
	return NULL;
}

const EVP_MD *bc_alg_md(const char *alg)
{
	const struct alg *a = bc_jose_find_alg(alg);
	return a ? bc_jose_md(a->md) : NULL;
}

/* ---- key objects ---------------------------------------------------------------------- */

bool bc_jose_kid_ok(const char *kid, size_t len)
{
	if (len == 0 || len > BC_LIMIT_KID)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)kid[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Classifies pkey and wraps it (taking a reference) after checking it is a key we support. */
int bc_jose_wrap_pkey(struct bc_jwk **out, EVP_PKEY *pkey, struct bc_error *err)
{
	struct bc_jwk *k = calloc(1, sizeof(*k));
	if (!k)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory for a key");
	int rc;
	BIGNUM *priv = NULL;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->kty = KTY_RSA;
		k->bits = EVP_PKEY_get_bits(pkey);
		if (k->bits < BC_LIMIT_RSA_BITS_MIN || k->bits > BC_LIMIT_RSA_BITS_MAX) {
			rc = bc_error_set(err, BC_ERR_INVALID, "unsupported rsa key size %d bits", k->bits);
			goto fail;
		}
		ERR_set_mark();
		k->priv = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &priv) == 1;
		ERR_pop_to_mark();
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64];
		k->kty = KTY_EC;
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1 ||
		    !(k->crv = bc_jose_curve_by(NULL, group))) {
			ERR_clear_error();
			rc = bc_error_set(err, BC_ERR_INVALID, "unsupported ec curve");
			goto fail;
		}
		k->bits = k->crv->bits;
		ERR_set_mark();
		k->priv = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1;
		ERR_pop_to_mark();
	} else {
		rc = bc_error_set(err, BC_ERR_INVALID, "unsupported key type (want RSA or EC)");
		goto fail;
	}
	BN_clear_free(priv);
	if (EVP_PKEY_up_ref(pkey) != 1) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot reference key");
		goto fail;
	}
	k->pkey = pkey;
	*out = k;
	return BC_OK;
fail:
	free(k);
	return rc;
}

int bc_jwk_from_pkey(struct bc_jwk **out, EVP_PKEY *pkey, struct bc_error *err)
{
	if (!pkey)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	return bc_jose_wrap_pkey(out, pkey, err);
}

int bc_jwk_generate(struct bc_jwk **out, const char *kty, int bits, struct bc_error *err)
{
	EVP_PKEY *pkey = NULL;
	if (kty && strcmp(kty, "RSA") == 0) {
		if (bits != 2048 && bits != 3072 && bits != 4096)
			return bc_error_set(err, BC_ERR_INVALID, "unsupported rsa key size %d", bits);
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else if (kty && strcmp(kty, "EC") == 0) {
		const struct curve *c = NULL;
		for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
			if (curves[i].bits == bits)
				c = &curves[i];
		if (!c)
			return bc_error_set(err, BC_ERR_INVALID, "unsupported ec key size %d", bits);
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->group);
	} else {
		return bc_error_set(err, BC_ERR_INVALID, "unsupported key type %s", kty ? kty : "(null)");
	}
	if (!pkey)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "key generation failed");
	int rc = bc_jose_wrap_pkey(out, pkey, err);
	EVP_PKEY_free(pkey);
	return rc;
}

void bc_jwk_free(struct bc_jwk *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->kid);
	free(k);
}

const char *bc_jwk_kid(const struct bc_jwk *k)
{
	return k->kid;
}

int bc_jwk_set_kid(struct bc_jwk *k, const char *kid)
{
	char *copy = NULL;
	if (kid) {
		if (!bc_jose_kid_ok(kid, strlen(kid)))
			return BC_ERR_INVALID;
		if (!(copy = strdup(kid)))
			return BC_ERR_NOMEM;
	}
	free(k->kid);
	k->kid = copy;
	return BC_OK;
}

const char *bc_jwk_kty(const struct bc_jwk *k)
{
	return k->kty == KTY_RSA ? "RSA" : "EC";
}

bool bc_jwk_is_private(const struct bc_jwk *k)
{
	return k->priv;
}

int bc_jwk_bits(const struct bc_jwk *k)
{
	return k->bits;
}

EVP_PKEY *bc_jwk_pkey(const struct bc_jwk *k)
{
	return k->pkey;
}

const char *bc_jwk_default_alg(const struct bc_jwk *k)
{
	return k->kty == KTY_RSA ? "RS256" : k->crv->alg;
}

bool bc_jose_alg_allowed(const struct bc_jwk *k, const struct alg *a)
{
	if (!a)
		return false;
	if (k->kty == KTY_RSA)
		return a->kind == ALG_RS || a->kind == ALG_PS;
	return a->kind == ALG_ES && strcmp(a->name, k->crv->alg) == 0;
}

bool bc_jwk_alg_allowed(const struct bc_jwk *k, const char *alg)
{
	return k && bc_jose_alg_allowed(k, bc_jose_find_alg(alg));
}

/* ---- JWKS ------------------------------------------------------------------------------ */

struct bc_jwks *bc_jwks_new(void)
{
	return calloc(1, sizeof(struct bc_jwks));
}

void bc_jwks_free(struct bc_jwks *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		bc_jwk_free(set->keys[i]);
	free(set->keys);
	free(set);
}

int bc_jwks_add(struct bc_jwks *set, struct bc_jwk *k)
{
	if (!set || !k) {
		bc_jwk_free(k);
		return BC_ERR_INVALID;
	}
	if (set->n >= BC_LIMIT_JWKS_KEYS) {
		bc_jwk_free(k);
		return BC_ERR_LIMIT;
	}
	if (set->n == set->alloc) {
		size_t na = set->alloc ? set->alloc * 2 : 4;
		struct bc_jwk **nk = realloc(set->keys, na * sizeof(*nk));
		if (!nk) {
			bc_jwk_free(k);
			return BC_ERR_NOMEM;
		}
		set->keys = nk;
		set->alloc = na;
	}
	set->keys[set->n++] = k;
	return BC_OK;
}

size_t bc_jwks_count(const struct bc_jwks *set)
{
	return set ? set->n : 0;
}

const struct bc_jwk *bc_jwks_get(const struct bc_jwks *set, size_t i)
{
	return set && i < set->n ? set->keys[i] : NULL;
}

const struct bc_jwk *bc_jwks_find(const struct bc_jwks *set, const char *kid)
{
	if (!set || !kid)
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		if (set->keys[i]->kid && strcmp(set->keys[i]->kid, kid) == 0)
			return set->keys[i];
	return NULL;
}

int bc_jwks_parse(struct bc_jwks **out, const char *json, size_t len, struct bc_error *err)
{
	json_t *j = NULL;
	int rc = bc_json_parse(json, len, BC_LIMIT_JSON_BYTES, &j, err);
	if (rc) {
		bc_error_wrap(err, "bad jwks");
		return rc;
	}
	const json_t *keys = json_object_get(j, "keys");
	struct bc_jwks *set = NULL;
	if (!json_is_array(keys)) {
		rc = bc_error_set(err, BC_ERR_INVALID, "jwks has no keys array");
		goto out;
	}
	if (json_array_size(keys) > BC_LIMIT_JWKS_KEYS) {
		rc = bc_error_set(err, BC_ERR_LIMIT, "jwks has %zu keys, limit %d", json_array_size(keys),
				  BC_LIMIT_JWKS_KEYS);
		goto out;
	}
	if (!(set = bc_jwks_new())) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory for a jwks");
		goto out;
	}
	size_t i;
	const json_t *v;
	json_array_foreach(keys, i, v) {
		/* RFC 7517 section 5: skip keys of types or parameters we do not understand. */
		struct bc_jwk *k = NULL;
		if (bc_jwk_from_jansson(&k, v, NULL) != BC_OK)
			continue;
		if ((rc = bc_jwks_add(set, k))) {
			rc = bc_error_set(err, rc, "cannot add a key to the jwks");
			goto out;
		}
	}
	*out = set;
	set = NULL;
out:
	bc_jwks_free(set);
	json_decref(j);
	return rc;
}

json_t *bc_jwks_to_jansson(const struct bc_jwks *set)
{
	json_t *arr = json_array();
	json_t *o = json_object();
	if (!arr || !o || json_object_set_new(o, "keys", arr) != 0) {
		json_decref(o);
		return NULL;
	}
	for (size_t i = 0; set && i < set->n; i++) {
		json_t *k = bc_jwk_to_jansson(set->keys[i], false);
		if (!k || json_array_append_new(arr, k) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}
