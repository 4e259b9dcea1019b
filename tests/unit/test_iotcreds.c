/*
 * Unit tests for lib/creds/iotcreds.c: the credentials provider's request
 * byte for byte, the names AWS allows, the answer (the documented example,
 * every way a 200 can be wrong, refusals with AWS's message, HTTP framing),
 * and the refresh time. Every failure must leave the struct creds zeroed
 * and a message that holds no credential.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "creds/iotcreds.h"
#include "ws/http.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define KEY	"ASIAIOTCREDSEXAMPLE1"
#define SECRET	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN	"IQoJb3JpZ2luX2VjEH4aCXVzLWVhc3QtMSJHMEUCIQ+token/with=="
#define EXP	"2026-12-08T12:34:56Z"
#define EXP_T	INT64_C(1796733296)

/* The answer's body as the developer guide shows it. */
#define BODY	"{\"credentials\":{\"accessKeyId\":\"" KEY "\"," \
		"\"secretAccessKey\":\"" SECRET "\",\"sessionToken\":\"" \
		TOKEN "\",\"expiration\":\"" EXP "\"}}"

static const struct creds zero;

static void
assert_clean_failure(const struct creds *c, const struct iotcreds_error *err)
{
	assert_memory_equal(c, &zero, sizeof(zero));
	assert_true(err->msg[0] != '\0');
	assert_null(strstr(err->msg, SECRET));
	assert_null(strstr(err->msg, TOKEN));
	assert_null(strstr(err->msg, "SECRETVALUE"));
	for (size_t i = 0; err->msg[i] != '\0'; i++)
		assert_true(err->msg[i] >= 0x20 && err->msg[i] < 0x7f);
}

static void
assert_example(const struct creds *c, int64_t exp)
{
	assert_string_equal(c->access_key_id, KEY);
	assert_string_equal(c->secret_access_key, SECRET);
	assert_string_equal(c->session_token, TOKEN);
	assert_true(exp == EXP_T);
}

/* --- the request --------------------------------------------------------- */

static void
test_request(void **state)
{
	static const char want[] =
	    "GET /role-aliases/gw-role=alias,@x_1/credentials HTTP/1.1\r\n"
	    "Host: c2abcdefghij.credentials.iot.eu-west-1.amazonaws.com\r\n"
	    "x-amzn-iot-thingname: gateway:01_a-b\r\n"
	    "Accept: application/json\r\n"
	    "Connection: close\r\n"
	    "\r\n";
	struct iotcreds_request q = {
		"c2abcdefghij.credentials.iot.eu-west-1.amazonaws.com", 443,
		"gw-role=alias,@x_1", "gateway:01_a-b",
	};
	struct iotcreds_error err;
	char out[512];
	size_t len = 0;

	(void)state;
	/* size first, then encode */
	assert_int_equal(iotcreds_request_encode(&q, NULL, 0, &len, &err),
	    IOTCREDS_NO_SPACE);
	assert_int_equal(len, sizeof(want) - 1);
	assert_int_equal(iotcreds_request_encode(&q, out, len - 1, &len,
	    &err), IOTCREDS_NO_SPACE);
	assert_int_equal(iotcreds_request_encode(&q, out, len, &len, &err),
	    IOTCREDS_OK);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(out, want, len);

	/* another port goes into Host */
	q.host = "localhost";
	q.port = 8443;
	assert_int_equal(iotcreds_request_encode(&q, out, sizeof(out), &len,
	    &err), IOTCREDS_OK);
	out[len] = '\0';
	assert_non_null(strstr(out, "\r\nHost: localhost:8443\r\n"));
}

