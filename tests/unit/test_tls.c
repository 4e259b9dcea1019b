/*
 * daemon/util/tls.c over real loopback TCP on one event base: both ends are our
 * own wrappers (a tls_client_wrap() talking to a tls_server_wrap()), a raw
 * socket playing a broken peer, or a peer made of mbedTLS alone that speaks
 * TLS 1.2 only (an old server or device). Certificates come from
 * tests/data/tls/ (gen.sh): ca.crt signs server.crt (localhost, 127.0.0.1)
 * and client.crt; other-ca.crt signs nothing of ours.
 *
 * With mbedTLS 3.6 our two ends speak TLS 1.3, whose rules differ from
 * TLS 1.2's where the tests say so (tickets after the handshake, a client
 * done before the server has checked its certificate, alerts mbedTLS's
 * TLS 1.3 sends with keys the peer does not expect yet); with 2.28 they
 * speak TLS 1.2. TLS13 says which.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/x509_crt.h>

#include "base/mbedcompat.h"
#include "daemon/util/log.h"
#include "daemon/util/tls.h"

#define DATA(f)		IOTB_TEST_DATA "/tls/" f
#define DEADLINE_MS	10000
#define TLS13		MBEDCOMPAT_TLS13	/* what our two ends speak */
#define OUR_VERSION	(TLS13 ? "TLSv1.3" : "TLSv1.2")

/* One end of a connection and what happened to it. */
struct end {
	struct bufferevent	*bev;
	struct evbuffer		*got;		/* everything read */
	bool			 echo;		/* write back what is read */
	int			 connected, eof, error, timeout;
	bool			 read_before_connected;
	bool			 resumed;
	char			 subject[256];
	char			 version[32];
	char			 err[256];
};

struct fx {
	struct event_base	*base;
	struct event		*wake;
	struct tls_server_ctx	*sctx;		/* client certificates required */
	struct tls_client_ctx	*cctx;		/* presents client.crt */
	struct end		 cli, srv;
};

static void	raw_peer(struct fx *, evutil_socket_t *, int);

static char	key_copy_path[64];	/* the last key_copy() */
static char	client_key_path[64];	/* client_key()'s, for the run */

static void
client_key_unlink(void)
{
	unlink(client_key_path);
}

/*
 * client.key as a daemon's key must be: readable by its owner alone. Git
 * keeps 0644, which tls_client_ctx_new() refuses, so the tests use a 0600
 * copy (mode given, as the copy of another mode would be wanted too).
 */
static const char *
key_copy(const char *path, mode_t mode)
{
	char buf[4096];
	FILE *in;
	int fd;
	size_t n;

	snprintf(key_copy_path, sizeof(key_copy_path),
	    "/tmp/iotb-test-tls-XXXXXX");
	assert_true((fd = mkstemp(key_copy_path)) >= 0);
	assert_non_null(in = fopen(path, "rb"));
	n = fread(buf, 1, sizeof(buf), in);
	fclose(in);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return key_copy_path;
}

static const char *
client_key(void)
{
	if (client_key_path[0] == '\0') {
		snprintf(client_key_path, sizeof(client_key_path), "%s",
		    key_copy(DATA("client.key"), 0600));
		atexit(client_key_unlink);
	}
	return client_key_path;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
}

static long
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

/* Run the loop until cond holds or the deadline passes; the wake timer keeps
 * EVLOOP_ONCE from blocking forever. */
#define RUN_UNTIL(f, cond) do {						\
	long deadline_ = now_ms() + DEADLINE_MS;			\
	while (!(cond) && now_ms() < deadline_)				\
		event_base_loop((f)->base, EVLOOP_ONCE);		\
	if (!(cond))							\
		print_message("client: %s\nserver: %s\n", (f)->cli.err,	\
		    (f)->srv.err);					\
	assert_true(cond);						\
} while (0)

static void
end_read(struct bufferevent *bev, void *arg)
{
	struct end *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (e->connected == 0)
		e->read_before_connected = true;
	if (e->echo)
		assert_int_equal(evbuffer_add(bufferevent_get_output(bev),
		    evbuffer_pullup(in, -1), evbuffer_get_length(in)), 0);
	evbuffer_add_buffer(e->got, in);
}

static void
end_event(struct bufferevent *bev, short what, void *arg)
{
	struct end *e = arg;

	if (what & BEV_EVENT_CONNECTED) {
		e->connected++;
		e->resumed = tls_resumed(bev);
		(void)tls_peer_cert_subject(bev, e->subject,
		    sizeof(e->subject));
		snprintf(e->version, sizeof(e->version), "%s",
		    tls_version(bev));
		return;
	}
	if (what & BEV_EVENT_EOF)
		e->eof++;
	if (what & BEV_EVENT_ERROR)
		e->error++;
	if (what & BEV_EVENT_TIMEOUT)
		e->timeout++;
	snprintf(e->err, sizeof(e->err), "%s", tls_last_error(bev));
	bufferevent_free(bev);
	e->bev = NULL;
}

