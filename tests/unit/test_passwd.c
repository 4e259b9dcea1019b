/*
 * Unit tests for passwd.c. Two independent references: lines written by
 * Debian 12's mosquitto_passwd 2.0.11 (tests/data/auth/mosquitto.passwd,
 * passwords below), and PBKDF2-HMAC-SHA512 lines computed with Python's
 * hashlib (tests/data/auth/gen_vectors.py) that passwd_line_build() must
 * reproduce byte for byte. Then every class of malformed line with its
 * message, the iteration cap, and build -> update -> parse -> verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/passwd.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The users of tests/data/auth/mosquitto.passwd and their passwords. */
static const struct {
	const char	*user;
	const char	*pw;
} mosq_users[] = {
	{ "alice", "secret" },
	{ "bob", "p\xc3\xa4ssw\xc3\xb6rd with spaces" },
	{ "\xc3\xbc" "n\xc3\xaf" "code", "x" },
	{ "carol", "hunter2" },		/* $6$, mosquitto_passwd -H sha512 */
	{ "dave", "" },
};

/* gen_vectors.py's output. */
static const struct {
	const char	*user;
	const char	*pw;
	size_t		 pwlen;
	const char	*salt;
	size_t		 saltlen;
	uint32_t	 iterations;
	const char	*line;
} vectors[] = {
	{ "alice", "password", 8, "saltSALTsalt", 12, 1,
	    "alice:$7$1$c2FsdFNBTFRzYWx0$izWpR9h69TGaBZLIxorvd+vIbiKEv738BzPrIT"
	    "vLYhiOMO+Jy8NtYPiOdW2TShlpMUDCT+BfHr46PNugRvbiQg==" },
	{ "alice", "password", 8, "saltSALTsalt", 12, 2,
	    "alice:$7$2$c2FsdFNBTFRzYWx0$lnlEQujbsaSoChIFW6sPyjiO5mcfZc7UkRXmiH"
	    "ofi7cVDr+qjyFipN7DlWIjR3yIb+CkLzGSktKPgmVObAW0ZQ==" },
	{ "bob", "secret", 6,
	    "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 12, 101,
	    "bob:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3p"
	    "UYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==" },
	{ "carol", "p\0ss\xff", 5,
	    "\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3", 12, 10000,
	    "carol:$7$10000$yMnKy8zNzs/Q0dLT$GHKVhQQAE0eb/ydSEqJiA87vi7UzgVHeh1"
	    "Mo5rz5UD9lew1LH6lxYPTUmsWYdrrJ1En2iveNGqcmhfqlmNFvhA==" },
	{ "dave", "", 0,
	    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	    64, 3,
	    "dave:$7$3$////////////////////////////////////////////////////////"
	    "/////////////////////////////w==$3MHWoTq+KK2MTsX5qY6Lp+tglrrWh/T/o"
	    "ZnTR1nUesMeqtJFzSCmb8v2mTguJ3KjJ5SD/VKzulGdrqQKPvryqw==" },
	{ "e", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxx", 200, "12345678", 8, 4096,
	    "e:$7$4096$MTIzNDU2Nzg=$S1Yye7NC1c/BGb0fg7o8E6yYyrudKmY4ao1rGbvkxgyr"
	    "lfx2xaBJEXreXx1hnN2o15NjZDEWf6nKpRqXep+AHw==" },
};

/* A valid hash part to build malformed lines around. */
#define GOOD7	"$7$101$VZkE5z0O4sGnU7vz$XdbGxQ7QT8ZmEPiTYFBt8+64URJT/B1mKI8Bo" \
		"tYHRy/ALgelTxf+urooPNJTEndLVaWpEbpCEF35HjKiEPfBKg=="
