/* The PostgreSQL backend over libpq: a pool of connections, text parameters (BIGINT as decimal
 * text, typed int8), results fetched whole so the connection returns to the pool before row
 * callbacks run; READ COMMITTED transactions; LISTEN/NOTIFY on a dedicated connection read by
 * a thread of its own. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/store_int.h"

#define POOL_DEFAULT 4
#define POOL_MAX 64
#define ACQUIRE_TIMEOUT_S 30   /* wait for a pooled connection before BC_ERR_UNAVAILABLE */
#define CONNECT_TIMEOUT "10"   /* seconds, unless the URL says otherwise */
#define LISTEN_RETRY_MS 1000   /* listener reconnect backoff */
#define OID_INT8 20

struct pconn {
	PGconn *c; /* owned */
	struct pconn *next;
};

struct listener {
	pthread_mutex_t mu;  /* guards c and channels */
	PGconn *c;           /* owned */
	char **channels;     /* owned: LISTENed names, replayed after a reconnect */
	size_t nchannels;
	pthread_t thread;
	bool started;
	int wake[2]; /* a byte on wake[1] stops the thread */
};

struct pg_store {
	struct bc_store base;
	char *url; /* owned, without pool_size */
	int size;  /* pool capacity */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pconn *idle; /* owned */
	int count;          /* connections open or being opened */
	struct listener l;
	/* leader election: advisory locks held on a connection of their own */
	pthread_mutex_t lmu;
	PGconn *lc; /* owned */
	char *held[BC_STORE_LEADER_MAX]; /* owned: names whose lock lc holds */
};

struct pg_txn {
	struct bc_txn base;
	struct pconn *conn; /* owned while the transaction runs */
};

static const struct store_ops pg_ops;

/* ---- errors ---- */

static int pg_fail(struct bc_error *err, PGconn *c, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	int st = BC_ERR_STORE;
	if (!msg || !*msg)
		msg = c ? PQerrorMessage(c) : "no connection";
	if (state && strcmp(state, "23505") == 0)
		st = BC_ERR_EXISTS;
	else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
		st = BC_ERR_CONFLICT;
	else if ((state && strncmp(state, "08", 2) == 0) || (c && PQstatus(c) != CONNECTION_OK))
		st = BC_ERR_UNAVAILABLE;
	/* libpq messages end in a newline; keep one line. */
	size_t n = strcspn(msg, "\n");
	return bc_error_set(err, st, "postgres %s failed: %s%s%.*s", what, state ? state : "", state ? " " : "",
			    (int)n, msg);
}

/* ---- URL ---- */

/* Removes pool_size=N from the query string (libpq rejects unknown parameters). */
static int take_pool_size(char *url, int *size, struct bc_error *err)
{
	*size = POOL_DEFAULT;
	char *q = strchr(url, '?');
	if (!q)
		return BC_OK;
	char *p = q + 1;
	while (*p) {
		size_t len = strcspn(p, "&");
		if (strncmp(p, "pool_size=", 10) == 0) {
			char *end;
			long v = strtol(p + 10, &end, 10);
			if (end != p + len || v < 1 || v > POOL_MAX)
				return bc_error_set(err, BC_ERR_INVALID, "pool_size must be 1..%d", POOL_MAX);
			*size = (int)v;
			memmove(p, p + len + (p[len] == '&'), strlen(p + len + (p[len] == '&')) + 1);
			continue;
		}
		p += len + (p[len] == '&');
	}
	size_t n = strlen(url);
	while (n && (url[n - 1] == '&' || url[n - 1] == '?'))
		url[--n] = '\0';
	return BC_OK;
}

