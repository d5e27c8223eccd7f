/* X.509 over OpenSSL: the local CA, the certificates it issues, CSRs, parsing, thumbprints.
 *
 * Extensions whose values we choose are written through X509V3_EXT_conf_nid with constant
 * strings; names that come from configuration or requests (SANs, CNs) are built as typed
 * objects, never pasted into OpenSSL's configuration syntax. */
#include "core/pki.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/b64.h"
#include "core/limits.h"
#include "core/util.h"

#define CA_LIFETIME_S (10LL * 365 * 86400)
#define BACKDATE_S 300       /* tolerates clocks a little behind ours */
#define CN_MAX 64            /* ub-common-name (RFC 5280) */
#define MAX_DAYS 3650

struct bc_ca {
	EVP_PKEY *key;  /* owned */
	X509 *cert;     /* owned */
	char *cert_pem; /* owned */
};

const char *bc_ca_cert_pem(const struct bc_ca *ca)
{
	return ca->cert_pem;
}

X509 *bc_ca_cert(const struct bc_ca *ca)
{
	return ca->cert;
}

void bc_ca_free(struct bc_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->cert_pem);
	free(ca);
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0; /* never prompt on a terminal for an encrypted PEM */
}

/* ---- small builders --------------------------------------------------------------------- */

static int pem_append(int (*write)(BIO *, void *), void *obj, bool secret, struct bc_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return BC_ERR_NOMEM;
	int rc = BC_OK;
	char *data = NULL;
	long n = 0;
	if (write(bio, obj) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0)
		rc = BC_ERR_CRYPTO;
	else
		rc = bc_buf_append(out, data, (size_t)n);
	if (secret && n > 0)
		OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	return rc;
}

static int write_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int write_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int write_req(BIO *b, void *r)
{
	return PEM_write_bio_X509_REQ(b, r);
}

static bool cn_ok(const char *cn)
{
	size_t n = cn ? strlen(cn) : 0;
	if (n == 0 || n > CN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f)
			return false;
	return true;
}

static int set_cn(X509_NAME *name, const char *cn)
{
	return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) == 1;
}

/* 16 random bytes, positive and non-zero (RFC 5280 4.1.2.2). */
static int set_serial(X509 *x)
{
	uint8_t r[16];
	if (bc_random(r, sizeof(r)) != BC_OK)
		return 0;
	r[0] &= 0x7f;
	r[0] |= 0x01;
	BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
	int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

static int64_t cert_time(const ASN1_TIME *t, bool *ok)
{
	struct tm tm;
	*ok = ASN1_TIME_to_tm(t, &tm) == 1;
	return *ok ? (int64_t)timegm(&tm) : 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A new v3 certificate skeleton: serial, validity, subject CN, issuer, public key. */
static X509 *new_cert(const char *cn, const X509 *issuer, EVP_PKEY *pub, int64_t not_before, int64_t not_after)
{
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	int ok = x && subj && X509_set_version(x, X509_VERSION_3) == 1 && set_serial(x) &&
		 ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) &&
		 ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) && set_cn(subj, cn) &&
		 X509_set_subject_name(x, subj) == 1 &&
		 X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) == 1 &&
		 X509_set_pubkey(x, pub) == 1;
	X509_NAME_free(subj);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The leaf extensions shared by server and client certificates, then the signature. */
static int finish_leaf(X509 *x, const struct bc_ca *ca, const char *eku)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	return add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
	       add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") &&
	       add_ext(x, &ctx, NID_ext_key_usage, eku) && add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
	       add_ext(x, &ctx, NID_authority_key_identifier, "keyid") && X509_sign(x, ca->key, EVP_sha256()) > 0;
}

/* now + lifetime, never past the CA's own notAfter. */
static int64_t leaf_not_after(const struct bc_ca *ca, int64_t now, int64_t lifetime)
{
	bool ok;
	int64_t ca_end = cert_time(X509_get0_notAfter(ca->cert), &ok);
	int64_t end = now + lifetime;
	return ok && ca_end < end ? ca_end : end;
}

