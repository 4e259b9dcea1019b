/*
 * Internals shared by the files of lib/config: the schema tables
 * (cfg_schema.c), the typed value parsers and formatters (cfg_value.c), the
 * YAML node tree (cfg_yaml.c), merging trees and recording where keys came
 * from (cfg_merge.c), the loader and its error reporting (cfg_load.c) used
 * by the cross-field checks (cfg_check.c) and by the file reading
 * (cfg_files.c). Not installed, not for daemon/; unit tests may include it.
 */
#ifndef IOTB_CFG_INT_H
#define IOTB_CFG_INT_H

#include "config/cfg.h"

#include <stdarg.h>

#define CFG_ERR_MAX	320	/* one value's "what is wrong (expected)" */
#define CFG_PATH_MAX	256	/* "listeners[3].tls.client_ca" and then some */
#define CFG_STR_MAX	4096	/* any string, unless the key says less */

enum cfg_type {
	CFG_T_BOOL,
	CFG_T_INT,		/* int64_t */
	CFG_T_DURATION,		/* uint64_t, milliseconds */
	CFG_T_SIZE,		/* uint64_t, bytes */
	CFG_T_ENUM,		/* an enum, the index into .values */
	CFG_T_STRING,		/* char *, .min..max bytes */
	CFG_T_PATH,		/* char *, absolute */
	CFG_T_ADDR,		/* struct cfg_addr */
	CFG_T_ENDPOINT,		/* struct cfg_hostport, port 443 unless given */
	CFG_T_URL,		/* struct cfg_hostport from http://HOST:PORT */
	CFG_T_FILTER,		/* char *, an MQTT topic filter */
	CFG_T_PREFIX,		/* char *, a topic prefix without wildcards */
	CFG_T_REGION,		/* char *, an AWS region name */
	CFG_T_SECTION,		/* a mapping: .sub at .off */
	CFG_T_LIST,		/* a list of .sub items: pointer at .off, count at .off2 */
};

#define CFG_K_REQUIRED	0x01	/* must be given when its section is */
#define CFG_K_SECRET	0x02	/* never printed, zeroized on free */
#define CFG_K_PRESENCE	0x04	/* SECTION: bool at .off2 says it was given */
#define CFG_K_UNIX	0x08	/* ADDR: unix:/PATH allowed */

struct cfg_section;

/*
 * One key of a section. The default is text, parsed exactly as if it were in
 * the file, so it reads the same in the docs and in the reference. For
 * a LIST, a default means "one item whose first key is this".
 */
struct cfg_keydef {
	const char	*name;
	enum cfg_type	 type;
	unsigned	 flags;
	size_t		 off;
	size_t		 off2;
	int64_t		 min, max;	/* value range; string length; list length */
	const char	*special;	/* non-NULL: .special_value is also accepted */
	int64_t		 special_value;	/* and means .special ("off", "no limit") */
	const char	*dflt;
	const char *const *values;	/* ENUM: names, NULL-ended; index = value */
	const struct cfg_section *sub;	/* SECTION, LIST */
	const char	*doc;
};

struct cfg_ctx;

struct cfg_section {
	const struct cfg_keydef *keys;
	size_t		 nkeys;
	size_t		 size;		/* of the struct the offsets point into */
	void		(*check)(const struct cfg_ctx *);	/* cross-field */
};

#define CFG_SECTION_MAX_KEYS 16

extern const struct cfg_section cfg_root;

/* --- values (cfg_value.c) ------------------------------------------------ */

/*
 * Parse the text s (NUL-terminated, no NUL inside) as the value of key kd
 * and store it in the struct at obj, replacing (and freeing) what was there.
 * CFG_INVALID: err holds "what is wrong (what was expected)", without the
 * value when the key is secret. CFG_NOMEM: nothing stored.
 */
enum cfg_status cfg_value_set(const struct cfg_keydef *kd, void *obj,
    const char *s, char *err, size_t cap);

/* The value of leaf kd in obj as cfg_walk() shows it, or NULL when unset.
 * buf holds at least CFG_STR_MAX + 64 bytes; the result may point into obj. */
