#include "cli/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/certcred.h"
#include "cli/cli.h"
#include "core/httpc.h"
#include "core/json.h"
#include "core/util.h"

static void copy(char *dst, size_t n, const char *src)
{
	if (src)
		snprintf(dst, n, "%s", src);
}

static int load_json_file(const char *path, json_t **out, struct bc_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = bc_read_file(path, 1024 * 1024, &text, &len, err);
	if (rc)
		return rc;
	rc = bc_json_parse(text, len, 0, out, err);
	bc_wipe(text, len);
	free(text);
	if (rc)
		return bc_error_wrap(err, "%s", path);
	return BC_OK;
}

static void config_dir(char *out, size_t n)
{
	const char *d = getenv("BADGE_CONFIG_DIR");
	if (d && *d)
		snprintf(out, n, "%s", d);
	else
		snprintf(out, n, "%s/.badge", getenv("HOME") ? getenv("HOME") : ".");
}

static void take_admin(struct cli_session *s, const json_t *a)
{
	copy(s->tenant_id, sizeof(s->tenant_id), bc_json_str(a, "tenantId"));
	copy(s->subscription_id, sizeof(s->subscription_id), bc_json_str(a, "subscriptionId"));
	copy(s->client_id, sizeof(s->client_id), bc_json_str(a, "clientId"));
	copy(s->client_secret, sizeof(s->client_secret), bc_json_str(a, "clientSecret"));
	copy(s->cert_file, sizeof(s->cert_file), bc_json_str(a, "certificateFile"));
}

/* Reads KEY='value' lines of a server's env file. */
static void read_env_file(struct cli_session *s, const char *dir)
{
	char path[4200], *text = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%s/env", dir);
	if (bc_read_file(path, 65536, &text, &len, NULL))
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "export ", 7) == 0)
			line += 7;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		char *v = eq + 1;
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '\'' && v[vl - 1] == '\'') {
			v[vl - 1] = 0;
			v++;
		}
		if (!strcmp(line, "BADGE_URL") && !s->server[0])
			copy(s->server, sizeof(s->server), v);
		else if (!strcmp(line, "BADGE_CA_FILE") && !s->ca_file[0])
			copy(s->ca_file, sizeof(s->ca_file), v);
		else if (!strcmp(line, "BADGE_MANAGEMENT_RESOURCE"))
			copy(s->management_resource, sizeof(s->management_resource), v);
	}
	free(text);
}

