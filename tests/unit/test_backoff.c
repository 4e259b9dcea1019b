/* Reconnect backoff: the SDK's formula, the stability reset and the jitter bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/backoff.h"

static void
test_formula_defaults(void **state)
{
	/* base 1 s, max 32 s: 1, 2, 4, 8, 16, 32, 32, ... */
	static const uint64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000,
	    32000, 32000 };
	struct backoff b;

	backoff_init(&b, 1000, 32000, 20000, false);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(backoff_next(&b, 0), want[i]);
}

static void
test_max_not_a_power_of_two_multiple(void **state)
{
	struct backoff b;

	backoff_init(&b, 1000, 5000, 20000, false);
	assert_int_equal(backoff_next(&b, 0), 1000);
	assert_int_equal(backoff_next(&b, 0), 2000);
	assert_int_equal(backoff_next(&b, 0), 4000);
	assert_int_equal(backoff_next(&b, 0), 5000);
	assert_int_equal(backoff_next(&b, 0), 5000);
}

static void
test_reset_only_after_stable(void **state)
{
	struct backoff b;

	backoff_init(&b, 1000, 32000, 20000, false);
	for (int i = 0; i < 4; i++)
		(void)backoff_next(&b, 0);
	assert_int_equal(backoff_peek(&b), 16000);
	/* up 19.999 s: not stable, the sequence goes on */
	assert_false(backoff_connection_ended(&b, 19999));
	assert_int_equal(backoff_next(&b, 0), 16000);
	assert_true(backoff_connection_ended(&b, 20000));
	assert_int_equal(backoff_next(&b, 0), 1000);
}

static void
test_jitter_bounds(void **state)
{
	struct backoff b;
	uint64_t lo, hi;

	backoff_init(&b, 1000, 32000, 20000, true);
	for (int i = 0; i < 5; i++)
		(void)backoff_next(&b, 0);
	/* at t = 32 s, jitter keeps the delay within [24 s, 32 s] */
	lo = backoff_next(&b, UINT32_MAX);
	hi = backoff_next(&b, 0);
	assert_int_equal(hi, 32000);
	assert_true(lo >= 24000 && lo < 24010);
	/* and different random values give different delays */
	assert_true(backoff_next(&b, 1u << 31) != backoff_next(&b, 1u << 30));
}

static void
test_to_max(void **state)
{
	struct backoff b;

	backoff_init(&b, 1000, 32000, 20000, false);
	backoff_to_max(&b);
	assert_int_equal(backoff_next(&b, 0), 32000);
}

static void
test_huge_values_do_not_overflow(void **state)
{
	struct backoff b;

	backoff_init(&b, 1, UINT64_MAX / 2, 0, true);
	for (int i = 0; i < 200; i++)
		assert_true(backoff_next(&b, UINT32_MAX) <= UINT64_MAX / 2);
	assert_int_equal(backoff_peek(&b), UINT64_MAX / 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formula_defaults),
		cmocka_unit_test(test_max_not_a_power_of_two_multiple),
		cmocka_unit_test(test_reset_only_after_stable),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_to_max),
		cmocka_unit_test(test_huge_values_do_not_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
