/* libbadge credentials against a scripted peer: every managed-identity flavour (IMDS through the
 * URL hook, pod identity, App Service) and identity selector, every retry rule with an injected
 * clock (no real sleeping), cache refresh, a failed refresh, thread safety (one upstream request
 * for many threads), and the directory's client-secret and client-certificate credentials.
 * Nothing here ever connects to 169.254.169.254. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "badge/badge.h"
#include "client/client_int.h"
#include "client_peer.h"
#include "core/jose.h"
#include "core/json.h"
#include "test.h"

#define T0 1800000000 /* the fake clock's start, epoch seconds */

static struct peer P;

static void clear_env(void)
{
	unsetenv("IDENTITY_ENDPOINT");
	unsetenv("IDENTITY_HEADER");
	unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
	unsetenv("SSL_CERT_FILE");
}

static char token_bodies[16][512];
static unsigned token_next;
/* A token body as IMDS sends it (values as strings); a ring of buffers, so that a few answers can
 * be queued at once. */
static const char *tok(const char *access, int64_t expires_on)
{
	char *token_body = token_bodies[token_next++ % 16];
	snprintf(token_body, sizeof(token_bodies[0]),
		 "{\"access_token\":\"%s\",\"expires_on\":\"%lld\",\"expires_in\":\"3599\",\"resource\":"
		 "\"https://vault.azure.net\","
		 "\"token_type\":\"Bearer\"}",
		 access, (long long)expires_on);
	return token_body;
}

/* An IMDS credential pointed at the peer (the test hook), with the fake clock. */
static struct badge_credential *imds(enum badge_identity_kind kind, const char *id, struct fake_clock *fc)
{
	struct badge_credential *c = NULL;
	char base[64];
	clear_env();
	if (badge_credential_new_managed_identity(&c, kind, id) != BADGE_OK)
		return NULL;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", P.port);
	if (badge_credential_set_imds_url(c, base) != BADGE_OK ||
	    badge_credential_set_clock(c, fake_now, fake_sleep, fc) != BADGE_OK) {
		badge_credential_free(c);
		return NULL;
	}
	return c;
}

TEST(t_imds_system_assigned)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("tok-1", T0 + 86400)});
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	CHECK_STR(badge_credential_kind(c), "imds");
	char *t = NULL;
	int64_t exp = 0;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net/.default", &t, &exp), BADGE_OK);
	CHECK_STR(t, "tok-1");
	CHECK_EQ_INT(exp, T0 + 86400);
	REQUIRE(peer_count(&P) == 1);
	CHECK_STR(P.rec[0].method, "GET");
	CHECK_STR(P.rec[0].target, "/metadata/identity/oauth2/"
				   "token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
	CHECK_STR(P.rec[0].metadata, "true");
	CHECK_STR(P.rec[0].identity_header, "");
	badge_free_secret(t);
	badge_credential_free(c);
}

TEST(t_imds_default_endpoint_and_selectors)
{
	/* without the hook the credential would go to 169.254.169.254: check the URL, do not call it */
	struct badge_credential *c = NULL;
	clear_env();
	REQUIRE(badge_credential_new_managed_identity(&c, BADGE_IDENTITY_SYSTEM, NULL) == BADGE_OK);
	CHECK_STR(c->token_url, "http://169.254.169.254/metadata/identity/oauth2/token");
	badge_credential_free(c);
	CHECK_EQ_INT(badge_credential_new_managed_identity(&c, BADGE_IDENTITY_CLIENT_ID, NULL),
		     BADGE_E_INVALID);
	CHECK_EQ_INT(badge_credential_new_managed_identity(&c, BADGE_IDENTITY_SYSTEM, "x"), BADGE_E_INVALID);

	static const struct {
		enum badge_identity_kind kind;
		const char *id, *param;
	} sel[] = {{BADGE_IDENTITY_CLIENT_ID, "cid-1", "&client_id=cid-1"},
		   {BADGE_IDENTITY_OBJECT_ID, "oid-2", "&object_id=oid-2"},
		   {BADGE_IDENTITY_RESOURCE_ID, "/subscriptions/s/rg/uai",
		    "&msi_res_id=%2Fsubscriptions%2Fs%2Frg%2Fuai"}};
	for (size_t i = 0; i < 3; i++) {
		struct fake_clock fc;
		fake_init(&fc, T0);
		peer_reset(&P);
		peer_mi(&P, (struct peer_answer){200, tok("tok-u", T0 + 3600)});
		c = imds(sel[i].kind, sel[i].id, &fc);
		REQUIRE(c);
		char *t = NULL;
		CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
		REQUIRE(peer_count(&P) == 1);
		CHECK(strstr(P.rec[0].target, sel[i].param) != NULL);
		badge_free_secret(t);
		badge_credential_free(c);
	}
}

