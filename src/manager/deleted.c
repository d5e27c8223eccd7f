/* Soft-deleted vaults (Azure's Microsoft.KeyVault/deletedVaults): deleting a vault moves its
 * resource here (it leaves every list and the data plane, its contents stay); a PUT with
 * properties.createMode "recover" moves it back (vaults.c); a purge, or the vault's sweep once
 * the scheduled purge date passed, removes it for good together with everything the vault
 * component stored for it (through the hooks it registers), in one transaction. Vault names are
 * global: while a name is here, no vault of that name can be created (409 ConflictError). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define A_LIST "Microsoft.KeyVault/deletedVaults/read"
#define A_READ "Microsoft.KeyVault/locations/deletedVaults/read"
#define A_PURGE "Microsoft.KeyVault/locations/deletedVaults/purge/action"
#define PURGE_BATCH 64 /* expired vaults purged by one sweep */

void mgr_location_key(const char *loc, char *out, size_t n)
{
	size_t j = 0;
	for (; loc && *loc && j + 1 < n; loc++)
		if (*loc != ' ')
			out[j++] = (char)tolower((unsigned char)*loc);
	if (n)
		out[j] = '\0';
}

int mgr_vault_hooks_set(struct mgr *m, const struct mgr_vault_hooks *h)
{
	int st = BC_OK;
	pthread_mutex_lock(&m->mu);
	if (m->hooks.purge_txn)
		st = BC_ERR_EXISTS;
	else
		m->hooks = *h;
	pthread_mutex_unlock(&m->mu);
	return st;
}

void mgr_vault_hooks_clear(struct mgr *m, void *ctx)
{
	pthread_mutex_lock(&m->mu);
	if (m->hooks.ctx == ctx)
		memset(&m->hooks, 0, sizeof(m->hooks));
	pthread_mutex_unlock(&m->mu);
}

static struct mgr_vault_hooks hooks_of(struct mgr *m)
{
	pthread_mutex_lock(&m->mu);
	struct mgr_vault_hooks h = m->hooks;
	pthread_mutex_unlock(&m->mu);
	return h;
}

/* ---- storage ---- */

void mgr_dvault_release(struct mgr_dvault *d)
{
	json_decref(d->body);
	d->body = NULL;
}

static void col(char *dst, size_t n, const struct bc_row *row, int i)
{
	const char *s = bc_row_text(row, i);
	snprintf(dst, n, "%s", s ? s : "");
}

#define DV_COLS "lname, name, sub, rg, rkey, id, location, body, deleted, purge_at, protected"

static int dv_row(void *ctx, const struct bc_row *row)
{
	struct mgr_dvault *d = ctx;
	col(d->lname, sizeof(d->lname), row, 0);
	col(d->name, sizeof(d->name), row, 1);
	col(d->sub, sizeof(d->sub), row, 2);
	col(d->rg, sizeof(d->rg), row, 3);
	col(d->rkey, sizeof(d->rkey), row, 4);
	col(d->id, sizeof(d->id), row, 5);
	col(d->location, sizeof(d->location), row, 6);
	json_decref(d->body);
	d->body = json_loads(bc_row_text(row, 7) ? bc_row_text(row, 7) : "{}", 0, NULL);
	d->deleted = bc_row_int(row, 8);
	d->purge_at = bc_row_int(row, 9);
	d->protected = bc_row_int(row, 10) != 0;
	d->found = d->body && json_is_object(d->body);
	return 1;
}

