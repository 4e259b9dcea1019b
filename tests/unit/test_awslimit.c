/*
 * AWS IoT Core's publish limits (lib/bridge/awslimit.c) at their defaults
 * (128 KiB payload, 256-byte topic, 7 slashes): each limit at and past its
 * edge, the reserved "$" topics, the Basic Ingest prefix that does not
 * count, the order of the checks and the operator-facing explanations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/awslimit.h"

static const struct awslimit aws = {
	.max_payload = 128 * 1024,
	.max_topic_length = 256,
	.max_topic_slashes = 7,
};

static enum awslimit_status
chk(const char *t, size_t plen)
{
	return awslimit_check(&aws, t, strlen(t), plen);
}

static void
test_payload(void **state)
{
	assert_int_equal(chk("a/b", 128 * 1024), AWSLIMIT_OK);
	assert_int_equal(chk("a/b", 128 * 1024 + 1), AWSLIMIT_PAYLOAD);
	assert_int_equal(chk("a/b", 0), AWSLIMIT_OK);
}

static void
test_topic_length(void **state)
{
	char t[300];

	memset(t, 'x', sizeof(t));
	assert_int_equal(awslimit_check(&aws, t, 256, 1), AWSLIMIT_OK);
	assert_int_equal(awslimit_check(&aws, t, 257, 1),
	    AWSLIMIT_TOPIC_LENGTH);
}

static void
test_topic_depth(void **state)
{
	assert_int_equal(chk("a/b/c/d/e/f/g/h", 1), AWSLIMIT_OK);	/* 7 */
	assert_int_equal(chk("gw/a/b/c/d/e/f/g", 1), AWSLIMIT_OK);
	assert_int_equal(chk("gw/sensors/a/b/c/d/e/f/g", 1),
	    AWSLIMIT_TOPIC_DEPTH);					/* 8 */
	assert_int_equal(chk("////////", 1), AWSLIMIT_TOPIC_DEPTH);
}

static void
test_reserved(void **state)
{
	assert_int_equal(chk("$custom/x", 1), AWSLIMIT_RESERVED);
	assert_int_equal(chk("$aws/unknown/x", 1), AWSLIMIT_RESERVED);
	assert_int_equal(chk("$", 1), AWSLIMIT_RESERVED);
	/* the prefix alone is no topic under it */
	assert_int_equal(chk("$aws/things/", 1), AWSLIMIT_RESERVED);
	assert_int_equal(chk("$aws/things/t1/shadow/update", 1), AWSLIMIT_OK);
	assert_int_equal(chk("$aws/rules/r/x", 1), AWSLIMIT_OK);
	assert_int_equal(chk("$aws/sitewise/asset-models/x", 1), AWSLIMIT_OK);
	assert_int_equal(chk("$aws/defender/metrics/json", 1), AWSLIMIT_OK);
}

/* "$aws/rules/RULE/" counts neither towards the length nor the depth. */
static void
test_basic_ingest_prefix_not_counted(void **state)
{
	char t[400];
	size_t n = strlen("$aws/rules/my_rule/");

	memcpy(t, "$aws/rules/my_rule/", n);
	memset(t + n, 'x', sizeof(t) - n);
	assert_int_equal(awslimit_check(&aws, t, n + 256, 1), AWSLIMIT_OK);
	assert_int_equal(awslimit_check(&aws, t, n + 257, 1),
	    AWSLIMIT_TOPIC_LENGTH);
	assert_int_equal(chk("$aws/rules/r/a/b/c/d/e/f/g/h", 1), AWSLIMIT_OK);
	assert_int_equal(chk("$aws/rules/r/a/b/c/d/e/f/g/h/i", 1),
	    AWSLIMIT_TOPIC_DEPTH);
	/* the rule name alone, no slash after it */
	assert_int_equal(chk("$aws/rules/r", 1), AWSLIMIT_OK);
	/* and other reserved topics count whole */
	assert_int_equal(chk("$aws/things/t/a/b/c/d/e/f", 1),
	    AWSLIMIT_TOPIC_DEPTH);
}

static void
test_order_of_checks(void **state)
{
	/* everything wrong at once: the payload is said first */
	assert_int_equal(chk("$x/a/b/c/d/e/f/g/h/i", 1 << 20),
	    AWSLIMIT_PAYLOAD);
	assert_int_equal(chk("$x/a/b/c/d/e/f/g/h/i", 1), AWSLIMIT_RESERVED);
}

static void
test_explanations_and_names(void **state)
{
	char buf[160];
	const char *deep = "gw/sensors/a/b/c/d/e/f/g";

	assert_string_equal(awslimit_explain(&aws, AWSLIMIT_PAYLOAD, "t", 1,
	    131073, buf, sizeof(buf)), "payload of 131073 bytes is over "
	    "aws.limits.max_payload (131072)");
	assert_string_equal(awslimit_explain(&aws, AWSLIMIT_TOPIC_DEPTH, deep,
	    strlen(deep), 1, buf, sizeof(buf)), "topic has 8 '/', over "
	    "aws.limits.max_topic_slashes (7)");
	assert_string_equal(awslimit_explain(&aws, AWSLIMIT_TOPIC_LENGTH,
	    "$aws/rules/r/abc", 16, 1, buf, sizeof(buf)), "topic of 3 bytes "
	    "is over aws.limits.max_topic_length (256)");
	assert_non_null(strstr(awslimit_explain(&aws, AWSLIMIT_RESERVED,
	    "$x", 2, 1, buf, sizeof(buf)), "reserved"));
	/* a short buffer is cut, still terminated */
	awslimit_explain(&aws, AWSLIMIT_PAYLOAD, "t", 1, 1, buf, 8);
	assert_int_equal(strlen(buf), 7);
	assert_string_equal(awslimit_name(AWSLIMIT_PAYLOAD),
	    "payload_too_large");
	assert_string_equal(awslimit_name(AWSLIMIT_TOPIC_LENGTH),
	    "topic_too_long");
	assert_string_equal(awslimit_name(AWSLIMIT_TOPIC_DEPTH),
	    "topic_too_deep");
	assert_string_equal(awslimit_name(AWSLIMIT_RESERVED),
	    "reserved_topic");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_topic_length),
		cmocka_unit_test(test_topic_depth),
		cmocka_unit_test(test_reserved),
		cmocka_unit_test(test_basic_ingest_prefix_not_counted),
		cmocka_unit_test(test_order_of_checks),
		cmocka_unit_test(test_explanations_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
