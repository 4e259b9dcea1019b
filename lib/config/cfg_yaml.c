/*
 * YAML to a node tree: libyaml's events turned into mappings, lists and
 * scalars that keep their line and column, their anchor and tag. The tree is
 * built from events rather than with yaml_parser_load() because that resolves
 * aliases silently, and the loader must refuse them where they appear. A
 * syntax error, a second document or nesting past CFG_MAX_DEPTH ends the
 * parse with that one message.
 */
#include "config/cfg.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <yaml.h>

#include "config/cfg_int.h"

void
cfg_node_free(struct cfg_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		cfg_node_free(n->kids[i]);
	free(n->kids);
	/* Scalars may be secrets. */
	if (n->text != NULL)
		mbedtls_platform_zeroize(n->text, n->len);
	free(n->text);
	free(n->anchor);
	free(n->tag);
	free(n);
}

static char *
dup_or_null(const yaml_char_t *s, bool *fail)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup((const char *)s)) == NULL)
		*fail = true;
	return d;
}

static struct cfg_node *
node_new(enum cfg_node_kind kind, unsigned file, const yaml_event_t *ev,
    const yaml_char_t *anchor, const yaml_char_t *tag)
{
	struct cfg_node *n;
	bool fail = false;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->kind = kind;
	n->file = file;
	n->line = (unsigned)ev->start_mark.line + 1;
	n->col = (unsigned)ev->start_mark.column + 1;
	n->anchor = dup_or_null(anchor, &fail);
	n->tag = dup_or_null(tag, &fail);
	if (kind == CFG_N_SCALAR) {
		n->len = ev->data.scalar.length;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if ((n->text = malloc(n->len + 1)) == NULL)
			fail = true;
		else {
			memcpy(n->text, ev->data.scalar.value, n->len);
			n->text[n->len] = '\0';
		}
	} else if (kind == CFG_N_ALIAS) {
		n->text = dup_or_null(ev->data.alias.anchor, &fail);
		n->len = n->text ? strlen(n->text) : 0;
	}
	if (fail) {
		cfg_node_free(n);
		return NULL;
	}
	return n;
}

bool
cfg_node_attach(struct cfg_node *parent, struct cfg_node *n)
{
	struct cfg_node **k;

	if (parent->nkids == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;

		if ((k = realloc(parent->kids, cap * sizeof(*k))) == NULL)
			return false;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->nkids++] = n;
	return true;
}

/* libyaml's marks count characters; the input is UTF-8 up to there. */
static const unsigned char *
char_at(const unsigned char *buf, size_t len, size_t index)
{
	size_t chars = 0;

	for (size_t i = 0; i < len; i++) {
		if ((buf[i] & 0xC0) == 0x80)
			continue;
		if (chars++ == index)
			return buf + i;
	}
	return NULL;
}

