/* libbadge's Key Vault client through the secret and key operations that tests/compat/50-vault-sdk.js
 * runs with the npm clients, against a real badge vault. Built by the integration tests against
 * the installed library (pkg-config badge libcrypto).
 *
 *   libbadge_kv_driver VAULT_URL
 *   environment: AUTHORITY, TENANT, CLIENT_ID, CLIENT_SECRET (a service principal with all
 *   permissions on the vault); NO_VERIFY=1 for a path-style or IP vault URL; SSL_CERT_FILE. */
#include <badge/badge.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;
static struct badge_keyvault *kv;
static const char *vault_url;

#define OK(cond, ...)                                                                                        \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "FAIL line %d: ", __LINE__);                                         \
			fprintf(stderr, __VA_ARGS__);                                                        \
			fprintf(stderr, " [%s, status %ld]\n", badge_keyvault_errmsg(kv),                    \
				badge_keyvault_http_status(kv));                                             \
			exit(1);                                                                             \
		}                                                                                            \
		checks++;                                                                                    \
	} while (0)

static json_t *parse(char *s)
{
	json_t *j = s ? json_loads(s, 0, NULL) : NULL;
	badge_free(s);
	return j;
}

static const char *str(const json_t *j, const char *path1, const char *path2)
{
	const json_t *v = json_object_get(j, path1);
	if (path2)
		v = json_object_get(v, path2);
	return json_string_value(v);
}

/* raw request; returns the status, *out the body (caller decrefs) */
static long req(const char *method, const char *path, const char *body, json_t **out)
{
	long st = 0;
	char *text = NULL;
	OK(badge_keyvault_request(kv, method, path, body, &st, &text) == BADGE_OK, "%s %s", method, path);
	json_t *j = parse(text);
	if (out)
		*out = j;
	else
		json_decref(j);
	return st;
}

static const char *last_segment(const char *id)
{
	const char *s = strrchr(id, '/');
	return s ? s + 1 : id;
}

