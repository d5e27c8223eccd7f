/* libbadge's Key Vault client against a scripted HTTPS peer: the challenge flow (first request
 * without token or body, resource from WWW-Authenticate, subdomain check, token, retry), the
 * bearer up front afterwards, a rejected token retried once, https only, nextLink confined to
 * the vault, retries with the injected sleep, error mapping, and every secret and key
 * operation's request. The managed identity behind it is the peer's App Service endpoint. */
#include "badge/badge.h"
#include "client/client_int.h"
#include "client_peer.h"
#include "core/b64.h"
#include "test.h"

#define T0 1800000000

static struct peer P;
static struct fake_clock FC;
static char CHALLENGE[] =
	"Bearer authorization=\"https://login.localhost/tenant-1\", resource=\"https://vault.localhost\"";
static const char UNAUTH[] =
	"{\"error\":\"AKV10000\",\"message\":\"Request is missing a Bearer or PoP token.\"}";

static struct badge_credential *app_service(void)
{
	char ep[96];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/msi/token", P.port);
	setenv("IDENTITY_ENDPOINT", ep, 1);
	setenv("IDENTITY_HEADER", "hdr", 1);
	struct badge_credential *c = NULL;
	if (badge_credential_new_managed_identity(&c, BADGE_IDENTITY_SYSTEM, NULL) != BADGE_OK)
		return NULL;
	unsetenv("IDENTITY_ENDPOINT");
	unsetenv("IDENTITY_HEADER");
	if (badge_credential_set_clock(c, fake_now, fake_sleep, &FC) != BADGE_OK) {
		badge_credential_free(c);
		return NULL;
	}
	return c;
}

static void mi_ok(const char *token)
{
	static char bodies[8][256];
	static unsigned n;
	char *b = bodies[n++ % 8];
	snprintf(b, sizeof(bodies[0]), "{\"access_token\":\"%s\",\"expires_on\":%lld}", token,
		 (long long)T0 + 3600);
	peer_mi(&P, (struct peer_answer){200, b});
}

static struct badge_keyvault *vault(struct badge_credential *c, const char *host)
{
	char url[128];
	struct badge_keyvault *kv = NULL;
	snprintf(url, sizeof(url), "https://%s:%d", host, P.tls_port);
	if (badge_keyvault_new(&kv, url, c) != BADGE_OK)
		return NULL;
	if (badge_keyvault_set_ca_file(kv, P.ca_file) != BADGE_OK) {
		badge_keyvault_free(kv);
		return NULL;
	}
	return kv;
}

static void challenge(void)
{
	peer_other(&P, (struct peer_answer){401, UNAUTH, "WWW-Authenticate", CHALLENGE});
}

