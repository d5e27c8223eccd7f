#include "cli/certcred.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/jose.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/util.h"

/* The first PEM block whose BEGIN line contains what (e.g. "PRIVATE KEY"), or NULL. */
static const char *pem_block(const char *text, size_t len, const char *what, size_t *rest)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *b = memmem(p, (size_t)(end - p), "-----BEGIN ", 11);
		if (!b)
			return NULL;
		const char *eol = memchr(b, '\n', (size_t)(end - b));
		if (!eol)
			eol = end;
		if (memmem(b, (size_t)(eol - b), what, strlen(what))) {
			*rest = (size_t)(end - b);
			return b;
		}
		p = eol;
	}
	return NULL;
}

static int load(const char *pem_file, struct bc_jwk **key, char x5t256[44], struct bc_error *err)
{
	char *text = NULL, x5t[28], kt[44], ct[44];
	size_t len = 0, klen = 0, clen = 0;
	X509 *x = NULL;
	struct bc_jwk *pub = NULL;
	int rc = bc_read_file(pem_file, BC_LIMIT_PEM_BYTES + BC_LIMIT_CERT_BYTES, &text, &len, err);
	if (rc)
		return bc_error_wrap(err, "cannot read the certificate file");
	const char *kb = pem_block(text, len, "PRIVATE KEY", &klen);
	const char *cb = pem_block(text, len, "CERTIFICATE", &clen);
	if (!kb || !cb) {
		rc = bc_error_set(err, BC_ERR_INVALID, "%s must hold a PEM certificate and its private key", pem_file);
		goto done;
	}
	if ((rc = bc_jwk_from_pem(key, kb, klen, err)) || (rc = bc_x509_parse_pem(cb, clen, &x, err)) ||
	    (rc = bc_x509_thumbprints(x, x5t, x5t256, err)) ||
	    (rc = bc_jwk_from_pkey(&pub, X509_get0_pubkey(x), err)) || (rc = bc_jwk_thumbprint(pub, ct, err)) ||
	    (rc = bc_jwk_thumbprint(*key, kt, err)))
		goto done;
	if (strcmp(ct, kt) != 0)
		rc = bc_error_set(err, BC_ERR_INVALID, "the private key in %s does not belong to its certificate", pem_file);
done:
	if (rc) {
		bc_jwk_free(*key);
		*key = NULL;
	}
	bc_jwk_free(pub);
	X509_free(x);
	if (text) {
		bc_wipe(text, len);
		free(text);
	}
	return rc;
}

int cli_cert_assertion(const char *pem_file, const char *client_id, const char *token_url, struct bc_buf *out,
		       struct bc_error *err)
{
	struct bc_jwk *key = NULL;
	char x5t256[44], jti[37];
	int rc = load(pem_file, &key, x5t256, err);
	if (rc)
		return rc;
	if (bc_uuid4(jti) != BC_OK) {
		bc_jwk_free(key);
		return bc_error_set(err, BC_ERR_CRYPTO, "no randomness for a jti");
	}
	int64_t now = bc_now();
	json_t *hdr = json_pack("{s:s, s:s}", "typ", "JWT", "x5t#S256", x5t256);
	json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", token_url, "iss", client_id, "sub",
				   client_id, "jti", jti, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
				   (json_int_t)(now + CLI_ASSERTION_LIFETIME_S));
	char *payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
	if (!hdr || !payload)
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory building an assertion");
	else
		rc = bc_jws_sign(key, NULL, hdr, payload, strlen(payload), out, err);
	free(payload);
	json_decref(claims);
	json_decref(hdr);
	bc_jwk_free(key);
	return rc;
}
