#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "core/config.h"
#include "core/limits.h"
#include "core/util.h"
#include "test.h"

struct conf {
	char *listen;
	char *store;
	int64_t workers;
	bool json_logs;
	int64_t token_lifetime;
};

static const struct bc_config_spec spec[] = {
	{"listen", BC_CONF_STRING, offsetof(struct conf, listen), "address to listen on", "127.0.0.1:8443", 0,
	 0},
	{"store", BC_CONF_STRING, offsetof(struct conf, store), "store url", NULL, 0, 0},
	{"workers", BC_CONF_INT, offsetof(struct conf, workers), "pool threads", "2", 1, 64},
	{"log.json", BC_CONF_BOOL, offsetof(struct conf, json_logs), "json logs", "false", 0, 0},
	{"token_lifetime", BC_CONF_DURATION, offsetof(struct conf, token_lifetime), "token lifetime", "24h",
	 300, 86400},
};
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

static int parse(struct conf *c, const char *text, struct bc_error *err)
{
	return bc_config_parse(c, spec, NSPEC, text, strlen(text), err);
}

TEST(defaults)
{
	struct conf c = {0};
	struct bc_error err = {0};
	REQUIRE(bc_config_defaults(&c, spec, NSPEC, &err) == BC_OK);
	CHECK_STR(c.listen, "127.0.0.1:8443");
	CHECK(c.store == NULL);
	CHECK_EQ_INT(c.workers, 2);
	CHECK(!c.json_logs);
	CHECK_EQ_INT(c.token_lifetime, 86400);
	bc_config_release(&c, spec, NSPEC);
	CHECK(c.listen == NULL);
}

TEST(bad_default_is_reported)
{
	static const struct bc_config_spec bad[] = {
		{"n", BC_CONF_INT, 0, "", "lots", 0, 0},
	};
	int64_t v = 5;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_config_defaults(&v, bad, 1, &err), BC_ERR_INVALID);
	CHECK_STR(err.msg, "bad default: n: invalid integer 'lots'");
	CHECK_EQ_INT(v, 5);
}

TEST(parse_full)
{
	struct conf c = {0};
	struct bc_error err = {0};
	REQUIRE(bc_config_defaults(&c, spec, NSPEC, &err) == BC_OK);
	const char *text = "# badge server\n"
			   "\n"
			   "listen = 0.0.0.0:443   # all interfaces\n"
			   "  store=\"postgres://u:p#w@db/badge\"  # quoted keeps the #\n"
			   "workers\t=\t8\r\n"
			   "log.json = yes\n"
			   "token_lifetime = 15m";
	CHECK_EQ_INT(parse(&c, text, &err), BC_OK);
	CHECK_STR(c.listen, "0.0.0.0:443");
	CHECK_STR(c.store, "postgres://u:p#w@db/badge");
	CHECK_EQ_INT(c.workers, 8);
	CHECK(c.json_logs);
	CHECK_EQ_INT(c.token_lifetime, 900);
	bc_config_release(&c, spec, NSPEC);
}

TEST(quoted_escapes_and_empty)
{
	struct conf c = {0};
	struct bc_error err = {0};
	CHECK_EQ_INT(parse(&c, "listen = \"a \\\"b\\\" \\\\ c\\nd\"\nstore =\n", &err), BC_OK);
	CHECK_STR(c.listen, "a \"b\" \\ c\nd");
	CHECK_STR(c.store, "");
	bc_config_release(&c, spec, NSPEC);
	CHECK_EQ_INT(parse(&c, "listen = a#b # c\n", &err), BC_OK); /* # inside a word is data */
	CHECK_STR(c.listen, "a#b");
	bc_config_release(&c, spec, NSPEC);
	CHECK_EQ_INT(parse(&c, "listen = # only a comment\nstore =", &err), BC_OK); /* empty value at EOF */
	CHECK_STR(c.listen, "");
	CHECK_STR(c.store, "");
	bc_config_release(&c, spec, NSPEC);
}

