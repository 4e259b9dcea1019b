/*
 * libFuzzer target for the WebSocket frame decoder (ws.c). The first byte
 * picks the decoder's limits and a chunking pattern; the rest is a server's
 * byte stream. It is decoded twice, once offered whole and once in small
 * pieces with unconsumed bytes carried over, as the daemon does; both runs
 * must tell the same story (same data bytes, same control events at the same
 * places, same final status), every view must lie inside the input, and
 * every OK must make progress. Inputs are capped so the quadratic carry-over
 * stays fast.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws.h"

#define INPUT_MAX	8192

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct transcript {
	uint8_t		data[INPUT_MAX];
	size_t		dlen;
	uint8_t		log[INPUT_MAX * 12];	/* <= 19 bytes per 2 of input */
	size_t		llen;
	enum ws_status	last;
	size_t		consumed;
};

static void
log_bytes(struct transcript *t, const void *p, size_t n)
{
	if (t->llen + n > sizeof(t->log))
		abort();
	memcpy(t->log + t->llen, p, n);
	t->llen += n;
}

static void
record(struct transcript *t, const struct ws_event *ev, const uint8_t *in,
    size_t inlen)
{
	const uint8_t *end = in + inlen;
	uint8_t type = (uint8_t)ev->type;

	if (ev->payload.len > 0 && (ev->payload.ptr < in ||
	    ev->payload.ptr + ev->payload.len > end))
		abort();
	if (ev->type == WS_EV_DATA) {
		if (t->dlen + ev->payload.len > sizeof(t->data))
			abort();
		if (ev->payload.len > 0)
			memcpy(t->data + t->dlen, ev->payload.ptr,
			    ev->payload.len);
		t->dlen += ev->payload.len;
		if (!ev->message_end)
			return;
		type = 0xee;
	} else if (ev->type == WS_EV_CLOSE) {
		if (ev->close_reason.len > 0 && (ev->close_reason.ptr < in ||
		    ev->close_reason.ptr + ev->close_reason.len > end))
			abort();
		if (ev->close_code != WS_CLOSE_NO_STATUS &&
		    !ws_close_code_valid(ev->close_code))
			abort();
	}
	if (ev->payload.len > WS_CONTROL_MAX && ev->type != WS_EV_DATA)
		abort();
	log_bytes(t, &type, 1);
	log_bytes(t, &t->dlen, sizeof(t->dlen));
	if (ev->type != WS_EV_DATA) {
		log_bytes(t, &ev->payload.len, sizeof(ev->payload.len));
		log_bytes(t, ev->payload.ptr, ev->payload.len);
		log_bytes(t, &ev->close_code, sizeof(ev->close_code));
	}
}

/* Feed in pieces of 1..7 bytes (0: all at once), carrying bytes over. */
static void
run(const uint8_t *in, size_t len, uint8_t cfg, bool whole,
    struct transcript *t)
{
	static uint8_t acc[INPUT_MAX];
	uint64_t limit = (uint64_t)1 << (cfg & 15);
	struct ws_decoder d;
	size_t alen = 0, fed = 0, step = cfg >> 4;

	ws_decoder_init(&d, limit, limit * 2);
	memset(t, 0, sizeof(*t));
	t->last = WS_NEED_MORE;
	while (fed < len) {
		size_t n = whole ? len : 1 + (step++ % 7);
		struct ws_event ev;
		size_t used;
		enum ws_status st;

		if (n > len - fed)
			n = len - fed;
		memcpy(acc + alen, in + fed, n);
		alen += n;
		fed += n;
		while ((st = ws_decode(&d, acc, alen, &ev, &used)) == WS_OK) {
			if (used == 0 || used > alen)
				abort();
			record(t, &ev, acc, alen);
			t->consumed += used;
			memmove(acc, acc + used, alen - used);
			alen -= used;
		}
		if (used != 0)
			abort();
		t->last = st;
		if (st != WS_NEED_MORE) {
			if (ws_close_code(st) == 0)
				abort();
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct transcript a, b;

	if (size < 1 || size - 1 > INPUT_MAX)
		return 0;
	run(data + 1, size - 1, data[0], true, &a);
	run(data + 1, size - 1, data[0], false, &b);
	if (a.last != b.last || a.consumed != b.consumed || a.dlen != b.dlen ||
	    memcmp(a.data, b.data, a.dlen) != 0 || a.llen != b.llen ||
	    memcmp(a.log, b.log, a.llen) != 0)
		abort();
	return 0;
}