/* ---- the CA ------------------------------------------------------------------------------ */

static int ca_finish(struct bc_ca *ca, struct bc_error *err)
{
	struct bc_buf pem;
	bc_buf_init(&pem, 0);
	if (pem_append(write_cert, ca->cert, false, &pem) != BC_OK) {
		bc_buf_release(&pem);
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot encode the ca certificate");
	}
	ca->cert_pem = bc_buf_detach(&pem, NULL);
	return BC_OK;
}

static int ca_load(struct bc_ca *ca, const char *key_path, const char *cert_path, struct bc_error *err)
{
	struct stat st;
	if (stat(key_path, &st) != 0)
		return bc_error_set(err, BC_ERR_IO, "cannot stat %s", key_path);
	if (st.st_mode & 077)
		return bc_error_set(err, BC_ERR_INVALID, "ca key %s is accessible to group or others (want 0600)",
				    key_path);
	char *data = NULL;
	size_t len = 0;
	int rc = bc_read_file(key_path, BC_LIMIT_PEM_BYTES, &data, &len, err);
	if (rc)
		return rc;
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	ca->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
	BIO_free(bio);
	bc_wipe(data, len);
	free(data);
	if (!ca->key)
		return bc_error_openssl(err, BC_ERR_INVALID, "cannot read the ca key");
	if ((rc = bc_read_file(cert_path, BC_LIMIT_CERT_BYTES, &data, &len, err)))
		return rc;
	rc = bc_x509_parse_pem(data, len, &ca->cert, err);
	free(data);
	if (rc) {
		bc_error_wrap(err, "ca certificate %s", cert_path);
		return rc;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1)
		return bc_error_openssl(err, BC_ERR_INVALID, "ca key does not match the ca certificate");
	if (X509_check_ca(ca->cert) < 1)
		return bc_error_set(err, BC_ERR_INVALID, "ca certificate %s is not a ca", cert_path);
	return ca_finish(ca, err);
}

