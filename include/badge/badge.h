/* libbadge: managed identities and Key Vault for C applications.
 *
 * Works against badge and against Azure alike: nothing badge-specific goes on the wire.
 *
 *   struct badge_credential *cred;   // how tokens are obtained (managed identity, client secret,
 *                                    // client certificate); shareable between threads
 *   struct badge_keyvault *kv;       // one vault; use one per thread (like a curl easy handle)
 *
 * Conventions
 * - Handles are opaque. Constructors are badge_<object>_new*, destructors badge_<object>_free
 *   (NULL-safe).
 * - Every fallible function returns a badge_status: 0 (BADGE_OK) is success. On failure no output
 *   is written and badge_<object>_errmsg() describes the failure (lower case, failure first).
 * - Output strings and byte arrays are allocated by the library and owned by the caller, who
 *   releases them with badge_free() (wiping is the caller's business; badge_free_secret() wipes
 *   a NUL-terminated string first).
 * - Strings given to the library are copied; the caller keeps them.
 * - The library has no global state of its own. libcurl and OpenSSL are initialised on first use
 *   (curl_global_init); an application that uses libcurl itself may initialise it first.
 *
 * Environment read by badge_credential_new_managed_identity() (as the Azure SDKs do):
 *   IDENTITY_ENDPOINT + IDENTITY_HEADER       App Service flavour (api-version 2019-08-01)
 *   AZURE_POD_IDENTITY_AUTHORITY_HOST         IMDS at another host (pod identity)
 *   (neither)                                 IMDS at http://169.254.169.254
 * and, by every handle making HTTPS requests when no CA file is set: SSL_CERT_FILE (a PEM bundle
 * of trust anchors, as OpenSSL's own tools read it).
 */
#ifndef BADGE_BADGE_H
#define BADGE_BADGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BADGE_VERSION_MAJOR 0
#define BADGE_VERSION_MINOR 1
#define BADGE_VERSION_PATCH 0

#if defined(__GNUC__)
#define BADGE_MUST_CHECK __attribute__((warn_unused_result))
#else
#define BADGE_MUST_CHECK
#endif

typedef enum badge_status {
	BADGE_OK = 0,
	BADGE_E_INVALID,      /* a bad argument, or an option the handle does not take */
	BADGE_E_NOMEM,        /* out of memory */
	BADGE_E_UNAVAILABLE,  /* the endpoint could not be reached, or kept failing after retries */
	BADGE_E_AUTH,         /* no token: the identity endpoint or directory refused (final) */
	BADGE_E_UNAUTHORIZED, /* the vault rejected the token (401) */
	BADGE_E_FORBIDDEN,    /* the vault refused the operation (403) */
	BADGE_E_NOT_FOUND,    /* the object does not exist (404) */
	BADGE_E_CONFLICT,     /* the vault's state forbids it (409) */
	BADGE_E_HTTP,         /* any other HTTP error status; see badge_keyvault_http_status() */
	BADGE_E_PROTOCOL,     /* a response that is not what the protocol says */
	BADGE_E_CHALLENGE,    /* the vault's challenge names a resource the vault is not part of */
	BADGE_E_TLS,          /* https required, or a TLS/trust failure */
	BADGE_E_INTERNAL,
} badge_status;

/* A short name for a status ("BADGE_E_NOT_FOUND"). Never NULL. */
const char *badge_status_name(int status);

/* Releases anything the library handed out. NULL-safe. */
void badge_free(void *p);
/* Wipes a NUL-terminated string (a token, a secret value), then frees it. NULL-safe. */
void badge_free_secret(char *s);

/* ---- credentials ------------------------------------------------------------------------ */

struct badge_credential;

/* Which user-assigned identity a managed-identity credential asks for. */
enum badge_identity_kind {
	BADGE_IDENTITY_SYSTEM = 0,  /* the system-assigned identity (id must be NULL) */
	BADGE_IDENTITY_CLIENT_ID,   /* by client (application) id */
	BADGE_IDENTITY_OBJECT_ID,   /* by object (principal) id */
	BADGE_IDENTITY_RESOURCE_ID, /* by ARM resource id */
};

/* Clock and sleep, injectable for tests: now_ms returns wall-clock milliseconds since the epoch,
 * sleep_ms waits (or pretends to wait) that many milliseconds. They are called from any thread
 * that uses the credential, so they must be thread-safe. */
typedef int64_t (*badge_clock_fn)(void *ctx);
typedef void (*badge_sleep_fn)(void *ctx, int64_t ms);

