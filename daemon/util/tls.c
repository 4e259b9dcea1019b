/*
 * mbedTLS on libevent 2.1 buffers. A connection is a filter bufferevent over
 * the socket bufferevent: mbedTLS's BIO callbacks read the socket
 * bufferevent's input and append to its output, returning WANT_READ when the
 * input is empty, so the engine never touches the socket itself. The input
 * filter drives the handshake and decrypts; the output filter encrypts once
 * the handshake is done (what the user queued before stays queued). We sit
 * between the socket bufferevent and the filter's callbacks on it, which lets
 * us turn an EOF during the handshake into an error, swallow duplicates, and
 * find our connection from the bufferevent the user holds. Also here: the
 * server and client contexts and the process's one DRBG. Works with mbedTLS
 * 2.28 (TLS 1.2) and 3.6 (TLS 1.2 and 1.3); base/mbedcompat.h bridges the
 * two, so nothing here reads a field of mbedTLS's structures that 3.x hides.
 */
#include "daemon/util/tls.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/debug.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "iotb_build.h"
#include "base/mbedcompat.h"
#include "daemon/util/log.h"

#define TLS_RECORD_MAX		16384	/* plaintext bytes per record */
#define TLS_TICKET_LIFETIME	86400	/* s; ticket keys rotate this often */
#define TLS_DEBUG_THRESHOLD	1	/* mbedTLS's errors; higher levels dump
					   key material and records */
/* How mbedTLS's debug output names the fatal alert a peer sent (2.28 and
 * 3.6 alike, after a "0xADDRESS: " prefix in threaded builds); there is no
 * accessor for it. */
#define TLS_ALERT_DEBUG_MSG	"is a fatal alert message (msg "

struct tls_server_ctx {
	int			 refs;
	mbedtls_ssl_config	 conf;
	mbedtls_x509_crt	 cert;
	mbedtls_pk_context	 key;
	mbedtls_x509_crt	 client_ca;
	mbedtls_ssl_cache_context cache;
	mbedtls_ssl_ticket_context ticket;
};

struct tls_client_ctx {
	int			 refs;
	struct tls_client_ctx	*base;		/* owns ca, cert, key; NULL: us */
	char			*alpn;		/* offered; NULL: none */
	const char		*alpn_list[2];	/* mbedTLS's form of it */
	mbedtls_ssl_config	 conf;
	mbedtls_ssl_config	 conf12;	/* TLS 1.2 only, for tls12_host */
	mbedtls_x509_crt	 ca;
	mbedtls_x509_crt	 cert;
	mbedtls_pk_context	 key;
	mbedtls_ssl_session	 session;	/* the last one established */
	char			*session_host;	/* its host; NULL: none */
	char			*tls12_host;	/* offered TLS 1.2 only; NULL */
};

struct tls_conn {
	mbedtls_ssl_context	 ssl;
	struct tls_server_ctx	*sctx;		/* one of these two */
	struct tls_client_ctx	*cctx;
	char			*host;		/* client side */
	struct bufferevent	*bev;		/* the filter: the user's */
	struct bufferevent	*under;		/* the socket */
	bufferevent_data_cb	 filter_readcb;	/* libevent's, on the socket */
	bufferevent_data_cb	 filter_writecb;
	bufferevent_event_cb	 filter_eventcb;
	void			*filter_arg;
	struct event		*timer;		/* handshake, then linger */
	int			 timeout_ms;
	bool			 established;
	bool			 done;		/* EOF or ERROR reported */
	bool			 verified;	/* a peer chain was checked */
	bool			 resumed;
	bool			 closing;	/* tls_close() owns it */
	bool			 app_in;	/* application data came */
	int			 alert;		/* fatal alert received; -1: none */
	LIST_ENTRY(tls_conn)	 entry;		/* on tls_lingering */
	char			 err[256];
};

/* The connection mbedTLS is working for right now: tls_debug() is told
 * only the config, and the engine runs for one connection at a time. */
static struct tls_conn *tls_current;
static mbedtls_entropy_context tls_entropy;
static mbedtls_ctr_drbg_context tls_drbg;
static bool tls_drbg_ready;
static LIST_HEAD(, tls_conn) tls_lingering =
    LIST_HEAD_INITIALIZER(tls_lingering);

static void	tls_under_event(struct bufferevent *, short, void *);

static void __attribute__((format(printf, 3, 4)))
tls_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "what path: reason", with errno for the file errors mbedTLS leaves vague */
static void
tls_file_err(char *err, size_t errlen, const char *what, const char *path,
    int ret, int saved_errno)
{
	char msg[128];

	if ((ret == MBEDTLS_ERR_X509_FILE_IO_ERROR ||
	    ret == MBEDTLS_ERR_PK_FILE_IO_ERROR) && saved_errno != 0) {
		tls_seterr(err, errlen, "%s %s: %s", what, path,
		    strerror(saved_errno));
		return;
	}
	mbedtls_strerror(ret, msg, sizeof(msg));
	tls_seterr(err, errlen, "%s %s: %s", what, path, msg);
}

static int
tls_drbg_init(char *err, size_t errlen)
{
	static const char pers[] = "iotbridge";
	char msg[128];
	int ret;

	if (tls_drbg_ready)
		return 0;
	mbedtls_entropy_init(&tls_entropy);
	mbedtls_ctr_drbg_init(&tls_drbg);
	if ((ret = mbedtls_ctr_drbg_seed(&tls_drbg, mbedtls_entropy_func,
	    &tls_entropy, (const unsigned char *)pers, sizeof(pers) - 1)) != 0) {
		mbedtls_strerror(ret, msg, sizeof(msg));
		tls_seterr(err, errlen, "cannot seed the DRBG: %s", msg);
		mbedtls_ctr_drbg_free(&tls_drbg);
		mbedtls_entropy_free(&tls_entropy);
		return -1;
	}
	tls_drbg_ready = true;
	return 0;
}

