/*
 * Unit tests for lib/queue: append/read/ack, restart,
 * both limits under both policies (the AWS SDK's 5-slot, 7-message example),
 * segment roll-over and deletion, recovery from a cut at every byte of the last
 * record and from a flipped bit in every record, out-of-order acks, rewind, a
 * full disk, and memory that does not grow with the queue. Each test works in
 * its own mkdtemp() directory under /tmp and removes it.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/crc32c.h"
#include "queue/queue.h"

#define REC_HDR		QUEUE_RECORD_OVERHEAD	/* a record without expiry */
#define SEG_HDR		40			/* a version 2 segment header */

struct env {
	char		 dir[64];
	struct queue_opts opts;
	struct queue	*q;
};

static void
rm_dir(const char *dir)
{
	struct dirent	*de;
	char		 path[512];
	DIR		*d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	strcpy(e->dir, "/tmp/iotb-queue-test.XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		return -1;
	queue_opts_init(&e->opts);
	e->opts.fsync = QUEUE_FSYNC_NEVER;	/* tests are about logic, not disks */
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	queue_close(e->q);
	rm_dir(e->dir);
	free(e);
	return 0;
}

static void
qopen(struct env *e, struct queue_recovery *rep)
{
	queue_close(e->q);
	e->q = NULL;
	assert_int_equal(queue_open(e->dir, &e->opts, &e->q, rep), QUEUE_OK);
}

/* Close now, while hooks that point into the test's stack are valid. */
static void
qclose(struct env *e)
{
	queue_close(e->q);
	e->q = NULL;
}

/* Message i: topic "t/<i>", payload "pub_req<i>" padded to pad bytes. */
static enum queue_status
append_n(struct env *e, int i, size_t pad, uint64_t *seq)
{
	char		 topic[32], payload[4096];
	struct queue_msg m;
	size_t		 n;

	assert_true(pad < sizeof(payload));
	snprintf(topic, sizeof(topic), "t/%d", i);
	n = (size_t)snprintf(payload, sizeof(payload), "pub_req%d", i);
	if (pad > n) {
		memset(payload + n, 'x', pad - n);
		n = pad;
	}
	memset(&m, 0, sizeof(m));
	m.qos = 1;
	m.flags = (uint8_t)i;
	m.topic.ptr = (const uint8_t *)topic;
	m.topic.len = strlen(topic);
	m.payload.ptr = (const uint8_t *)payload;
	m.payload.len = n;
	return queue_append(e->q, &m, 1000 + (uint64_t)i, seq);
}

/* The number in "pub_req<N>..." of a record. */
static int
payload_id(const struct queue_rec *r)
{
	char	 b[32];
	size_t	 n = r->msg.payload.len < 31 ? r->msg.payload.len : 31;

	memcpy(b, r->msg.payload.ptr, n);
	b[n] = '\0';
	assert_memory_equal(b, "pub_req", 7);
	return atoi(b + 7);
}

/* Hand out and ack everything; the payload ids, in order, go to ids. */
static size_t
drain(struct env *e, int *ids, size_t cap)
{
	struct queue_rec r;
	size_t		 n = 0;

	while (queue_next(e->q, &r) == QUEUE_OK) {
		assert_true(n < cap);
		ids[n++] = payload_id(&r);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
	return n;
}

static int
count_segments(const struct env *e)
{
	struct dirent	*de;
	DIR		*d = opendir(e->dir);
	int		 n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* The path of the only (or last) segment file. */
static void
last_segment(const struct env *e, char *path, size_t cap)
{
	struct dirent	*de;
	char		 best[32] = "";
	DIR		*d = opendir(e->dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strlen(de->d_name) == 20 && strstr(de->d_name, ".seg") &&
		    strcmp(de->d_name, best) > 0)
			memcpy(best, de->d_name, 21);
	closedir(d);
	assert_true(best[0] != '\0');
	snprintf(path, cap, "%s/%s", e->dir, best);
}

static off_t
file_size(const char *path)
{
	struct stat	 sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static void
test_append_read_ack(void **state)
{
	struct env	*e = *state;
	struct queue_rec r;
	struct queue_stats st;
	struct queue_msg m;
	uint64_t	 seq;

	qopen(e, NULL);
	memset(&m, 0, sizeof(m));
	m.qos = 1;
	m.flags = 0x5a;
	m.topic.ptr = (const uint8_t *)"a/b";
	m.topic.len = 3;
	m.props.ptr = (const uint8_t *)"\x01\x01";	/* payload format: utf-8 */
	m.props.len = 2;
	m.payload.ptr = (const uint8_t *)"hello";
	m.payload.len = 5;
	assert_int_equal(queue_append(e->q, &m, 42, &seq), QUEUE_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(append_n(e, 2, 0, &seq), QUEUE_OK);
	assert_int_equal(seq, 2);

	queue_stats(e->q, &st);
	assert_int_equal(st.depth_msgs, 2);
	assert_int_equal(st.depth_bytes, (REC_HDR + 3 + 2 + 5) +
	    (REC_HDR + 3 + 8));
	assert_int_equal(st.oldest_ms, 42);

	assert_int_equal(queue_peek(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 1);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 1);
	assert_int_equal(r.time_ms, 42);
	assert_false(r.dup);
	assert_int_equal(r.msg.qos, 1);
	assert_int_equal(r.msg.flags, 0x5a);
	assert_int_equal(r.msg.topic.len, 3);
	assert_memory_equal(r.msg.topic.ptr, "a/b", 3);
	assert_int_equal(r.msg.props.len, 2);
	assert_memory_equal(r.msg.props.ptr, "\x01\x01", 2);
	assert_int_equal(r.msg.payload.len, 5);
	assert_memory_equal(r.msg.payload.ptr, "hello", 5);

	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 2);
	assert_int_equal(payload_id(&r), 2);
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_EMPTY);

	queue_stats(e->q, &st);
	assert_int_equal(st.inflight, 2);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_NOT_FOUND);
	assert_int_equal(queue_ack(e->q, 7), QUEUE_NOT_FOUND);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_msgs, 0);
	assert_int_equal(st.depth_bytes, 0);
	assert_int_equal(st.oldest_ms, 0);
	assert_int_equal(st.acked_seq, 3);

	/* Bad arguments. */
	m.qos = 3;
	assert_int_equal(queue_append(e->q, &m, 0, NULL), QUEUE_INVALID);
	m.qos = 0;
	m.payload.len = QUEUE_RECORD_MAX;
	assert_int_equal(queue_append(e->q, &m, 0, NULL), QUEUE_TOO_BIG);
	assert_string_equal(queue_strerror(QUEUE_FULL), "queue full");
	assert_string_equal(queue_drop_name(QUEUE_DROPPED_CORRUPT), "corrupt");
}

static void
test_reopen_keeps_unacked(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_rec r;
	int		 ids[16], i;

	qopen(e, &rep);
	assert_true(rep.checkpoint_missing);
	for (i = 1; i <= 5; i++)
		assert_int_equal(append_n(e, i, 0, NULL), QUEUE_OK);
	for (i = 1; i <= 2; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
	/* Handed out, never acked: must come back after the restart. */
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);

	qopen(e, &rep);
	assert_false(rep.checkpoint_missing);
	assert_false(rep.checkpoint_bad);
	assert_int_equal(rep.acked, 3);
	assert_int_equal(rep.records, 3);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.torn_bytes, 0);
	assert_int_equal(drain(e, ids, 16), 3);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 4);
	assert_int_equal(ids[2], 5);

	/* Sequence numbers go on from where they were. */
	assert_int_equal(append_n(e, 6, 0, NULL), QUEUE_OK);
	qopen(e, &rep);
	assert_int_equal(rep.records, 1);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 6);
	assert_int_equal(payload_id(&r), 6);
}

