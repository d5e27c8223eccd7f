/* Operations endpoints shared by the server and the agent (see ops.h). */
#include "core/ops.h"

#include "core/metrics.h"

void bc_ops_healthz(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	(void)ctx;
	bc_http_res_text(res, 200, "text/plain; charset=utf-8", "ok\n");
}

void bc_ops_metrics_reply(struct bc_http_res *res, bc_ops_render_fn extra, void *arg)
{
	struct bc_buf b = {0};
	if (bc_metrics_render(&b) != BC_OK || (extra && extra(arg, &b) != BC_OK) ||
	    bc_buf_appendc(&b, '\0') != BC_OK) {
		bc_buf_release(&b);
		bc_http_res_json(res, 500, NULL);
		return;
	}
	bc_http_res_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", b.data);
	bc_buf_release(&b);
}

void bc_ops_metrics(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	(void)ctx;
	bc_ops_metrics_reply(res, NULL, NULL);
}

void bc_ops_ready_reply(struct bc_http_res *res, const char *why, json_t *detail)
{
	json_t *body = why ? json_pack("{s:s, s:s}", "status", "not ready", "reason", why)
			   : json_pack("{s:s}", "status", "ready");
	if (body && json_is_object(detail))
		json_object_update(body, detail);
	json_decref(detail);
	bc_http_res_json(res, why ? 503 : 200, body);
}
