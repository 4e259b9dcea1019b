/*
 * The loader: the node trees of cfg_yaml.c walked along the schema tables,
 * each value parsed where its key says, every problem collected as
 * "FILE:LINE:COLUMN: key.path: what is wrong (what was expected)" and sorted
 * by file, then position. Anchors, aliases and tags are refused here, where
 * the key path is known.
 *
 * One file is walked once, with every check. Several (the main file and its
 * drop-ins) take two passes: each file alone, for what a file can get wrong
 * by itself (types, ranges, unknown keys), with the required keys and the
 * cross-field checks left out since another file may supply the missing
 * half; then, once every file passed, the merged tree (cfg_merge.c) with
 * every check. A node keeps the index of its file, so a message names the
 * file that holds it whichever pass finds it. The files themselves are read
 * in cfg_files.c.
 */
#include "config/cfg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "config/cfg_int.h"

struct msg {
	unsigned	 file, line, col;	/* line 0: the whole file */
	size_t		 seq;		/* keeps the sort stable */
	char		*text;
};

struct cfg_loader {
	char		**names;	/* of the files added so far */
	size_t		 nnames, nfiles;
	struct cfg	*cfg;		/* what the last walk fills in */
	struct cfg_node	*merged;	/* the files that passed alone */
	struct cfg_origins *origins;	/* CFG_LOAD_ORIGINS, else NULL */
	bool		 record;	/* the final walk: note origins */
	bool		 partial;	/* one file of several: no required
					 * keys, no cross-field checks */
	struct msg	*msgs;
	size_t		 nmsgs;
	size_t		 nerrors;	/* all of them, kept or not */
	bool		 nomem, io;
	char		 path[CFG_PATH_MAX];
	size_t		 plen;
};

/* --- messages ------------------------------------------------------------- */

static void
msg_add(struct cfg_loader *ld, unsigned file, unsigned line, unsigned col,
    char *text)
{
	struct msg *m;

	if (text == NULL) {
		ld->nomem = true;
		return;
	}
	if (ld->nerrors++ >= CFG_MAX_ERRORS) {
		free(text);
		return;
	}
	if ((m = realloc(ld->msgs, (ld->nmsgs + 1) * sizeof(*m))) == NULL) {
		free(text);
		ld->nomem = true;
		return;
	}
	ld->msgs = m;
	m[ld->nmsgs] = (struct msg){ file, line, col, ld->nmsgs, text };
	ld->nmsgs++;
}

static char *
vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *
vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *
format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
format(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	return s;
}

void
cfg_error(struct cfg_loader *ld, const struct cfg_node *at, const char *key,
    const char *fmt, ...)
{
	char path[CFG_PATH_MAX + 80];
	va_list ap;
	char *body;

	snprintf(path, sizeof(path), "%s%s%s", ld->path,
	    key != NULL && ld->plen > 0 ? "." : "", key != NULL ? key : "");
	va_start(ap, fmt);
	body = vformat(fmt, ap);
	va_end(ap);
	if (body == NULL) {
		ld->nomem = true;
		return;
	}
	msg_add(ld, at->file, at->line, at->col, format("%s:%u:%u: %s: %s",
	    ld->names[at->file], at->line, at->col,
	    path[0] != '\0' ? path : "document", body));
	free(body);
}

void
cfg_oom(struct cfg_loader *ld)
{
	ld->nomem = true;
}

static int
msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool
diag_add(struct cfg_diag *diag, char *text)
{
	char **m;

	if (text == NULL ||
	    (m = realloc(diag->msgs, (diag->count + 1) * sizeof(*m))) == NULL) {
		free(text);
		return false;
	}
	diag->msgs = m;
	m[diag->count++] = text;
	return true;
}

bool
cfg_diag_add(struct cfg_diag *diag, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = vformat(fmt, ap);
	va_end(ap);
	return diag_add(diag, text);
}

/* Hand the messages over to diag in file order. */
static bool
flush(struct cfg_loader *ld, struct cfg_diag *diag)
{
	bool ok = true;

	if (ld->nmsgs > 0)
		qsort(ld->msgs, ld->nmsgs, sizeof(*ld->msgs), msg_cmp);
	for (size_t i = 0; i < ld->nmsgs; i++)
		ok &= diag_add(diag, ld->msgs[i].text);
	if (ld->nerrors > ld->nmsgs)
		ok &= diag_add(diag, format("%s: %zu more errors not shown",
		    ld->names[0], ld->nerrors - ld->nmsgs));
	free(ld->msgs);
	ld->msgs = NULL;
	ld->nmsgs = 0;
	return ok;
}

