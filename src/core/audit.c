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

#include "core/buf.h"
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
	char *insert_many_sql; /* owned, NULL = row by row */
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

#define NCOLS 12
/* Records written by one statement in a batch: one statement (one round trip on PostgreSQL)
 * for many rows. */
#define ROWS_PER_INSERT 32

/* The parameters of one record; id is the caller's buffer for its id. */
static void rec_params(const struct bc_audit_rec *r, char id[48], struct bc_param p[NCOLS])
{
	pthread_once(&id_once, id_init);
	snprintf(id, 48, "%s-%" PRIx64, id_prefix, atomic_fetch_add(&id_counter, 1));
	const struct bc_param v[NCOLS] = {
		BC_PTEXT(id),      BC_PINT(r->time_ms), BC_PTEXT(r->scope),      BC_PTEXT(r->operation),
		opt(r->object),    opt(r->oid),         opt(r->appid),           opt(r->xms_mirid),
		opt(r->client_ip), BC_PINT(r->status),  BC_PINT(r->duration_ms), opt(r->request_id),
	};
	memcpy(p, v, sizeof(v));
}

int bc_audit_insert(struct bc_audit *a, struct bc_txn *txn, const struct bc_audit_rec *r, struct bc_error *err)
{
	char id[48];
	struct bc_param p[NCOLS];
	rec_params(r, id, p);
	return bc_store_exec(a->st, txn, a->insert_sql, p, NCOLS, NULL, NULL, NULL, err);
}

/* ROWS_PER_INSERT records of the ring from slot start, in one statement. */
static int insert_rows(struct bc_audit *a, struct bc_txn *txn, size_t start, struct bc_error *err)
{
	char ids[ROWS_PER_INSERT][48];
	struct bc_param p[ROWS_PER_INSERT * NCOLS];
	for (size_t i = 0; i < ROWS_PER_INSERT; i++)
		rec_params(&a->ring[(start + i) % BC_AUDIT_QUEUE], ids[i], &p[i * NCOLS]);
	return bc_store_exec(a->st, txn, a->insert_many_sql, p, ROWS_PER_INSERT * NCOLS, NULL, NULL, NULL, err);
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
		size_t i = 0;
		for (; rc == BC_OK && a->insert_many_sql && n - i >= ROWS_PER_INSERT; i += ROWS_PER_INSERT)
			rc = insert_rows(a, txn, start + i, &err);
		for (; rc == BC_OK && i < n; i++)
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
	/* the same with ROWS_PER_INSERT rows (without it, batches go row by row) */
	struct bc_buf many = {0};
	const char *values = strstr(a->insert_sql, "VALUES ") + 7;
	int mrc = bc_buf_append(&many, a->insert_sql, (size_t)(values - a->insert_sql));
	for (int i = 0; mrc == BC_OK && i < ROWS_PER_INSERT; i++)
		mrc = bc_buf_appendf(&many, "%s%s", i ? ", " : "", values);
	a->insert_many_sql = mrc == BC_OK ? bc_buf_detach(&many, NULL) : NULL;
	bc_buf_release(&many);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_cond_init(&a->space, NULL);
	pthread_cond_init(&a->flushed, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		free(a->ring);
		free(a->insert_many_sql);
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
	free(a->insert_many_sql);
	free(a);
}

