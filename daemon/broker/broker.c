/*
 * The broker's shared state and routing: the session table, the subscription
 * trie, the retained store, and the $SYS statistics. A PUBLISH becomes one
 * reference-counted struct msg; routing finds each matching session once (at
 * the highest QoS among its matching subscriptions, as MQTT 3.1.1 section
 * 3.3.5 requires) and hands it a reference, never a copy.
 */
#include "daemon/broker/broker_int.h"
#include "daemon/util/clock.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "iotb_build.h"
#include "daemon/aws/bridge.h"
#include "daemon/broker/authw.h"
#include "daemon/util/log.h"
#include "topic/topic.h"

/*
 * Password checks waiting for the worker (authw.h), all listeners
 * together: a reconnect storm of a few hundred devices fits, and past it a
 * CONNECT is refused as "server busy" at once rather than queued without
 * bound (each waiting client holds its CONNECT; the device retries).
 */
#define BROKER_AUTH_PENDING	256

struct msg *
msg_new(const void *topic, size_t tlen, const void *payload, size_t plen,
    uint8_t qos, bool retain)
{
	struct msg *m;

	if (tlen > UINT16_MAX || plen > SIZE_MAX - sizeof(*m) - tlen)
		return NULL;
	if ((m = malloc(sizeof(*m) + tlen + plen)) == NULL)
		return NULL;
	m->refs = 1;
	m->qos = qos;
	m->retain = retain;
	m->origin = MSG_FROM_BROKER;
	m->topic_len = (uint16_t)tlen;
	m->payload_len = plen;
	memcpy(m->topic, topic, tlen);
	if (plen > 0)
		memcpy(m->topic + tlen, payload, plen);
	m->payload = (const uint8_t *)m->topic + tlen;
	return m;
}

bool
msg_is_sys(const struct msg *m)
{
	return m->topic_len >= 5 && memcmp(m->topic, "$SYS/", 5) == 0;
}

struct msg *
msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

void
msg_unref(struct msg *m)
{
	if (m != NULL && --m->refs == 0)
		free(m);
}

uint64_t
broker_now_ms(const struct broker *b)
{
	return clock_mono_ms();
}

bool
broker_may(const struct broker *b, const struct session *s,
    const char *topic, size_t len, enum acl_access access)
{
	const char *user = s->username;

	/* a session whose listener is unknown (loaded from the state file, or
	 * its listener removed) gets no more than deny-by-default allows,
	 * until its client connects again */
	if (s->l == NULL)
		return !b->any_acl;
	if (s->l->acl == NULL)
		return true;
	return acl_check(s->l->acl, user, user != NULL ? strlen(user) : 0,
	    s->id, s->id_len, topic, len, access);
}

/* trie_match callback: note each session once, at its highest QoS. */
static void
route_match(void *arg, void *ctx)
{
	struct sub *sub = arg;
	struct broker *b = ctx;
	struct session *s = sub->s;

	if (s->match_gen != b->match_gen) {
		if (b->nmatched == b->capmatched) {
			size_t ncap = b->capmatched ? b->capmatched * 2 : 64;
			struct session **n = reallocarray(b->matched, ncap,
			    sizeof(*n));

			if (n == NULL) {
				log_warnx("out of memory routing a message");
				return;
			}
			b->matched = n;
			b->capmatched = ncap;
		}
		b->matched[b->nmatched++] = s;
		s->match_gen = b->match_gen;
		s->match_qos = 0;
		s->match_rap = false;
	}
	if (sub->qos > s->match_qos)
		s->match_qos = sub->qos;
	s->match_rap |= sub->retain_as_published;
}

/* No Local (MQTT 5): drop the publisher's own session when every matching
 * subscription of it asked for that. Checked after matching, rarely used. */
static bool
route_no_local(struct session *s, const struct msg *m)
{
	struct sub *sub;

	TAILQ_FOREACH(sub, &s->subs, entry)
		if (!sub->no_local &&
		    topic_match(sub->filter, sub->len, m->topic, m->topic_len))
			return false;
	return true;
}

/* What a retained message counts against limits.max_retained_bytes. */
static uint64_t
retain_size(const struct msg *m)
{
	return m == NULL ? 0 : (uint64_t)m->topic_len + m->payload_len;
}

/* The store's count and bytes, $SYS aside; after the state file is read. */
static void
retain_recount(struct broker *b)
{
	size_t pos = 0;
	struct msg *m;

	b->nretained = 0;
	b->retained_bytes = 0;
	while ((m = hmap_next(&b->retained, &pos)) != NULL) {
		if (msg_is_sys(m))
			continue;
		b->nretained++;
		b->retained_bytes += retain_size(m);
	}
}

