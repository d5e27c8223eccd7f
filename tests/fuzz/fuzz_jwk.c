/* Fuzzes JWK and JWKS import: bc_jwk_from_json and bc_jwks_parse on the same bytes; whatever
 * imports is exported again (JSON with and without private members, PEM, RFC 7638 thumbprint)
 * and must re-import to the same thumbprint. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jose.h"
#include "core/json.h"

static void exercise(const struct bc_jwk *k)
{
	char tp[44], tp2[44];
	if (bc_jwk_thumbprint(k, tp, NULL) != BC_OK)
		abort();
	json_t *pub = bc_jwk_to_jansson(k, false);
	json_t *priv = bc_jwk_to_jansson(k, true);
	if (!pub || !priv)
		abort();
	char *s = bc_json_dumps(pub);
	struct bc_jwk *again = NULL;
	if (!s || bc_jwk_from_json(&again, s, strlen(s), NULL) != BC_OK ||
	    bc_jwk_thumbprint(again, tp2, NULL) != BC_OK || strcmp(tp, tp2) != 0 || bc_jwk_is_private(again))
		abort();
	bc_jwk_free(again);
	free(s);
	struct bc_buf pem;
	bc_buf_init(&pem, 0);
	if (bc_jwk_to_pem(k, false, &pem, NULL) != BC_OK)
		abort();
	bc_buf_release(&pem);
	(void)bc_jwk_default_alg(k);
	json_decref(pub);
	json_decref(priv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bc_error err;
	struct bc_jwk *k = NULL;
	if (bc_jwk_from_json(&k, (const char *)data, size, &err) == BC_OK) {
		exercise(k);
		bc_jwk_free(k);
	}
	struct bc_jwks *set = NULL;
	if (bc_jwks_parse(&set, (const char *)data, size, &err) == BC_OK) {
		for (size_t i = 0; i < bc_jwks_count(set); i++)
			exercise(bc_jwks_get(set, i));
		const struct bc_jwk *first = bc_jwks_get(set, 0);
		if (first && bc_jwk_kid(first) && bc_jwks_find(set, bc_jwk_kid(first)) != first)
			abort();
		json_t *j = bc_jwks_to_jansson(set);
		if (!j)
			abort();
		json_decref(j);
		bc_jwks_free(set);
	}
	return 0;
}
