/* badge server --join-from DIR: a new replica takes the installation's CA, master key and
 * bootstrap administrator from another replica's data dir (or a copy of it), so that every
 * replica on one database issues the same TLS chain and unseals the same keys. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/server.h"
#include "core/util.h"

#define JOIN_FILE_MAX (1 << 20)

static const struct {
	const char *name;
	int mode;
	bool required;
} join_files[] = {
	{"ca.pem", 0644, true},
	{"ca.key", 0600, true},
	{"master.key", 0600, true},
	{"admin.json", 0600, false},
};

int server_join_from(const char *from, const char *to, struct bc_error *err)
{
	for (size_t i = 0; i < sizeof(join_files) / sizeof(join_files[0]); i++) {
		char src[4200], dst[4200];
		char *a = NULL, *b = NULL;
		size_t al = 0, bl = 0;
		struct stat sb;
		int rc;
		snprintf(src, sizeof(src), "%s/%s", from, join_files[i].name);
		snprintf(dst, sizeof(dst), "%s/%s", to, join_files[i].name);
		if (stat(src, &sb) != 0) {
			if (!join_files[i].required)
				continue;
			return bc_error_set(err, BC_ERR_INVALID, "--join-from: %s: %s", src, strerror(errno));
		}
		if ((rc = bc_read_file(src, JOIN_FILE_MAX, &a, &al, err)))
			return rc;
		if (stat(dst, &sb) == 0) {
			/* Already joined (a restart): the files must be the installation's. */
			rc = bc_read_file(dst, JOIN_FILE_MAX, &b, &bl, err);
			bool same = rc == BC_OK && al == bl && memcmp(a, b, al) == 0;
			if (b)
				bc_wipe(b, bl);
			free(b);
			bc_wipe(a, al);
			free(a);
			if (rc)
				return rc;
			if (!same)
				return bc_error_set(
					err, BC_ERR_EXISTS,
					"--join-from: %s differs from %s: this data dir belongs to another "
					"installation",
					dst, src);
			continue;
		}
		rc = bc_write_file_atomic(dst, a, al, join_files[i].mode, err);
		bc_wipe(a, al);
		free(a);
		if (rc)
			return rc;
	}
	return BC_OK;
}
