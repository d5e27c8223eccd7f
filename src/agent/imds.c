/* The instance metadata endpoint's rules (see imds.h). The order of the checks is the order a
 * client meets them on Azure: method, forwarding headers, the Metadata header (the SDK probe
 * without it gets the fast 400 it expects), duplicates, api-version, resource, identity. */
#include "agent/imds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/util.h"

/* IMDS api-versions, oldest first. Identity tokens need 2018-02-01 or later. */
static const char *const versions[] = {
	"2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01", "2018-04-02",
	"2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
	"2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
	"2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01",
	"2021-11-15", "2021-12-13", "2022-02-01", "2022-03-01", "2022-07-01", "2022-08-01", "2022-09-01",
	"2023-07-01", "2023-11-15", "2024-03-15",
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))
#define IMDS_TOKEN_MIN_VERSION "2018-02-01"
#define APPSERVICE_VERSION "2019-08-01"

bool imds_version_known(const char *version, const char *min)
{
	if (!version)
		return false;
	for (size_t i = 0; i < NVERSIONS; i++)
		if (!strcmp(versions[i], version))
			return !min || strcmp(version, min) >= 0; /* ISO dates sort as strings */
	return false;
}

json_t *imds_versions_json(void)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < NVERSIONS; i++)
		json_array_append_new(a, json_string(versions[i]));
	return a;
}

static int reject(struct imds_reject *rej, int status, const char *error, const char *description)
{
	rej->status = status;
	rej->error = error;
	rej->description = description;
	rej->list_versions = false;
	return -1;
}

/* The header and method rules shared by every IMDS route. */
static int check_common(const struct imds_req_view *v, struct imds_reject *rej)
{
	if (!v->method || strcmp(v->method, "GET") != 0)
		return reject(rej, 405, "invalid_request", "Only GET is supported");
	if (v->forwarded)
		return reject(rej, 400, "invalid_request", "Forwarded requests are not accepted");
	if (!v->metadata || v->metadata_count != 1 || !bc_streq_ci(v->metadata, "true"))
		return reject(rej, 400, "invalid_request", "Required metadata header not specified");
	return 0;
}

static int check_duplicates(const struct imds_req_view *v, struct imds_reject *rej)
{
	for (size_t i = 0; i < v->nquery; i++)
		for (size_t j = i + 1; j < v->nquery; j++)
			if (!strcmp(v->query[i].key, v->query[j].key))
				return reject(rej, 400, "invalid_request", "Duplicate query parameter");
	return 0;
}

static const char *query_get(const struct imds_req_view *v, const char *key)
{
	for (size_t i = 0; i < v->nquery; i++)
		if (!strcmp(v->query[i].key, key))
			return v->query[i].value;
	return NULL;
}

static int check_version(const struct imds_req_view *v, const char *min, const char **out,
			 struct imds_reject *rej)
{
	const char *ver = query_get(v, "api-version");
	if (!ver || !*ver) {
		reject(rej, 400, "invalid_request", "Bad request. api-version was not specified in the request");
		rej->list_versions = true;
		return -1;
	}
	if (!imds_version_known(ver, min)) {
		reject(rej, 400, "invalid_request", "Bad request. api-version is invalid or was not specified in the request");
		rej->list_versions = true;
		return -1;
	}
	*out = ver;
	return 0;
}

/* The identity parameters each flavour takes, with the kind each names. */
struct id_param {
	const char *key;
	enum imds_id_kind kind;
};
static const struct id_param imds_params[] = {
	{"client_id", IMDS_ID_CLIENT},
	{"object_id", IMDS_ID_OBJECT},
	{"msi_res_id", IMDS_ID_RESOURCE},
	{"mi_res_id", IMDS_ID_RESOURCE},
};
static const struct id_param appservice_params[] = {
	{"client_id", IMDS_ID_CLIENT},
	{"object_id", IMDS_ID_OBJECT},
	{"principal_id", IMDS_ID_OBJECT},
	{"mi_res_id", IMDS_ID_RESOURCE},
};

