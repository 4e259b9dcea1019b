/*
 * The transport choice (see tchoice.h): the order of the ways, moving along
 * it as attempts fail, and the one-line memory file of the way that worked.
 */
#include "tchoice/tchoice.h"

#include <stdio.h>
#include <string.h>

#define MEMORY_MAGIC	"iotbridge-transport 1 "

static const char *const names[TCHOICE_NWAYS] = {
	[TCHOICE_MQTTS] = "mqtts",
	[TCHOICE_MQTTS_ALPN] = "mqtts-alpn",
	[TCHOICE_WSS] = "wss",
};

const char *
tchoice_name(enum tchoice_way way)
{
	return (unsigned)way < TCHOICE_NWAYS ? names[way] : "?";
}

void
tchoice_init(struct tchoice *c, enum tchoice_mode mode, unsigned flags,
    const enum tchoice_way *remembered)
{
	static const enum tchoice_way fixed[] = {
		[TCHOICE_MODE_MQTTS] = TCHOICE_MQTTS,
		[TCHOICE_MODE_MQTTS_ALPN] = TCHOICE_MQTTS_ALPN,
		[TCHOICE_MODE_WSS] = TCHOICE_WSS,
	};
	size_t first = 0;

	*c = (struct tchoice){ .auto_mode = mode == TCHOICE_MODE_AUTO };
	if (!c->auto_mode) {
		c->ways[c->n++] = fixed[mode];
		return;
	}
	if (!(flags & TCHOICE_PROXY))
		c->ways[c->n++] = TCHOICE_MQTTS;
	c->ways[c->n++] = TCHOICE_MQTTS_ALPN;
	if (flags & TCHOICE_SIGV4)
		c->ways[c->n++] = TCHOICE_WSS;
	if (remembered == NULL)
		return;
	while (first < c->n && c->ways[first] != *remembered)
		first++;
	if (first == c->n)
		return;		/* not a way here (now behind a proxy) */
	/* the remembered way first, the others in their order after it */
	memmove(c->ways + 1, c->ways, first * sizeof(c->ways[0]));
	c->ways[0] = *remembered;
	c->known = true;
	c->worked = *remembered;
}

enum tchoice_way
tchoice_current(const struct tchoice *c)
{
	return c->ways[c->cur];
}

bool
tchoice_announce(struct tchoice *c)
{
	unsigned bit = 1u << tchoice_current(c);

	if (!c->auto_mode || (c->announced & bit))
		return false;
	c->announced |= bit;
	return true;
}

bool
tchoice_failed(struct tchoice *c)
{
	if (c->n < 2)
		return false;
	c->cur = (c->cur + 1) % c->n;
	return true;
}

bool
tchoice_worked(struct tchoice *c)
{
	enum tchoice_way w = tchoice_current(c);
	bool changed = !c->known || c->worked != w;

	/* said already, by the line that it works */
	c->announced = 1u << w;
	c->known = true;
	c->worked = w;
	return c->auto_mode && changed;
}

/* A host as the file holds it: printable, no white space, no '\\'. */
static bool
host_ok(const char *s, size_t n)
{
	if (n == 0 || n > TCHOICE_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '\\')
			return false;
	return true;
}

enum tchoice_status
tchoice_memory_encode(enum tchoice_way way, const char *host, char *out,
    size_t cap, size_t *len)
{
	int n;

	if ((unsigned)way >= TCHOICE_NWAYS || host == NULL ||
	    !host_ok(host, strnlen(host, TCHOICE_HOST_MAX + 1)))
		return TCHOICE_MALFORMED;
	n = snprintf(out, cap, MEMORY_MAGIC "%s %s\n", names[way], host);
	if (n < 0 || (size_t)n >= cap)
		return TCHOICE_NO_SPACE;
	if (len != NULL)
		*len = (size_t)n;
	return TCHOICE_OK;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

enum tchoice_status
tchoice_memory_parse(const void *buf, size_t len, const char *host,
    enum tchoice_way *way)
{
	const char *p = buf, *sp, *h;
	size_t magic = sizeof(MEMORY_MAGIC) - 1, wlen, hlen, i;

	if (len > TCHOICE_MEMORY_MAX || len < magic ||
	    memcmp(p, MEMORY_MAGIC, magic) != 0)
		return TCHOICE_MALFORMED;
	if (p[len - 1] == '\n')
		len--;
	p += magic;
	len -= magic;
	if ((sp = memchr(p, ' ', len)) == NULL)
		return TCHOICE_MALFORMED;
	wlen = (size_t)(sp - p);
	h = sp + 1;
	hlen = len - wlen - 1;
	if (!host_ok(h, hlen))
		return TCHOICE_MALFORMED;
	for (i = 0; i < TCHOICE_NWAYS; i++)
		if (strlen(names[i]) == wlen && memcmp(names[i], p, wlen) == 0)
			break;
	if (i == TCHOICE_NWAYS)
		return TCHOICE_MALFORMED;
	*way = (enum tchoice_way)i;
	if (host == NULL || strlen(host) != hlen)
		return TCHOICE_OTHER;
	for (size_t j = 0; j < hlen; j++)
		if (lower(host[j]) != lower(h[j]))
			return TCHOICE_OTHER;
	return TCHOICE_OK;
}

const char *
tchoice_strerror(enum tchoice_status st)
{
	switch (st) {
	case TCHOICE_OK:
		return "success";
	case TCHOICE_MALFORMED:
		return "not a transport memory file";
	case TCHOICE_OTHER:
		return "remembered for another endpoint";
	case TCHOICE_NO_SPACE:
		return "output buffer too small";
	}
	return "unknown status";
}
