/*
 * The MQTT client session's pure parts (lib/mqttc): packet ids and the
 * records awaiting answers with their cookies, QoS 0 bookkeeping, keepalive
 * and operation-timeout decisions, and the delay between connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "mqttc/mqttc.h"

static void
test_ack_gives_the_cookie_back(void **state)
{
	struct mqttc *m = mqttc_new();
	struct mqttc_op op;
	uint16_t a, b;

	assert_non_null(m);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 1001, 10, &a), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 1002, 11, &b), MQTTC_OK);
	assert_int_not_equal(a, 0);
	assert_int_not_equal(a, b);
	assert_int_equal(mqttc_count(m, MQTTC_PUBLISH), 2);
	/* out of order, as AWS may answer */
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, b, &op), MQTTC_OK);
	assert_int_equal(op.cookie, 1002);
	assert_int_equal(op.pid, b);
	assert_int_equal(op.sent_ms, 11);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, a, &op), MQTTC_OK);
	assert_int_equal(op.cookie, 1001);
	assert_int_equal(mqttc_count(m, MQTTC_PUBLISH), 0);
	mqttc_free(m);
}

static void
test_unknown_duplicate_and_wrong_kind(void **state)
{
	struct mqttc *m = mqttc_new();
	struct mqttc_op op;
	uint16_t p, s;

	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 7, 0, &p), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_SUBSCRIBE, 0, 0, &s), MQTTC_OK);
	/* a SUBACK for a PUBLISH's id, a PUBACK for a SUBSCRIBE's */
	assert_int_equal(mqttc_ack(m, MQTTC_SUBSCRIBE, p, &op), MQTTC_UNKNOWN);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, s, &op), MQTTC_UNKNOWN);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, 0, &op), MQTTC_UNKNOWN);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, (uint16_t)(p + 16), &op),
	    MQTTC_UNKNOWN);
	assert_int_equal(mqttc_count(m, MQTTC_PUBLISH), 1);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, p, NULL), MQTTC_OK);
	/* a late duplicate PUBACK */
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, p, &op), MQTTC_UNKNOWN);
	assert_int_equal(mqttc_ack(m, MQTTC_SUBSCRIBE, s, &op), MQTTC_OK);
	mqttc_free(m);
}

/* Ids wrap from 65535 to 1, never give 0, and skip the ones in use. */
static void
test_ids_wrap_and_skip_used(void **state)
{
	struct mqttc *m = mqttc_new();
	uint16_t first, pid, held[3];
	int bad = 0, rounds = 0;

	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &first), MQTTC_OK);
	assert_int_equal(first, 1);
	/* hold 1, 2, 3 while the counter goes round */
	held[0] = first;
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &held[1]), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &held[2]), MQTTC_OK);
	do {
		assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &pid),
		    MQTTC_OK);
		bad += pid == 0 || pid == held[0] || pid == held[1] ||
		    pid == held[2];
		assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, pid, NULL),
		    MQTTC_OK);
	} while (pid != 65535 && ++rounds < 70000);
	assert_int_equal(pid, 65535);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &pid), MQTTC_OK);
	assert_int_equal(pid, 4);	/* 1..3 are still in flight */
	assert_int_equal(bad, 0);
	mqttc_free(m);
}

/* Every id at once: the table grows to one slot per id, then is full. */
static void
test_all_ids_in_flight(void **state)
{
	struct mqttc *m = mqttc_new();
	uint8_t *used = calloc(65536, 1);
	struct mqttc_op op;
	uint16_t pid;

	assert_non_null(used);
	for (uint32_t i = 0; i < MQTTC_MAX_INFLIGHT; i++) {
		assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 100000 + i, i,
		    &pid), MQTTC_OK);
		assert_int_not_equal(pid, 0);
		assert_int_equal(used[pid], 0);
		used[pid] = 1;
	}
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &pid), MQTTC_FULL);
	assert_int_equal(mqttc_add(m, MQTTC_SUBSCRIBE, 0, 0, &pid), MQTTC_FULL);
	/* growing kept the sending order */
	assert_true(mqttc_oldest(m, MQTTC_PUBLISH, &op));
	assert_int_equal(op.cookie, 100000);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, 777, &op), MQTTC_OK);
	assert_int_equal(op.cookie, 100000 + 776);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 5, 0, &pid), MQTTC_OK);
	assert_int_equal(pid, 777);	/* the one id free */
	free(used);
	mqttc_free(m);
}

