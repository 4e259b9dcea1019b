/*
 * Unit tests for acl.c: a few ACL files, each with a table of requests
 * (who, what, topic or filter, expected answer) covering anonymous clients,
 * user and client sections, patterns with %u and %c, substitutions that
 * would widen a pattern, "deny wins", deny by default, and the subscription
 * gate with '#', '+' and '$SYS'. Then every parse error with its position
 * and exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/acl.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

enum op { R, W, S };	/* acl_check READ, WRITE; acl_check_subscribe */

struct req {
	const char	*user;	/* NULL: anonymous */
	const char	*cid;
	enum op		 op;
	const char	*topic;	/* a name for R/W, a filter for S */
	bool		 allow;
};

static const char acl_main[] =
    "# Anonymous clients: topic lines before any section.\n"
    "topic read public/#\n"
    "topic write anon/in\n"
    "topic deny public/secret\n"
    "topic read spaced topic/x  \n"
    "\n"
    "user alice\n"
    "topic readwrite alice/#\n"
    "topic read shared/+/status\n"
    "\ttopic   deny\talice/private/#\n"
    "\n"
    "user bob\n"
    "topic write bob/out\n"
    "topic $SYS/broker/#\n"
    "\n"
    "client esp-01\n"
    "topic write devices/esp-01/telemetry\n"
    "topic read devices/esp-01/cmd/#\n"
    "\n"
    "# Patterns apply to everyone, wherever they are.\n"
    "pattern readwrite clients/%c/#\n"
    "pattern read users/%u/inbox/#\n"
    "pattern deny clients/%c/locked\n"
    "pattern write mixed/%u/%c\n"
    "\n"
    "user alice\n"
    "topic read merged/section\n";

