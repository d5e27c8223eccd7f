/* The manager object: schema, default subscription, transactions with retry, change
 * notification across replicas, the storage helpers every family uses, and the vault lookups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "manager/mgr_int.h"

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE mgr_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	"CREATE TABLE mgr_subscriptions (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, display_name TEXT NOT NULL,"
	" state TEXT NOT NULL, created BIGINT NOT NULL);"
	"CREATE TABLE mgr_groups (sub TEXT NOT NULL, gkey TEXT NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL,"
	" tags TEXT NOT NULL, created BIGINT NOT NULL, PRIMARY KEY (sub, gkey));"
	"CREATE TABLE mgr_resources (key TEXT PRIMARY KEY, id TEXT NOT NULL, sub TEXT NOT NULL, rg TEXT NOT NULL,"
	" type TEXT NOT NULL, name TEXT NOT NULL, gname TEXT, host TEXT, principal TEXT, client TEXT,"
	" body TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL);"
	"CREATE UNIQUE INDEX mgr_resources_gname ON mgr_resources (gname);"
	"CREATE INDEX mgr_resources_scope ON mgr_resources (sub, rg, type);"
	"CREATE INDEX mgr_resources_host ON mgr_resources (host);"
	"CREATE INDEX mgr_resources_principal ON mgr_resources (principal);"
	"CREATE TABLE mgr_vm_uai (vm TEXT NOT NULL, uai TEXT NOT NULL, PRIMARY KEY (vm, uai));"
	"CREATE INDEX mgr_vm_uai_uai ON mgr_vm_uai (uai);"
	"CREATE TABLE mgr_role_assignments (key TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL,"
	" scope_key TEXT NOT NULL, role TEXT NOT NULL, principal TEXT NOT NULL, principal_type TEXT NOT NULL,"
	" created BIGINT NOT NULL, created_by TEXT NOT NULL);"
	"CREATE UNIQUE INDEX mgr_role_assignments_name ON mgr_role_assignments (name);"
	"CREATE INDEX mgr_role_assignments_principal ON mgr_role_assignments (principal);"
	"CREATE TABLE mgr_join_tokens (hash TEXT PRIMARY KEY, host TEXT NOT NULL, expires BIGINT NOT NULL,"
	" used BIGINT NOT NULL);"
	"CREATE TABLE mgr_host_rev (host TEXT PRIMARY KEY, rev BIGINT NOT NULL)",
	/* 2: soft-deleted vaults (deleted.c), keyed by lower-case name: vault names are global */
	"CREATE TABLE mgr_deleted_vaults (lname TEXT PRIMARY KEY, name TEXT NOT NULL, sub TEXT NOT NULL,"
	" rg TEXT NOT NULL, rkey TEXT NOT NULL, id TEXT NOT NULL, location TEXT NOT NULL, body TEXT NOT NULL,"
	" deleted BIGINT NOT NULL, purge_at BIGINT NOT NULL, protected BIGINT NOT NULL);"
	"CREATE INDEX mgr_deleted_vaults_sub ON mgr_deleted_vaults (sub, lname);"
	"CREATE INDEX mgr_deleted_vaults_purge ON mgr_deleted_vaults (purge_at)",
};

/* The store has no unsubscribe, and may deliver a notification after mgr_free (the store is
 * freed after the manager): its subscription points at a relay slot, which mgr_free empties. A
 * slot is reused by a later manager; a stray notification of an old store then only bumps its
 * caches' generation and wakes its long polls, which answer the current state: harmless. */
#define MGR_RELAYS 64
static struct relay {
	pthread_mutex_t mu;
	struct mgr *m;
	bool used;
} relays[MGR_RELAYS] = {[0 ... MGR_RELAYS - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL, false}};
static pthread_mutex_t relays_mu = PTHREAD_MUTEX_INITIALIZER;

static struct relay *relay_take(struct mgr *m)
{
	struct relay *r = NULL;
	pthread_mutex_lock(&relays_mu);
	for (size_t i = 0; i < MGR_RELAYS && !r; i++)
		if (!relays[i].used)
			r = &relays[i];
	if (r) {
		r->used = true;
		pthread_mutex_lock(&r->mu);
		r->m = m;
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&relays_mu);
	return r;
}

