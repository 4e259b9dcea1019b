/* Hash map: a randomized comparison against a plain array, and deletion shifts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"

#define NKEYS 512

static char keys[NKEYS][8];

static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
test_against_model(void **state)
{
	void *model[NKEYS] = { 0 };
	struct hmap m;
	uint32_t seed = 12345;
	size_t count = 0;

	for (int i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
	hmap_init(&m, 42);
	for (int op = 0; op < 200000; op++) {
		uint32_t k = rnd(&seed) % NKEYS;
		size_t len = strlen(keys[k]);
		void *old;

		switch (rnd(&seed) % 3) {
		case 0:
			assert_true(hmap_put(&m, keys[k], len, keys[k] + 1, &old));
			assert_ptr_equal(old, model[k]);
			count += model[k] == NULL;
			model[k] = keys[k] + 1;
			break;
		case 1:
			assert_ptr_equal(hmap_del(&m, keys[k], len), model[k]);
			count -= model[k] != NULL;
			model[k] = NULL;
			break;
		default:
			assert_ptr_equal(hmap_get(&m, keys[k], len), model[k]);
			break;
		}
		assert_int_equal(m.count, count);
	}
	/* every remaining entry is found once by iteration */
	size_t pos = 0, seen = 0;
	void *v;

	while ((v = hmap_next(&m, &pos)) != NULL)
		seen++;
	assert_int_equal(seen, count);
	hmap_clear(&m);
}

static void
test_keys_by_content_and_length(void **state)
{
	struct hmap m;
	char a[] = "abc", b[] = "abc";
	int x, y;

	hmap_init(&m, 0);
	assert_null(hmap_get(&m, "abc", 3));
	assert_null(hmap_del(&m, "abc", 3));
	assert_true(hmap_put(&m, a, 3, &x, NULL));
	assert_ptr_equal(hmap_get(&m, b, 3), &x);	/* same bytes, other pointer */
	assert_null(hmap_get(&m, b, 2));		/* a prefix is another key */
	assert_true(hmap_put(&m, "", 0, &y, NULL));	/* the empty key is a key */
	assert_ptr_equal(hmap_get(&m, "", 0), &y);
	assert_ptr_equal(hmap_del(&m, b, 3), &x);
	assert_null(hmap_get(&m, a, 3));
	assert_int_equal(m.count, 1);
	hmap_clear(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_model),
		cmocka_unit_test(test_keys_by_content_and_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
