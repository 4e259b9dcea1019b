/*
 * The MQTT client session (see uplink.h) as one state machine. Events
 * (timers, the transport's callbacks, CONNACK and the last SUBACK) go to
 * uplink_fsm(), the only caller of uplink_enter(), which alone writes the
 * state, logs `from -> to (why)` and runs the new state's entry action:
 * entering CONNECTING opens the transport under the connect deadline;
 * SUBSCRIBING arms the keepalive and the connection-age timers and
 * subscribes; WAITING closes what is left, says why, and chooses the delay
 * (backoff, CONNECT pacing, duplicate client id) with lib/mqttc, which also
 * keeps the packet ids, the publishes in flight with their cookies, and the
 * keepalive and timeout decisions. Packets are coded by lib/mqtt; the bytes
 * come and go through the transport.
 */
#include "daemon/aws/uplink.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "daemon/aws/transport.h"
#include "daemon/util/clock.h"
#include "daemon/util/log.h"
#include "daemon/util/tls.h"
#include "mqtt/mqtt.h"
#include "mqttc/mqttc.h"

#define UPLINK_MAX_PACKET	(512u << 10)	/* AWS sends at most 128 KiB payloads */
#define UPLINK_OUT_HIGH		(256u << 10)	/* output bytes: stop taking more */

/* What happens to the session. */
enum uplink_event {
	UPLINK_EV_START,	/* the aws section is there: connect */
	UPLINK_EV_RETRY,	/* the waiting is over */
	UPLINK_EV_CONNACK,	/* AWS accepted the CONNECT */
	UPLINK_EV_SUBSCRIBED,	/* the last SUBACK came */
	UPLINK_EV_FAILED,	/* the attempt or the connection failed */
	UPLINK_EV_FIXED,	/* failed, but the cause is fixed: at once */
	UPLINK_EV_PLANNED,	/* a planned reconnect */
	UPLINK_EV_STOP,		/* shutting down, or new settings */
};

static const char *const state_names[UPLINK_NSTATES] = {
	[UPLINK_OFF] = "off",
	[UPLINK_WAITING] = "waiting",
	[UPLINK_CONNECTING] = "connecting",
	[UPLINK_SUBSCRIBING] = "subscribing",
	[UPLINK_ONLINE] = "online",
	[UPLINK_STOPPED] = "stopped",
};

struct uplink {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct transport	*t;
	struct uplink_ops	 ops;
	void			*arg;
	char			 name[32];

	enum uplink_state	 state;
	enum mqttc_end		 end;		/* why WAITING is entered */
	uint64_t		 gen;		/* one per connection */
	struct mqttc		*mc;
	struct mqttc_retry	 retry;

	/* the named timers */
	struct event		*ev_retry;	/* WAITING: the next attempt */
	struct event		*ev_deadline;	/* CONNECTING: aws.connect_timeout */
	struct event		*ev_keepalive;	/* PINGREQ when idle */
	struct event		*ev_timeout;	/* answers: aws.operation_timeout */
	struct event		*ev_age;	/* aws.max_connection_age */
	bool			 timeout_armed;

	char			**filters;	/* the subscriptions */
	uint8_t			*filter_qos;
	size_t			 nfilters;
	unsigned		 sub_pending;

	uint64_t		 t_attempt, t_connack;
	uint64_t		 retry_at;
	bool			 planned;	/* pausing for a planned reconnect */
	uint8_t			*scratch;
	size_t			 scratch_cap;
	uint8_t			 rnd[64];
	size_t			 rnd_left;
	struct uplink_status	 st;
};

static void	uplink_fsm(struct uplink *, enum uplink_event, const char *);

static void
timer_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv = clock_tv(ms);

	event_add(ev, &tv);
}

