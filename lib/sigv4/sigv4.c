/*
 * SigV4 signing (see sigv4.h). All text is produced through one sink that can
 * append to the caller's buffer, feed SHA-256, or both, so the canonical
 * request is hashed as it is generated and never needs a buffer of its own:
 * its size is bounded only by the caller's input. The derived key chain
 * (kSecret, kDate, kRegion, kService, kSigning) exists only inside
 * sign_hex() and is wiped there before every return.
 */
#include "sigv4/sigv4.h"

#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "base/mbedcompat.h"

#define ALGORITHM	"AWS4-HMAC-SHA256"
#define TERMINATOR	"aws4_request"
#define EMPTY_SHA256	\
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* "AWS4-HMAC-SHA256\n" DATETIME "\n" SCOPE "\n" HASH, with fields capped. */
#define STS_MAX		(sizeof(ALGORITHM) + SIGV4_DATETIME_LEN + 1 + 8 + \
			    2 * (1 + SIGV4_MAX_FIELD) + sizeof(TERMINATOR) + 1 + \
			    SIGV4_SIGNATURE_LEN + 1)
/* ACCESS_KEY_ID "/" DATE "/" REGION "/" SERVICE "/aws4_request" */
#define CREDENTIAL_MAX	(SIGV4_MAX_FIELD + 1 + 8 + 2 * (1 + SIGV4_MAX_FIELD) + \
			    sizeof(TERMINATOR) + 1)

static const char hexdigits[] = "0123456789abcdef";
static const char HEXDIGITS[] = "0123456789ABCDEF";

/*
 * Where text goes: out[0..cap) when out is set (len keeps counting past cap
 * so a failed pass reports the size needed), and a SHA-256 when sha is set.
 */
struct sink {
	char			*out;
	size_t			 cap;
	size_t			 len;
	mbedtls_sha256_context	*sha;
	int			 err;
};

static void
sink_init(struct sink *s, char *out, size_t cap, mbedtls_sha256_context *sha)
{
	s->out = out;
	s->cap = cap;
	s->len = 0;
	s->sha = sha;
	s->err = 0;
}

static void
put(struct sink *s, const void *p, size_t n)
{
	if (s->out != NULL && s->len < s->cap) {
		size_t room = s->cap - s->len;

		memcpy(s->out + s->len, p, n < room ? n : room);
	}
	s->len += n;
	if (s->sha != NULL && mbedcompat_sha256_update(s->sha, p, n) != 0)
		s->err = 1;
}

static void
put_str(struct sink *s, const char *str)
{
	put(s, str, strlen(str));
}

static void
put_char(struct sink *s, char c)
{
	put(s, &c, 1);
}

static bool
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	    c == '~';
}

static void
put_encoded(struct sink *s, const void *p, size_t n, bool keep_slash)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (unreserved(c[i]) || (keep_slash && c[i] == '/')) {
			put_char(s, (char)c[i]);
		} else {
			char esc[3] = { '%', HEXDIGITS[c[i] >> 4],
			    HEXDIGITS[c[i] & 15] };

			put(s, esc, sizeof(esc));
		}
	}
}

static void
put_hex(struct sink *s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char h[2] = { hexdigits[p[i] >> 4], hexdigits[p[i] & 15] };

		put(s, h, sizeof(h));
	}
}

/* NUL-terminate and settle the status of a pass that wrote into out. */
static enum sigv4_status
sink_finish(struct sink *s, size_t *len)
{
	if (len != NULL)
		*len = s->len;
	if (s->err)
		return SIGV4_CRYPTO;
	if (s->out == NULL || s->len >= s->cap) {
		if (s->out != NULL && s->cap > 0)
			s->out[0] = '\0';
		return SIGV4_NO_SPACE;
	}
	s->out[s->len] = '\0';
	return SIGV4_OK;
}

/*
 * Days since 1970-01-01 to a Gregorian date. Counting from 0000-03-01 in
 * 400-year eras puts February last, so leap days fall at the end of a year.
 */
