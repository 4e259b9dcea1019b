#include "base/json.h"

#include <stdbool.h>
#include <stdint.h>

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
