/*
 * Linear probing with backward-shift deletion: no tombstones, so lookups stay
 * short however many sessions come and go. The table doubles at 3/4 load. The
 * hash is FNV-1a over the key mixed with the seed, finished with a 64-bit
 * avalanche so that the low bits used for the index depend on every byte.
 */
#include "base/hmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t
hmap_hash(uint64_t seed, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ h >> 33;
}

void
hmap_init(struct hmap *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->seed = seed;
}

void
hmap_clear(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = 0;
}

/* The slot holding key, or the empty slot where it would go. */
static struct hmap_slot *
hmap_find(const struct hmap *m, const void *key, size_t klen, uint64_t hash)
{
	size_t mask = m->cap - 1;

	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct hmap_slot *s = &m->slots[i];

		if (s->key == NULL || (s->hash == hash && s->klen == klen &&
		    memcmp(s->key, key, klen) == 0))
			return s;
	}
}

static bool
hmap_grow(struct hmap *m)
{
	size_t ncap = m->cap != 0 ? m->cap * 2 : 16;
	struct hmap_slot *old = m->slots, *ns;
	size_t ocap = m->cap;

	if (ncap < m->cap || (ns = calloc(ncap, sizeof(*ns))) == NULL)
		return false;
	m->slots = ns;
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key != NULL)
			*hmap_find(m, old[i].key, old[i].klen,
			    old[i].hash) = old[i];
	free(old);
	return true;
}

void *
hmap_get(const struct hmap *m, const void *key, size_t klen)
{
	struct hmap_slot *s;

	if (m->count == 0)
		return NULL;
	s = hmap_find(m, key, klen, hmap_hash(m->seed, key, klen));
	return s->key != NULL ? s->val : NULL;
}

bool
hmap_put(struct hmap *m, const void *key, size_t klen, void *val, void **old)
{
	uint64_t hash = hmap_hash(m->seed, key, klen);
	struct hmap_slot *s;

	if ((m->count + 1) * 4 > m->cap * 3 && !hmap_grow(m))
		return false;
	s = hmap_find(m, key, klen, hash);
	if (old != NULL)
		*old = s->key != NULL ? s->val : NULL;
	if (s->key == NULL)
		m->count++;
	s->key = key;
	s->klen = klen;
	s->hash = hash;
	s->val = val;
	return true;
}

void *
hmap_del(struct hmap *m, const void *key, size_t klen)
{
	struct hmap_slot *s;
	size_t mask = m->cap - 1, i, j;
	void *val;

	if (m->count == 0)
		return NULL;
	s = hmap_find(m, key, klen, hmap_hash(m->seed, key, klen));
	if (s->key == NULL)
		return NULL;
	val = s->val;
	m->count--;
	/* Shift later members of the probe run back into the hole, so that no
	 * lookup ever stops early at it. */
	i = (size_t)(s - m->slots);
	for (j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		/* j's entry may move to i unless its home lies in (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	return val;
}

void *
hmap_next(const struct hmap *m, size_t *pos)
{
	while (*pos < m->cap) {
		const struct hmap_slot *s = &m->slots[(*pos)++];

		if (s->key != NULL)
			return s->val;
	}
	return NULL;
}
