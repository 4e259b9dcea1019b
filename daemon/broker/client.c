/*
 * One LAN client connection: framing MQTT packets off its bufferevent, the
 * CONNECT handshake (version, authentication, session, will, takeover), the
 * packets of a connected client, and output with a bounded buffer. Every
 * packet is decoded by lib/mqtt; nothing here parses bytes.
 *
 * Lifetime: client_close() unlinks the client at once (its session, its
 * will, the broker's counts) but frees it only when no callback of it is on
 * the stack (busy) and a last packet, if any, has been flushed (linger), so
 * a close from inside the read loop or during routing is always safe.
 */
#include "daemon/broker/broker_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "auth/passwd.h"
#include "daemon/broker/authw.h"
#include "daemon/util/log.h"
#include "daemon/util/tls.h"

#define CLIENT_CONNECT_MAX	(64 * 1024 + 1024)	/* before CONNACK */
#define CLIENT_LINGER_SEC	2	/* to flush a last CONNACK/DISCONNECT */
#define CLIENT_COPY_MAX		512	/* smaller payloads are copied, not shared */
#define CLIENT_WITHHOLD_MAX_S	60	/* see client_withhold() */

/* Where the CONNECT's password check is (authw.h). */
enum client_auth {
	CLIENT_AUTH_NONE,	/* not asked */
	CLIENT_AUTH_PENDING,	/* on the worker; reading is paused */
	CLIENT_AUTH_OK,
	CLIENT_AUTH_BAD,
};

struct client_priv {
	unsigned	busy;		/* callbacks of this client on the stack */
	enum client_auth auth;
	struct authw_job *auth_job;	/* while CLIENT_AUTH_PENDING */
	bool		closed;
	bool		linger;		/* closed, flushing its output */
	bool		io_error;	/* nothing more can be written */
	bool		kick;		/* close when ev_deadline fires */
	bool		withholding;	/* an acknowledgement is withheld */
	bool		send_will;
	uint8_t		kick_reason;
	const char	*kick_why;
};

/* The private part lives right after the public struct. */
#define PRIV(c)	((struct client_priv *)((c) + 1))

static const char *const client_state_names[] = {
	[CLIENT_S_NEW] = "new",
	[CLIENT_S_ONLINE] = "online",
	[CLIENT_S_CLOSING] = "closing",
};

static void
client_set_state(struct client *c, enum client_state to, const char *event)
{
	log_debug("client peer=%s id=%s %s -> %s (%s)", c->peer, c->idlog,
	    client_state_names[c->state], client_state_names[to], event);
	c->state = to;
}

static void
client_free(struct client *c)
{
	if (PRIV(c)->closed)
		TAILQ_REMOVE(&c->b->closing, c, entry);
	if (c->ev_deadline != NULL)
		event_free(c->ev_deadline);
	/* TLS sends what is left and close_notify in the background */
	if (c->bev != NULL)
		tls_close(c->bev, PRIV(c)->io_error ? 0 : CLIENT_LINGER_SEC * 1000);
	msg_unref(c->will);
	free(c->username);
	free(c);
}

/* Free the client if nothing still needs it. */
static void
client_release(struct client *c)
{
	struct client_priv *p = PRIV(c);

	if (!p->closed || p->busy > 0)
		return;
	if (p->linger && !p->io_error &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;		/* the write callback or the deadline comes back */
	client_free(c);
}

static bool
client_send(struct client *c, const struct mqtt_packet *pkt)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	enum mqtt_status st;
	size_t size, n;

	if ((st = mqtt_size(pkt, c->version, &size)) != MQTT_OK) {
		log_warnx("cannot encode %s for id=%s: %s",
		    mqtt_type_name(pkt->type), c->idlog, mqtt_strerror(st));
		return false;
	}
	if (evbuffer_reserve_space(out, (ev_ssize_t)size, &v, 1) < 1)
		return false;
	if (mqtt_encode(pkt, c->version, v.iov_base, v.iov_len, &n) !=
	    MQTT_OK)
		return false;
	v.iov_len = n;
	if (evbuffer_commit_space(out, &v, 1) == -1)
		return false;
	c->b->stats.bytes_sent += n;
	return true;
}

void
client_send_ack(struct client *c, enum mqtt_type type, uint16_t pid,
    uint8_t reason)
{
	struct mqtt_packet pkt = { .type = type };

	if (PRIV(c)->closed)
		return;
	pkt.ack.packet_id = pid;
	pkt.ack.reason_code = reason;
	(void)client_send(c, &pkt);
}

bool
client_can_write(const struct client *c)
{
	return !PRIV(c)->closed && c->state == CLIENT_S_ONLINE &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) <
	    c->b->cfg->limits.max_client_buffer;
}

static void
payload_unref(const void *data, size_t len, void *extra)
{
	msg_unref(extra);
}

