/* badge agent: runs the host agent until SIGTERM/SIGINT.
 *   badge agent --data-dir DIR [--server URL --join-token T | --join-token-file F] [options]
 *   badge agent status --data-dir DIR
 *   badge agent rotate-secret --data-dir DIR [-g GROUP] NAME|RESOURCE_ID   (App Service flavour) */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/agent.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"

#define MAX_ADOPT 64
#define SERVERS_MAX 4096

static void usage(FILE *f)
{
	fprintf(f,
		"usage: badge agent --data-dir DIR [--server URL[,URL...]]... [--join-token T | --join-token-file F]\n"
		"                   [--ca-file PEM] [--hostname NAME] [--domain D] [--management-resource URL]\n"
		"                   [--isolation auto|netns|appservice] [--netns-prefix P] [--netns-subnet A.B.0.0]\n"
		"                   [--adopt NAME=/path/to/netns]... [--server-addr IP] [--rate N] [--concurrency N]\n"
		"                   [--unlimited] [--key-type RSA|EC] [--sync-timeout S] [--threads N] [--log-level L]\n"
		"                   [--ops-listen ADDRESS:PORT] [--failback-interval S]\n"
		"       badge agent status --data-dir DIR\n"
		"       badge agent rotate-secret --data-dir DIR [-g GROUP] NAME | RESOURCE_ID\n"
		"\n"
		"Enrols this host with a join token on first start, then keeps its instances' identities and\n"
		"serves each instance's metadata endpoint: inside the instance's network namespace on\n"
		"169.254.169.254:80 (root), or on 127.0.0.1 with a per-instance secret (App Service flavour).\n"
		"\n"
		"  --netns-prefix P    an instance's namespace is P<name> (default P = badge-); an instance whose\n"
		"                      name another instance on the host shares (another resource group or\n"
		"                      subscription) gets P<name>-<8 hex digits of its resource id's SHA-256>.\n"
		"                      A namespace keeps its name for the instance's life on the host, across\n"
		"                      restarts; `badge agent status` shows each (namespace, localName)\n"
		"  --adopt KEY=PATH    serve an instance in an existing namespace; KEY is its name (its\n"
		"                      localName when shared) or its resource id\n"
		"  --server URL        the server; several (comma-separated or repeated) are replicas in order of\n"
		"                      preference: the agent uses the first that answers, moves to the next on a\n"
		"                      connection failure or a 5xx, and tries the first again every\n"
		"                      --failback-interval seconds.\n"
		"                      Without --server, the ones given at enrolment.\n"
		"  --failback-interval S  after moving off the first server, try it again every S seconds\n"
		"                      (1..%d; default %d)\n"
		"  --ops-listen A:P    serve /healthz, /readyz and /metrics (Prometheus) over plain HTTP on A:P\n"
		"                      (e.g. 127.0.0.1:9464; port 0 picks one, shown by `badge agent status`);\n"
		"                      off by default\n",
		AGENT_FAILBACK_MAX_S, AGENT_FAILBACK_S);
}

static int ctl_command(const char *cmd, const char *dir, const char *group, const char *name)
{
	char sock[4096];
	struct bc_error err = {0};
	if (!dir)
		return cli_fail("--data-dir is required");
	if (agent_ctl_path(dir, sock, sizeof(sock)) != BC_OK)
		return cli_fail("data dir path too long");
	if (!strcmp(cmd, "status")) {
		char *text = NULL;
		if (agent_ctl_status(sock, &text, &err) != BC_OK)
			return cli_fail("%s", err.msg);
		json_t *j = json_loads(text, 0, NULL);
		if (j)
			cli_print_json(j);
		else
			puts(text);
		json_decref(j);
		free(text);
		return 0;
	}
	if (!name)
		return cli_fail("rotate-secret needs an instance name");
	char selector[2048];
	if (group && (name[0] == '/' || strchr(group, '/') || strchr(name, '/')))
		return cli_fail("-g takes a resource group and an instance name, not a resource id");
	if ((size_t)snprintf(selector, sizeof(selector), "%s%s%s", group ? group : "", group ? "/" : "", name) >=
	    sizeof(selector))
		return cli_fail("instance name too long");
	if (agent_ctl_rotate(sock, selector, &err) != BC_OK)
		return cli_fail("%s%s", err.msg,
				err.status == BC_ERR_CONFLICT
					? " (give -g GROUP NAME or the resource id; `badge agent status` lists them)"
					: "");
	return 0;
}

