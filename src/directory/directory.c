/* The directory: lifecycle, tenants, principals and credentials. */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE dir_tenants (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, is_default BIGINT NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL);"
	"CREATE TABLE dir_principals (object_id TEXT PRIMARY KEY, app_id TEXT NOT NULL UNIQUE,"
	" tenant_id TEXT NOT NULL REFERENCES dir_tenants(id), type TEXT NOT NULL, display_name TEXT NOT NULL,"
	" resource_id TEXT NOT NULL DEFAULT '', enabled BIGINT NOT NULL DEFAULT 1, is_admin BIGINT NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL);"
	"CREATE INDEX dir_principals_resource ON dir_principals(resource_id);"
	"CREATE TABLE dir_credentials (id TEXT PRIMARY KEY,"
	" object_id TEXT NOT NULL REFERENCES dir_principals(object_id) ON DELETE CASCADE, kind TEXT NOT NULL,"
	" x5t TEXT, x5t256 TEXT, thumbprint TEXT, cert_pem TEXT, secret_hash TEXT, secret_hint TEXT,"
	" host_id TEXT NOT NULL DEFAULT '', not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, created BIGINT NOT NULL);"
	"CREATE INDEX dir_credentials_object ON dir_credentials(object_id);"
	"CREATE TABLE dir_signing_keys (kid TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, sealed_jwk TEXT NOT NULL,"
	" public_jwk TEXT NOT NULL, created BIGINT NOT NULL, signs_from BIGINT NOT NULL, seq BIGINT NOT NULL);"
	"CREATE TABLE dir_used_jti (jti TEXT PRIMARY KEY, expires BIGINT NOT NULL)",
	/* 2: every token request, issued or refused (core/audit.h) */
	"CREATE TABLE dir_audit (id TEXT PRIMARY KEY, time_ms BIGINT NOT NULL, tenant TEXT NOT NULL,"
	" operation TEXT NOT NULL, object TEXT, oid TEXT, appid TEXT, xms_mirid TEXT, client_ip TEXT,"
	" status BIGINT NOT NULL, duration_ms BIGINT NOT NULL, request_id TEXT);"
	"CREATE INDEX dir_audit_time ON dir_audit (tenant, time_ms)",
	/* 3: federated identity credentials (fic.c); lname is the name lower-cased */
	"CREATE TABLE dir_federated (object_id TEXT NOT NULL REFERENCES dir_principals(object_id) ON DELETE CASCADE,"
	" lname TEXT NOT NULL, name TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL,"
	" audience TEXT NOT NULL, created BIGINT NOT NULL, PRIMARY KEY (object_id, lname));"
	"CREATE INDEX dir_federated_match ON dir_federated (object_id, issuer, subject)",
};

bool dir_id_ok(const char *id)
{
	return id && bc_is_uuid(id);
}

void dir_issuer(const struct dir *d, const char *tenant_id, int version, char *out, size_t outlen)
{
	if (version == 2)
		snprintf(out, outlen, "%s/%s/v2.0", d->login_url, tenant_id);
	else
		snprintf(out, outlen, "%s/%s/", d->login_url, tenant_id);
}

void dir_request_base(const struct dir *d, const struct bc_http_req *req, char *out, size_t outlen)
{
	const char *host = req ? req->host : NULL;
	bool sane = host && *host && strlen(host) < 256;
	for (const char *p = host; sane && *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".-:[]", *p)))
			sane = false;
	if (sane)
		snprintf(out, outlen, "https://%s", host);
	else
		snprintf(out, outlen, "%s", d->login_url);
}

static int tenant_row(void *ctx, const struct bc_row *row)
{
	snprintf(ctx, 37, "%s", bc_row_text(row, 0) ? bc_row_text(row, 0) : "");
	return 1;
}

bool dir_tenant_exists(struct dir *d, const char *tenant_id)
{
	if (!dir_id_ok(tenant_id))
		return false;
	if (strcmp(tenant_id, d->default_tenant) == 0)
		return true;
	char found[37] = "";
	struct bc_param p[] = {BC_PTEXT(tenant_id)};
	if (bc_store_exec(d->st, NULL, "SELECT id FROM dir_tenants WHERE id = ?", p, 1, tenant_row, found, NULL, NULL))
		return false;
	return found[0] != 0;
}

