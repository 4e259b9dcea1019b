/*
 * Unit tests for ws.c: the frame examples of RFC 6455 section 5.7 and the
 * accept-key example of section 1.3, the upgrade request byte for byte, the
 * decoder fed whole and one byte at a time (every prefix of a header or a
 * control frame is "need more"; data arrives in pieces and reassembles),
 * every protocol violation with the close code it maps to, and the encoders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws/ws.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const uint8_t rfc_mask[WS_MASK_LEN] = { 0x37, 0xfa, 0x21, 0x3d };

/* RFC 6455 section 5.7. */
static const uint8_t hello_unmasked[] = {
	0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
};
static const uint8_t hello_masked[] = {
	0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
};
static const uint8_t hello_fragmented[] = {
	0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f
};
static const uint8_t ping_unmasked[] = {
	0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
};
static const uint8_t pong_masked[] = {
	0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
};

static struct ws_decoder
decoder(void)
{
	struct ws_decoder d;

	ws_decoder_init(&d, 1 << 20, 1 << 22);
	return d;
}

static enum ws_status
decode1(const void *in, size_t len, struct ws_event *ev, size_t *used)
{
	struct ws_decoder d = decoder();

	return ws_decode(&d, in, len, ev, used);
}

static void
test_rfc_unmasked_text_is_refused(void **state)
{
	struct ws_event ev;
	size_t used;

	(void)state;
	/* The RFC's examples are text; MQTT over WebSocket is binary only. */
	assert_int_equal(decode1(hello_unmasked, sizeof(hello_unmasked), &ev,
	    &used), WS_NOT_BINARY);
	assert_int_equal(used, 0);
	assert_int_equal(ws_close_code(WS_NOT_BINARY), 1003);
	assert_int_equal(decode1(hello_fragmented, sizeof(hello_fragmented),
	    &ev, &used), WS_NOT_BINARY);
}

static void
test_rfc_single_frame_binary(void **state)
{
	uint8_t f[sizeof(hello_unmasked)];
	struct ws_event ev;
	size_t used;

	(void)state;
	memcpy(f, hello_unmasked, sizeof(f));
	f[0] = 0x82;
	assert_int_equal(decode1(f, sizeof(f), &ev, &used), WS_OK);
	assert_int_equal(used, sizeof(f));
	assert_int_equal(ev.type, WS_EV_DATA);
	assert_true(ev.message_end);
	assert_int_equal(ev.payload.len, 5);
	assert_memory_equal(ev.payload.ptr, "Hello", 5);
	assert_ptr_equal(ev.payload.ptr, f + 2);	/* a view, not a copy */
}

static void
test_rfc_masked(void **state)
{
	struct ws_frame_header h;
	uint8_t out[32], payload[5];
	struct ws_event ev;
	size_t len;

	(void)state;
	/* Our encoder produces the RFC's client frame exactly. */
	assert_int_equal(ws_frame_encode(out, sizeof(out), true, WS_OP_TEXT,
	    "Hello", 5, rfc_mask, &len), WS_OK);
	assert_int_equal(len, sizeof(hello_masked));
	assert_memory_equal(out, hello_masked, len);

	/* The header decodes, and unmasking gives the text back... */
	assert_int_equal(ws_frame_header_decode(hello_masked,
	    sizeof(hello_masked), &h), WS_OK);
	assert_true(h.masked && h.fin);
	assert_int_equal(h.opcode, WS_OP_TEXT);
	assert_int_equal(h.len, 5);
	assert_int_equal(h.size, 6);
	assert_memory_equal(h.mask, rfc_mask, 4);
	memcpy(payload, hello_masked + h.size, 5);
	ws_mask(payload, 5, h.mask, 0);
	assert_memory_equal(payload, "Hello", 5);

	/* ...but a client refuses a masked frame from the server. */
	assert_int_equal(decode1(hello_masked, sizeof(hello_masked), &ev,
	    &len), WS_PROTOCOL);
	/* Already from its first two bytes. */
	assert_int_equal(decode1(hello_masked, 2, &ev, &len), WS_PROTOCOL);
	assert_int_equal(ws_close_code(WS_PROTOCOL), 1002);
}

