/*
 * Benchmark of lib/queue, for docs/performance.md; not part of the test
 * suite. tests/bench/run-queue-bench runs it with the arguments the figures
 * there come from. Two modes:
 *
 * The default: the job of a store-and-forward queue, done under each fsync
 * policy by lib/queue and, side by side, by SQLite in WAL mode (when the
 * build found libsqlite3): append N messages (a 24-byte topic and -s bytes
 * of payload, QoS 1), then drain them: read them back in order, a window of
 * QUEUE_INFLIGHT_DEFAULT (100) at a time as AWS's in-flight limit allows,
 * and acknowledge (delete) each one. For both phases: messages per second
 * and bytes written per message, then one table with iotbridge / SQLite
 * ratios. The SQLite equivalent of each policy gives the same guarantee:
 *
 *   always    every append durable before it returns: synchronous=FULL, one
 *             transaction per message (in WAL mode a commit fsyncs the WAL).
 *   interval  every append durable within 100 ms, as the daemon's
 *             fsync_interval timer calls queue_sync(). Two SQLite rows:
 *             "FULL, 100 ms txn", one transaction per 100 ms of appends,
 *             committed (and fsynced) when our queue_sync() runs, which is
 *             how an SQLite store gets its speed, but which loses up to
 *             100 ms of appends to a process crash, where lib/queue loses
 *             none (each append is a write(2)); and "NORMAL, txn/msg", one
 *             transaction per message (not fsynced in WAL mode) and
 *             wal_checkpoint(PASSIVE), which fsyncs the WAL, every 100 ms:
 *             the same guarantee as lib/queue against both kinds of crash.
 *   never     no fsync: synchronous=OFF, one transaction per message.
 *
 * Acknowledgements are durable at the same sync points for both: lib/queue
 * writes its checkpoint at queue_sync(), which the daemon calls every 100 ms
 * under interval and every second under always and never; SQLite's deletes
 * go in one transaction committed at those points. SQLite keeps its default
 * settings otherwise (4 KiB pages, 2 MiB cache, auto-checkpoint at 1000
 * pages); the table is `msg (seq INTEGER PRIMARY KEY, time_ms, qos, flags,
 * topic, props, payload)`, the fields of a lib/queue record.
 *
 * Bytes written, two ways, each phase starting and ending with a syncfs()
 * outside the clock (so that "never" is charged for the writeback it leaves
 * to the kernel): "written", this process's /proc/self/io write_bytes,
 * counted a page at a time when a page is dirtied, which leaves out the
 * file system's journal (a kernel thread writes it); and "device", sectors
 * written by the whole block device (/sys/dev/block/M:m/stat), journal
 * included, but so is whatever other processes write meanwhile. On tmpfs
 * both are 0 and fsync costs nothing: the directory (-d, default /var/tmp)
 * must be on the disk being measured; its file system is printed.
 *
 * -m N: memory and recovery with N queued messages (1000000 for the issue):
 * VmRSS after opening an empty queue and after appending N (fsync interval,
 * queue_sync() every 100 ms); then, each in a fresh process, VmRSS after
 * opening an empty queue and after recovering the N (queue_open() timed,
 * first with the page cache dropped when root can, then warm), and after
 * draining all N.
 *
 * Usage: queue_bench [-n messages] [-a always_messages] [-s payload_bytes]
 *            [-r repeats] [-d dir] [-S]
 *        queue_bench -m messages [-s payload_bytes] [-d dir]
 * -n: messages under interval and never (default 300000); -a: under always
 * (default 2000: each waits for the disk); -r: runs per row, alternating
 * the stores, and the median of each figure is shown (default 1, at most 9);
 * -S: leave SQLite out. -R dir [-D] is this program's own child (-m).
 */
#define _GNU_SOURCE		/* syncfs */

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef QUEUE_BENCH_SQLITE
#include <sqlite3.h>
#endif

#include "queue/queue.h"

#define BENCH_TOPIC		"sensors/gw01/temperature"
#define BENCH_SYNC_INTERVAL	0.1	/* the daemon's fsync_interval default */
#define BENCH_SYNC_SLOW		1.0	/* BRIDGE_SLOW_SYNC_MS: always, never */
#define BENCH_REPEAT_MAX	9
#define BENCH_STORES_MAX	3	/* iotbridge and up to two SQLite rows */

/*
 * The figures of one run. Each phase has three in this order: messages per
 * second, bytes this process wrote per message, bytes the device wrote per
 * message.
 */
enum bench_field {
	F_APPEND,
	F_APPEND_WRITTEN,
	F_APPEND_DEVICE,
	F_DRAIN,
	F_DRAIN_WRITTEN,
	F_DRAIN_DEVICE,
	F_SIZE,
	F_NFIELDS,
};

struct bench_run {
	double	 v[F_NFIELDS];
};