/* A managed-identity credential. The endpoint is chosen from the environment at this call (see
 * the top of this file). Tokens are cached per resource and refreshed ahead of expiry (at half
 * the lifetime when it is over 2 hours, else 5 minutes before expiry). Failed requests are
 * retried as Azure advises: 404, 429 and 5xx with exponential backoff (1, 2, 4, 8, 16 s; five
 * retries), 410 for up to 70 s, a Retry-After header replacing the computed delay; 400 and other
 * 4xx are final. Safe to share between threads: when several threads need the same token at
 * once, one request is made and all of them get its result. */
int badge_credential_new_managed_identity(struct badge_credential **out, enum badge_identity_kind kind,
					  const char *id) BADGE_MUST_CHECK;

/* A service principal with a client secret, through the directory's v2 token endpoint
 * AUTHORITY/TENANT/oauth2/v2.0/token (authority: "https://login.microsoftonline.com" for Azure,
 * a badge server's URL for badge; https only), asking scope = resource + "/.default". */
int badge_credential_new_client_secret(struct badge_credential **out, const char *authority,
				       const char *tenant, const char *client_id,
				       const char *secret) BADGE_MUST_CHECK;

/* A service principal with a certificate: signs an RFC 7523 client assertion (x5t#S256 header,
 * aud = the token endpoint, 10 minutes) with the key. cert_file is a PEM certificate; key_file a
 * PEM private key (NULL: the key is in cert_file too). Both are read at this call. */
int badge_credential_new_client_certificate(struct badge_credential **out, const char *authority,
					    const char *tenant, const char *client_id, const char *cert_file,
					    const char *key_file) BADGE_MUST_CHECK;

/* A fixed access token obtained elsewhere (no refresh): get_token hands it out for any resource
 * until expires_on (epoch seconds; 0 = no known expiry), then fails with BADGE_E_AUTH. */
int badge_credential_new_access_token(struct badge_credential **out, const char *token,
				      int64_t expires_on) BADGE_MUST_CHECK;

/* Options; set them before the credential is shared or first used. */
/* Trust anchors (PEM file) for https token endpoints. */
int badge_credential_set_ca_file(struct badge_credential *c, const char *path) BADGE_MUST_CHECK;
/* Replaces the IMDS base URL (default http://169.254.169.254) of a credential that chose IMDS;
 * for tests and for hosts that serve the metadata endpoint elsewhere. BADGE_E_INVALID for a
 * credential of another flavour. */
int badge_credential_set_imds_url(struct badge_credential *c, const char *base_url) BADGE_MUST_CHECK;
/* Injects the clock and sleep (NULL restores the real ones). */
int badge_credential_set_clock(struct badge_credential *c, badge_clock_fn now_ms, badge_sleep_fn sleep_ms,
			       void *ctx) BADGE_MUST_CHECK;

/* A token for resource ("https://vault.azure.net"; a trailing "/.default" is removed). *token is
 * the caller's (badge_free_secret); *expires_on (may be NULL) gets its expiry, epoch seconds. */
int badge_credential_get_token(struct badge_credential *c, const char *resource, char **token,
			       int64_t *expires_on) BADGE_MUST_CHECK;

/* The source a managed-identity credential chose: "imds", "pod-identity", "app-service", or
 * "client-secret", "client-certificate", "access-token". */
const char *badge_credential_kind(const struct badge_credential *c);

/* Copies the message of the credential's last failure into buf (NUL-terminated, truncated to n).
 * A credential shared between threads keeps the last failure of any of them. */
void badge_credential_errmsg(struct badge_credential *c, char *buf, size_t n);

void badge_credential_free(struct badge_credential *c);

/* ---- Key Vault ---------------------------------------------------------------------------- */

struct badge_keyvault;

/* A client of the vault at vault_url ("https://myvault.vault.azure.net", or a path-style base
 * such as "https://server/vaults/myvault"; https only). cred is borrowed: it must outlive the
 * client (several clients may share one credential). The first request goes without a token;
 * the vault's 401 challenge (WWW-Authenticate: Bearer authorization="…", resource="…") names
 * the resource to get a token for; the vault's host must be a subdomain of that resource's host
 * (BADGE_E_CHALLENGE otherwise, no token is sent). Later requests carry the token up front; a
 * 401 then makes one retry with a fresh challenge. */
int badge_keyvault_new(struct badge_keyvault **out, const char *vault_url,
		       struct badge_credential *cred) BADGE_MUST_CHECK;
