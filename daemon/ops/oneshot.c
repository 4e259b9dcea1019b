/*
 * One-request servers (see oneshot.h): the listening socket, the count of
 * connections, and each connection's short life, READING -> WRITING ->
 * DRAINING -> CLOSED. A connection is bounded in three ways: its request in
 * bytes (the bufferevent's read high watermark, so no more is ever
 * buffered), its lifetime (a deadline for the request, re-armed for the
 * answer and for the end, never a per-read timeout that a slow trickle could
 * keep resetting) and their number (turned away at accept). Closed
 * connections are freed from a zero-timeout event, never under their own
 * callback.
 *
 * The close is a lingering one, as HTTP servers do it: once the answer is
 * out, the write side is shut and whatever the peer still sends is read and
 * dropped until it closes too (or ONESHOT_LINGER_S passes). Closing with
 * unread bytes in the socket would send a reset, which can destroy the
 * answer in the peer's buffers before it has read it.
 */
#define _GNU_SOURCE		/* struct ucred, SO_PEERCRED */
#include "daemon/ops/oneshot.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "daemon/util/log.h"
#include "daemon/util/sock.h"

#define ONESHOT_BACKLOG		16
#define ONESHOT_LINGER_S	2

enum oneshot_state {
	ONESHOT_S_READING,	/* waiting for the whole request */
	ONESHOT_S_WRITING,	/* the answer is going out */
	ONESHOT_S_DRAINING,	/* answered and shut: waiting for the peer's end */
	ONESHOT_S_CLOSED,	/* unlinked, waiting to be freed */
};

static const char *const oneshot_state_names[] = {
	[ONESHOT_S_READING] = "reading",
	[ONESHOT_S_WRITING] = "writing",
	[ONESHOT_S_DRAINING] = "draining",
	[ONESHOT_S_CLOSED] = "closed",
};

struct oneshot_conn {
	TAILQ_ENTRY(oneshot_conn) entry;
	struct oneshot		*o;
	struct bufferevent	*bev;
	struct event		*ev_deadline;
	enum oneshot_state	 state;
	bool			 peer_done;	/* EOF from the peer */
	char			 peer[64];
};
TAILQ_HEAD(oneshot_conns, oneshot_conn);

struct oneshot {
	struct event_base	*base;
	struct oneshot_conf	 conf;
	struct sock_acceptor	*acc;		/* NULL: listening nowhere */
	struct cfg_addr		 addr;		/* what acc listens on */
	struct sock_file	 file;		/* AF_UNIX: the socket we made */
	char			 where[CFG_UNIX_PATH_MAX + 8];	/* for logs */
	struct oneshot_conns	 conns;
	size_t			 nconns;
	time_t			 noted_at;	/* last complaint logged */
	unsigned		 unnoted;	/* complaints since, not logged */
};

/* ---- connections --------------------------------------------------------- */

/*
 * One notice per misbehaving peer, but no more than one line a second for
 * the whole server: whoever can reach the socket must not flood the journal.
 */
static void
oneshot_complain(struct oneshot *o, const char *peer, const char *what)
{
	time_t now = time(NULL);

	if (now == o->noted_at) {
		o->unnoted++;
		return;
	}
	if (o->unnoted > 0)
		log_notice("%s: %u more closed connections not logged",
		    o->conf.name, o->unnoted);
	log_notice("%s: closed peer=%s: %s", o->conf.name, peer, what);
	o->noted_at = now;
	o->unnoted = 0;
}

static void
conn_set_state(struct oneshot_conn *c, enum oneshot_state to,
    const char *event)
{
	log_debug("%s peer=%s %s -> %s (%s)", c->o->conf.name, c->peer,
	    oneshot_state_names[c->state], oneshot_state_names[to], event);
	c->state = to;
}

static void
conn_free(evutil_socket_t fd, short ev, void *arg)
{
	struct oneshot_conn *c = arg;

	if (c->ev_deadline != NULL)
		event_free(c->ev_deadline);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
}

/*
 * Unlink the connection now and free it from the loop: its callback may be
 * on the stack. complaint: why a misbehaving peer was closed (logged), NULL
 * for an ordinary end.
 */
