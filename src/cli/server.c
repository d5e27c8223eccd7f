/* badge server: the directory, the resource manager and the vault behind one HTTPS listener. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/server.h"
#include "core/config.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pki.h"
#include "core/store.h"
#include "core/util.h"
#include "directory/directory.h"
#include "manager/manager.h"
#include "vault/vault.h"

#define OFF(f) offsetof(struct server_conf, f)
const struct bc_config_spec server_conf_spec[] = {
	{"data_dir", BC_CONF_STRING, OFF(data_dir), "directory for the database, keys, CA and the env file", NULL, 0, 0},
	{"listen", BC_CONF_STRING, OFF(listen), "HTTPS listen address (port 0 picks a free port)", "127.0.0.1:8443", 0, 0},
	{"store", BC_CONF_STRING, OFF(store), "sqlite:PATH or postgres://... (default sqlite:DATA_DIR/badge.db)", NULL, 0, 0},
	{"domain", BC_CONF_STRING, OFF(domain), "DNS domain of the service names (login., management., *.vault.)", "badge.internal", 0, 0},
	{"public_port", BC_CONF_INT, OFF(public_port), "port clients use to reach the server (0 = the listen port)", "0", 0, 65535},
	{"tls_names", BC_CONF_STRING, OFF(tls_names), "extra names (comma-separated DNS names or IPs) for the TLS certificate", "", 0, 0},
	{"threads", BC_CONF_INT, OFF(threads), "HTTP worker threads", "4", 1, 256},
	{"log_level", BC_CONF_STRING, OFF(log_level), "debug, info, warn or error", "info", 0, 0},
	{"token_lifetime", BC_CONF_DURATION, OFF(token_lifetime), "access token lifetime", "24h", 300, 7 * 86400},
	{"token_v2_resources", BC_CONF_STRING, OFF(token_v2_resources), "resources (comma-separated) whose tokens use v2 claims (the others get v1)", "", 0, 0},
	{"key_rotation", BC_CONF_DURATION, OFF(key_rotation), "rotate signing keys this often (0 = only by badge directory rotate-keys)", "0", 0, 3650 * 86400},
	{"key_prepublish", BC_CONF_DURATION, OFF(key_prepublish), "how long a new signing key is published before it signs", "1h", 0, 30 * 86400},
	{"location", BC_CONF_STRING, OFF(location), "location reported for resources", "local", 0, 0},
	{"identity_cert_lifetime", BC_CONF_DURATION, OFF(identity_cert_lifetime), "lifetime of the identity certificates agents get (renewed at half)", "3d", 10, 365 * 86400},
	{"host_cert_lifetime", BC_CONF_DURATION, OFF(host_cert_lifetime), "lifetime of agents' host certificates (renewed at half)", "30d", 10, 3650 * 86400},
	{"join_from", BC_CONF_STRING, OFF(join_from), "another replica's data dir: copy its ca.pem, ca.key, master.key, admin.json (scale out)", "", 0, 0},
	{"federation_ca_file", BC_CONF_STRING, OFF(federation_ca_file), "PEM trust anchors for the HTTPS of external OIDC issuers (federated credentials); empty = the system's", "", 0, 0},
	{"vault_limit_secrets", BC_CONF_INT, OFF(vault_limit_secrets), "Key Vault secret (and other vault) transactions per 10 s per vault and caller (0 = unlimited)", "4000", 0, 1000000000},
	{"vault_limit_keys", BC_CONF_INT, OFF(vault_limit_keys), "Key Vault key transactions but creation per 10 s per vault and caller (0 = unlimited)", "4000", 0, 1000000000},
	{"vault_limit_key_create", BC_CONF_INT, OFF(vault_limit_key_create), "Key Vault key creations (create, import, rotate) per 10 s per vault and caller (0 = unlimited)", "20", 0, 1000000000},
	{"token_limit_client", BC_CONF_INT, OFF(token_limit_client), "token requests per 10 s per client_id (0 = unlimited)", "200", 0, 1000000000},
	{"token_limit_tenant", BC_CONF_INT, OFF(token_limit_tenant), "token requests per 10 s per tenant (0 = unlimited)", "2000", 0, 1000000000},
	{"arm_limit_reads", BC_CONF_INT, OFF(arm_limit_reads), "Resource Manager reads: bucket per principal and subscription (0 = unlimited)", "250", 0, 1000000000},
	{"arm_refill_reads", BC_CONF_INT, OFF(arm_refill_reads), "Resource Manager reads: bucket refill per second", "25", 1, 1000000000},
	{"arm_limit_writes", BC_CONF_INT, OFF(arm_limit_writes), "Resource Manager writes: bucket per principal and subscription (0 = unlimited)", "200", 0, 1000000000},
	{"arm_refill_writes", BC_CONF_INT, OFF(arm_refill_writes), "Resource Manager writes: bucket refill per second", "10", 1, 1000000000},
	{"arm_limit_deletes", BC_CONF_INT, OFF(arm_limit_deletes), "Resource Manager deletes: bucket per principal and subscription (0 = unlimited)", "200", 0, 1000000000},
	{"arm_refill_deletes", BC_CONF_INT, OFF(arm_refill_deletes), "Resource Manager deletes: bucket refill per second", "10", 1, 1000000000},
};
const size_t server_conf_nspec = sizeof(server_conf_spec) / sizeof(server_conf_spec[0]);

static volatile sig_atomic_t stop_signal, hup_signal;
static char hup_config[4096]; /* the --config file, re-read at SIGHUP */

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_signal = 1;
	else
		stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: badge server --data-dir DIR [--listen HOST:PORT] [--store URL] [--config FILE] [--check-config]\n"
		   "                    [--KEY VALUE ...]\n\nsettings (config file keys; flags use dashes):\n");
	for (size_t i = 0; i < server_conf_nspec; i++)
		fprintf(f, "  %-22s %s%s%s%s\n", server_conf_spec[i].key, server_conf_spec[i].help,
			server_conf_spec[i].dflt ? " [" : "", server_conf_spec[i].dflt ? server_conf_spec[i].dflt : "",
			server_conf_spec[i].dflt ? "]" : "");
}

