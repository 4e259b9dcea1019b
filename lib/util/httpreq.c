/*
 * HTTP/1.x request head parsing (see httpreq.h). One pass over at most max
 * bytes: every byte is checked as it is met (a stray LF, a NUL or another
 * control byte can appear in no line, so it condemns the head at once), and
 * every line is checked as soon as its CRLF has arrived. Nothing is decided
 * about a line that is still incomplete, which is what makes the verdict
 * prefix-stable.
 */
#include "util/httpreq.h"

#include <string.h>

static const char version_prefix[] = "HTTP/1.";

/* tchar of RFC 9110 section 5.6.2. */
static bool
tchar(uint8_t c)
{
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
		return true;
	if (c >= '0' && c <= '9')
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte no line of a head may hold: controls but HTAB (CR is handled by
 * the caller), and DEL. obs-text (0x80..0xff) is left to the line checks. */
static bool
never_in_line(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static size_t
span_tchar(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && tchar(p[i]))
		i++;
	return i;
}

/* The target's path and query; only origin-form ("/...") has them. */
static void
split_target(struct httpreq *r)
{
	const uint8_t *q;

	if (r->target.ptr[0] != '/')
		return;
	r->path = r->target;
	if ((q = memchr(r->target.ptr, '?', r->target.len)) != NULL) {
		r->path.len = (size_t)(q - r->target.ptr);
		r->query.ptr = q + 1;
		r->query.len = r->target.len - r->path.len - 1;
	}
}

/* "method SP request-target SP HTTP/1.DIGIT" in p[0..n). */
static enum httpreq_status
parse_request_line(const uint8_t *p, size_t n, struct httpreq *r)
{
	size_t m, t;

	if ((m = span_tchar(p, n)) == 0 || m == n || p[m] != ' ')
		return HTTPREQ_MALFORMED;
	r->method.ptr = p;
	r->method.len = m;
	/* visible ASCII; a fragment is never sent (RFC 9112 3.2) */
	for (t = m + 1; t < n && p[t] > ' ' && p[t] < 0x7f && p[t] != '#'; t++)
		;
	if (t == m + 1 || t == n || p[t] != ' ')
		return HTTPREQ_MALFORMED;
	r->target.ptr = p + m + 1;
	r->target.len = t - m - 1;
	if (n - t - 1 != sizeof(version_prefix) ||
	    memcmp(p + t + 1, version_prefix, sizeof(version_prefix) - 1) != 0 ||
	    p[n - 1] < '0' || p[n - 1] > '9')
		return HTTPREQ_MALFORMED;
	r->minor = p[n - 1] - '0';
	split_target(r);
	return HTTPREQ_OK;
}

/* "field-name ':' OWS field-value OWS" in p[0..n); the value may hold SP,
 * HTAB, visible ASCII and obs-text, which is all never_in_line() left. */
static enum httpreq_status
check_field(const uint8_t *p, size_t n)
{
	size_t name = span_tchar(p, n);

	/* also refuses obs-fold (a line starting with SP or HTAB) and
	 * white space before the colon */
	if (name == 0 || name == n || p[name] != ':')
		return HTTPREQ_MALFORMED;
	return HTTPREQ_OK;
}

enum httpreq_status
httpreq_parse(const void *in, size_t len, size_t max, struct httpreq *r)
{
	const uint8_t *p = in;
	size_t scan = len < max ? len : max;
	size_t start = 0;		/* of the current line */
	enum httpreq_status st;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < scan; i++) {
		if (p[i] != '\r') {
			if (never_in_line(p[i]))
				return HTTPREQ_MALFORMED;
			continue;
		}
		if (i + 1 == scan)
			break;		/* its LF may be next */
		if (p[i + 1] != '\n')
			return HTTPREQ_MALFORMED;
		if (start == 0)
			st = parse_request_line(p, i, r);
		else if (i == start) {
			r->head_len = i + 2;
			return HTTPREQ_OK;
		} else if (r->nheaders == HTTPREQ_MAX_HEADERS)
			st = HTTPREQ_TOO_BIG;
		else if ((st = check_field(p + start, i - start)) == HTTPREQ_OK)
			r->nheaders++;
		if (st != HTTPREQ_OK)
			return st;
		start = ++i + 1;
	}
	return len >= max ? HTTPREQ_TOO_BIG : HTTPREQ_NEED_MORE;
}

bool
httpreq_method_is(const struct httpreq *r, const char *m)
{
	return buf_view_eq(r->method, buf_cstr(m));
}

const char *
httpreq_strerror(enum httpreq_status st)
{
	switch (st) {
	case HTTPREQ_OK:
		return "ok";
	case HTTPREQ_NEED_MORE:
		return "incomplete request head";
	case HTTPREQ_MALFORMED:
		return "malformed request head";
	case HTTPREQ_TOO_BIG:
		return "request head too big";
	}
	return "unknown httpreq status";
}
