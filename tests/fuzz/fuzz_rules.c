/*
 * libFuzzer target for the bridge's topic mapping and AWS limit checks
 * (lib/bridge/rules.c, lib/bridge/awslimit.c). The input is lines: the
 * first byte says how many rules come first, each line "D Q topic local
 * remote" (direction and QoS as one character each, the three strings
 * separated by spaces), then topic names, each mapped both ways and checked
 * against AWS's limits. Beyond not crashing: a rename keeps the matched
 * topic's part after the rule's prefix and puts the other prefix before it,
 * within the output's room and never empty; a rule of the wrong direction
 * never serves; an accepted topic is within every limit, a refused one past
 * the limit it names, and every explanation is a terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bridge/awslimit.h"
#include "bridge/rules.h"
#include "topic/topic.h"

#define INPUT_MAX	4096
#define RULES_MAX	8

static char *
field(char **p)
{
	char *s = *p, *e = strchr(s, ' ');

	if (e != NULL) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static void
check_map(const struct rules *r, const struct rules_spec *specs,
    enum rules_dir dir, const char *t, size_t len, size_t cap)
{
	static char out[RULES_TOPIC_MAX + 1];
	struct rules_match m;
	const struct rules_spec *s;
	const char *from, *to;
	enum rules_status st;

	st = rules_map(r, dir, t, len, out, cap, &m);
	check(st == RULES_OK || st == RULES_NOMATCH ||
	    st == RULES_UNMAPPABLE);
	if (st != RULES_OK)
		return;
	s = &specs[m.rule];
	check(s->dir & dir);
	check(m.len > 0 && m.len <= cap && m.len <= RULES_TOPIC_MAX);
	from = dir == RULES_OUT ? s->local_prefix : s->remote_prefix;
	to = dir == RULES_OUT ? s->remote_prefix : s->local_prefix;
	check(len >= strlen(from) && memcmp(t, from, strlen(from)) == 0);
	check(m.len == strlen(to) + len - strlen(from));
	check(memcmp(out, to, strlen(to)) == 0);
	check(memcmp(out + strlen(to), t + strlen(from),
	    len - strlen(from)) == 0);
}

static void
check_limits(const char *t, size_t len, size_t plen, uint8_t knob)
{
	struct awslimit l = {
		.max_payload = knob & 1 ? 16 : 128 * 1024,
		.max_topic_length = knob & 2 ? 8 : 256,
		.max_topic_slashes = knob & 4 ? 1 : 7,
	};
	enum awslimit_status st = awslimit_check(&l, t, len, plen);
	char why[160];

	check(st < AWSLIMIT_NSTATUS);
	if (st == AWSLIMIT_OK)
		check(plen <= l.max_payload);
	if (st == AWSLIMIT_PAYLOAD)
		check(plen > l.max_payload);
	if (st == AWSLIMIT_TOPIC_LENGTH)
		check(len > l.max_topic_length);
	if (st == AWSLIMIT_RESERVED)
		check(len > 0 && t[0] == '$');
	awslimit_explain(&l, st, t, len, plen, why, 1 + knob % sizeof(why));
	check(strlen(why) < sizeof(why));
	check(awslimit_name(st) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rules_spec specs[RULES_MAX];
	struct rules *r = NULL;
	char *text, *line, *next;
	size_t nrules, n = 0, cap;

	if (size < 2 || size > INPUT_MAX)
		return 0;
	nrules = data[0] % (RULES_MAX + 1);
	cap = data[1] & 1 ? RULES_TOPIC_MAX : data[1];
	if ((text = malloc(size - 1)) == NULL)
		return 0;
	memcpy(text, data + 2, size - 2);
	text[size - 2] = '\0';
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (n < nrules) {
			struct rules_spec *s = &specs[n++];

			s->dir = (enum rules_dir)(1 + (line[0] != '\0' ?
			    (unsigned char)line[0] % 3 : 0));
			s->qos = line[0] != '\0' && line[1] != '\0' ?
			    (uint8_t)(line[1] % 3) : 1;
			s->ack = RULES_ACK_STORED;
			line += strnlen(line, 2);
			s->topic = field(&line);
			s->local_prefix = field(&line);
			s->remote_prefix = field(&line);
			if (n == nrules) {
				size_t bad;

				if (rules_compile(specs, n, &r, &bad) !=
				    RULES_OK)
					break;
				for (size_t i = 0; i < rules_filters(r); i++) {
					uint8_t q;

					check(rules_filter(r, i, &q) != NULL);
					check(q <= 1);
				}
			}
			continue;
		}
		if (r == NULL && rules_compile(specs, n, &r, NULL) != RULES_OK)
			break;
		if (topic_name_check(line, strlen(line)) != TOPIC_OK)
			continue;
		check_map(r, specs, RULES_OUT, line, strlen(line), cap);
		check_map(r, specs, RULES_IN, line, strlen(line), cap);
		check_limits(line, strlen(line), (size_t)data[1] << 10,
		    data[1]);
	}
	rules_free(r);
	free(text);
	return 0;
}
