/*
 * What a load of several files keeps between them: the merged node tree
 * (later files override earlier ones key by key, lists replace) and the
 * record of which file and line set each key, for cfg_walk() and
 * cfg_describe_origins(). The merge works on nodes and knows nothing of the
 * schema: each file has been checked on its own before it is merged, so a
 * node's kind says all there is to say.
 */
#include "config/cfg.h"

#include <stdlib.h>
#include <string.h>

#include "config/cfg_int.h"

/* --- merging trees -------------------------------------------------------- */

/* The index of the value of the scalar key k in map, or 0 when absent. */
static size_t
find_key(const struct cfg_node *map, const struct cfg_node *k)
{
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct cfg_node *mk = map->kids[i];

		if (mk->kind == CFG_N_SCALAR && mk->len == k->len &&
		    memcmp(mk->text, k->text, k->len) == 0)
			return i + 1;
	}
	return 0;
}

static bool
append_pair(struct cfg_node *map, struct cfg_node *k, struct cfg_node *v)
{
	if (!cfg_node_attach(map, k))
		return false;
	if (cfg_node_attach(map, v))
		return true;
	map->nkids--;	/* k goes back to its owner: pairs stay whole */
	return false;
}

/*
 * The pairs of src move into dst one by one, so that at every return both
 * trees are whole: what has not moved yet is still src's, freed with it.
 * Valid sections have at most CFG_SECTION_MAX_KEYS keys, so the lookup is
 * short; a file with more has errors and is never merged.
 */
static bool
merge_maps(struct cfg_node *dst, struct cfg_node *src)
{
	bool ok = true;
	size_t i;

	for (i = 0; ok && i + 1 < src->nkids; i += 2) {
		struct cfg_node *k = src->kids[i], *v = src->kids[i + 1];
		size_t at = k->kind == CFG_N_SCALAR ? find_key(dst, k) : 0;

		src->kids[i] = src->kids[i + 1] = NULL;
		if (at == 0) {
			if (!(ok = append_pair(dst, k, v))) {
				src->kids[i] = k;
				src->kids[i + 1] = v;
			}
			continue;
		}
		/* A section keeps the key that opened it first; a value is
		 * where it was last set. */
		if (dst->kids[at]->kind != CFG_N_MAP || v->kind != CFG_N_MAP) {
			cfg_node_free(dst->kids[at - 1]);
			dst->kids[at - 1] = k;
		} else {
			cfg_node_free(k);
		}
		ok = cfg_node_merge(&dst->kids[at], v);
	}
	return ok;
}

bool
cfg_node_merge(struct cfg_node **dst, struct cfg_node *src)
{
	bool ok = true;

	if (src == NULL)
		return true;
	if (*dst == NULL) {
		*dst = src;
		return true;
	}
	if ((*dst)->kind == CFG_N_MAP && src->kind == CFG_N_MAP) {
		ok = merge_maps(*dst, src);
	} else if ((*dst)->kind == CFG_N_MAP && cfg_node_null(src)) {
		;	/* an empty section adds nothing */
	} else {
		cfg_node_free(*dst);
		*dst = src;
		return true;
	}
	cfg_node_free(src);
	return ok;
}

/* --- where keys were set -------------------------------------------------- */

struct origin {
	char		*path;
	unsigned	 file, line;
};

struct cfg_origins {
	struct origin	*v;
	size_t		 n, cap;
};

struct cfg_origins *
cfg_origins_new(void)
{
	return calloc(1, sizeof(struct cfg_origins));
}

void
cfg_origins_free(struct cfg_origins *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].path);
	free(o->v);
	free(o);
}

bool
cfg_origins_add(struct cfg_origins *o, const char *path, unsigned file,
    unsigned line)
{
	struct origin *v;
	char *p;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;

		if ((v = realloc(o->v, cap * sizeof(*v))) == NULL)
			return false;
		o->v = v;
		o->cap = cap;
	}
	if ((p = strdup(path)) == NULL)
		return false;
	o->v[o->n++] = (struct origin){ p, file, line };
	return true;
}

static int
origin_cmp(const void *a, const void *b)
{
	return strcmp(((const struct origin *)a)->path,
	    ((const struct origin *)b)->path);
}

void
cfg_origins_done(struct cfg_origins *o)
{
	if (o->n > 0)
		qsort(o->v, o->n, sizeof(*o->v), origin_cmp);
}

static int
origin_find_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct origin *)elem)->path);
}

bool
cfg_origins_find(const struct cfg_origins *o, const char *path,
    unsigned *file, unsigned *line)
{
	const struct origin *hit;

	if (o == NULL || o->n == 0 || (hit = bsearch(path, o->v, o->n,
	    sizeof(*o->v), origin_find_cmp)) == NULL)
		return false;
	*file = hit->file;
	*line = hit->line;
	return true;
}
