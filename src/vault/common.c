/* The operations secrets and keys share: list, versions, delete, deleted objects, recover,
 * purge, backup and restore. What differs (the bundle shapes, names, error codes) comes from
 * struct vault_kind. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "vault/vault_int.h"

const struct vault_kind *vault_kind_of(const struct vreq *q)
{
	return q->route->category && strcmp(q->route->category, "keys") == 0 ? &vault_kind_key
									     : &vault_kind_secret;
}

void vault_aad(char *out, size_t n, const char *kind, const char *vault, const char *name,
	       const char *version)
{
	size_t i = (size_t)snprintf(out, n, "%s/%s/", kind, vault);
	for (size_t j = 0; name[j] && i + 1 < n; j++, i++)
		out[i] = (char)tolower((unsigned char)name[j]);
	if (i < n)
		out[i] = '\0';
	size_t len = strlen(out);
	snprintf(out + len, n - len, "/%s", version);
}

void vault_not_found(struct vreq *q, const struct vault_kind *k)
{
	vault_error(q, 404, k->not_found, NULL,
		    "A %s with (name/id) %s%s%s was not found in this key vault. If you recently deleted "
		    "this %s you may be "
		    "able to recover it using the correct recovery command. For help resolving this issue, "
		    "please see "
		    "https://go.microsoft.com/fwlink/?linkid=2125182",
		    k->noun, q->name ? q->name : "", q->version && *q->version ? "/" : "",
		    q->version && *q->version ? q->version : "", k->noun);
}

static void deleted_not_found(struct vreq *q, const struct vault_kind *k)
{
	vault_error(q, 404, k->not_found, NULL, "Deleted %s not found", k->Noun);
}

void vault_deleted_fields(struct vreq *q, const struct vault_kind *k, const struct vault_row *r, json_t *obj)
{
	char id[600];
	snprintf(id, sizeof(id), "%s/%s/%s", q->base, k->deleted, r->name);
	json_object_set_new(obj, "recoveryId", json_string(id));
	json_object_set_new(obj, "deletedDate", json_integer(r->deleted_date));
	json_object_set_new(obj, "scheduledPurgeDate", json_integer(r->purge_date));
}

/* ---- lists ----------------------------------------------------------------------------- */

struct page {
	struct vreq *q;
	const struct vault_kind *k;
	json_t *items;
	int limit, n;
	bool more;
	bool deleted, versions;
	char cursor[BC_LIMIT_NAME + 1];
};

static int page_row(void *ctx, const struct vault_row *r)
{
	struct page *p = ctx;
	if (p->n == p->limit) {
		p->more = true;
		return 1;
	}
	json_t *it = p->k->item(p->q, r, p->versions);
	if (!it)
		return 1;
	if (p->deleted)
		vault_deleted_fields(p->q, p->k, r, it);
	json_array_append_new(p->items, it);
	p->n++;
	if (p->versions) {
		snprintf(p->cursor, sizeof(p->cursor), "%" PRId64, r->seq);
	} else {
		size_t i = 0;
		for (; r->name[i] && i + 1 < sizeof(p->cursor); i++)
			p->cursor[i] = (char)tolower((unsigned char)r->name[i]);
		p->cursor[i] = '\0';
	}
	return 0;
}

