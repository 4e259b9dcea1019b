/*
 * The credentials provider's client (see credfetch.h) as one state machine:
 * IDLE (credentials or not, a refresh timer maybe armed), FETCHING (one
 * HTTPS exchange on the transport), WAITING (a background refresh failed:
 * the retry timer runs). credfetch_enter() alone writes the state, logs
 * `from -> to (why)` and runs the entry actions. The answer is gathered in
 * one buffer that is wiped as soon as it was read, as is every buffer the
 * bytes passed through; the request and the answer are lib/creds/iotcreds'
 * and lib/ws/http's business.
 */
#include "daemon/aws/credfetch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <mbedtls/platform_util.h>

#include "config/cfg.h"
#include "creds/creds.h"
#include "creds/iotcreds.h"
#include "daemon/aws/transport.h"
#include "daemon/util/clock.h"
#include "daemon/util/log.h"
#include "daemon/util/tls.h"
#include "util/backoff.h"
#include "ws/http.h"

/* A head and the largest body iotcreds reads. */
#define CREDFETCH_ANSWER_MAX	(HTTP_MAX_HEAD + IOTCREDS_MAX_BODY)
#define CREDFETCH_REQUEST_MAX	1024
/* Credentials this close to their expiry are not used for a new
 * connection: it would be closed as it opens. */
#define CREDFETCH_MIN_LEFT_MS	(10 * 1000)

enum credfetch_state {
	CREDFETCH_S_IDLE,
	CREDFETCH_S_FETCHING,
	CREDFETCH_S_WAITING,
};

static const char *const state_names[] = {
	[CREDFETCH_S_IDLE] = "idle",
	[CREDFETCH_S_FETCHING] = "fetching",
	[CREDFETCH_S_WAITING] = "waiting",
};

struct credfetch {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct transport	*t;
	struct credfetch_ops	 ops;
	void			*arg;
	char			 name[32];

	enum credfetch_state	 state;
	bool			 wanted;	/* a connection waits for it */
	bool			 fresh;		/* fetched since the mark */
	struct event		*ev_deadline;	/* FETCHING: the exchange */
	struct event		*ev_refresh;	/* IDLE: the refresh point */
	struct event		*ev_retry;	/* WAITING: the next try */
	const char		*late_why;	/* what ev_deadline reports */
	struct backoff		 bo;

	struct creds		 creds;		/* secret */
	bool			 have;
	uint64_t		 expiry_ms;	/* monotonic */

	uint8_t			*ans;		/* the answer so far; secret */
	size_t			 alen;
};

static void	credfetch_enter(struct credfetch *, enum credfetch_state,
		    const char *);

static void
timer_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv = clock_tv(ms);

	event_add(ev, &tv);
}

static void
fmt_s(char *buf, size_t cap, uint64_t ms)
{
	snprintf(buf, cap, "%" PRIu64 "s", (ms + 500) / 1000);
}

static uint32_t
random_u32(void)
{
	uint32_t r = 0;

	(void)tls_random(&r, sizeof(r));
	return r;
}

static void
creds_drop(struct credfetch *cf)
{
	creds_clear(&cf->creds);
	cf->have = false;
	event_del(cf->ev_refresh);
}

static void
answer_wipe(struct credfetch *cf)
{
	mbedtls_platform_zeroize(cf->ans, cf->alen);
	cf->alen = 0;
}

/* ---- the outcome ---------------------------------------------------------- */

/* The provider's clock at its answer (its Date), 0 without one. */
static int64_t
answer_date(const struct credfetch *cf)
{
	struct http_response h;
	const struct http_header *d;
	int64_t date;

	if (http_response_parse(cf->ans, cf->alen, &h) != HTTP_OK ||
	    (d = http_header_find(&h, "Date", NULL)) == NULL ||
	    http_date_parse(d->value, &date) != HTTP_OK)
		return 0;
	return date;
}

static void
failed(struct credfetch *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The exchange failed: whoever waits is told; a refresh tries again. */
static void
failed(struct credfetch *cf, const char *fmt, ...)
{
	const struct cfg_credentials *cc = &cf->cfg->aws.credentials;
	char why[320], what[256], t[32];
	uint64_t delay;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "credentials provider %s:%u: %s",
	    cc->endpoint.host, cc->endpoint.port, what);
	if (cf->wanted) {
		cf->wanted = false;
		credfetch_enter(cf, CREDFETCH_S_IDLE, "failed");
		cf->ops.failed(cf->arg, why);
		return;
	}
	delay = backoff_next(&cf->bo, random_u32());
	fmt_s(t, sizeof(t), delay);
	log_warnx("%s: refreshing the temporary credentials failed: %s; "
	    "again in %s", cf->name, why, t);
	credfetch_enter(cf, CREDFETCH_S_WAITING, "failed");
	timer_ms(cf->ev_retry, delay);
}