static bool
queue_sync_info_in_progress(struct queue *q)
{
	struct queue_sync_info si;

	queue_sync_info(q, &si);
	return si.in_progress;
}

static void
check_seed(struct env *e, enum queue_policy policy, const int *want)
{
	struct queue_stats st;
	int		 ids[8], i;

	e->opts.policy = policy;
	e->opts.max_messages = 5;
	qopen(e, NULL);
	for (i = 1; i <= 7; i++)
		assert_int_equal(append_n(e, i, 0, NULL),
		    i > 5 && policy == QUEUE_DROP_NEWEST ? QUEUE_FULL : QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_msgs, 5);
	assert_int_equal(st.drops[policy == QUEUE_DROP_OLDEST ?
	    QUEUE_DROPPED_OLDEST : QUEUE_DROPPED_NEWEST], 2);
	/* The same after a restart. */
	qopen(e, NULL);
	assert_int_equal(drain(e, ids, 8), 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(ids[i], want[i]);
}

/* The AWS IoT Device SDK's example: a 5-message queue given 7 messages. */
static void
test_seed_drop_oldest(void **state)
{
	static const int want[] = { 3, 4, 5, 6, 7 };

	check_seed(*state, QUEUE_DROP_OLDEST, want);
}

static void
test_seed_drop_newest(void **state)
{
	static const int want[] = { 1, 2, 3, 4, 5 };

	check_seed(*state, QUEUE_DROP_NEWEST, want);
}

static void
test_max_bytes(void **state)
{
	struct env	*e = *state;
	struct queue_stats st;
	const size_t	 rec = REC_HDR + 3 + 100;	/* "t/N", 100-byte payload */
	int		 ids[8], i;

	e->opts.max_bytes = 3 * rec;
	e->opts.policy = QUEUE_DROP_OLDEST;
	qopen(e, NULL);
	for (i = 1; i <= 5; i++)
		assert_int_equal(append_n(e, i, 100, NULL), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_bytes, 3 * rec);
	assert_int_equal(st.drops[QUEUE_DROPPED_OLDEST], 2);
	assert_int_equal(drain(e, ids, 8), 3);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[2], 5);
	/* One record above max_bytes can never fit. */
	assert_int_equal(append_n(e, 9, 3 * rec, NULL), QUEUE_TOO_BIG);

	e->opts.policy = QUEUE_DROP_NEWEST;
	qopen(e, NULL);
	for (i = 1; i <= 5; i++)
		assert_int_equal(append_n(e, i, 100, NULL),
		    i <= 3 ? QUEUE_OK : QUEUE_FULL);
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_NEWEST], 2);
	assert_int_equal(drain(e, ids, 8), 3);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[2], 3);
}

/* Drop oldest may discard a message in flight; its late ack is ignored. */
static void
test_drop_oldest_in_flight(void **state)
{
	struct env	*e = *state;
	struct queue_rec r;
	struct queue_stats st;

	e->opts.max_messages = 2;
	qopen(e, NULL);
	assert_int_equal(append_n(e, 1, 0, NULL), QUEUE_OK);
	assert_int_equal(append_n(e, 2, 0, NULL), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(append_n(e, 3, 0, NULL), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_NOT_FOUND);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_msgs, 2);
	assert_int_equal(st.inflight, 1);
	assert_int_equal(st.acked_seq, 2);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(payload_id(&r), 3);
}

static void
test_segments_roll_and_go(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_rec r;
	int		 i, before;

	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	qopen(e, NULL);
	/* About 1 KiB records: three to a 4 KiB segment. */
	for (i = 1; i <= 20; i++)
		assert_int_equal(append_n(e, i, 1000, NULL), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.segments, 7);
	assert_int_equal(count_segments(e), 7);
	assert_true(st.disk_bytes > 20 * 1000);

	/* Acking the first segment's three records deletes its file, at the
	 * sync that writes the checkpoint past them, not before. */
	for (i = 1; i <= 3; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(payload_id(&r), i);
	}
	assert_int_equal(queue_ack(e->q, 3), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_int_equal(count_segments(e), 7);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_OK);
	assert_int_equal(count_segments(e), 7);
	queue_stats(e->q, &st);
	assert_int_equal(st.segments, 7);	/* still on disk */
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_int_equal(count_segments(e), 6);
	queue_stats(e->q, &st);
	assert_int_equal(st.segments, 6);

	/* A restart sees the rest, across segments, in order. */
	qopen(e, &rep);
	assert_int_equal(rep.segments, 6);
	assert_int_equal(rep.records, 17);
	for (i = 4; i <= 20; i++) {
		before = count_segments(e);
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(payload_id(&r), i);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
		assert_int_equal(queue_sync(e->q), QUEUE_OK);
		assert_true(count_segments(e) <= before);
	}
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	/* Only the tail is left, kept for the next append. */
	assert_int_equal(count_segments(e), 1);
	queue_stats(e->q, &st);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.depth_msgs, 0);
}

/* Write n records (payload pad bytes each) into a fresh queue, then close. */
static void
fill(struct env *e, int n, size_t pad)
{
	int	 i;

	rm_dir(e->dir);
	qopen(e, NULL);
	for (i = 1; i <= n; i++)
		assert_int_equal(append_n(e, i, pad, NULL), QUEUE_OK);
	queue_close(e->q);
	e->q = NULL;
}

static void
test_truncate_every_byte(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_rec r;
	char		 path[128];
	off_t		 size, start, cut;
	int		 ids[8];
	const int	 n = 5;
	const size_t	 last = REC_HDR + 3 + 40;
	char		 ckpt[128], ckpt1[128];

	snprintf(ckpt, sizeof(ckpt), "%s/checkpoint", e->dir);
	snprintf(ckpt1, sizeof(ckpt1), "%s/checkpoint.1", e->dir);
	fill(e, n, 40);
	last_segment(e, path, sizeof(path));
	size = file_size(path);
	start = size - (off_t)last;
	for (cut = start; cut <= size; cut++) {
		/*
		 * Closed cleanly, the checkpoint says all n were durable: a
		 * record cut off is lost, and counted. Without that evidence
		 * (every other run: a crash before any checkpoint), the cut
		 * is a write that never completed: torn bytes, nothing lost.
		 */
		bool evidence = cut % 2 == 0;

		fill(e, n, 40);
		assert_int_equal(truncate(path, cut), 0);
		if (!evidence) {
			assert_int_equal(unlink(ckpt), 0);
			assert_int_equal(unlink(ckpt1), 0);
		}
		qopen(e, &rep);
		if (cut == size) {
			assert_int_equal(rep.records, n);
			assert_int_equal(rep.torn_bytes, 0);
		} else {
			assert_int_equal(rep.records, n - 1);
			assert_int_equal(rep.torn_bytes, cut - start);
			assert_int_equal(file_size(path), start);
		}
		assert_int_equal(rep.lost, cut < size && evidence ? 1 : 0);
		/* New appends go after the last whole record. */
		assert_int_equal(append_n(e, 7, 0, NULL), QUEUE_OK);
		qopen(e, &rep);
		assert_int_equal(rep.torn_bytes, 0);
		assert_int_equal(rep.lost, 0);		/* counted once */
		assert_int_equal(drain(e, ids, 8), (size_t)(cut == size ? n + 1 : n));
		assert_int_equal(ids[0], 1);
		assert_int_equal(ids[n - 2], n - 1);
		assert_int_equal(ids[cut == size ? n : n - 1], 7);
		assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	}
}

