/* badge up --data-dir DIR [agent options] [server options]
 *
 * Runs the server (DIR/server, SQLite) and the host agent (DIR/agent) in one process. The server
 * runs on the main thread (server_run, which owns the signals); once it serves, a thread enrols
 * the agent on first start — it registers host NAME (default "local") and asks the resource
 * manager for a join token with the bootstrap administrator's credential — and starts it.
 * Isolation: network namespaces when root, the App Service flavour otherwise (--isolation).
 * As root the server listens on 0.0.0.0 by default, so that instances reach it through their
 * veth link; every other --option goes to the server (see `badge server --help`).
 * Once both serve, DIR/env is written: the server's env file plus BADGE_AGENT_DIR, so that after
 * `source DIR/env` the CLI reaches the server and `badge vm exec` the agent. If the agent cannot
 * start, the whole process stops (exit status 1). */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent/agent.h"
#include "cli/cli.h"
#include "cli/server.h"
#include "cli/session.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

#define UP_MAX_ARGS 64
#define HOSTS_API_VERSION "2024-01-01"
#define UP_SYNC_TIMEOUT_S 3

struct up {
	struct agent_config acfg;
	char dir[4096];
	char agent_dir[4096];
	char server_dir[4096];
	const char *host_name;
	const char *join_token;   /* given by flag, else fetched */
	char *fetched_token;      /* owned */
	struct agent *agent;
	pthread_t thread;
	bool thread_started;
	int status;               /* agent start result, for the exit code */
	char server_url[320];
	char ca_file[4200];
	char domain[256];
	char management_resource[320];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: badge up --data-dir DIR [--isolation auto|netns|appservice] [--host-name NAME]\n"
		   "                [--join-token T] [--rate N] [--concurrency N] [--unlimited]\n"
		   "                [--netns-prefix P] [--netns-subnet A.B.0.0] [--sync-timeout S] [server options...]\n"
		   "Runs the server (DIR/server) and this host's agent (DIR/agent) together.\n");
}

static const char *join_token_member(const json_t *o)
{
	static const char *const names[] = {"joinToken", "token", "value"};
	for (size_t i = 0; o && i < sizeof(names) / sizeof(names[0]); i++)
		if (bc_json_str(o, names[i]))
			return bc_json_str(o, names[i]);
	const json_t *p = json_object_get(o, "properties");
	return p && p != o ? join_token_member(p) : NULL;
}