static int ensure_default_tenant(struct dir *d, struct bc_error *err)
{
	char found[37] = "";
	int rc = bc_store_exec(d->st, NULL, "SELECT id FROM dir_tenants WHERE is_default = 1", NULL, 0, tenant_row,
			       found, NULL, err);
	if (rc)
		return rc;
	if (!found[0]) {
		char id[37];
		if ((rc = bc_uuid4(id)))
			return bc_error_set(err, rc, "cannot make a tenant id");
		struct bc_param p[] = {BC_PTEXT(id), BC_PTEXT("Default Directory"), BC_PINT(bc_now())};
		/* Two replicas starting at once: the unique default is decided by the later SELECT. */
		rc = bc_store_exec(d->st, NULL,
				   "INSERT INTO dir_tenants (id, display_name, is_default, created) "
				   "SELECT ?, ?, 1, ? WHERE NOT EXISTS (SELECT 1 FROM dir_tenants WHERE is_default = 1)",
				   p, 3, NULL, NULL, NULL, err);
		if (rc)
			return rc;
		rc = bc_store_exec(d->st, NULL, "SELECT id FROM dir_tenants WHERE is_default = 1 ORDER BY created, id",
				   NULL, 0, tenant_row, found, NULL, err);
		if (rc)
			return rc;
		bc_log_info("directory: default tenant is %s", found);
	}
	memcpy(d->default_tenant, found, sizeof(found));
	return BC_OK;
}

int dir_new(struct dir **out, struct bc_store *st, const struct dir_config *cfg, struct bc_error *err)
{
	struct dir *d = calloc(1, sizeof(*d));
	int rc;
	if (!d)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	d->st = st;
	d->cfg = *cfg;
	if (d->cfg.token_lifetime_s <= 0)
		d->cfg.token_lifetime_s = 86400;
	d->started = bc_now();
	pthread_rwlock_init(&d->keys_lock, NULL);
	pthread_mutex_init(&d->maint_mu, NULL);
	pthread_cond_init(&d->maint_cv, NULL);
	if (!cfg->login_url || strlen(cfg->login_url) >= sizeof(d->login_url)) {
		rc = bc_error_set(err, BC_ERR_INVALID, "directory needs a login url");
		goto fail;
	}
	snprintf(d->login_url, sizeof(d->login_url), "%s", cfg->login_url);
	size_t l = strlen(d->login_url);
	while (l > 0 && d->login_url[l - 1] == '/')
		d->login_url[--l] = 0;
	if ((rc = bc_seal_load_or_create(cfg->master_key_file, &d->seal, err)))
		goto fail;
	if ((rc = bc_store_migrate(st, "directory", migrations, sizeof(migrations) / sizeof(migrations[0]), err)))
		goto fail;
	if ((rc = ensure_default_tenant(d, err)))
		goto fail;
	if ((rc = bc_audit_new(&d->audit, st, "dir_audit", "tenant", NULL, NULL, err)))
		goto fail;
	if ((rc = dir_cache_init(d)) || (rc = dir_jti_init(d)) || (rc = dir_fed_init(d))) {
		bc_error_set(err, rc, "out of memory");
		goto fail;
	}
	if ((rc = dir_throttle_init(d))) {
		bc_error_set(err, rc, "directory: bad throttling limits");
		goto fail;
	}
	if ((rc = dir_keys_load(d, err)) || (rc = dir_keys_ensure(d, d->default_tenant, err)))
		goto fail;
	*out = d;
	return BC_OK;
fail:
	dir_free(d);
	return rc;
}