static void
test_request_names(void **state)
{
	static const struct {
		const char	*host, *alias, *thing;
		uint16_t	 port;
		const char	*problem;	/* NULL: accepted */
	} cases[] = {
		{ "localhost", "a", "t", 443, NULL },
		{ "127.0.0.1", "a", "t", 1, NULL },
		{ "a-b.c9.example", "a", "t", 443, NULL },
		{ "", "a", "t", 443, "credentials endpoint" },
		{ NULL, "a", "t", 443, "credentials endpoint" },
		{ "-a.example", "a", "t", 443, "credentials endpoint" },
		{ "a-.example", "a", "t", 443, "credentials endpoint" },
		{ "a..example", "a", "t", 443, "credentials endpoint" },
		{ "a.example.", "a", "t", 443, "credentials endpoint" },
		{ ".example", "a", "t", 443, "credentials endpoint" },
		{ "example.com:443", "a", "t", 443, "credentials endpoint" },
		{ "exa mple", "a", "t", 443, "credentials endpoint" },
		{ "exa_mple", "a", "t", 443, "credentials endpoint" },
		{ "[::1]", "a", "t", 443, "credentials endpoint" },
		{ "h\r\nX: y", "a", "t", 443, "credentials endpoint" },
		{ "localhost", "a", "t", 0, "port 0" },
		{ "localhost", "", "t", 443, "role alias" },
		{ "localhost", NULL, "t", 443, "role alias" },
		{ "localhost", "a/b", "t", 443, "role alias" },
		{ "localhost", "a b", "t", 443, "role alias" },
		{ "localhost", "a:b", "t", 443, "role alias" },
		{ "localhost", "a%2f", "t", 443, "role alias" },
		{ "localhost", "a", "", 443, "thing name" },
		{ "localhost", "a", "t=1", 443, "thing name" },
		{ "localhost", "a", "t\r\nx", 443, "thing name" },
		{ "localhost", "a", "caf\xc3\xa9", 443, "thing name" },
	};
	struct iotcreds_error err;
	char label[64], host[300], name[IOTCREDS_MAX_NAME + 2];

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct iotcreds_request q = { cases[i].host, cases[i].port,
		    cases[i].alias, cases[i].thing };
		enum iotcreds_status st = iotcreds_request_check(&q, &err);

		print_message("%zu\n", i);
		if (cases[i].problem == NULL) {
			assert_int_equal(st, IOTCREDS_OK);
			assert_string_equal(err.msg, "");
		} else {
			assert_int_equal(st, IOTCREDS_BAD_NAME);
			assert_non_null(strstr(err.msg, cases[i].problem));
		}
	}
	/* the bounds: a 63-byte label, 253 bytes, 128-byte names */
	memset(label, 'a', 64);
	label[63] = '\0';
	snprintf(host, sizeof(host), "%s.%s.%s.%.61s", label, label, label,
	    label);
	assert_int_equal(strlen(host), 253);
	memset(name, 'n', sizeof(name));
	name[IOTCREDS_MAX_NAME] = '\0';
	struct iotcreds_request q = { host, 443, name, name };
	assert_int_equal(iotcreds_request_check(&q, &err), IOTCREDS_OK);
	name[IOTCREDS_MAX_NAME] = 'n';
	name[IOTCREDS_MAX_NAME + 1] = '\0';
	assert_int_equal(iotcreds_request_check(&q, &err), IOTCREDS_BAD_NAME);
	name[IOTCREDS_MAX_NAME] = '\0';
	host[252] = 'a';
	host[253] = 'a';
	host[254] = '\0';
	assert_int_equal(iotcreds_request_check(&q, &err), IOTCREDS_BAD_NAME);
	label[63] = 'a';
	snprintf(host, sizeof(host), "%.64s.b", label);
	assert_int_equal(iotcreds_request_check(&q, &err), IOTCREDS_BAD_NAME);
	/* nothing is written for a bad request */
	q.thing_name = "x y";
	memset(host, 'z', 8);
	assert_int_equal(iotcreds_request_encode(&q, host, sizeof(host),
	    &(size_t){ 1 }, &err), IOTCREDS_BAD_NAME);
}

/* --- the body ------------------------------------------------------------ */

