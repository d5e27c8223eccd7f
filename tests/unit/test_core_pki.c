/* PKI: the local CA (create, reload, file modes), server certificates (SANs, EKU, chain),
 * CSR signing, thumbprints, parsing of bad input. The openssl command is the independent check
 * of chains and fingerprints. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/util.h"
#include "test.h"

static char tmpdir[] = "/tmp/badge-pki-XXXXXX";
static int64_t fake_now;

static int64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static X509 *first_cert(const struct bc_buf *b)
{
	X509 *x = NULL;
	struct bc_error err = {0};
	if (bc_x509_parse_pem(b->data, b->len, &x, &err) != BC_OK)
		fprintf(stderr, "parse: %s\n", err.msg);
	return x;
}

static bool have_openssl(void)
{
	return system("openssl version >/dev/null 2>&1") == 0;
}

TEST(ca_create_then_reload)
{
	char dir[512], keyp[600], certp[600];
	snprintf(dir, sizeof(dir), "%s/ca", tmpdir);
	snprintf(keyp, sizeof(keyp), "%s/ca.key", dir);
	snprintf(certp, sizeof(certp), "%s/ca.pem", dir);
	struct bc_ca *ca = NULL, *again = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_ca_load_or_create(dir, "badge test CA", &ca, &err) == BC_OK);
	struct stat st;
	REQUIRE(stat(keyp, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK(stat(certp, &st) == 0);

	X509 *x = bc_ca_cert(ca);
	CHECK(X509_check_ca(x) >= 1);
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	CHECK(bc && bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	CHECK((X509_get_key_usage(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	CHECK(X509_get0_subject_key_id(x) != NULL);
	CHECK(X509_check_issued(x, x) == X509_V_OK);
	int64_t nb = 0, na = 0;
	CHECK(bc_x509_validity(x, &nb, &na, &err) == BC_OK);
	int64_t now = bc_now();
	CHECK(nb <= now - 290 && nb >= now - 310);
	CHECK(na - now > 9LL * 365 * 86400 && na - now < 11LL * 365 * 86400);
	CHECK(strstr(bc_ca_cert_pem(ca), "-----BEGIN CERTIFICATE-----") != NULL);

	/* reload: the same certificate, the same key */
	REQUIRE(bc_ca_load_or_create(dir, "ignored on reload", &again, &err) == BC_OK);
	CHECK_STR(bc_ca_cert_pem(again), bc_ca_cert_pem(ca));
	CHECK(X509_cmp(bc_ca_cert(again), x) == 0);
	char *certfile = NULL;
	CHECK(bc_read_file(certp, 65536, &certfile, NULL, NULL) == BC_OK);
	CHECK_STR(certfile, bc_ca_cert_pem(ca));
	free(certfile);
	/* a leaf issued by the reloaded CA verifies under the original (same key) */
	const char *names[] = {"localhost"};
	struct bc_buf cert, key;
	bc_buf_init(&cert, 0);
	bc_buf_init(&key, 0);
	REQUIRE(bc_ca_issue_server(again, names, 1, 1, &cert, &key, &err) == BC_OK);
	X509 *leaf = first_cert(&cert);
	CHECK(leaf && bc_x509_verify_issued_by(leaf, ca, bc_now(), &err) == BC_OK);
	X509_free(leaf);
	bc_buf_release(&cert);
	bc_buf_wipe(&key);
	bc_ca_free(again);
	again = NULL;

	/* a key readable by others is refused */
	REQUIRE(chmod(keyp, 0644) == 0);
	CHECK_EQ_INT(bc_ca_load_or_create(dir, "x", &again, &err), BC_ERR_INVALID);
	CHECK(again == NULL);
	REQUIRE(chmod(keyp, 0600) == 0);
	/* a certificate without its key is never replaced silently */
	char moved[700];
	snprintf(moved, sizeof(moved), "%s.moved", keyp);
	REQUIRE(rename(keyp, moved) == 0);
	CHECK_EQ_INT(bc_ca_load_or_create(dir, "x", &again, &err), BC_ERR_INVALID);
	REQUIRE(rename(moved, keyp) == 0);
	/* a key that does not match the certificate */
	char otherdir[512];
	snprintf(otherdir, sizeof(otherdir), "%s/ca2", tmpdir);
	struct bc_ca *other = NULL;
	REQUIRE(bc_ca_load_or_create(otherdir, "other", &other, &err) == BC_OK);
	char otherkey[600];
	snprintf(otherkey, sizeof(otherkey), "%s/ca.key", otherdir);
	REQUIRE(rename(otherkey, keyp) == 0);
	CHECK_EQ_INT(bc_ca_load_or_create(dir, "x", &again, &err), BC_ERR_INVALID);
	bc_ca_free(other);
	bc_ca_free(ca);
	/* a bad common name on creation */
	snprintf(otherdir, sizeof(otherdir), "%s/ca3", tmpdir);
	CHECK_EQ_INT(bc_ca_load_or_create(otherdir, "", &again, &err), BC_ERR_INVALID);
}

