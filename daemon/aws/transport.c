/*
 * The steps every connection to AWS takes, as one state machine: get ready
 * (the implementation may need temporary credentials first), resolve the
 * name (evdns, never blocking the loop), connect over TCP to each address
 * in turn, tunnel through an HTTP proxy when one is configured, TLS with
 * the configured CA, the endpoint's name and the device certificate, then
 * the implementation's handshake (transport_impl.h), then open. The state
 * is written by transport_enter() only, which logs every transition and
 * runs the new state's entry action; a failure anywhere enters IDLE, which
 * releases the connection, and then tells the session.
 *
 * A transport has one way to AWS, or with aws.transport: auto several
 * (lib/tchoice says which, in which order): each way is an implementation,
 * a port and a TLS context (with ALPN or not), made once from the config.
 * An attempt uses the current way; one that ends before the session said
 * it worked moves auto to the next, and the way that worked is written to
 * the state directory for the next start.
 */
#include "daemon/aws/transport.h"
#include "daemon/aws/transport_impl.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "config/cfg.h"
#include "daemon/util/clock.h"
#include "daemon/util/file.h"
#include "daemon/util/log.h"
#include "daemon/util/str.h"
#include "daemon/util/tls.h"
#include "tchoice/tchoice.h"
#include "ws/http.h"

#define TRANSPORT_CLOSE_LINGER_MS	1000
#define TRANSPORT_MEMORY_FILE		"aws-transport"	/* in state_dir */

enum transport_state {
	TRANSPORT_S_IDLE,
	TRANSPORT_S_PREPARING,	/* the implementation's, before DNS */
	TRANSPORT_S_RESOLVING,
	TRANSPORT_S_CONNECTING,	/* TCP, to each address in turn */
	TRANSPORT_S_PROXY,	/* HTTP CONNECT through the proxy */
	TRANSPORT_S_TLS,
	TRANSPORT_S_HANDSHAKE,	/* the implementation's own */
	TRANSPORT_S_OPEN,
};

static const char *const state_names[] = {
	[TRANSPORT_S_IDLE] = "idle",
	[TRANSPORT_S_PREPARING] = "preparing",
	[TRANSPORT_S_RESOLVING] = "resolving",
	[TRANSPORT_S_CONNECTING] = "connecting",
	[TRANSPORT_S_PROXY] = "proxy",
	[TRANSPORT_S_TLS] = "tls",
	[TRANSPORT_S_HANDSHAKE] = "handshake",
	[TRANSPORT_S_OPEN] = "open",
};

/* What connects to AWS, and where. */
enum transport_role {
	TRANSPORT_ROLE_DATA,		/* aws.endpoint: the MQTT session's */
	TRANSPORT_ROLE_CREDENTIALS,	/* aws.credentials.endpoint */
};

/* One way to AWS: an implementation, its state, its port and TLS. */
struct transport_way {
	const struct transport_impl *impl;
	void			*st;
	struct tls_client_ctx	*tls;
	uint16_t		 port;
};

struct transport {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct cfg	*cfg;
	enum transport_role	 role;
	struct transport_cb	 cb;
	void			*arg;
	char			 name[32];

	enum transport_state	 state;
	uint64_t		 gen;		/* one per connection */
	struct event		*ev_start;	/* open, from the loop */

