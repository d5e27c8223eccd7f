/* JOSE: JWS round trips for every algorithm, algorithm pinning, tampering, JWK/JWKS import and
 * export, RFC 7638 thumbprints, parser limits, time checks. cjose (an independent JOSE
 * implementation) and the openssl command cross-check signatures and key encodings. */
#include <cjose/cjose.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/util.h"
#include "test.h"

static const char *const all_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
				       "PS512", "ES256", "ES384", "ES512"};
#define NALGS (sizeof(all_algs) / sizeof(all_algs[0]))

/* Generated once: RSA key generation is slow. */
static struct bc_jwk *rsa_key, *ec256, *ec384, *ec521;

static struct bc_jwk *gen(const char *kty, int bits)
{
	struct bc_jwk *k = NULL;
	struct bc_error err = {0};
	if (bc_jwk_generate(&k, kty, bits, &err) != BC_OK)
		fprintf(stderr, "generate %s %d: %s\n", kty, bits, err.msg);
	return k;
}

static void keys_init(void)
{
	if (!rsa_key) {
		rsa_key = gen("RSA", 2048);
		ec256 = gen("EC", 256);
		ec384 = gen("EC", 384);
		ec521 = gen("EC", 521);
	}
}

static struct bc_jwk *key_for(const char *alg)
{
	if (alg[0] != 'E')
		return rsa_key;
	return strcmp(alg, "ES256") == 0 ? ec256 : strcmp(alg, "ES384") == 0 ? ec384 : ec521;
}

static char *sign_claims(const struct bc_jwk *k, const char *alg, const char *claims)
{
	struct bc_buf out;
	struct bc_error err = {0};
	bc_buf_init(&out, 0);
	json_t *h = json_pack("{s:s, s:s}", "typ", "JWT", "kid", "k1");
	int rc = bc_jws_sign(k, alg, h, claims, strlen(claims), &out, &err);
	json_decref(h);
	if (rc) {
		fprintf(stderr, "sign %s: %s\n", alg, err.msg);
		bc_buf_release(&out);
		return NULL;
	}
	return bc_buf_detach(&out, NULL);
}

static int parse_verify(const char *tok, const struct bc_jwk *k, const char *pinned)
{
	struct bc_jwt jwt;
	struct bc_error err = {0};
	bc_jwt_init(&jwt);
	int rc = bc_jwt_parse(&jwt, tok, strlen(tok), &err);
	if (rc == BC_OK)
		rc = bc_jwt_verify(&jwt, k, pinned, &err);
	bc_jwt_release(&jwt);
	return rc;
}

/* b64url(header) . b64url(payload) . b64url(sig) from parts. */
static char *make_token(const char *header, const char *payload, const void *sig, size_t slen)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	if (bc_b64url_encode(header, strlen(header), &b) || bc_buf_appendc(&b, '.') ||
	    bc_b64url_encode(payload, strlen(payload), &b) || bc_buf_appendc(&b, '.') ||
	    (slen && bc_b64url_encode(sig, slen, &b))) {
		bc_buf_release(&b);
		return NULL;
	}
	return bc_buf_detach(&b, NULL);
}

TEST(round_trip_every_alg)
{
	keys_init();
	REQUIRE(rsa_key && ec256 && ec384 && ec521);
	for (size_t i = 0; i < NALGS; i++) {
		struct bc_jwk *k = key_for(all_algs[i]);
		char *tok = sign_claims(k, all_algs[i], "{\"sub\":\"x\",\"exp\":4102444800}");
		CHECK(tok != NULL);
		if (!tok)
			continue;
		struct bc_jwt jwt;
		struct bc_error err = {0};
		bc_jwt_init(&jwt);
		CHECK_EQ_INT(bc_jwt_parse(&jwt, tok, strlen(tok), &err), BC_OK);
		CHECK_STR(jwt.alg, all_algs[i]);
		CHECK_STR(jwt.kid, "k1");
		CHECK_STR(bc_json_str(jwt.header, "typ"), "JWT");
		CHECK_STR(bc_json_str(jwt.claims, "sub"), "x");
		CHECK_EQ_INT(bc_jwt_verify(&jwt, k, NULL, &err), BC_OK);
		CHECK_EQ_INT(bc_jwt_verify(&jwt, k, all_algs[i], &err), BC_OK);
		if (all_algs[i][0] == 'E') /* raw r||s: twice the field size */
			CHECK_EQ_INT(jwt.sig_len, 2 * ((bc_jwk_bits(k) + 7) / 8));
		else
			CHECK_EQ_INT(jwt.sig_len, 256);
		bc_jwt_release(&jwt);
		free(tok);
	}
}

