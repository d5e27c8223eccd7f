/* badge server rotate-master-key --data-dir DIR [--store URL]: replaces the master key of an
 * installation whose server is stopped.
 *
 * Steps, each restartable:
 *  1. Take DIR/server.lock exclusively (a running server holds it shared: refuse).
 *  2. Write a fresh 32-byte key to DIR/master.key.new (0600, fsync, fsync of DIR), unless that
 *     file is already there: then a previous run died and its key is used again.
 *  3. In ONE store transaction: the directory re-seals its signing keys (dir_reseal), the vault
 *     re-wraps its data keys (vault_reseal), from master.key to master.key.new. Rows already
 *     under the new key are left alone, so a re-run after step 3 committed is a no-op.
 *  4. master.key is hard-linked to master.key.old, master.key.new renamed over master.key
 *     (atomic), DIR fsynced, master.key.old removed, DIR fsynced.
 * A process that dies anywhere leaves master.key.new behind (until step 4's rename) and the
 * server refuses to start on such a data dir; running the command again finishes the rotation.
 * Between the commit and the rename the database is under the new key only: master.key.new is
 * then the only key that opens it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/server.h"
#include "core/log.h"
#include "core/store.h"
#include "core/util.h"
#include "directory/directory.h"
#include "vault/vault.h"

#define MK_PATH 4200

static int fsync_dir(const char *dir, struct bc_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return bc_error_set(err, BC_ERR_IO, "cannot fsync %s: %s", dir, strerror(e));
	}
	close(fd);
	return BC_OK;
}

int server_data_dir_lock(const char *data_dir, bool exclusive, int *fd_out, struct bc_error *err)
{
	char path[MK_PATH];
	snprintf(path, sizeof(path), "%s/server.lock", data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return bc_error_set(err, BC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e != EWOULDBLOCK)
			return bc_error_set(err, BC_ERR_IO, "cannot lock %s: %s", path, strerror(e));
		if (exclusive)
			return bc_error_set(
				err, BC_ERR_CONFLICT,
				"a badge server is running on %s (it holds %s): stop it, and every "
				"replica on the same store, first",
				data_dir, path);
		return bc_error_set(err, BC_ERR_CONFLICT,
				    "a master key rotation is running on %s (it holds %s): start the server "
				    "when it has finished",
				    data_dir, path);
	}
	if (!exclusive) {
		/* A rotation that did not finish: the database may be sealed under master.key.new. */
		char next[MK_PATH];
		snprintf(next, sizeof(next), "%s/master.key.new", data_dir);
		if (access(next, F_OK) == 0) {
			close(fd);
			return bc_error_set(
				err, BC_ERR_CONFLICT,
				"%s exists: a master key rotation did not finish; run `badge server "
				"rotate-master-key --data-dir %s` (with the same --store) to finish it",
				next, data_dir);
		}
	}
	if (!exclusive) {
		/* master.key.old without master.key.new: a rotation renamed its new key in place and
		 * died before removing the old one, which opens nothing any more. */
		char old[MK_PATH];
		snprintf(old, sizeof(old), "%s/master.key.old", data_dir);
		if (unlink(old) == 0)
			bc_log_warn("server: removed %s left by a finished master key rotation", old);
	}
	*fd_out = fd;
	return BC_OK;
}

static int write_new_key(const char *path, const char *dir, struct bc_error *err)
{
	uint8_t key[32];
	if (bc_random(key, sizeof(key)) != BC_OK)
		return bc_error_set(err, BC_ERR_CRYPTO, "no randomness for the new master key");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		bc_wipe(key, sizeof(key));
		return bc_error_set(err, BC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	}
	int ok = fchmod(fd, 0600) == 0 && write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) &&
		 fsync(fd) == 0;
	int e = errno;
	close(fd);
	bc_wipe(key, sizeof(key));
	if (!ok) {
		unlink(path);
		return bc_error_set(err, BC_ERR_IO, "cannot write %s: %s", path, strerror(e));
	}
	return fsync_dir(dir, err);
}

/* Test hook: BADGE_TEST_ROTATE_DIE=after-new|after-commit|after-link ends the process there, as
 * a crash would (tests/integration/64-master-key.sh). */
static void test_die(const char *point)
{
	const char *v = getenv("BADGE_TEST_ROTATE_DIE");
	if (v && !strcmp(v, point)) {
		fprintf(stderr, "badge: test: dying %s\n", point);
		_exit(86);
	}
}

