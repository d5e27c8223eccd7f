/* Parsing of everything a vault client controls: names, versions, api-versions, the
 * Authorization header and the JSON bodies. No I/O, no store: fuzzed by
 * tests/fuzz/fuzz_vault_body.c and fuzz_vault_auth.c. */
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/util.h"
#include "vault/vault_int.h"

static int fail(struct vault_fail *f, int http, const char *code, const char *fmt, ...) BC_PRINTF(4, 5);
static int fail(struct vault_fail *f, int http, const char *code, const char *fmt, ...)
{
	va_list ap;
	f->http = http;
	f->code = code;
	f->inner = NULL;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	return BC_ERR_INVALID;
}

static bool name_chars(const char *s, size_t min, size_t max)
{
	size_t n = 0;
	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= max)
			return false;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
			return false;
	}
	return n >= min;
}

bool vault_name_valid(const char *s)
{
	return name_chars(s, 1, BC_LIMIT_NAME);
}

bool vault_vault_name_valid(const char *s)
{
	return name_chars(s, 3, 24);
}

bool vault_version_valid(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++) {
		char c = s[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return n == 32;
}

bool vault_api_version_known(const char *s)
{
	/* What the Key Vault clients of the last years send (JS, Python, .NET, Java, Go, az). */
	static const char *const known[] = {
		"2015-06-01",    "2016-10-01",    "7.0",
		"7.1",           "7.2",           "7.3",
		"7.4",           "7.5",           "7.6",
		"7.0-preview",   "7.1-preview",   "7.2-preview",
		"7.3-preview",   "7.4-preview.1", "7.5-preview.1",
		"7.6-preview.1", "7.6-preview.2", "2025-06-01-preview",
		"2025-07-01",
	};
	if (!s)
		return false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i]) == 0)
			return true;
	return false;
}

int vault_parse_bearer(const char *hdr, const char **tok, size_t *len)
{
	if (!hdr)
		return BC_ERR_UNAUTHENTICATED;
	while (*hdr == ' ' || *hdr == '\t')
		hdr++;
	if (strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\t'))
		return BC_ERR_UNAUTHENTICATED;
	const char *p = hdr + 6;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return BC_ERR_UNAUTHENTICATED;
	if (n > BC_LIMIT_JWT_BYTES)
		return BC_ERR_INVALID;
	/* A compact JWS: base64url and exactly two dots. This runs on every request, over a
	 * kilobyte or more: sixteen bytes at a time where SSE2 is there (every x86-64). */
	size_t dots = 0, i = 0;
	unsigned bad = 0;
	const unsigned char *u = (const unsigned char *)p;
#ifdef __SSE2__
	const __m128i d0 = _mm_set1_epi8('0' - 1), d9 = _mm_set1_epi8('9' + 1);
	const __m128i la = _mm_set1_epi8('a' - 1), lz = _mm_set1_epi8('z' + 1), low = _mm_set1_epi8(0x20);
	const __m128i m0 = _mm_set1_epi8('-' - 1), m1 = _mm_set1_epi8('.' + 1);
	const __m128i us = _mm_set1_epi8('_'), dt = _mm_set1_epi8('.');
	for (; n - i >= 16; i += 16) {
		/* signed compares: bytes past 0x7f are negative and fall outside every range */
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		__m128i l = _mm_or_si128(x, low);
		__m128i ok = _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(x, d0), _mm_cmplt_epi8(x, d9)),
					  _mm_and_si128(_mm_cmpgt_epi8(l, la), _mm_cmplt_epi8(l, lz)));
		ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(x, m0), _mm_cmplt_epi8(x, m1)));
		ok = _mm_or_si128(ok, _mm_cmpeq_epi8(x, us));
		bad |= (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
		dots += (size_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, dt)));
	}
#endif
	for (; i < n; i++) {
		unsigned c = u[i];
		unsigned ok = ((c - '0') < 10u) | (((c | 0x20) - 'a') < 26u) | (c == '-') | (c == '_') | (c == '.');
		bad |= !ok;
		dots += c == '.';
	}
	if (bad || dots != 2)
		return BC_ERR_INVALID;
	*tok = p;
	*len = n;
	return BC_OK;
}

static int parse_doc(const char *body, size_t len, size_t max, json_t **out, struct vault_fail *f)
{
	struct bc_error err = {0};
	if (len == 0)
		return fail(f, 400, "BadParameter", "The request body is missing");
	if (bc_json_parse(body, len, max, out, &err) != BC_OK)
		return fail(f, 400, "BadParameter", "The request body is not valid JSON");
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return fail(f, 400, "BadParameter", "The request body must be a JSON object");
	}
	return BC_OK;
}

