/*
 * Unit tests for state/state: a golden file whose bytes were laid out by hand
 * from docs/state-format.md, a round trip of retained messages and sessions
 * with their subscriptions, messages and QoS 2 ids, every strict prefix and
 * every flipped bit of a valid file, misplaced and malformed records, the END
 * count, encoder sizing and refusals, and callbacks that stop the decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "state/state.h"
#include "base/crc32c.h"

#define MAX_EVENTS	64
#define IMAGE_CAP	16384

enum ev_kind { EV_RETAINED = 1, EV_SESSION, EV_SUB, EV_MSG, EV_QOS2 };

struct event {
	enum ev_kind		kind;
	struct state_retained	r;
	struct state_session	s;
	struct state_sub	sub;
	struct state_msg	m;
	uint16_t		pid;
};

/* A file being built, with where each record starts. */
struct image {
	uint8_t	buf[IMAGE_CAP];
	size_t	len;
	size_t	start[MAX_EVENTS + 2];
	size_t	nrec;		/* END included */
};

struct recorder {
	struct event	ev[MAX_EVENTS];
	size_t		n;
	size_t		calls;
	size_t		abort_at;	/* the call that returns -1 */
};

static struct buf_view
sv(const char *s)
{
	return buf_cstr(s);
}

static uint8_t big_payload[1000];

static struct event fixture[] = {
	{ .kind = EV_RETAINED, .r = { .topic = { (const uint8_t *)"home/temp", 9 },
	    .payload = { (const uint8_t *)"21.5", 4 }, .qos = 1 } },
	{ .kind = EV_RETAINED, .r = { .topic = { (const uint8_t *)"$SYS/x", 6 },
	    .payload = { NULL, 0 }, .qos = 0 } },
	{ .kind = EV_RETAINED, .r = { .topic = { (const uint8_t *)"big", 3 },
	    .payload = { big_payload, sizeof(big_payload) }, .qos = 2 } },
	{ .kind = EV_SESSION, .s = { .id = { (const uint8_t *)"esp-12", 6 },
	    .expiry_ms = 3600000, .offline_ms = 1234, .last_pid = 65535 } },
	{ .kind = EV_SUB, .sub = { .filter = { (const uint8_t *)"cmd/#", 5 },
	    .qos = 1 } },
	{ .kind = EV_SUB, .sub = { .filter = { (const uint8_t *)"+/led", 5 },
	    .qos = 2, .no_local = true, .retain_as_published = true } },
	{ .kind = EV_MSG, .m = { .topic = { (const uint8_t *)"cmd/a", 5 },
	    .payload = { (const uint8_t *)"on", 2 }, .qos = 2, .out_state = 2,
	    .pid = 7 } },
	{ .kind = EV_MSG, .m = { .topic = { (const uint8_t *)"cmd/b", 5 },
	    .payload = { (const uint8_t *)"off", 3 }, .qos = 1, .retain = true,
	    .out_state = 1, .pid = 8 } },
	{ .kind = EV_MSG, .m = { .topic = { (const uint8_t *)"cmd/c", 5 },
	    .payload = { NULL, 0 }, .qos = 2, .out_state = 0, .pid = 0 } },
	{ .kind = EV_QOS2, .pid = 1 },
	{ .kind = EV_QOS2, .pid = 65535 },
	{ .kind = EV_SESSION, .s = { .id = { (const uint8_t *)"\xc3\xa9t\xc3\xa9", 5 },
	    .expiry_ms = UINT64_MAX, .offline_ms = 0, .last_pid = 0 } },
	{ .kind = EV_RETAINED, .r = { .topic = { (const uint8_t *)"/", 1 },
	    .payload = { (const uint8_t *)"x", 1 }, .qos = 0 } },
	{ .kind = EV_SUB, .sub = { .filter = { (const uint8_t *)"#", 1 },
	    .qos = 0, .retain_as_published = true } },
	{ .kind = EV_SESSION, .s = { .id = { (const uint8_t *)"empty", 5 },
	    .expiry_ms = 1 } },
};
#define NFIXTURE	(sizeof(fixture) / sizeof(fixture[0]))

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
image_header(struct image *img)
{
	size_t n;

	img->len = img->nrec = 0;
	assert_int_equal(state_header_encode(img->buf, sizeof(img->buf), &n),
	    STATE_OK);
	assert_int_equal(n, STATE_HEADER_SIZE);
	img->len = n;
}

