/* Resource groups: PUT, GET, HEAD, PATCH, list, DELETE (which deletes everything the group holds,
 * identities and their principals included, in one transaction). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define A_READ "Microsoft.Resources/subscriptions/resourceGroups/read"
#define A_WRITE "Microsoft.Resources/subscriptions/resourceGroups/write"
#define A_DELETE "Microsoft.Resources/subscriptions/resourceGroups/delete"

static json_t *group_json(const char *sub, const char *name, const char *location, const char *tags)
{
	char id[256];
	json_t *t = json_loads(tags ? tags : "{}", 0, NULL);
	snprintf(id, sizeof(id), "/subscriptions/%s/resourceGroups/%s", sub, name);
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:{s:s}}", "id", id, "name", name, "type",
			 "Microsoft.Resources/resourceGroups", "location", location, "tags", t ? t : json_object(),
			 "properties", "provisioningState", "Succeeded");
}

struct grp_list {
	struct arm *a;
	const char *sub;
	json_t *arr;
};

static int list_row(void *ctx, const struct bc_row *row)
{
	struct grp_list *l = ctx;
	char scope[256];
	snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%s", l->sub, bc_row_text(row, 0));
	if (arm_can(l->a, A_READ, scope))
		json_array_append_new(l->arr, group_json(l->sub, bc_row_text(row, 0), bc_row_text(row, 1),
							 bc_row_text(row, 2)));
	return 0;
}

static void group_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	char sub[64];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	struct grp_list l = {&a, sub, json_array()};
	int st = bc_store_exec(a.m->st, NULL, "SELECT name, location, tags FROM mgr_groups WHERE sub = ? ORDER BY gkey",
			       (struct bc_param[]){BC_PTEXT(sub)}, 1, list_row, &l, NULL, &err);
	arm_list_json(&a, st, l.arr, &err);
out:
	arm_end(&a);
}

struct grp_one {
	char name[96];
	char location[128];
	char *tags;
	bool found;
};

static int one_row(void *ctx, const struct bc_row *row)
{
	struct grp_one *g = ctx;
	snprintf(g->name, sizeof(g->name), "%s", bc_row_text(row, 0));
	snprintf(g->location, sizeof(g->location), "%s", bc_row_text(row, 1));
	free(g->tags);
	g->tags = strdup(bc_row_text(row, 2) ? bc_row_text(row, 2) : "{}");
	g->found = true;
	return 1;
}

static int group_read(struct mgr *m, struct bc_txn *txn, const char *sub, const char *rg, bool lock,
		      struct grp_one *g, struct bc_error *err)
{
	char key[96];
	memset(g, 0, sizeof(*g));
	if (!mgr_lower(rg, key, sizeof(key)))
		return BC_OK;
	return bc_store_exec(m->st, txn,
			     lock && !strcmp(bc_store_backend(m->st), "postgres")
				     ? "SELECT name, location, tags FROM mgr_groups WHERE sub = ? AND gkey = ? FOR UPDATE"
				     : "SELECT name, location, tags FROM mgr_groups WHERE sub = ? AND gkey = ?",
			     (struct bc_param[]){BC_PTEXT(sub), BC_PTEXT(key)}, 2, one_row, g, NULL, err);
}

struct grp_put {
	const char *sub, *rg, *location;
	json_t *tags;      /* NULL: keep (PATCH without tags) */
	bool patch;
	bool created;
	struct grp_one out;
	char conflict[256];
};

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct grp_put *p = ctx;
	struct grp_one cur;
	char key[96];
	char *tags = NULL;
	int st = group_read(m, txn, p->sub, p->rg, true, &cur, err);
	if (st != BC_OK)
		goto done;
	(void)mgr_lower(p->rg, key, sizeof(key));
	if (!cur.found && p->patch) {
		st = bc_error_set(err, BC_ERR_NOT_FOUND, "Resource group '%s' could not be found.", p->rg);
		goto done;
	}
	if (cur.found && p->location && strcasecmp(cur.location, p->location)) {
		st = bc_error_set(err, BC_ERR_CONFLICT,
				  "Invalid resource group location '%s'. The Resource group already exists in location "
				  "'%s'.", p->location, cur.location);
		goto done;
	}
	tags = p->tags ? bc_json_dumps(p->tags) : strdup(cur.found ? cur.tags : "{}");
	if (!tags) {
		st = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (cur.found)
		st = bc_store_exec(m->st, txn, "UPDATE mgr_groups SET tags = ? WHERE sub = ? AND gkey = ?",
				   (struct bc_param[]){BC_PTEXT(tags), BC_PTEXT(p->sub), BC_PTEXT(key)}, 3, NULL, NULL,
				   NULL, err);
	else
		st = bc_store_exec(m->st, txn,
				   "INSERT INTO mgr_groups (sub, gkey, name, location, tags, created) VALUES "
				   "(?, ?, ?, ?, ?, ?) ON CONFLICT (sub, gkey) DO NOTHING",
				   (struct bc_param[]){BC_PTEXT(p->sub), BC_PTEXT(key), BC_PTEXT(p->rg),
						       BC_PTEXT(p->location), BC_PTEXT(tags), BC_PINT(bc_now())},
				   6, NULL, NULL, NULL, err);
	if (st == BC_OK) {
		p->created = !cur.found;
		free(p->out.tags);
		p->out = cur;
		cur.tags = NULL;
		if (!cur.found) {
			snprintf(p->out.name, sizeof(p->out.name), "%s", p->rg);
			snprintf(p->out.location, sizeof(p->out.location), "%s", p->location);
		}
		free(p->out.tags);
		p->out.tags = tags;
		tags = NULL;
	}
done:
	free(cur.tags);
	free(tags);
	return st;
}