static void relay_drop(struct relay *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu); /* waits for a callback that is running */
	r->m = NULL;
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_lock(&relays_mu);
	r->used = false;
	pthread_mutex_unlock(&relays_mu);
}

static void on_notify(void *ctx, const char *channel, const char *payload)
{
	struct relay *r = ctx;
	(void)channel;
	pthread_mutex_lock(&r->mu);
	if (r->m) {
		mgr_changed(r->m);
		mgr_sync_wake(r->m, payload);
	}
	pthread_mutex_unlock(&r->mu);
}

/* The host revisions a transaction of this thread bumped, for its notification. */
#define MGR_BUMPS_MAX 16
struct bumps {
	int n;    /* -1: every host */
	char key[MGR_BUMPS_MAX][BC_LIMIT_RESOURCE_ID + 1];
};
static __thread struct bumps *cur_bumps;

static void bumped(const char *key)
{
	struct bumps *b = cur_bumps;
	if (!b || b->n < 0)
		return;
	for (int i = 0; key && i < b->n; i++)
		if (!strcmp(b->key[i], key))
			return;
	if (!key || b->n == MGR_BUMPS_MAX || strlen(key) > BC_LIMIT_RESOURCE_ID) {
		b->n = -1;
		return;
	}
	snprintf(b->key[b->n++], sizeof(b->key[0]), "%s", key);
}

static int bumps_payload(const struct bumps *b, struct bc_buf *out)
{
	if (b->n < 0)
		return bc_buf_appends(out, MGR_NOTIFY_ALL);
	int rc = bc_buf_appends(out, MGR_NOTIFY_HOSTS);
	for (int i = 0; !rc && i < b->n; i++)
		rc = bc_buf_appendf(out, "%s\n", b->key[i]);
	return rc;
}

void mgr_changed(struct mgr *m)
{
	pthread_mutex_lock(&m->mu);
	m->gen++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->mu);
}

uint64_t mgr_gen(struct mgr *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t g = m->gen;
	pthread_mutex_unlock(&m->mu);
	return g;
}

void mgr_wait_change(struct mgr *m, uint64_t seen, int64_t deadline_ms)
{
	pthread_mutex_lock(&m->mu);
	while (m->gen == seen) {
		int64_t left = deadline_ms - bc_now_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* Wake at least every second: a replica's notification may be lost on a reconnect. */
		if (left > 1000)
			left = 1000;
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&m->cond, &m->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&m->mu);
}

int mgr_txn(struct mgr *m, mgr_txn_fn fn, void *ctx, struct bc_error *err)
{
	int st = BC_OK;
	struct bumps *b = malloc(sizeof(*b)), *outer = cur_bumps;
	if (!b)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	for (int attempt = 0; attempt < MGR_TXN_RETRIES; attempt++) {
		struct bc_txn *txn = NULL;
		struct bc_buf payload = {0};
		bc_error_clear(err);
		b->n = 0;
		cur_bumps = b;
		st = bc_store_begin(m->st, &txn, err);
		if (st == BC_OK)
			st = fn(m, txn, ctx, err);
		cur_bumps = outer;
		if (st == BC_OK && bumps_payload(b, &payload) != BC_OK)
			st = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		if (st == BC_OK)
			st = bc_store_notify(m->st, txn, MGR_NOTIFY_CHANNEL,
					     payload.len <= BC_STORE_PAYLOAD_MAX ? bc_buf_cstr(&payload) : MGR_NOTIFY_ALL, err);
		bc_buf_release(&payload);
		if (st == BC_OK) {
			st = bc_txn_commit(txn, err);
			txn = NULL;
		}
		bc_txn_rollback(txn);
		if (st == BC_OK) {
			mgr_changed(m);
			break;
		}
		if (st != BC_ERR_CONFLICT)
			break;
		struct timespec ts = {0, (long)(1000000L << (attempt < 6 ? attempt : 6))};
		nanosleep(&ts, NULL); /* back off a little before retrying a conflicting transaction */
	}
	free(b);
	return st;
}

static char *dupz(const char *s)
{
	return strdup(s ? s : "");
}

