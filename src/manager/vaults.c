/* Microsoft.KeyVault/vaults: the management side of vaults (names are global), access policies
 * with Azure's permission names, and accessPolicies/{add|replace|remove}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define PT "Microsoft.KeyVault/vaults"
#define A_READ PT "/read"
#define A_WRITE PT "/write"
#define A_DELETE PT "/delete"
#define A_POLICY PT "/accessPolicies/write"

json_t *mgr_vault_json(struct mgr *m, const struct mgr_res *r)
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

static const char *const cats[] = {"keys", "secrets", "certificates", "storage"};

/* Validates one access policy entry; returns a normalised copy. */
static int check_policy(const json_t *p, size_t idx, json_t **out, struct bc_error *err)
{
	const char *tid = bc_json_str(p, "tenantId"), *oid = bc_json_str(p, "objectId");
	const json_t *perms = json_object_get(p, "permissions");
	if (!json_is_object(p) || !tid || !bc_is_uuid(tid) || !oid || !bc_is_uuid(oid))
		return bc_error_set(err, BC_ERR_INVALID,
				    "accessPolicies[%zu]: tenantId and objectId must be GUIDs", idx);
	if (perms && !json_is_object(perms))
		return bc_error_set(err, BC_ERR_INVALID, "accessPolicies[%zu].permissions must be an object", idx);
	json_t *np = json_object();
	for (size_t c = 0; c < 4; c++) {
		const json_t *arr = json_object_get(perms, cats[c]);
		size_t i;
		json_t *v;
		if (!arr || json_is_null(arr))
			continue;
		if (!json_is_array(arr)) {
			json_decref(np);
			return bc_error_set(err, BC_ERR_INVALID, "accessPolicies[%zu].permissions.%s must be an array",
					    idx, cats[c]);
		}
		json_t *na = json_array();
		json_array_foreach(arr, i, v)
		{
			const char *s = json_string_value(v);
			if (!s || (c < 3 && mgr_kv_perm_index(cats[c], s) < 0)) {
				json_decref(na);
				json_decref(np);
				return bc_error_set(err, BC_ERR_INVALID,
						    "Invalid value found at accessPolicies[%zu].permissions.%s[%zu]: %.40s",
						    idx, cats[c], i, s ? s : "(not a string)");
			}
			json_array_append_new(na, json_string(s));
		}
		json_object_set_new(np, cats[c], na);
	}
	*out = json_pack("{s:s,s:s,s:o}", "tenantId", tid, "objectId", oid, "permissions", np);
	const char *app = bc_json_str(p, "applicationId");
	if (app && *out)
		json_object_set_new(*out, "applicationId", json_string(app));
	return *out ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
}

static int check_policies(const json_t *arr, json_t **out, struct bc_error *err)
{
	size_t i;
	json_t *p;
	if (!json_is_array(arr))
		return bc_error_set(err, BC_ERR_INVALID, "accessPolicies must be an array");
	if (json_array_size(arr) > MGR_MAX_POLICIES)
		return bc_error_set(err, BC_ERR_INVALID, "at most %d access policies are allowed", MGR_MAX_POLICIES);
	json_t *na = json_array();
	json_array_foreach(arr, i, p)
	{
		json_t *np = NULL;
		int st = check_policy(p, i, &np, err);
		if (st != BC_OK) {
			json_decref(na);
			return st;
		}
		json_array_append_new(na, np);
	}
	*out = na;
	return BC_OK;
}