/* A store under test: lib/queue, or SQLite with one set of settings. */
struct bench_store {
	const char	*label;
	bool		 sqlite;
	const char	*synchronous;	/* SQLite: FULL, NORMAL, OFF */
	bool		 group;		/* SQLite: appends in a txn per sync */
	bool		 wal_ckpt;	/* SQLite: wal_checkpoint per sync */
};

struct bench_policy {
	const char		*name;
	enum queue_fsync	 fsync;
	double			 sync_s;	/* queue_sync() / commit cadence */
	struct bench_store	 stores[BENCH_STORES_MAX];
};

static const struct bench_policy policies[] = {
	{ "always", QUEUE_FSYNC_ALWAYS, BENCH_SYNC_SLOW, {
	    { "iotbridge queue", false, NULL, false, false },
	    { "SQLite FULL", true, "FULL", false, false } } },
	{ "interval", QUEUE_FSYNC_INTERVAL, BENCH_SYNC_INTERVAL, {
	    { "iotbridge queue", false, NULL, false, false },
	    { "SQLite FULL, 100ms txn", true, "FULL", true, false },
	    { "SQLite NORMAL, txn/msg", true, "NORMAL", false, true } } },
	{ "never", QUEUE_FSYNC_NEVER, BENCH_SYNC_SLOW, {
	    { "iotbridge queue", false, NULL, false, false },
	    { "SQLite OFF", true, "OFF", false, false } } },
};

/* What every run shares: where, and the message appended. */
struct bench {
	const char	*base;		/* the directory runs go below */
	char		 devstat[64];	/* its block device's stat file, or "" */
	struct queue_msg msg;
	size_t		 payload;
};

struct bench_rss {
	long	 rss;		/* VmRSS, KiB */
	long	 anon;		/* RssAnon, KiB */
};

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* True, and the clock restarted, when every seconds have passed since *last. */
static bool
tick(double *last, double every)
{
	double	 t = now_s();

	if (t - *last < every)
		return false;
	*last = t;
	return true;
}

/*
 * A counter of /proc/self/io, or -1: write_bytes, what this process sent
 * towards storage; read_bytes, what it had read from storage (page cache
 * hits are not counted).
 */
static long long
io_counter(const char *key)
{
	char		 line[128];
	size_t		 klen = strlen(key);
	long long	 v = -1;
	FILE		*f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long long
io_written(void)
{
	return io_counter("write_bytes");
}

/* A "Key:   123 kB" line of /proc/self/status, in KiB, or -1. */
static long
status_kib(const char *key)
{
	char	 line[256];
	size_t	 klen = strlen(key);
	long	 v = -1;
	FILE	*f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void
rss_read(struct bench_rss *r)
{
	r->rss = status_kib("VmRSS");
	r->anon = status_kib("RssAnon");
}

static _Noreturn void
die(const char *what, const char *why)
{
	fprintf(stderr, "queue_bench: %s: %s\n", what, why);
	exit(1);
}

static _Noreturn void
die_q(const char *what, enum queue_status st)
{
	die(what, st == QUEUE_IO || st == QUEUE_NOSPACE ? strerror(errno) :
	    queue_strerror(st));
}

/* dir/name into out[PATH_MAX]; a path that does not fit is fatal. */
static void
path_join(char *out, const char *dir, const char *name)
{
	int	 len = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	if (len < 0 || len >= PATH_MAX)
		die(dir, "path too long");
}

static void
mk_run_dir(const struct bench *b, char *dir)
{
	path_join(dir, b->base, "queue-bench.XXXXXX");
	if (mkdtemp(dir) == NULL)
		die(dir, strerror(errno));
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

/* Bytes the device has written (sectors written, field 7), or -1. */
static long long
dev_written(const struct bench *b)
{
	unsigned long long v[7];
	FILE		*f;
	int		 got;

	if (b->devstat[0] == '\0' || (f = fopen(b->devstat, "r")) == NULL)
		return -1;
	got = fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6]);
	fclose(f);
	return got == 7 ? (long long)(v[6] * 512) : -1;
}

static void
sync_fs(const char *dir)
{
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		syncfs(fd);
		close(fd);
	}
}

/* A phase's clock and write counters, started and stopped. */
struct bench_phase {
	const struct bench *b;
	const char	*dir;
	double		 t0;
	long long	 w0, d0;
};

static void
phase_start(struct bench_phase *p, const struct bench *b, const char *dir)
{
	p->b = b;
	p->dir = dir;
	sync_fs(dir);	/* what came before is not this phase's */
	p->d0 = dev_written(b);
	p->w0 = io_written();
	p->t0 = now_s();
}

static double
per_msg(long long before, long long after, long n)
{
	return before < 0 || after < 0 ? NAN :
	    (double)(after - before) / (double)n;
}

/*
 * Stop the clock, then push the phase's dirty pages out (untimed) so that a
 * policy that leaves writeback to the kernel is charged for it too. out[]:
 * messages per second, bytes written per message by this process and by
 * the device.
 */