TEST(default_alg_follows_key)
{
	keys_init();
	REQUIRE(rsa_key && ec384);
	CHECK_STR(bc_jwk_default_alg(rsa_key), "RS256");
	CHECK_STR(bc_jwk_default_alg(ec256), "ES256");
	CHECK_STR(bc_jwk_default_alg(ec384), "ES384");
	CHECK_STR(bc_jwk_default_alg(ec521), "ES512");
	char *tok = sign_claims(ec384, NULL, "{}");
	REQUIRE(tok);
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	CHECK_EQ_INT(bc_jwt_parse(&jwt, tok, strlen(tok), NULL), BC_OK);
	CHECK_STR(jwt.alg, "ES384");
	bc_jwt_release(&jwt);
	free(tok);
	/* signing with an alg the key may not use fails and leaves out untouched */
	struct bc_buf out;
	bc_buf_init(&out, 0);
	CHECK(bc_buf_appends(&out, "keep") == BC_OK);
	CHECK_EQ_INT(bc_jws_sign(rsa_key, "ES256", NULL, "{}", 2, &out, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jws_sign(rsa_key, "HS256", NULL, "{}", 2, &out, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jws_sign(ec256, "ES384", NULL, "{}", 2, &out, NULL), BC_ERR_INVALID);
	CHECK_STR(bc_buf_cstr(&out), "keep");
	bc_buf_release(&out);
}

TEST(sign_verify_digest)
{
	keys_init();
	REQUIRE(rsa_key && ec521);
	uint8_t msg[] = "the vault signs digests";
	for (size_t i = 0; i < NALGS; i++) {
		const char *alg = all_algs[i];
		struct bc_jwk *k = key_for(alg);
		uint8_t dig[64];
		unsigned int dlen = 0;
		REQUIRE(EVP_Digest(msg, sizeof(msg), dig, &dlen, bc_alg_md(alg), NULL) == 1);
		struct bc_buf sig;
		struct bc_error err = {0};
		bc_buf_init(&sig, 0);
		CHECK_EQ_INT(bc_sig_sign_digest(k, alg, dig, dlen, &sig, &err), BC_OK);
		CHECK_EQ_INT(bc_sig_verify_digest(k, alg, dig, dlen, (uint8_t *)sig.data, sig.len, &err), BC_OK);
		/* the wrong digest length, a different digest, a damaged signature */
		CHECK_EQ_INT(bc_sig_sign_digest(k, alg, dig, dlen - 1, &sig, &err), BC_ERR_INVALID);
		dig[0] ^= 1;
		CHECK_EQ_INT(bc_sig_verify_digest(k, alg, dig, dlen, (uint8_t *)sig.data, sig.len, &err), BC_ERR_CRYPTO);
		dig[0] ^= 1;
		sig.data[sig.len / 2] ^= 0x40;
		CHECK_EQ_INT(bc_sig_verify_digest(k, alg, dig, dlen, (uint8_t *)sig.data, sig.len, &err), BC_ERR_CRYPTO);
		CHECK_EQ_INT(bc_sig_verify_digest(k, alg, dig, dlen, (uint8_t *)sig.data, sig.len - 1, &err),
			     BC_ERR_CRYPTO);
		bc_buf_release(&sig);
	}
	/* PS* is randomised, RS* deterministic */
	uint8_t d[32] = {1};
	struct bc_buf a, b;
	bc_buf_init(&a, 0);
	bc_buf_init(&b, 0);
	CHECK(bc_sig_sign_digest(rsa_key, "RS256", d, 32, &a, NULL) == BC_OK);
	CHECK(bc_sig_sign_digest(rsa_key, "RS256", d, 32, &b, NULL) == BC_OK);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	bc_buf_reset(&a);
	bc_buf_reset(&b);
	CHECK(bc_sig_sign_digest(rsa_key, "PS256", d, 32, &a, NULL) == BC_OK);
	CHECK(bc_sig_sign_digest(rsa_key, "PS256", d, 32, &b, NULL) == BC_OK);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) != 0);
	/* an RS256 signature is not a PS256 one */
	CHECK_EQ_INT(bc_sig_verify_digest(rsa_key, "RS256", d, 32, (uint8_t *)a.data, a.len, NULL), BC_ERR_CRYPTO);
	bc_buf_release(&a);
	bc_buf_release(&b);
}

