/*
 * MQTT topic names and topic filters (MQTT 3.1.1 section 4.7, MQTT 5.0 section 4.7):
 * validation and matching of one name against one filter. Topics are (pointer,
 * length) views, never NUL-terminated; nothing is kept after a call returns.
 * The subscription trie that matches a name against many filters is trie.h.
 */
#ifndef IOTB_TOPIC_H
#define IOTB_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOPIC_MAX_LEN 65535	/* a UTF-8 string on the wire has a 16-bit length */

enum topic_status {
	TOPIC_OK = 0,
	TOPIC_EMPTY,		/* zero-length name or filter */
	TOPIC_TOO_LONG,		/* more than TOPIC_MAX_LEN bytes */
	TOPIC_BAD_UTF8,		/* not well-formed UTF-8, or contains U+0000 */
	TOPIC_WILDCARD_IN_NAME,	/* '+' or '#' in a topic name */
	TOPIC_BAD_MULTI_LEVEL,	/* '#' not alone in the last level of a filter */
	TOPIC_BAD_SINGLE_LEVEL,	/* '+' not alone in its level of a filter */
};

/* A topic name as carried by PUBLISH: non-empty, UTF-8, no wildcards. */
enum topic_status topic_name_check(const char *name, size_t len);

/* A topic filter as carried by SUBSCRIBE/UNSUBSCRIBE: non-empty, UTF-8, '#' only
 * as the whole last level, '+' only as a whole level. */
enum topic_status topic_filter_check(const char *filter, size_t len);

/*
 * Does a valid topic name match a valid topic filter? '+' matches exactly one
 * level (possibly empty), '#' matches the parent level and any number of levels
 * below it. A name starting with '$' is not matched by a filter starting with a
 * wildcard (MQTT-4.7.2-1). Inputs must have passed the checks above.
 */
bool topic_match(const char *filter, size_t flen, const char *name, size_t nlen);

/* Static English text for a status. */
const char *topic_strerror(enum topic_status st);

#endif
