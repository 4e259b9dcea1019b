/*
 * The module's I/O: the main file, then the drop-in directory next to it.
 * The directory is listed and every drop-in stat(2)ed before any is read, so
 * that the limits (how many, how large together, regular files only) refuse
 * it as a whole, up front, like any other input that is too big. Then each
 * file is read in turn into one buffer, wiped after each since a file may
 * hold secrets, and handed to the loader (cfg_load.c) in merge order.
 *
 * The main file may be anything open(2) can read (a pipe from <(...) too);
 * a drop-in must be a regular file, or a symbolic link to one, so that a
 * FIFO or a device left in conf.d cannot hang or surprise a start.
 */
#include "config/cfg.h"

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#include "config/cfg_int.h"

#define NOT_REGULAR \
	"not a regular file (expected a file, or a symbolic link to one)"

struct dropins {
	char	*paths[CFG_MAX_DROPINS];	/* "DIR/NAME", by NAME */
	size_t	 n;
};

static void
dropins_clear(struct dropins *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->paths[i]);
	d->n = 0;
}

/* Read fd into buf, which holds CFG_MAX_FILE + 1 bytes: one more than
 * allowed tells a file that is too large. 0, or an errno. */
static int
read_all(int fd, unsigned char *buf, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len <= CFG_MAX_FILE &&
	    (n = read(fd, buf + *len, CFG_MAX_FILE + 1 - *len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno;
		*len += (size_t)n;
	}
	return 0;
}

static enum cfg_status
read_main(const char *path, unsigned char *buf, size_t *len,
    struct cfg_diag *diag)
{
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return cfg_diag_add(diag, "%s: cannot open (%s)", path,
		    strerror(errno)) ? CFG_IO : CFG_NOMEM;
	e = read_all(fd, buf, len);
	close(fd);
	if (e != 0)
		return cfg_diag_add(diag, "%s: cannot read (%s)", path,
		    strerror(e)) ? CFG_IO : CFG_NOMEM;
	return CFG_OK;
}

/* "x.yaml", but not ".x.yaml", ".#x.yaml" (hidden, editor locks) nor
 * "x.yaml~", "x.yaml.dpkg-old" (backups), which do not end in .yaml. */
static bool
is_dropin(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 &&
	    strcmp(name + len - 5, ".yaml") == 0;
}

static bool
has_control(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return true;
	return false;
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's drop-ins, unsorted; *found counts them all, also past
 * CFG_MAX_DROPINS. A name that could forge a message line is refused. */
static enum cfg_status
dropins_read_dir(const char *dir, struct dropins *d, size_t *found,
    struct cfg_diag *diag)
{
	enum cfg_status st = CFG_OK;
	struct dirent *de;
	char q[256];
	DIR *dp;

	*found = 0;
	if ((dp = opendir(dir)) == NULL)
		return errno == ENOENT ? CFG_OK : cfg_diag_add(diag,
		    "%s: cannot open (%s)", dir, strerror(errno)) ? CFG_IO :
		    CFG_NOMEM;
	for (errno = 0; (de = readdir(dp)) != NULL; errno = 0) {
		size_t dlen = strlen(dir), nlen = strlen(de->d_name);

		if (!is_dropin(de->d_name) || (*found)++ >= CFG_MAX_DROPINS)
			continue;
		if (has_control(de->d_name)) {
			cfg_quote(de->d_name, nlen, q, sizeof(q));
			if (!cfg_diag_add(diag, "%s: file name %s has a "
			    "control character (expected a printable name)",
			    dir, q))
				st = CFG_NOMEM;
			else if (st == CFG_OK)
				st = CFG_IO;
			continue;
		}
		if ((d->paths[d->n] = malloc(dlen + nlen + 2)) == NULL) {
			st = CFG_NOMEM;
			break;
		}
		memcpy(d->paths[d->n], dir, dlen);
		d->paths[d->n][dlen] = '/';
		memcpy(d->paths[d->n] + dlen + 1, de->d_name, nlen + 1);
		d->n++;
	}
	if (errno != 0 && st == CFG_OK)
		st = cfg_diag_add(diag, "%s: cannot read (%s)", dir,
		    strerror(errno)) ? CFG_IO : CFG_NOMEM;
	closedir(dp);
	return st;
}

/*
 * List and stat the drop-ins of dir, in byte order of their names. Every
 * problem found is reported; any one of them refuses the load before a
 * drop-in is read.
 */
static enum cfg_status
dropins_list(const char *dir, size_t main_len, struct dropins *d,
    struct cfg_diag *diag)
{
	enum cfg_status st;
	struct stat sb;
	size_t found, total = main_len;
	bool bad = false;

	if ((st = dropins_read_dir(dir, d, &found, diag)) != CFG_OK)
		return st;
	if (found > CFG_MAX_DROPINS)
		return cfg_diag_add(diag, "%s: %zu drop-in files (expected at "
		    "most %d)", dir, found, CFG_MAX_DROPINS) ? CFG_IO :
		    CFG_NOMEM;
	if (d->n > 0)
		qsort(d->paths, d->n, sizeof(d->paths[0]), path_cmp);
	for (size_t i = 0; i < d->n; i++) {
		bool said;

		if (stat(d->paths[i], &sb) == -1) {
			said = cfg_diag_add(diag, "%s: cannot open (%s)",
			    d->paths[i], strerror(errno));
		} else if (!S_ISREG(sb.st_mode)) {
			said = cfg_diag_add(diag, "%s: " NOT_REGULAR,
			    d->paths[i]);
		} else {
			/* Capped: the sum cannot wrap. */
			total += (size_t)sb.st_size < CFG_MAX_TOTAL ?
			    (size_t)sb.st_size : CFG_MAX_TOTAL;
			continue;
		}
		if (!said)
			return CFG_NOMEM;
		bad = true;
	}
	if (bad)
		return CFG_IO;
	if (total > CFG_MAX_TOTAL)
		return cfg_diag_add(diag, "%s: %zu drop-in files, with the "
		    "main file more than 4MiB (expected at most 4MiB "
		    "together)", dir, d->n) ? CFG_IO : CFG_NOMEM;
	return CFG_OK;
}

/* Read one drop-in into buf; false, the loader told why, when it cannot. */
static bool
read_dropin(struct cfg_loader *ld, const char *path, unsigned char *buf,
    size_t *len)
{
	struct stat sb;
	int fd, e;

	*len = 0;
	/* O_NONBLOCK: a FIFO put in its place since the listing must not
	 * hang the start; fstat() then refuses it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) ==
	    -1) {
		cfg_loader_fail(ld, path, "cannot open (%s)", strerror(errno));
		return false;
	}
	if (fstat(fd, &sb) == -1)
		e = errno;
	else if (!S_ISREG(sb.st_mode))
		e = -1;
	else
		e = read_all(fd, buf, len);
	close(fd);
	if (e == -1)
		cfg_loader_fail(ld, path, NOT_REGULAR);
	else if (e != 0)
		cfg_loader_fail(ld, path, "cannot read (%s)", strerror(e));
	return e == 0;
}

enum cfg_status
cfg_load(const char *path, unsigned flags, struct cfg **out,
    struct cfg_diag *diag)
{
	struct dropins d = { .n = 0 };
	struct cfg_loader *ld;
	unsigned char *buf;
	enum cfg_status st;
	char dir[4096];
	size_t len = 0;
	bool ok;

	*out = NULL;
	if ((flags & CFG_LOAD_DROPINS) &&
	    !cfg_dropin_dir(path, dir, sizeof(dir)))
		return cfg_diag_add(diag, "%s: cannot open (%s)", path,
		    strerror(ENAMETOOLONG)) ? CFG_IO : CFG_NOMEM;
	if ((buf = malloc(CFG_MAX_FILE + 1)) == NULL)
		return CFG_NOMEM;
	if ((st = read_main(path, buf, &len, diag)) != CFG_OK ||
	    ((flags & CFG_LOAD_DROPINS) &&
	    (st = dropins_list(dir, len, &d, diag)) != CFG_OK))
		goto done;
	if ((ld = cfg_loader_new(1 + d.n, flags)) == NULL) {
		st = CFG_NOMEM;
		goto done;
	}
	ok = cfg_loader_add(ld, path, buf, len);
	for (size_t i = 0; ok && i < d.n; i++) {
		mbedtls_platform_zeroize(buf, len);
		if (read_dropin(ld, d.paths[i], buf, &len))
			ok = cfg_loader_add(ld, d.paths[i], buf, len);
	}
	st = cfg_loader_finish(ld, out, diag);

done:
	mbedtls_platform_zeroize(buf, len);
	free(buf);
	dropins_clear(&d);
	return st;
}

enum cfg_status
cfg_load_file(const char *path, struct cfg **out, struct cfg_diag *diag)
{
	return cfg_load(path, 0, out, diag);
}

bool
cfg_dropin_dir(const char *path, char *buf, size_t cap)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (slash == NULL)
		n = snprintf(buf, cap, "%s", CFG_DROPIN_DIR);
	else
		n = snprintf(buf, cap, "%.*s%s", (int)(slash - path + 1), path,
		    CFG_DROPIN_DIR);
	return n >= 0 && (size_t)n < cap;
}