int
tls_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	if (tls_drbg_init(NULL, 0) == -1)
		return -1;
	while (len > 0) {
		size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ?
		    len : MBEDTLS_CTR_DRBG_MAX_REQUEST;

		if (mbedtls_ctr_drbg_random(&tls_drbg, p, n) != 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * mbedTLS's errors (level 1: rare, WANT_READ is never reported), always on:
 * the alert a peer sent is only told here. Logged at debug level.
 * Peer-influenced text (names from certificates) can reach these lines.
 */
static void
tls_debug(void *arg, int level, const char *file, int line, const char *msg)
{
	const char *base = strrchr(file, '/');
	char esc[256];
	size_t n = strlen(msg);
	const char *m;
	int alert;

	if (tls_current != NULL &&
	    (m = strstr(msg, TLS_ALERT_DEBUG_MSG)) != NULL &&
	    sscanf(m + strlen(TLS_ALERT_DEBUG_MSG), "%d", &alert) == 1)
		tls_current->alert = alert;
	if (log_getlevel() < LOG_L_DEBUG)
		return;
	if (n > 0 && msg[n - 1] == '\n')
		n--;
	log_debug("mbedtls %s:%d: %s", base != NULL ? base + 1 : file, line,
	    log_escape(esc, sizeof(esc), msg, n));
}

/* TLS 1.2 minimum, TLS 1.3 when the library has it, both directions. */
static void
tls_conf_common(mbedtls_ssl_config *conf)
{
	mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &tls_drbg);
	mbedtls_debug_set_threshold(TLS_DEBUG_THRESHOLD);
	mbedtls_ssl_conf_dbg(conf, tls_debug, NULL);
	mbedcompat_ssl_conf_versions(conf);
	mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
}

/*
 * A private key other users can read is no secret, and one they can write
 * is not ours: refuse it, as an ssh client refuses an identity file. The
 * daemon's own group may read it (0640, group iotbridge).
 */
static int
tls_key_private(const char *key_file, char *err, size_t errlen)
{
	struct stat st;

	if (stat(key_file, &st) == -1) {
		tls_seterr(err, errlen, "key %s: %s", key_file,
		    strerror(errno));
		return -1;
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0)
		return 0;
	tls_seterr(err, errlen, "key %s is %s by other users (mode %04o): "
	    "chmod 0600 %s, or 0640 with group iotbridge", key_file,
	    (st.st_mode & S_IROTH) ? "readable" : "writable",
	    (unsigned)(st.st_mode & 07777), key_file);
	return -1;
}

static int
tls_load_keypair(mbedtls_x509_crt *cert, mbedtls_pk_context *key,
    const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	int ret;

	errno = 0;
	if ((ret = mbedtls_x509_crt_parse_file(cert, cert_file)) != 0) {
		if (ret > 0)
			ret = MBEDTLS_ERR_X509_INVALID_FORMAT;
		tls_file_err(err, errlen, "certificate", cert_file, ret, errno);
		return -1;
	}
	errno = 0;
	if ((ret = mbedcompat_pk_parse_keyfile(key, key_file,
	    mbedtls_ctr_drbg_random, &tls_drbg)) != 0) {
		tls_file_err(err, errlen, "key", key_file, ret, errno);
		return -1;
	}
	if (mbedcompat_pk_check_pair(&cert->pk, key, mbedtls_ctr_drbg_random,
	    &tls_drbg) != 0) {
		tls_seterr(err, errlen, "key %s does not match certificate %s",
		    key_file, cert_file);
		return -1;
	}
	if (mbedtls_x509_time_is_past(&cert->valid_to))
		log_warnx("tls: certificate %s has expired", cert_file);
	else if (mbedtls_x509_time_is_future(&cert->valid_from))
		log_warnx("tls: certificate %s is not valid yet", cert_file);
	return 0;
}

/* A PEM bundle or a directory of them; certificates mbedTLS cannot parse
 * (a bundle may hold some) are skipped as long as one is usable. */
static int
tls_load_ca(mbedtls_x509_crt *ca, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int ret;

	errno = 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		ret = mbedtls_x509_crt_parse_path(ca, path);
	else
		ret = mbedtls_x509_crt_parse_file(ca, path);
	if (ret < 0) {
		tls_file_err(err, errlen, "CA file", path, ret, errno);
		return -1;
	}
	if (ca->version == 0) {
		tls_seterr(err, errlen, "CA file %s: no usable certificate",
		    path);
		return -1;
	}
	if (ret > 0)
		log_debug("tls: %s: skipped %d unusable certificates", path,
		    ret);
	return 0;
}

/* A zeroed context of size bytes, once the DRBG is seeded. */
static void *
tls_ctx_calloc(size_t size, char *err, size_t errlen)
{
	void *ctx;

	tls_seterr(err, errlen, "%s", "");
	if (tls_drbg_init(err, errlen) == -1)
		return NULL;
	if ((ctx = calloc(1, size)) == NULL)
		tls_seterr(err, errlen, "%s", strerror(errno));
	return ctx;
}

static void
tls_server_ctx_free(struct tls_server_ctx *ctx)
{
	mbedtls_ssl_ticket_free(&ctx->ticket);
	mbedtls_ssl_cache_free(&ctx->cache);
	mbedtls_x509_crt_free(&ctx->client_ca);
	mbedtls_pk_free(&ctx->key);
	mbedtls_x509_crt_free(&ctx->cert);
	mbedtls_ssl_config_free(&ctx->conf);
	free(ctx);
}

struct tls_server_ctx *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    const char *client_ca_file, char *err, size_t errlen)
{
	struct tls_server_ctx *ctx;
	char msg[128];
	int ret;

