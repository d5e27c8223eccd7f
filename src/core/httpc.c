/* The HTTP client over libcurl (see httpc.h). Each thread keeps one easy handle (reset before
 * every request) so that its connection cache keeps connections alive between calls. Bodies and
 * Authorization headers are never logged. */
#include "core/httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "core/error.h"
#include "core/limits.h"
#include "core/log.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;
static CURLcode init_rc = CURLE_FAILED_INIT;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void global_init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (init_rc == CURLE_OK && pthread_key_create(&handle_key, handle_free) != 0)
		init_rc = CURLE_FAILED_INIT;
}

/* The calling thread's easy handle, created on first use. */
static CURL *thread_handle(void)
{
	CURL *h = pthread_getspecific(handle_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

void bc_httpc_res_init(struct bc_httpc_res *res)
{
	memset(res, 0, sizeof(*res));
	bc_buf_init(&res->body, 0);
	res->retry_after_s = -1;
	res->retry_after_ms = -1;
}

void bc_httpc_res_release(struct bc_httpc_res *res)
{
	bc_buf_release(&res->body);
	res->status = 0;
	res->content_type[0] = '\0';
	res->www_authenticate[0] = '\0';
	res->retry_after_s = -1;
	res->retry_after_ms = -1;
}

struct transfer {
	struct bc_httpc_res *res;
	size_t max;
	bool too_big;
	int ms_rank; /* which header set retry_after_ms: 0 none, 1 Retry-After, 2 x-ms-, 3 retry-after-ms */
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	size_t n = size * nmemb;
	if (n > t->max - t->res->body.len) {
		t->too_big = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (bc_buf_append(&t->res->body, p, n) != BC_OK)
		return 0;
	return n;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static long parse_retry_after(const char *v)
{
	char *end;
	long long s = strtoll(v, &end, 10);
	if (end != v && *end == '\0')
		return s < 0 ? 0 : (s > 86400 * 365 ? 86400 * 365 : (long)s);
	time_t when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	time_t now = time(NULL);
	return when > now ? (long)(when - now) : 0;
}

/* Called once per header line, for every response (100 Continue, redirects) in turn. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct transfer *t = ud;
	size_t n = size * nmemb;
	struct bc_httpc_res *res = t->res;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		res->content_type[0] = '\0';
		res->www_authenticate[0] = '\0';
		res->retry_after_s = -1;
		res->retry_after_ms = -1;
		t->ms_rank = 0;
		return n;
	}
	const char *colon = memchr(p, ':', n);
	if (!colon)
		return n;
	size_t klen = (size_t)(colon - p);
	const char *v = colon + 1, *end = p + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (klen == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
		copy_value(res->content_type, sizeof(res->content_type), v, vlen);
	} else if (klen == 16 && strncasecmp(p, "WWW-Authenticate", 16) == 0) {
		/* several challenges are joined the way a single header would list them */
		size_t have = strlen(res->www_authenticate);
		if (have && have + 2 < sizeof(res->www_authenticate)) {
			memcpy(res->www_authenticate + have, ", ", 2);
			have += 2;
		}
		copy_value(res->www_authenticate + have, sizeof(res->www_authenticate) - have, v, vlen);
	} else if (klen == 11 && strncasecmp(p, "Retry-After", 11) == 0) {
		char tmp[64];
		copy_value(tmp, sizeof(tmp), v, vlen);
		res->retry_after_s = parse_retry_after(tmp);
		if (res->retry_after_s >= 0 && t->ms_rank < 1) {
			res->retry_after_ms = res->retry_after_s * 1000;
			t->ms_rank = 1;
		}
	} else if ((klen == 14 && strncasecmp(p, "retry-after-ms", 14) == 0) ||
		   (klen == 19 && strncasecmp(p, "x-ms-retry-after-ms", 19) == 0)) {
		int rank = klen == 14 ? 3 : 2;
		char tmp[32], *e;
		copy_value(tmp, sizeof(tmp), v, vlen);
		long long ms = strtoll(tmp, &e, 10);
		if (e != tmp && *e == '\0' && ms >= 0 && rank > t->ms_rank) {
			res->retry_after_ms = ms > 86400000LL ? 86400000L : (long)ms;
			t->ms_rank = rank;
		}
	}
	return n;
}

static CURLcode set_method(CURL *h, const struct bc_httpc_req *req)
{
	const char *m = req->method ? req->method : "GET";
	CURLcode rc = CURLE_OK;
	if (strcmp(m, "HEAD") == 0)
		return curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
		/* POSTFIELDS with an explicit size: binary-safe, and "Content-Length: 0" when empty */
		rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	if (rc == CURLE_OK && strcmp(m, "POST") != 0 && strcmp(m, "GET") != 0)
		rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	return rc;
}

static CURLcode set_options(CURL *h, const struct bc_httpc_req *req, struct curl_slist *hdrs, struct transfer *t,
			    char *errbuf)
{
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	CURLcode rc;
	if ((rc = curl_easy_setopt(h, CURLOPT_URL, req->url)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https")) ||
	    (rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ctimeout)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, t)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_HEADERDATA, t)) ||
	    (rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max)) ||
	    (rc = set_method(h, req)))
		return rc;
	if (req->ca_file && (rc = curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file)))
		return rc;
	if (req->unix_socket && (rc = curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket)))
		return rc;
	if (req->cert_file && (rc = curl_easy_setopt(h, CURLOPT_SSLCERT, req->cert_file)))
		return rc;
	if (req->key_file && (rc = curl_easy_setopt(h, CURLOPT_SSLKEY, req->key_file)))
		return rc;
	return CURLE_OK;
}

