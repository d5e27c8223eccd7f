/* The vault's data plane driven through the route table (bc_http_dispatch_test) with a real
 * directory and resource manager on a SQLite store in a temp dir: the challenge, tokens,
 * access policies, secrets, keys, bad input, encryption at rest and the audit trail. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/b64.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/util.h"
#include "test.h"
#include "vault/vault_int.h"
#define STACK_VAULT
#include "stack.h"

#define LOGIN       STACK_LOGIN
#define VRES        STACK_VRES
#define VHOST       "kv1.vault.badge.internal:8443"
#define VBASE       "https://kv1.vault.badge.internal:8443"
#define API         "?api-version=2025-07-01"
#define SECRET_MARK "hunter2-0a1b2c3d-at-rest-marker"

static struct resp kv(const char *method, const char *path, const char *token, const char *body)
{
	return stack_call(method, VHOST, path, token, body);
}

static const char *err_code(const struct resp *r)
{
	return bc_json_str(json_object_get(r->body, "error"), "code");
}

static void make_vault(const char *name, const char *extra_props)
{
	char path[512], body[2048];
	snprintf(path, sizeof(path),
		 "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/"
		 "%s?api-version=2023-07-01",
		 sub, name);
	snprintf(body, sizeof(body),
		 "{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
		 "\"name\":\"standard\"},"
		 "\"accessPolicies\":["
		 "{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"all\"],\"keys\":["
		 "\"all\"]}},"
		 "{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"get\",\"list\"],"
		 "\"keys\":[\"get\",\"verify\"]}}]"
		 "%s}}",
		 tenant, tenant, writer.object_id, tenant, reader.object_id, extra_props ? extra_props : "");
	mgmt_put(path, body);
}

static void setup(void)
{
	bc_log_set_level(BC_LOG_ERROR);
	stack_open("vaulttest", true);
	make_vault("kv1", NULL);
}

/* ---- authentication ---------------------------------------------------------------------- */

