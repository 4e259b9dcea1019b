/*
 * iotbridgectl passwd: the operator's side of the broker's password file.
 * It reads the file (refusing one the broker would refuse), asks for the
 * password twice with echo off (or takes one line from stdin when stdin is
 * not a terminal, for scripts), salts it from getrandom(2), lets lib/auth
 * build and splice the entry, and replaces the file atomically: temp file
 * with O_EXCL next to it, write, fsync, rename, fsync the directory. A new
 * file is created 0640 (the daemon's group reads it); an existing one keeps
 * its mode, owner and group. Password bytes are zeroized after use.
 */
#include "daemon/ctl/ctl.h"
#include "daemon/util/file.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "auth/passwd.h"

#define CTL_PW_MAX		1024		/* bytes of a password */
#define CTL_FILE_MAX		(16 * 1024 * 1024)
#define CTL_NEW_FILE_MODE	0640

/* The terminal's settings while echo is off, to restore on a signal. */
static struct termios	saved_tty;
static volatile sig_atomic_t tty_changed;

static void
ctl_restore_tty(int sig)
{
	if (tty_changed)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Fill buf with exactly len random bytes. */
static int
ctl_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One line from stdin into buf (without its newline); -1 with a message when
 * it is missing or longer than CTL_PW_MAX.
 */
static int
ctl_read_line(char *buf, size_t cap, size_t *len)
{
	size_t n;

	if (fgets(buf, (int)cap, stdin) == NULL) {
		fprintf(stderr, "iotbridgectl: no password given\n");
		return -1;
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(stdin)) {
		fprintf(stderr, "iotbridgectl: password longer than %d bytes\n",
		    CTL_PW_MAX);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	*len = n;
	return 0;
}

static int
ctl_prompt(const char *prompt, char *buf, size_t cap, size_t *len)
{
	struct termios t;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &saved_tty) == -1) {
		fprintf(stderr, "iotbridgectl: tcgetattr: %s\n", strerror(errno));
		return -1;
	}
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	tty_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == -1) {
		tty_changed = 0;
		fprintf(stderr, "iotbridgectl: tcsetattr: %s\n", strerror(errno));
		return -1;
	}
	rc = ctl_read_line(buf, cap, len);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	return rc;
}

/* The new password, asked twice on a terminal. */
static int
ctl_get_password(char *pw, size_t cap, size_t *len)
{
	char again[CTL_PW_MAX + 2];
	size_t alen = 0;
	int rc = -1;

	if (!isatty(STDIN_FILENO))
		return ctl_read_line(pw, cap, len);
	signal(SIGINT, ctl_restore_tty);
	signal(SIGTERM, ctl_restore_tty);
	signal(SIGHUP, ctl_restore_tty);
	if (ctl_prompt("Password: ", pw, cap, len) == -1 ||
	    ctl_prompt("Reenter password: ", again, sizeof(again), &alen) == -1)
		goto done;
	if (alen != *len || memcmp(pw, again, alen) != 0) {
		fprintf(stderr, "iotbridgectl: passwords do not match\n");
		goto done;
	}
	rc = 0;
done:
	mbedtls_platform_zeroize(again, sizeof(again));
	return rc;
}

/*
 * The whole file into a malloc'd buffer; *buf NULL and 0 returned when it
 * does not exist. st gets its metadata.
 */
static int
ctl_read_file(const char *path, char **buf, size_t *len, struct stat *st,
    bool *exists)
{
	char *b = NULL;
	size_t n = 0;
	ssize_t r;
	int fd;

	*buf = NULL;
	*exists = false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "iotbridgectl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		fprintf(stderr, "iotbridgectl: %s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > CTL_FILE_MAX) {
		fprintf(stderr, "iotbridgectl: %s: not a regular file or larger "
		    "than %d bytes\n", path, CTL_FILE_MAX);
		goto fail;
	}
	if ((b = malloc((size_t)st->st_size + 1)) == NULL) {
		fprintf(stderr, "iotbridgectl: out of memory\n");
		goto fail;
	}
	/* Read to EOF, in case the file grew since fstat. */
	while ((r = read(fd, b + n, (size_t)st->st_size + 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (n += (size_t)r) > (size_t)st->st_size) {
			fprintf(stderr, "iotbridgectl: %s: %s\n", path,
			    r < 0 ? strerror(errno) : "changed while reading");
			goto fail;
		}
	}
	close(fd);
	*buf = b;
	*len = n;
	*exists = true;
	return 0;
fail:
	free(b);
	close(fd);
	return -1;
}

/*
 * Replace path with buf[0..len) so that a crash leaves either the old or the
 * new file, never a mix: same-directory temp file, fsync, rename, fsync dir.
 */