static void
test_oldest_in_sending_order_per_kind(void **state)
{
	struct mqttc *m = mqttc_new();
	struct mqttc_op op;
	uint16_t p[40], s;

	for (int i = 0; i < 40; i++)	/* through a few growths */
		assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, (uint64_t)i,
		    (uint64_t)i, &p[i]), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_SUBSCRIBE, 99, 50, &s), MQTTC_OK);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, p[0], NULL), MQTTC_OK);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, p[2], NULL), MQTTC_OK);
	assert_true(mqttc_oldest(m, MQTTC_PUBLISH, &op));
	assert_int_equal(op.cookie, 1);
	assert_true(mqttc_cancel(m, p[1]));
	assert_false(mqttc_cancel(m, p[1]));
	assert_true(mqttc_oldest(m, MQTTC_PUBLISH, &op));
	assert_int_equal(op.cookie, 3);
	assert_true(mqttc_oldest(m, MQTTC_SUBSCRIBE, &op));
	assert_int_equal(op.cookie, 99);
	assert_int_equal(op.pid, s);
	/* a new connection forgets them all; ids go on */
	mqttc_reset(m, 1000);
	assert_false(mqttc_oldest(m, MQTTC_PUBLISH, &op));
	assert_int_equal(mqttc_count(m, MQTTC_PUBLISH), 0);
	assert_int_equal(mqttc_count(m, MQTTC_SUBSCRIBE), 0);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, p[5], NULL),
	    MQTTC_UNKNOWN);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 0, 0, &s), MQTTC_OK);
	assert_int_equal(s, 42);
	mqttc_free(m);
}

static void
test_qos0_fifo_and_first_cookie(void **state)
{
	struct mqttc *m = mqttc_new();
	uint64_t c;
	uint16_t pid;

	assert_false(mqttc_first_cookie(m, &c));
	for (uint64_t i = 0; i < 200; i++)	/* past the ring's growth */
		assert_int_equal(mqttc_add_qos0(m, 10 + i), MQTTC_OK);
	assert_int_equal(mqttc_qos0_count(m), 200);
	for (uint64_t i = 0; i < 150; i++) {
		assert_true(mqttc_qos0_pop(m, &c));
		assert_int_equal(c, 10 + i);
	}
	/* the ring wraps and grows again with its order */
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(mqttc_add_qos0(m, 210 + i), MQTTC_OK);
	assert_true(mqttc_first_cookie(m, &c));
	assert_int_equal(c, 160);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 155, 0, &pid), MQTTC_OK);
	assert_true(mqttc_first_cookie(m, &c));
	assert_int_equal(c, 155);
	for (uint64_t i = 160; i < 310; i++) {
		assert_true(mqttc_qos0_pop(m, &c));
		assert_int_equal(c, i);
	}
	assert_false(mqttc_qos0_pop(m, &c));
	assert_true(mqttc_first_cookie(m, &c));
	assert_int_equal(c, 155);
	mqttc_free(m);
}

static void
test_keepalive(void **state)
{
	struct mqttc *m = mqttc_new();
	uint64_t wait;

	/* without a keepalive: never */
	assert_int_equal(mqttc_keepalive(m, 1000000, &wait), MQTTC_KA_WAIT);
	assert_int_equal(wait, UINT64_MAX);
	mqttc_set_timing(m, 30000, 5000);
	mqttc_reset(m, 1000);
	assert_int_equal(mqttc_keepalive(m, 1000, &wait), MQTTC_KA_WAIT);
	assert_int_equal(wait, 30000);
	/* traffic pushes it back */
	mqttc_sent(m, 20000);
	assert_int_equal(mqttc_keepalive(m, 31000, &wait), MQTTC_KA_WAIT);
	assert_int_equal(wait, 19000);
	assert_int_equal(mqttc_keepalive(m, 50000, &wait), MQTTC_KA_PING);
	mqttc_sent(m, 50000);
	mqttc_ping_sent(m, 50000);
	/* one PINGREQ at a time */
	assert_int_equal(mqttc_keepalive(m, 90000, &wait), MQTTC_KA_WAIT);
	assert_int_equal(mqttc_count(m, MQTTC_PING), 1);
	mqttc_pong(m);
	assert_int_equal(mqttc_count(m, MQTTC_PING), 0);
	assert_int_equal(mqttc_keepalive(m, 90000, &wait), MQTTC_KA_PING);
	/* a clock that stands still is no idle time */
	mqttc_sent(m, 100000);
	assert_int_equal(mqttc_keepalive(m, 99000, &wait), MQTTC_KA_WAIT);
	assert_int_equal(wait, 30000);
	mqttc_free(m);
}

