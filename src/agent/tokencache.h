/* The agent's token cache: one entry per (identity, resource), refreshed ahead of expiry, one
 * upstream request at a time per entry however many callers ask at once (single flight), and a
 * still-valid cached token served when the upstream is down. */
#ifndef AGENT_TOKENCACHE_H
#define AGENT_TOKENCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "agent/imds.h"
#include "core/error.h"

/* Gets a fresh token from upstream. Called without any cache lock held, from the caller's
 * thread. Fills out (owned by the cache afterwards) on success. */
typedef int (*tc_fetch_fn)(void *ctx, const char *object_id, const char *resource, struct imds_token *out,
			   struct bc_error *err);

#define TC_DEFAULT_MAX_ENTRIES 4096
/* A token is refreshed once half its lifetime has passed (at the latest this long before it
 * expires), and never served with less than TC_SERVE_MARGIN_S left. */
#define TC_REFRESH_MARGIN_S 300
#define TC_SERVE_MARGIN_S 30

struct token_cache;

int tc_new(struct token_cache **out, tc_fetch_fn fetch, void *ctx, size_t max_entries) BC_MUST_CHECK;
void tc_free(struct token_cache *c);
/* A copy of the token for (object_id, resource) in *out (release with imds_token_release). */
int tc_get(struct token_cache *c, const char *object_id, const char *resource, struct imds_token *out,
	   struct bc_error *err) BC_MUST_CHECK;
/* Drops every entry of object_id (NULL: all), e.g. when the identity left the host. */
void tc_forget(struct token_cache *c, const char *object_id);
size_t tc_count(struct token_cache *c);

#endif
