/* The managed-identity credential: the endpoint chosen from the environment the way the Azure
 * SDKs choose it (App Service IDENTITY_ENDPOINT + IDENTITY_HEADER, else IMDS at
 * AZURE_POD_IDENTITY_AUTHORITY_HOST, else IMDS at 169.254.169.254), the identity selector, and
 * one token request with Azure's retry rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client/client_int.h"
#include "core/buf.h"
#include "core/limits.h"

#define IMDS_DEFAULT   "http://169.254.169.254"
#define IMDS_PATH      "/metadata/identity/oauth2/token"
#define IMDS_API       "2018-02-01"
#define APPSERVICE_API "2019-08-01"

struct badge_credential *cred_alloc(enum cred_kind kind);

static int imds_url(const char *base, char **out)
{
	size_t len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	if (len == 0)
		return BADGE_E_INVALID;
	char *u = malloc(len + sizeof(IMDS_PATH));
	if (!u)
		return BADGE_E_NOMEM;
	memcpy(u, base, len);
	memcpy(u + len, IMDS_PATH, sizeof(IMDS_PATH));
	*out = u;
	return BADGE_OK;
}

int badge_credential_new_managed_identity(struct badge_credential **out, enum badge_identity_kind kind,
					  const char *id)
{
	if (!out || kind < BADGE_IDENTITY_SYSTEM || kind > BADGE_IDENTITY_RESOURCE_ID ||
	    (kind == BADGE_IDENTITY_SYSTEM) != (id == NULL) ||
	    (id && (!*id || strlen(id) > BC_LIMIT_RESOURCE_ID)))
		return BADGE_E_INVALID;
	const char *ep = getenv("IDENTITY_ENDPOINT"), *hdr = getenv("IDENTITY_HEADER");
	const char *pod = getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
	bool app = ep && *ep && hdr && *hdr;
	struct badge_credential *c = cred_alloc(app ? CRED_APPSERVICE : pod && *pod ? CRED_POD : CRED_IMDS);
	if (!c)
		return BADGE_E_NOMEM;
	int rc = BADGE_OK;
	c->id_kind = kind;
	if (id && !(c->id = strdup(id)))
		rc = BADGE_E_NOMEM;
	if (rc == BADGE_OK && app) {
		if (!(c->token_url = strdup(ep)) || !(c->identity_header = strdup(hdr)))
			rc = BADGE_E_NOMEM;
	} else if (rc == BADGE_OK) {
		rc = imds_url(c->kind == CRED_POD ? pod : IMDS_DEFAULT, &c->token_url);
	}
	if (rc != BADGE_OK) {
		badge_credential_free(c);
		return rc;
	}
	*out = c;
	return BADGE_OK;
}

int badge_credential_set_imds_url(struct badge_credential *c, const char *base_url)
{
	if (!c || !base_url || (c->kind != CRED_IMDS && c->kind != CRED_POD))
		return BADGE_E_INVALID;
	char *u = NULL;
	int rc = imds_url(base_url, &u);
	if (rc != BADGE_OK)
		return rc;
	free(c->token_url);
	c->token_url = u;
	return BADGE_OK;
}

/* The query parameter naming the identity: the names differ between IMDS and App Service. */
static const char *id_param(const struct badge_credential *c)
{
	bool app = c->kind == CRED_APPSERVICE;
	switch (c->id_kind) {
	case BADGE_IDENTITY_CLIENT_ID:
		return "client_id";
	case BADGE_IDENTITY_OBJECT_ID:
		return app ? "principal_id" : "object_id";
	case BADGE_IDENTITY_RESOURCE_ID:
		return app ? "mi_res_id" : "msi_res_id";
	default:
		return NULL;
	}
}

static int build_url(const struct badge_credential *c, const char *resource, struct bc_buf *url)
{
	int rc = bc_buf_appends(url, c->token_url);
	if (!rc)
		rc = bc_buf_appendf(url, "%capi-version=%s&resource=", strchr(c->token_url, '?') ? '&' : '?',
				    c->kind == CRED_APPSERVICE ? APPSERVICE_API : IMDS_API);
	if (!rc)
		rc = bc_httpc_escape(resource, url);
	const char *p = id_param(c);
	if (!rc && p && c->id) {
		rc = bc_buf_appendf(url, "&%s=", p);
		if (!rc)
			rc = bc_httpc_escape(c->id, url);
	}
	return rc;
}

int mi_fetch(struct badge_credential *c, const char *resource, char **token, int64_t *expires_on,
	     struct bc_error *err)
{
	struct bc_buf url = {0}, hdr = {0};
	struct bc_httpc_res res;
	bc_httpc_res_init(&res);
	int rc = build_url(c, resource, &url);
	if (!rc)
		rc = c->kind == CRED_APPSERVICE
			     ? bc_buf_appendf(&hdr, "X-IDENTITY-HEADER: %s", c->identity_header)
			     : bc_buf_appends(&hdr, "Metadata: true");
	if (rc) {
		rc = bc_error_set(err, BADGE_E_NOMEM, "out of memory");
		goto out;
	}
	const char *headers[] = {hdr.data, "Accept: application/json", NULL};
	struct bc_httpc_req req = {.method = "GET",
				   .url = url.data,
				   .headers = headers,
				   .ca_file = client_ca_file(c->ca_file),
				   .timeout_ms = 30000};
	if ((rc = client_http_retry(c, &req, true, &res, err)) != BADGE_OK) {
		bc_error_wrap(err, "managed identity (%s)", badge_credential_kind(c));
		goto out;
	}
	rc = client_parse_token(&res, cred_now_ms(c) / 1000, token, expires_on, err);
	if (rc != BADGE_OK)
		bc_error_wrap(err, "managed identity (%s)", badge_credential_kind(c));
out:
	bc_buf_release(&url);
	bc_buf_wipe(&hdr);
	bc_httpc_res_release(&res);
	return rc;
}
