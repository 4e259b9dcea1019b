/*
 * Unit tests for topic.c: tables of valid and invalid names and filters, and a
 * table of filter/name matching cases in the spirit of mosquitto's
 * test/unit/util_topic_test.c (the cases are ours), covering empty levels,
 * leading and trailing '/', '$SYS' and '$share' taken literally.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic/topic.h"

struct check_case {
	const char		*s;
	size_t			 len;	/* 0: strlen(s) */
	enum topic_status	 want;
};

static const struct check_case names[] = {
	{ "a", 0, TOPIC_OK },
	{ "/", 0, TOPIC_OK },
	{ "//", 0, TOPIC_OK },
	{ " ", 0, TOPIC_OK },
	{ "a/b/c", 0, TOPIC_OK },
	{ "$SYS/broker/load", 0, TOPIC_OK },
	{ "$share/g/a", 0, TOPIC_OK },
	{ "sensors/\xc3\xa9t\xc3\xa9", 0, TOPIC_OK },
	{ "", 0, TOPIC_EMPTY },
	{ "+", 0, TOPIC_WILDCARD_IN_NAME },
	{ "#", 0, TOPIC_WILDCARD_IN_NAME },
	{ "a+", 0, TOPIC_WILDCARD_IN_NAME },
	{ "sport/tennis/#", 0, TOPIC_WILDCARD_IN_NAME },
	{ "a/+/b", 0, TOPIC_WILDCARD_IN_NAME },
	{ "a\0b", 3, TOPIC_BAD_UTF8 },
	{ "\xc0\x80", 0, TOPIC_BAD_UTF8 },		/* overlong U+0000 */
	{ "\xff", 0, TOPIC_BAD_UTF8 },
	{ "a/\xed\xa0\x80", 0, TOPIC_BAD_UTF8 },	/* surrogate */
	{ "\xc3", 0, TOPIC_BAD_UTF8 },			/* truncated */
};

static const struct check_case filters[] = {
	{ "a", 0, TOPIC_OK },
	{ "#", 0, TOPIC_OK },
	{ "+", 0, TOPIC_OK },
	{ "/", 0, TOPIC_OK },
	{ "/#", 0, TOPIC_OK },
	{ "+/+", 0, TOPIC_OK },
	{ "//+//", 0, TOPIC_OK },
	{ "+/", 0, TOPIC_OK },
	{ "a/+/b/#", 0, TOPIC_OK },
	{ "$SYS/#", 0, TOPIC_OK },
	{ "$share/g/+/t", 0, TOPIC_OK },
	{ "", 0, TOPIC_EMPTY },
	{ "#/", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "a/#/b", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "a#", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "#a", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "##", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "a/b#", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "#+", 0, TOPIC_BAD_MULTI_LEVEL },
	{ "+a", 0, TOPIC_BAD_SINGLE_LEVEL },
	{ "a+", 0, TOPIC_BAD_SINGLE_LEVEL },
	{ "a/+b/c", 0, TOPIC_BAD_SINGLE_LEVEL },
	{ "++", 0, TOPIC_BAD_SINGLE_LEVEL },
	{ "+#", 0, TOPIC_BAD_SINGLE_LEVEL },
	{ "a/\0", 3, TOPIC_BAD_UTF8 },
	{ "\xe0\x80\xaf", 0, TOPIC_BAD_UTF8 },		/* overlong '/' */
};

static void
run_checks(const struct check_case *cases, size_t n,
    enum topic_status (*check)(const char *, size_t))
{
	for (size_t i = 0; i < n; i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
		enum topic_status got = check(cases[i].s, len);

		if (got != cases[i].want)
			fail_msg("row %zu \"%s\": got %s, want %s", i, cases[i].s,
			    topic_strerror(got), topic_strerror(cases[i].want));
	}
}

static void
test_name_check(void **state)
{
	(void)state;
	run_checks(names, sizeof(names) / sizeof(names[0]), topic_name_check);
}

static void
test_filter_check(void **state)
{
	(void)state;
	run_checks(filters, sizeof(filters) / sizeof(filters[0]), topic_filter_check);
}

static void
test_length_limit(void **state)
{
	char *s = malloc(TOPIC_MAX_LEN + 1);

	(void)state;
	assert_non_null(s);
	memset(s, 'a', TOPIC_MAX_LEN + 1);
	assert_int_equal(topic_name_check(s, TOPIC_MAX_LEN), TOPIC_OK);
	assert_int_equal(topic_filter_check(s, TOPIC_MAX_LEN), TOPIC_OK);
	assert_int_equal(topic_name_check(s, TOPIC_MAX_LEN + 1), TOPIC_TOO_LONG);
	assert_int_equal(topic_filter_check(s, TOPIC_MAX_LEN + 1), TOPIC_TOO_LONG);
	free(s);
}

