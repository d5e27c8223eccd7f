/* The directory's token endpoints, verification, rotation and discovery, driven through the
 * route table without sockets (bc_http_dispatch_test) against a SQLite store in a temp dir. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/httpc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pki.h"
#include "core/util.h"
#include "directory/dirint.h"
#include "test.h"
#define STACK_DIRECTORY_ONLY
#include "stack.h"

#define MGMT "https://management.badge.internal/"
#define VAULT "https://vault.badge.internal:8443"
#define LOGIN "https://login.badge.internal:8443"
#define HOST "login.badge.internal:8443"

static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static void setup(void)
{
	static const char *resources[] = {MGMT, VAULT};
	static const char *v2_resources[] = {VAULT};
	static struct dir_config dc = {.login_url = LOGIN, .token_lifetime_s = 3600, .key_prepublish_s = 3600,
				       .resources = resources, .nresources = 2, .v2_resources = v2_resources,
				       .nv2_resources = 1, .admin_audience = MGMT};
	bc_log_set_level(BC_LOG_WARN);
	stack_open_dir("dirtest", false, &dc);
}

/* POSTs a form to path; returns the status and the parsed JSON body in *out. */
static int post_form(const char *path, const char *form, json_t **out)
{
	*out = NULL;
	struct bc_http_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded;charset=utf-8"}};
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	if (bc_http_dispatch_test(srv, "POST", path, HOST, h, 1, form, strlen(form), &res))
		return -1;
	int status = res.status;
	*out = NULL;
	if (res.body.len)
		*out = json_loadb(res.body.data, res.body.len, 0, NULL);
	bc_http_res_release(&res);
	return status;
}

static int get_json(const char *path, json_t **out)
{
	*out = NULL;
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	if (bc_http_dispatch_test(srv, "GET", path, HOST, NULL, 0, NULL, 0, &res))
		return -1;
	int status = res.status;
	*out = res.body.len ? json_loadb(res.body.data, res.body.len, 0, NULL) : NULL;
	bc_http_res_release(&res);
	return status;
}

static void esc(struct bc_buf *b, const char *s)
{
	if (bc_httpc_escape(s, b))
		abort();
}

static struct dir_principal app(const char *name)
{
	struct dir_principal p;
	struct bc_error err;
	if (dir_principal_create(d, NULL, NULL, DIR_TYPE_APP, name, NULL, &p, &err))
		abort();
	return p;
}

static void secret_form(struct bc_buf *f, const char *client, const char *secret, const char *extra)
{
	bc_buf_reset(f);
	if (bc_buf_appends(f, "grant_type=client_credentials&client_id="))
		abort();
	esc(f, client);
	if (bc_buf_appends(f, "&client_secret="))
		abort();
	esc(f, secret);
	if (bc_buf_appends(f, extra))
		abort();
}

static const char *error_code(json_t *j)
{
	return bc_json_str(j, "error");
}

static int first_code(json_t *j)
{
	return (int)json_integer_value(json_array_get(json_object_get(j, "error_codes"), 0));
}

