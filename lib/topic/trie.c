/*
 * The subscription trie. A node is one filter level, allocated together with its
 * level bytes, and holds the subs whose filter ends there. Literal children hang
 * off a small chained hash table per node (the chain link lives in the child, so
 * a child costs no allocation besides itself) that doubles once it holds as many
 * children as buckets; the '+' and '#' children have pointers of their own
 * because every match looks at them. Parent pointers let trie_match backtrack
 * and trie_free tear down without recursion, whatever the depth of a topic, and
 * let trie_remove free the nodes a removal leaves empty. Invariant: every node
 * but the root holds a sub or a child.
 */
#include "topic/trie.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic/topic.h"

struct trie_node {
	struct trie_node	 *parent;
	struct trie_node	 *next;		/* in the parent's bucket chain */
	struct trie_node	 *plus;		/* the '+' child */
	struct trie_node	 *multi;	/* the '#' child */
	struct trie_node	**bucket;	/* literal children by level hash */
	void			**sub;
	uint32_t		  nbucket;	/* 0 or a power of two */
	uint32_t		  nchild;	/* '+' and '#' included */
	uint32_t		  nsub;
	uint32_t		  subcap;
	uint32_t		  hash;		/* of level, kept for rehashing */
	uint32_t		  len;
	char			  level[];
};

struct trie {
	struct trie_node	*root;
	trie_free_cb		 free_sub;
	size_t			 nodes;
	size_t			 subs;
	uint64_t		 visits;
	uint64_t		 compares;
};

/*
 * FNV-1a, folded: a multiply only carries bits upwards, so without the fold the
 * low bits that pick a bucket in a small table would see only the low bits of
 * each byte ("a" and "e" would always collide in a 4-bucket table).
 */
static uint32_t
trie_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h ^ h >> 16;
}

static size_t
trie_level_len(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);

	return slash != NULL ? (size_t)(slash - s) : len;
}

static struct trie_node *
node_new(struct trie_node *parent, const char *level, size_t len, uint32_t hash)
{
	struct trie_node *n;

	if ((n = calloc(1, sizeof(*n) + len)) == NULL)
		return NULL;
	n->parent = parent;
	n->hash = hash;
	n->len = (uint32_t)len;		/* a level is at most TOPIC_MAX_LEN */
	memcpy(n->level, level, len);
	return n;
}

static void
node_free(struct trie_node *n)
{
	free(n->bucket);
	free(n->sub);
	free(n);
}

/* The literal child of n for level[0..len), counting the levels compared. */
static struct trie_node *
node_find(const struct trie_node *n, const char *level, size_t len, uint32_t hash,
    uint64_t *compares)
{
	struct trie_node *c;

	if (n->nbucket == 0)
		return NULL;
	for (c = n->bucket[hash & (n->nbucket - 1)]; c != NULL; c = c->next) {
		if (compares != NULL)
			(*compares)++;
		if (c->hash == hash && c->len == len &&
		    memcmp(c->level, level, len) == 0)
			return c;
	}
	return NULL;
}

/* Double n's bucket table (or create it) and rehash the children into it. */
static bool
node_grow(struct trie_node *n)
{
	uint32_t nb = n->nbucket != 0 ? n->nbucket * 2 : 4;
	struct trie_node **b, *c, *next;

	if (nb < n->nbucket || (b = calloc(nb, sizeof(*b))) == NULL)
		return false;
	for (uint32_t i = 0; i < n->nbucket; i++) {
		for (c = n->bucket[i]; c != NULL; c = next) {
			next = c->next;
			c->next = b[c->hash & (nb - 1)];
			b[c->hash & (nb - 1)] = c;
		}
	}
	free(n->bucket);
	n->bucket = b;
	n->nbucket = nb;
	return true;
}

/* Detach and return any child of n, NULL when it has none. For teardown only:
 * it shrinks nbucket past the emptied buckets, so n can no longer be searched. */