/*
 * Would keeping m (replacing old, NULL for a new topic) go past the limits?
 * Then the store stays as it is: the message still reaches the current
 * subscribers, it is only not kept. Replacing a kept topic with a message
 * that fits the bytes is always allowed, so a device that updates its own
 * retained status is never starved by others.
 */
static bool
retain_over(struct broker *b, const struct msg *m, const struct msg *old)
{
	const struct cfg_limits *lim = &b->cfg->limits;
	uint64_t bytes = b->retained_bytes - retain_size(old) + retain_size(m);

	if (old == NULL && b->nretained >= (uint64_t)lim->max_retained)
		return true;
	return bytes > lim->max_retained_bytes;
}

static void
retain_store(struct broker *b, struct msg *m)
{
	struct msg *old = NULL;
	char q[96];

	/* $SYS statistics change every tick and are rebuilt at start: they
	 * must not rewrite the state file (SD card wear), nor count against
	 * the limits the operator set for the devices' messages */
	if (msg_is_sys(m)) {
		if (m->payload_len == 0)
			msg_unref(hmap_del(&b->retained, m->topic,
			    m->topic_len));
		else if (hmap_put(&b->retained, m->topic, m->topic_len,
		    msg_ref(m), (void **)&old))
			msg_unref(old);
		else
			msg_unref(m);
		return;
	}
	old = hmap_get(&b->retained, m->topic, m->topic_len);
	if (m->payload_len == 0) {
		/* an empty retained message clears the topic (MQTT-3.3.1-10) */
		if (old == NULL)
			return;
		persist_touch(b);
		b->nretained--;
		b->retained_bytes -= retain_size(old);
		msg_unref(hmap_del(&b->retained, m->topic, m->topic_len));
		return;
	}
	if (retain_over(b, m, old)) {
		if (b->stats.retained_refused++ % 1000 == 0)
			log_warnx("retained message not kept topic=%s: over "
			    "limits.max_retained (%zu kept) or max_retained_bytes "
			    "(%llu bytes kept); refused=%llu", log_escape(q,
			    sizeof(q), m->topic, m->topic_len), b->nretained,
			    (unsigned long long)b->retained_bytes,
			    (unsigned long long)b->stats.retained_refused);
		return;
	}
	if (!hmap_put(&b->retained, m->topic, m->topic_len, msg_ref(m),
	    (void **)&old)) {
		msg_unref(m);
		log_warnx("out of memory storing a retained message");
		return;
	}
	persist_touch(b);
	if (old == NULL)
		b->nretained++;
	b->retained_bytes += retain_size(m) - retain_size(old);
	msg_unref(old);
}

/* A device's message to the bridge's "out" rules: what the device is owed. */
static enum broker_fate
route_up(struct broker *b, const struct msg *m, uint64_t *seq)
{
	struct bridge_msg bm = {
		.topic = m->topic, .topic_len = m->topic_len,
		.payload = m->payload, .payload_len = m->payload_len,
		.qos = m->qos, .retain = m->retain,
	};

	switch (bridge_offer(b->bridge, &bm, seq)) {
	case BRIDGE_STORED:
		return BROKER_ACK_STORED;
	case BRIDGE_DELIVERED:
		return BROKER_ACK_DELIVERED;
	case BRIDGE_REFUSED:
		return BROKER_REFUSED;
	case BRIDGE_UNSTORED:
		return BROKER_UNSTORED;
	default:
		return BROKER_ACK;
	}
}

enum broker_fate
broker_publish(struct broker *b, struct session *origin, struct msg *m,
    uint64_t *seq)
{
	if (m->retain)
		retain_store(b, m);
	b->match_gen++;
	b->nmatched = 0;
	trie_match(b->subs, m->topic, m->topic_len, route_match, b);
	for (size_t i = 0; i < b->nmatched; i++) {
		struct session *s = b->matched[i];
		uint8_t qos = m->qos < s->match_qos ? m->qos : s->match_qos;

		if (s == origin && route_no_local(s, m))
			continue;
		if (!broker_may(b, s, m->topic, m->topic_len, ACL_READ))
			continue;
		/* live delivery clears RETAIN unless asked to keep it (3.3.1-9) */
		session_deliver(b, s, m, qos, m->retain && s->match_rap);
	}
	/* only what devices published goes up: never what came down */
	if (m->origin != MSG_FROM_DEVICE || b->bridge == NULL)
		return BROKER_ACK;
	return route_up(b, m, seq);
}