TEST(secret_v1_and_v2)
{
	struct dir_principal p = app("app1");
	char secret[128], cred[37], path[128];
	struct bc_error err;
	REQUIRE(dir_credential_add_secret(d, NULL, p.object_id, 0, secret, sizeof(secret), cred, &err) == 0);
	struct bc_buf f = {0};
	json_t *j;
	snprintf(path, sizeof(path), "/%s/oauth2/token", p.tenant_id);
	secret_form(&f, p.app_id, secret, "&resource=https%3A%2F%2Fmanagement.badge.internal%2F");
	CHECK_EQ_INT(post_form(path, f.data, &j), 200);
	CHECK_STR(bc_json_str(j, "token_type"), "Bearer");
	CHECK_STR(bc_json_str(j, "resource"), MGMT);
	CHECK(bc_json_str(j, "expires_on") != NULL);
	CHECK_STR(bc_json_str(j, "expires_in"), "3600");
	const char *tok = bc_json_str(j, "access_token");
	REQUIRE(tok);
	struct dir_claims c;
	const char *aud[] = {MGMT};
	CHECK_EQ_INT(dir_token_verify(d, tok, strlen(tok), p.tenant_id, aud, 1, &c, &err), 0);
	CHECK_STR(c.oid, p.object_id);
	CHECK_STR(c.appid, p.app_id);
	CHECK_STR(c.aud, MGMT);
	/* the audience is the verifier's own only */
	const char *vaud[] = {VAULT};
	CHECK_EQ_INT(dir_token_verify(d, tok, strlen(tok), p.tenant_id, vaud, 1, &c, &err), BC_ERR_UNAUTHENTICATED);
	/* issuer claim is the configured authority, whatever Host was used */
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	REQUIRE(bc_jwt_parse(&jwt, tok, strlen(tok), &err) == 0);
	char iss[256];
	snprintf(iss, sizeof(iss), LOGIN "/%s/", p.tenant_id);
	CHECK_STR(bc_json_str(jwt.claims, "iss"), iss);
	CHECK_STR(bc_json_str(jwt.claims, "ver"), "1.0");
	CHECK_STR(bc_json_str(jwt.claims, "appidacr"), "1");
	CHECK_STR(bc_json_str(jwt.header, "alg"), "RS256");
	CHECK(bc_json_str(jwt.header, "kid") != NULL);
	bc_jwt_release(&jwt);
	json_decref(j);

	snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", p.tenant_id);
	secret_form(&f, p.app_id, secret, "&scope=https%3A%2F%2Fvault.badge.internal%3A8443%2F.default");
	CHECK_EQ_INT(post_form(path, f.data, &j), 200);
	CHECK(json_is_integer(json_object_get(j, "expires_in")));
	const char *t2 = bc_json_str(j, "access_token");
	REQUIRE(t2);
	/* the vault asks for v2 tokens in this test's configuration: v2 issuer and claims */
	bc_jwt_init(&jwt);
	REQUIRE(bc_jwt_parse(&jwt, t2, strlen(t2), &err) == 0);
	snprintf(iss, sizeof(iss), LOGIN "/%s/v2.0", p.tenant_id);
	CHECK_STR(bc_json_str(jwt.claims, "iss"), iss);
	CHECK_STR(bc_json_str(jwt.claims, "ver"), "2.0");
	CHECK_STR(bc_json_str(jwt.claims, "azp"), p.app_id);
	CHECK(bc_json_str(jwt.claims, "appid") == NULL);
	bc_jwt_release(&jwt);
	CHECK_EQ_INT(dir_token_verify(d, t2, strlen(t2), p.tenant_id, vaud, 1, &c, &err), 0);
	CHECK_STR(c.appid, p.app_id);
	json_decref(j);

	/* wrong secret, unknown client, unknown grant, bad scope, unknown resource */
	secret_form(&f, p.app_id, "not-the-secret", "&scope=https%3A%2F%2Fvault.badge.internal%3A8443%2F.default");
	CHECK_EQ_INT(post_form(path, f.data, &j), 401);
	CHECK_STR(error_code(j), "invalid_client");
	CHECK_EQ_INT(first_code(j), 7000215);
	CHECK(strstr(bc_json_str(j, "error_description"), secret) == NULL);
	json_decref(j);
	secret_form(&f, "00000000-0000-4000-8000-000000000000", secret, "&scope=https%3A%2F%2Fvault.badge.internal%3A8443%2F.default");
	CHECK_EQ_INT(post_form(path, f.data, &j), 400);
	CHECK_STR(error_code(j), "unauthorized_client");
	json_decref(j);
	CHECK_EQ_INT(post_form(path, "grant_type=password&client_id=x", &j), 400);
	CHECK_STR(error_code(j), "unsupported_grant_type");
	json_decref(j);
	secret_form(&f, p.app_id, secret, "&scope=https%3A%2F%2Fvault.badge.internal%3A8443%2Fuser.read");
	CHECK_EQ_INT(post_form(path, f.data, &j), 400);
	CHECK_STR(error_code(j), "invalid_scope");
	json_decref(j);
	secret_form(&f, p.app_id, secret, "&scope=https%3A%2F%2Felsewhere.example%2F.default");
	CHECK_EQ_INT(post_form(path, f.data, &j), 400);
	CHECK_STR(error_code(j), "invalid_resource");
	json_decref(j);
	/* malformed and duplicated forms */
	CHECK_EQ_INT(post_form(path, "grant_type=client_credentials&grant_type=client_credentials", &j), 400);
	CHECK_STR(error_code(j), "invalid_request");
	json_decref(j);
	CHECK_EQ_INT(post_form(path, "%zz=%", &j), 400);
	json_decref(j);
	CHECK_EQ_INT(post_form("/not-a-tenant/oauth2/v2.0/token", f.data, &j), 400);
	CHECK_EQ_INT(first_code(j), 90002);
	json_decref(j);
	/* both requests are in the audit trail; no secret is */
	bc_audit_flush(d->audit);
	int64_t n = 0;
	bool found;
	struct bc_param q[] = {BC_PTEXT(p.app_id)};
	REQUIRE(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM dir_audit WHERE appid = ? AND status = 200", q, 1, &n,
				 &found, &err) == 0);
	CHECK(n >= 2);
	REQUIRE(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM dir_audit WHERE appid = ? AND status = 401", q, 1, &n,
				 &found, &err) == 0);
	CHECK(n >= 1);
	struct bc_param q2[] = {BC_PTEXT(secret), BC_PTEXT(secret)};
	REQUIRE(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM dir_audit WHERE object = ? OR request_id = ?", q2, 2, &n,
				 &found, &err) == 0);
	CHECK_EQ_INT(n, 0);
	bc_buf_release(&f);
}

