/* The vault's internals, shared by its modules (vault.c: routing, authentication, errors;
 * parse.c: untrusted input; crypt.c: encryption at rest; objects.c: storage of versioned
 * objects; secrets.c, keys.c: the endpoints; audit.c: the audit trail). Not for other
 * components: they use vault.h. */
#ifndef BADGE_VAULT_INT_H
#define BADGE_VAULT_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/audit.h"
#include "core/error.h"
#include "core/http.h"
#include "core/limits.h"
#include "core/ratelimit.h"
#include "vault/vault.h"

/* The vault's limits (VAULT_LIMIT_*) are in core/limits.h with the others. */

#define VAULT_KIND_SECRET "secret"
#define VAULT_KIND_KEY    "key"

/* ---- parse.c: everything a peer controls ---------------------------------------------- */

/* Object names: ^[0-9a-zA-Z-]{1,127}$. */
bool vault_name_valid(const char *s);
/* Vault names: 3-24 characters, letters, digits and '-'. */
bool vault_vault_name_valid(const char *s);
/* A 32-hex version, either case. */
bool vault_version_valid(const char *s);
/* Is api-version one Key Vault clients send? */
bool vault_api_version_known(const char *s);

/* Authorization header: "Bearer <token>" (scheme case-insensitive). On success tok and len point
 * into hdr. BC_ERR_UNAUTHENTICATED when absent or another scheme, BC_ERR_INVALID when malformed. */
int vault_parse_bearer(const char *hdr, const char **tok, size_t *len) BC_MUST_CHECK;

/* Parsed attributes of a request body ("attributes":{enabled,nbf,exp}). */
struct vault_attrs {
	bool has_enabled, enabled;
	bool has_nbf, has_exp;
	int64_t nbf, exp;
};

/* The client-facing failure of a parse: Key Vault's code and a message without secrets. */
struct vault_fail {
	int http;
	const char *code;  /* "BadParameter" ... */
	const char *inner; /* innererror code or NULL */
	char msg[256];
};

struct vault_secret_input {
	json_t *doc;       /* owned: the parsed body (the strings below borrow from it) */
	const char *value; /* set only */
	size_t value_len;
	const char *content_type; /* NULL when absent */
	bool has_content_type;
	json_t *tags; /* borrowed from doc, NULL when absent */
	struct vault_attrs attrs;
};
/* PUT secrets/{n} (require_value) and PATCH secrets/{n}/{v}. */
int vault_parse_secret_body(const char *body, size_t len, bool require_value, struct vault_secret_input *out,
			    struct vault_fail *f) BC_MUST_CHECK;
void vault_secret_input_release(struct vault_secret_input *in);

enum vault_key_op {
	VAULT_OP_ENCRYPT = 1 << 0,
	VAULT_OP_DECRYPT = 1 << 1,
	VAULT_OP_SIGN = 1 << 2,
	VAULT_OP_VERIFY = 1 << 3,
	VAULT_OP_WRAP = 1 << 4,
	VAULT_OP_UNWRAP = 1 << 5,
	VAULT_OP_IMPORT = 1 << 6,
	VAULT_OP_EXPORT = 1 << 7,
};
const char *vault_key_op_name(unsigned op); /* exact camelCase, NULL for an unknown bit */
/* Parses a key_ops JSON array into bits; BC_ERR_INVALID on an unknown or duplicate name. */
int vault_parse_key_ops(const json_t *arr, unsigned *ops) BC_MUST_CHECK;
json_t *vault_key_ops_json(unsigned ops);

struct vault_key_input {
	json_t *doc; /* owned */
	char kty[8]; /* "RSA", "EC" (without -HSM) */
	bool hsm;
	int bits; /* RSA modulus bits or EC curve bits (256/384/521) */
	bool has_ops;
	unsigned ops;
	json_t *tags; /* borrowed, NULL when absent */
	struct vault_attrs attrs;
	json_t *jwk; /* import: borrowed "key" member */
};
/* POST keys/{n}/create. */
int vault_parse_key_create(const char *body, size_t len, struct vault_key_input *out,
			   struct vault_fail *f) BC_MUST_CHECK;
