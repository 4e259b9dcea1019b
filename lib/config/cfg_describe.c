/*
 * The way out: a loaded config walked key by key (cfg_walk) and rendered as
 * YAML (cfg_describe) that loads back to the same config. Both follow the
 * schema tables, so a new key shows up here without a line of code. Secrets
 * are shown as "(set)", never as themselves.
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
walk(const struct cfg_section *sec, const void *obj, char *path, size_t cap,
    cfg_key_fn fn, void *arg)
{
	size_t len = strlen(path), n;
	char buf[CFG_VALUE_BUF];
	const char *items;

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
				walk(kd->sub, (const char *)obj + kd->off, path,
				    cap, fn, arg);
			break;
		case CFG_T_LIST:
			list_of(kd, obj, &items, &n);
			for (size_t j = 0; j < n; j++) {
				w = snprintf(path + len, cap - len, "%s%s[%zu]",
				    sep, kd->name, j);
				if (w > 0 && (size_t)w < cap - len)
					walk(kd->sub, items + j * kd->sub->size,
					    path, cap, fn, arg);
			}
			break;
		default:
			w = snprintf(path + len, cap - len, "%s%s", sep,
			    kd->name);
			if (w > 0 && (size_t)w < cap - len)
				fn(&key, cfg_value_text(kd, obj, buf,
				    sizeof(buf)), arg);
			break;
		}
		path[len] = '\0';
	}
}

void
cfg_walk(const struct cfg *cfg, cfg_key_fn fn, void *arg)
{
	char path[CFG_PATH_MAX] = "";

	walk(&cfg_root, cfg, path, sizeof(path), fn, arg);
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

/* Keys at indent; an item's first line starts with "- " two columns left. */
static void
emit(FILE *f, const struct cfg_section *sec, const void *obj, int indent,
    bool item)
{
	char buf[CFG_VALUE_BUF];
	const char *items, *v;
	bool first = true;
	size_t n;

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
		if (item && first)
			fprintf(f, "%*s- ", indent - 2, "");
		else
			fprintf(f, "%*s", indent, "");
		first = false;
		fprintf(f, "%s:", kd->name);
		if (kd->type == CFG_T_SECTION) {
			fputc('\n', f);
			emit(f, kd->sub, sub, indent + 2, false);
		} else if (kd->type == CFG_T_LIST) {
			list_of(kd, obj, &items, &n);
			fputs(n == 0 ? " []\n" : "\n", f);
			for (size_t j = 0; j < n; j++)
				emit(f, kd->sub, items + j * kd->sub->size,
				    indent + 4, true);
		} else {
			fputc(' ', f);
			put_value(f, v);
			fputc('\n', f);
		}
	}
	if (item && first)
		fprintf(f, "%*s- {}\n", indent - 2, "");
}

char *
cfg_describe(const struct cfg *cfg)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	bool ok;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	emit(f, &cfg_root, cfg, 0, false);
	ok = !ferror(f);
	if (fclose(f) != 0)
		ok = false;
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}
