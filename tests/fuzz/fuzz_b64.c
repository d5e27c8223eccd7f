/* Fuzzes the base64 and base64url decoders. Invariant: the decoders accept only canonical
 * encodings, so whatever decodes re-encodes to the same text (padding aside). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/b64.h"

static void check(const uint8_t *data, size_t size, int url)
{
	uint8_t *out = NULL;
	size_t n = 0;
	struct bc_error err;
	int rc = url ? bc_b64url_decode((const char *)data, size, &out, &n, &err)
		     : bc_b64_decode((const char *)data, size, &out, &n, &err);
	if (rc != BC_OK)
		return;
	struct bc_buf b;
	bc_buf_init(&b, 0);
	if ((url ? bc_b64url_encode(out, n, &b) : bc_b64_encode(out, n, &b)) != BC_OK)
		abort();
	size_t m = size;
	while (m > 0 && data[m - 1] == '=')
		m--;
	size_t e = b.len;
	while (e > 0 && b.data[e - 1] == '=')
		e--;
	if (m != e || memcmp(b.data, data, m) != 0)
		abort();
	bc_buf_release(&b);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, 0);
	check(data, size, 1);
	return 0;
}
