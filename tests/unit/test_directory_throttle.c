/* Token-endpoint throttling (directory/throttle.c): per client_id and per tenant, 429 with
 * Entra's error shape (temporarily_unavailable, AADSTS90055) and Retry-After, before any
 * credential is checked; the refused request is audited; a tenant refusal gives the client's
 * token back; the buckets refill. The limiter's clock is injected. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/httpc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "directory/dirint.h"
#include "test.h"
#define STACK_DIRECTORY_ONLY
#include "stack.h"

#define MGMT  "https://management.badge.internal/"
#define LOGIN "https://login.badge.internal:8443"
#define HOST  "login.badge.internal:8443"

static _Atomic int64_t now_ms = 7000000;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&now_ms);
}

struct answer {
	int status;
	json_t *body;
	char retry_after[32];
};

static struct answer token(const char *client, const char *secret)
{
	struct answer a = {0};
	char path[128], form[1024];
	snprintf(path, sizeof(path), "/%s/oauth2/token", dir_default_tenant(d));
	snprintf(form, sizeof(form),
		 "grant_type=client_credentials&client_id=%s&client_secret=%s"
		 "&resource=https%%3A%%2F%%2Fmanagement.badge.internal%%2F",
		 client, secret);
	struct bc_http_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	if (bc_http_dispatch_test(srv, "POST", path, HOST, h, 1, form, strlen(form), &res))
		abort();
	a.status = res.status;
	if (res.body.len)
		a.body = json_loadb(res.body.data, res.body.len, 0, NULL);
	for (size_t i = 0; i < res.nheaders; i++)
		if (!strcasecmp(res.headers[i].key, "Retry-After"))
			snprintf(a.retry_after, sizeof(a.retry_after), "%s", res.headers[i].value);
	bc_http_res_release(&res);
	return a;
}

static struct dir_principal app(const char *name, char *secret, size_t n)
{
	struct dir_principal p;
	struct bc_error err;
	char cred[37];
	if (dir_principal_create(d, NULL, NULL, DIR_TYPE_APP, name, NULL, &p, &err) ||
	    dir_credential_add_secret(d, NULL, p.object_id, 0, secret, n, cred, &err))
		abort();
	return p;
}

static char s1[128], s2[128], s3[128];
static struct dir_principal a1, a2, a3;

TEST(per_client)
{
	uint64_t before = counter("directory_throttled");
	for (int i = 0; i < 2; i++) {
		struct answer r = token(a1.app_id, s1);
		CHECK_EQ_INT(r.status, 200);
		json_decref(r.body);
	}
	struct answer r = token(a1.app_id, s1);
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(bc_json_str(r.body, "error"), "temporarily_unavailable");
	CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(r.body, "error_codes"), 0)), 90055);
	const char *desc = bc_json_str(r.body, "error_description");
	CHECK(desc && !strncmp(desc, "AADSTS90055: ", 13) && strstr(desc, a1.app_id));
	CHECK(bc_json_str(r.body, "access_token") == NULL);
	CHECK_STR(r.retry_after, "5"); /* 2 per 10 s: one back in 5 s */
	json_decref(r.body);
	CHECK_EQ_INT(counter("directory_throttled"), before + 1);
	/* throttled before the secret is looked at: a wrong one is refused the same way */
	r = token(a1.app_id, "wrong");
	CHECK_EQ_INT(r.status, 429);
	json_decref(r.body);
	/* another client is not throttled by this one */
	r = token(a2.app_id, s2);
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
	atomic_fetch_add(&now_ms, 5000);
	r = token(a1.app_id, s1);
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
}

TEST(per_tenant)
{
	/* the tenant allows 4 per 10 s; after 10 s every bucket is full again */
	atomic_fetch_add(&now_ms, 10000);
	struct answer r = token(a2.app_id, s2);
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
	r = token(a3.app_id, s3);
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
	r = token(a3.app_id, s3); /* tenant 4 of 4, a3 2 of 2 */
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
	r = token(a2.app_id, s2);
	CHECK_EQ_INT(r.status, 200);
	json_decref(r.body);
	r = token(a1.app_id, s1); /* a1 has room, the tenant has none */
	CHECK_EQ_INT(r.status, 429);
	const char *desc = bc_json_str(r.body, "error_description");
	CHECK(desc && strstr(desc, "tenant limit"));
	CHECK_STR(r.retry_after, "3"); /* 4 per 10 s: 2.5 s, rounded up */
	json_decref(r.body);
	/* the tenant's refusal gave a1's token back: after the tenant refills by one, a1 still has 2 */
	atomic_fetch_add(&now_ms, 5000);
	for (int i = 0; i < 2; i++) {
		r = token(a1.app_id, s1);
		CHECK_EQ_INT(r.status, 200);
		json_decref(r.body);
	}
}

static int count_cb(void *ctx, const struct bc_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

TEST(audited)
{
	/* refused or not, every token request is audited: 429 with the client asked for */
	bc_audit_flush(d->audit);
	int n = 0;
	struct bc_error err = {0};
	struct bc_param p[] = {BC_PINT(429), BC_PTEXT(a1.app_id)};
	CHECK(bc_store_exec(st, NULL, "SELECT id FROM dir_audit WHERE status = ? AND appid = ?", p, 2,
			    count_cb, &n, NULL, &err) == BC_OK);
	CHECK_EQ_INT(n, 3);
}

int main(void)
{
	static const char *resources[] = {MGMT};
	static struct dir_config dc = {.login_url = LOGIN,
				       .token_lifetime_s = 3600,
				       .resources = resources,
				       .nresources = 1,
				       .admin_audience = MGMT,
				       .limit_client = 2,
				       .limit_tenant = 4};
	bc_log_set_level(BC_LOG_ERROR);
	bc_ratelimit_clock_set(fake_clock, NULL);
	stack_open_dir("dirthrottle", false, &dc);
	a1 = app("a1", s1, sizeof(s1));
	a2 = app("a2", s2, sizeof(s2));
	a3 = app("a3", s3, sizeof(s3));
	static const struct test_case steps[] = {T(per_client), T(per_tenant), T(audited)};
	stack_steps(steps, sizeof(steps) / sizeof(steps[0]));
	stack_close_dir();
	bc_ratelimit_clock_set(NULL, NULL);
	return test_failures ? 1 : 0;
}
