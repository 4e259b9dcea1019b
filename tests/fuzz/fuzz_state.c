/*
 * libFuzzer target for the state file decoder. Every record the callbacks
 * get is read through (ASan sees a view that overruns) and kept; then the
 * kept records are the oracle. They are encoded again, with an END, into a
 * new image, which must be byte for byte the input up to where decoding
 * stopped (the format has one encoding per content, so a salvage is exactly
 * the good prefix), must decode to the same records, and must be TRUNCATED
 * when cut at a record boundary. Any disagreement aborts. A mutated body
 * rarely keeps its CRC, so each input is also tried with every record's CRC
 * made right, which is what lets the fuzzer reach the body parsers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "base/crc32c.h"
#include "state/state.h"

#define MAX_INPUT	(1 << 16)

enum ev_kind { EV_RETAINED = 1, EV_SESSION, EV_SUB, EV_MSG, EV_QOS2 };

struct event {
	enum ev_kind	kind;
	union {
		struct state_retained	r;
		struct state_session	s;
		struct state_sub	sub;
		struct state_msg	m;
		uint16_t		pid;
	} u;
};

struct log {
	struct event	*ev;
	size_t		 n;
	size_t		 cap;
};

static int
push(struct log *l, const struct event *e)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct event *nev = realloc(l->ev, ncap * sizeof(*nev));

		if (nev == NULL)
			abort();
		l->ev = nev;
		l->cap = ncap;
	}
	l->ev[l->n++] = *e;
	return 0;
}

static int
on_retained(const struct state_retained *r, void *arg)
{
	struct event e = { .kind = EV_RETAINED, .u.r = *r };

	sink += touch(r->topic) + touch(r->payload) + r->qos;
	return push(arg, &e);
}

static int
on_session(const struct state_session *s, void *arg)
{
	struct event e = { .kind = EV_SESSION, .u.s = *s };

	sink += touch(s->id) + (unsigned)s->expiry_ms +
	    (unsigned)s->offline_ms + s->last_pid;
	return push(arg, &e);
}

static int
on_sub(const struct state_sub *s, void *arg)
{
	struct event e = { .kind = EV_SUB, .u.sub = *s };

	sink += touch(s->filter) + s->qos + s->no_local +
	    s->retain_as_published;
	return push(arg, &e);
}

static int
on_msg(const struct state_msg *m, void *arg)
{
	struct event e = { .kind = EV_MSG, .u.m = *m };

	sink += touch(m->topic) + touch(m->payload) + m->qos + m->retain +
	    m->out_state + m->pid;
	return push(arg, &e);
}

static int
on_qos2(uint16_t pid, void *arg)
{
	struct event e = { .kind = EV_QOS2, .u.pid = pid };

	sink += pid;
	return push(arg, &e);
}

static const struct state_callbacks cbs = {
	on_retained, on_session, on_sub, on_msg, on_qos2,
};

static enum state_status
encode(uint8_t *out, size_t cap, const struct event *e, size_t *n)
{
	switch (e->kind) {
	case EV_RETAINED:
		return state_retained_encode(out, cap, &e->u.r, n);
	case EV_SESSION:
		return state_session_encode(out, cap, &e->u.s, n);
	case EV_SUB:
		return state_sub_encode(out, cap, &e->u.sub, n);
	case EV_MSG:
		return state_msg_encode(out, cap, &e->u.m, n);
	case EV_QOS2:
		return state_qos2_encode(out, cap, e->u.pid, n);
	}
	abort();
}

static int
event_eq(const struct event *a, const struct event *b)
{
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case EV_RETAINED:
		return buf_view_eq(a->u.r.topic, b->u.r.topic) &&
		    buf_view_eq(a->u.r.payload, b->u.r.payload) &&
		    a->u.r.qos == b->u.r.qos;
	case EV_SESSION:
		return buf_view_eq(a->u.s.id, b->u.s.id) &&
		    a->u.s.expiry_ms == b->u.s.expiry_ms &&
		    a->u.s.offline_ms == b->u.s.offline_ms &&
		    a->u.s.last_pid == b->u.s.last_pid;
	case EV_SUB:
		return buf_view_eq(a->u.sub.filter, b->u.sub.filter) &&
		    a->u.sub.qos == b->u.sub.qos &&
		    a->u.sub.no_local == b->u.sub.no_local &&
		    a->u.sub.retain_as_published ==
		    b->u.sub.retain_as_published;
	case EV_MSG:
		return buf_view_eq(a->u.m.topic, b->u.m.topic) &&
		    buf_view_eq(a->u.m.payload, b->u.m.payload) &&
		    a->u.m.qos == b->u.m.qos && a->u.m.retain == b->u.m.retain &&
		    a->u.m.out_state == b->u.m.out_state &&
		    a->u.m.pid == b->u.m.pid;
	case EV_QOS2:
		return a->u.pid == b->u.pid;
	}
	return 0;
}

/* Encode the events and an END; *starts gets each record's offset. */
static uint8_t *
build(const struct log *l, size_t *len, size_t *starts)
{
	size_t cap = STATE_HEADER_SIZE + 17, n, i;
	uint8_t *img;

	for (i = 0; i < l->n; i++) {
		check(encode(NULL, 0, &l->ev[i], &n) == STATE_NO_SPACE);
		cap += n;
	}
	if ((img = malloc(cap)) == NULL)
		abort();
	check(state_header_encode(img, cap, &n) == STATE_OK);
	*len = n;
	for (i = 0; i < l->n; i++) {
		starts[i] = *len;
		check(encode(img + *len, cap - *len, &l->ev[i], &n) ==
		    STATE_OK);
		*len += n;
	}
	starts[l->n] = *len;
	check(state_end_encode(img + *len, cap - *len, l->n, &n) == STATE_OK);
	*len += n;
	check(*len == cap);
	return img;
}

