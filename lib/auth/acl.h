/*
 * The broker's ACL file: mosquitto's acl_file syntax plus per-client-id
 * sections. Parsed from a caller's buffer (no I/O) into an opaque struct acl
 * that answers "may this client write (publish) to this topic", "may this
 * message be delivered (read) to this client" and "is this subscription worth
 * accepting". Once a file is given everything not granted is denied.
 *
 *	# comment (a line whose first non-blank is '#')
 *	topic [read|write|readwrite|deny] FILTER	anonymous clients
 *	user NAME					starts a section for NAME
 *	client ID					starts a section for ID
 *	topic [read|write|readwrite|deny] FILTER	... in that section
 *	pattern [read|write|readwrite|deny] FILTER	every client; %u, %c
 *
 * The access keyword defaults to readwrite. FILTER is the rest of the line
 * without surrounding blanks (it may contain spaces) and must be a valid
 * MQTT topic filter. `topic` lines before the first section apply to clients
 * that gave no user name; a `user` section applies to clients with that user
 * name, a `client` section to clients with that client id, whether or not
 * they gave a user name. Sections with the same name merge. `pattern` lines
 * apply to every client wherever they appear, with %u replaced by the user
 * name and %c by the client id.
 *
 * A client's rules are: its user section (or the anonymous rules when it has
 * no user name), its client section, and the patterns. A request is allowed
 * when one of them grants the access for the topic and no `deny` rule among
 * them matches the topic, whatever the order of the lines. $SYS topics are
 * not special: the rules decide, with MQTT's rule that a filter starting
 * with a wildcard does not match a topic starting with '$'.
 *
 * Substitution never widens a pattern: a pattern with %u does not apply to a
 * client without a user name, and a user name or client id containing '+',
 * '#' or '/' (or too long to substitute) makes the pattern inapplicable. Such
 * an inapplicable pattern grants nothing and, when it is a `deny` pattern,
 * denies everything to that client (fail closed).
 */
#ifndef IOTB_ACL_H
#define IOTB_ACL_H

#include <stdbool.h>
#include <stddef.h>

#define ACL_MAX_LINE	4096	/* bytes of a line, without its newline */
#define ACL_MAX_SUBST	4096	/* bytes of a pattern filter after substitution */

enum acl_status {
	ACL_OK = 0,
	ACL_NOMEM,		/* out of memory */
	ACL_SYNTAX,		/* the file is malformed (see acl_err) */
};

/* What a request wants. */
enum acl_access {
	ACL_READ = 1,		/* a message delivered to the client */
	ACL_WRITE = 2,		/* a PUBLISH from the client */
};

/* Where a file is malformed: 1-based line and byte column, and a message. */
struct acl_err {
	unsigned	line;
	unsigned	col;
	char		msg[192];	/* "3:7: bad access keyword ..." */
};

struct acl;

/*
 * Parse an ACL file buf[0..len); the buffer is borrowed and not kept. Lines
 * end with "\n" or "\r\n", the last one may lack it. Errors: unknown
 * directive, bad access keyword, missing or invalid filter (as
 * topic_filter_check says), missing user name or client id, line too long,
 * invalid UTF-8.
 *
 * On ACL_OK *aclp owns the result, to release with acl_free(); an empty file
 * gives an ACL that denies everything. On failure *aclp is NULL and, for
 * ACL_SYNTAX, err (if not NULL) says where. Returns ACL_OK, ACL_SYNTAX or
 * ACL_NOMEM.
 */
enum acl_status acl_parse(const char *buf, size_t len, struct acl **aclp,
	    struct acl_err *err);

/* Release an ACL. NULL is a no-op. */
void	acl_free(struct acl *acl);

/*
 * May this client read or write a topic? user[0..ulen) is the client's user
 * name, user NULL when it gave none; cid[0..clen) its client id (the one the
 * broker assigned for a zero-length id); topic[0..tlen) a topic name that
 * passed topic_name_check. Everything is borrowed for the call only. Use
 * ACL_WRITE for a PUBLISH the client sends and ACL_READ for each message
 * about to be delivered to it.
 * Returns true to allow, false to deny.
 */
bool	acl_check(const struct acl *acl, const char *user, size_t ulen,
	    const char *cid, size_t clen, const char *topic, size_t tlen,
	    enum acl_access access);

/*
 * Should a SUBSCRIBE to filter[0..flen) (which passed topic_filter_check) be
 * granted? Yes when some rule granting read to this client matches at least
 * one topic name that the filter also matches, unless a single `deny` rule
 * matches every topic the filter matches. This is a coarse gate: a granted
 * subscription may overlap denied topics (subscribing "#" with read on
 * "sensors/#" is granted), so the broker must still call acl_check(ACL_READ)
 * for every message it delivers. A refused subscription could never have
 * received anything. Arguments as for acl_check. Returns true to grant.
 */
bool	acl_check_subscribe(const struct acl *acl, const char *user,
	    size_t ulen, const char *cid, size_t clen, const char *filter,
	    size_t flen);

/* Number of rules (topic and pattern lines) in the ACL. */
size_t	acl_rule_count(const struct acl *acl);

/* Static English text for a status. */
const char *acl_strerror(enum acl_status st);

#endif
