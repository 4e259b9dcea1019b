/*
 * The bridge: rules, AWS's limits, the queue and its drain. See bridge.h for
 * the contract. Every message bound upstream goes through the queue, even
 * when the uplink is online with nothing queued: the queue is the one place
 * that knows what AWS has not acknowledged yet, so a reconnect, a restart or
 * a crash never has to ask anything else.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <mbedtls/base64.h>

#include "base/json.h"
#include "config/cfg.h"
#include "daemon/bridge.h"
#include "daemon/broker.h"
#include "daemon/clock.h"
#include "daemon/file.h"
#include "daemon/log.h"
#include "daemon/str.h"
#include "daemon/uplink.h"
#include "queue/queue.h"
#include "mqtt/mqtt.h"
#include "topic/topic.h"
#include "util/ratelimit.h"

#define BRIDGE_FLAG_RETAIN	0x01	/* queue record flag */
#define BRIDGE_SLOW_SYNC_MS	1000	/* checkpoints under fsync always/never */
#define BRIDGE_LOG_RATE		1	/* drop log lines per second ... */
#define BRIDGE_LOG_BURST	5	/* ... after a burst of this many */
#define BRIDGE_DEAD_LETTERS	"dead-letters"

/* Why AWS would refuse a message: never sent, dead-lettered. */
enum refusal {
	REFUSE_PAYLOAD,
	REFUSE_TOPIC_LENGTH,
	REFUSE_TOPIC_DEPTH,
	REFUSE_RESERVED,
	REFUSE_NREASONS,
};

static const char *const refusal_names[REFUSE_NREASONS] = {
	"payload_too_large", "topic_too_long", "topic_too_deep",
	"reserved_topic",
};

/* A record handed to the uplink: QoS 1 awaits its PUBACK (pid), QoS 0 the
 * output buffer's draining (pid 0). */
struct flight {
	uint64_t	seq;
	uint16_t	pid;
};

struct bridge {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct broker		*b;
	struct uplink		*up;
	struct queue		*q;
	struct event		*ev_pump, *ev_sync, *ev_sync_now;
	uint64_t		 last_flush_us;	/* a sync last made appends durable */
	struct flight		*fl;
	size_t			 nfl, capfl;
	bool			 backlog;	/* draining at drain_hz */
	bool			 pump_timer;	/* ev_pump armed as a timer */
	bool			 disk_full;
	struct ratelimit	 rate, bw, drain, log_rl;
	uint64_t		 log_suppressed;
	uint64_t		 drops_seen[QUEUE_DROPPED_NREASONS];
	uint64_t		 refused[REFUSE_NREASONS];
	uint64_t		 dead_letters;
	uint64_t		 queued, sent, acked, from_aws, downgraded;
	char			*dl_path;
	char			*tbuf;		/* a topic being mapped */
	/* per rule of cfg: local_prefix + topic, remote_prefix + topic */
	char			**lfilter, **rfilter;
	size_t			 nfilters;
};

/* Drops and refusals can come at the rate devices publish: log a few, then
 * one line per second saying how many were not logged. */
static bool
log_allowed(struct bridge *br)
{
	uint64_t now = clock_mono_us();

	if (ratelimit_take(&br->log_rl, 1, now)) {
		if (br->log_suppressed > 0) {
			log_warnx("bridge: %" PRIu64 " more like the last were "
			    "not logged", br->log_suppressed);
			br->log_suppressed = 0;
		}
		return true;
	}
	br->log_suppressed++;
	return false;
}

/* ---- acknowledgements owed to devices ----------------------------------- */

/*
 * Records that left the queue without AWS's acknowledgement (dropped from a
 * full queue): below the released position and below every record still in
 * flight, whose answer may yet come. 0x97 tells an MQTT 5 device.
 */
static void
owed_dropped(struct bridge *br)
{
	struct queue_stats st;
	uint64_t lowest, cut;

	if (!broker_acks_awaiting_delivery(br->b, &lowest))
		return;
	queue_stats(br->q, &st);
	cut = st.acked_seq;
	for (size_t i = 0; i < br->nfl; i++)
		if (br->fl[i].seq < cut)
			cut = br->fl[i].seq;
	if (lowest < cut)
		broker_acks_undelivered_below(br->b, cut, 0x97);
}

/* ---- AWS's rules and the dead letters ----------------------------------- */