TEST(alg_pinning)
{
	keys_init();
	REQUIRE(rsa_key && ec256 && ec384);
	/* An ES256 token, correctly signed by an EC key, must not verify against the RSA key. */
	char *es = sign_claims(ec256, "ES256", "{\"exp\":1}");
	REQUIRE(es);
	CHECK_EQ_INT(parse_verify(es, ec256, NULL), BC_OK);
	CHECK_EQ_INT(parse_verify(es, rsa_key, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(parse_verify(es, ec384, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(parse_verify(es, ec256, "ES384"), BC_ERR_INVALID);
	free(es);

	/* HS256 keyed with the RSA public key's encoding (the classic confusion attack) */
	struct bc_buf pub;
	bc_buf_init(&pub, 0);
	REQUIRE(bc_jwk_to_pem(rsa_key, false, &pub, NULL) == BC_OK);
	char *unsigned_tok = make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"exp\":1}", NULL, 0);
	REQUIRE(unsigned_tok);
	uint8_t mac[32];
	unsigned int maclen = 0;
	size_t silen = strlen(unsigned_tok) - 1; /* without the trailing '.' */
	REQUIRE(HMAC(EVP_sha256(), pub.data, (int)pub.len, (uint8_t *)unsigned_tok, silen, mac, &maclen));
	char *hs = make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"exp\":1}", mac, maclen);
	REQUIRE(hs);
	CHECK_EQ_INT(parse_verify(hs, rsa_key, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(parse_verify(hs, rsa_key, "HS256"), BC_ERR_INVALID);
	free(hs);
	free(unsigned_tok);
	bc_buf_release(&pub);

	/* alg none, with an empty and with a non-empty signature; odd spellings of it */
	const char *nones[] = {"none", "None", "NONE", "", "RS256 ", "rs256", "HS512", "EdDSA"};
	for (size_t i = 0; i < sizeof(nones) / sizeof(nones[0]); i++) {
		char hdr[64];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", nones[i]);
		char *t = make_token(hdr, "{\"exp\":1}", NULL, 0);
		char *t2 = make_token(hdr, "{\"exp\":1}", "x", 1);
		REQUIRE(t && t2);
		CHECK_EQ_INT(parse_verify(t, rsa_key, NULL), BC_ERR_INVALID);
		CHECK_EQ_INT(parse_verify(t2, rsa_key, NULL), BC_ERR_INVALID);
		CHECK_EQ_INT(parse_verify(t, ec256, NULL), BC_ERR_INVALID);
		free(t);
		free(t2);
	}
	CHECK(!bc_jwk_alg_allowed(rsa_key, "none"));
	CHECK(!bc_jwk_alg_allowed(rsa_key, "HS256"));
	CHECK(!bc_jwk_alg_allowed(rsa_key, "ES256"));
	CHECK(!bc_jwk_alg_allowed(rsa_key, NULL));
	CHECK(bc_jwk_alg_allowed(rsa_key, "PS512"));
	CHECK(bc_jwk_alg_allowed(ec384, "ES384"));
	CHECK(!bc_jwk_alg_allowed(ec384, "ES256"));
	CHECK(!bc_jwk_alg_allowed(ec384, "RS256"));

	/* RS256 token with a pinned PS256 */
	char *rs = sign_claims(rsa_key, "RS256", "{}");
	REQUIRE(rs);
	CHECK_EQ_INT(parse_verify(rs, rsa_key, "PS256"), BC_ERR_INVALID);
	CHECK_EQ_INT(parse_verify(rs, rsa_key, "RS256"), BC_OK);
	/* a header rewritten to PS256 over an RS256 signature */
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	REQUIRE(bc_jwt_parse(&jwt, rs, strlen(rs), NULL) == BC_OK);
	jwt.alg = "PS256";
	CHECK_EQ_INT(bc_jwt_verify(&jwt, rsa_key, NULL, NULL), BC_ERR_CRYPTO);
	bc_jwt_release(&jwt);
	free(rs);
}

TEST(tampering_rejected)
{
	keys_init();
	REQUIRE(rsa_key && ec256);
	const char *algs2[] = {"RS256", "PS256", "ES256"};
	for (size_t i = 0; i < 3; i++) {
		struct bc_jwk *k = key_for(algs2[i]);
		char *tok = sign_claims(k, algs2[i], "{\"sub\":\"alice\",\"exp\":4102444800}");
		REQUIRE(tok);
		char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
		/* flip a payload char, a signature char, a header char */
		size_t idx[3] = {(size_t)(d1 - tok) + 3, (size_t)(d2 - tok) + 5, 2};
		for (size_t j = 0; j < 3; j++) {
			char *t = strdup(tok);
			t[idx[j]] = t[idx[j]] == 'A' ? 'B' : 'A';
			int rc = parse_verify(t, k, NULL);
			CHECK(rc != BC_OK);
			free(t);
		}
		/* another key of the same type */
		struct bc_jwk *other = gen(bc_jwk_kty(k), bc_jwk_bits(k));
		REQUIRE(other);
		CHECK_EQ_INT(parse_verify(tok, other, NULL), BC_ERR_CRYPTO);
		CHECK_EQ_INT(parse_verify(tok, k, NULL), BC_OK);
		bc_jwk_free(other);
		/* signature truncated */
		char *t = strdup(tok);
		t[strlen(t) - 4] = '\0';
		CHECK(parse_verify(t, k, NULL) != BC_OK);
		free(t);
		free(tok);
	}
}

static void check_jwk_round_trip(struct bc_jwk *k)
{
	struct bc_error err = {0};
	REQUIRE(bc_jwk_set_kid(k, "kid-1") == BC_OK);
	char tp[44], tp2[44];
	REQUIRE(bc_jwk_thumbprint(k, tp, &err) == BC_OK);
	CHECK_EQ_INT(strlen(tp), 43);

	json_t *pub = bc_jwk_to_jansson(k, false);
	json_t *priv = bc_jwk_to_jansson(k, true);
	REQUIRE(pub && priv);
	CHECK(json_object_get(pub, "d") == NULL);
	CHECK(json_object_get(priv, "d") != NULL);
	CHECK_STR(bc_json_str(pub, "kid"), "kid-1");
	CHECK_STR(bc_json_str(pub, "kty"), bc_jwk_kty(k));
	if (strcmp(bc_jwk_kty(k), "RSA") == 0) {
		CHECK_STR(bc_json_str(pub, "e"), "AQAB");
		CHECK(json_object_get(priv, "p") && json_object_get(priv, "qi"));
	} else {
		size_t f = (size_t)(bc_jwk_bits(k) + 7) / 8; /* full-size coordinates, no padding */
		CHECK_EQ_INT(strlen(bc_json_str(pub, "x")), (f * 8 + 5) / 6);
		CHECK_EQ_INT(strlen(bc_json_str(priv, "d")), (f * 8 + 5) / 6);
	}
	char *pubs = bc_json_dumps(pub), *privs = bc_json_dumps(priv);
	REQUIRE(pubs && privs);
	CHECK(strchr(pubs, '=') == NULL);

	struct bc_jwk *kp = NULL, *ks = NULL;
	CHECK_EQ_INT(bc_jwk_from_json(&kp, pubs, strlen(pubs), &err), BC_OK);
	CHECK_EQ_INT(bc_jwk_from_json(&ks, privs, strlen(privs), &err), BC_OK);
	REQUIRE(kp && ks);
	CHECK(!bc_jwk_is_private(kp));
	CHECK(bc_jwk_is_private(ks));
	CHECK_STR(bc_jwk_kid(kp), "kid-1");
	CHECK_EQ_INT(bc_jwk_bits(kp), bc_jwk_bits(k));
	CHECK(bc_jwk_thumbprint(kp, tp2, NULL) == BC_OK && strcmp(tp, tp2) == 0);
	CHECK(bc_jwk_thumbprint(ks, tp2, NULL) == BC_OK && strcmp(tp, tp2) == 0);
	/* the imported private key signs, the original verifies; the public one cannot sign */
	char *tok = sign_claims(ks, NULL, "{}");
	REQUIRE(tok);
	CHECK_EQ_INT(parse_verify(tok, k, NULL), BC_OK);
	CHECK_EQ_INT(parse_verify(tok, kp, NULL), BC_OK);
	free(tok);
	struct bc_buf out;
	bc_buf_init(&out, 0);
	CHECK_EQ_INT(bc_jws_sign(kp, NULL, NULL, "{}", 2, &out, NULL), BC_ERR_INVALID);
	/* PEM round trip, public and private */
	struct bc_jwk *kpem = NULL;
	CHECK(bc_jwk_to_pem(k, true, &out, &err) == BC_OK);
	CHECK(strstr(out.data, "-----BEGIN PRIVATE KEY-----") != NULL);
	CHECK(bc_jwk_from_pem(&kpem, out.data, out.len, &err) == BC_OK);
	CHECK(kpem && bc_jwk_is_private(kpem) && bc_jwk_thumbprint(kpem, tp2, NULL) == BC_OK && strcmp(tp, tp2) == 0);
	bc_jwk_free(kpem);
	kpem = NULL;
	bc_buf_reset(&out);
	CHECK(bc_jwk_to_pem(kp, false, &out, &err) == BC_OK);
	CHECK(bc_jwk_to_pem(kp, true, &out, NULL) == BC_ERR_INVALID);
	CHECK(strstr(out.data, "-----BEGIN PUBLIC KEY-----") != NULL);
	CHECK(bc_jwk_from_pem(&kpem, out.data, out.len, &err) == BC_OK);
	CHECK(kpem && !bc_jwk_is_private(kpem) && bc_jwk_thumbprint(kpem, tp2, NULL) == BC_OK &&
	      strcmp(tp, tp2) == 0);
	bc_jwk_free(kpem);
	bc_buf_release(&out);
	free(pubs);
	bc_wipe(privs, strlen(privs));
	free(privs);
	json_decref(pub);
	json_decref(priv);
	bc_jwk_free(kp);
	bc_jwk_free(ks);
	REQUIRE(bc_jwk_set_kid(k, NULL) == BC_OK);
	CHECK(bc_jwk_kid(k) == NULL);
}

TEST(jwk_round_trip)
{
	keys_init();
	REQUIRE(rsa_key && ec256 && ec384 && ec521);
	check_jwk_round_trip(rsa_key);
	check_jwk_round_trip(ec256);
	check_jwk_round_trip(ec384);
	check_jwk_round_trip(ec521);
}

/* RFC 7638 section 3.1: the example key and its thumbprint. */
TEST(rfc7638_thumbprint)
{
	const char *jwk =
		"{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aP"
		"FFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
		"65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
		"bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\","
		"\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
	struct bc_jwk *k = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_jwk_from_json(&k, jwk, strlen(jwk), &err) == BC_OK);
	char tp[44];
	CHECK(bc_jwk_thumbprint(k, tp, &err) == BC_OK);
	CHECK_STR(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	CHECK_STR(bc_jwk_kid(k), "2011-04-29");
	CHECK_EQ_INT(bc_jwk_bits(k), 2048);
	CHECK(!bc_jwk_is_private(k));
	bc_jwk_free(k);
}

/* RFC 7515 appendix A.3: an ES256 JWS made elsewhere verifies here. */
TEST(rfc7515_es256_vector)
{
	const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
			  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
	const char *tok = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
			  "bS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTU"
			  "JqPP3-Kg6NU1Q";
	struct bc_jwk *k = NULL;
	REQUIRE(bc_jwk_from_json(&k, jwk, strlen(jwk), NULL) == BC_OK);
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	REQUIRE(bc_jwt_parse(&jwt, tok, strlen(tok), NULL) == BC_OK);
	CHECK_STR(bc_json_str(jwt.claims, "iss"), "joe");
	CHECK_EQ_INT(bc_jwt_verify(&jwt, k, "ES256", NULL), BC_OK);
	CHECK_EQ_INT(bc_jwt_check_times(&jwt, 1300819380 - 10, 0, NULL), BC_OK);
	CHECK_EQ_INT(bc_jwt_check_times(&jwt, 1300819380, 0, NULL), BC_ERR_UNAUTHENTICATED);
	bc_jwt_release(&jwt);
	bc_jwk_free(k);
}

TEST(bad_jwks_members)
{
	/* each one must be refused with BC_ERR_INVALID (or LIMIT), never crash */
	const char *bad[] = {
		"{}",
		"[]",
		"{\"kty\":\"oct\",\"k\":\"AAAA\"}",
		"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
		"{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", /* tiny modulus */
		"{\"kty\":\"RSA\",\"n\":5,\"e\":\"AQAB\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1\"}", /* non-canonical base64 */
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4\"}", /* not on the curve */
		"{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":\"a\\nb\"}", /* control char in kid */
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":7}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"d\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bc_jwk *k = NULL;
		struct bc_error err = {0};
		int rc = bc_jwk_from_json(&k, bad[i], strlen(bad[i]), &err);
		if (rc != BC_ERR_INVALID)
			fprintf(stderr, "bad jwk %zu: rc %d %s\n", i, rc, err.msg);
		CHECK_EQ_INT(rc, BC_ERR_INVALID);
		CHECK(k == NULL);
	}
	/* a kid that is a path is just an opaque string: accepted, found only by exact match */
	const char *pathkid = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
			      "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":\"../../etc/passwd\"}";
	struct bc_jwk *k = NULL;
	CHECK(bc_jwk_from_json(&k, pathkid, strlen(pathkid), NULL) == BC_OK);
	bc_jwk_free(k);
	char big[BC_LIMIT_JWK_BYTES + 2];
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	k = NULL;
	CHECK_EQ_INT(bc_jwk_from_json(&k, big, strlen(big), NULL), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_jwk_set_kid(ec256, "x\ty"), BC_ERR_INVALID);
}

TEST(jwks_parse_find_export)
{
	keys_init();
	REQUIRE(rsa_key && ec256);
	struct bc_jwks *set = bc_jwks_new();
	REQUIRE(set);
	json_t *a = bc_jwk_to_jansson(rsa_key, true), *b = bc_jwk_to_jansson(ec256, false);
	REQUIRE(a && b);
	json_object_set_new(a, "kid", json_string("rsa-1"));
	json_object_set_new(b, "kid", json_string("ec-1"));
	json_object_set_new(b, "use", json_string("sig"));
	json_t *doc = json_pack("{s:[o,o,{s:s,s:s},{s:s,s:s,s:s}]}", "keys", a, b, "kty", "oct", "k", "AAAA", "kty", "OKP",
				"crv", "Ed25519", "x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
	REQUIRE(doc);
	char *s = bc_json_dumps(doc);
	json_decref(doc);
	REQUIRE(s);
	struct bc_jwks *parsed = NULL;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_jwks_parse(&parsed, s, strlen(s), &err), BC_OK);
	bc_wipe(s, strlen(s));
	free(s);
	REQUIRE(parsed);
	CHECK_EQ_INT(bc_jwks_count(parsed), 2); /* oct and OKP skipped (RFC 7517 section 5) */
	const struct bc_jwk *r = bc_jwks_find(parsed, "rsa-1"), *e = bc_jwks_find(parsed, "ec-1");
	CHECK(r && e && r == bc_jwks_get(parsed, 0) && e == bc_jwks_get(parsed, 1));
	CHECK(bc_jwks_find(parsed, "rsa-2") == NULL);
	CHECK(bc_jwks_find(parsed, "RSA-1") == NULL);
	CHECK(bc_jwks_find(parsed, NULL) == NULL);
	CHECK(bc_jwks_get(parsed, 2) == NULL);
	CHECK(r && bc_jwk_is_private(r));
	/* export holds public members only */
	json_t *ex = bc_jwks_to_jansson(parsed);
	REQUIRE(ex);
	char *exs = bc_json_dumps(ex);
	REQUIRE(exs);
	CHECK(strstr(exs, "\"d\"") == NULL && strstr(exs, "\"p\"") == NULL);
	struct bc_jwks *again = NULL;
	CHECK_EQ_INT(bc_jwks_parse(&again, exs, strlen(exs), &err), BC_OK);
	CHECK(again && bc_jwks_count(again) == 2 && !bc_jwk_is_private(bc_jwks_find(again, "rsa-1")));
	/* a token signed by the private key verifies with the key found in the exported set */
	char *tok = sign_claims(r, NULL, "{}");
	REQUIRE(tok);
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	CHECK(bc_jwt_parse(&jwt, tok, strlen(tok), NULL) == BC_OK);
	CHECK_EQ_INT(bc_jwt_verify(&jwt, bc_jwks_find(again, "rsa-1"), NULL, NULL), BC_OK);
	CHECK_EQ_INT(bc_jwt_verify(&jwt, bc_jwks_find(again, "ec-1"), NULL, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jwt_verify(&jwt, bc_jwks_find(again, "k1"), NULL, NULL), BC_ERR_INVALID); /* no such key */
	bc_jwt_release(&jwt);
	free(tok);
	free(exs);
	json_decref(ex);
	bc_jwks_free(again);
	bc_jwks_free(parsed);

	/* building a set; the cap on keys */
	struct bc_jwk *k = NULL;
	for (int i = 0; i < BC_LIMIT_JWKS_KEYS; i++) {
		REQUIRE(bc_jwk_from_pkey(&k, bc_jwk_pkey(ec256), NULL) == BC_OK);
		CHECK_EQ_INT(bc_jwks_add(set, k), BC_OK);
	}
	REQUIRE(bc_jwk_from_pkey(&k, bc_jwk_pkey(ec256), NULL) == BC_OK);
	CHECK_EQ_INT(bc_jwks_add(set, k), BC_ERR_LIMIT); /* k freed by add */
	CHECK_EQ_INT(bc_jwks_count(set), BC_LIMIT_JWKS_KEYS);
	bc_jwks_free(set);

	/* structural errors */
	const char *bad[] = {"{}", "{\"keys\":{}}", "[]", "{\"keys\":[", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bc_jwks *p = NULL;
		CHECK_EQ_INT(bc_jwks_parse(&p, bad[i], strlen(bad[i]), NULL), BC_ERR_INVALID);
		CHECK(p == NULL);
	}
	struct bc_buf many;
	bc_buf_init(&many, 0);
	CHECK(bc_buf_appends(&many, "{\"keys\":[") == BC_OK);
	for (int i = 0; i <= BC_LIMIT_JWKS_KEYS; i++)
		CHECK(bc_buf_appends(&many, i ? ",{}" : "{}") == BC_OK);
	CHECK(bc_buf_appends(&many, "]}") == BC_OK);
	struct bc_jwks *p = NULL;
	CHECK_EQ_INT(bc_jwks_parse(&p, many.data, many.len, NULL), BC_ERR_LIMIT);
	bc_buf_release(&many);
}

TEST(parse_limits)
{
	keys_init();
	REQUIRE(rsa_key);
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	struct bc_error err = {0};
	/* oversized token */
	char *big = malloc(BC_LIMIT_JWT_BYTES + 2);
	REQUIRE(big);
	memset(big, 'A', BC_LIMIT_JWT_BYTES + 1);
	big[10] = '.';
	big[20] = '.';
	big[BC_LIMIT_JWT_BYTES + 1] = '\0';
	CHECK_EQ_INT(bc_jwt_parse(&jwt, big, strlen(big), &err), BC_ERR_LIMIT);
	free(big);
	/* oversized header inside an acceptable token */
	struct bc_buf hb;
	bc_buf_init(&hb, 0);
	CHECK(bc_buf_appends(&hb, "{\"alg\":\"RS256\",\"x\":\"") == BC_OK);
	for (int i = 0; i < BC_LIMIT_JWT_HEADER_BYTES; i++)
		CHECK(bc_buf_appendc(&hb, 'a') == BC_OK);
	CHECK(bc_buf_appends(&hb, "\"}") == BC_OK);
	char *t = make_token(hb.data, "{}", "sig", 3);
	REQUIRE(t);
	CHECK_EQ_INT(bc_jwt_parse(&jwt, t, strlen(t), &err), BC_ERR_LIMIT);
	free(t);
	bc_buf_release(&hb);

	const char *invalid[] = {
		"",
		"eyJhbGciOiJSUzI1NiJ9",
		"eyJhbGciOiJSUzI1NiJ9.e30",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln.c2ln",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln.",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2ln=",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2l+",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2l/",
		"eyJhbGciOiJSUzI1NiJ9 .e30.c2ln",
		"eyJhbGciOiJSUzI1NiJ9.e30.c2lnA", /* 5 chars: not a base64 length */
		".e30.c2ln",
		"W10.e30.c2ln",                           /* header [] */
		"eyJhbGciOjF9.e30.c2ln",                  /* alg 1 */
		"e30.e30.c2ln",                           /* no alg */
		"bm90IGpzb24.e30.c2ln",                   /* not json */
		"eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.c2ln", /* kid 1 */
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		int rc = bc_jwt_parse(&jwt, invalid[i], strlen(invalid[i]), &err);
		if (rc != BC_ERR_INVALID)
			fprintf(stderr, "invalid[%zu]: rc %d (%s)\n", i, rc, err.msg);
		CHECK_EQ_INT(rc, BC_ERR_INVALID);
		CHECK(jwt.header == NULL);
	}
	/* a control char in the kid, an oversized kid, crit, duplicate keys */
	char kid[BC_LIMIT_KID + 40];
	snprintf(kid, sizeof(kid), "{\"alg\":\"RS256\",\"kid\":\"%0*d\"}", BC_LIMIT_KID + 1, 0);
	const char *hdrs[] = {"{\"alg\":\"RS256\",\"kid\":\"a\\u0000b\"}", kid,
			      "{\"alg\":\"RS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"alg\":\"RS256\",\"alg\":\"none\"}"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		char *tk = make_token(hdrs[i], "{}", "sig", 3);
		REQUIRE(tk);
		CHECK_EQ_INT(bc_jwt_parse(&jwt, tk, strlen(tk), &err), BC_ERR_INVALID);
		free(tk);
	}
	/* a payload that is not a JSON object parses, without claims */
	char *tk = make_token("{\"alg\":\"RS256\"}", "[1,2]", "sig", 3);
	REQUIRE(tk);
	CHECK_EQ_INT(bc_jwt_parse(&jwt, tk, strlen(tk), &err), BC_OK);
	CHECK(jwt.claims == NULL && jwt.kid == NULL);
	CHECK_EQ_INT(jwt.sig_len, 3);
	CHECK_EQ_INT(bc_jwt_check_times(&jwt, 0, 0, NULL), BC_ERR_INVALID);
	/* parse over a used struct replaces it */
	free(tk);
	tk = make_token("{\"alg\":\"ES256\",\"kid\":\"../../x\"}", "{\"a\":1}", "sig", 3);
	REQUIRE(tk);
	CHECK_EQ_INT(bc_jwt_parse(&jwt, tk, strlen(tk), &err), BC_OK);
	CHECK_STR(jwt.kid, "../../x");
	CHECK_EQ_INT(bc_json_int(jwt.claims, "a", 0), 1);
	CHECK_EQ_INT(jwt.signing_input_len, (size_t)(strrchr(tk, '.') - tk));
	CHECK(memcmp(jwt.signing_input, tk, jwt.signing_input_len) == 0);
	free(tk);
	bc_jwt_release(&jwt);
	bc_jwt_release(&jwt); /* release twice is harmless */
}

static int check_times_with(const char *claims, int64_t now, int64_t skew)
{
	char *t = make_token("{\"alg\":\"RS256\"}", claims, "s", 1);
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	int rc = t ? bc_jwt_parse(&jwt, t, strlen(t), NULL) : BC_ERR_NOMEM;
	if (rc == BC_OK)
		rc = bc_jwt_check_times(&jwt, now, skew, NULL);
	bc_jwt_release(&jwt);
	free(t);
	return rc;
}

TEST(check_times)
{
	CHECK_EQ_INT(check_times_with("{\"exp\":1000}", 999, 0), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":1000}", 1000, 0), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{\"exp\":1000}", 1200, 300), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":1000}", 1300, 300), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{\"exp\":1000.5}", 1000, 0), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{}", 0, 0), BC_ERR_INVALID);
	CHECK_EQ_INT(check_times_with("{\"exp\":\"2000\"}", 0, 0), BC_ERR_INVALID);
	CHECK_EQ_INT(check_times_with("{\"exp\":null}", 0, 0), BC_ERR_INVALID);
	CHECK_EQ_INT(check_times_with("{\"exp\":1e300}", 0, 0), BC_ERR_INVALID);
	CHECK_EQ_INT(check_times_with("{\"exp\":9223372036854775807}", 100, 300), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":-9223372036854775807}", 100, 300), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"nbf\":1500}", 1000, 0), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"nbf\":1500}", 1200, 300), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"nbf\":1500}", 1500, 0), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"nbf\":\"x\"}", 1500, 0), BC_ERR_INVALID);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"iat\":1600}", 1000, 300), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"iat\":1300}", 1000, 300), BC_OK);
	CHECK_EQ_INT(check_times_with("{\"exp\":2000,\"iat\":1300}", 1000, -5), BC_ERR_UNAUTHENTICATED);
}

