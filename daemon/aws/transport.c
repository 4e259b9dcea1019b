/*
 * The steps every connection to AWS takes, as one state machine: resolve
 * the name (evdns, never blocking the loop), connect over TCP to each
 * address in turn, tunnel through an HTTP proxy when one is configured,
 * TLS with the configured CA and the endpoint's name, then the
 * implementation's handshake (transport_impl.h), then open. The state is
 * written by transport_enter() only, which logs every transition and runs
 * the new state's entry action; a failure anywhere enters IDLE, which
 * releases the connection, and then tells the session.
 */
#include "daemon/aws/transport.h"
#include "daemon/aws/transport_impl.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "config/cfg.h"
#include "daemon/util/clock.h"
#include "daemon/util/log.h"
#include "daemon/util/str.h"
#include "daemon/util/tls.h"
#include "ws/http.h"

#define TRANSPORT_CLOSE_LINGER_MS	1000

enum transport_state {
	TRANSPORT_S_IDLE,
	TRANSPORT_S_RESOLVING,
	TRANSPORT_S_CONNECTING,	/* TCP, to each address in turn */
	TRANSPORT_S_PROXY,	/* HTTP CONNECT through the proxy */
	TRANSPORT_S_TLS,
	TRANSPORT_S_HANDSHAKE,	/* the implementation's own */
	TRANSPORT_S_OPEN,
};

static const char *const state_names[] = {
	[TRANSPORT_S_IDLE] = "idle",
	[TRANSPORT_S_RESOLVING] = "resolving",
	[TRANSPORT_S_CONNECTING] = "connecting",
	[TRANSPORT_S_PROXY] = "proxy",
	[TRANSPORT_S_TLS] = "tls",
	[TRANSPORT_S_HANDSHAKE] = "handshake",
	[TRANSPORT_S_OPEN] = "open",
};

struct transport {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct cfg	*cfg;
	const struct transport_impl *impl;
	void			*st;		/* the implementation's */
	struct transport_cb	 cb;
	void			*arg;
	char			 name[32];

	enum transport_state	 state;
	uint64_t		 gen;		/* one per connection */
	struct event		*ev_start;	/* open, from the loop */

	/* settings */
	struct tls_client_ctx	*tls;
	char			*host;
	uint16_t		 port;
	char			*proxy_host;	/* NULL: direct */
	uint16_t		 proxy_port;
	char			*proxy_auth;	/* base64 user:pass, secret */

	/* the connection */
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo	*ai, *ai_next;
	struct bufferevent	*bev;
	uint64_t		 deadline_ms;	/* for the TLS handshake */
	int			 tcp_error;	/* of the last address tried */
	bool			 polite;	/* linger on the way to IDLE */

	uint64_t		 bytes_in, bytes_out;
};

static void	transport_enter(struct transport *, enum transport_state,
		    const char *);

/* ---- for implementations ------------------------------------------------ */

const struct cfg *
transport_cfg(const struct transport *t)
{
	return t->cfg;
}

bool
transport_opened(struct transport *t)
{
	uint64_t gen = t->gen;

	transport_enter(t, TRANSPORT_S_OPEN, "handshake done");
	return t->gen == gen && t->state == TRANSPORT_S_OPEN;
}

void
transport_deliver(struct transport *t, struct evbuffer *stream)
{
	if (t->state == TRANSPORT_S_OPEN)
		t->cb.data(t->arg, stream);
}

void
transport_fail(struct transport *t, enum transport_end end, const char *fmt,
    ...)
{
	char why[256];
	va_list ap;

	if (t->state == TRANSPORT_S_IDLE)
		return;
	if (end == TRANSPORT_LOST && t->state != TRANSPORT_S_OPEN)
		end = TRANSPORT_FAILED;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	transport_enter(t, TRANSPORT_S_IDLE, why);
	t->cb.closed(t->arg, end, why);
}

/* ---- the steps ------------------------------------------------------------ */

