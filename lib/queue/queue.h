/*
 * The persistent offline publish queue: an append-only log of messages bound
 * for AWS, kept in a directory as segment files of bounded size, plus a small
 * checkpoint of the acknowledged position and a lock file. Messages are
 * appended at the tail, handed out in order by a send cursor, and acknowledged
 * (possibly out of order) within a bounded in-flight window; the contiguous
 * acknowledged prefix is released, and a segment file is deleted once every
 * record in it is released and a checkpoint saying so is on disk. Memory
 * holds per-segment metadata, the window and one read buffer, never anything
 * per queued message. The caller supplies time (append timestamps) and
 * decides when to sync; nothing here has a clock, a timer, a thread or an
 * event loop. The on-disk format, its versions and the recovery rules are in
 * docs/queue-format.md; the records go through queue/qfmt.h.
 *
 * Syncing, and threads. Waiting for the disk is one step of its own, which
 * may run on another thread while the caller's thread goes on appending:
 *
 *   queue_sync_prepare()	caller's thread; captures into a job what the
 *				next sync must do (no waiting)
 *   queue_sync_run()		any thread; does the job's fsyncs, checkpoint
 *				and deletions, touching nothing of the queue
 *   queue_sync_complete()	caller's thread; takes the result: durable
 *				position, checkpoint, deleted segments
 *
 * queue_sync() is the three in one call. Every other function is called
 * from one thread at a time (the caller's, typically an event loop). While
 * a job is out (prepared, not completed) everything may be called as usual,
 * concurrently with queue_sync_run() of that job, except queue_close() and
 * another prepare or queue_sync() (QUEUE_BUSY); the hooks in queue_opts are
 * called from whichever thread runs the job as well. With opts.deferred_sync
 * set, queue_append() only writes and never waits for the disk whatever the
 * fsync policy: durability comes only from sync jobs.
 */
#ifndef IOTB_QUEUE_H
#define IOTB_QUEUE_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "queue/qfmt.h"

#define QUEUE_SEGMENT_DEFAULT	(4u << 20)	/* segment file size bound */
#define QUEUE_SEGMENT_MIN	4096u
#define QUEUE_SEGMENT_MAX	(1u << 30)
#define QUEUE_INFLIGHT_DEFAULT	100u		/* AWS IoT's in-flight QoS 1 limit */
#define QUEUE_INFLIGHT_MAX	65535u
/* Largest record: header, topic, properties and payload together. */
#define QUEUE_RECORD_MAX	QFMT_REC_MAX
/* Record header bytes: 40, and 10 more for a message with an expiry. */
#define QUEUE_RECORD_OVERHEAD	40u

enum queue_status {
	QUEUE_OK = 0,
	QUEUE_EMPTY,		/* peek/next: nothing to hand out now */
	QUEUE_WINDOW_FULL,	/* peek/next: inflight_max records await an ack */
	QUEUE_FULL,		/* append: over a limit and policy is drop newest */
	QUEUE_TOO_BIG,		/* append: one record over QUEUE_RECORD_MAX or max_bytes */
	QUEUE_NOSPACE,		/* the file system is full (ENOSPC, EDQUOT, EFBIG) */
	QUEUE_IO,		/* another I/O error; errno tells which */
	QUEUE_NOT_FOUND,	/* ack: that sequence number is not in flight */
	QUEUE_LOCKED,		/* open: another process holds the queue's lock */
	QUEUE_INVALID,		/* an argument or option is out of range */
	QUEUE_NOMEM,
	QUEUE_BUSY,		/* sync: a sync job is already out */
	QUEUE_VERSION,		/* open: written by a newer format version */
};

/* What happens to an append when the queue is at a limit. */
enum queue_policy {
	QUEUE_DROP_OLDEST = 0,	/* discard from the head until the new one fits */
	QUEUE_DROP_NEWEST,	/* refuse the new message with QUEUE_FULL */
};

/*
 * What makes an append durable. With opts.deferred_sync, ALWAYS and INTERVAL
 * both mean "durable when a sync job that was prepared after it completes"
 * (when to run one is the caller's policy); NEVER means no fsync at all.
 */
enum queue_fsync {
	QUEUE_FSYNC_ALWAYS = 0,	/* each append is on disk before it returns
				   (unless deferred_sync) */
	QUEUE_FSYNC_INTERVAL,	/* durable at the caller's next sync */
	QUEUE_FSYNC_NEVER,	/* left to the kernel; counted durable at once */
};

