/* Leader-only upkeep of the directory, once a minute on one replica at a time (the store's
 * leader lock): scheduled signing-key rotation (a new key is published key_prepublish_s before
 * it is due to sign), and dropping what has expired: replay records of client assertions and the
 * rows of signing keys retired for more than a day. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "directory/dirint.h"

#define MAINTAIN_INTERVAL_S 60
#define RETIRED_ROW_GRACE_S 86400

struct due_ctx {
	struct dir *d;
	int64_t now;
	char tenants[8][37];
	size_t n;
};

int dir_maintain(struct dir *d, struct bc_error *err)
{
	int64_t now = bc_now();
	int rc;
	struct due_ctx due = {.d = d, .now = now};
	if ((rc = dir_keys_load(d, err)))
		return rc;
	if (d->cfg.key_rotation_s > 0) {
		/* a tenant is due when its newest key (signing or pending) is older than the period */
		pthread_rwlock_rdlock(&d->keys_lock);
		for (size_t i = 0; i < d->keys.n && due.n < 8; i++) {
			const struct dir_key *k = &d->keys.keys[i];
			bool newest = true;
			for (size_t j = 0; j < d->keys.n; j++)
				if (j != i && strcmp(d->keys.keys[j].tenant_id, k->tenant_id) == 0 &&
				    (d->keys.keys[j].signs_from > k->signs_from ||
				     (d->keys.keys[j].signs_from == k->signs_from && d->keys.keys[j].seq > k->seq)))
					newest = false;
			if (newest && k->signs_from + d->cfg.key_rotation_s <= now + d->cfg.key_prepublish_s)
				snprintf(due.tenants[due.n++], 37, "%s", k->tenant_id);
		}
		pthread_rwlock_unlock(&d->keys_lock);
		for (size_t i = 0; i < due.n; i++) {
			bc_log_info("directory: scheduled rotation for tenant %s", due.tenants[i]);
			if ((rc = dir_rotate(d, due.tenants[i], false, NULL, err)))
				return rc;
		}
	}
	struct bc_param p[] = {BC_PINT(now)};
	if ((rc = bc_store_exec(d->st, NULL, "DELETE FROM dir_used_jti WHERE expires < ?", p, 1, NULL, NULL, NULL, err)))
		return rc;
	/* retired key rows: published no more for a day; nothing can verify against them */
	pthread_rwlock_rdlock(&d->keys_lock);
	char gone[16][64];
	size_t ngone = 0;
	for (size_t i = 0; i < d->keys.n && ngone < 16; i++)
		if (d->keys.keys[i].retire_at && d->keys.keys[i].retire_at + RETIRED_ROW_GRACE_S < now)
			snprintf(gone[ngone++], 64, "%s", d->keys.keys[i].kid);
	pthread_rwlock_unlock(&d->keys_lock);
	for (size_t i = 0; i < ngone; i++) {
		struct bc_param q[] = {BC_PTEXT(gone[i])};
		if ((rc = bc_store_exec(d->st, NULL, "DELETE FROM dir_signing_keys WHERE kid = ?", q, 1, NULL, NULL, NULL,
					err)))
			return rc;
	}
	return ngone ? dir_keys_load(d, err) : BC_OK;
}

static void *maintain_thread(void *arg)
{
	struct dir *d = arg;
	pthread_mutex_lock(&d->maint_mu);
	while (!d->maint_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += MAINTAIN_INTERVAL_S;
		if (pthread_cond_timedwait(&d->maint_cv, &d->maint_mu, &ts) != ETIMEDOUT || d->maint_stop)
			continue;
		pthread_mutex_unlock(&d->maint_mu);
		struct bc_error err;
		bool leader = false;
		if (bc_store_leader(d->st, "dir_maintenance", &leader, &err) != BC_OK)
			bc_log_warn("directory: cannot take the maintenance lock: %s", err.msg);
		else if (leader && dir_maintain(d, &err) != BC_OK)
			bc_log_warn("directory: maintenance failed: %s", err.msg);
		pthread_mutex_lock(&d->maint_mu);
	}
	pthread_mutex_unlock(&d->maint_mu);
	return NULL;
}

int dir_start_maintenance(struct dir *d, struct bc_error *err)
{
	if (d->maint_running)
		return BC_OK;
	if (pthread_create(&d->maint_thread, NULL, maintain_thread, d) != 0)
		return bc_error_set(err, BC_ERR_INTERNAL, "cannot start the directory's maintenance thread");
	d->maint_running = true;
	return BC_OK;
}

void dir_stop_maintenance(struct dir *d)
{
	if (!d->maint_running)
		return;
	pthread_mutex_lock(&d->maint_mu);
	d->maint_stop = true;
	pthread_cond_signal(&d->maint_cv);
	pthread_mutex_unlock(&d->maint_mu);
	pthread_join(d->maint_thread, NULL);
	d->maint_running = false;
}