/* Parses argv into conf: --config FILE first, then flags on top of it. */
int server_conf_from_args(struct server_conf *conf, int argc, char **argv, bool *check_only, struct bc_error *err)
{
	int rc;
	const char *config_file = NULL;
	if ((rc = bc_config_defaults(conf, server_conf_spec, server_conf_nspec, err)))
		return rc;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config_file = argv[i + 1];
	if (config_file && (rc = bc_config_load(conf, server_conf_spec, server_conf_nspec, config_file, err)))
		return rc;
	if (config_file)
		snprintf(hup_config, sizeof(hup_config), "%s", config_file);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--check-config")) {
			if (check_only)
				*check_only = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0)
			return bc_error_set(err, BC_ERR_INVALID, "unexpected argument '%s'", a);
		char key[64];
		const char *eq = strchr(a + 2, '=');
		size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (kl >= sizeof(key))
			return bc_error_set(err, BC_ERR_INVALID, "unknown option '%s'", a);
		memcpy(key, a + 2, kl);
		key[kl] = 0;
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!val)
			return bc_error_set(err, BC_ERR_INVALID, "option '%s' needs a value", a);
		if (!strcmp(key, "config"))
			continue;
		if ((rc = bc_config_set(conf, server_conf_spec, server_conf_nspec, key, val, err)))
			return rc;
	}
	if (!conf->data_dir || !*conf->data_dir)
		return bc_error_set(err, BC_ERR_INVALID, "--data-dir is required");
	if (bc_log_parse_level(conf->log_level) < 0)
		return bc_error_set(err, BC_ERR_INVALID, "log_level must be debug, info, warn or error");
	return BC_OK;
}

/* Binds host:port ourselves so the port (0 = any) is known before anything is built. */
static int bind_listener(const char *addr, int *fd_out, int *port_out, struct bc_error *err)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
		return bc_error_set(err, BC_ERR_INVALID, "listen address '%s' must be HOST:PORT", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0)
		return bc_error_set(err, BC_ERR_INVALID, "cannot resolve listen address '%s': %s", addr, gai_strerror(gai));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return bc_error_set(err, BC_ERR_IO, "cannot listen on %s: %s", addr, strerror(e));
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return BC_OK;
}

