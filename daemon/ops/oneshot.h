/*
 * Small request-answer servers for local tools: the control socket
 * (control.c) and the metrics endpoint (metrics.c). Each connection carries
 * one request of bounded size, which must arrive within a deadline, gets one
 * answer, and is closed once the answer is out (or at the deadline). Only a
 * few connections are served at once; more are turned away at accept. What
 * a request means is the owner's business: a callback looks at what arrived
 * so far and says whether to wait for more, answer or hang up.
 *
 * A unix socket is created with the mode asked for, replaces a stale socket
 * left by an earlier run (never a live one, never another kind of file), and
 * is removed when the server stops listening, if it is still the same file.
 */
#ifndef IOTB_ONESHOT_H
#define IOTB_ONESHOT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct cfg_addr;
struct oneshot;

enum oneshot_verdict {
	ONESHOT_MORE,		/* the request is not complete: keep reading */
	ONESHOT_ANSWER,		/* out holds the answer: send it, then close */
	ONESHOT_CLOSE,		/* hang up without an answer */
};

/*
 * Called after every read with everything received so far in in (at most
 * max_request bytes; the callback may drain it). full: the size limit is
 * reached and nothing more will be read, so ONESHOT_MORE closes the
 * connection as too long. eof: the peer closed its side; ONESHOT_MORE then
 * closes too. peer names the other end for log lines ("uid=0 pid=42",
 * "127.0.0.1:50000"). The answer goes into out.
 */
typedef enum oneshot_verdict (*oneshot_request_fn)(void *arg,
    struct evbuffer *in, bool full, bool eof, struct evbuffer *out,
    const char *peer);

struct oneshot_conf {
	const char		*name;		/* "control", "metrics": logs */
	size_t			 max_conns;	/* served at once */
	size_t			 max_request;	/* bytes */
	unsigned		 timeout_s;	/* for the request; again for
						 * the answer */
	unsigned		 unix_mode;	/* AF_UNIX: the socket's mode */
	const char		*busy;		/* sent, best effort, to a
						 * connection turned away; NULL */
	oneshot_request_fn	 request;
	void			*arg;
};

/* A server listening nowhere yet; conf is copied (its strings are borrowed
 * and must outlive the server). NULL when out of memory. */
struct oneshot	*oneshot_new(struct event_base *base,
		    const struct oneshot_conf *conf);

/*
 * Listen on addr instead of the current address (AF_UNSPEC: nowhere). When
 * already listening on addr, nothing happens. Connections in progress are
 * kept either way. Returns 0, or -1 when addr cannot be listened on: then
 * one warning is logged and the server listens nowhere. addr is copied.
 */
int		 oneshot_listen(struct oneshot *o, const struct cfg_addr *addr);

/* Whether a socket is open now. */
bool		 oneshot_listening(const struct oneshot *o);

/* Stop listening (removing our unix socket), close every connection, free.
 * NULL is a no-op. */
void		 oneshot_free(struct oneshot *o);

#endif