static void
test_body_example(void **state)
{
	static const char spaced[] = "\n{ \"credentials\" : {\n"
	    "  \"expiration\" : \"" EXP "\",\n"
	    "  \"sessionToken\" : \"" TOKEN "\",\n"
	    "  \"other\" : [1, {\"x\": null}],\n"
	    "  \"secretAccessKey\" : \"" SECRET "\",\n"
	    "  \"access\\u004beyId\" : \"" KEY "\"\n"
	    " },\n \"requestId\": {\"nested\": [true]}\n}\n";
	/* escapes in values decode: "\/" is "/" */
	static const char escaped[] = "{\"credentials\":{\"accessKeyId\":\""
	    KEY "\",\"secretAccessKey\":\"wJalrXUtnFEMI\\/K7MDENG\\/bPxRfiCY"
	    "EXAMPLEKEY\",\"sessionToken\":\"" TOKEN "\",\"expiration\":\""
	    EXP "\"}}";
	struct creds c;
	struct iotcreds_error err;
	int64_t exp = 0;

	(void)state;
	assert_int_equal(iotcreds_parse_body(BODY, strlen(BODY), &c, &exp,
	    &err), IOTCREDS_OK);
	assert_example(&c, exp);
	assert_string_equal(err.msg, "");
	creds_clear(&c);
	assert_int_equal(iotcreds_parse_body(spaced, strlen(spaced), &c,
	    &exp, &err), IOTCREDS_OK);
	assert_example(&c, exp);
	assert_int_equal(iotcreds_parse_body(escaped, strlen(escaped), &c,
	    &exp, &err), IOTCREDS_OK);
	assert_example(&c, exp);
	creds_clear(&c);
	assert_memory_equal(&c, &zero, sizeof(zero));
}