static char *derive_domain(const char *resource)
{
	/* "https://management.D[:port]/" -> "D" */
	const char *p = strstr(resource, "://");
	p = p ? p + 3 : resource;
	if (!strncasecmp(p, "management.", 11))
		p += 11;
	size_t n = strcspn(p, ":/");
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

struct boot {
	const char *tenant;
	char sub[37];
};

static int boot_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct boot *b = ctx;
	char *v = NULL;
	int st = bc_store_get_text(m->st, txn, "SELECT v FROM mgr_meta WHERE k = 'default_subscription'", NULL, 0, &v,
				   err);
	if (st != BC_OK)
		return st;
	if (v) {
		snprintf(b->sub, sizeof(b->sub), "%s", v);
		free(v);
		return BC_OK;
	}
	if (bc_uuid4(b->sub) != BC_OK)
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot generate a subscription id");
	st = bc_store_exec(m->st, txn, "INSERT INTO mgr_meta (k, v) VALUES ('default_subscription', ?)",
			   (struct bc_param[]){BC_PTEXT(b->sub)}, 1, NULL, NULL, NULL, err);
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn,
				   "INSERT INTO mgr_subscriptions (id, tenant_id, display_name, state, created) "
				   "VALUES (?, ?, 'badge', 'Enabled', ?)",
				   (struct bc_param[]){BC_PTEXT(b->sub), BC_PTEXT(b->tenant), BC_PINT(bc_now())}, 3, NULL,
				   NULL, NULL, err);
	return st;
}

int mgr_new(struct mgr **out, struct bc_store *st, struct dir *d, const struct mgr_config *cfg,
	    struct bc_error *err)
{
	struct mgr *m;
	struct boot b = {0};
	int rc;

	if (!cfg || !cfg->management_resource || !cfg->vault_suffix)
		return bc_error_set(err, BC_ERR_INVALID, "manager configuration incomplete");
	m = calloc(1, sizeof(*m));
	if (!m)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cond, NULL);
	pthread_mutex_init(&m->hq_mu, NULL);
	m->st = st;
	m->dir = d;
	m->management_url = dupz(cfg->management_url);
	m->management_resource = dupz(cfg->management_resource);
	m->vault_suffix = dupz(cfg->vault_suffix);
	m->vault_public_port = dupz(cfg->vault_public_port);
	m->location = dupz(cfg->location && *cfg->location ? cfg->location : "local");
	m->domain = derive_domain(cfg->management_resource);
	m->ca_pem = dupz(cfg->ca_cert_pem);
	m->identity_cert_lifetime_s = cfg->identity_cert_lifetime_s > 0 ? cfg->identity_cert_lifetime_s
								 : MGR_IDENTITY_CERT_LIFETIME_S;
	m->host_cert_lifetime_s = cfg->host_cert_lifetime_s > 0 ? cfg->host_cert_lifetime_s : MGR_HOST_CERT_LIFETIME_S;
	if (!m->management_url || !m->management_resource || !m->vault_suffix || !m->vault_public_port ||
	    !m->location || !m->domain || !m->ca_pem) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = mgr_throttle_init(m, cfg)) != BC_OK) {
		rc = bc_error_set(err, rc, "manager: bad throttling limits");
		goto fail;
	}
	snprintf(m->tenant, sizeof(m->tenant), "%s", dir_default_tenant(d));
	rc = bc_store_migrate(st, "manager", migrations, sizeof(migrations) / sizeof(migrations[0]), err);
	if (rc != BC_OK)
		goto fail;
	b.tenant = m->tenant;
	rc = mgr_txn(m, boot_txn, &b, err);
	if (rc != BC_OK)
		goto fail;
	memcpy(m->sub, b.sub, sizeof(m->sub));
	if (!(m->relay = relay_take(m))) {
		rc = bc_error_set(err, BC_ERR_LIMIT, "too many resource managers in this process");
		goto fail;
	}
	rc = bc_store_subscribe(st, MGR_NOTIFY_CHANNEL, on_notify, m->relay, err);
	if (rc != BC_OK)
		goto fail;
	*out = m;
	return BC_OK;
fail:
	mgr_free(m);
	return rc;
}

