/*
 * Retained messages and persistent sessions across restarts: a snapshot in
 * STATE_DIR/broker.state, encoded by lib/state. A change marks the state
 * dirty and the snapshot is rewritten at most every broker.persist_interval,
 * and at shutdown. Written to a temporary file, fsynced, renamed over the old
 * one, directory fsynced: a crash at any moment leaves one complete file, the
 * old or the new. A damaged file is set aside (broker.state.bad) after what
 * could be read from it was loaded; the daemon never refuses to start over it.
 */
#include "daemon/broker/broker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/util/log.h"
#include "state/state.h"

#define PERSIST_FILE	"broker.state"
#define PERSIST_MAX	(1024ULL * 1024 * 1024)	/* refuse to read more */

/* A growable output image. */
struct image {
	uint8_t	*p;
	size_t	 len;
	size_t	 cap;
	bool	 failed;
	uint64_t records;
};

/* Append one record: size it, grow, encode. */
#define IMAGE_PUT(img, fn, ...) do {					\
	size_t need_;							\
	if ((img)->failed)						\
		break;							\
	if (fn(NULL, 0, __VA_ARGS__, &need_) != STATE_NO_SPACE ||	\
	    !image_reserve((img), need_) ||				\
	    fn((img)->p + (img)->len, (img)->cap - (img)->len,		\
	    __VA_ARGS__, &need_) != STATE_OK) {				\
		(img)->failed = true;					\
		break;							\
	}								\
	(img)->len += need_;						\
	(img)->records++;						\
} while (0)

static bool
image_reserve(struct image *img, size_t n)
{
	size_t ncap;
	uint8_t *np;

	if (img->cap - img->len >= n)
		return true;
	ncap = img->cap ? img->cap : 4096;
	while (ncap - img->len < n)
		ncap *= 2;
	if ((np = realloc(img->p, ncap)) == NULL)
		return false;
	img->p = np;
	img->cap = ncap;
	return true;
}

static struct buf_view
view(const void *p, size_t len)
{
	return (struct buf_view){ p, len };
}

static void
image_session(struct broker *b, struct image *img, const struct session *s)
{
	uint64_t now = broker_now_ms(b);
	struct state_session ss = {
		.id = view(s->id, s->id_len),
		.expiry_ms = s->expiry_ms,
		.offline_ms = s->offline ? now - s->offline_since_ms : 0,
		.last_pid = s->last_pid,
	};
	const struct sub *sub;
	const struct outmsg *o;

	IMAGE_PUT(img, state_session_encode, &ss);
	TAILQ_FOREACH(sub, &s->subs, entry) {
		struct state_sub st = {
			.filter = view(sub->filter, sub->len),
			.qos = sub->qos,
			.no_local = sub->no_local,
			.retain_as_published = sub->retain_as_published,
		};

		IMAGE_PUT(img, state_sub_encode, &st);
	}
	TAILQ_FOREACH(o, &s->out, entry) {
		struct state_msg sm = {
			.topic = view(o->m->topic, o->m->topic_len),
			.payload = view(o->m->payload, o->m->payload_len),
			.qos = o->qos,
			.retain = o->retain,
			.out_state = (uint8_t)o->state,
			.pid = o->pid,
		};

		IMAGE_PUT(img, state_msg_encode, &sm);
	}
	for (size_t i = 0; i < s->nqos2_in; i++)
		IMAGE_PUT(img, state_qos2_encode, s->qos2_in[i]);
}

int
persist_save(struct broker *b)
{
	const char *dir = b->cfg->broker.state_dir;
	struct image img = { 0 };
	char path[4096], tmp[4096];
	struct session *s;
	struct msg *m;
	size_t pos = 0, hlen;
	int fd = -1, rc = -1;

	if (!b->cfg->broker.persistence)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, PERSIST_FILE) >=
	    (int)sizeof(path) || snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir,
	    PERSIST_FILE) >= (int)sizeof(tmp))
		goto fail;

	if (!image_reserve(&img, STATE_HEADER_SIZE) ||
	    state_header_encode(img.p, img.cap, &hlen) != STATE_OK)
		goto fail;
	img.len = hlen;
	while ((m = hmap_next(&b->retained, &pos)) != NULL) {
		if (msg_is_sys(m))
			continue;
		struct state_retained r = {
			.topic = view(m->topic, m->topic_len),
			.payload = view(m->payload, m->payload_len),
			.qos = m->qos,
		};

		IMAGE_PUT(&img, state_retained_encode, &r);
	}
	pos = 0;
	while ((s = hmap_next(&b->sessions, &pos)) != NULL)
		if (s->persistent && s->expiry_ms > 0)
			image_session(b, &img, s);
	IMAGE_PUT(&img, state_end_encode, img.records);
	if (img.failed) {
		errno = ENOMEM;
		goto fail;
	}

	/* a temporary file left by a crash is ours to replace */
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1 || file_write_all(fd, img.p, img.len) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1 || file_fsync_dir(dir) == -1)
		goto fail;
	b->dirty = false;
	log_debug("state saved file=%s bytes=%zu records=%llu", path, img.len,
	    (unsigned long long)img.records);
	rc = 0;
fail:
	if (rc == -1) {
		log_warn("cannot save the broker state in %s", dir);
		if (fd != -1) {
			close(fd);
			(void)unlink(tmp);
		}
	}
	free(img.p);
	return rc;
}

static void
on_persist(evutil_socket_t fd, short ev, void *arg)
{
	struct broker *b = arg;

	if (b->dirty && persist_save(b) == -1) {
		/* try again later; what is in memory is still served */
		persist_touch(b);
	}
}

