/*
 * iotbridgectl's commands that live in their own files. Each takes the
 * arguments from the command name on (argv[0] is "passwd", "status") and
 * returns the process exit status: 0 done, 1 failed, 2 usage error.
 */
#ifndef IOTB_CTL_H
#define IOTB_CTL_H

#include <stddef.h>

/*
 * iotbridgectl passwd [-D] FILE USER: add, replace or (-D) delete USER's
 * entry in a password file (auth/passwd.h format), rewriting it atomically.
 */
int	ctl_passwd(int argc, char *argv[]);

/*
 * The control socket to talk to, into buf: opt_socket (-s) when given, else
 * control.socket of opt_config (-c; NULL: the installed configuration file
 * when it exists and is readable), else control.socket's default. A file that
 * does not load is noted on stderr and the default used. 0, or -1 when the
 * path does not fit (or out of memory), said on stderr.
 */
int	ctl_socket_path(const char *opt_socket, const char *opt_config,
	    char *buf, size_t cap);

/*
 * iotbridgectl status [--json] and iotbridgectl reload: one request to the
 * running daemon over the control socket at socket, its answer printed
 * (reload: to stderr, exit 1, unless the daemon said "ok:"). When the daemon
 * cannot be reached, one line says why and what to check; exit 1.
 */
int	ctl_status(const char *socket, int argc, char *argv[]);
int	ctl_reload(const char *socket, int argc, char *argv[]);

#endif
