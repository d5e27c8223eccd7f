/* Workload identity federation at the token endpoint: client assertions signed by an external
 * OIDC issuer that a federated identity credential of the principal names. The issuer is an
 * in-process HTTPS server on 127.0.0.1 (port 0) with a certificate of the test CA, serving its
 * OpenID configuration and JWKS; the directory trusts that CA through federation_ca_file. */
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/httpc.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pki.h"
#include "core/util.h"
#include "directory/dirint.h"
#include "test.h"
#define STACK_DIRECTORY_ONLY
#include "stack.h"

#define MGMT "https://management.badge.internal/"
#define LOGIN "https://login.badge.internal:8443"
#define HOST "login.badge.internal:8443"
#define XAUD "api://AzureADTokenExchange"
#define SUBJ "system:serviceaccount:ns:app"

static char ca_file[300];
static struct bc_http_server *issuer_srv;
static char issuer[64];
static struct bc_jwk *rsa, *ec, *stranger; /* rsa and ec are published; stranger is not */
static struct dir_principal mi;
static int jwks_hits;

static void oidc_config(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	(void)ctx;
	char jwks[128];
	snprintf(jwks, sizeof(jwks), "%s/openid/v1/jwks", issuer);
	bc_http_res_json(res, 200, json_pack("{s:s,s:s,s:[s]}", "issuer", issuer, "jwks_uri", jwks,
					     "id_token_signing_alg_values_supported", "RS256"));
}

static void oidc_jwks(struct bc_http_req *req, struct bc_http_res *res, void *ctx)
{
	(void)req;
	(void)ctx;
	jwks_hits++;
	json_t *keys = json_array();
	json_array_append_new(keys, bc_jwk_to_jansson(rsa, false));
	json_array_append_new(keys, bc_jwk_to_jansson(ec, false));
	bc_http_res_json(res, 200, json_pack("{s:o}", "keys", keys));
}

static const struct bc_route issuer_routes[] = {
	{"GET", "/.well-known/openid-configuration", oidc_config, NULL, 0},
	{"GET", "/openid/v1/jwks", oidc_jwks, NULL, 0},
};

static void setup(void)
{
	static const char *resources[] = {MGMT};
	static struct dir_config dc = {.login_url = LOGIN, .token_lifetime_s = 3600, .resources = resources,
				       .nresources = 1, .admin_audience = MGMT, .federation_ca_file = ca_file};
	struct bc_error err = {0};
	bc_log_set_level(BC_LOG_ERROR);
	stack_open_dir("dirfed", true, &dc);
	snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", tmpdir); /* dc holds the pointer */
	FILE *f = fopen(ca_file, "w");
	if (!f || fputs(bc_ca_cert_pem(ca), f) < 0 || fclose(f))
		abort();
	if (bc_jwk_generate(&rsa, "RSA", 2048, &err) || bc_jwk_set_kid(rsa, "rsa-1") ||
	    bc_jwk_generate(&ec, "EC", 256, &err) || bc_jwk_set_kid(ec, "ec-1") ||
	    bc_jwk_generate(&stranger, "RSA", 2048, &err) || bc_jwk_set_kid(stranger, "rsa-1"))
		stack_die("keys", &err);
	/* the external issuer */
	static const char *names[] = {"127.0.0.1"};
	struct bc_buf cert = {0}, key = {0};
	if (bc_ca_issue_server(ca, names, 1, 1, &cert, &key, &err))
		stack_die("issuer cert", &err);
	issuer_srv = bc_http_server_new();
	int port = 0;
	struct bc_http_listener l = {.address = "127.0.0.1:0", .fd = -1, .tls_cert_pem = bc_buf_cstr(&cert),
				     .tls_key_pem = bc_buf_cstr(&key), .threads = 1};
	if (!issuer_srv || bc_http_mount(issuer_srv, NULL, NULL, issuer_routes, 2, NULL) ||
	    bc_http_listen(issuer_srv, &l, &port, &err))
		stack_die("issuer", &err);
	bc_buf_wipe(&key);
	bc_buf_release(&cert);
	snprintf(issuer, sizeof(issuer), "https://127.0.0.1:%d", port);
	if (dir_principal_create(d, NULL, NULL, DIR_TYPE_MANAGED, "wi", "/subscriptions/s/rg/x", &mi, &err))
		stack_die("principal", &err);
	struct dir_fic fic = {0};
	snprintf(fic.name, sizeof(fic.name), "k8s");
	snprintf(fic.issuer, sizeof(fic.issuer), "%s", issuer);
	snprintf(fic.subject, sizeof(fic.subject), SUBJ);
	snprintf(fic.audience, sizeof(fic.audience), XAUD);
	if (dir_fic_put(d, NULL, mi.object_id, &fic, NULL, &err))
		stack_die("fic", &err);
}