#define HASH64	"XdbGxQ7QT8ZmEPiTYFBt8+64URJT/B1mKI8BotYHRy/ALgelTxf+urooPNJTE" \
		"ndLVaWpEbpCEF35HjKiEPfBKg=="

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/auth/%s", IOTB_TEST_DATA, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct passwd_db *
parse_ok(const char *text)
{
	struct passwd_db *db = NULL;
	struct passwd_err err = { 0 };

	if (passwd_db_parse(text, strlen(text), &db, &err) != PASSWD_OK)
		fail_msg("unexpected error: %s", err.msg);
	assert_non_null(db);
	return db;
}

static enum passwd_status
verify(const struct passwd_db *db, const char *user, const char *pw)
{
	return passwd_db_verify(db, user, strlen(user), pw, strlen(pw));
}

static void
test_mosquitto_file(void **state)
{
	struct passwd_db *db = NULL;
	struct passwd_err err = { 0 };
	size_t len;
	char longer[64];
	char *buf = slurp("mosquitto.passwd", &len);

	(void)state;
	assert_int_equal(passwd_db_parse(buf, len, &db, &err), PASSWD_OK);
	assert_int_equal(passwd_db_count(db), NELEM(mosq_users));
	for (size_t i = 0; i < NELEM(mosq_users); i++) {
		const char *u = mosq_users[i].user, *pw = mosq_users[i].pw;

		assert_int_equal(verify(db, u, pw), PASSWD_OK);
		assert_int_equal(verify(db, u, "wrong"), PASSWD_MISMATCH);
		/*
		 * One byte more or less is another password. (Not a trailing
		 * NUL: HMAC pads its key with zeros, so PBKDF2 cannot tell
		 * "pw" from "pw\0", in mosquitto too.)
		 */
		snprintf(longer, sizeof(longer), "%sx", pw);
		assert_int_equal(verify(db, u, longer), PASSWD_MISMATCH);
		if (pw[0] != '\0')
			assert_int_equal(passwd_db_verify(db, u, strlen(u), pw,
			    strlen(pw) - 1), PASSWD_MISMATCH);
	}
	/* Passwords do not move between users. */
	assert_int_equal(verify(db, "alice", "hunter2"), PASSWD_MISMATCH);
	assert_int_equal(verify(db, "carol", "secret"), PASSWD_MISMATCH);
	assert_int_equal(verify(db, "mallory", "secret"), PASSWD_NO_USER);
	assert_int_equal(verify(db, "Alice", "secret"), PASSWD_NO_USER);
	assert_int_equal(passwd_db_verify(db, "alice", 4, "secret", 6),
	    PASSWD_NO_USER);
	passwd_db_free(db);
	free(buf);
}

static void
test_vectors(void **state)
{
	char line[PASSWD_MAX_LINE + 1];

	(void)state;
	for (size_t i = 0; i < NELEM(vectors); i++) {
		size_t n = 0;
		struct passwd_db *db;

		assert_int_equal(passwd_line_build(vectors[i].user,
		    strlen(vectors[i].user), vectors[i].pw, vectors[i].pwlen,
		    (const uint8_t *)vectors[i].salt, vectors[i].saltlen,
		    vectors[i].iterations, line, sizeof(line), &n), PASSWD_OK);
		assert_string_equal(line, vectors[i].line);
		assert_int_equal(n, strlen(vectors[i].line));
		/* And the parser accepts what hashlib computed. */
		db = parse_ok(vectors[i].line);
		assert_int_equal(passwd_db_verify(db, vectors[i].user,
		    strlen(vectors[i].user), vectors[i].pw, vectors[i].pwlen),
		    PASSWD_OK);
		passwd_db_free(db);
	}
}

static void
test_binary_password(void **state)
{
	struct passwd_db *db = parse_ok(vectors[3].line);

	(void)state;
	/* "p\0ss\xff": the NUL is part of the password. */
	assert_int_equal(passwd_db_verify(db, "carol", 5, "p\0ss\xff", 5),
	    PASSWD_OK);
	assert_int_equal(passwd_db_verify(db, "carol", 5, "p", 1),
	    PASSWD_MISMATCH);
	assert_int_equal(passwd_db_verify(db, "carol", 5, "p\0ss\xfe", 5),
	    PASSWD_MISMATCH);
	passwd_db_free(db);
}