static void
fmt_ms(char *buf, size_t cap, uint64_t ms)
{
	if (ms < 10000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else
		snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
}

static uint32_t
random_u32(struct uplink *u)
{
	uint32_t r = 0;

	if (u->rnd_left < sizeof(r)) {
		if (tls_random(u->rnd, sizeof(u->rnd)) != 0)
			return 0;
		u->rnd_left = sizeof(u->rnd);
	}
	memcpy(&r, u->rnd + sizeof(u->rnd) - u->rnd_left, sizeof(r));
	u->rnd_left -= sizeof(r);
	return r;
}

const char *
uplink_state_name(enum uplink_state s)
{
	return s < UPLINK_NSTATES ? state_names[s] : "?";
}

/* ---- output --------------------------------------------------------------- */

static bool
scratch_fit(struct uplink *u, size_t n)
{
	uint8_t *p;
	size_t cap = u->scratch_cap ? u->scratch_cap : 512;

	if (n <= u->scratch_cap)
		return true;
	while (cap < n)
		cap *= 2;
	if ((p = realloc(u->scratch, cap)) == NULL)
		return false;
	u->scratch = p;
	u->scratch_cap = cap;
	return true;
}

static int
send_packet(struct uplink *u, const struct mqtt_packet *pkt)
{
	size_t n;

	if (mqtt_size(pkt, MQTT_V311, &n) != MQTT_OK || !scratch_fit(u, n) ||
	    mqtt_encode(pkt, MQTT_V311, u->scratch, u->scratch_cap, &n) !=
	    MQTT_OK || transport_send(u->t, u->scratch, n, NULL, 0) != 0)
		return -1;
	mqttc_sent(u->mc, clock_mono_ms());
	return 0;
}

/* The oldest answer awaited decides when to look again. */
static void
timeout_arm(struct uplink *u)
{
	if (!u->timeout_armed && u->cfg->aws.operation_timeout_ms > 0) {
		timer_ms(u->ev_timeout, u->cfg->aws.operation_timeout_ms);
		u->timeout_armed = true;
	}
}

bool
uplink_ready(const struct uplink *u)
{
	return u->state == UPLINK_ONLINE && !u->planned &&
	    transport_pending(u->t) < UPLINK_OUT_HIGH;
}

int
uplink_publish(struct uplink *u, struct buf_view topic, struct buf_view payload,
    uint8_t qos, bool retain, bool dup, uint64_t cookie)
{
	struct mqtt_publish pub = {
		.dup = dup && qos > 0, .qos = qos, .retain = retain,
		.topic = topic, .payload = payload,
	};
	uint8_t head[MQTT_MAX_HEADER + 2 + 65535 + 2];
	uint64_t now = clock_mono_ms();
	size_t hl;

	if (u->state != UPLINK_ONLINE || qos > 1)
		return -1;
	if (qos == 1 && mqttc_add(u->mc, MQTTC_PUBLISH, cookie, now,
	    &pub.packet_id) != MQTTC_OK)
		return -1;
	if (mqtt_encode_publish_header(&pub, MQTT_V311, head, sizeof(head),
	    &hl) != MQTT_OK || transport_send(u->t, head, hl, payload.ptr,
	    payload.len) != 0) {
		if (qos == 1)
			(void)mqttc_cancel(u->mc, pub.packet_id);
		return -1;
	}
	mqttc_sent(u->mc, now);
	u->st.publishes++;
	if (qos == 1) {
		timeout_arm(u);
		return 0;
	}
	/* sent but not tracked would never be done: resend it instead */
	if (mqttc_add_qos0(u->mc, cookie) != MQTTC_OK)
		uplink_fsm(u, UPLINK_EV_FAILED, "out of memory");
	return 0;
}

bool
uplink_first_cookie(const struct uplink *u, uint64_t *cookie)
{
	return mqttc_first_cookie(u->mc, cookie);
}

/* ---- subscriptions -------------------------------------------------------- */

static void
filters_free(struct uplink *u)
{
	for (size_t i = 0; i < u->nfilters; i++)
		free(u->filters[i]);
	free(u->filters);
	free(u->filter_qos);
	u->filters = NULL;
	u->filter_qos = NULL;
	u->nfilters = 0;
}

static int
filters_set(struct uplink *u, const struct uplink_subs *subs)
{
	filters_free(u);
	if ((u->filters = calloc(subs->n + 1, sizeof(char *))) == NULL ||
	    (u->filter_qos = calloc(subs->n + 1, 1)) == NULL)
		return -1;
	for (size_t i = 0; i < subs->n; i++) {
		if ((u->filters[i] = strdup(subs->filter[i])) == NULL)
			return -1;
		u->filter_qos[i] = subs->qos[i];
		u->nfilters = i + 1;
	}
	return 0;
}

static bool
filters_differ(const struct uplink *u, const struct uplink_subs *subs)
{
	if (u->nfilters != subs->n)
		return true;
	for (size_t i = 0; i < subs->n; i++)
		if (strcmp(u->filters[i], subs->filter[i]) != 0 ||
		    u->filter_qos[i] != subs->qos[i])
			return true;
	return false;
}

/*
 * SUBSCRIBE every filter, filters_per_subscribe at a time, up to AWS's
 * number per connection. Each SUBSCRIBE's cookie says which filters it
 * carried: the first one's index, high, and how many, low.
 */
static int
subscribe_all(struct uplink *u)
{
	const struct cfg_aws_limits *l = &u->cfg->aws.limits;
	size_t per = l->filters_per_subscribe > 0 ?
	    (size_t)l->filters_per_subscribe : 1, n, cap = 0;
	size_t max = u->nfilters < (size_t)l->max_subscriptions ?
	    u->nfilters : (size_t)l->max_subscriptions;
	uint8_t *list;
	int rc = -1;

	u->st.subscriptions = 0;
	u->sub_pending = 0;
	if (u->nfilters > max)
		log_warnx("%s: the bridge rules need %zu subscriptions; AWS "
		    "allows %zu per connection (aws.limits.max_subscriptions): "
		    "the ones past it are not made", u->name, u->nfilters, max);
	for (size_t i = 0; i < max; i++)
		cap += strlen(u->filters[i]) + 3;
	if ((list = malloc(cap + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < max; i += n) {
		struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
		struct buf_writer w;

		n = max - i < per ? max - i : per;
		buf_writer_init(&w, list, cap);
		for (size_t j = 0; j < n; j++) {
			struct mqtt_subscription s = {
				.filter = { (const uint8_t *)u->filters[i + j],
				    strlen(u->filters[i + j]) },
				.qos = u->filter_qos[i + j],
			};

			mqtt_subscription_put(&w, &s);
		}
		if (mqttc_add(u->mc, MQTTC_SUBSCRIBE, (uint64_t)i << 32 | n,
		    clock_mono_ms(), &pkt.subscribe.packet_id) != MQTTC_OK)
			goto out;
		pkt.subscribe.list = (struct buf_view){ list, w.len };
		if (send_packet(u, &pkt) != 0)
			goto out;
		u->sub_pending++;
	}
	if (u->sub_pending > 0)
		timeout_arm(u);
	rc = 0;
out:
	free(list);
	return rc;
}

/* ---- the state machine ---------------------------------------------------- */

static void
timers_stop(struct uplink *u)
{
	event_del(u->ev_deadline);
	event_del(u->ev_keepalive);
	event_del(u->ev_timeout);
	event_del(u->ev_age);
	u->timeout_armed = false;
}

/* The connection is over, whatever it was: close it and account for it. */
static void
conn_end(struct uplink *u, const char *why, bool polite)
{
	bool was_up = u->t_connack != 0;
	uint64_t up = was_up ? clock_mono_ms() - u->t_connack : 0;
	char t[32];

	transport_close(u->t, polite);
	timers_stop(u);
	mqttc_reset(u->mc, clock_mono_ms());
	u->gen++;
	u->planned = false;
	u->sub_pending = 0;
	u->t_connack = 0;
	snprintf(u->st.last_error, sizeof(u->st.last_error), "%s", why);
	if (was_up) {
		u->st.disconnects++;
		fmt_ms(t, sizeof(t), up);
		log_msg(u->end == MQTTC_END_LOST && u->state != UPLINK_STOPPED ?
		    LOG_L_WARNING : LOG_L_INFO, "%s: disconnect after %s: %s",
		    u->name, t, why);
		u->ops.offline(u->arg);
	}
}

static void
enter_connecting(struct uplink *u)
{
	struct transport_info ti;

	transport_info(u->t, &ti);
	u->t_attempt = clock_mono_ms();
	u->t_connack = 0;
	u->st.attempts++;
	log_info("%s: attempting-connect to %s:%u%s%s (attempt %" PRIu64 ")",
	    u->name, ti.host, ti.port, ti.proxy_host ? " through proxy " : "",
	    ti.proxy_host ? ti.proxy_host : "", u->st.attempts);
	mqttc_reset(u->mc, u->t_attempt);
	timer_ms(u->ev_deadline, u->cfg->aws.connect_timeout_ms);
	if (transport_open(u->t, u->cfg->aws.connect_timeout_ms) != 0)
		uplink_fsm(u, UPLINK_EV_FAILED, "cannot start connecting");
}

static void
enter_subscribing(struct uplink *u)
{
	const struct cfg_aws *a = &u->cfg->aws;
	struct transport_info ti;

	event_del(u->ev_deadline);
	u->t_connack = clock_mono_ms();
	u->st.connects++;
	transport_info(u->t, &ti);
	log_notice("%s: connection-success to %s:%u as %s (%s%s)", u->name,
	    ti.host, ti.port, a->client_id, ti.tls_version, ti.tls_resumed ?
	    ", session resumed" : "");
	mqttc_set_timing(u->mc, a->keepalive_ms, a->operation_timeout_ms);
	if (a->keepalive_ms > 0)
		timer_ms(u->ev_keepalive, a->keepalive_ms);
	if (a->max_connection_age_ms > 0)
		timer_ms(u->ev_age, a->max_connection_age_ms);
	if (subscribe_all(u) != 0)
		uplink_fsm(u, UPLINK_EV_FAILED, "out of memory");
	else if (u->sub_pending == 0)
		uplink_fsm(u, UPLINK_EV_SUBSCRIBED, "nothing to subscribe");
}

static void
enter_waiting(struct uplink *u, const char *why)
{
	uint64_t now = clock_mono_ms();
	bool was_up = u->t_connack != 0;
	uint64_t up = was_up ? now - u->t_connack : 0;
	struct mqttc_wait w;
	char t[32];

	if (!was_up && u->end == MQTTC_END_LOST)
		u->end = MQTTC_END_FAILED;
	conn_end(u, why, u->end == MQTTC_END_PLANNED);
	if (!was_up && u->end != MQTTC_END_PLANNED) {
		u->st.failures++;
		log_warnx("%s: connection-failure: %s", u->name, why);
	}
	mqttc_retry_next(&u->retry, u->end, was_up, up, now - u->t_attempt,
	    random_u32(u), &w);
	if (w.warn)
		log_warnx("%s: probable duplicate client id %s: AWS closed %u "
		    "connections in a row within seconds of CONNACK, which it "
		    "does when another connection uses the same client id; "
		    "give every gateway its own aws.client_id. Backing off to "
		    "the maximum.", u->name, u->cfg->aws.client_id,
		    u->retry.short_lived);
	u->retry_at = now + w.delay_ms;
	fmt_ms(t, sizeof(t), w.delay_ms);
	log_info("%s: next attempt in %s", u->name, t);
	timer_ms(u->ev_retry, w.delay_ms);
}

static void
enter_stopped(struct uplink *u, enum uplink_state from, const char *why)
{
	if (from == UPLINK_SUBSCRIBING || from == UPLINK_ONLINE) {
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		(void)send_packet(u, &pkt);
	}
	u->end = MQTTC_END_PLANNED;
	event_del(u->ev_retry);
	conn_end(u, why, true);
}

/* The one writer of u->state. */
static void
uplink_enter(struct uplink *u, enum uplink_state to, const char *why)
{
	enum uplink_state from = u->state;

	log_debug("%s: %s -> %s (%s)", u->name, state_names[from],
	    state_names[to], why);
	u->state = to;
	switch (to) {
	case UPLINK_OFF:
		break;
	case UPLINK_WAITING:
		enter_waiting(u, why);
		break;
	case UPLINK_CONNECTING:
		enter_connecting(u);
		break;
	case UPLINK_SUBSCRIBING:
		enter_subscribing(u);
		break;
	case UPLINK_ONLINE:
		log_notice("%s: online (%u subscription%s)", u->name,
		    u->st.subscriptions, u->st.subscriptions == 1 ? "" : "s");
		u->ops.online(u->arg);
		break;
	case UPLINK_STOPPED:
		enter_stopped(u, from, why);
		break;
	}
}

#define IN(s)	(1u << (s))
#define LIVE	(IN(UPLINK_CONNECTING) | IN(UPLINK_SUBSCRIBING) | IN(UPLINK_ONLINE))

/* Which event moves the session from which states to which; an event in
 * any other state changes nothing. */
static const struct {
	enum uplink_event	ev;
	unsigned		from;
	enum uplink_state	to;
} moves[] = {
	{ UPLINK_EV_START, IN(UPLINK_OFF) | IN(UPLINK_STOPPED),
	    UPLINK_CONNECTING },
	{ UPLINK_EV_RETRY, IN(UPLINK_WAITING), UPLINK_CONNECTING },
	{ UPLINK_EV_CONNACK, IN(UPLINK_CONNECTING), UPLINK_SUBSCRIBING },
	{ UPLINK_EV_SUBSCRIBED, IN(UPLINK_SUBSCRIBING), UPLINK_ONLINE },
	{ UPLINK_EV_FAILED, LIVE, UPLINK_WAITING },
	{ UPLINK_EV_FIXED, LIVE, UPLINK_WAITING },
	{ UPLINK_EV_PLANNED, LIVE, UPLINK_WAITING },
	{ UPLINK_EV_STOP, LIVE | IN(UPLINK_WAITING), UPLINK_STOPPED },
};

static void
uplink_fsm(struct uplink *u, enum uplink_event ev, const char *why)
{
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		if (moves[i].ev != ev || !(moves[i].from & IN(u->state)))
			continue;
		/* how WAITING is entered decides its delay; a failure before
		 * CONNACK is made FAILED there */
		u->end = ev == UPLINK_EV_FIXED ? MQTTC_END_RETRY :
		    ev == UPLINK_EV_PLANNED ? MQTTC_END_PLANNED : MQTTC_END_LOST;
		uplink_enter(u, moves[i].to, why);
		return;
	}
}

/* ---- timers --------------------------------------------------------------- */

static void
on_retry(evutil_socket_t fd, short ev, void *arg)
{
	uplink_fsm(arg, UPLINK_EV_RETRY, "retry timer");
}

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	char t[32], why[96];

	fmt_ms(t, sizeof(t), u->cfg->aws.connect_timeout_ms);
	snprintf(why, sizeof(why), "no CONNACK within aws.connect_timeout "
	    "(%s)", t);
	uplink_fsm(u, UPLINK_EV_FAILED, why);
}

static void
on_keepalive(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	struct mqtt_packet ping = { .type = MQTT_PINGREQ };
	uint64_t now = clock_mono_ms(), wait;

	if (mqttc_keepalive(u->mc, now, &wait) == MQTTC_KA_PING &&
	    send_packet(u, &ping) == 0) {
		mqttc_ping_sent(u->mc, now);
		timeout_arm(u);
	}
	if (wait != UINT64_MAX)
		timer_ms(u->ev_keepalive, wait);
}

static void
on_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	const char *what[] = { [MQTTC_PING] = "PINGRESP",
	    [MQTTC_PUBLISH] = "PUBACK", [MQTTC_SUBSCRIBE] = "SUBACK" };
	struct mqttc_op late;
	uint64_t wait;
	char t[32], why[128];

	u->timeout_armed = false;
	if (!mqttc_overdue(u->mc, clock_mono_ms(), &late, &wait)) {
		if (wait != UINT64_MAX) {
			timer_ms(u->ev_timeout, wait);
			u->timeout_armed = true;
		}
		return;
	}
	fmt_ms(t, sizeof(t), u->cfg->aws.operation_timeout_ms);
	if (late.kind == MQTTC_PING)
		snprintf(why, sizeof(why), "no PINGRESP within "
		    "aws.operation_timeout (%s)", t);
	else
		snprintf(why, sizeof(why), "no %s for packet %u within "
		    "aws.operation_timeout (%s)", what[late.kind], late.pid, t);
	uplink_fsm(u, UPLINK_EV_FAILED, why);
}

