/* Microsoft.Resources' generic listing (Resources_List, Resources_ListByResourceGroup):
 * GET /subscriptions/{sub}/resources and /subscriptions/{sub}/resourceGroups/{rg}/resources over
 * every resource the manager keeps (instances, user-assigned identities, vaults, and at
 * subscription level the hosts; resource groups themselves are not resources here, as in Azure).
 *
 * The shape is GenericResourceExpanded: id, name, type, location, tags (when it has any; left
 * out when the filter names tags, as Azure does), identity (instances), and with
 * $expand=createdTime,changedTime,provisioningState those three. $filter is filter.c's subset of
 * Azure's OData; a "resourceType eq" or "resourceGroup eq" conjunct narrows the query itself.
 *
 * Paging: at most $top (default and cap 1000, Azure's) resources a page in resource-id order;
 * when more remain, nextLink repeats the query with $skiptoken (base64url of the last key seen)
 * on the base URL the client used. Each resource is shown only when the caller may read it (the
 * type's /read action at its id), so a caller with access to one group sees that group's
 * resources; pages are filled after that check, never left empty with a nextLink. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/log.h"
#include "manager/mgr_int.h"

#define A_GROUP_READ "Microsoft.Resources/subscriptions/resourceGroups/read"

struct page {
	struct arm *a;
	const struct mgr_filter *f;
	bool x_created, x_changed, x_state; /* $expand */
	int top;
	int n;
	json_t *arr;
	char last[BC_LIMIT_RESOURCE_ID + 1]; /* key of the last resource on the page */
	bool more;
};

static void iso7(int64_t t, char out[48])
{
	char s[32];
	mgr_iso8601(t, s);
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == 'Z')
		s[n - 1] = '\0';
	snprintf(out, 48, "%s.0000000Z", s); /* ARM's 7-digit fraction */
}

static json_t *generic(const struct page *p, const char *id, const char *name, const char *type,
		       const json_t *body, int64_t created, int64_t updated)
{
	static const char *const copied[] = {"location", "extendedLocation", "kind", "managedBy", "sku", "plan"};
	json_t *o = json_pack("{s:s,s:s,s:s}", "id", id, "name", name, "type", type), *v;
	if (!o)
		return NULL;
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		if ((v = json_object_get(body, copied[i])) && !json_is_null(v))
			json_object_set_new(o, copied[i], json_deep_copy(v));
	v = json_object_get(body, "tags");
	if (!p->f->tags && json_is_object(v) && json_object_size(v) > 0)
		json_object_set_new(o, "tags", json_deep_copy(v));
	v = json_object_get(body, "identity");
	if (json_is_object(v))
		json_object_set_new(o, "identity", json_deep_copy(v));
	char when[48];
	if (p->x_created) {
		iso7(created, when);
		json_object_set_new(o, "createdTime", json_string(when));
	}
	if (p->x_changed) {
		iso7(updated, when);
		json_object_set_new(o, "changedTime", json_string(when));
	}
	if (p->x_state) {
		const char *ps = bc_json_str(json_object_get(body, "properties"), "provisioningState");
		json_object_set_new(o, "provisioningState", json_string(ps ? ps : "Succeeded"));
	}
	return o;
}

/* Columns: key, id, name, body, created, updated. */
static int page_row(void *ctx, const struct bc_row *row)
{
	struct page *p = ctx;
	const char *key = bc_row_text(row, 0), *id = bc_row_text(row, 1), *name = bc_row_text(row, 2);
	struct mgr_rid rid;
	struct bc_error err;
	char type[160], action[192];
	json_t *body;

	if (!key || !id || !name || mgr_rid_parse(id, &rid, &err) != BC_OK || !rid.ns[0]) {
		bc_log_error("manager: resource list: stored id %.200s is malformed", id ? id : "(null)");
		return 0;
	}
	snprintf(type, sizeof(type), "%s/%s", rid.ns, rid.type);
	body = json_loads(bc_row_text(row, 3) ? bc_row_text(row, 3) : "", 0, NULL);
	if (!json_is_object(body)) {
		bc_log_error("manager: resource list: stored resource %.200s is corrupt", id);
		json_decref(body);
		return 0;
	}
	struct mgr_fsubject s = {
		.type = type,
		.name = name,
		.location = bc_json_str(body, "location"),
		.group = rid.rg[0] ? rid.rg : NULL,
		.principal = bc_json_str(json_object_get(body, "identity"), "principalId"),
		.tags = json_object_get(body, "tags"),
	};
	snprintf(action, sizeof(action), "%s/read", type);
	if (!mgr_filter_match(p->f, &s) || !arm_can(p->a, action, id)) {
		json_decref(body);
		return 0;
	}
	if (p->n == p->top) {
		p->more = true;
		json_decref(body);
		return 1;
	}
	json_array_append_new(p->arr, generic(p, id, name, type, body, bc_row_int(row, 4), bc_row_int(row, 5)));
	snprintf(p->last, sizeof(p->last), "%s", key);
	p->n++;
	json_decref(body);
	return 0;
}

