/* The agent: start-up, the metadata endpoint's handlers, instances and their listeners, and the
 * sync loop that keeps instances and identity credentials in line with the server. */
#include "agent/agentint.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

enum { TAG_IMDS = 1, TAG_APPSERVICE = 2 };

#define SYNC_BACKOFF_MAX_S 30

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

/* ---- instances ---- */

/* --adopt KEY=PATH: KEY is the instance's local name (its name when unique on the host) or its
 * resource id (any case). */
static const char *adopt_path(const struct agent *a, const struct agent_instance *in)
{
	size_t n = strlen(in->local), r = strlen(in->resource_id);
	for (const char *const *p = a->cfg.adopt; p && *p; p++) {
		if (!strncmp(*p, in->local, n) && (*p)[n] == '=')
			return *p + n + 1;
		if (r && !strncasecmp(*p, in->resource_id, r) && (*p)[r] == '=')
			return *p + r + 1;
	}
	return NULL;
}

/* The App Service port and secret of an instance: saved ones, else new ones (saved). */
static int appservice_secret(struct agent *a, struct agent_instance *in, bool rotate, struct bc_error *err)
{
	json_t *doc = NULL;
	int rc = agent_json_load(a, "appservice.json", &doc, err);
	if (rc != BC_OK)
		return rc;
	if (!doc && !(doc = json_object()))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	json_t *e = json_object_get(doc, in->local);
	const char *s = e ? bc_json_str(e, "secret") : NULL;
	if (!rotate && s && strlen(s) < sizeof(in->secret)) {
		snprintf(in->secret, sizeof(in->secret), "%s", s);
		if (!in->port)
			in->port = (int)bc_json_int(e, "port", 0);
		json_decref(doc);
		return BC_OK;
	}
	uint8_t raw[AGENT_SECRET_BYTES];
	if (bc_random(raw, sizeof(raw)) != BC_OK) {
		json_decref(doc);
		return bc_error_set(err, BC_ERR_CRYPTO, "no randomness for a secret");
	}
	bc_hex(raw, sizeof(raw), in->secret);
	bc_wipe(raw, sizeof(raw));
	json_object_set_new(doc, in->local, json_pack("{s:s, s:i}", "secret", in->secret, "port", in->port));
	rc = agent_json_save(a, "appservice.json", doc, err);
	json_decref(doc);
	return rc;
}

static int appservice_save_port(struct agent *a, struct agent_instance *in)
{
	json_t *doc = NULL;
	if (agent_json_load(a, "appservice.json", &doc, NULL) != BC_OK || !doc)
		return -1;
	json_object_set_new(doc, in->local, json_pack("{s:s, s:i}", "secret", in->secret, "port", in->port));
	int rc = agent_json_save(a, "appservice.json", doc, NULL);
	json_decref(doc);
	return rc;
}

static void appservice_forget(struct agent *a, const char *name)
{
	json_t *doc = NULL;
	if (agent_json_load(a, "appservice.json", &doc, NULL) != BC_OK || !doc)
		return;
	if (json_object_del(doc, name) == 0)
		if (agent_json_save(a, "appservice.json", doc, NULL) != BC_OK)
			bc_log_warn("agent: cannot save state");
	json_decref(doc);
}

static int instance_listen(struct agent *a, struct agent_instance *in, struct bc_error *err)
{
	int rc;
	if (!(in->srv = bc_http_server_new()))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	bc_http_set_fallback(in->srv, h_fallback, NULL);
	struct bc_http_listener l = {.fd = -1, .threads = a->cfg.threads ? a->cfg.threads : 4, .ctx = in,
				     .max_connections = 256};
	if (in->netns) {
		if ((rc = bc_http_mount(in->srv, NULL, NULL, imds_routes, sizeof(imds_routes) / sizeof(imds_routes[0]), a)))
			return bc_error_set(err, rc, "cannot mount the metadata routes");
		if ((rc = agent_netns_bind(a, in->nsfd, &l.fd, err)) != BC_OK)
			return rc;
		l.tag = TAG_IMDS;
		return bc_http_listen(in->srv, &l, &in->port, err);
	}
	if ((rc = bc_http_mount(in->srv, NULL, NULL, appservice_routes, 1, a)))
		return bc_error_set(err, rc, "cannot mount the app service route");
	if ((rc = appservice_secret(a, in, false, err)) != BC_OK)
		return rc;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", in->port);
	l.address = addr;
	l.tag = TAG_APPSERVICE;
	int saved = in->port;
	rc = bc_http_listen(in->srv, &l, &in->port, err);
	if (rc != BC_OK && saved) { /* the old port is taken: a new one, and a new IDENTITY_ENDPOINT */
		bc_error_clear(err);
		l.address = "127.0.0.1:0";
		rc = bc_http_listen(in->srv, &l, &in->port, err);
	}
	if (rc == BC_OK && in->port != saved)
		appservice_save_port(a, in);
	return rc;
}

