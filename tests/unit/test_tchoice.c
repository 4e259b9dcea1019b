/*
 * The transport choice: auto's order (proxy, SigV4, the remembered way
 * first), moving on after failures, what is logged and remembered, and the
 * memory file's format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tchoice/tchoice.h"

#define M	TCHOICE_MQTTS
#define A	TCHOICE_MQTTS_ALPN
#define W	TCHOICE_WSS

static void
assert_ways(const struct tchoice *c, size_t n, const enum tchoice_way *want)
{
	assert_int_equal(c->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->ways[i], want[i]);
	assert_int_equal(c->cur, 0);
}

static void
test_fixed_modes_are_one_way(void **state)
{
	static const struct {
		enum tchoice_mode mode;
		enum tchoice_way way;
	} t[] = {
		{ TCHOICE_MODE_MQTTS, M }, { TCHOICE_MODE_MQTTS_ALPN, A },
		{ TCHOICE_MODE_WSS, W },
	};
	enum tchoice_way other = W;
	struct tchoice c;

	for (size_t i = 0; i < 3; i++) {
		/* the operator chose: no flag and no memory changes it */
		tchoice_init(&c, t[i].mode, TCHOICE_PROXY, &other);
		assert_ways(&c, 1, &t[i].way);
		assert_false(tchoice_announce(&c));
		assert_false(tchoice_failed(&c));
		assert_int_equal(tchoice_current(&c), t[i].way);
		assert_false(tchoice_worked(&c));
	}
}

static void
test_auto_order(void **state)
{
	static const enum tchoice_way all[] = { M, A, W }, no_sigv4[] = { M, A },
	    proxy[] = { A, W }, proxy_no_sigv4[] = { A };
	struct tchoice c;

	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, NULL);
	assert_ways(&c, 3, all);
	tchoice_init(&c, TCHOICE_MODE_AUTO, 0, NULL);
	assert_ways(&c, 2, no_sigv4);
	/* behind a proxy only 443 gets out */
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_PROXY | TCHOICE_SIGV4,
	    NULL);
	assert_ways(&c, 2, proxy);
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_PROXY, NULL);
	assert_ways(&c, 1, proxy_no_sigv4);
	assert_false(tchoice_failed(&c));
}

static void
test_remembered_goes_first(void **state)
{
	static const enum tchoice_way a_first[] = { A, M, W },
	    w_first[] = { W, M, A }, m_first[] = { M, A, W }, proxy[] = { A, W };
	enum tchoice_way r;
	struct tchoice c;

	r = A;
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, &r);
	assert_ways(&c, 3, a_first);
	r = W;
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, &r);
	assert_ways(&c, 3, w_first);
	r = M;
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, &r);
	assert_ways(&c, 3, m_first);
	/* remembered from before the proxy: not a way now, the usual order */
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4 | TCHOICE_PROXY, &r);
	assert_ways(&c, 2, proxy);
	/* wss remembered, the credentials gone since */
	r = W;
	tchoice_init(&c, TCHOICE_MODE_AUTO, 0, &r);
	assert_int_equal(c.n, 2);
	assert_int_equal(tchoice_current(&c), M);
	/* and so it is written again once another way works */
	assert_true(tchoice_worked(&c));
}

static void
test_failures_cycle_and_success_is_remembered_once(void **state)
{
	struct tchoice c;

	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, NULL);
	assert_int_equal(tchoice_current(&c), M);
	assert_true(tchoice_announce(&c));
	assert_false(tchoice_announce(&c));	/* once per way */
	assert_true(tchoice_failed(&c));
	assert_int_equal(tchoice_current(&c), A);
	assert_true(tchoice_announce(&c));
	assert_true(tchoice_failed(&c));
	assert_int_equal(tchoice_current(&c), W);
	assert_true(tchoice_announce(&c));
	assert_true(tchoice_failed(&c));
	/* round again: nothing said twice */
	assert_int_equal(tchoice_current(&c), M);
	assert_false(tchoice_announce(&c));
	assert_true(tchoice_failed(&c));
	assert_false(tchoice_announce(&c));

	/* mqtts-alpn works: remember it; the same again: nothing to write */
	assert_true(tchoice_worked(&c));
	assert_false(tchoice_worked(&c));
	assert_int_equal(tchoice_current(&c), A);
	/* reconnecting on the way that works is no news; a new round of
	 * failures is told again */
	assert_false(tchoice_announce(&c));
	assert_true(tchoice_failed(&c));
	assert_true(tchoice_announce(&c));
	assert_int_equal(tchoice_current(&c), W);
	assert_true(tchoice_worked(&c));	/* another way now */
}