/* Reserved topics a device may publish to (AWS IoT "reserved topics"). */
static const char *const aws_publishable[] = {
	"$aws/things/", "$aws/rules/", "$aws/certificates/",
	"$aws/provisioning-templates/", "$aws/sitewise/", "$aws/defender/",
};

static int
aws_check(const struct bridge *br, const char *t, size_t tlen, size_t plen,
    char *why, size_t cap)
{
	const struct cfg_aws_limits *l = &br->cfg->aws.limits;
	size_t skip = 0, slashes = 0;

	if (plen > l->max_payload) {
		snprintf(why, cap, "payload of %zu bytes is over "
		    "aws.limits.max_payload (%" PRIu64 ")", plen, l->max_payload);
		return REFUSE_PAYLOAD;
	}
	if (tlen > 0 && t[0] == '$') {
		bool ok = false;

		for (size_t i = 0; i < sizeof(aws_publishable) /
		    sizeof(*aws_publishable) && !ok; i++)
			ok = tlen > strlen(aws_publishable[i]) &&
			    memcmp(t, aws_publishable[i],
			    strlen(aws_publishable[i])) == 0;
		if (!ok) {
			snprintf(why, cap, "topics starting with $ are "
			    "reserved by AWS (only $aws/things/, $aws/rules/ "
			    "and the like take publishes)");
			return REFUSE_RESERVED;
		}
		/* Basic Ingest: $aws/rules/RULE/ does not count */
		if (memcmp(t, "$aws/rules/", 11) == 0) {
			const char *e = memchr(t + 11, '/', tlen - 11);

			skip = e != NULL ? (size_t)(e - t) + 1 : tlen;
		}
	}
	if (tlen - skip > (size_t)l->max_topic_length) {
		snprintf(why, cap, "topic of %zu bytes is over "
		    "aws.limits.max_topic_length (%" PRId64 ")", tlen - skip,
		    l->max_topic_length);
		return REFUSE_TOPIC_LENGTH;
	}
	for (size_t i = skip; i < tlen; i++)
		slashes += t[i] == '/';
	if (slashes > (size_t)l->max_topic_slashes) {
		snprintf(why, cap, "topic has %zu '/', over "
		    "aws.limits.max_topic_slashes (%" PRId64 ")", slashes,
		    l->max_topic_slashes);
		return REFUSE_TOPIC_DEPTH;
	}
	return -1;
}

/* p[0..n) as a JSON string with its quotes. */
static void
json_string(FILE *f, const void *p, size_t n)
{
	size_t need = json_escape(NULL, 0, p, n);
	char *e = malloc(need + 1);

	if (e == NULL)
		return;
	json_escape(e, need + 1, p, n);
	fprintf(f, "\"%s\"", e);
	free(e);
}

/*
 * One JSON line per refused message in STATE_DIR/dead-letters, for an
 * operator to inspect; bounded by keeping one previous file of half the
 * budget. Diagnostics, not data: no fsync.
 */
static void
dead_letter(struct bridge *br, const char *reason, const char *topic,
    size_t tlen, const struct bridge_msg *m)
{
	uint64_t max = br->cfg->aws.dead_letter.max_bytes;
	size_t need = 128 + 6 * tlen + 4 * (m->payload_len / 3 + 1), b64;
	uint8_t *enc = NULL;
	struct stat sb;
	FILE *f;
	char old[PATH_MAX];

	if (max == 0 || br->dl_path == NULL || need > max / 2)
		return;
	if (stat(br->dl_path, &sb) == 0 && (uint64_t)sb.st_size + need > max / 2) {
		snprintf(old, sizeof(old), "%s.1", br->dl_path);
		(void)rename(br->dl_path, old);
	}
	if ((enc = malloc(4 * (m->payload_len / 3 + 1) + 1)) == NULL)
		return;
	if (mbedtls_base64_encode(enc, 4 * (m->payload_len / 3 + 1) + 1, &b64,
	    m->payload, m->payload_len) != 0 ||
	    (f = fopen(br->dl_path, "ae")) == NULL) {
		free(enc);
		return;
	}
	fprintf(f, "{\"time_ms\":%" PRIu64 ",\"reason\":", clock_wall_ms());
	json_string(f, reason, strlen(reason));
	fputs(",\"topic\":", f);
	json_string(f, topic, tlen);
	fprintf(f, ",\"qos\":%u,\"retain\":%s,\"payload_base64\":\"%.*s\"}\n",
	    m->qos, m->retain ? "true" : "false", (int)b64, enc);
	if (fclose(f) == 0)
		br->dead_letters++;
	free(enc);
}

