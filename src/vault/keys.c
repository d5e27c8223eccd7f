/* Keys: create, import, get, update, rotate, the cryptographic operations and getrandombytes,
 * and the route table (the shared operations are in common.c). The public JWK is stored in
 * clear (responses and public-key operations need no decryption); the private JWK is sealed. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/b64.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "vault/vault_int.h"

static unsigned ops_of(const struct vault_row *r)
{
	json_t *a = r->key_ops ? json_loads(r->key_ops, 0, NULL) : NULL;
	unsigned ops = 0;
	if (!a || vault_parse_key_ops(a, &ops) != BC_OK)
		ops = 0;
	json_decref(a);
	return ops;
}

static json_t *key_bundle(struct vreq *q, const struct vault_row *r, const char *unused)
{
	(void)unused;
	char kid[600];
	json_t *jwk = r->pub ? json_loads(r->pub, 0, NULL) : NULL;
	if (!json_is_object(jwk)) {
		json_decref(jwk);
		return NULL;
	}
	snprintf(kid, sizeof(kid), "%s/keys/%s/%s", q->base, r->name, r->version);
	/* Public members only, whatever the stored document holds. */
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		json_object_del(jwk, priv[i]);
	json_object_set_new(jwk, "kid", json_string(kid));
	json_object_set_new(jwk, "kty", json_string(r->kty ? r->kty : "RSA"));
	json_object_set_new(jwk, "key_ops", vault_key_ops_json(ops_of(r)));
	json_t *b = json_object();
	json_object_set_new(b, "key", jwk);
	json_object_set_new(b, "attributes", vault_attrs_json(q, r, true));
	json_t *tags = vault_tags_json(r->tags);
	if (tags)
		json_object_set_new(b, "tags", tags);
	return b;
}

static json_t *key_item(struct vreq *q, const struct vault_row *r, bool with_version)
{
	char kid[600];
	json_t *b = json_object();
	if (!b)
		return NULL;
	if (with_version)
		snprintf(kid, sizeof(kid), "%s/keys/%s/%s", q->base, r->name, r->version);
	else
		snprintf(kid, sizeof(kid), "%s/keys/%s", q->base, r->name);
	json_object_set_new(b, "kid", json_string(kid));
	json_object_set_new(b, "attributes", vault_attrs_json(q, r, true));
	json_t *tags = vault_tags_json(r->tags);
	if (tags)
		json_object_set_new(b, "tags", tags);
	return b;
}

const struct vault_kind vault_kind_key = {
	.kind = VAULT_KIND_KEY,
	.collection = "keys",
	.deleted = "deletedkeys",
	.not_found = "KeyNotFound",
	.noun = "key",
	.Noun = "Key",
	.bundle = key_bundle,
	.item = key_item,
};

/* ---- create, import, rotate -------------------------------------------------------------- */

struct put_ctx {
	struct vault_row row;
};

static int put_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	struct put_ctx *p = ctx;
	int rc = vault_obj_put(q->v->st, txn, q->vkey, VAULT_KIND_KEY, &p->row, err);
	if (rc == BC_ERR_FORBIDDEN) {
		vault_error(q, 409, "Conflict", "ObjectIsDeletedButRecoverable",
			    "Key %s is currently in a deleted but recoverable state, and its name cannot be "
			    "reused; in this "
			    "state, the key can only be recovered or purged.",
			    q->name);
		return BC_OK;
	}
	if (rc == BC_OK)
		vault_reply(q, key_bundle(q, &p->row, NULL));
	return rc;
}