static int ca_create(struct bc_ca *ca, const char *cn, const char *key_path, const char *cert_path,
		     struct bc_error *err)
{
	if (!cn_ok(cn))
		return bc_error_set(err, BC_ERR_INVALID, "bad ca common name");
	if (!(ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1")))
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot generate the ca key");
	int64_t now = bc_now();
	if (!(ca->cert = new_cert(cn, NULL, ca->key, now - BACKDATE_S, now + CA_LIFETIME_S)))
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot build the ca certificate");
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca->cert, ca->cert, NULL, NULL, 0);
	if (!add_ext(ca->cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
	    !add_ext(ca->cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(ca->cert, &ctx, NID_subject_key_identifier, "hash") ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot sign the ca certificate");
	int rc = ca_finish(ca, err);
	if (rc)
		return rc;
	struct bc_buf key;
	bc_buf_init(&key, 0);
	if ((rc = pem_append(write_key, ca->key, true, &key))) {
		bc_buf_wipe(&key);
		return bc_error_openssl(err, rc, "cannot encode the ca key");
	}
	/* The key first: a key without a certificate is replaced on the next start, a
	 * certificate clients may already trust is never orphaned silently. */
	rc = bc_write_file_atomic(key_path, key.data, key.len, 0600, err);
	bc_buf_wipe(&key);
	if (rc)
		return rc;
	return bc_write_file_atomic(cert_path, ca->cert_pem, strlen(ca->cert_pem), 0644, err);
}

int bc_ca_load_or_create(const char *dir, const char *common_name, struct bc_ca **out, struct bc_error *err)
{
	char key_path[4096], cert_path[4096];
	if (!dir || snprintf(key_path, sizeof(key_path), "%s/ca.key", dir) >= (int)sizeof(key_path) ||
	    snprintf(cert_path, sizeof(cert_path), "%s/ca.pem", dir) >= (int)sizeof(cert_path))
		return bc_error_set(err, BC_ERR_INVALID, "bad ca directory");
	struct bc_ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory for the ca");
	ERR_clear_error();
	struct stat st;
	bool have_key = stat(key_path, &st) == 0, have_cert = stat(cert_path, &st) == 0;
	int rc;
	if (have_cert && !have_key)
		rc = bc_error_set(err, BC_ERR_INVALID, "%s exists but %s does not", cert_path, key_path);
	else if (have_cert)
		rc = ca_load(ca, key_path, cert_path, err);
	else if (!(rc = bc_mkdir_p(dir, 0700, err)))
		rc = ca_create(ca, common_name, key_path, cert_path, err);
	if (rc) {
		bc_ca_free(ca);
		return rc;
	}
	*out = ca;
	return BC_OK;
}

/* ---- issuing ---------------------------------------------------------------------------- */

/* DNS name: labels of letters, digits and inner '-', 1..63 chars; "*." allowed as the whole
 * first label. */
static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	if (strncmp(s, "*.", 2) == 0) {
		s += 2;
		n -= 2;
	}
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static int add_san(GENERAL_NAMES *gens, const char *name)
{
	uint8_t ip[16];
	int iplen = inet_pton(AF_INET, name, ip) == 1 ? 4 : inet_pton(AF_INET6, name, ip) == 1 ? 16 : 0;
	if (!iplen && !dns_name_ok(name))
		return BC_ERR_INVALID;
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OCTET_STRING *ipo = NULL;
	ASN1_IA5STRING *dns = NULL;
	if (!g)
		return BC_ERR_NOMEM;
	if (iplen) {
		if (!(ipo = ASN1_OCTET_STRING_new()) || ASN1_OCTET_STRING_set(ipo, ip, iplen) != 1)
			goto fail;
		GENERAL_NAME_set0_value(g, GEN_IPADD, ipo);
	} else {
		if (!(dns = ASN1_IA5STRING_new()) || ASN1_STRING_set(dns, name, -1) != 1)
			goto fail;
		GENERAL_NAME_set0_value(g, GEN_DNS, dns);
	}
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return BC_ERR_NOMEM;
	}
	return BC_OK;
fail:
	ASN1_OCTET_STRING_free(ipo);
	ASN1_IA5STRING_free(dns);
	GENERAL_NAME_free(g);
	return BC_ERR_NOMEM;
}

static int add_sans(X509 *x, const char *const *names, size_t n, struct bc_error *err)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory for names");
	int rc = BC_OK;
	for (size_t i = 0; i < n && rc == BC_OK; i++) {
		if (!names[i] || (rc = add_san(gens, names[i])))
			rc = bc_error_set(err, rc ? rc : BC_ERR_INVALID, "bad certificate name %zu", i);
	}
	if (rc == BC_OK && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot add subjectAltName");
	GENERAL_NAMES_free(gens);
	return rc;
}

int bc_ca_issue_server(struct bc_ca *ca, const char *const *names, size_t n, int days, struct bc_buf *out_cert_pem,
		       struct bc_buf *out_key_pem, struct bc_error *err)
{
	if (!ca || !names || n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "no names for the server certificate");
	if (days <= 0 || days > MAX_DAYS)
		return bc_error_set(err, BC_ERR_INVALID, "bad certificate lifetime %d days", days);
	/* The CN is informative only (clients match SANs); the first name when it fits. */
	const char *cn = names[0] && cn_ok(names[0]) ? names[0] : "badge";
	int64_t now = bc_now();
	X509 *x = NULL;
	int rc;
	size_t cert_start = out_cert_pem->len, key_start = out_key_pem->len;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	if (!key) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot generate the server key");
		goto out;
	}
	if (!(x = new_cert(cn, ca->cert, key, now - BACKDATE_S, leaf_not_after(ca, now, (int64_t)days * 86400)))) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot build the server certificate");
		goto out;
	}
	if ((rc = add_sans(x, names, n, err)))
		goto out;
	if (!finish_leaf(x, ca, "serverAuth")) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot sign the server certificate");
		goto out;
	}
	if ((rc = pem_append(write_cert, x, false, out_cert_pem)) ||
	    (rc = bc_buf_append(out_cert_pem, ca->cert_pem, strlen(ca->cert_pem))) ||
	    (rc = pem_append(write_key, key, true, out_key_pem))) {
		rc = bc_error_openssl(err, rc, "cannot encode the server certificate");
		bc_wipe(out_key_pem->data ? out_key_pem->data + key_start : NULL, out_key_pem->len - key_start);
		out_cert_pem->len = cert_start;
		out_key_pem->len = key_start;
		if (out_cert_pem->data)
			out_cert_pem->data[cert_start] = '\0';
		if (out_key_pem->data)
			out_key_pem->data[key_start] = '\0';
	}
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int bc_ca_sign_csr(struct bc_ca *ca, const char *csr_pem, size_t csr_len, const char *subject_cn, int64_t lifetime_s,
		   struct bc_buf *out_cert_pem, struct bc_error *err)
{
	if (!ca || !csr_pem)
		return bc_error_set(err, BC_ERR_INVALID, "no csr");
	if (csr_len > BC_LIMIT_CERT_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "csr too large (%zu bytes, limit %d)", csr_len, BC_LIMIT_CERT_BYTES);
	if (!cn_ok(subject_cn))
		return bc_error_set(err, BC_ERR_INVALID, "bad certificate subject name");
	if (lifetime_s <= 0 || lifetime_s > (int64_t)MAX_DAYS * 86400)
		return bc_error_set(err, BC_ERR_INVALID, "bad certificate lifetime");
	ERR_clear_error();
	X509 *x = NULL;
	struct bc_jwk *pub = NULL;
	int rc = BC_OK;
	BIO *bio = BIO_new_mem_buf(csr_pem, (int)csr_len);
	X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, no_password, NULL) : NULL;
	BIO_free(bio);
	if (!req) {
		rc = bc_error_openssl(err, BC_ERR_INVALID, "bad csr");
		goto out;
	}
	EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
	if (!pk) {
		rc = bc_error_openssl(err, BC_ERR_INVALID, "csr has no usable public key");
		goto out;
	}
	if ((rc = bc_jwk_from_pkey(&pub, pk, err))) { /* type and size checks */
		bc_error_wrap(err, "csr key");
		goto out;
	}
	if (X509_REQ_verify(req, pk) != 1) {
		rc = bc_error_openssl(err, BC_ERR_INVALID, "csr signature does not verify");
		goto out;
	}
	/* The CSR's subject and requested extensions are ignored: we decide what is certified. */
	int64_t now = bc_now();
	if (!(x = new_cert(subject_cn, ca->cert, pk, now - BACKDATE_S, leaf_not_after(ca, now, lifetime_s))) ||
	    !finish_leaf(x, ca, "clientAuth")) {
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot issue the client certificate");
		goto out;
	}
	if ((rc = pem_append(write_cert, x, false, out_cert_pem)))
		rc = bc_error_openssl(err, rc, "cannot encode the client certificate");
out:
	bc_jwk_free(pub);
	X509_free(x);
	X509_REQ_free(req);
	return rc;
}

