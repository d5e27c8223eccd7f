/* Internals shared by store.c and its two backends (store_sqlite.c, store_pg.c). Nothing outside
 * src/core/store*.c includes this, except the storage conformance test. */
#ifndef BC_STORE_INT_H
#define BC_STORE_INT_H

#include <pthread.h>
#include "core/store.h"

/* A row as the backends hand it to callbacks: h is the backend's handle (sqlite3_stmt * or
 * PGresult *), idx the row number for PostgreSQL. */
struct store_row_ops {
	const char *(*text)(const struct bc_row *row, int i);
	int64_t (*integer)(const struct bc_row *row, int i);
	bool (*is_null)(const struct bc_row *row, int i);
	int (*columns)(const struct bc_row *row);
};
struct bc_row {
	const struct store_row_ops *ops;
	void *h; /* borrowed */
	int idx;
};

struct store_ops {
	const char *name;
	/* Stops background work (listener threads) before the hub is released; may be NULL. */
	void (*stop)(struct bc_store *st);
	void (*free)(struct bc_store *st);
	int (*begin)(struct bc_store *st, struct bc_txn **out, struct bc_error *err);
	int (*commit)(struct bc_txn *txn, struct bc_error *err); /* frees the txn either way */
	void (*rollback)(struct bc_txn *txn);                     /* frees the txn */
	int (*exec)(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		    size_t nparams, bc_row_fn fn, void *ctx, int64_t *changes, struct bc_error *err);
	/* Runs several parameterless statements separated by ";" inside txn (migrations). */
	int (*script)(struct bc_txn *txn, const char *sql, struct bc_error *err);
	/* Serialises migrations across processes inside txn; NULL when begin already does. */
	int (*migrate_lock)(struct bc_txn *txn, struct bc_error *err);
	/* PostgreSQL: LISTEN and publish through the database. NULL: in-process delivery. */
	int (*listen)(struct bc_store *st, const char *channel, struct bc_error *err);
	int (*notify)(struct bc_store *st, struct bc_txn *txn, const char *channel, const char *payload,
		      struct bc_error *err);
	/* PostgreSQL: a session advisory lock on a connection of its own. NULL: always the leader. */
	int (*leader)(struct bc_store *st, const char *name, bool *is_leader, struct bc_error *err);
};

/* Delivers notifications to subscribers on one background thread. */
struct store_note {
	struct store_note *next;
	char *channel; /* owned */
	char *payload; /* owned */
};
struct store_sub {
	char *channel; /* owned */
	bc_store_notify_fn fn;
	void *ctx;
};
struct store_hub {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_sub *subs; /* owned array */
	size_t nsubs;
	struct store_note *head, *tail; /* owned queue */
	size_t queued;
	bool lost;     /* the queue overflowed: tell every subscriber "" */
	bool started;  /* the thread runs */
	bool stopping;
	pthread_t thread;
	pthread_cond_t idle;   /* a callback returned (bc_store_unsubscribe waits for its own) */
	void *calling;         /* the ctx of the callback running now, NULL when none */
};

/* Backends embed these as their first member. */
struct bc_store {
	const struct store_ops *ops;
	struct store_hub hub;
};
struct bc_txn {
	struct bc_store *st;   /* borrowed */
	int failed;            /* status of the statement that failed, 0 when none */
	struct store_note *pending; /* owned: in-process notifications sent at commit */
};

/* Backend constructors: st->ops set, hub not yet initialised. */
int store_sqlite_open(struct bc_store **out, const char *path, struct bc_error *err) BC_MUST_CHECK;
int store_pg_open(struct bc_store **out, const char *url, struct bc_error *err) BC_MUST_CHECK;

/* Queues a notification for this store's subscribers (any thread). */
void store_hub_post(struct bc_store *st, const char *channel, const char *payload);
/* Tells every subscriber "" (anything may have changed), e.g. after a listener reconnect. */
void store_hub_post_all(struct bc_store *st);

/* URL parsing: *kind 's' (sqlite, *target = path, malloc'd) or 'p' (postgres, *target = URL). */
int bc_store_parse_url(const char *url, int *kind, char **target, struct bc_error *err) BC_MUST_CHECK;
/* Rewrites `?` placeholders to $1..$n outside quotes, identifiers and comments. *out malloc'd. */
int bc_store_pg_sql(const char *sql, char **out, size_t *count, struct bc_error *err) BC_MUST_CHECK;
/* True when sql (after leading space and comments) starts with keyword, case-insensitively. */
bool store_sql_starts_with(const char *sql, const char *keyword);

#endif