/* Close the client ms from now; the first call decides. */
static void
client_kick_in(struct client *c, const char *why, uint8_t reason,
    uint64_t ms)
{
	struct client_priv *p = PRIV(c);
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000) * 1000 };

	if (p->closed || p->kick)
		return;
	p->kick = true;
	p->kick_why = why;
	p->kick_reason = reason;
	evtimer_add(c->ev_deadline, &tv);
}

/* Close the client from the next loop iteration: used where closing now
 * would re-enter routing (a will published in the middle of a fan-out). */
static void
client_kick(struct client *c, const char *why, uint8_t reason)
{
	client_kick_in(c, why, reason, 0);
}

/*
 * An MQTT 3.1.1 client published a QoS 1/2 message that the bridge could
 * not store (disk full or failing, queue failed). A PUBACK would promise
 * what is not true, and 3.1.1 has no negative one: the acknowledgement is
 * withheld (acks.c) and the connection closed after the client's keep
 * alive (1 s at least, CLIENT_WITHHOLD_MAX_S at most, which is also the
 * bound for a keep alive of 0), as long as the client already waits for a
 * PINGRESP before giving up on us. The device's own client then reconnects
 * and sends the message again, with DUP: nothing it was not acknowledged
 * for is lost, and a device that reconnects into a disk still full is
 * closed again after the same delay, not in a loop. One line per
 * connection.
 */
static void
client_withhold(struct client *c)
{
	uint64_t s = c->keepalive;

	if (PRIV(c)->withholding)
		return;
	PRIV(c)->withholding = true;
	if (s == 0 || s > CLIENT_WITHHOLD_MAX_S)
		s = CLIENT_WITHHOLD_MAX_S;
	log_warnx("publish not stored id=%s peer=%s: acknowledgement withheld, "
	    "closing the connection in %llu s so that the device sends it "
	    "again", c->idlog, c->peer, (unsigned long long)s);
	client_kick_in(c, "message not stored", 0, s * 1000);
}

bool
client_send_publish(struct client *c, const struct msg *m, uint8_t qos,
    bool retain, bool dup, uint16_t pid)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct mqtt_publish pub = {
		.dup = dup,
		.qos = qos,
		.retain = retain,
		.topic = { (const uint8_t *)m->topic, m->topic_len },
		.packet_id = pid,
		.payload = { m->payload, m->payload_len },
	};
	struct evbuffer_iovec v;
	size_t hsize, n;

	if (PRIV(c)->closed || c->state != CLIENT_S_ONLINE)
		return false;
	if (qos == 0 && !client_can_write(c)) {
		c->qos0_dropped++;
		c->b->stats.msgs_dropped++;
		if (c->b->cfg->broker.slow_subscriber == CFG_SLOW_DISCONNECT)
			client_kick(c, "slow subscriber", 0x97);
		else if (c->qos0_dropped == 1 || c->qos0_dropped % 1000 == 0)
			log_notice("slow subscriber id=%s peer=%s "
			    "qos0_dropped=%llu", c->idlog, c->peer,
			    (unsigned long long)c->qos0_dropped);
		return false;
	}
	if (mqtt_publish_header_size(&pub, c->version, &hsize) != MQTT_OK)
		return false;
	if (c->max_out_packet != 0 &&
	    hsize + m->payload_len > c->max_out_packet)
		return false;	/* MQTT 5: larger than the client accepts */
	if (evbuffer_reserve_space(out, (ev_ssize_t)hsize, &v, 1) < 1 ||
	    mqtt_encode_publish_header(&pub, c->version, v.iov_base,
	    v.iov_len, &n) != MQTT_OK)
		return false;
	v.iov_len = n;
	if (evbuffer_commit_space(out, &v, 1) == -1)
		return false;
	/* A large payload is shared with every other subscriber instead of
	 * copied; a small one is cheaper to copy than to reference. */
	if (m->payload_len > CLIENT_COPY_MAX) {
		struct msg *ref = msg_ref((struct msg *)m);

		if (evbuffer_add_reference(out, m->payload, m->payload_len,
		    payload_unref, ref) == -1) {
			msg_unref(ref);
			return false;
		}
	} else if (m->payload_len > 0 &&
	    evbuffer_add(out, m->payload, m->payload_len) == -1) {
		return false;
	}
	c->b->stats.bytes_sent += hsize + m->payload_len;
	c->b->stats.msgs_sent++;
	return true;
}

bool
client_fits(const struct client *c, const struct msg *m, uint8_t qos)
{
	struct mqtt_publish pub = {
		.qos = qos,
		.topic = { (const uint8_t *)m->topic, m->topic_len },
		.packet_id = 1,
		.payload = { m->payload, m->payload_len },
	};
	size_t hsize;

	if (c->max_out_packet == 0)
		return true;
	return mqtt_publish_header_size(&pub, c->version, &hsize) == MQTT_OK &&
	    hsize + m->payload_len <= c->max_out_packet;
}

