/*
 * An open-addressing hash map from byte strings to pointers, for the broker's
 * sessions (by client id) and retained messages (by topic). Keys are borrowed:
 * the caller keeps each key alive and unchanged while its entry exists, which
 * is natural when the key lives inside the value (a session's id, a message's
 * topic). The hash is seeded by the caller so that clients cannot choose ids
 * or topics that collide on every gateway.
 */
#ifndef IOTB_HMAP_H
#define IOTB_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
	const void	*key;		/* NULL: empty */
	size_t		 klen;
	uint64_t	 hash;
	void		*val;
};

struct hmap {
	struct hmap_slot *slots;
	size_t		  cap;		/* 0 or a power of two */
	size_t		  count;
	uint64_t	  seed;
};

/* An empty map; nothing is allocated until the first put. */
void	hmap_init(struct hmap *m, uint64_t seed);
/* Free the table (not the keys or values). */
void	hmap_clear(struct hmap *m);

/* The value stored under key, NULL when there is none. */
void	*hmap_get(const struct hmap *m, const void *key, size_t klen);

/*
 * Store val under key, replacing (and returning in *old, when old is not
 * NULL) any value already there; the new key pointer replaces the old one.
 * Returns false only when out of memory, with the map unchanged.
 */
bool	hmap_put(struct hmap *m, const void *key, size_t klen, void *val,
	    void **old);

/* Remove key; returns its value, NULL when absent. */
void	*hmap_del(struct hmap *m, const void *key, size_t klen);

/*
 * Iterate: *pos starts at 0; returns the next value, NULL at the end. The map
 * must not change during an iteration (deletion shifts entries between slots):
 * collect what to delete first.
 */
void	*hmap_next(const struct hmap *m, size_t *pos);

#endif
