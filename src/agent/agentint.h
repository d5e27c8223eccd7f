/* The agent's internals, shared by its modules: its lifecycle (agent.c), state on disk (state.c),
 * the server protocol (upstream.c), namespaces (netns.c), the control socket (ctl.c), instances
 * and their listeners (instance.c), the metadata endpoint's handlers (imds_http.c) and the sync
 * loop (sync.c). */
#ifndef AGENT_INT_H
#define AGENT_INT_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "agent/agent.h"
#include "agent/imds.h"
#include "agent/tokencache.h"
#include "core/buf.h"
#include "core/http.h"
#include "core/jose.h"
#include "core/limits.h"

#define AGENT_DEFAULT_RATE 20
#define AGENT_DEFAULT_CONCURRENCY 5
#define AGENT_ASSERTION_LIFETIME_S 300
#define AGENT_MAX_INSTANCES 1024      /* instances of one host the agent serves */
#define AGENT_MAX_IDENTITIES 64       /* identities of one instance */
#define AGENT_SECRET_BYTES 32         /* App Service header secret, hex-encoded */
#define AGENT_MAX_SERVERS 8           /* server URLs to fail over between */
#define AGENT_SERVER_URL_MAX 512
#define AGENT_NAME_MAX 64             /* instance names the agent serves (valid_instance_name) */
#define AGENT_LOCAL_HASH_LEN 8        /* hex digits of the resource id's hash in "<name>-<hash>" */
#define AGENT_LOCAL_MAX (AGENT_NAME_MAX + 1 + 64 + 1) /* a local name: name, '-', up to 64 hex */

/* A key pair with its certificate: the host's, or one identity's. */
struct agent_cred {
	struct agent_cred *next;
	char object_id[37];   /* identity credentials only */
	char client_id[37];
	char tenant_id[37];
	struct bc_jwk *key;   /* owned */
	char *cert_pem;       /* owned */
	char x5t256[44];
	int64_t not_before, not_after;
	int64_t issued_at;    /* when this host received it (not_before is backdated by the CA) */
	bool wanted;          /* still on an instance of the last sync */
};

/* The enrolled host. */
struct agent_host {
	char server_url[AGENT_MAX_SERVERS * AGENT_SERVER_URL_MAX]; /* one URL or several, comma-separated */
	char host_name[256];
	char host_id[BC_LIMIT_RESOURCE_ID + 1];
	char tenant_id[37];
	char client_id[37];
	char object_id[37];
	char domain[256];
	char management_resource[BC_LIMIT_RESOURCE + 1];
	struct agent_cred cred;
};

struct agent_instance {
	struct agent_instance *next;
	struct agent *agent;            /* borrowed back-pointer */
	char name[BC_LIMIT_NAME + 1];
	char resource_id[BC_LIMIT_RESOURCE_ID + 1]; /* what the instance is; its name alone is not */
	char group[BC_LIMIT_NAME + 1];  /* its resource group */
	char local[AGENT_LOCAL_MAX];    /* unique on this host (naming.c): names its namespace, veth
					 * links, hosts file, App Service port and secret */
	json_t *doc;                    /* owned: the instance object of the last sync */
	struct agent_identity *ids;     /* owned */
	size_t nids;
	struct imds_limiter lim;
	struct bc_http_server *srv;     /* owned: this instance's listener(s) */
	bool netns;                     /* isolation of this instance */
	int nsfd;                       /* its network namespace, -1 for App Service */
	char ns_name[AGENT_LOCAL_MAX + 64]; /* "<prefix><local>", "" for an adopted namespace */
	char hosts_path[PATH_MAX];
	int slot;                       /* veth subnet slot, 0 = none */
	int port;                       /* App Service port */
	char secret[2 * AGENT_SECRET_BYTES + 1];
	bool seen;                      /* in the sync being applied */
};

struct agent {
	struct agent_config cfg;   /* strings borrowed from the caller */
	char dir[3072];            /* data dir; short enough for every path under it */
	char ca_path[PATH_MAX];    /* trust for the server */
	bool use_netns;

