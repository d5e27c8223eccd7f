/* Throttling the way Key Vault does: its service limits are transactions per 10 seconds per
 * vault, by class (secrets and vault transactions; key operations; key creation); over a limit
 * the request is answered 429 {"error":{"code":"Throttled",...}} with Retry-After, counts
 * nothing and changes nothing. Here a bucket is per vault and per caller (the token's oid), so
 * one noisy identity does not throttle the others, and per replica.
 *
 * The check sits on the secret GET's hot path: one key built on the stack, one hash, one
 * striped lock (core/ratelimit.c). */
#include <stdio.h>
#include <string.h>
#include "core/metrics.h"
#include "vault/vault_int.h"

#define WINDOW_MS 10000

static const char *const class_names[VAULT_RL_NCLASS] = {"secrets", "keys", "key creation"};
static const char class_tags[VAULT_RL_NCLASS] = {'s', 'k', 'c'};

static struct bc_rate per_window(int64_t n)
{
	return (struct bc_rate){.burst = n, .refill = n, .period_ms = WINDOW_MS};
}

int vault_throttle_init(struct vault *v, const struct vault_config *cfg)
{
	v->rates[VAULT_RL_SECRETS] = per_window(cfg->limit_secrets);
	v->rates[VAULT_RL_KEYS] = per_window(cfg->limit_keys);
	v->rates[VAULT_RL_KEY_CREATE] = per_window(cfg->limit_key_create);
	bool any = false;
	for (int i = 0; i < VAULT_RL_NCLASS; i++) {
		if (v->rates[i].burst < 0 || v->rates[i].burst > BC_RATELIMIT_BURST_MAX)
			return BC_ERR_INVALID;
		any |= v->rates[i].burst > 0;
	}
	if (any && !(v->limiter = bc_ratelimit_new(cfg->limit_max_callers)))
		return BC_ERR_NOMEM;
	return BC_OK;
}

void vault_throttle_release(struct vault *v)
{
	bc_ratelimit_free(v->limiter);
	v->limiter = NULL;
}

enum vault_rl_class vault_throttle_class(const struct vroute *vr)
{
	if (!vr->category || strcmp(vr->category, "keys") != 0)
		return VAULT_RL_SECRETS;
	if (!strcmp(vr->operation, "KeyCreate") || !strcmp(vr->operation, "KeyImport") ||
	    !strcmp(vr->operation, "KeyRotate"))
		return VAULT_RL_KEY_CREATE;
	return VAULT_RL_KEYS;
}

/* "<class>|<vault>|<oid>" into buf; the vault key and oid are bounded (names, a UUID). */
static size_t make_key(char *buf, size_t cap, char tag, const char *vkey, const char *oid)
{
	size_t vl = strlen(vkey), ol = strlen(oid);
	if (vl + ol + 3 > cap)
		return 0;
	buf[0] = tag;
	buf[1] = '|';
	memcpy(buf + 2, vkey, vl);
	buf[2 + vl] = '|';
	memcpy(buf + 3 + vl, oid, ol);
	return vl + ol + 3;
}

bool vault_throttle(struct vreq *q, enum vault_rl_class cls)
{
	struct vault *v = q->v;
	const struct bc_rate *r = &v->rates[cls];
	if (!v->limiter || r->burst == 0)
		return true;
	char key[BC_LIMIT_NAME + sizeof(q->claims.oid) + 4];
	size_t kl = make_key(key, sizeof(key), class_tags[cls], q->vkey, q->claims.oid);
	struct bc_rate_result res;
	if (kl == 0 || bc_ratelimit_take(v->limiter, key, kl, r, 1, &res))
		return true;
	int64_t secs = bc_ratelimit_retry_s(res.retry_after_ms);
	char ra[24];
	snprintf(ra, sizeof(ra), "%lld", (long long)secs);
	vault_error(
		q, 429, "Throttled", NULL,
		"Request was not processed because too many requests were received. Reason: more than "
		"%lld %s transactions in 10 seconds for vault '%s' by caller '%s'. Retry after %lld seconds.",
		(long long)r->burst, class_names[cls], q->info.name, q->claims.oid, (long long)secs);
	(void)bc_http_res_header(q->res, "Retry-After", ra);
	bc_metrics_count("vault_throttled", 1);
	return false;
}
