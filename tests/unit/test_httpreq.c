/*
 * Unit tests for the request head parser (lib/util/httpreq.c): what
 * Prometheus and curl send for a scrape, the request-target forms, every
 * prefix of a valid head being "need more" and every extension of a bad one
 * staying bad, each way a line can be malformed, and the two limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/httpreq.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX		4096

/* What Prometheus 2.x sends (its User-Agent and Accept, abridged). */
static const char prometheus[] =
    "GET /metrics HTTP/1.1\r\n"
    "Host: 127.0.0.1:9469\r\n"
    "User-Agent: Prometheus/2.42.0\r\n"
    "Accept: application/openmetrics-text;version=1.0.0,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
    "Accept-Encoding: gzip\r\n"
    "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n"
    "\r\n";

static enum httpreq_status
parse(const char *s, struct httpreq *r)
{
	return httpreq_parse(s, strlen(s), MAX, r);
}

static void
assert_view(struct buf_view v, const char *s)
{
	assert_int_equal(v.len, strlen(s));
	if (v.len > 0)
		assert_memory_equal(v.ptr, s, v.len);
}

static void
test_prometheus_scrape(void **state)
{
	struct httpreq r;

	assert_int_equal(parse(prometheus, &r), HTTPREQ_OK);
	assert_true(httpreq_method_is(&r, "GET"));
	assert_false(httpreq_method_is(&r, "get"));
	assert_false(httpreq_method_is(&r, "GE"));
	assert_view(r.target, "/metrics");
	assert_view(r.path, "/metrics");
	assert_view(r.query, "");
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.nheaders, 5);
	assert_int_equal(r.head_len, strlen(prometheus));
}

static void
test_body_after_head(void **state)
{
	static const char req[] =
	    "POST /metrics?x=1 HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody";
	struct httpreq r;

	assert_int_equal(parse(req, &r), HTTPREQ_OK);
	assert_true(httpreq_method_is(&r, "POST"));
	assert_view(r.target, "/metrics?x=1");
	assert_view(r.path, "/metrics");
	assert_view(r.query, "x=1");
	assert_int_equal(r.minor, 0);
	assert_int_equal(r.nheaders, 1);
	assert_int_equal(r.head_len, strlen(req) - 4);
}

