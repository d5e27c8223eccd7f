/* The vault's parsers of untrusted input: names, versions, api-versions, the Authorization
 * header and the request bodies (set-secret, create/import/update key, key operations). */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "vault/vault_int.h"

TEST(names)
{
	char longname[200];
	memset(longname, 'a', sizeof(longname));
	longname[127] = '\0';
	CHECK(vault_name_valid("db-password"));
	CHECK(vault_name_valid("A1-b2"));
	CHECK(vault_name_valid(longname));
	longname[127] = 'a';
	longname[128] = '\0';
	CHECK(!vault_name_valid(longname));
	CHECK(!vault_name_valid(""));
	CHECK(!vault_name_valid("under_score"));
	CHECK(!vault_name_valid("dot.name"));
	CHECK(!vault_name_valid("sp ace"));
	CHECK(!vault_name_valid("%2e%2e"));
	CHECK(!vault_name_valid(NULL));
	CHECK(vault_vault_name_valid("myvault"));
	CHECK(!vault_vault_name_valid("ab"));
	CHECK(!vault_vault_name_valid("a-very-long-vault-name-over-24"));
}

TEST(versions)
{
	CHECK(vault_version_valid("19e7b902a76906d0e824fe945534762b"));
	CHECK(vault_version_valid("19E7B902A76906D0E824FE945534762B"));
	CHECK(!vault_version_valid("19e7b902a76906d0e824fe945534762"));
	CHECK(!vault_version_valid("19e7b902a76906d0e824fe945534762bb"));
	CHECK(!vault_version_valid("g9e7b902a76906d0e824fe945534762b"));
	CHECK(!vault_version_valid(""));
}

TEST(api_versions)
{
	CHECK(vault_api_version_known("2025-07-01"));
	CHECK(vault_api_version_known("7.3"));
	CHECK(vault_api_version_known("7.4-preview.1"));
	CHECK(vault_api_version_known("7.0"));
	CHECK(vault_api_version_known("7.6"));
	CHECK(!vault_api_version_known("7.9"));
	CHECK(!vault_api_version_known("2019-01-01"));
	CHECK(!vault_api_version_known(""));
	CHECK(!vault_api_version_known(NULL));
}

