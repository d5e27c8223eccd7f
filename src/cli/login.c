/* badge login: signs in with a service principal's secret (--username CLIENT_ID --password
 * SECRET --tenant T) or as the bootstrap admin of a server's data dir (--data-dir DIR), checks
 * that a management token can be had, and saves the profile for later commands. */
#include <stdio.h>
#include <string.h>

#include "cli/armcli.h"
#include "cli/cli.h"
#include "core/util.h"

int cli_login_main(int argc, char **argv)
{
	struct armcli c;
	struct bc_error err = {0};
	struct bc_buf tok = {0};
	int rc;
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: badge login [--server URL] [--ca-file FILE] (--data-dir DIR | --service-principal "
				"--username CLIENT_ID --password SECRET --tenant TENANT) [--subscription SUB]\n");
		return 2;
	}
	if ((rc = armcli_init(&c, argc, argv)))
		return rc;
	const char *u = armcli_opt(&c, "--username", "-u"), *p = armcli_opt(&c, "--password", "-p");
	const char *t = armcli_opt(&c, "--tenant", "-t"), *s = armcli_opt(&c, "--subscription", NULL);
	if (armcli_opt(&c, "--certificate", NULL)) {
		rc = cli_fail("certificate login is not supported yet: use --password");
		goto out;
	}
	if (u)
		snprintf(c.s.client_id, sizeof(c.s.client_id), "%s", u);
	if (p)
		snprintf(c.s.client_secret, sizeof(c.s.client_secret), "%s", p);
	if (t)
		snprintf(c.s.tenant_id, sizeof(c.s.tenant_id), "%s", t);
	if (s)
		snprintf(c.s.subscription_id, sizeof(c.s.subscription_id), "%s", s);
	if (!c.s.server[0] || !c.s.client_id[0] || !c.s.client_secret[0] || !c.s.tenant_id[0]) {
		rc = cli_fail("login needs a server and a credential: --data-dir DIR, or --server URL with --username, "
			      "--password and --tenant");
		goto out;
	}
	if (cli_session_token(&c.s, c.s.management_resource, &tok, &err) != BC_OK) {
		rc = cli_fail("login failed: %s", err.msg);
		goto out;
	}
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
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "server", c.s.server, "tenantId", c.s.tenant_id, "subscriptionId",
			      c.s.subscription_id, "user", c.s.client_id);
	cli_print_json(o);
	json_decref(o);
out:
	bc_buf_wipe(&tok);
	armcli_release(&c);
	return rc;
}