static void group_put(struct bc_http_req *req, struct bc_http_res *res, void *ctx, bool patch)
{
	struct arm a;
	struct bc_error err = {0};
	char scope[256];
	json_t *body = NULL, *tags = NULL;
	struct grp_put p = {0};
	if (!arm_begin(&a, ctx, req, res))
		return;
	const char *rg = req->captures[1];
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	if (mgr_name_group(rg, &err) != BC_OK) {
		arm_error(res, 400, "InvalidResourceGroup", "%s", err.msg);
		goto out;
	}
	snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%s", req->captures[0], rg);
	if (!arm_allowed(&a, A_WRITE, scope))
		goto out;
	if (!(body = arm_body(&a)))
		goto out;
	if (!patch && !bc_json_str(body, "location")) {
		arm_error(res, 400, "LocationRequired", "The location property is required for this definition.");
		goto out;
	}
	if ((!patch || json_object_get(body, "tags")) && arm_tags(body, &tags, &err) != BC_OK) {
		arm_error(res, 400, "InvalidTag", "%s", err.msg);
		goto out;
	}
	char sub[64];
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	p.sub = sub;
	p.rg = rg;
	p.location = bc_json_str(body, "location");
	p.tags = tags;
	p.patch = patch;
	if (mgr_txn(a.m, put_txn, &p, &err) != BC_OK) {
		if (err.status == BC_ERR_NOT_FOUND)
			arm_error(res, 404, "ResourceGroupNotFound", "%s", err.msg);
		else if (err.status == BC_ERR_CONFLICT)
			arm_error(res, 409, "InvalidResourceGroupLocation", "%s", err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	arm_json(&a, p.created ? 201 : 200, group_json(req->captures[0], p.out.name, p.out.location, p.out.tags));
out:
	free(p.out.tags);
	json_decref(tags);
	json_decref(body);
	arm_end(&a);
}

struct key_list {
	json_t *arr;
};

static int key_row(void *ctx, const struct bc_row *row)
{
	struct key_list *k = ctx;
	json_array_append_new(k->arr, json_pack("[s,s]", bc_row_text(row, 0), bc_row_text(row, 1)));
	return 0;
}

struct grp_del {
	const char *sub, *rg;
	bool found;
	char name[96];
};

static int del_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct grp_del *d = ctx;
	struct grp_one cur;
	char key[96], scope[256];
	struct key_list k = {json_array()};
	size_t i;
	json_t *e;
	int st = group_read(m, txn, d->sub, d->rg, true, &cur, err);
	free(cur.tags);
	if (st != BC_OK || !(d->found = cur.found))
		goto done;
	snprintf(d->name, sizeof(d->name), "%s", cur.name);
	(void)mgr_lower(d->rg, key, sizeof(key));
	st = bc_store_exec(m->st, txn, "SELECT key, type FROM mgr_resources WHERE sub = ? AND rg = ?",
			   (struct bc_param[]){BC_PTEXT(d->sub), BC_PTEXT(key)}, 2, key_row, &k, NULL, err);
	/* Instances first (their identities' certificates), then identities (which leave instances
	 * of other groups too), then the rest. */
	static const char *const order[] = {MGR_T_VM, MGR_T_UAI, MGR_T_VAULT};
	for (size_t o = 0; st == BC_OK && o < 3; o++)
		json_array_foreach(k.arr, i, e)
		{
			const char *rk = json_string_value(json_array_get(e, 0));
			if (strcmp(json_string_value(json_array_get(e, 1)), order[o]))
				continue;
			if (o == 0)
				st = mgr_vm_delete_txn(m, txn, rk, err);
			else if (o == 1)
				st = mgr_uai_delete_txn(m, txn, rk, err);
			else
				st = mgr_vault_delete_txn(m, txn, rk, err);
			if (st != BC_OK)
				break;
		}
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_resources WHERE sub = ? AND rg = ?",
				   (struct bc_param[]){BC_PTEXT(d->sub), BC_PTEXT(key)}, 2, NULL, NULL, NULL, err);
	snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%s", d->sub, key);
	if (st == BC_OK)
		st = mgr_ra_delete_scope(m, txn, scope, err);
	if (st == BC_OK)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_groups WHERE sub = ? AND gkey = ?",
				   (struct bc_param[]){BC_PTEXT(d->sub), BC_PTEXT(key)}, 2, NULL, NULL, NULL, err);
