/*
 * Unit tests for creds.c. The reference is botocore itself: the sample files
 * in tests/data/creds/ were read with botocore's SharedCredentialProvider by
 * tests/data/creds/gen.py into botocore.h, and every (file, profile) there
 * has its expected status below, with botocore's outcome checked to agree
 * (same values on success; a value refused here is one botocore returned).
 * Then every error message, bounds at and one past each limit, values from
 * the environment, and that no message ever contains a secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "creds/creds.h"

#include "../data/creds/botocore.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define KEY1	"AKIAIOSFODNN7EXAMPLE"
#define SECRET1	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define KEY2	"ASIAEXAMPLEKEYID0001"
#define SECRET2	"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
#define TOKEN2	"FwoGZXIvYXdzEBYaD+token/with==padding+and/slashes="

/* What lib/creds must make of each case of botocore.h. */
static const struct {
	const char		*file;
	const char		*profile;
	enum creds_status	 want;
	size_t			 line;		/* err.line on failure */
	const char		*diverges;	/* why botocore differs */
} expect[] = {
	{ "basic.ini", "default", CREDS_OK, 0, NULL },
	{ "basic.ini", "prod", CREDS_OK, 0, NULL },
	{ "basic.ini", "ci", CREDS_OK, 0, NULL },
	{ "basic.ini", "missing", CREDS_NO_PROFILE, 0, NULL },
	{ "basic.ini", "DEFAULT", CREDS_NO_PROFILE, 0, NULL },
	{ "basic.ini", "profile prod", CREDS_INCOMPLETE, 22, NULL },
	{ "crlf.ini", "default", CREDS_OK, 0, NULL },
	{ "crlf.ini", "prod", CREDS_OK, 0, NULL },
	{ "cr.ini", "default", CREDS_OK, 0, NULL },
	{ "bom.ini", "default", CREDS_OK, 0,
	    "botocore refuses a byte order mark" },
	{ "legacy.ini", "old", CREDS_OK, 0, NULL },
	{ "legacy.ini", "both", CREDS_OK, 0, NULL },
	{ "legacy.ini", "emptylegacy", CREDS_OK, 0, NULL },
	{ "legacy.ini", "notoken", CREDS_OK, 0, NULL },
	{ "default_section.ini", "a", CREDS_OK, 0, NULL },
	{ "default_section.ini", "b", CREDS_OK, 0, NULL },
	{ "default_section.ini", "DEFAULT", CREDS_NO_PROFILE, 0, NULL },
	{ "default_section.ini", "default", CREDS_NO_PROFILE, 0, NULL },
	{ "dup_section.ini", "default", CREDS_MALFORMED, 7, NULL },
	{ "dup_section.ini", "other", CREDS_INCOMPLETE, 4,
	    "repeats of another profile's section are not looked for" },
	{ "dup_key.ini", "default", CREDS_MALFORMED, 4, NULL },
	{ "dup_other.ini", "default", CREDS_OK, 0,
	    "repeats of other keys and sections are not looked for" },
	{ "continuation.ini", "swallowed", CREDS_INCOMPLETE, 1, NULL },
	{ "continuation.ini", "continued", CREDS_INVALID, 8, NULL },
	{ "continuation.ini", "blankthen", CREDS_OK, 0, NULL },
	{ "continuation.ini", "nested", CREDS_INVALID, 19, NULL },
	{ "nested_bad.ini", "default", CREDS_MALFORMED, 6, NULL },
	{ "no_section.ini", "default", CREDS_MALFORMED, 1, NULL },
	{ "bad_line.ini", "default", CREDS_MALFORMED, 6, NULL },
	{ "no_name.ini", "default", CREDS_MALFORMED, 4, NULL },
	{ "sections.ini", "default", CREDS_NO_PROFILE, 0, NULL },
	{ "sections.ini", " default ", CREDS_OK, 0, NULL },
	{ "sections.ini", "Default", CREDS_OK, 0, NULL },
	{ "sections.ini", "a]b", CREDS_OK, 0, NULL },
	{ "sections.ini", "x=y", CREDS_OK, 0, NULL },
	{ "values.ini", "comment", CREDS_INVALID, 3, NULL },
	{ "values.ini", "quoted", CREDS_INVALID, 5, NULL },
	{ "values.ini", "lower", CREDS_INVALID, 8, NULL },
	{ "values.ini", "pasted", CREDS_INVALID, 11, NULL },
	{ "values.ini", "dash", CREDS_INVALID, 16, NULL },
	{ "values.ini", "emptykey", CREDS_INCOMPLETE, 18, NULL },
	{ "values.ini", "emptysecret", CREDS_INCOMPLETE, 22, NULL },
	{ "values.ini", "nokey", CREDS_INCOMPLETE, 23, NULL },
	{ "values.ini", "nosecret", CREDS_INCOMPLETE, 25, NULL },
	{ "values.ini", "nothing", CREDS_INCOMPLETE, 27, NULL },
	{ "latin1.ini", "default", CREDS_MALFORMED, 4, NULL },
	{ "kelvin.ini", "default", CREDS_OK, 0, NULL },
	{ "unicode_space.ini", "strip", CREDS_OK, 0, NULL },
	{ "unicode_space.ini", "continued", CREDS_INVALID, 8, NULL },
	{ "unicode_space.ini", "indented", CREDS_INCOMPLETE, 10, NULL },
	{ "vtab_nested.ini", "default", CREDS_MALFORMED, 5, NULL },
	{ "vtab_nested_ok.ini", "default", CREDS_OK, 0, NULL },
	{ "empty.ini", "default", CREDS_NO_PROFILE, 0, NULL },
	{ "bounds.ini", "at", CREDS_OK, 0, NULL },
	{ "bounds.ini", "keyover", CREDS_TOO_LONG, 6, NULL },
	{ "bounds.ini", "secretover", CREDS_TOO_LONG, 10, NULL },
	{ "bounds.ini", "tokenover", CREDS_TOO_LONG, 14, NULL },
};