/*
 * Flip one bit (a different one for each byte) of record k and check that
 * exactly that record is gone: skipped and counted when another record
 * follows it, cut off as a torn tail when it is the log's last.
 */
static void
flip_check(struct env *e, int n, size_t pad, size_t stride)
{
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_rec r;
	const size_t	 rec = REC_HDR + 3 + pad;
	char		 path[256];
	uint8_t		 byte;
	int		 k, i, got, fd;
	size_t		 b, per_seg;
	off_t		 off;

	per_seg = (e->opts.segment_max - SEG_HDR) / rec;
	for (k = 1; k <= n; k++) {
		for (b = 0; b < rec; b += b < REC_HDR ? 1 : stride) {
			int	 seg = (k - 1) / (int)per_seg;
			int	 first = seg * (int)per_seg + 1;

			fill(e, n, pad);
			snprintf(path, sizeof(path), "%s/%016x.seg", e->dir,
			    (unsigned)first);
			off = (off_t)(SEG_HDR + (size_t)(k - first) * rec + b);
			fd = open(path, O_RDWR);
			assert_true(fd != -1);
			assert_int_equal(pread(fd, &byte, 1, off), 1);
			byte ^= (uint8_t)(1u << (b % 8));
			assert_int_equal(pwrite(fd, &byte, 1, off), 1);
			close(fd);

			qopen(e, &rep);
			assert_int_equal(rep.records, n - 1);
			/* Lost either way: the closed queue's checkpoint says
			 * the last record was durable. */
			assert_int_equal(rep.lost, 1);
			if (k == n)
				assert_int_equal(rep.torn_bytes, rec);
			else
				assert_true(rep.skipped_bytes >= rec);
			queue_stats(e->q, &st);
			assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT], 1);
			for (i = 1, got = 0; i <= n; i++) {
				if (i == k)
					continue;
				assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
				assert_int_equal(payload_id(&r), i);
				assert_int_equal(r.msg.payload.len, pad);
				assert_int_equal(r.msg.flags, i);
				assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
				got++;
			}
			assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
			/* Walking past the damage does not count it twice. */
			queue_stats(e->q, &st);
			assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT], 1);
			assert_int_equal(st.depth_msgs, 0);
			assert_int_equal(append_n(e, 9, 0, NULL), QUEUE_OK);
			assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
			assert_int_equal(payload_id(&r), 9);
		}
	}
}

static void
test_flip_every_byte(void **state)
{
	struct env	*e = *state;

	flip_check(e, 4, 24, 1);
}

/* Bigger records over several segments, a dense sample of each body. */
static void
test_flip_across_segments(void **state)
{
	struct env	*e = *state;

	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	flip_check(e, 5, 1500, 7);
}

/* Garbage in the middle of a non-last segment costs only that segment's rest. */
static void
test_garbage_mid_segment(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	uint8_t		 junk[4096];
	char		 path[256];
	int		 ids[16], fd;

	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	fill(e, 9, 1000);	/* three segments of three records */
	snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 4);
	memset(junk, 0xff, sizeof(junk));
	fd = open(path, O_RDWR);
	assert_true(fd != -1);
	/* Records 5 and 6 become garbage, the length of 6 included. */
	assert_int_equal(pwrite(fd, junk, 2000, SEG_HDR + REC_HDR + 1003 + 10),
	    2000);
	close(fd);
	qopen(e, &rep);
	assert_int_equal(rep.records, 7);
	assert_int_equal(rep.lost, 2);
	assert_int_equal(drain(e, ids, 16), 7);
	assert_int_equal(ids[3], 4);
	assert_int_equal(ids[4], 7);
	assert_int_equal(ids[6], 9);
}

static void
test_out_of_order_acks(void **state)
{
	struct env	*e = *state;
	struct queue_stats st;
	struct queue_rec r;
	int		 i;

	e->opts.inflight_max = 3;
	qopen(e, NULL);
	for (i = 1; i <= 5; i++)
		assert_int_equal(append_n(e, i, 0, NULL), QUEUE_OK);
	for (i = 1; i <= 3; i++)
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_WINDOW_FULL);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_WINDOW_FULL);

	assert_int_equal(queue_ack(e->q, 3), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.acked_seq, 1);	/* 1 still holds the head */
	assert_int_equal(st.depth_msgs, 3);
	assert_int_equal(st.inflight, 1);
	assert_int_equal(queue_next(e->q, &r), QUEUE_WINDOW_FULL);

	assert_int_equal(queue_ack(e->q, 1), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.acked_seq, 4);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 4);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 5);
	assert_int_equal(queue_ack(e->q, 5), QUEUE_OK);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);

	/* Restart: 5 was acked but 4 was not, so both come back. */
	qopen(e, NULL);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 4);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 5);
}

static void
test_rewind(void **state)
{
	struct env	*e = *state;
	struct queue_rec r;
	int		 i;

	qopen(e, NULL);
	for (i = 1; i <= 5; i++)
		assert_int_equal(append_n(e, i, 0, NULL), QUEUE_OK);
	for (i = 1; i <= 4; i++)
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);

	queue_rewind(e->q);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 1);
	assert_true(r.dup);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 1);
	assert_true(r.dup);
	assert_int_equal(payload_id(&r), 1);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 3);
	assert_true(r.dup);
	/* A second reconnect in the middle starts over. */
	queue_rewind(e->q);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 3);
	assert_true(r.dup);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 4);
	assert_true(r.dup);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 5);
	assert_false(r.dup);
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	for (i = 3; i <= 5; i++)
		assert_int_equal(queue_ack(e->q, (uint64_t)i), QUEUE_OK);
}

/* A write function that fails once, after letting `partial` bytes through. */
struct failer {
	bool	 armed;
	size_t	 partial;
	int	 err;
};

static ssize_t
failing_write(void *arg, int fd, const struct iovec *iov, int iovcnt)
{
	struct failer	*f = arg;
	size_t		 left = f->partial;
	int		 i;

	if (!f->armed)
		return writev(fd, iov, iovcnt);
	f->armed = false;
	for (i = 0; i < iovcnt && left > 0; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		if (write(fd, iov[i].iov_base, n) != (ssize_t)n)
			return -1;
		left -= n;
	}
	errno = f->err;
	return -1;
}