void
client_close(struct client *c, const char *why, uint8_t reason)
{
	struct client_priv *p = PRIV(c);
	struct broker *b = c->b;
	struct session *s = c->s;

	if (p->closed)
		return;
	p->closed = true;
	p->kick = false;
	p->busy++;		/* nothing below may free it */
	if (p->auth_job != NULL) {	/* gone before its verdict */
		authw_cancel(p->auth_job);
		p->auth_job = NULL;
	}
	if (c->state == CLIENT_S_ONLINE)
		log_info("client disconnected id=%s peer=%s reason=%s",
		    c->idlog, c->peer, why);
	else
		log_debug("connection closed peer=%s reason=%s", c->peer, why);

	/* MQTT 5 clients are told why (not after an I/O error) */
	if (reason != 0 && c->version == MQTT_V5 &&
	    c->state == CLIENT_S_ONLINE && !p->io_error) {
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		pkt.disconnect.reason_code = reason;
		p->linger = client_send(c, &pkt);
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 &&
	    !p->io_error)
		p->linger = true;
	client_set_state(c, CLIENT_S_CLOSING, why);

	TAILQ_REMOVE(&b->clients, c, entry);
	TAILQ_INSERT_TAIL(&b->closing, c, entry);
	b->nclients--;
	if (c->l != NULL)
		c->l->nclients--;
	c->s = NULL;

	/* the will goes out before the session can vanish with the id */
	if (p->send_will && c->will != NULL && s != NULL) {
		struct msg *w = c->will;

		c->will = NULL;
		if (broker_may(b, s, w->topic, w->topic_len, ACL_WRITE))
			(void)broker_publish(b, s, w, NULL);
		else
			log_info("will denied by the ACL id=%s", c->idlog);
		msg_unref(w);
	}
	if (s != NULL && s->client == c) {
		acks_connection_lost(b, s);
		session_detach(b, s);
	}

	bufferevent_disable(c->bev, EV_READ);
	if (p->linger) {
		struct timeval tv = { CLIENT_LINGER_SEC, 0 };

		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		evtimer_add(c->ev_deadline, &tv);
	}
	p->busy--;
	client_release(c);
}

void
client_shutdown(struct client *c)
{
	struct client_priv *p = PRIV(c);

	/* a gateway restart is not a device failure: no will */
	p->send_will = false;
	p->busy++;		/* keep it through the close */
	if (!p->closed)
		client_close(c, "shutdown", 0x8B);	/* server shutting down */
	/* one non-blocking attempt to flush, then it goes (over TLS the
	 * plaintext must go through the TLS layer: tls_close does that) */
	if (!tls_is_tls(c->bev)) {
		struct evbuffer *out = bufferevent_get_output(c->bev);

		/* a socket bufferevent freezes the front of its output */
		evbuffer_unfreeze(out, 1);
		(void)evbuffer_write(out, bufferevent_getfd(c->bev));
	}
	p->io_error = true;
	p->busy = 0;
	client_release(c);
}

/* A packet that breaks the protocol: one log line, then the connection goes. */
static void
client_violation(struct client *c, enum mqtt_status st, const char *what)
{
	c->b->stats.protocol_errors++;
	log_notice("protocol error id=%s peer=%s: %s", c->idlog, c->peer,
	    what != NULL ? what : mqtt_strerror(st));
	client_close(c, what != NULL ? what : mqtt_strerror(st),
	    mqtt_status_reason(st));
}

static void
client_connack(struct client *c, bool present, uint8_t code,
    const struct mqtt_props *props)
{
	struct mqtt_packet pkt = { .type = MQTT_CONNACK };

	pkt.connack.session_present = present;
	pkt.connack.reason_code = code;
	if (props != NULL)
		pkt.connack.props = *props;
	(void)client_send(c, &pkt);
}

/* Refuse a CONNECT with the code of the client's version, then close. */
static void
client_refuse(struct client *c, uint8_t rc311, uint8_t rc5, const char *why)
{
	log_notice("connection refused id=%s peer=%s reason=%s", c->idlog,
	    c->peer, why);
	client_connack(c, false, c->version == MQTT_V5 ? rc5 : rc311, NULL);
	client_close(c, why, 0);
}

static void client_input(struct client *);

/* The password check's verdict: the CONNECT, still at the front of the
 * input, is handled again with it, then whatever followed. */
static void
on_auth_verdict(void *arg, bool ok)
{
	struct client *c = arg;
	struct client_priv *p = PRIV(c);

	p->auth_job = NULL;
	p->auth = ok ? CLIENT_AUTH_OK : CLIENT_AUTH_BAD;
	p->busy++;
	client_input(c);
	if (!p->closed)
		bufferevent_enable(c->bev, EV_READ);
	p->busy--;
	client_release(c);
}

