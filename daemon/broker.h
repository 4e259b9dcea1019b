/*
 * The LAN-side MQTT broker: listeners, client connections, sessions, routing,
 * retained messages and $SYS statistics, all on the daemon's event base.
 */
#ifndef IOTB_BROKER_H
#define IOTB_BROKER_H

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
