/*
 * Listening sockets (see sock.h). A unix socket path is probed with a
 * connect() before anything is unlinked: only ECONNREFUSED proves that no
 * one listens there any more (EAGAIN is a live server with a full backlog).
 */
#include "daemon/util/sock.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config/cfg.h"
#include "daemon/util/log.h"

#define SOCK_PAUSE_S	1

struct sock_acceptor {
	struct evconnlistener	*evl;
	struct event		*ev_resume;
	sock_accept_fn		*fn;
	void			*arg;
	char			 name[96];
};

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

int
sock_listen(const struct cfg_addr *a, unsigned unix_mode, int backlog,
    struct sock_file *made)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	mode_t mask = 0;
	struct stat st;
	int fd = -1, one = 1, rc, e;

	memset(made, 0, sizeof(*made));
	if (a->family != AF_INET && a->family != AF_INET6 &&
	    a->family != AF_UNIX) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	sslen = addr_sockaddr(a, &ss);
	if (a->family == AF_UNIX &&
	    unix_clear((struct sockaddr *)&ss, sslen, a->path) == -1)
		return -1;
	if ((fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	if (a->family != AF_UNIX)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
	if (a->family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	/* born with its mode: no window with a looser one */
	if (a->family == AF_UNIX && unix_mode != 0)
		mask = umask((mode_t)~unix_mode & 0777);
	rc = bind(fd, (struct sockaddr *)&ss, sslen);
	e = errno;
	if (a->family == AF_UNIX && unix_mode != 0)
		(void)umask(mask);
	if (rc == -1 || listen(fd, backlog) == -1) {
		if (rc == 0)
			e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (a->family == AF_UNIX && lstat(a->path, &st) == 0)
		*made = (struct sock_file){ st.st_dev, st.st_ino, true };
	return fd;
}

const char *
sock_strerror(const struct cfg_addr *a, int err)
{
	if (a->family != AF_UNIX)
		return strerror(err);
	switch (err) {
	case EADDRINUSE:
		return "another process is listening there (is another "
		    "iotbridged running?)";
	case EEXIST:
		return "a file that is not a socket is in the way";
	default:
		return strerror(err);
	}
}

void
sock_unlink(const struct cfg_addr *a, const struct sock_file *made)
{
	struct stat st;

	if (a->family == AF_UNIX && made->made && lstat(a->path, &st) == 0 &&
	    st.st_dev == made->dev && st.st_ino == made->ino)
		(void)unlink(a->path);
}

void
sock_format(const struct cfg_addr *a, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	switch (a->family) {
	case AF_INET:
	case AF_INET6:
		inet_ntop(a->family, a->ip, host, sizeof(host));
		snprintf(buf, cap, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		    host, a->port);
		break;
	case AF_UNIX:
		snprintf(buf, cap, "unix:%s", a->path);
		break;
	default:
		snprintf(buf, cap, "?");
		break;
	}
}

bool
sock_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->family != b->family)
		return false;
	switch (a->family) {
	case AF_UNIX:
		return strcmp(a->path, b->path) == 0;
	case AF_INET:
	case AF_INET6:
		return a->port == b->port && memcmp(a->ip, b->ip,
		    a->family == AF_INET ? 4 : 16) == 0;
	default:
		return true;
	}
}

/* ---- accepting ---------------------------------------------------------- */

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct sock_acceptor *acc = arg;

	acc->fn(acc->arg, fd, sa, salen);
}

static void
on_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct sock_acceptor *acc = arg;

	evconnlistener_enable(acc->evl);
}

static void
on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct sock_acceptor *acc = arg;
	struct timeval tv = { SOCK_PAUSE_S, 0 };
	int err = EVUTIL_SOCKET_ERROR();
	bool pause = err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM;

	log_warnx("%s: accept failed: %s%s", acc->name, strerror(err),
	    pause ? " (paused for 1s)" : "");
	if (pause) {
		evconnlistener_disable(evl);
		evtimer_add(acc->ev_resume, &tv);
	}
}

struct sock_acceptor *
sock_acceptor_new(struct event_base *base, int fd, sock_accept_fn *fn,
    void *arg, const char *name)
{
	struct sock_acceptor *acc;

	if ((acc = calloc(1, sizeof(*acc))) == NULL)
		goto fail;
	acc->fn = fn;
	acc->arg = arg;
	snprintf(acc->name, sizeof(acc->name), "%s", name);
	if ((acc->ev_resume = evtimer_new(base, on_resume, acc)) == NULL ||
	    (acc->evl = evconnlistener_new(base, on_accept, acc,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd)) == NULL)
		goto fail;
	evconnlistener_set_error_cb(acc->evl, on_accept_error);
	return acc;
fail:
	close(fd);
	if (acc != NULL && acc->ev_resume != NULL)
		event_free(acc->ev_resume);
	free(acc);
	return NULL;
}

void
sock_acceptor_free(struct sock_acceptor *acc)
{
	if (acc == NULL)
		return;
	evconnlistener_free(acc->evl);
	event_free(acc->ev_resume);
	free(acc);
}
