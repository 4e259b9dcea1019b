/*
 * JSON text: escaping for what the daemon writes, and a strict reader for
 * what it is given (see json.h).
 */
#include "base/json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/utf8.h"

static const char hex[] = "0123456789abcdef";

size_t
json_escape(char *out, size_t cap, const void *s, size_t n)
{
	const uint8_t *p = s;
	bool utf8 = utf8_check(p, n) == UTF8_OK;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		char e[6];
		size_t k;

		if (p[i] == '"' || p[i] == '\\') {
			e[0] = '\\';
			e[1] = (char)p[i];
			k = 2;
		} else if (p[i] < 0x20 || p[i] == 0x7f || (p[i] > 0x7f && !utf8)) {
			e[0] = '\\';
			e[1] = 'u';
			e[2] = '0';
			e[3] = '0';
			e[4] = hex[p[i] >> 4];
			e[5] = hex[p[i] & 0xf];
			k = 6;
		} else {
			e[0] = (char)p[i];
			k = 1;
		}
		for (size_t j = 0; j < k; j++, len++)
			if (len + 1 < cap)
				out[len] = e[j];
	}
	if (cap > 0)
		out[len < cap ? len : cap - 1] = '\0';
	return len;
}

/*
 * The reader is a state machine over RFC 8259's grammar, one token per call;
 * which kind of container each level is lives in a bit set, so nesting costs
 * one bit instead of a stack frame. A member name and its ':' are read as
 * one token, so the states only ever wait for a value, a name, or what
 * follows a value.
 */
enum json_state {
	JS_START,		/* before the document's value */
	JS_VALUE,		/* after ':' or an array's ',' */
	JS_ARRAY_FIRST,		/* after '[': a value or ']' */
	JS_OBJECT_FIRST,	/* after '{': a name or '}' */
	JS_KEY,			/* after an object's ',' */
	JS_AFTER,		/* after a value in a container */
	JS_DONE,		/* the document's value is complete */
};

static enum json_status
json_fail(struct json_reader *r, enum json_status st, size_t off)
{
	r->st = st;
	r->err_off = off;
	return st;
}

static bool
json_is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
json_skip_ws(struct json_reader *r)
{
	while (r->pos < r->len && json_is_ws(r->buf[r->pos]))
		r->pos++;
}

/* At the end of the input, JSON_TRUNCATED; else JSON_UNEXPECTED there. */
static enum json_status
json_bad_byte(struct json_reader *r, size_t at)
{
	return json_fail(r, at >= r->len ? JSON_TRUNCATED : JSON_UNEXPECTED,
	    at);
}

static bool
json_top_is_object(const struct json_reader *r)
{
	unsigned d = r->depth - 1;

	return (r->objects[d / 8] >> (d % 8)) & 1;
}

/* The token's kind, span and depth; the caller sets ptr/len for strings. */
static void
json_tok(struct json_reader *r, struct json_token *t, enum json_tok type,
    size_t off, size_t end)
{
	t->type = type;
	t->ptr = r->buf + off;
	t->len = end - off;
	t->off = off;
	t->end = end;
	t->depth = r->depth;
	t->escaped = false;
}

/* The state after a value ends (a scalar, or a closing bracket). */
static void
json_value_done(struct json_reader *r)
{
	r->state = r->depth == 0 ? JS_DONE : JS_AFTER;
}

static int
json_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * "\uXXXX" at p[0..n): its code unit, or -1 when the 4 digits are not all
 * hex (*bad: offset of the first that is not, from p), or -2 when the input
 * ends first.
 */
static long
json_u_escape(const uint8_t *p, size_t n, size_t *bad)
{
	long v = 0;

	for (size_t i = 2; i < 6; i++) {
		int h;

		if (i >= n)
			return -2;
		if ((h = json_hex(p[i])) < 0) {
			*bad = i;
			return -1;
		}
		v = v << 4 | h;
	}
	return v;
}

/*
 * Bytes of the UTF-8 sequence starting with lead byte p[0] (>= 0x80) at
 * p[0..n): 2 to 4; 0 when malformed (RFC 3629's table: no overlongs, no
 * surrogates, nothing above U+10FFFF); -1 when the input ends inside it
 * while what is there is still well-formed.
 */
