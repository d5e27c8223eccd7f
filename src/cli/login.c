/* badge login: signs in with a service principal's secret (--username CLIENT_ID --password
 * SECRET --tenant T), its certificate (--username CLIENT_ID --certificate PEM --tenant T, the PEM
 * holding the certificate and its private key; tokens are then had with a client assertion
 * signed by that key), or as the bootstrap admin of a server's data dir (--data-dir DIR); checks
 * that a management token can be had, and saves the profile for later commands. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"
#include "core/util.h"

/* Like armcli_init, but a missing server or credential is what login is about to supply. */
static int login_init(struct armcli *c, int argc, char **argv)
{
	struct bc_error err = {0};
	memset(c, 0, sizeof(*c));
	if (cli_session_init(&c->s, &argc, argv, &err) != BC_OK &&
	    (err.status != BC_ERR_INVALID || (strncmp(err.msg, "no server", 9) && strncmp(err.msg, "no credential", 13))))
		return cli_fail("%s", err.msg);
	c->argc = argc;
	c->argv = argv;
	const char *o = armcli_opt(c, "--output", "-o");
	c->table = o && !strcmp(o, "table");
	if (!c->s.management_resource[0]) {
		const char *r = getenv("BADGE_MANAGEMENT_RESOURCE");
		snprintf(c->s.management_resource, sizeof(c->s.management_resource), "%s",
			 r && *r ? r : "https://management.badge.internal/");
	}
	size_t l = strlen(c->s.server);
	while (l > 0 && c->s.server[l - 1] == '/')
		c->s.server[--l] = 0;
	return 0;
}

int cli_login_main(int argc, char **argv)
{
	struct armcli c;
	struct bc_error err = {0};
	struct bc_buf tok = {0};
	int rc;
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge login [--server URL] [--ca-file FILE] (--data-dir DIR | --service-principal "
				"--username CLIENT_ID (--password SECRET | --certificate PEM) --tenant TENANT) "
				"[--subscription SUB]\n"
				"  PEM: the certificate and its private key, in one file (as az takes it)\n");
		return 2;
	}
	if ((rc = login_init(&c, argc, argv)))
		return rc;
	const char *u = armcli_opt(&c, "--username", "-u"), *p = armcli_opt(&c, "--password", "-p");
	const char *t = armcli_opt(&c, "--tenant", "-t"), *s = armcli_opt(&c, "--subscription", NULL);
	const char *cert = armcli_opt(&c, "--certificate", NULL);
	if (p && cert) {
		rc = cli_fail("give --password or --certificate, not both");
		goto out;
	}
	if (u)
		snprintf(c.s.client_id, sizeof(c.s.client_id), "%s", u);
	if (p) {
		snprintf(c.s.client_secret, sizeof(c.s.client_secret), "%s", p);
		c.s.cert_file[0] = 0;
	}
	if (cert) {
		char abs[PATH_MAX];
		if (!realpath(cert, abs)) {
			rc = cli_fail("cannot read the certificate file '%s'", cert);
			goto out;
		}
		snprintf(c.s.cert_file, sizeof(c.s.cert_file), "%s", abs);
		bc_wipe(c.s.client_secret, sizeof(c.s.client_secret));
	}
	if (t)
		snprintf(c.s.tenant_id, sizeof(c.s.tenant_id), "%s", t);
	if (s)
		snprintf(c.s.subscription_id, sizeof(c.s.subscription_id), "%s", s);
	if (!c.s.server[0] || !c.s.client_id[0] || (!c.s.client_secret[0] && !c.s.cert_file[0]) || !c.s.tenant_id[0]) {
		rc = cli_fail("login needs a server and a credential: --data-dir DIR, or --server URL with --username, "
			      "--password or --certificate, and --tenant");
		goto out;
	}
	if (cli_session_token(&c.s, c.s.management_resource, &tok, &err) != BC_OK) {
		rc = cli_fail("login failed: %s", err.msg);
		goto out;
	}
	if (tok.len < sizeof(c.s.token))
		memcpy(c.s.token, tok.data, tok.len + 1);
	if (!c.s.subscription_id[0]) {
		json_t *subs = NULL;
		if ((rc = armcli_get(&c, "GET", "/subscriptions?api-version=2019-11-01", NULL, &subs)))
			goto out;
		const char *id = json_string_value(
			json_object_get(json_array_get(json_object_get(subs, "value"), 0), "subscriptionId"));
		if (id)
			snprintf(c.s.subscription_id, sizeof(c.s.subscription_id), "%s", id);
		json_decref(subs);
	}
	if (cli_session_save(&c.s, &err) != BC_OK) {
		rc = cli_fail("%s", err.msg);
		goto out;
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "server", c.s.server, "tenantId", c.s.tenant_id, "subscriptionId",
			      c.s.subscription_id, "user", c.s.client_id, "credential",
			      c.s.cert_file[0] ? "certificate" : "secret");
	cli_print_json(o);
	json_decref(o);
out:
	bc_buf_wipe(&tok);
	armcli_release(&c);
	return rc;
}
