/*
 * Unit tests for the upgrade response: http.c's head parser and
 * ws_upgrade_response() on top of it. A valid 101 and each way one can fail
 * RFC 6455 4.1, a 403 with its Date and body (what the uplink logs and uses
 * to correct its clock), odd and malformed heads, the limits, and every
 * prefix of a valid answer being "need more".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws/http.h"
#include "ws/ws.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* RFC 6455 section 1.3's key and accept value. */
#define GOOD_ACCEPT	"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char ok101[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Date: Sun, 30 Aug 2015 12:36:00 GMT\r\n"
    "Connection: upgrade\r\n"
    "Upgrade: websocket\r\n"
    "sec-websocket-accept: " GOOD_ACCEPT "\r\n"
    "sec-websocket-protocol: mqtt\r\n"
    "\r\n";

static const char body403[] =
    "{\"message\":\"Signature expired: 20150830T123600Z is now earlier "
    "than 20150830T124600Z (20150830T125100Z - 5 min.)\"}";

static struct ws_upgrade
upgrade(void)
{
	struct ws_upgrade u;

	memset(&u, 0, sizeof(u));
	u.host = "example.com";
	u.target = "/mqtt";
	u.protocol = "mqtt";
	memcpy(u.nonce, "the sample nonce", WS_NONCE_LEN);
	return u;
}

static enum ws_status
check(const char *resp, struct ws_handshake *hs)
{
	struct ws_upgrade u = upgrade();

	return ws_upgrade_response(resp, strlen(resp), &u, hs);
}

static void
test_valid_101(void **state)
{
	struct ws_upgrade u = upgrade();
	struct ws_handshake hs;
	char buf[512];
	size_t n = strlen(ok101);

	(void)state;
	/* The first frame may already follow the head in the same read. */
	memcpy(buf, ok101, n);
	memcpy(buf + n, "\x82\x02\x20\x02", 4);
	assert_int_equal(ws_upgrade_response(buf, n + 4, &u, &hs), WS_OK);
	assert_int_equal(hs.status, 101);
	assert_true(http_view_eq(hs.reason, "Switching Protocols"));
	assert_int_equal(hs.consumed, n);
	assert_true(hs.has_date);
	assert_int_equal(hs.date, 1440938160);
	assert_int_equal(hs.body.len, 0);
}

static void
test_every_prefix_needs_more(void **state)
{
	char resp[1024];
	struct ws_upgrade u = upgrade();
	struct ws_handshake hs;
	size_t n;

	(void)state;
	for (size_t i = 0; i < strlen(ok101); i++)
		assert_int_equal(ws_upgrade_response(ok101, i, &u, &hs),
		    WS_NEED_MORE);

	/* A refusal is complete only with its body. */
	n = (size_t)snprintf(resp, sizeof(resp),
	    "HTTP/1.1 403 Forbidden\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body403), body403);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ws_upgrade_response(resp, i, &u, &hs),
		    WS_NEED_MORE);
		assert_int_equal(hs.consumed, 0);
	}
	assert_int_equal(ws_upgrade_response(resp, n, &u, &hs),
	    WS_HTTP_REFUSED);
	assert_int_equal(hs.consumed, n);
}

