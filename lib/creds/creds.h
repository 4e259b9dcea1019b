/*
 * AWS credentials for SigV4: an access key id, a secret access key and an
 * optional session token, read from the AWS shared credentials file
 * (~/.aws/credentials) or taken from values the daemon already has (the
 * environment, the static config). This module does no I/O: the daemon reads
 * the file and the environment and hands the bytes and strings in. Values are
 * validated, then copied into a struct creds of fixed-size buffers that the
 * caller owns and wipes with creds_clear(); nothing is allocated and no
 * pointer to the caller's bytes is kept. Error messages name keys and lines,
 * never a value.
 *
 * The file is read as botocore (1.29, the AWS CLI's library) reads it:
 * Python's configparser.RawConfigParser with its defaults, then
 * SharedCredentialProvider.
 *  - "[NAME]" starts section NAME: the text between the first '[' and the
 *    last ']' of the line, not trimmed and case-sensitive; anything after that
 *    ']' is ignored. The profile is the section of exactly that name ("default"
 *    is [default]; [profile NAME] is the ~/.aws/config form and does not
 *    match). A section may appear once. Keys under [DEFAULT] are fallbacks for
 *    every section; DEFAULT itself is no profile.
 *  - "key = value" or "key: value" (the first '=' or ':' splits the line);
 *    white space around key and value is dropped; keys are case-insensitive.
 *    Lines whose first non-blank character is '#' or ';' are comments; there
 *    are no comments after a value ("KEY # prod" is the value).
 *  - A line indented deeper than the key line before it continues that value;
 *    under a key whose value is empty, such lines must be "key = value"
 *    (botocore reads them as a nested block).
 *  - Line ends are "\n", "\r\n" or "\r"; the file is UTF-8 (botocore reads
 *    it in the locale's encoding) and may start with a byte order mark, which
 *    botocore refuses but Notepad writes. White space is what Python's
 *    str.isspace() says, U+00A0 and U+3000 included.
 *  - aws_access_key_id, aws_secret_access_key, aws_session_token and its
 *    older name aws_security_token are read; other keys are ignored. When
 *    both token keys are present aws_security_token wins, as in botocore.
 * botocore refuses the whole file when any line is malformed or when any
 * section or key repeats, and so does this parser, with three differences
 * (checked against botocore by tests/data/creds/gen.py and a randomized
 * comparison): repeats are looked for only where they would change the
 * result (the profile's section, and the four keys above within it and
 * within [DEFAULT]); a line starting with '[' that is no whole header is
 * malformed (botocore would take "[x=y" as key "[x"); and a bad nested value
 * under [DEFAULT] is refused even when every section sets that key itself
 * (botocore then never looks at it). Besides, the byte order mark.
 */
#ifndef IOTB_CREDS_H
#define IOTB_CREDS_H

#include <stddef.h>

#include "sigv4/sigv4.h"

/*
 * Bounds, in bytes without the NUL.
 * - Access key id: IAM documents 16..128 characters (AccessKey.AccessKeyId);
 *   AWS issues 20 (AKIA..., ASIA...). 128 is also what lib/sigv4 signs with
 *   (SIGV4_MAX_FIELD).
 * - Secret access key: AWS issues 40 characters and documents no maximum;
 *   128 leaves room and is lib/sigv4's bound for the HMAC key.
 * - Session token: STS says its size is not fixed and "typically less than
 *   4096 bytes"; tokens seen are 400..2000 bytes, more with session tags and
 *   policies. The token goes percent-encoded into the presigned URL of the
 *   WebSocket upgrade, where 4096 bytes become at most ~12 KB.
 */
#define CREDS_MAX_KEY_ID	128
#define CREDS_MAX_SECRET	128
#define CREDS_MAX_TOKEN		4096

#define CREDS_DEFAULT_PROFILE	"default"

enum creds_status {
	CREDS_OK = 0,
	CREDS_NO_PROFILE,	/* the file has no section for the profile */
	CREDS_INCOMPLETE,	/* access key id or secret missing or empty */
	CREDS_MALFORMED,	/* the file is not one botocore would read */
	CREDS_TOO_LONG,		/* a value is longer than its CREDS_MAX_* */
	CREDS_INVALID,		/* a value has a character no credential has */
};

