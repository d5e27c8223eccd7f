/* A growable byte buffer with a cap (curl's dynbuf). All-zero is the empty state, whose cap is
 * BC_BUF_DEFAULT_CAP. The data is always NUL-terminated when non-NULL. */
#ifndef BC_BUF_H
#define BC_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "core/error.h"

#define BC_BUF_DEFAULT_CAP (4 * 1024 * 1024)

struct bc_buf {
	char *data; /* owned */
	size_t len;
	size_t alloc;
	size_t cap; /* 0 = BC_BUF_DEFAULT_CAP */
};

void bc_buf_init(struct bc_buf *b, size_t cap);
/* Returns BC_OK, BC_ERR_LIMIT when the cap would be exceeded, BC_ERR_NOMEM. */
int bc_buf_append(struct bc_buf *b, const void *p, size_t n) BC_MUST_CHECK;
int bc_buf_appends(struct bc_buf *b, const char *s) BC_MUST_CHECK;
int bc_buf_appendc(struct bc_buf *b, char c) BC_MUST_CHECK;
int bc_buf_appendf(struct bc_buf *b, const char *fmt, ...) BC_PRINTF(2, 3) BC_MUST_CHECK;
int bc_buf_vappendf(struct bc_buf *b, const char *fmt, va_list ap) BC_PRINTF(2, 0) BC_MUST_CHECK;
void bc_buf_reset(struct bc_buf *b);   /* len = 0, keeps memory */
void bc_buf_release(struct bc_buf *b); /* frees, back to the init state (cap kept) */
void bc_buf_wipe(struct bc_buf *b);    /* like release, but zeroes the memory first (secrets) */
/* Hands the data over (caller frees; "" when empty); the buffer is back to the init state. */
char *bc_buf_detach(struct bc_buf *b, size_t *len);
const char *bc_buf_cstr(const struct bc_buf *b); /* "" when empty */

#endif
