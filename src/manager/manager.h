/* The resource manager (badge's ARM): subscriptions, resource groups, instances, user-assigned
 * identities, vaults, role assignments, hosts. This header is what other components use. */
#ifndef BADGE_MANAGER_H
#define BADGE_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include "core/http.h"
#include "core/store.h"
#include "directory/directory.h"

struct mgr;

struct mgr_config {
	const char *management_url;      /* public base, "https://management.badge.internal:PORT" (borrowed) */
	const char *management_resource; /* token audience, "https://management.badge.internal/" */
	const char *vault_suffix;        /* "vault.badge.internal" (no leading dot, no port) */
	const char *vault_public_port;   /* ":8443" or "" when 443 (borrowed); used in vaultUri */
	const char *location;            /* default location, "local" */
	const char *ca_cert_pem;         /* the CA certificate (PEM) handed to enrolling agents (borrowed; may be NULL) */
	int64_t identity_cert_lifetime_s; /* identity certificates issued to agents; 0 = MGR_IDENTITY_CERT_LIFETIME_S */
	int64_t host_cert_lifetime_s;     /* host certificates; 0 = MGR_HOST_CERT_LIFETIME_S */
	/* Throttling as Resource Manager does it (throttle.c): token buckets per principal (oid)
	 * and per subscription (or tenant, for calls outside one) and operation type, on this
	 * replica: a bucket of *_burst requests refilling *_refill per second. Every ARM answer
	 * carries x-ms-ratelimit-remaining-{subscription,tenant}-{reads,writes,deletes}; an empty
	 * bucket answers 429 with Retry-After. A burst of 0 = unlimited (a zeroed config limits
	 * nothing). */
	int64_t limit_reads_burst, limit_reads_refill;
	int64_t limit_writes_burst, limit_writes_refill;
	int64_t limit_deletes_burst, limit_deletes_refill;
};

int mgr_new(struct mgr **out, struct bc_store *st, struct dir *d, const struct mgr_config *cfg,
	    struct bc_error *err) BC_MUST_CHECK;
void mgr_free(struct mgr *m);
/* Mounts the ARM routes (any Host) and the agent protocol (/badge/agent/v1/...).
 * Instances name their host in properties.hostId (a Badge.Compute/hosts id or bare host name);
 * with exactly one host, an instance that names none is placed on it. The agent's sync request
 * is a long poll (timeout <= 60 s) parked without a handler thread (bc_http_park): it is answered
 * when its host's revision changes, at its timeout, or when the server stops. */
int mgr_mount(struct mgr *m, struct bc_http_server *srv) BC_MUST_CHECK;
/* The default subscription (created with the default tenant) and making a principal its Owner. */
const char *mgr_default_subscription(const struct mgr *m);
int mgr_bootstrap_owner(struct mgr *m, const char *object_id, struct bc_error *err) BC_MUST_CHECK;

/* What the vault needs to know about a vault resource. */
struct mgr_vault_info {
	char name[BC_LIMIT_NAME + 1];
	char tenant_id[37];
	char resource_id[BC_LIMIT_RESOURCE_ID + 1];
	bool rbac;
	bool soft_delete;
	bool purge_protection;
	int retention_days;
};
int mgr_vault_lookup(struct mgr *m, const char *vault_name, struct mgr_vault_info *out,
		     struct bc_error *err) BC_MUST_CHECK;
/* Inside a write transaction: BC_OK when vault_name exists (not deleted) and keeps it so until
 * txn ends (a delete waits, or has already won: BC_ERR_NOT_FOUND). The vault's writes call it,
 * so that nothing is written into a vault whose delete and purge raced with the write. */
int mgr_vault_hold_txn(struct mgr *m, struct bc_txn *txn, const char *vault_name, struct bc_error *err) BC_MUST_CHECK;
/* Is principal oid allowed permission (Azure access-policy name, e.g. "get", "set", "wrapKey")
 * on category ("secrets", "keys", "certificates") of the vault? Access policies, or role
 * assignments at the vault's scope and above when the vault uses RBAC.
 * BC_OK allowed, BC_ERR_FORBIDDEN denied. */
int mgr_vault_authorize(struct mgr *m, const struct mgr_vault_info *v, const char *oid, const char *category,
			const char *permission, struct bc_error *err) BC_MUST_CHECK;

/* Vault lifecycle (Azure's): deleting a vault soft-deletes it (deletedVaults), a PUT with
 * properties.createMode "recover" brings it back, a purge removes it for good. The vault
 * component stores the vault's contents and registers these hooks (the manager does not depend
 * on it); without hooks a purge is refused (503), so that no vault's contents outlive it. */
struct mgr_vault_hooks {
	/* Runs inside the manager's transaction that purges vault `vault` (lower-case name): removes
	 * everything stored for it. A failure rolls the whole purge back. May run more than once
	 * (the transaction is retried on conflicts). */
	int (*purge_txn)(void *ctx, struct bc_txn *txn, const char *vault, struct bc_error *err);
	/* After that transaction committed, on this replica, before the caller is answered. */
	void (*purged)(void *ctx, const char *vault);
	void *ctx;
};
/* Registers the hooks (copied). One set per manager: BC_ERR_EXISTS when another is registered. */
int mgr_vault_hooks_set(struct mgr *m, const struct mgr_vault_hooks *h) BC_MUST_CHECK;
/* Unregisters the hooks whose ctx is ctx (others stay). */
void mgr_vault_hooks_clear(struct mgr *m, void *ctx);
/* Purges the soft-deleted vaults whose scheduled purge date is at or before now (epoch s), each
 * in its own transaction; *purged (may be NULL) counts them. The vault's periodic sweep calls it
 * on one replica at a time. */
int mgr_vault_purge_expired(struct mgr *m, int64_t now, int *purged, struct bc_error *err) BC_MUST_CHECK;

#endif