static int build_headers(const struct bc_httpc_req *req, struct curl_slist **out)
{
	/* no "Expect: 100-continue" round trip for bodies */
	struct curl_slist *l = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; l && req->headers && req->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(l, req->headers[i]);
		if (!n) {
			curl_slist_free_all(l);
			l = NULL;
		} else {
			l = n;
		}
	}
	*out = l;
	return l ? BC_OK : BC_ERR_NOMEM;
}

int bc_httpc_do(const struct bc_httpc_req *req, struct bc_httpc_res *res, struct bc_error *err)
{
	if (pthread_once(&init_once, global_init) != 0 || init_rc != CURLE_OK)
		return bc_error_set(err, BC_ERR_INTERNAL, "libcurl initialisation failed");
	if (!req->url)
		return bc_error_set(err, BC_ERR_INVALID, "http request without a url");
	struct bc_httpc_res out;
	bc_httpc_res_init(&out);
	struct transfer t = {.res = &out, .max = req->max_response ? req->max_response : BC_LIMIT_HTTPC_RESPONSE};
	bc_buf_init(&out.body, t.max);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	int st;
	CURL *h = thread_handle();
	if (!h || build_headers(req, &hdrs) != BC_OK) {
		st = bc_error_set(err, BC_ERR_NOMEM, "out of memory preparing an http request");
		goto done;
	}
	CURLcode rc = set_options(h, req, hdrs, &t, errbuf);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
		st = BC_OK;
	} else if (t.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		st = bc_error_set(err, BC_ERR_LIMIT, "http response larger than %zu bytes", t.max);
	} else if (rc == CURLE_WRITE_ERROR) {
		st = bc_error_set(err, BC_ERR_NOMEM, "out of memory reading an http response");
	} else if (rc == CURLE_UNKNOWN_OPTION || rc == CURLE_BAD_FUNCTION_ARGUMENT || rc == CURLE_URL_MALFORMAT ||
		   rc == CURLE_UNSUPPORTED_PROTOCOL) {
		st = bc_error_set(err, BC_ERR_INVALID, "http request refused: %s", curl_easy_strerror(rc));
	} else {
		st = bc_error_set(err, BC_ERR_UNAVAILABLE, "http request failed: %s%s%s", curl_easy_strerror(rc),
				  errbuf[0] ? ": " : "", errbuf);
	}
done:
	if (h) {
		/* the handle outlives this call: drop pointers to our stack and the header list */
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	}
	curl_slist_free_all(hdrs);
	if (st == BC_OK) {
		bc_httpc_res_release(res);
		*res = out;
	} else {
		bc_httpc_res_release(&out);
	}
	return st;
}

int bc_httpc_escape(const char *s, struct bc_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			     ch == '-' || ch == '.' || ch == '_' || ch == '~';
		char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
		int rc = plain ? bc_buf_appendc(out, (char)ch) : bc_buf_append(out, enc, 3);
		if (rc)
			return rc;
	}
	return BC_OK;
}