static void
planned_finish(struct uplink *u)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

	(void)send_packet(u, &pkt);
	uplink_fsm(u, UPLINK_EV_PLANNED, "planned reconnect");
}

/*
 * A reconnect of our own choosing: taking no new publishes, once what is
 * in flight is settled (or after aws.operation_timeout at the most), then
 * DISCONNECT and connect again at once.
 */
static void
plan_reconnect(struct uplink *u, const char *what)
{
	if ((u->state != UPLINK_ONLINE && u->state != UPLINK_SUBSCRIBING) ||
	    u->planned)
		return;
	log_info("%s: %s, once in-flight messages are settled", u->name,
	    what);
	u->planned = true;
	if (mqttc_count(u->mc, MQTTC_PUBLISH) > 0)
		timer_ms(u->ev_age, u->cfg->aws.operation_timeout_ms);
	else
		planned_finish(u);
}

/* AWS closes connections older than 24 h: go first. Armed again by
 * plan_reconnect(), it ends the wait for what is in flight. */
static void
on_age(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	char t[32], what[96];

	if (u->planned) {
		if (u->state == UPLINK_ONLINE || u->state == UPLINK_SUBSCRIBING)
			planned_finish(u);
		return;
	}
	fmt_ms(t, sizeof(t), clock_mono_ms() - u->t_connack);
	snprintf(what, sizeof(what), "the connection is %s old: reconnecting "
	    "ahead of AWS's limit", t);
	plan_reconnect(u, what);
}