/* Merges the properties the client may set into props (validated). */
static int apply_props(struct mgr *m, json_t *props, const json_t *in, bool create, struct bc_error *err)
{
	const json_t *v;
	bool had_purge = bc_json_bool(props, "enablePurgeProtection", false);
	if (in && !json_is_object(in))
		return bc_error_set(err, BC_ERR_INVALID, "properties must be an object");
	if ((v = json_object_get(in, "tenantId"))) {
		if (!json_is_string(v) || strcasecmp(json_string_value(v), m->tenant))
			return bc_error_set(err, BC_ERR_INVALID, "properties.tenantId must be the tenant '%s'", m->tenant);
		json_object_set_new(props, "tenantId", json_string(m->tenant));
	} else if (create) {
		return bc_error_set(err, BC_ERR_INVALID, "properties.tenantId is required");
	}
	if ((v = json_object_get(in, "sku"))) {
		const char *n = bc_json_str(v, "name");
		if (!n || (strcasecmp(n, "standard") && strcasecmp(n, "premium")))
			return bc_error_set(err, BC_ERR_INVALID, "properties.sku.name must be 'standard' or 'premium'");
		json_object_set_new(props, "sku", json_pack("{s:s,s:s}", "family", "A", "name",
							   strcasecmp(n, "premium") ? "standard" : "premium"));
	} else if (create) {
		json_object_set_new(props, "sku", json_pack("{s:s,s:s}", "family", "A", "name", "standard"));
	}
	if ((v = json_object_get(in, "accessPolicies")) && !json_is_null(v)) {
		json_t *pol;
		int st = check_policies(v, &pol, err);
		if (st != BC_OK)
			return st;
		json_object_set_new(props, "accessPolicies", pol);
	} else if (create) {
		json_object_set_new(props, "accessPolicies", json_array());
	}
	static const char *const bools[] = {"enableRbacAuthorization", "enableSoftDelete", "enablePurgeProtection",
					    "enabledForDeployment", "enabledForDiskEncryption",
					    "enabledForTemplateDeployment"};
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		v = json_object_get(in, bools[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_boolean(v))
			return bc_error_set(err, BC_ERR_INVALID, "properties.%s must be a boolean", bools[i]);
		json_object_set(props, bools[i], (json_t *)v);
	}
	if (had_purge && !bc_json_bool(props, "enablePurgeProtection", true))
		return bc_error_set(err, BC_ERR_INVALID, "purge protection cannot be disabled once enabled");
	if ((v = json_object_get(in, "softDeleteRetentionInDays")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 7 || json_integer_value(v) > 90)
			return bc_error_set(err, BC_ERR_INVALID, "properties.softDeleteRetentionInDays must be 7 to 90");
		json_object_set(props, "softDeleteRetentionInDays", (json_t *)v);
	}
	if (create) {
		if (!json_object_get(props, "enableSoftDelete"))
			json_object_set_new(props, "enableSoftDelete", json_true());
		if (!json_object_get(props, "softDeleteRetentionInDays"))
			json_object_set_new(props, "softDeleteRetentionInDays", json_integer(90));
		if (!json_object_get(props, "enableRbacAuthorization"))
			json_object_set_new(props, "enableRbacAuthorization", json_false());
		static const char *const off[] = {"enabledForDeployment", "enabledForDiskEncryption",
						  "enabledForTemplateDeployment"};
		for (size_t i = 0; i < 3; i++)
			if (!json_object_get(props, off[i]))
				json_object_set_new(props, off[i], json_false());
		json_object_set_new(props, "publicNetworkAccess", json_string("Enabled"));
	}
	json_object_set_new(props, "provisioningState", json_string("Succeeded"));
	return BC_OK;
}

struct vault_put {
	const char *sub, *rg, *name;
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char key[BC_LIMIT_RESOURCE_ID + 1];
	json_t *body;
	bool patch;
	const char *op; /* accessPolicies/{op} */
	bool created;
	bool recover; /* properties.createMode "recover" */
	json_t *out;
	char code[64];
	int http; /* with code: the status (0: 404 for BC_ERR_NOT_FOUND, else 409) */
};

static const char deleted_state_msg[] =
	"A vault with the same name already exists in deleted state. You need to either recover or purge existing "
	"key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 for more information on soft "
	"delete.";

/* createMode "recover": the soft-deleted vault lname comes back as it was (Azure ignores the
 * request's properties then). Fills r and removes the deleted record. Sets p->code on refusal. */
