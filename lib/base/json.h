/*
 * JSON string contents for what the daemon writes as JSON: the status of the
 * control socket, the dead-letter file. The input is whatever a device or
 * AWS sent (topics, error texts), so it is escaped whatever it holds.
 */
#ifndef IOTB_JSON_H
#define IOTB_JSON_H

#include <stddef.h>

/*
 * s[0..n) escaped as the inside of a JSON string (no quotes) into
 * out[0..cap), NUL-terminated when cap > 0 and cut short when it does not
 * fit, as snprintf() does. '"' and '\' are escaped, control characters and
 * DEL become \u00XX; so does every byte of 0x80 and above when s is not
 * well-formed UTF-8 (then read as Latin-1), so the output is always valid
 * JSON. Returns the length of the whole escaped text, without the NUL.
 */
size_t	json_escape(char *out, size_t cap, const void *s, size_t n);

#endif
