/*
 * The AWS IoT credentials provider's request and answer (see iotcreds.h).
 * The answer's head goes through lib/ws/http.c, its body through the strict
 * JSON reader of lib/base/json.c, token by token: the credentials are
 * decoded straight into the caller's struct creds, so no copy of a secret
 * exists anywhere else, and a failure wipes that struct before returning.
 */
#include "creds/iotcreds.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "ws/http.h"

#define BODY_DEPTH	16	/* nesting in a body (2 levels are used) */
/* "2026-12-08T12:34:56.123456789+00:00" fits. */
#define EXPIRATION_MAX	64

static enum iotcreds_status iotcreds_fail(struct iotcreds_error *,
    enum iotcreds_status, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static enum iotcreds_status
iotcreds_fail(struct iotcreds_error *err, enum iotcreds_status st,
    const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return st;
}

static void
err_reset(struct iotcreds_error *err)
{
	if (err != NULL) {
		err->http = 0;
		err->msg[0] = '\0';
	}
}

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* 1..IOTCREDS_MAX_NAME characters, each alphanumeric or one of extra. */
static bool
name_ok(const char *s, const char *extra)
{
	size_t n = s != NULL ? strnlen(s, IOTCREDS_MAX_NAME + 1) : 0;

	if (n == 0 || n > IOTCREDS_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && strchr(extra, s[i]) == NULL)
			return false;
	return true;
}

/* RFC 1123 host name: labels of 1..63 letters, digits and inner '-'. */
bool
iotcreds_host_ok(const char *s)
{
	size_t n = s != NULL ? strnlen(s, IOTCREDS_MAX_HOST + 1) : 0;
	size_t label = 0;

	if (n == 0 || n > IOTCREDS_MAX_HOST)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(s[i]) && (s[i] != '-' || label == 0))
			return false;
		label++;
	}
	return true;
}

/* CreateRoleAlias's and CreateThing's alphabets. */
bool
iotcreds_role_alias_ok(const char *s)
{
	return name_ok(s, "_=,@-");
}

bool
iotcreds_thing_name_ok(const char *s)
{
	return name_ok(s, ":_-");
}

enum iotcreds_status
iotcreds_request_check(const struct iotcreds_request *q,
    struct iotcreds_error *err)
{
	err_reset(err);
	if (!iotcreds_host_ok(q->host))
		return iotcreds_fail(err, IOTCREDS_BAD_NAME, "credentials "
		    "endpoint is not a host name of at most %d characters",
		    IOTCREDS_MAX_HOST);
	if (q->port == 0)
		return iotcreds_fail(err, IOTCREDS_BAD_NAME, "port 0");
	if (!iotcreds_role_alias_ok(q->role_alias))
		return iotcreds_fail(err, IOTCREDS_BAD_NAME, "role alias must "
		    "be 1 to %d of A-Z a-z 0-9 _ = , @ -", IOTCREDS_MAX_NAME);
	if (!iotcreds_thing_name_ok(q->thing_name))
		return iotcreds_fail(err, IOTCREDS_BAD_NAME, "thing name must "
		    "be 1 to %d of A-Z a-z 0-9 : _ -", IOTCREDS_MAX_NAME);
	return IOTCREDS_OK;
}

static void
put_str(struct buf_writer *w, const char *s)
{
	buf_put_bytes(w, s, strlen(s));
}

enum iotcreds_status
iotcreds_request_encode(const struct iotcreds_request *q, void *out,
    size_t cap, size_t *len, struct iotcreds_error *err)
{
	struct buf_writer w;
	enum iotcreds_status st;
	char port[8];

	*len = 0;
	if ((st = iotcreds_request_check(q, err)) != IOTCREDS_OK)
		return st;
	buf_writer_init(&w, out, cap);
	put_str(&w, "GET /role-aliases/");
	put_str(&w, q->role_alias);
	put_str(&w, "/credentials HTTP/1.1\r\nHost: ");
	put_str(&w, q->host);
	if (q->port != 443) {
		snprintf(port, sizeof(port), ":%u", (unsigned)q->port);
		put_str(&w, port);
	}
	put_str(&w, "\r\nx-amzn-iot-thingname: ");
	put_str(&w, q->thing_name);
	put_str(&w, "\r\nAccept: application/json\r\nConnection: close\r\n"
	    "\r\n");
	*len = buf_written(&w);
	/* A NULL out only counts: it "fits" without this check. */
	if (buf_writer_status(&w) != BUF_OK || *len > cap)
		return iotcreds_fail(err, IOTCREDS_NO_SPACE, "request of %zu "
		    "bytes does not fit %zu", *len, cap);
	return IOTCREDS_OK;
}

