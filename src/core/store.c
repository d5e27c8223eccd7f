/* The storage interface: URL dispatch, the rules both backends share (a transaction that saw an
 * error is dead, as PostgreSQL makes it), migrations, notification delivery. */
#include "core/store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/metrics.h"
#include "core/store_int.h"

#define NOTIFY_QUEUE_MAX 4096 /* queued notifications before we collapse them into "" */

/* ---- URLs ---- */

static bool prefix_ci(const char *s, const char *p)
{
	return strncasecmp(s, p, strlen(p)) == 0;
}

int bc_store_parse_url(const char *url, int *kind, char **target, struct bc_error *err)
{
	const char *path = url;
	int k = 's';

	if (!url || !*url)
		return bc_error_set(err, BC_ERR_INVALID, "empty store url");
	if (prefix_ci(url, "postgres://") || prefix_ci(url, "postgresql://")) {
		k = 'p';
	} else if (prefix_ci(url, "sqlite://")) {
		path = url + strlen("sqlite://");
	} else if (prefix_ci(url, "sqlite:")) {
		path = url + strlen("sqlite:");
	} else if (strstr(url, "://")) {
		return bc_error_set(err, BC_ERR_INVALID, "unsupported store url scheme: %.64s", url);
	}
	if (k == 's' && (!*path || strcmp(path, ":memory:") == 0))
		return bc_error_set(err, BC_ERR_INVALID, "sqlite store needs a file path");
	char *t = strdup(path);
	if (!t)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	*kind = k;
	*target = t;
	return BC_OK;
}

/* ---- SQL text ---- */

static const char *skip_space_comments(const char *p)
{
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else {
			return p;
		}
	}
}