static void
run(const uint8_t *data, size_t size)
{
	struct log first = { 0 }, again = { 0 };
	struct state_report rep;
	enum state_status st;
	size_t *starts = NULL, len, i;
	uint8_t *img = NULL;

	st = state_decode(data, size, &cbs, &first, &rep);
	check(st != STATE_NO_SPACE && st != STATE_INVALID &&
	    st != STATE_ABORTED);
	check(rep.records == first.n && rep.bad_offset <= size);
	check(st != STATE_OK || rep.bad_offset == size);
	if (st == STATE_BAD_MAGIC || st == STATE_BAD_VERSION) {
		check(first.n == 0 && rep.bad_offset < STATE_HEADER_SIZE);
		goto done;
	}
	check(rep.bad_offset >= STATE_HEADER_SIZE);

	/* The good prefix, re-encoded, is the input's own bytes. */
	if ((starts = calloc(first.n + 1, sizeof(*starts))) == NULL)
		abort();
	img = build(&first, &len, starts);
	if (st == STATE_OK)
		check(len == size && memcmp(img, data, size) == 0);
	else if (len == rep.bad_offset)		/* bytes after END */
		check(st == STATE_MALFORMED && memcmp(img, data, len) == 0);
	else
		check(starts[first.n] == rep.bad_offset &&
		    memcmp(img, data, rep.bad_offset) == 0);

	/* It decodes to the same records. */
	check(state_decode(img, len, &cbs, &again, &rep) == STATE_OK);
	check(rep.records == first.n && again.n == first.n);
	for (i = 0; i < first.n; i++)
		check(event_eq(&first.ev[i], &again.ev[i]));

	/* Cut at a record boundary, it is truncated after that record (the
	 * first and last few: a file of tiny records would make it quadratic). */
	for (i = 0; i <= first.n; i++) {
		if (i > 8 && i + 8 < first.n)
			continue;
		check(state_decode(img, starts[i], NULL, NULL, &rep) ==
		    STATE_TRUNCATED);
		check(rep.records == i && rep.bad_offset == starts[i]);
	}
done:
	free(img);
	free(starts);
	free(first.ev);
	free(again.ev);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Walk the records by their lengths and make each CRC right; false when
 * there was nothing to change. */
static bool
fix_crcs(uint8_t *p, size_t size)
{
	size_t pos = STATE_HEADER_SIZE, blen;
	uint32_t crc;
	bool changed = false;

	while (pos <= size && size - pos >= 9) {
		blen = get_le32(p + pos);
		if (blen > size - pos - 9)
			break;
		crc = crc32c_update(0, p + pos + 8, blen + 1);
		if (get_le32(p + pos + 4) != crc) {
			p[pos + 4] = (uint8_t)crc;
			p[pos + 5] = (uint8_t)(crc >> 8);
			p[pos + 6] = (uint8_t)(crc >> 16);
			p[pos + 7] = (uint8_t)(crc >> 24);
			changed = true;
		}
		pos += 9 + blen;
	}
	return changed;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size > MAX_INPUT)
		return 0;
	run(data, size);
	if ((copy = malloc(size + 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(copy, data, size);
	if (fix_crcs(copy, size))
		run(copy, size);
	free(copy);
	return 0;
}
