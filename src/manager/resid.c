/* ARM resource ids, Azure's naming rules, api-version syntax, scope containment. Pure. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "manager/mgr_int.h"

bool mgr_lower(const char *s, char *out, size_t n)
{
	size_t i = 0;
	if (!s || n == 0)
		return false;
	for (; s[i]; i++) {
		if (i + 1 >= n)
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[i] = '\0';
	return true;
}

/* Copies segment [p, p+len) into out (size n), rejecting empty and too long segments. */
static bool seg_copy(const char *p, size_t len, char *out, size_t n)
{
	if (len == 0 || len >= n)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

int mgr_rid_parse(const char *id, struct mgr_rid *out, struct bc_error *err)
{
	struct mgr_rid r;
	const char *seg[12];
	size_t len[12], nseg = 0;
	const char *p;

	memset(&r, 0, sizeof(r));
	if (!id || id[0] != '/' || strlen(id) > BC_LIMIT_RESOURCE_ID)
		return bc_error_set(err, BC_ERR_INVALID, "malformed resource id '%.200s'", id ? id : "");
	p = id + 1;
	while (*p) {
		const char *q = strchr(p, '/');
		size_t l = q ? (size_t)(q - p) : strlen(p);
		if (nseg == 12)
			goto bad;
		if (l == 0) {
			if (!q || q[1] != '\0')
				goto bad; /* "//" inside */
			break;            /* one trailing slash */
		}
		seg[nseg] = p;
		len[nseg++] = l;
		p = q ? q + 1 : p + l;
	}
#define SEG_IS(i, lit) (len[i] == strlen(lit) && !strncasecmp(seg[i], lit, len[i]))
	if (nseg < 2 || !SEG_IS(0, "subscriptions") || !seg_copy(seg[1], len[1], r.sub, sizeof(r.sub)))
		goto bad;
	size_t i = 2;
	if (nseg >= 4 && SEG_IS(2, "resourceGroups")) {
		if (!seg_copy(seg[3], len[3], r.rg, sizeof(r.rg)))
			goto bad;
		i = 4;
	}
	if (i < nseg) {
		if (nseg - i != 4 || !SEG_IS(i, "providers"))
			goto bad;
		if (!seg_copy(seg[i + 1], len[i + 1], r.ns, sizeof(r.ns)) ||
		    !seg_copy(seg[i + 2], len[i + 2], r.type, sizeof(r.type)) ||
		    !seg_copy(seg[i + 3], len[i + 3], r.name, sizeof(r.name)))
			goto bad;
	}
#undef SEG_IS
	*out = r;
	return BC_OK;
bad:
	return bc_error_set(err, BC_ERR_INVALID, "malformed resource id '%.200s'", id);
}

static bool all_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

int mgr_name_group(const char *s, struct bc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 90 || !all_chars(s, "-_.()") || s[n - 1] == '.')
		return bc_error_set(err, BC_ERR_INVALID,
				    "resource group name '%.100s' is invalid: 1-90 letters, digits, '-', '_', '.', "
				    "'(' or ')', not ending in '.'", s ? s : "");
	return BC_OK;
}

int mgr_name_uai(const char *s, struct bc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 3 || n > 128 || !all_chars(s, "-_") || !isalnum((unsigned char)s[0]))
		return bc_error_set(err, BC_ERR_INVALID,
				    "identity name '%.140s' is invalid: 3-128 letters, digits, '-' or '_', "
				    "starting with a letter or digit", s ? s : "");
	return BC_OK;
}

int mgr_name_vm(const char *s, struct bc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64 || !all_chars(s, "-_.") || s[0] == '_' || s[n - 1] == '.' || s[n - 1] == '-')
		return bc_error_set(err, BC_ERR_INVALID,
				    "virtual machine name '%.100s' is invalid: 1-64 letters, digits, '-', '_' or '.', "
				    "not starting with '_', not ending in '.' or '-'", s ? s : "");
	return BC_OK;
}

int mgr_name_vault(const char *s, struct bc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	bool ok = n >= 3 && n <= 24 && all_chars(s, "-") && isalpha((unsigned char)s[0]) &&
		  isalnum((unsigned char)s[n - 1]) && !strstr(s, "--");
	if (!ok)
		return bc_error_set(err, BC_ERR_INVALID,
				    "vault name '%.100s' is invalid: 3-24 letters, digits or '-', starting with a "
				    "letter, ending with a letter or digit, no '--'", s ? s : "");
	return BC_OK;
}

int mgr_name_host(const char *s, struct bc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 63 || !all_chars(s, "-") || s[0] == '-' || s[n - 1] == '-')
		return bc_error_set(err, BC_ERR_INVALID,
				    "host name '%.100s' is invalid: 1-63 letters, digits or '-', not starting or "
				    "ending with '-'", s ? s : "");
	return BC_OK;
}

bool mgr_api_version_ok(const char *v)
{
	int y, mo, d, n = 0;
	if (!v || strlen(v) < 10 || sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? v[i] != '-' : !isdigit((unsigned char)v[i]))
			return false;
	if (y < 2014 || y > 2099 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	const char *rest = v + 10;
	return !*rest || !strcasecmp(rest, "-preview") || !strcasecmp(rest, "-privatepreview") ||
	       !strcasecmp(rest, "-beta");
}

bool mgr_api_version_known(const char *v, int64_t now)
{
	int y, mo, d;
	if (!mgr_api_version_ok(v) || sscanf(v, "%4d-%2d-%2d", &y, &mo, &d) != 3)
		return false;
	time_t t = (time_t)(now + 24 * 3600); /* a version dated tomorrow somewhere on Earth is fine */
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return true;
	long ver = (long)y * 10000 + mo * 100 + d;
	long today = (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	return ver <= today;
}

bool mgr_scope_covers(const char *outer, const char *inner)
{
	size_t n = strlen(outer);
	while (n > 0 && outer[n - 1] == '/')
		n--;
	if (n == 0)
		return true; /* "/" covers everything */
	if (strncasecmp(outer, inner, n) != 0)
		return false;
	return inner[n] == '\0' || inner[n] == '/';
}

void mgr_iso8601(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int mgr_res_id(char *out, size_t n, const char *sub, const char *rg, const char *provider_type, const char *name)
{
	int w;
	if (rg)
		w = snprintf(out, n, "/subscriptions/%s/resourceGroups/%s/providers/%s/%s", sub, rg, provider_type,
			     name);
	else
		w = snprintf(out, n, "/subscriptions/%s/providers/%s/%s", sub, provider_type, name);
	return w < 0 || (size_t)w >= n ? BC_ERR_LIMIT : BC_OK;
}
