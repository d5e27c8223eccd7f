#include <string.h>
#include "core/json.h"
#include "core/limits.h"
#include "test.h"

static int parse(const char *s, json_t **out, struct bc_error *err)
{
	return bc_json_parse(s, strlen(s), 0, out, err);
}

TEST(parse_ok_and_getters)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	REQUIRE(parse("{\"a\":\"x\",\"n\":42,\"b\":true,\"f\":1.5,\"neg\":-7}", &j, &err) == BC_OK);
	CHECK_STR(bc_json_str(j, "a"), "x");
	CHECK(bc_json_str(j, "n") == NULL); /* wrong type */
	CHECK(bc_json_str(j, "missing") == NULL);
	CHECK_EQ_INT(bc_json_int(j, "n", -1), 42);
	CHECK_EQ_INT(bc_json_int(j, "neg", 0), -7);
	CHECK_EQ_INT(bc_json_int(j, "a", -1), -1);
	CHECK_EQ_INT(bc_json_int(j, "f", -1), -1); /* a real is not an integer */
	CHECK(bc_json_bool(j, "b", false) == true);
	CHECK(bc_json_bool(j, "n", true) == true); /* default when wrong type */
	CHECK(bc_json_str(NULL, "a") == NULL);
	json_t *arr = json_array();
	CHECK(bc_json_str(arr, "a") == NULL); /* not an object */
	json_decref(arr);
	json_decref(j);
}

TEST(rejects_duplicate_keys)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	CHECK_EQ_INT(parse("{\"a\":1,\"a\":2}", &j, &err), BC_ERR_INVALID);
	CHECK(j == NULL);
	CHECK(strstr(err.msg, "invalid json at line 1") == err.msg);
	CHECK(strstr(err.msg, "duplicate") != NULL);
	/* the same key in different objects is fine */
	CHECK_EQ_INT(parse("{\"a\":{\"a\":1},\"b\":{\"a\":2}}", &j, &err), BC_OK);
	json_decref(j);
}

TEST(rejects_malformed)
{
	static const char *const bad[] = {
		"",
		"{",
		"{\"a\":}",
		"[1,]",
		"{\"a\":1} x",
		"{\"a\":1}{}",
		"{'a':1}",
		"{\"a\":\"\\u0000\"}",
		"{\"a\":\"\xff\"}",
		"nul",
		"{\"a\":01}",
		"[1e99999]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = NULL;
		struct bc_error err = {0};
		CHECK_EQ_INT(parse(bad[i], &j, &err), BC_ERR_INVALID);
		CHECK(j == NULL);
		CHECK(strncmp(err.msg, "invalid json at line ", 21) == 0);
	}
}

TEST(error_does_not_quote_input)
{
	/* A vault body cut short must not put the secret into an error message or the log. */
	json_t *j = NULL;
	struct bc_error err = {0};
	CHECK_EQ_INT(parse("{\"value\": \"hunter2-very-secret", &j, &err), BC_ERR_INVALID);
	CHECK(strstr(err.msg, "hunter2") == NULL);
	CHECK_EQ_INT(parse("{\"value\": hunter2}", &j, &err), BC_ERR_INVALID);
	CHECK(strstr(err.msg, "hunter2") == NULL);
	CHECK(strstr(err.msg, "column") != NULL);
}

TEST(size_cap)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	const char *s = "{\"a\":\"0123456789\"}"; /* 18 bytes */
	CHECK_EQ_INT(bc_json_parse(s, strlen(s), 18, &j, &err), BC_OK);
	json_decref(j);
	j = NULL;
	CHECK_EQ_INT(bc_json_parse(s, strlen(s), 17, &j, &err), BC_ERR_LIMIT);
	CHECK(j == NULL);
	CHECK_STR(err.msg, "json document too large: 18 bytes (limit 17)");
	/* max 0 means BC_LIMIT_JSON_BYTES */
	size_t n = BC_LIMIT_JSON_BYTES + 1;
	char *big = malloc(n + 1);
	REQUIRE(big);
	memset(big, ' ', n);
	big[0] = '[';
	big[n - 1] = ']';
	big[n] = '\0';
	CHECK_EQ_INT(bc_json_parse(big, n, 0, &j, &err), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_json_parse(big + 1, n - 1, 0, &j, &err), BC_ERR_INVALID); /* within the cap: parsed */
	big[1] = '[';
	big[n - 2] = ']';
	CHECK_EQ_INT(bc_json_parse(big + 1, n - 2, 0, &j, &err), BC_OK);
	json_decref(j);
	free(big);
}