/* A member of the body we read: where its value went, if it was there. */
struct member {
	const char	*name;		/* "credentials.accessKeyId" */
	bool		 seen;
};

/*
 * The value of credentials.NAME into dst[0..cap) (a field of the caller's
 * struct creds, or a buffer for the expiration).
 */
static enum iotcreds_status
read_string(const struct json_token *v, struct member *m, char *dst,
    size_t cap, struct iotcreds_error *err)
{
	size_t n;

	if (m->seen)
		return iotcreds_fail(err, IOTCREDS_MALFORMED, "%s repeated",
		    m->name);
	m->seen = true;
	if (v->type != JSON_T_STRING)
		return iotcreds_fail(err, IOTCREDS_MALFORMED, "%s is not a "
		    "string", m->name);
	if (json_string_decode(v, dst, cap, &n) != JSON_OK)
		return iotcreds_fail(err, IOTCREDS_INVALID, "%s longer than "
		    "%zu bytes", m->name, cap - 1);
	if (strlen(dst) != n)
		return iotcreds_fail(err, IOTCREDS_INVALID, "%s holds "
		    "U+0000", m->name);
	return IOTCREDS_OK;
}

static enum iotcreds_status
json_failed(struct json_reader *r, enum json_status js,
    struct iotcreds_error *err)
{
	return iotcreds_fail(err, IOTCREDS_MALFORMED, "body is not JSON: %s "
	    "at byte %zu", json_strerror(js), json_error_offset(r));
}

/* The members of the "credentials" object, whose '{' was just read. */
static enum iotcreds_status
read_credentials(struct json_reader *r, struct creds *out, char *exp,
    struct iotcreds_error *err)
{
	struct member m[] = {
		{ "credentials.accessKeyId", false },
		{ "credentials.secretAccessKey", false },
		{ "credentials.sessionToken", false },
		{ "credentials.expiration", false },
	};
	static const char *const keys[] = {
		"accessKeyId", "secretAccessKey", "sessionToken", "expiration",
	};
	char *dst[] = { out->access_key_id, out->secret_access_key,
	    out->session_token, exp };
	const size_t cap[] = { sizeof(out->access_key_id),
	    sizeof(out->secret_access_key), sizeof(out->session_token),
	    EXPIRATION_MAX };
	struct json_token k, v;
	enum json_status js;
	enum iotcreds_status st;
	size_t i;

	for (;;) {
		if ((js = json_next(r, &k)) != JSON_OK)
			return json_failed(r, js, err);
		if (k.type == JSON_T_OBJECT_END)
			break;
		if ((js = json_next(r, &v)) != JSON_OK)
			return json_failed(r, js, err);
		for (i = 0; i < 4 && !json_string_eq(&k, keys[i]); i++)
			;
		if (i == 4) {
			if ((js = json_skip(r, &v, NULL)) != JSON_OK)
				return json_failed(r, js, err);
			continue;
		}
		if ((st = read_string(&v, &m[i], dst[i], cap[i], err)) !=
		    IOTCREDS_OK)
			return st;
	}
	for (i = 0; i < 4; i++)
		if (!m[i].seen)
			return iotcreds_fail(err, IOTCREDS_MALFORMED,
			    "%s missing", m[i].name);
	return IOTCREDS_OK;
}

