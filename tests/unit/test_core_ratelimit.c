/* The token-bucket limiter: burst, refill, Retry-After, refunds, eviction and its memory bound,
 * long keys, and many threads drawing from one bucket (never more than it holds). The clock is
 * injected: no test waits for time to pass. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "core/ratelimit.h"
#include "test.h"

static _Atomic int64_t fake_ms;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&fake_ms);
}
static void clock_at(int64_t ms)
{
	atomic_store(&fake_ms, ms);
	bc_ratelimit_clock_set(fake_clock, NULL);
}

static bool take(struct bc_ratelimit *rl, const char *key, const struct bc_rate *r,
		 struct bc_rate_result *res)
{
	return bc_ratelimit_take(rl, key, strlen(key), r, 1, res);
}

TEST(burst_then_refused)
{
	clock_at(1000);
	struct bc_ratelimit *rl = bc_ratelimit_new(0);
	REQUIRE(rl);
	struct bc_rate r = {.burst = 5, .refill = 5, .period_ms = 10000}; /* Key Vault's shape: N per 10 s */
	struct bc_rate_result res;
	for (int i = 0; i < 5; i++) {
		CHECK(take(rl, "vault|a", &r, &res));
		CHECK_EQ_INT(res.remaining, 4 - i);
		CHECK_EQ_INT(res.retry_after_ms, 0);
	}
	CHECK(!take(rl, "vault|a", &r, &res));
	CHECK_EQ_INT(res.remaining, 0);
	CHECK_EQ_INT(res.retry_after_ms, 2000); /* one token every 2 s */
	CHECK_EQ_INT(bc_ratelimit_retry_s(res.retry_after_ms), 2);
	/* refused takes consume nothing: the wait does not grow */
	CHECK(!take(rl, "vault|a", &r, &res));
	CHECK_EQ_INT(res.retry_after_ms, 2000);
	/* another key has its own bucket */
	CHECK(take(rl, "vault|b", &r, &res));
	CHECK_EQ_INT(res.remaining, 4);
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST(refill_over_time)
{
	clock_at(0);
	struct bc_ratelimit *rl = bc_ratelimit_new(0);
	REQUIRE(rl);
	struct bc_rate r = {.burst = 250, .refill = 25, .period_ms = 1000}; /* ARM reads */
	struct bc_rate_result res;
	for (int i = 0; i < 250; i++)
		CHECK(take(rl, "k", &r, &res));
	CHECK(!take(rl, "k", &r, &res));
	CHECK_EQ_INT(res.retry_after_ms, 40);
	atomic_store(&fake_ms, 39);
	CHECK(!take(rl, "k", &r, &res));
	CHECK_EQ_INT(res.retry_after_ms, 1);
	atomic_store(&fake_ms, 40);
	CHECK(take(rl, "k", &r, &res));
	CHECK_EQ_INT(res.remaining, 0);
	atomic_store(&fake_ms, 1040); /* one second: 25 more, no fractional drift */
	for (int i = 0; i < 25; i++)
		CHECK(take(rl, "k", &r, &res));
	CHECK(!take(rl, "k", &r, &res));
	atomic_store(&fake_ms, 1000000); /* long idle: full, never above the burst */
	CHECK(take(rl, "k", &r, &res));
	CHECK_EQ_INT(res.remaining, 249);
	/* a clock that goes back refills nothing */
	atomic_store(&fake_ms, 500);
	CHECK(take(rl, "k", &r, &res));
	CHECK_EQ_INT(res.remaining, 248);
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST(cost_and_refund)
{
	clock_at(0);
	struct bc_ratelimit *rl = bc_ratelimit_new(0);
	REQUIRE(rl);
	struct bc_rate r = {.burst = 10, .refill = 10, .period_ms = 10000};
	struct bc_rate_result res;
	CHECK(bc_ratelimit_take(rl, "w", 1, &r, 8, &res));
	CHECK_EQ_INT(res.remaining, 2);
	CHECK(!bc_ratelimit_take(rl, "w", 1, &r, 3, &res));
	CHECK_EQ_INT(res.retry_after_ms, 1000);
	bc_ratelimit_refund(rl, "w", 1, &r, 8);
	CHECK(bc_ratelimit_take(rl, "w", 1, &r, 10, &res));
	CHECK_EQ_INT(res.remaining, 0);
	bc_ratelimit_refund(rl, "w", 1, &r, 100); /* capped at the burst */
	CHECK(take(rl, "w", &r, &res));
	CHECK_EQ_INT(res.remaining, 9);
	/* a cost above the burst is the burst (it could never pass otherwise) */
	CHECK(bc_ratelimit_take(rl, "x", 1, &r, 1000, &res));
	CHECK_EQ_INT(res.remaining, 0);
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST(unlimited_and_null)
{
	struct bc_rate off = {0};
	struct bc_rate_result res;
	struct bc_ratelimit *rl = bc_ratelimit_new(16);
	REQUIRE(rl);
	for (int i = 0; i < 1000; i++)
		CHECK(take(rl, "k", &off, &res));
	CHECK_EQ_INT(res.remaining, -1);
	CHECK_EQ_INT(bc_ratelimit_count(rl), 0);
	struct bc_rate r = {.burst = 1, .refill = 1, .period_ms = 1000};
	CHECK(take(NULL, "k", &r, &res));
	struct bc_rate bad = {.burst = 1, .refill = 0, .period_ms = 1000};
	CHECK(take(rl, "k", &bad, &res));
	bc_ratelimit_free(rl);
	bc_ratelimit_free(NULL);
}

TEST(bounded_memory_and_eviction)
{
	clock_at(0);
	struct bc_ratelimit *rl = bc_ratelimit_new(256);
	REQUIRE(rl);
	size_t cap = bc_ratelimit_capacity(rl);
	CHECK(cap >= 256 && cap < 256 + BC_RATELIMIT_STRIPES);
	struct bc_rate r = {.burst = 3, .refill = 3, .period_ms = 10000};
	struct bc_rate_result res;
	char key[64];
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "caller-%d", i);
		CHECK(take(rl, key, &r, &res));
	}
	CHECK(bc_ratelimit_count(rl) <= cap);
	CHECK(bc_ratelimit_count(rl) > cap / 2);
	/* the most recent key is kept (the oldest are the ones evicted) */
	CHECK(take(rl, "caller-99999", &r, &res));
	CHECK_EQ_INT(res.remaining, 1);
	/* nothing is lost by dropping refilled buckets: after 10 s every bucket is idle */
	atomic_store(&fake_ms, 10000);
	CHECK(bc_ratelimit_sweep(rl) > 0);
	CHECK_EQ_INT(bc_ratelimit_count(rl), 0);
	/* an exhausted bucket is not idle until it refills */
	for (int i = 0; i < 3; i++)
		CHECK(take(rl, "busy", &r, &res));
	CHECK_EQ_INT(bc_ratelimit_sweep(rl), 0);
	atomic_store(&fake_ms, 19999);
	CHECK_EQ_INT(bc_ratelimit_sweep(rl), 0);
	atomic_store(&fake_ms, 20000);
	CHECK_EQ_INT(bc_ratelimit_sweep(rl), 1);
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST(bound_holds_for_throttled_keys)
{
	clock_at(0);
	/* with max 64 keys each stripe holds one bucket */
	struct bc_ratelimit *rl = bc_ratelimit_new(64);
	REQUIRE(rl);
	struct bc_rate r = {.burst = 2, .refill = 2, .period_ms = 10000};
	struct bc_rate_result res;
	CHECK(take(rl, "hot", &r, &res));
	CHECK(take(rl, "hot", &r, &res));
	CHECK(!take(rl, "hot", &r, &res));
	char key[32];
	int evicted = 0;
	for (int i = 0; i < 1000 && !evicted; i++) {
		snprintf(key, sizeof(key), "other-%d", i);
		CHECK(take(rl, key, &r, &res));
		evicted = take(rl, "hot", &r, &res); /* a fresh bucket after an eviction */
	}
	CHECK(evicted); /* the bound holds even for a throttled key: memory wins over memory of debt */
	CHECK(bc_ratelimit_count(rl) <= 64);
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST(long_keys)
{
	clock_at(0);
	struct bc_ratelimit *rl = bc_ratelimit_new(0);
	REQUIRE(rl);
	struct bc_rate r = {.burst = 1, .refill = 1, .period_ms = 10000};
	struct bc_rate_result res;
	char a[600], b[600];
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = 0;
	memcpy(b, a, sizeof(a));
	b[590] = 'y'; /* same long prefix, different tail: different buckets */
	CHECK(take(rl, a, &r, &res));
	CHECK(!take(rl, a, &r, &res));
	CHECK(take(rl, b, &r, &res));
	CHECK(!take(rl, b, &r, &res));
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

struct hammer {
	struct bc_ratelimit *rl;
	const struct bc_rate *r;
	int id;
	_Atomic long *granted;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	char key[32];
	for (int i = 0; i < 20000; i++) {
		if (bc_ratelimit_take(h->rl, "shared", 6, h->r, 1, NULL))
			atomic_fetch_add(h->granted, 1);
		snprintf(key, sizeof(key), "t%d-%d", h->id, i % 500);
		(void)bc_ratelimit_take(h->rl, key, strlen(key), h->r, 1, NULL);
	}
	return NULL;
}

TEST(many_threads)
{
	clock_at(0); /* time stands still: the shared bucket grants exactly its burst */
	struct bc_ratelimit *rl = bc_ratelimit_new(0); /* room for every key: "shared" is never evicted */
	REQUIRE(rl);
	struct bc_rate r = {.burst = 5000, .refill = 5000, .period_ms = 10000};
	_Atomic long granted = 0;
	pthread_t th[8];
	struct hammer hs[8];
	for (int i = 0; i < 8; i++) {
		hs[i] = (struct hammer){.rl = rl, .r = &r, .id = i, .granted = &granted};
		REQUIRE(pthread_create(&th[i], NULL, hammer_run, &hs[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(atomic_load(&granted), 5000);
	CHECK(bc_ratelimit_count(rl) <= bc_ratelimit_capacity(rl));
	bc_ratelimit_free(rl);
	bc_ratelimit_clock_set(NULL, NULL);
}

TEST_MAIN(T(burst_then_refused), T(refill_over_time), T(cost_and_refund), T(unlimited_and_null),
	  T(bounded_memory_and_eviction), T(bound_holds_for_throttled_keys), T(long_keys), T(many_threads))