/*
 * Credentials, NUL-terminated; session_token is "" for long-term keys. The
 * caller owns the struct (it is ~4.4 KB: fine on the stack) and wipes it with
 * creds_clear() as soon as the credentials have been used.
 */
struct creds {
	char	access_key_id[CREDS_MAX_KEY_ID + 1];
	char	secret_access_key[CREDS_MAX_SECRET + 1];
	char	session_token[CREDS_MAX_TOKEN + 1];
};

/*
 * Why a parse failed. line is 1-based (0 when the problem is not one line:
 * the profile is missing, or the values came from creds_from_values()); msg
 * is a short lowercase text that does not repeat the line number ("duplicate
 * aws_access_key_id (first on line 3)"). It may name a key, never a value.
 */
struct creds_error {
	size_t	line;
	char	msg[128];
};

/*
 * Read the credentials of profile (NULL means CREDS_DEFAULT_PROFILE) from a
 * whole shared credentials file in buf[0..len) (borrowed, not kept; need not
 * be NUL-terminated; NULL with len 0 is an empty file). The whole file is
 * parsed even when the profile comes first, as botocore does.
 *
 * Values must be: access key id 1..CREDS_MAX_KEY_ID of A-Z 0-9 (the
 * characters of every key id AWS issues, so a secret or token pasted in its
 * place is caught; no minimum length, as AWS's own SigV4 test suite uses the
 * 11-character AKIDEXAMPLE); secret 1..CREDS_MAX_SECRET and token
 * 1..CREDS_MAX_TOKEN of base64's A-Z a-z 0-9 + / =. An empty token is no
 * token. A value continued on an indented line is INVALID.
 *
 * On CREDS_OK *out holds the credentials. On any failure *out is zeroized
 * and err (if not NULL) says where and why; on success err->line is 0 and
 * err->msg "". Returns CREDS_OK, or the first of: CREDS_MALFORMED (over the
 * whole file), CREDS_NO_PROFILE, CREDS_INCOMPLETE, then CREDS_TOO_LONG or
 * CREDS_INVALID for the access key id, the secret, the token in that order.
 */
enum creds_status creds_parse_file(const void *buf, size_t len,
	    const char *profile, struct creds *out, struct creds_error *err);

/*
 * Take credentials from NUL-terminated strings (borrowed, not kept): the
 * environment's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN, or the static config. NULL or "" counts as missing, as
 * botocore's environment provider has it; token may be NULL for none. The
 * values are validated as in creds_parse_file() and not trimmed. On failure
 * *out is zeroized and err (if not NULL) says why, with line 0. Returns
 * CREDS_OK, CREDS_INCOMPLETE, CREDS_TOO_LONG or CREDS_INVALID.
 */
enum creds_status creds_from_values(const char *access_key_id,
	    const char *secret_access_key, const char *session_token,
	    struct creds *out, struct creds_error *err);

/* The fields of a struct creds, for creds_check_field(). */
enum creds_field {
	CREDS_FIELD_KEY_ID,
	CREDS_FIELD_SECRET,
	CREDS_FIELD_TOKEN,
};

/*
 * Check field f of c, put there by another reader (lib/creds/iotcreds.c
 * decodes JSON into it), as creds_from_values() checks its values:
 * NUL-terminated within its buffer, not empty, its alphabet. name is what a
 * message calls it (a key of that reader's format). c is not changed.
 * Returns CREDS_OK, CREDS_INCOMPLETE (empty), CREDS_TOO_LONG (no NUL in
 * the buffer) or CREDS_INVALID, with err (if not NULL) saying why, line 0.
 */
enum creds_status creds_check_field(const struct creds *c, enum creds_field f,
	    const char *name, struct creds_error *err);

/*
 * Point *sc into c for signing: session_token is NULL when c has none. sc is
 * valid while c is and until creds_clear(c).
 */
void	creds_sigv4(const struct creds *c, struct sigv4_creds *sc);

/*
 * Zeroize c with a write the compiler may not elide
 * (mbedtls_platform_zeroize). NULL is a no-op.
 */
void	creds_clear(struct creds *c);

/* Static English text for a status. */
const char *creds_strerror(enum creds_status st);

#endif