static void
test_disk_full(void **state)
{
	struct env	*e = *state;
	static const size_t partials[] = { 0, 1, 10, 36, 50 };
	struct queue_stats st;
	struct failer	 f = { false, 0, ENOSPC };
	char		 path[256];
	off_t		 before;
	int		 ids[16], i;
	size_t		 p;

	e->opts.write_fn = failing_write;
	e->opts.write_arg = &f;
	qopen(e, NULL);
	assert_int_equal(append_n(e, 1, 20, NULL), QUEUE_OK);
	last_segment(e, path, sizeof(path));
	for (p = 0; p < sizeof(partials) / sizeof(partials[0]); p++) {
		before = file_size(path);
		f.armed = true;
		f.partial = partials[p];
		f.err = p % 2 ? EIO : ENOSPC;
		assert_int_equal(append_n(e, 100, 20, NULL),
		    p % 2 ? QUEUE_IO : QUEUE_NOSPACE);
		assert_int_equal(file_size(path), before);
		/* The next one goes through. */
		assert_int_equal(append_n(e, (int)p + 2, 20, NULL), QUEUE_OK);
	}
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_DISK], 5);
	assert_int_equal(st.depth_msgs, 6);
	qopen(e, NULL);
	assert_int_equal(drain(e, ids, 16), 6);
	for (i = 0; i < 6; i++)
		assert_int_equal(ids[i], i + 1);
	/* f lives on this stack: the queue must not write through it later
	 * (teardown's close) */
	qclose(e);
}

/* Per-message state lives on disk: RAM is the same for 10 and 50,000. */
static void
test_memory_flat(void **state)
{
	struct env	*e = *state;
	struct queue_stats st;
	struct queue_rec r;
	size_t		 small, big;
	int		 i;

	e->opts.segment_max = 16u << 20;
	qopen(e, NULL);
	for (i = 1; i <= 10; i++)
		assert_int_equal(append_n(e, i, 30, NULL), QUEUE_OK);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_OK);
	queue_stats(e->q, &st);
	small = st.mem_bytes;
	for (; i <= 50000; i++)
		assert_int_equal(append_n(e, i, 30, NULL), QUEUE_OK);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_OK);
	queue_stats(e->q, &st);
	big = st.mem_bytes;
	assert_int_equal(st.depth_msgs, 50000);
	assert_int_equal(small, big);

	/* Reading it all through the window does not grow it either. */
	while (queue_next(e->q, &r) == QUEUE_OK)
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.mem_bytes, big);
	assert_int_equal(st.depth_msgs, 0);

	/* And a restart with 50,000 queued needs no more than that. */
	for (i = 1; i <= 50000; i++)
		assert_int_equal(append_n(e, i, 30, NULL), QUEUE_OK);
	qopen(e, NULL);
	assert_int_equal(queue_peek(e->q, &r), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_msgs, 50000);
	assert_int_equal(st.mem_bytes, big);
}

static void
test_durable_and_checkpoint(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_rec r;
	struct queue	*other = NULL;
	char		 path[256];
	uint64_t	 seq;
	int		 fd, k;

	e->opts.fsync = QUEUE_FSYNC_INTERVAL;
	qopen(e, NULL);
	assert_int_equal(queue_open(e->dir, &e->opts, &other, NULL),
	    QUEUE_LOCKED);
	assert_null(other);
	assert_int_equal(append_n(e, 1, 0, &seq), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) < seq);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_int_equal(queue_durable_seq(e->q), seq);

	e->opts.fsync = QUEUE_FSYNC_ALWAYS;
	qopen(e, NULL);
	assert_int_equal(append_n(e, 2, 0, &seq), QUEUE_OK);
	assert_int_equal(queue_durable_seq(e->q), seq);
	assert_int_equal(append_n(e, 3, 0, &seq), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.durable_seq, seq);
	assert_int_equal(st.oldest_ms, 1001);

	/*
	 * Ack 1 and checkpoint it. Damage one checkpoint slot: the other one
	 * holds. Damage both: 1 comes back.
	 */
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.oldest_ms, 1002);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	qopen(e, &rep);
	assert_int_equal(rep.acked, 2);
	assert_int_equal(rep.records, 2);
	queue_close(e->q);
	e->q = NULL;
	for (k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/checkpoint%s", e->dir,
		    k == 0 ? "" : ".1");
		fd = open(path, O_RDWR);
		assert_true(fd != -1);
		assert_int_equal(pwrite(fd, "X", 1, 17), 1);
		close(fd);
		qopen(e, &rep);
		assert_int_equal(rep.checkpoint_bad, k == 1);
		assert_int_equal(rep.records, k == 0 ? 2 : 3);
		queue_close(e->q);
		e->q = NULL;
	}
	qopen(e, &rep);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(payload_id(&r), 1);
}

static void
test_open_errors(void **state)
{
	struct env	*e = *state;
	struct queue	*q = NULL;
	struct queue_opts o = e->opts;
	char		 path[256];

	snprintf(path, sizeof(path), "%s/missing/queue", e->dir);
	assert_int_equal(queue_open(path, &e->opts, &q, NULL), QUEUE_IO);
	assert_null(q);
	o.segment_max = 10;
	assert_int_equal(queue_open(e->dir, &o, &q, NULL), QUEUE_INVALID);
	o = e->opts;
	o.inflight_max = 0;
	assert_int_equal(queue_open(e->dir, &o, &q, NULL), QUEUE_INVALID);
	/* A new queue directory is created. */
	snprintf(path, sizeof(path), "%s/q", e->dir);
	assert_int_equal(queue_open(path, &e->opts, &q, NULL), QUEUE_OK);
	queue_close(q);
	rm_dir(path);
	queue_close(NULL);
}

/* Copy the flat directory src to dst (created), as a crash would leave it. */
static void
copy_dir(const char *src, const char *dst)
{
	struct dirent	*de;
	char		 from[512], to[512];
	uint8_t		 buf[8192];
	ssize_t		 n;
	DIR		*d;
	int		 in, out;

	assert_true(mkdir(dst, 0700) == 0 || errno == EEXIST);
	assert_non_null(d = opendir(src));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", dst, de->d_name);
		assert_true((in = open(from, O_RDONLY)) != -1);
		assert_true((out = open(to, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) != -1);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			assert_int_equal(write(out, buf, (size_t)n), n);
		close(in);
		close(out);
	}
	closedir(d);
}

/* Open a copy of tests/data/queue/NAME as e's queue. */
static void
open_fixture(struct env *e, const char *name, struct queue_recovery *rep)
{
	char	 src[512];

	snprintf(src, sizeof(src), "%s/queue/%s", IOTB_TEST_DATA, name);
	rm_dir(e->dir);
	copy_dir(src, e->dir);
	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	qopen(e, rep);
}

