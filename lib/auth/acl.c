/*
 * ACL file: parsing into a flat array of rules sorted by section (anonymous,
 * user NAME, client ID, patterns), so that a client's rules are three
 * binary-searched runs plus the patterns, and evaluating a request over those
 * runs with "deny wins". Rules point into one private copy of the file text.
 * Filters are compared with topic_match for topic names; for subscriptions
 * two filter-against-filter relations are defined here: overlap (some topic
 * matches both) and cover (every topic one matches, the other matches too).
 */
#include "auth/acl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "topic/topic.h"

enum acl_scope {
	ACL_SCOPE_ANON,
	ACL_SCOPE_USER,
	ACL_SCOPE_CLIENT,
	ACL_SCOPE_PATTERN,
};

struct acl_rule {
	enum acl_scope	 scope;
	const char	*name;		/* user name or client id, else "" */
	size_t		 nlen;
	const char	*filter;
	size_t		 flen;
	unsigned	 access;	/* ACL_READ | ACL_WRITE; 0: deny */
	bool		 subst;		/* a pattern with %u or %c */
};

struct acl {
	char		*text;		/* the file, which rules point into */
	struct acl_rule	*rules;
	size_t		 count;
	size_t		 cap;
};

/* Whose request it is. */
struct acl_who {
	const char	*user;		/* NULL: anonymous */
	size_t		 ulen;
	const char	*cid;
	size_t		 clen;
};

/* A (pointer, length) view. */
struct acl_span {
	const char	*s;
	size_t		 len;
};

static bool
acl_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
acl_span_eq(struct acl_span sp, const char *word)
{
	return sp.len == strlen(word) && memcmp(sp.s, word, sp.len) == 0;
}

/* Skip blanks, then take the word up to the next blank. */
static struct acl_span
acl_word(const char *line, size_t len, size_t *pos)
{
	struct acl_span w;

	while (*pos < len && acl_blank(line[*pos]))
		(*pos)++;
	w.s = line + *pos;
	while (*pos < len && !acl_blank(line[*pos]))
		(*pos)++;
	w.len = (size_t)(line + *pos - w.s);
	return w;
}

/* Skip blanks, then take the rest of the line without trailing blanks. */
static struct acl_span
acl_rest(const char *line, size_t len, size_t *pos)
{
	struct acl_span r;

	while (*pos < len && acl_blank(line[*pos]))
		(*pos)++;
	r.s = line + *pos;
	r.len = len - *pos;
	while (r.len > 0 && acl_blank(r.s[r.len - 1]))
		r.len--;
	return r;
}

