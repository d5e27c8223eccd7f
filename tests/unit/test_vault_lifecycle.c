/* A vault's lifecycle through the resource manager (Azure's soft delete of vaults): deleting
 * a vault keeps it, and everything it holds, under deletedVaults; its name stays taken (409
 * ConflictError) until it is recovered (createMode "recover") or purged (deletedVaults/{name}/
 * purge, or the sweep once its retention ended), and a purge leaves no row of it in the store,
 * no cached object and no data key, so a new vault of that name starts empty. Driven through
 * the route table (bc_http_dispatch_test) with a real directory, manager and vault on a store in
 * a temp dir (BADGE_TEST_STORE=postgresql://... for PostgreSQL). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pki.h"
#include "core/util.h"
#include "test.h"
#include "vault/vault_int.h"
#define STACK_VAULT
#include "stack.h"

#define API "?api-version=2025-07-01"

static void setup(void)
{
	bc_log_set_level(BC_LOG_ERROR);
	stack_open("vlife", true);
}

static const char *err_code(const struct resp *r)
{
	return bc_json_str(json_object_get(r->body, "error"), "code");
}

static struct resp dp(const char *method, const char *vault, const char *path, const char *token, const char *body)
{
	char host[128];
	snprintf(host, sizeof(host), "%s.vault.badge.internal:8443", vault);
	return stack_call(method, host, path, token, body);
}

static struct resp mg(const char *method, const char *token, const char *body, const char *fmt, ...) BC_PRINTF(4, 5);
static struct resp mg(const char *method, const char *token, const char *body, const char *fmt, ...)
{
	char path[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return stack_call(method, STACK_MGMT_HOST, path, token, body);
}

#define VAULTS "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/vaults/%s?api-version=2023-07-01"
#define DELETED "/subscriptions/%s/providers/Microsoft.KeyVault/locations/%s/deletedVaults/%s%s?api-version=2023-07-01"
#define DLIST "/subscriptions/%s/providers/Microsoft.KeyVault/deletedVaults?api-version=2023-07-01"

static const char *msg_of(const struct resp *r)
{
	return bc_json_str(json_object_get(r->body, "error"), "message");
}

/* PUT of a vault in rg with writer's and reader's policies; returns the status. */
static int put_vault(const char *rg, const char *name, const char *extra_props)
{
	char body[2048];
	snprintf(body, sizeof(body),
		 "{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\",\"name\":\"standard\"},"
		 "\"accessPolicies\":[{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"all\"],"
		 "\"keys\":[\"all\"]}},{\"tenantId\":\"%s\",\"objectId\":\"%s\",\"permissions\":{\"secrets\":[\"get\","
		 "\"list\"]}}]%s}}",
		 tenant, tenant, writer.object_id, tenant, reader.object_id, extra_props ? extra_props : "");
	struct resp r = mg("PUT", admin_token, body, VAULTS, sub, rg, name);
	int status = r.status;
	resp_release(&r);
	return status;
}

static void make_group(const char *rg)
{
	char path[256];
	snprintf(path, sizeof(path), "/subscriptions/%s/resourcegroups/%s?api-version=2021-04-01", sub, rg);
	mgmt_put(path, "{\"location\":\"local\"}");
}

static int del_vault(const char *rg, const char *name)
{
	struct resp r = mg("DELETE", admin_token, NULL, VAULTS, sub, rg, name);
	int status = r.status;
	resp_release(&r);
	return status;
}

static void set_secret(const char *vault, const char *name, const char *value)
{
	char path[256], body[256];
	snprintf(path, sizeof(path), "/secrets/%s" API, name);
	snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
	struct resp r = dp("PUT", vault, path, tok_writer, body);
	if (r.status != 200) {
		fprintf(stderr, "set %s/%s: %d\n", vault, name, r.status);
		abort();
	}
	resp_release(&r);
}

/* The secret's value, or its status as text, or the error code. */
static char *secret(const char *vault, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/secrets/%s/" API, name);
	struct resp r = dp("GET", vault, path, tok_writer, NULL);
	char *out = NULL;
	if (r.status == 200 && bc_json_str(r.body, "value"))
		out = strdup(bc_json_str(r.body, "value"));
	else {
		out = malloc(96);
		snprintf(out, 96, "%d %s", r.status, err_code(&r) ? err_code(&r) : "");
	}
	resp_release(&r);
	return out;
}

