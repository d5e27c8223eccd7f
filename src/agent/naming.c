/* Host-unique names of instances (pure: no I/O, no agent state).
 *
 * An instance is known to the server by its ARM resource id; its name is unique only within its
 * resource group. Everything the agent makes on the host for an instance (network namespace
 * "<prefix><local>", /etc/netns/<ns>/hosts, the veth names hashed from it, the App Service port
 * and secret) is keyed by the instance's *local name*:
 *   - its name, when no other instance on the host holds that local name and no other instance
 *     arriving in the same sync has the same name (the common case, and the form the docs and
 *     operators know: badge-vm1);
 *   - else "<name>-<hash>", hash = the first 8 hex digits of SHA-256 of the lower-cased resource
 *     id (ARM ids compare without regard to case), longer only if even that is taken.
 * A local name, once given, is kept for the instance's life on the host (saved in names.json):
 * a namespace that serves is never renamed, whatever arrives later. Two same-named instances
 * arriving together both get the hashed form, so that neither depends on the order of a sync. */
#include "agent/agentint.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include "core/util.h"

static bool held(const struct agent_naming *v, size_t n, size_t self, const char *local)
{
	for (size_t i = 0; i < n; i++)
		if (i != self && v[i].local[0] && !strcmp(v[i].local, local))
			return true;
	return false;
}

/* Another entry without a local name yet has the same name. */
static bool arrives_twice(const struct agent_naming *v, size_t n, size_t self)
{
	for (size_t i = 0; i < n; i++)
		if (i != self && !v[i].local[0] && !strcmp(v[i].name, v[self].name))
			return true;
	return false;
}

int agent_rid_digest(const char *resource_id, char out[65])
{
	char low[BC_LIMIT_RESOURCE_ID + 1];
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t n = strlen(resource_id);
	if (n > BC_LIMIT_RESOURCE_ID)
		return BC_ERR_LIMIT;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)resource_id[i]);
	if (EVP_Digest(low, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		return BC_ERR_CRYPTO;
	bc_hex(md, sizeof(md), out);
	return BC_OK;
}

static bool hashed(struct agent_naming *v, size_t n, size_t self)
{
	char digest[65];
	if (agent_rid_digest(v[self].resource_id, digest) != BC_OK)
		return false;
	for (int k = AGENT_LOCAL_HASH_LEN; k <= 64; k += 4) {
		char cand[AGENT_LOCAL_MAX];
		if ((size_t)snprintf(cand, sizeof(cand), "%s-%.*s", v[self].name, k, digest) >= sizeof(cand))
			return false;
		if (!held(v, n, self, cand)) {
			memcpy(v[self].local, cand, sizeof(cand));
			return true;
		}
	}
	return false;
}

int agent_names_assign(struct agent_naming *v, size_t n, const char *const *legacy, size_t nlegacy)
{
	int rc = BC_OK;
	/* saved names stay; a duplicate (a damaged names.json) is dropped from the later entry */
	for (size_t i = 0; i < n; i++)
		if (v[i].local[0])
			for (size_t j = 0; j < i; j++)
				if (!strcmp(v[j].local, v[i].local)) {
					v[i].local[0] = '\0';
					break;
				}
	/* state from before names.json: the plain name an older agent made goes to the first
	 * instance of that name, so that its namespace (live) is not replaced */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; !v[i].local[0] && k < nlegacy; k++)
			if (!strcmp(legacy[k], v[i].name) && !held(v, n, i, v[i].name))
				snprintf(v[i].local, sizeof(v[i].local), "%s", v[i].name);
	/* plain names first, all of them, so that no hashed name takes one another wants */
	bool plain[AGENT_MAX_INSTANCES] = {0};
	for (size_t i = 0; i < n && i < AGENT_MAX_INSTANCES; i++)
		plain[i] = !v[i].local[0] && !arrives_twice(v, n, i) && !held(v, n, i, v[i].name);
	for (size_t i = 0; i < n && i < AGENT_MAX_INSTANCES; i++)
		if (plain[i])
			snprintf(v[i].local, sizeof(v[i].local), "%s", v[i].name);
	for (size_t i = 0; i < n; i++)
		if (!v[i].local[0] && (i >= AGENT_MAX_INSTANCES || !hashed(v, n, i)))
			rc = BC_ERR_LIMIT;
	return rc;
}

int agent_rid_group(const char *resource_id, char *out, size_t n)
{
	static const char key[] = "/resourcegroups/";
	out[0] = '\0';
	for (const char *p = resource_id; p && *p; p++) {
		if (strncasecmp(p, key, sizeof(key) - 1) != 0)
			continue;
		const char *g = p + sizeof(key) - 1, *end = strchr(g, '/');
		size_t len = end ? (size_t)(end - g) : strlen(g);
		if (!len || len >= n)
			return BC_ERR_LIMIT;
		memcpy(out, g, len);
		out[len] = '\0';
		return BC_OK;
	}
	return BC_ERR_NOT_FOUND;
}

bool agent_selector_matches(const char *sel, const char *name, const char *resource_id, const char *group)
{
	if (sel[0] == '/') /* a resource id; a trailing slash is forgiven */
		return resource_id &&
		       (bc_streq_ci(sel, resource_id) ||
			(strlen(sel) == strlen(resource_id) + 1 && sel[strlen(sel) - 1] == '/' &&
			 !strncasecmp(sel, resource_id, strlen(resource_id))));
	const char *slash = strchr(sel, '/');
	if (!slash)
		return !strcmp(sel, name);
	/* GROUP/NAME: resource group names compare without regard to case, as in ARM */
	size_t glen = (size_t)(slash - sel);
	return group && strlen(group) == glen && !strncasecmp(sel, group, glen) && !strcmp(slash + 1, name);
}