int bc_csr_create(const struct bc_jwk *key, const char *cn, struct bc_buf *out_pem, struct bc_error *err)
{
	if (!key || !bc_jwk_is_private(key))
		return bc_error_set(err, BC_ERR_INVALID, "csr needs a private key");
	if (!cn_ok(cn))
		return bc_error_set(err, BC_ERR_INVALID, "bad csr common name");
	EVP_PKEY *pk = bc_jwk_pkey(key);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	int rc = BC_OK;
	if (!req || !name || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || !set_cn(name, cn) ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pk) != 1 ||
	    X509_REQ_sign(req, pk, bc_alg_md(bc_jwk_default_alg(key))) <= 0)
		rc = bc_error_openssl(err, BC_ERR_CRYPTO, "cannot create the csr");
	else if ((rc = pem_append(write_req, req, false, out_pem)))
		rc = bc_error_openssl(err, rc, "cannot encode the csr");
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/* ---- parsing and inspection -------------------------------------------------------------- */

int bc_x509_parse_pem(const char *pem, size_t len, X509 **out, struct bc_error *err)
{
	if (!pem)
		return bc_error_set(err, BC_ERR_INVALID, "no certificate");
	if (len > BC_LIMIT_CERT_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "certificate too large (%zu bytes, limit %d)", len,
				    BC_LIMIT_CERT_BYTES);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
	BIO_free(bio);
	if (!x)
		return bc_error_openssl(err, BC_ERR_INVALID, "bad pem certificate");
	*out = x;
	return BC_OK;
}

