/* badge token: a token as this machine's managed identity, through libbadge (the endpoint found
 * as the Azure SDKs find it: App Service IDENTITY_ENDPOINT + IDENTITY_HEADER, pod identity's
 * AZURE_POD_IDENTITY_AUTHORITY_HOST, else IMDS). Prints {"accessToken", "expiresOn", "resource",
 * "tokenType", "source"} as JSON, or the bare token with --raw (for scripts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "badge/badge.h"
#include "cli/cli.h"

/* badge's resource manager under the default domain; BADGE_MANAGEMENT_RESOURCE (the server's env
 * file) names it for other domains. */
#define DEFAULT_RESOURCE "https://management.badge.internal/"

static const char *default_resource(void)
{
	const char *r = getenv("BADGE_MANAGEMENT_RESOURCE");
	return r && *r ? r : DEFAULT_RESOURCE;
}

static int usage(FILE *f)
{
	fprintf(f,
		"usage: badge token [--resource R] [--client-id ID | --object-id ID | --resource-id ARM_ID]\n"
		"                   [--ca-file F] [--raw]\n"
		"  a token as this machine's managed identity (system-assigned unless an id is given);\n"
		"  --resource defaults to $BADGE_MANAGEMENT_RESOURCE, else %s\n",
		DEFAULT_RESOURCE);
	return f == stderr ? 2 : 0;
}

struct token_opts {
	const char *resource, *id, *ca_file;
	enum badge_identity_kind kind;
	bool raw;
};

static int parse(int argc, char **argv, struct token_opts *o)
{
	static const struct {
		const char *flag;
		enum badge_identity_kind kind;
	} ids[] = {{"--client-id", BADGE_IDENTITY_CLIENT_ID},
		   {"--object-id", BADGE_IDENTITY_OBJECT_ID},
		   {"--resource-id", BADGE_IDENTITY_RESOURCE_ID}};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool takes = i + 1 < argc;
		bool matched = false;
		for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
			if (strcmp(a, ids[k].flag) != 0)
				continue;
			if (!takes)
				return cli_fail("%s needs a value", a);
			if (o->id)
				return cli_fail(
					"give at most one of --client-id, --object-id, --resource-id");
			o->kind = ids[k].kind;
			o->id = argv[++i];
			matched = true;
		}
		if (matched)
			continue;
		if (!strcmp(a, "--resource") && takes)
			o->resource = argv[++i];
		else if (!strcmp(a, "--ca-file") && takes)
			o->ca_file = argv[++i];
		else if (!strcmp(a, "--raw"))
			o->raw = true;
		else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return usage(stdout) - 1; /* -1: stop, exit 0 */
		else
			return cli_fail("unknown argument '%s'", a);
	}
	return 0;
}

int cli_token_main(int argc, char **argv)
{
	struct token_opts o = {.resource = default_resource(), .kind = BADGE_IDENTITY_SYSTEM};
	int prc = parse(argc, argv, &o);
	if (prc == -1)
		return 0;
	if (prc)
		return 2;
	struct badge_credential *cred = NULL;
	char *tok = NULL, msg[256];
	int64_t exp = 0;
	int rc = badge_credential_new_managed_identity(&cred, o.kind, o.id);
	if (rc != BADGE_OK)
		return cli_fail("cannot make a managed-identity credential: %s", badge_status_name(rc));
	if (o.ca_file && (rc = badge_credential_set_ca_file(cred, o.ca_file)) != BADGE_OK) {
		badge_credential_free(cred);
		return cli_fail("--ca-file: %s", badge_status_name(rc));
	}
	rc = badge_credential_get_token(cred, o.resource, &tok, &exp);
	if (rc != BADGE_OK) {
		badge_credential_errmsg(cred, msg, sizeof(msg));
		badge_credential_free(cred);
		return cli_fail("%s", msg);
	}
	if (o.raw) {
		puts(tok);
	} else {
		json_t *j = json_pack("{s:s,s:I,s:s,s:s,s:s}", "accessToken", tok, "expiresOn",
				      (json_int_t)exp, "resource", o.resource, "tokenType", "Bearer",
				      "source", badge_credential_kind(cred));
		if (j)
			cli_print_json(j);
		json_decref(j);
	}
	badge_free_secret(tok);
	badge_credential_free(cred);
	return 0;
}
