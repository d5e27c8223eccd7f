/* JOSE over OpenSSL 3 (EVP): JWK/JWKS import and export, RFC 7638 thumbprints, JWS compact
 * signing and verification (RS256, PS256, ES256; RS/PS/ES 384 and 512 for the vault).
 * A struct bc_jwk holds one EVP_PKEY, reused by every operation; keys are immutable once made
 * (bar bc_jwk_set_kid), so any number of threads may sign and verify with one key at once.
 *
 * Verification is deliberately two-step: bc_jwt_parse() splits and decodes without trusting
 * anything (bounded by limits.h), then the caller picks a key from ITS OWN trusted set (by kid
 * or x5t) and calls bc_jwt_verify(), which pins the algorithm to the key: an RSA key accepts
 * only RS* or PS*, an EC key only the ES* of its curve; "none" and HS* are always rejected. */
#ifndef BC_JOSE_H
#define BC_JOSE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"

struct bc_jwk; /* opaque: a public or private RSA/EC key with an optional kid */

/* kty "RSA" with bits 2048/3072/4096, or "EC" with bits 256/384/521 (P-256/P-384/P-521). */
int bc_jwk_generate(struct bc_jwk **out, const char *kty, int bits, struct bc_error *err) BC_MUST_CHECK;
/* Imports a JWK (JSON text, at most BC_LIMIT_JWK_BYTES). Private members are imported when
 * present. RSA moduli outside BC_LIMIT_RSA_BITS_MIN..MAX, other curves, "oct"/"OKP" keys and a
 * kid that is not a printable string of at most BC_LIMIT_KID bytes are BC_ERR_INVALID. */
int bc_jwk_from_json(struct bc_jwk **out, const char *json, size_t len, struct bc_error *err) BC_MUST_CHECK;
int bc_jwk_from_jansson(struct bc_jwk **out, const json_t *jwk, struct bc_error *err) BC_MUST_CHECK;
/* Takes a reference on pkey (EVP_PKEY_up_ref); the caller keeps its own. */
int bc_jwk_from_pkey(struct bc_jwk **out, EVP_PKEY *pkey, struct bc_error *err) BC_MUST_CHECK;
/* PEM private or public key, or a PEM certificate (public key of it). */
int bc_jwk_from_pem(struct bc_jwk **out, const char *pem, size_t len, struct bc_error *err) BC_MUST_CHECK;
/* Exports as a JSON object (new reference). include_private exports d/p/q... too. */
json_t *bc_jwk_to_jansson(const struct bc_jwk *k, bool include_private);
/* PEM export (PKCS#8 private key or SubjectPublicKeyInfo). Appends to out. */
int bc_jwk_to_pem(const struct bc_jwk *k, bool include_private, struct bc_buf *out, struct bc_error *err) BC_MUST_CHECK;
/* RFC 7638 SHA-256 thumbprint, base64url (43 chars + NUL). */
int bc_jwk_thumbprint(const struct bc_jwk *k, char out[44], struct bc_error *err) BC_MUST_CHECK;
const char *bc_jwk_kid(const struct bc_jwk *k);  /* NULL if unset */
int bc_jwk_set_kid(struct bc_jwk *k, const char *kid) BC_MUST_CHECK;
const char *bc_jwk_kty(const struct bc_jwk *k);  /* "RSA" or "EC" */
bool bc_jwk_is_private(const struct bc_jwk *k);
int bc_jwk_bits(const struct bc_jwk *k);          /* RSA modulus bits or EC curve bits */
EVP_PKEY *bc_jwk_pkey(const struct bc_jwk *k);    /* borrowed */
/* The default JWS algorithm for the key: RS256 for RSA, ES256/ES384/ES512 by curve. */
const char *bc_jwk_default_alg(const struct bc_jwk *k);
bool bc_jwk_alg_allowed(const struct bc_jwk *k, const char *alg);
void bc_jwk_free(struct bc_jwk *k);

/* A set of keys, e.g. a parsed JWKS document. */
struct bc_jwks;
/* Keys of a type or with members we do not understand are skipped (RFC 7517 section 5); more
 * than BC_LIMIT_JWKS_KEYS entries is BC_ERR_LIMIT. */
