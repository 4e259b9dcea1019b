/*
 * One lane (see lane.h). The pump sends while the session is ready and the
 * queue hands out records within its window, waiting (never dropping) for
 * the publish-rate and bandwidth buckets and, while a backlog remains, for
 * queue.drain_hz. Its reads of the queue are the four src_*() functions:
 * the place where lanes that share one queue would each read their own
 * share of it.
 */
#include "daemon/aws/lane.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "daemon/aws/transport.h"
#include "daemon/util/clock.h"
#include "daemon/util/log.h"
#include "mqtt/mqtt.h"
#include "queue/queue.h"
#include "util/ratelimit.h"

struct lane {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct lane_ops		 ops;
	void			*arg;
	unsigned		 index;
	struct uplink		*up;
	struct queue		*q;
	struct event		*ev_pump;
	bool			 pump_timer;	/* ev_pump armed as a timer */
	bool			 backlog;	/* draining at drain_hz */
	struct ratelimit	 rate, bw, drain;
	uint64_t		 sent, acked;
};

/* ---- the queue, as this lane reads it ------------------------------------ */

static enum queue_status
src_peek(struct lane *l, struct queue_rec *r)
{
	return queue_peek(l->q, r);
}

static enum queue_status
src_next(struct lane *l, struct queue_rec *r)
{
	return queue_next(l->q, r);
}

static bool
src_ack(struct lane *l, uint64_t seq)
{
	return queue_ack(l->q, seq) == QUEUE_OK;
}

/* After a reconnect: the unacknowledged ones go first, marked DUP. */
static uint64_t
src_rewind(struct lane *l, uint64_t *inflight)
{
	struct queue_stats st;

	queue_rewind(l->q);
	queue_stats(l->q, &st);
	*inflight = st.inflight;
	return st.depth_msgs;
}

/* ---- the drain ------------------------------------------------------------ */

static void
pump_later(struct lane *l, uint64_t us)
{
	struct timeval tv = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_usec = (suseconds_t)(us % 1000000),
	};

	if (l->pump_timer)
		return;
	l->pump_timer = true;
	event_add(l->ev_pump, &tv);
}

void
lane_pump_soon(struct lane *l)
{
	if (l->q != NULL && !l->pump_timer &&
	    !event_pending(l->ev_pump, EV_TIMEOUT, NULL))
		event_active(l->ev_pump, EV_TIMEOUT, 0);
}

/* How long the buckets make a record of this many bytes wait. */
static uint64_t
buckets_wait(struct lane *l, uint64_t bytes, uint64_t now)
{
	uint64_t wait = 0, w;

	if ((w = ratelimit_delay_us(&l->rate, 1, now)) > wait)
		wait = w;
	if ((w = ratelimit_delay_us(&l->bw, bytes, now)) > wait)
		wait = w;
	if (l->backlog && l->cfg->queue.drain_hz > 0 &&
	    (w = ratelimit_delay_us(&l->drain, 1, now)) > wait)
		wait = w;
	if (wait == 0) {
		(void)ratelimit_take(&l->rate, 1, now);
		(void)ratelimit_take(&l->bw, bytes, now);
		if (l->backlog && l->cfg->queue.drain_hz > 0)
			(void)ratelimit_take(&l->drain, 1, now);
	}
	return wait;
}

/*
 * Hand the peeked record r to the session, and only then take it out of
 * the queue (src_next): a publish that fails leaves the record where it
 * was, not in the queue's window without an in-flight entry in the
 * session, where it would pin the checkpoint until the next reconnect.
 * Fails when the session is going down (the queue is rewound at the next
 * online) or, online, when it cannot take the record now (out of memory,
 * no packet id): tried again a second later, one line a second at most.
 */
static int
send_peeked(struct lane *l, struct queue_rec *r)
{
	uint64_t seq = r->seq;

	if (uplink_publish(l->up, r->msg.topic, r->msg.payload,
	    r->msg.qos > 1 ? 1 : r->msg.qos,
	    (r->msg.flags & LANE_FLAG_RETAIN) != 0, r->dup, seq) != 0) {
		if (uplink_ready(l->up)) {
			log_warnx("bridge: the session could not take message "
			    "%" PRIu64 ": trying again in 1 s", seq);
			pump_later(l, 1000000);
		}
		return -1;
	}
	/* views of r are spent: this reads the same record again */
	if (src_next(l, r) != QUEUE_OK || r->seq != seq) {
		log_warnx("bridge: message %" PRIu64 " sent but not counted in "
		    "flight: it may be sent again", seq);
		return -1;
	}
	return 0;
}