static void instance_free(struct agent_instance *in)
{
	if (!in)
		return;
	bc_http_server_free(in->srv);
	if (in->nsfd >= 0)
		close(in->nsfd);
	imds_limiter_release(&in->lim);
	json_decref(in->doc);
	free(in->ids);
	explicit_bzero(in->secret, sizeof(in->secret));
	free(in);
}

/* Stops the listener and removes what the instance had on this host. */
static void instance_destroy(struct agent *a, struct agent_instance *in)
{
	bc_http_server_stop(in->srv);
	if (in->netns)
		agent_netns_teardown(a, in);
	else
		appservice_forget(a, in->local);
	bc_log_info("agent: instance %s (%s) removed from this host", in->name, in->resource_id);
	instance_free(in);
}

static int parse_identities(const json_t *inst, struct agent_identity **out, size_t *n)
{
	const json_t *arr = json_object_get(inst, "identities");
	size_t count = json_is_array(arr) ? json_array_size(arr) : 0;
	*out = NULL;
	*n = 0;
	if (count > AGENT_MAX_IDENTITIES)
		return BC_ERR_LIMIT;
	if (!count)
		return BC_OK;
	struct agent_identity *ids = calloc(count, sizeof(*ids));
	if (!ids)
		return BC_ERR_NOMEM;
	size_t k = 0, i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		const char *oid = bc_json_str(v, "objectId"), *cid = bc_json_str(v, "clientId");
		const char *kind = bc_json_str(v, "kind"), *tid = bc_json_str(v, "tenantId");
		const char *rid = bc_json_str(v, "resourceId");
		if (!oid || !cid || !bc_is_uuid(oid) || !bc_is_uuid(cid) || (tid && strlen(tid) > 36))
			continue;
		struct agent_identity *id = &ids[k++];
		id->system_assigned = kind && bc_streq_ci(kind, "SystemAssigned");
		snprintf(id->object_id, sizeof(id->object_id), "%s", oid);
		snprintf(id->client_id, sizeof(id->client_id), "%s", cid);
		snprintf(id->tenant_id, sizeof(id->tenant_id), "%s", tid ? tid : "");
		snprintf(id->resource_id, sizeof(id->resource_id), "%s", rid ? rid : "");
	}
	*out = ids;
	*n = k;
	return BC_OK;
}

/* An instance is its resource id (ARM ids compare without regard to case): a name is unique only
 * within a resource group, and two instances named alike must never share a listener, a
 * namespace or each other's identities. */
static struct agent_instance *find_instance(struct agent_instance *list, const char *resource_id)
{
	for (struct agent_instance *in = list; in; in = in->next)
		if (bc_streq_ci(in->resource_id, resource_id))
			return in;
	return NULL;
}

static bool selects(const struct agent_instance *in, const char *selector)
{
	return agent_selector_matches(selector, in->name, in->resource_id, in->group);
}

struct agent_instance *agent_instance_lock(struct agent *a, const char *selector, size_t *matches)
{
	struct agent_instance *found = NULL;
	*matches = 0;
	pthread_mutex_lock(&a->mu);
	for (struct agent_instance *in = a->instances; in; in = in->next)
		if (selects(in, selector) && ++*matches == 1)
			found = in;
	if (*matches != 1) {
		pthread_mutex_unlock(&a->mu);
		return NULL;
	}
	return found;
}

json_t *agent_instance_matches(struct agent *a, const char *selector)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&a->mu);
	for (struct agent_instance *in = a->instances; arr && in; in = in->next)
		if (selects(in, selector) && json_array_append_new(arr, json_string(in->resource_id)) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	pthread_mutex_unlock(&a->mu);
	return arr;
}

static bool valid_instance_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > AGENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return s[0] != '.';
}

/* The key of a sync entry: its resource id, or its name from a server that sent none. */
static const char *instance_key(const json_t *v)
{
	const char *rid = bc_json_str(v, "resourceId");
	return rid && rid[0] && strlen(rid) <= BC_LIMIT_RESOURCE_ID ? rid : bc_json_str(v, "name");
}