/* Line and column of a byte offset, for reader errors, which have no mark. */
static void
position(const unsigned char *buf, size_t len, size_t offset, unsigned *line,
    unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if ((buf[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

static enum cfg_status
syntax_error(struct cfg_loader *ld, unsigned file, const yaml_parser_t *p,
    const unsigned char *buf, size_t len)
{
	const yaml_mark_t *m = &p->problem_mark;
	const char *problem = p->problem ? p->problem : "syntax error";
	const unsigned char *c;
	struct cfg_node at = { .file = file };

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return CFG_NOMEM;
	case YAML_READER_ERROR:
		position(buf, len, p->problem_offset, &at.line, &at.col);
		if (p->problem_value >= 0)
			cfg_error(ld, &at, "yaml", "%s: 0x%X (expected "
			    "printable UTF-8 text)", problem,
			    (unsigned)p->problem_value);
		else
			cfg_error(ld, &at, "yaml", "%s (expected printable "
			    "UTF-8 text)", problem);
		return CFG_INVALID;
	default:
		break;
	}
	at.line = (unsigned)m->line + 1;
	at.col = (unsigned)m->column + 1;
	if ((c = char_at(buf, len, m->index)) != NULL && *c == '\t')
		cfg_error(ld, &at, "yaml", "tab character where YAML does not "
		    "allow one (expected spaces for indentation)");
	else if (p->context != NULL)
		cfg_error(ld, &at, "yaml", "%s (%s at %zu:%zu)", problem,
		    p->context, p->context_mark.line + 1,
		    p->context_mark.column + 1);
	else
		cfg_error(ld, &at, "yaml", "%s (expected valid YAML)", problem);
	return CFG_INVALID;
}

struct tree {
	struct cfg_node	*root;
	struct cfg_node	*open[CFG_MAX_DEPTH];	/* the lists and maps being filled */
	size_t		 depth;
};

static enum cfg_status
tree_add(struct cfg_loader *ld, struct tree *t, struct cfg_node *n)
{
	if (n == NULL)
		return CFG_NOMEM;
	if (t->depth == 0) {
		t->root = n;
	} else if (!cfg_node_attach(t->open[t->depth - 1], n)) {
		cfg_node_free(n);
		return CFG_NOMEM;
	}
	if (n->kind != CFG_N_SEQ && n->kind != CFG_N_MAP)
		return CFG_OK;
	if (t->depth == CFG_MAX_DEPTH) {
		cfg_error(ld, n, NULL, "nested deeper than %d levels (expected a "
		    "flatter document)", CFG_MAX_DEPTH);
		return CFG_INVALID;
	}
	t->open[t->depth++] = n;
	return CFG_OK;
}

enum cfg_status
cfg_yaml_parse(struct cfg_loader *ld, unsigned file, const void *buf,
    size_t len, struct cfg_node **root)
{
	struct tree t = { .root = NULL, .depth = 0 };
	struct cfg_node *n, second;
	yaml_parser_t p;
	yaml_event_t ev;
	enum cfg_status st = CFG_OK;
	int docs = 0;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		return CFG_NOMEM;
	yaml_parser_set_input_string(&p, buf, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done && st == CFG_OK) {
		if (!yaml_parser_parse(&p, &ev)) {
			st = syntax_error(ld, file, &p, buf, len);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ == 0)
				break;
			second = (struct cfg_node){
				.file = file,
				.line = (unsigned)ev.start_mark.line + 1,
				.col = (unsigned)ev.start_mark.column + 1,
			};
			cfg_error(ld, &second, NULL, "a second document "
			    "(expected one document per file)");
			st = CFG_INVALID;
			break;
		case YAML_ALIAS_EVENT:
			st = tree_add(ld, &t, node_new(CFG_N_ALIAS, file, &ev,
			    NULL, NULL));
			break;
		case YAML_SCALAR_EVENT:
			n = node_new(CFG_N_SCALAR, file, &ev,
			    ev.data.scalar.anchor, ev.data.scalar.tag);
			/* Our copy is zeroized with the tree; libyaml's now. */
			mbedtls_platform_zeroize(ev.data.scalar.value,
			    ev.data.scalar.length);
			st = tree_add(ld, &t, n);
			break;
		case YAML_SEQUENCE_START_EVENT:
			st = tree_add(ld, &t, node_new(CFG_N_SEQ, file, &ev,
			    ev.data.sequence_start.anchor,
			    ev.data.sequence_start.tag));
			break;
		case YAML_MAPPING_START_EVENT:
			st = tree_add(ld, &t, node_new(CFG_N_MAP, file, &ev,
			    ev.data.mapping_start.anchor,
			    ev.data.mapping_start.tag));
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			t.depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	/* libyaml keeps whole copies of the input (raw, then decoded): a
	 * static secret key would outlive the parse in freed memory. */
	if (p.raw_buffer.start != NULL)
		mbedtls_platform_zeroize(p.raw_buffer.start,
		    (size_t)(p.raw_buffer.end - p.raw_buffer.start));
	if (p.buffer.start != NULL)
		mbedtls_platform_zeroize(p.buffer.start,
		    (size_t)(p.buffer.end - p.buffer.start));
	yaml_parser_delete(&p);
	*root = t.root;
	return st;
}

bool
cfg_node_null(const struct cfg_node *n)
{
	return n->kind == CFG_N_SCALAR && n->plain && n->tag == NULL &&
	    (n->len == 0 || strcmp(n->text, "~") == 0 ||
	    strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
	    strcmp(n->text, "NULL") == 0);
}

const struct cfg_node *
cfg_node_get(const struct cfg_node *map, const char *key)
{
	size_t len = strlen(key);

	if (map == NULL || map->kind != CFG_N_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->nkids; i += 2)
		if (map->kids[i]->kind == CFG_N_SCALAR &&
		    map->kids[i]->len == len &&
		    memcmp(map->kids[i]->text, key, len) == 0)
			return map->kids[i + 1];
	return NULL;
}