static void
phase_end(const struct bench_phase *p, long n, double *out)
{
	double		 t1 = now_s();

	sync_fs(p->dir);
	out[0] = (double)n / (t1 - p->t0);
	out[1] = per_msg(p->w0, io_written(), n);
	out[2] = per_msg(p->d0, dev_written(p->b), n);
}

/*
 * lib/queue.
 */

static void
q_sync(struct queue *q)
{
	enum queue_status st;

	if ((st = queue_sync(q)) != QUEUE_OK)
		die_q("sync", st);
}

/* Append n copies of b->msg, with queue_sync() every sync_s as the daemon. */
static void
q_fill(const struct bench *b, struct queue *q, long n, double sync_s)
{
	enum queue_status st;
	double		 last = now_s();
	long		 i;

	for (i = 0; i < n; i++) {
		if ((st = queue_append(q, &b->msg, (uint64_t)i, NULL)) != QUEUE_OK)
			die_q("append", st);
		if (tick(&last, sync_s))
			q_sync(q);
	}
	q_sync(q);
}

/*
 * Hand out a window of records, acknowledge them in order as PUBACKs would
 * arrive, until the queue is empty; queue_sync() every sync_s writes the
 * checkpoint. The number of messages drained; *bytes gets the topic and
 * payload bytes read.
 */
static long
q_drain(struct queue *q, double sync_s, size_t *bytes)
{
	uint64_t	 seqs[QUEUE_INFLIGHT_DEFAULT];	/* every open's window */
	struct queue_rec r;
	enum queue_status st;
	double		 last = now_s();
	size_t		 k, i;
	long		 n = 0;

	*bytes = 0;
	for (;;) {
		k = 0;
		while (k < QUEUE_INFLIGHT_DEFAULT &&
		    (st = queue_next(q, &r)) == QUEUE_OK) {
			*bytes += r.msg.topic.len + r.msg.payload.len;
			seqs[k++] = r.seq;
		}
		if (st != QUEUE_OK && st != QUEUE_EMPTY &&
		    st != QUEUE_WINDOW_FULL)
			die_q("next", st);
		if (k == 0)
			break;
		for (i = 0; i < k; i++)
			if ((st = queue_ack(q, seqs[i])) != QUEUE_OK)
				die_q("ack", st);
		n += (long)k;
		if (tick(&last, sync_s))
			q_sync(q);
	}
	q_sync(q);
	return n;
}

/* Did a drain give back every message appended, whole? */
static void
check_drained(const struct bench *b, long n, long got, size_t bytes)
{
	if (got != n || bytes != (size_t)n * (b->msg.topic.len + b->payload))
		die("drain", "the messages read back are not those appended");
}

static void
run_queue(const struct bench *b, const struct bench_policy *pol, long n,
    struct bench_run *out)
{
	struct bench_phase ph;
	struct queue_stats st;
	struct queue_opts o;
	struct queue	*q;
	enum queue_status s;
	char		 dir[PATH_MAX];
	size_t		 bytes;
	long		 got;

	mk_run_dir(b, dir);
	queue_opts_init(&o);
	o.fsync = pol->fsync;
	if ((s = queue_open(dir, &o, &q, NULL)) != QUEUE_OK)
		die_q("open", s);
	phase_start(&ph, b, dir);
	q_fill(b, q, n, pol->sync_s);
	phase_end(&ph, n, &out->v[F_APPEND]);
	queue_stats(q, &st);
	out->v[F_SIZE] = (double)st.disk_bytes / (double)n;
	phase_start(&ph, b, dir);
	got = q_drain(q, pol->sync_s, &bytes);
	phase_end(&ph, n, &out->v[F_DRAIN]);
	queue_close(q);
	rm_dir(dir);
	check_drained(b, n, got, bytes);
}

/*
 * SQLite in WAL mode doing the same job.
 */
#ifdef QUEUE_BENCH_SQLITE

#define BENCH_DB_RESULT	16

