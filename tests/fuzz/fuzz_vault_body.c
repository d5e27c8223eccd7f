/* Fuzzes the vault's request-body parsers: the first byte picks the parser (set-secret,
 * update-secret, create-key, import-key, update-key, sign, verify, restore, getrandombytes),
 * the rest is the body. Every parser must either succeed with outputs it owns or fail with a
 * Key Vault error code and a 4xx status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

static void check_fail(const struct vault_fail *f)
{
	if (f->http < 400 || f->http > 499 || !f->code)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] % 9;
	/* The adapter hands handlers a NUL-terminated body. */
	char *body = malloc(size);
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	size_t len = size - 1;
	struct vault_fail f = {0};
	int rc;
	switch (which) {
	case 0:
	case 1: {
		struct vault_secret_input in;
		rc = vault_parse_secret_body(body, len, which == 0, &in, &f);
		if (rc == BC_OK) {
			if (which == 0 && (!in.value || in.value_len > BC_LIMIT_SECRET_VALUE))
				abort();
			vault_secret_input_release(&in);
		}
		break;
	}
	case 2:
	case 3:
	case 4: {
		struct vault_key_input in;
		rc = which == 2   ? vault_parse_key_create(body, len, &in, &f)
		     : which == 3 ? vault_parse_key_import(body, len, &in, &f)
				  : vault_parse_key_update(body, len, &in, &f);
		if (rc == BC_OK) {
			json_t *ops = vault_key_ops_json(in.ops);
			json_decref(ops);
			vault_key_input_release(&in);
		}
		break;
	}
	case 5:
	case 6: {
		struct vault_op_input in;
		rc = vault_parse_key_op(body, len, which == 6, &in, &f);
		if (rc == BC_OK)
			vault_op_input_release(&in);
		break;
	}
	case 7: {
		uint8_t *out = NULL;
		size_t n = 0;
		rc = vault_parse_value_b64(body, len, 4096, &out, &n, &f);
		free(out);
		break;
	}
	default: {
		int count = 0;
		rc = vault_parse_rng(body, len, &count, &f);
		if (rc == BC_OK && (count < 1 || count > VAULT_LIMIT_RNG))
			abort();
		break;
	}
	}
	if (rc != BC_OK)
		check_fail(&f);
	free(body);
	return 0;
}