static int64_t rows(const char *table, const char *col, const char *value)
{
	char sql[256];
	int64_t n = -1;
	bool found = false;
	struct bc_error err = {0};
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE %s = ?", table, col);
	if (bc_store_get_int(st, NULL, sql, (struct bc_param[]){BC_PTEXT(value)}, 1, &n, &found, &err) != BC_OK) {
		fprintf(stderr, "count %s: %s\n", table, err.msg);
		abort();
	}
	return n;
}

/* Every row the vault and the manager hold of vault lname. */
static int64_t vault_rows(const char *lname)
{
	char gname[64];
	snprintf(gname, sizeof(gname), "vault:%s", lname);
	return rows("vault_objects", "vault", lname) + rows("vault_versions", "vault", lname) +
	       rows("vault_deks", "vault", lname) + rows("mgr_resources", "gname", gname) +
	       rows("mgr_deleted_vaults", "lname", lname);
}

static json_t *find_named(const json_t *arr, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
	{
		if (!strcmp(bc_json_str(e, "name") ?: "", name))
			return e;
	}
	return NULL;
}

/* ---- delete: gone from the lists and the data plane, kept under deletedVaults ---------- */

TEST(delete_then_deleted_vaults)
{
	REQUIRE(put_vault("rg1", "lc1", NULL) == 201);
	set_secret("lc1", "s1", "old-one");
	char *val = secret("lc1", "s1");
	CHECK_STR(val, "old-one");
	free(val);
	int64_t before = rows("vault_versions", "vault", "lc1");
	CHECK(before == 1);

	CHECK_EQ_INT(del_vault("rg1", "lc1"), 200);
	CHECK_EQ_INT(del_vault("rg1", "lc1"), 204); /* nothing left to delete */
	struct resp r = mg("GET", admin_token, NULL, VAULTS, sub, "rg1", "lc1");
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	r = mg("GET", admin_token, NULL, "/subscriptions/%s/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01",
	       sub);
	CHECK_EQ_INT(r.status, 200);
	CHECK(!find_named(json_object_get(r.body, "value"), "lc1"));
	resp_release(&r);
	/* the data plane: as for a vault that never was */
	val = secret("lc1", "s1");
	CHECK_STR(val, "404 VaultNotFound");
	free(val);
	/* its objects are kept */
	CHECK(rows("vault_versions", "vault", "lc1") == before);
	CHECK(rows("vault_objects", "vault", "lc1") == 1);

	r = mg("GET", admin_token, NULL, DLIST, sub);
	CHECK_EQ_INT(r.status, 200);
	json_t *e = find_named(json_object_get(r.body, "value"), "lc1");
	REQUIRE(e);
	char want[512];
	snprintf(want, sizeof(want), "/subscriptions/%s/providers/Microsoft.KeyVault/locations/local/deletedVaults/lc1", sub);
	CHECK_STR(bc_json_str(e, "id"), want);
	CHECK_STR(bc_json_str(e, "type"), "Microsoft.KeyVault/deletedVaults");
	json_t *p = json_object_get(e, "properties");
	snprintf(want, sizeof(want), "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/lc1", sub);
	CHECK_STR(bc_json_str(p, "vaultId"), want);
	CHECK_STR(bc_json_str(p, "location"), "local");
	CHECK(json_is_object(json_object_get(p, "tags")));
	CHECK(json_is_false(json_object_get(p, "purgeProtectionEnabled")));
	const char *dd = bc_json_str(p, "deletionDate"), *pd = bc_json_str(p, "scheduledPurgeDate");
	CHECK(dd && strlen(dd) == 20 && dd[19] == 'Z');
	CHECK(pd && strcmp(pd, dd) > 0); /* 90 days later (ISO 8601 sorts) */
	resp_release(&r);

	r = mg("GET", admin_token, NULL, DELETED, sub, "local", "lc1", "");
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(bc_json_str(r.body, "name"), "lc1");
	CHECK_STR(bc_json_str(json_object_get(r.body, "properties"), "vaultId"), want);
	resp_release(&r);
	r = mg("GET", admin_token, NULL, DELETED, sub, "LOCAL", "LC1", ""); /* ARM is case-insensitive */
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
}

/* ---- bad input: Azure's error shapes, and nothing changes -------------------------------- */