#define CFG_VALUE_BUF	(CFG_STR_MAX + 64)
const char *cfg_value_text(const struct cfg_keydef *kd, const void *obj,
    char *buf, size_t cap);

/* What a value of kd looks like, for "(expected ...)". Static or in buf. */
const char *cfg_value_expect(const struct cfg_keydef *kd, char *buf,
    size_t cap);

/* The schema's name of a type: "duration", "size", ... */
const char *cfg_type_name(const struct cfg_keydef *kd);

/* Canonical text of a duration ("1d", "500ms") and a size ("64MiB"). */
void cfg_fmt_duration(uint64_t ms, char *buf, size_t cap);
void cfg_fmt_size(uint64_t bytes, char *buf, size_t cap);

/* s[0..len) in double quotes for a message: escaped, cut after 48 bytes. */
void cfg_quote(const char *s, size_t len, char *buf, size_t cap);

/* The region of an AWS IoT endpoint, "xxx.iot.REGION.amazonaws.com[.cn]". */
bool cfg_region_from_host(const char *host, char *buf, size_t cap);

/* Is word close enough to name to be suggested for it? */
bool cfg_similar(const char *word, size_t len, const char *name);

/* --- schema (cfg_schema.c) ----------------------------------------------- */

/* The key of sec named name[0..len), NULL if there is none. */
const struct cfg_keydef *cfg_section_key(const struct cfg_section *sec,
    const char *name, size_t len);

/* Set every default of sec in obj (zeroed beforehand). CFG_OK or CFG_NOMEM. */
enum cfg_status cfg_section_defaults(const struct cfg_section *sec, void *obj);

/* Free what obj owns (of one key, of a section), zeroizing the secrets;
 * obj itself stays. */
void cfg_key_clear(const struct cfg_keydef *kd, void *obj);
void cfg_section_clear(const struct cfg_section *sec, void *obj);

/* Find a key named name anywhere in the schema; write its path ("limits.x",
 * "listeners[].x") into buf. */
bool cfg_schema_find(const char *name, size_t len, char *buf, size_t cap);

/* --- the YAML tree (cfg_yaml.c) and the loader (cfg_load.c) --------------- */

enum cfg_node_kind {
	CFG_N_SCALAR,
	CFG_N_MAP,		/* kids: key, value, key, value, ... */
	CFG_N_SEQ,
	CFG_N_ALIAS,		/* text: the anchor name */
};

struct cfg_node {
	enum cfg_node_kind kind;
	unsigned	 file;		/* its file's index in the load */
	unsigned	 line, col;	/* 1-based */
	bool		 plain;		/* SCALAR written without quotes */
	char		*text;		/* SCALAR, ALIAS; NUL-terminated */
	size_t		 len;
	char		*anchor;	/* &name given, else NULL */
	char		*tag;		/* !tag given, else NULL */
	struct cfg_node	**kids;
	size_t		 nkids, cap;
};

struct cfg_loader;

/*
 * Parse len bytes at buf, the file numbered file in the load, into a tree in
 * *root (NULL for an empty stream; the caller frees it, also after a
 * failure). CFG_INVALID: a syntax error, a second document or nesting past
 * CFG_MAX_DEPTH, reported through ld as the one message. CFG_NOMEM.
 */
enum cfg_status cfg_yaml_parse(struct cfg_loader *ld, unsigned file,
    const void *buf, size_t len, struct cfg_node **root);

/* Free a tree, zeroizing the scalars (they may be secrets). NULL is fine. */
void cfg_node_free(struct cfg_node *n);

/* Append n to the kids of parent (a list, or a mapping's key or value).
 * False when out of memory; n is then not attached. */
bool cfg_node_attach(struct cfg_node *parent, struct cfg_node *n);

/* An empty value: "key:", "key: ~", "key: null" and the like, plain. */
bool cfg_node_null(const struct cfg_node *n);

/* The value node of key in the mapping map, NULL if absent or not a map. */
const struct cfg_node *cfg_node_get(const struct cfg_node *map,
    const char *key);

/* --- merging (cfg_merge.c) ------------------------------------------------ */