TEST(t_pod_identity)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("tok-pod", T0 + 3600)});
	clear_env();
	char host[64];
	snprintf(host, sizeof(host), "http://127.0.0.1:%d/", P.port);
	setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host, 1);
	struct badge_credential *c = NULL;
	REQUIRE(badge_credential_new_managed_identity(&c, BADGE_IDENTITY_OBJECT_ID, "oid-9") == BADGE_OK);
	CHECK_STR(badge_credential_kind(c), "pod-identity");
	REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	CHECK_STR(t, "tok-pod");
	REQUIRE(peer_count(&P) == 1);
	CHECK_STR(P.rec[0].target,
		  "/metadata/identity/oauth2/"
		  "token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&object_id=oid-9");
	CHECK_STR(P.rec[0].metadata, "true");
	badge_free_secret(t);
	badge_credential_free(c);
	clear_env();
}

TEST(t_app_service)
{
	static const struct {
		enum badge_identity_kind kind;
		const char *id, *param;
	} sel[] = {{BADGE_IDENTITY_SYSTEM, NULL, ""},
		   {BADGE_IDENTITY_CLIENT_ID, "cid-xyz", "&client_id=cid-xyz"},
		   {BADGE_IDENTITY_OBJECT_ID, "oid-9", "&principal_id=oid-9"},
		   {BADGE_IDENTITY_RESOURCE_ID, "/subscriptions/s/rg/uai",
		    "&mi_res_id=%2Fsubscriptions%2Fs%2Frg%2Fuai"}};
	for (size_t i = 0; i < 4; i++) {
		struct fake_clock fc;
		fake_init(&fc, T0);
		peer_reset(&P);
		peer_mi(&P, (struct peer_answer){200, tok("tok-app", T0 + 3600)});
		clear_env();
		char ep[96], want[512];
		/* the endpoint is used verbatim, an existing query kept */
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/msi/token?x=1", P.port);
		setenv("IDENTITY_ENDPOINT", ep, 1);
		setenv("IDENTITY_HEADER", "s3cr3t-header", 1);
		setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1", 1); /* App Service wins */
		struct badge_credential *c = NULL;
		REQUIRE(badge_credential_new_managed_identity(&c, sel[i].kind, sel[i].id) == BADGE_OK);
		CHECK_STR(badge_credential_kind(c), "app-service");
		CHECK_EQ_INT(badge_credential_set_imds_url(c, "http://127.0.0.1:1"), BADGE_E_INVALID);
		REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
		char *t = NULL;
		CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
		CHECK_STR(t, "tok-app");
		REQUIRE(peer_count(&P) == 1);
		snprintf(want, sizeof(want),
			 "/msi/token?x=1&api-version=2019-08-01&resource=https%%3A%%2F%%2Fvault.azure.net%s",
			 sel[i].param);
		CHECK_STR(P.rec[0].target, want);
		CHECK_STR(P.rec[0].identity_header, "s3cr3t-header");
		CHECK_STR(P.rec[0].metadata, "");
		badge_free_secret(t);
		badge_credential_free(c);
	}
	clear_env();
}

