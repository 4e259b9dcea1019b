/* Token bucket: burst, steady rate, waiting time, oversized requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/ratelimit.h"

static void
test_burst_then_refused(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 100, 100, 0);
	for (int i = 0; i < 100; i++)
		assert_true(ratelimit_take(&rl, 1, 0));
	assert_false(ratelimit_take(&rl, 1, 0));
	/* one token every 10 ms */
	assert_int_equal(ratelimit_delay_us(&rl, 1, 0), 10000);
	assert_false(ratelimit_take(&rl, 1, 9999));
	assert_true(ratelimit_take(&rl, 1, 10000));
}

static void
test_steady_rate(void **state)
{
	struct ratelimit rl;
	uint64_t now = 0;
	int sent = 0;

	/* 50 Hz with a bucket of 1: exactly 50 in a second after the first */
	ratelimit_init(&rl, 50, 1, 0);
	assert_true(ratelimit_take(&rl, 1, now));
	while (now < 1000000) {
		now += ratelimit_delay_us(&rl, 1, now);
		if (now > 1000000)
			break;
		assert_true(ratelimit_take(&rl, 1, now));
		sent++;
	}
	assert_int_equal(sent, 50);
}

static void
test_bandwidth_bytes(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 512 * 1024, 512 * 1024, 0);
	assert_true(ratelimit_take(&rl, 128 * 1024, 0));
	assert_true(ratelimit_take(&rl, 384 * 1024, 0));
	assert_false(ratelimit_take(&rl, 1024, 0));
	/* 1 KiB at 512 KiB/s takes 1/512 s, rounded up to the microsecond */
	assert_int_equal(ratelimit_delay_us(&rl, 1024, 0), 1954);
}

static void
test_oversized_request_waits_for_full_bucket(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 10, 5, 0);
	assert_true(ratelimit_take(&rl, 1, 0));
	assert_false(ratelimit_take(&rl, 50, 0));
	assert_int_equal(ratelimit_delay_us(&rl, 50, 0), 100000);
	assert_true(ratelimit_take(&rl, 50, 100000));
	assert_false(ratelimit_take(&rl, 1, 100000));
}

static void
test_unlimited_and_clock_quirks(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 0, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(&rl, 1000000, 0));
	assert_int_equal(ratelimit_delay_us(&rl, 1, 0), 0);

	/* a long gap does not overflow, a clock going back does not refill */
	ratelimit_init(&rl, 1000000, 10, 1000);
	assert_true(ratelimit_take(&rl, 10, 1000));
	assert_false(ratelimit_take(&rl, 1, 500));
	assert_true(ratelimit_take(&rl, 10, UINT64_MAX));
	assert_false(ratelimit_take(&rl, 1, UINT64_MAX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refused),
		cmocka_unit_test(test_steady_rate),
		cmocka_unit_test(test_bandwidth_bytes),
		cmocka_unit_test(test_oversized_request_waits_for_full_bucket),
		cmocka_unit_test(test_unlimited_and_clock_quirks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
