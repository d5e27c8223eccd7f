/* The agent's server list (--server URL1,URL2 or repeated --server): order kept, blanks and
 * trailing slashes dropped, limits enforced. */
#include <string.h>
#include "agent/agentint.h"
#include "test.h"

static struct agent *new_agent(void)
{
	struct agent *a = NULL;
	struct agent_config cfg = {.data_dir = "/nonexistent"};
	struct bc_error err = {0};
	return agent_new(&a, &cfg, &err) == BC_OK ? a : NULL;
}

TEST(list_keeps_the_order_and_trims)
{
	struct agent *a = new_agent();
	struct bc_error err = {0};
	REQUIRE(a != NULL);
	REQUIRE(agent_servers_set(a, " https://a:1/ ,,https://b:2,https://c:3", &err) == BC_OK);
	CHECK(a->nservers == 3);
	CHECK(!strcmp(a->servers[0], "https://a:1"));
	CHECK(!strcmp(a->servers[1], "https://b:2"));
	CHECK(!strcmp(a->servers[2], "https://c:3"));
	CHECK(a->active == 0);
	REQUIRE(agent_servers_set(a, "https://only:4", &err) == BC_OK);
	CHECK(a->nservers == 1 && !strcmp(a->servers[0], "https://only:4"));
	agent_free(a);
}

TEST(empty_and_oversized_lists_are_refused)
{
	struct agent *a = new_agent();
	struct bc_error err = {0};
	REQUIRE(a != NULL);
	CHECK(agent_servers_set(a, "", &err) == BC_ERR_INVALID);
	CHECK(agent_servers_set(a, " , ,", &err) == BC_ERR_INVALID);
	CHECK(agent_servers_set(a, "u1,u2,u3,u4,u5,u6,u7,u8,u9", &err) == BC_ERR_LIMIT);
	char big[AGENT_SERVER_URL_MAX + 16];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(agent_servers_set(a, big, &err) == BC_ERR_LIMIT);
	agent_free(a);
}

TEST_MAIN(T(list_keeps_the_order_and_trims), T(empty_and_oversized_lists_are_refused))
