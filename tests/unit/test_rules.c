/*
 * Bridge rules (lib/bridge/rules.c): renaming both ways, first match in
 * order, the direction of each rule, the edges where a topic cannot be
 * renamed, invalid rules, and the filters subscribed to at AWS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/rules.h"

static struct rules *
compile(const struct rules_spec *s, size_t n)
{
	struct rules *r = NULL;

	assert_int_equal(rules_compile(s, n, &r, NULL), RULES_OK);
	assert_non_null(r);
	return r;
}

/* Map t the way dir; the new name, or the status when it failed. */
static const char *
map(const struct rules *r, enum rules_dir dir, const char *t,
    struct rules_match *m)
{
	static char out[RULES_TOPIC_MAX + 1];
	struct rules_match dummy;
	enum rules_status st;

	st = rules_map(r, dir, t, strlen(t), out, sizeof(out) - 1,
	    m != NULL ? m : &dummy);
	if (st != RULES_OK)
		return rules_strerror(st);
	out[(m != NULL ? m : &dummy)->len] = '\0';
	return out;
}

static void
test_prefixes_both_ways(void **state)
{
	const struct rules_spec s[] = {
		{ "sensors/#", "", "gw/", RULES_OUT, 1, RULES_ACK_STORED },
		{ "cmd/#", "dev/", "", RULES_IN, 1, RULES_ACK_STORED },
		{ "echo/#", NULL, NULL, RULES_BOTH, 0, RULES_ACK_DELIVERED },
	};
	struct rules *r = compile(s, 3);
	struct rules_match m;

	assert_string_equal(map(r, RULES_OUT, "sensors/t1", &m),
	    "gw/sensors/t1");
	assert_int_equal(m.rule, 0);
	assert_int_equal(m.qos, 1);
	assert_int_equal(m.ack, RULES_ACK_STORED);
	assert_string_equal(map(r, RULES_IN, "cmd/a", &m), "dev/cmd/a");
	assert_int_equal(m.rule, 1);
	assert_string_equal(map(r, RULES_OUT, "echo/x", &m), "echo/x");
	assert_int_equal(m.ack, RULES_ACK_DELIVERED);
	assert_int_equal(m.qos, 0);
	assert_string_equal(map(r, RULES_IN, "echo/x", &m), "echo/x");
	/* each rule only its way */
	assert_string_equal(map(r, RULES_IN, "sensors/t1", NULL),
	    rules_strerror(RULES_NOMATCH));
	assert_string_equal(map(r, RULES_IN, "gw/sensors/t1", NULL),
	    rules_strerror(RULES_NOMATCH));
	assert_string_equal(map(r, RULES_OUT, "dev/cmd/a", NULL),
	    rules_strerror(RULES_NOMATCH));
	assert_true(rules_any_out(r));
	rules_free(r);
}

static void
test_first_match_in_order(void **state)
{
	const struct rules_spec s[] = {
		{ "a/+/c", "", "first/", RULES_OUT, 0, RULES_ACK_STORED },
		{ "a/#", "", "second/", RULES_OUT, 1, RULES_ACK_DELIVERED },
	};
	struct rules *r = compile(s, 2);
	struct rules_match m;

	assert_string_equal(map(r, RULES_OUT, "a/b/c", &m), "first/a/b/c");
	assert_int_equal(m.rule, 0);
	assert_string_equal(map(r, RULES_OUT, "a/b/d", &m), "second/a/b/d");
	assert_int_equal(m.rule, 1);
	/* '#' matches its parent level too */
	assert_string_equal(map(r, RULES_OUT, "a", &m), "second/a");
	rules_free(r);
}

static void
test_dollar_topics_and_wildcards(void **state)
{
	const struct rules_spec s[] = {
		{ "#", "", "", RULES_OUT, 1, RULES_ACK_STORED },
		{ "$aws/things/+/shadow/update", "", "", RULES_OUT, 1,
		    RULES_ACK_STORED },
	};
	struct rules *r = compile(s, 2);
	struct rules_match m;

	assert_string_equal(map(r, RULES_OUT, "x/y", &m), "x/y");
	assert_int_equal(m.rule, 0);
	assert_string_equal(map(r, RULES_OUT, "$aws/things/t1/shadow/update",
	    &m), "$aws/things/t1/shadow/update");
	assert_int_equal(m.rule, 1);
	/* a leading wildcard never matches a $ topic (MQTT-4.7.2-1) */
	assert_string_equal(map(r, RULES_OUT, "$other/x", NULL),
	    rules_strerror(RULES_NOMATCH));
	rules_free(r);
}

