/*
 * Unit tests for lib/queue: the CRC-32C check value, append/read/ack, restart,
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
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue/crc32c.h"
#include "queue/queue.h"

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
test_crc32c(void **state)
{
	const char	*s = "123456789";

	(void)state;
	assert_int_equal(crc32c_update(0, s, 9), 0xE3069283u);
	assert_int_equal(crc32c_update(crc32c_update(0, s, 4), s + 4, 5),
	    0xE3069283u);
	assert_int_equal(crc32c_update(0, NULL, 0), 0);
}

/* The eight-at-a-time path agrees with the byte-at-a-time one at every
 * length and alignment, and with RFC 3720's vectors when they are long. */
static void
test_crc32c_long(void **state)
{
	uint8_t		 buf[600], zeros[96] = { 0 };
	uint32_t	 x = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n + off <= 300; n++) {
			uint32_t one = 0;

			for (size_t i = 0; i < n; i++)	/* 1 byte: the slow path */
				one = crc32c_update(one, buf + off + i, 1);
			assert_int_equal(crc32c_update(0, buf + off, n), one);
		}
	/* RFC 3720 B.4: 32 zero bytes; then 96, which takes the fast path */
	assert_int_equal(crc32c_update(0, zeros, 32), 0x8A9136AAu);
	{
		uint32_t one = 0;

		for (size_t i = 0; i < sizeof(zeros); i++)
			one = crc32c_update(one, zeros + i, 1);
		assert_int_equal(crc32c_update(0, zeros, sizeof(zeros)), one);
	}
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
	assert_int_equal(st.depth_bytes, (36 + 3 + 2 + 5) + (36 + 3 + 8));
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
	const size_t	 rec = 36 + 3 + 100;	/* "t/N" and a 100-byte payload */
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

	/* Acking the first segment's three records deletes its file. */
	for (i = 1; i <= 3; i++) {
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(payload_id(&r), i);
	}
	assert_int_equal(queue_ack(e->q, 3), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, 2), QUEUE_OK);
	assert_int_equal(count_segments(e), 7);
	assert_int_equal(queue_ack(e->q, 1), QUEUE_OK);
	assert_int_equal(count_segments(e), 6);

	/* A restart sees the rest, across segments, in order. */
	qopen(e, &rep);
	assert_int_equal(rep.segments, 6);
	assert_int_equal(rep.records, 17);
	for (i = 4; i <= 20; i++) {
		before = count_segments(e);
		assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
		assert_int_equal(payload_id(&r), i);
		assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
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
	const size_t	 last = 36 + 3 + 40;

	fill(e, n, 40);
	last_segment(e, path, sizeof(path));
	size = file_size(path);
	start = size - (off_t)last;
	for (cut = start; cut <= size; cut++) {
		fill(e, n, 40);
		assert_int_equal(truncate(path, cut), 0);
		qopen(e, &rep);
		if (cut == size) {
			assert_int_equal(rep.records, n);
			assert_int_equal(rep.torn_bytes, 0);
		} else {
			assert_int_equal(rep.records, n - 1);
			assert_int_equal(rep.torn_bytes, cut - start);
			assert_int_equal(file_size(path), start);
		}
		assert_int_equal(rep.lost, 0);
		/* New appends go after the last whole record. */
		assert_int_equal(append_n(e, 7, 0, NULL), QUEUE_OK);
		qopen(e, &rep);
		assert_int_equal(rep.torn_bytes, 0);
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
	const size_t	 rec = 36 + 3 + pad;
	char		 path[256];
	uint8_t		 byte;
	int		 k, i, got, fd;
	size_t		 b, per_seg;
	off_t		 off;

	per_seg = (e->opts.segment_max - 32) / rec;
	for (k = 1; k <= n; k++) {
		for (b = 0; b < rec; b += b < 36 ? 1 : stride) {
			int	 seg = (k - 1) / (int)per_seg;
			int	 first = seg * (int)per_seg + 1;

			fill(e, n, pad);
			snprintf(path, sizeof(path), "%s/%016x.seg", e->dir,
			    (unsigned)first);
			off = (off_t)(32 + (size_t)(k - first) * rec + b);
			fd = open(path, O_RDWR);
			assert_true(fd != -1);
			assert_int_equal(pread(fd, &byte, 1, off), 1);
			byte ^= (uint8_t)(1u << (b % 8));
			assert_int_equal(pwrite(fd, &byte, 1, off), 1);
			close(fd);

			qopen(e, &rep);
			assert_int_equal(rep.records, n - 1);
			if (k == n) {
				assert_int_equal(rep.lost, 0);
				assert_int_equal(rep.torn_bytes, rec);
			} else {
				assert_int_equal(rep.lost, 1);
				assert_true(rep.skipped_bytes >= rec);
			}
			queue_stats(e->q, &st);
			assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT],
			    k == n ? 0 : 1);
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
			assert_int_equal(st.drops[QUEUE_DROPPED_CORRUPT],
			    k == n ? 0 : 1);
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
	assert_int_equal(pwrite(fd, junk, 2000, 32 + 1039 + 10), 2000);
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
	assert_int_equal(st.acked_seq, 0);	/* 1 still holds the head */
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
	queue_close(e->q);
	e->q = NULL;
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
	int		 fd;

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

	/* Ack 1, checkpoint it, then damage the checkpoint: 1 comes back. */
	assert_int_equal(queue_next(e->q, &r), QUEUE_OK);
	assert_int_equal(queue_ack(e->q, r.seq), QUEUE_OK);
	queue_stats(e->q, &st);
	assert_int_equal(st.oldest_ms, 1002);
	assert_int_equal(queue_sync(e->q), QUEUE_OK);
	snprintf(path, sizeof(path), "%s/checkpoint.tmp", e->dir);
	assert_int_equal(access(path, F_OK), -1);
	qopen(e, &rep);
	assert_int_equal(rep.acked, 2);
	assert_int_equal(rep.records, 2);
	queue_close(e->q);
	e->q = NULL;
	snprintf(path, sizeof(path), "%s/checkpoint", e->dir);
	fd = open(path, O_RDWR);
	assert_true(fd != -1);
	assert_int_equal(pwrite(fd, "X", 1, 17), 1);
	close(fd);
	qopen(e, &rep);
	assert_true(rep.checkpoint_bad);
	assert_int_equal(rep.records, 3);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_crc32c_long),
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
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
