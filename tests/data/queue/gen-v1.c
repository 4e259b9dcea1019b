/*
 * How tests/data/queue/v1/ was made: built against lib/queue as it was at
 * commit b9096f6 (format version 1), the last code that wrote that format;
 * it does not build against later trees. Kept so that the fixture can be
 * read as what it is: the files today's users have on their gateways.
 *
 *	cc -I lib -o gen-v1 tests/data/queue/gen-v1.c build/gcc/lib/libiotbridge.a
 *	./gen-v1 tests/data/queue/v1
 *
 * Two directories, both with 4 KiB segments:
 *   clean/	records 1..14 appended, 1..4 acknowledged, closed cleanly
 *		(checkpoint 5, the first segment deleted).
 *   crash/	records 1..14 appended, 1 acknowledged and synced (checkpoint
 *		2), then 2..7 acknowledged, which deleted two segments at once,
 *		and copied before any further sync: a crash between segment
 *		deletion and checkpoint, as version 1 code left it.
 * Record i (1-based): QoS i % 3, flags 0x10 + i, topic "fixture/<i>",
 * properties "\x01\x01" when i is even (none when odd), payload of
 * 400 * (i % 7) + 17 bytes, byte k being 'a' + (i + k) % 26, append time
 * 1700000000000 + 1000 * i.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "queue/queue.h"

static void
die(const char *what, enum queue_status st)
{
	fprintf(stderr, "gen-v1: %s: %s\n", what, queue_strerror(st));
	exit(1);
}

static void
fill(struct queue *q, int n)
{
	char topic[32];
	static uint8_t payload[4096];
	struct queue_msg m;
	enum queue_status st;

	for (int i = 1; i <= n; i++) {
		size_t plen = 400 * (size_t)(i % 7) + 17;

		for (size_t k = 0; k < plen; k++)
			payload[k] = (uint8_t)('a' + (i + (int)k) % 26);
		snprintf(topic, sizeof(topic), "fixture/%d", i);
		memset(&m, 0, sizeof(m));
		m.qos = (uint8_t)(i % 3);
		m.flags = (uint8_t)(0x10 + i);
		m.topic = buf_cstr(topic);
		if (i % 2 == 0)
			m.props = (struct buf_view){ (const uint8_t *)"\x01\x01", 2 };
		m.payload = (struct buf_view){ payload, plen };
		if ((st = queue_append(q, &m, 1700000000000ull + 1000ull * i,
		    NULL)) != QUEUE_OK)
			die("append", st);
	}
}

static void
take_ack(struct queue *q, int n)
{
	struct queue_rec r;
	enum queue_status st;

	for (int i = 0; i < n; i++) {
		if ((st = queue_next(q, &r)) != QUEUE_OK)
			die("next", st);
		if ((st = queue_ack(q, r.seq)) != QUEUE_OK)
			die("ack", st);
	}
}

int
main(int argc, char **argv)
{
	struct queue_opts o;
	struct queue *q;
	enum queue_status st;
	char path[512], cmd[1200];

	if (argc != 2)
		return 2;
	mkdir(argv[1], 0755);
	queue_opts_init(&o);
	o.segment_max = QUEUE_SEGMENT_MIN;
	o.fsync = QUEUE_FSYNC_INTERVAL;

	snprintf(path, sizeof(path), "%s/clean", argv[1]);
	if ((st = queue_open(path, &o, &q, NULL)) != QUEUE_OK)
		die("open clean", st);
	fill(q, 14);
	take_ack(q, 4);
	queue_close(q);

	snprintf(path, sizeof(path), "%s/crash.tmp", argv[1]);
	if ((st = queue_open(path, &o, &q, NULL)) != QUEUE_OK)
		die("open crash", st);
	fill(q, 14);
	take_ack(q, 1);
	if ((st = queue_sync(q)) != QUEUE_OK)
		die("sync", st);
	take_ack(q, 6);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s/crash'", path, argv[1]);
	if (system(cmd) != 0)
		return 1;
	queue_close(q);
	snprintf(cmd, sizeof(cmd), "rm -r '%s'", path);
	return system(cmd) != 0;
}
