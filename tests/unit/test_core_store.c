/* The storage conformance suite: every case runs on SQLite (a temp dir) and, when
 * BADGE_TEST_PG_URL is set, on PostgreSQL (each case in a schema of its own). */
#include "core/store.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/store_int.h"
#include "test.h"

static const char *backend; /* "sqlite" or "postgres" */
static const char *pg_base;
static char url[2048];   /* the current case's store */
static char tmpdir[256]; /* SQLite: the current case's directory */
static char schema[64];  /* PostgreSQL: the current case's schema */
static int case_no;

#define IS_PG (strcmp(backend, "postgres") == 0)

static void admin_pg(const char *sql)
{
	struct bc_store *st;
	struct bc_error err = {0};
	if (bc_store_open(&st, pg_base, &err)) {
		fprintf(stderr, "admin open: %s\n", err.msg);
		test_failures++;
		return;
	}
	if (bc_store_exec(st, NULL, sql, NULL, 0, NULL, NULL, NULL, &err)) {
		fprintf(stderr, "admin %s: %s\n", sql, err.msg);
		test_failures++;
	}
	bc_store_free(st);
}

static void case_setup(void)
{
	case_no++;
	if (IS_PG) {
		char sql[128];
		snprintf(schema, sizeof(schema), "store_test_%d_%d", (int)getpid(), case_no);
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
		admin_pg(sql);
		snprintf(url, sizeof(url), "%s%coptions=-csearch_path%%3D%s", pg_base, strchr(pg_base, '?') ? '&' : '?',
			 schema);
	} else {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/badge-store-test.XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(1);
		}
		/* Alternate the accepted spellings of a SQLite URL. */
		const char *scheme = case_no % 3 == 0 ? "sqlite:" : case_no % 3 == 1 ? "sqlite://" : "";
		snprintf(url, sizeof(url), "%s%s/store.db", scheme, tmpdir);
	}
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void case_teardown(void)
{
	if (IS_PG) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
		admin_pg(sql);
	} else {
		nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	}
}

static struct bc_store *open_store(void)
{
	struct bc_store *st = NULL;
	struct bc_error err = {0};
	if (bc_store_open(&st, url, &err)) {
		fprintf(stderr, "%s: open %s: %s\n", test_current, backend, err.msg);
		test_failures++;
		return NULL;
	}
	return st;
}

static const char *const SCHEMA[] = {
	"CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT UNIQUE, n BIGINT)",
	"CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO counter VALUES (1, 0)",
};

static struct bc_store *open_migrated(void)
{
	struct bc_store *st = open_store();
	struct bc_error err = {0};
	if (st && bc_store_migrate(st, "test", SCHEMA, 2, &err)) {
		fprintf(stderr, "%s: migrate: %s\n", test_current, err.msg);
		test_failures++;
		bc_store_free(st);
		return NULL;
	}
	return st;
}

static int64_t count_rows(struct bc_store *st, const char *table)
{
	char sql[128];
	int64_t n = -1;
	struct bc_error err = {0};
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	if (bc_store_get_int(st, NULL, sql, NULL, 0, &n, NULL, &err))
		fprintf(stderr, "count %s: %s\n", table, err.msg);
	return n;
}

static int insert_t(struct bc_store *st, struct bc_txn *txn, int64_t id, const char *name, int64_t n,
		    struct bc_error *err)
{
	struct bc_param p[] = {BC_PINT(id), BC_PTEXT(name), BC_PINT(n)};
	return bc_store_exec(st, txn, "INSERT INTO t (id, name, n) VALUES (?, ?, ?)", p, 3, NULL, NULL, NULL, err);
}

static char *name_of(struct bc_store *st, int64_t id)
{
	struct bc_param p[] = {BC_PINT(id)};
	char *s = NULL;
	struct bc_error err = {0};
	if (bc_store_get_text(st, NULL, "SELECT name FROM t WHERE id = ?", p, 1, &s, &err))
		fprintf(stderr, "name_of: %s\n", err.msg);
	return s;
}

/* ---- backend-independent helpers ---- */

static void check_rewrite(const char *in, const char *want, size_t want_n)
{
	char *out = NULL;
	size_t n = 99;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_store_pg_sql(in, &out, &n, &err), BC_OK);
	CHECK_STR(out, want);
	CHECK_EQ_INT(n, want_n);
	free(out);
}

