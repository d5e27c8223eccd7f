/* A directory + resource manager (+ vault) stack for unit tests, driven through the route table
 * without sockets (bc_http_dispatch_test): a store in a temp dir (SQLite, or
 * BADGE_TEST_STORE=postgresql://... where the test allows it), a CA, the components mounted on
 * one bc_http_server, and an administrator that owns the default subscription. Include once per
 * test program, after test.h. What the stack holds is chosen before the include, since it also
 * decides what the program links:
 *   STACK_DIRECTORY_ONLY  the directory alone (stack_open_dir, stack_close_dir)
 *   (neither)             the directory and the manager (stack_open, stack_close)
 *   STACK_VAULT           a vault too, principals writer and reader with tokens, and group rg1
 * VAULT_TEST_KEEP=1 keeps the temp dir for a look after the run. */
#ifndef BADGE_TEST_STACK_H
#define BADGE_TEST_STACK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/store.h"
#include "core/util.h"
#include "directory/directory.h"
#ifndef STACK_DIRECTORY_ONLY
#include "manager/manager.h"
#endif
#ifdef STACK_VAULT
#include "vault/vault.h"
#endif

#define STACK_LOGIN     "https://login.badge.internal:8443"
#define STACK_MGMT_URL  "https://management.badge.internal:8443"
#define STACK_MGMT      "https://management.badge.internal/" /* management audience */
#define STACK_MGMT_HOST "management.badge.internal:8443"
#define STACK_VRES      "https://vault.badge.internal:8443" /* vault audience */
#define STACK_SUFFIX    "vault.badge.internal"

#define STACK_UNUSED __attribute__((unused))
static char tmpdir[256];
static struct bc_store *st;
static struct bc_ca *ca;
static struct dir *d;
static struct bc_http_server *srv;
static char stack_key_file[300]; /* the master key, in tmpdir */
#ifndef STACK_DIRECTORY_ONLY
static struct mgr *m;
static char sub[37], tenant[37] STACK_UNUSED; /* the defaults */
static struct dir_principal admin STACK_UNUSED; /* Owner of sub */
static char *admin_token;                       /* admin's, for STACK_MGMT (owned) */
#endif
#ifdef STACK_VAULT
static struct vault *v STACK_UNUSED;
/* writer: all secret and key permissions in the tests' vaults; reader: fewer */
static struct dir_principal writer, reader;
static char *tok_writer, *tok_reader; /* for STACK_VRES (owned) */
static char *tok_writer_mgmt;         /* for STACK_MGMT (owned) */
#endif

static inline void stack_die(const char *what, const struct bc_error *err)
{
	fprintf(stderr, "setup: %s: %s\n", what, err->msg);
	abort();
}

/* An access token of p for resource (owned). */
static inline char *token_for(const struct dir_principal *p, const char *resource)
{
	struct bc_buf b = {0};
	struct bc_error err = {0};
	int64_t exp = 0;
	if (dir_token_issue(d, p, resource, 1, &b, &exp, &err) != BC_OK)
		stack_die("token", &err);
	return bc_buf_detach(&b, NULL);
}

/* The same, copied into out (aborts when it does not fit). */
static inline void token_copy(const struct dir_principal *p, const char *resource, char *out, size_t n)
{
	char *t = token_for(p, resource);
	if ((size_t)snprintf(out, n, "%s", t) >= n)
		abort();
	free(t);
}

/* Makes tmpdir (/tmp/badge-NAME-XXXXXX) and opens the store in it (or BADGE_TEST_STORE's when
 * env_store) and the CA; stack_key_file names the master key. */
