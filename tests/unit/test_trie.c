/*
 * Unit tests for trie.c: add/remove/match, statuses, '$' rules, pruning back to
 * an empty trie, deep topics, a node-count proof that matching cost does not
 * grow with unrelated subscriptions, and a randomized comparison against
 * topic_match() over every stored filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic/topic.h"
#include "topic/trie.h"

/* Subscribers are slots of this array; a match counts hits per slot. */
#define NSUB 4096
static int	sub[NSUB];
static int	hits[NSUB];

static void
count_hit(void *s, void *arg)
{
	(void)arg;
	hits[(int *)s - sub]++;
}

static size_t
match(struct trie *t, const char *name)
{
	memset(hits, 0, sizeof(hits));
	return trie_match(t, name, strlen(name), count_hit, NULL);
}

static enum trie_status
add(struct trie *t, const char *filter, int s)
{
	return trie_add(t, filter, strlen(filter), &sub[s]);
}

static enum trie_status
del(struct trie *t, const char *filter, int s)
{
	return trie_remove(t, filter, strlen(filter), &sub[s]);
}

static struct trie_stats
stats(const struct trie *t)
{
	struct trie_stats st;

	trie_stats(t, &st);
	return st;
}

static void
test_empty(void **state)
{
	struct trie *t = trie_new(NULL);

	(void)state;
	trie_free(NULL);
	assert_non_null(t);
	assert_int_equal(match(t, "a"), 0);
	assert_int_equal(stats(t).nodes, 0);
	assert_int_equal(stats(t).subs, 0);
	assert_int_equal(stats(t).visits, 1);		/* the root */
	assert_int_equal(del(t, "a", 0), TRIE_NOT_FOUND);
	assert_int_equal(trie_remove(t, "", 0, &sub[0]), TRIE_NOT_FOUND);
	trie_free(t);
}

static void
test_basics(void **state)
{
	struct trie *t = trie_new(NULL);

	(void)state;
	assert_int_equal(add(t, "a/b", 1), TRIE_OK);
	assert_int_equal(add(t, "a/b", 1), TRIE_EXISTS);
	assert_int_equal(add(t, "a/b", 2), TRIE_OK);
	assert_int_equal(add(t, "a", 3), TRIE_OK);
	assert_int_equal(stats(t).subs, 3);
	assert_int_equal(stats(t).nodes, 2);

	assert_int_equal(match(t, "a/b"), 2);
	assert_int_equal(hits[1], 1);
	assert_int_equal(hits[2], 1);
	assert_int_equal(match(t, "a"), 1);
	assert_int_equal(hits[3], 1);
	assert_int_equal(match(t, "a/b/c"), 0);
	assert_int_equal(match(t, "a/"), 0);
	assert_int_equal(match(t, "b"), 0);
	assert_int_equal(match(t, "/a/b"), 0);

	assert_int_equal(del(t, "a/b", 3), TRIE_NOT_FOUND);
	assert_int_equal(del(t, "a/c", 1), TRIE_NOT_FOUND);
	assert_int_equal(del(t, "a/+", 1), TRIE_NOT_FOUND);
	assert_int_equal(del(t, "a/b/c", 1), TRIE_NOT_FOUND);
	assert_int_equal(del(t, "a/#/", 1), TRIE_NOT_FOUND);	/* invalid */
	assert_int_equal(del(t, "a/b", 1), TRIE_OK);
	assert_int_equal(del(t, "a/b", 1), TRIE_NOT_FOUND);
	assert_int_equal(match(t, "a/b"), 1);
	assert_int_equal(hits[2], 1);
	assert_int_equal(stats(t).subs, 2);
	trie_free(t);
}

