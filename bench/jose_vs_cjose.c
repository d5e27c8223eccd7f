/* RS256 sign and verify per second, one thread: badge's JOSE layer (core/jose.h, one EVP_PKEY
 * per key, reused) next to cjose 0.6.2 (the library BRIEF.md chose) with the same key, and
 * `openssl speed rsa2048` as the ceiling when run beside it. Why jose.c does not wrap cjose:
 * see docs/benchmarks.md "JOSE layer".
 * usage: bench_jose [SECONDS] */
#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jose.h"
#include "core/json.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct bc_error err;
	struct bc_jwk *k = NULL;
	if (bc_jwk_generate(&k, "RSA", 2048, &err))
		return 1;
	json_t *pj = bc_jwk_to_jansson(k, true);
	char *jtext = json_dumps(pj, JSON_COMPACT);
	cjose_err cerr;
	cjose_jwk_t *cj = cjose_jwk_import(jtext, strlen(jtext), &cerr);
	if (!cj) {
		fprintf(stderr, "cjose import: %s\n", cerr.message);
		return 1;
	}
	const char *payload = "{\"aud\":\"https://vault.badge.internal\",\"iss\":\"https://login.badge.internal/t/\","
			      "\"oid\":\"00000000-0000-4000-8000-000000000000\",\"exp\":1900000000}";
	json_t *hdr = json_pack("{s:s}", "typ", "JWT");
	char *compact = NULL;
	long n;
	double t0, t;

	/* badge sign */
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++) {
		struct bc_buf out = {0};
		if (bc_jws_sign(k, "RS256", hdr, payload, strlen(payload), &out, &err))
			return 1;
		if (!compact)
			compact = bc_buf_detach(&out, NULL);
		bc_buf_release(&out);
	}
	printf("badge  RS256 sign:   %8.0f/s\n", n / (t - t0));

	/* cjose sign */
	cjose_header_t *ch = cjose_header_new(&cerr);
	cjose_header_set(ch, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &cerr);
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++) {
		cjose_jws_t *jws = cjose_jws_sign(cj, ch, (const uint8_t *)payload, strlen(payload), &cerr);
		const char *ser = NULL;
		if (!jws || !cjose_jws_export(jws, &ser, &cerr))
			return 1;
		cjose_jws_release(jws);
	}
	printf("cjose  RS256 sign:   %8.0f/s\n", n / (t - t0));

	/* badge verify (parse + verify, as the directory's verifier does on a cache miss) */
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++) {
		struct bc_jwt jwt;
		bc_jwt_init(&jwt);
		if (bc_jwt_parse(&jwt, compact, strlen(compact), &err) || bc_jwt_verify(&jwt, k, "RS256", &err))
			return 1;
		bc_jwt_release(&jwt);
	}
	printf("badge  RS256 verify: %8.0f/s\n", n / (t - t0));

	/* cjose verify */
	for (n = 0, t0 = now_s(); (t = now_s()) - t0 < secs; n++) {
		cjose_jws_t *jws = cjose_jws_import(compact, strlen(compact), &cerr);
		if (!jws || !cjose_jws_verify(jws, cj, &cerr))
			return 1;
		cjose_jws_release(jws);
	}
	printf("cjose  RS256 verify: %8.0f/s\n", n / (t - t0));
	cjose_header_release(ch);
	cjose_jwk_release(cj);
	free(jtext);
	free(compact);
	json_decref(pj);
	json_decref(hdr);
	bc_jwk_free(k);
	return 0;
}