static void
test_body_refused(void **state)
{
	static char long_token[CREDS_MAX_TOKEN + 2];
	static const struct {
		const char		*body;
		enum iotcreds_status	 want;
		const char		*msg;
	} cases[] = {
		{ "", IOTCREDS_MALFORMED, "body is not JSON: no JSON value" },
		{ "[]", IOTCREDS_MALFORMED, "body is not a JSON object" },
		{ "{}", IOTCREDS_MALFORMED, "credentials missing" },
		{ "{\"credentials\":[]}", IOTCREDS_MALFORMED,
		    "credentials is not an object" },
		{ "{\"credentials\":{}}", IOTCREDS_MALFORMED,
		    "credentials.accessKeyId missing" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"expiration\":\""
		    EXP "\"}}", IOTCREDS_MALFORMED,
		    "credentials.sessionToken missing" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"t\""
		    "}}", IOTCREDS_MALFORMED,
		    "credentials.expiration missing" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"accessKeyId\":\"" KEY "\"}}", IOTCREDS_MALFORMED,
		    "credentials.accessKeyId repeated" },
		{ "{\"credentials\":{}, \"credentials\":{}}",
		    IOTCREDS_MALFORMED, "credentials.accessKeyId missing" },
		{ "{\"credentials\":{\"accessKeyId\":42}}", IOTCREDS_MALFORMED,
		    "credentials.accessKeyId is not a string" },
		{ "{\"credentials\":{\"secretAccessKey\":null}}",
		    IOTCREDS_MALFORMED,
		    "credentials.secretAccessKey is not a string" },
		{ "{\"credentials\":{\"sessionToken\":{\"a\":1}}}",
		    IOTCREDS_MALFORMED,
		    "credentials.sessionToken is not a string" },
		/* JSON errors name the byte */
		{ BODY " x", IOTCREDS_MALFORMED,
		    "body is not JSON: data after the JSON document at byte " },
		{ "{\"credentials\":{\"accessKeyId\":\"\\ud800\"}}",
		    IOTCREDS_MALFORMED, "unpaired UTF-16 surrogate in a \\u "
		    "escape at byte 31" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\",",
		    IOTCREDS_MALFORMED, "ends too early" },
		{ "{\"credentials\":{\"x\":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]"
		    "}}", IOTCREDS_MALFORMED, "nested too deeply" },
		/* values lib/creds refuses */
		{ "{\"credentials\":{\"accessKeyId\":\"asia-lower\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"t\","
		    "\"expiration\":\"" EXP "\"}}", IOTCREDS_INVALID,
		    "credentials.accessKeyId has a character outside A-Z 0-9" },
		{ "{\"credentials\":{\"accessKeyId\":\"\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"t\","
		    "\"expiration\":\"" EXP "\"}}", IOTCREDS_INVALID,
		    "credentials.accessKeyId is empty" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRET VALUE\",\"sessionToken\":\"t\","
		    "\"expiration\":\"" EXP "\"}}", IOTCREDS_INVALID,
		    "credentials.secretAccessKey has a blank inside" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"\","
		    "\"expiration\":\"" EXP "\"}}", IOTCREDS_INVALID,
		    "credentials.sessionToken is empty" },
		{ "{\"credentials\":{\"accessKeyId\":\"AK\\u0000ID\"}}",
		    IOTCREDS_INVALID, "credentials.accessKeyId holds U+0000" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"t\","
		    "\"expiration\":\"2026-12-08 12:34:56\"}}", IOTCREDS_MALFORMED,
		    "credentials.expiration is not an RFC 3339 date-time" },
		{ "{\"credentials\":{\"accessKeyId\":\"" KEY "\","
		    "\"secretAccessKey\":\"SECRETVALUE\",\"sessionToken\":\"t\","
		    "\"expiration\":\"2026-12-08T12:34:56.0000000000000000000000"
		    "000000000000000000000000000000000000000000000Z\"}}",
		    IOTCREDS_INVALID, "credentials.expiration longer than 63" },
	};
	char body[CREDS_MAX_TOKEN + 256];
	struct creds c;
	struct iotcreds_error err;
	int64_t exp = 7;

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		memset(&c, 0xa5, sizeof(c));
		print_message("%zu: %s\n", i, cases[i].msg);
		assert_int_equal(iotcreds_parse_body(cases[i].body,
		    strlen(cases[i].body), &c, &exp, &err), cases[i].want);
		assert_non_null(strstr(err.msg, cases[i].msg));
		assert_clean_failure(&c, &err);
		assert_true(exp == 7);
	}
	/* the token's bound, and one past it */
	memset(long_token, 'T', CREDS_MAX_TOKEN);
	snprintf(body, sizeof(body), "{\"credentials\":{\"accessKeyId\":\""
	    KEY "\",\"secretAccessKey\":\"" SECRET "\",\"sessionToken\":\"%s\","
	    "\"expiration\":\"" EXP "\"}}", long_token);
	assert_int_equal(iotcreds_parse_body(body, strlen(body), &c, &exp,
	    &err), IOTCREDS_OK);
	assert_int_equal(strlen(c.session_token), CREDS_MAX_TOKEN);
	long_token[CREDS_MAX_TOKEN] = 'T';
	snprintf(body, sizeof(body), "{\"credentials\":{\"accessKeyId\":\""
	    KEY "\",\"secretAccessKey\":\"" SECRET "\",\"sessionToken\":\"%s\","
	    "\"expiration\":\"" EXP "\"}}", long_token);
	assert_int_equal(iotcreds_parse_body(body, strlen(body), &c, &exp,
	    &err), IOTCREDS_INVALID);
	assert_string_equal(err.msg,
	    "credentials.sessionToken longer than 4096 bytes");
	assert_memory_equal(&c, &zero, sizeof(zero));
}

/* --- the answer ---------------------------------------------------------- */

static char *
http(const char *status, const char *headers, const char *body, size_t *len)
{
	static char buf[8192];
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\n%s\r\n%s", status,
	    headers, body);

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	*len = (size_t)n;
	return buf;
}

static char *
ok_answer(size_t *len, const char *extra)
{
	static char head[256];

	snprintf(head, sizeof(head), "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\nx-amzn-RequestId: 1f2e\r\n%s",
	    strlen(BODY), extra);
	return http("200 OK", head, BODY, len);
}

