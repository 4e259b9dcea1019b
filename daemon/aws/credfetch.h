/*
 * Temporary AWS credentials from the AWS IoT credentials provider
 * (aws.credentials.source: iot), for the SigV4 WebSocket: one HTTPS
 * exchange with the device certificate, over a transport of its own
 * (transport_new_credentials(): the same DNS, TCP, proxy and TLS steps as
 * the data connection), whose answer lib/creds/iotcreds reads. The
 * credentials are kept in memory only, wiped when replaced or dropped, and
 * so are the answer's bytes. They are fetched when asked for (before a
 * connection needs them) and again at a random point of the last 20 % of
 * their life; a refresh that fails is tried again with the reconnect
 * backoff until they expire. Their life is counted on the monotonic clock
 * from the provider's own Date, so a wrong local clock does not move it.
 */
#ifndef IOTB_CREDFETCH_H
#define IOTB_CREDFETCH_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct cfg;
struct creds;
struct credfetch;

struct credfetch_ops {
	/* New credentials are there (credfetch_copy()). date: the
	 * provider's clock at its answer, seconds since the epoch, 0 when it
	 * sent none. */
	void	(*fetched)(void *arg, int64_t date);
	/* A fetch that credfetch_want() asked for failed; why is log-ready
	 * and names the provider and its reason, never a secret. Not called
	 * for a background refresh (logged; tried again). */
	void	(*failed)(void *arg, const char *why);
};

/*
 * For cfg (borrowed until credfetch_adopt() or credfetch_free()), whose
 * credentials source is iot; name prefixes log lines. Nothing is fetched
 * yet. NULL when out of memory or when the provider's connection cannot be
 * set up (logged).
 */
struct credfetch *credfetch_new(struct event_base *base,
		    struct evdns_base *dns, const struct cfg *cfg,
		    const char *name, const struct credfetch_ops *ops,
		    void *arg);

/* Wipe and free; no callback. NULL is a no-op. */
void		 credfetch_free(struct credfetch *cf);

/* cfg replaces the config without changing what is fetched from where. */
void		 credfetch_adopt(struct credfetch *cf, const struct cfg *cfg);

/* Are there credentials good for a connection now (not within a few
 * seconds of their expiry)? */
bool		 credfetch_ready(const struct credfetch *cf);

/* Fetch now unless a fetch is running: ops->fetched() or ops->failed()
 * follows, from the loop. */
void		 credfetch_want(struct credfetch *cf);

/* A copy of the credentials into *out, which the caller wipes with
 * creds_clear(). false (and *out zeroized) when not ready. */
bool		 credfetch_copy(const struct credfetch *cf, struct creds *out);

/* Were the credentials fetched for the current connection attempt (since
 * the last credfetch_mark())? */
bool		 credfetch_fresh(const struct credfetch *cf);
void		 credfetch_mark(struct credfetch *cf);

/* AWS refused them: wipe them, so that the next need fetches anew. */
void		 credfetch_forget(struct credfetch *cf);

#endif
