/* The audit trail. Durability, by kind of operation:
 * - A successful mutation (set, create, delete, purge, restore ...) writes its record in the
 *   same transaction as the change (vault_audit_insert from vault_in_txn): the record exists
 *   exactly when the change does, and both survive kill -9 once the client has its answer.
 * - Everything else (reads, crypto operations, refusals) goes through a bounded queue to one
 *   writer thread that commits batches every VAULT_AUDIT_FLUSH_MS (group commit): the request
 *   path never waits for an fsync, and a crash loses at most the records of the last flush
 *   interval. A full queue blocks the request threads rather than dropping records.
 * Records never hold values, tokens or key material: the object is "secrets/NAME/VERSION". */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include "core/log.h"
#include "core/store.h"
#include "core/util.h"
#include "vault/vault_int.h"

#define BATCH_MAX        1024
#define SWEEP_INTERVAL_S 60

struct vault_audit {
	struct bc_store *st; /* borrowed */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* writer: work or stop */
	pthread_cond_t space;         /* producers: room in the queue */
	pthread_cond_t flushed;       /* waiters of vault_audit_flush */
	struct vault_audit_rec *ring; /* owned, VAULT_LIMIT_AUDIT_QUEUE entries */
	size_t head, count;
	uint64_t enqueued, committed; /* sequence numbers for flush */
	bool stop;
	int64_t last_sweep;
};

static const char insert_sql[] = "INSERT INTO vault_audit (id, time_ms, vault, operation, object, oid, "
				 "appid, xms_mirid, client_ip, status,"
				 " duration_ms, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

static struct bc_param opt(const char *s)
{
	return s && *s ? BC_PTEXT(s) : BC_PNULL;
}

/* Record ids: a random per-process prefix and a counter, unique across replicas without a
 * random draw per record. */
static char id_prefix[17];
static _Atomic uint64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_init(void)
{
	uint8_t b[8] = {0};
	if (bc_random(b, sizeof(b)) != BC_OK)
		memcpy(b, &(uint64_t){(uint64_t)bc_now_ms() ^ (uint64_t)getpid()}, sizeof(b));
	bc_hex(b, sizeof(b), id_prefix);
}

int vault_audit_insert(struct bc_store *st, struct bc_txn *txn, const struct vault_audit_rec *r,
		       struct bc_error *err)
{
	char id[48];
	pthread_once(&id_once, id_init);
	snprintf(id, sizeof(id), "%s-%" PRIx64, id_prefix, atomic_fetch_add(&id_counter, 1));
	struct bc_param p[] = {
		BC_PTEXT(id),      BC_PINT(r->time_ms), BC_PTEXT(r->vault),      BC_PTEXT(r->operation),
		opt(r->object),    opt(r->oid),         opt(r->appid),           opt(r->xms_mirid),
		opt(r->client_ip), BC_PINT(r->status),  BC_PINT(r->duration_ms), opt(r->request_id),
	};
	return bc_store_exec(st, txn, insert_sql, p, sizeof(p) / sizeof(p[0]), NULL, NULL, NULL, err);
}