static enum iotcreds_status
parse_body(const void *body, size_t len, struct creds *out,
    int64_t *expiration, struct iotcreds_error *err)
{
	static const enum creds_field fields[] = { CREDS_FIELD_KEY_ID,
	    CREDS_FIELD_SECRET, CREDS_FIELD_TOKEN };
	static const char *const names[] = { "credentials.accessKeyId",
	    "credentials.secretAccessKey", "credentials.sessionToken" };
	struct json_reader r;
	struct json_token k, v;
	struct creds_error cerr;
	enum json_status js;
	enum iotcreds_status st;
	char exp[EXPIRATION_MAX];
	bool seen = false;

	json_reader_init(&r, body, len, BODY_DEPTH);
	if ((js = json_next(&r, &k)) != JSON_OK)
		return json_failed(&r, js, err);
	if (k.type != JSON_T_OBJECT)
		return iotcreds_fail(err, IOTCREDS_MALFORMED,
		    "body is not a JSON object");
	for (;;) {
		if ((js = json_next(&r, &k)) != JSON_OK)
			return json_failed(&r, js, err);
		if (k.type == JSON_T_OBJECT_END)
			break;
		if ((js = json_next(&r, &v)) != JSON_OK)
			return json_failed(&r, js, err);
		if (!json_string_eq(&k, "credentials")) {
			if ((js = json_skip(&r, &v, NULL)) != JSON_OK)
				return json_failed(&r, js, err);
			continue;
		}
		if (seen)
			return iotcreds_fail(err, IOTCREDS_MALFORMED,
			    "credentials repeated");
		seen = true;
		if (v.type != JSON_T_OBJECT)
			return iotcreds_fail(err, IOTCREDS_MALFORMED,
			    "credentials is not an object");
		if ((st = read_credentials(&r, out, exp, err)) != IOTCREDS_OK)
			return st;
	}
	if ((js = json_next(&r, &k)) != JSON_END)
		return json_failed(&r, js, err);
	if (!seen)
		return iotcreds_fail(err, IOTCREDS_MALFORMED,
		    "credentials missing");
	for (int i = 0; i < 3; i++)
		if (creds_check_field(out, fields[i], names[i], &cerr) !=
		    CREDS_OK)
			return iotcreds_fail(err, IOTCREDS_INVALID, "%s",
			    cerr.msg);
	if (http_rfc3339_parse((struct buf_view){ (const uint8_t *)exp,
	    strlen(exp) }, expiration) != HTTP_OK)
		return iotcreds_fail(err, IOTCREDS_MALFORMED, "credentials."
		    "expiration is not an RFC 3339 date-time");
	return IOTCREDS_OK;
}

/* What both readers do last: the struct holds credentials or nothing. */
static enum iotcreds_status
finish(enum iotcreds_status st, struct creds *out, int64_t when,
    int64_t *expiration)
{
	if (st != IOTCREDS_OK)
		creds_clear(out);
	else
		*expiration = when;
	return st;
}

enum iotcreds_status
iotcreds_parse_body(const void *body, size_t len, struct creds *out,
    int64_t *expiration, struct iotcreds_error *err)
{
	enum iotcreds_status st;
	int64_t when = 0;

	creds_clear(out);
	err_reset(err);
	st = parse_body(body, len, out, &when, err);
	return finish(st, out, when, expiration);
}

/*
 * A refusal's reason: the body's top-level "message" string, made
 * printable, after "NNN REASON". Bodies that are not such JSON say nothing.
 */
static void
refusal(const struct http_response *h, const uint8_t *body, size_t len,
    struct iotcreds_error *err)
{
	char msg[128];
	struct json_reader r;
	struct json_token k, v;
	size_t n = 0, rlen = h->reason.len < 40 ? h->reason.len : 40;

	msg[0] = '\0';
	json_reader_init(&r, body, len, BODY_DEPTH);
	if (json_next(&r, &k) == JSON_OK && k.type == JSON_T_OBJECT) {
		while (json_next(&r, &k) == JSON_OK &&
		    k.type == JSON_T_KEY && json_next(&r, &v) == JSON_OK) {
			if (json_string_eq(&k, "message") &&
			    v.type == JSON_T_STRING) {
				json_string_decode(&v, msg, sizeof(msg), &n);
				break;
			}
			if (json_skip(&r, &v, NULL) != JSON_OK)
				break;
		}
	}
	/* Untrusted text: printable ASCII only, so it is safe to log. */
	for (n = 0; msg[n] != '\0'; n++)
		if (msg[n] < 0x20 || msg[n] > 0x7e)
			msg[n] = '?';
	iotcreds_fail(err, IOTCREDS_REFUSED, "provider answered %d %.*s%s%s",
	    h->status, (int)rlen, (const char *)h->reason.ptr,
	    msg[0] != '\0' ? ": " : "", msg);
	for (size_t i = 0; err != NULL && err->msg[i] != '\0'; i++)
		if (err->msg[i] < 0x20 || err->msg[i] > 0x7e)
			err->msg[i] = '?';
}

