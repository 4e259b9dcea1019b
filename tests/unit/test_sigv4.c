/*
 * Unit tests for sigv4.c. The expected values come from botocore through
 * tests/data/sigv4/gen_vectors.py (vectors.h): AWS's published SigV4 examples
 * (get-vanilla, the IAM ListUsers example, two more from the test suite) and
 * AWS IoT presigned URLs for several endpoints, regions, ports and session
 * tokens. The published signatures are also spelled out here, so a
 * regenerated table cannot drift from AWS's documentation unnoticed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4/sigv4.h"

#include "tests/data/sigv4/vectors.h"

#define NVEC(a)	(sizeof(a) / sizeof((a)[0]))

static const struct sigv4_creds example_creds = {
	"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL
};

static struct sigv4_request
generic_request(const struct generic_vector *v)
{
	struct sigv4_request r;

	memset(&r, 0, sizeof(r));
	r.method = v->method;
	r.path = v->path;
	r.query = v->params;
	r.nquery = v->nparams;
	r.headers = v->headers;
	r.nheaders = v->nheaders;
	r.region = v->region;
	r.service = v->service;
	r.time = 1440938160;	/* 20150830T123600Z */
	return r;
}

static void
test_generic_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC(generic_vectors); i++) {
		const struct generic_vector *v = &generic_vectors[i];
		struct sigv4_request r = generic_request(v);
		char buf[1024], sig[SIGV4_SIGNATURE_LEN + 1];
		size_t len;

		print_message("vector %s\n", v->name);
		assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), &r,
		    &len), SIGV4_OK);
		assert_string_equal(buf, v->canonical_request);
		assert_int_equal(len, strlen(v->canonical_request));
		assert_int_equal(sigv4_string_to_sign(buf, sizeof(buf), &r,
		    &len), SIGV4_OK);
		assert_string_equal(buf, v->string_to_sign);
		assert_int_equal(sigv4_signature(sig, &r, &example_creds),
		    SIGV4_OK);
		assert_string_equal(sig, v->signature);
	}
}

static const char *
signature_of(const char *name)
{
	static char sig[SIGV4_SIGNATURE_LEN + 1];

	for (size_t i = 0; i < NVEC(generic_vectors); i++) {
		if (strcmp(generic_vectors[i].name, name) == 0) {
			struct sigv4_request r;

			r = generic_request(&generic_vectors[i]);
			assert_int_equal(sigv4_signature(sig, &r,
			    &example_creds), SIGV4_OK);
			return sig;
		}
	}
	fail_msg("no vector %s", name);
	return NULL;
}

