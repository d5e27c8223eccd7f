/* Microsoft.Compute/virtualMachines (the instances) with ARM's identity shape and semantics:
 * PUT states the whole identity (absent = None); PATCH changes it when `identity` is present,
 * merging userAssignedIdentities into the existing set with a null value removing an entry.
 * Enabling SystemAssigned creates the principal in the same transaction; disabling it, or
 * deleting the instance, deletes the principal and every credential of it. An identity that
 * leaves the last instance of a host loses the certificates bound to that host.
 *
 * Placement (badge's own property): properties.hostId names the Badge.Compute/hosts resource the
 * instance runs on, by ARM id or by bare host name; it is returned as the host's ARM id. An
 * instance created without one is placed on the only host when exactly one exists. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define PT "Microsoft.Compute/virtualMachines"
#define A_READ PT "/read"
#define A_WRITE PT "/write"
#define A_DELETE PT "/delete"
#define A_ASSIGN "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"

json_t *mgr_vm_json(struct mgr *m, const struct mgr_res *r)
{
	(void)m;
	json_t *o = json_deep_copy(r->body);
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "type", json_string(PT));
	return o;
}

/* ---- identity type ---- */

/* Parses "SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned", "None". */
static bool parse_type(const char *t, bool *sys, bool *ua)
{
	char norm[64];
	size_t n = 0;
	if (!t)
		return false;
	for (; *t && n + 1 < sizeof(norm); t++)
		if (*t != ' ')
			norm[n++] = *t;
	norm[n] = '\0';
	*sys = *ua = false;
	if (!strcasecmp(norm, "None"))
		return true;
	if (!strcasecmp(norm, "SystemAssigned"))
		return (*sys = true);
	if (!strcasecmp(norm, "UserAssigned"))
		return (*ua = true);
	if (!strcasecmp(norm, "SystemAssigned,UserAssigned") || !strcasecmp(norm, "UserAssigned,SystemAssigned"))
		return (*sys = *ua = true);
	return false;
}

static const char *type_name(bool sys, bool ua)
{
	return sys && ua ? "SystemAssigned, UserAssigned" : sys ? "SystemAssigned" : ua ? "UserAssigned" : "None";
}

/* ---- host placement ---- */

struct host_row {
	char key[BC_LIMIT_RESOURCE_ID + 1];
	char id[BC_LIMIT_RESOURCE_ID + 1];
	int n;
};

static int host_row(void *ctx, const struct bc_row *row)
{
	struct host_row *h = ctx;
	if (h->n++ == 0) {
		snprintf(h->key, sizeof(h->key), "%s", bc_row_text(row, 0));
		snprintf(h->id, sizeof(h->id), "%s", bc_row_text(row, 1));
	}
	return h->n > 1;
}

/* Resolves properties.hostId (name or id) to the host's key and id. */
static int resolve_host(struct mgr *m, struct bc_txn *txn, const char *want, struct host_row *h, struct bc_error *err)
{
	char low[BC_LIMIT_RESOURCE_ID + 8];
	int st;
	memset(h, 0, sizeof(*h));
	if (strchr(want, '/')) {
		struct mgr_rid rid;
		if (mgr_rid_parse(want, &rid, err) != BC_OK || rid.rg[0] || strcasecmp(rid.ns, "Badge.Compute") ||
		    strcasecmp(rid.type, "hosts"))
			return bc_error_set(err, BC_ERR_INVALID, "properties.hostId '%.200s' is not a Badge.Compute/hosts id",
					    want);
		(void)mgr_lower(want, low, sizeof(low));
		size_t l = strlen(low);
		if (l && low[l - 1] == '/')
			low[l - 1] = '\0';
		st = bc_store_exec(m->st, txn, "SELECT key, id FROM mgr_resources WHERE key = ? AND type = ?",
				   (struct bc_param[]){BC_PTEXT(low), BC_PTEXT(MGR_T_HOST)}, 2, host_row, h, NULL, err);
	} else {
		snprintf(low, sizeof(low), "host:");
		if (!mgr_lower(want, low + 5, sizeof(low) - 5))
			return bc_error_set(err, BC_ERR_INVALID, "properties.hostId is too long");
		st = bc_store_exec(m->st, txn, "SELECT key, id FROM mgr_resources WHERE gname = ?",
				   (struct bc_param[]){BC_PTEXT(low)}, 1, host_row, h, NULL, err);
	}
	if (st == BC_OK && h->n == 0)
		st = bc_error_set(err, BC_ERR_INVALID, "host '%.200s' does not exist", want);
	return st;
}

