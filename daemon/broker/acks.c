/*
 * The acknowledgements a session owes its device for the messages it
 * published: PUBACK or PUBREC for packet id P, due now, once queue record N
 * is durable (ack: stored) or once AWS acknowledged N (ack: delivered).
 *
 * Each session keeps what it owes in packet order and sends from the head
 * only, so a device sees its acknowledgements in the order it published
 * (MQTT-4.6.0-2/3) even when AWS answers out of order or when one rule
 * waits for storage and another for delivery. The broker indexes what is
 * still pending: one list per kind in sequence order (appends get rising
 * sequence numbers) and, for delivery, a map by sequence number, so that
 * "durable up to N", "delivered N" and "dropped below N" each touch only
 * the entries they settle. A session that goes takes its entries with it:
 * nothing is ever sent to a device that is gone, and the message stays in
 * the queue as it would have anyway.
 *
 * A message the bridge could not store is owed nothing on an MQTT 3.1.1
 * connection, which cannot say "no" in a PUBACK: its entry is withheld,
 * holding back the ones behind it (packet order), until the connection
 * closes and takes it along (acks_connection_lost()). The device then
 * sends it again, as MQTT 3.1.1 has it for every unacknowledged message.
 */
#include "daemon/broker/broker_int.h"

#include <stdlib.h>

#include "daemon/util/log.h"

struct owed {
	TAILQ_ENTRY(owed)	 in_session;	/* packet order */
	TAILQ_ENTRY(owed)	 pending;	/* the broker's list, seq order */
	struct session		*s;
	uint64_t		 seq;
	uint16_t		 pid;
	uint8_t			 type;		/* MQTT_PUBACK or MQTT_PUBREC */
	uint8_t			 reason;
	enum broker_fate	 fate;		/* BROKER_ACK once settled */
};

static void
send_ack(struct session *s, const struct owed *o)
{
	struct client *c = s->client;

	/* a persistent session without its client, or one closing: the
	 * acknowledgement is lost with the connection, as MQTT has it */
	if (c != NULL && c->state == CLIENT_S_ONLINE)
		client_send_ack(c, o->type, o->pid,
		    c->version == MQTT_V5 ? o->reason : 0);
}

/* Send what heads the session's list and is settled, in order. */
static void
flush(struct session *s)
{
	struct owed *o;

	while ((o = TAILQ_FIRST(&s->owed)) != NULL && o->fate == BROKER_ACK) {
		TAILQ_REMOVE(&s->owed, o, in_session);
		send_ack(s, o);
		free(o);
	}
}

static struct owed_list *
pending_list(struct broker *b, enum broker_fate fate)
{
	return fate == BROKER_ACK_STORED ? &b->owed_stored :
	    &b->owed_delivered;
}

/* Take o off the broker's index: it is settled or its session is gone. */
static void
unindex(struct broker *b, struct owed *o)
{
	if (o->fate != BROKER_ACK_STORED && o->fate != BROKER_ACK_DELIVERED)
		return;
	TAILQ_REMOVE(pending_list(b, o->fate), o, pending);
	if (o->fate == BROKER_ACK_DELIVERED)
		(void)hmap_del(&b->owed_by_seq, &o->seq, sizeof(o->seq));
}

static void
settle(struct broker *b, struct owed *o, uint8_t reason)
{
	unindex(b, o);
	o->fate = BROKER_ACK;
	o->reason = reason;
	flush(o->s);
}

void
acks_owe(struct broker *b, struct session *s, enum mqtt_type type,
    uint16_t pid, uint8_t reason, enum broker_fate fate, uint64_t seq)
{
	struct owed *o;

	if (fate != BROKER_ACK_STORED && fate != BROKER_ACK_DELIVERED &&
	    fate != BROKER_WITHHELD)
		fate = BROKER_ACK;
	/* nothing ahead of it: the common case costs nothing */
	if (fate == BROKER_ACK && TAILQ_EMPTY(&s->owed)) {
		struct owed now = { .type = (uint8_t)type, .pid = pid,
		    .reason = reason };

		send_ack(s, &now);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		if (fate == BROKER_WITHHELD)
			return;	/* never sent anyway; the connection closes */
		/* cannot wait for it: acknowledged now rather than never */
		struct owed now = { .type = (uint8_t)type, .pid = pid };

		log_warnx("out of memory: acknowledging id=%s pid=%u early",
		    s->id, pid);
		send_ack(s, &now);
		return;
	}
	*o = (struct owed){ .s = s, .seq = seq, .pid = pid,
	    .type = (uint8_t)type, .reason = reason, .fate = fate };
	if (fate == BROKER_ACK_DELIVERED &&
	    !hmap_put(&b->owed_by_seq, &o->seq, sizeof(o->seq), o, NULL)) {
		log_warnx("out of memory: acknowledging id=%s pid=%u once "
		    "stored", s->id, pid);
		o->fate = fate = BROKER_ACK_STORED;
	}
	TAILQ_INSERT_TAIL(&s->owed, o, in_session);
	if (fate == BROKER_ACK_STORED || fate == BROKER_ACK_DELIVERED)
		TAILQ_INSERT_TAIL(pending_list(b, fate), o, pending);
}

void
acks_durable(struct broker *b, uint64_t seq)
{
	struct owed *o;

	while ((o = TAILQ_FIRST(&b->owed_stored)) != NULL && o->seq <= seq)
		settle(b, o, 0);
}

void
acks_delivered(struct broker *b, uint64_t seq, uint8_t reason)
{
	struct owed *o;

	if (b->owed_by_seq.count == 0)
		return;
	if ((o = hmap_get(&b->owed_by_seq, &seq, sizeof(seq))) != NULL)
		settle(b, o, reason);
}

void
acks_undelivered_below(struct broker *b, uint64_t seq, uint8_t reason)
{
	struct owed *o;

	while ((o = TAILQ_FIRST(&b->owed_delivered)) != NULL && o->seq < seq)
		settle(b, o, reason);
}

bool
acks_awaiting_delivery(const struct broker *b, uint64_t *lowest)
{
	const struct owed *o = TAILQ_FIRST(&b->owed_delivered);

	if (o == NULL)
		return false;
	*lowest = o->seq;
	return true;
}

void
acks_session_free(struct broker *b, struct session *s)
{
	struct owed *o;

	while ((o = TAILQ_FIRST(&s->owed)) != NULL) {
		TAILQ_REMOVE(&s->owed, o, in_session);
		unindex(b, o);
		free(o);
	}
}

/*
 * The session's connection ended: what was withheld can never be sent, nor
 * can anything behind it on that connection (the device resends what it
 * was not acknowledged). Entries still waiting for the queue stay, as
 * before: they go to the session's next connection, if any, once settled.
 */
void
acks_connection_lost(struct broker *b, struct session *s)
{
	struct owed *o, *next;
	bool cut = false;

	for (o = TAILQ_FIRST(&s->owed); o != NULL; o = next) {
		next = TAILQ_NEXT(o, in_session);
		if (o->fate == BROKER_WITHHELD)
			cut = true;
		if (!cut || (o->fate != BROKER_WITHHELD &&
		    o->fate != BROKER_ACK))
			continue;
		TAILQ_REMOVE(&s->owed, o, in_session);
		free(o);
	}
}