int mgr_dvault_get(struct mgr *m, struct bc_txn *txn, const char *lname, bool lock, struct mgr_dvault *d,
		   struct bc_error *err)
{
	memset(d, 0, sizeof(*d));
	const char *sql = lock && !strcmp(bc_store_backend(m->st), "postgres")
				  ? "SELECT " DV_COLS " FROM mgr_deleted_vaults WHERE lname = ? FOR UPDATE"
				  : "SELECT " DV_COLS " FROM mgr_deleted_vaults WHERE lname = ?";
	int st = bc_store_exec(m->st, txn, sql, (struct bc_param[]){BC_PTEXT(lname)}, 1, dv_row, d, NULL, err);
	if (st == BC_OK && d->body && !d->found)
		st = bc_error_set(err, BC_ERR_STORE, "stored deleted vault %.64s is corrupt", lname);
	if (st != BC_OK)
		mgr_dvault_release(d);
	return st;
}

int mgr_dvault_remove(struct mgr *m, struct bc_txn *txn, const char *lname, struct bc_error *err)
{
	return bc_store_exec(m->st, txn, "DELETE FROM mgr_deleted_vaults WHERE lname = ?",
			     (struct bc_param[]){BC_PTEXT(lname)}, 1, NULL, NULL, NULL, err);
}

int mgr_dvault_add(struct mgr *m, struct bc_txn *txn, const struct mgr_res *r, struct bc_error *err)
{
	struct mgr_rid rid;
	char lname[BC_LIMIT_NAME + 1], sub[64], rg[96];
	const json_t *props = json_object_get(r->body, "properties");
	int st = mgr_rid_parse(r->id, &rid, err);
	if (st != BC_OK)
		return st;
	if (!mgr_lower(r->name, lname, sizeof(lname)) || !mgr_lower(rid.sub, sub, sizeof(sub)) ||
	    !mgr_lower(rid.rg, rg, sizeof(rg)))
		return bc_error_set(err, BC_ERR_STORE, "vault %.64s: name too long", r->name);
	char *body = bc_json_dumps(r->body);
	if (!body)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	/* Soft delete is always on (as in Azure today), whatever enableSoftDelete says. */
	int64_t days = bc_json_int(props, "softDeleteRetentionInDays", 90), now = bc_now();
	if (days < 7 || days > 90)
		days = 90;
	bool protect = bc_json_bool(props, "enablePurgeProtection", false);
	st = bc_store_exec(m->st, txn,
			   "INSERT INTO mgr_deleted_vaults (" DV_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   (struct bc_param[]){BC_PTEXT(lname), BC_PTEXT(r->name), BC_PTEXT(sub), BC_PTEXT(rg),
					       BC_PTEXT(r->key), BC_PTEXT(r->id),
					       BC_PTEXT(bc_json_str(r->body, "location") ?: m->location), BC_PTEXT(body),
					       BC_PINT(now), BC_PINT(now + days * 86400), BC_PINT(protect)},
			   11, NULL, NULL, NULL, err);
	free(body);
	return st;
}

/* ---- shape ---- */

static json_t *dvault_json(const struct mgr_dvault *d)
{
	char id[BC_LIMIT_RESOURCE_ID + 256], loc[128], del[32], purge[32];
	json_t *tags = json_deep_copy(json_object_get(d->body, "tags"));
	mgr_location_key(d->location, loc, sizeof(loc));
	snprintf(id, sizeof(id), "/subscriptions/%s/providers/Microsoft.KeyVault/locations/%s/deletedVaults/%s", d->sub,
		 loc, d->name);
	mgr_iso8601(d->deleted, del);
	mgr_iso8601(d->purge_at, purge);
	return json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:o,s:b}}", "id", id, "name", d->name, "type",
			 MGR_DELETED_VAULT_TYPE, "properties", "vaultId", d->id, "location", d->location,
			 "deletionDate", del, "scheduledPurgeDate", purge, "tags",
			 json_is_object(tags) ? tags : json_object(), "purgeProtectionEnabled", d->protected);
}

/* ---- list ---- */

struct list_ctx {
	struct arm *a;
	json_t *arr;
	bool all; /* the caller may read every deleted vault of the subscription */
};