static int pick_identity_param(const struct imds_req_view *v, const struct id_param *params, size_t n,
			       struct imds_token_query *q, struct imds_reject *rej)
{
	size_t found = 0;
	q->kind = IMDS_ID_DEFAULT;
	q->id = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *val = query_get(v, params[i].key);
		if (!val)
			continue;
		if (!*val)
			return reject(rej, 400, "invalid_request", "Empty identity parameter");
		found++;
		q->kind = params[i].kind;
		q->id = val;
	}
	if (found > 1)
		return reject(rej, 400, "invalid_request",
			      "Only one of client_id, object_id or msi_res_id may be specified");
	return 0;
}

static int check_secret(const struct imds_req_view *v, struct imds_reject *rej)
{
	if (!v->identity_header || v->identity_header_count != 1)
		return reject(rej, 400, "invalid_request", "Required X-IDENTITY-HEADER not specified");
	if (!v->expected_secret || !*v->expected_secret ||
	    !bc_ct_equal(v->identity_header, strlen(v->identity_header), v->expected_secret,
			 strlen(v->expected_secret)))
		return reject(rej, 401, "unauthorized", "X-IDENTITY-HEADER does not match");
	return 0;
}

int imds_check_token(enum imds_flavour fl, const struct imds_req_view *v, struct imds_token_query *q,
		     struct imds_reject *rej)
{
	memset(q, 0, sizeof(*q));
	if (fl == IMDS_FLAVOUR_APPSERVICE) {
		if (!v->method || strcmp(v->method, "GET") != 0)
			return reject(rej, 405, "invalid_request", "Only GET is supported");
		if (v->forwarded)
			return reject(rej, 400, "invalid_request", "Forwarded requests are not accepted");
		if (check_secret(v, rej))
			return -1;
	} else if (check_common(v, rej)) {
		return -1;
	}
	if (check_duplicates(v, rej))
		return -1;
	if (fl == IMDS_FLAVOUR_APPSERVICE) {
		const char *ver = query_get(v, "api-version");
		if (!ver || strcmp(ver, APPSERVICE_VERSION) != 0)
			return reject(rej, 400, "invalid_request", "api-version must be " APPSERVICE_VERSION);
		q->api_version = ver;
	} else if (check_version(v, IMDS_TOKEN_MIN_VERSION, &q->api_version, rej)) {
		return -1;
	}
	q->resource = query_get(v, "resource");
	if (!q->resource || !*q->resource)
		return reject(rej, 400, "invalid_request", "Required audience parameter not specified");
	if (strlen(q->resource) > BC_LIMIT_RESOURCE)
		return reject(rej, 400, "invalid_resource", "The resource is too long");
	if (fl == IMDS_FLAVOUR_APPSERVICE)
		return pick_identity_param(v, appservice_params, sizeof(appservice_params) / sizeof(appservice_params[0]),
					   q, rej);
	return pick_identity_param(v, imds_params, sizeof(imds_params) / sizeof(imds_params[0]), q, rej);
}

int imds_check_metadata(const struct imds_req_view *v, bool need_version, struct imds_reject *rej)
{
	const char *ver;
	if (check_common(v, rej) || check_duplicates(v, rej))
		return -1;
	if (need_version && check_version(v, NULL, &ver, rej))
		return -1;
	return 0;
}

int imds_select_identity(const struct agent_identity *ids, size_t n, const struct imds_token_query *q,
			 struct imds_reject *rej)
{
	int found = -1;
	size_t nuser = 0;
	for (size_t i = 0; i < n; i++) {
		const struct agent_identity *id = &ids[i];
		switch (q->kind) {
		case IMDS_ID_DEFAULT:
			if (id->system_assigned)
				return (int)i;
			nuser++;
			found = (int)i;
			break;
		case IMDS_ID_CLIENT:
			if (bc_streq_ci(id->client_id, q->id))
				return (int)i;
			break;
		case IMDS_ID_OBJECT:
			if (bc_streq_ci(id->object_id, q->id))
				return (int)i;
			break;
		case IMDS_ID_RESOURCE:
			/* ARM ids compare case-insensitively; a system-assigned identity is named by its
			 * instance's id, which is what the sync puts in resource_id */
			if (bc_streq_ci(id->resource_id, q->id))
				return (int)i;
			break;
		}
	}
	if (q->kind == IMDS_ID_DEFAULT && nuser == 1)
		return found;
	if (q->kind == IMDS_ID_DEFAULT && nuser > 1)
		return reject(rej, 400, "invalid_request",
			      "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request");
	if (q->kind == IMDS_ID_DEFAULT)
		return reject(rej, 400, "invalid_request", "Identity not found");
	return reject(rej, 400, "invalid_request", "Identity not found");
}

