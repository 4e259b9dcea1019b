/*
 * A transport turns "connect to AWS IoT" into a byte stream for MQTT, and
 * hides how: the MQTT session above it sends bytes and receives bytes, and
 * knows nothing of WebSockets, SigV4, proxies or TLS. One transport carries
 * one connection at a time and can be opened again after it closed.
 *
 * The steps every transport shares (get ready, resolve the name with
 * evdns, connect over TCP address by address, tunnel through an HTTP
 * proxy, TLS with the configured CA and the device certificate) live in
 * transport.c; what differs lives in one implementation file behind struct
 * transport_impl (transport_impl.h): transport_wss.c is MQTT over a
 * SigV4-signed WebSocket, transport_raw.c the TLS stream as it is (MQTT
 * over mutual TLS, on 8883 or on 443 with ALPN, and the credentials
 * provider's HTTPS). aws.transport chooses one, or with auto a list that
 * is tried one per attempt (lib/tchoice), the one that carried a session
 * remembered in the state directory.
 *
 *	transport_open()  ->  opened()  ->  data() / drained() ...
 *	                  \-> closed(FAILED | RETRY)       \-> closed(LOST)
 *	                                    \-> expiring() (reconnect soon)
 *
 * Callbacks are never made from inside transport_open(), transport_send()
 * or transport_close(); transport_close() by the session makes none.
 */
#ifndef IOTB_TRANSPORT_H
#define IOTB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct evbuffer;
struct cfg;
struct transport;

/* How a connection ended, for the session's backoff. */
enum transport_end {
	TRANSPORT_FAILED,	/* no stream: DNS, TCP, proxy, TLS or the
				 * transport's handshake failed */
	TRANSPORT_RETRY,	/* no stream, but its cause is fixed (the
				 * signing clock was corrected): again now */
	TRANSPORT_LOST,		/* the open stream ended */
};

struct transport_cb {
	/* The stream is open: the MQTT CONNECT may go. */
	void	(*opened)(void *arg);
	/* Stream bytes arrived in `in`; take what is complete and drain it.
	 * `in` is valid until the callback returns or the transport is
	 * closed, whichever comes first. */
	void	(*data)(void *arg, struct evbuffer *in);
	/* Everything sent so far has been handed to the socket. */
	void	(*drained)(void *arg);
	/* The connection ended on its own; why is a log-ready reason that
	 * never holds a secret. */
	void	(*closed)(void *arg, enum transport_end end, const char *why);
	/* The open connection will not be accepted for long (the temporary
	 * credentials it was signed with are about to expire, and fresh ones
	 * are there): reconnect when it suits. Optional (NULL). */
	void	(*expiring)(void *arg, const char *why);
};

/* What status and logs show of a transport. */
struct transport_info {
	const char	*name;		/* its log prefix ("uplink") */
	const char	*kind;		/* "wss", "mqtts", "mqtts-alpn" (auto:
					 * of this attempt), "https" */
	const char	*host;		/* the endpoint; NULL without aws */
	uint16_t	 port;
	const char	*proxy_host;	/* NULL: direct */
	uint16_t	 proxy_port;
	const char	*tls_version;	/* of the open connection, else "?" */
	bool		 tls_resumed;
	uint64_t	 bytes_out;	/* stream and framing, since start */
	uint64_t	 bytes_in;
	int64_t		 clock_offset_s;	/* added to the local clock to
						 * sign requests */
};

/*
 * A transport for cfg's aws section (borrowed until transport_reload() or
 * transport_free()); name prefixes its log lines ("uplink"). Without an aws
 * section it exists but cannot open. NULL when out of memory or when the
 * settings cannot be used (logged: aws.ca_file unreadable).
 */
struct transport *transport_new(struct event_base *base,
		    struct evdns_base *dns, const struct cfg *cfg,
		    const char *name);

/*
 * A transport to the AWS IoT credentials provider of cfg's aws section
 * (aws.credentials.endpoint, with aws.cert_file, through the proxy): the TLS
 * stream for one HTTPS exchange (credfetch.c). As transport_new()
 * otherwise; NULL also without a credentials endpoint.
 */
struct transport *transport_new_credentials(struct event_base *base,
		    struct evdns_base *dns, const struct cfg *cfg,
		    const char *name);

/* Where the transport reports; arg is passed back. */
void		 transport_set_cb(struct transport *t,
		    const struct transport_cb *cb, void *arg);

/*
 * Would a connection made from cfg differ from one made from the current
 * settings (endpoint, region, CA, proxy)? When it would not, the transport
 * takes cfg's pointer and returns false; when it would, nothing changes
 * until transport_reload().
 */
bool		 transport_differs(struct transport *t, const struct cfg *cfg);

/* Close any connection (no callback) and use cfg from now on. -1 when its
 * settings cannot be used (logged): the transport cannot open until a
 * reload fixes them. */
int		 transport_reload(struct transport *t, const struct cfg *cfg);

/* Close (no callback) and free. NULL is a no-op. */
void		 transport_free(struct transport *t);

/*
 * Start connecting; timeout_ms bounds the TLS handshake (the session's
 * connect deadline bounds the whole). The outcome comes as opened() or
 * closed(). -1 when it cannot even start (no aws section, settings
 * unusable, out of memory).
 */
int		 transport_open(struct transport *t, uint64_t timeout_ms);

/*
 * Send head[0..hlen) followed by body[0..blen) as stream bytes, one unit
 * (a PUBLISH's header and payload go without a copy). Only while open. 0,
 * or -1 when not open or out of memory (nothing was sent).
 */
int		 transport_send(struct transport *t, const void *head,
		    size_t hlen, const void *body, size_t blen);

/* Bytes waiting to be written to the socket. */
size_t		 transport_pending(const struct transport *t);

/*
 * End the connection, or the attempt; no callback follows. polite: what is
 * queued (a DISCONNECT) is flushed and the transport says goodbye (a
 * WebSocket close) in the background for a moment.
 */
void		 transport_close(struct transport *t, bool polite);

void		 transport_info(const struct transport *t,
		    struct transport_info *ti);

/* Zeroize every byte of buf, where it lies, then drain it: for a stream
 * that carried a secret (the credentials provider's answer). */
void		 transport_wipe(struct evbuffer *buf);

/*
 * The session says the open connection carried it (CONNACK): with auto,
 * this way is the one to keep, and to try first at the next start. An
 * attempt that ends without this moves auto on to the next way.
 */
void		 transport_established(struct transport *t);

#endif
