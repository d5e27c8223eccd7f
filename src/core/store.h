/* The storage interface: one SQL-shaped API, two backends (SQLite: "sqlite:PATH", default;
 * PostgreSQL through libpq: "postgres://..." / "postgresql://..."). Components write portable
 * SQL: `?` placeholders (rewritten to $n for PostgreSQL), types TEXT and BIGINT only (binary
 * data is stored base64), no backend-specific functions. Booleans are BIGINT 0/1.
 *
 * Durability: SQLite runs in WAL mode with synchronous=FULL; a committed transaction survives
 * kill -9. Every write that a client is told succeeded must be committed before the reply.
 *
 * URLs: "sqlite:PATH", "sqlite://PATH" or a plain PATH (file created 0600); "postgres://..." or
 * "postgresql://..." (any libpq URI; the extra parameter pool_size=N, 1..64, default 4, sets
 * the number of pooled connections and is not passed to libpq).
 *
 * Portable SQL rules (both backends are tested with the same suite):
 * - TEXT and BIGINT columns; INSERT ... ON CONFLICT (cols) DO NOTHING / DO UPDATE; LIMIT/OFFSET;
 *   RETURNING is allowed.
 * - A parameter whose type PostgreSQL cannot infer from its position (`? IS NULL`, a bare
 *   `SELECT ?`) needs a cast: CAST(? AS TEXT), CAST(? AS BIGINT) (valid on both). BC_PINT
 *   parameters are sent as BIGINT.
 * - Row locks: inside a transaction, SELECT ... FOR UPDATE locks the rows on PostgreSQL; the
 *   SQLite backend drops a trailing FOR UPDATE (its write transaction already excludes every
 *   other writer). Read-then-write logic must use FOR UPDATE (or a single conditional UPDATE)
 *   to be race-free on PostgreSQL.
 * - After any failed statement inside a transaction, the transaction is dead on both backends
 *   (as PostgreSQL makes it): further statements and the commit fail with the first error's
 *   status; roll it back. Expected duplicates are handled with ON CONFLICT, not by catching
 *   BC_ERR_EXISTS mid-transaction.
 * - While a thread holds a transaction, it must not call bc_store_exec with txn NULL for
 *   writes (SQLite: the single writer is busy; it fails with BC_ERR_INTERNAL rather than
 *   deadlock). Reads with txn NULL are fine but see only committed data.
 *
 * Connections: SQLite keeps one writer and up to 32 reader connections (readers run in
 * parallel), each caching its prepared statements by SQL text, so pass the same literal text
 * for a hot query and keep values in parameters. PostgreSQL keeps up to pool_size connections;
 * an idle connection the server dropped is replaced before use, and an autocommit SELECT that
 * loses its connection is retried once; a write or a transaction that loses it fails with
 * BC_ERR_UNAVAILABLE (it may or may not have been applied). */
#ifndef BC_STORE_H
#define BC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

struct bc_store;
struct bc_txn;
struct bc_row;

enum bc_param_type { BC_PARAM_NULL = 0, BC_PARAM_TEXT, BC_PARAM_INT };
struct bc_param {
	enum bc_param_type type;
	const char *s;
	int64_t i;
};
/* A function, not a macro over `x ? ... : ...`, so that arrays may be passed without warnings. */
static inline struct bc_param bc_ptext(const char *s)
{
	return (struct bc_param){.type = s ? BC_PARAM_TEXT : BC_PARAM_NULL, .s = s};
}
#define BC_PTEXT(x) bc_ptext(x)
#define BC_PINT(x) ((struct bc_param){.type = BC_PARAM_INT, .i = (x)})
#define BC_PNULL ((struct bc_param){.type = BC_PARAM_NULL})

/* Opens the store named by url and runs nothing else. */
int bc_store_open(struct bc_store **out, const char *url, struct bc_error *err) BC_MUST_CHECK;
void bc_store_free(struct bc_store *st);
const char *bc_store_backend(const struct bc_store *st); /* "sqlite" or "postgres" */

/* Versioned migrations, per component: each step runs once, in order, in a transaction, and is
 * recorded in schema_migrations(component, version). steps[i] is version i+1; a step may hold
 * several statements separated by ";". */
int bc_store_migrate(struct bc_store *st, const char *component, const char *const *steps, size_t n,
		     struct bc_error *err) BC_MUST_CHECK;

/* Transactions. SQLite: BEGIN IMMEDIATE, one writer at a time across threads and processes,
 * so read-then-write logic inside it is race-free. PostgreSQL: BEGIN ISOLATION LEVEL READ
 * COMMITTED and no table lock; concurrent transactions run in parallel, and callers that read
 * then write take row locks with SELECT ... FOR UPDATE (or write with one conditional UPDATE /
 * INSERT ... ON CONFLICT). A busy database (SQLite lock wait beyond its busy timeout) or a
 * PostgreSQL serialisation failure/deadlock (40001, 40P01) returns BC_ERR_CONFLICT: roll back
 * and retry the whole transaction. A transaction is used by one thread. */