int
broker_publish_remote(struct broker *b, const char *topic, size_t tlen,
    const void *payload, size_t plen, uint8_t qos, bool retain)
{
	struct msg *m;

	if ((m = msg_new(topic, tlen, payload, plen, qos, retain)) == NULL)
		return -1;
	m->origin = MSG_FROM_AWS;
	(void)broker_publish(b, NULL, m, NULL);
	msg_unref(m);
	return 0;
}

void
broker_acks_durable(struct broker *b, uint64_t seq)
{
	acks_durable(b, seq);
}

void
broker_acks_delivered(struct broker *b, uint64_t seq, uint8_t reason)
{
	acks_delivered(b, seq, reason);
}

void
broker_acks_undelivered_below(struct broker *b, uint64_t seq, uint8_t reason)
{
	acks_undelivered_below(b, seq, reason);
}

bool
broker_acks_awaiting_delivery(const struct broker *b, uint64_t *lowest)
{
	return acks_awaiting_delivery(b, lowest);
}

/*
 * The retained messages that match a new subscription are noted in its
 * session (a reference each, no copy) and sent as the client drains its
 * output (session_pump()): the QoS 0 drop for a full buffer is for live
 * traffic, and a subscriber to a few thousand retained topics must get all
 * of them, not the first buffer's worth.
 */
void
broker_send_retained(struct broker *b, struct sub *sub)
{
	size_t pos = 0;
	struct msg *m;

	while ((m = hmap_next(&b->retained, &pos)) != NULL) {
		if (!topic_match(sub->filter, sub->len, m->topic,
		    m->topic_len) ||
		    !broker_may(b, sub->s, m->topic, m->topic_len, ACL_READ))
			continue;
		if (!session_retained_add(b, sub->s, m, m->qos < sub->qos ?
		    m->qos : sub->qos))
			break;
	}
	session_pump(b, sub->s);
}

/* $SYS/broker/... as mosquitto publishes them, retained, at QoS 0. */
void
broker_sys_publish(struct broker *b, const char *topic, const char *fmt, ...)
{
	char value[256];
	struct msg *m;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value))
		return;
	if ((m = msg_new(topic, strlen(topic), value, (size_t)n, 0, true)) ==
	    NULL)
		return;
	(void)broker_publish(b, NULL, m, NULL);
	msg_unref(m);
}

static void
sys_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct broker *b = arg;
	const struct broker_stats *st = &b->stats;
	uint64_t up = (broker_now_ms(b) - b->started_ms) / 1000;
	struct trie_stats ts;

	trie_stats(b->subs, &ts);
	broker_sys_publish(b, "$SYS/broker/version", "iotbridged %s", IOTB_VERSION);
	broker_sys_publish(b, "$SYS/broker/uptime", "%" PRIu64 " seconds", up);
	broker_sys_publish(b, "$SYS/broker/clients/connected", "%zu", b->nclients);
	broker_sys_publish(b, "$SYS/broker/clients/total", "%zu", b->sessions.count);
	broker_sys_publish(b, "$SYS/broker/messages/received", "%" PRIu64,
	    st->msgs_received);
	broker_sys_publish(b, "$SYS/broker/messages/sent", "%" PRIu64, st->msgs_sent);
	broker_sys_publish(b, "$SYS/broker/messages/dropped", "%" PRIu64,
	    st->msgs_dropped);
	broker_sys_publish(b, "$SYS/broker/bytes/received", "%" PRIu64,
	    st->bytes_received);
	broker_sys_publish(b, "$SYS/broker/bytes/sent", "%" PRIu64, st->bytes_sent);
	broker_sys_publish(b, "$SYS/broker/subscriptions/count", "%zu", ts.subs);
	broker_sys_publish(b, "$SYS/broker/retained messages/count", "%zu",
	    b->retained.count);
	broker_sys_publish(b, "$SYS/broker/retained messages/bytes", "%" PRIu64,
	    b->retained_bytes);
	broker_sys_publish(b, "$SYS/broker/retained messages/refused", "%" PRIu64,
	    st->retained_refused);
	bridge_sys(b->bridge);
}

static void
expire_tick(evutil_socket_t fd, short ev, void *arg)
{
	session_expire(arg);
}