static void
civil_from_days(int64_t days, int *y, int *m, int *d)
{
	int64_t z = days + 719468;		/* days since 0000-03-01 */
	int64_t era = z / 146097;		/* z >= 0: time is checked */
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;	/* 0 = March */

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static void
put_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

enum sigv4_status
sigv4_datetime(char out[SIGV4_DATETIME_LEN + 1], int64_t when)
{
	int y, mo, d;
	int64_t sec;

	if (when < 0 || when > SIGV4_TIME_MAX) {
		out[0] = '\0';
		return SIGV4_INVALID;
	}
	civil_from_days(when / 86400, &y, &mo, &d);
	sec = when % 86400;
	put_digits(out, y, 4);
	put_digits(out + 4, mo, 2);
	put_digits(out + 6, d, 2);
	out[8] = 'T';
	put_digits(out + 9, (int)(sec / 3600), 2);
	put_digits(out + 11, (int)(sec / 60 % 60), 2);
	put_digits(out + 13, (int)(sec % 60), 2);
	out[15] = 'Z';
	out[16] = '\0';
	return SIGV4_OK;
}

enum sigv4_status
sigv4_uri_encode(char *out, size_t cap, const void *s, size_t n,
    bool keep_slash, size_t *len)
{
	struct sink k;

	sink_init(&k, out, cap, NULL);
	put_encoded(&k, s, n, keep_slash);
	return sink_finish(&k, len);
}

/* 1..max bytes, printable ASCII without space, plus no '/' (scope fields). */
static bool
field_ok(const char *s, size_t max, bool slash_ok)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || (!slash_ok && s[i] == '/'))
			return false;
	return true;
}

static bool
is_hex64(const char *s)
{
	if (strlen(s) != SIGV4_SIGNATURE_LEN)
		return false;
	for (size_t i = 0; i < SIGV4_SIGNATURE_LEN; i++)
		if (strchr(hexdigits, s[i]) == NULL)	/* no NUL: strlen is 64 */
			return false;
	return true;
}

static bool
request_ok(const struct sigv4_request *r)
{
	if (r == NULL || !field_ok(r->method, SIGV4_MAX_FIELD, false) ||
	    r->path == NULL || r->path[0] != '/' ||
	    !field_ok(r->region, SIGV4_MAX_FIELD, false) ||
	    !field_ok(r->service, SIGV4_MAX_FIELD, false) ||
	    r->time < 0 || r->time > SIGV4_TIME_MAX ||
	    r->nquery > SIGV4_MAX_PARAMS || r->nheaders > SIGV4_MAX_HEADERS ||
	    (r->nquery > 0 && r->query == NULL) ||
	    (r->nheaders > 0 && r->headers == NULL) ||
	    (r->payload_hash != NULL && !is_hex64(r->payload_hash)))
		return false;
	for (size_t i = 0; i < r->nquery; i++)
		if (r->query[i].name == NULL || r->query[i].value == NULL)
			return false;
	for (size_t i = 0; i < r->nheaders; i++)
		if (!field_ok(r->headers[i].name, SIGV4_MAX_FIELD, false) ||
		    r->headers[i].value == NULL)
			return false;
	return true;
}

/*
 * Order of two raw strings by their URI-encoded forms, without encoding them.
 * Up to the first differing byte the encodings agree. There, an encoded byte
 * starts with '%' (0x25), which sorts below every unreserved character; two
 * encoded bytes compare by their uppercase hex, that is by value.
 */
static int
encoded_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a;
	const unsigned char *y = (const unsigned char *)b;
	int ex, ey;

	while (*x != '\0' && *x == *y) {
		x++;
		y++;
	}
	if (*x == '\0' || *y == '\0')
		return (*x != '\0') - (*y != '\0');
	ex = unreserved(*x) ? *x : '%';
	ey = unreserved(*y) ? *y : '%';
	if (ex != ey)
		return ex - ey;
	return *x - *y;
}

