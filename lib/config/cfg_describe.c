/*
 * The way out: a loaded config walked key by key (cfg_walk) and rendered as
 * YAML (cfg_describe) that loads back to the same config, optionally with
 * where each value came from (cfg_describe_origins) as comments. All follow
 * the schema tables, so a new key shows up here without a line of code.
 * Secrets are shown as "(set)", never as themselves.
 */
#include "config/cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_int.h"

static bool
section_present(const struct cfg_keydef *kd, const void *obj)
{
	return !(kd->flags & CFG_K_PRESENCE) ||
	    *(const bool *)((const char *)obj + kd->off2);
}

static void
list_of(const struct cfg_keydef *kd, const void *obj, const char **items,
    size_t *n)
{
	memcpy(items, (const char *)obj + kd->off, sizeof(*items));
	*n = *(const size_t *)(const void *)((const char *)obj + kd->off2);
}

static void
walk(const struct cfg *top, const struct cfg_section *sec, const void *obj,
    char *path, size_t cap, cfg_key_fn fn, void *arg)
{
	size_t len = strlen(path), n;
	char buf[CFG_VALUE_BUF];
	const char *items;
	unsigned file;

	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct cfg_keydef *kd = &sec->keys[i];
		const char *sep = len ? "." : "";
		struct cfg_key key = {
			.path = path, .type = cfg_type_name(kd),
			.dflt = kd->dflt, .values = kd->values, .doc = kd->doc,
			.required = kd->flags & CFG_K_REQUIRED,
			.secret = kd->flags & CFG_K_SECRET,
		};
		int w;

		switch (kd->type) {
		case CFG_T_SECTION:
			if (!section_present(kd, obj))
				break;
			w = snprintf(path + len, cap - len, "%s%s", sep,
			    kd->name);
			if (w > 0 && (size_t)w < cap - len)
				walk(top, kd->sub, (const char *)obj + kd->off,
				    path, cap, fn, arg);
			break;
		case CFG_T_LIST:
			list_of(kd, obj, &items, &n);
			for (size_t j = 0; j < n; j++) {
				w = snprintf(path + len, cap - len, "%s%s[%zu]",
				    sep, kd->name, j);
				if (w > 0 && (size_t)w < cap - len)
					walk(top, kd->sub, items + j *
					    kd->sub->size, path, cap, fn, arg);
			}
			break;
		default:
			w = snprintf(path + len, cap - len, "%s%s", sep,
			    kd->name);
			if (w <= 0 || (size_t)w >= cap - len)
				break;
			if (cfg_origins_find(top->origins, path, &file,
			    &key.line))
				key.file = top->files[file];
			fn(&key, cfg_value_text(kd, obj, buf, sizeof(buf)),
			    arg);
			break;
		}
		path[len] = '\0';
	}
}

void
cfg_walk(const struct cfg *cfg, cfg_key_fn fn, void *arg)
{
	char path[CFG_PATH_MAX] = "";

	walk(cfg, &cfg_root, cfg, path, sizeof(path), fn, arg);
}

/* Plain when that cannot be misread, double-quoted otherwise. */
static void
put_value(FILE *f, const char *v)
{
	bool plain = v[0] != '\0' && v[strlen(v) - 1] != ':' &&
	    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789/._", v[0]) != NULL;

	for (const char *p = v; plain && *p != '\0'; p++)
		plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789/._:@+-", *p) != NULL;
	if (plain && strcmp(v, "null") != 0 && strcmp(v, "Null") != 0 &&
	    strcmp(v, "NULL") != 0) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7F)
			fprintf(f, "\\x%02X", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static bool
has_value(const struct cfg_section *sec, const void *obj)
{
	char buf[CFG_VALUE_BUF];

	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct cfg_keydef *kd = &sec->keys[i];

		if (kd->type == CFG_T_LIST)
			return true;
		if (kd->type == CFG_T_SECTION) {
			if (section_present(kd, obj) &&
			    has_value(kd->sub, (const char *)obj + kd->off))
				return true;
		} else if (cfg_value_text(kd, obj, buf, sizeof(buf)) != NULL) {
			return true;
		}
	}
	return false;
}

/* Where emit() writes, and what it needs for the origins of values. */
struct out {
	FILE			*f;
	const struct cfg	*cfg;	/* NULL: no origins */
	char			 path[CFG_PATH_MAX];
};

#define ORIGIN_COL	40	/* where "# FILE:LINE" starts, if it can */

/* A file name in a comment: nothing in it may end the line. */
static void
put_name(FILE *f, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, f);
}

/*
 * After the value of kd (whose path is o->path) on the line that started at
 * start: the file and line that set it; else "default", which everything in
 * a list left at its default is, and every key with a default in the
 * schema; else "derived": no file and no default, yet a value.
 */
