/*
 * The dead-letter file (see deadletter.h). Each line carries the payload in
 * base64 and the topic as a JSON string, so that any bytes survive.
 */
#include "daemon/aws/deadletter.h"

#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "base/json.h"
#include "daemon/util/clock.h"
#include "daemon/util/file.h"

#define DEADLETTER_FILE	"dead-letters"

struct deadletter {
	char		*path;
	uint64_t	 max_bytes;
	uint64_t	 written;
};

struct deadletter *
deadletter_new(const char *dir, uint64_t max_bytes)
{
	struct deadletter *dl;

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return NULL;
	if (deadletter_reload(dl, dir, max_bytes) != 0) {
		free(dl);
		return NULL;
	}
	return dl;
}

int
deadletter_reload(struct deadletter *dl, const char *dir, uint64_t max_bytes)
{
	char *path;

	if ((path = file_path(dir, DEADLETTER_FILE)) == NULL)
		return -1;
	free(dl->path);
	dl->path = path;
	dl->max_bytes = max_bytes;
	return 0;
}

void
deadletter_free(struct deadletter *dl)
{
	if (dl == NULL)
		return;
	free(dl->path);
	free(dl);
}

/* p[0..n) as a JSON string with its quotes. */
static void
json_string(FILE *f, const void *p, size_t n)
{
	size_t need = json_escape(NULL, 0, p, n);
	char *e = malloc(need + 1);

	if (e == NULL)
		return;
	json_escape(e, need + 1, p, n);
	fprintf(f, "\"%s\"", e);
	free(e);
}

void
deadletter_write(struct deadletter *dl, const char *reason, const char *topic,
    size_t tlen, const uint8_t *payload, size_t plen, uint8_t qos, bool retain)
{
	size_t b64len = 4 * (plen / 3 + 1), need = 128 + 6 * tlen + b64len, b64;
	uint8_t *enc = NULL;
	struct stat sb;
	FILE *f;
	char old[PATH_MAX];

	if (dl->max_bytes == 0 || need > dl->max_bytes / 2)
		return;
	if (stat(dl->path, &sb) == 0 &&
	    (uint64_t)sb.st_size + need > dl->max_bytes / 2) {
		snprintf(old, sizeof(old), "%s.1", dl->path);
		(void)rename(dl->path, old);
	}
	if ((enc = malloc(b64len + 1)) == NULL)
		return;
	if (mbedtls_base64_encode(enc, b64len + 1, &b64, payload, plen) != 0 ||
	    (f = fopen(dl->path, "ae")) == NULL) {
		free(enc);
		return;
	}
	fprintf(f, "{\"time_ms\":%" PRIu64 ",\"reason\":", clock_wall_ms());
	json_string(f, reason, strlen(reason));
	fputs(",\"topic\":", f);
	json_string(f, topic, tlen);
	fprintf(f, ",\"qos\":%u,\"retain\":%s,\"payload_base64\":\"%.*s\"}\n",
	    qos, retain ? "true" : "false", (int)b64, enc);
	if (fclose(f) == 0)
		dl->written++;
	free(enc);
}

uint64_t
deadletter_count(const struct deadletter *dl)
{
	return dl->written;
}