static int list_row(void *ctx, const struct bc_row *row)
{
	struct list_ctx *l = ctx;
	struct mgr_dvault d = {0};
	dv_row(&d, row);
	if (d.found && (l->all || arm_can(l->a, A_LIST, d.id)))
		json_array_append_new(l->arr, dvault_json(&d));
	mgr_dvault_release(&d);
	return 0;
}

void mgr_dvault_list_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	char sub[64], scope[96];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	snprintf(scope, sizeof(scope), "/subscriptions/%s", sub);
	/* Like the other lists: what the caller may read, at the subscription or at the vault. */
	struct list_ctx l = {&a, json_array(), arm_can(&a, A_LIST, scope)};
	int st = bc_store_exec(a.m->st, NULL, "SELECT " DV_COLS " FROM mgr_deleted_vaults WHERE sub = ? ORDER BY lname",
			       (struct bc_param[]){BC_PTEXT(sub)}, 1, list_row, &l, NULL, &err);
	arm_list_json(&a, st, l.arr, &err);
out:
	arm_end(&a);
}

/* ---- one deleted vault: GET and purge ---- */

/* The path's deleted vault, when it is there and in that location. */
static bool dv_matches(const struct mgr_dvault *d, const char *sub, const char *location)
{
	char want[128], have[128];
	mgr_location_key(location, want, sizeof(want));
	mgr_location_key(d->location, have, sizeof(have));
	return d->found && !strcmp(d->sub, sub) && !strcmp(want, have);
}

static void not_found(struct bc_http_res *res, const char *location, const char *name)
{
	arm_error(res, 404, "ResourceNotFound",
		  "The Resource 'Microsoft.KeyVault/locations/%.64s/deletedVaults/%.64s' under resource group '<null>' "
		  "was not found.", location, name);
}

/* Common checks of GET and purge: subscription, action at the subscription or the vault's own
 * scope (the answer is the same 403 whether the vault exists or not), the row. Returns false
 * after answering. */
static bool dv_begin(struct arm *a, const char *action, char *sub, char *lname, struct mgr_dvault *d)
{
	struct bc_error err = {0};
	const char *loc = a->req->captures[1], *name = a->req->captures[2];
	char scope[96];
	memset(d, 0, sizeof(*d));
	if (!arm_sub_ok(a, a->req->captures[0]))
		return false;
	(void)mgr_lower(a->req->captures[0], sub, 64);
	snprintf(scope, sizeof(scope), "/subscriptions/%s", sub);
	if (mgr_name_vault(name, &err) != BC_OK || !mgr_lower(name, lname, BC_LIMIT_NAME + 1)) {
		arm_error(a->res, 400, "VaultNameNotValid", "%s", err.msg);
		return false;
	}
	if (mgr_dvault_get(a->m, NULL, lname, false, d, &err) != BC_OK) {
		arm_error_from(a->res, &err);
		return false;
	}
	bool match = dv_matches(d, sub, loc);
	if (!arm_can(a, action, scope) && !(match && arm_can(a, action, d->id))) {
		(void)arm_allowed(a, action, scope); /* writes the 403 */
		return false;
	}
	if (!match) {
		not_found(a->res, loc, name);
		return false;
	}
	return true;
}

void mgr_dvault_get_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct mgr_dvault d = {0};
	char sub[64], lname[BC_LIMIT_NAME + 1];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (dv_begin(&a, A_READ, sub, lname, &d))
		arm_json(&a, 200, dvault_json(&d));
	mgr_dvault_release(&d);
	arm_end(&a);
}

struct purge_ctx {
	const char *lname;
	const char *sub;      /* NULL: the sweep (any subscription) */
	const char *location; /* NULL: the sweep */
	int64_t now;
	bool expired_only;    /* the sweep: only when the scheduled purge date passed */
	struct mgr_vault_hooks hooks;
	bool purged;
	char code[48];
	int64_t purge_at;
};

