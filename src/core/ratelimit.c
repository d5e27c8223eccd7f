/* Token buckets in a striped hash with a per-stripe LRU bound.
 *
 * A bucket's level is kept in token-milliseconds (tokens * period_ms): refilling is then an
 * integer multiply of the elapsed milliseconds by the refill count, with no rounding drift. */
#include "core/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rl_entry {
	struct rl_entry *next;          /* hash chain */
	struct rl_entry *older, *newer; /* the stripe's LRU list */
	uint64_t hash;
	int64_t level;   /* token-milliseconds */
	int64_t stamp;   /* ms of the last refill */
	int64_t full_at; /* ms from which the bucket is full again (idle) */
	size_t klen;
	char key[];
};

struct rl_stripe {
	_Alignas(64) pthread_mutex_t mu;
	struct rl_entry **slots; /* owned, nslots chains */
	size_t nslots;           /* power of two */
	struct rl_entry lru;     /* sentinel: lru.newer is the oldest, lru.older the newest */
	size_t n, max;
};

struct bc_ratelimit {
	struct rl_stripe stripes[BC_RATELIMIT_STRIPES];
	uint64_t seed[2]; /* random: keys chosen by a caller cannot aim at one chain */
	size_t max_keys;
};

/* ---- clock ------------------------------------------------------------------------------ */

static _Atomic(bc_clock_fn) clock_fn;
static _Atomic(void *) clock_ctx;

