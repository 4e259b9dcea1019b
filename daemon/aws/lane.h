/*
 * A lane is one connection to AWS IoT with everything AWS counts per
 * connection: its MQTT session (uplink.c) over its transport, its reader
 * of the queue, the drain pump, and the publish-rate, bandwidth and
 * drain-rate buckets. The bridge owns the queue and the rules and keeps a
 * list of lanes (one today); a lane sends what it reads from the queue, in
 * order, within AWS's limits, and says which records are done and what
 * AWS sent, naming itself.
 */
#ifndef IOTB_LANE_H
#define IOTB_LANE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/aws/uplink.h"

struct event_base;
struct evdns_base;
struct cfg;
struct queue;
struct mqtt_publish;
struct lane;

/* A queue record flag: the message is published with RETAIN. */
#define LANE_FLAG_RETAIN	0x01

struct lane_ops {
	/* Record seq is done: AWS acknowledged it (QoS 1) or it was handed
	 * to the socket (QoS 0); the lane has acknowledged it in the queue. */
	void	(*delivered)(void *arg, struct lane *l, uint64_t seq);
	/* AWS sent a message to a subscription of this lane. */
	void	(*message)(void *arg, struct lane *l,
		    const struct mqtt_publish *pub);
};

struct lane_stats {
	struct uplink_status	up;
	bool			backlog;	/* draining at drain_hz */
	uint64_t		sent;		/* handed to the session */
	uint64_t		acked;		/* acknowledged in the queue */
};

/*
 * Lane number index for cfg (borrowed as by uplink_new()), reading q
 * (NULL until some rule sends out; borrowed) and subscribing to subs. NULL
 * when out of memory or the aws settings cannot be used (logged).
 */
struct lane	*lane_new(struct event_base *base, struct evdns_base *dns,
		    const struct cfg *cfg, struct queue *q,
		    const struct uplink_subs *subs, unsigned index,
		    const struct lane_ops *ops, void *arg);

/* New settings (see uplink_reload()): the buckets and the drain take them
 * at once. -1 when the aws settings cannot be used (logged). */
int		 lane_reload(struct lane *l, const struct cfg *cfg,
		    const struct uplink_subs *subs);

/* The queue to read from now on (it opened after a reload). */
void		 lane_set_queue(struct lane *l, struct queue *q);

/* Stop the session, free. NULL is a no-op. */
void		 lane_free(struct lane *l);

/* Something was appended: send it when the lane may. */
void		 lane_pump_soon(struct lane *l);

/* The lowest sequence number in flight on this lane; false when none. */
bool		 lane_first_inflight(const struct lane *l, uint64_t *seq);

void		 lane_stats(const struct lane *l, struct lane_stats *st);

#endif