static int recover_into(struct mgr *m, struct bc_txn *txn, struct vault_put *p, struct mgr_dvault *dv,
			struct mgr_res *r, struct bc_error *err)
{
	char want[128], have[128];
	const char *loc = bc_json_str(p->body, "location");
	if (strcmp(dv->sub, p->sub)) { /* another subscription's vault: say no more than for a create */
		snprintf(p->code, sizeof(p->code), "ConflictError");
		return bc_error_set(err, BC_ERR_EXISTS, "%s", deleted_state_msg);
	}
	if (strcmp(dv->rkey, p->key)) {
		snprintf(p->code, sizeof(p->code), "BadRequest");
		p->http = 400;
		return bc_error_set(err, BC_ERR_INVALID, "The vault '%s' was deleted from resource group '%s': recover it "
				    "there.", dv->name, dv->rg);
	}
	mgr_location_key(loc, want, sizeof(want));
	mgr_location_key(dv->location, have, sizeof(have));
	if (loc && strcmp(want, have)) {
		snprintf(p->code, sizeof(p->code), "BadRequest");
		p->http = 400;
		return bc_error_set(err, BC_ERR_INVALID, "The deleted vault '%s' is in location '%s', not '%s'.", dv->name,
				    dv->location, loc);
	}
	int st = mgr_dvault_remove(m, txn, dv->lname, err);
	if (st != BC_OK)
		return st;
	snprintf(r->key, sizeof(r->key), "%s", dv->rkey);
	snprintf(r->id, sizeof(r->id), "%s", dv->id);
	snprintf(r->name, sizeof(r->name), "%s", dv->name);
	r->body = dv->body;
	dv->body = NULL;
	return BC_OK;
}