static struct bc_ca *test_ca(const char *name)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	struct bc_ca *ca = NULL;
	struct bc_error err = {0};
	if (bc_ca_load_or_create(dir, name, &ca, &err) != BC_OK)
		fprintf(stderr, "ca: %s\n", err.msg);
	return ca;
}

TEST(server_cert)
{
	/* everything at a fixed time, so that validity is exact */
	fake_now = 1700000000;
	bc_clock_set(fixed_clock, NULL);
	struct bc_ca *ca = test_ca("srv-ca"), *other = test_ca("srv-other");
	if (!ca || !other)
		bc_clock_set(NULL, NULL);
	REQUIRE(ca && other);
	const char *names[] = {"localhost", "*.vault.badge.internal", "127.0.0.1", "::1", "login.badge.internal"};
	struct bc_buf cert, key;
	struct bc_error err = {0};
	bc_buf_init(&cert, 0);
	bc_buf_init(&key, 0);
	int rc = bc_ca_issue_server(ca, names, 5, 30, &cert, &key, &err);
	bc_clock_set(NULL, NULL);
	REQUIRE(rc == BC_OK);
	X509 *x = first_cert(&cert);
	REQUIRE(x);
	/* leaf then CA in the chain PEM */
	const char *second = strstr(cert.data + 1, "-----BEGIN CERTIFICATE-----");
	CHECK(second && strcmp(second, bc_ca_cert_pem(ca)) == 0);

	CHECK_EQ_INT(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	CHECK_EQ_INT(X509_check_host(x, "myvault.vault.badge.internal", 0, 0, NULL), 1);
	CHECK_EQ_INT(X509_check_host(x, "login.badge.internal", 0, 0, NULL), 1);
	CHECK(X509_check_host(x, "vault.badge.internal", 0, 0, NULL) != 1);
	CHECK(X509_check_host(x, "a.b.vault.badge.internal", 0, 0, NULL) != 1);
	CHECK(X509_check_host(x, "example.com", 0, 0, NULL) != 1);
	CHECK_EQ_INT(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	CHECK_EQ_INT(X509_check_ip_asc(x, "::1", 0), 1);
	CHECK(X509_check_ip_asc(x, "127.0.0.2", 0) != 1);
	CHECK(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	CHECK(!(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT));
	CHECK(X509_check_ca(x) == 0);
	/* authorityKeyIdentifier = the CA's subjectKeyIdentifier */
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x), *ski = X509_get0_subject_key_id(bc_ca_cert(ca));
	CHECK(aki && ski && ASN1_OCTET_STRING_cmp(aki, ski) == 0);
	CHECK(X509_get0_subject_key_id(x) != NULL);
	/* a 16-byte positive serial */
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	CHECK_EQ_INT(ASN1_STRING_length(serial), 16);
	CHECK(ASN1_STRING_type(serial) == V_ASN1_INTEGER);
	/* validity backdated 5 minutes, 30 days long */
	int64_t nb = 0, na = 0;
	CHECK(bc_x509_validity(x, &nb, &na, &err) == BC_OK);
	CHECK_EQ_INT(nb, fake_now - 300);
	CHECK_EQ_INT(na, fake_now + 30 * 86400);
	/* the chain: by our own check, at times inside and outside the validity */
	CHECK_EQ_INT(bc_x509_verify_issued_by(x, ca, fake_now, &err), BC_OK);
	CHECK_EQ_INT(bc_x509_verify_issued_by(x, ca, fake_now - 400, &err), BC_ERR_CRYPTO);
	CHECK_EQ_INT(bc_x509_verify_issued_by(x, ca, fake_now + 31 * 86400, &err), BC_ERR_CRYPTO);
	CHECK_EQ_INT(bc_x509_verify_issued_by(x, other, fake_now, &err), BC_ERR_CRYPTO);
	/* the key belongs to the certificate and is PKCS#8 */
	CHECK(strstr(key.data, "-----BEGIN PRIVATE KEY-----") == key.data);
	struct bc_jwk *k = NULL;
	CHECK(bc_jwk_from_pem(&k, key.data, key.len, &err) == BC_OK);
	CHECK(k && X509_check_private_key(x, bc_jwk_pkey(k)) == 1);
	bc_jwk_free(k);

	/* independent check: openssl verify, as a TLS server certificate, at the fake time */
	if (have_openssl()) {
		char p1[600], p2[600], cmd[2048];
		path_in(p1, sizeof(p1), "srv-ca/ca.pem");
		path_in(p2, sizeof(p2), "leaf.pem");
		size_t leaf_len = (size_t)(second - cert.data);
		CHECK(bc_write_file_atomic(p2, cert.data, leaf_len, 0600, NULL) == BC_OK);
		snprintf(cmd, sizeof(cmd),
			 "openssl verify -attime %lld -purpose sslserver -x509_strict -CAfile %s %s >/dev/null 2>&1",
			 (long long)fake_now, p1, p2);
		CHECK_EQ_INT(system(cmd), 0);
		snprintf(cmd, sizeof(cmd),
			 "openssl verify -attime %lld -purpose sslclient -CAfile %s %s >/dev/null 2>&1",
			 (long long)fake_now, p1, p2);
		CHECK(system(cmd) != 0);
	}
	X509_free(x);

	/* bad names, lifetimes */
	const char *bad[] = {"a b", "foo/bar", "", "*.*.x", "a..b", "x.*.y", "-", "a-.b", "foo,DNS:evil.com", ".x", "x."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t before = cert.len;
		CHECK_EQ_INT(bc_ca_issue_server(ca, &bad[i], 1, 30, &cert, &key, &err), BC_ERR_INVALID);
		CHECK_EQ_INT(cert.len, before);
	}
	CHECK_EQ_INT(bc_ca_issue_server(ca, names, 0, 30, &cert, &key, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_ca_issue_server(ca, names, 1, 0, &cert, &key, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_ca_issue_server(ca, names, 1, 100000, &cert, &key, &err), BC_ERR_INVALID);
	bc_buf_release(&cert);
	bc_buf_wipe(&key);
	bc_ca_free(ca);
	bc_ca_free(other);
}

static void csr_round_trip(struct bc_ca *ca, const char *kty, int bits)
{
	struct bc_jwk *k = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_jwk_generate(&k, kty, bits, &err) == BC_OK);
	struct bc_buf csr, cert;
	bc_buf_init(&csr, 0);
	bc_buf_init(&cert, 0);
	CHECK(bc_csr_create(k, "requested-cn", &csr, &err) == BC_OK);
	CHECK(strstr(csr.data, "-----BEGIN CERTIFICATE REQUEST-----") == csr.data);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, csr.data, csr.len, "11111111-2222-3333-4444-555555555555", 3600, &cert, &err),
		     BC_OK);
	X509 *x = first_cert(&cert);
	REQUIRE(x);
	char cn[128] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "11111111-2222-3333-4444-555555555555");
	CHECK(X509_check_private_key(x, bc_jwk_pkey(k)) == 1);
	CHECK(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	CHECK(!(X509_get_extended_key_usage(x) & XKU_SSL_SERVER));
	CHECK(X509_check_ca(x) == 0);
	CHECK_EQ_INT(bc_x509_verify_issued_by(x, ca, bc_now(), &err), BC_OK);
	int64_t nb, na;
	CHECK(bc_x509_validity(x, &nb, &na, &err) == BC_OK);
	CHECK(na - nb == 3600 + 300);
	/* the certified key is usable through jose: a JWK from the cert PEM has the same thumbprint */
	struct bc_jwk *fromcert = NULL;
	char t1[44], t2[44];
	CHECK(bc_jwk_from_pem(&fromcert, cert.data, cert.len, &err) == BC_OK);
	CHECK(fromcert && !bc_jwk_is_private(fromcert) && bc_jwk_thumbprint(fromcert, t1, NULL) == BC_OK &&
	      bc_jwk_thumbprint(k, t2, NULL) == BC_OK && strcmp(t1, t2) == 0);
	bc_jwk_free(fromcert);
	X509_free(x);
	if (have_openssl()) {
		char p[600], cmd[1024];
		path_in(p, sizeof(p), "req.pem");
		CHECK(bc_write_file_atomic(p, csr.data, csr.len, 0600, NULL) == BC_OK);
		snprintf(cmd, sizeof(cmd), "openssl req -verify -noout -in %s >/dev/null 2>&1", p);
		CHECK_EQ_INT(system(cmd), 0);
	}

	/* a CSR whose signature does not match: flip a character in the middle of the body */
	char *bad = strdup(csr.data);
	size_t mid = csr.len / 2;
	while (bad[mid] == '\n' || bad[mid] == '-')
		mid++;
	bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
	bc_buf_reset(&cert);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, bad, strlen(bad), "x", 3600, &cert, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(cert.len, 0);
	free(bad);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, csr.data, csr.len, "", 3600, &cert, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, csr.data, csr.len, "x", 0, &cert, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, "junk", 4, "x", 10, &cert, &err), BC_ERR_INVALID);
	bc_buf_release(&csr);
	bc_buf_release(&cert);
	bc_jwk_free(k);
}

