/* Master-key rotation, the directory's part: every signing key (dir_signing_keys.sealed_jwk,
 * associated data "dir_signing_keys:<kid>") is opened with the old master key and sealed again
 * with the new one, inside the caller's transaction. A row that already opens with the new key
 * (a rotation that committed before its key file was renamed, then re-run) is left alone, so
 * the operation can be repeated until it finishes. The plaintext JWKs live only in wiped
 * buffers. */
#include <stdlib.h>
#include <string.h>

#include "core/seal.h"
#include "core/util.h"
#include "directory/directory.h"

struct reseal_row {
	char *kid, *sealed;
};

struct reseal_rows {
	struct reseal_row *r;
	size_t n, alloc;
	int rc;
	struct bc_error *err;
};

static int collect(void *vctx, const struct bc_row *row)
{
	struct reseal_rows *c = vctx;
	const char *kid = bc_row_text(row, 0), *sealed = bc_row_text(row, 1);
	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 16;
		struct reseal_row *nr = realloc(c->r, na * sizeof(*nr));
		if (!nr) {
			c->rc = bc_error_set(c->err, BC_ERR_NOMEM, "out of memory");
			return 1;
		}
		c->r = nr;
		c->alloc = na;
	}
	c->r[c->n].kid = strdup(kid ? kid : "");
	c->r[c->n].sealed = strdup(sealed ? sealed : "");
	c->n++;
	if (!c->r[c->n - 1].kid || !c->r[c->n - 1].sealed) {
		c->rc = bc_error_set(c->err, BC_ERR_NOMEM, "out of memory");
		return 1;
	}
	return 0;
}

int dir_reseal(struct bc_store *st, struct bc_txn *txn, const char *from_key_file, const char *to_key_file,
	       int64_t *resealed, int64_t *current, struct bc_error *err)
{
	struct bc_seal *from = NULL, *to = NULL;
	struct reseal_rows rows = {.err = err};
	int64_t nres = 0, ncur = 0;
	int rc;
	if (!txn)
		return bc_error_set(err, BC_ERR_INTERNAL, "dir_reseal needs a transaction");
	if ((rc = bc_seal_load_or_create(from_key_file, &from, err)) ||
	    (rc = bc_seal_load_or_create(to_key_file, &to, err)))
		goto done;
	rc = bc_store_exec(st, txn, "SELECT kid, sealed_jwk FROM dir_signing_keys ORDER BY kid FOR UPDATE",
			   NULL, 0, collect, &rows, NULL, err);
	if (rc == BC_OK)
		rc = rows.rc;
	for (size_t i = 0; rc == BC_OK && i < rows.n; i++) {
		char aad[128];
		struct bc_buf plain = {0}, sealed = {0};
		struct bc_error e2;
		const struct reseal_row *r = &rows.r[i];
		snprintf(aad, sizeof(aad), "dir_signing_keys:%s", r->kid);
		rc = bc_unseal(from, aad, r->sealed, strlen(r->sealed), &plain, &e2);
		if (rc == BC_ERR_CRYPTO) {
			/* Already under the new key (an interrupted rotation run again)? */
			bc_buf_wipe(&plain);
			rc = bc_unseal(to, aad, r->sealed, strlen(r->sealed), &plain, &e2);
			if (rc == BC_OK)
				ncur++;
			else
				rc = bc_error_set(
					err, BC_ERR_CRYPTO,
					"signing key %s opens with neither the old nor the new master key",
					r->kid);
			bc_buf_wipe(&plain);
			continue;
		}
		if (rc != BC_OK) {
			bc_buf_wipe(&plain);
			rc = bc_error_set(err, rc, "signing key %s: %s", r->kid, e2.msg);
			break;
		}
		rc = bc_seal(to, aad, plain.data, plain.len, &sealed, err);
		bc_buf_wipe(&plain);
		if (rc == BC_OK) {
			struct bc_param p[] = {BC_PTEXT(bc_buf_cstr(&sealed)), BC_PTEXT(r->kid)};
			rc = bc_store_exec(st, txn,
					   "UPDATE dir_signing_keys SET sealed_jwk = ? WHERE kid = ?", p, 2,
					   NULL, NULL, NULL, err);
		}
		bc_buf_release(&sealed);
		if (rc == BC_OK)
			nres++;
	}
done:
	for (size_t i = 0; i < rows.n; i++) {
		free(rows.r[i].kid);
		free(rows.r[i].sealed);
	}
	free(rows.r);
	bc_seal_free(from);
	bc_seal_free(to);
	if (rc == BC_OK) {
		if (resealed)
			*resealed = nres;
		if (current)
			*current = ncur;
	}
	return rc;
}
