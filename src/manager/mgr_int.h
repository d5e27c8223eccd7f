/* The resource manager's internals: shared between the files of src/manager only. */
#ifndef BADGE_MGR_INT_H
#define BADGE_MGR_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/error.h"
#include "core/http.h"
#include "core/limits.h"
#include "core/ratelimit.h"
#include "core/store.h"
#include "directory/directory.h"
#include "manager/manager.h"

/* Lifetimes of what the manager issues. The agent renews certificates at half their life. */
#define MGR_JOIN_TOKEN_LIFETIME_S (60 * 60)
#define MGR_IDENTITY_CERT_LIFETIME_S (3 * 24 * 3600)
#define MGR_HOST_CERT_LIFETIME_S (30 * 24 * 3600)
#define MGR_SYNC_TIMEOUT_MAX_S 60
#define MGR_TXN_RETRIES 8
#define MGR_MAX_GRANTS 256        /* role assignments of one principal considered per request */
#define MGR_MAX_POLICIES 1024     /* access policies of one vault (Azure's own limit) */
#define MGR_MAX_UAI_PER_VM 64     /* user-assigned identities of one instance */
#define MGR_MAX_TAGS 50           /* tags per resource (ARM's limit) */
#define MGR_VCACHE_SLOTS 256
#define MGR_GCACHE_SLOTS 256
#define MGR_NOTIFY_CHANNEL "badge_mgr"

/* Lower-case ARM type keys stored in mgr_resources.type. */
#define MGR_T_VM "microsoft.compute/virtualmachines"
#define MGR_T_UAI "microsoft.managedidentity/userassignedidentities"
#define MGR_T_VAULT "microsoft.keyvault/vaults"
#define MGR_T_HOST "badge.compute/hosts"

/* ---- resource ids and names (resid.c, pure) ---- */
struct mgr_rid {
	char sub[64];
	char rg[96];      /* "" for a subscription-level resource */
	char ns[64];      /* provider namespace, "" for a subscription or group id */
	char type[64];
	char name[BC_LIMIT_NAME + 1];
};
/* Parses "/subscriptions/S[/resourceGroups/G][/providers/NS/TYPE/NAME]" (case-insensitive keywords). */
int mgr_rid_parse(const char *id, struct mgr_rid *out, struct bc_error *err) BC_MUST_CHECK;
/* Lower-cases s into out (size n); returns false when it does not fit. */
bool mgr_lower(const char *s, char *out, size_t n);
/* Name rules (Azure's). Return BC_OK or BC_ERR_INVALID with a message naming the rule. */
int mgr_name_group(const char *s, struct bc_error *err) BC_MUST_CHECK;
int mgr_name_uai(const char *s, struct bc_error *err) BC_MUST_CHECK;
int mgr_name_vm(const char *s, struct bc_error *err) BC_MUST_CHECK;
int mgr_name_vault(const char *s, struct bc_error *err) BC_MUST_CHECK;
int mgr_name_host(const char *s, struct bc_error *err) BC_MUST_CHECK;
/* "YYYY-MM-DD" optionally followed by "-preview" / "-privatepreview" / "-beta", from 2014 on. */
bool mgr_api_version_ok(const char *v);
/* Well-formed and not dated after today (now, epoch s): a future version names an API no
 * provider has. */
bool mgr_api_version_known(const char *v, int64_t now);
/* Is scope `outer` equal to or above `inner` (segment-wise, case-insensitive)? */
bool mgr_scope_covers(const char *outer, const char *inner);
/* ISO 8601 UTC "2024-01-02T03:04:05Z" (and with ".0000000Z" for ARM's systemData style). */
void mgr_iso8601(int64_t t, char out[32]);

