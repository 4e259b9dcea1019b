/*
 * The AWS side as the rest of the daemon sees it: the bridge rules, the
 * offline queue, and the lanes to AWS (lane.h; one today). A device's
 * message that an "out" rule matches is checked against AWS IoT Core's
 * rules (refused ones go to the dead-letter file), appended to the queue,
 * and owed to the device once durable (ack: stored) or once AWS
 * acknowledged it (ack: delivered): the bridge says which record, and
 * settles it later through broker.h. The queue drains through the lanes in
 * order, within AWS's in-flight window, publish rate and bandwidth, and at
 * queue.drain_hz while there is a backlog. Messages from AWS that an "in"
 * rule matches go to the broker as messages from AWS, which the broker
 * never offers back up.
 */
#ifndef IOTB_BRIDGE_H
#define IOTB_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/aws/uplink.h"
#include "queue/queue.h"

struct event_base;
struct cfg;
struct broker;
struct bridge;
struct uplink_status;

/*
 * Open the queue (when some rule sends out) and start the lanes (when cfg
 * has an aws section). cfg is borrowed as by broker_new(); b must outlive
 * the bridge. A queue that cannot be opened (read-only or failing disk,
 * permissions, a lock held by another process) does not stop anything
 * else: the bridge is failed, says why in its stats, refuses what it
 * cannot store (BRIDGE_UNSTORED), and tries the queue again periodically
 * and at every reload. NULL only when out of memory or the rules cannot be
 * compiled (logged).
 */
struct bridge	*bridge_new(struct event_base *base, const struct cfg *cfg,
		    struct broker *b);

/*
 * New rules and limits. The queue opens when rules that send out appear, or
 * is tried again when it failed; changes to an open queue's settings need a
 * restart (logged). Returns 0, or -1 when the queue cannot be opened or the
 * uplink cannot start with the
 * new settings (logged; it starts again at the next reload that fixes it).
 */
int		 bridge_reload(struct bridge *br, const struct cfg *cfg);

/* Stop the lanes, sync and checkpoint the queue (what is durable then is
 * acknowledged to the devices), free. NULL is a no-op. */
void		 bridge_free(struct bridge *br);

/* A device's message, as the broker offers it; borrowed for the call. */
struct bridge_msg {
	const char	*topic;
	size_t		 topic_len;
	const uint8_t	*payload;
	size_t		 payload_len;
	uint8_t		 qos;
	bool		 retain;
};

enum bridge_verdict {
	BRIDGE_ACK,		/* acknowledge to the device now */
	BRIDGE_STORED,		/* once record *seq is durable
				 * (broker_acks_durable()) */
	BRIDGE_DELIVERED,	/* once AWS acknowledged record *seq
				 * (broker_acks_delivered()) */
	BRIDGE_REFUSED,		/* the queue is full under drop: newest: a
				 * policy, the device may be told so */
	BRIDGE_UNSTORED,	/* the queue could not store it (disk full or
				 * failing, queue failed to open): it must not
				 * be acknowledged as stored */
};

/*
 * A local device's message: queued for AWS when an "out" rule matches and
 * AWS's rules allow it. seq NULL: nothing is owed to the device for it
 * (QoS 0, a will), so BRIDGE_ACK, BRIDGE_REFUSED or BRIDGE_UNSTORED only.
 */
enum bridge_verdict bridge_offer(struct bridge *br, const struct bridge_msg *m,
		    uint64_t *seq);

/* $SYS/broker/uplink/... and $SYS/broker/queue/...: the rows of
 * stats_table (stats.h) that have a topic. */
void		 bridge_sys(struct bridge *br);

/* A one-line summary for logs and STATUS=. */
void		 bridge_summary(struct bridge *br, char *buf, size_t cap);

/* Everything status, $SYS and metrics show of the bridge; stats_table
 * (stats.h) lists each value with its names. */
struct bridge_stats {
	struct uplink_status	up;
	const char		*last_error;	/* up.last_error */
	bool			queue_open;	/* some rule sends out */
	const char		*queue_state;	/* "open", "failed", "off" */
	int64_t			queue_failed;	/* 1: cannot be opened */
	const char		*queue_error;	/* why it failed, or why the
						 * last append failed; "" */
	struct queue_stats	q;		/* zero when !queue_open */
	uint64_t		oldest_age_ms;	/* of the oldest queued message */
	bool			backlog;	/* draining at drain_hz */
	bool			disk_full;	/* the last append failed on disk */
	int64_t			drain_hz;
	const char		*fsync;		/* "always", "interval", "never" */
	uint64_t		queued;		/* appended since start */
	uint64_t		sent;		/* handed to the uplink */
	uint64_t		acked;		/* acknowledged by AWS (or QoS 0 sent) */
	uint64_t		from_aws;	/* received and published locally */
	uint64_t		refused;	/* by AWS's rules, never sent */
	uint64_t		dead_letters;	/* of those, written to the file */
	uint64_t		downgraded;	/* QoS 2 sent as QoS 1 */
	uint64_t		unstored;	/* refused: could not be stored */
};

/* Fill st; its strings belong to st (last_error) or are static. */
void		 bridge_stats(struct bridge *br, struct bridge_stats *st);

#endif