void dir_free(struct dir *d)
{
	if (!d)
		return;
	dir_stop_maintenance(d);
	bc_audit_free(d->audit);
	dir_keyset_release(&d->keys);
	dir_cache_free(d);
	dir_jti_free(d);
	dir_throttle_free(d);
	dir_fed_free(d);
	bc_seal_free(d->seal);
	pthread_rwlock_destroy(&d->keys_lock);
	pthread_mutex_destroy(&d->maint_mu);
	pthread_cond_destroy(&d->maint_cv);
	free(d);
}

int dir_mount(struct dir *d, struct bc_http_server *srv)
{
	int rc;
	if ((rc = dir_token_mount(d, srv)) || (rc = dir_discovery_mount(d, srv)) || (rc = dir_admin_mount(d, srv)))
		return rc;
	return BC_OK;
}

const char *dir_default_tenant(const struct dir *d)
{
	return d->default_tenant;
}

const char *dir_login_url(const struct dir *d)
{
	return d->login_url;
}

/* ---- principals ---- */

void dir_principal_from_row(const struct bc_row *row, struct dir_principal *p)
{
	memset(p, 0, sizeof(*p));
#define COPY(field, i) snprintf(p->field, sizeof(p->field), "%s", bc_row_text(row, i) ? bc_row_text(row, i) : "")
	COPY(object_id, 0);
	COPY(app_id, 1);
	COPY(tenant_id, 2);
	COPY(type, 3);
	COPY(display_name, 4);
	COPY(resource_id, 5);
#undef COPY
	p->enabled = bc_row_int(row, 6) != 0;
	p->created = bc_row_int(row, 7);
}

static int principal_row(void *ctx, const struct bc_row *row)
{
	struct dir_principal *p = ctx;
	dir_principal_from_row(row, p);
	return 1;
}

