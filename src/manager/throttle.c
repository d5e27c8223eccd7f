/* Resource Manager's request limits (its regional token-bucket model): per principal, per
 * subscription (tenant for calls outside one) and per operation type (reads, writes, deletes), a
 * bucket that refills at a fixed rate per second. Every answer to an authenticated call carries
 * x-ms-ratelimit-remaining-{subscription|tenant}-{reads|writes|deletes}; an empty bucket answers
 * 429 with Retry-After, as ARM does, and the handler never runs. Limits are per replica. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "core/metrics.h"
#include "manager/mgr_int.h"

enum { OP_READS, OP_WRITES, OP_DELETES };
static const char *const op_names[] = {"reads", "writes", "deletes"};
static const char *const op_words[] = {"read", "write", "delete"};

static int set_rate(struct bc_rate *r, int64_t burst, int64_t refill)
{
	if (burst < 0 || burst > BC_RATELIMIT_BURST_MAX || refill < 0 || refill > BC_RATELIMIT_BURST_MAX ||
	    (burst > 0 && refill == 0))
		return BC_ERR_INVALID;
	*r = (struct bc_rate){.burst = burst, .refill = refill, .period_ms = 1000};
	return BC_OK;
}

int mgr_throttle_init(struct mgr *m, const struct mgr_config *cfg)
{
	int rc;
	if ((rc = set_rate(&m->rates[OP_READS], cfg->limit_reads_burst, cfg->limit_reads_refill)) ||
	    (rc = set_rate(&m->rates[OP_WRITES], cfg->limit_writes_burst, cfg->limit_writes_refill)) ||
	    (rc = set_rate(&m->rates[OP_DELETES], cfg->limit_deletes_burst, cfg->limit_deletes_refill)))
		return rc;
	if ((m->rates[0].burst || m->rates[1].burst || m->rates[2].burst) &&
	    !(m->limiter = bc_ratelimit_new(0)))
		return BC_ERR_NOMEM;
	return BC_OK;
}

void mgr_throttle_free(struct mgr *m)
{
	bc_ratelimit_free(m->limiter);
	m->limiter = NULL;
}

static int op_of(const char *method)
{
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		return OP_READS;
	return strcmp(method, "DELETE") == 0 ? OP_DELETES : OP_WRITES;
}

/* The subscription id of an ARM path ("/subscriptions/{id}/..."), or NULL; *len its length. */
static const char *path_sub(const char *path, size_t *len)
{
	static const char pre[] = "subscriptions/";
	while (*path == '/')
		path++;
	if (strncasecmp(path, pre, sizeof(pre) - 1) != 0)
		return NULL;
	path += sizeof(pre) - 1;
	size_t n = strcspn(path, "/?");
	if (n == 0 || n > 64)
		return NULL;
	*len = n;
	return path;
}

bool arm_throttle(struct arm *a)
{
	struct mgr *m = a->m;
	if (!m->limiter)
		return true;
	int op = op_of(a->req->method);
	const struct bc_rate *r = &m->rates[op];
	if (r->burst == 0)
		return true;
	size_t sl = 0;
	const char *sub = path_sub(a->req->path, &sl);
	char key[160];
	int kl = sub ? snprintf(key, sizeof(key), "%d|s%.*s|%s", op, (int)sl, sub, a->claims.oid)
		     : snprintf(key, sizeof(key), "%d|t%s|%s", op, a->claims.tid, a->claims.oid);
	if (kl < 0 || (size_t)kl >= sizeof(key))
		return true;
	struct bc_rate_result res;
	bool ok = bc_ratelimit_take(m->limiter, key, (size_t)kl, r, 1, &res);
	char hdr[64], val[24];
	snprintf(hdr, sizeof(hdr), "x-ms-ratelimit-remaining-%s-%s", sub ? "subscription" : "tenant",
		 op_names[op]);
	snprintf(val, sizeof(val), "%lld", (long long)res.remaining);
	(void)bc_http_res_header(a->res, hdr, val);
	if (ok)
		return true;
	int64_t secs = bc_ratelimit_retry_s(res.retry_after_ms);
	if (sub)
		arm_error(a->res, 429, "SubscriptionRequestsThrottled",
			  "Number of '%s' requests for subscription '%.*s' actor '%s' exceeded. Please try "
			  "again after "
			  "'%lld' seconds after additional tokens are available.",
			  op_words[op], (int)sl, sub, a->claims.oid, (long long)secs);
	else
		arm_error(a->res, 429, "TenantRequestsThrottled",
			  "Number of '%s' requests for tenant '%s' actor '%s' exceeded. Please try again "
			  "after '%lld' "
			  "seconds after additional tokens are available.",
			  op_words[op], a->claims.tid, a->claims.oid, (long long)secs);
	snprintf(val, sizeof(val), "%lld", (long long)secs);
	(void)bc_http_res_header(a->res, "Retry-After", val);
	bc_metrics_count("manager_throttled", 1);
	return false;
}
