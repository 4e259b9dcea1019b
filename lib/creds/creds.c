/*
 * AWS credentials: one pass over a shared credentials file that follows
 * configparser's _read() line by line (Python 3.11; the comments below name
 * its variables), remembering where the four credential keys of the profile
 * and of [DEFAULT] are; then the values are resolved as botocore does,
 * validated and copied out. The file's bytes are only looked at, never
 * copied anywhere but into the caller's struct creds.
 */
#include "creds/creds.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "base/utf8.h"

_Static_assert(CREDS_MAX_KEY_ID <= SIGV4_MAX_FIELD,
    "lib/sigv4 refuses longer access key ids");
_Static_assert(CREDS_MAX_SECRET <= SIGV4_MAX_FIELD,
    "lib/sigv4 refuses longer secrets");

enum creds_key {
	CREDS_KEY_ID,
	CREDS_KEY_SECRET,
	CREDS_KEY_SECURITY_TOKEN,	/* botocore's older name, tried first */
	CREDS_KEY_SESSION_TOKEN,
	CREDS_NKEYS,
	CREDS_KEY_OTHER = CREDS_NKEYS,
};

static const char *const creds_key_names[CREDS_NKEYS] = {
	"aws_access_key_id",
	"aws_secret_access_key",
	"aws_security_token",
	"aws_session_token",
};

/* A run of the caller's bytes. */
struct creds_span {
	const uint8_t	*s;
	size_t		 len;
};

/* Where one credential key of the profile or of [DEFAULT] is. */
struct creds_slot {
	struct creds_span	 val;	/* trimmed first line of the value */
	size_t			 line;	/* 0: not in the file */
	size_t			 cont;	/* first line continuing it, or 0 */
};

enum creds_sect {
	CREDS_SECT_NONE,	/* before the first header: cursect is None */
	CREDS_SECT_PROFILE,
	CREDS_SECT_DEFAULT,
	CREDS_SECT_OTHER,
};

/* What configparser keeps between lines, reduced to what matters here. */
struct creds_scan {
	const char		*profile;
	size_t			 plen;
	enum creds_sect		 sect;
	size_t			 profile_line;	/* its header, 0: not yet */
	bool			 config_form;	/* [profile NAME] was seen */
	bool			 any_section;	/* a section, not DEFAULT */
	size_t			 default_nested; /* see creds_scan_line() */
	bool			 in_option;	/* optname is set */
	bool			 opt_empty;	/* and its value began empty */
	struct creds_slot	*opt_slot;	/* and it is one of ours */
	size_t			 indent;	/* indent_level */
	struct creds_slot	 prof[CREDS_NKEYS];
	struct creds_slot	 dflt[CREDS_NKEYS];
};

static enum creds_status creds_fail(struct creds_error *, enum creds_status,
    size_t, const char *, ...) __attribute__((format(printf, 4, 5)));

static enum creds_status
creds_fail(struct creds_error *err, enum creds_status st, size_t line,
    const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->line = line;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return st;
}

/*
 * Bytes of the white-space character at s[0..n), 0 if there is none. Python's
 * str.strip() and the \s of configparser's patterns take every character
 * whose str.isspace() is true, not only ASCII blanks; s is valid UTF-8.
 */
static size_t
creds_ws(const uint8_t *s, size_t n)
{
	if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) ||
	    (s[0] >= 0x1c && s[0] <= 0x20)))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;				/* U+0085, U+00A0 */
	if (n >= 3 && ((s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) ||
	    (s[0] == 0xe2 && s[1] == 0x80 && (s[2] <= 0x8a || s[2] == 0xa8 ||
	    s[2] == 0xa9 || s[2] == 0xaf)) ||
	    (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) ||
	    (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)))
		return 3;	/* U+1680 2000..200A 2028 2029 202F 205F 3000 */
	return 0;
}

/* Bytes of the white-space character that ends s[0..n), 0 if none. */
static size_t
creds_ws_end(const uint8_t *s, size_t n)
{
	/* In valid UTF-8, a lead byte 2 or 3 from the end starts the last. */
	if (n >= 3 && s[n - 3] >= 0xe0 && creds_ws(s + n - 3, 3) == 3)
		return 3;
	if (n >= 2 && s[n - 2] >= 0xc0 && creds_ws(s + n - 2, 2) == 2)
		return 2;
	if (n >= 1 && s[n - 1] < 0x80)
		return creds_ws(s + n - 1, 1);
	return 0;
}

