/*
 * Listening sockets from the configuration: TCP over IPv4 and IPv6 and unix
 * sockets, each an evconnlistener. A reload compares addresses: a listener
 * whose address stays keeps its socket and its clients; new addresses are
 * bound; removed ones close, with their clients.
 */
#include "daemon/broker_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "auth/passwd.h"
#include "daemon/log.h"
#include "daemon/tls.h"

#define AUTH_FILE_MAX	(16 * 1024 * 1024)

void
listener_format(const struct cfg_addr *a, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	switch (a->family) {
	case AF_INET:
		inet_ntop(AF_INET, a->ip, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, a->port);
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, a->ip, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, a->port);
		break;
	case AF_UNIX:
		snprintf(buf, cap, "unix:%s", a->path);
		break;
	default:
		snprintf(buf, cap, "?");
		break;
	}
}

static bool addr_equal(const struct cfg_addr *, const struct cfg_addr *);

/* Is a running listener the one a config entry asks for? Same address, and
 * TLS on both or on neither (its files may change: they are reloaded). */
static bool
listener_matches(const struct listener *l, const struct cfg_listener *conf)
{
	return addr_equal(&l->addr, &conf->bind) &&
	    (l->tls != NULL) == (conf->tls.cert != NULL);
}

static bool
addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port && memcmp(a->ip, b->ip,
	    a->family == AF_INET ? 4 : 16) == 0;
}

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	client_accept(arg, fd, sa, salen);
}

static void
on_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct listener *l = arg;

	evconnlistener_enable(l->evl);
}

/* Out of descriptors: pause accepting for a second instead of spinning on
 * a listening socket that stays readable. */
static void
on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		log_warnx("accept paused for 1s listener=%s: %s", l->name,
		    strerror(err));
		evconnlistener_disable(evl);
		evtimer_add(l->ev_resume, &tv);
		return;
	}
	log_warnx("accept failed listener=%s: %s", l->name, strerror(err));
}