static int write_env(const struct server_urls *u, const char *dir, struct bc_error *err)
{
	struct bc_buf b = {0};
	char path[4096];
	int rc;
#define EXPORT(k, v) bc_buf_appendf(&b, "export %s='%s'\n", k, v)
	if ((rc = EXPORT("BADGE_TENANT_ID", u->tenant_id)) || (rc = EXPORT("BADGE_SUBSCRIPTION_ID", u->subscription_id)) ||
	    (rc = EXPORT("BADGE_LOGIN_URL", u->login_url)) || (rc = EXPORT("BADGE_MANAGEMENT_URL", u->management_url)) ||
	    (rc = EXPORT("BADGE_MANAGEMENT_RESOURCE", u->management_resource)) ||
	    (rc = EXPORT("BADGE_VAULT_SUFFIX", u->vault_suffix)) || (rc = EXPORT("BADGE_VAULT_RESOURCE", u->vault_resource)) ||
	    (rc = EXPORT("BADGE_CA_FILE", u->ca_file)) || (rc = EXPORT("SSL_CERT_FILE", u->ca_file)) ||
	    (rc = EXPORT("NODE_EXTRA_CA_CERTS", u->ca_file)) || (rc = EXPORT("REQUESTS_CA_BUNDLE", u->ca_file)) ||
	    (rc = EXPORT("BADGE_URL", u->local_url)) || (rc = bc_buf_appendf(&b, "export BADGE_PORT='%d'\n", u->port)) ||
	    (rc = EXPORT("BADGE_DOMAIN", u->domain)) || (rc = EXPORT("BADGE_DATA_DIR", dir))) {
		bc_buf_release(&b);
		return bc_error_set(err, rc, "cannot build the env file");
	}
#undef EXPORT
	snprintf(path, sizeof(path), "%s/env", dir);
	rc = bc_write_file_atomic(path, b.data, b.len, 0644, err);
	bc_buf_release(&b);
	return rc;
}

/* The bootstrap administrator: created once; its secret is shown only in admin.json (0600). */
static int bootstrap_admin(struct dir *d, struct mgr *m, const struct server_urls *u, const char *dir,
			   struct bc_error *err)
{
	char path[4096], secret[128], cred[37];
	struct dir_principal p;
	struct stat st;
	int rc;
	snprintf(path, sizeof(path), "%s/admin.json", dir);
	if (stat(path, &st) == 0)
		return BC_OK;
	if ((rc = dir_principal_create(d, NULL, NULL, DIR_TYPE_APP, "badge-admin", NULL, &p, err)) ||
	    (rc = dir_principal_set_admin(d, NULL, p.object_id, true, err)) ||
	    (rc = dir_credential_add_secret(d, NULL, p.object_id, 0, secret, sizeof(secret), cred, err)) ||
	    (rc = mgr_bootstrap_owner(m, p.object_id, err)))
		return rc;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenantId", u->tenant_id, "subscriptionId", u->subscription_id,
			      "clientId", p.app_id, "clientSecret", secret, "objectId", p.object_id);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	bc_wipe(secret, sizeof(secret));
	if (!s)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	rc = bc_write_file_atomic(path, s, strlen(s), 0600, err);
	bc_wipe(s, strlen(s));
	free(s);
	if (rc == BC_OK)
		bc_log_info("server: bootstrap administrator %s written to %s", p.app_id, path);
	return rc;
}

static int split_names(const char *extra, const char **names, size_t max, size_t *n, char *storage, size_t slen)
{
	snprintf(storage, slen, "%s", extra ? extra : "");
	for (char *tok = strtok(storage, ","); tok && *n < max; tok = strtok(NULL, ",")) {
		while (*tok == ' ')
			tok++;
		if (*tok)
			names[(*n)++] = tok;
	}
	return BC_OK;
}

static void access_log(const struct bc_http_req *req, int status, double ms, void *ctx)
{
	(void)ctx;
	server_ops_observe(req, status, ms);
	bc_log_access(req->request_id, req->method, req->route ? req->route : "-", status, ms, req->client_ip);
}