/* ---- MQTT in -------------------------------------------------------------- */

static void
handle_suback(struct uplink *u, const struct mqtt_suback *sa)
{
	struct mqttc_op op;
	size_t n = sa->reason_codes.len, first, count;

	if (mqttc_ack(u->mc, MQTTC_SUBSCRIBE, sa->packet_id, &op) !=
	    MQTTC_OK) {
		char why[64];

		snprintf(why, sizeof(why), "SUBACK for unknown packet %u",
		    sa->packet_id);
		uplink_fsm(u, UPLINK_EV_FAILED, why);
		return;
	}
	first = (size_t)(op.cookie >> 32);
	count = (size_t)(op.cookie & UINT32_MAX);
	for (size_t i = 0; i < count && first + i < u->nfilters; i++) {
		uint8_t rc = i < n ? sa->reason_codes.ptr[i] : 0x80;

		if (rc <= 1) {
			u->st.subscriptions++;
			continue;
		}
		/* most likely the IoT policy: the connection stays */
		log_warnx("%s: AWS refused the subscription to %s (SUBACK "
		    "0x%02x); check the IoT policy (iot:Subscribe) and "
		    "aws.limits.max_subscriptions", u->name,
		    u->filters[first + i], rc);
	}
	if (u->sub_pending > 0 && --u->sub_pending == 0)
		uplink_fsm(u, UPLINK_EV_SUBSCRIBED, "subscribed");
}