static int
listener_socket(const struct cfg_addr *a)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	int fd, one = 1;

	switch (a->family) {
	case AF_INET: {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->ip, 4);
		sslen = sizeof(*in);
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		memcpy(&in6->sin6_addr, a->ip, 16);
		sslen = sizeof(*in6);
		break;
	}
	case AF_UNIX: {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		struct stat st;

		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, a->path, strlen(a->path) + 1);
		sslen = sizeof(*un);
		/* a socket left by a previous run is ours to replace; any
		 * other kind of file is not */
		if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
			(void)unlink(a->path);
		break;
	}
	default:
		errno = EAFNOSUPPORT;
		return -1;
	}
	if ((fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -1;
	if (a->family != AF_UNIX)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
	/* [::]:1883 and 0.0.0.0:1883 are separate listeners */
	if (a->family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1 ||
	    listen(fd, 128) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * (Re)load the listener's certificate and key: a renewed certificate takes
 * effect at SIGHUP for new connections; established ones keep theirs.
 */
static int
listener_load_tls(struct listener *l, const struct cfg_listener *conf)
{
	struct tls_server_ctx *ctx;
	char err[256];

	if (conf->tls.cert == NULL)
		return 0;
	if ((ctx = tls_server_ctx_new(conf->tls.cert, conf->tls.key,
	    conf->tls.client_ca, err, sizeof(err))) == NULL) {
		log_warnx("listener=%s: %s", l->name, err);
		return -1;
	}
	tls_server_ctx_unref(l->tls);
	l->tls = ctx;
	return 0;
}

/*
 * (Re)read the listener's password and ACL files. Both are read first and
 * swapped in together, so a bad edit to either keeps the previous pair.
 */
static int
listener_load_auth(struct listener *l, const struct cfg_listener *conf)
{
	const struct cfg_auth *auth = &conf->auth;
	struct passwd_db *pw = NULL;
	struct acl *acl = NULL;
	uint8_t *buf = NULL;
	size_t len;

	if (auth->password_file != NULL) {
		struct passwd_err err = { 0 };

		if ((buf = file_read(auth->password_file, AUTH_FILE_MAX,
		    &len)) == NULL) {
			log_warn("listener=%s: cannot read %s", l->name,
			    auth->password_file);
			goto fail;
		}
		if (passwd_db_parse((char *)buf, len, &pw, &err) !=
		    PASSWD_OK) {
			log_warnx("%s: %s", auth->password_file, err.msg);
			goto fail;
		}
		free(buf);
		buf = NULL;
	}
	if (auth->acl_file != NULL) {
		struct acl_err err = { 0 };

		if ((buf = file_read(auth->acl_file, AUTH_FILE_MAX, &len)) ==
		    NULL) {
			log_warn("listener=%s: cannot read %s", l->name,
			    auth->acl_file);
			goto fail;
		}
		if (acl_parse((char *)buf, len, &acl, &err) != ACL_OK) {
			log_warnx("%s:%s", auth->acl_file, err.msg);
			goto fail;
		}
		free(buf);
		buf = NULL;
	}
	passwd_db_free(l->passwd);
	acl_free(l->acl);
	l->passwd = pw;
	l->acl = acl;
	if (pw != NULL || acl != NULL)
		log_info("listener=%s users=%zu acl_rules=%zu", l->name,
		    pw != NULL ? passwd_db_count(pw) : 0,
		    acl != NULL ? acl_rule_count(acl) : 0);
	return 0;
fail:
	free(buf);
	passwd_db_free(pw);
	acl_free(acl);
	return -1;
}

static struct listener *
listener_new(struct broker *b, const struct cfg_listener *conf)
{
	struct listener *l;
	int fd;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->b = b;
	l->addr = conf->bind;
	l->conf = conf;
	listener_format(&l->addr, l->name, sizeof(l->name));
	if (listener_load_tls(l, conf) == -1 ||
	    listener_load_auth(l, conf) == -1)
		goto fail;
	if ((fd = listener_socket(&l->addr)) == -1) {
		log_warn("cannot listen on %s", l->name);
		goto fail;
	}
	if ((l->evl = evconnlistener_new(b->base, on_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd)) == NULL) {
		close(fd);
		log_warnx("cannot listen on %s", l->name);
		goto fail;
	}
	if ((l->ev_resume = evtimer_new(b->base, on_resume, l)) == NULL)
		goto fail;
	evconnlistener_set_error_cb(l->evl, on_accept_error);
	log_info("listening on %s%s", l->name, l->tls != NULL ? " (TLS)" : "");
	return l;
fail:
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	tls_server_ctx_unref(l->tls);
	passwd_db_free(l->passwd);
	acl_free(l->acl);
	free(l);
	return NULL;
}

static void
listener_free(struct broker *b, struct listener *l)
{
	struct client *c, *next;
	struct session *s;
	size_t pos;

	/* its clients go with it */
	for (c = TAILQ_FIRST(&b->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->l == l)
			client_close(c, "listener removed", 0x8B);
	}
	/* the ones still flushing a last packet are on the closing list */
	for (c = TAILQ_FIRST(&b->closing); c != NULL; c = TAILQ_NEXT(c, entry))
		if (c->l == l)
			c->l = NULL;
	/* offline sessions that came through it no longer have its ACL */
	pos = 0;
	while ((s = hmap_next(&b->sessions, &pos)) != NULL)
		if (s->l == l)
			s->l = NULL;
	tls_server_ctx_unref(l->tls);
	passwd_db_free(l->passwd);
	acl_free(l->acl);
	evconnlistener_free(l->evl);
	if (l->ev_resume != NULL)
		event_free(l->ev_resume);
	if (l->addr.family == AF_UNIX)
		(void)unlink(l->addr.path);
	log_info("stopped listening on %s", l->name);
	free(l);
}

int
listener_sync(struct broker *b, const struct cfg *cfg, bool starting)
{
	struct listener *l, *next;
	bool *kept = NULL;
	int rc = 0;

	if (cfg->nlisteners > 0 &&
	    (kept = calloc(cfg->nlisteners, sizeof(*kept))) == NULL)
		return -1;
	/* 1: the listeners that stay, with their files read again */
	TAILQ_FOREACH(l, &b->listeners, entry)
		l->keep = false;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *conf = &cfg->listeners[i];

		TAILQ_FOREACH(l, &b->listeners, entry)
			if (!l->keep && listener_matches(l, conf))
				break;
		if (l == NULL)
			continue;
		if (listener_load_tls(l, conf) == -1 ||
		    listener_load_auth(l, conf) == -1) {
			/* the old certificate, users and rules stay in force */
			log_warnx("listener=%s: keeping the previous "
			    "certificate, password file and ACL", l->name);
			rc = -1;
		}
		l->keep = true;
		l->conf = conf;
		kept[i] = true;
	}
	/* 2: the ones that go, first, so that an address changing from plain
	 * to TLS (or a unix socket path) is free for its new listener */
	for (l = TAILQ_FIRST(&b->listeners); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (!l->keep) {
			TAILQ_REMOVE(&b->listeners, l, entry);
			listener_free(b, l);
		}
	}
	/* 3: the new ones */
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		if (kept[i])
			continue;
		if ((l = listener_new(b, &cfg->listeners[i])) == NULL) {
			rc = -1;
			if (starting)
				break;
			continue;
		}
		l->keep = true;
		TAILQ_INSERT_TAIL(&b->listeners, l, entry);
	}
	b->any_acl = false;
	TAILQ_FOREACH(l, &b->listeners, entry)
		b->any_acl |= l->acl != NULL;
	free(kept);
	return rc;
}

void
listener_free_all(struct broker *b)
{
	struct listener *l;

	while ((l = TAILQ_FIRST(&b->listeners)) != NULL) {
		TAILQ_REMOVE(&b->listeners, l, entry);
		listener_free(b, l);
	}
}