static void teardown(void)
{
	bc_http_server_stop(issuer_srv);
	bc_http_server_free(issuer_srv);
	bc_jwk_free(rsa);
	bc_jwk_free(ec);
	bc_jwk_free(stranger);
	stack_close_dir();
}

/* An external token: claims as given (iss NULL = the test issuer; jti NULL = none). */
static char *ext_token(const struct bc_jwk *key, const char *alg, const char *iss, const char *sub, const char *aud,
		       int64_t iat_delta, int64_t exp_delta, const char *jti)
{
	json_t *hdr = json_pack("{s:s}", "kid", bc_jwk_kid(key)), *c = json_object();
	int64_t now = bc_now();
	json_object_set_new(c, "iss", json_string(iss ? iss : issuer));
	json_object_set_new(c, "sub", json_string(sub));
	json_object_set_new(c, "aud", json_pack("[s]", aud));
	json_object_set_new(c, "iat", json_integer(now + iat_delta));
	json_object_set_new(c, "nbf", json_integer(now + iat_delta));
	json_object_set_new(c, "exp", json_integer(now + exp_delta));
	if (jti)
		json_object_set_new(c, "jti", json_string(jti));
	char *payload = json_dumps(c, JSON_COMPACT);
	struct bc_buf out = {0};
	struct bc_error err;
	if (bc_jws_sign(key, alg, hdr, payload, strlen(payload), &out, &err))
		stack_die("sign", &err);
	free(payload);
	json_decref(hdr);
	json_decref(c);
	return bc_buf_detach(&out, NULL);
}

/* A token request with the assertion; the status, the body in *j. */
static int exchange(const char *assertion, int version, json_t **j)
{
	struct bc_buf f = {0};
	char path[128];
	*j = NULL;
	snprintf(path, sizeof(path), "/%s/oauth2/%stoken", mi.tenant_id, version == 2 ? "v2.0/" : "");
	if (bc_buf_appends(&f, version == 2 ? "grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.badge.internal%2F%2F.default"
					    : "grant_type=client_credentials&resource=https%3A%2F%2Fmanagement.badge.internal%2F") ||
	    bc_buf_appends(&f, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
			       "&client_id=") ||
	    bc_buf_appends(&f, mi.app_id) || bc_buf_appends(&f, "&client_assertion=") || bc_httpc_escape(assertion, &f))
		abort();
	struct bc_http_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	if (bc_http_dispatch_test(srv, "POST", path, HOST, h, 1, f.data, f.len, &res))
		abort();
	int status = res.status;
	if (res.body.len)
		*j = json_loadb(res.body.data, res.body.len, 0, NULL);
	bc_http_res_release(&res);
	bc_buf_release(&f);
	return status;
}

static int code_of(json_t *j)
{
	return (int)json_integer_value(json_array_get(json_object_get(j, "error_codes"), 0));
}

/* Exchanges a token built by ext_token and expects status and (when not 200) the AADSTS code. */
static void expect(char *tok, int version, int status, int code, const char *what)
{
	json_t *j = NULL;
	int s = exchange(tok, version, &j);
	if (s != status || (code && code_of(j) != code)) {
		char *b = j ? json_dumps(j, 0) : NULL;
		fprintf(stderr, "%s: got %d %s\n", what, s, b ? b : "");
		free(b);
	}
	CHECK_EQ_INT(s, status);
	if (code)
		CHECK_EQ_INT(code_of(j), code);
	json_decref(j);
	free(tok);
}

TEST(exchange_succeeds)
{
	json_t *j = NULL;
	char *tok = ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-ok-1");
	REQUIRE(exchange(tok, 2, &j) == 200);
	const char *at = bc_json_str(j, "access_token");
	REQUIRE(at != NULL);
	struct dir_claims cl;
	struct bc_error err;
	const char *auds[] = {MGMT};
	REQUIRE(dir_token_verify(d, at, strlen(at), NULL, auds, 1, &cl, &err) == BC_OK);
	CHECK_STR(cl.oid, mi.object_id);
	CHECK_STR(cl.appid, mi.app_id);
	json_decref(j);
	free(tok);
	/* ES256 and the v1 endpoint; a token without jti (older Kubernetes) */
	expect(ext_token(ec, "ES256", NULL, SUBJ, XAUD, 0, 600, "j-ok-2"), 1, 200, 0, "es256 v1");
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, NULL), 2, 200, 0, "no jti");
}