TEST(t_challenge_flow)
{
	peer_reset(&P);
	fake_init(&FC, T0);
	struct badge_credential *c = app_service();
	REQUIRE(c);
	struct badge_keyvault *kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv);
	challenge();
	mi_ok("vault-token");
	peer_other(
		&P,
		(struct peer_answer){
			200, "{\"value\":\"v1\",\"id\":\"https://myvault.vault.localhost/secrets/s1/abc\"}"});
	peer_other(
		&P,
		(struct peer_answer){
			200, "{\"value\":\"v2\",\"id\":\"https://myvault.vault.localhost/secrets/s1/abc\"}"});
	char *value = NULL, *json = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, &value, &json), BADGE_OK);
	CHECK_STR(value, "v1");
	CHECK(json && strstr(json, "\"id\":\"https://myvault.vault.localhost/secrets/s1/abc\""));
	badge_free_secret(value);
	badge_free(json);
	REQUIRE(peer_count(&P) == 3);
	/* 1: no token; 2: the identity endpoint for the challenge's resource; 3: with the token */
	CHECK_STR(P.rec[0].target, "/secrets/s1/?api-version=7.4");
	CHECK_STR(P.rec[0].authorization, "");
	CHECK_EQ_INT(P.rec[0].tls, 1);
	CHECK_STR(P.rec[1].target,
		  "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fvault.localhost");
	CHECK_STR(P.rec[2].authorization, "Bearer vault-token");
	/* later requests carry the token up front; the credential's cache serves it */
	value = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", "abc", &value, NULL), BADGE_OK);
	CHECK_STR(value, "v2");
	badge_free_secret(value);
	REQUIRE(peer_count(&P) == 4);
	CHECK_STR(P.rec[3].target, "/secrets/s1/abc?api-version=7.4");
	CHECK_STR(P.rec[3].authorization, "Bearer vault-token");
	badge_keyvault_free(kv);

	/* another client on the same credential: its own challenge, the cached token */
	kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv);
	REQUIRE(badge_keyvault_set_api_version(kv, "2025-07-01") == BADGE_OK);
	peer_reset(&P);
	challenge();
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"v3\",\"id\":\"x\"}"});
	CHECK_EQ_INT(badge_keyvault_secret_set(kv, "s1", "v3", "text/plain", NULL), BADGE_OK);
	REQUIRE(peer_count(&P) == 2);
	/* the first request has the method, no body and no token */
	CHECK_STR(P.rec[0].method, "PUT");
	CHECK_STR(P.rec[0].target, "/secrets/s1?api-version=2025-07-01");
	CHECK_STR(P.rec[0].content_length, "0");
	CHECK_STR(P.rec[0].body, "");
	CHECK_STR(P.rec[1].body, "{\"value\":\"v3\",\"attributes\":{},\"contentType\":\"text/plain\"}");
	CHECK_STR(P.rec[1].authorization, "Bearer vault-token");
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_challenge_verification)
{
	char r[128];
	CHECK_EQ_INT(kv_challenge_resource(CHALLENGE, r, sizeof(r)), BADGE_OK);
	CHECK_STR(r, "https://vault.localhost");
	CHECK_EQ_INT(
		kv_challenge_resource(
			"Bearer authorization_uri=\"https://l/t\", scope=\"https://vault.example/.default\"",
			r, sizeof(r)),
		BADGE_OK);
	CHECK_STR(r, "https://vault.example");
	CHECK_EQ_INT(kv_challenge_resource("Bearer authorization=\"https://l/t\"", r, sizeof(r)),
		     BADGE_E_PROTOCOL);
	CHECK_EQ_INT(kv_challenge_resource("Basic realm=\"x\"", r, sizeof(r)), BADGE_E_PROTOCOL);
	CHECK_EQ_INT(kv_challenge_resource("Bearer xresource=\"https://evil\"", r, sizeof(r)),
		     BADGE_E_PROTOCOL);
	CHECK(kv_challenge_host_ok("https://myvault.vault.azure.net", "https://vault.azure.net"));
	CHECK(kv_challenge_host_ok("https://MyVault.Vault.Local:8443/", "https://vault.local/"));
	CHECK(!kv_challenge_host_ok("https://myvault.vault.local", "https://myvault.vault.local"));
	CHECK(!kv_challenge_host_ok("https://evilvault.local", "https://vault.local"));
	CHECK(!kv_challenge_host_ok("https://127.0.0.1:8443", "https://0.0.1"));
	CHECK(!kv_challenge_host_ok("https://localhost:8443", "https://vault.local"));
	CHECK(!kv_challenge_host_ok("https://a.vault.local", "vault.local"));

	/* a resource the vault is not part of: no token is asked for or sent */
	peer_reset(&P);
	fake_init(&FC, T0);
	struct badge_credential *c = app_service();
	REQUIRE(c);
	struct badge_keyvault *kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv);
	peer_other(&P, (struct peer_answer){401, UNAUTH, "WWW-Authenticate",
					    "Bearer authorization=\"https://l/t\", "
					    "resource=\"https://myvault.vault.localhost\""});
	mi_ok("never");
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, NULL, NULL), BADGE_E_CHALLENGE);
	CHECK(strstr(badge_keyvault_errmsg(kv), "does not match") != NULL);
	CHECK_EQ_INT(peer_count(&P), 1);
	badge_keyvault_free(kv);
	/* an IP-addressed vault fails the check; with verification off it works */
	kv = vault(c, "127.0.0.1");
	REQUIRE(kv);
	peer_reset(&P);
	challenge();
	mi_ok("ip-token");
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"ip\",\"id\":\"x\"}"});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, NULL, NULL), BADGE_E_CHALLENGE);
	REQUIRE(badge_keyvault_set_challenge_verification(kv, 0) == BADGE_OK);
	peer_reset(&P);
	challenge();
	mi_ok("ip-token");
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"ip\",\"id\":\"x\"}"});
	char *v = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, &v, NULL), BADGE_OK);
	CHECK_STR(v, "ip");
	badge_free_secret(v);
	badge_keyvault_free(kv);
	/* https only */
	CHECK_EQ_INT(badge_keyvault_new(&kv, "http://myvault.vault.localhost", c), BADGE_E_TLS);
	CHECK_EQ_INT(badge_keyvault_new(&kv, "https://myvault.vault.localhost?x=1", c), BADGE_E_INVALID);
	/* a 401 without a Bearer challenge */
	kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv);
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){401, UNAUTH, "WWW-Authenticate", "Basic realm=\"x\""});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, NULL, NULL), BADGE_E_PROTOCOL);
	badge_keyvault_free(kv);
	/* an untrusted certificate */
	kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv && badge_keyvault_set_ca_file(kv, NULL) == BADGE_OK);
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, NULL, NULL), BADGE_E_TLS);
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_rejected_token_retried_once)
{
	peer_reset(&P);
	fake_init(&FC, T0);
	struct badge_credential *c = app_service();
	REQUIRE(c);
	struct badge_keyvault *kv = vault(c, "myvault.vault.localhost");
	REQUIRE(kv);
	challenge();
	mi_ok("old");
	mi_ok("new");
	challenge(); /* the bearer is refused */
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"ok\",\"id\":\"x\"}"});
	char *v = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, &v, NULL), BADGE_OK);
	CHECK_STR(v, "ok");
	badge_free_secret(v);
	REQUIRE(peer_count(&P) == 5);
	CHECK_STR(P.rec[2].authorization, "Bearer old");
	CHECK_STR(P.rec[4].authorization, "Bearer new"); /* the refused token was not reused */
	/* refused twice: BADGE_E_UNAUTHORIZED after exactly one retry */
	peer_reset(&P);
	mi_ok("newer");
	challenge();
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, NULL, NULL), BADGE_E_UNAUTHORIZED);
	CHECK_EQ_INT(badge_keyvault_http_status(kv), 401);
	CHECK_EQ_INT(peer_count(&P), 3);
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

