/* Token-bucket rate limiting keyed by a string, shared by the services (vault, directory,
 * manager) to throttle the way Azure does.
 *
 * A limiter is a striped hash of buckets: a key hashes (seeded, per limiter) to one of
 * BC_RATELIMIT_STRIPES stripes, each with its own lock, chain table and LRU list, so a take costs
 * one hash, one uncontended lock and a short chain walk. Memory is bounded: at most max_keys
 * buckets live at once; inserting into a full stripe evicts its least recently used bucket (an
 * idle one: a bucket that has refilled holds nothing worth keeping). A refused take consumes
 * nothing (Key Vault: "requests that return a 429 do not count towards the throttle limits").
 *
 * Time is milliseconds of bc_ratelimit_now_ms(): the monotonic clock, or the one a test injected
 * with bc_ratelimit_clock_set. A key must always be used with the same rate. */
#ifndef BC_RATELIMIT_H
#define BC_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

#define BC_RATELIMIT_STRIPES    64
#define BC_RATELIMIT_KEY_MAX    192 /* longer keys are stored as a prefix plus a hash of the whole */
#define BC_RATELIMIT_BURST_MAX  1000000000
#define BC_RATELIMIT_PERIOD_MAX (86400 * 1000)

/* burst tokens at most; refill tokens added per period_ms. burst == 0: unlimited. */
struct bc_rate {
	int64_t burst;
	int64_t refill;
	int64_t period_ms;
};

struct bc_rate_result {
	int64_t remaining;      /* whole tokens left after the take (or left, when refused) */
	int64_t retry_after_ms; /* refused: when cost tokens will be there; 0 when allowed */
};

struct bc_ratelimit;

/* max_keys: the bound on live buckets (0 = BC_RATELIMIT_DEFAULT_KEYS). NULL when out of memory. */
#define BC_RATELIMIT_DEFAULT_KEYS 65536
struct bc_ratelimit *bc_ratelimit_new(size_t max_keys);
void bc_ratelimit_free(struct bc_ratelimit *rl); /* NULL-safe */

/* Takes cost tokens (1 when 0; capped at the burst) from key's bucket; true when it had them.
 * An unlimited rate (burst 0), or a NULL limiter, always allows (remaining -1). When a bucket
 * cannot be allocated the request is allowed: throttling fails open. out may be NULL. */
bool bc_ratelimit_take(struct bc_ratelimit *rl, const char *key, size_t klen, const struct bc_rate *rate,
		       int64_t cost, struct bc_rate_result *out);
/* Gives back cost tokens taken from key (a request that another limit refused), up to the burst. */
void bc_ratelimit_refund(struct bc_ratelimit *rl, const char *key, size_t klen, const struct bc_rate *rate,
			 int64_t cost);
/* Drops every bucket that has refilled completely (nothing is lost); returns how many. */
size_t bc_ratelimit_sweep(struct bc_ratelimit *rl);
/* Live buckets, and the bound. */
size_t bc_ratelimit_count(struct bc_ratelimit *rl);
size_t bc_ratelimit_capacity(const struct bc_ratelimit *rl);

/* The limiter's clock (ms). fn NULL restores the monotonic clock; fn returns milliseconds. */
int64_t bc_ratelimit_now_ms(void);
void bc_ratelimit_clock_set(bc_clock_fn fn, void *ctx);

/* Whole seconds for a Retry-After header: retry_after_ms rounded up, at least 1. */
int64_t bc_ratelimit_retry_s(int64_t retry_after_ms);

#endif