void imds_token_release(struct imds_token *t)
{
	if (t->access_token) {
		bc_wipe(t->access_token, strlen(t->access_token));
		free(t->access_token);
	}
	memset(t, 0, sizeof(*t));
}

int imds_token_copy(struct imds_token *dst, const struct imds_token *src)
{
	char *s = strdup(src->access_token ? src->access_token : "");
	if (!s)
		return BC_ERR_NOMEM;
	*dst = *src;
	dst->access_token = s;
	return BC_OK;
}

int imds_token_body(const struct imds_token *t, const char *client_id, const char *resource, int64_t now,
		    struct bc_buf *out)
{
	int64_t expires_in = t->expires_on - now;
	if (expires_in < 0)
		expires_in = 0;
	int64_t ext = t->ext_expires_in > 0 ? t->ext_expires_in : expires_in;
	const char *tok = t->access_token ? t->access_token : "";
	size_t before = out->len;
	/* Written directly, in IMDS's key order: this is the hot path of a cached token, and the
	 * access token (over a kilobyte) would otherwise be validated and escaped twice. */
	int rc = bc_buf_append(out, "{\"access_token\":", 16);
	if (rc == BC_OK)
		rc = bc_json_put_str(out, tok, strlen(tok));
	if (rc == BC_OK)
		rc = bc_buf_append(out, ",\"client_id\":", 13);
	if (rc == BC_OK)
		rc = bc_json_put_str(out, client_id, strlen(client_id));
	if (rc == BC_OK)
		rc = bc_buf_appendf(out, ",\"expires_in\":\"%lld\",\"expires_on\":\"%lld\",\"ext_expires_in\":\"%lld\","
				    "\"not_before\":\"%lld\",\"resource\":",
				    (long long)expires_in, (long long)t->expires_on, (long long)ext, (long long)t->not_before);
	if (rc == BC_OK)
		rc = bc_json_put_str(out, resource, strlen(resource));
	if (rc == BC_OK)
		rc = bc_buf_appends(out, ",\"token_type\":\"Bearer\"}");
	if (rc != BC_OK) {
		out->len = before;
		if (out->data)
			out->data[before] = '\0';
	}
	return rc;
}

json_t *imds_error_body(const struct imds_reject *rej)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "error", json_string(rej->error));
	json_object_set_new(o, "error_description", json_string(rej->description));
	if (rej->list_versions)
		json_object_set_new(o, "newest-versions", imds_versions_json());
	return o;
}

void imds_reply_reject(struct bc_http_res *res, const struct imds_reject *rej)
{
	bc_http_res_json(res, rej->status, imds_error_body(rej));
	if (rej->status == 405)
		(void)bc_http_res_header(res, "Allow", "GET");
}

void imds_limiter_init(struct imds_limiter *l, unsigned rate, unsigned concurrency)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->rate = rate;
	l->concurrency = concurrency;
}

void imds_limiter_release(struct imds_limiter *l)
{
	pthread_mutex_destroy(&l->mu);
}

int imds_limiter_enter(struct imds_limiter *l)
{
	int64_t now = bc_now();
	int retry = 0;
	pthread_mutex_lock(&l->mu);
	if (now != l->window) {
		l->window = now;
		l->count = 0;
	}
	if (l->rate && l->count >= l->rate)
		retry = 1; /* the window ends within the second */
	else if (l->concurrency && l->inflight >= l->concurrency)
		retry = 1;
	else {
		l->count++;
		l->inflight++;
	}
	pthread_mutex_unlock(&l->mu);
	return retry;
}

void imds_limiter_leave(struct imds_limiter *l)
{
	pthread_mutex_lock(&l->mu);
	if (l->inflight)
		l->inflight--;
	pthread_mutex_unlock(&l->mu);
}