static const struct req main_reqs[] = {
	/* Anonymous. */
	{ NULL, "anon1", R, "public/news", true },
	{ NULL, "anon1", W, "public/news", false },
	{ NULL, "anon1", R, "public", true },		/* '#' takes the parent */
	{ NULL, "anon1", R, "public/secret", false },	/* deny wins */
	{ NULL, "anon1", W, "public/secret", false },
	{ NULL, "anon1", R, "public/secret/x", true },
	{ NULL, "anon1", W, "anon/in", true },
	{ NULL, "anon1", R, "anon/in", false },
	{ NULL, "anon1", R, "spaced topic/x", true },
	{ NULL, "anon1", R, "alice/x", false },
	{ NULL, "anon1", R, "clients/anon1/x", true },
	{ NULL, "anon1", W, "clients/anon1", true },
	{ NULL, "anon1", R, "clients/anon2/x", false },
	{ NULL, "anon1", W, "clients/anon1/locked", false },
	{ NULL, "anon1", R, "users/anon1/inbox/1", false }, /* %u: no user */
	{ NULL, "anon1", W, "mixed//anon1", false },
	{ NULL, "anon1", R, "merged/section", false },
	/* A user section replaces the anonymous rules. */
	{ "alice", "a1", W, "alice/x", true },
	{ "alice", "a1", R, "alice", true },
	{ "alice", "a1", R, "alice/private/x", false },
	{ "alice", "a1", W, "alice/private", false },
	{ "alice", "a1", R, "alice/privateer", true },
	{ "alice", "a1", R, "public/news", false },
	{ "alice", "a1", R, "shared/k/status", true },
	{ "alice", "a1", R, "shared/k/status/x", false },
	{ "alice", "a1", W, "shared/k/status", false },
	{ "alice", "a1", R, "merged/section", true },	/* sections merge */
	{ "alice", "a1", R, "users/alice/inbox/1", true },
	{ "alice", "a1", W, "users/alice/inbox/1", false },
	{ "alice", "a1", R, "users/bob/inbox/1", false },
	{ "alice", "a1", W, "mixed/alice/a1", true },
	{ "alice", "a1", W, "mixed/alice/a2", false },
	{ "alice", "a1", R, "$SYS/broker/uptime", false },
	{ "Alice", "a1", R, "alice/x", false },		/* names are exact */
	{ "alic", "a1", R, "alice/x", false },
	/* A client section applies with or without a user name. */
	{ "bob", "esp-01", R, "$SYS/broker/uptime", true },
	{ "bob", "esp-01", W, "$SYS/broker/uptime", true },
	{ "bob", "esp-01", R, "$SYS/other", false },
	{ "bob", "esp-01", W, "bob/out", true },
	{ "bob", "esp-01", R, "bob/out", false },
	{ "bob", "esp-01", W, "devices/esp-01/telemetry", true },
	{ "bob", "esp-01", R, "devices/esp-01/telemetry", false },
	{ "bob", "esp-01", R, "devices/esp-01/cmd/reboot", true },
	{ "bob", "esp-01", W, "clients/esp-01/locked", false },
	{ "bob", "esp-01", R, "clients/esp-01/other", true },
	{ NULL, "esp-01", W, "devices/esp-01/telemetry", true },
	{ NULL, "esp-01", R, "public/news", true },
	{ NULL, "esp-02", W, "devices/esp-01/telemetry", false },
	{ "mallory", "m", R, "public/news", false },	/* no section */
	{ "mallory", "m", R, "clients/m/x", true },
	/* A deny pattern that cannot be substituted denies everything. */
	{ NULL, "a/b", R, "public/news", false },
	{ NULL, "a/b", R, "clients/a/b/x", false },
	{ "alice", "+", R, "alice/x", false },
	/* Subscriptions. */
	{ NULL, "anon1", S, "public/#", true },
	{ NULL, "anon1", S, "public/+", true },
	{ NULL, "anon1", S, "public/secret", false },	/* covered by deny */
	{ NULL, "anon1", S, "public/secret/+", true },
	{ NULL, "anon1", S, "#", true },
	{ NULL, "anon1", S, "+", true },		/* "public" */
	{ NULL, "anon1", S, "+/+/+/+", true },
	{ NULL, "anon1", S, "$SYS/#", false },
	{ NULL, "anon1", S, "alice/#", false },
	{ NULL, "anon1", S, "anon/in", false },	/* write only */
	{ NULL, "anon1", S, "clients/anon1/#", true },
	{ NULL, "anon1", S, "clients/+/x", true },
	{ NULL, "anon1", S, "clients/anon1/locked", false },
	{ "alice", "a1", S, "alice/#", true },
	{ "alice", "a1", S, "alice/+/x", true },
	{ "alice", "a1", S, "alice/private/#", false },
	{ "alice", "a1", S, "alice/private/x/+", false },
	{ "alice", "a1", S, "alice/private", false },
	{ "alice", "a1", S, "shared/#", true },
	{ "alice", "a1", S, "shared/a/b", false },
	{ "alice", "a1", S, "shared/a/status", true },
	{ "alice", "a1", S, "+/+/status", true },
	{ "alice", "a1", S, "nothing/+", false },
	{ "alice", "a1", S, "$SYS/#", false },
	{ "bob", "esp-01", S, "$SYS/#", true },
	{ "bob", "esp-01", S, "$SYS/+/uptime", true },
	{ "bob", "esp-01", S, "$SYS/broker", true },
	{ "bob", "esp-01", S, "$SYS/load/#", false },
	{ "bob", "esp-01", S, "devices/+/cmd/#", true },
	{ "bob", "esp-01", S, "devices/+/telemetry", false },
	{ NULL, "a/b", S, "public/#", false },
};

static const char acl_subst[] =
    "pattern readwrite clients/%c/#\n"
    "pattern read users/%u/#\n"
    "pattern read %c\n"
    "pattern read pct/%x/%%c/%\n"
    "pattern write both/%c%u\n";