static struct agent_instance *instance_new(struct agent *a, json_t *doc, const char *local)
{
	struct agent_instance *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->agent = a;
	in->nsfd = -1;
	snprintf(in->name, sizeof(in->name), "%s", bc_json_str(doc, "name"));
	snprintf(in->resource_id, sizeof(in->resource_id), "%s", instance_key(doc));
	snprintf(in->local, sizeof(in->local), "%s", local);
	const char *g = bc_json_str(doc, "resourceGroupName");
	if (g && strlen(g) < sizeof(in->group))
		snprintf(in->group, sizeof(in->group), "%s", g);
	else if (agent_rid_group(in->resource_id, in->group, sizeof(in->group)) != BC_OK)
		in->group[0] = '\0';
	in->doc = json_incref(doc);
	unsigned rate = a->cfg.unlimited ? 0 : a->cfg.rate ? a->cfg.rate : AGENT_DEFAULT_RATE;
	unsigned conc = a->cfg.unlimited ? 0 : a->cfg.concurrency ? a->cfg.concurrency : AGENT_DEFAULT_CONCURRENCY;
	imds_limiter_init(&in->lim, rate, conc);
	in->netns = a->use_netns;
	if (parse_identities(doc, &in->ids, &in->nids) != BC_OK) {
		instance_free(in);
		return NULL;
	}
	return in;
}

/* Creates the namespace (or adopts it) and the listener of a new instance. */
static int instance_start(struct agent *a, struct agent_instance *in, struct bc_error *err)
{
	int rc;
	if (in->netns && (rc = agent_netns_setup(a, in, adopt_path(a, in), err)) != BC_OK)
		return rc;
	if ((rc = instance_listen(a, in, err)) != BC_OK)
		return rc;
	if (in->netns)
		bc_log_info("agent: instance %s (%s) serves 169.254.169.254:80 in %s", in->name, in->resource_id,
			    in->ns_name[0] ? in->ns_name : adopt_path(a, in));
	else
		bc_log_info("agent: instance %s (%s) serves http://127.0.0.1:%d/msi/token (App Service flavour)",
			    in->name, in->resource_id, in->port);
	return BC_OK;
}

/* ---- credentials ---- */

static struct agent_cred *cred_find(struct agent *a, const char *oid)
{
	for (struct agent_cred *c = a->creds; c; c = c->next)
		if (!strcmp(c->object_id, oid))
			return c;
	return NULL;
}

static bool past_half_life(const struct agent_cred *c, int64_t now)
{
	return !c->cert_pem || now >= agent_cred_renew_at(c);
}

/* Seconds until the next certificate comes due (the host's or an identity's), at most cap. */
static int seconds_to_renewal(struct agent *a, int cap)
{
	int64_t now = bc_now(), due = now + cap;
	pthread_mutex_lock(&a->mu);
	if (a->host.cred.cert_pem && agent_cred_renew_at(&a->host.cred) < due)
		due = agent_cred_renew_at(&a->host.cred);
	for (struct agent_cred *c = a->creds; c; c = c->next)
		if (c->cert_pem && agent_cred_renew_at(c) < due)
			due = agent_cred_renew_at(c);
	pthread_mutex_unlock(&a->mu);
	return due - now < 1 ? 1 : (int)(due - now);
}

static bool instances_hold(const struct agent_instance *in, const char *object_id)
{
	for (; in; in = in->next)
		for (size_t i = 0; i < in->nids; i++)
			if (!strcmp(in->ids[i].object_id, object_id))
				return true;
	return false;
}

/* Unlinks the credentials that no instance (of a->instances or of the list extra) holds and
 * removes their files, under a->mu: an instance never looks gone (agent status) while the keys
 * of its identities are still on disk. Returns them for creds_free_gone. */
static struct agent_cred *creds_unlink_unwanted(struct agent *a, const struct agent_instance *extra)
{
	struct agent_cred *gone = NULL;
	for (struct agent_cred **pp = &a->creds; *pp;) {
		struct agent_cred *c = *pp;
		if (instances_hold(a->instances, c->object_id) || instances_hold(extra, c->object_id)) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		c->next = gone;
		gone = c;
		agent_cred_remove_files(a, c->object_id);
	}
	return gone;
}

/* Forgets the cached tokens of unlinked credentials and frees them (without a->mu). */
static void creds_free_gone(struct agent *a, struct agent_cred *gone)
{
	while (gone) {
		struct agent_cred *c = gone;
		gone = c->next;
		tc_forget(a->tc, c->object_id);
		bc_log_info("agent: identity %s left this host; its key is forgotten", c->object_id);
		agent_cred_release(c);
		free(c);
	}
}

/* Issues missing and renews half-expired identity certificates; forgets unwanted ones. Returns
 * false when something failed and should be retried. */
