#include <string.h>
#include "core/b64.h"
#include "test.h"

static char *enc(const char *in, size_t n, int url)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	int rc = url ? bc_b64url_encode(in, n, &b) : bc_b64_encode(in, n, &b);
	if (rc) {
		bc_buf_release(&b);
		return NULL;
	}
	return bc_buf_detach(&b, NULL);
}

/* RFC 4648 section 10 vectors. */
TEST(rfc4648_vectors)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		char *s = enc(in[i], strlen(in[i]), 0);
		CHECK_STR(s, std[i]);
		free(s);
		s = enc(in[i], strlen(in[i]), 1);
		CHECK_STR(s, url[i]);
		free(s);
		uint8_t *d = NULL;
		size_t dl = 0;
		CHECK_EQ_INT(bc_b64_decode(std[i], strlen(std[i]), &d, &dl, NULL), BC_OK);
		CHECK_EQ_INT(dl, strlen(in[i]));
		CHECK_STR((char *)d, in[i]);
		free(d);
		CHECK_EQ_INT(bc_b64url_decode(url[i], strlen(url[i]), &d, &dl, NULL), BC_OK);
		CHECK_STR((char *)d, in[i]);
		free(d);
		/* padding tolerated in base64url */
		CHECK_EQ_INT(bc_b64url_decode(std[i], strlen(std[i]), &d, &dl, NULL), BC_OK);
		CHECK_STR((char *)d, in[i]);
		free(d);
	}
}

TEST(url_alphabet)
{
	const uint8_t bin[] = {0xfb, 0xff, 0xfe};
	char *s = bc_b64url_encode_str(bin, 3);
	CHECK_STR(s, "-__-");
	free(s);
	char *t = enc((const char *)bin, 3, 0);
	CHECK_STR(t, "+//+");
	free(t);
	uint8_t *d;
	size_t dl;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_b64url_decode("+//+", 4, &d, &dl, &err), BC_ERR_INVALID);
	CHECK_STR(err.msg, "invalid base64url: bad character at offset 0");
	CHECK_EQ_INT(bc_b64_decode("-__-", 4, &d, &dl, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_b64url_decode("-__-", 4, &d, &dl, &err), BC_OK);
	CHECK(dl == 3 && memcmp(d, bin, 3) == 0);
	free(d);
}

TEST(rejects_malformed)
{
	static const char *const bad[] = {
		"Z",      /* one char left over */
		"Zm9vY",  /* 5 chars: 4n+1 */
		"Zg=",    /* padding that does not complete a quantum */
		"Zm9v=",  /* padding after a full quantum */
		"Zg===",  /* too much padding */
		"Z=g=",   /* padding in the middle */
		"Zm 9v",  /* whitespace (OpenSSL would skip it) */
		"Zm9v\n", /* trailing newline */
		"Zh",     /* non-canonical: low bits of the last char set ("Zg" is canonical) */
		"Zm9=",   /* non-canonical with padding ("Zm8=") */
		"Zm.v",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *d = (uint8_t *)"untouched";
		size_t dl = 77;
		struct bc_error err = {0};
		CHECK_EQ_INT(bc_b64url_decode(bad[i], strlen(bad[i]), &d, &dl, &err), BC_ERR_INVALID);
		CHECK(strncmp(err.msg, "invalid base64url: ", 19) == 0);
		CHECK(dl == 77 && strcmp((char *)d, "untouched") == 0); /* outputs untouched on failure */
	}
	uint8_t *d;
	size_t dl;
	CHECK_EQ_INT(bc_b64url_decode("Zm\0v", 4, &d, &dl, NULL), BC_ERR_INVALID); /* embedded NUL */
}

TEST(large_roundtrip)
{
	/* Spans several internal chunks with a non-multiple-of-3 length. */
	size_t n = 3 * 3072 + 2;
	uint8_t *in = malloc(n);
	REQUIRE(in);
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (int url = 0; url < 2; url++) {
		struct bc_buf b;
		bc_buf_init(&b, 0);
		REQUIRE((url ? bc_b64url_encode(in, n, &b) : bc_b64_encode(in, n, &b)) == BC_OK);
		CHECK_EQ_INT(b.len, url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4);
		CHECK(strchr(b.data, '\n') == NULL);
		uint8_t *d;
		size_t dl;
		REQUIRE((url ? bc_b64url_decode(b.data, b.len, &d, &dl, NULL)
			     : bc_b64_decode(b.data, b.len, &d, &dl, NULL)) == BC_OK);
		CHECK_EQ_INT(dl, n);
		CHECK(memcmp(d, in, n) == 0);
		free(d);
		bc_buf_release(&b);
	}
	free(in);
}

TEST(encode_respects_cap)
{
	struct bc_buf b;
	bc_buf_init(&b, 4);
	CHECK_EQ_INT(bc_b64url_encode("abc", 3, &b), BC_OK);
	CHECK_EQ_INT(bc_b64url_encode("abc", 3, &b), BC_ERR_LIMIT);
	CHECK_STR(bc_buf_cstr(&b), "YWJj");
	bc_buf_release(&b);
	/* A failure after the first internal chunk leaves no partial output either. */
	static char big[6000];
	bc_buf_init(&b, 5000);
	CHECK_EQ_INT(bc_buf_appends(&b, "x."), BC_OK);
	CHECK_EQ_INT(bc_b64_encode(big, sizeof(big), &b), BC_ERR_LIMIT);
	CHECK_STR(bc_buf_cstr(&b), "x.");
	bc_buf_release(&b);
}

TEST_MAIN(T(rfc4648_vectors), T(url_alphabet), T(rejects_malformed), T(large_roundtrip),
	  T(encode_respects_cap))