/* Record i of the fixture, as tests/data/queue/gen-v1.c wrote it. */
static void
check_fixture_record(const struct queue_rec *r, int i)
{
	char	 topic[32];
	size_t	 k;

	assert_true(r->seq == (uint64_t)i);
	assert_true(r->time_ms == 1700000000000ull + 1000ull * (uint64_t)i);
	assert_int_equal(r->msg.qos, i % 3);
	assert_int_equal(r->msg.flags, 0x10 + i);
	snprintf(topic, sizeof(topic), "fixture/%d", i);
	assert_true(buf_view_eq(r->msg.topic, buf_cstr(topic)));
	if (i % 2 == 0) {
		assert_int_equal(r->msg.props.len, 2);
		assert_memory_equal(r->msg.props.ptr, "\x01\x01", 2);
	} else
		assert_int_equal(r->msg.props.len, 0);
	assert_int_equal(r->msg.payload.len, 400 * (size_t)(i % 7) + 17);
	for (k = 0; k < r->msg.payload.len; k++)
		assert_int_equal(r->msg.payload.ptr[k], 'a' + (i + (int)k) % 26);
	assert_true(r->msg.expiry_ms == 0);
}

/*
 * A queue written by version 1 code opens with this code: every record, in
 * order, with all its fields; new records go to a new segment in version 2;
 * the old segments go once acknowledged; nothing is reported lost.
 */
static void
test_upgrade_v1(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_rec r;
	char		 path[256];
	int		 i;

	open_fixture(e, "v1/clean", &rep);
	assert_int_equal(rep.checkpoint_version, 1);
	assert_int_equal(rep.segments, 5);
	assert_int_equal(rep.segments_old, 5);
	assert_int_equal(rep.segments_bad, 0);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.torn_bytes, 0);
	assert_int_equal(rep.skipped_bytes, 0);
	assert_int_equal(rep.records, 10);
	for (i = 5; i <= 14; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		check_fixture_record(&r, i);
		if (i <= 9)
			assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	/* New records follow, in a version 2 segment. */
	assert_int_equal(append_n(e, 15, 0, NULL), QUEUE_OK);
	snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 15);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT], 0);

	/* A restart: the unacknowledged v1 records, then the v2 one. */
	qopen(e, &rep);
	assert_int_equal(rep.checkpoint_version, 2);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.records, 6);
	for (i = 10; i <= 15; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		if (i < 15)
			check_fixture_record(&r, i);
		else
			assert_int_equal(payload_id(&r), 15);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_int_equal(count_segments(e), 1);		/* only version 2 */
	qopen(e, &rep);
	assert_int_equal(rep.segments_old, 0);
	assert_int_equal(rep.records, 0);
	assert_int_equal(rep.lost, 0);
}

/*
 * Version 1 deleted a segment as soon as its records were acknowledged and
 * wrote the checkpoint later: crash/ is such a crash, where version 1's
 * recovery reported 4 records lost that had all been delivered.
 */
static void
test_upgrade_v1_crash(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_rec r;
	int		 i;

	open_fixture(e, "v1/crash", &rep);
	assert_int_equal(rep.checkpoint_version, 1);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.records, 9);
	assert_int_equal(rep.acked, 6);
	/* 6 and 7 were acknowledged after the last checkpoint: resent. */
	for (i = 6; i <= 14; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		check_fixture_record(&r, i);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
}

/* A file a later version wrote: the open fails and nothing is touched. */
static void
test_newer_version_refused(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue	*q = NULL;
	struct stat	 before, after;
	char		 path[256];
	uint8_t		 h[40];
	uint32_t	 crc;
	int		 fd, k;

	for (k = 0; k < 2; k++) {
		fill(e, 3, 10);
		if (k == 0)
			snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 1);
		else
			snprintf(path, sizeof(path), "%s/checkpoint", e->dir);
		/* the same header, as version 3 would keep it */
		assert_true((fd = open(path, O_RDWR)) != -1);
		assert_int_equal(pread(fd, h, sizeof(h), 0), sizeof(h));
		h[8] = 3;
		crc = crc32c_update(0, h, 32);
		h[32] = (uint8_t)crc;
		h[33] = (uint8_t)(crc >> 8);
		h[34] = (uint8_t)(crc >> 16);
		h[35] = (uint8_t)(crc >> 24);
		assert_int_equal(pwrite(fd, h, sizeof(h), 0), sizeof(h));
		close(fd);
		assert_int_equal(stat(path, &before), 0);
		assert_int_equal(queue_open(e->dir, &e->opts, &q, &rep),
		    QUEUE_VERSION);
		assert_null(q);
		assert_int_equal(rep.newer_version, 3);
		assert_int_equal(stat(path, &after), 0);
		assert_int_equal(before.st_size, after.st_size);
		assert_int_equal(count_segments(e), 1);
		assert_string_equal(queue_strerror(QUEUE_VERSION),
		    "queue written by a newer version of iotbridge");

		/* The same bytes with a broken CRC are damage, not "newer". */
		assert_true((fd = open(path, O_RDWR)) != -1);
		h[33] ^= 0xff;
		assert_int_equal(pwrite(fd, h, sizeof(h), 0), sizeof(h));
		close(fd);
		qopen(e, &rep);
		assert_int_equal(rep.newer_version, 0);
		if (k == 0)
			assert_int_equal(rep.segments_bad, 1);
		else	/* the other slot holds */
			assert_int_equal(rep.checkpoint_version, 2);
	}
}

/* The expiry a caller gives comes back, across a restart too. */
static void
test_expiry(void **state)
{
	struct env	*e = *state;
	struct queue_stats st;
	struct queue_rec r;
	struct queue_msg m;

	qopen(e, NULL);
	memset(&m, 0, sizeof(m));
	m.qos = 1;
	m.topic = buf_cstr("e/x");
	m.payload = buf_cstr("pub_req1");
	m.expiry_ms = 1700000099000ull;
	assert_int_equal(queue_append(e->q, &m, 5, NULL), QUEUE_OK);
	m.expiry_ms = 0;
	m.payload = buf_cstr("pub_req2");
	assert_int_equal(queue_append(e->q, &m, 6, NULL), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.depth_bytes, 2 * (REC_HDR + 3 + 8) + 10);
	qopen(e, NULL);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_true(r.msg.expiry_ms == 1700000099000ull);
	assert_int_equal(payload_id(&r), 1);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_true(r.msg.expiry_ms == 0);
}

/* Fill segments of three ~1 KiB records each; ack the first n records. */
static void
fill_ack(struct env *e, int total, int n)
{
	struct queue_rec r;
	int		 i;

	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	qopen(e, NULL);
	for (i = 1; i <= total; i++)
		assert_int_equal(append_n(e, i, 1000, NULL), QUEUE_OK);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	for (i = 1; i <= n; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	}
}

/*
 * Issue 16: a crash between acknowledgements that emptied segments and the
 * checkpoint saying so. Version 1 had deleted those segments already and
 * reported their records lost; now they are deleted only behind a durable
 * checkpoint, and the crash loses nothing and reports nothing.
 */