static long long
file_size(const char *dir, const char *name)
{
	char		 path[PATH_MAX];
	struct stat	 sb;

	path_join(path, dir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

struct bench_db {
	sqlite3		*db;
	sqlite3_stmt	*ins, *sel, *del;
	const struct bench_store *store;
	char		 result[BENCH_DB_RESULT];
};

/* Keeps the first column of the last row a statement returned. */
static int
db_keep(void *arg, int ncol, char **vals, char **names)
{
	snprintf(arg, BENCH_DB_RESULT, "%s",
	    ncol > 0 && vals[0] != NULL ? vals[0] : "");
	return 0;
}

static void
db_exec(struct bench_db *d, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(d->db, sql, db_keep, d->result, &err) != SQLITE_OK)
		die(sql, err != NULL ? err : sqlite3_errmsg(d->db));
}

static void
db_step_done(struct bench_db *d, sqlite3_stmt *stmt)
{
	if (sqlite3_step(stmt) != SQLITE_DONE)
		die(sqlite3_sql(stmt), sqlite3_errmsg(d->db));
	sqlite3_reset(stmt);
}

/* A sync point: what lib/queue's queue_sync() is to the queue. */
static void
db_sync(struct bench_db *d, bool in_txn)
{
	if (in_txn)
		db_exec(d, "COMMIT; BEGIN");
	if (d->store->wal_ckpt)
		db_exec(d, "PRAGMA wal_checkpoint(PASSIVE)");
}

static void
db_open(struct bench_db *d, const char *dir, const struct bench_store *store)
{
	static const char *const prep[] = {
		"INSERT INTO msg (time_ms, qos, flags, topic, props, payload) "
		    "VALUES (?, ?, ?, ?, ?, ?)",
		"SELECT seq, time_ms, qos, flags, topic, props, payload "
		    "FROM msg WHERE seq > ? ORDER BY seq LIMIT ?",
		"DELETE FROM msg WHERE seq = ?",
	};
	sqlite3_stmt	**stmts[] = { &d->ins, &d->sel, &d->del };
	char		 path[PATH_MAX], sql[64];
	size_t		 i;

	memset(d, 0, sizeof(*d));
	d->store = store;
	path_join(path, dir, "queue.db");
	if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		die(path, d->db != NULL ? sqlite3_errmsg(d->db) : "no memory");
	db_exec(d, "PRAGMA journal_mode=WAL");
	if (strcmp(d->result, "wal") != 0)
		die(path, "no WAL mode");
	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s", store->synchronous);
	db_exec(d, sql);
	db_exec(d, "CREATE TABLE msg (seq INTEGER PRIMARY KEY, "
	    "time_ms INTEGER NOT NULL, qos INTEGER NOT NULL, "
	    "flags INTEGER NOT NULL, topic BLOB NOT NULL, props BLOB NOT NULL, "
	    "payload BLOB NOT NULL)");
	for (i = 0; i < sizeof(prep) / sizeof(prep[0]); i++)
		if (sqlite3_prepare_v2(d->db, prep[i], -1, stmts[i], NULL) !=
		    SQLITE_OK)
			die(prep[i], sqlite3_errmsg(d->db));
}

static void
db_close(struct bench_db *d)
{
	sqlite3_finalize(d->ins);
	sqlite3_finalize(d->sel);
	sqlite3_finalize(d->del);
	if (sqlite3_close(d->db) != SQLITE_OK)
		die("sqlite3_close", sqlite3_errmsg(d->db));
}

static void
db_fill(const struct bench *b, struct bench_db *d, long n, double sync_s)
{
	const struct queue_msg *m = &b->msg;
	double		 last = now_s();
	long		 i;

	if (d->store->group)
		db_exec(d, "BEGIN");
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(d->ins, 1, i);
		sqlite3_bind_int(d->ins, 2, m->qos);
		sqlite3_bind_int(d->ins, 3, m->flags);
		sqlite3_bind_blob(d->ins, 4, m->topic.ptr, (int)m->topic.len,
		    SQLITE_STATIC);
		sqlite3_bind_zeroblob(d->ins, 5, (int)m->props.len);
		sqlite3_bind_blob(d->ins, 6, m->payload.ptr,
		    (int)m->payload.len, SQLITE_STATIC);
		db_step_done(d, d->ins);
		(void)sqlite3_last_insert_rowid(d->db);	/* the seq, as ours */
		if (tick(&last, sync_s))
			db_sync(d, d->store->group);
	}
	if (d->store->group)
		db_exec(d, "COMMIT");
	else
		db_sync(d, false);
}

/* The window at a time, in order; deletes committed every sync_s. */
static long
db_drain(struct bench_db *d, double sync_s, size_t *bytes)
{
	sqlite3_int64	 seqs[QUEUE_INFLIGHT_DEFAULT], after = 0;
	double		 last = now_s();
	size_t		 k, i;
	long		 n = 0;
	int		 rc;

	*bytes = 0;
	db_exec(d, "BEGIN");
	for (;;) {
		k = 0;
		sqlite3_bind_int64(d->sel, 1, after);
		sqlite3_bind_int(d->sel, 2, QUEUE_INFLIGHT_DEFAULT);
		while ((rc = sqlite3_step(d->sel)) == SQLITE_ROW) {
			seqs[k++] = sqlite3_column_int64(d->sel, 0);
			(void)sqlite3_column_blob(d->sel, 4);
			(void)sqlite3_column_blob(d->sel, 6);
			*bytes += (size_t)sqlite3_column_bytes(d->sel, 4) +
			    (size_t)sqlite3_column_bytes(d->sel, 6);
		}
		if (rc != SQLITE_DONE)
			die("select", sqlite3_errmsg(d->db));
		sqlite3_reset(d->sel);
		if (k == 0)
			break;
		after = seqs[k - 1];
		for (i = 0; i < k; i++) {
			sqlite3_bind_int64(d->del, 1, seqs[i]);
			db_step_done(d, d->del);
		}
		n += (long)k;
		if (tick(&last, sync_s))
			db_sync(d, true);
	}
	db_exec(d, "COMMIT");
	db_sync(d, false);
	return n;
}

