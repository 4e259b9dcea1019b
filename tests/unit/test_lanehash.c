/*
 * lib/batch/lanehash.c: the lane of a topic must never change between
 * builds, architectures and restarts, so the tests are fixed vectors: the
 * jump consistent hash's published ones (the paper's reference code, as its
 * ports test it), and topic -> hash -> lane vectors computed by an
 * independent Python implementation of FNV-1a 64, fmix64 and the paper's
 * floating-point jump hash. Then the properties the daemon relies on:
 * range, and that adding a lane moves topics only to the new lane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch/lanehash.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
test_topic_vectors(void **state)
{
	static const struct {
		const char	*topic;
		uint64_t	 hash;
		uint32_t	 lane[6];	/* of 1, 2, 3, 4, 8, 32 lanes */
	} v[] = {
		{ "", UINT64_C(0xefd01f60ba992926), { 0, 1, 1, 1, 1, 1 } },
		{ "a", UINT64_C(0x82a2a958a9bece5b), { 0, 1, 1, 3, 5, 24 } },
		{ "foobar", UINT64_C(0x2c22194922d1672b), { 0, 1, 1, 3, 3, 11 } },
		{ "gw01/sensors/temp", UINT64_C(0xfacd560786c09e23),
		    { 0, 1, 1, 1, 1, 23 } },
		{ "$aws/rules/batch/gw01", UINT64_C(0x0b92f314305151e6),
		    { 0, 0, 0, 0, 0, 31 } },
		{ "caf\xc3\xa9/t", UINT64_C(0x847bcc57fbdd0eba),
		    { 0, 0, 0, 0, 0, 0 } },
	};
	static const uint32_t n[] = { 1, 2, 3, 4, 8, 32 };

	(void)state;
	for (size_t i = 0; i < NELEM(v); i++) {
		uint64_t h = lanehash_topic(v[i].topic, strlen(v[i].topic));

		assert_true(h == v[i].hash);
		for (size_t k = 0; k < NELEM(n); k++)
			assert_int_equal(lanehash_pick(h, n[k]), v[i].lane[k]);
	}
	/* bytes, not C strings: a topic is (pointer, length) */
	assert_true(lanehash_topic("ab", 1) == lanehash_topic("a", 1));
	assert_true(lanehash_topic(NULL, 0) == UINT64_C(0xefd01f60ba992926));
}

static void
test_jump_vectors(void **state)
{
	static const struct {
		uint64_t	key;
		uint32_t	n, want;
	} v[] = {
		/* published with the reference code's ports */
		{ 1, 1, 0 },
		{ 42, 57, 43 },
		{ 0xDEAD10CC, 1, 0 },
		{ 0xDEAD10CC, 666, 361 },
		{ 256, 1024, 520 },
		/* from the Python reference */
		{ 0, 2, 0 },
		{ UINT64_MAX, 32, 10 },
		{ UINT64_C(12345678901234567), 100, 5 },
		{ 1, UINT32_MAX, UINT32_C(3094789146) },
	};

	(void)state;
	for (size_t i = 0; i < NELEM(v); i++)
		assert_int_equal(lanehash_pick(v[i].key, v[i].n), v[i].want);
}

static void
test_consistent(void **state)
{
	uint32_t count[4] = { 0 };
	char topic[32];

	(void)state;
	for (unsigned t = 0; t < 2000; t++) {
		uint64_t h;
		size_t len = (size_t)snprintf(topic, sizeof(topic),
		    "gw01/dev-%u/temp", t);

		h = lanehash_topic(topic, len);
		for (uint32_t n = 1; n <= 40; n++) {
			uint32_t a = lanehash_pick(h, n),
			    b = lanehash_pick(h, n + 1);

			assert_true(a < n);
			/* one more lane: stay, or move to the new one */
			assert_true(b == a || b == n);
		}
		count[lanehash_pick(h, 4)]++;
	}
	/* 2000 topics over 4 lanes: each within 10 % of 500 */
	for (int i = 0; i < 4; i++)
		assert_true(count[i] > 450 && count[i] < 550);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topic_vectors),
		cmocka_unit_test(test_jump_vectors),
		cmocka_unit_test(test_consistent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
