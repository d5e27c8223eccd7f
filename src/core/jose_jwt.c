/* Compact JWT parsing (untrusted: bounded by limits.h, fuzzed by fuzz_jwt) and the time claims'
 * checks. Verification of the signature is bc_jwt_verify in jose_jws.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/jose_int.h"
#include "core/json.h"
#include "core/limits.h"

/* ---- JWT parsing ----------------------------------------------------------------------- */

void bc_jwt_init(struct bc_jwt *jwt)
{
	memset(jwt, 0, sizeof(*jwt));
}

void bc_jwt_release(struct bc_jwt *jwt)
{
	json_decref(jwt->header);
	json_decref(jwt->claims);
	free(jwt->signing_input);
	free(jwt->sig);
	bc_jwt_init(jwt);
}

static bool b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int parse_header(struct bc_jwt *t, const char *seg, size_t n, struct bc_error *err)
{
	if (n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "jwt header is empty");
	if (n / 4 * 3 > BC_LIMIT_JWT_HEADER_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "jwt header too large (limit %d bytes)", BC_LIMIT_JWT_HEADER_BYTES);
	uint8_t *raw = NULL;
	size_t rlen = 0;
	int rc = bc_b64url_decode(seg, n, &raw, &rlen, err);
	if (rc) {
		bc_error_wrap(err, "bad jwt header");
		return rc;
	}
	rc = bc_json_parse((const char *)raw, rlen, BC_LIMIT_JWT_HEADER_BYTES, &t->header, err);
	free(raw);
	if (rc) {
		bc_error_wrap(err, "bad jwt header");
		return rc;
	}
	if (!json_is_object(t->header))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header is not a json object");
	const json_t *alg = json_object_get(t->header, "alg");
	if (!json_is_string(alg))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header has no string alg");
	t->alg = json_string_value(alg);
	const json_t *kid = json_object_get(t->header, "kid");
	if (kid) {
		/* A lookup string for the caller's own key set, nothing more: bounded, printable. */
		if (!json_is_string(kid) || !bc_jose_kid_ok(json_string_value(kid), json_string_length(kid)))
			return bc_error_set(err, BC_ERR_INVALID, "jwt header kid is not an acceptable string");
		t->kid = json_string_value(kid);
	}
	/* RFC 7515 4.1.11: we understand no extension, so any crit makes the token unusable. */
	if (json_object_get(t->header, "crit"))
		return bc_error_set(err, BC_ERR_INVALID, "jwt header has unsupported crit extensions");
	return BC_OK;
}

int bc_jwt_parse(struct bc_jwt *jwt, const char *compact, size_t len, struct bc_error *err)
{
	if (!compact)
		return bc_error_set(err, BC_ERR_INVALID, "no jwt");
	if (len > BC_LIMIT_JWT_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "jwt too long (%zu bytes, limit %d)", len, BC_LIMIT_JWT_BYTES);
	size_t dots[2], ndots = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)compact[i];
		if (c == '.') {
			if (ndots == 2)
				return bc_error_set(err, BC_ERR_INVALID, "jwt has more than 3 segments");
			dots[ndots++] = i;
		} else if (!b64url_char(c)) {
			return bc_error_set(err, BC_ERR_INVALID, "jwt has a non-base64url character at offset %zu", i);
		}
	}
	if (ndots != 2)
		return bc_error_set(err, BC_ERR_INVALID, "jwt has %zu segments, expected 3", ndots + 1);

	struct bc_jwt t;
	bc_jwt_init(&t);
	uint8_t *payload = NULL;
	size_t plen = 0;
	int rc = parse_header(&t, compact, dots[0], err);
	if (rc)
		goto fail;
	if ((rc = bc_b64url_decode(compact + dots[0] + 1, dots[1] - dots[0] - 1, &payload, &plen, err))) {
		bc_error_wrap(err, "bad jwt payload");
		goto fail;
	}
	/* Claims are optional here (a JWS may sign any bytes); verifiers require them. */
	if (plen > 0 && bc_json_parse((const char *)payload, plen, BC_LIMIT_JWT_BYTES, &t.claims, NULL) == BC_OK &&
	    !json_is_object(t.claims)) {
		json_decref(t.claims);
		t.claims = NULL;
	}
	if ((rc = bc_b64url_decode(compact + dots[1] + 1, len - dots[1] - 1, &t.sig, &t.sig_len, err))) {
		bc_error_wrap(err, "bad jwt signature");
		goto fail;
	}
	t.signing_input_len = dots[1];
	if (!(t.signing_input = malloc(dots[1] + 1))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory parsing a jwt");
		goto fail;
	}
	memcpy(t.signing_input, compact, dots[1]);
	t.signing_input[dots[1]] = '\0';
	free(payload);
	bc_jwt_release(jwt);
	*jwt = t;
	return BC_OK;
fail:
	free(payload);
	bc_jwt_release(&t);
	return rc;
}

/* ---- claims ---------------------------------------------------------------------------- */

/* A NumericDate claim; absent: *present = false. */
static int numeric_date(const json_t *claims, const char *name, int64_t *out, bool *present, struct bc_error *err)
{
	const json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (!v)
		return BC_OK;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return BC_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d > -9.2e18 && d < 9.2e18) { /* inside int64, so the conversion is defined */
			*out = (int64_t)d;
			return BC_OK;
		}
	}
	return bc_error_set(err, BC_ERR_INVALID, "jwt claim %s is not a number of seconds", name);
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int bc_jwt_check_times(const struct bc_jwt *jwt, int64_t now, int64_t skew, struct bc_error *err)
{
	if (!jwt || !json_is_object(jwt->claims))
		return bc_error_set(err, BC_ERR_INVALID, "jwt has no claims");
	if (skew < 0)
		skew = 0;
	int64_t exp = 0, nbf = 0, iat = 0;
	bool has_exp, has_nbf, has_iat;
	int rc;
	if ((rc = numeric_date(jwt->claims, "exp", &exp, &has_exp, err)) ||
	    (rc = numeric_date(jwt->claims, "nbf", &nbf, &has_nbf, err)) ||
	    (rc = numeric_date(jwt->claims, "iat", &iat, &has_iat, err)))
		return rc;
	if (!has_exp)
		return bc_error_set(err, BC_ERR_INVALID, "jwt has no exp claim");
	if (sat_add(exp, skew) <= now)
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt expired");
	if (has_nbf && nbf > sat_add(now, skew))
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt not yet valid (nbf)");
	if (has_iat && iat > sat_add(now, skew))
		return bc_error_set(err, BC_ERR_UNAUTHENTICATED, "jwt issued in the future (iat)");
	return BC_OK;
}