static enum state_status
encode_event(uint8_t *out, size_t cap, const struct event *e, size_t *n)
{
	switch (e->kind) {
	case EV_RETAINED:
		return state_retained_encode(out, cap, &e->r, n);
	case EV_SESSION:
		return state_session_encode(out, cap, &e->s, n);
	case EV_SUB:
		return state_sub_encode(out, cap, &e->sub, n);
	case EV_MSG:
		return state_msg_encode(out, cap, &e->m, n);
	case EV_QOS2:
		return state_qos2_encode(out, cap, e->pid, n);
	}
	return STATE_INVALID;
}

static void
image_event(struct image *img, const struct event *e)
{
	size_t n;

	img->start[img->nrec++] = img->len;
	assert_int_equal(encode_event(img->buf + img->len,
	    sizeof(img->buf) - img->len, e, &n), STATE_OK);
	img->len += n;
}

static void
image_end(struct image *img, uint64_t count)
{
	size_t n;

	img->start[img->nrec++] = img->len;
	assert_int_equal(state_end_encode(img->buf + img->len,
	    sizeof(img->buf) - img->len, count, &n), STATE_OK);
	assert_int_equal(n, 17);
	img->len += n;
}

/* A record with a correct length and CRC around any body at all. */
static void
image_raw(struct image *img, uint8_t kind, const void *body, size_t n)
{
	uint8_t *p = img->buf + img->len;

	assert_true(n + 9 <= sizeof(img->buf) - img->len);
	img->start[img->nrec++] = img->len;
	put_le32(p, (uint32_t)n);
	p[8] = kind;
	if (n > 0)
		memcpy(p + 9, body, n);
	put_le32(p + 4, crc32c_update(0, p + 8, n + 1));
	img->len += 9 + n;
}

static void
image_fixture(struct image *img)
{
	size_t i;

	image_header(img);
	for (i = 0; i < NFIXTURE; i++)
		image_event(img, &fixture[i]);
	image_end(img, NFIXTURE);
}

static int
rec_push(struct recorder *rc, const struct event *e)
{
	if (rc->calls++ == rc->abort_at)
		return -1;
	assert_true(rc->n < MAX_EVENTS);
	rc->ev[rc->n++] = *e;
	return 0;
}

static int
on_retained(const struct state_retained *r, void *arg)
{
	struct event e = { .kind = EV_RETAINED, .r = *r };

	return rec_push(arg, &e);
}

static int
on_session(const struct state_session *s, void *arg)
{
	struct event e = { .kind = EV_SESSION, .s = *s };

	return rec_push(arg, &e);
}

static int
on_sub(const struct state_sub *s, void *arg)
{
	struct event e = { .kind = EV_SUB, .sub = *s };

	return rec_push(arg, &e);
}

static int
on_msg(const struct state_msg *m, void *arg)
{
	struct event e = { .kind = EV_MSG, .m = *m };

	return rec_push(arg, &e);
}

static int
on_qos2(uint16_t pid, void *arg)
{
	struct event e = { .kind = EV_QOS2, .pid = pid };

	return rec_push(arg, &e);
}

static const struct state_callbacks recording = {
	on_retained, on_session, on_sub, on_msg, on_qos2,
};

static enum state_status
decode(const uint8_t *buf, size_t len, struct recorder *rc,
    struct state_report *rep)
{
	memset(rc, 0, sizeof(*rc));
	rc->abort_at = SIZE_MAX;
	memset(rep, 0xa5, sizeof(*rep));
	return state_decode(buf, len, &recording, rc, rep);
}