static bool creds_reconcile(struct agent *a, bool issue)
{
	bool ok = true;
	struct agent_cred *gone = NULL;
	char todo[AGENT_MAX_INSTANCES][37];
	size_t ntodo = 0;
	int64_t now = bc_now();

	pthread_mutex_lock(&a->mu);
	for (struct agent_cred *c = a->creds; c; c = c->next)
		c->wanted = false;
	for (struct agent_instance *in = a->instances; in; in = in->next)
		for (size_t i = 0; i < in->nids; i++) {
			struct agent_identity *id = &in->ids[i];
			struct agent_cred *c = cred_find(a, id->object_id);
			if (c) {
				c->wanted = true;
				memcpy(c->client_id, id->client_id, sizeof(c->client_id));
				memcpy(c->tenant_id, id->tenant_id, sizeof(c->tenant_id));
			}
			if (issue && (!c || past_half_life(c, now)) && ntodo < AGENT_MAX_INSTANCES) {
				bool dup = false;
				for (size_t k = 0; k < ntodo && !dup; k++)
					dup = !strcmp(todo[k], id->object_id);
				if (!dup)
					memcpy(todo[ntodo++], id->object_id, 37);
			}
		}
	gone = creds_unlink_unwanted(a, NULL);
	pthread_mutex_unlock(&a->mu);
	creds_free_gone(a, gone);
	for (size_t k = 0; k < ntodo; k++) {
		struct agent_cred fresh = {0};
		struct bc_error err = {0};
		memcpy(fresh.object_id, todo[k], 37);
		if (agent_identity_cert(a, todo[k], &fresh, &err) != BC_OK ||
		    agent_cred_save(a, &fresh, &err) != BC_OK) {
			bc_log_warn("agent: no certificate for identity %s yet: %s", todo[k], err.msg);
			agent_cred_release(&fresh);
			ok = false;
			continue;
		}
		pthread_mutex_lock(&a->mu);
		struct agent_cred *c = cred_find(a, todo[k]);
		if (!c && (c = calloc(1, sizeof(*c)))) {
			memcpy(c->object_id, todo[k], 37);
			c->next = a->creds;
			a->creds = c;
		}
		if (c) {
			agent_cred_release(c);
			c->key = fresh.key;
			c->cert_pem = fresh.cert_pem;
			memcpy(c->x5t256, fresh.x5t256, sizeof(c->x5t256));
			c->not_before = fresh.not_before;
			c->not_after = fresh.not_after;
			c->issued_at = fresh.issued_at;
			c->wanted = true;
			/* client and tenant ids from the instances */
			for (struct agent_instance *in = a->instances; in; in = in->next)
				for (size_t i = 0; i < in->nids; i++)
					if (!strcmp(in->ids[i].object_id, c->object_id)) {
						memcpy(c->client_id, in->ids[i].client_id, 37);
						memcpy(c->tenant_id, in->ids[i].tenant_id, 37);
					}
		} else {
			agent_cred_release(&fresh);
		}
		pthread_mutex_unlock(&a->mu);
		bc_log_info("agent: certificate for identity %s issued", todo[k]);
	}
	return ok;
}

/* Renews the host certificate when due; false when that failed and should be retried. */
static bool host_cert_maintain(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	bool due = past_half_life(&a->host.cred, bc_now());
	pthread_mutex_unlock(&a->mu);
	if (!due)
		return true;
	struct bc_error err = {0};
	if (agent_host_cert_renew(a, &err) != BC_OK) {
		bc_log_warn("agent: host certificate renewal failed: %s", err.msg);
		return false;
	}
	bc_log_info("agent: host certificate renewed");
	return true;
}

/* ---- sync ---- */

static void lower_key(const char *key, char out[BC_LIMIT_RESOURCE_ID + 1])
{
	size_t i = 0;
	for (; key[i] && i < BC_LIMIT_RESOURCE_ID; i++)
		out[i] = (char)tolower((unsigned char)key[i]);
	out[i] = '\0';
}

/* names.json: {"<resource id, lower case>": "<local name>"}. When it is absent (state of an older
 * agent, which named everything by the instance's name), *legacy gets the names that state used:
 * the namespaces of netns.json (less the prefix) and the keys of appservice.json. */
static json_t *names_load(struct agent *a, json_t **legacy)
{
	json_t *saved = NULL, *doc = NULL;
	const char *k, *prefix = a->cfg.netns_prefix ? a->cfg.netns_prefix : "badge-";
	json_t *v;
	*legacy = NULL;
	if (agent_json_load(a, "names.json", &saved, NULL) == BC_OK && json_is_object(saved))
		return saved;
	json_decref(saved);
	*legacy = json_array();
	if (agent_json_load(a, "netns.json", &doc, NULL) == BC_OK && json_is_object(doc))
		json_object_foreach(doc, k, v)
			if (!strncmp(k, prefix, strlen(prefix)))
				json_array_append_new(*legacy, json_string(k + strlen(prefix)));
	json_decref(doc);
	doc = NULL;
	if (agent_json_load(a, "appservice.json", &doc, NULL) == BC_OK && json_is_object(doc))
		json_object_foreach(doc, k, v)
			json_array_append_new(*legacy, json_string(k));
	json_decref(doc);
	return json_object();
}