/* MQTT 3.1.1's CONNACK return codes (3.2.2.3), which AWS answers with. */
static const char *
connack_name(uint8_t rc)
{
	static const char *const names[] = {
		"accepted", "unacceptable protocol version",
		"identifier rejected", "server unavailable",
		"bad user name or password", "not authorized",
	};

	return rc < sizeof(names) / sizeof(*names) ? names[rc] :
	    "unknown return code";
}

static void
handle_packet(struct uplink *u, const struct mqtt_packet *pkt)
{
	struct mqtt_packet ack = { .type = MQTT_PUBACK };
	struct mqttc_op op;
	uint64_t gen = u->gen;
	char why[192];

	switch (pkt->type) {
	case MQTT_CONNACK:
		if (u->state != UPLINK_CONNECTING)
			break;
		if (pkt->connack.reason_code != 0) {
			snprintf(why, sizeof(why), "CONNACK refused: %s (check "
			    "the IoT policy's iot:Connect for client id %s)",
			    connack_name(pkt->connack.reason_code),
			    u->cfg->aws.client_id);
			uplink_fsm(u, UPLINK_EV_FAILED, why);
			return;
		}
		transport_established(u->t);
		uplink_fsm(u, UPLINK_EV_CONNACK, "CONNACK");
		return;
	case MQTT_SUBACK:
		if (u->state != UPLINK_SUBSCRIBING && u->state != UPLINK_ONLINE)
			break;
		handle_suback(u, &pkt->suback);
		return;
	case MQTT_PUBACK:
		if (mqttc_ack(u->mc, MQTTC_PUBLISH, pkt->ack.packet_id, &op) !=
		    MQTTC_OK) {
			log_debug("%s: PUBACK for unknown packet %u", u->name,
			    pkt->ack.packet_id);
			return;
		}
		u->ops.done(u->arg, op.cookie);
		if (u->gen == gen && u->planned &&
		    mqttc_count(u->mc, MQTTC_PUBLISH) == 0)
			planned_finish(u);
		return;
	case MQTT_PUBLISH:
		if (u->t_connack == 0 || pkt->publish.qos > 1)
			break;
		u->st.received++;
		u->ops.message(u->arg, &pkt->publish);
		if (pkt->publish.qos == 1 && u->gen == gen) {
			ack.ack.packet_id = pkt->publish.packet_id;
			(void)send_packet(u, &ack);
		}
		return;
	case MQTT_PINGRESP:
		mqttc_pong(u->mc);
		return;
	default:
		break;
	}
	snprintf(why, sizeof(why), "AWS sent an unexpected %s",
	    mqtt_type_name(pkt->type));
	uplink_fsm(u, UPLINK_EV_FAILED, why);
}