TEST(keys_are_cached)
{
	int before = jwks_hits;
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-cache-1"), 2, 200, 0, "first");
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-cache-2"), 2, 200, 0, "second");
	CHECK(jwks_hits - before <= 1);
}

TEST(no_matching_record)
{
	char other[96];
	snprintf(other, sizeof(other), "%s/other", issuer);
	expect(ext_token(rsa, "RS256", other, SUBJ, XAUD, 0, 600, "j-iss"), 2, 400, 70021, "wrong iss");
	expect(ext_token(rsa, "RS256", NULL, "system:serviceaccount:ns:other", XAUD, 0, 600, "j-sub"), 2, 400, 70021,
	       "wrong sub");
	expect(ext_token(rsa, "RS256", NULL, SUBJ, "api://Other", 0, 600, "j-aud"), 2, 400, 70021, "wrong aud");
	/* the subject is compared exactly */
	expect(ext_token(rsa, "RS256", NULL, "SYSTEM:serviceaccount:ns:app", XAUD, 0, 600, "j-case"), 2, 400, 70021,
	       "case of sub");
}

TEST(dates)
{
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, -1200, -600, "j-exp"), 2, 401, 700024, "expired");
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 1200, 1800, "j-nbf"), 2, 401, 700024, "not yet valid");
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 2 * 86400, "j-long"), 2, 401, 700024, "lifetime");
}

/* alg none and HS256 (signed with the RSA modulus as an HMAC key would be the classic attack):
 * refused before any key is looked at. */
static char *unsigned_token(const char *alg)
{
	char hdr[128], claims[512];
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"rsa-1\"}", alg);
	snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"jti\":\"j-%s\"}",
		 issuer, SUBJ, XAUD, (long long)bc_now() + 300, alg);
	char *h = bc_b64url_encode_str(hdr, strlen(hdr)), *c = bc_b64url_encode_str(claims, strlen(claims));
	size_t n = strlen(h) + strlen(c) + 64;
	char *out = malloc(n);
	snprintf(out, n, "%s.%s.%s", h, c, strcmp(alg, "none") ? "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl" : "");
	free(h);
	free(c);
	return out;
}

