#include <string.h>
#include "core/buf.h"
#include "core/error.h"
#include "test.h"

TEST(zero_is_empty)
{
	struct bc_buf b = {0};
	CHECK_STR(bc_buf_cstr(&b), "");
	CHECK_EQ_INT(bc_buf_append(&b, "abc", 3), BC_OK);
	CHECK_STR(bc_buf_cstr(&b), "abc");
	CHECK_EQ_INT(b.len, 3);
	bc_buf_release(&b);
	CHECK(b.data == NULL && b.len == 0 && b.alloc == 0);
}

TEST(append_variants)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	CHECK_EQ_INT(bc_buf_appends(&b, "x="), BC_OK);
	CHECK_EQ_INT(bc_buf_appendf(&b, "%d/%s", 42, "y"), BC_OK);
	CHECK_EQ_INT(bc_buf_appendc(&b, '!'), BC_OK);
	CHECK_STR(bc_buf_cstr(&b), "x=42/y!");
	bc_buf_reset(&b);
	CHECK_STR(bc_buf_cstr(&b), "");
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(bc_buf_append(&b, "a\0b", 3), BC_OK);
	CHECK_EQ_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 4) == 0);
	bc_buf_release(&b);
}

TEST(cap_is_enforced_exactly)
{
	struct bc_buf b;
	bc_buf_init(&b, 8);
	CHECK_EQ_INT(bc_buf_append(&b, "12345678", 8), BC_OK); /* exactly the cap */
	CHECK_EQ_INT(bc_buf_appendc(&b, 'x'), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_buf_appendf(&b, "%s", "y"), BC_ERR_LIMIT);
	CHECK_STR(bc_buf_cstr(&b), "12345678"); /* unchanged after failures */
	CHECK(b.alloc <= 9);
	bc_buf_release(&b);
	CHECK_EQ_INT(b.cap, 8); /* release keeps the cap */
	CHECK_EQ_INT(bc_buf_appendf(&b, "%09d", 1), BC_ERR_LIMIT);
	CHECK_EQ_INT(b.len, 0);
	bc_buf_release(&b);
}

TEST(huge_append_does_not_overflow)
{
	struct bc_buf b;
	bc_buf_init(&b, 16);
	CHECK_EQ_INT(bc_buf_append(&b, "ab", 2), BC_OK);
	CHECK_EQ_INT(bc_buf_append(&b, "x", (size_t)-1), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_buf_append(&b, "x", (size_t)-2), BC_ERR_LIMIT);
	CHECK_STR(bc_buf_cstr(&b), "ab");
	bc_buf_release(&b);
}

TEST(default_cap)
{
	struct bc_buf b = {0};
	static char big[BC_BUF_DEFAULT_CAP];
	memset(big, 'a', sizeof(big));
	CHECK_EQ_INT(bc_buf_append(&b, big, sizeof(big)), BC_OK);
	CHECK_EQ_INT(bc_buf_appendc(&b, 'a'), BC_ERR_LIMIT);
	bc_buf_release(&b);
}

TEST(growth_keeps_content)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	for (int i = 0; i < 10000; i++)
		REQUIRE(bc_buf_appendf(&b, "%d,", i % 10) == BC_OK);
	CHECK_EQ_INT(b.len, 20000);
	CHECK(memcmp(b.data, "0,1,2,", 6) == 0);
	CHECK(memcmp(b.data + 19994, "7,8,9,", 6) == 0);
	CHECK_EQ_INT(b.data[b.len], '\0');
	bc_buf_release(&b);
}

TEST(detach)
{
	struct bc_buf b;
	bc_buf_init(&b, 100);
	size_t len = 99;
	char *p = bc_buf_detach(&b, &len);
	REQUIRE(p != NULL);
	CHECK_STR(p, "");
	CHECK_EQ_INT(len, 0);
	free(p);
	CHECK_EQ_INT(bc_buf_appends(&b, "hello"), BC_OK);
	p = bc_buf_detach(&b, &len);
	CHECK_STR(p, "hello");
	CHECK_EQ_INT(len, 5);
	CHECK(b.data == NULL && b.len == 0);
	CHECK_EQ_INT(b.cap, 100);
	free(p);
}

TEST(wipe)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	CHECK_EQ_INT(bc_buf_appends(&b, "secret"), BC_OK);
	bc_buf_wipe(&b);
	CHECK(b.data == NULL && b.len == 0);
	bc_buf_wipe(&b); /* idempotent on the empty state */
}

TEST_MAIN(T(zero_is_empty), T(append_variants), T(cap_is_enforced_exactly), T(huge_append_does_not_overflow),
	  T(default_cap), T(growth_keeps_content), T(detach), T(wipe))
