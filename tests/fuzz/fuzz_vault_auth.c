/* Fuzzes the vault's Authorization header parsing (the scheme, the token's shape and bounds)
 * and what follows it without a directory: bc_jwt_parse of the token it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jose.h"
#include "vault/vault_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *hdr = malloc(size + 1);
	if (!hdr)
		return 0;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	const char *tok = NULL;
	size_t len = 0;
	if (vault_parse_bearer(hdr, &tok, &len) == BC_OK) {
		if (tok < hdr || tok + len > hdr + size || len == 0 || len > BC_LIMIT_JWT_BYTES)
			abort();
		struct bc_jwt jwt;
		struct bc_error err;
		bc_jwt_init(&jwt);
		if (bc_jwt_parse(&jwt, tok, len, &err) == BC_OK && !jwt.alg)
			abort();
		bc_jwt_release(&jwt);
	}
	free(hdr);
	return 0;
}
