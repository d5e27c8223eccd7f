/* badge directory: tenants, principals, credentials and signing keys, through the directory's
 * administration API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/session.h"
#include "core/json.h"
#include "core/util.h"

#define API "/badge/directory/v1"

static void usage(FILE *f)
{
	fputs("usage: badge directory <command> [options] [--server URL --ca-file FILE | --data-dir DIR]\n\n"
	      "  tenant list\n"
	      "  principal create --display-name NAME\n"
	      "  principal list [--type Application|ManagedIdentity]\n"
	      "  principal show --id ID              (object id or client id)\n"
	      "  principal delete --id ID\n"
	      "  credential list --id ID\n"
	      "  credential add-secret --id ID [--end-date EPOCH]   (prints the secret once)\n"
	      "  credential add-cert --id ID --cert FILE.pem\n"
	      "  credential remove --id ID --credential-id CID\n"
	      "  keys list\n"
	      "  audit [--since EPOCH_MS] [--limit N]   (token requests, issued or refused)\n"
	      "  rotate-keys [--activate] [--tenant ID]\n"
	      "      publishes a new signing key, which signs once the pre-publication period has passed;\n"
	      "      --activate makes a published key (or a new one) sign now\n",
	      f);
}

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static bool flag(int argc, char **argv, const char *name)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static int call(struct cli_session *s, const char *method, const char *path, json_t *body, int want)
{
	long status = 0;
	json_t *out = NULL;
	struct bc_error err;
	int rc = cli_session_call(s, method, path, body, &status, &out, &err);
	json_decref(body);
	if (rc)
		return cli_fail("%s", err.msg);
	if (status != want && !(want == 200 && status == 201)) {
		rc = cli_session_fail(status, out);
		json_decref(out);
		return rc;
	}
	if (out)
		cli_print_json(out);
	json_decref(out);
	return 0;
}

static int need_id(const char *id)
{
	if (!id)
		return cli_fail("--id is required");
	if (!bc_is_uuid(id))
		return cli_fail("--id must be an object id or client id (a GUID), not '%s'", id);
	return 0;
}

int cli_directory_main(int argc, char **argv)
{
	struct cli_session s;
	struct bc_error err;
	char path[512];
	if (argc < 2 || flag(argc, argv, "-h") || flag(argc, argv, "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (cli_session_init(&s, &argc, argv, &err))
		return cli_fail("%s", err.msg);
	const char *what = argv[1], *verb = argc > 2 ? argv[2] : "", *id = opt(argc, argv, "--id");
	int rc;
	if (!strcmp(what, "tenant") && !strcmp(verb, "list")) {
		rc = call(&s, "GET", API "/tenants", NULL, 200);
	} else if (!strcmp(what, "principal") && !strcmp(verb, "create")) {
		const char *name = opt(argc, argv, "--display-name");
		rc = name ? call(&s, "POST", API "/principals", json_pack("{s:s}", "displayName", name), 201)
			  : cli_fail("--display-name is required");
	} else if (!strcmp(what, "principal") && !strcmp(verb, "list")) {
		const char *type = opt(argc, argv, "--type");
		if (type && strcmp(type, "Application") && strcmp(type, "ManagedIdentity"))
			rc = cli_fail("--type must be Application or ManagedIdentity");
		else {
			snprintf(path, sizeof(path), API "/principals%s%s", type ? "?type=" : "", type ? type : "");
			rc = call(&s, "GET", path, NULL, 200);
		}
	} else if (!strcmp(what, "principal") && (!strcmp(verb, "show") || !strcmp(verb, "delete"))) {
		if (!(rc = need_id(id))) {
			snprintf(path, sizeof(path), API "/principals/%s", id);
			rc = !strcmp(verb, "show") ? call(&s, "GET", path, NULL, 200) : call(&s, "DELETE", path, NULL, 204);
		}
	} else if (!strcmp(what, "credential") && !strcmp(verb, "list")) {
		if (!(rc = need_id(id))) {
			snprintf(path, sizeof(path), API "/principals/%s/credentials", id);
			rc = call(&s, "GET", path, NULL, 200);
		}
	} else if (!strcmp(what, "credential") && !strcmp(verb, "add-secret")) {
		if (!(rc = need_id(id))) {
			const char *end = opt(argc, argv, "--end-date");
			snprintf(path, sizeof(path), API "/principals/%s/secrets", id);
			json_t *b = json_object();
			if (end)
				json_object_set_new(b, "endDateTime", json_integer(strtoll(end, NULL, 10)));
			rc = call(&s, "POST", path, b, 201);
		}
	} else if (!strcmp(what, "credential") && !strcmp(verb, "add-cert")) {
		const char *file = opt(argc, argv, "--cert");
		char *pem = NULL;
		size_t len;
		if ((rc = need_id(id)))
			;
		else if (!file)
			rc = cli_fail("--cert FILE is required");
		else if (bc_read_file(file, 65536, &pem, &len, &err))
			rc = cli_fail("%s", err.msg);
		else {
			snprintf(path, sizeof(path), API "/principals/%s/certificates", id);
			rc = call(&s, "POST", path, json_pack("{s:s}", "certificate", pem), 201);
		}
		free(pem);
	} else if (!strcmp(what, "credential") && !strcmp(verb, "remove")) {
		const char *cid = opt(argc, argv, "--credential-id");
		if ((rc = need_id(id)))
			;
		else if (!cid || !bc_is_uuid(cid))
			rc = cli_fail("--credential-id (a GUID) is required");
		else {
			snprintf(path, sizeof(path), API "/principals/%s/credentials/%s", id, cid);
			rc = call(&s, "DELETE", path, NULL, 204);
		}
	} else if (!strcmp(what, "audit")) {
		const char *since = opt(argc, argv, "--since"), *limit = opt(argc, argv, "--limit");
		snprintf(path, sizeof(path), API "/audit?since=%lld&limit=%lld", since ? strtoll(since, NULL, 10) : 0LL,
			 limit ? strtoll(limit, NULL, 10) : 1000LL);
		rc = call(&s, "GET", path, NULL, 200);
	} else if (!strcmp(what, "keys") && !strcmp(verb, "list")) {
		rc = call(&s, "GET", API "/keys", NULL, 200);
	} else if (!strcmp(what, "rotate-keys")) {
		json_t *b = json_pack("{s:b}", "activate", flag(argc, argv, "--activate"));
		const char *t = opt(argc, argv, "--tenant");
		if (t)
			json_object_set_new(b, "tenantId", json_string(t));
		rc = call(&s, "POST", API "/keys/rotate", b, 200);
	} else {
		usage(stderr);
		rc = 2;
	}
	cli_session_release(&s);
	return rc;
}