/* Values that must never appear in a message. */
static const char *const secrets[] = {
	SECRET1, SECRET2, TOKEN2, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	"bPxRfiCYEXAMPLEKEY", "SECURITYTOKEN", "SESSIONTOKEN", "DEFAULTTOKEN",
};

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/creds/%s", IOTB_TEST_DATA, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
assert_no_secret(const char *msg, const char *extra)
{
	for (size_t i = 0; i < NELEM(secrets); i++)
		if (strstr(msg, secrets[i]) != NULL)
			fail_msg("message \"%s\" holds a secret", msg);
	if (extra != NULL && strlen(extra) >= 4 && strstr(msg, extra) != NULL)
		fail_msg("message \"%s\" holds a value", msg);
}

static void
assert_zero(const struct creds *c)
{
	static const struct creds zero;

	assert_memory_equal(c, &zero, sizeof(zero));
}

static const struct boto_case *
boto_find(const char *file, const char *profile)
{
	for (size_t i = 0; i < NELEM(boto_cases); i++)
		if (strcmp(boto_cases[i].file, file) == 0 &&
		    strcmp(boto_cases[i].profile, profile) == 0)
			return &boto_cases[i];
	fail_msg("%s [%s] is not in botocore.h: run gen.py", file, profile);
	return NULL;
}