static void
conn_close(struct oneshot_conn *c, const char *why, const char *complaint)
{
	struct oneshot *o = c->o;
	struct timeval now = { 0, 0 };

	if (c->state == ONESHOT_S_CLOSED)
		return;
	if (complaint != NULL)
		oneshot_complain(o, c->peer, complaint);
	conn_set_state(c, ONESHOT_S_CLOSED, why);
	TAILQ_REMOVE(&o->conns, c, entry);
	o->nconns--;
	c->o = NULL;
	event_del(c->ev_deadline);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	if (event_base_once(o->base, -1, EV_TIMEOUT, conn_free, c, &now) == -1)
		fatalx("%s: cannot schedule a connection's release",
		    o->conf.name);
}

static void
conn_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct oneshot_conn *c = arg;

	switch (c->state) {
	case ONESHOT_S_READING:
		conn_close(c, "timeout", "no complete request in time");
		break;
	case ONESHOT_S_WRITING:
		conn_close(c, "timeout", "answer not read in time");
		break;
	default:
		conn_close(c, "linger over", NULL);
		break;
	}
}

/* The answer is out: shut our side, wait for the peer's. */
static void
conn_linger(struct oneshot_conn *c)
{
	struct timeval tv = { ONESHOT_LINGER_S, 0 };

	if (c->peer_done ||
	    shutdown(bufferevent_getfd(c->bev), SHUT_WR) == -1) {
		conn_close(c, "answered", NULL);
		return;
	}
	conn_set_state(c, ONESHOT_S_DRAINING, "answered");
	evtimer_add(c->ev_deadline, &tv);
}

static void
conn_verdict(struct oneshot_conn *c, enum oneshot_verdict v, bool full,
    bool eof)
{
	struct timeval tv = { (time_t)c->o->conf.timeout_s, 0 };

	switch (v) {
	case ONESHOT_MORE:
		if (full)
			conn_close(c, "too long", "request too long");
		else if (eof)
			conn_close(c, "eof", NULL);
		return;
	case ONESHOT_CLOSE:
		conn_close(c, "refused", NULL);
		return;
	case ONESHOT_ANSWER:
		break;
	}
	conn_set_state(c, ONESHOT_S_WRITING, "answer");
	evtimer_add(c->ev_deadline, &tv);
	/* the request is done with: reading goes on, to drop what follows */
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	/* an empty answer has nothing to flush: no write callback comes */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_linger(c);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct oneshot_conn *c = arg;
	struct oneshot *o = c->o;
	struct evbuffer *in = bufferevent_get_input(bev);
	bool full = evbuffer_get_length(in) >= o->conf.max_request;

	/* what follows the request is dropped (see the lingering close) */
	if (c->state != ONESHOT_S_READING) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	conn_verdict(c, o->conf.request(o->conf.arg, in, full, false,
	    bufferevent_get_output(bev), c->peer), full, false);
}

static void
conn_written(struct bufferevent *bev, void *arg)
{
	struct oneshot_conn *c = arg;

	if (c->state == ONESHOT_S_WRITING)
		conn_linger(c);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct oneshot_conn *c = arg;
	struct oneshot *o = c->o;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->peer_done = true;
		/* the peer is done sending; the answer, if any, goes on */
		if (c->state == ONESHOT_S_WRITING)
			return;
		if (c->state == ONESHOT_S_DRAINING) {
			conn_close(c, "peer closed", NULL);
			return;
		}
		conn_verdict(c, o->conf.request(o->conf.arg,
		    bufferevent_get_input(bev), false, true,
		    bufferevent_get_output(bev), c->peer), false, true);
		return;
	}
	conn_close(c, (what & BEV_EVENT_ERROR) ? "i/o error" : "eof", NULL);
}

/* Who is at the other end: a local process's credentials, or an address. */
static void
conn_peer(int fd, const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	switch (sa->sa_family) {
	case AF_UNIX: {
		struct ucred uc;
		socklen_t len = sizeof(uc);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0)
			snprintf(buf, cap, "uid=%u pid=%ld", (unsigned)uc.uid,
			    (long)uc.pid);
		else
			snprintf(buf, cap, "unix");
		return;
	}
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
		return;
	}
	}
	snprintf(buf, cap, "?");
}

/*
 * Over the limit: say so, best effort and without waiting, and close. What
 * the peer sent already is read first, so that the close is no reset that
 * could destroy the message before the peer reads it.
 */