/* Credentials in c: keep them, and choose when to ask again. */
static void
fetched(struct credfetch *cf, struct creds *c, int64_t expiration)
{
	const struct cfg_credentials *cc = &cf->cfg->aws.credentials;
	int64_t date = answer_date(cf), life_ms, now = (int64_t)clock_mono_ms();
	int64_t refresh;
	char l[32], r[32];

	/* counted from the provider's clock: ours may be 1970 */
	life_ms = (expiration - (date != 0 ? date : (int64_t)time(NULL))) *
	    1000;
	if (life_ms <= CREDFETCH_MIN_LEFT_MS) {
		creds_clear(c);
		failed(cf, "the credentials it issued expire in %" PRId64 "s",
		    life_ms / 1000);
		return;
	}
	creds_drop(cf);
	memcpy(&cf->creds, c, sizeof(cf->creds));
	creds_clear(c);
	cf->have = true;
	cf->fresh = true;
	cf->expiry_ms = (uint64_t)(now + life_ms);
	refresh = iotcreds_refresh_at(now, now + life_ms, random_u32());
	backoff_connection_ended(&cf->bo, UINT64_MAX);
	cf->wanted = false;
	credfetch_enter(cf, CREDFETCH_S_IDLE, "fetched");
	timer_ms(cf->ev_refresh, (uint64_t)(refresh - now));
	fmt_s(l, sizeof(l), (uint64_t)life_ms);
	fmt_s(r, sizeof(r), (uint64_t)(refresh - now));
	log_info("%s: temporary credentials from the credentials provider "
	    "(role alias %s, thing %s), valid for %s; refreshing in %s",
	    cf->name, cc->role_alias, cc->thing_name, l, r);
	cf->ops.fetched(cf->arg, date);
}

/* Read what has come; eof: the provider closed the connection. */
static void
answer_read(struct credfetch *cf, bool eof)
{
	struct iotcreds_error err;
	enum iotcreds_status st;
	struct creds c;
	int64_t expiration = 0;

	st = iotcreds_answer(cf->ans, cf->alen, eof, &c, &expiration, NULL,
	    &err);
	if (st == IOTCREDS_NEED_MORE)
		return;
	if (st == IOTCREDS_OK)
		fetched(cf, &c, expiration);
	else
		failed(cf, "%s", err.msg[0] != '\0' ? err.msg :
		    iotcreds_strerror(st));
	creds_clear(&c);
	answer_wipe(cf);
}

/* ---- the transport's news ------------------------------------------------- */

static void
on_opened(void *arg)
{
	struct credfetch *cf = arg;
	const struct cfg_credentials *cc = &cf->cfg->aws.credentials;
	struct iotcreds_request q = {
		.host = cc->endpoint.host, .port = cc->endpoint.port,
		.role_alias = cc->role_alias, .thing_name = cc->thing_name,
	};
	struct iotcreds_error err;
	char req[CREDFETCH_REQUEST_MAX];
	size_t len;

	if (cf->state != CREDFETCH_S_FETCHING)
		return;
	if (iotcreds_request_encode(&q, req, sizeof(req), &len, &err) !=
	    IOTCREDS_OK) {
		failed(cf, "%s", err.msg);
		return;
	}
	if (transport_send(cf->t, req, len, NULL, 0) != 0)
		failed(cf, "cannot send the request");
}

/* The answer's bytes are copied once, into cf->ans; where they were is
 * wiped on the way. */
static void
on_data(void *arg, struct evbuffer *in)
{
	struct credfetch *cf = arg;
	size_t n = evbuffer_get_length(in);

	if (cf->state != CREDFETCH_S_FETCHING) {
		transport_wipe(in);
		return;
	}
	if (n > CREDFETCH_ANSWER_MAX - cf->alen) {
		transport_wipe(in);
		failed(cf, "answer over %d bytes", CREDFETCH_ANSWER_MAX);
		return;
	}
	(void)evbuffer_copyout(in, cf->ans + cf->alen, n);
	transport_wipe(in);
	cf->alen += n;
	answer_read(cf, false);
}

static void
on_drained(void *arg)
{
}

static void
on_closed(void *arg, enum transport_end end, const char *why)
{
	struct credfetch *cf = arg;

	if (cf->state != CREDFETCH_S_FETCHING)
		return;
	if (cf->alen > 0)
		answer_read(cf, true);
	else
		failed(cf, "%s", why);
}

static const struct transport_cb credfetch_transport_cb = {
	.opened = on_opened,
	.data = on_data,
	.drained = on_drained,
	.closed = on_closed,
};

/* ---- the state machine ---------------------------------------------------- */

static void
enter_fetching(struct credfetch *cf)
{
	event_del(cf->ev_retry);
	event_del(cf->ev_refresh);
	answer_wipe(cf);
	cf->late_why = "no answer within aws.connect_timeout";
	if (transport_open(cf->t, cf->cfg->aws.connect_timeout_ms) != 0) {
		/* told from the loop, as every outcome is */
		cf->late_why = "cannot start connecting";
		timer_ms(cf->ev_deadline, 0);
		return;
	}
	timer_ms(cf->ev_deadline, cf->cfg->aws.connect_timeout_ms);
}