TEST(sql_rewrite)
{
	check_rewrite("SELECT 1", "SELECT 1", 0);
	check_rewrite("SELECT a FROM t WHERE a = ? AND b = ?", "SELECT a FROM t WHERE a = $1 AND b = $2", 2);
	check_rewrite("SELECT '?', ? FROM \"we?ird\" WHERE x = 'it''s ?' AND y = ?",
		      "SELECT '?', $1 FROM \"we?ird\" WHERE x = 'it''s ?' AND y = $2", 2);
	check_rewrite("SELECT ? -- what?\n, ? /* ? */", "SELECT $1 -- what?\n, $2 /* ? */", 2);
	check_rewrite("SELECT E'a\\'?', ?", "SELECT E'a\\'?', $1", 1);
	check_rewrite("SELECT $$ ? $$, $tag$ '? $tag$, ?", "SELECT $$ ? $$, $tag$ '? $tag$, $1", 1);
	check_rewrite("SELECT 'unterminated ?", "SELECT 'unterminated ?", 0);
	char big[64];
	snprintf(big, sizeof(big), "%s", "?,?,?,?,?,?,?,?,?,?,?");
	check_rewrite(big, "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11", 11);
}

static void check_url(const char *in, int want_kind, const char *want)
{
	int kind = 0;
	char *t = NULL;
	struct bc_error err = {0};
	int rc = bc_store_parse_url(in, &kind, &t, &err);
	if (!want) {
		CHECK_EQ_INT(rc, BC_ERR_INVALID);
		return;
	}
	CHECK_EQ_INT(rc, BC_OK);
	CHECK_EQ_INT(kind, want_kind);
	CHECK_STR(t, want);
	free(t);
}

TEST(url_parse)
{
	check_url("sqlite:/var/lib/badge/badge.db", 's', "/var/lib/badge/badge.db");
	check_url("sqlite:///var/lib/badge/badge.db", 's', "/var/lib/badge/badge.db");
	check_url("sqlite://rel.db", 's', "rel.db");
	check_url("SQLite:rel.db", 's', "rel.db");
	check_url("/plain/path.db", 's', "/plain/path.db");
	check_url("postgres://u@h/db", 'p', "postgres://u@h/db");
	check_url("postgresql://u:p@127.0.0.1:5432/db?sslmode=disable", 'p',
		  "postgresql://u:p@127.0.0.1:5432/db?sslmode=disable");
	check_url("", 0, NULL);
	check_url("sqlite:", 0, NULL);
	check_url("sqlite::memory:", 0, NULL);
	check_url("mysql://x/y", 0, NULL);
	struct bc_store *st;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_store_open(&st, "postgres://127.0.0.1:1/x?pool_size=0", &err), BC_ERR_INVALID);
}

/* ---- the conformance cases ---- */

TEST(migrations)
{
	static const char *const steps[] = {
		"CREATE TABLE a (id BIGINT PRIMARY KEY, v TEXT)",
		"INSERT INTO a VALUES (1, 'one'); INSERT INTO a VALUES (2, 'two')",
		"ALTER TABLE a ADD COLUMN w BIGINT",
		"INSERT INTO a (id, v, w) VALUES (3, 'x', 0); INSERT INTO nosuch VALUES (1)",
	};
	struct bc_error err = {0};
	struct bc_store *st = open_store();
	REQUIRE(st);
	CHECK_EQ_INT(bc_store_migrate(st, "comp", steps, 2, &err), BC_OK);
	CHECK_EQ_INT(count_rows(st, "a"), 2);
	CHECK_EQ_INT(bc_store_migrate(st, "comp", steps, 3, &err), BC_OK);
	CHECK_EQ_INT(bc_store_migrate(st, "other", steps, 1, &err), BC_ERR_STORE); /* table a exists */
	bc_store_free(st);

	REQUIRE((st = open_store()));
	CHECK_EQ_INT(bc_store_migrate(st, "comp", steps, 3, &err), BC_OK); /* idempotent */
	CHECK_EQ_INT(count_rows(st, "a"), 2);
	CHECK_EQ_INT(count_rows(st, "schema_migrations"), 3);
	int64_t v = 0;
	struct bc_param p[] = {BC_PTEXT("comp")};
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT MAX(version) FROM schema_migrations WHERE component = ?", p, 1,
				      &v, NULL, &err),
		     BC_OK);
	CHECK_EQ_INT(v, 3);
	/* in order: version i+1 was recorded after version i */
	CHECK_EQ_INT(bc_store_get_int(st, NULL,
				      "SELECT COUNT(*) FROM schema_migrations a JOIN schema_migrations b ON "
				      "a.component = b.component AND b.version = a.version + 1 WHERE a.applied > b.applied",
				      NULL, 0, &v, NULL, &err),
		     BC_OK);
	CHECK_EQ_INT(v, 0);
	/* the new column exists */
	CHECK_EQ_INT(bc_store_exec(st, NULL, "UPDATE a SET w = 5", NULL, 0, NULL, NULL, NULL, &err), BC_OK);

	/* a failing step leaves nothing of itself */
	CHECK(bc_store_migrate(st, "comp", steps, 4, &err) != BC_OK);
	CHECK_EQ_INT(count_rows(st, "a"), 2);
	CHECK_EQ_INT(count_rows(st, "schema_migrations"), 3);
	/* a schema newer than the program is refused */
	CHECK_EQ_INT(bc_store_migrate(st, "comp", steps, 2, &err), BC_ERR_STORE);
	CHECK(strstr(err.msg, "newer") != NULL);
	bc_store_free(st);
}