static PGconn *connect_url(const char *url)
{
	/* Our defaults first: keywords the URL sets override them. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {CONNECT_TIMEOUT, "badge", url, NULL};
	return PQconnectdbParams(keys, vals, 1);
}

/* libpq prints NOTICEs ("relation already exists, skipping") on stderr; they are not errors. */
static void ignore_notice(void *arg, const char *message)
{
}

static int connect_checked(const char *url, PGconn **out, struct bc_error *err)
{
	PGconn *c = connect_url(url);
	if (!c)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	PQsetNoticeProcessor(c, ignore_notice, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		size_t n = strcspn(PQerrorMessage(c), "\n");
		int rc = bc_error_set(err, BC_ERR_UNAVAILABLE, "postgres connect failed: %.*s", (int)n, PQerrorMessage(c));
		PQfinish(c);
		return rc;
	}
	*out = c;
	return BC_OK;
}

/* ---- pool ---- */

/* An idle connection the server closed (restart, idle timeout) is readable: EOF or a FATAL
 * message. Seeing that costs no round trip. */
static bool conn_broken(PGconn *c)
{
	if (PQstatus(c) != CONNECTION_OK)
		return true;
	struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
	if (pfd.fd < 0)
		return true;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	return !PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK;
}

static void drop_conn(struct pg_store *s, struct pconn *pc)
{
	PQfinish(pc->c);
	free(pc);
	pthread_mutex_lock(&s->mu);
	s->count--;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int acquire(struct pg_store *s, struct pconn **out, struct bc_error *err)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ACQUIRE_TIMEOUT_S;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->idle && s->count >= s->size) {
			if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
				pthread_mutex_unlock(&s->mu);
				return bc_error_set(err, BC_ERR_UNAVAILABLE, "no free postgres connection after %ds",
						    ACQUIRE_TIMEOUT_S);
			}
		}
		struct pconn *pc = s->idle;
		if (pc) {
			s->idle = pc->next;
			pthread_mutex_unlock(&s->mu);
			if (conn_broken(pc->c)) {
				drop_conn(s, pc); /* and open a fresh one below */
				continue;
			}
			*out = pc;
			return BC_OK;
		}
		s->count++;
		pthread_mutex_unlock(&s->mu);
		pc = calloc(1, sizeof(*pc));
		int rc = pc ? connect_checked(s->url, &pc->c, err) : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		if (rc) {
			free(pc);
			pthread_mutex_lock(&s->mu);
			s->count--;
			pthread_cond_signal(&s->cv);
			pthread_mutex_unlock(&s->mu);
			return rc;
		}
		*out = pc;
		return BC_OK;
	}
}

static void release(struct pg_store *s, struct pconn *pc)
{
	if (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
		drop_conn(s, pc);
		return;
	}
	pthread_mutex_lock(&s->mu);
	pc->next = s->idle;
	s->idle = pc;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- rows ---- */

static bool pg_in_range(const struct bc_row *row, int i)
{
	return i >= 0 && i < PQnfields(row->h);
}

static const char *pg_text(const struct bc_row *row, int i)
{
	if (!pg_in_range(row, i) || PQgetisnull(row->h, row->idx, i))
		return NULL;
	return PQgetvalue(row->h, row->idx, i);
}

static int64_t pg_int(const struct bc_row *row, int i)
{
	const char *s = pg_text(row, i);
	return s ? strtoll(s, NULL, 10) : 0;
}

static bool pg_is_null(const struct bc_row *row, int i)
{
	return !pg_in_range(row, i) || PQgetisnull(row->h, row->idx, i);
}

static int pg_columns(const struct bc_row *row)
{
	return PQnfields(row->h);
}

static const struct store_row_ops pg_row_ops = {pg_text, pg_int, pg_is_null, pg_columns};

/* ---- statements ---- */

static bool result_ok(const PGresult *res)
{
	ExecStatusType t = PQresultStatus(res);
	return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

struct pg_params {
	const char **values;
	Oid *types;
	char (*ints)[24];
};

static int params_build(struct pg_params *pp, const struct bc_param *params, size_t n, struct bc_error *err)
{
	memset(pp, 0, sizeof(*pp));
	if (!n)
		return BC_OK;
	pp->values = calloc(n, sizeof(*pp->values));
	pp->types = calloc(n, sizeof(*pp->types));
	pp->ints = calloc(n, sizeof(*pp->ints));
	if (!pp->values || !pp->types || !pp->ints)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (params[i].type == BC_PARAM_TEXT) {
			pp->values[i] = params[i].s; /* NULL is SQL NULL */
		} else if (params[i].type == BC_PARAM_INT) {
			snprintf(pp->ints[i], sizeof(pp->ints[i]), "%" PRId64, params[i].i);
			pp->values[i] = pp->ints[i];
			pp->types[i] = OID_INT8;
		}
	}
	return BC_OK;
}

static void params_release(struct pg_params *pp)
{
	free(pp->values);
	free(pp->types);
	free(pp->ints);
}

static int pg_exec(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		   size_t nparams, bc_row_fn fn, void *ctx, int64_t *changes, struct bc_error *err)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pconn *pc = txn ? ((struct pg_txn *)txn)->conn : NULL;
	struct pg_params pp;
	PGresult *res = NULL;
	char *text = NULL;
	size_t count;
	int rc = bc_store_pg_sql(sql, &text, &count, err);
	if (rc)
		return rc;
	if (count != nparams) {
		rc = bc_error_set(err, BC_ERR_INVALID, "sql has %zu parameters, %zu given", count, nparams);
		goto out;
	}
	if ((rc = params_build(&pp, params, nparams, err)))
		goto out_params;
	/* A connection lost under an autocommit read is replaced and the read retried once;
	 * a write is not retried: the server may have applied it. */
	for (int attempt = 0;; attempt++) {
		if (!txn && (rc = acquire(s, &pc, err)))
			goto out_params;
		res = PQexecParams(pc->c, text, (int)nparams, pp.types, pp.values, NULL, NULL, 0);
		if (res && result_ok(res))
			break;
		rc = pg_fail(err, pc->c, res, "query");
		PQclear(res);
		res = NULL;
		bool lost = PQstatus(pc->c) != CONNECTION_OK;
		if (!txn) {
			release(s, pc);
			pc = NULL;
		}
		if (txn || !lost || attempt > 0 || !store_sql_starts_with(sql, "SELECT"))
			goto out_params;
	}
	if (!txn) {
		release(s, pc);
		pc = NULL;
	}
	if (changes) { /* rows changed; PostgreSQL also counts the rows a SELECT returned */
		const char *n = PQcmdTuples(res);
		*changes = *n && strncmp(PQcmdStatus(res), "SELECT", 6) != 0 ? strtoll(n, NULL, 10) : 0;
	}
	if (fn) {
		struct bc_row row = {.ops = &pg_row_ops, .h = res};
		int rows = PQntuples(res);
		for (row.idx = 0; row.idx < rows; row.idx++)
			if (fn(ctx, &row))
				break;
	}
	rc = BC_OK;
out_params:
	params_release(&pp);
out:
	PQclear(res);
	free(text);
	return rc;
}

/* ---- transactions ---- */

static int simple(PGconn *c, const char *sql, struct bc_error *err)
{
	PGresult *res = PQexec(c, sql);
	int rc = res && result_ok(res) ? BC_OK : pg_fail(err, c, res, sql);
	PQclear(res);
	return rc;
}

static int pg_begin(struct bc_store *st, struct bc_txn **out, struct bc_error *err)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pg_txn *t = calloc(1, sizeof(*t));
	if (!t)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	int rc;
	for (int attempt = 0;; attempt++) {
		if ((rc = acquire(s, &t->conn, err)))
			goto fail;
		/* No table lock: callers lock rows with SELECT ... FOR UPDATE. */
		if (!(rc = simple(t->conn->c, "BEGIN ISOLATION LEVEL READ COMMITTED", err)))
			break;
		bool lost = PQstatus(t->conn->c) != CONNECTION_OK;
		release(s, t->conn);
		t->conn = NULL;
		if (!lost || attempt > 0)
			goto fail;
	}
	*out = &t->base;
	return BC_OK;
