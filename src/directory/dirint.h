/* Internals of the directory shared by its files; not for other components. */
#ifndef BADGE_DIRINT_H
#define BADGE_DIRINT_H

#include <pthread.h>
#include <stdatomic.h>
#include "core/audit.h"
#include "core/jose.h"
#include "core/seal.h"
#include "directory/directory.h"

#define DIR_URL_MAX 512
#define DIR_MAX_RESOURCES 16

/* A signing key as loaded: it signs from signs_from until a newer key's signs_from, and stays
 * published until that moment plus the longest token lifetime. */
struct dir_key {
	char kid[64];
	char tenant_id[37];
	int64_t signs_from;
	int64_t seq;         /* breaks ties between keys that start signing in the same second */
	int64_t retire_at;   /* 0 = not superseded */
	struct bc_jwk *jwk;  /* owned: private */
	json_t *public_jwk;  /* owned: published form, with "issuer" */
};

struct dir_keyset {
	struct dir_key *keys; /* owned */
	size_t n;
};

struct dir_cache_slot; /* verify.c */
struct dir_jti_table;  /* token.c */
struct dir_fed_cache;  /* federation.c */

struct dir {
	struct bc_store *st;          /* borrowed */
	struct dir_config cfg;        /* strings borrowed from the caller */
	char login_url[DIR_URL_MAX];  /* without trailing slash */
	char default_tenant[37];
	struct bc_seal *seal;         /* owned */
	struct bc_audit *audit;       /* owned: token requests, issued or refused */
	int64_t started;              /* assertions issued before this are refused (replay cache is in memory) */

	pthread_rwlock_t keys_lock;   /* guards keys */
	struct dir_keyset keys;
	atomic_llong keys_loaded_ms;  /* last reload (rate-limits kid-miss reloads) */

	struct dir_cache_slot *cache; /* owned: verified tokens and principal liveness */
	struct dir_jti_table *jti;    /* owned: assertion replay cache */
	struct dir_fed_cache *fed;    /* owned: external issuers' keys (federation.c) */
	atomic_uint_fast64_t principal_epoch; /* bumped on every principal deletion/disable */
	struct bc_ratelimit *limiter; /* owned: token-endpoint throttling (throttle.c), NULL = none */

	pthread_mutex_t maint_mu; /* guards maint_stop; maint_cv wakes the maintenance thread */
	pthread_cond_t maint_cv;
	pthread_t maint_thread;
	bool maint_running, maint_stop;
};

/* keys.c */
int dir_keys_load(struct dir *d, struct bc_error *err) BC_MUST_CHECK;
int dir_keys_ensure(struct dir *d, const char *tenant_id, struct bc_error *err) BC_MUST_CHECK;
/* Signs claims with the tenant's current key. */
int dir_keys_sign(struct dir *d, const char *tenant_id, const json_t *claims, struct bc_buf *out,
		  struct bc_error *err) BC_MUST_CHECK;
/* The published JWKS of tenant (NULL: every tenant). New reference. */
json_t *dir_keys_jwks(struct dir *d, const char *tenant_id);
/* Finds the public key for kid and checks it belongs to tenant_id; reloads once on a miss
 * (rate-limited). Returns a new jwk reference count... copies the public key into *out. */
int dir_keys_find(struct dir *d, const char *kid, const char *tenant_id, struct bc_jwk **out,
		  struct bc_error *err) BC_MUST_CHECK;
void dir_keyset_release(struct dir_keyset *ks);
int dir_rotate(struct dir *d, const char *tenant_id, bool activate, json_t **result, struct bc_error *err) BC_MUST_CHECK;

/* throttle.c: the token endpoints' limits per client_id and per tenant (d->cfg.limit_*). */
int dir_throttle_init(struct dir *d) BC_MUST_CHECK;
void dir_throttle_free(struct dir *d);
/* Takes one request of client_id in tenant; false when a limit is reached: *retry_s is the
 * Retry-After in seconds and *scope "client" or "tenant". Counts the throttled request. */
bool dir_throttle_token(struct dir *d, const char *tenant, const char *client_id, int64_t *retry_s,
			const char **scope);

/* token.c */
int dir_token_mount(struct dir *d, struct bc_http_server *srv) BC_MUST_CHECK;
int dir_jti_init(struct dir *d) BC_MUST_CHECK;
void dir_jti_free(struct dir *d);

/* federation.c: client assertions signed by an external OIDC issuer (workload identity
 * federation). On failure *fail says what to answer (Entra's error, code and message). */
struct dir_fed_fail {
	int status;
	const char *error;
	int code;
	char msg[700];
};
int dir_fed_init(struct dir *d) BC_MUST_CHECK;
void dir_fed_free(struct dir *d);
bool dir_fed_authenticate(struct dir *d, const struct bc_jwt *jwt, const struct dir_principal *p,
			  const char *request_id, struct dir_fed_fail *fail);

/* verify.c */
int dir_cache_init(struct dir *d) BC_MUST_CHECK;
void dir_cache_free(struct dir *d);
void dir_cache_principal_gone(struct dir *d, const char *object_id);

/* discovery.c, admin.c */
int dir_discovery_mount(struct dir *d, struct bc_http_server *srv) BC_MUST_CHECK;
int dir_admin_mount(struct dir *d, struct bc_http_server *srv) BC_MUST_CHECK;

/* directory.c */
bool dir_tenant_exists(struct dir *d, const char *tenant_id);
void dir_issuer(const struct dir *d, const char *tenant_id, int version, char *out, size_t outlen);
/* The public base URL of the request ("https://" + Host), or login_url when Host is absent. */
void dir_request_base(const struct dir *d, const struct bc_http_req *req, char *out, size_t outlen);
/* Principal id validation: a uuid. */
bool dir_id_ok(const char *id);
/* Reads the principal row columns into p. */
struct bc_row;
void dir_principal_from_row(const struct bc_row *row, struct dir_principal *p);
#define DIR_PRINCIPAL_COLUMNS "object_id, app_id, tenant_id, type, display_name, resource_id, enabled, created"

#endif