/* Runs one retry scenario: answers queued, expects n requests, the sleeps and the status. */
static void retry_case(const struct peer_answer *answers, size_t na, int want_rc, size_t want_requests,
		       const int64_t *want_sleeps, size_t nsleeps)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	for (size_t i = 0; i < na; i++)
		peer_mi(&P, answers[i]);
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), want_rc);
	CHECK_EQ_INT(peer_count(&P), want_requests);
	CHECK_EQ_INT(fc.nsleeps, nsleeps);
	for (size_t i = 0; i < nsleeps && i < fc.nsleeps; i++)
		CHECK_EQ_INT(fc.sleeps[i], want_sleeps[i]);
	if (want_rc == BADGE_OK)
		CHECK_STR(t, "tok-r");
	else
		CHECK(t == NULL);
	badge_free_secret(t);
	badge_credential_free(c);
}

TEST(t_retry_404_then_ok)
{
	const char *ok = tok("tok-r", T0 + 3600);
	struct peer_answer a[] = {{404, "{\"error\":\"not_found\"}"}, {404, "{}"}, {200, ok}};
	int64_t sleeps[] = {1000, 2000};
	retry_case(a, 3, BADGE_OK, 3, sleeps, 2);
}

TEST(t_retry_5xx_exhausted)
{
	struct peer_answer a[] = {{500, "{\"error\":\"boom\"}"}};
	int64_t sleeps[] = {1000, 2000, 4000, 8000, 16000};
	retry_case(a, 1, BADGE_E_UNAVAILABLE, 6, sleeps, 5);
	/* 501 and 505 are not transient */
	struct peer_answer b[] = {{501, "{}"}};
	retry_case(b, 1, BADGE_E_UNAVAILABLE, 1, NULL, 0);
	struct peer_answer d[] = {{503, "{}"}, {502, "{}"}, {200, tok("tok-r", T0 + 3600)}};
	int64_t s2[] = {1000, 2000};
	retry_case(d, 3, BADGE_OK, 3, s2, 2);
}

TEST(t_retry_429_retry_after)
{
	struct peer_answer a[] = {
		{429, "{}", "Retry-After", "7"}, {429, "{}"}, {200, tok("tok-r", T0 + 3600)}};
	int64_t sleeps[] = {7000, 2000}; /* Retry-After replaces the computed delay */
	retry_case(a, 3, BADGE_OK, 3, sleeps, 2);
}

/* The millisecond headers the Azure SDKs honour, in their order: retry-after-ms, then
 * x-ms-retry-after-ms, then Retry-After (seconds), whichever order the server sends them in. */
TEST(t_retry_after_ms)
{
	struct peer_answer a[] = {
		{429, "{}", "retry-after-ms", "1500"},
		{429, "{}", "x-ms-retry-after-ms", "800"},
		{429, "{}", "Retry-After", "7", 0, "retry-after-ms", "250"},
		{429, "{}", "retry-after-ms", "300", 0, "x-ms-retry-after-ms", "900", "Retry-After", "7"},
		{429, "{}", "x-ms-retry-after-ms", "bogus", 0, "Retry-After", "2"},
		{200, tok("tok-r", T0 + 3600)}};
	int64_t sleeps[] = {1500, 800, 250, 300, 2000};
	retry_case(a, 6, BADGE_OK, 6, sleeps, 5);
}

TEST(t_retry_410_for_70s)
{
	struct peer_answer a[] = {{410, "{}"}};
	/* 1+2+4+8+16+32 = 63 s; a further 64 s would pass 70 s */
	int64_t sleeps[] = {1000, 2000, 4000, 8000, 16000, 32000};
	retry_case(a, 1, BADGE_E_UNAVAILABLE, 7, sleeps, 6);
	struct peer_answer b[] = {{410, "{}"}, {410, "{}"}, {200, tok("tok-r", T0 + 3600)}};
	int64_t s2[] = {1000, 2000};
	retry_case(b, 3, BADGE_OK, 3, s2, 2);
}

TEST(t_400_is_final)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P,
		(struct peer_answer){
			400, "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}"});
	struct badge_credential *c = imds(BADGE_IDENTITY_CLIENT_ID, "nobody", &fc);
	REQUIRE(c);
	char *t = NULL, msg[256];
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_E_AUTH);
	CHECK_EQ_INT(peer_count(&P), 1);
	CHECK_EQ_INT(fc.nsleeps, 0);
	badge_credential_errmsg(c, msg, sizeof(msg));
	CHECK(strstr(msg, "400") && strstr(msg, "Identity not found"));
	/* 403, 401 are final too */
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){403, "{\"error\":\"forbidden\"}"});
	CHECK_EQ_INT(badge_credential_get_token(c, "https://other.example", &t, NULL), BADGE_E_AUTH);
	CHECK_EQ_INT(peer_count(&P), 1);
	badge_credential_free(c);
}

