/*
 * AWS IoT Core's rules for a publish, checked before a message is queued so
 * that a message AWS would refuse (by closing the whole connection) is
 * refused here instead, with a reason: the payload size, the topic's length
 * and depth, and the reserved "$" topics, of which devices may publish only
 * to $aws/things/, $aws/rules/ (Basic Ingest) and a few others. A Basic
 * Ingest topic's "$aws/rules/RULE/" does not count towards the length and
 * depth limits, as AWS documents. Pure: no I/O.
 */
#ifndef IOTB_AWSLIMIT_H
#define IOTB_AWSLIMIT_H

#include <stddef.h>
#include <stdint.h>

struct awslimit {
	uint64_t	max_payload;		/* bytes */
	uint64_t	max_topic_length;	/* bytes, Basic Ingest prefix not counted */
	uint64_t	max_topic_slashes;	/* '/' in the topic, the same */
};

enum awslimit_status {
	AWSLIMIT_OK = 0,
	AWSLIMIT_PAYLOAD,	/* payload over max_payload */
	AWSLIMIT_TOPIC_LENGTH,	/* topic over max_topic_length */
	AWSLIMIT_TOPIC_DEPTH,	/* more '/' than max_topic_slashes */
	AWSLIMIT_RESERVED,	/* a "$" topic devices may not publish to */
	AWSLIMIT_NSTATUS,
};

/* Would AWS take a publish of plen payload bytes to topic[0..tlen)? The
 * first failing check is returned, in this order: payload, reserved topic,
 * topic length, topic depth. */
enum awslimit_status awslimit_check(const struct awslimit *l,
		    const char *topic, size_t tlen, size_t plen);

/*
 * Why, in words an operator can act on (naming the aws.limits key), into
 * buf[0..cap) (always NUL-terminated when cap > 0), for a status that
 * awslimit_check() returned for the same arguments. Returns buf.
 */
const char	*awslimit_explain(const struct awslimit *l,
		    enum awslimit_status st, const char *topic, size_t tlen,
		    size_t plen, char *buf, size_t cap);

/* A short name for counters and the dead-letter file: "payload_too_large",
 * "topic_too_long", "topic_too_deep", "reserved_topic" ("ok" for OK). */
const char	*awslimit_name(enum awslimit_status st);

#endif
