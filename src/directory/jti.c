/* Replay protection for client assertions: every jti seen is remembered until its assertion
 * expires. In memory per process (a single SQLite server), plus the shared table when the store
 * is PostgreSQL (replicas see each other's jtis). Assertions issued before this process started
 * are refused, since the memory cannot vouch for them. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "directory/dirint.h"

#define JTI_SHARDS 16
#define JTI_MAX_PER_SHARD (1u << 16) /* 1M assertions in flight at most; beyond, refuse */

struct jti_entry {
	uint64_t a, b; /* 128 bits of SHA-256(client_id || 0 || jti); a == 0 marks an empty slot */
	int64_t exp;
};

struct jti_shard {
	pthread_mutex_t lock;
	struct jti_entry *e; /* owned */
	size_t cap, n;
};

struct dir_jti_table {
	struct jti_shard shards[JTI_SHARDS];
};

int dir_jti_init(struct dir *d)
{
	struct dir_jti_table *t = calloc(1, sizeof(*t));
	if (!t)
		return BC_ERR_NOMEM;
	for (int i = 0; i < JTI_SHARDS; i++)
		pthread_mutex_init(&t->shards[i].lock, NULL);
	d->jti = t;
	return BC_OK;
}

void dir_jti_free(struct dir *d)
{
	if (!d->jti)
		return;
	for (int i = 0; i < JTI_SHARDS; i++) {
		free(d->jti->shards[i].e);
		pthread_mutex_destroy(&d->jti->shards[i].lock);
	}
	free(d->jti);
	d->jti = NULL;
}

/* Linear probing; expired entries are dropped only when the table is rebuilt, so a probe
 * never stops early at a reused slot. */
static bool insert_slot(struct jti_entry *e, size_t cap, uint64_t a, uint64_t b, int64_t exp, int64_t now, bool *dup)
{
	(void)now;
	size_t mask = cap - 1;
	for (size_t i = (size_t)a & mask, probes = 0; probes < cap; i = (i + 1) & mask, probes++) {
		if (e[i].a == 0) {
			e[i] = (struct jti_entry){a, b, exp};
			return true;
		}
		if (e[i].a == a && e[i].b == b) {
			*dup = true;
			return true;
		}
	}
	return false;
}

/* Rebuilds the shard at capacity ncap, keeping only live entries. */
static int rebuild(struct jti_shard *s, size_t ncap, int64_t now)
{
	struct jti_entry *ne = calloc(ncap, sizeof(*ne));
	if (!ne)
		return BC_ERR_NOMEM;
	size_t n = 0;
	bool dup = false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->e[i].a != 0 && s->e[i].exp >= now && insert_slot(ne, ncap, s->e[i].a, s->e[i].b, s->e[i].exp, now, &dup))
			n++;
	free(s->e);
	s->e = ne;
	s->cap = ncap;
	s->n = n;
	return BC_OK;
}

/* BC_OK: first use, remembered. BC_ERR_EXISTS: replayed. BC_ERR_LIMIT: table full. */
int dir_jti_use(struct dir *d, const char *client_id, const char *jti, int64_t exp, struct bc_error *err);
int dir_jti_use(struct dir *d, const char *client_id, const char *jti, int64_t exp, struct bc_error *err)
{
	uint8_t h[32];
	unsigned int hl = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, client_id, strlen(client_id) + 1) == 1 &&
		 EVP_DigestUpdate(ctx, jti, strlen(jti)) == 1 && EVP_DigestFinal_ex(ctx, h, &hl) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return bc_error_set(err, BC_ERR_CRYPTO, "cannot hash jti");
	uint64_t a, b;
	memcpy(&a, h, 8);
	memcpy(&b, h + 8, 8);
	if (a == 0)
		a = 1;
	int64_t now = bc_now();
	struct jti_shard *s = &d->jti->shards[h[16] % JTI_SHARDS];
	int rc = BC_OK;
	bool dup = false;
	pthread_mutex_lock(&s->lock);
	if ((s->n + 1) * 2 > s->cap) {
		if (s->cap >= JTI_MAX_PER_SHARD) {
			/* full of live entries? purge expired in place by rehashing at the same size */
			rc = rebuild(s, s->cap, now);
			if (rc == BC_OK && (s->n + 1) * 2 > s->cap)
				rc = BC_ERR_LIMIT;
		} else {
			rc = rebuild(s, s->cap ? s->cap * 2 : 1024, now);
		}
	}
	if (rc == BC_OK) {
		if (!insert_slot(s->e, s->cap, a, b, exp, now, &dup))
			rc = BC_ERR_LIMIT;
		else if (!dup)
			s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc == BC_ERR_LIMIT)
		return bc_error_set(err, BC_ERR_LIMIT, "too many client assertions in flight");
	if (rc)
		return bc_error_set(err, rc, "out of memory");
	if (dup)
		return bc_error_set(err, BC_ERR_EXISTS, "the assertion's jti was already used");
	if (strcmp(bc_store_backend(d->st), "postgres") == 0) {
		/* replicas: the shared table decides */
		char key[65];
		bc_hex(h, 32, key);
		struct bc_param p[] = {BC_PTEXT(key), BC_PINT(exp)};
		int64_t changes = 0;
		if ((rc = bc_store_exec(d->st, NULL, "INSERT INTO dir_used_jti (jti, expires) VALUES (?, ?) ON CONFLICT DO NOTHING",
					p, 2, NULL, NULL, &changes, err)))
			return rc;
		if (changes == 0)
			return bc_error_set(err, BC_ERR_EXISTS, "the assertion's jti was already used");
	}
	return BC_OK;
}