static const struct {
	const char	*filter;
	const char	*name;
	bool		 match;
} matches[] = {
	/* '#' */
	{ "#", "a", true },
	{ "#", "a/b/c", true },
	{ "#", "/", true },
	{ "#", "///", true },
	{ "#", "/a", true },
	{ "#", "a/", true },
	{ "#", "a/$SYS", true },
	{ "#", "$SYS", false },
	{ "#", "$SYS/broker/load", false },
	{ "#", "$", false },
	{ "/#", "/", true },
	{ "/#", "/a/b", true },
	{ "/#", "a", false },
	{ "a/#", "a", true },
	{ "a/#", "a/", true },
	{ "a/#", "ab", false },
	{ "a/#", "b/a", false },
	{ "sport/#", "sport", true },
	{ "sport/#", "sports", false },
	{ "sport/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true },
	{ "sport/tennis/player1/#", "sport/tennis", false },
	/* '+' */
	{ "+", "a", true },
	{ "+", "a/b", false },
	{ "+", "/", false },
	{ "+", "/finance", false },
	{ "+", "$SYS", false },
	{ "/+", "/finance", true },
	{ "+/+", "/finance", true },
	{ "+/+", "/", true },
	{ "+/+", "a/b", true },
	{ "+/+", "a", false },
	{ "+/+", "a/b/c", false },
	{ "+/", "/", true },
	{ "+/", "a", false },
	{ "+/#", "/finance", true },
	{ "+/+/#", "a", false },
	{ "+/tennis/#", "sport/tennis", true },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "a/+/c", "a/b/c", true },
	{ "a/+/c", "a//c", true },
	{ "a/+/c", "a/c", false },
	{ "a/+/+/d", "a/b/c/d", true },
	{ "+/+/+/+", "///", true },
	{ "+/+/+", "///", false },
	{ "a/+", "a/$x", true },
	{ "+/$SYS", "a/$SYS", true },
	/* literal levels, empty levels, leading and trailing '/' */
	{ "a/b", "a/b", true },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b", false },
	{ "a/b/", "a/b/", true },
	{ "a/b/c", "a/b/c/d", false },
	{ "a/b/c/d", "a/b/c", false },
	{ "a//c", "a//c", true },
	{ "a//c", "a/c", false },
	{ "/a", "/a", true },
	{ "/a", "a", false },
	{ "a", "/a", false },
	{ "/", "/", true },
	{ "//", "/", false },
	{ "/", "//", false },
	{ "A", "a", false },
	{ "a ", "a", false },
	{ "sensors/\xc3\xa9/t", "sensors/\xc3\xa9/t", true },
	{ "sensors/\xc3\xa9/t", "sensors/e/t", false },
	{ "sensors/+/t", "sensors/\xc3\xa9/t", true },
	/* '$' topics: only a wildcard in the first level is barred */
	{ "$SYS", "$SYS", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/#", "$SYS/broker/clients", true },
	{ "$SYS/#", "$SYSTEM", false },
	{ "$SYS/+", "$SYS/uptime", true },
	{ "$SYS/+/clients", "$SYS/broker/clients", true },
	{ "+/broker/clients", "$SYS/broker/clients", false },
	{ "+/#", "$SYS/x", false },
	{ "+/+", "$/x", false },
	/* '$share' is an ordinary first level here (shared subscriptions: later) */
	{ "$share/g/#", "$share/g/a", true },
	{ "$share/+/a", "$share/g/a", true },
	{ "$share/g/a", "a", false },
	{ "$share/g/#", "a", false },
	{ "#", "$share/g/a", false },
	{ "+/g/a", "$share/g/a", false },
};

static void
test_match_table(void **state)
{
	size_t n = sizeof(matches) / sizeof(matches[0]);

	(void)state;
	assert_true(n >= 60);
	for (size_t i = 0; i < n; i++) {
		const char *f = matches[i].filter, *s = matches[i].name;

		/* the table itself must hold only valid input */
		assert_int_equal(topic_filter_check(f, strlen(f)), TOPIC_OK);
		assert_int_equal(topic_name_check(s, strlen(s)), TOPIC_OK);
		if (topic_match(f, strlen(f), s, strlen(s)) != matches[i].match)
			fail_msg("row %zu: \"%s\" vs \"%s\": want %s", i, f, s,
			    matches[i].match ? "match" : "no match");
		/* a name is a filter without wildcards, and matches itself */
		assert_true(topic_match(s, strlen(s), s, strlen(s)));
	}
}

/* 32767 '+' levels then '#' against up to 65536 empty levels. */
static void
test_match_deep(void **state)
{
	char *f = malloc(TOPIC_MAX_LEN), *s = malloc(TOPIC_MAX_LEN);

	(void)state;
	assert_non_null(f);
	assert_non_null(s);
	for (size_t i = 0; i + 1 < TOPIC_MAX_LEN; i += 2)
		memcpy(f + i, "+/", 2);
	f[TOPIC_MAX_LEN - 1] = '#';
	memset(s, '/', TOPIC_MAX_LEN);
	assert_int_equal(topic_filter_check(f, TOPIC_MAX_LEN), TOPIC_OK);
	assert_int_equal(topic_name_check(s, TOPIC_MAX_LEN), TOPIC_OK);
	assert_true(topic_match(f, TOPIC_MAX_LEN, s, TOPIC_MAX_LEN));
	assert_true(topic_match(f, TOPIC_MAX_LEN, s, TOPIC_MAX_LEN / 2 - 1));
	assert_false(topic_match(f, TOPIC_MAX_LEN, s, TOPIC_MAX_LEN / 2 - 2));
	f[TOPIC_MAX_LEN - 1] = '+';	/* now exactly 32768 levels */
	assert_true(topic_match(f, TOPIC_MAX_LEN, s, TOPIC_MAX_LEN / 2));
	assert_false(topic_match(f, TOPIC_MAX_LEN, s, TOPIC_MAX_LEN));
	free(f);
	free(s);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int a = TOPIC_OK; a <= TOPIC_BAD_SINGLE_LEVEL; a++) {
		assert_string_not_equal(topic_strerror(a), "unknown topic status");
		for (int b = TOPIC_OK; b < a; b++)
			assert_string_not_equal(topic_strerror(a), topic_strerror(b));
	}
	assert_string_equal(topic_strerror((enum topic_status)99),
	    "unknown topic status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_filter_check),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_match_deep),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