static void expect_error(const char *text, int st, const char *msg)
{
	struct conf c = {0};
	struct bc_error err = {0};
	REQUIRE(bc_config_defaults(&c, spec, NSPEC, &err) == BC_OK);
	int rc = parse(&c, text, &err);
	CHECK_EQ_INT(rc, st);
	CHECK_STR(err.msg, msg);
	/* all-or-nothing: the earlier valid lines were not applied */
	CHECK_STR(c.listen, "127.0.0.1:8443");
	CHECK_EQ_INT(c.workers, 2);
	bc_config_release(&c, spec, NSPEC);
}

TEST(errors_name_the_line)
{
	expect_error("listen = x\nworkers = 3\nfoo = 1\n", BC_ERR_INVALID, "line 3: unknown key 'foo'");
	expect_error("workers = 3\n\nworkers = 4\n", BC_ERR_INVALID,
		     "line 3: duplicate key 'workers' (first set on line 1)");
	expect_error("workers = three\n", BC_ERR_INVALID, "line 1: workers: invalid integer 'three'");
	expect_error("workers = 3x\n", BC_ERR_INVALID, "line 1: workers: invalid integer '3x'");
	expect_error("workers = 65\n", BC_ERR_INVALID, "line 1: workers: 65 out of range (1..64)");
	expect_error("workers = 0\n", BC_ERR_INVALID, "line 1: workers: 0 out of range (1..64)");
	expect_error("workers = 99999999999999999999\n", BC_ERR_INVALID,
		     "line 1: workers: invalid integer '99999999999999999999'");
	expect_error("log.json = maybe\n", BC_ERR_INVALID,
		     "line 1: log.json: invalid boolean 'maybe' (expected true or false)");
	expect_error("listen=x\ntoken_lifetime = 2w\n", BC_ERR_INVALID,
		     "line 2: token_lifetime: invalid duration '2w' (expected e.g. 90s, 15m, 24h, 7d)");
	expect_error("token_lifetime = 2d\n", BC_ERR_INVALID,
		     "line 1: token_lifetime: 2d out of range (300..86400)");
	expect_error("listen 1.2.3.4\n", BC_ERR_INVALID, "line 1: expected '=' after 'listen'");
	expect_error("= 4\n", BC_ERR_INVALID, "line 1: expected 'key = value'");
	expect_error("listen = \"abc\n", BC_ERR_INVALID, "line 1: unterminated quoted value");
	expect_error("listen = \"a\\tb\"\n", BC_ERR_INVALID, "line 1: bad escape '\\t' in quoted value");
	expect_error("listen = \"a\" b\n", BC_ERR_INVALID, "line 1: unexpected text after quoted value");
	expect_error("listen = a\n\n\n\nstore = \"\\", BC_ERR_INVALID, "line 5: unterminated quoted value");
}

TEST(limits)
{
	struct conf c = {0};
	struct bc_error err = {0};
	size_t n = BC_LIMIT_CONFIG_LINE + 20;
	char *text = malloc(n + 1);
	REQUIRE(text);
	memcpy(text, "listen = ", 9);
	memset(text + 9, 'a', n - 9);
	text[n] = '\0';
	CHECK_EQ_INT(parse(&c, text, &err), BC_ERR_LIMIT);
	CHECK_STR(err.msg, "line 1: line too long (limit 4096 bytes)");
	text[BC_LIMIT_CONFIG_LINE] = '\0'; /* exactly at the limit */
	CHECK_EQ_INT(parse(&c, text, &err), BC_OK);
	CHECK_EQ_INT(strlen(c.listen), BC_LIMIT_CONFIG_LINE - 9);
	bc_config_release(&c, spec, NSPEC);
	free(text);

	char *big = calloc(BC_LIMIT_CONFIG_BYTES + 2, 1);
	REQUIRE(big);
	memset(big, '\n', BC_LIMIT_CONFIG_BYTES + 1);
	CHECK_EQ_INT(bc_config_parse(&c, spec, NSPEC, big, BC_LIMIT_CONFIG_BYTES + 1, &err), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_config_parse(&c, spec, NSPEC, big, BC_LIMIT_CONFIG_BYTES, &err), BC_OK);
	free(big);

	CHECK_EQ_INT(bc_config_parse(&c, spec, NSPEC, "listen = a\0b\n", 13, &err), BC_ERR_INVALID);
	CHECK_STR(err.msg, "line 1: NUL byte");
}