/* Builds and signs a client assertion with key; header members as given. */
static char *assertion(const struct bc_jwk *key, const char *alg, const char *hdr_key, const char *hdr_val,
		       const char *client, const char *aud, int64_t exp_delta, const char *jti)
{
	json_t *hdr = json_object(), *claims = json_object();
	if (hdr_key)
		json_object_set_new(hdr, hdr_key, json_string(hdr_val));
	int64_t now = bc_now();
	json_object_set_new(claims, "iss", json_string(client));
	json_object_set_new(claims, "sub", json_string(client));
	json_object_set_new(claims, "aud", json_string(aud));
	json_object_set_new(claims, "exp", json_integer(now + exp_delta));
	json_object_set_new(claims, "nbf", json_integer(now));
	json_object_set_new(claims, "iat", json_integer(now));
	json_object_set_new(claims, "jti", json_string(jti));
	char *payload = json_dumps(claims, JSON_COMPACT);
	struct bc_buf out = {0};
	struct bc_error err;
	if (bc_jws_sign(key, alg, hdr, payload, strlen(payload), &out, &err)) {
		fprintf(stderr, "sign: %s\n", err.msg);
		abort();
	}
	free(payload);
	json_decref(hdr);
	json_decref(claims);
	return bc_buf_detach(&out, NULL);
}

/* Replaces the signature part of a compact JWS with the given header (unsigned forgeries). */
static char *forge(const char *alg, const char *client, const char *aud, const char *x5t256)
{
	char hdr[256], claims[512];
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"x5t#S256\":\"%s\"}", alg, x5t256);
	snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"jti\":\"forged\"}",
		 client, client, aud, (long long)bc_now() + 300);
	char *h = bc_b64url_encode_str(hdr, strlen(hdr)), *c = bc_b64url_encode_str(claims, strlen(claims));
	char *sig = bc_b64url_encode_str("0123456789abcdef0123456789abcdef", 32);
	size_t n = strlen(h) + strlen(c) + strlen(sig) + 3;
	char *out = malloc(n);
	snprintf(out, n, "%s.%s.%s", h, c, strcmp(alg, "none") == 0 ? "" : sig);
	free(h);
	free(c);
	free(sig);
	return out;
}