/* A time attribute: an integer (JS sends negative values past 2038 through its int32
 * truncation; they are stored as given) or null. */
static int parse_time(const json_t *a, const char *key, bool *has, int64_t *v, struct vault_fail *f)
{
	json_t *t = json_object_get(a, key);
	if (!t || json_is_null(t))
		return BC_OK;
	if (json_is_integer(t)) {
		*v = json_integer_value(t);
	} else if (json_is_real(t)) {
		double d = json_real_value(t);
		if (!(d > -1e15 && d < 1e15))
			return fail(f, 400, "BadParameter", "Property attributes.%s has invalid value", key);
		*v = (int64_t)d;
	} else {
		return fail(f, 400, "BadParameter", "Property attributes.%s has invalid value", key);
	}
	*has = true;
	return BC_OK;
}

static int parse_attrs(const json_t *doc, struct vault_attrs *a, struct vault_fail *f)
{
	json_t *at = json_object_get(doc, "attributes");
	memset(a, 0, sizeof(*a));
	if (!at || json_is_null(at))
		return BC_OK;
	if (!json_is_object(at))
		return fail(f, 400, "BadParameter", "Property attributes has invalid value");
	json_t *en = json_object_get(at, "enabled");
	if (en && !json_is_null(en)) {
		if (!json_is_boolean(en))
			return fail(f, 400, "BadParameter", "Property attributes.enabled has invalid value");
		a->has_enabled = true;
		a->enabled = json_is_true(en);
	}
	if (parse_time(at, "nbf", &a->has_nbf, &a->nbf, f) != BC_OK ||
	    parse_time(at, "exp", &a->has_exp, &a->exp, f) != BC_OK)
		return BC_ERR_INVALID;
	json_t *exportable = json_object_get(at, "exportable");
	if (exportable && json_is_true(exportable))
		return fail(f, 400, "BadParameter",
			    "Exportable keys require a release policy, which this vault does not support");
	return BC_OK;
}

static int parse_tags(const json_t *doc, json_t **tags, struct vault_fail *f)
{
	json_t *t = json_object_get(doc, "tags");
	*tags = NULL;
	if (!t || json_is_null(t))
		return BC_OK;
	if (!json_is_object(t))
		return fail(f, 400, "BadParameter", "Property tags has invalid value");
	if (json_object_size(t) > BC_LIMIT_TAGS)
		return fail(f, 400, "BadParameter", "Too many tags: at most %d are allowed", BC_LIMIT_TAGS);
	const char *k;
	json_t *v;
	json_object_foreach(t, k, v)
	{
		if (!json_is_string(v))
			return fail(f, 400, "BadParameter", "Tag values must be strings");
		if (k[0] == '\0' || strlen(k) > VAULT_LIMIT_TAG_NAME ||
		    json_string_length(v) > VAULT_LIMIT_TAG_VALUE)
			return fail(f, 400, "BadParameter",
				    "Tag names are limited to %d characters and values to %d",
				    VAULT_LIMIT_TAG_NAME, VAULT_LIMIT_TAG_VALUE);
	}
	*tags = t;
	return BC_OK;
}

void vault_secret_input_release(struct vault_secret_input *in)
{
	json_decref(in->doc);
	memset(in, 0, sizeof(*in));
}

int vault_parse_secret_body(const char *body, size_t len, bool require_value, struct vault_secret_input *out,
			    struct vault_fail *f)
{
	struct vault_secret_input in = {0};
	if (parse_doc(body, len, VAULT_LIMIT_SECRET_BODY, &in.doc, f) != BC_OK)
		return BC_ERR_INVALID;
	json_t *val = json_object_get(in.doc, "value");
	if (require_value) {
		if (!val || !json_is_string(val)) {
			fail(f, 400, "BadParameter", "Property value is required and must be a string");
			goto bad;
		}
		in.value = json_string_value(val);
		in.value_len = json_string_length(val);
		if (in.value_len > BC_LIMIT_SECRET_VALUE) {
			fail(f, 400, "BadParameter", "Secret value is too large: the limit is %d bytes",
			     BC_LIMIT_SECRET_VALUE);
			goto bad;
		}
		if (memchr(in.value, '\0', in.value_len)) {
			fail(f, 400, "BadParameter", "Property value has invalid value");
			goto bad;
		}
	}
	json_t *ct = json_object_get(in.doc, "contentType");
	if (ct && !json_is_null(ct)) {
		if (!json_is_string(ct) || json_string_length(ct) > VAULT_LIMIT_CONTENT_TYPE ||
		    memchr(json_string_value(ct), '\0', json_string_length(ct))) {
			fail(f, 400, "BadParameter", "Property contentType has invalid value");
			goto bad;
		}
		in.content_type = json_string_value(ct);
		in.has_content_type = true;
	}
	if (parse_tags(in.doc, &in.tags, f) != BC_OK || parse_attrs(in.doc, &in.attrs, f) != BC_OK)
		goto bad;
	*out = in;
	return BC_OK;
bad:
	vault_secret_input_release(&in);
	return BC_ERR_INVALID;
}