static void
test_rfc_fragmented_binary(void **state)
{
	uint8_t f[sizeof(hello_fragmented)];
	struct ws_decoder d = decoder();
	struct ws_event ev;
	size_t used;

	(void)state;
	memcpy(f, hello_fragmented, sizeof(f));
	f[0] = 0x02;
	assert_int_equal(ws_decode(&d, f, sizeof(f), &ev, &used), WS_OK);
	assert_int_equal(used, 5);
	assert_int_equal(ev.type, WS_EV_DATA);
	assert_false(ev.message_end);
	assert_memory_equal(ev.payload.ptr, "Hel", 3);
	assert_int_equal(ws_decode(&d, f + 5, sizeof(f) - 5, &ev, &used),
	    WS_OK);
	assert_int_equal(used, 4);
	assert_true(ev.message_end);
	assert_int_equal(ev.payload.len, 2);
	assert_memory_equal(ev.payload.ptr, "lo", 2);
	assert_int_equal(ws_decode(&d, f, 0, &ev, &used), WS_NEED_MORE);
}

static void
test_rfc_ping_pong(void **state)
{
	uint8_t out[32];
	struct ws_event ev;
	size_t len;

	(void)state;
	assert_int_equal(decode1(ping_unmasked, sizeof(ping_unmasked), &ev,
	    &len), WS_OK);
	assert_int_equal(len, sizeof(ping_unmasked));
	assert_int_equal(ev.type, WS_EV_PING);
	assert_int_equal(ev.payload.len, 5);
	assert_memory_equal(ev.payload.ptr, "Hello", 5);

	/* The answer, masked with the RFC's key, is the RFC's pong. */
	assert_int_equal(ws_frame_encode(out, sizeof(out), true, WS_OP_PONG,
	    ev.payload.ptr, ev.payload.len, rfc_mask, &len), WS_OK);
	assert_int_equal(len, sizeof(pong_masked));
	assert_memory_equal(out, pong_masked, len);

	/* An unmasked pong from the server. */
	memcpy(out, ping_unmasked, sizeof(ping_unmasked));
	out[0] = 0x8a;
	assert_int_equal(decode1(out, sizeof(ping_unmasked), &ev, &len), WS_OK);
	assert_int_equal(ev.type, WS_EV_PONG);
	assert_int_equal(ev.payload.len, 5);
}

static void
test_rfc_lengths(void **state)
{
	static const uint8_t h256[] = { 0x82, 0x7e, 0x01, 0x00 };
	static const uint8_t h64k[] = {
		0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00
	};
	struct ws_frame_header h;
	uint8_t out[WS_MAX_HEADER];
	size_t len;

	(void)state;
	assert_int_equal(ws_frame_header_decode(h256, sizeof(h256), &h), WS_OK);
	assert_int_equal(h.len, 256);
	assert_int_equal(h.size, 4);
	assert_false(h.masked);
	assert_int_equal(ws_frame_header_decode(h64k, sizeof(h64k), &h), WS_OK);
	assert_int_equal(h.len, 65536);
	assert_int_equal(h.size, 10);

	/* Our masked headers for the same lengths. */
	assert_int_equal(ws_frame_header_encode(out, sizeof(out), true,
	    WS_OP_BINARY, 256, rfc_mask, &len), WS_OK);
	assert_int_equal(len, 8);
	assert_memory_equal(out, "\x82\xfe\x01\x00\x37\xfa\x21\x3d", 8);
	assert_int_equal(ws_frame_header_encode(out, sizeof(out), true,
	    WS_OP_BINARY, 65536, rfc_mask, &len), WS_OK);
	assert_int_equal(len, 14);
	assert_memory_equal(out,
	    "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d", 14);
	assert_int_equal(ws_frame_header_encode(out, sizeof(out), false,
	    WS_OP_CONTINUATION, 125, rfc_mask, &len), WS_OK);
	assert_memory_equal(out, "\x00\xfd\x37\xfa\x21\x3d", 6);
	assert_int_equal(ws_frame_header_encode(out, sizeof(out), true,
	    WS_OP_BINARY, 65535, rfc_mask, &len), WS_OK);
	assert_memory_equal(out, "\x82\xfe\xff\xff", 4);
	assert_int_equal(ws_frame_header_size(0), 6);
	assert_int_equal(ws_frame_header_size(125), 6);
	assert_int_equal(ws_frame_header_size(126), 8);
	assert_int_equal(ws_frame_header_size(65535), 8);
	assert_int_equal(ws_frame_header_size(65536), 14);
}