/* ---- roles (roles.c, pure) ---- */
struct mgr_role {
	const char *id;   /* GUID */
	const char *name;
	const char *description;
	const char *const *actions;
	const char *const *not_actions;
	const char *const *data_actions;
	const char *const *not_data_actions;
};
const struct mgr_role *mgr_role_by_id(const char *guid_or_id); /* GUID or .../roleDefinitions/GUID */
const struct mgr_role *mgr_role_by_name(const char *name);      /* case-insensitive */
size_t mgr_role_count(void);
const struct mgr_role *mgr_role_at(size_t i);
/* Azure's wildcard action match ('*' any run of characters, case-insensitive). */
bool mgr_action_match(const char *pattern, const char *action);
bool mgr_role_permits(const struct mgr_role *r, const char *action, bool data);
/* JSON of a role definition at scope (ARM shape). */
json_t *mgr_role_json(const struct mgr_role *r, const char *sub);
/* Data action of a vault permission ("secrets","get" -> "Microsoft.KeyVault/vaults/secrets/getSecret/action"). */
const char *mgr_kv_data_action(const char *category, const char *permission);
/* Access-policy permission names: index of permission in its category, -1 when unknown. */
int mgr_kv_perm_index(const char *category, const char *permission);

/* ---- caches ---- */
struct mgr_vpol {
	char oid[37];
	uint64_t bits[3]; /* keys, secrets, certificates: bit i = permission index i; all = ~0 */
};
struct mgr_vcache {
	char key[BC_LIMIT_NAME + 1]; /* lower-case vault name, "" empty slot */
	uint64_t gen;
	struct mgr_vault_info info;
	struct mgr_vpol *pol; /* owned */
	size_t npol;
};
struct mgr_grant {
	char *scope; /* owned, lower case */
	const struct mgr_role *role;
};
struct mgr_gcache {
	char oid[37];
	uint64_t gen;
	struct mgr_grant *g; /* owned */
	size_t n;
};

struct mgr {
	struct bc_store *st;  /* borrowed */
	struct dir *dir;      /* borrowed */
	char *management_url; /* owned copies of the config */
	char *management_resource;
	char *vault_suffix;
	char *vault_public_port;
	char *location;
	char *domain;         /* "badge.internal", derived from management_resource */
	char *ca_pem;         /* owned copy, "" when not configured */
	int64_t identity_cert_lifetime_s; /* from the config, defaults applied */
	int64_t host_cert_lifetime_s;
	char tenant[37];
	char sub[37];

	pthread_mutex_t mu;   /* guards gen, the caches and the condition */
	pthread_cond_t cond;  /* broadcast when gen changes (long polls wait on it) */
	uint64_t gen;         /* bumped by every committed change, here or on another replica */
	struct mgr_vcache vcache[MGR_VCACHE_SLOTS];
	struct mgr_gcache gcache[MGR_GCACHE_SLOTS];
	struct mgr_vault_hooks hooks; /* guarded by mu; purge_txn NULL: none registered */

	struct relay *relay;     /* what the store's notifications reach this manager through */
	pthread_mutex_t hq_mu;   /* guards hq */
	struct mgr_hostq *hq;    /* per-host wait queues of parked sync requests (agent.c) */

	struct bc_ratelimit *limiter; /* owned, NULL when nothing is limited (throttle.c) */
	struct bc_rate rates[3];      /* reads, writes, deletes */
};

struct mgr_hostq;
struct relay;

/* manager.c */
typedef int (*mgr_txn_fn)(struct mgr *m, struct bc_txn *txn, void *ctx, struct bc_error *err);
/* Runs fn in a write transaction, retrying on BC_ERR_CONFLICT; on success publishes a change. */
int mgr_txn(struct mgr *m, mgr_txn_fn fn, void *ctx, struct bc_error *err) BC_MUST_CHECK;
void mgr_changed(struct mgr *m); /* local gen bump + broadcast */
uint64_t mgr_gen(struct mgr *m);
/* Waits until gen differs from seen or deadline_ms (bc_now_ms) passes. */
void mgr_wait_change(struct mgr *m, uint64_t seen, int64_t deadline_ms);

/* Agent long polls (agent.c). A committed transaction notifies MGR_NOTIFY_CHANNEL with the host
 * keys whose revision it bumped (MGR_NOTIFY_HOSTS then one key a line), or MGR_NOTIFY_ALL; every
 * replica then wakes the sync requests parked for those hosts. Any other payload wakes all. */
#define MGR_NOTIFY_HOSTS "hosts\n"
#define MGR_NOTIFY_ALL "all"
void mgr_sync_wake(struct mgr *m, const char *payload);
void mgr_sync_free(struct mgr *m); /* after the HTTP server stopped: no request is parked */

