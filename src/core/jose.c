/* JOSE over OpenSSL 3's EVP layer.
 *
 * cjose 0.6.2 keeps its keys as legacy RSA / EC_KEY objects behind OpenSSL's deprecated APIs
 * and copies and re-serialises on every JWS; here a struct bc_jwk owns exactly one EVP_PKEY that
 * every signature and verification reuses (a token issuance costs one RSA signature and nothing
 * else), and JWK members go straight to and from OSSL_PARAMs. cjose serves as the independent
 * implementation in the unit tests instead.
 *
 * An EVP_PKEY is read-only after import, so many threads may sign or verify with one key at
 * once: each operation makes its own EVP_PKEY_CTX. */
#include "core/jose.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/util.h"

#define MAX_SIG_BYTES (BC_LIMIT_RSA_BITS_MAX / 8) /* RSA signature of the largest modulus */
#define MAX_DER_ECDSA 160                         /* DER ECDSA-Sig-Value for P-521 is <= 139 */
#define EC_FIELD_MAX 66                           /* P-521 field element bytes */

enum kty { KTY_RSA = 1, KTY_EC };
enum alg_kind { ALG_RS, ALG_PS, ALG_ES };
enum md_id { MD_256, MD_384, MD_512, MD_COUNT };

struct bc_jwk {
	EVP_PKEY *pkey;           /* owned */
	char *kid;                /* owned, NULL when unset */
	const struct curve *crv;  /* EC only: static table entry */
	enum kty kty;
	int bits;
	bool priv;
};

struct bc_jwks {
	struct bc_jwk **keys; /* owned, each owned */
	size_t n, alloc;
};

struct curve {
	const char *crv;   /* JWK name */
	const char *group; /* OpenSSL group name */
	int bits;
	size_t field;      /* bytes of a coordinate / of d */
	const char *alg;   /* the one JWS alg this curve signs with */
	enum md_id md;
};

static const struct curve curves[] = {
	{"P-256", "prime256v1", 256, 32, "ES256", MD_256},
	{"P-384", "secp384r1", 384, 48, "ES384", MD_384},
	{"P-521", "secp521r1", 521, 66, "ES512", MD_512},
};

struct alg {
	const char *name;
	enum alg_kind kind;
	enum md_id md;
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

static const EVP_MD *md_of(enum md_id id)
{
	pthread_once(&mds_once, fetch_mds);
	return mds[id];
}

static const struct alg *find_alg(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	return NULL;
}

static const struct curve *curve_by(const char *crv, const char *group)
{
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if ((crv && strcmp(curves[i].crv, crv) == 0) || (group && strcmp(curves[i].group, group) == 0))
			return &curves[i];
	return NULL;
}

const EVP_MD *bc_alg_md(const char *alg)
{
	const struct alg *a = find_alg(alg);
	return a ? md_of(a->md) : NULL;
}

/* ---- key objects ---------------------------------------------------------------------- */

static bool kid_ok(const char *kid, size_t len)
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
static int wrap_pkey(struct bc_jwk **out, EVP_PKEY *pkey, struct bc_error *err)
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
		    !(k->crv = curve_by(NULL, group))) {
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
	return wrap_pkey(out, pkey, err);
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
	int rc = wrap_pkey(out, pkey, err);
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
		if (!kid_ok(kid, strlen(kid)))
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

static bool alg_allowed(const struct bc_jwk *k, const struct alg *a)
{
	if (!a)
		return false;
	if (k->kty == KTY_RSA)
		return a->kind == ALG_RS || a->kind == ALG_PS;
	return a->kind == ALG_ES && strcmp(a->name, k->crv->alg) == 0;
}

bool bc_jwk_alg_allowed(const struct bc_jwk *k, const char *alg)
{
	return k && alg_allowed(k, find_alg(alg));
}

/* ---- JWK import ------------------------------------------------------------------------ */

/* Decodes the base64url member name of o into a BIGNUM. Absent: *out = NULL, BC_OK unless
 * required. Secret members get a BN in secure memory and their bytes wiped. */
static int get_bn(const json_t *o, const char *name, bool required, bool secret, size_t maxbytes, BIGNUM **out,
		  struct bc_error *err)
{
	*out = NULL;
	const json_t *v = json_object_get(o, name);
	if (!v) {
		if (required)
			return bc_error_set(err, BC_ERR_INVALID, "jwk member %s missing", name);
		return BC_OK;
	}
	if (!json_is_string(v))
		return bc_error_set(err, BC_ERR_INVALID, "jwk member %s is not a string", name);
	size_t slen = json_string_length(v);
	if (slen == 0 || slen > (maxbytes + 2) / 3 * 4)
		return bc_error_set(err, BC_ERR_INVALID, "jwk member %s has a bad length", name);
	uint8_t *raw = NULL;
	size_t rlen = 0;
	int rc = bc_b64url_decode(json_string_value(v), slen, &raw, &rlen, err);
	if (rc) {
		bc_error_wrap(err, "jwk member %s", name);
		return rc;
	}
	if (rlen == 0 || rlen > maxbytes) {
		bc_wipe(raw, rlen);
		free(raw);
		return bc_error_set(err, BC_ERR_INVALID, "jwk member %s has a bad length", name);
	}
	BIGNUM *bn = secret ? BN_secure_new() : BN_new();
	if (!bn || !BN_bin2bn(raw, (int)rlen, bn)) {
		BN_clear_free(bn);
		bn = NULL;
	}
	if (secret)
		bc_wipe(raw, rlen);
	free(raw);
	if (!bn)
		return bc_error_openssl(err, BC_ERR_NOMEM, "cannot decode jwk member");
	*out = bn;
	return BC_OK;
}

static int pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, bool priv, EVP_PKEY **out, struct bc_error *err)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;
	int rc = BC_OK;
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
		rc = bc_error_openssl(err, BC_ERR_INVALID, "bad jwk key material");
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params); /* clears the secure part holding private members */
	if (rc == BC_OK)
		*out = pkey;
	return rc;
}