	pthread_mutex_t mu;        /* guards everything below */
	struct agent_host host;
	char *host_token;          /* owned */
	int64_t host_token_exp;
	struct agent_cred *creds;  /* identity credentials */
	struct agent_instance *instances;
	int64_t revision;
	json_t *vaults;            /* owned: vault names of the last sync */
	/* failover (upstream.c): servers in preferred order, the one that answered last, and when
	 * to try a more preferred one again */
	char servers[AGENT_MAX_SERVERS][AGENT_SERVER_URL_MAX];
	size_t nservers;
	size_t active;
	int64_t retry_preferred_at;
	int64_t last_sync_ok;      /* when a sync last succeeded (0 = never) */
	int64_t started_at;

	struct token_cache *tc;
	pthread_t sync_thread;
	bool sync_running;
	pthread_t ctl_thread;
	bool ctl_running;
	int ctl_fd;
	int stop_pipe[2];          /* written to wake the sync and ctl threads */
	pthread_cond_t stop_cv;
	bool stopping;
	int original_netns;        /* the agent's own network namespace, for setns back */
	struct bc_http_server *ops_srv; /* owned: the operators' listener (ops.c), NULL when off */
	char ops_url[128];         /* "http://ADDR:PORT" of ops_srv */
};

/* state.c */
int agent_state_path(const struct agent *a, const char *name, char *out, size_t n) BC_MUST_CHECK;
int agent_host_load(struct agent *a, bool *found, struct bc_error *err) BC_MUST_CHECK;
int agent_host_save(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
int agent_cred_set_cert(struct agent_cred *c, const char *cert_pem, struct bc_error *err) BC_MUST_CHECK;
/* When a credential is due for renewal: half-way between its issue and its expiry. */
int64_t agent_cred_renew_at(const struct agent_cred *c);
int agent_cred_save(struct agent *a, const struct agent_cred *c, struct bc_error *err) BC_MUST_CHECK;
int agent_creds_load(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
void agent_cred_remove_files(struct agent *a, const char *object_id);
void agent_cred_release(struct agent_cred *c);
int agent_generate_key(const struct agent *a, struct bc_jwk **out, struct bc_error *err) BC_MUST_CHECK;
/* JSON documents in the data dir (sync cache, App Service ports and secrets, netns slots). */
int agent_json_load(const struct agent *a, const char *name, json_t **out, struct bc_error *err) BC_MUST_CHECK;
int agent_json_save(const struct agent *a, const char *name, const json_t *doc, struct bc_error *err) BC_MUST_CHECK;

/* upstream.c */
int agent_assertion(const struct agent_cred *c, const char *client_id, const char *aud, struct bc_buf *out,
		    struct bc_error *err) BC_MUST_CHECK;
int agent_enroll(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
/* A JSON request to the server, with the host token unless anonymous. *out NULL when no body. */
int agent_call(struct agent *a, const char *method, const char *path, const json_t *body, long timeout_ms,
	       long *status, json_t **out, struct bc_error *err) BC_MUST_CHECK;
int agent_identity_cert(struct agent *a, const char *object_id, struct agent_cred *out, struct bc_error *err) BC_MUST_CHECK;
int agent_host_cert_renew(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
/* The token cache's fetch function (ctx = struct agent). */
int agent_fetch_token(void *ctx, const char *object_id, const char *resource, struct imds_token *out,
		      struct bc_error *err);
/* Parses the server list (comma-separated URLs) into a->servers; the first is preferred. */
int agent_servers_set(struct agent *a, const char *list, struct bc_error *err) BC_MUST_CHECK;
int agent_parse_token_response(const json_t *body, int64_t now, struct imds_token *out, struct bc_error *err) BC_MUST_CHECK;

/* naming.c (pure) */
struct agent_naming {
	const char *name;               /* borrowed: the instance's name */
	const char *resource_id;        /* borrowed */
	char local[AGENT_LOCAL_MAX];    /* in: the one it has ("" for none); out: the one it keeps */
};
/* Gives each entry without a local name one no other entry holds: its name when no other entry
 * holds it and no other entry without a local name has the same name, else "<name>-<hash of the
 * resource id>". Entries keep the local names they have. A name in legacy (state of an agent from
 * before local names) goes to the first entry of that name. BC_ERR_LIMIT when some entry got
 * none (more than AGENT_MAX_INSTANCES entries). */
int agent_names_assign(struct agent_naming *v, size_t n, const char *const *legacy, size_t nlegacy) BC_MUST_CHECK;
/* SHA-256 of the lower-cased resource id, hex. */
int agent_rid_digest(const char *resource_id, char out[65]) BC_MUST_CHECK;
/* The resource group of a resource id. */
int agent_rid_group(const char *resource_id, char *out, size_t n) BC_MUST_CHECK;
/* Whether a control-socket selector means this instance: a resource id (starts with '/', any
 * case), "GROUP/NAME" (group in any case), or NAME. */
bool agent_selector_matches(const char *selector, const char *name, const char *resource_id, const char *group);

/* netns.c */
int agent_netns_setup(struct agent *a, struct agent_instance *in, const char *adopt_path, struct bc_error *err) BC_MUST_CHECK;
int agent_netns_bind(struct agent *a, int nsfd, int *out_fd, struct bc_error *err) BC_MUST_CHECK;
int agent_netns_write_hosts(struct agent *a, struct agent_instance *in, struct bc_error *err) BC_MUST_CHECK;
void agent_netns_teardown(struct agent *a, struct agent_instance *in);
/* True when /run/netns here is a slave mount: namespace names made by this process do not reach
 * the host's mount namespace and vanish with this process's (see netns.c). */
bool agent_netns_names_private(void);

/* ctl.c */
int agent_ctl_start(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
void agent_ctl_stop(struct agent *a);

/* ops.c: /healthz, /readyz and /metrics on cfg.ops_listen */
int agent_ops_start(struct agent *a, struct bc_error *err) BC_MUST_CHECK;
void agent_ops_stop(struct agent *a);

/* instance.c */
json_t *agent_status_json(struct agent *a);
/* Replaces the App Service secret of the instance a selector means. */
int agent_rotate_secret(struct agent *a, const char *selector, struct bc_error *err) BC_MUST_CHECK;
/* Looks an instance up by selector (agent_selector_matches); returns with a->mu held when exactly
 * one matches (caller unlocks). *matches says how many did. */
struct agent_instance *agent_instance_lock(struct agent *a, const char *selector, size_t *matches);
/* Resource ids of the instances a selector matches, as a JSON array (NULL on no memory). */
json_t *agent_instance_matches(struct agent *a, const char *selector);
/* A new instance of a sync entry, named local on this host, not yet started (NULL on no memory or
 * a bad identities list). */
struct agent_instance *agent_instance_new(struct agent *a, json_t *doc, const char *local);
int agent_instance_start(struct agent *a, struct agent_instance *in, struct bc_error *err) BC_MUST_CHECK;
void agent_instance_destroy(struct agent *a, struct agent_instance *in);
void agent_instance_free(struct agent_instance *in);
struct agent_instance *agent_instance_find(struct agent_instance *list, const char *resource_id);
const char *agent_instance_key(const json_t *v);
int agent_identities_parse(const json_t *inst, struct agent_identity **out, size_t *n) BC_MUST_CHECK;

/* imds_http.c: mounts the metadata endpoint's routes and fallback on in->srv (IMDS's in a
 * namespace, App Service's otherwise); *tag gets the listener tag the handlers tell them apart by. */
int agent_imds_mount(struct agent *a, struct agent_instance *in, int *tag,
		     struct bc_error *err) BC_MUST_CHECK;

/* sync.c */
/* Brings instances in line with a sync document. Returns false when something must be retried. */
bool agent_sync_apply(struct agent *a, json_t *doc, bool issue);
void *agent_sync_thread(void *arg); /* arg: struct agent */
struct agent_cred *agent_cred_find(struct agent *a, const char *oid);

#endif