static void
assert_event_eq(const struct event *a, const struct event *b)
{
	assert_int_equal(a->kind, b->kind);
	switch (a->kind) {
	case EV_RETAINED:
		assert_true(buf_view_eq(a->r.topic, b->r.topic));
		assert_true(buf_view_eq(a->r.payload, b->r.payload));
		assert_int_equal(a->r.qos, b->r.qos);
		break;
	case EV_SESSION:
		assert_true(buf_view_eq(a->s.id, b->s.id));
		assert_true(a->s.expiry_ms == b->s.expiry_ms);
		assert_true(a->s.offline_ms == b->s.offline_ms);
		assert_int_equal(a->s.last_pid, b->s.last_pid);
		break;
	case EV_SUB:
		assert_true(buf_view_eq(a->sub.filter, b->sub.filter));
		assert_int_equal(a->sub.qos, b->sub.qos);
		assert_int_equal(a->sub.no_local, b->sub.no_local);
		assert_int_equal(a->sub.retain_as_published,
		    b->sub.retain_as_published);
		break;
	case EV_MSG:
		assert_true(buf_view_eq(a->m.topic, b->m.topic));
		assert_true(buf_view_eq(a->m.payload, b->m.payload));
		assert_int_equal(a->m.qos, b->m.qos);
		assert_int_equal(a->m.retain, b->m.retain);
		assert_int_equal(a->m.out_state, b->m.out_state);
		assert_int_equal(a->m.pid, b->m.pid);
		break;
	case EV_QOS2:
		assert_int_equal(a->pid, b->pid);
		break;
	}
}

/* The callbacks saw exactly the first n fixture records. */
static void
assert_saw_prefix(const struct recorder *rc, size_t n)
{
	size_t i;

	assert_int_equal(rc->n, n);
	for (i = 0; i < n; i++)
		assert_event_eq(&fixture[i], &rc->ev[i]);
}

static const uint8_t golden[] = {
	'I', 'O', 'T', 'B', 'S', 'T', 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
	/* RETAINED qos 1 "a/b" "hi" */
	0x0c, 0x00, 0x00, 0x00, 0xbb, 0x58, 0x95, 0x33,
	0x01, 0x01, 0x03, 0x00, 0x61, 0x2f, 0x62, 0x02,
	0x00, 0x00, 0x00, 0x68, 0x69,
	/* SESSION expiry 60000 offline 1500 last_pid 9 "c1" */
	0x16, 0x00, 0x00, 0x00, 0x85, 0x39, 0xbc, 0x80,
	0x02, 0x60, 0xea, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0xdc, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x09, 0x00, 0x02, 0x00, 0x63, 0x31,
	/* SUB qos 2 no_local "a/+" */
	0x07, 0x00, 0x00, 0x00, 0x37, 0x92, 0xcf, 0x82,
	0x03, 0x02, 0x01, 0x03, 0x00, 0x61, 0x2f, 0x2b,
	/* MSG qos 2 retain released pid 0x0304 "t" "x" */
	0x0d, 0x00, 0x00, 0x00, 0x59, 0x04, 0xe7, 0x11,
	0x04, 0x02, 0x01, 0x02, 0x04, 0x03, 0x01, 0x00,
	0x74, 0x01, 0x00, 0x00, 0x00, 0x78,
	/* QOS2 5 */
	0x02, 0x00, 0x00, 0x00, 0xb5, 0x6c, 0xd3, 0x06,
	0x05, 0x05, 0x00,
	/* END 5 */
	0x08, 0x00, 0x00, 0x00, 0xbb, 0x8f, 0x9a, 0xe0,
	0x06, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00,
};

