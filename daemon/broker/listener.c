/*
 * The broker's listeners from the configuration: TCP over IPv4 and IPv6 and
 * unix sockets (made by sock.c), with their TLS contexts and auth files. A
 * reload compares addresses: a listener whose address stays keeps its
 * socket and its clients; new addresses are bound; removed ones close, with
 * their clients.
 */
#include "daemon/broker/broker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "daemon/broker/authw.h"
#include "daemon/util/log.h"
#include "daemon/util/sock.h"
#include "daemon/util/tls.h"

#define AUTH_FILE_MAX		(16 * 1024 * 1024)
#define LISTENER_BACKLOG	128

/* Is a running listener the one a config entry asks for? Same address, and
 * TLS on both or on neither (its files may change: they are reloaded). */
static bool
listener_matches(const struct listener *l, const struct cfg_listener *conf)
{
	return sock_addr_equal(&l->addr, &conf->bind) &&
	    (l->tls != NULL) == (conf->tls.cert != NULL);
}

static void
on_accept(void *arg, int fd, const struct sockaddr *sa, int salen)
{
	client_accept(arg, fd, sa, salen);
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
	struct passwd_db *db = NULL;
	struct authw_db *pw = NULL;
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
		if (passwd_db_parse((char *)buf, len, &db, &err) !=
		    PASSWD_OK) {
			log_warnx("%s: %s", auth->password_file, err.msg);
			goto fail;
		}
		/* shared with the checks running against it (authw.h) */
		if ((pw = authw_db_new(db)) == NULL)
			goto fail;
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
	authw_db_unref(l->passwd);
	acl_free(l->acl);
	l->passwd = pw;
	l->acl = acl;
	if (pw != NULL || acl != NULL)
		log_info("listener=%s users=%zu acl_rules=%zu", l->name,
		    pw != NULL ? passwd_db_count(authw_db_get(pw)) : 0,
		    acl != NULL ? acl_rule_count(acl) : 0);
	return 0;
fail:
	free(buf);
	authw_db_unref(pw);
	acl_free(acl);
	return -1;
}

static struct listener *
listener_new(struct broker *b, const struct cfg_listener *conf)
{
	struct listener *l;
	char what[sizeof(l->name) + 16];
	int fd;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->b = b;
	l->addr = conf->bind;
	l->conf = conf;
	sock_format(&l->addr, l->name, sizeof(l->name));
	if (listener_load_tls(l, conf) == -1 ||
	    listener_load_auth(l, conf) == -1)
		goto fail;
	if ((fd = sock_listen(&l->addr, 0, LISTENER_BACKLOG, &l->file)) ==
	    -1) {
		log_warnx("cannot listen on %s: %s", l->name,
		    sock_strerror(&l->addr, errno));
		goto fail;
	}
	snprintf(what, sizeof(what), "listener=%s", l->name);
	if ((l->acc = sock_acceptor_new(b->base, fd, on_accept, l, what)) ==
	    NULL) {
		log_warnx("cannot listen on %s: out of memory", l->name);
		goto fail;
	}
	log_info("listening on %s%s", l->name, l->tls != NULL ? " (TLS)" : "");
	return l;
fail:
	sock_unlink(&l->addr, &l->file);
	tls_server_ctx_unref(l->tls);
	authw_db_unref(l->passwd);
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
	authw_db_unref(l->passwd);
	acl_free(l->acl);
	sock_acceptor_free(l->acc);
	sock_unlink(&l->addr, &l->file);
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
