/*
 * The password checker (see authw.h): one worker thread taking jobs from a
 * list, handing verdicts back to the event loop through a pipe. The worker
 * owns nothing but the job it runs: the job carries copies of the user name
 * and password and a reference to the database, so a reload that replaces
 * the listener's database, or a client that disconnects, never pulls
 * anything from under it. Jobs are freed on the loop only.
 */
#include "daemon/broker/authw.h"

#include <sys/queue.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <mbedtls/platform_util.h>

#include "auth/passwd.h"
#include "daemon/util/file.h"
#include "daemon/util/log.h"

struct authw_db {
	atomic_uint		 refs;
	struct passwd_db	*db;
};

struct authw_job {
	TAILQ_ENTRY(authw_job)	 entry;
	struct authw		*w;
	struct authw_db		*db;
	authw_done_fn		*fn;
	void			*arg;
	bool			 cancelled;	/* under the worker's lock */
	bool			 ok;
	size_t			 ulen, pwlen;
	uint8_t			*pw;		/* after the user name */
	char			 user[];
};
TAILQ_HEAD(authw_jobs, authw_job);

struct authw {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct authw_jobs	 todo;		/* under mu */
	struct authw_jobs	 done;		/* under mu */
	bool			 stop;		/* under mu */
	pthread_t		 th;
	bool			 started;
	size_t			 pending;	/* the loop's count */
	size_t			 max;
	int			 pipe[2];
	struct event		*ev;
};

struct authw_db *
authw_db_new(struct passwd_db *db)
{
	struct authw_db *d;

	if ((d = malloc(sizeof(*d))) == NULL) {
		passwd_db_free(db);
		return NULL;
	}
	atomic_init(&d->refs, 1);
	d->db = db;
	return d;
}

void
authw_db_unref(struct authw_db *d)
{
	if (d != NULL && atomic_fetch_sub(&d->refs, 1) == 1) {
		passwd_db_free(d->db);	/* zeroizes the hashes */
		free(d);
	}
}

const struct passwd_db *
authw_db_get(const struct authw_db *d)
{
	return d->db;
}

static void
job_free(struct authw_job *job)
{
	mbedtls_platform_zeroize(job->pw, job->pwlen);
	authw_db_unref(job->db);
	free(job);
}

static void *
worker(void *arg)
{
	struct authw *w = arg;
	struct authw_job *job;
	bool skip, wake;
	char one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && TAILQ_EMPTY(&w->todo))
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		job = TAILQ_FIRST(&w->todo);
		TAILQ_REMOVE(&w->todo, job, entry);
		skip = job->cancelled;	/* its client left while it waited */
		pthread_mutex_unlock(&w->mu);

		if (!skip)
			job->ok = passwd_db_verify(job->db->db, job->user,
			    job->ulen, job->pw, job->pwlen) == PASSWD_OK;
		mbedtls_platform_zeroize(job->pw, job->pwlen);

		pthread_mutex_lock(&w->mu);
		wake = TAILQ_EMPTY(&w->done);
		TAILQ_INSERT_TAIL(&w->done, job, entry);
		if (wake) {
			pthread_mutex_unlock(&w->mu);
			while (write(w->pipe[1], &one, 1) == -1 &&
			    errno == EINTR)
				;
			pthread_mutex_lock(&w->mu);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Verdicts, on the loop, in the order they were asked for. */
static void
on_done(evutil_socket_t fd, short ev, void *arg)
{
	struct authw *w = arg;
	struct authw_jobs done = TAILQ_HEAD_INITIALIZER(done);
	struct authw_job *job;
	char buf[64];

	while (read(w->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&w->mu);
	TAILQ_CONCAT(&done, &w->done, entry);
	pthread_mutex_unlock(&w->mu);
	while ((job = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, job, entry);
		w->pending--;
		/* a callback may cancel a job further down this list: the flag
		 * is read just before its own callback */
		if (!job->cancelled)
			job->fn(job->arg, job->ok);
		job_free(job);
	}
}

struct authw *
authw_new(struct event_base *base, size_t max_pending)
{
	struct authw *w;
	int e;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	TAILQ_INIT(&w->todo);
	TAILQ_INIT(&w->done);
	w->max = max_pending;
	w->pipe[0] = w->pipe[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (file_wake_pipe(w->pipe) == -1 ||
	    (w->ev = event_new(base, w->pipe[0], EV_READ | EV_PERSIST,
	    on_done, w)) == NULL || event_add(w->ev, NULL) == -1) {
		log_warn("password checker");
		goto fail;
	}
	if ((e = pthread_create(&w->th, NULL, worker, w)) != 0) {
		errno = e;
		log_warn("password checker: thread");
		goto fail;
	}
	w->started = true;
	return w;
fail:
	authw_free(w);
	return NULL;
}

void
authw_free(struct authw *w)
{
	struct authw_job *job;

	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		(void)pthread_join(w->th, NULL);
	}
	TAILQ_CONCAT(&w->todo, &w->done, entry);
	while ((job = TAILQ_FIRST(&w->todo)) != NULL) {
		TAILQ_REMOVE(&w->todo, job, entry);
		job_free(job);
	}
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->pipe[0] != -1)
		close(w->pipe[0]);
	if (w->pipe[1] != -1)
		close(w->pipe[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

struct authw_job *
authw_submit(struct authw *w, struct authw_db *d, const char *user,
    size_t ulen, const void *pw, size_t pwlen, authw_done_fn *fn, void *arg)
{
	struct authw_job *job;

	if (w->pending >= w->max || ulen > PASSWD_MAX_USER ||
	    pwlen > UINT16_MAX)
		return NULL;
	if ((job = calloc(1, sizeof(*job) + ulen + 1 + pwlen)) == NULL)
		return NULL;
	memcpy(job->user, user, ulen);
	job->ulen = ulen;
	job->pw = (uint8_t *)job->user + ulen + 1;
	if (pwlen > 0)
		memcpy(job->pw, pw, pwlen);
	job->pwlen = pwlen;
	job->w = w;
	job->fn = fn;
	job->arg = arg;
	atomic_fetch_add(&d->refs, 1);
	job->db = d;
	pthread_mutex_lock(&w->mu);
	TAILQ_INSERT_TAIL(&w->todo, job, entry);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	w->pending++;
	return job;
}

void
authw_cancel(struct authw_job *job)
{
	pthread_mutex_lock(&job->w->mu);
	job->cancelled = true;
	pthread_mutex_unlock(&job->w->mu);
}

size_t
authw_pending(const struct authw *w)
{
	return w->pending;
}