void mgr_free(struct mgr *m)
{
	if (!m)
		return;
	relay_drop(m->relay);
	for (size_t i = 0; i < MGR_VCACHE_SLOTS; i++)
		free(m->vcache[i].pol);
	for (size_t i = 0; i < MGR_GCACHE_SLOTS; i++)
		mgr_grants_free(m->gcache[i].g, m->gcache[i].n);
	free(m->management_url);
	free(m->management_resource);
	free(m->vault_suffix);
	free(m->vault_public_port);
	free(m->location);
	free(m->domain);
	free(m->ca_pem);
	mgr_sync_free(m);
	mgr_throttle_free(m);
	pthread_mutex_destroy(&m->hq_mu);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

int mgr_mount(struct mgr *m, struct bc_http_server *srv)
{
	const struct {
		const struct bc_route *r;
		size_t n;
	} tables[] = {
		/* Agent and role-assignment routes first: their literal segments are the most specific. */
		{mgr_agent_routes, mgr_agent_nroutes}, {mgr_rbac_routes, mgr_rbac_nroutes},
		{mgr_host_routes, mgr_host_nroutes},   {mgr_vault_routes, mgr_vault_nroutes},
		{mgr_vm_routes, mgr_vm_nroutes},       {mgr_uai_routes, mgr_uai_nroutes},
		{mgr_fic_routes, mgr_fic_nroutes},
		{mgr_group_routes, mgr_group_nroutes}, {mgr_sub_routes, mgr_sub_nroutes},
		{mgr_resource_routes, mgr_resource_nroutes},
	};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int st = bc_http_mount(srv, NULL, NULL, tables[i].r, tables[i].n, m);
		if (st != BC_OK)
			return st;
	}
	return BC_OK;
}

const char *mgr_default_subscription(const struct mgr *m)
{
	return m->sub;
}

struct owner_ctx {
	const char *oid;
};

static int owner_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct owner_ctx *o = ctx;
	const struct mgr_role *owner = mgr_role_by_name("Owner");
	char scope[64], scope_key[64], name[37], key[256];
	int64_t n = 0;
	bool found = false;
	int st;

	snprintf(scope, sizeof(scope), "/subscriptions/%s", m->sub);
	(void)mgr_lower(scope, scope_key, sizeof(scope_key));
	st = bc_store_get_int(m->st, txn,
			      "SELECT COUNT(*) FROM mgr_role_assignments WHERE principal = ? AND scope_key = ? AND role = ?",
			      (struct bc_param[]){BC_PTEXT(o->oid), BC_PTEXT(scope_key), BC_PTEXT(owner->id)}, 3, &n,
			      &found, err);
	if (st != BC_OK || n > 0)
		return st;
	if (bc_uuid4(name) != BC_OK)
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot generate an assignment id");
	snprintf(key, sizeof(key), "%s/providers/microsoft.authorization/roleassignments/%s", scope_key, name);
	return bc_store_exec(m->st, txn,
			     "INSERT INTO mgr_role_assignments (key, name, scope, scope_key, role, principal, "
			     "principal_type, created, created_by) VALUES (?, ?, ?, ?, ?, ?, 'ServicePrincipal', ?, '')",
			     (struct bc_param[]){BC_PTEXT(key), BC_PTEXT(name), BC_PTEXT(scope), BC_PTEXT(scope_key),
						 BC_PTEXT(owner->id), BC_PTEXT(o->oid), BC_PINT(bc_now())},
			     7, NULL, NULL, NULL, err);
}

int mgr_bootstrap_owner(struct mgr *m, const char *object_id, struct bc_error *err)
{
	struct owner_ctx o = {object_id};
	if (!bc_is_uuid(object_id))
		return bc_error_set(err, BC_ERR_INVALID, "object id '%.40s' is not a GUID", object_id ? object_id : "");
	return mgr_txn(m, owner_txn, &o, err);
}

/* ---- storage helpers ---- */

void mgr_res_release(struct mgr_res *r)
{
	json_decref(r->body);
	r->body = NULL;
}

struct res_row {
	struct mgr_res *r;
	struct bc_error *err;
	int st;
};

