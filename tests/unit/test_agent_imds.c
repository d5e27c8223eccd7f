/* The metadata endpoint's rules: what is refused and how, which identity a request names, the
 * body shapes, and the per-instance rate limiter driven by an injected clock. */
#include <jansson.h>
#include <string.h>
#include "agent/imds.h"
#include "core/util.h"
#include "test.h"

#define Q(k, v) {k, v}

static struct imds_req_view view(const char *method, const char *metadata, const struct bc_http_kv *q, size_t n)
{
	struct imds_req_view v = {0};
	v.method = method;
	v.metadata = metadata;
	v.metadata_count = metadata ? 1 : 0;
	v.query = q;
	v.nquery = n;
	return v;
}

TEST(probe_without_header_gets_fast_400)
{
	struct imds_req_view v = view("GET", NULL, NULL, 0);
	struct imds_token_query q;
	struct imds_reject rej;
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	CHECK_STR(rej.error, "invalid_request");
	CHECK_STR(rej.description, "Required metadata header not specified");
}

TEST(metadata_must_be_true)
{
	struct bc_http_kv kv[] = {Q("api-version", "2018-02-01"), Q("resource", "https://vault.badge.internal")};
	struct imds_token_query q;
	struct imds_reject rej;
	struct imds_req_view v = view("GET", "false", kv, 2);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	v = view("GET", "True", kv, 2); /* case-insensitive, as Azure */
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), 0);
	v.metadata_count = 2;           /* two Metadata headers: refused */
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
}

TEST(method_and_forwarding_refused)
{
	struct bc_http_kv kv[] = {Q("api-version", "2018-02-01"), Q("resource", "r")};
	struct imds_token_query q;
	struct imds_reject rej;
	struct imds_req_view v = view("POST", "true", kv, 2);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 405);
	v = view("GET", "true", kv, 2);
	v.forwarded = true;
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
}

TEST(api_version_rules)
{
	struct imds_token_query q;
	struct imds_reject rej;
	struct bc_http_kv none[] = {Q("resource", "r")};
	struct imds_req_view v = view("GET", "true", none, 1);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	CHECK(rej.list_versions);
	json_t *body = imds_error_body(&rej);
	CHECK(json_array_size(json_object_get(body, "newest-versions")) > 5);
	json_decref(body);
	struct bc_http_kv old[] = {Q("api-version", "2017-12-01"), Q("resource", "r")};
	v = view("GET", "true", old, 2);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	struct bc_http_kv bogus[] = {Q("api-version", "2018-02-02"), Q("resource", "r")};
	v = view("GET", "true", bogus, 2);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	struct bc_http_kv newer[] = {Q("api-version", "2021-02-01"), Q("resource", "r")};
	v = view("GET", "true", newer, 2);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), 0);
	CHECK(imds_version_known("2017-03-01", NULL));
	CHECK(!imds_version_known("2017-03-01", "2018-02-01"));
}

TEST(resource_required_and_duplicates_refused)
{
	struct imds_token_query q;
	struct imds_reject rej;
	struct bc_http_kv nores[] = {Q("api-version", "2018-02-01")};
	struct imds_req_view v = view("GET", "true", nores, 1);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_STR(rej.description, "Required audience parameter not specified");
	struct bc_http_kv dup[] = {Q("api-version", "2018-02-01"), Q("resource", "a"), Q("resource", "a")};
	v = view("GET", "true", dup, 3);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
}