static void list_common(struct vreq *q, bool deleted, bool versions)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct page p = {.q = q, .k = k, .deleted = deleted, .versions = versions};
	char after[BC_LIMIT_NAME + 1];
	struct bc_error err = {0};
	char path[BC_LIMIT_NAME + 40];
	int rc;
	if (vault_page_params(q, &p.limit, after, sizeof(after)) != BC_OK)
		return;
	if (!(p.items = json_array())) {
		vault_internal(q, NULL);
		return;
	}
	if (versions) {
		char *end = NULL;
		int64_t seq = *after ? strtoll(after, &end, 10) : 0;
		if (*after && (*end || seq < 0)) {
			json_decref(p.items);
			vault_error(q, 400, "BadParameter", NULL, "Invalid value for $skiptoken");
			return;
		}
		rc = vault_obj_versions(q->v->st, q->vkey, k->kind, q->name, seq, p.limit + 1, page_row, &p,
					&err);
		snprintf(path, sizeof(path), "/%s/%s/versions", k->collection, q->name);
		vault_audit_object(q, k->collection, q->name, NULL);
	} else {
		rc = vault_obj_list(q->v->st, q->vkey, k->kind, deleted, after, p.limit + 1, page_row, &p,
				    &err);
		snprintf(path, sizeof(path), "/%s", deleted ? k->deleted : k->collection);
	}
	if (rc != BC_OK) {
		json_decref(p.items);
		vault_internal(q, &err);
		return;
	}
	json_t *body = json_object();
	json_object_set_new(body, "value", p.items);
	json_object_set_new(body, "nextLink", vault_next_link(q, path, p.more ? p.cursor : NULL, p.limit));
	vault_reply(q, body);
}

void vault_op_list(struct vreq *q)
{
	list_common(q, false, false);
}

void vault_op_versions(struct vreq *q)
{
	list_common(q, false, true);
}

void vault_op_list_deleted(struct vreq *q)
{
	list_common(q, true, false);
}

/* ---- delete, deleted, recover, purge ---------------------------------------------------- */

static int delete_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	const struct vault_kind *k = ctx;
	struct vault_row r;
	int rc = vault_obj_get(q->v->st, txn, q->vkey, k->kind, q->name, NULL, false, &r, err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, k);
		return BC_OK;
	}
	if (rc != BC_OK)
		return rc;
	int64_t now = bc_now();
	int64_t purge = q->info.soft_delete ? now + (int64_t)vault_recoverable_days(&q->info) * 86400 : 0;
	rc = vault_obj_delete(q->v->st, txn, q->vkey, k->kind, r.name, now, purge, err);
	if (rc == BC_OK) {
		json_t *b = k->bundle(q, &r, NULL);
		r.deleted_date = now;
		r.purge_date = purge;
		if (b && q->info.soft_delete)
			vault_deleted_fields(q, k, &r, b);
		vault_reply(q, b);
	}
	vault_row_release(&r);
	return rc;
}

void vault_op_delete(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct bc_error err = {0};
	vault_audit_object(q, k->collection, q->name, NULL);
	if (vault_in_txn(q, delete_txn, (void *)k, &err) != BC_OK)
		vault_internal(q, &err);
}

/* A deleted object whose purge date has passed is gone, even before the sweep removes it. */
static int get_deleted(struct vreq *q, struct bc_txn *txn, const struct vault_kind *k, struct vault_row *r,
		       struct bc_error *err)
{
	int rc = vault_obj_get(q->v->st, txn, q->vkey, k->kind, q->name, NULL, true, r, err);
	if (rc == BC_OK && r->purge_date <= bc_now()) {
		vault_row_release(r);
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "purged");
	}
	return rc;
}

void vault_op_get_deleted(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct bc_error err = {0};
	struct vault_row r;
	vault_audit_object(q, k->deleted, q->name, NULL);
	int rc = get_deleted(q, NULL, k, &r, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		deleted_not_found(q, k);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	json_t *b = k->bundle(q, &r, NULL);
	if (b)
		vault_deleted_fields(q, k, &r, b);
	vault_reply(q, b);
	vault_row_release(&r);
}

static int recover_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	const struct vault_kind *k = ctx;
	struct vault_row r;
	int rc = get_deleted(q, txn, k, &r, err);
	if (rc == BC_ERR_NOT_FOUND) {
		deleted_not_found(q, k);
		return BC_OK;
	}
	if (rc != BC_OK)
		return rc;
	rc = vault_obj_recover(q->v->st, txn, q->vkey, k->kind, r.name, err);
	if (rc == BC_OK) {
		r.deleted = false;
		vault_reply(q, k->bundle(q, &r, NULL));
	}
	vault_row_release(&r);
	return rc;
}