/* A client past its challenge, for the operation tests. */
static struct badge_keyvault *ready(struct badge_credential **cp)
{
	peer_reset(&P);
	fake_init(&FC, T0);
	struct badge_credential *c = app_service();
	struct badge_keyvault *kv = c ? vault(c, "myvault.vault.localhost") : NULL;
	if (!kv) {
		badge_credential_free(c);
		return NULL;
	}
	challenge();
	mi_ok("t");
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"x\",\"id\":\"x\"}"});
	if (badge_keyvault_secret_get(kv, "warm", NULL, NULL, NULL) != BADGE_OK) {
		badge_keyvault_free(kv);
		badge_credential_free(c);
		return NULL;
	}
	peer_reset(&P);
	*cp = c;
	return kv;
}

TEST(t_errors_and_retries)
{
	struct badge_credential *c = NULL;
	struct badge_keyvault *kv = ready(&c);
	REQUIRE(kv);
	peer_other(&P,
		   (struct peer_answer){404, "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"A secret "
					     "with (name/id) nope was not found in this key vault.\"}}"});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "nope", NULL, NULL, NULL), BADGE_E_NOT_FOUND);
	CHECK_EQ_INT(badge_keyvault_http_status(kv), 404);
	CHECK_STR(badge_keyvault_error_code(kv), "SecretNotFound");
	CHECK(strstr(badge_keyvault_errmsg(kv), "was not found") != NULL);
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\"}}"});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s", NULL, NULL, NULL), BADGE_E_FORBIDDEN);
	peer_reset(&P);
	peer_other(&P,
		   (struct peer_answer){409, "{\"error\":{\"code\":\"Conflict\",\"message\":\"deleted\"}}"});
	CHECK_EQ_INT(badge_keyvault_secret_set(kv, "s", "v", NULL, NULL), BADGE_E_CONFLICT);
	peer_reset(&P);
	peer_other(&P,
		   (struct peer_answer){400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"bad\"}}"});
	CHECK_EQ_INT(badge_keyvault_secret_set(kv, "s", "v", NULL, NULL), BADGE_E_HTTP);
	CHECK_EQ_INT(peer_count(&P), 1);
	/* 503 with Retry-After and 500: retried through the injected sleep */
	peer_reset(&P);
	FC.nsleeps = 0;
	peer_other(&P, (struct peer_answer){503, "{}", "Retry-After", "3"});
	peer_other(&P, (struct peer_answer){500, "{}"});
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"late\",\"id\":\"x\"}"});
	char *v = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s", NULL, &v, NULL), BADGE_OK);
	CHECK_STR(v, "late");
	badge_free_secret(v);
	CHECK_EQ_INT(FC.nsleeps, 2);
	CHECK_EQ_INT(FC.sleeps[0], 3000);
	CHECK_EQ_INT(FC.sleeps[1], 2000);
	/* always 500: three retries, then the error */
	peer_reset(&P);
	peer_other(&P,
		   (struct peer_answer){500, "{\"error\":{\"code\":\"InternalError\",\"message\":\"x\"}}"});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s", NULL, NULL, NULL), BADGE_E_HTTP);
	CHECK_EQ_INT(peer_count(&P), 4);
	/* a success body that is not JSON */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, ""});
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s", NULL, &v, NULL), BADGE_E_PROTOCOL);
	/* bad names never reach the wire */
	peer_reset(&P);
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "", NULL, &v, NULL), BADGE_E_INVALID);
	CHECK_EQ_INT(peer_count(&P), 0);
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_secret_operations)
{
	struct badge_credential *c = NULL;
	struct badge_keyvault *kv = ready(&c);
	REQUIRE(kv);
	char next[256], page1[512];
	snprintf(next, sizeof(next),
		 "https://myvault.vault.localhost:%d/secrets?api-version=7.4&$skiptoken=YQ&maxresults=1",
		 P.tls_port);
	snprintf(page1, sizeof(page1), "{\"value\":[{\"id\":\"a\"}],\"nextLink\":\"%s\"}", next);
	peer_other(&P, (struct peer_answer){200, page1});
	peer_other(&P, (struct peer_answer){200, "{\"value\":[{\"id\":\"b\"}],\"nextLink\":null}"});
	char *json = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_list(kv, &json), BADGE_OK);
	CHECK_STR(json, "[{\"id\":\"a\"},{\"id\":\"b\"}]");
	badge_free(json);
	REQUIRE(peer_count(&P) == 2);
	CHECK_STR(P.rec[0].target, "/secrets?api-version=7.4");
	CHECK_STR(P.rec[1].target, "/secrets?api-version=7.4&$skiptoken=YQ&maxresults=1");
	CHECK_STR(P.rec[1].authorization, "Bearer t");
	/* a nextLink elsewhere never gets the token */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){
			       200, "{\"value\":[],\"nextLink\":\"https://evil.localhost/secrets\"}"});
	CHECK_EQ_INT(badge_keyvault_secret_list(kv, &json), BADGE_E_INVALID);
	CHECK_EQ_INT(peer_count(&P), 1);
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"nextLink\":null}"});
	CHECK_EQ_INT(badge_keyvault_secret_list(kv, &json), BADGE_E_PROTOCOL);

	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"recoveryId\":\"https://x/deletedsecrets/s1\"}"});
	CHECK_EQ_INT(badge_keyvault_secret_delete(kv, "s1", &json), BADGE_OK);
	CHECK(json && strstr(json, "recoveryId"));
	badge_free(json);
	peer_other(&P, (struct peer_answer){200, "{\"id\":\"https://x/secrets/s1/v\"}"});
	CHECK_EQ_INT(badge_keyvault_secret_recover(kv, "s1", NULL), BADGE_OK);
	REQUIRE(peer_count(&P) == 2);
	CHECK_STR(P.rec[0].method, "DELETE");
	CHECK_STR(P.rec[0].target, "/secrets/s1?api-version=7.4");
	CHECK_STR(P.rec[1].method, "POST");
	CHECK_STR(P.rec[1].target, "/deletedsecrets/s1/recover?api-version=7.4");

	/* the raw request: any status comes back to the caller */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){204, ""});
	long st = 0;
	CHECK_EQ_INT(badge_keyvault_request(kv, "DELETE", "/deletedsecrets/s1", NULL, &st, &json), BADGE_OK);
	CHECK_EQ_INT(st, 204);
	CHECK(json == NULL);
	peer_other(&P, (struct peer_answer){404, "{\"error\":{\"code\":\"SecretNotFound\"}}"});
	CHECK_EQ_INT(badge_keyvault_request(kv, "GET", "/deletedsecrets/s1?api-version=2025-07-01", NULL, &st,
					    &json),
		     BADGE_OK);
	CHECK_EQ_INT(st, 404);
	CHECK(json && strstr(json, "SecretNotFound"));
	badge_free(json);
	CHECK_STR(P.rec[1].target, "/deletedsecrets/s1?api-version=2025-07-01");
	CHECK_EQ_INT(badge_keyvault_request(kv, "GET", "secrets", NULL, &st, &json), BADGE_E_INVALID);
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_key_operations)
{
	struct badge_credential *c = NULL;
	struct badge_keyvault *kv = ready(&c);
	REQUIRE(kv);
	uint8_t digest[32], *out = NULL;
	size_t n = 0;
	memset(digest, 0xab, sizeof(digest));
	char *d64 = bc_b64url_encode_str(digest, sizeof(digest));
	REQUIRE(d64);
	char body[256];

	peer_other(&P, (struct peer_answer){200, "{\"kid\":\"https://x/keys/k1/v1\",\"value\":\"c2ln\"}"});
	CHECK_EQ_INT(badge_keyvault_key_sign(kv, "k1", NULL, "RS256", digest, sizeof(digest), &out, &n),
		     BADGE_OK);
	CHECK(n == 3 && memcmp(out, "sig", 3) == 0);
	badge_free(out);
	CHECK_STR(P.rec[0].target, "/keys/k1//sign?api-version=7.4");
	snprintf(body, sizeof(body), "{\"alg\":\"RS256\",\"value\":\"%s\"}", d64);
	CHECK_STR(P.rec[0].body, body);

	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"value\":true}"});
	peer_other(&P, (struct peer_answer){200, "{\"value\":false}"});
	int valid = -1;
	CHECK_EQ_INT(badge_keyvault_key_verify(kv, "k1", "v1", "ES256", digest, 32, (const uint8_t *)"sig", 3,
					       &valid),
		     BADGE_OK);
	CHECK_EQ_INT(valid, 1);
	CHECK_EQ_INT(badge_keyvault_key_verify(kv, "k1", "v1", "ES256", digest, 32, (const uint8_t *)"sig", 3,
					       &valid),
		     BADGE_OK);
	CHECK_EQ_INT(valid, 0);
	CHECK_STR(P.rec[0].target, "/keys/k1/v1/verify?api-version=7.4");
	snprintf(body, sizeof(body), "{\"alg\":\"ES256\",\"digest\":\"%s\",\"value\":\"c2ln\"}", d64);
	CHECK_STR(P.rec[0].body, body);

	static const struct {
		const char *op;
		int (*fn)(struct badge_keyvault *, const char *, const char *, const char *, const uint8_t *,
			  size_t, uint8_t **, size_t *);
	} ops[] = {{"encrypt", badge_keyvault_key_encrypt},
		   {"decrypt", badge_keyvault_key_decrypt},
		   {"wrapkey", badge_keyvault_key_wrap},
		   {"unwrapkey", badge_keyvault_key_unwrap}};
	for (size_t i = 0; i < 4; i++) {
		peer_reset(&P);
		peer_other(&P, (struct peer_answer){200, "{\"kid\":\"k\",\"value\":\"b3V0\"}"});
		CHECK_EQ_INT(ops[i].fn(kv, "k1", "v2", "RSA-OAEP-256", (const uint8_t *)"in", 2, &out, &n),
			     BADGE_OK);
		CHECK(n == 3 && memcmp(out, "out", 3) == 0);
		badge_free(out);
		char want[128];
		snprintf(want, sizeof(want), "/keys/k1/v2/%s?api-version=7.4", ops[i].op);
		CHECK_STR(P.rec[0].target, want);
		CHECK_STR(P.rec[0].body, "{\"alg\":\"RSA-OAEP-256\",\"value\":\"aW4\"}");
	}
	peer_reset(&P);
	peer_other(&P,
		   (struct peer_answer){200, "{\"key\":{\"kid\":\"https://x/keys/k1/v3\",\"kty\":\"RSA\"}}"});
	char *json = NULL;
	CHECK_EQ_INT(badge_keyvault_key_get(kv, "k1", NULL, &json), BADGE_OK);
	CHECK(json && strstr(json, "\"kty\":\"RSA\""));
	badge_free(json);
	CHECK_STR(P.rec[0].target, "/keys/k1/?api-version=7.4");
	/* an answer without a value */
	peer_reset(&P);
	peer_other(&P, (struct peer_answer){200, "{\"kid\":\"k\"}"});
	CHECK_EQ_INT(
		badge_keyvault_key_decrypt(kv, "k1", NULL, "RSA-OAEP", (const uint8_t *)"x", 1, &out, &n),
		BADGE_E_PROTOCOL);
	free(d64);
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_path_style_vault)
{
	/* a path-style base keeps its prefix, verification off (what the badge CLI does) */
	peer_reset(&P);
	fake_init(&FC, T0);
	struct badge_credential *c = app_service();
	REQUIRE(c);
	char url[128];
	snprintf(url, sizeof(url), "https://localhost:%d/vaults/kv1/", P.tls_port);
	struct badge_keyvault *kv = NULL;
	REQUIRE(badge_keyvault_new(&kv, url, c) == BADGE_OK);
	REQUIRE(badge_keyvault_set_ca_file(kv, P.ca_file) == BADGE_OK);
	REQUIRE(badge_keyvault_set_challenge_verification(kv, 0) == BADGE_OK);
	challenge();
	mi_ok("p");
	peer_other(&P, (struct peer_answer){200, "{\"value\":\"pv\",\"id\":\"x\"}"});
	char *v = NULL;
	CHECK_EQ_INT(badge_keyvault_secret_get(kv, "s1", NULL, &v, NULL), BADGE_OK);
	CHECK_STR(v, "pv");
	badge_free_secret(v);
	REQUIRE(peer_count(&P) == 3);
	CHECK_STR(P.rec[2].target, "/vaults/kv1/secrets/s1/?api-version=7.4");
	badge_keyvault_free(kv);
	badge_credential_free(c);
}

TEST(t_start)
{
	unsetenv("SSL_CERT_FILE");
	unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
	REQUIRE(peer_start(&P) == 0);
}

TEST(t_stop)
{
	peer_stop(&P);
}

TEST_MAIN(T(t_start), T(t_challenge_flow), T(t_challenge_verification), T(t_rejected_token_retried_once),
	  T(t_errors_and_retries), T(t_secret_operations), T(t_key_operations), T(t_path_style_vault),
	  T(t_stop))
