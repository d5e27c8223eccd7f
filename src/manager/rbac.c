/* Microsoft.Authorization: role assignments at subscription, group or resource scope, and the
 * built-in role definitions. The scope is the part of the path before
 * /providers/Microsoft.Authorization/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define A_RA_READ "Microsoft.Authorization/roleAssignments/read"
#define A_RA_WRITE "Microsoft.Authorization/roleAssignments/write"
#define A_RA_DELETE "Microsoft.Authorization/roleAssignments/delete"
#define AUTHZ "/providers/microsoft.authorization/"

/* Splits req->path into scope ("/" for the root) and returns false when it is not one. */
static bool path_scope(const char *path, char *scope, size_t n)
{
	const char *p = path;
	size_t al = strlen(AUTHZ);
	const char *hit = NULL;
	for (; *p; p++)
		if (!strncasecmp(p, AUTHZ, al))
			hit = p; /* the last occurrence */
	if (!hit || (size_t)(hit - path) + 2 > n)
		return false;
	size_t l = (size_t)(hit - path);
	if (l == 0) {
		snprintf(scope, n, "/");
		return true;
	}
	memcpy(scope, path, l);
	scope[l] = '\0';
	return true;
}

/* Does the scope exist (subscription, group, or resource)? */
static int scope_exists(struct mgr *m, const char *scope, bool *ok, struct bc_error *err)
{
	struct mgr_rid rid;
	*ok = false;
	if (!strcmp(scope, "/")) {
		*ok = true;
		return BC_OK;
	}
	if (mgr_rid_parse(scope, &rid, err) != BC_OK)
		return BC_OK;
	char sub[64];
	(void)mgr_lower(rid.sub, sub, sizeof(sub));
	if (!mgr_sub_known(m, sub))
		return BC_OK;
	if (rid.ns[0]) {
		char key[BC_LIMIT_RESOURCE_ID + 1];
		struct mgr_res r;
		(void)mgr_lower(scope, key, sizeof(key));
		int st = mgr_res_get(m, NULL, key, false, &r, err);
		*ok = r.found;
		mgr_res_release(&r);
		return st;
	}
	if (rid.rg[0])
		return mgr_group_exists(m, NULL, sub, rid.rg, NULL, 0, false, ok, err);
	*ok = true;
	return BC_OK;
}

static json_t *ra_json(const char *scope, const char *name, const char *role, const char *principal,
		       const char *ptype, int64_t created, const char *by)
{
	char id[BC_LIMIT_RESOURCE_ID + 128], rd[256], when[32], sub[64] = "";
	struct mgr_rid rid;
	struct bc_error err;
	snprintf(id, sizeof(id), "%s/providers/Microsoft.Authorization/roleAssignments/%s", strcmp(scope, "/") ? scope : "",
		 name);
	if (strcmp(scope, "/") && mgr_rid_parse(scope, &rid, &err) == BC_OK)
		snprintf(sub, sizeof(sub), "%s", rid.sub);
	if (sub[0])
		snprintf(rd, sizeof(rd), "/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", sub, role);
	else
		snprintf(rd, sizeof(rd), "/providers/Microsoft.Authorization/roleDefinitions/%s", role);
	mgr_iso8601(created, when);
	return json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:n,s:n,s:s,s:s,s:s,s:s}}", "id", id, "name", name, "type",
			 "Microsoft.Authorization/roleAssignments", "properties", "roleDefinitionId", rd, "principalId",
			 principal, "principalType", ptype, "scope", scope, "condition", "conditionVersion", "createdOn",
			 when, "updatedOn", when, "createdBy", by, "updatedBy", by);
}

struct ra_row {
	char scope[BC_LIMIT_RESOURCE_ID + 1];
	char role[37];
	char principal[37];
	char ptype[32];
	int64_t created;
	char by[37];
	bool found;
};

static int ra_row_cb(void *ctx, const struct bc_row *row)
{
	struct ra_row *r = ctx;
	snprintf(r->scope, sizeof(r->scope), "%s", bc_row_text(row, 0));
	snprintf(r->role, sizeof(r->role), "%s", bc_row_text(row, 1));
	snprintf(r->principal, sizeof(r->principal), "%s", bc_row_text(row, 2));
	snprintf(r->ptype, sizeof(r->ptype), "%s", bc_row_text(row, 3));
	r->created = bc_row_int(row, 4);
	snprintf(r->by, sizeof(r->by), "%s", bc_row_text(row, 5) ?: "");
	r->found = true;
	return 1;
}