static struct creds_span
creds_trim(struct creds_span sp)
{
	size_t w;

	while ((w = creds_ws(sp.s, sp.len)) > 0) {
		sp.s += w;
		sp.len -= w;
	}
	while ((w = creds_ws_end(sp.s, sp.len)) > 0)
		sp.len -= w;
	return sp;
}

/* Characters (not bytes) of leading white space: configparser's indent. */
static size_t
creds_indent(struct creds_span sp)
{
	size_t w, n = 0;

	while ((w = creds_ws(sp.s, sp.len)) > 0) {
		sp.s += w;
		sp.len -= w;
		n++;
	}
	return n;
}

/*
 * Next line of buf[*pos..len) without its end, which is "\n", "\r\n" or "\r"
 * as Python's universal newlines have it. false at the end of the buffer.
 */
static bool
creds_next_line(const uint8_t *buf, size_t len, size_t *pos,
    struct creds_span *line)
{
	size_t i = *pos;

	if (i >= len)
		return false;
	while (i < len && buf[i] != '\n' && buf[i] != '\r')
		i++;
	line->s = buf + *pos;
	line->len = i - *pos;
	if (i < len && buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
		i += 2;
	else if (i < len)
		i++;
	*pos = i;
	return true;
}

/* UTF-8 as Python's strict decoder wants it; U+0000 is a character there. */
static bool
creds_utf8(struct creds_span sp)
{
	const uint8_t *nul;

	while ((nul = memchr(sp.s, '\0', sp.len)) != NULL) {
		if (utf8_check(sp.s, (size_t)(nul - sp.s)) != UTF8_OK)
			return false;
		sp.len -= (size_t)(nul - sp.s) + 1;
		sp.s = nul + 1;
	}
	return utf8_check(sp.s, sp.len) == UTF8_OK;
}

static bool
creds_span_eq(struct creds_span sp, const char *s, size_t n)
{
	return sp.len == n && (n == 0 || memcmp(sp.s, s, n) == 0);
}

/*
 * Which credential key a key name is. configparser lowercases names with
 * str.lower(), which turns only one non-ASCII character into one of the
 * letters of our names: U+212A KELVIN SIGN into 'k'.
 */
static enum creds_key
creds_key_lookup(struct creds_span name)
{
	for (int k = 0; k < CREDS_NKEYS; k++) {
		const char *want = creds_key_names[k];
		size_t i = 0;

		for (; *want != '\0' && i < name.len; want++) {
			uint8_t c = name.s[i];

			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			if (c == (uint8_t)*want)
				i++;
			else if (*want == 'k' && name.len - i >= 3 &&
			    memcmp(name.s + i, "\xe2\x84\xaa", 3) == 0)
				i += 3;
			else
				break;
		}
		if (*want == '\0' && i == name.len)
			return (enum creds_key)k;
	}
	return CREDS_KEY_OTHER;
}

/*
 * An indented line under a key whose value is empty: botocore splits the
 * value with str.splitlines() (which also breaks at \v \f \x1c-\x1e U+0085
 * U+2028 U+2029) and refuses the file if a non-blank piece has no '='.
 */
static bool
creds_nested_ok(struct creds_span t)
{
	struct creds_span piece;
	size_t start = 0, i = 0;

	while (i <= t.len) {
		size_t w = 0;

		if (i == t.len)
			w = 1;
		else if (t.s[i] == 0x0b || t.s[i] == 0x0c ||
		    (t.s[i] >= 0x1c && t.s[i] <= 0x1e))
			w = 1;
		else if (t.len - i >= 2 && t.s[i] == 0xc2 && t.s[i + 1] == 0x85)
			w = 2;
		else if (t.len - i >= 3 && t.s[i] == 0xe2 &&
		    t.s[i + 1] == 0x80 && (t.s[i + 2] == 0xa8 ||
		    t.s[i + 2] == 0xa9))
			w = 3;
		if (w == 0) {
			i++;
			continue;
		}
		piece = creds_trim((struct creds_span){ t.s + start,
		    i - start });
		if (piece.len > 0 && memchr(piece.s, '=', piece.len) == NULL)
			return false;
		i += w;
		start = i;
	}
	return true;
}

/* "[NAME]": NAME runs from the first '[' to the last ']' (greedy .+). */
static enum creds_status
creds_header(struct creds_scan *sc, struct creds_span t, size_t lineno,
    struct creds_error *err)
{
	struct creds_span name;
	size_t r = t.len;