/* ---- request plumbing (arm.c) ---- */
struct arm {
	struct mgr *m;
	struct bc_http_req *req;
	struct bc_http_res *res;
	struct dir_claims claims;
	bool grants_loaded;
	struct mgr_grant *g; /* owned copy */
	size_t ng;
};
/* Writes {"error":{"code","message"}} with status. */
void arm_error(struct bc_http_res *res, int status, const char *code, const char *fmt, ...) BC_PRINTF(4, 5);
/* Maps a bc status to an ARM error (status, code) and writes err's message. */
void arm_error_from(struct bc_http_res *res, const struct bc_error *err);
/* Common checks of an ARM call: api-version present and valid, bearer token valid. Returns
 * false after writing the error response. */
bool arm_begin(struct arm *a, struct mgr *m, struct bc_http_req *req, struct bc_http_res *res);
void arm_end(struct arm *a);
/* throttle.c: Resource Manager's per-principal limits. */
int mgr_throttle_init(struct mgr *m, const struct mgr_config *cfg) BC_MUST_CHECK;
void mgr_throttle_free(struct mgr *m);
/* Takes one request of a's caller; sets the x-ms-ratelimit-remaining-* header, or answers 429
 * (SubscriptionRequestsThrottled / TenantRequestsThrottled) with Retry-After and returns false. */
bool arm_throttle(struct arm *a);
/* Is the caller allowed action at scope (control plane)? Writes 403 when not. */
bool arm_allowed(struct arm *a, const char *action, const char *scope);
bool arm_can(struct arm *a, const char *action, const char *scope); /* no response written */
/* Parses the JSON body (object). Writes 400 when it is not one. */
json_t *arm_body(struct arm *a);
void arm_json(struct arm *a, int status, json_t *body); /* steals body */
/* Answers a list query: 200 {"value": arr} when st is BC_OK, else err (takes arr either way). */
void arm_list_json(struct arm *a, int st, json_t *arr, const struct bc_error *err);
bool arm_sub_ok(struct arm *a, const char *sub);        /* writes 404 SubscriptionNotFound */
/* Validated copy of body.tags ({} when absent). */
int arm_tags(const json_t *body, json_t **out, struct bc_error *err) BC_MUST_CHECK;
const char *arm_location(const json_t *body, const char *dflt);
/* The caller's grants (loaded through the cache). */
int mgr_grants_load(struct mgr *m, const char *oid, struct mgr_grant **out, size_t *n,
		    struct bc_error *err) BC_MUST_CHECK;
void mgr_grants_free(struct mgr_grant *g, size_t n);
bool mgr_grants_permit(const struct mgr_grant *g, size_t n, const char *action, const char *scope, bool data);

/* ---- storage helpers (manager.c) ---- */
struct mgr_res {
	char key[BC_LIMIT_RESOURCE_ID + 1];
	char id[BC_LIMIT_RESOURCE_ID + 1];
	char name[BC_LIMIT_NAME + 1];
	char host[BC_LIMIT_RESOURCE_ID + 1];   /* lower host key, "" none */
	char principal[37];
	char client[37];
	json_t *body;                           /* owned */
	bool found;
};
void mgr_res_release(struct mgr_res *r);
/* Reads one resource by lower-case key; for_update locks its row. r->found false when absent. */
int mgr_res_get(struct mgr *m, struct bc_txn *txn, const char *key, bool for_update, struct mgr_res *r,
		struct bc_error *err) BC_MUST_CHECK;
int mgr_res_put(struct mgr *m, struct bc_txn *txn, const struct mgr_res *r, const char *sub, const char *rg,
		const char *type, const char *gname, bool insert, struct bc_error *err) BC_MUST_CHECK;
int mgr_res_delete(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err) BC_MUST_CHECK;
int mgr_group_exists(struct mgr *m, struct bc_txn *txn, const char *sub, const char *rg, char *canon_name,
		     size_t n, bool lock, bool *exists, struct bc_error *err) BC_MUST_CHECK;
