/*
 * Unit tests for base/buf: that every failed get leaves the reader where it
 * was, the MQTT Variable Byte Integer against the specification's boundary
 * table (MQTT 5.0 section 1.5.5, 3.1.1 section 2.2.3), sub-readers that cannot
 * escape their section, a writer that counts past its end, and the
 * little-endian integers of our file formats, byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"

static void
test_fixed_width(void **state)
{
	const uint8_t in[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	struct buf_reader r;
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint32_t u32 = 0;

	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_get_u8(&r, &u8), BUF_OK);
	assert_int_equal(u8, 0x01);
	assert_int_equal(buf_get_u16(&r, &u16), BUF_OK);
	assert_int_equal(u16, 0x0203);
	assert_int_equal(buf_get_u32(&r, &u32), BUF_OK);
	assert_int_equal(u32, 0x04050607);
	assert_int_equal(buf_left(&r), 0);
	assert_int_equal(buf_get_u8(&r, &u8), BUF_SHORT);
	assert_int_equal(u8, 0x01);
}

/* Little endian: least significant byte first, at every width. */
static void
test_little_endian(void **state)
{
	const uint8_t in[] = {
		0x01, 0x02,
		0x03, 0x04, 0x05, 0x06,
		0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xfe,
	};
	struct buf_reader r;
	struct buf_writer w;
	uint8_t out[sizeof(in)];
	uint16_t u16 = 0;
	uint32_t u32 = 0;
	uint64_t u64 = 0;

	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_get_le16(&r, &u16), BUF_OK);
	assert_int_equal(u16, 0x0201);
	assert_int_equal(buf_get_le32(&r, &u32), BUF_OK);
	assert_int_equal(u32, 0x06050403);
	assert_int_equal(buf_get_le64(&r, &u64), BUF_OK);
	assert_true(u64 == 0xfe0d0c0b0a090807ull);
	assert_int_equal(buf_left(&r), 0);

	/* Short input: no move, no store, at each width. */
	buf_reader_init(&r, in, 7);
	assert_int_equal(buf_get_le64(&r, &u64), BUF_SHORT);
	assert_true(u64 == 0xfe0d0c0b0a090807ull);
	assert_int_equal(buf_left(&r), 7);
	buf_reader_init(&r, in, 3);
	assert_int_equal(buf_get_le32(&r, &u32), BUF_SHORT);
	assert_int_equal(u32, 0x06050403);
	buf_reader_init(&r, in, 1);
	assert_int_equal(buf_get_le16(&r, &u16), BUF_SHORT);
	assert_int_equal(u16, 0x0201);
	assert_ptr_equal(r.ptr, in);

	buf_writer_init(&w, out, sizeof(out));
	buf_put_le16(&w, 0x0201);
	buf_put_le32(&w, 0x06050403);
	buf_put_le64(&w, 0xfe0d0c0b0a090807ull);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	assert_int_equal(buf_written(&w), sizeof(in));
	assert_memory_equal(out, in, sizeof(in));
	buf_put_le16(&w, 1);
	assert_int_equal(buf_writer_status(&w), BUF_NO_SPACE);
}

static void
test_short_does_not_advance(void **state)
{
	const uint8_t in[] = { 0xaa, 0xbb, 0xcc };
	struct buf_reader r;
	struct buf_view v;
	uint16_t u16 = 7;
	uint32_t u32 = 7;

	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_get_u32(&r, &u32), BUF_SHORT);
	assert_int_equal(u32, 7);
	assert_int_equal(buf_left(&r), 3);
	assert_int_equal(buf_get_bytes(&r, 4, &v), BUF_SHORT);
	assert_int_equal(buf_left(&r), 3);
	assert_int_equal(buf_get_u16(&r, &u16), BUF_OK);
	assert_int_equal(u16, 0xaabb);
	assert_int_equal(buf_get_u16(&r, &u16), BUF_SHORT);
	assert_int_equal(u16, 0xaabb);
	assert_int_equal(buf_left(&r), 1);
	assert_ptr_equal(r.ptr, in + 2);
}

