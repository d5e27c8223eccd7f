/* libbadge internals shared by the credential and Key Vault modules (and the unit tests).
 * Internal functions return badge_status values and fill a caller-owned struct bc_error whose
 * status is that badge_status. */
#ifndef BADGE_CLIENT_INT_H
#define BADGE_CLIENT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "badge/badge.h"
#include "core/error.h"
#include "core/httpc.h"
#include "core/jose.h"

#define CLIENT_MAX_RETRIES        5      /* retries of 404/429/5xx (Azure's IMDS guidance) */
#define CLIENT_BACKOFF_BASE_MS    1000   /* first backoff; doubles each retry */
#define CLIENT_GONE_WINDOW_MS     70000  /* 410: keep retrying for this long */
#define CLIENT_RETRY_AFTER_MAX_MS 120000 /* a Retry-After longer than this is capped */
#define CLIENT_REFRESH_LONG_S     7200   /* lifetimes above this refresh at half-life */
#define CLIENT_REFRESH_MARGIN_S   300    /* otherwise this long before expiry */
#define CLIENT_REFRESH_RETRY_S    60     /* after a failed refresh, a still-valid token is kept this long */
#define CLIENT_MAX_RESOURCES      64     /* distinct resources cached per credential */
#define CLIENT_KV_RETRIES         3      /* Key Vault: retries of 408/429/5xx */

enum cred_kind { CRED_IMDS, CRED_POD, CRED_APPSERVICE, CRED_SECRET, CRED_CERT, CRED_FIXED };

struct cache_entry {
	struct cache_entry *next; /* owned */
	char *resource;           /* owned */
	char *token;              /* owned, wiped on free */
	int64_t expires_on;       /* epoch s */
	int64_t refresh_at;       /* epoch s */
	bool fetching;            /* a thread is asking upstream */
	uint64_t gen;             /* completed upstream requests */
	int last_rc;              /* result of the last completed request */
	char last_msg[BC_ERROR_MSG_MAX];
};

struct badge_credential {
	enum cred_kind kind;
	char *token_url;       /* owned: MI endpoint, or the directory's token endpoint */
	char *identity_header; /* owned, App Service secret, wiped */
	enum badge_identity_kind id_kind;
	char *id;                 /* owned, NULL for system-assigned */
	char *client_id;          /* owned (directory credentials) */
	char *secret;             /* owned, wiped (client secret, or the fixed access token) */
	int64_t fixed_expires_on; /* CRED_FIXED: epoch s, 0 = unknown */
	struct bc_jwk *key;       /* owned (certificate credential) */
	char x5t256[44];
	char *ca_file; /* owned, NULL = SSL_CERT_FILE or the system default */
	badge_clock_fn now_ms;
	badge_sleep_fn sleep_ms;
	void *clock_ctx;           /* borrowed */
	pthread_mutex_t mu;        /* guards cache and errmsg */
	pthread_cond_t cv;         /* signalled when a fetch completes */
	struct cache_entry *cache; /* owned list */
	size_t ncache;
	char errmsg[BC_ERROR_MSG_MAX];
};

/* The credential's clock (ms) and sleep. */
int64_t cred_now_ms(const struct badge_credential *c);
void cred_sleep(const struct badge_credential *c, int64_t ms);
/* The token for resource (cache, single flight, refresh); *token malloc'd. */
int cred_token(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	       struct bc_error *err);
/* Drops the cached token for resource if it still equals token (the vault rejected it). */
void cred_invalidate(struct badge_credential *c, const char *resource, const char *token);
/* One upstream token request with retries (mi.c / aad.c). Fills *token and *expires_on. */
int mi_fetch(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	     struct bc_error *err);
int aad_fetch(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	      struct bc_error *err);

/* The retry loop of every token request. mi = true also retries 404 and 410. */
int client_http_retry(const struct badge_credential *c, const struct bc_httpc_req *req, bool mi,
		      struct bc_httpc_res *res, struct bc_error *err);
/* Parses a token response body (access_token, expires_on or expires_in) at now_s. */
int client_parse_token(const struct bc_httpc_res *res, int64_t now_s, char **token, int64_t *expires_on,
		       struct bc_error *err);
/* The CA file to use: explicit, else SSL_CERT_FILE, else NULL (system default). */
const char *client_ca_file(const char *explicit_ca);

/* Key Vault challenge helpers (keyvault.c), exposed for tests. */
/* Extracts resource (or scope minus "/.default") from a WWW-Authenticate value into out. */
int kv_challenge_resource(const char *www_authenticate, char *out, size_t n);
/* The vault host must be a proper subdomain of the resource's host (not an IP literal). */
bool kv_challenge_host_ok(const char *vault_url, const char *resource);

#endif
