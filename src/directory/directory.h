/* The directory (badge's Entra ID): tenants, service principals, credentials, signing keys,
 * the OAuth2 token endpoints and OpenID discovery. This header is what other components use. */
#ifndef BADGE_DIRECTORY_H
#define BADGE_DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/http.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/store.h"

struct dir;

struct dir_config {
	const char *login_url;     /* public authority base, e.g. "https://login.badge.internal:8443" (borrowed) */
	int64_t token_lifetime_s;  /* access token lifetime, default 86400 */
	int64_t key_rotation_s;    /* automatic signing-key rotation period, 0 = never (manual only) */
	int64_t key_prepublish_s;  /* a new key is published this long before it signs (default 0 for manual) */
	struct bc_ca *ca;          /* borrowed: issues identity and host certificates */
	const char *master_key_file; /* borrowed: wraps signing keys at rest */
	const char *const *resources; /* borrowed: resources (audiences) tokens may be issued for */
	size_t nresources;
	const char *const *v2_resources; /* borrowed: resources that ask for v2 tokens */
	size_t nv2_resources;
	const char *admin_audience;  /* borrowed: audience of tokens the admin API accepts */
	/* Throttling of the token endpoints (throttle.c), on this replica: requests per 10 s per
	 * client_id and per tenant; over it, 429 temporarily_unavailable with Retry-After.
	 * 0 = unlimited (a zeroed config throttles nothing). */
	int64_t limit_client;
	int64_t limit_tenant;
	const char *federation_ca_file; /* borrowed: trust anchors for external OIDC issuers (NULL = the system's) */
};

/* Creates (migrating the store) and loads signing keys. Creates the default tenant on first start. */
int dir_new(struct dir **out, struct bc_store *st, const struct dir_config *cfg, struct bc_error *err) BC_MUST_CHECK;
void dir_free(struct dir *d);
/* Mounts the token, discovery and JWKS endpoints (any Host). */
int dir_mount(struct dir *d, struct bc_http_server *srv) BC_MUST_CHECK;
const char *dir_default_tenant(const struct dir *d);
const char *dir_login_url(const struct dir *d);

#define DIR_TYPE_MANAGED "ManagedIdentity"
#define DIR_TYPE_APP "Application"

struct dir_principal {
	char object_id[37];
	char app_id[37];
	char tenant_id[37];
	char type[24];               /* DIR_TYPE_MANAGED or DIR_TYPE_APP */
	char display_name[BC_LIMIT_DISPLAY_NAME + 1];
	char resource_id[BC_LIMIT_RESOURCE_ID + 1]; /* ARM id of a managed identity's resource, "" otherwise */
	bool enabled;
	int64_t created;
};

/* Principals. txn may be NULL (own transaction); pass the caller's txn to make principal
 * creation/deletion atomic with the resource that owns it. */
int dir_principal_create(struct dir *d, struct bc_txn *txn, const char *tenant_id, const char *type,
			 const char *display_name, const char *resource_id, struct dir_principal *out,
			 struct bc_error *err) BC_MUST_CHECK;
/* id: object id or app (client) id. BC_ERR_NOT_FOUND when absent. */
int dir_principal_get(struct dir *d, struct bc_txn *txn, const char *id, struct dir_principal *out,
		      struct bc_error *err) BC_MUST_CHECK;
/* Deletes the principal and every credential of it; tokens it holds stop working at once. */
int dir_principal_delete(struct dir *d, struct bc_txn *txn, const char *object_id, struct bc_error *err) BC_MUST_CHECK;
int dir_principal_set_enabled(struct dir *d, struct bc_txn *txn, const char *object_id, bool enabled,
			      struct bc_error *err) BC_MUST_CHECK;

/* Credentials. cred_id out: 36-char uuid + NUL. host_id binds a certificate to a host ("" / NULL none). */
int dir_credential_add_cert(struct dir *d, struct bc_txn *txn, const char *object_id, const char *cert_pem,
			    const char *host_id, char cred_id[37], struct bc_error *err) BC_MUST_CHECK;
/* Generates a secret (returned once in secret_out, never stored in clear) valid until expires (0 = 2 years). */
int dir_credential_add_secret(struct dir *d, struct bc_txn *txn, const char *object_id, int64_t expires,
			      char *secret_out, size_t secret_out_len, char cred_id[37], struct bc_error *err) BC_MUST_CHECK;
int dir_credential_remove(struct dir *d, struct bc_txn *txn, const char *object_id, const char *cred_id,
			  struct bc_error *err) BC_MUST_CHECK;
/* Removes every certificate credential of object_id bound to host_id. */
int dir_credential_remove_host(struct dir *d, struct bc_txn *txn, const char *object_id, const char *host_id,
			       struct bc_error *err) BC_MUST_CHECK;
/* Signs a CSR with the CA (lifetime seconds) and registers the certificate as a credential of
 * object_id bound to host_id, in txn. */