static void
run_sqlite(const struct bench *b, const struct bench_policy *pol,
    const struct bench_store *store, long n, struct bench_run *out)
{
	struct bench_phase ph;
	struct bench_db	 d;
	char		 dir[PATH_MAX];
	size_t		 bytes;
	long		 got;

	mk_run_dir(b, dir);
	db_open(&d, dir, store);
	phase_start(&ph, b, dir);
	db_fill(b, &d, n, pol->sync_s);
	phase_end(&ph, n, &out->v[F_APPEND]);
	out->v[F_SIZE] = (double)(file_size(dir, "queue.db") +
	    file_size(dir, "queue.db-wal")) / (double)n;
	phase_start(&ph, b, dir);
	got = db_drain(&d, pol->sync_s, &bytes);
	phase_end(&ph, n, &out->v[F_DRAIN]);
	db_close(&d);
	rm_dir(dir);
	check_drained(b, n, got, bytes);
}

static const char *
sqlite_version(void)
{
	return sqlite3_libversion();
}

#else /* !QUEUE_BENCH_SQLITE */

static void
run_sqlite(const struct bench *b, const struct bench_policy *pol,
    const struct bench_store *store, long n, struct bench_run *out)
{
	die("sqlite", "not built in");
}

static const char *
sqlite_version(void)
{
	return NULL;
}

#endif /* QUEUE_BENCH_SQLITE */

/*
 * The table.
 */

