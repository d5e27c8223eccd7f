/* badge migrate --from sqlite:PATH --to URL: copies an installation's database to another store
 * (PostgreSQL for scale-out), all or nothing. Every table the source holds (what the
 * components' migrations made, as schema_migrations records) is created on the target with the
 * source's own portable CREATE statements (components write TEXT/BIGINT SQL that runs on both
 * backends), its indexes too, and every row is copied, in one target transaction, while the
 * source is held by a write transaction (no server may write meanwhile). Row counts are then
 * compared table by table. The target must not hold a badge schema yet. The data dir (CA,
 * master key, admin.json) stays where it is: start the server with it and --store TARGET. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/store.h"

#define MIGRATE_MAX_TABLES  256
#define MIGRATE_MAX_COLUMNS 64

struct table {
	char *name; /* owned */
	char *sql;  /* owned: CREATE TABLE ... */
	int64_t rows;
};

struct schema {
	struct table t[MIGRATE_MAX_TABLES];
	size_t nt;
	char *idx[MIGRATE_MAX_TABLES * 4]; /* owned: CREATE INDEX ... */
	size_t ni;
	bool overflow;
};

static int on_master(void *ctx, const struct bc_row *row)
{
	struct schema *s = ctx;
	const char *type = bc_row_text(row, 0), *name = bc_row_text(row, 1), *sql = bc_row_text(row, 2);
	if (!type || !name || !sql || !strncmp(name, "sqlite_", 7))
		return 0;
	if (!strcmp(type, "table")) {
		if (s->nt == MIGRATE_MAX_TABLES) {
			s->overflow = true;
			return 1;
		}
		s->t[s->nt].name = strdup(name);
		s->t[s->nt].sql = strdup(sql);
		if (!s->t[s->nt].name || !s->t[s->nt].sql)
			s->overflow = true;
		s->nt++;
	} else if (!strcmp(type, "index")) {
		if (s->ni == sizeof(s->idx) / sizeof(s->idx[0])) {
			s->overflow = true;
			return 1;
		}
		if (!(s->idx[s->ni++] = strdup(sql)))
			s->overflow = true;
	}
	return 0;
}

struct cols {
	char name[MIGRATE_MAX_COLUMNS][64];
	bool is_int[MIGRATE_MAX_COLUMNS];
	int n;
	bool bad;
};

static int on_column(void *ctx, const struct bc_row *row)
{
	struct cols *c = ctx;
	const char *name = bc_row_text(row, 1), *type = bc_row_text(row, 2);
	if (c->n == MIGRATE_MAX_COLUMNS || !name || strlen(name) >= sizeof(c->name[0]) || strchr(name, '"')) {
		c->bad = true;
		return 1;
	}
	snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
	c->is_int[c->n++] = type && (strstr(type, "INT") || strstr(type, "int"));
	return 0;
}

struct copy {
	struct bc_store *to;
	struct bc_txn *txn;
	const struct cols *c;
	const char *insert;
	int64_t rows;
	int rc;
	struct bc_error *err;
};

static int on_row(void *ctx, const struct bc_row *row)
{
	struct copy *cp = ctx;
	struct bc_param p[MIGRATE_MAX_COLUMNS];
	for (int i = 0; i < cp->c->n; i++) {
		if (bc_row_is_null(row, i))
			p[i] = BC_PNULL;
		else if (cp->c->is_int[i])
			p[i] = BC_PINT(bc_row_int(row, i));
		else
			p[i] = BC_PTEXT(bc_row_text(row, i));
	}
	cp->rc = bc_store_exec(cp->to, cp->txn, cp->insert, p, (size_t)cp->c->n, NULL, NULL, NULL, cp->err);
	if (cp->rc)
		return 1;
	cp->rows++;
	return 0;
}

/* Copies one table's rows; the statements are built from its column list. */
static int copy_table(struct bc_store *from, struct bc_txn *ftx, struct bc_store *to, struct bc_txn *ttx,
		      struct table *t, struct bc_error *err)
{
	struct cols c = {.n = 0};
	struct bc_buf sel = {0}, ins = {0};
	char pragma[200];
	int rc;
	if (strchr(t->name, '"') || strlen(t->name) > 120)
		return bc_error_set(err, BC_ERR_INVALID, "table name '%s' not supported", t->name);
	snprintf(pragma, sizeof(pragma), "PRAGMA table_info(\"%s\")", t->name);
	if ((rc = bc_store_exec(from, ftx, pragma, NULL, 0, on_column, &c, NULL, err)))
		return rc;
	if (c.bad || c.n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "table %s: unsupported columns", t->name);
	rc = bc_buf_appends(&sel, "SELECT ") || bc_buf_appendf(&ins, "INSERT INTO \"%s\" (", t->name);
	for (int i = 0; i < c.n && !rc; i++)
		rc = bc_buf_appendf(&sel, "%s\"%s\"", i ? ", " : "", c.name[i]) ||
		     bc_buf_appendf(&ins, "%s\"%s\"", i ? ", " : "", c.name[i]);
	if (!rc)
		rc = bc_buf_appendf(&sel, " FROM \"%s\"", t->name) || bc_buf_appends(&ins, ") VALUES (");
	for (int i = 0; i < c.n && !rc; i++)
		rc = bc_buf_appends(&ins, i ? ", ?" : "?");
	if (!rc)
		rc = bc_buf_appendc(&ins, ')') || bc_buf_appendc(&ins, '\0') || bc_buf_appendc(&sel, '\0');
	if (rc) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto out;
	}
	struct copy cp = {.to = to, .txn = ttx, .c = &c, .insert = ins.data, .err = err};
	rc = bc_store_exec(from, ftx, sel.data, NULL, 0, on_row, &cp, NULL, err);
	if (!rc && cp.rc)
		rc = cp.rc;
	if (rc)
		bc_error_wrap(err, "table %s", t->name);
	t->rows = cp.rows;
