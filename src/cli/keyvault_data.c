/* badge keyvault secret|key|audit: the vault's data plane from the command line (az keyvault
 * secret/key's verbs), a client of libbadge like any application. Requests go path-style
 * (https://SERVER/vaults/NAME/...) so no DNS name is needed; the token comes from --token /
 * BADGE_TOKEN, or from the session's service principal for the resource the vault's own 401
 * challenge names. `audit` reads the audit trail from the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "badge/badge.h"
#include "cli/cli.h"
#include "cli/session.h"
#include "core/b64.h"
#include "core/json.h"
#include "core/store.h"
#include "core/util.h"
#include "vault/vault.h"

#define KV_API   "7.6"
#define MAX_LIST 64

struct opts {
	const char *vault, *name, *version, *value, *file, *content_type, *kty, *curve, *alg, *digest,
		*signature;
	const char *enabled, *expires, *not_before, *token, *store, *data_dir, *since, *limit;
	int size;
	bool disabled;
	const char *tags[MAX_LIST];
	size_t ntags;
	const char *ops[MAX_LIST];
	size_t nops;
};

struct kv {
	struct cli_session s;
	struct badge_credential *cred; /* owned */
	struct badge_keyvault *kv;     /* owned */
	const struct opts *o;
};

static int usage(FILE *f)
{
	fprintf(f, "usage: badge keyvault secret VERB --vault-name V [--name N] ...\n"
		   "  secret set --name N (--value V | --file F) [--content-type T] [--tags k=v ...] "
		   "[--disabled]\n"
		   "             [--expires EPOCH] [--not-before EPOCH]\n"
		   "  secret show|delete|recover|purge|show-deleted|list-versions --name N [--version X]\n"
		   "  secret set-attributes --name N [--version X] [--enabled true|false] [--content-type T] "
		   "[--tags k=v ...]\n"
		   "  secret list|list-deleted;  secret backup --name N --file F;  secret restore --file F\n"
		   "usage: badge keyvault key VERB --vault-name V [--name N] ...\n"
		   "  key create --name N [--kty RSA|RSA-HSM|EC|EC-HSM] [--size 2048|3072|4096] [--curve "
		   "P-256|P-384|P-521]\n"
		   "             [--ops sign verify ...] [--tags k=v ...] [--disabled]\n"
		   "  key import --name N --file JWK.json;  key rotate --name N\n"
		   "  key "
		   "show|delete|recover|purge|show-deleted|list-versions|set-attributes|list|list-deleted|"
		   "backup|restore\n"
		   "  key sign --name N --alg ALG --digest B64URL;  key verify ... --digest B64URL "
		   "--signature B64URL\n"
		   "  key encrypt|decrypt|wrap|unwrap --name N --alg RSA1_5|RSA-OAEP|RSA-OAEP-256 --value "
		   "B64URL\n"
		   "usage: badge keyvault audit --vault-name V [--store URL | --data-dir DIR] [--since "
		   "EPOCH_MS] [--limit N]\n"
		   "session flags: --server URL --ca-file F --data-dir DIR, or "
		   "BADGE_URL/BADGE_CA_FILE/profile; --token T\n");
	return f == stderr ? 2 : 0;
}

