/* The OData $filter of ARM's generic resource list (Resources_List), the subset Azure documents:
 *   resourceType | name | location | resourceGroup | identity/principalId  eq | ne  'literal'
 *   substringof('literal', name | resourceGroup)
 *   tagName eq 'k'   tagValue eq 'v'   startswith(tagName, 'prefix')
 * joined with `and` / `or` (and binds tighter) and parentheses. Keywords and property names are
 * case-insensitive; literals are single-quoted with '' for a quote. Tag predicates joined by `and`
 * must all hold for one and the same tag (Azure's "tagName eq 'k' and tagValue eq 'v'").
 * Comparisons are case-insensitive (ARM names, types, groups and locations are), except tag
 * values. Pure: no allocation; bounded by MGR_FILTER_BYTES, MGR_FILTER_NODES, MGR_FILTER_DEPTH. */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include "manager/mgr_int.h"

struct lexer {
	const char *p;
	struct mgr_filter *f;
	struct bc_error *err;
	int depth;
};

static const struct {
	const char *name;
	enum mgr_fprop prop;
} props[] = {
	{"resourceType", MGR_FP_TYPE},
	{"name", MGR_FP_NAME},
	{"location", MGR_FP_LOCATION},
	{"resourceGroup", MGR_FP_GROUP},
	{"identity/principalId", MGR_FP_PRINCIPAL},
	{"tagName", MGR_FP_TAGNAME},
	{"tagValue", MGR_FP_TAGVALUE},
};

static void skip_ws(struct lexer *l)
{
	while (*l->p == ' ' || *l->p == '\t')
		l->p++;
}

/* An identifier: letters, digits, '/' and '_' (property names and keywords). */
static size_t ident_len(const char *p)
{
	size_t n = 0;
	while (isalnum((unsigned char)p[n]) || p[n] == '/' || p[n] == '_')
		n++;
	return n;
}

static bool word_is(const char *p, size_t n, const char *w)
{
	return strlen(w) == n && !strncasecmp(p, w, n);
}

/* Consumes keyword w when it is the next identifier. */
static bool take_word(struct lexer *l, const char *w)
{
	skip_ws(l);
	size_t n = ident_len(l->p);
	if (!word_is(l->p, n, w))
		return false;
	l->p += n;
	return true;
}

static bool take_char(struct lexer *l, char c)
{
	skip_ws(l);
	if (*l->p != c)
		return false;
	l->p++;
	return true;
}

static int bad(struct lexer *l, const char *what)
{
	return bc_error_set(l->err, BC_ERR_INVALID, "%s at position %d", what, (int)(l->p - l->f->src));
}

/* A quoted literal, copied (unescaped, NUL-terminated) into f->text; *off its offset. */
static int literal(struct lexer *l, uint16_t *off)
{
	struct mgr_filter *f = l->f;
	skip_ws(l);
	if (*l->p != '\'')
		return bad(l, "a quoted string was expected");
	l->p++;
	size_t start = f->tlen;
	for (;;) {
		char c = *l->p;
		if (c == '\0')
			return bad(l, "unterminated string");
		if (c == '\'') {
			if (l->p[1] != '\'')
				break;
			l->p++; /* '' is one quote */
		}
		if (f->tlen + 1 >= sizeof(f->text))
			return bad(l, "the filter is too long");
		f->text[f->tlen++] = c;
		l->p++;
	}
	l->p++;
	f->text[f->tlen++] = '\0';
	*off = (uint16_t)start;
	return BC_OK;
}

static int property(struct lexer *l, enum mgr_fprop *out)
{
	skip_ws(l);
	size_t n = ident_len(l->p);
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (word_is(l->p, n, props[i].name)) {
			*out = props[i].prop;
			l->p += n;
			return BC_OK;
		}
	return bc_error_set(l->err, BC_ERR_INVALID, "the property '%.*s' cannot be filtered on (supported: "
			    "resourceType, name, location, resourceGroup, identity/principalId, tagName, tagValue)",
			    (int)(n > 64 ? 64 : n), l->p);
}

static int node(struct lexer *l, enum mgr_fop op, int *out)
{
	struct mgr_filter *f = l->f;
	if (f->nn == MGR_FILTER_NODES)
		return bad(l, "the filter has too many terms");
	memset(&f->n[f->nn], 0, sizeof(f->n[0]));
	f->n[f->nn].op = (uint8_t)op;
	f->n[f->nn].a = f->n[f->nn].b = -1;
	*out = f->nn++;
	return BC_OK;
}

static int or_expr(struct lexer *l, int *out);

