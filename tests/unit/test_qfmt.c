/*
 * Unit tests for queue/qfmt, the queue's file format: every item round-trips
 * in both versions; the bytes version 1 code wrote (the fixture in
 * tests/data/queue/v1, made by the code of that time) decode to what that
 * code was given; every prefix of an item is QFMT_SHORT, every flipped bit
 * of a checksummed one is caught; a later version's intact header is
 * QFMT_NEWER while a damaged one is damage; version 2's extensions are
 * skipped when unknown and checked when known.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/crc32c.h"
#include "queue/qfmt.h"

static const uint8_t topic[] = "sensors/gw01/temp";
static const uint8_t props[] = { 0x01, 0x01, 0x03, 0x00, 0x02, 'j', 's' };
static const uint8_t payload[] = "{\"t\":21.5}";

static struct qfmt_rec
sample(uint64_t expiry_ms)
{
	struct qfmt_rec r;

	memset(&r, 0, sizeof(r));
	r.seq = 0x0102030405060708ull;
	r.time_ms = 1700000000123ull;
	r.expiry_ms = expiry_ms;
	r.qos = 1;
	r.flags = 0xa5;
	r.topic = (struct buf_view){ topic, sizeof(topic) - 1 };
	r.props = (struct buf_view){ props, sizeof(props) };
	r.payload = (struct buf_view){ payload, sizeof(payload) - 1 };
	return r;
}

/* Header then parts into out; the record's length. */
static size_t
rec_build(uint32_t version, const struct qfmt_rec *r, uint8_t *out, size_t cap)
{
	size_t		 hlen, n;
	uint64_t	 len;

	assert_int_equal(qfmt_rec_size(version, r, &len), QFMT_OK);
	assert_int_equal(qfmt_rec_head_encode(version, out, cap, r, &hlen),
	    QFMT_OK);
	n = hlen;
	/* memcpy() with a NULL source is undefined even for 0 bytes */
	if (r->topic.len > 0)
		memcpy(out + n, r->topic.ptr, r->topic.len);
	n += r->topic.len;
	if (r->props.len > 0)
		memcpy(out + n, r->props.ptr, r->props.len);
	n += r->props.len;
	if (r->payload.len > 0)
		memcpy(out + n, r->payload.ptr, r->payload.len);
	n += r->payload.len;
	assert_int_equal(n, len);
	return n;
}

static void
rec_same(const struct qfmt_rec *a, const struct qfmt_rec *b)
{
	assert_true(a->seq == b->seq);
	assert_true(a->time_ms == b->time_ms);
	assert_true(a->expiry_ms == b->expiry_ms);
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->flags, b->flags);
	assert_true(buf_view_eq(a->topic, b->topic));
	assert_true(buf_view_eq(a->props, b->props));
	assert_true(buf_view_eq(a->payload, b->payload));
}

typedef enum qfmt_status decode_fn(const uint8_t *, size_t);

static enum qfmt_status
dec_rec1(const uint8_t *p, size_t n)
{
	struct qfmt_rec	 r;

	return qfmt_rec_decode(1, p, n, &r);
}

static enum qfmt_status
dec_rec2(const uint8_t *p, size_t n)
{
	struct qfmt_rec	 r;

	return qfmt_rec_decode(2, p, n, &r);
}

static enum qfmt_status
dec_seg(const uint8_t *p, size_t n)
{
	struct qfmt_seg	 h;

	return qfmt_seg_decode(p, n, &h);
}

static enum qfmt_status
dec_ckpt(const uint8_t *p, size_t n)
{
	struct qfmt_ckpt c;

	return qfmt_ckpt_decode(p, n, &c);
}

/*
 * buf[0..n) decodes; every prefix of it is QFMT_SHORT, and every bit flipped
 * in its first `checked` bytes is caught (the rest is written as zero and
 * not read).
 */
