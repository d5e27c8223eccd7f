/* Small shared helpers: time (with an injectable clock), random ids, constant-time compare. */
#ifndef BC_UTIL_H
#define BC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/error.h"

/* Wall clock in seconds since the epoch. Tests inject their own clock. */
typedef int64_t (*bc_clock_fn)(void *ctx);
int64_t bc_now(void);
int64_t bc_now_ms(void);                     /* monotonic milliseconds, for durations */
void bc_clock_set(bc_clock_fn fn, void *ctx); /* NULL restores the real clock */

/* Cryptographically random bytes (OpenSSL RAND_bytes). */
int bc_random(void *out, size_t n) BC_MUST_CHECK;
/* A random RFC 4122 version-4 UUID, lower case, 36 chars + NUL. */
int bc_uuid4(char out[37]) BC_MUST_CHECK;
/* 32 lower-case hex chars from 16 random bytes (Key Vault versions). */
int bc_random_hex32(char out[33]) BC_MUST_CHECK;
bool bc_is_uuid(const char *s);
void bc_hex(const uint8_t *in, size_t n, char *out /* 2n+1 */);

/* Constant-time equality of two byte strings of possibly different length. */
bool bc_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Wipes memory the compiler may not elide. */
void bc_wipe(void *p, size_t n);

/* Copies src into dst[n] (n > 0), truncating, always NUL-terminated; returns strlen(src)
 * (a return >= n means it was cut). NULL src copies "". The snprintf("%s") of hot paths. */
size_t bc_strlcpy(char *dst, const char *src, size_t n);

/* Case-insensitive ASCII compare helpers. */
bool bc_streq_ci(const char *a, const char *b);
bool bc_str_endswith_ci(const char *s, const char *suffix);

/* Writes a file atomically (temp file in the same dir, fsync, rename, fsync dir). */
int bc_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct bc_error *err) BC_MUST_CHECK;
/* Reads a whole file, at most max bytes (BC_ERR_LIMIT beyond). *out is NUL-terminated; caller frees. */
int bc_read_file(const char *path, size_t max, char **out, size_t *len, struct bc_error *err) BC_MUST_CHECK;
/* mkdir -p with mode for the created components. */
int bc_mkdir_p(const char *path, int mode, struct bc_error *err) BC_MUST_CHECK;

#endif
