/*
 * The control socket (see control.h): the request line, the commands, and
 * the status in its two renderings. The socket and its connections are a
 * oneshot server; what the status shows comes from broker_counts() and
 * bridge_stats() at the moment of the request, nothing is cached, and the
 * AWS side's part of it walks stats_table (daemon/aws/stats.h).
 */
#include "daemon/ops/control.h"

#include <sys/socket.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "iotb_build.h"
#include "base/json.h"
#include "config/cfg.h"
#include "daemon/aws/bridge.h"
#include "daemon/aws/stats.h"
#include "daemon/broker/broker.h"
#include "daemon/util/log.h"
#include "daemon/ops/oneshot.h"

#define KEY_WIDTH	21	/* "  key:" padded to this, then the value */

struct control {
	struct oneshot		*srv;
	const char		*cfg_path;
	struct broker		*b;
	struct bridge		*br;
	control_reload_fn	 reload;
	void			*arg;
};

/* ---- rendering helpers --------------------------------------------------- */

/* One "  key:   value" line of the table. */
static void
row(struct evbuffer *out, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
row(struct evbuffer *out, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(key) + 3;

	evbuffer_add_printf(out, "  %s:%*s", key,
	    used < KEY_WIDTH ? (int)(KEY_WIDTH - used) : 1, "");
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

/*
 * s as a JSON string. Valid UTF-8 passes as it is; otherwise (a path is any
 * bytes) each byte above 0x7f becomes \u00XX, which keeps the JSON valid.
 */
static void
json_string(struct evbuffer *out, const char *s)
{
	size_t len = strlen(s), need = json_escape(NULL, 0, s, len);
	struct evbuffer_iovec v;

	evbuffer_add(out, "\"", 1);
	if (evbuffer_reserve_space(out, (ev_ssize_t)need + 1, &v, 1) == 1) {
		json_escape(v.iov_base, need + 1, s, len);
		v.iov_len = need;
		evbuffer_commit_space(out, &v, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* ---- status ---------------------------------------------------------------- */

/* The AWS side's section of the JSON status, walking stats_table. */
static void
json_section(struct evbuffer *out, enum stats_section sec,
    const struct bridge_stats *st)
{
	const char *sep = "";

	evbuffer_add_printf(out, ",\"%s\":{", stats_section_name(sec, false));
	for (size_t i = 0; i < stats_count; i++) {
		const struct stats_def *d = &stats_table[i];

		if (d->section != sec || d->json == NULL)
			continue;
		evbuffer_add_printf(out, "%s\"%s\":", sep, d->json);
		sep = ",";
		switch (d->kind) {
		case STATS_TEXT:
		case STATS_STATE:
			json_string(out, stats_str(d, st));
			break;
		case STATS_FLAG:
			evbuffer_add_printf(out, "%s", stats_str(d, st));
			break;
		case STATS_GAUGE:
			evbuffer_add_printf(out, "%" PRId64, stats_i64(d, st));
			break;
		case STATS_DROPS:
			for (int r = 0; r < stats_ndrops(); r++)
				evbuffer_add_printf(out, "%s\"%s\":%" PRIu64,
				    r == 0 ? "{" : ",", stats_drop_key(r, true),
				    stats_drops(st, r));
			evbuffer_add(out, "}", 1);
			break;
		default:
			evbuffer_add_printf(out, "%" PRIu64, stats_u64(d, st));
			break;
		}
	}
	evbuffer_add(out, "}", 1);
}

static void
status_json(struct control *ctl, struct evbuffer *out)
{
	struct broker_counts bc;
	struct bridge_stats st;

	broker_counts(ctl->b, &bc);
	bridge_stats(ctl->br, &st);
	evbuffer_add_printf(out, "{\"version\":\"%s\",\"pid\":%ld,"
	    "\"uptime_s\":%" PRIu64 ",\"config\":", IOTB_VERSION,
	    (long)getpid(), bc.uptime_ms / 1000);
	json_string(out, ctl->cfg_path);
	evbuffer_add_printf(out, ",\"clients\":{\"connected\":%zu,"
	    "\"sessions\":%zu},\"messages\":{\"in\":%" PRIu64 ",\"out\":%"
	    PRIu64 ",\"dropped\":%" PRIu64 "},\"bytes\":{\"in\":%" PRIu64
	    ",\"out\":%" PRIu64 "}", bc.clients, bc.sessions, bc.msgs_in,
	    bc.msgs_out, bc.msgs_dropped, bc.bytes_in, bc.bytes_out);
	for (int sec = 0; sec < STATS_NSECTIONS; sec++)
		json_section(out, (enum stats_section)sec, &st);
	evbuffer_add(out, "}\n", 2);
}

/* The AWS side's section of the text status, walking stats_table. */
static void
text_section(struct evbuffer *out, enum stats_section sec,
    const struct bridge_stats *st)
{
	char v[512];

	evbuffer_add_printf(out, "%s\n", stats_section_name(sec, true));
	for (size_t i = 0; i < stats_count; i++) {
		const struct stats_def *d = &stats_table[i];
		enum stats_row r;

		if (d->section != sec || d->text == NULL)
			continue;
		if ((r = stats_text(d, st, v, sizeof(v))) == STATS_ROW_SKIP)
			continue;
		row(out, d->text, "%s", v);
		if (r == STATS_ROW_LAST)
			return;
	}
}

static void
status_text(struct control *ctl, struct evbuffer *out)
{
	struct broker_counts bc;
	struct bridge_stats st;
	char t[32], u[32];

	broker_counts(ctl->b, &bc);
	bridge_stats(ctl->br, &st);
	evbuffer_add_printf(out, "iotbridged %s, pid %ld, up %s\n",
	    IOTB_VERSION, (long)getpid(),
	    stats_fmt_duration(bc.uptime_ms, t, sizeof(t)));
	evbuffer_add_printf(out, "config: %s\n", ctl->cfg_path);
	for (int sec = 0; sec < STATS_NSECTIONS; sec++) {
		evbuffer_add(out, "\n", 1);
		text_section(out, (enum stats_section)sec, &st);
	}
	evbuffer_add(out, "\nBroker\n", 8);
	row(out, "clients", "%zu connected", bc.clients);
	row(out, "sessions", "%zu", bc.sessions);
	row(out, "messages", "%" PRIu64 " in, %" PRIu64 " out, %" PRIu64
	    " dropped", bc.msgs_in, bc.msgs_out, bc.msgs_dropped);
	row(out, "bytes", "%s in, %s out",
	    stats_fmt_size(bc.bytes_in, t, sizeof(t)),
	    stats_fmt_size(bc.bytes_out, u, sizeof(u)));
}

/* ---- commands -------------------------------------------------------------- */

static void
do_reload(struct control *ctl, struct evbuffer *out, const char *peer)
{
	struct cfg_diag errors = { 0 };
	int rc;

	log_info("control: reload requested by %s", peer);
	rc = ctl->reload(ctl->arg, &errors);
	if (rc == 0)
		evbuffer_add_printf(out, "ok: configuration reloaded\n");
	else if (rc > 0)
		evbuffer_add_printf(out, "ok: configuration reloaded, but some "
		    "of it could not be applied (see the log)\n");
	else
		evbuffer_add_printf(out, "error: invalid configuration, "
		    "keeping the running one\n");
	for (size_t i = 0; i < errors.count; i++)
		evbuffer_add_printf(out, "%s\n", errors.msgs[i]);
	cfg_diag_clear(&errors);
}

static bool
line_is(const char *line, size_t len, const char *cmd)
{
	return len == strlen(cmd) && memcmp(line, cmd, len) == 0;
}

static enum oneshot_verdict
control_request(void *arg, struct evbuffer *in, bool full, bool eof,
    struct evbuffer *out, const char *peer)
{
	struct control *ctl = arg;
	char line[CONTROL_MAX_LINE + 1], esc[64];
	struct evbuffer_ptr nl;
	size_t len;

	nl = evbuffer_search(in, "\n", 1, NULL);
	if (nl.pos >= 0)
		len = (size_t)nl.pos;
	else if (eof)
		len = evbuffer_get_length(in);	/* a last line without newline */
	else
		return ONESHOT_MORE;	/* full: oneshot closes it */
	if (len == 0 && nl.pos < 0)
		return ONESHOT_MORE;	/* nothing at all before EOF */
	/* the read watermark keeps the input within CONTROL_MAX_LINE */
	if (len > CONTROL_MAX_LINE ||
	    evbuffer_copyout(in, line, len) != (ev_ssize_t)len)
		return ONESHOT_CLOSE;
	if (len > 0 && line[len - 1] == '\r')
		len--;

	if (line_is(line, len, "status"))
		status_text(ctl, out);
	else if (line_is(line, len, "status json"))
		status_json(ctl, out);
	else if (line_is(line, len, "reload"))
		do_reload(ctl, out, peer);
	else
		evbuffer_add_printf(out, "error: unknown command \"%s\" "
		    "(expected status, status json or reload)\n",
		    log_escape(esc, sizeof(esc), line, len));
	return ONESHOT_ANSWER;
}

/* ---- life ------------------------------------------------------------------ */

static struct cfg_addr
unix_addr(const char *path)
{
	struct cfg_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_UNIX;
	snprintf(a.path, sizeof(a.path), "%s", path);
	return a;
}

struct control *
control_new(struct event_base *base, const char *path, const char *cfg_path,
    struct broker *b, struct bridge *br, control_reload_fn reload, void *arg)
{
	struct oneshot_conf conf = {
		.name = "control",
		.max_conns = CONTROL_MAX_CONNS,
		.max_request = CONTROL_MAX_LINE,
		.timeout_s = CONTROL_TIMEOUT_S,
		.unix_mode = CONTROL_SOCKET_MODE,
		.busy = "error: busy, too many control connections\n",
		.request = control_request,
	};
	struct control *ctl;

	if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
		return NULL;
	ctl->cfg_path = cfg_path;
	ctl->b = b;
	ctl->br = br;
	ctl->reload = reload;
	ctl->arg = arg;
	conf.arg = ctl;
	if ((ctl->srv = oneshot_new(base, &conf)) == NULL) {
		free(ctl);
		return NULL;
	}
	control_reload(ctl, path);
	return ctl;
}

void
control_reload(struct control *ctl, const char *path)
{
	struct cfg_addr a = unix_addr(path);

	(void)oneshot_listen(ctl->srv, &a);
}

void
control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	oneshot_free(ctl->srv);
	free(ctl);
}