static int
broker_timers(struct broker *b)
{
	const struct cfg_broker *bc = &b->cfg->broker;
	struct timeval tv;

	if (b->ev_sys != NULL)
		event_del(b->ev_sys);
	if (bc->sys_interval_ms > 0) {
		if (b->ev_sys == NULL &&
		    (b->ev_sys = event_new(b->base, -1, EV_PERSIST, sys_tick,
		    b)) == NULL)
			return -1;
		tv.tv_sec = (time_t)(bc->sys_interval_ms / 1000);
		tv.tv_usec = (suseconds_t)(bc->sys_interval_ms % 1000) * 1000;
		event_add(b->ev_sys, &tv);
	}
	if (b->ev_expire == NULL) {
		if ((b->ev_expire = event_new(b->base, -1, EV_PERSIST,
		    expire_tick, b)) == NULL)
			return -1;
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		event_add(b->ev_expire, &tv);
	}
	return 0;
}

struct broker *
broker_new(struct event_base *base, const struct cfg *cfg)
{
	struct broker *b;
	uint64_t seed;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->base = base;
	b->cfg = cfg;
	TAILQ_INIT(&b->listeners);
	TAILQ_INIT(&b->clients);
	TAILQ_INIT(&b->closing);
	TAILQ_INIT(&b->offline);
	TAILQ_INIT(&b->owed_stored);
	TAILQ_INIT(&b->owed_delivered);
	/* seed the tables so that ids and topics cannot be chosen to collide */
	evutil_secure_rng_get_bytes(&seed, sizeof(seed));
	hmap_init(&b->sessions, seed);
	hmap_init(&b->retained, seed ^ 0x9e3779b97f4a7c15ULL);
	hmap_init(&b->owed_by_seq, seed ^ 0xc2b2ae3d27d4eb4fULL);
	b->started_ms = broker_now_ms(b);
	/* the saved state comes back before the first client can connect */
	if ((b->subs = trie_new(NULL)) == NULL || broker_timers(b) == -1 ||
	    (b->authw = authw_new(base, BROKER_AUTH_PENDING)) == NULL ||
	    persist_init(b) == -1)
		goto fail;
	retain_recount(b);
	if (listener_sync(b, cfg, true) == -1)
		goto fail;
	return b;
fail:
	broker_free(b);
	return NULL;
}

int
broker_reload(struct broker *b, const struct cfg *cfg)
{
	int rc;

	b->cfg = cfg;
	rc = listener_sync(b, cfg, false);
	if (broker_timers(b) == -1)
		rc = -1;
	return rc;
}

void
broker_free(struct broker *b)
{
	struct client *c;
	struct session *s;
	struct msg *m;
	size_t pos;

	if (b == NULL)
		return;
	while ((c = TAILQ_FIRST(&b->clients)) != NULL)
		client_shutdown(c);
	while ((c = TAILQ_FIRST(&b->closing)) != NULL)
		client_shutdown(c);
	listener_free_all(b);
	authw_free(b->authw);	/* after the clients: none waits for it */
	if (b->dirty)
		(void)persist_save(b);
	/* sessions go one at a time: collecting first keeps the table stable */
	while (b->sessions.count > 0) {
		pos = 0;
		s = hmap_next(&b->sessions, &pos);
		session_free(b, s);
	}
	pos = 0;
	while ((m = hmap_next(&b->retained, &pos)) != NULL)
		msg_unref(m);
	hmap_clear(&b->retained);
	hmap_clear(&b->sessions);
	hmap_clear(&b->owed_by_seq);	/* emptied with the sessions */
	/* last: freeing a persistent session above marks the state dirty */
	if (b->ev_persist != NULL)
		event_free(b->ev_persist);
	trie_free(b->subs);
	free(b->matched);
	if (b->ev_sys != NULL)
		event_free(b->ev_sys);
	if (b->ev_expire != NULL)
		event_free(b->ev_expire);
	free(b);
}

void
broker_set_bridge(struct broker *b, struct bridge *br)
{
	b->bridge = br;
}

void
broker_summary(const struct broker *b, char *buf, size_t cap)
{
	size_t nl = 0;
	const struct listener *l;

	TAILQ_FOREACH(l, &b->listeners, entry)
		nl++;
	snprintf(buf, cap, "%zu listener(s), %zu client(s), %zu session(s), "
	    "%zu retained", nl, b->nclients, b->sessions.count,
	    b->retained.count);
}

void
broker_counts(const struct broker *b, struct broker_counts *c)
{
	c->clients = b->nclients;
	c->sessions = b->sessions.count;
	c->msgs_in = b->stats.msgs_received;
	c->msgs_out = b->stats.msgs_sent;
	c->msgs_dropped = b->stats.msgs_dropped;
	c->bytes_in = b->stats.bytes_received;
	c->bytes_out = b->stats.bytes_sent;
	c->uptime_ms = broker_now_ms(b) - b->started_ms;
}
