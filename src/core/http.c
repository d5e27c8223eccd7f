/* The HTTP server adapter over libmicrohttpd (see http.h).
 *
 * One request is one struct reqctx, created by MHD's URI log callback (which sees the raw
 * request target before MHD unescapes anything) and freed by the completion callback. The same
 * request pipeline (parse target, route, early hook, body cap, handler, finalise response) runs
 * for real connections and for bc_http_dispatch_test. */
#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

#define JSON_CT "application/json; charset=utf-8"
#define REQID_MAX 64
#define DNS_LABEL_MAX 63
/* MHD's per-connection pool holds the request line and headers, the read buffer (body pieces)
 * and the response headers, so it needs room beyond the header bytes we accept. */
#define MHD_POOL_BYTES (2 * BC_LIMIT_HTTP_HEADER_BYTES)
/* Body bytes read and dropped after a chunked body went over its cap, before we give up on
 * answering and close the connection. */
#define DRAIN_MAX BC_LIMIT_HTTP_BODY

/* A route pattern split into segments; a NULL segment is a `{capture}`. */
struct pattern {
	char *text; /* owned; segs point into it */
	char *segs[BC_LIMIT_HTTP_PATH_SEGMENTS];
	size_t nsegs;
	size_t ncaps;
};

struct croute {
	const struct bc_route *route; /* borrowed from the mount's table */
	struct pattern pat;
};

struct mount {
	char *host_suffix; /* owned, NULL = any host */
	struct pattern prefix;
	struct croute *routes; /* owned array */
	size_t n;
	void *ctx; /* borrowed */
};

struct listener {
	struct bc_http_server *srv;
	struct MHD_Daemon *daemon;
	char *cert; /* owned copies, alive as long as the daemon */
	char *key;
	int tag;
	void *ctx;
};

/* Parked requests: every field below, in each bc_http_parked, bc_http_waitq and the server's
 * parking fields, is guarded by park_mu. MHD is never called with park_mu held. */
enum pstate {
	P_PENDING,    /* parked by the running handler, not suspended yet */
	P_SUSPENDING, /* MHD_suspend_connection is being called */
	P_SUSPENDED,
	P_WOKEN,      /* resumed (or to be): waits for its pool thread */
	P_DONE,       /* taken by its pool thread, or the request is gone */
};

struct bc_http_parked {
	struct bc_http_server *srv;
	struct MHD_Connection *conn; /* NULL in bc_http_dispatch_test */
	struct bc_http_waitq *q;     /* borrowed, NULL when not on a queue */
	struct bc_http_parked *prev, *next;   /* the server's parked list (until woken) */
	struct bc_http_parked *qprev, *qnext; /* q's list (until woken) */
	int64_t deadline;            /* bc_now_ms */
	enum pstate state;
	enum bc_http_wake why;
	bool have_res;
	struct bc_http_res res;      /* owned: the response given to bc_http_resume */
	bc_http_resume_fn fn;
	void *arg;                   /* borrowed */
	unsigned refs;               /* the request's, and the caller's handle */
};

struct bc_http_waitq {
	struct bc_http_parked *head;
};

struct bc_http_server {
	/* parking (guarded by park_mu) */
	struct bc_http_parked *parked; /* suspended or about to be; not woken */
	size_t nparked;                /* parked and not yet taken back by a pool thread */
	size_t nlive;                  /* requests ever parked and not yet completed (sent) */
	_Atomic bool stopping;         /* also read without park_mu (send_response) */
	_Atomic size_t nrequests;      /* requests MHD read and has not completed: a stop drains them */
	bool timer_running, timer_stop;
	pthread_t timer;
	pthread_cond_t timer_cond;     /* the timer thread: an earlier deadline, or stop */
	struct mount *mounts; /* owned array */
	size_t nmounts;
	bc_http_handler fallback;
	void *fallback_ctx;
	bc_http_observer observer;
	void *observer_ctx;
	struct listener **listeners; /* owned */
	size_t nlisteners;
};

enum phase { PH_NEW, PH_BODY, PH_PARKED, PH_DONE };

struct reqctx {
	struct bc_http_server *srv;
	struct listener *lst; /* NULL in bc_http_dispatch_test */
	struct bc_http_req req;
	struct bc_http_res res;
	char *target; /* owned: the raw target */
	char *work;   /* owned: decoded copy; segments and query point into it */
	char *path;   /* owned: normalised path */
	char *abs_host; /* owned: authority of an absolute-form target */
	char *segs[BC_LIMIT_HTTP_PATH_SEGMENTS];
	size_t nsegs;
	struct bc_http_kv query[BC_LIMIT_HTTP_QUERY_PARAMS];
	struct bc_http_kv hdrs[BC_LIMIT_HTTP_HEADERS]; /* borrowed from MHD or the test caller */
	size_t nhdrs;
	bool hdrs_over;
	const struct croute *route;
	const struct mount *mount;
	struct bc_buf body;
	size_t max_body;
	size_t drained; /* body bytes dropped after the cap */
	enum phase phase;
	struct bc_http_parked *park; /* the request's reference; NULL when never parked */
	struct MHD_Connection *conn; /* NULL in bc_http_dispatch_test */
	gnutls_session_t corked;     /* the TLS session whose records wait for on_completed */
	bool decided; /* res holds the answer; the handler is not called */
	bool client_reqid;
	int64_t t0;
	char reqid[REQID_MAX + 1];
	char label[DNS_LABEL_MAX + 1];
	char ip[INET6_ADDRSTRLEN];
	size_t inl_used;
	char inl[1024]; /* the target, its decoded copy and the path when they fit (most requests) */
};

/* Per-request strings: from the request's own storage when they fit, else the heap. */
static char *req_alloc(struct reqctx *c, size_t n)
{
	if (n <= sizeof(c->inl) - c->inl_used) {
		char *p = c->inl + c->inl_used;
		c->inl_used += n;
		return p;
	}
	return malloc(n);
}

static char *req_strdup(struct reqctx *c, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = req_alloc(c, n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void req_strfree(struct reqctx *c, char *p)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)c->inl;
	if (a < lo || a >= lo + sizeof(c->inl))
		free(p);
}

static void park_forget(struct reqctx *c);
static bool park_settle(struct reqctx *c);

/* ---------- responses ---------- */

static void res_body_reset(struct bc_http_res *res)
{
	bc_buf_release(&res->body);
}

int bc_http_res_header(struct bc_http_res *res, const char *key, const char *value)
{
	if (res->nheaders >= BC_HTTP_MAX_RES_HEADERS)
		return BC_ERR_LIMIT;
	if (strpbrk(key, "\r\n:") || strpbrk(value, "\r\n"))
		return BC_ERR_INVALID;
	char *k = strdup(key), *v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return BC_ERR_NOMEM;
	}
	res->headers[res->nheaders].key = k;
	res->headers[res->nheaders].value = v;
	res->nheaders++;
	return BC_OK;
}