/* --- key paths ------------------------------------------------------------ */

static size_t
path_push(struct cfg_loader *ld, const char *name, size_t len)
{
	size_t saved = ld->plen, cap = sizeof(ld->path);
	char q[256];
	bool plain = len > 0 && len <= 64;
	int n;

	for (size_t i = 0; plain && i < len; i++)
		plain = (name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '_' || name[i] == '-' || name[i] == '<';
	if (plain)
		snprintf(q, sizeof(q), "%.*s", (int)len, name);
	else
		cfg_quote(name, len, q, sizeof(q));
	n = snprintf(ld->path + ld->plen, cap - ld->plen, "%s%s",
	    ld->plen > 0 ? "." : "", q);
	if (n > 0)
		ld->plen += (size_t)n < cap - ld->plen ? (size_t)n :
		    cap - ld->plen - 1;
	return saved;
}

static size_t
path_push_index(struct cfg_loader *ld, size_t i)
{
	size_t saved = ld->plen, cap = sizeof(ld->path);
	int n = snprintf(ld->path + ld->plen, cap - ld->plen, "[%zu]", i);

	if (n > 0)
		ld->plen += (size_t)n < cap - ld->plen ? (size_t)n :
		    cap - ld->plen - 1;
	return saved;
}

static void
path_pop(struct cfg_loader *ld, size_t saved)
{
	ld->plen = saved;
	ld->path[saved] = '\0';
}

/* --- walking the tree along the schema ------------------------------------ */

static const char *
kind_name(const struct cfg_node *n)
{
	switch (n->kind) {
	case CFG_N_MAP:		return "a mapping";
	case CFG_N_SEQ:		return "a list";
	case CFG_N_ALIAS:	return "an alias";
	case CFG_N_SCALAR:	break;
	}
	return cfg_node_null(n) ? "no value" : "a single value";
}

/* Anchors, aliases and tags are refused where they appear. False when
 * there is no value to use. */
static bool
check_node(struct cfg_loader *ld, const struct cfg_node *n)
{
	char q[256];

	/* libyaml allows only letters, digits, '-' and '_' in anchor names. */
	if (n->kind == CFG_N_ALIAS) {
		cfg_error(ld, n, NULL, "alias *%s (expected the value written "
		    "out: anchors and aliases are not supported)", n->text);
		return false;
	}
	if (n->anchor != NULL)
		cfg_error(ld, n, NULL, "anchor &%s (expected no anchor: "
		    "anchors and aliases are not supported)", n->anchor);
	if (n->tag != NULL) {
		cfg_quote(n->tag, strlen(n->tag), q, sizeof(q));
		cfg_error(ld, n, NULL, "tag %s (expected a plain value: tags "
		    "are not supported)", q);
	}
	return true;
}

static void walk_section(struct cfg_loader *, const struct cfg_section *,
    void *, const struct cfg_node *);

static void
walk_list(struct cfg_loader *ld, const struct cfg_keydef *kd, void *obj,
    const struct cfg_node *seq)
{
	size_t n = 0, saved;
	char *items;

	if (!cfg_node_null(seq) && seq->kind != CFG_N_SEQ) {
		cfg_error(ld, seq, NULL, "got %s (expected a list)",
		    kind_name(seq));
		return;
	}
	if (!cfg_node_null(seq))
		n = seq->nkids;
	if (n < (size_t)kd->min) {
		cfg_error(ld, seq, NULL, "empty list (expected at least one "
		    "item%s)", kd->dflt ? "; leave the key out for the "
		    "default" : "");
		return;
	}
	if (n > (size_t)kd->max) {
		cfg_error(ld, seq, NULL, "%zu items (expected at most %lld)",
		    n, (long long)kd->max);
		return;
	}
	cfg_key_clear(kd, obj);
	if (n == 0)
		return;
	if ((items = calloc(n, kd->sub->size)) == NULL) {
		ld->nomem = true;
		return;
	}
	memcpy((char *)obj + kd->off, &items, sizeof(items));
	*(size_t *)(void *)((char *)obj + kd->off2) = n;
	for (size_t i = 0; i < n && !ld->nomem; i++) {
		void *item = items + i * kd->sub->size;

		if (cfg_section_defaults(kd->sub, item) != CFG_OK) {
			ld->nomem = true;
			break;
		}
		saved = path_push_index(ld, i);
		if (check_node(ld, seq->kids[i]))
			walk_section(ld, kd->sub, item, seq->kids[i]);
		path_pop(ld, saved);
	}
}

static void
walk_value(struct cfg_loader *ld, const struct cfg_keydef *kd, void *obj,
    const struct cfg_node *v)
{
	char err[CFG_ERR_MAX], buf[128];
	const char *expect;
	enum cfg_status st;

	if (!check_node(ld, v))
		return;
	if (kd->type == CFG_T_SECTION) {
		if (kd->flags & CFG_K_PRESENCE)
			*(bool *)((char *)obj + kd->off2) = true;
		walk_section(ld, kd->sub, (char *)obj + kd->off, v);
		return;
	}
	if (kd->type == CFG_T_LIST) {
		walk_list(ld, kd, obj, v);
		return;
	}
	expect = cfg_value_expect(kd, buf, sizeof(buf));
	if (v->kind != CFG_N_SCALAR || cfg_node_null(v)) {
		cfg_error(ld, v, NULL, "%s%s (expected %s)",
		    cfg_node_null(v) ? "" : "got ", kind_name(v), expect);
		return;
	}
	if (strlen(v->text) != v->len) {
		cfg_error(ld, v, NULL, "contains a NUL character (expected %s)",
		    expect);
		return;
	}
	st = cfg_value_set(kd, obj, v->text, err, sizeof(err));
	if (st == CFG_INVALID)
		cfg_error(ld, v, NULL, "%s", err);
	else if (st != CFG_OK)
		ld->nomem = true;
}

static void
unknown_key(struct cfg_loader *ld, const struct cfg_section *sec,
    const struct cfg_node *k)
{
	char where[CFG_PATH_MAX], names[512];
	size_t o = 0;

	if (strcmp(k->text, "<<") == 0) {
		cfg_error(ld, k, NULL, "merge key (expected the keys written "
		    "out: merge keys are not supported)");
		return;
	}
	for (size_t i = 0; i < sec->nkeys; i++)
		if (cfg_similar(k->text, k->len, sec->keys[i].name)) {
			cfg_error(ld, k, NULL, "unknown key (did you mean %s?)",
			    sec->keys[i].name);
			return;
		}
	if (cfg_schema_find(k->text, k->len, where, sizeof(where))) {
		cfg_error(ld, k, NULL, "unknown key here (did you mean %s?)",
		    where);
		return;
	}
	names[0] = '\0';
	for (size_t i = 0; i < sec->nkeys && o < sizeof(names); i++)
		o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
		    i ? ", " : "", sec->keys[i].name);
	cfg_error(ld, k, NULL, "unknown key (expected one of: %s)", names);
}