static void
credfetch_enter(struct credfetch *cf, enum credfetch_state to,
    const char *why)
{
	enum credfetch_state from = cf->state;

	log_debug("%s: credentials %s -> %s (%s)", cf->name, state_names[from],
	    state_names[to], why);
	cf->state = to;
	switch (to) {
	case CREDFETCH_S_IDLE:
	case CREDFETCH_S_WAITING:
		event_del(cf->ev_deadline);
		transport_close(cf->t, false);
		answer_wipe(cf);
		break;
	case CREDFETCH_S_FETCHING:
		enter_fetching(cf);
		break;
	}
}

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct credfetch *cf = arg;

	if (cf->state == CREDFETCH_S_FETCHING)
		failed(cf, "%s", cf->late_why);
}

static void
on_refresh(evutil_socket_t fd, short ev, void *arg)
{
	struct credfetch *cf = arg;

	if (cf->state == CREDFETCH_S_IDLE)
		credfetch_enter(cf, CREDFETCH_S_FETCHING, "refresh point");
}

static void
on_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct credfetch *cf = arg;

	if (cf->state == CREDFETCH_S_WAITING)
		credfetch_enter(cf, CREDFETCH_S_FETCHING, "retry timer");
}

/* ---- the interface -------------------------------------------------------- */

bool
credfetch_ready(const struct credfetch *cf)
{
	return cf->have &&
	    clock_mono_ms() + CREDFETCH_MIN_LEFT_MS < cf->expiry_ms;
}

void
credfetch_want(struct credfetch *cf)
{
	cf->wanted = true;
	if (cf->state != CREDFETCH_S_FETCHING)
		credfetch_enter(cf, CREDFETCH_S_FETCHING, "wanted");
}

bool
credfetch_copy(const struct credfetch *cf, struct creds *out)
{
	if (!credfetch_ready(cf)) {
		creds_clear(out);
		return false;
	}
	memcpy(out, &cf->creds, sizeof(*out));
	return true;
}

bool
credfetch_fresh(const struct credfetch *cf)
{
	return cf->fresh;
}

void
credfetch_mark(struct credfetch *cf)
{
	cf->fresh = false;
}

void
credfetch_forget(struct credfetch *cf)
{
	creds_drop(cf);
}

void
credfetch_adopt(struct credfetch *cf, const struct cfg *cfg)
{
	cf->cfg = cfg;
	if (!transport_differs(cf->t, cfg))
		return;
	/* not expected (the data transport compared the same keys), but
	 * the old config must not stay borrowed */
	if (transport_reload(cf->t, cfg) != 0)
		log_warnx("%s: the credentials provider's settings cannot be "
		    "used", cf->name);
	if (cf->state == CREDFETCH_S_FETCHING) {
		cf->late_why = "configuration changed";
		timer_ms(cf->ev_deadline, 0);
	}
}

struct credfetch *
credfetch_new(struct event_base *base, struct evdns_base *dns,
    const struct cfg *cfg, const char *name, const struct credfetch_ops *ops,
    void *arg)
{
	const struct cfg_reconnect *rc = &cfg->reconnect;
	struct credfetch *cf;

	if ((cf = calloc(1, sizeof(*cf))) == NULL)
		return NULL;
	cf->base = base;
	cf->cfg = cfg;
	cf->ops = *ops;
	cf->arg = arg;
	snprintf(cf->name, sizeof(cf->name), "%s", name);
	backoff_init(&cf->bo, rc->base_ms, rc->max_ms, rc->stable_ms,
	    rc->jitter);
	cf->ev_deadline = evtimer_new(base, on_deadline, cf);
	cf->ev_refresh = evtimer_new(base, on_refresh, cf);
	cf->ev_retry = evtimer_new(base, on_retry, cf);
	cf->ans = malloc(CREDFETCH_ANSWER_MAX);
	if (cf->ev_deadline == NULL || cf->ev_refresh == NULL ||
	    cf->ev_retry == NULL || cf->ans == NULL ||
	    (cf->t = transport_new_credentials(base, dns, cfg,
	    "credentials")) == NULL) {
		credfetch_free(cf);
		return NULL;
	}
	transport_set_cb(cf->t, &credfetch_transport_cb, cf);
	return cf;
}

void
credfetch_free(struct credfetch *cf)
{
	if (cf == NULL)
		return;
	transport_free(cf->t);
	if (cf->ev_deadline != NULL)
		event_free(cf->ev_deadline);
	if (cf->ev_refresh != NULL)
		event_free(cf->ev_refresh);
	if (cf->ev_retry != NULL)
		event_free(cf->ev_retry);
	if (cf->ans != NULL) {
		answer_wipe(cf);
		free(cf->ans);
	}
	creds_clear(&cf->creds);
	free(cf);
}
