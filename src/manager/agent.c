/* The server side of the agent protocol (docs/agent-protocol.md): enrolment with a one-time
 * join token, the sync long poll with a revision per host, identity and host certificates. */
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/pki.h"
#include "core/util.h"
#include "manager/mgr_int.h"

static void agent_error(struct bc_http_res *res, int status, const char *code, const char *msg)
{
	arm_error(res, status, code, "%s", msg);
}

static json_t *agent_body(struct bc_http_req *req, struct bc_http_res *res)
{
	json_t *j = NULL;
	struct bc_error err = {0};
	if (bc_json_parse(req->body, req->body_len, 0, &j, &err) != BC_OK || !json_is_object(j)) {
		json_decref(j);
		arm_error(res, 400, "InvalidRequestContent", "the body must be a JSON object: %s", err.msg);
		return NULL;
	}
	return j;
}

static int not_after(const char *pem, int64_t *out, struct bc_error *err)
{
	X509 *x = NULL;
	int64_t nb = 0;
	int st = bc_x509_parse_pem(pem, strlen(pem), &x, err);
	if (st == BC_OK)
		st = bc_x509_validity(x, &nb, out, err);
	X509_free(x);
	return st;
}

/* ---- enrol ---- */

struct enroll {
	const char *token, *csr, *hostname;
	struct mgr_res host;
	struct bc_buf cert;
	char cred[37];
	char code[40];
};

static int enroll_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct enroll *e = ctx;
	char hash[65], *host_key = NULL, when[32];
	int64_t expires = 0, used = 0;
	bool found = false;
	int st;

	mgr_res_release(&e->host);
	bc_buf_release(&e->cert);
	e->code[0] = '\0';
	if (mgr_token_hash(e->token, hash) != BC_OK)
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot hash the join token");
	st = bc_store_get_text(m->st, txn,
			       !strcmp(bc_store_backend(m->st), "postgres")
				       ? "SELECT host FROM mgr_join_tokens WHERE hash = ? FOR UPDATE"
				       : "SELECT host FROM mgr_join_tokens WHERE hash = ?",
			       (struct bc_param[]){BC_PTEXT(hash)}, 1, &host_key, err);
	if (st == BC_OK && host_key)
		st = bc_store_get_int(m->st, txn, "SELECT expires FROM mgr_join_tokens WHERE hash = ?",
				      (struct bc_param[]){BC_PTEXT(hash)}, 1, &expires, &found, err);
	if (st == BC_OK && host_key)
		st = bc_store_get_int(m->st, txn, "SELECT used FROM mgr_join_tokens WHERE hash = ?",
				      (struct bc_param[]){BC_PTEXT(hash)}, 1, &used, &found, err);
	if (st != BC_OK)
		goto done;
	if (!host_key || used != 0 || expires < bc_now()) {
		snprintf(e->code, sizeof(e->code), "InvalidJoinToken");
		st = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "the join token is unknown, used or expired");
		goto done;
	}
	st = bc_store_exec(m->st, txn, "UPDATE mgr_join_tokens SET used = ? WHERE hash = ?",
			   (struct bc_param[]){BC_PINT(bc_now()), BC_PTEXT(hash)}, 2, NULL, NULL, NULL, err);
	if (st == BC_OK)
		st = mgr_res_get(m, txn, host_key, true, &e->host, err);
	if (st != BC_OK)
		goto done;
	if (!e->host.found) {
		snprintf(e->code, sizeof(e->code), "InvalidJoinToken");
		st = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "the host of this join token no longer exists");
		goto done;
	}
	if (!e->host.principal[0]) {
		struct dir_principal pr;
		char dn[BC_LIMIT_NAME + 16];
		snprintf(dn, sizeof(dn), "badge-host-%s", e->host.name);
		st = dir_principal_create(m->dir, txn, m->tenant, DIR_TYPE_APP, dn, "", &pr, err);
		if (st != BC_OK)
			goto done;
		snprintf(e->host.principal, sizeof(e->host.principal), "%s", pr.object_id);
		snprintf(e->host.client, sizeof(e->host.client), "%s", pr.app_id);
	} else {
		/* a re-enrolment replaces the host's previous key */
		st = dir_credential_remove_host(m->dir, txn, e->host.principal, e->host.id, err);
		if (st == BC_ERR_NOT_FOUND)
			st = BC_OK;
		if (st != BC_OK)
			goto done;
	}
	st = dir_issue_cert(m->dir, txn, e->host.principal, e->host.id, e->csr, m->host_cert_lifetime_s, &e->cert,
			    e->cred, err);
	if (st != BC_OK) {
		if (st == BC_ERR_INVALID || st == BC_ERR_CRYPTO)
			snprintf(e->code, sizeof(e->code), "InvalidCsr");
		goto done;
	}
	json_t *props = json_object_get(e->host.body, "properties");
	mgr_iso8601(bc_now(), when);
	json_object_set_new(props, "state", json_string("Enrolled"));
	json_object_set_new(props, "enrolledOn", json_string(when));
	if (e->hostname)
		json_object_set_new(props, "hostname", json_string(e->hostname));
	st = mgr_res_put(m, txn, &e->host, NULL, NULL, NULL, NULL, false, err);
	if (st == BC_OK)
		st = mgr_host_bump(m, txn, e->host.key, err);