static bool display_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > BC_LIMIT_DISPLAY_NAME)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int dir_principal_create(struct dir *d, struct bc_txn *txn, const char *tenant_id, const char *type,
			 const char *display_name, const char *resource_id, struct dir_principal *out,
			 struct bc_error *err)
{
	if (!tenant_id)
		tenant_id = d->default_tenant;
	if (!dir_tenant_exists(d, tenant_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "tenant '%s' not found", tenant_id);
	if (!type || (strcmp(type, DIR_TYPE_MANAGED) != 0 && strcmp(type, DIR_TYPE_APP) != 0))
		return bc_error_set(err, BC_ERR_INVALID, "principal type must be %s or %s", DIR_TYPE_MANAGED,
				    DIR_TYPE_APP);
	if (!display_name_ok(display_name))
		return bc_error_set(err, BC_ERR_INVALID, "display name must be 1 to %d printable characters",
				    BC_LIMIT_DISPLAY_NAME);
	if (resource_id && strlen(resource_id) > BC_LIMIT_RESOURCE_ID)
		return bc_error_set(err, BC_ERR_LIMIT, "resource id longer than %d characters", BC_LIMIT_RESOURCE_ID);
	struct dir_principal p;
	memset(&p, 0, sizeof(p));
	if (bc_uuid4(p.object_id) || bc_uuid4(p.app_id))
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot make principal ids");
	snprintf(p.tenant_id, sizeof(p.tenant_id), "%s", tenant_id);
	snprintf(p.type, sizeof(p.type), "%s", type);
	snprintf(p.display_name, sizeof(p.display_name), "%s", display_name);
	snprintf(p.resource_id, sizeof(p.resource_id), "%s", resource_id ? resource_id : "");
	p.enabled = true;
	p.created = bc_now();
	struct bc_param params[] = {BC_PTEXT(p.object_id), BC_PTEXT(p.app_id), BC_PTEXT(p.tenant_id), BC_PTEXT(p.type),
				    BC_PTEXT(p.display_name), BC_PTEXT(p.resource_id), BC_PINT(p.created)};
	int rc = bc_store_exec(d->st, txn,
			       "INSERT INTO dir_principals (object_id, app_id, tenant_id, type, display_name, resource_id,"
			       " enabled, created) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
			       params, 7, NULL, NULL, NULL, err);
	if (rc)
		return rc;
	if (out)
		*out = p;
	return BC_OK;
}

int dir_principal_get(struct dir *d, struct bc_txn *txn, const char *id, struct dir_principal *out,
		      struct bc_error *err)
{
	if (!dir_id_ok(id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", id ? id : "");
	struct dir_principal p;
	p.object_id[0] = 0;
	struct bc_param params[] = {BC_PTEXT(id), BC_PTEXT(id)};
	int rc = bc_store_exec(d->st, txn,
			       "SELECT " DIR_PRINCIPAL_COLUMNS " FROM dir_principals WHERE object_id = ? OR app_id = ?",
			       params, 2, principal_row, &p, NULL, err);
	if (rc)
		return rc;
	if (!p.object_id[0])
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%s' not found", id);
	*out = p;
	return BC_OK;
}

int dir_principal_delete(struct dir *d, struct bc_txn *txn, const char *object_id, struct bc_error *err)
{
	if (!dir_id_ok(object_id))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%.64s' not found", object_id ? object_id : "");
	struct bc_param p[] = {BC_PTEXT(object_id)};
	int64_t changes = 0;
	int rc = bc_store_exec(d->st, txn, "DELETE FROM dir_credentials WHERE object_id = ?", p, 1, NULL, NULL, NULL,
			       err);
	if (rc || (rc = bc_store_exec(d->st, txn, "DELETE FROM dir_federated WHERE object_id = ?", p, 1, NULL, NULL,
				      NULL, err)))
		return rc;
	if ((rc = bc_store_exec(d->st, txn, "DELETE FROM dir_principals WHERE object_id = ?", p, 1, NULL, NULL,
				&changes, err)))
		return rc;
	if (changes == 0)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%s' not found", object_id);
	/* Forget cached tokens now (this replica) and again once the change is committed (every replica:
	 * a verification racing with this transaction could otherwise re-cache the old state). */
	dir_cache_principal_gone(d, object_id);
	return bc_store_notify(d->st, txn, "dir_principal", object_id, err);
}

int dir_principal_set_enabled(struct dir *d, struct bc_txn *txn, const char *object_id, bool enabled,
			      struct bc_error *err)
{
	struct bc_param p[] = {BC_PINT(enabled ? 1 : 0), BC_PTEXT(object_id)};
	int64_t changes = 0;
	int rc = bc_store_exec(d->st, txn, "UPDATE dir_principals SET enabled = ? WHERE object_id = ?", p, 2, NULL,
			       NULL, &changes, err);
	if (rc)
		return rc;
	if (changes == 0)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%s' not found", object_id);
	dir_cache_principal_gone(d, object_id);
	return bc_store_notify(d->st, txn, "dir_principal", object_id, err);
}

int dir_principal_set_admin(struct dir *d, struct bc_txn *txn, const char *object_id, bool admin,
			    struct bc_error *err)
{
	struct bc_param p[] = {BC_PINT(admin ? 1 : 0), BC_PTEXT(object_id)};
	int64_t changes = 0;
	int rc = bc_store_exec(d->st, txn, "UPDATE dir_principals SET is_admin = ? WHERE object_id = ?", p, 2, NULL,
			       NULL, &changes, err);
	if (rc)
		return rc;
	if (changes == 0)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%s' not found", object_id);
	return BC_OK;
}

bool dir_principal_is_admin(struct dir *d, const char *object_id)
{
	int64_t v = 0;
	bool found = false;
	struct bc_param p[] = {BC_PTEXT(object_id)};
	if (bc_store_get_int(d->st, NULL, "SELECT is_admin FROM dir_principals WHERE object_id = ? AND enabled = 1", p,
			     1, &v, &found, NULL))
		return false;
	return found && v == 1;
}

/* ---- credentials ---- */

static int principal_exists(struct dir *d, struct bc_txn *txn, const char *object_id, struct bc_error *err)
{
	struct dir_principal p;
	int rc = dir_principal_get(d, txn, object_id, &p, err);
	if (rc)
		return rc;
	if (strcmp(p.object_id, object_id) != 0)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "principal '%s' not found (an object id is needed)",
				    object_id);
	return BC_OK;
}

int dir_credential_add_cert(struct dir *d, struct bc_txn *txn, const char *object_id, const char *cert_pem,
			    const char *host_id, char cred_id[37], struct bc_error *err)
{
	X509 *cert = NULL;
	char x5t[28], x5t256[44], hex[41];
	int64_t nbf, naf;
	int rc;
	if ((rc = principal_exists(d, txn, object_id, err)))
		return rc;
	if (!cert_pem || (rc = bc_x509_parse_pem(cert_pem, strlen(cert_pem), &cert, err)))
		return rc ? rc : bc_error_set(err, BC_ERR_INVALID, "a PEM certificate is needed");
	if ((rc = bc_x509_thumbprints(cert, x5t, x5t256, err)) || (rc = bc_x509_thumbprint_hex(cert, hex, err)) ||
	    (rc = bc_x509_validity(cert, &nbf, &naf, err)))
		goto done;
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	int id = pk ? EVP_PKEY_get_base_id(pk) : 0;
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
		rc = bc_error_set(err, BC_ERR_INVALID, "certificate key must be RSA or EC");
		goto done;
	}
	if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) < 2048) {
		rc = bc_error_set(err, BC_ERR_INVALID, "certificate RSA key must have at least 2048 bits");
		goto done;
	}
	char id_buf[37];
	if ((rc = bc_uuid4(id_buf))) {
		bc_error_set(err, rc, "cannot make a credential id");
		goto done;
	}
	struct bc_param p[] = {BC_PTEXT(id_buf),	  BC_PTEXT(object_id), BC_PTEXT(x5t),
			       BC_PTEXT(x5t256),	  BC_PTEXT(hex),       BC_PTEXT(cert_pem),
			       BC_PTEXT(host_id ? host_id : ""), BC_PINT(nbf),	       BC_PINT(naf),
			       BC_PINT(bc_now())};
	rc = bc_store_exec(d->st, txn,
			   "INSERT INTO dir_credentials (id, object_id, kind, x5t, x5t256, thumbprint, cert_pem, host_id,"
			   " not_before, not_after, created) VALUES (?, ?, 'cert', ?, ?, ?, ?, ?, ?, ?, ?)",
			   p, 10, NULL, NULL, NULL, err);
	if (rc == BC_OK && cred_id)
		memcpy(cred_id, id_buf, 37);