static int ra_get(struct mgr *m, struct bc_txn *txn, const char *name, struct ra_row *r, struct bc_error *err)
{
	memset(r, 0, sizeof(*r));
	return bc_store_exec(m->st, txn,
			     "SELECT scope, role, principal, principal_type, created, created_by FROM mgr_role_assignments "
			     "WHERE name = ?",
			     (struct bc_param[]){BC_PTEXT(name)}, 1, ra_row_cb, r, NULL, err);
}

struct ra_put {
	const char *scope, *name, *role, *principal, *ptype, *by;
	char code[64];
	bool created;
	struct ra_row cur;
};

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct ra_put *p = ctx;
	char scope_key[BC_LIMIT_RESOURCE_ID + 1], key[BC_LIMIT_RESOURCE_ID + 128];
	int64_t n = 0;
	bool found;
	p->code[0] = '\0';
	int st = ra_get(m, txn, p->name, &p->cur, err);
	if (st != BC_OK)
		return st;
	(void)mgr_lower(p->scope, scope_key, sizeof(scope_key));
	if (p->cur.found) {
		if (strcasecmp(p->cur.scope, p->scope) || strcasecmp(p->cur.role, p->role) ||
		    strcasecmp(p->cur.principal, p->principal)) {
			snprintf(p->code, sizeof(p->code), "RoleAssignmentUpdateNotPermitted");
			return bc_error_set(err, BC_ERR_CONFLICT, "Tenant ID, application ID, principal ID, and scope are "
					    "not allowed to be updated.");
		}
		return BC_OK;
	}
	st = bc_store_get_int(m->st, txn,
			      "SELECT COUNT(*) FROM mgr_role_assignments WHERE principal = ? AND scope_key = ? AND role = ?",
			      (struct bc_param[]){BC_PTEXT(p->principal), BC_PTEXT(scope_key), BC_PTEXT(p->role)}, 3, &n,
			      &found, err);
	if (st != BC_OK)
		return st;
	if (n > 0) {
		snprintf(p->code, sizeof(p->code), "RoleAssignmentExists");
		return bc_error_set(err, BC_ERR_CONFLICT, "The role assignment already exists.");
	}
	snprintf(key, sizeof(key), "%s/providers/microsoft.authorization/roleassignments/%s", scope_key, p->name);
	int64_t now = bc_now();
	st = bc_store_exec(m->st, txn,
			   "INSERT INTO mgr_role_assignments (key, name, scope, scope_key, role, principal, principal_type, "
			   "created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   (struct bc_param[]){BC_PTEXT(key), BC_PTEXT(p->name), BC_PTEXT(p->scope), BC_PTEXT(scope_key),
					       BC_PTEXT(p->role), BC_PTEXT(p->principal), BC_PTEXT(p->ptype), BC_PINT(now),
					       BC_PTEXT(p->by)},
			   9, NULL, NULL, NULL, err);
	if (st == BC_ERR_EXISTS)
		st = bc_error_set(err, BC_ERR_CONFLICT, "concurrent creation of role assignment %s", p->name);
	if (st == BC_OK) {
		p->created = true;
		snprintf(p->cur.scope, sizeof(p->cur.scope), "%s", p->scope);
		snprintf(p->cur.role, sizeof(p->cur.role), "%s", p->role);
		snprintf(p->cur.principal, sizeof(p->cur.principal), "%s", p->principal);
		snprintf(p->cur.ptype, sizeof(p->cur.ptype), "%s", p->ptype);
		snprintf(p->cur.by, sizeof(p->cur.by), "%s", p->by);
		p->cur.created = now;
	}
	return st;
}

static void ra_put(struct arm *a, const char *scope, const char *name)
{
	struct bc_error err = {0};
	json_t *body = NULL;
	struct ra_put p = {0};
	char guid[37];
	bool ok;
	if (!bc_is_uuid(name)) {
		arm_error(a->res, 400, "InvalidRoleAssignmentId",
			  "The role assignment ID '%.64s' is not valid. The role assignment ID must be a GUID.", name);
		return;
	}
	(void)mgr_lower(name, guid, sizeof(guid));
	if (!arm_allowed(a, A_RA_WRITE, scope) || !(body = arm_body(a)))
		goto out;
	json_t *props = json_object_get(body, "properties");
	const char *rdid = bc_json_str(props, "roleDefinitionId"), *pid = bc_json_str(props, "principalId");
	const struct mgr_role *role = mgr_role_by_id(rdid);
	if (!role) {
		arm_error(a->res, 400, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%.200s' does not exist.",
			  rdid ? rdid : "");
		goto out;
	}
	struct dir_principal pr;
	if (!pid || !bc_is_uuid(pid) || dir_principal_get(a->m->dir, NULL, pid, &pr, &err) != BC_OK) {
		arm_error(a->res, 400, "PrincipalNotFound", "Principal %.40s does not exist in the directory %s.",
			  pid ? pid : "", a->m->tenant);
		goto out;
	}
	if (scope_exists(a->m, scope, &ok, &err) != BC_OK) {
		arm_error_from(a->res, &err);
		goto out;
	}
	if (!ok) {
		arm_error(a->res, 400, "InvalidScope", "The scope '%.300s' does not exist.", scope);
		goto out;
	}
	p.scope = scope;
	p.name = guid;
	p.role = role->id;
	p.principal = pr.object_id;
	p.ptype = bc_json_str(props, "principalType") ?: "ServicePrincipal";
	p.by = a->claims.oid;
	if (mgr_txn(a->m, put_txn, &p, &err) != BC_OK) {
		if (p.code[0])
			arm_error(a->res, 409, p.code, "%s", err.msg);
		else
			arm_error_from(a->res, &err);
		goto out;
	}
	arm_json(a, p.created ? 201 : 200,
		 ra_json(p.cur.scope, guid, p.cur.role, p.cur.principal, p.cur.ptype, p.cur.created, p.cur.by));
out:
	json_decref(body);
}

