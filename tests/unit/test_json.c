/* lib/base/json.c: what is written into status and dead-letter JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/json.h"

static void
check(const char *in, size_t n, const char *want)
{
	char out[128];

	assert_int_equal(json_escape(out, sizeof(out), in, n), strlen(want));
	assert_string_equal(out, want);
}

static void
test_escapes(void **state)
{
	(void)state;
	check("plain/topic", 11, "plain/topic");
	check("a\"b\\c", 5, "a\\\"b\\\\c");
	check("\n\t\x01\x7f", 4, "\\u000a\\u0009\\u0001\\u007f");
	check("\0x", 2, "\\u0000x");
	check("", 0, "");
	/* well-formed UTF-8 passes as it is */
	check("caf\xc3\xa9", 5, "caf\xc3\xa9");
	/* anything else is read as Latin-1, so the output stays valid */
	check("caf\xe9", 4, "caf\\u00e9");
	check("\xc3\xa9\xff", 3, "\\u00c3\\u00a9\\u00ff");
}

static void
test_truncation(void **state)
{
	char out[6];

	(void)state;
	/* like snprintf: the full length, a cut and terminated output */
	assert_int_equal(json_escape(out, sizeof(out), "abc\"def", 7), 8);
	assert_string_equal(out, "abc\\\"");
	assert_int_equal(json_escape(NULL, 0, "\x01", 1), 6);
	memset(out, 'z', sizeof(out));
	assert_int_equal(json_escape(out, 1, "abc", 3), 3);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], 'z');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_truncation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