static void secrets(void)
{
	char *json = NULL, *v = NULL, ver1[64];
	OK(badge_keyvault_secret_set(kv, "c-s1", "value-1", "text/plain", &json) == BADGE_OK, "set");
	json_t *s1 = parse(json);
	OK(!strcmp(str(s1, "value", NULL), "value-1"), "set value");
	const char *id = str(s1, "id", NULL);
	OK(id && strlen(last_segment(id)) == 32, "version of %s", id ? id : "(none)");
	if (!getenv("NO_VERIFY")) {
		char want[512];
		snprintf(want, sizeof(want), "%s/secrets/c-s1/", vault_url);
		OK(!strncmp(id, want, strlen(want)), "id %s", id);
	}
	OK(!strcmp(str(s1, "attributes", "recoveryLevel"), "Recoverable+Purgeable"), "recoveryLevel");
	snprintf(ver1, sizeof(ver1), "%s", last_segment(id));
	json_decref(s1);

	OK(badge_keyvault_secret_get(kv, "c-s1", NULL, &v, &json) == BADGE_OK && !strcmp(v, "value-1"),
	   "get");
	json_t *g = parse(json);
	OK(!strcmp(str(g, "contentType", NULL), "text/plain"), "contentType");
	json_decref(g);
	badge_free_secret(v);
	OK(badge_keyvault_secret_set(kv, "c-s1", "value-2", NULL, NULL) == BADGE_OK, "set again");
	OK(badge_keyvault_secret_get(kv, "c-s1", ver1, &v, NULL) == BADGE_OK && !strcmp(v, "value-1"),
	   "get by version");
	badge_free_secret(v);
	OK(badge_keyvault_secret_get(kv, "c-s1", NULL, &v, NULL) == BADGE_OK && !strcmp(v, "value-2"),
	   "latest");
	badge_free_secret(v);

	/* update properties: a disabled version is Forbidden */
	char path[256];
	snprintf(path, sizeof(path), "/secrets/c-s1/%s", ver1);
	OK(req("PATCH", path, "{\"attributes\":{\"enabled\":false},\"tags\":{\"c\":\"d\"}}", NULL) == 200,
	   "update");
	OK(badge_keyvault_secret_get(kv, "c-s1", ver1, &v, NULL) == BADGE_E_FORBIDDEN, "disabled version");
	OK(!strcmp(badge_keyvault_error_code(kv), "Forbidden"), "Forbidden code");

	for (int i = 0; i < 5; i++) {
		char name[32], val[8];
		snprintf(name, sizeof(name), "c-page-%d", i);
		snprintf(val, sizeof(val), "p%d", i);
		OK(badge_keyvault_secret_set(kv, name, val, NULL, NULL) == BADGE_OK, "set %s", name);
	}
	OK(badge_keyvault_secret_list(kv, &json) == BADGE_OK, "list");
	json_t *all = parse(json);
	OK(json_array_size(all) >= 6, "list size %zu", json_array_size(all));
	json_decref(all);
	json_t *page = NULL;
	OK(req("GET", "/secrets?maxresults=2", NULL, &page) == 200, "page");
	OK(json_array_size(json_object_get(page, "value")) == 2 && str(page, "nextLink", NULL), "paging");
	json_decref(page);
	OK(req("GET", "/secrets/c-s1/versions", NULL, &page) == 200 &&
		   json_array_size(json_object_get(page, "value")) == 2,
	   "versions");
	json_decref(page);

	OK(badge_keyvault_secret_delete(kv, "c-page-0", &json) == BADGE_OK, "delete");
	json_t *del = parse(json);
	const char *rid = str(del, "recoveryId", NULL);
	OK(rid && strstr(rid, "/deletedsecrets/c-page-0"), "recoveryId");
	json_decref(del);
	OK(badge_keyvault_secret_get(kv, "c-page-0", NULL, &v, NULL) == BADGE_E_NOT_FOUND, "deleted secret");
	OK(!strcmp(badge_keyvault_error_code(kv), "SecretNotFound"), "SecretNotFound");
	OK(req("GET", "/deletedsecrets/c-page-0", NULL, NULL) == 200, "get deleted");
	OK(badge_keyvault_secret_set(kv, "c-page-0", "again", NULL, NULL) == BADGE_E_CONFLICT,
	   "set on a deleted name");
	OK(badge_keyvault_secret_recover(kv, "c-page-0", NULL) == BADGE_OK, "recover");
	OK(badge_keyvault_secret_get(kv, "c-page-0", NULL, &v, NULL) == BADGE_OK && !strcmp(v, "p0"),
	   "recovered value");
	badge_free_secret(v);

	json_t *bk = NULL;
	OK(req("POST", "/secrets/c-page-1/backup", NULL, &bk) == 200 && str(bk, "value", NULL), "backup");
	OK(badge_keyvault_secret_delete(kv, "c-page-1", NULL) == BADGE_OK, "delete for purge");
	OK(req("DELETE", "/deletedsecrets/c-page-1", NULL, NULL) == 204, "purge");
	OK(req("GET", "/deletedsecrets/c-page-1", NULL, NULL) == 404, "purged");
	char *body = json_dumps(bk, JSON_COMPACT);
	OK(req("POST", "/secrets/restore", body, NULL) == 200, "restore");
	free(body);
	json_decref(bk);
	OK(badge_keyvault_secret_get(kv, "c-page-1", NULL, &v, NULL) == BADGE_OK && !strcmp(v, "p1"),
	   "restored value");
	badge_free_secret(v);

	char *big = malloc(25 * 1024 + 2);
	memset(big, 'x', 25 * 1024 + 1);
	big[25 * 1024 + 1] = '\0';
	OK(badge_keyvault_secret_set(kv, "c-big", big, NULL, NULL) == BADGE_E_HTTP &&
		   badge_keyvault_http_status(kv) == 400 &&
		   !strcmp(badge_keyvault_error_code(kv), "BadParameter"),
	   "oversized value");
	free(big);
	printf("secrets: ok\n");
}

