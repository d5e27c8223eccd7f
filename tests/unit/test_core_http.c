/* The HTTP server adapter and client: routing and normalisation without sockets, then real
 * listeners on 127.0.0.1:0 (HTTP and HTTPS with a throwaway self-signed certificate) driven by
 * bc_httpc_do, libcurl and raw sockets (for what clients never send on their own). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "core/http.h"
#include "core/httpc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "test.h"

/* ---------- a route table ---------- */

static int handler_calls;
static int observed;

static void h_echo(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	__atomic_add_fetch(&handler_calls, 1, __ATOMIC_SEQ_CST);
	json_t *caps = json_array(), *query = json_array();
	for (size_t i = 0; i < req->ncaptures; i++)
		json_array_append_new(caps, json_string(req->captures[i]));
	for (size_t i = 0; i < req->nquery; i++)
		json_array_append_new(query, json_pack("[s,s]", req->query[i].key, req->query[i].value));
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s%,s:s?,s:s,s:i,s:i}", "ctx", (const char *)ctx, "route",
			      req->route ? req->route : "", "path", req->path, "method", req->method, "captures", caps,
			      "query", query, "body", req->body, req->body_len, "host", req->host, "reqid",
			      req->request_id, "tag", req->listener_tag, "dupa", (int)bc_http_query_count(req, "a"));
	bc_http_res_json(res, 200, j);
}

static void h_auth_early(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	if (bc_http_header(req, "Authorization"))
		return;
	bc_http_res_json(res, 401, json_pack("{s:{s:s,s:s}}", "error", "code", "Unauthorized", "message", "no token"));
	if (bc_http_res_header(res, "WWW-Authenticate",
			       "Bearer authorization=\"https://login.badge.internal/t\", resource=\"https://vault.badge.internal\"") != 0)
		res->status = 500;
}

static void h_nothing(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
}

static void h_headers(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	bc_http_res_text(res, 429, "text/plain", "slow down");
	if (bc_http_res_header(res, "Retry-After", "7") || bc_http_res_header(res, "WWW-Authenticate", "Basic realm=x"))
		res->status = 500;
}

static void h_big(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	bc_http_res_text(res, 200, NULL, big);
}

static void h_huge(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	/* beyond what is corked into one record (and beyond a TLS record) */
	char *big = malloc(70000);
	if (!big)
		return;
	memset(big, 'y', 69999);
	big[69999] = '\0';
	bc_http_res_text(res, 200, NULL, big);
	free(big);
}

static void h_status_only(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	res->status = 403;
}

static const struct bc_route root_routes[] = {
	{"GET", "/metadata/identity/oauth2/token", h_echo, NULL, 0},
	{"POST", "/keys/{name}/{version}/sign", h_echo, NULL, 0},
	{"GET", "/keys/{name}/{version}", h_echo, NULL, 0},
	{"GET", "/secrets/{name}", h_echo, NULL, 0},
	{"PUT", "/secrets/{name}", h_echo, h_auth_early, 64},
	{"POST", "/small", h_echo, NULL, 16},
	{"GET", "/nostatus", h_nothing, NULL, 0},
	{"GET", "/statusonly", h_status_only, NULL, 0},
	{"GET", "/headers", h_headers, NULL, 0},
	{"GET", "/big", h_big, NULL, 0},
	{"GET", "/huge", h_huge, NULL, 0},
	{"DELETE", "/items/{id}", h_echo, NULL, 0},
	{"PUT", "/items/{id}", h_echo, NULL, 0},
	{"*", "/any", h_echo, NULL, 0},
};
static const struct bc_route vault_routes[] = {
	{"GET", "/secrets/{name}", h_echo, NULL, 0},
};

static void observe(const struct bc_http_req *req, int status, double ms, void *ctx)
{
	__atomic_add_fetch(&observed, 1, __ATOMIC_SEQ_CST);
}

static struct bc_http_server *make_server(void)
{
	struct bc_http_server *s = bc_http_server_new();
	if (!s)
		return NULL;
	if (bc_http_mount(s, NULL, NULL, root_routes, sizeof(root_routes) / sizeof(root_routes[0]), "root") ||
	    bc_http_mount(s, ".vault.badge.internal", NULL, vault_routes, 1, "vault") ||
	    bc_http_mount(s, NULL, "/vaults/{vault}", vault_routes, 1, "prefix")) {
		bc_http_server_free(s);
		return NULL;
	}
	bc_http_set_observer(s, observe, NULL);
	return s;
}

static json_t *res_json(const struct bc_http_res *res)
{
	return json_loadb(bc_buf_cstr(&res->body), res->body.len, 0, NULL);
}

static const char *res_hdr(const struct bc_http_res *res, const char *k)
{
	for (size_t i = 0; i < res->nheaders; i++)
		if (strcasecmp(res->headers[i].key, k) == 0)
			return res->headers[i].value;
	return NULL;
}

static const char *jcap(json_t *j, size_t i)
{
	return json_string_value(json_array_get(json_object_get(j, "captures"), i));
}

