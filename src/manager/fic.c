/* Microsoft.ManagedIdentity/userAssignedIdentities/{name}/federatedIdentityCredentials: which
 * external OIDC issuer and subject may obtain the identity's tokens (workload identity
 * federation). A child of the identity: authorised at the identity's scope, stored by the
 * directory with the identity's principal (directory/fic.c), deleted with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/json.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define UAI_PT "Microsoft.ManagedIdentity/userAssignedIdentities"
#define FIC_PT UAI_PT "/federatedIdentityCredentials"
#define MIN_API "2022-01-31-preview" /* the first version that has the type */

static const struct mgr_type uai_type = {UAI_PT, mgr_name_uai, "InvalidResourceName", NULL, NULL};

/* Azure's pattern: ^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$ */
static bool fic_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > BC_LIMIT_FIC_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

struct fic_req {
	struct arm a;
	char sub[64], key[BC_LIMIT_RESOURCE_ID + 1], id[BC_LIMIT_RESOURCE_ID + 1];
	const char *rg, *name, *fic;
	struct mgr_res uai; /* found by fic_begin */
};

/* api-version, path, authorisation, and the identity itself. Answers and returns false when any
 * of them fails. */
static bool fic_begin(struct fic_req *f, struct bc_http_req *req, struct bc_http_res *res, void *ctx,
		      const char *verb)
{
	struct bc_error err = {0};
	char action[160];
	memset(f, 0, sizeof(*f));
	if (!arm_begin(&f->a, ctx, req, res))
		return false;
	const char *v = bc_http_query(req, "api-version");
	if (strcmp(v, MIN_API) < 0) {
		arm_error(res, 400, "NoRegisteredProviderFound",
			  "No registered resource provider found for API version '%.64s' and type "
			  "'userAssignedIdentities/federatedIdentityCredentials'. The supported api-versions are "
			  "'" MIN_API "' and later.",
			  v);
		return false;
	}
	if (!mgr_item_path(&f->a, &uai_type, f->sub, f->key, f->id, &f->rg, &f->name))
		return false;
	f->fic = req->ncaptures > 3 ? req->captures[3] : NULL;
	if (f->fic && !fic_name_ok(f->fic)) {
		arm_error(res, 400, "InvalidResourceName",
			  "The federated identity credential name '%.128s' is invalid: 3 to 120 characters, letters, "
			  "digits, '-' and '_', starting with a letter or digit.",
			  f->fic);
		return false;
	}
	snprintf(action, sizeof(action), FIC_PT "/%s", verb);
	if (!arm_allowed(&f->a, action, f->id))
		return false;
	if (mgr_res_get(f->a.m, NULL, f->key, false, &f->uai, &err) != BC_OK) {
		arm_error_from(res, &err);
		return false;
	}
	if (!f->uai.found || !f->uai.principal[0]) {
		arm_error(res, 404, "ResourceNotFound",
			  "The Resource '" UAI_PT "/%.128s' under resource group '%.96s' was not found.", f->name, f->rg);
		return false;
	}
	return true;
}

static void fic_end(struct fic_req *f)
{
	mgr_res_release(&f->uai);
	arm_end(&f->a);
}

static json_t *fic_json(const struct fic_req *f, const struct dir_fic *c)
{
	char id[BC_LIMIT_RESOURCE_ID + BC_LIMIT_FIC_NAME + 64];
	snprintf(id, sizeof(id), "%s/federatedIdentityCredentials/%s", f->uai.id, c->name);
	return json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:[s]}}", "id", id, "name", c->name, "type", FIC_PT, "properties",
			 "issuer", c->issuer, "subject", c->subject, "audiences", c->audience);
}

/* ---- PUT ---- */

static int props_parse(const json_t *body, struct dir_fic *c, const char **bad)
{
	const json_t *p = json_object_get(body, "properties");
	const char *iss = bc_json_str(p, "issuer"), *sub = bc_json_str(p, "subject");
	const json_t *auds = json_object_get(p, "audiences");
	*bad = NULL;
	if (!json_is_object(p))
		*bad = "The request body must have 'properties' with 'issuer', 'subject' and 'audiences'.";
	else if (!iss || !*iss)
		*bad = "The 'issuer' property is required.";
	else if (strlen(iss) > BC_LIMIT_FIC_FIELD)
		*bad = "The 'issuer' property may be at most 600 characters.";
	else if (strncasecmp(iss, "https://", 8) != 0 || !iss[8] || strpbrk(iss, " \t\r\n#?"))
		*bad = "The 'issuer' property must be a valid URL with the https scheme, without a query or fragment.";
	else if (!sub || !*sub)
		*bad = "The 'subject' property is required.";
	else if (strlen(sub) > BC_LIMIT_FIC_FIELD)
		*bad = "The 'subject' property may be at most 600 characters.";
	else if (!json_is_array(auds) || json_array_size(auds) == 0)
		*bad = "The 'audiences' property is required and must hold one audience.";
	else if (json_array_size(auds) > 1)
		*bad = "The 'audiences' property may hold only one audience.";
	else if (!json_is_string(json_array_get(auds, 0)) || !*json_string_value(json_array_get(auds, 0)))
		*bad = "The audience must be a non-empty string.";
	else if (strlen(json_string_value(json_array_get(auds, 0))) > BC_LIMIT_FIC_FIELD)
		*bad = "The audience may be at most 600 characters.";
	if (*bad)
		return BC_ERR_INVALID;
	snprintf(c->issuer, sizeof(c->issuer), "%s", iss);
	snprintf(c->subject, sizeof(c->subject), "%s", sub);
	snprintf(c->audience, sizeof(c->audience), "%s", json_string_value(json_array_get(auds, 0)));
	return BC_OK;
}

