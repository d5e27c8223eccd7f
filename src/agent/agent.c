/* The agent's lifecycle: making it, start-up (isolation, data dir, enrolment or the saved host
 * credential, the last sync served at once, the control socket, the operators' listener and the
 * sync thread), stopping and freeing it, and agent_run for the badge agent command. Instances are
 * instance.c's, the sync loop sync.c's, the metadata endpoint's handlers imds_http.c's. */
#include "agent/agentint.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

/* ---- lifecycle ---- */

int agent_new(struct agent **out, const struct agent_config *cfg, struct bc_error *err)
{
	if (!cfg->data_dir)
		return bc_error_set(err, BC_ERR_INVALID, "a data dir is required");
	struct agent *a = calloc(1, sizeof(*a));
	if (!a)
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	a->cfg = *cfg;
	if ((size_t)snprintf(a->dir, sizeof(a->dir), "%s", cfg->data_dir) >= sizeof(a->dir)) {
		free(a);
		return bc_error_set(err, BC_ERR_LIMIT, "data dir path too long");
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->stop_cv, NULL);
	a->ctl_fd = -1;
	a->stop_pipe[0] = a->stop_pipe[1] = -1;
	a->original_netns = -1;
	*out = a;
	return BC_OK;
}

static int choose_isolation(struct agent *a, struct bc_error *err)
{
	switch (a->cfg.isolation) {
	case AGENT_ISOLATION_NETNS:
		if (geteuid() != 0)
			return bc_error_set(err, BC_ERR_FORBIDDEN, "network namespace isolation needs root");
		a->use_netns = true;
		break;
	case AGENT_ISOLATION_APPSERVICE:
		a->use_netns = false;
		break;
	default:
		a->use_netns = geteuid() == 0;
	}
	return BC_OK;
}

/* Returns true when the server list changed (to be saved). */
static bool settle_names(struct agent *a)
{
	struct agent_host *h = &a->host;
	bool changed = a->cfg.server_url && strcmp(a->cfg.server_url, h->server_url) != 0;
	if (changed) /* the length was checked by agent_start */
		snprintf(h->server_url, sizeof(h->server_url), "%s", a->cfg.server_url);
	if (a->cfg.domain)
		snprintf(h->domain, sizeof(h->domain), "%s", a->cfg.domain);
	if (!h->domain[0])
		snprintf(h->domain, sizeof(h->domain), "badge.internal");
	if (a->cfg.management_resource)
		snprintf(h->management_resource, sizeof(h->management_resource), "%s", a->cfg.management_resource);
	if (!h->management_resource[0])
		snprintf(h->management_resource, sizeof(h->management_resource), "https://management.%s/", h->domain);
	return changed;
}