static int primary(struct lexer *l, int *out)
{
	struct mgr_filter *f = l->f;
	enum mgr_fprop prop;
	uint16_t lit;
	int st, i = -1;
	skip_ws(l);
	if (take_char(l, '(')) {
		if (++l->depth > MGR_FILTER_DEPTH)
			return bad(l, "parentheses nest too deep");
		if ((st = or_expr(l, out)) != BC_OK)
			return st;
		l->depth--;
		return take_char(l, ')') ? BC_OK : bad(l, "')' was expected");
	}
	if (take_word(l, "substringof")) {
		if (!take_char(l, '('))
			return bad(l, "'(' was expected");
		if ((st = literal(l, &lit)) != BC_OK)
			return st;
		if (!take_char(l, ','))
			return bad(l, "',' was expected");
		if ((st = property(l, &prop)) != BC_OK)
			return st;
		if (prop != MGR_FP_NAME && prop != MGR_FP_GROUP)
			return bad(l, "substringof applies to name and resourceGroup only");
		if (!take_char(l, ')'))
			return bad(l, "')' was expected");
		if ((st = node(l, MGR_FO_SUBSTRINGOF, &i)) != BC_OK)
			return st;
		f->n[i].prop = (uint8_t)prop;
		f->n[i].lit = lit;
		*out = i;
		return BC_OK;
	}
	if (take_word(l, "startswith")) {
		if (!take_char(l, '('))
			return bad(l, "'(' was expected");
		if ((st = property(l, &prop)) != BC_OK)
			return st;
		if (prop != MGR_FP_TAGNAME)
			return bad(l, "startswith applies to tagName only");
		if (!take_char(l, ','))
			return bad(l, "',' was expected");
		if ((st = literal(l, &lit)) != BC_OK)
			return st;
		if (!take_char(l, ')'))
			return bad(l, "')' was expected");
		if ((st = node(l, MGR_FO_STARTSWITH, &i)) != BC_OK)
			return st;
		f->n[i].prop = (uint8_t)prop;
		f->n[i].lit = lit;
		f->tags = true;
		*out = i;
		return BC_OK;
	}
	if ((st = property(l, &prop)) != BC_OK)
		return st;
	enum mgr_fop op;
	if (take_word(l, "eq"))
		op = MGR_FO_EQ;
	else if (take_word(l, "ne"))
		op = MGR_FO_NE;
	else
		return bad(l, "'eq' or 'ne' was expected");
	if (op == MGR_FO_NE && (prop == MGR_FP_TAGNAME || prop == MGR_FP_TAGVALUE))
		return bad(l, "tags are filtered with 'eq' only");
	if ((st = literal(l, &lit)) != BC_OK)
		return st;
	if ((st = node(l, op, &i)) != BC_OK)
		return st;
	f->n[i].prop = (uint8_t)prop;
	f->n[i].lit = lit;
	if (prop == MGR_FP_TAGNAME || prop == MGR_FP_TAGVALUE)
		f->tags = true;
	*out = i;
	return BC_OK;
}

static int and_expr(struct lexer *l, int *out)
{
	int st = primary(l, out), rhs = -1, i = -1;
	while (st == BC_OK && take_word(l, "and")) {
		if ((st = primary(l, &rhs)) != BC_OK || (st = node(l, MGR_FO_AND, &i)) != BC_OK)
			break;
		l->f->n[i].a = (int16_t)*out;
		l->f->n[i].b = (int16_t)rhs;
		*out = i;
	}
	return st;
}

static int or_expr(struct lexer *l, int *out)
{
	int st = and_expr(l, out), rhs = -1, i = -1;
	while (st == BC_OK && take_word(l, "or")) {
		if ((st = and_expr(l, &rhs)) != BC_OK || (st = node(l, MGR_FO_OR, &i)) != BC_OK)
			break;
		l->f->n[i].a = (int16_t)*out;
		l->f->n[i].b = (int16_t)rhs;
		*out = i;
	}
	return st;
}

int mgr_filter_parse(const char *s, struct mgr_filter *f, struct bc_error *err)
{
	struct lexer l = {s, f, err, 0};
	int root = -1, st;
	memset(f, 0, sizeof(*f));
	f->root = -1;
	f->src = s;
	if (!s)
		return BC_OK;
	if (strlen(s) > MGR_FILTER_BYTES)
		return bc_error_set(err, BC_ERR_INVALID, "the filter is longer than %d characters", MGR_FILTER_BYTES);
	skip_ws(&l);
	if (*l.p == '\0')
		return BC_OK;
	st = or_expr(&l, &root);
	if (st == BC_OK) {
		skip_ws(&l);
		if (*l.p != '\0')
			st = bad(&l, "unexpected text");
	}
	f->src = NULL;
	if (st != BC_OK) {
		memset(f, 0, sizeof(*f));
		f->root = -1;
		return st;
	}
	f->root = root;
	return BC_OK;
}