struct mig_thread {
	int rc;
	struct bc_error err;
};

static void *migrate_thread(void *arg)
{
	static const char *const steps[] = {
		"CREATE TABLE m (id BIGINT PRIMARY KEY)",
		"INSERT INTO m VALUES (1)",
		"INSERT INTO m VALUES (2)",
	};
	struct mig_thread *m = arg;
	struct bc_store *st;
	if ((m->rc = bc_store_open(&st, url, &m->err)))
		return NULL;
	m->rc = bc_store_migrate(st, "race", steps, 3, &m->err);
	bc_store_free(st);
	return NULL;
}

TEST(migrations_concurrent)
{
	enum { N = 4 };
	pthread_t th[N];
	struct mig_thread m[N];
	memset(m, 0, sizeof(m));
	for (int i = 0; i < N; i++)
		REQUIRE(pthread_create(&th[i], NULL, migrate_thread, &m[i]) == 0);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (m[i].rc)
			fprintf(stderr, "migrate thread %d: %s\n", i, m[i].err.msg);
		CHECK_EQ_INT(m[i].rc, BC_OK);
	}
	struct bc_store *st = open_store();
	REQUIRE(st);
	CHECK_EQ_INT(count_rows(st, "m"), 2);
	CHECK_EQ_INT(count_rows(st, "schema_migrations"), 3);
	bc_store_free(st);
}

struct collect {
	int rows;
	int64_t ids[16];
	char names[16][64];
	bool null_name[16];
	int columns;
	int stop_after; /* 0: never */
};

static int collect_row(void *ctx, const struct bc_row *row)
{
	struct collect *c = ctx;
	if (c->rows < 16) {
		c->ids[c->rows] = bc_row_int(row, 0);
		const char *s = bc_row_text(row, 1);
		c->null_name[c->rows] = bc_row_is_null(row, 1);
		snprintf(c->names[c->rows], sizeof(c->names[0]), "%s", s ? s : "");
	}
	c->columns = bc_row_columns(row);
	c->rows++;
	return c->stop_after && c->rows >= c->stop_after;
}