/* RFC 6455 section 1.3. */
static void
test_rfc_accept_key(void **state)
{
	char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1];

	(void)state;
	ws_key((const uint8_t *)"the sample nonce", key);
	assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(ws_accept(key, strlen(key), accept), WS_OK);
	assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept(key, 65, accept), WS_INVALID);
}

/* Every proper prefix of a header or a control frame: nothing consumed. */
static void
test_prefixes_need_more(void **state)
{
	uint8_t big[10 + 300];
	const struct {
		const uint8_t	*p;
		size_t		 len;
		size_t		 header;
		bool		 control;
	} frames[] = {
		{ ping_unmasked, sizeof(ping_unmasked), 2, true },
		{ (const uint8_t *)"\x88\x02\x03\xe8", 4, 2, true },
		{ (const uint8_t *)"\x8a\x00", 2, 2, true },
		{ (const uint8_t *)"\x82\x7e\x01\x00", 4, 4, false },
		{ big, sizeof(big), 10, false },
	};
	struct ws_event ev;
	size_t used;

	(void)state;
	memset(big, 0xa5, sizeof(big));
	memcpy(big, "\x02\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	for (size_t f = 0; f < NELEM(frames); f++) {
		size_t whole = frames[f].control ? frames[f].len :
		    frames[f].header;

		for (size_t n = 0; n < whole; n++) {
			used = 99;
			assert_int_equal(decode1(frames[f].p, n, &ev, &used),
			    WS_NEED_MORE);
			assert_int_equal(used, 0);
		}
		/* Past the header, a data frame's bytes come as they are. */
		for (size_t n = whole; n <= frames[f].len; n++) {
			assert_int_equal(decode1(frames[f].p, n, &ev, &used),
			    WS_OK);
			assert_int_equal(used, n);
		}
	}
}

/*
 * A stream of frames fed one byte at a time, the way a reassembler in the
 * daemon would: unconsumed bytes are kept and offered again with the next.
 */
static void
test_stream_byte_by_byte(void **state)
{
	static const uint8_t stream[] = {
		0x02, 0x03, 'M', 'Q', 'T',		/* binary, not final */
		0x89, 0x02, 'h', 'i',			/* ping between */
		0x00, 0x00,				/* empty continuation */
		0x80, 0x7e, 0x00, 0x80,			/* final, 128 bytes */
	};
	uint8_t all[sizeof(stream) + 128 + 4], acc[sizeof(all)], data[256];
	struct ws_decoder d = decoder();
	size_t alen = 0, dlen = 0, pings = 0, ends = 0, closes = 0;

	(void)state;
	memcpy(all, stream, sizeof(stream));
	for (size_t i = 0; i < 128; i++)
		all[sizeof(stream) + i] = (uint8_t)i;
	memcpy(all + sizeof(stream) + 128, "\x88\x02\x03\xe8", 4);

	for (size_t i = 0; i < sizeof(all); i++) {
		struct ws_event ev;
		size_t used;
		enum ws_status st;

		acc[alen++] = all[i];
		while ((st = ws_decode(&d, acc, alen, &ev, &used)) == WS_OK) {
			assert_true(used > 0);
			switch (ev.type) {
			case WS_EV_DATA:
				assert_true(dlen + ev.payload.len <=
				    sizeof(data));
				if (ev.payload.len > 0)
					memcpy(data + dlen, ev.payload.ptr,
					    ev.payload.len);
				dlen += ev.payload.len;
				ends += ev.message_end;
				break;
			case WS_EV_PING:
				assert_int_equal(ev.payload.len, 2);
				assert_memory_equal(ev.payload.ptr, "hi", 2);
				pings++;
				break;
			case WS_EV_CLOSE:
				assert_int_equal(ev.close_code, 1000);
				closes++;
				break;
			default:
				fail();
			}
			memmove(acc, acc + used, alen - used);
			alen -= used;
		}
		assert_int_equal(st, WS_NEED_MORE);
	}
	assert_int_equal(alen, 0);
	assert_int_equal(pings, 1);
	assert_int_equal(ends, 1);
	assert_int_equal(closes, 1);
	assert_int_equal(dlen, 3 + 128);
	assert_memory_equal(data, "MQT", 3);
	for (size_t i = 0; i < 128; i++)
		assert_int_equal(data[3 + i], i);
}

struct bad_case {
	const char	*bytes;
	size_t		 len;
	enum ws_status	 want;
	const char	*why;
};