static const char *jerr_code(json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* Dispatches without a socket; returns the parsed body (caller decrefs). */
static json_t *dispatch(struct bc_http_server *s, const char *method, const char *target, const char *host,
			const char *body, int *status, struct bc_http_res *keep)
{
	struct bc_http_res res = {0};
	if (bc_http_dispatch_test(s, method, target, host, NULL, 0, body, body ? strlen(body) : 0, &res) != 0)
		return NULL;
	*status = res.status;
	json_t *j = res_json(&res);
	if (keep)
		*keep = res;
	else
		bc_http_res_release(&res);
	return j;
}

/* ---------- routing without sockets ---------- */

TEST(t_dispatch_routes)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	int st = 0;
	json_t *j = dispatch(s, "POST", "/keys/k1//sign", NULL, "{}", &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(jcap(j, 0), "k1");
	CHECK_STR(jcap(j, 1), "");
	CHECK_STR(json_string_value(json_object_get(j, "route")), "/keys/{name}/{version}/sign");
	CHECK_STR(json_string_value(json_object_get(j, "body")), "{}");
	json_decref(j);

	/* literal segments are case-insensitive; a trailing slash is ignored */
	j = dispatch(s, "GET", "/SECRETS/s1/", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(jcap(j, 0), "s1");
	CHECK_STR(json_string_value(json_object_get(j, "path")), "/SECRETS/s1");
	json_decref(j);

	/* the empty version of Key Vault's "/secrets/s1/" arrives as a trailing slash; "/keys/k1//"
	 * keeps one empty segment */
	j = dispatch(s, "GET", "/keys/k1//", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(jcap(j, 1), "");
	json_decref(j);

	/* no route takes the empty segment: retried without it */
	j = dispatch(s, "GET", "/secrets//s1", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(jcap(j, 0), "s1");
	json_decref(j);

	/* %2F stays inside its segment */
	j = dispatch(s, "GET", "/secrets/a%2Fb", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(jcap(j, 0), "a/b");
	json_decref(j);

	j = dispatch(s, "PATCH", "/any", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "method")), "PATCH");
	json_decref(j);
	bc_http_server_free(s);
}

TEST(t_dispatch_query)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	int st = 0;
	json_t *j = dispatch(s, "GET",
			     "//metadata/identity/oauth2/token/?api%2Dversion=7.4&a=1&a=2&b+c=d%20e&&flag&resource=https%3A%2F%2Fv",
			     NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "path")), "/metadata/identity/oauth2/token");
	json_t *q = json_object_get(j, "query");
	CHECK_EQ_INT(json_array_size(q), 6);
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 0), 0)), "api-version");
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 0), 1)), "7.4");
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 3), 0)), "b c");
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 3), 1)), "d e");
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 4), 0)), "flag");
	CHECK_STR(json_string_value(json_array_get(json_array_get(q, 5), 1)), "https://v");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "dupa")), 2);
	json_decref(j);

	/* malformed escapes and a NUL are refused */
	j = dispatch(s, "GET", "/secrets/s1?a=%zz", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 400);
	CHECK_STR(jerr_code(j), "BadRequest");
	json_decref(j);
	j = dispatch(s, "GET", "/secrets/s1?a=%00", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 400);
	json_decref(j);
	j = dispatch(s, "GET", "/secrets/s%2", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 400);
	json_decref(j);

	/* the parameter cap */
	char target[1024] = "/secrets/s1?";
	for (int i = 0; i <= BC_LIMIT_HTTP_QUERY_PARAMS; i++)
		snprintf(target + strlen(target), sizeof(target) - strlen(target), "p%d=1&", i);
	j = dispatch(s, "GET", target, NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 400);
	json_decref(j);

	/* absolute-form target: the path is taken from it */
	j = dispatch(s, "GET", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "host")), "169.254.169.254");
	json_decref(j);
	j = dispatch(s, "GET", "not-a-path", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 400);
	json_decref(j);
	bc_http_server_free(s);
}

TEST(t_dispatch_mounts)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	int st = 0;
	json_t *j = dispatch(s, "GET", "/secrets/s1", "MyVault.VAULT.badge.internal:8443", NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "vault");
	CHECK_STR(jcap(j, 0), "MyVault");
	CHECK_STR(jcap(j, 1), "s1");
	json_decref(j);
	/* two labels, or none, are not a vault name: the host-agnostic table answers */
	j = dispatch(s, "GET", "/secrets/s1", "a.b.vault.badge.internal", NULL, &st, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "root");
	json_decref(j);
	j = dispatch(s, "GET", "/secrets/s1", ".vault.badge.internal", NULL, &st, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "root");
	json_decref(j);
	j = dispatch(s, "GET", "/vaults/v1/secrets/s2/", "localhost:1", NULL, &st, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "prefix");
	CHECK_STR(jcap(j, 0), "v1");
	CHECK_STR(jcap(j, 1), "s2");
	json_decref(j);
	bc_http_server_free(s);
}

TEST(t_dispatch_errors)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	int st = 0;
	struct bc_http_res res;
	json_t *j = dispatch(s, "GET", "/items/x", NULL, NULL, &st, &res);
	CHECK_EQ_INT(st, 405);
	CHECK_STR(jerr_code(j), "MethodNotAllowed");
	CHECK_STR(res_hdr(&res, "Allow"), "DELETE, PUT");
	bc_http_res_release(&res);
	json_decref(j);

	j = dispatch(s, "GET", "/nowhere", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 404);
	CHECK_STR(jerr_code(j), "NotFound");
	CHECK(json_string_value(json_object_get(json_object_get(j, "error"), "message")) != NULL);
	json_decref(j);

	j = dispatch(s, "GET", "/nostatus", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 500);
	CHECK(jerr_code(j) != NULL);
	json_decref(j);

	/* an error status without a body gets one */
	j = dispatch(s, "GET", "/statusonly", NULL, NULL, &st, NULL);
	CHECK_EQ_INT(st, 403);
	CHECK_STR(jerr_code(j), "Forbidden");
	json_decref(j);

	int before = handler_calls;
	j = dispatch(s, "POST", "/small", NULL, "0123456789abcdefX", &st, NULL);
	CHECK_EQ_INT(st, 413);
	CHECK_STR(jerr_code(j), "PayloadTooLarge");
	json_decref(j);
	j = dispatch(s, "PUT", "/secrets/s1", NULL, "{\"value\":1}", &st, &res);
	CHECK_EQ_INT(st, 401);
	CHECK(res_hdr(&res, "WWW-Authenticate") != NULL);
	bc_http_res_release(&res);
	json_decref(j);
	CHECK_EQ_INT(handler_calls, before);
	bc_http_server_free(s);
}