static void
pump(struct lane *l)
{
	while (l->q != NULL && uplink_ready(l->up)) {
		struct queue_rec r;
		enum queue_status st;
		uint64_t wait;

		st = src_peek(l, &r);
		if (st == QUEUE_EMPTY) {
			if (l->backlog)
				log_info("bridge: backlog drained");
			l->backlog = false;
			return;
		}
		if (st == QUEUE_WINDOW_FULL)
			return;
		if (st != QUEUE_OK) {
			/* one line a second at the most: the retry's pace */
			log_warnx("bridge: reading the queue: %s",
			    queue_strerror(st));
			pump_later(l, 1000000);
			return;
		}
		if ((wait = buckets_wait(l, r.msg.topic.len +
		    r.msg.payload.len + 4, clock_mono_us())) > 0) {
			pump_later(l, wait);
			return;
		}
		if (send_peeked(l, &r) != 0)
			return;
		l->sent++;
	}
}

/* The drain's bucket holds 50 ms worth: a timer that fires late must not
 * lose tokens, or the rate would fall short of drain_hz. */
static void
drain_init(struct lane *l)
{
	uint64_t hz = (uint64_t)l->cfg->queue.drain_hz;

	ratelimit_init(&l->drain, hz, hz / 20 > 1 ? hz / 20 : 1,
	    clock_mono_us());
}

static void
limits_apply(struct lane *l)
{
	const struct cfg_aws_limits *lim = &l->cfg->aws.limits;
	uint64_t now = clock_mono_us(), r = (uint64_t)lim->publish_rate;
	uint64_t burst = r >= 20 ? r / 20 : 1;

	/* A burst of 50 ms keeps a late timer from costing throughput; the
	 * rate is lowered by as much, so that no second ever holds more than
	 * publish_rate messages (AWS counts per second). */
	ratelimit_init(&l->rate, r > burst ? r - burst : r, burst, now);
	/* one largest message must fit the bucket, or it would never go */
	ratelimit_init(&l->bw, lim->bandwidth, lim->max_payload + 65536, now);
	drain_init(l);
}

static void
on_pump(evutil_socket_t fd, short ev, void *arg)
{
	struct lane *l = arg;

	l->pump_timer = false;
	pump(l);
}

/* ---- what the session says ------------------------------------------------ */

static void
up_online(void *arg)
{
	struct lane *l = arg;
	uint64_t depth, inflight;

	if (l->q == NULL)
		return;
	depth = src_rewind(l, &inflight);
	l->backlog = depth > 0;
	if (l->backlog)
		log_info("bridge: %" PRIu64 " queued message%s to send, %s "
		    "unacknowledged ones first", depth, depth == 1 ? "" : "s",
		    inflight > 0 ? "the" : "no");
	drain_init(l);
	pump(l);
}

static void
up_offline(void *arg)
{
	/* what was in flight is resent after the rewind at the next online */
}

static void
up_done(void *arg, uint64_t seq)
{
	struct lane *l = arg;

	if (l->q != NULL && src_ack(l, seq))
		l->acked++;
	l->ops.delivered(l->arg, l, seq);
	/* room in the window: one pump after this read, however many acks
	 * it brought */
	lane_pump_soon(l);
}

static void
up_drained(void *arg)
{
	pump(arg);
}

static void
up_message(void *arg, const struct mqtt_publish *pub)
{
	struct lane *l = arg;

	l->ops.message(l->arg, l, pub);
}

static const struct uplink_ops lane_uplink_ops = {
	.online = up_online,
	.offline = up_offline,
	.done = up_done,
	.drained = up_drained,
	.message = up_message,
};

/* ---- life ----------------------------------------------------------------- */

struct lane *
lane_new(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, struct queue *q, const struct uplink_subs *subs,
    unsigned index, const struct lane_ops *ops, void *arg)
{
	struct transport *t;
	struct lane *l;

	if ((l = malloc(sizeof(*l))) == NULL)
		return NULL;
	*l = (struct lane){ .base = base, .cfg = cfg, .q = q, .ops = *ops,
	    .arg = arg, .index = index };
	limits_apply(l);
	if ((l->ev_pump = evtimer_new(base, on_pump, l)) == NULL ||
	    (t = transport_new(base, dns, cfg, "uplink")) == NULL ||
	    (l->up = uplink_new(base, cfg, t, subs, "uplink",
	    &lane_uplink_ops, l)) == NULL) {
		lane_free(l);
		return NULL;
	}
	return l;
}

int
lane_reload(struct lane *l, const struct cfg *cfg,
    const struct uplink_subs *subs)
{
	int rc;

	l->cfg = cfg;
	limits_apply(l);
	rc = uplink_reload(l->up, cfg, subs);
	lane_pump_soon(l);
	return rc;
}

void
lane_set_queue(struct lane *l, struct queue *q)
{
	l->q = q;
	lane_pump_soon(l);
}

void
lane_free(struct lane *l)
{
	if (l == NULL)
		return;
	uplink_free(l->up);
	if (l->ev_pump != NULL)
		event_free(l->ev_pump);
	free(l);
}

bool
lane_first_inflight(const struct lane *l, uint64_t *seq)
{
	return uplink_first_cookie(l->up, seq);
}

void
lane_stats(const struct lane *l, struct lane_stats *st)
{
	uplink_status(l->up, &st->up);
	st->backlog = l->backlog;
	st->sent = l->sent;
	st->acked = l->acked;
}
