/* Directory credentials: client credentials grant at the v2 token endpoint with a client secret
 * or an RFC 7523 assertion signed by the client's certificate key (x5t#S256, aud = endpoint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client/client_int.h"
#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/util.h"

#define ASSERTION_LIFETIME_S 600

struct badge_credential *cred_alloc(enum cred_kind kind);

static int token_endpoint(const char *authority, const char *tenant, char **out)
{
	if (!authority || strncasecmp(authority, "https://", 8) != 0)
		return BADGE_E_TLS;
	size_t len = strlen(authority);
	while (len > 8 && authority[len - 1] == '/')
		len--;
	struct bc_buf b = {0};
	if (bc_buf_appendf(&b, "%.*s/%s/oauth2/v2.0/token", (int)len, authority, tenant) != BC_OK) {
		bc_buf_release(&b);
		return BADGE_E_NOMEM;
	}
	*out = bc_buf_detach(&b, NULL);
	return BADGE_OK;
}

static bool valid_arg(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max;
}

static int new_directory(struct badge_credential **out, enum cred_kind kind, const char *authority,
			 const char *tenant, const char *client_id)
{
	if (!out || !valid_arg(tenant, 128) || !valid_arg(client_id, 128) || strchr(tenant, '/'))
		return BADGE_E_INVALID;
	struct badge_credential *c = cred_alloc(kind);
	if (!c)
		return BADGE_E_NOMEM;
	int rc = token_endpoint(authority, tenant, &c->token_url);
	if (rc == BADGE_OK && !(c->client_id = strdup(client_id)))
		rc = BADGE_E_NOMEM;
	if (rc != BADGE_OK) {
		badge_credential_free(c);
		return rc;
	}
	*out = c;
	return BADGE_OK;
}

int badge_credential_new_client_secret(struct badge_credential **out, const char *authority,
				       const char *tenant, const char *client_id, const char *secret)
{
	if (!valid_arg(secret, BC_LIMIT_SECRET_BYTES))
		return BADGE_E_INVALID;
	struct badge_credential *c = NULL;
	int rc = new_directory(&c, CRED_SECRET, authority, tenant, client_id);
	if (rc != BADGE_OK)
		return rc;
	if (!(c->secret = strdup(secret))) {
		badge_credential_free(c);
		return BADGE_E_NOMEM;
	}
	*out = c;
	return BADGE_OK;
}

/* The private key block of a PEM file that may also hold certificates. */
static const char *find_private_key(const char *pem)
{
	for (const char *p = strstr(pem, "-----BEGIN "); p; p = strstr(p + 1, "-----BEGIN ")) {
		const char *eol = strchr(p, '\n');
		const char *k = strstr(p, "PRIVATE KEY-----");
		if (k && (!eol || k < eol))
			return p;
	}
	return NULL;
}

static int load_cert(struct badge_credential *c, const char *cert_file, const char *key_file)
{
	char *cert = NULL, *keytext = NULL;
	size_t clen = 0, klen = 0;
	X509 *x = NULL;
	struct bc_error err = {0};
	char x5t[28];
	int rc = BADGE_E_INVALID;
	if (bc_read_file(cert_file, BC_LIMIT_PEM_BYTES, &cert, &clen, &err) != BC_OK ||
	    bc_x509_parse_pem(cert, clen, &x, &err) != BC_OK ||
	    bc_x509_thumbprints(x, x5t, c->x5t256, &err) != BC_OK)
		goto out;
	if (key_file && bc_read_file(key_file, BC_LIMIT_PEM_BYTES, &keytext, &klen, &err) != BC_OK)
		goto out;
	const char *k = find_private_key(key_file ? keytext : cert);
	if (!k || bc_jwk_from_pem(&c->key, k, strlen(k), &err) != BC_OK || !bc_jwk_is_private(c->key))
		goto out;
	/* the key must be the certificate's: the directory checks the signature with the certificate */
	EVP_PKEY *pub = X509_get0_pubkey(x);
	if (!pub || EVP_PKEY_eq(pub, bc_jwk_pkey(c->key)) != 1)
		goto out;
	rc = BADGE_OK;
out:
	X509_free(x);
	if (keytext) {
		bc_wipe(keytext, klen);
		free(keytext);
	}
	if (cert) {
		bc_wipe(cert, clen);
		free(cert);
	}
	return rc;
}