static void
test_botocore(void **state)
{
	(void)state;
	/* Every case botocore was run on is expected something here. */
	assert_int_equal(NELEM(expect), NELEM(boto_cases));
	for (size_t i = 0; i < NELEM(expect); i++) {
		const struct boto_case *b = boto_find(expect[i].file,
		    expect[i].profile);
		struct creds c, again;
		struct creds_error err = { 99, "x" };
		enum creds_status st;
		size_t len;
		char *buf = slurp(expect[i].file, &len);

		memset(&c, 0xa5, sizeof(c));
		st = creds_parse_file(buf, len, expect[i].profile, &c, &err);
		if (st != expect[i].want)
			fail_msg("%s [%s]: %s (%s), want %s", expect[i].file,
			    expect[i].profile, creds_strerror(st), err.msg,
			    creds_strerror(expect[i].want));
		if (st != CREDS_OK) {
			assert_zero(&c);
			assert_string_not_equal(err.msg, "");
			if (err.line != expect[i].line)
				fail_msg("%s [%s]: line %zu (%s), want %zu",
				    expect[i].file, expect[i].profile, err.line,
				    err.msg, expect[i].line);
			assert_no_secret(err.msg, b->secret_access_key);
			assert_no_secret(err.msg, b->session_token);
		} else {
			assert_int_equal(err.line, 0);
			assert_string_equal(err.msg, "");
		}
		if (expect[i].diverges != NULL) {
			/* Known differences are refusals by botocore. */
			assert_true(b->outcome == BOTO_PARSE_ERROR);
			free(buf);
			continue;
		}
		switch (b->outcome) {
		case BOTO_CREDS:
			if (st == CREDS_OK) {
				assert_string_equal(c.access_key_id,
				    b->access_key_id);
				assert_string_equal(c.secret_access_key,
				    b->secret_access_key);
				assert_string_equal(c.session_token,
				    b->session_token != NULL ?
				    b->session_token : "");
			} else {
				/*
				 * A value botocore took as it is: the same
				 * values from the environment fail the same.
				 */
				assert_int_equal(creds_from_values(
				    b->access_key_id, b->secret_access_key,
				    b->session_token, &again, NULL), st);
			}
			break;
		case BOTO_NO_SECTION:
			assert_int_equal(st, CREDS_NO_PROFILE);
			break;
		case BOTO_NO_KEY_ID:
		case BOTO_PARTIAL:
			assert_int_equal(st, CREDS_INCOMPLETE);
			break;
		case BOTO_PARSE_ERROR:
			assert_int_equal(st, CREDS_MALFORMED);
			break;
		}
		free(buf);
	}
}

static enum creds_status
parse(const char *text, const char *profile, struct creds *c,
    struct creds_error *err)
{
	return creds_parse_file(text, strlen(text), profile, c, err);
}

#define OKFILE	"[default]\naws_access_key_id = " KEY1 "\n" \
		"aws_secret_access_key = " SECRET1 "\n"

static void
test_formats(void **state)
{
	struct creds c;
	struct creds_error err;

	(void)state;
	/* NULL is the default profile. */
	assert_int_equal(parse(OKFILE, NULL, &c, &err), CREDS_OK);
	assert_string_equal(c.access_key_id, KEY1);
	assert_string_equal(c.secret_access_key, SECRET1);
	assert_string_equal(c.session_token, "");
	/* The last profile without a newline, after comments and blanks. */
	assert_int_equal(parse("# c\n; c\n\n  \t\n[a]\nx=1\n[b]\n"
	    "aws_access_key_id=" KEY2 "\naws_secret_access_key=" SECRET2
	    "\naws_session_token=" TOKEN2, "b", &c, &err), CREDS_OK);
	assert_string_equal(c.access_key_id, KEY2);
	assert_string_equal(c.secret_access_key, SECRET2);
	assert_string_equal(c.session_token, TOKEN2);
	/* Mixed line ends, BOM, "key: value", blanks everywhere. */
	assert_int_equal(parse("\xef\xbb\xbf\r\n [p] \r"
	    "\tAWS_Access_Key_Id\t:\t" KEY1 "\t\r\n"
	    "aws_secret_access_key=" SECRET1 "  \n", "p", &c, &err), CREDS_OK);
	assert_string_equal(c.access_key_id, KEY1);
	assert_string_equal(c.secret_access_key, SECRET1);
	/* The first ':' or '=' splits: the value may hold the other. */
	assert_int_equal(parse("[p]\naws_access_key_id=" KEY1 "\n"
	    "aws_secret_access_key: a=b:c\n", "p", &c, &err), CREDS_INVALID);
	assert_string_equal(err.msg, "aws_secret_access_key has a character "
	    "outside A-Z a-z 0-9 + / = (character 4)");
	/* A BOM is only one at the start. */
	assert_int_equal(parse("[p]\n\xef\xbb\xbf[q]\n", "q", &c, &err),
	    CREDS_MALFORMED);
	/* NULL buffer with no bytes: an empty file. */
	assert_int_equal(creds_parse_file(NULL, 0, "default", &c, &err),
	    CREDS_NO_PROFILE);
	/* A NUL is a character to botocore, and no credential has one. */
	{
		static const char nul[] = "[a]\naws_access_key_id=" KEY1
		    "\naws_secret_access_key=" SECRET1 "\naws_security_token="
		    TOKEN2 "\0" TOKEN2 "\n[b]\n";

		assert_int_equal(creds_parse_file(nul, sizeof(nul) - 1, "a",
		    &c, &err), CREDS_INVALID);
		assert_string_equal(err.msg,
		    "aws_security_token has a control character");
		assert_int_equal(err.line, 4);
		assert_int_equal(creds_parse_file(nul, sizeof(nul) - 1, "b",
		    &c, &err), CREDS_INCOMPLETE);
	}
	/* err may be NULL. */
	assert_int_equal(parse("x", NULL, &c, NULL), CREDS_MALFORMED);
	assert_int_equal(parse(OKFILE, NULL, &c, NULL), CREDS_OK);
}

