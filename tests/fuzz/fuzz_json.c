/*
 * libFuzzer target for the JSON reader (lib/base/json.c). The first byte
 * picks the nesting limit, the rest is the document. Beyond not crashing:
 *  - json_validate() and a token-by-token read agree on the verdict and the
 *    offset, and the verdict does not change with the limit raised unless it
 *    was JSON_TOO_DEEP;
 *  - tokens lie inside the input, in order, at depths that match their
 *    brackets; strings decode to well-formed UTF-8 no longer than their
 *    escaped text, and compare equal to what they decode to;
 *  - the offset of a refusal is where it went wrong: the bytes before it
 *    begin a document (or are one, for trailing data and for a leading
 *    zero: "01");
 *  - an accepted value is accepted again on its own, and no document ending
 *    in a bracket or a quote is still one with its last byte cut.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/utf8.h"
#include "fuzz.h"

#define INPUT_MAX	(64 * 1024)
#define DECODE_MAX	INPUT_MAX

static uint8_t decoded[DECODE_MAX + 1];

/* UTF-8 as the decoder writes it: U+0000 is allowed (from \u0000). */
static int
utf8_with_nul(const uint8_t *s, size_t n)
{
	const uint8_t *nul;

	while ((nul = memchr(s, 0, n)) != NULL) {
		if (utf8_check(s, (size_t)(nul - s)) != UTF8_OK)
			return 0;
		n -= (size_t)(nul - s) + 1;
		s = nul + 1;
	}
	return utf8_check(s, n) == UTF8_OK;
}

static void
check_string(const struct json_token *t)
{
	size_t n = 0;

	check(json_string_decode(t, decoded, sizeof(decoded), &n) ==
	    JSON_OK);
	check(n <= t->len && decoded[n] == '\0');
	check(t->escaped || (n == t->len && memcmp(decoded, t->ptr, n) == 0));
	check(utf8_with_nul(decoded, n));
	if (memchr(decoded, 0, n) == NULL)
		check(json_string_eq(t, (const char *)decoded));
	if (n > 0) {
		size_t m;

		check(json_string_decode(t, NULL, 0, &m) == JSON_NO_SPACE &&
		    m == n);
	}
}

/* Read token by token; return the verdict and where it went wrong. */
static enum json_status
walk(const uint8_t *in, size_t len, unsigned depth, size_t *err)
{
	struct json_reader r;
	struct json_token t;
	enum json_status st;
	size_t last_end = 0;
	unsigned open = 0;

	json_reader_init(&r, in, len, depth);
	while ((st = json_next(&r, &t)) == JSON_OK) {
		check(t.off >= last_end && t.off < t.end && t.end <= len);
		check(t.ptr >= in && t.ptr + t.len <= in + t.end);
		last_end = t.end;
		sink += touch((struct buf_view){ t.ptr, t.len });
		switch (t.type) {
		case JSON_T_OBJECT:
		case JSON_T_ARRAY:
			check(t.depth == open && open < depth);
			open++;
			break;
		case JSON_T_OBJECT_END:
		case JSON_T_ARRAY_END:
			check(open > 0 && t.depth == open - 1);
			open--;
			break;
		case JSON_T_KEY:
		case JSON_T_STRING:
			check(t.depth == open);
			check(in[t.off] == '"' && in[t.end - 1] == '"');
			check_string(&t);
			break;
		case JSON_T_NUMBER: {
			int64_t v;
			enum json_status ns = json_number_i64(&t, &v);

			check(ns == JSON_OK || ns == JSON_RANGE);
			check(t.depth == open);
			break;
		}
		default:
			check(t.depth == open);
			break;
		}
	}
	*err = json_error_offset(&r);
	if (st == JSON_END)
		check(open == 0 && *err == 0);
	check(json_next(&r, &t) == st);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *in;
	unsigned depth;
	size_t len, s, e, werr;
	enum json_status st, ws, pre;

	if (size == 0 || size > INPUT_MAX)
		return 0;
	depth = data[0] % 20;
	in = data + 1;
	len = size - 1;

	st = json_validate(in, len, depth, &s, &e);
	check(st != JSON_END && st != JSON_NO_SPACE && st != JSON_TYPE &&
	    st != JSON_RANGE && (unsigned)st <= JSON_RANGE);
	check(strcmp(json_strerror(st), "unknown JSON status") != 0);
	ws = walk(in, len, depth, &werr);
	if (st == JSON_OK) {
		size_t s2, e2;

		check(ws == JSON_END);
		check(s < e && e <= len);
		check(json_validate(in + s, e - s, depth, &s2, &e2) ==
		    JSON_OK);
		check(s2 == 0 && e2 == e - s);
		if (in[e - 1] == ']' || in[e - 1] == '}' || in[e - 1] == '"')
			check(json_validate(in, e - 1, depth, NULL, NULL) ==
			    JSON_TRUNCATED);
		return 0;
	}
	check(ws == st && werr == s && s == e && s <= len);
	if (st != JSON_TOO_DEEP)
		check(json_validate(in, len, JSON_MAX_DEPTH, NULL, NULL) ==
		    st);
	pre = json_validate(in, s, depth, NULL, NULL);
	if (st == JSON_TRAILING)
		check(pre == JSON_OK);
	else if (st != JSON_EMPTY && st != JSON_TRUNCATED)
		check(pre == JSON_TRUNCATED || pre == JSON_EMPTY ||
		    (st == JSON_BAD_NUMBER && pre == JSON_OK));
	return 0;
}
