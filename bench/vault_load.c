/* Bulk-loads secrets into one vault of a stopped server's SQLite store, in the vault's own
 * format: each value sealed with the vault's data key and its place as associated data, rows
 * written by vault_obj_put (the code the PUT endpoint uses), 20,000 per transaction. For
 * bench/vault.sh only: a million secrets through the API would take most of an hour.
 * usage: bench_vault_load DATA_DIR VAULT FIRST COUNT VALUE   (names s<FIRST> .. s<FIRST+COUNT-1>) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/store.h"
#include "core/util.h"
#include "vault/vault_int.h"

#define BATCH 20000

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s DATA_DIR VAULT FIRST COUNT VALUE\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1], *vault = argv[2], *value = argv[5];
	long first = atol(argv[3]), count = atol(argv[4]);
	char url[4096], master[4096], aad[BC_LIMIT_NAME + 200];
	snprintf(url, sizeof(url), "sqlite:%s/badge.db", dir);
	snprintf(master, sizeof(master), "%s/master.key", dir);
	struct bc_error err = {0};
	struct bc_store *st = NULL;
	struct vault_crypt *crypt = NULL;
	struct bc_txn *txn = NULL;
	int rc = bc_store_open(&st, url, &err);
	if (rc == BC_OK)
		rc = vault_crypt_new(&crypt, master, st, &err);
	/* the vault's data key is made (or loaded) by its first seal, outside the batch transactions */
	char *warm = NULL;
	if (rc == BC_OK && (rc = vault_seal(crypt, vault, "warm-up", "x", 1, &warm, &err)) == BC_OK)
		free(warm);
	int64_t t0 = bc_now_ms(), now = bc_now();
	for (long i = 0; rc == BC_OK && i < count; i++) {
		if (!txn && (rc = bc_store_begin(st, &txn, &err)) != BC_OK)
			break;
		struct vault_row r = {.enabled = true, .created = now, .updated = now};
		snprintf(r.name, sizeof(r.name), "s%ld", first + i);
		if ((rc = bc_random_hex32(r.version)) != BC_OK)
			break;
		vault_aad(aad, sizeof(aad), VAULT_KIND_SECRET, vault, r.name, r.version);
		rc = vault_seal(crypt, vault, aad, value, strlen(value), &r.sealed, &err);
		if (rc == BC_OK)
			rc = vault_obj_put(st, txn, vault, VAULT_KIND_SECRET, &r, &err);
		vault_row_release(&r);
		if (rc == BC_OK && ((i + 1) % BATCH == 0 || i + 1 == count)) {
			rc = bc_txn_commit(txn, &err);
			txn = NULL;
			if ((i + 1) % 200000 == 0)
				fprintf(stderr, "  %ld secrets, %.0f/s\n", i + 1, (double)(i + 1) * 1000.0 / (double)(bc_now_ms() - t0 + 1));
		}
	}
	bc_txn_rollback(txn);
	if (rc != BC_OK)
		fprintf(stderr, "bench_vault_load: %s\n", err.msg);
	else
		fprintf(stderr, "loaded %ld secrets into %s in %.1f s\n", count, vault, (double)(bc_now_ms() - t0) / 1000.0);
	vault_crypt_free(crypt);
	bc_store_free(st);
	return rc == BC_OK ? 0 : 1;
}
