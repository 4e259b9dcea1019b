/*
 * JSON (RFC 8259), both ways and without allocating. Writing: string
 * contents for what the daemon writes as JSON (the status of the control
 * socket, the dead-letter file, batches), escaped whatever the input holds.
 * Reading: a strict pull tokenizer over a caller's bounded buffer, which
 * answers "is this payload one valid JSON document" (batching) and reads
 * small documents member by member (the credentials provider's answer).
 *
 * The reader accepts exactly RFC 8259's grammar and nothing else: no byte
 * order mark, no comments, no single quotes, no trailing commas, no leading
 * zeros or '+' in numbers, no NaN or Infinity, no unescaped control
 * characters in strings, no \u escape of an unpaired UTF-16 surrogate, no
 * malformed UTF-8 (overlong forms, encoded surrogates, code points above
 * U+10FFFF), nothing but white space after the document. It does not look
 * for repeated member names (RFC 8259 leaves them to the application) and
 * does not limit the size of numbers (the accessors do). Nesting is limited
 * by the caller, at most JSON_MAX_DEPTH, so a reader never recurses and its
 * state is a fixed-size struct. Every failure has its own status and the
 * offset of the byte that proves it (the input's length when it ends too
 * early). Tokens are views into the caller's bytes, valid while those are.
 */
#ifndef IOTB_JSON_H
#define IOTB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nested arrays and objects a reader can track. */
#define JSON_MAX_DEPTH	512

enum json_status {
	JSON_OK = 0,
	JSON_END,		/* json_next(): the document is complete */
	JSON_EMPTY,		/* no value: nothing but white space */
	JSON_TRUNCATED,		/* the input ends inside the document */
	JSON_UNEXPECTED,	/* a byte that cannot come here (see below) */
	JSON_TRAILING,		/* more than white space after it */
	JSON_BAD_NUMBER,	/* leading zero, no digit after - . e */
	JSON_CONTROL,		/* unescaped U+0000..U+001F in a string */
	JSON_BAD_ESCAPE,	/* unknown escape, \u without 4 hex digits */
	JSON_SURROGATE,		/* \u escape of an unpaired surrogate */
	JSON_BAD_UTF8,		/* malformed UTF-8 in a string */
	JSON_TOO_DEEP,		/* nested deeper than allowed */
	JSON_NO_SPACE,		/* decoding: output too small */
	JSON_TYPE,		/* an accessor got a token of another type */
	JSON_RANGE,		/* not an integer of int64_t */
};

/*
 * JSON_UNEXPECTED covers every other grammar error: a missing or stray ','
 * or ':', a closing bracket of the wrong kind, a misspelt literal, a byte
 * that starts no value (a quote other than '"', '+', '.', a letter, any
 * byte of 0x80 and above outside a string, a byte order mark included).
 */

enum json_tok {
	JSON_T_OBJECT,		/* '{' */
	JSON_T_OBJECT_END,	/* '}' */
	JSON_T_ARRAY,		/* '[' */
	JSON_T_ARRAY_END,	/* ']' */
	JSON_T_KEY,		/* a member name, read with its ':' */
	JSON_T_STRING,
	JSON_T_NUMBER,
	JSON_T_TRUE,
	JSON_T_FALSE,
	JSON_T_NULL,
};

/*
 * One token. ptr/len: for JSON_T_KEY and JSON_T_STRING the text between the
 * quotes, still escaped (see json_string_decode()); for the others the
 * token's own bytes. off and end: the offsets of its first byte and just
 * past its last (a string's quotes included, a key's ':' not). depth: how
 * many arrays and objects enclose it; an opening and its closing token both
 * have the depth of what encloses them.
 */
struct json_token {
	enum json_tok	 type;
	const uint8_t	*ptr;
	size_t		 len;
	size_t		 off;
	size_t		 end;
	unsigned	 depth;
	bool		 escaped;	/* a string with a '\' in it */
};

/*
 * A reader: the caller owns it (about 100 bytes, fine on the stack) and
 * uses it through the functions below only. Nothing to release.
 */