bool store_sql_starts_with(const char *sql, const char *keyword)
{
	const char *p = skip_space_comments(sql);
	size_t n = strlen(keyword);
	return strncasecmp(p, keyword, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Length of a PostgreSQL dollar-quote tag at p ("$$" or "$tag$"), 0 if p does not start one. */
static size_t dollar_tag(const char *p)
{
	size_t i = 1;
	if (isdigit((unsigned char)p[1]))
		return 0;
	while (ident_char(p[i]))
		i++;
	return p[i] == '$' ? i + 1 : 0;
}

/* End of the quoted or commented region starting at p (pointer after it), or NULL when p does
 * not start one. */
static const char *skip_quoted(const char *sql, const char *p)
{
	if (*p == '\'' || *p == '"') {
		char q = *p;
		bool backslash = q == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				 (p - 1 == sql || !ident_char(p[-2]));
		for (p++; *p; p++) {
			if (backslash && *p == '\\' && p[1])
				p++;
			else if (*p == q && p[1] == q)
				p++;
			else if (*p == q)
				return p + 1;
		}
		return p;
	}
	if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*'))
		return skip_space_comments(p);
	if (*p == '$' && (p == sql || !ident_char(p[-1]))) {
		size_t n = dollar_tag(p);
		if (!n)
			return NULL;
		const char *q = p + n;
		for (;;) {
			const char *e = strchr(q, '$');
			if (!e)
				return q + strlen(q);
			if (strncmp(e, p, n) == 0)
				return e + n;
			q = e + 1;
		}
	}
	return NULL;
}

int bc_store_pg_sql(const char *sql, char **out, size_t *count, struct bc_error *err)
{
	size_t len = strlen(sql), n = 0;
	if (len > SIZE_MAX / 8)
		return bc_error_set(err, BC_ERR_LIMIT, "sql text too long");
	/* Each one-byte `?` becomes at most "$" and 10 digits. */
	char *o = malloc(len * 11 + 1), *w = o;
	if (!o)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	for (const char *p = sql; *p;) {
		const char *e = skip_quoted(sql, p);
		if (e) {
			memcpy(w, p, (size_t)(e - p));
			w += e - p;
			p = e;
		} else if (*p == '?') {
			w += sprintf(w, "$%zu", ++n);
			p++;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	*out = o;
	*count = n;
	return BC_OK;
}

/* ---- dispatch ---- */

static void hub_init(struct store_hub *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_cond_init(&h->idle, NULL);
}

static void note_free(struct store_note *n)
{
	while (n) {
		struct store_note *next = n->next;
		free(n->channel);
		free(n->payload);
		free(n);
		n = next;
	}
}

static void hub_release(struct store_hub *h)
{
	pthread_mutex_lock(&h->mu);
	bool started = h->started;
	h->stopping = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (started)
		pthread_join(h->thread, NULL);
	note_free(h->head);
	for (size_t i = 0; i < h->nsubs; i++)
		free(h->subs[i].channel);
	free(h->subs);
	pthread_cond_destroy(&h->idle);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
}

int bc_store_open(struct bc_store **out, const char *url, struct bc_error *err)
{
	struct bc_store *st = NULL;
	char *target = NULL;
	int kind, rc = bc_store_parse_url(url, &kind, &target, err);
	if (rc)
		return rc;
	rc = kind == 'p' ? store_pg_open(&st, target, err) : store_sqlite_open(&st, target, err);
	free(target);
	if (rc)
		return rc;
	hub_init(&st->hub);
	*out = st;
	return BC_OK;
}

void bc_store_free(struct bc_store *st)
{
	if (!st)
		return;
	if (st->ops->stop)
		st->ops->stop(st);
	hub_release(&st->hub);
	st->ops->free(st);
}

const char *bc_store_backend(const struct bc_store *st)
{
	return st->ops->name;
}

int bc_store_begin(struct bc_store *st, struct bc_txn **out, struct bc_error *err)
{
	struct bc_txn *txn = NULL;
	int rc = st->ops->begin(st, &txn, err);
	if (rc)
		return rc;
	txn->st = st;
	txn->failed = 0;
	txn->pending = NULL;
	*out = txn;
	return BC_OK;
}

static void hub_post_list(struct bc_store *st, struct store_note *list);

/* Monotonic milliseconds, for the store latency metrics. */
static double store_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int bc_txn_commit(struct bc_txn *txn, struct bc_error *err)
{
	if (!txn)
		return bc_error_set(err, BC_ERR_INTERNAL, "commit without a transaction");
	if (txn->failed) {
		int failed = txn->failed;
		bc_txn_rollback(txn);
		return bc_error_set(err, failed, "commit of a transaction that failed: rolled back");
	}
	struct bc_store *st = txn->st;
	struct store_note *pending = txn->pending;
	txn->pending = NULL;
	double t0 = store_ms();
	int rc = st->ops->commit(txn, err);
	bc_metrics_store(st->ops->name, store_ms() - t0, rc == BC_OK);
	if (rc) {
		note_free(pending);
		return rc;
	}
	hub_post_list(st, pending);
	return BC_OK;
}

void bc_txn_rollback(struct bc_txn *txn)
{
	if (!txn)
		return;
	note_free(txn->pending);
	txn->pending = NULL;
	txn->st->ops->rollback(txn);
}

int bc_store_exec(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		  size_t nparams, bc_row_fn fn, void *ctx, int64_t *changes, struct bc_error *err)
{
	if (txn && txn->failed)
		return bc_error_set(err, txn->failed, "transaction failed earlier: roll it back");
	double t0 = store_ms();
	int rc = st->ops->exec(st, txn, sql, params, nparams, fn, ctx, changes, err);
	bc_metrics_store(st->ops->name, store_ms() - t0, rc == BC_OK || rc == BC_ERR_EXISTS);
	/* PostgreSQL aborts a transaction at its first error; SQLite does not. Make both behave the
	 * same, so that code tested on SQLite does not break on PostgreSQL. */
	if (rc && txn)
		txn->failed = rc;
	return rc;
}

/* ---- rows ---- */

const char *bc_row_text(const struct bc_row *row, int i)
{
	return row->ops->text(row, i);
}

int64_t bc_row_int(const struct bc_row *row, int i)
{
	return row->ops->integer(row, i);
}

bool bc_row_is_null(const struct bc_row *row, int i)
{
	return row->ops->is_null(row, i);
}

int bc_row_columns(const struct bc_row *row)
{
	return row->ops->columns(row);
}

struct get_text_ctx {
	char *s;
	bool nomem;
};

static int get_text_row(void *ctx, const struct bc_row *row)
{
	struct get_text_ctx *c = ctx;
	const char *s = bc_row_columns(row) > 0 ? bc_row_text(row, 0) : NULL;
	if (s && !(c->s = strdup(s)))
		c->nomem = true;
	return 1;
}

int bc_store_get_text(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		      size_t nparams, char **out, struct bc_error *err)
{
	struct get_text_ctx c = {0};
	int rc = bc_store_exec(st, txn, sql, params, nparams, get_text_row, &c, NULL, err);
	if (rc) {
		free(c.s);
		return rc;
	}
	if (c.nomem)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	*out = c.s;
	return BC_OK;
}

struct get_int_ctx {
	int64_t v;
	bool found;
};

static int get_int_row(void *ctx, const struct bc_row *row)
{
	struct get_int_ctx *c = ctx;
	c->found = true;
	c->v = bc_row_columns(row) > 0 ? bc_row_int(row, 0) : 0;
	return 1;
}

int bc_store_get_int(struct bc_store *st, struct bc_txn *txn, const char *sql, const struct bc_param *params,
		     size_t nparams, int64_t *out, bool *found, struct bc_error *err)
{
	struct get_int_ctx c = {0};
	int rc = bc_store_exec(st, txn, sql, params, nparams, get_int_row, &c, NULL, err);
	if (rc)
		return rc;
	*out = c.v;
	if (found)
		*found = c.found;
	return BC_OK;
}

/* ---- migrations ---- */

static const char MIGRATIONS_TABLE[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version BIGINT NOT NULL, "
	"applied BIGINT NOT NULL, PRIMARY KEY (component, version))";

/* Opens a transaction holding the migration lock, with the table in place. */
static int migrate_begin(struct bc_store *st, struct bc_txn **out, struct bc_error *err)
{
	struct bc_txn *txn;
	int rc = bc_store_begin(st, &txn, err);
	if (rc)
		return rc;
	if (st->ops->migrate_lock && (rc = st->ops->migrate_lock(txn, err)))
		goto fail;
	if ((rc = bc_store_exec(st, txn, MIGRATIONS_TABLE, NULL, 0, NULL, NULL, NULL, err)))
		goto fail;
	*out = txn;
	return BC_OK;
fail:
	bc_txn_rollback(txn);
	return rc;
}

static int applied_max(struct bc_store *st, struct bc_txn *txn, const char *component, int64_t *max,
		       struct bc_error *err)
{
	struct bc_param p[] = {BC_PTEXT(component)};
	bool found;
	return bc_store_get_int(st, txn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
				p, 1, max, &found, err);
}

static int migrate_step(struct bc_store *st, const char *component, int64_t version, const char *step,
			struct bc_error *err)
{
	struct bc_txn *txn;
	int64_t max = 0;
	int rc = migrate_begin(st, &txn, err);
	if (rc)
		return rc;
	/* Another server may have applied it while we waited for the lock. */
	if ((rc = applied_max(st, txn, component, &max, err)))
		goto fail;
	if (max >= version) {
		bc_txn_rollback(txn);
		return BC_OK;
	}
	if (max != version - 1) {
		rc = bc_error_set(err, BC_ERR_STORE, "migration %s %" PRId64 " out of order: applied up to %" PRId64,
				  component, version, max);
		goto fail;
	}
	if ((rc = st->ops->script(txn, step, err))) {
		bc_error_wrap(err, "migration %s %" PRId64, component, version);
		txn->failed = rc;
		goto fail;
	}
	struct bc_param p[] = {BC_PTEXT(component), BC_PINT(version), BC_PINT((int64_t)time(NULL))};
	rc = bc_store_exec(st, txn, "INSERT INTO schema_migrations (component, version, applied) VALUES (?, ?, ?)",
			   p, 3, NULL, NULL, NULL, err);
	if (rc)
		goto fail;
	return bc_txn_commit(txn, err);
fail:
	bc_txn_rollback(txn);
	return rc;
}

int bc_store_migrate(struct bc_store *st, const char *component, const char *const *steps, size_t n,
		     struct bc_error *err)
{
	struct bc_txn *txn;
	int64_t max = 0;
	if (!component || !*component || (n && !steps))
		return bc_error_set(err, BC_ERR_INVALID, "migration needs a component and steps");
	int rc = migrate_begin(st, &txn, err);
	if (rc)
		return rc;
	rc = applied_max(st, txn, component, &max, err);
	bc_txn_rollback(txn);
	if (rc)
		return rc;
	if (max > (int64_t)n)
		return bc_error_set(err, BC_ERR_STORE,
				    "schema of %s is at version %" PRId64 ", newer than this program's %zu", component,
				    max, n);
	for (size_t i = (size_t)max; i < n; i++)
		if ((rc = migrate_step(st, component, (int64_t)i + 1, steps[i], err)))
			return rc;
	return BC_OK;
}

/* ---- notifications ---- */

static void *hub_main(void *arg)
{
	struct store_hub *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->head && !h->lost && !h->stopping)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->stopping)
			break;
		struct store_note *n = h->head;
		bool all = !n && h->lost;
		if (n) {
			h->head = n->next;
			if (!h->head)
				h->tail = NULL;
			h->queued--;
		} else {
			h->lost = false;
		}
		/* Subscriptions only grow (an unsubscribed entry stays, without its callback), so
		 * indexes stay valid while unlocked; copy each entry. */
		for (size_t i = 0; i < h->nsubs; i++) {
			struct store_sub s = h->subs[i];
			if (!s.fn || (!all && strcmp(s.channel, n->channel) != 0))
				continue;
			h->calling = s.ctx;
			pthread_mutex_unlock(&h->mu);
			s.fn(s.ctx, s.channel, all ? "" : n->payload);
			pthread_mutex_lock(&h->mu);
			h->calling = NULL;
			pthread_cond_broadcast(&h->idle);
		}
		if (n) {
			n->next = NULL;
			note_free(n);
		}
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void hub_post_list(struct bc_store *st, struct store_note *list)
{
	struct store_hub *h = &st->hub;
	if (!list)
		return;
	pthread_mutex_lock(&h->mu);
	while (list) {
		struct store_note *n = list;
		list = n->next;
		n->next = NULL;
		if (h->stopping || h->queued >= NOTIFY_QUEUE_MAX) {
			h->lost = true;
			note_free(n);
			continue;
		}
		if (h->tail)
			h->tail->next = n;
		else
			h->head = n;
		h->tail = n;
		h->queued++;
	}
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static struct store_note *note_new(const char *channel, const char *payload)
{
	struct store_note *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->channel = strdup(channel);
	n->payload = strdup(payload ? payload : "");
	if (!n->channel || !n->payload) {
		note_free(n);
		return NULL;
	}
	return n;
}

void store_hub_post(struct bc_store *st, const char *channel, const char *payload)
{
	struct store_note *n = note_new(channel, payload);
	if (!n) {
		store_hub_post_all(st);
		return;
	}
	hub_post_list(st, n);
}

void store_hub_post_all(struct bc_store *st)
{
	pthread_mutex_lock(&st->hub.mu);
	st->hub.lost = true;
	pthread_cond_signal(&st->hub.cv);
	pthread_mutex_unlock(&st->hub.mu);
}

static int check_channel(const char *channel, const char *payload, struct bc_error *err)
{
	if (!channel || !*channel)
		return bc_error_set(err, BC_ERR_INVALID, "empty notification channel");
	if (strlen(channel) > BC_STORE_CHANNEL_MAX)
		return bc_error_set(err, BC_ERR_LIMIT, "notification channel longer than %d bytes",
				    BC_STORE_CHANNEL_MAX);
	if (payload && strlen(payload) > BC_STORE_PAYLOAD_MAX)
		return bc_error_set(err, BC_ERR_LIMIT, "notification payload longer than %d bytes",
				    BC_STORE_PAYLOAD_MAX);
	return BC_OK;
}

int bc_store_subscribe(struct bc_store *st, const char *channel, bc_store_notify_fn fn, void *ctx,
		       struct bc_error *err)
{
	struct store_hub *h = &st->hub;
	int rc = check_channel(channel, NULL, err);
	if (rc)
		return rc;
	if (!fn)
		return bc_error_set(err, BC_ERR_INVALID, "subscription without a callback");
	/* LISTEN first: whatever commits after we return is then seen. */
	if (st->ops->listen && (rc = st->ops->listen(st, channel, err)))
		return rc;
	char *ch = strdup(channel);
	if (!ch)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&h->mu);
	struct store_sub *subs = realloc(h->subs, (h->nsubs + 1) * sizeof(*subs));
	if (!subs) {
		pthread_mutex_unlock(&h->mu);
		free(ch);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	h->subs = subs;
	if (!h->started) {
		if ((rc = pthread_create(&h->thread, NULL, hub_main, h))) {
			pthread_mutex_unlock(&h->mu);
			free(ch);
			return bc_error_set(err, BC_ERR_INTERNAL, "cannot start notification thread: %s",
					    strerror(rc));
		}
		h->started = true;
	}
	subs[h->nsubs++] = (struct store_sub){.channel = ch, .fn = fn, .ctx = ctx};
	pthread_mutex_unlock(&h->mu);
	return BC_OK;
}

void bc_store_unsubscribe(struct bc_store *st, void *ctx)
{
	struct store_hub *h = &st->hub;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->nsubs; i++)
		if (h->subs[i].ctx == ctx)
			h->subs[i].fn = NULL;
	while (h->calling == ctx && h->started && !pthread_equal(pthread_self(), h->thread))
		pthread_cond_wait(&h->idle, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

int bc_store_notify(struct bc_store *st, struct bc_txn *txn, const char *channel, const char *payload,
		    struct bc_error *err)
{
	int rc = check_channel(channel, payload, err);
	if (rc)
		return rc;
	if (txn && txn->failed)
		return bc_error_set(err, txn->failed, "transaction failed earlier: roll it back");
	if (st->ops->notify) {
		rc = st->ops->notify(st, txn, channel, payload, err);
		if (rc && txn)
			txn->failed = rc;
		return rc;
	}
	struct store_note *n = note_new(channel, payload);
	if (!n)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	if (!txn) {
		hub_post_list(st, n);
		return BC_OK;
	}
	/* Keep the order of sending. */
	struct store_note **tail = &txn->pending;
	while (*tail)
		tail = &(*tail)->next;
	*tail = n;
	return BC_OK;
}

int bc_store_leader(struct bc_store *st, const char *name, bool *is_leader, struct bc_error *err)
{
	*is_leader = false;
	if (!name || !*name || strlen(name) > BC_STORE_CHANNEL_MAX)
		return bc_error_set(err, BC_ERR_INVALID, "bad leader name");
	if (!st->ops->leader) {
		*is_leader = true;
		return BC_OK;
	}
	return st->ops->leader(st, name, is_leader, err);
}