TEST(t_unreachable_is_retried)
{
	/* a port nobody listens on */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	close(fd);
	struct fake_clock fc;
	fake_init(&fc, T0);
	struct badge_credential *c = NULL;
	char base[64], msg[256];
	clear_env();
	REQUIRE(badge_credential_new_managed_identity(&c, BADGE_IDENTITY_SYSTEM, NULL) == BADGE_OK);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	REQUIRE(badge_credential_set_imds_url(c, base) == BADGE_OK);
	REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_E_UNAVAILABLE);
	CHECK_EQ_INT(fc.nsleeps, 5);
	badge_credential_errmsg(c, msg, sizeof(msg));
	CHECK(strstr(msg, "managed identity (imds)") != NULL);
	badge_credential_free(c);
}

TEST(t_cache_and_refresh)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("long-1", T0 + 86400)});
	peer_mi(&P, (struct peer_answer){200, tok("long-2", T0 + 43201 + 86400)});
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	badge_free_secret(t);
	/* a 24 h token: cached until half-life */
	fake_advance(&fc, 43199);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net/.default", &t, NULL), BADGE_OK);
	CHECK_STR(t, "long-1");
	badge_free_secret(t);
	CHECK_EQ_INT(peer_count(&P), 1);
	fake_advance(&fc, 2);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	CHECK_STR(t, "long-2");
	badge_free_secret(t);
	CHECK_EQ_INT(peer_count(&P), 2);

	/* another resource is cached separately; a 1 h token refreshes 5 min before expiry */
	peer_reset(&P);
	int64_t now = fake_now(&fc) / 1000;
	peer_mi(&P, (struct peer_answer){200, tok("short-1", now + 3600)});
	peer_mi(&P, (struct peer_answer){200, tok("short-2", now + 7200)});
	CHECK_EQ_INT(badge_credential_get_token(c, "https://storage.azure.com", &t, NULL), BADGE_OK);
	CHECK_STR(t, "short-1");
	badge_free_secret(t);
	CHECK(strstr(P.rec[0].target, "resource=https%3A%2F%2Fstorage.azure.com") != NULL);
	fake_advance(&fc, 3600 - 301);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://storage.azure.com", &t, NULL), BADGE_OK);
	CHECK_STR(t, "short-1");
	badge_free_secret(t);
	fake_advance(&fc, 2);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://storage.azure.com", &t, NULL), BADGE_OK);
	CHECK_STR(t, "short-2");
	badge_free_secret(t);
	CHECK_EQ_INT(peer_count(&P), 2);
	badge_credential_free(c);
}

TEST(t_failed_refresh_keeps_valid_token)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("keep", T0 + 3600)});
	peer_mi(&P, (struct peer_answer){400, "{\"error\":\"invalid_request\"}"});
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	badge_free_secret(t);
	fake_advance(&fc, 3400); /* past the refresh point, before expiry */
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	CHECK_STR(t, "keep");
	badge_free_secret(t);
	CHECK_EQ_INT(peer_count(&P), 2);
	/* the failure is not retried on every call: the valid token serves for a minute */
	fake_advance(&fc, 59);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	CHECK_STR(t, "keep");
	badge_free_secret(t);
	CHECK_EQ_INT(peer_count(&P), 2);
	fake_advance(&fc, 241); /* expired: the failure shows */
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_E_AUTH);
	badge_credential_free(c);
}