	while (r > 1 && t.s[r - 1] != ']')
		r--;
	if (r <= 1)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "section header without ']'");
	if (r == 2)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "empty section name");
	name.s = t.s + 1;
	name.len = r - 2;
	sc->in_option = false;
	if (creds_span_eq(name, "DEFAULT", 7)) {
		/* configparser's default_section: never a section itself. */
		sc->sect = CREDS_SECT_DEFAULT;
	} else if (creds_span_eq(name, sc->profile, sc->plen)) {
		sc->any_section = true;
		if (sc->profile_line != 0)
			return creds_fail(err, CREDS_MALFORMED, lineno,
			    "duplicate section (first on line %zu)",
			    sc->profile_line);
		sc->profile_line = lineno;
		sc->sect = CREDS_SECT_PROFILE;
	} else {
		sc->any_section = true;
		if (name.len == 8 + sc->plen &&
		    memcmp(name.s, "profile ", 8) == 0 &&
		    memcmp(name.s + 8, sc->profile, sc->plen) == 0)
			sc->config_form = true;
		sc->sect = CREDS_SECT_OTHER;
	}
	return CREDS_OK;
}

/* "key = value" or "key: value", split at the first '=' or ':'. */
static enum creds_status
creds_option(struct creds_scan *sc, struct creds_span t, size_t lineno,
    struct creds_error *err)
{
	struct creds_span name, val;
	struct creds_slot *slot;
	enum creds_key k;
	size_t d = 0;

	while (d < t.len && t.s[d] != '=' && t.s[d] != ':')
		d++;
	if (d == t.len)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "neither [section], key = value nor a comment");
	name = creds_trim((struct creds_span){ t.s, d });
	val = creds_trim((struct creds_span){ t.s + d + 1, t.len - d - 1 });
	if (name.len == 0)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "no key name before '%c'", t.s[d]);
	sc->in_option = true;
	sc->opt_empty = val.len == 0;
	sc->opt_slot = NULL;
	if ((k = creds_key_lookup(name)) == CREDS_KEY_OTHER ||
	    sc->sect == CREDS_SECT_OTHER)
		return CREDS_OK;
	slot = sc->sect == CREDS_SECT_PROFILE ? &sc->prof[k] : &sc->dflt[k];
	if (slot->line != 0)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "duplicate %s (first on line %zu)", creds_key_names[k],
		    slot->line);
	slot->val = val;
	slot->line = lineno;
	sc->opt_slot = slot;
	return CREDS_OK;
}

static enum creds_status
creds_nested_fail(struct creds_error *err, size_t lineno)
{
	return creds_fail(err, CREDS_MALFORMED, lineno,
	    "indented line under an empty value is not key = value");
}

static enum creds_status
creds_scan_line(struct creds_scan *sc, struct creds_span line, size_t lineno,
    struct creds_error *err)
{
	struct creds_span t;
	size_t indent;

	if (!creds_utf8(line))
		return creds_fail(err, CREDS_MALFORMED, lineno, "not UTF-8");
	t = creds_trim(line);
	/* Blank lines join a multi-line value; trailing ones are dropped. */
	if (t.len == 0 || t.s[0] == '#' || t.s[0] == ';')
		return CREDS_OK;
	indent = creds_indent(line);
	if (sc->in_option && indent > sc->indent) {
		/*
		 * botocore looks at nested values section by section, and
		 * sees those of [DEFAULT] only through the sections that do
		 * not set the key themselves: a bad one there counts only if
		 * the file has a section (whether every section overrides it
		 * is not looked for).
		 */
		if (sc->opt_empty && !creds_nested_ok(t)) {
			if (sc->sect != CREDS_SECT_DEFAULT)
				return creds_nested_fail(err, lineno);
			if (sc->default_nested == 0)
				sc->default_nested = lineno;
		}
		if (sc->opt_slot != NULL && sc->opt_slot->cont == 0)
			sc->opt_slot->cont = lineno;
		return CREDS_OK;
	}
	sc->indent = indent;
	if (t.s[0] == '[')
		return creds_header(sc, t, lineno, err);
	if (sc->sect == CREDS_SECT_NONE)
		return creds_fail(err, CREDS_MALFORMED, lineno,
		    "key before the first [section]");
	return creds_option(sc, t, lineno, err);
}

/*
 * Check a value against its bound and alphabet, naming it `name` in errors
 * (a key of the file, or a description for creds_from_values()).
 */