static void sha(const char *alg, const char *data, uint8_t *out, size_t *n)
{
	const EVP_MD *md = !strcmp(alg + 2, "256")   ? EVP_sha256()
			   : !strcmp(alg + 2, "384") ? EVP_sha384()
						     : EVP_sha512();
	unsigned int len = 0;
	EVP_Digest(data, strlen(data), out, &len, md, NULL);
	*n = len;
}

static void sign_verify(const char *key, const char *alg, size_t want_len)
{
	uint8_t d[64], d2[64], *sig = NULL;
	size_t n = 0, n2 = 0, slen = 0;
	int valid = -1;
	sha(alg, "payload", d, &n);
	sha(alg, "other", d2, &n2);
	OK(badge_keyvault_key_sign(kv, key, NULL, alg, d, n, &sig, &slen) == BADGE_OK, "%s sign", alg);
	OK(!want_len || slen == want_len, "%s signature length %zu", alg, slen);
	OK(badge_keyvault_key_verify(kv, key, NULL, alg, d, n, sig, slen, &valid) == BADGE_OK && valid == 1,
	   "%s verify", alg);
	OK(badge_keyvault_key_verify(kv, key, NULL, alg, d2, n2, sig, slen, &valid) == BADGE_OK && valid == 0,
	   "%s verify another digest", alg);
	badge_free(sig);
}

