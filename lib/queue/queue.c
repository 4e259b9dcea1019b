/*
 * The segmented log behind queue.h. Three positions move forward through
 * it: the frontier (the next record never handed out), the window of records
 * handed out and not yet released (a ring of slots, oldest first), and the
 * released position, below which every sequence number is acknowledged or
 * dropped. Every read goes through scan_next(), which recovery uses too, so
 * the running queue steps over damage exactly as recovery did, and losses are
 * counted by gaps in the sequence numbers, which stay correct whichever of
 * the two meets the damage first. Bytes on disk are only ever read and
 * written through queue/qfmt.h.
 *
 * Durability is a job of its own (struct queue_sync_job): the queue notes
 * what became dirty (segments written, the directory changed, the released
 * position moved, segments retired), a prepare moves all of that into a job
 * that owns its descriptors and bytes, and whichever thread runs the job
 * touches nothing here. Segments wholly released are only retired by the
 * queue; the job that writes a checkpoint past them deletes them after that
 * checkpoint is durable, so that no crash can leave a checkpoint behind a
 * hole in the log.
 */
#include "queue/queue.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_TMP	"checkpoint.tmp"	/* version 1's, removed on sight */
#define LOCK_NAME	"lock"
#define SEQ_LIMIT	QFMT_SEQ_LIMIT	/* keeps seq arithmetic far from wrapping */
#define READ_CHUNK	65536
#define SEG_NAME_LEN	20			/* 16 hex digits + ".seg" */

/*
 * The checkpoint has two slots, overwritten in turn and never renamed: a
 * write allocates nothing (a full disk can still record the acknowledgements
 * that free it), and a torn one leaves the other slot, which recovery then
 * takes. The first is version 1's file.
 */
static const char *const ckpt_slot[2] = { "checkpoint", "checkpoint.1" };

struct seg {
	struct seg	*next;
	uint64_t	 first_seq;	/* from the file name */
	uint64_t	 size;		/* bytes in use; never read beyond */
	uint32_t	 version;	/* of its header, and so of its records */
	uint32_t	 hlen;		/* header length: records begin there */
	/* [counted_from, first_seq) were counted lost when it was created */
	uint64_t	 counted_from;
	/* Closed (no longer the tail) with writes no job has synced yet: the
	 * descriptor they were written through, for the next job; else -1. */
	int		 fd;
	bool		 dead;		/* header unreadable: no records */
	bool		 unlinking;	/* retired, and in the job that is out */
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
	struct qfmt_rec	 rec;		/* views into the read buffer */
	size_t		 slot;		/* window index when resending */
	bool		 resend;
};

/*
 * A sync, captured by queue_sync_prepare(): everything it needs, owned, so
 * that it can run on any thread while the queue goes on.
 */
struct queue_sync_job {
	int		 dirfd;		/* a dup of the queue's */
	int		*fds;		/* segments to fdatasync, owned */
	uint64_t	*fd_seg;	/* first_seq of each fds[i]'s segment */
	size_t		 nfds;
	bool		 sync_dir;
	bool		 fsync;		/* false under fsync never */
	bool		 ckpt;		/* write ckpt_buf as the checkpoint */
	uint8_t		 ckpt_buf[QFMT_CKPT_MAX];
	size_t		 ckpt_len;
	struct qfmt_ckpt ckpt_val;
	int		 ckpt_slot;	/* the slot it overwrites */
	uint64_t	*unlink;	/* first_seq of the segments to delete */
	bool		*unlinked;
	size_t		 nunlink;
	uint64_t	 durable;	/* what success makes durable; 0: nothing */
	uint64_t	 msgs;		/* appends it makes durable */
	uint64_t	 bytes;
	uint64_t	 first_ms;	/* now_ms of the oldest of them */
	queue_write_fn	*write_fn;
	void		*write_arg;
	queue_fsync_fn	*fsync_fn;
	void		*fsync_arg;
	bool		 ran;
	enum queue_status st;
	int		 err;
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
	/* Wholly released segments, oldest first, kept until a job deletes
	 * them behind a durable checkpoint. */
	struct seg	*retired;
	struct seg	*retired_last;
	uint32_t	 nretired;

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
	uint64_t	 durable;
	struct qfmt_ckpt ckpt;		/* the newest checkpoint on disk */
	int		 ckpt_slot;	/* where it is; -1: none */
	bool		 ckpt_unsynced;	/* slots written at open, not synced */

	uint64_t	 ahead_msgs;	/* intact records beyond the frontier */
	uint64_t	 ahead_bytes;
	uint64_t	 win_msgs;	/* slots not done */
	uint64_t	 win_bytes;
	uint64_t	 lost_known;	/* gaps counted by recovery, not yet walked */
	uint64_t	 drops[QUEUE_DROPPED_NREASONS];

	/* What the next sync job must do. */
	bool		 tail_dirty;	/* tail written since the last prepare */
	uint32_t	 ndirty;	/* closed segments with fd != -1 */
	bool		 dir_dirty;	/* segment created since the last prepare */
	uint64_t	 pend_msgs;	/* appends since the last prepare */
	uint64_t	 pend_bytes;
	uint64_t	 pend_first_ms;
	struct queue_sync_job *job;	/* the job that is out, if any */

	bool		 force_roll;	/* next append opens a new segment */
	bool		 trunc_pending;	/* a failed append's bytes are still there */
};

enum prep_kind {
	PREP_DATA,	/* records and directory only: fsync always's append */
	PREP_ALL,	/* and the checkpoint and deletions */
	PREP_FINAL,	/* and a checkpoint that records the durable position */
};

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

