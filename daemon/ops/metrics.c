/*
 * The metrics endpoint (see metrics.h): routing one HTTP request and
 * rendering the exposition. Every scrape reads broker_counts() and
 * bridge_stats() afresh (the AWS side's families walk stats_table); counters are the daemon's own, since its start, so
 * Prometheus sees a restart as a counter reset, as it should.
 */
#include "daemon/ops/metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "iotb_build.h"
#include "config/cfg.h"
#include "daemon/aws/bridge.h"
#include "daemon/aws/stats.h"
#include "daemon/broker/broker.h"
#include "daemon/util/log.h"
#include "daemon/ops/oneshot.h"
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

/* The AWS side's families, walking stats_table. */
static void
render_bridge(struct evbuffer *out, const struct bridge_stats *st)
{
	for (size_t i = 0; i < stats_count; i++) {
		const struct stats_def *d = &stats_table[i];
		int64_t v;

		if (d->prom == NULL)
			continue;
		switch (d->kind) {
		case STATS_MS:
			seconds(out, d->prom, d->help, stats_u64(d, st));
			break;
		case STATS_STATE:
			family(out, d->prom, "gauge", d->help);
			v = stats_i64(d, st);
			for (int s = 0; s < stats_nstates(); s++)
				evbuffer_add_printf(out, "iotbridge_%s{state="
				    "\"%s\"} %d\n", d->prom,
				    stats_state_name(s), v == s);
			break;
		case STATS_DROPS:
			family(out, d->prom, d->counter ? "counter" : "gauge",
			    d->help);
			for (int r = 0; r < stats_ndrops(); r++)
				evbuffer_add_printf(out, "iotbridge_%s{reason="
				    "\"%s\"} %" PRIu64 "\n", d->prom,
				    stats_drop_key(r, false),
				    stats_drops(st, r));
			break;
		case STATS_GAUGE:
		case STATS_FLAG: {
			/* stats_u64() reads 8 bytes: a bool has one */
			const struct metric m = GAUGE(d->prom, d->help,
			    stats_i64(d, st));

			metrics_put(out, &m, 1);
			break;
		}
		default: {
			struct metric m = COUNTER(d->prom, d->help,
			    stats_u64(d, st));

			if (!d->counter)
				m = (struct metric)GAUGE(d->prom, d->help,
				    stats_u64(d, st));
			metrics_put(out, &m, 1);
			break;
		}
		}
	}
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
	render_bridge(out, &st);
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
