/*
 * TLS for both sides of the daemon, mbedTLS 2.28 or 3.6 on libevent 2.1: the
 * broker's TLS listener (server contexts, optionally requiring client
 * certificates) and the uplink to AWS IoT (client contexts: CA bundle, SNI,
 * hostname verification that cannot be turned off, session resumption). A
 * wrapped connection is a bufferevent the rest of the daemon uses like a
 * socket bufferevent: plaintext in its input, plaintext written to its output
 * leaves encrypted. Events: BEV_EVENT_CONNECTED once the handshake is done
 * (before any data), BEV_EVENT_EOF when the peer closes (close_notify or not),
 * BEV_EVENT_ERROR on any failure, with BEV_EVENT_TIMEOUT added when the
 * handshake deadline passed; tls_last_error() says why. Protocol minimum is
 * TLS 1.2; TLS 1.3 is offered too when the library has it (mbedTLS 3.6);
 * renegotiation is refused, ciphersuites are mbedTLS's defaults. mbedTLS
 * 3.6 needs PSA crypto set up first (mbedcompat_crypto_init()).
 */
#ifndef IOTB_TLS_H
#define IOTB_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/util.h>

#define TLS_DEFAULT_CA_FILE	"/etc/ssl/certs/ca-certificates.crt"

struct tls_server_ctx;
struct tls_client_ctx;

/*
 * Server context from PEM files: cert_file (the certificate, then any
 * intermediates), key_file (unencrypted private key, must match the
 * certificate) and optionally client_ca_file: when given, every client must
 * present a certificate that chains to it. Sessions can be resumed (cache and
 * tickets, both private to this context: a reloaded context starts fresh).
 * Returns a context holding one reference, or NULL with a message in err
 * (always NUL-terminated when errlen > 0). The paths are not kept.
 */
struct tls_server_ctx *tls_server_ctx_new(const char *cert_file,
	    const char *key_file, const char *client_ca_file, char *err,
	    size_t errlen);
/* Reference counting: each wrapped connection holds its own reference, so a
 * reload may drop the old context while its connections live on. unref(NULL)
 * is a no-op. */
struct tls_server_ctx *tls_server_ctx_ref(struct tls_server_ctx *);
void	tls_server_ctx_unref(struct tls_server_ctx *);

/*
 * Client context: trusted CAs from ca_file (a PEM bundle or a directory of
 * PEM files; NULL means TLS_DEFAULT_CA_FILE) and, when cert_file and key_file
 * are both given, a client certificate to present when the server asks for
 * one (RSA or EC; the key unencrypted, in any form mbedTLS reads). A key
 * file that other users can read or write is refused ("key F is readable by
 * other users (mode 0644): chmod 0600 F, ..."). The context remembers the
 * last session it established and offers it to the next connection to the
 * same host name. Returns a context holding one reference, or NULL with a
 * message in err. The paths are not kept.
 */
struct tls_client_ctx *tls_client_ctx_new(const char *ca_file,
	    const char *cert_file, const char *key_file, char *err,
	    size_t errlen);

/*
 * A context like base (made by tls_client_ctx_new(); it keeps a reference,
 * and base's CAs and certificate are shared, not loaded again) that also
 * offers the ALPN protocol `protocol` (copied; 1..255 bytes). It has its
 * own saved session. Returns a context holding one reference, or NULL with
 * a message in err.
 */
struct tls_client_ctx *tls_client_ctx_alpn(struct tls_client_ctx *base,
	    const char *protocol, char *err, size_t errlen);
struct tls_client_ctx *tls_client_ctx_ref(struct tls_client_ctx *);
void	tls_client_ctx_unref(struct tls_client_ctx *);

/*
 * Server side of an accepted, connected socket. Takes ownership of fd in all
 * cases (closed on failure). The returned bufferevent is enabled for reading
 * and writing and holds a reference to ctx; bufferevent_free() (or
 * tls_close()) releases everything, socket included. handshake_timeout_ms > 0
 * bounds the handshake: past it, the event callback gets
 * BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT. Returns NULL on allocation failure.
 */
struct bufferevent *tls_server_wrap(struct event_base *base,
	    struct tls_server_ctx *ctx, evutil_socket_t fd,
	    int handshake_timeout_ms);

/*
 * Client side over `under`, a socket bufferevent that is connected or still
 * connecting (the ClientHello waits in its output), possibly after a proxy
 * CONNECT spoke plaintext on it. Takes ownership of under in all cases (freed
 * on failure); its callbacks now belong to the TLS layer. hostname (a DNS
 * name: mbedTLS 2.28 cannot check IP addresses) is sent as SNI and must match
 * the server certificate; it is copied. Timeout and result as for
 * tls_server_wrap(). Returns NULL when hostname is NULL/empty or on allocation
 * failure.
 */
struct bufferevent *tls_client_wrap(struct tls_client_ctx *ctx,
	    struct bufferevent *under, const char *hostname,
	    int handshake_timeout_ms);

/*
 * End a wrapped connection the polite way: what is still queued in bev's
 * output is encrypted and sent, then close_notify, in the background for at
 * most linger_ms (0: a single non-blocking write attempt, for shutdown); the
 * socket is closed after. bev's callbacks are cleared at once and bev must not
 * be used again, exactly as after bufferevent_free(). A bev that is not a TLS
 * connection is simply freed.
 */
void	tls_close(struct bufferevent *bev, int linger_ms);

/*
 * Free whatever tls_close() still has lingering; call before
 * event_base_free() at exit.
 */
void	tls_shutdown(void);

/* Is bev a connection made by tls_*_wrap()? */
bool	tls_is_tls(struct bufferevent *bev);

/*
 * Why the connection failed or closed, e.g. "handshake: X509 - Certificate
 * verification failed, e.g. CRL, CA or signature check failed (-0x2700):
 * certificate not trusted, hostname mismatch". The string belongs to the
 * connection and lives as long as bev. Returns "no error" when nothing went
 * wrong and "not a TLS connection" for other bufferevents; never NULL.
 */
const char *tls_last_error(struct bufferevent *bev);

/*
 * The subject DN of the peer's certificate ("CN=foo, O=bar") into buf (cap
 * bytes, always NUL-terminated when cap > 0). mbedTLS replaces control
 * characters with '?', but bytes >= 0x80 pass: escape before logging.
 * Returns false when there is no verified peer certificate (a server without
 * a client CA, a handshake not done yet, not a TLS bev) or it did not fit.
 */
bool	tls_peer_cert_subject(struct bufferevent *bev, char *buf, size_t cap);

/* Was the handshake an abbreviated one, resuming a saved session? Client side
 * only (false on the server side and before the handshake). */
bool	tls_resumed(struct bufferevent *bev);

/* Negotiated protocol and ciphersuite names for a log line ("?" before the
 * handshake or for another bufferevent). Static strings. */
const char *tls_version(struct bufferevent *bev);
const char *tls_ciphersuite(struct bufferevent *bev);

/* The ALPN protocol the server chose, or NULL: none offered or chosen, not
 * established, not a TLS bev. Valid as long as bev. */
const char *tls_alpn(struct bufferevent *bev);

/* The library and the protocols offered, for --version and the log:
 * "mbedTLS 3.6.6, TLS 1.2 and 1.3" or "mbedTLS 2.28.3, TLS 1.2". Static. */
const char *tls_library(void);

/*
 * len random bytes from the process's DRBG (seeded from the system entropy
 * on first use; the same one the TLS contexts use). Returns 0, or -1 when
 * seeding or generation failed (buf is then unspecified).
 */
int	tls_random(void *buf, size_t len);

#endif