/* Why messages left the queue without being acknowledged. */
enum queue_drop {
	QUEUE_DROPPED_OLDEST = 0,	/* full, drop oldest: discarded from the head */
	QUEUE_DROPPED_NEWEST,		/* full, drop newest: refused (QUEUE_FULL) */
	QUEUE_DROPPED_CORRUPT,		/* damaged on disk (counted by sequence gap) */
	QUEUE_DROPPED_DISK,		/* append refused: NOSPACE or IO */
	QUEUE_DROPPED_NREASONS,
};

/*
 * Writes iovcnt buffers to fd like writev(2): returns the bytes written (a
 * short count is retried with the rest) or -1 with errno set. Only tests
 * replace it, to make the disk fill up on cue.
 */
typedef ssize_t	queue_write_fn(void *arg, int fd, const struct iovec *iov,
		    int iovcnt);

/*
 * Makes what was written to fd durable: 0, or -1 with errno set. The queue
 * calls it for a segment (where fdatasync(2) is enough), for the checkpoint
 * and for the directory (fsync(2)). Only tests replace it, to make syncs
 * slow or failing on cue; it may be called from the thread that runs a sync
 * job.
 */
typedef int	queue_fsync_fn(void *arg, int fd);

struct queue_opts {
	size_t			 segment_max;	/* QUEUE_SEGMENT_MIN..MAX */
	int64_t			 max_messages;	/* negative: unlimited */
	uint64_t		 max_bytes;	/* 0: unlimited */
	enum queue_policy	 policy;
	enum queue_fsync	 fsync;
	uint32_t		 inflight_max;	/* 1..QUEUE_INFLIGHT_MAX */
	/* queue_append() never waits for the disk, whatever the fsync policy:
	 * the caller runs sync jobs (false: ALWAYS syncs inside each append) */
	bool			 deferred_sync;
	queue_write_fn		*write_fn;	/* NULL: writev(2) */
	void			*write_arg;
	queue_fsync_fn		*fsync_fn;	/* NULL: fdatasync(2) / fsync(2) */
	void			*fsync_arg;
};

/* A message to append. The views are borrowed for the call only. */
struct queue_msg {
	uint8_t		 qos;		/* 0..2 */
	uint8_t		 flags;		/* the caller's, stored as is */
	struct buf_view	 topic;		/* up to 65535 bytes */
	struct buf_view	 props;		/* MQTT 5 properties, opaque */
	struct buf_view	 payload;
	/* When the message expires, in the caller's clock; 0: never. Stored
	 * and handed back; the queue itself does not act on it. */
	uint64_t	 expiry_ms;
};

/* A message handed out by queue_peek() / queue_next(). */
struct queue_rec {
	uint64_t	 seq;
	uint64_t	 time_ms;	/* the now_ms given to queue_append() */
	bool		 dup;		/* handed out before: resend with DUP */
	struct queue_msg msg;		/* views into the queue's read buffer */
};

/* What queue_open() found on disk. */
struct queue_recovery {
	uint64_t	 acked;		/* checkpoint: sequence numbers below are done */
	bool		 checkpoint_missing;
	bool		 checkpoint_bad;	/* unreadable: resending from the start */
	uint32_t	 checkpoint_version;	/* 0: none readable */
	uint32_t	 segments;	/* segment files found */
	uint32_t	 segments_bad;	/* of which with an unreadable header */
	uint32_t	 segments_old;	/* of which in an older format version */
	uint32_t	 newer_version;	/* QUEUE_VERSION: the version found */
	uint64_t	 records;	/* intact records not yet acknowledged */
	uint64_t	 lost;		/* records lost to damage (sequence gaps) */
	uint64_t	 skipped_bytes;	/* damaged bytes stepped over */
	uint64_t	 torn_bytes;	/* incomplete tail cut off the last segment */
};

struct queue_stats {
	uint64_t	 depth_msgs;	/* appended, not yet acknowledged or dropped */
	uint64_t	 depth_bytes;	/* their record sizes (headers included) */
	uint64_t	 oldest_ms;	/* time_ms of the oldest of them; 0: none */
	uint64_t	 inflight;	/* handed out, awaiting an ack */
	uint64_t	 drops[QUEUE_DROPPED_NREASONS];
	uint64_t	 next_seq;	/* sequence number of the next append */
	uint64_t	 durable_seq;	/* every append up to this one is durable */
	uint64_t	 acked_seq;	/* every sequence number below is released */
	uint32_t	 segments;	/* segment files, those awaiting deletion too */
	uint64_t	 disk_bytes;	/* their bytes */
	size_t		 mem_bytes;	/* heap held by the queue */
};

