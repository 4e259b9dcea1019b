/*
 * iotbridgectl's side of the control socket (see daemon/ops/control.h): which
 * socket to use, the connection, one request line, the answer read to the
 * end, and an exit status and message a person can act on when the daemon
 * cannot be reached.
 */
#include "daemon/ctl/ctl.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotb_build.h"
#include "config/cfg.h"

#define CTL_DEFAULT_CONFIG	IOTB_SYSCONFDIR "/iotbridge.yaml"
#define CTL_TIMEOUT_S		30		/* a reload rebinds, reloads TLS */
#define CTL_MAX_ANSWER		(1024 * 1024)

/* path into buf, or false when it does not fit */
static bool
copy_path(char *buf, size_t cap, const char *path)
{
	return (size_t)snprintf(buf, cap, "%s", path) < cap;
}

int
ctl_socket_path(const char *opt_socket, const char *opt_config, char *buf,
    size_t cap)
{
	const char *config = opt_config;
	struct cfg_diag diag = { 0 };
	struct cfg *cfg = NULL;
	bool ok;

	if (opt_socket != NULL) {
		if (copy_path(buf, cap, opt_socket))
			return 0;
		fprintf(stderr, "iotbridgectl: %s: socket path too long\n",
		    opt_socket);
		return -1;
	}
	if (config == NULL && access(CTL_DEFAULT_CONFIG, R_OK) == 0)
		config = CTL_DEFAULT_CONFIG;
	if (config != NULL && cfg_load(config, CFG_LOAD_DROPINS, &cfg, &diag) !=
	    CFG_OK) {
		/* the daemon will say what is wrong with it, if asked */
		fprintf(stderr, "iotbridgectl: %s is not a valid configuration "
		    "(see iotbridgectl check-config %s); using the default "
		    "control socket\n", config, config);
		cfg_diag_clear(&diag);
	}
	if (cfg == NULL && cfg_defaults(&cfg) != CFG_OK) {
		fprintf(stderr, "iotbridgectl: out of memory\n");
		return -1;
	}
	if (!(ok = copy_path(buf, cap, cfg->control.socket)))
		fprintf(stderr, "iotbridgectl: %s: socket path too long\n",
		    cfg->control.socket);
	cfg_free(cfg);
	return ok ? 0 : -1;
}

/* Connect, or say why not in words that point at the fix. */
static int
ctl_connect(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct timeval tv = { CTL_TIMEOUT_S, 0 };
	int fd, e;

	if (!copy_path(un.sun_path, sizeof(un.sun_path), path)) {
		fprintf(stderr, "iotbridgectl: %s: socket path too long\n", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "iotbridgectl: socket: %s\n", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0)
		return fd;
	e = errno;
	close(fd);
	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		fprintf(stderr, "iotbridgectl: cannot reach iotbridged at %s: "
		    "%s — is the service running? (systemctl status "
		    "iotbridge)\n", path, e == ENOENT ? "no such socket" :
		    "nothing listens there");
		break;
	case EACCES:
	case EPERM:
		fprintf(stderr, "iotbridgectl: cannot reach iotbridged at %s: "
		    "permission denied — run as root or as a member of group "
		    "iotbridgectl\n", path);
		break;
	default:
		fprintf(stderr, "iotbridgectl: cannot reach iotbridged at %s: "
		    "%s\n", path, strerror(e));
		break;
	}
	return -1;
}

static int
send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Send one request line to the daemon at path and read its answer to the
 * end. Returns a NUL-terminated answer the caller frees, or NULL after
 * printing why there is none.
 */
static char *
ctl_ask(const char *path, const char *request)
{
	char *answer = NULL, *grown;
	size_t len = 0, cap = 0;
	int fd, send_err = 0;

	if ((fd = ctl_connect(path)) == -1)
		return NULL;
	/* a daemon that turns us away may have said why before closing:
	 * read on after a failed send */
	if (send_all(fd, request, strlen(request)) == -1 ||
	    send_all(fd, "\n", 1) == -1)
		send_err = errno;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			if (cap >= CTL_MAX_ANSWER) {
				fprintf(stderr, "iotbridgectl: the answer of "
				    "iotbridged at %s is too long\n", path);
				goto fail;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if ((grown = realloc(answer, cap + 1)) == NULL) {
				fprintf(stderr, "iotbridgectl: out of memory\n");
				goto fail;
			}
			answer = grown;
		}
		if ((n = recv(fd, answer + len, cap - len, 0)) == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (len > 0 && errno == ECONNRESET)
			break;		/* what came before the reset is it */
		if (send_err != 0)
			fprintf(stderr, "iotbridgectl: sending to iotbridged at "
			    "%s: %s\n", path, strerror(send_err));
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			fprintf(stderr, "iotbridgectl: no answer from iotbridged "
			    "at %s within %ds\n", path, CTL_TIMEOUT_S);
		else
			fprintf(stderr, "iotbridgectl: reading from iotbridged "
			    "at %s: %s\n", path, strerror(errno));
		goto fail;
	}
	close(fd);
	if (len == 0 && send_err != 0) {
		fprintf(stderr, "iotbridgectl: sending to iotbridged at %s: "
		    "%s\n", path, strerror(send_err));
		free(answer);
		return NULL;
	}
	if (len == 0) {
		fprintf(stderr, "iotbridgectl: iotbridged at %s closed the "
		    "connection without an answer\n", path);
		free(answer);
		return NULL;
	}
	answer[len] = '\0';
	return answer;
fail:
	close(fd);
	free(answer);
	return NULL;
}

/* Print the answer: to stdout when it starts with ok_prefix (or always
 * with NULL), else to stderr as a failure. Returns the exit status. */
static int
ctl_print(const char *answer, const char *ok_prefix)
{
	bool ok = ok_prefix != NULL ?
	    strncmp(answer, ok_prefix, strlen(ok_prefix)) == 0 :
	    strncmp(answer, "error:", 6) != 0;

	fputs(answer, ok ? stdout : stderr);
	if (answer[strlen(answer) - 1] != '\n')
		fputc('\n', ok ? stdout : stderr);
	return ok ? 0 : 1;
}

int
ctl_status(const char *socket, int argc, char *argv[])
{
	bool json = false;
	char *answer;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = true;
	else if (argc != 1) {
		fprintf(stderr, "usage: iotbridgectl [-s SOCKET] [-c CONFIG] "
		    "status [--json]\n");
		return 2;
	}
	if ((answer = ctl_ask(socket, json ? "status json" : "status")) ==
	    NULL)
		return 1;
	rc = ctl_print(answer, NULL);
	free(answer);
	return rc;
}

int
ctl_reload(const char *socket, int argc, char *argv[])
{
	char *answer;
	int rc;

	if (argc != 1) {
		fprintf(stderr, "usage: iotbridgectl [-s SOCKET] [-c CONFIG] "
		    "reload\n");
		return 2;
	}
	if ((answer = ctl_ask(socket, "reload")) == NULL)
		return 1;
	rc = ctl_print(answer, "ok:");
	free(answer);
	return rc;
}