void bc_http_res_json(struct bc_http_res *res, int status, json_t *body)
{
	res->status = status;
	res->content_type = NULL;
	res->body_set = true;
	res_body_reset(res);
	if (!body)
		return;
	int rc = bc_json_dump(body, &res->body);
	json_decref(body);
	if (rc != BC_OK) {
		bc_log_error("http: cannot serialise a response body");
		res_body_reset(res);
		res->status = 500;
		res->body_set = false;
	}
}

struct bc_buf *bc_http_res_raw(struct bc_http_res *res, int status, const char *content_type)
{
	res->status = status;
	res->content_type = content_type;
	res->body_set = true;
	res_body_reset(res);
	return &res->body;
}

void bc_http_res_text(struct bc_http_res *res, int status, const char *content_type, const char *text)
{
	res->status = status;
	res->content_type = content_type ? content_type : "text/plain; charset=utf-8";
	res->body_set = true;
	res_body_reset(res);
	if (text && bc_buf_appends(&res->body, text) != BC_OK) {
		res_body_reset(res);
		res->status = 500;
		res->body_set = false;
	}
}

void bc_http_res_release(struct bc_http_res *res)
{
	for (size_t i = 0; i < res->nheaders; i++) {
		free((char *)res->headers[i].key);
		free((char *)res->headers[i].value);
	}
	res->nheaders = 0;
	bc_buf_release(&res->body);
}

static const char *error_code(int status)
{
	switch (status) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 409: return "Conflict";
	case 413: return "PayloadTooLarge";
	case 414: return "UriTooLong";
	case 429: return "TooManyRequests";
	case 431: return "RequestHeaderFieldsTooLarge";
	case 503: return "ServiceUnavailable";
	default: return status >= 500 ? "InternalServerError" : "Error";
	}
}

/* The adapter's own errors: Azure's {"error":{"code","message"}}. */
static void res_error(struct bc_http_res *res, int status, const char *message)
{
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", error_code(status), "message", message);
	bc_http_res_json(res, status, j);
	if (!j)
		res->body_set = false;
}

/* ---------- percent-decoding and forms ---------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long bc_http_pct_decode(char *s, size_t len, bool plus_space)
{
	if (len > LONG_MAX)
		return -1;
	size_t i = 0, o = 0;
	while (i < len) {
		char ch = s[i];
		if (ch == '%') {
			if (len - i < 3)
				return -1;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			s[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else {
			s[o++] = (ch == '+' && plus_space) ? ' ' : ch;
			i++;
		}
	}
	if (o < len)
		s[o] = '\0';
	return (long)o;
}

/* Decodes a NUL-terminated string in place; false on a bad escape or a decoded NUL. */
static bool decode_cstr(char *s, bool plus_space)
{
	size_t len = strlen(s);
	long n = bc_http_pct_decode(s, len, plus_space);
	return n >= 0 && memchr(s, '\0', (size_t)n) == NULL;
}

/* Splits "k=v&k2=v2" in place into decoded pairs. Empty fields ("a=1&&b") are skipped.
 * Returns 0, or BC_ERR_INVALID (bad escape, NUL), or BC_ERR_LIMIT (more than max). */
static int split_pairs(char *s, struct bc_http_kv *pairs, size_t max, size_t *n)
{
	size_t k = 0;
	while (s) {
		char *amp = strchr(s, '&');
		if (amp)
			*amp = '\0';
		if (*s) {
			if (k == max)
				return BC_ERR_LIMIT;
			char *eq = strchr(s, '=');
			const char *v = "";
			if (eq) {
				*eq = '\0';
				if (!decode_cstr(eq + 1, true))
					return BC_ERR_INVALID;
				v = eq + 1;
			}
			if (!decode_cstr(s, true))
				return BC_ERR_INVALID;
			pairs[k].key = s;
			pairs[k].value = v;
			k++;
		}
		s = amp ? amp + 1 : NULL;
	}
	*n = k;
	return BC_OK;
}

int bc_http_form_parse(const char *body, size_t len, struct bc_http_kv *pairs, size_t max, size_t *n,
		       struct bc_buf *storage, struct bc_error *err)
{
	if (max > BC_LIMIT_FORM_FIELDS)
		max = BC_LIMIT_FORM_FIELDS;
	if (len >= BC_BUF_DEFAULT_CAP)
		return bc_error_set(err, BC_ERR_LIMIT, "form body too large");
	if (memchr(body, '\0', len))
		return bc_error_set(err, BC_ERR_INVALID, "form body holds a NUL byte");
	struct bc_buf local;
	bc_buf_init(&local, len + 1);
	if (bc_buf_append(&local, body, len) != BC_OK)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory parsing a form");
	size_t k = 0;
	int rc = split_pairs(local.data ? local.data : NULL, pairs, max, &k);
	if (rc == BC_ERR_LIMIT) {
		bc_buf_release(&local);
		return bc_error_set(err, rc, "form has more than %zu fields", max);
	}
	if (rc) {
		bc_buf_release(&local);
		return bc_error_set(err, rc, "malformed percent-encoding in form");
	}
	bc_buf_release(storage);
	*storage = local;
	*n = k;
	return BC_OK;
}

/* ---------- request accessors ---------- */

const char *bc_http_header(const struct bc_http_req *req, const char *name)
{
	const struct reqctx *c = req->priv;
	for (size_t i = 0; c && i < c->nhdrs; i++)
		if (strcasecmp(c->hdrs[i].key, name) == 0)
			return c->hdrs[i].value;
	return NULL;
}

size_t bc_http_header_count(const struct bc_http_req *req, const char *name)
{
	const struct reqctx *c = req->priv;
	size_t n = 0;
	for (size_t i = 0; c && i < c->nhdrs; i++)
		if (strcasecmp(c->hdrs[i].key, name) == 0)
			n++;
	return n;
}

const char *bc_http_query(const struct bc_http_req *req, const char *key)
{
	for (size_t i = 0; i < req->nquery; i++)
		if (strcasecmp(req->query[i].key, key) == 0)
			return req->query[i].value;
	return NULL;
}

size_t bc_http_query_count(const struct bc_http_req *req, const char *key)
{
	size_t n = 0;
	for (size_t i = 0; i < req->nquery; i++)
		if (strcasecmp(req->query[i].key, key) == 0)
			n++;
	return n;
}

/* ---------- the server and its routes ---------- */

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv; /* broadcast on every wake and every request taken back */
static pthread_once_t park_once = PTHREAD_ONCE_INIT;

