/*
 * Logging for iotbridged and iotbridgectl, in OpenBSD's API (log_warn appends
 * strerror(errno), log_warnx does not; fatal/fatalx exit). Everything goes to
 * stderr: with "<N>" syslog priority prefixes when stderr is the journal
 * (JOURNAL_STREAM), with a timestamp otherwise.
 */
#ifndef IOTB_LOG_H
#define IOTB_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Severities, numerically equal to syslog's so the journal prefix is the level. */
enum log_level {
	LOG_L_ERR = 3,
	LOG_L_WARNING = 4,
	LOG_L_NOTICE = 5,
	LOG_L_INFO = 6,
	LOG_L_DEBUG = 7,
};

/* Decide the output format from the environment and set the initial level. */
void	log_init(const char *progname, enum log_level level);
void	log_setlevel(enum log_level level);
enum log_level log_getlevel(void);
/* Parse "error", "warning", "notice", "info", "debug"; -1 when unknown. */
int	log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_msg(enum log_level, const char *, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * Render untrusted bytes (topics, client ids, peer error bodies) printable for a
 * log line: controls, backslash, quotes and non-ASCII become \xNN escapes, and a
 * long input is cut with "...". Always NUL-terminates dst (cap > 0). Returns dst.
 */
char	*log_escape(char *dst, size_t cap, const void *src, size_t len);

#endif