static const struct {
	const char		*text;
	const char		*profile;
	enum creds_status	 st;
	size_t			 line;
	const char		*msg;
} bad[] = {
	{ "[default]\n" "\xff", "default", CREDS_MALFORMED, 2, "not UTF-8" },
	{ "[a]\r\n\r\n\xed\xa0\x80", "a", CREDS_MALFORMED, 3, "not UTF-8" },
	{ "[a]\n\r\n\r\rkey", "a", CREDS_MALFORMED, 5,
	    "neither [section], key = value nor a comment" },
	{ "[a", "a", CREDS_MALFORMED, 1, "section header without ']'" },
	{ "[a]\n[b=c", "a", CREDS_MALFORMED, 2, "section header without ']'" },
	{ "[]", "a", CREDS_MALFORMED, 1, "empty section name" },
	{ "[a]\n: x", "a", CREDS_MALFORMED, 2, "no key name before ':'" },
	{ "[a]\n  =x", "a", CREDS_MALFORMED, 2, "no key name before '='" },
	{ "\n\nk = v\n[a]", "a", CREDS_MALFORMED, 3,
	    "key before the first [section]" },
	{ "[a]\n[b]\n[a]\n", "a", CREDS_MALFORMED, 3,
	    "duplicate section (first on line 1)" },
	{ "[a]\naws_secret_access_key=x\nAWS_SECRET_ACCESS_KEY=x", "a",
	    CREDS_MALFORMED, 3, "duplicate aws_secret_access_key (first on "
	    "line 2)" },
	{ "[DEFAULT]\naws_session_token=x\n[DEFAULT]\naws_session_token=y",
	    "a", CREDS_MALFORMED, 4, "duplicate aws_session_token (first on "
	    "line 2)" },
	{ "[a]\ns3 =\n  x = 1\n  y\n", "a", CREDS_MALFORMED, 4,
	    "indented line under an empty value is not key = value" },
	/* The same after a malformed line elsewhere: the whole file counts. */
	{ OKFILE "[other]\nbogus\n", "default", CREDS_MALFORMED, 5,
	    "neither [section], key = value nor a comment" },
	{ "", "default", CREDS_NO_PROFILE, 0, "profile not found" },
	{ "[profile dev]\n", "dev", CREDS_NO_PROFILE, 0, "profile not found "
	    "([profile NAME] is the form of ~/.aws/config, here it is "
	    "[NAME])" },
	{ "[a]\n", "a", CREDS_INCOMPLETE, 1,
	    "aws_access_key_id missing in the profile" },
	{ "[a]\naws_access_key_id=" KEY1, "a", CREDS_INCOMPLETE, 1,
	    "aws_secret_access_key missing in the profile" },
	{ "[a]\naws_access_key_id=\naws_secret_access_key=" SECRET1, "a",
	    CREDS_INCOMPLETE, 2, "aws_access_key_id is empty" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key  :  ", "a",
	    CREDS_INCOMPLETE, 3, "aws_secret_access_key is empty" },
	{ "[a]\naws_access_key_id=" KEY1 "\n aws_secret_access_key=" SECRET1,
	    "a", CREDS_INCOMPLETE, 1, "aws_secret_access_key missing in the "
	    "profile" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key=" SECRET1
	    "\n\n\t\n  " TOKEN2, "a", CREDS_INVALID, 6,
	    "indented line continues aws_secret_access_key" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key=" SECRET1
	    "\naws_session_token=\n  x=" TOKEN2, "a", CREDS_INVALID, 5,
	    "indented line continues aws_session_token" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key=" SECRET1
	    " #old", "a", CREDS_INVALID, 3, "aws_secret_access_key has a "
	    "blank inside (# and ; start a comment only at the start of a "
	    "line)" },
	{ "[a]\naws_access_key_id=" KEY1 " " KEY2 "\naws_secret_access_key="
	    SECRET1, "a", CREDS_INVALID, 2, "aws_access_key_id has a blank "
	    "inside" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key='" SECRET1
	    "'", "a", CREDS_INVALID, 3, "aws_secret_access_key has a quote "
	    "(quotes are part of the value)" },
	{ "[a]\naws_access_key_id=" KEY1 "\x7f\naws_secret_access_key="
	    SECRET1, "a", CREDS_INVALID, 2, "aws_access_key_id has a control "
	    "character" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key=\xc3\xa9"
	    SECRET1, "a", CREDS_INVALID, 3, "aws_secret_access_key has a "
	    "non-ASCII character" },
	{ "[a]\naws_access_key_id=akiaiosfodnn7example\n"
	    "aws_secret_access_key=" SECRET1, "a", CREDS_INVALID, 2,
	    "aws_access_key_id has a character outside A-Z 0-9 (character 1)" },
	{ "[a]\naws_access_key_id=AKIA/\naws_secret_access_key=" SECRET1, "a",
	    CREDS_INVALID, 2, "aws_access_key_id has a character outside A-Z "
	    "0-9 (character 5)" },
	{ "[a]\naws_access_key_id=" KEY1 "\naws_secret_access_key=" SECRET1
	    "\naws_session_token=" TOKEN2 "-", "a", CREDS_INVALID, 4,
	    "aws_session_token has a character outside A-Z a-z 0-9 + / = "
	    "(character 51)" },
	/* The key id is checked first, then the secret, then the token. */
	{ "[a]\naws_session_token=-\naws_secret_access_key=-\n"
	    "aws_access_key_id=-", "a", CREDS_INVALID, 4, "aws_access_key_id "
	    "has a character outside A-Z 0-9 (character 1)" },
	{ "[a]\naws_session_token=-\naws_secret_access_key=-\n"
	    "aws_access_key_id=A", "a", CREDS_INVALID, 3,
	    "aws_secret_access_key has a character outside A-Z a-z 0-9 + / = "
	    "(character 1)" },
};