static const struct bad_case bad_frames[] = {
	{ "\xc2\x00", 2, WS_PROTOCOL, "RSV1 set" },
	{ "\xa2\x00", 2, WS_PROTOCOL, "RSV2 set" },
	{ "\x92\x00", 2, WS_PROTOCOL, "RSV3 set" },
	{ "\x83\x00", 2, WS_PROTOCOL, "reserved data opcode 3" },
	{ "\x87\x00", 2, WS_PROTOCOL, "reserved data opcode 7" },
	{ "\x8b\x00", 2, WS_PROTOCOL, "reserved control opcode B" },
	{ "\x8f\x00", 2, WS_PROTOCOL, "reserved control opcode F" },
	{ "\x09\x00", 2, WS_PROTOCOL, "fragmented ping" },
	{ "\x08\x00", 2, WS_PROTOCOL, "fragmented close" },
	{ "\x89\x7e", 2, WS_PROTOCOL, "ping with 16-bit length" },
	{ "\x89\x7f", 2, WS_PROTOCOL, "ping with 64-bit length" },
	{ "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, WS_PROTOCOL,
	    "64-bit length with its top bit set" },
	{ "\x82\x7e\x00\x7d", 4, WS_PROTOCOL, "16-bit form for 125" },
	{ "\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff", 10, WS_PROTOCOL,
	    "64-bit form for 65535" },
	{ "\x80\x00", 2, WS_PROTOCOL, "continuation with no message" },
	{ "\x82\x80\x00\x00\x00\x00", 6, WS_PROTOCOL, "masked server frame" },
	{ "\x88\x01\x03", 3, WS_PROTOCOL, "close with a 1-byte body" },
	{ "\x88\x02\x03\xed", 4, WS_PROTOCOL, "close code 1005" },
	{ "\x88\x02\x03\xee", 4, WS_PROTOCOL, "close code 1006" },
	{ "\x88\x02\x03\xec", 4, WS_PROTOCOL, "close code 1004" },
	{ "\x88\x02\x03\xf7", 4, WS_PROTOCOL, "close code 1015" },
	{ "\x88\x02\x03\xe7", 4, WS_PROTOCOL, "close code 999" },
	{ "\x88\x02\x0b\xb7", 4, WS_PROTOCOL, "close code 2999" },
	{ "\x88\x02\x13\x88", 4, WS_PROTOCOL, "close code 5000" },
	{ "\x88\x02\x00\x00", 4, WS_PROTOCOL, "close code 0" },
	{ "\x88\x04\x03\xe8\xc3\x28", 6, WS_BAD_DATA, "close reason bad UTF-8" },
	{ "\x88\x05\x03\xe8\xed\xa0\x80", 7, WS_BAD_DATA,
	    "close reason a surrogate" },
	{ "\x88\x03\x03\xe8\xc3", 5, WS_BAD_DATA, "close reason truncated" },
	{ "\x81\x00", 2, WS_NOT_BINARY, "text" },
	{ "\x01\x00", 2, WS_NOT_BINARY, "fragmented text" },
};

static void
test_bad_frames(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad_frames); i++) {
		const struct bad_case *c = &bad_frames[i];
		struct ws_decoder d = decoder();
		struct ws_event ev;
		size_t used = 99;

		print_message("%s\n", c->why);
		assert_int_equal(ws_decode(&d, c->bytes, c->len, &ev, &used),
		    c->want);
		assert_int_equal(used, 0);
		/* Sticky: even a valid frame after it is not decoded. */
		assert_int_equal(ws_decode(&d, "\x8a\x00", 2, &ev, &used),
		    c->want);
	}
}

