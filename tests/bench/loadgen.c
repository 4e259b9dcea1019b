/*
 * MQTT 3.1.1 load generator for comparing brokers: N publishers, M
 * subscribers and K idle clients in one single-threaded process, on
 * non-blocking sockets and epoll, with packets built and parsed by lib/mqtt.
 * Publisher i sends --count messages to PREFIX/i; every subscriber takes
 * PREFIX/#, so 1->1, N->1 (fan-in) and 1->M (fan-out) are the same code.
 * Each payload starts with a monotonic clock reading, the publisher's index
 * and a sequence number, from which subscribers derive latency, loss and
 * duplicates. Two windows keep the broker's queues bounded, so that what is
 * measured is throughput rather than how a broker drops or buffers: at most
 * --inflight unacknowledged QoS 1/2 messages per publisher, and at most
 * --window messages per publisher that some subscriber has not yet seen.
 * The run ends when every message arrived, when nothing arrived for --drain
 * seconds after the last was sent, when nothing moved at all for --stall
 * seconds (a broker that holds messages back), or at --timeout, and prints
 * one line of key=value on stdout.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt/mqtt.h"

#define LG_STAMP	16		/* u64 time, u32 publisher, u32 sequence */
#define LG_IO_CAP	(256 * 1024)	/* buffers of publishers and subscribers */
#define LG_IDLE_CAP	64		/* idle clients only ever read a CONNACK */
#define LG_HANDSHAKES	64		/* connections being set up at once */
#define LG_MAX_SIZE	(16u * 1024 * 1024)
#define LG_READS	4		/* reads per readiness event, for fairness */

/*
 * Latency histogram in microseconds: exact below 2048, then 1024 buckets
 * per power of two (under 0.1% error), up to 2^32 us.
 */
#define HIST_LINEAR	2048u
#define HIST_SUB	1024u
#define HIST_BUCKETS	(HIST_LINEAR + 21u * HIST_SUB)

enum lg_role {
	LG_PUB,
	LG_SUB,
	LG_IDLE,
};

enum lg_state {
	LG_S_NEW,		/* no socket yet */
	LG_S_TCP,		/* connect() in progress */
	LG_S_CONNACK,		/* CONNECT sent */
	LG_S_SUBACK,		/* subscribers: SUBSCRIBE sent */
	LG_S_READY,
};

struct lg_conn {
	int		 fd;
	enum lg_role	 role;
	enum lg_state	 state;
	unsigned	 idx;		/* within its role */
	bool		 pollout;	/* EPOLLOUT is armed */

	uint8_t		*in;
	size_t		 in_len;
	size_t		 in_cap;
	uint8_t		*out;
	size_t		 out_off;	/* sent so far */
	size_t		 out_len;
	size_t		 out_cap;

	/* Publishers. */
	char		 topic[128];
	size_t		 topic_len;
	uint32_t	 sent;
	unsigned	 inflight;
	uint16_t	 next_id;
	uint8_t		*ids;		/* bitmap: packet ids awaiting their ack */
};

struct lg_opts {
	const char	*host;
	const char	*port;
	unsigned	 publishers;
	unsigned	 subscribers;
	unsigned	 idle;
	unsigned	 qos;
	size_t		 size;
	uint32_t	 count;
	const char	*prefix;
	unsigned	 inflight;
	unsigned	 window;
	double		 timeout;
	double		 hold;
	double		 drain;
	double		 stall;
};

struct lg {
	struct lg_opts	 o;
	struct sockaddr_storage addr;
	socklen_t	 addrlen;
	int		 ep;

	struct lg_conn	*conns;		/* subscribers, idle clients, publishers */
	unsigned	 nconns;
	unsigned	 started;	/* conns[0..started) have a socket */
	unsigned	 ready;
	struct lg_conn	*subs;
	struct lg_conn	*pubs;

	uint8_t		*payload;	/* the bytes after the stamp */
	uint32_t	*next_seq;	/* [sub * publishers + pub]: highest seen + 1 */
	uint64_t	 received;
	uint64_t	 dup;		/* sequence not above the last one seen */
	uint64_t	 bad;		/* payload without a valid stamp */
	uint64_t	 hist[HIST_BUCKETS];