static void
test_comments_blanks_crlf(void **state)
{
	struct passwd_db *db = parse_ok(
	    "# a comment\r\n"
	    "\r\n"
	    "   \t\n"
	    "  # indented comment\n"
	    "  alice  :  " GOOD7 "  \r\n"
	    "dave:$7$3$//////////////////////////////////////////////////////"
	    "///////////////////////////////w==$3MHWoTq+KK2MTsX5qY6Lp+tglrrWh/"
	    "T/oZnTR1nUesMeqtJFzSCmb8v2mTguJ3KjJ5SD/VKzulGdrqQKPvryqw==");

	(void)state;
	assert_int_equal(passwd_db_count(db), 2);
	assert_int_equal(verify(db, "alice", "secret"), PASSWD_OK);
	assert_int_equal(verify(db, "dave", ""), PASSWD_OK);
	passwd_db_free(db);

	db = parse_ok("");
	assert_int_equal(passwd_db_count(db), 0);
	assert_int_equal(verify(db, "alice", "secret"), PASSWD_NO_USER);
	passwd_db_free(db);
}

static const struct {
	const char	*text;
	const char	*msg;
} bad_files[] = {
	{ "alice " GOOD7, "line 1: missing ':' after the user name" },
	{ "# c\n\nalice", "line 3: missing ':' after the user name" },
	{ ":" GOOD7, "line 1: bad user name" },
	{ "  :" GOOD7, "line 1: bad user name" },
	{ "al\xff" "ce:" GOOD7, "line 1: bad user name" },
	{ "alice:", "line 1: empty password hash" },
	{ "alice:secret", "line 1: unsupported hash (expected $7$ or $6$ as "
	    "mosquitto_passwd writes)" },
	{ "alice:$5$abc$def", "line 1: unsupported hash (expected $7$ or $6$ "
	    "as mosquitto_passwd writes)" },
	{ "alice:$7$", "line 1: missing fields after $7$" },
	{ "alice:$7$x01$VZkE5z0O4sGnU7vz$" HASH64, "line 1: bad iteration count" },
	{ "alice:$7$0$VZkE5z0O4sGnU7vz$" HASH64, "line 1: bad iteration count" },
	{ "alice:$7$-1$VZkE5z0O4sGnU7vz$" HASH64, "line 1: bad iteration count" },
	{ "alice:$7$$VZkE5z0O4sGnU7vz$" HASH64, "line 1: bad iteration count" },
	{ "alice:$7$99999999999$VZkE5z0O4sGnU7vz$" HASH64,
	    "line 1: bad iteration count" },
	{ "alice:$7$10000001$VZkE5z0O4sGnU7vz$" HASH64,
	    "line 1: iteration count above the limit" },
	{ "alice:$7$4294967295$VZkE5z0O4sGnU7vz$" HASH64,
	    "line 1: iteration count above the limit" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz", "line 1: missing hash after the salt" },
	{ "alice:$7$101$VZkE5z0O4sG!U7vz$" HASH64, "line 1: bad salt" },
	{ "alice:$7$101$VZkE5z0O4sGnU7v$" HASH64, "line 1: bad salt" },
	{ "alice:$7$101$VZkE5z0=$" HASH64, "line 1: bad salt" },	/* 5 bytes */
	{ "alice:$7$101$$" HASH64, "line 1: bad salt" },
	{ "alice:$7$101$VZkE=5z0O4sGnU7v$" HASH64, "line 1: bad salt" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz$XdbGxQ7Q", "line 1: bad hash" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz$", "line 1: bad hash" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz$" HASH64 "AAAA", "line 1: bad hash" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz$" HASH64 "$", "line 1: unexpected '$' "
	    "after the hash" },
	{ "alice:$7$101$VZkE5z0O4sGnU7vz$Xdb GxQ7Q", "line 1: bad hash" },
	{ "alice:$6$wps6WtemkT2ceZLR", "line 1: missing hash after the salt" },
	{ "alice:" GOOD7 "\nbob:" GOOD7 "\nalice:" GOOD7,
	    "line 3: duplicate user (first on line 1)" },
	{ "a:" GOOD7 "\nb:" GOOD7 "\nc:" GOOD7 "\nb:x",
	    "line 4: unsupported hash (expected $7$ or $6$ as mosquitto_passwd "
	    "writes)" },
};

static void
test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad_files); i++) {
		struct passwd_db *db = (struct passwd_db *)&db;
		struct passwd_err err = { 0 };

		assert_int_equal(passwd_db_parse(bad_files[i].text,
		    strlen(bad_files[i].text), &db, &err), PASSWD_SYNTAX);
		assert_null(db);
		assert_string_equal(err.msg, bad_files[i].msg);
		assert_int_equal(err.line,
		    (unsigned)strtoul(bad_files[i].msg + 5, NULL, 10));
	}
}

