/*
 * Batch payloads (issue 13, "Batching, per out rule"): messages bound for
 * AWS packed, in arrival order, into the payload of one PUBLISH, so that a
 * gateway stays under AWS's publishes per second and pays for one message
 * instead of many. The payload is a JSON array with one object per message:
 *
 *   [{"topic":"gw01/sensors/t1","ts":1765197296000,"payload":{"t":21.5}},
 *    {"topic":"gw01/sensors/t2","ts":1765197296004,"payload":"21.5 C"},
 *    {"topic":"gw01/cam/1","ts":1765197296010,"payload_b64":"/9j/4AAQ"}]
 *
 * "topic" is the AWS topic the message would have had on its own, "ts" the
 * milliseconds since the epoch when the gateway received it. "payload" is
 * the payload itself when it is one JSON document (RFC 8259, as
 * lib/base/json.c reads it, at most BATCH_JSON_DEPTH deep; the white space
 * around the value is dropped, the value's own bytes are kept as they are),
 * else a JSON string when it is UTF-8 as MQTT defines it (no U+0000; the
 * empty payload is ""), else "payload_b64" holds its base64 (RFC 4648, with
 * padding). So every message comes back byte for byte: from the JSON value's
 * text, the string's value, or the base64. The output is compact (no white
 * space between tokens) and always one valid JSON document.
 *
 * Writing is two-step, as the MQTT encoders are: batch_item_init() reads a
 * message once and knows its exact size; batch_add() writes it into the
 * caller's buffer only if the batch, closed, still fits its byte bound. So
 * a batch never exceeds the bound (AWS's payload limit, or a rule's
 * max_bytes), and nothing is allocated: items and the batch are views into
 * the caller's bytes.
 */
#ifndef IOTB_BATCH_H
#define IOTB_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* AWS IoT Core's payload limit. */
#define BATCH_MAX_BYTES		(128 * 1024)
/*
 * Deeper JSON payloads travel as strings, so that whatever unpacks a batch
 * on the AWS side needs to handle 2 more levels than this, not any depth.
 */
#define BATCH_JSON_DEPTH	64
#define BATCH_EMPTY_SIZE	2		/* "[]" */

enum batch_status {
	BATCH_OK = 0,
	BATCH_FULL,		/* does not fit what is left */
	BATCH_TOO_BIG,		/* does not fit even an empty batch */
	BATCH_BAD_TOPIC,	/* the topic is not UTF-8 without U+0000 */
};

/* How a payload is carried. */
enum batch_kind {
	BATCH_JSON,		/* "payload": the document */
	BATCH_TEXT,		/* "payload": a JSON string */
	BATCH_BINARY,		/* "payload_b64": base64 */
};

/*
 * One message, read by batch_item_init(). topic and payload point into the
 * caller's bytes (for BATCH_JSON, payload is the value without the white
 * space around it), which must stay put until batch_add() has copied them.
 * size: the bytes of its object in a batch, without the ',' before it.
 */
struct batch_item {
	const uint8_t	*topic;
	size_t		 topic_len;
	int64_t		 ts_ms;
	const uint8_t	*payload;
	size_t		 payload_len;
	enum batch_kind	 kind;
	size_t		 size;
};

/*
 * A batch being written into out[0..cap): the caller owns the struct and
 * the buffer and reads them through batch_len() and batch_count().
 * out[0..len) is always a complete JSON array.
 */
struct batch {
	uint8_t		*out;
	size_t		 cap;
	size_t		 len;
	size_t		 count;
};

/*
 * Read one message: a topic topic[0..topic_len), the time the gateway got it,
 * and its payload payload[0..payload_len) (payload may be NULL when the
 * length is 0). Both are borrowed (see struct batch_item). Decides the kind
 * and computes the size. Returns BATCH_OK, or BATCH_BAD_TOPIC (a topic that
 * is not UTF-8 or holds U+0000: a broker bug, as MQTT refuses both).
 */
enum batch_status batch_item_init(struct batch_item *it, const void *topic,
	    size_t topic_len, int64_t ts_ms, const void *payload,
	    size_t payload_len);

/*
 * Start an empty batch, "[]", in out[0..cap) (borrowed; kept by b). cap is
 * the bound: the most the batch may ever take, at least BATCH_EMPTY_SIZE.
 */
void	batch_init(struct batch *b, void *out, size_t cap);

/*
 * Append it's object if the batch, with it, still fits its bound. Returns
 * BATCH_OK; BATCH_FULL (the batch has items and this one does not fit with
 * them: the batch is unchanged); or BATCH_TOO_BIG (not even alone: the batch
 * is empty and stays so; such a message can only travel on its own).
 */
enum batch_status batch_add(struct batch *b, const struct batch_item *it);

/* Bytes of the batch so far, a complete JSON array: out[0..len). */
size_t	batch_len(const struct batch *b);

/* Messages in the batch. */
size_t	batch_count(const struct batch *b);

/* Static English text for a status. */
const char *batch_strerror(enum batch_status st);

#endif
