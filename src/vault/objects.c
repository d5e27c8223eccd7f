/* Versioned objects (secrets and keys) in the store. Two tables: vault_objects (one row per
 * name: its latest version and deletion state) and vault_versions (one row per version). Every
 * lookup is by primary key; lists walk the primary key from a keyset cursor, so a page costs
 * the same with a thousand objects as with a million. Names are case-insensitive (Key Vault's
 * rule): the key column is the lower-case name, the name column keeps the spelling given. */
#include <stdlib.h>
#include <string.h>
#include "core/store.h"
#include "core/util.h"
#include "vault/vault_int.h"

static const char *const schema[] = {
	"CREATE TABLE vault_objects ("
	" vault TEXT NOT NULL, kind TEXT NOT NULL, lname TEXT NOT NULL, name TEXT NOT NULL,"
	" latest TEXT NOT NULL, deleted BIGINT NOT NULL DEFAULT 0, deleted_date BIGINT, purge_date BIGINT,"
	" PRIMARY KEY (vault, kind, lname));"
	"CREATE INDEX vault_objects_deleted ON vault_objects (vault, kind, deleted, lname);"
	"CREATE TABLE vault_versions ("
	" vault TEXT NOT NULL, kind TEXT NOT NULL, lname TEXT NOT NULL, version TEXT NOT NULL,"
	" seq BIGINT NOT NULL, enabled BIGINT NOT NULL, nbf BIGINT, exp BIGINT,"
	" created BIGINT NOT NULL, updated BIGINT NOT NULL, content_type TEXT, tags TEXT,"
	" sealed TEXT, kty TEXT, key_ops TEXT, pub TEXT,"
	" PRIMARY KEY (vault, kind, lname, version));"
	"CREATE INDEX vault_versions_seq ON vault_versions (vault, kind, lname, seq);"
	"CREATE TABLE vault_deks (vault TEXT PRIMARY KEY, dek TEXT NOT NULL, created BIGINT NOT NULL);"
	"CREATE TABLE vault_audit ("
	" id TEXT NOT NULL, time_ms BIGINT NOT NULL, vault TEXT NOT NULL, operation TEXT NOT NULL,"
	" object TEXT, oid TEXT, appid TEXT, xms_mirid TEXT, client_ip TEXT, status BIGINT NOT NULL,"
	" duration_ms BIGINT NOT NULL, request_id TEXT);"
	"CREATE INDEX vault_audit_time ON vault_audit (vault, time_ms)",
};

int vault_schema_migrate(struct bc_store *st, struct bc_error *err)
{
	return bc_store_migrate(st, "vault", schema, sizeof(schema) / sizeof(schema[0]), err);
}

void vault_row_release(struct vault_row *r)
{
	free(r->content_type);
	free(r->tags);
	if (r->sealed)
		free(r->sealed);
	free(r->kty);
	free(r->key_ops);
	free(r->pub);
	memset(r, 0, sizeof(*r));
}

#define ROW_COLS                                                                                             \
	"o.name, v.version, v.seq, v.enabled, v.nbf, v.exp, v.created, v.updated, v.content_type, v.tags,"   \
	" v.sealed, v.kty, v.key_ops, v.pub, o.deleted, o.deleted_date, o.purge_date"
#define ROW_JOIN                                                                                             \
	" FROM vault_objects o JOIN vault_versions v ON v.vault = o.vault AND v.kind = o.kind AND v.lname "  \
	"= o.lname"

static char *dup_col(const struct bc_row *row, int i)
{
	const char *s = bc_row_text(row, i);
	return s ? strdup(s) : NULL;
}

static int row_read(const struct bc_row *row, struct vault_row *r)
{
	memset(r, 0, sizeof(*r));
	const char *name = bc_row_text(row, 0), *ver = bc_row_text(row, 1);
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	snprintf(r->version, sizeof(r->version), "%s", ver ? ver : "");
	r->seq = bc_row_int(row, 2);
	r->enabled = bc_row_int(row, 3) != 0;
	r->has_nbf = !bc_row_is_null(row, 4);
	r->nbf = bc_row_int(row, 4);
	r->has_exp = !bc_row_is_null(row, 5);
	r->exp = bc_row_int(row, 5);
	r->created = bc_row_int(row, 6);
	r->updated = bc_row_int(row, 7);
	r->content_type = dup_col(row, 8);
	r->tags = dup_col(row, 9);
	r->sealed = dup_col(row, 10);
	r->kty = dup_col(row, 11);
	r->key_ops = dup_col(row, 12);
	r->pub = dup_col(row, 13);
	r->deleted = bc_row_int(row, 14) != 0;
	r->deleted_date = bc_row_int(row, 15);
	r->purge_date = bc_row_int(row, 16);
	return BC_OK;
}