static int rsa_from_json(const json_t *o, EVP_PKEY **out, struct bc_error *err)
{
	static const char *const crt_json[5] = {"p", "q", "dp", "dq", "qi"};
	static const char *const crt_ossl[5] = {OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
						OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
						OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	const size_t nmax = BC_LIMIT_RSA_BITS_MAX / 8;
	BIGNUM *n = NULL, *e = NULL, *d = NULL, *crt[5] = {0};
	BN_CTX *bnctx = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	int rc, ncrt = 0;
	if ((rc = get_bn(o, "n", true, false, nmax, &n, err)) || (rc = get_bn(o, "e", true, false, 8, &e, err)) ||
	    (rc = get_bn(o, "d", false, true, nmax, &d, err)))
		goto out;
	int bits = BN_num_bits(n);
	if (bits < BC_LIMIT_RSA_BITS_MIN || bits > BC_LIMIT_RSA_BITS_MAX || !BN_is_odd(n)) {
		rc = bc_error_set(err, BC_ERR_INVALID, "unsupported rsa modulus (%d bits)", bits);
		goto out;
	}
	if (!BN_is_odd(e) || BN_is_one(e)) {
		rc = bc_error_set(err, BC_ERR_INVALID, "bad rsa public exponent");
		goto out;
	}
	if (json_object_get(o, "oth")) {
		rc = bc_error_set(err, BC_ERR_INVALID, "multi-prime rsa keys are not supported");
		goto out;
	}
	if (d) {
		for (int i = 0; i < 5; i++) {
			if ((rc = get_bn(o, crt_json[i], false, true, nmax, &crt[i], err)))
				goto out;
			ncrt += crt[i] != NULL;
		}
		if (ncrt != 0 && ncrt != 5) {
			rc = bc_error_set(err, BC_ERR_INVALID, "rsa jwk has some but not all of p q dp dq qi");
			goto out;
		}
		if (ncrt == 5) { /* n = p q, or the key would sign garbage */
			BIGNUM *pq = NULL;
			bnctx = BN_CTX_secure_new();
			if (!bnctx || !(pq = BN_CTX_get(bnctx)) || !BN_mul(pq, crt[0], crt[1], bnctx)) {
				rc = bc_error_openssl(err, BC_ERR_NOMEM, "cannot check rsa key");
				goto out;
			}
			if (BN_cmp(pq, n) != 0) {
				rc = bc_error_set(err, BC_ERR_INVALID, "rsa jwk: n is not p*q");
				goto out;
			}
		}
	}
	if (!(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (d && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d))) {
		rc = bc_error_openssl(err, BC_ERR_NOMEM, "cannot build rsa key");
		goto out;
	}
	for (int i = 0; i < ncrt; i++) {
		if (!OSSL_PARAM_BLD_push_BN(bld, crt_ossl[i], crt[i])) {
			rc = bc_error_openssl(err, BC_ERR_NOMEM, "cannot build rsa key");
			goto out;
		}
	}
	rc = pkey_fromdata("RSA", bld, d != NULL, out, err);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_CTX_free(bnctx);
	for (int i = 0; i < 5; i++)
		BN_clear_free(crt[i]);
	BN_clear_free(d);
	BN_free(e);
	BN_free(n);
	return rc;
}

static int ec_from_json(const json_t *o, EVP_PKEY **out, struct bc_error *err)
{
	const char *crv = json_string_value(json_object_get(o, "crv"));
	const struct curve *c = crv ? curve_by(crv, NULL) : NULL;
	if (!c)
		return bc_error_set(err, BC_ERR_INVALID, "unsupported or missing ec crv");
	BIGNUM *x = NULL, *y = NULL, *d = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *chk = NULL;
	uint8_t pt[1 + 2 * EC_FIELD_MAX];
	int rc;
	if ((rc = get_bn(o, "x", true, false, c->field, &x, err)) || (rc = get_bn(o, "y", true, false, c->field, &y, err)) ||
	    (rc = get_bn(o, "d", false, true, c->field, &d, err)))
		goto out;
	pt[0] = POINT_CONVERSION_UNCOMPRESSED;
	if (BN_bn2binpad(x, pt + 1, (int)c->field) < 0 || BN_bn2binpad(y, pt + 1 + c->field, (int)c->field) < 0) {
		rc = bc_error_set(err, BC_ERR_INVALID, "bad ec coordinates");
		goto out;
	}
	if (!(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * c->field) ||
	    (d && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d))) {
		rc = bc_error_openssl(err, BC_ERR_NOMEM, "cannot build ec key");
		goto out;
	}
	if ((rc = pkey_fromdata("EC", bld, d != NULL, &pkey, err)))
		goto out;
	/* The point must be on the curve and, with d, be d*G (a cheap check for EC). */
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!chk || EVP_PKEY_public_check(chk) != 1 || (d && EVP_PKEY_pairwise_check(chk) != 1)) {
		rc = bc_error_openssl(err, BC_ERR_INVALID, "bad ec key");
		goto out;
	}
	*out = pkey;
	pkey = NULL;
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_free(pkey);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	BN_free(y);
	BN_free(x);
	return rc;
}