/* accessPolicies/{add|replace|remove} on the stored list. */
static int policy_op(json_t *props, const char *op, const json_t *given, struct bc_error *err)
{
	json_t *cur = json_object_get(props, "accessPolicies");
	size_t i, j;
	json_t *g;
	if (!json_is_array(cur)) {
		cur = json_array();
		json_object_set_new(props, "accessPolicies", cur);
	}
	json_array_foreach(given, i, g)
	{
		const char *oid = bc_json_str(g, "objectId");
		json_t *e = NULL;
		size_t at = 0;
		json_t *c;
		json_array_foreach(cur, j, c)
		{
			if (!strcasecmp(bc_json_str(c, "objectId") ?: "", oid)) {
				e = c;
				at = j;
			}
		}
		if (!strcmp(op, "replace") || (!e && !strcmp(op, "add"))) {
			if (e)
				json_array_set(cur, at, g);
			else
				json_array_append(cur, g);
			continue;
		}
		if (!e)
			continue; /* removing from a principal without a policy */
		json_t *ep = json_object_get(e, "permissions");
		bool all_empty = true;
		for (size_t c2 = 0; c2 < 4; c2++) {
			json_t *have = json_object_get(ep, cats[c2]);
			json_t *delta = json_object_get(json_object_get(g, "permissions"), cats[c2]);
			size_t k;
			json_t *d;
			if (!json_is_array(have)) {
				have = json_array();
				json_object_set_new(ep, cats[c2], have);
			}
			json_array_foreach(delta, k, d)
			{
				size_t h;
				json_t *hv;
				bool found = false;
				json_array_foreach(have, h, hv)
				{
					if (!strcasecmp(json_string_value(hv), json_string_value(d))) {
						found = true;
						if (!strcmp(op, "remove")) {
							json_array_remove(have, h);
							h--;
						}
					}
				}
				if (!found && !strcmp(op, "add"))
					json_array_append(have, d);
			}
			if (json_array_size(have))
				all_empty = false;
		}
		bool remove_all = true;
		for (size_t c2 = 0; c2 < 4; c2++)
			if (json_array_size(json_object_get(json_object_get(g, "permissions"), cats[c2])))
				remove_all = false;
		if (!strcmp(op, "remove") && (all_empty || remove_all))
			json_array_remove(cur, at);
	}
	(void)err;
	return BC_OK;
}

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct vault_put *p = ctx;
	struct mgr_res r;
	char gname[96], rgk[96], gn[BC_LIMIT_NAME + 8], *other = NULL;
	bool exists = false;
	int st;
	p->code[0] = '\0';
	st = mgr_group_exists(m, txn, p->sub, p->rg, gname, sizeof(gname), true, &exists, err);
	if (st != BC_OK)
		return st;
	if (!exists) {
		snprintf(p->code, sizeof(p->code), "ResourceGroupNotFound");
		return bc_error_set(err, BC_ERR_NOT_FOUND, "Resource group '%s' could not be found.", p->rg);
	}
	st = mgr_res_get(m, txn, p->key, true, &r, err);
	if (st != BC_OK)
		return st;
	if (!r.found && (p->patch || p->op)) {
		snprintf(p->code, sizeof(p->code), "ResourceNotFound");
		st = bc_error_set(err, BC_ERR_NOT_FOUND, "The Resource 'Microsoft.KeyVault/vaults/%s' under resource group "
				  "'%s' was not found.", p->name, p->rg);
		goto done;
	}
	snprintf(gn, sizeof(gn), "vault:");
	(void)mgr_lower(p->name, gn + 6, sizeof(gn) - 6);
	bool recovered = false;
	if (!r.found) {
		/* A soft-deleted vault keeps its (global) name until it is purged. */
		struct mgr_dvault dv;
		st = mgr_dvault_get(m, txn, gn + 6, true, &dv, err);
		if (st == BC_OK && dv.found && p->recover) {
			st = recover_into(m, txn, p, &dv, &r, err);
			recovered = st == BC_OK;
		} else if (st == BC_OK && dv.found) {
			snprintf(p->code, sizeof(p->code), "ConflictError");
			st = bc_error_set(err, BC_ERR_EXISTS, "%s", deleted_state_msg);
		} else if (st == BC_OK && p->recover) {
			snprintf(p->code, sizeof(p->code), "ResourceNotFound");
			st = bc_error_set(err, BC_ERR_NOT_FOUND, "The deleted vault '%s' was not found: there is nothing to "
					  "recover.", p->name);
		}
		mgr_dvault_release(&dv);
		if (st != BC_OK)
			goto done;
	}
	if (!r.found && !recovered) {
		st = bc_store_get_text(m->st, txn, "SELECT id FROM mgr_resources WHERE gname = ?",
				       (struct bc_param[]){BC_PTEXT(gn)}, 1, &other, err);
		if (st != BC_OK)
			goto done;
		if (other) {
			free(other);
			snprintf(p->code, sizeof(p->code), "VaultAlreadyExists");
			st = bc_error_set(err, BC_ERR_EXISTS, "The vault name '%s' is already in use. Vault names are "
					  "globally unique so it is possible that the name is already taken.", p->name);
			goto done;
		}
		snprintf(r.key, sizeof(r.key), "%s", p->key);
		(void)mgr_res_id(r.id, sizeof(r.id), p->sub, gname, PT, p->name);
		snprintf(r.name, sizeof(r.name), "%s", p->name);
		r.body = json_pack("{s:s,s:{},s:{}}", "location", bc_json_str(p->body, "location") ?: m->location, "tags",
				   "properties");
	}
	json_t *props = json_object_get(r.body, "properties");
	if (recovered) {
		/* as it was */
	} else if (p->op) {
		json_t *given = json_object_get(json_object_get(p->body, "properties"), "accessPolicies"), *pol = NULL;
		st = check_policies(given ? given : json_null(), &pol, err);
		if (st == BC_OK)
			st = policy_op(props, p->op, pol, err);
		json_decref(pol);
	} else {
		const char *loc = bc_json_str(p->body, "location");
		if (r.found && loc && strcasecmp(loc, bc_json_str(r.body, "location") ?: "")) {
			snprintf(p->code, sizeof(p->code), "InvalidResourceLocation");
			st = bc_error_set(err, BC_ERR_CONFLICT, "The resource already exists in location '%s'.",
					  bc_json_str(r.body, "location"));
			goto done;
		}
		if (!p->patch || json_object_get(p->body, "tags")) {
			json_t *tags;
			st = arm_tags(p->body, &tags, err);
			if (st == BC_OK)
				json_object_set_new(r.body, "tags", tags);
		}
		if (st == BC_OK)
			st = apply_props(m, props, json_object_get(p->body, "properties"), !r.found, err);
	}
	if (st != BC_OK)
		goto done;
	char uri[BC_LIMIT_NAME + 160], low[BC_LIMIT_NAME + 1];
	(void)mgr_lower(r.name, low, sizeof(low));
	snprintf(uri, sizeof(uri), "https://%s.%s%s/", low, m->vault_suffix, m->vault_public_port);
	json_object_set_new(props, "vaultUri", json_string(uri));
	(void)mgr_lower(p->rg, rgk, sizeof(rgk));
	st = mgr_res_put(m, txn, &r, p->sub, rgk, MGR_T_VAULT, gn, !r.found, err);
	if (st == BC_OK && !r.found)
		st = mgr_host_bump_all(m, txn, err); /* agents write vault names into hosts files */
	if (st == BC_OK) {
		p->created = !r.found;
		json_decref(p->out);
		if (p->op)
			p->out = json_pack("{s:s,s:s,s:s,s:s,s:{s:O}}", "id", r.id, "name", p->op, "type",
					   PT "/accessPolicies", "location", bc_json_str(r.body, "location"), "properties",
					   "accessPolicies", json_object_get(props, "accessPolicies"));
		else
			p->out = mgr_vault_json(m, &r);
	}