TEST(crud)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "one", INT64_MAX, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 2, NULL, INT64_MIN, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 3, "it's a \"?\" \xc3\xa9\xe2\x82\xac", -1, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, INT64_MAX, "max", 0, &err), BC_OK);

	struct collect c = {0};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT id, name, n FROM t ORDER BY id", NULL, 0, collect_row, &c, NULL, &err),
		     BC_OK);
	CHECK_EQ_INT(c.rows, 4);
	CHECK_EQ_INT(c.columns, 3);
	CHECK_EQ_INT(c.ids[0], 1);
	CHECK_STR(c.names[0], "one");
	CHECK(c.null_name[1]);
	CHECK(!c.null_name[0]);
	CHECK_STR(c.names[2], "it's a \"?\" \xc3\xa9\xe2\x82\xac");
	CHECK_EQ_INT(c.ids[3], INT64_MAX);

	int64_t v = 0;
	bool found = false;
	struct bc_param p1[] = {BC_PINT(1)};
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM t WHERE id = ?", p1, 1, &v, &found, &err), BC_OK);
	CHECK(found);
	CHECK_EQ_INT(v, INT64_MAX);
	struct bc_param p2[] = {BC_PINT(2)};
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM t WHERE id = ?", p2, 1, &v, &found, &err), BC_OK);
	CHECK_EQ_INT(v, INT64_MIN);
	/* a '?' inside a literal is not a parameter */
	char *s = NULL;
	CHECK_EQ_INT(bc_store_get_text(st, NULL, "SELECT name FROM t WHERE name LIKE '%?%' AND id = ?", (struct bc_param[]){BC_PINT(3)}, 1, &s, &err), BC_OK);
	CHECK(s && strstr(s, "?"));
	free(s);

	/* update, changes */
	int64_t changes = -1;
	struct bc_param up[] = {BC_PTEXT("uno"), BC_PINT(1)};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "UPDATE t SET name = ? WHERE id = ?", up, 2, NULL, NULL, &changes, &err), BC_OK);
	CHECK_EQ_INT(changes, 1);
	s = name_of(st, 1);
	CHECK_STR(s, "uno");
	free(s);
	CHECK_EQ_INT(bc_store_exec(st, NULL, "UPDATE t SET n = n + 1 WHERE id > 1", NULL, 0, NULL, NULL, &changes, &err),
		     BC_OK);
	CHECK_EQ_INT(changes, 3);
	/* set to NULL with a NULL parameter */
	struct bc_param nul[] = {BC_PNULL, BC_PINT(3)};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "UPDATE t SET name = ? WHERE id = ?", nul, 2, NULL, NULL, &changes, &err),
		     BC_OK);
	s = (char *)"sentinel";
	CHECK_EQ_INT(bc_store_get_text(st, NULL, "SELECT name FROM t WHERE id = 3", NULL, 0, &s, &err), BC_OK);
	CHECK(s == NULL);
	/* a typed NULL parameter works in a position without a type */
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM t WHERE CAST(? AS TEXT) IS NULL", (struct bc_param[]){BC_PNULL}, 1, &v, NULL, &err), BC_OK);
	CHECK_EQ_INT(v, 4);

	/* ON CONFLICT */
	struct bc_param ins[] = {BC_PINT(1), BC_PTEXT("dup"), BC_PINT(7)};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "INSERT INTO t (id, name, n) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
				   ins, 3, NULL, NULL, &changes, &err),
		     BC_OK);
	CHECK_EQ_INT(changes, 0);
	CHECK_EQ_INT(bc_store_exec(st, NULL,
				   "INSERT INTO t (id, name, n) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET n = excluded.n",
				   ins, 3, NULL, NULL, &changes, &err),
		     BC_OK);
	CHECK_EQ_INT(changes, 1);
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM t WHERE id = 1", NULL, 0, &v, NULL, &err), BC_OK);
	CHECK_EQ_INT(v, 7);

	/* LIMIT/OFFSET, stopping early, RETURNING */
	memset(&c, 0, sizeof(c));
	struct bc_param lim[] = {BC_PINT(2), BC_PINT(1)};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT id, name FROM t ORDER BY id LIMIT ? OFFSET ?", lim, 2, collect_row, &c,
				   NULL, &err),
		     BC_OK);
	CHECK_EQ_INT(c.rows, 2);
	CHECK_EQ_INT(c.ids[0], 2);
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT id, name FROM t ORDER BY id", NULL, 0, collect_row, &c, NULL, &err),
		     BC_OK);
	CHECK_EQ_INT(c.rows, 1);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(bc_store_exec(st, NULL, "DELETE FROM t WHERE id = ? RETURNING id, name", (struct bc_param[]){BC_PINT(INT64_MAX)}, 1,
				   collect_row, &c, &changes, &err),
		     BC_OK);
	CHECK_EQ_INT(c.rows, 1);
	CHECK_STR(c.names[0], "max");
	CHECK_EQ_INT(changes, 1);
	CHECK_EQ_INT(count_rows(st, "t"), 3);

	/* misuse */
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT id FROM t WHERE id = ?", NULL, 0, NULL, NULL, NULL, &err),
		     BC_ERR_INVALID);
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT nosuch FROM t", NULL, 0, NULL, NULL, NULL, &err), BC_ERR_STORE);
	CHECK(err.msg[0] != '\0');
	bc_store_free(st);
}

struct nest {
	struct bc_store *st;
	int rows, inner_ok;
};

static int nest_row(void *ctx, const struct bc_row *row)
{
	struct nest *n = ctx;
	struct bc_error err = {0};
	int64_t v;
	n->rows++;
	/* the same text as the outer query, and another one, while the outer runs */
	if (bc_store_get_int(n->st, NULL, "SELECT id FROM t ORDER BY id", NULL, 0, &v, NULL, &err) == BC_OK && v == 1)
		n->inner_ok++;
	return 0;
}

TEST(nested_queries)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	for (int i = 1; i <= 3; i++)
		CHECK_EQ_INT(insert_t(st, NULL, i, NULL, i, &err), BC_OK);
	struct nest n = {.st = st};
	CHECK_EQ_INT(bc_store_exec(st, NULL, "SELECT id FROM t ORDER BY id", NULL, 0, nest_row, &n, NULL, &err), BC_OK);
	CHECK_EQ_INT(n.rows, 3);
	CHECK_EQ_INT(n.inner_ok, 3);
	bc_store_free(st);
}

TEST(unique_violation)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "one", 1, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "other", 2, &err), BC_ERR_EXISTS); /* primary key */
	CHECK_EQ_INT(err.status, BC_ERR_EXISTS);
	CHECK_EQ_INT(insert_t(st, NULL, 2, "one", 2, &err), BC_ERR_EXISTS); /* unique column */
	CHECK_EQ_INT(count_rows(st, "t"), 1);

	/* in a transaction: the violation kills it, nothing of it remains */
	struct bc_txn *txn;
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 5, "five", 5, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 1, "again", 5, &err), BC_ERR_EXISTS);
	CHECK_EQ_INT(insert_t(st, txn, 6, "six", 6, &err), BC_ERR_EXISTS); /* dead transaction */
	CHECK(bc_txn_commit(txn, &err) != BC_OK);
	CHECK_EQ_INT(count_rows(st, "t"), 1);
	char *s = name_of(st, 1);
	CHECK_STR(s, "one");
	free(s);
	/* the store is usable afterwards */
	CHECK_EQ_INT(insert_t(st, NULL, 7, "seven", 7, &err), BC_OK);
	bc_store_free(st);
}