static void
walk_section(struct cfg_loader *ld, const struct cfg_section *sec, void *obj,
    const struct cfg_node *map)
{
	struct cfg_seen seen[CFG_SECTION_MAX_KEYS];
	struct cfg_ctx ctx = { ld, sec, obj, map, seen };
	const struct cfg_keydef *kd;
	size_t saved, before;

	memset(seen, 0, sizeof(seen));
	if (!cfg_node_null(map) && map->kind != CFG_N_MAP) {
		cfg_error(ld, map, NULL, "got %s (expected a mapping)",
		    kind_name(map));
		return;
	}
	for (size_t i = 0; i + 1 < map->nkids; i += 2) {
		const struct cfg_node *k = map->kids[i], *v = map->kids[i + 1];

		if (k->kind != CFG_N_SCALAR) {
			cfg_error(ld, k, NULL, "%s as a key (expected a key "
			    "name)", kind_name(k));
			continue;
		}
		saved = path_push(ld, k->text, k->len);
		check_node(ld, k);
		if ((kd = cfg_section_key(sec, k->text, k->len)) == NULL) {
			unknown_key(ld, sec, k);
		} else if (seen[kd - sec->keys].key != NULL) {
			cfg_error(ld, k, NULL, "duplicate key (first at %u:%u)",
			    seen[kd - sec->keys].key->line,
			    seen[kd - sec->keys].key->col);
		} else {
			before = ld->nerrors;
			walk_value(ld, kd, obj, v);
			seen[kd - sec->keys] = (struct cfg_seen){
				k, v, ld->nerrors != before
			};
			if (ld->record && kd->type != CFG_T_SECTION &&
			    !cfg_origins_add(ld->origins, ld->path, k->file,
			    k->line))
				ld->nomem = true;
		}
		path_pop(ld, saved);
	}
	if (ld->partial)
		return;
	for (size_t i = 0; i < sec->nkeys; i++)
		if (sec->keys[i].flags & CFG_K_REQUIRED && seen[i].key == NULL)
			cfg_error(ld, map, sec->keys[i].name, "missing (required "
			    "in %s)", ld->plen ? ld->path : "the file");
	if (sec->check != NULL && !ld->nomem)
		sec->check(&ctx);
}

