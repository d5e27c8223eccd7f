/* The read cache of object versions (see vault_int.h).
 *
 * A GET of a secret, and every key operation, reads one row: without this cache each costs a
 * store round trip (SQLite's file locks and B-tree walk, or a PostgreSQL query). Entries hold
 * the row as stored — the value still sealed, so no plaintext lives here longer than a request —
 * and are stamped with the cache's generation when their read began. Any change to any object
 * moves the generation on (this replica: right after its commit; other replicas: when the
 * change's notification arrives), which retires every entry at once: writes are rare next to
 * reads, and a whole-cache bump cannot miss a row. An entry installed by a read that raced with a
 * change carries the old generation and is never served.
 *
 * Bounded: a fixed table of slots (a newer entry replaces an older one in its slot), and rows
 * whose sealed value is large are not kept, so the cache's memory has a small ceiling whatever
 * the vault holds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/metrics.h"
#include "vault/vault_int.h"

#define SLOTS 2048          /* power of two */
#define STRIPES 64          /* locks, each guarding SLOTS / STRIPES slots */
#define ROW_BYTES_MAX 8192  /* rows with more text than this are read from the store each time */
#define KEY_MAX (BC_LIMIT_NAME * 2 + 64)

struct slot {
	char key[KEY_MAX];
	uint64_t gen;
	bool used;
	struct vault_row row; /* owned strings */
};

struct vault_cache {
	_Atomic uint64_t gen;
	pthread_mutex_t mu[STRIPES];
	struct slot slots[SLOTS];
};

int vault_cache_new(struct vault_cache **out)
{
	struct vault_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return BC_ERR_NOMEM;
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->mu[i], NULL);
	atomic_init(&c->gen, 1);
	*out = c;
	return BC_OK;
}

void vault_cache_free(struct vault_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < SLOTS; i++)
		vault_row_release(&c->slots[i].row);
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->mu[i]);
	free(c);
}

void vault_cache_invalidate(struct vault_cache *c)
{
	if (c)
		atomic_fetch_add(&c->gen, 1);
}

/* "vault\nkind\nname\nversion" (names are case-insensitive, as in the store); false when it
 * does not fit (then the row is not cached). */
static bool make_key(char *key, const char *vault, const char *kind, const char *name, const char *version)
{
	char lname[BC_LIMIT_NAME + 1], lver[40];
	vault_lower(lname, name, sizeof(lname));
	vault_lower(lver, version, sizeof(lver));
	size_t n = (size_t)snprintf(key, KEY_MAX, "%s\n%s\n%s\n%s", vault, kind, lname, lver);
	return n < KEY_MAX;
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static char *dup_opt(const char *s, bool *ok)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static int row_copy(struct vault_row *dst, const struct vault_row *src)
{
	bool ok = true;
	*dst = *src;
	dst->content_type = dup_opt(src->content_type, &ok);
	dst->tags = dup_opt(src->tags, &ok);
	dst->sealed = dup_opt(src->sealed, &ok);
	dst->kty = dup_opt(src->kty, &ok);
	dst->key_ops = dup_opt(src->key_ops, &ok);
	dst->pub = dup_opt(src->pub, &ok);
	if (!ok) {
		vault_row_release(dst);
		return BC_ERR_NOMEM;
	}
	return BC_OK;
}

static size_t row_bytes(const struct vault_row *r)
{
	const char *const s[] = {r->content_type, r->tags, r->sealed, r->kty, r->key_ops, r->pub};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		n += s[i] ? strlen(s[i]) : 0;
	return n;
}

int vault_obj_read(struct vault *v, const char *vault, const char *kind, const char *name, const char *version,
		   struct vault_row *out, struct bc_error *err)
{
	struct vault_cache *c = v->cache;
	char key[KEY_MAX];
	if (!c || !make_key(key, vault, kind, name, version))
		return vault_obj_get(v->st, NULL, vault, kind, name, version, false, out, err);
	uint64_t h = hash(key);
	struct slot *s = &c->slots[h & (SLOTS - 1)];
	pthread_mutex_t *mu = &c->mu[h & (STRIPES - 1)];

	uint64_t gen = atomic_load(&c->gen); /* before the read: a change after this retires it */
	pthread_mutex_lock(mu);
	bool hit = s->used && s->gen == gen && strcmp(s->key, key) == 0;
	int rc = hit ? row_copy(out, &s->row) : BC_OK;
	pthread_mutex_unlock(mu);
	if (hit) {
		bc_metrics_count("vault_object_cache_hits", 1);
		return rc == BC_OK ? BC_OK : bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	}
	bc_metrics_count("vault_object_cache_misses", 1);

	rc = vault_obj_get(v->st, NULL, vault, kind, name, version, false, out, err);
	if (rc != BC_OK || row_bytes(out) > ROW_BYTES_MAX)
		return rc;
	struct vault_row copy;
	if (row_copy(&copy, out) != BC_OK)
		return BC_OK; /* not cached; the answer stands */
	pthread_mutex_lock(mu);
	if (atomic_load(&c->gen) == gen) {
		vault_row_release(&s->row);
		memcpy(s->key, key, strlen(key) + 1);
		s->row = copy;
		s->gen = gen;
		s->used = true;
		copy = (struct vault_row){0};
	}
	pthread_mutex_unlock(mu);
	vault_row_release(&copy);
	return BC_OK;
}