static int post_assertion(const char *tenant, const char *client, const char *a, json_t **j)
{
	struct bc_buf f = {0};
	char path[128];
	snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant);
	if (bc_buf_appends(&f, "grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.badge.internal%2F%2F.default"
			       "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id="))
		abort();
	esc(&f, client);
	if (bc_buf_appends(&f, "&client_assertion="))
		abort();
	esc(&f, a);
	int s = post_form(path, f.data, j);
	bc_buf_release(&f);
	return s;
}

TEST(assertions)
{
	struct dir_principal p = app("certapp");
	struct bc_jwk *key = NULL, *other = NULL, *ec = NULL;
	struct bc_buf csr = {0}, cert = {0};
	struct bc_error err;
	char cred[37], aud[256], x5t[28], x5t256[44];
	X509 *x = NULL;
	REQUIRE(bc_jwk_generate(&key, "RSA", 2048, &err) == 0);
	REQUIRE(bc_jwk_generate(&other, "RSA", 2048, &err) == 0);
	REQUIRE(bc_jwk_generate(&ec, "EC", 256, &err) == 0);
	REQUIRE(bc_csr_create(key, "ignored", &csr, &err) == 0);
	REQUIRE(dir_issue_cert(d, NULL, p.object_id, "host-1", csr.data, 3600, &cert, cred, &err) == 0);
	REQUIRE(bc_x509_parse_pem(cert.data, cert.len, &x, &err) == 0);
	REQUIRE(bc_x509_thumbprints(x, x5t, x5t256, &err) == 0);
	X509_free(x);
	snprintf(aud, sizeof(aud), "https://%s/%s/oauth2/v2.0/token", HOST, p.tenant_id);
	json_t *j;

	char *a = assertion(key, "RS256", "x5t#S256", x5t256, p.app_id, aud, 300, "jti-1");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 200);
	const char *tok = bc_json_str(j, "access_token");
	struct dir_claims c;
	const char *mg[] = {MGMT};
	CHECK(tok && dir_token_verify(d, tok, strlen(tok), NULL, mg, 1, &c, &err) == 0);
	json_decref(j);
	/* replayed jti */
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	CHECK_STR(error_code(j), "invalid_client");
	json_decref(j);
	free(a);

	/* x5t (SHA-1) and PS256 work too; the authority's configured name as audience as well */
	char aud2[256];
	snprintf(aud2, sizeof(aud2), LOGIN "/%s/oauth2/token", p.tenant_id);
	a = assertion(key, "PS256", "x5t", x5t, p.app_id, aud2, 300, "jti-2");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 200);
	json_decref(j);
	free(a);

	/* a key the principal does not own, under its certificate's thumbprint */
	a = assertion(other, "RS256", "x5t#S256", x5t256, p.app_id, aud, 300, "jti-3");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	CHECK_EQ_INT(first_code(j), 700027);
	json_decref(j);
	free(a);
	/* an EC key claiming RS256 cannot even sign; claiming ES256 against the RSA cert fails */
	a = assertion(ec, "ES256", "x5t#S256", x5t256, p.app_id, aud, 300, "jti-4");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	/* kid shaped like a path, unknown kid */
	a = assertion(key, "RS256", "kid", "../../../../etc/passwd", p.app_id, aud, 300, "jti-5");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	CHECK_EQ_INT(first_code(j), 700027);
	json_decref(j);
	free(a);
	/* expired, too long-lived, wrong audience, wrong issuer */
	a = assertion(key, "RS256", "x5t#S256", x5t256, p.app_id, aud, -600, "jti-6");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	CHECK_EQ_INT(first_code(j), 700024);
	json_decref(j);
	free(a);
	a = assertion(key, "RS256", "x5t#S256", x5t256, p.app_id, aud, 10 * 86400, "jti-7");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	a = assertion(key, "RS256", "x5t#S256", x5t256, p.app_id, "https://evil.example/token", 300, "jti-8");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	struct dir_principal q = app("other");
	a = assertion(key, "RS256", "x5t#S256", x5t256, q.app_id, aud, 300, "jti-9");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	CHECK_EQ_INT(first_code(j), 700021);
	json_decref(j);
	free(a);
	/* alg none, HMAC with the public key */
	a = forge("none", p.app_id, aud, x5t256);
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	a = forge("HS256", p.app_id, aud, x5t256);
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	/* garbage */
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, "a.b", &j), 400);
	json_decref(j);

	/* the certificate removed for its host: assertions fail from then on */
	REQUIRE(dir_credential_remove_host(d, NULL, p.object_id, "host-1", &err) == 0);
	a = assertion(key, "RS256", "x5t#S256", x5t256, p.app_id, aud, 300, "jti-10");
	CHECK_EQ_INT(post_assertion(p.tenant_id, p.app_id, a, &j), 401);
	json_decref(j);
	free(a);
	bc_jwk_free(key);
	bc_jwk_free(other);
	bc_jwk_free(ec);
	bc_buf_release(&csr);
	bc_buf_release(&cert);
}