TEST(t_bad_token_responses)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	char *t = NULL;
	static const char *const bodies[] = {"{\"expires_on\":\"1\"}", "{\"access_token\":\"x\"}",
					     "{\"access_token\":\"x\",\"expires_on\":\"1\",\"error\":\"e\"}"};
	for (size_t i = 0; i < 3; i++) {
		peer_reset(&P);
		peer_mi(&P, (struct peer_answer){200, bodies[i]});
		char r[64];
		snprintf(r, sizeof(r), "https://r%zu.example", i);
		CHECK(badge_credential_get_token(c, r, &t, NULL) != BADGE_OK);
		CHECK(t == NULL);
	}
	/* expires_in alone is accepted (the directory's v2 answer) */
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, "{\"access_token\":\"in\",\"expires_in\":3599}"});
	int64_t exp = 0;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://in.example", &t, &exp), BADGE_OK);
	CHECK_EQ_INT(exp, T0 + 3599);
	badge_free_secret(t);
	CHECK_EQ_INT(badge_credential_get_token(c, "", &t, NULL), BADGE_E_INVALID);
	CHECK_EQ_INT(badge_credential_get_token(c, NULL, &t, NULL), BADGE_E_INVALID);
	badge_credential_free(c);
}

/* ---- threads ---- */

struct thr {
	struct badge_credential *c;
	const char *resource;
	int rc;
	char token[64];
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	char *tok = NULL;
	t->rc = badge_credential_get_token(t->c, t->resource, &tok, NULL);
	if (tok)
		snprintf(t->token, sizeof(t->token), "%s", tok);
	badge_free_secret(tok);
	return NULL;
}

static void run_threads(struct badge_credential *c, struct thr *ts, size_t n, const char *const *resources,
			size_t nres)
{
	pthread_t th[16];
	for (size_t i = 0; i < n; i++) {
		ts[i] = (struct thr){.c = c, .resource = resources[i % nres]};
		pthread_create(&th[i], NULL, thr_main, &ts[i]);
	}
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

TEST(t_threads_share_one_request)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("shared", T0 + 3600), NULL, NULL, 200});
	struct badge_credential *c = imds(BADGE_IDENTITY_SYSTEM, NULL, &fc);
	REQUIRE(c);
	struct thr ts[16];
	const char *res[] = {"https://vault.azure.net"};
	run_threads(c, ts, 16, res, 1);
	for (size_t i = 0; i < 16; i++) {
		CHECK_EQ_INT(ts[i].rc, BADGE_OK);
		CHECK_STR(ts[i].token, "shared");
	}
	CHECK_EQ_INT(peer_count(&P), 1);

	/* two resources at once: one request each */
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){200, tok("two", T0 + 3600), NULL, NULL, 100});
	const char *two[] = {"https://a.example", "https://b.example"};
	run_threads(c, ts, 12, two, 2);
	for (size_t i = 0; i < 12; i++)
		CHECK_EQ_INT(ts[i].rc, BADGE_OK);
	CHECK_EQ_INT(peer_count(&P), 2);

	/* a failure is shared by the threads that waited for it (no stampede) */
	peer_reset(&P);
	peer_mi(&P, (struct peer_answer){400, "{\"error\":\"invalid_request\"}", NULL, NULL, 200});
	const char *bad[] = {"https://bad.example"};
	run_threads(c, ts, 8, bad, 1);
	for (size_t i = 0; i < 8; i++)
		CHECK_EQ_INT(ts[i].rc, BADGE_E_AUTH);
	CHECK(peer_count(&P) < 8);
	badge_credential_free(c);
}

/* ---- the directory ---- */

static void authority(char *out, size_t n)
{
	snprintf(out, n, "https://localhost:%d/", P.tls_port);
}