/* The valid entries of a sync (one per resource id) with their local names: the one a live
 * instance has, the saved one, or a new one (naming.c). Called by the only thread that changes
 * a->instances, so it reads the list without the lock. */
static int sync_names(struct agent *a, json_t *insts, struct agent_naming *names, json_t **docs, size_t *count)
{
	json_t *legacy = NULL, *saved = names_load(a, &legacy), *v, *keep;
	const char *leg[AGENT_MAX_INSTANCES];
	size_t nleg = 0, n = 0, i;
	char key[BC_LIMIT_RESOURCE_ID + 1];
	int rc = BC_OK;
	json_array_foreach(legacy, i, v)
		if (nleg < AGENT_MAX_INSTANCES && json_is_string(v))
			leg[nleg++] = json_string_value(v);
	json_array_foreach(insts, i, v) {
		const char *name = bc_json_str(v, "name");
		if (i >= AGENT_MAX_INSTANCES || !valid_instance_name(name))
			continue;
		const char *rid = instance_key(v);
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = bc_streq_ci(names[k].resource_id, rid);
		if (dup)
			continue;
		const struct agent_instance *in = find_instance(a->instances, rid);
		lower_key(rid, key);
		const char *local = in ? in->local : bc_json_str(saved, key);
		names[n].name = name;
		names[n].resource_id = rid;
		if (!local || strlen(local) >= sizeof(names[n].local))
			local = "";
		snprintf(names[n].local, sizeof(names[n].local), "%s", local);
		docs[n++] = v;
	}
	if (agent_names_assign(names, n, leg, nleg) != BC_OK)
		bc_log_warn("agent: some instances got no name on this host");
	/* what is kept: the names of this sync's instances; those of instances gone are free again */
	keep = json_object();
	for (size_t k = 0; keep && k < n; k++)
		if (names[k].local[0]) {
			lower_key(names[k].resource_id, key);
			json_object_set_new(keep, key, json_string(names[k].local));
		}
	if (!keep || !saved)
		rc = BC_ERR_NOMEM;
	else if (legacy || !json_equal(saved, keep)) {
		struct bc_error err = {0};
		if ((rc = agent_json_save(a, "names.json", keep, &err)) != BC_OK)
			bc_log_warn("agent: cannot save the instances' names: %s", err.msg);
	}
	json_decref(keep);
	json_decref(legacy);
	json_decref(saved);
	*count = n;
	return rc;
}

/* Brings instances in line with a sync document. Returns false when something must be retried. */
static bool apply_sync(struct agent *a, json_t *doc, bool issue)
{
	bool ok = true;
	json_t *insts = json_object_get(doc, "instances");
	struct agent_instance *fresh = NULL, *gone = NULL;
	size_t nnames = 0, cap = json_array_size(insts) ? json_array_size(insts) : 1;
	/* names first, saved before any namespace is made with them: a restart finds the same ones */
	struct agent_naming *names = calloc(cap, sizeof(*names));
	json_t **docs = calloc(cap, sizeof(*docs));
	if (!names || !docs || sync_names(a, insts, names, docs, &nnames) != BC_OK) {
		free(names);
		free(docs);
		return false; /* nothing changed; retried */
	}

	pthread_mutex_lock(&a->mu);
	a->revision = bc_json_int(doc, "revision", a->revision);
	json_t *vaults = json_object_get(doc, "vaults");
	json_decref(a->vaults);
	a->vaults = json_is_array(vaults) ? json_incref(vaults) : json_array();
	for (struct agent_instance *in = a->instances; in; in = in->next)
		in->seen = false;
	for (size_t k = 0; k < nnames; k++) {
		json_t *v = docs[k];
		struct agent_instance *in = find_instance(a->instances, names[k].resource_id);
		if (in) {
			struct agent_identity *ids;
			size_t n;
			if (parse_identities(v, &ids, &n) == BC_OK) {
				free(in->ids);
				in->ids = ids;
				in->nids = n;
			}
			json_decref(in->doc);
			in->doc = json_incref(v);
			in->seen = true;
		} else if (!names[k].local[0]) {
			ok = false;
		} else if ((in = instance_new(a, v, names[k].local))) {
			in->seen = true;
			in->next = fresh;
			fresh = in;
		}
	}
	for (struct agent_instance **pp = &a->instances; *pp;) {
		struct agent_instance *in = *pp;
		if (in->seen) {
			pp = &in->next;
			continue;
		}
		*pp = in->next;
		in->next = gone;
		gone = in;
	}
	struct agent_cred *gone_creds = creds_unlink_unwanted(a, fresh);
	pthread_mutex_unlock(&a->mu);
	creds_free_gone(a, gone_creds);
	free(names);
	free(docs);

	while (gone) {
		struct agent_instance *in = gone;
		gone = in->next;
		instance_destroy(a, in);
	}
	while (fresh) {
		struct agent_instance *in = fresh;
		struct bc_error err = {0};
		fresh = in->next;
		if (instance_start(a, in, &err) != BC_OK) {
			bc_log_error("agent: cannot start instance %s (%s): %s", in->name, in->resource_id, err.msg);
			instance_free(in);
			ok = false;
			continue;
		}
		pthread_mutex_lock(&a->mu);
		in->next = a->instances;
		a->instances = in;
		pthread_mutex_unlock(&a->mu);
	}
	/* hosts files follow the vault list */
	for (struct agent_instance *in = a->instances; in; in = in->next)
		if (in->netns && in->ns_name[0]) {
			struct bc_error err = {0};
			if (agent_netns_write_hosts(a, in, &err) != BC_OK)
				bc_log_warn("agent: hosts file of %s: %s", in->name, err.msg);
		}
	if (!creds_reconcile(a, issue))
		ok = false;
	return ok;
}

