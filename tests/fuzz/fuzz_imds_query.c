/* Fuzzes the metadata endpoint's request rules over arbitrary queries. Input: a first byte of
 * flags (bit 0 App Service flavour, bit 1 Metadata header present, bit 2 forwarded, bit 3 POST),
 * then a raw query string split on '&' and '=' and percent-decoded as the HTTP adapter does.
 * Whatever the input, a checked query must name at most one identity, select an identity of
 * the instance or none, and build a body whose resource echoes the query's. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agent/imds.h"
#include "core/http.h"
#include "core/limits.h"

static const struct agent_identity ids[] = {
	{true, "22222222-2222-4222-8222-222222222222", "bbbbbbbb-2222-4222-8222-222222222222", "t", "/subscriptions/s/vm"},
	{false, "11111111-1111-4111-8111-111111111111", "aaaaaaaa-1111-4111-8111-111111111111", "t", "/subscriptions/s/u1"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	uint8_t flags = data[0];
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	struct bc_http_kv kv[BC_LIMIT_HTTP_QUERY_PARAMS];
	size_t n = 0;
	char *save = NULL;
	for (char *p = strtok_r(s, "&", &save); p && n < BC_LIMIT_HTTP_QUERY_PARAMS; p = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(p, '=');
		char *v = eq ? eq + 1 : p + strlen(p);
		if (eq)
			*eq = '\0';
		long kl = bc_http_pct_decode(p, strlen(p), true);
		long vl = bc_http_pct_decode(v, strlen(v), true);
		if (kl < 0 || vl < 0)
			continue;
		p[kl] = '\0';
		v[vl] = '\0';
		kv[n++] = (struct bc_http_kv){p, v};
	}
	struct imds_req_view view = {
		.method = (flags & 8) ? "POST" : "GET",
		.metadata = (flags & 2) ? "true" : NULL,
		.metadata_count = (flags & 2) ? 1 : 0,
		.forwarded = (flags & 4) != 0,
		.identity_header = "secret",
		.identity_header_count = 1,
		.expected_secret = "secret",
		.query = kv,
		.nquery = n,
	};
	struct imds_token_query q;
	struct imds_reject rej;
	enum imds_flavour fl = (flags & 1) ? IMDS_FLAVOUR_APPSERVICE : IMDS_FLAVOUR_IMDS;
	if (imds_check_token(fl, &view, &q, &rej) == 0) {
		if (!q.resource || !*q.resource || (q.kind != IMDS_ID_DEFAULT && !q.id))
			abort();
		int idx = imds_select_identity(ids, 2, &q, &rej);
		if (idx >= 2)
			abort();
		if (idx < 0 && rej.status != 400)
			abort(); /* never a 404 */
		struct imds_token t = {.access_token = "x.y.z", .expires_on = 200, .not_before = 100};
		struct bc_buf out = {0};
		if (imds_token_body(&t, "c", q.resource, 100, &out) == BC_OK) {
			json_t *b = json_loadb(out.data, out.len, 0, NULL);
			if (!b || strcmp(json_string_value(json_object_get(b, "resource")), q.resource) != 0)
				abort();
			json_decref(b);
		} else if (out.len) {
			abort();
		}
		bc_buf_release(&out);
	} else {
		json_t *b = imds_error_body(&rej);
		if (!rej.status || !rej.error || !rej.description)
			abort();
		json_decref(b);
	}
	imds_check_metadata(&view, (flags & 16) != 0, &rej);
	free(s);
	return 0;
}
