/* Secrets: set, get, update, and the route table (the shared operations are in common.c).
 * GET /secrets/{name}/ is the benchmarked hot path: one primary-key lookup, one AES-GCM open
 * under a cached data key, no RSA (the directory caches verified tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/util.h"
#include "vault/vault_int.h"

static int secret_body(struct vreq *q, const struct vault_row *r, const char *value, size_t len,
		       struct bc_buf *out);

/* The bundle as a tree (the answers that add to it or reply through vault_reply): the GET's
 * document, read back. */
static json_t *secret_bundle(struct vreq *q, const struct vault_row *r, const char *value)
{
	struct bc_buf b = {0};
	json_t *j = secret_body(q, r, value, value ? strlen(value) : 0, &b) == BC_OK
			    ? json_loadb(b.data, b.len, 0, NULL)
			    : NULL;
	bc_buf_release(&b);
	return j;
}

static json_t *secret_item(struct vreq *q, const struct vault_row *r, bool with_version)
{
	char id[600];
	json_t *b = json_object();
	if (!b)
		return NULL;
	if (with_version)
		snprintf(id, sizeof(id), "%s/secrets/%s/%s", q->base, r->name, r->version);
	else
		snprintf(id, sizeof(id), "%s/secrets/%s", q->base, r->name);
	json_object_set_new(b, "id", json_string(id));
	json_object_set_new(b, "attributes", vault_attrs_json(q, r, false));
	json_t *tags = vault_tags_json(r->tags);
	if (tags)
		json_object_set_new(b, "tags", tags);
	if (r->content_type)
		json_object_set_new(b, "contentType", json_string(r->content_type));
	return b;
}

const struct vault_kind vault_kind_secret = {
	.kind = VAULT_KIND_SECRET,
	.collection = "secrets",
	.deleted = "deletedsecrets",
	.not_found = "SecretNotFound",
	.noun = "secret",
	.Noun = "Secret",
	.bundle = secret_bundle,
	.item = secret_item,
};

static char *tags_text(const json_t *tags)
{
	return tags ? json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* ---- set ------------------------------------------------------------------------------- */

struct set_ctx {
	struct vault_row row;
	const char *value;
};

static int set_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct set_ctx *s = ctx;
	int rc = vault_obj_put(q->v->st, txn, q->vkey, VAULT_KIND_SECRET, &s->row, err);
	if (rc == BC_ERR_FORBIDDEN) {
		vault_error(q, 409, "Conflict", "ObjectIsDeletedButRecoverable",
			    "Secret %s is currently in a deleted but recoverable state, and its name cannot "
			    "be reused; in this "
			    "state, the secret can only be recovered or purged.",
			    q->name);
		return BC_OK;
	}
	if (rc == BC_OK)
		vault_reply(q, secret_bundle(q, &s->row, s->value));
	return rc;
}

