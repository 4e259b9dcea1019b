/*
 * The uplink to AWS IoT Core. One attempt walks DNS -> TCP -> (proxy
 * CONNECT) -> TLS -> WebSocket upgrade -> MQTT CONNECT -> SUBSCRIBE, each step
 * started by the previous one's callback, under one deadline
 * (aws.connect_timeout). Every failure lands in uplink_drop(), which closes
 * whatever exists, tells the bridge, and schedules the next attempt with the
 * backoff. Bytes are never parsed here: lib/ws, lib/mqtt and lib/ws/http do
 * that, and this file moves their results between libevent buffers.
 */
#include <sys/socket.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "iotb_build.h"
#include "config/cfg.h"
#include "creds/creds.h"
#include "daemon/clock.h"
#include "daemon/file.h"
#include "daemon/log.h"
#include "daemon/str.h"
#include "daemon/tls.h"
#include "daemon/uplink.h"
#include "mqtt/mqtt.h"
#include "sigv4/sigv4.h"
#include "util/backoff.h"
#include "ws/http.h"
#include "ws/ws.h"

#define UPLINK_TICK_MS		250
#define UPLINK_MAX_PACKET	(512u << 10)	/* AWS sends at most 128 KiB payloads */
#define UPLINK_OUT_HIGH		(256u << 10)	/* output bytes: stop taking more */
#define UPLINK_CONNECT_PACE_MS	1000	/* AWS throttles CONNECTs of one client id */
#define UPLINK_SHORT_LIVED_MS	5000	/* closed this soon after CONNACK ... */
#define UPLINK_SHORT_LIVED_MAX	3	/* ... this many times: duplicate client id */
#define UPLINK_SKEW_S		300	/* SigV4 tolerates 5 minutes */
#define UPLINK_TARGET_MAX	8192	/* presigned URL with a session token */
#define UPLINK_CLOSE_LINGER_MS	1000
#define UPLINK_CREDS_MAX	(64u << 10)	/* a shared credentials file */

enum phase {
	PH_IDLE,
	PH_DNS,
	PH_TCP,
	PH_PROXY,
	PH_TLS,
	PH_UPGRADE,
	PH_MQTT,
};

/* Why a connection ended: decides the log line and the next delay. */
enum drop_kind {
	DROP_FAILED,		/* never reached CONNACK */
	DROP_LOST,		/* was connected */
	DROP_PLANNED,		/* our choice: reconnect at once */
	DROP_STOP,		/* shutting down or no aws section */
};

/* A packet awaiting its answer: PUBACK or SUBACK. */
struct op {
	uint16_t	pid;
	bool		subscribe;
	uint64_t	sent_ms;
	size_t		first, count;	/* SUBSCRIBE: the filters it carried */
};

struct uplink {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct uplink_ops	 ops;
	void			*arg;

	struct evdns_base	*dns;
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo	*ai, *ai_next;
	struct tls_client_ctx	*tls;
	struct bufferevent	*bev;
	enum phase		 phase;
	enum uplink_state	 state;
	struct event		*ev_retry, *ev_deadline, *ev_tick;
	struct backoff		 bo;

	char			*host;		/* endpoint host */
	uint16_t		 port;
	char			*proxy_host;	/* NULL: direct */
	uint16_t		 proxy_port;
	char			*proxy_auth;	/* base64 user:pass, secret */

	struct ws_upgrade	 up;
	char			*target;	/* presigned; secret */
	int64_t			 signed_at;
	struct ws_decoder	 dec;
	struct evbuffer		*mqtt_in;
	uint8_t			*scratch;
	size_t			 scratch_cap;

	struct op		*opv;
	size_t			 nops, capops;
	unsigned		 npub;		/* QoS 1 PUBLISH among opv */
	uint16_t		 next_pid;
	char			**filters;	/* of the "in" rules, as subscribed */
	uint8_t			*filter_qos;
	size_t			 nfilters;
	unsigned		 sub_pending;

	uint64_t		 t_attempt, t_connack, t_last_send, t_ping;
	uint64_t		 retry_at;
	bool			 ping_pending;
	bool			 planned;	/* pausing for a planned reconnect */
	uint64_t		 planned_since;
	bool			 retry_now;	/* the next attempt needs no backoff */
	bool			 clock_unsync;	/* local clock before the build */
	unsigned		 short_lived;
	bool			 dup_warned;

	int64_t			 clock_offset;
	struct uplink_status	 st;
	uint8_t			 rnd[256];
	size_t			 rnd_left;
};

static void	uplink_drop(struct uplink *, enum drop_kind, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	attempt_start(struct uplink *);
static void	tcp_next(struct uplink *);

static void
timer_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};

	event_add(ev, &tv);
}

static void
fmt_ms(char *buf, size_t cap, uint64_t ms)
{
	if (ms < 10000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else
		snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
}

/* Bytes for masks and nonces, drawn from the DRBG in blocks. */
static int
random_bytes(struct uplink *u, void *out, size_t n)
{
	if (n > sizeof(u->rnd))
		return tls_random(out, n);
	if (u->rnd_left < n) {
		if (tls_random(u->rnd, sizeof(u->rnd)) != 0)
			return -1;
		u->rnd_left = sizeof(u->rnd);
	}
	memcpy(out, u->rnd + sizeof(u->rnd) - u->rnd_left, n);
	u->rnd_left -= n;
	return 0;
}

const char *
uplink_state_name(enum uplink_state s)
{
	switch (s) {
	case UPLINK_OFF:		return "off";
	case UPLINK_WAITING:		return "waiting";
	case UPLINK_CONNECTING:		return "connecting";
	case UPLINK_SUBSCRIBING:	return "subscribing";
	case UPLINK_ONLINE:		return "online";
	case UPLINK_STOPPED:		return "stopped";
	}
	return "?";
}

/* ---- output ------------------------------------------------------------- */

static bool
scratch_fit(struct uplink *u, size_t n)
{
	uint8_t *p;
	size_t cap = u->scratch_cap ? u->scratch_cap : 512;

	if (n <= u->scratch_cap)
		return true;
	while (cap < n)
		cap *= 2;
	if ((p = realloc(u->scratch, cap)) == NULL)
		return false;
	u->scratch = p;
	u->scratch_cap = cap;
	return true;
}

/*
 * One masked WebSocket frame around head[0..hlen) + body[0..blen), masked
 * straight into the output buffer: the payload is copied once, never twice.
 */
static int
send_frame(struct uplink *u, enum ws_opcode op, const void *head, size_t hlen,
    const void *body, size_t blen)
{
	struct evbuffer *out = bufferevent_get_output(u->bev);
	uint8_t hdr[WS_MAX_HEADER], mask[WS_MASK_LEN];
	struct evbuffer_iovec v;
	size_t n = hlen + blen, fh;

	if (random_bytes(u, mask, sizeof(mask)) != 0 ||
	    ws_frame_header_encode(hdr, sizeof(hdr), true, op, n, mask,
	    &fh) != WS_OK)
		return -1;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(fh + n), &v, 1) < 1)
		return -1;
	memcpy(v.iov_base, hdr, fh);
	if (hlen > 0)
		memcpy((uint8_t *)v.iov_base + fh, head, hlen);
	if (blen > 0)
		memcpy((uint8_t *)v.iov_base + fh + hlen, body, blen);
	ws_mask((uint8_t *)v.iov_base + fh, n, mask, 0);
	v.iov_len = fh + n;
	if (evbuffer_commit_space(out, &v, 1) != 0)
		return -1;
	u->st.bytes_out += fh + n;
	u->t_last_send = clock_mono_ms();
	return 0;
}