/* v with thousands separators, no decimals. */
static const char *
fmt_count(char *out, size_t cap, double v)
{
	char		 digits[32];
	size_t		 len, i, o = 0;

	if (isnan(v))
		return "n/a";
	snprintf(digits, sizeof(digits), "%.0f", v);
	len = strlen(digits);
	for (i = 0; i < len && o + 2 < cap; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	return out;
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
median(const struct bench_run *runs, int nruns, struct bench_run *out)
{
	double	 v[BENCH_REPEAT_MAX];
	int	 f, i;

	for (f = 0; f < F_NFIELDS; f++) {
		for (i = 0; i < nruns; i++)
			v[i] = runs[i].v[f];
		qsort(v, (size_t)nruns, sizeof(v[0]), cmp_double);
		out->v[f] = v[nruns / 2];
	}
}

/* One line of the table: the three leading columns, then one per field. */
static void
print_line(const char *policy, const char *store, const char *msgs,
    char cells[F_NFIELDS][16])
{
	static const int width[F_NFIELDS] = { 9, 8, 8, 9, 8, 8, 7 };
	int	 f;

	printf("%-8s %-22s %8s", policy, store, msgs);
	for (f = 0; f < F_NFIELDS; f++)
		printf(" %*s", width[f], cells[f]);
	printf("\n");
}

static void
print_header(void)
{
	static const char *const top[F_NFIELDS] = { "append", "written",
	    "device", "drain", "written", "device", "size" };
	static const char *const unit[F_NFIELDS] = { "msgs/s", "B/msg",
	    "B/msg", "msgs/s", "B/msg", "B/msg", "B/msg" };
	char	 a[F_NFIELDS][16], b[F_NFIELDS][16];
	int	 f;

	for (f = 0; f < F_NFIELDS; f++) {
		snprintf(a[f], sizeof(a[f]), "%s", top[f]);
		snprintf(b[f], sizeof(b[f]), "%s", unit[f]);
	}
	print_line("policy", "store", "messages", a);
	print_line("", "", "", b);
}

static void
print_row(const char *policy, const char *store, long n,
    const struct bench_run *r)
{
	char	 cells[F_NFIELDS][16], msgs[32];
	int	 f;

	for (f = 0; f < F_NFIELDS; f++) {
		double v = r->v[f];

		if (f == F_APPEND || f == F_DRAIN)
			fmt_count(cells[f], sizeof(cells[f]), v);
		else if (isnan(v))
			snprintf(cells[f], sizeof(cells[f]), "n/a");
		else
			snprintf(cells[f], sizeof(cells[f]),
			    v < 10 ? "%.1f" : "%.0f", v);
	}
	print_line(policy, store, fmt_count(msgs, sizeof(msgs), (double)n),
	    cells);
}

/* iotbridge / SQLite, field by field. */
static void
print_ratio(const struct bench_run *q, const struct bench_run *s)
{
	char	 cells[F_NFIELDS][16];
	int	 f;

	for (f = 0; f < F_NFIELDS; f++) {
		double x = q->v[f] / s->v[f];

		if (isnan(x) || isinf(x))
			snprintf(cells[f], sizeof(cells[f]), "-");
		else
			snprintf(cells[f], sizeof(cells[f]),
			    x < 0.1 ? "%.2gx" : "%.2fx", x);
	}
	print_line("", "  iotbridge/SQLite", "", cells);
}

static void
print_rule(void)
{
	int	 i;

	for (i = 0; i < 104; i++)	/* print_line()'s width */
		putchar('-');
	putchar('\n');
}

static void
run_table(const struct bench *b, long n, long n_always, int repeat,
    bool sqlite)
{
	struct bench_run runs[BENCH_STORES_MAX][BENCH_REPEAT_MAX];
	struct bench_run med[BENCH_STORES_MAX];
	const struct bench_policy *pol;
	size_t		 p;
	long		 count;
	int		 i, s, nstores;

	print_header();
	print_rule();
	for (p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
		pol = &policies[p];
		count = pol->fsync == QUEUE_FSYNC_ALWAYS ? n_always : n;
		for (nstores = 0; nstores < BENCH_STORES_MAX &&
		    pol->stores[nstores].label != NULL &&
		    (sqlite || !pol->stores[nstores].sqlite); nstores++)
			;
		/* Alternate the stores, so that a slow spell hits both. */
		for (i = 0; i < repeat; i++)
			for (s = 0; s < nstores; s++) {
				if (pol->stores[s].sqlite)
					run_sqlite(b, pol, &pol->stores[s],
					    count, &runs[s][i]);
				else
					run_queue(b, pol, count, &runs[s][i]);
			}
		for (s = 0; s < nstores; s++) {
			median(runs[s], repeat, &med[s]);
			print_row(s == 0 ? pol->name : "", pol->stores[s].label,
			    count, &med[s]);
			if (s > 0)
				print_ratio(&med[0], &med[s]);
		}
		fflush(stdout);
	}
	print_rule();
	printf("msgs/s: higher is better. B/msg, lower is better: \"written\" "
	    "by this process\n(/proc/self/io write_bytes, without the file "
	    "system's journal), \"device\" by\nthe whole disk (sectors "
	    "written: the journal included, and so are other\nprocesses' "
	    "writes), \"size\" the files after the appends. drain: read in "
	    "order,\n%u in flight, ack (delete) each; acks made durable every "
	    "%.0f ms (interval) or\n%.0f s (always, never), as the daemon's "
	    "queue_sync() timer does.\n", QUEUE_INFLIGHT_DEFAULT,
	    BENCH_SYNC_INTERVAL * 1000, BENCH_SYNC_SLOW);
}

/*
 * Memory and recovery.
 */

/* The child's half: open dir, report, and with drain empty it and report. */
static int
child_open(const char *dir, bool drain)
{
	struct queue_recovery rep;
	struct bench_rss r0, r1;
	struct queue_stats st;
	struct queue_opts o;
	struct queue_rec r;
	struct queue	*q;
	enum queue_status s;
	double		 t0, t1;
	long long	 rd0, rd1;
	size_t		 bytes;
	long		 n;

	queue_opts_init(&o);
	rss_read(&r0);
	rd0 = io_counter("read_bytes");
	t0 = now_s();
	if ((s = queue_open(dir, &o, &q, &rep)) != QUEUE_OK)
		die_q("open", s);
	t1 = now_s();
	rd1 = io_counter("read_bytes");
	if ((s = queue_peek(q, &r)) != QUEUE_OK && s != QUEUE_EMPTY)
		die_q("peek", s);
	rss_read(&r1);
	queue_stats(q, &st);
	printf("%.6f %lld %ld %ld %ld %ld %llu %zu", t1 - t0,
	    rd0 < 0 || rd1 < 0 ? -1 : rd1 - rd0, r0.rss, r0.anon, r1.rss,
	    r1.anon, (unsigned long long)rep.records, st.mem_bytes);
	if (drain) {
		t0 = now_s();
		n = q_drain(q, BENCH_SYNC_INTERVAL, &bytes);
		t1 = now_s();
		rss_read(&r1);
		queue_stats(q, &st);
		printf(" %ld %.6f %ld %ld %zu", n, t1 - t0, r1.rss, r1.anon,
		    st.mem_bytes);
	}
	printf("\n");
	queue_close(q);
	return 0;
}

/* What child_open() reported. */
struct child_report {
	double			 open_s;
	long long		 read;		/* bytes read from disk by open */
	struct bench_rss	 before, open;
	unsigned long long	 records;
	size_t			 mem;
	long			 drained;
	double			 drain_s;
	struct bench_rss	 drain;
	size_t			 drain_mem;
};

/* Run this program again as `-R dir [-D]`, a fresh process, and parse it. */
static void
child_run(const char *dir, bool drain, struct child_report *cr)
{
	char		 self[PATH_MAX], out[512];
	ssize_t		 len, got = 0;
	pid_t		 pid;
	int		 fds[2], status, want = drain ? 13 : 8;

	memset(cr, 0, sizeof(*cr));
	if ((len = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
		die("/proc/self/exe", strerror(errno));
	self[len] = '\0';
	if (pipe(fds) == -1 || (pid = fork()) == -1)
		die("fork", strerror(errno));
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(self, self, "-R", dir, drain ? "-D" : NULL, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got < (ssize_t)sizeof(out) - 1 &&
	    (len = read(fds[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += len;
	out[got] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("child", "failed");
	if (sscanf(out, "%lf %lld %ld %ld %ld %ld %llu %zu %ld %lf %ld %ld %zu",
	    &cr->open_s, &cr->read, &cr->before.rss, &cr->before.anon, &cr->open.rss,
	    &cr->open.anon, &cr->records, &cr->mem, &cr->drained, &cr->drain_s,
	    &cr->drain.rss, &cr->drain.anon, &cr->drain_mem) != want)
		die("child", "unexpected report");
}

/* sync, then drop the page cache; NULL if done, else why not. */
static const char *
drop_caches(void)
{
	FILE	*f;

	sync();
	if ((f = fopen("/proc/sys/vm/drop_caches", "w")) == NULL)
		return strerror(errno);
	if (fputs("1\n", f) == EOF || fclose(f) == EOF)
		return strerror(errno);
	return NULL;
}

static void
print_rss(const char *what, const struct bench_rss *r, size_t mem,
    const struct bench_rss *base)
{
	printf("  %-44s %7ld KiB %7ld KiB", what, r->rss, r->anon);
	if (mem > 0)
		printf(" %8zu B", mem);
	else
		printf(" %10s", "");
	if (base != NULL)
		printf("   %+ld KiB (anon %+ld)", r->rss - base->rss,
		    r->anon - base->anon);
	printf("\n");
}

static void
run_memory(const struct bench *b, long n)
{
	struct child_report empty, cold, warm;
	struct bench_rss start, r_empty, r_full;
	struct queue_stats st_empty, st_full;
	struct queue_opts o;
	struct queue	*q;
	enum queue_status s;
	const char	*nodrop;
	char		 dir[PATH_MAX], edir[PATH_MAX], c1[32], c2[32], label[64];
	double		 t0, t1;
	long		 worst;

	mk_run_dir(b, dir);
	mk_run_dir(b, edir);
	queue_opts_init(&o);
	rss_read(&start);
	if ((s = queue_open(dir, &o, &q, NULL)) != QUEUE_OK)
		die_q("open", s);
	rss_read(&r_empty);
	queue_stats(q, &st_empty);
	t0 = now_s();
	q_fill(b, q, n, BENCH_SYNC_INTERVAL);
	t1 = now_s();
	rss_read(&r_full);
	queue_stats(q, &st_full);
	queue_close(q);

	child_run(edir, false, &empty);
	nodrop = drop_caches();
	child_run(dir, false, &cold);
	child_run(dir, true, &warm);
	if (cold.records != (unsigned long long)n ||
	    warm.drained != n)
		die("recovery", "did not find every message");

	printf("%s messages, %.0f B records, %.1f MiB in %u segments of %u "
	    "MiB,\nappended under fsync interval at %s msgs/s\n\n",
	    fmt_count(c1, sizeof(c1), (double)n),
	    (double)st_full.disk_bytes / (double)n,
	    (double)st_full.disk_bytes / 1048576.0, st_full.segments,
	    QUEUE_SEGMENT_DEFAULT >> 20,
	    fmt_count(c2, sizeof(c2), (double)n / (t1 - t0)));
	printf("  %-44s %11s %11s %10s   %s\n", "", "VmRSS", "RssAnon",
	    "mem_bytes", "vs empty");
	print_rss("this process, before queue_open", &start, 0, NULL);
	print_rss("this process, empty queue open", &r_empty,
	    st_empty.mem_bytes, NULL);
	snprintf(label, sizeof(label), "this process, %s appended, open", c1);
	print_rss(label, &r_full, st_full.mem_bytes, &r_empty);
	print_rss("fresh process, empty queue opened", &empty.open, empty.mem,
	    NULL);
	snprintf(label, sizeof(label), "fresh process, %s recovered, cold", c1);
	print_rss(label, &cold.open, cold.mem, &empty.open);
	snprintf(label, sizeof(label), "fresh process, %s recovered, warm", c1);
	print_rss(label, &warm.open, warm.mem, &empty.open);
	print_rss("  the same, after draining them all", &warm.drain,
	    warm.drain_mem, &empty.open);

	printf("\nrecovery, queue_open() of %s messages:\n"
	    "  cold %7.3f s   page cache dropped first: %s%s; %.1f MiB read "
	    "from disk\n  warm %7.3f s\n", c1, cold.open_s,
	    nodrop == NULL ? "yes" : "no, ", nodrop == NULL ? "" : nodrop,
	    (double)cold.read / 1048576.0, warm.open_s);
	printf("drain after recovery: %s msgs/s\n",
	    fmt_count(c2, sizeof(c2), (double)warm.drained / warm.drain_s));
	worst = r_full.rss - r_empty.rss;
	if (cold.open.rss - empty.open.rss > worst)
		worst = cold.open.rss - empty.open.rss;
	if (warm.open.rss - empty.open.rss > worst)
		worst = warm.open.rss - empty.open.rss;
	if (warm.drain.rss - empty.open.rss > worst)
		worst = warm.drain.rss - empty.open.rss;
	printf("RSS with %s queued within 1 MiB of RSS with none: %s "
	    "(largest difference %+ld KiB)\n", c1, worst <= 1024 ? "yes" : "NO",
	    worst);
	rm_dir(dir);
	rm_dir(edir);
}

/* "ext4 (/dev/vda on /)" for the mount that holds dir. */
static void
describe_fs(const char *dir, char *out, size_t cap)
{
	char		 real[PATH_MAX], line[1024], src[256], mnt[512], type[64];
	size_t		 best = 0, ml;
	FILE		*f;

	snprintf(out, cap, "unknown file system");
	if (realpath(dir, real) == NULL || (f = fopen("/proc/self/mounts",
	    "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%255s %511s %63s", src, mnt, type) != 3)
			continue;
		ml = strlen(mnt);
		if (strncmp(real, mnt, ml) != 0 || (ml > 1 && real[ml] != '/' &&
		    real[ml] != '\0') || ml < best)
			continue;
		best = ml;
		snprintf(out, cap, "%s (%s on %s)", type, src, mnt);
	}
	fclose(f);
}

static long
arg_count(const char *s)
{
	char	*end;
	long	 v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 1)
		die(s, "not a positive count");
	return v;
}

static _Noreturn void
usage(void)
{
	fprintf(stderr, "usage: queue_bench [-n messages] [-a always_messages] "
	    "[-s payload_bytes]\n"
	    "           [-r repeats] [-d dir] [-S]\n"
	    "       queue_bench -m messages [-s payload_bytes] [-d dir]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench	 b;
	struct stat	 sb;
	const char	*child = NULL, *ver;
	char		 fs[1024];
	uint8_t		*payload;
	long		 n = 300000, n_always = 2000, memory = 0, repeat = 1;
	bool		 sqlite = true, drain = false;
	int		 c;

	memset(&b, 0, sizeof(b));
	b.base = "/var/tmp";
	b.payload = 100;
	while ((c = getopt(argc, argv, "a:d:Dm:n:r:R:s:S")) != -1) {
		switch (c) {
		case 'a':
			n_always = arg_count(optarg);
			break;
		case 'd':
			b.base = optarg;
			break;
		case 'D':
			drain = true;
			break;
		case 'm':
			memory = arg_count(optarg);
			break;
		case 'n':
			n = arg_count(optarg);
			break;
		case 'r':
			if ((repeat = arg_count(optarg)) > BENCH_REPEAT_MAX)
				die(optarg, "at most 9 repeats");
			break;
		case 'R':
			child = optarg;
			break;
		case 's':
			b.payload = (size_t)arg_count(optarg);
			break;
		case 'S':
			sqlite = false;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (child != NULL)
		return child_open(child, drain);

	if ((payload = malloc(b.payload)) == NULL)
		die("malloc", strerror(errno));
	memset(payload, 'x', b.payload);
	b.msg.qos = 1;
	b.msg.topic.ptr = (const uint8_t *)BENCH_TOPIC;
	b.msg.topic.len = strlen(BENCH_TOPIC);
	b.msg.payload.ptr = payload;
	b.msg.payload.len = b.payload;

	describe_fs(b.base, fs, sizeof(fs));
	if (stat(b.base, &sb) == 0)
		snprintf(b.devstat, sizeof(b.devstat), "/sys/dev/block/%u:%u/stat",
		    major(sb.st_dev), minor(sb.st_dev));
	if (dev_written(&b) < 0)
		b.devstat[0] = '\0';
	ver = sqlite_version();
	printf("queue_bench: dir %s on %s; topic %zu B, payload %zu B\n",
	    b.base, fs, b.msg.topic.len, b.payload);
	if (strncmp(fs, "tmpfs", 5) == 0 || strncmp(fs, "ramfs", 5) == 0)
		printf("WARNING: %s is in memory: fsync costs nothing and "
		    "nothing is written; use -d on a disk\n", b.base);
	if (io_written() < 0)
		printf("note: no /proc/self/io: bytes written are not "
		    "measured\n");
	if (memory == 0)
		printf("device counters: %s\n", b.devstat[0] != '\0' ?
		    b.devstat : "none (not a block device)");
	if (memory > 0) {
		printf("memory and recovery mode\n\n");
		run_memory(&b, memory);
	} else {
		if (ver == NULL && sqlite)
			printf("note: SQLite comparison skipped: built without "
			    "libsqlite3 (apt-get install libsqlite3-dev, then "
			    "reconfigure)\n");
		else if (sqlite)
			printf("SQLite %s, WAL mode; ", ver);
		printf("median of %ld run%s per row\n\n", repeat,
		    repeat == 1 ? "" : "s");
		run_table(&b, n, n_always, (int)repeat,
		    sqlite && ver != NULL);
	}
	free(payload);
	return 0;
}
