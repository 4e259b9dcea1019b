/*
 * The table of the AWS side's counters (see stats.h), in the order of the
 * text status; the other renderings keep the same order. A few text rows
 * show more than their own value ("sent: 5 (4 acknowledged)") or only now
 * and then ("clock offset" when there is one): their text_fn says how.
 */
#include "daemon/aws/stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/aws/bridge.h"
#include "daemon/aws/uplink.h"
#include "queue/queue.h"

#define F(field)	.off = offsetof(struct bridge_stats, field), \
			.size = sizeof(((struct bridge_stats *)0)->field)

static const char *const drop_json[QUEUE_DROPPED_NREASONS] = {
	[QUEUE_DROPPED_OLDEST] = "oldest",
	[QUEUE_DROPPED_NEWEST] = "newest",
	[QUEUE_DROPPED_CORRUPT] = "corrupt",
	[QUEUE_DROPPED_DISK] = "disk",
};

/* ---- text rows that are more than a value -------------------------------- */

static enum stats_row
text_uplink_state(const struct bridge_stats *st, char *buf, size_t cap)
{
	char t[32];

	switch (st->up.state) {
	case UPLINK_OFF:
		snprintf(buf, cap, "off (no aws section)");
		return STATS_ROW_LAST;
	case UPLINK_WAITING:
		snprintf(buf, cap, "waiting, next attempt in %s",
		    stats_fmt_duration(st->up.next_attempt_ms, t, sizeof(t)));
		break;
	case UPLINK_ONLINE:
		snprintf(buf, cap, "online for %s",
		    stats_fmt_duration(st->up.connected_ms, t, sizeof(t)));
		break;
	default:
		snprintf(buf, cap, "%s", uplink_state_name(st->up.state));
		break;
	}
	return STATS_ROW_SHOW;
}

/* A text shown only when there is one. */
static enum stats_row
text_if_any(const char *s, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", s);
	return s[0] != '\0' ? STATS_ROW_SHOW : STATS_ROW_SKIP;
}

static enum stats_row
text_last_error(const struct bridge_stats *st, char *buf, size_t cap)
{
	return text_if_any(st->last_error, buf, cap);
}

static enum stats_row
text_sent(const struct bridge_stats *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%" PRIu64 " (%" PRIu64 " acknowledged)", st->sent,
	    st->acked);
	return STATS_ROW_SHOW;
}

static enum stats_row
text_refused(const struct bridge_stats *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%" PRIu64 " (%" PRIu64 " kept as dead letters)",
	    st->refused, st->dead_letters);
	return STATS_ROW_SHOW;
}

static enum stats_row
text_downgraded(const struct bridge_stats *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%" PRIu64, st->downgraded);
	return st->downgraded > 0 ? STATS_ROW_SHOW : STATS_ROW_SKIP;
}

static enum stats_row
text_bytes(const struct bridge_stats *st, char *buf, size_t cap)
{
	char o[32], i[32];

	snprintf(buf, cap, "%s out, %s in",
	    stats_fmt_size(st->up.bytes_out, o, sizeof(o)),
	    stats_fmt_size(st->up.bytes_in, i, sizeof(i)));
	return STATS_ROW_SHOW;
}

static enum stats_row
text_clock(const struct bridge_stats *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%+" PRId64 "s", st->up.clock_offset_s);
	return st->up.clock_offset_s != 0 ? STATS_ROW_SHOW : STATS_ROW_SKIP;
}

static enum stats_row
text_queue_open(const struct bridge_stats *st, char *buf, size_t cap)
{
	if (st->queue_failed)
		snprintf(buf, cap, "failed: %s (messages for AWS are refused; "
		    "retried every few seconds and at reload)", st->queue_error);
	else
		snprintf(buf, cap, "off (no bridge rule sends out)");
	return st->queue_open ? STATS_ROW_SKIP : STATS_ROW_LAST;
}

static enum stats_row
text_queue_error(const struct bridge_stats *st, char *buf, size_t cap)
{
	return text_if_any(st->queue_error, buf, cap);
}

static enum stats_row
text_unstored(const struct bridge_stats *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%" PRIu64, st->unstored);
	return st->unstored > 0 ? STATS_ROW_SHOW : STATS_ROW_SKIP;
}