static void
test_crash_before_checkpoint(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_stats st;
	char		 crash[128];
	int		 ids[32];

	fill_ack(e, 20, 9);		/* three whole segments acknowledged */
	assert_int_equal(count_segments(e), 7);
	snprintf(crash, sizeof(crash), "%s.crash", e->dir);
	copy_dir(e->dir, crash);	/* SIGKILL now */
	queue_close(e->q);
	e->q = NULL;
	rm_dir(e->dir);
	mkdir(e->dir, 0700);
	copy_dir(crash, e->dir);
	rm_dir(crash);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.records, 20);	/* all resent: at least once */
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT], 0);
	assert_int_equal(drain(e, ids, 32), 20);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[19], 20);
}

/*
 * The other side of the same window: the checkpoint is durable and the
 * segments behind it not yet deleted (the crash falls in the job, between
 * the checkpoint's fdatasync and its unlinks). They are retired again,
 * quietly.
 */
struct snap {
	const char	*dir;
	char		 to[128];
	bool		 armed;
	bool		 taken;
};

static int
snap_fsync(void *arg, int fd)
{
	struct snap	*sn = arg;
	struct stat	 sb, slot;
	char		 path[256];
	int		 i;

	assert_int_equal(fstat(fd, &sb), 0);
	for (i = 0; i < 2 && sn->armed && !sn->taken; i++) {
		snprintf(path, sizeof(path), "%s/checkpoint%s", sn->dir,
		    i == 0 ? "" : ".1");
		if (stat(path, &slot) == 0 && slot.st_ino == sb.st_ino) {
			/* the fdatasync that makes the checkpoint durable */
			assert_int_equal(fdatasync(fd), 0);
			copy_dir(sn->dir, sn->to);
			sn->taken = true;
			return 0;
		}
	}
	return S_ISDIR(sb.st_mode) ? fsync(fd) : fdatasync(fd);
}

static void
test_crash_before_unlink(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct snap	 sn = { .dir = e->dir };
	int		 ids[32];

	snprintf(sn.to, sizeof(sn.to), "%s.snap", e->dir);
	e->opts.fsync = QUEUE_FSYNC_INTERVAL;
	e->opts.fsync_fn = snap_fsync;
	e->opts.fsync_arg = &sn;
	fill_ack(e, 20, 9);
	sn.armed = true;
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_true(sn.taken);
	assert_int_equal(count_segments(e), 4);	/* deleted after the copy */
	queue_close(e->q);
	e->q = NULL;
	rm_dir(e->dir);
	mkdir(e->dir, 0700);
	copy_dir(sn.to, e->dir);
	rm_dir(sn.to);
	assert_int_equal(count_segments(e), 7);
	e->opts.fsync_fn = NULL;
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.acked, 10);
	assert_int_equal(rep.records, 11);
	assert_int_equal(drain(e, ids, 32), 11);
	assert_int_equal(ids[0], 10);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_int_equal(count_segments(e), 1);
}

/*
 * A lost checkpoint on a drained queue: only the tail segment is left, and
 * the numbers before it were all delivered. Version 1 reported every one of
 * them lost (10,408 in the issue).
 */
static void
test_lost_checkpoint_drained(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_rec r;
	char		 path[256];
	int		 ids[32];

	fill_ack(e, 20, 20);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	queue_close(e->q);
	e->q = NULL;
	assert_int_equal(count_segments(e), 1);
	snprintf(path, sizeof(path), "%s/checkpoint", e->dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/checkpoint.1", e->dir);
	assert_int_equal(unlink(path), 0);
	qopen(e, &rep);
	assert_true(rep.checkpoint_missing);
	assert_int_equal(rep.lost, 0);
	/* the tail's records come again (at least once), nothing else */
	assert_int_equal(rep.records, 2);
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT], 0);
	assert_int_equal(drain(e, ids, 32), 2);
	assert_int_equal(ids[0], 19);
	assert_int_equal(append_n(e, 21, 0, NULL), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 21);
}

/*
 * With a version 2 checkpoint at hand, a segment missing before the first
 * one present is data the file system lost: its records are counted, once.
 */
static void
test_first_segment_missing(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	char		 path[256];
	int		 ids[32];

	fill_ack(e, 9, 1);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);	/* checkpoint 2 */
	queue_close(e->q);
	e->q = NULL;
	snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 1);
	assert_int_equal(unlink(path), 0);		/* 1..3 */
	qopen(e, &rep);
	assert_int_equal(rep.acked, 2);
	assert_int_equal(rep.lost, 2);			/* 2 and 3 */
	assert_int_equal(rep.records, 6);
	assert_int_equal(drain(e, ids, 32), 6);
	assert_int_equal(ids[0], 4);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
}

/*
 * Whole records cut from the tail (a file system that lost the end of a
 * file it had said was on disk): the checkpoint written at close says they
 * were durable, so they are counted lost, once, and their numbers are not
 * given to new records.
 */
static void
test_tail_records_cut(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	struct queue_rec r;
	char		 path[256];
	int		 ids[16];

	fill(e, 10, 20);
	last_segment(e, path, sizeof(path));
	assert_int_equal(truncate(path, SEG_HDR + 7 * (REC_HDR + 3 + 20)), 0);
	qopen(e, &rep);
	assert_int_equal(rep.records, 7);
	assert_int_equal(rep.torn_bytes, 0);
	assert_int_equal(rep.lost, 3);
	assert_int_equal(append_n(e, 11, 0, NULL), QUEUE_OK);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.records, 8);
	assert_int_equal(drain(e, ids, 16), 8);
	assert_int_equal(ids[6], 7);
	assert_int_equal(ids[7], 11);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(queue_next(e->q, &r), QUEUE_EMPTY);
	assert_int_equal(append_n(e, 12, 0, NULL), QUEUE_OK);
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(r.seq, 12);
}

/*
 * The last segment unreadable (its header destroyed) after one that ends in
 * damage: new records go to a new segment, never after that damage; the
 * last segment's records count as lost (the closed queue said they were
 * durable); the next start is clean. Found by fuzz_queue.
 */
static void
test_dead_last_segment(void **state)
{
	struct env	*e = *state;
	struct queue_recovery rep;
	uint8_t		 junk[100];
	char		 path[256];
	int		 ids[16], fd;

	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	fill(e, 9, 1000);	/* three segments of three records */
	memset(junk, 0xee, sizeof(junk));
	snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 4);
	assert_true((fd = open(path, O_WRONLY | O_APPEND)) != -1);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	snprintf(path, sizeof(path), "%s/%016x.seg", e->dir, 7);
	assert_true((fd = open(path, O_WRONLY)) != -1);
	assert_int_equal(pwrite(fd, junk, 8, 0), 8);
	close(fd);
	qopen(e, &rep);
	assert_int_equal(rep.segments_bad, 1);
	assert_int_equal(rep.records, 6);
	assert_int_equal(rep.lost, 3);
	assert_int_equal(rep.skipped_bytes, sizeof(junk));
	assert_int_equal(append_n(e, 10, 0, NULL), QUEUE_OK);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.torn_bytes, 0);
	assert_int_equal(rep.records, 7);
	assert_int_equal(drain(e, ids, 16), 7);
	assert_int_equal(ids[5], 6);
	assert_int_equal(ids[6], 10);
}