static void
test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		struct creds c;
		struct creds_error err;

		memset(&c, 0xa5, sizeof(c));
		if (parse(bad[i].text, bad[i].profile, &c, &err) != bad[i].st)
			fail_msg("case %zu: %s", i, err.msg);
		assert_string_equal(err.msg, bad[i].msg);
		assert_int_equal(err.line, bad[i].line);
		assert_zero(&c);
		assert_no_secret(err.msg, NULL);
		/* Every message fits without truncation. */
		assert_true(strlen(err.msg) + 1 < sizeof(err.msg));
	}
}

/* A file with one profile and values of the given lengths. */
static enum creds_status
parse_lengths(size_t klen, size_t slen, size_t tlen, struct creds *c,
    struct creds_error *err)
{
	size_t cap = klen + slen + tlen + 128, n;
	char *buf = malloc(cap);
	enum creds_status st;

	assert_non_null(buf);
	n = (size_t)snprintf(buf, cap, "[p]\naws_access_key_id = ");
	memset(buf + n, 'K', klen);
	n += klen;
	n += (size_t)snprintf(buf + n, cap - n, "\naws_secret_access_key=");
	memset(buf + n, 's', slen);
	n += slen;
	n += (size_t)snprintf(buf + n, cap - n, "\naws_session_token=");
	memset(buf + n, '+', tlen);
	n += tlen;
	assert_true(n < cap);
	st = creds_parse_file(buf, n, "p", c, err);
	free(buf);
	return st;
}