/* ---- PUT / PATCH ---- */

struct vm_put {
	struct arm *a;
	const char *sub, *rg, *name;
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char key[BC_LIMIT_RESOURCE_ID + 1];
	json_t *body;
	bool patch;
	bool created;
	json_t *out;
	char code[64]; /* ARM error code for err, "" = from the status */
};

static int fail(struct vm_put *p, struct bc_error *err, int st, const char *code, const char *fmt, ...)
	BC_PRINTF(5, 6);
static int fail(struct vm_put *p, struct bc_error *err, int st, const char *code, const char *fmt, ...)
{
	char msg[BC_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap); /* fmt's arguments may point into err */
	va_end(ap);
	snprintf(p->code, sizeof(p->code), "%s", code);
	return bc_error_set(err, st, "%s", msg);
}

/* Computes the desired user-assigned set (canonical ids in `want`, an object). */
static int desired_identity(struct vm_put *p, const json_t *old_ident, bool old_sys, bool *sys, bool *ua,
			    json_t *want, struct bc_error *err)
{
	const json_t *ident = json_object_get(p->body, "identity");
	const json_t *old_uas = json_object_get(old_ident, "userAssignedIdentities");
	const json_t *uas;
	const char *k;
	json_t *v;

	if (p->patch && !ident) { /* unchanged */
		*sys = old_sys;
		*ua = json_object_size(old_uas) > 0;
		json_object_update(want, (json_t *)old_uas);
		return BC_OK;
	}
	if (!ident || json_is_null(ident)) {
		*sys = *ua = false;
		return BC_OK;
	}
	if (!json_is_object(ident) || !parse_type(bc_json_str(ident, "type"), sys, ua))
		return fail(p, err, BC_ERR_INVALID, "InvalidIdentityType",
			    "identity.type '%.64s' is invalid: use SystemAssigned, UserAssigned, "
			    "'SystemAssigned, UserAssigned' or None", bc_json_str(ident, "type") ?: "");
	uas = json_object_get(ident, "userAssignedIdentities");
	if (uas && !json_is_null(uas) && !json_is_object(uas))
		return fail(p, err, BC_ERR_INVALID, "InvalidParameter", "%s",
			    "identity.userAssignedIdentities must be an object keyed by identity resource id");
	if (p->patch && *ua)
		json_object_update(want, (json_t *)old_uas);
	json_object_foreach((json_t *)uas, k, v)
	{
		if (!*ua && !json_is_null(v))
			return fail(p, err, BC_ERR_INVALID, "InvalidParameter",
				    "identity.userAssignedIdentities is given but identity.type '%s' does not include "
				    "UserAssigned", bc_json_str(ident, "type"));
		if (json_is_null(v)) {
			/* remove, case-insensitively */
			void *tmp;
			const char *wk;
			json_t *wv;
			json_object_foreach_safe(want, tmp, wk, wv)
			{
				if (!strcasecmp(wk, k))
					json_object_del(want, wk);
			}
			continue;
		}
		json_object_set_new(want, k, json_object());
	}
	if (*ua && json_object_size(want) == 0)
		return fail(p, err, BC_ERR_INVALID, "InvalidParameter", "%s",
			    "identity.type includes UserAssigned but no user-assigned identity is given");
	if (json_object_size(want) > MGR_MAX_UAI_PER_VM)
		return fail(p, err, BC_ERR_INVALID, "InvalidParameter", "%s", "too many user-assigned identities");
	return BC_OK;
}

