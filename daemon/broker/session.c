/*
 * Sessions: what the broker keeps for one client id, connected or not. Its
 * subscriptions (also in the broker's trie), its outgoing QoS 1/2 messages
 * (a window of in-flight ones, then a bounded queue), and the ids of incoming
 * QoS 2 messages that wait for PUBREL (so that a resent PUBLISH is not routed
 * twice). A persistent session outlives its connection until it expires.
 */
#include "daemon/broker/broker_int.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/util/log.h"

struct session *
session_find(struct broker *b, const char *id, size_t len)
{
	return hmap_get(&b->sessions, id, len);
}

struct session *
session_new(struct broker *b, const char *id, size_t len)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->id = malloc(len + 1)) == NULL)
		goto fail;
	memcpy(s->id, id, len);
	s->id[len] = '\0';
	s->id_len = len;
	TAILQ_INIT(&s->subs);
	TAILQ_INIT(&s->out);
	TAILQ_INIT(&s->owed);
	if (!hmap_put(&b->sessions, s->id, s->id_len, s, NULL))
		goto fail;
	return s;
fail:
	free(s->id);
	free(s);
	return NULL;
}

/* ---- retained messages for new subscriptions ----------------------------- */

static void
retained_clear(struct session *s)
{
	for (size_t i = s->ret_head; i < s->nret; i++)
		msg_unref(s->ret[i].m);
	free(s->ret);
	s->ret = NULL;
	s->ret_head = s->nret = s->capret = 0;
}

/*
 * Note a retained message for the session's client, to be sent by
 * session_pump(). A session holds at most limits.max_retained of them at a
 * time (more only with overlapping subscriptions to everything the broker
 * keeps): past that, or out of memory, the rest is skipped, counted and
 * logged, and false returned.
 */
bool
session_retained_add(struct broker *b, struct session *s, struct msg *m,
    uint8_t qos)
{
	size_t pending = s->nret - s->ret_head;

	if (pending >= (size_t)b->cfg->limits.max_retained + 64)
		goto skip;
	if (s->nret == s->capret) {
		size_t ncap = s->capret ? s->capret * 2 : 64;
		struct retained_out *n;

		if (s->ret_head > 0) {	/* slide the sent ones out first */
			memmove(s->ret, s->ret + s->ret_head,
			    pending * sizeof(*s->ret));
			s->ret_head = 0;
			s->nret = pending;
		} else if ((n = reallocarray(s->ret, ncap, sizeof(*n))) ==
		    NULL) {
			goto skip;
		} else {
			s->ret = n;
			s->capret = ncap;
		}
	}
	s->ret[s->nret++] = (struct retained_out){ msg_ref(m), qos };
	return true;
skip:
	if (b->stats.retained_skipped++ % 1000 == 0)
		log_warnx("retained messages skipped id=%s: %zu already waiting "
		    "for this client; skipped=%llu", s->id, pending,
		    (unsigned long long)b->stats.retained_skipped);
	return false;
}

/*
 * Send the next noted retained message if the client can take it now: a
 * QoS 0 one when its output has room, a QoS 1/2 one when the session's
 * queue has nothing unsent and the window has room (so that the queue does
 * not fill, and drop, with them). false: wait for the next pump.
 */
static bool
retained_pump_one(struct broker *b, struct session *s, size_t window)
{
	struct retained_out *r;
	struct outmsg *o;

	if (s->ret_head == s->nret)
		return false;
	if (!client_can_write(s->client) || (s->ret[s->ret_head].qos > 0 &&
	    (s->nqueued > 0 || s->ninflight >= window)))
		return false;
	r = &s->ret[s->ret_head];
	if (r->qos == 0) {
		(void)client_send_publish(s->client, r->m, 0, true, false, 0);
		msg_unref(r->m);
	} else {
		if ((o = calloc(1, sizeof(*o))) == NULL)
			return false;
		*o = (struct outmsg){ .m = r->m, .qos = r->qos, .retain = true,
		    .state = OUT_QUEUED };
		TAILQ_INSERT_TAIL(&s->out, o, entry);
		s->nqueued++;
		if (s->persistent)
			persist_touch(b);
	}
	if (++s->ret_head == s->nret)
		retained_clear(s);
	return true;
}

void
session_free(struct broker *b, struct session *s)
{
	struct outmsg *o;
	struct sub *sub;

	acks_session_free(b, s);
	if (s->persistent)
		persist_touch(b);
	if (s->offline) {
		TAILQ_REMOVE(&b->offline, s, expiry_entry);
		b->noffline--;
	}
	while ((sub = TAILQ_FIRST(&s->subs)) != NULL) {
		TAILQ_REMOVE(&s->subs, sub, entry);
		(void)trie_remove(b->subs, sub->filter, sub->len, sub);
		free(sub);
	}
	while ((o = TAILQ_FIRST(&s->out)) != NULL) {
		TAILQ_REMOVE(&s->out, o, entry);
		msg_unref(o->m);
		free(o);
	}
	retained_clear(s);
	(void)hmap_del(&b->sessions, s->id, s->id_len);
	free(s->qos2_in);
	free(s->username);
	free(s->id);
	free(s);
}