static void
oneshot_turn_away(struct oneshot *o, int fd, const char *peer)
{
	char drop[512];

	if (o->conf.busy != NULL)
		(void)send(fd, o->conf.busy, strlen(o->conf.busy),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_WR);
	for (int i = 0; i < 8 && recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0;
	    i++)
		;
	oneshot_complain(o, peer, "too many connections");
	close(fd);
}

static void
on_accept(void *arg, int fd, const struct sockaddr *sa, int salen)
{
	struct oneshot *o = arg;
	struct timeval tv = { (time_t)o->conf.timeout_s, 0 };
	struct oneshot_conn *c = NULL;
	char peer[64];

	conn_peer(fd, sa, peer, sizeof(peer));
	if (o->nconns >= o->conf.max_conns) {
		oneshot_turn_away(o, fd, peer);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->ev_deadline = evtimer_new(o->base, conn_deadline, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(o->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("%s: out of memory for a connection", o->conf.name);
		goto fail;
	}
	c->o = o;
	c->state = ONESHOT_S_READING;
	memcpy(c->peer, peer, sizeof(peer));
	bufferevent_setwatermark(c->bev, EV_READ, 0, o->conf.max_request);
	bufferevent_setcb(c->bev, conn_read, conn_written, conn_event, c);
	if (bufferevent_enable(c->bev, EV_READ) == -1 ||
	    evtimer_add(c->ev_deadline, &tv) == -1) {
		log_warnx("%s: cannot watch a connection", o->conf.name);
		conn_free(-1, 0, c);
		return;
	}
	TAILQ_INSERT_TAIL(&o->conns, c, entry);
	o->nconns++;
	log_debug("%s peer=%s connected", o->conf.name, c->peer);
	return;
fail:
	if (c != NULL && c->ev_deadline != NULL)
		event_free(c->ev_deadline);
	free(c);
	close(fd);
}

/* ---- the listening socket ------------------------------------------------ */

static void
oneshot_unlisten(struct oneshot *o)
{
	if (o->acc == NULL)
		return;
	sock_acceptor_free(o->acc);
	o->acc = NULL;
	sock_unlink(&o->addr, &o->file);
	log_info("%s: stopped listening on %s", o->conf.name, o->where);
	memset(&o->addr, 0, sizeof(o->addr));
	o->addr.family = AF_UNSPEC;
}

int
oneshot_listen(struct oneshot *o, const struct cfg_addr *addr)
{
	int fd;

	if (o->acc != NULL && sock_addr_equal(&o->addr, addr))
		return 0;
	oneshot_unlisten(o);
	if (addr->family == AF_UNSPEC)
		return 0;
	if (addr->family == AF_UNIX)
		snprintf(o->where, sizeof(o->where), "%s", addr->path);
	else
		sock_format(addr, o->where, sizeof(o->where));
	if ((fd = sock_listen(addr, addr->family == AF_UNIX ?
	    o->conf.unix_mode : 0, ONESHOT_BACKLOG, &o->file)) == -1) {
		if (addr->family == AF_UNIX &&
		    (errno == EADDRINUSE || errno == EEXIST))
			log_warnx("%s: cannot create %s: %s; running without "
			    "it", o->conf.name, o->where,
			    sock_strerror(addr, errno));
		else
			log_warn("%s: cannot listen on %s; running without it",
			    o->conf.name, o->where);
		return -1;
	}
	if ((o->acc = sock_acceptor_new(o->base, fd, on_accept, o,
	    o->conf.name)) == NULL) {
		sock_unlink(addr, &o->file);
		log_warnx("%s: cannot listen on %s: out of memory",
		    o->conf.name, o->where);
		return -1;
	}
	o->addr = *addr;
	log_info("%s: listening on %s", o->conf.name, o->where);
	return 0;
}

bool
oneshot_listening(const struct oneshot *o)
{
	return o->acc != NULL;
}

struct oneshot *
oneshot_new(struct event_base *base, const struct oneshot_conf *conf)
{
	struct oneshot *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->base = base;
	o->conf = *conf;
	o->addr.family = AF_UNSPEC;
	TAILQ_INIT(&o->conns);
	return o;
}

void
oneshot_free(struct oneshot *o)
{
	struct oneshot_conn *c;

	if (o == NULL)
		return;
	oneshot_unlisten(o);
	while ((c = TAILQ_FIRST(&o->conns)) != NULL)
		conn_close(c, "shutdown", NULL);
	free(o);
}
