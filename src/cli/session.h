/* How a command reaches a badge server: the server URL, the CA to trust, and the credential to
 * get tokens with. Sources, first match wins:
 *   1. flags --server URL, --ca-file FILE, --data-dir DIR (a server's data dir: env + admin.json)
 *   2. environment: BADGE_URL, BADGE_CA_FILE, BADGE_ADMIN_FILE (an admin.json), BADGE_DATA_DIR
 *   3. the profile written by `badge login` ($BADGE_CONFIG_DIR or ~/.badge, profile.json) */
#ifndef BADGE_CLI_SESSION_H
#define BADGE_CLI_SESSION_H

#include <jansson.h>
#include "core/buf.h"
#include "core/error.h"

struct cli_session {
	char server[512];      /* https://host:port, no trailing slash */
	char ca_file[4096];
	char tenant_id[64];
	char subscription_id[64];
	char client_id[64];
	char client_secret[256];  /* wiped on release */
	char cert_file[4096];     /* or a PEM certificate + key: tokens by client assertion (badge login --certificate) */
	char management_resource[512];
	char token[16384];     /* cached management token */
};

/* Consumes the session flags it knows from argv (compacting argv, updating *argc). */
int cli_session_init(struct cli_session *s, int *argc, char **argv, struct bc_error *err) BC_MUST_CHECK;
void cli_session_release(struct cli_session *s);
/* A token for resource (client credentials with the session's secret, or an assertion signed
 * with the certificate's key when cert_file is set). */
int cli_session_token(struct cli_session *s, const char *resource, struct bc_buf *out, struct bc_error *err) BC_MUST_CHECK;
/* Calls the server with a management token: method, path (with query), optional JSON body.
 * *status gets the HTTP status, *out the parsed JSON body (NULL when empty). */
int cli_session_call(struct cli_session *s, const char *method, const char *path, const json_t *body, long *status,
		     json_t **out, struct bc_error *err) BC_MUST_CHECK;
/* Writes the profile (0600) so later commands need no flags. */
int cli_session_save(const struct cli_session *s, struct bc_error *err) BC_MUST_CHECK;
/* Prints an {"error":{"code","message"}} body (or the status) as "badge: CODE: message"; returns 1. */
int cli_session_fail(long status, const json_t *body);

#endif