/* Validates each wanted identity and fills the output map and the list of keys. */
static int check_uais(struct mgr *m, struct bc_txn *txn, struct vm_put *p, const json_t *old_uas, json_t *want,
		      json_t *map, json_t *keys, struct bc_error *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(want, k, v)
	{
		struct mgr_rid rid;
		struct mgr_res u;
		char low[BC_LIMIT_RESOURCE_ID + 1];
		bool was = false;
		const char *ok;
		json_t *ov;
		if (mgr_rid_parse(k, &rid, err) != BC_OK || !rid.rg[0] || strcasecmp(rid.ns, "Microsoft.ManagedIdentity") ||
		    strcasecmp(rid.type, "userAssignedIdentities"))
			return fail(p, err, BC_ERR_INVALID, "InvalidParameter",
				    "'%.300s' is not a user-assigned identity resource id", k);
		if (strcasecmp(rid.sub, p->sub))
			return fail(p, err, BC_ERR_INVALID, "FailedIdentityOperation",
				    "user-assigned identity '%.300s' belongs to another subscription; an instance can "
				    "only use identities of its own subscription", k);
		(void)mgr_lower(k, low, sizeof(low));
		size_t l = strlen(low);
		if (l && low[l - 1] == '/')
			low[--l] = '\0';
		if (json_object_get(keys, low))
			continue; /* the same identity spelled twice */
		int st = mgr_res_get(m, txn, low, false, &u, err);
		if (st != BC_OK)
			return st;
		if (!u.found) {
			mgr_res_release(&u);
			return fail(p, err, BC_ERR_INVALID, "FailedIdentityOperation",
				    "user-assigned identity '%.300s' was not found", k);
		}
		json_object_foreach((json_t *)old_uas, ok, ov)
		{
			if (!strcasecmp(ok, u.id))
				was = true;
		}
		if (!was && !arm_can(p->a, A_ASSIGN, u.id)) {
			char linked[BC_LIMIT_RESOURCE_ID + 1];
			snprintf(linked, sizeof(linked), "%s", u.id);
			mgr_res_release(&u);
			return fail(p, err, BC_ERR_FORBIDDEN, "LinkedAuthorizationFailed",
				    "The client '%s' does not have permission to perform action '%s' on the linked "
				    "scope '%.120s'", p->a->claims.oid, A_ASSIGN, linked);
		}
		json_object_set_new(map, u.id, json_pack("{s:s,s:s}", "principalId", u.principal, "clientId", u.client));
		json_object_set_new(keys, low, json_string(u.principal));
		mgr_res_release(&u);
	}
	return BC_OK;
}

/* Identity oids the old instance carried on its host (for revocation checks). */
static void old_oids(const struct mgr_res *old, json_t *oids)
{
	const char *k;
	json_t *v;
	if (old->principal[0])
		json_array_append_new(oids, json_string(old->principal));
	json_object_foreach(json_object_get(json_object_get(old->body, "identity"), "userAssignedIdentities"), k, v)
	{
		const char *pid = bc_json_str(v, "principalId");
		if (pid)
			json_array_append_new(oids, json_string(pid));
	}
}

static int revoke_all(struct mgr *m, struct bc_txn *txn, const char *host_key, json_t *oids, const char *skip,
		      struct bc_error *err)
{
	size_t i;
	json_t *e;
	json_array_foreach(oids, i, e)
	{
		const char *oid = json_string_value(e);
		if (skip && !strcmp(skip, oid))
			continue;
		int st = mgr_revoke_if_gone(m, txn, host_key, oid, err);
		if (st != BC_OK)
			return st;
	}
	return BC_OK;
}