struct get_ctx {
	struct vault_row *out;
	bool found;
};

static int get_cb(void *ctx, const struct bc_row *row)
{
	struct get_ctx *g = ctx;
	row_read(row, g->out);
	g->found = true;
	return 1;
}

int vault_obj_get(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		  const char *name, const char *version, bool deleted, struct vault_row *out,
		  struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1], lver[33];
	struct vault_row r;
	struct get_ctx g = {.out = &r};
	int rc;
	vault_lower(lname, name, sizeof(lname));
	if (version && *version) {
		vault_lower(lver, version, sizeof(lver));
		struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname), BC_PINT(deleted),
				       BC_PTEXT(lver)};
		rc = bc_store_exec(st, txn,
				   "SELECT " ROW_COLS ROW_JOIN
				   " WHERE o.vault = ? AND o.kind = ? AND o.lname = ? AND o.deleted = ? AND "
				   "v.version = ?",
				   p, 5, get_cb, &g, NULL, err);
	} else {
		struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname), BC_PINT(deleted)};
		rc = bc_store_exec(st, txn,
				   "SELECT " ROW_COLS ROW_JOIN
				   " AND v.version = o.latest WHERE o.vault = ? AND o.kind = ? AND o.lname = "
				   "? AND o.deleted = ?",
				   p, 4, get_cb, &g, NULL, err);
	}
	if (rc != BC_OK) {
		if (g.found)
			vault_row_release(&r);
		return rc;
	}
	if (!g.found)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "%s not found", kind);
	*out = r;
	return BC_OK;
}

struct list_ctx {
	vault_row_cb fn;
	void *ctx;
	int rc;
};

static int list_cb(void *ctx, const struct bc_row *row)
{
	struct list_ctx *l = ctx;
	struct vault_row r;
	row_read(row, &r);
	l->rc = l->fn(l->ctx, &r);
	vault_row_release(&r);
	return l->rc;
}

int vault_obj_list(struct bc_store *st, const char *vault, const char *kind, bool deleted, const char *after,
		   int limit, vault_row_cb fn, void *ctx, struct bc_error *err)
{
	struct list_ctx l = {.fn = fn, .ctx = ctx};
	struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PINT(deleted),
			       BC_PTEXT(after ? after : ""), BC_PINT(limit)};
	return bc_store_exec(
		st, NULL,
		"SELECT " ROW_COLS ROW_JOIN
		" AND v.version = o.latest WHERE o.vault = ? AND o.kind = ? AND o.deleted = ? AND o.lname > ?"
		" ORDER BY o.lname LIMIT ?",
		p, 5, list_cb, &l, NULL, err);
}

int vault_obj_versions(struct bc_store *st, const char *vault, const char *kind, const char *name,
		       int64_t after_seq, int limit, vault_row_cb fn, void *ctx, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	struct list_ctx l = {.fn = fn, .ctx = ctx};
	vault_lower(lname, name, sizeof(lname));
	struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname), BC_PINT(after_seq),
			       BC_PINT(limit)};
	return bc_store_exec(
		st, NULL,
		"SELECT " ROW_COLS ROW_JOIN
		" WHERE o.vault = ? AND o.kind = ? AND o.lname = ? AND o.deleted = 0 AND v.seq > ?"
		" ORDER BY v.seq LIMIT ?",
		p, 5, list_cb, &l, NULL, err);
}

int vault_obj_exists(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const char *name, bool *exists, bool *deleted, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	int64_t del = 0;
	bool found = false;
	vault_lower(lname, name, sizeof(lname));
	struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname)};
	int rc = bc_store_get_int(
		st, txn, "SELECT deleted FROM vault_objects WHERE vault = ? AND kind = ? AND lname = ?", p, 3,
		&del, &found, err);
	if (rc != BC_OK)
		return rc;
	*exists = found;
	*deleted = found && del != 0;
	return BC_OK;
}

