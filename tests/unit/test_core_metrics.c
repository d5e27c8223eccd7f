/* core/metrics: counts under concurrency, the exposition format, the series cap. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "test.h"

#define THREADS    8
#define PER_THREAD 20000

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		bc_metrics_http("GET", "/vaults/{vault}/secrets/{name}", 200, (double)(i % 40));
		bc_metrics_http("POST", "/{tenant}/oauth2/v2.0/token", i % 2 ? 200 : 400, 3.0);
		bc_metrics_count("cache_hits", 1);
	}
	return NULL;
}

static char *render(void)
{
	struct bc_buf b = {0};
	if (bc_metrics_render(&b) != BC_OK || bc_buf_appendc(&b, '\0') != BC_OK)
		return NULL;
	return b.data; /* the test frees it */
}

static long value_of(const char *text, const char *line_prefix)
{
	const char *p = strstr(text, line_prefix);
	return p ? strtol(p + strlen(line_prefix), NULL, 10) : -1;
}

TEST(concurrent_counts)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, hammer, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	bc_metrics_store("postgres", 0.5, true);
	bc_metrics_store("postgres", 20, false);
	char *m = render();
	REQUIRE(m);
	CHECK_EQ_INT(value_of(m, "badge_http_requests_total{route=\"/vaults/{vault}/secrets/"
				 "{name}\",method=\"GET\",status=\"200\"} "),
		     THREADS * PER_THREAD);
	CHECK_EQ_INT(value_of(m, "badge_http_requests_total{route=\"/{tenant}/oauth2/v2.0/"
				 "token\",method=\"POST\",status=\"400\"} "),
		     THREADS * PER_THREAD / 2);
	CHECK_EQ_INT(value_of(m, "\nbadge_tokens_issued_total "), THREADS * PER_THREAD / 2);
	CHECK_EQ_INT(value_of(m, "\nbadge_cache_hits_total "), THREADS * PER_THREAD);
	/* cumulative buckets: durations 0..39 ms, uniformly; le=0.01 holds 0..10 ms = 11 of 40 */
	CHECK_EQ_INT(value_of(m, "badge_http_request_duration_seconds_bucket{route=\"/vaults/{vault}/secrets/"
				 "{name}\",method=\"GET\",status=\"200\",le=\"0.01\"} "),
		     THREADS * PER_THREAD / 40 * 11);
	CHECK_EQ_INT(value_of(m, "badge_http_request_duration_seconds_bucket{route=\"/vaults/{vault}/secrets/"
				 "{name}\",method=\"GET\",status=\"200\",le=\"+Inf\"} "),
		     THREADS * PER_THREAD);
	CHECK_EQ_INT(value_of(m, "badge_http_request_duration_seconds_count{route=\"/vaults/{vault}/secrets/"
				 "{name}\",method=\"GET\",status=\"200\"} "),
		     THREADS * PER_THREAD);
	CHECK_EQ_INT(
		value_of(m, "badge_store_query_duration_seconds_count{backend=\"postgres\",result=\"ok\"} "),
		1);
	CHECK_EQ_INT(value_of(m, "badge_store_query_duration_seconds_bucket{backend=\"postgres\",result="
				 "\"error\",le=\"0.025\"} "),
		     1);
	CHECK(strstr(m, "# TYPE badge_http_request_duration_seconds histogram\n") != NULL);
	free(m);
}

TEST(escaping_and_cap)
{
	static char routes[BC_METRICS_SERIES_MAX + 10][32];
	bc_metrics_http("GET", "/we\"ird\\route\n", 404, 1);
	for (int i = 0; i < BC_METRICS_SERIES_MAX + 10; i++) {
		snprintf(routes[i], sizeof(routes[i]), "/r%d", i);
		bc_metrics_http("GET", routes[i], 200, 1);
	}
	bc_metrics_http(NULL, NULL, 404, 1);
	char *m = render();
	REQUIRE(m);
	CHECK(strstr(m, "route=\"/we\\\"ird\\\\route\\n\"") != NULL);
	CHECK(strstr(m, "route=\"other\",method=\"*\",status=\"0\"") != NULL); /* beyond the cap */
	free(m);
}

TEST_MAIN(T(concurrent_counts), T(escaping_and_cap))