/* Waits up to s seconds or until stop; returns true when stopping. */
static bool wait_or_stop(struct agent *a, int s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s;
	pthread_mutex_lock(&a->mu);
	while (!a->stopping)
		if (pthread_cond_timedwait(&a->stop_cv, &a->mu, &ts) == ETIMEDOUT)
			break;
	bool stop = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return stop;
}

static bool stopping(struct agent *a)
{
	pthread_mutex_lock(&a->mu);
	bool s = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return s;
}

static void *sync_thread(void *arg)
{
	struct agent *a = arg;
	int backoff = 1;
	bool retry = false;
	int timeout = a->cfg.sync_timeout_s > 0 ? a->cfg.sync_timeout_s : 30;
	if (timeout > 60)
		timeout = 60;
	while (!stopping(a)) {
		char path[128];
		long status = 0;
		json_t *doc = NULL;
		struct bc_error err = {0};
		pthread_mutex_lock(&a->mu);
		long long since = (long long)a->revision;
		pthread_mutex_unlock(&a->mu);
		/* after a failure, ask for the whole state at once (no revision, timeout 0) rather than
		 * waiting for a change; a long poll ends in time for the next certificate renewal */
		if (retry)
			snprintf(path, sizeof(path), "/badge/agent/v1/sync?timeout=0");
		else
			snprintf(path, sizeof(path), "/badge/agent/v1/sync?since=%lld&timeout=%d", since,
				 seconds_to_renewal(a, timeout));
		int rc = agent_call(a, "GET", path, NULL, (timeout + 15) * 1000L, &status, &doc, &err);
		if (stopping(a)) {
			json_decref(doc);
			break;
		}
		if (rc == BC_OK && status == 200 && json_is_object(doc)) {
			backoff = 1;
			pthread_mutex_lock(&a->mu);
			a->last_sync_ok = bc_now();
			pthread_mutex_unlock(&a->mu);
			int64_t rev = bc_json_int(doc, "revision", -1);
			if (rev != since || retry) {
				struct bc_error serr = {0};
				if (agent_json_save(a, "sync.json", doc, &serr) != BC_OK)
					bc_log_warn("agent: cannot save the sync state: %s", serr.msg);
				retry = !apply_sync(a, doc, true);
				bc_log_debug("agent: synced revision %lld", (long long)rev);
			} else {
				retry = !creds_reconcile(a, true); /* renewals come due without a change */
			}
			if (!host_cert_maintain(a))
				retry = true;
			json_decref(doc);
			if (retry && wait_or_stop(a, backoff))
				break;
			if (retry)
				backoff = backoff * 2 > SYNC_BACKOFF_MAX_S ? SYNC_BACKOFF_MAX_S : backoff * 2;
			continue;
		}
		bc_metrics_count("agent_sync_failures", 1);
		if (rc == BC_OK)
			bc_log_warn("agent: sync answered %ld", status);
		else
			bc_log_warn("agent: sync failed: %s", err.msg);
		json_decref(doc);
		if (wait_or_stop(a, backoff))
			break;
		backoff = backoff * 2 > SYNC_BACKOFF_MAX_S ? SYNC_BACKOFF_MAX_S : backoff * 2;
	}
	return NULL;
}

/* ---- status and control ---- */

