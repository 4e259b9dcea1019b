/*
 * The loader: the node tree of cfg_yaml.c walked along the schema tables,
 * each value parsed where its key says, every problem collected as
 * "FILE:LINE:COLUMN: key.path: what is wrong (what was expected)" and sorted
 * by position. Anchors, aliases and tags are refused here, where the key path
 * is known. Also the public entry points; reading the file in cfg_load_file()
 * is the module's only I/O.
 */
#include "config/cfg.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "config/cfg_int.h"

struct msg {
	unsigned	 line, col;
	size_t		 seq;		/* keeps the sort stable */
	char		*text;
};

struct cfg_loader {
	const char		*name;
	struct msg		*msgs;
	size_t			 nmsgs;
	size_t			 nerrors;	/* all of them, kept or not */
	bool			 nomem;
	char			 path[CFG_PATH_MAX];
	size_t			 plen;
};

/* --- messages ------------------------------------------------------------- */

static void
msg_add(struct cfg_loader *ld, unsigned line, unsigned col, char *text)
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
	m[ld->nmsgs] = (struct msg){ line, col, ld->nmsgs, text };
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
	msg_add(ld, at->line, at->col, format("%s:%u:%u: %s: %s", ld->name,
	    at->line, at->col, path[0] != '\0' ? path : "document", body));
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
		    ld->name, ld->nerrors - ld->nmsgs));
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

static bool
is_null(const struct cfg_node *n)
{
	return n->kind == CFG_N_SCALAR && n->plain && n->tag == NULL &&
	    (n->len == 0 || strcmp(n->text, "~") == 0 ||
	    strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
	    strcmp(n->text, "NULL") == 0);
}

static const char *
kind_name(const struct cfg_node *n)
{
	switch (n->kind) {
	case CFG_N_MAP:		return "a mapping";
	case CFG_N_SEQ:		return "a list";
	case CFG_N_ALIAS:	return "an alias";
	case CFG_N_SCALAR:	break;
	}
	return is_null(n) ? "no value" : "a single value";
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

	if (!is_null(seq) && seq->kind != CFG_N_SEQ) {
		cfg_error(ld, seq, NULL, "got %s (expected a list)",
		    kind_name(seq));
		return;
	}
	if (!is_null(seq))
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
	if (v->kind != CFG_N_SCALAR || is_null(v)) {
		cfg_error(ld, v, NULL, "%s%s (expected %s)",
		    is_null(v) ? "" : "got ", kind_name(v), expect);
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
	if (!is_null(map) && map->kind != CFG_N_MAP) {
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
		}
		path_pop(ld, saved);
	}
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

/* --- the API -------------------------------------------------------------- */

enum cfg_status
cfg_load_mem(const char *name, const void *buf, size_t len, struct cfg **out,
    struct cfg_diag *diag)
{
	struct cfg_loader ld = { .name = name };
	struct cfg_node *root = NULL;
	struct cfg *cfg = NULL;
	enum cfg_status st;

	*out = NULL;
	if (len > CFG_MAX_FILE)
		return diag_add(diag, format("%s: file too large (expected at "
		    "most 1MiB)", name)) ? CFG_IO : CFG_NOMEM;
	if ((st = cfg_defaults(&cfg)) != CFG_OK)
		goto fail;
	if ((st = cfg_yaml_parse(&ld, buf, len, &root)) == CFG_NOMEM)
		goto fail;
	if (st == CFG_OK && root != NULL && !is_null(root) &&
	    check_node(&ld, root))
		walk_section(&ld, &cfg_root, cfg, root);
	if (ld.nomem)
		st = CFG_NOMEM;
	else if (ld.nerrors > 0)
		st = CFG_INVALID;
	if (!flush(&ld, diag))
		st = CFG_NOMEM;
	if (st != CFG_OK)
		goto fail;
	cfg_node_free(root);
	*out = cfg;
	return CFG_OK;

fail:
	for (size_t i = 0; i < ld.nmsgs; i++)
		free(ld.msgs[i].text);
	free(ld.msgs);
	cfg_node_free(root);
	cfg_free(cfg);
	return st;
}

enum cfg_status
cfg_load_file(const char *path, struct cfg **out, struct cfg_diag *diag)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	enum cfg_status st = CFG_IO;
	int fd = -1;

	*out = NULL;
	/* One byte more than allowed tells a file that is too large. */
	if ((buf = malloc(CFG_MAX_FILE + 1)) == NULL)
		return CFG_NOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (!diag_add(diag, format("%s: cannot open (%s)", path,
		    strerror(errno))))
			st = CFG_NOMEM;
		goto fail;
	}
	while (len <= CFG_MAX_FILE &&
	    (n = read(fd, buf + len, CFG_MAX_FILE + 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			if (!diag_add(diag, format("%s: cannot read (%s)", path,
			    strerror(errno))))
				st = CFG_NOMEM;
			goto fail;
		}
		len += (size_t)n;
	}
	st = cfg_load_mem(path, buf, len, out, diag);

fail:
	if (fd != -1)
		close(fd);
	mbedtls_platform_zeroize(buf, len);
	free(buf);
	return st;
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
