/* Fuzzes the application/x-www-form-urlencoded parser and the percent-decoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bc_http_kv kv[BC_LIMIT_FORM_FIELDS];
	struct bc_buf storage = {0};
	struct bc_error err = {0};
	size_t n = 0;
	if (bc_http_form_parse((const char *)data, size, kv, BC_LIMIT_FORM_FIELDS, &n, &storage, &err) == 0) {
		if (n > BC_LIMIT_FORM_FIELDS)
			abort();
		for (size_t i = 0; i < n; i++)
			if (strlen(kv[i].key) > size || strlen(kv[i].value) > size)
				abort();
	}
	bc_buf_release(&storage);

	/* the decoder on an exact-size copy (no NUL after it), both modes */
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	for (int plus = 0; plus < 2; plus++) {
		if (size)
			memcpy(copy, data, size);
		long r = bc_http_pct_decode(copy, size, plus);
		if (r > (long)size)
			abort();
	}
	free(copy);
	return 0;
}