static enum stats_row
text_messages(const struct bridge_stats *st, char *buf, size_t cap)
{
	char t[32];

	snprintf(buf, cap, "%" PRIu64 " (%s), %" PRIu64 " in flight",
	    st->q.depth_msgs, stats_fmt_size(st->q.depth_bytes, t, sizeof(t)),
	    st->q.inflight);
	return STATS_ROW_SHOW;
}

static enum stats_row
text_oldest(const struct bridge_stats *st, char *buf, size_t cap)
{
	char t[32];

	snprintf(buf, cap, "%s ago",
	    stats_fmt_duration(st->oldest_age_ms, t, sizeof(t)));
	return st->q.depth_msgs > 0 ? STATS_ROW_SHOW : STATS_ROW_SKIP;
}

static enum stats_row
text_disk(const struct bridge_stats *st, char *buf, size_t cap)
{
	char t[32];

	snprintf(buf, cap, "%s in %u segment%s%s",
	    stats_fmt_size(st->q.disk_bytes, t, sizeof(t)), st->q.segments,
	    st->q.segments == 1 ? "" : "s", st->disk_full ?
	    " (full: the last append failed)" : "");
	return STATS_ROW_SHOW;
}

static enum stats_row
text_drops(const struct bridge_stats *st, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int r = 0; r < QUEUE_DROPPED_NREASONS && n < cap; r++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%s %" PRIu64,
		    r > 0 ? ", " : "", drop_json[r], st->q.drops[r]);
	return STATS_ROW_SHOW;
}

static enum stats_row
text_backlog(const struct bridge_stats *st, char *buf, size_t cap)
{
	if (!st->backlog)
		snprintf(buf, cap, "no");
	else if (st->drain_hz > 0)
		snprintf(buf, cap, "yes, draining at %" PRId64 " messages/s",
		    st->drain_hz);
	else
		snprintf(buf, cap, "yes, draining as fast as AWS allows");
	return STATS_ROW_SHOW;
}

/* ---- the table ------------------------------------------------------------ */

