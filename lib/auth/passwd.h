/*
 * The broker's password file, in the format of mosquitto_passwd (mosquitto
 * 2.0) so that operators can keep the files they already have. One entry a
 * line:
 *
 *	user:$7$ITERATIONS$BASE64(salt)$BASE64(PBKDF2-HMAC-SHA512(password, salt))
 *	user:$6$BASE64(salt)$BASE64(SHA-512(password || salt))     (read only)
 *
 * with a 64-byte derived key; mosquitto_passwd writes 12-byte salts. Lines
 * starting with '#' and blank lines are ignored; blanks around the user name
 * are trimmed, as mosquitto does. This module parses a whole file from a
 * caller's buffer (it does no I/O), verifies passwords against it and builds
 * the line of a new entry from a salt the caller supplies (it has no RNG).
 * Password-derived bytes are zeroized before their memory is released.
 */
#ifndef IOTB_PASSWD_H
#define IOTB_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWD_SALT_LEN		12	/* salt of new entries, as mosquitto_passwd */
#define PASSWD_SALT_MIN		8	/* shorter salts in a file are refused */
#define PASSWD_SALT_MAX		64
#define PASSWD_HASH_LEN		64	/* SHA-512 output */
#define PASSWD_MAX_USER		1024	/* bytes of a user name */
#define PASSWD_MAX_LINE		2048	/* bytes of a line, without its newline */
/*
 * PBKDF2 costs one HMAC-SHA512 per iteration at every login, on the broker's
 * only thread. 10000 iterations take 16 ms with mbedTLS 2.28 on an x86-64
 * server core and, by SHA-512 throughput, an estimated 0.1 s on a Raspberry
 * Pi 3/4 core (more on 32-bit armhf): tolerable for devices that connect
 * once and stay, and 100x the work per guess of mosquitto_passwd's 101 for
 * whoever copies the file. A file may ask for more, up to
 * PASSWD_MAX_ITERATIONS, which bounds what a hostile or mistyped file can do
 * (2^32 iterations would take hours per CONNECT; the cap, 16 s on x86).
 */
#define PASSWD_DEFAULT_ITERATIONS	10000
#define PASSWD_MAX_ITERATIONS		10000000

enum passwd_status {
	PASSWD_OK = 0,
	PASSWD_NOMEM,		/* out of memory */
	PASSWD_SYNTAX,		/* a line of the file is malformed (see passwd_err) */
	PASSWD_BAD_USER,	/* a user name that cannot be written to the file */
	PASSWD_INVALID,		/* salt length or iteration count out of range */
	PASSWD_NO_SPACE,	/* the output buffer is too small */
	PASSWD_NO_USER,		/* verify: no entry for this user */
	PASSWD_MISMATCH,	/* verify: wrong password */
	PASSWD_CRYPTO,		/* mbedTLS failed (out of memory in its MD context) */
};

/* Where a file is malformed: 1-based line number and a message. */
struct passwd_err {
	unsigned	line;		/* 0 when the error is not about one line */
	char		msg[128];	/* "line 3: bad salt" */
};

struct passwd_db;

/*
 * Parse a whole password file buf[0..len) into a new database. The buffer is
 * borrowed and not kept. Each entry must have a valid user name (see
 * passwd_user_check), a supported hash, a salt of PASSWD_SALT_MIN..
 * PASSWD_SALT_MAX bytes, a PASSWD_HASH_LEN-byte hash and, for $7$, an
 * iteration count in 1..PASSWD_MAX_ITERATIONS; a user may appear once. The
 * last line needs no newline; "\r\n" line ends are accepted.
 *
 * On PASSWD_OK *dbp owns a database to release with passwd_db_free(). On
 * failure *dbp is NULL and, for PASSWD_SYNTAX, err (if not NULL) says where.
 * Returns PASSWD_OK, PASSWD_SYNTAX or PASSWD_NOMEM.
 */
enum passwd_status passwd_db_parse(const char *buf, size_t len,
	    struct passwd_db **dbp, struct passwd_err *err);

/*
 * Same, refusing iteration counts above max_iterations (which is itself
 * capped at PASSWD_MAX_ITERATIONS): for fuzzing, and for a gateway that wants
 * a tighter bound on the cost of a login.
 */
enum passwd_status passwd_db_parse_max(const char *buf, size_t len,
	    uint32_t max_iterations, struct passwd_db **dbp,
	    struct passwd_err *err);

/* Release a database and zeroize its hashes. NULL is a no-op. */
void	passwd_db_free(struct passwd_db *db);

/* Number of users in the database. */
size_t	passwd_db_count(const struct passwd_db *db);

/*
 * Check user/password, both borrowed (user, pw) views; the password may hold
 * any bytes. The derived hash is compared in constant time. An unknown user
 * costs a derivation too (with the database's largest iteration count), so
 * the time taken does not tell whether a name exists. (PBKDF2's HMAC pads
 * its key with zeros: "pw" and "pw\0" are the same password, as in mosquitto.)
 * Returns PASSWD_OK (accepted), PASSWD_MISMATCH, PASSWD_NO_USER or
 * PASSWD_CRYPTO. Anything but PASSWD_OK means refuse the login.
 */
enum passwd_status passwd_db_verify(const struct passwd_db *db,
	    const char *user, size_t ulen, const void *pw, size_t pwlen);

/*
 * Can this name be written to a password file and read back unchanged?
 * 1..PASSWD_MAX_USER bytes of UTF-8 without U+0000, ':', '\r' or '\n', not
 * starting with '#' (a comment) and without leading or trailing blanks
 * (mosquitto trims them). Returns PASSWD_OK or PASSWD_BAD_USER.
 */
enum passwd_status passwd_user_check(const char *user, size_t ulen);

/*
 * Build the $7$ line of a new entry into out[0..cap), NUL-terminated, without
 * a newline; *outlen (if not NULL) gets its length. salt[0..saltlen) comes
 * from the caller's RNG (PASSWD_SALT_LEN bytes, as mosquitto_passwd);
 * iterations is normally PASSWD_DEFAULT_ITERATIONS. Nothing is kept; the
 * derived key is zeroized. PASSWD_MAX_LINE + 1 bytes of out are always enough.
 * Returns PASSWD_OK, PASSWD_BAD_USER, PASSWD_INVALID (salt length outside
 * PASSWD_SALT_MIN..PASSWD_SALT_MAX or iterations outside
 * 1..PASSWD_MAX_ITERATIONS), PASSWD_NO_SPACE or PASSWD_CRYPTO.
 */
enum passwd_status passwd_line_build(const char *user, size_t ulen,
	    const void *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
	    uint32_t iterations, char *out, size_t cap, size_t *outlen);

/*
 * Edit a password file's text: copy buf[0..len) with the entry of `user`
 * replaced by line[0..linelen) (a line from passwd_line_build, without
 * newline), or removed when line is NULL. A new user's line is appended.
 * Comments, blank lines and other entries are kept as they are; every line
 * of the result ends with '\n' ("\r\n" becomes "\n"). *found (if not NULL) tells whether the user
 * had an entry. On PASSWD_OK *out is a new malloc'd buffer of *outlen bytes
 * (plus a NUL) owned by the caller, who should zeroize it before free since
 * it holds hashes. Returns PASSWD_OK, PASSWD_BAD_USER or PASSWD_NOMEM.
 */
enum passwd_status passwd_file_update(const char *buf, size_t len,
	    const char *user, size_t ulen, const char *line, size_t linelen,
	    char **out, size_t *outlen, bool *found);

/* Static English text for a status. */
const char *passwd_strerror(enum passwd_status st);

#endif
