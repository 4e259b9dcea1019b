/*
 * The segmented log behind queue.h. Three positions move forward through
 * it: the frontier (the next record never handed out), the window of records
 * handed out and not yet released (a ring of slots, oldest first), and the
 * released position, below which every sequence number is acknowledged or
 * dropped. Every read goes through scan_next(), which recovery uses too, so
 * the running queue steps over damage exactly as recovery did, and losses are
 * counted by gaps in the sequence numbers, which stay correct whichever of
 * the two meets the damage first.
 */
#include "queue/queue.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"

#define SEG_HDR_LEN	32
#define SEG_MAGIC	"IOTBQSEG"
#define CKPT_LEN	32
#define CKPT_MAGIC	"IOTBQCKP"
#define CKPT_NAME	"checkpoint"
#define CKPT_TMP	"checkpoint.tmp"
#define LOCK_NAME	"lock"
#define FORMAT_VERSION	1
#define REC_HDR_LEN	QUEUE_RECORD_OVERHEAD
#define SEQ_LIMIT	((uint64_t)1 << 62)	/* keeps seq arithmetic far from wrapping */
#define READ_CHUNK	65536
#define SEG_NAME_LEN	20			/* 16 hex digits + ".seg" */

struct seg {
	struct seg	*next;
	uint64_t	 first_seq;	/* from the file name */
	uint64_t	 size;		/* bytes in use; never read beyond */
	bool		 dead;		/* header unreadable: no records */
};

/* A record handed out and not yet released. */
struct slot {
	struct seg	*seg;
	uint64_t	 off;
	uint64_t	 seq;
	uint64_t	 time_ms;
	uint32_t	 len;
	bool		 done;		/* acknowledged or dropped */
};

/* A record found by scan_next(). */
struct cand {
	struct seg	*seg;
	uint64_t	 off;
	uint64_t	 seq;
	uint32_t	 len;
	const uint8_t	*p;		/* the record in the read buffer */
	size_t		 slot;		/* window index when resending */
	bool		 resend;
};

struct queue {
	struct queue_opts opts;
	int		 dirfd;
	int		 lockfd;
	int		 tailfd;	/* O_APPEND, for the tail segment */
	int		 rfd;		/* read fd of rseg */
	struct seg	*first;
	struct seg	*tail;
	struct seg	*rseg;
	uint32_t	 nsegs;

	uint8_t		*buf;		/* read buffer: buf[0..blen) is bseg at boff */
	size_t		 bufcap;
	struct seg	*bseg;
	uint64_t	 boff;
	size_t		 blen;
	/* The record at voff in vseg passed its CRC check from buf as it is
	 * now: a peek and the next that follows it check it once. */
	struct seg	*vseg;
	uint64_t	 voff;

	struct slot	*win;
	size_t		 wcap;
	size_t		 whead;
	size_t		 wlen;
	bool		 resending;
	uint64_t	 resend_seq;	/* slots below were resent already */

	struct seg	*fseg;		/* frontier */
	uint64_t	 foff;
	uint64_t	 fprev;		/* last seq the frontier walked */

	uint64_t	 next_seq;
	uint64_t	 released;	/* every seq below is acked or dropped */
	uint64_t	 ckpt_released;	/* what the checkpoint file says */
	uint64_t	 durable;

	uint64_t	 ahead_msgs;	/* intact records beyond the frontier */
	uint64_t	 ahead_bytes;
	uint64_t	 win_msgs;	/* slots not done */
	uint64_t	 win_bytes;
	uint64_t	 lost_known;	/* gaps counted by recovery, not yet walked */
	uint64_t	 drops[QUEUE_DROPPED_NREASONS];

	bool		 tail_dirty;	/* appended since the last fsync */
	bool		 dir_dirty;	/* segment created since the last fsync */
	bool		 force_roll;	/* next append opens a new segment */
	bool		 trunc_pending;	/* a failed append's bytes are still there */
};

static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}

