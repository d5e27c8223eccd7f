#include "core/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/util.h"

#define SEAL_NONCE 12
#define SEAL_TAG 16

struct bc_seal {
	uint8_t key[32];
};

int bc_seal_from_key(const uint8_t key[32], struct bc_seal **out, struct bc_error *err)
{
	struct bc_seal *s = calloc(1, sizeof(*s));
	if (!s)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	memcpy(s->key, key, 32);
	*out = s;
	return BC_OK;
}

static int read_key(const char *path, uint8_t key[32], struct bc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bc_error_set(err, errno == ENOENT ? BC_ERR_NOT_FOUND : BC_ERR_IO, "cannot open master key %s: %s",
				    path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		return bc_error_set(err, BC_ERR_IO, "master key %s must not be readable by group or others", path);
	}
	uint8_t buf[33];
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != 32) {
		bc_wipe(buf, sizeof(buf));
		return bc_error_set(err, BC_ERR_INVALID, "master key %s must hold exactly 32 bytes", path);
	}
	memcpy(key, buf, 32);
	bc_wipe(buf, sizeof(buf));
	return BC_OK;
}

int bc_seal_load_or_create(const char *key_file, struct bc_seal **out, struct bc_error *err)
{
	uint8_t key[32];
	int rc = read_key(key_file, key, err);
	if (rc == BC_ERR_NOT_FOUND) {
		if (RAND_bytes(key, sizeof(key)) != 1)
			return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot generate master key");
		/* O_EXCL: two servers starting at once never overwrite each other's key. */
		int fd = open(key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			bc_wipe(key, sizeof(key));
			if (errno == EEXIST)
				rc = read_key(key_file, key, err);
			else
				return bc_error_set(err, BC_ERR_IO, "cannot create master key %s: %s", key_file,
						    strerror(errno));
		} else {
			ssize_t w = write(fd, key, sizeof(key));
			int ok = w == (ssize_t)sizeof(key) && fsync(fd) == 0;
			close(fd);
			if (!ok) {
				bc_wipe(key, sizeof(key));
				unlink(key_file);
				return bc_error_set(err, BC_ERR_IO, "cannot write master key %s", key_file);
			}
			rc = BC_OK;
		}
	}
	if (rc != BC_OK)
		return rc;
	rc = bc_seal_from_key(key, out, err);
	bc_wipe(key, sizeof(key));
	return rc;
}

void bc_seal_free(struct bc_seal *s)
{
	if (!s)
		return;
	bc_wipe(s->key, sizeof(s->key));
	free(s);
}

int bc_seal(const struct bc_seal *s, const char *aad, const void *plain, size_t n, struct bc_buf *out,
	    struct bc_error *err)
{
	if (n > (size_t)INT32_MAX)
		return bc_error_set(err, BC_ERR_LIMIT, "value too large to seal");
	uint8_t nonce[SEAL_NONCE];
	uint8_t *ct = malloc(n + SEAL_TAG);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int rc = BC_ERR_CRYPTO, len = 0, fin = 0;
	if (!ct || !ctx) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, nonce) != 1 ||
	    (aad && EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) != 1) ||
	    EVP_EncryptUpdate(ctx, ct, &len, plain, (int)n) != 1 || EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, ct + len + fin) != 1) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot seal value");
		goto done;
	}
	if ((rc = bc_buf_appends(out, "v1.")) || (rc = bc_b64url_encode(nonce, sizeof(nonce), out)) ||
	    (rc = bc_buf_appendc(out, '.')) || (rc = bc_b64url_encode(ct, (size_t)(len + fin) + SEAL_TAG, out))) {
		bc_error_set(err, rc, "cannot encode sealed value");
		goto done;
	}
	rc = BC_OK;
done:
	if (ct) {
		bc_wipe(ct, n + SEAL_TAG);
		free(ct);
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int bc_unseal(const struct bc_seal *s, const char *aad, const char *sealed, size_t n, struct bc_buf *out,
	      struct bc_error *err)
{
	const char *dot;
	if (n < 4 || memcmp(sealed, "v1.", 3) != 0 || !(dot = memchr(sealed + 3, '.', n - 3)))
		return bc_error_set(err, BC_ERR_CRYPTO, "sealed value is malformed");
	uint8_t *nonce = NULL, *ct = NULL, *pt = NULL;
	size_t nlen = 0, clen = 0;
	int rc = BC_ERR_CRYPTO, len = 0, fin = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	if (bc_b64url_decode(sealed + 3, (size_t)(dot - sealed - 3), &nonce, &nlen, err) ||
	    bc_b64url_decode(dot + 1, n - (size_t)(dot + 1 - sealed), &ct, &clen, err) || nlen != SEAL_NONCE ||
	    clen < SEAL_TAG) {
		rc = bc_error_set(err, BC_ERR_CRYPTO, "sealed value is malformed");
		goto done;
	}
	pt = malloc(clen - SEAL_TAG + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!pt || !ctx) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, nonce) != 1 ||
	    (aad && EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) != 1) ||
	    EVP_DecryptUpdate(ctx, pt, &len, ct, (int)(clen - SEAL_TAG)) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, ct + clen - SEAL_TAG) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + len, &fin) != 1) {
		ERR_clear_error();
		rc = bc_error_set(err, BC_ERR_CRYPTO, "sealed value does not authenticate");
		goto done;
	}
	if ((rc = bc_buf_append(out, pt, (size_t)(len + fin)))) {
		bc_error_set(err, rc, "cannot hold unsealed value");
		goto done;
	}
	rc = BC_OK;
done:
	if (pt) {
		bc_wipe(pt, clen >= SEAL_TAG ? clen - SEAL_TAG + 1 : 0);
		free(pt);
	}
	free(nonce);
	free(ct);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}