void
transport_count(struct transport *t, size_t in, size_t out)
{
	t->bytes_in += in;
	t->bytes_out += out;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct transport *t = arg;

	if (t->state == TRANSPORT_S_HANDSHAKE || t->state == TRANSPORT_S_OPEN)
		t->impl->input(t, t->st, bufferevent_get_input(bev),
		    bufferevent_get_output(bev));
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct transport *t = arg;

	if (t->state == TRANSPORT_S_OPEN)
		t->cb.drained(t->arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct transport *t = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (t->state == TRANSPORT_S_TLS)
			transport_enter(t, TRANSPORT_S_HANDSHAKE,
			    tls_version(bev));
		return;
	}
	if (t->state == TRANSPORT_S_TLS) {
		transport_fail(t, TRANSPORT_FAILED, "TLS: %s",
		    tls_last_error(bev));
		return;
	}
	transport_fail(t, TRANSPORT_LOST, "%s", (what & BEV_EVENT_EOF) ?
	    "connection closed by AWS" : tls_last_error(bev));
}

static void
on_proxy_read(struct bufferevent *bev, void *arg)
{
	struct transport *t = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	struct http_response r;
	enum http_status hs;
	char reason[64];

	hs = http_response_parse(evbuffer_pullup(in, -1), len, &r);
	if (hs == HTTP_NEED_MORE)
		return;
	if (hs != HTTP_OK) {
		transport_fail(t, TRANSPORT_FAILED, "proxy %s:%u: %s",
		    t->proxy_host, t->proxy_port, http_strerror(hs));
		return;
	}
	if (r.status / 100 != 2) {
		log_escape(reason, sizeof(reason), r.reason.ptr, r.reason.len);
		transport_fail(t, TRANSPORT_FAILED, "proxy %s:%u refused "
		    "CONNECT: %d %s", t->proxy_host, t->proxy_port, r.status,
		    reason);
		return;
	}
	if (len != r.head_len) {
		transport_fail(t, TRANSPORT_FAILED, "proxy %s:%u sent data "
		    "before TLS", t->proxy_host, t->proxy_port);
		return;
	}
	evbuffer_drain(in, len);
	transport_enter(t, TRANSPORT_S_TLS, "tunnel open");
}

static void
on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct transport *t = arg;

	if (t->state == TRANSPORT_S_PROXY) {
		transport_fail(t, TRANSPORT_FAILED, "proxy %s:%u closed the "
		    "tunnel", t->proxy_host, t->proxy_port);
		return;
	}
	if (!(what & BEV_EVENT_CONNECTED)) {
		t->tcp_error = EVUTIL_SOCKET_ERROR();
		log_debug("%s: TCP connect: %s", t->name,
		    evutil_socket_error_to_string(t->tcp_error));
		bufferevent_free(t->bev);
		t->bev = NULL;
		transport_enter(t, TRANSPORT_S_CONNECTING, "next address");
		return;
	}
	transport_enter(t, t->proxy_host != NULL ? TRANSPORT_S_PROXY :
	    TRANSPORT_S_TLS, "TCP connected");
}

static void
on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
	struct transport *t = arg;

	if (err == EVUTIL_EAI_CANCEL)
		return;
	t->dns_req = NULL;
	if (err != 0) {
		transport_fail(t, TRANSPORT_FAILED, "DNS: %s: %s",
		    t->proxy_host ? t->proxy_host : t->host,
		    evutil_gai_strerror(err));
		return;
	}
	t->ai = t->ai_next = res;
	transport_enter(t, TRANSPORT_S_CONNECTING, "resolved");
}

static void
resolve(struct transport *t)
{
	struct evutil_addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = EVUTIL_AI_ADDRCONFIG,
	};
	struct evdns_getaddrinfo_request *req;
	uint64_t gen = t->gen;
	char port[8];

	snprintf(port, sizeof(port), "%u",
	    t->proxy_host ? t->proxy_port : t->port);
	req = evdns_getaddrinfo(t->dns, t->proxy_host ? t->proxy_host :
	    t->host, port, &hints, on_resolved, t);
	/* NULL: answered already (a literal, /etc/hosts), callback done */
	if (req != NULL && t->gen == gen && t->state == TRANSPORT_S_RESOLVING)
		t->dns_req = req;
}

