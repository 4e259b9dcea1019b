/*
 * Unit tests for base/utf8: the boundaries of every encoding length, the
 * forms MQTT forbids (overlong, surrogates, above U+10FFFF, U+0000), truncated
 * sequences, and the specification's string example (MQTT 5.0 section 1.5.4,
 * figure 1-1; MQTT 3.1.1 section 1.5.3.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/utf8.h"

struct utf8_case {
	const char		*what;
	const char		*bytes;
	size_t			 len;
	enum utf8_status	 want;
};

#define CASE(what, s, want)	{ what, s, sizeof(s) - 1, want }

static const struct utf8_case cases[] = {
	CASE("empty", "", UTF8_OK),
	CASE("ascii", "sensors/temp", UTF8_OK),
	CASE("spec example U+0041 U+2A6D4", "A\xF0\xAA\x9B\x94", UTF8_OK),
	CASE("U+007F", "\x7F", UTF8_OK),
	CASE("U+0080", "\xC2\x80", UTF8_OK),
	CASE("U+07FF", "\xDF\xBF", UTF8_OK),
	CASE("U+0800", "\xE0\xA0\x80", UTF8_OK),
	CASE("U+D7FF", "\xED\x9F\xBF", UTF8_OK),
	CASE("U+E000", "\xEE\x80\x80", UTF8_OK),
	CASE("U+FEFF BOM is a character", "\xEF\xBB\xBF", UTF8_OK),
	CASE("U+FFFF", "\xEF\xBF\xBF", UTF8_OK),
	CASE("U+10000", "\xF0\x90\x80\x80", UTF8_OK),
	CASE("U+10FFFF", "\xF4\x8F\xBF\xBF", UTF8_OK),

	CASE("U+0000 alone", "\x00", UTF8_NUL),
	CASE("U+0000 inside", "a\x00" "b", UTF8_NUL),
	CASE("overlong NUL", "\xC0\x80", UTF8_MALFORMED),
	CASE("overlong 2-byte", "\xC1\xBF", UTF8_MALFORMED),
	CASE("overlong 3-byte", "\xE0\x9F\xBF", UTF8_MALFORMED),
	CASE("overlong 4-byte", "\xF0\x8F\xBF\xBF", UTF8_MALFORMED),
	CASE("high surrogate", "\xED\xA0\x80", UTF8_SURROGATE),
	CASE("low surrogate", "\xED\xBF\xBF", UTF8_SURROGATE),
	CASE("U+110000", "\xF4\x90\x80\x80", UTF8_TOO_BIG),
	CASE("lead F5", "\xF5\x80\x80\x80", UTF8_TOO_BIG),
	CASE("lead F8", "\xF8\x88\x80\x80\x80", UTF8_MALFORMED),
	CASE("lead FF", "\xFF", UTF8_MALFORMED),
	CASE("lone continuation", "\x80", UTF8_MALFORMED),
	CASE("truncated 2-byte", "\xC2", UTF8_MALFORMED),
	CASE("truncated 3-byte", "\xE2\x82", UTF8_MALFORMED),
	CASE("truncated 4-byte", "\xF0\xAA\x9B", UTF8_MALFORMED),
	CASE("bad 3rd byte", "\xE2\x82\x41", UTF8_MALFORMED),
	CASE("bad 4th byte", "\xF0\xAA\x9B\xC0", UTF8_MALFORMED),
	CASE("ascii then truncated", "ok\xE2", UTF8_MALFORMED),
};

static void
test_cases(void **state)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum utf8_status st;

		st = utf8_check((const uint8_t *)cases[i].bytes, cases[i].len);
		if (st != cases[i].want) {
			print_error("%s: got \"%s\", want \"%s\"\n", cases[i].what,
			    utf8_strerror(st), utf8_strerror(cases[i].want));
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* A truncated sequence is malformed however it is cut, never read past. */
static void
test_every_prefix_of_multibyte(void **state)
{
	const char *s = "\xF4\x8F\xBF\xBF";
	size_t n;

	for (n = 1; n < 4; n++)
		assert_int_equal(utf8_check((const uint8_t *)s, n),
		    UTF8_MALFORMED);
	assert_int_equal(utf8_check((const uint8_t *)s, 4), UTF8_OK);
}

static void
test_strerror(void **state)
{
	assert_string_equal(utf8_strerror(UTF8_NUL), "U+0000 in string");
	assert_string_not_equal(utf8_strerror(UTF8_SURROGATE),
	    utf8_strerror(UTF8_TOO_BIG));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_every_prefix_of_multibyte),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
