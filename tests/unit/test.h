/* A minimal unit-test harness: TEST(name) functions registered in a table, CHECK macros that
 * report file:line and keep going, a non-zero exit when anything failed. */
#ifndef BADGE_TEST_H
#define BADGE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static const char *test_current;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
				test_current, #cond);                                        \
			test_failures++;                                                     \
		}                                                                            \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                                          \
	do {                                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                                 \
		if (_a != _b) {                                                                     \
			fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__,   \
				__LINE__, test_current, #a, _a, #b, _b);                            \
			test_failures++;                                                            \
		}                                                                                   \
	} while (0)
#define CHECK_STR(a, b)                                                                             \
	do {                                                                                        \
		const char *_a = (a), *_b = (b);                                                    \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                            \
			fprintf(stderr, "%s:%d: %s: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
				__LINE__, test_current, #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
			test_failures++;                                                            \
		}                                                                                   \
	} while (0)
/* Stops the current test (returns from it) when cond fails: use for preconditions. */
#define REQUIRE(cond)                                                                          \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: %s: REQUIRE(%s) failed\n", __FILE__, __LINE__, \
				test_current, #cond);                                          \
			test_failures++;                                                       \
			return;                                                                \
		}                                                                              \
	} while (0)

struct test_case {
	const char *name;
	void (*fn)(void);
};
#define TEST(name) static void name(void)
#define TEST_MAIN(...)                                                              \
	int main(int argc, char **argv)                                             \
	{                                                                           \
		static const struct test_case cases[] = {__VA_ARGS__};              \
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {     \
			if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)        \
				continue;                                           \
			test_current = cases[i].name;                               \
			int before = test_failures;                                 \
			cases[i].fn();                                              \
			printf("%s %s\n", test_failures == before ? "ok  " : "FAIL", \
			       cases[i].name);                                      \
		}                                                                   \
		return test_failures ? 1 : 0;                                       \
	}
#define T(fn) {#fn, fn}

#endif
