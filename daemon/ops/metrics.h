/*
 * The Prometheus endpoint: GET /metrics on metrics.listen answers the
 * daemon's counters and gauges in the text exposition format, version 0.0.4
 * (names prefixed iotbridge_, each family with HELP and TYPE). A minimal
 * HTTP/1.1 server: one request per connection, Connection: close; 404 for
 * any other path, 405 for any other method, 400 for a malformed request,
 * 431 for a head over METRICS_MAX_REQUEST bytes; no head within
 * METRICS_TIMEOUT_S seconds closes the connection, and at most
 * METRICS_MAX_CONNS are served at once. The request head is parsed by
 * lib/util/httpreq.c. docs/operations.md lists the metrics.
 */
#ifndef IOTB_METRICS_H
#define IOTB_METRICS_H

struct event_base;
struct cfg_addr;
struct broker;
struct bridge;
struct metrics;

#define METRICS_MAX_REQUEST	4096
#define METRICS_TIMEOUT_S	5
#define METRICS_MAX_CONNS	8
#define METRICS_PATH		"/metrics"

/*
 * Serve the metrics of b and br (borrowed; they must outlive the endpoint)
 * on listen, or nowhere when its family is AF_UNSPEC. When the address
 * cannot be bound, one warning is logged and the daemon runs on without it.
 * NULL only when out of memory.
 */
struct metrics	*metrics_new(struct event_base *base, const struct cfg_addr *listen,
		    struct broker *b, struct bridge *br);

/* After a reload: move to listen if it changed (AF_UNSPEC: stop), or try
 * again to bind it if that failed so far. listen is copied. */
void		 metrics_reload(struct metrics *m, const struct cfg_addr *listen);

/* Close the socket and connections, free. NULL is a no-op. */
void		 metrics_free(struct metrics *m);

#endif
