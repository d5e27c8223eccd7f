/* badge: one executable for every role (server, agent, up) and every management command. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

/* A family not linked into this build answers with a clear error instead of failing the link;
 * the real entry points (strong symbols) replace these. */
#define WEAK_FAMILY(fn, what)                                                   \
	__attribute__((weak)) int fn(int argc, char **argv)                     \
	{                                                                       \
		(void)argc;                                                     \
		(void)argv;                                                     \
		fprintf(stderr, "badge: %s is not available in this build\n", what); \
		return 2;                                                       \
	}
WEAK_FAMILY(cli_server_main, "server")
WEAK_FAMILY(cli_directory_main, "directory")
WEAK_FAMILY(cli_up_main, "up")
WEAK_FAMILY(cli_agent_main, "agent")
WEAK_FAMILY(cli_vm_exec_main, "vm exec")
WEAK_FAMILY(cli_login_main, "login")
WEAK_FAMILY(cli_group_main, "group")
WEAK_FAMILY(cli_identity_main, "identity")
WEAK_FAMILY(cli_vm_main, "vm")
WEAK_FAMILY(cli_keyvault_main, "keyvault")
WEAK_FAMILY(cli_keyvault_data_main, "keyvault secret/key")
WEAK_FAMILY(cli_role_main, "role")
WEAK_FAMILY(cli_host_main, "host")
WEAK_FAMILY(cli_token_main, "token")
WEAK_FAMILY(cli_migrate_main, "migrate")

void cli_print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("badge: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} families[] = {
	{"up", cli_up_main, "run server and agent together on this machine (SQLite)"},
	{"server", cli_server_main, "run the directory, resource manager and vault"},
	{"agent", cli_agent_main, "run the host agent and the instances' metadata endpoints"},
	{"directory", cli_directory_main, "tenants, principals, credentials, signing keys"},
	{"login", cli_login_main, "sign in to a badge server"},
	{"group", cli_group_main, "resource groups"},
	{"identity", cli_identity_main, "user-assigned identities"},
	{"vm", cli_vm_main, "instances and their identities; vm exec runs a command inside one"},
	{"keyvault", cli_keyvault_main, "vaults, access policies, secrets, keys, audit"},
	{"role", cli_role_main, "role assignments"},
	{"host", cli_host_main, "hosts and join tokens"},
	{"token", cli_token_main, "get a token as a managed identity (libbadge)"},
	{"migrate", cli_migrate_main, "copy an installation from one store to another"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: badge <command> [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		fprintf(f, "  %-10s %s\n", families[i].name, families[i].help);
	fprintf(f, "\nRun 'badge <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("badge 0.1.0");
		return 0;
	}
	/* --help anywhere asks for the family's usage and never runs the command (a `badge vm delete
	 * ... --help` must not delete). Families print usage on stderr with status 2 when asked with
	 * argv[1] == "--help"; asked for it, it is the answer: stdout, status 0. Arguments after
	 * `--` belong to another program (badge vm exec NAME -- cmd --help). */
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			char *sub[4] = {argv[1], "--help", NULL, NULL};
			int n = 2;
			if (!strcmp(argv[1], "vm") && !strcmp(argv[2], "exec"))
				return cli_vm_exec_main(2, (char *[]){"exec", "--help", NULL});
			fflush(stdout);
			dup2(STDOUT_FILENO, STDERR_FILENO);
			if (!strcmp(argv[1], "keyvault") && (!strcmp(argv[2], "secret") || !strcmp(argv[2], "key") ||
							     !strcmp(argv[2], "audit"))) {
				sub[0] = argv[2];
				int rc = cli_keyvault_data_main(n, sub);
				return rc == 2 ? 0 : rc;
			}
			for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
				if (!strcmp(argv[1], families[f].name)) {
					int rc = families[f].fn(n, sub);
					return rc == 2 ? 0 : rc;
				}
			break;
		}
	if (!strcmp(argv[1], "vm") && argc > 2 && !strcmp(argv[2], "exec"))
		return cli_vm_exec_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "keyvault") && argc > 2 &&
	    (!strcmp(argv[2], "secret") || !strcmp(argv[2], "key") || !strcmp(argv[2], "audit")))
		return cli_keyvault_data_main(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (!strcmp(argv[1], families[i].name))
			return families[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "badge: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
