/*
 * libFuzzer target for the ACL parser and evaluator (lib/auth/acl.c).
 * Arbitrary bytes go to acl_parse(); a refusal must come with a position
 * inside the input that matches its message. An accepted ACL is queried by a
 * fixed cast of clients (anonymous, with wildcards and '/' or '$' in their
 * names) about a fixed set of topics and filters, and the answers must agree
 * with each other: a topic that may be read can be subscribed to exactly,
 * and a refused subscription covers no readable topic it matches.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "topic/topic.h"

#define INPUT_MAX	(64 * 1024)
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const users[] = { NULL, "u", "alice", "+", "a/b", "$u", "" };
static const char *const cids[] = { "c", "esp-01", "#", "x/y", "$SYS", "" };
static const char *const topics[] = { "a", "a/b", "a/b/c", "/", "a//b",
    "$SYS", "$SYS/broker/uptime", "u", "c", "x/u/y", "x/c/y", "alice/x",
    "clients/c/1", "users/alice/inbox", "sensors/t", "$share/g/t" };
static const char *const filters[] = { "#", "+", "a/#", "+/b", "$SYS/#",
    "a/+/c", "+/+", "/#", "x/+/y", "clients/c/#", "+/alice/#", "sensors/t" };

static bool
rd(const struct acl *acl, const char *u, const char *c, const char *t)
{
	return acl_check(acl, u, u ? strlen(u) : 0, c, strlen(c), t,
	    strlen(t), ACL_READ);
}

static bool
sub(const struct acl *acl, const char *u, const char *c, const char *f)
{
	return acl_check_subscribe(acl, u, u ? strlen(u) : 0, c, strlen(c), f,
	    strlen(f));
}

static void
query(const struct acl *acl)
{
	for (size_t i = 0; i < NELEM(users); i++)
	for (size_t j = 0; j < NELEM(cids); j++) {
		const char *u = users[i], *c = cids[j];

		for (size_t k = 0; k < NELEM(topics); k++) {
			(void)acl_check(acl, u, u ? strlen(u) : 0, c,
			    strlen(c), topics[k], strlen(topics[k]),
			    ACL_WRITE);
			if (rd(acl, u, c, topics[k]) && !sub(acl, u, c,
			    topics[k]))
				abort();
		}
		for (size_t f = 0; f < NELEM(filters); f++) {
			if (sub(acl, u, c, filters[f]))
				continue;
			for (size_t k = 0; k < NELEM(topics); k++)
				if (topic_match(filters[f], strlen(filters[f]),
				    topics[k], strlen(topics[k])) &&
				    rd(acl, u, c, topics[k]))
					abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct acl *acl = NULL;
	struct acl_err err = { 0 };
	enum acl_status st;

	if (size > INPUT_MAX)
		return 0;
	st = acl_parse(buf, size, &acl, &err);
	if (st == ACL_SYNTAX) {
		char prefix[32];
		size_t line = 1, i;

		/* The reported line exists and the column is inside it. */
		for (i = 0; i < size && line < err.line; i++)
			line += buf[i] == '\n';
		snprintf(prefix, sizeof(prefix), "%u:%u: ", err.line, err.col);
		if (acl != NULL || line != err.line || err.col == 0 ||
		    strncmp(err.msg, prefix, strlen(prefix)) != 0)
			abort();
		while (i < size && buf[i] != '\n' && err.col > 1) {
			i++;
			err.col--;
		}
		/* Column 1 here: just past the line's last byte. */
		if (err.col > 1)
			abort();
		return 0;
	}
	if (st != ACL_OK)
		return 0;
	query(acl);
	acl_free(acl);
	return 0;
}
