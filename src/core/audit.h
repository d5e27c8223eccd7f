/* The audit trail's writer, shared by every component that audits (the vault's data-plane
 * operations, the directory's token issuance). Records go either
 * - into the caller's transaction (bc_audit_insert): a mutation's record exists exactly when the
 *   change does, and both survive kill -9 once acknowledged; or
 * - through a bounded queue to one writer thread that commits batches every BC_AUDIT_FLUSH_MS
 *   (group commit): the request path never waits for an fsync, and a crash loses at most the
 *   records of the last flush interval. A full queue blocks producers: records are never dropped.
 * Records never hold values, tokens or key material. */
#ifndef BC_AUDIT_H
#define BC_AUDIT_H

#include <stdint.h>
#include "core/limits.h"
#include "core/store.h"

#define BC_AUDIT_QUEUE 4096   /* records waiting for the writer before producers block */
#define BC_AUDIT_FLUSH_MS 20  /* group-commit interval */

struct bc_audit_rec {
	int64_t time_ms; /* wall clock, milliseconds */
	char scope[BC_LIMIT_NAME + 1];   /* the vault, or the tenant a token was issued in */
	char operation[32];              /* Azure's operation names: SecretGet, KeySign, TokenIssue ... */
	char object[BC_LIMIT_RESOURCE + 48]; /* "secrets/NAME[/VERSION]", a token's audience; never a value */
	char oid[37];
	char appid[37];
	char xms_mirid[BC_LIMIT_RESOURCE_ID + 1];
	char client_ip[64];
	int status;
	int64_t duration_ms;
	char request_id[72];
};

struct bc_audit;
/* The writer for table (columns: id, time_ms, <scope_column>, operation, object, oid, appid,
 * xms_mirid, client_ip, status, duration_ms, request_id). tick, when set, runs on the writer
 * thread after each batch (periodic upkeep off the request path). Strings are borrowed. */
int bc_audit_new(struct bc_audit **out, struct bc_store *st, const char *table, const char *scope_column,
		 void (*tick)(void *ctx), void *tick_ctx, struct bc_error *err) BC_MUST_CHECK;
/* Flushes what is queued and stops the writer. NULL-safe. */
void bc_audit_free(struct bc_audit *a);
void bc_audit_enqueue(struct bc_audit *a, const struct bc_audit_rec *r);
int bc_audit_insert(struct bc_audit *a, struct bc_txn *txn, const struct bc_audit_rec *r,
		    struct bc_error *err) BC_MUST_CHECK;
/* Waits until everything queued so far is committed. */
void bc_audit_flush(struct bc_audit *a);
/* The wall clock in milliseconds, for time_ms. */
int64_t bc_audit_now_ms(void);

#endif