out:
	bc_buf_release(&sel);
	bc_buf_release(&ins);
	return rc;
}

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static int run(const char *from_url, const char *to_url, struct schema *s, struct bc_error *err)
{
	struct bc_store *from = NULL, *to = NULL;
	struct bc_txn *ftx = NULL, *ttx = NULL;
	int64_t n = 0;
	bool found = false;
	int rc;
	if ((rc = bc_store_open(&from, from_url, err)))
		return bc_error_wrap(err, "--from");
	if (strcmp(bc_store_backend(from), "sqlite") != 0) {
		rc = bc_error_set(err, BC_ERR_INVALID, "--from must be a SQLite store (sqlite:PATH)");
		goto out;
	}
	if ((rc = bc_store_open(&to, to_url, err))) {
		bc_error_wrap(err, "--to");
		goto out;
	}
	/* The write lock keeps servers out while we read: a consistent copy. */
	if ((rc = bc_store_begin(from, &ftx, err)) ||
	    (rc = bc_store_exec(from, ftx, "SELECT type, name, sql FROM sqlite_master ORDER BY rowid", NULL,
				0, on_master, s, NULL, err)))
		goto out;
	if (s->overflow) {
		rc = bc_error_set(err, BC_ERR_LIMIT, "more than %d tables or out of memory",
				  MIGRATE_MAX_TABLES);
		goto out;
	}
	if (bc_store_get_int(from, ftx, "SELECT COUNT(*) FROM schema_migrations", NULL, 0, &n, &found, err) !=
		    BC_OK ||
	    n == 0) {
		rc = bc_error_set(err, BC_ERR_INVALID,
				  "--from holds no badge installation (no schema_migrations)");
		goto out;
	}
	{
		struct bc_error e2;
		if (bc_store_get_int(to, NULL, "SELECT COUNT(*) FROM schema_migrations", NULL, 0, &n, &found,
				     &e2) == BC_OK) {
			rc = bc_error_set(err, BC_ERR_EXISTS,
					  "--to already holds a badge schema (%" PRId64
					  " migrations): migrate into an empty database",
					  n);
			goto out;
		}
	}
	if ((rc = bc_store_begin(to, &ttx, err)))
		goto out;
	for (size_t i = 0; i < s->nt && !rc; i++)
		if ((rc = bc_store_exec(to, ttx, s->t[i].sql, NULL, 0, NULL, NULL, NULL, err)))
			bc_error_wrap(err, "create %s", s->t[i].name);
	for (size_t i = 0; i < s->nt && !rc; i++)
		rc = copy_table(from, ftx, to, ttx, &s->t[i], err);
	for (size_t i = 0; i < s->ni && !rc; i++)
		if ((rc = bc_store_exec(to, ttx, s->idx[i], NULL, 0, NULL, NULL, NULL, err)))
			bc_error_wrap(err, "index");
	if (rc)
		goto out;
	rc = bc_txn_commit(ttx, err);
	ttx = NULL;
	if (rc)
		goto out;
	/* Read back: every table holds as many rows as the source's. */
	for (size_t i = 0; i < s->nt && !rc; i++) {
		char sql[200];
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM \"%s\"", s->t[i].name);
		if ((rc = bc_store_get_int(to, NULL, sql, NULL, 0, &n, &found, err)))
			break;
		if (n != s->t[i].rows)
			rc = bc_error_set(err, BC_ERR_INTERNAL,
					  "table %s: %" PRId64 " rows copied, %" PRId64 " read back",
					  s->t[i].name, s->t[i].rows, n);
	}
out:
	bc_txn_rollback(ttx);
	bc_txn_rollback(ftx);
	bc_store_free(to);
	bc_store_free(from);
	return rc;
}

int cli_migrate_main(int argc, char **argv)
{
	const char *from = opt(argc, argv, "--from"), *to = opt(argc, argv, "--to");
	if (!from || !to || (argc > 1 && !strcmp(argv[1], "--help"))) {
		fprintf(stderr,
			"usage: badge migrate --from sqlite:PATH --to postgres://...\n"
			"  copies every table of an installation (stop the server first); the target\n"
			"  database must be empty. Then start the server with the same data dir and\n"
			"  --store TARGET.\n");
		return 2;
	}
	struct schema s;
	struct bc_error err = {0};
	memset(&s, 0, sizeof(s));
	int rc = run(from, to, &s, &err);
	if (rc == BC_OK) {
		json_t *tables = json_object();
		for (size_t i = 0; i < s.nt; i++)
			json_object_set_new(tables, s.t[i].name, json_integer(s.t[i].rows));
		json_t *out = json_pack("{s:s, s:o, s:I}", "status", "migrated", "tables", tables, "indexes",
					(json_int_t)s.ni);
		cli_print_json(out);
		json_decref(out);
	}
	for (size_t i = 0; i < s.nt; i++) {
		free(s.t[i].name);
		free(s.t[i].sql);
	}
	for (size_t i = 0; i < s.ni; i++)
		free(s.idx[i]);
	if (rc)
		return cli_fail("migrate: %s", err.msg);
	return 0;
}
