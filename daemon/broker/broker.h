/*
 * The LAN-side MQTT broker: listeners, client connections, sessions, routing,
 * retained messages and $SYS statistics, all on the daemon's event base.
 */
#ifndef IOTB_BROKER_H
#define IOTB_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct cfg;
struct broker;

/*
 * Create the broker and bind every listener of cfg. cfg is borrowed and must
 * stay valid until broker_reload() is given a new one or broker_free(). NULL
 * when a listener cannot be bound (logged).
 */
struct broker	*broker_new(struct event_base *base, const struct cfg *cfg);

/*
 * Apply a new configuration: listeners that did not change keep running with
 * their clients, new ones are bound, removed ones are closed with their
 * clients; limits apply to new packets and connections. Returns 0, or -1 when
 * some new listener could not be bound (logged; the others are applied). The
 * caller frees the old cfg afterwards.
 */
int		 broker_reload(struct broker *b, const struct cfg *cfg);

/* Close every connection and listener and free everything. NULL is a no-op. */
void		 broker_free(struct broker *b);

/* Offer local clients' messages to the bridge from now on (NULL: stop). */
struct bridge;
void		 broker_set_bridge(struct broker *b, struct bridge *br);

/*
 * What the AWS side tells the broker. A message that came down from AWS,
 * under its local topic: published to the local subscribers (and retained
 * when it says so), never offered back up. The bytes are copied. 0, or -1
 * when out of memory.
 */
int		 broker_publish_remote(struct broker *b, const char *topic,
		    size_t tlen, const void *payload, size_t plen, uint8_t qos,
		    bool retain);

/* Publish a retained $SYS value (at most 255 bytes, else nothing). */
void		 broker_sys_publish(struct broker *b, const char *topic,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Settling the acknowledgements devices wait for, in each device's packet
 * order; each call touches only what it settles. Every queue record up to
 * seq is durable: what is owed under ack: stored goes out.
 */
void		 broker_acks_durable(struct broker *b, uint64_t seq);

/* AWS acknowledged record seq (reason 0), or it left the queue without
 * (reason 0x97, which MQTT 5 devices are told): what is owed for it under
 * ack: delivered goes out. */
void		 broker_acks_delivered(struct broker *b, uint64_t seq,
		    uint8_t reason);

/* Every record below seq that a device still waits for under ack:
 * delivered left the queue undelivered (dropped while the queue was full). */
void		 broker_acks_undelivered_below(struct broker *b, uint64_t seq,
		    uint8_t reason);

/* Does some device wait for the delivery of a record? *lowest: the lowest
 * such sequence number. */
bool		 broker_acks_awaiting_delivery(const struct broker *b,
		    uint64_t *lowest);

/* A one-line summary for logs and STATUS=. */
void		 broker_summary(const struct broker *b, char *buf, size_t cap);

/* What status and metrics show of the broker (broker_counts()). */
struct broker_counts {
	size_t		clients;	/* connected now */
	size_t		sessions;	/* known: connected, or kept offline */
	uint64_t	msgs_in;	/* PUBLISH received from clients */
	uint64_t	msgs_out;	/* PUBLISH sent to clients */
	uint64_t	msgs_dropped;	/* queue full, slow subscriber */
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	uptime_ms;	/* since broker_new() */
};

/* Fill c with the broker's counters as they are now. */
void		 broker_counts(const struct broker *b, struct broker_counts *c);

#endif