static void
test_fragmentation_rules(void **state)
{
	struct ws_decoder d = decoder();
	struct ws_event ev;
	size_t used;

	(void)state;
	assert_int_equal(ws_decode(&d, "\x02\x01x", 3, &ev, &used), WS_OK);
	/* Control frames may come between fragments... */
	assert_int_equal(ws_decode(&d, "\x89\x00", 2, &ev, &used), WS_OK);
	assert_int_equal(ev.type, WS_EV_PING);
	/* ...a new data message may not. */
	assert_int_equal(ws_decode(&d, "\x82\x00", 2, &ev, &used),
	    WS_PROTOCOL);

	d = decoder();
	assert_int_equal(ws_decode(&d, "\x02\x01x", 3, &ev, &used), WS_OK);
	assert_int_equal(ws_decode(&d, "\x81\x00", 2, &ev, &used),
	    WS_PROTOCOL);

	/* After a message ended, a continuation is an error again. */
	d = decoder();
	assert_int_equal(ws_decode(&d, "\x82\x01x", 3, &ev, &used), WS_OK);
	assert_true(ev.message_end);
	assert_int_equal(ws_decode(&d, "\x80\x00", 2, &ev, &used),
	    WS_PROTOCOL);

	/* Empty binary message. */
	d = decoder();
	assert_int_equal(ws_decode(&d, "\x82\x00", 2, &ev, &used), WS_OK);
	assert_int_equal(used, 2);
	assert_int_equal(ev.type, WS_EV_DATA);
	assert_int_equal(ev.payload.len, 0);
	assert_true(ev.message_end);
}