/* ---- rules -------------------------------------------------------------- */

static void
filters_free(struct bridge *br)
{
	for (size_t i = 0; i < br->nfilters; i++) {
		free(br->lfilter[i]);
		free(br->rfilter[i]);
	}
	free(br->lfilter);
	free(br->rfilter);
	br->lfilter = br->rfilter = NULL;
	br->nfilters = 0;
}

/* Each rule's filter on both sides, made once per configuration rather
 * than for every message. */
static int
filters_build(struct bridge *br, const struct cfg *cfg)
{
	filters_free(br);
	if (cfg->nbridge == 0)
		return 0;
	if ((br->lfilter = calloc(cfg->nbridge, sizeof(char *))) == NULL ||
	    (br->rfilter = calloc(cfg->nbridge, sizeof(char *))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nbridge; i++) {
		const struct cfg_bridge_rule *r = &cfg->bridge[i];

		br->nfilters = i + 1;
		if ((br->lfilter[i] = str_concat3(r->local_prefix, r->topic,
		    "")) == NULL || (br->rfilter[i] = str_concat3(
		    r->remote_prefix, r->topic, "")) == NULL)
			return -1;
	}
	return 0;
}

/*
 * The first rule sending out (or in) whose filter on the message's side
 * (prefix + topic) matches t; *rest is where t's part after the prefix
 * starts.
 */
static const struct cfg_bridge_rule *
rule_match(const struct bridge *br, bool out, const char *t, size_t tlen,
    size_t *rest)
{
	const struct cfg *cfg = br->cfg;

	for (size_t i = 0; i < cfg->nbridge && i < br->nfilters; i++) {
		const struct cfg_bridge_rule *r = &cfg->bridge[i];
		const char *f = out ? br->lfilter[i] : br->rfilter[i];

		if (r->direction == (out ? CFG_DIR_IN : CFG_DIR_OUT))
			continue;
		if (topic_match(f, strlen(f), t, tlen)) {
			*rest = strlen(out ? r->local_prefix : r->remote_prefix);
			return r;
		}
	}
	return NULL;
}

static bool
rules_send_out(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nbridge; i++)
		if (cfg->bridge[i].direction != CFG_DIR_IN)
			return true;
	return false;
}

/* ---- the drain ---------------------------------------------------------- */

static void
pump_later(struct bridge *br, uint64_t us)
{
	struct timeval tv = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_usec = (suseconds_t)(us % 1000000),
	};

	if (br->pump_timer)
		return;
	br->pump_timer = true;
	event_add(br->ev_pump, &tv);
}

static void
pump_soon(struct bridge *br)
{
	if (br->q != NULL && !br->pump_timer &&
	    !event_pending(br->ev_pump, EV_TIMEOUT, NULL))
		event_active(br->ev_pump, EV_TIMEOUT, 0);
}

static void
pump(struct bridge *br)
{
	const struct cfg *cfg = br->cfg;

	while (br->q != NULL && uplink_ready(br->up) &&
	    br->nfl < br->capfl) {
		struct queue_rec r;
		enum queue_status st;
		uint64_t now = clock_mono_us(), bytes, wait = 0, w;
		uint16_t pid;

		st = queue_peek(br->q, &r);
		if (st == QUEUE_EMPTY) {
			if (br->backlog)
				log_info("bridge: backlog drained");
			br->backlog = false;
			return;
		}
		if (st == QUEUE_WINDOW_FULL)
			return;
		if (st != QUEUE_OK) {
			if (log_allowed(br))
				log_warnx("bridge: reading the queue: %s",
				    queue_strerror(st));
			pump_later(br, 1000000);
			return;
		}
		bytes = r.msg.topic.len + r.msg.payload.len + 4;
		if ((w = ratelimit_delay_us(&br->rate, 1, now)) > wait)
			wait = w;
		if ((w = ratelimit_delay_us(&br->bw, bytes, now)) > wait)
			wait = w;
		if (br->backlog && cfg->queue.drain_hz > 0 &&
		    (w = ratelimit_delay_us(&br->drain, 1, now)) > wait)
			wait = w;
		if (wait > 0) {
			pump_later(br, wait);
			return;
		}
		(void)ratelimit_take(&br->rate, 1, now);
		(void)ratelimit_take(&br->bw, bytes, now);
		if (br->backlog && cfg->queue.drain_hz > 0)
			(void)ratelimit_take(&br->drain, 1, now);
		if ((st = queue_next(br->q, &r)) != QUEUE_OK)
			return;
		if (uplink_publish(br->up, r.msg.topic, r.msg.payload,
		    r.msg.qos > 1 ? 1 : r.msg.qos,
		    (r.msg.flags & BRIDGE_FLAG_RETAIN) != 0, r.dup, &pid) != 0)
			return;	/* the uplink is going down; rewound later */
		br->fl[br->nfl++] = (struct flight){ .seq = r.seq, .pid = pid };
		br->sent++;
	}
}

