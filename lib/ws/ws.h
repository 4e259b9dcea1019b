/*
 * The client side of RFC 6455 as the uplink uses it to carry MQTT: the
 * opening handshake (the upgrade request, and the validation of the server's
 * 101 or the capture of its refusal), masked frames out, and an incremental
 * frame decoder in that hands out payload bytes as they arrive, so MQTT
 * packets can be reassembled across frame boundaries without buffering whole
 * WebSocket messages. Nothing here allocates or keeps a pointer beyond the
 * call, except the decoder's own state; the random bytes a client needs (the
 * handshake nonce, each frame's masking key) come from the caller.
 */
#ifndef IOTB_WS_H
#define IOTB_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define WS_NONCE_LEN		16	/* random bytes behind Sec-WebSocket-Key */
#define WS_KEY_LEN		24	/* their base64 */
#define WS_ACCEPT_LEN		28	/* base64 of a SHA-1 */
#define WS_MASK_LEN		4
#define WS_CONTROL_MAX		125	/* payload of a control frame */
#define WS_MAX_HEADER		14	/* 2 + 8 length bytes + 4 mask bytes */
#define WS_MAX_ERROR_BODY	4096	/* bytes of a refusal's body kept */

enum ws_status {
	WS_OK = 0,
	WS_NEED_MORE,		/* the input ends inside the item */
	/* frames in; ws_close_code() gives the status code to close with */
	WS_PROTOCOL,		/* RFC 6455 violated: close with 1002 */
	WS_NOT_BINARY,		/* a text message, MQTT needs binary: 1003 */
	WS_BAD_DATA,		/* close reason not UTF-8: 1007 */
	WS_TOO_BIG,		/* frame or message over the limit: 1009 */
	/* handshake in */
	WS_HTTP_MALFORMED,	/* the response is not HTTP */
	WS_HTTP_TOO_BIG,	/* its head is over the limits of http.h */
	WS_HTTP_REFUSED,	/* a status other than 101 */
	WS_HS_UPGRADE,		/* 101 without Upgrade: websocket / Connection: Upgrade */
	WS_HS_ACCEPT,		/* Sec-WebSocket-Accept missing or wrong */
	WS_HS_SUBPROTOCOL,	/* the requested subprotocol was not selected */
	WS_HS_EXTENSION,	/* an extension we did not offer */
	/* output */
	WS_NO_SPACE,		/* the output buffer is too small */
	WS_INVALID,		/* a caller argument cannot be put on the wire */
	WS_CRYPTO,		/* mbedTLS's SHA-1 or base64 failed */
};

enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_GOING_AWAY	1001
#define WS_CLOSE_PROTOCOL	1002
#define WS_CLOSE_UNSUPPORTED	1003
#define WS_CLOSE_NO_STATUS	1005	/* never sent: a close without a code */
#define WS_CLOSE_BAD_DATA	1007
#define WS_CLOSE_TOO_BIG	1009
#define WS_CLOSE_INTERNAL	1011

/* ---- opening handshake -------------------------------------------------- */

struct ws_header {
	const char	*name;
	const char	*value;
};

/*
 * What the upgrade request asks for; strings are borrowed, NUL-terminated.
 * host: the server name as it goes into the Host header (and was signed).
 * port: 0 or 443 leave the port out of Host, anything else is appended.
 * target: the request target, "/mqtt?X-Amz-...": '/' then visible ASCII.
 * protocol: the subprotocol to request ("mqtt"), or NULL for none.
 * headers: extra fields (e.g. User-Agent), nheaders of them.
 * nonce: WS_NONCE_LEN fresh random bytes for Sec-WebSocket-Key.
 */
struct ws_upgrade {
	const char		*host;
	uint16_t		 port;
	const char		*target;
	const char		*protocol;
	const struct ws_header	*headers;
	size_t			 nheaders;
	uint8_t			 nonce[WS_NONCE_LEN];
};

/*
 * What came back. status and reason are set once the head is parsed (any
 * return but WS_NEED_MORE, WS_HTTP_MALFORMED and WS_HTTP_TOO_BIG); date is
 * the Date header when has_date. On WS_HTTP_REFUSED, body is the start of the
 * response body when the response has a Content-Length: all of it, or its
 * first WS_MAX_ERROR_BODY bytes with body_truncated set. consumed is the size
 * of the head (and that body): after WS_OK, input beyond it is already
 * WebSocket frames. Views point into the caller's input.
 */