	if ((ctx = tls_ctx_calloc(sizeof(*ctx), err, errlen)) == NULL)
		return NULL;
	ctx->refs = 1;
	mbedtls_ssl_config_init(&ctx->conf);
	mbedtls_x509_crt_init(&ctx->cert);
	mbedtls_pk_init(&ctx->key);
	mbedtls_x509_crt_init(&ctx->client_ca);
	mbedtls_ssl_cache_init(&ctx->cache);
	mbedtls_ssl_ticket_init(&ctx->ticket);

	if (tls_load_keypair(&ctx->cert, &ctx->key, cert_file, key_file, err,
	    errlen) == -1)
		goto fail;
	if (client_ca_file != NULL &&
	    tls_load_ca(&ctx->client_ca, client_ca_file, err, errlen) == -1)
		goto fail;
	if ((ret = mbedtls_ssl_config_defaults(&ctx->conf,
	    MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
	    MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
		goto fail_mbed;
	tls_conf_common(&ctx->conf);
	if ((ret = mbedtls_ssl_conf_own_cert(&ctx->conf, &ctx->cert,
	    &ctx->key)) != 0)
		goto fail_mbed;
	if (client_ca_file != NULL) {
		mbedtls_ssl_conf_ca_chain(&ctx->conf, &ctx->client_ca, NULL);
		mbedtls_ssl_conf_authmode(&ctx->conf,
		    MBEDTLS_SSL_VERIFY_REQUIRED);
	} else
		mbedtls_ssl_conf_authmode(&ctx->conf, MBEDTLS_SSL_VERIFY_NONE);

	/* Resumption for both kinds of client: ids (cache) and tickets. */
	mbedtls_ssl_conf_session_cache(&ctx->conf, &ctx->cache,
	    mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
	if ((ret = mbedtls_ssl_ticket_setup(&ctx->ticket,
	    mbedtls_ctr_drbg_random, &tls_drbg, MBEDTLS_CIPHER_AES_256_GCM,
	    TLS_TICKET_LIFETIME)) != 0)
		goto fail_mbed;
	mbedtls_ssl_conf_session_tickets_cb(&ctx->conf,
	    mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &ctx->ticket);
	return ctx;

fail_mbed:
	mbedtls_strerror(ret, msg, sizeof(msg));
	tls_seterr(err, errlen, "TLS setup: %s", msg);
fail:
	tls_server_ctx_free(ctx);
	return NULL;
}

struct tls_server_ctx *
tls_server_ctx_ref(struct tls_server_ctx *ctx)
{
	ctx->refs++;
	return ctx;
}

void
tls_server_ctx_unref(struct tls_server_ctx *ctx)
{
	if (ctx != NULL && --ctx->refs == 0)
		tls_server_ctx_free(ctx);
}

static void
tls_client_ctx_free(struct tls_client_ctx *ctx)
{
	tls_client_ctx_unref(ctx->base);
	free(ctx->alpn);
	mbedtls_ssl_session_free(&ctx->session);
	free(ctx->session_host);
	free(ctx->tls12_host);
	mbedtls_ssl_config_free(&ctx->conf12);
	mbedtls_pk_free(&ctx->key);
	mbedtls_x509_crt_free(&ctx->cert);
	mbedtls_x509_crt_free(&ctx->ca);
	mbedtls_ssl_config_free(&ctx->conf);
	free(ctx);
}

/* A client config on ctx's CAs and certificate; TLS 1.2 only or not. */
static int
tls_client_conf(struct tls_client_ctx *ctx, mbedtls_ssl_config *conf,
    bool tls12_only)
{
	struct tls_client_ctx *own = ctx->base != NULL ? ctx->base : ctx;
	int ret;

	if ((ret = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
		return ret;
	tls_conf_common(conf);
	if (tls12_only)
		mbedcompat_ssl_conf_tls12_only(conf);
	/* Not configurable on purpose: see DESIGN.md. */
	mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(conf, &own->ca, NULL);
	mbedcompat_ssl_conf_client_tickets(conf);
	if (ctx->alpn != NULL &&
	    (ret = mbedtls_ssl_conf_alpn_protocols(conf, ctx->alpn_list)) != 0)
		return ret;
	if (own->cert.version != 0)
		return mbedtls_ssl_conf_own_cert(conf, &own->cert, &own->key);
	return 0;
}

static struct tls_client_ctx *
tls_client_ctx_alloc(char *err, size_t errlen)
{
	struct tls_client_ctx *ctx;

	if ((ctx = tls_ctx_calloc(sizeof(*ctx), err, errlen)) == NULL)
		return NULL;
	ctx->refs = 1;
	mbedtls_ssl_config_init(&ctx->conf);
	mbedtls_ssl_config_init(&ctx->conf12);
	mbedtls_x509_crt_init(&ctx->ca);
	mbedtls_x509_crt_init(&ctx->cert);
	mbedtls_pk_init(&ctx->key);
	mbedtls_ssl_session_init(&ctx->session);
	return ctx;
}

/* Both configs of ctx; frees ctx on failure. */
static struct tls_client_ctx *
tls_client_ctx_setup(struct tls_client_ctx *ctx, char *err, size_t errlen)
{
	char msg[128];
	int ret;

	if ((ret = tls_client_conf(ctx, &ctx->conf, false)) != 0 ||
	    (ret = tls_client_conf(ctx, &ctx->conf12, true)) != 0) {
		mbedtls_strerror(ret, msg, sizeof(msg));
		tls_seterr(err, errlen, "TLS setup: %s", msg);
		tls_client_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

struct tls_client_ctx *
tls_client_ctx_new(const char *ca_file, const char *cert_file,
    const char *key_file, char *err, size_t errlen)
{
	struct tls_client_ctx *ctx;

	if ((cert_file == NULL) != (key_file == NULL)) {
		tls_seterr(err, errlen, "a client certificate needs its key "
		    "and the other way round");
		return NULL;
	}
	if ((ctx = tls_client_ctx_alloc(err, errlen)) == NULL)
		return NULL;
	if (tls_load_ca(&ctx->ca, ca_file != NULL ? ca_file :
	    TLS_DEFAULT_CA_FILE, err, errlen) == -1 ||
	    (cert_file != NULL && (tls_key_private(key_file, err,
	    errlen) == -1 || tls_load_keypair(&ctx->cert, &ctx->key,
	    cert_file, key_file, err, errlen) == -1))) {
		tls_client_ctx_free(ctx);
		return NULL;
	}
	return tls_client_ctx_setup(ctx, err, errlen);
}

struct tls_client_ctx *
tls_client_ctx_alpn(struct tls_client_ctx *base, const char *protocol,
    char *err, size_t errlen)
{
	struct tls_client_ctx *ctx;

#if !defined(MBEDTLS_SSL_ALPN)
	tls_seterr(err, errlen, "this mbedTLS is built without ALPN");
	return NULL;
#endif
	if (base->base != NULL || protocol == NULL || *protocol == '\0' ||
	    strlen(protocol) > 255) {
		tls_seterr(err, errlen, "ALPN: bad protocol name");
		return NULL;
	}
	if ((ctx = tls_client_ctx_alloc(err, errlen)) == NULL)
		return NULL;
	ctx->base = tls_client_ctx_ref(base);
	if ((ctx->alpn = strdup(protocol)) == NULL) {
		tls_seterr(err, errlen, "%s", strerror(errno));
		tls_client_ctx_free(ctx);
		return NULL;
	}
	ctx->alpn_list[0] = ctx->alpn;
	return tls_client_ctx_setup(ctx, err, errlen);
}

struct tls_client_ctx *
tls_client_ctx_ref(struct tls_client_ctx *ctx)
{
	ctx->refs++;
	return ctx;
}

void
tls_client_ctx_unref(struct tls_client_ctx *ctx)
{
	if (ctx != NULL && --ctx->refs == 0)
		tls_client_ctx_free(ctx);
}

/* --- errors -------------------------------------------------------------- */

static const struct {
	uint32_t	 flag;
	const char	*text;
} tls_verify_texts[] = {
	{ MBEDTLS_X509_BADCERT_MISSING, "no certificate" },
	{ MBEDTLS_X509_BADCERT_NOT_TRUSTED, "certificate not trusted" },
	{ MBEDTLS_X509_BADCERT_CN_MISMATCH, "hostname mismatch" },
	{ MBEDTLS_X509_BADCERT_EXPIRED, "certificate expired" },
	{ MBEDTLS_X509_BADCERT_FUTURE, "certificate not valid yet" },
	{ MBEDTLS_X509_BADCERT_REVOKED, "certificate revoked" },
	{ MBEDTLS_X509_BADCERT_KEY_USAGE, "key usage not allowed" },
	{ MBEDTLS_X509_BADCERT_EXT_KEY_USAGE, "extended key usage not allowed" },
	{ MBEDTLS_X509_BADCERT_NS_CERT_TYPE, "certificate type not allowed" },
	{ MBEDTLS_X509_BADCERT_BAD_MD, "signature hash not allowed" },
	{ MBEDTLS_X509_BADCERT_BAD_PK, "signature algorithm not allowed" },
	{ MBEDTLS_X509_BADCERT_BAD_KEY, "key too weak" },
	{ MBEDTLS_X509_BADCERT_OTHER, "certificate rejected" },
};

static const struct {
	unsigned char	 alert;
	const char	*text;
} tls_alert_texts[] = {
	{ MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE, "handshake failure" },
	{ MBEDTLS_SSL_ALERT_MSG_NO_CERT, "no certificate" },
	{ MBEDTLS_SSL_ALERT_MSG_BAD_CERT, "bad certificate" },
	{ MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT, "unsupported certificate" },
	{ MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED, "certificate revoked" },
	{ MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED, "certificate expired" },
	{ MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN, "certificate unknown" },
	{ MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA, "unknown CA" },
	{ MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED, "access denied" },
	{ MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION, "protocol version" },
	{ MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY, "insufficient security" },
	{ MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR, "internal error" },
	{ MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME, "unrecognized name" },
	{ 116, "certificate required" },	/* TLS 1.3 peers send it */
};

static void __attribute__((format(printf, 2, 3)))
tls_err_append(struct tls_conn *c, const char *fmt, ...)
{
	size_t n = strlen(c->err);
	va_list ap;

	if (n + 1 >= sizeof(c->err))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(c->err + n, sizeof(c->err) - n, fmt, ap);
	va_end(ap);
}

/*
 * The user's event callback for EOF and errors runs from the loop, after the
 * read callback for whatever plaintext came before: the user gets the data,
 * then the reason.
 */
static void
tls_report(struct tls_conn *c, short what)
{
	c->done = true;
	bufferevent_trigger_event(c->bev, what, BEV_TRIG_DEFER_CALLBACKS);
}

/*
 * Our alert or close_notify now, before the user frees the socket. A socket
 * bufferevent keeps the front of its output frozen so that only its own write
 * path drains it (evbuffer_write() fails on it): thaw it for one attempt, as
 * that path does.
 */
static void
tls_push(struct tls_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->under);
	evutil_socket_t fd = bufferevent_getfd(c->under);

	if (fd == -1 || evbuffer_get_length(out) == 0)
		return;
	(void)evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, fd);
	(void)evbuffer_freeze(out, 1);
}

/*
 * mbedTLS 3.6.6 cannot finish a TLS 1.2 handshake it offered TLS 1.3 in
 * when the server signs with RSA-PSS (base/mbedcompat.h); offered TLS 1.2
 * alone, it can. The server said it has no TLS 1.3, so nothing is lost by
 * offering that host TLS 1.2 only from now on, for the context's life.
 */
static void
tls_client_tls12_only(struct tls_conn *c)
{
	struct tls_client_ctx *ctx = c->cctx;

	if (ctx->tls12_host != NULL && strcmp(ctx->tls12_host, c->host) == 0)
		return;
	free(ctx->tls12_host);
	if ((ctx->tls12_host = strdup(c->host)) != NULL)
		log_notice("tls: %s answered TLS 1.2 with an RSA-PSS signature "
		    "this mbedTLS refuses there; offering it TLS 1.2 only",
		    c->host);
}

static void
tls_fail(struct tls_conn *c, const char *what, int ret, short events)
{
	char msg[128];
	uint32_t flags;
	const char *sep = ": ";

	/* In TLS 1.2 mbedTLS hangs up on a client without a certificate
	 * without a word; RFC 5246 7.4.6 suggests this alert. (In TLS 1.3 it
	 * sends one itself.) */
	if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE &&
	    !mbedcompat_ssl_is_tls13(&c->ssl))
		(void)mbedtls_ssl_send_alert_message(&c->ssl,
		    MBEDTLS_SSL_ALERT_LEVEL_FATAL,
		    MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
	if (c->cctx != NULL && mbedcompat_ssl_needs_tls12_only(&c->ssl, ret))
		tls_client_tls12_only(c);
	mbedtls_strerror(ret, msg, sizeof(msg));
	(void)snprintf(c->err, sizeof(c->err), "%s: %s (-0x%04x)", what, msg,
	    (unsigned)-ret);
	if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && c->alert >= 0) {
		const char *name = "?";

		for (size_t i = 0; i < sizeof(tls_alert_texts) /
		    sizeof(tls_alert_texts[0]); i++)
			if (tls_alert_texts[i].alert == c->alert)
				name = tls_alert_texts[i].text;
		tls_err_append(c, ": alert %d (%s)", c->alert, name);
	}
	flags = mbedtls_ssl_get_verify_result(&c->ssl);
	if (flags != (uint32_t)-1)
		for (size_t i = 0; i < sizeof(tls_verify_texts) /
		    sizeof(tls_verify_texts[0]); i++)
			if (flags & tls_verify_texts[i].flag) {
				tls_err_append(c, "%s%s", sep,
				    tls_verify_texts[i].text);
				sep = ", ";
			}
	tls_push(c);
	tls_report(c, BEV_EVENT_ERROR | events);
}

/* --- the engine ---------------------------------------------------------- */

static int
tls_bio_send(void *arg, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = arg;

	if (evbuffer_add(bufferevent_get_output(c->under), buf, len) == -1)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	return (int)len;
}

static int
tls_bio_recv(void *arg, unsigned char *buf, size_t len)
{
	struct tls_conn *c = arg;
	int n;

	n = evbuffer_remove(bufferevent_get_input(c->under), buf, len);
	return n > 0 ? n : MBEDTLS_ERR_SSL_WANT_READ;
}

/*
 * Called for each certificate checked, which only a full handshake does. A
 * Pi without RTC boots in 1970, where every certificate is "not valid yet":
 * the uplink could then never reach the 403 whose Date sets its signing
 * clock. While the local clock is before this build, and so certainly
 * wrong, a certificate that was already valid when this build was made
 * passes that one check; every other check stays.
 */
static int
tls_verify(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls_conn *c = arg;
	const mbedtls_x509_time *f = &crt->valid_from;
	struct tm tm = {
		.tm_year = f->year - 1900, .tm_mon = f->mon - 1,
		.tm_mday = f->day, .tm_hour = f->hour, .tm_min = f->min,
		.tm_sec = f->sec,
	};

	c->verified = true;
	if ((*flags & MBEDTLS_X509_BADCERT_FUTURE) &&
	    (int64_t)time(NULL) < IOTB_BUILD_EPOCH &&
	    (int64_t)timegm(&tm) <= IOTB_BUILD_EPOCH)
		*flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_FUTURE;
	return 0;
}

/*
 * Keep the session for the next connection to this host: at the end of a
 * TLS 1.2 handshake, or when a TLS 1.3 server sends a ticket after its
 * handshake (a TLS 1.3 session without one cannot be resumed).
 */
static void
tls_client_save(struct tls_conn *c)
{
	struct tls_client_ctx *ctx = c->cctx;

	mbedtls_ssl_session_free(&ctx->session);
	mbedtls_ssl_session_init(&ctx->session);
	free(ctx->session_host);
	ctx->session_host = NULL;
	if (mbedtls_ssl_get_session(&c->ssl, &ctx->session) == 0)
		ctx->session_host = strdup(c->host);
}

/* The engine's two entry points for input, with tls_current set for them. */
static int
tls_ssl_handshake(struct tls_conn *c)
{
	struct tls_conn *prev = tls_current;
	int ret;

	tls_current = c;
	ret = mbedtls_ssl_handshake(&c->ssl);
	tls_current = prev;
	return ret;
}

static int
tls_ssl_read(struct tls_conn *c, unsigned char *buf, size_t len)
{
	struct tls_conn *prev = tls_current;
	int ret;

	tls_current = c;
	ret = mbedtls_ssl_read(&c->ssl, buf, len);
	tls_current = prev;
	return ret;
}

/* Encrypt all of src into the socket's output, a record per 16 KiB. */
static int
tls_encrypt(struct tls_conn *c, struct evbuffer *src)
{
	unsigned char *p;
	size_t len;
	int ret;

	while ((len = evbuffer_get_length(src)) > 0) {
		if (len > TLS_RECORD_MAX)
			len = TLS_RECORD_MAX;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)len)) == NULL) {
			tls_fail(c, "write", MBEDTLS_ERR_SSL_ALLOC_FAILED,
			    BEV_EVENT_WRITING);
			return -1;
		}
		/* never WANT_WRITE: tls_bio_send takes everything */
		if ((ret = mbedtls_ssl_write(&c->ssl, p, len)) < 0) {
			tls_fail(c, "write", ret, BEV_EVENT_WRITING);
			return -1;
		}
		evbuffer_drain(src, (size_t)ret);
	}
	return 0;
}

/* 1: established now, 0: needs more bytes, -1: failed (reported) */
static int
tls_handshake(struct tls_conn *c)
{
	int ret;

	ret = tls_ssl_handshake(c);
	if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
	    ret == MBEDTLS_ERR_SSL_WANT_WRITE)
		return 0;
	if (ret != 0) {
		tls_fail(c, "handshake", ret, BEV_EVENT_READING);
		return -1;
	}
	c->established = true;
	evtimer_del(c->timer);
	if (c->cctx != NULL) {
		c->resumed = !c->verified;
		if (!mbedcompat_ssl_is_tls13(&c->ssl))
			tls_client_save(c);
	}
	/* Not deferred: it must come before the read callback for data that
	 * followed the Finished message in this very read. */
	bufferevent_trigger_event(c->bev, BEV_EVENT_CONNECTED, 0);
	if (c->closing)
		return -1;
	/* what the user wrote while we were shaking hands */
	(void)bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
	return 1;
}