static void keys(void)
{
	json_t *k = NULL;
	OK(req("POST", "/keys/c-rsa/create", "{\"kty\":\"RSA\",\"key_size\":2048,\"attributes\":{}}", &k) ==
		   200,
	   "create RSA");
	OK(!strcmp(str(k, "key", "kty"), "RSA") && str(k, "key", "n") && !str(k, "key", "d"), "RSA key");
	char *ops = json_dumps(json_object_get(json_object_get(k, "key"), "key_ops"), JSON_COMPACT);
	OK(ops && !strcmp(ops, "[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\"]"),
	   "key_ops %s", ops);
	free(ops);
	char v1[64];
	snprintf(v1, sizeof(v1), "%s", last_segment(str(k, "key", "kid")));
	json_decref(k);

	static const struct {
		const char *crv, *alg;
		size_t len;
	} ec[] = {{"P-256", "ES256", 64}, {"P-384", "ES384", 96}, {"P-521", "ES512", 132}};
	for (size_t i = 0; i < 3; i++) {
		char path[64], body[128], name[32];
		snprintf(name, sizeof(name), "c-ec-%s", ec[i].crv + 2);
		snprintf(path, sizeof(path), "/keys/%s/create", name);
		snprintf(body, sizeof(body), "{\"kty\":\"EC\",\"attributes\":{},\"crv\":\"%s\"}", ec[i].crv);
		OK(req("POST", path, body, &k) == 200 && !strcmp(str(k, "key", "crv"), ec[i].crv),
		   "create EC %s", ec[i].crv);
		json_decref(k);
		sign_verify(name, ec[i].alg, ec[i].len);
	}
	OK(req("POST", "/keys/c-rsa-hsm/create", "{\"kty\":\"RSA-HSM\",\"key_size\":3072,\"attributes\":{}}",
	       &k) == 200 &&
		   !strcmp(str(k, "key", "kty"), "RSA-HSM"),
	   "RSA-HSM");
	json_decref(k);

	static const char *const rs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
	for (size_t i = 0; i < 6; i++)
		sign_verify("c-rsa", rs[i], 256);

	static const char *const enc[] = {"RSA1_5", "RSA-OAEP", "RSA-OAEP-256"};
	for (size_t i = 0; i < 3; i++) {
		char pt[32];
		uint8_t *ct = NULL, *back = NULL;
		size_t ctn = 0, bn = 0;
		snprintf(pt, sizeof(pt), "secret %s", enc[i]);
		OK(badge_keyvault_key_encrypt(kv, "c-rsa", v1, enc[i], (const uint8_t *)pt, strlen(pt), &ct,
					      &ctn) == BADGE_OK &&
			   ctn == 256,
		   "%s encrypt", enc[i]);
		OK(badge_keyvault_key_decrypt(kv, "c-rsa", v1, enc[i], ct, ctn, &back, &bn) == BADGE_OK &&
			   bn == strlen(pt) && !memcmp(back, pt, bn),
		   "%s round trip", enc[i]);
		badge_free(ct);
		badge_free(back);
		OK(badge_keyvault_key_wrap(kv, "c-rsa", NULL, enc[i], (const uint8_t *)pt, strlen(pt), &ct,
					   &ctn) == BADGE_OK,
		   "%s wrap", enc[i]);
		OK(badge_keyvault_key_unwrap(kv, "c-rsa", NULL, enc[i], ct, ctn, &back, &bn) == BADGE_OK &&
			   bn == strlen(pt) && !memcmp(back, pt, bn),
		   "%s unwrap round trip", enc[i]);
		badge_free(ct);
		badge_free(back);
	}

	char *json = NULL;
	OK(badge_keyvault_key_get(kv, "c-rsa", NULL, &json) == BADGE_OK, "key get");
	k = parse(json);
	OK(!strcmp(last_segment(str(k, "key", "kid")), v1), "latest version");
	json_decref(k);
	OK(badge_keyvault_key_get(kv, "c-rsa", v1, NULL) == BADGE_OK, "key get by version");
	OK(req("POST", "/keys/c-rsa/rotate", NULL, &k) == 200 &&
		   strcmp(last_segment(str(k, "key", "kid")), v1) != 0,
	   "rotate");
	json_decref(k);
	OK(req("GET", "/keys/c-rsa/versions", NULL, &k) == 200 &&
		   json_array_size(json_object_get(k, "value")) == 2,
	   "versions");
	json_decref(k);

	OK(req("DELETE", "/keys/c-ec-256", NULL, &k) == 200 &&
		   strstr(str(k, "recoveryId", NULL), "/deletedkeys/c-ec-256"),
	   "delete key");
	json_decref(k);
	OK(badge_keyvault_key_get(kv, "c-ec-256", NULL, NULL) == BADGE_E_NOT_FOUND &&
		   !strcmp(badge_keyvault_error_code(kv), "KeyNotFound"),
	   "deleted key");
	OK(req("POST", "/deletedkeys/c-ec-256/recover", NULL, NULL) == 200, "recover key");
	OK(badge_keyvault_key_get(kv, "c-ec-256", NULL, NULL) == BADGE_OK, "recovered key");
	printf("keys: ok\n");
}

int main(int argc, char **argv)
{
	const char *auth = getenv("AUTHORITY"), *tenant = getenv("TENANT"), *cid = getenv("CLIENT_ID"),
		   *secret = getenv("CLIENT_SECRET");
	if (argc != 2 || !auth || !tenant || !cid || !secret) {
		fprintf(stderr, "usage: AUTHORITY=.. TENANT=.. CLIENT_ID=.. CLIENT_SECRET=.. %s VAULT_URL\n",
			argv[0]);
		return 2;
	}
	vault_url = argv[1];
	struct badge_credential *cred = NULL;
	OK(badge_credential_new_client_secret(&cred, auth, tenant, cid, secret) == BADGE_OK, "credential");
	OK(badge_keyvault_new(&kv, vault_url, cred) == BADGE_OK, "vault client");
	if (getenv("NO_VERIFY"))
		OK(badge_keyvault_set_challenge_verification(kv, 0) == BADGE_OK, "verification off");
	if (getenv("API_VERSION"))
		OK(badge_keyvault_set_api_version(kv, getenv("API_VERSION")) == BADGE_OK, "api version");
	secrets();
	keys();
	badge_keyvault_free(kv);
	badge_credential_free(cred);
	printf("PASS (%d checks)\n", checks);
	return 0;
}