static void
test_golden(void **state)
{
	const struct event ev[] = {
		{ .kind = EV_RETAINED, .r = { .topic = sv("a/b"),
		    .payload = sv("hi"), .qos = 1 } },
		{ .kind = EV_SESSION, .s = { .id = sv("c1"), .expiry_ms = 60000,
		    .offline_ms = 1500, .last_pid = 9 } },
		{ .kind = EV_SUB, .sub = { .filter = sv("a/+"), .qos = 2,
		    .no_local = true } },
		{ .kind = EV_MSG, .m = { .topic = sv("t"), .payload = sv("x"),
		    .qos = 2, .retain = true, .out_state = 2, .pid = 0x0304 } },
		{ .kind = EV_QOS2, .pid = 5 },
	};
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	size_t i;

	assert_non_null(img);
	image_header(img);
	for (i = 0; i < 5; i++)
		image_event(img, &ev[i]);
	image_end(img, 5);
	assert_int_equal(img->len, sizeof(golden));
	assert_memory_equal(img->buf, golden, sizeof(golden));

	assert_int_equal(decode(golden, sizeof(golden), &rc, &rep), STATE_OK);
	assert_int_equal(rc.n, 5);
	for (i = 0; i < 5; i++)
		assert_event_eq(&ev[i], &rc.ev[i]);
	assert_true(rep.records == 5);
	assert_int_equal(rep.bad_offset, sizeof(golden));
	free(img);
}

static void
test_round_trip(void **state)
{
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;

	assert_non_null(img);
	image_fixture(img);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep), STATE_OK);
	assert_saw_prefix(&rc, NFIXTURE);
	assert_true(rep.records == NFIXTURE);
	assert_int_equal(rep.bad_offset, img->len);
	/* the views point into the image, not into the encoder's inputs */
	assert_ptr_equal(rc.ev[0].r.topic.ptr, img->buf + img->start[0] + 9 + 3);

	/* a pure check needs no callbacks and no report */
	assert_int_equal(state_decode(img->buf, img->len, NULL, NULL, NULL),
	    STATE_OK);
	free(img);
}

static void
test_every_prefix(void **state)
{
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	size_t cut, whole;

	assert_non_null(img);
	image_fixture(img);
	for (cut = 0; cut < img->len; cut++) {
		enum state_status st = decode(img->buf, cut, &rc, &rep);

		if (cut < STATE_HEADER_SIZE) {
			assert_int_equal(st, STATE_BAD_MAGIC);
			assert_int_equal(rc.n, 0);
			continue;
		}
		assert_int_equal(st, STATE_TRUNCATED);
		/* records wholly inside the cut, END excluded */
		for (whole = 0; whole < NFIXTURE &&
		    img->start[whole + 1] <= cut; whole++)
			;
		assert_saw_prefix(&rc, whole);
		assert_true(rep.records == whole);
		assert_int_equal(rep.bad_offset, img->start[whole]);
	}
	free(img);
}

static void
test_every_bit_flip(void **state)
{
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	size_t pos, rec;
	int bit;

	assert_non_null(img);
	image_fixture(img);
	rec = 0;
	for (pos = 0; pos < img->len; pos++) {
		while (rec + 1 < img->nrec && img->start[rec + 1] <= pos)
			rec++;
		for (bit = 0; bit < 8; bit++) {
			enum state_status st;

			img->buf[pos] ^= (uint8_t)(1u << bit);
			st = decode(img->buf, img->len, &rc, &rep);
			img->buf[pos] ^= (uint8_t)(1u << bit);

			if (pos < 8) {
				assert_int_equal(st, STATE_BAD_MAGIC);
				assert_int_equal(rc.n, 0);
				continue;
			}
			if (pos < STATE_HEADER_SIZE) {
				assert_int_equal(st, STATE_BAD_VERSION);
				assert_int_equal(rc.n, 0);
				continue;
			}
			if (pos < img->start[rec] + 4) {
				/* the length: past the end, over the cap,
				 * or framing other bytes than were summed */
				assert_true(st == STATE_TRUNCATED ||
				    st == STATE_MALFORMED ||
				    st == STATE_BAD_CRC);
			} else {
				assert_int_equal(st, STATE_BAD_CRC);
			}
			assert_saw_prefix(&rc, rec);
			assert_int_equal(rep.bad_offset, img->start[rec]);
		}
	}
	free(img);
}