done:
	free(host_key);
	return st;
}

static void enroll(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct mgr *m = ctx;
	struct bc_error err = {0};
	struct enroll e;
	json_t *body;
	memset(&e, 0, sizeof(e));
	if (!(body = agent_body(req, res)))
		return;
	e.token = bc_json_str(body, "joinToken");
	e.csr = bc_json_str(body, "csr");
	e.hostname = bc_json_str(body, "hostname");
	if (!e.token || !e.csr || strlen(e.csr) > BC_LIMIT_CERT_BYTES || strlen(e.token) > 256) {
		agent_error(res, 400, "InvalidRequestContent", "joinToken and csr (PEM) are required");
		goto out;
	}
	if (e.hostname && strlen(e.hostname) > 255)
		e.hostname = NULL;
	if (mgr_txn(m, enroll_txn, &e, &err) != BC_OK) {
		if (!strcmp(e.code, "InvalidJoinToken"))
			agent_error(res, 401, e.code, err.msg);
		else if (e.code[0])
			agent_error(res, 400, e.code, err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	bc_log_info("manager: host %s enrolled (principal %s)", e.host.name, e.host.principal);
	bc_http_res_json(res, 200,
			 json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "hostName", e.host.name, "hostId", e.host.id,
				   "tenantId", m->tenant, "clientId", e.host.client, "objectId", e.host.principal,
				   "certificate", bc_buf_cstr(&e.cert), "caCertificate", m->ca_pem));
out:
	mgr_res_release(&e.host);
	bc_buf_release(&e.cert);
	json_decref(body);
}

/* ---- host-authenticated calls ---- */

struct host_ctx {
	char key[BC_LIMIT_RESOURCE_ID + 1];
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char name[BC_LIMIT_NAME + 1];
	char oid[37];
	bool found;
};

static int host_row(void *ctx, const struct bc_row *row)
{
	struct host_ctx *h = ctx;
	snprintf(h->key, sizeof(h->key), "%s", bc_row_text(row, 0));
	snprintf(h->id, sizeof(h->id), "%s", bc_row_text(row, 1));
	snprintf(h->name, sizeof(h->name), "%s", bc_row_text(row, 2));
	h->found = true;
	return 1;
}

static bool host_auth(struct mgr *m, struct bc_http_req *req, struct bc_http_res *res, struct host_ctx *h)
{
	struct arm a;
	struct bc_error err = {0};
	const char *auth = bc_http_header(req, "Authorization");
	memset(h, 0, sizeof(*h));
	memset(&a, 0, sizeof(a));
	if (!auth || strncasecmp(auth, "Bearer ", 7)) {
		agent_error(res, 401, "AuthenticationFailed", "a bearer token of the host principal is required");
		return false;
	}
	auth += 7;
	const char *auds[1] = {m->management_resource};
	if (dir_token_verify(m->dir, auth, strlen(auth), NULL, auds, 1, &a.claims, &err) != BC_OK) {
		bc_log(BC_LOG_INFO, req->request_id, "manager: agent token rejected: %s", err.msg);
		agent_error(res, 401, "InvalidAuthenticationToken", "The access token is invalid.");
		return false;
	}
	if (bc_store_exec(m->st, NULL, "SELECT key, id, name FROM mgr_resources WHERE type = ? AND principal = ?",
			  (struct bc_param[]){BC_PTEXT(MGR_T_HOST), BC_PTEXT(a.claims.oid)}, 2, host_row, h, NULL,
			  &err) != BC_OK) {
		arm_error_from(res, &err);
		return false;
	}
	if (!h->found) {
		agent_error(res, 403, "AuthorizationFailed", "only host principals may use the agent protocol");
		return false;
	}
	snprintf(h->oid, sizeof(h->oid), "%s", a.claims.oid);
	return true;
}

static int rev_of(struct mgr *m, const char *host_key, int64_t *rev, struct bc_error *err)
{
	bool found = false;
	*rev = 0;
	return bc_store_get_int(m->st, NULL, "SELECT rev FROM mgr_host_rev WHERE host = ?",
				(struct bc_param[]){BC_PTEXT(host_key)}, 1, rev, &found, err);
}

struct sync_ctx {
	struct mgr *m;
	json_t *arr;
};

static int inst_row(void *ctx, const struct bc_row *row)
{
	struct sync_ctx *s = ctx;
	const char *id = bc_row_text(row, 0), *principal = bc_row_text(row, 2), *client = bc_row_text(row, 3);
	json_t *body = json_loads(bc_row_text(row, 4), 0, NULL);
	struct mgr_rid rid;
	struct bc_error err;
	if (!body || mgr_rid_parse(id, &rid, &err) != BC_OK) {
		json_decref(body);
		return 0;
	}
	json_t *ids = json_array();
	if (principal && *principal)
		json_array_append_new(ids, json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "SystemAssigned", "objectId", principal,
						     "clientId", client ? client : "", "resourceId", id, "tenantId",
						     s->m->tenant));
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(json_object_get(body, "identity"), "userAssignedIdentities"), k, v)
	{
		json_array_append_new(ids, json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "UserAssigned", "objectId",
						     bc_json_str(v, "principalId") ?: "", "clientId",
						     bc_json_str(v, "clientId") ?: "", "resourceId", k, "tenantId",
						     s->m->tenant));
	}
	json_t *props = json_object_get(body, "properties");
	json_t *tags = json_object_get(body, "tags");
	json_array_append_new(s->arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:o}", "name", bc_row_text(row, 1),
						"resourceId", id, "vmId", bc_json_str(props, "vmId") ?: "",
						"subscriptionId", rid.sub, "resourceGroupName", rid.rg, "location",
						bc_json_str(body, "location") ?: "", "tags", tags ? tags : json_object(),
						"identities", ids));
	json_decref(body);
	return 0;
}

