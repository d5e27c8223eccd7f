/* Fuzzes bc_json_parse with a small cap and the default one. Invariant: whatever parses dumps
 * to a document that parses again to an equal value, and to the bytes jansson writes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"

static void roundtrip(const json_t *j)
{
	struct bc_buf b;
	bc_buf_init(&b, 0);
	if (bc_json_dump(j, &b) != BC_OK)
		abort();
	json_t *again = NULL;
	struct bc_error err;
	if (bc_json_parse(b.data, b.len, 0, &again, &err) != BC_OK)
		abort();
	if (!json_equal(j, again))
		abort();
	/* byte for byte what jansson writes */
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!want || strcmp(want, b.data) != 0)
		abort();
	free(want);
	(void)bc_json_str(j, "a");
	(void)bc_json_int(j, "n", 0);
	(void)bc_json_bool(j, "b", false);
	json_decref(again);
	bc_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL;
	struct bc_error err;
	if (bc_json_parse((const char *)data, size, 0, &j, &err) == BC_OK) {
		roundtrip(j);
		json_decref(j);
	} else if (!err.msg[0] || j) {
		abort();
	}
	if (bc_json_parse((const char *)data, size, 64, &j, &err) == BC_OK) {
		if (size > 64)
			abort();
		json_decref(j);
	}
	return 0;
}