static void
test_limits(void **state)
{
	uint8_t f[4 + 300];
	struct ws_decoder d;
	struct ws_event ev;
	size_t used;

	(void)state;
	memset(f, 0, sizeof(f));
	memcpy(f, "\x82\x7e\x01\x00", 4);		/* 256 bytes */
	ws_decoder_init(&d, 256, 1000);
	assert_int_equal(ws_decode(&d, f, 4 + 256, &ev, &used), WS_OK);
	ws_decoder_init(&d, 255, 1000);
	assert_int_equal(ws_decode(&d, f, 4, &ev, &used), WS_TOO_BIG);
	assert_int_equal(ws_close_code(WS_TOO_BIG), 1009);
	assert_int_equal(ws_decode(&d, f, 4, &ev, &used), WS_TOO_BIG);

	/* A message grows past its limit over several frames. */
	ws_decoder_init(&d, 10, 15);
	assert_int_equal(ws_decode(&d, f, 2 + 10, &ev, &used), WS_TOO_BIG);
	ws_decoder_init(&d, 10, 15);
	memcpy(f, "\x02\x0a", 2);
	assert_int_equal(ws_decode(&d, f, 2 + 10, &ev, &used), WS_OK);
	assert_int_equal(used, 12);
	memcpy(f, "\x00\x05", 2);
	assert_int_equal(ws_decode(&d, f, 2 + 5, &ev, &used), WS_OK);
	assert_int_equal(used, 7);
	assert_int_equal(ws_decode(&d, "\x80\x01", 2, &ev, &used),
	    WS_TOO_BIG);

	/*
	 * The largest lengths do not overflow the message count. 2^63 bytes
	 * cannot be fed, so the decoder is told the first frame is over.
	 */
	ws_decoder_init(&d, UINT64_MAX, UINT64_MAX);
	assert_int_equal(ws_decode(&d,
	    "\x02\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10, &ev, &used), WS_OK);
	d.frame_left = 0;
	d.in_frame = false;
	assert_int_equal(ws_decode(&d,
	    "\x80\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10, &ev, &used),
	    WS_OK);
	/* One byte short of two such frames. */
	ws_decoder_init(&d, UINT64_MAX, UINT64_MAX - 2);
	assert_int_equal(ws_decode(&d,
	    "\x02\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10, &ev, &used), WS_OK);
	d.frame_left = 0;
	d.in_frame = false;
	assert_int_equal(ws_decode(&d,
	    "\x80\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10, &ev, &used),
	    WS_TOO_BIG);
}

static void
test_close(void **state)
{
	static const uint16_t ok[] = { 1000, 1001, 1003, 1007, 1011, 1014,
	    3000, 4999 };
	struct ws_decoder d = decoder();
	struct ws_event ev;
	size_t used;

	(void)state;
	assert_int_equal(ws_decode(&d, "\x88\x00", 2, &ev, &used), WS_OK);
	assert_int_equal(ev.type, WS_EV_CLOSE);
	assert_int_equal(ev.close_code, WS_CLOSE_NO_STATUS);
	assert_int_equal(ev.close_reason.len, 0);
	/* Nothing may follow a close. */
	assert_int_equal(ws_decode(&d, "\x8a\x00", 2, &ev, &used),
	    WS_PROTOCOL);

	for (size_t i = 0; i < NELEM(ok); i++) {
		uint8_t f[4] = { 0x88, 0x02, (uint8_t)(ok[i] >> 8),
		    (uint8_t)ok[i] };

		assert_int_equal(decode1(f, 4, &ev, &used), WS_OK);
		assert_int_equal(ev.close_code, ok[i]);
	}
	/* A reason, with a U+0000 in it, which WebSocket allows. */
	assert_int_equal(decode1("\x88\x06\x0f\xa0" "a\0\xc3\xa9", 8, &ev,
	    &used), WS_OK);
	assert_int_equal(used, 8);
	assert_int_equal(ev.close_code, 4000);
	assert_int_equal(ev.close_reason.len, 4);
	assert_memory_equal(ev.close_reason.ptr, "a\0\xc3\xa9", 4);
}

static void
test_encode_errors(void **state)
{
	uint8_t out[200], big[126];
	size_t len;

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(ws_frame_encode(out, sizeof(out), false, WS_OP_PING,
	    "", 0, rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_frame_encode(out, sizeof(out), true, WS_OP_PING,
	    big, 126, rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_frame_encode(out, sizeof(out), true, WS_OP_PONG,
	    big, 125, rfc_mask, &len), WS_OK);
	assert_int_equal(ws_frame_encode(out, sizeof(out), true,
	    (enum ws_opcode)3, "", 0, rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_frame_header_encode(out, sizeof(out), true,
	    WS_OP_BINARY, UINT64_C(1) << 63, rfc_mask, &len), WS_INVALID);

	/* Too small: the size needed is reported. */
	for (size_t cap = 0; cap < 11; cap++) {
		assert_int_equal(ws_frame_encode(out, cap, true, WS_OP_BINARY,
		    "Hello", 5, rfc_mask, &len), WS_NO_SPACE);
		assert_int_equal(len, 11);
	}
	assert_int_equal(ws_frame_header_encode(NULL, 0, true, WS_OP_BINARY,
	    70000, rfc_mask, &len), WS_NO_SPACE);
	assert_int_equal(len, 14);
}

static void
test_close_encode(void **state)
{
	uint8_t out[200], reason[124];
	struct ws_frame_header h;
	size_t len;

	(void)state;
	assert_int_equal(ws_close_encode(out, sizeof(out), 1000, "bye", 3,
	    rfc_mask, &len), WS_OK);
	assert_int_equal(len, 6 + 5);
	assert_int_equal(ws_frame_header_decode(out, len, &h), WS_OK);
	assert_int_equal(h.opcode, WS_OP_CLOSE);
	ws_mask(out + 6, 5, rfc_mask, 0);
	assert_memory_equal(out + 6, "\x03\xe8" "bye", 5);

	assert_int_equal(ws_close_encode(out, sizeof(out), 0, NULL, 0,
	    rfc_mask, &len), WS_OK);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "\x88\x80\x37\xfa\x21\x3d", 6);

	memset(reason, 'r', sizeof(reason));
	assert_int_equal(ws_close_encode(out, sizeof(out), 1002, reason, 123,
	    rfc_mask, &len), WS_OK);
	assert_int_equal(ws_close_encode(out, sizeof(out), 1002, reason, 124,
	    rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_close_encode(out, sizeof(out), 1005, NULL, 0,
	    rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_close_encode(out, sizeof(out), 0, "x", 1,
	    rfc_mask, &len), WS_INVALID);
	assert_int_equal(ws_close_encode(out, sizeof(out), 1000, "\xff", 1,
	    rfc_mask, &len), WS_INVALID);
}

static void
test_mask_in_pieces(void **state)
{
	uint8_t a[37], b[37];

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	ws_mask(a, sizeof(a), rfc_mask, 0);
	ws_mask(b, 5, rfc_mask, 0);
	ws_mask(b + 5, 11, rfc_mask, 5);
	ws_mask(b + 16, 21, rfc_mask, 16);
	assert_memory_equal(a, b, sizeof(a));
	ws_mask(a, sizeof(a), rfc_mask, 0);
	assert_int_equal(a[9], 63);
}

static struct ws_upgrade
sample_upgrade(void)
{
	static const struct ws_header extra[] = {
		{ "User-Agent", "iotbridge/0.1" },
	};
	struct ws_upgrade u;

	memset(&u, 0, sizeof(u));
	u.host = "abc-ats.iot.eu-west-1.amazonaws.com";
	u.port = 443;
	u.target = "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00";
	u.protocol = "mqtt";
	u.headers = extra;
	u.nheaders = 1;
	memcpy(u.nonce, "the sample nonce", WS_NONCE_LEN);
	return u;
}

static void
test_upgrade_request(void **state)
{
	static const char want[] =
	    "GET /mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00 "
	    "HTTP/1.1\r\n"
	    "Host: abc-ats.iot.eu-west-1.amazonaws.com\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: mqtt\r\n"
	    "User-Agent: iotbridge/0.1\r\n"
	    "\r\n";
	struct ws_upgrade u = sample_upgrade();
	char out[512];
	size_t len;

	(void)state;
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, &len), WS_OK);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));

	for (size_t cap = 0; cap <= len; cap++) {
		size_t need = 0;

		assert_int_equal(ws_upgrade_request(cap ? out : NULL, cap, &u,
		    &need), WS_NO_SPACE);
		assert_int_equal(need, len);
	}

	/* Another port appears in Host; no subprotocol, no extra headers. */
	u.port = 8443;
	u.protocol = NULL;
	u.nheaders = 0;
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, NULL), WS_OK);
	assert_non_null(strstr(out,
	    "\r\nHost: abc-ats.iot.eu-west-1.amazonaws.com:8443\r\n"));
	assert_null(strstr(out, "Sec-WebSocket-Protocol"));
	u.port = 0;
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, NULL), WS_OK);
	assert_non_null(strstr(out, "amazonaws.com\r\n"));
	u.port = 1;
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, NULL), WS_OK);
	assert_non_null(strstr(out, "amazonaws.com:1\r\n"));
}