static int
send_packet(struct uplink *u, const struct mqtt_packet *pkt)
{
	size_t n;

	if (mqtt_size(pkt, MQTT_V311, &n) != MQTT_OK || !scratch_fit(u, n) ||
	    mqtt_encode(pkt, MQTT_V311, u->scratch, u->scratch_cap, &n) !=
	    MQTT_OK)
		return -1;
	return send_frame(u, WS_OP_BINARY, u->scratch, n, NULL, 0);
}

static uint16_t
pid_next(struct uplink *u)
{
	for (;;) {
		bool used = false;

		if (++u->next_pid == 0)
			u->next_pid = 1;
		for (size_t i = 0; i < u->nops && !used; i++)
			used = u->opv[i].pid == u->next_pid;
		if (!used)
			return u->next_pid;
	}
}

static struct op *
op_add(struct uplink *u, uint16_t pid, bool subscribe)
{
	struct op *o;

	if (u->nops == u->capops) {
		size_t cap = u->capops ? 2 * u->capops : 16;

		if ((o = reallocarray(u->opv, cap, sizeof(*o))) == NULL)
			return NULL;
		u->opv = o;
		u->capops = cap;
	}
	o = &u->opv[u->nops++];
	*o = (struct op){ .pid = pid, .subscribe = subscribe,
	    .sent_ms = clock_mono_ms() };
	if (!subscribe)
		u->npub++;
	return o;
}

/* Remove the op of pid, keeping the others in sending order. */
static bool
op_take(struct uplink *u, uint16_t pid, bool subscribe, struct op *out)
{
	for (size_t i = 0; i < u->nops; i++) {
		if (u->opv[i].pid != pid || u->opv[i].subscribe != subscribe)
			continue;
		*out = u->opv[i];
		memmove(&u->opv[i], &u->opv[i + 1],
		    (u->nops - i - 1) * sizeof(*u->opv));
		u->nops--;
		if (!subscribe)
			u->npub--;
		return true;
	}
	return false;
}

bool
uplink_ready(const struct uplink *u)
{
	return u->state == UPLINK_ONLINE && !u->planned &&
	    evbuffer_get_length(bufferevent_get_output(u->bev)) <
	    UPLINK_OUT_HIGH;
}

int
uplink_publish(struct uplink *u, struct buf_view topic, struct buf_view payload,
    uint8_t qos, bool retain, bool dup, uint16_t *pid)
{
	struct mqtt_publish pub = {
		.dup = dup && qos > 0, .qos = qos, .retain = retain,
		.topic = topic, .payload = payload,
	};
	uint8_t head[MQTT_MAX_HEADER + 2 + 65535 + 2];
	size_t hl;

	*pid = 0;
	if (u->state != UPLINK_ONLINE || qos > 1)
		return -1;
	if (qos == 1)
		pub.packet_id = pid_next(u);
	if (mqtt_encode_publish_header(&pub, MQTT_V311, head, sizeof(head),
	    &hl) != MQTT_OK)
		return -1;
	if (qos == 1 && op_add(u, pub.packet_id, false) == NULL)
		return -1;
	if (send_frame(u, WS_OP_BINARY, head, hl, payload.ptr,
	    payload.len) != 0) {
		struct op o;

		if (qos == 1)
			(void)op_take(u, pub.packet_id, false, &o);
		return -1;
	}
	u->st.publishes++;
	*pid = pub.packet_id;
	return 0;
}

/* ---- credentials and signing -------------------------------------------- */

/* The credentials of this attempt, read afresh: a rotated file or a new
 * environment is used at the next connect without a reload. */
static int
load_creds(struct uplink *u, struct creds *c, char *err, size_t cap)
{
	const struct cfg_credentials *cc = &u->cfg->aws.credentials;
	struct creds_error ce = { 0 };
	enum creds_status cs;
	uint8_t *buf;
	size_t len;

	switch (cc->source) {
	case CFG_CRED_STATIC:
		cs = creds_from_values(cc->access_key_id, cc->secret_access_key,
		    cc->session_token, c, &ce);
		break;
	case CFG_CRED_ENV:
		cs = creds_from_values(getenv("AWS_ACCESS_KEY_ID"),
		    getenv("AWS_SECRET_ACCESS_KEY"),
		    getenv("AWS_SESSION_TOKEN"), c, &ce);
		if (cs != CREDS_OK) {
			snprintf(err, cap, "credentials from the environment "
			    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): %s",
			    ce.msg[0] ? ce.msg : creds_strerror(cs));
			return -1;
		}
		return 0;
	case CFG_CRED_PROFILE:
		if ((buf = file_read(cc->file, UPLINK_CREDS_MAX, &len)) == NULL) {
			snprintf(err, cap, "credentials file %s: %s", cc->file,
			    strerror(errno));
			return -1;
		}
		cs = creds_parse_file(buf, len, cc->profile, c, &ce);
		mbedtls_platform_zeroize(buf, len);
		free(buf);
		if (cs != CREDS_OK) {
			if (ce.line > 0)
				snprintf(err, cap, "credentials file %s:%zu: %s",
				    cc->file, ce.line,
				    ce.msg[0] ? ce.msg : creds_strerror(cs));
			else
				snprintf(err, cap, "credentials file %s, "
				    "profile %s: %s", cc->file, cc->profile,
				    ce.msg[0] ? ce.msg : creds_strerror(cs));
			return -1;
		}
		return 0;
	default:
		cs = CREDS_INVALID;
		break;
	}
	if (cs != CREDS_OK) {
		snprintf(err, cap, "aws.credentials: %s",
		    ce.msg[0] ? ce.msg : creds_strerror(cs));
		return -1;
	}
	return 0;
}