/* Commits n records from the ring (copied out, so producers keep going meanwhile). */
static void write_batch(struct vault_audit *a, struct vault_audit_rec *batch, size_t n)
{
	struct bc_error err = {0};
	for (int attempt = 0; attempt < 5; attempt++) {
		struct bc_txn *txn = NULL;
		int rc = bc_store_begin(a->st, &txn, &err);
		for (size_t i = 0; rc == BC_OK && i < n; i++)
			rc = vault_audit_insert(a->st, txn, &batch[i], &err);
		if (rc == BC_OK) {
			rc = bc_txn_commit(txn, &err);
			txn = NULL;
		}
		bc_txn_rollback(txn);
		if (rc == BC_OK)
			return;
		bc_log_error("vault: audit write failed (attempt %d, %zu records): %s", attempt + 1, n,
			     err.msg);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	bc_log_error("vault: %zu audit records could not be written", n);
}

static void *writer(void *arg)
{
	struct vault_audit *a = arg;
	struct vault_audit_rec *batch = calloc(BATCH_MAX, sizeof(*batch));
	if (!batch) {
		bc_log_error("vault: audit writer out of memory");
		return NULL;
	}
	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (a->count == 0 && !a->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		}
		if (a->count > 0 && a->count < BATCH_MAX && !a->stop) {
			/* Let a batch gather for a flush interval: one fsync for many records. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += VAULT_AUDIT_FLUSH_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		}
		size_t n = a->count < BATCH_MAX ? a->count : BATCH_MAX;
		for (size_t i = 0; i < n; i++)
			batch[i] = a->ring[(a->head + i) % VAULT_LIMIT_AUDIT_QUEUE];
		a->head = (a->head + n) % VAULT_LIMIT_AUDIT_QUEUE;
		a->count -= n;
		uint64_t upto = a->enqueued - a->count;
		bool stop = a->stop && a->count == 0 && n == 0;
		pthread_cond_broadcast(&a->space);
		pthread_mutex_unlock(&a->mu);
		if (n > 0)
			write_batch(a, batch, n);
		/* Deleted objects past their scheduled purge date go away here, off the request path. */
		int64_t now = bc_now();
		if (now - a->last_sweep >= SWEEP_INTERVAL_S) {
			struct bc_error err = {0};
			bool leader = false; /* one replica sweeps at a time (bc_store_leader) */
			a->last_sweep = now;
			if (bc_store_leader(a->st, "vault_purge", &leader, &err) != BC_OK)
				bc_log_warn("vault: purge sweep: %s", err.msg);
			else if (leader && vault_obj_sweep(a->st, now, &err) != BC_OK)
				bc_log_warn("vault: purge sweep failed: %s", err.msg);
		}
		pthread_mutex_lock(&a->mu);
		a->committed = upto;
		pthread_cond_broadcast(&a->flushed);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&a->mu);
	free(batch);
	return NULL;
}

int vault_audit_new(struct vault_audit **out, struct bc_store *st, struct bc_error *err)
{
	struct vault_audit *a = calloc(1, sizeof(*a));
	if (!a)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	a->ring = calloc(VAULT_LIMIT_AUDIT_QUEUE, sizeof(*a->ring));
	if (!a->ring) {
		free(a);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	a->st = st;
	a->last_sweep = bc_now();
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_cond_init(&a->space, NULL);
	pthread_cond_init(&a->flushed, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		free(a->ring);
		free(a);
		return bc_error_set(err, BC_ERR_INTERNAL, "cannot start the audit writer");
	}
	*out = a;
	return BC_OK;
}

void vault_audit_enqueue(struct vault_audit *a, const struct vault_audit_rec *r)
{
	pthread_mutex_lock(&a->mu);
	while (a->count == VAULT_LIMIT_AUDIT_QUEUE && !a->stop)
		pthread_cond_wait(&a->space, &a->mu);
	if (!a->stop) {
		a->ring[(a->head + a->count) % VAULT_LIMIT_AUDIT_QUEUE] = *r;
		a->count++;
		a->enqueued++;
		/* The first record starts a flush interval; a full batch ends it early. */
		if (a->count == 1 || a->count >= BATCH_MAX)
			pthread_cond_signal(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
}

void vault_audit_flush(struct vault_audit *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t target = a->enqueued;
	pthread_cond_signal(&a->cv);
	while (a->committed < target)
		pthread_cond_wait(&a->flushed, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void vault_audit_free(struct vault_audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cv);
	pthread_cond_broadcast(&a->space);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->space);
	pthread_cond_destroy(&a->flushed);
	pthread_mutex_destroy(&a->mu);
	free(a->ring);
	free(a);
}

struct read_ctx {
	vault_audit_fn fn;
	void *ctx;
};

static void set_text(json_t *o, const char *key, const struct bc_row *row, int i)
{
	const char *s = bc_row_text(row, i);
	json_object_set_new(o, key, s ? json_string(s) : json_null());
}

static int read_row(void *ctx, const struct bc_row *row)
{
	struct read_ctx *r = ctx;
	json_t *o = json_object();
	char when[96];
	int64_t ms = bc_row_int(row, 0);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "timeMs", json_integer(ms));
	set_text(o, "vault", row, 1);
	set_text(o, "operation", row, 2);
	set_text(o, "object", row, 3);
	set_text(o, "oid", row, 4);
	set_text(o, "appid", row, 5);
	set_text(o, "xms_mirid", row, 6);
	set_text(o, "clientAddress", row, 7);
	json_object_set_new(o, "status", json_integer(bc_row_int(row, 8)));
	json_object_set_new(o, "durationMs", json_integer(bc_row_int(row, 9)));
	set_text(o, "requestId", row, 10);
	int stop = r->fn(r->ctx, o);
	json_decref(o);
	return stop;
}

int vault_audit_read(struct bc_store *st, const char *vault, int64_t since_ms, int limit, vault_audit_fn fn,
		     void *ctx, struct bc_error *err)
{
	char lv[BC_LIMIT_NAME + 1];
	size_t i = 0;
	for (; vault && vault[i] && i + 1 < sizeof(lv); i++)
		lv[i] = (char)((vault[i] >= 'A' && vault[i] <= 'Z') ? vault[i] + 32 : vault[i]);
	lv[i] = '\0';
	struct read_ctx r = {.fn = fn, .ctx = ctx};
	struct bc_param p[] = {BC_PTEXT(lv), BC_PINT(since_ms), BC_PINT(limit > 0 ? limit : 1000)};
	return bc_store_exec(
		st, NULL,
		"SELECT time_ms, vault, operation, object, oid, appid, xms_mirid, client_ip, status, "
		"duration_ms,"
		" request_id FROM vault_audit WHERE vault = ? AND time_ms >= ? ORDER BY time_ms, id LIMIT ?",
		p, 3, read_row, &r, NULL, err);
}