int agent_start(struct agent *a, struct bc_error *err)
{
	char path[PATH_MAX];
	bool enrolled = false;
	json_t *cached = NULL;
	int rc;
	if ((rc = choose_isolation(a, err)) != BC_OK)
		return rc;
	if ((rc = bc_mkdir_p(a->dir, 0700, err)) != BC_OK)
		return rc;
	if ((size_t)snprintf(path, sizeof(path), "%s/identities", a->dir) >= sizeof(path))
		return bc_error_set(err, BC_ERR_LIMIT, "data dir path too long");
	if ((rc = bc_mkdir_p(path, 0700, err)) != BC_OK)
		return rc;
	struct stat sb;
	if (agent_state_path(a, "ca.pem", path, sizeof(path)) == BC_OK && stat(path, &sb) == 0 && sb.st_size > 0)
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", path);
	else if (a->cfg.ca_file)
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", a->cfg.ca_file);
	else if (getenv("SSL_CERT_FILE"))
		snprintf(a->ca_path, sizeof(a->ca_path), "%s", getenv("SSL_CERT_FILE"));
	a->started_at = bc_now();
	a->original_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (pipe2(a->stop_pipe, O_CLOEXEC) != 0)
		return bc_error_set(err, BC_ERR_IO, "pipe: %s", strerror(errno));
	if ((rc = agent_host_load(a, &enrolled, err)) != BC_OK)
		return bc_error_wrap(err, "loading the host credential");
	if (a->cfg.server_url && strlen(a->cfg.server_url) >= sizeof(a->host.server_url))
		return bc_error_set(err, BC_ERR_LIMIT, "server URL list too long");
	if ((rc = agent_servers_set(a, a->cfg.server_url ? a->cfg.server_url : a->host.server_url, err)) != BC_OK)
		return enrolled || a->cfg.server_url ? rc : agent_enroll(a, err); /* enrol says what is missing */
	if (!enrolled) {
		if ((rc = agent_enroll(a, err)) != BC_OK)
			return rc;
	} else if (a->cfg.join_token) {
		bc_log_info("agent: already enrolled as %s; the join token is not used", a->host.host_name);
	}
	if (settle_names(a) && (rc = agent_host_save(a, err)) != BC_OK)
		return bc_error_wrap(err, "saving the server list");
	if ((rc = agent_creds_load(a, err)) != BC_OK)
		return rc;
	if ((rc = tc_new(&a->tc, agent_fetch_token, a, 0)) != BC_OK)
		return bc_error_set(err, rc, "out of memory");
	/* serve what the last sync said at once: a restart during a server outage still works */
	if (agent_json_load(a, "sync.json", &cached, NULL) == BC_OK && json_is_object(cached))
		agent_sync_apply(a, cached, false);
	json_decref(cached);
	if ((rc = agent_ctl_start(a, err)) != BC_OK)
		return rc;
	if ((rc = agent_ops_start(a, err)) != BC_OK)
		return rc;
	if (pthread_create(&a->sync_thread, NULL, agent_sync_thread, a) != 0)
		return bc_error_set(err, BC_ERR_NOMEM, "cannot start the sync thread");
	a->sync_running = true;
	bc_log_info("agent: host %s running (%s isolation), data dir %s", a->host.host_name,
		    a->use_netns ? "netns" : "app service", a->dir);
	return BC_OK;
}

void agent_stop(struct agent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->stop_cv);
	pthread_mutex_unlock(&a->mu);
	if (a->stop_pipe[1] >= 0)
		(void)!write(a->stop_pipe[1], "x", 1);
	agent_ctl_stop(a);
	agent_ops_stop(a);
	for (struct agent_instance *in = a->instances; in; in = in->next)
		bc_http_server_stop(in->srv);
	if (a->sync_running) {
		/* a long poll in flight ends within its timeout; do not hold the process that long */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(a->sync_thread, NULL, &ts) == 0)
			a->sync_running = false;
	}
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	if (a->sync_running)
		return; /* still inside a request: leave it all to process exit */
	while (a->instances) {
		struct agent_instance *in = a->instances;
		a->instances = in->next;
		agent_instance_free(in);
	}
	while (a->creds) {
		struct agent_cred *c = a->creds;
		a->creds = c->next;
		agent_cred_release(c);
		free(c);
	}
	agent_cred_release(&a->host.cred);
	if (a->host_token) {
		bc_wipe(a->host_token, strlen(a->host_token));
		free(a->host_token);
	}
	json_decref(a->vaults);
	bc_http_server_free(a->ops_srv);
	tc_free(a->tc);
	for (int i = 0; i < 2; i++)
		if (a->stop_pipe[i] >= 0)
			close(a->stop_pipe[i]);
	if (a->original_netns >= 0)
		close(a->original_netns);
	pthread_cond_destroy(&a->stop_cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int agent_run(const struct agent_config *cfg, struct bc_error *err)
{
	struct agent *a = NULL;
	sigset_t set;
	int sig, rc;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((rc = agent_new(&a, cfg, err)) != BC_OK)
		return rc;
	if ((rc = agent_start(a, err)) != BC_OK) {
		agent_stop(a);
		agent_free(a);
		return rc;
	}
	sigwait(&set, &sig);
	bc_log_info("agent: stopping on signal %d", sig);
	agent_stop(a);
	agent_free(a);
	return BC_OK;
}