static int
json_utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xBF;
	int need;

	if (c < 0xC2 || c > 0xF4)
		return 0;
	need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	for (int k = 1; k <= need; k++) {
		if ((size_t)k >= n)
			return -1;
		if (k == 1 ? p[1] < lo || p[1] > hi : (p[k] & 0xC0) != 0x80)
			return 0;
	}
	return need + 1;
}

/* A string whose '"' is at r->pos; the token is its contents. */
static enum json_status
json_string(struct json_reader *r, struct json_token *t, enum json_tok type)
{
	const uint8_t *b = r->buf;
	size_t start = r->pos, i = start + 1, n = r->len, bad = 0;
	bool escaped = false;

	for (;;) {
		uint8_t c;
		long u, lo;
		int k;

		/* The common case first: plain ASCII runs. */
		while (i < n && b[i] >= 0x20 && b[i] < 0x80 && b[i] != '"' &&
		    b[i] != '\\')
			i++;
		if (i >= n)
			return json_fail(r, JSON_TRUNCATED, n);
		c = b[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return json_fail(r, JSON_CONTROL, i);
		if (c >= 0x80) {
			if ((k = json_utf8_seq(b + i, n - i)) < 0)
				return json_fail(r, JSON_TRUNCATED, n);
			if (k == 0)
				return json_fail(r, JSON_BAD_UTF8, i);
			i += (size_t)k;
			continue;
		}
		escaped = true;
		if (i + 1 >= n)
			return json_fail(r, JSON_TRUNCATED, n);
		if (b[i + 1] != 'u') {
			if (strchr("\"\\/bfnrt", b[i + 1]) == NULL ||
			    b[i + 1] == '\0')
				return json_fail(r, JSON_BAD_ESCAPE, i);
			i += 2;
			continue;
		}
		if ((u = json_u_escape(b + i, n - i, &bad)) == -2)
			return json_fail(r, JSON_TRUNCATED, n);
		if (u == -1)
			return json_fail(r, JSON_BAD_ESCAPE, i);
		if (u >= 0xDC00 && u <= 0xDFFF)
			return json_fail(r, JSON_SURROGATE, i);
		if (u >= 0xD800 && u <= 0xDBFF) {
			/* Only a low surrogate's escape may follow. */
			if (i + 6 >= n || (b[i + 6] == '\\' && i + 7 >= n))
				return json_fail(r, JSON_TRUNCATED, n);
			if (b[i + 6] != '\\' || b[i + 7] != 'u')
				return json_fail(r, JSON_SURROGATE, i);
			if ((lo = json_u_escape(b + i + 6, n - i - 6, &bad)) ==
			    -2)
				return json_fail(r, JSON_TRUNCATED, n);
			if (lo == -1)
				return json_fail(r, JSON_BAD_ESCAPE, i + 6);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return json_fail(r, JSON_SURROGATE, i);
			i += 6;
		}
		i += 6;
	}
	json_tok(r, t, type, start, i + 1);
	t->ptr = b + start + 1;
	t->len = i - start - 1;
	t->escaped = escaped;
	r->pos = i + 1;
	return JSON_OK;
}

static size_t
json_digits(const uint8_t *b, size_t i, size_t n)
{
	while (i < n && b[i] >= '0' && b[i] <= '9')
		i++;
	return i;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? at r->pos. */
static enum json_status
json_number(struct json_reader *r, struct json_token *t)
{
	const uint8_t *b = r->buf;
	size_t start = r->pos, i = start, n = r->len;

	if (b[i] == '-')
		i++;
	if (i >= n)
		return json_fail(r, JSON_TRUNCATED, n);
	if (b[i] == '0') {
		if (++i < n && b[i] >= '0' && b[i] <= '9')
			return json_fail(r, JSON_BAD_NUMBER, i);
	} else if (b[i] >= '1' && b[i] <= '9') {
		i = json_digits(b, i, n);
	} else {
		return json_fail(r, JSON_BAD_NUMBER, i);
	}
	if (i < n && b[i] == '.') {
		if (++i >= n)
			return json_fail(r, JSON_TRUNCATED, n);
		if (b[i] < '0' || b[i] > '9')
			return json_fail(r, JSON_BAD_NUMBER, i);
		i = json_digits(b, i, n);
	}
	if (i < n && (b[i] == 'e' || b[i] == 'E')) {
		if (++i < n && (b[i] == '+' || b[i] == '-'))
			i++;
		if (i >= n)
			return json_fail(r, JSON_TRUNCATED, n);
		if (b[i] < '0' || b[i] > '9')
			return json_fail(r, JSON_BAD_NUMBER, i);
		i = json_digits(b, i, n);
	}
	json_tok(r, t, JSON_T_NUMBER, start, i);
	r->pos = i;
	json_value_done(r);
	return JSON_OK;
}

static enum json_status
json_literal(struct json_reader *r, struct json_token *t, const char *word,
    enum json_tok type)
{
	size_t start = r->pos;

	for (size_t k = 0; word[k] != '\0'; k++)
		if (start + k >= r->len ||
		    r->buf[start + k] != (uint8_t)word[k])
			return json_bad_byte(r, start + k);
	json_tok(r, t, type, start, start + strlen(word));
	r->pos = t->end;
	json_value_done(r);
	return JSON_OK;
}

static enum json_status
json_open(struct json_reader *r, struct json_token *t, bool object)
{
	unsigned d = r->depth;

	if (d >= r->max_depth)
		return json_fail(r, JSON_TOO_DEEP, r->pos);
	json_tok(r, t, object ? JSON_T_OBJECT : JSON_T_ARRAY, r->pos,
	    r->pos + 1);
	if (object)
		r->objects[d / 8] |= (uint8_t)(1u << (d % 8));
	else
		r->objects[d / 8] &= (uint8_t)~(1u << (d % 8));
	r->depth++;
	r->pos++;
	r->state = object ? JS_OBJECT_FIRST : JS_ARRAY_FIRST;
	return JSON_OK;
}

static enum json_status
json_close(struct json_reader *r, struct json_token *t, bool object)
{
	r->depth--;
	json_tok(r, t, object ? JSON_T_OBJECT_END : JSON_T_ARRAY_END, r->pos,
	    r->pos + 1);
	r->pos++;
	json_value_done(r);
	return JSON_OK;
}

static enum json_status
json_value(struct json_reader *r, struct json_token *t)
{
	enum json_status st;

	if (r->pos >= r->len)
		return json_fail(r, JSON_TRUNCATED, r->len);
	switch (r->buf[r->pos]) {
	case '{':
		return json_open(r, t, true);
	case '[':
		return json_open(r, t, false);
	case '"':
		if ((st = json_string(r, t, JSON_T_STRING)) == JSON_OK)
			json_value_done(r);
		return st;
	case 't':
		return json_literal(r, t, "true", JSON_T_TRUE);
	case 'f':
		return json_literal(r, t, "false", JSON_T_FALSE);
	case 'n':
		return json_literal(r, t, "null", JSON_T_NULL);
	default:
		if (r->buf[r->pos] == '-' ||
		    (r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9'))
			return json_number(r, t);
		return json_fail(r, JSON_UNEXPECTED, r->pos);
	}
}

/* A member name, white space, and its ':'. */
static enum json_status
json_key(struct json_reader *r, struct json_token *t)
{
	enum json_status st;

	if (r->pos >= r->len || r->buf[r->pos] != '"')
		return json_bad_byte(r, r->pos);
	if ((st = json_string(r, t, JSON_T_KEY)) != JSON_OK)
		return st;
	json_skip_ws(r);
	if (r->pos >= r->len || r->buf[r->pos] != ':')
		return json_bad_byte(r, r->pos);
	r->pos++;
	r->state = JS_VALUE;
	return JSON_OK;
}

void
json_reader_init(struct json_reader *r, const void *buf, size_t len,
    unsigned max_depth)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->max_depth = max_depth < JSON_MAX_DEPTH ? max_depth : JSON_MAX_DEPTH;
	r->state = JS_START;
}

enum json_status
json_next(struct json_reader *r, struct json_token *t)
{
	uint8_t c;

	if (r->st != JSON_OK)
		return r->st;
	json_skip_ws(r);
	switch (r->state) {
	case JS_START:
		if (r->pos >= r->len)
			return json_fail(r, JSON_EMPTY, r->pos);
		return json_value(r, t);
	case JS_VALUE:
		return json_value(r, t);
	case JS_ARRAY_FIRST:
		if (r->pos < r->len && r->buf[r->pos] == ']')
			return json_close(r, t, false);
		return json_value(r, t);
	case JS_OBJECT_FIRST:
		if (r->pos < r->len && r->buf[r->pos] == '}')
			return json_close(r, t, true);
		return json_key(r, t);
	case JS_KEY:
		return json_key(r, t);
	case JS_AFTER:
		if (r->pos >= r->len)
			return json_fail(r, JSON_TRUNCATED, r->len);
		c = r->buf[r->pos];
		if (c == ',') {
			r->pos++;
			json_skip_ws(r);
			if (json_top_is_object(r))
				return json_key(r, t);
			return json_value(r, t);
		}
		if (c == (json_top_is_object(r) ? '}' : ']'))
			return json_close(r, t, c == '}');
		return json_fail(r, JSON_UNEXPECTED, r->pos);
	default:
		if (r->pos < r->len)
			return json_fail(r, JSON_TRAILING, r->pos);
		r->st = JSON_END;
		return JSON_END;
	}
}

enum json_status
json_skip(struct json_reader *r, const struct json_token *first, size_t *end)
{
	struct json_token t;
	enum json_status st;
	enum json_tok close;

	switch (first->type) {
	case JSON_T_OBJECT:
		close = JSON_T_OBJECT_END;
		break;
	case JSON_T_ARRAY:
		close = JSON_T_ARRAY_END;
		break;
	case JSON_T_OBJECT_END:
	case JSON_T_ARRAY_END:
	case JSON_T_KEY:
		return JSON_TYPE;
	default:
		if (end != NULL)
			*end = first->end;
		return JSON_OK;
	}
	do {
		if ((st = json_next(r, &t)) != JSON_OK)
			return st == JSON_END ? JSON_TRUNCATED : st;
	} while (t.type != close || t.depth != first->depth);
	if (end != NULL)
		*end = t.end;
	return JSON_OK;
}

size_t
json_error_offset(const struct json_reader *r)
{
	return r->st == JSON_OK || r->st == JSON_END ? 0 : r->err_off;
}

enum json_status
json_validate(const void *buf, size_t len, unsigned max_depth, size_t *start,
    size_t *end)
{
	struct json_reader r;
	struct json_token t;
	enum json_status st;
	size_t s = 0, e = 0;

	json_reader_init(&r, buf, len, max_depth);
	if ((st = json_next(&r, &t)) == JSON_OK &&
	    (st = json_skip(&r, &t, &e)) == JSON_OK) {
		s = t.off;
		if ((st = json_next(&r, &t)) == JSON_END)
			st = JSON_OK;
	}
	if (st != JSON_OK)
		s = e = json_error_offset(&r);
	if (start != NULL)
		*start = s;
	if (end != NULL)
		*end = e;
	return st;
}

/*
 * One character of a string token's text at p (before end): its UTF-8 bytes
 * into u[0..*ulen). Returns the input bytes it took. The token was checked
 * by the reader, so escapes are well-formed and surrogates paired.
 */
static size_t
json_char(const uint8_t *p, const uint8_t *end, uint8_t u[4], size_t *ulen)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	size_t bad, used = 6;
	long cp;

	if (p[0] != '\\') {
		u[0] = p[0];
		*ulen = 1;
		return 1;
	}
	if (p[1] != 'u') {
		u[0] = (uint8_t)to[strchr(from, p[1]) - from];
		*ulen = 1;
		return 2;
	}
	cp = json_u_escape(p, (size_t)(end - p), &bad);
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		long lo = json_u_escape(p + 6, (size_t)(end - p - 6), &bad);

		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		used = 12;
	}
	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		*ulen = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xC0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3F));
		*ulen = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xE0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (uint8_t)(0x80 | (cp & 0x3F));
		*ulen = 3;
	} else {
		u[0] = (uint8_t)(0xF0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (uint8_t)(0x80 | (cp & 0x3F));
		*ulen = 4;
	}
	return used;
}