TEST(rollback)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	struct bc_txn *txn;
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 1, "one", 1, &err), BC_OK);
	int64_t v = 0;
	CHECK_EQ_INT(bc_store_get_int(st, txn, "SELECT COUNT(*) FROM t", NULL, 0, &v, NULL, &err), BC_OK);
	CHECK_EQ_INT(v, 1); /* visible inside */
	CHECK_EQ_INT(count_rows(st, "t"), 0); /* not outside */
	if (!IS_PG) /* one writer: a write outside the thread's own transaction is refused */
		CHECK_EQ_INT(insert_t(st, NULL, 9, "nine", 9, &err), BC_ERR_INTERNAL);
	bc_txn_rollback(txn);
	bc_txn_rollback(NULL);
	CHECK_EQ_INT(count_rows(st, "t"), 0);

	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 2, "two", 2, &err), BC_OK);
	CHECK_EQ_INT(bc_txn_commit(txn, &err), BC_OK);
	CHECK_EQ_INT(count_rows(st, "t"), 1);
	bc_store_free(st);
}

TEST(durable_reopen)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	struct bc_txn *txn;
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 1, "kept", 1, &err), BC_OK);
	CHECK_EQ_INT(bc_txn_commit(txn, &err), BC_OK);
	bc_store_free(st);
	REQUIRE((st = open_migrated()));
	char *s = name_of(st, 1);
	CHECK_STR(s, "kept");
	free(s);
	bc_store_free(st);
	if (!IS_PG) {
		struct stat sb;
		char path[512];
		snprintf(path, sizeof(path), "%s/store.db", tmpdir);
		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	}
}

TEST(durable_kill9)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	bc_store_free(st);
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct bc_txn *txn;
		close(fds[0]);
		if (bc_store_open(&st, url, &err) || bc_store_begin(st, &txn, &err) ||
		    insert_t(st, txn, 42, "survivor", 42, &err) || bc_txn_commit(txn, &err)) {
			fprintf(stderr, "child: %s\n", err.msg);
			_exit(1);
		}
		/* a second, uncommitted write must vanish */
		if (bc_store_begin(st, &txn, &err) || insert_t(st, txn, 43, "lost", 43, &err))
			_exit(1);
		if (write(fds[1], "c", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	char ch = 0;
	ssize_t r;
	do
		r = read(fds[0], &ch, 1);
	while (r < 0 && errno == EINTR);
	close(fds[0]);
	kill(pid, SIGKILL);
	int status = 0;
	waitpid(pid, &status, 0);
	REQUIRE(r == 1);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	REQUIRE((st = open_migrated()));
	char *s = name_of(st, 42);
	CHECK_STR(s, "survivor");
	free(s);
	CHECK_EQ_INT(count_rows(st, "t"), 1);
	bc_store_free(st);
}

enum { COUNTER_THREADS = 6, COUNTER_ROUNDS = 25 };

struct counter_thread {
	struct bc_store *st; /* shared, or NULL: open one of its own (another "replica") */
	int failures, conflicts;
	struct bc_error err;
};

static int increment(struct bc_store *st, struct counter_thread *ct)
{
	for (int attempt = 0; attempt < 1000; attempt++) {
		struct bc_txn *txn;
		int64_t n = 0;
		int rc = bc_store_begin(st, &txn, &ct->err);
		if (rc == BC_OK) {
			rc = bc_store_get_int(st, txn, "SELECT n FROM counter WHERE id = 1 FOR UPDATE", NULL, 0, &n, NULL,
					      &ct->err);
			if (rc == BC_OK) {
				struct bc_param p[] = {BC_PINT(n + 1)};
				rc = bc_store_exec(st, txn, "UPDATE counter SET n = ? WHERE id = 1", p, 1, NULL, NULL, NULL,
						   &ct->err);
			}
			if (rc == BC_OK)
				rc = bc_txn_commit(txn, &ct->err);
			else
				bc_txn_rollback(txn);
		}
		if (rc == BC_OK)
			return BC_OK;
		if (rc != BC_ERR_CONFLICT)
			return rc;
		ct->conflicts++;
	}
	return BC_ERR_CONFLICT;
}

static void *counter_main(void *arg)
{
	struct counter_thread *ct = arg;
	struct bc_store *st = ct->st;
	if (!st && bc_store_open(&st, url, &ct->err)) {
		ct->failures = COUNTER_ROUNDS;
		return NULL;
	}
	for (int i = 0; i < COUNTER_ROUNDS; i++)
		if (increment(st, ct))
			ct->failures++;
	if (!ct->st)
		bc_store_free(st);
	return NULL;
}

TEST(concurrent_counter)
{
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	pthread_t th[COUNTER_THREADS];
	struct counter_thread ct[COUNTER_THREADS];
	memset(ct, 0, sizeof(ct));
	for (int i = 0; i < COUNTER_THREADS; i++) {
		ct[i].st = i % 2 ? st : NULL;
		REQUIRE(pthread_create(&th[i], NULL, counter_main, &ct[i]) == 0);
	}
	int conflicts = 0;
	for (int i = 0; i < COUNTER_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (ct[i].failures)
			fprintf(stderr, "counter thread %d: %d failures, last: %s\n", i, ct[i].failures, ct[i].err.msg);
		CHECK_EQ_INT(ct[i].failures, 0);
		conflicts += ct[i].conflicts;
	}
	int64_t n = 0;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM counter WHERE id = 1", NULL, 0, &n, NULL, &err), BC_OK);
	CHECK_EQ_INT(n, COUNTER_THREADS * COUNTER_ROUNDS);
	printf("     %s: %d increments, %d conflicts retried\n", backend, COUNTER_THREADS * COUNTER_ROUNDS, conflicts);
	bc_store_free(st);
}

struct inbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	char got[16][32];
};

static void on_note(void *ctx, const char *channel, const char *payload)
{
	struct inbox *b = ctx;
	pthread_mutex_lock(&b->mu);
	if (b->n < 16)
		snprintf(b->got[b->n], sizeof(b->got[0]), "%s:%s", channel, payload);
	b->n++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* Waits (10 s at most) until the inbox holds at least n notifications. */
static int inbox_wait(struct inbox *b, int n)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&b->mu);
	while (b->n < n && pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == 0)
		;
	int got = b->n;
	pthread_mutex_unlock(&b->mu);
	return got;
}

TEST(notify)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	struct inbox b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct inbox other = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	CHECK_EQ_INT(bc_store_subscribe(st, "principals", on_note, &b, &err), BC_OK);
	CHECK_EQ_INT(bc_store_subscribe(st, "policies", on_note, &other, &err), BC_OK);
	CHECK_EQ_INT(bc_store_subscribe(st, "", on_note, &b, &err), BC_ERR_INVALID);

	struct bc_txn *txn;
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(bc_store_notify(st, txn, "principals", "rolled-back", &err), BC_OK);
	bc_txn_rollback(txn);

	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(insert_t(st, txn, 1, "one", 1, &err), BC_OK);
	CHECK_EQ_INT(bc_store_notify(st, txn, "principals", "p1", &err), BC_OK);
	CHECK_EQ_INT(bc_store_notify(st, txn, "principals", "p2", &err), BC_OK);
	CHECK_EQ_INT(inbox_wait(&b, 0), 0); /* nothing before commit */
	CHECK_EQ_INT(bc_txn_commit(txn, &err), BC_OK);
	CHECK_EQ_INT(inbox_wait(&b, 2), 2);
	CHECK_EQ_INT(bc_store_notify(st, NULL, "principals", "now", &err), BC_OK);
	CHECK_EQ_INT(inbox_wait(&b, 3), 3);
	pthread_mutex_lock(&b.mu);
	CHECK_STR(b.got[0], "principals:p1");
	CHECK_STR(b.got[1], "principals:p2");
	CHECK_STR(b.got[2], "principals:now");
	pthread_mutex_unlock(&b.mu);
	CHECK_EQ_INT(other.n, 0);

	char big[BC_STORE_PAYLOAD_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(bc_store_notify(st, NULL, "principals", big, &err), BC_ERR_LIMIT);

	if (IS_PG) { /* another replica's subscriber sees this one's commits */
		struct bc_store *st2 = open_store();
		struct inbox r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
		REQUIRE(st2);
		CHECK_EQ_INT(bc_store_subscribe(st2, "policies", on_note, &r, &err), BC_OK);
		CHECK_EQ_INT(bc_store_notify(st, NULL, "policies", "x", &err), BC_OK);
		CHECK_EQ_INT(inbox_wait(&r, 1), 1);
		CHECK_STR(r.got[0], "policies:x");
		bc_store_free(st2);
	}
	bc_store_free(st);
	/* nothing was delivered after the rolled-back one, and the rolled-back one never was */
	for (int i = 0; i < b.n && i < 16; i++)
		CHECK(strstr(b.got[i], "rolled-back") == NULL);
}