/* Frame and handle every complete packet of the stream. */
static void
on_data(void *arg, struct evbuffer *in)
{
	struct uplink *u = arg;
	uint64_t gen = u->gen;

	while (u->gen == gen) {
		uint8_t head[MQTT_MAX_HEADER], *p;
		struct mqtt_header h;
		struct mqtt_packet pkt;
		enum mqtt_status st;
		size_t used;
		char why[96];

		st = mqtt_probe(head, (size_t)evbuffer_copyout(in, head,
		    sizeof(head)), UPLINK_MAX_PACKET, &h);
		if (st == MQTT_NEED_MORE)
			return;
		if (st == MQTT_OK && evbuffer_get_length(in) < h.size)
			return;
		if (st == MQTT_OK) {
			if ((p = evbuffer_pullup(in, (ev_ssize_t)h.size)) ==
			    NULL) {
				uplink_fsm(u, UPLINK_EV_FAILED,
				    "out of memory");
				return;
			}
			st = mqtt_decode(p, h.size, MQTT_V311,
			    UPLINK_MAX_PACKET, &pkt, &used);
		}
		if (st != MQTT_OK) {
			snprintf(why, sizeof(why), "malformed MQTT from AWS: "
			    "%s", mqtt_strerror(st));
			uplink_fsm(u, UPLINK_EV_FAILED, why);
			return;
		}
		handle_packet(u, &pkt);
		if (u->gen == gen)
			evbuffer_drain(in, used);
	}
}