/* Fills row from a key (sealing its private part) and stores it as a new version. */
static void store_key(struct vreq *q, const struct bc_jwk *k, const char *kty, unsigned ops,
		      const json_t *tags, const char *tags_text, const struct vault_attrs *attrs)
{
	struct put_ctx p = {0};
	struct vault_row *r = &p.row;
	struct bc_error err = {0};
	char aad[BC_LIMIT_NAME + 200];
	char *priv_text = NULL;
	json_t *pub = bc_jwk_to_jansson(k, false), *priv = bc_jwk_to_jansson(k, true),
	       *opsj = vault_key_ops_json(ops);
	snprintf(r->name, sizeof(r->name), "%s", q->name);
	if (!pub || !priv || !opsj || bc_random_hex32(r->version) != BC_OK) {
		vault_internal(q, NULL);
		goto done;
	}
	json_object_del(pub, "kid");
	json_object_del(priv, "kid");
	vault_audit_object(q, "keys", q->name, r->version);
	r->enabled = attrs && attrs->has_enabled ? attrs->enabled : true;
	r->has_nbf = attrs && attrs->has_nbf;
	r->nbf = attrs ? attrs->nbf : 0;
	r->has_exp = attrs && attrs->has_exp;
	r->exp = attrs ? attrs->exp : 0;
	r->created = r->updated = bc_now();
	r->tags = tags        ? json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS)
		  : tags_text ? strdup(tags_text)
			      : NULL;
	r->kty = strdup(kty);
	r->key_ops = json_dumps(opsj, JSON_COMPACT);
	r->pub = json_dumps(pub, JSON_COMPACT);
	priv_text = json_dumps(priv, JSON_COMPACT);
	if (!r->kty || !r->key_ops || !r->pub || !priv_text) {
		vault_internal(q, NULL);
		goto done;
	}
	vault_aad(aad, sizeof(aad), VAULT_KIND_KEY, q->vkey, q->name, r->version);
	if (vault_seal(q->v->crypt, q->vkey, aad, priv_text, strlen(priv_text), &r->sealed, &err) != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	if (vault_in_txn(q, put_txn, &p, &err) != BC_OK)
		vault_internal(q, &err);
done:
	if (priv_text) {
		bc_wipe(priv_text, strlen(priv_text));
		free(priv_text);
	}
	json_decref(pub);
	json_decref(priv);
	json_decref(opsj);
	vault_row_release(r);
}

static void kty_name(char *out, size_t n, const char *kty, bool hsm)
{
	snprintf(out, n, "%s%s", kty, hsm ? "-HSM" : "");
}