/* A fsync hook the tests steer: fail with err while armed, count calls. */
struct syncer {
	int		 err;		/* 0: let it through */
	bool		 dir_only;	/* fail the directory only */
	int		 calls;
	int		 delay_us;	/* a disk this slow */
	bool		 fake;		/* and no real fsync behind it */
};

static int
test_fsync(void *arg, int fd)
{
	struct syncer	*sy = arg;
	struct stat	 sb;
	bool		 dir;

	assert_int_equal(fstat(fd, &sb), 0);
	dir = S_ISDIR(sb.st_mode);
	__atomic_add_fetch(&sy->calls, 1, __ATOMIC_SEQ_CST);
	if (sy->delay_us > 0)
		usleep((useconds_t)sy->delay_us);
	if (sy->err != 0 && (!sy->dir_only || dir)) {
		errno = sy->err;
		return -1;
	}
	if (sy->fake)
		return 0;
	return dir ? fsync(fd) : fdatasync(fd);
}

/*
 * deferred_sync: appends never sync, whatever the policy; a job prepared
 * now makes them durable when completed; what the scheduler sees.
 */
static void
test_sync_job(void **state)
{
	struct env	*e = *state;
	struct queue_sync_job *job, *other;
	struct queue_sync_info si;
	struct syncer	 sy = { 0 };
	uint64_t	 seq;
	int		 i;

	e->opts.fsync = QUEUE_FSYNC_ALWAYS;
	e->opts.deferred_sync = true;
	e->opts.fsync_fn = test_fsync;
	e->opts.fsync_arg = &sy;
	qopen(e, NULL);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);	/* what open left */
	queue_sync_info(e->q, &si);
	assert_false(si.pending);
	assert_int_equal(queue_sync_prepare(e->q, &job), QUEUE_EMPTY);
	assert_null(job);
	sy.calls = 0;
	for (i = 1; i <= 3; i++)
		assert_int_equal(append_n(e, i, 10, &seq), QUEUE_OK);
	assert_int_equal(sy.calls, 0);		/* nothing waited */
	assert_true(queue_durable_seq(e->q) == 0);
	queue_sync_info(e->q, &si);
	assert_int_equal(si.unsynced_msgs, 3);
	assert_int_equal(si.unsynced_bytes, 3 * (REC_HDR + 3 + 10));
	assert_int_equal(si.unsynced_since_ms, 1001);
	assert_true(si.pending);
	assert_false(si.in_progress);

	assert_int_equal(queue_sync_prepare(e->q, &job), QUEUE_OK);
	assert_true(queue_sync_job_seq(job) == 3);
	assert_int_equal(queue_sync_prepare(e->q, &other), QUEUE_BUSY);
	assert_null(other);
	assert_int_equal(queue_sync(e->q), QUEUE_BUSY);
	/* appends go on while the job is out: they are the next job's */
	assert_int_equal(append_n(e, 4, 10, &seq), QUEUE_OK);
	queue_sync_info(e->q, &si);
	assert_true(si.in_progress);
	assert_int_equal(si.unsynced_msgs, 4);
	assert_int_equal(si.unsynced_since_ms, 1001);
	assert_int_equal(queue_sync_run(job), QUEUE_OK);
	assert_true(sy.calls >= 1);
	assert_true(queue_durable_seq(e->q) == 0);	/* until complete */
	assert_int_equal(queue_sync_complete(e->q, job), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == 3);
	queue_sync_info(e->q, &si);
	assert_int_equal(si.unsynced_msgs, 1);
	assert_int_equal(si.unsynced_since_ms, 1004);
	assert_false(si.in_progress);
	assert_true(si.pending);

	/* the data-only job: no checkpoint even when one is due */
	assert_int_equal(drain(e, (int[8]){ 0 }, 8), 4);
	queue_sync_info(e->q, &si);
	assert_true(si.checkpoint_seq < 5);
	assert_int_equal(queue_sync_prepare_data(e->q, &job), QUEUE_OK);
	assert_int_equal(queue_sync_run(job), QUEUE_OK);
	assert_int_equal(queue_sync_complete(e->q, job), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == 4);
	queue_sync_info(e->q, &si);
	assert_true(si.checkpoint_seq < 5);
	assert_true(si.pending);		/* the checkpoint */
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	queue_sync_info(e->q, &si);
	assert_true(si.checkpoint_seq == 5);
	assert_false(si.pending);
	assert_int_equal(si.unsynced_msgs, 0);
	qclose(e);
}

/*
 * A job that fails (EIO from fsync) advances nothing: not the durable
 * position, not the checkpoint, no deletion; a later job retries all of it.
 * The same when only the directory fsync of a new segment fails (issue 16:
 * durable used to advance before that one succeeded), and for a job
 * cancelled without running.
 */
static void
test_sync_job_fails(void **state)
{
	struct env	*e = *state;
	struct queue_sync_job *job;
	struct queue_sync_info si;
	struct queue_stats st;
	struct queue_recovery rep;
	struct syncer	 sy = { 0 };
	int		 i, k;

	e->opts.fsync = QUEUE_FSYNC_INTERVAL;
	e->opts.deferred_sync = true;
	e->opts.fsync_fn = test_fsync;
	e->opts.fsync_arg = &sy;
	fill_ack(e, 9, 3);		/* first segment acknowledged */
	for (k = 0; k < 3; k++) {
		/* 3 more records: the last opens a new segment */
		for (i = 0; i < 3; i++)
			assert_int_equal(append_n(e, 10 + 3 * k + i, 1000,
			    NULL), QUEUE_OK);
		queue_stats(e->q, &st);
		sy.err = EIO;
		sy.dir_only = k == 1;
		assert_int_equal(queue_sync_prepare(e->q, &job), QUEUE_OK);
		if (k < 2)
			assert_int_equal(queue_sync_run(job), QUEUE_IO);
		errno = 0;
		assert_int_equal(queue_sync_complete(e->q, job), QUEUE_IO);
		assert_int_equal(errno, k < 2 ? EIO : ECANCELED);
		assert_true(queue_durable_seq(e->q) == st.durable_seq);
		queue_sync_info(e->q, &si);
		assert_int_equal(si.unsynced_msgs, 3 * (k + 1));
		assert_true(si.checkpoint_seq == 0);
		assert_true(si.pending);
		assert_int_equal(count_segments(e), 4 + k);
	}
	sy.err = 0;
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == 18);
	queue_sync_info(e->q, &si);
	assert_int_equal(si.unsynced_msgs, 0);
	assert_true(si.checkpoint_seq == 4);
	assert_int_equal(count_segments(e), 5);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.records, 15);
	qclose(e);
}

/* Without deferred_sync, fsync always syncs in the append: a failed sync
 * refuses the record and cuts it off, as a failed write does. */