static void
test_answer_ok(void **state)
{
	struct creds c;
	struct iotcreds_error err;
	int64_t exp = 0;
	size_t len, used = 0;
	char *a = ok_answer(&len, "");

	(void)state;
	assert_int_equal(iotcreds_answer(a, len, false, &c, &exp, &used,
	    &err), IOTCREDS_OK);
	assert_example(&c, exp);
	assert_int_equal(used, len);
	assert_int_equal(err.http, 200);
	/* any shorter: more is needed, and nothing is handed out */
	for (size_t k = 0; k < len; k++) {
		memset(&c, 0x5a, sizeof(c));
		assert_int_equal(iotcreds_answer(a, k, false, &c, &exp, NULL,
		    &err), IOTCREDS_NEED_MORE);
		assert_memory_equal(&c, &zero, sizeof(zero));
		/* ... and is an error when the connection has ended */
		assert_int_equal(iotcreds_answer(a, k, true, &c, &exp, NULL,
		    &err), IOTCREDS_HTTP);
	}
	/* bytes after the answer are not part of it */
	a[len] = 'X';
	assert_int_equal(iotcreds_answer(a, len + 1, false, &c, &exp, &used,
	    &err), IOTCREDS_OK);
	assert_int_equal(used, len);
	/* without Content-Length: the body ends with the connection */
	a = http("200 OK", "Connection: close\r\n", BODY, &len);
	assert_int_equal(iotcreds_answer(a, len, false, &c, &exp, &used,
	    &err), IOTCREDS_NEED_MORE);
	assert_int_equal(iotcreds_answer(a, len, true, &c, &exp, &used, &err),
	    IOTCREDS_OK);
	assert_example(&c, exp);
	assert_int_equal(used, len);
	creds_clear(&c);
}

static void
test_answer_refused(void **state)
{
	static const struct {
		const char	*status;
		const char	*body;
		int		 http;
		const char	*msg;
	} cases[] = {
		{ "403 Forbidden", "{\"message\":\"Access Denied\"}", 403,
		    "provider answered 403 Forbidden: Access Denied" },
		{ "404 Not Found", "{\"message\":\"Role alias does not exist\","
		    "\"traceId\":\"x\"}", 404, "provider answered 404 Not "
		    "Found: Role alias does not exist" },
		{ "400 Bad Request", "{\"traceId\":[1],\"message\":\"Invalid "
		    "thing name passed\"}", 400, "provider answered 400 Bad "
		    "Request: Invalid thing name passed" },
		{ "503 Service Unavailable", "<html>busy</html>", 503,
		    "provider answered 503 Service Unavailable" },
		{ "401 Unauthorized", "", 401, "provider answered 401 "
		    "Unauthorized" },
		/* untrusted text is made printable */
		{ "403 Forbidden", "{\"message\":\"a\\nb\\u00e9\\u0007\"}", 403,
		    "provider answered 403 Forbidden: a?b???" },
		{ "302 Found", "{\"message\":1}", 302, "provider answered 302 "
		    "Found" },
	};
	char head[64];
	struct creds c;
	struct iotcreds_error err;
	int64_t exp = 5;
	size_t len, used;

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		char *a;

		snprintf(head, sizeof(head), "Content-Length: %zu\r\n",
		    strlen(cases[i].body));
		a = http(cases[i].status, head, cases[i].body, &len);
		memset(&c, 0x5a, sizeof(c));
		assert_int_equal(iotcreds_answer(a, len, false, &c, &exp,
		    &used, &err), IOTCREDS_REFUSED);
		assert_int_equal(err.http, cases[i].http);
		assert_string_equal(err.msg, cases[i].msg);
		assert_int_equal(used, len);
		assert_clean_failure(&c, &err);
		assert_true(exp == 5);
	}
}

