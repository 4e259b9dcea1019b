/*
 * UTF-8 well-formedness as MQTT requires it of every string on the wire
 * (MQTT 3.1.1 section 1.5.3, MQTT 5.0 section 1.5.4): RFC 3629 encoding with no
 * overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF,
 * and no U+0000. Pure function over a caller's bytes; nothing is kept.
 */
#ifndef IOTB_UTF8_H
#define IOTB_UTF8_H

#include <stddef.h>
#include <stdint.h>

enum utf8_status {
	UTF8_OK = 0,
	UTF8_MALFORMED,		/* bad lead/continuation byte, overlong, truncated */
	UTF8_SURROGATE,		/* U+D800..U+DFFF encoded directly */
	UTF8_TOO_BIG,		/* above U+10FFFF */
	UTF8_NUL,		/* U+0000: MQTT forbids it in every string */
};

/* Check s[0..len). Returns the first problem found, UTF8_OK when there is none. */
enum utf8_status utf8_check(const uint8_t *s, size_t len);

/* Static English text for a status, for logs and error messages. */
const char *utf8_strerror(enum utf8_status st);

#endif