static struct bc_param opt_int(bool has, int64_t v)
{
	return has ? BC_PINT(v) : BC_PNULL;
}

int vault_obj_put_raw(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		      const struct vault_row *r, bool latest, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	vault_lower(lname, r->name, sizeof(lname));
	struct bc_param p[] = {
		BC_PTEXT(vault),
		BC_PTEXT(kind),
		BC_PTEXT(lname),
		BC_PTEXT(r->version),
		BC_PINT(r->seq),
		BC_PINT(r->enabled),
		opt_int(r->has_nbf, r->nbf),
		opt_int(r->has_exp, r->exp),
		BC_PINT(r->created),
		BC_PINT(r->updated),
		BC_PTEXT(r->content_type),
		BC_PTEXT(r->tags),
		BC_PTEXT(r->sealed),
		BC_PTEXT(r->kty),
		BC_PTEXT(r->key_ops),
		BC_PTEXT(r->pub),
	};
	int rc = bc_store_exec(
		st, txn,
		"INSERT INTO vault_versions (vault, kind, lname, version, seq, enabled, nbf, exp, created,"
		" updated, content_type, tags, sealed, kty, key_ops, pub)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		p, 16, NULL, NULL, NULL, err);
	if (rc != BC_OK || !latest)
		return rc;
	struct bc_param up[] = {BC_PTEXT(r->version), BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname)};
	int64_t changes = 0;
	rc = bc_store_exec(st, txn,
			   "UPDATE vault_objects SET latest = ? WHERE vault = ? AND kind = ? AND lname = ?",
			   up, 4, NULL, NULL, &changes, err);
	if (rc != BC_OK || changes > 0)
		return rc;
	struct bc_param ip[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname), BC_PTEXT(r->name),
				BC_PTEXT(r->version)};
	return bc_store_exec(st, txn,
			     "INSERT INTO vault_objects (vault, kind, lname, name, latest, deleted) VALUES "
			     "(?, ?, ?, ?, ?, 0)",
			     ip, 5, NULL, NULL, NULL, err);
}

int vault_obj_put(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		  struct vault_row *r, struct bc_error *err)
{
	bool exists = false, deleted = false;
	char lname[BC_LIMIT_NAME + 1];
	int64_t seq = 0;
	bool found = false;
	int rc = vault_obj_exists(st, txn, vault, kind, r->name, &exists, &deleted, err);
	if (rc != BC_OK)
		return rc;
	if (deleted)
		return bc_error_set(err, BC_ERR_FORBIDDEN, "%s is deleted but recoverable", kind);
	vault_lower(lname, r->name, sizeof(lname));
	if (exists) {
		struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname)};
		rc = bc_store_get_int(st, txn,
				      "SELECT COALESCE(MAX(seq), 0) FROM vault_versions WHERE vault = ? AND "
				      "kind = ? AND lname = ?",
				      p, 3, &seq, &found, err);
		if (rc != BC_OK)
			return rc;
	}
	r->seq = seq + 1;
	return vault_obj_put_raw(st, txn, vault, kind, r, true, err);
}

int vault_obj_update(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const struct vault_row *r, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	vault_lower(lname, r->name, sizeof(lname));
	struct bc_param p[] = {
		BC_PINT(r->enabled),
		opt_int(r->has_nbf, r->nbf),
		opt_int(r->has_exp, r->exp),
		BC_PINT(r->updated),
		BC_PTEXT(r->content_type),
		BC_PTEXT(r->tags),
		BC_PTEXT(r->key_ops),
		BC_PTEXT(vault),
		BC_PTEXT(kind),
		BC_PTEXT(lname),
		BC_PTEXT(r->version),
	};
	int64_t changes = 0;
	int rc = bc_store_exec(
		st, txn,
		"UPDATE vault_versions SET enabled = ?, nbf = ?, exp = ?, updated = ?, content_type = ?,"
		" tags = ?, key_ops = ? WHERE vault = ? AND kind = ? AND lname = ? AND version = ?",
		p, 11, NULL, NULL, &changes, err);
	if (rc == BC_OK && changes == 0)
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "%s version not found", kind);
	return rc;
}

