/* The host agent: enrols the host with a join token, keeps in sync with the server by long
 * poll, holds a key pair and certificate per identity of the host's instances, caches their
 * tokens, and serves each instance's metadata endpoint, in the instance's own network namespace
 * (root) or on a loopback port guarded by a per-instance secret (App Service flavour). A Unix
 * control socket in the data dir hands an instance's namespace (or endpoint and secret) to
 * `badge vm exec`. */
#ifndef BADGE_AGENT_H
#define BADGE_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include "core/error.h"

enum agent_isolation {
	AGENT_ISOLATION_AUTO = 0,   /* netns when root, else App Service */
	AGENT_ISOLATION_NETNS,
	AGENT_ISOLATION_APPSERVICE,
};

/* How often (seconds) a more preferred server that failed is tried again, by default. */
#define AGENT_FAILBACK_S 30
#define AGENT_FAILBACK_MAX_S 86400

struct agent_config {
	const char *data_dir;            /* state: keys, certificates, sync cache, control socket */
	const char *server_url;          /* "https://HOST:P", or several comma-separated (failover, first
					  * preferred); NULL = the ones saved at enrolment */
	const char *join_token;          /* needed once, for the first start */
	const char *ca_file;             /* server trust before enrolment; NULL = SSL_CERT_FILE / system */
	const char *hostname;            /* reported at enrolment; NULL = gethostname() */
	const char *domain;              /* names in instances' hosts files; NULL = "badge.internal" */
	const char *management_resource; /* host token audience; NULL = "https://management.<domain>/" */
	enum agent_isolation isolation;
	const char *netns_prefix;        /* namespace names "<prefix><instance>" ("<prefix><instance>-<hash>"
					  * for a name two instances share); NULL = "badge-" */
	const char *netns_subnet;        /* IPv4 /16 for the veth links; NULL = "10.213.0.0" */
	const char *const *adopt;        /* "NAME=/path/of/netns" entries (NAME: the instance's local name
					  * or resource id), NULL-terminated; may be NULL */
	const char *server_addr;         /* address the hosts files name; NULL = host side of each veth */
	unsigned rate;                   /* IMDS requests per second per instance, 0 = default 20 */
	unsigned concurrency;            /* IMDS requests in flight per instance, 0 = default 5 */
	bool unlimited;                  /* no rate limit at all (benchmarks) */
	const char *key_type;            /* "EC" (P-256, default) or "RSA" */
	int key_bits;                    /* 2048 / 256 by default */
	int sync_timeout_s;              /* long-poll timeout, 0 = 30, at most 60 */
	unsigned threads;                /* HTTP threads per instance listener, 0 = 2 */
	const char *ops_listen;          /* "127.0.0.1:PORT": /healthz, /readyz, /metrics; NULL = off */
	int failback_s;                  /* after a failover, seconds between tries of the first server;
					  * 0 = AGENT_FAILBACK_S, at most AGENT_FAILBACK_MAX_S */
};

struct agent;

int agent_new(struct agent **out, const struct agent_config *cfg, struct bc_error *err) BC_MUST_CHECK;
/* Enrols when the data dir holds no host credential yet, restores saved state, starts the
 * listeners of the instances last synced, the control socket and the sync thread. */
int agent_start(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
/* Stops the sync thread, the control socket and every listener. Namespaces stay (a restarted
 * agent adopts them again), so instances keep their network. */
void agent_stop(struct agent *a);
void agent_free(struct agent *a);
/* agent_new + agent_start, then waits for SIGTERM or SIGINT (blocked in the calling thread
 * before any agent thread starts, so only this wait sees them), then stops and frees. */
int agent_run(const struct agent_config *cfg, struct bc_error *err) BC_MUST_CHECK;
/* Path of the control socket of a data dir. */
int agent_ctl_path(const char *data_dir, char *out, size_t n) BC_MUST_CHECK;

/* Control-socket client side (badge vm exec). */
struct agent_exec_info {
	bool netns;           /* true: fd is the instance's network namespace */
	int fd;               /* -1 unless netns */
	char hosts_path[512]; /* hosts file for the namespace, "" when none */
	char endpoint[256];   /* App Service: IDENTITY_ENDPOINT */
	char secret[80];      /* App Service: IDENTITY_HEADER */
};
/* An instance is selected by its resource id ("/subscriptions/..."; any case), "GROUP/NAME", or
 * NAME alone when no other instance on the host has that name. A selector that matches several
 * fails with BC_ERR_CONFLICT (agent_ctl_matches lists them), one that matches none with
 * BC_ERR_NOT_FOUND. */
int agent_ctl_get(const char *sock_path, const char *instance, struct agent_exec_info *out,
		  struct bc_error *err) BC_MUST_CHECK;
/* Replaces an instance's App Service secret. */
int agent_ctl_rotate(const char *sock_path, const char *instance, struct bc_error *err) BC_MUST_CHECK;
/* The resource ids of the instances a selector matches, as JSON array text (caller frees). */
int agent_ctl_matches(const char *sock_path, const char *instance, char **json_out, struct bc_error *err) BC_MUST_CHECK;
/* The agent's status as JSON text (caller frees): revision, instances with their endpoints. */
int agent_ctl_status(const char *sock_path, char **json_out, struct bc_error *err) BC_MUST_CHECK;

#endif