/* PUT keys/{n} (import). */
int vault_parse_key_import(const char *body, size_t len, struct vault_key_input *out,
			   struct vault_fail *f) BC_MUST_CHECK;
/* PATCH keys/{n}/{v}: key_ops, attributes, tags. */
int vault_parse_key_update(const char *body, size_t len, struct vault_key_input *out,
			   struct vault_fail *f) BC_MUST_CHECK;
void vault_key_input_release(struct vault_key_input *in);

/* sign / verify / encrypt / decrypt / wrapkey / unwrapkey bodies. Byte fields decoded. */
struct vault_op_input {
	char alg[16];
	uint8_t *value; /* owned */
	size_t value_len;
	uint8_t *digest; /* owned, verify only */
	size_t digest_len;
};
int vault_parse_key_op(const char *body, size_t len, bool verify, struct vault_op_input *out,
		       struct vault_fail *f) BC_MUST_CHECK;
void vault_op_input_release(struct vault_op_input *in);

/* {"value":"<b64url>"} (restore) with a decoded byte cap. */
int vault_parse_value_b64(const char *body, size_t len, size_t max, uint8_t **out, size_t *outlen,
			  struct vault_fail *f) BC_MUST_CHECK;
/* {"count":N} of getrandombytes. */
int vault_parse_rng(const char *body, size_t len, int *count, struct vault_fail *f) BC_MUST_CHECK;

/* ---- crypt.c: encryption at rest ------------------------------------------------------ */

struct vault_crypt;
/* Reads the master key file (creating it, 0600, when absent) and derives the key-encryption
 * and backup keys from it. Refuses a file readable by group or others. */
int vault_crypt_new(struct vault_crypt **out, const char *master_key_file, struct bc_store *st,
		    struct bc_error *err) BC_MUST_CHECK;
void vault_crypt_free(struct vault_crypt *c);
/* Seals plaintext under the vault's data key (created on first use), bound to aad. The result
 * is base64 text for the store. */
int vault_seal(struct vault_crypt *c, const char *vault, const char *aad, const void *pt, size_t n,
	       char **out, struct bc_error *err) BC_MUST_CHECK;
/* Opens what vault_seal made; *out is NUL-terminated, wipe it (bc_wipe) before free. */
int vault_open(struct vault_crypt *c, const char *vault, const char *aad, const char *sealed, uint8_t **out,
	       size_t *outlen, struct bc_error *err) BC_MUST_CHECK;
/* Backup blobs: sealed under the installation's backup key. */
int vault_backup_seal(struct vault_crypt *c, const char *kind, const void *pt, size_t n, struct bc_buf *blob,
		      struct bc_error *err) BC_MUST_CHECK;
int vault_backup_open(struct vault_crypt *c, const char *kind, const uint8_t *blob, size_t n, uint8_t **out,
		      size_t *outlen, struct bc_error *err) BC_MUST_CHECK;
/* Master-key rotation (reseal.c): a data key wrapped under from's master key (vault_deks.dek),
 * wrapped again under to's (*out: base64, malloc'd). BC_ERR_CRYPTO when it does not open under
 * from. vault_dek_check: BC_OK when wrapped opens under c. */
int vault_dek_rewrap(struct vault_crypt *from, struct vault_crypt *to, const char *vault, const char *wrapped,
		     char **out, struct bc_error *err) BC_MUST_CHECK;
int vault_dek_check(struct vault_crypt *c, const char *vault, const char *wrapped, struct bc_error *err) BC_MUST_CHECK;
/* Forgets the cached data key of vault (NULL: of every vault): after a purge removed it, a new
 * vault of the same name must get a data key of its own. */
void vault_crypt_forget(struct vault_crypt *c, const char *vault);

/* ---- audit.c --------------------------------------------------------------------------- */