struct ra_del {
	const char *name;
	struct ra_row cur;
};

static int del_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct ra_del *d = ctx;
	int st = ra_get(m, txn, d->name, &d->cur, err);
	if (st == BC_OK && d->cur.found)
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_role_assignments WHERE name = ?",
				   (struct bc_param[]){BC_PTEXT(d->name)}, 1, NULL, NULL, NULL, err);
	return st;
}

static void ra_one(struct arm *a, const char *scope, const char *name)
{
	struct bc_error err = {0};
	char guid[37];
	struct ra_row r;
	if (!bc_is_uuid(name) || !mgr_lower(name, guid, sizeof(guid))) {
		arm_error(a->res, 404, "RoleAssignmentNotFound", "The role assignment '%.64s' is not found.", name);
		return;
	}
	if (!strcmp(a->req->method, "DELETE")) {
		struct ra_del d = {.name = guid};
		if (!arm_allowed(a, A_RA_DELETE, scope))
			return;
		if (mgr_txn(a->m, del_txn, &d, &err) != BC_OK)
			arm_error_from(a->res, &err);
		else if (!d.cur.found)
			bc_http_res_json(a->res, 204, NULL);
		else
			arm_json(a, 200, ra_json(d.cur.scope, guid, d.cur.role, d.cur.principal, d.cur.ptype, d.cur.created,
						 d.cur.by));
		return;
	}
	if (!arm_allowed(a, A_RA_READ, scope))
		return;
	if (ra_get(a->m, NULL, guid, &r, &err) != BC_OK) {
		arm_error_from(a->res, &err);
		return;
	}
	if (!r.found || strcasecmp(r.scope, scope)) {
		arm_error(a->res, 404, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", guid);
		return;
	}
	arm_json(a, 200, ra_json(r.scope, guid, r.role, r.principal, r.ptype, r.created, r.by));
}

struct ra_list {
	const char *scope;
	const char *principal; /* filter, lower, or NULL */
	bool at_scope;         /* atScope(): at the scope and above only */
	json_t *arr;
};

static int list_row(void *ctx, const struct bc_row *row)
{
	struct ra_list *l = ctx;
	const char *scope = bc_row_text(row, 0), *principal = bc_row_text(row, 3);
	bool above = mgr_scope_covers(scope, l->scope), below = mgr_scope_covers(l->scope, scope);
	if (!(above || (!l->at_scope && below)))
		return 0;
	if (l->principal && strcasecmp(l->principal, principal))
		return 0;
	json_array_append_new(l->arr, ra_json(scope, bc_row_text(row, 1), bc_row_text(row, 2), principal,
					      bc_row_text(row, 4), bc_row_int(row, 5), bc_row_text(row, 6) ?: ""));
	return 0;
}

/* $filter: atScope(), principalId eq 'X', assignedTo('X'), combined with "and". */
static bool parse_filter(const char *f, struct ra_list *l, char *pid, size_t n)
{
	const char *p;
	if (!f || !*f)
		return true;
	if (strstr(f, "atScope()"))
		l->at_scope = true;
	if ((p = strstr(f, "principalId eq '")) || (p = strstr(f, "assignedTo('"))) {
		p = strchr(p, '\'') + 1;
		size_t len = strcspn(p, "'");
		if (len + 1 > n)
			return false;
		memcpy(pid, p, len);
		pid[len] = '\0';
		if (!bc_is_uuid(pid))
			return false;
		l->principal = pid;
	}
	return true;
}

static void ra_list(struct arm *a, const char *scope)
{
	struct bc_error err = {0};
	char pid[64];
	struct ra_list l = {scope, NULL, false, NULL};
	if (!parse_filter(bc_http_query(a->req, "$filter"), &l, pid, sizeof(pid))) {
		arm_error(a->res, 400, "InvalidFilterInQueryString", "The filter '%.100s' is not supported.",
			  bc_http_query(a->req, "$filter"));
		return;
	}
	if (!arm_allowed(a, A_RA_READ, scope))
		return;
	l.arr = json_array();
	if (bc_store_exec(a->m->st, NULL,
			  "SELECT scope, name, role, principal, principal_type, created, created_by FROM mgr_role_assignments "
			  "ORDER BY created, name",
			  NULL, 0, list_row, &l, NULL, &err) != BC_OK) {
		json_decref(l.arr);
		arm_error_from(a->res, &err);
		return;
	}
	arm_json(a, 200, json_pack("{s:o}", "value", l.arr));
}

static void role_defs(struct arm *a, const char *scope, const char *id)
{
	struct mgr_rid rid;
	struct bc_error err;
	const char *sub = strcmp(scope, "/") && mgr_rid_parse(scope, &rid, &err) == BC_OK ? rid.sub : NULL;
	if (id) {
		const struct mgr_role *r = mgr_role_by_id(id);
		if (!r)
			arm_error(a->res, 404, "RoleDefinitionDoesNotExist",
				  "The specified role definition with ID '%.64s' does not exist.", id);
		else
			arm_json(a, 200, mgr_role_json(r, sub));
		return;
	}
	const char *f = bc_http_query(a->req, "$filter"), *p;
	char want[128] = "";
	if (f && (p = strstr(f, "roleName eq '"))) {
		p += 13;
		size_t len = strcspn(p, "'");
		if (len < sizeof(want)) {
			memcpy(want, p, len);
			want[len] = '\0';
		}
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < mgr_role_count(); i++) {
		const struct mgr_role *r = mgr_role_at(i);
		if (!want[0] || !strcasecmp(want, r->name))
			json_array_append_new(arr, mgr_role_json(r, sub));
	}
	arm_json(a, 200, json_pack("{s:o}", "value", arr));
}

/* One handler for every scope depth: the kind and the id come from the path's tail. */
static void authz(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	char scope[BC_LIMIT_RESOURCE_ID + 1];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!path_scope(req->path, scope, sizeof(scope))) {
		arm_error(res, 400, "InvalidScope", "the scope is invalid");
		goto out;
	}
	size_t sl = strcmp(scope, "/") ? strlen(scope) : 0;
	const char *tail = req->path + sl + strlen(AUTHZ); /* "roleAssignments[/id]" */
	const char *slash = strchr(tail, '/');
	const char *id = slash && slash[1] ? slash + 1 : NULL;
	bool ra = !strncasecmp(tail, "roleAssignments", 15);
	if (!ra) {
		if (strcmp(req->method, "GET"))
			arm_error(res, 405, "MethodNotAllowed", "role definitions are read-only here");
		else
			role_defs(&a, scope, id);
		goto out;
	}
	if (!id) {
		if (strcmp(req->method, "GET"))
			arm_error(res, 405, "MethodNotAllowed", "use PUT on a role assignment id");
		else
			ra_list(&a, scope);
	} else if (!strcmp(req->method, "PUT")) {
		ra_put(&a, scope, id);
	} else if (!strcmp(req->method, "GET") || !strcmp(req->method, "DELETE")) {
		ra_one(&a, scope, id);
	} else {
		arm_error(res, 405, "MethodNotAllowed", "the method is not allowed");
	}
out:
	arm_end(&a);
}

#define AZ "/providers/Microsoft.Authorization/"
#define S1 "/subscriptions/{s}"
#define S2 "/subscriptions/{s}/resourceGroups/{g}"
#define S3 "/subscriptions/{s}/providers/{ns}/{t}/{n}"
#define S4 "/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{t}/{n}"
#define ROUTES(S)                                                                                              \
	{"*", S AZ "roleAssignments", authz, NULL, 0}, {"*", S AZ "roleAssignments/{id}", authz, NULL, 0},     \
		{"*", S AZ "roleDefinitions", authz, NULL, 0}, {"*", S AZ "roleDefinitions/{id}", authz, NULL, 0}
const struct bc_route mgr_rbac_routes[] = {
	ROUTES(""), ROUTES(S1), ROUTES(S2), ROUTES(S3), ROUTES(S4),
};
const size_t mgr_rbac_nroutes = sizeof(mgr_rbac_routes) / sizeof(mgr_rbac_routes[0]);
