/*
 * RFC 6455 client (see ws.h). The decoder is a small state machine over one
 * frame at a time: at a frame boundary it needs the whole header (and, for a
 * control frame, the whole payload, at most 125 bytes) before consuming
 * anything; inside a data frame it consumes whatever bytes are there. Limits
 * are checked against the lengths announced in headers, before any payload is
 * accepted, so an oversized message is refused without reading it.
 */
#include "ws/ws.h"

#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

#include "base/mbedcompat.h"
#include "base/utf8.h"
#include "ws/http.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#define KEY_MAX		64	/* of a Sec-WebSocket-Key we compute over */
#define REASON_MAX	(WS_CONTROL_MAX - 2)

/* ---- opening handshake -------------------------------------------------- */

void
ws_key(const uint8_t nonce[WS_NONCE_LEN], char key[WS_KEY_LEN + 1])
{
	size_t n;

	/* Cannot fail: 16 bytes always fit 24 characters and a NUL. */
	if (mbedtls_base64_encode((unsigned char *)key, WS_KEY_LEN + 1, &n,
	    nonce, WS_NONCE_LEN) != 0)
		key[0] = '\0';
}

enum ws_status
ws_accept(const char *key, size_t keylen, char accept[WS_ACCEPT_LEN + 1])
{
	unsigned char buf[KEY_MAX + sizeof(ws_guid)], sha[20];
	size_t n;

	accept[0] = '\0';
	if (keylen > KEY_MAX)
		return WS_INVALID;
	if (keylen > 0)
		memcpy(buf, key, keylen);
	memcpy(buf + keylen, ws_guid, sizeof(ws_guid) - 1);
	if (mbedcompat_sha1(buf, keylen + sizeof(ws_guid) - 1, sha) != 0 ||
	    mbedtls_base64_encode((unsigned char *)accept, WS_ACCEPT_LEN + 1,
	    &n, sha, sizeof(sha)) != 0)
		return WS_CRYPTO;
	return WS_OK;
}

/* Output with the counting discipline of sigv4.c: len runs past cap. */
struct out {
	char	*p;
	size_t	 cap;
	size_t	 len;
};

static void
put(struct out *o, const char *s)
{
	size_t n = strlen(s);

	if (o->p != NULL && o->len < o->cap) {
		size_t room = o->cap - o->len;

		memcpy(o->p + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static bool
visible(const char *s, bool space_ok)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == 0x7f || (c < ' ' && c != '\t') ||
		    (!space_ok && (c == ' ' || c == '\t')))
			return false;
	}
	return true;
}

static bool
token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return true;
}

static bool
upgrade_ok(const struct ws_upgrade *u)
{
	if (u == NULL || u->host == NULL || u->host[0] == '\0' ||
	    !visible(u->host, false) || strchr(u->host, '/') != NULL ||
	    u->target == NULL || u->target[0] != '/' ||
	    !visible(u->target, false) ||
	    (u->protocol != NULL && !token(u->protocol)) ||
	    (u->nheaders > 0 && u->headers == NULL))
		return false;
	for (size_t i = 0; i < u->nheaders; i++)
		if (u->headers[i].name == NULL || !token(u->headers[i].name) ||
		    u->headers[i].value == NULL ||
		    !visible(u->headers[i].value, true))
			return false;
	return true;
}

