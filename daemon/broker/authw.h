/*
 * The password checker: PBKDF2-SHA512 verifications (10,000 iterations, some
 * 15 ms on x86 and several times that on a Raspberry Pi) run on a worker
 * thread, not on the event loop, so that a reconnect storm of a few hundred
 * devices does not stall every other client. One thread, started with the
 * broker and joined at exit; a bounded number of checks pending (submitted
 * and not yet answered), past which a CONNECT is refused as "server busy";
 * answers come back to the loop through a pipe, in order.
 */
#ifndef IOTB_AUTHW_H
#define IOTB_AUTHW_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct passwd_db;
struct authw;
struct authw_job;

/* A password database shared by the listener and the checks still running
 * against it: a reload may replace the listener's while one runs. */
struct authw_db;

/* Wrap db (owned from now on); NULL when out of memory (db is freed). */
struct authw_db		*authw_db_new(struct passwd_db *db);
/* Drop a reference; the last one frees the database. NULL is a no-op.
 * Callable from any thread. */
void			 authw_db_unref(struct authw_db *d);
const struct passwd_db	*authw_db_get(const struct authw_db *d);

/* The verdict, on the loop: ok is whether user and password matched. */
typedef void	authw_done_fn(void *arg, bool ok);

/* Start the worker on base; at most max_pending checks at a time. NULL
 * when it cannot be started (logged). */
struct authw	*authw_new(struct event_base *base, size_t max_pending);

/* Stop the worker: checks not yet answered are dropped without their
 * callbacks. NULL is a no-op. */
void		 authw_free(struct authw *w);

/*
 * Check user/password against d (a reference is taken) on the worker; fn
 * is called on the loop with the verdict unless the job is cancelled
 * first. The user name and password are copied (the copy of the password
 * is wiped once checked). NULL when max_pending checks are pending (the
 * caller refuses the CONNECT as "server busy") or out of memory.
 */
struct authw_job *authw_submit(struct authw *w, struct authw_db *d,
		    const char *user, size_t ulen, const void *pw,
		    size_t pwlen, authw_done_fn *fn, void *arg);

/* The asker is gone (the client disconnected): fn will not be called. The
 * job is freed by the worker's side; job must not be used after this. */
void		 authw_cancel(struct authw_job *job);

/* Checks submitted and not yet answered or cancelled. */
size_t		 authw_pending(const struct authw *w);

#endif