static int name_row(void *ctx, const struct bc_row *row)
{
	json_array_append_new(ctx, json_string(bc_row_text(row, 0)));
	return 0;
}

/* Answers the host's current state. */
static void sync_answer(struct mgr *m, struct bc_http_res *res, const char *key, const char *name, const char *id)
{
	struct bc_error err = {0};
	int64_t rev = 0;
	/* The revision is read before the data: a change in between is delivered again next time. */
	if (rev_of(m, key, &rev, &err) != BC_OK) {
		arm_error_from(res, &err);
		return;
	}
	struct sync_ctx sc = {m, json_array()};
	json_t *vaults = json_array();
	int st = bc_store_exec(m->st, NULL,
			       "SELECT id, name, principal, client, body FROM mgr_resources WHERE host = ? AND type = ? "
			       "ORDER BY key",
			       (struct bc_param[]){BC_PTEXT(key), BC_PTEXT(MGR_T_VM)}, 2, inst_row, &sc, NULL, &err);
	if (st == BC_OK)
		st = bc_store_exec(m->st, NULL, "SELECT name FROM mgr_resources WHERE type = ? ORDER BY key",
				   (struct bc_param[]){BC_PTEXT(MGR_T_VAULT)}, 1, name_row, vaults, NULL, &err);
	if (st != BC_OK) {
		json_decref(sc.arr);
		json_decref(vaults);
		arm_error_from(res, &err);
		return;
	}
	bc_http_res_json(res, 200,
			 json_pack("{s:I,s:{s:s,s:s},s:o,s:o}", "revision", (json_int_t)rev, "host", "name", name, "id", id,
				   "instances", sc.arr, "vaults", vaults));
}

