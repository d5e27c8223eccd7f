/* JOSE keys in and out: JWK (RFC 7517) import into an EVP_PKEY through OSSL_PARAMs, PEM keys and
 * certificates, JWK and PEM export, RFC 7638 thumbprints. Private members are decoded into secure
 * memory and wiped; the key object itself is jose.c's. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/jose_int.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/util.h"

#define EC_FIELD_MAX 66 /* P-521 field element bytes */

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
	const struct curve *c = crv ? bc_jose_curve_by(crv, NULL) : NULL;
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
	if (kidv && (!json_is_string(kidv) || !bc_jose_kid_ok(json_string_value(kidv), json_string_length(kidv))))
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
	rc = bc_jose_wrap_pkey(&k, pkey, err);
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
	int rc = bc_jose_wrap_pkey(out, pkey, err);
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
	if (rc == BC_OK && EVP_Digest(b.data, b.len, md, NULL, bc_jose_md(MD_256), NULL) != 1)
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