TEST(csr_round_trip_rsa_ec)
{
	struct bc_ca *ca = test_ca("csr-ca");
	REQUIRE(ca);
	csr_round_trip(ca, "EC", 256);
	csr_round_trip(ca, "EC", 384);
	csr_round_trip(ca, "RSA", 2048);
	/* a public key cannot make a CSR; nor can a long CN */
	struct bc_jwk *k = NULL;
	REQUIRE(bc_jwk_generate(&k, "EC", 256, NULL) == BC_OK);
	json_t *pub = bc_jwk_to_jansson(k, false);
	struct bc_jwk *kp = NULL;
	REQUIRE(pub && bc_jwk_from_jansson(&kp, pub, NULL) == BC_OK);
	struct bc_buf out;
	bc_buf_init(&out, 0);
	CHECK_EQ_INT(bc_csr_create(kp, "x", &out, NULL), BC_ERR_INVALID);
	char longcn[80];
	memset(longcn, 'a', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = '\0';
	CHECK_EQ_INT(bc_csr_create(k, longcn, &out, NULL), BC_ERR_INVALID);
	CHECK_EQ_INT(out.len, 0);
	/* a CSR for a 1024-bit RSA key is refused */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	X509_REQ *req = X509_REQ_new();
	REQUIRE(small && req);
	X509_REQ_set_pubkey(req, small);
	REQUIRE(X509_REQ_sign(req, small, EVP_sha256()) > 0);
	BIO *bio = BIO_new(BIO_s_mem());
	REQUIRE(bio && PEM_write_bio_X509_REQ(bio, req) == 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	CHECK_EQ_INT(bc_ca_sign_csr(ca, data, (size_t)n, "x", 10, &out, NULL), BC_ERR_INVALID);
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(small);
	bc_buf_release(&out);
	json_decref(pub);
	bc_jwk_free(kp);
	bc_jwk_free(k);
	bc_ca_free(ca);
}

TEST(thumbprints)
{
	struct bc_ca *ca = test_ca("tp-ca");
	REQUIRE(ca);
	X509 *x = bc_ca_cert(ca);
	char x5t[28], x5t256[44], hex[41];
	struct bc_error err = {0};
	REQUIRE(bc_x509_thumbprints(x, x5t, x5t256, &err) == BC_OK);
	REQUIRE(bc_x509_thumbprint_hex(x, hex, &err) == BC_OK);
	CHECK_EQ_INT(strlen(x5t), 27);
	CHECK_EQ_INT(strlen(x5t256), 43);
	CHECK_EQ_INT(strlen(hex), 40);
	/* recompute from the DER */
	unsigned char *der = NULL;
	int dlen = i2d_X509(x, &der);
	REQUIRE(dlen > 0);
	uint8_t s1[20], s256[32];
	REQUIRE(EVP_Digest(der, (size_t)dlen, s1, NULL, EVP_sha1(), NULL) == 1);
	REQUIRE(EVP_Digest(der, (size_t)dlen, s256, NULL, EVP_sha256(), NULL) == 1);
	char *e1 = bc_b64url_encode_str(s1, 20), *e2 = bc_b64url_encode_str(s256, 32);
	CHECK_STR(x5t, e1);
	CHECK_STR(x5t256, e2);
	free(e1);
	free(e2);
	for (int i = 0; i < 40; i++)
		CHECK(hex[i] >= '0' && (hex[i] <= '9' || (hex[i] >= 'A' && hex[i] <= 'F')));
	/* openssl's fingerprint, colons removed, is the hex thumbprint */
	if (have_openssl()) {
		char cmd[1024], line[256] = "";
		snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha1 -in %s/tp-ca/ca.pem | sed 's/.*=//; s/://g'",
			 tmpdir);
		FILE *f = popen(cmd, "r");
		REQUIRE(f);
		CHECK(fgets(line, sizeof(line), f) != NULL);
		pclose(f);
		line[strcspn(line, "\n")] = '\0';
		CHECK_STR(line, hex);
	}
	/* the same certificate through base64 DER (as in x5c) */
	struct bc_buf b64;
	bc_buf_init(&b64, 0);
	REQUIRE(bc_b64_encode(der, (size_t)dlen, &b64) == BC_OK);
	X509 *y = NULL;
	CHECK_EQ_INT(bc_x509_parse_der_b64(b64.data, &y, &err), BC_OK);
	char y5t[28], y5t256[44];
	CHECK(y && bc_x509_thumbprints(y, y5t, y5t256, &err) == BC_OK && strcmp(y5t, x5t) == 0 &&
	      strcmp(y5t256, x5t256) == 0);
	X509_free(y);
	/* trailing bytes after the DER are refused */
	bc_buf_reset(&b64);
	unsigned char *longer = malloc((size_t)dlen + 3);
	memcpy(longer, der, (size_t)dlen);
	memcpy(longer + dlen, "abc", 3);
	REQUIRE(bc_b64_encode(longer, (size_t)dlen + 3, &b64) == BC_OK);
	y = NULL;
	CHECK_EQ_INT(bc_x509_parse_der_b64(b64.data, &y, &err), BC_ERR_INVALID);
	CHECK(y == NULL);
	free(longer);
	bc_buf_release(&b64);
	OPENSSL_free(der);
	bc_ca_free(ca);
}

TEST(bad_pem_rejected)
{
	struct bc_ca *ca = test_ca("bad-ca");
	REQUIRE(ca);
	const char *pem = bc_ca_cert_pem(ca);
	X509 *x = NULL;
	struct bc_error err = {0};
	CHECK_EQ_INT(bc_x509_parse_pem("", 0, &x, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_x509_parse_pem("junk", 4, &x, &err), BC_ERR_INVALID);
	const char *empty = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	CHECK_EQ_INT(bc_x509_parse_pem(empty, strlen(empty), &x, &err), BC_ERR_INVALID);
	const char *garbage = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
	CHECK_EQ_INT(bc_x509_parse_pem(garbage, strlen(garbage), &x, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_x509_parse_pem(pem, strlen(pem) / 2, &x, &err), BC_ERR_INVALID); /* truncated */
	char *big = malloc(BC_LIMIT_CERT_BYTES + 2);
	memset(big, 'A', BC_LIMIT_CERT_BYTES + 1);
	big[BC_LIMIT_CERT_BYTES + 1] = '\0';
	CHECK_EQ_INT(bc_x509_parse_pem(big, strlen(big), &x, &err), BC_ERR_LIMIT);
	CHECK_EQ_INT(bc_x509_parse_der_b64(big, &x, &err), BC_ERR_LIMIT);
	free(big);
	CHECK(x == NULL);
	CHECK_EQ_INT(bc_x509_parse_der_b64("", &x, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_x509_parse_der_b64("not base64!", &x, &err), BC_ERR_INVALID);
	CHECK_EQ_INT(bc_x509_parse_der_b64("AAAA", &x, &err), BC_ERR_INVALID);
	CHECK(x == NULL);
	/* the good one still parses, with text around it */
	struct bc_buf b;
	bc_buf_init(&b, 0);
	CHECK(bc_buf_appendf(&b, "subject=whatever\n%s", pem) == BC_OK);
	CHECK_EQ_INT(bc_x509_parse_pem(b.data, b.len, &x, &err), BC_OK);
	X509_free(x);
	bc_buf_release(&b);
	bc_ca_free(ca);
}

TEST(cleanup)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	CHECK_EQ_INT(system(cmd), 0);
}

static void setup(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
}

#define main test_main
TEST_MAIN(T(ca_create_then_reload), T(server_cert), T(csr_round_trip_rsa_ec), T(thumbprints), T(bad_pem_rejected),
	  T(cleanup))
#undef main

int main(int argc, char **argv)
{
	setup();
	return test_main(argc, argv);
}