static bool
syncs(const struct queue *q)
{
	return q->opts.fsync != QUEUE_FSYNC_NEVER;
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
 * The first intact record in s at or after off that follows prev. Records
 * are numbered without gaps, so the one at off must be exactly prev + 1 (or
 * the segment's first); after k skipped bytes at most k / min records can
 * have been lost (min being the smallest record of the segment's version),
 * which bounds the candidates so tightly that stepping byte by byte through
 * damage finds the next real record and nothing else. QUEUE_OK with *c
 * filled, QUEUE_EMPTY when s holds no more, QUEUE_IO or QUEUE_NOMEM.
 */
static enum queue_status
scan_next(struct queue *q, struct seg *s, uint64_t off, uint64_t prev,
    struct cand *c)
{
	enum queue_status st = QUEUE_OK;
	enum qfmt_status fs;
	const uint8_t	*p;
	struct qfmt_rec	 r;
	uint64_t	 base, o;
	size_t		 min = qfmt_rec_min(s->version), avail;
	bool		 checked;

	if (s->dead)
		return QUEUE_EMPTY;
	base = max64(prev, s->first_seq - 1);
	for (o = off; o < s->size && s->size - o >= min; o++) {
		if ((p = rd_get(q, s, o, min, &st)) == NULL)
			return st;
		/* Decode from what the buffer holds: usually the whole record,
		 * read with its neighbours; only a long one needs a read. */
		avail = q->blen - (size_t)(o - q->boff);
		checked = q->vseg == s && q->voff == o;
		fs = checked ? qfmt_rec_view(s->version, p, avail, &r) :
		    qfmt_rec_decode(s->version, p, avail, &r);
		if (fs == QFMT_SHORT && qfmt_rec_head(s->version, p, avail,
		    &r) == QFMT_OK && r.len <= s->size - o) {
			if ((p = rd_get(q, s, o, r.len, &st)) == NULL)
				return st;
			fs = qfmt_rec_decode(s->version, p, r.len, &r);
		}
		if (fs != QFMT_OK || r.seq < base + 1 ||
		    r.seq > base + 1 + (o - off) / min)
			continue;
		q->vseg = s;
		q->voff = o;
		memset(c, 0, sizeof(*c));
		c->seg = s;
		c->off = o;
		c->rec = r;
		return QUEUE_OK;
	}
	return QUEUE_EMPTY;
}

static void
rec_out(const struct qfmt_rec *x, bool dup, struct queue_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = x->seq;
	r->time_ms = x->time_ms;
	r->dup = dup;
	r->msg.qos = x->qos;
	r->msg.flags = x->flags;
	r->msg.topic = x->topic;
	r->msg.props = x->props;
	r->msg.payload = x->payload;
	r->msg.expiry_ms = x->expiry_ms;
}

static struct slot *
slot_at(struct queue *q, size_t i)
{
	return &q->win[(q->whead + i) % q->wcap];
}

/* Forget every cached reference to s before it leaves the live list. */
static void
seg_unref(struct queue *q, struct seg *s)
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
}

static void
seg_free(struct queue *q, struct seg *s)
{
	seg_unref(q, s);
	if (s->fd != -1) {
		close(s->fd);
		q->ndirty--;
	}
	free(s);
}

/* Move the first live segment to the retired list. */
static void
retire_first(struct queue *q)
{
	struct seg	*s = q->first;

	q->first = s->next;
	q->nsegs--;
	seg_unref(q, s);
	s->next = NULL;
	if (q->retired_last != NULL)
		q->retired_last->next = s;
	else
		q->retired = s;
	q->retired_last = s;
	q->nretired++;
}

/*
 * Retire the segments wholly behind the oldest record still needed: every
 * number they can hold is below released (the next segment's first is), and
 * neither the window nor the frontier is in them.
 */
static void
gc(struct queue *q)
{
	struct seg	*head;

	/* A frontier at the end of a segment is at the start of the next. */
	while (q->fseg != q->tail && (q->fseg->dead || q->foff >= q->fseg->size)) {
		q->fseg = q->fseg->next;
		q->foff = q->fseg->hlen;
	}
	head = q->wlen > 0 ? slot_at(q, 0)->seg : q->fseg;
	while (q->first != head && q->first != q->tail &&
	    q->released >= q->first->next->first_seq)
		retire_first(q);
}

/*
 * How many of the numbers in [lo, hi) were counted lost when s was created
 * (they lie just before it): no one counts them again.
 */
static uint64_t
counted_before(const struct seg *s, uint64_t lo, uint64_t hi)
{
	uint64_t	 a = max64(lo, s->counted_from);
	uint64_t	 b = hi < s->first_seq ? hi : s->first_seq;

	return b > a ? b - a : 0;
}

/*
 * The frontier passes everything below upto, the next record (in s) or the
 * end of the log (s the tail): sequence numbers at or above released that it
 * never saw as intact records are lost. Those recovery counted already use
 * up lost_known; the rest are new damage.
 */
static void
account_gap(struct queue *q, uint64_t upto, const struct seg *s)
{
	uint64_t	 lo = max64(q->fprev + 1, q->released);
	uint64_t	 gap, known, fresh;

	if (upto <= lo)
		return;
	gap = upto - lo - counted_before(s, lo, upto);
	known = gap < q->lost_known ? gap : q->lost_known;
	q->lost_known -= known;
	fresh = gap - known;
	q->drops[QUEUE_DROPPED_CORRUPT] += fresh;
	q->ahead_msgs = sub_sat(q->ahead_msgs, fresh);
}

/*
 * Move the released position over the done prefix of the window, and over
 * the numbers the frontier found lost: they are done too, and a checkpoint
 * past them keeps a restart from counting them again.
 */
static void
release(struct queue *q)
{
	while (q->wlen > 0 && slot_at(q, 0)->done) {
		q->released = slot_at(q, 0)->seq + 1;
		q->whead = (q->whead + 1) % q->wcap;
		q->wlen--;
	}
	q->released = max64(q->released,
	    q->wlen > 0 ? slot_at(q, 0)->seq : q->fprev + 1);
	gc(q);
}

static void
front_commit(struct queue *q, const struct cand *c)
{
	account_gap(q, c->rec.seq, c->seg);
	if (c->rec.seq >= q->released) {
		q->ahead_msgs = sub_sat(q->ahead_msgs, 1);
		q->ahead_bytes = sub_sat(q->ahead_bytes, c->rec.len);
	}
	q->fseg = c->seg;
	q->foff = c->off + c->rec.len;
	q->fprev = c->rec.seq;
}

/* The next record beyond the frontier, or QUEUE_EMPTY at the end of the log. */
static enum queue_status
front_peek(struct queue *q, struct cand *c)
{
	enum queue_status st;

	for (;;) {
		st = scan_next(q, q->fseg, q->foff, q->fprev, c);
		if (st == QUEUE_OK && c->rec.seq < q->released) {
			front_commit(q, c);	/* acked before a restart */
			continue;
		}
		if (st != QUEUE_EMPTY)
			return st;
		if (q->fseg != q->tail) {
			q->fseg = q->fseg->next;
			q->foff = q->fseg->hlen;
			gc(q);
			continue;
		}
		/* The end: whatever the counters still expected is gone. */
		q->foff = q->tail->size;
		account_gap(q, q->next_seq, q->tail);
		q->fprev = max64(q->fprev, q->next_seq - 1);
		q->ahead_msgs = q->ahead_bytes = q->lost_known = 0;
		release(q);
		return QUEUE_EMPTY;
	}
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
	struct qfmt_rec	 r;
	size_t		 i;

again:
	for (i = 0; i < q->wlen; i++) {
		struct slot *sl = slot_at(q, i);

		if (sl->done || sl->seq < q->resend_seq)
			continue;
		if ((p = rd_get(q, sl->seg, sl->off, sl->len, &st)) == NULL)
			return st;
		if (qfmt_rec_decode(sl->seg->version, p, sl->len, &r) !=
		    QFMT_OK || r.seq != sl->seq || r.len != sl->len) {
			/* Damaged since it was sent: it cannot be resent. */
			slot_drop(q, sl, QUEUE_DROPPED_CORRUPT);
			release(q);
			goto again;
		}
		memset(c, 0, sizeof(*c));
		c->seg = sl->seg;
		c->off = sl->off;
		c->rec = r;
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
			rec_out(&c->rec, true, r);
		return st;
	}
	if (q->wlen == q->wcap)
		return QUEUE_WINDOW_FULL;
	if ((st = front_peek(q, c)) == QUEUE_OK)
		rec_out(&c->rec, false, r);
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
		q->resend_seq = c.rec.seq + 1;
		return QUEUE_OK;
	}
	front_commit(q, &c);
	sl = slot_at(q, q->wlen++);
	sl->seg = c.seg;
	sl->off = c.off;
	sl->seq = c.rec.seq;
	sl->time_ms = r->time_ms;
	sl->len = c.rec.len;
	sl->done = false;
	q->win_msgs++;
	q->win_bytes += c.rec.len;
	/* Numbers lost just before this record are released at once. */
	release(q);
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
	q->drops[QUEUE_DROPPED_OLDEST]++;
	release(q);		/* past it: the window is empty */
	return QUEUE_OK;
}

static enum queue_status
write_all(queue_write_fn *fn, void *arg, int fd, struct iovec *iov, int n)
{
	ssize_t		 r;

	while (n > 0) {
		if (fn != NULL)
			r = fn(arg, fd, iov, n);
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

/*
 * Create segment first_seq with its header, [counted_from, first_seq) being
 * the numbers just counted lost before it. Nothing is synced here: the
 * directory and the new file are marked for the next sync job.
 */
static enum queue_status
seg_create(struct queue *q, uint64_t first_seq, uint64_t counted_from,
    int *fdp)
{
	enum queue_status st;
	struct qfmt_seg	 h = { QFMT_VERSION, first_seq, counted_from };
	uint8_t		 b[QFMT_SEG_HDR_MAX];
	char		 name[SEG_NAME_LEN + 1];
	struct iovec	 iov = { b, sizeof(b) };
	size_t		 n;
	int		 fd, e;

	if (qfmt_seg_encode(b, sizeof(b), &h, &n) != QFMT_OK) {
		errno = EOVERFLOW;
		return QUEUE_IO;
	}
	iov.iov_len = n;
	seg_name(name, first_seq);
	fd = openat(q->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_APPEND |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return errno_status();
	if ((st = write_all(q->opts.write_fn, q->opts.write_arg, fd, &iov, 1)) !=
	    QUEUE_OK) {
		e = errno;
		close(fd);
		unlinkat(q->dirfd, name, 0);
		errno = e;
		return st;
	}
	q->dir_dirty = true;
	*fdp = fd;
	return QUEUE_OK;
}

static enum queue_status
seg_link(struct queue *q, uint64_t first_seq, struct seg **sp)
{
	struct seg	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return QUEUE_NOMEM;
	s->first_seq = first_seq;
	s->counted_from = first_seq;
	s->version = QFMT_VERSION;
	s->hlen = (uint32_t)qfmt_seg_hdr_len(QFMT_VERSION);
	s->size = s->hlen;
	s->fd = -1;
	if (q->tail != NULL)
		q->tail->next = s;
	else
		q->first = s;
	q->tail = s;
	q->nsegs++;
	*sp = s;
	return QUEUE_OK;
}

/*
 * Close the tail and open a new one. The old tail's unsynced writes stay
 * the next job's business: it keeps the descriptor they went through.
 */
static enum queue_status
seg_roll(struct queue *q)
{
	enum queue_status st;
	struct seg	*s, *old = q->tail;
	int		 fd;

	if ((st = seg_create(q, q->next_seq, q->next_seq, &fd)) != QUEUE_OK)
		return st;
	if ((st = seg_link(q, q->next_seq, &s)) != QUEUE_OK) {
		char name[SEG_NAME_LEN + 1];

		close(fd);
		seg_name(name, q->next_seq);
		unlinkat(q->dirfd, name, 0);
		return st;
	}
	if (q->tail_dirty && old->fd == -1) {
		old->fd = q->tailfd;
		q->ndirty++;
	} else
		close(q->tailfd);
	q->tailfd = fd;
	q->tail_dirty = syncs(q);
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

static enum queue_status sync_now(struct queue *, enum prep_kind);

/* Take back an append whose record is written but failed its sync. */
static void
append_undo(struct queue *q, uint64_t len)
{
	q->tail->size -= len;
	q->ahead_msgs--;
	q->ahead_bytes -= len;
	q->next_seq--;
	q->pend_msgs--;
	q->pend_bytes -= len;
}

enum queue_status
queue_append(struct queue *q, const struct queue_msg *m, uint64_t now_ms,
    uint64_t *seqp)
{
	enum queue_status st;
	struct qfmt_rec	 rec;
	uint8_t		 h[QFMT_REC_HEAD_MAX];
	struct iovec	 iov[4];
	uint64_t	 len;
	size_t		 hlen;
	bool		 inline_sync;
	int		 e;

	if (m->qos > 2 || m->topic.len > 0xffff)
		return QUEUE_INVALID;
	if (q->next_seq >= SEQ_LIMIT) {
		errno = EOVERFLOW;
		return QUEUE_IO;
	}
	memset(&rec, 0, sizeof(rec));
	rec.seq = q->next_seq;
	rec.time_ms = now_ms;
	rec.expiry_ms = m->expiry_ms;
	rec.qos = m->qos;
	rec.flags = m->flags;
	rec.topic = m->topic;
	rec.props = m->props;
	rec.payload = m->payload;
	if (qfmt_rec_size(QFMT_VERSION, &rec, &len) != QFMT_OK ||
	    (q->opts.max_bytes != 0 && len > q->opts.max_bytes))
		return QUEUE_TOO_BIG;
	inline_sync = q->opts.fsync == QUEUE_FSYNC_ALWAYS &&
	    !q->opts.deferred_sync;
	if (inline_sync && q->job != NULL)
		return QUEUE_BUSY;
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
	if (q->force_roll || (q->tail->size > q->tail->hlen &&
	    q->tail->size + len > q->opts.segment_max)) {
		if ((st = seg_roll(q)) != QUEUE_OK) {
			q->drops[QUEUE_DROPPED_DISK]++;
			return st;
		}
	}

	(void)qfmt_rec_head_encode(QFMT_VERSION, h, sizeof(h), &rec, &hlen);
	iov[0] = (struct iovec){ h, hlen };
	iov[1] = (struct iovec){ (void *)(uintptr_t)m->topic.ptr, m->topic.len };
	iov[2] = (struct iovec){ (void *)(uintptr_t)m->props.ptr, m->props.len };
	iov[3] = (struct iovec){ (void *)(uintptr_t)m->payload.ptr,
	    m->payload.len };
	if ((st = write_all(q->opts.write_fn, q->opts.write_arg, q->tailfd, iov,
	    4)) != QUEUE_OK)
		goto fail_cut;

	q->tail->size += len;
	q->ahead_msgs++;
	q->ahead_bytes += len;
	if (syncs(q)) {
		q->tail_dirty = true;
		if (q->pend_msgs++ == 0)
			q->pend_first_ms = now_ms;
		q->pend_bytes += len;
	} else
		q->durable = q->next_seq;
	q->next_seq++;
	if (inline_sync && (st = sync_now(q, PREP_DATA)) != QUEUE_OK) {
		append_undo(q, len);
		goto fail_cut;
	}
	if (seqp != NULL)
		*seqp = rec.seq;
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

/*
 * Sync jobs. Prepare and complete run on the caller's thread and own the
 * queue; run owns only the job.
 */

static void
job_free(struct queue_sync_job *job)
{
	size_t		 i;
	int		 e = errno;

	for (i = 0; i < job->nfds; i++)
		if (job->fds[i] != -1)
			close(job->fds[i]);
	if (job->dirfd != -1)
		close(job->dirfd);
	free(job->fds);
	free(job->fd_seg);
	free(job->unlink);
	free(job->unlinked);
	free(job);
	errno = e;
}

static bool
ckpt_due(const struct queue *q, enum prep_kind kind, uint64_t durable)
{
	if (kind == PREP_DATA)
		return false;
	if (q->released != q->ckpt.released || q->ckpt_unsynced)
		return true;
	/* On close, leave the evidence of how far the log was durable. */
	return kind == PREP_FINAL && (q->ckpt.version != QFMT_VERSION ||
	    q->ckpt.durable != durable) && (q->released != 0 || durable != 0);
}

static enum queue_status
prepare(struct queue *q, enum prep_kind kind, struct queue_sync_job **jobp)
{
	struct queue_sync_job *job;
	struct seg	*s;
	bool		 data, ckpt;
	size_t		 nfds = 0, nunlink = 0, i;
	uint64_t	 durable;

	*jobp = NULL;
	if (q->job != NULL)
		return QUEUE_BUSY;
	if (q->trunc_pending && ftruncate(q->tailfd, (off_t)q->tail->size) == 0)
		q->trunc_pending = false;
	data = syncs(q) && (q->tail_dirty || q->ndirty > 0);
	/* Nothing dirty means everything appended is durable already. */
	durable = data ? q->next_seq - 1 : q->durable;
	ckpt = ckpt_due(q, kind, durable);
	if (kind != PREP_DATA)
		nunlink = q->nretired;
	if (!data && !(syncs(q) && q->dir_dirty) && !ckpt && nunlink == 0)
		return QUEUE_EMPTY;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return QUEUE_NOMEM;
	job->dirfd = -1;
	if (data)
		nfds = q->ndirty + (q->tail_dirty ? 1 : 0);
	if ((nfds > 0 && ((job->fds = calloc(nfds, sizeof(int))) == NULL ||
	    (job->fd_seg = calloc(nfds, sizeof(uint64_t))) == NULL)) ||
	    (nunlink > 0 && ((job->unlink = calloc(nunlink,
	    sizeof(uint64_t))) == NULL || (job->unlinked = calloc(nunlink,
	    sizeof(bool))) == NULL))) {
		job_free(job);
		return QUEUE_NOMEM;
	}
	if ((job->dirfd = fcntl(q->dirfd, F_DUPFD_CLOEXEC, 0)) == -1 ||
	    (data && q->tail_dirty && (job->fds[nfds - 1] =
	    fcntl(q->tailfd, F_DUPFD_CLOEXEC, 0)) == -1)) {
		job_free(job);
		return errno == ENOMEM ? QUEUE_NOMEM : QUEUE_IO;
	}

	/* Nothing can fail from here on: move the work into the job. The
	 * closed segments first, oldest first; the tail's dup is the last. */
	if (data) {
		struct seg *lists[2] = { q->retired, q->first };

		for (i = 0; i < 2; i++)
			for (s = lists[i]; s != NULL; s = s->next) {
				if (s->fd == -1)
					continue;
				job->fds[job->nfds] = s->fd;
				job->fd_seg[job->nfds++] = s->first_seq;
				s->fd = -1;
			}
		assert(job->nfds == q->ndirty);
		if (q->tail_dirty)
			job->fd_seg[job->nfds++] = q->tail->first_seq;
		q->ndirty = 0;
		q->tail_dirty = false;
		job->durable = durable;
		job->msgs = q->pend_msgs;
		job->bytes = q->pend_bytes;
		job->first_ms = q->pend_first_ms;
		q->pend_msgs = q->pend_bytes = q->pend_first_ms = 0;
	}
	job->sync_dir = syncs(q) && q->dir_dirty;
	q->dir_dirty = false;
	job->fsync = syncs(q);
	if (ckpt) {
		job->ckpt = true;
		job->ckpt_slot = q->ckpt_slot == 0 ? 1 : 0;
		job->ckpt_val.version = QFMT_VERSION;
		job->ckpt_val.released = q->released;
		job->ckpt_val.durable = max64(durable, q->durable);
		(void)qfmt_ckpt_encode(job->ckpt_buf, sizeof(job->ckpt_buf),
		    &job->ckpt_val, &job->ckpt_len);
	}
	for (s = q->retired, i = 0; i < nunlink; s = s->next, i++) {
		job->unlink[i] = s->first_seq;
		s->unlinking = true;
	}
	job->nunlink = nunlink;
	job->write_fn = q->opts.write_fn;
	job->write_arg = q->opts.write_arg;
	job->fsync_fn = q->opts.fsync_fn;
	job->fsync_arg = q->opts.fsync_arg;
	q->job = job;
	*jobp = job;
	return QUEUE_OK;
}

enum queue_status
queue_sync_prepare(struct queue *q, struct queue_sync_job **jobp)
{
	return prepare(q, PREP_ALL, jobp);
}

enum queue_status
queue_sync_prepare_data(struct queue *q, struct queue_sync_job **jobp)
{
	return prepare(q, PREP_DATA, jobp);
}

static int
job_fsync(struct queue_sync_job *job, int fd, bool data)
{
	if (job->fsync_fn != NULL)
		return job->fsync_fn(job->fsync_arg, fd);
	return data ? fdatasync(fd) : fsync(fd);
}

/*
 * Overwrite the older slot in place and fdatasync it (and the directory if
 * the slot had to be created): 0, or -1 with errno.
 */
static int
job_ckpt(struct queue_sync_job *job)
{
	struct iovec	 iov = { job->ckpt_buf, job->ckpt_len };
	const char	*name = ckpt_slot[job->ckpt_slot];
	struct stat	 sb;
	bool		 created = false;
	int		 fd, e;

	fd = openat(job->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		fd = openat(job->dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		created = true;
	}
	if (fd == -1)
		return -1;
	/* Longer than what we write (damage, another version): cut the rest,
	 * which frees and never allocates. */
	if (write_all(job->write_fn, job->write_arg, fd, &iov, 1) != QUEUE_OK ||
	    fstat(fd, &sb) == -1 || (sb.st_size > (off_t)job->ckpt_len &&
	    ftruncate(fd, (off_t)job->ckpt_len) == -1) ||
	    (job->fsync && job_fsync(job, fd, true) == -1)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (close(fd) == -1)
		return -1;
	if (created && job->fsync && job_fsync(job, job->dirfd, false) == -1)
		return -1;
	return 0;
}

enum queue_status
queue_sync_run(struct queue_sync_job *job)
{
	char		 name[SEG_NAME_LEN + 1];
	size_t		 i;

	job->ran = true;
	for (i = 0; i < job->nfds; i++)
		if (job_fsync(job, job->fds[i], true) == -1)
			goto fail;
	if (job->sync_dir && job_fsync(job, job->dirfd, false) == -1)
		goto fail;
	if (job->ckpt && job_ckpt(job) == -1)
		goto fail;
	/* Only now is every record in these segments released on disk. */
	for (i = 0; i < job->nunlink; i++) {
		seg_name(name, job->unlink[i]);
		job->unlinked[i] = unlinkat(job->dirfd, name, 0) == 0 ||
		    errno == ENOENT;
	}
	job->st = QUEUE_OK;
	return QUEUE_OK;
fail:
	job->err = errno;
	job->st = errno_status();
	if (job->st == QUEUE_NOMEM)
		job->st = QUEUE_IO;
	return job->st;
}

static struct seg *
seg_find(struct queue *q, uint64_t first_seq)
{
	struct seg	*lists[2] = { q->retired, q->first }, *s;
	size_t		 i;

	for (i = 0; i < 2; i++)
		for (s = lists[i]; s != NULL; s = s->next)
			if (s->first_seq == first_seq)
				return s;
	return NULL;
}

/*
 * A job failed or was cancelled: what it carried becomes the next job's
 * again. A descriptor goes back to its segment (unless that is the tail, or
 * already has one: the same file, synced through that one), so that the
 * next job syncs exactly what this one did not.
 */
static void
job_give_back(struct queue *q, struct queue_sync_job *job)
{
	struct seg	*s;
	size_t		 i;

	for (i = 0; i < job->nfds; i++) {
		s = seg_find(q, job->fd_seg[i]);
		if (s == q->tail)
			q->tail_dirty = true;
		else if (s != NULL && s->fd == -1) {
			s->fd = job->fds[i];
			job->fds[i] = -1;
			q->ndirty++;
		}
	}
	if (job->sync_dir)
		q->dir_dirty = true;
	if (job->msgs > 0) {
		q->pend_first_ms = q->pend_msgs > 0 ?
		    (job->first_ms < q->pend_first_ms ? job->first_ms :
		    q->pend_first_ms) : job->first_ms;
		q->pend_msgs += job->msgs;
		q->pend_bytes += job->bytes;
	}
	for (s = q->retired; s != NULL; s = s->next)
		s->unlinking = false;
}

enum queue_status
queue_sync_complete(struct queue *q, struct queue_sync_job *job)
{
	enum queue_status st;
	struct seg	*s;
	size_t		 i;

	assert(job == q->job);
	q->job = NULL;
	if (!job->ran) {
		job->st = QUEUE_IO;
		job->err = ECANCELED;
	}
	if ((st = job->st) != QUEUE_OK) {
		int e = job->err;

		job_give_back(q, job);
		job_free(job);
		errno = e;
		return st;
	}
	q->durable = max64(q->durable, job->durable);
	if (job->ckpt) {
		q->ckpt = job->ckpt_val;
		q->ckpt_slot = job->ckpt_slot;
		q->ckpt_unsynced = false;
	}
	/* The retired list starts with the job's segments, in its order. */
	for (i = 0; i < job->nunlink; i++) {
		s = q->retired;
		assert(s != NULL && s->first_seq == job->unlink[i]);
		s->unlinking = false;
		if (!job->unlinked[i])
			break;		/* kept, in order; the next job retries */
		q->retired = s->next;
		if (q->retired == NULL)
			q->retired_last = NULL;
		q->nretired--;
		seg_free(q, s);
	}
	for (s = q->retired; s != NULL; s = s->next)
		s->unlinking = false;
	job_free(job);
	return QUEUE_OK;
}

uint64_t
queue_sync_job_seq(const struct queue_sync_job *job)
{
	return job->durable;
}

static enum queue_status
sync_now(struct queue *q, enum prep_kind kind)
{
	struct queue_sync_job *job;
	enum queue_status st;

	if ((st = prepare(q, kind, &job)) != QUEUE_OK)
		return st == QUEUE_EMPTY ? QUEUE_OK : st;
	(void)queue_sync_run(job);
	return queue_sync_complete(q, job);
}

enum queue_status
queue_sync(struct queue *q)
{
	return sync_now(q, PREP_ALL);
}

uint64_t
queue_durable_seq(const struct queue *q)
{
	return q->durable;
}

void
queue_sync_info(const struct queue *q, struct queue_sync_info *si)
{
	const struct queue_sync_job *job = q->job;
	uint32_t	 unlinkable = q->nretired;

	memset(si, 0, sizeof(*si));
	si->unsynced_msgs = q->pend_msgs;
	si->unsynced_bytes = q->pend_bytes;
	si->unsynced_since_ms = q->pend_msgs > 0 ? q->pend_first_ms : 0;
	if (job != NULL) {
		si->unsynced_msgs += job->msgs;
		si->unsynced_bytes += job->bytes;
		if (job->msgs > 0)
			si->unsynced_since_ms = job->first_ms;
		unlinkable -= (uint32_t)job->nunlink;
	}
	si->checkpoint_seq = q->ckpt.released;
	si->in_progress = job != NULL;
	si->pending = (syncs(q) && (q->tail_dirty || q->ndirty > 0 ||
	    q->dir_dirty)) || q->released != q->ckpt.released ||
	    q->ckpt_unsynced ||
	    unlinkable > 0;
}

/*
 * Recovery.
 */

/*
 * Read both checkpoint slots; the newest intact one goes to q->ckpt. Both
 * missing or damaged: version 0 with released 0 (resend everything).
 * QUEUE_VERSION when either is a later version's.
 */
static enum queue_status
ckpt_read(struct queue *q, struct queue_recovery *rep)
{
	uint8_t		 b[QFMT_HDR_MAX + 1];
	struct qfmt_ckpt c;
	enum qfmt_status st;
	bool		 found = false;
	ssize_t		 n;
	int		 fd, i;

	memset(&q->ckpt, 0, sizeof(q->ckpt));
	q->ckpt_slot = -1;
	for (i = 0; i < 2; i++) {
		if ((fd = openat(q->dirfd, ckpt_slot[i], O_RDONLY |
		    O_CLOEXEC)) == -1)
			continue;
		found = true;
		n = pread(fd, b, sizeof(b), 0);
		close(fd);
		st = n < 0 ? QFMT_SHORT : qfmt_ckpt_decode(b, (size_t)n, &c);
		if (st == QFMT_NEWER) {
			rep->newer_version = c.version;
			return QUEUE_VERSION;
		}
		if (st != QFMT_OK)
			continue;
		/* released and durable only grow: the larger is newer (and
		 * on a tie, the later version) */
		if (q->ckpt_slot == -1 || c.released > q->ckpt.released ||
		    (c.released == q->ckpt.released &&
		    (c.durable > q->ckpt.durable ||
		    (c.durable == q->ckpt.durable &&
		    c.version > q->ckpt.version)))) {
			q->ckpt = c;
			q->ckpt_slot = i;
		}
	}
	if (!found)
		rep->checkpoint_missing = true;
	else if (q->ckpt_slot == -1)
		rep->checkpoint_bad = true;
	rep->checkpoint_version = q->ckpt.version;
	return QUEUE_OK;
}

/*
 * Give both slots their disk space now, so that no later checkpoint needs
 * any: a missing slot is written with what recovery established (which the
 * files on disk agree with), unsynced; the first job writes a synced one.
 */
static void
ckpt_prealloc(struct queue *q)
{
	struct qfmt_ckpt c = { QFMT_VERSION, q->released, q->ckpt.durable };
	uint8_t		 b[QFMT_CKPT_MAX];
	struct iovec	 iov;
	size_t		 n;
	int		 fd, i;

	(void)unlinkat(q->dirfd, CKPT_TMP, 0);
	if (qfmt_ckpt_encode(b, sizeof(b), &c, &n) != QFMT_OK)
		return;
	for (i = 0; i < 2; i++) {
		fd = openat(q->dirfd, ckpt_slot[i], O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd == -1)
			continue;	/* there already, or retried at a sync */
		iov = (struct iovec){ b, n };
		if (write_all(q->opts.write_fn, q->opts.write_arg, fd, &iov, 1) !=
		    QUEUE_OK)
			(void)ftruncate(fd, 0);	/* no half slot */
		close(fd);
		q->dir_dirty = true;
		q->ckpt_unsynced = true;
	}
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

/*
 * Size the segment and read its header: a bad one makes it dead (damage),
 * a later version's makes the open fail before anything is changed.
 */
static enum queue_status
seg_check(struct queue *q, struct seg *s, struct queue_recovery *rep)
{
	enum queue_status st = QUEUE_OK;
	const uint8_t	*h;
	struct qfmt_seg	 hdr;
	struct stat	 sb;
	size_t		 n;
	int		 fd;

	s->dead = true;		/* until proved readable */
	if ((fd = rd_fd(q, s)) == -1 || fstat(fd, &sb) == -1) {
		s->size = s->hlen;
		return QUEUE_OK;
	}
	s->size = (uint64_t)sb.st_size;
	n = s->size < QFMT_HDR_MAX ? (size_t)s->size : QFMT_HDR_MAX;
	if (n == 0)
		return QUEUE_OK;
	if ((h = rd_get(q, s, 0, n, &st)) == NULL) {
		s->size = s->hlen;
		return st == QUEUE_NOMEM ? st : QUEUE_OK;
	}
	switch (qfmt_seg_decode(h, n, &hdr)) {
	case QFMT_OK:
		if (hdr.first_seq != s->first_seq)
			break;
		s->version = hdr.version;
		s->hlen = (uint32_t)qfmt_seg_hdr_len(hdr.version);
		s->counted_from = hdr.counted_from;
		s->dead = false;
		if (hdr.version < QFMT_VERSION)
			rep->segments_old++;
		break;
	case QFMT_NEWER:
		rep->newer_version = hdr.version;
		return QUEUE_VERSION;
	default:
		break;
	}
	return QUEUE_OK;
}

/* Unlink the dead last segment: nothing readable, nothing to keep. */
static void
tail_drop(struct queue *q)
{
	struct seg	*s = q->tail, *p;
	char		 name[SEG_NAME_LEN + 1];

	for (p = q->first; p != s && p->next != s; p = p->next)
		;
	if (p == s)
		q->first = q->tail = NULL;
	else {
		p->next = NULL;
		q->tail = p;
	}
	q->nsegs--;
	close(q->tailfd);
	q->tailfd = -1;
	seg_name(name, s->first_seq);
	unlinkat(q->dirfd, name, 0);
	q->dir_dirty = true;
	seg_free(q, s);
}

/*
 * Walk every record once. Counts what is queued, counts sequence gaps as
 * lost (but not those a segment header says were counted when it was made),
 * cuts the last segment back to its last intact record, and retires leading
 * segments with nothing unacknowledged. An unreadable spot ends its segment
 * without failing the open: the frontier will stop there too. Nothing is
 * changed on disk before every header has been read, so that a later
 * version's queue is refused untouched.
 */
static enum queue_status
recover(struct queue *q, struct queue_recovery *rep)
{
	enum queue_status st = QUEUE_EMPTY;
	struct seg	*s, *next;
	struct cand	 c;
	uint64_t	 prev = 0, off, lo, want;
	bool		 prefix = true, live, cut = true, fresh = false;
	char		 name[SEG_NAME_LEN + 1];
	int		 fd;

	if ((st = ckpt_read(q, rep)) != QUEUE_OK)
		return st;
	if (q->tail != NULL) {
		seg_name(name, q->tail->first_seq);
		q->tailfd = openat(q->dirfd, name, O_RDWR | O_APPEND | O_CLOEXEC);
		if (q->tailfd == -1)
			return errno_status();
	}
	for (s = q->first; s != NULL; s = s->next) {
		rep->segments++;
		if ((st = seg_check(q, s, rep)) != QUEUE_OK)
			return st;
		if (s->dead)
			rep->segments_bad++;
	}
	q->released = q->ckpt.released;
	/*
	 * Numbers below the first segment: version 2 deletes a segment only
	 * after a checkpoint past it is durable, so with its checkpoint at
	 * hand a hole there is lost data. Without one (missing, damaged) or
	 * with version 1's (which deleted segments first), the hole is what
	 * deletion left: those numbers were released.
	 */
	if (q->first != NULL && q->ckpt.version < 2)
		q->released = max64(q->released, q->first->first_seq);
	for (s = q->first; s != NULL; s = next) {
		next = s->next;
		live = false;
		off = s->hlen;
		while (!s->dead &&
		    (st = scan_next(q, s, off, prev, &c)) == QUEUE_OK) {
			rep->skipped_bytes += c.off - off;
			lo = max64(prev + 1, q->released);
			if (c.rec.seq > lo)
				rep->lost += c.rec.seq - lo -
				    counted_before(s, lo, c.rec.seq);
			if (c.rec.seq >= q->released) {
				q->ahead_msgs++;
				q->ahead_bytes += c.rec.len;
				live = true;
			}
			prev = c.rec.seq;
			off = c.off + c.rec.len;
		}
		if (!s->dead && st != QUEUE_EMPTY) {
			if (st == QUEUE_NOMEM)
				return st;
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
			/* Nothing to send in it: every number it can hold is
			 * done, once the lost ones are counted. */
			lo = max64(prev + 1, q->released);
			if (next->first_seq > lo)
				rep->lost += next->first_seq - lo -
				    counted_before(next, lo, next->first_seq);
			q->released = max64(q->released, next->first_seq);
			prev = max64(prev, next->first_seq - 1);
			q->fprev = prev;
			retire_first(q);
			continue;
		}
		prefix = false;
	}
	/* A dead last segment goes; appends never go into the one before,
	 * which may end in damage: a new tail follows it. */
	if (q->tail != NULL && q->tail->dead) {
		tail_drop(q);
		fresh = true;
	}

	/*
	 * The next number: past everything seen, released, and past what the
	 * checkpoint says was durable: records cut from the tail since are
	 * lost, and their numbers are never used again.
	 */
	want = max64(max64(q->released, prev + 1),
	    (q->ckpt.durable < SEQ_LIMIT - 2 ? q->ckpt.durable :
	    SEQ_LIMIT - 2) + 1);
	if (q->tail != NULL)
		want = max64(want, q->tail->first_seq);
	lo = max64(prev + 1, q->released);
	if (want > lo)
		rep->lost += want - lo - (q->tail != NULL ?
		    counted_before(q->tail, lo, want) : 0);
	/* a new segment's name comes after the last one's (an empty one's
	 * first number was never used: skipped, not lost) */
	if (fresh && q->tail != NULL && want <= q->tail->first_seq)
		want = q->tail->first_seq + 1;
	s = fresh ? NULL : q->tail;
	if (s != NULL && cut && rep->torn_bytes > 0 &&
	    ftruncate(q->tailfd, (off_t)s->size) == -1)
		q->force_roll = true;	/* leave the torn bytes be */
	if (s != NULL && (want != max64(prev + 1, s->first_seq) ||
	    s->version != QFMT_VERSION) && s->size <= s->hlen &&
	    s->first_seq >= want) {
		tail_drop(q);		/* empty, and in the way */
		s = NULL;
	}
	if (s == NULL || want != max64(prev + 1, s->first_seq) ||
	    s->version != QFMT_VERSION) {
		/*
		 * A new tail at once, rather than at the next append: its
		 * header records the numbers just counted lost before it, so
		 * that no later recovery counts them again; and new records
		 * are written in our version.
		 */
		uint64_t from = want > lo ? lo : want;

		if ((st = seg_create(q, want, from, &fd)) != QUEUE_OK)
			return st;
		if ((st = seg_link(q, want, &s)) != QUEUE_OK) {
			close(fd);
			return st;
		}
		s->counted_from = from;
		if (q->tailfd != -1) {
			/* the old tail's unsynced bytes: the first job's */
			struct seg *old;

			for (old = q->first; old->next != s; old = old->next)
				;
			if (syncs(q)) {
				old->fd = q->tailfd;
				q->ndirty++;
			} else
				close(q->tailfd);
		}
		q->tailfd = fd;
		q->force_roll = false;
	}
	q->next_seq = want;
	rep->records = q->ahead_msgs;
	rep->acked = q->released;
	q->lost_known = rep->lost;
	q->drops[QUEUE_DROPPED_CORRUPT] = rep->lost;
	q->durable = q->next_seq - 1;
	q->fseg = q->first;
	q->foff = q->first->hlen;
	/* What recovery read may be in the page cache only (a crash of the
	 * process, not of the machine) and what it changed is not synced:
	 * the first job makes both durable. */
	q->tail_dirty = syncs(q);
	ckpt_prealloc(q);
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
	assert(q->job == NULL);
	(void)sync_now(q, PREP_FINAL);
	destroy(q);
}

static void
destroy(struct queue *q)
{
	struct seg	*lists[2] = { q->first, q->retired }, *s, *next;
	size_t		 i;
	int		 e = errno;

	for (i = 0; i < 2; i++)
		for (s = lists[i]; s != NULL; s = next) {
			next = s->next;
			if (s->fd != -1)
				close(s->fd);
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
	uint8_t		 h[QFMT_REC_HEAD_MAX];
	struct qfmt_rec	 r;
	struct seg	*s = q->fseg;
	uint64_t	 off = q->foff;
	char		 name[SEG_NAME_LEN + 1];
	ssize_t		 n;
	int		 fd;

	while (s != NULL && (s->dead ||
	    off + qfmt_rec_min(s->version) > s->size)) {
		s = s->next;
		off = s != NULL ? s->hlen : 0;
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
	n = pread(fd, h, qfmt_rec_min(s->version), (off_t)off);
	if (fd != q->tailfd)
		close(fd);
	if (n < 0 || qfmt_rec_head(s->version, h, (size_t)n, &r) != QFMT_OK)
		return 0;
	return r.time_ms;
}

void
queue_stats(struct queue *q, struct queue_stats *st)
{
	struct seg	*lists[2] = { q->first, q->retired }, *s;
	size_t		 i;

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
	st->segments = q->nsegs + q->nretired;
	for (i = 0; i < 2; i++)
		for (s = lists[i]; s != NULL; s = s->next)
			st->disk_bytes += s->size;
	st->mem_bytes = sizeof(*q) + (q->nsegs + q->nretired) *
	    sizeof(struct seg) + q->wcap * sizeof(struct slot) + q->bufcap;
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
	case QUEUE_BUSY:	return "a queue sync is already in progress";
	case QUEUE_VERSION:	return "queue written by a newer version of "
				    "iotbridge";
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
