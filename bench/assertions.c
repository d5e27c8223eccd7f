/* Writes N client assertions (RFC 7523), one per line, each with its own jti, signed by a PEM
 * private key for a registered certificate: the token benchmark replays them with wrk, so the
 * client's signing cost is paid before the measured run, not during it.
 * usage: bench_assertions KEY.pem CERT.pem CLIENT_ID AUDIENCE N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/pki.h"
#include "core/util.h"

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s KEY.pem CERT.pem CLIENT_ID AUDIENCE N\n", argv[0]);
		return 2;
	}
	struct bc_error err;
	char *kpem = NULL, *cpem = NULL;
	size_t klen, clen;
	struct bc_jwk *key = NULL;
	X509 *cert = NULL;
	char x5t[28], x5t256[44];
	if (bc_read_file(argv[1], 65536, &kpem, &klen, &err) || bc_read_file(argv[2], 65536, &cpem, &clen, &err) ||
	    bc_jwk_from_pem(&key, kpem, klen, &err) || bc_x509_parse_pem(cpem, clen, &cert, &err) ||
	    bc_x509_thumbprints(cert, x5t, x5t256, &err)) {
		fprintf(stderr, "bench_assertions: %s\n", err.msg);
		return 1;
	}
	long n = strtol(argv[5], NULL, 10);
	int64_t now = bc_now();
	json_t *hdr = json_pack("{s:s, s:s}", "typ", "JWT", "x5t#S256", x5t256);
	for (long i = 0; i < n; i++) {
		char jti[37];
		if (bc_uuid4(jti))
			return 1;
		json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", argv[3], "sub", argv[3], "aud", argv[4],
				      "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)(now + 3000), "jti",
				      jti);
		char *payload = json_dumps(c, JSON_COMPACT);
		struct bc_buf out = {0};
		if (bc_jws_sign(key, "RS256", hdr, payload, strlen(payload), &out, &err)) {
			fprintf(stderr, "bench_assertions: %s\n", err.msg);
			return 1;
		}
		puts(out.data);
		bc_buf_release(&out);
		free(payload);
		json_decref(c);
	}
	json_decref(hdr);
	X509_free(cert);
	bc_jwk_free(key);
	free(kpem);
	free(cpem);
	return 0;
}
