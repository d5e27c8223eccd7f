/* badge vm exec [--data-dir DIR | --socket PATH] [-g GROUP] NAME|RESOURCE_ID -- CMD [ARG...]
 *
 * Runs CMD inside an instance: NAME when no other instance on the host has that name, else
 * -g GROUP NAME or the instance's resource id (an ambiguous NAME fails and lists the candidates).
 * The agent hands over the instance's network namespace as a file descriptor on its control
 * socket; we setns() into it, give the command the namespace's hosts
 * file (a private mount namespace with /etc/hosts bound over, as `ip netns exec` does), and exec.
 * Instances of the App Service flavour get IDENTITY_ENDPOINT and IDENTITY_HEADER instead. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <jansson.h>
#include "agent/agent.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: badge vm exec [--data-dir DIR | --socket PATH] [-g GROUP] NAME -- CMD [ARG...]\n"
		   "       badge vm exec [--data-dir DIR | --socket PATH] RESOURCE_ID -- CMD [ARG...]\n"
		   "Runs CMD inside an instance this host's agent serves. NAME alone works when no other instance\n"
		   "on the host has that name; instances named alike (in other resource groups or subscriptions)\n"
		   "are told apart with -g/--resource-group GROUP, or by their resource id\n"
		   "(/subscriptions/SUB/resourceGroups/GROUP/providers/Microsoft.Compute/virtualMachines/NAME,\n"
		   "as `badge agent status` shows). An ambiguous NAME fails and lists the candidates.\n"
		   "The data dir is the agent's (or badge up's); default $BADGE_AGENT_DIR, else /var/lib/badge/agent.\n");
}

/* The candidates of an ambiguous selector, on stderr. */
static int ambiguous(const char *sock, const char *selector, const char *group, const char *name)
{
	struct bc_error err = {0};
	char *text = NULL;
	fprintf(stderr, "badge: instance %s%s%s is ambiguous on this host; it could be:\n", name,
		group ? " in resource group " : "", group ? group : "");
	if (agent_ctl_matches(sock, selector, &text, &err) == BC_OK) {
		json_t *arr = json_loads(text, 0, NULL), *v;
		size_t i;
		json_array_foreach(arr, i, v)
			fprintf(stderr, "  %s\n", json_string_value(v) ? json_string_value(v) : "?");
		json_decref(arr);
		free(text);
	} else {
		fprintf(stderr, "  (cannot list them: %s)\n", err.msg);
	}
	fprintf(stderr, "badge: give %sthe resource id\n", group ? "" : "-g RESOURCE_GROUP NAME, or ");
	return 1;
}

/* The agent's socket: DIR/agent.sock, or DIR/agent/agent.sock for badge up's layout. */
static int find_socket(const char *dir, char *out, size_t n)
{
	char sub[4096];
	if (agent_ctl_path(dir, out, n) == BC_OK && access(out, F_OK) == 0)
		return 0;
	snprintf(sub, sizeof(sub), "%s/agent", dir);
	if (agent_ctl_path(sub, out, n) == BC_OK && access(out, F_OK) == 0)
		return 0;
	return agent_ctl_path(dir, out, n) == BC_OK ? 0 : -1;
}

static int enter_namespace(const struct agent_exec_info *info)
{
	if (setns(info->fd, CLONE_NEWNET) != 0)
		return cli_fail("cannot enter the instance's network namespace: %s", strerror(errno));
	close(info->fd);
	if (!info->hosts_path[0] || access(info->hosts_path, R_OK) != 0)
		return 0;
	/* a mount namespace of our own, slave to the parent's, with the instance's hosts file */
	if (unshare(CLONE_NEWNS) != 0)
		return cli_fail("unshare(mount namespace): %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) != 0)
		return cli_fail("making / a slave mount: %s", strerror(errno));
	if (mount(info->hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) != 0)
		return cli_fail("binding %s over /etc/hosts: %s", info->hosts_path, strerror(errno));
	return 0;
}

int cli_vm_exec_main(int argc, char **argv)
{
	const char *dir = getenv("BADGE_AGENT_DIR");
	const char *sock = NULL, *group = NULL, *name = NULL;
	char path[4096], selector[2048];
	static const struct option opts[] = {
		{"data-dir", required_argument, 0, 'd'}, {"socket", required_argument, 0, 's'},
		{"resource-group", required_argument, 0, 'g'}, {"name", required_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	int c;
	if (argc > 1 && !strcmp(argv[1], "exec")) { /* called as argv = {"vm", "exec", ...} */
		argc--;
		argv++;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hd:s:g:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': sock = optarg; break;
		case 'g': group = optarg; break;
		case 'n': name = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!name && optind < argc && strcmp(argv[optind], "--") != 0)
		name = argv[optind++];
	if (!name) {
		usage(stderr);
		return 2;
	}
	if (group && (name[0] == '/' || strchr(group, '/') || strchr(name, '/')))
		return cli_fail("-g takes a resource group and an instance name, not a resource id");
	if ((size_t)snprintf(selector, sizeof(selector), "%s%s%s", group ? group : "", group ? "/" : "", name) >=
	    sizeof(selector))
		return cli_fail("instance name too long");
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!sock) {
		if (find_socket(dir ? dir : "/var/lib/badge/agent", path, sizeof(path)) != 0)
			return cli_fail("data dir path too long");
		sock = path;
	}
	struct agent_exec_info info;
	struct bc_error err = {0};
	if (agent_ctl_get(sock, selector, &info, &err) != BC_OK)
		return err.status == BC_ERR_CONFLICT ? ambiguous(sock, selector, group, name) : cli_fail("%s", err.msg);
	if (info.netns) {
		if (enter_namespace(&info))
			return 1;
		/* an endpoint override would hide a broken namespace: the instance uses 169.254.169.254 */
		unsetenv("IDENTITY_ENDPOINT");
		unsetenv("IDENTITY_HEADER");
	} else {
		setenv("IDENTITY_ENDPOINT", info.endpoint, 1);
		setenv("IDENTITY_HEADER", info.secret, 1);
		explicit_bzero(info.secret, sizeof(info.secret));
	}
	execvp(argv[optind], argv + optind);
	return cli_fail("cannot run %s: %s", argv[optind], strerror(errno)) + 126;
}
