/*
 * The control socket (see control.h): the request line, the commands, and
 * the status in its two renderings. The socket and its connections are a
 * oneshot server; what the status shows comes from broker_counts() and
 * bridge_stats() at the moment of the request, nothing is cached.
 */
#include "daemon/control.h"

#include <sys/socket.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "iotb_build.h"
#include "base/json.h"
#include "config/cfg.h"
#include "daemon/aws/bridge.h"
#include "daemon/broker.h"
#include "daemon/log.h"
#include "daemon/oneshot.h"

#define KEY_WIDTH	21	/* "  key:" padded to this, then the value */

struct control {
	struct oneshot		*srv;
	const char		*cfg_path;
	struct broker		*b;
	struct bridge		*br;
	control_reload_fn	 reload;
	void			*arg;
};

/* ---- rendering helpers --------------------------------------------------- */

/* "850ms", "4s", "2m 3s", "5h 1m", "3d 4h": two units at most. */
static const char *
fmt_duration(uint64_t ms, char *buf, size_t cap)
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

/* "512 B", "3.4 KiB", "12.0 MiB". */
static const char *
fmt_size(uint64_t n, char *buf, size_t cap)
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

/* One "  key:   value" line of the table. */
static void
row(struct evbuffer *out, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
row(struct evbuffer *out, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(key) + 3;

	evbuffer_add_printf(out, "  %s:%*s", key,
	    used < KEY_WIDTH ? (int)(KEY_WIDTH - used) : 1, "");
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

/*
 * s as a JSON string. Valid UTF-8 passes as it is; otherwise (a path is any
 * bytes) each byte above 0x7f becomes \u00XX, which keeps the JSON valid.
 */
static void
json_string(struct evbuffer *out, const char *s)
{
	size_t len = strlen(s), need = json_escape(NULL, 0, s, len);
	struct evbuffer_iovec v;

	evbuffer_add(out, "\"", 1);
	if (evbuffer_reserve_space(out, (ev_ssize_t)need + 1, &v, 1) == 1) {
		json_escape(v.iov_base, need + 1, s, len);
		v.iov_len = need;
		evbuffer_commit_space(out, &v, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* ---- status ---------------------------------------------------------------- */

static void
status_json(struct control *ctl, struct evbuffer *out)
{
	struct broker_counts bc;
	char small[4096], *big = NULL, *members = small;
	size_t n;

	broker_counts(ctl->b, &bc);
	if ((n = bridge_status_json(ctl->br, small, sizeof(small))) >=
	    sizeof(small)) {
		if ((big = malloc(n + 1)) == NULL)
			fatal("status");
		(void)bridge_status_json(ctl->br, big, n + 1);
		members = big;
	}
	evbuffer_add_printf(out, "{\"version\":\"%s\",\"pid\":%ld,"
	    "\"uptime_s\":%" PRIu64 ",\"config\":", IOTB_VERSION,
	    (long)getpid(), bc.uptime_ms / 1000);
	json_string(out, ctl->cfg_path);
	evbuffer_add_printf(out, ",\"clients\":{\"connected\":%zu,"
	    "\"sessions\":%zu},\"messages\":{\"in\":%" PRIu64 ",\"out\":%"
	    PRIu64 ",\"dropped\":%" PRIu64 "},\"bytes\":{\"in\":%" PRIu64
	    ",\"out\":%" PRIu64 "},%s}\n", bc.clients, bc.sessions, bc.msgs_in,
	    bc.msgs_out, bc.msgs_dropped, bc.bytes_in, bc.bytes_out, members);
	free(big);
}

static void
status_uplink(struct evbuffer *out, const struct bridge_stats *st)
{
	const struct uplink_status *up = &st->up;
	char t[32], u[32];

	evbuffer_add_printf(out, "Uplink\n");
	switch (up->state) {
	case UPLINK_OFF:
		row(out, "state", "off (no aws section)");
		return;
	case UPLINK_WAITING:
		row(out, "state", "waiting, next attempt in %s",
		    fmt_duration(up->next_attempt_ms, t, sizeof(t)));
		break;
	case UPLINK_ONLINE:
		row(out, "state", "online for %s",
		    fmt_duration(up->connected_ms, t, sizeof(t)));
		break;
	default:
		row(out, "state", "%s", uplink_state_name(up->state));
		break;
	}
	if (up->last_error[0] != '\0')
		row(out, "last error", "%s", up->last_error);
	row(out, "attempts", "%" PRIu64, up->attempts);
	row(out, "connects", "%" PRIu64, up->connects);
	row(out, "failures", "%" PRIu64, up->failures);
	row(out, "disconnects", "%" PRIu64, up->disconnects);
	row(out, "subscriptions", "%u", up->subscriptions);
	row(out, "in flight", "%u", up->inflight);
	row(out, "sent", "%" PRIu64 " (%" PRIu64 " acknowledged)", st->sent,
	    st->acked);
	row(out, "received", "%" PRIu64, st->from_aws);
	row(out, "refused", "%" PRIu64 " (%" PRIu64 " kept as dead letters)",
	    st->refused, st->dead_letters);
	if (st->downgraded > 0)
		row(out, "QoS 2 sent as 1", "%" PRIu64, st->downgraded);
	row(out, "bytes", "%s out, %s in",
	    fmt_size(up->bytes_out, t, sizeof(t)),
	    fmt_size(up->bytes_in, u, sizeof(u)));
	if (up->clock_offset_s != 0)
		row(out, "clock offset", "%+" PRId64 "s", up->clock_offset_s);
}

static void
status_queue(struct evbuffer *out, const struct bridge_stats *st)
{
	const struct queue_stats *q = &st->q;
	char t[32], u[32];

	evbuffer_add_printf(out, "Queue\n");
	if (!st->queue_open) {
		row(out, "state", "off (no bridge rule sends out)");
		return;
	}
	row(out, "messages", "%" PRIu64 " (%s), %" PRIu64 " in flight",
	    q->depth_msgs, fmt_size(q->depth_bytes, t, sizeof(t)),
	    q->inflight);
	if (q->depth_msgs > 0)
		row(out, "oldest", "%s ago",
		    fmt_duration(st->oldest_age_ms, t, sizeof(t)));
	row(out, "disk", "%s in %u segment%s%s",
	    fmt_size(q->disk_bytes, u, sizeof(u)), q->segments,
	    q->segments == 1 ? "" : "s", st->disk_full ?
	    " (full: the last append failed)" : "");
	row(out, "drops", "oldest %" PRIu64 ", newest %" PRIu64 ", corrupt %"
	    PRIu64 ", disk %" PRIu64, q->drops[QUEUE_DROPPED_OLDEST],
	    q->drops[QUEUE_DROPPED_NEWEST], q->drops[QUEUE_DROPPED_CORRUPT],
	    q->drops[QUEUE_DROPPED_DISK]);
	if (!st->backlog)
		row(out, "backlog", "no");
	else if (st->drain_hz > 0)
		row(out, "backlog", "yes, draining at %" PRId64 " messages/s",
		    st->drain_hz);
	else
		row(out, "backlog", "yes, draining as fast as AWS allows");
	row(out, "fsync", "%s", st->fsync);
}

static void
status_text(struct control *ctl, struct evbuffer *out)
{
	struct broker_counts bc;
	struct bridge_stats st;
	char t[32], u[32];

	broker_counts(ctl->b, &bc);
	bridge_stats(ctl->br, &st);
	evbuffer_add_printf(out, "iotbridged %s, pid %ld, up %s\n",
	    IOTB_VERSION, (long)getpid(),
	    fmt_duration(bc.uptime_ms, t, sizeof(t)));
	evbuffer_add_printf(out, "config: %s\n\n", ctl->cfg_path);
	status_uplink(out, &st);
	evbuffer_add(out, "\n", 1);
	status_queue(out, &st);
	evbuffer_add(out, "\nBroker\n", 8);
	row(out, "clients", "%zu connected", bc.clients);
	row(out, "sessions", "%zu", bc.sessions);
	row(out, "messages", "%" PRIu64 " in, %" PRIu64 " out, %" PRIu64
	    " dropped", bc.msgs_in, bc.msgs_out, bc.msgs_dropped);
	row(out, "bytes", "%s in, %s out", fmt_size(bc.bytes_in, t, sizeof(t)),
	    fmt_size(bc.bytes_out, u, sizeof(u)));
}

/* ---- commands -------------------------------------------------------------- */

static void
do_reload(struct control *ctl, struct evbuffer *out, const char *peer)
{
	struct cfg_diag errors = { 0 };
	int rc;

	log_info("control: reload requested by %s", peer);
	rc = ctl->reload(ctl->arg, &errors);
	if (rc == 0)
		evbuffer_add_printf(out, "ok: configuration reloaded\n");
	else if (rc > 0)
		evbuffer_add_printf(out, "ok: configuration reloaded, but some "
		    "of it could not be applied (see the log)\n");
	else
		evbuffer_add_printf(out, "error: invalid configuration, "
		    "keeping the running one\n");
	for (size_t i = 0; i < errors.count; i++)
		evbuffer_add_printf(out, "%s\n", errors.msgs[i]);
	cfg_diag_clear(&errors);
}

static bool
line_is(const char *line, size_t len, const char *cmd)
{
	return len == strlen(cmd) && memcmp(line, cmd, len) == 0;
}

static enum oneshot_verdict
control_request(void *arg, struct evbuffer *in, bool full, bool eof,
    struct evbuffer *out, const char *peer)
{
	struct control *ctl = arg;
	char line[CONTROL_MAX_LINE + 1], esc[64];
	struct evbuffer_ptr nl;
	size_t len;

	nl = evbuffer_search(in, "\n", 1, NULL);
	if (nl.pos >= 0)
		len = (size_t)nl.pos;
	else if (eof)
		len = evbuffer_get_length(in);	/* a last line without newline */
	else
		return ONESHOT_MORE;	/* full: oneshot closes it */
	if (len == 0 && nl.pos < 0)
		return ONESHOT_MORE;	/* nothing at all before EOF */
	/* the read watermark keeps the input within CONTROL_MAX_LINE */
	if (len > CONTROL_MAX_LINE ||
	    evbuffer_copyout(in, line, len) != (ev_ssize_t)len)
		return ONESHOT_CLOSE;
	if (len > 0 && line[len - 1] == '\r')
		len--;

	if (line_is(line, len, "status"))
		status_text(ctl, out);
	else if (line_is(line, len, "status json"))
		status_json(ctl, out);
	else if (line_is(line, len, "reload"))
		do_reload(ctl, out, peer);
	else
		evbuffer_add_printf(out, "error: unknown command \"%s\" "
		    "(expected status, status json or reload)\n",
		    log_escape(esc, sizeof(esc), line, len));
	return ONESHOT_ANSWER;
}

/* ---- life ------------------------------------------------------------------ */

static struct cfg_addr
unix_addr(const char *path)
{
	struct cfg_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_UNIX;
	snprintf(a.path, sizeof(a.path), "%s", path);
	return a;
}

struct control *
control_new(struct event_base *base, const char *path, const char *cfg_path,
    struct broker *b, struct bridge *br, control_reload_fn reload, void *arg)
{
	struct oneshot_conf conf = {
		.name = "control",
		.max_conns = CONTROL_MAX_CONNS,
		.max_request = CONTROL_MAX_LINE,
		.timeout_s = CONTROL_TIMEOUT_S,
		.unix_mode = CONTROL_SOCKET_MODE,
		.busy = "error: busy, too many control connections\n",
		.request = control_request,
	};
	struct control *ctl;

	if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
		return NULL;
	ctl->cfg_path = cfg_path;
	ctl->b = b;
	ctl->br = br;
	ctl->reload = reload;
	ctl->arg = arg;
	conf.arg = ctl;
	if ((ctl->srv = oneshot_new(base, &conf)) == NULL) {
		free(ctl);
		return NULL;
	}
	control_reload(ctl, path);
	return ctl;
}

void
control_reload(struct control *ctl, const char *path)
{
	struct cfg_addr a = unix_addr(path);

	(void)oneshot_listen(ctl->srv, &a);
}

void
control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	oneshot_free(ctl->srv);
	free(ctl);
}
