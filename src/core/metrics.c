/* Prometheus metrics: see metrics.h. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/metrics.h"

/* Latency buckets in milliseconds (exposed in seconds). */
static const double bucket_ms[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKETS (sizeof(bucket_ms) / sizeof(bucket_ms[0]))

struct hist {
	atomic_uint_fast64_t b[NBUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
};

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_READY };
struct series {
	atomic_int state;
	const char *route; /* borrowed: static route pattern */
	char method[12];
	int status;
	struct hist h;
};

static struct series table[BC_METRICS_SERIES_MAX];
static struct series overflow = {.route = "other", .method = "*"};
static struct hist store_ok, store_fail;
static atomic_uint_fast64_t tokens_issued;
static atomic_int store_backend_set;
static const char *store_backend = "";

#define NCOUNTERS 32
static struct {
	atomic_int state;
	const char *name;
	atomic_uint_fast64_t n;
} counters[NCOUNTERS];

static void hist_add(struct hist *h, double ms)
{
	size_t i = 0;
	while (i < NBUCKETS && ms > bucket_ms[i])
		i++;
	atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(ms > 0 ? ms * 1000.0 : 0),
				  memory_order_relaxed);
}

static uint64_t hash_series(const char *method, const char *route, int status)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = method; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	for (const char *p = route; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return (h ^ (uint64_t)status) * 1099511628211ULL;
}

static bool same(const struct series *s, const char *method, const char *route, int status)
{
	return s->status == status && strcmp(s->route, route) == 0 && strcmp(s->method, method) == 0;
}

static struct series *find_series(const char *method, const char *route, int status)
{
	uint64_t h = hash_series(method, route, status);
	for (size_t probe = 0; probe < BC_METRICS_SERIES_MAX; probe++) {
		struct series *s = &table[(h + probe) % BC_METRICS_SERIES_MAX];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == SLOT_FREE) {
			int expect = SLOT_FREE;
			if (atomic_compare_exchange_strong(&s->state, &expect, SLOT_CLAIMED)) {
				s->route = route;
				snprintf(s->method, sizeof(s->method), "%s", method);
				s->status = status;
				atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
				return s;
			}
			st = expect;
		}
		while (st == SLOT_CLAIMED) /* another thread is writing the key: a few instructions */
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (same(s, method, route, status))
			return s;
	}
	return &overflow;
}

void bc_metrics_http(const char *method, const char *route, int status, double duration_ms)
{
	if (!method)
		method = "-";
	if (!route)
		route = "unmatched";
	hist_add(&find_series(method, route, status)->h, duration_ms);
	if (status == 200 && strstr(route, "/token") &&
	    (strstr(route, "oauth2") || strstr(route, "identity")))
		atomic_fetch_add_explicit(&tokens_issued, 1, memory_order_relaxed);
}

void bc_metrics_store(const char *backend, double duration_ms, bool ok)
{
	int expect = 0;
	if (backend && atomic_load_explicit(&store_backend_set, memory_order_relaxed) == 0 &&
	    atomic_compare_exchange_strong(&store_backend_set, &expect, 1)) {
		store_backend = backend;
		atomic_store(&store_backend_set, 2);
	}
	hist_add(ok ? &store_ok : &store_fail, duration_ms);
}

void bc_metrics_count(const char *name, uint64_t n)
{
	for (size_t i = 0; i < NCOUNTERS; i++) {
		int st = atomic_load_explicit(&counters[i].state, memory_order_acquire);
		if (st == SLOT_FREE) {
			int expect = SLOT_FREE;
			if (atomic_compare_exchange_strong(&counters[i].state, &expect, SLOT_CLAIMED)) {
				counters[i].name = name;
				atomic_store_explicit(&counters[i].state, SLOT_READY, memory_order_release);
				atomic_fetch_add_explicit(&counters[i].n, n, memory_order_relaxed);
				return;
			}
			st = expect;
		}
		while (st == SLOT_CLAIMED)
			st = atomic_load_explicit(&counters[i].state, memory_order_acquire);
		if (counters[i].name == name || strcmp(counters[i].name, name) == 0) {
			atomic_fetch_add_explicit(&counters[i].n, n, memory_order_relaxed);
			return;
		}
	}
}

/* Label values: backslash, quote and newline escaped. */
static int label(struct bc_buf *out, const char *v)
{
	int rc = BC_OK;
	for (const char *p = v; *p && rc == BC_OK; p++) {
		if (*p == '\\' || *p == '"')
			rc = bc_buf_appendc(out, '\\') || bc_buf_appendc(out, *p);
		else if (*p == '\n')
			rc = bc_buf_appends(out, "\\n");
		else
			rc = bc_buf_appendc(out, *p);
	}
	return rc;
}