static void
test_upgrade_request_invalid(void **state)
{
	struct ws_header h;
	struct ws_upgrade u;
	char out[512];

	(void)state;
#define INVALID(stmt) do {						\
	u = sample_upgrade();						\
	stmt;								\
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, NULL), \
	    WS_INVALID);						\
} while (0)
	INVALID(u.host = "a.example.com\r\nX-Evil: 1");
	INVALID(u.host = "a b");
	INVALID(u.host = "");
	INVALID(u.host = "a/b");
	INVALID(u.target = "mqtt");
	INVALID(u.target = "/mqtt x");
	INVALID(u.target = "/mqtt\r\n");
	INVALID(u.target = NULL);
	INVALID(u.protocol = "mq tt");
	INVALID(u.protocol = "");
	INVALID((h = (struct ws_header){ "Bad Name", "v" }, u.headers = &h));
	INVALID((h = (struct ws_header){ "", "v" }, u.headers = &h));
	INVALID((h = (struct ws_header){ "X", "a\r\nb: c" }, u.headers = &h));
	INVALID((h = (struct ws_header){ "X", NULL }, u.headers = &h));
	INVALID(u.headers = NULL);
#undef INVALID
	/* Spaces and tabs inside a value are fine. */
	u = sample_upgrade();
	h = (struct ws_header){ "X-Note", "a b\tc" };
	u.headers = &h;
	assert_int_equal(ws_upgrade_request(out, sizeof(out), &u, NULL), WS_OK);
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(ws_strerror(WS_OK), "success");
	assert_string_equal(ws_strerror(WS_TOO_BIG),
	    "websocket frame or message too big");
	assert_string_equal(ws_strerror((enum ws_status)99),
	    "unknown ws status");
	for (int st = WS_OK; st <= WS_CRYPTO; st++)
		assert_string_not_equal(ws_strerror((enum ws_status)st),
		    "unknown ws status");
	assert_int_equal(ws_close_code(WS_OK), 0);
	assert_int_equal(ws_close_code(WS_NEED_MORE), 0);
	assert_int_equal(ws_close_code(WS_BAD_DATA), 1007);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_unmasked_text_is_refused),
		cmocka_unit_test(test_rfc_single_frame_binary),
		cmocka_unit_test(test_rfc_masked),
		cmocka_unit_test(test_rfc_fragmented_binary),
		cmocka_unit_test(test_rfc_ping_pong),
		cmocka_unit_test(test_rfc_lengths),
		cmocka_unit_test(test_rfc_accept_key),
		cmocka_unit_test(test_prefixes_need_more),
		cmocka_unit_test(test_stream_byte_by_byte),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_fragmentation_rules),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_close_encode),
		cmocka_unit_test(test_mask_in_pieces),
		cmocka_unit_test(test_upgrade_request),
		cmocka_unit_test(test_upgrade_request_invalid),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