static void
test_bounds(void **state)
{
	static char k[CREDS_MAX_KEY_ID + 2], s[CREDS_MAX_SECRET + 2];
	static char t[CREDS_MAX_TOKEN + 2];
	struct creds c;
	struct creds_error err;

	(void)state;
	assert_int_equal(parse_lengths(CREDS_MAX_KEY_ID, CREDS_MAX_SECRET,
	    CREDS_MAX_TOKEN, &c, &err), CREDS_OK);
	assert_int_equal(strlen(c.access_key_id), CREDS_MAX_KEY_ID);
	assert_int_equal(strlen(c.secret_access_key), CREDS_MAX_SECRET);
	assert_int_equal(strlen(c.session_token), CREDS_MAX_TOKEN);
	assert_int_equal(parse_lengths(CREDS_MAX_KEY_ID + 1, 1, 1, &c, &err),
	    CREDS_TOO_LONG);
	assert_string_equal(err.msg, "aws_access_key_id longer than 128 bytes");
	assert_int_equal(err.line, 2);
	assert_int_equal(parse_lengths(1, CREDS_MAX_SECRET + 1, 1, &c, &err),
	    CREDS_TOO_LONG);
	assert_string_equal(err.msg,
	    "aws_secret_access_key longer than 128 bytes");
	assert_int_equal(err.line, 3);
	assert_int_equal(parse_lengths(1, 1, CREDS_MAX_TOKEN + 1, &c, &err),
	    CREDS_TOO_LONG);
	assert_string_equal(err.msg,
	    "aws_session_token longer than 4096 bytes");
	assert_int_equal(err.line, 4);
	assert_zero(&c);
	/* One-character values are fine; so is an absent token. */
	assert_int_equal(parse_lengths(1, 1, 0, &c, &err), CREDS_OK);
	assert_string_equal(c.access_key_id, "K");
	assert_string_equal(c.session_token, "");

	/* The same bounds for values. */
	memset(k, 'K', sizeof(k) - 1);
	memset(s, 's', sizeof(s) - 1);
	memset(t, 't', sizeof(t) - 1);
	k[CREDS_MAX_KEY_ID] = s[CREDS_MAX_SECRET] = t[CREDS_MAX_TOKEN] = '\0';
	assert_int_equal(creds_from_values(k, s, t, &c, &err), CREDS_OK);
	assert_string_equal(c.access_key_id, k);
	assert_string_equal(c.secret_access_key, s);
	assert_string_equal(c.session_token, t);
	k[CREDS_MAX_KEY_ID] = 'K';
	assert_int_equal(creds_from_values(k, s, t, &c, &err), CREDS_TOO_LONG);
	assert_string_equal(err.msg, "access key id longer than 128 bytes");
	assert_zero(&c);
	k[CREDS_MAX_KEY_ID] = '\0';
	s[CREDS_MAX_SECRET] = 's';
	assert_int_equal(creds_from_values(k, s, t, &c, &err), CREDS_TOO_LONG);
	assert_string_equal(err.msg, "secret access key longer than 128 bytes");
	s[CREDS_MAX_SECRET] = '\0';
	t[CREDS_MAX_TOKEN] = 't';
	assert_int_equal(creds_from_values(k, s, t, &c, &err), CREDS_TOO_LONG);
	assert_string_equal(err.msg, "session token longer than 4096 bytes");
	assert_int_equal(err.line, 0);
}