TEST(bad_input)
{
	int64_t n = vault_rows("lc1");
	struct resp r = mg("GET", admin_token, NULL, DELETED, sub, "elsewhere", "lc1", "");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "ResourceNotFound");
	resp_release(&r);
	r = mg("POST", admin_token, NULL, DELETED, sub, "elsewhere", "lc1", "/purge");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "ResourceNotFound");
	resp_release(&r);
	r = mg("GET", admin_token, NULL, DELETED, sub, "local", "nosuchvault", "");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "ResourceNotFound");
	resp_release(&r);
	r = mg("POST", admin_token, NULL, DELETED, sub, "local", "nosuchvault", "/purge");
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	r = mg("POST", admin_token, NULL, DELETED, sub, "local", "bad_name!", "/purge");
	CHECK_EQ_INT(r.status, 400);
	CHECK_STR(err_code(&r), "VaultNameNotValid");
	resp_release(&r);
	r = mg("GET", admin_token, NULL, DLIST, "00000000-0000-0000-0000-000000000000");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "SubscriptionNotFound");
	resp_release(&r);
	r = mg("POST", admin_token, NULL, DELETED, "00000000-0000-0000-0000-000000000000", "local", "lc1", "/purge");
	CHECK_EQ_INT(r.status, 404);
	CHECK_STR(err_code(&r), "SubscriptionNotFound");
	resp_release(&r);
	r = stack_call("GET", STACK_MGMT_HOST, "/subscriptions/x/providers/Microsoft.KeyVault/deletedVaults",
		 admin_token, NULL);
	CHECK_EQ_INT(r.status, 400);
	CHECK_STR(err_code(&r), "MissingApiVersionParameter");
	resp_release(&r);
	r = mg("PUT", admin_token, "{\"location\":\"local\",\"properties\":{\"createMode\":\"sideways\"}}", VAULTS, sub,
	       "rg1", "lc1");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	/* recover of a vault that is not deleted */
	r = mg("PUT", admin_token, "{\"location\":\"local\",\"properties\":{\"createMode\":\"recover\"}}", VAULTS, sub,
	       "rg1", "neverdeleted");
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	CHECK(rows("mgr_resources", "gname", "vault:neverdeleted") == 0);
	/* callers without a role: the list shows them nothing, one vault or its purge is refused */
	r = mg("GET", tok_writer_mgmt, NULL, DLIST, sub);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_array_size(json_object_get(r.body, "value")) == 0);
	resp_release(&r);
	r = mg("GET", tok_writer_mgmt, NULL, DELETED, sub, "local", "lc1", "");
	CHECK_EQ_INT(r.status, 403);
	CHECK_STR(err_code(&r), "AuthorizationFailed");
	resp_release(&r);
	r = mg("POST", tok_writer_mgmt, NULL, DELETED, sub, "local", "lc1", "/purge");
	CHECK_EQ_INT(r.status, 403);
	CHECK(msg_of(&r) && strstr(msg_of(&r), "Microsoft.KeyVault/locations/deletedVaults/purge/action"));
	resp_release(&r);
	r = mg("POST", tok_writer_mgmt, NULL, DELETED, sub, "local", "nosuchvault", "/purge");
	CHECK_EQ_INT(r.status, 403); /* the same answer whether it exists or not */
	resp_release(&r);
	CHECK(vault_rows("lc1") == n);
}

/* ---- the name stays taken while deleted --------------------------------------------------- */

TEST(recreate_refused)
{
	int64_t n = vault_rows("lc1");
	char body[1024];
	snprintf(body, sizeof(body), "{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
		 "\"name\":\"standard\"},\"accessPolicies\":[]}}", tenant);
	struct resp r = mg("PUT", admin_token, body, VAULTS, sub, "rg1", "lc1");
	CHECK_EQ_INT(r.status, 409);
	CHECK_STR(err_code(&r), "ConflictError");
	CHECK(msg_of(&r) && strstr(msg_of(&r), "A vault with the same name already exists in deleted state"));
	resp_release(&r);
	/* in another group too (names are global), and with another spelling */
	make_group("rg2");
	r = mg("PUT", admin_token, body, VAULTS, sub, "rg2", "LC1");
	CHECK_EQ_INT(r.status, 409);
	CHECK_STR(err_code(&r), "ConflictError");
	resp_release(&r);
	/* recover elsewhere than where it was deleted from */
	r = mg("PUT", admin_token, "{\"location\":\"local\",\"properties\":{\"createMode\":\"recover\"}}", VAULTS, sub,
	       "rg2", "lc1");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	r = mg("PUT", admin_token, "{\"location\":\"faraway\",\"properties\":{\"createMode\":\"recover\"}}", VAULTS,
	       sub, "rg1", "lc1");
	CHECK_EQ_INT(r.status, 400);
	resp_release(&r);
	CHECK(vault_rows("lc1") == n);
	CHECK(rows("mgr_resources", "gname", "vault:lc1") == 0);
	char *val = secret("lc1", "s1");
	CHECK_STR(val, "404 VaultNotFound");
	free(val);
}

