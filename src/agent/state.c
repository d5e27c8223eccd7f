/* The agent's state on disk, under its data dir (0700):
 *   host.json          who the host is (server, host id, tenant, client id ...)
 *   host.key host.pem  the host's private key (0600) and certificate
 *   ca.pem             the server's CA, from enrolment
 *   identities/OID.key identities/OID.pem   one key pair and certificate per identity
 *   sync.json          the last sync, so that a restart during a server outage still serves
 *   appservice.json    App Service ports and secrets per instance local name (0600)
 *   netns.json         veth subnet slots per namespace
 *   names.json         local names per instance resource id (naming.c; kept for its life here)
 * Every file is written atomically (temp file, fsync, rename), so kill -9 leaves either the old
 * or the new version. A key is written before the certificate that names it. */
#include "agent/agentint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/json.h"
#include "core/log.h"
#include "core/pki.h"
#include "core/util.h"

#define STATE_FILE_MAX (1024 * 1024)

int agent_state_path(const struct agent *a, const char *name, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/%s", a->dir, name) >= n)
		return BC_ERR_LIMIT;
	return BC_OK;
}

int agent_json_load(const struct agent *a, const char *name, json_t **out, struct bc_error *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	if (agent_state_path(a, name, path, sizeof(path)))
		return bc_error_set(err, BC_ERR_LIMIT, "path too long");
	if (access(path, F_OK) != 0)
		return BC_OK;
	int rc = bc_read_file(path, STATE_FILE_MAX, &text, &len, err);
	if (rc == BC_OK)
		rc = bc_json_parse(text, len, STATE_FILE_MAX, out, err);
	if (text) {
		bc_wipe(text, len);
		free(text);
	}
	if (rc != BC_OK)
		bc_error_wrap(err, "%s", path);
	return rc;
}

int agent_json_save(const struct agent *a, const char *name, const json_t *doc, struct bc_error *err)
{
	char path[PATH_MAX];
	if (agent_state_path(a, name, path, sizeof(path)))
		return bc_error_set(err, BC_ERR_LIMIT, "path too long");
	char *text = json_dumps(doc, JSON_COMPACT);
	if (!text)
		return bc_error_set(err, BC_ERR_NOMEM, "cannot serialise %s", name);
	size_t len = strlen(text);
	int rc = bc_write_file_atomic(path, text, len, 0600, err);
	bc_wipe(text, len);
	free(text);
	return rc;
}

int agent_generate_key(const struct agent *a, struct bc_jwk **out, struct bc_error *err)
{
	/* EC P-256 by default: an ES256 assertion costs a fraction of an RS256 one, and a first token
	 * waits for it; only badge's directory ever sees these keys */
	const char *kty = a->cfg.key_type ? a->cfg.key_type : "EC";
	int bits = a->cfg.key_bits ? a->cfg.key_bits : (!strcmp(kty, "EC") ? 256 : 2048);
	return bc_jwk_generate(out, kty, bits, err);
}

/* The issue time of a certificate seen at t, within its validity. */
static int64_t clamp_issue(const struct agent_cred *c, int64_t t)
{
	if (t > c->not_after)
		t = c->not_after;
	return t < c->not_before ? c->not_before : t;
}

int agent_cred_set_cert(struct agent_cred *c, const char *cert_pem, struct bc_error *err)
{
	X509 *x = NULL;
	char x5t[28];
	int rc = bc_x509_parse_pem(cert_pem, strlen(cert_pem), &x, err);
	if (rc == BC_OK)
		rc = bc_x509_thumbprints(x, x5t, c->x5t256, err);
	if (rc == BC_OK)
		rc = bc_x509_validity(x, &c->not_before, &c->not_after, err);
	X509_free(x);
	if (rc != BC_OK)
		return rc;
	char *copy = strdup(cert_pem);
	if (!copy)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	free(c->cert_pem);
	c->cert_pem = copy;
	c->issued_at = clamp_issue(c, bc_now());
	return BC_OK;
}

int64_t agent_cred_renew_at(const struct agent_cred *c)
{
	if (!c->cert_pem)
		return 0;
	int64_t start = c->issued_at ? c->issued_at : c->not_before;
	return start + (c->not_after - start) / 2;
}

void agent_cred_release(struct agent_cred *c)
{
	bc_jwk_free(c->key);
	free(c->cert_pem);
	c->key = NULL;
	c->cert_pem = NULL;
}

/* Writes key then certificate for a credential: "host" or "identities/<oid>". */
static int save_pair(struct agent *a, const char *base, const struct agent_cred *c, struct bc_error *err)
{
	char path[PATH_MAX];
	struct bc_buf pem = {0};
	int rc = bc_jwk_to_pem(c->key, true, &pem, err);
	if (rc == BC_OK && (size_t)snprintf(path, sizeof(path), "%s/%s.key", a->dir, base) >= sizeof(path))
		rc = bc_error_set(err, BC_ERR_LIMIT, "path too long");
	if (rc == BC_OK)
		rc = bc_write_file_atomic(path, pem.data, pem.len, 0600, err);
	bc_buf_wipe(&pem);
	if (rc != BC_OK)
		return rc;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.pem", a->dir, base) >= sizeof(path))
		return bc_error_set(err, BC_ERR_LIMIT, "path too long");
	return bc_write_file_atomic(path, c->cert_pem, strlen(c->cert_pem), 0600, err);
}

