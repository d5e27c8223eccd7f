/* The sync loop: one thread long-polls the server for the host's instances and brings the
 * instances (instance.c), their local names (naming.c) and the identity credentials in line with
 * what it answers, renewing the host's and the identities' certificates as they come due. */
#include "agent/agentint.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

#define SYNC_BACKOFF_MAX_S 30

/* ---- credentials ---- */

struct agent_cred *agent_cred_find(struct agent *a, const char *oid)
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
			struct agent_cred *c = agent_cred_find(a, id->object_id);
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
		struct agent_cred *c = agent_cred_find(a, todo[k]);
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
		const char *rid = agent_instance_key(v);
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = bc_streq_ci(names[k].resource_id, rid);
		if (dup)
			continue;
		const struct agent_instance *in = agent_instance_find(a->instances, rid);
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
bool agent_sync_apply(struct agent *a, json_t *doc, bool issue)
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
		struct agent_instance *in = agent_instance_find(a->instances, names[k].resource_id);
		if (in) {
			struct agent_identity *ids;
			size_t n;
			if (agent_identities_parse(v, &ids, &n) == BC_OK) {
				free(in->ids);
				in->ids = ids;
				in->nids = n;
			}
			json_decref(in->doc);
			in->doc = json_incref(v);
			in->seen = true;
		} else if (!names[k].local[0]) {
			ok = false;
		} else if ((in = agent_instance_new(a, v, names[k].local))) {
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
		agent_instance_destroy(a, in);
	}
	while (fresh) {
		struct agent_instance *in = fresh;
		struct bc_error err = {0};
		fresh = in->next;
		if (agent_instance_start(a, in, &err) != BC_OK) {
			bc_log_error("agent: cannot start instance %s (%s): %s", in->name, in->resource_id, err.msg);
			agent_instance_free(in);
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

void *agent_sync_thread(void *arg)
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
				retry = !agent_sync_apply(a, doc, true);
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