static void
test_line_too_long(void **state)
{
	char *text = malloc(PASSWD_MAX_LINE + 2);
	struct passwd_db *db;
	struct passwd_err err = { 0 };

	(void)state;
	assert_non_null(text);
	memset(text, 'a', PASSWD_MAX_LINE + 1);
	text[PASSWD_MAX_LINE + 1] = '\0';
	assert_int_equal(passwd_db_parse(text, strlen(text), &db, &err),
	    PASSWD_SYNTAX);
	assert_string_equal(err.msg, "line 1: line too long");
	/* No error without an err to fill in. */
	assert_int_equal(passwd_db_parse(text, strlen(text), &db, NULL),
	    PASSWD_SYNTAX);
	free(text);
}

static void
test_iteration_cap(void **state)
{
	const char *line = vectors[3].line;	/* 10000 iterations */
	struct passwd_db *db;
	struct passwd_err err = { 0 };

	(void)state;
	assert_int_equal(passwd_db_parse_max(line, strlen(line), 9999, &db,
	    &err), PASSWD_SYNTAX);
	assert_string_equal(err.msg, "line 1: iteration count above the limit");
	assert_int_equal(passwd_db_parse_max(line, strlen(line), 10000, &db,
	    &err), PASSWD_OK);
	passwd_db_free(db);
	/* $6$ is one round: no cap refuses it. */
	line = "carol:$6$wps6WtemkT2ceZLR$lqLdsuSs9JpYDt4KKpc8lFKctgltDscZf3TH/"
	    "FLWeTlGkIEphS9SuAeoQA4+9v/bODaIT+UX7E4bjcIl6UprZg==";
	assert_int_equal(passwd_db_parse_max(line, strlen(line), 1, &db, &err),
	    PASSWD_OK);
	assert_int_equal(verify(db, "carol", "hunter2"), PASSWD_OK);
	passwd_db_free(db);
	/* A larger cap than the global one is clamped to it. */
	line = "a:$7$10000001$VZkE5z0O4sGnU7vz$" HASH64;
	assert_int_equal(passwd_db_parse_max(line, strlen(line), UINT32_MAX,
	    &db, &err), PASSWD_SYNTAX);
	line = "a:$7$10000000$VZkE5z0O4sGnU7vz$" HASH64;
	assert_int_equal(passwd_db_parse(line, strlen(line), &db, &err),
	    PASSWD_OK);
	passwd_db_free(db);
}

