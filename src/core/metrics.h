/* Process-wide metrics in the Prometheus text format (version 0.0.4), lock-free on the hot
 * path: counters and fixed-bucket histograms are C11 atomics; a (method, route, status) series
 * takes a slot of a fixed table the first time it is seen (one compare-and-swap), and series
 * beyond BC_METRICS_SERIES_MAX are counted in one overflow series (route="other").
 *
 * Route strings must outlive the process (the route patterns of the HTTP route tables are
 * static data); methods and statuses are copied. */
#ifndef BC_METRICS_H
#define BC_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/error.h"

#define BC_METRICS_SERIES_MAX 512

/* One HTTP request answered (the bc_http observer's arguments). A 200 from a token endpoint
 * also counts a token issued. */
void bc_metrics_http(const char *method, const char *route, int status, double duration_ms);
/* One store statement or commit on backend ("sqlite"/"postgres"); ok false when it failed. */
void bc_metrics_store(const char *backend, double duration_ms, bool ok);
/* Named counters exposed as badge_<name>_total (e.g. cache hits/misses); name must be static
 * and one of a small set (at most 32 names; further names are ignored). */
void bc_metrics_count(const char *name, uint64_t n);
/* Appends the exposition of every metric to out. */
int bc_metrics_render(struct bc_buf *out) BC_MUST_CHECK;

#endif