static int load_pair(struct agent *a, const char *base, struct agent_cred *c, struct bc_error *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	int rc;
	snprintf(path, sizeof(path), "%s/%s.key", a->dir, base);
	if ((rc = bc_read_file(path, BC_LIMIT_CERT_BYTES * 2, &text, &len, err)) != BC_OK)
		return rc;
	rc = bc_jwk_from_pem(&c->key, text, len, err);
	bc_wipe(text, len);
	free(text);
	text = NULL;
	if (rc != BC_OK)
		return bc_error_wrap(err, "%s", path);
	snprintf(path, sizeof(path), "%s/%s.pem", a->dir, base);
	if ((rc = bc_read_file(path, BC_LIMIT_CERT_BYTES * 2, &text, &len, err)) != BC_OK)
		goto fail;
	rc = agent_cred_set_cert(c, text, err);
	free(text);
	if (rc != BC_OK)
		goto fail;
	struct stat sb; /* written when it was issued */
	if (stat(path, &sb) == 0)
		c->issued_at = clamp_issue(c, (int64_t)sb.st_mtime);
	return BC_OK;
fail:
	bc_jwk_free(c->key);
	c->key = NULL;
	return rc;
}

static const char *const host_fields[] = {"serverUrl", "hostName", "hostId", "tenantId",
					   "clientId", "objectId", "domain", "managementResource"};

static char *host_field(struct agent_host *h, size_t i, size_t *n)
{
	char *f[] = {h->server_url, h->host_name, h->host_id, h->tenant_id,
		     h->client_id, h->object_id, h->domain, h->management_resource};
	size_t sz[] = {sizeof(h->server_url), sizeof(h->host_name), sizeof(h->host_id), sizeof(h->tenant_id),
		       sizeof(h->client_id), sizeof(h->object_id), sizeof(h->domain), sizeof(h->management_resource)};
	*n = sz[i];
	return f[i];
}

int agent_host_save(struct agent *a, struct bc_error *err)
{
	json_t *o = json_object();
	size_t n;
	if (!o)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < sizeof(host_fields) / sizeof(host_fields[0]); i++)
		bc_json_set_str(o, host_fields[i], host_field(&a->host, i, &n));
	int rc = save_pair(a, "host", &a->host.cred, err);
	if (rc == BC_OK) /* host.json last: its presence means the host is enrolled */
		rc = agent_json_save(a, "host.json", o, err);
	json_decref(o);
	return rc;
}

int agent_host_load(struct agent *a, bool *found, struct bc_error *err)
{
	json_t *o = NULL;
	size_t n;
	*found = false;
	int rc = agent_json_load(a, "host.json", &o, err);
	if (rc != BC_OK || !o)
		return rc;
	for (size_t i = 0; i < sizeof(host_fields) / sizeof(host_fields[0]); i++) {
		const char *v = bc_json_str(o, host_fields[i]);
		char *dst = host_field(&a->host, i, &n);
		snprintf(dst, n, "%s", v ? v : "");
	}
	json_decref(o);
	if ((rc = load_pair(a, "host", &a->host.cred, err)) != BC_OK)
		return rc;
	*found = true;
	return BC_OK;
}

int agent_cred_save(struct agent *a, const struct agent_cred *c, struct bc_error *err)
{
	char base[64];
	snprintf(base, sizeof(base), "identities/%s", c->object_id);
	return save_pair(a, base, c, err);
}

void agent_cred_remove_files(struct agent *a, const char *object_id)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/identities/%s.key", a->dir, object_id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/identities/%s.pem", a->dir, object_id);
	unlink(path);
}

/* Loads every identity key pair left by the last run; the next sync drops those no longer wanted. */
int agent_creds_load(struct agent *a, struct bc_error *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/identities", a->dir);
	DIR *d = opendir(path);
	if (!d)
		return BC_OK;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len != 36 + 4 || strcmp(de->d_name + 36, ".pem") != 0)
			continue;
		struct agent_cred *c = calloc(1, sizeof(*c));
		if (!c)
			break;
		memcpy(c->object_id, de->d_name, 36);
		char base[64];
		snprintf(base, sizeof(base), "identities/%s", c->object_id);
		struct bc_error e2 = {0};
		if (load_pair(a, base, c, &e2) != BC_OK) {
			bc_log_warn("agent: ignoring the saved credential of %s: %s", c->object_id, e2.msg);
			free(c);
			continue;
		}
		c->next = a->creds;
		a->creds = c;
	}
	closedir(d);
	(void)err;
	return BC_OK;
}