static void copy_col(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static int res_row(void *ctx, const struct bc_row *row)
{
	struct res_row *rr = ctx;
	struct mgr_res *r = rr->r;
	const char *body = bc_row_text(row, 6);
	copy_col(r->key, sizeof(r->key), bc_row_text(row, 0));
	copy_col(r->id, sizeof(r->id), bc_row_text(row, 1));
	copy_col(r->name, sizeof(r->name), bc_row_text(row, 2));
	copy_col(r->host, sizeof(r->host), bc_row_text(row, 3));
	copy_col(r->principal, sizeof(r->principal), bc_row_text(row, 4));
	copy_col(r->client, sizeof(r->client), bc_row_text(row, 5));
	r->body = json_loads(body ? body : "{}", 0, NULL);
	if (!r->body || !json_is_object(r->body)) {
		json_decref(r->body);
		r->body = NULL;
		rr->st = bc_error_set(rr->err, BC_ERR_STORE, "stored resource %.200s is corrupt", r->key);
		return 1;
	}
	r->found = true;
	return 1;
}

static const char *for_update(struct mgr *m, bool lock)
{
	/* SQLite's write transaction already holds the database lock; PostgreSQL needs row locks. */
	return lock && !strcmp(bc_store_backend(m->st), "postgres") ? " FOR UPDATE" : "";
}

int mgr_res_get(struct mgr *m, struct bc_txn *txn, const char *key, bool lock, struct mgr_res *r,
		struct bc_error *err)
{
	char sql[256];
	struct res_row rr = {r, err, BC_OK};
	memset(r, 0, sizeof(*r));
	snprintf(sql, sizeof(sql),
		 "SELECT key, id, name, host, principal, client, body FROM mgr_resources WHERE key = ?%s",
		 for_update(m, lock));
	int st = bc_store_exec(m->st, txn, sql, (struct bc_param[]){BC_PTEXT(key)}, 1, res_row, &rr, NULL, err);
	if (st == BC_OK)
		st = rr.st;
	if (st != BC_OK)
		mgr_res_release(r);
	return st;
}

int mgr_res_put(struct mgr *m, struct bc_txn *txn, const struct mgr_res *r, const char *sub, const char *rg,
		const char *type, const char *gname, bool insert, struct bc_error *err)
{
	char *body = bc_json_dumps(r->body);
	int st;
	int64_t now = bc_now();
	if (!body)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	const struct bc_param host = r->host[0] ? BC_PTEXT(r->host) : BC_PNULL;
	const struct bc_param pr = r->principal[0] ? BC_PTEXT(r->principal) : BC_PNULL;
	const struct bc_param cl = r->client[0] ? BC_PTEXT(r->client) : BC_PNULL;
	if (insert) {
		st = bc_store_exec(m->st, txn,
				   "INSERT INTO mgr_resources (key, id, sub, rg, type, name, gname, host, principal, "
				   "client, body, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				   (struct bc_param[]){BC_PTEXT(r->key), BC_PTEXT(r->id), BC_PTEXT(sub), BC_PTEXT(rg),
						       BC_PTEXT(type), BC_PTEXT(r->name), BC_PTEXT(gname), host, pr, cl,
						       BC_PTEXT(body), BC_PINT(now), BC_PINT(now)},
				   13, NULL, NULL, NULL, err);
		if (st == BC_ERR_EXISTS) /* a concurrent creation won: retry, and see it */
			st = bc_error_set(err, BC_ERR_CONFLICT, "concurrent creation of %.200s", r->id);
	} else {
		st = bc_store_exec(m->st, txn,
				   "UPDATE mgr_resources SET host = ?, principal = ?, client = ?, body = ?, updated = ? "
				   "WHERE key = ?",
				   (struct bc_param[]){host, pr, cl, BC_PTEXT(body), BC_PINT(now), BC_PTEXT(r->key)}, 6,
				   NULL, NULL, NULL, err);
	}
	free(body);
	return st;
}

int mgr_res_delete(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err)
{
	return bc_store_exec(m->st, txn, "DELETE FROM mgr_resources WHERE key = ?", (struct bc_param[]){BC_PTEXT(key)},
			     1, NULL, NULL, NULL, err);
}

struct grp_row {
	char *name;
	size_t n;
	bool found;
};

static int grp_row(void *ctx, const struct bc_row *row)
{
	struct grp_row *g = ctx;
	g->found = true;
	if (g->name)
		copy_col(g->name, g->n, bc_row_text(row, 0));
	return 1;
}

