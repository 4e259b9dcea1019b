/*
 * HTTP/1.1 response head parsing (see http.h). The head is located first, by
 * its terminating empty line within HTTP_MAX_HEAD bytes, and only then parsed
 * line by line; so a prefix of a valid head is always "need more", and the
 * line parser never has to stop in the middle of a field. The one check made
 * before the end arrives is the "HTTP/1." prefix, so that a peer speaking
 * something else is refused at once instead of after 8 KiB.
 */
#include "ws/http.h"

#include <string.h>

static const char version_prefix[] = "HTTP/1.";

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* tchar of RFC 9110 5.6.2. */
static bool
is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP or HTAB: what a field value or reason phrase may hold. */
static bool
is_text(uint8_t c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool
is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static const uint8_t *
find_crlf(const uint8_t *p, const uint8_t *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" in [p, end). */
static enum http_status
parse_status_line(const uint8_t *p, const uint8_t *end, struct http_response *r)
{
	size_t n = (size_t)(end - p);

	if (n < 12 || memcmp(p, version_prefix, 7) != 0 || !is_digit(p[7]) ||
	    p[8] != ' ' || !is_digit(p[9]) || !is_digit(p[10]) ||
	    !is_digit(p[11]) || p[9] == '0')
		return HTTP_MALFORMED;
	r->minor = p[7] - '0';
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->reason.ptr = p + 12;
	r->reason.len = 0;
	if (n == 12)
		return HTTP_OK;		/* no reason and no SP: tolerated */
	if (p[12] != ' ')
		return HTTP_MALFORMED;
	r->reason.ptr = p + 13;
	r->reason.len = n - 13;
	for (size_t i = 13; i < n; i++)
		if (!is_text(p[i]))
			return HTTP_MALFORMED;
	return HTTP_OK;
}

/* "name: OWS value OWS" in [p, end). */
static enum http_status
parse_field(const uint8_t *p, const uint8_t *end, struct http_header *h)
{
	const uint8_t *name = p, *v, *vend;

	while (p < end && is_tchar(*p))
		p++;
	if (p == name || p == end || *p != ':')
		return HTTP_MALFORMED;	/* also obs-fold and "name :" */
	h->name.ptr = name;
	h->name.len = (size_t)(p - name);
	for (v = p + 1; v < end && is_ows(*v); v++)
		;
	for (vend = end; vend > v && is_ows(vend[-1]); vend--)
		;
	for (const uint8_t *c = v; c < vend; c++)
		if (!is_text(*c))
			return HTTP_MALFORMED;
	h->value.ptr = v;
	h->value.len = (size_t)(vend - v);
	return HTTP_OK;
}

enum http_status
http_response_parse(const void *in, size_t len, struct http_response *r)
{
	const uint8_t *base = in, *p, *end, *eol;
	size_t scan = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	size_t pre = len < 7 ? len : 7;
	enum http_status st;

	memset(r, 0, sizeof(*r));
	if (len > 0 && memcmp(base, version_prefix, pre) != 0)
		return HTTP_MALFORMED;

	/* The head ends at the first empty line. */
	end = NULL;
	for (size_t i = 0; i + 3 < scan; i++) {
		if (memcmp(base + i, "\r\n\r\n", 4) == 0) {
			end = base + i + 2;	/* just past the last field's CRLF */
			break;
		}
	}
	if (end == NULL)
		return len >= HTTP_MAX_HEAD ? HTTP_TOO_BIG : HTTP_NEED_MORE;
	r->head_len = (size_t)(end - base) + 2;

	eol = find_crlf(base, end);
	if ((st = parse_status_line(base, eol, r)) != HTTP_OK)
		return st;
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = find_crlf(p, end);
		if (r->nheaders == HTTP_MAX_HEADERS)
			return HTTP_TOO_BIG;
		if ((st = parse_field(p, eol, &r->headers[r->nheaders])) !=
		    HTTP_OK)
			return st;
		r->nheaders++;
	}
	return HTTP_OK;
}

bool
http_view_eq(struct buf_view v, const char *s)
{
	return strlen(s) == v.len && (v.len == 0 || memcmp(v.ptr, s, v.len) == 0);
}

bool
http_view_caseeq(struct buf_view v, const char *s)
{
	if (strlen(s) != v.len)
		return false;
	for (size_t i = 0; i < v.len; i++)
		if (lower(v.ptr[i]) != lower((unsigned char)s[i]))
			return false;
	return true;
}

const struct http_header *
http_header_find(const struct http_response *r, const char *name,
    size_t *count)
{
	const struct http_header *first = NULL;
	size_t n = 0;

	for (size_t i = 0; i < r->nheaders; i++) {
		if (http_view_caseeq(r->headers[i].name, name)) {
			if (first == NULL)
				first = &r->headers[i];
			n++;
		}
	}
	if (count != NULL)
		*count = n;
	return first;
}

bool
http_list_has(struct buf_view v, const char *token)
{
	size_t i = 0;

	while (i < v.len) {
		struct buf_view item;
		size_t start, stop;

		while (i < v.len && (is_ows(v.ptr[i]) || v.ptr[i] == ','))
			i++;
		start = i;
		while (i < v.len && v.ptr[i] != ',')
			i++;
		for (stop = i; stop > start && is_ows(v.ptr[stop - 1]); stop--)
			;
		item.ptr = v.ptr + start;
		item.len = stop - start;
		if (item.len > 0 && http_view_caseeq(item, token))
			return true;
	}
	return false;
}

enum http_status
http_content_length(struct buf_view v, uint64_t *n)
{
	uint64_t x = 0;

	if (v.len == 0)
		return HTTP_MALFORMED;
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(v.ptr[i]) ||
		    x > (UINT64_C(0x7fffffffffffffff) - (v.ptr[i] - '0')) / 10)
			return HTTP_MALFORMED;
		x = x * 10 + (uint64_t)(v.ptr[i] - '0');
	}
	*n = x;
	return HTTP_OK;
}