static bool
json_is_string(const struct json_token *t)
{
	return t->type == JSON_T_STRING || t->type == JSON_T_KEY;
}

enum json_status
json_string_decode(const struct json_token *t, void *out, size_t cap,
    size_t *n)
{
	const uint8_t *p, *end;
	uint8_t *o = out, u[4];
	size_t len = 0, ulen;

	*n = 0;
	if (!json_is_string(t))
		return JSON_TYPE;
	p = t->ptr;
	end = t->ptr + t->len;
	if (!t->escaped) {
		/* No escapes: the text is the token's bytes. */
		len = t->len;
		if (len < cap)
			memcpy(o, p, len);
		else if (cap > 0)
			memcpy(o, p, cap - 1);
	} else {
		while (p < end) {
			p += json_char(p, end, u, &ulen);
			for (size_t k = 0; k < ulen; k++, len++)
				if (len + 1 < cap)
					o[len] = u[k];
		}
	}
	*n = len;
	if (cap > 0)
		o[len < cap ? len : cap - 1] = '\0';
	return len < cap ? JSON_OK : JSON_NO_SPACE;
}

bool
json_string_eq(const struct json_token *t, const char *s)
{
	const uint8_t *p, *end, *want = (const uint8_t *)s;
	uint8_t u[4];
	size_t ulen;

	if (!json_is_string(t))
		return false;
	p = t->ptr;
	end = t->ptr + t->len;
	while (p < end) {
		p += json_char(p, end, u, &ulen);
		for (size_t k = 0; k < ulen; k++, want++)
			if (*want == '\0' || *want != u[k])
				return false;
	}
	return *want == '\0';
}

