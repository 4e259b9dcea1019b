/*
 * Rules are few (a handful in a configuration) and matched in order, first
 * match wins, so a list walk with topic_match() is the right shape; what is
 * worth doing once is building each side's full filter (prefix + topic) and
 * measuring the prefixes, not per message.
 */
#include "bridge/rules.h"

#include <stdlib.h>
#include <string.h>

#include "topic/topic.h"

struct rule {
	char		*filter[2];	/* [0] local side, [1] remote side */
	size_t		 flen[2];
	char		*prefix[2];
	size_t		 plen[2];
	enum rules_dir	 dir;
	uint8_t		 qos;
	enum rules_ack	 ack;
};

struct rules {
	struct rule	*v;
	size_t		 n;
	char		**in_filter;	/* deduplicated remote filters */
	uint8_t		*in_qos;
	size_t		 nin;
	bool		 any_out;
};

static char *
concat(const char *a, size_t al, const char *b, size_t bl)
{
	char *p;

	if ((p = malloc(al + bl + 1)) == NULL)
		return NULL;
	memcpy(p, a, al);
	memcpy(p + al, b, bl);
	p[al + bl] = '\0';
	return p;
}

static bool
has_wildcard(const char *s)
{
	return strpbrk(s, "+#") != NULL;
}

/* Side s (0 local, 1 remote) of rule r from its spec. */
static enum rules_status
side_build(struct rule *r, int s, const char *prefix, const char *topic)
{
	size_t tl = strlen(topic);

	if (prefix == NULL)
		prefix = "";
	if (has_wildcard(prefix))
		return RULES_INVALID;
	r->plen[s] = strlen(prefix);
	if ((r->prefix[s] = concat(prefix, r->plen[s], "", 0)) == NULL ||
	    (r->filter[s] = concat(prefix, r->plen[s], topic, tl)) == NULL)
		return RULES_NOMEM;
	r->flen[s] = r->plen[s] + tl;
	if (r->flen[s] > RULES_TOPIC_MAX ||
	    topic_filter_check(r->filter[s], r->flen[s]) != TOPIC_OK)
		return RULES_INVALID;
	return RULES_OK;
}

/* The "in" rules' remote filters, each once. */
static enum rules_status
in_build(struct rules *r)
{
	if ((r->in_filter = calloc(r->n + 1, sizeof(char *))) == NULL ||
	    (r->in_qos = calloc(r->n + 1, 1)) == NULL)
		return RULES_NOMEM;
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *u = &r->v[i];
		uint8_t q = u->qos > 1 ? 1 : u->qos;
		size_t j;

		if (!(u->dir & RULES_IN))
			continue;
		for (j = 0; j < r->nin && strcmp(r->in_filter[j],
		    u->filter[1]) != 0; j++)
			;
		if (j < r->nin) {
			if (q > r->in_qos[j])
				r->in_qos[j] = q;
			continue;
		}
		r->in_filter[r->nin] = u->filter[1];	/* borrowed from v */
		r->in_qos[r->nin++] = q;
	}
	return RULES_OK;
}

enum rules_status
rules_compile(const struct rules_spec *specs, size_t n, struct rules **out,
    size_t *bad)
{
	struct rules *r;
	enum rules_status st = RULES_NOMEM;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return RULES_NOMEM;
	if (n > 0 && (r->v = calloc(n, sizeof(*r->v))) == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct rules_spec *sp = &specs[i];
		struct rule *u = &r->v[i];

		r->n = i + 1;
		u->dir = sp->dir;
		u->qos = sp->qos > 2 ? 2 : sp->qos;
		u->ack = sp->ack;
		if (sp->topic == NULL || !(sp->dir & RULES_BOTH))
			st = RULES_INVALID;
		else if ((st = side_build(u, 0, sp->local_prefix,
		    sp->topic)) == RULES_OK)
			st = side_build(u, 1, sp->remote_prefix, sp->topic);
		if (st != RULES_OK) {
			if (bad != NULL)
				*bad = i;
			goto fail;
		}
		r->any_out |= (sp->dir & RULES_OUT) != 0;
	}
	if ((st = in_build(r)) != RULES_OK)
		goto fail;
	*out = r;
	return RULES_OK;
fail:
	rules_free(r);
	return st;
}

void
rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		for (int s = 0; s < 2; s++) {
			free(r->v[i].filter[s]);
			free(r->v[i].prefix[s]);
		}
	}
	free(r->v);
	free(r->in_filter);
	free(r->in_qos);
	free(r);
}

enum rules_status
rules_map(const struct rules *r, enum rules_dir dir, const char *topic,
    size_t len, char *out, size_t cap, struct rules_match *m)
{
	int from = dir == RULES_OUT ? 0 : 1, to = 1 - from;

	for (size_t i = 0; i < r->n; i++) {
		const struct rule *u = &r->v[i];
		size_t rest, nl;

		if (!(u->dir & dir) ||
		    !topic_match(u->filter[from], u->flen[from], topic, len))
			continue;
		/* "gw/#" matches "gw" too, which has no part after "gw/" */
		if (len < u->plen[from])
			return RULES_UNMAPPABLE;
		rest = len - u->plen[from];
		nl = u->plen[to] + rest;
		if (nl == 0 || nl > RULES_TOPIC_MAX || nl > cap)
			return RULES_UNMAPPABLE;
		memcpy(out, u->prefix[to], u->plen[to]);
		memcpy(out + u->plen[to], topic + u->plen[from], rest);
		*m = (struct rules_match){ .rule = i, .qos = u->qos,
		    .ack = u->ack, .len = nl };
		return RULES_OK;
	}
	return RULES_NOMATCH;
}

bool
rules_any_out(const struct rules *r)
{
	return r->any_out;
}

size_t
rules_filters(const struct rules *r)
{
	return r->nin;
}

const char *
rules_filter(const struct rules *r, size_t i, uint8_t *qos)
{
	if (i >= r->nin)
		return NULL;
	if (qos != NULL)
		*qos = r->in_qos[i];
	return r->in_filter[i];
}

const char *
rules_strerror(enum rules_status st)
{
	switch (st) {
	case RULES_OK:		return "ok";
	case RULES_NOMATCH:	return "no rule matches";
	case RULES_UNMAPPABLE:	return "the matching rule cannot rename the topic";
	case RULES_INVALID:	return "not a valid topic filter or prefix";
	case RULES_NOMEM:	return "out of memory";
	}
	return "unknown status";
}
