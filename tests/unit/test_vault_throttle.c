/* Key Vault throttling (vault/throttle.c) through the route table: per vault and per caller, by
 * service-limit class (secrets, keys, key creation); 429 {"error":{"code":"Throttled"}} with
 * Retry-After in seconds; a throttled write changes nothing; the 429 is audited; the bucket
 * refills. The limiter's clock is injected: nothing waits. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/ratelimit.h"
#include "test.h"
#include "vault/vault_int.h"
#define STACK_VAULT
#include "stack.h"

#define VHOST "kvt.vault.badge.internal:8443"
#define API   "?api-version=2025-07-01"

static _Atomic int64_t now_ms = 1000000;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return atomic_load(&now_ms);
}

static void limits(struct vault_config *vc)
{
	vc->limit_secrets = 3;
	vc->limit_keys = 2;
	vc->limit_key_create = 1;
}

static struct resp kv(const char *method, const char *path, const char *token, const char *body)
{
	return stack_call(method, VHOST, path, token, body);
}

static int status_of(const char *method, const char *path, const char *token, const char *body)
{
	struct resp r = kv(method, path, token, body);
	int s = r.status;
	resp_release(&r);
	return s;
}

static const char *err_code(const struct resp *r)
{
	return bc_json_str(json_object_get(r->body, "error"), "code");
}

static void setup(void)
{
	bc_log_set_level(BC_LOG_ERROR);
	bc_ratelimit_clock_set(fake_clock, NULL);
	stack_vault_configure = limits;
	stack_open("vaultthrottle", true);
	char path[512], body[2048];
	snprintf(path, sizeof(path),
		 "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/"
		 "kvt?api-version=2023-07-01",
		 sub);
	snprintf(body, sizeof(body),
		 "{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
		 "\"name\":"
		 "\"standard\"},\"accessPolicies\":["
		 "{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"all\"],\"keys\":["
		 "\"all\"]}},"
		 "{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"get\"]}}]}}",
		 tenant, tenant, writer.object_id, tenant, reader.object_id);
	mgmt_put(path, body);
}

static int count_cb(void *ctx, const struct bc_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

static int audited(const char *operation, int status)
{
	vault_audit_flush(v->audit);
	struct bc_error err = {0};
	int n = 0;
	struct bc_param p[] = {BC_PTEXT("kvt"), BC_PTEXT(operation), BC_PINT(status),
			       BC_PTEXT(writer.object_id)};
	if (bc_store_exec(
		    st, NULL,
		    "SELECT id FROM vault_audit WHERE vault = ? AND operation = ? AND status = ? AND oid = ?",
		    p, 4, count_cb, &n, NULL, &err) != BC_OK)
		return -1;
	return n;
}

TEST(secrets_class)
{
	uint64_t before = counter("vault_throttled");
	CHECK_EQ_INT(status_of("PUT", "/secrets/s1" API, tok_writer, "{\"value\":\"v1\"}"), 200);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
	struct resp r = kv("GET", "/secrets/s1" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(err_code(&r), "Throttled");
	const char *msg = bc_json_str(json_object_get(r.body, "error"), "message");
	CHECK(msg && strstr(msg, "too many requests"));
	CHECK(bc_json_str(r.body, "value") == NULL);
	/* 3 per 10 s: the next token in 3.34 s, so 4 whole seconds */
	CHECK_STR(r.retry_after, "4");
	resp_release(&r);
	CHECK_EQ_INT(counter("vault_throttled"), before + 1);
	/* another caller has a bucket of its own */
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_reader, NULL), 200);
	/* a refused request counts nothing: still 4 s */
	r = kv("GET", "/secrets/s1" API, tok_writer, NULL);
	CHECK_STR(r.retry_after, "4");
	resp_release(&r);
}

TEST(throttled_write_changes_nothing)
{
	CHECK_EQ_INT(status_of("PUT", "/secrets/s2" API, tok_writer, "{\"value\":\"v2\"}"), 429);
	CHECK_EQ_INT(audited("SecretSet", 429), 1);
	CHECK(audited("SecretGet", 429) >= 2);
	atomic_fetch_add(&now_ms, 3334); /* one token back */
	CHECK_EQ_INT(status_of("GET", "/secrets/s2" API, tok_writer, NULL), 404);
	CHECK_EQ_INT(status_of("GET", "/secrets/s2" API, tok_writer, NULL), 429);
	atomic_fetch_add(&now_ms, 10000); /* full again: three */
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 429);
}

TEST(key_classes)
{
	/* key creation has its own bucket (1), other key operations theirs (2), apart from secrets */
	CHECK_EQ_INT(
		status_of("POST", "/keys/k1/create" API, tok_writer, "{\"kty\":\"EC\",\"crv\":\"P-256\"}"),
		200);
	struct resp r = kv("POST", "/keys/k2/create" API, tok_writer, "{\"kty\":\"EC\",\"crv\":\"P-256\"}");
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(err_code(&r), "Throttled");
	CHECK_STR(r.retry_after, "10");
	resp_release(&r);
	CHECK_EQ_INT(status_of("GET", "/keys/k1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/keys/k1" API, tok_writer, NULL), 200);
	CHECK_EQ_INT(status_of("GET", "/keys/k1" API, tok_writer, NULL), 429);
	CHECK_EQ_INT(status_of("GET", "/keys/k2" API, tok_writer, NULL), 429);
	atomic_fetch_add(&now_ms, 10000);
	CHECK_EQ_INT(status_of("GET", "/keys/k2" API, tok_writer, NULL), 404); /* never created */
	CHECK_EQ_INT(audited("KeyCreate", 429), 1);
}

TEST(unauthenticated_is_not_counted)
{
	/* the challenge comes first: a request without a token never reaches a bucket */
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, NULL, NULL), 401);
	atomic_fetch_add(&now_ms, 10000);
	CHECK_EQ_INT(status_of("GET", "/secrets/s1" API, tok_writer, NULL), 200);
}

int main(void)
{
	setup();
	static const struct test_case steps[] = {T(secrets_class), T(throttled_write_changes_nothing),
						 T(key_classes), T(unauthenticated_is_not_counted)};
	stack_steps(steps, sizeof(steps) / sizeof(steps[0]));
	stack_close();
	bc_ratelimit_clock_set(NULL, NULL);
	return test_failures ? 1 : 0;
}