static inline void stack_open_store(const char *name, bool env_store)
{
	struct bc_error err = {0};
	char url[512];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/badge-%s-XXXXXX", name);
	if (!mkdtemp(tmpdir))
		abort();
	/* BADGE_TEST_STORE=postgresql://... runs the same tests on PostgreSQL (scripts/pg-test.sh). */
	if (env_store && getenv("BADGE_TEST_STORE"))
		snprintf(url, sizeof(url), "%s", getenv("BADGE_TEST_STORE"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/db", tmpdir);
	snprintf(stack_key_file, sizeof(stack_key_file), "%s/master.key", tmpdir);
	if (bc_store_open(&st, url, &err) || bc_ca_load_or_create(tmpdir, "test CA", &ca, &err))
		stack_die("store/ca", &err);
}

/* stack_open_store, then the directory configured by dc (its CA and master key filled in here)
 * mounted on srv. */
static inline void stack_open_dir(const char *name, bool env_store, struct dir_config *dc)
{
	struct bc_error err = {0};
	stack_open_store(name, env_store);
	dc->ca = ca;
	dc->master_key_file = stack_key_file;
	if (dir_new(&d, st, dc, &err))
		stack_die("dir", &err);
	srv = bc_http_server_new();
	if (!srv || dir_mount(d, srv))
		abort();
}

static inline void stack_close_dir(void)
{
	bc_http_server_free(srv);
	srv = NULL;
	dir_free(d);
	bc_ca_free(ca);
	bc_store_free(st);
	if (getenv("VAULT_TEST_KEEP")) {
		fprintf(stderr, "kept %s\n", tmpdir);
		return;
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

#ifndef STACK_DIRECTORY_ONLY
/* ---- requests ---------------------------------------------------------------------------- */

struct resp {
	int status;
	json_t *body; /* owned; NULL when empty or not JSON */
	char www[1024]; /* WWW-Authenticate */
	char retry_after[32];  /* Retry-After */
	char ratelimit[128];   /* "x-ms-ratelimit-remaining-...: N" when the answer had one */
};

static inline void resp_release(struct resp *r)
{
	json_decref(r->body);
	memset(r, 0, sizeof(*r));
}

/* Sends a request to host as token (NULL: none); aborts when it cannot be dispatched. */
static inline struct resp stack_call(const char *method, const char *host, const char *target, const char *token,
				     const char *body)
{
	struct resp out = {0};
	struct bc_http_kv h[4];
	size_t nh = 0;
	char auth[20000];
	struct bc_http_res res;
	memset(&res, 0, sizeof(res));
	h[nh++] = (struct bc_http_kv){"Content-Type", "application/json"};
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		h[nh++] = (struct bc_http_kv){"Authorization", auth};
	}
	if (bc_http_dispatch_test(srv, method, target, host, h, nh, body ? body : "", body ? strlen(body) : 0,
				  &res) != BC_OK)
		abort();
	out.status = res.status;
	if (res.body.len)
		out.body = json_loadb(res.body.data, res.body.len, 0, NULL);
	for (size_t i = 0; i < res.nheaders; i++)
		if (strcasecmp(res.headers[i].key, "WWW-Authenticate") == 0)
			snprintf(out.www, sizeof(out.www), "%s", res.headers[i].value);
		else if (strcasecmp(res.headers[i].key, "Retry-After") == 0)
			snprintf(out.retry_after, sizeof(out.retry_after), "%s", res.headers[i].value);
		else if (strncasecmp(res.headers[i].key, "x-ms-ratelimit-remaining-", 25) == 0)
			snprintf(out.ratelimit, sizeof(out.ratelimit), "%s: %s", res.headers[i].key,
				 res.headers[i].value);
	bc_http_res_release(&res);
	return out;
}

/* A management call as token (NULL: none): the status, and the JSON body in *out (may be NULL). */
static inline int call_as(const char *token, const char *method, const char *target, const char *body, json_t **out)
{
	struct resp r = stack_call(method, STACK_MGMT_HOST, target, token, body);
	if (out) {
		*out = r.body;
		r.body = NULL;
	}
	int status = r.status;
	resp_release(&r);
	return status;
}

/* Formats into one of four rotating buffers: a few may be used in one call's arguments. */
static inline char *fmt(const char *f, ...) BC_PRINTF(1, 2);
static inline char *fmt(const char *f, ...)
{
	static char bufs[4][4096];
	static int i;
	va_list ap;
	char *b = bufs[i++ % 4];
	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

/* A management PUT as the administrator that must answer 200 or 201. */
static inline void mgmt_put(const char *path, const char *body)
{
	struct resp r = stack_call("PUT", STACK_MGMT_HOST, path, admin_token, body);
	if (r.status != 200 && r.status != 201) {
		char *s = r.body ? json_dumps(r.body, 0) : NULL;
		fprintf(stderr, "PUT %s: %d %s\n", path, r.status, s ? s : "");
		free(s);
		abort();
	}
	resp_release(&r);
}

/* ---- the whole stack --------------------------------------------------------------------- */

/* Set before stack_open to change the manager's or the vault's configuration (e.g. limits). */
static void (*stack_mgr_configure)(struct mgr_config *mc) STACK_UNUSED;
#ifdef STACK_VAULT
static void (*stack_vault_configure)(struct vault_config *vc) STACK_UNUSED;
#endif

/* tmpdir is /tmp/badge-NAME-XXXXXX; env_store: BADGE_TEST_STORE=postgresql://... replaces the
 * SQLite store. */
static inline void stack_open(const char *name, bool env_store)
{
	struct bc_error err = {0};
	static const char *resources[] = {STACK_MGMT, STACK_VRES};
	static struct dir_config dc = {.login_url = STACK_LOGIN,
				       .token_lifetime_s = 3600,
				       .resources = resources,
				       .nresources = 2,
				       .admin_audience = STACK_MGMT};
	stack_open_dir(name, env_store, &dc);
	struct mgr_config mc = {.management_url = STACK_MGMT_URL,
				.management_resource = STACK_MGMT,
				.vault_suffix = STACK_SUFFIX,
				.vault_public_port = ":8443",
				.location = "local",
				.ca_cert_pem = bc_ca_cert_pem(ca)};
	if (stack_mgr_configure)
		stack_mgr_configure(&mc);
	if (mgr_new(&m, st, d, &mc, &err) || mgr_mount(m, srv))
		stack_die("mgr", &err);
#ifdef STACK_VAULT
	struct vault_config vc = {.vault_suffix = STACK_SUFFIX,
				  .vault_resource = STACK_VRES,
				  .public_port = ":8443",
				  .master_key_file = stack_key_file};
	if (stack_vault_configure)
		stack_vault_configure(&vc);
	if (vault_new(&v, st, d, m, &vc, &err) || vault_mount(v, srv))
		stack_die("vault", &err);
#endif
	snprintf(sub, sizeof(sub), "%s", mgr_default_subscription(m));
	snprintf(tenant, sizeof(tenant), "%s", dir_default_tenant(d));
	if (dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, "admin", NULL, &admin, &err))
		stack_die("admin", &err);
#ifdef STACK_VAULT
	if (dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, "writer", NULL, &writer, &err) ||
	    dir_principal_create(d, NULL, tenant, DIR_TYPE_APP, "reader", NULL, &reader, &err))
		stack_die("writer/reader", &err);
#endif
	if (mgr_bootstrap_owner(m, admin.object_id, &err))
		stack_die("owner", &err);
	admin_token = token_for(&admin, STACK_MGMT);
#ifdef STACK_VAULT
	tok_writer_mgmt = token_for(&writer, STACK_MGMT);
	tok_writer = token_for(&writer, STACK_VRES);
	tok_reader = token_for(&reader, STACK_VRES);
	char path[512];
	snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups/rg1?api-version=2021-04-01", sub);
	mgmt_put(path, "{\"location\":\"local\"}");
#endif
}

static inline void stack_close(void)
{
	bc_http_server_free(srv);
	srv = NULL;
#ifdef STACK_VAULT
	vault_free(v);
	free(tok_writer);
	free(tok_reader);
	free(tok_writer_mgmt);
#endif
	mgr_free(m);
	stack_close_dir();
	free(admin_token);
}

#ifdef STACK_VAULT
/* A second vault on the same store, as another replica would be (vault_free it). */
static inline struct vault *stack_vault_replica(void)
{
	struct vault *v2 = NULL;
	struct bc_error err = {0};
	struct vault_config vc = {.vault_suffix = STACK_SUFFIX,
				  .vault_resource = STACK_VRES,
				  .public_port = ":8443",
				  .master_key_file = stack_key_file};
	if (vault_new(&v2, st, d, m, &vc, &err) != BC_OK)
		stack_die("second vault", &err);
	return v2;
}
#endif
#endif /* STACK_DIRECTORY_ONLY */

/* ---- checks ------------------------------------------------------------------------------ */

/* The value of the counter badge_NAME_total in the metrics (0 when absent). */
static inline uint64_t counter(const char *name)
{
	struct bc_buf b = {0};
	char key[128];
	uint64_t n = 0;
	snprintf(key, sizeof(key), "\nbadge_%s_total ", name);
	if (bc_metrics_render(&b) == BC_OK) {
		const char *p = strstr(bc_buf_cstr(&b), key);
		if (p)
			n = strtoull(p + strlen(key), NULL, 10);
	}
	bc_buf_release(&b);
	return n;
}

/* Runs steps in order on one stack (each may rely on the ones before); failures name the step. */
static inline void stack_steps(const struct test_case *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		test_current = steps[i].name;
		steps[i].fn();
	}
}
#define STACK_STEPS(...)                                                      \
	do {                                                                  \
		static const struct test_case steps_[] = {__VA_ARGS__};       \
		stack_steps(steps_, sizeof(steps_) / sizeof(steps_[0]));      \
	} while (0)

/* Runs the cases (only argv[1]'s when given) between up() and down(): one stack for all. */
static inline int stack_run(int argc, char **argv, const struct test_case *cases, size_t n, void (*up)(void),
			    void (*down)(void))
{
	up();
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		test_current = cases[i].name;
		int before = test_failures;
		cases[i].fn();
		printf("%s %s\n", test_failures == before ? "ok  " : "FAIL", cases[i].name);
	}
	down();
	return test_failures ? 1 : 0;
}
#define STACK_MAIN(up, down, ...)                                                                \
	int main(int argc, char **argv)                                                          \
	{                                                                                        \
		static const struct test_case cases[] = {__VA_ARGS__};                           \
		return stack_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), up, down); \
	}

#endif
