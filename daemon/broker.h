/*
 * The LAN-side MQTT broker: listeners, client connections, sessions, routing,
 * retained messages and $SYS statistics, all on the daemon's event base.
 */
#ifndef IOTB_BROKER_H
#define IOTB_BROKER_H

#include <stddef.h>

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

/* A one-line summary for logs and STATUS=. */
void		 broker_summary(const struct broker *b, char *buf, size_t cap);

#endif