	uint64_t	 t_begin;
	uint64_t	 t_start;	/* all connected, first message */
	uint64_t	 t_sent;	/* last publisher finished */
	uint64_t	 t_last;	/* last message received */
	uint64_t	 t_moved;	/* last packet sent or received */
	const char	*error;		/* one word, for the result line */
};

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned
hist_bucket(uint64_t us)
{
	unsigned	 e;

	if (us < HIST_LINEAR)
		return (unsigned)us;
	if (us > UINT32_MAX)
		us = UINT32_MAX;
	e = 63u - (unsigned)__builtin_clzll(us);
	return HIST_LINEAR + (e - 11u) * HIST_SUB +
	    (unsigned)((us >> (e - 10u)) & (HIST_SUB - 1));
}

static uint64_t
hist_value(unsigned b)
{
	unsigned	 e;

	if (b < HIST_LINEAR)
		return b;
	e = 11u + (b - HIST_LINEAR) / HIST_SUB;
	return (uint64_t)(HIST_SUB + (b - HIST_LINEAR) % HIST_SUB) << (e - 10u);
}

/* The smallest value with at least q of the samples at or below it. */
static uint64_t
hist_quantile(const struct lg *lg, double q)
{
	uint64_t	 total = 0, rank, seen = 0;
	unsigned	 b;

	for (b = 0; b < HIST_BUCKETS; b++)
		total += lg->hist[b];
	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.5);
	if (rank == 0)
		rank = 1;
	for (b = 0; b < HIST_BUCKETS; b++) {
		seen += lg->hist[b];
		if (seen >= rank)
			return hist_value(b);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* Record the first error; the loop stops at the end of this round. */
static int
lg_fail(struct lg *lg, const char *word, const struct lg_conn *c,
    const char *detail)
{
	static const char *const roles[] = { "publisher", "subscriber", "idle" };

	if (lg->error == NULL) {
		lg->error = word;
		if (c != NULL)
			fprintf(stderr, "loadgen: %s %u: %s\n", roles[c->role],
			    c->idx, detail);
		else
			fprintf(stderr, "loadgen: %s\n", detail);
	}
	return -1;
}

static int
conn_events(struct lg *lg, struct lg_conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	if (out == c->pollout)
		return 0;
	if (out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(lg->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		return lg_fail(lg, "epoll", c, strerror(errno));
	c->pollout = out;
	return 0;
}

/* Make room for need more bytes of output, moving or growing the buffer. */
static int
out_reserve(struct lg_conn *c, size_t need)
{
	uint8_t		*p;
	size_t		 cap;

	if (c->out_cap - c->out_len >= need)
		return 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_cap - c->out_len >= need)
			return 0;
	}
	cap = c->out_cap * 2 > c->out_len + need ? c->out_cap * 2 :
	    c->out_len + need;
	if ((p = realloc(c->out, cap)) == NULL)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static int
conn_queue(struct lg *lg, struct lg_conn *c, const struct mqtt_packet *pkt)
{
	enum mqtt_status st;
	size_t		 size, n;

	if ((st = mqtt_size(pkt, MQTT_V311, &size)) != MQTT_OK)
		return lg_fail(lg, "encode", c, mqtt_strerror(st));
	if (out_reserve(c, size) == -1)
		return lg_fail(lg, "memory", c, "out of memory");
	st = mqtt_encode(pkt, MQTT_V311, c->out + c->out_len,
	    c->out_cap - c->out_len, &n);
	if (st != MQTT_OK)
		return lg_fail(lg, "encode", c, mqtt_strerror(st));
	c->out_len += n;
	return 0;
}

static int
conn_ack(struct lg *lg, struct lg_conn *c, enum mqtt_type type, uint16_t id)
{
	struct mqtt_packet pkt = { .type = type, .ack.packet_id = id };

	return conn_queue(lg, c, &pkt);
}

/* Write what is buffered; arm EPOLLOUT only while the socket is full. */
static int
conn_flush(struct lg *lg, struct lg_conn *c)
{
	ssize_t		 n;

	while (c->out_off < c->out_len) {
		n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_events(lg, c, true);
		if (n == -1)
			return lg_fail(lg, "write", c, strerror(errno));
		c->out_off += (size_t)n;
		lg->t_moved = now_ns();
	}
	c->out_off = c->out_len = 0;
	return conn_events(lg, c, false);
}

static int
conn_send_connect(struct lg *lg, struct lg_conn *c)
{
	static const char	 tag[] = { 'p', 's', 'i' };
	struct mqtt_packet	 pkt = { .type = MQTT_CONNECT };
	char			 id[64];
	int			 n;

	n = snprintf(id, sizeof(id), "lg%ld%c%u", (long)getpid(), tag[c->role],
	    c->idx);
	if (n < 0 || (size_t)n >= sizeof(id))
		return lg_fail(lg, "encode", c, "client id too long");
	pkt.connect.clean_start = true;
	pkt.connect.keep_alive = 0;	/* no PINGREQ to send or account for */
	pkt.connect.client_id.ptr = (const uint8_t *)id;
	pkt.connect.client_id.len = (size_t)n;
	c->state = LG_S_CONNACK;
	if (conn_queue(lg, c, &pkt) == -1)
		return -1;
	return conn_flush(lg, c);
}

static int
conn_start(struct lg *lg, struct lg_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int		 one = 1;
	size_t		 cap = c->role == LG_IDLE ? LG_IDLE_CAP : LG_IO_CAP;

	c->in_cap = c->out_cap = cap;
	if ((c->in = malloc(cap)) == NULL || (c->out = malloc(cap)) == NULL)
		return lg_fail(lg, "memory", c, "out of memory");
	c->fd = socket(lg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return lg_fail(lg, "socket", c, strerror(errno));
	/* We batch our own writes; Nagle would only add delayed-ACK stalls. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&lg->addr, lg->addrlen) == -1 &&
	    errno != EINPROGRESS)
		return lg_fail(lg, "connect", c, strerror(errno));
	c->state = LG_S_TCP;
	c->pollout = true;
	if (epoll_ctl(lg->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		return lg_fail(lg, "epoll", c, strerror(errno));
	return 0;
}

static int
conn_connected(struct lg *lg, struct lg_conn *c)
{
	int		 err = 0;
	socklen_t	 len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0)
		return lg_fail(lg, "connect", c, strerror(err));
	return conn_send_connect(lg, c);
}

static void
conn_set_ready(struct lg *lg, struct lg_conn *c)
{
	c->state = LG_S_READY;
	lg->ready++;
}

static int
on_connack(struct lg *lg, struct lg_conn *c, const struct mqtt_connack *ack)
{
	struct mqtt_packet	 pkt = { .type = MQTT_SUBSCRIBE };
	struct mqtt_subscription sub = { .qos = (uint8_t)lg->o.qos };
	uint8_t			 list[160];
	char			 filter[130];
	struct buf_writer	 w;
	char			 detail[64];

	if (c->state != LG_S_CONNACK)
		return lg_fail(lg, "protocol", c, "unexpected CONNACK");
	if (ack->reason_code != 0) {
		snprintf(detail, sizeof(detail), "CONNACK return code %u",
		    ack->reason_code);
		return lg_fail(lg, "refused", c, detail);
	}
	if (c->role != LG_SUB) {
		conn_set_ready(lg, c);
		return 0;
	}
	snprintf(filter, sizeof(filter), "%s/#", lg->o.prefix);
	sub.filter.ptr = (const uint8_t *)filter;
	sub.filter.len = strlen(filter);
	buf_writer_init(&w, list, sizeof(list));
	mqtt_subscription_put(&w, &sub);
	if (buf_writer_status(&w) != BUF_OK)
		return lg_fail(lg, "encode", c, "topic prefix too long");
	pkt.subscribe.packet_id = 1;
	pkt.subscribe.list.ptr = list;
	pkt.subscribe.list.len = buf_written(&w);
	c->state = LG_S_SUBACK;
	return conn_queue(lg, c, &pkt);
}

static int
on_suback(struct lg *lg, struct lg_conn *c, const struct mqtt_suback *ack)
{
	if (c->state != LG_S_SUBACK || ack->packet_id != 1 ||
	    ack->reason_codes.len != 1)
		return lg_fail(lg, "protocol", c, "unexpected SUBACK");
	if (ack->reason_codes.ptr[0] != lg->o.qos)
		return lg_fail(lg, "refused", c, "subscription not granted "
		    "at the QoS asked for");
	conn_set_ready(lg, c);
	return 0;
}

static void
on_message(struct lg *lg, struct lg_conn *s, struct buf_view payload,
    uint64_t now)
{
	uint64_t	 ts;
	uint32_t	 pub, seq, *next;

	if (payload.len < LG_STAMP) {
		lg->bad++;
		return;
	}
	memcpy(&ts, payload.ptr, 8);
	memcpy(&pub, payload.ptr + 8, 4);
	memcpy(&seq, payload.ptr + 12, 4);
	if (pub >= lg->o.publishers || ts > now || ts < lg->t_begin) {
		lg->bad++;
		return;
	}
	lg->received++;
	lg->t_last = now;
	lg->hist[hist_bucket((now - ts) / 1000u)]++;
	next = &lg->next_seq[(size_t)s->idx * lg->o.publishers + pub];
	if (seq < *next)
		lg->dup++;
	else
		*next = seq + 1;
}

static int
on_publish(struct lg *lg, struct lg_conn *c, const struct mqtt_publish *pub,
    uint64_t now)
{
	if (c->role != LG_SUB || c->state != LG_S_READY)
		return lg_fail(lg, "protocol", c, "unexpected PUBLISH");
	on_message(lg, c, pub->payload, now);
	if (pub->qos == 1)
		return conn_ack(lg, c, MQTT_PUBACK, pub->packet_id);
	if (pub->qos == 2)
		return conn_ack(lg, c, MQTT_PUBREC, pub->packet_id);
	return 0;
}

static bool
id_test(const struct lg_conn *p, uint16_t id)
{
	return (p->ids[id >> 3] >> (id & 7)) & 1;
}

static void
id_flip(struct lg_conn *p, uint16_t id)
{
	p->ids[id >> 3] ^= (uint8_t)(1u << (id & 7));
}

/* A PUBACK, PUBREC or PUBCOMP for a publisher's message. */
static int
on_pub_ack(struct lg *lg, struct lg_conn *p, enum mqtt_type type, uint16_t id)
{
	enum mqtt_type	 want = lg->o.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC;

	if (p->role != LG_PUB || p->ids == NULL || !id_test(p, id) ||
	    (type != want && !(type == MQTT_PUBCOMP && lg->o.qos == 2)))
		return lg_fail(lg, "protocol", p, "unexpected acknowledgement");
	if (type == MQTT_PUBREC)
		return conn_ack(lg, p, MQTT_PUBREL, id);
	id_flip(p, id);
	p->inflight--;
	return 0;
}

static int
on_packet(struct lg *lg, struct lg_conn *c, const struct mqtt_packet *pkt,
    uint64_t now)
{
	switch (pkt->type) {
	case MQTT_CONNACK:
		return on_connack(lg, c, &pkt->connack);
	case MQTT_SUBACK:
		return on_suback(lg, c, &pkt->suback);
	case MQTT_PUBLISH:
		return on_publish(lg, c, &pkt->publish, now);
	case MQTT_PUBREL:
		if (c->role != LG_SUB || lg->o.qos != 2)
			break;
		return conn_ack(lg, c, MQTT_PUBCOMP, pkt->ack.packet_id);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		return on_pub_ack(lg, c, pkt->type, pkt->ack.packet_id);
	default:
		break;
	}
	return lg_fail(lg, "protocol", c, mqtt_type_name(pkt->type));
}

/* Act on every whole packet in c->in, keep the partial one. */
static int
conn_parse(struct lg *lg, struct lg_conn *c)
{
	struct mqtt_header h;
	struct mqtt_packet pkt;
	enum mqtt_status st;
	uint64_t	 now = now_ns();
	size_t		 off = 0, used, need = 0;
	uint8_t		*p;

	while (off < c->in_len) {
		st = mqtt_probe(c->in + off, c->in_len - off, MQTT_MAX_PACKET,
		    &h);
		if (st == MQTT_NEED_MORE)
			break;
		if (st != MQTT_OK)
			return lg_fail(lg, "malformed", c, mqtt_strerror(st));
		if (h.size > c->in_len - off) {
			need = h.size;
			break;
		}
		st = mqtt_decode(c->in + off, h.size, MQTT_V311,
		    MQTT_MAX_PACKET, &pkt, &used);
		if (st != MQTT_OK)
			return lg_fail(lg, "malformed", c, mqtt_strerror(st));
		if (on_packet(lg, c, &pkt, now) == -1)
			return -1;
		off += used;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (need > c->in_cap) {
		if (need > LG_MAX_SIZE + 1024)
			return lg_fail(lg, "malformed", c, "packet too large");
		if ((p = realloc(c->in, need)) == NULL)
			return lg_fail(lg, "memory", c, "out of memory");
		c->in = p;
		c->in_cap = need;
	}
	return 0;
}

static int
conn_read(struct lg *lg, struct lg_conn *c)
{
	ssize_t		 n;
	size_t		 room;
	int		 i;

	for (i = 0; i < LG_READS; i++) {
		room = c->in_cap - c->in_len;
		n = read(c->fd, c->in + c->in_len, room);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1)
			return lg_fail(lg, "read", c, strerror(errno));
		if (n == 0)
			return lg_fail(lg, "closed", c,
			    "connection closed by the broker");
		c->in_len += (size_t)n;
		lg->t_moved = now_ns();
		if (conn_parse(lg, c) == -1)
			return -1;
		if ((size_t)n < room)
			break;
	}
	if (c->out_len > 0 && !c->pollout)
		return conn_flush(lg, c);
	return 0;
}

static int
conn_event(struct lg *lg, struct lg_conn *c, uint32_t events)
{
	if (c->state == LG_S_TCP) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			return conn_connected(lg, c);
		return 0;
	}
	if ((events & EPOLLOUT) && conn_flush(lg, c) == -1)
		return -1;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		return conn_read(lg, c);
	return 0;
}

/*
 * How far every subscriber got with publisher p: the lowest of their
 * next expected sequence numbers. A lost QoS 0 message does not hold the
 * window back, since a later one moves the subscriber past it.
 */
static uint32_t
pub_floor(const struct lg *lg, const struct lg_conn *p)
{
	uint32_t	 floor = p->sent, v;
	unsigned	 s;

	for (s = 0; s < lg->o.subscribers; s++) {
		v = lg->next_seq[(size_t)s * lg->o.publishers + p->idx];
		if (v < floor)
			floor = v;
	}
	return floor;
}

/*
 * Queue as many messages as the windows and the output buffer allow, and
 * write them. Returns 1 when the buffer was the only limit and has been
 * written out, so there is more to do right away; 0 or -1 otherwise.
 */
static int
pub_pump(struct lg *lg, struct lg_conn *p, uint64_t now)
{
	struct mqtt_publish pub = { .qos = (uint8_t)lg->o.qos };
	enum mqtt_status st;
	uint32_t	 floor = pub_floor(lg, p);
	size_t		 hdr, n;
	uint8_t		*at;
	bool		 full = false;

	if (p->state != LG_S_READY || p->pollout)
		return 0;
	pub.topic.ptr = (const uint8_t *)p->topic;
	pub.topic.len = p->topic_len;
	pub.packet_id = 1;
	pub.payload.len = lg->o.size;
	if ((st = mqtt_publish_header_size(&pub, MQTT_V311, &hdr)) != MQTT_OK)
		return lg_fail(lg, "encode", p, mqtt_strerror(st));
	while (p->sent < lg->o.count &&
	    (lg->o.qos == 0 || p->inflight < lg->o.inflight) &&
	    (lg->o.subscribers == 0 || p->sent - floor < lg->o.window)) {
		if (p->out_cap - p->out_len < hdr + lg->o.size) {
			if (p->out_off == 0) {
				full = true;
				break;
			}
			memmove(p->out, p->out + p->out_off,
			    p->out_len - p->out_off);
			p->out_len -= p->out_off;
			p->out_off = 0;
			continue;
		}
		if (lg->o.qos > 0) {
			do
				p->next_id = p->next_id == UINT16_MAX ? 1 :
				    p->next_id + 1;
			while (id_test(p, p->next_id));
			pub.packet_id = p->next_id;
			id_flip(p, p->next_id);
			p->inflight++;
		}
		at = p->out + p->out_len;
		st = mqtt_encode_publish_header(&pub, MQTT_V311, at, hdr, &n);
		if (st != MQTT_OK)
			return lg_fail(lg, "encode", p, mqtt_strerror(st));
		at += n;
		memcpy(at, &now, 8);
		memcpy(at + 8, &p->idx, 4);
		memcpy(at + 12, &p->sent, 4);
		memcpy(at + LG_STAMP, lg->payload, lg->o.size - LG_STAMP);
		p->out_len += n + lg->o.size;
		p->sent++;
	}
	if (conn_flush(lg, p) == -1)
		return -1;
	return full && !p->pollout;
}

static bool
pubs_done(const struct lg *lg)
{
	unsigned	 i;

	for (i = 0; i < lg->o.publishers; i++)
		if (lg->pubs[i].sent < lg->o.count || lg->pubs[i].inflight > 0)
			return false;
	return true;
}

static uint64_t
total_sent(const struct lg *lg)
{
	uint64_t	 n = 0;
	unsigned	 i;

	for (i = 0; i < lg->o.publishers; i++)
		n += lg->pubs[i].sent;
	return n;
}

static void
lg_report(const struct lg *lg, bool timed_out, uint64_t now)
{
	uint64_t	 sent = total_sent(lg);
	uint64_t	 expected = sent * lg->o.subscribers;
	uint64_t	 end, t_sent = lg->t_sent != 0 ? lg->t_sent : now;
	double		 elapsed = 0, send_s = 0, connect_s;
	int64_t		 lost;

	connect_s = (double)((lg->t_start != 0 ? lg->t_start : now) -
	    lg->t_begin) / 1e9;
	if (lg->t_start != 0) {
		end = lg->received > 0 ? lg->t_last : t_sent;
		elapsed = (double)(end - lg->t_start) / 1e9;
		send_s = (double)(t_sent - lg->t_start) / 1e9;
	}
	lost = (int64_t)expected - (int64_t)(lg->received - lg->dup);
	printf("qos=%u publishers=%u subscribers=%u idle=%u size=%zu "
	    "connected=%u connect_s=%.3f sent=%" PRIu64 " expected=%" PRIu64
	    " received=%" PRIu64 " lost=%" PRId64 " dup=%" PRIu64
	    " bad=%" PRIu64 " elapsed_s=%.3f send_rate=%.0f rate=%.0f"
	    " p50_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64
	    " timeout=%d error=%s\n",
	    lg->o.qos, lg->o.publishers, lg->o.subscribers, lg->o.idle,
	    lg->o.size, lg->ready, connect_s, sent, expected, lg->received,
	    lost, lg->dup, lg->bad, elapsed,
	    send_s > 0 ? (double)sent / send_s : 0,
	    elapsed > 0 ? (double)lg->received / elapsed : 0,
	    hist_quantile(lg, 0.50), hist_quantile(lg, 0.99),
	    hist_quantile(lg, 1.0), timed_out ? 1 : 0,
	    lg->error != NULL ? lg->error : "none");
	fflush(stdout);
}

/*
 * Connect everyone (a few handshakes at a time, so as not to overflow the
 * broker's listen backlog), run the load, hold the connections, report.
 * Returns the exit status.
 */
static int
lg_run(struct lg *lg)
{
	struct epoll_event evs[256];
	uint64_t	 now, deadline, done_at = 0;
	bool		 timed_out = false, busy;
	int		 n, i, wait_ms;
	unsigned	 k;

	lg->t_begin = now = now_ns();
	deadline = now + (uint64_t)(lg->o.timeout * 1e9);
	while (lg->error == NULL) {
		now = now_ns();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		while (lg->started < lg->nconns &&
		    lg->started - lg->ready < LG_HANDSHAKES)
			if (conn_start(lg, &lg->conns[lg->started++]) == -1)
				break;
		if (lg->t_start == 0 && lg->ready == lg->nconns)
			lg->t_start = lg->t_moved = now;
		if (lg->t_start != 0 && done_at == 0 && now > lg->t_moved &&
		    now - lg->t_moved >= (uint64_t)(lg->o.stall * 1e9)) {
			lg_fail(lg, "stalled", NULL, "nothing sent or received "
			    "for --stall seconds");
			break;
		}

		busy = false;
		if (lg->t_start != 0 && lg->t_sent == 0) {
			for (k = 0; k < lg->o.publishers; k++) {
				int r = pub_pump(lg, &lg->pubs[k], now);

				if (r == -1)
					break;
				busy |= r == 1;
			}
			if (pubs_done(lg))
				lg->t_sent = now_ns();
		}
		if (lg->t_sent != 0 && done_at == 0) {
			/* t_last and t_sent may be later than now. */
			uint64_t quiet = lg->t_last > lg->t_sent ? lg->t_last :
			    lg->t_sent;

			now = now_ns();
			if (lg->o.subscribers == 0 ||
			    lg->received - lg->dup >=
			    total_sent(lg) * lg->o.subscribers ||
			    (now > quiet &&
			    now - quiet >= (uint64_t)(lg->o.drain * 1e9))) {
				done_at = now;
				if (lg->o.hold > 0) {
					printf("ready connected=%u\n",
					    lg->ready);
					fflush(stdout);
				}
			}
		}
		if (done_at != 0 &&
		    now - done_at >= (uint64_t)(lg->o.hold * 1e9))
			break;
		if (lg->error != NULL)
			break;

		wait_ms = busy ? 0 : 20;
		n = epoll_wait(lg->ep, evs, 256, wait_ms);
		if (n == -1 && errno != EINTR)
			lg_fail(lg, "epoll", NULL, strerror(errno));
		for (i = 0; i < n && lg->error == NULL; i++)
			conn_event(lg, evs[i].data.ptr, evs[i].events);
	}
	now = now_ns();
	if (lg->t_sent == 0 && lg->t_start != 0 && pubs_done(lg))
		lg->t_sent = now;
	lg_report(lg, timed_out, now);
	if (lg->error != NULL)
		return 1;
	return timed_out ? 2 : 0;
}

static void
lg_close(struct lg *lg)
{
	static const uint8_t disconnect[] = { 0xe0, 0x00 };
	unsigned	 i;

	for (i = 0; i < lg->nconns; i++) {
		struct lg_conn *c = &lg->conns[i];

		if (c->state == LG_S_READY && c->out_off == c->out_len)
			(void)!write(c->fd, disconnect, sizeof(disconnect));
		if (c->fd != -1)
			close(c->fd);
		free(c->in);
		free(c->out);
		free(c->ids);
	}
	free(lg->conns);
	free(lg->next_seq);
	free(lg->payload);
	if (lg->ep != -1)
		close(lg->ep);
}

static int
lg_init(struct lg *lg)
{
	struct addrinfo	 hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct rlimit	 rl;
	unsigned	 i;
	int		 rc;
	size_t		 j;

	if ((rc = getaddrinfo(lg->o.host, lg->o.port, &hints, &ai)) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", lg->o.host,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(&lg->addr, ai->ai_addr, ai->ai_addrlen);
	lg->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);

	/* Hundreds of idle clients need more than the usual 1024 files. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((lg->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("loadgen: epoll_create1");
		return -1;
	}
	lg->nconns = lg->o.subscribers + lg->o.idle + lg->o.publishers;
	lg->conns = calloc(lg->nconns, sizeof(*lg->conns));
	lg->next_seq = calloc((size_t)lg->o.subscribers * lg->o.publishers + 1,
	    sizeof(*lg->next_seq));
	lg->payload = malloc(lg->o.size);
	if (lg->conns == NULL || lg->next_seq == NULL || lg->payload == NULL)
		goto nomem;
	for (j = 0; j < lg->o.size; j++)
		lg->payload[j] = (uint8_t)('a' + j % 26);
	lg->subs = lg->conns;
	lg->pubs = lg->conns + lg->o.subscribers + lg->o.idle;
	for (i = 0; i < lg->nconns; i++) {
		struct lg_conn *c = &lg->conns[i];

		c->fd = -1;
		if (i < lg->o.subscribers) {
			c->role = LG_SUB;
			c->idx = i;
		} else if (i < lg->o.subscribers + lg->o.idle) {
			c->role = LG_IDLE;
			c->idx = i - lg->o.subscribers;
		} else {
			c->role = LG_PUB;
			c->idx = i - lg->o.subscribers - lg->o.idle;
			rc = snprintf(c->topic, sizeof(c->topic), "%s/%u",
			    lg->o.prefix, c->idx);
			if (rc < 0 || (size_t)rc >= sizeof(c->topic)) {
				fprintf(stderr, "loadgen: topic prefix too "
				    "long\n");
				return -1;
			}
			c->topic_len = (size_t)rc;
			if (lg->o.qos > 0 &&
			    (c->ids = calloc(65536 / 8, 1)) == NULL)
				goto nomem;
		}
	}
	return 0;
nomem:
	fprintf(stderr, "loadgen: out of memory\n");
	return -1;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: loadgen [--host H] [--port P] [--publishers N] "
	    "[--subscribers M]\n"
	    "               [--qos 0|1|2] [--size BYTES] [--count MESSAGES] "
	    "[--topic-prefix T]\n"
	    "               [--inflight N] [--window N] [--idle-clients K] "
	    "[--hold SECONDS]\n"
	    "               [--drain SECONDS] [--stall SECONDS] "
	    "[--timeout SECONDS]\n");
}

static bool
parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *v)
{
	char		*end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-' &&
	    *v >= min && *v <= max;
}

static bool
parse_seconds(const char *s, double *v)
{
	char		*end;

	errno = 0;
	*v = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *v >= 0 && *v < 1e6;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "host",	  required_argument, NULL, 'H' },
		{ "port",	  required_argument, NULL, 'p' },
		{ "publishers",	  required_argument, NULL, 'P' },
		{ "subscribers",  required_argument, NULL, 'S' },
		{ "qos",	  required_argument, NULL, 'q' },
		{ "size",	  required_argument, NULL, 's' },
		{ "count",	  required_argument, NULL, 'n' },
		{ "topic-prefix", required_argument, NULL, 't' },
		{ "inflight",	  required_argument, NULL, 'i' },
		{ "window",	  required_argument, NULL, 'w' },
		{ "idle-clients", required_argument, NULL, 'I' },
		{ "hold",	  required_argument, NULL, 'h' },
		{ "drain",	  required_argument, NULL, 'd' },
		{ "stall",	  required_argument, NULL, 'L' },
		{ "timeout",	  required_argument, NULL, 'T' },
		{ "help",	  no_argument,	     NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	static struct lg lg = {
		.o = {
			.host = "127.0.0.1", .port = "1883",
			.publishers = 1, .subscribers = 1, .qos = 0,
			.size = 16, .count = 10000, .prefix = "bench",
			.inflight = 10, .window = 100,
			.timeout = 60, .hold = 0, .drain = 1, .stall = 5,
		},
		.ep = -1,
	};
	unsigned long long v;
	bool		 ok = true;
	int		 ch, status;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			lg.o.host = optarg;
			break;
		case 'p':
			lg.o.port = optarg;
			break;
		case 't':
			lg.o.prefix = optarg;
			break;
		case 'P':
			if ((ok = parse_uint(optarg, 0, 10000, &v)))
				lg.o.publishers = (unsigned)v;
			break;
		case 'S':
			if ((ok = parse_uint(optarg, 0, 10000, &v)))
				lg.o.subscribers = (unsigned)v;
			break;
		case 'I':
			if ((ok = parse_uint(optarg, 0, 100000, &v)))
				lg.o.idle = (unsigned)v;
			break;
		case 'q':
			if ((ok = parse_uint(optarg, 0, 2, &v)))
				lg.o.qos = (unsigned)v;
			break;
		case 's':
			if ((ok = parse_uint(optarg, LG_STAMP, LG_MAX_SIZE, &v)))
				lg.o.size = (size_t)v;
			break;
		case 'n':
			if ((ok = parse_uint(optarg, 0, UINT32_MAX - 1, &v)))
				lg.o.count = (uint32_t)v;
			break;
		case 'i':
			if ((ok = parse_uint(optarg, 1, 65535, &v)))
				lg.o.inflight = (unsigned)v;
			break;
		case 'w':
			if ((ok = parse_uint(optarg, 1, UINT32_MAX, &v)))
				lg.o.window = (unsigned)v;
			break;
		case 'h':
			ok = parse_seconds(optarg, &lg.o.hold);
			break;
		case 'd':
			ok = parse_seconds(optarg, &lg.o.drain);
			break;
		case 'L':
			ok = parse_seconds(optarg, &lg.o.stall) &&
			    lg.o.stall > 0;
			break;
		case 'T':
			ok = parse_seconds(optarg, &lg.o.timeout) &&
			    lg.o.timeout > 0;
			break;
		case 'x':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "loadgen: bad value: %s\n", optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (lg_init(&lg) == -1) {
		lg_close(&lg);
		return 1;
	}
	status = lg_run(&lg);
	lg_close(&lg);
	return status;
}