static void
target_free(struct uplink *u)
{
	if (u->target != NULL) {
		mbedtls_platform_zeroize(u->target, strlen(u->target));
		free(u->target);
		u->target = NULL;
	}
}

/* Sign the upgrade and queue the request: the bytes carry the session token,
 * so the copies are wiped as soon as they are in the output buffer. */
static int
send_upgrade(struct uplink *u, char *err, size_t cap)
{
	struct creds c;
	struct sigv4_creds sc;
	struct sigv4_presign p = {
		.host = u->host, .port = u->port, .region = u->cfg->aws.region,
	};
	enum sigv4_status ss;
	char *req = NULL;
	size_t len, rlen;
	int rc = -1;

	if (load_creds(u, &c, err, cap) != 0)
		return -1;
	creds_sigv4(&c, &sc);
	p.creds = &sc;
	u->signed_at = (int64_t)time(NULL) + u->clock_offset;
	p.time = u->signed_at;
	target_free(u);
	if ((ss = sigv4_presign(NULL, 0, &p, &len)) != SIGV4_NO_SPACE ||
	    (u->target = malloc(len + 1)) == NULL ||
	    (ss = sigv4_presign(u->target, len + 1, &p, NULL)) != SIGV4_OK) {
		snprintf(err, cap, "signing: %s", sigv4_strerror(
		    ss == SIGV4_NO_SPACE ? SIGV4_CRYPTO : ss));
		goto out;
	}
	u->up = (struct ws_upgrade){
		.host = u->host, .port = u->port, .target = u->target,
		.protocol = "mqtt",
	};
	if (random_bytes(u, u->up.nonce, sizeof(u->up.nonce)) != 0 ||
	    ws_upgrade_request(NULL, 0, &u->up, &rlen) != WS_NO_SPACE ||
	    (req = malloc(rlen + 1)) == NULL ||
	    ws_upgrade_request(req, rlen + 1, &u->up, NULL) != WS_OK) {
		snprintf(err, cap, "building the WebSocket upgrade failed");
		goto out;
	}
	if (bufferevent_write(u->bev, req, rlen) != 0) {
		snprintf(err, cap, "out of memory");
		goto out;
	}
	u->st.bytes_out += rlen;
	rc = 0;
out:
	if (req != NULL) {
		mbedtls_platform_zeroize(req, rlen);
		free(req);
	}
	creds_clear(&c);
	return rc;
}

/*
 * A refused upgrade carries AWS's clock in its Date header. SigV4 allows
 * 5 minutes of skew; beyond that, or whenever the local clock is known to be
 * wrong, sign with AWS's time from now on and try again at once.
 */
static void
clock_check(struct uplink *u, const struct ws_handshake *hs)
{
	int64_t local = (int64_t)time(NULL), skew;

	if (!hs->has_date)
		return;
	skew = hs->date - (local + u->clock_offset);
	if (skew > -UPLINK_SKEW_S && skew < UPLINK_SKEW_S && !u->clock_unsync)
		return;
	u->clock_offset = hs->date - local;
	u->clock_unsync = false;
	u->retry_now = true;
	log_warnx("uplink: the local clock is %+" PRId64 "s off AWS's (Date of "
	    "its %d answer); signing with AWS's time from now on",
	    -u->clock_offset, hs->status);
}

/* ---- subscriptions ------------------------------------------------------ */

static void
filters_free(struct uplink *u)
{
	for (size_t i = 0; i < u->nfilters; i++)
		free(u->filters[i]);
	free(u->filters);
	free(u->filter_qos);
	u->filters = NULL;
	u->filter_qos = NULL;
	u->nfilters = 0;
}

/* The remote filters of the "in" rules, each once, at most AWS's number. */
static int
filters_build(struct uplink *u)
{
	const struct cfg *cfg = u->cfg;
	size_t max = (size_t)cfg->aws.limits.max_subscriptions, want = 0;

	filters_free(u);
	if ((u->filters = calloc(cfg->nbridge + 1, sizeof(char *))) == NULL ||
	    (u->filter_qos = calloc(cfg->nbridge + 1, 1)) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nbridge; i++) {
		const struct cfg_bridge_rule *r = &cfg->bridge[i];
		char *f;
		size_t j;

		if (r->direction == CFG_DIR_OUT)
			continue;
		if ((f = str_concat3(r->remote_prefix, r->topic, "")) == NULL)
			return -1;
		for (j = 0; j < u->nfilters && strcmp(u->filters[j], f); j++)
			;
		if (j < u->nfilters) {	/* the same filter twice: once */
			if (r->qos > u->filter_qos[j])
				u->filter_qos[j] = r->qos > 1 ? 1 : (uint8_t)r->qos;
			free(f);
			continue;
		}
		want++;
		if (u->nfilters == max) {
			free(f);
			continue;
		}
		u->filters[u->nfilters] = f;
		u->filter_qos[u->nfilters++] = r->qos > 1 ? 1 : (uint8_t)r->qos;
	}
	if (want > max)
		log_warnx("uplink: the bridge rules need %zu subscriptions; AWS "
		    "allows %zu per connection (aws.limits.max_subscriptions): "
		    "the ones past it are not made", want, max);
	return 0;
}

static void
go_online(struct uplink *u)
{
	u->state = UPLINK_ONLINE;
	log_notice("uplink: online (%u subscription%s)", u->st.subscriptions,
	    u->st.subscriptions == 1 ? "" : "s");
	u->ops.online(u->arg);
}

