#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include "core/util.h"
#include "test.h"

static int64_t fixed_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

TEST(clock_injection)
{
	int64_t real = bc_now();
	CHECK(real > 1700000000); /* after 2023 */
	int64_t t = 1795939200;   /* 2026-11-29T08:00:00Z */
	bc_clock_set(fixed_clock, &t);
	CHECK_EQ_INT(bc_now(), 1795939200);
	t += 3600;
	CHECK_EQ_INT(bc_now(), 1795942800);
	bc_clock_set(NULL, NULL);
	CHECK(bc_now() >= real && bc_now() < real + 3600);
	int64_t a = bc_now_ms(), b = bc_now_ms();
	CHECK(a > 0 && b >= a);
}

TEST(random_ids)
{
	char u1[37], u2[37], h[33];
	REQUIRE(bc_uuid4(u1) == BC_OK);
	REQUIRE(bc_uuid4(u2) == BC_OK);
	CHECK_EQ_INT(strlen(u1), 36);
	CHECK(bc_is_uuid(u1));
	CHECK(strcmp(u1, u2) != 0);
	CHECK_EQ_INT(u1[14], '4');             /* version */
	CHECK(strchr("89ab", u1[19]) != NULL); /* variant */
	for (const char *p = u1; *p; p++)
		CHECK(*p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	REQUIRE(bc_random_hex32(h) == BC_OK);
	CHECK_EQ_INT(strlen(h), 32);
	CHECK_EQ_INT(strspn(h, "0123456789abcdef"), 32);
	uint8_t z[64] = {0};
	REQUIRE(bc_random(z, sizeof(z)) == BC_OK);
	int nonzero = 0;
	for (size_t i = 0; i < sizeof(z); i++)
		nonzero += z[i] != 0;
	CHECK(nonzero > 32);
	CHECK_EQ_INT(bc_random(z, 0), BC_OK);
}

TEST(is_uuid)
{
	CHECK(bc_is_uuid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
	CHECK(bc_is_uuid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
	CHECK(!bc_is_uuid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
	CHECK(!bc_is_uuid("72f988bf-86f1-41af-91ab-2d7cd011db477"));
	CHECK(!bc_is_uuid("72f988bf86f1-41af-91ab-2d7cd011db47-"));
	CHECK(!bc_is_uuid("72f988bg-86f1-41af-91ab-2d7cd011db47"));
	CHECK(!bc_is_uuid("../../../etc/passwd-aaaaaaaaaaaaaaaaa"));
	CHECK(!bc_is_uuid(""));
	CHECK(!bc_is_uuid(NULL));
}

TEST(hex_and_compare)
{
	const uint8_t in[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];
	bc_hex(in, 4, out);
	CHECK_STR(out, "000fa5ff");
	bc_hex(in, 0, out);
	CHECK_STR(out, "");
	CHECK(bc_ct_equal("abc", 3, "abc", 3));
	CHECK(!bc_ct_equal("abc", 3, "abd", 3));
	CHECK(!bc_ct_equal("abc", 3, "abcd", 4));
	CHECK(!bc_ct_equal("abcd", 4, "abc", 3));
	CHECK(bc_ct_equal("", 0, "", 0));
	char s[8] = "secret";
	bc_wipe(s, sizeof(s));
	CHECK_EQ_INT(s[0] | s[5], 0);
	bc_wipe(NULL, 0);
}

TEST(strings_ci)
{
	CHECK(bc_streq_ci("Metadata", "metadata"));
	CHECK(bc_streq_ci("", ""));
	CHECK(!bc_streq_ci("meta", "metadata"));
	CHECK(!bc_streq_ci("metadata", "meta"));
	CHECK(!bc_streq_ci(NULL, "a"));
	CHECK(bc_str_endswith_ci("kv1.VAULT.badge.internal", ".vault.badge.internal"));
	CHECK(!bc_str_endswith_ci("vault.badge.internal", ".vault.badge.internal"));
	CHECK(bc_str_endswith_ci("x", ""));
	CHECK(!bc_str_endswith_ci("", "x"));
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

TEST(files)
{
	char dir[] = "/tmp/badge-test-util-XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[256], sub[256];
	snprintf(path, sizeof(path), "%s/env", dir);
	struct bc_error err = {0};

	CHECK_EQ_INT(bc_write_file_atomic(path, "one\n", 4, 0600, &err), BC_OK);
	struct stat st;
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(bc_write_file_atomic(path, "two!\n", 5, 0644, &err), BC_OK); /* replaces */
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0644);
	CHECK_EQ_INT(count_entries(dir), 1); /* no temp file left behind */

	char *data = NULL;
	size_t len = 0;
	CHECK_EQ_INT(bc_read_file(path, 100, &data, &len, &err), BC_OK);
	CHECK_STR(data, "two!\n");
	CHECK_EQ_INT(len, 5);
	free(data);
	data = NULL;
	CHECK_EQ_INT(bc_read_file(path, 5, &data, &len, &err), BC_OK); /* exactly max */
	free(data);
	data = NULL;
	CHECK_EQ_INT(bc_read_file(path, 4, &data, &len, &err), BC_ERR_LIMIT);
	CHECK(data == NULL);
	CHECK(strstr(err.msg, "file too large") == err.msg);

	CHECK_EQ_INT(bc_write_file_atomic(path, "", 0, 0600, &err), BC_OK);
	CHECK_EQ_INT(bc_read_file(path, 0, &data, &len, &err), BC_OK); /* empty file, zero max */
	CHECK_STR(data, "");
	CHECK_EQ_INT(len, 0);
	free(data);

	snprintf(sub, sizeof(sub), "%s/missing/env", dir);
	CHECK_EQ_INT(bc_write_file_atomic(sub, "x", 1, 0600, &err), BC_ERR_IO);
	CHECK(strstr(err.msg, "cannot create") == err.msg);
	CHECK_EQ_INT(bc_read_file(sub, 10, &data, &len, &err), BC_ERR_NOT_FOUND);

	/* mkdir -p: nested, idempotent, refuses a file in the way */
	snprintf(sub, sizeof(sub), "%s/a/b//c/", dir);
	CHECK_EQ_INT(bc_mkdir_p(sub, 0700, &err), BC_OK);
	CHECK_EQ_INT(bc_mkdir_p(sub, 0700, &err), BC_OK);
	snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
	REQUIRE(stat(sub, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
	snprintf(sub, sizeof(sub), "%s/env/x", dir);
	CHECK_EQ_INT(bc_mkdir_p(sub, 0700, &err), BC_ERR_IO);
	CHECK(strstr(err.msg, "not a directory") != NULL);
	CHECK_EQ_INT(bc_mkdir_p("", 0700, &err), BC_ERR_INVALID);

	snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(sub), 0);
}

TEST_MAIN(T(clock_injection), T(random_ids), T(is_uuid), T(hex_and_compare), T(strings_ci), T(files))