/* ---- recover: the vault as it was, its objects and access policies ------------------------ */

TEST(recover)
{
	/* what az keyvault recover sends: location, tenant, sku and createMode only */
	char body[512];
	snprintf(body, sizeof(body), "{\"location\":\"local\",\"properties\":{\"tenantId\":\"%s\",\"sku\":{\"family\":\"A\","
		 "\"name\":\"standard\"},\"createMode\":\"recover\",\"accessPolicies\":[]}}", tenant);
	struct resp r = mg("PUT", admin_token, body, VAULTS, sub, "rg1", "lc1");
	CHECK(r.status == 200 || r.status == 201);
	json_t *pol = json_object_get(json_object_get(r.body, "properties"), "accessPolicies");
	CHECK(json_array_size(pol) == 2);
	CHECK(!json_object_get(json_object_get(r.body, "properties"), "createMode"));
	resp_release(&r);
	char *val = secret("lc1", "s1");
	CHECK_STR(val, "old-one");
	free(val);
	r = mg("GET", admin_token, NULL, DELETED, sub, "local", "lc1", "");
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);
	CHECK(rows("mgr_deleted_vaults", "lname", "lc1") == 0);
	/* and it works as before */
	set_secret("lc1", "s2", "after-recover");
	val = secret("lc1", "s2");
	CHECK_STR(val, "after-recover");
	free(val);
}

/* ---- purge: nothing of the vault is left; a new vault of the name starts empty ------------ */

TEST(purge_then_new_vault_is_empty)
{
	char *old_dek = NULL;
	struct bc_error err = {0};
	REQUIRE(bc_store_get_text(st, NULL, "SELECT dek FROM vault_deks WHERE vault = ?",
				  (struct bc_param[]){BC_PTEXT("lc1")}, 1, &old_dek, &err) == BC_OK && old_dek);
	/* warm the read cache with the secret (a second read is a hit) */
	char *val = secret("lc1", "s1");
	free(val);
	uint64_t hits = counter("vault_object_cache_hits");
	val = secret("lc1", "s1");
	CHECK_STR(val, "old-one");
	free(val);
	CHECK(counter("vault_object_cache_hits") == hits + 1);

	CHECK_EQ_INT(del_vault("rg1", "lc1"), 200);
	struct resp r = mg("POST", admin_token, NULL, DELETED, sub, "local", "lc1", "/purge");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	CHECK(vault_rows("lc1") == 0);
	r = mg("GET", admin_token, NULL, DLIST, sub);
	CHECK(!find_named(json_object_get(r.body, "value"), "lc1"));
	resp_release(&r);
	r = mg("POST", admin_token, NULL, DELETED, sub, "local", "lc1", "/purge");
	CHECK_EQ_INT(r.status, 404);
	resp_release(&r);

	/* the name is free: a new vault (someone else's, in another group) sees nothing of the old */
	REQUIRE(put_vault("rg2", "lc1", NULL) == 201);
	val = secret("lc1", "s1");
	CHECK_STR(val, "404 SecretNotFound");
	free(val);
	r = dp("GET", "lc1", "/secrets" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_array_size(json_object_get(r.body, "value")) == 0);
	resp_release(&r);
	r = dp("GET", "lc1", "/deletedsecrets" API, tok_writer, NULL);
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_array_size(json_object_get(r.body, "value")) == 0);
	resp_release(&r);
	/* its values are sealed under a data key of its own */
	set_secret("lc1", "s1", "new-one");
	val = secret("lc1", "s1");
	CHECK_STR(val, "new-one");
	free(val);
	char *new_dek = NULL;
	REQUIRE(bc_store_get_text(st, NULL, "SELECT dek FROM vault_deks WHERE vault = ?",
				  (struct bc_param[]){BC_PTEXT("lc1")}, 1, &new_dek, &err) == BC_OK);
	CHECK(new_dek && strcmp(new_dek, old_dek) != 0);
	free(new_dek);
	free(old_dek);
}

/* Another replica (a second vault on the same store) had the old vault's secret and data key
 * cached: the purge's notification retires both. */