static int delete_all(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		      const char *lname, struct bc_error *err)
{
	struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname)};
	int rc = bc_store_exec(st, txn,
			       "DELETE FROM vault_versions WHERE vault = ? AND kind = ? AND lname = ?", p, 3,
			       NULL, NULL, NULL, err);
	if (rc == BC_OK)
		rc = bc_store_exec(st, txn,
				   "DELETE FROM vault_objects WHERE vault = ? AND kind = ? AND lname = ?", p,
				   3, NULL, NULL, NULL, err);
	return rc;
}

int vault_obj_delete(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const char *name, int64_t deleted_date, int64_t purge_date, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	vault_lower(lname, name, sizeof(lname));
	if (purge_date == 0)
		return delete_all(st, txn, vault, kind, lname, err);
	struct bc_param p[] = {BC_PINT(deleted_date), BC_PINT(purge_date), BC_PTEXT(vault), BC_PTEXT(kind),
			       BC_PTEXT(lname)};
	int64_t changes = 0;
	int rc = bc_store_exec(st, txn,
			       "UPDATE vault_objects SET deleted = 1, deleted_date = ?, purge_date = ?"
			       " WHERE vault = ? AND kind = ? AND lname = ? AND deleted = 0",
			       p, 5, NULL, NULL, &changes, err);
	if (rc == BC_OK && changes == 0)
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "%s not found", kind);
	return rc;
}

int vault_obj_recover(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		      const char *name, struct bc_error *err)
{
	char lname[BC_LIMIT_NAME + 1];
	vault_lower(lname, name, sizeof(lname));
	struct bc_param p[] = {BC_PTEXT(vault), BC_PTEXT(kind), BC_PTEXT(lname)};
	int64_t changes = 0;
	int rc = bc_store_exec(st, txn,
			       "UPDATE vault_objects SET deleted = 0, deleted_date = NULL, purge_date = NULL"
			       " WHERE vault = ? AND kind = ? AND lname = ? AND deleted = 1",
			       p, 3, NULL, NULL, &changes, err);
	if (rc == BC_OK && changes == 0)
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "deleted %s not found", kind);
	return rc;
}

int vault_obj_purge(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		    const char *name, struct bc_error *err)
{
	bool exists = false, deleted = false;
	char lname[BC_LIMIT_NAME + 1];
	int rc = vault_obj_exists(st, txn, vault, kind, name, &exists, &deleted, err);
	if (rc != BC_OK)
		return rc;
	if (!deleted)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "deleted %s not found", kind);
	vault_lower(lname, name, sizeof(lname));
	return delete_all(st, txn, vault, kind, lname, err);
}

int vault_obj_purge_vault(struct bc_store *st, struct bc_txn *txn, const char *vault, struct bc_error *err)
{
	static const char *const sql[] = {"DELETE FROM vault_versions WHERE vault = ?",
					   "DELETE FROM vault_objects WHERE vault = ?",
					   "DELETE FROM vault_deks WHERE vault = ?"};
	int rc = BC_OK;
	for (size_t i = 0; rc == BC_OK && i < sizeof(sql) / sizeof(sql[0]); i++)
		rc = bc_store_exec(st, txn, sql[i], (struct bc_param[]){BC_PTEXT(vault)}, 1, NULL, NULL, NULL, err);
	return rc;
}

int vault_obj_sweep(struct bc_store *st, int64_t now, struct bc_error *err)
{
	struct bc_txn *txn = NULL;
	struct bc_param p[] = {BC_PINT(now)};
	int rc = bc_store_begin(st, &txn, err);
	if (rc != BC_OK)
		return rc;
	rc = bc_store_exec(st, txn,
			   "DELETE FROM vault_versions WHERE EXISTS (SELECT 1 FROM vault_objects o WHERE"
			   " o.vault = vault_versions.vault AND o.kind = vault_versions.kind AND o.lname = "
			   "vault_versions.lname"
			   " AND o.deleted = 1 AND o.purge_date <= ?)",
			   p, 1, NULL, NULL, NULL, err);
	if (rc == BC_OK)
		rc = bc_store_exec(st, txn, "DELETE FROM vault_objects WHERE deleted = 1 AND purge_date <= ?",
				   p, 1, NULL, NULL, NULL, err);
	if (rc != BC_OK) {
		bc_txn_rollback(txn);
		return rc;
	}
	return bc_txn_commit(txn, err);
}