static void secret_set(struct vreq *q)
{
	struct vault_secret_input in;
	struct vault_fail f = {0};
	struct bc_error err = {0};
	struct set_ctx s = {0};
	char aad[BC_LIMIT_NAME + 200];
	if (vault_parse_secret_body(q->req->body, q->req->body_len, true, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	struct vault_row *r = &s.row;
	snprintf(r->name, sizeof(r->name), "%s", q->name);
	if (bc_random_hex32(r->version) != BC_OK) {
		vault_internal(q, NULL);
		goto done;
	}
	vault_audit_object(q, "secrets", q->name, r->version);
	r->enabled = in.attrs.has_enabled ? in.attrs.enabled : true;
	r->has_nbf = in.attrs.has_nbf;
	r->nbf = in.attrs.nbf;
	r->has_exp = in.attrs.has_exp;
	r->exp = in.attrs.exp;
	r->created = r->updated = bc_now();
	r->content_type = in.content_type ? strdup(in.content_type) : NULL;
	r->tags = tags_text(in.tags);
	s.value = in.value;
	/* Sealed before the transaction: the first write to a vault creates its data key. */
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, q->vkey, q->name, r->version);
	if (vault_seal(q->v->crypt, q->vkey, aad, in.value, in.value_len, &r->sealed, &err) != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	if (vault_in_txn(q, set_txn, &s, &err) != BC_OK)
		vault_internal(q, &err);
done:
	vault_row_release(r);
	if (in.value)
		bc_wipe((char *)in.value, in.value_len);
	vault_secret_input_release(&in);
}

/* ---- get ------------------------------------------------------------------------------- */

/* A secret bundle written directly (value omitted when NULL): a GET answers with it without
 * building a tree, validating the value's UTF-8 twice or parsing the stored tags, and
 * secret_bundle reads it back for the others. The tags are stored as a compact JSON object we
 * wrote (tags_text). */
static int secret_body(struct vreq *q, const struct vault_row *r, const char *value, size_t len,
		       struct bc_buf *out)
{
	char id[600];
	int n = snprintf(id, sizeof(id), "%s/secrets/%s/%s", q->base, r->name, r->version);
	size_t tl = r->tags ? strlen(r->tags) : 0;
	bool tags = tl >= 2 && r->tags[0] == '{' && r->tags[tl - 1] == '}';
	int rc = bc_buf_appendc(out, '{');
	if (rc == BC_OK && value) {
		rc = bc_buf_append(out, "\"value\":", 8);
		if (rc == BC_OK)
			rc = bc_json_put_str(out, value, len);
		if (rc == BC_OK)
			rc = bc_buf_appendc(out, ',');
	}
	if (rc == BC_OK)
		rc = bc_buf_append(out, "\"id\":", 5);
	if (rc == BC_OK)
		rc = bc_json_put_str(out, id, (size_t)n < sizeof(id) ? (size_t)n : sizeof(id) - 1);
	if (rc == BC_OK && r->content_type) {
		rc = bc_buf_append(out, ",\"contentType\":", 15);
		if (rc == BC_OK)
			rc = bc_json_put_str(out, r->content_type, strlen(r->content_type));
	}
	if (rc == BC_OK && tags) {
		rc = bc_buf_append(out, ",\"tags\":", 8);
		if (rc == BC_OK)
			rc = bc_buf_append(out, r->tags, tl);
	}
	if (rc == BC_OK)
		rc = bc_buf_append(out, ",\"attributes\":", 14);
	if (rc == BC_OK)
		rc = vault_attrs_write(q, r, false, out);
	if (rc == BC_OK)
		rc = bc_buf_appendc(out, '}');
	return rc;
}

/* enabled, nbf and exp are enforced on reading the value (Key Vault answers 403). */
static bool usable(struct vreq *q, const struct vault_row *r, const char *noun, const char *op)
{
	int64_t now = bc_now();
	const char *inner = NULL, *what = NULL;
	if (!r->enabled) {
		inner = strcmp(noun, "key") == 0 ? "KeyDisabled" : "SecretDisabled";
		what = "a disabled";
	} else if (r->has_nbf && now < r->nbf) {
		inner = "NotYetValid";
		what = "a not yet valid";
	} else if (r->has_exp && now >= r->exp) {
		inner = "Expired";
		what = "an expired";
	}
	if (!inner)
		return true;
	vault_error(q, 403, "Forbidden", inner, "Operation %s is not allowed on %s %s.", op, what, noun);
	return false;
}

static void secret_get(struct vreq *q)
{
	struct vault_row r;
	struct bc_error err = {0};
	uint8_t *value = NULL;
	size_t len = 0;
	char aad[BC_LIMIT_NAME + 200];
	vault_audit_object(q, "secrets", q->name, q->version);
	int rc = vault_obj_read(q->v, q->vkey, VAULT_KIND_SECRET, q->name, q->version, &r, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_secret);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	if (!usable(q, &r, "secret", "get"))
		goto done;
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, q->vkey, r.name, r.version);
	if (!r.sealed || vault_open(q->v->crypt, q->vkey, aad, r.sealed, &value, &len, &err) != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	vault_audit_object(q, "secrets", r.name, r.version);
	if (secret_body(q, &r, (const char *)value, len, bc_http_res_raw(q->res, 200, NULL)) != BC_OK)
		vault_internal(q, NULL);
done:
	if (value) {
		bc_wipe(value, len);
		free(value);
	}
	vault_row_release(&r);
}

/* ---- update ---------------------------------------------------------------------------- */

static int update_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	const struct vault_secret_input *in = ctx;
	struct vault_row r;
	int rc =
		vault_obj_get(q->v->st, txn, q->vkey, VAULT_KIND_SECRET, q->name, q->version, false, &r, err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_secret);
		return BC_OK;
	}
	if (rc != BC_OK)
		return rc;
	vault_audit_object(q, "secrets", r.name, r.version);
	if (in->attrs.has_enabled)
		r.enabled = in->attrs.enabled;
	if (in->attrs.has_nbf) {
		r.has_nbf = true;
		r.nbf = in->attrs.nbf;
	}
	if (in->attrs.has_exp) {
		r.has_exp = true;
		r.exp = in->attrs.exp;
	}
	if (in->has_content_type) {
		free(r.content_type);
		r.content_type = strdup(in->content_type);
	}
	if (in->tags) {
		free(r.tags);
		r.tags = tags_text(in->tags);
	}
	r.updated = bc_now();
	rc = vault_obj_update(q->v->st, txn, q->vkey, VAULT_KIND_SECRET, &r, err);
	if (rc == BC_OK)
		vault_reply(q, secret_bundle(q, &r, NULL));
	vault_row_release(&r);
	return rc;
}