static void
test_target_forms(void **state)
{
	struct httpreq r;

	/* HTTP/1.0 without any field */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &r), HTTPREQ_OK);
	assert_view(r.path, "/");
	/* an empty query is still a query */
	assert_int_equal(parse("GET /m? HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
	assert_view(r.path, "/m");
	assert_view(r.query, "");
	assert_int_equal(parse("GET /a?b?c HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
	assert_view(r.query, "b?c");
	/* absolute-form, authority-form and asterisk-form: no path */
	assert_int_equal(parse("GET http://h/metrics HTTP/1.1\r\n\r\n", &r),
	    HTTPREQ_OK);
	assert_view(r.target, "http://h/metrics");
	assert_view(r.path, "");
	assert_int_equal(parse("CONNECT h:443 HTTP/1.1\r\n\r\n", &r),
	    HTTPREQ_OK);
	assert_view(r.path, "");
	assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n", &r), HTTPREQ_OK);
	assert_view(r.target, "*");
	/* a newer minor version parses; the server answers as 1.1 */
	assert_int_equal(parse("GET / HTTP/1.9\r\n\r\n", &r), HTTPREQ_OK);
	assert_int_equal(r.minor, 9);
}

static void
test_odd_but_valid_fields(void **state)
{
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\nA:\r\n\r\n",			/* empty value */
		"GET / HTTP/1.1\r\nA: \t v \t\r\n\r\n",		/* OWS */
		"GET / HTTP/1.1\r\nA:b:c\r\n\r\n",
		"GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n",	/* obs-text */
		"GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~: x\r\n\r\n",
		"M-SEARCH * HTTP/1.1\r\n\r\n",
	};
	struct httpreq r;

	for (size_t i = 0; i < NELEM(ok); i++)
		assert_int_equal(parse(ok[i], &r), HTTPREQ_OK);
}

static void
test_every_prefix_needs_more(void **state)
{
	size_t n = strlen(prometheus);
	struct httpreq r;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(httpreq_parse(prometheus, i, MAX, &r),
		    HTTPREQ_NEED_MORE);
	/* and a head just fitting max is fine */
	assert_int_equal(httpreq_parse(prometheus, n, n, &r), HTTPREQ_OK);
	assert_int_equal(httpreq_parse(prometheus, n - 1, n, &r),
	    HTTPREQ_NEED_MORE);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"\r\nGET / HTTP/1.1\r\n\r\n",		/* leading empty line */
		"GET  / HTTP/1.1\r\n\r\n",		/* two SP */
		"GET / HTTP/1.1 \r\n\r\n",		/* trailing SP */
		" GET / HTTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",			/* HTTP/0.9 */
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.10\r\n\r\n",
		"GET / HTTP/1.x\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET\t/ HTTP/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",		/* not a token */
		"GET /a#b HTTP/1.1\r\n\r\n",		/* fragment */
		"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",	/* non-ASCII target */
		"GET /a\x7f HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\n\n",			/* bare LF */
		"GET / HTTP/1.1\r\r\n\r\n",		/* CR without LF */
		"GET / HTTP/1.1\r\nA : b\r\n\r\n",	/* SP before the colon */
		"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",	/* obs-fold */
		"GET / HTTP/1.1\r\n: b\r\n\r\n",	/* no name */
		"GET / HTTP/1.1\r\nA b\r\n\r\n",	/* no colon */
		"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",	/* control in a value */
		"GET / HTTP/1.1\r\nA: b\nc\r\n\r\n",
		"GET / HTTP/1.1\r\nX-\xc3\xa9: no\r\n\r\n",	/* name not a token */
	};
	struct httpreq r;

	for (size_t i = 0; i < NELEM(bad); i++) {
		char more[256];

		assert_int_equal(parse(bad[i], &r), HTTPREQ_MALFORMED);
		/* no byte after the bad one changes the verdict */
		snprintf(more, sizeof(more), "%sX-More: yes\r\n\r\n", bad[i]);
		assert_int_equal(parse(more, &r), HTTPREQ_MALFORMED);
	}
	/* a NUL is seen at once, before the line ends */
	assert_int_equal(httpreq_parse("GET /\0", 6, MAX, &r),
	    HTTPREQ_MALFORMED);
	/* a lone LF too */
	assert_int_equal(httpreq_parse("GET /\n", 6, MAX, &r),
	    HTTPREQ_MALFORMED);
	/* but a CR at the very end may still get its LF */
	assert_int_equal(httpreq_parse("GET / HTTP/1.1\r", 15, MAX, &r),
	    HTTPREQ_NEED_MORE);
	/* the bad request line is found once it is complete */
	assert_int_equal(httpreq_parse("GET / HTTP/2.0\r\n", 16, MAX, &r),
	    HTTPREQ_MALFORMED);
	assert_int_equal(httpreq_parse("GET / HTTP/2.0", 14, MAX, &r),
	    HTTPREQ_NEED_MORE);
}

static void
test_limits(void **state)
{
	char big[MAX + 64];
	size_t n = 0;
	struct httpreq r;

	/* no end within max bytes */
	n = (size_t)snprintf(big, sizeof(big), "GET /");
	memset(big + n, 'a', sizeof(big) - n);
	assert_int_equal(httpreq_parse(big, sizeof(big), MAX, &r),
	    HTTPREQ_TOO_BIG);
	assert_int_equal(httpreq_parse(big, MAX, MAX, &r), HTTPREQ_TOO_BIG);
	assert_int_equal(httpreq_parse(big, MAX - 1, MAX, &r),
	    HTTPREQ_NEED_MORE);
	/* the end of the head one byte past max */
	assert_int_equal(httpreq_parse(prometheus, strlen(prometheus),
	    strlen(prometheus) - 1, &r), HTTPREQ_TOO_BIG);
	/* a CR at max: its LF is beyond */
	assert_int_equal(httpreq_parse("GET / HTTP/1.1\r\n", 16, 15, &r),
	    HTTPREQ_TOO_BIG);
	/* a malformed line within max wins over the size */
	assert_int_equal(httpreq_parse("GET  / HTTP/1.1\r\nxxxxx", 22, 20, &r),
	    HTTPREQ_MALFORMED);
	/* max 0 sees nothing */
	assert_int_equal(httpreq_parse(prometheus, 10, 0, &r), HTTPREQ_TOO_BIG);
	assert_int_equal(httpreq_parse("", 0, MAX, &r), HTTPREQ_NEED_MORE);

	/* HTTPREQ_MAX_HEADERS fields pass, one more does not */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTPREQ_MAX_HEADERS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "H%d: v\r\n", i);
	memcpy(big + n, "\r\n", 2);
	assert_int_equal(httpreq_parse(big, n + 2, MAX, &r), HTTPREQ_OK);
	assert_int_equal(r.nheaders, HTTPREQ_MAX_HEADERS);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "H: v\r\n\r\n");
	assert_int_equal(httpreq_parse(big, n, MAX, &r), HTTPREQ_TOO_BIG);
}

static void
test_strerror(void **state)
{
	assert_string_equal(httpreq_strerror(HTTPREQ_OK), "ok");
	assert_string_equal(httpreq_strerror(HTTPREQ_NEED_MORE),
	    "incomplete request head");
	assert_string_equal(httpreq_strerror(HTTPREQ_MALFORMED),
	    "malformed request head");
	assert_string_equal(httpreq_strerror(HTTPREQ_TOO_BIG),
	    "request head too big");
	assert_string_equal(httpreq_strerror((enum httpreq_status)9),
	    "unknown httpreq status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_scrape),
		cmocka_unit_test(test_body_after_head),
		cmocka_unit_test(test_target_forms),
		cmocka_unit_test(test_odd_but_valid_fields),
		cmocka_unit_test(test_every_prefix_needs_more),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