static void
test_refused_403(void **state)
{
	char resp[1024];
	struct ws_handshake hs;

	(void)state;
	snprintf(resp, sizeof(resp),
	    "HTTP/1.1 403 Forbidden\r\n"
	    "content-type: application/json\r\n"
	    "content-length: %zu\r\n"
	    "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
	    "x-amzn-RequestId: 3f6e1bd5-0000-0000-0000-000000000000\r\n"
	    "connection: keep-alive\r\n"
	    "\r\n%s", strlen(body403), body403);
	assert_int_equal(check(resp, &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.status, 403);
	assert_true(http_view_eq(hs.reason, "Forbidden"));
	assert_true(hs.has_date);
	assert_int_equal(hs.date, 784111777);
	assert_int_equal(hs.body.len, strlen(body403));
	assert_memory_equal(hs.body.ptr, body403, strlen(body403));
	assert_false(hs.body_truncated);
	assert_int_equal(hs.consumed, strlen(resp));

	/* No Content-Length: no body view, the head is all there is. */
	assert_int_equal(check("HTTP/1.1 500 Oops\r\nDate: nonsense\r\n\r\nx",
	    &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.status, 500);
	assert_false(hs.has_date);
	assert_int_equal(hs.body.len, 0);

	/* Chunked or contradictory: no body view either. */
	assert_int_equal(check("HTTP/1.1 403 F\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\nab", &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.body.len, 0);
	assert_int_equal(check("HTTP/1.1 403 F\r\nContent-Length: -1\r\n\r\n",
	    &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.body.len, 0);

	/* A 200 is a refusal too: anything but 101. */
	assert_int_equal(check("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	    &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.status, 200);
}

static void
test_refused_big_body(void **state)
{
	size_t blen = WS_MAX_ERROR_BODY + 100, n;
	struct ws_upgrade u = upgrade();
	struct ws_handshake hs;
	char *resp;

	(void)state;
	resp = malloc(128 + blen);
	assert_non_null(resp);
	n = (size_t)snprintf(resp, 128,
	    "HTTP/1.1 403 Forbidden\r\nContent-Length: %zu\r\n\r\n", blen);
	memset(resp + n, 'b', blen);
	assert_int_equal(ws_upgrade_response(resp, n + WS_MAX_ERROR_BODY - 1,
	    &u, &hs), WS_NEED_MORE);
	assert_int_equal(ws_upgrade_response(resp, n + WS_MAX_ERROR_BODY, &u,
	    &hs), WS_HTTP_REFUSED);
	assert_int_equal(hs.body.len, WS_MAX_ERROR_BODY);
	assert_true(hs.body_truncated);
	assert_int_equal(hs.consumed, n + WS_MAX_ERROR_BODY);
	free(resp);
}

struct case_101 {
	const char	*resp;
	enum ws_status	 want;
	const char	*why;
};

#define HEAD	"HTTP/1.1 101 Switching Protocols\r\n"
#define UPG	"Upgrade: websocket\r\n"
#define CONN	"Connection: Upgrade\r\n"
#define ACC	"Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n"
#define PROTO	"Sec-WebSocket-Protocol: mqtt\r\n"

static const struct case_101 cases_101[] = {
	{ HEAD UPG CONN ACC PROTO "\r\n", WS_OK, "minimal" },
	{ HEAD "upgrade: WebSocket\r\nCONNECTION: keep-alive, Upgrade\r\n"
	    ACC PROTO "\r\n", WS_OK, "case and token lists" },
	{ HEAD "Upgrade:websocket   \r\nConnection:\tupgrade\r\n" ACC PROTO
	    "\r\n", WS_OK, "no or odd white space around values" },
	{ HEAD UPG CONN ACC PROTO "Sec-WebSocket-Extensions: \r\n\r\n", WS_OK,
	    "empty extensions" },
	{ "HTTP/1.1 101\r\n" UPG CONN ACC PROTO "\r\n", WS_OK,
	    "no reason phrase" },
	{ "HTTP/1.1 101 \r\n" UPG CONN ACC PROTO "\r\n", WS_OK,
	    "empty reason phrase" },
	{ HEAD CONN ACC PROTO "\r\n", WS_HS_UPGRADE, "no Upgrade" },
	{ HEAD "Upgrade: h2c\r\n" CONN ACC PROTO "\r\n", WS_HS_UPGRADE,
	    "Upgrade to something else" },
	{ HEAD UPG ACC PROTO "\r\n", WS_HS_UPGRADE, "no Connection" },
	{ HEAD UPG "Connection: keep-alive\r\n" ACC PROTO "\r\n",
	    WS_HS_UPGRADE, "Connection without Upgrade" },
	{ HEAD UPG "Connection: Upgraded\r\n" ACC PROTO "\r\n",
	    WS_HS_UPGRADE, "Connection with a longer token" },
	{ "HTTP/1.0 101 Switching Protocols\r\n" UPG CONN ACC PROTO "\r\n",
	    WS_HS_UPGRADE, "HTTP/1.0" },
	{ HEAD UPG CONN PROTO "\r\n", WS_HS_ACCEPT, "no accept" },
	{ HEAD UPG CONN "Sec-WebSocket-Accept: "
	    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n" PROTO "\r\n", WS_HS_ACCEPT,
	    "accept cut short" },
	{ HEAD UPG CONN "Sec-WebSocket-Accept: "
	    "S3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" PROTO "\r\n", WS_HS_ACCEPT,
	    "accept in another case" },
	{ HEAD UPG CONN "Sec-WebSocket-Accept: "
	    "dGhlIHNhbXBsZSBub25jZQ==\r\n" PROTO "\r\n", WS_HS_ACCEPT,
	    "accept echoing the key" },
	{ HEAD UPG CONN ACC ACC PROTO "\r\n", WS_HS_ACCEPT, "accept twice" },
	{ HEAD UPG CONN ACC "\r\n", WS_HS_SUBPROTOCOL, "no subprotocol" },
	{ HEAD UPG CONN ACC "Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n",
	    WS_HS_SUBPROTOCOL, "another subprotocol" },
	{ HEAD UPG CONN ACC "Sec-WebSocket-Protocol: MQTT\r\n\r\n",
	    WS_HS_SUBPROTOCOL, "subprotocol names are case-sensitive" },
	{ HEAD UPG CONN ACC PROTO PROTO "\r\n", WS_HS_SUBPROTOCOL,
	    "subprotocol twice" },
	{ HEAD UPG CONN ACC PROTO
	    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
	    WS_HS_EXTENSION, "an extension we did not offer" },
};

static void
test_101_checks(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(cases_101); i++) {
		struct ws_handshake hs;

		print_message("%s\n", cases_101[i].why);
		assert_int_equal(check(cases_101[i].resp, &hs),
		    cases_101[i].want);
		assert_int_equal(hs.status, 101);
	}
}

static void
test_no_subprotocol_requested(void **state)
{
	struct ws_upgrade u = upgrade();
	struct ws_handshake hs;
	const char *a = HEAD UPG CONN ACC "\r\n";
	const char *b = HEAD UPG CONN ACC PROTO "\r\n";

	(void)state;
	u.protocol = NULL;
	assert_int_equal(ws_upgrade_response(a, strlen(a), &u, &hs), WS_OK);
	assert_int_equal(ws_upgrade_response(b, strlen(b), &u, &hs),
	    WS_HS_SUBPROTOCOL);
}

static const struct case_101 malformed[] = {
	{ "SSH-2.0-OpenSSH_9.2\r\n", WS_HTTP_MALFORMED, "not HTTP, early" },
	{ "H", WS_NEED_MORE, "too short to tell" },
	{ "HTTP/2 101\r\n\r\n", WS_HTTP_MALFORMED, "HTTP/2" },
	{ "HTTP/1.1 20 OK\r\n\r\n", WS_HTTP_MALFORMED, "two-digit status" },
	{ "HTTP/1.1 099 X\r\n\r\n", WS_HTTP_MALFORMED, "status below 100" },
	{ "HTTP/1.1 1011 X\r\n\r\n", WS_HTTP_MALFORMED, "four-digit status" },
	{ "HTTP/1.1  101 X\r\n\r\n", WS_HTTP_MALFORMED, "two spaces" },
	{ "HTTP/1.x 101 X\r\n\r\n", WS_HTTP_MALFORMED, "minor not a digit" },
	{ "HTTP/1.1 101 X\r\nUpgrade : websocket\r\n\r\n", WS_HTTP_MALFORMED,
	    "space before the colon" },
	{ "HTTP/1.1 101 X\r\nUpgrade: websocket\r\n continued\r\n\r\n",
	    WS_HTTP_MALFORMED, "obs-fold" },
	{ "HTTP/1.1 101 X\r\nUpgrade: websocket\r\n\tcontinued\r\n\r\n",
	    WS_HTTP_MALFORMED, "obs-fold with a tab" },
	{ "HTTP/1.1 101 X\r\nUpgrade\r\n\r\n", WS_HTTP_MALFORMED, "no colon" },
	{ "HTTP/1.1 101 X\r\n: v\r\n\r\n", WS_HTTP_MALFORMED, "empty name" },
	{ "HTTP/1.1 101 X\r\nUp(grade: v\r\n\r\n", WS_HTTP_MALFORMED,
	    "name not a token" },
	{ "HTTP/1.1 101 X\r\nUpgrade: web\nsocket\r\n\r\n", WS_HTTP_MALFORMED,
	    "bare LF in a value" },
	{ "HTTP/1.1 101 X\r\nUpgrade: web\rsocket\r\n\r\n", WS_HTTP_MALFORMED,
	    "bare CR in a value" },
	{ "HTTP/1.1 101 X\nUpgrade: websocket\r\n\r\n", WS_HTTP_MALFORMED,
	    "bare LF ending the status line" },
	{ "HTTP/1.1 101 X\r\nA: \x01\r\n\r\n", WS_HTTP_MALFORMED,
	    "control character in a value" },
	{ "HTTP/1.1 101 X\x7f\r\n\r\n", WS_HTTP_MALFORMED,
	    "DEL in the reason" },
	{ "HTTP/1.1 101 X\n\n", WS_NEED_MORE,
	    "LF LF is not the end of a head" },
};

static void
test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(malformed); i++) {
		struct ws_handshake hs;

		print_message("%s\n", malformed[i].why);
		assert_int_equal(check(malformed[i].resp, &hs),
		    malformed[i].want);
	}
}

static void
test_odd_but_valid(void **state)
{
	const char *resp = "HTTP/1.1 101 Switching \xe2\x9c\x93 Protocols\r\n"
	    "X-Empty:\r\n"
	    "X-Obs-Text: caf\xc3\xa9\r\n"
	    "!#$%&'*+-.^_`|~: token chars\r\n"
	    UPG CONN ACC PROTO "\r\n";
	struct http_response r;
	const struct http_header *h;
	struct ws_handshake hs;
	size_t count;

	(void)state;
	assert_int_equal(check(resp, &hs), WS_OK);
	assert_int_equal(http_response_parse(resp, strlen(resp), &r), HTTP_OK);
	assert_int_equal(r.nheaders, 7);
	assert_int_equal(r.minor, 1);
	h = http_header_find(&r, "x-empty", &count);
	assert_non_null(h);
	assert_int_equal(count, 1);
	assert_int_equal(h->value.len, 0);
	h = http_header_find(&r, "!#$%&'*+-.^_`|~", NULL);
	assert_non_null(h);
	assert_true(http_view_eq(h->value, "token chars"));
	assert_null(http_header_find(&r, "X-Missing", &count));
	assert_int_equal(count, 0);
}

static void
test_limits(void **state)
{
	char *resp;
	size_t n = 0;
	struct http_response r;
	struct ws_handshake hs;
	struct ws_upgrade u = upgrade();

	(void)state;
	resp = malloc(HTTP_MAX_HEAD * 2);
	assert_non_null(resp);

	/* HTTP_MAX_HEADERS fields pass, one more does not. */
	n = (size_t)sprintf(resp, "HTTP/1.1 403 F\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)sprintf(resp + n, "X-%d: v\r\n", i);
	memcpy(resp + n, "\r\n", 3);
	assert_int_equal(http_response_parse(resp, n + 2, &r), HTTP_OK);
	assert_int_equal(r.nheaders, HTTP_MAX_HEADERS);
	memcpy(resp + n, "Y: v\r\n\r\n", 9);
	assert_int_equal(http_response_parse(resp, n + 8, &r), HTTP_TOO_BIG);
	assert_int_equal(ws_upgrade_response(resp, n + 8, &u, &hs),
	    WS_HTTP_TOO_BIG);

	/* A head that has not ended within HTTP_MAX_HEAD bytes. */
	n = (size_t)sprintf(resp, "HTTP/1.1 403 F\r\nX: ");
	memset(resp + n, 'a', HTTP_MAX_HEAD * 2 - n);
	assert_int_equal(http_response_parse(resp, HTTP_MAX_HEAD - 1, &r),
	    HTTP_NEED_MORE);
	assert_int_equal(http_response_parse(resp, HTTP_MAX_HEAD, &r),
	    HTTP_TOO_BIG);
	assert_int_equal(http_response_parse(resp, HTTP_MAX_HEAD * 2, &r),
	    HTTP_TOO_BIG);

	/* A head of exactly HTTP_MAX_HEAD bytes is fine. */
	memcpy(resp + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
	assert_int_equal(http_response_parse(resp, HTTP_MAX_HEAD, &r), HTTP_OK);
	assert_int_equal(r.head_len, HTTP_MAX_HEAD);
	memcpy(resp + HTTP_MAX_HEAD - 4, "aa\r\n\r\n", 6);
	assert_int_equal(http_response_parse(resp, HTTP_MAX_HEAD + 2, &r),
	    HTTP_TOO_BIG);
	free(resp);
}

static struct buf_view
view(const char *s)
{
	struct buf_view v = { (const uint8_t *)s, strlen(s) };

	return v;
}

struct date_case {
	const char	*s;
	int64_t		 want;	/* -1: malformed */
};

static void
check_dates(const struct date_case *cases, size_t n,
    enum http_status (*parse)(struct buf_view, int64_t *))
{
	for (size_t i = 0; i < n; i++) {
		int64_t t = -42;

		print_message("%s\n", cases[i].s);
		if (cases[i].want < 0) {
			assert_int_equal(parse(view(cases[i].s), &t),
			    HTTP_MALFORMED);
			assert_int_equal(t, -42);
		} else {
			assert_int_equal(parse(view(cases[i].s), &t), HTTP_OK);
			assert_int_equal(t, cases[i].want);
		}
	}
}

static void
test_date(void **state)
{
	static const struct date_case cases[] = {
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },
		{ "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
		{ "Sun, 30 Aug 2015 12:36:00 GMT", 1440938160 },
		{ "Thu, 29 Feb 2024 23:59:59 GMT", 1709251199 },
		{ "Sat, 31 Dec 2016 23:59:60 GMT", 1483228800 },
		{ "Mon, 06 Nov 1994 08:49:37 GMT", 784111777 },	/* day unchecked */
		{ "Wed, 29 Feb 2023 00:00:00 GMT", -1 },
		{ "Wed, 29 Feb 2100 00:00:00 GMT", -1 },
		{ "Wed, 31 Apr 2023 00:00:00 GMT", -1 },
		{ "Wed, 00 Apr 2023 00:00:00 GMT", -1 },
		{ "Sun, 06 Nov 1994 24:00:00 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:60:00 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:49:61 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", -1 },
		{ "Sun, 06 nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 6 Nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT ", -1 },
		{ "Xyz, 06 Nov 1994 08:49:37 GMT", -1 },
		{ "Sun, 0x Nov 1994 08:49:37 GMT", -1 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", -1 },	/* RFC 850 */
		{ "Sun Nov  6 08:49:37 1994", -1 },		/* asctime */
		{ "", -1 },
	};

	(void)state;
	check_dates(cases, NELEM(cases), http_date_parse);
}

static void
test_rfc3339(void **state)
{
	static const struct date_case cases[] = {
		/* AWS IoT's credentials provider, as documented */
		{ "2018-01-18T09:18:06Z", 1516267086 },
		{ "2026-12-08T12:34:56Z", 1796733296 },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2024-02-29T23:59:59Z", 1709251199 },
		{ "2016-12-31T23:59:60Z", 1483228800 },
		{ "2026-12-08t12:34:56z", 1796733296 },
		/* a fraction is dropped, never rounded up */
		{ "2026-12-08T12:34:56.999Z", 1796733296 },
		{ "2026-12-08T12:34:56.0000001Z", 1796733296 },
		/* offsets are applied */
		{ "2026-12-08T12:34:56+02:00", 1796726096 },
		{ "2026-12-08T12:34:56-00:30", 1796735096 },
		{ "2026-12-08T12:34:56-00:00", 1796733296 },
		{ "2026-12-08T12:34:56.5+00:00", 1796733296 },
		{ "2023-02-29T00:00:00Z", -1 },
		{ "2100-02-29T00:00:00Z", -1 },
		{ "2026-04-31T00:00:00Z", -1 },
		{ "2026-00-10T00:00:00Z", -1 },
		{ "2026-13-10T00:00:00Z", -1 },
		{ "2026-12-00T00:00:00Z", -1 },
		{ "2026-12-08T24:00:00Z", -1 },
		{ "2026-12-08T12:60:00Z", -1 },
		{ "2026-12-08T12:34:61Z", -1 },
		{ "2026-12-08T12:34:56", -1 },		/* no offset */
		{ "2026-12-08 12:34:56Z", -1 },
		{ "2026-12-08T12:34:56.Z", -1 },
		{ "2026-12-08T12:34:56ZZ", -1 },
		{ "2026-12-08T12:34:56Z ", -1 },
		{ " 2026-12-08T12:34:56Z", -1 },
		{ "2026-12-08T12:34:56+0200", -1 },
		{ "2026-12-08T12:34:56+24:00", -1 },
		{ "2026-12-08T12:34:56+02:60", -1 },
		{ "2026-12-8T12:34:56Z", -1 },
		{ "+2026-12-08T12:34:56Z", -1 },
		{ "20261208T123456Z", -1 },		/* basic format */
		{ "Tue, 08 Dec 2026 12:34:56 GMT", -1 },
		{ "", -1 },
	};

	(void)state;
	check_dates(cases, NELEM(cases), http_rfc3339_parse);
}

static void
test_list_and_length(void **state)
{
	uint64_t n;

	(void)state;
	assert_true(http_list_has(view("Upgrade"), "upgrade"));
	assert_true(http_list_has(view("keep-alive, Upgrade"), "upgrade"));
	assert_true(http_list_has(view(" ,, upgrade ,"), "Upgrade"));
	assert_false(http_list_has(view("keep-alive"), "upgrade"));
	assert_false(http_list_has(view("upgrade2"), "upgrade"));
	assert_false(http_list_has(view("up grade"), "upgrade"));
	assert_false(http_list_has(view(""), "upgrade"));

	assert_int_equal(http_content_length(view("0"), &n), HTTP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(http_content_length(view("9223372036854775807"), &n),
	    HTTP_OK);
	assert_true(n == UINT64_C(9223372036854775807));
	assert_int_equal(http_content_length(view("9223372036854775808"), &n),
	    HTTP_MALFORMED);
	assert_int_equal(http_content_length(view("99999999999999999999"),
	    &n), HTTP_MALFORMED);
	assert_int_equal(http_content_length(view(""), &n), HTTP_MALFORMED);
	assert_int_equal(http_content_length(view("+1"), &n), HTTP_MALFORMED);
	assert_int_equal(http_content_length(view("1 2"), &n), HTTP_MALFORMED);
	assert_int_equal(http_content_length(view("1,1"), &n), HTTP_MALFORMED);

	assert_string_equal(http_strerror(HTTP_TOO_BIG),
	    "HTTP response head too large");
	assert_string_equal(http_strerror((enum http_status)9),
	    "unknown http status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_101),
		cmocka_unit_test(test_every_prefix_needs_more),
		cmocka_unit_test(test_refused_403),
		cmocka_unit_test(test_refused_big_body),
		cmocka_unit_test(test_101_checks),
		cmocka_unit_test(test_no_subprotocol_requested),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_odd_but_valid),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_list_and_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