/* --- what the checks use -------------------------------------------------- */

static const struct cfg_seen *
seen_of(const struct cfg_ctx *ctx, const char *key)
{
	const struct cfg_keydef *kd = cfg_section_key(ctx->sec, key,
	    strlen(key));

	assert(kd != NULL);
	return &ctx->seen[kd - ctx->sec->keys];
}

const struct cfg_node *
cfg_given(const struct cfg_ctx *ctx, const char *key)
{
	return seen_of(ctx, key)->val;
}

bool
cfg_usable(const struct cfg_ctx *ctx, const char *key)
{
	return !seen_of(ctx, key)->bad;
}

const struct cfg_node *
cfg_at(const struct cfg_ctx *ctx, const char *key)
{
	const struct cfg_node *v = cfg_given(ctx, key);

	return v != NULL ? v : ctx->map;
}

/* --- the loader ----------------------------------------------------------- */

struct cfg_loader *
cfg_loader_new(size_t nfiles, unsigned flags)
{
	struct cfg_loader *ld;

	assert(nfiles > 0 && nfiles <= CFG_MAX_DROPINS + 1);
	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		return NULL;
	ld->nfiles = nfiles;
	if ((ld->names = calloc(nfiles, sizeof(*ld->names))) == NULL ||
	    cfg_defaults(&ld->cfg) != CFG_OK ||
	    ((flags & CFG_LOAD_ORIGINS) &&
	    (ld->origins = cfg_origins_new()) == NULL)) {
		free(ld->names);
		cfg_free(ld->cfg);
		free(ld);
		return NULL;
	}
	return ld;
}

static void
loader_free(struct cfg_loader *ld)
{
	for (size_t i = 0; i < ld->nmsgs; i++)
		free(ld->msgs[i].text);
	free(ld->msgs);
	for (size_t i = 0; i < ld->nnames; i++)
		free(ld->names[i]);
	free(ld->names);
	cfg_node_free(ld->merged);
	cfg_origins_free(ld->origins);
	cfg_free(ld->cfg);
	free(ld);
}

/* The index of a new file, or -1 when out of memory. */
static int
add_name(struct cfg_loader *ld, const char *name)
{
	assert(ld->nnames < ld->nfiles);
	if ((ld->names[ld->nnames] = strdup(name)) == NULL) {
		ld->nomem = true;
		return -1;
	}
	return (int)ld->nnames++;
}

void
cfg_loader_fail(struct cfg_loader *ld, const char *name, const char *fmt,
    ...)
{
	va_list ap;
	char *body;
	int file;

	ld->io = true;
	if ((file = add_name(ld, name)) == -1)
		return;
	va_start(ap, fmt);
	body = vformat(fmt, ap);
	va_end(ap);
	msg_add(ld, (unsigned)file, 0, 0, body ? format("%s: %s", name, body) :
	    NULL);
	free(body);
}

/* The whole walk of one tree into ld->cfg. */
static void
walk_root(struct cfg_loader *ld, const struct cfg_node *root)
{
	if (root != NULL && !cfg_node_null(root) && check_node(ld, root))
		walk_section(ld, &cfg_root, ld->cfg, root);
}

/* One file of several, checked alone into a config thrown away: what it
 * lacks, or what it says that contradicts another file, is for later. */
static void
walk_alone(struct cfg_loader *ld, const struct cfg_node *root)
{
	struct cfg *kept = ld->cfg;

	if (cfg_defaults(&ld->cfg) != CFG_OK) {
		ld->cfg = kept;
		ld->nomem = true;
		return;
	}
	ld->partial = true;
	walk_root(ld, root);
	ld->partial = false;
	cfg_free(ld->cfg);
	ld->cfg = kept;
}

bool
cfg_loader_add(struct cfg_loader *ld, const char *name, const void *buf,
    size_t len)
{
	struct cfg_node *root = NULL;
	int file;

	if (len > CFG_MAX_FILE) {
		cfg_loader_fail(ld, name, "file too large (expected at most "
		    "1MiB)");
		return !ld->nomem;
	}
	if ((file = add_name(ld, name)) == -1)
		return false;
	switch (cfg_yaml_parse(ld, (unsigned)file, buf, len, &root)) {
	case CFG_OK:
		break;
	case CFG_NOMEM:
		ld->nomem = true;
		/* FALLTHROUGH */
	default:
		cfg_node_free(root);
		return !ld->nomem;
	}
	if (ld->nfiles == 1) {
		ld->record = ld->origins != NULL;
		walk_root(ld, root);
		ld->record = false;
		cfg_node_free(root);
		return !ld->nomem;
	}
	walk_alone(ld, root);
	/* Once a file fails, the merged checks could only guess: nothing more
	 * is merged, and they do not run. */
	if (ld->nerrors > 0 || ld->io || ld->nomem || root == NULL ||
	    cfg_node_null(root))
		cfg_node_free(root);
	else if (!cfg_node_merge(&ld->merged, root))
		ld->nomem = true;
	return !ld->nomem;
}

