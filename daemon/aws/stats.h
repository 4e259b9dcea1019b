/*
 * The AWS side's counters, listed once. Each row of stats_table is one
 * value of struct bridge_stats with its name in every rendering that shows
 * it: the JSON status and the text status of the control socket
 * (control.c), the Prometheus exposition (metrics.c) and $SYS (bridge.c).
 * A rendering walks the table in order and asks the functions below for
 * values; showing a new counter everywhere is one row here.
 */
#ifndef IOTB_STATS_H
#define IOTB_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bridge_stats;

enum stats_section {
	STATS_UPLINK,		/* "uplink" in JSON, "Uplink" in text */
	STATS_QUEUE,
	STATS_NSECTIONS,
};

enum stats_kind {
	STATS_COUNT,		/* uint64_t (or unsigned) */
	STATS_BYTES,		/* uint64_t bytes: a size in text */
	STATS_MS,		/* uint64_t milliseconds: seconds in Prometheus */
	STATS_GAUGE,		/* int64_t, may be negative */
	STATS_FLAG,		/* bool */
	STATS_TEXT,		/* const char * */
	STATS_STATE,		/* enum uplink_state: one sample per state */
	STATS_DROPS,		/* uint64_t[QUEUE_DROPPED_NREASONS]: one per
				 * reason */
};

/* What a row of the text status does. */
enum stats_row {
	STATS_ROW_SKIP,		/* nothing to show now */
	STATS_ROW_SHOW,
	STATS_ROW_LAST,		/* shown, and the section ends with it */
};

/* The value part of a text row into buf; NULL: the value as it is. */
typedef enum stats_row (*stats_text_fn)(const struct bridge_stats *st,
    char *buf, size_t cap);

struct stats_def {
	enum stats_section	 section;
	enum stats_kind		 kind;
	size_t			 off;	/* in struct bridge_stats */
	size_t			 size;	/* of that field */
	const char		*json;	/* key in its section; NULL: none */
	const char		*prom;	/* name after "iotbridge_"; NULL: none */
	const char		*help;	/* Prometheus HELP */
	bool			 counter;	/* Prometheus TYPE, else gauge */
	const char		*sys;	/* topic after "$SYS/broker/"; NULL */
	const char		*text;	/* row label; NULL: no row of its own */
	stats_text_fn		 text_fn;
};

extern const struct stats_def	stats_table[];
extern const size_t		stats_count;

/* "uplink" / "Uplink". */
const char	*stats_section_name(enum stats_section s, bool title);

/* The value of a COUNT, BYTES or MS row. */
uint64_t	 stats_u64(const struct stats_def *d, const struct bridge_stats *st);
/* GAUGE, FLAG (0, 1), STATE (the enum) and the rest as a signed number. */
int64_t		 stats_i64(const struct stats_def *d, const struct bridge_stats *st);
/* TEXT: the string; STATE: the state's name; FLAG: "true" or "false". */
const char	*stats_str(const struct stats_def *d, const struct bridge_stats *st);

/* DROPS: how many for reason r (an enum queue_drop), and its key in JSON
 * ("oldest") and elsewhere ("full_oldest", queue_drop_name()). */
uint64_t	 stats_drops(const struct bridge_stats *st, int r);
const char	*stats_drop_key(int r, bool json);
int		 stats_ndrops(void);

/* The states of a STATE row: stats_nstates() of them, named. */
int		 stats_nstates(void);
const char	*stats_state_name(int s);

/* A text status row's value into buf (cap > 0). */
enum stats_row	 stats_text(const struct stats_def *d,
		    const struct bridge_stats *st, char *buf, size_t cap);

/* "850ms", "4s", "2m 3s", "5h 1m", "3d 4h"; "512 B", "3.4 KiB". Return buf. */
const char	*stats_fmt_duration(uint64_t ms, char *buf, size_t cap);
const char	*stats_fmt_size(uint64_t n, char *buf, size_t cap);

#endif