enum json_status
json_number_i64(const struct json_token *t, int64_t *v)
{
	const uint8_t *p = t->ptr;
	size_t i = 0;
	bool neg = false;
	uint64_t x = 0, lim;

	if (t->type != JSON_T_NUMBER)
		return JSON_TYPE;
	if (t->len > 0 && p[0] == '-') {
		neg = true;
		i++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (i == t->len)
		return JSON_RANGE;
	for (; i < t->len; i++) {
		unsigned d;

		if (p[i] < '0' || p[i] > '9')
			return JSON_RANGE;	/* a fraction, an exponent */
		d = p[i] - '0';
		if (x > (lim - d) / 10)
			return JSON_RANGE;
		x = x * 10 + d;
	}
	*v = neg ? (int64_t)(0 - x) : (int64_t)x;
	return JSON_OK;
}

const char *
json_strerror(enum json_status st)
{
	switch (st) {
	case JSON_OK:
		return "success";
	case JSON_END:
		return "end of the document";
	case JSON_EMPTY:
		return "no JSON value";
	case JSON_TRUNCATED:
		return "JSON document ends too early";
	case JSON_UNEXPECTED:
		return "unexpected character";
	case JSON_TRAILING:
		return "data after the JSON document";
	case JSON_BAD_NUMBER:
		return "malformed number";
	case JSON_CONTROL:
		return "unescaped control character in a string";
	case JSON_BAD_ESCAPE:
		return "invalid escape in a string";
	case JSON_SURROGATE:
		return "unpaired UTF-16 surrogate in a \\u escape";
	case JSON_BAD_UTF8:
		return "malformed UTF-8 in a string";
	case JSON_TOO_DEEP:
		return "JSON nested too deeply";
	case JSON_NO_SPACE:
		return "output buffer too small";
	case JSON_TYPE:
		return "JSON value of another type";
	case JSON_RANGE:
		return "number out of range";
	}
	return "unknown JSON status";
}