/* ---- cross-checks against independent implementations ----------------------------------- */

static cjose_jwk_t *to_cjose(const struct bc_jwk *k, bool priv)
{
	json_t *j = bc_jwk_to_jansson(k, priv);
	char *s = j ? bc_json_dumps(j) : NULL;
	json_decref(j);
	cjose_jwk_t *c = s ? cjose_jwk_import(s, strlen(s), NULL) : NULL;
	free(s);
	return c;
}

TEST(cjose_interop)
{
	keys_init();
	REQUIRE(rsa_key && ec256 && ec384 && ec521);
	const char *payload = "{\"iss\":\"badge\"}";
	for (size_t i = 0; i < NALGS; i++) {
		const char *alg = all_algs[i];
		struct bc_jwk *k = key_for(alg);
		cjose_jwk_t *cpub = to_cjose(k, false), *cpriv = to_cjose(k, true);
		CHECK(cpub && cpriv);
		if (!cpub || !cpriv)
			continue;
		/* ours -> cjose */
		char *tok = sign_claims(k, alg, payload);
		cjose_jws_t *jws = tok ? cjose_jws_import(tok, strlen(tok), NULL) : NULL;
		CHECK(jws && cjose_jws_verify(jws, cpub, NULL));
		cjose_jws_release(jws);
		free(tok);
		/* cjose -> ours */
		cjose_header_t *h = cjose_header_new(NULL);
		CHECK(h && cjose_header_set(h, CJOSE_HDR_ALG, alg, NULL));
		jws = cjose_jws_sign(cpriv, h, (const uint8_t *)payload, strlen(payload), NULL);
		const char *ser = NULL;
		CHECK(jws && cjose_jws_export(jws, &ser, NULL));
		if (ser)
			CHECK_EQ_INT(parse_verify(ser, k, alg), BC_OK);
		cjose_jws_release(jws);
		cjose_header_release(h);
		/* a cjose key imported here has the same thumbprint */
		char *cj = cjose_jwk_to_json(cpriv, true, NULL);
		struct bc_jwk *back = NULL;
		char tp1[44], tp2[44];
		CHECK(cj && bc_jwk_from_json(&back, cj, strlen(cj), NULL) == BC_OK);
		CHECK(back && bc_jwk_is_private(back) && bc_jwk_thumbprint(back, tp1, NULL) == BC_OK &&
		      bc_jwk_thumbprint(k, tp2, NULL) == BC_OK && strcmp(tp1, tp2) == 0);
		bc_jwk_free(back);
		free(cj);
		cjose_jwk_release(cpub);
		cjose_jwk_release(cpriv);
	}
}