TEST(signatures)
{
	expect(unsigned_token("none"), 2, 401, 700027, "alg none");
	expect(unsigned_token("HS256"), 2, 401, 700027, "HS256");
	/* a key the issuer does not publish, under a published kid */
	expect(ext_token(stranger, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-stranger"), 2, 401, 700027, "wrong key");
	/* an unknown kid: refetched (rate-limited), then refused */
	struct bc_jwk *k = NULL;
	struct bc_error err;
	REQUIRE(bc_jwk_generate(&k, "RSA", 2048, &err) == 0);
	REQUIRE(bc_jwk_set_kid(k, "nobody") == 0);
	expect(ext_token(k, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-kid"), 2, 401, 700027, "unknown kid");
	bc_jwk_free(k);
	/* PS256 is not one of the issuer algorithms accepted */
	expect(ext_token(rsa, "PS256", NULL, SUBJ, XAUD, 0, 600, "j-ps"), 2, 401, 700027, "PS256");
}

/* As in Entra, an external token serves again while it lives (a projected Kubernetes token is
 * presented for every scope and every refresh until the kubelet replaces it). */
TEST(reuse)
{
	json_t *j = NULL;
	char *tok = ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-reuse");
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(exchange(tok, 2, &j), 200);
		json_decref(j);
	}
	free(tok);
}

TEST(issuer_unreachable)
{
	struct dir_fic fic = {0};
	struct bc_error err;
	snprintf(fic.name, sizeof(fic.name), "gone");
	snprintf(fic.issuer, sizeof(fic.issuer), "https://127.0.0.1:1");
	snprintf(fic.subject, sizeof(fic.subject), "ci");
	snprintf(fic.audience, sizeof(fic.audience), XAUD);
	REQUIRE(dir_fic_put(d, NULL, mi.object_id, &fic, NULL, &err) == BC_OK);
	expect(ext_token(rsa, "RS256", "https://127.0.0.1:1", "ci", XAUD, 0, 600, "j-unreach"), 2, 401, 50166,
	       "unreachable");
	REQUIRE(dir_fic_delete(d, NULL, mi.object_id, "GONE", &err) == BC_OK);
}

static const char *name_of(int i)
{
	static char b[16];
	snprintf(b, sizeof(b), "n%02d", i);
	return b;
}

static int count_row(void *ctx, const struct bc_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

TEST(credential_rules)
{
	struct dir_fic fic = {0}, got;
	struct bc_error err;
	bool created = false;
	snprintf(fic.name, sizeof(fic.name), "Dup");
	snprintf(fic.issuer, sizeof(fic.issuer), "%s", issuer);
	snprintf(fic.subject, sizeof(fic.subject), SUBJ);
	snprintf(fic.audience, sizeof(fic.audience), XAUD);
	CHECK_EQ_INT(dir_fic_put(d, NULL, mi.object_id, &fic, &created, &err), BC_ERR_EXISTS); /* same iss+sub as k8s */
	snprintf(fic.subject, sizeof(fic.subject), "s-0");
	CHECK_EQ_INT(dir_fic_put(d, NULL, mi.object_id, &fic, &created, &err), BC_OK);
	CHECK(created);
	CHECK_EQ_INT(dir_fic_put(d, NULL, mi.object_id, &fic, &created, &err), BC_OK); /* replace */
	CHECK(!created);
	REQUIRE(dir_fic_get(d, NULL, mi.object_id, "dup", &got, &err) == BC_OK);
	CHECK_STR(got.name, "Dup");
	/* k8s and Dup exist: 18 more fit, the 21st does not */
	for (int i = 1; i <= 18; i++) {
		snprintf(fic.name, sizeof(fic.name), "n%02d", i);
		snprintf(fic.subject, sizeof(fic.subject), "s-%d", i);
		CHECK_EQ_INT(dir_fic_put(d, NULL, mi.object_id, &fic, NULL, &err), BC_OK);
	}
	snprintf(fic.name, sizeof(fic.name), "n21");
	snprintf(fic.subject, sizeof(fic.subject), "s-21");
	CHECK_EQ_INT(dir_fic_put(d, NULL, mi.object_id, &fic, NULL, &err), BC_ERR_LIMIT);
	for (int i = 1; i <= 18; i++)
		CHECK_EQ_INT(dir_fic_delete(d, NULL, mi.object_id, name_of(i), &err), BC_OK);
	CHECK_EQ_INT(dir_fic_delete(d, NULL, mi.object_id, "dup", &err), BC_OK);
	CHECK_EQ_INT(dir_fic_delete(d, NULL, mi.object_id, "dup", &err), BC_ERR_NOT_FOUND);
}

TEST(deleted_credential_refused_at_once)
{
	struct bc_error err;
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-del-1"), 2, 200, 0, "before");
	REQUIRE(dir_fic_delete(d, NULL, mi.object_id, "k8s", &err) == BC_OK);
	expect(ext_token(rsa, "RS256", NULL, SUBJ, XAUD, 0, 600, "j-del-2"), 2, 400, 70021, "after");
}

TEST(principal_deletion_removes_credentials)
{
	struct dir_principal p;
	struct dir_fic fic = {0};
	struct bc_error err;
	int n = 0;
	REQUIRE(dir_principal_create(d, NULL, NULL, DIR_TYPE_MANAGED, "wi2", "/subscriptions/s/rg/y", &p, &err) == 0);
	snprintf(fic.name, sizeof(fic.name), "one");
	snprintf(fic.issuer, sizeof(fic.issuer), "%s", issuer);
	snprintf(fic.subject, sizeof(fic.subject), "x");
	snprintf(fic.audience, sizeof(fic.audience), XAUD);
	REQUIRE(dir_fic_put(d, NULL, p.object_id, &fic, NULL, &err) == BC_OK);
	REQUIRE(dir_principal_delete(d, NULL, p.object_id, &err) == BC_OK);
	struct bc_param prm[] = {BC_PTEXT(p.object_id)};
	REQUIRE(bc_store_exec(st, NULL, "SELECT 1 FROM dir_federated WHERE object_id = ?", prm, 1, count_row, &n, NULL,
			      &err) == BC_OK);
	CHECK_EQ_INT(n, 0);
}

STACK_MAIN(setup, teardown, T(exchange_succeeds), T(keys_are_cached), T(no_matching_record), T(dates), T(signatures),
	   T(reuse), T(issuer_unreachable), T(credential_rules), T(deleted_credential_refused_at_once),
	   T(principal_deletion_removes_credentials))