/*
 * Is this CONNECT's user allowed in? CLIENT_AUTH_OK or _BAD (refused and
 * closing); CLIENT_AUTH_PENDING while the password is checked on the
 * worker: reading pauses, the CONNECT stays undrained in the input and is
 * handled again when the verdict comes (on_auth_verdict). A client that
 * goes meanwhile cancels its check (client_close); one that waits too long
 * meets the CONNECT deadline, which still runs.
 */
static enum client_auth
client_authenticate(struct client *c, const struct mqtt_connect *conn)
{
	const struct cfg_auth *auth = &c->l->conf->auth;
	struct client_priv *p = PRIV(c);

	if (!conn->has_username) {
		if (!auth->anonymous) {
			client_refuse(c, 0x05, 0x87, "not authorized");
			return CLIENT_AUTH_BAD;
		}
		return CLIENT_AUTH_OK;
	}
	if (c->l->passwd != NULL && p->auth == CLIENT_AUTH_NONE) {
		p->auth_job = authw_submit(c->b->authw, c->l->passwd,
		    (const char *)conn->username.ptr, conn->username.len,
		    conn->password.ptr, conn->has_password ?
		    conn->password.len : 0, on_auth_verdict, c);
		if (p->auth_job == NULL) {
			log_warnx("password checks: %zu waiting, refusing "
			    "peer=%s", authw_pending(c->b->authw), c->peer);
			client_refuse(c, 0x03, 0x89, "server busy");
			return CLIENT_AUTH_BAD;
		}
		bufferevent_disable(c->bev, EV_READ);
		return p->auth = CLIENT_AUTH_PENDING;
	}
	if (p->auth == CLIENT_AUTH_BAD) {
		client_refuse(c, 0x04, 0x86, "bad user name or password");
		return CLIENT_AUTH_BAD;
	}
	if ((c->username = malloc(conn->username.len + 1)) == NULL) {
		client_refuse(c, 0x03, 0x89, "out of memory");
		return CLIENT_AUTH_BAD;
	}
	memcpy(c->username, conn->username.ptr, conn->username.len);
	c->username[conn->username.len] = '\0';
	return CLIENT_AUTH_OK;
}

