/*
 * Unit tests for base/crc32c: the check value of the CRC catalogue, RFC 3720's
 * vectors, and the eight-bytes-at-a-time path against the byte-at-a-time one
 * at every length and alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/crc32c.h"

static void
test_crc32c(void **state)
{
	const char	*s = "123456789";

	(void)state;
	assert_int_equal(crc32c_update(0, s, 9), 0xE3069283u);
	assert_int_equal(crc32c_update(crc32c_update(0, s, 4), s + 4, 5),
	    0xE3069283u);
	assert_int_equal(crc32c_update(0, NULL, 0), 0);
}

/* The eight-at-a-time path agrees with the byte-at-a-time one at every
 * length and alignment, and with RFC 3720's vectors when they are long. */
static void
test_crc32c_long(void **state)
{
	uint8_t		 buf[600], zeros[96] = { 0 };
	uint32_t	 x = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n + off <= 300; n++) {
			uint32_t one = 0;

			for (size_t i = 0; i < n; i++)	/* 1 byte: the slow path */
				one = crc32c_update(one, buf + off + i, 1);
			assert_int_equal(crc32c_update(0, buf + off, n), one);
		}
	/* RFC 3720 B.4: 32 zero bytes; then 96, which takes the fast path */
	assert_int_equal(crc32c_update(0, zeros, 32), 0x8A9136AAu);
	{
		uint32_t one = 0;

		for (size_t i = 0; i < sizeof(zeros); i++)
			one = crc32c_update(one, zeros + i, 1);
		assert_int_equal(crc32c_update(0, zeros, sizeof(zeros)), one);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_crc32c_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