/* ---- the transport's news ----------------------------------------------- */

static void
on_opened(void *arg)
{
	struct uplink *u = arg;
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	uint64_t ka;

	if (u->state != UPLINK_CONNECTING)
		return;
	/* AWS takes keepalives of 30..1200 s */
	ka = u->cfg->aws.keepalive_ms / 1000;
	ka = ka < 30 ? 30 : ka > 1200 ? 1200 : ka;
	pkt.connect.clean_start = true;
	pkt.connect.keep_alive = (uint16_t)ka;
	pkt.connect.client_id = (struct buf_view){
	    (const uint8_t *)u->cfg->aws.client_id,
	    strlen(u->cfg->aws.client_id) };
	if (send_packet(u, &pkt) != 0)
		uplink_fsm(u, UPLINK_EV_FAILED, "cannot send CONNECT");
}

static void
on_drained(void *arg)
{
	struct uplink *u = arg;
	uint64_t gen = u->gen, cookie;

	if (u->t_connack == 0)
		return;
	while (u->gen == gen && mqttc_qos0_pop(u->mc, &cookie))
		u->ops.done(u->arg, cookie);
	if (u->gen == gen)
		u->ops.drained(u->arg);
}

static void
on_closed(void *arg, enum transport_end end, const char *why)
{
	uplink_fsm(arg, end == TRANSPORT_RETRY ? UPLINK_EV_FIXED :
	    UPLINK_EV_FAILED, why);
}

/* The connection's authorization ends soon (its temporary credentials). */
static void
on_expiring(void *arg, const char *why)
{
	char what[192];

	snprintf(what, sizeof(what), "%s: reconnecting", why);
	plan_reconnect(arg, what);
}

static const struct transport_cb uplink_transport_cb = {
	.opened = on_opened,
	.data = on_data,
	.drained = on_drained,
	.closed = on_closed,
	.expiring = on_expiring,
};

/* ---- life ----------------------------------------------------------------- */

static void
retry_params(struct uplink *u, bool reset)
{
	const struct cfg_reconnect *rc = &u->cfg->reconnect;

	if (reset)
		mqttc_retry_init(&u->retry, rc->base_ms, rc->max_ms,
		    rc->stable_ms, rc->jitter);
	else
		mqttc_retry_params(&u->retry, rc->base_ms, rc->max_ms,
		    rc->stable_ms, rc->jitter);
}