int cli_session_init(struct cli_session *s, int *argc, char **argv, struct bc_error *err)
{
	memset(s, 0, sizeof(*s));
	const char *server = NULL, *ca = NULL, *data_dir = NULL;
	int w = 0;
	for (int i = 0; i < *argc; i++) {
		if (i + 1 < *argc && !strcmp(argv[i], "--server"))
			server = argv[++i];
		else if (i + 1 < *argc && !strcmp(argv[i], "--ca-file"))
			ca = argv[++i];
		else if (i + 1 < *argc && !strcmp(argv[i], "--data-dir"))
			data_dir = argv[++i];
		else
			argv[w++] = argv[i];
	}
	*argc = w;
	argv[w] = NULL;
	copy(s->server, sizeof(s->server), server ? server : getenv("BADGE_URL"));
	copy(s->ca_file, sizeof(s->ca_file), ca ? ca : getenv("BADGE_CA_FILE"));
	if (!data_dir)
		data_dir = getenv("BADGE_DATA_DIR");
	json_t *a = NULL;
	const char *admin = getenv("BADGE_ADMIN_FILE");
	char path[4200];
	if (data_dir) {
		read_env_file(s, data_dir);
		snprintf(path, sizeof(path), "%s/admin.json", data_dir);
		if (!admin)
			admin = path;
	}
	if (admin) {
		if (load_json_file(admin, &a, err))
			return bc_error_wrap(err, "cannot read the administrator credential");
		take_admin(s, a);
		json_decref(a);
	} else {
		char dir[4096];
		config_dir(dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/profile.json", dir);
		if (load_json_file(path, &a, NULL) == BC_OK) {
			if (!s->server[0])
				copy(s->server, sizeof(s->server), bc_json_str(a, "server"));
			if (!s->ca_file[0])
				copy(s->ca_file, sizeof(s->ca_file), bc_json_str(a, "caFile"));
			copy(s->management_resource, sizeof(s->management_resource), bc_json_str(a, "managementResource"));
			take_admin(s, a);
			json_decref(a);
		}
	}
	size_t l = strlen(s->server);
	while (l > 0 && s->server[l - 1] == '/')
		s->server[--l] = 0;
	if (!s->server[0])
		return bc_error_set(err, BC_ERR_INVALID,
				    "no server: run 'badge login', or give --server URL or --data-dir DIR (or BADGE_URL)");
	if (!s->client_id[0] || (!s->client_secret[0] && !s->cert_file[0]) || !s->tenant_id[0])
		return bc_error_set(err, BC_ERR_INVALID,
				    "no credential: run 'badge login', or give --data-dir DIR (or BADGE_ADMIN_FILE)");
	if (!s->management_resource[0]) {
		const char *r = getenv("BADGE_MANAGEMENT_RESOURCE");
		copy(s->management_resource, sizeof(s->management_resource),
		     r ? r : "https://management.badge.internal/");
	}
	return BC_OK;
}

void cli_session_release(struct cli_session *s)
{
	bc_wipe(s, sizeof(*s));
}

int cli_session_token(struct cli_session *s, const char *resource, struct bc_buf *out, struct bc_error *err)
{
	struct bc_buf form = {0}, url = {0};
	struct bc_httpc_res res;
	json_t *j = NULL;
	int rc;
	bc_httpc_res_init(&res);
	if ((rc = bc_buf_appendf(&url, "%s/%s/oauth2/v2.0/token", s->server, s->tenant_id)) ||
	    (rc = bc_buf_appends(&form, "grant_type=client_credentials&client_id=")) ||
	    (rc = bc_httpc_escape(s->client_id, &form)) || (rc = bc_buf_appends(&form, "&scope=")) ||
	    (rc = bc_httpc_escape(resource, &form)) || (rc = bc_buf_appends(&form, "%2F.default"))) {
		bc_error_set(err, rc, "out of memory");
		goto done;
	}
	if (s->cert_file[0]) {
		struct bc_buf jws = {0};
		if ((rc = cli_cert_assertion(s->cert_file, s->client_id, url.data, &jws, err)))
			goto done;
		rc = bc_buf_appends(&form, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-"
					   "bearer&client_assertion=");
		if (!rc)
			rc = bc_buf_appends(&form, jws.data);
		bc_buf_wipe(&jws);
	} else if (!(rc = bc_buf_appends(&form, "&client_secret="))) {
		rc = bc_httpc_escape(s->client_secret, &form);
	}
	if (rc) {
		bc_error_set(err, rc, "out of memory");
		goto done;
	}
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	struct bc_httpc_req req = {.method = "POST", .url = url.data, .headers = hdrs, .body = form.data,
				   .body_len = form.len, .ca_file = s->ca_file[0] ? s->ca_file : NULL};
	if ((rc = bc_httpc_do(&req, &res, err)))
		goto done;
	if (bc_json_parse(res.body.data ? res.body.data : "", res.body.len, 0, &j, NULL) != BC_OK)
		j = NULL;
	if (res.status != 200 || !bc_json_str(j, "access_token")) {
		const char *desc = bc_json_str(j, "error_description");
		char first[300] = "";
		if (desc)
			snprintf(first, sizeof(first), "%.*s", (int)strcspn(desc, "\r\n"), desc);
		rc = bc_error_set(err, BC_ERR_UNAUTHENTICATED, "cannot get a token for %s: %s", resource,
				  first[0] ? first : "unexpected answer from the authority");
		goto done;
	}
	rc = bc_buf_appends(out, bc_json_str(j, "access_token"));
done:
	json_decref(j);
	bc_buf_wipe(&form);
	bc_buf_release(&url);
	bc_httpc_res_release(&res);
	return rc;
}

int cli_session_call(struct cli_session *s, const char *method, const char *path, const json_t *body, long *status,
		     json_t **out, struct bc_error *err)
{
	struct bc_buf url = {0}, auth = {0}, tok = {0};
	struct bc_httpc_res res;
	char *payload = NULL;
	int rc;
	*out = NULL;
	bc_httpc_res_init(&res);
	if (!s->token[0]) {
		if ((rc = cli_session_token(s, s->management_resource, &tok, err)))
			goto done;
		if (tok.len >= sizeof(s->token)) {
			rc = bc_error_set(err, BC_ERR_LIMIT, "token too long");
			goto done;
		}
		memcpy(s->token, tok.data, tok.len + 1);
	}
	if ((rc = bc_buf_appendf(&url, "%s%s", s->server, path)) ||
	    (rc = bc_buf_appendf(&auth, "Authorization: Bearer %s", s->token))) {
		bc_error_set(err, rc, "out of memory");
		goto done;
	}
	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	const char *hdrs[] = {auth.data, "Content-Type: application/json", "Accept: application/json", NULL};
	struct bc_httpc_req req = {.method = method, .url = url.data, .headers = hdrs, .body = payload,
				   .body_len = payload ? strlen(payload) : 0,
				   .ca_file = s->ca_file[0] ? s->ca_file : NULL};
	if ((rc = bc_httpc_do(&req, &res, err)))
		goto done;
	*status = res.status;
	if (res.body.len && bc_json_parse(res.body.data, res.body.len, 0, out, NULL) != BC_OK)
		*out = json_pack("{s:{s:s, s:s}}", "error", "code", "BadResponse", "message", "the server answered with non-JSON");
	rc = BC_OK;
done:
	free(payload);
	bc_buf_wipe(&auth);
	bc_buf_wipe(&tok);
	bc_buf_release(&url);
	bc_httpc_res_release(&res);
	return rc;
}

int cli_session_save(const struct cli_session *s, struct bc_error *err)
{
	char dir[4096], path[4200];
	config_dir(dir, sizeof(dir));
	int rc = bc_mkdir_p(dir, 0700, err);
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "server", s->server, "caFile", s->ca_file,
			      "tenantId", s->tenant_id, "subscriptionId", s->subscription_id, "clientId", s->client_id,
			      "clientSecret", s->client_secret, "managementResource", s->management_resource);
	if (j && s->cert_file[0])
		json_object_set_new(j, "certificateFile", json_string(s->cert_file));
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!text)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/profile.json", dir);
	rc = bc_write_file_atomic(path, text, strlen(text), 0600, err);
	bc_wipe(text, strlen(text));
	free(text);
	return rc;
}

int cli_session_fail(long status, const json_t *body)
{
	const json_t *e = json_object_get(body, "error");
	const char *code = json_is_object(e) ? bc_json_str(e, "code") : bc_json_str(body, "error");
	const char *msg = json_is_object(e) ? bc_json_str(e, "message") : bc_json_str(body, "error_description");
	return cli_fail("(%ld) %s: %s", status, code ? code : "Error", msg ? msg : "the server refused the request");
}