static int set_vm_uai(struct mgr *m, struct bc_txn *txn, const char *vm_key, json_t *keys, struct bc_error *err)
{
	const char *k;
	json_t *v;
	int st = bc_store_exec(m->st, txn, "DELETE FROM mgr_vm_uai WHERE vm = ?", (struct bc_param[]){BC_PTEXT(vm_key)}, 1,
			       NULL, NULL, NULL, err);
	json_object_foreach(keys, k, v)
	{
		if (st != BC_OK)
			break;
		st = bc_store_exec(m->st, txn, "INSERT INTO mgr_vm_uai (vm, uai) VALUES (?, ?)",
				   (struct bc_param[]){BC_PTEXT(vm_key), BC_PTEXT(k)}, 2, NULL, NULL, NULL, err);
	}
	return st;
}

/* Builds location/tags/properties of the new body; resolves placement. */
static int shape_body(struct mgr *m, struct bc_txn *txn, struct vm_put *p, const struct mgr_res *old,
		      const char *group_location, json_t *nb, struct host_row *host, struct bc_error *err)
{
	const json_t *props_in = json_object_get(p->body, "properties");
	json_t *props, *tags = NULL;
	const char *loc = bc_json_str(p->body, "location");
	const char *old_loc = old->found ? bc_json_str(old->body, "location") : NULL;
	int st;

	if (props_in && !json_is_null(props_in) && !json_is_object(props_in))
		return fail(p, err, BC_ERR_INVALID, "InvalidParameter", "%s", "properties must be an object");
	if (old_loc && loc && strcasecmp(loc, old_loc))
		return fail(p, err, BC_ERR_CONFLICT, "InvalidResourceLocation",
			    "The resource already exists in location '%s'; the location cannot be changed.", old_loc);
	json_object_set_new(nb, "location", json_string(old_loc ? old_loc : loc ? loc : group_location));
	if (!p->patch || json_object_get(p->body, "tags")) {
		if (arm_tags(p->body, &tags, err) != BC_OK)
			return fail(p, err, BC_ERR_INVALID, "InvalidTag", "%s", err->msg);
		json_object_set_new(nb, "tags", tags);
	} else {
		json_object_set(nb, "tags", json_object_get(old->body, "tags") ?: json_object());
	}
	if (p->patch)
		props = json_deep_copy(json_object_get(old->body, "properties") ?: json_object());
	else
		props = json_object();
	if (!props)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	json_object_set_new(nb, "properties", props);
	if (json_is_object(props_in))
		json_object_update(props, (json_t *)props_in);

	/* placement */
	json_t *hv = json_object_get(props, "hostId");
	if (hv && !json_is_null(hv) && !json_is_string(hv))
		return fail(p, err, BC_ERR_INVALID, "InvalidParameter", "%s", "properties.hostId must be a string");
	memset(host, 0, sizeof(*host));
	if (json_is_string(hv) && json_string_length(hv) > 0) {
		st = resolve_host(m, txn, json_string_value(hv), host, err);
		if (st != BC_OK)
			return fail(p, err, st, "InvalidParameter", "%s", err->msg);
	} else if (old->found) {
		/* a PUT or PATCH that names no host keeps the instance where it runs */
		snprintf(host->key, sizeof(host->key), "%s", old->host);
		snprintf(host->id, sizeof(host->id), "%s", bc_json_str(json_object_get(old->body, "properties"), "hostId") ?: "");
	} else {
		st = bc_store_exec(m->st, txn, "SELECT key, id FROM mgr_resources WHERE type = ? ORDER BY key LIMIT 2",
				   (struct bc_param[]){BC_PTEXT(MGR_T_HOST)}, 1, host_row, host, NULL, err);
		if (st != BC_OK)
			return st;
		if (host->n > 1)
			return fail(p, err, BC_ERR_INVALID, "HostRequired",
				    "%s", "several hosts exist: name the instance's host in properties.hostId");
		if (host->n == 0)
			host->key[0] = host->id[0] = '\0';
	}
	if (host->id[0])
		json_object_set_new(props, "hostId", json_string(host->id));
	else
		json_object_del(props, "hostId");
	const char *vmid = old->found ? bc_json_str(json_object_get(old->body, "properties"), "vmId") : NULL;
	char fresh[37];
	if (!vmid) {
		if (bc_uuid4(fresh) != BC_OK)
			return bc_error_set(err, BC_ERR_CRYPTO, "cannot generate a vmId");
		vmid = fresh;
	}
	json_object_set_new(props, "vmId", json_string(vmid));
	json_object_set_new(props, "provisioningState", json_string("Succeeded"));
	return BC_OK;
}

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct vm_put *p = ctx;
	struct mgr_res old, nr = {0};
	struct host_row host;
	char gname[96], rgk[96], gloc[128] = "";
	bool exists = false, sys = false, ua = false;
	json_t *want = json_object(), *map = json_object(), *keys = json_object(), *oids = json_array();
	json_t *nb = json_object();
	const char *deleted_sp = NULL;
	int st;

	p->code[0] = '\0';
	memset(&old, 0, sizeof(old));
	if (!want || !map || !keys || !oids || !nb) {
		st = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	st = mgr_group_exists(m, txn, p->sub, p->rg, gname, sizeof(gname), true, &exists, err);
	if (st != BC_OK)
		goto done;
	if (!exists) {
		st = fail(p, err, BC_ERR_NOT_FOUND, "ResourceGroupNotFound", "Resource group '%s' could not be found.", p->rg);
		goto done;
	}
	{
		char *l = NULL;
		char gk[96];
		(void)mgr_lower(p->rg, gk, sizeof(gk));
		st = bc_store_get_text(m->st, txn, "SELECT location FROM mgr_groups WHERE sub = ? AND gkey = ?",
				       (struct bc_param[]){BC_PTEXT(p->sub), BC_PTEXT(gk)}, 2, &l, err);
		if (st != BC_OK)
			goto done;
		snprintf(gloc, sizeof(gloc), "%s", l ? l : m->location);
		free(l);
	}
	st = mgr_res_get(m, txn, p->key, true, &old, err);
	if (st != BC_OK)
		goto done;
	if (!old.found && p->patch) {
		st = fail(p, err, BC_ERR_NOT_FOUND, "ResourceNotFound",
			  "The Resource 'Microsoft.Compute/virtualMachines/%s' was not found.", p->name);
		goto done;
	}
	const json_t *old_ident = json_object_get(old.body, "identity");
	st = desired_identity(p, old_ident, old.principal[0] != 0, &sys, &ua, want, err);
	if (st == BC_OK)
		st = check_uais(m, txn, p, json_object_get(old_ident, "userAssignedIdentities"), want, map, keys, err);
	if (st == BC_OK)
		st = shape_body(m, txn, p, &old, gloc, nb, &host, err);
	if (st != BC_OK)
		goto done;

	/* the new row */
	snprintf(nr.key, sizeof(nr.key), "%s", p->key);
	if (old.found) {
		snprintf(nr.id, sizeof(nr.id), "%s", old.id);
		snprintf(nr.name, sizeof(nr.name), "%s", old.name);
	} else {
		(void)mgr_res_id(nr.id, sizeof(nr.id), p->sub, gname, PT, p->name);
		snprintf(nr.name, sizeof(nr.name), "%s", p->name);
	}
	snprintf(nr.host, sizeof(nr.host), "%s", host.key);
	old_oids(&old, oids);
	if (sys && old.principal[0]) {
		snprintf(nr.principal, sizeof(nr.principal), "%s", old.principal);
		snprintf(nr.client, sizeof(nr.client), "%s", old.client);
	} else if (sys) {
		struct dir_principal pr;
		st = dir_principal_create(m->dir, txn, m->tenant, DIR_TYPE_MANAGED, nr.name, nr.id, &pr, err);
		if (st != BC_OK)
			goto done;
		snprintf(nr.principal, sizeof(nr.principal), "%s", pr.object_id);
		snprintf(nr.client, sizeof(nr.client), "%s", pr.app_id);
	} else if (old.principal[0]) {
		st = dir_principal_delete(m->dir, txn, old.principal, err);
		if (st == BC_ERR_NOT_FOUND)
			st = BC_OK;
		if (st == BC_OK)
			st = mgr_ra_delete_principal(m, txn, old.principal, err);
		if (st != BC_OK)
			goto done;
		deleted_sp = old.principal;
	}
	if (sys || ua) {
		json_t *ident = json_pack("{s:s}", "type", type_name(sys, ua));
		if (sys) {
			json_object_set_new(ident, "principalId", json_string(nr.principal));
			json_object_set_new(ident, "tenantId", json_string(m->tenant));
		}
		if (ua)
			json_object_set(ident, "userAssignedIdentities", map);
		json_object_set_new(nb, "identity", ident);
	}
	nr.body = nb;
	nb = NULL;
	(void)mgr_lower(p->rg, rgk, sizeof(rgk));
	st = mgr_res_put(m, txn, &nr, p->sub, rgk, MGR_T_VM, NULL, !old.found, err);
	if (st == BC_OK)
		st = set_vm_uai(m, txn, nr.key, keys, err);
	if (st == BC_OK && old.found)
		st = revoke_all(m, txn, old.host, oids, deleted_sp, err);
	if (st == BC_OK)
		st = mgr_host_bump(m, txn, old.host, err);
	if (st == BC_OK && strcmp(old.host, nr.host))
		st = mgr_host_bump(m, txn, nr.host, err);
	if (st == BC_OK) {
		p->created = !old.found;
		json_decref(p->out);
		p->out = mgr_vm_json(m, &nr);
	}
done:
	mgr_res_release(&old);
	mgr_res_release(&nr);
	json_decref(nb);
	json_decref(want);
	json_decref(map);
	json_decref(keys);
	json_decref(oids);
	return st;
}