int bc_jwk_from_jansson(struct bc_jwk **out, const json_t *jwk, struct bc_error *err)
{
	if (!json_is_object(jwk))
		return bc_error_set(err, BC_ERR_INVALID, "jwk is not a json object");
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const json_t *kidv = json_object_get(jwk, "kid");
	if (kidv && (!json_is_string(kidv) || !kid_ok(json_string_value(kidv), json_string_length(kidv))))
		return bc_error_set(err, BC_ERR_INVALID, "jwk kid is not an acceptable string");
	EVP_PKEY *pkey = NULL;
	int rc;
	if (kty && strcmp(kty, "RSA") == 0)
		rc = rsa_from_json(jwk, &pkey, err);
	else if (kty && strcmp(kty, "EC") == 0)
		rc = ec_from_json(jwk, &pkey, err);
	else
		return bc_error_set(err, BC_ERR_INVALID, "unsupported or missing jwk kty");
	if (rc)
		return rc;
	struct bc_jwk *k = NULL;
	rc = wrap_pkey(&k, pkey, err);
	EVP_PKEY_free(pkey);
	if (rc)
		return rc;
	if (kidv && !(k->kid = strdup(json_string_value(kidv)))) {
		bc_jwk_free(k);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory for a kid");
	}
	*out = k;
	return BC_OK;
}

int bc_jwk_from_json(struct bc_jwk **out, const char *json, size_t len, struct bc_error *err)
{
	if (len > BC_LIMIT_JWK_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "jwk too large (%zu bytes, limit %d)", len, BC_LIMIT_JWK_BYTES);
	json_t *j = NULL;
	int rc = bc_json_parse(json, len, BC_LIMIT_JWK_BYTES, &j, err);
	if (rc) {
		bc_error_wrap(err, "bad jwk");
		return rc;
	}
	rc = bc_jwk_from_jansson(out, j, err);
	json_decref(j);
	return rc;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0; /* never prompt on a terminal for an encrypted PEM */
}