void vault_op_recover(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct bc_error err = {0};
	vault_audit_object(q, k->deleted, q->name, NULL);
	if (vault_in_txn(q, recover_txn, (void *)k, &err) != BC_OK)
		vault_internal(q, &err);
}

static int purge_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	const struct vault_kind *k = ctx;
	struct vault_row r;
	int rc = get_deleted(q, txn, k, &r, err);
	if (rc == BC_ERR_NOT_FOUND) {
		deleted_not_found(q, k);
		return BC_OK;
	}
	if (rc != BC_OK)
		return rc;
	rc = vault_obj_purge(q->v->st, txn, q->vkey, k->kind, r.name, err);
	vault_row_release(&r);
	if (rc == BC_OK)
		bc_http_res_json(q->res, 204, NULL);
	return rc;
}

void vault_op_purge(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct bc_error err = {0};
	vault_audit_object(q, k->deleted, q->name, NULL);
	if (q->info.purge_protection) {
		vault_error(q, 403, "Forbidden", "PurgeProtectionEnabled",
			    "Operation \"purge\" is not allowed because purge protection is enabled for this "
			    "vault. Key Vault "
			    "service will automatically purge it after the retention period has passed.");
		return;
	}
	if (vault_in_txn(q, purge_txn, (void *)k, &err) != BC_OK)
		vault_internal(q, &err);
}

/* ---- backup and restore ---------------------------------------------------------------- */

/* A backup holds every version in clear inside the sealed blob: metadata and the payload (the
 * secret value, or the key's private JWK). */
struct backup_ctx {
	struct vreq *q;
	const struct vault_kind *k;
	json_t *versions;
	int n, rc;
	struct bc_error *err;
};

static void set_opt_str(json_t *o, const char *key, const char *s)
{
	if (s)
		json_object_set_new(o, key, json_string(s));
}

static int backup_row(void *ctx, const struct vault_row *r)
{
	struct backup_ctx *b = ctx;
	char aad[BC_LIMIT_NAME + 200];
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	if (++b->n > VAULT_LIMIT_BACKUP_VERSIONS) {
		b->rc = BC_ERR_LIMIT;
		return 1;
	}
	vault_aad(aad, sizeof(aad), b->k->kind, b->q->vkey, r->name, r->version);
	if (r->sealed &&
	    (b->rc = vault_open(b->q->v->crypt, b->q->vkey, aad, r->sealed, &pt, &ptlen, b->err)) != BC_OK)
		return 1;
	json_t *o = json_object();
	json_object_set_new(o, "version", json_string(r->version));
	json_object_set_new(o, "seq", json_integer(r->seq));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	if (r->has_nbf)
		json_object_set_new(o, "nbf", json_integer(r->nbf));
	if (r->has_exp)
		json_object_set_new(o, "exp", json_integer(r->exp));
	json_object_set_new(o, "created", json_integer(r->created));
	json_object_set_new(o, "updated", json_integer(r->updated));
	set_opt_str(o, "contentType", r->content_type);
	set_opt_str(o, "tags", r->tags);
	set_opt_str(o, "kty", r->kty);
	set_opt_str(o, "keyOps", r->key_ops);
	set_opt_str(o, "pub", r->pub);
	if (pt)
		json_object_set_new(o, "payload", json_stringn((const char *)pt, ptlen));
	if (pt) {
		bc_wipe(pt, ptlen);
		free(pt);
	}
	json_array_append_new(b->versions, o);
	return 0;
}

