/*
 * The one connection to AWS IoT Core: DNS, TCP, an optional HTTP proxy
 * tunnel, TLS, the SigV4-signed WebSocket upgrade, and an MQTT 3.1.1 client
 * on top, with keepalive, operation timeouts, the subscriptions of the "in"
 * bridge rules, progressive reconnect backoff, clock-skew correction and
 * planned reconnects ahead of AWS's connection age limit. What to publish
 * and when is the bridge's business (bridge.c); the uplink tells it when the
 * connection can take messages, which were acknowledged, and what AWS sent.
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
struct uplink;

enum uplink_state {
	UPLINK_OFF,		/* no aws section */
	UPLINK_WAITING,		/* backing off until the next attempt */
	UPLINK_CONNECTING,	/* DNS .. CONNACK */
	UPLINK_SUBSCRIBING,	/* CONNACK received, SUBACKs awaited */
	UPLINK_ONLINE,
	UPLINK_STOPPED,		/* shutting down */
};

/* What the uplink tells its owner; arg is the one given to uplink_new(). */
struct uplink_ops {
	/* Connected and subscribed: publishing may start (resends first). */
	void	(*online)(void *arg);
	/* The connection ended; nothing sent on it will be acknowledged. */
	void	(*offline)(void *arg);
	/* AWS acknowledged the QoS 1 PUBLISH with this packet id. */
	void	(*acked)(void *arg, uint16_t pid);
	/* Everything written so far has left for the socket: QoS 0 messages
	 * are done, and there is room for more. */
	void	(*drained)(void *arg);
	/* AWS delivered a message; its QoS 1 PUBACK goes out on return. */
	void	(*message)(void *arg, const struct mqtt_publish *pub);
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
 * Start the uplink of cfg (which must stay valid until uplink_reload() gives
 * another or uplink_free()). Without an aws section it stays UPLINK_OFF.
 * Returns NULL when out of memory or when the TLS context cannot be made
 * (logged).
 */
struct uplink	*uplink_new(struct event_base *base, const struct cfg *cfg,
		    const struct uplink_ops *ops, void *arg);

/* Take a new config: when what the connection was made from changed, it is
 * closed and made again at once; otherwise nothing happens to it. -1 when
 * the new settings cannot be used (aws.ca_file unreadable: logged), and the
 * uplink stays off until a reload fixes them. */
int		 uplink_reload(struct uplink *u, const struct cfg *cfg);

/* Send DISCONNECT, close, free. NULL is a no-op. */
void		 uplink_free(struct uplink *u);

/* Online, not pausing for a planned reconnect, with room in the output. */
bool		 uplink_ready(const struct uplink *u);

/*
 * Publish on the connection: QoS 0 or 1 (the bridge never asks for 2). *pid
 * receives the packet id of a QoS 1 message (0 for QoS 0). Returns 0, or -1
 * when the connection is not online or out of memory (nothing sent).
 */
int		 uplink_publish(struct uplink *u, struct buf_view topic,
		    struct buf_view payload, uint8_t qos, bool retain, bool dup,
		    uint16_t *pid);

void		 uplink_status(const struct uplink *u, struct uplink_status *st);
const char	*uplink_state_name(enum uplink_state s);

#endif