static void monotonic_cond(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static void park_init(void)
{
	monotonic_cond(&park_cv);
}

struct bc_http_server *bc_http_server_new(void)
{
	pthread_once(&park_once, park_init);
	struct bc_http_server *srv = calloc(1, sizeof(struct bc_http_server));
	if (srv)
		monotonic_cond(&srv->timer_cond);
	return srv;
}

/* Splits a pattern ("/a/{b}/c") into segments; empty segments in patterns are ignored. */
static int pattern_compile(struct pattern *p, const char *text)
{
	p->text = strdup(text ? text : "");
	if (!p->text)
		return BC_ERR_NOMEM;
	for (char *save = NULL, *s = strtok_r(p->text, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (p->nsegs == BC_LIMIT_HTTP_PATH_SEGMENTS)
			return BC_ERR_LIMIT;
		size_t len = strlen(s);
		bool cap = len >= 2 && s[0] == '{' && s[len - 1] == '}';
		p->segs[p->nsegs++] = cap ? NULL : s;
		p->ncaps += cap;
	}
	return BC_OK;
}

static void mount_release(struct mount *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->routes[i].pat.text);
	free(m->routes);
	free(m->prefix.text);
	free(m->host_suffix);
}

int bc_http_mount(struct bc_http_server *srv, const char *host_suffix, const char *prefix,
		  const struct bc_route *routes, size_t n, void *ctx)
{
	struct mount m = {.ctx = ctx, .n = n};
	int rc = BC_ERR_NOMEM;
	if (host_suffix && !(m.host_suffix = strdup(host_suffix)))
		goto fail;
	if ((rc = pattern_compile(&m.prefix, prefix)) != BC_OK)
		goto fail;
	rc = BC_ERR_NOMEM;
	if (n && !(m.routes = calloc(n, sizeof(*m.routes))))
		goto fail;
	size_t base = (host_suffix != NULL) + m.prefix.ncaps;
	for (size_t i = 0; i < n; i++) {
		m.routes[i].route = &routes[i];
		if ((rc = pattern_compile(&m.routes[i].pat, routes[i].pattern)) != BC_OK)
			goto fail;
		rc = BC_ERR_LIMIT;
		if (m.prefix.nsegs + m.routes[i].pat.nsegs > BC_LIMIT_HTTP_PATH_SEGMENTS ||
		    base + m.routes[i].pat.ncaps > BC_HTTP_MAX_CAPTURES)
			goto fail;
	}
	rc = BC_ERR_NOMEM;
	struct mount *grown = realloc(srv->mounts, (srv->nmounts + 1) * sizeof(*grown));
	if (!grown)
		goto fail;
	srv->mounts = grown;
	srv->mounts[srv->nmounts++] = m;
	return BC_OK;
fail:
	bc_log_error("http: cannot mount routes under %s: %s", prefix ? prefix : "/", bc_status_name(rc));
	mount_release(&m);
	return rc;
}

void bc_http_set_fallback(struct bc_http_server *srv, bc_http_handler fn, void *ctx)
{
	srv->fallback = fn;
	srv->fallback_ctx = ctx;
}

void bc_http_set_observer(struct bc_http_server *srv, bc_http_observer fn, void *ctx)
{
	srv->observer = fn;
	srv->observer_ctx = ctx;
}

/* ---------- target parsing ---------- */

/* Splits the path (starting at '/' or empty) into decoded segments: leading slashes collapse,
 * one trailing slash is ignored, interior empty segments are kept. Returns 0 or an HTTP status. */
static int split_path(struct reqctx *c, char *p, const char **why)
{
	while (*p == '/')
		p++;
	while (*p) {
		char *e = strchr(p, '/');
		if (e)
			*e = '\0';
		if (c->nsegs == BC_LIMIT_HTTP_PATH_SEGMENTS) {
			*why = "too many path segments";
			return 404;
		}
		if (!decode_cstr(p, false)) {
			*why = "malformed percent-encoding in the path";
			return 400;
		}
		c->segs[c->nsegs++] = p;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static int build_path(struct reqctx *c, size_t cap)
{
	if (!(c->path = req_alloc(c, cap + 2)))
		return 500;
	size_t o = 0;
	for (size_t i = 0; i < c->nsegs; i++) {
		size_t l = strlen(c->segs[i]);
		c->path[o++] = '/';
		memcpy(c->path + o, c->segs[i], l);
		o += l;
	}
	if (o == 0)
		c->path[o++] = '/';
	c->path[o] = '\0';
	c->req.path = c->path;
	return 0;
}

/* Parses the raw target into path segments and query pairs. Returns 0 or an HTTP status. */
static int parse_target(struct reqctx *c, const char **why)
{
	size_t tlen = strlen(c->target);
	if (tlen > BC_LIMIT_HTTP_URL) {
		*why = "request target too long";
		return 414;
	}
	if (!(c->work = req_strdup(c, c->target)))
		return 500;
	char *p = c->work;
	p[strcspn(p, "#")] = '\0';
	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		/* absolute-form (a request made through a proxy): the path is taken from it and its
		 * authority stands in for Host (RFC 9112 section 3.2.2) */
		p = strstr(p, "://") + 3;
		size_t alen = strcspn(p, "/?");
		if (alen == 0 || !(c->abs_host = strndup(p, alen))) {
			*why = "invalid request target";
			return alen ? 500 : 400;
		}
		p += alen;
	} else if (*p != '/') {
		*why = "invalid request target";
		return 400;
	}
	char *q = strchr(p, '?');
	if (q)
		*q++ = '\0';
	int st = split_path(c, p, why);
	if (st)
		return st;
	if ((st = build_path(c, tlen)))
		return st;
	int rc = split_pairs(q, c->query, BC_LIMIT_HTTP_QUERY_PARAMS, &c->req.nquery);
	if (rc) {
		*why = rc == BC_ERR_LIMIT ? "too many query parameters" : "malformed percent-encoding in the query";
		c->req.nquery = 0;
		return 400;
	}
	c->req.query = c->query;
	return 0;
}

/* ---------- routing ---------- */

/* Host without its port ("[::1]:8443" -> "::1"), into out. */
static void host_only(const char *host, char *out, size_t outlen)
{
	size_t n;
	if (host[0] == '[') {
		host++;
		n = strcspn(host, "]");
	} else {
		n = strcspn(host, ":");
	}
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, host, n);
	out[n] = '\0';
}

static bool host_label(const char *host, const char *suffix, char *label)
{
	char h[256];
	if (!host)
		return false;
	host_only(host, h, sizeof(h));
	size_t hl = strlen(h), sl = strlen(suffix);
	if (hl <= sl || strcasecmp(h + hl - sl, suffix) != 0)
		return false;
	size_t ll = hl - sl;
	if (ll > DNS_LABEL_MAX || h[0] == '-' || h[ll - 1] == '-')
		return false;
	for (size_t i = 0; i < ll; i++) {
		unsigned char ch = (unsigned char)h[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
		if (!ok)
			return false;
	}
	memcpy(label, h, ll);
	label[ll] = '\0';
	return true;
}

static bool segs_match(const struct pattern *p, char *const *segs)
{
	for (size_t i = 0; i < p->nsegs; i++)
		if (p->segs[i] && strcasecmp(p->segs[i], segs[i]) != 0)
			return false;
	return true;
}

static void add_captures(struct bc_http_req *req, const struct pattern *p, char *const *segs)
{
	for (size_t i = 0; i < p->nsegs; i++)
		if (!p->segs[i] && req->ncaptures < BC_HTTP_MAX_CAPTURES)
			req->captures[req->ncaptures++] = segs[i];
}

static bool method_match(const char *route_method, const char *method)
{
	return strcmp(route_method, "*") == 0 || strcmp(route_method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static void allow_add(struct bc_buf *allow, const char *method)
{
	const char *s = bc_buf_cstr(allow);
	size_t ml = strlen(method);
	for (const char *f = strstr(s, method); f; f = strstr(f + 1, method))
		if ((f == s || f[-1] == ' ') && (f[ml] == ',' || f[ml] == '\0'))
			return;
	if ((allow->len && bc_buf_appends(allow, ", ") != BC_OK) || bc_buf_appends(allow, method) != BC_OK)
		return; /* the Allow header is a courtesy */
}

/* One pass over the mounts. host_pass: only mounts with a host suffix matching the request. */
static bool route_pass(struct reqctx *c, char *const *segs, size_t nsegs, bool host_pass, struct bc_buf *allow)
{
	const char *host = c->abs_host ? c->abs_host : c->req.host;
	for (size_t i = 0; i < c->srv->nmounts; i++) {
		const struct mount *m = &c->srv->mounts[i];
		char label[DNS_LABEL_MAX + 1];
		if (host_pass != (m->host_suffix != NULL))
			continue;
		if (host_pass && !host_label(host, m->host_suffix, label))
			continue;
		if (nsegs < m->prefix.nsegs || !segs_match(&m->prefix, segs))
			continue;
		for (size_t k = 0; k < m->n; k++) {
			const struct croute *r = &m->routes[k];
			if (m->prefix.nsegs + r->pat.nsegs != nsegs || !segs_match(&r->pat, segs + m->prefix.nsegs))
				continue;
			if (!method_match(r->route->method, c->req.method)) {
				allow_add(allow, r->route->method);
				continue;
			}
			c->req.ncaptures = 0;
			if (host_pass) {
				memcpy(c->label, label, sizeof(label));
				c->req.captures[c->req.ncaptures++] = c->label;
			}
			add_captures(&c->req, &m->prefix, segs);
			add_captures(&c->req, &r->pat, segs + m->prefix.nsegs);
			c->route = r;
			c->mount = m;
			c->req.route = r->route->pattern;
			return true;
		}
	}
	return false;
}

static bool route_find(struct reqctx *c, char *const *segs, size_t nsegs, struct bc_buf *allow)
{
	return route_pass(c, segs, nsegs, true, allow) || route_pass(c, segs, nsegs, false, allow);
}

/* Finds the route; on failure decides the answer (404, 405 or the fallback's). */
static void route_request(struct reqctx *c)
{
	struct bc_buf allow;
	bc_buf_init(&allow, 256);
	bool found = route_find(c, c->segs, c->nsegs, &allow);
	if (!found) {
		/* "/keys/k1//sign" first tries {version} = ""; a table without such a route gets
		 * the path with the empty segments removed */
		char *dense[BC_LIMIT_HTTP_PATH_SEGMENTS];
		size_t nd = 0;
		for (size_t i = 0; i < c->nsegs; i++)
			if (c->segs[i][0])
				dense[nd++] = c->segs[i];
		if (nd != c->nsegs)
			found = route_find(c, dense, nd, &allow);
	}
	if (found) {
		size_t mb = c->route->route->max_body;
		c->max_body = mb ? mb : BC_LIMIT_HTTP_BODY;
	} else if (allow.len) {
		res_error(&c->res, 405, "the method is not allowed on this resource");
		if (bc_http_res_header(&c->res, "Allow", bc_buf_cstr(&allow)) != BC_OK)
			bc_log_debug("http: cannot add an Allow header");
		c->decided = true;
	} else if (c->srv->fallback) {
		c->max_body = BC_LIMIT_HTTP_BODY;
	} else {
		res_error(&c->res, 404, "no resource matches this path");
		c->decided = true;
	}
	bc_buf_release(&allow);
}

/* ---------- the request pipeline ---------- */

static bool reqid_sane(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > REQID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return true;
}

/* A request id in UUID v4 form. Ids must be unique, not unpredictable: a per-thread generator
 * seeded once from the CSPRNG (splitmix64 over a counter) costs nothing next to a RAND_bytes
 * call per request. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void reqid_new(char out[37])
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	if (!seeded) {
		if (bc_random(&state, sizeof(state)) != BC_OK)
			state = (uint64_t)bc_now_ms() ^ (uint64_t)(uintptr_t)&state;
		seeded = true;
	}
	uint8_t b[16];
	uint64_t hi = splitmix64(&state), lo = splitmix64(&state);
	memcpy(b, &hi, 8);
	memcpy(b + 8, &lo, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

static void decide_error(struct reqctx *c, int status, const char *why)
{
	res_error(&c->res, status, why);
	c->decided = true;
}

/* Everything that needs only the request line and headers: ids, target, route, early hook. */
static void req_begin(struct reqctx *c)
{
	c->req.priv = c;
	c->req.raw_target = c->target;
	c->req.body = "";
	c->req.host = bc_http_header(&c->req, "Host");
	const char *given = bc_http_header(&c->req, "x-ms-client-request-id");
	if (given && reqid_sane(given)) {
		snprintf(c->reqid, sizeof(c->reqid), "%s", given);
		c->client_reqid = true;
	} else {
		reqid_new(c->reqid);
	}
	c->req.request_id = c->reqid;
	c->req.path = "/";
	if (c->hdrs_over) {
		decide_error(c, 431, "too many header fields");
		return;
	}
	const char *why = "invalid request";
	int st = parse_target(c, &why);
	if (st) {
		decide_error(c, st, st == 500 ? "out of memory" : why);
		return;
	}
	if (c->abs_host)
		c->req.host = c->abs_host;
	route_request(c);
	if (c->decided || !c->route || !c->route->route->early)
		return;
	c->route->route->early(&c->req, &c->res, c->mount->ctx);
	if (c->res.status)
		c->decided = true;
}

/* Runs the handler unless the answer is decided. */
static void run_handler(struct reqctx *c)
{
	if (c->decided)
		return;
	c->req.body = bc_buf_cstr(&c->body);
	c->req.body_len = c->body.len;
	if (c->route)
		c->route->route->handler(&c->req, &c->res, c->mount->ctx);
	else
		c->srv->fallback(&c->req, &c->res, c->srv->fallback_ctx);
}

/* Completes the response: a valid status, an error body, the request id headers. */
static void req_finish(struct reqctx *c)
{
	struct bc_http_res *r = &c->res;
	if (r->status < 100 || r->status > 999) {
		bc_log(BC_LOG_ERROR, c->reqid, "http: %s %s: the handler set no valid status (%d)", c->req.method,
		       c->req.route ? c->req.route : c->req.path, r->status);
		res_error(r, 500, "the server could not answer this request");
	}
	if (r->status >= 400 && r->body.len == 0 && !r->body_set)
		res_error(r, r->status, MHD_get_reason_phrase_for((unsigned)r->status));
	if (bc_http_res_header(r, "x-ms-request-id", c->reqid) != BC_OK ||
	    (c->client_reqid && bc_http_res_header(r, "x-ms-client-request-id", c->reqid) != BC_OK))
		bc_log(BC_LOG_DEBUG, c->reqid, "http: no room for the request id headers");
}

static void observe(struct reqctx *c)
{
	if (!c->srv->observer)
		return;
	double ms = (double)(bc_now_ms() - c->t0);
	c->srv->observer(&c->req, c->res.status, ms, c->srv->observer_ctx);
}

static void reqctx_free(struct reqctx *c)
{
	if (!c)
		return;
	park_forget(c);
	bc_http_res_release(&c->res);
	bc_buf_release(&c->body);
	req_strfree(c, c->target);
	req_strfree(c, c->work);
	req_strfree(c, c->path);
	free(c->abs_host);
	free(c);
}

static struct reqctx *reqctx_new(struct bc_http_server *srv, struct listener *l, const char *target)
{
	struct reqctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (!(c->target = req_strdup(c, target))) {
		free(c);
		return NULL;
	}
	c->srv = srv;
	c->lst = l;
	c->t0 = bc_now_ms();
	c->max_body = BC_LIMIT_HTTP_BODY;
	if (l) {
		c->req.listener_tag = l->tag;
		c->req.conn_ctx = l->ctx;
	}
	return c;
}

static void add_header(struct reqctx *c, const char *key, const char *value)
{
	if (c->nhdrs == BC_LIMIT_HTTP_HEADERS) {
		c->hdrs_over = true;
		return;
	}
	c->hdrs[c->nhdrs].key = key;
	c->hdrs[c->nhdrs].value = value ? value : "";
	c->nhdrs++;
}

int bc_http_dispatch_test(struct bc_http_server *srv, const char *method, const char *target,
			  const char *host, const struct bc_http_kv *headers, size_t nheaders,
			  const char *body, size_t body_len, struct bc_http_res *res)
{
	struct reqctx *c = reqctx_new(srv, NULL, target);
	if (!c)
		return BC_ERR_NOMEM;
	c->req.method = method;
	c->req.client_ip = "127.0.0.1";
	if (host)
		add_header(c, "Host", host);
	for (size_t i = 0; i < nheaders; i++)
		add_header(c, headers[i].key, headers[i].value);
	req_begin(c);
	if (!c->decided && body_len > c->max_body)
		decide_error(c, 413, "request body too large");
	bc_buf_init(&c->body, c->max_body + 1);
	if (!c->decided && body_len && bc_buf_append(&c->body, body, body_len) != BC_OK)
		decide_error(c, 500, "out of memory");
	run_handler(c);
	park_settle(c);
	req_finish(c);
	observe(c);
	*res = c->res;
	memset(&c->res, 0, sizeof(c->res));
	reqctx_free(c);
	return BC_OK;
}

/* ---------- parked requests ---------- */

static void ts_at(struct timespec *ts, int64_t ms_from_now)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms_from_now / 1000;
	ts->tv_nsec += (ms_from_now % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Takes p off the server's and its queue's lists. park_mu held. */
static void park_unlink(struct bc_http_parked *p)
{
	struct bc_http_server *srv = p->srv;
	if (p->prev)
		p->prev->next = p->next;
	else if (srv->parked == p)
		srv->parked = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	if (p->q) {
		if (p->qprev)
			p->qprev->qnext = p->qnext;
		else
			p->q->head = p->qnext;
		if (p->qnext)
			p->qnext->qprev = p->qprev;
		p->qprev = p->qnext = NULL;
		p->q = NULL;
	}
}

/* Marks p woken. park_mu held. Returns the connection the caller must resume (after unlocking),
 * or NULL: not suspended yet (its pool thread sees the state) or not parked any more. */
static struct MHD_Connection *park_wake(struct bc_http_parked *p, enum bc_http_wake why, struct bc_http_res *res)
{
	if (p->state >= P_WOKEN)
		return NULL;
	bool suspended = p->state == P_SUSPENDED;
	p->state = P_WOKEN;
	p->why = why;
	if (res) {
		p->res = *res;
		memset(res, 0, sizeof(*res));
		p->have_res = true;
	}
	park_unlink(p);
	pthread_cond_broadcast(&park_cv);
	return suspended ? p->conn : NULL;
}

static void park_unref(struct bc_http_parked *p)
{
	bool last = --p->refs == 0;
	if (last) {
		bc_http_res_release(&p->res);
		free(p);
	}
}

void bc_http_parked_release(struct bc_http_parked *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&park_mu);
	park_unref(p);
	pthread_mutex_unlock(&park_mu);
}

#define TIMER_BATCH 64

static void *timer_main(void *arg)
{
	struct bc_http_server *srv = arg;
	pthread_mutex_lock(&park_mu);
	while (!srv->timer_stop) {
		int64_t now = bc_now_ms(), next = INT64_MAX;
		struct MHD_Connection *conns[TIMER_BATCH];
		size_t nconns = 0;
		struct bc_http_parked *p = srv->parked;
		while (p && nconns < TIMER_BATCH) {
			struct bc_http_parked *cur = p;
			p = p->next;
			if (cur->deadline > now) {
				next = cur->deadline < next ? cur->deadline : next;
				continue;
			}
			struct MHD_Connection *conn = park_wake(cur, BC_HTTP_TIMEOUT, NULL);
			if (conn)
				conns[nconns++] = conn;
		}
		if (nconns) {
			pthread_mutex_unlock(&park_mu);
			for (size_t i = 0; i < nconns; i++)
				MHD_resume_connection(conns[i]);
			pthread_mutex_lock(&park_mu);
			continue; /* rescan: the batch may have stopped early */
		}
		if (next == INT64_MAX) {
			pthread_cond_wait(&srv->timer_cond, &park_mu);
		} else {
			struct timespec ts;
			ts_at(&ts, next - now);
			pthread_cond_timedwait(&srv->timer_cond, &park_mu, &ts);
		}
	}
	pthread_mutex_unlock(&park_mu);
	return NULL;
}

int bc_http_park(struct bc_http_req *req, struct bc_http_waitq *q, int64_t timeout_ms, bc_http_resume_fn fn,
		 void *arg, struct bc_http_parked **handle)
{
	struct reqctx *c = req->priv;
	if (!c || !fn || c->decided || (c->park && c->park->state != P_DONE))
		return BC_ERR_INVALID;
	struct bc_http_server *srv = c->srv;
	if (timeout_ms <= 0)
		timeout_ms = 1;
	if (timeout_ms > BC_LIMIT_HTTP_PARK_MS)
		timeout_ms = BC_LIMIT_HTTP_PARK_MS;
	struct bc_http_parked *p = calloc(1, sizeof(*p));
	if (!p)
		return BC_ERR_NOMEM;
	p->srv = srv;
	p->conn = c->conn;
	p->deadline = bc_now_ms() + timeout_ms;
	p->fn = fn;
	p->arg = arg;
	p->refs = handle ? 2 : 1;
	pthread_mutex_lock(&park_mu);
	int rc = BC_OK;
	if (srv->stopping)
		rc = BC_ERR_UNAVAILABLE;
	else if (srv->nparked >= BC_LIMIT_HTTP_PARKED)
		rc = BC_ERR_LIMIT;
	else if (!srv->timer_running) {
		srv->timer_stop = false;
		if (pthread_create(&srv->timer, NULL, timer_main, srv) != 0)
			rc = BC_ERR_NOMEM;
		else
			srv->timer_running = true;
	}
	if (rc != BC_OK) {
		pthread_mutex_unlock(&park_mu);
		free(p);
		return rc;
	}
	if ((p->next = srv->parked))
		p->next->prev = p;
	srv->parked = p;
	if (q) {
		p->q = q;
		if ((p->qnext = q->head))
			p->qnext->qprev = p;
		q->head = p;
	}
	srv->nparked++;
	struct bc_http_parked *old = c->park;
	c->park = p;
	if (old)
		park_unref(old);
	else
		srv->nlive++;
	pthread_cond_signal(&srv->timer_cond);
	pthread_mutex_unlock(&park_mu);
	if (handle)
		*handle = p;
	return BC_OK;
}

int bc_http_resume(struct bc_http_parked *p, struct bc_http_res *res)
{
	pthread_mutex_lock(&park_mu);
	bool parked = p->state < P_WOKEN;
	struct MHD_Connection *conn = parked ? park_wake(p, BC_HTTP_RESUMED, res) : NULL;
	pthread_mutex_unlock(&park_mu);
	if (conn)
		MHD_resume_connection(conn);
	if (!parked && res) {
		bc_http_res_release(res);
		memset(res, 0, sizeof(*res));
	}
	return parked ? BC_OK : BC_ERR_NOT_FOUND;
}

struct bc_http_waitq *bc_http_waitq_new(void)
{
	return calloc(1, sizeof(struct bc_http_waitq));
}

void bc_http_waitq_wake(struct bc_http_waitq *q)
{
	pthread_mutex_lock(&park_mu);
	while (q->head) {
		struct MHD_Connection *conn = park_wake(q->head, BC_HTTP_RESUMED, NULL);
		if (conn) {
			pthread_mutex_unlock(&park_mu);
			MHD_resume_connection(conn);
			pthread_mutex_lock(&park_mu);
		}
	}
	pthread_mutex_unlock(&park_mu);
}

void bc_http_waitq_free(struct bc_http_waitq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&park_mu);
	while (q->head) {
		struct bc_http_parked *p = q->head;
		q->head = p->qnext;
		p->q = NULL;
		p->qprev = p->qnext = NULL;
	}
	pthread_mutex_unlock(&park_mu);
	free(q);
}

size_t bc_http_parked_count(struct bc_http_server *srv)
{
	pthread_mutex_lock(&park_mu);
	size_t n = srv->nparked;
	pthread_mutex_unlock(&park_mu);
	return n;
}

/* The request's pool thread takes a woken request back: the given response, or the resume
 * function's (which may park it again). */
static void park_take(struct reqctx *c)
{
	struct bc_http_parked *p = c->park;
	pthread_mutex_lock(&park_mu);
	p->state = P_DONE;
	c->srv->nparked--;
	pthread_cond_broadcast(&park_cv);
	bool have = p->have_res;
	struct bc_http_res given = p->res;
	memset(&p->res, 0, sizeof(p->res));
	p->have_res = false;
	pthread_mutex_unlock(&park_mu);
	bc_http_res_release(&c->res);
	memset(&c->res, 0, sizeof(c->res));
	if (have)
		c->res = given;
	else
		p->fn(&c->req, &c->res, p->why, p->arg);
}

/* The request is gone (closed, freed): it leaves the lists. */
static void park_forget(struct reqctx *c)
{
	struct bc_http_parked *p = c->park;
	if (!p)
		return;
	pthread_mutex_lock(&park_mu);
	if (p->state != P_DONE) {
		park_unlink(p);
		p->state = P_DONE;
		c->srv->nparked--;
	}
	c->srv->nlive--;
	pthread_cond_broadcast(&park_cv);
	park_unref(p);
	pthread_mutex_unlock(&park_mu);
	c->park = NULL;
}

/* After a handler (or resume function) ran: true when the request is now parked and must not be
 * answered. In bc_http_dispatch_test (no connection) this waits until the request is woken and
 * takes it back, as many times as it is parked again. */
static bool park_settle(struct reqctx *c)
{
	for (;;) {
		struct bc_http_parked *p = c->park;
		if (!p)
			return false;
		pthread_mutex_lock(&park_mu);
		enum pstate st = p->state;
		if (st == P_DONE) {
			pthread_mutex_unlock(&park_mu);
			return false;
		}
		if (st == P_PENDING && c->conn) {
			p->state = P_SUSPENDING;
			pthread_mutex_unlock(&park_mu);
			/* no idle timeout while parked; restored when resumed (which also restarts it) */
			MHD_set_connection_option(c->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
			c->phase = PH_PARKED;
			MHD_suspend_connection(c->conn);
			pthread_mutex_lock(&park_mu);
			bool woken = p->state == P_WOKEN;
			if (!woken)
				p->state = P_SUSPENDED;
			pthread_mutex_unlock(&park_mu);
			if (woken) /* while it was being suspended: resume it ourselves */
				MHD_resume_connection(c->conn);
			return true;
		}
		if (st == P_PENDING) {
			p->state = P_SUSPENDED;
			while (p->state != P_WOKEN)
				pthread_cond_wait(&park_cv, &park_mu);
		}
		pthread_mutex_unlock(&park_mu);
		park_take(c);
	}
}

/* Requests in flight, counted from their request line to their completion (on_uri,
 * on_completed), so that a stop can wait for them: MHD_stop_daemon closes every connection at
 * once, answered or not. */
static void drain_enter(struct bc_http_server *srv)
{
	atomic_fetch_add(&srv->nrequests, 1);
}

static void drain_leave(struct bc_http_server *srv)
{
	/* the stop waits on park_cv once stopping is set: wake it when the last one is done */
	if (atomic_fetch_sub(&srv->nrequests, 1) == 1 && atomic_load(&srv->stopping)) {
		pthread_mutex_lock(&park_mu);
		pthread_cond_broadcast(&park_cv);
		pthread_mutex_unlock(&park_mu);
	}
}

/* Server stop, after park_stop: waits until deadline (bc_now_ms) for every request in flight to
 * be answered. Idle keep-alive connections are not waited for; answers sent while stopping
 * close their connections. */
static void drain_wait(struct bc_http_server *srv, int64_t deadline)
{
	struct timespec ts;
	int64_t left = deadline - bc_now_ms();
	ts_at(&ts, left > 0 ? left : 0);
	pthread_mutex_lock(&park_mu);
	while (atomic_load(&srv->nrequests) && pthread_cond_timedwait(&park_cv, &park_mu, &ts) == 0)
		;
	size_t n = atomic_load(&srv->nrequests);
	pthread_mutex_unlock(&park_mu);
	if (n)
		bc_log_warn("http: %zu requests in flight cut at stop (drain bound %d ms)", n, BC_LIMIT_HTTP_DRAIN_MS);
}

/* Server stop: wakes every parked request and waits (bounded) until their answers are sent. */
static void park_stop(struct bc_http_server *srv)
{
	pthread_mutex_lock(&park_mu);
	srv->stopping = true;
	while (srv->parked) {
		struct MHD_Connection *conn = park_wake(srv->parked, BC_HTTP_STOPPING, NULL);
		if (conn) {
			pthread_mutex_unlock(&park_mu);
			MHD_resume_connection(conn);
			pthread_mutex_lock(&park_mu);
		}
	}
	struct timespec ts;
	ts_at(&ts, 5000);
	while (srv->nlive && pthread_cond_timedwait(&park_cv, &park_mu, &ts) == 0)
		;
	if (srv->nlive)
		bc_log_warn("http: %zu parked requests not answered at stop", srv->nlive);
	bool join = srv->timer_running;
	srv->timer_stop = true;
	srv->timer_running = false;
	pthread_cond_signal(&srv->timer_cond);
	pthread_mutex_unlock(&park_mu);
	if (join)
		pthread_join(srv->timer, NULL);
}

/* ---------- libmicrohttpd glue ---------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct listener *l = cls;
	struct reqctx *c = reqctx_new(l->srv, l, uri);
	if (c)
		drain_enter(l->srv);
	return c;
}

/* A small TLS response leaves in one record and one segment. libmicrohttpd 0.9.75 hands GnuTLS
 * the header and the body in two calls, which makes two records, two sendmsg calls and two
 * segments (the second held back by Nagle until MHD pushes); the client then has two records
 * to decrypt. So the session is corked when the response is queued (GnuTLS gathers the pieces
 * and reports them sent), and uncorked here, when MHD has handed over the whole response and
 * before it reads the next request. The socket's send buffer takes a response this small
 * unless the peer pipelines requests and stopped reading; then the flush waits a short bounded
 * time and, failing that, shuts the connection down so that MHD closes it (nothing is left
 * half-sent on a live connection, and a worker is not held by a client that does not read). */
#define CORK_MAX 12288      /* body and our headers; MHD's own headers fit in what a record has left */
#define CORK_FLUSH_MS 100 /* a worker waits at most this long for a client that stopped reading */

static void cork(struct reqctx *c, struct MHD_Connection *conn, size_t bytes)
{
	if (!c->lst || !c->lst->cert || bytes > CORK_MAX)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	c->corked = (gnutls_session_t)ci->tls_session;
	gnutls_record_cork(c->corked);
}

static void uncork(struct reqctx *c, struct MHD_Connection *conn)
{
	gnutls_session_t s = c->corked;
	c->corked = NULL;
	int64_t end = bc_now_ms() + CORK_FLUSH_MS;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (;;) {
		int rc = gnutls_record_uncork(s, 0);
		if (rc >= 0) {
			/* MHD corked the socket for the header it thought was going out alone, and
			 * pushed before our record was written: push it now. */
			int off = 0;
			if (ci)
				(void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
			return;
		}
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED)
			break; /* the connection is broken: MHD finds out on its next read */
		int64_t left = end - bc_now_ms();
		if (left <= 0 || !ci) {
			bc_log(BC_LOG_INFO, c->reqid, "http: the client does not take its response; closing the connection");
			bc_metrics_count("http_stalled_connections_closed", 1);
			break;
		}
		struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLOUT};
		(void)poll(&pfd, 1, (int)left);
	}
	if (ci)
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct reqctx *c = *con_cls;
	if (c && c->corked && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		uncork(c, conn);
	struct bc_http_server *srv = c ? c->srv : NULL;
	reqctx_free(*con_cls);
	*con_cls = NULL;
	if (srv)
		drain_leave(srv);
}

/* Keeps the target raw: we decode per segment ourselves, so that %2F stays inside a segment. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	/* the format is MHD's own */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(line, sizeof(line), fmt, ap);
#pragma GCC diagnostic pop
	line[strcspn(line, "\r\n")] = '\0';
	bc_log(BC_LOG_WARN, NULL, "http: %s", line);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	add_header(cls, key, value);
	return MHD_YES;
}

static void client_ip(struct reqctx *c, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(c->ip, sizeof(c->ip), "unknown");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, c->ip, sizeof(c->ip));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, c->ip, sizeof(c->ip));
	c->req.client_ip = c->ip;
}

static bool body_pending(const struct reqctx *c)
{
	const char *cl = bc_http_header(&c->req, "Content-Length");
	return bc_http_header(&c->req, "Transfer-Encoding") || (cl && strtoull(cl, NULL, 10) > 0);
}

/* Queues the response in c->res (the handler has run). */
static enum MHD_Result send_response(struct reqctx *c, struct MHD_Connection *conn)
{
	req_finish(c);
	c->phase = PH_DONE;
	struct bc_http_res *r = &c->res;
	size_t len;
	char *body = bc_buf_detach(&r->body, &len);
	struct MHD_Response *mr = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!mr) {
		free(body);
		return MHD_NO;
	}
	if ((len || r->content_type) &&
	    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : JSON_CT) != MHD_YES)
		bc_log(BC_LOG_WARN, c->reqid, "http: cannot set the content type");
	for (size_t i = 0; i < r->nheaders; i++)
		if (MHD_add_response_header(mr, r->headers[i].key, r->headers[i].value) != MHD_YES)
			bc_log(BC_LOG_WARN, c->reqid, "http: response header %s refused", r->headers[i].key);
	/* stopping: the client's next request must not come on this connection (a long poll
	 * answered at stop would be sent again at once, and refused to park, until the end) */
	if (atomic_load(&c->srv->stopping) &&
	    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
		bc_log(BC_LOG_DEBUG, c->reqid, "http: cannot close the connection after this answer");
	size_t hbytes = 0;
	for (size_t i = 0; i < r->nheaders; i++)
		hbytes += strlen(r->headers[i].key) + strlen(r->headers[i].value) + 4;
	cork(c, conn, len + hbytes);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, mr);
	MHD_destroy_response(mr);
	if (ret != MHD_YES && c->corked) {
		gnutls_record_uncork(c->corked, 0);
		c->corked = NULL;
	}
	observe(c);
	return ret;
}

