/*
 * Password file: parsing mosquitto_passwd's format into a sorted array of
 * entries, verifying a login against it, building and editing entry lines.
 * The file text is never kept: entries hold the decoded salt and hash, and
 * a copy of each user name. Derived keys live on the stack and are zeroized;
 * stored hashes are zeroized when the database is freed.
 */
#include "auth/passwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "base/mbedcompat.h"
#include "base/utf8.h"

enum passwd_kind {
	PASSWD_KIND_SHA512,	/* $6$: one round of SHA-512(password || salt) */
	PASSWD_KIND_PBKDF2,	/* $7$: PBKDF2-HMAC-SHA512 */
};

struct passwd_entry {
	char			*user;
	size_t			 ulen;
	unsigned		 line;
	enum passwd_kind	 kind;
	uint32_t		 iterations;	/* 1 for $6$ */
	size_t			 saltlen;
	uint8_t			 salt[PASSWD_SALT_MAX];
	uint8_t			 hash[PASSWD_HASH_LEN];
};

struct passwd_db {
	struct passwd_entry	*entries;	/* sorted by user name */
	size_t			 count;
	size_t			 cap;
	uint32_t		 max_iterations; /* cost of an unknown user */
};

/* A line of a text buffer: its bytes without "\n" or "\r\n". */
struct passwd_span {
	const char	*s;
	size_t		 len;
};

static bool
passwd_blank(char c)
{
	return c == ' ' || c == '\t';
}

static struct passwd_span
passwd_trim(struct passwd_span sp)
{
	while (sp.len > 0 && passwd_blank(sp.s[0])) {
		sp.s++;
		sp.len--;
	}
	while (sp.len > 0 && passwd_blank(sp.s[sp.len - 1]))
		sp.len--;
	return sp;
}

/* Next line of buf[*pos..len); false at the end of the buffer. */
static bool
passwd_next_line(const char *buf, size_t len, size_t *pos,
    struct passwd_span *line)
{
	const char *nl;

	if (*pos >= len)
		return false;
	line->s = buf + *pos;
	nl = memchr(line->s, '\n', len - *pos);
	line->len = nl != NULL ? (size_t)(nl - line->s) : len - *pos;
	*pos += line->len + (nl != NULL);
	if (line->len > 0 && line->s[line->len - 1] == '\r')
		line->len--;
	return true;
}

/* Comments and blank lines carry no entry; mosquitto skips them too. */
static bool
passwd_is_entry(struct passwd_span line)
{
	line = passwd_trim(line);
	return line.len > 0 && line.s[0] != '#';
}

/*
 * Split an entry line at its first ':' into the user name and the hash, both
 * trimmed. false when there is no ':'.
 */
static bool
passwd_split(struct passwd_span line, struct passwd_span *user,
    struct passwd_span *hash)
{
	const char *colon = memchr(line.s, ':', line.len);

	if (colon == NULL)
		return false;
	user->s = line.s;
	user->len = (size_t)(colon - line.s);
	*user = passwd_trim(*user);
	hash->s = colon + 1;
	hash->len = line.len - (size_t)(hash->s - line.s);
	*hash = passwd_trim(*hash);
	return true;
}

enum passwd_status
passwd_user_check(const char *user, size_t ulen)
{
	if (ulen == 0 || ulen > PASSWD_MAX_USER)
		return PASSWD_BAD_USER;
	if (utf8_check((const uint8_t *)user, ulen) != UTF8_OK)
		return PASSWD_BAD_USER;
	if (memchr(user, ':', ulen) != NULL || memchr(user, '\n', ulen) != NULL ||
	    memchr(user, '\r', ulen) != NULL)
		return PASSWD_BAD_USER;
	if (user[0] == '#' || passwd_blank(user[0]) ||
	    passwd_blank(user[ulen - 1]))
		return PASSWD_BAD_USER;
	return PASSWD_OK;
}

/*
 * Strict base64 as OpenSSL writes it for mosquitto: padded, no whitespace.
 * mbedTLS alone would also take embedded line breaks.
 */
