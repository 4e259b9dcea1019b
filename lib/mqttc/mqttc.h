/*
 * The pure half of an MQTT client session (the uplink to AWS IoT): packet
 * ids, the one table of packets awaiting an answer, each carrying the
 * caller's opaque cookie (the queue's sequence number) back with its
 * acknowledgement, the QoS 0 publishes awaiting the socket, and the
 * decisions the clock drives: when to send PINGREQ, which answer is overdue,
 * and how long to wait before the next connection attempt. No I/O, no clock,
 * no randomness of its own: times (monotonic milliseconds) and random
 * numbers come in as arguments.
 *
 * Lookups by packet id are O(1): ids are chosen so that each one has a slot
 * of its own in a table sized to a power of two at least twice the number in
 * flight. Per kind, the records also form a list in sending order, so the
 * oldest (the first to time out) is at hand without a scan.
 */
#ifndef IOTB_MQTTC_H
#define IOTB_MQTTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/backoff.h"

#define MQTTC_MAX_INFLIGHT	65535u	/* packet ids are 16 bits, 0 is not one */

enum mqttc_status {
	MQTTC_OK = 0,
	MQTTC_UNKNOWN,		/* ack: no packet of that kind awaits this id */
	MQTTC_FULL,		/* add: MQTTC_MAX_INFLIGHT await answers already */
	MQTTC_NOMEM,
};

enum mqttc_kind {
	MQTTC_PING = 0,		/* PINGREQ awaiting PINGRESP (mqttc_overdue() only) */
	MQTTC_PUBLISH,		/* QoS 1 PUBLISH awaiting PUBACK */
	MQTTC_SUBSCRIBE,	/* SUBSCRIBE awaiting SUBACK */
	MQTTC_NKINDS,
};

/* A packet awaiting its answer, as mqttc_ack() and friends hand it back. */
struct mqttc_op {
	enum mqttc_kind	 kind;
	uint16_t	 pid;		/* 0 for MQTTC_PING */
	uint64_t	 cookie;	/* the caller's, as given to mqttc_add() */
	uint64_t	 sent_ms;
};

struct mqttc;

/* An empty session: no keepalive, no operation timeout (see
 * mqttc_set_timing()). NULL when out of memory. */
struct mqttc	*mqttc_new(void);
/* NULL is a no-op. */
void		 mqttc_free(struct mqttc *m);

/* keepalive_ms: idle time after which a PINGREQ is due (0: never);
 * op_timeout_ms: how long any answer may take (0: forever). */
void		 mqttc_set_timing(struct mqttc *m, uint64_t keepalive_ms,
		    uint64_t op_timeout_ms);

/* A new connection: every record and the pending PINGREQ are forgotten
 * (what they were for is the caller's to resend), and the keepalive counts
 * from now_ms. Packet ids continue where they were. */
void		 mqttc_reset(struct mqttc *m, uint64_t now_ms);

/*
 * Record a PUBLISH or SUBSCRIBE sent at now_ms and give it a packet id, one
 * that no record holds, in *pid. cookie is kept and handed back.
 *   MQTTC_OK, MQTTC_FULL (no id is free), MQTTC_NOMEM (nothing changed)
 */
enum mqttc_status mqttc_add(struct mqttc *m, enum mqttc_kind kind,
		    uint64_t cookie, uint64_t now_ms, uint16_t *pid);

/* Forget the record of pid (the packet could not be sent after all).
 * Returns whether there was one. */
bool		 mqttc_cancel(struct mqttc *m, uint16_t pid);

/*
 * The answer for pid came (PUBACK: kind MQTTC_PUBLISH, SUBACK:
 * MQTTC_SUBSCRIBE): the record goes, and *op (may be NULL) receives it.
 *   MQTTC_OK, MQTTC_UNKNOWN (none of that kind holds pid: a late duplicate,
 *   or an answer of the wrong kind; nothing changed)
 */
enum mqttc_status mqttc_ack(struct mqttc *m, enum mqttc_kind kind,
		    uint16_t pid, struct mqttc_op *op);

/* How many records of kind await answers (MQTTC_PING: 0 or 1). */
size_t		 mqttc_count(const struct mqttc *m, enum mqttc_kind kind);

/* The record of kind sent first and still unanswered. false when none. */
bool		 mqttc_oldest(const struct mqttc *m, enum mqttc_kind kind,
		    struct mqttc_op *op);

/*
 * QoS 0 publishes have no answer: they are done once everything written
 * before them has left for the socket. Append one (MQTTC_OK, MQTTC_NOMEM);
 * pop them oldest first once the output drained.
 */