static enum MHD_Result respond(struct reqctx *c, struct MHD_Connection *conn)
{
	run_handler(c);
	if (park_settle(c))
		return MHD_YES;
	return send_response(c, conn);
}

/* MHD calls the handler of a resumed connection again. */
static enum MHD_Result on_resumed(struct reqctx *c, struct MHD_Connection *conn)
{
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)BC_LIMIT_HTTP_TIMEOUT_S);
	bool woken;
	pthread_mutex_lock(&park_mu);
	woken = c->park && c->park->state == P_WOKEN;
	pthread_mutex_unlock(&park_mu);
	if (!woken)
		return MHD_YES; /* not ours to take yet */
	c->phase = PH_BODY;
	park_take(c);
	if (park_settle(c))
		return MHD_YES;
	return send_response(c, conn);
}

/* MHD calls this once with the headers, then once per piece of body, then a final time with
 * *upload_data_size == 0. Answering on the first call while a body is still pending makes MHD
 * close the connection, so normal answers are queued on the final call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct reqctx *c = *con_cls;
	if (!c)
		return MHD_NO; /* out of memory in on_uri: MHD drops the connection */
	switch (c->phase) {
	case PH_NEW:
		c->phase = PH_BODY;
		c->req.method = method;
		c->conn = conn;
		MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, c);
		client_ip(c, conn);
		req_begin(c);
		if (!c->decided) {
			const char *cl = bc_http_header(&c->req, "Content-Length");
			if (cl && strtoull(cl, NULL, 10) > c->max_body)
				decide_error(c, 413, "request body too large");
		}
		bc_buf_init(&c->body, c->max_body + 1);
		/* A refusal (early hook, 413, no route) is answered before the body is read; MHD
		 * then closes the connection instead of reading a body nobody wants. Without a body
		 * we wait for the final call and the connection stays alive. */
		if (c->decided && body_pending(c))
			return respond(c, conn);
		return MHD_YES;
	case PH_BODY:
		if (*upload_data_size == 0)
			return respond(c, conn);
		if (c->decided) {
			/* over the cap in a chunked body: MHD 0.9.75 refuses a response queued in the
			 * middle of a body, so the rest is read and dropped (bounded) and the 413 goes
			 * out on the final call */
			c->drained += *upload_data_size;
			*upload_data_size = 0;
			return c->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
		}
		if (*upload_data_size > c->max_body - c->body.len) {
			c->drained = *upload_data_size;
			*upload_data_size = 0;
			bc_buf_release(&c->body);
			decide_error(c, 413, "request body too large");
			return MHD_YES;
		}
		if (bc_buf_append(&c->body, upload_data, *upload_data_size) != BC_OK) {
			*upload_data_size = 0;
			return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	case PH_PARKED:
		*upload_data_size = 0;
		return on_resumed(c, conn);
	case PH_DONE:
	default:
		*upload_data_size = 0;
		return MHD_YES;
	}
}