static const struct mgr_type item_type = {PT, mgr_name_vm, "InvalidParameter", mgr_vm_delete_txn, mgr_vm_json};

static bool parse_path(struct arm *a, char *sub, char *key, char *id, const char **rg, const char **name)
{
	return mgr_item_path(a, &item_type, sub, key, id, rg, name);
}

static const int code_status[] = {
	[BC_ERR_INVALID] = 400, [BC_ERR_NOT_FOUND] = 404, [BC_ERR_CONFLICT] = 409, [BC_ERR_FORBIDDEN] = 403,
};

static void vm_write(struct bc_http_req *req, struct bc_http_res *res, void *ctx, bool patch)
{
	struct arm a;
	struct bc_error err = {0};
	struct vm_put p = {0};
	char sub[64];
	if (!arm_begin(&a, ctx, req, res))
		return;
	p.a = &a;
	if (!parse_path(&a, sub, p.key, p.id, &p.rg, &p.name))
		goto out;
	if (!arm_allowed(&a, A_WRITE, p.id) || !(p.body = arm_body(&a)))
		goto out;
	p.sub = sub;
	p.patch = patch;
	if (mgr_txn(a.m, put_txn, &p, &err) != BC_OK) {
		if (p.code[0] && err.status >= 0 && (size_t)err.status < sizeof(code_status) / sizeof(code_status[0]) &&
		    code_status[err.status])
			arm_error(res, code_status[err.status], p.code, "%s", err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	arm_json(&a, p.created ? 201 : 200, p.out);
	p.out = NULL;
out:
	json_decref(p.out);
	json_decref(p.body);
	arm_end(&a);
}

static void vm_put_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	vm_write(req, res, ctx, false);
}

static void vm_patch_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	vm_write(req, res, ctx, true);
}