static int
param_cmp(const struct sigv4_pair *a, const struct sigv4_pair *b)
{
	int c = encoded_cmp(a->name, b->name);

	return c != 0 ? c : encoded_cmp(a->value, b->value);
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
name_cmp(const char *a, const char *b)
{
	while (*a != '\0' && lower(*a) == lower(*b)) {
		a++;
		b++;
	}
	return lower((unsigned char)*a) - lower((unsigned char)*b);
}

/* Stable insertion sort of indices: headers of one name keep their order. */
static void
sort_pairs(const struct sigv4_pair *p, size_t n, size_t *idx,
    int (*cmp)(const struct sigv4_pair *, const struct sigv4_pair *))
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		while (j > 0 && cmp(&p[idx[j - 1]], &p[i]) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
}

static int
header_cmp(const struct sigv4_pair *a, const struct sigv4_pair *b)
{
	return name_cmp(a->name, b->name);
}

static void
put_query(struct sink *s, const struct sigv4_pair *q, size_t n)
{
	size_t idx[SIGV4_MAX_PARAMS];

	sort_pairs(q, n, idx, param_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct sigv4_pair *p = &q[idx[i]];

		if (i > 0)
			put_char(s, '&');
		put_encoded(s, p->name, strlen(p->name), false);
		put_char(s, '=');
		put_encoded(s, p->value, strlen(p->value), false);
	}
}

static void
put_lower(struct sink *s, const char *str)
{
	for (; *str != '\0'; str++)
		put_char(s, (char)lower((unsigned char)*str));
}

static bool
space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/* Trimall: no white space at either end, one space between words. */
static void
put_trimmed(struct sink *s, const char *v)
{
	bool first = true;

	for (;;) {
		size_t n;

		while (space(*v))
			v++;
		if (*v == '\0')
			break;
		for (n = 0; v[n] != '\0' && !space(v[n]); n++)
			;
		if (!first)
			put_char(s, ' ');
		put(s, v, n);
		v += n;
		first = false;
	}
}

static void
put_canonical_request(struct sink *s, const struct sigv4_request *r)
{
	size_t idx[SIGV4_MAX_HEADERS];
	const struct sigv4_pair *h = r->headers;

	put_str(s, r->method);
	put_char(s, '\n');
	put_encoded(s, r->path, strlen(r->path), true);
	put_char(s, '\n');
	put_query(s, r->query, r->nquery);
	put_char(s, '\n');

	sort_pairs(h, r->nheaders, idx, header_cmp);
	for (size_t i = 0; i < r->nheaders; i++) {
		bool same = i > 0 &&
		    name_cmp(h[idx[i - 1]].name, h[idx[i]].name) == 0;

		if (same) {
			put_char(s, ',');
		} else {
			if (i > 0)
				put_char(s, '\n');
			put_lower(s, h[idx[i]].name);
			put_char(s, ':');
		}
		put_trimmed(s, h[idx[i]].value);
	}
	put_str(s, "\n\n");
	for (size_t i = 0; i < r->nheaders; i++) {
		if (i > 0 && name_cmp(h[idx[i - 1]].name, h[idx[i]].name) == 0)
			continue;
		if (i > 0)
			put_char(s, ';');
		put_lower(s, h[idx[i]].name);
	}
	put_char(s, '\n');
	put_str(s, r->payload_hash != NULL ? r->payload_hash : EMPTY_SHA256);
}

enum sigv4_status
sigv4_canonical_request(char *out, size_t cap, const struct sigv4_request *req,
    size_t *len)
{
	struct sink s;

	if (!request_ok(req))
		return SIGV4_INVALID;
	sink_init(&s, out, cap, NULL);
	put_canonical_request(&s, req);
	return sink_finish(&s, len);
}

static void
put_string_to_sign(struct sink *s, const struct sigv4_request *r,
    const unsigned char hash[32])
{
	char dt[SIGV4_DATETIME_LEN + 1];

	(void)sigv4_datetime(dt, r->time);	/* request_ok() checked time */
	put_str(s, ALGORITHM "\n");
	put_str(s, dt);
	put_char(s, '\n');
	put(s, dt, 8);
	put_char(s, '/');
	put_str(s, r->region);
	put_char(s, '/');
	put_str(s, r->service);
	put_str(s, "/" TERMINATOR "\n");
	put_hex(s, hash, 32);
}

/* SHA-256 of the canonical request, streamed: it is never stored. */
static enum sigv4_status
hash_canonical_request(const struct sigv4_request *r, unsigned char hash[32])
{
	mbedtls_sha256_context sha;
	struct sink s;
	enum sigv4_status st = SIGV4_CRYPTO;

	mbedtls_sha256_init(&sha);
	if (mbedcompat_sha256_starts(&sha) != 0)
		goto fail;
	sink_init(&s, NULL, 0, &sha);
	put_canonical_request(&s, r);
	if (s.err || mbedcompat_sha256_finish(&sha, hash) != 0)
		goto fail;
	st = SIGV4_OK;
fail:
	mbedtls_sha256_free(&sha);
	return st;
}

enum sigv4_status
sigv4_string_to_sign(char *out, size_t cap, const struct sigv4_request *req,
    size_t *len)
{
	unsigned char hash[32];
	struct sink s;
	enum sigv4_status st;

	if (!request_ok(req))
		return SIGV4_INVALID;
	if ((st = hash_canonical_request(req, hash)) != SIGV4_OK)
		return st;
	sink_init(&s, out, cap, NULL);
	put_string_to_sign(&s, req, hash);
	return sink_finish(&s, len);
}

static int
hmac(const unsigned char *key, size_t keylen, const void *msg, size_t n,
    unsigned char out[32])
{
	return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
	    key, keylen, msg, n, out);
}

