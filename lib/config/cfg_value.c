/*
 * Typed values: the text of one YAML scalar parsed as what its key says
 * (boolean, integer, duration, size, enum, path, address, host, URL, topic
 * filter, ...) and checked against the key's range; and the way back, a value
 * rendered as the canonical text cfg_describe() writes. Every refusal is one
 * "what is wrong (what was expected)" phrase; the loader adds where.
 */
#include "config/cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/platform_util.h>

#include "base/utf8.h"
#include "config/cfg_int.h"
#include "topic/topic.h"

#define QUOTE_MAX	48	/* bytes of a value shown in a message */
#define QBUF		(QUOTE_MAX * 4 + 8)

struct unit {
	const char	*name;
	uint64_t	 mult;
};

/* Largest first: the formatters take the first that divides. */
static const struct unit duration_units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	{ "ms", 1 },
};
static const struct unit size_units[] = {
	{ "TiB", 1ULL << 40 }, { "GiB", 1ULL << 30 }, { "MiB", 1ULL << 20 },
	{ "KiB", 1ULL << 10 }, { "B", 1 },
};
#define NUNITS(a)	(sizeof(a) / sizeof((a)[0]))

#define ERR(...)	(snprintf(err, cap, __VA_ARGS__), CFG_INVALID)

void
cfg_quote(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0, n = len > QUOTE_MAX ? QUOTE_MAX : len;

	/* Do not cut a UTF-8 sequence in two. */
	while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	if (cap < 8) {
		if (cap > 0)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n && o + 6 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	if (n < len && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

static void
fmt_units(uint64_t v, const struct unit *u, size_t n, char *buf, size_t cap)
{
	size_t i = 0;

	while (v != 0 && i + 1 < n && v % u[i].mult != 0)
		i++;
	if (v == 0)
		i = n - 1;
	snprintf(buf, cap, "%" PRIu64 "%s", v / u[i].mult, u[i].name);
}

void
cfg_fmt_duration(uint64_t ms, char *buf, size_t cap)
{
	fmt_units(ms, duration_units, NUNITS(duration_units), buf, cap);
}

void
cfg_fmt_size(uint64_t bytes, char *buf, size_t cap)
{
	fmt_units(bytes, size_units, NUNITS(size_units), buf, cap);
}

static void
fmt_number(const struct cfg_keydef *kd, int64_t v, char *buf, size_t cap)
{
	if (kd->type == CFG_T_DURATION)
		cfg_fmt_duration((uint64_t)v, buf, cap);
	else if (kd->type == CFG_T_SIZE)
		cfg_fmt_size((uint64_t)v, buf, cap);
	else
		snprintf(buf, cap, "%" PRId64, v);
}

/* "1..65535", "0 for off, or 1s..1h" */
static const char *
range_text(const struct cfg_keydef *kd, char *buf, size_t cap)
{
	char lo[32], hi[32];

	fmt_number(kd, kd->min, lo, sizeof(lo));
	fmt_number(kd, kd->max, hi, sizeof(hi));
	if (kd->special != NULL)
		snprintf(buf, cap, "%" PRId64 " for %s, or %s..%s",
		    kd->special_value, kd->special, lo, hi);
	else
		snprintf(buf, cap, "%s..%s", lo, hi);
	return buf;
}

/* "a, b or c" */
static const char *
values_text(const char *const *v, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; v[i] != NULL && o < cap; i++) {
		const char *sep = i == 0 ? "" : v[i + 1] == NULL ? " or " : ", ";
		int n = snprintf(buf + o, cap - o, "%s%s", sep, v[i]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
	return buf;
}

const char *
cfg_type_name(const struct cfg_keydef *kd)
{
	switch (kd->type) {
	case CFG_T_BOOL:	return "bool";
	case CFG_T_INT:		return "integer";
	case CFG_T_DURATION:	return "duration";
	case CFG_T_SIZE:	return "size";
	case CFG_T_ENUM:	return "enum";
	case CFG_T_STRING:	return kd->flags & CFG_K_SECRET ? "secret" : "string";
	case CFG_T_PATH:	return "path";
	case CFG_T_ADDR:	return "address";
	case CFG_T_ENDPOINT:	return "host";
	case CFG_T_URL:		return "url";
	case CFG_T_FILTER:	return "topic filter";
	case CFG_T_PREFIX:	return "topic prefix";
	case CFG_T_REGION:	return "region";
	case CFG_T_SECTION:	return "mapping";
	case CFG_T_LIST:	return "list";
	}
	return "?";
}

const char *
cfg_value_expect(const struct cfg_keydef *kd, char *buf, size_t cap)
{
	char r[96];

	switch (kd->type) {
	case CFG_T_BOOL:
		return "true or false";
	case CFG_T_INT:
		snprintf(buf, cap, "an integer, %s", range_text(kd, r, sizeof(r)));
		return buf;
	case CFG_T_DURATION:
		snprintf(buf, cap, "a duration, %s", range_text(kd, r, sizeof(r)));
		return buf;
	case CFG_T_SIZE:
		snprintf(buf, cap, "a size, %s", range_text(kd, r, sizeof(r)));
		return buf;
	case CFG_T_ENUM:
		return values_text(kd->values, buf, cap);
	case CFG_T_STRING:
		return "a string";
	case CFG_T_PATH:
		return "an absolute path";
	case CFG_T_ADDR:
		return kd->flags & CFG_K_UNIX ?
		    "an address such as 127.0.0.1:1883, [::1]:1883 or unix:/PATH" :
		    "an address such as 127.0.0.1:9469 or [::1]:9469";
	case CFG_T_ENDPOINT:
		return "a host name such as xxx-ats.iot.eu-west-1.amazonaws.com";
	case CFG_T_URL:
		return "a URL such as http://proxy.example:3128";
	case CFG_T_FILTER:
		return "a topic filter such as sensors/#";
	case CFG_T_PREFIX:
		return "a topic prefix such as gw01/";
	case CFG_T_REGION:
		return "an AWS region such as eu-west-1";
	case CFG_T_SECTION:
		return "a mapping";
	case CFG_T_LIST:
		return "a list";
	}
	return "?";
}

/* Leading decimal digits of s into *v; NULL when there are none or they do
 * not fit in 64 bits (*overflow set then). */
static const char *
parse_digits(const char *s, uint64_t *v, bool *overflow)
{
	const char *p = s;

	*v = 0;
	*overflow = false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (*v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			*overflow = true;
		else
			*v = *v * 10 + (uint64_t)(*p - '0');
	}
	return p == s || *overflow ? NULL : p;
}

static bool
all_alpha(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalpha((unsigned char)*s))
			return false;
	return true;
}

static enum cfg_status
check_range(const struct cfg_keydef *kd, int64_t v, const char *shown,
    char *err, size_t cap)
{
	char r[96];

	if ((kd->special != NULL && v == kd->special_value) ||
	    (v >= kd->min && v <= kd->max))
		return CFG_OK;
	return ERR("%s is out of range (expected %s)", shown,
	    range_text(kd, r, sizeof(r)));
}

static enum cfg_status
parse_int(const struct cfg_keydef *kd, const char *s, int64_t *out,
    char *err, size_t cap)
{
	const char *end;
	char q[QBUF], r[96], shown[32];
	uint64_t u;
	bool neg = *s == '-', overflow;

	end = parse_digits(s + neg, &u, &overflow);
	if (end == NULL || *end != '\0' || u > (uint64_t)INT64_MAX) {
		cfg_quote(s, strlen(s), q, sizeof(q));
		range_text(kd, r, sizeof(r));
		if (overflow || (end != NULL && *end == '\0'))
			return ERR("%s is too large (expected %s)", q, r);
		return ERR("%s is not an integer (expected %s)", q, r);
	}
	*out = neg ? -(int64_t)u : (int64_t)u;
	snprintf(shown, sizeof(shown), "%" PRId64, *out);
	return check_range(kd, *out, shown, err, cap);
}

/* A number and a unit: durations and sizes. A bare 0 needs no unit; for
 * any other bare number the message suggests bare_unit. */
static enum cfg_status
parse_scaled(const struct cfg_keydef *kd, const char *s, const struct unit *u,
    size_t nu, const char *what, const char *bare_unit, uint64_t *out,
    char *err, size_t cap)
{
	const char *end;
	char q[QBUF], uq[QBUF], r[96], units[64];
	uint64_t v, mult = 1;
	bool overflow;
	size_t i, o = 0;

	for (i = nu; i-- > 0;)
		o += (size_t)snprintf(units + o, sizeof(units) - o, "%s%s",
		    u[i].name, i == 0 ? "" : i == 1 ? " or " : ", ");
	cfg_quote(s, strlen(s), q, sizeof(q));
	range_text(kd, r, sizeof(r));
	if ((end = parse_digits(s, &v, &overflow)) == NULL) {
		if (overflow)
			return ERR("%s is too large (expected %s)", q, r);
		return ERR("%s is not a %s (expected a number and a unit: %s)",
		    q, what, units);
	}
	if (*end == '\0' && v != 0)
		return ERR("%s has no unit (expected a %s such as %" PRIu64
		    "%s; units: %s)", q, what, v, bare_unit, units);
	if (*end != '\0') {
		for (i = 0; i < nu; i++)
			if (strcmp(end, u[i].name) == 0)
				break;
		if (i == nu && !all_alpha(end))
			return ERR("%s is not a %s (expected a number and a "
			    "unit: %s)", q, what, units);
		if (i == nu) {
			cfg_quote(end, strlen(end), uq, sizeof(uq));
			/* KB, kb, sec, min: guess from the first letter. */
			for (i = 0; i < nu; i++)
				if (tolower((unsigned char)*end) ==
				    tolower((unsigned char)u[i].name[0]))
					return ERR("%s has an unknown unit %s "
					    "(expected %s; did you mean %"
					    PRIu64 "%s?)", q, uq, units, v,
					    u[i].name);
			return ERR("%s has an unknown unit %s (expected %s)",
			    q, uq, units);
		}
		mult = u[i].mult;
	}
	if (v > (uint64_t)INT64_MAX / mult)
		return ERR("%s is too large (expected %s)", q, r);
	*out = v * mult;
	return check_range(kd, (int64_t)*out, s, err, cap);
}

static enum cfg_status
parse_enum(const struct cfg_keydef *kd, const char *s, int *out,
    char *err, size_t cap)
{
	char q[QBUF], vals[128];
	size_t len = strlen(s);

	for (int i = 0; kd->values[i] != NULL; i++)
		if (strcmp(s, kd->values[i]) == 0) {
			*out = i;
			return CFG_OK;
		}
	cfg_quote(s, len, q, sizeof(q));
	values_text(kd->values, vals, sizeof(vals));
	for (int i = 0; kd->values[i] != NULL; i++)
		if (cfg_similar(s, len, kd->values[i]))
			return ERR("%s is not valid (expected %s; did you mean "
			    "%s?)", q, vals, kd->values[i]);
	return ERR("%s is not valid (expected %s)", q, vals);
}

/* Printable text within the key's length limits; says nothing of the
 * value itself, so it serves secrets too. */
static enum cfg_status
check_text(const struct cfg_keydef *kd, const char *s, size_t len,
    char *err, size_t cap)
{
	const char *hide = kd->flags & CFG_K_SECRET ? "; value hidden" : "";
	size_t max = kd->max > 0 ? (size_t)kd->max : CFG_STR_MAX;

	if (len < (size_t)kd->min)
		return ERR("%s (expected at least %" PRId64 " byte%s%s)",
		    len == 0 ? "empty string" : "too short", kd->min,
		    kd->min == 1 ? "" : "s", hide);
	if (len > max)
		return ERR("too long: %zu bytes (expected at most %zu bytes%s)",
		    len, max, hide);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return ERR("control character at byte %zu (expected "
			    "printable text%s)", i + 1, hide);
	if (utf8_check((const uint8_t *)s, len) != UTF8_OK)
		return ERR("not UTF-8 (expected UTF-8 text%s)", hide);
	return CFG_OK;
}

static enum cfg_status
check_path(const struct cfg_keydef *kd, const char *s, size_t len,
    char *err, size_t cap)
{
	char q[QBUF];
	size_t max = kd->max > 0 ? (size_t)kd->max : CFG_STR_MAX - 1;

	if (len == 0)
		return ERR("empty path (expected an absolute path)");
	if (len > max)
		return ERR("path too long: %zu bytes (expected at most %zu)",
		    len, max);
	cfg_quote(s, len, q, sizeof(q));
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return ERR("%s has a control character (expected a "
			    "path)", q);
	if (s[0] != '/')
		return ERR("%s is not an absolute path (expected a path "
		    "starting with /)", q);
	return CFG_OK;
}

static enum cfg_status
parse_port(const char *whole, const char *p, size_t len, uint16_t *port,
    char *err, size_t cap)
{
	char q[QBUF], pq[QBUF];
	unsigned long v = 0;
	int shown = len > 20 ? 20 : (int)len;

	cfg_quote(whole, strlen(whole), q, sizeof(q));
	if (len == 0)
		return ERR("%s has no port (expected HOST:PORT, port 1..65535)",
		    q);
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9') {
			cfg_quote(p, len, pq, sizeof(pq));
			return ERR("%s: port %s is not a number (expected "
			    "1..65535)", q, pq);
		}
		if (v <= 65535)
			v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return ERR("%s: port %.*s is out of range (expected 1..65535)",
		    q, shown, p);
	*port = (uint16_t)v;
	return CFG_OK;
}

static enum cfg_status
parse_addr(const struct cfg_keydef *kd, const char *s, struct cfg_addr *a,
    char *err, size_t cap)
{
	const char *colon, *close, *form;
	char q[QBUF], host[64], fbuf[96];
	size_t len = strlen(s);

	memset(a, 0, sizeof(*a));
	a->family = AF_UNSPEC;
	if (len == 0 && kd->special != NULL)
		return CFG_OK;
	cfg_quote(s, len, q, sizeof(q));
	form = cfg_value_expect(kd, fbuf, sizeof(fbuf));
	if (strncmp(s, "unix:", 5) == 0) {
		if (!(kd->flags & CFG_K_UNIX))
			return ERR("%s: unix sockets are not supported here "
			    "(expected %s)", q, form);
		if (s[5] != '/')
			return ERR("%s: the socket path is not absolute "
			    "(expected unix:/PATH)", q);
		if (len - 5 > CFG_UNIX_PATH_MAX)
			return ERR("socket path too long: %zu bytes (expected "
			    "at most %d)", len - 5, CFG_UNIX_PATH_MAX);
		for (size_t i = 5; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
				return ERR("%s has a control character "
				    "(expected unix:/PATH)", q);
		a->family = AF_UNIX;
		memcpy(a->path, s + 5, len - 5 + 1);
		return CFG_OK;
	}
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL)
			return ERR("%s has no closing ] (expected [IPv6]:PORT "
			    "such as [::1]:1883)", q);
		if ((size_t)(close - s - 1) >= sizeof(host) ||
		    (memcpy(host, s + 1, (size_t)(close - s - 1)),
		    host[close - s - 1] = '\0',
		    inet_pton(AF_INET6, host, a->ip) != 1))
			return ERR("%s: not an IPv6 address in brackets "
			    "(expected [IPv6]:PORT such as [::1]:1883)", q);
		if (close[1] != ':' && close[1] != '\0')
			return ERR("%s: unexpected text after ] (expected "
			    "[IPv6]:PORT such as [::1]:1883)", q);
		a->family = AF_INET6;
		return parse_port(s, close[1] ? close + 2 : close + 1,
		    close[1] ? strlen(close + 2) : 0, &a->port, err, cap);
	}
	if ((colon = strrchr(s, ':')) == NULL)
		return ERR("%s has no port (expected %s)", q, form);
	if (memchr(s, ':', (size_t)(colon - s)) != NULL)
		return ERR("%s: IPv6 address without brackets (expected "
		    "[IPv6]:PORT such as [::1]:1883)", q);
	if ((size_t)(colon - s) >= sizeof(host) ||
	    (memcpy(host, s, (size_t)(colon - s)), host[colon - s] = '\0',
	    inet_pton(AF_INET, host, a->ip) != 1))
		return ERR("%s: not a numeric IPv4 address (expected %s; host "
		    "names are not resolved)", q, form);
	a->family = AF_INET;
	return parse_port(s, colon + 1, strlen(colon + 1), &a->port, err, cap);
}

/* A DNS name (letters, digits, '-' in labels of 1..63) or an IPv4 literal,
 * which has the same shape. */
static bool
host_ok(const char *h, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (h[i] == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum((unsigned char)h[i]) ||
		    (h[i] == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && h[len - 1] != '-';
}

/* HOST, HOST:PORT, [IPv6] or [IPv6]:PORT; dport 0: the port is required. */
static enum cfg_status
parse_hostport(const char *whole, const char *s, uint16_t dport,
    const char *expect, struct cfg_hostport *hp, char *err, size_t cap)
{
	const char *h = s, *port = NULL, *colon;
	char q[QBUF], v6[64];
	size_t hlen;
	uint8_t ip[16];
	enum cfg_status st;

	cfg_quote(whole, strlen(whole), q, sizeof(q));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return ERR("%s has no closing ] (expected %s)", q,
			    expect);
		h = s + 1;
		hlen = (size_t)(close - h);
		if (hlen >= sizeof(v6) || (memcpy(v6, h, hlen), v6[hlen] = '\0',
		    inet_pton(AF_INET6, v6, ip) != 1))
			return ERR("%s: not an IPv6 address in brackets "
			    "(expected %s)", q, expect);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return ERR("%s: unexpected text after ] (expected %s)",
			    q, expect);
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return ERR("%s: IPv6 address without brackets "
			    "(expected %s)", q, expect);
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (!host_ok(s, hlen))
			return ERR("%s: not a valid host name (expected %s)",
			    q, expect);
		port = colon ? colon + 1 : NULL;
	}
	hp->port = dport;
	if (port != NULL || dport == 0) {
		const char *p = port ? port : "";

		if ((st = parse_port(whole, p, strlen(p), &hp->port, err,
		    cap)) != CFG_OK)
			return st;
	}
	if ((hp->host = strndup(h, hlen)) == NULL)
		return CFG_NOMEM;
	return CFG_OK;
}

static enum cfg_status
parse_endpoint(const char *s, struct cfg_hostport *hp, char *err, size_t cap)
{
	static const char expect[] =
	    "a host name such as xxx-ats.iot.eu-west-1.amazonaws.com";
	char q[QBUF];

	cfg_quote(s, strlen(s), q, sizeof(q));
	if (strstr(s, "://") != NULL)
		return ERR("%s has a scheme (expected %s)", q, expect);
	if (strchr(s, '/') != NULL)
		return ERR("%s has a path (expected %s)", q, expect);
	return parse_hostport(s, s, 443, expect, hp, err, cap);
}

static enum cfg_status
parse_url(const char *s, struct cfg_hostport *hp, char *err, size_t cap)
{
	static const char expect[] = "http://HOST:PORT";
	const char *auth;
	char q[QBUF], buf[300];
	size_t len;

	/* The URL could carry a password: nothing of it is shown before the
	 * userinfo check. */
	if (strncmp(s, "http://", 7) != 0)
		return ERR("not an http:// URL (expected %s; the tunnel through "
		    "the proxy is TLS)", expect);
	auth = s + 7;
	len = strcspn(auth, "/");
	if (memchr(auth, '@', len) != NULL)
		return ERR("user and password in the URL (expected them in "
		    "proxy.username and proxy.password; value hidden)");
	cfg_quote(s, strlen(s), q, sizeof(q));
	if (auth[len] != '\0' && strcmp(auth + len, "/") != 0)
		return ERR("%s has a path (expected %s)", q, expect);
	if (len >= sizeof(buf))
		return ERR("%s is too long (expected %s)", q, expect);
	memcpy(buf, auth, len);
	buf[len] = '\0';
	return parse_hostport(s, buf, 0, expect, hp, err, cap);
}

/* %XX in the user info of a proxy URL; false on a bad escape. */
static bool
pct_decode(const char *s, size_t n, char **out)
{
	char *d = malloc(n + 1), *o = d;

	if (d == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
		    !isxdigit((unsigned char)s[i + 2]) ||
		    sscanf(s + i + 1, "%2x", &v) != 1 || v == 0) {
			free(d);
			return false;
		}
		*o++ = (char)v;
		i += 2;
	}
	*o = '\0';
	*out = d;
	return true;
}

enum cfg_status
cfg_proxy_parse(const char *s, struct cfg_proxy *px, char *err, size_t cap)
{
	static const char expect[] = "http://[USER:PASSWORD@]HOST[:PORT]";
	const char *hp = s, *at, *colon;
	char buf[300];
	size_t len;
	enum cfg_status st;

	memset(px, 0, sizeof(*px));
	/* Nothing of the user info is ever shown: it holds a password. */
	if (strstr(s, "://") != NULL) {
		if (strncmp(s, "http://", 7) != 0)
			return ERR("not an http:// URL (expected %s; the tunnel "
			    "through the proxy is TLS)", expect);
		hp = s + 7;
	}
	len = strcspn(hp, "/");
	if (hp[len] != '\0' && strcmp(hp + len, "/") != 0)
		return ERR("has a path (expected %s)", expect);
	if ((at = memchr(hp, '@', len)) != NULL) {
		colon = memchr(hp, ':', (size_t)(at - hp));
		if (colon == NULL)
			return ERR("user without a password (expected %s)",
			    expect);
		if (!pct_decode(hp, (size_t)(colon - hp), &px->username) ||
		    !pct_decode(colon + 1, (size_t)(at - colon - 1),
		    &px->password)) {
			cfg_proxy_clear(px);
			return ERR("bad %%-escape in the user or password "
			    "(value hidden)");
		}
		len -= (size_t)(at + 1 - hp);
		hp = at + 1;
	}
	if (len == 0 || len >= sizeof(buf)) {
		cfg_proxy_clear(px);
		return ERR("no host, or too long (expected %s)", expect);
	}
	memcpy(buf, hp, len);
	buf[len] = '\0';
	/* curl's default proxy port */
	if ((st = parse_hostport(buf, buf, 1080, expect, &px->url, err,
	    cap)) != CFG_OK)
		cfg_proxy_clear(px);
	return st;
}

void
cfg_proxy_clear(struct cfg_proxy *px)
{
	free(px->url.host);
	free(px->username);
	if (px->password != NULL) {
		mbedtls_platform_zeroize(px->password, strlen(px->password));
		free(px->password);
	}
	memset(px, 0, sizeof(*px));
}

static const char *
topic_problem(enum topic_status ts)
{
	/* Our own words: the goldens must not change with topic.c's. */
	switch (ts) {
	case TOPIC_OK:			return "valid";
	case TOPIC_EMPTY:		return "empty";
	case TOPIC_TOO_LONG:		return "too long";
	case TOPIC_BAD_UTF8:		return "not UTF-8";
	case TOPIC_WILDCARD_IN_NAME:	return "a wildcard in a name";
	case TOPIC_BAD_MULTI_LEVEL:	return "# is not the whole last level";
	case TOPIC_BAD_SINGLE_LEVEL:	return "+ is not a whole level";
	}
	return "invalid";
}

static enum cfg_status
check_filter(const char *s, size_t len, char *err, size_t cap)
{
	enum topic_status ts = topic_filter_check(s, len);
	char q[QBUF];

	if (ts == TOPIC_OK)
		return CFG_OK;
	cfg_quote(s, len, q, sizeof(q));
	return ERR("%s is not a valid topic filter: %s (expected a filter "
	    "such as sensors/# or sensors/+/temp)", q, topic_problem(ts));
}

static enum cfg_status
check_prefix(const char *s, size_t len, char *err, size_t cap)
{
	char q[QBUF];

	cfg_quote(s, len, q, sizeof(q));
	if (strpbrk(s, "+#") != NULL)
		return ERR("%s has a wildcard (expected a topic prefix without "
		    "+ or #, such as gw01/)", q);
	return CFG_OK;
}

static bool
region_ok(const char *s, size_t len)
{
	if (len == 0 || len > 32 || s[0] == '-' || s[len - 1] == '-' ||
	    memchr(s, '-', len) == NULL)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool
label_is(const char *l, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(l, word, len) == 0;
}

bool
cfg_region_from_host(const char *host, char *buf, size_t cap)
{
	const char *label[128];
	size_t llen[128], n = 0, rest;
	const char *p = host;

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (n == 128)
			return false;
		label[n] = p;
		llen[n++] = len;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	for (size_t i = 0; i + 3 < n; i++) {
		if (!label_is(label[i], llen[i], "iot") &&
		    !label_is(label[i], llen[i], "iot-fips"))
			continue;
		if (!label_is(label[i + 2], llen[i + 2], "amazonaws"))
			continue;
		rest = n - (i + 3);
		if (!label_is(label[i + 3], llen[i + 3], "com") ||
		    (rest == 2 && !label_is(label[i + 4], llen[i + 4], "cn")) ||
		    rest > 2)
			continue;
		if (llen[i + 1] >= cap)
			return false;
		for (size_t k = 0; k < llen[i + 1]; k++)
			buf[k] = (char)tolower((unsigned char)label[i + 1][k]);
		buf[llen[i + 1]] = '\0';
		return region_ok(buf, llen[i + 1]);
	}
	return false;
}

/* Optimal string alignment distance: a swap of two letters counts one. */
static size_t
distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t d[3][66], *prev2 = d[0], *prev = d[1], *cur = d[2], *t;

	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = prev[j] + 1;

			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

bool
cfg_similar(const char *word, size_t len, const char *name)
{
	size_t m = strlen(name), limit = m <= 3 ? 1 : m <= 6 ? 2 : 3;

	if (len > 64 || m > 64 || len + limit < m || m + limit < len)
		return false;
	return distance(word, len, name, m) <= limit;
}

static enum cfg_status
set_string(const struct cfg_keydef *kd, void *field, const char *s)
{
	char *dup, *old;

	if ((dup = strdup(s)) == NULL)
		return CFG_NOMEM;
	memcpy(&old, field, sizeof(old));
	if (old != NULL && kd->flags & CFG_K_SECRET)
		mbedtls_platform_zeroize(old, strlen(old));
	free(old);
	memcpy(field, &dup, sizeof(dup));
	return CFG_OK;
}

enum cfg_status
cfg_value_set(const struct cfg_keydef *kd, void *obj, const char *s,
    char *err, size_t cap)
{
	void *field = (char *)obj + kd->off;
	size_t len = strlen(s);
	struct cfg_hostport hp = { NULL, 0 };
	struct cfg_addr addr;
	enum cfg_status st = CFG_OK;
	char q[QBUF];
	uint64_t u;
	int64_t i;
	int e;

	switch (kd->type) {
	case CFG_T_BOOL:
		if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0) {
			cfg_quote(s, len, q, sizeof(q));
			return ERR("%s is not a boolean (expected true or false)",
			    q);
		}
		*(bool *)field = s[0] == 't';
		return CFG_OK;
	case CFG_T_INT:
		if ((st = parse_int(kd, s, &i, err, cap)) == CFG_OK)
			*(int64_t *)field = i;
		return st;
	case CFG_T_DURATION:
		if ((st = parse_scaled(kd, s, duration_units,
		    NUNITS(duration_units), "duration", "s", &u, err,
		    cap)) == CFG_OK)
			*(uint64_t *)field = u;
		return st;
	case CFG_T_SIZE:
		if ((st = parse_scaled(kd, s, size_units, NUNITS(size_units),
		    "size", "B", &u, err, cap)) == CFG_OK)
			*(uint64_t *)field = u;
		return st;
	case CFG_T_ENUM:
		if ((st = parse_enum(kd, s, &e, err, cap)) == CFG_OK)
			*(int *)field = e;
		return st;
	case CFG_T_STRING:
		if ((st = check_text(kd, s, len, err, cap)) != CFG_OK)
			return st;
		return set_string(kd, field, s);
	case CFG_T_PATH:
		if ((st = check_path(kd, s, len, err, cap)) != CFG_OK)
			return st;
		return set_string(kd, field, s);
	case CFG_T_FILTER:
	case CFG_T_PREFIX:
		if ((st = check_text(kd, s, len, err, cap)) != CFG_OK)
			return st;
		st = kd->type == CFG_T_FILTER ? check_filter(s, len, err, cap) :
		    check_prefix(s, len, err, cap);
		if (st != CFG_OK)
			return st;
		return set_string(kd, field, s);
	case CFG_T_REGION:
		if (!region_ok(s, len)) {
			cfg_quote(s, len, q, sizeof(q));
			return ERR("%s is not an AWS region (expected a name such "
			    "as eu-west-1)", q);
		}
		return set_string(kd, field, s);
	case CFG_T_ADDR:
		if ((st = parse_addr(kd, s, &addr, err, cap)) == CFG_OK)
			memcpy(field, &addr, sizeof(addr));
		return st;
	case CFG_T_ENDPOINT:
	case CFG_T_URL:
		st = kd->type == CFG_T_URL ? parse_url(s, &hp, err, cap) :
		    parse_endpoint(s, &hp, err, cap);
		if (st == CFG_OK) {
			free(((struct cfg_hostport *)field)->host);
			memcpy(field, &hp, sizeof(hp));
		}
		return st;
	case CFG_T_SECTION:
	case CFG_T_LIST:
		break;
	}
	return ERR("not a value (expected %s)", cfg_type_name(kd));
}

static const char *
hostport_text(const struct cfg_hostport *hp, const char *scheme,
    uint16_t dport, char *buf, size_t cap)
{
	bool v6 = strchr(hp->host, ':') != NULL;

	if (hp->port == dport)
		snprintf(buf, cap, "%s%s%s%s", scheme, v6 ? "[" : "", hp->host,
		    v6 ? "]" : "");
	else
		snprintf(buf, cap, "%s%s%s%s:%u", scheme, v6 ? "[" : "",
		    hp->host, v6 ? "]" : "", hp->port);
	return buf;
}

const char *
cfg_value_text(const struct cfg_keydef *kd, const void *obj, char *buf,
    size_t cap)
{
	const void *field = (const char *)obj + kd->off;
	const struct cfg_addr *a;
	const struct cfg_hostport *hp;
	char ip[INET6_ADDRSTRLEN];
	const char *str;

	switch (kd->type) {
	case CFG_T_BOOL:
		return *(const bool *)field ? "true" : "false";
	case CFG_T_INT:
		snprintf(buf, cap, "%" PRId64, *(const int64_t *)field);
		return buf;
	case CFG_T_DURATION:
		cfg_fmt_duration(*(const uint64_t *)field, buf, cap);
		return buf;
	case CFG_T_SIZE:
		cfg_fmt_size(*(const uint64_t *)field, buf, cap);
		return buf;
	case CFG_T_ENUM:
		return kd->values[*(const int *)field];
	case CFG_T_STRING:
	case CFG_T_PATH:
	case CFG_T_FILTER:
	case CFG_T_PREFIX:
	case CFG_T_REGION:
		memcpy(&str, field, sizeof(str));
		if (str != NULL && kd->flags & CFG_K_SECRET)
			return "(set)";
		return str;
	case CFG_T_ADDR:
		a = field;
		if (a->family == AF_UNIX) {
			snprintf(buf, cap, "unix:%s", a->path);
		} else if (a->family == AF_INET || a->family == AF_INET6) {
			inet_ntop(a->family, a->ip, ip, sizeof(ip));
			snprintf(buf, cap, a->family == AF_INET6 ? "[%s]:%u" :
			    "%s:%u", ip, a->port);
		} else {
			return kd->special != NULL ? "" : NULL;
		}
		return buf;
	case CFG_T_ENDPOINT:
	case CFG_T_URL:
		hp = field;
		if (hp->host == NULL)
			return NULL;
		if (kd->type == CFG_T_URL)
			return hostport_text(hp, "http://", 0, buf, cap);
		return hostport_text(hp, "", 443, buf, cap);
	case CFG_T_SECTION:
	case CFG_T_LIST:
		break;
	}
	return NULL;
}
