/* Resource Manager throttling (manager/throttle.c) through the route table: token buckets per
 * principal, per subscription (or tenant) and per operation type; the
 * x-ms-ratelimit-remaining-* header on every authenticated answer; 429 with ARM's error body and
 * Retry-After when a bucket is empty, the handler not run; refill per second. The limiter's
 * clock is injected. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "manager/mgr_int.h"
#include "test.h"
#include "stack.h"

#define AV "api-version=2021-04-01"

static _Atomic int64_t now_ms = 5000000;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&now_ms);
}

static void limits(struct mgr_config *mc)
{
	mc->limit_reads_burst = 3;
	mc->limit_reads_refill = 1;
	mc->limit_writes_burst = 2;
	mc->limit_writes_refill = 1;
	mc->limit_deletes_burst = 1;
	mc->limit_deletes_refill = 1;
}

static struct resp arm(const char *method, const char *target, const char *body)
{
	return stack_call(method, STACK_MGMT_HOST, target, admin_token, body);
}

static const char *err_code(const struct resp *r)
{
	return bc_json_str(json_object_get(r->body, "error"), "code");
}

static char *groups(void)
{
	return fmt("/subscriptions/%s/resourcegroups?" AV, sub);
}

static char *group(const char *name)
{
	return fmt("/subscriptions/%s/resourcegroups/%s?" AV, sub, name);
}

TEST(reads)
{
	uint64_t before = counter("manager_throttled");
	for (int i = 0; i < 3; i++) {
		struct resp r = arm("GET", groups(), NULL);
		CHECK_EQ_INT(r.status, 200);
		CHECK_STR(r.ratelimit, fmt("x-ms-ratelimit-remaining-subscription-reads: %d", 2 - i));
		resp_release(&r);
	}
	struct resp r = arm("GET", groups(), NULL);
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(err_code(&r), "SubscriptionRequestsThrottled");
	const char *msg = bc_json_str(json_object_get(r.body, "error"), "message");
	CHECK(msg && strstr(msg, "'read' requests") && strstr(msg, admin.object_id));
	CHECK(json_object_get(r.body, "value") == NULL);
	CHECK_STR(r.retry_after, "1");
	CHECK_STR(r.ratelimit, "x-ms-ratelimit-remaining-subscription-reads: 0");
	resp_release(&r);
	CHECK_EQ_INT(counter("manager_throttled"), before + 1);
	/* reads outside a subscription have their own (tenant) bucket */
	r = arm("GET", "/subscriptions?api-version=2019-11-01", NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.ratelimit, "x-ms-ratelimit-remaining-tenant-reads: 2");
	resp_release(&r);
	/* one token a second */
	atomic_fetch_add(&now_ms, 999);
	CHECK_EQ_INT(call_as(admin_token, "GET", groups(), NULL, NULL), 429);
	atomic_fetch_add(&now_ms, 1);
	CHECK_EQ_INT(call_as(admin_token, "GET", groups(), NULL, NULL), 200);
	CHECK_EQ_INT(call_as(admin_token, "GET", groups(), NULL, NULL), 429);
}

TEST(writes_and_deletes)
{
	struct resp r = arm("PUT", group("rg-a"), "{\"location\":\"local\"}");
	CHECK(r.status == 200 || r.status == 201);
	CHECK_STR(r.ratelimit, "x-ms-ratelimit-remaining-subscription-writes: 1");
	resp_release(&r);
	CHECK(call_as(admin_token, "PUT", group("rg-b"), "{\"location\":\"local\"}", NULL) / 100 == 2);
	r = arm("PUT", group("rg-c"), "{\"location\":\"local\"}");
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(err_code(&r), "SubscriptionRequestsThrottled");
	CHECK_STR(r.retry_after, "1");
	resp_release(&r);
	/* deletes are counted apart from writes */
	r = arm("DELETE", group("rg-b"), NULL);
	CHECK(r.status == 200 || r.status == 202 || r.status == 204);
	CHECK_STR(r.ratelimit, "x-ms-ratelimit-remaining-subscription-deletes: 0");
	resp_release(&r);
	CHECK_EQ_INT(call_as(admin_token, "DELETE", group("rg-a"), NULL, NULL), 429);
	/* the throttled PUT created nothing, the throttled DELETE deleted nothing */
	atomic_fetch_add(&now_ms, 10000);
	CHECK_EQ_INT(call_as(admin_token, "GET", group("rg-c"), NULL, NULL), 404);
	CHECK_EQ_INT(call_as(admin_token, "GET", group("rg-a"), NULL, NULL), 200);
}

TEST(unauthenticated_not_counted)
{
	atomic_fetch_add(&now_ms, 10000);
	for (int i = 0; i < 5; i++) {
		struct resp r = stack_call("GET", STACK_MGMT_HOST, groups(), NULL, NULL);
		CHECK_EQ_INT(r.status, 401);
		CHECK_STR(r.ratelimit, "");
		resp_release(&r);
	}
	struct resp r = arm("GET", groups(), NULL);
	CHECK_STR(r.ratelimit, "x-ms-ratelimit-remaining-subscription-reads: 2");
	resp_release(&r);
}

int main(void)
{
	bc_log_set_level(BC_LOG_ERROR);
	bc_ratelimit_clock_set(fake_clock, NULL);
	stack_mgr_configure = limits;
	stack_open("mgrthrottle", true);
	STACK_STEPS(T(reads), T(writes_and_deletes), T(unauthenticated_not_counted));
	stack_close();
	bc_ratelimit_clock_set(NULL, NULL);
	return test_failures ? 1 : 0;
}
