/* The badge command: one entry point per command family, each in a file of its own. An entry
 * point gets argv starting at the family name and returns the process exit status. */
#ifndef BADGE_CLI_H
#define BADGE_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include "core/buf.h"
#include "core/error.h"

int cli_server_main(int argc, char **argv);    /* badge server (server.c) */
int cli_directory_main(int argc, char **argv); /* badge directory ... (directory.c) */
int cli_up_main(int argc, char **argv);        /* badge up (up.c) */
int cli_agent_main(int argc, char **argv);     /* badge agent (agent.c) */
int cli_vm_exec_main(int argc, char **argv);   /* badge vm exec NAME -- CMD (vm_exec.c) */
int cli_login_main(int argc, char **argv);     /* badge login (login.c) */
int cli_group_main(int argc, char **argv);     /* badge group ... (manager commands) */
int cli_identity_main(int argc, char **argv);
int cli_vm_main(int argc, char **argv);
int cli_keyvault_main(int argc, char **argv);  /* keyvault create|show|list|delete|set-policy|delete-policy */
int cli_keyvault_data_main(int argc, char **argv); /* keyvault secret|key|audit ... */
int cli_role_main(int argc, char **argv);
int cli_host_main(int argc, char **argv);
int cli_token_main(int argc, char **argv);     /* badge token (libbadge) */
int cli_migrate_main(int argc, char **argv);   /* badge migrate */

/* Output: JSON by default, "-o table" for people. */
void cli_print_json(const json_t *j);
int cli_fail(const char *fmt, ...) BC_PRINTF(1, 2); /* prints "badge: <msg>" to stderr, returns 1 */

#endif