done:
	X509_free(cert);
	return rc;
}

/* Client secrets are random (not chosen by people), so one SHA-256 over salt||secret is as
 * strong as a slow hash would be; stored as "sha256$<salt b64url>$<hash b64url>". */
int dir_secret_hash(const char *secret, const char *salt_b64, struct bc_buf *out);
int dir_secret_hash(const char *secret, const char *salt_b64, struct bc_buf *out)
{
	uint8_t md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, salt_b64, strlen(salt_b64)) == 1 &&
		 EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return BC_ERR_CRYPTO;
	int rc;
	if ((rc = bc_buf_appendf(out, "sha256$%s$", salt_b64)) || (rc = bc_b64url_encode(md, mdlen, out)))
		return rc;
	return BC_OK;
}

int dir_credential_add_secret(struct dir *d, struct bc_txn *txn, const char *object_id, int64_t expires,
			      char *secret_out, size_t secret_out_len, char cred_id[37], struct bc_error *err)
{
	uint8_t raw[30], salt[12];
	struct bc_buf secret = {0}, hash = {0}, salt_b64 = {0};
	char id_buf[37], hint[4];
	int rc;
	if ((rc = principal_exists(d, txn, object_id, err)))
		return rc;
	if (bc_random(raw, sizeof(raw)) || bc_random(salt, sizeof(salt)) || bc_uuid4(id_buf))
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot generate a secret");
	/* Like Entra's: a readable prefix, then 40 random characters. */
	if ((rc = bc_b64url_encode(raw, sizeof(raw), &secret)) || (rc = bc_b64url_encode(salt, sizeof(salt), &salt_b64)) ||
	    (rc = dir_secret_hash(secret.data, salt_b64.data, &hash))) {
		bc_error_set(err, rc, "cannot hash the secret");
		goto done;
	}
	if (secret.len + 1 > secret_out_len) {
		rc = bc_error_set(err, BC_ERR_LIMIT, "secret buffer too small");
		goto done;
	}
	snprintf(hint, sizeof(hint), "%.3s", secret.data);
	int64_t now = bc_now();
	if (expires <= 0)
		expires = now + 2 * 365 * 86400;
	struct bc_param p[] = {BC_PTEXT(id_buf), BC_PTEXT(object_id), BC_PTEXT(hash.data), BC_PTEXT(hint),
			       BC_PINT(now),	 BC_PINT(expires),    BC_PINT(now)};
	rc = bc_store_exec(d->st, txn,
			   "INSERT INTO dir_credentials (id, object_id, kind, secret_hash, secret_hint, not_before,"
			   " not_after, created) VALUES (?, ?, 'secret', ?, ?, ?, ?, ?)",
			   p, 7, NULL, NULL, NULL, err);
	if (rc)
		goto done;
	memcpy(secret_out, secret.data, secret.len + 1);
	if (cred_id)
		memcpy(cred_id, id_buf, 37);
done:
	bc_buf_wipe(&secret);
	bc_buf_release(&hash);
	bc_buf_release(&salt_b64);
	bc_wipe(raw, sizeof(raw));
	return rc;
}