static void secret_update(struct vreq *q)
{
	struct vault_secret_input in;
	struct vault_fail f = {0};
	struct bc_error err = {0};
	if (vault_parse_secret_body(q->req->body, q->req->body_len, false, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	if (vault_in_txn(q, update_txn, &in, &err) != BC_OK)
		vault_internal(q, &err);
	vault_secret_input_release(&in);
}

/* ---- routes ---------------------------------------------------------------------------- */

#define S "secrets"
/* Literal segments first: the adapter takes the first route that matches. */
const struct vroute vault_secret_routes[] = {
	{"GET", "/secrets", "SecretList", S, "list", vault_op_list, 0, false},
	{"POST", "/secrets/restore", "SecretRestore", S, "restore", vault_op_restore, VAULT_LIMIT_BACKUP_BODY,
	 true},
	{"GET", "/secrets/{name}/versions", "SecretListVersions", S, "list", vault_op_versions, 0, false},
	{"POST", "/secrets/{name}/backup", "SecretBackup", S, "backup", vault_op_backup, VAULT_LIMIT_BODY,
	 false},
	{"PUT", "/secrets/{name}", "SecretSet", S, "set", secret_set, VAULT_LIMIT_SECRET_BODY, true},
	{"GET", "/secrets/{name}", "SecretGet", S, "get", secret_get, 0, false},
	{"GET", "/secrets/{name}/{version}", "SecretGet", S, "get", secret_get, 0, false},
	{"PATCH", "/secrets/{name}", "SecretUpdate", S, "set", secret_update, VAULT_LIMIT_BODY, true},
	{"PATCH", "/secrets/{name}/{version}", "SecretUpdate", S, "set", secret_update, VAULT_LIMIT_BODY,
	 true},
	{"DELETE", "/secrets/{name}", "SecretDelete", S, "delete", vault_op_delete, 0, true},
	{"GET", "/deletedsecrets", "SecretListDeleted", S, "list", vault_op_list_deleted, 0, false},
	{"GET", "/deletedsecrets/{name}", "SecretGetDeleted", S, "list", vault_op_get_deleted, 0, false},
	{"DELETE", "/deletedsecrets/{name}", "SecretPurge", S, "purge", vault_op_purge, 0, true},
	{"POST", "/deletedsecrets/{name}/recover", "SecretRecover", S, "recover", vault_op_recover,
	 VAULT_LIMIT_BODY, true},
};
const size_t vault_secret_nroutes = sizeof(vault_secret_routes) / sizeof(vault_secret_routes[0]);

bool vault_usable(struct vreq *q, const struct vault_row *r, const char *noun, const char *op)
{
	return usable(q, r, noun, op);
}