static void
test_remembered_is_not_written_again(void **state)
{
	enum tchoice_way r = A;
	struct tchoice c;

	tchoice_init(&c, TCHOICE_MODE_AUTO, 0, &r);
	assert_false(tchoice_worked(&c));
	assert_true(tchoice_failed(&c));
	assert_int_equal(tchoice_current(&c), M);
	assert_true(tchoice_worked(&c));
}

static void
test_memory_round_trip(void **state)
{
	char buf[TCHOICE_MEMORY_MAX];
	enum tchoice_way w;
	size_t len;

	for (int i = 0; i < TCHOICE_NWAYS; i++) {
		assert_int_equal(tchoice_memory_encode((enum tchoice_way)i,
		    "abc-ats.iot.eu-west-1.amazonaws.com", buf, sizeof(buf),
		    &len), TCHOICE_OK);
		assert_int_equal(strlen(buf), len);
		assert_int_equal(tchoice_memory_parse(buf, len,
		    "ABC-ats.iot.eu-west-1.amazonaws.com", &w), TCHOICE_OK);
		assert_int_equal(w, i);
		/* without its newline too */
		assert_int_equal(tchoice_memory_parse(buf, len - 1,
		    "abc-ats.iot.eu-west-1.amazonaws.com", &w), TCHOICE_OK);
	}
	assert_int_equal(tchoice_memory_encode(A, "localhost", buf,
	    sizeof(buf), NULL), TCHOICE_OK);
	assert_string_equal(buf, "iotbridge-transport 1 mqtts-alpn localhost\n");
	assert_int_equal(tchoice_memory_parse(buf, strlen(buf),
	    "other.example", &w), TCHOICE_OTHER);
	assert_int_equal(w, A);
	assert_int_equal(tchoice_memory_parse(buf, strlen(buf), "localhos",
	    &w), TCHOICE_OTHER);
	assert_int_equal(tchoice_memory_encode(A, "localhost", buf, 10, NULL),
	    TCHOICE_NO_SPACE);
	assert_int_equal(tchoice_memory_encode(A, "a host", buf, sizeof(buf),
	    NULL), TCHOICE_MALFORMED);
	assert_int_equal(tchoice_memory_encode(A, "", buf, sizeof(buf), NULL),
	    TCHOICE_MALFORMED);
	assert_int_equal(tchoice_memory_encode(TCHOICE_NWAYS, "h", buf,
	    sizeof(buf), NULL), TCHOICE_MALFORMED);
}

static void
test_memory_refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"iotbridge-transport 1 mqtts-alpn\n",
		"iotbridge-transport 1 mqtts-alpn \n",
		"iotbridge-transport 2 mqtts-alpn h\n",
		"iotbridge-transport 1 tcp h\n",
		"iotbridge-transport 1 MQTTS h\n",
		"iotbridge-transport 1 mqtts h h\n",
		"iotbridge-transport 1 mqtts h\n\n",
		"iotbridge-transport 1 mqtts h\r\n",
		"iotbridge-transport 1 mqtts  h\n",
		"iotbridge-transport 1 mqtts h\nmore\n",
		" iotbridge-transport 1 mqtts h\n",
		"iotbridge-transport 1 wss h\\x\n",
	};
	char big[TCHOICE_MEMORY_MAX + 2];
	enum tchoice_way w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tchoice_memory_parse(bad[i], strlen(bad[i]), "h", &w) !=
		    TCHOICE_MALFORMED)
			fail_msg("accepted \"%s\"", bad[i]);
	/* a NUL inside */
	assert_int_equal(tchoice_memory_parse("iotbridge-transport 1 wss h\0x",
	    29, "h", &w), TCHOICE_MALFORMED);
	memset(big, 'a', sizeof(big));
	memcpy(big, "iotbridge-transport 1 wss ", 26);
	assert_int_equal(tchoice_memory_parse(big, sizeof(big), "h", &w),
	    TCHOICE_MALFORMED);
	assert_string_equal(tchoice_name(W), "wss");
	assert_string_equal(tchoice_strerror(TCHOICE_OTHER),
	    "remembered for another endpoint");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_modes_are_one_way),
		cmocka_unit_test(test_auto_order),
		cmocka_unit_test(test_remembered_goes_first),
		cmocka_unit_test(test_failures_cycle_and_success_is_remembered_once),
		cmocka_unit_test(test_remembered_is_not_written_again),
		cmocka_unit_test(test_memory_round_trip),
		cmocka_unit_test(test_memory_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