static enum creds_status
creds_check(const uint8_t *v, size_t len, size_t max, bool key_id,
    const char *name, size_t line, struct creds_error *err)
{
	const char *alphabet = key_id ? "A-Z 0-9" : "A-Z a-z 0-9 + / =";

	if (len > max)
		return creds_fail(err, CREDS_TOO_LONG, line,
		    "%s longer than %zu bytes", name, max);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = v[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!key_id)
			ok = ok || (c >= 'a' && c <= 'z') || c == '+' ||
			    c == '/' || c == '=';
		if (ok)
			continue;
		if (c == ' ' || c == '\t') {
			bool comment = memchr(v + i, '#', len - i) != NULL ||
			    memchr(v + i, ';', len - i) != NULL;

			return creds_fail(err, CREDS_INVALID, line,
			    "%s has a blank inside%s", name, comment ?
			    " (# and ; start a comment only at the start of "
			    "a line)" : "");
		}
		if (c < 0x20 || c == 0x7f)
			return creds_fail(err, CREDS_INVALID, line,
			    "%s has a control character", name);
		if (c == '"' || c == '\'')
			return creds_fail(err, CREDS_INVALID, line,
			    "%s has a quote (quotes are part of the value)",
			    name);
		if (c >= 0x80)
			return creds_fail(err, CREDS_INVALID, line,
			    "%s has a non-ASCII character", name);
		return creds_fail(err, CREDS_INVALID, line,
		    "%s has a character outside %s (character %zu)", name,
		    alphabet, i + 1);
	}
	return CREDS_OK;
}

/* A file value: one line only, then as any other value. */
static enum creds_status
creds_check_slot(const struct creds_slot *s, enum creds_key k, size_t max,
    struct creds_error *err)
{
	if (s->cont != 0)
		return creds_fail(err, CREDS_INVALID, s->cont,
		    "indented line continues %s", creds_key_names[k]);
	return creds_check(s->val.s, s->val.len, max, k == CREDS_KEY_ID,
	    creds_key_names[k], s->line, err);
}

static void
creds_copy(char *dst, struct creds_span v)
{
	if (v.len > 0)
		memcpy(dst, v.s, v.len);
	dst[v.len] = '\0';
}

/* Pick the values as botocore does and check them. */
static enum creds_status
creds_resolve(const struct creds_scan *sc, struct creds *out,
    struct creds_error *err)
{
	const struct creds_slot *s[CREDS_NKEYS];
	enum creds_status st;
	enum creds_key tk;

	if (sc->profile_line == 0)
		return creds_fail(err, CREDS_NO_PROFILE, 0, "%s",
		    sc->config_form ? "profile not found ([profile NAME] is "
		    "the form of ~/.aws/config, here it is [NAME])" :
		    "profile not found");
	/* The profile's keys, then those of [DEFAULT]. */
	for (int k = 0; k < CREDS_NKEYS; k++)
		s[k] = sc->prof[k].line != 0 ? &sc->prof[k] : &sc->dflt[k];
	for (int k = CREDS_KEY_ID; k <= CREDS_KEY_SECRET; k++) {
		if (s[k]->line == 0)
			return creds_fail(err, CREDS_INCOMPLETE,
			    sc->profile_line, "%s missing in the profile",
			    creds_key_names[k]);
		if (s[k]->val.len == 0 && s[k]->cont == 0)
			return creds_fail(err, CREDS_INCOMPLETE, s[k]->line,
			    "%s is empty", creds_key_names[k]);
	}
	if ((st = creds_check_slot(s[CREDS_KEY_ID], CREDS_KEY_ID,
	    CREDS_MAX_KEY_ID, err)) != CREDS_OK ||
	    (st = creds_check_slot(s[CREDS_KEY_SECRET], CREDS_KEY_SECRET,
	    CREDS_MAX_SECRET, err)) != CREDS_OK)
		return st;
	/* SharedCredentialProvider.TOKENS: the older name first. */
	tk = s[CREDS_KEY_SECURITY_TOKEN]->line != 0 ?
	    CREDS_KEY_SECURITY_TOKEN : CREDS_KEY_SESSION_TOKEN;
	if (s[tk]->line != 0 && (s[tk]->val.len > 0 || s[tk]->cont != 0) &&
	    (st = creds_check_slot(s[tk], tk, CREDS_MAX_TOKEN, err)) !=
	    CREDS_OK)
		return st;
	creds_copy(out->access_key_id, s[CREDS_KEY_ID]->val);
	creds_copy(out->secret_access_key, s[CREDS_KEY_SECRET]->val);
	creds_copy(out->session_token, s[tk]->val);
	return CREDS_OK;
}

