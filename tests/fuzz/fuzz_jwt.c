/* Fuzzes JWT compact parsing and verification: bc_jwt_parse, then bc_jwt_verify against a fixed
 * RSA and a fixed EC P-256 key (found by kid in a JWKS, as the directory does), with and without a
 * pinned alg, then bc_jwt_check_times. The corpus holds tokens these keys really signed, so the
 * fuzzer starts from inputs that reach the signature check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jose.h"

static const char keys_json[] = "{\"keys\":["
	"{\"kid\":\"fuzz-rsa\",\"kty\":\"RSA\",\"n\":\"yG2BgH_xF3yuPLhcR9_Oyp7ZoOpKojDYwPvyq5HrSyC_rwV-rOKGAZW"
	"Gyw5Fj-NBQLEPo5tvH-9CNmsC_U6lOP5qozDis_Lw4SKIJYNQOG-7ywcUeAh26rqndk_t2AKxg3fCowZvjGPhL-xYg"
	"nrr7iQZHdQ0PC3_49m19wSzwxSysvGMmiHcVlY0oAC-TMm4116sYnIYoYXff4S2niG11kJetlijVCyh2hZOMdvUIEw"
	"0KjgI-5K-QSn6tBv09d4ngBklQJl1jWlevvK7ogLEtjPL3F3v22Jre0J-QvGk8soNertJxFlvDb4Zvj4HJPD1R7WKn"
	"O-GCMBRigwICFhu4Q\",\"e\":\"AQAB\"}"
	","
	"{\"kid\":\"fuzz-ec\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"OMtK9ogm5vq92ocnaWAo9nJRqR3Qareol-cv20vXCtI"
	"\",\"y\":\"3sl5k_5QVMR1TytPdbcnf8K_LwIVjEWSfqejRWqEpVg\"}"
	"]}";

static struct bc_jwks *keys;

static void init(void)
{
	if (keys)
		return;
	if (bc_jwks_parse(&keys, keys_json, sizeof(keys_json) - 1, NULL) != BC_OK || bc_jwks_count(keys) != 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init();
	struct bc_jwt jwt;
	struct bc_error err;
	bc_jwt_init(&jwt);
	if (bc_jwt_parse(&jwt, (const char *)data, size, &err) == BC_OK) {
		const struct bc_jwk *k = bc_jwks_find(keys, jwt.kid);
		for (size_t i = 0; i < bc_jwks_count(keys); i++) {
			int rc = bc_jwt_verify(&jwt, bc_jwks_get(keys, i), NULL, &err);
			/* an accepted signature implies an alg allowed for that key */
			if (rc == BC_OK && !bc_jwk_alg_allowed(bc_jwks_get(keys, i), jwt.alg))
				abort();
		}
		if (k && bc_jwt_verify(&jwt, k, bc_jwk_default_alg(k), &err) == BC_OK &&
		    strcmp(jwt.alg, bc_jwk_default_alg(k)) != 0)
			abort();
		if (bc_jwt_check_times(&jwt, 1750000000, 300, &err) == BC_OK && !jwt.claims)
			abort();
	}
	bc_jwt_release(&jwt);
	return 0;
}