/* ---- query parameters ---- */

static bool once(struct arm *a, const char *key, const char *code)
{
	if (bc_http_query_count(a->req, key) <= 1)
		return true;
	arm_error(a->res, 400, code, "The query parameter '%s' is given more than once.", key);
	return false;
}

static bool parse_top(struct arm *a, int *top)
{
	const char *v = bc_http_query(a->req, "$top");
	*top = MGR_LIST_TOP_MAX;
	if (!once(a, "$top", "InvalidTopInQueryString"))
		return false;
	if (!v)
		return true;
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < 1 || n > MGR_LIST_TOP_MAX) {
		arm_error(a->res, 400, "InvalidTopInQueryString",
			  "The value '%.32s' of the $top query parameter is invalid: it must be an integer from 1 to %d.", v,
			  MGR_LIST_TOP_MAX);
		return false;
	}
	*top = (int)n;
	return true;
}

static bool parse_skiptoken(struct arm *a, char *after, size_t n)
{
	const char *tok = bc_http_query(a->req, "$skiptoken");
	uint8_t *raw = NULL;
	size_t len = 0;
	struct bc_error err = {0};
	after[0] = '\0';
	if (!once(a, "$skiptoken", "InvalidSkipToken"))
		return false;
	if (!tok)
		return true;
	if (!*tok || strlen(tok) > 2 * n || bc_b64url_decode(tok, strlen(tok), &raw, &len, &err) != BC_OK ||
	    len == 0 || len >= n || memchr(raw, '\0', len)) {
		free(raw);
		arm_error(a->res, 400, "InvalidSkipToken", "The $skiptoken query parameter is invalid.");
		return false;
	}
	memcpy(after, raw, len);
	after[len] = '\0';
	free(raw);
	return true;
}

/* $expand: a comma-separated list; names other than the three of GenericResourceExpanded are
 * ignored. */
static void parse_expand(const char *v, struct page *p)
{
	while (v && *v) {
		size_t n = strcspn(v, ",");
		const char *w = v;
		size_t wn = n;
		while (wn && *w == ' ')
			w++, wn--;
		while (wn && w[wn - 1] == ' ')
			wn--;
		if (wn == 11 && !strncasecmp(w, "createdTime", 11))
			p->x_created = true;
		else if (wn == 11 && !strncasecmp(w, "changedTime", 11))
			p->x_changed = true;
		else if (wn == 17 && !strncasecmp(w, "provisioningState", 17))
			p->x_state = true;
		v += n;
		if (*v == ',')
			v++;
	}
}

/* ---- nextLink ---- */

static int pct(struct bc_buf *b, const char *s)
{
	int rc = BC_OK;
	for (; *s && rc == BC_OK; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			rc = bc_buf_appendc(b, (char)c);
		else
			rc = bc_buf_appendf(b, "%%%02X", c);
	}
	return rc;
}

/* The base URL as the client reached us (a plain host[:port] Host), else the configured one. */
static int link_base(const struct arm *a, struct bc_buf *b)
{
	const char *h = a->req->host;
	size_t n = h ? strlen(h) : 0;
	bool sane = n > 0 && n < 256;
	for (size_t i = 0; sane && i < n; i++)
		sane = isalnum((unsigned char)h[i]) || strchr(".-:[]", h[i]);
	if (sane)
		return bc_buf_appendf(b, "https://%s", h);
	const char *u = a->m->management_url;
	size_t ul = strlen(u);
	while (ul > 0 && u[ul - 1] == '/')
		ul--;
	return bc_buf_appendf(b, "%.*s", (int)ul, u);
}

static json_t *next_link(const struct arm *a, const char *sub, const char *rg, const char *last)
{
	struct bc_buf b = {0};
	const char *top = bc_http_query(a->req, "$top"), *f = bc_http_query(a->req, "$filter"),
		   *x = bc_http_query(a->req, "$expand");
	char *tok = bc_b64url_encode_str(last, strlen(last));
	json_t *j = NULL;
	int rc = tok ? link_base(a, &b) : BC_ERR_NOMEM;
	if (rc == BC_OK)
		rc = bc_buf_appendf(&b, "/subscriptions/%s", sub);
	if (rc == BC_OK && rg) {
		rc = bc_buf_appends(&b, "/resourceGroups/");
		if (rc == BC_OK)
			rc = pct(&b, rg);
	}
	if (rc == BC_OK)
		rc = bc_buf_appends(&b, "/resources?api-version=");
	if (rc == BC_OK)
		rc = pct(&b, bc_http_query(a->req, "api-version"));
	if (rc == BC_OK && top)
		rc = bc_buf_appendf(&b, "&%%24top=%d", atoi(top));
	if (rc == BC_OK && f && (rc = bc_buf_appends(&b, "&%24filter=")) == BC_OK)
		rc = pct(&b, f);
	if (rc == BC_OK && x && (rc = bc_buf_appends(&b, "&%24expand=")) == BC_OK)
		rc = pct(&b, x);
	if (rc == BC_OK)
		rc = bc_buf_appendf(&b, "&%%24skiptoken=%s", tok);
	if (rc == BC_OK)
		j = json_string(bc_buf_cstr(&b));
	free(tok);
	bc_buf_release(&b);
	return j;
}