TEST(identity_parameters)
{
	struct imds_token_query q;
	struct imds_reject rej;
	struct bc_http_kv one[] = {Q("api-version", "2018-02-01"), Q("resource", "r"), Q("msi_res_id", "/subscriptions/x")};
	struct imds_req_view v = view("GET", "true", one, 3);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), 0);
	CHECK_EQ_INT(q.kind, IMDS_ID_RESOURCE);
	CHECK_STR(q.id, "/subscriptions/x");
	struct bc_http_kv mi[] = {Q("api-version", "2018-02-01"), Q("resource", "r"), Q("mi_res_id", "/s")};
	v = view("GET", "true", mi, 3);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), 0);
	CHECK_EQ_INT(q.kind, IMDS_ID_RESOURCE);
	struct bc_http_kv two[] = {Q("api-version", "2018-02-01"), Q("resource", "r"), Q("client_id", "a"),
				   Q("object_id", "b")};
	v = view("GET", "true", two, 4);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	/* principal_id is App Service's name only */
	struct bc_http_kv pid[] = {Q("api-version", "2018-02-01"), Q("resource", "r"), Q("principal_id", "b")};
	v = view("GET", "true", pid, 3);
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_IMDS, &v, &q, &rej), 0);
	CHECK_EQ_INT(q.kind, IMDS_ID_DEFAULT);
}

TEST(appservice_flavour)
{
	struct imds_token_query q;
	struct imds_reject rej;
	struct bc_http_kv kv[] = {Q("api-version", "2019-08-01"), Q("resource", "r"), Q("principal_id", "p")};
	struct imds_req_view v = view("GET", NULL, kv, 3);
	v.expected_secret = "s3cret";
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_APPSERVICE, &v, &q, &rej), -1); /* no header */
	CHECK_EQ_INT(rej.status, 400);
	v.identity_header = "wrong";
	v.identity_header_count = 1;
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_APPSERVICE, &v, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 401);
	v.identity_header = "s3cret";
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_APPSERVICE, &v, &q, &rej), 0);
	CHECK_EQ_INT(q.kind, IMDS_ID_OBJECT);
	CHECK_STR(q.id, "p");
	struct bc_http_kv oldver[] = {Q("api-version", "2018-02-01"), Q("resource", "r")};
	v.query = oldver;
	v.nquery = 2;
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_APPSERVICE, &v, &q, &rej), -1);
	v.expected_secret = ""; /* an instance without a secret accepts nobody */
	v.identity_header = "";
	v.query = kv;
	v.nquery = 3;
	CHECK_EQ_INT(imds_check_token(IMDS_FLAVOUR_APPSERVICE, &v, &q, &rej), -1);
}

static const struct agent_identity ids[] = {
	{false, "11111111-1111-4111-8111-111111111111", "aaaaaaaa-1111-4111-8111-111111111111", "t",
	 "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u1"},
	{true, "22222222-2222-4222-8222-222222222222", "bbbbbbbb-2222-4222-8222-222222222222", "t",
	 "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm"},
	{false, "33333333-3333-4333-8333-333333333333", "cccccccc-3333-4333-8333-333333333333", "t",
	 "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u2"},
};

TEST(identity_selection)
{
	struct imds_reject rej;
	struct imds_token_query q = {.kind = IMDS_ID_DEFAULT};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), 1); /* system-assigned wins */
	CHECK_EQ_INT(imds_select_identity(ids, 1, &q, &rej), 0); /* the only user-assigned one */
	struct agent_identity two_user[] = {ids[0], ids[2]};
	CHECK_EQ_INT(imds_select_identity(two_user, 2, &q, &rej), -1); /* ambiguous */
	CHECK_EQ_INT(rej.status, 400);
	CHECK_EQ_INT(imds_select_identity(ids, 0, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	q = (struct imds_token_query){.kind = IMDS_ID_CLIENT, .id = "CCCCCCCC-3333-4333-8333-333333333333"};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), 2);
	q = (struct imds_token_query){.kind = IMDS_ID_OBJECT, .id = "11111111-1111-4111-8111-111111111111"};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), 0);
	q = (struct imds_token_query){.kind = IMDS_ID_RESOURCE,
				      .id = "/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/U2"};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), 2);
	/* another instance's identity: 400, never 404, never a fallback */
	q = (struct imds_token_query){.kind = IMDS_ID_CLIENT, .id = "dddddddd-4444-4444-8444-444444444444"};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), -1);
	CHECK_EQ_INT(rej.status, 400);
	/* a client id given as object id does not match */
	q = (struct imds_token_query){.kind = IMDS_ID_OBJECT, .id = "aaaaaaaa-1111-4111-8111-111111111111"};
	CHECK_EQ_INT(imds_select_identity(ids, 3, &q, &rej), -1);
}