static void
test_unmappable(void **state)
{
	const struct rules_spec s[] = {
		/* "dev/#" also matches "dev", which has nothing after "dev/" */
		{ "#", "dev/", "gw/", RULES_BOTH, 1, RULES_ACK_STORED },
		{ "+", "x/", "", RULES_OUT, 1, RULES_ACK_STORED },
	};
	struct rules *r = compile(s, 2);
	char small[4];
	struct rules_match m;

	assert_string_equal(map(r, RULES_OUT, "dev", NULL),
	    rules_strerror(RULES_UNMAPPABLE));
	assert_string_equal(map(r, RULES_IN, "gw", NULL),
	    rules_strerror(RULES_UNMAPPABLE));
	assert_string_equal(map(r, RULES_OUT, "dev/a", NULL), "gw/a");
	/* "x/" matched by "x/+": the new name would be empty */
	assert_string_equal(map(r, RULES_OUT, "x/", NULL),
	    rules_strerror(RULES_UNMAPPABLE));
	/* no room in out */
	assert_int_equal(rules_map(r, RULES_OUT, "dev/abc", 7, small,
	    sizeof(small), &m), RULES_UNMAPPABLE);
	rules_free(r);
}

static void
test_too_long_after_renaming(void **state)
{
	static char topic[RULES_TOPIC_MAX + 1], out[RULES_TOPIC_MAX + 8];
	const struct rules_spec s[] = {
		{ "#", "", "gw/", RULES_OUT, 1, RULES_ACK_STORED },
	};
	struct rules *r = compile(s, 1);
	struct rules_match m;

	memset(topic, 'a', sizeof(topic));
	assert_int_equal(rules_map(r, RULES_OUT, topic, RULES_TOPIC_MAX - 3,
	    out, sizeof(out), &m), RULES_OK);
	assert_int_equal(m.len, RULES_TOPIC_MAX);
	assert_int_equal(rules_map(r, RULES_OUT, topic, RULES_TOPIC_MAX - 2,
	    out, sizeof(out), &m), RULES_UNMAPPABLE);
	rules_free(r);
}

static void
test_invalid_rules(void **state)
{
	const struct rules_spec bad[] = {
		{ "ok/#", "", "", RULES_OUT, 1, RULES_ACK_STORED },
		{ "a/#/b", "", "", RULES_OUT, 1, RULES_ACK_STORED },
	};
	const struct rules_spec wild[] = {
		{ "t", "+/", "", RULES_OUT, 1, RULES_ACK_STORED },
	};
	const struct rules_spec empty[] = {
		{ "", "", "", RULES_OUT, 1, RULES_ACK_STORED },
	};
	struct rules *r = (struct rules *)1;
	size_t at = 99;

	assert_int_equal(rules_compile(bad, 2, &r, &at), RULES_INVALID);
	assert_null(r);
	assert_int_equal(at, 1);
	assert_int_equal(rules_compile(wild, 1, &r, &at), RULES_INVALID);
	assert_int_equal(at, 0);
	assert_int_equal(rules_compile(empty, 1, &r, &at), RULES_INVALID);
	/* no rules at all is fine: nothing goes anywhere */
	assert_int_equal(rules_compile(NULL, 0, &r, NULL), RULES_OK);
	assert_false(rules_any_out(r));
	assert_int_equal(rules_filters(r), 0);
	assert_string_equal(map(r, RULES_OUT, "a", NULL),
	    rules_strerror(RULES_NOMATCH));
	rules_free(r);
}

static void
test_filters_once_at_highest_qos(void **state)
{
	const struct rules_spec s[] = {
		{ "cmd/#", "", "", RULES_IN, 0, RULES_ACK_STORED },
		{ "sensors/#", "", "gw/", RULES_OUT, 1, RULES_ACK_STORED },
		{ "ota/#", "local/", "", RULES_BOTH, 2, RULES_ACK_STORED },
		{ "cmd/#", "other/", "", RULES_IN, 1, RULES_ACK_STORED },
		{ "#", "", "gw/", RULES_IN, 0, RULES_ACK_STORED },
	};
	struct rules *r = compile(s, 5);
	uint8_t q;

	assert_int_equal(rules_filters(r), 3);
	assert_string_equal(rules_filter(r, 0, &q), "cmd/#");
	assert_int_equal(q, 1);		/* raised by the fourth rule */
	assert_string_equal(rules_filter(r, 1, &q), "ota/#");
	assert_int_equal(q, 1);		/* AWS has no QoS 2 */
	assert_string_equal(rules_filter(r, 2, &q), "gw/#");
	assert_int_equal(q, 0);
	assert_null(rules_filter(r, 3, &q));
	rules_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefixes_both_ways),
		cmocka_unit_test(test_first_match_in_order),
		cmocka_unit_test(test_dollar_topics_and_wildcards),
		cmocka_unit_test(test_unmappable),
		cmocka_unit_test(test_too_long_after_renaming),
		cmocka_unit_test(test_invalid_rules),
		cmocka_unit_test(test_filters_once_at_highest_qos),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