TEST(deleted_principal_token_dies_at_once)
{
	struct dir_principal p;
	struct bc_error err;
	struct bc_buf tok = {0};
	int64_t exp;
	REQUIRE(dir_principal_create(d, NULL, NULL, DIR_TYPE_MANAGED, "vm1",
				     "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1", &p,
				     &err) == 0);
	REQUIRE(dir_token_issue(d, &p, VAULT, 1, &tok, &exp, &err) == 0);
	const char *aud[] = {"https://vault.badge.internal:8443/"};
	struct dir_claims c;
	CHECK_EQ_INT(dir_token_verify(d, tok.data, tok.len, NULL, aud, 1, &c, &err), 0);
	CHECK_STR(c.xms_mirid, "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm1");
	CHECK_EQ_INT(dir_token_verify(d, tok.data, tok.len, NULL, aud, 1, &c, &err), 0); /* cached */
	REQUIRE(dir_principal_delete(d, NULL, p.object_id, &err) == 0);
	CHECK_EQ_INT(dir_token_verify(d, tok.data, tok.len, NULL, aud, 1, &c, &err), BC_ERR_UNAUTHENTICATED);
	CHECK(strstr(err.msg, "no longer exists") != NULL);
	/* tampered payload: a different token, never served from the cache */
	char *t2 = strdup(tok.data);
	char *dot = strchr(t2, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(dir_token_verify(d, t2, strlen(t2), NULL, aud, 1, &c, &err), BC_ERR_UNAUTHENTICATED);
	free(t2);
	/* alg none and HS256 tokens with a real kid */
	char hdr[200];
	pthread_rwlock_rdlock(&d->keys_lock);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"kid\":\"%s\"}", d->keys.keys[0].kid);
	pthread_rwlock_unlock(&d->keys_lock);
	char *h = bc_b64url_encode_str(hdr, strlen(hdr));
	const char *payload = strchr(tok.data, '.') + 1;
	char forged[8192];
	snprintf(forged, sizeof(forged), "%s.%.*s.c2ln", h, (int)(strchr(payload, '.') - payload), payload);
	CHECK_EQ_INT(dir_token_verify(d, forged, strlen(forged), NULL, aud, 1, &c, &err), BC_ERR_UNAUTHENTICATED);
	free(h);
	bc_buf_release(&tok);
}

TEST(expiry_uses_the_clock)
{
	struct dir_principal p = app("clock");
	struct bc_error err;
	struct bc_buf tok = {0};
	int64_t exp;
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &tok, &exp, &err) == 0);
	const char *aud[] = {MGMT};
	struct dir_claims c;
	CHECK_EQ_INT(dir_token_verify(d, tok.data, tok.len, NULL, aud, 1, &c, &err), 0);
	fake_now = exp + 120;
	bc_clock_set(fake_clock, NULL);
	CHECK_EQ_INT(dir_token_verify(d, tok.data, tok.len, NULL, aud, 1, &c, &err), BC_ERR_UNAUTHENTICATED);
	bc_clock_set(NULL, NULL);
	bc_buf_release(&tok);
}