int bc_jwk_from_pem(struct bc_jwk **out, const char *pem, size_t len, struct bc_error *err)
{
	if (len > BC_LIMIT_PEM_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "pem too large (%zu bytes, limit %d)", len, BC_LIMIT_PEM_BYTES);
	EVP_PKEY *pkey = NULL;
	static const char cert_tag[] = "-----BEGIN CERTIFICATE-----", pub_tag[] = "-----BEGIN PUBLIC KEY-----";
	const char *kind = pem ? memmem(pem, len, "-----BEGIN ", 11) : NULL; /* pem need not end in NUL */
	if (!kind)
		return bc_error_set(err, BC_ERR_INVALID, "no pem block");
	size_t rest = len - (size_t)(kind - pem);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return bc_error_openssl(err, BC_ERR_NOMEM, "cannot read pem");
	if (rest >= sizeof(cert_tag) - 1 && memcmp(kind, cert_tag, sizeof(cert_tag) - 1) == 0) {
		X509 *x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
		if (x) {
			pkey = X509_get_pubkey(x);
			X509_free(x);
		}
	} else if (rest >= sizeof(pub_tag) - 1 && memcmp(kind, pub_tag, sizeof(pub_tag) - 1) == 0) {
		pkey = PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
	} else {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
	}
	BIO_free(bio);
	if (!pkey)
		return bc_error_openssl(err, BC_ERR_INVALID, "bad pem key or certificate");
	ERR_clear_error();
	int rc = wrap_pkey(out, pkey, err);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- JWK export ------------------------------------------------------------------------ */

/* obj[name] = base64url(bn), left-padded to pad bytes when pad > 0. */
static int put_bn(json_t *obj, const char *name, const BIGNUM *bn, size_t pad, bool secret)
{
	uint8_t raw[MAX_SIG_BYTES];
	if ((size_t)BN_num_bytes(bn) > sizeof(raw) || pad > sizeof(raw))
		return BC_ERR_INTERNAL;
	int n = pad ? BN_bn2binpad(bn, raw, (int)pad) : BN_bn2bin(bn, raw);
	if (n < 0)
		return BC_ERR_INTERNAL;
	char *s = bc_b64url_encode_str(raw, (size_t)n);
	if (secret)
		bc_wipe(raw, (size_t)n);
	if (!s)
		return BC_ERR_NOMEM;
	int rc = json_object_set_new(obj, name, json_string(s)) == 0 ? BC_OK : BC_ERR_NOMEM;
	if (secret)
		bc_wipe(s, strlen(s));
	free(s);
	return rc;
}

/* Copies the named BIGNUM parameters of k into obj. An absent optional one is skipped. */
static int put_params(const struct bc_jwk *k, json_t *obj, const char *const *json_names,
		      const char *const *ossl_names, size_t count, size_t pad, bool secret, bool optional)
{
	for (size_t i = 0; i < count; i++) {
		BIGNUM *bn = NULL;
		ERR_set_mark();
		int got = EVP_PKEY_get_bn_param(k->pkey, ossl_names[i], &bn);
		ERR_pop_to_mark();
		if (got != 1) {
			if (optional)
				continue;
			return BC_ERR_CRYPTO;
		}
		int rc = put_bn(obj, json_names[i], bn, pad, secret);
		BN_clear_free(bn);
		if (rc)
			return rc;
	}
	return BC_OK;
}

static int jwk_members(const struct bc_jwk *k, json_t *o, bool include_private)
{
	int rc;
	if (k->kty == KTY_RSA) {
		static const char *const pub_j[] = {"n", "e"};
		static const char *const pub_o[] = {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E};
		static const char *const d_j[] = {"d"};
		static const char *const d_o[] = {OSSL_PKEY_PARAM_RSA_D};
		static const char *const crt_j[] = {"p", "q", "dp", "dq", "qi"};
		static const char *const crt_o[] = {OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
						    OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
						    OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
		if ((rc = bc_json_set_str(o, "kty", "RSA")) || (rc = put_params(k, o, pub_j, pub_o, 2, 0, false, false)))
			return rc;
		if (include_private && k->priv &&
		    ((rc = put_params(k, o, d_j, d_o, 1, 0, true, false)) ||
		     (rc = put_params(k, o, crt_j, crt_o, 5, 0, true, true))))
			return rc;
		return BC_OK;
	}
	static const char *const xy_j[] = {"x", "y"};
	static const char *const xy_o[] = {OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PKEY_PARAM_EC_PUB_Y};
	static const char *const d_j[] = {"d"};
	static const char *const d_o[] = {OSSL_PKEY_PARAM_PRIV_KEY};
	if ((rc = bc_json_set_str(o, "kty", "EC")) || (rc = bc_json_set_str(o, "crv", k->crv->crv)) ||
	    (rc = put_params(k, o, xy_j, xy_o, 2, k->crv->field, false, false)))
		return rc;
	if (include_private && k->priv && (rc = put_params(k, o, d_j, d_o, 1, k->crv->field, true, false)))
		return rc;
	return BC_OK;
}

json_t *bc_jwk_to_jansson(const struct bc_jwk *k, bool include_private)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if ((k->kid && bc_json_set_str(o, "kid", k->kid)) || jwk_members(k, o, include_private)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int bc_jwk_to_pem(const struct bc_jwk *k, bool include_private, struct bc_buf *out, struct bc_error *err)
{
	if (include_private && !k->priv)
		return bc_error_set(err, BC_ERR_INVALID, "key has no private part");
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return bc_error_openssl(err, BC_ERR_NOMEM, "cannot export key");
	int ok = include_private ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
				 : PEM_write_bio_PUBKEY(bio, k->pkey);
	int rc = BC_OK;
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (ok != 1 || n <= 0)
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot export key");
	else if ((rc = bc_buf_append(out, data, (size_t)n)))
		rc = bc_error_set(err, rc, "cannot export key: buffer");
	if (include_private && n > 0)
		OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	return rc;
}

int bc_jwk_thumbprint(const struct bc_jwk *k, char out[44], struct bc_error *err)
{
	/* RFC 7638: the required members only, lexicographic order, no whitespace. */
	json_t *o = json_object();
	if (!o || jwk_members(k, o, false)) {
		json_decref(o);
		return bc_error_set(err, BC_ERR_NOMEM, "cannot build thumbprint input");
	}
	struct bc_buf b;
	bc_buf_init(&b, 0);
	int rc;
	if (k->kty == KTY_RSA)
		rc = bc_buf_appendf(&b, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", bc_json_str(o, "e"),
				    bc_json_str(o, "n"));
	else
		rc = bc_buf_appendf(&b, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", k->crv->crv,
				    bc_json_str(o, "x"), bc_json_str(o, "y"));
	json_decref(o);
	uint8_t md[32];
	if (rc == BC_OK && EVP_Digest(b.data, b.len, md, NULL, md_of(MD_256), NULL) != 1)
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash thumbprint input");
	else if (rc)
		rc = bc_error_set(err, rc, "cannot build thumbprint input");
	bc_buf_release(&b);
	if (rc)
		return rc;
	char *s = bc_b64url_encode_str(md, sizeof(md));
	if (!s)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory for a thumbprint");
	memcpy(out, s, 44); /* 43 chars + NUL */
	free(s);
	return BC_OK;
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

/* ---- signatures ------------------------------------------------------------------------ */

static int sig_ctx(const struct bc_jwk *k, const struct alg *a, bool sign, EVP_PKEY_CTX **out, struct bc_error *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!ctx)
		return bc_error_openssl(err, BC_ERR_NOMEM, "cannot make a signature context");
	int ok = (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) == 1 &&
		 EVP_PKEY_CTX_set_signature_md(ctx, md_of(a->md)) == 1;
	if (ok && a->kind == ALG_RS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
	else if (ok && a->kind == ALG_PS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_of(a->md)) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) == 1;
	if (!ok) {
		EVP_PKEY_CTX_free(ctx);
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot set up the signature");
	}
	*out = ctx;
	return BC_OK;
}

/* Checks that alg names a known algorithm allowed for k and that the digest fits it
 * (dlen SIZE_MAX: no digest yet). */
static int check_alg(const struct bc_jwk *k, const char *alg, size_t dlen, const struct alg **out,
		     struct bc_error *err)
{
	const struct alg *a = find_alg(alg);
	if (!k)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	if (!a)
		return bc_error_set(err, BC_ERR_INVALID, "unsupported algorithm");
	if (!alg_allowed(k, a))
		return bc_error_set(err, BC_ERR_INVALID, "algorithm %s not allowed for this %s key", a->name,
				    bc_jwk_kty(k));
	if (dlen != SIZE_MAX && dlen != (size_t)EVP_MD_get_size(md_of(a->md)))
		return bc_error_set(err, BC_ERR_INVALID, "digest length %zu does not match %s", dlen, a->name);
	*out = a;
	return BC_OK;
}

/* Signs digest into out (cap *outlen bytes); ES* signatures come out as raw r||s. */
static int sign_raw(const struct bc_jwk *k, const struct alg *a, const uint8_t *dig, size_t dlen, uint8_t *out,
		    size_t *outlen, struct bc_error *err)
{
	if (!k->priv)
		return bc_error_set(err, BC_ERR_INVALID, "key has no private part");
	EVP_PKEY_CTX *ctx = NULL;
	int rc = sig_ctx(k, a, true, &ctx, err);
	if (rc)
		return rc;
	uint8_t der[MAX_DER_ECDSA];
	uint8_t *dst = a->kind == ALG_ES ? der : out;
	size_t len = a->kind == ALG_ES ? sizeof(der) : *outlen;
	ECDSA_SIG *es = NULL;
	if (EVP_PKEY_sign(ctx, dst, &len, dig, dlen) != 1) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "signing failed");
		goto out;
	}
	if (a->kind == ALG_ES) {
		const unsigned char *p = der;
		const BIGNUM *r, *s;
		size_t f = k->crv->field;
		if (*outlen < 2 * f || !(es = d2i_ECDSA_SIG(NULL, &p, (long)len))) {
			rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot convert the ecdsa signature");
			goto out;
		}
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, out, (int)f) < 0 || BN_bn2binpad(s, out + f, (int)f) < 0) {
			rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot convert the ecdsa signature");
			goto out;
		}
		len = 2 * f;
	}
	*outlen = len;