/* The openssl command verifies our RS256 and PS256 signatures over a JWS signing input. */
TEST(openssl_cli_interop)
{
	keys_init();
	REQUIRE(rsa_key);
	if (system("openssl version >/dev/null 2>&1") != 0) {
		printf("skip: no openssl command\n");
		return;
	}
	char dir[] = "/tmp/badge-jose-XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[256], cmd[1024];
	struct bc_buf pem;
	bc_buf_init(&pem, 0);
	REQUIRE(bc_jwk_to_pem(rsa_key, false, &pem, NULL) == BC_OK);
	snprintf(path, sizeof(path), "%s/pub.pem", dir);
	CHECK(bc_write_file_atomic(path, pem.data, pem.len, 0600, NULL) == BC_OK);
	const char *algs2[] = {"RS256", "PS256", "RS512", "PS384"};
	for (size_t i = 0; i < 4; i++) {
		char *tok = sign_claims(rsa_key, algs2[i], "{\"a\":1}");
		REQUIRE(tok);
		struct bc_jwt jwt;
		bc_jwt_init(&jwt);
		REQUIRE(bc_jwt_parse(&jwt, tok, strlen(tok), NULL) == BC_OK);
		snprintf(path, sizeof(path), "%s/in", dir);
		CHECK(bc_write_file_atomic(path, jwt.signing_input, jwt.signing_input_len, 0600, NULL) == BC_OK);
		snprintf(path, sizeof(path), "%s/sig", dir);
		CHECK(bc_write_file_atomic(path, jwt.sig, jwt.sig_len, 0600, NULL) == BC_OK);
		const char *bits = algs2[i] + 2;
		snprintf(cmd, sizeof(cmd),
			 "openssl dgst -sha%s -verify %s/pub.pem %s -signature %s/sig %s/in >/dev/null 2>&1", bits,
			 dir, algs2[i][0] == 'P' ? "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest" : "",
			 dir, dir);
		CHECK_EQ_INT(system(cmd), 0);
		bc_jwt_release(&jwt);
		free(tok);
	}
	/* and a key openssl generated imports through PEM */
	snprintf(cmd, sizeof(cmd), "openssl ecparam -name secp384r1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out %s/ec.pem 2>/dev/null", dir);
	CHECK_EQ_INT(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/ec.pem", dir);
	char *data = NULL;
	size_t len = 0;
	CHECK(bc_read_file(path, 65536, &data, &len, NULL) == BC_OK);
	struct bc_jwk *k = NULL;
	CHECK(data && bc_jwk_from_pem(&k, data, len, NULL) == BC_OK);
	CHECK(k && bc_jwk_is_private(k) && bc_jwk_bits(k) == 384 && strcmp(bc_jwk_default_alg(k), "ES384") == 0);
	bc_jwk_free(k);
	free(data);
	bc_buf_release(&pem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

struct thr {
	const char *tok;
	const struct bc_jwk *key;
	int ok;
};

static void *verify_many(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < 200; i++)
		t->ok += parse_verify(t->tok, t->key, NULL) == BC_OK;
	char *mine = sign_claims(t->key, NULL, "{\"t\":1}");
	t->ok += mine && parse_verify(mine, t->key, NULL) == BC_OK;
	free(mine);
	return NULL;
}

TEST(concurrent_verify_same_key)
{
	keys_init();
	REQUIRE(rsa_key && ec256);
	char *rs = sign_claims(rsa_key, "PS256", "{}"), *es = sign_claims(ec256, "ES256", "{}");
	REQUIRE(rs && es);
	pthread_t th[8];
	struct thr t[8];
	for (int i = 0; i < 8; i++) {
		t[i] = (struct thr){i % 2 ? rs : es, i % 2 ? rsa_key : ec256, 0};
		REQUIRE(pthread_create(&th[i], NULL, verify_many, &t[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(t[i].ok, 201);
	}
	free(rs);
	free(es);
}

TEST(generate_and_pkey)
{
	struct bc_jwk *k = NULL;
	CHECK_EQ_INT(bc_jwk_generate(&k, "RSA", 1024, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jwk_generate(&k, "EC", 255, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jwk_generate(&k, "oct", 256, NULL), BC_ERR_INVALID);
	CHECK(k == NULL);
	/* a 1024-bit RSA key from outside is refused; so is an Ed25519 one */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	REQUIRE(small && ed);
	CHECK_EQ_INT(bc_jwk_from_pkey(&k, small, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_jwk_from_pkey(&k, ed, NULL), BC_ERR_INVALID);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ed);
	/* from_pkey takes its own reference */
	EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp521r1");
	REQUIRE(p);
	CHECK_EQ_INT(bc_jwk_from_pkey(&k, p, NULL), BC_OK);
	EVP_PKEY_free(p);
	REQUIRE(k);
	CHECK(bc_jwk_is_private(k) && bc_jwk_bits(k) == 521 && bc_jwk_pkey(k) == p);
	CHECK_STR(bc_jwk_kty(k), "EC");
	char *tok = sign_claims(k, NULL, "{}");
	CHECK(tok && parse_verify(tok, k, "ES512") == BC_OK);
	free(tok);
	bc_jwk_free(k);
	bc_jwk_free(NULL);
	bc_jwks_free(NULL);
	k = NULL;
	CHECK_EQ_INT(bc_jwk_from_pem(&k, "junk", 4, NULL), BC_ERR_INVALID);
	const char *badpem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	CHECK_EQ_INT(bc_jwk_from_pem(&k, badpem, strlen(badpem), NULL), BC_ERR_INVALID);
	CHECK(bc_alg_md("RS384") == bc_alg_md("ES384") && bc_alg_md("RS384") != NULL);
	CHECK(bc_alg_md("HS256") == NULL && bc_alg_md(NULL) == NULL);
}

static void keys_free(void)
{
	bc_jwk_free(rsa_key);
	bc_jwk_free(ec256);
	bc_jwk_free(ec384);
	bc_jwk_free(ec521);
	rsa_key = ec256 = ec384 = ec521 = NULL;
}

TEST(cleanup)
{
	keys_free();
}

TEST_MAIN(T(round_trip_every_alg), T(default_alg_follows_key), T(sign_verify_digest), T(alg_pinning),
	  T(tampering_rejected), T(jwk_round_trip), T(rfc7638_thumbprint), T(rfc7515_es256_vector),
	  T(bad_jwks_members), T(jwks_parse_find_export), T(parse_limits), T(check_times), T(cjose_interop),
	  T(openssl_cli_interop), T(concurrent_verify_same_key), T(generate_and_pkey), T(cleanup))
