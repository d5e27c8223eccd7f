/* The vault's audit trail: records go through core/audit.h (mutations in the change's own
 * transaction, everything else through the group-commit writer); the writer's tick also sweeps
 * deleted objects past their scheduled purge date, on one replica at a time. Records never hold
 * values, tokens or key material: the object is "secrets/NAME/VERSION". */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "core/store.h"
#include "core/util.h"
#include "vault/vault_int.h"

#define SWEEP_INTERVAL_S 60

struct sweep_ctx {
	struct bc_store *st;
	int64_t last_sweep;
	_Atomic(struct mgr *) mgr; /* borrowed; NULL: soft-deleted vaults are not swept */
};

void vault_audit_sweep_vaults(struct vault_audit *a, struct mgr *m)
{
	atomic_store(&a->sweep->mgr, m);
}

/* Deleted objects past their scheduled purge date go away here, off the request path. */
static void sweep(void *ctx)
{
	struct sweep_ctx *s = ctx;
	int64_t now = bc_now();
	if (now - s->last_sweep < SWEEP_INTERVAL_S)
		return;
	struct bc_error err = {0};
	bool leader = false; /* one replica sweeps at a time (bc_store_leader) */
	s->last_sweep = now;
	if (bc_store_leader(s->st, "vault_purge", &leader, &err) != BC_OK)
		bc_log_warn("vault: purge sweep: %s", err.msg);
	else if (leader && vault_obj_sweep(s->st, now, &err) != BC_OK)
		bc_log_warn("vault: purge sweep failed: %s", err.msg);
	struct mgr *m = atomic_load(&s->mgr);
	int n = 0;
	bc_error_clear(&err);
	/* soft-deleted vaults past their scheduled purge date: the vault and all it held */
	if (leader && m && mgr_vault_purge_expired(m, now, &n, &err) != BC_OK)
		bc_log_warn("vault: purge sweep of deleted vaults failed: %s", err.msg);
}

static struct sweep_ctx *sweeper_of(struct bc_store *st)
{
	struct sweep_ctx *s = calloc(1, sizeof(*s));
	if (s) {
		s->st = st;
		s->last_sweep = bc_now();
	}
	return s;
}

int vault_audit_new(struct vault_audit **out, struct bc_store *st, struct bc_error *err)
{
	struct vault_audit *va = calloc(1, sizeof(*va));
	if (!va || !(va->sweep = sweeper_of(st))) {
		free(va);
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	int rc = bc_audit_new(&va->w, st, "vault_audit", "vault", sweep, va->sweep, err);
	if (rc) {
		free(va->sweep);
		free(va);
		return rc;
	}
	*out = va;
	return BC_OK;
}

void vault_audit_free(struct vault_audit *va)
{
	if (!va)
		return;
	bc_audit_free(va->w);
	free(va->sweep);
	free(va);
}

struct read_ctx {
	vault_audit_fn fn;
	void *ctx;
};

static void set_text(json_t *o, const char *key, const struct bc_row *row, int i)
{
	const char *s = bc_row_text(row, i);
	json_object_set_new(o, key, s ? json_string(s) : json_null());
}

static int read_row(void *ctx, const struct bc_row *row)
{
	struct read_ctx *r = ctx;
	json_t *o = json_object();
	char when[96];
	int64_t ms = bc_row_int(row, 0);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "timeMs", json_integer(ms));
	set_text(o, "vault", row, 1);
	set_text(o, "operation", row, 2);
	set_text(o, "object", row, 3);
	set_text(o, "oid", row, 4);
	set_text(o, "appid", row, 5);
	set_text(o, "xms_mirid", row, 6);
	set_text(o, "clientAddress", row, 7);
	json_object_set_new(o, "status", json_integer(bc_row_int(row, 8)));
	json_object_set_new(o, "durationMs", json_integer(bc_row_int(row, 9)));
	set_text(o, "requestId", row, 10);
	int stop = r->fn(r->ctx, o);
	json_decref(o);
	return stop;
}

int vault_audit_read(struct bc_store *st, const char *vault, int64_t since_ms, int limit, vault_audit_fn fn,
		     void *ctx, struct bc_error *err)
{
	char lv[BC_LIMIT_NAME + 1];
	vault_lower(lv, vault, sizeof(lv));
	struct read_ctx r = {.fn = fn, .ctx = ctx};
	struct bc_param p[] = {BC_PTEXT(lv), BC_PINT(since_ms), BC_PINT(limit > 0 ? limit : 1000)};
	return bc_store_exec(
		st, NULL,
		"SELECT time_ms, vault, operation, object, oid, appid, xms_mirid, client_ip, status, "
		"duration_ms,"
		" request_id FROM vault_audit WHERE vault = ? AND time_ms >= ? ORDER BY time_ms, id LIMIT ?",
		p, 3, read_row, &r, NULL, err);
}