/* The records are core/audit.h's; scope is the vault's (lower-case) name. */
#define vault_audit_rec bc_audit_rec
struct vault_audit {
	struct bc_audit *w;       /* owned */
	struct sweep_ctx *sweep;  /* owned: the purge sweep run on the writer's tick */
};
int vault_audit_new(struct vault_audit **out, struct bc_store *st, struct bc_error *err) BC_MUST_CHECK;
/* From now on the sweep also purges soft-deleted vaults past their scheduled purge date
 * (mgr_vault_purge_expired). */
void vault_audit_sweep_vaults(struct vault_audit *a, struct mgr *m);
/* Flushes what is queued (committed) and stops the writer. */
void vault_audit_free(struct vault_audit *a);
#define vault_audit_enqueue(a, r) bc_audit_enqueue((a)->w, (r))
#define vault_audit_flush(a) bc_audit_flush((a)->w)

/* ---- objects.c: versioned objects in the store ---------------------------------------- */

/* One version of an object, with its object's state. Strings owned. */
struct vault_row {
	char name[BC_LIMIT_NAME + 1];
	char version[33];
	int64_t seq;
	bool enabled;
	bool has_nbf, has_exp;
	int64_t nbf, exp, created, updated;
	char *content_type;
	char *tags;   /* JSON object text or NULL */
	char *sealed; /* secret value / private JWK, sealed */
	char *kty;
	char *key_ops; /* JSON array text */
	char *pub;     /* public JWK JSON text */
	bool deleted;
	int64_t deleted_date, purge_date;
};
void vault_row_release(struct vault_row *r);

/* version NULL or "" = latest. include_deleted false: a deleted object is not found. */
int vault_obj_get(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		  const char *name, const char *version, bool deleted, struct vault_row *out,
		  struct bc_error *err) BC_MUST_CHECK;
/* dst[n] = src in ASCII lower case, cut to fit, NUL-terminated; NULL src gives "". Vault and
 * object names are case-insensitive: every key made from one goes through this. */
void vault_lower(char *dst, const char *src, size_t n);
/* The read cache of object versions (cache.c). vault_obj_read is vault_obj_get outside a
 * transaction, for objects that are not deleted, answered from the cache when it can be. */
#define VAULT_NOTIFY_CHANNEL "vault_objects"
struct vault_cache;
int vault_cache_new(struct vault_cache **out) BC_MUST_CHECK;
void vault_cache_free(struct vault_cache *c);
/* Retires every entry: called after any change to any object (and on another replica's). */
void vault_cache_invalidate(struct vault_cache *c);
int vault_obj_read(struct vault *v, const char *vault, const char *kind, const char *name, const char *version,
		   struct vault_row *out, struct bc_error *err) BC_MUST_CHECK;
typedef int (*vault_row_cb)(void *ctx, const struct vault_row *r);
/* Latest versions of live (deleted=false) or deleted objects, names after `after` (lower case,
 * "" from the start), at most limit rows, by name. */
int vault_obj_list(struct bc_store *st, const char *vault, const char *kind, bool deleted, const char *after,
		   int limit, vault_row_cb fn, void *ctx, struct bc_error *err) BC_MUST_CHECK;
/* Versions of one live object with seq > after_seq, at most limit, by seq. */
int vault_obj_versions(struct bc_store *st, const char *vault, const char *kind, const char *name,
		       int64_t after_seq, int limit, vault_row_cb fn, void *ctx,
		       struct bc_error *err) BC_MUST_CHECK;
/* Adds a version (r->version, r->seq ignored: seq is assigned). Creates the object or moves its
 * latest pointer. BC_ERR_CONFLICT when the name is deleted-but-recoverable. */
int vault_obj_put(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		  struct vault_row *r, struct bc_error *err) BC_MUST_CHECK;
/* Inserts a version with its given seq (restore). */
int vault_obj_put_raw(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		      const struct vault_row *r, bool latest, struct bc_error *err) BC_MUST_CHECK;
/* Updates enabled/nbf/exp/content_type/tags/key_ops/updated of one version. */
int vault_obj_update(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const struct vault_row *r, struct bc_error *err) BC_MUST_CHECK;
/* Soft delete (purge_date > 0) or hard delete (purge_date == 0). */
int vault_obj_delete(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const char *name, int64_t deleted_date, int64_t purge_date,
		     struct bc_error *err) BC_MUST_CHECK;