TEST(success_body_all_strings)
{
	struct imds_token t = {.access_token = "eyJ.x.y", .expires_on = 1000 + 86399, .not_before = 999};
	struct bc_buf out = {0};
	REQUIRE(imds_token_body(&t, "cid", "https://vault.badge.internal:8443", 1000, &out) == BC_OK);
	json_t *b = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
	REQUIRE(b);
	const char *keys[] = {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in",
			      "not_before", "resource", "token_type"};
	CHECK_EQ_INT(json_object_size(b), 8);
	for (size_t i = 0; i < 8; i++)
		CHECK(json_is_string(json_object_get(b, keys[i])));
	/* IMDS's key order, as the clients have seen it */
	CHECK(strncmp(out.data, "{\"access_token\":\"eyJ.x.y\",\"client_id\":\"cid\",\"expires_in\"", 56) == 0);
	CHECK_STR(json_string_value(json_object_get(b, "expires_in")), "86399");
	CHECK_STR(json_string_value(json_object_get(b, "expires_on")), "87399");
	CHECK_STR(json_string_value(json_object_get(b, "resource")), "https://vault.badge.internal:8443");
	CHECK_STR(json_string_value(json_object_get(b, "token_type")), "Bearer");
	CHECK(!json_object_get(b, "error") && !json_object_get(b, "message"));
	json_decref(b);
	/* a resource that is not UTF-8 is refused and nothing is written; quotes are escaped */
	size_t len = out.len;
	CHECK(imds_token_body(&t, "cid", "https://x\xff", 1000, &out) == BC_ERR_INVALID);
	CHECK_EQ_INT(out.len, len);
	bc_buf_reset(&out);
	REQUIRE(imds_token_body(&t, "cid", "a\"b\\c\n", 1000, &out) == BC_OK);
	b = json_loadb(out.data, out.len, 0, NULL);
	REQUIRE(b);
	CHECK_STR(json_string_value(json_object_get(b, "resource")), "a\"b\\c\n");
	json_decref(b);
	bc_buf_release(&out);
}

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

TEST(rate_limiter_window_and_concurrency)
{
	struct imds_limiter l;
	fake_now = 5000;
	bc_clock_set(fake_clock, NULL);
	imds_limiter_init(&l, 20, 5);
	int admitted = 0;
	for (int i = 0; i < 25; i++)
		if (imds_limiter_enter(&l) == 0) {
			admitted++;
			imds_limiter_leave(&l);
		}
	CHECK_EQ_INT(admitted, 20);
	CHECK(imds_limiter_enter(&l) > 0); /* Retry-After at least one second */
	fake_now++;                        /* the next second: admitted again */
	CHECK_EQ_INT(imds_limiter_enter(&l), 0);
	imds_limiter_leave(&l);
	/* five in flight at once, the sixth refused until one leaves */
	fake_now++;
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(imds_limiter_enter(&l), 0);
	CHECK(imds_limiter_enter(&l) > 0);
	imds_limiter_leave(&l);
	CHECK_EQ_INT(imds_limiter_enter(&l), 0);
	for (int i = 0; i < 5; i++)
		imds_limiter_leave(&l);
	imds_limiter_release(&l);
	imds_limiter_init(&l, 0, 0); /* unlimited */
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(imds_limiter_enter(&l), 0);
	imds_limiter_release(&l);
	bc_clock_set(NULL, NULL);
}

TEST_MAIN(T(probe_without_header_gets_fast_400), T(metadata_must_be_true), T(method_and_forwarding_refused),
	  T(api_version_rules), T(resource_required_and_duplicates_refused), T(identity_parameters),
	  T(appservice_flavour), T(identity_selection), T(success_body_all_strings),
	  T(rate_limiter_window_and_concurrency))