static const char *const op_names[] = {"encrypt", "decrypt",   "sign",   "verify",
				       "wrapKey", "unwrapKey", "import", "export"};

const char *vault_key_op_name(unsigned op)
{
	for (unsigned i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op == (1u << i))
			return op_names[i];
	return NULL;
}

int vault_parse_key_ops(const json_t *arr, unsigned *ops)
{
	size_t i;
	json_t *e;
	unsigned bits = 0;
	if (!json_is_array(arr))
		return BC_ERR_INVALID;
	json_array_foreach(arr, i, e)
	{
		const char *s = json_string_value(e);
		unsigned bit = 0;
		if (!s)
			return BC_ERR_INVALID;
		for (unsigned j = 0; j < sizeof(op_names) / sizeof(op_names[0]); j++)
			if (strcmp(s, op_names[j]) == 0)
				bit = 1u << j;
		/* Key Vault accepts the lower-case spellings and answers camelCase. */
		if (!bit && strcmp(s, "wrapkey") == 0)
			bit = VAULT_OP_WRAP;
		if (!bit && strcmp(s, "unwrapkey") == 0)
			bit = VAULT_OP_UNWRAP;
		if (!bit)
			return BC_ERR_INVALID;
		bits |= bit;
	}
	*ops = bits;
	return BC_OK;
}