/* What a sync scheduler needs to know, cheaply (queue_sync_info()). */
struct queue_sync_info {
	uint64_t	 unsynced_msgs;	/* appended, not yet durable */
	uint64_t	 unsynced_bytes;	/* their record sizes */
	uint64_t	 unsynced_since_ms;	/* now_ms of the oldest; 0: none */
	uint64_t	 checkpoint_seq;	/* the released position on disk */
	bool		 in_progress;	/* a job is prepared and not completed */
	bool		 pending;	/* a prepare now would find work to do */
};

struct queue;
struct queue_sync_job;

/* Defaults: 4 MiB segments, unlimited, drop oldest, fsync interval, 100. */
void		queue_opts_init(struct queue_opts *o);

/*
 * Open the queue in directory dir (created, mode 0700, when missing; its
 * parent must exist), lock it, and recover: read the checkpoint, scan every
 * segment, cut a torn record off the tail of the last one, step over damaged
 * records elsewhere (see docs/queue-format.md). Damaged contents never make
 * this fail; segments of an older format version are read where they are
 * (new records go to a new segment). Nothing here waits for the disk: what
 * recovery changed is made durable by the next sync. opts is copied; dir is
 * not kept. On QUEUE_OK *qp is the queue (free it with queue_close()) and
 * *rep, when rep is not NULL, says what recovery did. Otherwise *qp is NULL
 * and:
 *   QUEUE_INVALID	an option is out of range
 *   QUEUE_LOCKED	another process has the queue open
 *   QUEUE_VERSION	a segment or the checkpoint is an intact file of a
 *			later format version (rep->newer_version says which):
 *			nothing was changed, so that going back to an older
 *			iotbridge never destroys a queue
 *   QUEUE_IO		dir or its lock cannot be created or opened, or a
 *			new segment cannot be created (errno tells)
 *   QUEUE_NOSPACE	no room for a new segment
 *   QUEUE_NOMEM
 */
enum queue_status queue_open(const char *dir, const struct queue_opts *opts,
		    struct queue **qp, struct queue_recovery *rep);

/*
 * A last sync, which also records in the checkpoint how far the log is
 * durable, then release everything; errors of that sync are lost (call
 * queue_sync() first to see them). A sync job must not be out (complete it
 * first). NULL is a no-op.
 */
void		queue_close(struct queue *q);

/*
 * Append m, stamped with now_ms, at the tail; *seq (may be NULL) receives its
 * sequence number. The views in m are not kept. At a limit (max_messages,
 * max_bytes) drop oldest first discards from the head, in-flight messages
 * included (a later ack of one of those is QUEUE_NOT_FOUND). Invalidates the
 * views of the last queue_peek()/queue_next().
 *   QUEUE_OK		appended; durable already under fsync never, and under
 *			fsync always unless deferred_sync
 *   QUEUE_FULL		at a limit under drop newest: refused, counted
 *   QUEUE_TOO_BIG	larger than QUEUE_RECORD_MAX or than max_bytes
 *   QUEUE_INVALID	qos above 2 or topic over 65535 bytes
 *   QUEUE_NOSPACE	disk full: refused and counted, nothing else lost,
 *			the tail is cut back, a later append may succeed
 *   QUEUE_IO		the same for any other write or fsync error
 *   QUEUE_NOMEM
 *   QUEUE_BUSY		fsync always without deferred_sync, while a sync job
 *			is out: refused (that mix is a caller's bug)
 */
enum queue_status queue_append(struct queue *q, const struct queue_msg *m,
		    uint64_t now_ms, uint64_t *seq);

/*
 * The record queue_next() would hand out, without handing it out. *r's views
 * point into the queue's read buffer and stay valid until the next
 * queue_peek(), queue_next(), queue_append() or queue_close(); send from them
 * directly. QUEUE_OK, QUEUE_EMPTY, QUEUE_WINDOW_FULL, QUEUE_IO, QUEUE_NOMEM.
 */
enum queue_status queue_peek(struct queue *q, struct queue_rec *r);

/*
 * Hand out the next record, as queue_peek() describes, and count it in
 * flight until queue_ack(). After queue_rewind() the unacknowledged in-flight
 * records come first, in order, with r->dup set; then the backlog.
 */