enum creds_status
creds_parse_file(const void *buf, size_t len, const char *profile,
    struct creds *out, struct creds_error *err)
{
	const uint8_t *b = buf;
	struct creds_scan sc;
	struct creds_span line;
	enum creds_status st = CREDS_OK;
	size_t pos = 0, lineno = 0;

	creds_clear(out);
	if (err != NULL) {
		err->line = 0;
		err->msg[0] = '\0';
	}
	memset(&sc, 0, sizeof(sc));
	sc.profile = profile != NULL ? profile : CREDS_DEFAULT_PROFILE;
	sc.plen = strlen(sc.profile);
	if (len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (st == CREDS_OK && creds_next_line(b, len, &pos, &line))
		st = creds_scan_line(&sc, line, ++lineno, err);
	if (st == CREDS_OK && sc.default_nested != 0 && sc.any_section)
		st = creds_nested_fail(err, sc.default_nested);
	if (st == CREDS_OK)
		st = creds_resolve(&sc, out, err);
	if (st != CREDS_OK)
		creds_clear(out);
	return st;
}

enum creds_status
creds_from_values(const char *access_key_id, const char *secret_access_key,
    const char *session_token, struct creds *out, struct creds_error *err)
{
	static const char *const names[] = {
		"access key id", "secret access key", "session token",
	};
	static const size_t max[] = {
		CREDS_MAX_KEY_ID, CREDS_MAX_SECRET, CREDS_MAX_TOKEN,
	};
	const char *v[] = { access_key_id, secret_access_key, session_token };
	char *dst[] = { out->access_key_id, out->secret_access_key,
	    out->session_token };
	enum creds_status st = CREDS_OK;

	creds_clear(out);
	if (err != NULL) {
		err->line = 0;
		err->msg[0] = '\0';
	}
	for (int i = 0; i < 2 && st == CREDS_OK; i++)
		if (v[i] == NULL || v[i][0] == '\0')
			st = creds_fail(err, CREDS_INCOMPLETE, 0, "%s missing",
			    names[i]);
	for (int i = 0; i < 3 && st == CREDS_OK; i++) {
		/* Bounded: strlen of an unterminated string is not our bug. */
		size_t n = v[i] != NULL ? strnlen(v[i], max[i] + 1) : 0;

		st = creds_check((const uint8_t *)v[i], n, max[i], i == 0,
		    names[i], 0, err);
		if (st == CREDS_OK)
			creds_copy(dst[i],
			    (struct creds_span){ (const uint8_t *)v[i], n });
	}
	if (st != CREDS_OK)
		creds_clear(out);
	return st;
}

enum creds_status
creds_check_field(const struct creds *c, enum creds_field f, const char *name,
    struct creds_error *err)
{
	const char *v = f == CREDS_FIELD_KEY_ID ? c->access_key_id :
	    f == CREDS_FIELD_SECRET ? c->secret_access_key : c->session_token;
	size_t max = f == CREDS_FIELD_KEY_ID ? CREDS_MAX_KEY_ID :
	    f == CREDS_FIELD_SECRET ? CREDS_MAX_SECRET : CREDS_MAX_TOKEN;
	size_t n = strnlen(v, max + 1);

	if (err != NULL) {
		err->line = 0;
		err->msg[0] = '\0';
	}
	if (n == 0)
		return creds_fail(err, CREDS_INCOMPLETE, 0, "%s is empty", name);
	return creds_check((const uint8_t *)v, n, max, f == CREDS_FIELD_KEY_ID,
	    name, 0, err);
}

void
creds_sigv4(const struct creds *c, struct sigv4_creds *sc)
{
	sc->access_key_id = c->access_key_id;
	sc->secret_access_key = c->secret_access_key;
	sc->session_token = c->session_token[0] != '\0' ? c->session_token :
	    NULL;
}

void
creds_clear(struct creds *c)
{
	if (c != NULL)
		mbedtls_platform_zeroize(c, sizeof(*c));
}

const char *
creds_strerror(enum creds_status st)
{
	switch (st) {
	case CREDS_OK:
		return "success";
	case CREDS_NO_PROFILE:
		return "profile not found";
	case CREDS_INCOMPLETE:
		return "access key id or secret access key missing";
	case CREDS_MALFORMED:
		return "malformed credentials file";
	case CREDS_TOO_LONG:
		return "credential value too long";
	case CREDS_INVALID:
		return "invalid character in a credential value";
	}
	return "unknown status";
}