out:
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static int verify_raw(const struct bc_jwk *k, const struct alg *a, const uint8_t *dig, size_t dlen,
		      const uint8_t *sig, size_t slen, struct bc_error *err)
{
	uint8_t der[MAX_DER_ECDSA];
	if (a->kind == ALG_ES) {
		/* r||s back to DER; a wrong length is a bad signature, not something to pad. */
		size_t f = k->crv->field;
		if (slen != 2 * f)
			return bc_error_set(err, BC_ERR_CRYPTO, "bad signature length");
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, (int)f, NULL), *s = BN_bin2bn(sig + f, (int)f, NULL);
		if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
			ECDSA_SIG_free(es);
			BN_free(r);
			BN_free(s);
			return bc_error_openssl(err, BC_ERR_NOMEM, "cannot convert the ecdsa signature");
		}
		unsigned char *p = der;
		int n = i2d_ECDSA_SIG(es, NULL) <= (int)sizeof(der) ? i2d_ECDSA_SIG(es, &p) : -1;
		ECDSA_SIG_free(es);
		if (n <= 0)
			return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot convert the ecdsa signature");
		sig = der;
		slen = (size_t)n;
	} else if (slen != (size_t)EVP_PKEY_get_size(k->pkey)) {
		return bc_error_set(err, BC_ERR_CRYPTO, "bad signature length");
	}
	EVP_PKEY_CTX *ctx = NULL;
	int rc = sig_ctx(k, a, false, &ctx, err);
	if (rc)
		return rc;
	if (EVP_PKEY_verify(ctx, sig, slen, dig, dlen) != 1) {
		ERR_clear_error();
		rc = bc_error_set(err, BC_ERR_CRYPTO, "bad signature");
	}
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int bc_sig_sign_digest(const struct bc_jwk *key, const char *alg, const uint8_t *digest, size_t dlen,
		       struct bc_buf *sig, struct bc_error *err)
{
	const struct alg *a;
	int rc = check_alg(key, alg, dlen, &a, err);
	if (rc)
		return rc;
	uint8_t raw[MAX_SIG_BYTES];
	size_t n = sizeof(raw);
	if ((rc = sign_raw(key, a, digest, dlen, raw, &n, err)))
		return rc;
	if ((rc = bc_buf_append(sig, raw, n)))
		return bc_error_set(err, rc, "cannot store the signature");
	return BC_OK;
}