static void
test_bad_filter(void **state)
{
	struct trie *t = trie_new(NULL);
	const char *bad[] = { "", "a/#/b", "a+", "#/", "a\xff" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(add(t, bad[i], 0), TRIE_BAD_FILTER);
	assert_int_equal(trie_add(t, "a\0b", 3, &sub[0]), TRIE_BAD_FILTER);
	assert_int_equal(stats(t).nodes, 0);
	assert_int_equal(stats(t).subs, 0);
	trie_free(t);
}

/* One sub, three filters that all match: three calls, the broker dedups. */
static void
test_overlap(void **state)
{
	struct trie *t = trie_new(NULL);

	(void)state;
	assert_int_equal(add(t, "a/+", 1), TRIE_OK);
	assert_int_equal(add(t, "a/#", 1), TRIE_OK);
	assert_int_equal(add(t, "#", 1), TRIE_OK);
	assert_int_equal(add(t, "a/b", 2), TRIE_OK);
	assert_int_equal(match(t, "a/b"), 4);
	assert_int_equal(hits[1], 3);
	assert_int_equal(hits[2], 1);
	assert_int_equal(match(t, "a"), 2);		/* "a/#" and "#" */
	assert_int_equal(hits[1], 2);
	assert_int_equal(match(t, "a/"), 3);		/* "+" matches the empty level */
	assert_int_equal(match(t, "b/c"), 1);
	/* NULL callback: just count */
	assert_int_equal(trie_match(t, "a/b", 3, NULL, NULL), 4);
	trie_free(t);
}

static void
test_dollar(void **state)
{
	struct trie *t = trie_new(NULL);

	(void)state;
	assert_int_equal(add(t, "#", 1), TRIE_OK);
	assert_int_equal(add(t, "+/x", 2), TRIE_OK);
	assert_int_equal(add(t, "+/#", 3), TRIE_OK);
	assert_int_equal(add(t, "$SYS/#", 4), TRIE_OK);
	assert_int_equal(add(t, "$SYS/+", 5), TRIE_OK);
	assert_int_equal(add(t, "a/+", 6), TRIE_OK);
	assert_int_equal(add(t, "$share/g/x", 7), TRIE_OK);

	assert_int_equal(match(t, "$SYS/x"), 2);
	assert_int_equal(hits[4] + hits[5], 2);
	assert_int_equal(match(t, "$SYS"), 1);
	assert_int_equal(hits[4], 1);
	assert_int_equal(match(t, "$share/g/x"), 1);	/* literally, nothing shared */
	assert_int_equal(hits[7], 1);
	assert_int_equal(match(t, "a/$SYS"), 3);	/* '$' only counts first */
	assert_int_equal(hits[1] + hits[3] + hits[6], 3);
	assert_int_equal(match(t, "b/x"), 3);
	assert_int_equal(hits[1] + hits[2] + hits[3], 3);
	trie_free(t);
}

static void
test_prune(void **state)
{
	struct trie *t = trie_new(NULL);
	const char *f[] = { "a/b/c", "a/b", "+/#", "/", "a/+/c", "#", "a//b/+", "x" };
	size_t n = sizeof(f) / sizeof(f[0]);

	(void)state;
	assert_int_equal(add(t, "a/b/c", 0), TRIE_OK);
	assert_int_equal(add(t, "a/b", 0), TRIE_OK);
	assert_int_equal(stats(t).nodes, 3);
	assert_int_equal(del(t, "a/b/c", 0), TRIE_OK);
	assert_int_equal(stats(t).nodes, 2);		/* "a/b" still holds a sub */
	assert_int_equal(del(t, "a/b", 0), TRIE_OK);
	assert_int_equal(stats(t).nodes, 0);

	/* two subs per filter, removed in the other order */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(add(t, f[i], 1), TRIE_OK);
		assert_int_equal(add(t, f[i], 2), TRIE_OK);
	}
	assert_int_equal(stats(t).subs, 2 * n);
	assert_int_equal(stats(t).nodes, 14);
	for (size_t i = n; i-- > 0;) {
		assert_int_equal(del(t, f[i], 1), TRIE_OK);
		assert_int_equal(del(t, f[i], 2), TRIE_OK);
	}
	assert_int_equal(stats(t).subs, 0);
	assert_int_equal(stats(t).nodes, 0);
	assert_int_equal(match(t, "a/b/c"), 0);
	trie_free(t);
}

/* Thousands of siblings: the per-node hash table grows with them. */
static void
test_wide(void **state)
{
	struct trie *t = trie_new(NULL);
	char f[32];

	(void)state;
	for (int i = 0; i < NSUB; i++) {
		snprintf(f, sizeof(f), "w/%d", i);
		assert_int_equal(add(t, f, i), TRIE_OK);
	}
	assert_int_equal(stats(t).nodes, NSUB + 1);
	for (int i = 0; i < NSUB; i++) {
		snprintf(f, sizeof(f), "w/%d", i);
		assert_int_equal(match(t, f), 1);
		assert_int_equal(hits[i], 1);
	}
	for (int i = 0; i < NSUB; i += 2) {
		snprintf(f, sizeof(f), "w/%d", i);
		assert_int_equal(del(t, f, i), TRIE_OK);
	}
	for (int i = 0; i < NSUB; i++) {
		snprintf(f, sizeof(f), "w/%d", i);
		assert_int_equal(match(t, f), i % 2);
	}
	assert_int_equal(stats(t).nodes, NSUB / 2 + 1);
	trie_free(t);
}

