/* The audit writer (see audit.h). */
#include "core/audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

int64_t bc_audit_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

#define BATCH_MAX        1024

struct bc_audit {
	struct bc_store *st; /* borrowed */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;            /* writer: work or stop */
	pthread_cond_t space;         /* producers: room in the queue */
	pthread_cond_t flushed;       /* waiters of bc_audit_flush */
	struct bc_audit_rec *ring; /* owned, BC_AUDIT_QUEUE entries */
	size_t head, count;
	uint64_t enqueued, committed; /* sequence numbers for flush */
	bool stop;
	char insert_sql[256];
	void (*tick)(void *ctx);
	void *tick_ctx;
};

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

int bc_audit_insert(struct bc_audit *a, struct bc_txn *txn, const struct bc_audit_rec *r, struct bc_error *err)
{
	char id[48];
	pthread_once(&id_once, id_init);
	snprintf(id, sizeof(id), "%s-%" PRIx64, id_prefix, atomic_fetch_add(&id_counter, 1));
	struct bc_param p[] = {
		BC_PTEXT(id),      BC_PINT(r->time_ms), BC_PTEXT(r->scope),      BC_PTEXT(r->operation),
		opt(r->object),    opt(r->oid),         opt(r->appid),           opt(r->xms_mirid),
		opt(r->client_ip), BC_PINT(r->status),  BC_PINT(r->duration_ms), opt(r->request_id),
	};
	return bc_store_exec(a->st, txn, a->insert_sql, p, sizeof(p) / sizeof(p[0]), NULL, NULL, NULL, err);
}

/* Commits the n records of the ring from slot start. They stay in the ring, counted as queued,
 * until this returns: producers fill only the slots after them, so this reads them without the
 * lock (nothing is copied while producers wait). */
static void write_batch(struct bc_audit *a, size_t start, size_t n)
{
	struct bc_error err = {0};
	for (int attempt = 0; attempt < 5; attempt++) {
		struct bc_txn *txn = NULL;
		int rc = bc_store_begin(a->st, &txn, &err);
		for (size_t i = 0; rc == BC_OK && i < n; i++)
			rc = bc_audit_insert(a, txn, &a->ring[(start + i) % BC_AUDIT_QUEUE], &err);
		if (rc == BC_OK) {
			rc = bc_txn_commit(txn, &err);
			txn = NULL;
		}
		bc_txn_rollback(txn);
		if (rc == BC_OK)
			return;
		bc_log_error("audit: write failed (attempt %d, %zu records): %s", attempt + 1, n,
			     err.msg);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	bc_log_error("audit: %zu records could not be written", n);
}

static void *writer(void *arg)
{
	struct bc_audit *a = arg;
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
			ts.tv_nsec += BC_AUDIT_FLUSH_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		}
		size_t n = a->count < BATCH_MAX ? a->count : BATCH_MAX, start = a->head;
		bool stop = a->stop && a->count == 0;
		pthread_mutex_unlock(&a->mu);
		if (n > 0)
			write_batch(a, start, n);
		if (a->tick)
			a->tick(a->tick_ctx);
		pthread_mutex_lock(&a->mu);
		a->head = (a->head + n) % BC_AUDIT_QUEUE;
		a->count -= n;
		pthread_cond_broadcast(&a->space);
		a->committed = a->enqueued - a->count;
		pthread_cond_broadcast(&a->flushed);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int bc_audit_new(struct bc_audit **out, struct bc_store *st, const char *table, const char *scope_column,
		 void (*tick)(void *ctx), void *tick_ctx, struct bc_error *err)
{
	struct bc_audit *a = calloc(1, sizeof(*a));
	if (!a)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	a->ring = calloc(BC_AUDIT_QUEUE, sizeof(*a->ring));
	if (!a->ring) {
		free(a);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	a->st = st;
	a->tick = tick;
	a->tick_ctx = tick_ctx;
	snprintf(a->insert_sql, sizeof(a->insert_sql),
		 "INSERT INTO %s (id, time_ms, %s, operation, object, oid, appid, xms_mirid, client_ip, status,"
		 " duration_ms, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		 table, scope_column);
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

void bc_audit_enqueue(struct bc_audit *a, const struct bc_audit_rec *r)
{
	pthread_mutex_lock(&a->mu);
	while (a->count == BC_AUDIT_QUEUE && !a->stop)
		pthread_cond_wait(&a->space, &a->mu);
	if (!a->stop) {
		a->ring[(a->head + a->count) % BC_AUDIT_QUEUE] = *r;
		a->count++;
		a->enqueued++;
		/* The first record starts a flush interval; a full batch ends it early. */
		if (a->count == 1 || a->count >= BATCH_MAX)
			pthread_cond_signal(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
}

void bc_audit_flush(struct bc_audit *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t target = a->enqueued;
	pthread_cond_signal(&a->cv);
	while (a->committed < target)
		pthread_cond_wait(&a->flushed, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void bc_audit_free(struct bc_audit *a)
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