TEST(t_client_secret)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){
			       200,
			       "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"dir-1\"}"});
	char auth[64];
	authority(auth, sizeof(auth));
	struct badge_credential *c = NULL;
	CHECK_EQ_INT(badge_credential_new_client_secret(&c, "http://localhost:1", "t1", "app", "s"),
		     BADGE_E_TLS);
	REQUIRE(badge_credential_new_client_secret(&c, auth, "tenant-1", "app-1", "se cr&t") == BADGE_OK);
	CHECK_STR(badge_credential_kind(c), "client-secret");
	REQUIRE(badge_credential_set_ca_file(c, P.ca_file) == BADGE_OK);
	REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
	char *t = NULL;
	int64_t exp = 0;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, &exp), BADGE_OK);
	CHECK_STR(t, "dir-1");
	CHECK_EQ_INT(exp, T0 + 3599);
	badge_free_secret(t);
	REQUIRE(peer_count(&P) == 1);
	CHECK_STR(P.rec[0].method, "POST");
	CHECK_STR(P.rec[0].target, "/tenant-1/oauth2/v2.0/token");
	CHECK_STR(
		P.rec[0].body,
		"grant_type=client_credentials&client_id=app-1&scope=https%3A%2F%2Fvault.azure.net%2F.default"
		"&client_secret=se%20cr%26t");
	/* a resource with a trailing slash: scope "https://management.example/.default" */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"expires_in\":3599,\"access_token\":\"dir-2\"}"});
	CHECK_EQ_INT(badge_credential_get_token(c, "https://management.example/", &t, NULL), BADGE_OK);
	badge_free_secret(t);
	CHECK(strstr(P.rec[0].body, "scope=https%3A%2F%2Fmanagement.example%2F.default&") != NULL);
	/* a refusal is final (not retried), with the directory's description */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){401, "{\"error\":\"invalid_client\",\"error_description\":"
						 "\"AADSTS7000215: Invalid client secret\"}"});
	CHECK_EQ_INT(badge_credential_get_token(c, "https://x.example", &t, NULL), BADGE_E_AUTH);
	CHECK_EQ_INT(peer_count(&P), 1);
	char msg[256];
	badge_credential_errmsg(c, msg, sizeof(msg));
	CHECK(strstr(msg, "Invalid client secret") != NULL);
	/* an untrusted server: no CA file, no token */
	REQUIRE(badge_credential_set_ca_file(c, NULL) == BADGE_OK);
	CHECK(badge_credential_get_token(c, "https://y.example", &t, NULL) != BADGE_OK);
	badge_credential_free(c);
}

TEST(t_client_certificate)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"expires_in\":3599,\"access_token\":\"cert-1\"}"});
	/* a certificate and key of its own */
	struct bc_error err = {0};
	struct bc_ca *ca = NULL;
	struct bc_buf cert = {0}, key = {0};
	char certf[160], keyf[160], both[160];
	REQUIRE(bc_ca_load_or_create(P.dir, "x", &ca, &err) == BC_OK);
	const char *names[] = {"app-1"};
	REQUIRE(bc_ca_issue_server(ca, names, 1, 1, &cert, &key, &err) == BC_OK);
	snprintf(certf, sizeof(certf), "%s/app.pem", P.dir);
	snprintf(keyf, sizeof(keyf), "%s/app.key", P.dir);
	snprintf(both, sizeof(both), "%s/both.pem", P.dir);
	REQUIRE(bc_write_file_atomic(certf, cert.data, cert.len, 0600, &err) == BC_OK);
	REQUIRE(bc_write_file_atomic(keyf, key.data, key.len, 0600, &err) == BC_OK);
	REQUIRE(bc_buf_append(&cert, key.data, key.len) == BC_OK);
	REQUIRE(bc_write_file_atomic(both, cert.data, cert.len, 0600, &err) == BC_OK);
	char auth[64];
	authority(auth, sizeof(auth));
	struct badge_credential *c = NULL;
	/* the CA's key does not match the leaf certificate */
	char cakey[160];
	snprintf(cakey, sizeof(cakey), "%s/ca.key", P.dir);
	CHECK_EQ_INT(badge_credential_new_client_certificate(&c, auth, "tenant-1", "app-1", certf, cakey),
		     BADGE_E_INVALID);
	REQUIRE(badge_credential_new_client_certificate(&c, auth, "tenant-1", "app-1", both, NULL) ==
		BADGE_OK);
	badge_credential_free(c);
	REQUIRE(badge_credential_new_client_certificate(&c, auth, "tenant-1", "app-1", certf, keyf) ==
		BADGE_OK);
	CHECK_STR(badge_credential_kind(c), "client-certificate");
	REQUIRE(badge_credential_set_ca_file(c, P.ca_file) == BADGE_OK);
	REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
	char *t = NULL;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://vault.azure.net", &t, NULL), BADGE_OK);
	CHECK_STR(t, "cert-1");
	badge_free_secret(t);
	REQUIRE(peer_count(&P) == 1);
	const char *body = P.rec[0].body;
	CHECK(strstr(body, "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-"
			   "bearer") != NULL);
	CHECK(strstr(body, "client_secret") == NULL);
	const char *a = strstr(body, "client_assertion=");
	REQUIRE(a);
	a += strlen("client_assertion=");
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	REQUIRE(bc_jwt_parse(&jwt, a, strcspn(a, "&"), &err) == BC_OK);
	/* signed by the certificate's key, naming it by x5t#S256, for this endpoint */
	struct bc_jwk *pub = NULL;
	X509 *x = NULL;
	char x5t[28], x5t256[44], want_aud[128];
	REQUIRE(bc_jwk_from_pem(&pub, cert.data, strlen(cert.data), &err) == BC_OK);
	REQUIRE(bc_x509_parse_pem(cert.data, cert.len, &x, &err) == BC_OK);
	REQUIRE(bc_x509_thumbprints(x, x5t, x5t256, &err) == BC_OK);
	CHECK_EQ_INT(bc_jwt_verify(&jwt, pub, NULL, &err), BC_OK);
	CHECK_STR(bc_json_str(jwt.header, "x5t#S256"), x5t256);
	snprintf(want_aud, sizeof(want_aud), "https://localhost:%d/tenant-1/oauth2/v2.0/token", P.tls_port);
	CHECK_STR(bc_json_str(jwt.claims, "aud"), want_aud);
	CHECK_STR(bc_json_str(jwt.claims, "iss"), "app-1");
	CHECK_STR(bc_json_str(jwt.claims, "sub"), "app-1");
	CHECK(bc_json_str(jwt.claims, "jti") != NULL);
	CHECK_EQ_INT(bc_json_int(jwt.claims, "exp", 0), T0 + 600);
	X509_free(x);
	bc_jwk_free(pub);
	bc_jwt_release(&jwt);
	badge_credential_free(c);
	bc_buf_wipe(&key);
	bc_buf_release(&cert);
	bc_ca_free(ca);
}