	/* settings: the ways, in lib/tchoice's order */
	struct transport_way	 ways[TCHOICE_NWAYS];
	size_t			 nways;
	struct transport_way	*way;		/* of this attempt */
	struct tchoice		 choice;
	char			*memory;	/* auto: the memory file */
	char			*host;
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
	bool			 established;	/* the session said it worked */
	bool			 same_way;	/* failed, cause fixed: again */

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

struct event_base *
transport_base(const struct transport *t)
{
	return t->base;
}

struct evdns_base *
transport_dns(const struct transport *t)
{
	return t->dns;
}

const char *
transport_alpn_offered(const struct transport *t)
{
	return t->way->impl->alpn;
}

const char *
transport_alpn(const struct transport *t)
{
	return t->bev != NULL && t->state >= TRANSPORT_S_HANDSHAKE ?
	    tls_alpn(t->bev) : NULL;
}

void
transport_prepared(struct transport *t)
{
	if (t->state == TRANSPORT_S_PREPARING)
		transport_enter(t, TRANSPORT_S_RESOLVING, "ready");
}

void
transport_expiring(struct transport *t, const char *why)
{
	if (t->state == TRANSPORT_S_OPEN && t->cb.expiring != NULL)
		t->cb.expiring(t->arg, why);
}

void
transport_wipe(struct evbuffer *buf)
{
	struct evbuffer_iovec v[8];
	int n;

	/* chain by chain, where the bytes are: a pullup would copy them */
	while ((n = evbuffer_peek(buf, -1, NULL, v, 8)) > 0) {
		size_t len = 0;

		for (int i = 0; i < n && i < 8; i++) {
			mbedtls_platform_zeroize(v[i].iov_base, v[i].iov_len);
			len += v[i].iov_len;
		}
		evbuffer_drain(buf, len);
	}
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
	t->same_way = end == TRANSPORT_RETRY;
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
		t->way->impl->input(t, t->way->st, bufferevent_get_input(bev),
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
	/* before the session began, a TLS error is the connection's
	 * failure to get through TLS (with TLS 1.3, a refused client
	 * certificate is told after the handshake) */
	if (t->state == TRANSPORT_S_TLS ||
	    (!(what & BEV_EVENT_EOF) && !t->established)) {
		transport_fail(t, TRANSPORT_FAILED, "TLS: %s",
		    tls_last_error(bev));
		return;
	}
	if ((what & BEV_EVENT_EOF) && !t->established &&
	    t->way->impl->closed_early != NULL)
		transport_fail(t, TRANSPORT_LOST, "connection closed by AWS "
		    "before the session began: %s", t->way->impl->closed_early);
	else
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
	    t->proxy_host ? t->proxy_port : t->way->port);
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
	    t->proxy_host ? t->proxy_port : t->way->port,
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
	    t->host, t->way->port, t->host, t->way->port);
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
	tb = tls_client_wrap(t->way->tls, t->bev, t->host,
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
	const char *alpn = tls_alpn(t->bev);

	log_debug("%s: TLS %s %s%s%s%s", t->name, tls_version(t->bev),
	    tls_ciphersuite(t->bev), tls_resumed(t->bev) ? " (resumed)" : "",
	    alpn != NULL ? " ALPN " : "", alpn != NULL ? alpn : "");
	t->way->impl->handshake(t, t->way->st,
	    bufferevent_get_output(t->bev));
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
	if (t->way->st != NULL)
		t->way->impl->reset(t->way->st);
	/* an attempt that did not carry a session: auto tries the next way */
	if (from != TRANSPORT_S_IDLE && !t->established && !t->same_way &&
	    tchoice_failed(&t->choice))
		t->way = &t->ways[t->choice.cur];
	t->polite = false;
	t->same_way = false;
	t->gen++;
}

/* The way and its announcement, at the start of an attempt. */
static bool
prepare(struct transport *t)
{
	const struct transport_impl *impl = t->way->impl;

	if (tchoice_announce(&t->choice))
		log_info("%s: transport auto: trying %s to %s:%u", t->name,
		    impl->kind, t->host, t->way->port);
	return impl->prepare == NULL || impl->prepare(t, t->way->st);
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
	case TRANSPORT_S_PREPARING:
		if (prepare(t))
			transport_enter(t, TRANSPORT_S_RESOLVING, "ready");
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
		transport_enter(t, TRANSPORT_S_PREPARING, "open");
}

int
transport_open(struct transport *t, uint64_t timeout_ms)
{
	struct timeval now = { 0, 0 };

	if (t->host == NULL || t->nways == 0 ||
	    t->state != TRANSPORT_S_IDLE)
		return -1;
	t->deadline_ms = clock_mono_ms() + timeout_ms;
	t->tcp_error = 0;
	t->established = false;
	/* from the loop: no callback runs inside transport_open() */
	return event_add(t->ev_start, &now);
}

int
transport_send(struct transport *t, const void *head, size_t hlen,
    const void *body, size_t blen)
{
	if (t->state != TRANSPORT_S_OPEN)
		return -1;
	return t->way->impl->send(t, t->way->st,
	    bufferevent_get_output(t->bev), head, hlen, body, blen);
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
		.name = t->name, .kind = t->way->impl->kind,
		.host = t->host, .port = t->way->port,
		.proxy_host = t->proxy_host, .proxy_port = t->proxy_port,
		.tls_version = up ? tls_version(t->bev) : "?",
		.tls_resumed = up && tls_resumed(t->bev),
		.bytes_out = t->bytes_out, .bytes_in = t->bytes_in,
		.clock_offset_s = t->way->impl->clock_offset(t->way->st),
	};
}

/* ---- auto's memory -------------------------------------------------------- */

/*
 * The way that worked, for the next start. write(2) and rename(2) and no
 * fsync: nothing waits for the disk on the loop, and a memory a power cut
 * takes back only costs the next start a round of the usual order.
 */
static void
memory_write(struct transport *t)
{
	char text[TCHOICE_MEMORY_MAX], *tmp = NULL;
	size_t len;
	int fd = -1;

	if (tchoice_memory_encode(tchoice_current(&t->choice), t->host, text,
	    sizeof(text), &len) != TCHOICE_OK ||
	    (tmp = str_concat3(t->memory, ".tmp", "")) == NULL)
		goto out;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || file_write_all(fd, text, len) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, t->memory) == 0)
		goto out;