int bc_sig_verify_digest(const struct bc_jwk *key, const char *alg, const uint8_t *digest, size_t dlen,
			 const uint8_t *sig, size_t slen, struct bc_error *err)
{
	const struct alg *a;
	int rc = check_alg(key, alg, dlen, &a, err);
	if (rc)
		return rc;
	return verify_raw(key, a, digest, dlen, sig, slen, err);
}

/* ---- JWS compact ----------------------------------------------------------------------- */

static int jws_header(const char *alg, const json_t *extra, struct bc_buf *out)
{
	json_t *h = json_object();
	int rc = BC_ERR_NOMEM;
	if (!h || json_object_set_new(h, "alg", json_string(alg)) != 0)
		goto out;
	if (extra) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)extra, key, v) {
			if (strcmp(key, "alg") != 0 && json_object_set(h, key, v) != 0)
				goto out;
		}
	}
	char *s = json_dumps(h, JSON_COMPACT);
	if (!s)
		goto out;
	rc = bc_b64url_encode(s, strlen(s), out);
	free(s);
out:
	json_decref(h);
	return rc;
}

int bc_jws_sign(const struct bc_jwk *key, const char *alg, const json_t *header, const void *payload, size_t len,
		struct bc_buf *out, struct bc_error *err)
{
	if (!key)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	if (!alg)
		alg = bc_jwk_default_alg(key);
	if (header && !json_is_object(header))
		return bc_error_set(err, BC_ERR_INVALID, "jws header is not a json object");
	const struct alg *a;
	int rc = check_alg(key, alg, SIZE_MAX, &a, err);
	if (rc)
		return rc;
	size_t start = out->len;
	uint8_t dig[EVP_MAX_MD_SIZE], sig[MAX_SIG_BYTES];
	unsigned int dlen = 0;
	size_t slen = sizeof(sig);
	if ((rc = jws_header(a->name, header, out)) || (rc = bc_buf_appendc(out, '.')) ||
	    (rc = bc_b64url_encode(payload, len, out))) {
		rc = bc_error_set(err, rc, "cannot build the jws");
		goto fail;
	}
	if (EVP_Digest(out->data + start, out->len - start, dig, &dlen, md_of(a->md), NULL) != 1) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash the jws");
		goto fail;
	}
	if ((rc = sign_raw(key, a, dig, dlen, sig, &slen, err)))
		goto fail;
	if ((rc = bc_buf_appendc(out, '.')) || (rc = bc_b64url_encode(sig, slen, out))) {
		rc = bc_error_set(err, rc, "cannot build the jws");
		goto fail;
	}
	return BC_OK;