enum mqttc_status mqttc_add_qos0(struct mqttc *m, uint64_t cookie);
bool		 mqttc_qos0_pop(struct mqttc *m, uint64_t *cookie);
size_t		 mqttc_qos0_count(const struct mqttc *m);

/*
 * The smallest cookie among the publishes still in flight, QoS 1 awaiting
 * PUBACK and QoS 0 awaiting the socket, for a caller that sends in
 * ascending cookie order (the queue's). false when none is in flight.
 */
bool		 mqttc_first_cookie(const struct mqttc *m, uint64_t *cookie);

/* A packet of any kind left at now_ms: the keepalive counts from there. */
void		 mqttc_sent(struct mqttc *m, uint64_t now_ms);

enum mqttc_ka {
	MQTTC_KA_WAIT,		/* nothing to do for *wait_ms */
	MQTTC_KA_PING,		/* idle for the keepalive: send PINGREQ now */
};

/*
 * What the keepalive asks for at now_ms. *wait_ms is how long until it may
 * ask for something (UINT64_MAX: never, without a keepalive). While a
 * PINGREQ awaits its answer no other is asked for; mqttc_overdue() watches
 * that one.
 */
enum mqttc_ka	 mqttc_keepalive(const struct mqttc *m, uint64_t now_ms,
		    uint64_t *wait_ms);

/* A PINGREQ left at now_ms (call mqttc_sent() too); its PINGRESP came. */
void		 mqttc_ping_sent(struct mqttc *m, uint64_t now_ms);
void		 mqttc_pong(struct mqttc *m);

/*
 * Has any answer, PINGRESP included, taken op_timeout or longer at now_ms?
 * true: *late (may be NULL) is the oldest such. false: *wait_ms is how long
 * until the oldest one would be (UINT64_MAX when nothing is awaited or
 * there is no timeout).
 */
bool		 mqttc_overdue(const struct mqttc *m, uint64_t now_ms,
		    struct mqttc_op *late, uint64_t *wait_ms);

const char	*mqttc_strerror(enum mqttc_status st);

/* ---- between connections ------------------------------------------------ */

/* AWS throttles CONNECTs of one client id: attempts start at least this far
 * apart, whatever the backoff says. */
#define MQTTC_CONNECT_PACE_MS	1000
/* AWS closes the older connection of a client id as soon as another one
 * connects with it: connections that end within MQTTC_SHORT_LIVED_MS of
 * CONNACK, MQTTC_SHORT_LIVED_MAX times in a row, mean a duplicate id. */
#define MQTTC_SHORT_LIVED_MS	5000
#define MQTTC_SHORT_LIVED_MAX	3

/* How a connection or an attempt ended. */
enum mqttc_end {
	MQTTC_END_FAILED,	/* the attempt never reached CONNACK */
	MQTTC_END_LOST,		/* an established connection ended */
	MQTTC_END_PLANNED,	/* closed by us, to reconnect at once */
	MQTTC_END_RETRY,	/* failed, but its cause is fixed: at once */
};

struct mqttc_retry {
	struct backoff	bo;
	unsigned	short_lived;	/* lost soon after CONNACK, in a row */
	bool		dup_warned;
};

/* What the waiting state does. */
struct mqttc_wait {
	uint64_t	delay_ms;	/* until the next attempt */
	bool		duplicate;	/* probably another client uses our id:
					 * backed off to the maximum */
	bool		warn;		/* duplicate, and not said before */
};

/* The backoff's parameters (see backoff.h), attempt count at 0. */
void		 mqttc_retry_init(struct mqttc_retry *r, uint64_t base_ms,
		    uint64_t max_ms, uint64_t stable_ms, bool jitter);
/* New parameters, keeping the attempt count: a reload is no stable
 * connection. */
void		 mqttc_retry_params(struct mqttc_retry *r, uint64_t base_ms,
		    uint64_t max_ms, uint64_t stable_ms, bool jitter);

/*
 * The delay before the next attempt after an end. was_up: CONNACK had come,
 * up_ms ago; since_attempt_ms: since the last attempt started; rnd: a
 * uniformly random 32-bit value for the jitter. A connection up for
 * `stable` resets the backoff; planned and retry ends go at once; a
 * duplicate client id backs off to the maximum; and attempts are paced.
 */
void		 mqttc_retry_next(struct mqttc_retry *r, enum mqttc_end end,
		    bool was_up, uint64_t up_ms, uint64_t since_attempt_ms,
		    uint32_t rnd, struct mqttc_wait *w);

#endif
