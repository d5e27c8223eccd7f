/* The metadata endpoint of an instance: the handlers of IMDS's token, instance and versions paths
 * and App Service's token path, the per-instance rate and concurrency admission they all pass
 * through, and the route tables mounted on the instance's listener (instance.c). */
#include "agent/agentint.h"

#include <stdio.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

enum { TAG_IMDS = 1, TAG_APPSERVICE = 2 };

/* ---- the metadata endpoint ---- */

static void view_of(struct bc_http_req *req, const struct agent_instance *in, struct imds_req_view *v)
{
	memset(v, 0, sizeof(*v));
	v->method = req->method;
	v->metadata = bc_http_header(req, "Metadata");
	v->metadata_count = bc_http_header_count(req, "Metadata");
	v->forwarded = bc_http_header(req, "X-Forwarded-For") || bc_http_header(req, "Forwarded");
	v->identity_header = bc_http_header(req, "X-IDENTITY-HEADER");
	v->identity_header_count = bc_http_header_count(req, "X-IDENTITY-HEADER");
	v->expected_secret = in->secret;
	v->query = req->query;
	v->nquery = req->nquery;
}

static bool admit(struct agent_instance *in, struct bc_http_res *res)
{
	int retry = imds_limiter_enter(&in->lim);
	if (!retry)
		return true;
	char s[16];
	snprintf(s, sizeof(s), "%d", retry);
	struct imds_reject rej = {429, "too_many_requests", "Too many requests", false};
	bc_metrics_count("agent_imds_throttled", 1);
	imds_reply_reject(res, &rej);
	(void)bc_http_res_header(res, "Retry-After", s);
	return false;
}

static void token_failure(struct bc_http_res *res, const struct bc_error *err, const char *reqid)
{
	struct imds_reject rej = {500, "unknown_error", "Failed to obtain a token", false};
	switch (err->status) {
	case BC_ERR_INVALID:
		rej = (struct imds_reject){400, "invalid_resource", "The resource is not known to the directory", false};
		break;
	case BC_ERR_NOT_FOUND:
		rej = (struct imds_reject){400, "invalid_request", "Identity not found", false};
		break;
	case BC_ERR_UNAVAILABLE:
		rej = (struct imds_reject){503, "temporarily_unavailable", "The token service is unavailable, retry later", false};
		break;
	default:
		break;
	}
	bc_log(BC_LOG_WARN, reqid, "imds: token request failed: %s", err->msg);
	imds_reply_reject(res, &rej);
	if (rej.status == 503)
		(void)bc_http_res_header(res, "Retry-After", "1");
}

static void h_token(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct agent_instance *in = req->conn_ctx;
	struct agent *a = in->agent;
	struct imds_req_view v;
	struct imds_token_query q;
	struct imds_reject rej;
	char oid[37], cid[37];
	(void)ctx;
	if (!admit(in, res))
		return;
	view_of(req, in, &v);
	enum imds_flavour fl = req->listener_tag == TAG_APPSERVICE ? IMDS_FLAVOUR_APPSERVICE : IMDS_FLAVOUR_IMDS;
	if (imds_check_token(fl, &v, &q, &rej) != 0) {
		imds_reply_reject(res, &rej);
		goto done;
	}
	pthread_mutex_lock(&a->mu);
	int idx = imds_select_identity(in->ids, in->nids, &q, &rej);
	if (idx >= 0) {
		memcpy(oid, in->ids[idx].object_id, sizeof(oid));
		memcpy(cid, in->ids[idx].client_id, sizeof(cid));
	}
	pthread_mutex_unlock(&a->mu);
	if (idx < 0) {
		imds_reply_reject(res, &rej);
		goto done;
	}
	struct imds_token tok = {0};
	struct bc_error err = {0};
	if (tc_get(a->tc, oid, q.resource, &tok, &err) != BC_OK) {
		token_failure(res, &err, req->request_id);
		goto done;
	}
	int rc = imds_token_body(&tok, cid, q.resource, bc_now(), bc_http_res_raw(res, 200, NULL));
	imds_token_release(&tok);
	if (rc != BC_OK) {
		rej = (struct imds_reject){400, "invalid_resource", "The resource is not valid", false};
		imds_reply_reject(res, &rej);
		goto done;
	}
	bc_metrics_count("agent_imds_tokens_served", 1);
done:
	imds_limiter_leave(&in->lim);
}

