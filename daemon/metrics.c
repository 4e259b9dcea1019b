/*
 * The metrics endpoint (see metrics.h): routing one HTTP request and
 * rendering the exposition. Every scrape reads broker_counts() and
 * bridge_stats() afresh; counters are the daemon's own, since its start, so
 * Prometheus sees a restart as a counter reset, as it should.
 */
#include "daemon/metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "iotb_build.h"
#include "config/cfg.h"
#include "daemon/bridge.h"
#include "daemon/broker.h"
#include "daemon/log.h"
#include "daemon/oneshot.h"
#include "util/httpreq.h"

#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	struct oneshot	*srv;
	struct broker	*b;
	struct bridge	*br;
};

/* ---- the exposition ---------------------------------------------------- */

/* A family of one sample without labels. Counters are never negative,
 * gauges may be (the clock offset). */
struct metric {
	const char	*name;		/* after "iotbridge_" */
	const char	*help;
	bool		 counter;	/* else a gauge */
	int64_t		 gauge;
	uint64_t	 count;
};

#define COUNTER(n, h, v)	{ .name = (n), .help = (h), .counter = true, \
				  .count = (v) }
#define GAUGE(n, h, v)		{ .name = (n), .help = (h), .gauge = (int64_t)(v) }
#define NELEM(a)		(sizeof(a) / sizeof((a)[0]))

static void
family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP iotbridge_%s %s\n"
	    "# TYPE iotbridge_%s %s\n", name, help, name, type);
}

static void
metrics_put(struct evbuffer *out, const struct metric *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		family(out, m[i].name, m[i].counter ? "counter" : "gauge",
		    m[i].help);
		if (m[i].counter)
			evbuffer_add_printf(out, "iotbridge_%s %" PRIu64 "\n",
			    m[i].name, m[i].count);
		else
			evbuffer_add_printf(out, "iotbridge_%s %" PRId64 "\n",
			    m[i].name, m[i].gauge);
	}
}

/* A gauge of milliseconds, in seconds as Prometheus wants them. */
static void
seconds(struct evbuffer *out, const char *name, const char *help,
    uint64_t ms)
{
	family(out, name, "gauge", help);
	evbuffer_add_printf(out, "iotbridge_%s %" PRIu64 ".%03u\n", name,
	    ms / 1000, (unsigned)(ms % 1000));
}

static void
render_uplink(struct evbuffer *out, const struct bridge_stats *st)
{
	const struct uplink_status *up = &st->up;
	const struct metric m[] = {
		COUNTER("uplink_connect_attempts_total",
		    "Connection attempts to AWS IoT Core", up->attempts),
		COUNTER("uplink_connects_total", "Connections to AWS IoT Core "
		    "that were accepted (CONNACK)", up->connects),
		COUNTER("uplink_connect_failures_total",
		    "Connection attempts to AWS IoT Core that failed",
		    up->failures),
		COUNTER("uplink_disconnects_total", "Established connections "
		    "to AWS IoT Core that ended", up->disconnects),
		GAUGE("uplink_inflight_messages", "QoS 1 messages sent to AWS "
		    "and not acknowledged yet", up->inflight),
		GAUGE("uplink_clock_offset_seconds", "Correction added to the "
		    "local clock to sign requests", up->clock_offset_s),
		COUNTER("uplink_messages_sent_total",
		    "Messages handed to the connection to AWS", st->sent),
		COUNTER("uplink_messages_acked_total",
		    "Messages AWS acknowledged (QoS 0: sent)", st->acked),
		COUNTER("uplink_messages_received_total", "Messages received "
		    "from AWS and published locally", st->from_aws),
		COUNTER("uplink_messages_refused_total", "Messages refused by "
		    "AWS IoT Core's limits, never sent", st->refused),
		COUNTER("uplink_bytes_sent_total",
		    "Bytes written to the connection to AWS", up->bytes_out),
		COUNTER("uplink_bytes_received_total",
		    "Bytes read from the connection to AWS", up->bytes_in),
	};

	family(out, "uplink_state", "gauge",
	    "State of the connection to AWS IoT Core: 1 for the current one");
	for (int s = UPLINK_OFF; s <= UPLINK_STOPPED; s++)
		evbuffer_add_printf(out, "iotbridge_uplink_state{state=\"%s\"} "
		    "%d\n", uplink_state_name((enum uplink_state)s),
		    up->state == (enum uplink_state)s);
	metrics_put(out, m, NELEM(m));
}

static void
render_queue(struct evbuffer *out, const struct bridge_stats *st)
{
	const struct queue_stats *q = &st->q;
	const struct metric m[] = {
		GAUGE("queue_messages", "Messages in the queue for AWS",
		    q->depth_msgs),
		GAUGE("queue_bytes", "Bytes of the messages in the queue",
		    q->depth_bytes),
		GAUGE("queue_disk_bytes", "Disk space the queue's segments use",
		    q->disk_bytes),
	};

	metrics_put(out, m, NELEM(m));
	seconds(out, "queue_oldest_age_seconds",
	    "Age of the oldest message in the queue (0: empty)",
	    st->oldest_age_ms);
	family(out, "queue_drops_total", "counter",
	    "Messages dropped from the queue, by reason");
	for (int r = 0; r < QUEUE_DROPPED_NREASONS; r++)
		evbuffer_add_printf(out, "iotbridge_queue_drops_total"
		    "{reason=\"%s\"} %" PRIu64 "\n",
		    queue_drop_name((enum queue_drop)r), q->drops[r]);
}

