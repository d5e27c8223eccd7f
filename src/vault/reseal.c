/* Master-key rotation, the vault's part: each vault's data key (vault_deks.dek, associated data
 * "dek:<vault>") is unwrapped with the key-encryption key of the old master key and wrapped
 * again under the new one's, inside the caller's transaction. Values sealed under the data keys
 * do not change. A row that already opens under the new key (a re-run after an interrupted
 * rotation) is left as it is. Data keys exist only in wiped stack buffers (crypt.c). */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "vault/vault.h"
#include "vault/vault_int.h"

struct dek_row {
	char *vault, *dek;
};

struct dek_rows {
	struct dek_row *r;
	size_t n, alloc;
	int rc;
	struct bc_error *err;
};

static int collect(void *vctx, const struct bc_row *row)
{
	struct dek_rows *c = vctx;
	const char *vault = bc_row_text(row, 0), *dek = bc_row_text(row, 1);
	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 16;
		struct dek_row *nr = realloc(c->r, na * sizeof(*nr));
		if (!nr) {
			c->rc = bc_error_set(c->err, BC_ERR_NOMEM, "out of memory");
			return 1;
		}
		c->r = nr;
		c->alloc = na;
	}
	c->r[c->n].vault = strdup(vault ? vault : "");
	c->r[c->n].dek = strdup(dek ? dek : "");
	c->n++;
	if (!c->r[c->n - 1].vault || !c->r[c->n - 1].dek) {
		c->rc = bc_error_set(c->err, BC_ERR_NOMEM, "out of memory");
		return 1;
	}
	return 0;
}

int vault_reseal(struct bc_store *st, struct bc_txn *txn, const char *from_key_file, const char *to_key_file,
		 int64_t *resealed, int64_t *current, struct bc_error *err)
{
	struct vault_crypt *from = NULL, *to = NULL;
	struct dek_rows rows = {.err = err};
	int64_t nres = 0, ncur = 0;
	int rc;
	if (!txn)
		return bc_error_set(err, BC_ERR_INTERNAL, "vault_reseal needs a transaction");
	if ((rc = vault_crypt_new(&from, from_key_file, st, err)) ||
	    (rc = vault_crypt_new(&to, to_key_file, st, err)))
		goto done;
	rc = bc_store_exec(st, txn, "SELECT vault, dek FROM vault_deks ORDER BY vault FOR UPDATE", NULL, 0,
			   collect, &rows, NULL, err);
	if (rc == BC_OK)
		rc = rows.rc;
	for (size_t i = 0; rc == BC_OK && i < rows.n; i++) {
		const struct dek_row *r = &rows.r[i];
		char *wrapped = NULL;
		struct bc_error e2;
		rc = vault_dek_rewrap(from, to, r->vault, r->dek, &wrapped, &e2);
		if (rc == BC_ERR_CRYPTO) {
			if ((rc = vault_dek_check(to, r->vault, r->dek, &e2)) == BC_OK)
				ncur++;
			else
				rc = bc_error_set(err, BC_ERR_CRYPTO,
						  "data key of vault %s opens with neither the old nor the "
						  "new master key",
						  r->vault);
			continue;
		}
		if (rc != BC_OK) {
			rc = bc_error_set(err, rc, "data key of vault %s: %s", r->vault, e2.msg);
			break;
		}
		struct bc_param p[] = {BC_PTEXT(wrapped), BC_PTEXT(r->vault)};
		rc = bc_store_exec(st, txn, "UPDATE vault_deks SET dek = ? WHERE vault = ?", p, 2, NULL, NULL,
				   NULL, err);
		free(wrapped);
		if (rc == BC_OK)
			nres++;
	}
done:
	for (size_t i = 0; i < rows.n; i++) {
		free(rows.r[i].vault);
		free(rows.r[i].dek);
	}
	free(rows.r);
	vault_crypt_free(from);
	vault_crypt_free(to);
	if (rc == BC_OK) {
		if (resealed)
			*resealed = nres;
		if (current)
			*current = ncur;
	}
	return rc;
}