static int
ctl_replace_file(const char *path, const char *buf, size_t len,
    const struct stat *old)
{
	char tmp[4096], dir[4096];
	const char *slash;
	uint32_t r;
	int fd = -1, tries;

	tmp[0] = '\0';
	for (tries = 0; fd == -1 && tries < 8; tries++) {
		if (ctl_random(&r, sizeof(r)) == -1)
			goto fail_errno;
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%08x", path,
		    (unsigned)r) >= sizeof(tmp)) {
			errno = ENAMETOOLONG;
			tmp[0] = '\0';
			goto fail_errno;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    CTL_NEW_FILE_MODE);
		if (fd == -1 && errno != EEXIST) {
			tmp[0] = '\0';
			goto fail_errno;
		}
	}
	if (fd == -1)
		goto fail_errno;
	/* open()'s mode went through the umask; set it exactly. */
	if (fchmod(fd, old ? (old->st_mode & 07777) : CTL_NEW_FILE_MODE) == -1)
		goto fail_errno;
	if (old != NULL && (old->st_uid != geteuid() ||
	    old->st_gid != getegid()) &&
	    fchown(fd, old->st_uid, old->st_gid) == -1)
		fprintf(stderr, "iotbridgectl: warning: %s: cannot keep owner "
		    "%lu:%lu: %s\n", path, (unsigned long)old->st_uid,
		    (unsigned long)old->st_gid, strerror(errno));
	if (file_write_all(fd, buf, len) == -1 || fsync(fd) == -1)
		goto fail_errno;
	if (close(fd) == -1) {
		fd = -1;
		goto fail_errno;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail_errno;
	tmp[0] = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    slash == path ? 1 : (int)(slash - path), path);
	if (file_fsync_dir(dir) == -1)
		goto fail_errno;
	return 0;
fail_errno:
	fprintf(stderr, "iotbridgectl: %s: %s\n", tmp[0] ? tmp : path,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	return -1;
}

static void
ctl_passwd_usage(void)
{
	fprintf(stderr, "usage: iotbridgectl passwd FILE USER\n"
	    "       iotbridgectl passwd -D FILE USER\n");
}

int
ctl_passwd(int argc, char *argv[])
{
	char pw[CTL_PW_MAX + 2], line[PASSWD_MAX_LINE + 1];
	uint8_t salt[PASSWD_SALT_LEN];
	struct passwd_db *db = NULL;
	struct passwd_err perr = { 0 };
	struct stat st;
	char *text = NULL, *out = NULL;
	size_t textlen = 0, outlen = 0, pwlen = 0, linelen = 0;
	const char *path, *user;
	bool del = false, exists, found;
	enum passwd_status ps;
	int rc = 1;

	if (argc == 4 && strcmp(argv[1], "-D") == 0) {
		del = true;
		argc--;
		argv++;
	}
	if (argc != 3 || argv[1][0] == '-') {
		ctl_passwd_usage();
		return 2;
	}
	path = argv[1];
	user = argv[2];
	if (passwd_user_check(user, strlen(user)) != PASSWD_OK) {
		fprintf(stderr, "iotbridgectl: invalid user name (UTF-8, no ':', "
		    "not starting with '#', no surrounding blanks, at most %d "
		    "bytes)\n", PASSWD_MAX_USER);
		return 1;
	}
	if (ctl_read_file(path, &text, &textlen, &st, &exists) == -1)
		goto done;
	/* Do not build on a file the broker would refuse to load. */
	if (exists) {
		if ((ps = passwd_db_parse(text, textlen, &db, &perr)) !=
		    PASSWD_OK) {
			fprintf(stderr, "iotbridgectl: %s: %s\n", path,
			    ps == PASSWD_SYNTAX ? perr.msg :
			    passwd_strerror(ps));
			goto done;
		}
		passwd_db_free(db);
	}
	if (del && !exists) {
		fprintf(stderr, "iotbridgectl: %s: %s\n", path, strerror(ENOENT));
		goto done;
	}
	if (!del) {
		if (ctl_get_password(pw, sizeof(pw), &pwlen) == -1)
			goto done;
		if (ctl_random(salt, sizeof(salt)) == -1) {
			fprintf(stderr, "iotbridgectl: getrandom: %s\n",
			    strerror(errno));
			goto done;
		}
		ps = passwd_line_build(user, strlen(user), pw, pwlen, salt,
		    sizeof(salt), PASSWD_DEFAULT_ITERATIONS, line, sizeof(line),
		    &linelen);
		if (ps != PASSWD_OK) {
			fprintf(stderr, "iotbridgectl: %s\n",
			    passwd_strerror(ps));
			goto done;
		}
	}
	ps = passwd_file_update(text ? text : "", textlen, user, strlen(user),
	    del ? NULL : line, linelen, &out, &outlen, &found);
	if (ps != PASSWD_OK) {
		fprintf(stderr, "iotbridgectl: %s\n", passwd_strerror(ps));
		goto done;
	}
	if (del && !found) {
		fprintf(stderr, "iotbridgectl: %s: no user %s\n", path, user);
		goto done;
	}
	if (ctl_replace_file(path, out, outlen, exists ? &st : NULL) == -1)
		goto done;
	printf("%s: %s user %s\n", path,
	    del ? "deleted" : found ? "updated" : "added", user);
	rc = 0;
done:
	mbedtls_platform_zeroize(pw, sizeof(pw));
	mbedtls_platform_zeroize(line, sizeof(line));
	if (text != NULL)
		mbedtls_platform_zeroize(text, textlen);
	if (out != NULL)
		mbedtls_platform_zeroize(out, outlen);
	free(text);
	free(out);
	return rc;
}