int bc_jwks_parse(struct bc_jwks **out, const char *json, size_t len, struct bc_error *err) BC_MUST_CHECK;
struct bc_jwks *bc_jwks_new(void);
int bc_jwks_add(struct bc_jwks *set, struct bc_jwk *k) BC_MUST_CHECK; /* takes ownership even on failure */
size_t bc_jwks_count(const struct bc_jwks *set);
const struct bc_jwk *bc_jwks_get(const struct bc_jwks *set, size_t i);
const struct bc_jwk *bc_jwks_find(const struct bc_jwks *set, const char *kid);
json_t *bc_jwks_to_jansson(const struct bc_jwks *set); /* public members only: {"keys":[...]} */
void bc_jwks_free(struct bc_jwks *set);

/* Signs payload (any bytes, normally JSON claims) into a compact JWS appended to out.
 * header: extra protected header members (kid, typ, x5t ...), may be NULL; "alg" is set from
 * alg (NULL = bc_jwk_default_alg). */
int bc_jws_sign(const struct bc_jwk *key, const char *alg, const json_t *header, const void *payload,
		size_t len, struct bc_buf *out, struct bc_error *err) BC_MUST_CHECK;

/* Raw signature helpers used by JWS and the vault's sign/verify: digest is the already-hashed
 * input; ES* signatures are raw r||s (IEEE P1363), RS* PKCS#1 v1.5, PS* PSS with salt = hash. */
int bc_sig_sign_digest(const struct bc_jwk *key, const char *alg, const uint8_t *digest, size_t dlen,
		       struct bc_buf *sig, struct bc_error *err) BC_MUST_CHECK;
int bc_sig_verify_digest(const struct bc_jwk *key, const char *alg, const uint8_t *digest, size_t dlen,
			 const uint8_t *sig, size_t slen, struct bc_error *err) BC_MUST_CHECK;
/* Hash for a JWS alg (SHA-256/384/512); returns NULL for unknown. */
const EVP_MD *bc_alg_md(const char *alg);

/* A parsed, NOT yet verified compact JWT/JWS. */
struct bc_jwt {
	json_t *header;      /* owned */
	json_t *claims;      /* owned; NULL if the payload is not a JSON object */
	char *signing_input; /* owned: "b64(header).b64(payload)" */
	size_t signing_input_len;
	uint8_t *sig;        /* owned */
	size_t sig_len;
	const char *alg;     /* borrowed from header */
	const char *kid;     /* borrowed from header, NULL if absent */
};
void bc_jwt_init(struct bc_jwt *jwt);
/* Splits, decodes, bounds (BC_LIMIT_JWT_*: BC_ERR_LIMIT), requires a JSON object header with a
 * string alg, a kid (if any) that is a printable string of at most BC_LIMIT_KID bytes, no "crit"
 * (BC_ERR_INVALID otherwise). On success jwt is replaced; on failure it is untouched. */
int bc_jwt_parse(struct bc_jwt *jwt, const char *compact, size_t len, struct bc_error *err) BC_MUST_CHECK;
/* Verifies the signature with key. The alg of the token must be allowed for the key
 * (bc_jwk_alg_allowed) and, when pinned_alg is non-NULL, equal to it: BC_ERR_INVALID otherwise.
 * A signature that does not verify is BC_ERR_CRYPTO. */
int bc_jwt_verify(const struct bc_jwt *jwt, const struct bc_jwk *key, const char *pinned_alg,
		  struct bc_error *err) BC_MUST_CHECK;
/* Checks exp/nbf (and iat not in the future) against now with skew seconds of tolerance.
 * exp is required. No claims, no exp or a non-numeric date: BC_ERR_INVALID; expired or not yet
 * valid: BC_ERR_UNAUTHENTICATED. */
int bc_jwt_check_times(const struct bc_jwt *jwt, int64_t now, int64_t skew, struct bc_error *err) BC_MUST_CHECK;
void bc_jwt_release(struct bc_jwt *jwt);

#endif