int64_t bc_ratelimit_now_ms(void)
{
	bc_clock_fn fn = atomic_load(&clock_fn);
	if (fn)
		return fn(atomic_load(&clock_ctx));
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bc_ratelimit_clock_set(bc_clock_fn fn, void *ctx)
{
	atomic_store(&clock_fn, NULL);
	atomic_store(&clock_ctx, ctx);
	atomic_store(&clock_fn, fn);
}

int64_t bc_ratelimit_retry_s(int64_t retry_after_ms)
{
	int64_t s = (retry_after_ms + 999) / 1000;
	return s < 1 ? 1 : s;
}

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Eight bytes a step (murmur-style mixing), seeded. */
static uint64_t hash_key(uint64_t seed, const char *p, size_t n)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h ^= rotl(w * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
		h = rotl(h, 27) * 5 + 0x52dce729;
		p += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, n);
	h ^= rotl(w * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
	return fmix64(h);
}

/* The stored form of a key: itself, or (too long) its prefix, '#' and 16 hex digits of a second
 * hash of the whole. */
static const char *stored_key(const struct bc_ratelimit *rl, const char *key, size_t *klen, char *buf)
{
	if (*klen <= BC_RATELIMIT_KEY_MAX)
		return key;
	size_t pre = BC_RATELIMIT_KEY_MAX - 17;
	uint64_t h2 = hash_key(rl->seed[1], key, *klen);
	memcpy(buf, key, pre);
	buf[pre] = '#';
	for (int i = 0; i < 16; i++)
		buf[pre + 1 + i] = "0123456789abcdef"[(h2 >> (60 - 4 * i)) & 15];
	*klen = BC_RATELIMIT_KEY_MAX;
	return buf;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct bc_ratelimit *bc_ratelimit_new(size_t max_keys)
{
	if (!max_keys)
		max_keys = BC_RATELIMIT_DEFAULT_KEYS;
	size_t per = (max_keys + BC_RATELIMIT_STRIPES - 1) / BC_RATELIMIT_STRIPES;
	size_t nslots = 4;
	while (nslots < per && nslots < ((size_t)1 << 30))
		nslots <<= 1;
	size_t sz = (sizeof(struct bc_ratelimit) + 63) / 64 * 64;
	struct bc_ratelimit *rl = aligned_alloc(64, sz);
	if (!rl)
		return NULL;
	memset(rl, 0, sz);
	if (bc_random(rl->seed, sizeof(rl->seed)) != BC_OK) {
		free(rl);
		return NULL;
	}
	rl->max_keys = per * BC_RATELIMIT_STRIPES;
	size_t i;
	for (i = 0; i < BC_RATELIMIT_STRIPES; i++) {
		struct rl_stripe *s = &rl->stripes[i];
		s->slots = calloc(nslots, sizeof(*s->slots));
		if (!s->slots || pthread_mutex_init(&s->mu, NULL) != 0) {
			free(s->slots);
			goto fail;
		}
		s->nslots = nslots;
		s->max = per;
		s->lru.older = s->lru.newer = &s->lru;
	}
	return rl;
fail:
	while (i-- > 0) {
		pthread_mutex_destroy(&rl->stripes[i].mu);
		free(rl->stripes[i].slots);
	}
	free(rl);
	return NULL;
}

void bc_ratelimit_free(struct bc_ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < BC_RATELIMIT_STRIPES; i++) {
		struct rl_stripe *s = &rl->stripes[i];
		for (size_t j = 0; j < s->nslots; j++) {
			struct rl_entry *e = s->slots[j];
			while (e) {
				struct rl_entry *next = e->next;
				free(e);
				e = next;
			}
		}
		free(s->slots);
		pthread_mutex_destroy(&s->mu);
	}
	free(rl);
}

size_t bc_ratelimit_capacity(const struct bc_ratelimit *rl)
{
	return rl ? rl->max_keys : 0;
}

/* ---- the stripe (its lock held) --------------------------------------------------------- */

static void lru_unlink(struct rl_entry *e)
{
	e->older->newer = e->newer;
	e->newer->older = e->older;
}

static void lru_push(struct rl_stripe *s, struct rl_entry *e)
{
	e->older = s->lru.older;
	e->newer = &s->lru;
	s->lru.older->newer = e;
	s->lru.older = e;
}

static struct rl_entry *find(struct rl_stripe *s, uint64_t h, const char *key, size_t klen)
{
	for (struct rl_entry *e = s->slots[h & (s->nslots - 1)]; e; e = e->next)
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

static void unlink_entry(struct rl_stripe *s, struct rl_entry *e)
{
	struct rl_entry **pp = &s->slots[e->hash & (s->nslots - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	lru_unlink(e);
	s->n--;
}

/* A new full bucket, the stripe's oldest one evicted first when the stripe is at its bound. */
static struct rl_entry *insert(struct rl_stripe *s, uint64_t h, const char *key, size_t klen, int64_t cap,
			       int64_t now)
{
	if (s->n >= s->max && s->lru.newer != &s->lru) {
		struct rl_entry *old = s->lru.newer;
		unlink_entry(s, old);
		free(old);
	}
	struct rl_entry *e = malloc(sizeof(*e) + klen);
	if (!e)
		return NULL;
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->hash = h;
	e->level = cap;
	e->stamp = now;
	e->full_at = now;
	struct rl_entry **slot = &s->slots[h & (s->nslots - 1)];
	e->next = *slot;
	*slot = e;
	lru_push(s, e);
	s->n++;
	return e;
}

static void refill(struct rl_entry *e, int64_t cap, int64_t per_ms, int64_t now)
{
	if (now <= e->stamp) {
		if (now < e->stamp) /* an injected clock went back: start counting from it */
			e->stamp = now;
		return;
	}
	int64_t el = now - e->stamp, need = cap - e->level;
	if (need <= 0 || el >= need / per_ms + 1)
		e->level = cap;
	else
		e->level += el * per_ms;
	e->stamp = now;
}

static bool rate_ok(const struct bc_rate *r)
{
	return r && r->burst > 0 && r->burst <= BC_RATELIMIT_BURST_MAX && r->refill > 0 &&
	       r->refill <= BC_RATELIMIT_BURST_MAX && r->period_ms > 0 &&
	       r->period_ms <= BC_RATELIMIT_PERIOD_MAX;
}

/* Runs op on key's bucket with the stripe locked; cost in whole tokens (> 0, <= burst). */
static bool bucket_op(struct bc_ratelimit *rl, const char *key, size_t klen, const struct bc_rate *r,
		      int64_t cost, bool refund, struct bc_rate_result *out)
{
	char buf[BC_RATELIMIT_KEY_MAX];
	key = stored_key(rl, key, &klen, buf);
	uint64_t h = hash_key(rl->seed[0], key, klen);
	struct rl_stripe *s = &rl->stripes[h >> 58]; /* 64 stripes: the top six bits */
	int64_t cap = r->burst * r->period_ms, need = cost * r->period_ms;
	bool ok = true;
	int64_t retry = 0;

	pthread_mutex_lock(&s->mu);
	int64_t now = bc_ratelimit_now_ms();
	struct rl_entry *e = find(s, h, key, klen);
	if (!e) {
		if (refund || !(e = insert(s, h, key, klen, cap, now))) {
			pthread_mutex_unlock(&s->mu);
			if (out)
				*out = (struct bc_rate_result){.remaining = refund ? r->burst : -1};
			return true; /* nothing to give back to; or out of memory: fail open */
		}
	} else {
		refill(e, cap, r->refill, now);
		lru_unlink(e);
		lru_push(s, e);
	}
	if (refund) {
		e->level = e->level + need > cap ? cap : e->level + need;
	} else if (e->level >= need) {
		e->level -= need;
	} else {
		ok = false;
		retry = (need - e->level + r->refill - 1) / r->refill;
	}
	e->full_at = now + (cap - e->level + r->refill - 1) / r->refill;
	int64_t remaining = e->level / r->period_ms;
	pthread_mutex_unlock(&s->mu);
	if (out)
		*out = (struct bc_rate_result){.remaining = remaining, .retry_after_ms = retry};
	return ok;
}

static int64_t clamp_cost(const struct bc_rate *r, int64_t cost)
{
	if (cost < 1)
		return 1;
	return cost > r->burst ? r->burst : cost;
}

bool bc_ratelimit_take(struct bc_ratelimit *rl, const char *key, size_t klen, const struct bc_rate *rate,
		       int64_t cost, struct bc_rate_result *out)
{
	if (!rl || !rate_ok(rate)) {
		if (out)
			*out = (struct bc_rate_result){.remaining = -1};
		return true;
	}
	return bucket_op(rl, key, klen, rate, clamp_cost(rate, cost), false, out);
}

void bc_ratelimit_refund(struct bc_ratelimit *rl, const char *key, size_t klen, const struct bc_rate *rate,
			 int64_t cost)
{
	if (rl && rate_ok(rate))
		(void)bucket_op(rl, key, klen, rate, clamp_cost(rate, cost), true, NULL);
}

size_t bc_ratelimit_sweep(struct bc_ratelimit *rl)
{
	size_t dropped = 0;
	if (!rl)
		return 0;
	for (size_t i = 0; i < BC_RATELIMIT_STRIPES; i++) {
		struct rl_stripe *s = &rl->stripes[i];
		pthread_mutex_lock(&s->mu);
		int64_t now = bc_ratelimit_now_ms();
		for (struct rl_entry *e = s->lru.newer, *next; e != &s->lru; e = next) {
			next = e->newer;
			if (e->full_at <= now) {
				unlink_entry(s, e);
				free(e);
				dropped++;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	return dropped;
}

size_t bc_ratelimit_count(struct bc_ratelimit *rl)
{
	size_t n = 0;
	if (!rl)
		return 0;
	for (size_t i = 0; i < BC_RATELIMIT_STRIPES; i++) {
		pthread_mutex_lock(&rl->stripes[i].mu);
		n += rl->stripes[i].n;
		pthread_mutex_unlock(&rl->stripes[i].mu);
	}
	return n;
}
