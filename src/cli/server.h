/* badge server's configuration and run loop, shared with badge up. */
#ifndef BADGE_CLI_SERVER_H
#define BADGE_CLI_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include "core/config.h"
#include "core/error.h"

struct server_conf {
	char *data_dir, *listen, *store, *domain, *tls_names, *log_level, *location, *token_v2_resources;
	int64_t public_port, threads, token_lifetime, key_prepublish, key_rotation;
	int64_t identity_cert_lifetime, host_cert_lifetime;
	char *join_from; /* another replica's data dir: copy its CA, master key, admin.json (join.c) */
	char *federation_ca_file; /* trust anchors for external OIDC issuers ("" = the system's) */
	/* throttling, per replica (docs/operations.md "Throttling"); 0 = unlimited */
	int64_t vault_limit_secrets, vault_limit_keys, vault_limit_key_create;
	int64_t token_limit_client, token_limit_tenant;
	int64_t arm_limit_reads, arm_refill_reads, arm_limit_writes, arm_refill_writes, arm_limit_deletes,
		arm_refill_deletes;
};
extern const struct bc_config_spec server_conf_spec[];
extern const size_t server_conf_nspec;

/* What the running server is reachable as (the env file's values). */
struct server_urls {
	int port;
	char domain[256];
	char tenant_id[37], subscription_id[37];
	char login_url[320], management_url[320], management_resource[320];
	char vault_suffix[300], vault_resource[320], vault_port[16];
	char ca_file[4200], local_url[320];
};

struct server_hooks {
	void (*ready)(void *ctx, const struct server_urls *u); /* called once serving */
	bool (*should_stop)(void *ctx);                         /* polled after each signal */
	void *ctx;
};

int server_conf_from_args(struct server_conf *conf, int argc, char **argv, bool *check_only, struct bc_error *err);
/* Runs until SIGTERM/SIGINT (or hooks->should_stop). */
int server_run(struct server_conf *conf, struct server_hooks *hooks, struct bc_error *err);
void server_install_signals(void);
/* Copies ca.pem, ca.key, master.key (and admin.json when there) from `from` into `to` when
 * absent; fails when `to` already has different ones (src/cli/join.c). */
int server_join_from(const char *from, const char *to, struct bc_error *err);

/* Master key rotation (src/cli/masterkey.c): `badge server rotate-master-key`. A server holds
 * DIR/server.lock shared while it runs (the rotation takes it exclusive), and refuses to start
 * while DIR/master.key.new says a rotation did not finish. *fd_out: close it to release. */
int cli_masterkey_main(int argc, char **argv);
int server_data_dir_lock(const char *data_dir, bool exclusive, int *fd_out, struct bc_error *err) BC_MUST_CHECK;

/* Operations endpoints (src/cli/ops.c): /healthz, /readyz, /metrics. */
struct bc_http_server;
struct bc_http_req;
struct bc_store;
struct server_ops {
	struct bc_store *st;   /* borrowed */
	_Atomic bool ready;    /* set once serving */
	_Atomic bool draining; /* set at SIGTERM, before in-flight requests drain */
};
int server_ops_mount(struct bc_http_server *srv, struct server_ops *o) BC_MUST_CHECK;
void server_ops_observe(const struct bc_http_req *req, int status, double ms); /* metrics */
/* SIGHUP: log_level from the config file (it wins over a --log-level flag given at start). */
void server_reload_log_level(const char *config_file);

#endif