static bool
passwd_b64_decode(struct passwd_span sp, uint8_t *out, size_t cap,
    size_t *outlen)
{
	size_t pad = 0;

	if (sp.len == 0 || sp.len % 4 != 0)
		return false;
	for (size_t i = 0; i < sp.len; i++) {
		char c = sp.s[i];

		if (c == '=') {
			if (i + 2 < sp.len)
				return false;
			pad++;
		} else if (pad > 0 || !((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return false;
	}
	return mbedtls_base64_decode(out, cap, outlen,
	    (const unsigned char *)sp.s, sp.len) == 0;
}

/* Split s at the next '$': the field before it, s advanced past it. */
static bool
passwd_field(struct passwd_span *s, struct passwd_span *field, bool last)
{
	const char *dollar = memchr(s->s, '$', s->len);

	if (last) {
		if (dollar != NULL)
			return false;
		*field = *s;
		s->len = 0;
		return true;
	}
	if (dollar == NULL)
		return false;
	field->s = s->s;
	field->len = (size_t)(dollar - s->s);
	s->len -= field->len + 1;
	s->s = dollar + 1;
	return true;
}

static bool
passwd_parse_uint(struct passwd_span sp, uint32_t *v)
{
	uint64_t n = 0;

	if (sp.len == 0 || sp.len > 10)
		return false;
	for (size_t i = 0; i < sp.len; i++) {
		if (sp.s[i] < '0' || sp.s[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(sp.s[i] - '0');
	}
	if (n > UINT32_MAX)
		return false;
	*v = (uint32_t)n;
	return true;
}

static enum passwd_status
passwd_fail(struct passwd_err *err, unsigned line, const char *msg)
{
	if (err != NULL) {
		err->line = line;
		snprintf(err->msg, sizeof(err->msg), "line %u: %s", line, msg);
	}
	return PASSWD_SYNTAX;
}

/* Parse the hash part of an entry ("$7$..." or "$6$...") into e. */
static const char *
passwd_parse_hash(struct passwd_span h, uint32_t max_iterations,
    struct passwd_entry *e)
{
	struct passwd_span f;
	size_t n;

	if (h.len == 0)
		return "empty password hash";
	if (h.len >= 3 && memcmp(h.s, "$7$", 3) == 0)
		e->kind = PASSWD_KIND_PBKDF2;
	else if (h.len >= 3 && memcmp(h.s, "$6$", 3) == 0)
		e->kind = PASSWD_KIND_SHA512;
	else
		return "unsupported hash (expected $7$ or $6$ as "
		    "mosquitto_passwd writes)";
	h.s += 3;
	h.len -= 3;
	e->iterations = 1;
	if (e->kind == PASSWD_KIND_PBKDF2) {
		if (!passwd_field(&h, &f, false))
			return "missing fields after $7$";
		if (!passwd_parse_uint(f, &e->iterations) || e->iterations == 0)
			return "bad iteration count";
		if (e->iterations > max_iterations)
			return "iteration count above the limit";
	}
	if (!passwd_field(&h, &f, false))
		return "missing hash after the salt";
	if (!passwd_b64_decode(f, e->salt, sizeof(e->salt), &e->saltlen) ||
	    e->saltlen < PASSWD_SALT_MIN)
		return "bad salt";
	if (!passwd_field(&h, &f, true))
		return "unexpected '$' after the hash";
	if (!passwd_b64_decode(f, e->hash, sizeof(e->hash), &n) ||
	    n != PASSWD_HASH_LEN)
		return "bad hash";
	return NULL;
}

static int
passwd_entry_cmp(const void *a, const void *b)
{
	const struct passwd_entry *x = a, *y = b;
	size_t n = x->ulen < y->ulen ? x->ulen : y->ulen;
	int c = memcmp(x->user, y->user, n);

	if (c != 0)
		return c;
	return (x->ulen > y->ulen) - (x->ulen < y->ulen);
}

static enum passwd_status
passwd_db_grow(struct passwd_db *db)
{
	struct passwd_entry *e;
	size_t cap = db->cap ? db->cap * 2 : 16;

	if (cap > SIZE_MAX / sizeof(*e))
		return PASSWD_NOMEM;
	if ((e = realloc(db->entries, cap * sizeof(*e))) == NULL)
		return PASSWD_NOMEM;
	db->entries = e;
	db->cap = cap;
	return PASSWD_OK;
}

enum passwd_status
passwd_db_parse_max(const char *buf, size_t len, uint32_t max_iterations,
    struct passwd_db **dbp, struct passwd_err *err)
{
	struct passwd_db *db;
	struct passwd_span line, user, hash;
	enum passwd_status st = PASSWD_NOMEM;
	size_t pos = 0;
	unsigned lineno = 0;
	const char *why;

	*dbp = NULL;
	if (max_iterations > PASSWD_MAX_ITERATIONS)
		max_iterations = PASSWD_MAX_ITERATIONS;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return PASSWD_NOMEM;
	while (passwd_next_line(buf, len, &pos, &line)) {
		struct passwd_entry *e;

		lineno++;
		if (!passwd_is_entry(line))
			continue;
		if (line.len > PASSWD_MAX_LINE) {
			st = passwd_fail(err, lineno, "line too long");
			goto fail;
		}
		if (!passwd_split(line, &user, &hash)) {
			st = passwd_fail(err, lineno, "missing ':' after the "
			    "user name");
			goto fail;
		}
		if (passwd_user_check(user.s, user.len) != PASSWD_OK) {
			st = passwd_fail(err, lineno, "bad user name");
			goto fail;
		}
		if (db->count == db->cap && passwd_db_grow(db) != PASSWD_OK)
			goto fail;
		e = &db->entries[db->count];
		memset(e, 0, sizeof(*e));
		if ((why = passwd_parse_hash(hash, max_iterations, e)) != NULL) {
			mbedtls_platform_zeroize(e, sizeof(*e));
			st = passwd_fail(err, lineno, why);
			goto fail;
		}
		if ((e->user = malloc(user.len)) == NULL)
			goto fail;
		memcpy(e->user, user.s, user.len);
		e->ulen = user.len;
		e->line = lineno;
		if (e->iterations > db->max_iterations)
			db->max_iterations = e->iterations;
		db->count++;
	}
	if (db->count > 1)
		qsort(db->entries, db->count, sizeof(*db->entries),
		    passwd_entry_cmp);
	for (size_t i = 1; i < db->count; i++) {
		const struct passwd_entry *a = &db->entries[i - 1];
		const struct passwd_entry *b = &db->entries[i];
		char msg[64];

		if (passwd_entry_cmp(a, b) != 0)
			continue;
		snprintf(msg, sizeof(msg), "duplicate user (first on line %u)",
		    a->line < b->line ? a->line : b->line);
		st = passwd_fail(err, a->line < b->line ? b->line : a->line,
		    msg);
		goto fail;
	}
	*dbp = db;
	return PASSWD_OK;
fail:
	passwd_db_free(db);
	return st;
}

enum passwd_status
passwd_db_parse(const char *buf, size_t len, struct passwd_db **dbp,
    struct passwd_err *err)
{
	return passwd_db_parse_max(buf, len, PASSWD_MAX_ITERATIONS, dbp, err);
}

void
passwd_db_free(struct passwd_db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->count; i++)
		free(db->entries[i].user);
	if (db->entries != NULL)
		mbedtls_platform_zeroize(db->entries,
		    db->cap * sizeof(*db->entries));
	free(db->entries);
	free(db);
}

size_t
passwd_db_count(const struct passwd_db *db)
{
	return db->count;
}

/* Derive the PASSWD_HASH_LEN-byte hash of pw for an entry's parameters. */
static enum passwd_status
passwd_derive(enum passwd_kind kind, uint32_t iterations, const uint8_t *salt,
    size_t saltlen, const void *pw, size_t pwlen, uint8_t *out)
{
	mbedtls_md_context_t md;
	int rc;

	if (kind == PASSWD_KIND_PBKDF2) {
		rc = mbedcompat_pbkdf2_sha512(pw, pwlen, salt, saltlen,
		    iterations, out, PASSWD_HASH_LEN);
		return rc == 0 ? PASSWD_OK : PASSWD_CRYPTO;
	}
	mbedtls_md_init(&md);
	if ((rc = mbedtls_md_setup(&md,
	    mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 0)) == 0 &&
	    (rc = mbedtls_md_starts(&md)) == 0 &&
	    (rc = mbedtls_md_update(&md, pw, pwlen)) == 0 &&
	    (rc = mbedtls_md_update(&md, salt, saltlen)) == 0)
		rc = mbedtls_md_finish(&md, out);
	mbedtls_md_free(&md);
	return rc == 0 ? PASSWD_OK : PASSWD_CRYPTO;
}

static const struct passwd_entry *
passwd_lookup(const struct passwd_db *db, const char *user, size_t ulen)
{
	struct passwd_entry key = { .user = (char *)(uintptr_t)user,
	    .ulen = ulen };

	if (db->count == 0)
		return NULL;
	return bsearch(&key, db->entries, db->count, sizeof(*db->entries),
	    passwd_entry_cmp);
}

enum passwd_status
passwd_db_verify(const struct passwd_db *db, const char *user, size_t ulen,
    const void *pw, size_t pwlen)
{
	static const uint8_t dummy_salt[PASSWD_SALT_LEN];
	const struct passwd_entry *e = passwd_lookup(db, user, ulen);
	uint8_t got[PASSWD_HASH_LEN];
	enum passwd_status st;

	if (e == NULL) {
		/* Burn the time a real entry would take; the result is unused. */
		st = passwd_derive(PASSWD_KIND_PBKDF2,
		    db->max_iterations ? db->max_iterations : 1, dummy_salt,
		    sizeof(dummy_salt), pw, pwlen, got);
		mbedtls_platform_zeroize(got, sizeof(got));
		return st == PASSWD_OK ? PASSWD_NO_USER : st;
	}
	st = passwd_derive(e->kind, e->iterations, e->salt, e->saltlen, pw,
	    pwlen, got);
	if (st == PASSWD_OK && mbedtls_ct_memcmp(got, e->hash, sizeof(got)) != 0)
		st = PASSWD_MISMATCH;
	mbedtls_platform_zeroize(got, sizeof(got));
	return st;
}

enum passwd_status
passwd_line_build(const char *user, size_t ulen, const void *pw, size_t pwlen,
    const uint8_t *salt, size_t saltlen, uint32_t iterations, char *out,
    size_t cap, size_t *outlen)
{
	/* Base64 of the largest field, plus the NUL mbedTLS writes. */
	char b64salt[(PASSWD_SALT_MAX + 2) / 3 * 4 + 1];
	char b64hash[(PASSWD_HASH_LEN + 2) / 3 * 4 + 1];
	uint8_t hash[PASSWD_HASH_LEN];
	size_t n;
	enum passwd_status st;
	int w;

	if (passwd_user_check(user, ulen) != PASSWD_OK)
		return PASSWD_BAD_USER;
	if (saltlen < PASSWD_SALT_MIN || saltlen > PASSWD_SALT_MAX ||
	    iterations == 0 || iterations > PASSWD_MAX_ITERATIONS)
		return PASSWD_INVALID;
	st = passwd_derive(PASSWD_KIND_PBKDF2, iterations, salt, saltlen, pw,
	    pwlen, hash);
	if (st != PASSWD_OK)
		goto done;
	if (mbedtls_base64_encode((unsigned char *)b64salt, sizeof(b64salt),
	    &n, salt, saltlen) != 0 ||
	    mbedtls_base64_encode((unsigned char *)b64hash, sizeof(b64hash),
	    &n, hash, sizeof(hash)) != 0) {
		st = PASSWD_CRYPTO;
		goto done;
	}
	w = snprintf(out, cap, "%.*s:$7$%lu$%s$%s", (int)ulen, user,
	    (unsigned long)iterations, b64salt, b64hash);
	if (w < 0 || (size_t)w >= cap) {
		st = PASSWD_NO_SPACE;
		goto done;
	}
	if (outlen != NULL)
		*outlen = (size_t)w;
done:
	mbedtls_platform_zeroize(hash, sizeof(hash));
	mbedtls_platform_zeroize(b64hash, sizeof(b64hash));
	return st;
}

/* Append a line and its '\n'; the caller sized the buffer for it. */
static void
passwd_put(char *out, size_t *n, const char *s, size_t len)
{
	memcpy(out + *n, s, len);
	*n += len;
	out[(*n)++] = '\n';
}

enum passwd_status
passwd_file_update(const char *buf, size_t len, const char *user, size_t ulen,
    const char *line, size_t linelen, char **out, size_t *outlen, bool *found)
{
	struct passwd_span l, u, h;
	size_t pos = 0, n = 0, lines = 0, cap;
	bool seen = false;
	char *o;

	*out = NULL;
	if (passwd_user_check(user, ulen) != PASSWD_OK)
		return PASSWD_BAD_USER;
	/* At most one '\n' per line is added, and one new line appended. */
	while (passwd_next_line(buf, len, &pos, &l))
		lines++;
	if (len > SIZE_MAX - lines - linelen - 2)
		return PASSWD_NOMEM;
	cap = len + lines + linelen + 2;
	if ((o = malloc(cap)) == NULL)
		return PASSWD_NOMEM;
	pos = 0;
	while (passwd_next_line(buf, len, &pos, &l)) {
		if (passwd_is_entry(l) && passwd_split(l, &u, &h) &&
		    u.len == ulen && memcmp(u.s, user, ulen) == 0) {
			/* The first entry is replaced, any duplicate dropped. */
			if (!seen && line != NULL)
				passwd_put(o, &n, line, linelen);
			seen = true;
			continue;
		}
		passwd_put(o, &n, l.s, l.len);
	}
	if (!seen && line != NULL)
		passwd_put(o, &n, line, linelen);
	o[n] = '\0';
	*out = o;
	if (outlen != NULL)
		*outlen = n;
	if (found != NULL)
		*found = seen;
	return PASSWD_OK;
}

const char *
passwd_strerror(enum passwd_status st)
{
	switch (st) {
	case PASSWD_OK:
		return "success";
	case PASSWD_NOMEM:
		return "out of memory";
	case PASSWD_SYNTAX:
		return "malformed password file";
	case PASSWD_BAD_USER:
		return "invalid user name";
	case PASSWD_INVALID:
		return "salt length or iteration count out of range";
	case PASSWD_NO_SPACE:
		return "output buffer too small";
	case PASSWD_NO_USER:
		return "unknown user";
	case PASSWD_MISMATCH:
		return "wrong password";
	case PASSWD_CRYPTO:
		return "cryptographic library failure";
	}
	return "unknown status";
}