json_t *vault_key_ops_json(unsigned ops)
{
	json_t *a = json_array();
	for (unsigned i = 0; a && i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (ops & (1u << i))
			json_array_append_new(a, json_string(op_names[i]));
	return a;
}

void vault_key_input_release(struct vault_key_input *in)
{
	json_decref(in->doc);
	memset(in, 0, sizeof(*in));
}

static int parse_kty(const char *s, struct vault_key_input *in)
{
	if (!s)
		return BC_ERR_INVALID;
	if (strcmp(s, "RSA") == 0 || strcmp(s, "RSA-HSM") == 0) {
		strcpy(in->kty, "RSA");
		in->hsm = in->hsm || strcmp(s, "RSA-HSM") == 0;
		return BC_OK;
	}
	if (strcmp(s, "EC") == 0 || strcmp(s, "EC-HSM") == 0) {
		strcpy(in->kty, "EC");
		in->hsm = in->hsm || strcmp(s, "EC-HSM") == 0;
		return BC_OK;
	}
	return BC_ERR_INVALID;
}

static int crv_bits(const char *crv)
{
	if (!crv)
		return 0;
	if (strcmp(crv, "P-256") == 0)
		return 256;
	if (strcmp(crv, "P-384") == 0)
		return 384;
	if (strcmp(crv, "P-521") == 0)
		return 521;
	return -1;
}

/* key_ops, tags, attributes: shared by create, import and update. */
static int parse_key_common(const json_t *doc, const json_t *ops_src, struct vault_key_input *in,
			    struct vault_fail *f)
{
	json_t *ops = json_object_get(ops_src, "key_ops");
	if (ops && !json_is_null(ops)) {
		if (vault_parse_key_ops(ops, &in->ops) != BC_OK)
			return fail(f, 400, "BadParameter", "Property key_ops has invalid value");
		in->has_ops = true;
	}
	if (parse_tags(doc, &in->tags, f) != BC_OK || parse_attrs(doc, &in->attrs, f) != BC_OK)
		return BC_ERR_INVALID;
	if (json_object_get(doc, "release_policy") && !json_is_null(json_object_get(doc, "release_policy")))
		return fail(f, 400, "BadParameter", "Key release policies are not supported by this vault");
	return BC_OK;
}

/* RSA keys may carry every operation but import/export; EC keys sign and verify only. */
static int check_ops_for_kty(struct vault_key_input *in, struct vault_fail *f)
{
	unsigned allowed = strcmp(in->kty, "EC") == 0 ? (VAULT_OP_SIGN | VAULT_OP_VERIFY)
						      : (VAULT_OP_ENCRYPT | VAULT_OP_DECRYPT | VAULT_OP_SIGN |
							 VAULT_OP_VERIFY | VAULT_OP_WRAP | VAULT_OP_UNWRAP);
	if (in->has_ops && (in->ops & ~allowed))
		return fail(f, 400, "BadParameter",
			    "Property key_ops has an operation not supported by key type %s", in->kty);
	if (!in->has_ops)
		in->ops = allowed;
	return BC_OK;
}

int vault_parse_key_create(const char *body, size_t len, struct vault_key_input *out, struct vault_fail *f)
{
	struct vault_key_input in = {0};
	if (parse_doc(body, len, VAULT_LIMIT_BODY, &in.doc, f) != BC_OK)
		return BC_ERR_INVALID;
	if (parse_kty(bc_json_str(in.doc, "kty"), &in) != BC_OK) {
		fail(f, 400, "BadParameter",
		     "Property kty has invalid value: supported are RSA, RSA-HSM, EC, EC-HSM");
		goto bad;
	}
	json_t *ks = json_object_get(in.doc, "key_size");
	json_t *crv = json_object_get(in.doc, "crv");
	if (strcmp(in.kty, "RSA") == 0) {
		in.bits = 2048;
		if (ks && !json_is_null(ks)) {
			if (!json_is_integer(ks) ||
			    (json_integer_value(ks) != 2048 && json_integer_value(ks) != 3072 &&
			     json_integer_value(ks) != 4096)) {
				fail(f, 400, "BadParameter",
				     "Property key_size has invalid value: supported are 2048, 3072, 4096");
				goto bad;
			}
			in.bits = (int)json_integer_value(ks);
		}
		json_t *pe = json_object_get(in.doc, "public_exponent");
		if (pe && !json_is_null(pe) && (!json_is_integer(pe) || json_integer_value(pe) != 65537)) {
			fail(f, 400, "BadParameter",
			     "Property public_exponent has invalid value: only 65537 is supported");
			goto bad;
		}
		if (crv && !json_is_null(crv)) {
			fail(f, 400, "BadParameter", "Property crv is not valid for an RSA key");
			goto bad;
		}
	} else {
		in.bits = 256;
		if (crv && !json_is_null(crv)) {
			in.bits = crv_bits(json_string_value(crv));
			if (in.bits <= 0) {
				fail(f, 400, "BadParameter",
				     "Property crv has invalid value: supported are P-256, P-384, P-521");
				goto bad;
			}
		}
		if (ks && !json_is_null(ks)) {
			fail(f, 400, "BadParameter", "Property key_size is not valid for an EC key");
			goto bad;
		}
	}
	if (parse_key_common(in.doc, in.doc, &in, f) != BC_OK || check_ops_for_kty(&in, f) != BC_OK)
		goto bad;
	*out = in;
	return BC_OK;
bad:
	vault_key_input_release(&in);
	return BC_ERR_INVALID;
}

int vault_parse_key_import(const char *body, size_t len, struct vault_key_input *out, struct vault_fail *f)
{
	struct vault_key_input in = {0};
	if (parse_doc(body, len, VAULT_LIMIT_BODY, &in.doc, f) != BC_OK)
		return BC_ERR_INVALID;
	json_t *hsm = json_object_get(in.doc, "Hsm");
	if (hsm && !json_is_null(hsm)) {
		if (!json_is_boolean(hsm)) {
			fail(f, 400, "BadParameter", "Property Hsm has invalid value");
			goto bad;
		}
		in.hsm = json_is_true(hsm);
	}
	in.jwk = json_object_get(in.doc, "key");
	if (!json_is_object(in.jwk)) {
		fail(f, 400, "BadParameter", "Property key is required");
		goto bad;
	}
	if (parse_kty(bc_json_str(in.jwk, "kty"), &in) != BC_OK) {
		fail(f, 400, "BadParameter",
		     "Property key.kty has invalid value: supported are RSA, RSA-HSM, EC, EC-HSM");
		goto bad;
	}
	if (strcmp(in.kty, "EC") == 0) {
		in.bits = crv_bits(bc_json_str(in.jwk, "crv"));
		if (in.bits <= 0) {
			fail(f, 400, "BadParameter",
			     "Property key.crv has invalid value: supported are P-256, P-384, P-521");
			goto bad;
		}
		if (!json_is_string(json_object_get(in.jwk, "d"))) {
			fail(f, 400, "BadParameter", "The imported key must include its private part (d)");
			goto bad;
		}
	} else {
		static const char *const priv[] = {"n", "e", "d", "p", "q"};
		for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
			if (!json_is_string(json_object_get(in.jwk, priv[i]))) {
				fail(f, 400, "BadParameter",
				     "The imported RSA key must include n, e, d, p and q");
				goto bad;
			}
	}
	if (parse_key_common(in.doc, in.jwk, &in, f) != BC_OK || check_ops_for_kty(&in, f) != BC_OK)
		goto bad;
	*out = in;
	return BC_OK;
bad:
	vault_key_input_release(&in);
	return BC_ERR_INVALID;
}

int vault_parse_key_update(const char *body, size_t len, struct vault_key_input *out, struct vault_fail *f)
{
	struct vault_key_input in = {0};
	if (parse_doc(body, len, VAULT_LIMIT_BODY, &in.doc, f) != BC_OK)
		return BC_ERR_INVALID;
	if (parse_key_common(in.doc, in.doc, &in, f) != BC_OK) {
		vault_key_input_release(&in);
		return BC_ERR_INVALID;
	}
	*out = in;
	return BC_OK;
}

void vault_op_input_release(struct vault_op_input *in)
{
	if (in->value)
		bc_wipe(in->value, in->value_len);
	free(in->value);
	free(in->digest);
	memset(in, 0, sizeof(*in));
}

static int b64url_member(const json_t *doc, const char *key, uint8_t **out, size_t *outlen,
			 struct vault_fail *f)
{
	struct bc_error err = {0};
	json_t *v = json_object_get(doc, key);
	if (!json_is_string(v))
		return fail(f, 400, "BadParameter", "Property %s is required and must be base64url", key);
	if (json_string_length(v) > (BC_LIMIT_CRYPTO_INPUT * 4) / 3 + 4)
		return fail(f, 400, "BadParameter", "Property %s is too large", key);
	if (bc_b64url_decode(json_string_value(v), json_string_length(v), out, outlen, &err) != BC_OK)
		return fail(f, 400, "BadParameter", "Property %s is not valid base64url", key);
	return BC_OK;
}

int vault_parse_key_op(const char *body, size_t len, bool verify, struct vault_op_input *out,
		       struct vault_fail *f)
{
	struct vault_op_input in = {0};
	json_t *doc = NULL;
	if (parse_doc(body, len, VAULT_LIMIT_BODY, &doc, f) != BC_OK)
		return BC_ERR_INVALID;
	const char *alg = bc_json_str(doc, "alg");
	if (!alg || strlen(alg) == 0 || strlen(alg) >= sizeof(in.alg)) {
		fail(f, 400, "BadParameter", "Property alg is required");
		goto bad;
	}
	strcpy(in.alg, alg);
	if (b64url_member(doc, "value", &in.value, &in.value_len, f) != BC_OK)
		goto bad;
	if (verify && b64url_member(doc, "digest", &in.digest, &in.digest_len, f) != BC_OK)
		goto bad;
	json_decref(doc);
	*out = in;
	return BC_OK;
bad:
	json_decref(doc);
	vault_op_input_release(&in);
	return BC_ERR_INVALID;
}

int vault_parse_value_b64(const char *body, size_t len, size_t max, uint8_t **out, size_t *outlen,
			  struct vault_fail *f)
{
	json_t *doc = NULL;
	struct bc_error err = {0};
	if (parse_doc(body, len, VAULT_LIMIT_BACKUP_BODY, &doc, f) != BC_OK)
		return BC_ERR_INVALID;
	json_t *v = json_object_get(doc, "value");
	int rc = BC_ERR_INVALID;
	if (!json_is_string(v))
		fail(f, 400, "BadParameter", "Property value is required");
	else if (json_string_length(v) / 4 * 3 > max)
		fail(f, 400, "BadParameter", "Property value is too large");
	else if (bc_b64url_decode(json_string_value(v), json_string_length(v), out, outlen, &err) != BC_OK)
		fail(f, 400, "BadParameter", "Property value is not valid base64url");
	else
		rc = BC_OK;
	json_decref(doc);
	return rc;
}

int vault_parse_rng(const char *body, size_t len, int *count, struct vault_fail *f)
{
	json_t *doc = NULL;
	if (parse_doc(body, len, VAULT_LIMIT_BODY, &doc, f) != BC_OK)
		return BC_ERR_INVALID;
	json_t *c = json_object_get(doc, "count");
	int rc = BC_OK;
	if (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > VAULT_LIMIT_RNG)
		rc = fail(f, 400, "BadParameter", "Property count must be an integer from 1 to %d",
			  VAULT_LIMIT_RNG);
	else
		*count = (int)json_integer_value(c);
	json_decref(doc);
	return rc;
}
