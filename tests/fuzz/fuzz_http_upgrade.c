/*
 * libFuzzer target for the upgrade response (ws_upgrade_response() and the
 * http.c head parser under it). The input is the server's answer to a request
 * made with the RFC 6455 sample nonce and subprotocol "mqtt". Beyond not
 * crashing: every view must lie inside the input and within what was
 * consumed, an answer that needs more must also need more when cut shorter,
 * and a verdict reached must not change when more bytes follow. The Date,
 * token-list and Content-Length helpers get the parsed values as input too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/http.h"
#include "ws/ws.h"

#define INPUT_MAX	(HTTP_MAX_HEAD + WS_MAX_ERROR_BODY + 64)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(struct buf_view v, const uint8_t *in, size_t len)
{
	if (v.len > 0 && (v.ptr < in || v.ptr + v.len > in + len))
		abort();
}

static enum ws_status
check(const uint8_t *in, size_t len, struct ws_handshake *hs)
{
	struct ws_upgrade u;
	enum ws_status st;

	memset(&u, 0, sizeof(u));
	u.host = "example.com";
	u.target = "/mqtt";
	u.protocol = "mqtt";
	memcpy(u.nonce, "the sample nonce", WS_NONCE_LEN);
	st = ws_upgrade_response(in, len, &u, hs);
	if (hs->consumed > len)
		abort();
	inside(hs->reason, in, len);
	inside(hs->body, in, hs->consumed);
	if (hs->body.len > WS_MAX_ERROR_BODY)
		abort();
	if (st == WS_NEED_MORE && hs->consumed != 0)
		abort();
	return st;
}

static void
helpers(const uint8_t *in, size_t len)
{
	struct http_response r;
	int64_t t;
	uint64_t n;

	if (http_response_parse(in, len, &r) != HTTP_OK)
		return;
	if (r.head_len > len || r.head_len > HTTP_MAX_HEAD ||
	    r.nheaders > HTTP_MAX_HEADERS || r.status < 100 || r.status > 999)
		abort();
	for (size_t i = 0; i < r.nheaders; i++) {
		inside(r.headers[i].name, in, r.head_len);
		inside(r.headers[i].value, in, r.head_len);
		if (r.headers[i].name.len == 0)
			abort();
		(void)http_date_parse(r.headers[i].value, &t);
		(void)http_content_length(r.headers[i].value, &n);
		(void)http_list_has(r.headers[i].value, "upgrade");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t more[INPUT_MAX + 1];
	struct ws_handshake hs, hs2;
	enum ws_status st, st2;

	if (size > INPUT_MAX)
		return 0;
	st = check(data, size, &hs);
	helpers(data, size);

	if (size > 0 && st == WS_NEED_MORE &&
	    check(data, size - 1, &hs2) != WS_NEED_MORE)
		abort();

	/* Once decided, trailing bytes change nothing. */
	if (st != WS_NEED_MORE && st != WS_HTTP_TOO_BIG) {
		if (size > 0)
			memcpy(more, data, size);
		more[size] = 'x';
		st2 = check(more, size + 1, &hs2);
		if (st2 != st || hs2.consumed != hs.consumed ||
		    hs2.status != hs.status || hs2.has_date != hs.has_date ||
		    hs2.date != hs.date || hs2.body.len != hs.body.len)
			abort();
	}
	return 0;
}