fail:
	free(t);
	return rc;
}

static int pg_commit(struct bc_txn *txn, struct bc_error *err)
{
	struct pg_store *s = (struct pg_store *)txn->st;
	struct pg_txn *t = (struct pg_txn *)txn;
	PGresult *res = PQexec(t->conn->c, "COMMIT");
	int rc = BC_OK;
	if (!res || !result_ok(res))
		rc = pg_fail(err, t->conn->c, res, "commit");
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) /* an aborted transaction answers ROLLBACK */
		rc = bc_error_set(err, BC_ERR_STORE, "postgres commit failed: transaction was rolled back");
	PQclear(res);
	if (PQtransactionStatus(t->conn->c) != PQTRANS_IDLE) {
		PQclear(PQexec(t->conn->c, "ROLLBACK"));
	}
	release(s, t->conn);
	free(t);
	return rc;
}

static void pg_rollback(struct bc_txn *txn)
{
	struct pg_store *s = (struct pg_store *)txn->st;
	struct pg_txn *t = (struct pg_txn *)txn;
	if (PQstatus(t->conn->c) == CONNECTION_OK)
		PQclear(PQexec(t->conn->c, "ROLLBACK"));
	release(s, t->conn);
	free(t);
}

static int pg_script(struct bc_txn *txn, const char *sql, struct bc_error *err)
{
	/* PQexec runs several statements separated by ";" in one call. */
	return simple(((struct pg_txn *)txn)->conn->c, sql, err);
}

static int pg_migrate_lock(struct bc_txn *txn, struct bc_error *err)
{
	char sql[96];
	/* The key spells "badgemig"; the lock is released at commit or rollback. */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%" PRId64 ")", INT64_C(0x62616467656d6967));
	return simple(((struct pg_txn *)txn)->conn->c, sql, err);
}

/* ---- notifications ---- */

static int listen_one(PGconn *c, const char *channel, struct bc_error *err)
{
	char *id = PQescapeIdentifier(c, channel, strlen(channel));
	if (!id)
		return pg_fail(err, c, NULL, "escape channel");
	size_t n = strlen(id) + 8;
	char *sql = malloc(n);
	int rc;
	if (!sql) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	} else {
		snprintf(sql, n, "LISTEN %s", id);
		rc = simple(c, sql, err);
	}
	free(sql);
	PQfreemem(id);
	return rc;
}

/* With l->mu held: a new connection listening on every channel, or an error. */
static int listener_reconnect(struct pg_store *s, struct bc_error *err)
{
	struct listener *l = &s->l;
	PGconn *c;
	int rc = connect_checked(s->url, &c, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < l->nchannels; i++) {
		if ((rc = listen_one(c, l->channels[i], err))) {
			PQfinish(c);
			return rc;
		}
	}
	PQfinish(l->c);
	l->c = c;
	return BC_OK;
}