/*
 * Decrypt everything there is: what the socket brought and what mbedTLS
 * still holds. Plaintext left inside mbedTLS would stall, as libevent only
 * calls us again when the socket has more bytes; so the read high-water mark
 * (limit) may be overshot by what one socket read brought. mbedTLS also
 * says WANT_READ after a record that carried no data (a TLS 1.3 ticket, a
 * warning alert) while more records wait, in its buffer (check_pending) or
 * in the socket's: read on then too. Each round consumes a record, so this
 * ends.
 */
static enum bufferevent_filter_result
tls_filter_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct tls_conn *c = arg;
	unsigned char buf[TLS_RECORD_MAX];
	size_t dirty = 0;
	bool got = false;
	int ret;

	if (c->done || c->closing)
		return BEV_ERROR;
	if (!c->established && (ret = tls_handshake(c)) <= 0)
		return ret == 0 ? BEV_NEED_MORE : BEV_ERROR;

	for (;;) {
		ret = tls_ssl_read(c, buf, sizeof(buf));
		if (ret > 0) {
			if ((size_t)ret > dirty)
				dirty = (size_t)ret;
			if (evbuffer_add(dst, buf, (size_t)ret) == -1) {
				tls_fail(c, "read",
				    MBEDTLS_ERR_SSL_ALLOC_FAILED,
				    BEV_EVENT_READING);
				break;
			}
			got = true;
			c->app_in = true;
			continue;
		}
		if (mbedcompat_ssl_is_new_ticket(ret)) {
			if (c->cctx != NULL)
				tls_client_save(c);
			continue;
		}
		if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
		    ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
			if (mbedtls_ssl_check_pending(&c->ssl) ||
			    evbuffer_get_length(bufferevent_get_input(
			    c->under)) > 0)
				continue;
			break;
		}
		if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == 0) {
			/* RFC 5246 7.2.1: answer in kind, write no more */
			(void)mbedtls_ssl_close_notify(&c->ssl);
			tls_push(c);
			tls_report(c, BEV_EVENT_EOF | BEV_EVENT_READING);
		} else
			/* TLS 1.3 sends the server's verdict on our certificate
			 * after our Finished: a fatal alert before any data is
			 * the handshake's failure, as in TLS 1.2 */
			tls_fail(c, !c->app_in && c->cctx != NULL &&
			    ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE &&
			    mbedcompat_ssl_is_tls13(&c->ssl) ? "handshake" :
			    "read", ret, BEV_EVENT_READING);
		break;
	}
	/* The plaintext may be a secret (a credentials answer): no copy of it
	 * stays behind on the stack. The user's buffer is the user's. */
	mbedtls_platform_zeroize(buf, dirty);
	if (got)
		return BEV_OK;
	return c->done ? BEV_ERROR : BEV_NEED_MORE;
}