done:
	mgr_res_release(&r);
	return st;
}

static const struct mgr_type item_type = {PT, mgr_name_vault, "VaultNameNotValid", mgr_vault_delete_txn, mgr_vault_json};

static bool parse_path(struct arm *a, char *sub, char *key, char *id, const char **rg, const char **name)
{
	return mgr_item_path(a, &item_type, sub, key, id, rg, name);
}

static void vault_write(struct bc_http_req *req, struct bc_http_res *res, void *ctx, bool patch, const char *op)
{
	struct arm a;
	struct bc_error err = {0};
	struct vault_put p = {0};
	char sub[64];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!parse_path(&a, sub, p.key, p.id, &p.rg, &p.name))
		goto out;
	if (!arm_allowed(&a, op ? A_POLICY : A_WRITE, p.id) || !(p.body = arm_body(&a)))
		goto out;
	p.sub = sub;
	p.patch = patch;
	p.op = op;
	if (!patch && !op) {
		const json_t *mode = json_object_get(json_object_get(p.body, "properties"), "createMode");
		if (mode && !json_is_null(mode) &&
		    (!json_is_string(mode) || (strcasecmp(json_string_value(mode), "default") &&
					       strcasecmp(json_string_value(mode), "recover")))) {
			arm_error(res, 400, "BadRequest", "properties.createMode must be 'default' or 'recover'");
			goto out;
		}
		p.recover = mode && json_is_string(mode) && !strcasecmp(json_string_value(mode), "recover");
	}
	if (mgr_txn(a.m, put_txn, &p, &err) != BC_OK) {
		if (p.code[0])
			arm_error(res, p.http ? p.http : err.status == BC_ERR_NOT_FOUND ? 404 : 409, p.code, "%s", err.msg);
		else if (err.status == BC_ERR_INVALID)
			arm_error(res, 400, "BadRequest", "%s", err.msg);
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

static void vault_put_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	vault_write(req, res, ctx, false, NULL);
}

static void vault_patch_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	vault_write(req, res, ctx, true, NULL);
}

static void vault_policy_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	const char *op = req->captures[3];
	static const char *const ops[] = {"add", "replace", "remove"};
	for (size_t i = 0; i < 3; i++)
		if (!strcasecmp(op, ops[i])) {
			vault_write(req, res, ctx, true, ops[i]);
			return;
		}
	arm_error(res, 400, "BadRequest", "operationKind '%.32s' is invalid: use add, replace or remove", op);
}

int mgr_vault_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err)
{
	struct mgr_res r;
	int st = mgr_res_get(m, txn, key, true, &r, err);
	if (st == BC_OK && r.found) {
		/* soft delete: the vault's record (and, in the vault, its contents) stay until purged */
		st = mgr_dvault_add(m, txn, &r, err);
		if (st == BC_OK)
			st = mgr_res_delete(m, txn, key, err);
		if (st == BC_OK)
			st = mgr_ra_delete_scope(m, txn, r.id, err);
		if (st == BC_OK)
			st = mgr_host_bump_all(m, txn, err);
	}
	mgr_res_release(&r);
	return st;
}

static void vault_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_item_handler(req, res, ctx, &item_type);
}

static void vault_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_list_handler(req, res, ctx, MGR_T_VAULT, A_READ, mgr_vault_json);
}

#define VP "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"
const struct bc_route mgr_vault_routes[] = {
	{"GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", vault_list, NULL, 0},
	{"GET", VP, vault_list, NULL, 0},
	{"PUT", VP "/{name}", vault_put_h, NULL, 0},
	{"PATCH", VP "/{name}", vault_patch_h, NULL, 0},
	{"GET", VP "/{name}", vault_get, NULL, 0},
	{"DELETE", VP "/{name}", vault_get, NULL, 0},
	{"PUT", VP "/{name}/accessPolicies/{op}", vault_policy_h, NULL, 0},
	{"GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults", mgr_dvault_list_h, NULL, 0},
	{"GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}",
	 mgr_dvault_get_h, NULL, 0},
	{"POST", "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}/purge",
	 mgr_dvault_purge_h, NULL, 0},
};
const size_t mgr_vault_nroutes = sizeof(mgr_vault_routes) / sizeof(mgr_vault_routes[0]);