static void
test_from_values(void **state)
{
	struct creds c;
	struct creds_error err;

	(void)state;
	assert_int_equal(creds_from_values(KEY2, SECRET2, TOKEN2, &c, &err),
	    CREDS_OK);
	assert_string_equal(c.access_key_id, KEY2);
	assert_string_equal(c.secret_access_key, SECRET2);
	assert_string_equal(c.session_token, TOKEN2);
	assert_string_equal(err.msg, "");
	/* AWS's SigV4 test-suite key id is 11 characters. */
	assert_int_equal(creds_from_values("AKIDEXAMPLE", SECRET1, NULL, &c,
	    &err), CREDS_OK);
	assert_string_equal(c.session_token, "");
	assert_int_equal(creds_from_values(KEY1, SECRET1, "", &c, &err),
	    CREDS_OK);
	assert_string_equal(c.session_token, "");

	assert_int_equal(creds_from_values(NULL, SECRET1, NULL, &c, &err),
	    CREDS_INCOMPLETE);
	assert_string_equal(err.msg, "access key id missing");
	assert_int_equal(creds_from_values("", SECRET1, NULL, &c, &err),
	    CREDS_INCOMPLETE);
	assert_string_equal(err.msg, "access key id missing");
	assert_int_equal(creds_from_values(KEY1, NULL, TOKEN2, &c, &err),
	    CREDS_INCOMPLETE);
	assert_string_equal(err.msg, "secret access key missing");
	assert_int_equal(creds_from_values(KEY1, "", TOKEN2, &c, NULL),
	    CREDS_INCOMPLETE);
	/* Not trimmed: a trailing newline from a file is refused. */
	assert_int_equal(creds_from_values(KEY1 "\n", SECRET1, NULL, &c, &err),
	    CREDS_INVALID);
	assert_string_equal(err.msg, "access key id has a control character");
	assert_int_equal(creds_from_values(KEY1, " " SECRET1, NULL, &c, &err),
	    CREDS_INVALID);
	assert_string_equal(err.msg, "secret access key has a blank inside");
	/* The secret in the key id's place (the key ids are uppercase). */
	assert_int_equal(creds_from_values("wJalrXUtnFEMI", KEY1, NULL, &c,
	    &err), CREDS_INVALID);
	assert_string_equal(err.msg, "access key id has a character outside "
	    "A-Z 0-9 (character 1)");
	assert_int_equal(creds_from_values(KEY1, SECRET1, "tok en", &c, &err),
	    CREDS_INVALID);
	assert_string_equal(err.msg, "session token has a blank inside");
	assert_int_equal(err.line, 0);
	assert_zero(&c);
}

/*
 * Whatever is wrong, no message holds the secret or the token, even when it
 * is the value at fault.
 */
static void
test_no_secret_in_messages(void **state)
{
	static const char *const wrong[] = {
		" x", "x ", "\"", "'", "#", ";", "-", "\x01", "\xc3\xa9",
		"\n  more", "\x7f",
	};
	static const char *const keys[] = {
		"aws_secret_access_key", "aws_session_token",
		"aws_security_token",
	};
	char text[8192];
	struct creds c;
	struct creds_error err;

	(void)state;
	for (size_t k = 0; k < NELEM(keys); k++) {
		const char *v = k == 0 ? SECRET1 : TOKEN2;

		for (size_t w = 0; w < NELEM(wrong); w++) {
			enum creds_status st;

			/* The bad value: secret, wrong bytes, secret. */
			snprintf(text, sizeof(text), "[p]\naws_access_key_id="
			    KEY1 "\n%s%s=%s%s%s\n", k == 0 ? "" :
			    "aws_secret_access_key=" SECRET2 "\n", keys[k], v,
			    wrong[w], v);
			st = parse(text, "p", &c, &err);
			if (st != CREDS_INVALID)
				fail_msg("%s: %s", text, err.msg);
			assert_no_secret(err.msg, NULL);
			assert_null(strstr(err.msg, "EXAMPLEKEY"));
			assert_null(strstr(err.msg, "padding"));
			assert_zero(&c);
			/* And through the values. */
			snprintf(text, sizeof(text), "%s%s%s", v, wrong[w], v);
			assert_int_equal(creds_from_values(KEY1, k == 0 ? text :
			    SECRET1, k == 0 ? NULL : text, &c, &err),
			    CREDS_INVALID);
			assert_no_secret(err.msg, NULL);
			assert_null(strstr(err.msg, "EXAMPLEKEY"));
		}
	}
	/* A secret in a malformed line is not echoed either. */
	assert_int_equal(parse("[p]\n" SECRET1 "\n", "p", &c, &err),
	    CREDS_MALFORMED);
	assert_no_secret(err.msg, NULL);
	assert_int_equal(parse("[p]\n" KEY1 "\n" SECRET1 "\n", "p", &c, &err),
	    CREDS_MALFORMED);
	assert_null(strstr(err.msg, KEY1));
}

