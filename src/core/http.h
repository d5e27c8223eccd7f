/* The HTTP server adapter over libmicrohttpd: listeners (HTTP or HTTPS), a thread pool, request
 * size limits, route tables declared as data, percent-decoded query keys and values, tolerant
 * paths (leading `//` collapsed, trailing `/` ignored, interior empty segments kept so that an
 * empty Key Vault version segment still matches `{version}`), request ids, and one place that
 * turns a handler's response into bytes on the wire.
 *
 * Threading: handlers run on the pool's threads and may block briefly (a database read); a
 * handler that must wait long (a long poll) parks its request instead (bc_http_park). */
#ifndef BC_HTTP_H
#define BC_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/limits.h"

#define BC_HTTP_MAX_CAPTURES 8
#define BC_HTTP_MAX_RES_HEADERS 16

struct bc_http_kv {
	const char *key;
	const char *value;
};

struct bc_http_req {
	const char *method;     /* "GET", ... */
	const char *path;       /* normalised path, percent-decoded per segment, no query */
	const char *raw_target; /* the request target as received */
	const char *host;       /* Host header, NULL if absent */
	const char *client_ip;  /* textual peer address */
	const char *request_id; /* x-ms-client-request-id when sane, else generated; echoed */
	const char *body;       /* NUL-terminated; "" when empty */
	size_t body_len;
	const struct bc_http_kv *query; /* decoded key/value pairs in order, duplicates kept */
	size_t nquery;
	/* Route captures in pattern order: `{name}` segments, and the host label for host-matched
	 * mounts first (see bc_http_mount). A capture may be "" (empty segment). */
	const char *captures[BC_HTTP_MAX_CAPTURES];
	size_t ncaptures;
	const char *route;      /* the matched pattern (for logs and metrics) */
	int listener_tag;       /* the tag of the listener that accepted the request */
	void *conn_ctx;         /* per-listener user pointer (bc_http_listener.ctx) */
	void *priv;             /* adapter-private */
};

/* Header lookup, case-insensitive. count tells how many times the header appears. */
const char *bc_http_header(const struct bc_http_req *req, const char *name);
size_t bc_http_header_count(const struct bc_http_req *req, const char *name);
/* First value of query key (decoded), or NULL. count for duplicate detection. Keys compare
 * case-insensitively (Azure's services treat `Api-Version` as `api-version`). */
const char *bc_http_query(const struct bc_http_req *req, const char *key);
size_t bc_http_query_count(const struct bc_http_req *req, const char *key);
/* Parses an application/x-www-form-urlencoded body into pairs (bounded by BC_LIMIT_FORM_FIELDS).
 * The strings live in storage (caller releases it with bc_buf_release). */
int bc_http_form_parse(const char *body, size_t len, struct bc_http_kv *pairs, size_t max, size_t *n,
		       struct bc_buf *storage, struct bc_error *err) BC_MUST_CHECK;
/* Percent-decodes (and '+' to space when plus_space) in place; returns new length or -1 on a
 * malformed escape (s is then unspecified). Writes a NUL at the new length when it shrank. A
 * decoded %00 is kept: callers treating the result as a C string must check for it. */
long bc_http_pct_decode(char *s, size_t len, bool plus_space);

struct bc_http_res {
	int status;                /* 0 = not set (500) */
	const char *content_type;  /* static string; default application/json; charset=utf-8 */
	struct bc_buf body;
	struct bc_http_kv headers[BC_HTTP_MAX_RES_HEADERS]; /* owned copies */
	size_t nheaders;
	const char *reason;        /* static reason phrase override, NULL = standard (libmicrohttpd
				    * 0.9.75 always sends its standard phrase, e.g. "400 Bad Request") */
	bool body_set;             /* set by bc_http_res_json/_text: an empty error body was chosen;
				    * otherwise an error status without a body gets a JSON error body */
};

/* Adds a response header (copied). */
int bc_http_res_header(struct bc_http_res *res, const char *key, const char *value);
/* Sets status and a JSON body. Steals the reference to body (may be NULL: empty body). */
void bc_http_res_json(struct bc_http_res *res, int status, json_t *body);
void bc_http_res_text(struct bc_http_res *res, int status, const char *content_type, const char *text);
/* Sets status and content type (static; NULL = JSON) and returns the emptied body for the
 * caller to write into (a handler that renders its own JSON). */
struct bc_buf *bc_http_res_raw(struct bc_http_res *res, int status, const char *content_type);

typedef void (*bc_http_handler)(struct bc_http_req *req, struct bc_http_res *res, void *ctx);

/* A route: method ("*" = any), path pattern ("/subscriptions/{sub}/resourceGroups/{rg}"),
 * handler. Literal segments match case-insensitively (ARM paths are case-insensitive).
 * `early`, when set, is called once the headers are in, before any body is read; if it sets
 * res->status the request is answered with that response and the handler is not called
 * (the Key Vault 401 challenge is answered before the body is read). */
struct bc_route {
	const char *method;
	const char *pattern;
	bc_http_handler handler;
	bc_http_handler early;
	size_t max_body; /* 0 = BC_LIMIT_HTTP_BODY */
};

struct bc_http_server;