/* Makes a listening socket for "host:port" or "[v6]:port". Returns the fd or -1. */
static int bind_address(const char *address, struct bc_error *err)
{
	char host[256];
	const char *port;
	if (address[0] == '[') {
		const char *end = strchr(address, ']');
		if (!end || end[1] != ':' || (size_t)(end - address - 1) >= sizeof(host))
			return bc_error_set(err, BC_ERR_INVALID, "invalid listen address %s", address), -1;
		memcpy(host, address + 1, (size_t)(end - address - 1));
		host[end - address - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(address, ':');
		if (!colon || (size_t)(colon - address) >= sizeof(host))
			return bc_error_set(err, BC_ERR_INVALID, "invalid listen address %s", address), -1;
		memcpy(host, address, (size_t)(colon - address));
		host[colon - address] = '\0';
		port = colon + 1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &ai);
	if (gai != 0)
		return bc_error_set(err, BC_ERR_INVALID, "cannot resolve listen address %s: %s", address,
				    gai_strerror(gai)), -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		bc_error_set(err, BC_ERR_IO, "cannot listen on %s: %s", address, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* The pool's threads all accept on one socket: it must be listening and non-blocking. */
static int prepare_fd(int fd, int *port, struct bc_error *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fl = fcntl(fd, F_GETFL);
	if (listen(fd, SOMAXCONN) != 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return bc_error_set(err, BC_ERR_IO, "cannot listen: %s", strerror(errno));
	if (ss.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port = 0;
	return BC_OK;
}

static struct MHD_Daemon *start_daemon(struct listener *li, const struct bc_http_listener *l, int fd)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
	size_t maxconn = l->max_connections ? l->max_connections : BC_LIMIT_HTTP_CONNECTIONS;
	struct MHD_OptionItem ops[] = {
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, li}, /* first, or MHD warns */
		{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
		{MHD_OPTION_THREAD_POOL_SIZE, l->threads ? l->threads : 2, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, MHD_POOL_BYTES, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, (intptr_t)maxconn, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, BC_LIMIT_HTTP_TIMEOUT_S, NULL},
		{MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, li},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, li},
		{MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)no_unescape, li},
		{MHD_OPTION_END, 0, NULL}, /* TLS options go here */
		{MHD_OPTION_END, 0, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	if (li->cert) {
		size_t n = sizeof(ops) / sizeof(ops[0]);
		flags |= MHD_USE_TLS;
		ops[n - 3] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, li->cert};
		ops[n - 2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, li->key};
	}
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, li, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

int bc_http_listen(struct bc_http_server *srv, const struct bc_http_listener *l, int *port, struct bc_error *err)
{
	int fd = l->fd;
	int rc = BC_ERR_NOMEM;
	struct listener *li = calloc(1, sizeof(*li));
	struct listener **grown = NULL;
	if (!li) {
		bc_error_set(err, rc, "out of memory starting a listener");
		goto fail;
	}
	li->srv = srv;
	li->tag = l->tag;
	li->ctx = l->ctx;
	if (l->tls_cert_pem && (!l->tls_key_pem || !(li->cert = strdup(l->tls_cert_pem)) ||
				!(li->key = strdup(l->tls_key_pem)))) {
		rc = bc_error_set(err, l->tls_key_pem ? BC_ERR_NOMEM : BC_ERR_INVALID, "cannot set up the tls key pair");
		goto fail;
	}
	if (fd < 0 && (fd = bind_address(l->address ? l->address : "127.0.0.1:0", err)) < 0) {
		rc = err ? err->status : BC_ERR_IO;
		goto fail;
	}
	int bound = 0;
	if ((rc = prepare_fd(fd, &bound, err)) != BC_OK)
		goto fail;
	if (!(grown = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*grown)))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory starting a listener");
		goto fail;
	}
	srv->listeners = grown;
	if (!(li->daemon = start_daemon(li, l, fd))) {
		rc = bc_error_set(err, BC_ERR_IO, "cannot start the http daemon on port %d (see the log)", bound);
		goto fail;
	}
	srv->listeners[srv->nlisteners++] = li;
	if (port)
		*port = bound;
	bc_log_info("http: listening on port %d (%s, %u threads)", bound, li->cert ? "https" : "http",
		    l->threads ? l->threads : 2);
	return BC_OK;
fail:
	if (fd >= 0 && fd != l->fd)
		close(fd);
	if (li) {
		if (li->key)
			bc_wipe(li->key, strlen(li->key));
		free(li->key);
		free(li->cert);
		free(li);
	}
	return rc;
}

void bc_http_server_stop(struct bc_http_server *srv)
{
	if (!srv)
		return;
	int64_t deadline = bc_now_ms() + BC_LIMIT_HTTP_DRAIN_MS;
	/* stop accepting first; parked requests are then answered, the others in flight finish,
	 * and MHD_stop_daemon closes the connections (it must not find suspended ones) */
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *li = srv->listeners[i];
		if (!li->daemon)
			continue;
		MHD_socket fd = MHD_quiesce_daemon(li->daemon);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
	park_stop(srv);
	drain_wait(srv, deadline);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *li = srv->listeners[i];
		if (!li->daemon)
			continue;
		MHD_stop_daemon(li->daemon);
		li->daemon = NULL;
	}
}

void bc_http_server_free(struct bc_http_server *srv)
{
	if (!srv)
		return;
	bc_http_server_stop(srv);
	for (size_t i = 0; i < srv->nlisteners; i++) {
		struct listener *li = srv->listeners[i];
		if (li->key)
			bc_wipe(li->key, strlen(li->key));
		free(li->key);
		free(li->cert);
		free(li);
	}
	free(srv->listeners);
	for (size_t i = 0; i < srv->nmounts; i++)
		mount_release(&srv->mounts[i]);
	free(srv->mounts);
	pthread_cond_destroy(&srv->timer_cond);
	free(srv);
}