static void
le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t
get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t
max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t
sub_sat(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void
seg_name(char *out, uint64_t first_seq)
{
	snprintf(out, SEG_NAME_LEN + 1, "%016llx.seg",
	    (unsigned long long)first_seq);
}

/* A segment file name gives its first sequence number; anything else, 0. */
static uint64_t
seg_parse_name(const char *name)
{
	uint64_t	 v = 0;
	int		 i;

	if (strlen(name) != SEG_NAME_LEN || strcmp(name + 16, ".seg") != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	return v < SEQ_LIMIT ? v : 0;
}

static enum queue_status
errno_status(void)
{
	if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
		return QUEUE_NOSPACE;
	if (errno == ENOMEM)
		return QUEUE_NOMEM;
	return QUEUE_IO;
}

/*
 * Reading. The buffer holds one contiguous run of one segment; a record is
 * read by one pread of up to READ_CHUNK bytes, so walking a segment costs
 * one system call per chunk, not per record.
 */
static int
rd_fd(struct queue *q, struct seg *s)
{
	char	 name[SEG_NAME_LEN + 1];

	if (s == q->tail)
		return q->tailfd;
	if (s == q->rseg)
		return q->rfd;
	if (q->rfd != -1)
		close(q->rfd);
	q->rseg = NULL;
	seg_name(name, s->first_seq);
	if ((q->rfd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	q->rseg = s;
	return q->rfd;
}

/* n bytes at off in s, which the caller knows lie below s->size. */
static const uint8_t *
rd_get(struct queue *q, struct seg *s, uint64_t off, size_t n,
    enum queue_status *st)
{
	size_t		 want, got = 0;
	ssize_t		 r = 0;
	int		 fd;

	if (q->bseg == s && off >= q->boff && off - q->boff <= q->blen &&
	    n <= q->blen - (off - q->boff))
		return q->buf + (off - q->boff);
	want = n > READ_CHUNK ? n : READ_CHUNK;
	if (want > s->size - off)
		want = (size_t)(s->size - off);
	if (want > q->bufcap) {
		size_t	 cap = want > READ_CHUNK ? want : READ_CHUNK;
		uint8_t	*nb = realloc(q->buf, cap);

		if (nb == NULL) {
			*st = QUEUE_NOMEM;
			return NULL;
		}
		q->buf = nb;
		q->bufcap = cap;
	}
	q->bseg = NULL;
	q->vseg = NULL;
	if ((fd = rd_fd(q, s)) == -1) {
		*st = errno_status();
		return NULL;
	}
	while (got < want) {
		r = pread(fd, q->buf + got, want - got, (off_t)(off + got));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < n) {
		if (r == 0)
			errno = EIO;	/* shorter than we were told: not ours */
		*st = QUEUE_IO;
		return NULL;
	}
	q->bseg = s;
	q->boff = off;
	q->blen = got;
	return q->buf;
}

/*
 * Does the header at p describe a record of len <= room bytes whose sequence
 * number lies in [lo, hi]? Only the cheap checks: the CRC comes after.
 */
static bool
rec_plausible(const uint8_t *p, uint64_t room, uint64_t lo, uint64_t hi,
    uint32_t *lenp)
{
	uint32_t	 len = get32(p);
	uint64_t	 seq = get64(p + 8);
	uint64_t	 parts;

	parts = (uint64_t)REC_HDR_LEN + get16(p + 26) + get32(p + 28) +
	    get32(p + 32);
	if (len < REC_HDR_LEN || len > QUEUE_RECORD_MAX || len > room ||
	    parts != len || p[24] > 2)
		return false;
	if (seq < lo || seq > hi)
		return false;
	*lenp = len;
	return true;
}

/*
 * The first intact record in s at or after off that follows prev. Records
 * are numbered without gaps, so the one at off must be exactly prev + 1 (or
 * the segment's first); after k skipped bytes at most k / REC_HDR_LEN records
 * can have been lost, which bounds the candidates so tightly that stepping
 * byte by byte through damage finds the next real record and nothing else.
 * QUEUE_OK with *c filled, QUEUE_EMPTY when s holds no more, QUEUE_IO or
 * QUEUE_NOMEM.
 */
static enum queue_status
scan_next(struct queue *q, struct seg *s, uint64_t off, uint64_t prev,
    struct cand *c)
{
	enum queue_status st = QUEUE_OK;
	const uint8_t	*p;
	uint64_t	 base, o;
	uint32_t	 len;

	if (s->dead)
		return QUEUE_EMPTY;
	base = max64(prev, s->first_seq - 1);
	for (o = off; o < s->size && s->size - o >= REC_HDR_LEN; o++) {
		if ((p = rd_get(q, s, o, REC_HDR_LEN, &st)) == NULL)
			return st;
		if (!rec_plausible(p, s->size - o, base + 1,
		    base + 1 + (o - off) / REC_HDR_LEN, &len))
			continue;
		if ((p = rd_get(q, s, o, len, &st)) == NULL)
			return st;
		if ((q->vseg != s || q->voff != o) &&
		    crc32c_update(0, p + 8, len - 8) != get32(p + 4))
			continue;
		q->vseg = s;
		q->voff = o;
		memset(c, 0, sizeof(*c));
		c->seg = s;
		c->off = o;
		c->seq = get64(p + 8);
		c->len = len;
		c->p = p;
		return QUEUE_OK;
	}
	return QUEUE_EMPTY;
}

static void
rec_view(const uint8_t *p, bool dup, struct queue_rec *r)
{
	size_t	 tl = get16(p + 26), pl = get32(p + 28), yl = get32(p + 32);

	memset(r, 0, sizeof(*r));
	r->seq = get64(p + 8);
	r->time_ms = get64(p + 16);
	r->dup = dup;
	r->msg.qos = p[24];
	r->msg.flags = p[25];
	r->msg.topic.ptr = p + REC_HDR_LEN;
	r->msg.topic.len = tl;
	r->msg.props.ptr = p + REC_HDR_LEN + tl;
	r->msg.props.len = pl;
	r->msg.payload.ptr = p + REC_HDR_LEN + tl + pl;
	r->msg.payload.len = yl;
}

static struct slot *
slot_at(struct queue *q, size_t i)
{
	return &q->win[(q->whead + i) % q->wcap];
}

static void
seg_free(struct queue *q, struct seg *s)
{
	if (q->rseg == s) {
		close(q->rfd);
		q->rfd = -1;
		q->rseg = NULL;
	}
	if (q->bseg == s)
		q->bseg = NULL;
	if (q->vseg == s)
		q->vseg = NULL;
	free(s);
	q->nsegs--;
}

/* Delete the segments wholly behind the oldest record still needed. */
static void
gc(struct queue *q)
{
	struct seg	*head;
	char		 name[SEG_NAME_LEN + 1];

	/* A frontier at the end of a segment is at the start of the next. */
	while (q->fseg != q->tail && (q->fseg->dead || q->foff >= q->fseg->size)) {
		q->fseg = q->fseg->next;
		q->foff = SEG_HDR_LEN;
	}
	head = q->wlen > 0 ? slot_at(q, 0)->seg : q->fseg;
	while (q->first != head && q->first != q->tail) {
		struct seg *s = q->first;

		seg_name(name, s->first_seq);
		if (unlinkat(q->dirfd, name, 0) == -1 && errno != ENOENT)
			break;	/* try again next time */
		q->first = s->next;
		seg_free(q, s);
		q->dir_dirty = true;
	}
}

/*
 * The frontier passes everything below upto: sequence numbers at or above
 * released that it never saw as intact records are lost. Those recovery
 * counted already use up lost_known; the rest are new damage.
 */
static void
account_gap(struct queue *q, uint64_t upto)
{
	uint64_t	 lo = max64(q->fprev + 1, q->released);
	uint64_t	 gap, known, fresh;

	if (upto <= lo)
		return;
	gap = upto - lo;
	known = gap < q->lost_known ? gap : q->lost_known;
	q->lost_known -= known;
	fresh = gap - known;
	q->drops[QUEUE_DROPPED_CORRUPT] += fresh;
	q->ahead_msgs = sub_sat(q->ahead_msgs, fresh);
}

static void
front_commit(struct queue *q, const struct cand *c)
{
	account_gap(q, c->seq);
	if (c->seq >= q->released) {
		q->ahead_msgs = sub_sat(q->ahead_msgs, 1);
		q->ahead_bytes = sub_sat(q->ahead_bytes, c->len);
	}
	q->fseg = c->seg;
	q->foff = c->off + c->len;
	q->fprev = c->seq;
}

/* The next record beyond the frontier, or QUEUE_EMPTY at the end of the log. */
static enum queue_status
front_peek(struct queue *q, struct cand *c)
{
	enum queue_status st;

	for (;;) {
		st = scan_next(q, q->fseg, q->foff, q->fprev, c);
		if (st == QUEUE_OK && c->seq < q->released) {
			front_commit(q, c);	/* acked before a restart */
			continue;
		}
		if (st != QUEUE_EMPTY)
			return st;
		if (q->fseg != q->tail) {
			q->fseg = q->fseg->next;
			q->foff = SEG_HDR_LEN;
			gc(q);
			continue;
		}
		/* The end: whatever the counters still expected is gone. */
		q->foff = q->tail->size;
		account_gap(q, q->next_seq);
		q->fprev = max64(q->fprev, q->next_seq - 1);
		q->ahead_msgs = q->ahead_bytes = q->lost_known = 0;
		return QUEUE_EMPTY;
	}
}

/* Move the released position over the done prefix of the window. */
static void
release(struct queue *q)
{
	while (q->wlen > 0 && slot_at(q, 0)->done) {
		q->released = slot_at(q, 0)->seq + 1;
		q->whead = (q->whead + 1) % q->wcap;
		q->wlen--;
	}
	gc(q);
}

static void
slot_done(struct queue *q, struct slot *sl)
{
	sl->done = true;
	q->win_msgs--;
	q->win_bytes -= sl->len;
}

static void
slot_drop(struct queue *q, struct slot *sl, enum queue_drop why)
{
	slot_done(q, sl);
	q->drops[why]++;
}

/* The next in-flight record to resend, checked again against its CRC. */
static enum queue_status
resend_peek(struct queue *q, struct cand *c)
{
	enum queue_status st = QUEUE_OK;
	const uint8_t	*p;
	size_t		 i;

again:
	for (i = 0; i < q->wlen; i++) {
		struct slot *sl = slot_at(q, i);

		if (sl->done || sl->seq < q->resend_seq)
			continue;
		if ((p = rd_get(q, sl->seg, sl->off, sl->len, &st)) == NULL)
			return st;
		if (get64(p + 8) != sl->seq ||
		    crc32c_update(0, p + 8, sl->len - 8) != get32(p + 4)) {
			/* Damaged since it was sent: it cannot be resent. */
			slot_drop(q, sl, QUEUE_DROPPED_CORRUPT);
			release(q);
			goto again;
		}
		memset(c, 0, sizeof(*c));
		c->seg = sl->seg;
		c->off = sl->off;
		c->seq = sl->seq;
		c->len = sl->len;
		c->p = p;
		c->slot = i;
		c->resend = true;
		return QUEUE_OK;
	}
	q->resending = false;
	release(q);
	return QUEUE_EMPTY;
}

static enum queue_status
peek(struct queue *q, struct queue_rec *r, struct cand *c)
{
	enum queue_status st;

	if (q->resending && (st = resend_peek(q, c)) != QUEUE_EMPTY) {
		if (st == QUEUE_OK)
			rec_view(c->p, true, r);
		return st;
	}
	if (q->wlen == q->wcap)
		return QUEUE_WINDOW_FULL;
	if ((st = front_peek(q, c)) == QUEUE_OK)
		rec_view(c->p, false, r);
	return st;
}

enum queue_status
queue_peek(struct queue *q, struct queue_rec *r)
{
	struct cand	 c;

	return peek(q, r, &c);
}

enum queue_status
queue_next(struct queue *q, struct queue_rec *r)
{
	enum queue_status st;
	struct cand	 c;
	struct slot	*sl;

	if ((st = peek(q, r, &c)) != QUEUE_OK)
		return st;
	if (c.resend) {
		q->resend_seq = c.seq + 1;
		return QUEUE_OK;
	}
	front_commit(q, &c);
	sl = slot_at(q, q->wlen++);
	sl->seg = c.seg;
	sl->off = c.off;
	sl->seq = c.seq;
	sl->time_ms = r->time_ms;
	sl->len = c.len;
	sl->done = false;
	q->win_msgs++;
	q->win_bytes += c.len;
	return QUEUE_OK;
}

enum queue_status
queue_ack(struct queue *q, uint64_t seq)
{
	struct slot	*sl;
	size_t		 lo = 0, hi = q->wlen;

	/* Slots are in seq order; damage may leave gaps, so search. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (slot_at(q, mid)->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == q->wlen)
		return QUEUE_NOT_FOUND;
	sl = slot_at(q, lo);
	if (sl->seq != seq || sl->done)
		return QUEUE_NOT_FOUND;
	slot_done(q, sl);
	release(q);
	return QUEUE_OK;
}

void
queue_rewind(struct queue *q)
{
	q->resending = true;
	q->resend_seq = 0;
}

/* Drop the oldest unacknowledged message, in flight or not. */
static enum queue_status
drop_head(struct queue *q)
{
	enum queue_status st;
	struct cand	 c;

	if (q->wlen > 0) {
		/* release() keeps the first slot undone. */
		slot_drop(q, slot_at(q, 0), QUEUE_DROPPED_OLDEST);
		release(q);
		return QUEUE_OK;
	}
	if ((st = front_peek(q, &c)) != QUEUE_OK)
		return st;
	front_commit(q, &c);
	q->released = c.seq + 1;
	q->drops[QUEUE_DROPPED_OLDEST]++;
	gc(q);
	return QUEUE_OK;
}

static enum queue_status
fsync_dir(struct queue *q)
{
	if (fsync(q->dirfd) == -1)
		return QUEUE_IO;
	q->dir_dirty = false;
	return QUEUE_OK;
}

static enum queue_status
write_all(struct queue *q, int fd, struct iovec *iov, int n)
{
	ssize_t		 r;

	while (n > 0) {
		if (q->opts.write_fn != NULL)
			r = q->opts.write_fn(q->opts.write_arg, fd, iov, n);
		else
			r = writev(fd, iov, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return errno_status();
		if (r == 0) {
			errno = EIO;
			return QUEUE_IO;
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return QUEUE_OK;
}

/* Create segment first_seq with its header, synced under fsync always. */
static enum queue_status
seg_create(struct queue *q, uint64_t first_seq, int *fdp)
{
	enum queue_status st;
	uint8_t		 h[SEG_HDR_LEN] = SEG_MAGIC;
	char		 name[SEG_NAME_LEN + 1];
	struct iovec	 iov = { h, sizeof(h) };
	int		 fd, e;

	le32(h + 8, FORMAT_VERSION);
	le32(h + 12, SEG_HDR_LEN);
	le64(h + 16, first_seq);
	le32(h + 24, crc32c_update(0, h, 24));
	seg_name(name, first_seq);
	fd = openat(q->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_APPEND |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return errno_status();
	if ((st = write_all(q, fd, &iov, 1)) != QUEUE_OK)
		goto fail;
	if (q->opts.fsync != QUEUE_FSYNC_NEVER && fdatasync(fd) == -1) {
		st = QUEUE_IO;
		goto fail;
	}
	q->dir_dirty = true;
	if (q->opts.fsync == QUEUE_FSYNC_ALWAYS &&
	    (st = fsync_dir(q)) != QUEUE_OK)
		goto fail;
	*fdp = fd;
	return QUEUE_OK;
fail:
	e = errno;
	close(fd);
	unlinkat(q->dirfd, name, 0);
	errno = e;
	return st;
}

static enum queue_status
seg_link(struct queue *q, uint64_t first_seq, struct seg **sp)
{
	struct seg	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return QUEUE_NOMEM;
	s->first_seq = first_seq;
	s->size = SEG_HDR_LEN;
	if (q->tail != NULL)
		q->tail->next = s;
	else
		q->first = s;
	q->tail = s;
	q->nsegs++;
	*sp = s;
	return QUEUE_OK;
}

/* Close the tail (durable first, unless fsync never) and open a new one. */
static enum queue_status
seg_roll(struct queue *q)
{
	enum queue_status st;
	struct seg	*s;
	int		 fd;

	if (q->tail_dirty && q->opts.fsync != QUEUE_FSYNC_NEVER) {
		if (fdatasync(q->tailfd) == -1)
			return QUEUE_IO;
		q->durable = q->next_seq - 1;
	}
	q->tail_dirty = false;
	if ((st = seg_create(q, q->next_seq, &fd)) != QUEUE_OK)
		return st;
	if ((st = seg_link(q, q->next_seq, &s)) != QUEUE_OK) {
		char name[SEG_NAME_LEN + 1];

		close(fd);
		seg_name(name, q->next_seq);
		unlinkat(q->dirfd, name, 0);
		return st;
	}
	close(q->tailfd);
	q->tailfd = fd;
	q->force_roll = false;
	return QUEUE_OK;
}

static bool
over_limit(const struct queue *q, uint64_t len)
{
	uint64_t	 msgs = q->ahead_msgs + q->win_msgs;
	uint64_t	 bytes = q->ahead_bytes + q->win_bytes;

	if (q->opts.max_messages >= 0 && msgs + 1 > (uint64_t)q->opts.max_messages)
		return true;
	return q->opts.max_bytes != 0 && bytes + len > q->opts.max_bytes;
}

enum queue_status
queue_append(struct queue *q, const struct queue_msg *m, uint64_t now_ms,
    uint64_t *seqp)
{
	enum queue_status st;
	uint8_t		 h[REC_HDR_LEN];
	struct iovec	 iov[4];
	uint64_t	 len;
	uint32_t	 crc;
	int		 e;

	if (m->qos > 2 || m->topic.len > 0xffff)
		return QUEUE_INVALID;
	if (m->props.len > QUEUE_RECORD_MAX || m->payload.len > QUEUE_RECORD_MAX)
		return QUEUE_TOO_BIG;
	len = (uint64_t)REC_HDR_LEN + m->topic.len + m->props.len +
	    m->payload.len;
	if (len > QUEUE_RECORD_MAX ||
	    (q->opts.max_bytes != 0 && len > q->opts.max_bytes))
		return QUEUE_TOO_BIG;
	if (q->next_seq >= SEQ_LIMIT) {
		errno = EOVERFLOW;
		return QUEUE_IO;
	}
	if (q->trunc_pending) {
		if (ftruncate(q->tailfd, (off_t)q->tail->size) == -1)
			goto fail_disk;
		q->trunc_pending = false;
	}
	while (over_limit(q, len)) {
		if (q->opts.policy == QUEUE_DROP_NEWEST ||
		    q->ahead_msgs + q->win_msgs == 0) {
			q->drops[QUEUE_DROPPED_NEWEST]++;
			return QUEUE_FULL;
		}
		if ((st = drop_head(q)) != QUEUE_OK && st != QUEUE_EMPTY)
			return st;
	}
	if (q->force_roll || (q->tail->size > SEG_HDR_LEN &&
	    q->tail->size + len > q->opts.segment_max)) {
		if ((st = seg_roll(q)) != QUEUE_OK) {
			q->drops[QUEUE_DROPPED_DISK]++;
			return st;
		}
	}

	le32(h, (uint32_t)len);
	le64(h + 8, q->next_seq);
	le64(h + 16, now_ms);
	h[24] = m->qos;
	h[25] = m->flags;
	le16(h + 26, (uint16_t)m->topic.len);
	le32(h + 28, (uint32_t)m->props.len);
	le32(h + 32, (uint32_t)m->payload.len);
	crc = crc32c_update(0, h + 8, REC_HDR_LEN - 8);
	crc = crc32c_update(crc, m->topic.ptr, m->topic.len);
	crc = crc32c_update(crc, m->props.ptr, m->props.len);
	crc = crc32c_update(crc, m->payload.ptr, m->payload.len);
	le32(h + 4, crc);
	iov[0] = (struct iovec){ h, sizeof(h) };
	iov[1] = (struct iovec){ (void *)(uintptr_t)m->topic.ptr, m->topic.len };
	iov[2] = (struct iovec){ (void *)(uintptr_t)m->props.ptr, m->props.len };
	iov[3] = (struct iovec){ (void *)(uintptr_t)m->payload.ptr,
	    m->payload.len };

	if ((st = write_all(q, q->tailfd, iov, 4)) != QUEUE_OK)
		goto fail_cut;
	if (q->opts.fsync == QUEUE_FSYNC_ALWAYS) {
		if (fdatasync(q->tailfd) == -1) {
			st = QUEUE_IO;
			goto fail_cut;
		}
		if (q->dir_dirty && (st = fsync_dir(q)) != QUEUE_OK)
			goto fail_cut;
		q->durable = q->next_seq;
	} else if (q->opts.fsync == QUEUE_FSYNC_NEVER)
		q->durable = q->next_seq;
	else
		q->tail_dirty = true;

	q->tail->size += len;
	q->ahead_msgs++;
	q->ahead_bytes += len;
	if (seqp != NULL)
		*seqp = q->next_seq;
	q->next_seq++;
	return QUEUE_OK;

fail_cut:
	/* Cut the partial record off so the log ends on a whole record. */
	e = errno;
	if (ftruncate(q->tailfd, (off_t)q->tail->size) == -1)
		q->trunc_pending = true;
	q->drops[QUEUE_DROPPED_DISK]++;
	errno = e;
	return st;
fail_disk:
	st = errno_status();
	q->drops[QUEUE_DROPPED_DISK]++;
	return st;
}

static enum queue_status
ckpt_write(struct queue *q)
{
	enum queue_status st;
	uint8_t		 b[CKPT_LEN] = CKPT_MAGIC;
	struct iovec	 iov = { b, sizeof(b) };
	int		 fd, e;

	le32(b + 8, FORMAT_VERSION);
	le64(b + 16, q->released);
	le32(b + 24, crc32c_update(0, b, 24));
	/* A temp file left by a crash would make O_EXCL fail forever. */
	if (unlinkat(q->dirfd, CKPT_TMP, 0) == -1 && errno != ENOENT)
		return QUEUE_IO;
	fd = openat(q->dirfd, CKPT_TMP, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return errno_status();
	if ((st = write_all(q, fd, &iov, 1)) != QUEUE_OK)
		goto fail;
	if (q->opts.fsync != QUEUE_FSYNC_NEVER && fsync(fd) == -1) {
		st = QUEUE_IO;
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		st = QUEUE_IO;
		goto fail;
	}
	fd = -1;
	if (renameat(q->dirfd, CKPT_TMP, q->dirfd, CKPT_NAME) == -1) {
		st = errno_status();
		goto fail;
	}
	if (q->opts.fsync != QUEUE_FSYNC_NEVER && (st = fsync_dir(q)) != QUEUE_OK)
		return st;
	q->ckpt_released = q->released;
	return QUEUE_OK;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	unlinkat(q->dirfd, CKPT_TMP, 0);
	errno = e;
	return st;
}

enum queue_status
queue_sync(struct queue *q)
{
	if (q->trunc_pending && ftruncate(q->tailfd, (off_t)q->tail->size) == 0)
		q->trunc_pending = false;
	if (q->tail_dirty) {
		if (q->opts.fsync != QUEUE_FSYNC_NEVER &&
		    fdatasync(q->tailfd) == -1)
			return QUEUE_IO;
		q->tail_dirty = false;
		q->durable = q->next_seq - 1;
	}
	if (q->dir_dirty && q->opts.fsync != QUEUE_FSYNC_NEVER &&
	    fsync_dir(q) != QUEUE_OK)
		return QUEUE_IO;
	if (q->released != q->ckpt_released)
		return ckpt_write(q);
	return QUEUE_OK;
}

uint64_t
queue_durable_seq(const struct queue *q)
{
	return q->durable;
}

/*
 * Recovery.
 */

/* The checkpoint's released position, or 0 (resend everything) if unusable. */
static uint64_t
ckpt_read(struct queue *q, struct queue_recovery *rep)
{
	uint8_t		 b[CKPT_LEN + 1];
	ssize_t		 n;
	uint64_t	 v;
	int		 fd;

	if ((fd = openat(q->dirfd, CKPT_NAME, O_RDONLY | O_CLOEXEC)) == -1) {
		rep->checkpoint_missing = true;
		return 0;
	}
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	v = get64(b + 16);
	if (n != CKPT_LEN || memcmp(b, CKPT_MAGIC, 8) != 0 ||
	    get32(b + 8) != FORMAT_VERSION ||
	    crc32c_update(0, b, 24) != get32(b + 24) || v >= SEQ_LIMIT) {
		rep->checkpoint_bad = true;
		return 0;
	}
	return v;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Link every segment file, in sequence order. */
static enum queue_status
seg_list(struct queue *q)
{
	enum queue_status st = QUEUE_OK;
	struct dirent	*de;
	struct seg	*s;
	uint64_t	*v = NULL, *nv, seq;
	size_t		 n = 0, cap = 0, i;
	DIR		*d;
	int		 fd;

	if ((fd = dup(q->dirfd)) == -1)
		return QUEUE_IO;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return QUEUE_IO;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if ((seq = seg_parse_name(de->d_name)) == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				st = QUEUE_NOMEM;
				goto out;
			}
			v = nv;
		}
		v[n++] = seq;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i < n; i++)
		if ((st = seg_link(q, v[i], &s)) != QUEUE_OK)
			goto out;
out:
	closedir(d);
	free(v);
	return st;
}

/* Size the segment and check its header; a bad one becomes dead. */
static enum queue_status
seg_check(struct queue *q, struct seg *s, int fd)
{
	enum queue_status st = QUEUE_OK;
	const uint8_t	*h;
	struct stat	 sb;

	if (fstat(fd, &sb) == -1)
		return QUEUE_IO;
	s->size = (uint64_t)sb.st_size;
	if (s->size < SEG_HDR_LEN) {
		s->dead = true;
		return QUEUE_OK;
	}
	if ((h = rd_get(q, s, 0, SEG_HDR_LEN, &st)) == NULL)
		return st;
	if (memcmp(h, SEG_MAGIC, 8) != 0 || get32(h + 8) != FORMAT_VERSION ||
	    get32(h + 12) != SEG_HDR_LEN || get64(h + 16) != s->first_seq ||
	    crc32c_update(0, h, 24) != get32(h + 24))
		s->dead = true;
	return QUEUE_OK;
}

/*
 * Walk every record once. Counts what is queued, counts sequence gaps as
 * lost, cuts the last segment back to its last intact record, and removes
 * leading segments with nothing unacknowledged. An unreadable spot ends its
 * segment without failing the open: the frontier will stop there too.
 */
static enum queue_status
recover(struct queue *q, struct queue_recovery *rep)
{
	enum queue_status st = QUEUE_EMPTY;
	struct seg	*s, *next;
	struct cand	 c;
	uint64_t	 prev = 0, off, lo;
	bool		 prefix = true, live, cut = true;
	char		 name[SEG_NAME_LEN + 1];
	int		 fd;

	q->released = q->ckpt_released = ckpt_read(q, rep);
	rep->acked = q->released;
	if (q->tail != NULL) {
		seg_name(name, q->tail->first_seq);
		q->tailfd = openat(q->dirfd, name, O_RDWR | O_APPEND | O_CLOEXEC);
		if (q->tailfd == -1)
			return errno_status();
	}
	for (s = q->first; s != NULL; s = next) {
		next = s->next;
		rep->segments++;
		fd = rd_fd(q, s);
		if (fd == -1 || seg_check(q, s, fd) != QUEUE_OK) {
			s->dead = true;		/* unreadable: nothing in it */
			s->size = SEG_HDR_LEN;
		}
		if (s->dead)
			rep->segments_bad++;
		live = false;
		off = SEG_HDR_LEN;
		while (!s->dead &&
		    (st = scan_next(q, s, off, prev, &c)) == QUEUE_OK) {
			rep->skipped_bytes += c.off - off;
			lo = max64(prev + 1, q->released);
			if (c.seq > lo)
				rep->lost += c.seq - lo;
			if (c.seq >= q->released) {
				q->ahead_msgs++;
				q->ahead_bytes += c.len;
				live = true;
			}
			prev = c.seq;
			off = c.off + c.len;
		}
		if (!s->dead && st != QUEUE_EMPTY) {
			s->size = off;		/* unreadable beyond */
			if (next == NULL) {
				q->force_roll = true;
				cut = false;
			}
		}
		if (next == NULL && !s->dead) {
			/* The last segment: what follows its last record is torn. */
			if (off < s->size) {
				rep->torn_bytes += s->size - off;
				s->size = off;
				q->bseg = NULL;	/* appends will rewrite those bytes */
				q->vseg = NULL;
			}
		} else if (!s->dead && off < s->size)
			rep->skipped_bytes += s->size - off;
		if (prefix && !live && next != NULL) {
			seg_name(name, s->first_seq);
			if (unlinkat(q->dirfd, name, 0) == 0) {
				q->first = next;
				seg_free(q, s);
				q->fprev = prev;
				continue;
			}
		}
		prefix = false;
	}

	/* The tail: the last segment if it is readable, else a new one. */
	s = q->tail;
	if (s != NULL && s->dead) {
		for (q->tail = q->first; q->tail != NULL &&
		    q->tail->next != s; q->tail = q->tail->next)
			;
		if (q->tail != NULL)
			q->tail->next = NULL;
		else
			q->first = NULL;
		close(q->tailfd);
		q->tailfd = -1;
		seg_name(name, s->first_seq);
		unlinkat(q->dirfd, name, 0);
		seg_free(q, s);
		s = NULL;
	}
	if (s != NULL) {
		if (cut && rep->torn_bytes > 0 &&
		    (ftruncate(q->tailfd, (off_t)s->size) == -1 ||
		    (q->opts.fsync != QUEUE_FSYNC_NEVER &&
		    fdatasync(q->tailfd) == -1)))
			q->force_roll = true;	/* leave the torn bytes be */
		q->next_seq = max64(max64(q->released, prev + 1), s->first_seq);
		if (q->next_seq != max64(prev + 1, s->first_seq))
			q->force_roll = true;	/* keep each segment gapless */
	} else {
		q->next_seq = max64(max64(q->released, prev + 1),
		    q->tail != NULL ? q->tail->first_seq + 1 : 1);
		if ((st = seg_create(q, q->next_seq, &q->tailfd)) != QUEUE_OK)
			return st;
		if ((st = seg_link(q, q->next_seq, &s)) != QUEUE_OK)
			return st;
	}
	/* Numbers handed out before the crash whose records are gone. */
	lo = max64(prev + 1, q->released);
	if (q->next_seq > lo)
		rep->lost += q->next_seq - lo;
	rep->records = q->ahead_msgs;
	q->lost_known = rep->lost;
	q->drops[QUEUE_DROPPED_CORRUPT] = rep->lost;
	q->durable = q->next_seq - 1;
	q->fseg = q->first;
	q->foff = SEG_HDR_LEN;
	if (q->ckpt_released < q->released)
		q->ckpt_released = q->released;
	return QUEUE_OK;
}

static void	destroy(struct queue *);

void
queue_opts_init(struct queue_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->segment_max = QUEUE_SEGMENT_DEFAULT;
	o->max_messages = -1;
	o->max_bytes = 0;
	o->policy = QUEUE_DROP_OLDEST;
	o->fsync = QUEUE_FSYNC_INTERVAL;
	o->inflight_max = QUEUE_INFLIGHT_DEFAULT;
}

enum queue_status
queue_open(const char *dir, const struct queue_opts *opts, struct queue **qp,
    struct queue_recovery *rep)
{
	enum queue_status st;
	struct queue_recovery dummy;
	struct queue	*q;

	*qp = NULL;
	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	if (opts->segment_max < QUEUE_SEGMENT_MIN ||
	    opts->segment_max > QUEUE_SEGMENT_MAX ||
	    opts->inflight_max < 1 || opts->inflight_max > QUEUE_INFLIGHT_MAX ||
	    (unsigned)opts->policy > QUEUE_DROP_NEWEST ||
	    (unsigned)opts->fsync > QUEUE_FSYNC_NEVER)
		return QUEUE_INVALID;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return QUEUE_NOMEM;
	q->opts = *opts;
	q->dirfd = q->lockfd = q->tailfd = q->rfd = -1;
	q->wcap = opts->inflight_max;
	if ((q->win = calloc(q->wcap, sizeof(*q->win))) == NULL) {
		st = QUEUE_NOMEM;
		goto fail;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		st = errno_status();
		goto fail;
	}
	q->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd == -1) {
		st = QUEUE_IO;
		goto fail;
	}
	q->lockfd = openat(q->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC,
	    0600);
	if (q->lockfd == -1) {
		st = errno_status();
		goto fail;
	}
	if (flock(q->lockfd, LOCK_EX | LOCK_NB) == -1) {
		st = errno == EWOULDBLOCK ? QUEUE_LOCKED : QUEUE_IO;
		goto fail;
	}
	if ((st = seg_list(q)) != QUEUE_OK)
		goto fail;
	if ((st = recover(q, rep)) != QUEUE_OK)
		goto fail;
	*qp = q;
	return QUEUE_OK;
fail:
	destroy(q);
	return st;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	(void)queue_sync(q);
	destroy(q);
}

static void
destroy(struct queue *q)
{
	struct seg	*s, *next;
	int		 e = errno;

	for (s = q->first; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	if (q->tailfd != -1)
		close(q->tailfd);
	if (q->rfd != -1)
		close(q->rfd);
	if (q->lockfd != -1)
		close(q->lockfd);	/* drops the flock */
	if (q->dirfd != -1)
		close(q->dirfd);
	free(q->win);
	free(q->buf);
	free(q);
	errno = e;
}

/* The append time of the record at the frontier, from its header alone. */
static uint64_t
front_time(struct queue *q)
{
	uint8_t		 h[REC_HDR_LEN];
	struct seg	*s = q->fseg;
	uint64_t	 off = q->foff;
	char		 name[SEG_NAME_LEN + 1];
	ssize_t		 n;
	int		 fd;

	while (s != NULL && (s->dead || off + REC_HDR_LEN > s->size)) {
		s = s->next;
		off = SEG_HDR_LEN;
	}
	if (s == NULL)
		return 0;
	if (s == q->tail)
		fd = q->tailfd;
	else {
		seg_name(name, s->first_seq);
		if ((fd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC)) == -1)
			return 0;
	}
	n = pread(fd, h, sizeof(h), (off_t)off);
	if (fd != q->tailfd)
		close(fd);
	return n == REC_HDR_LEN ? get64(h + 16) : 0;
}

void
queue_stats(struct queue *q, struct queue_stats *st)
{
	struct seg	*s;

	memset(st, 0, sizeof(*st));
	st->depth_msgs = q->ahead_msgs + q->win_msgs;
	st->depth_bytes = q->ahead_bytes + q->win_bytes;
	st->inflight = q->win_msgs;
	if (q->win_msgs > 0)
		st->oldest_ms = slot_at(q, 0)->time_ms;
	else if (q->ahead_msgs > 0)
		st->oldest_ms = front_time(q);
	memcpy(st->drops, q->drops, sizeof(st->drops));
	st->next_seq = q->next_seq;
	st->durable_seq = q->durable;
	st->acked_seq = q->released;
	st->segments = q->nsegs;
	for (s = q->first; s != NULL; s = s->next)
		st->disk_bytes += s->size;
	st->mem_bytes = sizeof(*q) + q->nsegs * sizeof(struct seg) +
	    q->wcap * sizeof(struct slot) + q->bufcap;
}

const char *
queue_strerror(enum queue_status st)
{
	switch (st) {
	case QUEUE_OK:		return "success";
	case QUEUE_EMPTY:	return "nothing to send";
	case QUEUE_WINDOW_FULL:	return "in-flight window full";
	case QUEUE_FULL:	return "queue full";
	case QUEUE_TOO_BIG:	return "message too big for the queue";
	case QUEUE_NOSPACE:	return "no space left on the queue's disk";
	case QUEUE_IO:		return "queue I/O error";
	case QUEUE_NOT_FOUND:	return "sequence number not in flight";
	case QUEUE_LOCKED:	return "queue locked by another process";
	case QUEUE_INVALID:	return "invalid argument";
	case QUEUE_NOMEM:	return "out of memory";
	}
	return "unknown queue status";
}

const char *
queue_drop_name(enum queue_drop d)
{
	switch (d) {
	case QUEUE_DROPPED_OLDEST:	return "full_oldest";
	case QUEUE_DROPPED_NEWEST:	return "full_newest";
	case QUEUE_DROPPED_CORRUPT:	return "corrupt";
	case QUEUE_DROPPED_DISK:	return "disk_error";
	case QUEUE_DROPPED_NREASONS:	break;
	}
	return "unknown";
}