TEST(set_overrides)
{
	struct conf c = {0};
	struct bc_error err = {0};
	REQUIRE(bc_config_defaults(&c, spec, NSPEC, &err) == BC_OK);
	REQUIRE(parse(&c, "workers = 4\n", &err) == BC_OK);
	CHECK_EQ_INT(bc_config_set(&c, spec, NSPEC, "workers", "6", &err), BC_OK);
	CHECK_EQ_INT(c.workers, 6);
	CHECK_EQ_INT(bc_config_set(&c, spec, NSPEC, "listen", "[::1]:0", &err), BC_OK);
	CHECK_STR(c.listen, "[::1]:0");
	CHECK_EQ_INT(bc_config_set(&c, spec, NSPEC, "nope", "1", &err), BC_ERR_INVALID);
	CHECK_STR(err.msg, "unknown key 'nope'");
	CHECK_EQ_INT(bc_config_set(&c, spec, NSPEC, "workers", "100", &err), BC_ERR_INVALID);
	CHECK_STR(err.msg, "workers: 100 out of range (1..64)");
	CHECK_EQ_INT(c.workers, 6);
	bc_config_release(&c, spec, NSPEC);
}

TEST(load_file)
{
	char dir[] = "/tmp/badge-test-config-XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/badge.conf", dir);
	struct bc_error err = {0};
	const char *text = "workers = 5\nbogus = 1\n";
	REQUIRE(bc_write_file_atomic(path, text, strlen(text), 0600, &err) == BC_OK);
	struct conf c = {0};
	CHECK_EQ_INT(bc_config_load(&c, spec, NSPEC, path, &err), BC_ERR_INVALID);
	char want[512];
	snprintf(want, sizeof(want), "%s: line 2: unknown key 'bogus'", path);
	CHECK_STR(err.msg, want);
	text = "workers = 5\n";
	REQUIRE(bc_write_file_atomic(path, text, strlen(text), 0600, &err) == BC_OK);
	CHECK_EQ_INT(bc_config_load(&c, spec, NSPEC, path, &err), BC_OK);
	CHECK_EQ_INT(c.workers, 5);
	unlink(path);
	CHECK_EQ_INT(bc_config_load(&c, spec, NSPEC, path, &err), BC_ERR_NOT_FOUND);
	CHECK(strstr(err.msg, "cannot open") == err.msg);
	rmdir(dir);
}

TEST(durations)
{
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {{"0", 0}, {"90", 90}, {"90s", 90}, {"15m", 900}, {"24h", 86400}, {"7d", 604800}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t v = -1;
		CHECK_EQ_INT(bc_duration_parse(ok[i].s, &v), BC_OK);
		CHECK_EQ_INT(v, ok[i].v);
	}
	static const char *const bad[] = {"",
					  "s",
					  "-5s",
					  " 5s",
					  "5 s",
					  "5ss",
					  "5sm",
					  "1h30m",
					  "1.5h",
					  "5S",
					  "99999999999999999999",
					  "9999999999999999999d",
					  "+5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = -1;
		CHECK_EQ_INT(bc_duration_parse(bad[i], &v), BC_ERR_INVALID);
		CHECK_EQ_INT(v, -1);
	}
	CHECK_EQ_INT(bc_duration_parse(NULL, &(int64_t){0}), BC_ERR_INVALID);
}

TEST_MAIN(T(defaults), T(bad_default_is_reported), T(parse_full), T(quoted_escapes_and_empty),
	  T(errors_name_the_line), T(limits), T(set_overrides), T(load_file), T(durations))