static void
test_answer_framing(void **state)
{
	static const struct {
		const char		*answer;
		bool			 eof;
		enum iotcreds_status	 want;
		const char		*msg;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
		    false, IOTCREDS_HTTP, "Transfer-Encoding is not supported" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5"
		    "\r\n\r\n", false, IOTCREDS_HTTP, "bad Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false,
		    IOTCREDS_HTTP, "bad Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 16385\r\n\r\n", false,
		    IOTCREDS_TOO_BIG, "body over 16384 bytes" },
		{ "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false,
		    IOTCREDS_HTTP, "not an HTTP/1.1 answer" },
		{ "HTTP/1.1 100 Continue\r\n\r\n", false, IOTCREDS_HTTP,
		    "interim answer 100" },
		{ "SSH-2.0-OpenSSH\r\n", false, IOTCREDS_HTTP,
		    "not an HTTP/1.1 answer" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", true,
		    IOTCREDS_HTTP, "connection closed before the end of the "
		    "body" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", true,
		    IOTCREDS_HTTP, "connection closed before the end of the "
		    "head" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false,
		    IOTCREDS_MALFORMED, "credentials missing" },
	};
	struct creds c;
	struct iotcreds_error err;
	int64_t exp;
	char big[HTTP_MAX_HEAD + 64];

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		print_message("%zu\n", i);
		memset(&c, 0x5a, sizeof(c));
		assert_int_equal(iotcreds_answer(cases[i].answer,
		    strlen(cases[i].answer), cases[i].eof, &c, &exp, NULL,
		    &err), cases[i].want);
		assert_non_null(strstr(err.msg, cases[i].msg));
		assert_clean_failure(&c, &err);
	}
	/* a head that never ends, and a body without a length that grows */
	memset(big, 'x', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	assert_int_equal(iotcreds_answer(big, sizeof(big), false, &c, &exp,
	    NULL, &err), IOTCREDS_TOO_BIG);
	memcpy(big, "HTTP/1.1 200 OK\r\n\r\n", 19);
	assert_int_equal(iotcreds_answer(big, 19 + IOTCREDS_MAX_BODY, false,
	    &c, &exp, NULL, &err), IOTCREDS_NEED_MORE);
	assert_int_equal(iotcreds_answer(big, 20 + IOTCREDS_MAX_BODY, false,
	    &c, &exp, NULL, &err), IOTCREDS_TOO_BIG);
}

/* --- the refresh time ---------------------------------------------------- */

static void
test_refresh_at(void **state)
{
	const int64_t now = INT64_C(1765000000000), hour = 3600 * 1000;
	int64_t prev = 0, t;

	(void)state;
	/* an hour's credentials: between 48 and 59 minutes from now */
	assert_true(iotcreds_refresh_at(now, now + hour, 0) ==
	    now + hour * 4 / 5);
	t = iotcreds_refresh_at(now, now + hour, UINT32_MAX);
	assert_true(t < now + hour - 60 * 1000 &&
	    t >= now + hour - 60 * 1000 - 1);
	t = iotcreds_refresh_at(now, now + hour, UINT32_C(1) << 31);
	assert_true(t == now + hour * 4 / 5 + (hour / 5 - 60 * 1000) / 2);
	for (uint32_t r = 0; r < UINT32_MAX - (UINT32_C(1) << 24);
	    r += UINT32_C(1) << 24) {
		t = iotcreds_refresh_at(now, now + hour, r);
		assert_true(t >= prev);
		prev = t;
	}
	/* a short life: the margin is a tenth of it */
	assert_true(iotcreds_refresh_at(now, now + 10000, 0) == now + 8000);
	t = iotcreds_refresh_at(now, now + 10000, UINT32_MAX);
	assert_true(t >= now + 8999 && t < now + 9000);
	/* 12 hours, the longest a role alias gives */
	t = iotcreds_refresh_at(now, now + 12 * hour, UINT32_MAX);
	assert_true(t < now + 12 * hour - 60 * 1000 &&
	    t > now + 12 * hour - 61 * 1000);
	/* expired or expiring now: at once */
	assert_true(iotcreds_refresh_at(now, now, 12345) == now);
	assert_true(iotcreds_refresh_at(now, now - hour, 12345) == now);
	assert_true(iotcreds_refresh_at(now, now + 1, UINT32_MAX) == now + 1);
	/* a far expiry does not overflow */
	t = iotcreds_refresh_at(0, INT64_C(253402300799000), UINT32_MAX);
	assert_true(t > INT64_C(253402300799000) * 4 / 5 &&
	    t < INT64_C(253402300799000) - 60 * 1000);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int st = IOTCREDS_OK; st <= IOTCREDS_INVALID; st++)
		assert_string_not_equal(iotcreds_strerror(
		    (enum iotcreds_status)st), "unknown status");
	assert_string_equal(iotcreds_strerror((enum iotcreds_status)99),
	    "unknown status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_names),
		cmocka_unit_test(test_body_example),
		cmocka_unit_test(test_body_refused),
		cmocka_unit_test(test_answer_ok),
		cmocka_unit_test(test_answer_refused),
		cmocka_unit_test(test_answer_framing),
		cmocka_unit_test(test_refresh_at),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
