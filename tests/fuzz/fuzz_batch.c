/*
 * libFuzzer target for the batch encoder (lib/batch/batch.c), read back
 * with the JSON reader (lib/base/json.c). The input is a byte bound (two
 * bytes, big-endian, plus 2) followed by messages, each a topic length
 * byte, the topic, a payload length byte and the payload. Checked:
 *  - the batch is always one valid JSON document within its bound, and
 *    grows by exactly each item's announced size (and a ',');
 *  - a refused message leaves the batch as it was;
 *  - read back, every accepted message gives its topic, its time, and its
 *    payload byte for byte (the JSON value's text without the white space
 *    around it, the string's value, or the base64's bytes), as the kind
 *    says.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "base/json.h"
#include "batch/batch.h"
#include "fuzz.h"

#define INPUT_MAX	(16 * 1024)
#define MAX_MSGS	512

static uint8_t out[INPUT_MAX * 4 + 64];
static uint8_t text[INPUT_MAX * 2];
static struct batch_item items[MAX_MSGS];

static void
same_text(const struct json_token *t, const uint8_t *want, size_t n)
{
	size_t got;

	check(t->type == JSON_T_STRING);
	check(json_string_decode(t, text, sizeof(text), &got) == JSON_OK);
	check(got == n && memcmp(text, want, n) == 0);
}

static void
next(struct json_reader *r, struct json_token *t)
{
	check(json_next(r, t) == JSON_OK);
}

static void
read_back(size_t len, size_t count)
{
	struct json_reader r;
	struct json_token t, k;
	size_t end, n;
	int64_t ts;

	json_reader_init(&r, out, len, BATCH_JSON_DEPTH + 2);
	next(&r, &t);
	check(t.type == JSON_T_ARRAY);
	for (size_t i = 0; i < count; i++) {
		const struct batch_item *it = &items[i];

		next(&r, &t);
		check(t.type == JSON_T_OBJECT && t.end - t.off == 1);
		next(&r, &k);
		next(&r, &t);
		check(json_string_eq(&k, "topic"));
		same_text(&t, it->topic, it->topic_len);
		next(&r, &k);
		next(&r, &t);
		check(json_string_eq(&k, "ts"));
		check(json_number_i64(&t, &ts) == JSON_OK && ts == it->ts_ms);
		next(&r, &k);
		next(&r, &t);
		check(json_string_eq(&k, it->kind == BATCH_BINARY ?
		    "payload_b64" : "payload"));
		if (it->kind == BATCH_JSON) {
			check(json_skip(&r, &t, &end) == JSON_OK);
			check(end - t.off == it->payload_len &&
			    memcmp(out + t.off, it->payload, end - t.off) ==
			    0);
		} else if (it->kind == BATCH_TEXT) {
			same_text(&t, it->payload, it->payload_len);
		} else {
			check(t.type == JSON_T_STRING);
			check(mbedtls_base64_decode(text, sizeof(text), &n,
			    t.ptr, t.len) == 0);
			check(n == it->payload_len &&
			    memcmp(text, it->payload, n) == 0);
		}
		next(&r, &t);
		check(t.type == JSON_T_OBJECT_END);
	}
	next(&r, &t);
	check(t.type == JSON_T_ARRAY_END);
	check(json_next(&r, &t) == JSON_END);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct batch b;
	struct batch_item it;
	size_t bound, pos = 2, count = 0, len;
	int64_t ts = 0;

	if (size < 2 || size > INPUT_MAX)
		return 0;
	bound = ((size_t)data[0] << 8 | data[1]) + 2;
	batch_init(&b, out, bound);
	while (pos < size && count < MAX_MSGS) {
		size_t tlen = data[pos++], plen;
		const uint8_t *topic = data + pos, *payload;
		enum batch_status st;

		if (tlen > size - pos)
			break;
		pos += tlen;
		plen = pos < size ? data[pos++] : 0;
		if (plen > size - pos)
			plen = size - pos;
		payload = data + pos;
		pos += plen;
		ts = (int64_t)((uint64_t)ts * 31 + tlen - plen);
		if (batch_item_init(&it, topic, tlen, ts, payload, plen) !=
		    BATCH_OK)
			continue;
		len = batch_len(&b);
		st = batch_add(&b, &it);
		if (st == BATCH_OK) {
			check(batch_len(&b) == len + it.size + (count > 0));
			items[count++] = it;
		} else {
			check(st == (count > 0 ? BATCH_FULL : BATCH_TOO_BIG));
			check(batch_len(&b) == len);
		}
		check(batch_len(&b) <= bound && batch_count(&b) == count);
	}
	if (bound >= BATCH_EMPTY_SIZE)
		read_back(batch_len(&b), count);
	return 0;
}