/* ---- delete ---- */

int mgr_vm_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err)
{
	struct mgr_res r;
	json_t *oids = json_array();
	int st = mgr_res_get(m, txn, key, true, &r, err);
	if (st != BC_OK || !r.found)
		goto done;
	old_oids(&r, oids);
	if (r.principal[0]) {
		st = dir_principal_delete(m->dir, txn, r.principal, err);
		if (st == BC_ERR_NOT_FOUND)
			st = BC_OK;
		if (st == BC_OK)
			st = mgr_ra_delete_principal(m, txn, r.principal, err);
	}
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_vm_uai WHERE vm = ?", (struct bc_param[]){BC_PTEXT(key)}, 1,
				   NULL, NULL, NULL, err);
	if (st == BC_OK)
		st = mgr_res_delete(m, txn, key, err);
	if (st == BC_OK)
		st = revoke_all(m, txn, r.host, oids, r.principal[0] ? r.principal : NULL, err);
	if (st == BC_OK)
		st = mgr_ra_delete_scope(m, txn, r.id, err);
	if (st == BC_OK)
		st = mgr_host_bump(m, txn, r.host, err);
done:
	mgr_res_release(&r);
	json_decref(oids);
	return st;
}

static void vm_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_item_handler(req, res, ctx, &item_type);
}

