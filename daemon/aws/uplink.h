/*
 * The MQTT 3.1.1 client session towards AWS IoT, over a transport
 * (transport.h) it does not look behind: CONNECT, the subscriptions of the
 * "in" rules, publishes carrying the caller's cookie (the queue sequence
 * number) back with their acknowledgement, keepalive and operation
 * timeouts, progressive reconnect backoff, and planned reconnects ahead of
 * AWS's connection age limit. What to publish and when is the lane's
 * business (lane.c); the session tells it when the connection can take
 * messages, which are done, and what AWS sent.
 */
#ifndef IOTB_UPLINK_H
#define IOTB_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct event_base;
struct cfg;
struct mqtt_publish;
struct transport;
struct uplink;

enum uplink_state {
	UPLINK_OFF,		/* no aws section */
	UPLINK_WAITING,		/* backing off until the next attempt */
	UPLINK_CONNECTING,	/* transport .. CONNACK */
	UPLINK_SUBSCRIBING,	/* CONNACK received, SUBACKs awaited */
	UPLINK_ONLINE,
	UPLINK_STOPPED,		/* shutting down */
};
#define UPLINK_NSTATES	(UPLINK_STOPPED + 1)

/* What the session tells its owner; arg is the one given to uplink_new(). */
struct uplink_ops {
	/* Connected and subscribed: publishing may start (resends first). */
	void	(*online)(void *arg);
	/* The connection ended; nothing sent on it will be done now. */
	void	(*offline)(void *arg);
	/* A publish is done: AWS acknowledged it (QoS 1), or it was handed to
	 * the socket (QoS 0). cookie: as given to uplink_publish(). */
	void	(*done)(void *arg, uint64_t cookie);
	/* Everything written so far has left for the socket: room for more. */
	void	(*drained)(void *arg);
	/* AWS delivered a message; its QoS 1 PUBACK goes out on return. */
	void	(*message)(void *arg, const struct mqtt_publish *pub);
};

/* The filters to subscribe to, with their QoS; copied by the session. */
struct uplink_subs {
	const char *const	*filter;
	const uint8_t		*qos;
	size_t			 n;
};

struct uplink_status {
	enum uplink_state state;
	char		 last_error[256];	/* "" when none yet */
	uint64_t	 attempts;		/* connection attempts */
	uint64_t	 connects;		/* successful ones (CONNACK) */
	uint64_t	 failures;
	uint64_t	 disconnects;
	uint64_t	 next_attempt_ms;	/* WAITING: ms from now */
	uint64_t	 connected_ms;		/* ONLINE: for how long */
	int64_t		 clock_offset_s;	/* added to the local clock to sign */
	uint64_t	 publishes;		/* PUBLISH sent */
	uint64_t	 received;		/* PUBLISH received */
	uint64_t	 bytes_out;
	uint64_t	 bytes_in;
	unsigned	 inflight;		/* QoS 1 awaiting PUBACK */
	unsigned	 subscriptions;		/* granted by AWS */
};

/*
 * A session over transport t (owned from now on, freed with the session)
 * for cfg (borrowed until uplink_reload() or uplink_free()), subscribing to
 * subs; name prefixes its log lines ("uplink"). Without an aws section it
 * stays UPLINK_OFF; otherwise it starts connecting. NULL when out of memory.
 */
struct uplink	*uplink_new(struct event_base *base, const struct cfg *cfg,
		    struct transport *t, const struct uplink_subs *subs,
		    const char *name, const struct uplink_ops *ops, void *arg);

/*
 * Take a new config and subscriptions: when what the connection was made
 * from changed (the transport's settings, the client id, the keepalive, the
 * subscriptions), the session closes and connects again at once; otherwise
 * the connection is untouched. -1 when the new settings cannot be used
 * (logged): the session stays off until a reload fixes them.
 */
int		 uplink_reload(struct uplink *u, const struct cfg *cfg,
		    const struct uplink_subs *subs);

/* DISCONNECT, close, free. NULL is a no-op. */
void		 uplink_free(struct uplink *u);

/* Online, not pausing for a planned reconnect, with room in the output. */
bool		 uplink_ready(const struct uplink *u);

/*
 * Publish at QoS 0 or 1 (AWS has no 2); cookie comes back through
 * ops->done. Returns 0, or -1 when the session is not online or out of
 * memory (nothing sent).
 */
int		 uplink_publish(struct uplink *u, struct buf_view topic,
		    struct buf_view payload, uint8_t qos, bool retain, bool dup,
		    uint64_t cookie);

/* The smallest cookie among the publishes not done yet; false when none. */
bool		 uplink_first_cookie(const struct uplink *u, uint64_t *cookie);

void		 uplink_status(const struct uplink *u, struct uplink_status *st);
const char	*uplink_state_name(enum uplink_state s);

#endif