/*
 * Merge the tree src (a later file) into *dst, taking src's nodes: where
 * both are mappings, key by key, recursively; a mapping meets an empty value
 * (null): the mapping stays; otherwise src's value and key replace dst's.
 * Knows nothing of the schema: the files were checked on their own first.
 * *dst NULL: src becomes it. False when out of memory; *dst is then still
 * a tree to free, src is consumed either way.
 */
bool cfg_node_merge(struct cfg_node **dst, struct cfg_node *src);

/* The record behind struct cfg_origins: key path -> file and line. */
struct cfg_origins *cfg_origins_new(void);
void cfg_origins_free(struct cfg_origins *o);

/* Note that path ("bridge[0].topic", as cfg_walk() writes it) was set at
 * file:line. False when out of memory. */
bool cfg_origins_add(struct cfg_origins *o, const char *path, unsigned file,
    unsigned line);

/* Ready the record for cfg_origins_find(); after the last add. */
void cfg_origins_done(struct cfg_origins *o);

/* Where path was set; false when no file set it. o may be NULL. */
bool cfg_origins_find(const struct cfg_origins *o, const char *path,
    unsigned *file, unsigned *line);

/* --- the loader (cfg_load.c), for cfg_files.c ----------------------------- */

/*
 * A load of nfiles files (1..CFG_MAX_DROPINS + 1) that end up in one
 * config: cfg_loader_add() or cfg_loader_fail() once per file, in merge
 * order, then cfg_loader_finish(), which frees the loader. NULL: no memory.
 */
struct cfg_loader *cfg_loader_new(size_t nfiles, unsigned flags);

/* Parse one file's bytes (len <= CFG_MAX_FILE) and check it. Nothing is
 * kept of buf or name. False when out of memory. */
bool cfg_loader_add(struct cfg_loader *ld, const char *name, const void *buf,
    size_t len);

/* The file name could not be read: the message "NAME: what" stands for it,
 * and the load ends in CFG_IO. */
void cfg_loader_fail(struct cfg_loader *ld, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Check the merged files, hand the messages over to diag and, on CFG_OK,
 * the new config to *out. Returns as cfg_load(). */
enum cfg_status cfg_loader_finish(struct cfg_loader *ld, struct cfg **out,
    struct cfg_diag *diag);

/* Append "FILE: what" (a problem without position) to diag. False when
 * out of memory. */
bool cfg_diag_add(struct cfg_diag *diag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What a section's check sees: the object, its mapping, and per key (index
 * as in sec->keys) the nodes given and whether the value was refused. */
struct cfg_seen {
	const struct cfg_node *key, *val;
	bool bad;
};

struct cfg_ctx {
	struct cfg_loader	*ld;
	const struct cfg_section *sec;
	void			*obj;
	const struct cfg_node	*map;
	const struct cfg_seen	*seen;
};

/* Report "FILE:L:C: PATH.key: message" at node at (never NULL); key NULL:
 * the current path alone. */
void cfg_error(struct cfg_loader *ld, const struct cfg_node *at,
    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A check ran out of memory: the load fails with CFG_NOMEM. */
void cfg_oom(struct cfg_loader *ld);

/* The value node given for key in ctx's section, NULL when not given. */
const struct cfg_node *cfg_given(const struct cfg_ctx *ctx, const char *key);

/* False when key was given with a value that was refused: checks that
 * compare it with another key must not run then. */
bool cfg_usable(const struct cfg_ctx *ctx, const char *key);

/* Where to point at for key: its value if given, else the section. */
const struct cfg_node *cfg_at(const struct cfg_ctx *ctx, const char *key);

/* --- cross-field checks (cfg_check.c) ------------------------------------- */

void cfg_check_root(const struct cfg_ctx *);
void cfg_check_listener(const struct cfg_ctx *);
void cfg_check_aws(const struct cfg_ctx *);
void cfg_check_credentials(const struct cfg_ctx *);
void cfg_check_proxy(const struct cfg_ctx *);
void cfg_check_reconnect(const struct cfg_ctx *);
void cfg_check_queue(const struct cfg_ctx *);
void cfg_check_bridge(const struct cfg_ctx *);

#endif