bool mgr_sub_known(struct mgr *m, const char *sub);
/* Builds the canonical ARM id of a resource in a group (or at subscription level when rg NULL). */
int mgr_res_id(char *out, size_t n, const char *sub, const char *rg, const char *provider_type, const char *name);

/* Host revisions: bump one host (lower key) or all. */
int mgr_host_bump(struct mgr *m, struct bc_txn *txn, const char *host_key, struct bc_error *err) BC_MUST_CHECK;
int mgr_host_bump_all(struct mgr *m, struct bc_txn *txn, struct bc_error *err) BC_MUST_CHECK;
/* Removes oid's certificates bound to host when no instance on the host carries oid any more. */
int mgr_revoke_if_gone(struct mgr *m, struct bc_txn *txn, const char *host_key, const char *oid,
		       struct bc_error *err) BC_MUST_CHECK;
/* Deletes role assignments of a principal (it is gone) and those at or below a scope. */
int mgr_ra_delete_principal(struct mgr *m, struct bc_txn *txn, const char *oid, struct bc_error *err) BC_MUST_CHECK;
int mgr_ra_delete_scope(struct mgr *m, struct bc_txn *txn, const char *scope, struct bc_error *err) BC_MUST_CHECK;

/* Deletion primitives shared by the resource families (txn held, rows may be locked). */
int mgr_vm_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err) BC_MUST_CHECK;
int mgr_uai_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err) BC_MUST_CHECK;
int mgr_vault_delete_txn(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err) BC_MUST_CHECK;

/* Route tables of each family. */
extern const struct bc_route mgr_sub_routes[];
extern const size_t mgr_sub_nroutes;
extern const struct bc_route mgr_group_routes[];
extern const size_t mgr_group_nroutes;
extern const struct bc_route mgr_uai_routes[];
extern const size_t mgr_uai_nroutes;
extern const struct bc_route mgr_fic_routes[]; /* fic.c: federated identity credentials */
extern const size_t mgr_fic_nroutes;
extern const struct bc_route mgr_vm_routes[];
extern const size_t mgr_vm_nroutes;
extern const struct bc_route mgr_vault_routes[];
extern const size_t mgr_vault_nroutes;
extern const struct bc_route mgr_rbac_routes[];
extern const size_t mgr_rbac_nroutes;
extern const struct bc_route mgr_host_routes[];
extern const size_t mgr_host_nroutes;
extern const struct bc_route mgr_agent_routes[];
extern const size_t mgr_agent_nroutes;
extern const struct bc_route mgr_resource_routes[];
extern const size_t mgr_resource_nroutes;

/* GET list of resources of type in captures[0] (subscription) [captures[1] (group)]. */
/* One resource type of a resource group (items.c). */
struct mgr_type {
	const char *type;      /* "Microsoft.Compute/virtualMachines" */
	int (*name_ok)(const char *name, struct bc_error *err);
	const char *name_code; /* ARM's error code for a name outside the type's rules */
	int (*delete_txn)(struct mgr *m, struct bc_txn *txn, const char *key, struct bc_error *err);
	json_t *(*shape)(struct mgr *m, const struct mgr_res *r);
};
/* Checks the path of a request for one resource; answers 400/404 itself and returns false. */
bool mgr_item_path(struct arm *a, const struct mgr_type *t, char *sub, char *key, char *id, const char **rg,
		   const char **name);
/* GET or DELETE of one resource of type t. */
void mgr_item_handler(struct bc_http_req *req, struct bc_http_res *res, void *ctx, const struct mgr_type *t);

void mgr_list_handler(struct bc_http_req *req, struct bc_http_res *res, void *ctx, const char *type,
		      const char *action, json_t *(*shape)(struct mgr *, const struct mgr_res *));

/* ---- the generic resource list (resources.c) and its $filter (filter.c, pure) ---- */
#define MGR_LIST_TOP_MAX 1000   /* $top cap and default page size of /resources (ARM's) */
#define MGR_FILTER_BYTES 2048   /* $filter characters */
#define MGR_FILTER_NODES 64     /* comparisons, functions and and/or of one $filter */
#define MGR_FILTER_DEPTH 8      /* parenthesis nesting in a $filter */

