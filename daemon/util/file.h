/*
 * Whole-file I/O shared by iotbridged and iotbridgectl: bounded reads of
 * small files (state, password, ACL) and the pieces of an atomic replace
 * (write everything, fsync, rename, fsync the directory).
 */
#ifndef IOTB_FILE_H
#define IOTB_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole regular file of at most max bytes, NUL-terminated for
 * convenience (not counted in *len). NULL with errno set on failure. */
uint8_t	*file_read(const char *path, size_t max, size_t *len);

/* Write all of p[0..len) to fd, retrying short writes and EINTR. 0 or -1
 * with errno set. */
int	 file_write_all(int fd, const void *p, size_t len);

/* fsync the directory dir, so that a rename in it is durable. 0 or -1. */
int	 file_fsync_dir(const char *dir);

/* dir "/" name in a new string, NULL when out of memory. */
char	*file_path(const char *dir, const char *name);

/* A pipe by which a worker thread wakes the event loop: both ends
 * close-on-exec, the read end non-blocking. 0, or -1 with errno set (no
 * descriptor left open). */
int	 file_wake_pipe(int fds[2]);

#endif