/* The boundary rows of the specification's Variable Byte Integer table. */
static const struct {
	uint32_t	value;
	size_t		len;
	uint8_t		bytes[4];
} varints[] = {
	{ 0, 1, { 0x00 } },
	{ 127, 1, { 0x7f } },
	{ 128, 2, { 0x80, 0x01 } },
	{ 16383, 2, { 0xff, 0x7f } },
	{ 16384, 3, { 0x80, 0x80, 0x01 } },
	{ 2097151, 3, { 0xff, 0xff, 0x7f } },
	{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
	{ 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
};

static void
test_varint_spec_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		struct buf_reader r;
		struct buf_writer w;
		uint8_t out[8];
		uint32_t v = 0;

		buf_reader_init(&r, varints[i].bytes, varints[i].len);
		assert_int_equal(buf_get_varint(&r, &v), BUF_OK);
		assert_int_equal(v, varints[i].value);
		assert_int_equal(buf_left(&r), 0);

		buf_writer_init(&w, out, sizeof(out));
		buf_put_varint(&w, varints[i].value);
		assert_int_equal(buf_writer_status(&w), BUF_OK);
		assert_int_equal(buf_written(&w), varints[i].len);
		assert_memory_equal(out, varints[i].bytes, varints[i].len);
		assert_int_equal(buf_varint_size(varints[i].value), varints[i].len);
	}
}

static void
test_varint_every_prefix_is_short(void **state)
{
	size_t i, n;

	for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		for (n = 0; n < varints[i].len; n++) {
			struct buf_reader r;
			uint32_t v = 99;

			buf_reader_init(&r, varints[i].bytes, n);
			assert_int_equal(buf_get_varint(&r, &v), BUF_SHORT);
			assert_int_equal(buf_left(&r), n);
			assert_int_equal(v, 99);
		}
	}
}

static void
test_varint_malformed(void **state)
{
	static const struct {
		size_t	len;
		uint8_t	bytes[5];
	} bad[] = {
		{ 5, { 0xff, 0xff, 0xff, 0xff, 0x7f } },	/* the spec's 5 bytes */
		{ 4, { 0x80, 0x80, 0x80, 0x80 } },	/* 5th byte announced */
		{ 2, { 0x80, 0x00 } },			/* 0 in two bytes */
		{ 2, { 0xff, 0x00 } },			/* 127 in two bytes */
		{ 3, { 0x80, 0x80, 0x00 } },
		{ 4, { 0xff, 0xff, 0xff, 0x00 } },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf_reader r;
		uint32_t v = 99;

		buf_reader_init(&r, bad[i].bytes, bad[i].len);
		assert_int_equal(buf_get_varint(&r, &v), BUF_MALFORMED);
		assert_int_equal(buf_left(&r), bad[i].len);
		assert_int_equal(v, 99);
	}
}

static void
test_varint_range(void **state)
{
	struct buf_writer w;
	uint8_t out[8];

	assert_int_equal(buf_varint_size(268435456), 0);
	buf_writer_init(&w, out, sizeof(out));
	buf_put_varint(&w, 268435456);
	assert_int_equal(buf_writer_status(&w), BUF_RANGE);
	assert_int_equal(buf_written(&w), 0);
}

static void
test_sub_reader(void **state)
{
	const uint8_t in[] = { 0x03, 0x0a, 0x0b, 0x0c, 0x0d };
	struct buf_reader r, sub;
	uint8_t n, b;
	uint16_t u16;

	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_get_u8(&r, &n), BUF_OK);
	assert_int_equal(buf_get_reader(&r, 6, &sub), BUF_SHORT);
	assert_int_equal(buf_left(&r), 4);
	assert_int_equal(buf_get_reader(&r, n, &sub), BUF_OK);
	assert_int_equal(buf_left(&r), 1);
	assert_int_equal(buf_left(&sub), 3);
	assert_int_equal(buf_get_u16(&sub, &u16), BUF_OK);
	assert_int_equal(u16, 0x0a0b);
	/* The byte after the section is there, but not for the sub-reader. */
	assert_int_equal(buf_get_u16(&sub, &u16), BUF_SHORT);
	assert_int_equal(buf_get_u8(&sub, &b), BUF_OK);
	assert_int_equal(b, 0x0c);
	assert_int_equal(buf_get_u8(&r, &b), BUF_OK);
	assert_int_equal(b, 0x0d);
}

static void
test_binary(void **state)
{
	const uint8_t in[] = { 0x00, 0x02, 'h', 'i', 0x00, 0x05, 'a', 'b' };
	struct buf_reader r;
	struct buf_view v;

	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_get_binary(&r, &v), BUF_OK);
	assert_int_equal(v.len, 2);
	assert_memory_equal(v.ptr, "hi", 2);
	assert_ptr_equal(v.ptr, in + 2);
	/* Length says 5, only 2 follow: short, and the length is not consumed. */
	assert_int_equal(buf_get_binary(&r, &v), BUF_SHORT);
	assert_int_equal(buf_left(&r), 4);
	buf_reader_init(&r, in, 1);
	assert_int_equal(buf_get_binary(&r, &v), BUF_SHORT);
	assert_int_equal(buf_left(&r), 1);
}