int mgr_group_exists(struct mgr *m, struct bc_txn *txn, const char *sub, const char *rg, char *canon, size_t n,
		     bool lock, bool *exists, struct bc_error *err)
{
	char key[96], sql[160];
	struct grp_row g = {canon, n, false};
	if (!mgr_lower(rg, key, sizeof(key))) {
		*exists = false;
		return BC_OK;
	}
	snprintf(sql, sizeof(sql), "SELECT name FROM mgr_groups WHERE sub = ? AND gkey = ?%s", for_update(m, lock));
	int st = bc_store_exec(m->st, txn, sql, (struct bc_param[]){BC_PTEXT(sub), BC_PTEXT(key)}, 2, grp_row, &g,
			       NULL, err);
	if (st == BC_OK)
		*exists = g.found;
	return st;
}

bool mgr_sub_known(struct mgr *m, const char *sub)
{
	int64_t n = 0;
	bool found = false;
	struct bc_error err = {0};
	if (!bc_is_uuid(sub))
		return false;
	char low[37];
	(void)mgr_lower(sub, low, sizeof(low));
	if (bc_store_get_int(m->st, NULL, "SELECT COUNT(*) FROM mgr_subscriptions WHERE id = ?",
			     (struct bc_param[]){BC_PTEXT(low)}, 1, &n, &found, &err) != BC_OK)
		return false;
	return n > 0;
}

int mgr_host_bump(struct mgr *m, struct bc_txn *txn, const char *host_key, struct bc_error *err)
{
	if (!host_key || !*host_key)
		return BC_OK;
	bumped(host_key);
	return bc_store_exec(m->st, txn, "UPDATE mgr_host_rev SET rev = rev + 1 WHERE host = ?",
			     (struct bc_param[]){BC_PTEXT(host_key)}, 1, NULL, NULL, NULL, err);
}

int mgr_host_bump_all(struct mgr *m, struct bc_txn *txn, struct bc_error *err)
{
	bumped(NULL);
	return bc_store_exec(m->st, txn, "UPDATE mgr_host_rev SET rev = rev + 1", NULL, 0, NULL, NULL, NULL, err);
}

int mgr_revoke_if_gone(struct mgr *m, struct bc_txn *txn, const char *host_key, const char *oid,
		       struct bc_error *err)
{
	int64_t a = 0, b = 0;
	bool found;
	char *host_id = NULL;
	int st;
	if (!host_key || !*host_key || !oid || !*oid)
		return BC_OK;
	st = bc_store_get_int(m->st, txn, "SELECT COUNT(*) FROM mgr_resources WHERE host = ? AND type = ? AND principal = ?",
			      (struct bc_param[]){BC_PTEXT(host_key), BC_PTEXT(MGR_T_VM), BC_PTEXT(oid)}, 3, &a, &found,
			      err);
	if (st == BC_OK)
		st = bc_store_get_int(m->st, txn,
				      "SELECT COUNT(*) FROM mgr_vm_uai u JOIN mgr_resources v ON v.key = u.vm "
				      "JOIN mgr_resources i ON i.key = u.uai WHERE v.host = ? AND i.principal = ?",
				      (struct bc_param[]){BC_PTEXT(host_key), BC_PTEXT(oid)}, 2, &b, &found, err);
	if (st != BC_OK || a + b > 0)
		return st;
	st = bc_store_get_text(m->st, txn, "SELECT id FROM mgr_resources WHERE key = ?",
			       (struct bc_param[]){BC_PTEXT(host_key)}, 1, &host_id, err);
	if (st != BC_OK || !host_id)
		return st;
	st = dir_credential_remove_host(m->dir, txn, oid, host_id, err);
	if (st == BC_ERR_NOT_FOUND)
		st = BC_OK;
	free(host_id);
	return st;
}

int mgr_ra_delete_principal(struct mgr *m, struct bc_txn *txn, const char *oid, struct bc_error *err)
{
	return bc_store_exec(m->st, txn, "DELETE FROM mgr_role_assignments WHERE principal = ?",
			     (struct bc_param[]){BC_PTEXT(oid)}, 1, NULL, NULL, NULL, err);
}

int mgr_ra_delete_scope(struct mgr *m, struct bc_txn *txn, const char *scope, struct bc_error *err)
{
	char key[BC_LIMIT_RESOURCE_ID + 2];
	if (!mgr_lower(scope, key, sizeof(key) - 1))
		return bc_error_set(err, BC_ERR_LIMIT, "scope too long");
	size_t n = strlen(key);
	int st = bc_store_exec(m->st, txn, "DELETE FROM mgr_role_assignments WHERE scope_key = ?",
			       (struct bc_param[]){BC_PTEXT(key)}, 1, NULL, NULL, NULL, err);
	key[n] = '/';
	key[n + 1] = '\0';
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_role_assignments WHERE substr(scope_key, 1, CAST(? AS INTEGER)) = ?",
				   (struct bc_param[]){BC_PINT((int64_t)n + 1), BC_PTEXT(key)}, 2, NULL, NULL, NULL,
				   err);
	return st;
}

