/* The audit writer: every queued record is committed (batches written many rows per statement,
 * and the rest row by row), fields round-trip, empty fields are NULL, ids are unique, a full
 * queue blocks producers instead of dropping records. On SQLite in a temp dir, and on
 * PostgreSQL too when BADGE_TEST_PG_URL is set (tests/integration/00-store-postgres.sh). */
#include "core/audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/store.h"
#include "test.h"

static struct bc_store *st;
static char table[64];

static void exec(const char *sql)
{
	struct bc_error err = {0};
	if (bc_store_exec(st, NULL, sql, NULL, 0, NULL, NULL, NULL, &err) != BC_OK) {
		fprintf(stderr, "%s: %s\n", sql, err.msg);
		abort();
	}
}

static int64_t count(const char *where)
{
	char sql[256];
	int64_t n = -1;
	bool found = false;
	struct bc_error err = {0};
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s%s", table, where ? " WHERE " : "", where ? where : "");
	if (bc_store_get_int(st, NULL, sql, NULL, 0, &n, &found, &err) != BC_OK)
		fprintf(stderr, "count: %s\n", err.msg);
	return n;
}

static struct bc_audit_rec rec(int i)
{
	struct bc_audit_rec r = {.time_ms = 1700000000000 + i, .status = 200 + i % 3, .duration_ms = i % 7};
	snprintf(r.scope, sizeof(r.scope), "kv%d", i % 4);
	snprintf(r.operation, sizeof(r.operation), "SecretGet");
	snprintf(r.object, sizeof(r.object), "secrets/s%d", i);
	if (i % 2)
		snprintf(r.oid, sizeof(r.oid), "00000000-0000-4000-8000-%012d", i);
	snprintf(r.request_id, sizeof(r.request_id), "req-%d", i);
	return r;
}

TEST(batches_and_rows)
{
	struct bc_audit *a = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_audit_new(&a, st, table, "vault", NULL, NULL, &err) == BC_OK);
	/* 1000 at once: full multi-row statements and a remainder */
	for (int i = 0; i < 1000; i++) {
		struct bc_audit_rec r = rec(i);
		bc_audit_enqueue(a, &r);
	}
	bc_audit_flush(a);
	CHECK_EQ_INT(count(NULL), 1000);
	CHECK_EQ_INT(count("oid IS NULL"), 500);      /* empty fields are NULL */
	CHECK_EQ_INT(count("client_ip IS NULL"), 1000);
	CHECK_EQ_INT(count("vault = 'kv3' AND operation = 'SecretGet'"), 250);
	CHECK_EQ_INT(count("object = 'secrets/s999' AND request_id = 'req-999' AND status = 200 AND "
			   "duration_ms = 5 AND time_ms = 1700000000999"),
		     1);
	char sql[160];
	int64_t ids = -1;
	bool found = false;
	snprintf(sql, sizeof(sql), "SELECT COUNT(DISTINCT id) FROM %s", table);
	CHECK(bc_store_get_int(st, NULL, sql, NULL, 0, &ids, &found, &err) == BC_OK);
	CHECK_EQ_INT(ids, 1000);
	/* a few more, one at a time: row by row */
	for (int i = 1000; i < 1005; i++) {
		struct bc_audit_rec r = rec(i);
		bc_audit_enqueue(a, &r);
		bc_audit_flush(a);
	}
	CHECK_EQ_INT(count(NULL), 1005);
	bc_audit_free(a);
}

struct producer {
	struct bc_audit *a;
	int base;
};

static void *produce(void *p)
{
	struct producer *pr = p;
	for (int i = 0; i < 6000; i++) {
		struct bc_audit_rec r = rec(pr->base + i);
		bc_audit_enqueue(pr->a, &r);
	}
	return NULL;
}

TEST(full_queue_blocks_never_drops)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DELETE FROM %s", table);
	exec(sql);
	struct bc_audit *a = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_audit_new(&a, st, table, "vault", NULL, NULL, &err) == BC_OK);
	pthread_t t[2];
	struct producer pr[2] = {{a, 0}, {a, 100000}};
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, produce, &pr[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	bc_audit_free(a); /* flushes what is queued */
	CHECK_EQ_INT(count(NULL), 12000); /* more than the queue holds: producers waited */
}

int main(void)
{
	struct bc_error err = {0};
	char url[2048], dir[] = "/tmp/badge-audit-test.XXXXXX";
	const char *pg = getenv("BADGE_TEST_PG_URL");
	bool sqlite = !pg || !*pg;
	if (sqlite) {
		if (!mkdtemp(dir))
			return 1;
		snprintf(url, sizeof(url), "sqlite:%s/db", dir);
	} else {
		snprintf(url, sizeof(url), "%s", pg);
	}
	if (bc_store_open(&st, url, &err) != BC_OK) {
		fprintf(stderr, "open: %s\n", err.msg);
		return 1;
	}
	snprintf(table, sizeof(table), "audit_test_%d", (int)getpid());
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s (id TEXT NOT NULL, time_ms BIGINT NOT NULL, vault TEXT NOT NULL,"
		 " operation TEXT NOT NULL, object TEXT, oid TEXT, appid TEXT, xms_mirid TEXT, client_ip TEXT,"
		 " status BIGINT NOT NULL, duration_ms BIGINT NOT NULL, request_id TEXT)",
		 table);
	exec(sql);
	static const struct test_case cases[] = {T(batches_and_rows), T(full_queue_blocks_never_drops)};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_current = cases[i].name;
		int before = test_failures;
		cases[i].fn();
		printf("%s %s (%s)\n", test_failures == before ? "ok  " : "FAIL", cases[i].name, sqlite ? "sqlite" : "postgres");
	}
	snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
	exec(sql);
	bc_store_free(st);
	if (sqlite) {
		snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
		if (system(sql) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return test_failures ? 1 : 0;
}