void vault_op_backup(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct bc_error err = {0};
	struct vault_row latest;
	struct backup_ctx b = {.q = q, .k = k, .err = &err};
	struct bc_buf blob = {0};
	char *doc = NULL;
	vault_audit_object(q, k->collection, q->name, NULL);
	int rc = vault_obj_read(q->v, q->vkey, k->kind, q->name, NULL, &latest, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, k);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	json_t *top = json_object();
	b.versions = json_array();
	json_object_set_new(top, "format", json_string("badge-vault-backup-1"));
	json_object_set_new(top, "kind", json_string(k->kind));
	json_object_set_new(top, "name", json_string(latest.name));
	json_object_set_new(top, "latest", json_string(latest.version));
	json_object_set_new(top, "versions", b.versions);
	rc = vault_obj_versions(q->v->st, q->vkey, k->kind, q->name, 0, VAULT_LIMIT_BACKUP_VERSIONS + 1,
				backup_row, &b, &err);
	if (rc == BC_OK)
		rc = b.rc;
	if (rc == BC_ERR_LIMIT) {
		vault_error(q, 400, "BadParameter", NULL,
			    "The %s has more than %d versions and cannot be backed up", k->noun,
			    VAULT_LIMIT_BACKUP_VERSIONS);
		goto done;
	}
	if (rc == BC_OK && !(doc = json_dumps(top, JSON_COMPACT)))
		rc = bc_error_set(&err, BC_ERR_NOMEM, "out of memory");
	if (rc == BC_OK)
		rc = vault_backup_seal(q->v->crypt, k->kind, doc, strlen(doc), &blob, &err);
	if (rc != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	vault_reply(q, json_pack("{s:s}", "value", bc_buf_cstr(&blob)));
done:
	if (doc) {
		bc_wipe(doc, strlen(doc));
		free(doc);
	}
	/* The payloads in top are plaintext: wipe them before they go back to the allocator. */
	size_t i;
	json_t *o;
	json_array_foreach(b.versions, i, o)
	{
		json_t *p = json_object_get(o, "payload");
		if (p)
			bc_wipe((char *)json_string_value(p), json_string_length(p));
	}
	json_decref(top);
	bc_buf_release(&blob);
	vault_row_release(&latest);
}

struct restore_ctx {
	const struct vault_kind *k;
	struct vault_row *rows;
	size_t n;
	size_t latest;
	char name[BC_LIMIT_NAME + 1];
};

static int restore_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct restore_ctx *r = ctx;
	bool exists = false, deleted = false;
	int rc = vault_obj_exists(q->v->st, txn, q->vkey, r->k->kind, r->name, &exists, &deleted, err);
	if (rc != BC_OK)
		return rc;
	if (exists) {
		vault_error(q, 409, "Conflict", NULL,
			    "There was a conflict restoring the %s '%s/%s/%s'. The %s already exists%s.",
			    r->k->noun, q->base, r->k->collection, r->name, r->k->noun,
			    deleted ? " in a deleted but recoverable state" : "");
		return BC_OK;
	}
	for (size_t i = 0; i < r->n; i++)
		if ((rc = vault_obj_put_raw(q->v->st, txn, q->vkey, r->k->kind, &r->rows[i], i == r->latest,
					    err)) != BC_OK)
			return rc;
	vault_reply(q, r->k->bundle(q, &r->rows[r->latest], NULL));
	return BC_OK;
}

