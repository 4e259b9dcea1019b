/*
 * What a transport implementation provides and may call: the part of a
 * connection to AWS that differs between transports, after the shared steps
 * (DNS, TCP, proxy, TLS) are done. An implementation sees the TLS
 * connection's plaintext buffers ("wire") and produces or consumes stream
 * bytes, the MQTT bytes the session sees. Only transport.c and the
 * implementation files include this header.
 */
#ifndef IOTB_TRANSPORT_IMPL_H
#define IOTB_TRANSPORT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/aws/transport.h"

struct evbuffer;
struct event_base;
struct evdns_base;
struct cfg;

struct transport_impl {
	const char	*kind;		/* "wss": for logs and status */
	const char	*alpn;		/* the ALPN protocol TLS offers; NULL */
	/* What to check when AWS closes the stream before the session
	 * began (NULL: nothing to say). */
	const char	*closed_early;

	/* State for a transport made from cfg (the transport's, borrowed
	 * like it: read it through transport_cfg()). NULL when out of memory
	 * or the settings cannot be used (logged). */
	void	*(*create)(struct transport *t, const struct cfg *cfg);
	void	 (*destroy)(void *st);

	/* Would cfg b make another connection than a, for what only this
	 * implementation reads (the region it signs for)? */
	bool	 (*differs)(const struct cfg *a, const struct cfg *b);

	/* Optional: cfg replaces the config in force without a new
	 * connection (differs() said no): what the state borrowed of the old
	 * one must now come from cfg. */
	void	 (*adopt)(void *st, const struct cfg *cfg);

	/* Optional: before anything is resolved, get what the attempt needs
	 * (temporary credentials). True: ready, go on. False: call
	 * transport_prepared() or transport_fail() later, from the loop;
	 * never from inside prepare(). */
	bool	 (*prepare)(struct transport *t, void *st);

	/* TLS is up. Start the implementation's own handshake, writing to
	 * wire; or call transport_opened() at once when it has none. Report a
	 * failure with transport_fail(). */
	void	 (*handshake)(struct transport *t, void *st,
		    struct evbuffer *wire);

	/* Bytes arrived in `in`, during the handshake or once open; answers
	 * of the transport's own (a pong) go to `out`. Drain what was used;
	 * stream bytes go up with transport_deliver(), as the last thing
	 * done. After transport_fail() or a transport_opened() that returned
	 * false, touch nothing and return. */
	void	 (*input)(struct transport *t, void *st, struct evbuffer *in,
		    struct evbuffer *out);

	/* Frame stream bytes head + body onto wire as one unit. 0 or -1. */
	int	 (*send)(struct transport *t, void *st, struct evbuffer *wire,
		    const void *head, size_t hlen, const void *body,
		    size_t blen);

	/* The connection is gone: forget what belonged to it, wipe its
	 * secrets. */
	void	 (*reset)(void *st);

	/* The correction added to the local clock (0 for none). */
	int64_t	 (*clock_offset)(const void *st);
};

extern const struct transport_impl transport_wss;
extern const struct transport_impl transport_mqtts;	/* transport_raw.c */
extern const struct transport_impl transport_mqtts_alpn;
extern const struct transport_impl transport_https;

/* The configuration in force; the endpoint and the log prefix are in
 * transport_info(). */
const struct cfg *transport_cfg(const struct transport *t);

/* What the transport was made with, for an implementation that needs a
 * connection of its own (the credentials provider's). */
struct event_base *transport_base(const struct transport *t);
struct evdns_base *transport_dns(const struct transport *t);

/* The ALPN protocol this attempt offers (the implementation's), and the
 * one the server chose once TLS is up; NULL for none. */
const char	*transport_alpn_offered(const struct transport *t);
const char	*transport_alpn(const struct transport *t);

/* What prepare() waited for is there: the attempt goes on. */
void		 transport_prepared(struct transport *t);

/* The open connection will stop being accepted soon (its credentials
 * expire): the session is asked to reconnect when it can. */
void		 transport_expiring(struct transport *t, const char *why);

/* Count wire bytes the implementation took from its input and wrote to its
 * output (handshake and framing included), for status and metrics. The
 * output's length says nothing: TLS may encrypt and take it at once. */
void		 transport_count(struct transport *t, size_t in, size_t out);

/* Queue len bytes of a secret (a signed request, proxy credentials) in
 * out without copying them into libevent's chains, which are freed
 * unwiped: out takes buf (malloc'd) and wipes and frees it once the layer
 * below has taken the bytes. 0, or -1 (buf wiped and freed already). */
int		 transport_add_secret(struct evbuffer *out, void *buf,
		    size_t len);

/* The handshake is done: the stream is open and the session is told.
 * Returns whether it still is when the session is done with the news. */
bool		 transport_opened(struct transport *t);

/* Stream bytes are in `stream` for the session (its data callback). */
void		 transport_deliver(struct transport *t, struct evbuffer *stream);

/* The connection failed or ended: it is closed, and the session is told
 * why (a reason for the log, never a secret). */
void		 transport_fail(struct transport *t, enum transport_end end,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