static void
test_overdue_oldest_first(void **state)
{
	struct mqttc *m = mqttc_new();
	struct mqttc_op late;
	uint64_t wait;
	uint16_t a, b, s;

	mqttc_set_timing(m, 30000, 5000);
	mqttc_reset(m, 0);
	assert_false(mqttc_overdue(m, 100000, &late, &wait));
	assert_int_equal(wait, UINT64_MAX);
	assert_int_equal(mqttc_add(m, MQTTC_SUBSCRIBE, 0, 1000, &s), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 1, 2000, &a), MQTTC_OK);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 2, 3000, &b), MQTTC_OK);
	assert_false(mqttc_overdue(m, 5999, &late, &wait));
	assert_int_equal(wait, 1);
	assert_true(mqttc_overdue(m, 6000, &late, &wait));
	assert_int_equal(late.kind, MQTTC_SUBSCRIBE);
	assert_int_equal(late.pid, s);
	/* answered: the next oldest sets the time */
	assert_int_equal(mqttc_ack(m, MQTTC_SUBSCRIBE, s, NULL), MQTTC_OK);
	assert_false(mqttc_overdue(m, 6000, &late, &wait));
	assert_int_equal(wait, 1000);
	assert_int_equal(mqttc_ack(m, MQTTC_PUBLISH, a, NULL), MQTTC_OK);
	assert_true(mqttc_overdue(m, 8000, &late, &wait));
	assert_int_equal(late.kind, MQTTC_PUBLISH);
	assert_int_equal(late.cookie, 2);
	/* a PINGREQ older than every other is the late one */
	mqttc_reset(m, 0);
	mqttc_ping_sent(m, 500);
	assert_int_equal(mqttc_add(m, MQTTC_PUBLISH, 3, 600, &a), MQTTC_OK);
	assert_true(mqttc_overdue(m, 5500, &late, &wait));
	assert_int_equal(late.kind, MQTTC_PING);
	mqttc_pong(m);
	assert_false(mqttc_overdue(m, 5500, &late, &wait));
	assert_int_equal(wait, 100);
	/* no timeout configured: nothing is ever late */
	mqttc_set_timing(m, 30000, 0);
	assert_false(mqttc_overdue(m, 1000000, &late, &wait));
	assert_int_equal(wait, UINT64_MAX);
	mqttc_free(m);
}

static void
test_retry_backoff_and_stable_reset(void **state)
{
	struct mqttc_retry r;
	struct mqttc_wait w;

	mqttc_retry_init(&r, 1000, 4000, 20000, false);
	/* failed attempts: 1, 2, 4, 4 s (paced attempts are long past) */
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 1000);
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 2000);
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 4000);
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 4000);
	assert_false(w.duplicate);
	/* up for 20 s: stable, back to base */
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 20000, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 1000);
	/* a reload keeps the count */
	mqttc_retry_params(&r, 1000, 8000, 20000, false);
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, 0, &w);
	assert_int_equal(w.delay_ms, 2000);
}

static void
test_retry_at_once_but_paced(void **state)
{
	struct mqttc_retry r;
	struct mqttc_wait w;

	mqttc_retry_init(&r, 1000, 32000, 20000, false);
	/* planned: at once, the backoff untouched */
	mqttc_retry_next(&r, MQTTC_END_PLANNED, true, 3600000, 3600000, 0, &w);
	assert_int_equal(w.delay_ms, 0);
	/* the clock was corrected: at once, but not sooner than 1 s after
	 * the last attempt began */
	mqttc_retry_next(&r, MQTTC_END_RETRY, false, 0, 300, 0, &w);
	assert_int_equal(w.delay_ms, 700);
	mqttc_retry_next(&r, MQTTC_END_RETRY, false, 0, 1000, 0, &w);
	assert_int_equal(w.delay_ms, 0);
	assert_int_equal(r.bo.attempt, 0);
	/* a failure 200 ms into an attempt still waits the full base */
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 200, 0, &w);
	assert_int_equal(w.delay_ms, 1000);
}

static void
test_retry_duplicate_client_id(void **state)
{
	struct mqttc_retry r;
	struct mqttc_wait w;

	mqttc_retry_init(&r, 1000, 32000, 20000, false);
	/* closed within 5 s of CONNACK, twice: not yet */
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 100, 5000, 0, &w);
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 4999, 5000, 0, &w);
	assert_false(w.duplicate);
	/* a long one in between starts the count again */
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 5000, 5000, 0, &w);
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 100, 5000, 0, &w);
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 100, 5000, 0, &w);
	assert_false(w.duplicate);
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 100, 5000, 0, &w);
	assert_true(w.duplicate);
	assert_true(w.warn);
	assert_int_equal(w.delay_ms, 32000);
	/* said once only */
	mqttc_retry_next(&r, MQTTC_END_LOST, true, 100, 5000, 0, &w);
	assert_true(w.duplicate);
	assert_false(w.warn);
	assert_int_equal(w.delay_ms, 32000);
	/* failed attempts do not change the count */
	mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 5000, 0, &w);
	assert_true(w.duplicate);
}

static void
test_retry_jitter_within_bounds(void **state)
{
	struct mqttc_retry r;
	struct mqttc_wait w;

	mqttc_retry_init(&r, 4000, 4000, 20000, true);
	for (uint32_t rnd = 0; rnd < 4000000000u; rnd += 400000000u) {
		mqttc_retry_next(&r, MQTTC_END_FAILED, false, 0, 60000, rnd,
		    &w);
		assert_true(w.delay_ms >= 3000 && w.delay_ms <= 4000);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_gives_the_cookie_back),
		cmocka_unit_test(test_unknown_duplicate_and_wrong_kind),
		cmocka_unit_test(test_ids_wrap_and_skip_used),
		cmocka_unit_test(test_all_ids_in_flight),
		cmocka_unit_test(test_oldest_in_sending_order_per_kind),
		cmocka_unit_test(test_qos0_fifo_and_first_cookie),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_overdue_oldest_first),
		cmocka_unit_test(test_retry_backoff_and_stable_reset),
		cmocka_unit_test(test_retry_at_once_but_paced),
		cmocka_unit_test(test_retry_duplicate_client_id),
		cmocka_unit_test(test_retry_jitter_within_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
