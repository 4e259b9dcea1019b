/*
 * lib/batch/batch.c: every batch is read back with the strict JSON reader
 * of lib/base/json.c and every field checked against the message it came
 * from (payloads that are JSON, UTF-8 text with characters that need
 * escaping, binary, empty); sizes are exact; the byte bound is never
 * crossed; and one batch is compared byte for byte with its expected text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/base64.h>

#include "base/json.h"
#include "batch/batch.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define S(lit)		lit, sizeof(lit) - 1

struct msg {
	const char	*topic;
	size_t		 topic_len;
	int64_t		 ts;
	const char	*payload;
	size_t		 len;
	enum batch_kind	 kind;
	const char	*json;		/* BATCH_JSON: the value as carried */
};

static const struct msg msgs[] = {
	{ S("gw01/sensors/t1"), INT64_C(1765197296000),
	    S("{\"t\": 21.5, \"unit\": \"C\"}"), BATCH_JSON,
	    "{\"t\": 21.5, \"unit\": \"C\"}" },
	/* white space around the document is dropped, inside it kept */
	{ S("gw01/sensors/t2"), 1, S(" \r\n[1, 2 ,3]\n"), BATCH_JSON,
	    "[1, 2 ,3]" },
	{ S("gw01/n"), 0, S("21.5"), BATCH_JSON, "21.5" },
	{ S("gw01/b"), 2, S("true"), BATCH_JSON, "true" },
	{ S("gw01/s"), 3, S("\"quoted \\u00e9\""), BATCH_JSON,
	    "\"quoted \\u00e9\"" },
	/* text that is no JSON document */
	{ S("gw01/text"), 4, S("21.5 C"), BATCH_TEXT, NULL },
	{ S("gw01/zero"), 5, S("01"), BATCH_TEXT, NULL },
	{ S("gw01/esc"), 6, S("a \"quote\", a \\ backslash\n\ttab \001 "
	    "\177 caf\303\251 \360\237\214\241"), BATCH_TEXT, NULL },
	{ S("gw01/half"), 7, S("{\"a\": 1"), BATCH_TEXT, NULL },
	{ S("gw01/surrogate"), 8, S("[\"\\ud800\"]"), BATCH_TEXT, NULL },
	{ S("gw01/empty"), 9, "", 0, BATCH_TEXT, NULL },
	{ S("gw01/space"), 10, S("   "), BATCH_TEXT, NULL },
	/* anything else */
	{ S("gw01/bin"), 11, S("\377\376\000\001"), BATCH_BINARY, NULL },
	{ S("gw01/nul"), 12, S("text\000with nul"), BATCH_BINARY, NULL },
	{ S("gw01/latin1"), 13, S("caf\351"), BATCH_BINARY, NULL },
	{ S("gw01/b64-1"), 14, S("\200"), BATCH_BINARY, NULL },
	{ S("gw01/b64-2"), 15, S("\200\201"), BATCH_BINARY, NULL },
	{ S("gw01/b64-3"), 16, S("\200\201\202"), BATCH_BINARY, NULL },
	/* topics with characters JSON escapes; extreme times */
	{ S("gw01/\"odd\"\\topic\001/caf\303\251"), INT64_MAX, S("{}"),
	    BATCH_JSON, "{}" },
	{ S("$aws/rules/r/x"), INT64_MIN, S("null"), BATCH_JSON, "null" },
};

/* BATCH_JSON_DEPTH levels travel as JSON; one more, as a string. */
static char deep[2 * BATCH_JSON_DEPTH], deeper[2 * (BATCH_JSON_DEPTH + 1)];

static void
item(struct batch_item *it, const struct msg *m)
{
	assert_int_equal(batch_item_init(it, m->topic, m->topic_len, m->ts,
	    m->payload, m->len), BATCH_OK);
	assert_int_equal(it->kind, m->kind);
}

/* The decoded text of the string token t equals want[0..n). */
static void
assert_string_token(const struct json_token *t, const char *want, size_t n)
{
	char out[512];
	size_t got;

	assert_int_equal(t->type, JSON_T_STRING);
	assert_int_equal(json_string_decode(t, out, sizeof(out), &got),
	    JSON_OK);
	assert_int_equal(got, n);
	assert_memory_equal(out, want, n);
}

