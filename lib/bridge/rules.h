/*
 * The bridge rules, compiled: which local topics go up to AWS and under what
 * name, which AWS topics come down and under what name, and the filters the
 * "in" side subscribes to at AWS. A rule is a topic filter with a prefix on
 * each side: local_prefix + topic matches on the LAN, remote_prefix + topic
 * at AWS, and a matched topic keeps its part after the prefix while the
 * prefix is swapped. The first rule of the message's direction whose filter
 * matches decides, in configuration order. Pure: no I/O; the compiled form
 * owns copies of its strings.
 */
#ifndef IOTB_RULES_H
#define IOTB_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_TOPIC_MAX	65535	/* an MQTT topic's length limit */

enum rules_status {
	RULES_OK = 0,
	RULES_NOMATCH,		/* no rule of that direction matches */
	RULES_UNMAPPABLE,	/* the first match cannot be renamed: the topic
				 * is the prefix's parent ("gw" for "gw/#"),
				 * or the new name is empty or too long */
	RULES_INVALID,		/* compile: a filter or prefix is not valid */
	RULES_NOMEM,
};

/* Which way a message goes; a rule may serve both. */
enum rules_dir {
	RULES_OUT = 1,		/* LAN -> AWS */
	RULES_IN = 2,		/* AWS -> LAN */
	RULES_BOTH = 3,
};

/* What a device's acknowledgement waits for under a rule sending out. */
enum rules_ack {
	RULES_ACK_STORED,	/* the message is durable in the queue */
	RULES_ACK_DELIVERED,	/* AWS acknowledged it */
};

/* One rule as configured; the strings are copied by rules_compile(). */
struct rules_spec {
	const char	*topic;		/* a valid topic filter */
	const char	*local_prefix;	/* "" or NULL for none; no wildcard */
	const char	*remote_prefix;
	enum rules_dir	 dir;
	uint8_t		 qos;		/* the most a message keeps: 0..2 */
	enum rules_ack	 ack;
};

/* What rules_map() found. */
struct rules_match {
	size_t		 rule;		/* index in the compiled list */
	uint8_t		 qos;		/* the rule's */
	enum rules_ack	 ack;
	size_t		 len;		/* of the new name in out */
};

struct rules;

/*
 * Compile n rules (n may be 0). RULES_OK with *out set (free with
 * rules_free()), RULES_INVALID when a prefix + topic is not a valid filter
 * or a prefix holds a wildcard (*bad: its index), RULES_NOMEM.
 */
enum rules_status rules_compile(const struct rules_spec *specs, size_t n,
		    struct rules **out, size_t *bad);

/* NULL is a no-op. */
void		 rules_free(struct rules *r);

/*
 * Rename topic[0..len), a valid topic name, for the way dir (RULES_OUT: a
 * local name to its AWS name; RULES_IN: an AWS name to its local one) by the
 * first rule of that direction that matches. The new name goes into
 * out[0..cap) (not NUL-terminated); *m receives the rule and its length.
 *   RULES_OK, RULES_NOMATCH, RULES_UNMAPPABLE (over cap also)
 */
enum rules_status rules_map(const struct rules *r, enum rules_dir dir,
		    const char *topic, size_t len, char *out, size_t cap,
		    struct rules_match *m);

/* Does some rule send out (so that a queue is needed)? */
bool		 rules_any_out(const struct rules *r);

/*
 * The filters to subscribe to at AWS: remote_prefix + topic of every rule
 * that receives, in rule order, each filter once at the highest QoS its
 * rules ask for, capped at 1 (AWS IoT has no QoS 2). i < rules_filters().
 * The string belongs to r.
 */
size_t		 rules_filters(const struct rules *r);
const char	*rules_filter(const struct rules *r, size_t i, uint8_t *qos);

const char	*rules_strerror(enum rules_status st);

#endif