int vault_obj_recover(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		      const char *name, struct bc_error *err) BC_MUST_CHECK;
int vault_obj_purge(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		    const char *name, struct bc_error *err) BC_MUST_CHECK;
/* Removes deleted objects whose scheduled purge date has passed. */
int vault_obj_sweep(struct bc_store *st, int64_t now, struct bc_error *err) BC_MUST_CHECK;
/* Removes everything stored for vault (lower-case name): every object and version, its data key.
 * The caller publishes the change and retires the read cache (vault_purge_txn in vault.c). */
int vault_obj_purge_vault(struct bc_store *st, struct bc_txn *txn, const char *vault,
			  struct bc_error *err) BC_MUST_CHECK;
/* Does the name exist (live or deleted)? */
int vault_obj_exists(struct bc_store *st, struct bc_txn *txn, const char *vault, const char *kind,
		     const char *name, bool *exists, bool *deleted, struct bc_error *err) BC_MUST_CHECK;
int vault_schema_migrate(struct bc_store *st, struct bc_error *err) BC_MUST_CHECK;

/* ---- vault.c: the request context shared by the endpoint modules ---------------------- */

/* Key Vault's service-limit classes (throttle.c). */
enum vault_rl_class { VAULT_RL_SECRETS, VAULT_RL_KEYS, VAULT_RL_KEY_CREATE, VAULT_RL_NCLASS };

struct vault {
	struct bc_store *st;       /* borrowed */
	struct dir *dir;           /* borrowed */
	struct mgr *mgr;           /* borrowed */
	char *suffix;              /* owned, lower case, no leading dot */
	char *dot_suffix;          /* owned, "." + suffix */
	char *resource;            /* owned */
	char *public_port;         /* owned, ":8443" or "" */
	struct vault_crypt *crypt; /* owned */
	struct vault_audit *audit; /* owned */
	struct vault_cache *cache; /* owned, NULL = no read cache */
	char self_id[17];          /* random: this instance's own change notifications start with it */
	bool hooks_set;            /* registered its vault lifecycle hooks with mgr */
	_Atomic int64_t last_sweep;
	struct bc_ratelimit *limiter;              /* owned, NULL when nothing is limited */
	struct bc_rate rates[VAULT_RL_NCLASS];     /* per class; burst 0 = unlimited */
};

struct vreq;
typedef void (*vault_op_fn)(struct vreq *q);

/* ---- throttle.c: Key Vault's service-limit classes --------------------------------------- */
struct vroute;
struct vault_config;
int vault_throttle_init(struct vault *v, const struct vault_config *cfg) BC_MUST_CHECK;
void vault_throttle_release(struct vault *v);
enum vault_rl_class vault_throttle_class(const struct vroute *vr);
/* Takes one transaction of cls from the vault's and caller's bucket; false after answering 429
 * Throttled with Retry-After (the handler must then change nothing). */
bool vault_throttle(struct vreq *q, enum vault_rl_class cls);

/* A data-plane route: what the handler is called, and what it needs. */
struct vroute {
	const char *method;
	const char *pattern;
	const char *operation;  /* audit name, Azure's: "SecretGet" */
	const char *category;   /* "secrets", "keys", NULL = any authenticated caller */
	const char *permission; /* access-policy permission name */
	vault_op_fn fn;
	size_t max_body;
	bool mutation; /* audit record committed with the change */
};

struct vreq {
	struct vault *v;
	struct bc_http_req *req;
	struct bc_http_res *res;
	const struct vroute *route;
	struct mgr_vault_info info;
	char vkey[BC_LIMIT_NAME + 1]; /* the vault's storage key: its name, lower case */
	char base[320];               /* "https://NAME.vault.SUFFIX[:PORT]" */
	struct dir_claims claims;
	const char *api_version;
	const char *name;    /* {name} capture or NULL */
	const char *version; /* {version} capture, "" = latest, NULL = none */
	struct vault_audit_rec audit;
	bool audit_in_txn; /* the handler committed the record with its change */
};

