/* base64 and base64url (no padding) over OpenSSL's EVP encoders. */
#ifndef BC_B64_H
#define BC_B64_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

int bc_b64url_encode(const void *in, size_t n, struct bc_buf *out) BC_MUST_CHECK; /* appends */
/* Returns a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *bc_b64url_encode_str(const void *in, size_t n);
/* Decodes base64url (padding tolerated). *out is malloc'd (NUL-terminated for convenience). */
int bc_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *outlen, struct bc_error *err) BC_MUST_CHECK;
int bc_b64_encode(const void *in, size_t n, struct bc_buf *out) BC_MUST_CHECK;
int bc_b64_decode(const char *in, size_t n, uint8_t **out, size_t *outlen, struct bc_error *err) BC_MUST_CHECK;

#endif
