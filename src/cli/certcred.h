/* A service principal's certificate credential on the command line (badge login --certificate):
 * a PEM file holding the certificate and its private key (as az takes it), and the RFC 7523
 * client assertion signed with that key (header x5t#S256 of the certificate, aud = the token
 * endpoint, iss = sub = the client id, a fresh jti, ten minutes of life). */
#ifndef BADGE_CLI_CERTCRED_H
#define BADGE_CLI_CERTCRED_H

#include "core/buf.h"
#include "core/error.h"

#define CLI_ASSERTION_LIFETIME_S 600

/* Reads pem_file, checks that the key belongs to the certificate, and appends the compact JWS
 * to out. */
int cli_cert_assertion(const char *pem_file, const char *client_id, const char *token_url, struct bc_buf *out,
		       struct bc_error *err) BC_MUST_CHECK;

#endif