/* Key Vault's error body {"error":{"code","message","innererror"?}}. */
void vault_error(struct vreq *q, int http, const char *code, const char *inner, const char *fmt, ...)
	BC_PRINTF(5, 6);
void vault_fail_reply(struct vreq *q, const struct vault_fail *f);
/* Logs err with the request id and answers 500 (or 503 for a busy store) without detail. */
void vault_internal(struct vreq *q, const struct bc_error *err);
/* 200 with body (stolen). */
void vault_reply(struct vreq *q, json_t *body);
/* Sets the audit object ("secrets/NAME[/VERSION]"). */
void vault_audit_object(struct vreq *q, const char *collection, const char *name, const char *version);
/* Runs fn(q, txn, ctx) in a write transaction, retried on BC_ERR_CONFLICT (busy); writes the
 * audit record of a mutation in the same transaction with the status the handler chose. */
typedef int (*vault_txn_fn)(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err);
int vault_in_txn(struct vreq *q, vault_txn_fn fn, void *ctx, struct bc_error *err) BC_MUST_CHECK;
/* Recovery level and days from the vault's settings. */
const char *vault_recovery_level(const struct mgr_vault_info *info);
int vault_recoverable_days(const struct mgr_vault_info *info);
/* Adds "attributes" to obj from a row. */
/* The same attributes object written into out (hot paths that skip building a tree). */
int vault_attrs_write(const struct vreq *q, const struct vault_row *r, bool key, struct bc_buf *out) BC_MUST_CHECK;
json_t *vault_attrs_json(const struct vreq *q, const struct vault_row *r, bool key);
/* Paging: reads maxresults (1..25, default 25) and $skiptoken; writes nextLink. */
int vault_page_params(struct vreq *q, int *limit, char *after, size_t after_len);
json_t *vault_next_link(const struct vreq *q, const char *path, const char *token, int limit);
/* The tags column text into a JSON object (new reference) or NULL. */
json_t *vault_tags_json(const char *tags);

/* ---- common.c: the operations secrets and keys share ------------------------------------ */

struct vault_kind {
	const char *kind;       /* VAULT_KIND_SECRET */
	const char *collection; /* "secrets" */
	const char *deleted;    /* "deletedsecrets" */
	const char *not_found;  /* "SecretNotFound" */
	const char *noun;       /* "secret" */
	const char *Noun;       /* "Secret" */
	/* The bundle of one version (value: the secret's plaintext or NULL). */
	json_t *(*bundle)(struct vreq *q, const struct vault_row *r, const char *value);
	json_t *(*item)(struct vreq *q, const struct vault_row *r, bool with_version);
};
extern const struct vault_kind vault_kind_secret;
extern const struct vault_kind vault_kind_key;
const struct vault_kind *vault_kind_of(const struct vreq *q);

/* AAD binding a sealed value to its place. */
void vault_aad(char *out, size_t n, const char *kind, const char *vault, const char *name,
	       const char *version);
/* Adds recoveryId, deletedDate, scheduledPurgeDate to a bundle or item. */
void vault_deleted_fields(struct vreq *q, const struct vault_kind *k, const struct vault_row *r, json_t *obj);
void vault_not_found(struct vreq *q, const struct vault_kind *k);

/* enabled/nbf/exp of a version: answers 403 and returns false when op may not use it. */
bool vault_usable(struct vreq *q, const struct vault_row *r, const char *noun, const char *op);

void vault_op_list(struct vreq *q);
void vault_op_versions(struct vreq *q);
void vault_op_delete(struct vreq *q);
void vault_op_get_deleted(struct vreq *q);
void vault_op_list_deleted(struct vreq *q);
void vault_op_recover(struct vreq *q);
void vault_op_purge(struct vreq *q);
void vault_op_backup(struct vreq *q);
void vault_op_restore(struct vreq *q);

/* secrets.c, keys.c: route tables. */
extern const struct vroute vault_secret_routes[];
extern const size_t vault_secret_nroutes;
extern const struct vroute vault_key_routes[];
extern const size_t vault_key_nroutes;

#endif