TEST(challenge)
{
	char want[512];
	snprintf(want, sizeof(want), "Bearer authorization=\"%s/%s\", resource=\"%s\"", LOGIN, tenant, VRES);
	/* the clients' first request: no token, no body, even on PUT */
	struct resp r = kv("PUT", "/secrets/s1" API, NULL, NULL);
	CHECK_EQ_INT(r.status, 401);
	CHECK_STR(r.www, want);
	CHECK_STR(err_code(&r), "Unauthorized");
	CHECK_STR(bc_json_str(json_object_get(r.body, "error"), "message"),
		  "AKV10000: Request is missing a Bearer or PoP token.");
	resp_release(&r);
	r = kv("GET", "/secrets/s1/" API, NULL, NULL);
	CHECK_EQ_INT(r.status, 401);
	CHECK_STR(r.www, want);
	resp_release(&r);
	/* a management token is for another audience */
	r = kv("GET", "/secrets/s1/" API, tok_writer_mgmt, NULL);
	CHECK_EQ_INT(r.status, 401);
	CHECK_STR(r.www, want);
	resp_release(&r);
	r = kv("PUT", "/secrets/s1" API, tok_writer_mgmt, "{\"value\":\"x\"}");
	CHECK_EQ_INT(r.status, 401);
	resp_release(&r);
	/* a tampered token */
	char *bad = strdup(tok_writer);
	bad[strlen(bad) - 5] = bad[strlen(bad) - 5] == 'A' ? 'B' : 'A';
	r = kv("GET", "/secrets/s1/" API, bad, NULL);
	CHECK_EQ_INT(r.status, 401);
	resp_release(&r);
	free(bad);
	r = kv("GET", "/secrets/s1/" API, "eyJhbGciOiJub25lIn0.e30.", NULL);
	CHECK_EQ_INT(r.status, 401);
	resp_release(&r);
	/* nothing was written by any of these */
	r = kv("GET", "/secrets/s1/" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
}

TEST(api_versions)
{
	struct resp r = kv("GET", "/secrets?api-version=7.9", tok_writer, NULL);
	CHECK_EQ_INT(r.status, 400);
	CHECK_STR(err_code(&r), "BadParameter");
	resp_release(&r);
	r = kv("GET", "/secrets", tok_writer, NULL);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = kv("GET", "/secrets?api%2Dversion=7.3", tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/secrets?api-version=7.4-preview.1", tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
}

/* ---- secrets ----------------------------------------------------------------------------- */

TEST(secrets_lifecycle)
{
	struct resp r =
		kv("PUT", "/secrets/db-password" API, tok_writer,
		   "{\"value\":\"" SECRET_MARK "\",\"tags\":{\"a\":\"b\"},\"contentType\":\"text/plain\","
		   "\"attributes\":{\"enabled\":true,\"exp\":4102444800}}");
	REQUIRE(r.status == 200);
	const char *id = bc_json_str(r.body, "id");
	REQUIRE(id);
	CHECK(strncmp(id, VBASE "/secrets/db-password/", strlen(VBASE "/secrets/db-password/")) == 0);
	char ver1[64];
	snprintf(ver1, sizeof(ver1), "%s", id + strlen(VBASE "/secrets/db-password/"));
	CHECK(vault_version_valid(ver1));
	CHECK_STR(bc_json_str(r.body, "value"), SECRET_MARK);
	json_t *attrs = json_object_get(r.body, "attributes");
	CHECK_STR(bc_json_str(attrs, "recoveryLevel"), "Recoverable+Purgeable");
	CHECK_EQ_INT(bc_json_int(attrs, "recoverableDays", 0), 90);
	CHECK_EQ_INT(bc_json_int(attrs, "exp", 0), 4102444800);
	resp_release(&r);

	/* latest through the empty version segment, and by version; names are case-insensitive */
	r = kv("GET", "/secrets/DB-Password/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "value"), SECRET_MARK);
	CHECK_STR(bc_json_str(json_object_get(r.body, "tags"), "a"), "b");
	resp_release(&r);
	char path[256];
	snprintf(path, sizeof(path), "/secrets/db-password/%s" API, ver1);
	r = kv("GET", path, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);

	/* a second version; update the first one's attributes */
	r = kv("PUT", "/secrets/db-password" API, tok_writer, "{\"value\":\"v2\",\"attributes\":{}}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/secrets/db-password/" API, tok_reader, NULL);
	CHECK_STR(bc_json_str(r.body, "value"), "v2");
	resp_release(&r);
	snprintf(path, sizeof(path), "/secrets/db-password/%s" API, ver1);
	r = kv("PATCH", path, tok_writer, "{\"attributes\":{\"enabled\":false},\"tags\":{\"c\":\"d\"}}");
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_object_get(r.body, "value") == NULL);
	CHECK(!bc_json_bool(json_object_get(r.body, "attributes"), "enabled", true));
	resp_release(&r);
	r = kv("GET", path, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403);
	CHECK_STR(err_code(&r), "Forbidden");
	resp_release(&r);
	r = kv("GET", "/secrets/db-password/versions" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(json_array_size(json_object_get(r.body, "value")), 2);
	resp_release(&r);

	/* soft delete: 404 on the live URL, visible under deletedsecrets, then recover */
	r = kv("DELETE", "/secrets/db-password" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "recoveryId"), VBASE "/deletedsecrets/db-password");
	CHECK(bc_json_int(r.body, "scheduledPurgeDate", 0) > bc_json_int(r.body, "deletedDate", 0));
	resp_release(&r);
	r = kv("GET", "/secrets/db-password/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "SecretNotFound");
	resp_release(&r);
	r = kv("PUT", "/secrets/db-password" API, tok_writer, "{\"value\":\"v3\"}");
	CHECK_EQ_INT(r.status, 409);
	CHECK_STR(err_code(&r), "Conflict");
	resp_release(&r);
	r = kv("GET", "/deletedsecrets/db-password" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_object_get(r.body, "value") == NULL);
	resp_release(&r);
	r = kv("GET", "/deletedsecrets" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(json_array_size(json_object_get(r.body, "value")), 1);
	resp_release(&r);
	r = kv("POST", "/deletedsecrets/db-password/recover" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/secrets/db-password/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "value"), "v2");
	resp_release(&r);

	/* backup, delete, purge (204), restore */
	r = kv("POST", "/secrets/db-password/backup" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	char *blob = strdup(bc_json_str(r.body, "value") ? bc_json_str(r.body, "value") : "");
	resp_release(&r);
	r = kv("DELETE", "/secrets/db-password" API, tok_writer, NULL);
	resp_release(&r);
	r = kv("DELETE", "/deletedsecrets/db-password" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403);
	resp_release(&r);
	r = kv("DELETE", "/deletedsecrets/db-password" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 204);
	CHECK(r.body == NULL);
	resp_release(&r);
	r = kv("GET", "/deletedsecrets/db-password" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	char body[8192];
	snprintf(body, sizeof(body), "{\"value\":\"%s\"}", blob);
	r = kv("POST", "/secrets/restore" API, tok_writer, body);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("POST", "/secrets/restore" API, tok_writer, body);
	CHECK_EQ_INT(r.status, 409);
	resp_release(&r);
	r = kv("GET", "/secrets/db-password/" API, tok_reader, NULL);
	CHECK_STR(bc_json_str(r.body, "value"), "v2");
	resp_release(&r);
	snprintf(path, sizeof(path), "/secrets/db-password/%s" API, ver1);
	r = kv("GET", path, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403); /* still disabled after the round trip */
	resp_release(&r);
	/* a tampered blob is refused */
	blob[20] = blob[20] == 'A' ? 'B' : 'A';
	snprintf(body, sizeof(body), "{\"value\":\"%s\"}", blob);
	r = kv("POST", "/secrets/restore" API, tok_writer, body);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	free(blob);
}

TEST(secrets_paging)
{
	char path[128];
	for (int i = 0; i < 7; i++) {
		snprintf(path, sizeof(path), "/secrets/page-%d" API, i);
		struct resp r = kv("PUT", path, tok_writer, "{\"value\":\"p\"}");
		CHECK_EQ_INT(r.status, 200);
		resp_release(&r);
	}
	int seen = 0, pages = 0;
	char next[1024];
	snprintf(next, sizeof(next), "/secrets" API "&maxresults=3");
	while (*next && pages < 20) {
		struct resp r = kv("GET", next, tok_reader, NULL);
		REQUIRE(r.status == 200);
		json_t *val = json_object_get(r.body, "value");
		CHECK(json_is_array(val));
		CHECK(json_array_size(val) <= 3);
		seen += (int)json_array_size(val);
		pages++;
		const char *nl = bc_json_str(r.body, "nextLink");
		if (nl) {
			CHECK(strncmp(nl, VBASE "/secrets?", strlen(VBASE "/secrets?")) == 0);
			snprintf(next, sizeof(next), "%s", nl + strlen(VBASE));
		} else {
			next[0] = '\0';
		}
		resp_release(&r);
	}
	CHECK(seen >= 7);
	struct resp r = kv("GET", "/secrets" API "&maxresults=26", tok_reader, NULL);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = kv("GET", "/secrets" API "&$skiptoken=%%%%", tok_reader, NULL);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
}

TEST(secrets_bad_input)
{
	struct resp r = kv("PUT", "/secrets/bad_name" API, tok_writer, "{\"value\":\"x\"}");
	CHECK_EQ_INT(r.status, 400);
	CHECK_STR(err_code(&r), "BadParameter");
	resp_release(&r);
	r = kv("PUT", "/secrets/ok-name" API, tok_writer, "{\"value\":");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	char *big = malloc(BC_LIMIT_SECRET_VALUE + 64);
	REQUIRE(big);
	strcpy(big, "{\"value\":\"");
	memset(big + 10, 'x', BC_LIMIT_SECRET_VALUE + 1);
	strcpy(big + 10 + BC_LIMIT_SECRET_VALUE + 1, "\"}");
	r = kv("PUT", "/secrets/ok-name" API, tok_writer, big);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	free(big);
	r = kv("GET", "/secrets/ok-name/" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404); /* none of the above wrote anything */
	resp_release(&r);
	r = kv("GET", "/secrets/ok-name/nothex" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	/* the reader may not set: Azure's message shape */
	r = kv("PUT", "/secrets/ok-name" API, tok_reader, "{\"value\":\"x\"}");
	CHECK_EQ_INT(r.status, 403);
	CHECK_STR(err_code(&r), "Forbidden");
	const char *msg = bc_json_str(json_object_get(r.body, "error"), "message");
	CHECK(msg && strstr(msg, "does not have secrets set permission on key vault 'kv1"));
	CHECK(msg && strstr(msg, reader.object_id));
	resp_release(&r);
	/* an unknown vault */
	r = stack_call("GET", "nope1.vault.badge.internal:8443", "/secrets" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
}

TEST(path_style)
{
	struct resp r = stack_call("PUT", "127.0.0.1:8443", "/vaults/kv1/secrets/path-style" API, tok_writer,
			     "{\"value\":\"ps\"}");
	CHECK_EQ_INT(r.status, 200);
	const char *id = bc_json_str(r.body, "id");
	CHECK(id && strncmp(id, VBASE "/secrets/path-style/", strlen(VBASE "/secrets/path-style/")) == 0);
	resp_release(&r);
	r = stack_call("GET", "localhost:8443", "/vaults/kv1/secrets/path-style/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "value"), "ps");
	resp_release(&r);
	r = stack_call("GET", "localhost:8443", "/vaults/kv1/secrets/path-style/" API, NULL, NULL);
	CHECK_EQ_INT(r.status, 401);
	CHECK(strstr(r.www, "resource=\"" VRES "\"") != NULL);
	resp_release(&r);
}

/* ---- keys -------------------------------------------------------------------------------- */

static char *b64url(const void *p, size_t n)
{
	return bc_b64url_encode_str(p, n);
}

static void sign_verify(const char *name, const char *alg, const EVP_MD *md)
{
	uint8_t digest[64];
	unsigned dlen = 0;
	char path[256], body[1024];
	EVP_Digest("hello", 5, digest, &dlen, md, NULL);
	char *d64 = b64url(digest, dlen);
	snprintf(path, sizeof(path), "/keys/%s//sign" API, name);
	snprintf(body, sizeof(body), "{\"alg\":\"%s\",\"value\":\"%s\"}", alg, d64);
	struct resp r = kv("POST", path, tok_writer, body);
	CHECK_EQ_INT(r.status, 200);
	const char *sig = bc_json_str(r.body, "value");
	REQUIRE(sig);
	/* verify with the public JWK from GET, outside the vault */
	struct resp k = kv("GET", "/keys/ec1/" API, tok_reader, NULL);
	snprintf(path, sizeof(path), "/keys/%s/" API, name);
	resp_release(&k);
	k = kv("GET", path, tok_reader, NULL);
	json_t *jwk = json_deep_copy(json_object_get(k.body, "key"));
	json_object_set_new(jwk, "kty",
			    json_string(strncmp(bc_json_str(jwk, "kty"), "EC", 2) == 0 ? "EC" : "RSA"));
	json_object_del(jwk, "key_ops");
	json_object_del(jwk, "kid");
	CHECK(json_object_get(jwk, "d") == NULL);
	struct bc_jwk *pub = NULL;
	struct bc_error err = {0};
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	REQUIRE(bc_jwk_from_jansson(&pub, jwk, &err) == BC_OK);
	REQUIRE(bc_b64url_decode(sig, strlen(sig), &raw, &rawlen, &err) == BC_OK);
	CHECK_EQ_INT(bc_sig_verify_digest(pub, alg, digest, dlen, raw, rawlen, &err), BC_OK);
	if (alg[0] == 'E')
		CHECK_EQ_INT(rawlen, bc_jwk_bits(pub) == 521 ? 132 : bc_jwk_bits(pub) / 4);
	/* and the vault's own verify */
	snprintf(path, sizeof(path), "/keys/%s//verify" API, name);
	snprintf(body, sizeof(body), "{\"alg\":\"%s\",\"digest\":\"%s\",\"value\":\"%s\"}", alg, d64, sig);
	struct resp vr = kv("POST", path, tok_reader, body);
	CHECK_EQ_INT(vr.status, 200);
	CHECK(json_is_true(json_object_get(vr.body, "value")));
	resp_release(&vr);
	digest[0] ^= 1;
	char *d64b = b64url(digest, dlen);
	snprintf(body, sizeof(body), "{\"alg\":\"%s\",\"digest\":\"%s\",\"value\":\"%s\"}", alg, d64b, sig);
	vr = kv("POST", path, tok_reader, body);
	CHECK_EQ_INT(vr.status, 200);
	CHECK(json_is_false(json_object_get(vr.body, "value")));
	resp_release(&vr);
	free(d64b);
	free(raw);
	bc_jwk_free(pub);
	json_decref(jwk);
	resp_release(&k);
	resp_release(&r);
	free(d64);
}

TEST(keys_create_sign)
{
	struct resp r = kv("POST", "/keys/rsa1/create" API, tok_writer,
			   "{\"kty\":\"RSA\",\"key_size\":2048,\"attributes\":{}}");
	REQUIRE(r.status == 200);
	json_t *key = json_object_get(r.body, "key");
	CHECK_STR(bc_json_str(key, "kty"), "RSA");
	CHECK_STR(bc_json_str(key, "e"), "AQAB");
	CHECK(json_object_get(key, "d") == NULL && json_object_get(key, "p") == NULL);
	CHECK(strncmp(bc_json_str(key, "kid"), VBASE "/keys/rsa1/", strlen(VBASE "/keys/rsa1/")) == 0);
	char *ops = json_dumps(json_object_get(key, "key_ops"), JSON_COMPACT);
	CHECK_STR(ops, "[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\"]");
	free(ops);
	CHECK(json_is_false(json_object_get(json_object_get(r.body, "attributes"), "exportable")));
	resp_release(&r);
	r = kv("POST", "/keys/ec1/create" API, tok_writer,
	       "{\"kty\":\"EC\",\"attributes\":{},\"crv\":\"P-256\"}");
	REQUIRE(r.status == 200);
	CHECK_STR(bc_json_str(json_object_get(r.body, "key"), "crv"), "P-256");
	resp_release(&r);
	r = kv("POST", "/keys/ec5/create" API, tok_writer, "{\"kty\":\"EC-HSM\",\"crv\":\"P-521\"}");
	REQUIRE(r.status == 200);
	CHECK_STR(bc_json_str(json_object_get(r.body, "key"), "kty"), "EC-HSM");
	resp_release(&r);
	sign_verify("rsa1", "RS256", EVP_sha256());
	sign_verify("rsa1", "PS384", EVP_sha384());
	sign_verify("ec1", "ES256", EVP_sha256());
	sign_verify("ec5", "ES512", EVP_sha512());
	/* the wrong curve, a bad digest length, the reader may not sign */
	r = kv("POST", "/keys/ec1//sign" API, tok_writer, "{\"alg\":\"ES384\",\"value\":\"AAAA\"}");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = kv("POST", "/keys/rsa1//sign" API, tok_writer, "{\"alg\":\"RS256\",\"value\":\"AAAA\"}");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = kv("POST", "/keys/rsa1//sign" API, tok_reader,
	       "{\"alg\":\"RS256\",\"value\":\"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU\"}");
	CHECK_EQ_INT(r.status, 403);
	resp_release(&r);
}

TEST(keys_encrypt_wrap)
{
	static const char *const algs[] = {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"};
	const char *pt = "c2VjcmV0LWJ5dGVzLTEyMzQ"; /* "secret-bytes-1234" */
	char body[2048];
	for (size_t i = 0; i < 3; i++) {
		for (int wrap = 0; wrap < 2; wrap++) {
			snprintf(body, sizeof(body), "{\"alg\":\"%s\",\"value\":\"%s\"}", algs[i], pt);
			struct resp e =
				kv("POST", wrap ? "/keys/rsa1//wrapkey" API : "/keys/rsa1//encrypt" API,
				   tok_writer, body);
			CHECK_EQ_INT(e.status, 200);
			REQUIRE(bc_json_str(e.body, "value"));
			snprintf(body, sizeof(body), "{\"alg\":\"%s\",\"value\":\"%s\"}", algs[i],
				 bc_json_str(e.body, "value"));
			struct resp dcr =
				kv("POST", wrap ? "/keys/rsa1//unwrapkey" API : "/keys/rsa1//decrypt" API,
				   tok_writer, body);
			CHECK_EQ_INT(dcr.status, 200);
			CHECK_STR(bc_json_str(dcr.body, "value"), pt);
			resp_release(&e);
			resp_release(&dcr);
		}
	}
	/* OAEP here is SHA-1 (as the clients encrypt locally): check against OpenSSL directly */
	struct resp k = kv("GET", "/keys/rsa1/" API, tok_reader, NULL);
	json_t *jwk = json_deep_copy(json_object_get(k.body, "key"));
	json_object_del(jwk, "key_ops");
	json_object_del(jwk, "kid");
	struct bc_jwk *pub = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_jwk_from_jansson(&pub, jwk, &err) == BC_OK);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(bc_jwk_pkey(pub), NULL);
	uint8_t ct[512];
	size_t ctlen = sizeof(ct);
	REQUIRE(EVP_PKEY_encrypt_init(ctx) == 1 &&
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
		EVP_PKEY_encrypt(ctx, ct, &ctlen, (const uint8_t *)"local", 5) == 1);
	char *ct64 = b64url(ct, ctlen);
	snprintf(body, sizeof(body), "{\"alg\":\"RSA-OAEP\",\"value\":\"%s\"}", ct64);
	struct resp dcr = kv("POST", "/keys/rsa1//decrypt" API, tok_writer, body);
	CHECK_EQ_INT(dcr.status, 200);
	CHECK_STR(bc_json_str(dcr.body, "value"), "bG9jYWw");
	resp_release(&dcr);
	free(ct64);
	EVP_PKEY_CTX_free(ctx);
	bc_jwk_free(pub);
	json_decref(jwk);
	resp_release(&k);

	/* key_ops are enforced: restrict to sign/verify, then encrypt is refused */
	struct resp u = kv("PATCH", "/keys/rsa1/" API, tok_writer, "{\"key_ops\":[\"sign\",\"verify\"]}");
	CHECK_EQ_INT(u.status, 200);
	resp_release(&u);
	snprintf(body, sizeof(body), "{\"alg\":\"RSA-OAEP\",\"value\":\"%s\"}", pt);
	u = kv("POST", "/keys/rsa1//encrypt" API, tok_writer, body);
	CHECK_EQ_INT(u.status, 403);
	resp_release(&u);
	u = kv("POST", "/keys/ec1//encrypt" API, tok_writer, body);
	CHECK_EQ_INT(u.status, 403);
	resp_release(&u);
}

TEST(keys_import_rotate_backup)
{
	struct bc_jwk *k = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_jwk_generate(&k, "EC", 384, &err) == BC_OK);
	json_t *jwk = bc_jwk_to_jansson(k, true);
	json_object_del(jwk, "kid");
	json_object_set_new(jwk, "kty", json_string("EC-HSM"));
	json_t *body = json_pack("{s:b,s:o,s:{s:b}}", "Hsm", 1, "key", jwk, "attributes", "enabled", 1);
	char *b = json_dumps(body, JSON_COMPACT);
	struct resp r = kv("PUT", "/keys/imported" API, tok_writer, b);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(json_object_get(r.body, "key"), "kty"), "EC-HSM");
	CHECK(json_object_get(json_object_get(r.body, "key"), "d") == NULL);
	resp_release(&r);
	free(b);
	json_decref(body);
	bc_jwk_free(k);

	r = kv("POST", "/keys/imported/rotate" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(json_object_get(r.body, "key"), "crv"), "P-384");
	resp_release(&r);
	r = kv("GET", "/keys/imported/versions" API, tok_writer, NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.body, "value")), 2);
	resp_release(&r);

	r = kv("POST", "/keys/imported/backup" API, tok_writer, NULL);
	REQUIRE(r.status == 200);
	char *blob = strdup(bc_json_str(r.body, "value"));
	resp_release(&r);
	r = kv("DELETE", "/keys/imported" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "recoveryId"), VBASE "/deletedkeys/imported");
	resp_release(&r);
	r = kv("POST", "/keys/imported//sign" API, tok_writer, "{\"alg\":\"ES384\",\"value\":\"AAAA\"}");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "KeyNotFound");
	resp_release(&r);
	r = kv("DELETE", "/deletedkeys/imported" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 204);
	resp_release(&r);
	char *rb = malloc(strlen(blob) + 32);
	sprintf(rb, "{\"value\":\"%s\"}", blob);
	/* a secrets restore does not take a key backup */
	r = kv("POST", "/secrets/restore" API, tok_writer, rb);
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = kv("POST", "/keys/restore" API, tok_writer, rb);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/keys/imported/versions" API, tok_writer, NULL);
	CHECK_EQ_INT(json_array_size(json_object_get(r.body, "value")), 2);
	resp_release(&r);
	free(rb);
	free(blob);

	r = kv("POST", "/rng" API, tok_reader, "{\"count\":32}");
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(strlen(bc_json_str(r.body, "value")), 43);
	resp_release(&r);
}

/* ---- at rest, audit, principals --------------------------------------------------------- */

static bool file_contains(const char *path, const char *needle)
{
	char *data = NULL;
	size_t len = 0;
	if (bc_read_file(path, 512 * 1024 * 1024, &data, &len, NULL) != BC_OK)
		return false;
	bool found = memmem(data, len, needle, strlen(needle)) != NULL;
	free(data);
	return found;
}

TEST(at_rest)
{
	if (getenv("BADGE_TEST_STORE"))
		return; /* the files checked are SQLite's */
	struct resp r = kv("PUT", "/secrets/at-rest" API, tok_writer, "{\"value\":\"" SECRET_MARK "\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	static const char *const files[] = {"db", "db-wal", "db-shm"};
	char path[512];
	int seen = 0;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		if (access(path, F_OK) == 0)
			seen++;
		CHECK(!file_contains(path, SECRET_MARK));
		CHECK(!file_contains(path, "hunter2"));
	}
	CHECK(seen >= 1);
	snprintf(path, sizeof(path), "%s/master.key", tmpdir);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
}

static int count_cb(void *ctx, const struct bc_row *row)
{
	if (getenv("VAULT_TEST_DEBUG"))
		fprintf(stderr, "row: %s\n", bc_row_text(row, 0));
	(*(int *)ctx)++;
	return 0;
}

TEST(audit)
{
	vault_audit_flush(v->audit);
	int n = 0;
	struct bc_error err = {0};
	struct bc_param p[] = {BC_PTEXT("kv1"), BC_PTEXT("SecretGet")};
	CHECK(bc_store_exec(st, NULL, "SELECT id FROM vault_audit WHERE vault = ? AND operation = ?", p, 2,
			    count_cb, &n, NULL, &err) == BC_OK);
	CHECK(n > 0);
	n = 0;
	struct bc_param p2[] = {BC_PTEXT("kv1"), BC_PTEXT("SecretSet"), BC_PTEXT(writer.object_id)};
	CHECK(bc_store_exec(st, NULL,
			    "SELECT id FROM vault_audit WHERE vault = ? AND operation = ? AND oid = ? AND "
			    "status = 200",
			    p2, 3, count_cb, &n, NULL, &err) == BC_OK);
	CHECK(n > 0);
	n = 0;
	struct bc_param p3[] = {BC_PTEXT("KeySign"), BC_PINT(403)};
	CHECK(bc_store_exec(st, NULL,
			    "SELECT operation || ' ' || status || ' ' || COALESCE(object, '') FROM "
			    "vault_audit WHERE operation = ? AND status = ?",
			    p3, 2, count_cb, &n, NULL, &err) == BC_OK);
	CHECK(n > 0);
	/* never a value */
	n = 0;
	struct bc_param p4[] = {BC_PTEXT("%" SECRET_MARK "%"), BC_PTEXT("%" SECRET_MARK "%"),
				BC_PTEXT("%" SECRET_MARK "%")};
	CHECK(bc_store_exec(
		      st, NULL,
		      "SELECT id FROM vault_audit WHERE object LIKE ? OR oid LIKE ? OR request_id LIKE ?", p4,
		      3, count_cb, &n, NULL, &err) == BC_OK);
	CHECK_EQ_INT(n, 0);
}

/* enabled/nbf/exp are enforced on reading a value; the scheduled purge date ends a deleted
 * secret's life even before the sweep runs. */
TEST(attributes_and_purge_date)
{
	int64_t now = bc_now();
	char body[256];
	snprintf(body, sizeof(body), "{\"value\":\"x\",\"attributes\":{\"exp\":%lld}}",
		 (long long)(now - 10));
	struct resp r = kv("PUT", "/secrets/expired" API, tok_writer, body);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/secrets/expired/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403);
	CHECK_STR(err_code(&r), "Forbidden");
	resp_release(&r);
	snprintf(body, sizeof(body), "{\"value\":\"x\",\"attributes\":{\"nbf\":%lld}}",
		 (long long)(now + 3600));
	r = kv("PUT", "/secrets/future" API, tok_writer, body);
	resp_release(&r);
	r = kv("GET", "/secrets/future/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403);
	resp_release(&r);
	/* listed all the same, without values */
	r = kv("GET", "/secrets" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);

	r = kv("DELETE", "/secrets/expired" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	int64_t purge = bc_json_int(r.body, "scheduledPurgeDate", 0);
	resp_release(&r);
	CHECK(purge >= now + 90 * 86400);
	/* the purge date passes (moved in the store: a token would not outlive 90 days of clock) */
	struct bc_error err = {0};
	struct bc_param p[] = {BC_PINT(now - 1)};
	CHECK(bc_store_exec(st, NULL, "UPDATE vault_objects SET purge_date = ? WHERE lname = 'expired'", p, 1,
			    NULL, NULL, NULL, &err) == BC_OK);
	r = kv("GET", "/deletedsecrets/expired" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	CHECK(vault_obj_sweep(st, now, &err) == BC_OK);
	int64_t left = -1;
	bool found = false;
	CHECK(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM vault_versions WHERE lname = 'expired'", NULL,
			       0, &left, &found, &err) == BC_OK);
	CHECK_EQ_INT(left, 0);
}

/* A vault without soft delete deletes at once; one with purge protection refuses purge. */
TEST(vault_settings)
{
	make_vault("kv2", ",\"enableSoftDelete\":false");
	struct resp r = stack_call("PUT", "kv2.vault.badge.internal:8443", "/secrets/s" API, tok_writer,
			     "{\"value\":\"x\"}");
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(json_object_get(r.body, "attributes"), "recoveryLevel"), "Purgeable");
	resp_release(&r);
	r = stack_call("DELETE", "kv2.vault.badge.internal:8443", "/secrets/s" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_object_get(r.body, "recoveryId") == NULL);
	resp_release(&r);
	r = stack_call("GET", "kv2.vault.badge.internal:8443", "/deletedsecrets/s" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	r = stack_call("PUT", "kv2.vault.badge.internal:8443", "/secrets/s" API, tok_writer,
		 "{\"value\":\"again\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);

	make_vault("kv3", ",\"enablePurgeProtection\":true,\"softDeleteRetentionInDays\":7");
	r = stack_call("PUT", "kv3.vault.badge.internal:8443", "/secrets/s" API, tok_writer, "{\"value\":\"x\"}");
	CHECK_STR(bc_json_str(json_object_get(r.body, "attributes"), "recoveryLevel"),
		  "CustomizedRecoverable");
	CHECK_EQ_INT(bc_json_int(json_object_get(r.body, "attributes"), "recoverableDays", 0), 7);
	resp_release(&r);
	r = stack_call("DELETE", "kv3.vault.badge.internal:8443", "/secrets/s" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = stack_call("DELETE", "kv3.vault.badge.internal:8443", "/deletedsecrets/s" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 403);
	resp_release(&r);
	r = stack_call("GET", "kv3.vault.badge.internal:8443", "/deletedsecrets/s" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200); /* still there */
	resp_release(&r);
	/* a secret of kv1 is not visible in kv2 */
	r = stack_call("GET", "kv2.vault.badge.internal:8443", "/secrets/at-rest/" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
}

/* Removing the reader's access policy takes effect on the next request. */
TEST(policy_removed)
{
	struct resp r = kv("PUT", "/secrets/policy-check" API, tok_writer, "{\"value\":\"x\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = kv("GET", "/secrets/policy-check/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	char path[512], body[1024];
	snprintf(path, sizeof(path),
		 "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/"
		 "accessPolicies/remove"
		 "?api-version=2023-07-01",
		 mgr_default_subscription(m));
	snprintf(body, sizeof(body),
		 "{\"properties\":{\"accessPolicies\":[{\"tenantId\":\"%s\",\"objectId\":\"%s\","
		 "\"permissions\":"
		 "{\"secrets\":[\"get\",\"list\"],\"keys\":[\"get\",\"verify\"]}}]}}",
		 tenant, reader.object_id);
	mgmt_put(path, body);
	r = kv("GET", "/secrets/policy-check/" API, tok_reader, NULL);
	CHECK_EQ_INT(r.status, 403);
	CHECK_STR(err_code(&r), "Forbidden");
	resp_release(&r);
}

TEST(deleted_principal)
{
	struct dir_principal tmp;
	struct bc_error err = {0};
	REQUIRE(dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, "temp", NULL, &tmp, &err) == BC_OK);
	char *tok = token_for(&tmp, VRES);
	struct resp r = kv("GET", "/secrets/at-rest/" API, tok, NULL);
	CHECK_EQ_INT(r.status, 403); /* valid token, no access policy */
	resp_release(&r);
	REQUIRE(dir_principal_delete(d, NULL, tmp.object_id, &err) == BC_OK);
	r = kv("GET", "/secrets/at-rest/" API, tok, NULL);
	CHECK_EQ_INT(r.status, 401);
	resp_release(&r);
	free(tok);
}

static char *get_value(const char *path)
{
	struct resp r = kv("GET", path, tok_writer, NULL); /* (policy_removed took the reader's) */
	char *val = r.status == 200 && bc_json_str(r.body, "value") ? strdup(bc_json_str(r.body, "value")) : NULL;
	if (r.status != 200) {
		val = malloc(16);
		snprintf(val, 16, "%d", r.status);
	}
	resp_release(&r);
	return val;
}

/* Reads come from the cache once warm, and every change is seen by the next read on this
 * replica; another instance on the same store forgets its entries when the change's
 * notification arrives. */
TEST(read_cache)
{
	struct resp r = kv("PUT", "/secrets/cached" API, tok_writer, "{\"value\":\"one\"}");
	REQUIRE(r.status == 200);
	char ver1[64];
	snprintf(ver1, sizeof(ver1), "%s", strrchr(bc_json_str(r.body, "id"), '/') + 1);
	resp_release(&r);
	char *val = get_value("/secrets/cached/" API);
	CHECK_STR(val, "one");
	free(val);
	uint64_t hits = counter("vault_object_cache_hits");
	val = get_value("/secrets/CACHED" API);
	CHECK_STR(val, "one");
	free(val);
	CHECK(counter("vault_object_cache_hits") == hits + 1); /* served from the cache */

	/* a new version, an attribute change, a delete: each seen by the very next read */
	r = kv("PUT", "/secrets/cached" API, tok_writer, "{\"value\":\"two\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	val = get_value("/secrets/cached" API);
	CHECK_STR(val, "two");
	free(val);
	char path[256];
	snprintf(path, sizeof(path), "/secrets/cached/%s" API, ver1);
	val = get_value(path);
	CHECK_STR(val, "one");
	free(val);
	r = kv("PATCH", path, tok_writer, "{\"attributes\":{\"enabled\":false}}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	val = get_value(path);
	CHECK_STR(val, "403");
	free(val);

	/* a second instance on the same store (as another replica would be) */
	struct bc_error err = {0};
	struct vault *v2 = stack_vault_replica();
	struct vault_row row;
	REQUIRE(vault_obj_read(v2, "kv1", VAULT_KIND_SECRET, "cached", NULL, &row, &err) == BC_OK);
	char latest[33];
	snprintf(latest, sizeof(latest), "%s", row.version);
	vault_row_release(&row);
	REQUIRE(vault_obj_read(v2, "kv1", VAULT_KIND_SECRET, "cached", NULL, &row, &err) == BC_OK); /* warm */
	vault_row_release(&row);
	r = kv("PUT", "/secrets/cached" API, tok_writer, "{\"value\":\"three\"}");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	bool seen = false;
	for (int64_t end = bc_now_ms() + 10000; !seen && bc_now_ms() < end;) {
		REQUIRE(vault_obj_read(v2, "kv1", VAULT_KIND_SECRET, "cached", NULL, &row, &err) == BC_OK);
		seen = strcmp(row.version, latest) != 0;
		vault_row_release(&row);
		if (!seen) {
			struct timespec ts = {0, 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	CHECK(seen);
	vault_free(v2);

	r = kv("DELETE", "/secrets/cached" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	val = get_value("/secrets/cached" API);
	CHECK_STR(val, "404");
	free(val);
}

/* The GET body is written directly; it is the same document the other operations build (the
 * PUT answer is that bundle): value, id, contentType, tags, every attribute. */
TEST(get_body_matches_bundle)
{
	const char *docs[] = {
		"{\"value\":\"plain\"}",
		"{\"value\":\"q\\\"u\\\\o\\u0001te \u00e9\\n\",\"contentType\":\"text/x \\\"y\\\"\",\"tags\":{\"z\":\"1\",\"a\":\"\\\"\"},"
		"\"attributes\":{\"enabled\":true,\"nbf\":1000,\"exp\":4102444800}}",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/secrets/same-%zu" API, i);
		struct resp put = kv("PUT", path, tok_writer, docs[i]);
		REQUIRE(put.status == 200);
		struct resp get = kv("GET", path, tok_writer, NULL);
		CHECK_EQ_INT(get.status, 200);
		CHECK(get.body && json_equal(put.body, get.body));
		resp_release(&put);
		resp_release(&get);
	}
}

STACK_MAIN(setup, stack_close,
	   T(challenge),
	   T(api_versions),
	   T(secrets_lifecycle),
	   T(secrets_paging),
	   T(secrets_bad_input),
	   T(path_style),
	   T(keys_create_sign),
	   T(keys_encrypt_wrap),
	   T(keys_import_rotate_backup),
	   T(at_rest),
	   T(audit),
	   T(attributes_and_purge_date),
	   T(vault_settings),
	   T(policy_removed),
	   T(deleted_principal),
	   T(read_cache),
	   T(get_body_matches_bundle))
