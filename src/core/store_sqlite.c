/* The SQLite backend. One writer connection behind a lock of our own (BEGIN IMMEDIATE for
 * transactions), a pool of reader connections that grows on demand (WAL lets them read in
 * parallel with the writer). Connections are opened SQLITE_OPEN_NOMUTEX: each is used by one
 * thread at a time, which our pools guarantee. Every connection caches its prepared
 * statements by SQL text, so a hot query is parsed once per connection. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/store_int.h"

#define BUSY_TIMEOUT_MS 5000 /* wait for another process's write lock before BC_ERR_CONFLICT */
#define READERS_MAX 32       /* reader connections; beyond, readers wait for a free one */
#define CACHE_BUCKETS 128
#define CACHE_MAX 512 /* statements per connection; beyond, the idle ones are finalized */

struct stmt_entry {
	struct stmt_entry *next;
	char *sql; /* owned: the caller's text, the key */
	sqlite3_stmt *stmt; /* owned */
	bool busy; /* in use (a callback may run a nested query with the same text) */
};

struct sconn {
	sqlite3 *db; /* owned */
	struct stmt_entry *buckets[CACHE_BUCKETS];
	size_t ncached;
	struct sconn *next_free; /* pool free list */
	struct sconn *next_all;  /* every reader, for freeing */
};

struct sqlite_store {
	struct bc_store base;
	char *path; /* owned */
	struct sconn *writer; /* owned */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	bool wheld;
	pthread_t wowner;
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	struct sconn *rfree; /* borrowed from rall */
	struct sconn *rall;  /* owned */
	int rcount;          /* readers opened or being opened */
};

struct sqlite_txn {
	struct bc_txn base;
	struct sconn *conn; /* borrowed: the writer, held */
};

static const struct store_ops sqlite_ops;

/* ---- errors ---- */

static int sq_fail(struct bc_error *err, sqlite3 *db, int rc, const char *what)
{
	int st = BC_ERR_STORE;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		st = BC_ERR_EXISTS;
	else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		st = BC_ERR_CONFLICT;
	else if (rc == SQLITE_NOMEM)
		st = BC_ERR_NOMEM;
	return bc_error_set(err, st, "sqlite %s failed: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- statement cache ---- */

static size_t hash_sql(const char *s)
{
	size_t h = 1469598103934665603u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211u;
	return h;
}

static void cache_flush_idle(struct sconn *c)
{
	for (size_t b = 0; b < CACHE_BUCKETS; b++) {
		struct stmt_entry **pp = &c->buckets[b];
		while (*pp) {
			struct stmt_entry *e = *pp;
			if (e->busy) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			sqlite3_finalize(e->stmt);
			free(e->sql);
			free(e);
			c->ncached--;
		}
	}
}

/* SQLite has no row locks: its write transaction already excludes other writers. */
static char *strip_for_update(const char *sql)
{
	size_t n = strlen(sql);
	while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\n' || sql[n - 1] == '\t'))
		n--;
	if (n < 10 || strncasecmp(sql + n - 6, "update", 6) != 0)
		return NULL;
	size_t m = n - 6;
	if (!m || !strchr(" \t\n", sql[m - 1]))
		return NULL;
	while (m && strchr(" \t\n", sql[m - 1]))
		m--;
	if (m < 4 || strncasecmp(sql + m - 3, "for", 3) != 0 || !strchr(" \t\n)", sql[m - 4]))
		return NULL;
	return strndup(sql, m - 3);
}

static int prepare(struct sconn *c, const char *sql, bool persistent, sqlite3_stmt **out, struct bc_error *err)
{
	char *stripped = strip_for_update(sql);
	const char *tail = NULL;
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v3(c->db, stripped ? stripped : sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
				    &stmt, &tail);
	if (rc != SQLITE_OK) {
		free(stripped);
		return sq_fail(err, c->db, rc, "prepare");
	}
	while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
		tail++;
	bool extra = tail && *tail;
	free(stripped);
	if (!stmt || extra) {
		sqlite3_finalize(stmt);
		return bc_error_set(err, BC_ERR_INVALID, "sql must hold exactly one statement");
	}
	*out = stmt;
	return BC_OK;
}

/* Returns a statement for sql, marked busy. *entry is NULL when it is not cached. */
static int stmt_get(struct sconn *c, const char *sql, sqlite3_stmt **out, struct stmt_entry **entry,
		    struct bc_error *err)
{
	size_t b = hash_sql(sql) % CACHE_BUCKETS;
	struct stmt_entry *e;
	for (e = c->buckets[b]; e; e = e->next)
		if (strcmp(e->sql, sql) == 0)
			break;
	if (e && !e->busy) {
		e->busy = true;
		*out = e->stmt;
		*entry = e;
		return BC_OK;
	}
	if (e) { /* nested use of the same text: a private statement */
		*entry = NULL;
		return prepare(c, sql, false, out, err);
	}
	sqlite3_stmt *stmt;
	int rc = prepare(c, sql, true, &stmt, err);
	if (rc)
		return rc;
	if (c->ncached >= CACHE_MAX)
		cache_flush_idle(c);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->sql = strdup(sql))) {
		free(e);
		*entry = NULL; /* still usable, just not cached */
		*out = stmt;
		return BC_OK;
	}
	e->stmt = stmt;
	e->busy = true;
	e->next = c->buckets[b];
	c->buckets[b] = e;
	c->ncached++;
	*out = stmt;
	*entry = e;
	return BC_OK;
}

static void stmt_put(sqlite3_stmt *stmt, struct stmt_entry *entry)
{
	if (!entry) {
		sqlite3_finalize(stmt);
		return;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	entry->busy = false;
}

/* ---- connections ---- */

static void sconn_free(struct sconn *c)
{
	if (!c)
		return;
	for (size_t b = 0; b < CACHE_BUCKETS; b++) {
		struct stmt_entry *e = c->buckets[b];
		while (e) {
			struct stmt_entry *next = e->next;
			sqlite3_finalize(e->stmt);
			free(e->sql);
			free(e);
			e = next;
		}
	}
	sqlite3_close(c->db);
	free(c);
}

static int run_simple(struct sconn *c, const char *sql, struct bc_error *err)
{
	sqlite3_stmt *stmt;
	struct stmt_entry *e;
	int rc = stmt_get(c, sql, &stmt, &e, err);
	if (rc)
		return rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		rc = sq_fail(err, c->db, rc, sql);
		stmt_put(stmt, e);
		return rc;
	}
	stmt_put(stmt, e);
	return BC_OK;
}

static int check_wal(struct sconn *c, struct bc_error *err)
{
	sqlite3_stmt *stmt;
	int rc = prepare(c, "PRAGMA journal_mode=WAL", false, &stmt, err);
	if (rc)
		return rc;
	rc = sqlite3_step(stmt);
	const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
	bool wal = mode && strcasecmp(mode, "wal") == 0;
	if (rc != SQLITE_ROW)
		rc = sq_fail(err, c->db, rc, "journal_mode");
	else if (!wal)
		rc = bc_error_set(err, BC_ERR_STORE, "sqlite cannot use WAL mode (journal_mode is %s)",
				  mode ? mode : "unknown");
	else
		rc = BC_OK;
	sqlite3_finalize(stmt);
	return rc;
}

static int sconn_open(const char *path, bool writer, struct sconn **out, struct bc_error *err)
{
	struct sconn *c = calloc(1, sizeof(*c));
	if (!c)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = sq_fail(err, c->db, rc, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if (writer && (rc = check_wal(c, err)))
		goto fail;
	if ((rc = run_simple(c, "PRAGMA synchronous=FULL", err)) || (rc = run_simple(c, "PRAGMA foreign_keys=ON", err)))
		goto fail;
	/* A reader must never write; routing already ensures it, this makes it certain. */
	if (!writer && (rc = run_simple(c, "PRAGMA query_only=ON", err)))
		goto fail;
	*out = c;
	return BC_OK;
fail:
	bc_error_wrap(err, "%s", path);
	sconn_free(c);
	return rc;
}

static int writer_acquire(struct sqlite_store *s, struct bc_error *err)
{
	pthread_t self = pthread_self();
	pthread_mutex_lock(&s->wmu);
	if (s->wheld && pthread_equal(s->wowner, self)) {
		pthread_mutex_unlock(&s->wmu);
		return bc_error_set(err, BC_ERR_INTERNAL, "write outside the transaction this thread holds");
	}
	while (s->wheld)
		pthread_cond_wait(&s->wcv, &s->wmu);
	s->wheld = true;
	s->wowner = self;
	pthread_mutex_unlock(&s->wmu);
	return BC_OK;
}

static void writer_release(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->wmu);
	s->wheld = false;
	pthread_cond_signal(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
}

static int reader_acquire(struct sqlite_store *s, struct sconn **out, struct bc_error *err)
{
	pthread_mutex_lock(&s->rmu);
	while (!s->rfree && s->rcount >= READERS_MAX)
		pthread_cond_wait(&s->rcv, &s->rmu);
	struct sconn *c = s->rfree;
	if (c) {
		s->rfree = c->next_free;
		pthread_mutex_unlock(&s->rmu);
		*out = c;
		return BC_OK;
	}
	s->rcount++;
	pthread_mutex_unlock(&s->rmu);
	int rc = sconn_open(s->path, false, &c, err);
	pthread_mutex_lock(&s->rmu);
	if (rc) {
		s->rcount--;
		pthread_cond_signal(&s->rcv);
	} else {
		c->next_all = s->rall;
		s->rall = c;
	}
	pthread_mutex_unlock(&s->rmu);
	if (rc)
		return rc;
	*out = c;
	return BC_OK;
}

static void reader_release(struct sqlite_store *s, struct sconn *c)
{
	pthread_mutex_lock(&s->rmu);
	c->next_free = s->rfree;
	s->rfree = c;
	pthread_cond_signal(&s->rcv);
	pthread_mutex_unlock(&s->rmu);
}

/* ---- rows ---- */

static int sq_columns(const struct bc_row *row)
{
	return sqlite3_column_count(row->h);
}

static bool sq_in_range(const struct bc_row *row, int i)
{
	return i >= 0 && i < sqlite3_column_count(row->h);
}

static const char *sq_text(const struct bc_row *row, int i)
{
	return sq_in_range(row, i) ? (const char *)sqlite3_column_text(row->h, i) : NULL;
}

static int64_t sq_int(const struct bc_row *row, int i)
{
	return sq_in_range(row, i) ? sqlite3_column_int64(row->h, i) : 0;
}

static bool sq_is_null(const struct bc_row *row, int i)
{
	return !sq_in_range(row, i) || sqlite3_column_type(row->h, i) == SQLITE_NULL;
}

static const struct store_row_ops sq_row_ops = {sq_text, sq_int, sq_is_null, sq_columns};

/* ---- statements ---- */

static int bind(struct sconn *c, sqlite3_stmt *stmt, const struct bc_param *params, size_t n, struct bc_error *err)
{
	if ((size_t)sqlite3_bind_parameter_count(stmt) != n)
		return bc_error_set(err, BC_ERR_INVALID, "sql has %d parameters, %zu given",
				    sqlite3_bind_parameter_count(stmt), n);
	for (size_t i = 0; i < n; i++) {
		int rc, idx = (int)i + 1;
		switch (params[i].type) {
		case BC_PARAM_TEXT:
			rc = params[i].s ? sqlite3_bind_text(stmt, idx, params[i].s, -1, SQLITE_STATIC)
					 : sqlite3_bind_null(stmt, idx);
			break;
		case BC_PARAM_INT:
			rc = sqlite3_bind_int64(stmt, idx, params[i].i);
			break;
		default:
			rc = sqlite3_bind_null(stmt, idx);
			break;
		}
		if (rc != SQLITE_OK)
			return sq_fail(err, c->db, rc, "bind");
	}
	return BC_OK;
}

static int run(struct sconn *c, sqlite3_stmt *stmt, const struct bc_param *params, size_t n, bc_row_fn fn,
	       void *ctx, int64_t *changes, struct bc_error *err)
{
	int rc = bind(c, stmt, params, n, err);
	if (rc)
		return rc;
	struct bc_row row = {.ops = &sq_row_ops, .h = stmt};
	bool stopped = false;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn && fn(ctx, &row)) {
			stopped = true;
			break;
		}
	}
	if (!stopped && rc != SQLITE_DONE)
		return sq_fail(err, c->db, rc, "step");
	if (changes)
		*changes = sqlite3_stmt_readonly(stmt) ? 0 : sqlite3_changes64(c->db);
	return BC_OK;
}

