/*
 * One line per call, written with a single write(2) so lines from a crashing
 * process are never interleaved or half-formatted. The journal adds its own
 * timestamps and reads "<N>" as the priority; a terminal or file gets the time.
 */
#include "daemon/util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "iotbridged";
static enum log_level log_level = LOG_L_INFO;
static int log_journal;

static const char *const log_names[] = {
	[LOG_L_ERR] = "error",
	[LOG_L_WARNING] = "warning",
	[LOG_L_NOTICE] = "notice",
	[LOG_L_INFO] = "info",
	[LOG_L_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEV:INODE" of the journal's socket; it is only ours if
 * stderr is still that socket (a shell redirect keeps the variable). */
static int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_level = level;
	log_journal = log_stderr_is_journal();
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

enum log_level
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *name)
{
	for (int i = LOG_L_ERR; i <= LOG_L_DEBUG; i++)
		if (strcmp(name, log_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	if (level < LOG_L_ERR || level > LOG_L_DEBUG)
		return "?";
	return log_names[level];
}

static void log_vwrite(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_vwrite(enum log_level level, const char *errstr, const char *fmt,
    va_list ap)
{
	char line[2048];
	size_t n = 0, cap = sizeof(line) - 1;	/* room for the newline */
	int r;

	if (level > log_level)
		return;
	if (log_journal) {
		r = snprintf(line, cap, "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		r = snprintf(line, cap,
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s: ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_prog,
		    (long)getpid(), log_names[level]);
	}
	n = r > 0 ? (size_t)r : 0;
	r = vsnprintf(line + n, cap - n, fmt, ap);
	n = r < 0 ? n : n + (size_t)r;
	if (n < cap && errstr != NULL) {
		r = snprintf(line + n, cap - n, ": %s", errstr);
		n = r < 0 ? n : n + (size_t)r;
	}
	if (n >= cap) {		/* truncated: say so rather than cut silently */
		n = cap;
		memcpy(line + n - 3, "...", 3);
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_BODY(level, errstr) do {			\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vwrite((level), (errstr), fmt, ap);		\
	va_end(ap);					\
} while (0)

void
log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(LOG_L_WARNING, e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_L_WARNING, NULL);
}

void
log_notice(const char *fmt, ...)
{
	LOG_BODY(LOG_L_NOTICE, NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_L_INFO, NULL);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_L_DEBUG, NULL);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	LOG_BODY(level, NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(LOG_L_ERR, e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_L_ERR, NULL);
	exit(1);
}

char *
log_escape(char *dst, size_t cap, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	if (cap < 8) {		/* too small for even "\xNN..." */
		if (cap > 0)
			dst[0] = '\0';
		return dst;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		int plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';

		if (o + (plain ? 1 : 4) + 4 > cap) {	/* keep room for "...\0" */
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
