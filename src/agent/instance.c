/* The instances this host serves: making one from its sync entry, its namespace or App Service
 * port and secret, its listener, taking it down; looking instances up by resource id or by a
 * control-socket selector; and the status listing and secret rotation the control socket asks
 * for. Which instances exist is the sync's to decide (sync.c). */
#include "agent/agentint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

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
	struct bc_http_listener l = {.fd = -1, .threads = a->cfg.threads ? a->cfg.threads : 4, .ctx = in,
				     .max_connections = 256};
	if ((rc = agent_imds_mount(a, in, &l.tag, err)) != BC_OK)
		return rc;
	if (in->netns) {
		if ((rc = agent_netns_bind(a, in->nsfd, &l.fd, err)) != BC_OK)
			return rc;
		return bc_http_listen(in->srv, &l, &in->port, err);
	}
	if ((rc = appservice_secret(a, in, false, err)) != BC_OK)
		return rc;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", in->port);
	l.address = addr;
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

void agent_instance_free(struct agent_instance *in)
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
void agent_instance_destroy(struct agent *a, struct agent_instance *in)
{
	bc_http_server_stop(in->srv);
	if (in->netns)
		agent_netns_teardown(a, in);
	else
		appservice_forget(a, in->local);
	bc_log_info("agent: instance %s (%s) removed from this host", in->name, in->resource_id);
	agent_instance_free(in);
}

int agent_identities_parse(const json_t *inst, struct agent_identity **out, size_t *n)
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
struct agent_instance *agent_instance_find(struct agent_instance *list, const char *resource_id)
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


/* The key of a sync entry: its resource id, or its name from a server that sent none. */
const char *agent_instance_key(const json_t *v)
{
	const char *rid = bc_json_str(v, "resourceId");
	return rid && rid[0] && strlen(rid) <= BC_LIMIT_RESOURCE_ID ? rid : bc_json_str(v, "name");
}

struct agent_instance *agent_instance_new(struct agent *a, json_t *doc, const char *local)
{
	struct agent_instance *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->agent = a;
	in->nsfd = -1;
	snprintf(in->name, sizeof(in->name), "%s", bc_json_str(doc, "name"));
	snprintf(in->resource_id, sizeof(in->resource_id), "%s", agent_instance_key(doc));
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
	if (agent_identities_parse(doc, &in->ids, &in->nids) != BC_OK) {
		agent_instance_free(in);
		return NULL;
	}
	return in;
}

/* Creates the namespace (or adopts it) and the listener of a new instance. */
int agent_instance_start(struct agent *a, struct agent_instance *in, struct bc_error *err)
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

/* ---- status and control ---- */

json_t *agent_status_json(struct agent *a)
{
	json_t *arr = json_array();
	pthread_mutex_lock(&a->mu);
	for (struct agent_instance *in = a->instances; in; in = in->next) {
		json_t *ids = json_array();
		for (size_t i = 0; i < in->nids; i++) {
			const struct agent_cred *c = agent_cred_find(a, in->ids[i].object_id);
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