struct bc_http_listener {
	const char *address; /* "127.0.0.1:0", "[::1]:8443", "0.0.0.0:443"; ignored when fd >= 0 */
	int fd;              /* an already bound listening socket (e.g. made inside a netns), or -1 */
	const char *tls_cert_pem; /* NULL = plain HTTP; the chain, leaf first */
	const char *tls_key_pem;
	unsigned threads;    /* pool size, 0 = 2 */
	int tag;             /* copied to req->listener_tag */
	void *ctx;           /* copied to req->conn_ctx */
	size_t max_connections; /* 0 = BC_LIMIT_HTTP_CONNECTIONS */
};

struct bc_http_server *bc_http_server_new(void);
/* Mounts routes. host_suffix: NULL matches any Host; ".vault.badge.internal" matches Hosts
 * "<label>.vault.badge.internal[:port]" (case-insensitive) and puts <label> first in
 * captures. prefix: a pattern prepended to each route pattern ("/vaults/{vault}"), may be NULL.
 * Host-matched mounts are tried before host-agnostic ones. The route array and ctx are
 * borrowed and must outlive the server. */
int bc_http_mount(struct bc_http_server *srv, const char *host_suffix, const char *prefix,
		  const struct bc_route *routes, size_t n, void *ctx) BC_MUST_CHECK;
/* Handler for requests no route matches (NULL = a JSON 404 {"error":{"code":"NotFound"}}). */
void bc_http_set_fallback(struct bc_http_server *srv, bc_http_handler fn, void *ctx);
/* Optional hook called after every response is queued (access log, metrics). */
typedef void (*bc_http_observer)(const struct bc_http_req *req, int status, double duration_ms, void *ctx);
void bc_http_set_observer(struct bc_http_server *srv, bc_http_observer fn, void *ctx);
/* Starts a listener. Returns its bound port in *port (useful with port 0). Can be called
 * several times (several listeners share the routes). Mount routes and set hooks before the
 * first call. A listener fd (l->fd >= 0) is taken over on success (the server closes it); on failure
 * it stays the caller's. */
int bc_http_listen(struct bc_http_server *srv, const struct bc_http_listener *l, int *port,
		   struct bc_error *err) BC_MUST_CHECK;
/* Stops every listener: no new connections, parked requests are resumed (BC_HTTP_STOPPING) and
 * answered, in-flight requests finish. */
void bc_http_server_stop(struct bc_http_server *srv);
void bc_http_server_free(struct bc_http_server *srv);

/* ---------- parked requests (long polls) ----------
 *
 * A handler may park its request instead of answering: the handler returns, the pool thread is
 * free, and the connection waits (MHD_suspend_connection) until one of
 *   - bc_http_resume(p, res) from any thread, with the response to send;
 *   - bc_http_resume(p, NULL) or bc_http_waitq_wake(q): the request's resume function fills the
 *     response on a pool thread (why = BC_HTTP_RESUMED);
 *   - its timeout (why = BC_HTTP_TIMEOUT), or the server stopping (why = BC_HTTP_STOPPING).
 * The resume function runs like a handler (req is intact, res starts empty) and may park the
 * request again (to wait for the rest of a deadline after a change that did not concern it).
 * bc_http_dispatch_test supports parking too: it blocks until the request is resumed. */
struct bc_http_parked; /* a parked request, reference-counted */
struct bc_http_waitq;  /* a set of parked requests woken together, like a condition variable */

enum bc_http_wake { BC_HTTP_RESUMED, BC_HTTP_TIMEOUT, BC_HTTP_STOPPING };
typedef void (*bc_http_resume_fn)(struct bc_http_req *req, struct bc_http_res *res, enum bc_http_wake why,
				  void *arg);

/* Parks req (call from a handler, at most once per call, leaving res alone). q may be NULL.
 * timeout_ms > 0 (capped at BC_LIMIT_HTTP_PARK_MS). fn is required; arg is borrowed and must
 * outlive the parked request. When handle is not NULL it receives a reference the caller
 * releases with bc_http_parked_release. Fails with BC_ERR_UNAVAILABLE when the server is
 * stopping, BC_ERR_LIMIT over BC_LIMIT_HTTP_PARKED: the handler then answers itself. */
int bc_http_park(struct bc_http_req *req, struct bc_http_waitq *q, int64_t timeout_ms, bc_http_resume_fn fn,
		 void *arg, struct bc_http_parked **handle) BC_MUST_CHECK;
/* Any thread. res: the response to send (its contents are taken, res is left empty, even on
 * failure), or NULL to have the resume function fill it. BC_ERR_NOT_FOUND when the request is
 * no longer parked (already resumed, timed out, gone). */
int bc_http_resume(struct bc_http_parked *p, struct bc_http_res *res);
void bc_http_parked_release(struct bc_http_parked *p); /* NULL-safe */

struct bc_http_waitq *bc_http_waitq_new(void);
/* Resumes every request parked on q (each one's resume function fills its response). Any thread. */
void bc_http_waitq_wake(struct bc_http_waitq *q);
/* Requests still parked on q are detached from it (their timeout still ends them). */
void bc_http_waitq_free(struct bc_http_waitq *q);
/* Requests parked on the server now (tests, metrics). */
size_t bc_http_parked_count(struct bc_http_server *srv);

/* Runs a request through the routes without a socket (unit tests). host may be NULL. */
int bc_http_dispatch_test(struct bc_http_server *srv, const char *method, const char *target,
			  const char *host, const struct bc_http_kv *headers, size_t nheaders,
			  const char *body, size_t body_len, struct bc_http_res *res) BC_MUST_CHECK;
void bc_http_res_release(struct bc_http_res *res);

#endif