int bc_store_begin(struct bc_store *st, struct bc_txn **out, struct bc_error *err) BC_MUST_CHECK;
int bc_txn_commit(struct bc_txn *txn, struct bc_error *err) BC_MUST_CHECK; /* frees txn */
void bc_txn_rollback(struct bc_txn *txn);                                 /* frees txn; NULL-safe */

/* Row access inside a callback (valid only during it). Column i from 0. */
const char *bc_row_text(const struct bc_row *row, int i); /* NULL for NULL */
int64_t bc_row_int(const struct bc_row *row, int i);     /* 0 for NULL */
bool bc_row_is_null(const struct bc_row *row, int i);
int bc_row_columns(const struct bc_row *row);
/* Return non-zero from the callback to stop iterating (bc_store_exec then returns BC_OK). */
typedef int (*bc_row_fn)(void *ctx, const struct bc_row *row);

/* Executes one statement, inside txn or (txn NULL) on its own in autocommit. Calls fn per row.
 * *changes (may be NULL) gets the number of rows changed. A unique-constraint violation
 * returns BC_ERR_EXISTS; other failures BC_ERR_STORE; a busy/serialisation failure
 * BC_ERR_CONFLICT (retry the transaction). */
int bc_store_exec(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		  size_t nparams, bc_row_fn fn, void *ctx, int64_t *changes, struct bc_error *err) BC_MUST_CHECK;

/* Convenience: first row's first column as text (malloc'd, *out NULL if no row) or int. */
int bc_store_get_text(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		      size_t nparams, char **out, struct bc_error *err) BC_MUST_CHECK;
int bc_store_get_int(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		     size_t nparams, int64_t *out, bool *found, struct bc_error *err) BC_MUST_CHECK;

/* Change notification across replicas (PostgreSQL LISTEN/NOTIFY; in-process for SQLite):
 * bc_store_notify publishes on channel after the current transaction commits (nothing on
 * rollback; at once when txn is NULL); subscribers' callbacks run on one background thread per
 * store, in order, and are never called after bc_store_free returns. Subscriptions last until
 * bc_store_free or bc_store_unsubscribe. Every subscriber of a store receives the notifications sent through that store
 * as well (so a replica's own writes reach its cache the same way as others').
 * An empty payload "" means "anything on this channel may have changed": it is sent when
 * notifications may have been lost (the PostgreSQL listener reconnected, the queue overflowed),
 * so a cache drops everything it holds for the channel. Payloads are at most
 * BC_STORE_PAYLOAD_MAX bytes, channel names BC_STORE_CHANNEL_MAX. */
/* Callbacks must not call bc_store_free on their own store. */
#define BC_STORE_CHANNEL_MAX 63   /* PostgreSQL identifier length */
#define BC_STORE_PAYLOAD_MAX 7999 /* PostgreSQL NOTIFY payload limit */
typedef void (*bc_store_notify_fn)(void *ctx, const char *channel, const char *payload);
int bc_store_subscribe(struct bc_store *st, const char *channel, bc_store_notify_fn fn, void *ctx,
		       struct bc_error *err) BC_MUST_CHECK;
/* Ends every subscription made with ctx: once it returns, none of their callbacks runs or
 * will run (it waits for one running now, unless called from a callback). */
void bc_store_unsubscribe(struct bc_store *st, void *ctx);
int bc_store_notify(struct bc_store *st, struct bc_txn *txn, const char *channel, const char *payload,
		    struct bc_error *err) BC_MUST_CHECK;

/* Leader election for periodic work that must run on one replica at a time (the purge of
 * expired soft-deleted objects, scheduled key rotation). *is_leader tells whether this store
 * holds the leadership called name now. PostgreSQL: a session-level pg_advisory_lock (key: a
 * 64-bit hash of "badge:" name) taken with pg_try_advisory_lock on a connection of its own
 * and held while that connection lives; each call checks the connection with a round trip, so
 * a leader that lost the database stops being one, and when a leader process dies PostgreSQL
 * drops its session and the next caller elsewhere takes over. SQLite: always the leader (one
 * server per database). Call it right before each run of the work, not once at start. At most
 * BC_STORE_LEADER_MAX names per store. */
#define BC_STORE_LEADER_MAX 8
int bc_store_leader(struct bc_store *st, const char *name, bool *is_leader, struct bc_error *err) BC_MUST_CHECK;

#endif