static void
damage_caught(decode_fn *dec, const uint8_t *buf, size_t n, size_t checked)
{
	uint8_t		 bad[256];
	size_t		 i;
	int		 bit;

	assert_true(n <= sizeof(bad));
	assert_int_equal(dec(buf, n), QFMT_OK);
	for (i = 0; i < n; i++)
		assert_int_equal(dec(buf, i), QFMT_SHORT);
	for (i = 0; i < checked; i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(bad, buf, n);
			bad[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(dec(bad, n), QFMT_OK);
		}
}

static void
test_record_roundtrip(void **state)
{
	uint8_t		 buf[256];
	struct qfmt_rec	 in, out;
	uint32_t	 v;
	size_t		 n;

	(void)state;
	for (v = QFMT_VERSION_MIN; v <= QFMT_VERSION; v++) {
		in = sample(0);
		n = rec_build(v, &in, buf, sizeof(buf));
		assert_int_equal(n, qfmt_rec_min(v) + sizeof(topic) - 1 +
		    sizeof(props) + sizeof(payload) - 1);
		assert_int_equal(qfmt_rec_decode(v, buf, n, &out), QFMT_OK);
		assert_int_equal(out.len, n);
		rec_same(&in, &out);
		/* the views point into the record, in order */
		assert_ptr_equal(out.topic.ptr, buf + qfmt_rec_min(v));
		assert_int_equal(qfmt_rec_head(v, buf, qfmt_rec_min(v), &out),
		    QFMT_OK);
		assert_int_equal(out.len, n);
		assert_true(out.seq == in.seq);
	}
	assert_int_equal(qfmt_rec_min(1), 36);
	assert_int_equal(qfmt_rec_min(2), 40);
	assert_int_equal(qfmt_rec_min(3), 0);

	/* An expiry is a version 2 extension of 10 bytes. */
	in = sample(1700000060000ull);
	n = rec_build(2, &in, buf, sizeof(buf));
	assert_int_equal(n, 40 + 10 + sizeof(topic) - 1 + sizeof(props) +
	    sizeof(payload) - 1);
	assert_int_equal(qfmt_rec_decode(2, buf, n, &out), QFMT_OK);
	rec_same(&in, &out);
	assert_int_equal(qfmt_rec_size(1, &in, &(uint64_t){ 0 }), QFMT_INVALID);
	assert_int_equal(qfmt_rec_head_encode(1, buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);

	/* Empty parts are fine. */
	memset(&in, 0, sizeof(in));
	in.seq = 1;
	n = rec_build(2, &in, buf, sizeof(buf));
	assert_int_equal(n, 40);
	assert_int_equal(qfmt_rec_decode(2, buf, n, &out), QFMT_OK);
	assert_int_equal(out.topic.len + out.props.len + out.payload.len, 0);
}

/* The version 2 record, byte by byte: the layout docs/queue-format.md gives. */
static void
test_record_v2_layout(void **state)
{
	static const uint8_t t[] = "a/b", p[] = "hi";
	const uint8_t	 want[] = {
		0x37, 0x00, 0x00, 0x00,			/* length 55 */
		0x00, 0x00, 0x00, 0x00,			/* CRC, checked below */
		0x07, 0, 0, 0, 0, 0, 0, 0,		/* seq 7 */
		0xe8, 0x03, 0, 0, 0, 0, 0, 0,		/* time 1000 */
		0x02, 0x40,				/* qos 2, flags 0x40 */
		0x03, 0x00,				/* topic 3 */
		0x00, 0x00, 0x00, 0x00,			/* properties 0 */
		0x02, 0x00, 0x00, 0x00,			/* payload 2 */
		0x0a, 0x00, 0x00, 0x00,			/* extensions 10, 0 */
		0x01, 0x08, 0xd0, 0x07, 0, 0, 0, 0, 0, 0, /* expiry 2000 */
		'a', '/', 'b', 'h', 'i',
	};
	struct qfmt_rec	 r;
	uint8_t		 buf[128];
	size_t		 n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.seq = 7;
	r.time_ms = 1000;
	r.expiry_ms = 2000;
	r.qos = 2;
	r.flags = 0x40;
	r.topic = (struct buf_view){ t, 3 };
	r.payload = (struct buf_view){ p, 2 };
	n = rec_build(2, &r, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, 4);
	assert_memory_equal(buf + 8, want + 8, sizeof(want) - 8);
	assert_int_equal(crc32c_update(0, buf + 8, n - 8),
	    (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
	    (uint32_t)buf[7] << 24);
}

static void
test_record_rejects(void **state)
{
	uint8_t		 buf[256], bad[256];
	struct qfmt_rec	 in = sample(5), out;
	uint32_t	 v;
	size_t		 n;

	(void)state;
	for (v = QFMT_VERSION_MIN; v <= QFMT_VERSION; v++) {
		in.expiry_ms = v == 1 ? 0 : 5;
		n = rec_build(v, &in, buf, sizeof(buf));
		/* the CRC covers everything but the length, which the
		 * checks before it cover */
		damage_caught(v == 1 ? dec_rec1 : dec_rec2, buf, n, n);
	}
	/* The cheap checks, each alone, in version 2. */
	in = sample(0);
	n = rec_build(2, &in, buf, sizeof(buf));
	memcpy(bad, buf, n);
	bad[24] = 3;					/* QoS 3 */
	assert_int_equal(qfmt_rec_head(2, bad, n, &out), QFMT_MALFORMED);
	memcpy(bad, buf, n);
	bad[0] = 39;					/* below the header */
	assert_int_equal(qfmt_rec_head(2, bad, n, &out), QFMT_MALFORMED);
	memcpy(bad, buf, n);
	bad[26]++;					/* parts do not add up */
	assert_int_equal(qfmt_rec_head(2, bad, n, &out), QFMT_MALFORMED);
	memcpy(bad, buf, n);
	bad[3] = 0x10;					/* over 1 MiB */
	assert_int_equal(qfmt_rec_head(2, bad, n, &out), QFMT_MALFORMED);
	assert_int_equal(qfmt_rec_head(3, buf, n, &out), QFMT_MALFORMED);

	/* Encoding: fields that do not fit. */
	in = sample(0);
	in.qos = 3;
	assert_int_equal(qfmt_rec_size(2, &in, &(uint64_t){ 0 }), QFMT_INVALID);
	in = sample(0);
	in.seq = 0;
	assert_int_equal(qfmt_rec_size(2, &in, &(uint64_t){ 0 }), QFMT_INVALID);
	in.seq = QFMT_SEQ_LIMIT;
	assert_int_equal(qfmt_rec_size(2, &in, &(uint64_t){ 0 }), QFMT_INVALID);
	in = sample(0);
	in.payload.len = QFMT_REC_MAX - 40 - in.topic.len - in.props.len + 1;
	assert_int_equal(qfmt_rec_size(2, &in, &(uint64_t){ 0 }), QFMT_INVALID);
	in.payload.len--;
	assert_int_equal(qfmt_rec_size(2, &in, &(uint64_t){ 0 }), QFMT_OK);
	in = sample(0);
	assert_int_equal(qfmt_rec_head_encode(2, buf, 39, &in, &n),
	    QFMT_NO_SPACE);
}

/* Build a version 2 record whose extension area is ext[0..xl), CRC right. */
static size_t
rec_with_ext(uint8_t *buf, const uint8_t *ext, size_t xl)
{
	size_t		 n = 40 + xl + 1;
	uint32_t	 crc;

	memset(buf, 0, 40);
	buf[0] = (uint8_t)n;
	buf[8] = 9;			/* seq 9 */
	buf[26] = 1;			/* topic "x" */
	buf[36] = (uint8_t)xl;
	memcpy(buf + 40, ext, xl);
	buf[40 + xl] = 'x';
	crc = crc32c_update(0, buf + 8, n - 8);
	buf[4] = (uint8_t)crc;
	buf[5] = (uint8_t)(crc >> 8);
	buf[6] = (uint8_t)(crc >> 16);
	buf[7] = (uint8_t)(crc >> 24);
	return n;
}

static void
test_record_extensions(void **state)
{
	static const uint8_t unknown[] = { 0x7e, 3, 1, 2, 3, 0x01, 8,
	    0x10, 0, 0, 0, 0, 0, 0, 0, 0xff, 0 };
	static const uint8_t twice[] = { 0x01, 8, 1, 0, 0, 0, 0, 0, 0, 0,
	    0x01, 8, 2, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t wrong_len[] = { 0x01, 4, 1, 0, 0, 0 };
	static const uint8_t zero[] = { 0x01, 8, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t cut[] = { 0x7e, 5, 1, 2 };
	uint8_t		 buf[128];
	struct qfmt_rec	 r;
	size_t		 n;

	(void)state;
	/* unknown tags (a later writer's optional fields) are stepped over */
	n = rec_with_ext(buf, unknown, sizeof(unknown));
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_OK);
	assert_true(r.expiry_ms == 0x10);
	assert_int_equal(r.topic.len, 1);
	assert_int_equal(r.topic.ptr[0], 'x');
	n = rec_with_ext(buf, twice, sizeof(twice));
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_MALFORMED);
	n = rec_with_ext(buf, wrong_len, sizeof(wrong_len));
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_MALFORMED);
	n = rec_with_ext(buf, zero, sizeof(zero));
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_MALFORMED);
	n = rec_with_ext(buf, cut, sizeof(cut));
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_MALFORMED);
	/* qfmt_rec_view() skips the CRC, nothing else */
	buf[4] ^= 1;
	assert_int_equal(qfmt_rec_view(2, buf, n, &r), QFMT_MALFORMED);
	n = rec_with_ext(buf, unknown, sizeof(unknown));
	buf[4] ^= 1;
	assert_int_equal(qfmt_rec_decode(2, buf, n, &r), QFMT_BAD_CRC);
	assert_int_equal(qfmt_rec_view(2, buf, n, &r), QFMT_OK);
}