enum ws_status
ws_upgrade_request(char *out, size_t cap, const struct ws_upgrade *u,
    size_t *len)
{
	struct out o = { out, cap, 0 };
	char key[WS_KEY_LEN + 1];

	if (!upgrade_ok(u))
		return WS_INVALID;
	ws_key(u->nonce, key);
	put(&o, "GET ");
	put(&o, u->target);
	put(&o, " HTTP/1.1\r\nHost: ");
	put(&o, u->host);
	if (u->port != 0 && u->port != 443) {
		char port[7];
		int i = (int)sizeof(port) - 1;

		port[i] = '\0';
		for (unsigned v = u->port; v > 0; v /= 10)
			port[--i] = (char)('0' + v % 10);
		port[--i] = ':';
		put(&o, port + i);
	}
	put(&o, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: ");
	put(&o, key);
	put(&o, "\r\nSec-WebSocket-Version: 13\r\n");
	if (u->protocol != NULL) {
		put(&o, "Sec-WebSocket-Protocol: ");
		put(&o, u->protocol);
		put(&o, "\r\n");
	}
	for (size_t i = 0; i < u->nheaders; i++) {
		put(&o, u->headers[i].name);
		put(&o, ": ");
		put(&o, u->headers[i].value);
		put(&o, "\r\n");
	}
	put(&o, "\r\n");
	if (len != NULL)
		*len = o.len;
	if (out == NULL || o.len >= cap) {
		if (out != NULL && cap > 0)
			out[0] = '\0';
		return WS_NO_SPACE;
	}
	out[o.len] = '\0';
	return WS_OK;
}

/* The body of a refusal, when Content-Length says how long it is. */
static enum ws_status
refusal_body(const struct http_response *r, const uint8_t *in, size_t len,
    struct ws_handshake *hs)
{
	const struct http_header *h;
	uint64_t cl;
	size_t count, want;

	h = http_header_find(r, "Content-Length", &count);
	if (h == NULL || count != 1 ||
	    http_content_length(h->value, &cl) != HTTP_OK)
		return WS_HTTP_REFUSED;	/* no body we can delimit */
	want = cl > WS_MAX_ERROR_BODY ? WS_MAX_ERROR_BODY : (size_t)cl;
	if (len - r->head_len < want)
		return WS_NEED_MORE;
	hs->body.ptr = in + r->head_len;
	hs->body.len = want;
	hs->body_truncated = cl > want;
	hs->consumed += want;
	return WS_HTTP_REFUSED;
}

enum ws_status
ws_upgrade_response(const void *in, size_t len, const struct ws_upgrade *u,
    struct ws_handshake *hs)
{
	struct http_response r;
	const struct http_header *h;
	char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1];
	size_t count;
	enum ws_status st;

	memset(hs, 0, sizeof(*hs));
	switch (http_response_parse(in, len, &r)) {
	case HTTP_OK:
		break;
	case HTTP_NEED_MORE:
		return WS_NEED_MORE;
	case HTTP_TOO_BIG:
		return WS_HTTP_TOO_BIG;
	default:
		return WS_HTTP_MALFORMED;
	}
	hs->status = r.status;
	hs->reason = r.reason;
	hs->consumed = r.head_len;
	h = http_header_find(&r, "Date", NULL);
	if (h != NULL && http_date_parse(h->value, &hs->date) == HTTP_OK)
		hs->has_date = true;
	if (r.status != 101) {
		if ((st = refusal_body(&r, in, len, hs)) == WS_NEED_MORE)
			hs->consumed = 0;
		return st;
	}

	/* RFC 6455 section 4.1, the client's checks of the server's answer. */
	h = http_header_find(&r, "Upgrade", NULL);
	if (r.minor < 1 || h == NULL || !http_list_has(h->value, "websocket"))
		return WS_HS_UPGRADE;
	h = http_header_find(&r, "Connection", NULL);
	if (h == NULL || !http_list_has(h->value, "Upgrade"))
		return WS_HS_UPGRADE;
	ws_key(u->nonce, key);
	if ((st = ws_accept(key, WS_KEY_LEN, accept)) != WS_OK)
		return st;
	h = http_header_find(&r, "Sec-WebSocket-Accept", &count);
	if (h == NULL || count != 1 || !http_view_eq(h->value, accept))
		return WS_HS_ACCEPT;
	h = http_header_find(&r, "Sec-WebSocket-Extensions", NULL);
	if (h != NULL && h->value.len > 0)
		return WS_HS_EXTENSION;
	h = http_header_find(&r, "Sec-WebSocket-Protocol", &count);
	if (u->protocol == NULL ? h != NULL :
	    (h == NULL || count != 1 || !http_view_eq(h->value, u->protocol)))
		return WS_HS_SUBPROTOCOL;
	return WS_OK;
}

/* ---- frames out --------------------------------------------------------- */

static bool
is_control(unsigned op)
{
	return op >= 0x8;
}

static bool
known_opcode(unsigned op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

size_t
ws_frame_header_size(uint64_t n)
{
	return (n < 126 ? 2 : n <= 0xffff ? 4 : 10) + WS_MASK_LEN;
}

enum ws_status
ws_frame_header_encode(void *out, size_t cap, bool fin, enum ws_opcode op,
    uint64_t n, const uint8_t mask[WS_MASK_LEN], size_t *len)
{
	uint8_t h[WS_MAX_HEADER], *p = h;
	size_t size = ws_frame_header_size(n);

	*len = size;
	if (!known_opcode(op) || (n >> 63) != 0 ||
	    (is_control(op) && (!fin || n > WS_CONTROL_MAX)))
		return WS_INVALID;
	if (cap < size)
		return WS_NO_SPACE;
	*p++ = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		*p++ = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		*p++ = 0x80 | 126;
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	} else {
		*p++ = 0x80 | 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			*p++ = (uint8_t)(n >> shift);
	}
	memcpy(p, mask, WS_MASK_LEN);
	memcpy(out, h, size);
	return WS_OK;
}

void
ws_mask(void *p, size_t n, const uint8_t mask[WS_MASK_LEN], uint64_t offset)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] ^= mask[(offset + i) & 3];
}

