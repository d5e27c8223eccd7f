/* What the pieces of the JOSE layer share (jose.c, jose_key.c, jose_jws.c, jose_jwt.c): the key
 * object, the algorithm and curve tables' entries, and the helpers over them. Nothing outside
 * src/core/jose*.c includes this; the API is jose.h. */
#ifndef BC_JOSE_INT_H
#define BC_JOSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include "core/error.h"
#include "core/jose.h"
#include "core/limits.h"

#define MAX_SIG_BYTES (BC_LIMIT_RSA_BITS_MAX / 8) /* RSA signature of the largest modulus */

enum kty { KTY_RSA = 1, KTY_EC };
enum alg_kind { ALG_RS, ALG_PS, ALG_ES };
enum md_id { MD_256, MD_384, MD_512, MD_COUNT };

struct bc_jwk {
	EVP_PKEY *pkey;           /* owned */
	char *kid;                /* owned, NULL when unset */
	const struct curve *crv;  /* EC only: static table entry */
	enum kty kty;
	int bits;
	bool priv;
};

struct curve {
	const char *crv;   /* JWK name */
	const char *group; /* OpenSSL group name */
	int bits;
	size_t field;      /* bytes of a coordinate / of d */
	const char *alg;   /* the one JWS alg this curve signs with */
	enum md_id md;
};

struct alg {
	const char *name;
	enum alg_kind kind;
	enum md_id md;
};

/* jose.c */
const EVP_MD *bc_jose_md(enum md_id id);
const struct alg *bc_jose_find_alg(const char *name);
const struct curve *bc_jose_curve_by(const char *crv, const char *group);
bool bc_jose_kid_ok(const char *kid, size_t len);
bool bc_jose_alg_allowed(const struct bc_jwk *k, const struct alg *a);
/* Classifies pkey and wraps it (taking a reference) after checking it is a key we support. */
int bc_jose_wrap_pkey(struct bc_jwk **out, EVP_PKEY *pkey, struct bc_error *err) BC_MUST_CHECK;

#endif
