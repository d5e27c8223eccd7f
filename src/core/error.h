/* Status codes and the caller-owned error struct every fallible function fills.
 * 0 is success. A function that fails writes no outputs; it fills *err (when non-NULL) with
 * the status and a lower-case message, failure first, no final period. */
#ifndef BC_ERROR_H
#define BC_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define BC_MUST_CHECK __attribute__((warn_unused_result))
#define BC_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef enum bc_status {
	BC_OK = 0,
	BC_ERR_INVALID,         /* malformed or unacceptable input */
	BC_ERR_NOT_FOUND,       /* the named thing does not exist */
	BC_ERR_EXISTS,          /* it exists already */
	BC_ERR_CONFLICT,        /* concurrent change or state that forbids the operation */
	BC_ERR_UNAUTHENTICATED, /* no or bad credential */
	BC_ERR_FORBIDDEN,       /* authenticated, not allowed */
	BC_ERR_LIMIT,           /* input beyond a limit of limits.h */
	BC_ERR_NOMEM,
	BC_ERR_IO,              /* file system, socket */
	BC_ERR_CRYPTO,          /* OpenSSL/cjose failure, bad signature */
	BC_ERR_STORE,           /* database failure */
	BC_ERR_UNAVAILABLE,     /* a dependency is down; retrying may help */
	BC_ERR_INTERNAL,        /* a bug */
	BC_ERR_RATE,            /* rate limited */
} bc_status;

#define BC_ERROR_MSG_MAX 256

struct bc_error {
	int status;
	char msg[BC_ERROR_MSG_MAX];
};

/* Fills err (if non-NULL) and returns st, so that `return bc_error_set(err, ...)` reads well. */
int bc_error_set(struct bc_error *err, int st, const char *fmt, ...) BC_PRINTF(3, 4);
int bc_error_vset(struct bc_error *err, int st, const char *fmt, va_list ap) BC_PRINTF(3, 0);
/* Like bc_error_set, then appends OpenSSL's error queue text (and clears the queue). */
int bc_error_openssl(struct bc_error *err, int st, const char *what);
/* Prefixes an existing message: "what: <old message>". Returns err->status. */
int bc_error_wrap(struct bc_error *err, const char *fmt, ...) BC_PRINTF(2, 3);
void bc_error_clear(struct bc_error *err);
const char *bc_status_name(int st);

#endif