enum cfg_status
cfg_loader_finish(struct cfg_loader *ld, struct cfg **out,
    struct cfg_diag *diag)
{
	enum cfg_status st = CFG_OK;

	*out = NULL;
	assert(ld->nnames == ld->nfiles || ld->nomem);
	if (ld->nfiles > 1 && ld->nerrors == 0 && !ld->io && !ld->nomem) {
		ld->record = ld->origins != NULL;
		walk_root(ld, ld->merged);
		ld->record = false;
	}
	if (ld->nomem)
		st = CFG_NOMEM;
	else if (ld->io)
		st = CFG_IO;
	else if (ld->nerrors > 0)
		st = CFG_INVALID;
	if (!flush(ld, diag))
		st = CFG_NOMEM;
	if (st == CFG_OK) {
		*out = ld->cfg;
		(*out)->files = ld->names;
		(*out)->nfiles = ld->nnames;
		if (ld->origins != NULL)
			cfg_origins_done(ld->origins);
		(*out)->origins = ld->origins;
		ld->cfg = NULL;
		ld->names = NULL;
		ld->nnames = 0;
		ld->origins = NULL;
	}
	loader_free(ld);
	return st;
}

/* --- the API -------------------------------------------------------------- */

enum cfg_status
cfg_load_sources(const struct cfg_source *src, size_t n, unsigned flags,
    struct cfg **out, struct cfg_diag *diag)
{
	struct cfg_loader *ld;
	size_t total = 0;

	*out = NULL;
	assert(n > 0);
	if (n > CFG_MAX_DROPINS + 1)
		return cfg_diag_add(diag, "%s: %zu drop-in files (expected at "
		    "most %d)", src[0].name, n - 1, CFG_MAX_DROPINS) ?
		    CFG_IO : CFG_NOMEM;
	for (size_t i = 0; i < n; i++)	/* capped: the sum cannot wrap */
		total += src[i].len < CFG_MAX_TOTAL ? src[i].len :
		    CFG_MAX_TOTAL;
	/* One file alone has the tighter limit of its own. */
	if (n > 1 && total > CFG_MAX_TOTAL)
		return cfg_diag_add(diag, "%s: with its %zu drop-in files, "
		    "more than 4MiB (expected at most 4MiB together)",
		    src[0].name, n - 1) ? CFG_IO : CFG_NOMEM;
	if ((ld = cfg_loader_new(n, flags)) == NULL)
		return CFG_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (!cfg_loader_add(ld, src[i].name, src[i].buf, src[i].len))
			break;
	return cfg_loader_finish(ld, out, diag);
}

enum cfg_status
cfg_load_mem(const char *name, const void *buf, size_t len, struct cfg **out,
    struct cfg_diag *diag)
{
	const struct cfg_source src = { name, buf, len };

	return cfg_load_sources(&src, 1, 0, out, diag);
}

enum cfg_status
cfg_defaults(struct cfg **out)
{
	struct cfg *cfg;

	*out = NULL;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return CFG_NOMEM;
	if (cfg_section_defaults(&cfg_root, cfg) != CFG_OK) {
		cfg_free(cfg);
		return CFG_NOMEM;
	}
	*out = cfg;
	return CFG_OK;
}

void
cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	cfg_section_clear(&cfg_root, cfg);
	for (size_t i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	cfg_origins_free(cfg->origins);
	mbedtls_platform_zeroize(cfg, sizeof(*cfg));
	free(cfg);
}

void
cfg_diag_clear(struct cfg_diag *diag)
{
	for (size_t i = 0; i < diag->count; i++)
		free(diag->msgs[i]);
	free(diag->msgs);
	diag->msgs = NULL;
	diag->count = 0;
}

const char *
cfg_strerror(enum cfg_status st)
{
	switch (st) {
	case CFG_OK:		return "success";
	case CFG_INVALID:	return "invalid configuration";
	case CFG_IO:		return "configuration file unreadable";
	case CFG_NOMEM:		return "out of memory";
	}
	return "unknown configuration status";
}
