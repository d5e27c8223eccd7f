/* Token cache (see tokencache.h). One mutex and one condition variable for the whole cache:
 * lookups are short, and the only slow thing, the upstream request, runs without the lock. */
#include "agent/tokencache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "core/metrics.h"
#include "core/util.h"

#define NBUCKETS 256

struct entry {
	struct entry *next;
	char *object_id;         /* owned */
	char *resource;          /* owned */
	struct imds_token tok;   /* access_token NULL while none */
	int64_t refresh_at;
	int64_t last_used;
	uint64_t gen;            /* completed fetches */
	int last_status;         /* of the last failed fetch */
	char last_msg[BC_ERROR_MSG_MAX];
	unsigned waiters;
	bool fetching;
	bool dead;               /* forgotten while a fetch was running: the fetcher frees it */
};

struct token_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct entry *buckets[NBUCKETS];
	size_t count;
	size_t max;
	tc_fetch_fn fetch;
	void *ctx;
};

static unsigned hash(const char *a, const char *b)
{
	uint32_t h = 2166136261u;
	for (const char *p = a; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (const char *p = b; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % NBUCKETS;
}

int tc_new(struct token_cache **out, tc_fetch_fn fetch, void *ctx, size_t max_entries)
{
	struct token_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return BC_ERR_NOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->fetch = fetch;
	c->ctx = ctx;
	c->max = max_entries ? max_entries : TC_DEFAULT_MAX_ENTRIES;
	*out = c;
	return BC_OK;
}

static void entry_free(struct entry *e)
{
	imds_token_release(&e->tok);
	free(e->object_id);
	free(e->resource);
	free(e);
}

static void unlink_entry(struct token_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[hash(e->object_id, e->resource)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = e->next;
		c->count--;
	}
}

void tc_free(struct token_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct entry *e = c->buckets[i];
		while (e) {
			struct entry *n = e->next;
			entry_free(e);
			e = n;
		}
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct entry *find(struct token_cache *c, const char *oid, const char *res)
{
	for (struct entry *e = c->buckets[hash(oid, res)]; e; e = e->next)
		if (!e->dead && !strcmp(e->object_id, oid) && !strcmp(e->resource, res))
			return e;
	return NULL;
}

/* Makes room by dropping the least recently used idle entry. */
static void evict_one(struct token_cache *c)
{
	struct entry *victim = NULL;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct entry *e = c->buckets[i]; e; e = e->next)
			if (!e->fetching && !e->waiters && (!victim || e->last_used < victim->last_used))
				victim = e;
	if (victim) {
		unlink_entry(c, victim);
		entry_free(victim);
	}
}

static struct entry *create(struct token_cache *c, const char *oid, const char *res)
{
	if (c->count >= c->max)
		evict_one(c);
	if (c->count >= c->max)
		return NULL;
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->object_id = strdup(oid);
	e->resource = strdup(res);
	if (!e->object_id || !e->resource) {
		entry_free(e);
		return NULL;
	}
	unsigned h = hash(oid, res);
	e->next = c->buckets[h];
	c->buckets[h] = e;
	c->count++;
	return e;
}

static bool servable(const struct entry *e, int64_t now)
{
	return e->tok.access_token && now < e->tok.expires_on - TC_SERVE_MARGIN_S;
}

static int64_t refresh_time(const struct imds_token *t, int64_t now)
{
	int64_t at = now + (t->expires_on - now) / 2;
	if (at > t->expires_on - TC_REFRESH_MARGIN_S)
		at = t->expires_on - TC_REFRESH_MARGIN_S;
	return at;
}

/* Runs the upstream fetch for e with the lock dropped; returns with the lock held. */
static int run_fetch(struct token_cache *c, struct entry *e, struct bc_error *err)
{
	struct imds_token fresh = {0};
	struct bc_error ferr = {0};
	e->fetching = true;
	pthread_mutex_unlock(&c->mu);
	int rc = c->fetch(c->ctx, e->object_id, e->resource, &fresh, &ferr);
	pthread_mutex_lock(&c->mu);
	e->fetching = false;
	e->gen++;
	if (rc == BC_OK) {
		imds_token_release(&e->tok);
		e->tok = fresh;
		e->refresh_at = refresh_time(&e->tok, bc_now());
	} else {
		e->last_status = rc;
		snprintf(e->last_msg, sizeof(e->last_msg), "%s", ferr.msg);
		bc_error_set(err, rc, "%s", ferr.msg);
	}
	pthread_cond_broadcast(&c->cv);
	return rc;
}

static int copy_out(struct entry *e, int64_t now, struct imds_token *out, struct bc_error *err)
{
	e->last_used = now;
	if (imds_token_copy(out, &e->tok) != BC_OK)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	return BC_OK;
}

int tc_get(struct token_cache *c, const char *object_id, const char *resource, struct imds_token *out,
	   struct bc_error *err)
{
	int rc;
	bool hit = true; /* answered from the cache without waiting for upstream */
	pthread_mutex_lock(&c->mu);
	for (;;) {
		int64_t now = bc_now();
		struct entry *e = find(c, object_id, resource);
		if (e && e->tok.access_token && now < e->refresh_at) {
			rc = copy_out(e, now, out, err);
			break;
		}
		if (e && e->fetching) {
			if (servable(e, now)) { /* someone is refreshing it: serve the old one meanwhile */
				rc = copy_out(e, now, out, err);
				break;
			}
			uint64_t gen = e->gen;
			hit = false;
			e->waiters++;
			while (e->fetching && e->gen == gen)
				pthread_cond_wait(&c->cv, &c->mu);
			e->waiters--;
			if (e->dead) {
				if (!e->waiters && !e->fetching) {
					unlink_entry(c, e);
					entry_free(e);
				}
				rc = bc_error_set(err, BC_ERR_NOT_FOUND, "identity left this host");
				break;
			}
			if (!e->tok.access_token || !servable(e, bc_now())) {
				if (e->gen != gen) { /* the flight we waited for failed: share its outcome */
					rc = bc_error_set(err, e->last_status ? e->last_status : BC_ERR_UNAVAILABLE,
							  "%s", e->last_msg);
					break;
				}
			}
			continue;
		}
		if (!e && !(e = create(c, object_id, resource))) {
			rc = bc_error_set(err, BC_ERR_NOMEM, "token cache full");
			break;
		}
		hit = false;
		rc = run_fetch(c, e, err);
		if (e->dead) {
			if (!e->waiters) {
				unlink_entry(c, e);
				entry_free(e);
			}
			rc = bc_error_set(err, BC_ERR_NOT_FOUND, "identity left this host");
			break;
		}
		if (rc == BC_OK || servable(e, bc_now())) { /* an outage: keep serving the cached token */
			rc = copy_out(e, bc_now(), out, err);
			if (rc == BC_OK)
				bc_error_clear(err);
		}
		break;
	}
	pthread_mutex_unlock(&c->mu);
	if (rc == BC_OK)
		bc_metrics_count(hit ? "agent_token_cache_hits" : "agent_token_cache_misses", 1);
	return rc;
}

void tc_forget(struct token_cache *c, const char *object_id)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct entry **pp = &c->buckets[i];
		while (*pp) {
			struct entry *e = *pp;
			if (object_id && strcmp(e->object_id, object_id) != 0) {
				pp = &e->next;
				continue;
			}
			if (e->fetching || e->waiters) { /* the fetcher or the last waiter frees it */
				e->dead = true;
				imds_token_release(&e->tok);
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			c->count--;
			entry_free(e);
		}
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

size_t tc_count(struct token_cache *c)
{
	pthread_mutex_lock(&c->mu);
	size_t n = c->count;
	pthread_mutex_unlock(&c->mu);
	return n;
}