enum queue_status queue_next(struct queue *q, struct queue_rec *r);

/*
 * The record seq was delivered (AWS's PUBACK, or a QoS 0 one written to the
 * socket). Acks may come in any order; the released position advances over
 * the contiguous acknowledged prefix. The checkpoint is written by the next
 * sync, not here, and segment files wholly behind it are deleted by that
 * sync once the checkpoint is on disk: never before, so that recovery never
 * mistakes them for lost.
 *   QUEUE_OK, QUEUE_NOT_FOUND (not in flight: unknown, acked, or dropped)
 */
enum queue_status queue_ack(struct queue *q, uint64_t seq);

/*
 * After a reconnect: hand out the unacknowledged in-flight records again,
 * oldest first and marked dup, before anything new.
 */
void		queue_rewind(struct queue *q);

/*
 * A sync point, on the caller's thread: queue_sync_prepare(),
 * queue_sync_run() and queue_sync_complete() in one call. QUEUE_OK (also
 * when there was nothing to do), QUEUE_BUSY (a job is out), QUEUE_IO,
 * QUEUE_NOSPACE, QUEUE_NOMEM.
 */
enum queue_status queue_sync(struct queue *q);

/*
 * Capture what the next sync must do into a new job *jobp, without waiting
 * for anything: descriptors (dup'ed) of the segments written since the last
 * sync, whether the directory must be synced (segments created or deleted),
 * the checkpoint bytes when the released position moved, the segments to
 * delete once that checkpoint is durable, and the sequence number the job
 * makes durable. The job owns all of it and does not point into the queue.
 *   QUEUE_OK		*jobp is the job; run it (any thread), then complete it
 *   QUEUE_EMPTY	nothing to do; *jobp is NULL
 *   QUEUE_BUSY		a job is out already; *jobp is NULL
 *   QUEUE_IO		a descriptor could not be duplicated (errno tells)
 *   QUEUE_NOMEM
 */
enum queue_status queue_sync_prepare(struct queue *q,
		    struct queue_sync_job **jobp);

/*
 * queue_sync_prepare() for the records and the directory only: no
 * checkpoint, no deletions (those wait for a later full job). For a sync
 * that a device's acknowledgement waits on, which then costs one fdatasync
 * (and a directory fsync after a new segment) rather than three or four.
 * Same statuses.
 */
enum queue_status queue_sync_prepare_data(struct queue *q,
		    struct queue_sync_job **jobp);

/*
 * Do the job, on any thread, concurrently with the queue's other functions
 * on the caller's thread: fdatasync the segments, fsync the directory, write
 * the checkpoint (temp file, fsync, rename, fsync directory), then delete
 * the segments behind it. Stops at the first failure; a failed deletion is
 * not one (it is retried by a later job). Waits for the disk: never call it
 * on an event loop. The result stays in the job for queue_sync_complete().
 *   QUEUE_OK, QUEUE_IO, QUEUE_NOSPACE (errno tells)
 */
enum queue_status queue_sync_run(struct queue_sync_job *job);

/*
 * Take the result of job, which q prepared, on the caller's thread, and
 * free the job. When every step succeeded, the durable position advances to
 * the job's sequence number, the checkpoint and the deleted segments are
 * accounted for. When one failed, nothing advances and everything the job
 * carried is kept for the next job to retry; a job that was never run is
 * cancelled the same way (QUEUE_IO, errno ECANCELED).
 *   QUEUE_OK, or the job's error (errno as queue_sync_run() left it)
 */
enum queue_status queue_sync_complete(struct queue *q,
		    struct queue_sync_job *job);

/* The sequence number job makes durable (0: it syncs no records). */
uint64_t	queue_sync_job_seq(const struct queue_sync_job *job);

/* Fill *si; no I/O. */
void		queue_sync_info(const struct queue *q, struct queue_sync_info *si);

/* Sequence number up to which appends are durable (see queue_fsync). */
uint64_t	queue_durable_seq(const struct queue *q);

/*
 * Fill *st. oldest_ms of a message not yet handed out is read from its
 * record header (one small read; 0 if that fails). Leaves read views intact.
 */
void		queue_stats(struct queue *q, struct queue_stats *st);

const char	*queue_strerror(enum queue_status st);
const char	*queue_drop_name(enum queue_drop d);

#endif /* IOTB_QUEUE_H */