/* Days from 1970-01-01 to y-m-d, Gregorian, eras of 400 years from March. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
digits(const uint8_t *p, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static int
name_index(const uint8_t *p, const char *names)
{
	for (int i = 0; names[3 * i] != '\0'; i++)
		if (memcmp(p, names + 3 * i, 3) == 0)
			return i;
	return -1;
}

enum http_status
http_date_parse(struct buf_view v, int64_t *epoch)
{
	static const char days[] = "MonTueWedThuFriSatSun";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const uint8_t mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	const uint8_t *p = v.ptr;
	int d, mon, y, hh, mm, ss;

	/* Sun, 06 Nov 1994 08:49:37 GMT */
	if (v.len != 29 || name_index(p, days) < 0 || memcmp(p + 3, ", ", 2) ||
	    p[7] != ' ' || p[11] != ' ' || p[16] != ' ' || p[19] != ':' ||
	    p[22] != ':' || memcmp(p + 25, " GMT", 4) != 0)
		return HTTP_MALFORMED;
	d = digits(p + 5, 2);
	mon = name_index(p + 8, months);
	y = digits(p + 12, 4);
	hh = digits(p + 17, 2);
	mm = digits(p + 20, 2);
	ss = digits(p + 23, 2);
	if (d < 1 || mon < 0 || y < 0 || hh < 0 || hh > 23 || mm < 0 ||
	    mm > 59 || ss < 0 || ss > 60 || d > mdays[mon])
		return HTTP_MALFORMED;
	if (mon == 1 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
		return HTTP_MALFORMED;
	*epoch = days_from_civil(y, mon + 1, d) * 86400 + hh * 3600 + mm * 60 +
	    ss;
	return HTTP_OK;
}

/* "hh:mm" of an offset: minutes, or -1. */
static int
rfc3339_offset(const uint8_t *p)
{
	int hh = digits(p, 2), mm = digits(p + 3, 2);

	if (hh < 0 || mm < 0 || p[2] != ':' || hh > 23 || mm > 59)
		return -1;
	return hh * 60 + mm;
}

enum http_status
http_rfc3339_parse(struct buf_view v, int64_t *epoch)
{
	static const uint8_t mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	const uint8_t *p = v.ptr;
	size_t i = 19;
	int y, mon, d, hh, mm, ss, off = 0;

	/* 2026-12-08T12:34:56 */
	if (v.len < 20 || p[4] != '-' || p[7] != '-' || lower(p[10]) != 't' ||
	    p[13] != ':' || p[16] != ':')
		return HTTP_MALFORMED;
	y = digits(p, 4);
	mon = digits(p + 5, 2);
	d = digits(p + 8, 2);
	hh = digits(p + 11, 2);
	mm = digits(p + 14, 2);
	ss = digits(p + 17, 2);
	if (y < 0 || mon < 1 || mon > 12 || d < 1 || d > mdays[mon - 1] ||
	    hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
		return HTTP_MALFORMED;
	if (mon == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
		return HTTP_MALFORMED;
	if (p[i] == '.') {
		size_t start = ++i;

		while (i < v.len && is_digit(p[i]))
			i++;
		if (i == start)
			return HTTP_MALFORMED;
	}
	if (i + 1 == v.len && lower(p[i]) == 'z') {
		off = 0;
	} else if (i + 6 == v.len && (p[i] == '+' || p[i] == '-')) {
		if ((off = rfc3339_offset(p + i + 1)) < 0)
			return HTTP_MALFORMED;
		if (p[i] == '-')
			off = -off;
	} else {
		return HTTP_MALFORMED;
	}
	/* 12:00+02:00 is 10:00 UTC. */
	*epoch = days_from_civil(y, mon, d) * 86400 + hh * 3600 + mm * 60 +
	    ss - (int64_t)off * 60;
	return HTTP_OK;
}

const char *
http_strerror(enum http_status st)
{
	switch (st) {
	case HTTP_OK:
		return "success";
	case HTTP_NEED_MORE:
		return "incomplete HTTP response head";
	case HTTP_MALFORMED:
		return "malformed HTTP response head";
	case HTTP_TOO_BIG:
		return "HTTP response head too large";
	}
	return "unknown http status";
}