/* ---- evaluation ---- */

static bool ci_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	if (!hay)
		return false;
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return n == 0;
}

static const char *subject_prop(const struct mgr_fsubject *s, enum mgr_fprop p)
{
	switch (p) {
	case MGR_FP_TYPE:
		return s->type;
	case MGR_FP_NAME:
		return s->name;
	case MGR_FP_LOCATION:
		return s->location;
	case MGR_FP_GROUP:
		return s->group;
	case MGR_FP_PRINCIPAL:
		return s->principal;
	default:
		return NULL;
	}
}

static bool is_tag_leaf(const struct mgr_fnode *n)
{
	return (n->op == MGR_FO_EQ || n->op == MGR_FO_STARTSWITH) &&
	       (n->prop == MGR_FP_TAGNAME || n->prop == MGR_FP_TAGVALUE);
}

static bool tag_leaf_holds(const struct mgr_filter *f, const struct mgr_fnode *n, const char *k, const char *v)
{
	const char *lit = f->text + n->lit;
	if (n->op == MGR_FO_STARTSWITH)
		return !strncasecmp(k, lit, strlen(lit));
	if (n->prop == MGR_FP_TAGNAME)
		return !strcasecmp(k, lit);
	return v && !strcmp(v, lit); /* tag values are case-sensitive */
}

/* Does one tag of s satisfy every tag leaf in leaves? */
static bool tags_hold(const struct mgr_filter *f, const int *leaves, int n, const struct mgr_fsubject *s)
{
	const char *k;
	json_t *v;
	if (n == 0)
		return true;
	json_object_foreach((json_t *)s->tags, k, v)
	{
		bool all = true;
		for (int i = 0; all && i < n; i++)
			all = tag_leaf_holds(f, &f->n[leaves[i]], k, json_string_value(v));
		if (all)
			return true;
	}
	return false;
}

static bool eval(const struct mgr_filter *f, int i, const struct mgr_fsubject *s);

/* The leaves of the conjunction rooted at i (through nested ANDs). */
static void conj_leaves(const struct mgr_filter *f, int i, int *out, int *n)
{
	if (f->n[i].op == MGR_FO_AND) {
		conj_leaves(f, f->n[i].a, out, n);
		conj_leaves(f, f->n[i].b, out, n);
	} else if (*n < MGR_FILTER_NODES) {
		out[(*n)++] = i;
	}
}

static bool eval_and(const struct mgr_filter *f, int i, const struct mgr_fsubject *s)
{
	int leaves[MGR_FILTER_NODES], tags[MGR_FILTER_NODES], n = 0, nt = 0;
	conj_leaves(f, i, leaves, &n);
	for (int k = 0; k < n; k++) {
		if (is_tag_leaf(&f->n[leaves[k]]))
			tags[nt++] = leaves[k];
		else if (!eval(f, leaves[k], s))
			return false;
	}
	return tags_hold(f, tags, nt, s);
}

static bool eval(const struct mgr_filter *f, int i, const struct mgr_fsubject *s)
{
	const struct mgr_fnode *n = &f->n[i];
	const char *lit = f->text + n->lit, *v;
	switch (n->op) {
	case MGR_FO_AND:
		return eval_and(f, i, s);
	case MGR_FO_OR:
		return eval(f, n->a, s) || eval(f, n->b, s);
	case MGR_FO_SUBSTRINGOF:
		return ci_contains(subject_prop(s, n->prop), lit);
	default:
		break;
	}
	if (is_tag_leaf(n))
		return tags_hold(f, &i, 1, s);
	v = subject_prop(s, n->prop);
	bool eq = v && !strcasecmp(v, lit);
	return n->op == MGR_FO_EQ ? eq : !eq;
}

bool mgr_filter_match(const struct mgr_filter *f, const struct mgr_fsubject *s)
{
	return f->root < 0 || eval(f, f->root, s);
}

const char *mgr_filter_required(const struct mgr_filter *f, enum mgr_fprop prop)
{
	int leaves[MGR_FILTER_NODES], n = 0;
	if (f->root < 0)
		return NULL;
	conj_leaves(f, f->root, leaves, &n);
	for (int k = 0; k < n; k++) {
		const struct mgr_fnode *x = &f->n[leaves[k]];
		if (x->op == MGR_FO_EQ && x->prop == prop)
			return f->text + x->lit;
	}
	return NULL;
}