struct put_ctx {
	const struct fic_req *f;
	struct dir_fic c;
	bool created, gone;
};

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct put_ctx *p = ctx;
	struct mgr_res r;
	/* the identity's row, locked: a racing deletion of it either sees this credential or this
	 * write sees no identity */
	int st = mgr_res_get(m, txn, p->f->key, true, &r, err);
	p->gone = st == BC_OK && !r.found;
	if (st == BC_OK && r.found)
		st = dir_fic_put(m->dir, txn, r.principal, &p->c, &p->created, err);
	mgr_res_release(&r);
	return st;
}

static void fic_put(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct fic_req f;
	struct put_ctx p = {.f = &f};
	struct bc_error err = {0};
	json_t *body = NULL;
	const char *bad;
	if (!fic_begin(&f, req, res, ctx, "write") || !(body = arm_body(&f.a)))
		goto out;
	if (props_parse(body, &p.c, &bad) != BC_OK) {
		arm_error(res, 400, "BadRequest", "%s", bad);
		goto out;
	}
	snprintf(p.c.name, sizeof(p.c.name), "%s", f.fic);
	if (mgr_txn(f.a.m, put_txn, &p, &err) != BC_OK) {
		if (err.status == BC_ERR_LIMIT || err.status == BC_ERR_EXISTS)
			arm_error(res, 400, "BadRequest", "%s", err.msg);
		else
			arm_error_from(res, &err);
		goto out;
	}
	if (p.gone) {
		arm_error(res, 404, "ResourceNotFound",
			  "The Resource '" UAI_PT "/%.128s' under resource group '%.96s' was not found.", f.name, f.rg);
		goto out;
	}
	arm_json(&f.a, p.created ? 201 : 200, fic_json(&f, &p.c));
out:
	json_decref(body);
	fic_end(&f);
}

/* ---- GET, DELETE, list ---- */

static void fic_get(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct fic_req f;
	struct dir_fic c;
	struct bc_error err = {0};
	if (!fic_begin(&f, req, res, ctx, "read"))
		goto out;
	if (dir_fic_get(f.a.m->dir, NULL, f.uai.principal, f.fic, &c, &err) != BC_OK) {
		if (err.status == BC_ERR_NOT_FOUND)
			arm_error(res, 404, "NotFound", "The federated identity credential '%.128s' was not found.", f.fic);
		else
			arm_error_from(res, &err);
		goto out;
	}
	arm_json(&f.a, 200, fic_json(&f, &c));
out:
	fic_end(&f);
}

static void fic_delete(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct fic_req f;
	struct bc_error err = {0};
	if (!fic_begin(&f, req, res, ctx, "delete"))
		goto out;
	int st = dir_fic_delete(f.a.m->dir, NULL, f.uai.principal, f.fic, &err);
	if (st == BC_OK || st == BC_ERR_NOT_FOUND) {
		if (st == BC_OK)
			mgr_changed(f.a.m);
		bc_http_res_json(res, st == BC_OK ? 200 : 204, NULL);
	} else {
		arm_error_from(res, &err);
	}
out:
	fic_end(&f);
}

struct list_ctx {
	const struct fic_req *f;
	json_t *arr;
};

static void list_one(void *vctx, const struct dir_fic *c)
{
	struct list_ctx *l = vctx;
	json_array_append_new(l->arr, fic_json(l->f, c));
}

static void fic_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct fic_req f;
	struct bc_error err = {0};
	if (!fic_begin(&f, req, res, ctx, "read"))
		goto out;
	struct list_ctx l = {&f, json_array()};
	int st = dir_fic_list(f.a.m->dir, NULL, f.uai.principal, list_one, &l, &err);
	arm_list_json(&f.a, st, l.arr, &err);
out:
	fic_end(&f);
}

#define FIC_BASE                                                                                          \
	"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" \
	"{name}/federatedIdentityCredentials"

const struct bc_route mgr_fic_routes[] = {
	{"GET", FIC_BASE, fic_list, NULL, 0},
	{"PUT", FIC_BASE "/{fic}", fic_put, NULL, 0},
	{"GET", FIC_BASE "/{fic}", fic_get, NULL, 0},
	{"DELETE", FIC_BASE "/{fic}", fic_delete, NULL, 0},
};
const size_t mgr_fic_nroutes = sizeof(mgr_fic_routes) / sizeof(mgr_fic_routes[0]);