/* ---- what the vault asks ---- */

static size_t vslot(const char *key)
{
	size_t h = 5381;
	for (; *key; key++)
		h = h * 33 + (unsigned char)*key;
	return h % MGR_VCACHE_SLOTS;
}

static uint64_t perm_bits(const json_t *perms, const char *category)
{
	uint64_t bits = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(perms, category), i, p)
	{
		int idx = json_is_string(p) ? mgr_kv_perm_index(category, json_string_value(p)) : -1;
		if (idx == 63)
			return ~(uint64_t)0;
		if (idx >= 0)
			bits |= (uint64_t)1 << idx;
	}
	return bits;
}

static const char *const categories[3] = {"keys", "secrets", "certificates"};

/* Loads vault `key` (lower name) from the store into a fresh cache entry. */
static int vault_load(struct mgr *m, const char *key, struct mgr_vcache *e, struct bc_error *err)
{
	char gname[BC_LIMIT_NAME + 8], rkey[BC_LIMIT_RESOURCE_ID + 1];
	char *rk = NULL;
	struct mgr_res r;
	int st;

	snprintf(gname, sizeof(gname), "vault:%s", key);
	st = bc_store_get_text(m->st, NULL, "SELECT key FROM mgr_resources WHERE gname = ?",
			       (struct bc_param[]){BC_PTEXT(gname)}, 1, &rk, err);
	if (st != BC_OK)
		return st;
	if (!rk)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "vault '%s' not found", key);
	snprintf(rkey, sizeof(rkey), "%s", rk);
	free(rk);
	st = mgr_res_get(m, NULL, rkey, false, &r, err);
	if (st != BC_OK)
		return st;
	if (!r.found)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "vault '%s' not found", key);
	json_t *props = json_object_get(r.body, "properties");
	memset(e, 0, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->info.name, sizeof(e->info.name), "%s", r.name);
	snprintf(e->info.tenant_id, sizeof(e->info.tenant_id), "%s", bc_json_str(props, "tenantId") ?: m->tenant);
	snprintf(e->info.resource_id, sizeof(e->info.resource_id), "%s", r.id);
	e->info.rbac = bc_json_bool(props, "enableRbacAuthorization", false);
	e->info.soft_delete = bc_json_bool(props, "enableSoftDelete", true);
	e->info.purge_protection = bc_json_bool(props, "enablePurgeProtection", false);
	e->info.retention_days = (int)bc_json_int(props, "softDeleteRetentionInDays", 90);
	json_t *pols = json_object_get(props, "accessPolicies");
	size_t n = json_array_size(pols), i;
	json_t *p;
	e->pol = calloc(n ? n : 1, sizeof(*e->pol));
	if (!e->pol) {
		mgr_res_release(&r);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	json_array_foreach(pols, i, p)
	{
		const char *oid = bc_json_str(p, "objectId");
		if (!oid)
			continue;
		struct mgr_vpol *vp = &e->pol[e->npol++];
		(void)mgr_lower(oid, vp->oid, sizeof(vp->oid));
		for (int c = 0; c < 3; c++)
			vp->bits[c] = perm_bits(json_object_get(p, "permissions"), categories[c]);
	}
	mgr_res_release(&r);
	return BC_OK;
}

