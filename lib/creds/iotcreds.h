/*
 * The AWS IoT credentials provider: a gateway that holds an X.509
 * certificate registered with AWS IoT trades it, over mutual TLS, for
 * temporary AWS credentials of the IAM role a role alias names, and signs
 * its SigV4 WebSocket upgrades with those. This module is the pure part of
 * that exchange: it builds the request, reads the answer into a struct
 * creds (lib/creds/creds.h) and the expiry, and picks when to ask again.
 * The daemon does the TLS (through the proxy, when there is one) and hands
 * the bytes in; nothing here does I/O, allocates, or keeps a pointer.
 *
 * The request (AWS IoT developer guide, "Authorizing direct calls to AWS
 * services using AWS IoT Core credential provider"):
 *
 *   GET /role-aliases/ALIAS/credentials HTTP/1.1
 *   Host: ENDPOINT                 (the account's credentials endpoint)
 *   x-amzn-iot-thingname: THING
 *
 * The answer to it is 200 with the body
 *
 *   {"credentials":{"accessKeyId":"ASIA...","secretAccessKey":"...",
 *    "sessionToken":"...","expiration":"2026-12-08T12:34:56Z"}}
 *
 * and anything else is a refusal (403 for a certificate or thing the role
 * alias does not allow, 404 for an unknown alias, ...) with a JSON body
 * {"message": "..."} that says why. The answer's secret and token are
 * copied only into the caller's struct creds; the caller wipes the bytes it
 * received, and the struct with creds_clear() once done.
 */
#ifndef IOTB_IOTCREDS_H
#define IOTB_IOTCREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "creds/creds.h"

#define IOTCREDS_MAX_HOST	253	/* a DNS name */
#define IOTCREDS_MAX_NAME	128	/* a role alias, a thing name */
/*
 * An answer's body. A 200 is about 1.5 KB with a 1 KB session token;
 * CREDS_MAX_TOKEN bytes of token and the rest stay under 5 KB.
 */
#define IOTCREDS_MAX_BODY	16384
/* The refresh is never later than this before the expiry (see below). */
#define IOTCREDS_REFRESH_MARGIN_MS	(60 * 1000)

enum iotcreds_status {
	IOTCREDS_OK = 0,
	IOTCREDS_NEED_MORE,	/* the answer has not all arrived */
	IOTCREDS_BAD_NAME,	/* host, alias, thing name AWS has not */
	IOTCREDS_NO_SPACE,	/* the request does not fit the output */
	IOTCREDS_HTTP,		/* no HTTP/1.1 answer this module reads */
	IOTCREDS_TOO_BIG,	/* head or body over its maximum */
	IOTCREDS_REFUSED,	/* not 200: the provider said no */
	IOTCREDS_MALFORMED,	/* 200, but not the provider's body */
	IOTCREDS_INVALID,	/* a credential fails lib/creds' checks */
};

/* What to ask for. The strings are borrowed and not kept. */
struct iotcreds_request {
	const char	*host;		/* the credentials endpoint */
	uint16_t	 port;		/* 443 is left out of Host */
	const char	*role_alias;
	const char	*thing_name;
};

/*
 * Why something failed: http is the answer's status code (0 before one was
 * read), msg a short printable-ASCII text that names keys and may quote the
 * provider's own "message" (made printable), never a credential.
 */
struct iotcreds_error {
	int	http;
	char	msg[192];
};

/*
 * Check q's names as AWS defines them: host a DNS name (letters, digits,
 * hyphens; labels of 1..63, at most IOTCREDS_MAX_HOST in all), role alias
 * 1..IOTCREDS_MAX_NAME of A-Z a-z 0-9 _ = , @ - (CreateRoleAlias), thing
 * name 1..IOTCREDS_MAX_NAME of A-Z a-z 0-9 : _ - (CreateThing), port not 0.
 * So none needs escaping in the request. IOTCREDS_OK or IOTCREDS_BAD_NAME,
 * with err (if not NULL) naming what is wrong.
 */
enum iotcreds_status iotcreds_request_check(const struct iotcreds_request *q,
	    struct iotcreds_error *err);