enum ws_status
ws_frame_encode(void *out, size_t cap, bool fin, enum ws_opcode op,
    const void *payload, size_t n, const uint8_t mask[WS_MASK_LEN],
    size_t *len)
{
	size_t hlen;
	enum ws_status st;

	st = ws_frame_header_encode(out, cap, fin, op, n, mask, &hlen);
	*len = hlen + n;
	if (st != WS_OK)
		return st;
	if (cap - hlen < n)
		return WS_NO_SPACE;
	if (n > 0) {
		memcpy((uint8_t *)out + hlen, payload, n);
		ws_mask((uint8_t *)out + hlen, n, mask, 0);
	}
	return WS_OK;
}

bool
ws_close_code_valid(uint16_t code)
{
	return (code >= 1000 && code <= 1003) ||
	    (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* UTF-8 where U+0000 is allowed: utf8_check() refuses it, WebSocket not. */
static bool
utf8_ok(const uint8_t *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == 0) {
			if (utf8_check(p + start, i - start) != UTF8_OK)
				return false;
			start = i + 1;
		}
	}
	return true;
}

enum ws_status
ws_close_encode(void *out, size_t cap, uint16_t code, const void *reason,
    size_t rlen, const uint8_t mask[WS_MASK_LEN], size_t *len)
{
	uint8_t payload[WS_CONTROL_MAX];

	*len = 0;
	if (code == 0)
		return rlen == 0 ? ws_frame_encode(out, cap, true, WS_OP_CLOSE,
		    NULL, 0, mask, len) : WS_INVALID;
	if (!ws_close_code_valid(code) || rlen > REASON_MAX ||
	    (rlen > 0 && !utf8_ok(reason, rlen)))
		return WS_INVALID;
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	if (rlen > 0)
		memcpy(payload + 2, reason, rlen);
	return ws_frame_encode(out, cap, true, WS_OP_CLOSE, payload, rlen + 2,
	    mask, len);
}

/* ---- frames in ---------------------------------------------------------- */

enum ws_status
ws_frame_header_decode(const void *in, size_t len, struct ws_frame_header *h)
{
	const uint8_t *p = in;
	size_t size = 2;
	uint8_t len7;

	if (len < 2)
		return WS_NEED_MORE;
	memset(h, 0, sizeof(*h));
	h->fin = (p[0] & 0x80) != 0;
	h->rsv = (p[0] >> 4) & 7;
	h->opcode = p[0] & 0x0f;
	h->masked = (p[1] & 0x80) != 0;
	len7 = p[1] & 0x7f;
	/* What the first two bytes prove wrong is wrong, whatever follows. */
	if (h->rsv != 0 || !known_opcode(h->opcode) ||
	    (is_control(h->opcode) && (!h->fin || len7 > WS_CONTROL_MAX)))
		return WS_PROTOCOL;
	size += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	size += h->masked ? WS_MASK_LEN : 0;
	if (len < size)
		return WS_NEED_MORE;
	if (len7 == 126) {
		h->len = (uint64_t)p[2] << 8 | p[3];
		if (h->len < 126)
			return WS_PROTOCOL;	/* not the shortest form */
	} else if (len7 == 127) {
		for (int i = 0; i < 8; i++)
			h->len = h->len << 8 | p[2 + i];
		if ((h->len >> 63) != 0 || h->len <= 0xffff)
			return WS_PROTOCOL;
	} else {
		h->len = len7;
	}
	if (h->masked)
		memcpy(h->mask, p + size - WS_MASK_LEN, WS_MASK_LEN);
	h->size = size;
	return WS_OK;
}

void
ws_decoder_init(struct ws_decoder *d, uint64_t max_frame, uint64_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
	d->max_message = max_message;
	d->error = WS_OK;
}

/* A control frame, whole in p[0..n). */
static enum ws_status
control(const struct ws_frame_header *h, const uint8_t *p, struct ws_event *ev)
{
	ev->payload.ptr = p;
	ev->payload.len = (size_t)h->len;
	switch (h->opcode) {
	case WS_OP_PING:
		ev->type = WS_EV_PING;
		return WS_OK;
	case WS_OP_PONG:
		ev->type = WS_EV_PONG;
		return WS_OK;
	default:
		break;
	}
	ev->type = WS_EV_CLOSE;
	ev->close_code = WS_CLOSE_NO_STATUS;
	ev->close_reason.ptr = p;
	if (h->len == 0)
		return WS_OK;
	if (h->len == 1)
		return WS_PROTOCOL;
	ev->close_code = (uint16_t)(p[0] << 8 | p[1]);
	if (!ws_close_code_valid(ev->close_code))
		return WS_PROTOCOL;
	ev->close_reason.ptr = p + 2;
	ev->close_reason.len = (size_t)h->len - 2;
	if (!utf8_ok(ev->close_reason.ptr, ev->close_reason.len))
		return WS_BAD_DATA;
	return WS_OK;
}