/*
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request"), then the hex HMAC of the string to sign under it. One
 * buffer is reused along the chain so a single wipe covers every key.
 */
static enum sigv4_status
sign_hex(char out[SIGV4_SIGNATURE_LEN + 1], const struct sigv4_request *r,
    const char *secret, const char *sts, size_t stslen)
{
	unsigned char ksecret[4 + SIGV4_MAX_FIELD];
	unsigned char k[32], sig[32];
	size_t n = strlen(secret);
	struct sink s;
	enum sigv4_status st = SIGV4_CRYPTO;
	char dt[SIGV4_DATETIME_LEN + 1];

	(void)sigv4_datetime(dt, r->time);
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, n);
	if (hmac(ksecret, 4 + n, dt, 8, k) != 0 ||
	    hmac(k, sizeof(k), r->region, strlen(r->region), k) != 0 ||
	    hmac(k, sizeof(k), r->service, strlen(r->service), k) != 0 ||
	    hmac(k, sizeof(k), TERMINATOR, strlen(TERMINATOR), k) != 0 ||
	    hmac(k, sizeof(k), sts, stslen, sig) != 0)
		goto fail;
	sink_init(&s, out, SIGV4_SIGNATURE_LEN + 1, NULL);
	put_hex(&s, sig, sizeof(sig));
	st = sink_finish(&s, NULL);
fail:
	mbedtls_platform_zeroize(ksecret, sizeof(ksecret));
	mbedtls_platform_zeroize(k, sizeof(k));
	mbedtls_platform_zeroize(sig, sizeof(sig));
	if (st != SIGV4_OK)
		out[0] = '\0';
	return st;
}

static bool
creds_ok(const struct sigv4_creds *c)
{
	return c != NULL && field_ok(c->access_key_id, SIGV4_MAX_FIELD, false) &&
	    c->secret_access_key != NULL &&
	    strlen(c->secret_access_key) <= SIGV4_MAX_FIELD &&
	    c->secret_access_key[0] != '\0';
}

enum sigv4_status
sigv4_signature(char out[SIGV4_SIGNATURE_LEN + 1],
    const struct sigv4_request *req, const struct sigv4_creds *creds)
{
	char sts[STS_MAX];
	size_t len;
	enum sigv4_status st;

	out[0] = '\0';
	if (!creds_ok(creds))
		return SIGV4_INVALID;
	st = sigv4_string_to_sign(sts, sizeof(sts), req, &len);
	if (st == SIGV4_OK)
		st = sign_hex(out, req, creds->secret_access_key, sts, len);
	mbedtls_platform_zeroize(sts, sizeof(sts));
	return st;
}