fail:
	/* Nothing of a failed signature stays in out. */
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return rc;
}

/* ---- JWT parsing and verification ------------------------------------------------------ */

void bc_jwt_init(struct bc_jwt *jwt)
{
	memset(jwt, 0, sizeof(*jwt));
}

void bc_jwt_release(struct bc_jwt *jwt)
{
	json_decref(jwt->header);
	json_decref(jwt->claims);
	free(jwt->signing_input);
	free(jwt->sig);
	bc_jwt_init(jwt);
}

static bool b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int parse_header(struct bc_jwt *t, const char *seg, size_t n, struct bc_error *err)
{
	if (n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "jwt header is empty");
	if (n / 4 * 3 > BC_LIMIT_JWT_HEADER_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "jwt header too large (limit %d bytes)", BC_LIMIT_JWT_HEADER_BYTES);
	uint8_t *raw = NULL;
	size_t rlen = 0;
	int rc = bc_b64url_decode(seg, n, &raw, &rlen, err);
	if (rc) {
		bc_error_wrap(err, "bad jwt header");
		return rc;
	}
	rc = bc_json_parse((const char *)raw, rlen, BC_LIMIT_JWT_HEADER_BYTES, &t->header, err);
	free(raw);
	if (rc) {
		bc_error_wrap(err, "bad jwt header");
		return rc;
	}
	if (!json_is_object(t->header))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header is not a json object");
	const json_t *alg = json_object_get(t->header, "alg");
	if (!json_is_string(alg))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header has no string alg");
	t->alg = json_string_value(alg);
	const json_t *kid = json_object_get(t->header, "kid");
	if (kid) {
		/* A lookup string for the caller's own key set, nothing more: bounded, printable. */
		if (!json_is_string(kid) || !kid_ok(json_string_value(kid), json_string_length(kid)))
			return bc_error_set(err, BC_ERR_INVALID, "jwt header kid is not an acceptable string");
		t->kid = json_string_value(kid);
	}
	/* RFC 7515 4.1.11: we understand no extension, so any crit makes the token unusable. */
	if (json_object_get(t->header, "crit"))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header has unsupported crit extensions");
	return BC_OK;
}