/* The next address the name resolved to. */
static void
tcp_next(struct transport *t)
{
	while (t->ai_next != NULL) {
		struct evutil_addrinfo *a = t->ai_next;

		t->ai_next = a->ai_next;
		t->bev = bufferevent_socket_new(t->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (t->bev == NULL)
			break;
		bufferevent_setcb(t->bev, NULL, NULL, on_tcp_event, t);
		if (bufferevent_socket_connect(t->bev, a->ai_addr,
		    (int)a->ai_addrlen) == 0)
			return;
		t->tcp_error = EVUTIL_SOCKET_ERROR();
		bufferevent_free(t->bev);
		t->bev = NULL;
	}
	transport_fail(t, TRANSPORT_FAILED, "cannot connect to %s:%u: %s",
	    t->proxy_host ? t->proxy_host : t->host,
	    t->proxy_host ? t->proxy_port : t->port,
	    evutil_socket_error_to_string(t->tcp_error));
}

static void
secret_unref(const void *data, size_t len, void *arg)
{
	mbedtls_platform_zeroize((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

int
transport_add_secret(struct evbuffer *out, void *buf, size_t len)
{
	if (evbuffer_add_reference(out, buf, len, secret_unref, NULL) == 0)
		return 0;
	secret_unref(buf, len, NULL);
	return -1;
}

static void
proxy_connect(struct transport *t)
{
	struct evbuffer *out = bufferevent_get_output(t->bev);

	evbuffer_add_printf(out, "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n",
	    t->host, t->port, t->host, t->port);
	if (t->proxy_auth != NULL) {
		/* the credentials go by reference, wiped once sent */
		char *line = str_concat3("Proxy-Authorization: Basic ",
		    t->proxy_auth, "\r\n");

		if (line != NULL)
			(void)transport_add_secret(out, line, strlen(line));
	}
	evbuffer_add(out, "\r\n", 2);
	bufferevent_setcb(t->bev, on_proxy_read, NULL, on_tcp_event, t);
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
}

static void
tls_start(struct transport *t)
{
	uint64_t now = clock_mono_ms();
	struct bufferevent *tb;

	bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
	tb = tls_client_wrap(t->tls, t->bev, t->host,
	    t->deadline_ms > now ? (int)(t->deadline_ms - now) : 1);
	t->bev = tb;	/* the socket bev is owned by the TLS layer now */
	if (tb == NULL) {
		transport_fail(t, TRANSPORT_FAILED, "TLS: out of memory");
		return;
	}
	bufferevent_setcb(tb, on_read, on_write, on_event, t);
	bufferevent_setwatermark(tb, EV_WRITE, 0, 0);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void
handshake_start(struct transport *t)
{
	log_debug("%s: TLS %s %s%s", t->name, tls_version(t->bev),
	    tls_ciphersuite(t->bev), tls_resumed(t->bev) ? " (resumed)" : "");
	t->impl->handshake(t, t->st, bufferevent_get_output(t->bev));
}

/* The way to IDLE: whatever the connection had goes. */
static void
release(struct transport *t, enum transport_state from)
{
	if (t->dns_req != NULL) {
		evdns_getaddrinfo_cancel(t->dns_req);
		t->dns_req = NULL;
	}
	if (t->ai != NULL) {
		evutil_freeaddrinfo(t->ai);
		t->ai = t->ai_next = NULL;
	}
	if (t->bev != NULL) {
		if (t->polite && from >= TRANSPORT_S_HANDSHAKE)
			tls_close(t->bev, TRANSPORT_CLOSE_LINGER_MS);
		else if (from >= TRANSPORT_S_TLS)
			tls_close(t->bev, 0);
		else
			bufferevent_free(t->bev);
		t->bev = NULL;
	}
	event_del(t->ev_start);
	t->impl->reset(t->st);
	t->polite = false;
	t->gen++;
}

static void
transport_enter(struct transport *t, enum transport_state to,
    const char *why)
{
	enum transport_state from = t->state;

	log_debug("%s: transport %s -> %s (%s)", t->name, state_names[from],
	    state_names[to], why);
	t->state = to;
	switch (to) {
	case TRANSPORT_S_IDLE:
		release(t, from);
		break;
	case TRANSPORT_S_RESOLVING:
		resolve(t);
		break;
	case TRANSPORT_S_CONNECTING:
		tcp_next(t);
		break;
	case TRANSPORT_S_PROXY:
		proxy_connect(t);
		break;
	case TRANSPORT_S_TLS:
		tls_start(t);
		break;
	case TRANSPORT_S_HANDSHAKE:
		handshake_start(t);
		break;
	case TRANSPORT_S_OPEN:
		t->cb.opened(t->arg);
		break;
	}
}

/* ---- the interface -------------------------------------------------------- */

static void
on_start(evutil_socket_t fd, short ev, void *arg)
{
	struct transport *t = arg;

	if (t->state == TRANSPORT_S_IDLE && t->host != NULL)
		transport_enter(t, TRANSPORT_S_RESOLVING, "open");
}

int
transport_open(struct transport *t, uint64_t timeout_ms)
{
	struct timeval now = { 0, 0 };

	if (t->host == NULL || t->tls == NULL || t->state != TRANSPORT_S_IDLE)
		return -1;
	t->deadline_ms = clock_mono_ms() + timeout_ms;
	t->tcp_error = 0;
	/* from the loop: no callback runs inside transport_open() */
	return event_add(t->ev_start, &now);
}

int
transport_send(struct transport *t, const void *head, size_t hlen,
    const void *body, size_t blen)
{
	if (t->state != TRANSPORT_S_OPEN)
		return -1;
	return t->impl->send(t, t->st, bufferevent_get_output(t->bev), head,
	    hlen, body, blen);
}

size_t
transport_pending(const struct transport *t)
{
	return t->bev != NULL && t->state >= TRANSPORT_S_HANDSHAKE ?
	    evbuffer_get_length(bufferevent_get_output(t->bev)) : 0;
}

void
transport_close(struct transport *t, bool polite)
{
	event_del(t->ev_start);
	if (t->state == TRANSPORT_S_IDLE)
		return;
	t->polite = polite;
	transport_enter(t, TRANSPORT_S_IDLE, polite ? "closed" : "dropped");
}

void
transport_info(const struct transport *t, struct transport_info *ti)
{
	bool up = t->bev != NULL && t->state >= TRANSPORT_S_HANDSHAKE;

	*ti = (struct transport_info){
		.name = t->name, .kind = t->impl->kind,
		.host = t->host, .port = t->port,
		.proxy_host = t->proxy_host, .proxy_port = t->proxy_port,
		.tls_version = up ? tls_version(t->bev) : "?",
		.tls_resumed = up && tls_resumed(t->bev),
		.bytes_out = t->bytes_out, .bytes_in = t->bytes_in,
		.clock_offset_s = t->impl->clock_offset(t->st),
	};
}

/* ---- settings ------------------------------------------------------------- */

/* https_proxy as curl reads it: http://[user:pass@]host[:port][/] */
static int
proxy_setup(struct transport *t)
{
	const struct cfg_proxy *p = &t->cfg->aws.proxy;
	struct cfg_proxy envp = { 0 };
	const char *env = getenv("https_proxy");
	char err[160], *userpass = NULL;
	size_t n;
	int rc = -1;

	if (env == NULL || *env == '\0')
		env = getenv("HTTPS_PROXY");
	if (p->url.host == NULL && env != NULL && *env != '\0') {
		if (cfg_proxy_parse(env, &envp, err, sizeof(err)) != CFG_OK) {
			log_warnx("%s: https_proxy: %s; connecting directly",
			    t->name, err);
			return 0;
		}
		p = &envp;
	}
	if (p->url.host == NULL)
		return 0;
	if ((t->proxy_host = strdup(p->url.host)) == NULL)
		goto out;
	t->proxy_port = p->url.port;
	if (p->username != NULL) {
		if ((userpass = str_concat3(p->username, ":", p->password)) ==
		    NULL)
			goto out;
		(void)mbedtls_base64_encode(NULL, 0, &n,
		    (const uint8_t *)userpass, strlen(userpass));
		if ((t->proxy_auth = malloc(n)) == NULL ||
		    mbedtls_base64_encode((uint8_t *)t->proxy_auth, n, &n,
		    (const uint8_t *)userpass, strlen(userpass)) != 0)
			goto out;
	}
	rc = 0;
out:
	if (userpass != NULL) {
		mbedtls_platform_zeroize(userpass, strlen(userpass));
		free(userpass);
	}
	cfg_proxy_clear(&envp);
	return rc;
}

static void
settings_release(struct transport *t)
{
	free(t->host);
	free(t->proxy_host);
	if (t->proxy_auth != NULL) {
		mbedtls_platform_zeroize(t->proxy_auth, strlen(t->proxy_auth));
		free(t->proxy_auth);
	}
	t->host = t->proxy_host = t->proxy_auth = NULL;
	tls_client_ctx_unref(t->tls);
	t->tls = NULL;
	if (t->st != NULL)
		t->impl->destroy(t->st);
	t->st = NULL;
}

/* The implementation cfg asks for: the one place that knows them all (an
 * aws.transport key would choose here). */
static const struct transport_impl *
impl_for(const struct cfg *cfg)
{
	return &transport_wss;
}

/* What a connection is made from; without an aws section, nothing. */
static int
settings_apply(struct transport *t)
{
	const struct cfg *cfg = t->cfg;
	char err[256];

	settings_release(t);
	t->impl = impl_for(cfg);
	if ((t->st = t->impl->create(t, cfg)) == NULL)
		return -1;
	if (!cfg->aws.present)
		return 0;
	if ((t->host = strdup(cfg->aws.endpoint.host)) == NULL)
		return -1;
	t->port = cfg->aws.endpoint.port;
	if ((t->tls = tls_client_ctx_new(cfg->aws.ca_file, NULL, NULL, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s: aws.ca_file: %s", t->name, err);
		return -1;
	}
	return proxy_setup(t);
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
transport_differs(struct transport *t, const struct cfg *cfg)
{
	const struct cfg_aws *x = &t->cfg->aws, *y = &cfg->aws;
	bool differ;

	if (x->present != y->present || impl_for(t->cfg) != impl_for(cfg))
		differ = true;
	else if (!x->present)
		differ = false;
	else
		differ = !str_same(x->endpoint.host, y->endpoint.host) ||
		    x->endpoint.port != y->endpoint.port ||
		    !str_same(x->ca_file, y->ca_file) ||
		    !str_same(x->proxy.url.host, y->proxy.url.host) ||
		    x->proxy.url.port != y->proxy.url.port ||
		    !str_same(x->proxy.username, y->proxy.username) ||
		    !str_same(x->proxy.password, y->proxy.password) ||
		    t->impl->differs(t->cfg, cfg);
	if (!differ)
		t->cfg = cfg;
	return differ;
}

int
transport_reload(struct transport *t, const struct cfg *cfg)
{
	transport_close(t, true);
	t->cfg = cfg;
	return settings_apply(t);
}

struct transport *
transport_new(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, const char *name)
{
	struct transport *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->base = base;
	t->dns = dns;
	t->cfg = cfg;
	t->impl = impl_for(cfg);
	snprintf(t->name, sizeof(t->name), "%s", name);
	if ((t->ev_start = evtimer_new(base, on_start, t)) == NULL ||
	    settings_apply(t) != 0) {
		transport_free(t);
		return NULL;
	}
	return t;
}

void
transport_set_cb(struct transport *t, const struct transport_cb *cb,
    void *arg)
{
	t->cb = *cb;
	t->arg = arg;
}

void
transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->state != TRANSPORT_S_IDLE)
		transport_enter(t, TRANSPORT_S_IDLE, "freed");
	settings_release(t);
	if (t->ev_start != NULL)
		event_free(t->ev_start);
	free(t);
}