/* The drain's bucket holds 50 ms worth: a timer that fires late must not
 * lose tokens, or the rate would fall short of drain_hz. */
static void
drain_init(struct bridge *br)
{
	uint64_t hz = (uint64_t)br->cfg->queue.drain_hz;

	ratelimit_init(&br->drain, hz, hz / 20 > 1 ? hz / 20 : 1, clock_mono_us());
}

static void
on_pump(evutil_socket_t fd, short ev, void *arg)
{
	struct bridge *br = arg;

	br->pump_timer = false;
	pump(br);
}

static void
flight_done(struct bridge *br, size_t i)
{
	uint64_t seq = br->fl[i].seq;

	br->fl[i] = br->fl[--br->nfl];
	if (queue_ack(br->q, seq) == QUEUE_OK)
		br->acked++;
	broker_acks_delivered(br->b, seq, 0);
}

static void
up_acked(void *arg, uint16_t pid)
{
	struct bridge *br = arg;

	for (size_t i = 0; i < br->nfl; i++)
		if (br->fl[i].pid == pid) {
			flight_done(br, i);
			break;
		}
	pump(br);
}

static void
up_drained(void *arg)
{
	struct bridge *br = arg;

	for (size_t i = br->nfl; i-- > 0; )
		if (br->fl[i].pid == 0)
			flight_done(br, i);
	pump(br);
}

static void
up_online(void *arg)
{
	struct bridge *br = arg;
	struct queue_stats st;

	if (br->q == NULL)
		return;
	br->nfl = 0;
	queue_rewind(br->q);
	queue_stats(br->q, &st);
	br->backlog = st.depth_msgs > 0;
	if (br->backlog)
		log_info("bridge: %" PRIu64 " queued message%s to send, %s "
		    "unacknowledged ones first", st.depth_msgs,
		    st.depth_msgs == 1 ? "" : "s",
		    st.inflight > 0 ? "the" : "no");
	drain_init(br);
	pump(br);
}

static void
up_offline(void *arg)
{
	struct bridge *br = arg;

	/* nothing in flight will be acknowledged now: resent after rewind */
	br->nfl = 0;
}

static void
up_message(void *arg, const struct mqtt_publish *pub)
{
	struct bridge *br = arg;
	const struct cfg_bridge_rule *r;
	const char *t = (const char *)pub->topic.ptr;
	size_t tl = pub->topic.len, rest, pl, ll;
	char *topic = br->tbuf;

	if ((r = rule_match(br, false, t, tl, &rest)) == NULL) {
		char q[128];

		log_debug("bridge: message from AWS on %s matches no in rule",
		    log_escape(q, sizeof(q), t, tl));
		return;
	}
	pl = strlen(r->local_prefix);
	ll = pl + tl - rest;
	if (ll > 65535)
		return;
	memcpy(topic, r->local_prefix, pl);
	memcpy(topic + pl, t + rest, tl - rest);
	if (broker_publish_remote(br->b, topic, ll, pub->payload.ptr,
	    pub->payload.len, pub->qos < r->qos ? pub->qos : (uint8_t)r->qos,
	    pub->retain) == 0)
		br->from_aws++;
}

static const struct uplink_ops bridge_uplink_ops = {
	.online = up_online,
	.offline = up_offline,
	.acked = up_acked,
	.drained = up_drained,
	.message = up_message,
};

/* ---- offer -------------------------------------------------------------- */

enum bridge_verdict
bridge_offer(struct bridge *br, const struct bridge_msg *m, uint64_t *seqp)
{
	const struct cfg_bridge_rule *r;
	char *topic, why[160], q[160];
	size_t rest, pl, tl;
	struct queue_msg qm = { 0 };
	enum queue_status st;
	uint64_t seq;
	int refusal;

	if (br == NULL || br->q == NULL ||
	    (r = rule_match(br, true, m->topic, m->topic_len, &rest)) == NULL)
		return BRIDGE_ACK;
	topic = br->tbuf;
	pl = strlen(r->remote_prefix);
	tl = pl + m->topic_len - rest;
	if (tl > 65535)
		return BRIDGE_ACK;
	memcpy(topic, r->remote_prefix, pl);
	memcpy(topic + pl, m->topic + rest, m->topic_len - rest);
	if ((refusal = aws_check(br, topic, tl, m->payload_len, why,
	    sizeof(why))) >= 0) {
		br->refused[refusal]++;
		log_warnx("bridge: not sent to AWS, dead-lettered: %s: %s",
		    log_escape(q, sizeof(q), topic, tl), why);
		dead_letter(br, refusal_names[refusal], topic, tl, m);
		return BRIDGE_ACK;
	}
	qm.qos = m->qos < r->qos ? m->qos : (uint8_t)r->qos;
	if (qm.qos > 1) {
		qm.qos = 1;	/* AWS IoT has no QoS 2 */
		br->downgraded++;
	}
	qm.flags = m->retain ? BRIDGE_FLAG_RETAIN : 0;
	qm.topic = (struct buf_view){ (const uint8_t *)topic, tl };
	qm.payload = (struct buf_view){ m->payload, m->payload_len };
	st = queue_append(br->q, &qm, clock_wall_ms(), &seq);
	switch (st) {
	case QUEUE_OK:
		if (br->disk_full) {
			log_notice("bridge: the queue takes messages again");
			br->disk_full = false;
		}
		break;
	case QUEUE_FULL:
		if (log_allowed(br))
			log_warnx("bridge: queue full (queue.drop: newest): "
			    "refused a message on %s", log_escape(q, sizeof(q),
			    topic, tl));
		return BRIDGE_REFUSED;
	case QUEUE_NOSPACE:
	case QUEUE_IO:
		if (!br->disk_full || log_allowed(br))
			log_warnx("bridge: the queue cannot take a message: "
			    "%s%s; nothing queued is lost", queue_strerror(st),
			    st == QUEUE_IO ? "" : " (disk full)");
		br->disk_full = true;
		return BRIDGE_REFUSED;
	default:
		if (log_allowed(br))
			log_warnx("bridge: the queue refused a message on %s: "
			    "%s", log_escape(q, sizeof(q), topic, tl),
			    queue_strerror(st));
		return BRIDGE_REFUSED;
	}
	br->queued++;
	owed_dropped(br);
	pump_soon(br);
	if (seqp == NULL)
		return BRIDGE_ACK;
	*seqp = seq;
	if (r->ack == CFG_ACK_DELIVERED)
		return BRIDGE_DELIVERED;
	if (seq <= queue_durable_seq(br->q))
		return BRIDGE_ACK;
	/* Group commit bounds the flushes to one per fsync_interval; a message
	 * after a quiet interval need not wait for the next tick. */
	if (clock_mono_us() - br->last_flush_us >=
	    br->cfg->queue.fsync_interval_ms * 1000 &&
	    !event_pending(br->ev_sync_now, EV_TIMEOUT, NULL))
		event_active(br->ev_sync_now, EV_TIMEOUT, 0);
	return BRIDGE_STORED;
}

/* ---- sync --------------------------------------------------------------- */

static uint64_t
sync_interval_ms(const struct cfg *cfg)
{
	return cfg->queue.fsync == CFG_FSYNC_INTERVAL ?
	    cfg->queue.fsync_interval_ms : BRIDGE_SLOW_SYNC_MS;
}

/* Drops from the head happen inside queue_append(): say so here, at most
 * once per sync, with the count. */
static void
drops_report(struct bridge *br)
{
	struct queue_stats st;
	uint64_t n;

	queue_stats(br->q, &st);
	if ((n = st.drops[QUEUE_DROPPED_OLDEST] -
	    br->drops_seen[QUEUE_DROPPED_OLDEST]) > 0 && log_allowed(br))
		log_warnx("bridge: queue full (queue.drop: oldest): %" PRIu64
		    " message%s discarded from the head", n, n == 1 ? "" : "s");
	memcpy(br->drops_seen, st.drops, sizeof(br->drops_seen));
}

static void
on_sync(evutil_socket_t fd, short ev, void *arg)
{
	struct bridge *br = arg;
	uint64_t durable = queue_durable_seq(br->q);
	enum queue_status st;

	if ((st = queue_sync(br->q)) != QUEUE_OK && log_allowed(br))
		log_warnx("bridge: queue sync: %s", queue_strerror(st));
	if (queue_durable_seq(br->q) != durable)
		br->last_flush_us = clock_mono_us();
	broker_acks_durable(br->b, queue_durable_seq(br->q));
	owed_dropped(br);
	drops_report(br);
}

/* ---- status ------------------------------------------------------------- */

void
bridge_stats(struct bridge *br, struct bridge_stats *st)
{
	static const char *const fs[] = { "always", "interval", "never" };
	uint64_t now = clock_wall_ms();

	memset(st, 0, sizeof(*st));
	uplink_status(br->up, &st->up);
	if ((st->queue_open = br->q != NULL))
		queue_stats(br->q, &st->q);
	st->oldest_age_ms = st->q.oldest_ms && now > st->q.oldest_ms ?
	    now - st->q.oldest_ms : 0;
	st->backlog = br->backlog;
	st->disk_full = br->disk_full;
	st->drain_hz = br->cfg->queue.drain_hz;
	st->fsync = fs[br->cfg->queue.fsync];
	st->queued = br->queued;
	st->sent = br->sent;
	st->acked = br->acked;
	st->from_aws = br->from_aws;
	for (int i = 0; i < REFUSE_NREASONS; i++)
		st->refused += br->refused[i];
	st->dead_letters = br->dead_letters;
	st->downgraded = br->downgraded;
}

void
bridge_sys(struct bridge *br)
{
	struct bridge_stats st;
	struct broker *b;

	if (br == NULL)
		return;
	b = br->b;
	bridge_stats(br, &st);
	broker_sys_publish(b, "$SYS/broker/uplink/state", "%s",
	    uplink_state_name(st.up.state));
	broker_sys_publish(b, "$SYS/broker/uplink/last_error", "%s",
	    st.up.last_error);
	broker_sys_publish(b, "$SYS/broker/uplink/connects", "%" PRIu64,
	    st.up.connects);
	broker_sys_publish(b, "$SYS/broker/uplink/failures", "%" PRIu64,
	    st.up.failures);
	broker_sys_publish(b, "$SYS/broker/uplink/next_attempt_ms", "%" PRIu64,
	    st.up.next_attempt_ms);
	broker_sys_publish(b, "$SYS/broker/uplink/messages/sent", "%" PRIu64,
	    st.sent);
	broker_sys_publish(b, "$SYS/broker/uplink/messages/received",
	    "%" PRIu64, st.from_aws);
	broker_sys_publish(b, "$SYS/broker/uplink/messages/refused",
	    "%" PRIu64, st.refused);
	broker_sys_publish(b, "$SYS/broker/queue/messages", "%" PRIu64,
	    st.q.depth_msgs);
	broker_sys_publish(b, "$SYS/broker/queue/bytes", "%" PRIu64,
	    st.q.depth_bytes);
	broker_sys_publish(b, "$SYS/broker/queue/oldest_age_ms", "%" PRIu64,
	    st.oldest_age_ms);
	for (int i = 0; i < QUEUE_DROPPED_NREASONS; i++) {
		char t[64];

		snprintf(t, sizeof(t), "$SYS/broker/queue/drops/%s",
		    queue_drop_name((enum queue_drop)i));
		broker_sys_publish(b, t, "%" PRIu64, st.q.drops[i]);
	}
}

void
bridge_summary(struct bridge *br, char *buf, size_t cap)
{
	struct bridge_stats st;

	bridge_stats(br, &st);
	snprintf(buf, cap, "uplink %s, queue %" PRIu64 " message%s",
	    uplink_state_name(st.up.state), st.q.depth_msgs,
	    st.q.depth_msgs == 1 ? "" : "s");
}

size_t
bridge_status_json(struct bridge *br, char *buf, size_t cap)
{
	struct bridge_stats st;
	char err[sizeof(st.up.last_error) * 6 + 1];
	int n;

	bridge_stats(br, &st);
	json_escape(err, sizeof(err), st.up.last_error, strlen(st.up.last_error));
	n = snprintf(buf, cap,
	    "\"uplink\":{\"state\":\"%s\",\"last_error\":\"%s\","
	    "\"attempts\":%" PRIu64 ",\"connects\":%" PRIu64 ","
	    "\"failures\":%" PRIu64 ",\"disconnects\":%" PRIu64 ","
	    "\"next_attempt_ms\":%" PRIu64 ",\"connected_ms\":%" PRIu64 ","
	    "\"clock_offset_s\":%" PRId64 ",\"inflight\":%u,"
	    "\"subscriptions\":%u,\"messages_sent\":%" PRIu64 ","
	    "\"messages_acked\":%" PRIu64 ",\"messages_received\":%" PRIu64
	    ",\"refused\":%" PRIu64 ",\"dead_letters\":%" PRIu64 ","
	    "\"qos2_downgraded\":%" PRIu64 "},"
	    "\"queue\":{\"open\":%s,\"messages\":%" PRIu64 ",\"bytes\":%"
	    PRIu64 ",\"oldest_age_ms\":%" PRIu64 ",\"inflight\":%" PRIu64 ","
	    "\"disk_bytes\":%" PRIu64 ",\"segments\":%u,\"disk_full\":%s,"
	    "\"backlog\":%s,\"drain_hz\":%" PRId64 ",\"fsync\":\"%s\","
	    "\"drops\":{\"oldest\":%" PRIu64 ",\"newest\":%" PRIu64
	    ",\"corrupt\":%" PRIu64 ",\"disk\":%" PRIu64 "}}",
	    uplink_state_name(st.up.state), err, st.up.attempts,
	    st.up.connects, st.up.failures, st.up.disconnects,
	    st.up.next_attempt_ms, st.up.connected_ms, st.up.clock_offset_s,
	    st.up.inflight, st.up.subscriptions, st.sent, st.acked,
	    st.from_aws, st.refused, st.dead_letters, st.downgraded,
	    st.queue_open ? "true" : "false", st.q.depth_msgs,
	    st.q.depth_bytes, st.oldest_age_ms, st.q.inflight,
	    st.q.disk_bytes, st.q.segments, st.disk_full ? "true" : "false",
	    st.backlog ? "true" : "false", st.drain_hz, st.fsync,
	    st.q.drops[QUEUE_DROPPED_OLDEST], st.q.drops[QUEUE_DROPPED_NEWEST],
	    st.q.drops[QUEUE_DROPPED_CORRUPT], st.q.drops[QUEUE_DROPPED_DISK]);
	return n < 0 ? cap : (size_t)n;
}

/* ---- life --------------------------------------------------------------- */

static void
limits_apply(struct bridge *br)
{
	const struct cfg_aws_limits *l = &br->cfg->aws.limits;
	uint64_t now = clock_mono_us(), r = (uint64_t)l->publish_rate;
	uint64_t burst = r >= 20 ? r / 20 : 1;

	/* A burst of 50 ms keeps a late timer from costing throughput; the
	 * rate is lowered by as much, so that no second ever holds more than
	 * publish_rate messages (AWS counts per second). */
	ratelimit_init(&br->rate, r > burst ? r - burst : r, burst, now);
	/* one largest message must fit the bucket, or it would never go */
	ratelimit_init(&br->bw, l->bandwidth, l->max_payload + 65536, now);
	drain_init(br);
}

static int
queue_start(struct bridge *br)
{
	const struct cfg_queue *c = &br->cfg->queue;
	struct queue_opts o;
	struct queue_recovery rep;
	enum queue_status st;
	struct timeval tv;
	uint64_t ms = sync_interval_ms(br->cfg);

	queue_opts_init(&o);
	o.segment_max = (size_t)c->segment_size;
	o.max_messages = c->max_messages;
	o.max_bytes = c->max_bytes;
	o.policy = c->drop == CFG_DROP_NEWEST ? QUEUE_DROP_NEWEST :
	    QUEUE_DROP_OLDEST;
	o.fsync = c->fsync == CFG_FSYNC_ALWAYS ? QUEUE_FSYNC_ALWAYS :
	    c->fsync == CFG_FSYNC_NEVER ? QUEUE_FSYNC_NEVER :
	    QUEUE_FSYNC_INTERVAL;
	o.inflight_max = (uint32_t)br->cfg->aws.limits.max_inflight;
	if ((st = queue_open(c->dir, &o, &br->q, &rep)) != QUEUE_OK) {
		log_warnx("queue %s: %s%s%s", c->dir, queue_strerror(st),
		    st == QUEUE_IO ? ": " : "", st == QUEUE_IO ?
		    strerror(errno) : "");
		return -1;
	}
	if ((br->fl = calloc(o.inflight_max, sizeof(*br->fl))) == NULL)
		return -1;
	br->capfl = o.inflight_max;
	br->backlog = rep.records > 0;
	log_info("queue %s: %" PRIu64 " message%s to send%s", c->dir,
	    rep.records, rep.records == 1 ? "" : "s",
	    rep.checkpoint_bad ? " (checkpoint unreadable: resending from "
	    "the start)" : "");
	if (rep.lost > 0 || rep.torn_bytes > 0 || rep.skipped_bytes > 0)
		log_warnx("queue %s: recovered from damage: %" PRIu64 " record%s "
		    "lost, %" PRIu64 " damaged bytes skipped, %" PRIu64 " torn "
		    "bytes cut", c->dir, rep.lost, rep.lost == 1 ? "" : "s",
		    rep.skipped_bytes, rep.torn_bytes);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(br->ev_sync, &tv);
	return 0;
}

struct bridge *
bridge_new(struct event_base *base, const struct cfg *cfg, struct broker *b)
{
	struct bridge *br;

	if ((br = calloc(1, sizeof(*br))) == NULL)
		return NULL;
	br->base = base;
	br->cfg = cfg;
	br->b = b;
	ratelimit_init(&br->log_rl, BRIDGE_LOG_RATE, BRIDGE_LOG_BURST,
	    clock_mono_us());
	limits_apply(br);
	br->dl_path = file_path(cfg->broker.state_dir, BRIDGE_DEAD_LETTERS);
	br->tbuf = malloc(65536);
	br->ev_pump = evtimer_new(base, on_pump, br);
	br->ev_sync = event_new(base, -1, EV_PERSIST, on_sync, br);
	br->ev_sync_now = evtimer_new(base, on_sync, br);
	if (br->tbuf == NULL || filters_build(br, cfg) != 0 ||
	    br->ev_pump == NULL || br->ev_sync == NULL ||
	    br->ev_sync_now == NULL ||
	    (rules_send_out(cfg) && queue_start(br) != 0) ||
	    (br->up = uplink_new(base, cfg, &bridge_uplink_ops, br)) == NULL) {
		bridge_free(br);
		return NULL;
	}
	return br;
}

int
bridge_reload(struct bridge *br, const struct cfg *cfg)
{
	const struct cfg_queue *a = &br->cfg->queue, *n = &cfg->queue;
	int rc = 0;

	if (br->q != NULL && (strcmp(a->dir, n->dir) != 0 ||
	    a->max_messages != n->max_messages ||
	    a->max_bytes != n->max_bytes || a->drop != n->drop ||
	    a->fsync != n->fsync || a->fsync_interval_ms !=
	    n->fsync_interval_ms || a->segment_size != n->segment_size ||
	    br->cfg->aws.limits.max_inflight != cfg->aws.limits.max_inflight))
		log_warnx("bridge: queue settings changed: they apply at the "
		    "next start");
	br->cfg = cfg;
	if (filters_build(br, cfg) != 0) {
		log_warnx("bridge: out of memory building the rules");
		rc = -1;
	}
	/* the first rule that sends out: from now on everything it matches
	 * goes through the queue, as it would after a restart */
	if (br->q == NULL && rules_send_out(cfg) && queue_start(br) != 0) {
		log_warnx("bridge: the queue cannot be opened: messages for AWS "
		    "are not forwarded until it can");
		rc = -1;
	}
	limits_apply(br);
	free(br->dl_path);
	br->dl_path = file_path(cfg->broker.state_dir, BRIDGE_DEAD_LETTERS);
	if (uplink_reload(br->up, cfg) != 0)
		rc = -1;
	pump_soon(br);
	return rc;
}

void
bridge_free(struct bridge *br)
{
	enum queue_status st;

	if (br == NULL)
		return;
	uplink_free(br->up);
	if (br->q != NULL) {
		if ((st = queue_sync(br->q)) != QUEUE_OK)
			log_warnx("bridge: final queue sync: %s",
			    queue_strerror(st));
		/* what is durable now is owed */
		broker_acks_durable(br->b, queue_durable_seq(br->q));
		queue_close(br->q);
	}
	if (br->ev_pump != NULL)
		event_free(br->ev_pump);
	if (br->ev_sync != NULL)
		event_free(br->ev_sync);
	if (br->ev_sync_now != NULL)
		event_free(br->ev_sync_now);
	free(br->fl);
	free(br->dl_path);
	free(br->tbuf);
	filters_free(br);
	free(br);
}