static enum bufferevent_filter_result
tls_filter_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct tls_conn *c = arg;

	if (c->done || c->closing)
		return BEV_ERROR;
	if (!c->established)
		return BEV_NEED_MORE;	/* tls_handshake() flushes */
	if (evbuffer_get_length(src) == 0)
		return BEV_NEED_MORE;
	return tls_encrypt(c, src) == 0 ? BEV_OK : BEV_ERROR;
}

/* Is the user's bufferevent still alive (not freed while our timer was
 * already due)? Freeing it clears the socket bufferevent's callbacks. */
static bool
tls_linked(struct tls_conn *c)
{
	bufferevent_event_cb cb;

	bufferevent_getcb(c->under, NULL, NULL, &cb, NULL);
	return cb == tls_under_event;
}

/*
 * We stand between the socket bufferevent and the filter's callbacks, which
 * share one argument: reads and writes pass through, socket events are
 * looked at first (the filter would hand them to the user as they are).
 */
static void
tls_under_read(struct bufferevent *under, void *arg)
{
	struct tls_conn *c = arg;

	c->filter_readcb(under, c->filter_arg);
}

static void
tls_under_write(struct bufferevent *under, void *arg)
{
	struct tls_conn *c = arg;

	c->filter_writecb(under, c->filter_arg);
}

