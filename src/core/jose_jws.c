/* Signatures over a struct bc_jwk: the raw digest helpers (RS* PKCS#1 v1.5, PS* PSS, ES* as raw
 * r||s), compact JWS signing, and the signature check of a parsed JWT. Each operation makes its
 * own EVP_PKEY_CTX, so any number of threads may use one key at once. */
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/jose_int.h"
#include "core/limits.h"

#define MAX_DER_ECDSA 160 /* DER ECDSA-Sig-Value for P-521 is <= 139 */

/* ---- signatures ------------------------------------------------------------------------ */

static int sig_ctx(const struct bc_jwk *k, const struct alg *a, bool sign, EVP_PKEY_CTX **out, struct bc_error *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!ctx)
		return bc_error_openssl(err, BC_ERR_NOMEM, "cannot make a signature context");
	int ok = (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) == 1 &&
		 EVP_PKEY_CTX_set_signature_md(ctx, bc_jose_md(a->md)) == 1;
	if (ok && a->kind == ALG_RS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
	else if (ok && a->kind == ALG_PS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, bc_jose_md(a->md)) == 1 &&
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
	const struct alg *a = bc_jose_find_alg(alg);
	if (!k)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	if (!a)
		return bc_error_set(err, BC_ERR_INVALID, "unsupported algorithm");
	if (!bc_jose_alg_allowed(k, a))
		return bc_error_set(err, BC_ERR_INVALID, "algorithm %s not allowed for this %s key", a->name,
				    bc_jwk_kty(k));
	if (dlen != SIZE_MAX && dlen != (size_t)EVP_MD_get_size(bc_jose_md(a->md)))
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
	const struct alg *a = NULL;
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
	const struct alg *a = NULL;
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
	const struct alg *a = NULL;
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
	if (EVP_Digest(out->data + start, out->len - start, dig, &dlen, bc_jose_md(a->md), NULL) != 1) {
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

/* ---- JWT verification ------------------------------------------------------------------ */

int bc_jwt_verify(const struct bc_jwt *jwt, const struct bc_jwk *key, const char *pinned_alg, struct bc_error *err)
{
	if (!jwt || !jwt->alg || !jwt->signing_input)
		return bc_error_set(err, BC_ERR_INVALID, "no parsed jwt");
	if (!key)
		return bc_error_set(err, BC_ERR_INVALID, "no key");
	const struct alg *a = bc_jose_find_alg(jwt->alg);
	if (!a) /* "none", HS*, anything else */
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm not accepted");
	if (!bc_jose_alg_allowed(key, a))
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm %s not allowed for this %s key", a->name,
				    bc_jwk_kty(key));
	if (pinned_alg && strcmp(pinned_alg, a->name) != 0)
		return bc_error_set(err, BC_ERR_INVALID, "jwt algorithm %s is not the expected one", a->name);
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (EVP_Digest(jwt->signing_input, jwt->signing_input_len, dig, &dlen, bc_jose_md(a->md), NULL) != 1)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash the jwt");
	return verify_raw(key, a, dig, dlen, jwt->sig, jwt->sig_len, err);
}
