/*
 * Benchmark of lib/queue: append throughput and bytes written per message
 * under each fsync policy, then recovery time and resident memory for the
 * queue that is left. Not part of the test suite; the figures go into
 * docs/performance.md by hand.
 *
 * Build and run from the repository root, against a configured build dir:
 *   ninja -C build lib/libiotbridge.a
 *   cc -O2 -std=c11 -D_DEFAULT_SOURCE -I. -Ilib tests/bench/queue_bench.c \
 *       build/lib/libiotbridge.a -o /tmp/queue_bench
 *   /tmp/queue_bench [-n messages] [-s payload_bytes] [-a always_messages] [-d dir]
 *
 * dir (default /var/tmp) must be on the file system being measured: /tmp is
 * often tmpfs, where fsync costs nothing. Each policy gets a fresh queue in
 * a mkdtemp() directory below dir, removed afterwards. "fsync always" runs
 * fewer messages (-a, default 2000) because each one waits for the disk.
 * "interval" calls queue_sync() every 100 ms, as the daemon's timer would.
 * Bytes written come from /proc/self/io write_bytes (what reached the block
 * layer, metadata and journal included) when the kernel provides it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes this process caused to be written to storage, or -1. */
static long long
io_write_bytes(void)
{
	char		 line[128];
	long long	 v = -1;
	FILE		*f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Resident set size in KiB. */
static long
rss_kib(void)
{
	long	 pages = 0, rss = 0;
	FILE	*f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
rm_dir(const char *dir)
{
	struct dirent	*de;
	DIR		*d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(dir);
}

static void
die(const char *what, enum queue_status st)
{
	fprintf(stderr, "queue_bench: %s: %s\n", what, queue_strerror(st));
	exit(1);
}

static void
run(const char *base, const char *name, enum queue_fsync policy, long n,
    size_t size, bool recovery)
{
	struct queue_recovery rep;
	struct queue_stats st;
	struct queue_opts o;
	struct queue_msg m;
	struct queue_rec r;
	struct queue	*q;
	enum queue_status s;
	char		 dir[4096];
	uint8_t		*payload;
	double		 t0, t1, last_sync;
	long long	 w0, w1;
	long		 i, rss0, rss1;

	snprintf(dir, sizeof(dir), "%s/queue-bench.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		exit(1);
	}
	if ((payload = malloc(size ? size : 1)) == NULL)
		exit(1);
	memset(payload, 'x', size);
	memset(&m, 0, sizeof(m));
	m.qos = 1;
	m.topic.ptr = (const uint8_t *)"sensors/gw01/temperature";
	m.topic.len = strlen("sensors/gw01/temperature");
	m.payload.ptr = payload;
	m.payload.len = size;

	queue_opts_init(&o);
	o.fsync = policy;
	if ((s = queue_open(dir, &o, &q, NULL)) != QUEUE_OK)
		die("open", s);
	w0 = io_write_bytes();
	t0 = last_sync = now_s();
	for (i = 0; i < n; i++) {
		if ((s = queue_append(q, &m, (uint64_t)i, NULL)) != QUEUE_OK)
			die("append", s);
		if (policy == QUEUE_FSYNC_INTERVAL && now_s() - last_sync >= 0.1) {
			if ((s = queue_sync(q)) != QUEUE_OK)
				die("sync", s);
			last_sync = now_s();
		}
	}
	if ((s = queue_sync(q)) != QUEUE_OK)
		die("sync", s);
	t1 = now_s();
	w1 = io_write_bytes();
	queue_stats(q, &st);
	printf("%-9s %8ld msgs  %6zu B payload  %10.0f msgs/s  %8.1f B/msg logical",
	    name, n, size, (double)n / (t1 - t0), (double)st.disk_bytes / (double)n);
	if (w0 >= 0 && w1 >= 0)
		printf("  %8.1f B/msg to disk", (double)(w1 - w0) / (double)n);
	printf("\n");
	queue_close(q);

	if (recovery) {
		rss0 = rss_kib();
		t0 = now_s();
		if ((s = queue_open(dir, &o, &q, &rep)) != QUEUE_OK)
			die("reopen", s);
		t1 = now_s();
		if (queue_peek(q, &r) != QUEUE_OK)
			die("peek", QUEUE_EMPTY);
		rss1 = rss_kib();
		queue_stats(q, &st);
		printf("recovery  %8llu msgs  %10.3f s  queue heap %zu B  "
		    "RSS %+ld KiB with the queue open\n",
		    (unsigned long long)rep.records, t1 - t0, st.mem_bytes,
		    rss1 - rss0);
		queue_close(q);
	}
	free(payload);
	rm_dir(dir);
}

int
main(int argc, char **argv)
{
	const char	*dir = "/var/tmp";
	long		 n = 100000, n_always = 2000;
	size_t		 size = 100;
	int		 c;

	while ((c = getopt(argc, argv, "a:d:n:s:")) != -1) {
		switch (c) {
		case 'a':
			n_always = strtol(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 's':
			size = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: queue_bench [-n messages] "
			    "[-s payload_bytes] [-a always_messages] [-d dir]\n");
			return 2;
		}
	}
	if (n < 1 || n_always < 1) {
		fprintf(stderr, "queue_bench: counts must be positive\n");
		return 2;
	}
	run(dir, "always", QUEUE_FSYNC_ALWAYS, n_always, size, false);
	run(dir, "interval", QUEUE_FSYNC_INTERVAL, n, size, false);
	run(dir, "never", QUEUE_FSYNC_NEVER, n, size, true);
	return 0;
}