static const struct req subst_reqs[] = {
	{ NULL, "c", R, "clients/c/1", true },
	{ NULL, "+", R, "clients/x/1", false },
	{ NULL, "#", R, "clients/anything", false },
	{ NULL, "#", S, "clients/#", false },
	{ NULL, "a/b", R, "clients/a/b/c", false },
	{ NULL, "a/b", R, "a/b", false },
	{ NULL, "a/b", S, "a/+", false },
	{ "+", "c", R, "users/x/1", false },
	{ "+", "c", R, "clients/c/1", true },		/* others still apply */
	{ "#", "c", S, "users/#", false },
	{ "u/v", "c", R, "users/u/v/1", false },
	{ "u", "c", R, "users/u/1", true },
	{ "", "c", R, "users//1", true },		/* empty stays one level */
	{ NULL, "c", R, "users//1", false },
	{ NULL, "ok", R, "ok", true },
	{ NULL, "ok", S, "ok", true },
	{ NULL, "ok", S, "+", true },
	{ NULL, "$SYS", R, "$SYS", false },		/* no '$' at the start */
	{ NULL, "$SYS", S, "$SYS", false },
	{ NULL, "$x", R, "clients/$x/1", true },	/* elsewhere it is a char */
	{ NULL, "c", R, "pct/%x/%c/%", true },		/* %% is not an escape */
	{ NULL, "c", R, "pct/%x/%%c/%", false },
	{ "u", "c", W, "both/cu", true },
	{ NULL, "c", W, "both/c", false },
};

static const char acl_sys[] =
    "user sysmon\n"
    "topic read $SYS/#\n"
    "user all\n"
    "topic read #\n"
    "topic deny secret/#\n"
    "user plus\n"
    "topic read #\n"
    "topic deny +/x\n";

static const struct req sys_reqs[] = {
	{ "sysmon", "c", S, "#", false },		/* '#' skips $ topics */
	{ "sysmon", "c", S, "+/broker", false },
	{ "sysmon", "c", S, "$SYS/#", true },
	{ "sysmon", "c", S, "$SYS/+/uptime", true },
	{ "sysmon", "c", S, "$SYS", true },
	{ "sysmon", "c", S, "$SYSTEM/#", false },
	{ "sysmon", "c", R, "$SYS/broker/uptime", true },
	{ "sysmon", "c", W, "$SYS/broker/uptime", false },
	{ "all", "c", S, "#", true },
	{ "all", "c", S, "$SYS/#", false },
	{ "all", "c", S, "secret/#", false },
	{ "all", "c", S, "secret/a", false },
	{ "all", "c", S, "secret", false },
	{ "all", "c", S, "+/a", true },
	{ "all", "c", R, "secret/x", false },
	{ "all", "c", R, "secret", false },
	{ "all", "c", R, "secrets", true },
	{ "all", "c", R, "$SYS/x", false },
	{ "all", "c", R, "other", true },
	{ "all", "c", R, "/", true },
	{ "plus", "c", S, "a/x", false },
	{ "plus", "c", S, "+/x", false },
	{ "plus", "c", S, "+/+", true },
	{ "plus", "c", S, "a/x/#", true },	/* a/x itself is denied, not a/x/y */
	{ "plus", "c", S, "$SYS/x", false },
	{ "plus", "c", R, "a/x", false },
	{ "plus", "c", R, "/x", false },
	{ "plus", "c", R, "a/x/y", true },
	{ "plus", "c", R, "$SYS/x", false },
};

static struct acl *
parse_ok(const char *text)
{
	struct acl *acl = NULL;
	struct acl_err err = { 0 };

	if (acl_parse(text, strlen(text), &acl, &err) != ACL_OK)
		fail_msg("unexpected error: %s", err.msg);
	assert_non_null(acl);
	return acl;
}

static bool
ask(const struct acl *acl, const struct req *q)
{
	size_t ulen = q->user ? strlen(q->user) : 0;

	if (q->op == S)
		return acl_check_subscribe(acl, q->user, ulen, q->cid,
		    strlen(q->cid), q->topic, strlen(q->topic));
	return acl_check(acl, q->user, ulen, q->cid, strlen(q->cid), q->topic,
	    strlen(q->topic), q->op == R ? ACL_READ : ACL_WRITE);
}

static void
run_table(const char *text, const struct req *reqs, size_t n)
{
	struct acl *acl = parse_ok(text);

	for (size_t i = 0; i < n; i++)
		if (ask(acl, &reqs[i]) != reqs[i].allow)
			fail_msg("case %zu: user=%s cid=%s %c %s: expected %s",
			    i, reqs[i].user ? reqs[i].user : "(none)",
			    reqs[i].cid, "RWS"[reqs[i].op], reqs[i].topic,
			    reqs[i].allow ? "allow" : "deny");
	acl_free(acl);
}

