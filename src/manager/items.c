/* What every resource type of a resource group shares: checking a request's path (subscription,
 * name rules, the resource id and its lower-case store key), and GET / DELETE of one resource
 * with ARM's answers (404 ResourceNotFound; DELETE 200 when something was deleted, 204 when
 * nothing was there), the type-specific deletion running in one transaction. */
#include <stdio.h>
#include <string.h>

#include "manager/mgr_int.h"

bool mgr_item_path(struct arm *a, const struct mgr_type *t, char *sub, char *key, char *id, const char **rg,
		   const char **name)
{
	struct bc_error err = {0};
	*rg = a->req->captures[1];
	*name = a->req->captures[2];
	if (!arm_sub_ok(a, a->req->captures[0]))
		return false;
	(void)mgr_lower(a->req->captures[0], sub, 64);
	if (t->name_ok(*name, &err) != BC_OK) {
		arm_error(a->res, 400, t->name_code, "%s", err.msg);
		return false;
	}
	if (mgr_res_id(id, BC_LIMIT_RESOURCE_ID + 1, sub, *rg, t->type, *name) != BC_OK ||
	    !mgr_lower(id, key, BC_LIMIT_RESOURCE_ID + 1)) {
		arm_error(a->res, 400, t->name_code, "resource id too long");
		return false;
	}
	return true;
}

struct del_ctx {
	const struct mgr_type *t;
	const char *key;
	bool found;
};

static int del_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct del_ctx *d = ctx;
	struct mgr_res r;
	int st = mgr_res_get(m, txn, d->key, true, &r, err);
	d->found = r.found;
	mgr_res_release(&r);
	if (st == BC_OK && d->found)
		st = d->t->delete_txn(m, txn, d->key, err);
	return st;
}

void mgr_item_handler(struct bc_http_req *req, struct bc_http_res *res, void *ctx, const struct mgr_type *t)
{
	struct arm a;
	struct bc_error err = {0};
	char sub[64], key[BC_LIMIT_RESOURCE_ID + 1], id[BC_LIMIT_RESOURCE_ID + 1], action[160];
	const char *rg, *name;
	struct mgr_res r = {0};
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!mgr_item_path(&a, t, sub, key, id, &rg, &name))
		goto out;
	if (!strcmp(req->method, "DELETE")) {
		struct del_ctx d = {t, key, false};
		snprintf(action, sizeof(action), "%s/delete", t->type);
		if (!arm_allowed(&a, action, id))
			goto out;
		if (mgr_txn(a.m, del_txn, &d, &err) != BC_OK)
			arm_error_from(res, &err);
		else
			bc_http_res_json(res, d.found ? 200 : 204, NULL);
		goto out;
	}
	snprintf(action, sizeof(action), "%s/read", t->type);
	if (!arm_allowed(&a, action, id))
		goto out;
	if (mgr_res_get(a.m, NULL, key, false, &r, &err) != BC_OK) {
		arm_error_from(res, &err);
		goto out;
	}
	if (!r.found) {
		arm_error(res, 404, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found.",
			  t->type, name, rg);
		goto out;
	}
	arm_json(&a, 200, t->shape(a.m, &r));
out:
	mgr_res_release(&r);
	arm_end(&a);
}