static void
test_always_inline_fails(void **state)
{
	struct env	*e = *state;
	struct syncer	 sy = { 0 };
	struct queue_stats st;
	char		 path[256];
	off_t		 before;
	uint64_t	 seq;
	int		 ids[8];

	e->opts.fsync = QUEUE_FSYNC_ALWAYS;
	e->opts.fsync_fn = test_fsync;
	e->opts.fsync_arg = &sy;
	qopen(e, NULL);
	assert_int_equal(append_n(e, 1, 10, &seq), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == seq);
	last_segment(e, path, sizeof(path));
	before = file_size(path);
	sy.err = EIO;
	assert_int_equal(append_n(e, 2, 10, NULL), QUEUE_IO);
	assert_int_equal(file_size(path), before);
	queue_stats(e->q, &st);
	assert_int_equal(st.drops[QUEUE_DROPPED_DISK], 1);
	assert_int_equal(st.depth_msgs, 1);
	sy.err = 0;
	assert_int_equal(append_n(e, 3, 10, &seq), QUEUE_OK);
	assert_true(seq == 2);
	assert_true(queue_durable_seq(e->q) == 2);
	qopen(e, NULL);
	assert_int_equal(drain(e, ids, 8), 2);
	assert_int_equal(ids[1], 3);
	qclose(e);
}

/*
 * fsync always, inline: the append that opens a new segment must also have
 * the directory synced (the new file's name) before it counts as durable
 * (issue 16 item 7). Through the fsync_fn hook, only the directory's fsync
 * fails: appends into the open segment stay durable one by one; the one
 * that needs a new segment is refused, durable does not move; it is taken
 * once the directory can be synced again.
 */
static void
test_always_new_segment_dir_fsync_fails(void **state)
{
	struct env	*e = *state;
	struct syncer	 sy = { .dir_only = true };
	uint64_t	 seq = 0, durable;
	enum queue_status st;
	int		 i, refused = 0, before;

	e->opts.fsync = QUEUE_FSYNC_ALWAYS;
	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	e->opts.fsync_fn = test_fsync;
	e->opts.fsync_arg = &sy;
	qopen(e, NULL);
	/* the open segment's name is synced with the first append */
	assert_int_equal(append_n(e, 0, 500, &seq), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == seq);
	before = count_segments(e);
	sy.err = EIO;
	for (i = 1; i <= 20 && refused == 0; i++) {
		durable = queue_durable_seq(e->q);
		st = append_n(e, i, 500, &seq);
		if (st == QUEUE_OK) {
			assert_true(queue_durable_seq(e->q) == seq);
		} else {
			assert_int_equal(st, QUEUE_IO);
			assert_true(queue_durable_seq(e->q) == durable);
			refused++;
		}
	}
	assert_int_equal(refused, 1);
	assert_true(i > 3);	/* not before the open segment was full */
	sy.err = 0;
	assert_int_equal(append_n(e, 99, 500, &seq), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == seq);
	assert_int_equal(count_segments(e), before + 1);
	qclose(e);
}

/*
 * Real threads: a worker runs each job (its fsyncs slowed) while this
 * thread appends, rolls segments, hands out and acknowledges, which retires
 * segments for the jobs to delete. Every job makes durable what it said,
 * nothing is lost, everything is in order after a restart.
 */
struct worker {
	pthread_t	 tid;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct queue_sync_job *job;	/* handed over, not yet run */
	struct queue_sync_job *done;	/* run, not yet completed */
	bool		 stop;
};

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct queue_sync_job *job;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->job == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->job == NULL)
			break;
		job = w->job;
		w->job = NULL;
		pthread_mutex_unlock(&w->mu);
		(void)queue_sync_run(job);
		pthread_mutex_lock(&w->mu);
		w->done = job;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
test_sync_threads(void **state)
{
	struct env	*e = *state;
	struct queue_sync_job *job, *done;
	struct queue_recovery rep;
	struct queue_rec r;
	struct syncer	 sy = { .delay_us = 100, .fake = true };
	struct worker	 w;
	uint64_t	 seq, want, durable = 0;
	int		 i, jobs = 0, ids[4096];
	size_t		 n;
	const int	 total = 3000;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	assert_int_equal(pthread_create(&w.tid, NULL, worker_main, &w), 0);
	e->opts.fsync = QUEUE_FSYNC_ALWAYS;
	e->opts.deferred_sync = true;
	e->opts.segment_max = QUEUE_SEGMENT_MIN;
	e->opts.inflight_max = 10;
	e->opts.fsync_fn = test_fsync;
	e->opts.fsync_arg = &sy;
	qopen(e, NULL);
	for (i = 1; i <= total; i++) {
		assert_int_equal(append_n(e, i, 200, &seq), QUEUE_OK);
		if (i % 50 == 0)
			usleep(200);	/* let jobs finish while we go on */
		/* hand out and acknowledge a little behind the appends */
		if (i % 2 == 0 && queue_next(e->q, &r) == QUEUE_OK)
			assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
		pthread_mutex_lock(&w.mu);
		done = w.done;
		w.done = NULL;
		pthread_mutex_unlock(&w.mu);
		if (done != NULL) {
			want = queue_sync_job_seq(done);
			assert_int_equal(queue_sync_complete(e->q, done),
			    QUEUE_OK);
			assert_true(queue_durable_seq(e->q) >= want);
			assert_true(queue_durable_seq(e->q) >= durable);
			durable = queue_durable_seq(e->q);
			jobs++;
		}
		if (!queue_sync_info_in_progress(e->q) &&
		    queue_sync_prepare(e->q, &job) == QUEUE_OK) {
			pthread_mutex_lock(&w.mu);
			w.job = job;
			pthread_cond_signal(&w.cv);
			pthread_mutex_unlock(&w.mu);
		}
	}
	/* the last jobs, until there is nothing left, then stop the worker */
	for (;;) {
		struct queue_sync_info si;

		pthread_mutex_lock(&w.mu);
		done = w.done;
		w.done = NULL;
		pthread_mutex_unlock(&w.mu);
		if (done != NULL) {
			assert_int_equal(queue_sync_complete(e->q, done),
			    QUEUE_OK);
			jobs++;
		}
		queue_sync_info(e->q, &si);
		if (!si.in_progress && !si.pending)
			break;
		if (!si.in_progress &&
		    queue_sync_prepare(e->q, &job) == QUEUE_OK) {
			pthread_mutex_lock(&w.mu);
			w.job = job;
			pthread_cond_signal(&w.cv);
			pthread_mutex_unlock(&w.mu);
		}
		usleep(100);
	}
	pthread_mutex_lock(&w.mu);
	w.stop = true;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(w.tid, NULL);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);

	assert_true(jobs >= 5);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	assert_true(queue_durable_seq(e->q) == (uint64_t)total);
	qopen(e, &rep);
	assert_int_equal(rep.lost, 0);
	assert_int_equal(rep.torn_bytes, 0);
	n = drain(e, ids, 4096);
	assert_int_equal(n, rep.records);
	assert_true(n > 0);
	for (i = 0; i < (int)n; i++)
		assert_int_equal(ids[i], total - (int)n + 1 + i);
	qclose(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_read_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_unacked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_drop_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_drop_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_oldest_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segments_roll_and_go, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_across_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_mid_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_and_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_always_new_segment_dir_fsync_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_v1_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_unlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_checkpoint_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_segment_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail_records_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_last_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_job_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_always_inline_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