static void
test_user_check(void **state)
{
	char big[PASSWD_MAX_USER + 1];

	(void)state;
	assert_int_equal(passwd_user_check("alice", 5), PASSWD_OK);
	assert_int_equal(passwd_user_check("a b", 3), PASSWD_OK);
	assert_int_equal(passwd_user_check("\xc3\xbc", 2), PASSWD_OK);
	assert_int_equal(passwd_user_check("a#", 2), PASSWD_OK);
	assert_int_equal(passwd_user_check("", 0), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("a:b", 3), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("a\nb", 3), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("a\rb", 3), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("a\0b", 3), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("#a", 2), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check(" a", 2), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("a\t", 2), PASSWD_BAD_USER);
	assert_int_equal(passwd_user_check("\xc3", 1), PASSWD_BAD_USER);
	memset(big, 'u', sizeof(big));
	assert_int_equal(passwd_user_check(big, PASSWD_MAX_USER), PASSWD_OK);
	assert_int_equal(passwd_user_check(big, PASSWD_MAX_USER + 1),
	    PASSWD_BAD_USER);
}

static void
test_build_errors(void **state)
{
	const uint8_t salt[PASSWD_SALT_MAX + 1] = { 1 };
	char line[PASSWD_MAX_LINE + 1];
	char big[PASSWD_MAX_USER];
	size_t n;

	(void)state;
	assert_int_equal(passwd_line_build("a:b", 3, "pw", 2, salt, 12, 1,
	    line, sizeof(line), NULL), PASSWD_BAD_USER);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt,
	    PASSWD_SALT_MIN - 1, 1, line, sizeof(line), NULL), PASSWD_INVALID);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt,
	    PASSWD_SALT_MAX + 1, 1, line, sizeof(line), NULL), PASSWD_INVALID);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt, 12, 0,
	    line, sizeof(line), NULL), PASSWD_INVALID);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt, 12,
	    PASSWD_MAX_ITERATIONS + 1, line, sizeof(line), NULL),
	    PASSWD_INVALID);
	/* The exact size fits, one byte less does not. */
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt, 12, 1,
	    line, sizeof(line), &n), PASSWD_OK);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt, 12, 1,
	    line, n + 1, NULL), PASSWD_OK);
	assert_int_equal(passwd_line_build("a", 1, "pw", 2, salt, 12, 1,
	    line, n, NULL), PASSWD_NO_SPACE);
	/*
	 * The largest line fits in PASSWD_MAX_LINE: built with 1 iteration
	 * (PASSWD_MAX_ITERATIONS would take seconds), plus the 7 digits that
	 * the largest count adds.
	 */
	memset(big, 'u', sizeof(big));
	assert_int_equal(passwd_line_build(big, sizeof(big), "pw", 2, salt,
	    PASSWD_SALT_MAX, 1, line, sizeof(line), &n), PASSWD_OK);
	assert_true(n + 7 <= PASSWD_MAX_LINE);
}