static int
subscribe_all(struct uplink *u)
{
	size_t per = (size_t)u->cfg->aws.limits.filters_per_subscribe, n;

	uint8_t *list;
	size_t cap = 0;
	int rc = -1;

	if (per == 0)
		per = 1;
	u->st.subscriptions = 0;
	u->sub_pending = 0;
	if (filters_build(u) != 0)
		return -1;
	for (size_t i = 0; i < u->nfilters; i++)
		cap += strlen(u->filters[i]) + 3;
	if ((list = malloc(cap + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < u->nfilters; i += n) {
		struct buf_writer w;
		struct mqtt_packet pkt = { .type = MQTT_SUBSCRIBE };
		struct op *o;

		n = u->nfilters - i < per ? u->nfilters - i : per;
		buf_writer_init(&w, list, cap);
		for (size_t j = 0; j < n; j++) {
			struct mqtt_subscription s = {
				.filter = { (const uint8_t *)u->filters[i + j],
				    strlen(u->filters[i + j]) },
				.qos = u->filter_qos[i + j],
			};

			mqtt_subscription_put(&w, &s);
		}
		pkt.subscribe.packet_id = pid_next(u);
		pkt.subscribe.list = (struct buf_view){ list, w.len };
		if ((o = op_add(u, pkt.subscribe.packet_id, true)) == NULL)
			goto out;
		o->first = i;
		o->count = n;
		if (send_packet(u, &pkt) != 0)
			goto out;
		u->sub_pending++;
	}
	rc = 0;
out:
	free(list);
	return rc;
}

/* ---- MQTT in ------------------------------------------------------------ */

static void
handle_suback(struct uplink *u, const struct mqtt_suback *sa)
{
	struct op o;
	size_t n = sa->reason_codes.len;

	if (!op_take(u, sa->packet_id, true, &o)) {
		uplink_drop(u, DROP_LOST, "SUBACK for unknown packet %u",
		    sa->packet_id);
		return;
	}
	for (size_t i = 0; i < o.count; i++) {
		uint8_t rc = i < n ? sa->reason_codes.ptr[i] : 0x80;

		if (rc <= 1) {
			u->st.subscriptions++;
			continue;
		}
		/* most likely the IoT policy: the connection stays */
		log_warnx("uplink: AWS refused the subscription to %s (SUBACK "
		    "0x%02x); check the IoT policy (iot:Subscribe) and "
		    "aws.limits.max_subscriptions", u->filters[o.first + i], rc);
	}
	if (u->state == UPLINK_SUBSCRIBING && --u->sub_pending == 0)
		go_online(u);
}

/* MQTT 3.1.1's CONNACK return codes (3.2.2.3), which AWS answers with. */
static const char *
connack_name(uint8_t rc)
{
	static const char *const names[] = {
		"accepted", "unacceptable protocol version",
		"identifier rejected", "server unavailable",
		"bad user name or password", "not authorized",
	};

	return rc < sizeof(names) / sizeof(*names) ? names[rc] :
	    "unknown return code";
}

static void
handle_packet(struct uplink *u, const struct mqtt_packet *pkt)
{
	struct mqtt_packet ack = { .type = MQTT_PUBACK };
	struct op o;

	switch (pkt->type) {
	case MQTT_CONNACK:
		if (u->state != UPLINK_CONNECTING || u->t_connack != 0)
			break;
		if (pkt->connack.reason_code != 0) {
			uplink_drop(u, DROP_FAILED, "CONNACK refused: %s "
			    "(check the IoT policy's iot:Connect for client id "
			    "%s)", connack_name(pkt->connack.reason_code),
			    u->cfg->aws.client_id);
			return;
		}
		event_del(u->ev_deadline);
		u->t_connack = clock_mono_ms();
		u->st.connects++;
		u->state = UPLINK_SUBSCRIBING;
		log_notice("uplink: connection-success to %s:%u as %s (%s%s)",
		    u->host, u->port, u->cfg->aws.client_id,
		    tls_version(u->bev), tls_resumed(u->bev) ?
		    ", session resumed" : "");
		if (subscribe_all(u) != 0) {
			uplink_drop(u, DROP_LOST, "out of memory");
			return;
		}
		if (u->sub_pending == 0)
			go_online(u);
		return;
	case MQTT_SUBACK:
		handle_suback(u, &pkt->suback);
		return;
	case MQTT_PUBACK:
		if (!op_take(u, pkt->ack.packet_id, false, &o)) {
			log_debug("uplink: PUBACK for unknown packet %u",
			    pkt->ack.packet_id);
			return;
		}
		u->ops.acked(u->arg, pkt->ack.packet_id);
		return;
	case MQTT_PUBLISH:
		if (u->t_connack == 0 || pkt->publish.qos > 1)
			break;
		u->st.received++;
		u->ops.message(u->arg, &pkt->publish);
		if (pkt->publish.qos == 1 && u->bev != NULL) {
			ack.ack.packet_id = pkt->publish.packet_id;
			(void)send_packet(u, &ack);
		}
		return;
	case MQTT_PINGRESP:
		u->ping_pending = false;
		return;
	default:
		break;
	}
	uplink_drop(u, DROP_LOST, "AWS sent an unexpected %s",
	    mqtt_type_name(pkt->type));
}

static void
mqtt_input(struct uplink *u)
{
	struct evbuffer *in = u->mqtt_in;

	while (u->phase == PH_MQTT) {
		uint8_t head[MQTT_MAX_HEADER], *p;
		struct mqtt_header h;
		struct mqtt_packet pkt;
		enum mqtt_status st;
		size_t used;

		st = mqtt_probe(head, (size_t)evbuffer_copyout(in, head,
		    sizeof(head)), UPLINK_MAX_PACKET, &h);
		if (st == MQTT_NEED_MORE)
			return;
		if (st == MQTT_OK && evbuffer_get_length(in) < h.size)
			return;
		if (st == MQTT_OK) {
			if ((p = evbuffer_pullup(in, (ev_ssize_t)h.size)) == NULL) {
				uplink_drop(u, DROP_LOST, "out of memory");
				return;
			}
			st = mqtt_decode(p, h.size, MQTT_V311, UPLINK_MAX_PACKET,
			    &pkt, &used);
		}
		if (st != MQTT_OK) {
			uplink_drop(u, DROP_LOST, "malformed MQTT from AWS: %s",
			    mqtt_strerror(st));
			return;
		}
		handle_packet(u, &pkt);
		if (u->phase == PH_MQTT)
			evbuffer_drain(in, used);
	}
}

/* ---- WebSocket in ------------------------------------------------------- */

static void
ws_close_send(struct uplink *u, uint16_t code)
{
	uint8_t frame[WS_MAX_HEADER + 2], mask[WS_MASK_LEN];
	size_t n;

	if (random_bytes(u, mask, sizeof(mask)) == 0 &&
	    ws_close_encode(frame, sizeof(frame), code, NULL, 0, mask, &n) ==
	    WS_OK)
		(void)bufferevent_write(u->bev, frame, n);
}

static void
ws_input(struct uplink *u)
{
	struct evbuffer *in = bufferevent_get_input(u->bev);

	while (u->phase == PH_MQTT && evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in), used;
		uint8_t *p = evbuffer_pullup(in, -1);
		struct ws_event ev;
		enum ws_status st;
		char why[64];

		if (p == NULL) {
			uplink_drop(u, DROP_LOST, "out of memory");
			return;
		}
		st = ws_decode(&u->dec, p, len, &ev, &used);
		if (st == WS_NEED_MORE)
			break;
		if (st != WS_OK) {
			ws_close_send(u, ws_close_code(st));
			uplink_drop(u, DROP_LOST, "WebSocket: %s",
			    ws_strerror(st));
			return;
		}
		switch (ev.type) {
		case WS_EV_DATA:
			if (ev.payload.len > 0 && evbuffer_add(u->mqtt_in,
			    ev.payload.ptr, ev.payload.len) != 0) {
				uplink_drop(u, DROP_LOST, "out of memory");
				return;
			}
			break;
		case WS_EV_PING:
			(void)send_frame(u, WS_OP_PONG, ev.payload.ptr,
			    ev.payload.len, NULL, 0);
			break;
		case WS_EV_PONG:
			break;
		case WS_EV_CLOSE:
			ws_close_send(u, ev.close_code == WS_CLOSE_NO_STATUS ?
			    0 : ev.close_code);
			log_escape(why, sizeof(why), ev.close_reason.ptr,
			    ev.close_reason.len);
			uplink_drop(u, DROP_LOST, "closed by AWS (WebSocket "
			    "close %u%s%s)", ev.close_code, why[0] ? ": " : "",
			    why);
			return;
		}
		evbuffer_drain(in, used);
		u->st.bytes_in += used;
	}
	mqtt_input(u);
}

static void
handle_upgrade(struct uplink *u)
{
	struct evbuffer *in = bufferevent_get_input(u->bev);
	size_t len = evbuffer_get_length(in);
	uint8_t *p = evbuffer_pullup(in, -1);
	struct mqtt_packet pkt = { .type = MQTT_CONNECT };
	struct ws_handshake hs;
	enum ws_status st;
	uint64_t ka;
	char body[256];

	if (p == NULL)
		return;
	st = ws_upgrade_response(p, len, &u->up, &hs);
	if (st == WS_NEED_MORE)
		return;
	if (st == WS_HTTP_REFUSED) {
		log_escape(body, sizeof(body), hs.body.ptr, hs.body.len);
		clock_check(u, &hs);
		uplink_drop(u, DROP_FAILED, "WebSocket upgrade refused: %d%s%s",
		    hs.status, body[0] ? " " : "", body);
		return;
	}
	if (st != WS_OK) {
		uplink_drop(u, DROP_FAILED, "WebSocket upgrade: %s",
		    ws_strerror(st));
		return;
	}
	evbuffer_drain(in, hs.consumed);
	u->st.bytes_in += hs.consumed;
	target_free(u);
	ws_decoder_init(&u->dec, UPLINK_MAX_PACKET, UPLINK_MAX_PACKET);
	u->phase = PH_MQTT;

	/* AWS takes keepalives of 30..1200 s */
	ka = u->cfg->aws.keepalive_ms / 1000;
	ka = ka < 30 ? 30 : ka > 1200 ? 1200 : ka;
	pkt.connect.clean_start = true;
	pkt.connect.keep_alive = (uint16_t)ka;
	pkt.connect.client_id = (struct buf_view){
	    (const uint8_t *)u->cfg->aws.client_id,
	    strlen(u->cfg->aws.client_id) };
	if (send_packet(u, &pkt) != 0) {
		uplink_drop(u, DROP_FAILED, "cannot send CONNECT");
		return;
	}
	ws_input(u);
}

/* ---- connection events -------------------------------------------------- */

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct uplink *u = arg;

	if (u->phase == PH_UPGRADE)
		handle_upgrade(u);
	else if (u->phase == PH_MQTT)
		ws_input(u);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct uplink *u = arg;

	if (u->phase == PH_MQTT && u->t_connack != 0)
		u->ops.drained(u->arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct uplink *u = arg;
	char err[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (u->phase != PH_TLS)
			return;
		log_debug("uplink: TLS %s %s%s", tls_version(bev),
		    tls_ciphersuite(bev), tls_resumed(bev) ? " (resumed)" : "");
		u->phase = PH_UPGRADE;
		if (send_upgrade(u, err, sizeof(err)) != 0)
			uplink_drop(u, DROP_FAILED, "%s", err);
		return;
	}
	if (u->phase == PH_TLS) {
		uplink_drop(u, DROP_FAILED, "TLS: %s", tls_last_error(bev));
		return;
	}
	uplink_drop(u, u->t_connack ? DROP_LOST : DROP_FAILED, "%s",
	    (what & BEV_EVENT_EOF) ? "connection closed by AWS" :
	    tls_last_error(bev));
}

static void
start_tls(struct uplink *u)
{
	uint64_t left = u->t_attempt + u->cfg->aws.connect_timeout_ms;
	uint64_t now = clock_mono_ms();
	struct bufferevent *tb;

	bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
	tb = tls_client_wrap(u->tls, u->bev, u->host,
	    left > now ? (int)(left - now) : 1);
	u->bev = tb;	/* the socket bev is owned by the TLS layer now */
	if (tb == NULL) {
		uplink_drop(u, DROP_FAILED, "TLS: out of memory");
		return;
	}
	u->phase = PH_TLS;
	bufferevent_setcb(tb, on_read, on_write, on_event, u);
	bufferevent_setwatermark(tb, EV_WRITE, 0, 0);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void
on_proxy_read(struct bufferevent *bev, void *arg)
{
	struct uplink *u = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	struct http_response r;
	enum http_status hs;
	char reason[64];

	hs = http_response_parse(evbuffer_pullup(in, -1), len, &r);
	if (hs == HTTP_NEED_MORE)
		return;
	if (hs != HTTP_OK) {
		uplink_drop(u, DROP_FAILED, "proxy %s:%u: %s", u->proxy_host,
		    u->proxy_port, http_strerror(hs));
		return;
	}
	if (r.status / 100 != 2) {
		log_escape(reason, sizeof(reason), r.reason.ptr, r.reason.len);
		uplink_drop(u, DROP_FAILED, "proxy %s:%u refused CONNECT: %d %s",
		    u->proxy_host, u->proxy_port, r.status, reason);
		return;
	}
	if (len != r.head_len) {
		uplink_drop(u, DROP_FAILED, "proxy %s:%u sent data before TLS",
		    u->proxy_host, u->proxy_port);
		return;
	}
	evbuffer_drain(in, len);
	start_tls(u);
}

static void
on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct uplink *u = arg;

	if (u->phase == PH_PROXY && !(what & BEV_EVENT_CONNECTED)) {
		uplink_drop(u, DROP_FAILED, "proxy %s:%u closed the tunnel",
		    u->proxy_host, u->proxy_port);
		return;
	}
	if (!(what & BEV_EVENT_CONNECTED)) {
		log_debug("uplink: TCP connect: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(u->bev);
		u->bev = NULL;
		tcp_next(u);
		return;
	}
	if (u->proxy_host == NULL) {
		start_tls(u);
		return;
	}
	u->phase = PH_PROXY;
	evbuffer_add_printf(bufferevent_get_output(bev),
	    "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n", u->host, u->port,
	    u->host, u->port);
	if (u->proxy_auth != NULL)
		evbuffer_add_printf(bufferevent_get_output(bev),
		    "Proxy-Authorization: Basic %s\r\n", u->proxy_auth);
	evbuffer_add(bufferevent_get_output(bev), "\r\n", 2);
	bufferevent_setcb(bev, on_proxy_read, NULL, on_tcp_event, u);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Try the next address the name resolved to. */
static void
tcp_next(struct uplink *u)
{
	while (u->ai_next != NULL) {
		struct evutil_addrinfo *a = u->ai_next;

		u->ai_next = a->ai_next;
		u->bev = bufferevent_socket_new(u->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (u->bev == NULL)
			break;
		u->phase = PH_TCP;
		bufferevent_setcb(u->bev, NULL, NULL, on_tcp_event, u);
		if (bufferevent_socket_connect(u->bev, a->ai_addr,
		    (int)a->ai_addrlen) == 0)
			return;
		bufferevent_free(u->bev);
		u->bev = NULL;
	}
	uplink_drop(u, DROP_FAILED, "cannot connect to %s:%u: %s",
	    u->proxy_host ? u->proxy_host : u->host,
	    u->proxy_host ? u->proxy_port : u->port,
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
	struct uplink *u = arg;

	if (err == EVUTIL_EAI_CANCEL)
		return;
	u->dns_req = NULL;
	if (err != 0) {
		uplink_drop(u, DROP_FAILED, "DNS: %s: %s",
		    u->proxy_host ? u->proxy_host : u->host,
		    evutil_gai_strerror(err));
		return;
	}
	u->ai = u->ai_next = res;
	tcp_next(u);
}

static void
attempt_start(struct uplink *u)
{
	struct evutil_addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = EVUTIL_AI_ADDRCONFIG,
	};
	struct evdns_getaddrinfo_request *req;
	char port[8];

	u->state = UPLINK_CONNECTING;
	u->phase = PH_DNS;
	u->t_attempt = clock_mono_ms();
	u->t_connack = 0;
	u->st.attempts++;
	log_info("uplink: attempting-connect to %s:%u%s%s (attempt %" PRIu64
	    ")", u->host, u->port, u->proxy_host ? " through proxy " : "",
	    u->proxy_host ? u->proxy_host : "", u->st.attempts);
	timer_ms(u->ev_deadline, u->cfg->aws.connect_timeout_ms);
	snprintf(port, sizeof(port), "%u",
	    u->proxy_host ? u->proxy_port : u->port);
	req = evdns_getaddrinfo(u->dns, u->proxy_host ? u->proxy_host : u->host,
	    port, &hints, on_resolved, u);
	/* NULL: answered already (a literal, /etc/hosts), callback done */
	if (req != NULL && u->phase == PH_DNS)
		u->dns_req = req;
}

static void
on_retry(evutil_socket_t fd, short ev, void *arg)
{
	attempt_start(arg);
}

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	char t[32];

	fmt_ms(t, sizeof(t), u->cfg->aws.connect_timeout_ms);
	uplink_drop(u, DROP_FAILED, "no CONNACK within aws.connect_timeout "
	    "(%s)", t);
}

static void
planned_finish(struct uplink *u)
{
	struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

	(void)send_packet(u, &pkt);
	uplink_drop(u, DROP_PLANNED, "planned reconnect");
}

static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink *u = arg;
	const struct cfg_aws *a = &u->cfg->aws;
	uint64_t now = clock_mono_ms();
	char t[32];

	if (u->state != UPLINK_ONLINE && u->state != UPLINK_SUBSCRIBING)
		return;
	if (u->ping_pending && now - u->t_ping > a->operation_timeout_ms) {
		fmt_ms(t, sizeof(t), a->operation_timeout_ms);
		uplink_drop(u, DROP_LOST, "no PINGRESP within "
		    "aws.operation_timeout (%s)", t);
		return;
	}
	if (u->nops > 0 && now - u->opv[0].sent_ms > a->operation_timeout_ms) {
		fmt_ms(t, sizeof(t), a->operation_timeout_ms);
		uplink_drop(u, DROP_LOST, "no %s for packet %u within "
		    "aws.operation_timeout (%s)", u->opv[0].subscribe ?
		    "SUBACK" : "PUBACK", u->opv[0].pid, t);
		return;
	}
	if (!u->ping_pending && now - u->t_last_send >= a->keepalive_ms) {
		struct mqtt_packet ping = { .type = MQTT_PINGREQ };

		if (send_packet(u, &ping) == 0) {
			u->ping_pending = true;
			u->t_ping = now;
		}
	}
	if (!u->planned && a->max_connection_age_ms > 0 &&
	    now - u->t_connack >= a->max_connection_age_ms) {
		fmt_ms(t, sizeof(t), now - u->t_connack);
		log_info("uplink: the connection is %s old: reconnecting ahead "
		    "of AWS's limit, once in-flight messages are settled", t);
		u->planned = true;
		u->planned_since = now;
	}
	if (u->planned && (u->npub == 0 ||
	    now - u->planned_since > a->operation_timeout_ms))
		planned_finish(u);
}

/* ---- the end of a connection -------------------------------------------- */

static void
conn_close(struct uplink *u, bool polite)
{
	if (u->dns_req != NULL) {
		evdns_getaddrinfo_cancel(u->dns_req);
		u->dns_req = NULL;
	}
	if (u->ai != NULL) {
		evutil_freeaddrinfo(u->ai);
		u->ai = u->ai_next = NULL;
	}
	if (u->bev != NULL) {
		if (polite && u->phase >= PH_UPGRADE)
			tls_close(u->bev, UPLINK_CLOSE_LINGER_MS);
		else if (u->phase >= PH_TLS)
			tls_close(u->bev, 0);
		else
			bufferevent_free(u->bev);
		u->bev = NULL;
	}
	target_free(u);
	evbuffer_drain(u->mqtt_in, evbuffer_get_length(u->mqtt_in));
	event_del(u->ev_deadline);
	u->phase = PH_IDLE;
	u->nops = 0;
	u->npub = 0;
	u->ping_pending = false;
	u->planned = false;
	u->sub_pending = 0;
}

static void
uplink_drop(struct uplink *u, enum drop_kind kind, const char *fmt, ...)
{
	bool was_up = u->t_connack != 0;
	uint64_t now = clock_mono_ms(), delay, up = was_up ? now - u->t_connack : 0;
	char t[32];
	va_list ap;

	/* lost before CONNACK (a WebSocket close, an EOF) is a failed attempt */
	if (!was_up && kind == DROP_LOST)
		kind = DROP_FAILED;
	va_start(ap, fmt);
	vsnprintf(u->st.last_error, sizeof(u->st.last_error), fmt, ap);
	va_end(ap);
	conn_close(u, kind == DROP_PLANNED || kind == DROP_STOP);
	u->t_connack = 0;
	if (was_up) {
		u->st.disconnects++;
		fmt_ms(t, sizeof(t), up);
		log_msg(kind == DROP_LOST ? LOG_L_WARNING : LOG_L_INFO,
		    "uplink: disconnect after %s: %s", t, u->st.last_error);
		u->ops.offline(u->arg);
		(void)backoff_connection_ended(&u->bo, up);
		/* AWS closes the older connection of a client id at once */
		if (kind == DROP_LOST && up < UPLINK_SHORT_LIVED_MS)
			u->short_lived++;
		else
			u->short_lived = 0;
	} else if (kind == DROP_FAILED) {
		u->st.failures++;
		log_warnx("uplink: connection-failure: %s", u->st.last_error);
	}
	if (kind == DROP_STOP) {
		u->state = UPLINK_STOPPED;
		return;
	}
	u->state = UPLINK_WAITING;
	if (u->short_lived >= UPLINK_SHORT_LIVED_MAX) {
		if (!u->dup_warned)
			log_warnx("uplink: probable duplicate client id %s: AWS "
			    "closed %u connections in a row within seconds of "
			    "CONNACK, which it does when another connection "
			    "uses the same client id; give every gateway its "
			    "own aws.client_id. Backing off to the maximum.",
			    u->cfg->aws.client_id, u->short_lived);
		u->dup_warned = true;
		backoff_to_max(&u->bo);
	}
	if (kind == DROP_PLANNED || u->retry_now) {
		u->retry_now = false;
		delay = 0;
	} else {
		uint32_t r = 0;

		(void)random_bytes(u, &r, sizeof(r));
		delay = backoff_next(&u->bo, r);
	}
	/* pace CONNECTs of one client id whatever the backoff says */
	if (now - u->t_attempt < UPLINK_CONNECT_PACE_MS &&
	    delay < UPLINK_CONNECT_PACE_MS - (now - u->t_attempt))
		delay = UPLINK_CONNECT_PACE_MS - (now - u->t_attempt);
	u->retry_at = now + delay;
	fmt_ms(t, sizeof(t), delay);
	log_info("uplink: next attempt in %s", t);
	timer_ms(u->ev_retry, delay);
}

/* ---- setup -------------------------------------------------------------- */

/* https_proxy as curl reads it: http://[user:pass@]host[:port][/] */
static int
proxy_setup(struct uplink *u)
{
	const struct cfg_proxy *p = &u->cfg->aws.proxy;
	struct cfg_proxy envp = { 0 };
	const char *env = getenv("https_proxy");
	char err[160], *userpass = NULL;
	size_t n;
	int rc = -1;

	if (env == NULL || *env == '\0')
		env = getenv("HTTPS_PROXY");
	if (p->url.host == NULL && env != NULL && *env != '\0') {
		if (cfg_proxy_parse(env, &envp, err, sizeof(err)) != CFG_OK) {
			log_warnx("uplink: https_proxy: %s; connecting "
			    "directly", err);
			return 0;
		}
		p = &envp;
	}
	if (p->url.host == NULL)
		return 0;
	if ((u->proxy_host = strdup(p->url.host)) == NULL)
		goto out;
	u->proxy_port = p->url.port;
	if (p->username != NULL) {
		if ((userpass = str_concat3(p->username, ":", p->password)) == NULL)
			goto out;
		(void)mbedtls_base64_encode(NULL, 0, &n,
		    (const uint8_t *)userpass, strlen(userpass));
		if ((u->proxy_auth = malloc(n)) == NULL ||
		    mbedtls_base64_encode((uint8_t *)u->proxy_auth, n, &n,
		    (const uint8_t *)userpass, strlen(userpass)) != 0)
			goto out;
	}
	rc = 0;
out:
	if (userpass != NULL) {
		mbedtls_platform_zeroize(userpass, strlen(userpass));
		free(userpass);
	}
	cfg_proxy_clear(&envp);
	return rc;
}

static void
conf_release(struct uplink *u)
{
	free(u->host);
	free(u->proxy_host);
	if (u->proxy_auth != NULL) {
		mbedtls_platform_zeroize(u->proxy_auth, strlen(u->proxy_auth));
		free(u->proxy_auth);
	}
	u->host = u->proxy_host = u->proxy_auth = NULL;
	tls_client_ctx_unref(u->tls);
	u->tls = NULL;
}

/* What a connection is made from; NULL: no uplink. */
static int
conf_apply(struct uplink *u)
{
	const struct cfg *cfg = u->cfg;
	const struct cfg_reconnect *rc = &cfg->reconnect;
	char err[256];

	conf_release(u);
	backoff_init(&u->bo, rc->base_ms, rc->max_ms, rc->stable_ms, rc->jitter);
	if (!cfg->aws.present)
		return 0;
	if ((u->host = strdup(cfg->aws.endpoint.host)) == NULL)
		return -1;
	u->port = cfg->aws.endpoint.port;
	if ((u->tls = tls_client_ctx_new(cfg->aws.ca_file, NULL, NULL, err,
	    sizeof(err))) == NULL) {
		log_warnx("uplink: aws.ca_file: %s", err);
		return -1;
	}
	return proxy_setup(u);
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Would a connection made from b differ from one made from a? */
static bool
conf_changed(const struct cfg *a, const struct cfg *b)
{
	const struct cfg_aws *x = &a->aws, *y = &b->aws;

	if (x->present != y->present)
		return true;
	if (!x->present)
		return false;
	if (!str_same(x->endpoint.host, y->endpoint.host) ||
	    x->endpoint.port != y->endpoint.port ||
	    !str_same(x->region, y->region) ||
	    !str_same(x->client_id, y->client_id) ||
	    !str_same(x->ca_file, y->ca_file) ||
	    x->keepalive_ms != y->keepalive_ms ||
	    !str_same(x->proxy.url.host, y->proxy.url.host) ||
	    x->proxy.url.port != y->proxy.url.port ||
	    !str_same(x->proxy.username, y->proxy.username) ||
	    !str_same(x->proxy.password, y->proxy.password))
		return true;
	/* the subscriptions: the "in" side of the rules, in order; rules
	 * that only send out do not concern the connection */
	for (size_t i = 0, j = 0;; i++, j++) {
		const struct cfg_bridge_rule *r, *s;

		while (i < a->nbridge && a->bridge[i].direction == CFG_DIR_OUT)
			i++;
		while (j < b->nbridge && b->bridge[j].direction == CFG_DIR_OUT)
			j++;
		if (i == a->nbridge || j == b->nbridge)
			return i != a->nbridge || j != b->nbridge;
		r = &a->bridge[i];
		s = &b->bridge[j];
		if (strcmp(r->topic, s->topic) || r->qos != s->qos ||
		    strcmp(r->remote_prefix, s->remote_prefix))
			return true;
	}
}

struct uplink *
uplink_new(struct event_base *base, const struct cfg *cfg,
    const struct uplink_ops *ops, void *arg)
{
	struct uplink *u;
	struct timeval tick = { 0, UPLINK_TICK_MS * 1000 };

	if ((u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	u->base = base;
	u->cfg = cfg;
	u->ops = *ops;
	u->arg = arg;
	u->state = UPLINK_OFF;
	u->mqtt_in = evbuffer_new();
	u->ev_retry = evtimer_new(base, on_retry, u);
	u->ev_deadline = evtimer_new(base, on_deadline, u);
	u->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, u);
	u->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (u->mqtt_in == NULL || u->ev_retry == NULL || u->ev_deadline == NULL ||
	    u->ev_tick == NULL || u->dns == NULL || conf_apply(u) != 0) {
		uplink_free(u);
		return NULL;
	}
	event_add(u->ev_tick, &tick);
	/* a Pi without RTC boots in 1970: expect a 403 and believe its Date */
	if ((int64_t)time(NULL) < IOTB_BUILD_EPOCH) {
		u->clock_unsync = true;
		log_warnx("uplink: the local clock is earlier than this build: "
		    "taking the time from AWS's first answer");
	}
	if (cfg->aws.present)
		attempt_start(u);
	return u;
}

int
uplink_reload(struct uplink *u, const struct cfg *cfg)
{
	const struct cfg *old = u->cfg;
	bool changed = conf_changed(old, cfg) || (u->state == UPLINK_OFF &&
	    cfg->aws.present);

	u->cfg = cfg;
	if (!changed) {
		const struct cfg_reconnect *rc = &cfg->reconnect;

		/* keep the attempt count: a reload is no stable connection */
		u->bo.base_ms = rc->base_ms;
		u->bo.max_ms = rc->max_ms;
		u->bo.stable_ms = rc->stable_ms;
		u->bo.jitter = rc->jitter;
		return 0;
	}
	if (u->state != UPLINK_OFF && u->state != UPLINK_STOPPED) {
		event_del(u->ev_retry);
		uplink_drop(u, DROP_STOP, "configuration changed");
	}
	u->state = UPLINK_OFF;
	if (conf_apply(u) != 0) {
		snprintf(u->st.last_error, sizeof(u->st.last_error),
		    "the aws settings cannot be used (see the log)");
		log_warnx("uplink: stopped until a reload fixes the aws settings");
		return -1;
	}
	if (cfg->aws.present) {
		log_info("uplink: the aws settings changed: reconnecting");
		attempt_start(u);
	} else {
		log_info("uplink: no aws section any more: stopped");
	}
	return 0;
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	if (u->state == UPLINK_ONLINE || u->state == UPLINK_SUBSCRIBING) {
		struct mqtt_packet pkt = { .type = MQTT_DISCONNECT };

		(void)send_packet(u, &pkt);
	}
	if (u->state != UPLINK_OFF && u->state != UPLINK_STOPPED) {
		uplink_drop(u, DROP_STOP, "stopping");
		log_info("uplink: stopped");
	}
	conn_close(u, false);
	conf_release(u);
	filters_free(u);
	if (u->ev_retry != NULL)
		event_free(u->ev_retry);
	if (u->ev_deadline != NULL)
		event_free(u->ev_deadline);
	if (u->ev_tick != NULL)
		event_free(u->ev_tick);
	if (u->dns != NULL)
		evdns_base_free(u->dns, 0);
	if (u->mqtt_in != NULL)
		evbuffer_free(u->mqtt_in);
	free(u->opv);
	free(u->scratch);
	mbedtls_platform_zeroize(u->rnd, sizeof(u->rnd));
	free(u);
}

void
uplink_status(const struct uplink *u, struct uplink_status *st)
{
	uint64_t now = clock_mono_ms();

	*st = u->st;
	st->state = u->state;
	st->clock_offset_s = u->clock_offset;
	st->inflight = u->npub;
	st->next_attempt_ms = u->state == UPLINK_WAITING && u->retry_at > now ?
	    u->retry_at - now : 0;
	st->connected_ms = u->t_connack ? now - u->t_connack : 0;
}