static int rotate(const char *dir, const char *store_url, struct bc_error *err)
{
	char cur[MK_PATH], next[MK_PATH], old[MK_PATH], def_store[MK_PATH];
	struct bc_store *st = NULL;
	struct bc_txn *txn = NULL;
	struct stat sb;
	int64_t dk = 0, dkc = 0, vk = 0, vkc = 0;
	int lock = -1, rc;
	bool resumed = false;
	snprintf(cur, sizeof(cur), "%s/master.key", dir);
	snprintf(next, sizeof(next), "%s/master.key.new", dir);
	snprintf(old, sizeof(old), "%s/master.key.old", dir);
	snprintf(def_store, sizeof(def_store), "sqlite:%s/badge.db", dir);
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return bc_error_set(err, BC_ERR_NOT_FOUND, "no data dir %s", dir);
	if ((rc = server_data_dir_lock(dir, true, &lock, err)))
		return rc;
	if (stat(cur, &sb) != 0) {
		rc = bc_error_set(err, BC_ERR_NOT_FOUND, "no master key %s: nothing to rotate", cur);
		goto done;
	}
	if (access(next, F_OK) == 0) {
		resumed = true;
		fprintf(stderr, "badge: %s exists: finishing the interrupted rotation with it\n", next);
	} else {
		/* A master.key.old without master.key.new: the last rotation finished its rename. */
		if (unlink(old) != 0 && errno != ENOENT) {
			rc = bc_error_set(err, BC_ERR_IO, "cannot remove %s: %s", old, strerror(errno));
			goto done;
		}
		if ((rc = write_new_key(next, dir, err)))
			goto done;
		test_die("after-new");
	}
	if ((rc = bc_store_open(&st, store_url && *store_url ? store_url : def_store, err)) ||
	    (rc = bc_store_begin(st, &txn, err)))
		goto done;
	if ((rc = dir_reseal(st, txn, cur, next, &dk, &dkc, err)) ||
	    (rc = vault_reseal(st, txn, cur, next, &vk, &vkc, err))) {
		bc_txn_rollback(txn);
		txn = NULL;
		goto done;
	}
	rc = bc_txn_commit(txn, err);
	txn = NULL;
	if (rc)
		goto done;
	test_die("after-commit");
	/* The database is now under master.key.new; swap the files. */
	if ((unlink(old) != 0 && errno != ENOENT) || link(cur, old) != 0) {
		rc = bc_error_set(err, BC_ERR_IO, "cannot keep the old key as %s: %s", old, strerror(errno));
		goto done;
	}
	test_die("after-link");
	if (rename(next, cur) != 0) {
		rc = bc_error_set(err, BC_ERR_IO, "cannot rename %s to %s: %s", next, cur, strerror(errno));
		goto done;
	}
	if ((rc = fsync_dir(dir, err)))
		goto done;
	if (unlink(old) != 0) {
		rc = bc_error_set(err, BC_ERR_IO, "cannot remove %s: %s", old, strerror(errno));
		goto done;
	}
	if ((rc = fsync_dir(dir, err)))
		goto done;
	printf("master key rotated%s: %" PRId64 " signing keys and %" PRId64 " vault data keys sealed again"
	       " (%" PRId64 " and %" PRId64 " were already under the new key)\n",
	       resumed ? " (interrupted rotation finished)" : "", dk, vk, dkc, vkc);
done:
	bc_txn_rollback(txn);
	bc_store_free(st);
	if (lock >= 0)
		close(lock);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: badge server rotate-master-key --data-dir DIR [--store URL]\n"
		   "  with the server stopped (every replica on the store): seals everything under a new\n"
		   "  DIR/master.key in one transaction; run it again to finish an interrupted rotation.\n");
}

int cli_masterkey_main(int argc, char **argv)
{
	const char *dir = NULL, *store = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		const char **dst = !strncmp(a, "--data-dir", 10) ? &dir
				   : !strncmp(a, "--store", 7)   ? &store
								 : NULL;
		size_t kl = dst == &dir ? 10 : 7;
		if (!dst || (a[kl] != '\0' && a[kl] != '=')) {
			usage(stderr);
			return cli_fail("rotate-master-key: unexpected argument '%s'", a);
		}
		if (a[kl] == '=')
			*dst = a + kl + 1;
		else if (i + 1 < argc)
			*dst = argv[++i];
		else
			return cli_fail("rotate-master-key: %s needs a value", a);
	}
	if (!dir || !*dir) {
		usage(stderr);
		return cli_fail("rotate-master-key: --data-dir is required");
	}
	struct bc_error err;
	if (rotate(dir, store, &err))
		return cli_fail("rotate-master-key: %s", err.msg);
	return 0;
}