static void
test_round_trip(void **state)
{
	const uint8_t salt1[PASSWD_SALT_LEN] = "0123456789a";
	const uint8_t salt2[PASSWD_SALT_LEN] = "zyxwvutsrqp";
	char line[PASSWD_MAX_LINE + 1], line2[PASSWD_MAX_LINE + 1];
	size_t n, n2, flen, blen;
	char *file = NULL, *file2 = NULL;
	bool found = true;
	struct passwd_db *db;
	char *base = slurp("mosquitto.passwd", &blen);

	(void)state;
	/* A new user is appended to mosquitto_passwd's file. */
	assert_int_equal(passwd_line_build("zoe", 3, "s3cret", 6, salt1,
	    sizeof(salt1), PASSWD_DEFAULT_ITERATIONS, line, sizeof(line), &n),
	    PASSWD_OK);
	assert_int_equal(passwd_file_update(base, blen, "zoe", 3, line, n,
	    &file, &flen, &found), PASSWD_OK);
	assert_false(found);
	assert_int_equal(flen, blen + n + 1);
	assert_memory_equal(file, base, blen);
	db = parse_ok(file);
	assert_int_equal(passwd_db_count(db), NELEM(mosq_users) + 1);
	assert_int_equal(verify(db, "zoe", "s3cret"), PASSWD_OK);
	assert_int_equal(verify(db, "alice", "secret"), PASSWD_OK);
	passwd_db_free(db);

	/* Replacing alice keeps her place and changes only her line. */
	assert_int_equal(passwd_line_build("alice", 5, "new", 3, salt2,
	    sizeof(salt2), 1000, line2, sizeof(line2), &n2), PASSWD_OK);
	assert_int_equal(passwd_file_update(file, flen, "alice", 5, line2, n2,
	    &file2, NULL, &found), PASSWD_OK);
	assert_true(found);
	assert_non_null(strstr(file2, "\nalice:$7$1000$"));
	assert_true(strstr(file2, "alice:") < strstr(file2, "bob:"));
	db = parse_ok(file2);
	assert_int_equal(verify(db, "alice", "new"), PASSWD_OK);
	assert_int_equal(verify(db, "alice", "secret"), PASSWD_MISMATCH);
	assert_int_equal(verify(db, "zoe", "s3cret"), PASSWD_OK);
	passwd_db_free(db);
	free(file);

	/* Deleting removes the line and nothing else. */
	assert_int_equal(passwd_file_update(file2, strlen(file2), "alice", 5,
	    NULL, 0, &file, &flen, &found), PASSWD_OK);
	assert_true(found);
	assert_null(strstr(file, "alice:"));
	assert_non_null(strstr(file, "# Made by"));
	db = parse_ok(file);
	assert_int_equal(passwd_db_count(db), NELEM(mosq_users));
	assert_int_equal(verify(db, "alice", "new"), PASSWD_NO_USER);
	assert_int_equal(verify(db, "bob", mosq_users[1].pw), PASSWD_OK);
	passwd_db_free(db);
	free(file2);

	/* Deleting someone absent changes nothing. */
	assert_int_equal(passwd_file_update(file, flen, "nobody", 6, NULL, 0,
	    &file2, &n, &found), PASSWD_OK);
	assert_false(found);
	assert_int_equal(n, flen);
	assert_memory_equal(file2, file, flen);
	free(file2);
	free(file);
	free(base);
}

static void
test_update_edges(void **state)
{
	char *out;
	size_t n;
	bool found;

	(void)state;
	/* An empty file gets the line; a last line without '\n' gets one. */
	assert_int_equal(passwd_file_update("", 0, "a", 1, "a:x", 3, &out, &n,
	    &found), PASSWD_OK);
	assert_string_equal(out, "a:x\n");
	free(out);
	assert_int_equal(passwd_file_update("b:y", 3, "a", 1, "a:x", 3, &out,
	    &n, &found), PASSWD_OK);
	assert_string_equal(out, "b:y\na:x\n");
	free(out);
	/* Blanks around the name, CRLF, duplicates dropped, comments kept. */
	assert_int_equal(passwd_file_update(" a :1\r\n#a:2\nb:3\na:4\n", 20,
	    "a", 1, "a:x", 3, &out, &n, &found), PASSWD_OK);
	assert_true(found);
	assert_string_equal(out, "a:x\n#a:2\nb:3\n");
	assert_int_equal(n, strlen(out));
	free(out);
	assert_int_equal(passwd_file_update("a:1\n", 4, "#a", 2, "x", 1, &out,
	    &n, &found), PASSWD_BAD_USER);
	assert_null(out);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int s = PASSWD_OK; s <= PASSWD_CRYPTO; s++)
		assert_string_not_equal(passwd_strerror((enum passwd_status)s),
		    "unknown status");
	assert_string_equal(passwd_strerror((enum passwd_status)99),
	    "unknown status");
	assert_string_equal(passwd_strerror(PASSWD_MISMATCH), "wrong password");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mosquitto_file),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_binary_password),
		cmocka_unit_test(test_comments_blanks_crlf),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_iteration_cap),
		cmocka_unit_test(test_user_check),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_update_edges),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
