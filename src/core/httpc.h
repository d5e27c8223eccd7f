/* The HTTP client over libcurl: one call per request, bounded response size, TLS trust from a
 * CA file, optional client certificate, timeouts. Thread-safe (one easy handle per call; a
 * per-thread handle cache keeps connections alive). */
#ifndef BC_HTTPC_H
#define BC_HTTPC_H

#include <stddef.h>
#include "core/buf.h"

struct bc_httpc_req {
	const char *method;       /* "GET" (default), "POST", ... */
	const char *url;
	const char *const *headers; /* "Name: value" strings, NULL-terminated array, may be NULL */
	const char *body;
	size_t body_len;
	const char *ca_file;      /* trust anchors; NULL = system default */
	const char *unix_socket;  /* connect through a Unix socket instead */
	const char *cert_file;    /* client certificate (PEM chain) for mutual TLS, NULL = none */
	const char *key_file;     /* its private key (PEM); NULL = in cert_file */
	long timeout_ms;          /* whole request; 0 = 30 s */
	long connect_timeout_ms;  /* 0 = 5 s */
	size_t max_response;      /* 0 = BC_LIMIT_HTTPC_RESPONSE */
};

struct bc_httpc_res {
	long status;
	struct bc_buf body;
	char content_type[128];
	char www_authenticate[1024];
	long retry_after_s;       /* Retry-After in seconds, -1 when absent */
	long retry_after_ms;      /* the delay the server asked for, in milliseconds, -1 when none:
				   * retry-after-ms, else x-ms-retry-after-ms, else Retry-After
				   * (the Azure SDKs' order) */
};

void bc_httpc_res_init(struct bc_httpc_res *res);
void bc_httpc_res_release(struct bc_httpc_res *res);
/* Returns BC_OK when any HTTP response arrived (check res->status); BC_ERR_UNAVAILABLE when the
 * peer could not be reached or timed out; BC_ERR_LIMIT when the response was too large. */
int bc_httpc_do(const struct bc_httpc_req *req, struct bc_httpc_res *res, struct bc_error *err) BC_MUST_CHECK;
/* Percent-encodes s for a query value or form field (appends). */
int bc_httpc_escape(const char *s, struct bc_buf *out) BC_MUST_CHECK;

#endif