struct ws_handshake {
	int		 status;
	struct buf_view	 reason;
	bool		 has_date;
	int64_t		 date;
	struct buf_view	 body;
	bool		 body_truncated;
	size_t		 consumed;
};

/* base64 of nonce, NUL-terminated: the Sec-WebSocket-Key. */
void		ws_key(const uint8_t nonce[WS_NONCE_LEN],
		    char key[WS_KEY_LEN + 1]);

/*
 * The Sec-WebSocket-Accept a server must answer to key[0..keylen):
 * base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated.
 * Returns WS_OK, WS_INVALID (keylen over 64) or WS_CRYPTO.
 */
enum ws_status	ws_accept(const char *key, size_t keylen,
		    char accept[WS_ACCEPT_LEN + 1]);

/*
 * The upgrade request for u, NUL-terminated into out[0..cap). *len (may be
 * NULL) receives its length without the NUL, or on WS_NO_SPACE the length
 * needed; out may be NULL with cap 0 to size it. The request carries the
 * target, which may hold a session token: treat it as secret. Returns WS_OK,
 * WS_NO_SPACE, or WS_INVALID when a string would break the request (control
 * characters, a header name that is not a token, a target without '/').
 */
enum ws_status	ws_upgrade_request(char *out, size_t cap,
		    const struct ws_upgrade *u, size_t *len);

/*
 * Check the server's answer at the start of in[0..len) against u, the
 * description the request was built from. Call again with more bytes while
 * it returns WS_NEED_MORE. Returns:
 *   WS_OK              101 with every RFC 6455 4.1 check passed;
 *   WS_NEED_MORE       the head, or a refusal's body, is incomplete;
 *   WS_HTTP_MALFORMED, WS_HTTP_TOO_BIG   see http.h;
 *   WS_HTTP_REFUSED    any other status (a 403 for a bad signature or a
 *                      skewed clock: hs->date and hs->body tell more);
 *   WS_HS_UPGRADE, WS_HS_ACCEPT, WS_HS_SUBPROTOCOL, WS_HS_EXTENSION
 *                      a 101 that fails the named check, or is not HTTP/1.1.
 * hs is filled as its comment says.
 */
enum ws_status	ws_upgrade_response(const void *in, size_t len,
		    const struct ws_upgrade *u, struct ws_handshake *hs);

/* ---- frames out --------------------------------------------------------- */

/* Header bytes of a masked client frame of payload length n: 6, 8 or 14. */
size_t		ws_frame_header_size(uint64_t n);

/*
 * A client frame header: FIN flag, opcode, payload length n and masking key,
 * into out[0..cap); *len receives its size (also on WS_NO_SPACE). The payload
 * goes after it masked with ws_mask(), which lets a large payload be masked
 * straight into the output buffer. Returns WS_OK, WS_NO_SPACE, or WS_INVALID
 * for an unknown opcode, a fragmented or over-long control frame, or n with
 * its top bit set.
 */
enum ws_status	ws_frame_header_encode(void *out, size_t cap, bool fin,
		    enum ws_opcode op, uint64_t n,
		    const uint8_t mask[WS_MASK_LEN], size_t *len);

/*
 * XOR p[0..n) in place with the masking key, p[0] being byte number offset
 * of the payload: a payload can be masked in pieces.
 */
void		ws_mask(void *p, size_t n, const uint8_t mask[WS_MASK_LEN],
		    uint64_t offset);

/*
 * A whole masked frame (header and payload[0..n)) into out[0..cap); *len as
 * for ws_frame_header_encode(). payload is copied, not modified. Same
 * returns as ws_frame_header_encode().
 */
enum ws_status	ws_frame_encode(void *out, size_t cap, bool fin,
		    enum ws_opcode op, const void *payload, size_t n,
		    const uint8_t mask[WS_MASK_LEN], size_t *len);

/*
 * A masked close frame: code (0 for none, then reason must be empty) and
 * reason[0..rlen) (UTF-8, at most 123 bytes). Returns WS_OK, WS_NO_SPACE, or
 * WS_INVALID for a code that may not be sent or a bad reason.
 */
