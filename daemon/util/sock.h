/*
 * Listening sockets, for the broker's listeners (listener.c) and the small
 * request servers (oneshot.c): a socket bound to a configured address, a
 * unix socket that never takes a path from a live server (a socket left by
 * an earlier run is replaced, one that answers is not, nor any other kind of
 * file), its removal only while it is still the one we made, and accepting
 * that pauses for a second when descriptors run out instead of spinning on a
 * listening socket that stays readable.
 */
#ifndef IOTB_SOCK_H
#define IOTB_SOCK_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg_addr;
struct sock_acceptor;

/* The unix socket file sock_listen() made, to remove it only if it is
 * still that one. */
struct sock_file {
	dev_t	dev;
	ino_t	ino;
	bool	made;
};

/*
 * A non-blocking, close-on-exec socket listening on a (backlog
 * connections). TCP: SO_REUSEADDR, and IPv6 only on an IPv6 address, so
 * that [::]:1883 and 0.0.0.0:1883 are two listeners. AF_UNIX: a stale socket
 * at the path is replaced; unix_mode (0: the umask's) is the new socket's
 * mode from its creation on; *made records the file. Returns the descriptor,
 * or -1 with errno: EADDRINUSE when a live server holds the unix path,
 * EEXIST when a file that is no socket is there, else bind's or listen's.
 */
int		 sock_listen(const struct cfg_addr *a, unsigned unix_mode,
		    int backlog, struct sock_file *made);

/* Why sock_listen(a) failed with err, in words for a log line: for a unix
 * path, EADDRINUSE and EEXIST say what is there. Static. */
const char	*sock_strerror(const struct cfg_addr *a, int err);

/* Remove the unix socket of a that sock_listen() made, unless it is gone
 * or another file took its place since. */
void		 sock_unlink(const struct cfg_addr *a, const struct sock_file *made);

/* "127.0.0.1:1883", "[::1]:1883", "unix:/run/x.sock" into buf. */
void		 sock_format(const struct cfg_addr *a, char *buf, size_t cap);

/* The same address (AF_UNSPEC equals AF_UNSPEC: listening nowhere)? */
bool		 sock_addr_equal(const struct cfg_addr *a,
		    const struct cfg_addr *b);

/* A new connection: fd is the callee's. */
typedef void	 sock_accept_fn(void *arg, int fd, const struct sockaddr *sa,
		    int salen);

/*
 * Accept on the listening socket fd (taken in all cases: closed on
 * failure) and hand each connection to fn. Out of descriptors or memory,
 * accepting pauses for a second, logged with name. NULL when out of memory.
 */
struct sock_acceptor *sock_acceptor_new(struct event_base *base, int fd,
		    sock_accept_fn *fn, void *arg, const char *name);

/* Stop accepting and close the socket. NULL is a no-op. */
void		 sock_acceptor_free(struct sock_acceptor *acc);

#endif