struct json_reader {
	const uint8_t	*buf;
	size_t		 len;
	size_t		 pos;
	size_t		 err_off;
	enum json_status st;		/* sticky: JSON_OK while reading */
	unsigned	 depth;
	unsigned	 max_depth;
	uint8_t		 state;
	uint8_t		 objects[JSON_MAX_DEPTH / 8];	/* bit: {} */
};

/*
 * s[0..n) escaped as the inside of a JSON string (no quotes) into
 * out[0..cap), NUL-terminated when cap > 0 and cut short when it does not
 * fit, as snprintf() does. '"' and '\' are escaped, control characters and
 * DEL become \u00XX; so does every byte of 0x80 and above when s is not
 * well-formed UTF-8 (then read as Latin-1), so the output is always valid
 * JSON. Returns the length of the whole escaped text, without the NUL.
 */
size_t	json_escape(char *out, size_t cap, const void *s, size_t n);

/*
 * Start reading one document from buf[0..len) (borrowed: it must outlive
 * the reader and the tokens). max_depth: how deeply arrays and objects may
 * nest, 0 (scalars only) to JSON_MAX_DEPTH; larger values count as
 * JSON_MAX_DEPTH.
 */
void	json_reader_init(struct json_reader *r, const void *buf, size_t len,
	    unsigned max_depth);

/*
 * The next token into *t. Returns JSON_OK; JSON_END once the last token of
 * the document has been returned and nothing but white space follows it; or
 * the error that stops the document, with json_error_offset() saying where.
 * JSON_END and errors are sticky: later calls return them again. The whole
 * input is checked when JSON_END is returned, and not before: a caller that
 * stops early has checked only what it read.
 */
enum json_status json_next(struct json_reader *r, struct json_token *t);

/*
 * Read to the end of the value whose first token json_next() just returned
 * in *first: nothing for a scalar, up to the matching closing token for an
 * array or object. *end (may be NULL) gets the offset just past the value.
 * Returns JSON_OK, JSON_TYPE when *first starts no value (a key or a
 * closing token), or the error json_next() met.
 */
enum json_status json_skip(struct json_reader *r,
	    const struct json_token *first, size_t *end);

/* Where the error json_next() returned was found; 0 while there is none. */
size_t	json_error_offset(const struct json_reader *r);

/*
 * Whether buf[0..len) (borrowed, not kept) is exactly one JSON document with
 * at most max_depth levels of nesting. On JSON_OK, [*start, *end) is the
 * value without the white space around it; on failure both are the offset
 * of the error. start and end may be NULL. Returns JSON_OK, JSON_EMPTY, or
 * any error status of json_next().
 */
enum json_status json_validate(const void *buf, size_t len,
	    unsigned max_depth, size_t *start, size_t *end);

/*
 * The text of a JSON_T_KEY or JSON_T_STRING token, unescaped, as UTF-8 into
 * out[0..cap) followed by a NUL. *n gets the decoded length without the NUL
 * (which may hold U+0000 from a \u0000). Returns JSON_OK, JSON_NO_SPACE when
 * cap < *n + 1 (out then holds as much as fits, NUL-terminated when cap >
 * 0; out may be NULL when cap is 0, to learn *n), or JSON_TYPE.
 */
enum json_status json_string_decode(const struct json_token *t, void *out,
	    size_t cap, size_t *n);

/*
 * Whether a JSON_T_KEY or JSON_T_STRING token's unescaped text is exactly
 * the NUL-terminated s (false for any other token).
 */
bool	json_string_eq(const struct json_token *t, const char *s);

/*
 * A JSON_T_NUMBER token that is an integer (no fraction, no exponent) of
 * int64_t's range into *v. JSON_OK, JSON_RANGE, or JSON_TYPE.
 */
enum json_status json_number_i64(const struct json_token *t, int64_t *v);

/* Static English text for a status. */
const char *json_strerror(enum json_status st);

#endif
