/* Microsoft.ManagedIdentity/userAssignedIdentities: a principal of its own, living until the
 * resource is deleted; deleting it removes it from every instance (Azure leaves dangling
 * references; badge does not) and deletes its principal and every credential. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define PT "Microsoft.ManagedIdentity/userAssignedIdentities"
#define A_READ PT "/read"
#define A_WRITE PT "/write"
#define A_DELETE PT "/delete"

static json_t *uai_json(const struct mgr_res *r)
{
	json_t *o = json_deep_copy(r->body);
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "type", json_string(PT));
	return o;
}

/* ---- delete (shared with group deletion) ---- */

/* Removes user-assigned identity uai_key from the instance vm_key (row locked here). */
static int vm_drop_uai(struct mgr *m, struct bc_txn *txn, const char *vm_key, const char *uai_key,
		       struct bc_error *err)
{
	struct mgr_res vm;
	int st = mgr_res_get(m, txn, vm_key, true, &vm, err);
	if (st != BC_OK || !vm.found)
		return st;
	json_t *ident = json_object_get(vm.body, "identity");
	json_t *uas = json_object_get(ident, "userAssignedIdentities");
	const char *k;
	json_t *v;
	void *tmp;
	char low[BC_LIMIT_RESOURCE_ID + 1];
	json_object_foreach_safe(uas, tmp, k, v)
	{
		if (mgr_lower(k, low, sizeof(low)) && !strcmp(low, uai_key))
			json_object_del(uas, k);
	}
	if (ident && json_object_size(uas) == 0) {
		json_object_del(ident, "userAssignedIdentities");
		if (vm.principal[0])
			json_object_set_new(ident, "type", json_string("SystemAssigned"));
		else
			json_object_del(vm.body, "identity");
	}
	st = mgr_res_put(m, txn, &vm, NULL, NULL, NULL, NULL, false, err);
	if (st == BC_OK)
		st = mgr_host_bump(m, txn, vm.host, err);
	mgr_res_release(&vm);
	return st;
}

static int vm_key_row(void *ctx, const struct bc_row *row)
{
	json_array_append_new(ctx, json_string(bc_row_text(row, 0)));
	return 0;
}

int mgr_uai_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err)
{
	struct mgr_res r;
	json_t *vms = json_array();
	size_t i;
	json_t *e;
	int st = mgr_res_get(m, txn, key, true, &r, err);
	if (st != BC_OK || !r.found)
		goto done;
	st = bc_store_exec(m->st, txn, "SELECT vm FROM mgr_vm_uai WHERE uai = ?", (struct bc_param[]){BC_PTEXT(key)}, 1,
			   vm_key_row, vms, NULL, err);
	json_array_foreach(vms, i, e)
	{
		if (st != BC_OK)
			break;
		st = vm_drop_uai(m, txn, json_string_value(e), key, err);
	}
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_vm_uai WHERE uai = ?", (struct bc_param[]){BC_PTEXT(key)},
				   1, NULL, NULL, NULL, err);
	if (st == BC_OK && r.principal[0]) {
		st = dir_principal_delete(m->dir, txn, r.principal, err);
		if (st == BC_ERR_NOT_FOUND)
			st = BC_OK;
		if (st == BC_OK)
			st = mgr_ra_delete_principal(m, txn, r.principal, err);
	}
	if (st == BC_OK)
		st = mgr_ra_delete_scope(m, txn, r.id, err);
	if (st == BC_OK)
		st = mgr_res_delete(m, txn, key, err);
done:
	mgr_res_release(&r);
	json_decref(vms);
	return st;
}

/* ---- handlers ---- */

