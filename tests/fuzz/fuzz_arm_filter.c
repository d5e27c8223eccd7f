/* Fuzzes the $filter parser of ARM's generic resource list (manager/filter.c). Invariants: a
 * parse either fails with a message and leaves no filter, or yields a tree whose operands are
 * earlier nodes and whose literals lie inside the text buffer; evaluating it against a subject
 * with and without tags terminates; what is required of every match is one of its literals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "manager/mgr_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mgr_filter f;
	struct bc_error err = {0};
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (mgr_filter_parse(s, &f, &err) != BC_OK) {
		if (!err.msg[0] || f.root != -1)
			abort();
		free(s);
		return 0;
	}
	for (int i = 0; i < f.nn; i++) {
		const struct mgr_fnode *n = &f.n[i];
		if (n->op == MGR_FO_AND || n->op == MGR_FO_OR) {
			if (n->a < 0 || n->a >= i || n->b < 0 || n->b >= i)
				abort();
		} else if (n->lit >= f.tlen || f.text[f.tlen - 1] != '\0') {
			abort();
		}
	}
	if (f.root >= f.nn || (f.root < 0 && f.nn > 0))
		abort();
	json_t *tags = json_pack("{s:s,s:i}", "env", "prod", "n", 1);
	struct mgr_fsubject a = {"Microsoft.Compute/virtualMachines", "vm1", "local", "rg", "p", tags};
	struct mgr_fsubject b = {"Badge.Compute/hosts", "h1", NULL, NULL, NULL, NULL};
	(void)mgr_filter_match(&f, &a);
	(void)mgr_filter_match(&f, &b);
	const char *t = mgr_filter_required(&f, MGR_FP_TYPE);
	if (t && (t < f.text || t >= f.text + f.tlen))
		abort();
	json_decref(tags);
	free(s);
	return 0;
}
