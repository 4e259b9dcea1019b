/*
 * MQTT over a SigV4-signed WebSocket, AWS IoT's "wss" on port 443: the
 * upgrade request signed with the credentials read afresh for each attempt
 * (a rotated file or a new environment needs no reload), or with temporary
 * ones from the AWS IoT credentials provider (credfetch.c: fetched before
 * the attempt when there are none, and when new ones replace them, the
 * session is asked to reconnect with those); the presigned target wiped as
 * soon as the request is in the output, and the request once the TLS layer
 * took it; a refused upgrade's Date header, or the credentials provider's,
 * corrects the signing clock (a Pi without RTC boots in 1970); then masked
 * binary frames out, and frames in whose payloads are the MQTT stream.
 * Bytes are parsed by lib/ws and lib/sigv4; this file moves their results
 * between buffers.
 */
#include "daemon/aws/transport_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <mbedtls/platform_util.h>

#include "iotb_build.h"
#include "config/cfg.h"
#include "creds/creds.h"
#include "daemon/aws/credfetch.h"
#include "daemon/util/file.h"
#include "daemon/util/log.h"
#include "daemon/util/tls.h"
#include "sigv4/sigv4.h"
#include "ws/ws.h"

#define WSS_MAX_FRAME	(512u << 10)	/* AWS sends at most 128 KiB payloads */
#define WSS_SKEW_S	300		/* SigV4 tolerates 5 minutes */
#define WSS_CREDS_MAX	(64u << 10)	/* a shared credentials file */

struct wss {
	struct transport	*t;
	struct credfetch	*cf;		/* source iot; else NULL */
	bool			 waiting;	/* prepare() waits for cf */
	struct ws_upgrade	 up;
	char			*target;	/* presigned; secret */
	bool			 upgraded;
	struct ws_decoder	 dec;
	struct evbuffer		*stream;	/* MQTT bytes for the session */
	uint8_t			 rnd[256];	/* masks, drawn in blocks */
	size_t			 rnd_left;
};

/*
 * The signing clock: one per process, as the machine has one clock, so
 * that every connection signs with what any of them learnt.
 */
static struct {
	int64_t	offset;		/* added to the local clock to sign */
	bool	unsync;		/* the local clock is known to be wrong */
	bool	checked;
} sigclock;

static int
random_bytes(struct wss *w, void *out, size_t n)
{
	if (n > sizeof(w->rnd))
		return tls_random(out, n);
	if (w->rnd_left < n) {
		if (tls_random(w->rnd, sizeof(w->rnd)) != 0)
			return -1;
		w->rnd_left = sizeof(w->rnd);
	}
	memcpy(out, w->rnd + sizeof(w->rnd) - w->rnd_left, n);
	w->rnd_left -= n;
	return 0;
}

/*
 * One masked frame around head[0..hlen) + body[0..blen), masked straight
 * into the output buffer: the payload is copied once, never twice.
 */