static int	freed;

static void
free_counted(void *s)
{
	freed++;
	free(s);
}

/* trie_free releases what is left, once per pair; ASan would see a leak. */
static void
test_free_cb(void **state)
{
	struct trie *t = trie_new(free_counted);
	void *a = malloc(1), *b = malloc(1), *c = malloc(1);

	(void)state;
	assert_int_equal(trie_add(t, "a", 1, a), TRIE_OK);
	assert_int_equal(trie_add(t, "a/+", 3, b), TRIE_OK);
	assert_int_equal(trie_add(t, "#", 1, c), TRIE_OK);
	assert_int_equal(trie_remove(t, "#", 1, c), TRIE_OK);	/* still ours */
	freed = 0;
	trie_free(t);
	assert_int_equal(freed, 2);
	free(c);
}

/* The callback may read the trie, even match again. */
static void
nested(void *s, void *arg)
{
	struct trie *t = arg;
	struct trie_stats st;

	trie_stats(t, &st);
	assert_int_equal(st.subs, 2);
	if (s == &sub[1])
		assert_int_equal(trie_match(t, "x", 1, NULL, NULL), 1);
}

static void
test_reentrant_read(void **state)
{
	struct trie *t = trie_new(NULL);

	(void)state;
	assert_int_equal(add(t, "x/#", 1), TRIE_OK);
	assert_int_equal(add(t, "x/y", 2), TRIE_OK);
	assert_int_equal(trie_match(t, "x/y", 3, nested, t), 2);
	trie_free(t);
}

/* 32768 levels: add, match, remove and free without recursion. */
static void
test_deep(void **state)
{
	struct trie *t = trie_new(NULL);
	char *plus = malloc(TOPIC_MAX_LEN), *slash = malloc(TOPIC_MAX_LEN);

	(void)state;
	assert_non_null(plus);
	assert_non_null(slash);
	for (size_t i = 0; i + 1 < TOPIC_MAX_LEN; i += 2)
		memcpy(plus + i, "+/", 2);
	plus[TOPIC_MAX_LEN - 1] = '#';
	memset(slash, '/', TOPIC_MAX_LEN);
	assert_int_equal(trie_add(t, plus, TOPIC_MAX_LEN, &sub[1]), TRIE_OK);
	assert_int_equal(trie_add(t, slash, TOPIC_MAX_LEN, &sub[2]), TRIE_OK);
	assert_int_equal(stats(t).nodes, 32768 + 65536);
	assert_int_equal(trie_match(t, slash, TOPIC_MAX_LEN, count_hit, NULL), 2);
	assert_int_equal(trie_match(t, slash, TOPIC_MAX_LEN / 2 - 1, NULL, NULL), 1);
	assert_int_equal(trie_match(t, slash, TOPIC_MAX_LEN / 2 - 2, NULL, NULL), 0);
	assert_int_equal(trie_remove(t, slash, TOPIC_MAX_LEN, &sub[2]), TRIE_OK);
	assert_int_equal(stats(t).nodes, 32768);
	trie_free(t);		/* still 32768 deep */
	free(plus);
	free(slash);
}

/*
 * The scaling claim, without a clock: the nodes a match enters are the same with
 * 10 or 100,000 unrelated "dev/<i>/temp" subscriptions, and the literal levels
 * it compares while looking up children stay a handful (a scan would compare
 * every sibling).
 */