/* A data frame's header: fragmentation rules and limits. */
static enum ws_status
data_header(struct ws_decoder *d, const struct ws_frame_header *h)
{
	if (h->opcode == WS_OP_CONTINUATION) {
		if (!d->in_message)
			return WS_PROTOCOL;
	} else {
		if (d->in_message)
			return WS_PROTOCOL;
		if (h->opcode == WS_OP_TEXT)
			return WS_NOT_BINARY;
		d->message_len = 0;
	}
	if (h->len > d->max_frame || h->len > d->max_message - d->message_len)
		return WS_TOO_BIG;
	d->message_len += h->len;
	d->in_message = !h->fin;
	d->in_frame = true;
	d->frame_fin = h->fin;
	d->frame_left = h->len;
	return WS_OK;
}

enum ws_status
ws_decode(struct ws_decoder *d, const void *in, size_t len,
    struct ws_event *ev, size_t *consumed)
{
	const uint8_t *p = in;
	struct ws_frame_header h;
	size_t used = 0, take;
	enum ws_status st;

	*consumed = 0;
	memset(ev, 0, sizeof(*ev));
	if (d->error != WS_OK)
		return d->error;
	if (len == 0)
		return WS_NEED_MORE;
	if (d->closed) {
		st = WS_PROTOCOL;
		goto fail;
	}
	if (!d->in_frame) {
		st = ws_frame_header_decode(p, len, &h);
		/* A server must not mask (RFC 6455 5.1); the 2nd byte says so. */
		if (st != WS_PROTOCOL && len >= 2 && (p[1] & 0x80) != 0)
			st = WS_PROTOCOL;
		if (st != WS_OK)
			goto fail;
		if (is_control(h.opcode)) {
			if (len - h.size < h.len)
				return WS_NEED_MORE;
			if ((st = control(&h, p + h.size, ev)) != WS_OK)
				goto fail;
			d->closed = h.opcode == WS_OP_CLOSE;
			*consumed = h.size + (size_t)h.len;
			return WS_OK;
		}
		if ((st = data_header(d, &h)) != WS_OK)
			goto fail;
		used = h.size;
	}
	take = len - used;
	if (take > d->frame_left)
		take = (size_t)d->frame_left;
	d->frame_left -= take;
	ev->type = WS_EV_DATA;
	ev->payload.ptr = p + used;
	ev->payload.len = take;
	if (d->frame_left == 0) {
		d->in_frame = false;
		ev->message_end = d->frame_fin;
	}
	*consumed = used + take;
	return WS_OK;
fail:
	if (st != WS_NEED_MORE)
		d->error = st;
	memset(ev, 0, sizeof(*ev));
	return st;
}

uint16_t
ws_close_code(enum ws_status st)
{
	switch (st) {
	case WS_PROTOCOL:
		return WS_CLOSE_PROTOCOL;
	case WS_NOT_BINARY:
		return WS_CLOSE_UNSUPPORTED;
	case WS_BAD_DATA:
		return WS_CLOSE_BAD_DATA;
	case WS_TOO_BIG:
		return WS_CLOSE_TOO_BIG;
	default:
		return 0;
	}
}

const char *
ws_strerror(enum ws_status st)
{
	switch (st) {
	case WS_OK:
		return "success";
	case WS_NEED_MORE:
		return "incomplete input";
	case WS_PROTOCOL:
		return "websocket protocol error";
	case WS_NOT_BINARY:
		return "text message where binary was expected";
	case WS_BAD_DATA:
		return "close reason is not valid UTF-8";
	case WS_TOO_BIG:
		return "websocket frame or message too big";
	case WS_HTTP_MALFORMED:
		return "malformed HTTP response";
	case WS_HTTP_TOO_BIG:
		return "HTTP response head too large";
	case WS_HTTP_REFUSED:
		return "upgrade refused by the server";
	case WS_HS_UPGRADE:
		return "101 response without websocket upgrade";
	case WS_HS_ACCEPT:
		return "wrong Sec-WebSocket-Accept";
	case WS_HS_SUBPROTOCOL:
		return "server did not select the requested subprotocol";
	case WS_HS_EXTENSION:
		return "server selected an extension that was not offered";
	case WS_NO_SPACE:
		return "output buffer too small";
	case WS_INVALID:
		return "invalid websocket argument";
	case WS_CRYPTO:
		return "cryptographic operation failed";
	}
	return "unknown ws status";
}
