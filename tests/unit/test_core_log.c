/* Log lines are captured by pointing stderr at a temporary file. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "test.h"

static char captured[1 << 20];

static int64_t fixed_clock(void *ctx)
{
	return 1795939200; /* 2026-11-29T08:00:00Z */
}

/* Runs fn with stderr redirected and leaves its output in captured. */
static void capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	if (!tmp)
		return;
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
}

static void emit_text(void)
{
	bc_log(BC_LOG_INFO, "req-1", "token issued for %s", "app");
	bc_log_warn("line\nbreak\x01");
	bc_log_debug("not shown");
	bc_log_access("r2", "GET", "/{tenant}/discovery/keys", 200, 1.5, NULL);
}

TEST(text_format)
{
	bc_clock_set(fixed_clock, NULL);
	bc_log_set_json(false);
	bc_log_set_level(BC_LOG_INFO);
	capture(emit_text);
	CHECK_STR(
		captured,
		"2026-11-29T08:00:00Z INFO [req-1] token issued for app\n"
		"2026-11-29T08:00:00Z WARN [-] line\\nbreak\\x01\n"
		"2026-11-29T08:00:00Z INFO [r2] access GET /{tenant}/discovery/keys 200 1.500ms caller=-\n");
	bc_clock_set(NULL, NULL);
}

static void emit_json(void)
{
	bc_log(BC_LOG_ERROR, "r\"1", "bad \"thing\"\n");
	bc_log_access(NULL, "POST", "/t/oauth2/token", 400, 0.25, "oid-1");
}

TEST(json_format)
{
	bc_clock_set(fixed_clock, NULL);
	bc_log_set_json(true);
	capture(emit_json);
	bc_log_set_json(false);
	bc_clock_set(NULL, NULL);
	char *nl = strchr(captured, '\n');
	REQUIRE(nl);
	json_t *j = NULL;
	REQUIRE(bc_json_parse(captured, (size_t)(nl - captured), 0, &j, NULL) == BC_OK);
	CHECK_STR(bc_json_str(j, "time"), "2026-11-29T08:00:00Z");
	CHECK_STR(bc_json_str(j, "level"), "error");
	CHECK_STR(bc_json_str(j, "reqid"), "r\"1");
	CHECK_STR(bc_json_str(j, "msg"), "bad \"thing\"\n");
	json_decref(j);
	char *second = nl + 1;
	nl = strchr(second, '\n');
	REQUIRE(nl);
	REQUIRE(bc_json_parse(second, (size_t)(nl - second), 0, &j, NULL) == BC_OK);
	CHECK_STR(bc_json_str(j, "type"), "access");
	CHECK_EQ_INT(bc_json_int(j, "status", 0), 400);
	CHECK_STR(bc_json_str(j, "caller"), "oid-1");
	CHECK(bc_json_str(j, "reqid") == NULL);
	json_decref(j);
}

static void emit_long(void)
{
	static char big[10000];
	memset(big, '"', sizeof(big) - 1); /* every byte doubles when escaped */
	bc_log_info("%s", big);
}

TEST(truncation_keeps_lines_whole)
{
	bc_log_set_json(true);
	capture(emit_long);
	bc_log_set_json(false);
	size_t n = strlen(captured);
	CHECK(n > 1000 && n <= 4096);
	CHECK_EQ_INT(captured[n - 1], '\n');
	CHECK(strchr(captured, '\n') == captured + n - 1); /* one line */
	json_t *j = NULL;
	CHECK_EQ_INT(bc_json_parse(captured, n - 1, 0, &j, NULL), BC_OK);
	CHECK(bc_json_bool(j, "truncated", false));
	json_decref(j);
	capture(emit_long);
	n = strlen(captured);
	CHECK(strstr(captured, " [truncated]\n") == captured + n - 13);
}

TEST(levels)
{
	CHECK_EQ_INT(bc_log_parse_level("debug"), BC_LOG_DEBUG);
	CHECK_EQ_INT(bc_log_parse_level("INFO"), BC_LOG_INFO);
	CHECK_EQ_INT(bc_log_parse_level("warn"), BC_LOG_WARN);
	CHECK_EQ_INT(bc_log_parse_level("error"), BC_LOG_ERROR);
	CHECK_EQ_INT(bc_log_parse_level("off"), BC_LOG_OFF);
	CHECK_EQ_INT(bc_log_parse_level("loud"), -1);
	CHECK_EQ_INT(bc_log_parse_level(NULL), -1);
	bc_log_set_level(BC_LOG_OFF);
	CHECK_EQ_INT(bc_log_level(), BC_LOG_OFF);
	capture(emit_text);
	CHECK_STR(captured, "");
	bc_log_set_level(BC_LOG_INFO);
}

static void *log_thread(void *arg)
{
	for (int i = 0; i < 200; i++)
		bc_log(BC_LOG_INFO, arg, "%s %d %s",
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i,
		       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		       "bbbbbbbbbbbbbbb");
	return NULL;
}

static void emit_threads(void)
{
	pthread_t t[4];
	static char *ids[] = {"t0", "t1", "t2", "t3"};
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, log_thread, ids[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}

TEST(threads_do_not_interleave)
{
	bc_clock_set(fixed_clock, NULL);
	capture(emit_threads);
	bc_clock_set(NULL, NULL);
	int lines = 0;
	for (char *p = captured, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
		*nl = '\0';
		int n = -1;
		char id[8];
		CHECK(sscanf(p,
			     "2026-11-29T08:00:00Z INFO [t%1[0-3]] "
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa %d",
			     id, &n) == 2);
		CHECK(strlen(p) > 100 && strcmp(p + strlen(p) - 5, "bbbbb") == 0);
		*nl = '\n';
	}
	CHECK_EQ_INT(lines, 800);
}

TEST_MAIN(T(text_format), T(json_format), T(truncation_keeps_lines_whole), T(levels),
	  T(threads_do_not_interleave))