/* ---- options ------------------------------------------------------------------------------ */

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct {
		const char *flag;
		size_t off;
	} strs[] = {
#define S(f, m) {f, offsetof(struct opts, m)}
		S("--vault-name", vault),
		S("--name", name),
		S("--version", version),
		S("--value", value),
		S("--file", file),
		S("--content-type", content_type),
		S("--kty", kty),
		S("--curve", curve),
		S("--alg", alg),
		S("--digest", digest),
		S("--signature", signature),
		S("--enabled", enabled),
		S("--expires", expires),
		S("--not-before", not_before),
		S("--token", token),
		S("--store", store),
		S("--since", since),
		S("--limit", limit),
		S("--data-dir", data_dir),
#undef S
	};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool done = false;
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			if (strcmp(a, strs[k].flag) == 0) {
				if (i + 1 >= argc)
					return cli_fail("%s needs a value", a);
				*(const char **)((char *)o + strs[k].off) = argv[++i];
				done = true;
			}
		if (done)
			continue;
		if (strcmp(a, "--size") == 0 && i + 1 < argc) {
			o->size = atoi(argv[++i]);
		} else if (strcmp(a, "--disabled") == 0) {
			o->disabled = true;
		} else if (strcmp(a, "--tags") == 0 || strcmp(a, "--ops") == 0) {
			bool tags = a[2] == 't';
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
				if ((tags ? o->ntags : o->nops) >= MAX_LIST)
					return cli_fail("too many values for %s", a);
				if (tags)
					o->tags[o->ntags++] = argv[++i];
				else
					o->ops[o->nops++] = argv[++i];
			}
		} else {
			return cli_fail("unknown argument '%s'", a);
		}
	}
	return 0;
}

static json_t *tags_json(const struct opts *o)
{
	json_t *t = json_object();
	for (size_t i = 0; i < o->ntags; i++) {
		const char *eq = strchr(o->tags[i], '=');
		char key[600];
		snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - o->tags[i]) : (int)strlen(o->tags[i]),
			 o->tags[i]);
		json_object_set_new(t, key, json_string(eq ? eq + 1 : ""));
	}
	return t;
}

static json_t *attrs_json(const struct opts *o)
{
	json_t *a = json_object();
	if (o->disabled)
		json_object_set_new(a, "enabled", json_false());
	if (o->enabled)
		json_object_set_new(a, "enabled", json_boolean(strcmp(o->enabled, "true") == 0));
	if (o->expires)
		json_object_set_new(a, "exp", json_integer(strtoll(o->expires, NULL, 10)));
	if (o->not_before)
		json_object_set_new(a, "nbf", json_integer(strtoll(o->not_before, NULL, 10)));
	return a;
}

/* ---- the vault, through libbadge ----------------------------------------------------------- */

/* The client: path-style base on the session's server (no DNS name needed, so the challenge's
 * resource cannot be checked against the host: the server is the one the operator configured),
 * the session's service principal as a client-secret credential, or a fixed --token. */
static int open_vault(struct kv *k)
{
	const char *t = k->o->token ? k->o->token : getenv("BADGE_TOKEN");
	char url[1024];
	int rc;
	if (t && *t)
		rc = badge_credential_new_access_token(&k->cred, t, 0);
	else
		rc = badge_credential_new_client_secret(&k->cred, k->s.server, k->s.tenant_id, k->s.client_id,
							k->s.client_secret);
	if (rc == BADGE_OK && k->s.ca_file[0])
		rc = badge_credential_set_ca_file(k->cred, k->s.ca_file);
	if (rc != BADGE_OK)
		return cli_fail("cannot make a credential: %s", badge_status_name(rc));
	snprintf(url, sizeof(url), "%s/vaults/%s", k->s.server, k->o->vault);
	if ((rc = badge_keyvault_new(&k->kv, url, k->cred)) != BADGE_OK)
		return cli_fail("cannot use the vault at %s: %s", url, badge_status_name(rc));
	if ((rc = badge_keyvault_set_api_version(k->kv, KV_API)) != BADGE_OK ||
	    (rc = badge_keyvault_set_challenge_verification(k->kv, 0)) != BADGE_OK ||
	    (k->s.ca_file[0] && (rc = badge_keyvault_set_ca_file(k->kv, k->s.ca_file)) != BADGE_OK))
		return cli_fail("cannot configure the vault client: %s", badge_status_name(rc));
	return 0;
}

/* One request; url_or_path is a vault path ("/secrets/x") or an absolute nextLink. On BC_OK
 * *status and *out (the parsed body, NULL when empty) are set. */