struct uplink *
uplink_new(struct event_base *base, const struct cfg *cfg, struct transport *t,
    const struct uplink_subs *subs, const char *name,
    const struct uplink_ops *ops, void *arg)
{
	struct uplink *u;

	if ((u = malloc(sizeof(*u))) == NULL) {
		transport_free(t);
		return NULL;
	}
	*u = (struct uplink){ .base = base, .cfg = cfg, .t = t, .ops = *ops,
	    .arg = arg, .state = UPLINK_OFF };
	snprintf(u->name, sizeof(u->name), "%s", name);
	transport_set_cb(t, &uplink_transport_cb, u);
	retry_params(u, true);
	u->ev_retry = evtimer_new(base, on_retry, u);
	u->ev_deadline = evtimer_new(base, on_deadline, u);
	u->ev_keepalive = evtimer_new(base, on_keepalive, u);
	u->ev_timeout = evtimer_new(base, on_timeout, u);
	u->ev_age = evtimer_new(base, on_age, u);
	if ((u->mc = mqttc_new()) == NULL || u->ev_retry == NULL ||
	    u->ev_deadline == NULL || u->ev_keepalive == NULL ||
	    u->ev_timeout == NULL || u->ev_age == NULL ||
	    filters_set(u, subs) != 0) {
		uplink_free(u);
		return NULL;
	}
	if (cfg->aws.present)
		uplink_fsm(u, UPLINK_EV_START, "start");
	return u;
}

int
uplink_reload(struct uplink *u, const struct cfg *cfg,
    const struct uplink_subs *subs)
{
	const struct cfg_aws *x = &u->cfg->aws, *y = &cfg->aws;
	bool changed = transport_differs(u->t, cfg) || filters_differ(u, subs) ||
	    (x->present && y->present &&
	    (strcmp(x->client_id, y->client_id) != 0 ||
	    x->keepalive_ms != y->keepalive_ms)) ||
	    (u->state == UPLINK_OFF && y->present);

	u->cfg = cfg;
	if (!changed) {
		/* keep the attempt count: a reload is no stable connection */
		retry_params(u, false);
		mqttc_set_timing(u->mc, y->keepalive_ms, y->operation_timeout_ms);
		return 0;
	}
	uplink_fsm(u, UPLINK_EV_STOP, "configuration changed");
	if (u->state != UPLINK_OFF)
		uplink_enter(u, UPLINK_OFF, "configuration changed");
	retry_params(u, true);
	if (filters_set(u, subs) != 0 || transport_reload(u->t, cfg) != 0) {
		snprintf(u->st.last_error, sizeof(u->st.last_error),
		    "the aws settings cannot be used (see the log)");
		log_warnx("%s: stopped until a reload fixes the aws settings",
		    u->name);
		return -1;
	}
	if (y->present) {
		log_info("%s: the aws settings changed: reconnecting", u->name);
		uplink_fsm(u, UPLINK_EV_START, "configuration changed");
	} else {
		log_info("%s: no aws section any more: stopped", u->name);
	}
	return 0;
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	if (u->state != UPLINK_OFF && u->state != UPLINK_STOPPED) {
		uplink_fsm(u, UPLINK_EV_STOP, "stopping");
		log_info("%s: stopped", u->name);
	}
	transport_free(u->t);
	filters_free(u);
	if (u->ev_retry != NULL)
		event_free(u->ev_retry);
	if (u->ev_deadline != NULL)
		event_free(u->ev_deadline);
	if (u->ev_keepalive != NULL)
		event_free(u->ev_keepalive);
	if (u->ev_timeout != NULL)
		event_free(u->ev_timeout);
	if (u->ev_age != NULL)
		event_free(u->ev_age);
	mqttc_free(u->mc);
	free(u->scratch);
	free(u);
}

void
uplink_status(const struct uplink *u, struct uplink_status *st)
{
	uint64_t now = clock_mono_ms();
	struct transport_info ti;

	transport_info(u->t, &ti);
	*st = u->st;
	st->state = u->state;
	st->clock_offset_s = ti.clock_offset_s;
	st->bytes_out = ti.bytes_out;
	st->bytes_in = ti.bytes_in;
	st->inflight = (unsigned)mqttc_count(u->mc, MQTTC_PUBLISH);
	st->next_attempt_ms = u->state == UPLINK_WAITING && u->retry_at > now ?
	    u->retry_at - now : 0;
	st->connected_ms = u->t_connack ? now - u->t_connack : 0;
}