static const char *token_kid(const char *tok)
{
	static char kid[64];
	struct bc_jwt jwt;
	bc_jwt_init(&jwt);
	if (bc_jwt_parse(&jwt, tok, strlen(tok), NULL))
		return "";
	snprintf(kid, sizeof(kid), "%s", jwt.kid ? jwt.kid : "");
	bc_jwt_release(&jwt);
	return kid;
}

static size_t jwks_count(const char *tenant)
{
	char path[128];
	json_t *j;
	snprintf(path, sizeof(path), "/%s/discovery/v2.0/keys", tenant);
	if (get_json(path, &j) != 200)
		return 0;
	size_t n = json_array_size(json_object_get(j, "keys"));
	json_decref(j);
	return n;
}

TEST(rotation_publishes_before_signing)
{
	struct dir_principal p = app("rot");
	struct bc_error err;
	struct bc_buf t1 = {0}, t2 = {0}, t3 = {0};
	int64_t exp;
	const char *aud[] = {MGMT};
	struct dir_claims c;
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t1, &exp, &err) == 0);
	char k1[64];
	snprintf(k1, sizeof(k1), "%s", token_kid(t1.data));
	size_t before = jwks_count(p.tenant_id);
	json_t *r = NULL;
	REQUIRE(dir_rotate(d, NULL, false, &r, &err) == 0);
	json_decref(r);
	CHECK_EQ_INT(jwks_count(p.tenant_id), before + 1); /* published */
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t2, &exp, &err) == 0);
	CHECK_STR(token_kid(t2.data), k1); /* not yet signing */
	REQUIRE(dir_rotate(d, NULL, true, &r, &err) == 0);
	json_decref(r);
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t3, &exp, &err) == 0);
	CHECK(strcmp(token_kid(t3.data), k1) != 0); /* the new key signs */
	CHECK_EQ_INT(jwks_count(p.tenant_id), before + 1); /* the old one stays published */
	CHECK_EQ_INT(dir_token_verify(d, t1.data, t1.len, NULL, aud, 1, &c, &err), 0);
	CHECK_EQ_INT(dir_token_verify(d, t3.data, t3.len, NULL, aud, 1, &c, &err), 0);
	/* once the old key's longest token has expired, it leaves the JWKS */
	fake_now = bc_now() + 3600 + BC_LIMIT_CLOCK_SKEW_S + 10;
	bc_clock_set(fake_clock, NULL);
	REQUIRE(dir_reload(d, &err) == 0);
	CHECK_EQ_INT(jwks_count(p.tenant_id), before);
	bc_clock_set(NULL, NULL);
	REQUIRE(dir_reload(d, &err) == 0);
	bc_buf_release(&t1);
	bc_buf_release(&t2);
	bc_buf_release(&t3);
}