static enum acl_status
acl_fail(struct acl_err *err, unsigned line, const char *lstart,
    const char *at, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum acl_status
acl_fail(struct acl_err *err, unsigned line, const char *lstart,
    const char *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return ACL_SYNTAX;
	err->line = line;
	err->col = (unsigned)(at - lstart) + 1;
	n = snprintf(err->msg, sizeof(err->msg), "%u:%u: ", err->line,
	    err->col);
	if (n > 0 && (size_t)n < sizeof(err->msg)) {
		va_start(ap, fmt);
		vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return ACL_SYNTAX;
}

static bool
acl_contains(struct acl_span sp, const char *needle)
{
	for (size_t i = 0; i + 1 < sp.len; i++)
		if (sp.s[i] == needle[0] && sp.s[i + 1] == needle[1])
			return true;
	return false;
}

static enum acl_status
acl_add(struct acl *acl, const struct acl_rule *r)
{
	struct acl_rule *n;
	size_t cap;

	if (acl->count == acl->cap) {
		cap = acl->cap ? acl->cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(*n))
			return ACL_NOMEM;
		if ((n = realloc(acl->rules, cap * sizeof(*n))) == NULL)
			return ACL_NOMEM;
		acl->rules = n;
		acl->cap = cap;
	}
	acl->rules[acl->count++] = *r;
	return ACL_OK;
}

/*
 * "topic|pattern [ACCESS] FILTER" after the directive, at line[pos]. The
 * keyword is optional only when the filter is a single word, as in
 * mosquitto; a lone keyword is refused rather than taken as a topic named
 * "read".
 */
static enum acl_status
acl_parse_rule(struct acl *acl, struct acl_rule *r, const char *line,
    size_t len, size_t pos, unsigned lineno, struct acl_err *err)
{
	static const struct {
		const char	*word;
		unsigned	 access;
	} kw[] = {
		{ "read", ACL_READ },
		{ "write", ACL_WRITE },
		{ "readwrite", ACL_READ | ACL_WRITE },
		{ "deny", 0 },
	};
	struct acl_span first, filter;
	enum topic_status ts;
	size_t i;

	first = acl_word(line, len, &pos);
	filter = acl_rest(line, len, &pos);
	if (first.len == 0)
		return acl_fail(err, lineno, line, first.s, "missing filter");
	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (acl_span_eq(first, kw[i].word))
			break;
	if (filter.len == 0) {
		if (i < sizeof(kw) / sizeof(kw[0]))
			return acl_fail(err, lineno, line, first.s + first.len,
			    "missing filter after \"%s\"", kw[i].word);
		filter = first;
		r->access = ACL_READ | ACL_WRITE;
	} else if (i == sizeof(kw) / sizeof(kw[0])) {
		return acl_fail(err, lineno, line, first.s, "bad access "
		    "keyword \"%.*s\" (expected read, write, readwrite or deny)",
		    first.len > 32 ? 32 : (int)first.len, first.s);
	} else
		r->access = kw[i].access;
	if ((ts = topic_filter_check(filter.s, filter.len)) != TOPIC_OK)
		return acl_fail(err, lineno, line, filter.s,
		    "invalid filter: %s", topic_strerror(ts));
	r->filter = filter.s;
	r->flen = filter.len;
	r->subst = r->scope == ACL_SCOPE_PATTERN &&
	    (acl_contains(filter, "%u") || acl_contains(filter, "%c"));
	return acl_add(acl, r);
}

static int
acl_key_cmp(enum acl_scope sa, const char *na, size_t la, enum acl_scope sb,
    const char *nb, size_t lb)
{
	int c;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	if ((c = memcmp(na, nb, la < lb ? la : lb)) != 0)
		return c;
	return (la > lb) - (la < lb);
}

static int
acl_rule_cmp(const void *a, const void *b)
{
	const struct acl_rule *x = a, *y = b;

	return acl_key_cmp(x->scope, x->name, x->nlen, y->scope, y->name,
	    y->nlen);
}

enum acl_status
acl_parse(const char *buf, size_t len, struct acl **aclp, struct acl_err *err)
{
	struct acl *acl;
	struct acl_rule section = { .scope = ACL_SCOPE_ANON, .name = "" };
	enum acl_status st = ACL_NOMEM;
	size_t off = 0;
	unsigned lineno = 0;

	*aclp = NULL;
	if ((acl = calloc(1, sizeof(*acl))) == NULL)
		return ACL_NOMEM;
	if ((acl->text = malloc(len ? len : 1)) == NULL)
		goto fail;
	if (len > 0)
		memcpy(acl->text, buf, len);
	while (off < len) {
		const char *line = acl->text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t llen = nl ? (size_t)(nl - line) : len - off, pos = 0;
		struct acl_span dir, name;
		struct acl_rule r;

		off += llen + (nl != NULL);
		lineno++;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen > ACL_MAX_LINE) {
			st = acl_fail(err, lineno, line, line + ACL_MAX_LINE,
			    "line too long (more than %d bytes)", ACL_MAX_LINE);
			goto fail;
		}
		if (utf8_check((const uint8_t *)line, llen) != UTF8_OK) {
			st = acl_fail(err, lineno, line, line,
			    "invalid UTF-8 or NUL byte");
			goto fail;
		}
		dir = acl_word(line, llen, &pos);
		if (dir.len == 0 || dir.s[0] == '#')
			continue;
		if (acl_span_eq(dir, "user") || acl_span_eq(dir, "client")) {
			bool user = dir.s[0] == 'u';

			name = acl_rest(line, llen, &pos);
			if (name.len == 0) {
				st = acl_fail(err, lineno, line, name.s,
				    user ? "missing user name" :
				    "missing client id");
				goto fail;
			}
			section.scope = user ? ACL_SCOPE_USER :
			    ACL_SCOPE_CLIENT;
			section.name = name.s;
			section.nlen = name.len;
			continue;
		}
		if (acl_span_eq(dir, "topic"))
			r = section;
		else if (acl_span_eq(dir, "pattern"))
			r = (struct acl_rule){ .scope = ACL_SCOPE_PATTERN,
			    .name = "" };
		else {
			st = acl_fail(err, lineno, line, dir.s, "unknown "
			    "directive \"%.*s\" (expected topic, pattern, user "
			    "or client)", dir.len > 32 ? 32 : (int)dir.len,
			    dir.s);
			goto fail;
		}
		if ((st = acl_parse_rule(acl, &r, line, llen, pos, lineno,
		    err)) != ACL_OK)
			goto fail;
	}
	if (acl->count > 1)
		qsort(acl->rules, acl->count, sizeof(*acl->rules),
		    acl_rule_cmp);
	*aclp = acl;
	return ACL_OK;
fail:
	acl_free(acl);
	return st;
}

