/*
 * libFuzzer target for the queue's format and recovery. First the codec
 * (queue/qfmt.h): the whole input is decoded as a record, a segment header
 * and a checkpoint of every version; what decodes is encoded again and
 * decodes to the same fields. Then recovery: the input becomes one or two
 * segment files and maybe a checkpoint slot in a scratch directory under
 * /dev/shm, and the queue is opened over them, drained, acked, appended to,
 * closed and opened again. Beyond "no crash, no leak" it checks what
 * recovery promises: the records handed out are exactly the ones recovery
 * counted, in increasing order, walking past damage does not count it
 * twice, a queue this code closed reopens with nothing lost, and a later
 * version's queue is refused untouched. No descriptor may outlive the queue.
 *
 * Input: flags (1 byte), second segment's name (1 byte), length of the first
 * segment (2 bytes, little-endian), its bytes, length of the second (2
 * bytes), its bytes, and the rest is the checkpoint. When the name byte has
 * its high bit set, a third segment (name byte, length, bytes) comes before
 * the checkpoint. The checkpoint's first byte picks its slot (bit 0: the
 * second, checkpoint.1).
 * flags: bit 0 second segment, bit 1 checkpoint, bit 2 drop newest, bit 3
 * max_messages 4 (else unlimited), bits 4-6 in-flight window - 1, bit 7 acks
 * held back and given newest first.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/qfmt.h"
#include "queue/queue.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	 dir[64];
static int	 base_fd = -1;

#define CHECK(x)	do {						\
	if (!(x)) {							\
		fprintf(stderr, "fuzz_queue: line %d: %s\n", __LINE__, #x);	\
		abort();						\
	}								\
} while (0)

/* Empty the scratch directory; unlinking while reading may skip a name. */
static void
clear_dir(void)
{
	struct dirent	*de;
	char		 path[512];
	bool		 again = true;
	DIR		*d;

	while (again) {
		again = false;
		CHECK((d = opendir(dir)) != NULL);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			CHECK(unlink(path) == 0);
			again = true;
		}
		closedir(d);
	}
}