int bc_jwt_parse(struct bc_jwt *jwt, const char *compact, size_t len, struct bc_error *err)
{
	if (!compact)
		return bc_error_set(err, BC_ERR_INVALID, "no jwt");
	if (len > BC_LIMIT_JWT_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "jwt too long (%zu bytes, limit %d)", len, BC_LIMIT_JWT_BYTES);
	size_t dots[2], ndots = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)compact[i];
		if (c == '.') {
			if (ndots == 2)
				return bc_error_set(err, BC_ERR_INVALID, "jwt has more than 3 segments");
			dots[ndots++] = i;
		} else if (!b64url_char(c)) {
			return bc_error_set(err, BC_ERR_INVALID, "jwt has a non-base64url character at offset %zu", i);
		}
	}
	if (ndots != 2)
		return bc_error_set(err, BC_ERR_INVALID, "jwt has %zu segments, expected 3", ndots + 1);

	struct bc_jwt t;
	bc_jwt_init(&t);
	uint8_t *payload = NULL;
	size_t plen = 0;
	int rc = parse_header(&t, compact, dots[0], err);
	if (rc)
		goto fail;
	if ((rc = bc_b64url_decode(compact + dots[0] + 1, dots[1] - dots[0] - 1, &payload, &plen, err))) {
		bc_error_wrap(err, "bad jwt payload");
		goto fail;
	}
	/* Claims are optional here (a JWS may sign any bytes); verifiers require them. */
	if (plen > 0 && bc_json_parse((const char *)payload, plen, BC_LIMIT_JWT_BYTES, &t.claims, NULL) == BC_OK &&
	    !json_is_object(t.claims)) {
		json_decref(t.claims);
		t.claims = NULL;
	}
	if ((rc = bc_b64url_decode(compact + dots[1] + 1, len - dots[1] - 1, &t.sig, &t.sig_len, err))) {
		bc_error_wrap(err, "bad jwt signature");
		goto fail;
	}
	t.signing_input_len = dots[1];
	if (!(t.signing_input = malloc(dots[1] + 1))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory parsing a jwt");
		goto fail;
	}
	memcpy(t.signing_input, compact, dots[1]);
	t.signing_input[dots[1]] = '\0';
	free(payload);
	bc_jwt_release(jwt);
	*jwt = t;
	return BC_OK;
fail:
	free(payload);
	bc_jwt_release(&t);
	return rc;
}

int bc_jwt_verify(const struct bc_jwt *jwt, const struct bc_jwk *key, const char *pinned_alg, struct bc_error *err)
{
	if (!jwt || !jwt->alg || !jwt->signing_input)
		return bc_error_set(err, BC_ERR_INVALID, "no parsed jwt");
	if (!key)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	const struct alg *a = find_alg(jwt->alg);
	if (!a) /* "none", HS*, anything else */
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm not accepted");
	if (!alg_allowed(key, a))
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm %s not allowed for this %s key", a->name,
				    bc_jwk_kty(key));
	if (pinned_alg && strcmp(pinned_alg, a->name) != 0)
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm %s is not the expected one", a->name);
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (EVP_Digest(jwt->signing_input, jwt->signing_input_len, dig, &dlen, md_of(a->md), NULL) != 1)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash the jwt");
	return verify_raw(key, a, dig, dlen, jwt->sig, jwt->sig_len, err);
}

/* A NumericDate claim; absent: *present = false. */
static int numeric_date(const json_t *claims, const char *name, int64_t *out, bool *present, struct bc_error *err)
{
	const json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (!v)
		return BC_OK;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return BC_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d > -9.2e18 && d < 9.2e18) { /* inside int64, so the conversion is defined */
			*out = (int64_t)d;
			return BC_OK;
		}
	}
	return bc_error_set(err, BC_ERR_INVALID, "jwt claim %s is not a number of seconds", name);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int bc_jwt_check_times(const struct bc_jwt *jwt, int64_t now, int64_t skew, struct bc_error *err)
{
	if (!jwt || !json_is_object(jwt->claims))
		return bc_error_set(err, BC_ERR_INVALID, "jwt has no claims");
	if (skew < 0)
		skew = 0;
	int64_t exp = 0, nbf = 0, iat = 0;
	bool has_exp, has_nbf, has_iat;
	int rc;
	if ((rc = numeric_date(jwt->claims, "exp", &exp, &has_exp, err)) ||
	    (rc = numeric_date(jwt->claims, "nbf", &nbf, &has_nbf, err)) ||
	    (rc = numeric_date(jwt->claims, "iat", &iat, &has_iat, err)))
		return rc;
	if (!has_exp)
		return bc_error_set(err, BC_ERR_INVALID, "jwt has no exp claim");
	if (sat_add(exp, skew) <= now)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt expired");
	if (has_nbf && nbf > sat_add(now, skew))
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt not yet valid (nbf)");
	if (has_iat && iat > sat_add(now, skew))
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt issued in the future (iat)");
	return BC_OK;
}