static int restore_parse(struct vreq *q, const struct vault_kind *k, const char *doc, size_t len,
			 struct restore_ctx *r, struct bc_error *err)
{
	json_t *top = json_loadb(doc, len, 0, NULL);
	int rc = BC_ERR_INVALID;
	const char *name = bc_json_str(top, "name"), *latest = bc_json_str(top, "latest");
	json_t *vs = json_object_get(top, "versions");
	size_t i;
	json_t *o;
	if (!json_is_object(top) || !name || !vault_name_valid(name) || !latest || !json_is_array(vs) ||
	    json_array_size(vs) == 0 || json_array_size(vs) > VAULT_LIMIT_BACKUP_VERSIONS ||
	    strcmp(bc_json_str(top, "kind") ? bc_json_str(top, "kind") : "", k->kind) != 0)
		goto done;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->rows = calloc(json_array_size(vs), sizeof(*r->rows));
	if (!r->rows) {
		rc = BC_ERR_NOMEM;
		goto done;
	}
	r->latest = SIZE_MAX;
	json_array_foreach(vs, i, o)
	{
		struct vault_row *row = &r->rows[r->n++];
		const char *ver = bc_json_str(o, "version"), *payload = bc_json_str(o, "payload");
		if (!ver || !vault_version_valid(ver))
			goto done;
		snprintf(row->name, sizeof(row->name), "%s", name);
		snprintf(row->version, sizeof(row->version), "%s", ver);
		row->seq = bc_json_int(o, "seq", (int64_t)i + 1);
		row->enabled = bc_json_bool(o, "enabled", true);
		row->has_nbf = json_is_integer(json_object_get(o, "nbf"));
		row->nbf = bc_json_int(o, "nbf", 0);
		row->has_exp = json_is_integer(json_object_get(o, "exp"));
		row->exp = bc_json_int(o, "exp", 0);
		row->created = bc_json_int(o, "created", 0);
		row->updated = bc_json_int(o, "updated", 0);
#define DUP(field, key)                                                                                      \
	if (bc_json_str(o, key) && !(row->field = strdup(bc_json_str(o, key)))) {                            \
		rc = BC_ERR_NOMEM;                                                                           \
		goto done;                                                                                   \
	}
		DUP(content_type, "contentType")
		DUP(tags, "tags")
		DUP(kty, "kty")
		DUP(key_ops, "keyOps")
		DUP(pub, "pub")
#undef DUP
		if (strcmp(ver, latest) == 0)
			r->latest = i;
		if (payload) {
			char aad[BC_LIMIT_NAME + 200];
			vault_aad(aad, sizeof(aad), k->kind, q->vkey, name, ver);
			if ((rc = vault_seal(q->v->crypt, q->vkey, aad, payload, strlen(payload),
					     &row->sealed, err)) != BC_OK)
				goto done;
			rc = BC_ERR_INVALID;
		}
	}
	if (r->latest != SIZE_MAX)
		rc = BC_OK;
done:
	if (top) {
		json_array_foreach(vs, i, o)
		{
			json_t *p = json_object_get(o, "payload");
			if (json_is_string(p))
				bc_wipe((char *)json_string_value(p), json_string_length(p));
		}
	}
	json_decref(top);
	return rc;
}

void vault_op_restore(struct vreq *q)
{
	const struct vault_kind *k = vault_kind_of(q);
	struct vault_fail f = {0};
	struct bc_error err = {0};
	uint8_t *blob = NULL, *doc = NULL;
	size_t bloblen = 0, doclen = 0;
	struct restore_ctx r = {.k = k};
	if (vault_parse_value_b64(q->req->body, q->req->body_len, VAULT_LIMIT_BACKUP_BODY, &blob, &bloblen,
				  &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	if (vault_backup_open(q->v->crypt, k->kind, blob, bloblen, &doc, &doclen, &err) != BC_OK) {
		vault_error(q, 400, "BadParameter", NULL, "Backup blob contains invalid or corrupt data.");
		goto done;
	}
	int rc = restore_parse(q, k, (const char *)doc, doclen, &r, &err);
	if (rc == BC_ERR_INVALID) {
		vault_error(q, 400, "BadParameter", NULL, "Backup blob contains invalid or corrupt data.");
		goto done;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	vault_audit_object(q, k->collection, r.name, NULL);
	q->name = r.name;
	if (vault_in_txn(q, restore_txn, &r, &err) != BC_OK)
		vault_internal(q, &err);
done:
	for (size_t i = 0; i < r.n; i++)
		vault_row_release(&r.rows[i]);
	free(r.rows);
	if (doc) {
		bc_wipe(doc, doclen);
		free(doc);
	}
	free(blob);
}
