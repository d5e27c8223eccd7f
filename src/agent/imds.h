/* The instance metadata endpoint's request rules, as pure functions over a request's method,
 * headers and decoded query (no sockets), so that they are unit-tested and fuzzed directly:
 * which requests are refused and with what, which identity a request names, the success and
 * error bodies, and the per-instance rate limiter. */
#ifndef AGENT_IMDS_H
#define AGENT_IMDS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/http.h"
#include "core/limits.h"

/* Two wire flavours: Azure VM IMDS (Metadata: true, api-version 2018-02-01+, msi_res_id) and the
 * App Service one (X-IDENTITY-HEADER secret, api-version 2019-08-01, mi_res_id, principal_id). */
enum imds_flavour { IMDS_FLAVOUR_IMDS = 0, IMDS_FLAVOUR_APPSERVICE };

enum imds_id_kind { IMDS_ID_DEFAULT = 0, IMDS_ID_CLIENT, IMDS_ID_OBJECT, IMDS_ID_RESOURCE };

/* What the rules need to know about one request; every pointer borrowed from it. */
struct imds_req_view {
	const char *method;
	const char *metadata;          /* value of Metadata, NULL when absent */
	size_t metadata_count;
	bool forwarded;                /* X-Forwarded-For or Forwarded present */
	const char *identity_header;   /* value of X-IDENTITY-HEADER, NULL when absent */
	size_t identity_header_count;
	const char *expected_secret;   /* App Service: the instance's secret (borrowed) */
	const struct bc_http_kv *query;
	size_t nquery;
};

/* A refusal: HTTP status and IMDS's {error, error_description}; strings are static. */
struct imds_reject {
	int status;
	const char *error;
	const char *description;
	bool list_versions; /* add "newest-versions" (bad or missing api-version) */
};

struct imds_token_query {
	const char *api_version; /* borrowed from the query */
	const char *resource;
	enum imds_id_kind kind;
	const char *id;          /* NULL for IMDS_ID_DEFAULT */
};

/* Checks a token request. 0 and *q filled, or -1 and *rej filled. */
int imds_check_token(enum imds_flavour fl, const struct imds_req_view *v, struct imds_token_query *q,
		     struct imds_reject *rej);
/* Checks a request to /metadata/instance or /metadata/versions (need_version false). */
int imds_check_metadata(const struct imds_req_view *v, bool need_version, struct imds_reject *rej);

/* Is version an api-version this endpoint knows; min is the earliest accepted ("2018-02-01"). */
bool imds_version_known(const char *version, const char *min);
/* The known versions, newest last, as a JSON array (new reference). */
json_t *imds_versions_json(void);

/* One identity of an instance, as the sync tells it. */
struct agent_identity {
	bool system_assigned;
	char object_id[37];
	char client_id[37];
	char tenant_id[37];
	char resource_id[BC_LIMIT_RESOURCE_ID + 1];
};

/* Picks the identity a checked query names among ids: the system-assigned one by default, else
 * the only user-assigned one. Returns the index, or -1 with *rej filled (never a 404: clients
 * retry those for 20 s). */
int imds_select_identity(const struct agent_identity *ids, size_t n, const struct imds_token_query *q,
			 struct imds_reject *rej);

/* A token as the directory's v1 endpoint gave it. */
struct imds_token {
	char *access_token; /* owned */
	int64_t expires_on;
	int64_t not_before;
	int64_t ext_expires_in; /* 0 = same as expires_in */
};
void imds_token_release(struct imds_token *t);
int imds_token_copy(struct imds_token *dst, const struct imds_token *src) BC_MUST_CHECK;

/* Appends the success body, every value a string, resource echoed as given. BC_ERR_INVALID
 * when a string is not UTF-8 (out then unchanged). */
int imds_token_body(const struct imds_token *t, const char *client_id, const char *resource, int64_t now,
		    struct bc_buf *out) BC_MUST_CHECK;
/* The error body {error, error_description} (+ newest-versions). */
json_t *imds_error_body(const struct imds_reject *rej);
/* Fills res from rej: JSON body, status, Retry-After when 429. */
void imds_reply_reject(struct bc_http_res *res, const struct imds_reject *rej);

/* Per-instance limiter: requests per second (a fixed one-second window on bc_now(), so tests
 * drive it with bc_clock_set) and requests in flight. All-zero is not valid: use init. */
struct imds_limiter {
	pthread_mutex_t mu;
	int64_t window;     /* the second the count belongs to */
	unsigned count;
	unsigned inflight;
	unsigned rate;        /* requests per second, 0 = unlimited */
	unsigned concurrency; /* in flight, 0 = unlimited */
};
void imds_limiter_init(struct imds_limiter *l, unsigned rate, unsigned concurrency);
void imds_limiter_release(struct imds_limiter *l);
/* 0: admitted (call imds_limiter_leave when done); > 0: refused, Retry-After in seconds. */
int imds_limiter_enter(struct imds_limiter *l);
void imds_limiter_leave(struct imds_limiter *l);

#endif