static int sq_exec(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		   size_t nparams, bc_row_fn fn, void *ctx, int64_t *changes, struct bc_error *err)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct sconn *c;
	sqlite3_stmt *stmt;
	struct stmt_entry *e;
	bool reader = false;
	int rc;

	if (txn) {
		c = ((struct sqlite_txn *)txn)->conn;
	} else {
		if ((rc = reader_acquire(s, &c, err)))
			return rc;
		if ((rc = stmt_get(c, sql, &stmt, &e, err))) {
			reader_release(s, c);
			return rc;
		}
		if (sqlite3_stmt_readonly(stmt)) {
			reader = true;
			goto have_stmt;
		}
		stmt_put(stmt, e);
		reader_release(s, c);
		if ((rc = writer_acquire(s, err)))
			return rc;
		c = s->writer;
	}
	if ((rc = stmt_get(c, sql, &stmt, &e, err)))
		goto out;
have_stmt:
	rc = run(c, stmt, params, nparams, fn, ctx, changes, err);
	stmt_put(stmt, e);
out:
	if (reader)
		reader_release(s, c);
	else if (!txn)
		writer_release(s);
	return rc;
}

/* ---- transactions ---- */

static int sq_begin(struct bc_store *st, struct bc_txn **out, struct bc_error *err)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct sqlite_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	int rc = writer_acquire(s, err);
	if (rc) {
		free(t);
		return rc;
	}
	if ((rc = run_simple(s->writer, "BEGIN IMMEDIATE", err))) {
		writer_release(s);
		free(t);
		return rc;
	}
	t->conn = s->writer;
	*out = &t->base;
	return BC_OK;
}

static void txn_end(struct bc_txn *txn)
{
	struct sqlite_store *s = (struct sqlite_store *)txn->st;
	struct sqlite_txn *t = (struct sqlite_txn *)txn;
	if (!sqlite3_get_autocommit(t->conn->db)) {
		struct bc_error ignored;
		if (run_simple(t->conn, "ROLLBACK", &ignored))
			(void)0; /* the connection rolls back on its own at its next BEGIN failure */
	}
	writer_release(s);
	free(t);
}

static int sq_commit(struct bc_txn *txn, struct bc_error *err)
{
	struct sqlite_txn *t = (struct sqlite_txn *)txn;
	int rc = run_simple(t->conn, "COMMIT", err);
	txn_end(txn);
	return rc;
}

static void sq_rollback(struct bc_txn *txn)
{
	txn_end(txn);
}

static int sq_script(struct bc_txn *txn, const char *sql, struct bc_error *err)
{
	sqlite3 *db = ((struct sqlite_txn *)txn)->conn->db;
	const char *p = sql;
	while (p && *p) {
		sqlite3_stmt *stmt = NULL;
		int rc = sqlite3_prepare_v2(db, p, -1, &stmt, &p);
		if (rc != SQLITE_OK)
			return sq_fail(err, db, rc, "prepare");
		if (!stmt) /* only space or comments left */
			break;
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			rc = sq_fail(err, db, rc, "step");
			sqlite3_finalize(stmt);
			return rc;
		}
		sqlite3_finalize(stmt);
	}
	return BC_OK;
}

/* ---- open / free ---- */

static void sq_free(struct bc_store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct sconn *c = s->rall;
	while (c) {
		struct sconn *next = c->next_all;
		sconn_free(c);
		c = next;
	}
	sconn_free(s->writer); /* the last close checkpoints the WAL */
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->rmu);
	pthread_cond_destroy(&s->rcv);
	free(s->path);
	free(s);
}

int store_sqlite_open(struct bc_store **out, const char *path, struct bc_error *err)
{
	if (!sqlite3_threadsafe())
		return bc_error_set(err, BC_ERR_INTERNAL, "sqlite was built without thread support");
	/* Create the file ourselves so that it (and the -wal/-shm files SQLite gives the same mode)
	 * is 0600 whatever the umask. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return bc_error_set(err, BC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	close(fd);

	struct sqlite_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	s->base.ops = &sqlite_ops;
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	pthread_cond_init(&s->rcv, NULL);
	int rc = sconn_open(path, true, &s->writer, err);
	if (rc) {
		sq_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return BC_OK;
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.free = sq_free,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.exec = sq_exec,
	.script = sq_script,
};