/* ---- parked sync requests: one wait queue per host, woken by the notifications of the
 * transactions that bumped its revision (mgr_sync_wake). No pool thread is held while waiting. */
#define MGR_SYNC_WAITERS 8 /* parked syncs of one host whose deadline is remembered (one agent each) */
struct mgr_hostq {
	struct mgr_hostq *next;
	struct mgr *m;
	char key[BC_LIMIT_RESOURCE_ID + 1];
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char name[BC_LIMIT_NAME + 1];
	struct bc_http_waitq *q;
	/* What a woken request needs to park again when the change was not its host's (a late or
	 * replica-wide notification): keyed by the request, guarded by m->hq_mu. A request that went
	 * away leaves its slot until it expires or is reused; a request whose slot was taken over
	 * is answered when woken: both harmless. */
	struct {
		const struct bc_http_req *req;
		int64_t since;
		int64_t deadline_ms;
	} w[MGR_SYNC_WAITERS];
};

static void waiter_set(struct mgr_hostq *e, const struct bc_http_req *req, int64_t since, int64_t deadline_ms)
{
	int slot = 0;
	pthread_mutex_lock(&e->m->hq_mu);
	for (int i = 0; i < MGR_SYNC_WAITERS; i++) {
		if (e->w[i].req == req) {
			slot = i;
			break;
		}
		if (e->w[i].deadline_ms < e->w[slot].deadline_ms)
			slot = i; /* the one that expires first (or expired, or free) */
	}
	e->w[slot].req = req;
	e->w[slot].since = since;
	e->w[slot].deadline_ms = deadline_ms;
	pthread_mutex_unlock(&e->m->hq_mu);
}

/* Takes req's slot: false when it has none. */
static bool waiter_take(struct mgr_hostq *e, const struct bc_http_req *req, int64_t *since, int64_t *deadline_ms)
{
	bool found = false;
	pthread_mutex_lock(&e->m->hq_mu);
	for (int i = 0; i < MGR_SYNC_WAITERS && !found; i++)
		if (e->w[i].req == req) {
			found = true;
			*since = e->w[i].since;
			*deadline_ms = e->w[i].deadline_ms;
			e->w[i].req = NULL;
			e->w[i].deadline_ms = 0;
		}
	pthread_mutex_unlock(&e->m->hq_mu);
	return found;
}

/* The host's queue, made on first use; it lives as long as the manager (arg of parked requests). */
static struct mgr_hostq *hostq(struct mgr *m, const struct host_ctx *h)
{
	struct mgr_hostq *e;
	pthread_mutex_lock(&m->hq_mu);
	for (e = m->hq; e; e = e->next)
		if (!strcmp(e->key, h->key))
			break;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		if (!(e->q = bc_http_waitq_new())) {
			free(e);
			e = NULL;
		} else {
			e->m = m;
			snprintf(e->key, sizeof(e->key), "%s", h->key);
			snprintf(e->id, sizeof(e->id), "%s", h->id);
			snprintf(e->name, sizeof(e->name), "%s", h->name);
			e->next = m->hq;
			m->hq = e;
		}
	}
	pthread_mutex_unlock(&m->hq_mu);
	return e;
}

