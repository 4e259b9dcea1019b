/*
 * libFuzzer target for the AWS shared credentials file parser
 * (lib/creds/creds.c). The first byte's low four bits give the length of the
 * profile name that follows it (0: NULL, the default profile); the rest is
 * the file. Properties checked beyond "no crash":
 *  - a refusal leaves the struct zeroized and a message that fits its buffer,
 *    is printable ASCII, names a line that exists, and copies no run of 16
 *    base64 characters (a secret or token) from anywhere;
 *  - accepted values are in the file, within their bounds and alphabets, and
 *    read back the same from a minimal file of the same profile and through
 *    creds_from_values();
 *  - the parse is deterministic and does not depend on err being given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds/creds.h"
#include "fuzz.h"

#define INPUT_MAX	(64 * 1024)
#define SECRET_RUN	16	/* no message word is this long */

static int
base64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

static int
in_alphabet(const char *s, int key_id)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		int ok = key_id ? (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') : base64_char(c);

		if (!ok)
			return 0;
	}
	return 1;
}

static int
occurs(const uint8_t *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; m <= n && i <= n - m; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return m == 0;
}

static size_t
count_lines(const uint8_t *b, size_t n)
{
	size_t lines = 1;

	for (size_t i = 0; i < n; i++)
		if (b[i] == '\n' || (b[i] == '\r' && (i + 1 == n ||
		    b[i + 1] != '\n')))
			lines++;
	return lines;
}

static void
check_refusal(enum creds_status st, const struct creds *c,
    const struct creds_error *err, const uint8_t *file, size_t n)
{
	static const struct creds zero;
	size_t len = strnlen(err->msg, sizeof(err->msg)), run = 0;

	check(memcmp(c, &zero, sizeof(zero)) == 0);
	check(len > 0 && len + 1 < sizeof(err->msg));
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)err->msg[i];

		check(ch >= 0x20 && ch < 0x7f);
		run = base64_char(ch) ? run + 1 : 0;
		check(run < SECRET_RUN);
	}
	check(err->line <= count_lines(file, n));
	if (st == CREDS_NO_PROFILE)
		check(err->line == 0);
	if (st == CREDS_MALFORMED || st == CREDS_TOO_LONG ||
	    st == CREDS_INVALID)
		check(err->line >= 1);
}

static void
check_accepted(const struct creds *c, const struct creds_error *err,
    const char *profile, const uint8_t *file, size_t n)
{
	struct creds again;
	struct sigv4_creds sc;
	char *text;
	size_t cap, tlen;
	int w;

	check(err->line == 0 && err->msg[0] == '\0');
	check(c->access_key_id[0] != '\0' && c->secret_access_key[0] != '\0');
	check(strlen(c->access_key_id) <= CREDS_MAX_KEY_ID);
	check(strlen(c->secret_access_key) <= CREDS_MAX_SECRET);
	check(strlen(c->session_token) <= CREDS_MAX_TOKEN);
	check(in_alphabet(c->access_key_id, 1));
	check(in_alphabet(c->secret_access_key, 0));
	check(in_alphabet(c->session_token, 0));
	check(occurs(file, n, c->access_key_id));
	check(occurs(file, n, c->secret_access_key));
	check(occurs(file, n, c->session_token));
	creds_sigv4(c, &sc);
	check(sc.access_key_id == c->access_key_id);
	check(sc.session_token == (c->session_token[0] != '\0' ?
	    c->session_token : NULL));

	/* The same values from the environment. */
	check(creds_from_values(c->access_key_id, c->secret_access_key,
	    c->session_token, &again, NULL) == CREDS_OK);
	check(memcmp(c, &again, sizeof(again)) == 0);

	/* And from the smallest file that holds them. */
	if (profile == NULL)
		profile = CREDS_DEFAULT_PROFILE;
	cap = strlen(profile) + sizeof(*c) + 128;
	if ((text = malloc(cap)) == NULL)
		return;
	w = snprintf(text, cap, "[%s]\naws_access_key_id = %s\n"
	    "aws_secret_access_key = %s\naws_session_token = %s\n", profile,
	    c->access_key_id, c->secret_access_key, c->session_token);
	check(w > 0 && (size_t)w < cap);
	tlen = (size_t)w;
	check(creds_parse_file(text, tlen, profile, &again, NULL) == CREDS_OK);
	check(memcmp(c, &again, sizeof(again)) == 0);
	creds_clear(&again);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char profile[16];
	const char *prof = NULL;
	const uint8_t *file;
	size_t plen, n;
	struct creds c, c2;
	struct creds_error err;
	enum creds_status st;

	if (size == 0 || size > INPUT_MAX)
		return 0;
	plen = data[0] & 0x0f;
	if (plen > size - 1)
		plen = size - 1;
	if (plen > 0) {
		memcpy(profile, data + 1, plen);
		profile[plen] = '\0';
		prof = profile;
	}
	file = data + 1 + plen;
	n = size - 1 - plen;

	memset(&c, 0xa5, sizeof(c));
	memset(&err, 0xa5, sizeof(err));
	st = creds_parse_file(file, n, prof, &c, &err);
	check((unsigned)st <= CREDS_INVALID);
	check(strcmp(creds_strerror(st), "unknown status") != 0);
	/* The same without err, from a struct holding something else. */
	memset(&c2, 0x5a, sizeof(c2));
	check(creds_parse_file(file, n, prof, &c2, NULL) == st);
	check(memcmp(&c, &c2, sizeof(c)) == 0);
	if (st == CREDS_OK)
		check_accepted(&c, &err, prof, file, n);
	else
		check_refusal(st, &c, &err, file, n);
	creds_clear(&c);
	creds_clear(&c2);
	return 0;
}