TEST(get_helpers)
{
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "one", 11, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 2, NULL, 22, &err), BC_OK);
	char *s = (char *)"sentinel";
	CHECK_EQ_INT(bc_store_get_text(st, NULL, "SELECT name FROM t WHERE id = 99", NULL, 0, &s, &err), BC_OK);
	CHECK(s == NULL); /* no row */
	s = name_of(st, 1);
	CHECK_STR(s, "one");
	free(s);
	/* integers read as text */
	CHECK_EQ_INT(bc_store_get_text(st, NULL, "SELECT n FROM t WHERE id = 2", NULL, 0, &s, &err), BC_OK);
	CHECK_STR(s, "22");
	free(s);
	int64_t v = -1;
	bool found = true;
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM t WHERE id = 99", NULL, 0, &v, &found, &err), BC_OK);
	CHECK(!found);
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT n FROM t WHERE id = 1", NULL, 0, &v, &found, &err), BC_OK);
	CHECK(found);
	CHECK_EQ_INT(v, 11);
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT name FROM t WHERE id = 2", NULL, 0, &v, &found, &err), BC_OK);
	CHECK(found); /* a NULL value is found, and 0 */
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT nope FROM t", NULL, 0, &v, &found, &err), BC_ERR_STORE);
	bc_store_free(st);
}

/* PostgreSQL: a server that drops the pool's connections and the listener's (restart, failover)
 * costs one failed statement at most; the listener reconnects and says "" (anything changed). */
TEST(reconnect)
{
	if (!IS_PG)
		return;
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	struct inbox b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	CHECK_EQ_INT(bc_store_subscribe(st, "keys", on_note, &b, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "one", 1, &err), BC_OK);
	admin_pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'badge' "
		 "AND pid <> pg_backend_pid()");
	char *s = name_of(st, 1); /* the broken idle connection is replaced */
	CHECK_STR(s, "one");
	free(s);
	CHECK_EQ_INT(insert_t(st, NULL, 2, "two", 2, &err), BC_OK);
	struct bc_txn *txn;
	CHECK_EQ_INT(bc_store_begin(st, &txn, &err), BC_OK);
	bc_txn_rollback(txn);
	CHECK(inbox_wait(&b, 1) >= 1); /* the listener came back and said "" */
	pthread_mutex_lock(&b.mu);
	CHECK_STR(b.got[0], "keys:");
	int before = b.n;
	pthread_mutex_unlock(&b.mu);
	CHECK_EQ_INT(bc_store_notify(st, NULL, "keys", "k1", &err), BC_OK);
	CHECK(inbox_wait(&b, before + 1) >= before + 1);
	pthread_mutex_lock(&b.mu);
	CHECK_STR(b.got[before], "keys:k1");
	pthread_mutex_unlock(&b.mu);
	bc_store_free(st);
}

struct deadlock_side {
	struct bc_store *st;
	pthread_barrier_t *barrier;
	int64_t first, second;
	int rc;
	struct bc_error err;
};

static void *deadlock_main(void *arg)
{
	struct deadlock_side *d = arg;
	struct bc_txn *txn;
	struct bc_param a[] = {BC_PINT(d->first)}, b[] = {BC_PINT(d->second)};
	if ((d->rc = bc_store_begin(d->st, &txn, &d->err)))
		return NULL;
	d->rc = bc_store_exec(d->st, txn, "UPDATE t SET n = n + 1 WHERE id = ?", a, 1, NULL, NULL, NULL, &d->err);
	pthread_barrier_wait(d->barrier);
	if (!d->rc)
		d->rc = bc_store_exec(d->st, txn, "UPDATE t SET n = n + 1 WHERE id = ?", b, 1, NULL, NULL, NULL, &d->err);
	if (!d->rc)
		d->rc = bc_txn_commit(txn, &d->err);
	else
		bc_txn_rollback(txn);
	return NULL;
}

/* PostgreSQL: two transactions locking rows in opposite orders; the one the server picks as the
 * deadlock victim gets BC_ERR_CONFLICT, the other commits. (SQLite: one writer, no deadlock.) */