TEST(t_dispatch_request_id)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	struct bc_http_kv h[] = {{"x-ms-client-request-id", "abc-123"}};
	struct bc_http_res res = {0};
	REQUIRE(bc_http_dispatch_test(s, "GET", "/secrets/s", NULL, h, 1, NULL, 0, &res) == 0);
	CHECK_STR(res_hdr(&res, "x-ms-request-id"), "abc-123");
	CHECK_STR(res_hdr(&res, "x-ms-client-request-id"), "abc-123");
	bc_http_res_release(&res);

	struct bc_http_kv bad[] = {{"X-MS-Client-Request-Id", "a b\"c"}};
	REQUIRE(bc_http_dispatch_test(s, "GET", "/secrets/s", NULL, bad, 1, NULL, 0, &res) == 0);
	CHECK(res_hdr(&res, "x-ms-request-id") && strlen(res_hdr(&res, "x-ms-request-id")) == 36);
	CHECK(res_hdr(&res, "x-ms-client-request-id") == NULL);
	bc_http_res_release(&res);
	bc_http_server_free(s);
}

/* ---------- forms and decoding ---------- */

TEST(t_form_parse)
{
	struct bc_http_kv kv[BC_LIMIT_FORM_FIELDS];
	struct bc_buf st = {0};
	struct bc_error err = {0};
	size_t n = 0;
	const char *body = "grant_type=client_credentials&scope=https%3A%2F%2Fv%2F.default&a=x+y&a=%41&&flag";
	REQUIRE(bc_http_form_parse(body, strlen(body), kv, BC_LIMIT_FORM_FIELDS, &n, &st, &err) == 0);
	CHECK_EQ_INT(n, 5);
	CHECK_STR(kv[1].value, "https://v/.default");
	CHECK_STR(kv[2].value, "x y");
	CHECK_STR(kv[3].key, "a");
	CHECK_STR(kv[3].value, "A");
	CHECK_STR(kv[4].key, "flag");
	CHECK_STR(kv[4].value, "");
	bc_buf_release(&st);

	CHECK_EQ_INT(bc_http_form_parse("a=%4", 4, kv, 8, &n, &st, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_http_form_parse("a=%00", 5, kv, 8, &n, &st, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_http_form_parse("a&b&c", 5, kv, 2, &n, &st, &err), BC_ERR_LIMIT);
	CHECK(st.data == NULL);
	REQUIRE(bc_http_form_parse("", 0, kv, 8, &n, &st, &err) == 0);
	CHECK_EQ_INT(n, 0);
	bc_buf_release(&st);
}

TEST(t_pct_decode)
{
	char s[] = "a%2Fb+c%7e";
	CHECK_EQ_INT(bc_http_pct_decode(s, strlen(s), true), 6);
	CHECK_STR(s, "a/b c~");
	char t[] = "a+b";
	CHECK_EQ_INT(bc_http_pct_decode(t, 3, false), 3);
	CHECK_STR(t, "a+b");
	char u[] = "%G0";
	CHECK_EQ_INT(bc_http_pct_decode(u, 3, false), -1);
	struct bc_buf out = {0};
	REQUIRE(bc_httpc_escape("https://v/.default a~", &out) == 0);
	CHECK_STR(bc_buf_cstr(&out), "https%3A%2F%2Fv%2F.default%20a~");
	bc_buf_release(&out);
}

/* ---------- real listeners ---------- */

struct live {
	struct bc_http_server *srv;
	int port;
	char base[64];
};

static int live_start(struct live *lv, const char *cert, const char *key)
{
	struct bc_error err = {0};
	memset(lv, 0, sizeof(*lv));
	if (!(lv->srv = make_server()))
		return -1;
	struct bc_http_listener l = {.address = "127.0.0.1:0", .fd = -1, .tls_cert_pem = cert, .tls_key_pem = key,
				     .tag = 7};
	if (bc_http_listen(lv->srv, &l, &lv->port, &err) != 0) {
		fprintf(stderr, "listen: %s\n", err.msg);
		bc_http_server_free(lv->srv);
		return -1;
	}
	snprintf(lv->base, sizeof(lv->base), "%s://127.0.0.1:%d", cert ? "https" : "http", lv->port);
	return 0;
}

static int get(struct live *lv, const char *method, const char *path, const char *const *hdrs, const char *body,
	       const char *ca, struct bc_httpc_res *res)
{
	char url[512];
	snprintf(url, sizeof(url), "%s%s", lv->base, path);
	struct bc_httpc_req req = {.method = method, .url = url, .headers = hdrs, .body = body,
				   .body_len = body ? strlen(body) : 0, .ca_file = ca, .timeout_ms = 10000};
	struct bc_error err = {0};
	bc_httpc_res_init(res);
	int rc = bc_httpc_do(&req, res, &err);
	if (rc)
		fprintf(stderr, "httpc: %s\n", err.msg);
	return rc;
}

/* Sends raw bytes, reads until the peer closes (5 s receive deadline). */
static int raw(int port, const char *text, size_t len, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || send(fd, text, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	size_t n = 0;
	for (;;) {
		ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	out[n] = '\0';
	close(fd);
	return (int)n;
}

static bool has_header_line(const char *resp, const char *line)
{
	for (const char *p = resp; (p = strstr(p, "\r\n")); p += 2)
		if (strncasecmp(p + 2, line, strlen(line)) == 0)
			return true;
	return false;
}

TEST(t_live_paths)
{
	struct live lv;
	REQUIRE(live_start(&lv, NULL, NULL) == 0);
	struct bc_httpc_res r;
	int obs = observed;
	CHECK(get(&lv, "GET", "//metadata/identity/oauth2/token/?api%2Dversion=2018-02-01&resource=https%3A%2F%2Fv",
		  NULL, NULL, NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.content_type, "application/json; charset=utf-8");
	json_t *j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "path")), "/metadata/identity/oauth2/token");
	CHECK_STR(json_string_value(json_array_get(json_array_get(json_object_get(j, "query"), 0), 0)), "api-version");
	CHECK_STR(json_string_value(json_array_get(json_array_get(json_object_get(j, "query"), 1), 1)), "https://v");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "tag")), 7);
	json_decref(j);
	bc_httpc_res_release(&r);

	CHECK(get(&lv, "POST", "/keys/k1//sign?a=1&a=2", NULL, "{\"alg\":\"RS256\"}", NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 200);
	j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(jcap(j, 0), "k1");
	CHECK_STR(jcap(j, 1), "");
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "dupa")), 2);
	CHECK_STR(json_string_value(json_object_get(j, "body")), "{\"alg\":\"RS256\"}");
	json_decref(j);
	bc_httpc_res_release(&r);

	const char *vh[] = {"Host: myvault.vault.badge.internal:8443", NULL};
	CHECK(get(&lv, "GET", "/secrets/s1/?api%2Dversion=7.4", vh, NULL, NULL, &r) == 0);
	j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "vault");
	CHECK_STR(jcap(j, 0), "myvault");
	json_decref(j);
	bc_httpc_res_release(&r);

	CHECK(get(&lv, "GET", "/vaults/v9/secrets/s1", NULL, NULL, NULL, &r) == 0);
	j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "ctx")), "prefix");
	CHECK_STR(jcap(j, 0), "v9");
	json_decref(j);
	bc_httpc_res_release(&r);

	CHECK(get(&lv, "GET", "/items/1", NULL, NULL, NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 405);
	j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(jerr_code(j), "MethodNotAllowed");
	json_decref(j);
	bc_httpc_res_release(&r);

	CHECK(get(&lv, "GET", "/nope", NULL, NULL, NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 404);
	j = json_loads(bc_buf_cstr(&r.body), 0, NULL);
	CHECK_STR(jerr_code(j), "NotFound");
	json_decref(j);
	bc_httpc_res_release(&r);
	CHECK(observed - obs >= 6);
	bc_http_server_free(lv.srv);
}

TEST(t_live_raw)
{
	struct live lv;
	REQUIRE(live_start(&lv, NULL, NULL) == 0);
	char out[16384];

	/* absolute-form target, as a client talking to a proxy sends it */
	const char *abs = "GET http://169.254.169.254/metadata/identity/oauth2/token?resource=x HTTP/1.1\r\n"
			  "Host: 169.254.169.254\r\nMetadata: true\r\nConnection: close\r\n\r\n";
	CHECK(raw(lv.port, abs, strlen(abs), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(out, "\"path\":\"/metadata/identity/oauth2/token\"") != NULL);

	/* the reason phrase azure-cli string-matches */
	const char *bad = "GET /secrets/s1?x=%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	CHECK(raw(lv.port, bad, strlen(bad), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);

	/* request ids */
	const char *rid = "GET /secrets/s1 HTTP/1.1\r\nHost: a\r\nx-ms-client-request-id: abc-123\r\nConnection: close\r\n\r\n";
	CHECK(raw(lv.port, rid, strlen(rid), out, sizeof(out)) > 0);
	CHECK(has_header_line(out, "x-ms-request-id: abc-123\r\n"));
	CHECK(has_header_line(out, "x-ms-client-request-id: abc-123\r\n"));

	/* the early hook answers 401 from the headers alone: the body is never sent */
	int calls = handler_calls;
	const char *put = "PUT /secrets/s1?api%2Dversion=7.4 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
			  "Content-Length: 50\r\n\r\n";
	CHECK(raw(lv.port, put, strlen(put), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 401 Unauthorized\r\n", 27) == 0);
	CHECK(has_header_line(out, "WWW-Authenticate: Bearer authorization=\"https://login.badge.internal/t\", "
				   "resource=\"https://vault.badge.internal\"\r\n"));
	CHECK_EQ_INT(handler_calls, calls);

	/* body caps: declared, and chunked */
	const char *big = "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n0123456789abcdefX";
	CHECK(raw(lv.port, big, strlen(big), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 413 ", 13) == 0);
	CHECK(strstr(out, "\"PayloadTooLarge\"") != NULL);
	const char *chunked = "POST /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
			      "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
	CHECK(raw(lv.port, chunked, strlen(chunked), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 413 ", 13) == 0);
	const char *fits = "POST /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "a\r\n0123456789\r\n0\r\n\r\n";
	CHECK(raw(lv.port, fits, strlen(fits), out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);

	/* too many header fields, too long a target */
	char req[12000];
	int n = snprintf(req, sizeof(req), "GET /secrets/s1 HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < BC_LIMIT_HTTP_HEADERS + 2; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-H%d: v\r\n", i);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "Connection: close\r\n\r\n");
	CHECK(raw(lv.port, req, (size_t)n, out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
	n = snprintf(req, sizeof(req), "GET /secrets/");
	memset(req + n, 'a', BC_LIMIT_HTTP_URL);
	n += BC_LIMIT_HTTP_URL;
	n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	CHECK(raw(lv.port, req, (size_t)n, out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 414 ", 13) == 0);

	/* refused by MHD itself, before our handler runs: header bytes over its pool */
	char huge[3 * BC_LIMIT_HTTP_HEADER_BYTES + 200];
	n = snprintf(huge, sizeof(huge), "GET /secrets/s1 HTTP/1.1\r\nHost: a\r\nX-Big: ");
	memset(huge + n, 'b', 3 * BC_LIMIT_HTTP_HEADER_BYTES);
	n += 3 * BC_LIMIT_HTTP_HEADER_BYTES;
	n += snprintf(huge + n, sizeof(huge) - (size_t)n, "\r\nConnection: close\r\n\r\n");
	CHECK(raw(lv.port, huge, (size_t)n, out, sizeof(out)) > 0);
	CHECK(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
	const char *nohost = "GET /secrets/s1 HTTP/1.1\r\nConnection: close\r\n\r\n";
	CHECK(raw(lv.port, nohost, strlen(nohost), out, sizeof(out)) > 0);
	bc_http_server_free(lv.srv);
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	return s * n;
}

/* One libcurl handle, several requests: every one after the first must reuse the connection,
 * including a POST with a body, a 404, and the Key Vault challenge (401 to a body-less PUT). */
static void keepalive_run(struct live *lv, const char *ca)
{
	CURL *h = curl_easy_init();
	REQUIRE(h);
	struct step {
		const char *method, *path, *body, *auth;
		long status;
	} steps[] = {
		{"POST", "/keys/k1/v1/sign", "{\"value\":\"x\"}", NULL, 200},
		{"GET", "/secrets/s1", NULL, NULL, 200},
		{"GET", "/nothing", NULL, NULL, 404},
		{"PUT", "/secrets/s1", "", NULL, 401},
		{"PUT", "/secrets/s1", "{\"value\":\"hunter2\"}", "Authorization: Bearer x", 200},
		{"GET", "/secrets/s1", NULL, NULL, 200},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char url[256];
		snprintf(url, sizeof(url), "%s%s", lv->base, steps[i].path);
		struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
		if (steps[i].auth)
			hl = curl_slist_append(hl, steps[i].auth);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (steps[i].body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, steps[i].body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(steps[i].body));
		}
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, steps[i].method);
		if (ca)
			curl_easy_setopt(h, CURLOPT_CAINFO, ca);
		CURLcode rc = curl_easy_perform(h);
		long status = 0, connects = -1;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
		curl_slist_free_all(hl);
		CHECK_EQ_INT(rc, CURLE_OK);
		CHECK_EQ_INT(status, steps[i].status);
		CHECK_EQ_INT(connects, i == 0 ? 1 : 0);
	}
	curl_easy_cleanup(h);
}

TEST(t_live_keepalive)
{
	struct live lv;
	REQUIRE(live_start(&lv, NULL, NULL) == 0);
	keepalive_run(&lv, NULL);
	bc_http_server_free(lv.srv);
}

struct hammer {
	struct live *lv;
	int ok;
};

static void *hammer_run(void *p)
{
	struct hammer *hm = p;
	for (int i = 0; i < 25; i++) {
		struct bc_httpc_res r;
		char path[64];
		snprintf(path, sizeof(path), "/keys/k%d/v%d/sign", i, i);
		if (get(hm->lv, "POST", path, NULL, "{\"value\":\"abc\"}", NULL, &r) == 0 && r.status == 200 &&
		    strstr(bc_buf_cstr(&r.body), path) != NULL)
			hm->ok++;
		bc_httpc_res_release(&r);
	}
	return NULL;
}

/* Four client threads at once against the pool: every answer is right. */
TEST(t_live_concurrent)
{
	struct live lv;
	REQUIRE(live_start(&lv, NULL, NULL) == 0);
	pthread_t t[4];
	struct hammer hm[4];
	for (int i = 0; i < 4; i++) {
		hm[i] = (struct hammer){.lv = &lv};
		REQUIRE(pthread_create(&t[i], NULL, hammer_run, &hm[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(hm[i].ok, 25);
	}
	bc_http_server_free(lv.srv);
}

TEST(t_live_client)
{
	struct live lv;
	REQUIRE(live_start(&lv, NULL, NULL) == 0);
	struct bc_httpc_res r;
	CHECK(get(&lv, "GET", "/headers", NULL, NULL, NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 429);
	CHECK_STR(r.content_type, "text/plain");
	CHECK_STR(r.www_authenticate, "Basic realm=x");
	CHECK_EQ_INT(r.retry_after_s, 7);
	CHECK_STR(bc_buf_cstr(&r.body), "slow down");
	bc_httpc_res_release(&r);

	char url[256];
	snprintf(url, sizeof(url), "%s/big", lv.base);
	struct bc_httpc_req req = {.url = url, .max_response = 1000};
	struct bc_error err = {0};
	bc_httpc_res_init(&r);
	CHECK_EQ_INT(bc_httpc_do(&req, &r, &err), BC_ERR_LIMIT);
	CHECK(r.body.len == 0);
	req.max_response = 0;
	CHECK_EQ_INT(bc_httpc_do(&req, &r, &err), BC_OK);
	CHECK_EQ_INT(r.body.len, 4095);
	bc_httpc_res_release(&r);

	/* after stop: nobody listens */
	bc_http_server_stop(lv.srv);
	CHECK_EQ_INT(bc_httpc_do(&req, &r, &err), BC_ERR_UNAVAILABLE);
	CHECK(strstr(err.msg, "http request failed") != NULL);
	bc_http_server_free(lv.srv);
}

TEST(t_live_fd_and_ipv6)
{
	struct bc_http_server *s = make_server();
	REQUIRE(s);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	socklen_t sl = sizeof(sa);
	REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	struct bc_http_listener l = {.fd = fd};
	struct bc_error err = {0};
	int port = 0;
	REQUIRE(bc_http_listen(s, &l, &port, &err) == 0);
	CHECK_EQ_INT(port, ntohs(sa.sin_port));
	struct live lv = {.srv = s, .port = port};
	snprintf(lv.base, sizeof(lv.base), "http://127.0.0.1:%d", port);
	struct bc_httpc_res r;
	CHECK(get(&lv, "GET", "/secrets/x", NULL, NULL, NULL, &r) == 0);
	CHECK_EQ_INT(r.status, 200);
	bc_httpc_res_release(&r);

	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	if (probe >= 0)
		close(probe);
	if (v6) {
		struct bc_http_listener l6 = {.address = "[::1]:0", .fd = -1};
		REQUIRE(bc_http_listen(s, &l6, &port, &err) == 0);
		snprintf(lv.base, sizeof(lv.base), "http://[::1]:%d", port);
		CHECK(get(&lv, "GET", "/secrets/x", NULL, NULL, NULL, &r) == 0);
		CHECK_EQ_INT(r.status, 200);
		bc_httpc_res_release(&r);
	} else {
		printf("skip: no ipv6 loopback\n");
	}
	struct bc_http_listener badl = {.address = "127.0.0.1", .fd = -1};
	CHECK_EQ_INT(bc_http_listen(s, &badl, &port, &err), BC_ERR_INVALID);
	bc_http_server_free(s);
}

/* A listener on an AF_UNIX socket the caller made, reached with bc_httpc_do's unix_socket. */
TEST(t_live_unix)
{
	char dir[] = "/tmp/badge-http-XXXXXX";
	REQUIRE(mkdtemp(dir));
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	snprintf(su.sun_path, sizeof(su.sun_path), "%s/s", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct bc_http_server *s = make_server();
	if (s && fd >= 0 && bind(fd, (struct sockaddr *)&su, sizeof(su)) == 0) {
		struct bc_http_listener l = {.fd = fd};
		struct bc_error err = {0};
		int port = -1;
		CHECK(bc_http_listen(s, &l, &port, &err) == 0);
		struct bc_httpc_req req = {.url = "http://localhost/secrets/u1", .unix_socket = su.sun_path};
		struct bc_httpc_res r;
		bc_httpc_res_init(&r);
		CHECK(bc_httpc_do(&req, &r, &err) == 0);
		CHECK_EQ_INT(r.status, 200);
		CHECK(strstr(bc_buf_cstr(&r.body), "\"u1\"") != NULL);
		bc_httpc_res_release(&r);
	} else {
		CHECK(!"cannot bind a unix socket");
		if (fd >= 0)
			close(fd);
	}
	bc_http_server_free(s);
	unlink(su.sun_path);
	rmdir(dir);
}

/* A throwaway self-signed P-256 certificate for 127.0.0.1 and localhost. */
static int make_cert(char **cert, char **key)
{
	int rc = -1;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	if (!k || !x || !bc || !bk)
		goto done;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, k, EVP_sha256()) || !PEM_write_bio_X509(bc, x) ||
	    !PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL))
		goto done;
	char *p;
	long n = BIO_get_mem_data(bc, &p);
	*cert = strndup(p, (size_t)n);
	n = BIO_get_mem_data(bk, &p);
	*key = strndup(p, (size_t)n);
	rc = *cert && *key ? 0 : -1;
done:
	X509_EXTENSION_free(ext);
	BIO_free(bc);
	BIO_free(bk);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

/* A self-signed certificate, its key, and the certificate written as a CA file in a temp dir. */
struct tls_files {
	char *cert, *key;
	char dir[32], ca[64];
};

static int tls_files_make(struct tls_files *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/badge-http-XXXXXX");
	if (make_cert(&t->cert, &t->key) != 0 || !mkdtemp(t->dir))
		return -1;
	snprintf(t->ca, sizeof(t->ca), "%s/ca.pem", t->dir);
	FILE *f = fopen(t->ca, "w");
	if (!f)
		return -1;
	fputs(t->cert, f);
	return fclose(f);
}

static void tls_files_free(struct tls_files *t)
{
	unlink(t->ca);
	rmdir(t->dir);
	free(t->cert);
	free(t->key);
}

TEST(t_live_https)
{
	struct tls_files tf;
	REQUIRE(tls_files_make(&tf) == 0);
	const char *ca = tf.ca, *cert = tf.cert, *key = tf.key;
	struct live lv;
	if (live_start(&lv, cert, key) == 0) {
		struct bc_httpc_res r;
		CHECK(get(&lv, "GET", "//metadata/identity/oauth2/token/?api-version=2018-02-01", NULL, NULL, ca, &r) == 0);
		CHECK_EQ_INT(r.status, 200);
		CHECK(strstr(bc_buf_cstr(&r.body), "\"path\":\"/metadata/identity/oauth2/token\"") != NULL);
		bc_httpc_res_release(&r);
		CHECK(get(&lv, "PUT", "/secrets/s1", NULL, "", ca, &r) == 0);
		CHECK_EQ_INT(r.status, 401);
		CHECK(strncmp(r.www_authenticate, "Bearer authorization=", 21) == 0);
		bc_httpc_res_release(&r);
		keepalive_run(&lv, ca);
		/* without the CA the server is not trusted */
		struct bc_error err = {0};
		char url[128];
		snprintf(url, sizeof(url), "%s/secrets/s1", lv.base);
		struct bc_httpc_req req = {.url = url, .ca_file = "/dev/null"};
		bc_httpc_res_init(&r);
		CHECK(bc_httpc_do(&req, &r, &err) != 0);
		bc_http_server_free(lv.srv);
	} else {
		CHECK(!"https listener did not start");
	}
	tls_files_free(&tf);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	return bc_buf_append(ud, p, size * n) == BC_OK ? size * n : 0;
}

/* Small HTTPS answers are corked into one TLS record and pushed when MHD is done with them.
 * Liveness, not speed: a socket left corked holds each answer back 200 ms, so 40 answers on one
 * connection would take 8 s; the bound below is generous for a loaded machine. Bodies of every
 * size arrive whole, in order. */
TEST(t_live_https_cork)
{
	struct tls_files tf;
	REQUIRE(tls_files_make(&tf) == 0);
	const char *ca = tf.ca, *cert = tf.cert, *key = tf.key;
	struct live lv;
	REQUIRE(live_start(&lv, cert, key) == 0);
	CURL *h = curl_easy_init();
	REQUIRE(h);
	struct bc_buf body = {0};
	int64_t t0 = bc_now_ms();
	for (int i = 0; i < 40; i++) {
		static const char *const paths[] = {"/secrets/s1", "/big", "/huge", "/statusonly"};
		static const size_t sizes[] = {0, 4095, 69999, 0};
		char url[128];
		snprintf(url, sizeof(url), "%s%s", lv.base, paths[i % 4]);
		bc_buf_reset(&body);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
		CHECK_EQ_INT(curl_easy_perform(h), CURLE_OK);
		long status = 0, connects = -1;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
		CHECK_EQ_INT(status, i % 4 == 3 ? 403 : 200);
		CHECK_EQ_INT(connects, i == 0 ? 1 : 0); /* one keep-alive connection */
		if (sizes[i % 4])
			CHECK_EQ_INT(body.len, sizes[i % 4]);
		else
			CHECK(body.len > 0 && strchr(body.data, '}'));
	}
	CHECK(bc_now_ms() - t0 < 6000);
	/* answers that end their connection (Connection: close, HTTP/1.0) arrive whole too */
	for (int i = 0; i < 4; i++) {
		struct curl_slist *hl = i % 2 ? NULL : curl_slist_append(NULL, "Connection: close");
		char url[128];
		snprintf(url, sizeof(url), "%s%s", lv.base, i < 2 ? "/big" : "/secrets/s3");
		bc_buf_reset(&body);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h, CURLOPT_HTTP_VERSION, i % 2 ? CURL_HTTP_VERSION_1_0 : CURL_HTTP_VERSION_1_1);
		CHECK_EQ_INT(curl_easy_perform(h), CURLE_OK);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		CHECK_EQ_INT(status, 200);
		if (i < 2)
			CHECK_EQ_INT(body.len, 4095);
		else
			CHECK(body.len > 0 && strchr(body.data, '}'));
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hl);
	}
	curl_easy_cleanup(h);
	bc_buf_release(&body);

	/* A client that pipelines requests and reads nothing fills its socket: its connection is
	 * closed, and the server goes on answering others. */
	SSL_CTX *sc = SSL_CTX_new(TLS_client_method());
	REQUIRE(sc);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lv.port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	SSL *ssl = SSL_new(sc);
	SSL_set_fd(ssl, fd);
	REQUIRE(SSL_connect(ssl) == 1);
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	const char greq[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t sent = 0;
	for (; sent < 50000; sent++)
		if (SSL_write(ssl, greq, (int)sizeof(greq) - 1) <= 0)
			break; /* the server stopped reading us: enough */
	struct bc_httpc_res r;
	CHECK(get(&lv, "GET", "/secrets/s2", NULL, NULL, ca, &r) == 0);
	CHECK_EQ_INT(r.status, 200);
	bc_httpc_res_release(&r);
	/* the server gives up on us (its metric says so), with a deadline */
	struct bc_buf m = {0};
	for (int64_t end = bc_now_ms() + 20000; bc_now_ms() < end;) {
		bc_buf_reset(&m);
		if (bc_metrics_render(&m) == BC_OK && strstr(bc_buf_cstr(&m), "http_stalled_connections_closed"))
			break;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	CHECK(strstr(bc_buf_cstr(&m), "http_stalled_connections_closed") != NULL);
	bc_buf_release(&m);
	/* drain: what was sent arrives, then the connection ends, short of every answer */
	tv.tv_sec = 10;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[16384];
	size_t got = 0;
	int n;
	errno = 0;
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	CHECK(got < sent * 4095);
	CHECK(errno != EAGAIN && errno != EWOULDBLOCK); /* ended, not timed out */
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(sc);
	bc_http_server_free(lv.srv);
	tls_files_free(&tf);
}

/* ---------- parked requests ---------- */

static struct bc_http_waitq *park_q;
static struct bc_http_parked *park_handle; /* set by h_park_handle, under park_handle_mu */
static pthread_mutex_t park_handle_mu = PTHREAD_MUTEX_INITIALIZER;

static void park_done(struct bc_http_req *req, struct bc_http_res *res, enum bc_http_wake why, void *arg)
{
	static const char *names[] = {"resumed", "timeout", "stopping"};
	const char *again = bc_http_query(req, "again");
	if (why == BC_HTTP_RESUMED && again && strcmp(again, "1") == 0 && !bc_http_query(req, "reparked")) {
		/* the first wake does not concern this request: park it again (the query marks it) */
		((struct bc_http_kv *)req->query)[req->nquery - 1].key = "reparked";
		if (bc_http_park(req, park_q, 20000, park_done, arg, NULL) == 0)
			return;
	}
	bc_http_res_json(res, why == BC_HTTP_STOPPING ? 503 : 200,
			 json_pack("{s:s,s:s}", "why", names[why], "path", req->path));
}

static void h_park(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	const char *ms = bc_http_query(req, "ms");
	if (bc_http_park(req, park_q, ms ? atoll(ms) : 20000, park_done, NULL, NULL) != 0)
		bc_http_res_json(res, 503, NULL);
}

static void h_park_handle(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	struct bc_http_parked *p = NULL;
	if (bc_http_park(req, NULL, 20000, park_done, NULL, &p) != 0) {
		bc_http_res_json(res, 503, NULL);
		return;
	}
	pthread_mutex_lock(&park_handle_mu);
	park_handle = p;
	pthread_mutex_unlock(&park_handle_mu);
}

static const struct bc_route park_routes[] = {
	{"GET", "/park", h_park, NULL, 0},
	{"GET", "/handle", h_park_handle, NULL, 0},
	{"GET", "/plain", h_echo, NULL, 0},
};

static struct bc_http_server *park_server(unsigned threads, int *port)
{
	struct bc_error err = {0};
	struct bc_http_server *s = bc_http_server_new();
	if (!s || bc_http_mount(s, NULL, NULL, park_routes, 3, "park")) {
		bc_http_server_free(s);
		return NULL;
	}
	struct bc_http_listener l = {.address = "127.0.0.1:0", .fd = -1, .threads = threads};
	if (bc_http_listen(s, &l, port, &err) != 0) {
		fprintf(stderr, "listen: %s\n", err.msg);
		bc_http_server_free(s);
		return NULL;
	}
	return s;
}

/* Sends a request on a new connection (Connection: close) and returns the fd, or -1. */
static int send_req(int port, const char *path)
{
	char text[256];
	int n = snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || send(fd, text, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the whole answer (until the server closes) and closes fd. */
static void read_all(int fd, char *out, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	out[n] = '\0';
	close(fd);
}

static bool wait_parked(struct bc_http_server *s, size_t n)
{
	int64_t deadline = bc_now_ms() + 10000;
	while (bc_http_parked_count(s) != n && bc_now_ms() < deadline) {
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL); /* polling with a deadline */
	}
	return bc_http_parked_count(s) == n;
}

#define NPARK 200

/* Many parked long polls on 2 pool threads: the server still answers at once; one wake answers
 * them all; a re-parked request waits for the next wake. */
TEST(t_park_many)
{
	int port = 0;
	REQUIRE((park_q = bc_http_waitq_new()) != NULL);
	struct bc_http_server *s = park_server(2, &port);
	REQUIRE(s != NULL);
	static int fds[NPARK];
	for (int i = 0; i < NPARK; i++)
		REQUIRE((fds[i] = send_req(port, i == 0 ? "/park?again=1&x=1" : "/park")) >= 0);
	REQUIRE(wait_parked(s, NPARK));
	char buf[4096];
	int64_t t0 = bc_now_ms();
	for (int i = 0; i < 20; i++) {
		int fd = send_req(port, "/plain");
		REQUIRE(fd >= 0);
		read_all(fd, buf, sizeof(buf));
		CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	}
	CHECK(bc_now_ms() - t0 < 5000);
	bc_http_waitq_wake(park_q);
	for (int i = 1; i < NPARK; i++) {
		read_all(fds[i], buf, sizeof(buf));
		CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
		CHECK(strstr(buf, "\"why\":\"resumed\"") != NULL);
	}
	REQUIRE(wait_parked(s, 1)); /* the one that parked again */
	bc_http_waitq_wake(park_q);
	read_all(fds[0], buf, sizeof(buf));
	CHECK(strstr(buf, "\"why\":\"resumed\"") != NULL);
	CHECK_EQ_INT((int)bc_http_parked_count(s), 0);
	bc_http_server_free(s);
	bc_http_waitq_free(park_q);
	park_q = NULL;
}

/* A timeout answers through the resume function; a handle resumes with a given response once;
 * stopping the server answers what is still parked. */
TEST(t_park_timeout_handle_stop)
{
	int port = 0;
	REQUIRE((park_q = bc_http_waitq_new()) != NULL);
	struct bc_http_server *s = park_server(2, &port);
	REQUIRE(s != NULL);
	char buf[4096];
	int fd = send_req(port, "/park?ms=30");
	REQUIRE(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	CHECK(strstr(buf, "\"why\":\"timeout\"") != NULL);

	fd = send_req(port, "/handle");
	REQUIRE(fd >= 0);
	struct bc_http_parked *h = NULL;
	for (int64_t deadline = bc_now_ms() + 10000; !h && bc_now_ms() < deadline;) {
		pthread_mutex_lock(&park_handle_mu);
		h = park_handle;
		park_handle = NULL;
		pthread_mutex_unlock(&park_handle_mu);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL); /* polling with a deadline */
	}
	REQUIRE(h != NULL);
	struct bc_http_res given = {0};
	bc_http_res_text(&given, 202, NULL, "given");
	CHECK_EQ_INT(bc_http_resume(h, &given), 0);
	CHECK(given.body.len == 0);
	read_all(fd, buf, sizeof(buf));
	CHECK(strncmp(buf, "HTTP/1.1 202", 12) == 0);
	CHECK(strstr(buf, "given") != NULL);
	bc_http_res_text(&given, 202, NULL, "again");
	CHECK_EQ_INT(bc_http_resume(h, &given), BC_ERR_NOT_FOUND);
	CHECK_EQ_INT(bc_http_resume(h, NULL), BC_ERR_NOT_FOUND);
	bc_http_parked_release(h);

	int fds[5];
	for (int i = 0; i < 5; i++)
		REQUIRE((fds[i] = send_req(port, "/park")) >= 0);
	REQUIRE(wait_parked(s, 5));
	bc_http_server_stop(s);
	for (int i = 0; i < 5; i++) {
		read_all(fds[i], buf, sizeof(buf));
		CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
		CHECK(strstr(buf, "\"why\":\"stopping\"") != NULL);
	}
	bc_http_server_free(s);
	bc_http_waitq_free(park_q);
	park_q = NULL;
}

static void *wake_later(void *arg)
{
	struct bc_http_server *s = arg;
	if (wait_parked(s, 1))
		bc_http_waitq_wake(park_q);
	return NULL;
}

/* bc_http_dispatch_test blocks while the request is parked, then answers like a live server. */
TEST(t_park_dispatch)
{
	REQUIRE((park_q = bc_http_waitq_new()) != NULL);
	struct bc_http_server *s = bc_http_server_new();
	REQUIRE(s != NULL);
	REQUIRE(bc_http_mount(s, NULL, NULL, park_routes, 3, "park") == 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, wake_later, s) == 0);
	int st = 0;
	json_t *j = dispatch(s, "GET", "/park", NULL, NULL, &st, NULL);
	pthread_join(t, NULL);
	CHECK_EQ_INT(st, 200);
	CHECK_STR(json_string_value(json_object_get(j, "why")), "resumed");
	json_decref(j);
	j = dispatch(s, "GET", "/park?ms=10", NULL, NULL, &st, NULL);
	CHECK_STR(json_string_value(json_object_get(j, "why")), "timeout");
	json_decref(j);
	bc_http_server_free(s);
	bc_http_waitq_free(park_q);
	park_q = NULL;
}

TEST_MAIN(T(t_dispatch_routes), T(t_dispatch_query), T(t_dispatch_mounts), T(t_dispatch_errors),
	  T(t_dispatch_request_id), T(t_form_parse), T(t_pct_decode), T(t_live_paths), T(t_live_raw),
	  T(t_live_keepalive), T(t_live_concurrent), T(t_live_client), T(t_live_fd_and_ipv6), T(t_live_unix), T(t_live_https), T(t_live_https_cork),
	  T(t_park_many), T(t_park_timeout_handle_stop), T(t_park_dispatch))
