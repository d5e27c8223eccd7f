/* A growable byte buffer with a cap, after curl's dynbuf: len never exceeds the cap, the data is
 * NUL-terminated whenever it is non-NULL, and growth is overflow-checked. */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"

#define BUF_MIN_ALLOC 64

static size_t buf_cap(const struct bc_buf *b)
{
	return b->cap ? b->cap : BC_BUF_DEFAULT_CAP;
}

void bc_buf_init(struct bc_buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

/* Makes room for n more bytes plus the NUL. */
static int buf_reserve(struct bc_buf *b, size_t n)
{
	size_t cap = buf_cap(b);
	if (n > cap || b->len > cap - n)
		return BC_ERR_LIMIT;
	size_t need = b->len + n + 1; /* cannot overflow: len + n <= cap < SIZE_MAX */
	if (need <= b->alloc)
		return BC_OK;
	size_t a = b->alloc ? b->alloc : BUF_MIN_ALLOC;
	while (a < need) {
		if (a > SIZE_MAX / 2) {
			a = need;
			break;
		}
		a *= 2;
	}
	if (a > cap + 1)
		a = cap + 1;
	char *p = realloc(b->data, a);
	if (!p)
		return BC_ERR_NOMEM;
	b->data = p;
	b->alloc = a;
	return BC_OK;
}

int bc_buf_append(struct bc_buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return BC_OK;
}

int bc_buf_appends(struct bc_buf *b, const char *s)
{
	return bc_buf_append(b, s, strlen(s));
}

int bc_buf_appendc(struct bc_buf *b, char c)
{
	return bc_buf_append(b, &c, 1);
}

int bc_buf_vappendf(struct bc_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return BC_ERR_INVALID;
	int rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return BC_OK;
}

int bc_buf_appendf(struct bc_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = bc_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void bc_buf_reset(struct bc_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void bc_buf_release(struct bc_buf *b)
{
	free(b->data);
	bc_buf_init(b, b->cap);
}

void bc_buf_wipe(struct bc_buf *b)
{
	if (b->data)
		bc_wipe(b->data, b->alloc);
	bc_buf_release(b);
}

char *bc_buf_detach(struct bc_buf *b, size_t *len)
{
	char *p = b->data;
	if (len)
		*len = b->len;
	if (!p)
		p = calloc(1, 1);
	bc_buf_init(b, b->cap);
	return p;
}

const char *bc_buf_cstr(const struct bc_buf *b)
{
	return b->data ? b->data : "";
}