static void
render(struct metrics *me, struct evbuffer *out)
{
	struct broker_counts bc;
	struct bridge_stats st;

	broker_counts(me->b, &bc);
	bridge_stats(me->br, &st);
	family(out, "build_info", "gauge", "The running version: always 1");
	evbuffer_add_printf(out, "iotbridge_build_info{version=\"%s\"} 1\n",
	    IOTB_VERSION);
	seconds(out, "uptime_seconds", "Seconds since the daemon started",
	    bc.uptime_ms);
	render_uplink(out, &st);
	render_queue(out, &st);
	{
		const struct metric m[] = {
			GAUGE("clients_connected",
			    "MQTT clients connected to the broker", bc.clients),
			GAUGE("sessions",
			    "MQTT sessions, connected or kept offline",
			    bc.sessions),
			COUNTER("messages_in_total",
			    "PUBLISH packets received from local clients",
			    bc.msgs_in),
			COUNTER("messages_out_total",
			    "PUBLISH packets sent to local clients",
			    bc.msgs_out),
			COUNTER("messages_dropped_total", "Messages for local "
			    "clients dropped (queue full, slow subscriber)",
			    bc.msgs_dropped),
			COUNTER("bytes_in_total",
			    "Bytes received from local clients", bc.bytes_in),
			COUNTER("bytes_out_total",
			    "Bytes sent to local clients", bc.bytes_out),
		};

		metrics_put(out, m, NELEM(m));
	}
}

/* ---- HTTP ---------------------------------------------------------------- */

/* The status line and header of a response with a body of len bytes. */
static void
respond_head(struct evbuffer *out, const char *status, const char *headers,
    const char *type, size_t len)
{
	evbuffer_add_printf(out, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status, type,
	    len, headers);
}

/* An error page: one line of text (not sent in answer to HEAD). */
static enum oneshot_verdict
respond_text(struct evbuffer *out, const char *status, const char *headers,
    const char *text, bool head)
{
	respond_head(out, status, headers, "text/plain; charset=utf-8",
	    strlen(text));
	if (!head)
		evbuffer_add(out, text, strlen(text));
	return ONESHOT_ANSWER;
}

static enum oneshot_verdict
metrics_request(void *arg, struct evbuffer *in, bool full, bool eof,
    struct evbuffer *out, const char *peer)
{
	struct metrics *m = arg;
	size_t len = evbuffer_get_length(in);
	struct evbuffer *body;
	struct httpreq req;
	enum httpreq_status st;
	bool head;

	st = httpreq_parse(evbuffer_pullup(in, -1), len, METRICS_MAX_REQUEST,
	    &req);
	switch (st) {
	case HTTPREQ_NEED_MORE:
		return ONESHOT_MORE;
	case HTTPREQ_MALFORMED:
	case HTTPREQ_TOO_BIG:
		log_debug("metrics peer=%s: %s", peer, httpreq_strerror(st));
		if (st == HTTPREQ_TOO_BIG)
			return respond_text(out, "431 Request Header Fields "
			    "Too Large", "", "request head too large\n", false);
		return respond_text(out, "400 Bad Request", "",
		    "malformed request\n", false);
	case HTTPREQ_OK:
		break;
	}
	head = httpreq_method_is(&req, "HEAD");
	if (!buf_view_eq(req.path, buf_cstr(METRICS_PATH)))
		return respond_text(out, "404 Not Found", "", "not found; the "
		    "metrics are at " METRICS_PATH "\n", head);
	/* HEAD is GET without the body (RFC 9110 9.3.2): monitoring checks
	 * and load balancers probe with it */
	if (!head && !httpreq_method_is(&req, "GET"))
		return respond_text(out, "405 Method Not Allowed",
		    "Allow: GET, HEAD\r\n", "only GET and HEAD\n", false);
	if ((body = evbuffer_new()) == NULL)
		return ONESHOT_CLOSE;
	render(m, body);
	respond_head(out, "200 OK", "", CONTENT_TYPE,
	    evbuffer_get_length(body));
	if (!head)
		evbuffer_add_buffer(out, body);
	evbuffer_free(body);
	return ONESHOT_ANSWER;
}

/* ---- life ---------------------------------------------------------------- */

struct metrics *
metrics_new(struct event_base *base, const struct cfg_addr *listen,
    struct broker *b, struct bridge *br)
{
	struct oneshot_conf conf = {
		.name = "metrics",
		.max_conns = METRICS_MAX_CONNS,
		.max_request = METRICS_MAX_REQUEST,
		.timeout_s = METRICS_TIMEOUT_S,
		.busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0"
		    "\r\nConnection: close\r\n\r\n",
		.request = metrics_request,
	};
	struct metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->b = b;
	m->br = br;
	conf.arg = m;
	if ((m->srv = oneshot_new(base, &conf)) == NULL) {
		free(m);
		return NULL;
	}
	metrics_reload(m, listen);
	return m;
}

void
metrics_reload(struct metrics *m, const struct cfg_addr *listen)
{
	(void)oneshot_listen(m->srv, listen);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	oneshot_free(m->srv);
	free(m);
}