TEST(purge_reaches_other_replica)
{
	struct bc_error err = {0};
	REQUIRE(put_vault("rg1", "lc5", NULL) == 201);
	set_secret("lc5", "s", "replica-old");
	struct vault *v2 = stack_vault_replica();
	struct vault_row row;
	for (int i = 0; i < 2; i++) { /* warm */
		REQUIRE(vault_obj_read(v2, "lc5", VAULT_KIND_SECRET, "s", NULL, &row, &err) == BC_OK);
		vault_row_release(&row);
	}
	uint8_t *pt = NULL;
	size_t n = 0;
	char aad[256];
	REQUIRE(vault_obj_read(v2, "lc5", VAULT_KIND_SECRET, "s", NULL, &row, &err) == BC_OK);
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, "lc5", "s", row.version);
	REQUIRE(vault_open(v2->crypt, "lc5", aad, row.sealed, &pt, &n, &err) == BC_OK); /* caches its data key */
	free(pt);
	vault_row_release(&row);

	CHECK_EQ_INT(del_vault("rg1", "lc5"), 200);
	struct resp r = mg("POST", admin_token, NULL, DELETED, sub, "local", "lc5", "/purge");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	bool gone = false;
	for (int64_t end = bc_now_ms() + 10000; !gone && bc_now_ms() < end;) {
		int rc = vault_obj_read(v2, "lc5", VAULT_KIND_SECRET, "s", NULL, &row, &err);
		if (rc == BC_OK)
			vault_row_release(&row);
		gone = rc == BC_ERR_NOT_FOUND;
		if (!gone) {
			struct timespec ts = {0, 5 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	CHECK(gone);
	/* the old data key went with the notification: nothing opens without a key in the store */
	REQUIRE(vault_open(v2->crypt, "lc5", aad, "djE=", &pt, &n, &err) == BC_ERR_NOT_FOUND);
	vault_free(v2);
}

/* A replica whose notifications lag (unsubscribed here: it never hears of the purge) still
 * holds the old vault's data key when a vault of the same name is made again: it seals new
 * values under the store's key, never its stale one, and opens values sealed by others after
 * finding its cached key wrong. */
TEST(lagging_replica_uses_the_stores_key)
{
	struct bc_error err = {0};
	REQUIRE(put_vault("rg1", "lc8", NULL) == 201);
	set_secret("lc8", "old", "before");
	struct vault *v2 = stack_vault_replica();
	bc_store_unsubscribe(st, v2);
	struct vault_row row;
	uint8_t *pt = NULL;
	size_t n = 0;
	char aad[256];
	REQUIRE(vault_obj_read(v2, "lc8", VAULT_KIND_SECRET, "old", NULL, &row, &err) == BC_OK);
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, "lc8", "old", row.version);
	REQUIRE(vault_open(v2->crypt, "lc8", aad, row.sealed, &pt, &n, &err) == BC_OK); /* caches the old key */
	free(pt);
	pt = NULL; /* vault_open leaves it alone when it fails */
	vault_row_release(&row);

	CHECK_EQ_INT(del_vault("rg1", "lc8"), 200);
	struct resp r = mg("POST", admin_token, NULL, DELETED, sub, "local", "lc8", "/purge");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	REQUIRE(put_vault("rg1", "lc8", NULL) == 201);
	set_secret("lc8", "new", "after"); /* sealed by this replica under a new data key */

	/* the lagging replica opens it (its cached key fails, the store's works) */
	REQUIRE(vault_obj_read(v2, "lc8", VAULT_KIND_SECRET, "new", NULL, &row, &err) == BC_OK);
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, "lc8", "new", row.version);
	CHECK_EQ_INT(vault_open(v2->crypt, "lc8", aad, row.sealed, &pt, &n, &err), BC_OK);
	CHECK(pt && n == 5 && memcmp(pt, "after", 5) == 0);
	free(pt);
	pt = NULL;
	vault_row_release(&row);

	/* and what it seals opens with the store's key on this replica */
	char *sealed = NULL;
	vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, "lc8", "x", "0123456789abcdef0123456789abcdef");
	REQUIRE(vault_seal(v2->crypt, "lc8", aad, "lagged", 6, &sealed, &err) == BC_OK);
	vault_crypt_forget(v->crypt, "lc8");
	CHECK_EQ_INT(vault_open(v->crypt, "lc8", aad, sealed, &pt, &n, &err), BC_OK);
	CHECK(pt && n == 6 && memcmp(pt, "lagged", 6) == 0);
	free(pt);
	free(sealed);
	vault_free(v2);
}

/* The hold every vault write takes in its transaction: a live vault is held, a deleted one is
 * not found (a write that lost the race to a delete writes nothing). */
