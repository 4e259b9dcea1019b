/*
 * libFuzzer target for queue recovery: the input becomes one or two segment
 * files and maybe a checkpoint in a scratch directory under /dev/shm, and the
 * queue is opened over them, drained, acked, appended to, closed and opened
 * again. Beyond "no crash, no leak" it checks what recovery promises: the
 * records handed out are exactly the ones recovery counted, in increasing
 * order, and walking past damage does not count it twice. No descriptor may
 * outlive the queue.
 *
 * Input: flags (1 byte), second segment's name (1 byte), length of the first
 * segment (2 bytes, little-endian), its bytes, length of the second (2
 * bytes), its bytes, and the rest is the checkpoint. When the name byte has
 * its high bit set, a third segment (name byte, length, bytes) comes before
 * the checkpoint.
 * flags: bit 0 second segment, bit 1 checkpoint, bit 2 drop newest, bit 3
 * max_messages 4 (else unlimited), bits 4-6 in-flight window - 1.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	uint64_t	 out;
	bool		 unlimited;
	int		 i, fd;

	if (size < 2 || size > 1 << 16)
		return 0;
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
	if (flags & 2)
		put_file("checkpoint", data, size);

	queue_opts_init(&o);
	o.segment_max = QUEUE_SEGMENT_MIN;
	o.fsync = QUEUE_FSYNC_NEVER;
	o.policy = flags & 4 ? QUEUE_DROP_NEWEST : QUEUE_DROP_OLDEST;
	unlimited = !(flags & 8);
	o.max_messages = unlimited ? -1 : 4;
	o.inflight_max = 1u + (flags >> 4 & 7);

	CHECK(queue_open(dir, &o, &q, &rep) == QUEUE_OK);
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
	for (i = 0; i < 6; i++)
		CHECK(queue_append(q, &m, (uint64_t)i, NULL) == QUEUE_OK ||
		    !unlimited);
	queue_rewind(q);
	(void)drain(q, true);
	for (i = 0; i < 2; i++)
		(void)queue_append(q, &m, 7, NULL);
	queue_close(q);
	q = NULL;

	/* What the first run left must open clean and hold the last appends. */
	CHECK(queue_open(dir, &o, &q, &rep) == QUEUE_OK);
	CHECK(rep.lost == 0 && rep.torn_bytes == 0 && rep.records == 2);
	CHECK(drain(q, false) == rep.records);
	queue_close(q);

	fd = open("/dev/null", O_RDONLY);
	CHECK(fd == base_fd);
	close(fd);
	return 0;
}