void
acl_free(struct acl *acl)
{
	if (acl == NULL)
		return;
	free(acl->rules);
	free(acl->text);
	free(acl);
}

size_t
acl_rule_count(const struct acl *acl)
{
	return acl->count;
}

/* The run of rules of one section: [*first, *first + *n). */
static void
acl_run(const struct acl *acl, enum acl_scope scope, const char *name,
    size_t nlen, size_t *first, size_t *n)
{
	size_t lo = 0, hi = acl->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct acl_rule *r = &acl->rules[mid];

		if (acl_key_cmp(r->scope, r->name, r->nlen, scope, name,
		    nlen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (hi < acl->count && acl_key_cmp(acl->rules[hi].scope,
	    acl->rules[hi].name, acl->rules[hi].nlen, scope, name, nlen) == 0)
		hi++;
	*n = hi - lo;
}

/*
 * Can v be put into a filter at offset `at` without widening it? No
 * wildcard, no level separator, and no leading '$' at the start of the
 * filter, where it would reach into $SYS-like topics that wildcards never
 * match.
 */
static bool
acl_subst_safe(const char *v, size_t vlen, size_t at)
{
	if (at == 0 && vlen > 0 && v[0] == '$')
		return false;
	for (size_t i = 0; i < vlen; i++)
		if (v[i] == '+' || v[i] == '#' || v[i] == '/')
			return false;
	return true;
}

/*
 * Expand %u and %c of a pattern into out[0..ACL_MAX_SUBST). Returns the
 * length, or 0 when the pattern does not apply to this client.
 */
static size_t
acl_subst(const struct acl_rule *r, const struct acl_who *who, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < r->flen; i++) {
		const char *v = NULL;
		size_t vlen = 0;

		if (r->filter[i] == '%' && i + 1 < r->flen &&
		    (r->filter[i + 1] == 'u' || r->filter[i + 1] == 'c')) {
			if (r->filter[i + 1] == 'u') {
				if (who->user == NULL)
					return 0;
				v = who->user;
				vlen = who->ulen;
			} else {
				v = who->cid;
				vlen = who->clen;
			}
			if (!acl_subst_safe(v, vlen, n))
				return 0;
			i++;
		} else {
			v = &r->filter[i];
			vlen = 1;
		}
		if (vlen > ACL_MAX_SUBST - n)
			return 0;
		memcpy(out + n, v, vlen);
		n += vlen;
	}
	return n;
}

/* One level of a filter: s[*i..) up to '/' or the end; *more if a '/' ends it. */
static struct acl_span
acl_level(const char *s, size_t len, size_t *i, bool *more)
{
	struct acl_span l = { s + *i, 0 };
	const char *slash = memchr(l.s, '/', len - *i);

	l.len = slash ? (size_t)(slash - l.s) : len - *i;
	*more = slash != NULL;
	*i += l.len + (slash != NULL);
	return l;
}

static bool
acl_is(struct acl_span l, char c)
{
	return l.len == 1 && l.s[0] == c;
}

static bool
acl_wild(struct acl_span l)
{
	return acl_is(l, '+') || acl_is(l, '#');
}

static bool
acl_dollar(struct acl_span l)
{
	return l.len > 0 && l.s[0] == '$';
}

/* Is the rest of a filter, after a '/', exactly "#"? */
static bool
acl_rest_is_hash(const char *s, size_t len, size_t i)
{
	return len - i == 1 && s[i] == '#';
}

/* Is there a topic name that both filters match? */
static bool
acl_overlap(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;
	bool amore, bmore, first = true;

	for (;;) {
		struct acl_span la = acl_level(a, alen, &i, &amore);
		struct acl_span lb = acl_level(b, blen, &j, &bmore);

		/* No wildcard in the first level reaches a '$' topic. */
		if (first && ((acl_wild(la) && acl_dollar(lb)) ||
		    (acl_wild(lb) && acl_dollar(la))))
			return false;
		first = false;
		if (acl_is(la, '#') || acl_is(lb, '#'))
			return true;
		if (!acl_is(la, '+') && !acl_is(lb, '+') &&
		    (la.len != lb.len || memcmp(la.s, lb.s, la.len) != 0))
			return false;
		if (!amore && !bmore)
			return true;
		/* "a/#" also matches "a". */
		if (!amore)
			return acl_rest_is_hash(b, blen, j);
		if (!bmore)
			return acl_rest_is_hash(a, alen, i);
	}
}

/* Does filter d match every topic name that filter s matches? */
static bool
acl_covers(const char *d, size_t dlen, const char *s, size_t slen)
{
	size_t i = 0, j = 0;
	bool dmore, smore, first = true;

	for (;;) {
		struct acl_span ld = acl_level(d, dlen, &i, &dmore);
		struct acl_span ls = acl_level(s, slen, &j, &smore);

		if (first && acl_wild(ld) && acl_dollar(ls))
			return false;
		first = false;
		if (acl_is(ld, '#'))
			return true;
		if (acl_is(ls, '#'))
			return false;
		if (acl_is(ls, '+') && !acl_is(ld, '+'))
			return false;
		if (!acl_is(ld, '+') &&
		    (ld.len != ls.len || memcmp(ld.s, ls.s, ld.len) != 0))
			return false;
		if (!smore)
			return !dmore || acl_rest_is_hash(d, dlen, i);
		if (!dmore)
			return false;
	}
}

/* A topic name (subscribe false) or a subscription filter (subscribe true). */
struct acl_query {
	const char	*s;
	size_t		 len;
	unsigned	 access;
	bool		 subscribe;
};

/*
 * Evaluate one run of rules. Returns false as soon as a deny applies (deny
 * wins); sets *granted when an allowing rule applies.
 */
static bool
acl_eval_run(const struct acl *acl, size_t first, size_t n,
    const struct acl_who *who, const struct acl_query *q, bool *granted)
{
	char buf[ACL_MAX_SUBST];

	for (size_t k = first; k < first + n; k++) {
		const struct acl_rule *r = &acl->rules[k];
		const char *f = r->filter;
		size_t flen = r->flen;
		bool hit;

		if (r->subst) {
			if ((flen = acl_subst(r, who, buf)) == 0) {
				if (r->access == 0)
					return false;	/* fail closed */
				continue;
			}
			f = buf;
		}
		if (r->access == 0) {
			hit = q->subscribe ? acl_covers(f, flen, q->s, q->len) :
			    topic_match(f, flen, q->s, q->len);
			if (hit)
				return false;
		} else if ((r->access & q->access) != 0 && !*granted) {
			*granted = q->subscribe ?
			    acl_overlap(f, flen, q->s, q->len) :
			    topic_match(f, flen, q->s, q->len);
		}
	}
	return true;
}

static bool
acl_eval(const struct acl *acl, const struct acl_who *who,
    const struct acl_query *q)
{
	size_t first, n;
	bool granted = false;

	if (who->user != NULL)
		acl_run(acl, ACL_SCOPE_USER, who->user, who->ulen, &first, &n);
	else
		acl_run(acl, ACL_SCOPE_ANON, "", 0, &first, &n);
	if (!acl_eval_run(acl, first, n, who, q, &granted))
		return false;
	acl_run(acl, ACL_SCOPE_CLIENT, who->cid, who->clen, &first, &n);
	if (!acl_eval_run(acl, first, n, who, q, &granted))
		return false;
	acl_run(acl, ACL_SCOPE_PATTERN, "", 0, &first, &n);
	if (!acl_eval_run(acl, first, n, who, q, &granted))
		return false;
	return granted;
}

bool
acl_check(const struct acl *acl, const char *user, size_t ulen,
    const char *cid, size_t clen, const char *topic, size_t tlen,
    enum acl_access access)
{
	struct acl_who who = { user, ulen, cid, clen };
	struct acl_query q = { topic, tlen, (unsigned)access, false };

	return acl_eval(acl, &who, &q);
}

bool
acl_check_subscribe(const struct acl *acl, const char *user, size_t ulen,
    const char *cid, size_t clen, const char *filter, size_t flen)
{
	struct acl_who who = { user, ulen, cid, clen };
	struct acl_query q = { filter, flen, ACL_READ, true };

	return acl_eval(acl, &who, &q);
}

const char *
acl_strerror(enum acl_status st)
{
	switch (st) {
	case ACL_OK:
		return "success";
	case ACL_NOMEM:
		return "out of memory";
	case ACL_SYNTAX:
		return "malformed ACL file";
	}
	return "unknown status";
}