static void
put_origin(struct out *o, long start, const struct cfg_keydef *kd,
    bool in_default)
{
	long w = ftell(o->f) - start;
	unsigned file, line;

	if (o->cfg == NULL)
		return;
	fprintf(o->f, "%*s# ", start >= 0 && w >= 0 && w < ORIGIN_COL - 2 ?
	    (int)(ORIGIN_COL - w) : 2, "");
	if (!in_default && cfg_origins_find(o->cfg->origins, o->path, &file,
	    &line)) {
		put_name(o->f, o->cfg->files[file]);
		fprintf(o->f, ":%u", line);
	} else if (in_default || kd->dflt != NULL || kd->type == CFG_T_LIST) {
		fputs("default", o->f);
	} else {
		fputs("derived", o->f);
	}
}

/* Append ".name" or "name[j]" to o->path; false when it does not fit. */
static bool
path_push(struct out *o, size_t len, const char *name, const char *index)
{
	int w = snprintf(o->path + len, sizeof(o->path) - len, "%s%s%s",
	    len ? "." : "", name, index);

	return w > 0 && (size_t)w < sizeof(o->path) - len;
}

/* Keys at indent; an item's first line starts with "- " two columns left.
 * in_default: obj is (in) a list item of a list left at its default. */
static void
emit(struct out *o, const struct cfg_section *sec, const void *obj,
    int indent, bool item, bool in_default)
{
	char buf[CFG_VALUE_BUF], index[32];
	size_t n, len = strlen(o->path);
	const char *items, *v;
	bool first = true, dflt;
	unsigned file, line;
	long start;

	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct cfg_keydef *kd = &sec->keys[i];
		const void *sub = (const char *)obj + kd->off;

		v = NULL;
		if (kd->type == CFG_T_SECTION) {
			if (!section_present(kd, obj) || !has_value(kd->sub, sub))
				continue;
		} else if (kd->type != CFG_T_LIST &&
		    (v = cfg_value_text(kd, obj, buf, sizeof(buf))) == NULL) {
			continue;
		}
		if (!path_push(o, len, kd->name, ""))
			continue;
		start = ftell(o->f);
		if (item && first)
			fprintf(o->f, "%*s- ", indent - 2, "");
		else
			fprintf(o->f, "%*s", indent, "");
		first = false;
		fprintf(o->f, "%s:", kd->name);
		if (kd->type == CFG_T_SECTION) {
			fputc('\n', o->f);
			emit(o, kd->sub, sub, indent + 2, false, in_default);
		} else if (kd->type == CFG_T_LIST) {
			list_of(kd, obj, &items, &n);
			if (n == 0)
				fputs(" []", o->f);
			put_origin(o, start, kd, in_default);
			fputc('\n', o->f);
			dflt = in_default || (o->cfg != NULL &&
			    !cfg_origins_find(o->cfg->origins, o->path, &file,
			    &line));
			for (size_t j = 0; j < n; j++) {
				snprintf(index, sizeof(index), "[%zu]", j);
				if (path_push(o, len, kd->name, index))
					emit(o, kd->sub, items + j *
					    kd->sub->size, indent + 4, true,
					    dflt);
			}
		} else {
			fputc(' ', o->f);
			put_value(o->f, v);
			put_origin(o, start, kd, in_default);
			fputc('\n', o->f);
		}
		o->path[len] = '\0';
	}
	if (item && first)
		fprintf(o->f, "%*s- {}\n", indent - 2, "");
}

static char *
describe(const struct cfg *cfg, bool origins)
{
	struct out o = { .cfg = NULL, .path = "" };
	char *out = NULL;
	size_t len = 0;
	bool ok;

	if ((o.f = open_memstream(&out, &len)) == NULL)
		return NULL;
	/* Without a record, only a config of no file knows its origins. */
	if (origins && (cfg->origins != NULL || cfg->nfiles == 0)) {
		o.cfg = cfg;
		fputs("# Where each value comes from: FILE:LINE of its key, "
		    "\"default\", or\n# \"derived\" (computed from other "
		    "keys). The files, merged in this order:\n", o.f);
		for (size_t i = 0; i < cfg->nfiles; i++) {
			fputs("#   ", o.f);
			put_name(o.f, cfg->files[i]);
			fputc('\n', o.f);
		}
		if (cfg->nfiles == 0)
			fputs("#   (none)\n", o.f);
	}
	emit(&o, &cfg_root, cfg, 0, false, false);
	ok = !ferror(o.f);
	if (fclose(o.f) != 0)
		ok = false;
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

char *
cfg_describe(const struct cfg *cfg)
{
	return describe(cfg, false);
}

char *
cfg_describe_origins(const struct cfg *cfg)
{
	return describe(cfg, true);
}