/* The three checks of iotcreds_request_check(), one name each, for the
 * configuration's messages. s may be NULL (false). */
bool	iotcreds_host_ok(const char *s);
bool	iotcreds_role_alias_ok(const char *s);
bool	iotcreds_thing_name_ok(const char *s);

/*
 * The request for q into out[0..cap) (not NUL-terminated); *len gets its
 * size, also when it did not fit (out may then be NULL with cap 0: the first
 * of the two steps). Returns IOTCREDS_OK, IOTCREDS_BAD_NAME (as
 * iotcreds_request_check(); nothing written) or IOTCREDS_NO_SPACE.
 */
enum iotcreds_status iotcreds_request_encode(const struct iotcreds_request *q,
	    void *out, size_t cap, size_t *len, struct iotcreds_error *err);

/*
 * Read the provider's answer from in[0..len) (borrowed, not kept), which
 * starts with the status line. eof: the connection has ended, so in is all
 * there will be. The head is read with lib/ws/http.c; the body is
 * Content-Length bytes, or without a Content-Length what came before the
 * end; Transfer-Encoding is refused (the provider does not send it). *used
 * (may be NULL) gets the bytes of the answer once it is complete: on
 * IOTCREDS_OK, IOTCREDS_REFUSED, IOTCREDS_MALFORMED and IOTCREDS_INVALID.
 *
 * On a 200, the body is read as iotcreds_parse_body() reads it: *out and
 * *expiration get the credentials and their expiry (seconds since the
 * epoch). On any failure *out is zeroized and err (if not NULL) says why.
 * Returns:
 *   IOTCREDS_OK         the credentials
 *   IOTCREDS_NEED_MORE  the head or body is not complete (never with eof)
 *   IOTCREDS_HTTP       a malformed head, a bad Content-Length, a
 *                       Transfer-Encoding, a 1xx, or eof before the end
 *   IOTCREDS_TOO_BIG    a head over HTTP_MAX_HEAD, a body over
 *                       IOTCREDS_MAX_BODY (refused from its Content-Length)
 *   IOTCREDS_REFUSED    any status but 200: err->http, and the body's
 *                       "message" in err->msg when it has one
 *   IOTCREDS_MALFORMED, IOTCREDS_INVALID   as iotcreds_parse_body()
 */
enum iotcreds_status iotcreds_answer(const void *in, size_t len, bool eof,
	    struct creds *out, int64_t *expiration, size_t *used,
	    struct iotcreds_error *err);

/*
 * The body of a 200 from body[0..len) (borrowed, not kept): one JSON
 * document (lib/base/json.h, strictly) whose object has a member
 * "credentials", an object with the strings accessKeyId, secretAccessKey,
 * sessionToken and expiration (an RFC 3339 date-time, see
 * http_rfc3339_parse()). Other members, at either level, are skipped; a
 * repeated one of these five is refused. The three credentials are checked
 * as lib/creds checks them (creds_check_field()) and all three are needed.
 * On failure *out is zeroized. Returns IOTCREDS_OK, IOTCREDS_MALFORMED (not
 * JSON, a member missing, repeated or of another type, a bad expiration),
 * or IOTCREDS_INVALID (a credential too long or with a character no
 * credential has); err->msg names the key.
 */
enum iotcreds_status iotcreds_parse_body(const void *body, size_t len,
	    struct creds *out, int64_t *expiration, struct iotcreds_error *err);

/*
 * When to fetch new credentials, in milliseconds on the caller's clock:
 * a point of the last 20 % of their life, picked by rnd (uniform over the
 * uint32_t range: the caller's random number, so that a fleet does not ask
 * together), but never later than IOTCREDS_REFRESH_MARGIN_MS (or a tenth of
 * the life, when that is shorter) before the expiry, so that the fetch and
 * the reconnect with the new ones have time. The life is counted from now:
 * call it when the credentials arrive. Credentials already expired: now.
 * Arguments must be within +-2^62.
 */
int64_t	iotcreds_refresh_at(int64_t now_ms, int64_t expiration_ms,
	    uint32_t rnd);

/* Static English text for a status. */
const char *iotcreds_strerror(enum iotcreds_status st);

#endif
