/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256) for the one request iotbridge
 * signs: the presigned WebSocket URL of AWS IoT Core, GET /mqtt on service
 * iotdevicegateway with the signature in the query string and the session
 * token appended after signing, as AWS IoT wants it. The generic pieces
 * (canonical request, string to sign, signature) are public too so AWS's
 * published SigV4 examples can be checked against them. Everything is a pure
 * function of its arguments: time and credentials come in, text goes out into
 * the caller's buffer. The derived keys live on the stack only and are
 * zeroized before return. Nothing allocates, except what mbedTLS's HMAC does
 * internally, and no pointer is kept.
 */
#ifndef IOTB_SIGV4_H
#define IOTB_SIGV4_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define SIGV4_SIGNATURE_LEN	64	/* hex digits of the signature */
#define SIGV4_DATETIME_LEN	16	/* 20150830T123600Z */
#define SIGV4_MAX_PARAMS	16	/* query parameters of a generic request */
#define SIGV4_MAX_HEADERS	16	/* headers of a generic request */
#define SIGV4_MAX_FIELD		128	/* access key id, secret, region, service */
#define SIGV4_MAX_HOST		253	/* a DNS name */
#define SIGV4_TIME_MAX		253402300799LL	/* 9999-12-31T23:59:59Z */

#define SIGV4_IOT_SERVICE	"iotdevicegateway"
#define SIGV4_IOT_PATH		"/mqtt"

enum sigv4_status {
	SIGV4_OK = 0,
	SIGV4_NO_SPACE,		/* the output buffer is too small */
	SIGV4_INVALID,		/* an argument is missing, too long or badly formed */
	SIGV4_CRYPTO,		/* mbedTLS failed (out of memory in its HMAC) */
};

/*
 * AWS credentials, borrowed for the duration of a call. session_token is
 * NULL (or "") for long-term keys.
 */
struct sigv4_creds {
	const char	*access_key_id;
	const char	*secret_access_key;
	const char	*session_token;
};

/* A query parameter or header: raw (unencoded) NUL-terminated strings. */
struct sigv4_pair {
	const char	*name;
	const char	*value;
};

/*
 * A generic request to sign. Strings are borrowed, NUL-terminated.
 *
 * path: the URI path, starting with '/', already normalized (no "." or ".."
 *   segments); it is URI-encoded once with '/' kept, as botocore does.
 * query: parameters with raw names and values; they are encoded and sorted
 *   by encoded name, then encoded value.
 * headers: every header to sign, any case, including Host and X-Amz-Date when
 *   they are to be signed; names are lowercased, values trimmed with inner
 *   runs of white space collapsed, repeated names joined with ','.
 * payload_hash: lowercase hex SHA-256 of the body; NULL for an empty body.
 * time: seconds since 1970-01-01T00:00:00Z, 0..SIGV4_TIME_MAX.
 */
struct sigv4_request {
	const char		*method;
	const char		*path;
	const struct sigv4_pair	*query;
	size_t			 nquery;
	const struct sigv4_pair	*headers;
	size_t			 nheaders;
	const char		*payload_hash;
	const char		*region;
	const char		*service;
	int64_t			 time;
};

/*
 * The AWS IoT WebSocket URL to presign.
 *
 * host: the endpoint host name, lowercase letters, digits, '-' and '.' only;
 *   the WebSocket upgrade must send this same name in its Host header.
 * port: the TCP port; 0 means 443. The signed Host value carries ":port"
 *   only when the port is not 443, as the Host header then does.
 * region: e.g. "eu-west-1". service: NULL for SIGV4_IOT_SERVICE.
 * path: NULL for SIGV4_IOT_PATH.
 * time: the signing clock, seconds since the epoch (already corrected by
 *   whatever offset the caller learnt from a server's Date header).
 */
struct sigv4_presign {
	const char			*host;
	uint16_t			 port;
	const char			*region;
	const char			*service;
	const char			*path;
	int64_t				 time;
	const struct sigv4_creds	*creds;
};

/*
 * Write the request target "PATH?X-Amz-Algorithm=...&X-Amz-Signature=HEX"
 * (origin-form, what follows GET in the upgrade request) into out[0..cap),
 * NUL-terminated; the URL is "wss://" HOST[:PORT] followed by it. The query
 * is the canonical one in canonical order, then X-Amz-Signature, then
 * X-Amz-Security-Token when creds carry a session token, which is not signed.
 * *len (may be NULL) receives the length without the NUL, or on
 * SIGV4_NO_SPACE the length that was needed. out may be NULL with cap 0 to
 * size the output. The result contains the session token: treat it as secret.
 * Returns SIGV4_OK, SIGV4_NO_SPACE, SIGV4_INVALID or SIGV4_CRYPTO.
 */
enum sigv4_status sigv4_presign(char *out, size_t cap,
		    const struct sigv4_presign *p, size_t *len);

/*
 * The canonical request of req, NUL-terminated into out[0..cap); *len as in
 * sigv4_presign(). Returns SIGV4_OK, SIGV4_NO_SPACE or SIGV4_INVALID.
 */
enum sigv4_status sigv4_canonical_request(char *out, size_t cap,
		    const struct sigv4_request *req, size_t *len);

/*
 * The string to sign of req ("AWS4-HMAC-SHA256\nDATETIME\nSCOPE\nHASH"),
 * NUL-terminated into out[0..cap); *len as in sigv4_presign(). Returns
 * SIGV4_OK, SIGV4_NO_SPACE, SIGV4_INVALID or SIGV4_CRYPTO.
 */
enum sigv4_status sigv4_string_to_sign(char *out, size_t cap,
		    const struct sigv4_request *req, size_t *len);

/*
 * The signature of req under creds (the session token plays no part here) as
 * SIGV4_SIGNATURE_LEN lowercase hex digits and a NUL into out. Returns
 * SIGV4_OK, SIGV4_INVALID or SIGV4_CRYPTO; out is "" on failure.
 */
enum sigv4_status sigv4_signature(char out[SIGV4_SIGNATURE_LEN + 1],
		    const struct sigv4_request *req,
		    const struct sigv4_creds *creds);

/*
 * when (seconds since the epoch) as YYYYMMDDTHHMMSSZ and a NUL into out.
 * Returns SIGV4_OK, or SIGV4_INVALID (and "") when when is outside
 * 0..SIGV4_TIME_MAX.
 */
enum sigv4_status sigv4_datetime(char out[SIGV4_DATETIME_LEN + 1],
		    int64_t when);

/*
 * RFC 3986 encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ are kept, every
 * other byte becomes %XX with uppercase hex; '/' is kept too when keep_slash
 * (paths), encoded otherwise (query names and values). s[0..n) is encoded
 * NUL-terminated into out[0..cap); *len as in sigv4_presign(). Returns
 * SIGV4_OK or SIGV4_NO_SPACE.
 */
enum sigv4_status sigv4_uri_encode(char *out, size_t cap, const void *s,
		    size_t n, bool keep_slash, size_t *len);

/* Static English text for a status. */
const char	*sigv4_strerror(enum sigv4_status st);

#endif
