/*
 * The subscription trie: (topic filter, subscriber) pairs, one trie level per
 * filter level, so that matching a topic name costs a walk down its levels and
 * not a scan of every subscription. The trie stores opaque subscriber pointers
 * and never looks behind them; pairs are keyed by the filter's bytes and the
 * pointer's identity. Filters are taken literally: "$share/g/a" is three levels
 * like any other filter (shared subscriptions are the broker's business).
 */
#ifndef IOTB_TRIE_H
#define IOTB_TRIE_H

#include <stddef.h>
#include <stdint.h>

struct trie;

enum trie_status {
	TRIE_OK = 0,
	TRIE_EXISTS,		/* trie_add: the pair is already stored */
	TRIE_NOT_FOUND,		/* trie_remove: no such pair */
	TRIE_NOMEM,		/* out of memory; the trie is unchanged */
	TRIE_BAD_FILTER,	/* topic_filter_check() refused the filter */
};

struct trie_stats {
	size_t		subs;		/* (filter, sub) pairs stored */
	size_t		nodes;		/* trie nodes, the root not counted */
	uint64_t	visits;		/* nodes entered by trie_match, in total */
	uint64_t	compares;	/* child levels it compared, in total */
};

/* Called by trie_match once per matching pair. */
typedef void (*trie_match_cb)(void *sub, void *arg);

/* Called by trie_free once per pair still stored. */
typedef void (*trie_free_cb)(void *sub);

/*
 * A new empty trie, or NULL when out of memory. free_sub may be NULL; if not,
 * trie_free calls it once per pair still stored, so a sub stored under two
 * filters is passed to it twice (store one object per pair, or count references).
 */
struct trie	*trie_new(trie_free_cb free_sub);

/* Free the trie and, through free_sub, the subs still in it. NULL is a no-op. */
void		 trie_free(struct trie *t);

/*
 * Store the pair (filter[0..len), sub). The filter bytes are copied. sub is kept
 * as an opaque pointer (NULL is allowed) and not owned: only trie_free passes
 * the subs still stored to free_sub.
 * Returns:
 *	TRIE_OK		 stored
 *	TRIE_EXISTS	 the pair was already stored; nothing changed, so a
 *			 re-SUBSCRIBE can update the options kept behind sub
 *	TRIE_BAD_FILTER	 not a valid topic filter (see topic_filter_check())
 *	TRIE_NOMEM	 out of memory; the trie is as it was
 */
enum trie_status trie_add(struct trie *t, const char *filter, size_t len,
		    void *sub);

/*
 * Remove the pair (filter[0..len), sub) and free the nodes it leaves empty.
 * Nothing is done to sub itself. There is no "remove every pair of one sub": the
 * broker keeps each client's filters and removes them one by one.
 * Returns:
 *	TRIE_OK		 removed
 *	TRIE_NOT_FOUND	 no such pair (whether or not the filter is valid)
 */
enum trie_status trie_remove(struct trie *t, const char *filter, size_t len,
		    void *sub);

/*
 * Call cb(sub, arg) for every stored pair whose filter matches the topic name
 * name[0..len) as topic_match() defines it, and return the number of pairs;
 * cb may be NULL to only count them. The name is borrowed for the call.
 * A sub that subscribed with two overlapping filters ("a/+" and "a/#") is
 * reported once per filter: deduplicating, e.g. by keeping the highest QoS, is
 * the caller's job. The order of the calls is unspecified.
 * name should have passed topic_name_check(); anything else is matched level by
 * level without harm ('+' and '#' in a name match only wildcards).
 *
 * Cost does not grow with unrelated subscriptions: the walk enters only nodes
 * whose filter prefix matches the name (per level: the literal child, found by
 * hashing, and the '+' and '#' children), so it is O(depth * 2^w) where w is the
 * number of levels at which a '+' branch is taken; trie_stats() counts the
 * nodes entered. There is no recursion, so a deep topic cannot exhaust the stack.
 *
 * cb may read the trie (trie_match, trie_stats) but must not change it
 * (trie_add, trie_remove, trie_free): the walk keeps pointers into it.
 */
size_t		 trie_match(struct trie *t, const char *name, size_t len,
		    trie_match_cb cb, void *arg);

/* Fill *st with the trie's current counts and cumulative match counters. */
void		 trie_stats(const struct trie *t, struct trie_stats *st);

/* Static English text for a status. */
const char	*trie_strerror(enum trie_status st);

#endif
