/*
 * The HTTP/1.1 response head, as much of it as a WebSocket client needs: the
 * status line, the header fields (RFC 9112 sections 4 and 5) and the pieces
 * of their values the upgrade checks (comma-separated token lists,
 * Content-Length, and the Date header's IMF-fixdate), and the RFC 3339
 * timestamps of the JSON bodies AWS answers with. Parsing is zero-copy:
 * the result holds views into the caller's bytes, valid while those are. The
 * grammar is applied strictly, because the peer is a known server and
 * anything odd is more likely an attack or a broken proxy than a quirk worth
 * tolerating: CRLF line ends only, no white space before a header's colon, no
 * obs-fold continuation lines (the views could not carry the unfolded value).
 */
#ifndef IOTB_HTTP_H
#define IOTB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define HTTP_MAX_HEAD		8192	/* status line, fields, empty line */
#define HTTP_MAX_HEADERS	32

enum http_status {
	HTTP_OK = 0,
	HTTP_NEED_MORE,		/* the head has not ended yet */
	HTTP_MALFORMED,		/* not an HTTP/1.x response head */
	HTTP_TOO_BIG,		/* head over HTTP_MAX_HEAD or HTTP_MAX_HEADERS */
};

struct http_header {
	struct buf_view	name;	/* a token, case as sent */
	struct buf_view	value;	/* without leading and trailing white space */
};

struct http_response {
	int			minor;		/* HTTP/1.<minor> */
	int			status;		/* 100..999 */
	struct buf_view		reason;
	struct http_header	headers[HTTP_MAX_HEADERS];
	size_t			nheaders;
	size_t			head_len;	/* bytes up to the empty line's end */
};

/*
 * Parse the response head at the start of in[0..len). On HTTP_OK, r holds
 * views into in and r->head_len says where the body (or, after a 101, the
 * new protocol) starts. HTTP_NEED_MORE: the empty line that ends the head
 * has not arrived, and what did arrive is no proof of a malformed head yet.
 * HTTP_MALFORMED: the bytes cannot be an HTTP/1.x response head. HTTP_TOO_BIG:
 * no end within HTTP_MAX_HEAD bytes, or more than HTTP_MAX_HEADERS fields.
 * r is only meaningful on HTTP_OK.
 */
enum http_status http_response_parse(const void *in, size_t len,
		    struct http_response *r);

/*
 * The first field named name (ASCII case-insensitive), or NULL. *count (may
 * be NULL) receives how many fields carry that name.
 */
const struct http_header *http_header_find(const struct http_response *r,
		    const char *name, size_t *count);

/*
 * Whether the comma-separated list v (e.g. Connection: keep-alive, Upgrade)
 * holds token, compared ASCII case-insensitively.
 */
bool		http_list_has(struct buf_view v, const char *token);

/* Whether v is exactly s (case-sensitive) / ASCII case-insensitively. */
bool		http_view_eq(struct buf_view v, const char *s);
bool		http_view_caseeq(struct buf_view v, const char *s);

/*
 * A Content-Length value: one or more digits, at most 2^63 - 1. HTTP_OK or
 * HTTP_MALFORMED (a list, a sign, white space inside, overflow).
 */
enum http_status http_content_length(struct buf_view v, uint64_t *n);

/*
 * An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7) as
 * seconds since the epoch. The day name must be one of the seven but is not
 * checked against the date; a leap second counts as the next second. The
 * obsolete RFC 850 and asctime forms are not accepted. HTTP_OK or
 * HTTP_MALFORMED.
 */
enum http_status http_date_parse(struct buf_view v, int64_t *epoch);

/*
 * An RFC 3339 date-time ("2026-12-08T12:34:56Z", the timestamps of AWS's
 * JSON APIs, the credentials provider's "expiration" among them) as seconds
 * since the epoch: full-date "T" full-time, with 'T' and 'Z' in either case,
 * an optional fraction of a second (dropped: the result is never later than
 * the time given), and the offset "Z" or +hh:mm / -hh:mm (applied). A leap
 * second counts as the next second. Nothing may come before or after.
 * HTTP_OK or HTTP_MALFORMED.
 */
enum http_status http_rfc3339_parse(struct buf_view v, int64_t *epoch);

/* Static English text for a status. */
const char	*http_strerror(enum http_status st);

#endif