enum mgr_fprop { MGR_FP_TYPE, MGR_FP_NAME, MGR_FP_LOCATION, MGR_FP_GROUP, MGR_FP_PRINCIPAL, MGR_FP_TAGNAME,
		 MGR_FP_TAGVALUE };
enum mgr_fop { MGR_FO_AND, MGR_FO_OR, MGR_FO_EQ, MGR_FO_NE, MGR_FO_SUBSTRINGOF, MGR_FO_STARTSWITH };
struct mgr_fnode {
	uint8_t op;   /* enum mgr_fop */
	uint8_t prop; /* enum mgr_fprop (leaves) */
	int16_t a, b; /* operands of and/or */
	uint16_t lit; /* offset of the literal in text (leaves) */
};
struct mgr_filter {
	struct mgr_fnode n[MGR_FILTER_NODES];
	int nn;
	int root;                          /* -1: no filter (everything matches) */
	bool tags;                         /* tag predicates present */
	char text[MGR_FILTER_BYTES + 1];   /* the literals, unescaped, NUL-separated */
	size_t tlen;
	const char *src;                   /* borrowed, during parsing only */
};
/* What a filter is evaluated against (all borrowed; NULL when the resource has none). */
struct mgr_fsubject {
	const char *type, *name, *location, *group, *principal;
	const json_t *tags;
};
/* Parses $filter (NULL or blank: no filter). BC_ERR_INVALID with a message saying what is wrong. */
int mgr_filter_parse(const char *s, struct mgr_filter *f, struct bc_error *err) BC_MUST_CHECK;
bool mgr_filter_match(const struct mgr_filter *f, const struct mgr_fsubject *s);
/* The literal of a "prop eq 'x'" every match must satisfy (a conjunct at the top), or NULL. */
const char *mgr_filter_required(const struct mgr_filter *f, enum mgr_fprop prop);

/* SHA-256 of a join token, hex (hosts.c). */
int mgr_token_hash(const char *token, char out[65]) BC_MUST_CHECK;

/* Output shaping shared by families. */
json_t *mgr_vm_json(struct mgr *m, const struct mgr_res *r);
json_t *mgr_vault_json(struct mgr *m, const struct mgr_res *r);

/* ---- soft-deleted vaults (deleted.c) ---- */
#define MGR_DELETED_VAULT_TYPE "Microsoft.KeyVault/deletedVaults"
/* One row of mgr_deleted_vaults: the vault resource as it was when deleted. */
struct mgr_dvault {
	char lname[BC_LIMIT_NAME + 1];          /* lower-case name: the key (names are global) */
	char name[BC_LIMIT_NAME + 1];
	char sub[64];                           /* lower case */
	char rg[96];                            /* lower case */
	char rkey[BC_LIMIT_RESOURCE_ID + 1];    /* the vault's mgr_resources key */
	char id[BC_LIMIT_RESOURCE_ID + 1];      /* the vault's ARM id (properties.vaultId) */
	char location[128];
	json_t *body;                           /* owned: the resource body as it was */
	int64_t deleted, purge_at;              /* epoch s */
	bool protected;                         /* enablePurgeProtection */
	bool found;
};
void mgr_dvault_release(struct mgr_dvault *d);
/* Reads the soft-deleted vault lname (lock: for update); d->found false when there is none. */
int mgr_dvault_get(struct mgr *m, struct bc_txn *txn, const char *lname, bool lock, struct mgr_dvault *d,
		   struct bc_error *err) BC_MUST_CHECK;
int mgr_dvault_remove(struct mgr *m, struct bc_txn *txn, const char *lname, struct bc_error *err) BC_MUST_CHECK;
/* Records vault resource r (about to be deleted) as soft-deleted, now. */
int mgr_dvault_add(struct mgr *m, struct bc_txn *txn, const struct mgr_res *r, struct bc_error *err) BC_MUST_CHECK;
/* Routes: GET deletedVaults (subscription), GET and POST .../purge of one. */
void mgr_dvault_list_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx);
void mgr_dvault_get_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx);
void mgr_dvault_purge_h(struct bc_http_req *req, struct bc_http_res *res, void *ctx);
/* "West US" -> "westus": how ARM spells a location in ids. */
void mgr_location_key(const char *loc, char *out, size_t n);

#endif
