/* read-secret: prints a Key Vault secret, as the machine's managed identity.
 *
 *   usage: read-secret [--no-challenge-verification] VAULT_URL SECRET_NAME
 *
 * There is no credential anywhere: not in this code, not in a configuration file, not in the
 * environment. The identity is the machine's (or the App Service's); libbadge finds its endpoint
 * the way the Azure SDKs do, the vault's 401 challenge says which token it wants, and the token
 * never leaves the library. --no-challenge-verification is for vaults reached by IP address or
 * path-style URL, whose host cannot be checked against the challenge's resource.
 *
 * Build against an installed libbadge: cc read-secret.c $(pkg-config --cflags --libs badge) */
#include <badge/badge.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	int verify = 1, arg = 1;
	if (argc > 1 && strcmp(argv[1], "--no-challenge-verification") == 0) {
		verify = 0;
		arg++;
	}
	if (argc - arg != 2) {
		fprintf(stderr, "usage: read-secret [--no-challenge-verification] VAULT_URL SECRET_NAME\n");
		return 2;
	}
	struct badge_credential *cred = NULL;
	struct badge_keyvault *kv = NULL;
	char *value = NULL;
	int rc = badge_credential_new_managed_identity(&cred, BADGE_IDENTITY_SYSTEM, NULL);
	if (rc != BADGE_OK) {
		fprintf(stderr, "read-secret: no managed identity: %s\n", badge_status_name(rc));
		goto out;
	}
	rc = badge_keyvault_new(&kv, argv[arg], cred);
	if (rc != BADGE_OK) {
		fprintf(stderr, "read-secret: bad vault url %s: %s\n", argv[arg], badge_status_name(rc));
		goto out;
	}
	if ((rc = badge_keyvault_set_challenge_verification(kv, verify)) != BADGE_OK)
		goto out;
	rc = badge_keyvault_secret_get(kv, argv[arg + 1], NULL, &value, NULL);
	if (rc != BADGE_OK) {
		fprintf(stderr, "read-secret: %s (%s)\n", badge_keyvault_errmsg(kv), badge_status_name(rc));
		goto out;
	}
	printf("%s\n", value);
out:
	badge_free_secret(value);
	badge_keyvault_free(kv);
	badge_credential_free(cred);
	return rc == BADGE_OK ? 0 : 1;
}