static void
tls_under_event(struct bufferevent *under, short what, void *arg)
{
	struct tls_conn *c = arg;
	int saved = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
		return;		/* TCP is up; the ClientHello is queued */
	if (c->done)
		return;
	if (what & BEV_EVENT_ERROR)
		(void)snprintf(c->err, sizeof(c->err), "socket: %s",
		    evutil_socket_error_to_string(saved));
	else if ((what & BEV_EVENT_EOF) && !c->established) {
		(void)snprintf(c->err, sizeof(c->err),
		    "handshake: connection closed by the peer");
		what = BEV_EVENT_ERROR | BEV_EVENT_READING;
	} else if (what & BEV_EVENT_EOF)
		(void)snprintf(c->err, sizeof(c->err),
		    "connection closed without close_notify");
	c->done = true;
	c->filter_eventcb(under, what, c->filter_arg);
}

static void
tls_linger_end(struct tls_conn *c)
{
	LIST_REMOVE(c, entry);
	evtimer_del(c->timer);
	bufferevent_free(c->bev);	/* and the socket with it */
}

static void
tls_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;

	if (c->closing) {
		tls_linger_end(c);
		return;
	}
	if (!tls_linked(c) || c->established || c->done)
		return;
	(void)snprintf(c->err, sizeof(c->err),
	    "handshake: timed out after %d ms", c->timeout_ms);
	tls_report(c, BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT);
}