fail:
	log_warn("%s: transport auto: cannot write %s", t->name, tmp);
	(void)unlink(tmp);
out:
	if (fd != -1)
		(void)close(fd);
	free(tmp);
}

/* The way remembered for this endpoint; false when none. */
static bool
memory_read(struct transport *t, enum tchoice_way *way)
{
	enum tchoice_status st;
	uint8_t *buf;
	size_t len;

	if ((buf = file_read(t->memory, TCHOICE_MEMORY_MAX, &len)) == NULL) {
		if (errno != ENOENT)
			log_warn("%s: transport auto: ignoring %s", t->name,
			    t->memory);
		return false;
	}
	st = tchoice_memory_parse(buf, len, t->host, way);
	free(buf);
	if (st == TCHOICE_MALFORMED)
		log_warnx("%s: transport auto: ignoring %s: %s", t->name,
		    t->memory, tchoice_strerror(st));
	return st == TCHOICE_OK;
}

void
transport_established(struct transport *t)
{
	t->established = true;
	if (!tchoice_worked(&t->choice))
		return;
	log_info("%s: transport auto: %s works; tried first from now on",
	    t->name, t->way->impl->kind);
	if (t->memory != NULL)
		memory_write(t);
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
	free(t->memory);
	if (t->proxy_auth != NULL) {
		mbedtls_platform_zeroize(t->proxy_auth, strlen(t->proxy_auth));
		free(t->proxy_auth);
	}
	t->host = t->proxy_host = t->proxy_auth = t->memory = NULL;
	for (size_t i = 0; i < t->nways; i++) {
		tls_client_ctx_unref(t->ways[i].tls);
		if (t->ways[i].st != NULL)
			t->ways[i].impl->destroy(t->ways[i].st);
	}
	t->nways = 0;
	/* what status shows of a transport that cannot open */
	t->ways[0] = (struct transport_way){ .impl = &transport_wss };
	t->way = &t->ways[0];
}

/* SigV4 credentials of some source, for auto's wss: a source that names
 * them, or the environment's. */
static bool
sigv4_available(const struct cfg *cfg)
{
	const char *env;

	if (cfg->aws.credentials.source != CFG_CRED_ENV)
		return true;
	env = getenv("AWS_ACCESS_KEY_ID");
	return env != NULL && *env != '\0';
}

/*
 * The implementations cfg asks for, in the order to try them: the one
 * place that knows them all. The credentials provider's connection is the
 * TLS stream to its endpoint; the data connection is aws.transport's way,
 * or auto's list (lib/tchoice), the way remembered first.
 */
static int
ways_build(struct transport *t)
{
	static const struct transport_impl *const by_way[TCHOICE_NWAYS] = {
		[TCHOICE_MQTTS] = &transport_mqtts,
		[TCHOICE_MQTTS_ALPN] = &transport_mqtts_alpn,
		[TCHOICE_WSS] = &transport_wss,
	};
	static const enum tchoice_mode modes[] = {
		[CFG_TRANSPORT_MQTTS] = TCHOICE_MODE_MQTTS,
		[CFG_TRANSPORT_MQTTS_ALPN] = TCHOICE_MODE_MQTTS_ALPN,
		[CFG_TRANSPORT_WSS] = TCHOICE_MODE_WSS,
		[CFG_TRANSPORT_AUTO] = TCHOICE_MODE_AUTO,
	};
	const struct cfg_aws *aws = &t->cfg->aws;
	enum tchoice_way remembered;
	bool recall = false;
	unsigned flags = 0;

	if (t->role == TRANSPORT_ROLE_CREDENTIALS) {
		tchoice_init(&t->choice, TCHOICE_MODE_WSS, 0, NULL);
		t->ways[0] = (struct transport_way){ .impl = &transport_https,
		    .port = aws->credentials.endpoint.port };
	} else {
		if (aws->present && aws->transport == CFG_TRANSPORT_AUTO) {
			flags = (t->proxy_host != NULL ? TCHOICE_PROXY : 0) |
			    (sigv4_available(t->cfg) ? TCHOICE_SIGV4 : 0);
			if ((t->memory = file_path(t->cfg->broker.state_dir,
			    TRANSPORT_MEMORY_FILE)) == NULL)
				return -1;
			recall = memory_read(t, &remembered);
		}
		tchoice_init(&t->choice, aws->present ?
		    modes[aws->transport] : TCHOICE_MODE_WSS, flags,
		    recall ? &remembered : NULL);
		if (recall && tchoice_current(&t->choice) == remembered)
			log_info("%s: transport auto: %s first (it worked last "
			    "time, %s)", t->name, tchoice_name(remembered),
			    t->memory);
		for (size_t i = 0; i < t->choice.n; i++)
			t->ways[i] = (struct transport_way){
				.impl = by_way[t->choice.ways[i]],
				.port = t->choice.ways[i] == TCHOICE_MQTTS ?
				    (uint16_t)aws->mqtts_port : aws->endpoint.port,
			};
	}
	t->nways = t->choice.n;
	t->way = &t->ways[t->choice.cur];
	for (size_t i = 0; i < t->nways; i++)
		if ((t->ways[i].st = t->ways[i].impl->create(t, t->cfg)) ==
		    NULL)
			return -1;
	return 0;
}