TEST(write_hold)
{
	struct bc_error err = {0};
	struct bc_txn *txn = NULL;
	REQUIRE(put_vault("rg1", "lc9", NULL) == 201);
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(mgr_vault_hold_txn(m, txn, "LC9", &err), BC_OK);
	CHECK_EQ_INT(mgr_vault_hold_txn(m, txn, "no-such-vault", &err), BC_ERR_NOT_FOUND);
	CHECK_EQ_INT(mgr_vault_hold_txn(m, txn, "bad name!", &err), BC_ERR_NOT_FOUND);
	bc_txn_rollback(txn);
	CHECK_EQ_INT(del_vault("rg1", "lc9"), 200);
	REQUIRE(bc_store_begin(st, &txn, &err) == BC_OK);
	CHECK_EQ_INT(mgr_vault_hold_txn(m, txn, "lc9", &err), BC_ERR_NOT_FOUND);
	bc_txn_rollback(txn);
}

/* ---- purge protection: refused until the scheduled purge date; the sweep purges then ------ */

static int64_t fake_now;
static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

TEST(purge_protection_and_sweep)
{
	REQUIRE(put_vault("rg1", "lc3", ",\"enablePurgeProtection\":true,\"softDeleteRetentionInDays\":7") == 201);
	set_secret("lc3", "kept", "protected");
	CHECK_EQ_INT(del_vault("rg1", "lc3"), 200);
	struct resp r = mg("GET", admin_token, NULL, DELETED, sub, "local", "lc3", "");
	CHECK_EQ_INT(r.status, 200);
	CHECK(json_is_true(json_object_get(json_object_get(r.body, "properties"), "purgeProtectionEnabled")));
	resp_release(&r);
	int64_t n = vault_rows("lc3");
	CHECK(n >= 4); /* object, version, data key, deleted record */
	r = mg("POST", admin_token, NULL, DELETED, sub, "local", "lc3", "/purge");
	CHECK_EQ_INT(r.status, 409);
	CHECK(msg_of(&r) && strstr(msg_of(&r), "purge protection"));
	resp_release(&r);
	CHECK(vault_rows("lc3") == n);

	/* eight days on, the sweep (on the audit writer's tick) purges it */
	fake_now = bc_now() + 8 * 86400;
	bc_clock_set(fake_clock, NULL);
	bool gone = false;
	for (int64_t end = bc_now_ms() + 10000; !gone && bc_now_ms() < end;) {
		gone = vault_rows("lc3") == 0;
		if (!gone) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	bc_clock_set(NULL, NULL);
	CHECK(gone);
	REQUIRE(put_vault("rg1", "lc3", NULL) == 201);
	char *val = secret("lc3", "kept");
	CHECK_STR(val, "404 SecretNotFound");
	free(val);
}

/* ---- deleting a resource group soft-deletes its vaults ------------------------------------ */

TEST(group_delete_soft_deletes)
{
	make_group("rg4");
	REQUIRE(put_vault("rg4", "lc4", NULL) == 201);
	set_secret("lc4", "g", "in-group");
	struct resp r = mg("DELETE", admin_token, NULL, "/subscriptions/%s/resourcegroups/rg4?api-version=2021-04-01",
			   sub);
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	r = mg("GET", admin_token, NULL, DELETED, sub, "local", "lc4", "");
	CHECK_EQ_INT(r.status, 200);
	resp_release(&r);
	CHECK(rows("vault_versions", "vault", "lc4") == 1);
	char *val = secret("lc4", "g");
	CHECK_STR(val, "404 VaultNotFound");
	free(val);
	make_group("rg4");
	CHECK_EQ_INT(put_vault("rg4", "lc4", NULL), 409);
	r = mg("PUT", admin_token, "{\"location\":\"local\",\"properties\":{\"createMode\":\"recover\"}}", VAULTS, sub,
	       "rg4", "lc4");
	CHECK(r.status == 200 || r.status == 201);
	resp_release(&r);
	val = secret("lc4", "g");
	CHECK_STR(val, "in-group");
	free(val);
}

STACK_MAIN(setup, stack_close,
	   T(delete_then_deleted_vaults),
	   T(bad_input),
	   T(recreate_refused),
	   T(recover),
	   T(purge_then_new_vault_is_empty),
	   T(purge_reaches_other_replica), T(lagging_replica_uses_the_stores_key), T(write_hold),
	   T(purge_protection_and_sweep),
	   T(group_delete_soft_deletes))