static void
test_empty_reader(void **state)
{
	struct buf_reader r;
	struct buf_view v;

	buf_reader_init(&r, NULL, 0);
	assert_int_equal(buf_get_bytes(&r, 0, &v), BUF_OK);
	assert_int_equal(v.len, 0);
	assert_int_equal(buf_get_bytes(&r, 1, &v), BUF_SHORT);
}

static void
test_writer(void **state)
{
	const uint8_t want[] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x80, 0x01,
		0x00, 0x02, 'o', 'k'
	};
	struct buf_writer w;
	uint8_t out[32];

	memset(out, 0xee, sizeof(out));
	buf_writer_init(&w, out, sizeof(out));
	buf_put_u8(&w, 0x01);
	buf_put_u16(&w, 0x0203);
	buf_put_u32(&w, 0x04050607);
	buf_put_varint(&w, 128);
	buf_put_binary(&w, "ok", 2);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	assert_int_equal(buf_written(&w), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(out[sizeof(want)], 0xee);
}

static void
test_writer_overflow_counts_on(void **state)
{
	struct buf_writer w;
	uint8_t out[8];

	memset(out, 0xee, sizeof(out));
	buf_writer_init(&w, out, 3);
	buf_put_u16(&w, 0x0102);
	buf_put_u16(&w, 0x0304);	/* does not fit: nothing of it is stored */
	buf_put_u8(&w, 0x05);		/* would fit, but the writer has failed */
	assert_int_equal(buf_writer_status(&w), BUF_NO_SPACE);
	assert_int_equal(buf_written(&w), 5);
	assert_int_equal(out[0], 0x01);
	assert_int_equal(out[1], 0x02);
	assert_int_equal(out[2], 0xee);
	assert_int_equal(out[3], 0xee);
}

static void
test_counting_writer(void **state)
{
	struct buf_writer w;

	buf_writer_init(&w, NULL, 0);
	buf_put_u32(&w, 1);
	buf_put_varint(&w, 16384);
	buf_put_binary(&w, "abc", 3);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	assert_int_equal(buf_written(&w), 4 + 3 + 5);
}

static void
test_binary_too_long(void **state)
{
	static uint8_t big[65536];
	struct buf_writer w;

	buf_writer_init(&w, NULL, 0);
	buf_put_binary(&w, big, sizeof(big) - 1);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	assert_int_equal(buf_written(&w), 2 + 65535);
	buf_put_binary(&w, big, sizeof(big));
	assert_int_equal(buf_writer_status(&w), BUF_RANGE);
}

static void
test_views(void **state)
{
	struct buf_view a = buf_cstr("abc"), b = buf_cstr("abd");
	struct buf_view e1 = { NULL, 0 }, e2 = buf_cstr("");

	assert_int_equal(a.len, 3);
	assert_true(buf_view_eq(a, buf_cstr("abc")));
	assert_false(buf_view_eq(a, b));
	assert_false(buf_view_eq(a, buf_cstr("ab")));
	assert_true(buf_view_eq(e1, e2));
}

static void
test_strerror(void **state)
{
	assert_string_equal(buf_strerror(BUF_OK), "success");
	assert_string_not_equal(buf_strerror(BUF_SHORT),
	    buf_strerror(BUF_MALFORMED));
	assert_string_not_equal(buf_strerror(BUF_NO_SPACE),
	    buf_strerror(BUF_RANGE));
	assert_string_equal(buf_strerror((enum buf_status)99),
	    "unknown buf status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_width),
		cmocka_unit_test(test_little_endian),
		cmocka_unit_test(test_short_does_not_advance),
		cmocka_unit_test(test_varint_spec_table),
		cmocka_unit_test(test_varint_every_prefix_is_short),
		cmocka_unit_test(test_varint_malformed),
		cmocka_unit_test(test_varint_range),
		cmocka_unit_test(test_sub_reader),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_empty_reader),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_overflow_counts_on),
		cmocka_unit_test(test_counting_writer),
		cmocka_unit_test(test_binary_too_long),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
