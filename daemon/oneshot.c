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
#include "daemon/oneshot.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
#include <event2/listener.h>

#include "config/cfg.h"
#include "daemon/log.h"

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
	struct evconnlistener	*evl;		/* NULL: listening nowhere */
	struct event		*ev_resume;	/* accept paused on EMFILE */
	struct cfg_addr		 addr;		/* what evl listens on */
	dev_t			 sock_dev;	/* AF_UNIX: the file we made */
	ino_t			 sock_ino;
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
on_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
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
on_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct oneshot *o = arg;

	if (o->evl != NULL)
		evconnlistener_enable(o->evl);
}

/* Out of descriptors: pause instead of spinning on a readable socket. */
static void
on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct oneshot *o = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	log_warnx("%s: accept failed on %s: %s%s", o->conf.name, o->where,
	    strerror(err), err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM ? " (paused for 1s)" : "");
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(evl);
		evtimer_add(o->ev_resume, &tv);
	}
}

static socklen_t
addr_sockaddr(const struct cfg_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)a->family;
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->ip, 4);
		return sizeof(*in);
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_port = htons(a->port);
		memcpy(&in6->sin6_addr, a->ip, 16);
		return sizeof(*in6);
	}
	memcpy(((struct sockaddr_un *)ss)->sun_path, a->path,
	    strlen(a->path) + 1);
	return sizeof(struct sockaddr_un);
}

static void
addr_text(const struct cfg_addr *a, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (a->family == AF_UNIX) {
		snprintf(buf, cap, "%s", a->path);
		return;
	}
	inet_ntop(a->family, a->ip, host, sizeof(host));
	snprintf(buf, cap, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	    a->port);
}

static bool
addr_same(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->family == AF_UNSPEC || (a->port == b->port &&
	    memcmp(a->ip, b->ip, sizeof(a->ip)) == 0);
}

/*
 * Make room for a unix socket at path: 0 when nothing is there or a stale
 * socket was removed. -1 with errno: EADDRINUSE when a live server answers
 * there, EEXIST when it is not a socket, else why it could not be checked.
 */
static int
unix_clear(const struct sockaddr *sa, socklen_t salen, const char *path)
{
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	rc = connect(fd, sa, salen);
	e = errno;
	close(fd);
	/* EAGAIN: someone listens there, with a full backlog */
	if (rc == 0 || e == EAGAIN) {
		errno = EADDRINUSE;
		return -1;
	}
	if (e != ECONNREFUSED) {
		errno = e;
		return -1;
	}
	return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* Remove our unix socket, unless someone replaced it since. */
static void
unix_remove(struct oneshot *o)
{
	struct stat st;

	if (o->addr.family == AF_UNIX && lstat(o->addr.path, &st) == 0 &&
	    st.st_dev == o->sock_dev && st.st_ino == o->sock_ino)
		(void)unlink(o->addr.path);
}

static void
oneshot_unlisten(struct oneshot *o)
{
	if (o->evl == NULL)
		return;
	evconnlistener_free(o->evl);
	o->evl = NULL;
	event_del(o->ev_resume);
	unix_remove(o);
	log_info("%s: stopped listening on %s", o->conf.name, o->where);
	memset(&o->addr, 0, sizeof(o->addr));
	o->addr.family = AF_UNSPEC;
}

int
oneshot_listen(struct oneshot *o, const struct cfg_addr *addr)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct stat st;
	mode_t mask = 0;

	if (o->evl != NULL && addr_same(&o->addr, addr))
		return 0;
	oneshot_unlisten(o);
	if (addr->family == AF_UNSPEC)
		return 0;
	addr_text(addr, o->where, sizeof(o->where));
	sslen = addr_sockaddr(addr, &ss);
	if (addr->family == AF_UNIX) {
		if (unix_clear((struct sockaddr *)&ss, sslen, addr->path) == -1) {
			log_warnx("%s: cannot create %s: %s; running without it",
			    o->conf.name, o->where, errno == EADDRINUSE ?
			    "another process is listening there (is another "
			    "iotbridged running?)" : errno == EEXIST ?
			    "a file that is not a socket is in the way" :
			    strerror(errno));
			return -1;
		}
		/* born with its mode: no window with a looser one */
		mask = umask((mode_t)~o->conf.unix_mode & 0777);
	} else
		flags |= LEV_OPT_REUSEABLE;
	o->evl = evconnlistener_new_bind(o->base, on_accept, o, flags,
	    ONESHOT_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
	if (addr->family == AF_UNIX)
		(void)umask(mask);
	if (o->evl == NULL) {
		log_warn("%s: cannot listen on %s; running without it",
		    o->conf.name, o->where);
		return -1;
	}
	evconnlistener_set_error_cb(o->evl, on_accept_error);
	o->addr = *addr;
	if (addr->family == AF_UNIX && lstat(addr->path, &st) == 0) {
		o->sock_dev = st.st_dev;
		o->sock_ino = st.st_ino;
	}
	log_info("%s: listening on %s", o->conf.name, o->where);
	return 0;
}

bool
oneshot_listening(const struct oneshot *o)
{
	return o->evl != NULL;
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
	if ((o->ev_resume = evtimer_new(base, on_resume, o)) == NULL) {
		free(o);
		return NULL;
	}
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
	event_free(o->ev_resume);
	free(o);
}