void mgr_sync_wake(struct mgr *m, const char *payload)
{
	size_t hl = strlen(MGR_NOTIFY_HOSTS);
	bool all = !payload || strncmp(payload, MGR_NOTIFY_HOSTS, hl) != 0;
	pthread_mutex_lock(&m->hq_mu);
	for (struct mgr_hostq *e = m->hq; e; e = e->next) {
		bool hit = all;
		for (const char *p = all ? NULL : payload + hl; p && *p && !hit;) {
			size_t n = strcspn(p, "\n");
			hit = n == strlen(e->key) && !strncmp(p, e->key, n);
			p += n + (p[n] == '\n');
		}
		if (hit)
			bc_http_waitq_wake(e->q);
	}
	pthread_mutex_unlock(&m->hq_mu);
}

void mgr_sync_free(struct mgr *m)
{
	struct mgr_hostq *e = m->hq, *next;
	for (; e; e = next) {
		next = e->next;
		bc_http_waitq_free(e->q);
		free(e);
	}
	m->hq = NULL;
}

static void sync_resume(struct bc_http_req *req, struct bc_http_res *res, enum bc_http_wake why, void *arg);

/* Parks req on e until deadline_ms, unless its host's revision moved from since meanwhile.
 * False when it could not be parked (the caller answers). */
static bool sync_park(struct mgr_hostq *e, struct bc_http_req *req, int64_t since, int64_t deadline_ms)
{
	struct bc_error err = {0};
	struct bc_http_parked *p = NULL;
	int64_t left = deadline_ms - bc_now_ms(), rev = since;
	if (left <= 0)
		return false;
	waiter_set(e, req, since, deadline_ms);
	if (bc_http_park(req, e->q, left, sync_resume, e, &p) != BC_OK) {
		(void)waiter_take(e, req, &rev, &left);
		return false;
	}
	/* A change committed between the caller's read and the park woke nobody: look again. */
	if (rev_of(e->m, e->key, &rev, &err) != BC_OK || rev != since)
		(void)bc_http_resume(p, NULL);
	bc_http_parked_release(p);
	return true;
}

/* A parked sync wakes: a change for its host, its timeout, or the server stopping. When its
 * host's revision has not moved (a notification for others, or a late one) it waits for the
 * rest of its time; otherwise it gets the host's current state. */
static void sync_resume(struct bc_http_req *req, struct bc_http_res *res, enum bc_http_wake why, void *arg)
{
	struct mgr_hostq *e = arg;
	struct bc_error err = {0};
	int64_t since = -1, deadline = 0, rev = -1;
	bool known = waiter_take(e, req, &since, &deadline);
	if (why == BC_HTTP_RESUMED && known && rev_of(e->m, e->key, &rev, &err) == BC_OK && rev == since &&
	    sync_park(e, req, since, deadline))
		return;
	sync_answer(e->m, res, e->key, e->name, e->id);
}

static void sync_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct mgr *m = ctx;
	struct host_ctx h;
	struct bc_error err = {0};
	int64_t rev = 0, since = -1, timeout = 0;
	const char *s;
	char *end;
	if (!host_auth(m, req, res, &h))
		return;
	if ((s = bc_http_query(req, "since")) && *s) {
		since = strtoll(s, &end, 10);
		if (*end || since < 0) {
			agent_error(res, 400, "InvalidParameter", "since must be a revision number");
			return;
		}
	}
	if ((s = bc_http_query(req, "timeout")) && *s) {
		timeout = strtoll(s, &end, 10);
		if (*end || timeout < 0) {
			agent_error(res, 400, "InvalidParameter", "timeout must be seconds");
			return;
		}
		if (timeout > MGR_SYNC_TIMEOUT_MAX_S)
			timeout = MGR_SYNC_TIMEOUT_MAX_S;
	}
	if (rev_of(m, h.key, &rev, &err) != BC_OK) {
		arm_error_from(res, &err);
		return;
	}
	struct mgr_hostq *e = rev == since && timeout > 0 ? hostq(m, &h) : NULL;
	if (!e || !sync_park(e, req, since, bc_now_ms() + timeout * 1000))
		/* nothing to wait for, or no parking (the server is stopping, too many parked) */
		sync_answer(m, res, h.key, h.name, h.id);
}

