/*
 * libFuzzer target for the AWS IoT credentials provider's answer
 * (lib/creds/iotcreds.c, over lib/ws/http.c and lib/base/json.c). The first
 * byte's bit 0 says the connection has ended (eof), bit 1 that the rest is a
 * body for iotcreds_parse_body() rather than a whole answer. Beyond not
 * crashing:
 *  - a failure leaves the struct zeroized and a printable message that fits
 *    its buffer and, unless it quotes the provider's refusal, copies no run
 *    of 16 base64 characters (a secret or token);
 *  - accepted credentials pass lib/creds' checks again (creds_from_values()
 *    gives the same struct);
 *  - a complete answer is complete in exactly its used bytes and not one
 *    byte sooner, and the verdict does not depend on err being given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds/iotcreds.h"
#include "fuzz.h"

#define INPUT_MAX	(32 * 1024)
#define SECRET_RUN	16

static int
base64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

static void
check_refusal(enum iotcreds_status st, const struct creds *c,
    const struct iotcreds_error *err)
{
	static const struct creds zero;
	size_t len = strnlen(err->msg, sizeof(err->msg)), run = 0;

	check(memcmp(c, &zero, sizeof(zero)) == 0);
	check(len + 1 <= sizeof(err->msg));
	check(st == IOTCREDS_NEED_MORE || len > 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)err->msg[i];

		check(ch >= 0x20 && ch < 0x7f);
		run = base64_char(ch) ? run + 1 : 0;
		check(st == IOTCREDS_REFUSED || run < SECRET_RUN);
	}
	if (st == IOTCREDS_REFUSED)
		check(err->http >= 100 && err->http <= 999 &&
		    err->http != 200);
}

static void
check_accepted(const struct creds *c, int64_t exp)
{
	struct creds again;

	check(c->access_key_id[0] != '\0' && c->secret_access_key[0] != '\0' &&
	    c->session_token[0] != '\0');
	check(creds_from_values(c->access_key_id, c->secret_access_key,
	    c->session_token, &again, NULL) == CREDS_OK);
	check(memcmp(c, &again, sizeof(again)) == 0);
	/* years 0000..9999, offsets of a day at most */
	check(exp > INT64_C(-62168000000) && exp < INT64_C(253403000000));
	creds_clear(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds c, c2;
	struct iotcreds_error err;
	enum iotcreds_status st;
	int64_t exp = 0, exp2 = 0;
	size_t used = 0, n;
	const uint8_t *in;
	int eof, body;

	if (size == 0 || size > INPUT_MAX)
		return 0;
	eof = data[0] & 1;
	body = data[0] & 2;
	in = data + 1;
	n = size - 1;

	memset(&c, 0xa5, sizeof(c));
	if (body)
		st = iotcreds_parse_body(in, n, &c, &exp, &err);
	else
		st = iotcreds_answer(in, n, eof, &c, &exp, &used, &err);
	check((unsigned)st <= IOTCREDS_INVALID && st != IOTCREDS_BAD_NAME &&
	    st != IOTCREDS_NO_SPACE);
	check(strcmp(iotcreds_strerror(st), "unknown status") != 0);
	check(!eof || st != IOTCREDS_NEED_MORE);
	if (body)
		check(st == IOTCREDS_OK || st == IOTCREDS_MALFORMED ||
		    st == IOTCREDS_INVALID);

	memset(&c2, 0x5a, sizeof(c2));
	if (body)
		check(iotcreds_parse_body(in, n, &c2, &exp2, NULL) == st);
	else
		check(iotcreds_answer(in, n, eof, &c2, &exp2, NULL, NULL) ==
		    st);
	check(memcmp(&c, &c2, sizeof(c)) == 0 && exp == exp2);

	if (st == IOTCREDS_OK)
		check_accepted(&c, exp);
	else
		check_refusal(st, &c, &err);

	if (!body && (st == IOTCREDS_OK || st == IOTCREDS_REFUSED ||
	    st == IOTCREDS_MALFORMED || st == IOTCREDS_INVALID)) {
		check(used > 0 && used <= n);
		check(iotcreds_answer(in, used, eof, &c2, &exp2, NULL, NULL) ==
		    st);
		check(iotcreds_answer(in, used - 1, 0, &c2, &exp2, NULL,
		    NULL) == IOTCREDS_NEED_MORE);
	}
	creds_clear(&c);
	creds_clear(&c2);
	return 0;
}
