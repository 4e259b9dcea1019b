/*
 * UTF-8 validation for MQTT strings: a byte-at-a-time decoder that checks the
 * ranges of RFC 3629 table 3-7 directly, so overlongs and surrogates are caught
 * at the second byte without decoding the code point first.
 */
#include "base/utf8.h"

enum utf8_status
utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t need;
		uint8_t lo = 0x80, hi = 0xBF;	/* allowed range of the 2nd byte */

		if (c < 0x80) {
			if (c == 0)
				return UTF8_NUL;
			i++;
			continue;
		}
		if (c < 0xC2)			/* continuation byte or overlong 2-byte */
			return UTF8_MALFORMED;
		if (c < 0xE0) {
			need = 1;
		} else if (c < 0xF0) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;	/* overlong 3-byte */
			else if (c == 0xED)
				hi = 0x9F;	/* surrogates, checked below */
		} else if (c < 0xF5) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;	/* overlong 4-byte */
			else if (c == 0xF4)
				hi = 0x8F;	/* above U+10FFFF, checked below */
		} else {
			return c == 0xF5 || c == 0xF6 || c == 0xF7 ?
			    UTF8_TOO_BIG : UTF8_MALFORMED;
		}
		if (len - i <= need)
			return UTF8_MALFORMED;	/* truncated sequence */
		if (s[i + 1] < lo || s[i + 1] > hi) {
			if (c == 0xED && s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF)
				return UTF8_SURROGATE;
			if (c == 0xF4 && s[i + 1] >= 0x90 && s[i + 1] <= 0xBF)
				return UTF8_TOO_BIG;
			return UTF8_MALFORMED;
		}
		for (size_t k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return UTF8_MALFORMED;
		i += need + 1;
	}
	return UTF8_OK;
}

const char *
utf8_strerror(enum utf8_status st)
{
	switch (st) {
	case UTF8_OK:		return "valid UTF-8";
	case UTF8_MALFORMED:	return "malformed UTF-8";
	case UTF8_SURROGATE:	return "UTF-16 surrogate encoded in UTF-8";
	case UTF8_TOO_BIG:	return "code point above U+10FFFF";
	case UTF8_NUL:		return "U+0000 in string";
	}
	return "unknown UTF-8 status";
}
