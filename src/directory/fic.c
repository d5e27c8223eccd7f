/* Federated identity credentials of a principal: which external issuer and subject may stand in
 * for it (workload identity federation). Stored here; read on every federated token request, so
 * a deletion takes effect at once on every replica. The resource manager validates their
 * contents (manager/fic.c); this file keeps the per-principal rules (count, uniqueness). */
#include <string.h>

#include "core/util.h"
#include "directory/dirint.h"

static void lower(const char *s, char *out, size_t n)
{
	size_t i = 0;
	for (; s[i] && i + 1 < n; i++)
		out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	out[i] = 0;
}

static void fic_from_row(const struct bc_row *row, struct dir_fic *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", bc_row_text(row, 0) ? bc_row_text(row, 0) : "");
	snprintf(f->issuer, sizeof(f->issuer), "%s", bc_row_text(row, 1) ? bc_row_text(row, 1) : "");
	snprintf(f->subject, sizeof(f->subject), "%s", bc_row_text(row, 2) ? bc_row_text(row, 2) : "");
	snprintf(f->audience, sizeof(f->audience), "%s", bc_row_text(row, 3) ? bc_row_text(row, 3) : "");
}

struct scan {
	const char *lname;
	const struct dir_fic *want;
	int64_t n;
	bool same_name, clash;
	struct dir_fic *out;
	void (*fn)(void *ctx, const struct dir_fic *fic);
	void *ctx;
};

static int scan_row(void *vctx, const struct bc_row *row)
{
	struct scan *s = vctx;
	struct dir_fic f;
	fic_from_row(row, &f);
	const char *lname = bc_row_text(row, 4);
	s->n++;
	bool mine = lname && s->lname && strcmp(lname, s->lname) == 0;
	if (mine)
		s->same_name = true;
	if (s->want && !mine && strcmp(f.issuer, s->want->issuer) == 0 && strcmp(f.subject, s->want->subject) == 0)
		s->clash = true;
	if (mine && s->out)
		*s->out = f;
	if (s->fn)
		s->fn(s->ctx, &f);
	return 0;
}

static int scan(struct dir *d, struct bc_txn *txn, const char *object_id, struct scan *s, struct bc_error *err)
{
	struct bc_param p[] = {BC_PTEXT(object_id)};
	return bc_store_exec(d->st, txn,
			     "SELECT name, issuer, subject, audience, lname FROM dir_federated WHERE object_id = ?"
			     " ORDER BY lname",
			     p, 1, scan_row, s, NULL, err);
}

int dir_fic_put(struct dir *d, struct bc_txn *txn, const char *object_id, const struct dir_fic *fic, bool *created,
		struct bc_error *err)
{
	char lname[BC_LIMIT_FIC_NAME + 1];
	if (!dir_id_ok(object_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", object_id ? object_id : "");
	lower(fic->name, lname, sizeof(lname));
	struct scan s = {.lname = lname, .want = fic};
	int rc = scan(d, txn, object_id, &s, err);
	if (rc)
		return rc;
	if (s.clash)
		return bc_error_set(err, BC_ERR_EXISTS,
				    "A federated identity credential with issuer '%.200s' and subject '%.200s' already "
				    "exists on this identity.",
				    fic->issuer, fic->subject);
	if (!s.same_name && s.n >= BC_LIMIT_FIC_PER_IDENTITY)
		return bc_error_set(err, BC_ERR_LIMIT,
				    "An identity may have at most %d federated identity credentials.",
				    BC_LIMIT_FIC_PER_IDENTITY);
	struct bc_param p[] = {BC_PTEXT(object_id), BC_PTEXT(lname), BC_PTEXT(fic->name), BC_PTEXT(fic->issuer),
			       BC_PTEXT(fic->subject), BC_PTEXT(fic->audience), BC_PINT(bc_now())};
	struct bc_param u[] = {BC_PTEXT(fic->name), BC_PTEXT(fic->issuer), BC_PTEXT(fic->subject),
			       BC_PTEXT(fic->audience), BC_PTEXT(object_id), BC_PTEXT(lname)};
	if (s.same_name)
		rc = bc_store_exec(d->st, txn,
				   "UPDATE dir_federated SET name = ?, issuer = ?, subject = ?, audience = ?"
				   " WHERE object_id = ? AND lname = ?",
				   u, 6, NULL, NULL, NULL, err);
	else
		rc = bc_store_exec(d->st, txn,
				   "INSERT INTO dir_federated (object_id, lname, name, issuer, subject, audience, created)"
				   " VALUES (?, ?, ?, ?, ?, ?, ?)",
				   p, 7, NULL, NULL, NULL, err);
	if (rc == BC_OK && created)
		*created = !s.same_name;
	return rc;
}

int dir_fic_get(struct dir *d, struct bc_txn *txn, const char *object_id, const char *name, struct dir_fic *out,
		struct bc_error *err)
{
	char lname[BC_LIMIT_FIC_NAME + 1];
	struct dir_fic f;
	if (!dir_id_ok(object_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", object_id ? object_id : "");
	lower(name, lname, sizeof(lname));
	struct scan s = {.lname = lname, .out = &f};
	int rc = scan(d, txn, object_id, &s, err);
	if (rc)
		return rc;
	if (!s.same_name)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "federated identity credential '%.120s' not found", name);
	*out = f;
	return BC_OK;
}

int dir_fic_list(struct dir *d, struct bc_txn *txn, const char *object_id,
		 void (*fn)(void *ctx, const struct dir_fic *fic), void *ctx, struct bc_error *err)
{
	if (!dir_id_ok(object_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", object_id ? object_id : "");
	struct scan s = {.fn = fn, .ctx = ctx};
	return scan(d, txn, object_id, &s, err);
}

int dir_fic_delete(struct dir *d, struct bc_txn *txn, const char *object_id, const char *name, struct bc_error *err)
{
	char lname[BC_LIMIT_FIC_NAME + 1];
	int64_t changes = 0;
	if (!dir_id_ok(object_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", object_id ? object_id : "");
	lower(name, lname, sizeof(lname));
	struct bc_param p[] = {BC_PTEXT(object_id), BC_PTEXT(lname)};
	int rc = bc_store_exec(d->st, txn, "DELETE FROM dir_federated WHERE object_id = ? AND lname = ?", p, 2, NULL,
			       NULL, &changes, err);
	if (rc == BC_OK && changes == 0)
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "federated identity credential '%.120s' not found", name);
	return rc;
}