TEST(deadlock_conflict)
{
	if (!IS_PG)
		return;
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	CHECK_EQ_INT(insert_t(st, NULL, 1, "a", 0, &err), BC_OK);
	CHECK_EQ_INT(insert_t(st, NULL, 2, "b", 0, &err), BC_OK);
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, 2);
	struct deadlock_side d[2] = {{.st = st, .barrier = &barrier, .first = 1, .second = 2},
				     {.st = st, .barrier = &barrier, .first = 2, .second = 1}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&th[i], NULL, deadlock_main, &d[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
	CHECK((d[0].rc == BC_OK && d[1].rc == BC_ERR_CONFLICT) || (d[1].rc == BC_OK && d[0].rc == BC_ERR_CONFLICT));
	int64_t sum = 0;
	CHECK_EQ_INT(bc_store_get_int(st, NULL, "SELECT SUM(n) FROM t", NULL, 0, &sum, NULL, &err), BC_OK);
	CHECK_EQ_INT(sum, 2); /* the winner's two updates, nothing of the victim's */
	bc_store_free(st);
}

struct reader {
	struct bc_store *st;
	int n, ok;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct bc_error err = {0};
	for (int i = 0; i < r->n; i++) {
		struct bc_param p[] = {BC_PINT(1 + i % 3)};
		char *s = NULL;
		if (bc_store_get_text(r->st, NULL, "SELECT name FROM t WHERE id = ?", p, 1, &s, &err) == BC_OK && s)
			r->ok++;
		free(s);
	}
	return NULL;
}

/* Many threads reading at once (the vault's secret GET): all succeed; the rate is printed. */
TEST(parallel_reads)
{
	enum { THREADS = 4, READS = 5000 };
	struct bc_error err = {0};
	struct bc_store *st = open_migrated();
	REQUIRE(st);
	for (int i = 1; i <= 3; i++)
		CHECK_EQ_INT(insert_t(st, NULL, i, i == 1 ? "a" : i == 2 ? "b" : "c", i, &err), BC_OK);
	pthread_t th[THREADS];
	struct reader r[THREADS];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct reader){.st = st, .n = IS_PG ? READS / 10 : READS};
		REQUIRE(pthread_create(&th[i], NULL, reader_main, &r[i]) == 0);
	}
	int total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(r[i].ok, r[i].n);
		total += r[i].ok;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("     %s: %d point reads from %d threads, %.0f/s\n", backend, total, THREADS, total / s);
	bc_store_free(st);
}

/* One leader per name among the stores on one database; the next one takes over when it goes. */
TEST(leader)
{
	struct bc_error err = {0};
	struct bc_store *a = open_store(), *b = open_store();
	REQUIRE(a && b);
	char name[64], other[64];
	snprintf(name, sizeof(name), "test-%d-%d", (int)getpid(), case_no);
	snprintf(other, sizeof(other), "other-%d-%d", (int)getpid(), case_no);
	bool la = false, lb = true;
	CHECK_EQ_INT(bc_store_leader(a, name, &la, &err), BC_OK);
	CHECK(la);
	CHECK_EQ_INT(bc_store_leader(a, name, &la, &err), BC_OK); /* still */
	CHECK(la);
	CHECK_EQ_INT(bc_store_leader(b, name, &lb, &err), BC_OK);
	CHECK_EQ_INT(bc_store_leader(b, other, &la, &err), BC_OK); /* another name: independent */
	CHECK(la);
	CHECK_EQ_INT(bc_store_leader(a, "", &la, &err), BC_ERR_INVALID);
	if (IS_PG) {
		CHECK(!lb);
		bc_store_free(a); /* the leader goes away: its session, and so its lock, ends */
		a = NULL;
		/* The server ends the session asynchronously: the next try after it did takes over. */
		for (int i = 0; i < 500 && !lb; i++) {
			CHECK_EQ_INT(bc_store_leader(b, name, &lb, &err), BC_OK);
			if (!lb)
				nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		CHECK(lb);
	} else {
		CHECK(lb); /* SQLite: every store is the single server */
	}
	bc_store_free(a);
	bc_store_free(b);
}

static const struct test_case conformance[] = {
	T(migrations), T(migrations_concurrent), T(crud), T(nested_queries), T(unique_violation), T(rollback),
	T(durable_reopen), T(durable_kill9), T(concurrent_counter), T(notify), T(get_helpers),
	T(reconnect), T(deadlock_conflict), T(parallel_reads), T(leader),
};

static void run_suite(const char *be, const char *only)
{
	backend = be;
	for (size_t i = 0; i < sizeof(conformance) / sizeof(conformance[0]); i++) {
		if (only && strcmp(only, conformance[i].name) != 0)
			continue;
		test_current = conformance[i].name;
		int before = test_failures;
		case_setup();
		conformance[i].fn();
		case_teardown();
		printf("%s %s/%s\n", test_failures == before ? "ok  " : "FAIL", be, conformance[i].name);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	static const struct test_case local[] = {T(sql_rewrite), T(url_parse)};
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if (only && strcmp(only, local[i].name) != 0)
			continue;
		test_current = local[i].name;
		int before = test_failures;
		local[i].fn();
		printf("%s %s\n", test_failures == before ? "ok  " : "FAIL", local[i].name);
	}
	run_suite("sqlite", only);
	pg_base = getenv("BADGE_TEST_PG_URL");
	if (pg_base && *pg_base) {
		run_suite("postgres", only);
	} else if (getenv("BADGE_TEST_PG_REQUIRED")) {
		fprintf(stderr, "BADGE_TEST_PG_URL is required but not set\n");
		return 1;
	} else {
		printf("skip postgres: BADGE_TEST_PG_URL not set (tests/integration/00-store-postgres.sh runs it)\n");
	}
	return test_failures ? 1 : 0;
}