static int call(struct kv *k, const char *method, const char *url_or_path, const json_t *body, long *status,
		json_t **out, struct bc_error *err)
{
	char *payload = NULL, *text = NULL;
	*out = NULL;
	if (body && !(payload = json_dumps(body, JSON_COMPACT)))
		return bc_error_set(err, BC_ERR_NOMEM, "out of memory");
	int rc = badge_keyvault_request(k->kv, method, url_or_path, payload, status, &text);
	if (payload) {
		bc_wipe(payload, strlen(payload));
		free(payload);
	}
	if (rc != BADGE_OK)
		return bc_error_set(err, BC_ERR_UNAVAILABLE, "%s", badge_keyvault_errmsg(k->kv));
	if (text && bc_json_parse(text, strlen(text), 0, out, NULL) != BC_OK)
		*out = json_pack("{s:{s:s,s:s}}", "error", "code", "BadResponse", "message",
				 "the vault answered with non-JSON");
	badge_free_secret(text);
	return BC_OK;
}

/* Calls, prints the result (or the error) and returns the exit status. */
static int run(struct kv *k, const char *method, const char *path, json_t *body)
{
	struct bc_error err = {0};
	long status = 0;
	json_t *out = NULL;
	int rc = call(k, method, path, body, &status, &out, &err);
	json_decref(body);
	if (rc != BC_OK)
		return cli_fail("%s", err.msg);
	if (status < 200 || status > 299) {
		rc = cli_session_fail(status, out);
		json_decref(out);
		return rc;
	}
	if (out)
		cli_print_json(out);
	json_decref(out);
	return 0;
}

/* Lists follow nextLink to the end and print one array. */
static int run_list(struct kv *k, const char *path)
{
	struct bc_error err = {0};
	json_t *all = json_array();
	char *next = strdup(path);
	int rc = 0;
	for (int pages = 0; next && pages < 100000; pages++) {
		long status = 0;
		json_t *out = NULL;
		if (call(k, "GET", next, NULL, &status, &out, &err) != BC_OK) {
			rc = cli_fail("%s", err.msg);
			break;
		}
		if (status != 200) {
			rc = cli_session_fail(status, out);
			json_decref(out);
			break;
		}
		json_array_extend(all, json_object_get(out, "value"));
		free(next);
		next = bc_json_str(out, "nextLink") ? strdup(bc_json_str(out, "nextLink")) : NULL;
		json_decref(out);
	}
	if (rc == 0)
		cli_print_json(all);
	free(next);
	json_decref(all);
	return rc;
}

static int need(const struct opts *o, const char *what, const char *v)
{
	if (!v || !*v)
		return cli_fail("%s is required", what);
	return 0;
}

static char *path_of(const char *coll, const struct opts *o, const char *suffix)
{
	char *p = NULL;
	if (asprintf(&p, "/%s/%s%s%s%s", coll, o->name, o->version ? "/" : "", o->version ? o->version : "",
		     suffix ? suffix : "") < 0)
		return NULL;
	return p;
}