TEST(scheduled_rotation_and_upkeep)
{
	struct bc_error err;
	struct dir_principal p = app("sched");
	struct bc_buf t1 = {0}, t2 = {0};
	int64_t exp;
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t1, &exp, &err) == 0);
	char k1[64];
	snprintf(k1, sizeof(k1), "%s", token_kid(t1.data));
	size_t before = jwks_count(p.tenant_id);
	/* not due: nothing happens */
	d->cfg.key_rotation_s = 30 * 86400;
	REQUIRE(dir_maintain(d, &err) == 0);
	CHECK_EQ_INT(jwks_count(p.tenant_id), before);
	/* due within the pre-publication period: a key is published, not yet signing */
	fake_now = bc_now() + 30 * 86400 - 60;
	bc_clock_set(fake_clock, NULL);
	REQUIRE(dir_reload(d, &err) == 0);
	before = jwks_count(p.tenant_id); /* keys retired by then have left */
	REQUIRE(dir_maintain(d, &err) == 0);
	CHECK_EQ_INT(jwks_count(p.tenant_id), before + 1);
	REQUIRE(dir_maintain(d, &err) == 0); /* idempotent: the pending key is the newest now */
	CHECK_EQ_INT(jwks_count(p.tenant_id), before + 1);
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t2, &exp, &err) == 0);
	CHECK_STR(token_kid(t2.data), k1);
	/* once its time has come it signs, with no further action */
	fake_now += 3600 + 1;
	bc_buf_reset(&t2);
	REQUIRE(dir_token_issue(d, &p, MGMT, 1, &t2, &exp, &err) == 0);
	CHECK(strcmp(token_kid(t2.data), k1) != 0);
	/* a day after the old key's last token expired, its row is gone */
	fake_now += 3600 + BC_LIMIT_CLOCK_SKEW_S + 86400 + 60;
	REQUIRE(dir_maintain(d, &err) == 0);
	int64_t n = -1;
	bool found;
	struct bc_param q[] = {BC_PTEXT(k1)};
	REQUIRE(bc_store_get_int(st, NULL, "SELECT COUNT(*) FROM dir_signing_keys WHERE kid = ?", q, 1, &n, &found, &err) == 0);
	CHECK_EQ_INT(n, 0);
	d->cfg.key_rotation_s = 0;
	bc_clock_set(NULL, NULL);
	REQUIRE(dir_reload(d, &err) == 0);
	bc_buf_release(&t1);
	bc_buf_release(&t2);
}

TEST(discovery)
{
	json_t *j;
	char path[160], want[256];
	const char *t = dir_default_tenant(d);
	snprintf(path, sizeof(path), "/%s/v2.0/.well-known/openid-configuration", t);
	CHECK_EQ_INT(get_json(path, &j), 200);
	snprintf(want, sizeof(want), LOGIN "/%s/v2.0", t);
	CHECK_STR(bc_json_str(j, "issuer"), want);
	snprintf(want, sizeof(want), "https://" HOST "/%s/oauth2/v2.0/token", t);
	CHECK_STR(bc_json_str(j, "token_endpoint"), want);
	snprintf(want, sizeof(want), "https://" HOST "/%s/discovery/v2.0/keys", t);
	CHECK_STR(bc_json_str(j, "jwks_uri"), want);
	CHECK(bc_json_str(j, "authorization_endpoint") != NULL);
	json_decref(j);
	snprintf(path, sizeof(path), "/%s/.well-known/openid-configuration", t);
	CHECK_EQ_INT(get_json(path, &j), 200);
	snprintf(want, sizeof(want), LOGIN "/%s/", t);
	CHECK_STR(bc_json_str(j, "issuer"), want);
	json_decref(j);
	snprintf(path, sizeof(path), "/%s/discovery/keys", t);
	CHECK_EQ_INT(get_json(path, &j), 200);
	json_t *k = json_array_get(json_object_get(j, "keys"), 0);
	CHECK_STR(bc_json_str(k, "kty"), "RSA");
	CHECK(bc_json_str(k, "kid") && bc_json_str(k, "n") && bc_json_str(k, "e") && bc_json_str(k, "issuer"));
	CHECK(json_object_get(k, "d") == NULL && json_object_get(k, "p") == NULL); /* never private members */
	json_decref(j);
	CHECK_EQ_INT(get_json("/common/discovery/keys", &j), 200);
	json_decref(j);
	CHECK_EQ_INT(get_json("/nope/discovery/keys", &j), 400);
	json_decref(j);
}

STACK_MAIN(setup, stack_close_dir, T(secret_v1_and_v2), T(assertions), T(deleted_principal_token_dies_at_once),
	   T(expiry_uses_the_clock), T(rotation_publishes_before_signing), T(scheduled_rotation_and_upkeep),
	   T(discovery))