static void
test_misplaced(void **state)
{
	static const uint8_t sub[] = { 1, 0, 1, 0, '#' };
	static const uint8_t qos2[] = { 9, 0 };
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	int kind;

	assert_non_null(img);
	/* SUB, MSG, QOS2 with no SESSION before them, even after a RETAINED */
	for (kind = 3; kind <= 5; kind++) {
		image_header(img);
		image_event(img, &fixture[0]);
		switch (kind) {
		case 3:
			image_raw(img, 3, sub, sizeof(sub));
			break;
		case 4:
			image_event(img, &(struct event){ .kind = EV_MSG,
			    .m = { .topic = sv("t"), .qos = 1 } });
			break;
		default:
			image_raw(img, 5, qos2, sizeof(qos2));
			break;
		}
		image_end(img, 2);
		assert_int_equal(decode(img->buf, img->len, &rc, &rep),
		    STATE_MALFORMED);
		assert_saw_prefix(&rc, 1);
		assert_int_equal(rep.bad_offset, img->start[1]);
	}

	/* once a SESSION was seen, a RETAINED in between does not matter */
	image_header(img);
	image_event(img, &fixture[3]);
	image_event(img, &fixture[0]);
	image_raw(img, 5, qos2, sizeof(qos2));
	image_end(img, 3);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep), STATE_OK);
	assert_int_equal(rc.n, 3);
	assert_int_equal(rc.ev[2].pid, 9);

	/* a record after END, then a second END */
	image_header(img);
	image_event(img, &fixture[0]);
	image_end(img, 1);
	image_event(img, &fixture[1]);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_MALFORMED);
	assert_saw_prefix(&rc, 1);
	assert_int_equal(rep.bad_offset, img->start[2]);
	img->len = img->start[2];
	image_end(img, 1);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_MALFORMED);
	assert_int_equal(rep.bad_offset, img->start[2]);

	/* one stray byte after END */
	img->len = img->start[2];
	img->buf[img->len++] = 0;
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_MALFORMED);
	assert_int_equal(rep.bad_offset, img->start[2]);
	free(img);
}

static void
test_end(void **state)
{
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	static const uint64_t wrong[] = { 0, 1, 3, UINT64_MAX };
	static const uint8_t long_end[9] = { 2 };
	size_t i;

	assert_non_null(img);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		image_header(img);
		image_event(img, &fixture[0]);
		image_event(img, &fixture[1]);
		image_end(img, wrong[i]);
		assert_int_equal(decode(img->buf, img->len, &rc, &rep),
		    STATE_MALFORMED);
		assert_saw_prefix(&rc, 2);
		assert_int_equal(rep.bad_offset, img->start[2]);
	}

	/* no END at all: everything before was still delivered */
	img->len = img->start[2];
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_TRUNCATED);
	assert_saw_prefix(&rc, 2);
	assert_true(rep.records == 2);
	assert_int_equal(rep.bad_offset, img->start[2]);

	/* a header alone is an empty file missing its END */
	assert_int_equal(decode(img->buf, STATE_HEADER_SIZE, &rc, &rep),
	    STATE_TRUNCATED);

	/* an END body one byte too long */
	img->len = img->start[2];
	img->nrec = 2;
	image_raw(img, 6, long_end, sizeof(long_end));
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_MALFORMED);

	/* the smallest valid file */
	image_header(img);
	image_end(img, 0);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep), STATE_OK);
	assert_int_equal(rc.n, 0);
	free(img);
}