/* The filter's free_context: runs when libevent finalizes the user's bev. */
static void
tls_conn_free(void *arg)
{
	struct tls_conn *c = arg;

	if (c->timer != NULL)
		event_free(c->timer);
	mbedtls_ssl_free(&c->ssl);
	tls_server_ctx_unref(c->sctx);
	tls_client_ctx_unref(c->cctx);
	free(c->host);
	free(c);
}

/* Takes under; frees it on failure. */
static struct tls_conn *
tls_conn_new(const mbedtls_ssl_config *conf, struct bufferevent *under,
    int timeout_ms)
{
	struct tls_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		bufferevent_free(under);
		return NULL;
	}
	mbedtls_ssl_init(&c->ssl);
	c->under = under;
	c->timeout_ms = timeout_ms;
	c->alert = -1;
	(void)snprintf(c->err, sizeof(c->err), "no error");
	if (mbedtls_ssl_setup(&c->ssl, conf) != 0 ||
	    (c->timer = evtimer_new(bufferevent_get_base(under), tls_timer,
	    c)) == NULL) {
		bufferevent_free(under);
		tls_conn_free(c);
		return NULL;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, tls_bio_send, tls_bio_recv, NULL);
	mbedtls_ssl_set_verify(&c->ssl, tls_verify, c);
	return c;
}

/* Put the filter over the socket and get going; frees all on failure. */
static struct bufferevent *
tls_conn_start(struct tls_conn *c)
{
	/* whatever a proxy exchange left on the socket bufferevent */
	bufferevent_setwatermark(c->under, EV_READ | EV_WRITE, 0, 0);
	(void)bufferevent_set_timeouts(c->under, NULL, NULL);
	/* Deferred callbacks: a write into the output must not call the
	 * user's write callback before the write returns, as a socket
	 * bufferevent never does (the broker relies on that). */
	if ((c->bev = bufferevent_filter_new(c->under, tls_filter_in,
	    tls_filter_out, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
	    tls_conn_free, c)) == NULL) {
		bufferevent_free(c->under);
		tls_conn_free(c);
		return NULL;
	}
	bufferevent_getcb(c->under, &c->filter_readcb, &c->filter_writecb,
	    &c->filter_eventcb, &c->filter_arg);
	bufferevent_setcb(c->under, tls_under_read, tls_under_write,
	    tls_under_event, c);
	if (c->timeout_ms > 0) {
		struct timeval tv = {
			.tv_sec = c->timeout_ms / 1000,
			.tv_usec = (c->timeout_ms % 1000) * 1000,
		};

		evtimer_add(c->timer, &tv);
	}
	/* The handshake runs on read events, whatever the user enables. */
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (c->cctx != NULL)
		(void)tls_handshake(c);		/* queues the ClientHello */
	return c->bev;
}