/* The values AWS publishes, independent of the generated table. */
static void
test_published_signatures(void **state)
{
	(void)state;
	assert_string_equal(signature_of("get-vanilla"),
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	assert_string_equal(signature_of("get-vanilla-query-order-key-case"),
	    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	assert_string_equal(signature_of("iam-listusers"),
	    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static struct sigv4_presign
iot_presign(const struct iot_vector *v, struct sigv4_creds *c)
{
	struct sigv4_presign p;

	c->access_key_id = v->akid;
	c->secret_access_key = v->secret;
	c->session_token = v->token;
	memset(&p, 0, sizeof(p));
	p.host = v->host;
	p.port = v->port;
	p.region = v->region;
	p.time = v->epoch;
	p.creds = c;
	return p;
}

static void
test_iot_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC(iot_vectors); i++) {
		const struct iot_vector *v = &iot_vectors[i];
		struct sigv4_creds c;
		struct sigv4_presign p = iot_presign(v, &c);
		char buf[4096], url[4200];
		size_t len;

		print_message("iot vector %zu: %s:%u\n", i, v->host,
		    (unsigned)v->port);
		assert_int_equal(sigv4_presign(buf, sizeof(buf), &p, &len),
		    SIGV4_OK);
		assert_string_equal(buf, v->target);
		assert_int_equal(len, strlen(v->target));

		/* The URL as a browser would use it. */
		if (v->port == 443)
			snprintf(url, sizeof(url), "wss://%s%s", v->host, buf);
		else
			snprintf(url, sizeof(url), "wss://%s:%u%s", v->host,
			    (unsigned)v->port, buf);
		assert_string_equal(url, v->url);
	}
}

/* The generic pieces give the same intermediate values for the IoT form. */
static void
test_iot_vectors_generic(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVEC(iot_vectors); i++) {
		const struct iot_vector *v = &iot_vectors[i];
		char cred[256], host[300], date[SIGV4_DATETIME_LEN + 1];
		char buf[2048], sig[SIGV4_SIGNATURE_LEN + 1];
		struct sigv4_creds c = { v->akid, v->secret, v->token };
		struct sigv4_pair q[4], h[1];
		struct sigv4_request r;

		assert_int_equal(sigv4_datetime(date, v->epoch), SIGV4_OK);
		snprintf(cred, sizeof(cred),
		    "%s/%.8s/%s/iotdevicegateway/aws4_request", v->akid, date,
		    v->region);
		if (v->port == 443)
			snprintf(host, sizeof(host), "%s", v->host);
		else
			snprintf(host, sizeof(host), "%s:%u", v->host,
			    (unsigned)v->port);
		/* Out of order on purpose: the canonical form sorts them. */
		q[0] = (struct sigv4_pair){ "X-Amz-SignedHeaders", "host" };
		q[1] = (struct sigv4_pair){ "X-Amz-Date", date };
		q[2] = (struct sigv4_pair){ "X-Amz-Credential", cred };
		q[3] = (struct sigv4_pair){ "X-Amz-Algorithm",
		    "AWS4-HMAC-SHA256" };
		h[0] = (struct sigv4_pair){ "Host", host };
		memset(&r, 0, sizeof(r));
		r.method = "GET";
		r.path = "/mqtt";
		r.query = q;
		r.nquery = 4;
		r.headers = h;
		r.nheaders = 1;
		r.region = v->region;
		r.service = SIGV4_IOT_SERVICE;
		r.time = v->epoch;

		assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), &r,
		    NULL), SIGV4_OK);
		assert_string_equal(buf, v->canonical_request);
		assert_int_equal(sigv4_string_to_sign(buf, sizeof(buf), &r,
		    NULL), SIGV4_OK);
		assert_string_equal(buf, v->string_to_sign);
		assert_int_equal(sigv4_signature(sig, &r, &c), SIGV4_OK);
		assert_string_equal(sig, v->signature);
	}
}

static void
test_presign_no_space(void **state)
{
	const struct iot_vector *v = &iot_vectors[1];	/* with a token */
	size_t want = strlen(v->target);
	struct sigv4_creds c;
	struct sigv4_presign p = iot_presign(v, &c);
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(sigv4_presign(NULL, 0, &p, &len), SIGV4_NO_SPACE);
	assert_int_equal(len, want);
	buf = malloc(want + 1);
	assert_non_null(buf);
	for (size_t cap = 1; cap <= want; cap++) {
		len = 0;
		assert_int_equal(sigv4_presign(buf, cap, &p, &len),
		    SIGV4_NO_SPACE);
		assert_int_equal(len, want);
		assert_int_equal(buf[0], '\0');	/* never a truncated URL */
	}
	assert_int_equal(sigv4_presign(buf, want + 1, &p, &len), SIGV4_OK);
	assert_string_equal(buf, v->target);
	free(buf);
}

