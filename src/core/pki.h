/* X.509 over OpenSSL: the local certificate authority, certificates for TLS, hosts and
 * identities, CSRs, thumbprints. */
#ifndef BC_PKI_H
#define BC_PKI_H

#include <openssl/x509.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/jose.h"

struct bc_ca; /* opaque: CA key + certificate */

/* Loads DIR/ca.key and DIR/ca.pem, or creates them (EC P-256 CA, 10 years, key file 0600) on
 * first start. A key file readable by group or others, a certificate without its key, or a key
 * that does not match the certificate is BC_ERR_INVALID (nothing is overwritten). */
int bc_ca_load_or_create(const char *dir, const char *common_name, struct bc_ca **out, struct bc_error *err) BC_MUST_CHECK;
const char *bc_ca_cert_pem(const struct bc_ca *ca); /* borrowed */
X509 *bc_ca_cert(const struct bc_ca *ca);            /* borrowed */
void bc_ca_free(struct bc_ca *ca);

/* Issues a TLS server certificate for names (DNS names, wildcards, IP literals) to the key in
 * out_key_pem (generated here), valid for days. Appends PEMs (leaf cert then CA cert) to
 * out_cert_pem, the private key to out_key_pem. */
int bc_ca_issue_server(struct bc_ca *ca, const char *const *names, size_t n, int days,
		       struct bc_buf *out_cert_pem, struct bc_buf *out_key_pem, struct bc_error *err) BC_MUST_CHECK;
/* Issues a client certificate for the public key of a PEM CSR (the CSR's signature is checked;
 * its subject is ignored and replaced by CN=subject_cn). Lifetime in seconds, capped by the
 * CA's own validity. Appends the leaf certificate PEM only. */
int bc_ca_sign_csr(struct bc_ca *ca, const char *csr_pem, size_t csr_len, const char *subject_cn,
		   int64_t lifetime_s, struct bc_buf *out_cert_pem, struct bc_error *err) BC_MUST_CHECK;

/* Creates a CSR (PEM) for key with CN=cn. */
int bc_csr_create(const struct bc_jwk *key, const char *cn, struct bc_buf *out_pem, struct bc_error *err) BC_MUST_CHECK;

/* Parses one PEM certificate (bounded by BC_LIMIT_CERT_BYTES). Caller X509_free()s. */
int bc_x509_parse_pem(const char *pem, size_t len, X509 **out, struct bc_error *err) BC_MUST_CHECK;
/* Parses base64 DER (as in an x5c member). */
int bc_x509_parse_der_b64(const char *b64, X509 **out, struct bc_error *err) BC_MUST_CHECK;
/* x5t (SHA-1, base64url, 27 chars) and x5t#S256 (SHA-256, base64url, 43 chars). */
int bc_x509_thumbprints(X509 *cert, char x5t[28], char x5t256[44], struct bc_error *err) BC_MUST_CHECK;
/* SHA-1 thumbprint as 40 upper-case hex chars (as Azure shows a certificate's thumbprint). */
int bc_x509_thumbprint_hex(X509 *cert, char out[41], struct bc_error *err) BC_MUST_CHECK;
int bc_x509_validity(X509 *cert, int64_t *not_before, int64_t *not_after, struct bc_error *err) BC_MUST_CHECK;
/* Verifies that cert was issued by ca and is valid at now; BC_ERR_CRYPTO when it is not. */
int bc_x509_verify_issued_by(X509 *cert, const struct bc_ca *ca, int64_t now, struct bc_error *err) BC_MUST_CHECK;

#endif