json_t *agent_status_json(struct agent *a)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&a->mu);
	for (struct agent_instance *in = a->instances; in; in = in->next) {
		json_t *ids = json_array();
		for (size_t i = 0; i < in->nids; i++) {
			const struct agent_cred *c = cred_find(a, in->ids[i].object_id);
			json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "objectId", in->ids[i].object_id, "clientId",
					      in->ids[i].client_id, "systemAssigned", in->ids[i].system_assigned,
					      "credential", c != NULL);
			if (c && o) {
				json_object_set_new(o, "notAfter", json_integer(c->not_after));
				json_object_set_new(o, "renewAt", json_integer(agent_cred_renew_at(c)));
				bc_json_set_str(o, "thumbprint", c->x5t256);
			}
			json_array_append_new(ids, o);
		}
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "name", in->name, "resourceId", in->resource_id,
				      "resourceGroup", in->group, "localName", in->local, "isolation",
				      in->netns ? "netns" : "appservice", "identities", ids);
		if (in->netns)
			bc_json_set_str(o, "namespace", in->ns_name[0] ? in->ns_name : "(adopted)");
		else {
			char ep[64];
			snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/msi/token", in->port);
			bc_json_set_str(o, "endpoint", ep);
		}
		json_array_append_new(arr, o);
	}
	json_t *st = json_pack("{s:I, s:s, s:s, s:o, s:I, s:I, s:s}", "revision", (json_int_t)a->revision, "hostName",
			       a->host.host_name, "hostId", a->host.host_id, "instances", arr, "hostNotAfter",
			       (json_int_t)a->host.cred.not_after, "hostRenewAt",
			       (json_int_t)agent_cred_renew_at(&a->host.cred), "server",
			       a->nservers ? a->servers[a->active] : "");
	if (st && a->ops_srv) {
		bc_json_set_str(st, "opsEndpoint", a->ops_url);
	}
	pthread_mutex_unlock(&a->mu);
	return st;
}