/* Read back message m from the object the reader is at. */
static void
read_object(struct json_reader *r, const char *batch, const struct msg *m)
{
	struct json_token t, k;
	unsigned char raw[512];
	size_t end, n;
	int64_t ts;

	assert_int_equal(json_next(r, &t), JSON_OK);
	assert_int_equal(t.type, JSON_T_OBJECT);
	assert_int_equal(json_next(r, &k), JSON_OK);
	assert_true(json_string_eq(&k, "topic"));
	assert_int_equal(json_next(r, &t), JSON_OK);
	assert_string_token(&t, m->topic, m->topic_len);
	assert_int_equal(json_next(r, &k), JSON_OK);
	assert_true(json_string_eq(&k, "ts"));
	assert_int_equal(json_next(r, &t), JSON_OK);
	assert_int_equal(json_number_i64(&t, &ts), JSON_OK);
	assert_true(ts == m->ts);
	assert_int_equal(json_next(r, &k), JSON_OK);
	assert_int_equal(json_next(r, &t), JSON_OK);
	switch (m->kind) {
	case BATCH_JSON:
		assert_true(json_string_eq(&k, "payload"));
		assert_int_equal(json_skip(r, &t, &end), JSON_OK);
		if (m->json != NULL) {
			assert_int_equal(end - t.off, strlen(m->json));
			assert_memory_equal(batch + t.off, m->json, end - t.off);
		} else {
			assert_int_equal(end - t.off, m->len);
			assert_memory_equal(batch + t.off, m->payload, m->len);
		}
		break;
	case BATCH_TEXT:
		assert_true(json_string_eq(&k, "payload"));
		assert_string_token(&t, m->payload, m->len);
		break;
	case BATCH_BINARY:
		assert_true(json_string_eq(&k, "payload_b64"));
		assert_int_equal(t.type, JSON_T_STRING);
		assert_int_equal(mbedtls_base64_decode(raw, sizeof(raw), &n,
		    t.ptr, t.len), 0);
		assert_int_equal(n, m->len);
		assert_memory_equal(raw, m->payload, n);
		break;
	}
	assert_int_equal(json_next(r, &t), JSON_OK);
	assert_int_equal(t.type, JSON_T_OBJECT_END);
}

static void
test_round_trip(void **state)
{
	static uint8_t out[8192];
	struct msg all[NELEM(msgs) + 2];
	struct batch b;
	struct batch_item it;
	struct json_reader r;
	struct json_token t;
	size_t sum = 0, prev;

	(void)state;
	memcpy(all, msgs, sizeof(msgs));
	memset(deep, '[', BATCH_JSON_DEPTH);
	memset(deep + BATCH_JSON_DEPTH, ']', BATCH_JSON_DEPTH);
	memset(deeper, '[', BATCH_JSON_DEPTH + 1);
	memset(deeper + BATCH_JSON_DEPTH + 1, ']', BATCH_JSON_DEPTH + 1);
	all[NELEM(msgs)] = (struct msg){ S("gw01/deep"), -1, deep,
	    sizeof(deep), BATCH_JSON, NULL };
	all[NELEM(msgs) + 1] = (struct msg){ S("gw01/deeper"), 17, deeper,
	    sizeof(deeper), BATCH_TEXT, NULL };

	memset(out, 'z', sizeof(out));
	batch_init(&b, out, sizeof(out));
	assert_int_equal(batch_len(&b), 2);
	assert_memory_equal(out, "[]", 2);
	for (size_t i = 0; i < NELEM(all); i++) {
		item(&it, &all[i]);
		prev = batch_len(&b);
		assert_int_equal(batch_add(&b, &it), BATCH_OK);
		/* exactly the size announced, and the ',' before it */
		assert_int_equal(batch_len(&b), prev + it.size + (i > 0));
		sum += it.size;
		/* a complete document after every step */
		assert_int_equal(json_validate(out, batch_len(&b),
		    BATCH_JSON_DEPTH + 2, NULL, NULL), JSON_OK);
	}
	assert_int_equal(batch_count(&b), NELEM(all));
	assert_int_equal(batch_len(&b), 2 + sum + NELEM(all) - 1);
	assert_int_equal(out[batch_len(&b)], 'z');
	/* no white space between tokens */
	assert_int_equal(out[1], '{');

	json_reader_init(&r, out, batch_len(&b), BATCH_JSON_DEPTH + 2);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(t.type, JSON_T_ARRAY);
	for (size_t i = 0; i < NELEM(all); i++)
		read_object(&r, (const char *)out, &all[i]);
	assert_int_equal(json_next(&r, &t), JSON_OK);
	assert_int_equal(t.type, JSON_T_ARRAY_END);
	assert_int_equal(json_next(&r, &t), JSON_END);
}