/* Registers the host and gets a one-time join token from the resource manager. */
static int fetch_join_token(struct up *u, struct bc_error *err)
{
	struct cli_session s;
	char *argv[] = {"up", "--data-dir", u->server_dir, NULL};
	int argc = 3;
	char path[1024];
	json_t *out = NULL, *body = NULL;
	long status = 0;
	int rc = cli_session_init(&s, &argc, argv, err);
	if (rc != BC_OK)
		return rc;
	snprintf(path, sizeof(path), "/subscriptions/%s/providers/Badge.Compute/hosts/%s?api-version=" HOSTS_API_VERSION,
		 s.subscription_id, u->host_name);
	body = json_pack("{s:s, s:{}}", "location", "local", "properties");
	rc = cli_session_call(&s, "PUT", path, body, &status, &out, err);
	if (rc == BC_OK && status != 200 && status != 201)
		rc = bc_error_set(err, BC_ERR_INVALID, "registering host %s answered %ld", u->host_name, status);
	json_decref(out);
	out = NULL;
	if (rc == BC_OK) {
		snprintf(path, sizeof(path),
			 "/subscriptions/%s/providers/Badge.Compute/hosts/%s/joinToken?api-version=" HOSTS_API_VERSION,
			 s.subscription_id, u->host_name);
		rc = cli_session_call(&s, "POST", path, NULL, &status, &out, err);
		const char *t = out ? join_token_member(out) : NULL;
		if (rc == BC_OK && (status != 200 || !t))
			rc = bc_error_set(err, BC_ERR_INVALID, "join token for host %s: server answered %ld", u->host_name,
					  status);
		if (rc == BC_OK && !(u->fetched_token = strdup(t)))
			rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	json_decref(out);
	json_decref(body);
	cli_session_release(&s);
	return rc;
}

/* DIR/env: the server's env file and where the agent is; its appearance means "ready". */
static int write_env(struct up *u, struct bc_error *err)
{
	char path[4200], *text = NULL;
	size_t len = 0;
	struct bc_buf out = {0};
	char abs[4096];
	snprintf(path, sizeof(path), "%s/env", u->server_dir);
	int rc = bc_read_file(path, 1 << 16, &text, &len, err);
	if (rc != BC_OK)
		return rc;
	if (!realpath(u->agent_dir, abs))
		snprintf(abs, sizeof(abs), "%s", u->agent_dir);
	if (bc_buf_append(&out, text, len) || (len && text[len - 1] != '\n' && bc_buf_appends(&out, "\n")) ||
	    bc_buf_appendf(&out, "export BADGE_AGENT_DIR='%s'\n", abs))
		rc = bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	free(text);
	snprintf(path, sizeof(path), "%s/env", u->dir);
	if (rc == BC_OK)
		rc = bc_write_file_atomic(path, out.data, out.len, 0644, err);
	bc_buf_release(&out);
	return rc;
}

static void *agent_thread(void *arg)
{
	struct up *u = arg;
	struct bc_error err = {0};
	char host_json[4200];
	snprintf(host_json, sizeof(host_json), "%s/host.json", u->agent_dir);
	u->acfg.server_url = u->server_url;
	u->acfg.ca_file = u->ca_file;
	u->acfg.domain = u->domain;
	u->acfg.management_resource = u->management_resource;
	if (access(host_json, F_OK) != 0) {
		if (u->join_token)
			u->acfg.join_token = u->join_token;
		else if (fetch_join_token(u, &err) == BC_OK)
			u->acfg.join_token = u->fetched_token;
		else {
			bc_log_error("up: cannot enrol the agent: %s (run `badge agent --data-dir %s --join-token T` "
				     "with a token from `badge host`)", err.msg, u->agent_dir);
			u->status = 1;
			kill(getpid(), SIGTERM);
			return NULL;
		}
	}
	if (agent_new(&u->agent, &u->acfg, &err) != BC_OK || agent_start(u->agent, &err) != BC_OK) {
		bc_log_error("up: agent: %s", err.msg);
		agent_stop(u->agent);
		agent_free(u->agent);
		u->agent = NULL;
		u->status = 1;
		kill(getpid(), SIGTERM); /* a server without its agent is not what `badge up` promises */
		return NULL;
	}
	if (write_env(u, &err) != BC_OK)
		bc_log_warn("up: cannot write %s/env: %s", u->dir, err.msg);
	else
		bc_log_info("up: server and agent running; `source %s/env` to use them", u->dir);
	return NULL;
}

static void on_ready(void *ctx, const struct server_urls *su)
{
	struct up *u = ctx;
	snprintf(u->server_url, sizeof(u->server_url), "%s", su->local_url);
	snprintf(u->ca_file, sizeof(u->ca_file), "%s", su->ca_file);
	snprintf(u->domain, sizeof(u->domain), "%s", su->domain);
	snprintf(u->management_resource, sizeof(u->management_resource), "%s", su->management_resource);
	/* the agent's threads must never take the server's signals: they inherit this mask */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	u->thread_started = pthread_create(&u->thread, NULL, agent_thread, u) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int parse_isolation(const char *s, enum agent_isolation *out)
{
	if (!strcmp(s, "auto"))
		*out = AGENT_ISOLATION_AUTO;
	else if (!strcmp(s, "netns"))
		*out = AGENT_ISOLATION_NETNS;
	else if (!strcmp(s, "appservice") || !strcmp(s, "app-service"))
		*out = AGENT_ISOLATION_APPSERVICE;
	else
		return -1;
	return 0;
}

/* Takes the agent's options out of argv; the rest is the server's. */
static int split_args(struct up *u, int argc, char **argv, char **sargv, int *sargc, const char **dir,
		      bool *listen_given)
{
	int n = 0;
	sargv[n++] = "server";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (!strcmp(a, "--unlimited")) {
			u->acfg.unlimited = true;
			continue;
		}
		if (!v)
			return cli_fail("option %s needs a value", a);
		if (!strcmp(a, "--data-dir"))
			*dir = v;
		else if (!strcmp(a, "--isolation")) {
			if (parse_isolation(v, &u->acfg.isolation))
				return cli_fail("--isolation must be auto, netns or appservice");
		} else if (!strcmp(a, "--host-name"))
			u->host_name = v;
		else if (!strcmp(a, "--join-token"))
			u->join_token = v;
		else if (!strcmp(a, "--rate"))
			u->acfg.rate = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--concurrency"))
			u->acfg.concurrency = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--netns-prefix"))
			u->acfg.netns_prefix = v;
		else if (!strcmp(a, "--netns-subnet"))
			u->acfg.netns_subnet = v;
		else if (!strcmp(a, "--sync-timeout"))
			u->acfg.sync_timeout_s = (int)strtol(v, NULL, 10);
		else
			takes = false;
		if (takes) {
			i++;
			continue;
		}
		if (n + 2 >= UP_MAX_ARGS)
			return cli_fail("too many options");
		if (!strcmp(a, "--listen"))
			*listen_given = true;
		sargv[n++] = argv[i];
		if (!strchr(a, '='))
			sargv[n++] = argv[++i];
	}
	*sargc = n;
	return 0;
}

int cli_up_main(int argc, char **argv)
{
	struct up u;
	struct server_conf conf;
	struct bc_error err = {0};
	char *sargv[UP_MAX_ARGS + 8];
	int sargc = 0;
	const char *dir = NULL;
	bool listen_given = false;
	memset(&u, 0, sizeof(u));
	memset(&conf, 0, sizeof(conf));
	u.host_name = "local";
	/* the server drains requests in flight when it stops, the agent's long poll among them:
	 * a short poll keeps `badge up` quick to stop (one request every few seconds costs nothing) */
	u.acfg.sync_timeout_s = UP_SYNC_TIMEOUT_S;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	if (split_args(&u, argc, argv, sargv, &sargc, &dir, &listen_given))
		return 2;
	if (!dir) {
		usage(stderr);
		return 2;
	}
	snprintf(u.dir, sizeof(u.dir), "%s", dir);
	snprintf(u.server_dir, sizeof(u.server_dir), "%s/server", dir);
	snprintf(u.agent_dir, sizeof(u.agent_dir), "%s/agent", dir);
	if (bc_mkdir_p(dir, 0700, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	char envp[4200];
	snprintf(envp, sizeof(envp), "%s/env", dir);
	unlink(envp); /* written again once server and agent serve */
	bool netns = u.acfg.isolation == AGENT_ISOLATION_NETNS ||
		     (u.acfg.isolation == AGENT_ISOLATION_AUTO && geteuid() == 0);
	sargv[sargc++] = "--data-dir";
	sargv[sargc++] = u.server_dir;
	if (!listen_given && netns) { /* instances reach the server through their veth links */
		sargv[sargc++] = "--listen";
		sargv[sargc++] = "0.0.0.0:8443";
	}
	sargv[sargc] = NULL;
	u.acfg.data_dir = u.agent_dir;
	if (server_conf_from_args(&conf, sargc, sargv, NULL, &err)) {
		bc_config_release(&conf, server_conf_spec, server_conf_nspec);
		return cli_fail("%s", err.msg);
	}
	struct server_hooks hooks = {.ready = on_ready, .ctx = &u};
	server_install_signals();
	int rc = server_run(&conf, &hooks, &err);
	if (u.thread_started)
		pthread_join(u.thread, NULL);
	agent_stop(u.agent);
	agent_free(u.agent);
	if (u.fetched_token) {
		bc_wipe(u.fetched_token, strlen(u.fetched_token));
		free(u.fetched_token);
	}
	bc_config_release(&conf, server_conf_spec, server_conf_nspec);
	if (rc)
		return cli_fail("server: %s", err.msg);
	return u.status;
}