/* The reasons both ends give, for the test log. */
static void
show_errors(const struct fx *f)
{
	print_message("  client: %s\n  server: %s\n", f->cli.err, f->srv.err);
}

static void
end_init(struct end *e, bool echo)
{
	memset(e, 0, sizeof(*e));
	e->got = evbuffer_new();
	assert_non_null(e->got);
	e->echo = echo;
}

static void
end_clear(struct end *e)
{
	if (e->bev != NULL)
		bufferevent_free(e->bev);
	if (e->got != NULL)
		evbuffer_free(e->got);
	memset(e, 0, sizeof(*e));
}

static void
end_attach(struct end *e, struct bufferevent *bev)
{
	assert_non_null(bev);
	e->bev = bev;
	bufferevent_setcb(bev, end_read, NULL, end_event, e);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* A connected loopback TCP pair, non-blocking: fds[0] dials, fds[1] answers. */
static void
tcp_pair(evutil_socket_t fds[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((l = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	assert_true((fds[0] = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&sin, len), 0);
	assert_true((fds[1] = accept(l, NULL, NULL)) >= 0);
	close(l);
	assert_int_equal(evutil_make_socket_nonblocking(fds[0]), 0);
	assert_int_equal(evutil_make_socket_nonblocking(fds[1]), 0);
}

/* Our client against our server, both ends fresh. */
static void
open_pair(struct fx *f, struct tls_server_ctx *sctx,
    struct tls_client_ctx *cctx, const char *host, bool server_echoes)
{
	evutil_socket_t fds[2];
	struct bufferevent *under;

	end_clear(&f->cli);
	end_clear(&f->srv);
	end_init(&f->cli, false);
	end_init(&f->srv, server_echoes);
	tcp_pair(fds);
	under = bufferevent_socket_new(f->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(under);
	end_attach(&f->cli, tls_client_wrap(cctx, under, host, 5000));
	end_attach(&f->srv, tls_server_wrap(f->base, sctx, fds[1], 5000));
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_non_null(f->base = event_base_new());
	f->wake = event_new(f->base, -1, EV_PERSIST, wake_cb, NULL);
	assert_non_null(f->wake);
	event_add(f->wake, &(struct timeval){ 0, 20000 });
	f->sctx = tls_server_ctx_new(DATA("server.crt"), DATA("server.key"),
	    DATA("ca.crt"), err, sizeof(err));
	assert_non_null(f->sctx);
	f->cctx = tls_client_ctx_new(DATA("ca.crt"), DATA("client.crt"),
	    client_key(), err, sizeof(err));
	assert_non_null(f->cctx);
	end_init(&f->cli, false);
	end_init(&f->srv, false);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	end_clear(&f->cli);
	end_clear(&f->srv);
	tls_shutdown();
	tls_server_ctx_unref(f->sctx);
	tls_client_ctx_unref(f->cctx);
	event_free(f->wake);
	event_base_free(f->base);
	free(f);
	return 0;
}

static unsigned char *
pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
	return p;
}

/* from writes n bytes in chunks, to echoes them, from checks the echo. */
static void
echo(struct fx *f, struct end *from, struct end *to, size_t n, size_t chunk)
{
	unsigned char *p = pattern(n, (unsigned)n);

	to->echo = true;
	for (size_t off = 0; off < n; off += chunk)
		assert_int_equal(bufferevent_write(from->bev, p + off,
		    off + chunk <= n ? chunk : n - off), 0);
	RUN_UNTIL(f, evbuffer_get_length(from->got) >= n ||
	    from->bev == NULL || to->bev == NULL);
	assert_int_equal(evbuffer_get_length(from->got), n);
	assert_int_equal(evbuffer_get_length(to->got), n);
	assert_memory_equal(evbuffer_pullup(from->got, -1), p, n);
	evbuffer_drain(from->got, n);
	evbuffer_drain(to->got, n);
	to->echo = false;
	free(p);
}

/* --- happy paths --------------------------------------------------------- */

static void
test_handshake_and_large_echo(void **state)
{
	struct fx *f = *state;
	unsigned char *early = pattern(200 * 1024, 7);

	open_pair(f, f->sctx, f->cctx, "localhost", true);
	/* written before the handshake: must wait, then arrive whole */
	assert_int_equal(bufferevent_write(f->cli.bev, early, 200 * 1024), 0);
	RUN_UNTIL(f, evbuffer_get_length(f->cli.got) == 200 * 1024);
	assert_memory_equal(evbuffer_pullup(f->cli.got, -1), early, 200 * 1024);
	evbuffer_drain(f->cli.got, 200 * 1024);
	evbuffer_drain(f->srv.got, 200 * 1024);
	free(early);

	assert_int_equal(f->cli.connected, 1);
	assert_int_equal(f->srv.connected, 1);
	assert_false(f->srv.read_before_connected);
	assert_false(f->cli.read_before_connected);
	assert_string_equal(f->cli.subject, "CN=localhost");
	assert_string_equal(f->srv.subject, "CN=iotbridge test client");
	assert_string_equal(f->cli.version, OUR_VERSION);
	assert_string_equal(f->srv.version, OUR_VERSION);
	assert_string_not_equal(tls_ciphersuite(f->cli.bev), "?");
	assert_false(f->cli.resumed);
	assert_string_equal(tls_last_error(f->cli.bev), "no error");

	echo(f, &f->cli, &f->srv, 300 * 1024 + 17, 64 * 1024);
	echo(f, &f->srv, &f->cli, 300 * 1024 + 17, 100 * 1024);
	assert_int_equal(f->cli.error + f->srv.error, 0);
}

/* Tiny writes make tiny records; tiny socket reads split every record. */
static void
test_tiny_chunks(void **state)
{
	struct fx *f = *state;

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	assert_int_equal(bufferevent_set_max_single_read(
	    bufferevent_get_underlying(f->cli.bev), 5), 0);
	assert_int_equal(bufferevent_set_max_single_read(
	    bufferevent_get_underlying(f->srv.bev), 7), 0);
	echo(f, &f->cli, &f->srv, 20000, 3);
	echo(f, &f->srv, &f->cli, 20000, 1);
	assert_int_equal(f->cli.error + f->srv.error, 0);
}

/* The server's session cache and tickets, the client's saved session. */
static void
test_session_resumption(void **state)
{
	struct fx *f = *state;
	struct tls_server_ctx *reloaded;
	char err[256];

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	assert_false(f->cli.resumed);
	/* a TLS 1.3 ticket comes after the handshake: one round trip */
	echo(f, &f->cli, &f->srv, 100, 100);

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	assert_true(f->cli.resumed);
	assert_string_equal(f->cli.version, OUR_VERSION);
	/* A resumed TLS 1.2 session still knows who the client is; mbedTLS's
	 * TLS 1.3 tickets do not carry the certificate, so the subject is
	 * unknown rather than wrong (the ticket proves the client had one). */
	if (TLS13)
		assert_false(tls_peer_cert_subject(f->srv.bev, f->srv.subject,
		    sizeof(f->srv.subject)));
	else
		assert_string_equal(f->srv.subject, "CN=iotbridge test client");
	echo(f, &f->cli, &f->srv, 70000, 70000);

	/* A reload: new connections use the new context, which knows none of
	 * the old sessions; the old context goes while its connection lives. */
	reloaded = tls_server_ctx_new(DATA("server.crt"), DATA("server.key"),
	    DATA("ca.crt"), err, sizeof(err));
	assert_non_null(reloaded);
	open_pair(f, reloaded, f->cctx, "localhost", false);
	tls_server_ctx_unref(f->sctx);
	f->sctx = reloaded;
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	assert_false(f->cli.resumed);
	echo(f, &f->srv, &f->cli, 1000, 1000);
}

/* --- verification failures ----------------------------------------------- */

static void
test_wrong_hostname(void **state)
{
	struct fx *f = *state;

	open_pair(f, f->sctx, f->cctx, "wrong.example", false);
	RUN_UNTIL(f, f->cli.bev == NULL && f->srv.bev == NULL);
	show_errors(f);
	assert_int_equal(f->cli.error, 1);
	assert_int_equal(f->cli.connected, 0);
	assert_non_null(strstr(f->cli.err, "hostname mismatch"));
	assert_null(strstr(f->cli.err, "not trusted"));
	assert_int_equal(f->srv.error, 1);
	assert_int_equal(f->srv.connected, 0);
	/* The client said why before it hung up. mbedTLS's TLS 1.3 client
	 * sends that alert unencrypted, which the server cannot read; the
	 * TLS 1.2 case is test_tls12_client's. */
	if (!TLS13)
		assert_non_null(strstr(f->srv.err,
		    "alert 42 (bad certificate)"));
}

static void
test_untrusted_ca(void **state)
{
	struct fx *f = *state;
	struct tls_client_ctx *other;
	char err[256];

	other = tls_client_ctx_new(DATA("other-ca.crt"), NULL, NULL, err,
	    sizeof(err));
	assert_non_null(other);
	open_pair(f, f->sctx, other, "localhost", false);
	tls_client_ctx_unref(other);	/* the connection keeps its own ref */
	RUN_UNTIL(f, f->cli.bev == NULL && f->srv.bev == NULL);
	show_errors(f);
	assert_int_equal(f->cli.error, 1);
	assert_non_null(strstr(f->cli.err, "certificate not trusted"));
	assert_null(strstr(f->cli.err, "hostname mismatch"));
	assert_int_equal(f->srv.error, 1);
}

static void
test_client_cert_missing(void **state)
{
	struct fx *f = *state;
	struct tls_client_ctx *anon;
	char err[256];

	anon = tls_client_ctx_new(DATA("ca.crt"), NULL, NULL, err, sizeof(err));
	assert_non_null(anon);
	open_pair(f, f->sctx, anon, "localhost", false);
	RUN_UNTIL(f, f->cli.bev == NULL && f->srv.bev == NULL);
	show_errors(f);
	assert_int_equal(f->srv.error, 1);
	assert_int_equal(f->srv.connected, 0);
	assert_non_null(strstr(f->srv.err, "no certificate"));
	assert_int_equal(f->cli.error, 1);
	/* A TLS 1.3 client is done once it sent its Finished, before the
	 * server looked at its (empty) certificate; it learns at its first
	 * read. (mbedTLS's TLS 1.3 server encrypts its alert with keys the
	 * client has left already; the TLS 1.2 case is test_tls12_client's.) */
	if (TLS13)
		assert_non_null(strstr(f->cli.err, "read: SSL - "));
	else {
		assert_int_equal(f->cli.connected, 0);
		assert_non_null(strstr(f->cli.err,
		    "alert 40 (handshake failure)"));
	}
	tls_client_ctx_unref(anon);
}

/* Without a client CA the server asks for no certificate. */
static void
test_server_without_client_ca(void **state)
{
	struct fx *f = *state;
	struct tls_server_ctx *open;
	struct tls_client_ctx *anon;
	char err[256];

	open = tls_server_ctx_new(DATA("server.crt"), DATA("server.key"), NULL,
	    err, sizeof(err));
	anon = tls_client_ctx_new(DATA("ca.crt"), NULL, NULL, err, sizeof(err));
	assert_non_null(open);
	assert_non_null(anon);
	open_pair(f, open, anon, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	assert_string_equal(f->srv.subject, "");
	assert_false(tls_peer_cert_subject(f->srv.bev, err, sizeof(err)));
	echo(f, &f->cli, &f->srv, 5000, 5000);
	end_clear(&f->cli);
	end_clear(&f->srv);
	tls_server_ctx_unref(open);
	tls_client_ctx_unref(anon);
}

/* --- closing ------------------------------------------------------------- */

static void
test_close_notify_is_eof(void **state)
{
	struct fx *f = *state;
	size_t n = 150 * 1024;
	unsigned char *p = pattern(n, 3);

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	/* all of it goes out before close_notify, though tls_close returns
	 * at once and the caller forgets the bufferevent */
	assert_int_equal(bufferevent_write(f->srv.bev, p, n), 0);
	tls_close(f->srv.bev, 2000);
	f->srv.bev = NULL;
	RUN_UNTIL(f, f->cli.bev == NULL);
	assert_int_equal(f->cli.eof, 1);
	assert_int_equal(f->cli.error, 0);
	assert_int_equal(evbuffer_get_length(f->cli.got), n);
	assert_memory_equal(evbuffer_pullup(f->cli.got, -1), p, n);
	assert_string_equal(f->cli.err, "no error");
	free(p);

	/* the other way, with nothing queued */
	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	tls_close(f->cli.bev, 0);
	f->cli.bev = NULL;
	RUN_UNTIL(f, f->srv.bev == NULL);
	assert_int_equal(f->srv.eof, 1);
	assert_int_equal(f->srv.error, 0);
}

/* A peer that does not read: the linger deadline ends it, or tls_shutdown(). */
static void
test_linger_deadline(void **state)
{
	struct fx *f = *state;
	size_t n = 16 * 1024 * 1024;
	unsigned char *p = pattern(n, 5);
	long t0;

	for (int round = 0; round < 2; round++) {
		open_pair(f, f->sctx, f->cctx, "localhost", false);
		RUN_UNTIL(f, f->cli.connected && f->srv.connected);
		bufferevent_disable(bufferevent_get_underlying(f->cli.bev),
		    EV_READ);
		assert_int_equal(bufferevent_write(f->srv.bev, p, n), 0);
		t0 = now_ms();
		tls_close(f->srv.bev, round == 0 ? 300 : 60000);
		f->srv.bev = NULL;
		if (round == 1)
			tls_shutdown();		/* at once, not in 60 s */
		else
			RUN_UNTIL(f, now_ms() - t0 >= 400);
		assert_int_equal(bufferevent_enable(bufferevent_get_underlying(
		    f->cli.bev), EV_READ), 0);
		RUN_UNTIL(f, f->cli.bev == NULL);
		show_errors(f);
		assert_true(now_ms() - t0 < 5000);
		assert_true(evbuffer_get_length(f->cli.got) < n);
		assert_int_equal(f->cli.eof + f->cli.error, 1);
	}
	free(p);
}

/* Freed by its user mid-handshake: the deadline must not fire on it. */
static void
test_free_during_handshake(void **state)
{
	struct fx *f = *state;
	evutil_socket_t peer;
	char c;
	long t0 = now_ms();

	raw_peer(f, &peer, 100);
	bufferevent_free(f->srv.bev);
	f->srv.bev = NULL;
	RUN_UNTIL(f, now_ms() - t0 >= 300);
	assert_int_equal(f->srv.error + f->srv.eof, 0);
	assert_int_equal(read(peer, &c, 1), 0);	/* closed, nothing sent */
	close(peer);
}

/* A TCP FIN without close_notify: still an EOF, but we can tell. */
static void
test_unclean_close(void **state)
{
	struct fx *f = *state;
	evutil_socket_t fd;

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->cli.connected && f->srv.connected);
	show_errors(f);
	fd = bufferevent_getfd(bufferevent_get_underlying(f->cli.bev));
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	RUN_UNTIL(f, f->srv.bev == NULL);
	assert_int_equal(f->srv.eof, 1);
	assert_string_equal(f->srv.err, "connection closed without close_notify");
}

/* --- broken peers on the server side -------------------------------------- */

static void
raw_peer(struct fx *f, evutil_socket_t *peer, int timeout_ms)
{
	evutil_socket_t fds[2];

	end_clear(&f->srv);
	end_init(&f->srv, false);
	tcp_pair(fds);
	*peer = fds[0];
	end_attach(&f->srv, tls_server_wrap(f->base, f->sctx, fds[1],
	    timeout_ms));
}

static void
test_handshake_timeout(void **state)
{
	struct fx *f = *state;
	evutil_socket_t peer;
	long t0 = now_ms();

	raw_peer(f, &peer, 300);
	RUN_UNTIL(f, f->srv.bev == NULL);
	show_errors(f);
	assert_true(now_ms() - t0 >= 290);
	assert_int_equal(f->srv.error, 1);
	assert_int_equal(f->srv.timeout, 1);
	assert_string_equal(f->srv.err, "handshake: timed out after 300 ms");
	close(peer);
}

static void
test_peer_hangs_up_in_handshake(void **state)
{
	struct fx *f = *state;
	evutil_socket_t peer;

	raw_peer(f, &peer, 5000);
	close(peer);
	RUN_UNTIL(f, f->srv.bev == NULL);
	show_errors(f);
	assert_int_equal(f->srv.error, 1);
	assert_int_equal(f->srv.eof, 0);
	assert_non_null(strstr(f->srv.err, "closed by the peer"));
}

static void
test_plaintext_peer(void **state)
{
	struct fx *f = *state;
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	evutil_socket_t peer;

	raw_peer(f, &peer, 5000);
	assert_int_equal(write(peer, req, sizeof(req) - 1),
	    (ssize_t)sizeof(req) - 1);
	RUN_UNTIL(f, f->srv.bev == NULL);
	show_errors(f);
	assert_int_equal(f->srv.error, 1);
	assert_non_null(strstr(f->srv.err, "handshake: SSL - "));
	close(peer);
}

/* --- TLS 1.2 peers ------------------------------------------------------- */

/*
 * An old peer: mbedTLS alone, TLS 1.2 only, on a non-blocking socket whose
 * read events drive it. It echoes what it reads. Either end: a server (with
 * a session cache, and requiring client.crt) or a client (with or without
 * client.crt, checking the server's name).
 */
struct oldpeer {
	mbedtls_ssl_config	 conf;
	mbedtls_ssl_context	 ssl;
	mbedtls_x509_crt	 ca, cert;
	mbedtls_pk_context	 key;
	mbedtls_ssl_cache_context cache;
	evutil_socket_t		 fd;
	struct event		*ev;
	bool			 connected;
	int			 failed;	/* mbedTLS error, 0: none */
	char			 version[32];
};

static int
oldpeer_rng(void *arg, unsigned char *buf, size_t len)
{
	return tls_random(buf, len) == 0 ? 0 : -1;
}

static int
oldpeer_send(void *arg, const unsigned char *buf, size_t len)
{
	struct oldpeer *p = arg;
	ssize_t n = send(p->fd, buf, len, MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_WRITE :
		    MBEDTLS_ERR_NET_SEND_FAILED;
	return (int)n;
}

static int
oldpeer_recv(void *arg, unsigned char *buf, size_t len)
{
	struct oldpeer *p = arg;
	ssize_t n = recv(p->fd, buf, len, 0);

	if (n < 0)
		return errno == EAGAIN ? MBEDTLS_ERR_SSL_WANT_READ :
		    MBEDTLS_ERR_NET_RECV_FAILED;
	return (int)n;
}

/* Handshake, then echo; small amounts, so a write never waits long. */
static void
oldpeer_step(evutil_socket_t fd, short what, void *arg)
{
	struct oldpeer *p = arg;
	unsigned char buf[4096];
	int ret;

	if (p->failed != 0)
		return;
	if (!p->connected) {
		ret = mbedtls_ssl_handshake(&p->ssl);
		if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
		    ret == MBEDTLS_ERR_SSL_WANT_WRITE)
			return;
		if (ret != 0) {
			p->failed = ret;
			return;
		}
		p->connected = true;
		snprintf(p->version, sizeof(p->version), "%s",
		    mbedtls_ssl_get_version(&p->ssl));
	}
	while ((ret = mbedtls_ssl_read(&p->ssl, buf, sizeof(buf))) > 0)
		for (int off = 0, n; off < ret; off += n)
			while ((n = mbedtls_ssl_write(&p->ssl, buf + off,
			    (size_t)(ret - off))) < 0)
				assert_int_equal(n, MBEDTLS_ERR_SSL_WANT_WRITE);
	if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != 0 &&
	    ret != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		p->failed = ret;
}

/* On a (new) connected socket: its read events drive the peer. */
static void
oldpeer_attach(struct fx *f, struct oldpeer *p, evutil_socket_t fd)
{
	p->fd = fd;
	p->connected = false;
	p->failed = 0;
	p->ev = event_new(f->base, fd, EV_READ | EV_PERSIST, oldpeer_step, p);
	assert_non_null(p->ev);
	assert_int_equal(event_add(p->ev, NULL), 0);
}

static void
oldpeer_init(struct fx *f, struct oldpeer *p, evutil_socket_t fd,
    bool server, bool with_cert, const char *host)
{
	memset(p, 0, sizeof(*p));
	mbedtls_ssl_config_init(&p->conf);
	mbedtls_ssl_init(&p->ssl);
	mbedtls_x509_crt_init(&p->ca);
	mbedtls_x509_crt_init(&p->cert);
	mbedtls_pk_init(&p->key);
	mbedtls_ssl_cache_init(&p->cache);
	assert_int_equal(mbedtls_ssl_config_defaults(&p->conf, server ?
	    MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT), 0);
	mbedcompat_ssl_conf_tls12_only(&p->conf);
	mbedtls_ssl_conf_rng(&p->conf, oldpeer_rng, NULL);
	assert_int_equal(mbedtls_x509_crt_parse_file(&p->ca, DATA("ca.crt")),
	    0);
	mbedtls_ssl_conf_ca_chain(&p->conf, &p->ca, NULL);
	mbedtls_ssl_conf_authmode(&p->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	if (with_cert) {
		assert_int_equal(mbedtls_x509_crt_parse_file(&p->cert, server ?
		    DATA("server.crt") : DATA("client.crt")), 0);
		assert_int_equal(mbedcompat_pk_parse_keyfile(&p->key, server ?
		    DATA("server.key") : DATA("client.key"), oldpeer_rng,
		    NULL), 0);
		assert_int_equal(mbedtls_ssl_conf_own_cert(&p->conf, &p->cert,
		    &p->key), 0);
	}
	if (server)
		mbedtls_ssl_conf_session_cache(&p->conf, &p->cache,
		    mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
	assert_int_equal(mbedtls_ssl_setup(&p->ssl, &p->conf), 0);
	if (!server)
		assert_int_equal(mbedtls_ssl_set_hostname(&p->ssl, host), 0);
	mbedtls_ssl_set_bio(&p->ssl, p, oldpeer_send, oldpeer_recv, NULL);
	oldpeer_attach(f, p, fd);
	if (!server)
		oldpeer_step(fd, EV_WRITE, p);		/* the ClientHello */
}

/* Back to a fresh connection on a new socket, keeping config and cache. */
static void
oldpeer_reconnect(struct fx *f, struct oldpeer *p, evutil_socket_t fd)
{
	event_free(p->ev);
	close(p->fd);
	assert_int_equal(mbedtls_ssl_session_reset(&p->ssl), 0);
	oldpeer_attach(f, p, fd);
}

static void
oldpeer_clear(struct oldpeer *p)
{
	event_free(p->ev);
	close(p->fd);
	mbedtls_ssl_free(&p->ssl);
	mbedtls_ssl_config_free(&p->conf);
	mbedtls_ssl_cache_free(&p->cache);
	mbedtls_pk_free(&p->key);
	mbedtls_x509_crt_free(&p->cert);
	mbedtls_x509_crt_free(&p->ca);
}

/* Our client (the uplink's side) to a TLS 1.2-only server: negotiated down,
 * the client certificate presented, data both ways, the session resumed. */
static void
test_tls12_server(void **state)
{
	struct fx *f = *state;
	struct oldpeer old;
	evutil_socket_t fds[2];
	struct bufferevent *under;

	for (int round = 0; round < 2; round++) {
		end_clear(&f->cli);
		end_init(&f->cli, false);
		tcp_pair(fds);
		if (round == 0)
			oldpeer_init(f, &old, fds[1], true, true, NULL);
		else
			oldpeer_reconnect(f, &old, fds[1]);
		under = bufferevent_socket_new(f->base, fds[0],
		    BEV_OPT_CLOSE_ON_FREE);
		assert_non_null(under);
		end_attach(&f->cli, tls_client_wrap(f->cctx, under,
		    "localhost", 5000));
		RUN_UNTIL(f, (f->cli.connected && old.connected) ||
		    f->cli.bev == NULL || old.failed != 0);
		show_errors(f);
		assert_int_equal(old.failed, 0);
		assert_string_equal(f->cli.version, "TLSv1.2");
		assert_string_equal(old.version, "TLSv1.2");
		assert_string_equal(f->cli.subject, "CN=localhost");
		assert_int_equal(f->cli.resumed, round == 1);
		assert_int_equal(bufferevent_write(f->cli.bev, "ping", 4), 0);
		RUN_UNTIL(f, evbuffer_get_length(f->cli.got) == 4);
		assert_memory_equal(evbuffer_pullup(f->cli.got, -1), "ping", 4);
	}
	oldpeer_clear(&old);
}

/* A TLS 1.2-only device to our listener: negotiated down; when it rejects
 * our certificate or has none, its alert and ours say why. */
static void
test_tls12_client(void **state)
{
	struct fx *f = *state;
	static const struct {
		bool		 with_cert;
		const char	*host;
		const char	*srv_err;	/* NULL: connects */
		int		 old_err;
	} cases[] = {
		{ true, "localhost", NULL, 0 },
		{ true, "wrong.example", "alert 42 (bad certificate)",
		  MBEDTLS_ERR_X509_CERT_VERIFY_FAILED },
		{ false, "localhost", "no certificate",
		  MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct oldpeer old;
		evutil_socket_t fds[2];

		end_clear(&f->srv);
		end_init(&f->srv, true);
		tcp_pair(fds);
		end_attach(&f->srv, tls_server_wrap(f->base, f->sctx, fds[1],
		    5000));
		oldpeer_init(f, &old, fds[0], false, cases[i].with_cert,
		    cases[i].host);
		RUN_UNTIL(f, (f->srv.connected && old.connected) ||
		    (f->srv.bev == NULL && old.failed != 0));
		show_errors(f);
		if (cases[i].srv_err == NULL) {
			assert_string_equal(f->srv.version, "TLSv1.2");
			assert_string_equal(old.version, "TLSv1.2");
			assert_string_equal(f->srv.subject,
			    "CN=iotbridge test client");
			assert_int_equal(mbedtls_ssl_write(&old.ssl,
			    (const unsigned char *)"pong", 4), 4);
			RUN_UNTIL(f, evbuffer_get_length(f->srv.got) == 4);
		} else {
			assert_int_equal(f->srv.error, 1);
			assert_non_null(strstr(f->srv.err, cases[i].srv_err));
			assert_int_equal(old.failed, cases[i].old_err);
		}
		oldpeer_clear(&old);
	}
}

/* TLS 1.3: the server's ticket and its first data come together; the data
 * must be read at once, not when the socket brings something else. */
static void
test_data_right_after_handshake(void **state)
{
	struct fx *f = *state;

	open_pair(f, f->sctx, f->cctx, "localhost", false);
	RUN_UNTIL(f, f->srv.connected);
	assert_int_equal(bufferevent_write(f->srv.bev, "hello", 5), 0);
	RUN_UNTIL(f, evbuffer_get_length(f->cli.got) == 5);
	assert_memory_equal(evbuffer_pullup(f->cli.got, -1), "hello", 5);
	assert_int_equal(f->cli.connected, 1);
	assert_string_equal(f->cli.version, OUR_VERSION);
}

/* --- contexts and odds and ends ------------------------------------------- */

static void
test_ctx_errors(void **state)
{
	struct tls_client_ctx *c;
	char err[256];

	assert_null(tls_server_ctx_new(DATA("missing.crt"), DATA("server.key"),
	    NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.crt: No such file"));
	assert_null(tls_server_ctx_new(DATA("server.crt"), DATA("client.key"),
	    NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	assert_null(tls_server_ctx_new(DATA("server.crt"), DATA("server.key"),
	    DATA("gen.sh"), err, sizeof(err)));
	assert_non_null(strstr(err, "gen.sh"));
	assert_null(tls_client_ctx_new(DATA("ca.crt"), DATA("client.crt"),
	    NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "needs its key"));
	assert_null(tls_client_ctx_new(DATA("nope.crt"), NULL, NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "nope.crt"));
	/* a directory of PEM files works as a CA store */
	c = tls_client_ctx_new(IOTB_TEST_DATA "/tls", NULL, NULL, err,
	    sizeof(err));
	assert_non_null(c);
	tls_client_ctx_unref(c);
	/* the system bundle, when the machine has one */
	if (access(TLS_DEFAULT_CA_FILE, R_OK) == 0) {
		c = tls_client_ctx_new(NULL, NULL, NULL, err, sizeof(err));
		assert_non_null(c);
		tls_client_ctx_unref(c);
	}
}

/* A device key others can read or write is refused; the group may read. */
static void
test_client_key_permissions(void **state)
{
	static const struct {
		mode_t		 mode;
		const char	*err;	/* NULL: accepted */
	} cases[] = {
		{ 0600, NULL }, { 0400, NULL }, { 0640, NULL },
		{ 0644, "is readable by other users (mode 0644): chmod 0600" },
		{ 0602, "is writable by other users (mode 0602)" },
		{ 0604, "is readable by other users (mode 0604)" },
	};
	struct tls_client_ctx *c;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *key = key_copy(DATA("client.key"), cases[i].mode);

		c = tls_client_ctx_new(DATA("ca.crt"), DATA("client.crt"), key,
		    err, sizeof(err));
		unlink(key);
		if (cases[i].err == NULL) {
			assert_non_null(c);
			tls_client_ctx_unref(c);
			continue;
		}
		assert_null(c);
		if (strstr(err, cases[i].err) == NULL ||
		    strstr(err, key) == NULL)
			fail_msg("mode %04o: %s", (unsigned)cases[i].mode, err);
	}
	/* the server side's key is the operator's business (tls.md) */
	c = tls_client_ctx_new(DATA("ca.crt"), NULL, NULL, err, sizeof(err));
	assert_non_null(c);
	tls_client_ctx_unref(c);
	assert_null(tls_client_ctx_new(DATA("ca.crt"), DATA("client.crt"),
	    DATA("missing.key"), err, sizeof(err)));
	assert_non_null(strstr(err, "missing.key: No such file"));
}

/* A context derived for ALPN offers it and shares the certificate; the
 * base context offers none. */
static void
test_alpn(void **state)
{
	static const char *protos[] = { "x-amzn-mqtt-ca", NULL };
	struct fx *f = *state;
	struct tls_client_ctx *alpn;
	struct oldpeer old;
	evutil_socket_t fds[2];
	struct bufferevent *under;
	char err[256];

	assert_non_null(alpn = tls_client_ctx_alpn(f->cctx, "x-amzn-mqtt-ca",
	    err, sizeof(err)));
	assert_null(tls_client_ctx_alpn(alpn, "h2", err, sizeof(err)));
	for (int round = 0; round < 2; round++) {
		end_clear(&f->cli);
		end_init(&f->cli, false);
		tcp_pair(fds);
		oldpeer_init(f, &old, fds[1], true, true, NULL);
		/* the server's config is read at the ClientHello */
		assert_int_equal(mbedtls_ssl_conf_alpn_protocols(&old.conf,
		    protos), 0);
		under = bufferevent_socket_new(f->base, fds[0],
		    BEV_OPT_CLOSE_ON_FREE);
		assert_non_null(under);
		end_attach(&f->cli, tls_client_wrap(round == 0 ? alpn :
		    f->cctx, under, "localhost", 5000));
		RUN_UNTIL(f, (f->cli.connected && old.connected) ||
		    f->cli.bev == NULL || old.failed != 0);
		show_errors(f);
		assert_int_equal(old.failed, 0);
		if (round == 0) {
			assert_string_equal(tls_alpn(f->cli.bev),
			    "x-amzn-mqtt-ca");
			assert_string_equal(mbedtls_ssl_get_alpn_protocol(
			    &old.ssl), "x-amzn-mqtt-ca");
		} else {
			assert_null(tls_alpn(f->cli.bev));
			assert_null(mbedtls_ssl_get_alpn_protocol(&old.ssl));
		}
		/* the certificate went along (the peer requires one) */
		assert_int_equal(bufferevent_write(f->cli.bev, "ping", 4), 0);
		RUN_UNTIL(f, evbuffer_get_length(f->cli.got) == 4);
		oldpeer_clear(&old);
	}
	tls_client_ctx_unref(alpn);
}

static void
test_not_tls(void **state)
{
	struct fx *f = *state;
	struct bufferevent *plain;
	char buf[16] = "x";

	plain = bufferevent_socket_new(f->base, -1, 0);
	assert_non_null(plain);
	assert_false(tls_is_tls(plain));
	assert_string_equal(tls_last_error(plain), "not a TLS connection");
	assert_false(tls_peer_cert_subject(plain, buf, sizeof(buf)));
	assert_string_equal(buf, "");
	assert_false(tls_resumed(plain));
	assert_string_equal(tls_version(plain), "?");
	tls_close(plain, 1000);		/* just freed */

	/* a client wrap refuses to go without a name to verify */
	plain = bufferevent_socket_new(f->base, -1, 0);
	assert_null(tls_client_wrap(f->cctx, plain, "", 1000));
}

static void
test_random(void **state)
{
	unsigned char a[3000], b[3000], zero[3000] = { 0 };

	assert_int_equal(tls_random(a, sizeof(a)), 0);
	assert_int_equal(tls_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a + 2000, zero, 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_and_large_echo,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_chunks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session_resumption, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_hostname, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_ca, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_cert_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_server_without_client_ca,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_notify_is_eof, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unclean_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_linger_deadline, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_during_handshake,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_peer_hangs_up_in_handshake,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_plaintext_peer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tls12_server, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tls12_client, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_data_right_after_handshake,
		    setup, teardown),
		cmocka_unit_test(test_ctx_errors),
		cmocka_unit_test(test_client_key_permissions),
		cmocka_unit_test_setup_teardown(test_alpn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_tls, setup, teardown),
		cmocka_unit_test(test_random),
	};

	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(mbedcompat_crypto_init(), 0);
	atexit(mbedcompat_crypto_free);
	log_init("test_tls", getenv("TEST_TLS_DEBUG") != NULL ?
	    LOG_L_DEBUG : LOG_L_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