int badge_keyvault_set_ca_file(struct badge_keyvault *kv, const char *path) BADGE_MUST_CHECK;
/* "7.4" (default) or "2025-07-01" (or any 7.x). */
int badge_keyvault_set_api_version(struct badge_keyvault *kv, const char *version) BADGE_MUST_CHECK;
/* verify = 0 turns the challenge resource check off (as the Azure SDKs'
 * disableChallengeResourceVerification): for vaults addressed by IP or path-style URL. */
int badge_keyvault_set_challenge_verification(struct badge_keyvault *kv, int verify) BADGE_MUST_CHECK;

/* After a failure: the message, the HTTP status (0 when none) and the vault's error code
 * ("SecretNotFound"; "" when none). Valid until the next call on kv. */
const char *badge_keyvault_errmsg(const struct badge_keyvault *kv);
long badge_keyvault_http_status(const struct badge_keyvault *kv);
const char *badge_keyvault_error_code(const struct badge_keyvault *kv);

void badge_keyvault_free(struct badge_keyvault *kv);

/* Secrets. version NULL or "" means the latest. Every *json output (may be NULL when not
 * wanted) is the vault's JSON response (a SecretBundle, DeletedSecretBundle or an array of
 * items), caller-owned. */
int badge_keyvault_secret_get(struct badge_keyvault *kv, const char *name, const char *version, char **value,
			      char **json) BADGE_MUST_CHECK;
/* content_type may be NULL. */
int badge_keyvault_secret_set(struct badge_keyvault *kv, const char *name, const char *value,
			      const char *content_type, char **json) BADGE_MUST_CHECK;
/* All secrets' properties (nextLink followed), a JSON array of SecretItems. */
int badge_keyvault_secret_list(struct badge_keyvault *kv, char **json) BADGE_MUST_CHECK;
int badge_keyvault_secret_delete(struct badge_keyvault *kv, const char *name, char **json) BADGE_MUST_CHECK;
int badge_keyvault_secret_recover(struct badge_keyvault *kv, const char *name, char **json) BADGE_MUST_CHECK;

/* Keys. alg is the JWA name ("RS256", "PS256", "ES256", "RSA-OAEP", "RSA-OAEP-256", "RSA1_5").
 * sign/verify take the digest (already hashed); byte outputs are the caller's (badge_free). */
int badge_keyvault_key_get(struct badge_keyvault *kv, const char *name, const char *version,
			   char **json) BADGE_MUST_CHECK;
int badge_keyvault_key_sign(struct badge_keyvault *kv, const char *name, const char *version, const char *alg,
			    const uint8_t *digest, size_t digest_len, uint8_t **sig,
			    size_t *sig_len) BADGE_MUST_CHECK;
/* *valid is 1 when the signature verifies, 0 when it does not (both are BADGE_OK). */
int badge_keyvault_key_verify(struct badge_keyvault *kv, const char *name, const char *version,
			      const char *alg, const uint8_t *digest, size_t digest_len, const uint8_t *sig,
			      size_t sig_len, int *valid) BADGE_MUST_CHECK;
int badge_keyvault_key_encrypt(struct badge_keyvault *kv, const char *name, const char *version,
			       const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			       size_t *out_len) BADGE_MUST_CHECK;
int badge_keyvault_key_decrypt(struct badge_keyvault *kv, const char *name, const char *version,
			       const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			       size_t *out_len) BADGE_MUST_CHECK;
int badge_keyvault_key_wrap(struct badge_keyvault *kv, const char *name, const char *version, const char *alg,
			    const uint8_t *in, size_t in_len, uint8_t **out,
			    size_t *out_len) BADGE_MUST_CHECK;
int badge_keyvault_key_unwrap(struct badge_keyvault *kv, const char *name, const char *version,
			      const char *alg, const uint8_t *in, size_t in_len, uint8_t **out,
			      size_t *out_len) BADGE_MUST_CHECK;

/* Any other Key Vault operation: method, a path relative to the vault ("/keys/k1/create") or an
 * absolute URL on the same vault (a nextLink), an optional JSON body. The api-version is added
 * when the target has none. *http_status gets the status and *json the response body (NULL when
 * empty) for every HTTP answer, success or not: the return value is BADGE_OK whenever the vault
 * answered (after the challenge); an error status is the caller's to judge. */
int badge_keyvault_request(struct badge_keyvault *kv, const char *method, const char *path,
			   const char *body_json, long *http_status, char **json) BADGE_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif
