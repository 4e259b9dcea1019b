/*
 * The bridge: the compiled rules, the queue and its sync, the list of
 * lanes, and what passes between them and the broker. See bridge.h for the
 * contract. Every message bound upstream goes through the queue, even when
 * a lane is online with nothing queued: the queue is the one place that
 * knows what AWS has not acknowledged yet, so a reconnect, a restart or a
 * crash never has to ask anything else. Topic mapping and AWS's limits are
 * lib/bridge's; the connections are the lanes'; the acknowledgements owed
 * to devices are the broker's, settled from here by sequence number.
 */
#include "daemon/aws/bridge.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "bridge/awslimit.h"
#include "bridge/rules.h"
#include "config/cfg.h"
#include "daemon/aws/deadletter.h"
#include "daemon/aws/lane.h"
#include "daemon/aws/stats.h"
#include "daemon/broker/broker.h"
#include "daemon/util/clock.h"
#include "daemon/util/file.h"
#include "daemon/util/log.h"
#include "mqtt/mqtt.h"
#include "queue/queue.h"
#include "util/ratelimit.h"

#define BRIDGE_SLOW_SYNC_MS	1000	/* checkpoints under fsync always/never */
#define BRIDGE_LOG_RATE		1	/* drop log lines per second ... */
#define BRIDGE_LOG_BURST	5	/* ... after a burst of this many */
#define BRIDGE_LANES		1	/* connections to AWS */
#define BRIDGE_QUEUE_RETRY_S	10	/* a failed queue is tried again */

/* The queue's (re)opening: see queue_start(). */
struct qopen {
	pthread_t		 th;
	bool			 running;
	int			 pipe[2];	/* the thread says it is done */
	struct event		*ev_done;
	struct event		*ev_retry;
	char			*dir;		/* the thread's copy */
	struct queue_opts	 o;
	enum queue_status	 st;		/* the thread's result */
	int			 err;
	struct queue		*q;
	struct queue_recovery	 rep;
	bool			 failed;	/* the last attempt failed */
	char			 error[160];	/* why, for the stats */
};

