/*
 * The reserved-topic list follows AWS IoT's "reserved topics" page: the
 * prefixes under which a device's publish is accepted. Everything else
 * starting with '$' is refused by AWS with a disconnect.
 */
#include "bridge/awslimit.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define BASIC_INGEST	"$aws/rules/"

static const char *const publishable[] = {
	"$aws/things/", BASIC_INGEST, "$aws/certificates/",
	"$aws/provisioning-templates/", "$aws/sitewise/", "$aws/defender/",
};

static bool
reserved_ok(const char *t, size_t tlen)
{
	for (size_t i = 0; i < sizeof(publishable) / sizeof(*publishable);
	    i++) {
		size_t n = strlen(publishable[i]);

		if (tlen > n && memcmp(t, publishable[i], n) == 0)
			return true;
	}
	return false;
}

/* Bytes at the start that AWS does not count: "$aws/rules/RULE/". */
static size_t
uncounted(const char *t, size_t tlen)
{
	const size_t n = sizeof(BASIC_INGEST) - 1;
	const char *e;

	if (tlen <= n || memcmp(t, BASIC_INGEST, n) != 0)
		return 0;
	e = memchr(t + n, '/', tlen - n);
	return e != NULL ? (size_t)(e - t) + 1 : tlen;
}

static size_t
slashes(const char *t, size_t tlen)
{
	size_t n = 0;

	for (size_t i = 0; i < tlen; i++)
		n += t[i] == '/';
	return n;
}

enum awslimit_status
awslimit_check(const struct awslimit *l, const char *topic, size_t tlen,
    size_t plen)
{
	size_t skip;

	if (plen > l->max_payload)
		return AWSLIMIT_PAYLOAD;
	if (tlen > 0 && topic[0] == '$' && !reserved_ok(topic, tlen))
		return AWSLIMIT_RESERVED;
	skip = uncounted(topic, tlen);
	if (tlen - skip > l->max_topic_length)
		return AWSLIMIT_TOPIC_LENGTH;
	if (slashes(topic + skip, tlen - skip) > l->max_topic_slashes)
		return AWSLIMIT_TOPIC_DEPTH;
	return AWSLIMIT_OK;
}

const char *
awslimit_explain(const struct awslimit *l, enum awslimit_status st,
    const char *topic, size_t tlen, size_t plen, char *buf, size_t cap)
{
	size_t skip = uncounted(topic, tlen);

	if (cap == 0)
		return buf;
	switch (st) {
	case AWSLIMIT_PAYLOAD:
		snprintf(buf, cap, "payload of %zu bytes is over "
		    "aws.limits.max_payload (%" PRIu64 ")", plen,
		    l->max_payload);
		break;
	case AWSLIMIT_RESERVED:
		snprintf(buf, cap, "topics starting with $ are reserved by "
		    "AWS (only $aws/things/, $aws/rules/ and the like take "
		    "publishes)");
		break;
	case AWSLIMIT_TOPIC_LENGTH:
		snprintf(buf, cap, "topic of %zu bytes is over "
		    "aws.limits.max_topic_length (%" PRIu64 ")", tlen - skip,
		    l->max_topic_length);
		break;
	case AWSLIMIT_TOPIC_DEPTH:
		snprintf(buf, cap, "topic has %zu '/', over "
		    "aws.limits.max_topic_slashes (%" PRIu64 ")",
		    slashes(topic + skip, tlen - skip), l->max_topic_slashes);
		break;
	default:
		snprintf(buf, cap, "within AWS's limits");
		break;
	}
	return buf;
}

const char *
awslimit_name(enum awslimit_status st)
{
	static const char *const names[AWSLIMIT_NSTATUS] = {
		[AWSLIMIT_OK] = "ok",
		[AWSLIMIT_PAYLOAD] = "payload_too_large",
		[AWSLIMIT_TOPIC_LENGTH] = "topic_too_long",
		[AWSLIMIT_TOPIC_DEPTH] = "topic_too_deep",
		[AWSLIMIT_RESERVED] = "reserved_topic",
	};

	return st < AWSLIMIT_NSTATUS ? names[st] : "unknown";
}
