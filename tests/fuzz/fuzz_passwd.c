/*
 * libFuzzer target for the password file parser (lib/auth/passwd.c).
 * Iteration counts come from the input, so the parse is capped at
 * FUZZ_MAX_ITERATIONS through passwd_db_parse_max() to keep each run fast.
 * Properties checked beyond "no crash": a refusal names a line that exists;
 * an accepted file still parses after one of its users is replaced (the new
 * password verifies, the count is unchanged or grows by one) and after that
 * user is deleted (the count drops by one and the user is gone).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"

#define INPUT_MAX		(64 * 1024)
#define FUZZ_MAX_ITERATIONS	101	/* mosquitto_passwd's count */

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct passwd_db *
parse_or_die(const char *buf, size_t len)
{
	struct passwd_db *db = NULL;

	if (passwd_db_parse_max(buf, len, FUZZ_MAX_ITERATIONS, &db, NULL) !=
	    PASSWD_OK)
		abort();
	return db;
}

static void
edit(const char *buf, size_t len, size_t count)
{
	static const uint8_t salt[PASSWD_SALT_LEN] = "fuzzsaltfuzz";
	char line[PASSWD_MAX_LINE + 1];
	char *out = NULL, *out2 = NULL;
	size_t n, outlen, out2len;
	struct passwd_db *db;
	bool found, found2;

	if (passwd_line_build("alice", 5, "pw", 2, salt, sizeof(salt), 1, line,
	    sizeof(line), &n) != PASSWD_OK)
		abort();
	if (passwd_file_update(buf, len, "alice", 5, line, n, &out, &outlen,
	    &found) != PASSWD_OK)
		return;		/* out of memory */
	db = parse_or_die(out, outlen);
	if (passwd_db_count(db) != count + !found ||
	    passwd_db_verify(db, "alice", 5, "pw", 2) != PASSWD_OK ||
	    passwd_db_verify(db, "alice", 5, "pX", 2) != PASSWD_MISMATCH)
		abort();
	passwd_db_free(db);
	if (passwd_file_update(out, outlen, "alice", 5, NULL, 0, &out2,
	    &out2len, &found2) == PASSWD_OK) {
		db = parse_or_die(out2, out2len);
		if (!found2 || passwd_db_count(db) != count - found ||
		    passwd_db_verify(db, "alice", 5, "pw", 2) != PASSWD_NO_USER)
			abort();
		passwd_db_free(db);
	}
	free(out);
	free(out2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct passwd_db *db = NULL;
	struct passwd_err err = { 0 };
	enum passwd_status st;
	size_t lines = 1;

	if (size > INPUT_MAX)
		return 0;
	st = passwd_db_parse_max(buf, size, FUZZ_MAX_ITERATIONS, &db, &err);
	if (st == PASSWD_SYNTAX) {
		char prefix[32];

		for (size_t i = 0; i < size; i++)
			lines += buf[i] == '\n';
		snprintf(prefix, sizeof(prefix), "line %u: ", err.line);
		if (db != NULL || err.line == 0 || err.line > lines ||
		    strncmp(err.msg, prefix, strlen(prefix)) != 0)
			abort();
		return 0;
	}
	if (st != PASSWD_OK)
		return 0;
	/* Whatever the file holds, a wrong password never verifies. */
	if (passwd_db_verify(db, "alice", 5, "\x01\x02", 2) == PASSWD_OK)
		abort();
	edit(buf, size, passwd_db_count(db));
	passwd_db_free(db);
	return 0;
}