void
persist_touch(struct broker *b)
{
	uint64_t ms = b->cfg->broker.persist_interval_ms;
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000) * 1000 };

	if (!b->cfg->broker.persistence || b->loading)
		return;
	b->dirty = true;
	if (b->ev_persist != NULL && !evtimer_pending(b->ev_persist, NULL))
		evtimer_add(b->ev_persist, &tv);
}

/* --- loading ----------------------------------------------------------- */

struct loader {
	struct broker	*b;
	struct session	*s;		/* the session being read */
	uint64_t	 now;
	size_t		 retained, sessions, msgs, dropped;
};

static int
load_retained(const struct state_retained *r, void *arg)
{
	struct loader *ld = arg;
	struct msg *m, *old = NULL;

	if ((m = msg_new(r->topic.ptr, r->topic.len, r->payload.ptr,
	    r->payload.len, r->qos, true)) == NULL)
		return -1;
	if (!hmap_put(&ld->b->retained, m->topic, m->topic_len, m,
	    (void **)&old)) {
		msg_unref(m);
		return -1;
	}
	msg_unref(old);
	ld->retained++;
	return 0;
}

static int
load_session(const struct state_session *ss, void *arg)
{
	struct loader *ld = arg;
	struct broker *b = ld->b;
	struct session *s;

	ld->s = NULL;
	if (session_find(b, (const char *)ss->id.ptr, ss->id.len) != NULL)
		return 0;	/* a duplicate: keep the first */
	if ((s = session_new(b, (const char *)ss->id.ptr, ss->id.len)) ==
	    NULL)
		return -1;
	s->persistent = true;
	s->expiry_ms = ss->expiry_ms;
	s->last_pid = ss->last_pid;
	/* offline since before the restart, plus nothing for the downtime:
	 * the monotonic clock does not tell how long we were stopped */
	s->offline_since_ms = ld->now > ss->offline_ms ?
	    ld->now - ss->offline_ms : 0;
	s->offline = true;
	TAILQ_INSERT_TAIL(&b->offline, s, expiry_entry);
	b->noffline++;
	ld->s = s;
	ld->sessions++;
	return 0;
}

static int
load_sub(const struct state_sub *st, void *arg)
{
	struct loader *ld = arg;
	struct mqtt_subscription req = {
		.filter = st->filter,
		.qos = st->qos,
		.no_local = st->no_local,
		.retain_as_published = st->retain_as_published,
	};
	struct sub *sub;
	bool existed;

	if (ld->s == NULL)
		return 0;
	if (session_subscribe(ld->b, ld->s, &req, &sub, &existed) < 0)
		ld->dropped++;
	return 0;
}

static int
load_msg(const struct state_msg *sm, void *arg)
{
	struct loader *ld = arg;
	struct session *s = ld->s;
	struct outmsg *o;

	if (s == NULL)
		return 0;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	if ((o->m = msg_new(sm->topic.ptr, sm->topic.len, sm->payload.ptr,
	    sm->payload.len, sm->qos, sm->retain)) == NULL) {
		free(o);
		return -1;
	}
	o->qos = sm->qos;
	o->retain = sm->retain;
	o->state = (enum out_state)sm->out_state;
	o->pid = sm->pid;
	/* in-flight entries stay ahead of queued ones, as the list wants */
	if (o->state == OUT_QUEUED) {
		s->nqueued++;
	} else {
		s->ninflight++;
	}
	TAILQ_INSERT_TAIL(&s->out, o, entry);
	ld->msgs++;
	return 0;
}

static int
load_qos2(uint16_t pid, void *arg)
{
	struct loader *ld = arg;

	if (ld->s != NULL && !session_qos2_seen(ld->s, pid))
		(void)session_qos2_add(ld->s, pid, SIZE_MAX);
	return 0;
}

static int
persist_load(struct broker *b)
{
	static const struct state_callbacks cb = {
		.retained = load_retained,
		.session = load_session,
		.sub = load_sub,
		.msg = load_msg,
		.qos2 = load_qos2,
	};
	const char *dir = b->cfg->broker.state_dir;
	struct loader ld = { .b = b, .now = broker_now_ms(b) };
	struct state_report rep = { 0 };
	enum state_status st;
	char path[4096], bad[4200];
	uint8_t *img;
	size_t len = 0;

	if (!b->cfg->broker.persistence)
		return 0;
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("cannot create the state directory %s", dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, PERSIST_FILE);
	if ((img = file_read(path, PERSIST_MAX, &len)) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("cannot read %s; starting with an empty state", path);
		return 0;
	}
	b->loading = true;
	st = state_decode(img, len, &cb, &ld, &rep);
	b->loading = false;
	free(img);
	log_info("state loaded file=%s retained=%zu sessions=%zu messages=%zu",
	    path, ld.retained, ld.sessions, ld.msgs);
	if (st != STATE_OK) {
		snprintf(bad, sizeof(bad), "%s.bad", path);
		log_warnx("state file damaged file=%s offset=%zu error=\"%s\": "
		    "kept what came before, the file is set aside as %s",
		    path, rep.bad_offset, state_strerror(st), bad);
		if (rename(path, bad) == -1)
			log_warn("cannot rename %s", path);
		persist_touch(b);
	}
	return 0;
}

int
persist_init(struct broker *b)
{
	if ((b->ev_persist = evtimer_new(b->base, on_persist, b)) == NULL)
		return -1;
	return persist_load(b);
}