static enum iotcreds_status
answer(const uint8_t *in, size_t len, bool eof, struct creds *out,
    int64_t *expiration, size_t *used, struct iotcreds_error *err)
{
	struct http_response h;
	const struct http_header *cl, *te;
	enum http_status hs;
	uint64_t blen = 0;
	size_t count;

	if ((hs = http_response_parse(in, len, &h)) == HTTP_NEED_MORE)
		return eof ? iotcreds_fail(err, IOTCREDS_HTTP, "connection "
		    "closed before the end of the head") : IOTCREDS_NEED_MORE;
	if (hs == HTTP_TOO_BIG)
		return iotcreds_fail(err, IOTCREDS_TOO_BIG, "%s",
		    http_strerror(hs));
	if (hs != HTTP_OK || h.minor != 1)
		return iotcreds_fail(err, IOTCREDS_HTTP, "not an HTTP/1.1 "
		    "answer");
	if (err != NULL)
		err->http = h.status;
	if (h.status < 200)
		return iotcreds_fail(err, IOTCREDS_HTTP, "interim answer %d",
		    h.status);
	te = http_header_find(&h, "Transfer-Encoding", NULL);
	cl = http_header_find(&h, "Content-Length", &count);
	if (te != NULL)
		return iotcreds_fail(err, IOTCREDS_HTTP, "Transfer-Encoding "
		    "is not supported");
	if (cl != NULL && (count != 1 ||
	    http_content_length(cl->value, &blen) != HTTP_OK))
		return iotcreds_fail(err, IOTCREDS_HTTP, "bad Content-Length");
	if (cl == NULL) {
		/* Delimited by the end of the connection. */
		if (!eof)
			return len - h.head_len > IOTCREDS_MAX_BODY ?
			    iotcreds_fail(err, IOTCREDS_TOO_BIG, "body over "
			    "%d bytes", IOTCREDS_MAX_BODY) :
			    IOTCREDS_NEED_MORE;
		blen = len - h.head_len;
	}
	if (blen > IOTCREDS_MAX_BODY)
		return iotcreds_fail(err, IOTCREDS_TOO_BIG, "body over %d "
		    "bytes", IOTCREDS_MAX_BODY);
	if (len - h.head_len < blen)
		return eof ? iotcreds_fail(err, IOTCREDS_HTTP, "connection "
		    "closed before the end of the body") : IOTCREDS_NEED_MORE;
	if (used != NULL)
		*used = h.head_len + (size_t)blen;
	if (h.status != 200) {
		refusal(&h, in + h.head_len, (size_t)blen, err);
		return IOTCREDS_REFUSED;
	}
	return parse_body(in + h.head_len, (size_t)blen, out, expiration,
	    err);
}

enum iotcreds_status
iotcreds_answer(const void *in, size_t len, bool eof, struct creds *out,
    int64_t *expiration, size_t *used, struct iotcreds_error *err)
{
	enum iotcreds_status st;
	int64_t when = 0;

	creds_clear(out);
	err_reset(err);
	st = answer(in, len, eof, out, &when, used, err);
	return finish(st, out, when, expiration);
}

int64_t
iotcreds_refresh_at(int64_t now_ms, int64_t expiration_ms, uint32_t rnd)
{
	int64_t life = expiration_ms - now_ms, from, to, margin;
	uint64_t width;

	if (life <= 0)
		return now_ms;
	from = expiration_ms - life / 5;
	margin = life / 10 < IOTCREDS_REFRESH_MARGIN_MS ? life / 10 :
	    IOTCREDS_REFRESH_MARGIN_MS;
	to = expiration_ms - margin;
	if (to <= from)
		return from;
	/* width * rnd / 2^32 without overflowing 64 bits. */
	width = (uint64_t)(to - from);
	return from + (int64_t)((width >> 32) * rnd +
	    (((width & 0xffffffffu) * rnd) >> 32));
}

const char *
iotcreds_strerror(enum iotcreds_status st)
{
	switch (st) {
	case IOTCREDS_OK:
		return "success";
	case IOTCREDS_NEED_MORE:
		return "incomplete answer";
	case IOTCREDS_BAD_NAME:
		return "invalid credentials endpoint, role alias or thing name";
	case IOTCREDS_NO_SPACE:
		return "output buffer too small";
	case IOTCREDS_HTTP:
		return "malformed HTTP answer";
	case IOTCREDS_TOO_BIG:
		return "answer too large";
	case IOTCREDS_REFUSED:
		return "credentials provider refused the request";
	case IOTCREDS_MALFORMED:
		return "malformed credentials answer";
	case IOTCREDS_INVALID:
		return "invalid credential in the answer";
	}
	return "unknown status";
}