struct bufferevent *
tls_server_wrap(struct event_base *base, struct tls_server_ctx *ctx,
    evutil_socket_t fd, int handshake_timeout_ms)
{
	struct bufferevent *under;
	struct tls_conn *c;

	if ((under = bufferevent_socket_new(base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	if ((c = tls_conn_new(&ctx->conf, under, handshake_timeout_ms)) ==
	    NULL)
		return NULL;
	c->sctx = tls_server_ctx_ref(ctx);
	return tls_conn_start(c);
}

struct bufferevent *
tls_client_wrap(struct tls_client_ctx *ctx, struct bufferevent *under,
    const char *hostname, int handshake_timeout_ms)
{
	struct tls_conn *c;

	if (hostname == NULL || *hostname == '\0') {
		bufferevent_free(under);
		return NULL;
	}
	if ((c = tls_conn_new(ctx->tls12_host != NULL &&
	    strcmp(ctx->tls12_host, hostname) == 0 ? &ctx->conf12 : &ctx->conf,
	    under, handshake_timeout_ms)) == NULL)
		return NULL;
	c->cctx = tls_client_ctx_ref(ctx);
	/* SNI and the name the certificate must carry */
	if ((c->host = strdup(hostname)) == NULL ||
	    mbedtls_ssl_set_hostname(&c->ssl, hostname) != 0) {
		bufferevent_free(under);
		tls_conn_free(c);
		return NULL;
	}
	/* A failed resumption falls back to a full handshake by itself. */
	if (ctx->session_host != NULL && strcmp(ctx->session_host,
	    hostname) == 0)
		(void)mbedtls_ssl_set_session(&c->ssl, &ctx->session);
	return tls_conn_start(c);
}

static struct tls_conn *
tls_conn_of(struct bufferevent *bev)
{
	struct bufferevent *under;
	bufferevent_event_cb cb;
	void *arg;

	if (bev == NULL || (under = bufferevent_get_underlying(bev)) == NULL)
		return NULL;
	bufferevent_getcb(under, NULL, NULL, &cb, &arg);
	if (cb != tls_under_event || ((struct tls_conn *)arg)->bev != bev)
		return NULL;
	return arg;
}

static void
tls_linger_write(struct bufferevent *under, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(under)) == 0)
		tls_linger_end(arg);
}

static void
tls_linger_event(struct bufferevent *under, short what, void *arg)
{
	tls_linger_end(arg);
}

/*
 * The filter's write callback only means "encrypted into the socket's
 * buffer", so a user freeing on it would cut the tail off. Here the socket
 * bufferevent finishes on its own, the filter idle above it, and the pair
 * is freed once the socket took everything (or it failed, or time is up).
 */
void
tls_close(struct bufferevent *bev, int linger_ms)
{
	struct tls_conn *c;
	struct evbuffer *out;
	struct timeval tv;

	if ((c = tls_conn_of(bev)) == NULL || c->closing) {
		bufferevent_free(bev);
		return;
	}
	c->closing = true;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	if (c->established && !c->done &&
	    tls_encrypt(c, bufferevent_get_output(bev)) == 0) {
		(void)mbedtls_ssl_close_notify(&c->ssl);
		c->done = true;
	}
	tls_push(c);
	out = bufferevent_get_output(c->under);
	if (linger_ms <= 0 || evbuffer_get_length(out) == 0) {
		bufferevent_free(bev);
		return;
	}
	bufferevent_disable(c->under, EV_READ);
	bufferevent_setwatermark(c->under, EV_WRITE, 0, 0);
	bufferevent_setcb(c->under, NULL, tls_linger_write, tls_linger_event,
	    c);
	tv.tv_sec = linger_ms / 1000;
	tv.tv_usec = (linger_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	LIST_INSERT_HEAD(&tls_lingering, c, entry);
}

void
tls_shutdown(void)
{
	struct tls_conn *c;

	while ((c = LIST_FIRST(&tls_lingering)) != NULL) {
		tls_push(c);
		tls_linger_end(c);
	}
}

bool
tls_is_tls(struct bufferevent *bev)
{
	return tls_conn_of(bev) != NULL;
}

const char *
tls_last_error(struct bufferevent *bev)
{
	struct tls_conn *c = tls_conn_of(bev);

	return c != NULL ? c->err : "not a TLS connection";
}

bool
tls_peer_cert_subject(struct bufferevent *bev, char *buf, size_t cap)
{
	struct tls_conn *c = tls_conn_of(bev);
	const mbedtls_x509_crt *crt;

	if (cap == 0)
		return false;
	buf[0] = '\0';
	if (c == NULL || !c->established ||
	    (crt = mbedtls_ssl_get_peer_cert(&c->ssl)) == NULL)
		return false;
	if (mbedtls_x509_dn_gets(buf, cap, &crt->subject) < 0) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

bool
tls_resumed(struct bufferevent *bev)
{
	struct tls_conn *c = tls_conn_of(bev);

	return c != NULL && c->resumed;
}

const char *
tls_version(struct bufferevent *bev)
{
	struct tls_conn *c = tls_conn_of(bev);

	return c != NULL && c->established ?
	    mbedtls_ssl_get_version(&c->ssl) : "?";
}

const char *
tls_alpn(struct bufferevent *bev)
{
	struct tls_conn *c = tls_conn_of(bev);
	const char *p;

	if (c == NULL || !c->established ||
	    (p = mbedtls_ssl_get_alpn_protocol(&c->ssl)) == NULL)
		return NULL;
	return p;
}

const char *
tls_library(void)
{
	static char text[64];
	char version[18];	/* the function writes at most 9 */

	if (text[0] == '\0') {
		mbedtls_version_get_string(version);
		(void)snprintf(text, sizeof(text), "mbedTLS %s, TLS 1.2%s",
		    version, MBEDCOMPAT_TLS13 ? " and 1.3" : "");
	}
	return text;
}

const char *
tls_ciphersuite(struct bufferevent *bev)
{
	struct tls_conn *c = tls_conn_of(bev);
	const char *s;

	if (c == NULL || !c->established ||
	    (s = mbedtls_ssl_get_ciphersuite(&c->ssl)) == NULL)
		return "?";
	return s;
}
