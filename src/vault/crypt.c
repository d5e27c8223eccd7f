/* Encryption at rest. Envelope: each vault has a 256-bit data key (table vault_deks) stored
 * wrapped (AES-256-GCM) under a key-encryption key derived with HKDF-SHA256 from the master key
 * file, which is never in the database. Values are sealed with AES-256-GCM under the vault's
 * data key, a random 96-bit nonce, and the object's identity as associated data, so a sealed
 * value moved to another row (or another vault) fails to open.
 *
 * Sealed format (base64 text): "v1" || nonce(12) || ciphertext || tag(16).
 * Backup blobs: "BADGEBK1" || nonce(12) || ciphertext || tag(16) under a backup key derived
 * from the same master key: only this installation can open them. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/b64.h"
#include "core/log.h"
#include "core/store.h"
#include "core/util.h"
#include "vault/vault_int.h"

#define KEY_LEN      32
#define NONCE_LEN    12
#define TAG_LEN      16
#define MASTER_MAX   4096
#define SEAL_MAGIC   "v1"
#define BACKUP_MAGIC "BADGEBK1"  /* sealed under a key derived from the master key (before 2026-11-29) */
#define BACKUP_MAGIC2 "BADGEBK2" /* sealed under the installation's backup key (below) */
/* The installation's backup key: a random key kept like a vault's data key, in vault_deks under a
 * name no vault can have (names are [0-9a-zA-Z-]), so a master-key rotation wraps it again with
 * the data keys and backups made before a rotation still restore. */
#define BACKUP_KEY_ROW "#backup"

struct dek {
	char vault[BC_LIMIT_NAME + 1];
	uint8_t key[KEY_LEN];
	struct dek *next;
};

struct vault_crypt {
	struct bc_store *st; /* borrowed */
	uint8_t kek[KEY_LEN];
	uint8_t backup_key[KEY_LEN];
	pthread_rwlock_t lock; /* guards deks */
	struct dek *deks;      /* owned list; vaults are few */
};

static int hkdf(const uint8_t *ikm, size_t n, const char *info, uint8_t out[KEY_LEN], struct bc_error *err)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int rc = BC_OK;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, n),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)"badge-vault", 11),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
		OSSL_PARAM_construct_end(),
	};
	if (!kctx || EVP_KDF_derive(kctx, out, KEY_LEN, params) != 1)
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "hkdf");
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

/* The cipher, fetched once: EVP_aes_256_gcm() in every Init fetches it from the provider
 * again (a lock and a hash lookup on every secret read). */
static EVP_CIPHER *aes_gcm_fetched;
static pthread_once_t aes_gcm_once = PTHREAD_ONCE_INIT;

