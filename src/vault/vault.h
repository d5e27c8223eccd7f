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

#endif