static void
test_segment_header(void **state)
{
	struct qfmt_seg	 in, out;
	uint8_t		 buf[64], bad[64];
	uint32_t	 v;
	size_t		 n;

	(void)state;
	for (v = QFMT_VERSION_MIN; v <= QFMT_VERSION; v++) {
		in = (struct qfmt_seg){ v, 1000, v == 1 ? 1000 : 990 };
		assert_int_equal(qfmt_seg_encode(buf, sizeof(buf), &in, &n),
		    QFMT_OK);
		assert_int_equal(n, qfmt_seg_hdr_len(v));
		assert_int_equal(qfmt_seg_decode(buf, n, &out), QFMT_OK);
		assert_int_equal(out.version, v);
		assert_true(out.first_seq == 1000);
		assert_true(out.counted_from == in.counted_from);
		assert_memory_equal(buf, "IOTBQSEG", 8);
		damage_caught(dec_seg, buf, n, n - 4);
	}
	assert_int_equal(qfmt_seg_hdr_len(1), 32);
	assert_int_equal(qfmt_seg_hdr_len(2), 40);
	/* version 1 cannot say that numbers were counted before it */
	in = (struct qfmt_seg){ 1, 1000, 999 };
	assert_int_equal(qfmt_seg_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_seg){ 2, 1000, 1001 };
	assert_int_equal(qfmt_seg_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_seg){ 2, 0, 0 };
	assert_int_equal(qfmt_seg_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_seg){ 3, 1, 1 };
	assert_int_equal(qfmt_seg_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_seg){ 2, 1, 1 };
	assert_int_equal(qfmt_seg_encode(buf, 39, &in, &n), QFMT_NO_SPACE);
	memset(bad, 0, sizeof(bad));
	assert_int_equal(qfmt_seg_decode(bad, 40, &out), QFMT_BAD_MAGIC);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * A header of version 3 that keeps the rule (length at 12, CRC in its last 8
 * bytes) is refused as newer, not taken for damage; one that breaks the
 * rule is damage.
 */
static void
test_newer_versions(void **state)
{
	const char	*magic[2] = { "IOTBQSEG", "IOTBQCKP" };
	uint8_t		 b[64];
	struct qfmt_seg	 sh;
	struct qfmt_ckpt ck;
	int		 k;

	(void)state;
	for (k = 0; k < 2; k++) {
		enum qfmt_status st;

		memset(b, 0x5a, sizeof(b));
		memcpy(b, magic[k], 8);
		put32(b + 8, 3);		/* version 3 */
		put32(b + 12, 56);		/* its header length */
		put32(b + 48, crc32c_update(0, b, 48));
		st = k == 0 ? qfmt_seg_decode(b, 56, &sh) :
		    qfmt_ckpt_decode(b, 56, &ck);
		assert_int_equal(st, QFMT_NEWER);
		assert_int_equal(k == 0 ? sh.version : ck.version, 3);
		/* shorter than its own header length: damage */
		st = k == 0 ? qfmt_seg_decode(b, 55, &sh) :
		    qfmt_ckpt_decode(b, 55, &ck);
		assert_int_equal(st, QFMT_SHORT);
		/* its CRC wrong: damage, however new it looks */
		b[20] ^= 1;
		st = k == 0 ? qfmt_seg_decode(b, 56, &sh) :
		    qfmt_ckpt_decode(b, 56, &ck);
		assert_int_equal(st, QFMT_BAD_CRC);
		/* an absurd header length: damage */
		put32(b + 12, QFMT_HDR_MAX + 1);
		st = k == 0 ? qfmt_seg_decode(b, 56, &sh) :
		    qfmt_ckpt_decode(b, 56, &ck);
		assert_int_equal(st, QFMT_MALFORMED);
		/* version 0 was never written */
		put32(b + 8, 0);
		st = k == 0 ? qfmt_seg_decode(b, 56, &sh) :
		    qfmt_ckpt_decode(b, 56, &ck);
		assert_int_equal(st, QFMT_MALFORMED);
	}
}

static void
test_checkpoint(void **state)
{
	struct qfmt_ckpt in, out;
	uint8_t		 buf[64];
	uint32_t	 v;
	size_t		 n;

	(void)state;
	for (v = QFMT_VERSION_MIN; v <= QFMT_VERSION; v++) {
		in = (struct qfmt_ckpt){ v, 12345, v == 1 ? 0 : 23456 };
		assert_int_equal(qfmt_ckpt_encode(buf, sizeof(buf), &in, &n),
		    QFMT_OK);
		assert_int_equal(n, v == 1 ? 32 : 40);
		assert_int_equal(qfmt_ckpt_decode(buf, n, &out), QFMT_OK);
		assert_int_equal(out.version, v);
		assert_true(out.released == 12345);
		assert_true(out.durable == in.durable);
		damage_caught(dec_ckpt, buf, n, n - 4);
		buf[n] = 0;
		assert_int_equal(qfmt_ckpt_decode(buf, n + 1, &out),
		    QFMT_MALFORMED);
	}
	in = (struct qfmt_ckpt){ 1, 1, 1 };	/* no durable in version 1 */
	assert_int_equal(qfmt_ckpt_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_ckpt){ 2, QFMT_SEQ_LIMIT, 0 };
	assert_int_equal(qfmt_ckpt_encode(buf, sizeof(buf), &in, &n),
	    QFMT_INVALID);
	in = (struct qfmt_ckpt){ 2, 1, 1 };
	assert_int_equal(qfmt_ckpt_encode(buf, 39, &in, &n), QFMT_NO_SPACE);
	assert_string_equal(qfmt_strerror(QFMT_NEWER),
	    "written by a newer version");
}

static size_t
read_file(const char *name, uint8_t *buf, size_t cap)
{
	char		 path[512];
	ssize_t		 n;
	int		 fd;

	snprintf(path, sizeof(path), "%s/queue/v1/clean/%s", IOTB_TEST_DATA,
	    name);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	n = read(fd, buf, cap);
	close(fd);
	assert_true(n > 0);
	return (size_t)n;
}

/*
 * The bytes version 1 code wrote (tests/data/queue/gen-v1.c says what it
 * was given): the checkpoint, a segment header, and every record of the
 * segment holding 6..9.
 */
static void
test_version1_bytes(void **state)
{
	static uint8_t	 buf[8192];
	struct qfmt_ckpt ck;
	struct qfmt_seg	 sh;
	struct qfmt_rec	 r;
	size_t		 n, off;
	uint64_t	 i;

	(void)state;
	n = read_file("checkpoint", buf, sizeof(buf));
	assert_int_equal(qfmt_ckpt_decode(buf, n, &ck), QFMT_OK);
	assert_int_equal(ck.version, 1);
	assert_true(ck.released == 5);
	assert_true(ck.durable == 0);

	n = read_file("0000000000000006.seg", buf, sizeof(buf));
	assert_int_equal(qfmt_seg_decode(buf, n, &sh), QFMT_OK);
	assert_int_equal(sh.version, 1);
	assert_true(sh.first_seq == 6);
	assert_true(sh.counted_from == 6);
	for (off = 32, i = 6; off < n; off += r.len, i++) {
		char	 t[32];

		assert_int_equal(qfmt_rec_decode(1, buf + off, n - off, &r),
		    QFMT_OK);
		assert_true(r.seq == i);
		assert_true(r.time_ms == 1700000000000ull + 1000 * i);
		assert_int_equal(r.qos, i % 3);
		assert_int_equal(r.flags, 0x10 + i);
		snprintf(t, sizeof(t), "fixture/%d", (int)i);
		assert_true(buf_view_eq(r.topic, buf_cstr(t)));
		assert_int_equal(r.props.len, i % 2 == 0 ? 2 : 0);
		assert_int_equal(r.payload.len, 400 * (i % 7) + 17);
		assert_int_equal(r.payload.ptr[0], 'a' + i % 26);
		assert_true(r.expiry_ms == 0);
	}
	assert_true(i == 10);
	assert_int_equal(off, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_v2_layout),
		cmocka_unit_test(test_record_rejects),
		cmocka_unit_test(test_record_extensions),
		cmocka_unit_test(test_segment_header),
		cmocka_unit_test(test_newer_versions),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_version1_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