/* The TLS of each way: one context with the CAs and the certificate, and
 * one offering ALPN that shares them where a way wants it. */
static int
ways_tls(struct transport *t)
{
	const struct cfg_aws *aws = &t->cfg->aws;
	struct tls_client_ctx *base;
	char err[256];
	int rc = 0;

	if ((base = tls_client_ctx_new(aws->ca_file, aws->cert_file,
	    aws->key_file, err, sizeof(err))) == NULL) {
		log_warnx("%s: %s", t->name, err);
		return -1;
	}
	for (size_t i = 0; i < t->nways && rc == 0; i++) {
		const char *alpn = t->ways[i].impl->alpn;

		t->ways[i].tls = alpn != NULL ? tls_client_ctx_alpn(base, alpn,
		    err, sizeof(err)) : tls_client_ctx_ref(base);
		if (t->ways[i].tls == NULL) {
			log_warnx("%s: %s", t->name, err);
			rc = -1;
		}
	}
	tls_client_ctx_unref(base);
	return rc;
}

/* What a connection is made from; without an aws section, nothing. */
static int
settings_apply(struct transport *t)
{
	const struct cfg_aws *aws = &t->cfg->aws;
	const char *host = t->role == TRANSPORT_ROLE_CREDENTIALS ?
	    aws->credentials.endpoint.host : aws->endpoint.host;

	settings_release(t);
	if (aws->present && ((t->host = strdup(host)) == NULL ||
	    proxy_setup(t) != 0))
		return -1;
	if (ways_build(t) != 0)
		return -1;
	if (!aws->present)
		return 0;
	if (ways_tls(t) != 0) {
		/* it cannot open until a reload fixes the files */
		free(t->host);
		t->host = NULL;
		return -1;
	}
	return 0;
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
	bool differ = false;

	if (x->present != y->present)
		differ = true;
	else if (x->present)
		differ = !str_same(x->endpoint.host, y->endpoint.host) ||
		    x->endpoint.port != y->endpoint.port ||
		    x->transport != y->transport ||
		    x->mqtts_port != y->mqtts_port ||
		    !str_same(x->ca_file, y->ca_file) ||
		    !str_same(x->cert_file, y->cert_file) ||
		    !str_same(x->key_file, y->key_file) ||
		    !str_same(x->credentials.endpoint.host,
		    y->credentials.endpoint.host) ||
		    x->credentials.endpoint.port !=
		    y->credentials.endpoint.port ||
		    sigv4_available(t->cfg) != sigv4_available(cfg) ||
		    !str_same(x->proxy.url.host, y->proxy.url.host) ||
		    x->proxy.url.port != y->proxy.url.port ||
		    !str_same(x->proxy.username, y->proxy.username) ||
		    !str_same(x->proxy.password, y->proxy.password);
	for (size_t i = 0; i < t->nways && !differ; i++)
		differ = t->ways[i].impl->differs(t->cfg, cfg);
	if (differ)
		return true;
	t->cfg = cfg;
	for (size_t i = 0; i < t->nways; i++)
		if (t->ways[i].impl->adopt != NULL)
			t->ways[i].impl->adopt(t->ways[i].st, cfg);
	return false;
}

int
transport_reload(struct transport *t, const struct cfg *cfg)
{
	transport_close(t, true);
	t->cfg = cfg;
	return settings_apply(t);
}

static struct transport *
transport_create(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, const char *name, enum transport_role role)
{
	struct transport *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->base = base;
	t->dns = dns;
	t->cfg = cfg;
	t->role = role;
	t->way = &t->ways[0];
	t->ways[0].impl = &transport_wss;
	snprintf(t->name, sizeof(t->name), "%s", name);
	if ((t->ev_start = evtimer_new(base, on_start, t)) == NULL ||
	    settings_apply(t) != 0) {
		transport_free(t);
		return NULL;
	}
	return t;
}

struct transport *
transport_new(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, const char *name)
{
	return transport_create(base, dns, cfg, name, TRANSPORT_ROLE_DATA);
}

struct transport *
transport_new_credentials(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, const char *name)
{
	if (!cfg->aws.present || cfg->aws.credentials.endpoint.host == NULL)
		return NULL;
	return transport_create(base, dns, cfg, name,
	    TRANSPORT_ROLE_CREDENTIALS);
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