void
session_attach(struct broker *b, struct session *s, struct client *c)
{
	if (s->offline) {
		TAILQ_REMOVE(&b->offline, s, expiry_entry);
		b->noffline--;
		s->offline = false;
	}
	s->client = c;
}

/* The connection ended: a persistent session waits for its client, any other
 * goes away with everything it held. */
void
session_detach(struct broker *b, struct session *s)
{
	s->client = NULL;
	if (!s->persistent || s->expiry_ms == 0) {
		session_free(b, s);
		return;
	}
	persist_touch(b);
	s->offline_since_ms = broker_now_ms(b);
	s->offline = true;
	TAILQ_INSERT_TAIL(&b->offline, s, expiry_entry);
	b->noffline++;
	/* over the limit of kept sessions, the longest offline goes first */
	while (b->noffline > (size_t)b->cfg->broker.max_sessions) {
		struct session *old = TAILQ_FIRST(&b->offline);

		log_notice("session dropped id=%s reason=max_sessions",
		    old->id);
		session_free(b, old);
	}
}

void
session_expire(struct broker *b)
{
	uint64_t now = broker_now_ms(b);
	struct session *s;

	/* expiry times differ per session (MQTT 5), so scan the offline list;
	 * it is bounded by broker.max_sessions */
	for (s = TAILQ_FIRST(&b->offline); s != NULL;) {
		struct session *next = TAILQ_NEXT(s, expiry_entry);

		if (now - s->offline_since_ms >= s->expiry_ms) {
			log_info("session expired id=%s", s->id);
			session_free(b, s);
		}
		s = next;
	}
}

static uint16_t
session_next_pid(struct session *s)
{
	for (;;) {
		struct outmsg *o;
		bool used = false;

		if (++s->last_pid == 0)
			s->last_pid = 1;
		/* in flight entries sit at the head of the list */
		TAILQ_FOREACH(o, &s->out, entry) {
			if (o->state == OUT_QUEUED)
				break;
			if (o->pid == s->last_pid) {
				used = true;
				break;
			}
		}
		if (!used)
			return s->last_pid;
	}
}

/* Send queued messages while the window and the client's buffer allow. */
static void
session_pump_out(struct broker *b, struct session *s, size_t window)
{
	struct client *c = s->client;
	struct outmsg *o, *next;

	for (o = TAILQ_FIRST(&s->out); o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		if (o->state != OUT_QUEUED)
			continue;
		if (s->ninflight >= window || !client_can_write(c))
			break;
		if (!client_fits(c, o->m, o->qos)) {
			/* larger than the client's Maximum Packet Size: dropped
			 * as if delivered (MQTT-3.1.2-25), not left in flight */
			TAILQ_REMOVE(&s->out, o, entry);
			s->nqueued--;
			msg_unref(o->m);
			free(o);
			b->stats.msgs_dropped++;
			continue;
		}
		o->pid = session_next_pid(s);
		o->state = OUT_SENT;
		s->ninflight++;
		s->nqueued--;
		(void)client_send_publish(s->client, o->m, o->qos, o->retain,
		    false, o->pid);
	}
}

/* Send what waits: the queue, then retained messages for new
 * subscriptions, while the window and the client's buffer allow. */
void
session_pump(struct broker *b, struct session *s)
{
	struct client *c = s->client;
	size_t window = (size_t)b->cfg->limits.max_inflight;

	if (c == NULL)
		return;
	/* an MQTT 5 client may ask for a smaller window (Receive Maximum) */
	if (c->receive_max != 0 && c->receive_max < window)
		window = c->receive_max;
	do
		session_pump_out(b, s, window);
	while (retained_pump_one(b, s, window));
}

/* After a reconnect: everything in flight goes again, in order, PUBLISH
 * with DUP set and PUBREL as it was (MQTT-4.4.0-1). */
void
session_resend(struct broker *b, struct session *s)
{
	struct outmsg *o;

	TAILQ_FOREACH(o, &s->out, entry) {
		if (o->state == OUT_QUEUED)
			break;
		if (o->state == OUT_SENT)
			(void)client_send_publish(s->client, o->m, o->qos,
			    o->retain, true, o->pid);
		else
			client_send_ack(s->client, MQTT_PUBREL, o->pid, 0);
	}
	session_pump(b, s);
}

void
session_deliver(struct broker *b, struct session *s, struct msg *m,
    uint8_t qos, bool retain)
{
	struct outmsg *o;

	if (qos == 0) {
		/* QoS 0 is never stored for an offline client; a slow one
		 * loses it (counted) or is closed, per broker.slow_subscriber */
		if (s->client != NULL)
			(void)client_send_publish(s->client, m, 0, retain,
			    false, 0);
		return;
	}
	if (s->nqueued >= (size_t)b->cfg->limits.max_queued_messages) {
		b->stats.msgs_dropped++;
		log_debug("message dropped id=%s reason=queue_full", s->id);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		b->stats.msgs_dropped++;
		return;
	}
	o->m = msg_ref(m);
	o->qos = qos;
	o->retain = retain;
	o->state = OUT_QUEUED;
	TAILQ_INSERT_TAIL(&s->out, o, entry);
	s->nqueued++;
	if (s->persistent)
		persist_touch(b);
	session_pump(b, s);
}

