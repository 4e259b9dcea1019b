/*
 * The dead-letter file: one JSON line per message refused by AWS's rules
 * (never sent), in STATE_DIR/dead-letters, for an operator to inspect.
 * Bounded: past half the budget the file becomes dead-letters.1 (the one
 * before is lost), so the two never hold more than aws.dead_letter.max_bytes.
 * Diagnostics, not data: written without fsync.
 */
#ifndef IOTB_DEADLETTER_H
#define IOTB_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deadletter;

/* The file in dir (copied), at most max_bytes over both files (0: none is
 * kept). NULL when out of memory. */
struct deadletter *deadletter_new(const char *dir, uint64_t max_bytes);

/* Another directory or budget, after a reload. -1 when out of memory (the
 * old ones stay). */
int		 deadletter_reload(struct deadletter *dl, const char *dir,
		    uint64_t max_bytes);

/* NULL is a no-op. */
void		 deadletter_free(struct deadletter *dl);

/* Write one refused message; reason is a short name ("topic_too_deep"),
 * topic its AWS topic. Failures are silent (counted as not written). */
void		 deadletter_write(struct deadletter *dl, const char *reason,
		    const char *topic, size_t tlen, const uint8_t *payload,
		    size_t plen, uint8_t qos, bool retain);

/* How many lines were written since start. */
uint64_t	 deadletter_count(const struct deadletter *dl);

#endif