/* Finds the vault in the cache (loading it when stale); calls fn under the lock. */
static int vault_with(struct mgr *m, const char *vault_name, void (*fn)(const struct mgr_vcache *, void *),
		      void *ctx, struct bc_error *err)
{
	char key[BC_LIMIT_NAME + 1];
	struct mgr_vcache fresh;
	if (!vault_name || !mgr_lower(vault_name, key, sizeof(key)))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "vault not found");
	size_t slot = vslot(key);
	pthread_mutex_lock(&m->mu);
	struct mgr_vcache *e = &m->vcache[slot];
	if (e->gen == m->gen && e->key[0] && !strcmp(e->key, key)) {
		fn(e, ctx);
		pthread_mutex_unlock(&m->mu);
		bc_metrics_count("manager_vault_cache_hits", 1);
		return BC_OK;
	}
	uint64_t gen = m->gen;
	pthread_mutex_unlock(&m->mu);
	bc_metrics_count("manager_vault_cache_misses", 1);

	int st = vault_load(m, key, &fresh, err);
	if (st != BC_OK)
		return st;
	fresh.gen = gen;
	pthread_mutex_lock(&m->mu);
	fn(&fresh, ctx);
	if (m->gen == gen) {
		free(e->pol);
		*e = fresh;
		fresh.pol = NULL;
	}
	pthread_mutex_unlock(&m->mu);
	free(fresh.pol);
	return BC_OK;
}

static void copy_info(const struct mgr_vcache *e, void *ctx)
{
	*(struct mgr_vault_info *)ctx = e->info;
}

int mgr_vault_hold_txn(struct mgr *m, struct bc_txn *txn, const char *vault_name, struct bc_error *err)
{
	char key[BC_LIMIT_NAME + 1], gname[BC_LIMIT_NAME + 8];
	int64_t changed = 0;
	if (!vault_name || !mgr_lower(vault_name, key, sizeof(key)))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "vault not found");
	snprintf(gname, sizeof(gname), "vault:%s", key);
	/* a no-op update: it locks the row (PostgreSQL; SQLite's writer holds the database) until
	 * txn ends, and finds nothing once a delete has committed */
	int st = bc_store_exec(m->st, txn, "UPDATE mgr_resources SET gname = gname WHERE gname = ?",
			       (struct bc_param[]){BC_PTEXT(gname)}, 1, NULL, NULL, &changed, err);
	if (st != BC_OK)
		return st;
	return changed > 0 ? BC_OK : bc_error_set(err, BC_ERR_NOT_FOUND, "vault '%s' not found", key);
}

int mgr_vault_lookup(struct mgr *m, const char *vault_name, struct mgr_vault_info *out, struct bc_error *err)
{
	struct mgr_vault_info info;
	int st = vault_with(m, vault_name, copy_info, &info, err);
	if (st == BC_OK)
		*out = info;
	return st;
}

struct pol_check {
	const char *oid;
	int cat;
	int idx;
	bool allowed;
};

static void check_pol(const struct mgr_vcache *e, void *ctx)
{
	struct pol_check *c = ctx;
	for (size_t i = 0; i < e->npol; i++)
		if (!strcasecmp(e->pol[i].oid, c->oid) && (e->pol[i].bits[c->cat] >> c->idx) & 1)
			c->allowed = true;
}

int mgr_vault_authorize(struct mgr *m, const struct mgr_vault_info *v, const char *oid, const char *category,
			const char *permission, struct bc_error *err)
{
	int cat = -1, st;
	for (int c = 0; c < 3; c++)
		if (category && !strcasecmp(category, categories[c]))
			cat = c;
	int idx = mgr_kv_perm_index(category, permission);
	if (cat < 0 || idx < 0 || idx == 63 || !oid)
		return bc_error_set(err, BC_ERR_INVALID, "unknown permission %s/%s", category ? category : "",
				    permission ? permission : "");
	if (v->rbac) {
		const char *action = mgr_kv_data_action(category, permission);
		struct mgr_grant *g = NULL;
		size_t n = 0;
		if (!action)
			return bc_error_set(err, BC_ERR_FORBIDDEN, "no data action for %s/%s", category, permission);
		st = mgr_grants_load(m, oid, &g, &n, err);
		if (st != BC_OK)
			return st;
		bool ok = mgr_grants_permit(g, n, action, v->resource_id, true);
		mgr_grants_free(g, n);
		return ok ? BC_OK
			  : bc_error_set(err, BC_ERR_FORBIDDEN, "caller is not authorized to perform action on resource; "
					 "action: %s", action);
	}
	struct pol_check c = {oid, cat, idx, false};
	st = vault_with(m, v->name, check_pol, &c, err);
	if (st != BC_OK)
		return st;
	return c.allowed ? BC_OK
			 : bc_error_set(err, BC_ERR_FORBIDDEN, "the user, group or application does not have %s %s "
					"permission on key vault '%s'", category, permission, v->name);
}