static void
handle_connect(struct client *c, const struct mqtt_connect *conn)
{
	struct broker *b = c->b;
	struct mqtt_props props = { 0 };
	char idbuf[32];
	const char *id = (const char *)conn->client_id.ptr;
	size_t idlen = conn->client_id.len;
	bool persistent, present;
	uint64_t expiry = b->cfg->broker.session_expiry_ms;
	struct session *s;

	c->version = conn->protocol_level;
	log_escape(c->idlog, sizeof(c->idlog), id, idlen);
	if (client_authenticate(c, conn) != CLIENT_AUTH_OK)
		return;		/* refused, or wait for the verdict */

	if (idlen == 0) {
		/* MQTT-3.1.3-6: a unique id for a clean session without one
		 * (the codec has refused the 3.1.1 case without clean session) */
		uint64_t r;

		evutil_secure_rng_get_bytes(&r, sizeof(r));
		snprintf(idbuf, sizeof(idbuf), "auto-%016llx",
		    (unsigned long long)(r ^ ++b->next_auto_id));
		id = idbuf;
		idlen = strlen(idbuf);
		log_escape(c->idlog, sizeof(c->idlog), id, idlen);
		if (c->version == MQTT_V5) {
			props.assigned_client_id.ptr = (const uint8_t *)idbuf;
			props.assigned_client_id.len = idlen;
			mqtt_props_set(&props, MQTT_PROP_ASSIGNED_CLIENT_ID);
		}
	}

	if (c->version == MQTT_V5) {
		uint32_t want = mqtt_props_has(&conn->props,
		    MQTT_PROP_SESSION_EXPIRY) ? conn->props.session_expiry : 0;

		persistent = want > 0;
		if (want != UINT32_MAX && (uint64_t)want * 1000 < expiry)
			expiry = (uint64_t)want * 1000;
		if (mqtt_props_has(&conn->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
			c->max_out_packet = conn->props.maximum_packet_size;
		if (mqtt_props_has(&conn->props, MQTT_PROP_RECEIVE_MAXIMUM))
			c->receive_max = conn->props.receive_maximum;
	} else {
		persistent = !conn->clean_start;
	}

	/* MQTT-3.1.4-2: a second connection with the same id takes over */
	if ((s = session_find(b, id, idlen)) != NULL && s->client != NULL) {
		log_info("client taken over id=%s old_peer=%s new_peer=%s",
		    c->idlog, s->client->peer, c->peer);
		client_close(s->client, "taken over", 0x8E);
		s = session_find(b, id, idlen);	/* a clean one is gone */
	}
	if (s != NULL && conn->clean_start) {
		session_free(b, s);
		s = NULL;
	}
	present = s != NULL;
	if (s == NULL && (s = session_new(b, id, idlen)) == NULL) {
		client_refuse(c, 0x03, 0x89, "out of memory");
		return;
	}
	if (persistent || s->persistent)	/* the state file changes */
		persist_touch(b);
	s->persistent = persistent;
	s->expiry_ms = expiry;
	s->l = c->l;
	free(s->username);
	s->username = c->username != NULL ? strdup(c->username) : NULL;
	session_attach(b, s, c);
	c->s = s;

	if (conn->will) {
		c->will = msg_new(conn->will_topic.ptr, conn->will_topic.len,
		    conn->will_payload.ptr, conn->will_payload.len,
		    conn->will_qos, conn->will_retain);
		if (c->will != NULL)
			c->will->origin = MSG_FROM_DEVICE;
		c->will_qos = conn->will_qos;
		c->will_retain = conn->will_retain;
		PRIV(c)->send_will = c->will != NULL;
	}

	event_del(c->ev_deadline);
	c->keepalive = conn->keep_alive;
	if (c->keepalive > 0) {
		/* MQTT-3.1.2-24: one and a half keep alive periods */
		uint64_t ms = (uint64_t)c->keepalive * 1500;
		struct timeval tv = { (time_t)(ms / 1000),
		    (suseconds_t)(ms % 1000) * 1000 };

		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    (size_t)b->cfg->limits.max_packet_size + MQTT_MAX_HEADER);

	if (c->version == MQTT_V5) {
		props.maximum_packet_size =
		    (uint32_t)b->cfg->limits.max_packet_size;
		mqtt_props_set(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
		props.shared_sub_available = 0;
		mqtt_props_set(&props, MQTT_PROP_SHARED_SUB_AVAILABLE);
		props.receive_maximum = (uint16_t)(
		    b->cfg->limits.max_queued_messages > UINT16_MAX ?
		    UINT16_MAX : b->cfg->limits.max_queued_messages);
		mqtt_props_set(&props, MQTT_PROP_RECEIVE_MAXIMUM);
		props.sub_id_available = 0;
		mqtt_props_set(&props, MQTT_PROP_SUB_ID_AVAILABLE);
		if ((uint64_t)expiry / 1000 < conn->props.session_expiry) {
			props.session_expiry = (uint32_t)(expiry / 1000);
			mqtt_props_set(&props, MQTT_PROP_SESSION_EXPIRY);
		}
	}
	client_set_state(c, CLIENT_S_ONLINE, "CONNECT");
	client_connack(c, present, 0, &props);
	log_info("client connected id=%s peer=%s listener=%s version=%s "
	    "clean=%d keepalive=%u session_present=%d", c->idlog, c->peer,
	    c->l->name, c->version == MQTT_V5 ? "5" : "3.1.1",
	    conn->clean_start, c->keepalive, present);
	if (present)
		session_resend(b, s);
}

/* A CONNECT that does not decode: answer what the version allows, close. */
static void
connect_failed(struct client *c, enum mqtt_status st, uint8_t level)
{
	c->b->stats.protocol_errors++;
	log_notice("bad CONNECT peer=%s: %s", c->peer, mqtt_strerror(st));
	if (level == MQTT_V5) {
		c->version = MQTT_V5;
		client_connack(c, false, mqtt_status_reason(st), NULL);
	} else if (mqtt_status_connack311(st) != 0) {
		c->version = MQTT_V311;
		client_connack(c, false, mqtt_status_connack311(st), NULL);
	}
	client_close(c, mqtt_strerror(st), 0);
}

/*
 * How many incoming QoS 2 messages may wait for their PUBREL. MQTT 3.1.1 sets
 * no bound, so this is memory protection, as large as the queue a session may
 * hold; MQTT 5 clients are told it as Receive Maximum.
 */
static size_t
client_receive_max(const struct client *c)
{
	int64_t n = c->b->cfg->limits.max_queued_messages;

	return n > UINT16_MAX ? UINT16_MAX : (size_t)n;
}

/*
 * A PUBLISH from the client: routed to every sink by broker_publish(), and
 * answered (QoS 1 PUBACK, QoS 2 PUBREC) through the session's list of what
 * it owes, so that answers that wait for the queue or for AWS keep the
 * order of the packets.
 */
static void
handle_publish(struct client *c, const struct mqtt_publish *pub)
{
	struct broker *b = c->b;
	struct session *s = c->s;
	enum mqtt_type ack = pub->qos == 2 ? MQTT_PUBREC : MQTT_PUBACK;
	enum broker_fate fate = BROKER_ACK;
	uint64_t seq = 0;
	uint8_t reason = 0;
	struct msg *m;

	if (c->version == MQTT_V5 &&
	    mqtt_props_has(&pub->props, MQTT_PROP_TOPIC_ALIAS)) {
		/* we announce no Topic Alias Maximum, so none is valid */
		b->stats.protocol_errors++;
		log_notice("protocol error id=%s peer=%s: topic alias",
		    c->idlog, c->peer);
		client_close(c, "topic alias", 0x94);
		return;
	}
	if (pub->qos == 2 && session_qos2_seen(s, pub->packet_id)) {
		/* a resend of a message already routed: exactly once */
		acks_owe(b, s, MQTT_PUBREC, pub->packet_id, 0, BROKER_ACK, 0);
		return;
	}
	b->stats.msgs_received++;
	/* $SYS/ belongs to the broker: clients do not publish there */
	if (pub->topic.len >= 4 && memcmp(pub->topic.ptr, "$SYS", 4) == 0 &&
	    (pub->topic.len == 4 || pub->topic.ptr[4] == '/')) {
		log_debug("publish to $SYS ignored id=%s", c->idlog);
		reason = 0x87;
	} else if (!broker_may(b, s, (const char *)pub->topic.ptr, pub->topic.len,
	    ACL_WRITE)) {
		/* 3.1.1 has no way to say no: acknowledged, not delivered */
		log_debug("publish denied by the ACL id=%s", c->idlog);
		reason = 0x87;
	} else {
		if ((m = msg_new(pub->topic.ptr, pub->topic.len,
		    pub->payload.ptr, pub->payload.len, pub->qos,
		    pub->retain)) == NULL) {
			client_close(c, "out of memory", 0x89);
			return;
		}
		m->origin = MSG_FROM_DEVICE;
		if (pub->qos == 2 && !session_qos2_add(s, pub->packet_id,
		    client_receive_max(c))) {
			msg_unref(m);
			b->stats.protocol_errors++;
			log_notice("too many QoS 2 messages in flight id=%s "
			    "peer=%s", c->idlog, c->peer);
			client_close(c, "receive maximum exceeded", 0x93);
			return;
		}
		fate = broker_publish(b, s, m, pub->qos > 0 ? &seq : NULL);
		msg_unref(m);
		/* MQTT 5 can say the queue refused it; 3.1.1 cannot say no:
		 * a policy's refusal (drop: newest) is acknowledged, as
		 * documented, but what could not be stored is not */
		if ((fate == BROKER_REFUSED || fate == BROKER_UNSTORED) &&
		    c->version == MQTT_V5) {
			reason = 0x97;
			if (pub->qos == 2)	/* the flow ends at PUBREC */
				(void)session_qos2_release(s, pub->packet_id);
		} else if (fate == BROKER_UNSTORED && pub->qos > 0) {
			/* its resend must be routed again, not deduplicated */
			if (pub->qos == 2)
				(void)session_qos2_release(s, pub->packet_id);
			fate = BROKER_WITHHELD;
			client_withhold(c);
		}
	}
	if (pub->qos > 0)
		acks_owe(b, s, ack, pub->packet_id, reason, fate, seq);
}

static void
handle_subscribe(struct client *c, const struct mqtt_subscribe *sub)
{
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	struct mqtt_subscription req;
	struct mqtt_iter it;
	uint8_t small[2 * 64], *codes = small, *existed;
	size_t n = 0, count = 0;
	struct sub *sp;

	/* one reason code and one "already subscribed" flag per filter */
	mqtt_iter_init(&it, sub->list);
	while (mqtt_subscription_next(&it, &req))
		count++;
	if (count > sizeof(small) / 2 &&
	    (codes = malloc(2 * count)) == NULL) {
		client_close(c, "out of memory", 0x89);
		return;
	}
	existed = codes + count;

	mqtt_iter_init(&it, sub->list);
	for (n = 0; n < count && mqtt_subscription_next(&it, &req); n++) {
		bool had = false;
		int granted;

		if (c->version == MQTT_V5 && req.filter.len >= 7 &&
		    memcmp(req.filter.ptr, "$share/", 7) == 0) {
			codes[n] = 0x9E;	/* shared subscriptions: no */
			continue;
		}
		if (c->l != NULL && c->l->acl != NULL &&
		    !acl_check_subscribe(c->l->acl, c->username,
		    c->username != NULL ? strlen(c->username) : 0, c->s->id,
		    c->s->id_len, (const char *)req.filter.ptr,
		    req.filter.len)) {
			codes[n] = c->version == MQTT_V5 ? 0x87 : 0x80;
			log_info("subscription denied by the ACL id=%s",
			    c->idlog);
			continue;
		}
		granted = session_subscribe(c->b, c->s, &req, &sp, &had);
		existed[n] = had;
		if (granted < 0) {
			codes[n] = c->version == MQTT_V5 ? 0x97 : 0x80;
			log_notice("subscription refused id=%s reason=limit",
			    c->idlog);
			continue;
		}
		codes[n] = (uint8_t)granted;
	}
	ack.suback.packet_id = sub->packet_id;
	ack.suback.reason_codes.ptr = codes;
	ack.suback.reason_codes.len = n;
	(void)client_send(c, &ack);

	/* retained messages follow the SUBACK; MQTT 5 retain handling 1
	 * sends them only for a new subscription, 2 never */
	mqtt_iter_init(&it, sub->list);
	for (size_t i = 0; i < n && mqtt_subscription_next(&it, &req); i++) {
		if (codes[i] >= 0x80 || req.retain_handling == 2 ||
		    (req.retain_handling == 1 && existed[i]))
			continue;
		sp = session_sub_find(c->s, (const char *)req.filter.ptr,
		    req.filter.len);
		if (sp != NULL)
			broker_send_retained(c->b, sp);
	}
	if (codes != small)
		free(codes);
}

static void
handle_unsubscribe(struct client *c, const struct mqtt_subscribe *unsub)
{
	struct mqtt_packet ack = { .type = MQTT_UNSUBACK };
	uint8_t small[64], *codes = small;
	struct buf_view f;
	struct mqtt_iter it;
	size_t n = 0, count = 0;

	/* one reason code per filter (MQTT 5), however many there are */
	mqtt_iter_init(&it, unsub->list);
	while (mqtt_filter_next(&it, &f))
		count++;
	if (count > sizeof(small) && (codes = malloc(count)) == NULL) {
		client_close(c, "out of memory", 0x89);
		return;
	}
	mqtt_iter_init(&it, unsub->list);
	while (n < count && mqtt_filter_next(&it, &f)) {
		bool had = session_unsubscribe(c->b, c->s,
		    (const char *)f.ptr, f.len);

		codes[n++] = had ? 0x00 : 0x11;
	}
	ack.unsuback.packet_id = unsub->packet_id;
	ack.unsuback.reason_codes.ptr = codes;
	ack.unsuback.reason_codes.len = n;
	(void)client_send(c, &ack);
	if (codes != small)
		free(codes);
}

static void
client_handle(struct client *c, const struct mqtt_packet *pkt)
{
	struct mqtt_packet out = { 0 };

	if (c->state == CLIENT_S_NEW) {
		if (pkt->type != MQTT_CONNECT) {
			client_violation(c, MQTT_E_TYPE,
			    "first packet is not CONNECT");
			return;
		}
		handle_connect(c, &pkt->connect);
		return;
	}
	switch (pkt->type) {
	case MQTT_PUBLISH:
		handle_publish(c, &pkt->publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		(void)session_ack(c->b, c->s, pkt->type, pkt->ack.packet_id);
		break;
	case MQTT_PUBREL:
		/* exactly once ends here; an unknown id still gets PUBCOMP */
		client_send_ack(c, MQTT_PUBCOMP, pkt->ack.packet_id,
		    session_qos2_release(c->s, pkt->ack.packet_id) ? 0 : 0x92);
		break;
	case MQTT_SUBSCRIBE:
		handle_subscribe(c, &pkt->subscribe);
		break;
	case MQTT_UNSUBSCRIBE:
		handle_unsubscribe(c, &pkt->unsubscribe);
		break;
	case MQTT_PINGREQ:
		out.type = MQTT_PINGRESP;
		(void)client_send(c, &out);
		break;
	case MQTT_DISCONNECT:
		/* MQTT 5 reason 0x04: disconnect, but publish the will */
		PRIV(c)->send_will = c->version == MQTT_V5 &&
		    pkt->disconnect.reason_code == 0x04;
		client_close(c, "disconnect", 0);
		break;
	case MQTT_CONNECT:
		client_violation(c, MQTT_E_TYPE, "second CONNECT");
		break;
	default:
		client_violation(c, MQTT_E_TYPE, "packet a client may not send");
		break;
	}
}

/*
 * Frame and handle every complete packet in the input: probe the fixed
 * header (the size limit is checked before waiting for the body), pull the
 * packet up into one contiguous run, decode it as views, act on it, drain.
 */
static void
client_input(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	uint64_t limit = c->b->cfg->limits.max_packet_size;

	while (!PRIV(c)->closed) {
		uint8_t head[MQTT_MAX_HEADER];
		struct mqtt_header h;
		struct mqtt_packet pkt;
		enum mqtt_status st;
		size_t have = evbuffer_get_length(in), used;
		size_t max = (size_t)limit + MQTT_MAX_HEADER;
		uint8_t *p;

		if (have == 0)
			return;
		if (c->state == CLIENT_S_NEW && max > CLIENT_CONNECT_MAX)
			max = CLIENT_CONNECT_MAX;	/* tighter before auth */
		st = mqtt_probe(head, (size_t)evbuffer_copyout(in, head,
		    sizeof(head)), max, &h);
		if (st == MQTT_NEED_MORE)
			return;
		if (st != MQTT_OK) {
			client_violation(c, st, NULL);
			return;
		}
		if (have < h.size)
			return;
		pkt.connect.protocol_level = 0;	/* read back on a failed CONNECT */
		if ((p = evbuffer_pullup(in, (ev_ssize_t)h.size)) == NULL) {
			client_close(c, "out of memory", 0x89);
			return;
		}
		st = mqtt_decode(p, h.size, c->version, max, &pkt, &used);
		if (st != MQTT_OK) {
			if (c->state == CLIENT_S_NEW && h.type == MQTT_CONNECT)
				connect_failed(c, st,
				    pkt.connect.protocol_level);
			else
				client_violation(c, st, NULL);
			return;
		}
		client_handle(c, &pkt);
		if (PRIV(c)->auth == CLIENT_AUTH_PENDING)
			return;	/* the CONNECT stays for the verdict */
		c->b->stats.bytes_received += used;
		evbuffer_drain(in, used);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	PRIV(c)->busy++;
	client_input(c);
	PRIV(c)->busy--;
	client_release(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (PRIV(c)->closed) {
		client_release(c);
		return;
	}
	/* the output drained below the low watermark: send what waited */
	PRIV(c)->busy++;
	if (c->s != NULL)
		session_pump(c->b, c->s);
	PRIV(c)->busy--;
	client_release(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	struct client_priv *p = PRIV(c);

	if (what == BEV_EVENT_CONNECTED)
		return;		/* TLS handshake done: CONNECT comes next */
	p->busy++;
	if ((what & BEV_EVENT_ERROR) && tls_is_tls(bev)) {
		p->io_error = true;
		log_notice("tls error peer=%s: %s", c->peer,
		    tls_last_error(bev));
		client_close(c, "tls error", 0);
	} else if (what & BEV_EVENT_TIMEOUT) {
		p->io_error = false;
		log_notice("keepalive timeout id=%s peer=%s", c->idlog,
		    c->peer);
		client_close(c, "keepalive timeout", 0x8D);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		p->io_error = true;
		client_close(c, what & BEV_EVENT_EOF ? "connection closed" :
		    "connection error", 0);
	}
	p->busy--;
	client_release(c);
}

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct client *c = arg;
	struct client_priv *p = PRIV(c);

	p->busy++;
	if (p->kick && !p->closed) {
		p->kick = false;
		log_notice("closing id=%s peer=%s reason=%s", c->idlog,
		    c->peer, p->kick_why);
		client_close(c, p->kick_why, p->kick_reason);
	} else if (!p->closed && c->state == CLIENT_S_NEW) {
		log_notice("no CONNECT in time peer=%s", c->peer);
		client_close(c, "connect timeout", 0);
	} else if (p->closed) {
		p->io_error = true;	/* linger is over */
	}
	p->busy--;
	client_release(c);
}

static void
client_peer_name(struct client *c, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, port);
		break;
	}
	default:
		snprintf(c->peer, sizeof(c->peer), "unix");
		break;
	}
}

void
client_accept(struct listener *l, int fd, const struct sockaddr *sa,
    int salen)
{
	struct broker *b = l->b;
	const struct cfg_limits *lim = &b->cfg->limits;
	struct timeval tv;
	struct client *c;
	int one = 1;

	if (b->nclients >= (size_t)lim->max_connections ||
	    (l->conf->max_connections > 0 &&
	    l->nclients >= (size_t)l->conf->max_connections)) {
		if (b->stats.clients_refused++ % 100 == 0)
			log_warnx("connection refused listener=%s "
			    "reason=max_connections refused=%llu", l->name,
			    (unsigned long long)b->stats.clients_refused);
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c) + sizeof(struct client_priv))) == NULL)
		goto fail;
	c->b = b;
	c->l = l;
	c->version = MQTT_V311;
	snprintf(c->idlog, sizeof(c->idlog), "-");
	client_peer_name(c, sa);
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (l->tls != NULL) {
		/* takes the socket whatever happens; the handshake shares the
		 * CONNECT deadline */
		c->bev = tls_server_wrap(b->base, l->tls, fd,
		    (int)lim->connect_timeout_ms);
		fd = -1;
	} else {
		c->bev = bufferevent_socket_new(b->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			fd = -1;
	}
	if (c->bev == NULL)
		goto fail;
	if ((c->ev_deadline = evtimer_new(b->base, on_deadline, c)) == NULL)
		goto fail;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_CONNECT_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE,
	    (size_t)lim->max_client_buffer / 2, 0);
	tv.tv_sec = (time_t)(lim->connect_timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(lim->connect_timeout_ms % 1000) * 1000;
	evtimer_add(c->ev_deadline, &tv);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1)
		goto fail;
	TAILQ_INSERT_TAIL(&b->clients, c, entry);
	b->nclients++;
	l->nclients++;
	log_debug("connection accepted peer=%s listener=%s", c->peer, l->name);
	return;
fail:
	log_warnx("cannot accept a connection on %s: out of memory", l->name);
	if (fd != -1)
		close(fd);
	if (c != NULL)
		client_free(c);
}
