/* What operators need from a running server: /healthz (the process answers), /readyz (the
 * store answers and the server finished starting: signing keys loaded, routes mounted; 503
 * while starting and while draining after SIGTERM), /metrics (Prometheus text format,
 * core/metrics.h), and the SIGHUP reload of the log level from the config file. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli/server.h"
#include "core/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/ops.h"
#include "core/store.h"

static void readyz(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	struct server_ops *o = ctx;
	struct bc_error err = {0};
	int64_t one = 0;
	bool found = false;
	const char *why = NULL;
	if (atomic_load(&o->draining))
		why = "draining";
	else if (!atomic_load(&o->ready))
		why = "starting";
	else if (bc_store_get_int(o->st, NULL, "SELECT 1", NULL, 0, &one, &found, &err) != BC_OK || !found)
		why = "store unreachable";
	bc_ops_ready_reply(res, why,
			   why ? NULL : json_pack("{s:s, s:s}", "store", bc_store_backend(o->st), "keys", "loaded"));
}

static const struct bc_route ops_routes[] = {
	{"GET", "/healthz", bc_ops_healthz, NULL, 0},
	{"GET", "/readyz", readyz, NULL, 0},
	{"GET", "/metrics", bc_ops_metrics, NULL, 0},
};

int server_ops_mount(struct bc_http_server *srv, struct server_ops *o)
{
	return bc_http_mount(srv, NULL, NULL, ops_routes, sizeof(ops_routes) / sizeof(ops_routes[0]), o);
}

void server_ops_observe(const struct bc_http_req *req, int status, double ms)
{
	bc_metrics_http(req->method, req->route, status, ms);
}

void server_reload_log_level(const char *config_file)
{
	struct server_conf c;
	struct bc_error err = {0};
	memset(&c, 0, sizeof(c));
	if (!config_file) {
		bc_log_info("server: SIGHUP: no config file: log level unchanged");
		return;
	}
	if (bc_config_defaults(&c, server_conf_spec, server_conf_nspec, &err) != BC_OK ||
	    bc_config_load(&c, server_conf_spec, server_conf_nspec, config_file, &err) != BC_OK)
		bc_log_warn("server: SIGHUP: %s: %s; log level unchanged", config_file, err.msg);
	else if (bc_log_parse_level(c.log_level) < 0)
		bc_log_warn("server: SIGHUP: log_level '%s' is not debug, info, warn or error", c.log_level);
	else {
		bc_log_set_level(bc_log_parse_level(c.log_level));
		bc_log_info("server: SIGHUP: log level %s", c.log_level);
	}
	bc_config_release(&c, server_conf_spec, server_conf_nspec);
}