static json_t *compute_doc(const struct agent_instance *in)
{
	const json_t *d = in->doc;
	json_t *c = json_object();
	json_t *tags_list = json_array();
	struct bc_buf tags = {0};
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(d, "tags"), k, v) {
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		json_array_append_new(tags_list, json_pack("{s:s, s:s}", "name", k, "value", s));
		if (bc_buf_appendf(&tags, "%s%s:%s", tags.len ? ";" : "", k, s) != BC_OK)
			break;
	}
	static const char *const copy[] = {"name", "resourceId", "vmId", "subscriptionId", "resourceGroupName", "location"};
	for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++)
		bc_json_set_str(c, copy[i], bc_json_str(d, copy[i]) ? bc_json_str(d, copy[i]) : "");
	bc_json_set_str(c, "azEnvironment", "AzureBadge");
	bc_json_set_str(c, "osType", "Linux");
	bc_json_set_str(c, "provider", "Badge.Compute");
	bc_json_set_str(c, "tags", bc_buf_cstr(&tags));
	json_object_set_new(c, "tagsList", tags_list);
	bc_buf_release(&tags);
	return c;
}

static bool check_meta(struct bc_http_req *req, struct bc_http_res *res, bool need_version)
{
	struct agent_instance *in = req->conn_ctx;
	struct imds_req_view v;
	struct imds_reject rej;
	if (!admit(in, res))
		return false;
	view_of(req, in, &v);
	if (imds_check_metadata(&v, need_version, &rej) != 0) {
		imds_reply_reject(res, &rej);
		imds_limiter_leave(&in->lim);
		return false;
	}
	return true;
}

static void h_instance(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct agent_instance *in = req->conn_ctx;
	(void)ctx;
	if (!check_meta(req, res, true))
		return;
	pthread_mutex_lock(&in->agent->mu);
	json_t *c = compute_doc(in);
	pthread_mutex_unlock(&in->agent->mu);
	bool only_compute = bc_str_endswith_ci(req->path, "/compute");
	bc_http_res_json(res, 200, only_compute ? c : json_pack("{s:o, s:{s:[]}}", "compute", c, "network", "interface"));
	imds_limiter_leave(&in->lim);
}

static void h_versions(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct agent_instance *in = req->conn_ctx;
	(void)ctx;
	if (!check_meta(req, res, false))
		return;
	bc_http_res_json(res, 200, json_pack("{s:o}", "apiVersions", imds_versions_json()));
	imds_limiter_leave(&in->lim);
}

static void h_fallback(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	(void)ctx;
	struct imds_reject rej = {404, "not_found", "Not found", false};
	imds_reply_reject(res, &rej);
}

static const struct bc_route imds_routes[] = {
	{"*", "/metadata/identity/oauth2/token", h_token, NULL, 0},
	{"*", "/metadata/instance", h_instance, NULL, 0},
	{"*", "/metadata/instance/compute", h_instance, NULL, 0},
	{"*", "/metadata/versions", h_versions, NULL, 0},
};
static const struct bc_route appservice_routes[] = {
	{"*", "/msi/token", h_token, NULL, 0},
};

int agent_imds_mount(struct agent *a, struct agent_instance *in, int *tag, struct bc_error *err)
{
	int rc;
	bc_http_set_fallback(in->srv, h_fallback, NULL);
	if (in->netns) {
		if ((rc = bc_http_mount(in->srv, NULL, NULL, imds_routes, sizeof(imds_routes) / sizeof(imds_routes[0]), a)))
			return bc_error_set(err, rc, "cannot mount the metadata routes");
		*tag = TAG_IMDS;
		return BC_OK;
	}
	if ((rc = bc_http_mount(in->srv, NULL, NULL, appservice_routes, 1, a)))
		return bc_error_set(err, rc, "cannot mount the app service route");
	*tag = TAG_APPSERVICE;
	return BC_OK;
}