enum ws_status	ws_close_encode(void *out, size_t cap, uint16_t code,
		    const void *reason, size_t rlen,
		    const uint8_t mask[WS_MASK_LEN], size_t *len);

/* ---- frames in ---------------------------------------------------------- */

struct ws_frame_header {
	bool		fin;
	uint8_t		rsv;		/* RSV1..3 as the low 3 bits */
	uint8_t		opcode;
	bool		masked;
	uint8_t		mask[WS_MASK_LEN];
	uint64_t	len;		/* payload length */
	size_t		size;		/* header bytes, 2..14 */
};

/*
 * Decode the frame header at the start of in[0..len), checking what a header
 * alone can show: RSV bits clear (no extension was negotiated), a known
 * opcode, control frames unfragmented and at most 125 bytes, the length in
 * its shortest form with the top bit of a 64-bit length clear. A masked
 * frame is decoded (it is a client's frame); refusing it is the decoder's
 * business. Returns WS_OK, WS_NEED_MORE or WS_PROTOCOL.
 */
enum ws_status	ws_frame_header_decode(const void *in, size_t len,
		    struct ws_frame_header *h);

/*
 * Incremental decoder of the server's frames. Data frames are handed out in
 * pieces as their bytes arrive; control frames (which may come between the
 * fragments of a message) whole. An error is sticky.
 */
struct ws_decoder {
	uint64_t	max_frame;	/* payload bytes of one data frame */
	uint64_t	max_message;	/* payload bytes of one message */
	uint64_t	frame_left;	/* payload bytes still to come */
	uint64_t	message_len;	/* announced so far in this message */
	bool		in_frame;	/* inside a data frame's payload */
	bool		frame_fin;
	bool		in_message;	/* a message awaits continuation */
	bool		closed;		/* a close frame was received */
	enum ws_status	error;
};

enum ws_event_type {
	WS_EV_DATA,		/* payload bytes of a binary message */
	WS_EV_PING,		/* answer with a pong carrying the payload */
	WS_EV_PONG,
	WS_EV_CLOSE,		/* answer with a close, then close TCP */
};

struct ws_event {
	enum ws_event_type	type;
	struct buf_view		payload;	/* into the input; may be empty */
	bool			message_end;	/* DATA: the message ends here */
	uint16_t		close_code;	/* CLOSE: WS_CLOSE_NO_STATUS if none */
	struct buf_view		close_reason;	/* CLOSE: UTF-8, not NUL-ended */
};

/* Start a decoder with limits on the payload of a frame and of a message. */
void		ws_decoder_init(struct ws_decoder *d, uint64_t max_frame,
		    uint64_t max_message);

/*
 * Decode from the start of in[0..len), which starts where the previous call's
 * *consumed ended. On WS_OK, *consumed (>= 1) bytes were used and *ev tells
 * what they held: a DATA event's payload is the next piece of the current
 * message, as many of the current frame's bytes as were present (possibly
 * none, right after a header); control frames come whole. Returns:
 *   WS_OK, with an event;
 *   WS_NEED_MORE   nothing consumed: a header, or a control frame, is
 *                  incomplete, or len is 0;
 *   WS_PROTOCOL    a bad header (see ws_frame_header_decode()), a masked
 *                  frame, a continuation with no message started or a new
 *                  message before the last one ended, a bad close frame
 *                  (1 byte, or a code that may not be sent), anything after
 *                  a close;
 *   WS_NOT_BINARY  a text message;
 *   WS_BAD_DATA    a close reason that is not UTF-8;
 *   WS_TOO_BIG     a data frame over max_frame, or a message over
 *                  max_message, refused from its header.
 * After an error every call returns the same status; *consumed is 0.
 */
enum ws_status	ws_decode(struct ws_decoder *d, const void *in, size_t len,
		    struct ws_event *ev, size_t *consumed);

/*
 * Whether a close frame may carry code (1000-1003, 1007-1014, 3000-4999):
 * RFC 6455 7.4 and the IANA registry.
 */
bool		ws_close_code_valid(uint16_t code);

/*
 * The status code to close the connection with after status st from
 * ws_decode(): 1002, 1003, 1007 or 1009; 0 for statuses that are no frame
 * error.
 */
uint16_t	ws_close_code(enum ws_status st);

/* Static English text for a status. */
const char	*ws_strerror(enum ws_status st);

#endif
