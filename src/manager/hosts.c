/* Badge.Compute/hosts (subscription-level, names unique across the installation): register,
 * one-time join tokens with a short lifetime, list, show with the instances each runs. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/util.h"
#include "manager/mgr_int.h"

#define PT "Badge.Compute/hosts"
#define A_READ PT "/read"
#define A_WRITE PT "/write"
#define A_DELETE PT "/delete"
#define A_JOIN PT "/joinToken/action"

int mgr_token_hash(const char *token, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return BC_ERR_CRYPTO;
	bc_hex(md, 32, out);
	return BC_OK;
}

static int inst_row(void *ctx, const struct bc_row *row)
{
	json_array_append_new(ctx, json_string(bc_row_text(row, 0)));
	return 0;
}

static json_t *host_json(struct mgr *m, const struct mgr_res *r, bool with_instances)
{
	json_t *o = json_deep_copy(r->body);
	struct bc_error err;
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "type", json_string(PT));
	json_t *props = json_object_get(o, "properties");
	if (r->principal[0]) {
		json_object_set_new(props, "principalId", json_string(r->principal));
		json_object_set_new(props, "clientId", json_string(r->client));
	}
	if (with_instances) {
		json_t *arr = json_array();
		if (bc_store_exec(m->st, NULL, "SELECT id FROM mgr_resources WHERE host = ? AND type = ? ORDER BY key",
				  (struct bc_param[]){BC_PTEXT(r->key), BC_PTEXT(MGR_T_VM)}, 2, inst_row, arr, NULL, &err) ==
		    BC_OK)
			json_object_set_new(props, "instances", arr);
		else
			json_decref(arr);
	}
	return o;
}

static json_t *host_json_list(struct mgr *m, const struct mgr_res *r)
{
	return host_json(m, r, true);
}

struct host_put {
	const char *sub, *name;
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char key[BC_LIMIT_RESOURCE_ID + 1];
	json_t *body;
	bool created;
	json_t *out;
	char token[64];
	int64_t expires;
	bool join;
	bool del;
	bool found;
	char code[64];
};

static int put_txn(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct host_put *p = ctx;
	struct mgr_res r;
	char gn[BC_LIMIT_NAME + 8], *other = NULL;
	int st = mgr_res_get(m, txn, p->key, true, &r, err);
	p->code[0] = '\0';
	if (st != BC_OK)
		return st;
	if (p->join || p->del) {
		p->found = r.found;
		if (!r.found) {
			if (p->join) {
				snprintf(p->code, sizeof(p->code), "ResourceNotFound");
				st = bc_error_set(err, BC_ERR_NOT_FOUND, "The host '%s' was not found.", p->name);
			}
			goto done;
		}
	}
	if (p->join) {
		uint8_t raw[32];
		char hash[65];
		char *tok;
		if (bc_random(raw, sizeof(raw)) != BC_OK || !(tok = bc_b64url_encode_str(raw, sizeof(raw)))) {
			st = bc_error_set(err, BC_ERR_CRYPTO, "cannot generate a join token");
			goto done;
		}
		snprintf(p->token, sizeof(p->token), "%s", tok);
		bc_wipe(tok, strlen(tok));
		free(tok);
		bc_wipe(raw, sizeof(raw));
		p->expires = bc_now() + MGR_JOIN_TOKEN_LIFETIME_S;
		if (mgr_token_hash(p->token, hash) != BC_OK) {
			st = bc_error_set(err, BC_ERR_CRYPTO, "cannot hash a join token");
			goto done;
		}
		st = bc_store_exec(m->st, txn, "DELETE FROM mgr_join_tokens WHERE expires < ?",
				   (struct bc_param[]){BC_PINT(bc_now())}, 1, NULL, NULL, NULL, err);
		if (st == BC_OK)
			st = bc_store_exec(m->st, txn, "INSERT INTO mgr_join_tokens (hash, host, expires, used) VALUES (?, ?, ?, 0)",
					   (struct bc_param[]){BC_PTEXT(hash), BC_PTEXT(p->key), BC_PINT(p->expires)}, 3, NULL,
					   NULL, NULL, err);
		goto done;
	}
	if (p->del) {
		int64_t n = 0;
		bool f;
		st = bc_store_get_int(m->st, txn, "SELECT COUNT(*) FROM mgr_resources WHERE host = ? AND type = ?",
				      (struct bc_param[]){BC_PTEXT(p->key), BC_PTEXT(MGR_T_VM)}, 2, &n, &f, err);
		if (st == BC_OK && n > 0) {
			snprintf(p->code, sizeof(p->code), "HostInUse");
			st = bc_error_set(err, BC_ERR_CONFLICT, "host '%s' still runs %lld instance(s): delete or move them "
					  "first", p->name, (long long)n);
		}
		if (st == BC_OK && r.principal[0]) {
			st = dir_principal_delete(m->dir, txn, r.principal, err);
			if (st == BC_ERR_NOT_FOUND)
				st = BC_OK;
		}
		if (st == BC_OK)
			st = bc_store_exec(m->st, txn, "DELETE FROM mgr_join_tokens WHERE host = ?",
					   (struct bc_param[]){BC_PTEXT(p->key)}, 1, NULL, NULL, NULL, err);
		if (st == BC_OK)
			st = bc_store_exec(m->st, txn, "DELETE FROM mgr_host_rev WHERE host = ?",
					   (struct bc_param[]){BC_PTEXT(p->key)}, 1, NULL, NULL, NULL, err);
		if (st == BC_OK)
			st = mgr_ra_delete_scope(m, txn, r.id, err);
		if (st == BC_OK)
			st = mgr_res_delete(m, txn, p->key, err);
		goto done;
	}
	snprintf(gn, sizeof(gn), "host:");
	(void)mgr_lower(p->name, gn + 5, sizeof(gn) - 5);
	if (!r.found) {
		st = bc_store_get_text(m->st, txn, "SELECT id FROM mgr_resources WHERE gname = ?",
				       (struct bc_param[]){BC_PTEXT(gn)}, 1, &other, err);
		if (st != BC_OK)
			goto done;
		if (other) {
			snprintf(p->code, sizeof(p->code), "HostNameInUse");
			st = bc_error_set(err, BC_ERR_EXISTS, "host name '%s' is already used by %.200s", p->name, other);
			free(other);
			goto done;
		}
		snprintf(r.key, sizeof(r.key), "%s", p->key);
		snprintf(r.id, sizeof(r.id), "%s", p->id);
		snprintf(r.name, sizeof(r.name), "%s", p->name);
		r.body = json_pack("{s:s,s:{},s:{s:s,s:s}}", "location", bc_json_str(p->body, "location") ?: m->location,
				   "tags", "properties", "provisioningState", "Succeeded", "state", "Registered");
		st = bc_store_exec(m->st, txn, "INSERT INTO mgr_host_rev (host, rev) VALUES (?, 1) ON CONFLICT (host) DO NOTHING",
				   (struct bc_param[]){BC_PTEXT(p->key)}, 1, NULL, NULL, NULL, err);
		if (st != BC_OK)
			goto done;
	}
	if (json_object_get(p->body, "tags")) {
		json_t *tags;
		st = arm_tags(p->body, &tags, err);
		if (st != BC_OK)
			goto done;
		json_object_set_new(r.body, "tags", tags);
	}
	st = mgr_res_put(m, txn, &r, p->sub, "", MGR_T_HOST, gn, !r.found, err);
	if (st == BC_OK) {
		p->created = !r.found;
		json_decref(p->out);
		p->out = host_json(m, &r, false);
	}
done:
	mgr_res_release(&r);
	return st;
}

static void host_call(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct arm a;
	struct bc_error err = {0};
	struct host_put p = {0};
	char sub[64];
	if (!arm_begin(&a, ctx, req, res))
		return;
	if (!arm_sub_ok(&a, req->captures[0]))
		goto out;
	(void)mgr_lower(req->captures[0], sub, sizeof(sub));
	p.sub = sub;
	p.name = req->captures[1];
	if (mgr_name_host(p.name, &err) != BC_OK) {
		arm_error(res, 400, "InvalidResourceName", "%s", err.msg);
		goto out;
	}
	(void)mgr_res_id(p.id, sizeof(p.id), sub, NULL, PT, p.name);
	(void)mgr_lower(p.id, p.key, sizeof(p.key));
	p.join = req->ncaptures > 2 || (strlen(req->path) > 10 && bc_str_endswith_ci(req->path, "/joinToken"));
	p.del = !strcmp(req->method, "DELETE");
	if (!strcmp(req->method, "GET")) {
		struct mgr_res r;
		if (!arm_allowed(&a, A_READ, p.id))
			goto out;
		if (mgr_res_get(a.m, NULL, p.key, false, &r, &err) != BC_OK)
			arm_error_from(res, &err);
		else if (!r.found)
			arm_error(res, 404, "ResourceNotFound", "The host '%s' was not found.", p.name);
		else
			arm_json(&a, 200, host_json(a.m, &r, true));
		mgr_res_release(&r);
		goto out;
	}
	if (!arm_allowed(&a, p.join ? A_JOIN : p.del ? A_DELETE : A_WRITE, p.id))
		goto out;
	if (!p.join && !p.del) {
		if (req->body_len == 0)
			p.body = json_object();
		else if (!(p.body = arm_body(&a)))
			goto out;
	}
	if (mgr_txn(a.m, put_txn, &p, &err) != BC_OK) {
		if (p.code[0])
			arm_error(res, err.status == BC_ERR_NOT_FOUND ? 404 : 409, p.code, "%s", err.msg);
		else
			arm_error_from(res, &err);
	} else if (p.join) {
		char when[32];
		mgr_iso8601(p.expires, when);
		arm_json(&a, 200, json_pack("{s:s,s:s,s:s,s:s}", "joinToken", p.token, "expiresOn", when, "hostName",
					    p.name, "hostId", p.id));
	} else if (p.del) {
		bc_http_res_json(res, p.found ? 200 : 204, NULL);
	} else {
		arm_json(&a, p.created ? 201 : 200, p.out);
		p.out = NULL;
	}
out:
	bc_wipe(p.token, sizeof(p.token));
	json_decref(p.out);
	json_decref(p.body);
	arm_end(&a);
}

static void host_list(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	mgr_list_handler(req, res, ctx, MGR_T_HOST, A_READ, host_json_list);
}

#define HP "/subscriptions/{sub}/providers/Badge.Compute/hosts"
const struct bc_route mgr_host_routes[] = {
	{"GET", HP, host_list, NULL, 0},
	{"PUT", HP "/{name}", host_call, NULL, 0},
	{"GET", HP "/{name}", host_call, NULL, 0},
	{"DELETE", HP "/{name}", host_call, NULL, 0},
	{"POST", HP "/{name}/joinToken", host_call, NULL, 0},
};
const size_t mgr_host_nroutes = sizeof(mgr_host_routes) / sizeof(mgr_host_routes[0]);
