/* The operations endpoints that the server and the agent share: /healthz (the process answers),
 * /metrics (Prometheus text format of core/metrics.h, plus gauges of the caller's) and the shape
 * of a /readyz answer. Each process decides what "ready" means for itself. */
#ifndef BC_OPS_H
#define BC_OPS_H

#include <jansson.h>
#include "core/buf.h"
#include "core/http.h"

/* Route handlers (ctx unused): 200 "ok", and the process metrics. */
void bc_ops_healthz(struct bc_http_req *req, struct bc_http_res *res, void *ctx);
void bc_ops_metrics(struct bc_http_req *req, struct bc_http_res *res, void *ctx);

/* Appends more exposition lines (gauges computed at scrape time) after the process metrics. */
typedef int (*bc_ops_render_fn)(void *arg, struct bc_buf *out);
/* The /metrics answer: the process metrics, then extra's lines when extra is not NULL. */
void bc_ops_metrics_reply(struct bc_http_res *res, bc_ops_render_fn extra, void *arg);
/* The /readyz answer: why NULL is 200 {"status":"ready", ...detail}, else 503 {"status":"not
 * ready","reason":why, ...detail}. Steals detail (may be NULL). */
void bc_ops_ready_reply(struct bc_http_res *res, const char *why, json_t *detail);

#endif