int dir_credential_remove(struct dir *d, struct bc_txn *txn, const char *object_id, const char *cred_id,
			  struct bc_error *err)
{
	struct bc_param p[] = {BC_PTEXT(cred_id), BC_PTEXT(object_id)};
	int64_t changes = 0;
	int rc = bc_store_exec(d->st, txn, "DELETE FROM dir_credentials WHERE id = ? AND object_id = ?", p, 2, NULL,
			       NULL, &changes, err);
	if (rc)
		return rc;
	if (changes == 0)
		return bc_error_set(err, BC_ERR_NOT_FOUND, "credential '%s' of principal '%s' not found",
				    cred_id ? cred_id : "", object_id ? object_id : "");
	return BC_OK;
}

int dir_credential_remove_host(struct dir *d, struct bc_txn *txn, const char *object_id, const char *host_id,
			       struct bc_error *err)
{
	if (!host_id || !*host_id)
		return bc_error_set(err, BC_ERR_INVALID, "a host id is needed");
	struct bc_param p[] = {BC_PTEXT(object_id), BC_PTEXT(host_id)};
	return bc_store_exec(d->st, txn, "DELETE FROM dir_credentials WHERE object_id = ? AND host_id = ?", p, 2, NULL,
			     NULL, NULL, err);
}

int dir_issue_cert(struct dir *d, struct bc_txn *txn, const char *object_id, const char *host_id,
		   const char *csr_pem, int64_t lifetime_s, struct bc_buf *cert_pem, char cred_id[37],
		   struct bc_error *err)
{
	struct dir_principal p;
	struct bc_buf pem = {0};
	int rc;
	if (!d->cfg.ca)
		return bc_error_set(err, BC_ERR_INTERNAL, "directory has no certificate authority");
	if ((rc = dir_principal_get(d, txn, object_id, &p, err)))
		return rc;
	if (!csr_pem || strlen(csr_pem) > BC_LIMIT_CERT_BYTES)
		return bc_error_set(err, BC_ERR_INVALID, "a PEM certificate request of at most %d bytes is needed",
				    BC_LIMIT_CERT_BYTES);
	if ((rc = bc_ca_sign_csr(d->cfg.ca, csr_pem, strlen(csr_pem), p.app_id, lifetime_s, &pem, err)))
		goto done;
	if ((rc = dir_credential_add_cert(d, txn, p.object_id, pem.data, host_id, cred_id, err)))
		goto done;
	rc = bc_buf_append(cert_pem, pem.data, pem.len);
	if (rc)
		bc_error_set(err, rc, "cannot hold the certificate");
done:
	bc_buf_release(&pem);
	return rc;
}