struct uai_put {
	const char *sub, *rg, *name;
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char key[BC_LIMIT_RESOURCE_ID + 1];
	const char *location;
	json_t *tags; /* NULL: keep */
	bool patch;
	bool created;
	json_t *out;
};

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct uai_put *p = ctx;
	struct mgr_res r;
	char gname[96];
	bool exists = false;
	int st = mgr_group_exists(m, txn, p->sub, p->rg, gname, sizeof(gname), true, &exists, err);
	if (st != BC_OK)
		return st;
	if (!exists)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "Resource group '%s' could not be found.", p->rg);
	st = mgr_res_get(m, txn, p->key, true, &r, err);
	if (st != BC_OK)
		return st;
	if (!r.found && p->patch) {
		st = bc_error_set(err, BC_ERR_NOT_FOUND, "The Resource '%s/%s' under resource group '%s' was not found.", PT,
				  p->name, p->rg);
		goto done;
	}
	p->created = !r.found;
	if (!r.found) {
		struct dir_principal pr;
		snprintf(r.key, sizeof(r.key), "%s", p->key);
		(void)mgr_res_id(r.id, sizeof(r.id), p->sub, gname, PT, p->name);
		snprintf(r.name, sizeof(r.name), "%s", p->name);
		st = dir_principal_create(m->dir, txn, m->tenant, DIR_TYPE_MANAGED, p->name, r.id, &pr, err);
		if (st != BC_OK)
			goto done;
		snprintf(r.principal, sizeof(r.principal), "%s", pr.object_id);
		snprintf(r.client, sizeof(r.client), "%s", pr.app_id);
		r.body = json_pack("{s:s,s:{},s:{s:s,s:s,s:s}}", "location", p->location ? p->location : m->location,
				   "tags", "properties", "tenantId", m->tenant, "principalId", pr.object_id, "clientId",
				   pr.app_id);
		if (!r.body) {
			st = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
			goto done;
		}
	}
	if (p->tags)
		json_object_set(r.body, "tags", p->tags);
	char rgk[96];
	(void)mgr_lower(p->rg, rgk, sizeof(rgk));
	st = mgr_res_put(m, txn, &r, p->sub, rgk, MGR_T_UAI, NULL, p->created, err);
	if (st == BC_OK) {
		json_decref(p->out);
		p->out = uai_json(&r);
	}
done:
	mgr_res_release(&r);
	return st;
}

static json_t *uai_shape(struct mgr *m, const struct mgr_res *r)
{
	(void)m;
	return uai_json(r);
}

static const struct mgr_type item_type = {PT, mgr_name_uai, "InvalidResourceName", mgr_uai_delete_txn, uai_shape};

static bool parse_path(struct arm *a, char *sub, char *key, char *id, const char **rg, const char **name)
{
	return mgr_item_path(a, &item_type, sub, key, id, rg, name);
}

static void uai_write(struct bc_http_req *req, struct bc_http_res *res, void *ctx, bool patch)
{
	struct arm a;
	struct bc_error err = {0};
	struct uai_put p = {0};
	char sub[64];
	json_t *body = NULL;
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!parse_path(&a, sub, p.key, p.id, &p.rg, &p.name))
		goto out;
	if (!arm_allowed(&a, A_WRITE, p.id) || !(body = arm_body(&a)))
		goto out;
	if ((!patch || json_object_get(body, "tags")) && arm_tags(body, &p.tags, &err) != BC_OK) {
		arm_error(res, 400, "InvalidTag", "%s", err.msg);
		goto out;
	}
	p.sub = sub;
	p.location = bc_json_str(body, "location");
	p.patch = patch;
	if (mgr_txn(a.m, put_txn, &p, &err) != BC_OK) {
		if (err.status == BC_ERR_NOT_FOUND && strstr(err.msg, "Resource group"))
			arm_error(res, 404, "ResourceGroupNotFound", "%s", err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	arm_json(&a, p.created ? 201 : 200, p.out);
	p.out = NULL;
out:
	json_decref(p.out);
	json_decref(p.tags);
	json_decref(body);
	arm_end(&a);
}

static void uai_put_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	uai_write(req, res, ctx, false);
}

static void uai_patch_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	uai_write(req, res, ctx, true);
}

static void uai_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_item_handler(req, res, ctx, &item_type);
}

static void uai_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_list_handler(req, res, ctx, MGR_T_UAI, A_READ, uai_shape);
}

const struct bc_route mgr_uai_routes[] = {
	{"GET", "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", uai_list, NULL, 0},
	{"GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
	 uai_list, NULL, 0},
	{"PUT", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
	 uai_put_h, NULL, 0},
	{"PATCH",
	 "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
	 uai_patch_h, NULL, 0},
	{"GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
	 uai_get, NULL, 0},
	{"DELETE",
	 "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
	 uai_get, NULL, 0},
};
const size_t mgr_uai_nroutes = sizeof(mgr_uai_routes) / sizeof(mgr_uai_routes[0]);