static void
test_exact_text(void **state)
{
	static const char want[] = "[{\"topic\":\"a/b\",\"ts\":1765197296000,"
	    "\"payload\":{\"t\":1}},{\"topic\":\"a/\\\"c\\\"\",\"ts\":-5,"
	    "\"payload\":\"x\\u000a\\u0001\"},{\"topic\":\"a/d\",\"ts\":0,"
	    "\"payload_b64\":\"/w==\"},{\"topic\":\"a/e\",\"ts\":7,"
	    "\"payload\":\"\"}]";
	uint8_t out[sizeof(want) - 1];
	struct batch b;
	struct batch_item it;

	(void)state;
	batch_init(&b, out, sizeof(out));
	assert_int_equal(batch_item_init(&it, "a/b", 3, INT64_C(1765197296000),
	    " {\"t\":1} ", 9), BATCH_OK);
	assert_int_equal(batch_add(&b, &it), BATCH_OK);
	assert_int_equal(batch_item_init(&it, "a/\"c\"", 5, -5, "x\n\001", 3),
	    BATCH_OK);
	assert_int_equal(batch_add(&b, &it), BATCH_OK);
	assert_int_equal(batch_item_init(&it, "a/d", 3, 0, "\377", 1),
	    BATCH_OK);
	assert_int_equal(batch_add(&b, &it), BATCH_OK);
	assert_int_equal(batch_item_init(&it, "a/e", 3, 7, NULL, 0), BATCH_OK);
	assert_int_equal(batch_add(&b, &it), BATCH_OK);
	/* the bound was exactly the four: the buffer is full */
	assert_int_equal(batch_len(&b), sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
}

static void
test_bound(void **state)
{
	static uint8_t out[BATCH_MAX_BYTES + 16], copy[BATCH_MAX_BYTES];
	static uint8_t payload[1000];
	struct batch b;
	struct batch_item a, c;
	size_t two, n = 0, len;

	(void)state;
	assert_int_equal(batch_item_init(&a, "x/1", 3, 1, "{\"v\":1}", 7),
	    BATCH_OK);
	assert_int_equal(batch_item_init(&c, "x/2", 3, 2, "\377\377", 2),
	    BATCH_OK);
	two = 2 + a.size + 1 + c.size;
	/* exactly enough for two */
	batch_init(&b, out, two);
	assert_int_equal(batch_add(&b, &a), BATCH_OK);
	assert_int_equal(batch_add(&b, &c), BATCH_OK);
	assert_int_equal(batch_len(&b), two);
	assert_int_equal(batch_add(&b, &a), BATCH_FULL);
	/* one byte less: the second does not fit, the batch is unchanged */
	memset(out, 0, sizeof(out));
	batch_init(&b, out, two - 1);
	assert_int_equal(batch_add(&b, &a), BATCH_OK);
	len = batch_len(&b);
	memcpy(copy, out, len);
	assert_int_equal(batch_add(&b, &c), BATCH_FULL);
	assert_int_equal(batch_len(&b), len);
	assert_int_equal(batch_count(&b), 1);
	assert_memory_equal(out, copy, len);
	assert_int_equal(out[len], 0);
	/* a message that fits no batch of this bound */
	batch_init(&b, out, 2 + a.size - 1);
	assert_int_equal(batch_add(&b, &a), BATCH_TOO_BIG);
	assert_int_equal(batch_len(&b), 2);
	assert_int_equal(batch_count(&b), 0);
	batch_init(&b, out, 2 + a.size);
	assert_int_equal(batch_add(&b, &a), BATCH_OK);

	/* AWS's limit, filled with binary messages: never one byte over */
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 128);
	memset(out, 'z', sizeof(out));
	batch_init(&b, out, BATCH_MAX_BYTES);
	for (;;) {
		enum batch_status st;

		assert_int_equal(batch_item_init(&a, "gw01/cam", 8, (int64_t)n,
		    payload, 1 + n % sizeof(payload)), BATCH_OK);
		if ((st = batch_add(&b, &a)) == BATCH_FULL)
			break;
		assert_int_equal(st, BATCH_OK);
		n++;
	}
	assert_true(n > 100);
	assert_true(batch_len(&b) <= BATCH_MAX_BYTES);
	assert_true(batch_len(&b) + 1 + a.size > BATCH_MAX_BYTES);
	assert_int_equal(out[BATCH_MAX_BYTES], 'z');
	assert_int_equal(json_validate(out, batch_len(&b), 3, NULL, NULL),
	    JSON_OK);
	/* a bound too small even for "[]" takes nothing */
	batch_init(&b, out, 1);
	assert_int_equal(batch_add(&b, &a), BATCH_TOO_BIG);
}

static void
test_bad_topic(void **state)
{
	struct batch_item it;

	(void)state;
	assert_int_equal(batch_item_init(&it, "caf\351", 4, 0, "x", 1),
	    BATCH_BAD_TOPIC);
	assert_int_equal(batch_item_init(&it, "a\0b", 3, 0, "x", 1),
	    BATCH_BAD_TOPIC);
	assert_int_equal(batch_item_init(&it, "\355\240\200", 3, 0, "x", 1),
	    BATCH_BAD_TOPIC);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int st = BATCH_OK; st <= BATCH_BAD_TOPIC; st++)
		assert_string_not_equal(batch_strerror((enum batch_status)st),
		    "unknown batch status");
	assert_string_equal(batch_strerror((enum batch_status)9),
	    "unknown batch status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_exact_text),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_bad_topic),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