static void
test_main(void **state)
{
	struct acl *acl = parse_ok(acl_main);

	(void)state;
	assert_int_equal(acl_rule_count(acl), 16);
	acl_free(acl);
	run_table(acl_main, main_reqs, NELEM(main_reqs));
}

static void
test_subst(void **state)
{
	(void)state;
	run_table(acl_subst, subst_reqs, NELEM(subst_reqs));
}

static void
test_sys(void **state)
{
	(void)state;
	run_table(acl_sys, sys_reqs, NELEM(sys_reqs));
}

/* Once a file is given, what it does not grant is denied. */
static void
test_deny_by_default(void **state)
{
	static const char *files[] = { "", "\n\n", "# only comments\n  # x",
	    "user alice\nclient c\n", "topic deny #\n" };
	static const struct req reqs[] = {
		{ NULL, "c", R, "a", false },
		{ NULL, "c", W, "a", false },
		{ NULL, "c", S, "#", false },
		{ "alice", "c", R, "a", false },
		{ "alice", "c", S, "a/+", false },
	};

	(void)state;
	for (size_t i = 0; i < NELEM(files); i++)
		run_table(files[i], reqs, NELEM(reqs));
}

/* The order of lines does not matter: deny wins either way. */
static void
test_deny_wins_any_order(void **state)
{
	static const struct req reqs[] = {
		{ NULL, "c", R, "a/b", false },
		{ NULL, "c", W, "a/b", false },
		{ NULL, "c", R, "a/c", true },
		{ NULL, "c", S, "a/b", false },
		{ NULL, "c", S, "a/+", true },
	};

	(void)state;
	run_table("topic readwrite a/#\ntopic deny a/b\n", reqs, NELEM(reqs));
	run_table("topic deny a/b\ntopic readwrite a/#\n", reqs, NELEM(reqs));
	run_table("topic readwrite a/#\npattern deny a/b\n", reqs,
	    NELEM(reqs));
	run_table("client c\ntopic deny a/b\npattern readwrite a/#\n", reqs,
	    NELEM(reqs));
}

static void
test_crlf_and_no_final_newline(void **state)
{
	static const struct req reqs[] = {
		{ NULL, "c", R, "a", true },
		{ "u", "c", W, "b c", true },
		{ "u", "c", W, "b", false },
	};

	(void)state;
	run_table("topic read a\r\nuser u\r\ntopic write b c\r\n", reqs,
	    NELEM(reqs));
	run_table("topic read a\nuser u\ntopic write b c", reqs, NELEM(reqs));
}

struct bad {
	const char	*text;
	size_t		 len;		/* 0: strlen */
	const char	*msg;
};

static const struct bad bad_files[] = {
	{ "topic rw a/b", 0, "1:7: bad access keyword \"rw\" (expected read, "
	    "write, readwrite or deny)" },
	{ "topic a b", 0, "1:7: bad access keyword \"a\" (expected read, "
	    "write, readwrite or deny)" },
	{ "topic READ a", 0, "1:7: bad access keyword \"READ\" (expected "
	    "read, write, readwrite or deny)" },
	{ "topic read a/#/b", 0, "1:12: invalid filter: '#' is not alone in "
	    "the last level" },
	{ "\n\ntopic   read   a+", 0, "3:16: invalid filter: '+' is not alone "
	    "in its level" },
	{ "pattern write sport#", 0, "1:15: invalid filter: '#' is not alone in "
	    "the last level" },
	{ "topic\n", 0, "1:6: missing filter" },
	{ "topic read", 0, "1:11: missing filter after \"read\"" },
	{ "  pattern\tdeny\t ", 0, "1:15: missing filter after \"deny\"" },
	{ "# ok\nfoo bar", 0, "2:1: unknown directive \"foo\" (expected topic, "
	    "pattern, user or client)" },
	{ "  Topic read a", 0, "1:3: unknown directive \"Topic\" (expected "
	    "topic, pattern, user or client)" },
	{ "topic read a\nusers bob", 0, "2:1: unknown directive \"users\" "
	    "(expected topic, pattern, user or client)" },
	{ "user", 0, "1:5: missing user name" },
	{ "user  \t", 0, "1:8: missing user name" },
	{ "client\r\n", 0, "1:7: missing client id" },
	{ "topic read \xff", 0, "1:1: invalid UTF-8 or NUL byte" },
	{ "topic read a\0b", 14, "1:1: invalid UTF-8 or NUL byte" },
	{ "user \xc0\x80", 0, "1:1: invalid UTF-8 or NUL byte" },
};