/* name{LABELS,le="..."} lines, _sum and _count; labels is "" or `k="v",` pieces. */
static int hist_render(struct bc_buf *out, const char *name, const char *labels, const struct hist *h)
{
	int rc = BC_OK;
	uint64_t cum = 0;
	for (size_t i = 0; i <= NBUCKETS && rc == BC_OK; i++) {
		cum += atomic_load_explicit(&h->b[i], memory_order_relaxed);
		if (i < NBUCKETS)
			rc = bc_buf_appendf(out, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels,
					    bucket_ms[i] / 1000.0, cum);
		else
			rc = bc_buf_appendf(out, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	}
	size_t ll = strlen(labels);
	if (rc == BC_OK)
		rc = bc_buf_appendf(out, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %" PRIu64 "\n", name,
				    (int)(ll ? ll - 1 : 0), labels,
				    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6,
				    name, (int)(ll ? ll - 1 : 0), labels, cum);
	return rc;
}

static int series_labels(struct bc_buf *lb, const struct series *s)
{
	bc_buf_reset(lb);
	int rc = bc_buf_appends(lb, "route=\"");
	if (!rc)
		rc = label(lb, s->route);
	if (!rc)
		rc = bc_buf_appends(lb, "\",method=\"");
	if (!rc)
		rc = label(lb, s->method);
	if (!rc)
		rc = bc_buf_appendf(lb, "\",status=\"%d\",", s->status);
	if (!rc)
		rc = bc_buf_appendc(lb, '\0');
	return rc;
}

int bc_metrics_render(struct bc_buf *out)
{
	struct bc_buf lb = {0};
	int rc = bc_buf_appends(out, "# HELP badge_http_requests_total HTTP requests answered, by route "
				     "pattern, method and status.\n"
				     "# TYPE badge_http_requests_total counter\n");
	for (size_t pass = 0; pass < 2 && rc == BC_OK; pass++) {
		if (pass == 1)
			rc = bc_buf_appends(out, "# HELP badge_http_request_duration_seconds Time from "
						 "request to response queued.\n"
						 "# TYPE badge_http_request_duration_seconds histogram\n");
		for (size_t i = 0; i <= BC_METRICS_SERIES_MAX && rc == BC_OK; i++) {
			const struct series *s = i < BC_METRICS_SERIES_MAX ? &table[i] : &overflow;
			if (i < BC_METRICS_SERIES_MAX &&
			    atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_READY)
				continue;
			uint64_t n = atomic_load_explicit(&s->h.count, memory_order_relaxed);
			if (n == 0)
				continue;
			if ((rc = series_labels(&lb, s)))
				break;
			if (pass == 0)
				rc = bc_buf_appendf(out, "badge_http_requests_total{%.*s} %" PRIu64 "\n",
						    (int)strlen(lb.data) - 1, lb.data, n);
			else
				rc = hist_render(out, "badge_http_request_duration_seconds", lb.data, &s->h);
		}
	}
	if (rc == BC_OK)
		rc = bc_buf_appendf(
			out,
			"# HELP badge_tokens_issued_total Access tokens issued (200 from a token endpoint).\n"
			"# TYPE badge_tokens_issued_total counter\nbadge_tokens_issued_total %" PRIu64 "\n",
			(uint64_t)atomic_load_explicit(&tokens_issued, memory_order_relaxed));
	if (rc == BC_OK) {
		const char *be = atomic_load(&store_backend_set) == 2 ? store_backend : "";
		char l1[96], l2[96];
		snprintf(l1, sizeof(l1), "backend=\"%s\",result=\"ok\",", be);
		snprintf(l2, sizeof(l2), "backend=\"%s\",result=\"error\",", be);
		rc = bc_buf_appends(
			out, "# HELP badge_store_query_duration_seconds Store statements and commits.\n"
			     "# TYPE badge_store_query_duration_seconds histogram\n");
		if (rc == BC_OK)
			rc = hist_render(out, "badge_store_query_duration_seconds", l1, &store_ok);
		if (rc == BC_OK)
			rc = hist_render(out, "badge_store_query_duration_seconds", l2, &store_fail);
	}
	for (size_t i = 0; i < NCOUNTERS && rc == BC_OK; i++) {
		if (atomic_load_explicit(&counters[i].state, memory_order_acquire) != SLOT_READY)
			continue;
		rc = bc_buf_appendf(out, "# TYPE badge_%s_total counter\nbadge_%s_total %" PRIu64 "\n",
				    counters[i].name, counters[i].name,
				    (uint64_t)atomic_load_explicit(&counters[i].n, memory_order_relaxed));
	}
	bc_buf_release(&lb);
	return rc;
}
