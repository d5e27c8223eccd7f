/* libbadge's parsers of what a peer sends: the vault's WWW-Authenticate challenge (and the host
 * check that follows it) and a token endpoint's response body. The input's first byte picks the
 * parser; the rest is the untrusted text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "client/client_int.h"
#include "core/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		char resource[BC_LIMIT_RESOURCE + 1];
		if (kv_challenge_resource(text, resource, sizeof(resource)) == BADGE_OK) {
			(void)kv_challenge_host_ok("https://myvault.vault.azure.net:443/", resource);
			(void)kv_challenge_host_ok(resource, "https://vault.azure.net");
		}
	} else {
		struct bc_httpc_res res;
		bc_httpc_res_init(&res);
		res.status = (data[0] & 2) ? 200 : 400;
		char *token = NULL;
		int64_t exp = 0;
		if (bc_buf_append(&res.body, text, size - 1) == BC_OK &&
		    client_parse_token(&res, 1800000000, &token, &exp, NULL) == BADGE_OK)
			free(token);
		bc_httpc_res_release(&res);
	}
	free(text);
	return 0;
}