static void
put_file(const char *name, const uint8_t *p, size_t n)
{
	char	 path[512];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static size_t
take(const uint8_t **data, size_t *size, size_t want)
{
	size_t	 n = want < *size ? want : *size;

	*data += n;
	*size -= n;
	return n;
}

static size_t
take_len(const uint8_t **data, size_t *size)
{
	size_t	 n;

	if (*size < 2) {
		take(data, size, *size);
		return 0;
	}
	n = (size_t)((*data)[0] | (*data)[1] << 8);
	take(data, size, 2);
	return n;
}

static bool
view_same(struct buf_view a, struct buf_view b)
{
	return buf_view_eq(a, b);
}

/* Decode p as every item of every version; re-encode what decodes. */
static void
codec(const uint8_t *p, size_t n)
{
	static uint8_t	 out[QFMT_REC_HEAD_MAX + 3 * 65536];
	struct qfmt_rec	 r, r2;
	struct qfmt_seg	 sh, sh2;
	struct qfmt_ckpt ck, ck2;
	size_t		 len, hlen;
	uint64_t	 size;
	uint32_t	 v;

	for (v = 0; v <= QFMT_VERSION + 1; v++) {
		if (qfmt_rec_decode(v, p, n, &r) != QFMT_OK)
			continue;
		CHECK(qfmt_rec_min(v) > 0 && r.len <= n && r.qos <= 2);
		CHECK(qfmt_rec_view(v, p, n, &r2) == QFMT_OK);
		CHECK(qfmt_rec_head(v, p, n, &r2) == QFMT_OK && r2.len == r.len);
		CHECK(qfmt_rec_size(v, &r, &size) == QFMT_OK);
		CHECK(qfmt_rec_head_encode(v, out, sizeof(out), &r, &hlen) ==
		    QFMT_OK);
		len = hlen;
		memcpy(out + len, r.topic.ptr, r.topic.len);
		len += r.topic.len;
		memcpy(out + len, r.props.ptr, r.props.len);
		len += r.props.len;
		memcpy(out + len, r.payload.ptr, r.payload.len);
		len += r.payload.len;
		CHECK(len == size);
		CHECK(qfmt_rec_decode(v, out, len, &r2) == QFMT_OK);
		CHECK(r2.seq == r.seq && r2.time_ms == r.time_ms &&
		    r2.expiry_ms == r.expiry_ms && r2.qos == r.qos &&
		    r2.flags == r.flags && view_same(r2.topic, r.topic) &&
		    view_same(r2.props, r.props) &&
		    view_same(r2.payload, r.payload));
	}
	if (qfmt_seg_decode(p, n, &sh) == QFMT_OK) {
		CHECK(qfmt_seg_encode(out, sizeof(out), &sh, &len) == QFMT_OK);
		CHECK(len == qfmt_seg_hdr_len(sh.version) && len <= n);
		/* the same bytes, but for the trailing zero field */
		CHECK(memcmp(out, p, len - 4) == 0);
		CHECK(qfmt_seg_decode(out, len, &sh2) == QFMT_OK &&
		    sh2.version == sh.version && sh2.first_seq == sh.first_seq &&
		    sh2.counted_from == sh.counted_from);
	}
	if (qfmt_ckpt_decode(p, n, &ck) == QFMT_OK) {
		CHECK(qfmt_ckpt_encode(out, sizeof(out), &ck, &len) == QFMT_OK);
		CHECK(len == n);
		CHECK(memcmp(out, p, len - 4) == 0);
		CHECK(qfmt_ckpt_decode(out, len, &ck2) == QFMT_OK &&
		    ck2.version == ck.version && ck2.released == ck.released &&
		    ck2.durable == ck.durable);
	}
}

/* Hand out and ack everything; returns how many came out, in order. */
static uint64_t
drain(struct queue *q, bool ack_late)
{
	struct queue_rec r;
	enum queue_status st;
	uint64_t	 n = 0, last = 0, held[8];
	size_t		 nheld = 0, i;

	for (;;) {
		st = queue_next(q, &r);
		if (st == QUEUE_WINDOW_FULL || (st == QUEUE_EMPTY && nheld > 0)) {
			/* Newest first: out-of-order acks. */
			for (i = nheld; i-- > 0;)
				CHECK(queue_ack(q, held[i]) == QUEUE_OK);
			nheld = 0;
			continue;
		}
		if (st != QUEUE_OK)
			break;
		CHECK(r.seq > last);
		CHECK(r.msg.qos <= 2);
		last = r.seq;
		n++;
		if (ack_late && nheld < 8)
			held[nheld++] = r.seq;
		else
			CHECK(queue_ack(q, r.seq) == QUEUE_OK);
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_opts o;
	struct queue	*q = NULL;
	struct queue_msg m;
	const uint8_t	*p;
	uint8_t		 flags, name;
	char		 segname[32];
	size_t		 n;
	enum queue_status st0;
	uint64_t	 out, kept;
	bool		 unlimited, near_limit;
	int		 i, fd;

	if (size < 2 || size > 1 << 16)
		return 0;
	codec(data, size);
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/dev/shm/fuzz-queue.XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
	}
	/* The lowest free descriptor now and after the run must agree. Taken
	 * per run: libFuzzer itself keeps pipes to llvm-symbolizer open once it
	 * has printed a NEW_FUNC line between two runs. */
	base_fd = open("/dev/null", O_RDONLY);
	close(base_fd);
	clear_dir();
	flags = data[0];
	name = data[1];
	take(&data, &size, 2);
	p = data;
	n = take(&data, &size, take_len(&data, &size));
	put_file("0000000000000001.seg", p, n);
	if (flags & 1) {
		p = data;
		n = take(&data, &size, take_len(&data, &size));
		snprintf(segname, sizeof(segname), "%016x.seg", 2u + (name & 0x7f));
		put_file(segname, p, n);
	}
	if ((flags & 1) && (name & 0x80) && size > 0) {
		const uint8_t	*p3;
		size_t		 n3;

		snprintf(segname, sizeof(segname), "%016x.seg", 2u + data[0]);
		take(&data, &size, 1);
		p3 = data;
		n3 = take(&data, &size, take_len(&data, &size));
		put_file(segname, p3, n3);
	}
	if ((flags & 2) && size > 0)
		put_file(data[0] & 1 ? "checkpoint.1" : "checkpoint", data + 1,
		    size - 1);

	queue_opts_init(&o);
	o.segment_max = QUEUE_SEGMENT_MIN;
	o.fsync = QUEUE_FSYNC_NEVER;
	o.policy = flags & 4 ? QUEUE_DROP_NEWEST : QUEUE_DROP_OLDEST;
	unlimited = !(flags & 8);
	o.max_messages = unlimited ? -1 : 4;
	o.inflight_max = 1u + (flags >> 4 & 7);

	st0 = queue_open(dir, &o, &q, &rep);
	if (st0 == QUEUE_VERSION) {
		/* a later version's file: refused, nothing touched */
		CHECK(q == NULL && rep.newer_version > QFMT_VERSION);
		goto done;
	}
	CHECK(st0 == QUEUE_OK);
	queue_stats(q, &st);
	CHECK(st.depth_msgs == rep.records);
	CHECK(st.drops[QUEUE_DROPPED_CORRUPT] == rep.lost);
	out = drain(q, flags & 0x80);
	CHECK(out == rep.records);
	queue_stats(q, &st);
	CHECK(st.drops[QUEUE_DROPPED_CORRUPT] == rep.lost);
	CHECK(st.depth_msgs == 0 && st.inflight == 0);

	memset(&m, 0, sizeof(m));
	m.topic.ptr = (const uint8_t *)"fuzz/t";
	m.topic.len = 6;
	m.payload.ptr = p;
	m.payload.len = n < 3000 ? n : 3000;
	/* A checkpoint may hold any number below the limit: near it, the
	 * numbers run out, which appends report. */
	queue_stats(q, &st);
	near_limit = st.next_seq > QFMT_SEQ_LIMIT - 16;
	for (i = 0; i < 6; i++)
		CHECK(queue_append(q, &m, (uint64_t)i, NULL) == QUEUE_OK ||
		    !unlimited || near_limit);
	queue_rewind(q);
	(void)drain(q, true);
	for (i = 0, kept = 0; i < 2; i++)
		kept += queue_append(q, &m, 7, NULL) == QUEUE_OK;
	queue_close(q);
	q = NULL;

	/* What the first run left must open clean and hold the last appends. */
	CHECK(queue_open(dir, &o, &q, &rep) == QUEUE_OK);
	CHECK(rep.lost == 0 && rep.torn_bytes == 0 && rep.records == kept);
	CHECK(rep.checkpoint_version == QFMT_VERSION);
	CHECK(drain(q, false) == rep.records);
	queue_close(q);
done:
	fd = open("/dev/null", O_RDONLY);
	CHECK(fd == base_fd);
	close(fd);
	return 0;
}
