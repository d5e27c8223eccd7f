/* The token endpoint as a whole: untrusted form bodies (grant types, secrets, client assertions
 * of any shape) through the real route table, directory and SQLite store. A principal with a
 * secret and one with a certificate exist, so authentication paths are reachable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/pki.h"
#include "directory/directory.h"

static struct bc_http_server *srv;
static char path[128];

static void setup(void)
{
	static char dir[] = "/tmp/badge-fuzz-token-XXXXXX";
	struct bc_error err;
	struct bc_store *st;
	struct bc_ca *ca;
	struct dir *d;
	char url[256], key[256];
	bc_log_set_level(BC_LOG_OFF);
	if (!mkdtemp(dir))
		abort();
	snprintf(url, sizeof(url), "sqlite:%s/db", dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	static const char *res[] = {"https://management.badge.internal/"};
	static struct dir_config dc = {.login_url = "https://login.badge.internal", .resources = res, .nresources = 1};
	dc.master_key_file = strdup(key);
	if (bc_store_open(&st, url, &err) || bc_ca_load_or_create(dir, "fuzz", &ca, &err))
		abort();
	dc.ca = ca;
	if (dir_new(&d, st, &dc, &err))
		abort();
	struct dir_principal p;
	char secret[128], cred[37];
	if (dir_principal_create(d, NULL, NULL, DIR_TYPE_APP, "fuzz", NULL, &p, &err) ||
	    dir_credential_add_secret(d, NULL, p.object_id, 0, secret, sizeof(secret), cred, &err))
		abort();
	snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", dir_default_tenant(d));
	srv = bc_http_server_new();
	if (!srv || dir_mount(d, srv))
		abort();
	/* the store, directory and CA live for the process; the temp dir is left for the OS */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	struct bc_http_kv h[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	if (bc_http_dispatch_test(srv, "POST", path, "login.badge.internal", h, 1, (const char *)data, size, &res) == 0) {
		if (res.status != 200 && res.status != 400 && res.status != 401 && res.status != 413)
			abort(); /* anything else (500s) on bad input is a defect */
	}
	bc_http_res_release(&res);
	return 0;
}