int dir_issue_cert(struct dir *d, struct bc_txn *txn, const char *object_id, const char *host_id,
		   const char *csr_pem, int64_t lifetime_s, struct bc_buf *cert_pem, char cred_id[37],
		   struct bc_error *err) BC_MUST_CHECK;

/* Federated identity credentials (workload identity federation): a principal trusts tokens of
 * an external OIDC issuer whose iss and sub are exactly these, with aud one of the audiences,
 * as client assertions. Names are compared case-insensitively. */
struct dir_fic {
	char name[BC_LIMIT_FIC_NAME + 1];
	char issuer[BC_LIMIT_FIC_FIELD + 1];
	char subject[BC_LIMIT_FIC_FIELD + 1];
	char audience[BC_LIMIT_FIC_FIELD + 1]; /* one audience, as Azure allows */
};
/* Creates or replaces fic (by name). BC_ERR_LIMIT beyond BC_LIMIT_FIC_PER_IDENTITY; BC_ERR_EXISTS
 * when another credential of the principal has the same issuer and subject. */
int dir_fic_put(struct dir *d, struct bc_txn *txn, const char *object_id, const struct dir_fic *fic, bool *created,
		struct bc_error *err) BC_MUST_CHECK;
int dir_fic_get(struct dir *d, struct bc_txn *txn, const char *object_id, const char *name, struct dir_fic *out,
		struct bc_error *err) BC_MUST_CHECK; /* BC_ERR_NOT_FOUND when absent */
/* Calls fn for each credential of object_id, by name. */
int dir_fic_list(struct dir *d, struct bc_txn *txn, const char *object_id,
		 void (*fn)(void *ctx, const struct dir_fic *fic), void *ctx, struct bc_error *err) BC_MUST_CHECK;
int dir_fic_delete(struct dir *d, struct bc_txn *txn, const char *object_id, const char *name,
		   struct bc_error *err) BC_MUST_CHECK; /* BC_ERR_NOT_FOUND when absent */

/* Verified access-token claims. */
struct dir_claims {
	char oid[37];
	char appid[37];
	char tid[37];
	char aud[BC_LIMIT_RESOURCE + 1];
	char xms_mirid[BC_LIMIT_RESOURCE_ID + 1];
	char idtyp[16];
	char uti[40];
	int64_t iat, nbf, exp;
};

/* Verifies a bearer token: signature by a key of the directory's own set chosen by kid only,
 * RS256 pinned, iss of a tenant of this directory (tenant_id non-NULL: exactly that one),
 * aud equal to one of audiences (compared with and without a trailing '/'), exp/nbf with
 * BC_LIMIT_CLOCK_SKEW_S... (small skew), and the principal still existing and enabled.
 * Verified tokens are cached until they expire; a principal's deletion evicts its tokens.
 * BC_ERR_UNAUTHENTICATED with a reason on failure. */
int dir_token_verify(struct dir *d, const char *token, size_t len, const char *tenant_id,
		     const char *const *audiences, size_t naudiences, struct dir_claims *out,
		     struct bc_error *err) BC_MUST_CHECK;

/* Issues an access token for principal to resource (v1 claims unless v2). */
int dir_token_issue(struct dir *d, const struct dir_principal *p, const char *resource, int version,
		    struct bc_buf *out_token, int64_t *expires_on, struct bc_error *err) BC_MUST_CHECK;

/* Marks a principal as a directory administrator (may use the directory admin API). */
int dir_principal_set_admin(struct dir *d, struct bc_txn *txn, const char *object_id, bool admin,
			    struct bc_error *err) BC_MUST_CHECK;
bool dir_principal_is_admin(struct dir *d, const char *object_id);

/* Signing keys: publishes a new key; it starts signing after key_prepublish_s (now when 0 and
 * force); the previous one stays published until its longest token expired. */
int dir_rotate_keys(struct dir *d, struct bc_error *err) BC_MUST_CHECK;
/* Upkeep: scheduled key rotation (key_rotation_s), expired replay records, retired key rows.
 * dir_start_maintenance runs it once a minute on the replica holding the store's leader lock. */
int dir_maintain(struct dir *d, struct bc_error *err) BC_MUST_CHECK;
int dir_start_maintenance(struct dir *d, struct bc_error *err) BC_MUST_CHECK;
void dir_stop_maintenance(struct dir *d);

/* Re-reads what other replicas or operators may have changed (signing keys). */
int dir_reload(struct dir *d, struct bc_error *err) BC_MUST_CHECK;

/* Master-key rotation (reseal.c), with no struct dir (the server is stopped): in txn, every
 * signing key sealed under from_key_file's master key is sealed again under to_key_file's. A
 * row that already opens with the new key is left as it is (a re-run after an interrupted
 * rotation); a row that opens with neither fails the whole call. Counts may be NULL. */
int dir_reseal(struct bc_store *st, struct bc_txn *txn, const char *from_key_file, const char *to_key_file,
	       int64_t *resealed, int64_t *current, struct bc_error *err) BC_MUST_CHECK;

#endif