static int purge_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct purge_ctx *p = ctx;
	struct mgr_dvault d;
	p->purged = false;
	p->code[0] = '\0';
	int st = mgr_dvault_get(m, txn, p->lname, true, &d, err);
	if (st != BC_OK)
		return st;
	if (!d.found || (p->sub && !dv_matches(&d, p->sub, p->location)) || (p->expired_only && d.purge_at > p->now))
		goto done; /* gone meanwhile (another replica's sweep, a recover): nothing to do */
	if (!p->expired_only && d.protected && d.purge_at > p->now) {
		p->purge_at = d.purge_at;
		snprintf(p->code, sizeof(p->code), "Conflict");
		st = bc_error_set(err, BC_ERR_FORBIDDEN, "purge protection");
		goto done;
	}
	st = mgr_dvault_remove(m, txn, p->lname, err);
	if (st == BC_OK)
		st = p->hooks.purge_txn(p->hooks.ctx, txn, p->lname, err);
	if (st == BC_OK)
		p->purged = true;
done:
	mgr_dvault_release(&d);
	return st;
}

/* Runs one purge; calls the purged hook after the commit. */
static int purge_run(struct mgr *m, struct purge_ctx *p, struct bc_error *err)
{
	p->hooks = hooks_of(m);
	if (!p->hooks.purge_txn)
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "no vault service to purge the vault's contents");
	int st = mgr_txn(m, purge_txn, p, err);
	if (st == BC_OK && p->purged && p->hooks.purged)
		p->hooks.purged(p->hooks.ctx, p->lname);
	if (st == BC_OK && p->purged)
		bc_log_info("manager: vault %s purged%s", p->lname, p->expired_only ? " (retention ended)" : "");
	return st;
}

void mgr_dvault_purge_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	struct mgr_dvault d = {0};
	char sub[64], lname[BC_LIMIT_NAME + 1];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!dv_begin(&a, A_PURGE, sub, lname, &d))
		goto out;
	struct purge_ctx p = {.lname = lname, .sub = sub, .location = req->captures[1], .now = bc_now()};
	if (purge_run(a.m, &p, &err) != BC_OK) {
		if (p.code[0]) {
			char when[32];
			mgr_iso8601(p.purge_at, when);
			arm_error(res, 409, p.code,
				  "Operation 'DeletedVaultPurge' is not allowed: purge protection is enabled for vault "
				  "'%s'. It is purged automatically at its scheduled purge date (%s).", d.name, when);
		} else {
			arm_error_from(res, &err);
		}
		goto out;
	}
	if (!p.purged)
		not_found(res, req->captures[1], req->captures[2]);
	else
		bc_http_res_json(res, 200, NULL);
out:
	mgr_dvault_release(&d);
	arm_end(&a);
}

struct name_list {
	char names[PURGE_BATCH][BC_LIMIT_NAME + 1];
	int n;
};

static int name_row(void *ctx, const struct bc_row *row)
{
	struct name_list *l = ctx;
	if (l->n == PURGE_BATCH)
		return 1;
	col(l->names[l->n++], sizeof(l->names[0]), row, 0);
	return 0;
}

int mgr_vault_purge_expired(struct mgr *m, int64_t now, int *purged, struct bc_error *err)
{
	struct name_list *l = calloc(1, sizeof(*l));
	int st, n = 0;
	if (!l)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	st = bc_store_exec(m->st, NULL,
			   "SELECT lname FROM mgr_deleted_vaults WHERE purge_at <= ? ORDER BY purge_at, lname LIMIT ?",
			   (struct bc_param[]){BC_PINT(now), BC_PINT(PURGE_BATCH)}, 2, name_row, l, NULL, err);
	for (int i = 0; st == BC_OK && i < l->n; i++) {
		struct purge_ctx p = {.lname = l->names[i], .now = now, .expired_only = true};
		st = purge_run(m, &p, err);
		n += p.purged;
	}
	free(l);
	if (purged)
		*purged = n;
	return st;
}
