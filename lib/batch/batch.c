/*
 * Batch payloads (see batch.h). A batch keeps its closing ']' written at all
 * times, and an append overwrites it; so the bytes are a valid document
 * after every step and the size check is one comparison: what the item adds
 * (its ',' and object) must fit between the current end and the bound.
 */
#include "batch/batch.h"

#include <stdbool.h>
#include <string.h>

#include "base/json.h"
#include "base/utf8.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define KEY_TOPIC	"{\"topic\":\""
#define KEY_TS		"\",\"ts\":"
#define KEY_PAYLOAD	",\"payload\":"
#define KEY_B64		",\"payload_b64\":\""

static size_t
b64_size(size_t n)
{
	return (n + 2) / 3 * 4;
}

static void
b64_encode(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t i = 0;

	for (; i + 3 <= n; i += 3, out += 4) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		out[0] = (uint8_t)b64[v >> 18];
		out[1] = (uint8_t)b64[v >> 12 & 63];
		out[2] = (uint8_t)b64[v >> 6 & 63];
		out[3] = (uint8_t)b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		out[0] = (uint8_t)b64[v >> 18];
		out[1] = (uint8_t)b64[v >> 12 & 63];
		out[2] = i + 1 < n ? (uint8_t)b64[v >> 6 & 63] : '=';
		out[3] = '=';
	}
}

/* Decimal digits of v, with its sign, into out (NULL: only count). */
static size_t
put_i64(uint8_t *out, int64_t v)
{
	uint8_t tmp[20];
	uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0, len;

	do {
		tmp[n++] = (uint8_t)('0' + m % 10);
		m /= 10;
	} while (m > 0);
	len = n + (v < 0);
	if (out != NULL) {
		if (v < 0)
			*out++ = '-';
		while (n > 0)
			*out++ = tmp[--n];
	}
	return len;
}

enum batch_status
batch_item_init(struct batch_item *it, const void *topic, size_t topic_len,
    int64_t ts_ms, const void *payload, size_t payload_len)
{
	size_t start, end, body;

	memset(it, 0, sizeof(*it));
	if (utf8_check(topic, topic_len) != UTF8_OK)
		return BATCH_BAD_TOPIC;
	it->topic = topic;
	it->topic_len = topic_len;
	it->ts_ms = ts_ms;
	it->payload = payload;
	it->payload_len = payload_len;
	if (payload_len > 0 && json_validate(payload, payload_len,
	    BATCH_JSON_DEPTH, &start, &end) == JSON_OK) {
		it->kind = BATCH_JSON;
		it->payload += start;
		it->payload_len = end - start;
		body = sizeof(KEY_PAYLOAD) - 1 + it->payload_len;
	} else if (payload_len == 0 ||
	    utf8_check(payload, payload_len) == UTF8_OK) {
		it->kind = BATCH_TEXT;
		body = sizeof(KEY_PAYLOAD) - 1 + 2 +
		    json_escape(NULL, 0, payload, payload_len);
	} else {
		it->kind = BATCH_BINARY;
		body = sizeof(KEY_B64) - 1 + b64_size(payload_len) + 1;
	}
	it->size = sizeof(KEY_TOPIC) - 1 + json_escape(NULL, 0, topic,
	    topic_len) + sizeof(KEY_TS) - 1 + put_i64(NULL, ts_ms) + body + 1;
	return BATCH_OK;
}

void
batch_init(struct batch *b, void *out, size_t cap)
{
	b->out = out;
	b->cap = cap;
	b->count = 0;
	b->len = BATCH_EMPTY_SIZE;
	if (cap >= BATCH_EMPTY_SIZE)
		memcpy(b->out, "[]", BATCH_EMPTY_SIZE);
}

static uint8_t *
put(uint8_t *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/*
 * Escaped text at p. json_escape() NUL-terminates: the byte after the text
 * is inside the item (its closing quote at least), so it may be written.
 */
static uint8_t *
put_escaped(uint8_t *p, const uint8_t *s, size_t n)
{
	size_t len = json_escape(NULL, 0, s, n);

	json_escape((char *)p, len + 1, s, n);
	return p + len;
}

enum batch_status
batch_add(struct batch *b, const struct batch_item *it)
{
	size_t add = it->size + (b->count > 0);
	uint8_t *p;

	/* The item replaces the ']' and brings its own. */
	if (b->cap < b->len || add > b->cap - b->len)
		return b->count > 0 ? BATCH_FULL : BATCH_TOO_BIG;
	p = b->out + b->len - 1;
	if (b->count > 0)
		*p++ = ',';
	p = put(p, KEY_TOPIC, sizeof(KEY_TOPIC) - 1);
	p = put_escaped(p, it->topic, it->topic_len);
	p = put(p, KEY_TS, sizeof(KEY_TS) - 1);
	p += put_i64(p, it->ts_ms);
	switch (it->kind) {
	case BATCH_JSON:
		p = put(p, KEY_PAYLOAD, sizeof(KEY_PAYLOAD) - 1);
		p = put(p, (const char *)it->payload, it->payload_len);
		break;
	case BATCH_TEXT:
		p = put(p, KEY_PAYLOAD "\"", sizeof(KEY_PAYLOAD));
		p = put_escaped(p, it->payload, it->payload_len);
		*p++ = '"';
		break;
	case BATCH_BINARY:
		p = put(p, KEY_B64, sizeof(KEY_B64) - 1);
		b64_encode(p, it->payload, it->payload_len);
		p += b64_size(it->payload_len);
		*p++ = '"';
		break;
	}
	*p++ = '}';
	*p++ = ']';
	b->len += add;
	b->count++;
	return BATCH_OK;
}

size_t
batch_len(const struct batch *b)
{
	return b->len;
}

size_t
batch_count(const struct batch *b)
{
	return b->count;
}

const char *
batch_strerror(enum batch_status st)
{
	switch (st) {
	case BATCH_OK:
		return "success";
	case BATCH_FULL:
		return "batch full";
	case BATCH_TOO_BIG:
		return "message too big for a batch";
	case BATCH_BAD_TOPIC:
		return "topic is not UTF-8 without U+0000";
	}
	return "unknown batch status";
}