static int read_token_file(const char *path, char **out)
{
	struct bc_error err = {0};
	size_t len = 0;
	if (bc_read_file(path, 4096, out, &len, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	while (len && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' || (*out)[len - 1] == ' '))
		(*out)[--len] = '\0';
	return 0;
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

int cli_agent_main(int argc, char **argv)
{
	struct agent_config cfg = {0};
	const char *adopt[MAX_ADOPT + 1] = {0};
	size_t nadopt = 0;
	char *token_from_file = NULL;
	const char *cmd = NULL, *group = NULL;
	static char servers[SERVERS_MAX];
	int rc = 1;
	enum { O_SERVER = 256, O_JOIN, O_JOINF, O_CA, O_HOST, O_DOMAIN, O_MRES, O_ISO, O_PREFIX, O_SUBNET, O_ADOPT,
	       O_SADDR, O_RATE, O_CONC, O_UNLIM, O_KEY, O_SYNC, O_THREADS, O_LOG, O_DIR, O_OPS,
	       O_FAILBACK };
	static const struct option opts[] = {
		{"data-dir", required_argument, 0, O_DIR}, {"server", required_argument, 0, O_SERVER},
		{"join-token", required_argument, 0, O_JOIN}, {"join-token-file", required_argument, 0, O_JOINF},
		{"ca-file", required_argument, 0, O_CA}, {"hostname", required_argument, 0, O_HOST},
		{"domain", required_argument, 0, O_DOMAIN}, {"management-resource", required_argument, 0, O_MRES},
		{"isolation", required_argument, 0, O_ISO}, {"netns-prefix", required_argument, 0, O_PREFIX},
		{"netns-subnet", required_argument, 0, O_SUBNET}, {"adopt", required_argument, 0, O_ADOPT},
		{"server-addr", required_argument, 0, O_SADDR}, {"rate", required_argument, 0, O_RATE},
		{"concurrency", required_argument, 0, O_CONC}, {"unlimited", no_argument, 0, O_UNLIM},
		{"key-type", required_argument, 0, O_KEY}, {"sync-timeout", required_argument, 0, O_SYNC},
		{"threads", required_argument, 0, O_THREADS}, {"log-level", required_argument, 0, O_LOG},
		{"ops-listen", required_argument, 0, O_OPS}, {"failback-interval", required_argument, 0, O_FAILBACK},
		{"resource-group", required_argument, 0, 'g'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "rotate-secret"))) {
		cmd = argv[1];
		argc--;
		argv++;
	}
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, cmd ? "hg:" : "h", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (!cmd) {
				usage(stderr);
				rc = 2;
				goto done;
			}
			group = optarg;
			break;
		case O_DIR: cfg.data_dir = optarg; break;
		case O_SERVER: /* repeated: one comma-separated list */
			if (strlen(servers) + strlen(optarg) + 2 > sizeof(servers)) {
				rc = cli_fail("too many --server URLs");
				goto done;
			}
			if (servers[0])
				strcat(servers, ",");
			strcat(servers, optarg);
			cfg.server_url = servers;
			break;
		case O_OPS: cfg.ops_listen = optarg; break;
		case O_FAILBACK: {
			char *end;
			long s = strtol(optarg, &end, 10);
			if (end == optarg || *end || s < 1 || s > AGENT_FAILBACK_MAX_S) {
				rc = cli_fail("--failback-interval takes seconds, 1 to %d", AGENT_FAILBACK_MAX_S);
				goto done;
			}
			cfg.failback_s = (int)s;
			break;
		}
		case O_JOIN: cfg.join_token = optarg; break;
		case O_JOINF:
			if (read_token_file(optarg, &token_from_file))
				goto done;
			cfg.join_token = token_from_file;
			break;
		case O_CA: cfg.ca_file = optarg; break;
		case O_HOST: cfg.hostname = optarg; break;
		case O_DOMAIN: cfg.domain = optarg; break;
		case O_MRES: cfg.management_resource = optarg; break;
		case O_ISO:
			if (parse_isolation(optarg, &cfg.isolation)) {
				rc = cli_fail("--isolation must be auto, netns or appservice");
				goto done;
			}
			break;
		case O_PREFIX: cfg.netns_prefix = optarg; break;
		case O_SUBNET: cfg.netns_subnet = optarg; break;
		case O_ADOPT:
			if (nadopt == MAX_ADOPT || !strchr(optarg, '=')) {
				rc = cli_fail("--adopt takes NAME=/path/of/netns (at most %d)", MAX_ADOPT);
				goto done;
			}
			adopt[nadopt++] = optarg;
			break;
		case O_SADDR: cfg.server_addr = optarg; break;
		case O_RATE: cfg.rate = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_CONC: cfg.concurrency = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_UNLIM: cfg.unlimited = true; break;
		case O_KEY: cfg.key_type = optarg; break;
		case O_SYNC: cfg.sync_timeout_s = atoi(optarg); break;
		case O_THREADS: cfg.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_LOG:
			if (bc_log_parse_level(optarg) < 0) {
				rc = cli_fail("unknown log level %s", optarg);
				goto done;
			}
			bc_log_set_level(bc_log_parse_level(optarg));
			break;
		case 'h': usage(stdout); rc = 0; goto done;
		default: usage(stderr); rc = 2; goto done;
		}
	}
	if (cmd) {
		rc = ctl_command(cmd, cfg.data_dir, group, optind < argc ? argv[optind] : NULL);
		goto done;
	}
	if (!cfg.data_dir) {
		usage(stderr);
		rc = 2;
		goto done;
	}
	if (cfg.key_type && strcmp(cfg.key_type, "RSA") != 0 && strcmp(cfg.key_type, "EC") != 0) {
		rc = cli_fail("--key-type must be RSA or EC");
		goto done;
	}
	cfg.adopt = adopt;
	struct bc_error err = {0};
	signal(SIGPIPE, SIG_IGN);
	if (agent_run(&cfg, &err) != BC_OK)
		rc = cli_fail("agent: %s", err.msg);
	else
		rc = 0;
done:
	if (token_from_file) {
		bc_wipe(token_from_file, strlen(token_from_file));
		free(token_from_file);
	}
	return rc;
}