int badge_credential_new_client_certificate(struct badge_credential **out, const char *authority,
					    const char *tenant, const char *client_id, const char *cert_file,
					    const char *key_file)
{
	if (!cert_file)
		return BADGE_E_INVALID;
	struct badge_credential *c = NULL;
	int rc = new_directory(&c, CRED_CERT, authority, tenant, client_id);
	if (rc != BADGE_OK)
		return rc;
	if ((rc = load_cert(c, cert_file, key_file)) != BADGE_OK) {
		badge_credential_free(c);
		return rc;
	}
	*out = c;
	return BADGE_OK;
}

static int make_assertion(const struct badge_credential *c, struct bc_buf *out, struct bc_error *err)
{
	char jti[37];
	int64_t now = cred_now_ms(c) / 1000;
	if (bc_uuid4(jti) != BC_OK)
		return bc_error_set(err, BADGE_E_INTERNAL, "no random bytes for a jti");
	json_t *hdr = json_pack("{s:s,s:s}", "typ", "JWT", "x5t#S256", c->x5t256);
	json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "aud", c->token_url, "iss", c->client_id,
				   "sub", c->client_id, "jti", jti, "nbf", (json_int_t)now, "iat",
				   (json_int_t)now, "exp", (json_int_t)(now + ASSERTION_LIFETIME_S));
	char *payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
	struct bc_error jerr = {0};
	int rc = BADGE_OK;
	if (!hdr || !payload)
		rc = bc_error_set(err, BADGE_E_NOMEM, "out of memory");
	else if (bc_jws_sign(c->key, NULL, hdr, payload, strlen(payload), out, &jerr) != BC_OK)
		rc = bc_error_set(err, BADGE_E_INTERNAL, "cannot sign the client assertion: %s", jerr.msg);
	free(payload);
	json_decref(claims);
	json_decref(hdr);
	return rc;
}

/* scope = resource + "/.default" ("https://x/" gives "https://x/.default") */
static int append_scope(const char *resource, struct bc_buf *form)
{
	size_t n = strlen(resource);
	int rc = bc_httpc_escape(resource, form);
	return rc ? rc : bc_buf_appends(form, n && resource[n - 1] == '/' ? ".default" : "%2F.default");
}

int aad_fetch(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	      struct bc_error *err)
{
	struct bc_buf form = {0}, assertion = {0};
	struct bc_httpc_res res;
	bc_httpc_res_init(&res);
	int rc;
	if (c->kind == CRED_CERT && (rc = make_assertion(c, &assertion, err)) != BADGE_OK)
		goto out;
	rc = bc_buf_appends(&form, "grant_type=client_credentials&client_id=");
	if (!rc)
		rc = bc_httpc_escape(c->client_id, &form);
	if (!rc)
		rc = bc_buf_appends(&form, "&scope=");
	if (!rc)
		rc = append_scope(resource, &form);
	if (!rc && c->kind == CRED_SECRET) {
		rc = bc_buf_appends(&form, "&client_secret=");
		if (!rc)
			rc = bc_httpc_escape(c->secret, &form);
	} else if (!rc) {
		rc = bc_buf_appends(&form, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
					   "assertion-type%3Ajwt-bearer"
					   "&client_assertion=");
		if (!rc)
			rc = bc_buf_append(&form, assertion.data, assertion.len);
	}
	if (rc) {
		rc = bc_error_set(err, BADGE_E_NOMEM, "out of memory");
		goto out;
	}
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
				 "Accept: application/json", NULL};
	struct bc_httpc_req req = {.method = "POST",
				   .url = c->token_url,
				   .headers = headers,
				   .body = form.data,
				   .body_len = form.len,
				   .ca_file = client_ca_file(c->ca_file)};
	if ((rc = client_http_retry(c, &req, false, &res, err)) == BADGE_OK)
		rc = client_parse_token(&res, cred_now_ms(c) / 1000, token, expires_on, err);
	if (rc != BADGE_OK)
		bc_error_wrap(err, "directory (%s)", badge_credential_kind(c));
out:
	bc_buf_wipe(&form);
	bc_buf_wipe(&assertion);
	bc_httpc_res_release(&res);
	return rc;
}
