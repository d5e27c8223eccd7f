/* Logging to stderr. Each event is formatted into one stack buffer and written with a single
 * fwrite, so lines from concurrent threads never interleave. Control characters in messages are
 * escaped: a peer-supplied value cannot forge a log line. */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/util.h"

#define LOG_LINE_MAX 4096

static atomic_int log_level = BC_LOG_INFO;
static atomic_bool log_json = false;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void bc_log_set_level(int level)
{
	if (level < BC_LOG_DEBUG)
		level = BC_LOG_DEBUG;
	if (level > BC_LOG_OFF)
		level = BC_LOG_OFF;
	atomic_store(&log_level, level);
}

int bc_log_level(void)
{
	return atomic_load(&log_level);
}

int bc_log_parse_level(const char *s)
{
	if (!s)
		return -1;
	for (int i = BC_LOG_DEBUG; i <= BC_LOG_OFF; i++)
		if (bc_streq_ci(s, level_names[i]))
			return i;
	if (bc_streq_ci(s, "warning"))
		return BC_LOG_WARN;
	return -1;
}

/* Buffered mode: stderr fully buffered, flushed every BC_LOG_FLUSH_MS by a thread of its own and
 * at once for warnings and errors. One write(2) per request line was a measurable share of a
 * cached request's cost; a crash may lose the last flush interval of info lines. */
#define BC_LOG_FLUSH_MS 100
static atomic_bool log_buffered = false;

static void *flusher(void *arg)
{
	(void)arg;
	struct timespec ts = {0, BC_LOG_FLUSH_MS * 1000000L};
	for (;;) {
		nanosleep(&ts, NULL);
		fflush(stderr);
	}
	return NULL;
}

void bc_log_set_buffered(void)
{
	static char buf[64 * 1024];
	if (atomic_exchange(&log_buffered, true))
		return;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* before any output on stderr (setvbuf's rule): called at server start */
	setvbuf(stderr, buf, _IOFBF, sizeof(buf));
	if (pthread_create(&t, &attr, flusher, NULL) != 0) {
		setvbuf(stderr, NULL, _IONBF, 0);
		atomic_store(&log_buffered, false);
	}
	pthread_attr_destroy(&attr);
}

void bc_log_set_json(bool json)
{
	atomic_store(&log_json, json);
}

/* A fixed-size line under construction. Pieces are appended whole or not at all, and LINE_RESERVE
 * bytes are held back for the closing quote/brace and the truncation marker, so that even a
 * truncated JSON line stays well-formed. Once truncated, later pieces are dropped. */
#define LINE_RESERVE 64

struct line {
	char buf[LOG_LINE_MAX];
	int level;
	size_t len;
	bool truncated;
	bool json;
};

static void line_putn(struct line *l, const char *s, size_t n)
{
	if (l->truncated || l->len + n + LINE_RESERVE > sizeof(l->buf)) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
	line_putn(l, s, strlen(s));
}

/* Writes into the reserve: only closings and the marker, whose total stays below LINE_RESERVE. */
static void line_force(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (l->len + n + 1 <= sizeof(l->buf)) {
		memcpy(l->buf + l->len, s, n);
		l->len += n;
	}
}

/* Escapes s for a JSON string or for a text line; either way no raw control byte and no newline
 * reaches the output. */
static void line_put_escaped(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)s; *p && !l->truncated; p++) {
		unsigned char c = *p;
		char e[8];
		size_t n = 0;
		if (c == '\n') {
			e[n++] = '\\', e[n++] = 'n';
		} else if (c == '\r') {
			e[n++] = '\\', e[n++] = 'r';
		} else if (c == '\t') {
			e[n++] = '\\', e[n++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			e[n++] = '\\';
			if (l->json)
				e[n++] = 'u', e[n++] = '0', e[n++] = '0';
			else
				e[n++] = 'x';
			e[n++] = hex[c >> 4];
			e[n++] = hex[c & 15];
		} else if (l->json && (c == '"' || c == '\\')) {
			e[n++] = '\\', e[n++] = (char)c;
		} else {
			e[n++] = (char)c;
		}
		line_putn(l, e, n);
	}
}

/* ,"key":"escaped value" — the closing quote is guaranteed once the opening was written. */
static void line_json_field(struct line *l, const char *key, const char *value)
{
	if (l->truncated)
		return;
	line_puts(l, ",\"");
	line_puts(l, key);
	line_puts(l, "\":\"");
	if (l->truncated)
		return; /* nothing opened that needs closing: the opening fits or the reserve took it */
	line_put_escaped(l, value);
	line_force(l, "\"");
}

static void line_time(struct line *l)
{
	time_t t = (time_t)bc_now();
	struct tm tm;
	char ts[32];
	if (!gmtime_r(&t, &tm) || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(ts, sizeof(ts), "%lld", (long long)t);
	line_puts(l, ts);
}

static void line_begin(struct line *l, int level, const char *reqid)
{
	l->level = level;
	l->len = 0;
	l->truncated = false;
	l->json = atomic_load(&log_json);
	if (l->json) {
		line_puts(l, "{\"time\":\"");
		line_time(l);
		line_puts(l, "\",\"level\":\"");
		line_puts(l, level_names[level]);
		line_puts(l, "\"");
		if (reqid)
			line_json_field(l, "reqid", reqid);
	} else {
		line_time(l);
		line_puts(l, " ");
		line_puts(l, level_tags[level]);
		line_puts(l, " [");
		line_put_escaped(l, reqid ? reqid : "-");
		line_puts(l, "] ");
	}
}

static void line_emit(struct line *l)
{
	if (l->truncated)
		line_force(l, l->json ? ",\"truncated\":true" : " [truncated]");
	if (l->json)
		line_force(l, "}");
	l->buf[l->len++] = '\n';
	fwrite(l->buf, 1, l->len, stderr);
	if (l->level >= BC_LOG_WARN && atomic_load(&log_buffered))
		fflush(stderr);
}

static bool level_enabled(int level)
{
	return level >= BC_LOG_DEBUG && level < BC_LOG_OFF && level >= atomic_load(&log_level);
}

void bc_log(int level, const char *reqid, const char *fmt, ...)
{
	if (!level_enabled(level))
		return;
	char msg[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct line l;
	line_begin(&l, level, reqid);
	if (l.json)
		line_json_field(&l, "msg", msg);
	else
		line_put_escaped(&l, msg);
	line_emit(&l);
}

void bc_log_access(const char *reqid, const char *method, const char *route, int status, double duration_ms,
		   const char *caller)
{
	if (!level_enabled(BC_LOG_INFO))
		return;
	char num[64];
	struct line l;
	if (!(duration_ms >= 0 && duration_ms < 1e12)) /* NaN or absurd: keep the JSON valid */
		duration_ms = 0;
	line_begin(&l, BC_LOG_INFO, reqid);
	if (l.json) {
		line_puts(&l, ",\"type\":\"access\"");
		line_json_field(&l, "method", method ? method : "-");
		line_json_field(&l, "route", route ? route : "-");
		snprintf(num, sizeof(num), ",\"status\":%d,\"duration_ms\":%.3f", status, duration_ms);
		line_puts(&l, num);
		if (caller)
			line_json_field(&l, "caller", caller);
	} else {
		line_puts(&l, "access ");
		line_put_escaped(&l, method ? method : "-");
		line_puts(&l, " ");
		line_put_escaped(&l, route ? route : "-");
		snprintf(num, sizeof(num), " %d %.3fms caller=", status, duration_ms);
		line_puts(&l, num);
		line_put_escaped(&l, caller ? caller : "-");
	}
	line_emit(&l);
}