/* A lowercase DNS name: what we sign is what the Host header will carry. */
static bool
host_ok(const char *h)
{
	size_t n;

	if (h == NULL || (n = strlen(h)) == 0 || n > SIGV4_MAX_HOST)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') ||
		    (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.'))
			return false;
	return true;
}

enum sigv4_status
sigv4_presign(char *out, size_t cap, const struct sigv4_presign *p,
    size_t *len)
{
	char credential[CREDENTIAL_MAX], host[SIGV4_MAX_HOST + 7];
	char dt[SIGV4_DATETIME_LEN + 1], sig[SIGV4_SIGNATURE_LEN + 1];
	struct sigv4_pair query[4], header;
	struct sigv4_request req;
	struct sink s, c;
	const char *token;
	enum sigv4_status st;

	if (p == NULL || !host_ok(p->host) || !creds_ok(p->creds) ||
	    (p->path != NULL && p->path[0] != '/'))
		return SIGV4_INVALID;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = p->path != NULL ? p->path : SIGV4_IOT_PATH;
	req.region = p->region;
	req.service = p->service != NULL ? p->service : SIGV4_IOT_SERVICE;
	req.time = p->time;
	req.query = query;
	req.nquery = 4;
	req.headers = &header;
	req.nheaders = 1;
	/* The values are filled in below, once time and region are known good. */
	credential[0] = dt[0] = host[0] = '\0';
	query[0] = (struct sigv4_pair){ "X-Amz-Algorithm", ALGORITHM };
	query[1] = (struct sigv4_pair){ "X-Amz-Credential", credential };
	query[2] = (struct sigv4_pair){ "X-Amz-Date", dt };
	query[3] = (struct sigv4_pair){ "X-Amz-SignedHeaders", "host" };
	header = (struct sigv4_pair){ "host", host };
	if (!request_ok(&req))		/* region, service and time */
		return SIGV4_INVALID;

	(void)sigv4_datetime(dt, p->time);
	sink_init(&c, credential, sizeof(credential), NULL);
	put_str(&c, p->creds->access_key_id);
	put_char(&c, '/');
	put(&c, dt, 8);
	put_char(&c, '/');
	put_str(&c, req.region);
	put_char(&c, '/');
	put_str(&c, req.service);
	put_str(&c, "/" TERMINATOR);
	if (sink_finish(&c, NULL) != SIGV4_OK)
		return SIGV4_INVALID;	/* cannot happen with fields capped */

	sink_init(&c, host, sizeof(host), NULL);
	put_str(&c, p->host);
	if (p->port != 0 && p->port != 443) {
		char port[6];
		int n = 0;

		for (unsigned v = p->port; v > 0; v /= 10)
			n++;
		put_digits(port, p->port, n);
		put_char(&c, ':');
		put(&c, port, (size_t)n);
	}
	if (sink_finish(&c, NULL) != SIGV4_OK)
		return SIGV4_INVALID;

	if ((st = sigv4_signature(sig, &req, p->creds)) != SIGV4_OK)
		return st;

	sink_init(&s, out, cap, NULL);
	put_encoded(&s, req.path, strlen(req.path), true);
	put_char(&s, '?');
	put_query(&s, query, 4);
	put_str(&s, "&X-Amz-Signature=");
	put_str(&s, sig);
	/* AWS IoT checks the token after the signature, unsigned. */
	token = p->creds->session_token;
	if (token != NULL && token[0] != '\0') {
		put_str(&s, "&X-Amz-Security-Token=");
		put_encoded(&s, token, strlen(token), false);
	}
	return sink_finish(&s, len);
}

const char *
sigv4_strerror(enum sigv4_status st)
{
	switch (st) {
	case SIGV4_OK:
		return "success";
	case SIGV4_NO_SPACE:
		return "output buffer too small";
	case SIGV4_INVALID:
		return "invalid signing input";
	case SIGV4_CRYPTO:
		return "cryptographic operation failed";
	}
	return "unknown sigv4 status";
}
