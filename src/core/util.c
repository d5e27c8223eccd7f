/* Small shared helpers: clock, randomness, ids, constant-time compare, whole-file I/O. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The injected clock. ctx is published before fn, and fn withdrawn before ctx changes, so a
 * reader that sees fn also sees its ctx. */
static _Atomic(bc_clock_fn) clock_fn;
static _Atomic(void *) clock_ctx;

int64_t bc_now(void)
{
	bc_clock_fn fn = atomic_load(&clock_fn);
	if (fn)
		return fn(atomic_load(&clock_ctx));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t bc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bc_clock_set(bc_clock_fn fn, void *ctx)
{
	atomic_store(&clock_fn, NULL);
	atomic_store(&clock_ctx, ctx);
	atomic_store(&clock_fn, fn);
}

int bc_random(void *out, size_t n)
{
	unsigned char *p = out;
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		if (RAND_bytes(p, chunk) != 1)
			return BC_ERR_CRYPTO;
		p += chunk;
		n -= (size_t)chunk;
	}
	return BC_OK;
}

void bc_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int bc_uuid4(char out[37])
{
	uint8_t b[16];
	char h[33];
	if (bc_random(b, sizeof(b)) != BC_OK)
		return BC_ERR_CRYPTO;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	bc_hex(b, sizeof(b), h);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	return BC_OK;
}

int bc_random_hex32(char out[33])
{
	uint8_t b[16];
	if (bc_random(b, sizeof(b)) != BC_OK)
		return BC_ERR_CRYPTO;
	bc_hex(b, sizeof(b), out);
	return BC_OK;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool bc_is_uuid(const char *s)
{
	if (!s)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return s[36] == '\0';
}

bool bc_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	/* The lengths are not secret (a token's length is visible on the wire); the bytes are. */
	if (alen != blen)
		return false;
	return alen == 0 || CRYPTO_memcmp(a, b, alen) == 0;
}

void bc_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

bool bc_streq_ci(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool bc_str_endswith_ci(const char *s, const char *suffix)
{
	if (!s || !suffix)
		return false;
	size_t n = strlen(s), m = strlen(suffix);
	return m <= n && bc_streq_ci(s + n - m, suffix);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fsync of the directory holding path, so that a rename survives a crash. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -1;
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int bc_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct bc_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return bc_error_set(err, BC_ERR_INVALID, "path too long: %s", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return bc_error_set(err, BC_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
	const char *what;
	if (fchmod(fd, (mode_t)mode) != 0) {
		what = "chmod";
		goto fail;
	}
	if (write_all(fd, data, len) != 0) {
		what = "write";
		goto fail;
	}
	if (fsync(fd) != 0) {
		what = "fsync";
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		what = "close";
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		what = "rename";
		goto fail;
	}
	if (fsync_parent(path) != 0)
		return bc_error_set(err, BC_ERR_IO, "cannot fsync directory of %s: %s", path,
				    strerror(errno));
	return BC_OK;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return bc_error_set(err, BC_ERR_IO, "cannot write %s: %s: %s", path, what, strerror(e));
}

int bc_read_file(const char *path, size_t max, char **out, size_t *len, struct bc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bc_error_set(err, errno == ENOENT ? BC_ERR_NOT_FOUND : BC_ERR_IO, "cannot open %s: %s",
				    path, strerror(errno));
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2; /* keeps max + 2 below overflow */
	int st = BC_OK;
	char *buf = NULL;
	size_t n = 0, alloc = 0;
	for (;;) {
		if (n == alloc) {
			if (alloc > max) { /* read max + 1 bytes: one more than allowed */
				st = bc_error_set(err, BC_ERR_LIMIT, "file too large: %s (limit %zu bytes)",
						  path, max);
				goto fail;
			}
			size_t a = alloc ? alloc * 2 : 4096;
			if (a > max + 1)
				a = max + 1;
			char *p = realloc(buf, a + 1);
			if (!p) {
				st = bc_error_set(err, BC_ERR_NOMEM, "out of memory reading %s", path);
				goto fail;
			}
			buf = p;
			alloc = a;
		}
		ssize_t r = read(fd, buf + n, alloc - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			st = bc_error_set(err, BC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf && !(buf = malloc(1)))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory reading %s", path);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return BC_OK;
fail:
	close(fd);
	free(buf);
	return st;
}

int bc_mkdir_p(const char *path, int mode, struct bc_error *err)
{
	char p[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "empty directory path");
	if (n >= sizeof(p))
		return bc_error_set(err, BC_ERR_INVALID, "path too long: %s", path);
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char saved = p[i];
		p[i] = '\0';
		if (mkdir(p, (mode_t)mode) != 0) {
			int e = errno;
			struct stat st;
			if (e != EEXIST)
				return bc_error_set(err, BC_ERR_IO, "cannot create directory %s: %s", p,
						    strerror(e));
			if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
				return bc_error_set(err, BC_ERR_IO,
						    "cannot create directory %s: not a directory", p);
		}
		p[i] = saved;
	}
	return BC_OK;
}

size_t bc_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = src ? strlen(src) : 0;
	size_t k = len < n ? len : n - 1;
	if (k)
		memcpy(dst, src, k);
	dst[k] = '\0';
	return len;
}