struct bridge {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct broker		*b;
	struct evdns_base	*dns;
	struct rules		*rules;
	const char		**sub_filter;	/* the rules' "in" filters */
	uint8_t			*sub_qos;
	struct lane		*lanes[BRIDGE_LANES];
	size_t			 nlanes;
	struct queue		*q;
	struct deadletter	*dl;
	struct event		*ev_sync, *ev_sync_now;
	uint64_t		 last_flush_us;	/* a sync last made appends durable */
	bool			 disk_full;
	char			 disk_error[96];	/* of the last failed append */
	struct qopen		*qo;		/* the queue's (re)opening */
	struct ratelimit	 log_rl;
	uint64_t		 log_suppressed;
	uint64_t		 drops_seen[QUEUE_DROPPED_NREASONS];
	uint64_t		 refused[AWSLIMIT_NSTATUS];
	uint64_t		 queued, from_aws, downgraded;
	uint64_t		 unstored;	/* could not be stored */
	char			*tbuf;		/* a topic being mapped */
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

/* ---- rules ---------------------------------------------------------------- */

static void
rules_release(struct bridge *br)
{
	rules_free(br->rules);
	free(br->sub_filter);
	free(br->sub_qos);
	br->rules = NULL;
	br->sub_filter = NULL;
	br->sub_qos = NULL;
}

/* The rules of cfg, compiled once per configuration; the old ones stay
 * when the new ones cannot be made. */
static int
rules_build(struct bridge *br, const struct cfg *cfg)
{
	struct rules_spec *specs = NULL;
	struct rules *r = NULL;
	const char **filter = NULL;
	uint8_t *qos = NULL;
	size_t bad = 0, n;
	enum rules_status st;

	if (cfg->nbridge > 0 &&
	    (specs = calloc(cfg->nbridge, sizeof(*specs))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nbridge; i++) {
		const struct cfg_bridge_rule *c = &cfg->bridge[i];

		specs[i] = (struct rules_spec){
			.topic = c->topic,
			.local_prefix = c->local_prefix,
			.remote_prefix = c->remote_prefix,
			.dir = c->direction == CFG_DIR_OUT ? RULES_OUT :
			    c->direction == CFG_DIR_IN ? RULES_IN : RULES_BOTH,
			.qos = (uint8_t)c->qos,
			.ack = c->ack == CFG_ACK_DELIVERED ?
			    RULES_ACK_DELIVERED : RULES_ACK_STORED,
		};
	}
	st = rules_compile(specs, cfg->nbridge, &r, &bad);
	free(specs);
	if (st != RULES_OK) {
		log_warnx("bridge: rule %zu: %s", bad + 1, rules_strerror(st));
		return -1;
	}
	n = rules_filters(r);
	if ((filter = calloc(n + 1, sizeof(char *))) == NULL ||
	    (qos = calloc(n + 1, 1)) == NULL) {
		free(filter);
		rules_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		filter[i] = rules_filter(r, i, &qos[i]);
	rules_release(br);
	br->rules = r;
	br->sub_filter = filter;
	br->sub_qos = qos;
	return 0;
}

static struct uplink_subs
subs_of(const struct bridge *br)
{
	return (struct uplink_subs){
		.filter = br->sub_filter, .qos = br->sub_qos,
		.n = br->rules != NULL ? rules_filters(br->rules) : 0,
	};
}

/* ---- acknowledgements owed to devices ----------------------------------- */

/*
 * Records that left the queue without AWS's acknowledgement (dropped from a
 * full queue) lie below its released position and below every record still
 * in flight, whose answer may yet come. 0x97 tells an MQTT 5 device.
 */
static void
owed_dropped(struct bridge *br)
{
	struct queue_stats st;
	uint64_t lowest, cut, s;

	if (!broker_acks_awaiting_delivery(br->b, &lowest))
		return;
	queue_stats(br->q, &st);
	cut = st.acked_seq;
	for (size_t i = 0; i < br->nlanes; i++)
		if (lane_first_inflight(br->lanes[i], &s) && s < cut)
			cut = s;
	if (lowest < cut)
		broker_acks_undelivered_below(br->b, cut, 0x97);
}

/* ---- what the lanes say --------------------------------------------------- */

static void
lane_delivered(void *arg, struct lane *l, uint64_t seq)
{
	struct bridge *br = arg;

	broker_acks_delivered(br->b, seq, 0);
}

static void
lane_message(void *arg, struct lane *l, const struct mqtt_publish *pub)
{
	struct bridge *br = arg;
	struct rules_match m;
	enum rules_status st;
	char q[128];

	st = rules_map(br->rules, RULES_IN, (const char *)pub->topic.ptr,
	    pub->topic.len, br->tbuf, RULES_TOPIC_MAX, &m);
	if (st == RULES_NOMATCH)
		log_debug("bridge: message from AWS on %s matches no in rule",
		    log_escape(q, sizeof(q), pub->topic.ptr, pub->topic.len));
	if (st != RULES_OK)
		return;
	if (broker_publish_remote(br->b, br->tbuf, m.len, pub->payload.ptr,
	    pub->payload.len, pub->qos < m.qos ? pub->qos : m.qos,
	    pub->retain) == 0)
		br->from_aws++;
}

static const struct lane_ops bridge_lane_ops = {
	.delivered = lane_delivered,
	.message = lane_message,
};

/* ---- offer ---------------------------------------------------------------- */

/* Over AWS's limits: refused here, dead-lettered, never sent. */
static bool
refused(struct bridge *br, const char *topic, size_t tl,
    const struct bridge_msg *m)
{
	const struct cfg_aws_limits *cl = &br->cfg->aws.limits;
	struct awslimit l = {
		.max_payload = cl->max_payload,
		.max_topic_length = (uint64_t)cl->max_topic_length,
		.max_topic_slashes = (uint64_t)cl->max_topic_slashes,
	};
	enum awslimit_status st;
	char why[160], q[160];

	if ((st = awslimit_check(&l, topic, tl, m->payload_len)) ==
	    AWSLIMIT_OK)
		return false;
	br->refused[st]++;
	log_warnx("bridge: not sent to AWS, dead-lettered: %s: %s",
	    log_escape(q, sizeof(q), topic, tl), awslimit_explain(&l, st,
	    topic, tl, m->payload_len, why, sizeof(why)));
	deadletter_write(br->dl, awslimit_name(st), topic, tl, m->payload,
	    m->payload_len, m->qos, m->retain);
	return true;
}

/* An append the queue refused: say why, at a bounded rate. */
static void
append_failed(struct bridge *br, enum queue_status st, const char *topic,
    size_t tl)
{
	char q[160];

	switch (st) {
	case QUEUE_FULL:
		if (log_allowed(br))
			log_warnx("bridge: queue full (queue.drop: newest): "
			    "refused a message on %s", log_escape(q, sizeof(q),
			    topic, tl));
		break;
	case QUEUE_NOSPACE:
	case QUEUE_IO:
		snprintf(br->disk_error, sizeof(br->disk_error), "%s: %s",
		    queue_strerror(st), strerror(errno));
		if (!br->disk_full || log_allowed(br))
			log_warnx("bridge: the queue cannot take a message: "
			    "%s%s; nothing queued is lost", br->disk_error,
			    st == QUEUE_IO ? "" : " (disk full)");
		br->disk_full = true;
		break;
	default:
		if (log_allowed(br))
			log_warnx("bridge: the queue refused a message on %s: "
			    "%s", log_escape(q, sizeof(q), topic, tl),
			    queue_strerror(st));
		break;
	}
}

enum bridge_verdict
bridge_offer(struct bridge *br, const struct bridge_msg *m, uint64_t *seqp)
{
	struct rules_match match;
	struct queue_msg qm = { 0 };
	enum queue_status st;
	uint64_t seq;

	if (br == NULL || br->rules == NULL ||
	    rules_map(br->rules, RULES_OUT, m->topic, m->topic_len, br->tbuf,
	    RULES_TOPIC_MAX, &match) != RULES_OK)
		return BRIDGE_ACK;
	if (refused(br, br->tbuf, match.len, m))
		return BRIDGE_ACK;
	if (br->q == NULL) {
		/* failed (or still opening): nowhere to keep it */
		br->unstored++;
		return BRIDGE_UNSTORED;
	}
	qm.qos = m->qos < match.qos ? m->qos : match.qos;
	if (qm.qos > 1) {
		qm.qos = 1;	/* AWS IoT has no QoS 2 */
		br->downgraded++;
	}
	qm.flags = m->retain ? LANE_FLAG_RETAIN : 0;
	qm.topic = (struct buf_view){ (const uint8_t *)br->tbuf, match.len };
	qm.payload = (struct buf_view){ m->payload, m->payload_len };
	if ((st = queue_append(br->q, &qm, clock_wall_ms(), &seq)) !=
	    QUEUE_OK) {
		append_failed(br, st, br->tbuf, match.len);
		/* full under drop: newest is a policy; the rest are faults */
		if (st == QUEUE_FULL || st == QUEUE_TOO_BIG)
			return BRIDGE_REFUSED;
		br->unstored++;
		return BRIDGE_UNSTORED;
	}
	if (br->disk_full) {
		log_notice("bridge: the queue takes messages again");
		br->disk_full = false;
		br->disk_error[0] = '\0';
	}
	br->queued++;
	owed_dropped(br);
	for (size_t i = 0; i < br->nlanes; i++)
		lane_pump_soon(br->lanes[i]);
	if (seqp == NULL)
		return BRIDGE_ACK;
	*seqp = seq;
	if (match.ack == RULES_ACK_DELIVERED)
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

/* ---- sync ----------------------------------------------------------------- */

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

/* ---- status --------------------------------------------------------------- */

void
bridge_stats(struct bridge *br, struct bridge_stats *st)
{
	static const char *const fs[] = { "always", "interval", "never" };
	uint64_t now = clock_wall_ms();
	struct lane_stats ls;

	memset(st, 0, sizeof(*st));
	st->last_error = st->up.last_error;
	for (size_t i = 0; i < br->nlanes; i++) {
		lane_stats(br->lanes[i], &ls);
		if (i == 0)
			st->up = ls.up;
		st->backlog |= ls.backlog;
		st->sent += ls.sent;
		st->acked += ls.acked;
	}
	if ((st->queue_open = br->q != NULL))
		queue_stats(br->q, &st->q);
	st->queue_failed = br->q == NULL && br->qo->failed;
	st->queue_state = br->q != NULL ? "open" : st->queue_failed ?
	    "failed" : "off";
	st->queue_error = st->queue_failed ? br->qo->error : br->disk_full ?
	    br->disk_error : "";
	st->unstored = br->unstored;
	st->oldest_age_ms = st->q.oldest_ms && now > st->q.oldest_ms ?
	    now - st->q.oldest_ms : 0;
	st->disk_full = br->disk_full;
	st->drain_hz = br->cfg->queue.drain_hz;
	st->fsync = fs[br->cfg->queue.fsync];
	st->queued = br->queued;
	st->from_aws = br->from_aws;
	for (int i = 0; i < AWSLIMIT_NSTATUS; i++)
		st->refused += br->refused[i];
	st->dead_letters = deadletter_count(br->dl);
	st->downgraded = br->downgraded;
}

void
bridge_sys(struct bridge *br)
{
	struct bridge_stats st;
	char t[96];

	if (br == NULL)
		return;
	bridge_stats(br, &st);
	for (size_t i = 0; i < stats_count; i++) {
		const struct stats_def *d = &stats_table[i];

		if (d->sys == NULL)
			continue;
		switch (d->kind) {
		case STATS_DROPS:
			for (int r = 0; r < stats_ndrops(); r++) {
				snprintf(t, sizeof(t), "$SYS/broker/%s/%s",
				    d->sys, stats_drop_key(r, false));
				broker_sys_publish(br->b, t, "%" PRIu64,
				    stats_drops(&st, r));
			}
			continue;
		case STATS_TEXT:
		case STATS_STATE:
		case STATS_FLAG:
			snprintf(t, sizeof(t), "$SYS/broker/%s", d->sys);
			broker_sys_publish(br->b, t, "%s", stats_str(d, &st));
			continue;
		case STATS_GAUGE:
			snprintf(t, sizeof(t), "$SYS/broker/%s", d->sys);
			broker_sys_publish(br->b, t, "%" PRId64,
			    stats_i64(d, &st));
			continue;
		default:
			snprintf(t, sizeof(t), "$SYS/broker/%s", d->sys);
			broker_sys_publish(br->b, t, "%" PRIu64,
			    stats_u64(d, &st));
			continue;
		}
	}
}

void
bridge_summary(struct bridge *br, char *buf, size_t cap)
{
	struct bridge_stats st;

	bridge_stats(br, &st);
	if (st.queue_failed)
		snprintf(buf, cap, "uplink %s, bridge failed: queue %s",
		    uplink_state_name(st.up.state), st.queue_error);
	else
		snprintf(buf, cap, "uplink %s, queue %" PRIu64 " message%s",
		    uplink_state_name(st.up.state), st.q.depth_msgs,
		    st.q.depth_msgs == 1 ? "" : "s");
}

/* ---- life ----------------------------------------------------------------- */

/*
 * The queue's opening. A queue that cannot be opened (a read-only or
 * failing SD card, a directory the daemon may not write, another process
 * holding the lock) must not take the local broker down with it: the
 * bridge is then failed, says why in its stats (status, $SYS, metrics,
 * STATUS=), refuses what it cannot store, and tries again every
 * BRIDGE_QUEUE_RETRY_S seconds and at every reload. The first attempt runs
 * before the daemon says READY (recovery belongs before it); later ones run
 * on a thread of their own, since recovery reads every segment and a
 * failing disk may take seconds to answer each read.
 */

static void
queue_opts_of(const struct cfg *cfg, struct queue_opts *o)
{
	const struct cfg_queue *c = &cfg->queue;

	queue_opts_init(o);
	o->segment_max = (size_t)c->segment_size;
	o->max_messages = c->max_messages;
	o->max_bytes = c->max_bytes;
	o->policy = c->drop == CFG_DROP_NEWEST ? QUEUE_DROP_NEWEST :
	    QUEUE_DROP_OLDEST;
	o->fsync = c->fsync == CFG_FSYNC_ALWAYS ? QUEUE_FSYNC_ALWAYS :
	    c->fsync == CFG_FSYNC_NEVER ? QUEUE_FSYNC_NEVER :
	    QUEUE_FSYNC_INTERVAL;
	o->inflight_max = (uint32_t)cfg->aws.limits.max_inflight;
}

/* The queue is open: recovery's report, the sync timer, the lanes. */
static void
queue_started(struct bridge *br, struct queue *q,
    const struct queue_recovery *rep)
{
	const char *dir = br->cfg->queue.dir;
	struct timeval tv;
	uint64_t ms = sync_interval_ms(br->cfg);

	br->q = q;
	if (br->qo->failed)
		log_notice("bridge: queue %s open again: the bridge recovered",
		    dir);
	br->qo->failed = false;
	br->qo->error[0] = '\0';
	evtimer_del(br->qo->ev_retry);
	log_info("queue %s: %" PRIu64 " message%s to send%s", dir,
	    rep->records, rep->records == 1 ? "" : "s",
	    rep->checkpoint_bad ? " (checkpoint unreadable: resending from "
	    "the start)" : "");
	if (rep->lost > 0 || rep->torn_bytes > 0 || rep->skipped_bytes > 0)
		log_warnx("queue %s: recovered from damage: %" PRIu64 " record%s "
		    "lost, %" PRIu64 " damaged bytes skipped, %" PRIu64 " torn "
		    "bytes cut", dir, rep->lost, rep->lost == 1 ? "" : "s",
		    rep->skipped_bytes, rep->torn_bytes);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(br->ev_sync, &tv);
	for (size_t i = 0; i < br->nlanes; i++)
		lane_set_queue(br->lanes[i], br->q);
}

/* The queue could not be opened: failed, with the reason, until a retry
 * succeeds. One warning per distinct reason, not one per retry. */
static void
queue_failed(struct bridge *br, enum queue_status st, int err)
{
	struct qopen *qo = br->qo;
	struct timeval tv = { BRIDGE_QUEUE_RETRY_S, 0 };
	char why[sizeof(qo->error)];

	if (st == QUEUE_IO || st == QUEUE_NOSPACE)
		snprintf(why, sizeof(why), "%s: %s", queue_strerror(st),
		    strerror(err));
	else
		snprintf(why, sizeof(why), "%s", queue_strerror(st));
	if (!qo->failed || strcmp(why, qo->error) != 0)
		log_warnx("bridge failed: queue %s: %s; the local broker runs, "
		    "messages for AWS are refused until the queue opens (tried "
		    "every %d s and at reload)", br->cfg->queue.dir, why,
		    BRIDGE_QUEUE_RETRY_S);
	else
		log_debug("bridge: queue %s still failing: %s",
		    br->cfg->queue.dir, why);
	qo->failed = true;
	memcpy(qo->error, why, sizeof(why));
	evtimer_add(qo->ev_retry, &tv);
}

/* The first opening, before READY: on the caller's thread. */
static void
queue_start(struct bridge *br)
{
	struct queue_opts o;
	struct queue_recovery rep;
	enum queue_status st;
	struct queue *q;

	queue_opts_of(br->cfg, &o);
	if ((st = queue_open(br->cfg->queue.dir, &o, &q, &rep)) == QUEUE_OK)
		queue_started(br, q, &rep);
	else
		queue_failed(br, st, errno);
}

static void *
qopen_run(void *arg)
{
	struct qopen *qo = arg;
	char one = 1;

	qo->st = queue_open(qo->dir, &qo->o, &qo->q, &qo->rep);
	qo->err = errno;
	while (write(qo->pipe[1], &one, 1) == -1 && errno == EINTR)
		;
	return NULL;
}

/* A later opening: on a thread, the result comes back to on_qopen_done. */
static void
queue_retry(struct bridge *br)
{
	struct qopen *qo = br->qo;

	if (br->q != NULL || qo->running || !rules_any_out(br->rules))
		return;
	free(qo->dir);
	if ((qo->dir = strdup(br->cfg->queue.dir)) == NULL) {
		queue_failed(br, QUEUE_NOMEM, ENOMEM);
		return;
	}
	queue_opts_of(br->cfg, &qo->o);
	qo->q = NULL;
	if ((errno = pthread_create(&qo->th, NULL, qopen_run, qo)) != 0) {
		queue_failed(br, QUEUE_IO, errno);
		return;
	}
	qo->running = true;
}

/* The thread is done (or about to be): take its result. */
static void
on_qopen_done(evutil_socket_t fd, short ev, void *arg)
{
	struct bridge *br = arg;
	struct qopen *qo = br->qo;
	char c;

	while (read(qo->pipe[0], &c, 1) == -1 && errno == EINTR)
		;
	if (!qo->running)
		return;
	(void)pthread_join(qo->th, NULL);
	qo->running = false;
	if (qo->st != QUEUE_OK)
		queue_failed(br, qo->st, qo->err);
	else if (br->q == NULL)
		queue_started(br, qo->q, &qo->rep);
	else
		queue_close(qo->q);
}

static void
on_qopen_retry(evutil_socket_t fd, short ev, void *arg)
{
	queue_retry(arg);
}

static int
qopen_init(struct bridge *br)
{
	struct qopen *qo;

	if ((qo = br->qo = calloc(1, sizeof(*qo))) == NULL)
		return -1;
	qo->pipe[0] = qo->pipe[1] = -1;
	if (file_wake_pipe(qo->pipe) == -1 ||
	    (qo->ev_done = event_new(br->base, qo->pipe[0], EV_READ |
	    EV_PERSIST, on_qopen_done, br)) == NULL ||
	    (qo->ev_retry = evtimer_new(br->base, on_qopen_retry, br)) ==
	    NULL || event_add(qo->ev_done, NULL) == -1)
		return -1;
	return 0;
}

/* At exit: an opening still running is waited for, and what it opened
 * closed again. */
static void
qopen_free(struct bridge *br)
{
	struct qopen *qo = br->qo;

	if (qo == NULL)
		return;
	if (qo->running) {
		(void)pthread_join(qo->th, NULL);
		if (qo->st == QUEUE_OK)
			queue_close(qo->q);
	}
	if (qo->ev_done != NULL)
		event_free(qo->ev_done);
	if (qo->ev_retry != NULL)
		event_free(qo->ev_retry);
	if (qo->pipe[0] != -1)
		close(qo->pipe[0]);
	if (qo->pipe[1] != -1)
		close(qo->pipe[1]);
	free(qo->dir);
	free(qo);
	br->qo = NULL;
}

struct bridge *
bridge_new(struct event_base *base, const struct cfg *cfg, struct broker *b)
{
	struct uplink_subs subs;
	struct bridge *br;

	if ((br = calloc(1, sizeof(*br))) == NULL)
		return NULL;
	br->base = base;
	br->cfg = cfg;
	br->b = b;
	ratelimit_init(&br->log_rl, BRIDGE_LOG_RATE, BRIDGE_LOG_BURST,
	    clock_mono_us());
	br->tbuf = malloc(RULES_TOPIC_MAX + 1);
	br->ev_sync = event_new(base, -1, EV_PERSIST, on_sync, br);
	br->ev_sync_now = evtimer_new(base, on_sync, br);
	br->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	br->dl = deadletter_new(cfg->broker.state_dir,
	    cfg->aws.dead_letter.max_bytes);
	if (br->tbuf == NULL || br->ev_sync == NULL ||
	    br->ev_sync_now == NULL || br->dns == NULL || br->dl == NULL ||
	    qopen_init(br) != 0 || rules_build(br, cfg) != 0)
		goto fail;
	subs = subs_of(br);
	/* the lanes first: a backlog found by the queue goes to them */
	for (; br->nlanes < BRIDGE_LANES; br->nlanes++)
		if ((br->lanes[br->nlanes] = lane_new(base, br->dns, cfg, NULL,
		    &subs, (unsigned)br->nlanes, &bridge_lane_ops, br)) ==
		    NULL)
			goto fail;
	if (rules_any_out(br->rules))
		queue_start(br);	/* failing is not fatal: see struct qopen */
	return br;
fail:
	bridge_free(br);
	return NULL;
}

int
bridge_reload(struct bridge *br, const struct cfg *cfg)
{
	const struct cfg_queue *a = &br->cfg->queue, *n = &cfg->queue;
	struct uplink_subs subs;
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
	if (rules_build(br, cfg) != 0) {
		log_warnx("bridge: out of memory building the rules");
		rc = -1;
	}
	/* the first rule that sends out, or a queue that failed: from now on
	 * everything an "out" rule matches goes through the queue, as it
	 * would after a restart, once the opening started here succeeds */
	if (br->q == NULL && rules_any_out(br->rules)) {
		if (br->qo->failed)
			log_info("bridge: trying the queue %s again",
			    cfg->queue.dir);
		queue_retry(br);
	}
	if (deadletter_reload(br->dl, cfg->broker.state_dir,
	    cfg->aws.dead_letter.max_bytes) != 0)
		rc = -1;
	subs = subs_of(br);
	for (size_t i = 0; i < br->nlanes; i++)
		if (lane_reload(br->lanes[i], cfg, &subs) != 0)
			rc = -1;
	return rc;
}

void
bridge_free(struct bridge *br)
{
	enum queue_status st;

	if (br == NULL)
		return;
	qopen_free(br);
	for (size_t i = 0; i < br->nlanes; i++)
		lane_free(br->lanes[i]);
	if (br->q != NULL) {
		if ((st = queue_sync(br->q)) != QUEUE_OK)
			log_warnx("bridge: final queue sync: %s",
			    queue_strerror(st));
		/* what is durable now is owed */
		broker_acks_durable(br->b, queue_durable_seq(br->q));
		queue_close(br->q);
	}
	if (br->ev_sync != NULL)
		event_free(br->ev_sync);
	if (br->ev_sync_now != NULL)
		event_free(br->ev_sync_now);
	if (br->dns != NULL)
		evdns_base_free(br->dns, 0);
	deadletter_free(br->dl);
	rules_release(br);
	free(br->tbuf);
	free(br);
}