done:
	json_decref(k.arr);
	return st;
}

static void group_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	char scope[256], sub[64];
	struct grp_one g = {0};
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%s", req->captures[0], req->captures[1]);
	bool del = !strcmp(req->method, "DELETE");
	if (!arm_allowed(&a, del ? A_DELETE : A_READ, scope))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	if (del) {
		struct grp_del d = {sub, req->captures[1], false, ""};
		if (mgr_txn(a.m, del_txn, &d, &err) != BC_OK)
			arm_error_from(res, &err);
		else if (!d.found)
			arm_error(res, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.",
				  req->captures[1]);
		else
			bc_http_res_json(res, 200, NULL);
		goto out;
	}
	if (group_read(a.m, NULL, sub, req->captures[1], false, &g, &err) != BC_OK) {
		arm_error_from(res, &err);
		goto out;
	}
	if (!g.found) {
		arm_error(res, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.", req->captures[1]);
		goto out;
	}
	if (!strcmp(req->method, "HEAD"))
		bc_http_res_json(res, 204, NULL);
	else
		arm_json(&a, 200, group_json(req->captures[0], g.name, g.location, g.tags));
out:
	free(g.tags);
	arm_end(&a);
}

static void group_put_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	group_put(req, res, ctx, false);
}

static void group_patch_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	group_put(req, res, ctx, true);
}

const struct bc_route mgr_group_routes[] = {
	{"GET", "/subscriptions/{sub}/resourcegroups", group_list, NULL, 0},
	{"PUT", "/subscriptions/{sub}/resourcegroups/{rg}", group_put_h, NULL, 0},
	{"PATCH", "/subscriptions/{sub}/resourcegroups/{rg}", group_patch_h, NULL, 0},
	{"GET", "/subscriptions/{sub}/resourcegroups/{rg}", group_get, NULL, 0},
	{"DELETE", "/subscriptions/{sub}/resourcegroups/{rg}", group_get, NULL, 0},
};
const size_t mgr_group_nroutes = sizeof(mgr_group_routes) / sizeof(mgr_group_routes[0]);