TEST(bearer)
{
	const char *tok = NULL;
	size_t len = 0;
	CHECK_EQ_INT(vault_parse_bearer("Bearer aaa.bbb.ccc", &tok, &len), BC_OK);
	CHECK_EQ_INT(len, 11);
	CHECK(strncmp(tok, "aaa.bbb.ccc", len) == 0);
	CHECK_EQ_INT(vault_parse_bearer("bearer   a-_.b.c  ", &tok, &len), BC_OK);
	CHECK_EQ_INT(len, 7);
	CHECK_EQ_INT(vault_parse_bearer(NULL, &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("Bearer", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("Bearer ", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("Basic dXNlcjpwYXNz", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("PoP a.b.c", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("BearerX a.b.c", &tok, &len), BC_ERR_UNAUTHENTICATED);
	CHECK_EQ_INT(vault_parse_bearer("Bearer a.b", &tok, &len), BC_ERR_INVALID);
	CHECK_EQ_INT(vault_parse_bearer("Bearer a.b.c.d", &tok, &len), BC_ERR_INVALID);
	CHECK_EQ_INT(vault_parse_bearer("Bearer a.b c.d", &tok, &len), BC_ERR_INVALID);
	CHECK_EQ_INT(vault_parse_bearer("Bearer a+/.b.c", &tok, &len), BC_ERR_INVALID);
	char *big = malloc(BC_LIMIT_JWT_BYTES + 32);
	REQUIRE(big);
	strcpy(big, "Bearer ");
	memset(big + 7, 'a', BC_LIMIT_JWT_BYTES + 10);
	big[7 + 3] = '.';
	big[7 + 6] = '.';
	big[7 + BC_LIMIT_JWT_BYTES + 10] = '\0';
	CHECK_EQ_INT(vault_parse_bearer(big, &tok, &len), BC_ERR_INVALID);
	free(big);
}

static int parse_secret(const char *body, bool require_value, struct vault_secret_input *in,
			struct vault_fail *f)
{
	return vault_parse_secret_body(body, strlen(body), require_value, in, f);
}

TEST(secret_bodies)
{
	struct vault_secret_input in;
	struct vault_fail f;
	REQUIRE(parse_secret("{\"value\":\"v\",\"attributes\":{}}", true, &in, &f) == BC_OK);
	CHECK_STR(in.value, "v");
	CHECK(!in.attrs.has_enabled && !in.attrs.has_exp && !in.tags && !in.content_type);
	vault_secret_input_release(&in);

	REQUIRE(parse_secret("{\"value\":\"value-1\",\"tags\":{\"a\":\"b\"},\"contentType\":\"text/plain\","
			     "\"attributes\":{\"enabled\":true,\"exp\":1893456000,\"nbf\":-5}}",
			     true, &in, &f) == BC_OK);
	CHECK(in.attrs.has_enabled && in.attrs.enabled);
	CHECK(in.attrs.has_exp && in.attrs.exp == 1893456000);
	CHECK(in.attrs.has_nbf && in.attrs.nbf == -5);
	CHECK_STR(in.content_type, "text/plain");
	CHECK(in.tags && json_object_size(in.tags) == 1);
	vault_secret_input_release(&in);

	/* update: no value needed */
	REQUIRE(parse_secret("{\"attributes\":{\"enabled\":false},\"tags\":{\"c\":\"d\"}}", false, &in, &f) ==
		BC_OK);
	CHECK(in.attrs.has_enabled && !in.attrs.enabled);
	vault_secret_input_release(&in);

	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"\"x\"",
		"{\"value\":1}",
		"{\"attributes\":{}}",
		"{\"value\":\"v\",\"tags\":[]}",
		"{\"value\":\"v\",\"tags\":{\"a\":1}}",
		"{\"value\":\"v\",\"attributes\":{\"enabled\":\"yes\"}}",
		"{\"value\":\"v\",\"attributes\":{\"exp\":\"soon\"}}",
		"{\"value\":\"v\",\"attributes\":[]}",
		"{\"value\":\"v\",\"contentType\":5}",
		"{\"value\":\"v\",\"value\":\"w\"}",
		"{\"value\":\"a\\u0000b\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&f, 0, sizeof(f));
		CHECK_EQ_INT(parse_secret(bad[i], true, &in, &f), BC_ERR_INVALID);
		CHECK_EQ_INT(f.http, 400);
		CHECK_STR(f.code, "BadParameter");
	}
}

TEST(secret_limits)
{
	struct vault_secret_input in;
	struct vault_fail f;
	size_t n = BC_LIMIT_SECRET_VALUE;
	char *body = malloc(n + 64);
	REQUIRE(body);
	strcpy(body, "{\"value\":\"");
	memset(body + 10, 'x', n);
	strcpy(body + 10 + n, "\"}");
	CHECK_EQ_INT(parse_secret(body, true, &in, &f), BC_OK);
	vault_secret_input_release(&in);
	memset(body + 10, 'x', n + 1);
	strcpy(body + 10 + n + 1, "\"}");
	CHECK_EQ_INT(parse_secret(body, true, &in, &f), BC_ERR_INVALID);
	CHECK_EQ_INT(f.http, 400);
	free(body);

	/* 15 tags pass, 16 do not */
	struct bc_buf b = {0};
	CHECK(bc_buf_appends(&b, "{\"value\":\"v\",\"tags\":{") == BC_OK);
	for (int i = 0; i < 15; i++)
		CHECK(bc_buf_appendf(&b, "%s\"t%d\":\"v\"", i ? "," : "", i) == BC_OK);
	CHECK(bc_buf_appends(&b, "}}") == BC_OK);
	CHECK_EQ_INT(parse_secret(bc_buf_cstr(&b), true, &in, &f), BC_OK);
	vault_secret_input_release(&in);
	bc_buf_reset(&b);
	CHECK(bc_buf_appends(&b, "{\"value\":\"v\",\"tags\":{") == BC_OK);
	for (int i = 0; i < 16; i++)
		CHECK(bc_buf_appendf(&b, "%s\"t%d\":\"v\"", i ? "," : "", i) == BC_OK);
	CHECK(bc_buf_appends(&b, "}}") == BC_OK);
	CHECK_EQ_INT(parse_secret(bc_buf_cstr(&b), true, &in, &f), BC_ERR_INVALID);
	bc_buf_release(&b);
}

TEST(key_bodies)
{
	struct vault_key_input in;
	struct vault_fail f;
	const char *b = "{\"kty\":\"RSA\",\"key_size\":3072,\"attributes\":{}}";
	REQUIRE(vault_parse_key_create(b, strlen(b), &in, &f) == BC_OK);
	CHECK_STR(in.kty, "RSA");
	CHECK_EQ_INT(in.bits, 3072);
	CHECK(!in.hsm);
	CHECK_EQ_INT(in.ops, VAULT_OP_ENCRYPT | VAULT_OP_DECRYPT | VAULT_OP_SIGN | VAULT_OP_VERIFY |
				     VAULT_OP_WRAP | VAULT_OP_UNWRAP);
	vault_key_input_release(&in);

	b = "{\"kty\":\"EC-HSM\",\"crv\":\"P-521\",\"key_ops\":[\"sign\"]}";
	REQUIRE(vault_parse_key_create(b, strlen(b), &in, &f) == BC_OK);
	CHECK_STR(in.kty, "EC");
	CHECK(in.hsm);
	CHECK_EQ_INT(in.bits, 521);
	CHECK_EQ_INT(in.ops, VAULT_OP_SIGN);
	vault_key_input_release(&in);

	static const char *const bad[] = {
		"{\"kty\":\"oct\"}",
		"{\"kty\":\"RSA\",\"key_size\":1024}",
		"{\"kty\":\"EC\",\"crv\":\"P-256K\"}",
		"{\"kty\":\"EC\",\"key_ops\":[\"encrypt\"]}",
		"{\"kty\":\"RSA\",\"key_ops\":[\"Sign\"]}",
		"{\"kty\":\"RSA\",\"public_exponent\":3}",
		"{}",
		"{\"kty\":\"RSA\",\"key_ops\":\"sign\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(vault_parse_key_create(bad[i], strlen(bad[i]), &in, &f), BC_ERR_INVALID);
		CHECK_EQ_INT(f.http, 400);
	}

	b = "{\"Hsm\":true,\"key\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\",\"d\":\"c\"}}";
	REQUIRE(vault_parse_key_import(b, strlen(b), &in, &f) == BC_OK);
	CHECK(in.hsm);
	CHECK_EQ_INT(in.bits, 256);
	vault_key_input_release(&in);
	b = "{\"key\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}}"; /* public only */
	CHECK_EQ_INT(vault_parse_key_import(b, strlen(b), &in, &f), BC_ERR_INVALID);

	b = "{\"key_ops\":[\"wrapKey\",\"unwrapKey\"],\"attributes\":{\"enabled\":false}}";
	REQUIRE(vault_parse_key_update(b, strlen(b), &in, &f) == BC_OK);
	CHECK(in.has_ops && in.ops == (VAULT_OP_WRAP | VAULT_OP_UNWRAP));
	vault_key_input_release(&in);
	json_t *ops = vault_key_ops_json(VAULT_OP_WRAP | VAULT_OP_SIGN);
	char *s = json_dumps(ops, JSON_COMPACT);
	CHECK_STR(s, "[\"sign\",\"wrapKey\"]");
	free(s);
	json_decref(ops);
}

TEST(op_bodies)
{
	struct vault_op_input in;
	struct vault_fail f;
	const char *b = "{\"alg\":\"RS256\",\"value\":\"AAEC\"}";
	REQUIRE(vault_parse_key_op(b, strlen(b), false, &in, &f) == BC_OK);
	CHECK_STR(in.alg, "RS256");
	CHECK_EQ_INT(in.value_len, 3);
	vault_op_input_release(&in);
	b = "{\"alg\":\"ES256\",\"digest\":\"AAEC\",\"value\":\"AQ\"}";
	REQUIRE(vault_parse_key_op(b, strlen(b), true, &in, &f) == BC_OK);
	CHECK_EQ_INT(in.digest_len, 3);
	CHECK_EQ_INT(in.value_len, 1);
	vault_op_input_release(&in);
	static const char *const bad[] = {
		"{\"value\":\"AA\"}",
		"{\"alg\":\"RS256\"}",
		"{\"alg\":\"RS256\",\"value\":\"***\"}",
		"{\"alg\":\"A-VERY-LONG-ALGORITHM\",\"value\":\"AA\"}",
		"{\"alg\":5,\"value\":\"AA\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(vault_parse_key_op(bad[i], strlen(bad[i]), false, &in, &f), BC_ERR_INVALID);
	b = "{\"alg\":\"ES256\",\"value\":\"AQ\"}"; /* verify without digest */
	CHECK_EQ_INT(vault_parse_key_op(b, strlen(b), true, &in, &f), BC_ERR_INVALID);

	int n = 0;
	b = "{\"count\":32}";
	CHECK(vault_parse_rng(b, strlen(b), &n, &f) == BC_OK && n == 32);
	b = "{\"count\":0}";
	CHECK_EQ_INT(vault_parse_rng(b, strlen(b), &n, &f), BC_ERR_INVALID);
	b = "{\"count\":100000}";
	CHECK_EQ_INT(vault_parse_rng(b, strlen(b), &n, &f), BC_ERR_INVALID);
}

/* The token scan goes sixteen bytes at a time and then byte by byte: every position of a token
 * of every length up to 70 (both parts), every byte outside base64url, and the dot count. */
TEST(bearer_scan_every_position)
{
	static const unsigned char badc[] = {'+', '/', '=', ' ', '@', '[', '`', '{', ':', '^', ',', 0x7f, 0x80, 0xc3, 0xff, 0x01};
	char hdr[128];
	const char *tok;
	size_t len;
	for (size_t n = 4; n <= 70; n++) {
		/* valid: dots at 1 and n-2, letters, digits, '-' and '_' elsewhere */
		memcpy(hdr, "Bearer ", 7);
		for (size_t i = 0; i < n; i++)
			hdr[7 + i] = "aZ09-_xQ"[i % 8];
		hdr[7 + 1] = '.';
		hdr[7 + n - 2] = '.';
		hdr[7 + n] = '\0';
		CHECK_EQ_INT(vault_parse_bearer(hdr, &tok, &len), BC_OK);
		CHECK_EQ_INT(len, n);
		for (size_t pos = 0; pos < n; pos++) {
			if (pos == 1 || pos == n - 2)
				continue;
			char keep = hdr[7 + pos];
			for (size_t b = 0; b < sizeof(badc); b++) {
				hdr[7 + pos] = (char)badc[b];
				int rc = vault_parse_bearer(hdr, &tok, &len);
				/* a space inside ends nothing: the token has a blank in it (invalid), unless it
				 * is the first or last byte, which is trimmed and leaves a valid shorter token */
				if (badc[b] == ' ' && (pos == 0 || pos == n - 1))
					CHECK_EQ_INT(rc, BC_OK);
				else if (rc != BC_ERR_INVALID) {
					fprintf(stderr, "n=%zu pos=%zu byte=0x%02x rc=%d\n", n, pos, badc[b], rc);
					CHECK_EQ_INT(rc, BC_ERR_INVALID);
				}
			}
			hdr[7 + pos] = '.'; /* a third dot */
			CHECK_EQ_INT(vault_parse_bearer(hdr, &tok, &len), BC_ERR_INVALID);
			hdr[7 + pos] = keep;
		}
	}
}

TEST_MAIN(T(bearer_scan_every_position), T(names), T(versions), T(api_versions), T(bearer), T(secret_bodies), T(secret_limits),
	  T(key_bodies), T(op_bodies))
