/* Fuzzes request-target handling (absolute form, path normalisation, per-segment decoding,
 * query parsing) and routing through bc_http_dispatch_test. Input: "METHOD\nHOST\nTARGET";
 * missing lines default to GET and no Host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/http.h"
#include "core/log.h"

static void echo(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	/* everything a handler may read must be readable */
	size_t n = strlen(req->path);
	for (size_t i = 0; i < req->ncaptures; i++)
		n += strlen(req->captures[i]);
	for (size_t i = 0; i < req->nquery; i++)
		n += strlen(req->query[i].key) + strlen(req->query[i].value);
	if (bc_http_query_count(req, "api-version") > req->nquery || req->path[0] != '/')
		abort();
	bc_http_res_json(res, n ? 200 : 204, NULL);
}

static const struct bc_route routes[] = {
	{"GET", "/metadata/identity/oauth2/token", echo, NULL, 0},
	{"POST", "/keys/{name}/{version}/sign", echo, NULL, 0},
	{"GET", "/secrets/{name}/{version}", echo, NULL, 0},
	{"GET", "/secrets/{name}", echo, NULL, 0},
	{"*", "/subscriptions/{sub}/resourceGroups/{rg}", echo, NULL, 0},
};

static struct bc_http_server *server(void)
{
	static struct bc_http_server *srv;
	if (srv)
		return srv;
	bc_log_set_level(BC_LOG_OFF);
	srv = bc_http_server_new();
	if (!srv || bc_http_mount(srv, ".vault.badge.internal", NULL, routes, 4, NULL) ||
	    bc_http_mount(srv, NULL, "/vaults/{vault}", routes, 4, NULL) ||
	    bc_http_mount(srv, NULL, NULL, routes, sizeof(routes) / sizeof(routes[0]), NULL))
		abort();
	return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	const char *method = "GET", *host = NULL, *target = s;
	char *nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		method = s;
		host = nl + 1;
		target = nl + 1;
		char *nl2 = strchr(nl + 1, '\n');
		if (nl2) {
			*nl2 = '\0';
			target = nl2 + 1;
		} else {
			host = NULL;
		}
	}
	struct bc_http_res res = {0};
	if (bc_http_dispatch_test(server(), method, target, host, NULL, 0, "", 0, &res) == 0) {
		if (res.status < 100 || res.status > 599)
			abort();
		if (res.status >= 400 && res.body.len == 0)
			abort();
	}
	bc_http_res_release(&res);
	free(s);
	return 0;
}
