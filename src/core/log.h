/* Logging to stderr: one line per event, "time level [reqid] message". Never pass a secret,
 * token or private key in a message. */
#ifndef BC_LOG_H
#define BC_LOG_H

#include <stdbool.h>
#include "core/error.h"

enum bc_log_level { BC_LOG_DEBUG = 0, BC_LOG_INFO, BC_LOG_WARN, BC_LOG_ERROR, BC_LOG_OFF };

void bc_log_set_level(int level);
int bc_log_level(void);
/* "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int bc_log_parse_level(const char *s);
void bc_log_set_json(bool json); /* one JSON object per line instead of text */
/* Buffers stderr, flushed every 100 ms by a thread and at once for warnings and errors (servers:
 * one write per access line is a measurable share of a cached request). Call before any output. */
void bc_log_set_buffered(void);

void bc_log(int level, const char *reqid, const char *fmt, ...) BC_PRINTF(3, 4);
#define bc_log_debug(...) bc_log(BC_LOG_DEBUG, NULL, __VA_ARGS__)
#define bc_log_info(...) bc_log(BC_LOG_INFO, NULL, __VA_ARGS__)
#define bc_log_warn(...) bc_log(BC_LOG_WARN, NULL, __VA_ARGS__)
#define bc_log_error(...) bc_log(BC_LOG_ERROR, NULL, __VA_ARGS__)
/* Structured access log line for one request. */
void bc_log_access(const char *reqid, const char *method, const char *route, int status,
		   double duration_ms, const char *caller);

#endif