static char *nested(int depth, const char *open, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close);
	char *s = malloc((size_t)depth * (lo + lc) + 1);
	char *p = s;
	for (int i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	for (int i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

TEST(depth_cap)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	char *ok = nested(BC_LIMIT_JSON_DEPTH, "[", "]");
	CHECK_EQ_INT(parse(ok, &j, &err), BC_OK);
	json_decref(j);
	free(ok);
	char *deep = nested(BC_LIMIT_JSON_DEPTH + 1, "[", "]");
	CHECK_EQ_INT(parse(deep, &j, &err), BC_ERR_LIMIT);
	CHECK_STR(err.msg, "json nested too deeply (limit 32)");
	free(deep);
	char *mixed = nested(BC_LIMIT_JSON_DEPTH + 1, "{\"k\":", "}");
	CHECK_EQ_INT(parse(mixed, &j, &err), BC_ERR_LIMIT);
	free(mixed);
	/* Brackets inside strings (escaped quotes included) do not count. */
	char s[512];
	int n = snprintf(s, sizeof(s), "[\"%s\\\"[[[[\"]", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{");
	REQUIRE(n > 0);
	CHECK_EQ_INT(parse(s, &j, &err), BC_OK);
	json_decref(j);
	/* Depth that comes back down is not cumulative. */
	char wide[4096] = "[";
	for (int i = 0; i < 100; i++)
		strcat(wide, "[[]],");
	strcat(wide, "1]");
	CHECK_EQ_INT(parse(wide, &j, &err), BC_OK);
	json_decref(j);
	/* A very deep document is refused before jansson recurses into it. */
	char *huge = nested(100000, "[", "]");
	CHECK_EQ_INT(parse(huge, &j, &err), BC_ERR_LIMIT);
	free(huge);
}

TEST(dump_and_setters)
{
	json_t *o = json_object();
	CHECK_EQ_INT(bc_json_set_str(o, "s", "a\"b"), BC_OK);
	CHECK_EQ_INT(bc_json_set_str(o, "skip", NULL), BC_OK);
	CHECK_EQ_INT(bc_json_set_int(o, "n", 1700000000123LL), BC_OK);
	CHECK(bc_json_set_str(o, "bad", "\xff") != BC_OK); /* not UTF-8 */
	struct bc_buf b;
	bc_buf_init(&b, 0);
	CHECK_EQ_INT(bc_buf_appends(&b, ">"), BC_OK);
	CHECK_EQ_INT(bc_json_dump(o, &b), BC_OK);
	CHECK_STR(bc_buf_cstr(&b), ">{\"s\":\"a\\\"b\",\"n\":1700000000123}");
	char *s = bc_json_dumps(o);
	CHECK_STR(s, "{\"s\":\"a\\\"b\",\"n\":1700000000123}");
	free(s);
	bc_buf_release(&b);

	/* A dump beyond the cap leaves the buffer as it was. */
	bc_buf_init(&b, 10);
	CHECK_EQ_INT(bc_buf_appends(&b, "ab"), BC_OK);
	CHECK_EQ_INT(bc_json_dump(o, &b), BC_ERR_LIMIT);
	CHECK_STR(bc_buf_cstr(&b), "ab");
	CHECK_EQ_INT(b.len, 2);
	bc_buf_release(&b);
	json_decref(o);

	json_t *str = json_string("x");
	bc_buf_init(&b, 0);
	CHECK_EQ_INT(bc_json_dump(str, &b), BC_OK); /* non-container values dump too */
	CHECK_STR(bc_buf_cstr(&b), "\"x\"");
	bc_buf_release(&b);
	json_decref(str);
	CHECK(bc_json_dumps(NULL) == NULL);
}

TEST(dump_matches_jansson)
{
	/* bc_json_dump writes jansson's compact bytes: escapes, key order, numbers, nesting. */
	static const char *const docs[] = {
		"{\"a\":\"q\\\"b\\\\s\\/l\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\",\"n\":-9223372036854775808,"
		"\"r\":1.5,\"e\":1e300,\"z\":0.1,\"t\":true,\"f\":false,\"0\":null,\"u\":\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"}",
		"[[],{},[{}],\"\",0,-0.0,12345678901234567890e-30]",
		"{\"k\\\"\\n\":{\"x\":[1,2,{\"y\":\"z\"}]},\"b\":\"\",\"a\":[]}",
		"\"solo\"", "42", "null",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_error_t je;
		json_t *j = json_loads(docs[i], JSON_DECODE_ANY, &je);
		REQUIRE(j);
		char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		struct bc_buf b = {0};
		CHECK_EQ_INT(bc_json_dump(j, &b), BC_OK);
		CHECK_STR(bc_buf_cstr(&b), want);
		free(want);
		bc_buf_release(&b);
		json_decref(j);
	}
}

TEST(put_str_checks_utf8)
{
	struct bc_buf b = {0};
	CHECK_EQ_INT(bc_json_put_str(&b, "a\"\\\x01", 4), BC_OK);
	CHECK_STR(bc_buf_cstr(&b), "\"a\\\"\\\\\\u0001\"");
	bc_buf_reset(&b);
	CHECK_EQ_INT(bc_json_put_str(&b, "\xc3\xa9\xf4\x8f\xbf\xbf", 6), BC_OK); /* é, U+10FFFF */
	size_t len = b.len;
	static const char *const bad[] = {
		"\xff", "\xc3", "\xc0\x80" /* overlong NUL */, "\xe0\x80\xaf" /* overlong / */,
		"\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* past U+10FFFF */, "a\x80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(bc_json_put_str(&b, bad[i], strlen(bad[i])), BC_ERR_INVALID);
		CHECK_EQ_INT(b.len, len); /* nothing written */
		CHECK(json_string(bad[i]) == NULL); /* jansson agrees */
	}
	bc_buf_release(&b);
}

TEST_MAIN(T(parse_ok_and_getters), T(rejects_duplicate_keys), T(rejects_malformed),
	  T(error_does_not_quote_input), T(size_cap), T(depth_cap), T(dump_and_setters),
	  T(dump_matches_jansson), T(put_str_checks_utf8))
