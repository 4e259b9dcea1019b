/*
 * libFuzzer target for the transport memory file (lib/tchoice/tchoice.c):
 * the file in the state directory that says which way to AWS worked last.
 * The first byte picks the endpoint compared with. Beyond not crashing: a
 * file accepted (for this endpoint or another) is written back by
 * tchoice_memory_encode() as the same bytes, its final newline included, and
 * the way it names leads auto's list when remembered.
 */
#include <stdint.h>
#include <string.h>

#include "tchoice/tchoice.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "localhost",
	    "abc-ats.iot.eu-west-1.amazonaws.com", "a" };
	char out[TCHOICE_MEMORY_MAX + 1];
	const char *host;
	enum tchoice_way w = TCHOICE_NWAYS;
	enum tchoice_status st;
	struct tchoice c;
	size_t len, n;

	if (size == 0 || size > 2 * TCHOICE_MEMORY_MAX)
		return 0;
	host = hosts[data[0] % 3];
	n = size - 1;
	st = tchoice_memory_parse(data + 1, n, host, &w);
	check(st == TCHOICE_OK || st == TCHOICE_OTHER ||
	    st == TCHOICE_MALFORMED);
	if (st == TCHOICE_MALFORMED)
		return 0;
	check((unsigned)w < TCHOICE_NWAYS);
	/* the host as written is in the file: encode it back */
	{
		const char *line = (const char *)data + 1;
		size_t hl = n - (line[n - 1] == '\n') - 22 -
		    strlen(tchoice_name(w)) - 1;
		char h[TCHOICE_HOST_MAX + 1];

		check(hl >= 1 && hl <= TCHOICE_HOST_MAX);
		memcpy(h, line + n - (line[n - 1] == '\n') - hl, hl);
		h[hl] = '\0';
		check(tchoice_memory_encode(w, h, out, sizeof(out), &len) ==
		    TCHOICE_OK);
		check(len == n + (line[n - 1] != '\n'));
		check(memcmp(out, line, n) == 0);
	}
	tchoice_init(&c, TCHOICE_MODE_AUTO, TCHOICE_SIGV4, &w);
	check(tchoice_current(&c) == w);
	return 0;
}
