/* Throttling of the token endpoints, the way Entra ID does it for client credentials: past a
 * client's or a tenant's rate, 429 with Retry-After (token.c writes the Entra-shaped body).
 * Buckets hold limit requests and refill limit per 10 s, per client_id and per tenant, on this
 * replica. A request the tenant's limit refuses gives its client token back. */
#include <stdio.h>
#include <string.h>
#include "core/metrics.h"
#include "core/ratelimit.h"
#include "directory/dirint.h"

#define WINDOW_MS 10000

static struct bc_rate per_window(int64_t n)
{
	return (struct bc_rate){.burst = n, .refill = n, .period_ms = WINDOW_MS};
}

int dir_throttle_init(struct dir *d)
{
	int64_t c = d->cfg.limit_client, t = d->cfg.limit_tenant;
	if (c < 0 || t < 0 || c > BC_RATELIMIT_BURST_MAX || t > BC_RATELIMIT_BURST_MAX)
		return BC_ERR_INVALID;
	if ((c || t) && !(d->limiter = bc_ratelimit_new(0)))
		return BC_ERR_NOMEM;
	return BC_OK;
}

void dir_throttle_free(struct dir *d)
{
	bc_ratelimit_free(d->limiter);
	d->limiter = NULL;
}

/* "c|<tenant>|<client>" or "t|<tenant>" (both bounded by the caller's checks; a longer value is
 * still keyed, as the limiter stores long keys by prefix and hash). */
static size_t make_key(char *buf, size_t cap, const char *tenant, const char *client)
{
	int n = client ? snprintf(buf, cap, "c|%s|%s", tenant, client) : snprintf(buf, cap, "t|%s", tenant);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

bool dir_throttle_token(struct dir *d, const char *tenant, const char *client_id, int64_t *retry_s,
			const char **scope)
{
	if (!d->limiter)
		return true;
	struct bc_rate rc = per_window(d->cfg.limit_client), rt = per_window(d->cfg.limit_tenant);
	char ck[BC_RATELIMIT_KEY_MAX], tk[BC_RATELIMIT_KEY_MAX];
	size_t ckl = make_key(ck, sizeof(ck), tenant, client_id),
	       tkl = make_key(tk, sizeof(tk), tenant, NULL);
	struct bc_rate_result res;
	if (!bc_ratelimit_take(d->limiter, ck, ckl, &rc, 1, &res)) {
		*scope = "client";
	} else if (!bc_ratelimit_take(d->limiter, tk, tkl, &rt, 1, &res)) {
		bc_ratelimit_refund(d->limiter, ck, ckl, &rc, 1);
		*scope = "tenant";
	} else {
		return true;
	}
	*retry_s = bc_ratelimit_retry_s(res.retry_after_ms);
	bc_metrics_count("directory_throttled", 1);
	return false;
}