static void
test_clear_and_sigv4(void **state)
{
	struct creds c;
	struct sigv4_creds sc;
	struct creds_error err;

	(void)state;
	assert_int_equal(creds_from_values(KEY2, SECRET2, TOKEN2, &c, &err),
	    CREDS_OK);
	creds_sigv4(&c, &sc);
	assert_ptr_equal(sc.access_key_id, c.access_key_id);
	assert_ptr_equal(sc.secret_access_key, c.secret_access_key);
	assert_ptr_equal(sc.session_token, c.session_token);
	assert_string_equal(sc.session_token, TOKEN2);
	creds_clear(&c);
	assert_zero(&c);
	creds_clear(NULL);

	assert_int_equal(creds_from_values(KEY1, SECRET1, NULL, &c, &err),
	    CREDS_OK);
	creds_sigv4(&c, &sc);
	assert_null(sc.session_token);
	assert_string_equal(sc.access_key_id, KEY1);

	/* A failure wipes what an earlier success left. */
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(parse("[x]", "p", &c, &err), CREDS_NO_PROFILE);
	assert_zero(&c);
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(creds_from_values(NULL, NULL, NULL, &c, &err),
	    CREDS_INCOMPLETE);
	assert_zero(&c);
}

/* What the file gives signs exactly as the same values given directly. */
static void
test_signs_like_direct_creds(void **state)
{
	struct creds c;
	struct sigv4_creds sc;
	const struct sigv4_creds direct = { KEY2, SECRET2, TOKEN2 };
	char a[8192], b[8192];
	struct sigv4_presign p = {
		.host = "a1b2c3-ats.iot.eu-west-1.amazonaws.com",
		.region = "eu-west-1", .time = 1700000000,
	};

	(void)state;
	assert_int_equal(parse("[prod]\r\n aws_access_key_id = " KEY2 "\r\n"
	    " aws_secret_access_key = " SECRET2 "\r\n aws_session_token = "
	    TOKEN2 "\r\n", "prod", &c, NULL), CREDS_OK);
	creds_sigv4(&c, &sc);
	p.creds = &sc;
	assert_int_equal(sigv4_presign(a, sizeof(a), &p, NULL), SIGV4_OK);
	p.creds = &direct;
	assert_int_equal(sigv4_presign(b, sizeof(b), &p, NULL), SIGV4_OK);
	assert_string_equal(a, b);
	creds_clear(&c);
}

/* A field another reader decoded into the struct, checked in place. */
static void
test_check_field(void **state)
{
	struct creds c;
	struct creds_error err;

	(void)state;
	assert_int_equal(creds_from_values(KEY2, SECRET2, TOKEN2, &c, &err),
	    CREDS_OK);
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_KEY_ID, "k", &err),
	    CREDS_OK);
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_SECRET, "s", &err),
	    CREDS_OK);
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_TOKEN, "t", &err),
	    CREDS_OK);
	assert_string_equal(err.msg, "");
	/* the same alphabets as every other source, named as asked */
	c.access_key_id[3] = 'a';
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_KEY_ID,
	    "credentials.accessKeyId", &err), CREDS_INVALID);
	assert_string_equal(err.msg, "credentials.accessKeyId has a "
	    "character outside A-Z 0-9 (character 4)");
	assert_int_equal(err.line, 0);
	c.secret_access_key[0] = '\0';
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_SECRET, "s", &err),
	    CREDS_INCOMPLETE);
	assert_string_equal(err.msg, "s is empty");
	c.session_token[1] = '"';
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_TOKEN, "t", NULL),
	    CREDS_INVALID);
	/* a field with no NUL in its buffer is too long, and not overread */
	memset(c.session_token, 'T', sizeof(c.session_token));
	assert_int_equal(creds_check_field(&c, CREDS_FIELD_TOKEN, "t", &err),
	    CREDS_TOO_LONG);
	assert_string_equal(err.msg, "t longer than 4096 bytes");
	creds_clear(&c);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int s = CREDS_OK; s <= CREDS_INVALID; s++)
		assert_string_not_equal(creds_strerror((enum creds_status)s),
		    "unknown status");
	assert_string_equal(creds_strerror((enum creds_status)99),
	    "unknown status");
	assert_string_equal(creds_strerror(CREDS_NO_PROFILE),
	    "profile not found");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_botocore),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_from_values),
		cmocka_unit_test(test_no_secret_in_messages),
		cmocka_unit_test(test_clear_and_sigv4),
		cmocka_unit_test(test_signs_like_direct_creds),
		cmocka_unit_test(test_check_field),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
