/*
 * Topic names and filters: the section 4.7 rules that every PUBLISH, SUBSCRIBE
 * and UNSUBSCRIBE goes through, and the one-filter matcher that the trie is
 * tested against. Levels are the spans between '/' separators, so "a//b" has an
 * empty middle level and "/a" an empty first one; both are real levels that '+'
 * can match.
 */
#include "topic/topic.h"

#include <string.h>

#include "base/utf8.h"

/* The checks every MQTT string needs, shared by names and filters. */
static enum topic_status
topic_string_check(const char *s, size_t len)
{
	if (len == 0)
		return TOPIC_EMPTY;
	if (len > TOPIC_MAX_LEN)
		return TOPIC_TOO_LONG;
	if (utf8_check((const uint8_t *)s, len) != UTF8_OK)
		return TOPIC_BAD_UTF8;
	return TOPIC_OK;
}

enum topic_status
topic_name_check(const char *name, size_t len)
{
	enum topic_status st;

	if ((st = topic_string_check(name, len)) != TOPIC_OK)
		return st;
	if (memchr(name, '+', len) != NULL || memchr(name, '#', len) != NULL)
		return TOPIC_WILDCARD_IN_NAME;
	return TOPIC_OK;
}

enum topic_status
topic_filter_check(const char *filter, size_t len)
{
	enum topic_status st;

	if ((st = topic_string_check(filter, len)) != TOPIC_OK)
		return st;
	for (size_t i = 0; i < len; i++) {
		char c = filter[i];
		bool alone;

		if (c != '+' && c != '#')
			continue;
		alone = (i == 0 || filter[i - 1] == '/') &&
		    (i + 1 == len || filter[i + 1] == '/');
		if (c == '#' && (!alone || i + 1 != len))
			return TOPIC_BAD_MULTI_LEVEL;
		if (c == '+' && !alone)
			return TOPIC_BAD_SINGLE_LEVEL;
	}
	return TOPIC_OK;
}

/* Length of the level starting at s[0], up to the next '/' or the end. */
static size_t
topic_level_len(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);

	return slash != NULL ? (size_t)(slash - s) : len;
}

bool
topic_match(const char *filter, size_t flen, const char *name, size_t nlen)
{
	size_t i = 0, j = 0;	/* start of the current level in each */

	if (nlen > 0 && name[0] == '$' && flen > 0 &&
	    (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		size_t fl = topic_level_len(filter + i, flen - i);
		size_t nl = topic_level_len(name + j, nlen - j);

		if (fl == 1 && filter[i] == '#')
			return true;
		if (!(fl == 1 && filter[i] == '+') &&
		    (fl != nl || memcmp(filter + i, name + j, fl) != 0))
			return false;
		i += fl;
		j += nl;
		if (i == flen || j == nlen)
			break;
		i++;		/* both stand on a '/' */
		j++;
	}
	if (i == flen && j == nlen)
		return true;
	/* The name ran out first: "a/#" also matches "a" (MQTT-4.7.1-2). */
	return j == nlen && flen - i == 2 && filter[i + 1] == '#';
}

const char *
topic_strerror(enum topic_status st)
{
	switch (st) {
	case TOPIC_OK:			return "valid topic";
	case TOPIC_EMPTY:		return "empty topic";
	case TOPIC_TOO_LONG:		return "topic longer than 65535 bytes";
	case TOPIC_BAD_UTF8:		return "topic is not valid UTF-8";
	case TOPIC_WILDCARD_IN_NAME:	return "wildcard in topic name";
	case TOPIC_BAD_MULTI_LEVEL:	return "'#' is not alone in the last level";
	case TOPIC_BAD_SINGLE_LEVEL:	return "'+' is not alone in its level";
	}
	return "unknown topic status";
}
