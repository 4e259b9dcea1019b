/*
 * The head of an HTTP/1.x request, as much of it as the daemon's small local
 * endpoints (the metrics scrape) need: the request line of RFC 9112 section
 * 3, split into method, target and version, and a syntax check of the header
 * fields (section 5) up to the empty line that ends the head. Nothing is
 * allocated: the result holds views into the caller's bytes, valid while
 * those are.
 *
 * The grammar is applied strictly, since nothing but a scraper should be
 * talking to these endpoints: CRLF line ends only, no empty lines before the
 * request line, single SP between its three parts, a target of visible ASCII
 * without a fragment, "HTTP/1." and one digit, header names that are tokens
 * directly followed by the colon, no obs-fold continuation lines, no control
 * characters but HTAB in field values. The verdict is prefix-stable: bytes
 * that are a prefix of a valid head give HTTPREQ_NEED_MORE, and once a head
 * is found malformed or too big, no further bytes change that.
 */
#ifndef IOTB_HTTPREQ_H
#define IOTB_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define HTTPREQ_MAX_HEADERS	64	/* header fields in one head */

enum httpreq_status {
	HTTPREQ_OK = 0,
	HTTPREQ_NEED_MORE,	/* the head has not ended yet */
	HTTPREQ_MALFORMED,	/* not an HTTP/1.x request head */
	HTTPREQ_TOO_BIG,	/* no end within max bytes, or too many fields */
};

struct httpreq {
	struct buf_view	method;		/* a token, case as sent */
	struct buf_view	target;		/* the request-target as sent */
	struct buf_view	path;		/* origin-form: target up to '?'; else empty */
	struct buf_view	query;		/* origin-form: after '?'; else empty */
	int		minor;		/* HTTP/1.<minor>, 0..9 */
	size_t		nheaders;	/* header fields seen (not kept) */
	size_t		head_len;	/* bytes up to the empty line's end */
};

/*
 * Parse the request head at the start of in[0..len), looking at no more than
 * max bytes. in is borrowed; on HTTPREQ_OK r holds views into it and
 * r->head_len (at most max) says where a body would start. Returns:
 *   HTTPREQ_OK         a complete, well-formed head
 *   HTTPREQ_NEED_MORE  the empty line ending the head has not arrived, and
 *                      the lines that did are well-formed so far (len < max)
 *   HTTPREQ_MALFORMED  the bytes present cannot start an HTTP/1.x request
 *                      head (a bad line, a stray CR or LF, a control byte)
 *   HTTPREQ_TOO_BIG    no end of head within max bytes, or more than
 *                      HTTPREQ_MAX_HEADERS fields
 * r is only meaningful on HTTPREQ_OK.
 */
enum httpreq_status httpreq_parse(const void *in, size_t len, size_t max,
		    struct httpreq *r);

/* Whether the method is exactly m (methods are case-sensitive). */
bool		httpreq_method_is(const struct httpreq *r, const char *m);

/* Static English text for a status. */
const char	*httpreq_strerror(enum httpreq_status st);

#endif
