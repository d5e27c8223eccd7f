/* Status codes and the caller-owned error struct. Nothing here allocates: an error can be
 * reported even when memory is exhausted. */
#include "core/error.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

int bc_error_vset(struct bc_error *err, int st, const char *fmt, va_list ap)
{
	if (!err)
		return st;
	err->status = st;
	if (!fmt) {
		snprintf(err->msg, sizeof(err->msg), "%s", bc_status_name(st));
		return st;
	}
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return st;
}

int bc_error_set(struct bc_error *err, int st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bc_error_vset(err, st, fmt, ap);
	va_end(ap);
	return st;
}

/* Appends OpenSSL's queued errors, most recent last, "; "-separated, as far as they fit. */
static void append_openssl_queue(char *msg, size_t size)
{
	size_t len = strlen(msg);
	const char *sep = ": ";
	unsigned long e;
	while ((e = ERR_get_error()) != 0) {
		char text[160];
		ERR_error_string_n(e, text, sizeof(text));
		if (len + 1 < size) {
			int w = snprintf(msg + len, size - len, "%s%s", sep, text);
			if (w > 0)
				len = (size_t)w >= size - len ? size - 1 : len + (size_t)w;
		}
		sep = "; ";
	}
}

int bc_error_openssl(struct bc_error *err, int st, const char *what)
{
	if (!err) {
		ERR_clear_error();
		return st;
	}
	err->status = st;
	snprintf(err->msg, sizeof(err->msg), "%s", what ? what : "openssl failure");
	append_openssl_queue(err->msg, sizeof(err->msg));
	ERR_clear_error();
	return st;
}

int bc_error_wrap(struct bc_error *err, const char *fmt, ...)
{
	if (!err)
		return BC_ERR_INTERNAL;
	char old[BC_ERROR_MSG_MAX];
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (old[0]) {
		/* Truncation keeps the prefix and as much of the old message as fits. */
		size_t len = strlen(err->msg);
		const char *parts[2] = {": ", old};
		for (int i = 0; i < 2; i++) {
			size_t n = strlen(parts[i]);
			if (n > sizeof(err->msg) - 1 - len)
				n = sizeof(err->msg) - 1 - len;
			memcpy(err->msg + len, parts[i], n);
			len += n;
		}
		err->msg[len] = '\0';
	}
	return err->status;
}

void bc_error_clear(struct bc_error *err)
{
	if (!err)
		return;
	err->status = BC_OK;
	err->msg[0] = '\0';
}

const char *bc_status_name(int st)
{
	switch (st) {
	case BC_OK:
		return "ok";
	case BC_ERR_INVALID:
		return "invalid";
	case BC_ERR_NOT_FOUND:
		return "not found";
	case BC_ERR_EXISTS:
		return "exists";
	case BC_ERR_CONFLICT:
		return "conflict";
	case BC_ERR_UNAUTHENTICATED:
		return "unauthenticated";
	case BC_ERR_FORBIDDEN:
		return "forbidden";
	case BC_ERR_LIMIT:
		return "limit exceeded";
	case BC_ERR_NOMEM:
		return "out of memory";
	case BC_ERR_IO:
		return "i/o error";
	case BC_ERR_CRYPTO:
		return "crypto failure";
	case BC_ERR_STORE:
		return "store failure";
	case BC_ERR_UNAVAILABLE:
		return "unavailable";
	case BC_ERR_INTERNAL:
		return "internal error";
	case BC_ERR_RATE:
		return "rate limited";
	default:
		return "unknown status";
	}
}