static void key_create(struct vreq *q)
{
	struct vault_key_input in;
	struct vault_fail f = {0};
	struct bc_error err = {0};
	struct bc_jwk *k = NULL;
	char kty[16];
	if (vault_parse_key_create(q->req->body, q->req->body_len, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	if (bc_jwk_generate(&k, in.kty, in.bits, &err) != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	kty_name(kty, sizeof(kty), in.kty, in.hsm);
	store_key(q, k, kty, in.ops, in.tags, NULL, &in.attrs);
done:
	bc_jwk_free(k);
	vault_key_input_release(&in);
}

static void key_import(struct vreq *q)
{
	struct vault_key_input in;
	struct vault_fail f = {0};
	struct bc_error err = {0};
	struct bc_jwk *k = NULL;
	char kty[16];
	if (vault_parse_key_import(q->req->body, q->req->body_len, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	/* The JWK may say RSA-HSM/EC-HSM and carry key_ops/kid: import only the key material. */
	json_t *jwk = json_deep_copy(in.jwk);
	if (jwk) {
		json_object_set_new(jwk, "kty", json_string(in.kty));
		json_object_del(jwk, "key_ops");
		json_object_del(jwk, "kid");
	}
	if (!jwk || bc_jwk_from_jansson(&k, jwk, &err) != BC_OK || !bc_jwk_is_private(k) ||
	    (strcmp(in.kty, "RSA") == 0 && (bc_jwk_bits(k) < 2048 || bc_jwk_bits(k) > 4096))) {
		vault_error(q, 400, "BadParameter", NULL, "The imported key is not a valid %s private key%s",
			    in.kty, strcmp(in.kty, "RSA") == 0 ? " of 2048 to 4096 bits" : "");
		goto done;
	}
	kty_name(kty, sizeof(kty), in.kty, in.hsm);
	store_key(q, k, kty, in.ops, in.tags, NULL, &in.attrs);
done:
	if (jwk) {
		const char *m[] = {"d", "p", "q", "dp", "dq", "qi"};
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			json_t *s = json_object_get(jwk, m[i]);
			if (json_is_string(s))
				bc_wipe((char *)json_string_value(s), json_string_length(s));
		}
	}
	json_decref(jwk);
	bc_jwk_free(k);
	vault_key_input_release(&in);
}

static int load_pub(const struct vault_row *r, struct bc_jwk **k, struct bc_error *err)
{
	if (!r->pub)
		return bc_error_set(err, BC_ERR_INTERNAL, "key without public part");
	return bc_jwk_from_json(k, r->pub, strlen(r->pub), err);
}

static void key_rotate(struct vreq *q)
{
	struct vault_row r;
	struct bc_error err = {0};
	struct bc_jwk *pub = NULL, *k = NULL;
	vault_audit_object(q, "keys", q->name, NULL);
	int rc = vault_obj_read(q->v, q->vkey, VAULT_KIND_KEY, q->name, NULL, &r, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_key);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	if (load_pub(&r, &pub, &err) != BC_OK ||
	    bc_jwk_generate(&k, bc_jwk_kty(pub), bc_jwk_bits(pub), &err) != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	/* The new version keeps the key's type, size, operations and tags. */
	store_key(q, k, r.kty ? r.kty : bc_jwk_kty(pub), ops_of(&r), NULL, r.tags, NULL);
done:
	bc_jwk_free(pub);
	bc_jwk_free(k);
	vault_row_release(&r);
}

/* ---- get, update ------------------------------------------------------------------------- */

static void key_get(struct vreq *q)
{
	struct vault_row r;
	struct bc_error err = {0};
	vault_audit_object(q, "keys", q->name, q->version);
	int rc = vault_obj_read(q->v, q->vkey, VAULT_KIND_KEY, q->name, q->version, &r, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_key);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	vault_audit_object(q, "keys", r.name, r.version);
	vault_reply(q, key_bundle(q, &r, NULL));
	vault_row_release(&r);
}

static int update_txn(struct vreq *q, struct bc_txn *txn, void *ctx, struct bc_error *err)
{
	const struct vault_key_input *in = ctx;
	struct vault_row r;
	int rc = vault_obj_get(q->v->st, txn, q->vkey, VAULT_KIND_KEY, q->name, q->version, false, &r, err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_key);
		return BC_OK;
	}
	if (rc != BC_OK)
		return rc;
	vault_audit_object(q, "keys", r.name, r.version);
	if (in->has_ops) {
		unsigned allowed = r.kty && strncmp(r.kty, "EC", 2) == 0
					   ? (VAULT_OP_SIGN | VAULT_OP_VERIFY)
					   : (VAULT_OP_ENCRYPT | VAULT_OP_DECRYPT | VAULT_OP_SIGN |
					      VAULT_OP_VERIFY | VAULT_OP_WRAP | VAULT_OP_UNWRAP);
		json_t *opsj = vault_key_ops_json(in->ops);
		if (in->ops & ~allowed) {
			json_decref(opsj);
			vault_error(q, 400, "BadParameter", NULL,
				    "Property key_ops has an operation not supported by key type %s",
				    r.kty ? r.kty : "");
			vault_row_release(&r);
			return BC_OK;
		}
		free(r.key_ops);
		r.key_ops = json_dumps(opsj, JSON_COMPACT);
		json_decref(opsj);
	}
	if (in->attrs.has_enabled)
		r.enabled = in->attrs.enabled;
	if (in->attrs.has_nbf) {
		r.has_nbf = true;
		r.nbf = in->attrs.nbf;
	}
	if (in->attrs.has_exp) {
		r.has_exp = true;
		r.exp = in->attrs.exp;
	}
	if (in->tags) {
		free(r.tags);
		r.tags = json_dumps(in->tags, JSON_COMPACT | JSON_SORT_KEYS);
	}
	r.updated = bc_now();
	rc = vault_obj_update(q->v->st, txn, q->vkey, VAULT_KIND_KEY, &r, err);
	if (rc == BC_OK)
		vault_reply(q, key_bundle(q, &r, NULL));
	vault_row_release(&r);
	return rc;
}

static void key_update(struct vreq *q)
{
	struct vault_key_input in;
	struct vault_fail f = {0};
	struct bc_error err = {0};
	if (vault_parse_key_update(q->req->body, q->req->body_len, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	if (vault_in_txn(q, update_txn, &in, &err) != BC_OK)
		vault_internal(q, &err);
	vault_key_input_release(&in);
}

/* ---- cryptographic operations ------------------------------------------------------------ */

enum crypt_op { C_SIGN, C_VERIFY, C_ENCRYPT, C_DECRYPT, C_WRAP, C_UNWRAP };
static const struct {
	const char *name; /* as in "Operation sign is not permitted" */
	unsigned bit;
	bool private_key;
} cops[] = {
	[C_SIGN] = {"sign", VAULT_OP_SIGN, true},           [C_VERIFY] = {"verify", VAULT_OP_VERIFY, false},
	[C_ENCRYPT] = {"encrypt", VAULT_OP_ENCRYPT, false}, [C_DECRYPT] = {"decrypt", VAULT_OP_DECRYPT, true},
	[C_WRAP] = {"wrapKey", VAULT_OP_WRAP, false},       [C_UNWRAP] = {"unwrapKey", VAULT_OP_UNWRAP, true},
};

/* RSA encryption padding of a Key Vault algorithm name. */
static int rsa_alg(const char *alg, int *padding, const EVP_MD **md)
{
	*md = NULL;
	if (strcmp(alg, "RSA1_5") == 0) {
		*padding = RSA_PKCS1_PADDING;
		return BC_OK;
	}
	if (strcmp(alg, "RSA-OAEP") == 0) {
		*padding = RSA_PKCS1_OAEP_PADDING;
		*md = EVP_sha1();
		return BC_OK;
	}
	if (strcmp(alg, "RSA-OAEP-256") == 0) {
		*padding = RSA_PKCS1_OAEP_PADDING;
		*md = EVP_sha256();
		return BC_OK;
	}
	return BC_ERR_INVALID;
}

static int rsa_crypt(const struct bc_jwk *k, const char *alg, bool encrypt, const uint8_t *in, size_t n,
		     struct bc_buf *out, struct bc_error *err)
{
	int padding;
	const EVP_MD *md;
	if (strcmp(bc_jwk_kty(k), "RSA") != 0 || rsa_alg(alg, &padding, &md) != BC_OK)
		return bc_error_set(err, BC_ERR_INVALID, "algorithm %s is not valid for this key", alg);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(bc_jwk_pkey(k), NULL);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = BC_ERR_INVALID;
	if (!ctx || (encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, padding) != 1 ||
	    (md &&
	     (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1))) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "rsa setup");
		goto done;
	}
	if ((encrypt ? EVP_PKEY_encrypt(ctx, NULL, &len, in, n) : EVP_PKEY_decrypt(ctx, NULL, &len, in, n)) !=
		    1 ||
	    !(buf = malloc(len ? len : 1)) ||
	    (encrypt ? EVP_PKEY_encrypt(ctx, buf, &len, in, n) : EVP_PKEY_decrypt(ctx, buf, &len, in, n)) !=
		    1) {
		ERR_clear_error();
		rc = bc_error_set(err, BC_ERR_INVALID, "the input is not valid for %s with this key", alg);
		goto done;
	}
	rc = bc_b64url_encode(buf, len, out);
done:
	if (buf) {
		bc_wipe(buf, len);
		free(buf);
	}
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static void crypto_op(struct vreq *q, enum crypt_op op)
{
	struct vault_row r;
	struct bc_error err = {0};
	struct vault_op_input in = {0};
	struct vault_fail f = {0};
	struct bc_jwk *k = NULL;
	struct bc_buf out = {0};
	uint8_t *priv = NULL;
	size_t privlen = 0;
	char kid[600];
	vault_audit_object(q, "keys", q->name, q->version);
	int rc = vault_obj_read(q->v, q->vkey, VAULT_KIND_KEY, q->name, q->version, &r, &err);
	if (rc == BC_ERR_NOT_FOUND) {
		vault_not_found(q, &vault_kind_key);
		return;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		return;
	}
	vault_audit_object(q, "keys", r.name, r.version);
	if (!vault_usable(q, &r, "key", cops[op].name))
		goto done;
	if (!(ops_of(&r) & cops[op].bit)) {
		vault_error(q, 403, "Forbidden", "KeyOperationForbidden",
			    "Operation %s is not permitted on this key.", cops[op].name);
		goto done;
	}
	if (vault_parse_key_op(q->req->body, q->req->body_len, op == C_VERIFY, &in, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		goto done;
	}
	if (cops[op].private_key) {
		char aad[BC_LIMIT_NAME + 200];
		vault_aad(aad, sizeof(aad), VAULT_KIND_KEY, q->vkey, r.name, r.version);
		rc = r.sealed ? vault_open(q->v->crypt, q->vkey, aad, r.sealed, &priv, &privlen, &err)
			      : BC_ERR_INTERNAL;
		if (rc == BC_OK)
			rc = bc_jwk_from_json(&k, (const char *)priv, privlen, &err);
	} else {
		rc = load_pub(&r, &k, &err);
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	snprintf(kid, sizeof(kid), "%s/keys/%s/%s", q->base, r.name, r.version);
	if (op == C_SIGN || op == C_VERIFY) {
		const EVP_MD *md = bc_alg_md(in.alg);
		const uint8_t *digest = op == C_SIGN ? in.value : in.digest;
		size_t dlen = op == C_SIGN ? in.value_len : in.digest_len;
		if (!md || !bc_jwk_alg_allowed(k, in.alg)) {
			vault_error(q, 400, "BadParameter", NULL, "Algorithm %s is not valid for this key.",
				    in.alg);
			goto done;
		}
		if ((size_t)EVP_MD_get_size(md) != dlen) {
			vault_error(q, 400, "BadParameter", NULL,
				    "Invalid digest length for algorithm %s: expected %d bytes.", in.alg,
				    EVP_MD_get_size(md));
			goto done;
		}
		if (op == C_SIGN) {
			struct bc_buf sig = {0};
			rc = bc_sig_sign_digest(k, in.alg, digest, dlen, &sig, &err);
			if (rc == BC_OK)
				rc = bc_b64url_encode(sig.data, sig.len, &out);
			bc_buf_release(&sig);
			if (rc != BC_OK) {
				vault_internal(q, &err);
				goto done;
			}
			vault_reply(q, json_pack("{s:s,s:s}", "kid", kid, "value", bc_buf_cstr(&out)));
		} else {
			rc = bc_sig_verify_digest(k, in.alg, digest, dlen, in.value, in.value_len, &err);
			ERR_clear_error();
			vault_reply(q, json_pack("{s:b}", "value", rc == BC_OK));
		}
		goto done;
	}
	rc = rsa_crypt(k, in.alg, op == C_ENCRYPT || op == C_WRAP, in.value, in.value_len, &out, &err);
	if (rc == BC_ERR_INVALID) {
		vault_error(q, 400, "BadParameter", NULL, "%s", err.msg);
		goto done;
	}
	if (rc != BC_OK) {
		vault_internal(q, &err);
		goto done;
	}
	vault_reply(q, json_pack("{s:s,s:s}", "kid", kid, "value", bc_buf_cstr(&out)));
done:
	if (priv) {
		bc_wipe(priv, privlen);
		free(priv);
	}
	bc_jwk_free(k);
	bc_buf_wipe(&out);
	vault_op_input_release(&in);
	vault_row_release(&r);
}

static void key_sign(struct vreq *q)
{
	crypto_op(q, C_SIGN);
}
static void key_verify(struct vreq *q)
{
	crypto_op(q, C_VERIFY);
}
static void key_encrypt(struct vreq *q)
{
	crypto_op(q, C_ENCRYPT);
}
static void key_decrypt(struct vreq *q)
{
	crypto_op(q, C_DECRYPT);
}
static void key_wrap(struct vreq *q)
{
	crypto_op(q, C_WRAP);
}
static void key_unwrap(struct vreq *q)
{
	crypto_op(q, C_UNWRAP);
}

static void rng(struct vreq *q)
{
	struct vault_fail f = {0};
	uint8_t buf[VAULT_LIMIT_RNG];
	int n = 0;
	if (vault_parse_rng(q->req->body, q->req->body_len, &n, &f) != BC_OK) {
		vault_fail_reply(q, &f);
		return;
	}
	char *s = bc_random(buf, (size_t)n) == BC_OK ? bc_b64url_encode_str(buf, (size_t)n) : NULL;
	bc_wipe(buf, sizeof(buf));
	if (!s) {
		vault_internal(q, NULL);
		return;
	}
	vault_reply(q, json_pack("{s:s}", "value", s));
	bc_wipe(s, strlen(s));
	free(s);
}

/* ---- routes ---------------------------------------------------------------------------- */

#define K "keys"
#define KEY_OP_ROUTE(op, opname, perm, fn)                                                                   \
	{                                                                                                    \
		"POST", "/keys/{name}/{version}/" op, opname, K, perm, fn, VAULT_LIMIT_BODY, false           \
	}
/* Literal segments first: the adapter takes the first route that matches. */
const struct vroute vault_key_routes[] = {
	{"GET", "/keys", "KeyList", K, "list", vault_op_list, 0, false},
	{"POST", "/keys/restore", "KeyRestore", K, "restore", vault_op_restore, VAULT_LIMIT_BACKUP_BODY,
	 true},
	{"GET", "/keys/{name}/versions", "KeyListVersions", K, "list", vault_op_versions, 0, false},
	{"POST", "/keys/{name}/create", "KeyCreate", K, "create", key_create, VAULT_LIMIT_BODY, true},
	{"POST", "/keys/{name}/backup", "KeyBackup", K, "backup", vault_op_backup, VAULT_LIMIT_BODY, false},
	{"POST", "/keys/{name}/rotate", "KeyRotate", K, "rotate", key_rotate, VAULT_LIMIT_BODY, true},
	KEY_OP_ROUTE("sign", "KeySign", "sign", key_sign),
	KEY_OP_ROUTE("verify", "KeyVerify", "verify", key_verify),
	KEY_OP_ROUTE("encrypt", "KeyEncrypt", "encrypt", key_encrypt),
	KEY_OP_ROUTE("decrypt", "KeyDecrypt", "decrypt", key_decrypt),
	KEY_OP_ROUTE("wrapkey", "KeyWrap", "wrapKey", key_wrap),
	KEY_OP_ROUTE("unwrapkey", "KeyUnwrap", "unwrapKey", key_unwrap),
	{"PUT", "/keys/{name}", "KeyImport", K, "import", key_import, VAULT_LIMIT_BODY, true},
	{"GET", "/keys/{name}", "KeyGet", K, "get", key_get, 0, false},
	{"GET", "/keys/{name}/{version}", "KeyGet", K, "get", key_get, 0, false},
	{"PATCH", "/keys/{name}", "KeyUpdate", K, "update", key_update, VAULT_LIMIT_BODY, true},
	{"PATCH", "/keys/{name}/{version}", "KeyUpdate", K, "update", key_update, VAULT_LIMIT_BODY, true},
	{"DELETE", "/keys/{name}", "KeyDelete", K, "delete", vault_op_delete, 0, true},
	{"GET", "/deletedkeys", "KeyListDeleted", K, "list", vault_op_list_deleted, 0, false},
	{"GET", "/deletedkeys/{name}", "KeyGetDeleted", K, "get", vault_op_get_deleted, 0, false},
	{"DELETE", "/deletedkeys/{name}", "KeyPurge", K, "purge", vault_op_purge, 0, true},
	{"POST", "/deletedkeys/{name}/recover", "KeyRecover", K, "recover", vault_op_recover,
	 VAULT_LIMIT_BODY, true},
	{"POST", "/rng", "GetRandomBytes", NULL, NULL, rng, VAULT_LIMIT_BODY, false},
};
const size_t vault_key_nroutes = sizeof(vault_key_routes) / sizeof(vault_key_routes[0]);