const struct stats_def stats_table[] = {
	{ STATS_UPLINK, STATS_STATE, F(up.state), .json = "state",
	    .prom = "uplink_state", .help = "State of the connection to AWS "
	    "IoT Core: 1 for the current one", .sys = "uplink/state",
	    .text = "state", .text_fn = text_uplink_state },
	{ STATS_UPLINK, STATS_TEXT, F(last_error), .json = "last_error",
	    .sys = "uplink/last_error", .text = "last error",
	    .text_fn = text_last_error },
	{ STATS_UPLINK, STATS_COUNT, F(up.attempts), .json = "attempts",
	    .prom = "uplink_connect_attempts_total", .counter = true,
	    .help = "Connection attempts to AWS IoT Core",
	    .text = "attempts" },
	{ STATS_UPLINK, STATS_COUNT, F(up.connects), .json = "connects",
	    .prom = "uplink_connects_total", .counter = true,
	    .help = "Connections to AWS IoT Core that were accepted (CONNACK)",
	    .sys = "uplink/connects", .text = "connects" },
	{ STATS_UPLINK, STATS_COUNT, F(up.failures), .json = "failures",
	    .prom = "uplink_connect_failures_total", .counter = true,
	    .help = "Connection attempts to AWS IoT Core that failed",
	    .sys = "uplink/failures", .text = "failures" },
	{ STATS_UPLINK, STATS_COUNT, F(up.disconnects), .json = "disconnects",
	    .prom = "uplink_disconnects_total", .counter = true,
	    .help = "Established connections to AWS IoT Core that ended",
	    .text = "disconnects" },
	{ STATS_UPLINK, STATS_COUNT, F(up.next_attempt_ms),
	    .json = "next_attempt_ms", .sys = "uplink/next_attempt_ms" },
	{ STATS_UPLINK, STATS_COUNT, F(up.connected_ms),
	    .json = "connected_ms" },
	{ STATS_UPLINK, STATS_COUNT, F(up.subscriptions),
	    .json = "subscriptions", .text = "subscriptions" },
	{ STATS_UPLINK, STATS_COUNT, F(up.inflight), .json = "inflight",
	    .prom = "uplink_inflight_messages", .help = "QoS 1 messages sent "
	    "to AWS and not acknowledged yet", .text = "in flight" },
	{ STATS_UPLINK, STATS_COUNT, F(sent), .json = "messages_sent",
	    .prom = "uplink_messages_sent_total", .counter = true,
	    .help = "Messages handed to the connection to AWS",
	    .sys = "uplink/messages/sent", .text = "sent",
	    .text_fn = text_sent },
	{ STATS_UPLINK, STATS_COUNT, F(acked), .json = "messages_acked",
	    .prom = "uplink_messages_acked_total", .counter = true,
	    .help = "Messages AWS acknowledged (QoS 0: sent)" },
	{ STATS_UPLINK, STATS_COUNT, F(from_aws), .json = "messages_received",
	    .prom = "uplink_messages_received_total", .counter = true,
	    .help = "Messages received from AWS and published locally",
	    .sys = "uplink/messages/received", .text = "received" },
	{ STATS_UPLINK, STATS_COUNT, F(refused), .json = "refused",
	    .prom = "uplink_messages_refused_total", .counter = true,
	    .help = "Messages refused by AWS IoT Core's limits, never sent",
	    .sys = "uplink/messages/refused", .text = "refused",
	    .text_fn = text_refused },
	{ STATS_UPLINK, STATS_COUNT, F(dead_letters), .json = "dead_letters" },
	{ STATS_UPLINK, STATS_COUNT, F(downgraded), .json = "qos2_downgraded",
	    .text = "QoS 2 sent as 1", .text_fn = text_downgraded },
	{ STATS_UPLINK, STATS_BYTES, F(up.bytes_out),
	    .prom = "uplink_bytes_sent_total", .counter = true,
	    .help = "Bytes written to the connection to AWS", .text = "bytes",
	    .text_fn = text_bytes },
	{ STATS_UPLINK, STATS_BYTES, F(up.bytes_in),
	    .prom = "uplink_bytes_received_total", .counter = true,
	    .help = "Bytes read from the connection to AWS" },
	{ STATS_UPLINK, STATS_GAUGE, F(up.clock_offset_s),
	    .json = "clock_offset_s", .prom = "uplink_clock_offset_seconds",
	    .help = "Correction added to the local clock to sign requests",
	    .text = "clock offset", .text_fn = text_clock },

	{ STATS_QUEUE, STATS_FLAG, F(queue_open), .json = "open",
	    .text = "state", .text_fn = text_queue_open },
	{ STATS_QUEUE, STATS_TEXT, F(queue_state), .json = "state",
	    .sys = "queue/state" },
	{ STATS_QUEUE, STATS_GAUGE, F(queue_failed), .prom = "queue_failed",
	    .help = "1 when the queue cannot be opened: the bridge is failed "
	    "and refuses messages for AWS" },
	{ STATS_QUEUE, STATS_TEXT, F(queue_error), .json = "error",
	    .sys = "queue/error", .text = "error",
	    .text_fn = text_queue_error },
	{ STATS_QUEUE, STATS_COUNT, F(unstored), .json = "unstored",
	    .prom = "queue_unstored_total", .counter = true,
	    .help = "Messages for AWS refused because the queue could not "
	    "store them (disk full or failing, queue failed)",
	    .sys = "queue/unstored", .text = "not stored",
	    .text_fn = text_unstored },
	{ STATS_QUEUE, STATS_COUNT, F(q.depth_msgs), .json = "messages",
	    .prom = "queue_messages", .help = "Messages in the queue for AWS",
	    .sys = "queue/messages", .text = "messages",
	    .text_fn = text_messages },
	{ STATS_QUEUE, STATS_BYTES, F(q.depth_bytes), .json = "bytes",
	    .prom = "queue_bytes", .help = "Bytes of the messages in the queue",
	    .sys = "queue/bytes" },
	{ STATS_QUEUE, STATS_MS, F(oldest_age_ms), .json = "oldest_age_ms",
	    .prom = "queue_oldest_age_seconds", .help = "Age of the oldest "
	    "message in the queue (0: empty)", .sys = "queue/oldest_age_ms",
	    .text = "oldest", .text_fn = text_oldest },
	{ STATS_QUEUE, STATS_COUNT, F(q.inflight), .json = "inflight" },
	{ STATS_QUEUE, STATS_BYTES, F(q.disk_bytes), .json = "disk_bytes",
	    .prom = "queue_disk_bytes",
	    .help = "Disk space the queue's segments use", .text = "disk",
	    .text_fn = text_disk },
	{ STATS_QUEUE, STATS_COUNT, F(q.segments), .json = "segments" },
	{ STATS_QUEUE, STATS_FLAG, F(disk_full), .json = "disk_full" },
	{ STATS_QUEUE, STATS_DROPS, F(q.drops), .json = "drops",
	    .prom = "queue_drops_total", .counter = true,
	    .help = "Messages dropped from the queue, by reason",
	    .sys = "queue/drops", .text = "drops", .text_fn = text_drops },
	{ STATS_QUEUE, STATS_FLAG, F(backlog), .json = "backlog",
	    .text = "backlog", .text_fn = text_backlog },
	{ STATS_QUEUE, STATS_GAUGE, F(drain_hz), .json = "drain_hz" },
	{ STATS_QUEUE, STATS_TEXT, F(fsync), .json = "fsync",
	    .text = "fsync" },
};