static void
test_presign_defaults(void **state)
{
	const struct iot_vector *v = &iot_vectors[0];	/* port 443 */
	struct sigv4_creds c;
	struct sigv4_presign p = iot_presign(v, &c);
	char a[1024], b[1024];

	(void)state;
	p.port = 0;
	assert_int_equal(sigv4_presign(a, sizeof(a), &p, NULL), SIGV4_OK);
	assert_string_equal(a, v->target);
	p.port = 443;
	p.service = SIGV4_IOT_SERVICE;
	p.path = SIGV4_IOT_PATH;
	assert_int_equal(sigv4_presign(b, sizeof(b), &p, NULL), SIGV4_OK);
	assert_string_equal(a, b);

	/* An empty session token is no session token. */
	c.session_token = "";
	assert_int_equal(sigv4_presign(b, sizeof(b), &p, NULL), SIGV4_OK);
	assert_string_equal(a, b);
	assert_null(strstr(b, "X-Amz-Security-Token"));

	/* The token is not signed: the signature does not change with it. */
	c.session_token = "tok";
	assert_int_equal(sigv4_presign(b, sizeof(b), &p, NULL), SIGV4_OK);
	assert_int_equal(strncmp(a, b, strlen(a)), 0);
	assert_string_equal(b + strlen(a), "&X-Amz-Security-Token=tok");
}

static void
test_presign_invalid(void **state)
{
	const struct iot_vector *v = &iot_vectors[0];
	char long_field[SIGV4_MAX_FIELD + 2];
	struct sigv4_creds c;
	struct sigv4_presign p;
	char buf[2048];

	(void)state;
	memset(long_field, 'a', sizeof(long_field) - 1);
	long_field[sizeof(long_field) - 1] = '\0';

#define INVALID(stmt) do {						\
	p = iot_presign(v, &c);						\
	stmt;								\
	assert_int_equal(sigv4_presign(buf, sizeof(buf), &p, NULL),	\
	    SIGV4_INVALID);						\
} while (0)
	INVALID(p.host = "Upper.example.com");
	INVALID(p.host = "a.example.com:443");
	INVALID(p.host = "a.example.com\r\nX: y");
	INVALID(p.host = "");
	INVALID(p.host = NULL);
	INVALID(p.region = "");
	INVALID(p.region = "eu/west");
	INVALID(p.region = NULL);
	INVALID(p.region = long_field);
	INVALID(p.service = "a b");
	INVALID(p.path = "mqtt");
	INVALID(p.time = -1);
	INVALID(p.time = SIGV4_TIME_MAX + 1);
	INVALID(p.creds = NULL);
	INVALID(c.access_key_id = "");
	INVALID(c.access_key_id = "AK/ID");
	INVALID(c.access_key_id = long_field);
	INVALID(c.secret_access_key = "");
	INVALID(c.secret_access_key = long_field);
	INVALID(c.secret_access_key = NULL);
#undef INVALID

	/* At the limits it still signs. */
	long_field[SIGV4_MAX_FIELD] = '\0';
	p = iot_presign(v, &c);
	c.access_key_id = long_field;
	c.secret_access_key = long_field;
	p.region = long_field;
	p.service = long_field;
	p.time = SIGV4_TIME_MAX;
	assert_int_equal(sigv4_presign(buf, sizeof(buf), &p, NULL), SIGV4_OK);
	assert_non_null(strstr(buf, "X-Amz-Date=99991231T235959Z"));
}

static void
test_generic_invalid(void **state)
{
	struct sigv4_request r = generic_request(&generic_vectors[0]);
	char buf[1024], sig[SIGV4_SIGNATURE_LEN + 1];

	(void)state;
	r.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), &r, NULL),
	    SIGV4_INVALID);
	r.payload_hash = "abc";
	assert_int_equal(sigv4_string_to_sign(buf, sizeof(buf), &r, NULL),
	    SIGV4_INVALID);
	r = generic_request(&generic_vectors[0]);
	r.nheaders = SIGV4_MAX_HEADERS + 1;
	assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), &r, NULL),
	    SIGV4_INVALID);
	r = generic_request(&generic_vectors[0]);
	r.path = "";
	assert_int_equal(sigv4_signature(sig, &r, &example_creds),
	    SIGV4_INVALID);
	assert_string_equal(sig, "");
	assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), NULL, NULL),
	    SIGV4_INVALID);
}