static struct trie_node *
node_pop_child(struct trie_node *n)
{
	struct trie_node *c;

	if ((c = n->plus) != NULL) {
		n->plus = NULL;
		return c;
	}
	if ((c = n->multi) != NULL) {
		n->multi = NULL;
		return c;
	}
	while (n->nbucket > 0 && n->bucket[n->nbucket - 1] == NULL)
		n->nbucket--;
	if (n->nbucket == 0)
		return NULL;
	c = n->bucket[n->nbucket - 1];
	n->bucket[n->nbucket - 1] = c->next;
	return c;
}

static size_t
node_report(const struct trie_node *n, trie_match_cb cb, void *arg)
{
	if (cb != NULL)
		for (uint32_t i = 0; i < n->nsub; i++)
			cb(n->sub[i], arg);
	return n->nsub;
}

/* Free n and then its ancestors for as long as they hold nothing. */
static void
trie_prune(struct trie *t, struct trie_node *n)
{
	while (n != t->root && n->nsub == 0 && n->nchild == 0) {
		struct trie_node *p = n->parent, **pp;

		if (p->plus == n) {
			p->plus = NULL;
		} else if (p->multi == n) {
			p->multi = NULL;
		} else {
			pp = &p->bucket[n->hash & (p->nbucket - 1)];
			while (*pp != n)
				pp = &(*pp)->next;
			*pp = n->next;
		}
		p->nchild--;
		node_free(n);
		t->nodes--;
		n = p;
	}
}

/* The child of n for one filter level, created if absent and create is set.
 * NULL when absent, or out of memory. */
static struct trie_node *
trie_child(struct trie *t, struct trie_node *n, const char *level, size_t len,
    bool create)
{
	struct trie_node **slot, *c;
	uint32_t hash = 0;

	if (len == 1 && (level[0] == '+' || level[0] == '#')) {
		slot = level[0] == '+' ? &n->plus : &n->multi;
		if (*slot != NULL || !create)
			return *slot;
	} else {
		hash = trie_hash(level, len);
		if ((c = node_find(n, level, len, hash, NULL)) != NULL || !create)
			return c;
		if (n->nchild >= n->nbucket && !node_grow(n))
			return NULL;
		slot = &n->bucket[hash & (n->nbucket - 1)];
	}
	if ((c = node_new(n, level, len, hash)) == NULL)
		return NULL;
	c->next = *slot;	/* NULL for the '+' and '#' slots */
	*slot = c;
	n->nchild++;
	t->nodes++;
	return c;
}

/* The node at the end of filter, created level by level if create is set. NULL
 * when absent, or out of memory: then the nodes this call created are freed. */
static struct trie_node *
trie_path(struct trie *t, const char *filter, size_t len, bool create)
{
	struct trie_node *n = t->root, *c;
	size_t i = 0, l;

	for (;;) {
		l = trie_level_len(filter + i, len - i);
		if ((c = trie_child(t, n, filter + i, l, create)) == NULL) {
			trie_prune(t, n);	/* a no-op unless create made n */
			return NULL;
		}
		n = c;
		if ((i += l) == len)
			return n;
		i++;			/* skip the '/' */
	}
}

struct trie *
trie_new(trie_free_cb free_sub)
{
	struct trie *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	if ((t->root = node_new(NULL, "", 0, 0)) == NULL)
		goto fail;
	t->free_sub = free_sub;
	return t;
fail:
	free(t);
	return NULL;
}

void
trie_free(struct trie *t)
{
	struct trie_node *n, *next;

	if (t == NULL)
		return;
	for (n = t->root; n != NULL; n = next) {
		if ((next = node_pop_child(n)) != NULL)
			continue;	/* leaves first */
		if (t->free_sub != NULL)
			for (uint32_t i = 0; i < n->nsub; i++)
				t->free_sub(n->sub[i]);
		next = n->parent;
		node_free(n);
	}
	free(t);
}