static void drain(struct pg_store *s)
{
	PGnotify *n;
	while ((n = PQnotifies(s->l.c))) {
		store_hub_post(&s->base, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void *listener_main(void *arg)
{
	struct pg_store *s = arg;
	struct listener *l = &s->l;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		bool ok = l->c && PQstatus(l->c) == CONNECTION_OK;
		struct pollfd pfd[2] = {{.fd = ok ? PQsocket(l->c) : -1, .events = POLLIN},
					{.fd = l->wake[0], .events = POLLIN}};
		pthread_mutex_unlock(&l->mu);
		int r = poll(pfd, 2, ok ? -1 : LISTEN_RETRY_MS);
		if (r < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		pthread_mutex_lock(&l->mu);
		if (ok && pfd[0].revents) {
			if (PQconsumeInput(l->c))
				drain(s);
		}
		if (!l->c || PQstatus(l->c) != CONNECTION_OK) {
			struct bc_error e;
			/* Whatever was sent while we were away is lost: tell subscribers. */
			if (listener_reconnect(s, &e) == BC_OK)
				store_hub_post_all(&s->base);
		}
		pthread_mutex_unlock(&l->mu);
	}
	return NULL;
}

static int pg_listen(struct bc_store *st, const char *channel, struct bc_error *err)
{
	struct pg_store *s = (struct pg_store *)st;
	struct listener *l = &s->l;
	int rc = BC_OK;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->nchannels; i++)
		if (strcmp(l->channels[i], channel) == 0)
			goto out;
	char **chs = realloc(l->channels, (l->nchannels + 1) * sizeof(*chs));
	char *ch = strdup(channel);
	if (chs)
		l->channels = chs;
	if (!chs || !ch) {
		free(ch);
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!l->c || PQstatus(l->c) != CONNECTION_OK) {
		/* The channel list (without this one) is replayed on the fresh connection. */
		if ((rc = listener_reconnect(s, err))) {
			free(ch);
			goto out;
		}
	}
	if ((rc = listen_one(l->c, channel, err))) {
		free(ch);
		goto out;
	}
	l->channels[l->nchannels++] = ch;
	if (!l->started) {
		if (pipe2(l->wake, O_CLOEXEC) != 0) {
			rc = bc_error_set(err, BC_ERR_IO, "pipe: %s", strerror(errno));
			goto out;
		}
		if ((rc = pthread_create(&l->thread, NULL, listener_main, s))) {
			close(l->wake[0]);
			close(l->wake[1]);
			rc = bc_error_set(err, BC_ERR_INTERNAL, "cannot start listener thread: %s", strerror(rc));
			goto out;
		}
		l->started = true;
	}
	/* LISTEN's reply may have carried notifications; the thread only reads the socket. */
	drain(s);
out:
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int pg_notify(struct bc_store *st, struct bc_txn *txn, const char *channel, const char *payload,
		     struct bc_error *err)
{
	struct bc_param p[] = {BC_PTEXT(channel), BC_PTEXT(payload ? payload : "")};
	/* Inside txn, PostgreSQL delivers at commit and drops it at rollback. */
	return pg_exec(st, txn, "SELECT pg_notify(CAST(? AS TEXT), CAST(? AS TEXT))", p, 2, NULL, NULL, NULL, err);
}

/* ---- leader election ---- */

/* FNV-1a 64 of "badge:" name: the advisory lock key. */
static int64_t leader_key(const char *name)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = "badge:"; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return (int64_t)h;
}

static void leader_drop(struct pg_store *s)
{
	PQfinish(s->lc);
	s->lc = NULL;
	for (size_t i = 0; i < BC_STORE_LEADER_MAX; i++) {
		if (s->held[i])
			bc_log_warn("store: lost the database connection: no longer leader for %s", s->held[i]);
		free(s->held[i]);
		s->held[i] = NULL;
	}
}

/* Runs sql with one BIGINT parameter on lc; *t gets whether the single result is 't'. */
static int leader_query(struct pg_store *s, const char *sql, int64_t key, bool *t, struct bc_error *err)
{
	char kb[32];
	snprintf(kb, sizeof(kb), "%" PRId64, key);
	const char *vals[1] = {kb};
	Oid types[1] = {OID_INT8};
	PGresult *res = PQexecParams(s->lc, sql, key ? 1 : 0, types, vals, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		int rc = pg_fail(err, s->lc, res, "leader query");
		PQclear(res);
		return rc;
	}
	*t = PQgetvalue(res, 0, 0)[0] == 't' || PQgetvalue(res, 0, 0)[0] == '1';
	PQclear(res);
	return BC_OK;
}

static int pg_leader(struct bc_store *st, const char *name, bool *is_leader, struct bc_error *err)
{
	struct pg_store *s = (struct pg_store *)st;
	int rc = BC_OK, slot = -1, free_slot = -1;
	bool t = false;
	pthread_mutex_lock(&s->lmu);
	if (s->lc && conn_broken(s->lc))
		leader_drop(s);
	if (!s->lc && (rc = connect_checked(s->url, &s->lc, err)))
		goto out;
	for (int i = 0; i < BC_STORE_LEADER_MAX; i++) {
		if (s->held[i] && !strcmp(s->held[i], name))
			slot = i;
		else if (!s->held[i] && free_slot < 0)
			free_slot = i;
	}
	if (slot >= 0) {
		/* Held: the lock lives as long as the session; one round trip proves the session does. */
		if ((rc = leader_query(s, "SELECT true", 0, &t, err))) {
			leader_drop(s);
			goto out;
		}
		*is_leader = true;
		goto out;
	}
	if (free_slot < 0) {
		rc = bc_error_set(err, BC_ERR_LIMIT, "more than %d leader names", BC_STORE_LEADER_MAX);
		goto out;
	}
	if ((rc = leader_query(s, "SELECT pg_try_advisory_lock($1)", leader_key(name), &t, err))) {
		leader_drop(s);
		goto out;
	}
	if (t) {
		if (!(s->held[free_slot] = strdup(name))) {
			bool ignored;
			leader_query(s, "SELECT pg_advisory_unlock($1)", leader_key(name), &ignored, err);
			rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
			goto out;
		}
		bc_log_info("store: this replica is now the leader for %s", name);
	}
	*is_leader = t;
out:
	pthread_mutex_unlock(&s->lmu);
	return rc;
}

/* ---- open / free ---- */

static void pg_stop(struct bc_store *st)
{
	struct listener *l = &((struct pg_store *)st)->l;
	if (!l->started)
		return;
	ssize_t w;
	do
		w = write(l->wake[1], "x", 1);
	while (w < 0 && errno == EINTR);
	pthread_join(l->thread, NULL);
	close(l->wake[0]);
	close(l->wake[1]);
	l->started = false;
}

static void pg_free(struct bc_store *st)
{
	struct pg_store *s = (struct pg_store *)st;
	struct pconn *pc = s->idle;
	while (pc) {
		struct pconn *next = pc->next;
		PQfinish(pc->c);
		free(pc);
		pc = next;
	}
	PQfinish(s->l.c);
	PQfinish(s->lc);
	for (size_t i = 0; i < BC_STORE_LEADER_MAX; i++)
		free(s->held[i]);
	pthread_mutex_destroy(&s->lmu);
	for (size_t i = 0; i < s->l.nchannels; i++)
		free(s->l.channels[i]);
	free(s->l.channels);
	pthread_mutex_destroy(&s->l.mu);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->url);
	free(s);
}

int store_pg_open(struct bc_store **out, const char *url, struct bc_error *err)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->url = strdup(url))) {
		free(s);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	s->base.ops = &pg_ops;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->l.mu, NULL);
	pthread_mutex_init(&s->lmu, NULL);
	int rc = take_pool_size(s->url, &s->size, err);
	if (rc)
		goto fail;
	/* Connect once now, so that a wrong URL fails at open rather than at first use. */
	struct pconn *pc;
	if ((rc = acquire(s, &pc, err)))
		goto fail;
	release(s, pc);
	*out = &s->base;
	return BC_OK;
fail:
	pg_free(&s->base);
	return rc;
}

static const struct store_ops pg_ops = {
	.name = "postgres",
	.stop = pg_stop,
	.free = pg_free,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.exec = pg_exec,
	.script = pg_script,
	.migrate_lock = pg_migrate_lock,
	.listen = pg_listen,
	.notify = pg_notify,
	.leader = pg_leader,
};