TEST(t_access_token)
{
	struct fake_clock fc;
	fake_init(&fc, T0);
	struct badge_credential *c = NULL;
	CHECK_EQ_INT(badge_credential_new_access_token(&c, "", 0), BADGE_E_INVALID);
	REQUIRE(badge_credential_new_access_token(&c, "fixed", T0 + 60) == BADGE_OK);
	REQUIRE(badge_credential_set_clock(c, fake_now, fake_sleep, &fc) == BADGE_OK);
	CHECK_STR(badge_credential_kind(c), "access-token");
	char *t = NULL;
	int64_t exp = 0;
	CHECK_EQ_INT(badge_credential_get_token(c, "https://any.example", &t, &exp), BADGE_OK);
	CHECK_STR(t, "fixed");
	CHECK_EQ_INT(exp, T0 + 60);
	badge_free_secret(t);
	t = NULL;
	fake_advance(&fc, 60);
	CHECK_EQ_INT(badge_credential_get_token(c, "https://any.example", &t, NULL), BADGE_E_AUTH);
	CHECK(t == NULL);
	badge_credential_free(c);
}

TEST(t_start)
{
	REQUIRE(peer_start(&P) == 0);
}

TEST(t_stop)
{
	peer_stop(&P);
}

TEST_MAIN(T(t_start), T(t_imds_system_assigned), T(t_imds_default_endpoint_and_selectors), T(t_pod_identity),
	  T(t_app_service), T(t_retry_404_then_ok), T(t_retry_5xx_exhausted), T(t_retry_429_retry_after), T(t_retry_after_ms),
	  T(t_retry_410_for_70s), T(t_400_is_final), T(t_unreachable_is_retried), T(t_cache_and_refresh),
	  T(t_failed_refresh_keeps_valid_token), T(t_bad_token_responses), T(t_threads_share_one_request),
	  T(t_client_secret), T(t_client_certificate), T(t_access_token), T(t_stop))
