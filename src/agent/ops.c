/* The agent's operations listener (badge agent --ops-listen ADDR:PORT, plain HTTP, off by
 * default): /healthz (the process answers), /readyz (enrolled, a sync succeeded recently, a key
 * and certificate for the host and for every identity of its instances) and /metrics (the
 * process counters of core/metrics.h, then the agent's gauges: sync lag, servers, instances,
 * cached tokens). The handlers shared with the server are core/ops.h's. */
#include "agent/agentint.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "core/ops.h"
#include "core/util.h"

/* Seconds since the last successful sync (since start when none yet); a->mu held. */
static int64_t sync_lag(const struct agent *a, int64_t now)
{
	return now - (a->last_sync_ok ? a->last_sync_ok : a->started_at);
}

/* How long a sync may be past before the agent is not ready: two long polls with their slack. */
static int64_t sync_bound(const struct agent *a)
{
	int t = a->cfg.sync_timeout_s > 0 ? a->cfg.sync_timeout_s : 30;
	return 2 * ((t > 60 ? 60 : t) + 15);
}

static void readyz(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct agent *a = ctx;
	const char *why = NULL;
	size_t ids = 0, missing = 0, insts = 0;
	(void)req;
	pthread_mutex_lock(&a->mu);
	int64_t now = bc_now(), lag = sync_lag(a, now);
	for (const struct agent_instance *in = a->instances; in; in = in->next, insts++)
		for (size_t i = 0; i < in->nids; i++) {
			const struct agent_cred *c = a->creds;
			while (c && strcmp(c->object_id, in->ids[i].object_id) != 0)
				c = c->next;
			ids++;
			if (!c || !c->key || !c->cert_pem || now >= c->not_after)
				missing++;
		}
	if (a->stopping)
		why = "stopping";
	else if (!a->host.cred.key || !a->host.cred.cert_pem || !a->host.host_id[0])
		why = "not enrolled";
	else if (now >= a->host.cred.not_after)
		why = "host certificate expired";
	else if (!a->last_sync_ok)
		why = "no sync yet";
	else if (lag > sync_bound(a))
		why = "last sync too old";
	else if (missing)
		why = "identity keys missing";
	json_t *detail =
		json_pack("{s:s, s:I, s:I, s:I, s:I}", "server", a->nservers ? a->servers[a->active] : "",
			  "syncLagSeconds", (json_int_t)lag, "instances", (json_int_t)insts, "identities",
			  (json_int_t)ids, "identitiesWithoutKey", (json_int_t)missing);
	if (!why)
		json_object_set_new(detail, "keys", json_string("loaded"));
	pthread_mutex_unlock(&a->mu);
	bc_ops_ready_reply(res, why, detail);
}

/* A label value: URLs carry no quote, backslash or newline, but never trust that. */
static int label(struct bc_buf *out, const char *s)
{
	for (; *s; s++) {
		const char *esc = *s == '"' ? "\\\"" : *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : NULL;
		if (esc ? bc_buf_appends(out, esc) : bc_buf_appendc(out, *s))
			return BC_ERR_NOMEM;
	}
	return BC_OK;
}

static int gauges(void *arg, struct bc_buf *out)
{
	struct agent *a = arg;
	int rc;
	size_t insts = 0;
	size_t cached = tc_count(a->tc);
	pthread_mutex_lock(&a->mu);
	int64_t now = bc_now();
	for (const struct agent_instance *in = a->instances; in; in = in->next)
		insts++;
	rc = bc_buf_appendf(out,
			    "# TYPE badge_agent_sync_lag_seconds gauge\nbadge_agent_sync_lag_seconds %" PRId64
			    "\n"
			    "# TYPE badge_agent_last_sync_timestamp_seconds gauge\n"
			    "badge_agent_last_sync_timestamp_seconds %" PRId64 "\n"
			    "# TYPE badge_agent_instances gauge\nbadge_agent_instances %zu\n"
			    "# TYPE badge_agent_cached_tokens gauge\nbadge_agent_cached_tokens %zu\n"
			    "# TYPE badge_agent_server_active gauge\n",
			    sync_lag(a, now), a->last_sync_ok, insts, cached);
	for (size_t i = 0; rc == BC_OK && i < a->nservers; i++)
		if (bc_buf_appends(out, "badge_agent_server_active{url=\"") || label(out, a->servers[i]) ||
		    bc_buf_appendf(out, "\"} %d\n", i == a->active))
			rc = BC_ERR_NOMEM;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static void metrics(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	bc_ops_metrics_reply(res, gauges, ctx);
}

static const struct bc_route ops_routes[] = {
	{"GET", "/healthz", bc_ops_healthz, NULL, 0},
	{"GET", "/readyz", readyz, NULL, 0},
	{"GET", "/metrics", metrics, NULL, 0},
};

int agent_ops_start(struct agent *a, struct bc_error *err)
{
	int rc, port = 0;
	if (!a->cfg.ops_listen)
		return BC_OK;
	const char *colon = strrchr(a->cfg.ops_listen, ':');
	if (!colon || colon == a->cfg.ops_listen || (size_t)(colon - a->cfg.ops_listen) > 64)
		return bc_error_set(err, BC_ERR_INVALID, "--ops-listen takes ADDRESS:PORT");
	if (!(a->ops_srv = bc_http_server_new()))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	if ((rc = bc_http_mount(a->ops_srv, NULL, NULL, ops_routes,
				sizeof(ops_routes) / sizeof(ops_routes[0]), a)))
		return bc_error_set(err, rc, "cannot mount the operations routes");
	struct bc_http_listener l = {
		.address = a->cfg.ops_listen, .fd = -1, .threads = 1, .max_connections = 32};
	if ((rc = bc_http_listen(a->ops_srv, &l, &port, err)) != BC_OK)
		return bc_error_wrap(err, "operations listener %s", a->cfg.ops_listen);
	snprintf(a->ops_url, sizeof(a->ops_url), "http://%.*s:%d", (int)(colon - a->cfg.ops_listen),
		 a->cfg.ops_listen, port);
	bc_log_info("agent: operations endpoints on %s (/healthz, /readyz, /metrics)", a->ops_url);
	return BC_OK;
}

void agent_ops_stop(struct agent *a)
{
	if (a->ops_srv)
		bc_http_server_stop(a->ops_srv);
}