static void
test_scaling(void **state)
{
	const char *wild[] = { "dev/+/temp", "dev/#", "#", "dev/+/+" };
	uint64_t visits[2], compares[2];
	char f[32];

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct trie *t = trie_new(NULL);
		int n = k == 0 ? 10 : 100000;
		struct trie_stats before, after;

		for (int i = 0; i < n; i++) {
			snprintf(f, sizeof(f), "dev/%d/temp", i);
			assert_int_equal(add(t, f, i % NSUB), TRIE_OK);
		}
		for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++)
			assert_int_equal(add(t, wild[i], 0), TRIE_OK);
		assert_int_equal(stats(t).subs, (size_t)n + 4);
		trie_stats(t, &before);
		assert_int_equal(match(t, "dev/7/temp"), 5);
		trie_stats(t, &after);
		visits[k] = after.visits - before.visits;
		compares[k] = after.compares - before.compares;
		trie_free(t);
	}
	/* root, '#', dev, dev/#, dev/+, dev/+/+, dev/+/temp, dev/7, dev/7/temp */
	assert_int_equal(visits[0], 9);
	assert_int_equal(visits[1], visits[0]);
	/* dev, temp under dev/+, 7, temp under dev/7, plus the odd hash collision */
	assert_in_range(compares[0], 4, 8);
	assert_in_range(compares[1], 4, 8);
}

/* xorshift64*: the test's own deterministic generator. */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1du) >> 32) % n;
}

/* 1 to 5 levels from a small alphabet with empty levels; filters add '+', '#'. */
static void
random_topic(char *out, size_t cap, bool filter)
{
	static const char *lv[] = { "a", "b", "", "cc", "$SYS", "+", "#" };
	size_t len = 0;
	int depth = 1 + (int)rnd(5);

	for (int d = 0; d < depth; d++) {
		const char *l;

		do
			l = lv[rnd(filter ? 7 : 5)];
		while ((l[0] == '#' && d + 1 < depth) || (l[0] == '$' && rnd(3) != 0) ||
		    (depth == 1 && l[0] == '\0'));
		len += (size_t)snprintf(out + len, cap - len, "%s%s", d ? "/" : "", l);
	}
}

/* Returns the number of matches seen, to show the comparison had teeth. */
static size_t
compare_brute(struct trie *t, char (*filter)[64], const bool *live, int nf, int rounds)
{
	char name[64];
	size_t total = 0;

	for (int r = 0; r < rounds; r++) {
		size_t got, want = 0;

		random_topic(name, sizeof(name), false);
		assert_int_equal(topic_name_check(name, strlen(name)), TOPIC_OK);
		got = match(t, name);
		for (int i = 0; i < nf; i++) {
			bool m = live[i] && topic_match(filter[i], strlen(filter[i]),
			    name, strlen(name));

			if (hits[i] != m)
				fail_msg("\"%s\" vs \"%s\": trie %d, topic_match %d",
				    filter[i], name, hits[i], m);
			want += m;
		}
		assert_int_equal(got, want);
		total += got;
	}
	return total;
}

static void
test_random(void **state)
{
	enum { NF = 3000 };
	static char filter[NF][64];
	static bool live[NF];
	struct trie *t = trie_new(NULL);

	(void)state;
	for (int i = 0; i < NF; i++) {
		random_topic(filter[i], sizeof(filter[i]), true);
		assert_int_equal(topic_filter_check(filter[i], strlen(filter[i])), TOPIC_OK);
		assert_int_equal(add(t, filter[i], i), TRIE_OK);
		assert_int_equal(add(t, filter[i], i), TRIE_EXISTS);
		live[i] = true;
	}
	assert_true(compare_brute(t, filter, live, NF, 2000) > 2000 * 10);

	for (int i = 0; i < NF; i++) {
		if (rnd(2) == 0)
			continue;
		assert_int_equal(del(t, filter[i], i), TRIE_OK);
		assert_int_equal(del(t, filter[i], i), TRIE_NOT_FOUND);
		live[i] = false;
	}
	assert_true(compare_brute(t, filter, live, NF, 1000) > 1000 * 10);

	for (int i = 0; i < NF; i++)
		assert_int_equal(del(t, filter[i], i), live[i] ? TRIE_OK : TRIE_NOT_FOUND);
	assert_int_equal(stats(t).subs, 0);
	assert_int_equal(stats(t).nodes, 0);
	trie_free(t);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int a = TRIE_OK; a <= TRIE_BAD_FILTER; a++) {
		assert_string_not_equal(trie_strerror(a), "unknown trie status");
		for (int b = TRIE_OK; b < a; b++)
			assert_string_not_equal(trie_strerror(a), trie_strerror(b));
	}
	assert_string_equal(trie_strerror((enum trie_status)99), "unknown trie status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_basics),
		cmocka_unit_test(test_bad_filter),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_dollar),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_wide),
		cmocka_unit_test(test_free_cb),
		cmocka_unit_test(test_reentrant_read),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_scaling),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
