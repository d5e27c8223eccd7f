/* The storage interface: one SQL-shaped API, two backends (SQLite: "sqlite:PATH", default;
 * PostgreSQL through libpq: "postgres://..." / "postgresql://..."). Components write portable
 * SQL: `?` placeholders (rewritten to $n for PostgreSQL), types TEXT and BIGINT only (binary
 * data is stored base64), no backend-specific functions. Booleans are BIGINT 0/1.
 *
 * Durability: SQLite runs in WAL mode with synchronous=FULL; a committed transaction survives
 * kill -9. Every write that a client is told succeeded must be committed before the reply. */
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
#define BC_PTEXT(x) ((struct bc_param){.type = (x) ? BC_PARAM_TEXT : BC_PARAM_NULL, .s = (x)})
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

/* Transactions. A write transaction takes the write lock at begin (SQLite BEGIN IMMEDIATE,
 * PostgreSQL SERIALIZABLE... READ COMMITTED with row locks), so read-then-write logic inside
 * it is race-free. A transaction is used by one thread. */
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
 * bc_store_notify publishes on channel after the current transaction commits; subscribers'
 * callbacks run on a background thread. */
typedef void (*bc_store_notify_fn)(void *ctx, const char *channel, const char *payload);
int bc_store_subscribe(struct bc_store *st, const char *channel, bc_store_notify_fn fn, void *ctx,
		       struct bc_error *err) BC_MUST_CHECK;
int bc_store_notify(struct bc_store *st, struct bc_txn *txn, const char *channel, const char *payload,
		    struct bc_error *err) BC_MUST_CHECK;

#endif