const size_t stats_count = sizeof(stats_table) / sizeof(stats_table[0]);

/* ---- values --------------------------------------------------------------- */

static const void *
field(const struct stats_def *d, const struct bridge_stats *st)
{
	return (const char *)st + d->off;
}

const char *
stats_section_name(enum stats_section s, bool title)
{
	if (s == STATS_UPLINK)
		return title ? "Uplink" : "uplink";
	return title ? "Queue" : "queue";
}

uint64_t
stats_u64(const struct stats_def *d, const struct bridge_stats *st)
{
	uint64_t v64;
	uint32_t v32;

	/* rows of other widths: never read more bytes than the field has */
	if (d->kind == STATS_GAUGE || d->kind == STATS_FLAG ||
	    d->kind == STATS_STATE)
		return (uint64_t)stats_i64(d, st);
	if (d->size == sizeof(v32)) {
		memcpy(&v32, field(d, st), sizeof(v32));
		return v32;
	}
	memcpy(&v64, field(d, st), sizeof(v64));
	return v64;
}

int64_t
stats_i64(const struct stats_def *d, const struct bridge_stats *st)
{
	int64_t v;

	switch (d->kind) {
	case STATS_GAUGE:
		memcpy(&v, field(d, st), sizeof(v));
		return v;
	case STATS_FLAG:
		return *(const bool *)field(d, st);
	case STATS_STATE:
		return (int64_t)*(const enum uplink_state *)field(d, st);
	default:
		return (int64_t)stats_u64(d, st);
	}
}

const char *
stats_str(const struct stats_def *d, const struct bridge_stats *st)
{
	switch (d->kind) {
	case STATS_TEXT:
		return *(const char *const *)field(d, st);
	case STATS_STATE:
		return stats_state_name((int)stats_i64(d, st));
	case STATS_FLAG:
		return stats_i64(d, st) ? "true" : "false";
	default:
		return "";
	}
}

uint64_t
stats_drops(const struct bridge_stats *st, int r)
{
	return r >= 0 && r < QUEUE_DROPPED_NREASONS ? st->q.drops[r] : 0;
}

const char *
stats_drop_key(int r, bool json)
{
	return json ? drop_json[r] : queue_drop_name((enum queue_drop)r);
}

int
stats_ndrops(void)
{
	return QUEUE_DROPPED_NREASONS;
}

int
stats_nstates(void)
{
	return UPLINK_NSTATES;
}

const char *
stats_state_name(int s)
{
	return uplink_state_name((enum uplink_state)s);
}

enum stats_row
stats_text(const struct stats_def *d, const struct bridge_stats *st,
    char *buf, size_t cap)
{
	if (d->text_fn != NULL)
		return d->text_fn(st, buf, cap);
	switch (d->kind) {
	case STATS_BYTES:
		stats_fmt_size(stats_u64(d, st), buf, cap);
		break;
	case STATS_MS:
		stats_fmt_duration(stats_u64(d, st), buf, cap);
		break;
	case STATS_GAUGE:
		snprintf(buf, cap, "%" PRId64, stats_i64(d, st));
		break;
	case STATS_COUNT:
		snprintf(buf, cap, "%" PRIu64, stats_u64(d, st));
		break;
	default:
		snprintf(buf, cap, "%s", stats_str(d, st));
		break;
	}
	return STATS_ROW_SHOW;
}

/* ---- formats -------------------------------------------------------------- */

const char *
stats_fmt_duration(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, cap, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h %" PRIu64 "m", s / 3600,
		    s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d %" PRIu64 "h", s / 86400,
		    s / 3600 % 24);
	return buf;
}

const char *
stats_fmt_size(uint64_t n, char *buf, size_t cap)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", n);
		return buf;
	}
	for (v /= 1024; v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0]);
	    u++)
		v /= 1024;
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}