/* Sorted by encoded name: '%' sorts below every unreserved character. */
static void
test_query_order(void **state)
{
	const struct sigv4_pair q[] = {
		{ "a~", "1" }, { "a\xc3\xa9", "2" }, { "a-", "3" },
		{ "a\x7f", "4" }, { "a b", "5" }, { "A", "6" }, { "a-", "0" },
		{ "a", "" },
	};
	const struct sigv4_pair h[] = {
		{ "X-B", "2" }, { "x-a", " one  two " }, { "X-A", "\tthree" },
	};
	struct sigv4_request r;
	char buf[1024];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = "/a b/~c";
	r.query = q;
	r.nquery = NVEC(q);
	r.headers = h;
	r.nheaders = NVEC(h);
	r.region = "r";
	r.service = "s";
	assert_int_equal(sigv4_canonical_request(buf, sizeof(buf), &r, NULL),
	    SIGV4_OK);
	assert_string_equal(buf,
	    "GET\n"
	    "/a%20b/~c\n"
	    "A=6&a=&a%20b=5&a%7F=4&a%C3%A9=2&a-=0&a-=3&a~=1\n"
	    "x-a:one two,three\n"
	    "x-b:2\n"
	    "\n"
	    "x-a;x-b\n"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_datetime(void **state)
{
	static const struct {
		int64_t		 t;
		const char	*s;
	} cases[] = {
		{ 0, "19700101T000000Z" },
		{ 951782400, "20000229T000000Z" },
		{ 1440938160, "20150830T123600Z" },
		{ 1709164800, "20240229T000000Z" },
		{ 4107542400, "21000301T000000Z" },
		{ SIGV4_TIME_MAX, "99991231T235959Z" },
	};
	char out[SIGV4_DATETIME_LEN + 1];

	(void)state;
	for (size_t i = 0; i < NVEC(cases); i++) {
		assert_int_equal(sigv4_datetime(out, cases[i].t), SIGV4_OK);
		assert_string_equal(out, cases[i].s);
	}
	assert_int_equal(sigv4_datetime(out, -1), SIGV4_INVALID);
	assert_int_equal(sigv4_datetime(out, SIGV4_TIME_MAX + 1),
	    SIGV4_INVALID);
}

static void
test_uri_encode(void **state)
{
	const char raw[] = "AZaz09-_.~ /!*'()+=&%\x00\x7f\xc3\xa9";
	char out[128];
	size_t len;

	(void)state;
	assert_int_equal(sigv4_uri_encode(out, sizeof(out), raw,
	    sizeof(raw) - 1, false, &len), SIGV4_OK);
	assert_string_equal(out, "AZaz09-_.~%20%2F%21%2A%27%28%29%2B%3D%26%25"
	    "%00%7F%C3%A9");
	assert_int_equal(len, strlen(out));
	assert_int_equal(sigv4_uri_encode(out, sizeof(out), "/a/b c", 6, true,
	    NULL), SIGV4_OK);
	assert_string_equal(out, "/a/b%20c");
	assert_int_equal(sigv4_uri_encode(out, 3, "a b", 3, false, &len),
	    SIGV4_NO_SPACE);
	assert_int_equal(len, 5);
	assert_int_equal(sigv4_uri_encode(out, 1, "", 0, false, &len),
	    SIGV4_OK);
	assert_string_equal(out, "");
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(sigv4_strerror(SIGV4_OK), "success");
	assert_string_equal(sigv4_strerror(SIGV4_NO_SPACE),
	    "output buffer too small");
	assert_string_equal(sigv4_strerror((enum sigv4_status)99),
	    "unknown sigv4 status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generic_vectors),
		cmocka_unit_test(test_published_signatures),
		cmocka_unit_test(test_iot_vectors),
		cmocka_unit_test(test_iot_vectors_generic),
		cmocka_unit_test(test_presign_no_space),
		cmocka_unit_test(test_presign_defaults),
		cmocka_unit_test(test_presign_invalid),
		cmocka_unit_test(test_generic_invalid),
		cmocka_unit_test(test_query_order),
		cmocka_unit_test(test_datetime),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