/* ---- list (shared shape with vaults) ---- */

struct list_ctx {
	struct arm *a;
	json_t *arr;
	const char *action;
	json_t *(*shape)(struct mgr *, const struct mgr_res *);
};

static int list_row(void *ctx, const struct bc_row *row)
{
	struct list_ctx *l = ctx;
	struct mgr_res r = {0};
	snprintf(r.id, sizeof(r.id), "%s", bc_row_text(row, 0));
	snprintf(r.name, sizeof(r.name), "%s", bc_row_text(row, 1));
	if (!arm_can(l->a, l->action, r.id))
		return 0;
	r.body = json_loads(bc_row_text(row, 2), 0, NULL);
	if (r.body)
		json_array_append_new(l->arr, l->shape(l->a->m, &r));
	mgr_res_release(&r);
	return 0;
}

void mgr_list_handler(struct bc_http_req *req, struct bc_http_res *res, void *ctx, const char *type,
		      const char *action, json_t *(*shape)(struct mgr *, const struct mgr_res *))
{
	struct arm a;
	struct bc_error err = {0};
	char sub[64], rgk[96];
	int st;
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	struct list_ctx l = {&a, json_array(), action, shape};
	if (req->ncaptures > 1) {
		bool exists = false;
		(void)mgr_lower(req->captures[1], rgk, sizeof(rgk));
		if (mgr_group_exists(a.m, NULL, sub, req->captures[1], NULL, 0, false, &exists, &err) != BC_OK ||
		    !exists) {
			json_decref(l.arr);
			if (err.status)
				arm_error_from(res, &err);
			else
				arm_error(res, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.",
					  req->captures[1]);
			goto out;
		}
		st = bc_store_exec(a.m->st, NULL,
				   "SELECT id, name, body FROM mgr_resources WHERE sub = ? AND rg = ? AND type = ? ORDER BY key",
				   (struct bc_param[]){BC_PTEXT(sub), BC_PTEXT(rgk), BC_PTEXT(type)}, 3, list_row, &l, NULL,
				   &err);
	} else {
		st = bc_store_exec(a.m->st, NULL, "SELECT id, name, body FROM mgr_resources WHERE sub = ? AND type = ? ORDER BY key",
				   (struct bc_param[]){BC_PTEXT(sub), BC_PTEXT(type)}, 2, list_row, &l, NULL, &err);
	}
	arm_list_json(&a, st, l.arr, &err);
out:
	arm_end(&a);
}

static void vm_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_list_handler(req, res, ctx, MGR_T_VM, A_READ, mgr_vm_json);
}

const struct bc_route mgr_vm_routes[] = {
	{"GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines", vm_list, NULL, 0},
	{"GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines", vm_list, NULL, 0},
	{"PUT", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}", vm_put_h, NULL, 0},
	{"PATCH", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}", vm_patch_h,
	 NULL, 0},
	{"GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}", vm_get, NULL, 0},
	{"DELETE", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}", vm_get,
	 NULL, 0},
};
const size_t mgr_vm_nroutes = sizeof(mgr_vm_routes) / sizeof(mgr_vm_routes[0]);