/*
 * An acknowledgement from the client for one of our in-flight messages:
 * PUBACK ends QoS 1, PUBREC moves QoS 2 on to PUBREL, PUBCOMP ends it. An
 * unknown id is ignored (a duplicate after a resend). Returns whether the
 * window has room again.
 */
bool
session_ack(struct broker *b, struct session *s, enum mqtt_type type,
    uint16_t pid)
{
	struct outmsg *o;

	TAILQ_FOREACH(o, &s->out, entry) {
		if (o->state == OUT_QUEUED)
			return false;
		if (o->pid == pid)
			break;
	}
	if (o == NULL)
		return false;
	switch (type) {
	case MQTT_PUBACK:
		if (o->state != OUT_SENT || o->qos != 1)
			return false;
		break;
	case MQTT_PUBREC:
		if (o->state == OUT_SENT && o->qos == 2)
			o->state = OUT_RELEASED;
		if (o->state == OUT_RELEASED)
			client_send_ack(s->client, MQTT_PUBREL, pid, 0);
		return false;
	case MQTT_PUBCOMP:
		if (o->state != OUT_RELEASED)
			return false;
		break;
	default:
		return false;
	}
	TAILQ_REMOVE(&s->out, o, entry);
	s->ninflight--;
	msg_unref(o->m);
	free(o);
	if (s->persistent)
		persist_touch(b);
	session_pump(b, s);
	return true;
}

struct sub *
session_sub_find(struct session *s, const char *f, size_t len)
{
	struct sub *sub;

	TAILQ_FOREACH(sub, &s->subs, entry)
		if (sub->len == len && memcmp(sub->filter, f, len) == 0)
			return sub;
	return NULL;
}

/*
 * Add or replace a subscription. Returns the granted QoS, or -1 when the
 * client has too many subscriptions or memory ran out.
 */
int
session_subscribe(struct broker *b, struct session *s,
    const struct mqtt_subscription *req, struct sub **out, bool *existed)
{
	struct sub *sub;
	size_t len = req->filter.len;

	if ((sub = session_sub_find(s, (const char *)req->filter.ptr, len)) !=
	    NULL) {
		*existed = true;
	} else {
		*existed = false;
		if (s->nsubs >= (size_t)b->cfg->limits.max_subscriptions)
			return -1;
		if ((sub = calloc(1, sizeof(*sub) + len)) == NULL)
			return -1;
		sub->s = s;
		sub->len = (uint16_t)len;
		memcpy(sub->filter, req->filter.ptr, len);
		if (trie_add(b->subs, sub->filter, len, sub) != TRIE_OK) {
			free(sub);
			return -1;
		}
		TAILQ_INSERT_TAIL(&s->subs, sub, entry);
		s->nsubs++;
	}
	if (s->persistent)
		persist_touch(b);
	sub->qos = req->qos > 2 ? 2 : req->qos;
	sub->no_local = req->no_local;
	sub->retain_as_published = req->retain_as_published;
	*out = sub;
	return sub->qos;
}

bool
session_unsubscribe(struct broker *b, struct session *s, const char *f,
    size_t len)
{
	struct sub *sub;

	if ((sub = session_sub_find(s, f, len)) == NULL)
		return false;
	TAILQ_REMOVE(&s->subs, sub, entry);
	(void)trie_remove(b->subs, sub->filter, sub->len, sub);
	s->nsubs--;
	free(sub);
	if (s->persistent)
		persist_touch(b);
	return true;
}

bool
session_qos2_seen(struct session *s, uint16_t pid)
{
	for (size_t i = 0; i < s->nqos2_in; i++)
		if (s->qos2_in[i] == pid)
			return true;
	return false;
}

bool
session_qos2_add(struct session *s, uint16_t pid, size_t max)
{
	if (s->nqos2_in >= max)
		return false;
	if (s->nqos2_in == s->capqos2_in) {
		size_t ncap = s->capqos2_in ? s->capqos2_in * 2 : 4;
		uint16_t *n;

		if ((n = reallocarray(s->qos2_in, ncap, sizeof(*n))) == NULL)
			return false;
		s->qos2_in = n;
		s->capqos2_in = ncap;
	}
	s->qos2_in[s->nqos2_in++] = pid;
	return true;
}

bool
session_qos2_release(struct session *s, uint16_t pid)
{
	for (size_t i = 0; i < s->nqos2_in; i++) {
		if (s->qos2_in[i] == pid) {
			s->qos2_in[i] = s->qos2_in[--s->nqos2_in];
			return true;
		}
	}
	return false;
}
