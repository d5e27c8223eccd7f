/* The token cache against a fake upstream: one upstream request however many callers ask at
 * once, refresh after half the lifetime (injected clock), cached tokens served through an
 * upstream outage, and forgetting an identity. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "agent/tokencache.h"
#include "core/util.h"
#include "test.h"

#define NTHREADS 16

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	int entered;     /* callers that reached tc_get */
	bool gate;       /* block fetches until `entered` reaches NTHREADS (or a deadline) */
	bool fail;
	int64_t lifetime;
};

static struct fake up = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false, false, 3600};
static int64_t fake_now = 1700000000;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static int fetch(void *ctx, const char *oid, const char *resource, struct imds_token *out, struct bc_error *err)
{
	(void)ctx;
	pthread_mutex_lock(&up.mu);
	up.calls++;
	int n = up.calls;
	if (up.gate) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5; /* a deadline, not a sleep: normally all callers arrive within ms */
		while (up.entered < NTHREADS)
			if (pthread_cond_timedwait(&up.cv, &up.mu, &ts) != 0)
				break;
	}
	bool fail = up.fail;
	pthread_mutex_unlock(&up.mu);
	if (fail)
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "upstream down");
	char tok[128];
	snprintf(tok, sizeof(tok), "tok-%s-%s-%d", oid, resource, n);
	out->access_token = strdup(tok);
	out->expires_on = fake_clock(NULL) + up.lifetime;
	out->not_before = fake_clock(NULL);
	return BC_OK;
}

static void reset(void)
{
	pthread_mutex_lock(&up.mu);
	up.calls = 0;
	up.entered = 0;
	up.gate = false;
	up.fail = false;
	up.lifetime = 3600;
	pthread_mutex_unlock(&up.mu);
}

struct caller {
	struct token_cache *c;
	int rc;
	char tok[128];
};

static void *call(void *arg)
{
	struct caller *cl = arg;
	struct imds_token t = {0};
	pthread_mutex_lock(&up.mu);
	up.entered++;
	pthread_cond_broadcast(&up.cv);
	pthread_mutex_unlock(&up.mu);
	cl->rc = tc_get(cl->c, "oid-a", "https://vault.badge.internal", &t, NULL);
	if (cl->rc == BC_OK)
		snprintf(cl->tok, sizeof(cl->tok), "%s", t.access_token);
	imds_token_release(&t);
	return NULL;
}

TEST(single_flight)
{
	struct token_cache *c;
	reset();
	bc_clock_set(fake_clock, NULL);
	REQUIRE(tc_new(&c, fetch, NULL, 0) == BC_OK);
	up.gate = true;
	pthread_t th[NTHREADS];
	struct caller cl[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		cl[i] = (struct caller){.c = c};
		pthread_create(&th[i], NULL, call, &cl[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(up.calls, 1);
	for (int i = 0; i < NTHREADS; i++) {
		CHECK_EQ_INT(cl[i].rc, BC_OK);
		CHECK_STR(cl[i].tok, cl[0].tok);
	}
	tc_free(c);
	bc_clock_set(NULL, NULL);
}

TEST(refresh_after_half_life)
{
	struct token_cache *c;
	struct imds_token t = {0};
	reset();
	bc_clock_set(fake_clock, NULL);
	REQUIRE(tc_new(&c, fetch, NULL, 0) == BC_OK);
	int64_t t0 = fake_now;
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	fake_now = t0 + 1700;
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(up.calls, 1);
	fake_now = t0 + 1801; /* past half of 3600 */
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	CHECK_EQ_INT(up.calls, 2);
	CHECK_EQ_INT(t.expires_on, fake_now + 3600);
	imds_token_release(&t);
	/* another resource and another identity are entries of their own */
	CHECK_EQ_INT(tc_get(c, "o", "r2", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(tc_get(c, "p", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(up.calls, 4);
	CHECK_EQ_INT(tc_count(c), 3);
	/* resource is compared exactly: a trailing slash is another resource */
	CHECK_EQ_INT(tc_get(c, "o", "r/", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(up.calls, 5);
	tc_free(c);
	bc_clock_set(NULL, NULL);
}

TEST(outage_served_from_cache)
{
	struct token_cache *c;
	struct imds_token t = {0};
	struct bc_error err = {0};
	reset();
	bc_clock_set(fake_clock, NULL);
	REQUIRE(tc_new(&c, fetch, NULL, 0) == BC_OK);
	int64_t t0 = fake_now;
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	char first[128];
	snprintf(first, sizeof(first), "%s", t.access_token);
	imds_token_release(&t);
	up.fail = true;
	fake_now = t0 + 3000; /* refresh due, upstream down: the cached token still serves */
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, &err), BC_OK);
	CHECK_STR(t.access_token, first);
	imds_token_release(&t);
	CHECK_EQ_INT(up.calls, 2);
	fake_now = t0 + 3590; /* nearly expired: not served any more */
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, &err), BC_ERR_UNAVAILABLE);
	/* no token ever and upstream down: the error comes through */
	CHECK_EQ_INT(tc_get(c, "x", "r", &t, &err), BC_ERR_UNAVAILABLE);
	up.fail = false;
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, &err), BC_OK);
	CHECK(strcmp(t.access_token, first) != 0);
	imds_token_release(&t);
	tc_free(c);
	bc_clock_set(NULL, NULL);
}

TEST(forget_identity)
{
	struct token_cache *c;
	struct imds_token t = {0};
	reset();
	bc_clock_set(fake_clock, NULL);
	REQUIRE(tc_new(&c, fetch, NULL, 0) == BC_OK);
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(tc_get(c, "p", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	tc_forget(c, "o");
	CHECK_EQ_INT(tc_count(c), 1);
	CHECK_EQ_INT(tc_get(c, "o", "r", &t, NULL), BC_OK);
	imds_token_release(&t);
	CHECK_EQ_INT(up.calls, 3);
	tc_free(c);
	bc_clock_set(NULL, NULL);
}

TEST(bounded_entries)
{
	struct token_cache *c;
	struct imds_token t = {0};
	reset();
	bc_clock_set(fake_clock, NULL);
	REQUIRE(tc_new(&c, fetch, NULL, 8) == BC_OK);
	for (int i = 0; i < 50; i++) {
		char r[16];
		snprintf(r, sizeof(r), "r%d", i);
		CHECK_EQ_INT(tc_get(c, "o", r, &t, NULL), BC_OK);
		imds_token_release(&t);
	}
	CHECK_EQ_INT(tc_count(c), 8);
	tc_free(c);
	bc_clock_set(NULL, NULL);
}

TEST_MAIN(T(single_flight), T(refresh_after_half_life), T(outage_served_from_cache), T(forget_identity),
	  T(bounded_entries))
