/* Envelope encryption at rest: a 256-bit master key kept in a file outside the database
 * (mode 0600, created on first start), AES-256-GCM sealing of small blobs with associated
 * data binding each blob to its place (a table and a row id), so a sealed value copied to
 * another row does not open. */
#ifndef BC_SEAL_H
#define BC_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

struct bc_seal; /* opaque: holds the master key; wiped on free */

int bc_seal_load_or_create(const char *key_file, struct bc_seal **out, struct bc_error *err) BC_MUST_CHECK;
/* Test helper: a sealer from 32 raw key bytes. */
int bc_seal_from_key(const uint8_t key[32], struct bc_seal **out, struct bc_error *err) BC_MUST_CHECK;
void bc_seal_free(struct bc_seal *s);
/* Seals plaintext into text "v1.<b64url nonce>.<b64url ciphertext+tag>" appended to out. */
int bc_seal(const struct bc_seal *s, const char *aad, const void *plain, size_t n, struct bc_buf *out,
	    struct bc_error *err) BC_MUST_CHECK;
/* Opens what bc_seal made with the same aad; the plaintext (NUL-terminated) is appended to out.
 * BC_ERR_CRYPTO when the blob was tampered with, moved or sealed under another key. Callers
 * holding secrets in out should bc_buf_wipe it. */
int bc_unseal(const struct bc_seal *s, const char *aad, const char *sealed, size_t n, struct bc_buf *out,
	      struct bc_error *err) BC_MUST_CHECK;

#endif