int agent_rotate_secret(struct agent *a, const char *selector, struct bc_error *err)
{
	size_t matches;
	struct agent_instance *in = agent_instance_lock(a, selector, &matches);
	if (!in)
		return matches ? bc_error_set(err, BC_ERR_CONFLICT, "%zu instances match %s on this host", matches,
					      selector)
			       : bc_error_set(err, BC_ERR_NOT_FOUND, "no such instance on this host");
	int rc = in->netns ? bc_error_set(err, BC_ERR_INVALID, "instance %s is isolated by its namespace", in->name)
			   : appservice_secret(a, in, true, err);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- lifecycle ---- */

int agent_new(struct agent **out, const struct agent_config *cfg, struct bc_error *err)
{
	if (!cfg->data_dir)
		return bc_error_set(err, BC_ERR_INVALID, "a data dir is required");
	struct agent *a = calloc(1, sizeof(*a));
	if (!a)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	a->cfg = *cfg;
	if ((size_t)snprintf(a->dir, sizeof(a->dir), "%s", cfg->data_dir) >= sizeof(a->dir)) {
		free(a);
		return bc_error_set(err, BC_ERR_LIMIT, "data dir path too long");
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->stop_cv, NULL);
	a->ctl_fd = -1;
	a->stop_pipe[0] = a->stop_pipe[1] = -1;
	a->original_netns = -1;
	*out = a;
	return BC_OK;
}

static int choose_isolation(struct agent *a, struct bc_error *err)
{
	switch (a->cfg.isolation) {
	case AGENT_ISOLATION_NETNS:
		if (geteuid() != 0)
			return bc_error_set(err, BC_ERR_FORBIDDEN, "network namespace isolation needs root");
		a->use_netns = true;
		break;
	case AGENT_ISOLATION_APPSERVICE:
		a->use_netns = false;
		break;
	default:
		a->use_netns = geteuid() == 0;
	}
	return BC_OK;
}

/* Returns true when the server list changed (to be saved). */
static bool settle_names(struct agent *a)
{
	struct agent_host *h = &a->host;
	bool changed = a->cfg.server_url && strcmp(a->cfg.server_url, h->server_url) != 0;
	if (changed) /* the length was checked by agent_start */
		snprintf(h->server_url, sizeof(h->server_url), "%s", a->cfg.server_url);
	if (a->cfg.domain)
		snprintf(h->domain, sizeof(h->domain), "%s", a->cfg.domain);
	if (!h->domain[0])
		snprintf(h->domain, sizeof(h->domain), "badge.internal");
	if (a->cfg.management_resource)
		snprintf(h->management_resource, sizeof(h->management_resource), "%s", a->cfg.management_resource);
	if (!h->management_resource[0])
		snprintf(h->management_resource, sizeof(h->management_resource), "https://management.%s/", h->domain);
	return changed;
}

int agent_start(struct agent *a, struct bc_error *err)
{
	char path[PATH_MAX];
	bool enrolled = false;
	json_t *cached = NULL;
	int rc;
	if ((rc = choose_isolation(a, err)) != BC_OK)
		return rc;
	if ((rc = bc_mkdir_p(a->dir, 0700, err)) != BC_OK)
		return rc;
	if ((size_t)snprintf(path, sizeof(path), "%s/identities", a->dir) >= sizeof(path))
		return bc_error_set(err, BC_ERR_LIMIT, "data dir path too long");
	if ((rc = bc_mkdir_p(path, 0700, err)) != BC_OK)
		return rc;
	struct stat sb;
	if (agent_state_path(a, "ca.pem", path, sizeof(path)) == BC_OK && stat(path, &sb) == 0 && sb.st_size > 0)
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", path);
	else if (a->cfg.ca_file)
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", a->cfg.ca_file);
	else if (getenv("SSL_CERT_FILE"))
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", getenv("SSL_CERT_FILE"));
	a->started_at = bc_now();
	a->original_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (pipe2(a->stop_pipe, O_CLOEXEC) != 0)
		return bc_error_set(err, BC_ERR_IO, "pipe: %s", strerror(errno));
	if ((rc = agent_host_load(a, &enrolled, err)) != BC_OK)
		return bc_error_wrap(err, "loading the host credential");
	if (a->cfg.server_url && strlen(a->cfg.server_url) >= sizeof(a->host.server_url))
		return bc_error_set(err, BC_ERR_LIMIT, "server URL list too long");
	if ((rc = agent_servers_set(a, a->cfg.server_url ? a->cfg.server_url : a->host.server_url, err)) != BC_OK)
		return enrolled || a->cfg.server_url ? rc : agent_enroll(a, err); /* enrol says what is missing */
	if (!enrolled) {
		if ((rc = agent_enroll(a, err)) != BC_OK)
			return rc;
	} else if (a->cfg.join_token) {
		bc_log_info("agent: already enrolled as %s; the join token is not used", a->host.host_name);
	}
	if (settle_names(a) && (rc = agent_host_save(a, err)) != BC_OK)
		return bc_error_wrap(err, "saving the server list");
	if ((rc = agent_creds_load(a, err)) != BC_OK)
		return rc;
	if ((rc = tc_new(&a->tc, agent_fetch_token, a, 0)) != BC_OK)
		return bc_error_set(err, rc, "out of memory");
	/* serve what the last sync said at once: a restart during a server outage still works */
	if (agent_json_load(a, "sync.json", &cached, NULL) == BC_OK && json_is_object(cached))
		apply_sync(a, cached, false);
	json_decref(cached);
	if ((rc = agent_ctl_start(a, err)) != BC_OK)
		return rc;
	if ((rc = agent_ops_start(a, err)) != BC_OK)
		return rc;
	if (pthread_create(&a->sync_thread, NULL, sync_thread, a) != 0)
		return bc_error_set(err, BC_ERR_NOMEM, "cannot start the sync thread");
	a->sync_running = true;
	bc_log_info("agent: host %s running (%s isolation), data dir %s", a->host.host_name,
		    a->use_netns ? "netns" : "app service", a->dir);
	return BC_OK;
}

void agent_stop(struct agent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->stop_cv);
	pthread_mutex_unlock(&a->mu);
	if (a->stop_pipe[1] >= 0)
		(void)!write(a->stop_pipe[1], "x", 1);
	agent_ctl_stop(a);
	agent_ops_stop(a);
	for (struct agent_instance *in = a->instances; in; in = in->next)
		bc_http_server_stop(in->srv);
	if (a->sync_running) {
		/* a long poll in flight ends within its timeout; do not hold the process that long */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(a->sync_thread, NULL, &ts) == 0)
			a->sync_running = false;
	}
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	if (a->sync_running)
		return; /* still inside a request: leave it all to process exit */
	while (a->instances) {
		struct agent_instance *in = a->instances;
		a->instances = in->next;
		instance_free(in);
	}
	while (a->creds) {
		struct agent_cred *c = a->creds;
		a->creds = c->next;
		agent_cred_release(c);
		free(c);
	}
	agent_cred_release(&a->host.cred);
	if (a->host_token) {
		bc_wipe(a->host_token, strlen(a->host_token));
		free(a->host_token);
	}
	json_decref(a->vaults);
	bc_http_server_free(a->ops_srv);
	tc_free(a->tc);
	for (int i = 0; i < 2; i++)
		if (a->stop_pipe[i] >= 0)
			close(a->stop_pipe[i]);
	if (a->original_netns >= 0)
		close(a->original_netns);
	pthread_cond_destroy(&a->stop_cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int agent_run(const struct agent_config *cfg, struct bc_error *err)
{
	struct agent *a = NULL;
	sigset_t set;
	int sig, rc;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = agent_new(&a, cfg, err)) != BC_OK)
		return rc;
	if ((rc = agent_start(a, err)) != BC_OK) {
		agent_stop(a);
		agent_free(a);
		return rc;
	}
	sigwait(&set, &sig);
	bc_log_info("agent: stopping on signal %d", sig);
	agent_stop(a);
	agent_free(a);
	return BC_OK;
}