static void
test_syntax_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad_files); i++) {
		const struct bad *b = &bad_files[i];
		struct acl *acl = (struct acl *)&acl;
		struct acl_err err = { 0 };
		char where[32];

		assert_int_equal(acl_parse(b->text, b->len ? b->len :
		    strlen(b->text), &acl, &err), ACL_SYNTAX);
		assert_null(acl);
		assert_string_equal(err.msg, b->msg);
		snprintf(where, sizeof(where), "%u:%u: ", err.line, err.col);
		assert_memory_equal(err.msg, where, strlen(where));
		/* err may be NULL. */
		assert_int_equal(acl_parse(b->text, b->len ? b->len :
		    strlen(b->text), &acl, NULL), ACL_SYNTAX);
	}
}

static void
test_limits(void **state)
{
	size_t n = ACL_MAX_LINE + 1;
	char *text = malloc(n + 1);
	struct acl *acl;
	struct acl_err err = { 0 };

	(void)state;
	assert_non_null(text);
	memcpy(text, "topic read ", 11);
	memset(text + 11, 'a', n - 11);
	text[n] = '\0';
	assert_int_equal(acl_parse(text, n, &acl, &err), ACL_SYNTAX);
	assert_string_equal(err.msg, "1:4097: line too long (more than 4096 "
	    "bytes)");
	/* One byte less is fine. */
	assert_int_equal(acl_parse(text, n - 1, &acl, &err), ACL_OK);
	assert_true(acl_check(acl, NULL, 0, "c", 1, text + 11, n - 12,
	    ACL_READ));
	acl_free(acl);
	free(text);
}

/* A substitution that does not fit ACL_MAX_SUBST makes the pattern inert. */
static void
test_long_substitution(void **state)
{
	struct acl *acl = parse_ok("pattern read c/%c/%c\n"
	    "pattern deny d/%c\n");
	size_t n = ACL_MAX_SUBST / 2;
	char *cid = malloc(n), *topic = malloc(2 * n + 8);

	(void)state;
	assert_non_null(cid);
	assert_non_null(topic);
	memset(cid, 'x', n);
	/* "c/" + 2n + "/": too long; the deny pattern, however, fits. */
	snprintf(topic, 2 * n + 8, "c/%.*s/%.*s", (int)n, cid, (int)n, cid);
	assert_false(acl_check(acl, NULL, 0, cid, n, topic, strlen(topic),
	    ACL_READ));
	/* A shorter id works with the same rules. */
	snprintf(topic, 2 * n + 8, "c/%.*s/%.*s", 10, cid, 10, cid);
	assert_true(acl_check(acl, NULL, 0, cid, 10, topic, strlen(topic),
	    ACL_READ));
	free(cid);
	free(topic);
	acl_free(acl);
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(acl_strerror(ACL_OK), "success");
	assert_string_equal(acl_strerror(ACL_NOMEM), "out of memory");
	assert_string_equal(acl_strerror(ACL_SYNTAX), "malformed ACL file");
	assert_string_equal(acl_strerror((enum acl_status)42),
	    "unknown status");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_main),
		cmocka_unit_test(test_subst),
		cmocka_unit_test(test_sys),
		cmocka_unit_test(test_deny_by_default),
		cmocka_unit_test(test_deny_wins_any_order),
		cmocka_unit_test(test_crlf_and_no_final_newline),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_long_substitution),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