static int
send_frame(struct transport *t, struct wss *w, struct evbuffer *out,
    enum ws_opcode op, const void *head, size_t hlen, const void *body,
    size_t blen)
{
	uint8_t hdr[WS_MAX_HEADER], mask[WS_MASK_LEN];
	struct evbuffer_iovec v;
	size_t n = hlen + blen, fh;

	if (random_bytes(w, mask, sizeof(mask)) != 0 ||
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
	transport_count(t, 0, fh + n);
	return 0;
}

static void
close_frame(struct transport *t, struct wss *w, struct evbuffer *out,
    uint16_t code)
{
	uint8_t frame[WS_MAX_HEADER + 2], mask[WS_MASK_LEN];
	size_t n;

	if (random_bytes(w, mask, sizeof(mask)) == 0 &&
	    ws_close_encode(frame, sizeof(frame), code, NULL, 0, mask, &n) ==
	    WS_OK && evbuffer_add(out, frame, n) == 0)
		transport_count(t, 0, n);
}

/* ---- credentials and signing ---------------------------------------------- */

/* The credentials of this attempt, read afresh. */
static int
load_creds(const struct wss *w, const struct cfg *cfg, struct creds *c,
    char *err, size_t cap)
{
	const struct cfg_credentials *cc = &cfg->aws.credentials;
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
		if ((buf = file_read(cc->file, WSS_CREDS_MAX, &len)) == NULL) {
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
	case CFG_CRED_IOT:
		if (!credfetch_copy(w->cf, c)) {
			snprintf(err, cap, "the temporary credentials expired "
			    "before the connection was made");
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
target_free(struct wss *w)
{
	if (w->target != NULL) {
		mbedtls_platform_zeroize(w->target, strlen(w->target));
		free(w->target);
		w->target = NULL;
	}
}

/* Sign the upgrade and queue the request: the bytes carry the session
 * token, so the copies are wiped as soon as they are in the output. */
static int
upgrade_send(struct transport *t, struct wss *w, struct evbuffer *out,
    char *err, size_t cap)
{
	const struct cfg *cfg = transport_cfg(t);
	struct transport_info ti;
	struct creds c;
	struct sigv4_creds sc;
	struct sigv4_presign p = { .region = cfg->aws.region };
	enum sigv4_status ss;
	char *req = NULL;
	size_t len, rlen;
	int rc = -1;

	if (load_creds(w, cfg, &c, err, cap) != 0)
		return -1;
	transport_info(t, &ti);
	p.host = ti.host;
	p.port = ti.port;
	creds_sigv4(&c, &sc);
	p.creds = &sc;
	p.time = (int64_t)time(NULL) + sigclock.offset;
	target_free(w);
	if ((ss = sigv4_presign(NULL, 0, &p, &len)) != SIGV4_NO_SPACE ||
	    (w->target = malloc(len + 1)) == NULL ||
	    (ss = sigv4_presign(w->target, len + 1, &p, NULL)) != SIGV4_OK) {
		snprintf(err, cap, "signing: %s", sigv4_strerror(
		    ss == SIGV4_NO_SPACE ? SIGV4_CRYPTO : ss));
		goto out;
	}
	w->up = (struct ws_upgrade){
		.host = ti.host, .port = ti.port,
		.target = w->target, .protocol = "mqtt",
	};
	if (random_bytes(w, w->up.nonce, sizeof(w->up.nonce)) != 0 ||
	    ws_upgrade_request(NULL, 0, &w->up, &rlen) != WS_NO_SPACE ||
	    (req = malloc(rlen + 1)) == NULL ||
	    ws_upgrade_request(req, rlen + 1, &w->up, NULL) != WS_OK) {
		snprintf(err, cap, "building the WebSocket upgrade failed");
		goto out;
	}
	/* The request holds the signature and the session token: the output
	 * references it rather than copying it into chains that libevent
	 * frees unwiped, and wipes it once the TLS layer has taken it. */
	if (transport_add_secret(out, req, rlen) != 0) {
		req = NULL;
		snprintf(err, cap, "out of memory");
		goto out;
	}
	req = NULL;
	transport_count(t, 0, rlen);
	target_free(w);		/* sent: only the nonce is needed now */
	w->up.target = NULL;
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
 * An answer from AWS carries its clock in its Date header: a refused
 * upgrade, or the credentials provider's. SigV4 allows 5 minutes of skew;
 * beyond that, or whenever the local clock is known to be wrong, sign with
 * AWS's time from now on. Returns whether it changed (the next attempt may
 * go at once).
 */
static bool
clock_learn(struct transport *t, int64_t date, const char *from)
{
	int64_t local = (int64_t)time(NULL), skew;
	struct transport_info ti;

	skew = date - (local + sigclock.offset);
	if (skew > -WSS_SKEW_S && skew < WSS_SKEW_S && !sigclock.unsync)
		return false;
	sigclock.offset = date - local;
	sigclock.unsync = false;
	transport_info(t, &ti);
	log_warnx("%s: the local clock is %+" PRId64 "s off AWS's (Date of "
	    "%s); signing with AWS's time from now on", ti.name,
	    -sigclock.offset, from);
	return true;
}

static bool
clock_check(struct transport *t, const struct ws_handshake *hs)
{
	char from[32];

	if (!hs->has_date)
		return false;
	snprintf(from, sizeof(from), "its %d answer", hs->status);
	return clock_learn(t, hs->date, from);
}

/* ---- temporary credentials ------------------------------------------------ */

static void
on_fetched(void *arg, int64_t date)
{
	struct wss *w = arg;

	if (date != 0)
		(void)clock_learn(w->t, date, "the credentials provider's "
		    "answer");
	if (w->waiting) {
		w->waiting = false;
		transport_prepared(w->t);
	} else if (w->upgraded)
		transport_expiring(w->t, "new temporary credentials; the "
		    "connection's expire soon");
}

static void
on_fetch_failed(void *arg, const char *why)
{
	struct wss *w = arg;

	if (!w->waiting)
		return;
	w->waiting = false;
	transport_fail(w->t, TRANSPORT_FAILED, "%s", why);
}

static const struct credfetch_ops wss_credfetch_ops = {
	.fetched = on_fetched,
	.failed = on_fetch_failed,
};

/* ---- the implementation --------------------------------------------------- */

static void *
wss_create(struct transport *t, const struct cfg *cfg)
{
	struct transport_info ti;
	struct wss *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->t = t;
	transport_info(t, &ti);
	if ((w->stream = evbuffer_new()) == NULL ||
	    (cfg->aws.present && cfg->aws.credentials.source == CFG_CRED_IOT &&
	    (w->cf = credfetch_new(transport_base(t), transport_dns(t), cfg,
	    ti.name, &wss_credfetch_ops, w)) == NULL)) {
		if (w->stream != NULL)
			evbuffer_free(w->stream);
		free(w);
		return NULL;
	}
	/* a Pi without RTC boots in 1970: expect a 403 and believe its Date */
	if (!sigclock.checked && (int64_t)time(NULL) < IOTB_BUILD_EPOCH) {
		sigclock.unsync = true;
		log_warnx("%s: the local clock is earlier than this build: "
		    "taking the time from AWS's first answer", ti.name);
	}
	sigclock.checked = true;
	return w;
}

static void
wss_reset(void *st)
{
	struct wss *w = st;

	target_free(w);
	evbuffer_drain(w->stream, evbuffer_get_length(w->stream));
	w->upgraded = false;
	w->waiting = false;
}

static void
wss_destroy(void *st)
{
	struct wss *w = st;

	wss_reset(w);
	credfetch_free(w->cf);
	evbuffer_free(w->stream);
	mbedtls_platform_zeroize(w->rnd, sizeof(w->rnd));
	free(w);
}

static bool
str_differ(const char *x, const char *y)
{
	return (x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0);
}

/* The region it signs for, and what the credentials provider is asked. */
static bool
wss_differs(const struct cfg *a, const struct cfg *b)
{
	const struct cfg_credentials *x = &a->aws.credentials,
	    *y = &b->aws.credentials;

	return str_differ(a->aws.region, b->aws.region) ||
	    (x->source == CFG_CRED_IOT) != (y->source == CFG_CRED_IOT) ||
	    str_differ(x->role_alias, y->role_alias) ||
	    str_differ(x->thing_name, y->thing_name);
}

static void
wss_adopt(void *st, const struct cfg *cfg)
{
	struct wss *w = st;

	if (w->cf != NULL)
		credfetch_adopt(w->cf, cfg);
}

/* Temporary credentials first, when they come from the provider. Those
 * fetched for this very attempt are "fresh": a 403 then is no staleness. */
static bool
wss_prepare(struct transport *t, void *st)
{
	struct wss *w = st;

	if (w->cf == NULL)
		return true;
	if (credfetch_ready(w->cf)) {
		credfetch_mark(w->cf);
		return true;
	}
	w->waiting = true;
	credfetch_want(w->cf);
	return false;
}

static void
wss_handshake(struct transport *t, void *st, struct evbuffer *wire)
{
	char err[256];

	if (upgrade_send(t, st, wire, err, sizeof(err)) != 0)
		transport_fail(t, TRANSPORT_FAILED, "%s", err);
}

/* The answer to the upgrade: 101 opens the stream. */
static bool
upgrade_input(struct transport *t, struct wss *w, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	uint8_t *p = evbuffer_pullup(in, -1);
	struct ws_handshake hs;
	enum ws_status st;
	char body[256];

	if (p == NULL)
		return false;
	st = ws_upgrade_response(p, len, &w->up, &hs);
	if (st == WS_NEED_MORE)
		return false;
	if (st == WS_HTTP_REFUSED) {
		bool retry = clock_check(t, &hs), stale = false;

		/* Temporary credentials AWS no longer takes (it may end them
		 * before their expiration): drop them; ones cached from
		 * before this attempt are fetched anew at once, while fresh
		 * ones refused are a refusal, with the usual backoff. */
		if (w->cf != NULL && hs.status == 403 && !retry) {
			stale = !credfetch_fresh(w->cf);
			credfetch_forget(w->cf);
		}
		log_escape(body, sizeof(body), hs.body.ptr, hs.body.len);
		transport_fail(t, retry || stale ? TRANSPORT_RETRY :
		    TRANSPORT_FAILED, "WebSocket upgrade refused: %d%s%s%s",
		    hs.status, body[0] ? " " : "", body, w->cf == NULL ||
		    hs.status != 403 || retry ? "" : stale ? " (fetching new "
		    "temporary credentials)" : " (the temporary credentials "
		    "were just fetched)");
		return false;
	}
	if (st != WS_OK) {
		transport_fail(t, TRANSPORT_FAILED, "WebSocket upgrade: %s",
		    ws_strerror(st));
		return false;
	}
	evbuffer_drain(in, hs.consumed);
	transport_count(t, hs.consumed, 0);
	target_free(w);
	ws_decoder_init(&w->dec, WSS_MAX_FRAME, WSS_MAX_FRAME);
	w->upgraded = true;
	return transport_opened(t);
}

static void
wss_input(struct transport *t, void *st, struct evbuffer *in,
    struct evbuffer *out)
{
	struct wss *w = st;

	if (!w->upgraded && !upgrade_input(t, w, in))
		return;
	while (evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in), used;
		uint8_t *p = evbuffer_pullup(in, -1);
		struct ws_event ev;
		enum ws_status ws;
		char why[64];

		if (p == NULL) {
			transport_fail(t, TRANSPORT_LOST, "out of memory");
			return;
		}
		ws = ws_decode(&w->dec, p, len, &ev, &used);
		if (ws == WS_NEED_MORE)
			break;
		if (ws != WS_OK) {
			close_frame(t, w, out, ws_close_code(ws));
			transport_fail(t, TRANSPORT_LOST, "WebSocket: %s",
			    ws_strerror(ws));
			return;
		}
		switch (ev.type) {
		case WS_EV_DATA:
			if (ev.payload.len > 0 && evbuffer_add(w->stream,
			    ev.payload.ptr, ev.payload.len) != 0) {
				transport_fail(t, TRANSPORT_LOST,
				    "out of memory");
				return;
			}
			break;
		case WS_EV_PING:
			(void)send_frame(t, w, out, WS_OP_PONG,
			    ev.payload.ptr, ev.payload.len, NULL, 0);
			break;
		case WS_EV_PONG:
			break;
		case WS_EV_CLOSE:
			close_frame(t, w, out, ev.close_code ==
			    WS_CLOSE_NO_STATUS ? 0 : ev.close_code);
			log_escape(why, sizeof(why), ev.close_reason.ptr,
			    ev.close_reason.len);
			transport_fail(t, TRANSPORT_LOST, "closed by AWS "
			    "(WebSocket close %u%s%s)", ev.close_code,
			    why[0] ? ": " : "", why);
			return;
		}
		evbuffer_drain(in, used);
		transport_count(t, used, 0);
	}
	transport_deliver(t, w->stream);
}

static int
wss_send(struct transport *t, void *st, struct evbuffer *wire,
    const void *head, size_t hlen, const void *body, size_t blen)
{
	return send_frame(t, st, wire, WS_OP_BINARY, head, hlen, body, blen);
}

static int64_t
wss_clock_offset(const void *st)
{
	return sigclock.offset;
}

const struct transport_impl transport_wss = {
	.kind = "wss",
	.create = wss_create,
	.destroy = wss_destroy,
	.differs = wss_differs,
	.adopt = wss_adopt,
	.prepare = wss_prepare,
	.handshake = wss_handshake,
	.input = wss_input,
	.send = wss_send,
	.reset = wss_reset,
	.clock_offset = wss_clock_offset,
};