struct cert_ctx {
	struct host_ctx *h;
	const char *oid; /* NULL: the host's own certificate */
	const char *csr;
	struct bc_buf cert;
	char cred[37];
	bool forbidden;
};

static int cert_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct cert_ctx *c = ctx;
	int st;
	bc_buf_release(&c->cert);
	c->forbidden = false;
	if (c->oid) {
		int64_t a = 0, b = 0;
		bool found;
		st = bc_store_get_int(m->st, txn,
				      "SELECT COUNT(*) FROM mgr_resources WHERE host = ? AND type = ? AND principal = ?",
				      (struct bc_param[]){BC_PTEXT(c->h->key), BC_PTEXT(MGR_T_VM), BC_PTEXT(c->oid)}, 3, &a,
				      &found, err);
		if (st == BC_OK)
			st = bc_store_get_int(m->st, txn,
					      "SELECT COUNT(*) FROM mgr_vm_uai u JOIN mgr_resources v ON v.key = u.vm "
					      "JOIN mgr_resources i ON i.key = u.uai WHERE v.host = ? AND i.principal = ?",
					      (struct bc_param[]){BC_PTEXT(c->h->key), BC_PTEXT(c->oid)}, 2, &b, &found, err);
		if (st != BC_OK)
			return st;
		if (a + b == 0) {
			c->forbidden = true;
			return bc_error_set(err, BC_ERR_FORBIDDEN, "identity %s is on none of this host's instances", c->oid);
		}
	}
	return dir_issue_cert(m->dir, txn, c->oid ? c->oid : c->h->oid, c->h->id, c->csr,
			      c->oid ? m->identity_cert_lifetime_s : m->host_cert_lifetime_s, &c->cert, c->cred, err);
}

static void cert_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx, bool host_cert)
{
	struct mgr *m = ctx;
	struct host_ctx h;
	struct bc_error err = {0};
	struct cert_ctx c;
	json_t *body;
	int64_t na = 0;
	char oid[37];
	memset(&c, 0, sizeof(c));
	if (!host_auth(m, req, res, &h) || !(body = agent_body(req, res)))
		return;
	c.h = &h;
	c.csr = bc_json_str(body, "csr");
	if (!host_cert) {
		const char *o = bc_json_str(body, "objectId");
		if (!o || !bc_is_uuid(o)) {
			agent_error(res, 400, "InvalidRequestContent", "objectId (GUID) is required");
			goto out;
		}
		(void)mgr_lower(o, oid, sizeof(oid));
		c.oid = oid;
	}
	if (!c.csr || strlen(c.csr) > BC_LIMIT_CERT_BYTES) {
		agent_error(res, 400, "InvalidRequestContent", "csr (PEM) is required");
		goto out;
	}
	if (mgr_txn(m, cert_txn, &c, &err) != BC_OK) {
		if (c.forbidden)
			agent_error(res, 403, "IdentityNotOnHost", err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	if (not_after(bc_buf_cstr(&c.cert), &na, &err) != BC_OK)
		na = bc_now() + (host_cert ? m->host_cert_lifetime_s : m->identity_cert_lifetime_s);
	bc_http_res_json(res, 200, json_pack("{s:s,s:I,s:s}", "certificate", bc_buf_cstr(&c.cert), "notAfter",
					     (json_int_t)na, "credentialId", c.cred));
out:
	bc_buf_release(&c.cert);
	json_decref(body);
}

static void identity_cert_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	cert_h(req, res, ctx, false);
}

static void host_cert_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	cert_h(req, res, ctx, true);
}

const struct bc_route mgr_agent_routes[] = {
	{"POST", "/badge/agent/v1/enroll", enroll, NULL, 0},
	{"GET", "/badge/agent/v1/sync", sync_h, NULL, 0},
	{"POST", "/badge/agent/v1/certificates", identity_cert_h, NULL, 0},
	{"POST", "/badge/agent/v1/host/certificate", host_cert_h, NULL, 0},
};
const size_t mgr_agent_nroutes = sizeof(mgr_agent_routes) / sizeof(mgr_agent_routes[0]);