static void aes_gcm_init(void)
{
	aes_gcm_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *aes_gcm(void)
{
	pthread_once(&aes_gcm_once, aes_gcm_init);
	return aes_gcm_fetched ? aes_gcm_fetched : EVP_aes_256_gcm();
}

/* AES-256-GCM. out gets nonce || ct || tag (n + 28 bytes). */
static int gcm_seal(const uint8_t key[KEY_LEN], const void *aad, size_t aadlen, const void *pt, size_t n,
		    uint8_t *out, struct bc_error *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, rc = BC_ERR_CRYPTO;
	if (!ctx)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	if (bc_random(out, NONCE_LEN) != BC_OK)
		goto done;
	if (EVP_EncryptInit_ex(ctx, aes_gcm(), NULL, key, out) != 1 ||
	    (aadlen && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) ||
	    (n && EVP_EncryptUpdate(ctx, out + NONCE_LEN, &len, pt, (int)n) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + NONCE_LEN + n, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + NONCE_LEN + n) != 1)
		goto done;
	rc = BC_OK;
done:
	EVP_CIPHER_CTX_free(ctx);
	if (rc != BC_OK)
		bc_error_openssl(err, rc, "aes-gcm seal");
	return rc;
}

/* in: nonce || ct || tag; out gets n - 28 bytes (plus a NUL). */
static int gcm_open(const uint8_t key[KEY_LEN], const void *aad, size_t aadlen, const uint8_t *in, size_t n,
		    uint8_t **out, size_t *outlen, struct bc_error *err)
{
	if (n < NONCE_LEN + TAG_LEN)
		return bc_error_set(err, BC_ERR_CRYPTO, "sealed data too short");
	size_t ctlen = n - NONCE_LEN - TAG_LEN;
	uint8_t *pt = malloc(ctlen + 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, rc = BC_ERR_CRYPTO;
	if (!pt || !ctx) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (EVP_DecryptInit_ex(ctx, aes_gcm(), NULL, key, in) != 1 ||
	    (aadlen && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) ||
	    (ctlen && EVP_DecryptUpdate(ctx, pt, &len, in + NONCE_LEN, (int)ctlen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(in + NONCE_LEN + ctlen)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + ctlen, &len) != 1) {
		ERR_clear_error();
		rc = bc_error_set(err, BC_ERR_CRYPTO, "sealed data failed authentication");
		goto done;
	}
	pt[ctlen] = '\0';
	*out = pt;
	*outlen = ctlen;
	pt = NULL;
	rc = BC_OK;
done:
	EVP_CIPHER_CTX_free(ctx);
	if (pt) {
		bc_wipe(pt, ctlen + 1);
		free(pt);
	}
	return rc;
}

/* Reads the master key file, or creates it (32 random bytes, 0600) when absent. */
static int master_load(const char *path, uint8_t **key, size_t *n, struct bc_error *err)
{
	uint8_t fresh[KEY_LEN];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		int ok = bc_random(fresh, sizeof(fresh)) == BC_OK &&
			 write(fd, fresh, sizeof(fresh)) == (ssize_t)sizeof(fresh) && fsync(fd) == 0;
		close(fd);
		bc_wipe(fresh, sizeof(fresh));
		if (!ok) {
			unlink(path);
			return bc_error_set(err, BC_ERR_IO, "cannot create master key file %s: %s", path,
					    strerror(errno));
		}
		bc_log_info("vault: created master key file %s", path);
	} else if (errno != EEXIST) {
		return bc_error_set(err, BC_ERR_IO, "cannot create master key file %s: %s", path,
				    strerror(errno));
	}
	struct stat sb;
	if (stat(path, &sb) != 0)
		return bc_error_set(err, BC_ERR_IO, "cannot stat master key file %s: %s", path,
				    strerror(errno));
	if (sb.st_mode & 077)
		return bc_error_set(
			err, BC_ERR_INVALID,
			"master key file %s is accessible by group or others (mode %o, want 0600)", path,
			(unsigned)(sb.st_mode & 0777));
	char *data = NULL;
	size_t len = 0;
	int rc = bc_read_file(path, MASTER_MAX, &data, &len, err);
	if (rc != BC_OK)
		return rc;
	if (len < KEY_LEN) {
		bc_wipe(data, len);
		free(data);
		return bc_error_set(err, BC_ERR_INVALID,
				    "master key file %s is too short (%zu bytes, want at least %d)", path,
				    len, KEY_LEN);
	}
	*key = (uint8_t *)data;
	*n = len;
	return BC_OK;
}

int vault_crypt_new(struct vault_crypt **out, const char *master_key_file, struct bc_store *st,
		    struct bc_error *err)
{
	if (!master_key_file || !*master_key_file)
		return bc_error_set(err, BC_ERR_INVALID, "vault: no master key file configured");
	struct vault_crypt *c = calloc(1, sizeof(*c));
	uint8_t *mk = NULL;
	size_t mklen = 0;
	int rc;
	if (!c)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	c->st = st;
	pthread_rwlock_init(&c->lock, NULL);
	/* Whatever format the file has (the directory shares it), the keys come from HKDF over its
	 * whole content, each with its own label. */
	rc = master_load(master_key_file, &mk, &mklen, err);
	if (rc != BC_OK)
		goto fail;
	rc = hkdf(mk, mklen, "badge vault kek v1", c->kek, err);
	if (rc == BC_OK)
		rc = hkdf(mk, mklen, "badge vault backup v1", c->backup_key, err);
	bc_wipe(mk, mklen);
	free(mk);
	if (rc != BC_OK)
		goto fail;
	*out = c;
	return BC_OK;
fail:
	vault_crypt_free(c);
	return rc;
}

void vault_crypt_free(struct vault_crypt *c)
{
	if (!c)
		return;
	for (struct dek *d = c->deks, *next; d; d = next) {
		next = d->next;
		bc_wipe(d, sizeof(*d));
		free(d);
	}
	pthread_rwlock_destroy(&c->lock);
	bc_wipe(c, sizeof(*c));
	free(c);
}

void vault_crypt_forget(struct vault_crypt *c, const char *vault)
{
	if (!c)
		return;
	pthread_rwlock_wrlock(&c->lock);
	for (struct dek **pp = &c->deks; *pp;) {
		struct dek *d = *pp;
		if (!vault || strcmp(d->vault, vault) == 0) {
			*pp = d->next;
			bc_wipe(d, sizeof(*d));
			free(d);
		} else {
			pp = &d->next;
		}
	}
	pthread_rwlock_unlock(&c->lock);
}

static bool dek_cached(struct vault_crypt *c, const char *vault, uint8_t key[KEY_LEN])
{
	bool found = false;
	pthread_rwlock_rdlock(&c->lock);
	for (struct dek *d = c->deks; d; d = d->next)
		if (strcmp(d->vault, vault) == 0) {
			memcpy(key, d->key, KEY_LEN);
			found = true;
			break;
		}
	pthread_rwlock_unlock(&c->lock);
	return found;
}

/* Caches vault's data key, replacing the one cached before (a vault purged and made again on
 * another replica has a new key under the same name). */
static void dek_remember(struct vault_crypt *c, const char *vault, const uint8_t key[KEY_LEN])
{
	struct dek *d = calloc(1, sizeof(*d));
	if (!d || strlen(vault) >= sizeof(d->vault)) {
		free(d);
		return;
	}
	strcpy(d->vault, vault);
	memcpy(d->key, key, KEY_LEN);
	pthread_rwlock_wrlock(&c->lock);
	for (struct dek **pp = &c->deks; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->vault, vault) == 0) {
			struct dek *old = *pp;
			d->next = old->next;
			*pp = d;
			bc_wipe(old, sizeof(*old));
			free(old);
			d = NULL;
			break;
		}
	if (d) {
		d->next = c->deks;
		c->deks = d;
	}
	pthread_rwlock_unlock(&c->lock);
}

static int dek_unwrap(struct vault_crypt *c, const char *vault, const char *wrapped, uint8_t key[KEY_LEN],
		      struct bc_error *err)
{
	uint8_t *raw = NULL, *pt = NULL;
	size_t rawlen = 0, ptlen = 0;
	char aad[BC_LIMIT_NAME + 32];
	snprintf(aad, sizeof(aad), "dek:%s", vault);
	int rc = bc_b64_decode(wrapped, strlen(wrapped), &raw, &rawlen, err);
	if (rc == BC_OK)
		rc = gcm_open(c->kek, aad, strlen(aad), raw, rawlen, &pt, &ptlen, err);
	if (rc == BC_OK && ptlen != KEY_LEN)
		rc = bc_error_set(err, BC_ERR_CRYPTO, "data key of vault %s has a bad length", vault);
	if (rc == BC_OK)
		memcpy(key, pt, KEY_LEN);
	else if (rc == BC_ERR_CRYPTO)
		bc_error_set(err, BC_ERR_CRYPTO, "data key of vault %s does not open with this master key",
			     vault);
	if (pt) {
		bc_wipe(pt, ptlen);
		free(pt);
	}
	free(raw);
	return rc;
}

/* The data key of vault. Reads (create false) take the cached key; sealing (create true: writes,
 * rare) always reads the store's, so that nothing is ever sealed under a key the store no longer
 * holds — a cache on this replica can lag behind another replica's purge of the vault by the
 * time its notification takes. */
static int dek_get(struct vault_crypt *c, const char *vault, bool create, uint8_t key[KEY_LEN],
		   struct bc_error *err)
{
	if (!create && dek_cached(c, vault, key))
		return BC_OK;
	char *wrapped = NULL;
	struct bc_param p[] = {BC_PTEXT(vault)};
	int rc = bc_store_get_text(c->st, NULL, "SELECT dek FROM vault_deks WHERE vault = ?", p, 1, &wrapped,
				   err);
	if (rc != BC_OK)
		return rc;
	if (!wrapped) {
		if (!create)
			return bc_error_set(err, BC_ERR_NOT_FOUND, "vault %s has no data key", vault);
		/* First write to this vault: make a data key. Two replicas may race; the loser
		 * re-reads the winner's key. */
		uint8_t fresh[KEY_LEN], sealed[NONCE_LEN + KEY_LEN + TAG_LEN];
		char aad[BC_LIMIT_NAME + 32];
		struct bc_buf b64 = {0};
		snprintf(aad, sizeof(aad), "dek:%s", vault);
		rc = bc_random(fresh, KEY_LEN) == BC_OK ? BC_OK
							: bc_error_set(err, BC_ERR_CRYPTO, "no randomness");
		if (rc == BC_OK)
			rc = gcm_seal(c->kek, aad, strlen(aad), fresh, KEY_LEN, sealed, err);
		if (rc == BC_OK)
			rc = bc_b64_encode(sealed, sizeof(sealed), &b64);
		if (rc == BC_OK) {
			struct bc_param ip[] = {BC_PTEXT(vault), BC_PTEXT(bc_buf_cstr(&b64)),
						BC_PINT(bc_now())};
			rc = bc_store_exec(c->st, NULL,
					   "INSERT INTO vault_deks (vault, dek, created) VALUES (?, ?, ?)",
					   ip, 3, NULL, NULL, NULL, err);
		}
		bc_buf_release(&b64);
		if (rc == BC_OK) {
			memcpy(key, fresh, KEY_LEN);
			dek_remember(c, vault, key);
		}
		bc_wipe(fresh, sizeof(fresh));
		if (rc != BC_ERR_EXISTS)
			return rc;
		rc = bc_store_get_text(c->st, NULL, "SELECT dek FROM vault_deks WHERE vault = ?", p, 1,
				       &wrapped, err);
		if (rc != BC_OK)
			return rc;
		if (!wrapped)
			return bc_error_set(err, BC_ERR_STORE, "data key of vault %s vanished", vault);
	}
	rc = dek_unwrap(c, vault, wrapped, key, err);
	free(wrapped);
	if (rc == BC_OK)
		dek_remember(c, vault, key);
	return rc;
}

int vault_seal(struct vault_crypt *c, const char *vault, const char *aad, const void *pt, size_t n,
	       char **out, struct bc_error *err)
{
	uint8_t key[KEY_LEN];
	uint8_t *buf = NULL;
	struct bc_buf b64 = {0};
	int rc = dek_get(c, vault, true, key, err);
	if (rc != BC_OK)
		return rc;
	if (n > SIZE_MAX - 64 || !(buf = malloc(2 + n + NONCE_LEN + TAG_LEN))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	memcpy(buf, SEAL_MAGIC, 2);
	rc = gcm_seal(key, aad, strlen(aad), pt, n, buf + 2, err);
	if (rc == BC_OK)
		rc = bc_b64_encode(buf, 2 + n + NONCE_LEN + TAG_LEN, &b64);
	if (rc == BC_OK)
		*out = bc_buf_detach(&b64, NULL);
done:
	bc_wipe(key, sizeof(key));
	free(buf);
	bc_buf_release(&b64);
	return rc;
}

int vault_open(struct vault_crypt *c, const char *vault, const char *aad, const char *sealed, uint8_t **out,
	       size_t *outlen, struct bc_error *err)
{
	uint8_t key[KEY_LEN];
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	bool cached = dek_cached(c, vault, key);
	int rc = cached ? BC_OK : dek_get(c, vault, false, key, err);
	if (rc != BC_OK)
		return rc;
	rc = bc_b64_decode(sealed, strlen(sealed), &raw, &rawlen, err);
	if (rc == BC_OK && (rawlen < 2 || memcmp(raw, SEAL_MAGIC, 2) != 0))
		rc = bc_error_set(err, BC_ERR_CRYPTO, "sealed value has an unknown format");
	if (rc == BC_OK)
		rc = gcm_open(key, aad, strlen(aad), raw + 2, rawlen - 2, out, outlen, err);
	if (rc == BC_ERR_CRYPTO && cached) {
		/* a key cached before the vault was purged and made again elsewhere: the store's */
		vault_crypt_forget(c, vault);
		bc_error_clear(err);
		rc = dek_get(c, vault, false, key, err);
		if (rc == BC_OK)
			rc = gcm_open(key, aad, strlen(aad), raw + 2, rawlen - 2, out, outlen, err);
	}
	bc_wipe(key, sizeof(key));
	free(raw);
	return rc;
}

int vault_backup_seal(struct vault_crypt *c, const char *kind, const void *pt, size_t n, struct bc_buf *blob,
		      struct bc_error *err)
{
	size_t ml = strlen(BACKUP_MAGIC2);
	uint8_t key[KEY_LEN];
	int rc = dek_get(c, BACKUP_KEY_ROW, true, key, err);
	if (rc != BC_OK)
		return rc;
	uint8_t *buf = n < SIZE_MAX - 64 ? malloc(ml + n + NONCE_LEN + TAG_LEN) : NULL;
	if (!buf) {
		bc_wipe(key, sizeof(key));
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	memcpy(buf, BACKUP_MAGIC2, ml);
	rc = gcm_seal(key, kind, strlen(kind), pt, n, buf + ml, err);
	bc_wipe(key, sizeof(key));
	if (rc == BC_OK)
		rc = bc_b64url_encode(buf, ml + n + NONCE_LEN + TAG_LEN, blob);
	free(buf);
	return rc;
}

int vault_backup_open(struct vault_crypt *c, const char *kind, const uint8_t *blob, size_t n, uint8_t **out,
		      size_t *outlen, struct bc_error *err)
{
	size_t ml = strlen(BACKUP_MAGIC2);
	if (n >= ml && memcmp(blob, BACKUP_MAGIC2, ml) == 0) {
		uint8_t key[KEY_LEN];
		int rc = dek_get(c, BACKUP_KEY_ROW, false, key, err);
		if (rc == BC_ERR_NOT_FOUND) /* no backup was ever made here: not ours */
			return bc_error_set(err, BC_ERR_CRYPTO, "the backup was not made by this installation");
		if (rc == BC_OK)
			rc = gcm_open(key, kind, strlen(kind), blob + ml, n - ml, out, outlen, err);
		bc_wipe(key, sizeof(key));
		return rc;
	}
	ml = strlen(BACKUP_MAGIC);
	if (n < ml || memcmp(blob, BACKUP_MAGIC, ml) != 0)
		return bc_error_set(err, BC_ERR_INVALID, "not a badge backup blob");
	return gcm_open(c->backup_key, kind, strlen(kind), blob + ml, n - ml, out, outlen, err);
}

/* Master-key rotation (reseal.c). */
int vault_dek_rewrap(struct vault_crypt *from, struct vault_crypt *to, const char *vault, const char *wrapped,
		     char **out, struct bc_error *err)
{
	uint8_t key[KEY_LEN], sealed[NONCE_LEN + KEY_LEN + TAG_LEN];
	char aad[BC_LIMIT_NAME + 32];
	struct bc_buf b64 = {0};
	int rc = dek_unwrap(from, vault, wrapped, key, err);
	if (rc != BC_OK)
		return rc;
	snprintf(aad, sizeof(aad), "dek:%s", vault);
	rc = gcm_seal(to->kek, aad, strlen(aad), key, KEY_LEN, sealed, err);
	bc_wipe(key, sizeof(key));
	if (rc == BC_OK && (rc = bc_b64_encode(sealed, sizeof(sealed), &b64)) != BC_OK)
		bc_error_set(err, rc, "out of memory");
	if (rc == BC_OK)
		*out = bc_buf_detach(&b64, NULL);
	bc_buf_release(&b64);
	return rc;
}

int vault_dek_check(struct vault_crypt *c, const char *vault, const char *wrapped, struct bc_error *err)
{
	uint8_t key[KEY_LEN];
	int rc = dek_unwrap(c, vault, wrapped, key, err);
	bc_wipe(key, sizeof(key));
	return rc;
}