/* ---- the handler ---- */

/* The group of a by-group list must exist; a caller who may not read it learns nothing. */
static bool group_ok(struct arm *a, const char *sub, const char *rg)
{
	struct bc_error err = {0};
	bool exists = false;
	char scope[256];
	if (mgr_group_exists(a->m, NULL, sub, rg, NULL, 0, false, &exists, &err) != BC_OK) {
		arm_error_from(a->res, &err);
		return false;
	}
	if (exists)
		return true;
	snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%.96s", sub, rg);
	if (arm_allowed(a, A_GROUP_READ, scope))
		arm_error(a->res, 404, "ResourceGroupNotFound", "Resource group '%.96s' could not be found.", rg);
	return false;
}

static void resource_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	struct mgr_filter *f = NULL;
	struct page p = {0};
	char sub[64], rgk[96] = "", typek[160] = "", after[BC_LIMIT_RESOURCE_ID + 1], sql[256];
	const char *rg = req->ncaptures > 1 ? req->captures[1] : NULL, *want;
	struct bc_param params[4];
	size_t np = 0;

	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	if (!(f = malloc(sizeof(*f)))) {
		arm_error(res, 500, "InternalServerError", "out of memory");
		goto out;
	}
	if (!once(&a, "$filter", "InvalidFilterInQueryString") || !once(&a, "$expand", "InvalidExpandQueryString"))
		goto out;
	if (mgr_filter_parse(bc_http_query(req, "$filter"), f, &err) != BC_OK) {
		arm_error(res, 400, "InvalidFilterInQueryString", "The $filter '%.200s' is invalid: %s.",
			  bc_http_query(req, "$filter"), err.msg);
		goto out;
	}
	if (!parse_top(&a, &p.top) || !parse_skiptoken(&a, after, sizeof(after)))
		goto out;
	parse_expand(bc_http_query(req, "$expand"), &p);
	if (rg && !group_ok(&a, sub, rg))
		goto out;

	/* narrow the query by what every match must satisfy */
	if (rg)
		(void)mgr_lower(rg, rgk, sizeof(rgk));
	else if ((want = mgr_filter_required(f, MGR_FP_GROUP)) && !mgr_lower(want, rgk, sizeof(rgk)))
		rgk[0] = '\0';
	if ((want = mgr_filter_required(f, MGR_FP_TYPE)) && !mgr_lower(want, typek, sizeof(typek)))
		typek[0] = '\0';
	params[np++] = BC_PTEXT(sub);
	if (rgk[0])
		params[np++] = BC_PTEXT(rgk);
	if (typek[0])
		params[np++] = BC_PTEXT(typek);
	if (after[0])
		params[np++] = BC_PTEXT(after);
	snprintf(sql, sizeof(sql), "SELECT key, id, name, body, created, updated FROM mgr_resources WHERE sub = ?%s%s%s "
		 "ORDER BY key", rgk[0] ? " AND rg = ?" : "", typek[0] ? " AND type = ?" : "",
		 after[0] ? " AND key > ?" : "");

	p.a = &a;
	p.f = f;
	p.arr = json_array();
	if (bc_store_exec(a.m->st, NULL, sql, params, np, page_row, &p, NULL, &err) != BC_OK) {
		arm_error_from(res, &err);
		goto out;
	}
	json_t *body = json_pack("{s:O}", "value", p.arr);
	if (body && p.more)
		json_object_set_new(body, "nextLink", next_link(&a, sub, rg, p.last));
	arm_json(&a, 200, body);
out:
	json_decref(p.arr);
	free(f);
	arm_end(&a);
}

const struct bc_route mgr_resource_routes[] = {
	{"GET", "/subscriptions/{sub}/resources", resource_list, NULL, 0},
	{"GET", "/subscriptions/{sub}/resourceGroups/{rg}/resources", resource_list, NULL, 0},
};
const size_t mgr_resource_nroutes = sizeof(mgr_resource_routes) / sizeof(mgr_resource_routes[0]);