enum trie_status
trie_add(struct trie *t, const char *filter, size_t len, void *sub)
{
	struct trie_node *n;
	void **s;
	size_t cap;

	if (topic_filter_check(filter, len) != TOPIC_OK)
		return TRIE_BAD_FILTER;
	if ((n = trie_path(t, filter, len, true)) == NULL)
		return TRIE_NOMEM;
	for (uint32_t i = 0; i < n->nsub; i++)
		if (n->sub[i] == sub)
			return TRIE_EXISTS;
	if (n->nsub == n->subcap) {
		cap = n->subcap != 0 ? (size_t)n->subcap * 2 : 2;
		/* cap * sizeof(*s) within 32 bits: no overflow on any size_t */
		if (cap > UINT32_MAX / sizeof(*s) ||
		    (s = realloc(n->sub, cap * sizeof(*s))) == NULL)
			goto fail;
		n->sub = s;
		n->subcap = (uint32_t)cap;
	}
	n->sub[n->nsub++] = sub;
	t->subs++;
	return TRIE_OK;
fail:
	trie_prune(t, n);
	return TRIE_NOMEM;
}

enum trie_status
trie_remove(struct trie *t, const char *filter, size_t len, void *sub)
{
	struct trie_node *n;

	if (len == 0 || (n = trie_path(t, filter, len, false)) == NULL)
		return TRIE_NOT_FOUND;
	for (uint32_t i = 0; i < n->nsub; i++) {
		if (n->sub[i] != sub)
			continue;
		n->sub[i] = n->sub[--n->nsub];	/* order does not matter */
		t->subs--;
		trie_prune(t, n);
		return TRIE_OK;
	}
	return TRIE_NOT_FOUND;
}

/*
 * A depth-first walk without a stack. At node n, p is where the name's next level
 * starts (len + 1 once every level is consumed) and from is the child we just
 * came back up from (NULL on the way down). Children are tried in the order '+',
 * then the literal one; the '#' child matches whatever is left, so it is
 * reported on arrival rather than entered. Going up, p moves back to the start
 * of the level the child consumed.
 */
size_t
trie_match(struct trie *t, const char *name, size_t len, trie_match_cb cb,
    void *arg)
{
	const struct trie_node *n = t->root, *from = NULL, *c;
	bool dollar = len > 0 && name[0] == '$';	/* MQTT-4.7.2-1 */
	size_t p = 0, q = 0, found = 0;

	for (;;) {
		bool wild = p > 0 || !dollar;

		if (from == NULL) {
			t->visits++;
			if (n->multi != NULL && wild) {
				t->visits++;
				found += node_report(n->multi, cb, arg);
			}
			if (p > len)
				found += node_report(n, cb, arg);
		}
		c = NULL;
		if (p <= len) {
			q = p + trie_level_len(name + p, len - p);
			if (from == NULL && n->plus != NULL && wild)
				c = n->plus;
			else if (from == NULL || from == n->plus)
				c = node_find(n, name + p, q - p,
				    trie_hash(name + p, q - p), &t->compares);
		}
		if (c != NULL) {
			n = c;
			p = q + 1;
			from = NULL;
			continue;
		}
		if (n == t->root)
			return found;
		from = n;
		n = n->parent;
		for (p--; p > 0 && name[p - 1] != '/'; p--)
			;
	}
}

void
trie_stats(const struct trie *t, struct trie_stats *st)
{
	st->subs = t->subs;
	st->nodes = t->nodes;
	st->visits = t->visits;
	st->compares = t->compares;
}

const char *
trie_strerror(enum trie_status st)
{
	switch (st) {
	case TRIE_OK:		return "ok";
	case TRIE_EXISTS:	return "subscription already exists";
	case TRIE_NOT_FOUND:	return "no such subscription";
	case TRIE_NOMEM:	return "out of memory";
	case TRIE_BAD_FILTER:	return "invalid topic filter";
	}
	return "unknown trie status";
}