int server_run(struct server_conf *conf, struct server_hooks *hooks, struct bc_error *err)
{
	struct bc_store *st = NULL;
	struct bc_ca *ca = NULL;
	struct dir *d = NULL;
	struct mgr *m = NULL;
	struct vault *v = NULL;
	struct bc_http_server *srv = NULL;
	struct bc_buf cert = {0}, key = {0};
	struct server_urls u;
	struct server_ops ops = {0};
	char store_url[4200], ca_file[4200], master[4200];
	int fd = -1, port = 0, lock = -1, rc;

	memset(&u, 0, sizeof(u));
	bc_log_set_level(bc_log_parse_level(conf->log_level));
	if ((rc = bc_mkdir_p(conf->data_dir, 0700, err)))
		return rc;
	if ((rc = server_data_dir_lock(conf->data_dir, false, &lock, err))) /* masterkey.c */
		return rc;
	snprintf(store_url, sizeof(store_url), "sqlite:%s/badge.db", conf->data_dir);
	snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", conf->data_dir);
	snprintf(master, sizeof(master), "%s/master.key", conf->data_dir);
	if ((rc = bind_listener(conf->listen, &fd, &port, err)))
		goto done;
	int pub = conf->public_port ? (int)conf->public_port : port;
	char ps[16] = "";
	if (pub != 443)
		snprintf(ps, sizeof(ps), ":%d", pub);
	u.port = port;
	snprintf(u.domain, sizeof(u.domain), "%s", conf->domain);
	snprintf(u.login_url, sizeof(u.login_url), "https://login.%s%s", conf->domain, ps);
	snprintf(u.management_url, sizeof(u.management_url), "https://management.%s%s/", conf->domain, ps);
	snprintf(u.management_resource, sizeof(u.management_resource), "https://management.%s/", conf->domain);
	snprintf(u.vault_suffix, sizeof(u.vault_suffix), "vault.%s", conf->domain);
	snprintf(u.vault_resource, sizeof(u.vault_resource), "https://vault.%s%s", conf->domain, ps);
	snprintf(u.vault_port, sizeof(u.vault_port), "%s", ps);
	snprintf(u.ca_file, sizeof(u.ca_file), "%s", ca_file);
	{
		/* the address-only URL: what tests and local tools use without DNS */
		char host[256];
		const char *colon = strrchr(conf->listen, ':');
		size_t hl = colon ? (size_t)(colon - conf->listen) : 0;
		snprintf(host, sizeof(host), "%.*s", (int)hl, conf->listen);
		if (!strcmp(host, "0.0.0.0") || !*host)
			snprintf(host, sizeof(host), "127.0.0.1");
		else if (!strcmp(host, "[::]"))
			snprintf(host, sizeof(host), "[::1]");
		snprintf(u.local_url, sizeof(u.local_url), "https://%s:%d", host, port);
	}

	if (conf->join_from && *conf->join_from && (rc = server_join_from(conf->join_from, conf->data_dir, err)))
		goto done;
	if ((rc = bc_store_open(&st, conf->store && *conf->store ? conf->store : store_url, err)))
		goto done;
	if ((rc = bc_ca_load_or_create(conf->data_dir, "badge local CA", &ca, err)))
		goto done;
	{
		const char *names[40];
		size_t n = 0;
		char login[300], mgmt[300], vres[300], vwild[300], extra[2048];
		snprintf(login, sizeof(login), "login.%s", conf->domain);
		snprintf(mgmt, sizeof(mgmt), "management.%s", conf->domain);
		snprintf(vres, sizeof(vres), "vault.%s", conf->domain);
		snprintf(vwild, sizeof(vwild), "*.vault.%s", conf->domain);
		names[n++] = "localhost";
		names[n++] = "127.0.0.1";
		names[n++] = "::1";
		names[n++] = login;
		names[n++] = mgmt;
		names[n++] = vres;
		names[n++] = vwild;
		split_names(conf->tls_names, names, 40, &n, extra, sizeof(extra));
		if ((rc = bc_ca_issue_server(ca, names, n, 90, &cert, &key, err)))
			goto done;
	}
	const char *resources[] = {u.management_resource, u.vault_resource};
	const char *v2[16];
	size_t nv2 = 0;
	char v2_storage[2048];
	split_names(conf->token_v2_resources, v2, 16, &nv2, v2_storage, sizeof(v2_storage));
	struct dir_config dc = {
		.login_url = u.login_url,
		.token_lifetime_s = conf->token_lifetime,
		.key_prepublish_s = conf->key_prepublish,
		.key_rotation_s = conf->key_rotation,
		.ca = ca,
		.master_key_file = master,
		.resources = resources,
		.nresources = 2,
		.v2_resources = v2,
		.nv2_resources = nv2,
		.admin_audience = u.management_resource,
		.federation_ca_file = conf->federation_ca_file && *conf->federation_ca_file ? conf->federation_ca_file : NULL,
		.limit_client = conf->token_limit_client,
		.limit_tenant = conf->token_limit_tenant,
	};
	if ((rc = dir_new(&d, st, &dc, err)))
		goto done;
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", dir_default_tenant(d));
	struct mgr_config mc = {
		.management_url = u.management_url,
		.management_resource = u.management_resource,
		.vault_suffix = u.vault_suffix,
		.vault_public_port = u.vault_port,
		.location = conf->location,
		.ca_cert_pem = bc_ca_cert_pem(ca),
		.identity_cert_lifetime_s = conf->identity_cert_lifetime,
		.host_cert_lifetime_s = conf->host_cert_lifetime,
		.limit_reads_burst = conf->arm_limit_reads,
		.limit_reads_refill = conf->arm_refill_reads,
		.limit_writes_burst = conf->arm_limit_writes,
		.limit_writes_refill = conf->arm_refill_writes,
		.limit_deletes_burst = conf->arm_limit_deletes,
		.limit_deletes_refill = conf->arm_refill_deletes,
	};
	if ((rc = mgr_new(&m, st, d, &mc, err)))
		goto done;
	snprintf(u.subscription_id, sizeof(u.subscription_id), "%s", mgr_default_subscription(m));
	struct vault_config vc = {
		.vault_suffix = u.vault_suffix,
		.vault_resource = u.vault_resource,
		.public_port = u.vault_port,
		.master_key_file = master,
		.limit_secrets = conf->vault_limit_secrets,
		.limit_keys = conf->vault_limit_keys,
		.limit_key_create = conf->vault_limit_key_create,
	};
	if ((rc = vault_new(&v, st, d, m, &vc, err)))
		goto done;
	if (!(srv = bc_http_server_new())) {
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
		goto done;
	}
	bc_http_set_observer(srv, access_log, NULL);
	ops.st = st;
	if ((rc = server_ops_mount(srv, &ops))) {
		bc_error_set(err, rc, "cannot mount the operations routes");
		goto done;
	}
	if ((rc = vault_mount(v, srv)) || (rc = dir_mount(d, srv)) || (rc = mgr_mount(m, srv))) {
		bc_error_set(err, rc, "cannot mount routes");
		goto done;
	}
	if ((rc = bootstrap_admin(d, m, &u, conf->data_dir, err)))
		goto done;
	if ((rc = dir_start_maintenance(d, err)))
		goto done;
	struct bc_http_listener l = {
		.fd = fd,
		.tls_cert_pem = cert.data,
		.tls_key_pem = key.data,
		.threads = (unsigned)conf->threads,
	};
	if ((rc = bc_http_listen(srv, &l, &port, err)))
		goto done;
	fd = -1; /* the listener owns it now */
	if ((rc = write_env(&u, conf->data_dir, err)))
		goto done;
	bc_log_info("server: ready on %s (login %s, management %s, vaults *.%s%s)", u.local_url, u.login_url,
		    u.management_url, u.vault_suffix, u.vault_port);
	atomic_store(&ops.ready, true);
	if (hooks && hooks->ready)
		hooks->ready(hooks->ctx, &u);
	while (!stop_signal && !(hooks && hooks->should_stop && hooks->should_stop(hooks->ctx))) {
		if (hup_signal) {
			hup_signal = 0;
			struct bc_error e2;
			bc_log_info("server: SIGHUP: reloading signing keys");
			server_reload_log_level(hup_config[0] ? hup_config : NULL);
			if (dir_reload(d, &e2))
				bc_log_warn("server: reload failed: %s", e2.msg);
		}
		pause();
	}
	bc_log_info("server: stopping (signal %d): draining in-flight requests", (int)stop_signal);
	atomic_store(&ops.draining, true);
	rc = BC_OK;
done:
	if (srv)
		bc_http_server_stop(srv);
	bc_http_server_free(srv);
	vault_free(v);
	mgr_free(m);
	dir_free(d);
	bc_ca_free(ca);
	bc_store_free(st);
	bc_buf_wipe(&key);
	bc_buf_release(&cert);
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return rc;
}

void server_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cli_server_main(int argc, char **argv)
{
	struct server_conf conf;
	struct bc_error err;
	bool check_only = false;
	memset(&conf, 0, sizeof(conf));
	if (argc > 1 && !strcmp(argv[1], "rotate-master-key"))
		return cli_masterkey_main(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	if (server_conf_from_args(&conf, argc, argv, &check_only, &err)) {
		bc_config_release(&conf, server_conf_spec, server_conf_nspec);
		return cli_fail("%s", err.msg);
	}
	if (check_only) {
		printf("configuration is valid\n");
		bc_config_release(&conf, server_conf_spec, server_conf_nspec);
		return 0;
	}
	server_install_signals();
	bc_log_set_buffered();
	int rc = server_run(&conf, NULL, &err);
	bc_config_release(&conf, server_conf_spec, server_conf_nspec);
	if (rc)
		return cli_fail("server: %s", err.msg);
	return 0;
}