int bc_x509_parse_der_b64(const char *b64, X509 **out, struct bc_error *err)
{
	size_t n = b64 ? strlen(b64) : 0;
	if (n == 0)
		return bc_error_set(err, BC_ERR_INVALID, "no certificate");
	if (n > BC_LIMIT_CERT_BYTES)
		return bc_error_set(err, BC_ERR_LIMIT, "certificate too large (limit %d bytes)", BC_LIMIT_CERT_BYTES);
	uint8_t *der = NULL;
	size_t dlen = 0;
	int rc = bc_b64_decode(b64, n, &der, &dlen, err);
	if (rc) {
		bc_error_wrap(err, "bad certificate");
		return rc;
	}
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)dlen);
	bool whole = x && p == der + dlen;
	free(der);
	if (!whole) {
		X509_free(x);
		return bc_error_openssl(err, BC_ERR_INVALID, "bad der certificate");
	}
	*out = x;
	return BC_OK;
}

int bc_x509_thumbprints(X509 *cert, char x5t[28], char x5t256[44], struct bc_error *err)
{
	uint8_t s1[20], s256[32];
	unsigned int n1 = 0, n256 = 0;
	if (!cert || X509_digest(cert, EVP_sha1(), s1, &n1) != 1 || X509_digest(cert, EVP_sha256(), s256, &n256) != 1)
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash the certificate");
	char *a = bc_b64url_encode_str(s1, n1), *b = bc_b64url_encode_str(s256, n256);
	int rc = BC_OK;
	if (!a || !b || strlen(a) != 27 || strlen(b) != 43) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "cannot encode thumbprints");
	} else {
		memcpy(x5t, a, 28);
		memcpy(x5t256, b, 44);
	}
	free(a);
	free(b);
	return rc;
}

int bc_x509_thumbprint_hex(X509 *cert, char out[41], struct bc_error *err)
{
	uint8_t s1[20];
	unsigned int n1 = 0;
	if (!cert || X509_digest(cert, EVP_sha1(), s1, &n1) != 1 || n1 != sizeof(s1))
		return bc_error_openssl(err, BC_ERR_CRYPTO, "cannot hash the certificate");
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < sizeof(s1); i++) {
		out[2 * i] = hex[s1[i] >> 4];
		out[2 * i + 1] = hex[s1[i] & 0xf];
	}
	out[40] = '\0';
	return BC_OK;
}

int bc_x509_validity(X509 *cert, int64_t *not_before, int64_t *not_after, struct bc_error *err)
{
	bool ok1 = false, ok2 = false;
	int64_t nb = cert ? cert_time(X509_get0_notBefore(cert), &ok1) : 0;
	int64_t na = cert ? cert_time(X509_get0_notAfter(cert), &ok2) : 0;
	if (!ok1 || !ok2)
		return bc_error_openssl(err, BC_ERR_INVALID, "bad certificate validity");
	*not_before = nb;
	*not_after = na;
	return BC_OK;
}

int bc_x509_verify_issued_by(X509 *cert, const struct bc_ca *ca, int64_t now, struct bc_error *err)
{
	if (!cert || !ca)
		return bc_error_set(err, BC_ERR_INVALID, "no certificate");
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = BC_OK;
	if (!store || !ctx || X509_STORE_add_cert(store, ca->cert) != 1 ||
	    X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		rc = bc_error_openssl(err, BC_ERR_NOMEM, "cannot set up certificate verification");
		goto out;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		rc = bc_error_set(err, BC_ERR_CRYPTO, "certificate not issued by the ca: %s",
				  X509_verify_cert_error_string(e));
	}
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}
