/* base64 and base64url over OpenSSL's EVP block coders. OpenSSL's decoder is lenient (it skips
 * whitespace and does not check trailing bits), so input is validated here first: exact alphabet,
 * padding only at the end, canonical trailing bits. A token thus has exactly one encoding. */
#include "core/b64.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ENC_CHUNK 3072 /* input bytes per EVP_EncodeBlock call: a multiple of 3 */
#define DEC_CHUNK 4096 /* input chars per EVP_DecodeBlock call: a multiple of 4 */

static int encode(const void *in, size_t n, struct bc_buf *out, bool url)
{
	const unsigned char *p = in;
	unsigned char tmp[ENC_CHUNK / 3 * 4 + 1];
	size_t before = out->len;
	if (n == 0)
		return bc_buf_append(out, "", 0); /* still NUL-terminate an empty buffer */
	while (n > 0) {
		size_t c = n < ENC_CHUNK ? n : ENC_CHUNK;
		int w = EVP_EncodeBlock(tmp, p, (int)c);
		if (w < 0)
			return BC_ERR_INTERNAL;
		size_t len = (size_t)w;
		if (url) {
			for (size_t i = 0; i < len; i++) {
				if (tmp[i] == '+')
					tmp[i] = '-';
				else if (tmp[i] == '/')
					tmp[i] = '_';
			}
			while (len > 0 && tmp[len - 1] == '=')
				len--;
		}
		int rc = bc_buf_append(out, tmp, len);
		if (rc) {
			out->len = before; /* no partial output */
			if (out->data)
				out->data[before] = '\0';
			return rc;
		}
		p += c;
		n -= c;
	}
	return BC_OK;
}

int bc_b64url_encode(const void *in, size_t n, struct bc_buf *out)
{
	return encode(in, n, out, true);
}

int bc_b64_encode(const void *in, size_t n, struct bc_buf *out)
{
	return encode(in, n, out, false);
}

char *bc_b64url_encode_str(const void *in, size_t n)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	if (n > (BC_BUF_DEFAULT_CAP / 4) * 3)
		bc_buf_init(&b, n / 3 * 4 + 4);
	if (bc_b64url_encode(in, n, &b) != BC_OK) {
		bc_buf_release(&b);
		return NULL;
	}
	return bc_buf_detach(&b, NULL);
}

/* 0..63 for a character of the alphabet, -1 otherwise. */
static int sextet(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Validates in[0..n) and returns the number of data characters (padding excluded). */
static int validate(const char *in, size_t n, bool url, size_t *ndata, struct bc_error *err)
{
	const char *name = url ? "base64url" : "base64";
	size_t d = n;
	while (d > 0 && in[d - 1] == '=' && n - d < 2)
		d--;
	size_t pad = n - d;
	for (size_t i = 0; i < d; i++)
		if (sextet((unsigned char)in[i], url) < 0)
			return bc_error_set(err, BC_ERR_INVALID, "invalid %s: bad character at offset %zu",
					    name, i);
	if (d % 4 == 1)
		return bc_error_set(err, BC_ERR_INVALID, "invalid %s: bad length %zu", name, n);
	if (pad && (d + pad) % 4 != 0)
		return bc_error_set(err, BC_ERR_INVALID, "invalid %s: bad padding", name);
	/* The unused low bits of the last character must be zero (canonical encoding). */
	if (d % 4 != 0) {
		int last = sextet((unsigned char)in[d - 1], url);
		int unused = d % 4 == 2 ? 0x0f : 0x03;
		if (last & unused)
			return bc_error_set(err, BC_ERR_INVALID, "invalid %s: non-canonical trailing bits",
					    name);
	}
	*ndata = d;
	return BC_OK;
}

static int decode(const char *in, size_t n, bool url, uint8_t **out, size_t *outlen, struct bc_error *err)
{
	size_t d = 0;
	int rc = validate(in, n, url, &d, err);
	if (rc)
		return rc;
	size_t total = d / 4 * 3 + (d % 4 ? d % 4 - 1 : 0);
	uint8_t *res = malloc(total + 3 + 1); /* +3: the last block decodes padding as zeros */
	if (!res)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory decoding base64");
	unsigned char chunk[DEC_CHUNK];
	size_t w = 0;
	for (size_t i = 0; i < d; i += DEC_CHUNK) {
		size_t c = d - i < DEC_CHUNK ? d - i : DEC_CHUNK;
		for (size_t k = 0; k < c; k++) {
			unsigned char ch = (unsigned char)in[i + k];
			chunk[k] = url && ch == '-' ? '+' : url && ch == '_' ? '/' : ch;
		}
		size_t cl = c;
		while (cl % 4)
			chunk[cl++] = '='; /* c < DEC_CHUNK here, since DEC_CHUNK is a multiple of 4 */
		int r = EVP_DecodeBlock(res + w, chunk, (int)cl);
		if (r < 0) {
			free(res);
			return bc_error_set(err, BC_ERR_INVALID, "invalid %s", url ? "base64url" : "base64");
		}
		w += (size_t)r;
	}
	res[total] = '\0';
	*out = res;
	*outlen = total;
	return BC_OK;
}

int bc_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *outlen, struct bc_error *err)
{
	return decode(in, n, true, out, outlen, err);
}

int bc_b64_decode(const char *in, size_t n, uint8_t **out, size_t *outlen, struct bc_error *err)
{
	return decode(in, n, false, out, outlen, err);
}