/* One body each that parses but breaks a rule, or does not parse exactly. */
static void
test_bad_bodies(void **state)
{
	static const struct {
		uint8_t	kind;
		uint8_t	body[32];
		size_t	len;
	} bad[] = {
		{ 0, { 0 }, 1 },				/* unknown kinds */
		{ 7, { 0 }, 1 },
		{ 255, { 0 }, 0 },
		{ 1, { 3, 1, 0, 'a', 0, 0, 0, 0 }, 8 },		/* qos 3 */
		{ 1, { 0, 1, 0, '#', 0, 0, 0, 0 }, 8 },		/* wildcard */
		{ 1, { 0, 0, 0, 0, 0, 0, 0 }, 7 },		/* empty topic */
		{ 1, { 0, 1, 0, 'a', 0, 0, 0, 0, 0 }, 9 },	/* trailing */
		{ 1, { 0, 1, 0, 'a', 1, 0, 0, 0 }, 8 },		/* short payload */
		{ 1, { 0, 2, 0, 'a' }, 4 },			/* short topic */
		{ 2, { [18] = 0, 0 }, 20 },			/* empty id */
		{ 2, { [18] = 1, 0, 0xff }, 21 },		/* bad UTF-8 */
		{ 2, { [18] = 1, 0, 0x00 }, 21 },		/* U+0000 */
		{ 2, { [18] = 1, 0, 'a', 'b' }, 22 },		/* trailing */
		{ 3, { 3, 0, 1, 0, '#' }, 5 },			/* qos 3 */
		{ 3, { 0, 4, 1, 0, '#' }, 5 },			/* options */
		{ 3, { 0, 0, 3, 0, 'a', '#', 'b' }, 7 },	/* a#b */
		{ 3, { 0, 0, 3, 0, '#', '/', 'a' }, 7 },	/* #/a */
		{ 4, { 0, 0, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* qos 0 */
		{ 4, { 3, 0, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* qos 3 */
		{ 4, { 1, 2, 0, 0, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* flags */
		{ 4, { 1, 0, 3, 1, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* state 3 */
		{ 4, { 1, 0, 2, 1, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* PUBREL q1 */
		{ 4, { 1, 0, 1, 0, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* sent pid 0 */
		{ 4, { 1, 0, 0, 1, 0, 1, 0, 't', 0, 0, 0, 0 }, 12 }, /* queued pid */
		{ 4, { 1, 0, 0, 0, 0, 1, 0, '+', 0, 0, 0, 0 }, 12 }, /* wildcard */
		{ 5, { 0, 0 }, 2 },				/* pid 0 */
		{ 5, { 1 }, 1 },				/* short */
		{ 5, { 1, 0, 0 }, 3 },				/* trailing */
	};
	static const struct event session = { .kind = EV_SESSION,
	    .s = { .id = { (const uint8_t *)"s", 1 }, .expiry_ms = 1 } };
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	size_t i;

	assert_non_null(img);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		image_header(img);
		image_event(img, &session);
		image_raw(img, bad[i].kind, bad[i].body, bad[i].len);
		image_end(img, 2);
		assert_int_equal(decode(img->buf, img->len, &rc, &rep),
		    STATE_MALFORMED);
		assert_int_equal(rc.n, 1);
		assert_int_equal(rep.bad_offset, img->start[1]);
	}

	/* a length over the cap is refused before anything else */
	image_header(img);
	put_le32(img->buf + img->len, STATE_MAX_BODY + 1);
	memset(img->buf + img->len + 4, 0, 5);
	img->len += 9;
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_MALFORMED);
	put_le32(img->buf + STATE_HEADER_SIZE, STATE_MAX_BODY);
	assert_int_equal(decode(img->buf, img->len, &rc, &rep),
	    STATE_TRUNCATED);
	free(img);
}

static void
test_header(void **state)
{
	uint8_t h[STATE_HEADER_SIZE + 17];
	struct recorder rc;
	struct state_report rep;
	size_t n;

	assert_int_equal(state_header_encode(h, sizeof(h), &n), STATE_OK);
	assert_int_equal(state_end_encode(h + n, sizeof(h) - n, 0, &n),
	    STATE_OK);
	assert_memory_equal(h, "IOTBST\0\1\1\0\0\0", STATE_HEADER_SIZE);
	assert_int_equal(decode(h, sizeof(h), &rc, &rep), STATE_OK);

	h[8] = 2;
	assert_int_equal(decode(h, sizeof(h), &rc, &rep), STATE_BAD_VERSION);
	assert_int_equal(rep.bad_offset, 8);
	h[8] = 1;
	h[11] = 1;
	assert_int_equal(decode(h, sizeof(h), &rc, &rep), STATE_BAD_VERSION);
	h[11] = 0;
	h[0] = 'i';
	assert_int_equal(decode(h, sizeof(h), &rc, &rep), STATE_BAD_MAGIC);
	assert_int_equal(rep.bad_offset, 0);
	assert_int_equal(decode(NULL, 0, &rc, &rep), STATE_BAD_MAGIC);
}

static void
test_no_space(void **state)
{
	uint8_t out[2048];
	size_t i, need, n, cut;

	assert_int_equal(state_header_encode(NULL, 0, &need), STATE_NO_SPACE);
	assert_int_equal(need, STATE_HEADER_SIZE);
	assert_int_equal(state_header_encode(out, need - 1, &n),
	    STATE_NO_SPACE);
	assert_int_equal(n, need);
	assert_int_equal(state_end_encode(NULL, 0, 7, &need), STATE_NO_SPACE);
	assert_int_equal(need, 17);

	for (i = 0; i < NFIXTURE; i++) {
		assert_int_equal(encode_event(NULL, 0, &fixture[i], &need),
		    STATE_NO_SPACE);
		assert_true(need > 9 && need <= sizeof(out));
		/* any cap short of the size, including 0 with a buffer */
		for (cut = 0; cut < need; cut += (cut < 16 ? 1 : 97)) {
			n = 0;
			assert_int_equal(encode_event(out, cut, &fixture[i],
			    &n), STATE_NO_SPACE);
			assert_int_equal(n, need);
		}
		memset(out, 0xee, sizeof(out));
		assert_int_equal(encode_event(out, need, &fixture[i], &n),
		    STATE_OK);
		assert_int_equal(n, need);
		assert_int_equal(out[need], 0xee);
		/* the length field is the body's */
		assert_int_equal(out[0] | out[1] << 8 | out[2] << 16 |
		    out[3] << 24, need - 9);
	}
}

static void
test_invalid(void **state)
{
	static char longname[65537];
	struct state_retained r = { .topic = sv("t"), .qos = 0 };
	struct state_session s = { .id = sv("id") };
	struct state_sub sub = { .filter = sv("a/#"), .qos = 0 };
	struct state_msg m = { .topic = sv("t"), .qos = 1 };
	uint8_t out[64];
	size_t n;

	memset(longname, 'a', sizeof(longname) - 1);

	/* over the 16-bit wire width; 65535 is still fine */
	r.topic = (struct buf_view){ (const uint8_t *)longname, 65536 };
	assert_int_equal(state_retained_encode(NULL, 0, &r, &n),
	    STATE_INVALID);
	assert_int_equal(n, 0);
	r.topic.len = 65535;
	assert_int_equal(state_retained_encode(NULL, 0, &r, &n),
	    STATE_NO_SPACE);
	assert_int_equal(n, 9 + 7 + 65535);
	s.id = (struct buf_view){ (const uint8_t *)longname, 65536 };
	assert_int_equal(state_session_encode(NULL, 0, &s, &n), STATE_INVALID);
	sub.filter = (struct buf_view){ (const uint8_t *)longname, 65536 };
	assert_int_equal(state_sub_encode(NULL, 0, &sub, &n), STATE_INVALID);
	m.topic = (struct buf_view){ (const uint8_t *)longname, 65536 };
	assert_int_equal(state_msg_encode(NULL, 0, &m, &n), STATE_INVALID);

	/* a payload that would take the body over the cap; never read */
	r.topic = sv("t");
	r.payload = (struct buf_view){ out, STATE_MAX_BODY - 7 - 1 + 1 };
	assert_int_equal(state_retained_encode(NULL, 0, &r, &n),
	    STATE_INVALID);
	r.payload.len--;
	assert_int_equal(state_retained_encode(NULL, 0, &r, &n),
	    STATE_NO_SPACE);
	assert_true(n == 9 + (size_t)STATE_MAX_BODY);
	m.topic = sv("t");
	m.payload = (struct buf_view){ out, STATE_MAX_BODY - 11 - 1 + 1 };
	assert_int_equal(state_msg_encode(NULL, 0, &m, &n), STATE_INVALID);
	m.payload.len--;
	assert_int_equal(state_msg_encode(NULL, 0, &m, &n), STATE_NO_SPACE);
	assert_true(n == 9 + (size_t)STATE_MAX_BODY);
	m.payload = (struct buf_view){ NULL, 0 };

	/* the decoder's rules, refused at the source */
	r.payload = (struct buf_view){ NULL, 0 };
	r.qos = 3;
	assert_int_equal(state_retained_encode(out, sizeof(out), &r, &n),
	    STATE_INVALID);
	r.qos = 0;
	r.topic = sv("a/+");
	assert_int_equal(state_retained_encode(out, sizeof(out), &r, &n),
	    STATE_INVALID);
	s.id = sv("");
	assert_int_equal(state_session_encode(out, sizeof(out), &s, &n),
	    STATE_INVALID);
	s.id = sv("\xc0\xaf");
	assert_int_equal(state_session_encode(out, sizeof(out), &s, &n),
	    STATE_INVALID);
	sub.filter = sv("a/#/b");
	assert_int_equal(state_sub_encode(out, sizeof(out), &sub, &n),
	    STATE_INVALID);
	sub.filter = sv("a");
	sub.qos = 3;
	assert_int_equal(state_sub_encode(out, sizeof(out), &sub, &n),
	    STATE_INVALID);
	m.qos = 0;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	m.qos = 1;
	m.out_state = 2;
	m.pid = 1;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	m.qos = 2;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n), STATE_OK);
	m.out_state = 3;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	m.out_state = 1;
	m.pid = 0;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	m.out_state = 0;
	m.pid = 3;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	m.topic = sv("a/#");
	m.pid = 0;
	assert_int_equal(state_msg_encode(out, sizeof(out), &m, &n),
	    STATE_INVALID);
	assert_int_equal(state_qos2_encode(out, sizeof(out), 0, &n),
	    STATE_INVALID);
}

static void
test_abort(void **state)
{
	struct image *img = malloc(sizeof(*img));
	struct recorder rc;
	struct state_report rep;
	size_t at;

	assert_non_null(img);
	image_fixture(img);
	for (at = 0; at < NFIXTURE; at++) {
		memset(&rc, 0, sizeof(rc));
		rc.abort_at = at;
		assert_int_equal(state_decode(img->buf, img->len, &recording,
		    &rc, &rep), STATE_ABORTED);
		assert_saw_prefix(&rc, at);
		assert_int_equal(rc.calls, at + 1);
		assert_true(rep.records == at);
		assert_int_equal(rep.bad_offset, img->start[at]);
	}

	/* a callback left NULL skips its kind and is not an abort */
	{
		struct state_callbacks only_qos2 = { .qos2 = on_qos2 };

		memset(&rc, 0, sizeof(rc));
		rc.abort_at = SIZE_MAX;
		assert_int_equal(state_decode(img->buf, img->len, &only_qos2,
		    &rc, &rep), STATE_OK);
		assert_int_equal(rc.n, 2);
		assert_true(rep.records == NFIXTURE);
	}
	free(img);
}

static void
test_strerror(void **state)
{
	int st;

	for (st = STATE_OK; st <= STATE_ABORTED; st++)
		assert_string_not_equal(state_strerror(st),
		    state_strerror((enum state_status)99));
	assert_string_equal(state_strerror(STATE_BAD_CRC),
	    "record checksum mismatch");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_misplaced),
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_strerror),
	};
	size_t i;

	for (i = 0; i < sizeof(big_payload); i++)
		big_payload[i] = (uint8_t)(i * 7);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
