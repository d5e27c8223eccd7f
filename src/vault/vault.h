/* The vault (badge's Key Vault data plane). */
#ifndef BADGE_VAULT_H
#define BADGE_VAULT_H

#include <jansson.h>
#include <stdint.h>
#include "core/http.h"
#include "core/store.h"
#include "directory/directory.h"
#include "manager/manager.h"

struct vault;

struct vault_config {
	const char *vault_suffix;    /* "vault.badge.internal" */
	const char *vault_resource;  /* token audience, "https://vault.badge.internal" */
	const char *public_port;     /* ":8443" or "" (ids are absolute URLs, port included) */
	const char *master_key_file; /* wraps data keys; mode 0600; created on first start */
	/* Throttling by Key Vault's service-limit classes: transactions per 10 s per vault and per
	 * caller (the token's oid), on this replica; over it, 429 Throttled with Retry-After.
	 * 0 = unlimited (so a zeroed config throttles nothing). */
	int64_t limit_secrets;    /* secret (and other vault) transactions */
	int64_t limit_keys;       /* key transactions but creating one (get, sign, wrap, ...) */
	int64_t limit_key_create; /* key create, import, rotate */
	size_t limit_max_callers; /* buckets kept at most (0 = BC_RATELIMIT_DEFAULT_KEYS) */
};

int vault_new(struct vault **out, struct bc_store *st, struct dir *d, struct mgr *m,
	      const struct vault_config *cfg, struct bc_error *err) BC_MUST_CHECK;
void vault_free(struct vault *v);
/* Mounts host-style (*.vault_suffix) and path-style (/vaults/{vault}/...) routes. */
int vault_mount(struct vault *v, struct bc_http_server *srv) BC_MUST_CHECK;

/* Reads a vault's audit trail (vault name, any case) straight from the store, oldest first:
 * records with time_ms >= since_ms, at most limit (0 = 1000). Each record is a JSON object
 * {"time","timeMs","vault","operation","object","oid","appid","xms_mirid","clientAddress",
 * "status","durationMs","requestId"} passed to fn (borrowed for the call); fn returns non-zero
 * to stop. Works on a store another process is serving (badge keyvault audit). */
typedef int (*vault_audit_fn)(void *ctx, const json_t *record);
int vault_audit_read(struct bc_store *st, const char *vault, int64_t since_ms, int limit, vault_audit_fn fn,
		     void *ctx, struct bc_error *err) BC_MUST_CHECK;

/* Master-key rotation (reseal.c), with no struct vault (the server is stopped): in txn, every
 * vault's data key wrapped under from_key_file's master key is wrapped again under
 * to_key_file's (sealed values keep their data keys). A row that already opens with the new key
 * is left as it is (a re-run after an interrupted rotation); a row that opens with neither
 * fails the whole call. Counts may be NULL. Backup blobs made before the rotation were sealed
 * under a key derived from the old master key: they no longer restore. */
int vault_reseal(struct bc_store *st, struct bc_txn *txn, const char *from_key_file, const char *to_key_file,
		 int64_t *resealed, int64_t *current, struct bc_error *err) BC_MUST_CHECK;

#endif
