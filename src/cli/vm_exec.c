/* badge vm exec [--data-dir DIR | --socket PATH] NAME -- CMD [ARG...]
 *
 * Runs CMD inside instance NAME. The agent hands over the instance's network namespace as a file
 * descriptor on its control socket; we setns() into it, give the command the namespace's hosts
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
#include "agent/agent.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: badge vm exec [--data-dir DIR | --socket PATH] NAME -- CMD [ARG...]\n"
		   "The data dir is the agent's (or badge up's); default $BADGE_AGENT_DIR, else /var/lib/badge/agent.\n");
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
	const char *sock = NULL;
	char path[4096];
	static const struct option opts[] = {
		{"data-dir", required_argument, 0, 'd'}, {"socket", required_argument, 0, 's'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	int c;
	if (argc > 1 && !strcmp(argv[1], "exec")) { /* called as argv = {"vm", "exec", ...} */
		argc--;
		argv++;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hd:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind++];
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
	if (agent_ctl_get(sock, name, &info, &err) != BC_OK)
		return cli_fail("%s", err.msg);
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
