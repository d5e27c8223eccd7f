/* Host-unique local names of instances (src/agent/naming.c): the plain name when it is unique on
 * the host, "<name>-<hash of the resource id>" when instances share it, never a rename of a name
 * given, the same answer whatever the order of a sync; and the control socket's selectors. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "agent/agentint.h"
#include "test.h"

#define RID(g, n)                                                                                            \
	"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/" g                              \
	"/providers/Microsoft.Compute/virtualMachines/" n

static void entry(struct agent_naming *e, const char *name, const char *rid, const char *local)
{
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->resource_id = rid;
	snprintf(e->local, sizeof(e->local), "%s", local ? local : "");
}

/* "<name>-<first k hex digits of SHA-256(lower-cased rid)>" */
static void hashed(const char *name, const char *rid, int k, char *out, size_t n)
{
	char d[65];
	REQUIRE(agent_rid_digest(rid, d) == BC_OK);
	if ((size_t)snprintf(out, n, "%s-%.*s", name, k, d) >= n)
		out[0] = '\0'; /* too long for the caller's buffer: no name (the caller's check fails) */
}

TEST(digest_is_sha256_of_the_lower_cased_id)
{
	char d[65];
	REQUIRE(agent_rid_digest("ABC", d) == BC_OK);
	CHECK_STR(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char e[65];
	REQUIRE(agent_rid_digest(RID("RG1", "VM1"), d) == BC_OK);
	REQUIRE(agent_rid_digest(RID("rg1", "vm1"), e) == BC_OK);
	CHECK_STR(d, e); /* ARM ids compare without regard to case */
}

TEST(unique_names_stay_plain)
{
	struct agent_naming v[3];
	entry(&v[0], "vm1", RID("rg1", "vm1"), NULL);
	entry(&v[1], "vm2", RID("rg1", "vm2"), NULL);
	entry(&v[2], "web", RID("rg2", "web"), NULL);
	REQUIRE(agent_names_assign(v, 3, NULL, 0) == BC_OK);
	CHECK_STR(v[0].local, "vm1");
	CHECK_STR(v[1].local, "vm2");
	CHECK_STR(v[2].local, "web");
}

TEST(same_name_arriving_together_both_hashed_in_any_order)
{
	char ha[AGENT_LOCAL_MAX], hb[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgA", "vm1"), AGENT_LOCAL_HASH_LEN, ha, sizeof(ha));
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	CHECK(strcmp(ha, hb) != 0);
	CHECK_EQ_INT(strlen(ha), strlen("vm1-") + AGENT_LOCAL_HASH_LEN);
	for (int order = 0; order < 2; order++) {
		struct agent_naming v[3];
		entry(&v[order], "vm1", RID("rgA", "vm1"), NULL);
		entry(&v[1 - order], "vm1", RID("rgB", "vm1"), NULL);
		entry(&v[2], "other", RID("rgA", "other"), NULL);
		REQUIRE(agent_names_assign(v, 3, NULL, 0) == BC_OK);
		CHECK_STR(v[order].local, ha);
		CHECK_STR(v[1 - order].local, hb);
		CHECK_STR(v[2].local, "other");
	}
}

TEST(the_first_keeps_the_plain_name_a_later_one_is_hashed)
{
	char hb[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	struct agent_naming v[2];
	/* the new one listed first: order must not matter, the holder keeps its name */
	entry(&v[0], "vm1", RID("rgB", "vm1"), NULL);
	entry(&v[1], "vm1", RID("rgA", "vm1"), "vm1");
	REQUIRE(agent_names_assign(v, 2, NULL, 0) == BC_OK);
	CHECK_STR(v[1].local, "vm1");
	CHECK_STR(v[0].local, hb);
}

TEST(given_names_are_never_changed)
{
	/* a hashed name stays hashed after the plain holder left (its namespace is live) ... */
	char hb[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	struct agent_naming v[2];
	entry(&v[0], "vm1", RID("rgB", "vm1"), hb);
	REQUIRE(agent_names_assign(v, 1, NULL, 0) == BC_OK);
	CHECK_STR(v[0].local, hb);
	/* ... and a newcomer named alike may take the free plain name */
	entry(&v[1], "vm1", RID("rgC", "vm1"), NULL);
	REQUIRE(agent_names_assign(v, 2, NULL, 0) == BC_OK);
	CHECK_STR(v[0].local, hb);
	CHECK_STR(v[1].local, "vm1");
}

TEST(a_literal_name_equal_to_a_hashed_one_does_not_collide)
{
	char hb[AGENT_LOCAL_MAX], hx[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	hashed(hb, RID("rgX", "x"), AGENT_LOCAL_HASH_LEN, hx, sizeof(hx));
	struct agent_naming v[3];
	entry(&v[0], "vm1", RID("rgA", "vm1"), "vm1");
	entry(&v[1], "vm1", RID("rgB", "vm1"), hb);
	entry(&v[2], hb, RID("rgX", "x"), NULL); /* an instance literally named like v[1]'s local */
	REQUIRE(agent_names_assign(v, 3, NULL, 0) == BC_OK);
	CHECK_STR(v[1].local, hb);
	CHECK_STR(v[2].local, hx);
}

TEST(a_hashed_name_taken_grows_longer)
{
	char h8[AGENT_LOCAL_MAX], h12[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), 8, h8, sizeof(h8));
	hashed("vm1", RID("rgB", "vm1"), 12, h12, sizeof(h12));
	struct agent_naming v[3];
	entry(&v[0], "vm1", RID("rgA", "vm1"), "vm1");
	entry(&v[1], "zz", RID("rgZ", "zz"), h8); /* holds it (an adopted name, say) */
	entry(&v[2], "vm1", RID("rgB", "vm1"), NULL);
	REQUIRE(agent_names_assign(v, 3, NULL, 0) == BC_OK);
	CHECK_STR(v[2].local, h12);
}

TEST(a_duplicate_saved_name_goes_to_the_first)
{
	char hb[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	struct agent_naming v[2];
	entry(&v[0], "vm1", RID("rgA", "vm1"), "vm1");
	entry(&v[1], "vm1", RID("rgB", "vm1"), "vm1"); /* damaged state */
	REQUIRE(agent_names_assign(v, 2, NULL, 0) == BC_OK);
	CHECK_STR(v[0].local, "vm1");
	CHECK_STR(v[1].local, hb);
}

TEST(legacy_plain_name_goes_to_the_first_of_that_name)
{
	/* an older agent served the first vm1 in badge-vm1: it keeps it even though two arrive */
	const char *legacy[] = {"vm1", "gone"};
	char hb[AGENT_LOCAL_MAX];
	hashed("vm1", RID("rgB", "vm1"), AGENT_LOCAL_HASH_LEN, hb, sizeof(hb));
	struct agent_naming v[2];
	entry(&v[0], "vm1", RID("rgA", "vm1"), NULL);
	entry(&v[1], "vm1", RID("rgB", "vm1"), NULL);
	REQUIRE(agent_names_assign(v, 2, legacy, 2) == BC_OK);
	CHECK_STR(v[0].local, "vm1");
	CHECK_STR(v[1].local, hb);
}

TEST(names_fit_the_namespace_and_the_kernel)
{
	char name[AGENT_NAME_MAX + 1];
	memset(name, 'n', AGENT_NAME_MAX);
	name[AGENT_NAME_MAX] = '\0';
	struct agent_naming v[2];
	entry(&v[0], name, RID("rgA", "n"), NULL);
	entry(&v[1], name, RID("rgB", "n"), NULL);
	REQUIRE(agent_names_assign(v, 2, NULL, 0) == BC_OK);
	CHECK_EQ_INT(strlen(v[0].local), AGENT_NAME_MAX + 1 + AGENT_LOCAL_HASH_LEN);
	struct agent_instance in;
	/* "badge-" + the longest local name (64 hex digits) fits ns_name, /run/netns/NAME and
	 * /etc/netns/NAME/hosts (a file name, at most NAME_MAX) */
	CHECK(strlen("badge-") + AGENT_LOCAL_MAX - 1 < sizeof(in.ns_name));
	CHECK(sizeof(in.ns_name) - 1 <= NAME_MAX);
}

TEST(selectors)
{
	const char *rid = RID("rgA", "vm1");
	CHECK(agent_selector_matches("vm1", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("VM1", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("vm", "vm1", rid, "rgA"));
	CHECK(agent_selector_matches("rgA/vm1", "vm1", rid, "rgA"));
	CHECK(agent_selector_matches("RGA/vm1", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("rgB/vm1", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("rg/vm1", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("rgA/vm", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches("/vm1", "vm1", rid, "rgA"));
	CHECK(agent_selector_matches(rid, "vm1", rid, "rgA"));
	CHECK(agent_selector_matches(RID("RGA", "VM1"), "vm1", rid, "rgA"));
	CHECK(agent_selector_matches(RID("rgA", "vm1") "/", "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches(RID("rgB", "vm1"), "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches(RID("rgA", "vm"), "vm1", rid, "rgA"));
	CHECK(!agent_selector_matches(RID("rgA", "vm1") "//", "vm1", rid, "rgA"));
}

TEST(resource_group_of_an_id)
{
	char g[91];
	CHECK_EQ_INT(agent_rid_group(RID("rg-A.1", "vm1"), g, sizeof(g)), BC_OK);
	CHECK_STR(g, "rg-A.1");
	CHECK_EQ_INT(agent_rid_group("/subscriptions/x/RESOURCEGROUPS/Up", g, sizeof(g)), BC_OK);
	CHECK_STR(g, "Up");
	CHECK_EQ_INT(agent_rid_group("/subscriptions/x", g, sizeof(g)), BC_ERR_NOT_FOUND);
	CHECK_EQ_INT(agent_rid_group("/subscriptions/x/resourceGroups//p", g, sizeof(g)), BC_ERR_LIMIT);
}

TEST_MAIN(T(digest_is_sha256_of_the_lower_cased_id), T(unique_names_stay_plain),
	  T(same_name_arriving_together_both_hashed_in_any_order),
	  T(the_first_keeps_the_plain_name_a_later_one_is_hashed), T(given_names_are_never_changed),
	  T(a_literal_name_equal_to_a_hashed_one_does_not_collide), T(a_hashed_name_taken_grows_longer),
	  T(a_duplicate_saved_name_goes_to_the_first), T(legacy_plain_name_goes_to_the_first_of_that_name),
	  T(names_fit_the_namespace_and_the_kernel), T(selectors), T(resource_group_of_an_id))