static int read_file_b64(const char *file, char **out)
{
	char *data = NULL;
	size_t len = 0;
	struct bc_error err = {0};
	if (bc_read_file(file, 8 * 1024 * 1024, &data, &len, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	*out = bc_b64url_encode_str(data, len);
	free(data);
	return *out ? 0 : cli_fail("out of memory");
}

/* backup: writes the blob's bytes to --file. */
static int backup(struct kv *k, const char *coll)
{
	struct bc_error err = {0};
	long status = 0;
	json_t *out = NULL;
	char *path = NULL;
	int rc;
	if ((rc = need(k->o, "--name", k->o->name)) || (rc = need(k->o, "--file", k->o->file)))
		return rc;
	if (asprintf(&path, "/%s/%s/backup", coll, k->o->name) < 0)
		return cli_fail("out of memory");
	rc = call(k, "POST", path, NULL, &status, &out, &err);
	free(path);
	if (rc != BC_OK)
		return cli_fail("%s", err.msg);
	if (status != 200) {
		rc = cli_session_fail(status, out);
		json_decref(out);
		return rc;
	}
	const char *v = bc_json_str(out, "value");
	uint8_t *raw = NULL;
	size_t n = 0;
	rc = v && bc_b64url_decode(v, strlen(v), &raw, &n, &err) == BC_OK &&
			     bc_write_file_atomic(k->o->file, raw, n, 0600, &err) == BC_OK
		     ? 0
		     : cli_fail("cannot write the backup: %s", err.msg);
	free(raw);
	json_decref(out);
	return rc;
}

static int restore(struct kv *k, const char *coll)
{
	char *b64 = NULL, path[64];
	int rc = need(k->o, "--file", k->o->file);
	if (rc || (rc = read_file_b64(k->o->file, &b64)))
		return rc;
	snprintf(path, sizeof(path), "/%s/restore", coll);
	rc = run(k, "POST", path, json_pack("{s:s}", "value", b64));
	free(b64);
	return rc;
}

/* The verbs both families share. Returns -1 when verb is not one of them. */
static int common_verb(struct kv *k, const char *verb, const char *coll, const char *deleted)
{
	const struct opts *o = k->o;
	char *p = NULL;
	int rc = -1;
	if (!strcmp(verb, "list")) {
		char path[32];
		snprintf(path, sizeof(path), "/%s", coll);
		return run_list(k, path);
	}
	if (!strcmp(verb, "list-deleted")) {
		char path[32];
		snprintf(path, sizeof(path), "/%s", deleted);
		return run_list(k, path);
	}
	if (!strcmp(verb, "backup"))
		return backup(k, coll);
	if (!strcmp(verb, "restore"))
		return restore(k, coll);
	static const char *const named[] = {"show",         "delete",        "recover",       "purge",
					    "show-deleted", "list-versions", "set-attributes"};
	bool is_named = false;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		is_named = is_named || !strcmp(verb, named[i]);
	if (!is_named)
		return -1;
	if ((rc = need(o, "--name", o->name)))
		return rc;
	if (!strcmp(verb, "show")) {
		p = path_of(coll, o, o->version ? NULL : "/");
		rc = run(k, "GET", p, NULL);
	} else if (!strcmp(verb, "delete")) {
		p = path_of(coll, &(struct opts){.name = o->name}, NULL);
		rc = run(k, "DELETE", p, NULL);
	} else if (!strcmp(verb, "list-versions")) {
		p = path_of(coll, &(struct opts){.name = o->name}, "/versions");
		rc = run_list(k, p);
	} else if (!strcmp(verb, "set-attributes")) {
		json_t *b = json_object();
		json_object_set_new(b, "attributes", attrs_json(o));
		if (o->ntags)
			json_object_set_new(b, "tags", tags_json(o));
		if (o->content_type)
			json_object_set_new(b, "contentType", json_string(o->content_type));
		if (o->nops) {
			json_t *ops = json_array();
			for (size_t i = 0; i < o->nops; i++)
				json_array_append_new(ops, json_string(o->ops[i]));
			json_object_set_new(b, "key_ops", ops);
		}
		p = path_of(coll, o, o->version ? NULL : "/");
		rc = run(k, "PATCH", p, b);
	} else {
		/* show-deleted, recover, purge */
		p = path_of(deleted, &(struct opts){.name = o->name},
			    !strcmp(verb, "recover") ? "/recover" : NULL);
		rc = run(k,
			 !strcmp(verb, "purge")     ? "DELETE"
			 : !strcmp(verb, "recover") ? "POST"
						    : "GET",
			 p, NULL);
		if (rc == 0 && !strcmp(verb, "purge"))
			fprintf(stderr, "purged\n");
	}
	free(p);
	return rc;
}

static int secret_verb(struct kv *k, const char *verb)
{
	const struct opts *o = k->o;
	int rc = common_verb(k, verb, "secrets", "deletedsecrets");
	if (rc != -1)
		return rc;
	if (strcmp(verb, "set") != 0) {
		cli_fail("unknown verb 'secret %s'", verb);
		return usage(stderr);
	}
	if ((rc = need(o, "--name", o->name)))
		return rc;
	char *value = NULL;
	if (o->file) {
		size_t len = 0;
		struct bc_error err = {0};
		if (bc_read_file(o->file, 64 * 1024, &value, &len, &err) != BC_OK)
			return cli_fail("%s", err.msg);
	} else if (o->value) {
		value = strdup(o->value);
	} else {
		return cli_fail("--value or --file is required");
	}
	json_t *b = json_pack("{s:s,s:o}", "value", value ? value : "", "attributes", attrs_json(o));
	if (value) {
		bc_wipe(value, strlen(value));
		free(value);
	}
	if (!b)
		return cli_fail("the value must be UTF-8 text");
	if (o->ntags)
		json_object_set_new(b, "tags", tags_json(o));
	if (o->content_type)
		json_object_set_new(b, "contentType", json_string(o->content_type));
	char *p = path_of("secrets", &(struct opts){.name = o->name}, NULL);
	rc = run(k, "PUT", p, b);
	free(p);
	return rc;
}

static int key_verb(struct kv *k, const char *verb)
{
	const struct opts *o = k->o;
	int rc = common_verb(k, verb, "keys", "deletedkeys");
	char *p = NULL;
	if (rc != -1)
		return rc;
	if ((rc = need(o, "--name", o->name)))
		return rc;
	if (!strcmp(verb, "create")) {
		const char *kty = o->kty ? o->kty : "RSA";
		json_t *b = json_pack("{s:s,s:o}", "kty", kty, "attributes", attrs_json(o));
		if (strncmp(kty, "EC", 2) == 0)
			json_object_set_new(b, "crv", json_string(o->curve ? o->curve : "P-256"));
		else if (o->size)
			json_object_set_new(b, "key_size", json_integer(o->size));
		if (o->nops) {
			json_t *ops = json_array();
			for (size_t i = 0; i < o->nops; i++)
				json_array_append_new(ops, json_string(o->ops[i]));
			json_object_set_new(b, "key_ops", ops);
		}
		if (o->ntags)
			json_object_set_new(b, "tags", tags_json(o));
		p = path_of("keys", &(struct opts){.name = o->name}, "/create");
		rc = run(k, "POST", p, b);
	} else if (!strcmp(verb, "import")) {
		json_t *jwk = NULL;
		char *data = NULL;
		size_t len = 0;
		struct bc_error err = {0};
		if ((rc = need(o, "--file", o->file)))
			return rc;
		if (bc_read_file(o->file, 64 * 1024, &data, &len, &err) != BC_OK ||
		    bc_json_parse(data, len, 0, &jwk, &err) != BC_OK) {
			free(data);
			return cli_fail("%s", err.msg);
		}
		bc_wipe(data, len);
		free(data);
		json_t *b = json_pack("{s:o,s:o}", "key", jwk, "attributes", attrs_json(o));
		if (o->ntags)
			json_object_set_new(b, "tags", tags_json(o));
		p = path_of("keys", &(struct opts){.name = o->name}, NULL);
		rc = run(k, "PUT", p, b);
	} else if (!strcmp(verb, "rotate")) {
		p = path_of("keys", &(struct opts){.name = o->name}, "/rotate");
		rc = run(k, "POST", p, NULL);
	} else {
		static const struct {
			const char *verb, *path;
		} ops[] = {{"sign", "sign"},       {"verify", "verify"}, {"encrypt", "encrypt"},
			   {"decrypt", "decrypt"}, {"wrap", "wrapkey"},  {"unwrap", "unwrapkey"}};
		const char *op = NULL;
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (!strcmp(verb, ops[i].verb))
				op = ops[i].path;
		if (!op) {
			cli_fail("unknown verb 'key %s'", verb);
			return usage(stderr);
		}
		if ((rc = need(o, "--alg", o->alg)))
			return rc;
		json_t *b;
		if (!strcmp(op, "sign"))
			b = json_pack("{s:s,s:s}", "alg", o->alg, "value", o->digest ? o->digest : "");
		else if (!strcmp(op, "verify"))
			b = json_pack("{s:s,s:s,s:s}", "alg", o->alg, "digest", o->digest ? o->digest : "",
				      "value", o->signature ? o->signature : "");
		else
			b = json_pack("{s:s,s:s}", "alg", o->alg, "value", o->value ? o->value : "");
		char suffix[32];
		snprintf(suffix, sizeof(suffix), "/%s/%s", o->version ? o->version : "", op);
		p = path_of("keys", &(struct opts){.name = o->name}, suffix);
		rc = run(k, "POST", p, b);
	}
	free(p);
	return rc;
}

/* ---- audit ------------------------------------------------------------------------------- */

static int print_record(void *ctx, const json_t *rec)
{
	(void)ctx;
	char *s = json_dumps(rec, JSON_COMPACT);
	if (s)
		puts(s);
	free(s);
	return 0;
}

static int audit(const struct opts *o)
{
	char url[4200];
	struct bc_store *st = NULL;
	struct bc_error err = {0};
	const char *store = o->store ? o->store : getenv("BADGE_STORE");
	const char *dir = o->data_dir ? o->data_dir : getenv("BADGE_DATA_DIR");
	int rc = need(o, "--vault-name", o->vault);
	if (rc)
		return rc;
	if (!store && dir) {
		snprintf(url, sizeof(url), "sqlite:%s/badge.db", dir);
		store = url;
	}
	if (!store)
		return cli_fail("audit reads the server's store: give --store URL or --data-dir DIR");
	if (bc_store_open(&st, store, &err) != BC_OK)
		return cli_fail("%s", err.msg);
	rc = vault_audit_read(st, o->vault, o->since ? strtoll(o->since, NULL, 10) : 0,
			      o->limit ? atoi(o->limit) : 1000, print_record, NULL, &err);
	bc_store_free(st);
	return rc == BC_OK ? 0 : cli_fail("%s", err.msg);
}

int cli_keyvault_data_main(int argc, char **argv)
{
	/* argv: "keyvault" FAMILY [VERB] options... */
	if (argc < 2)
		return usage(stderr);
	const char *family = argv[1];
	if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))
		return usage(stdout);
	struct opts o = {0};
	if (!strcmp(family, "audit"))
		return parse_opts(argc - 2, argv + 2, &o) ? 2 : audit(&o);
	if (argc < 3)
		return usage(stderr);
	const char *verb = argv[2];
	struct kv *k = calloc(1, sizeof(*k));
	struct bc_error err = {0};
	int sargc = argc - 3;
	char **sargv = argv + 3;
	int rc;
	if (!k)
		return cli_fail("out of memory");
	if (cli_session_init(&k->s, &sargc, sargv, &err) != BC_OK) {
		rc = cli_fail("%s", err.msg);
		goto done;
	}
	if (parse_opts(sargc, sargv, &o)) {
		rc = 2;
		goto done;
	}
	if ((rc = need(&o, "--vault-name", o.vault)))
		goto done;
	if (!k->s.server[0]) {
		rc = cli_fail("no server: give --server URL, BADGE_URL, --data-dir, or run badge login");
		goto done;
	}
	k->o = &o;
	if ((rc = open_vault(k)))
		goto done;
	rc = !strcmp(family, "secret") ? secret_verb(k, verb) : key_verb(k, verb);
done:
	badge_keyvault_free(k->kv);
	badge_credential_free(k->cred);
	cli_session_release(&k->s);
	free(k);
	return rc;
}
