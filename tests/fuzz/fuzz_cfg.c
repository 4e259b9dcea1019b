/*
 * libFuzzer target for the config loader (lib/config). The input is split at
 * each line "===" into up to MAX_FILES files, a main file and its drop-ins,
 * which cfg_load_sources() merges in order (one part: the single-file path).
 * A refusal must come with messages that each name one of the files; an
 * accepted config must walk cleanly, every origin naming one of its files,
 * and survive the round trip: what cfg_describe() writes, and what
 * cfg_describe_origins() writes, loads back as one file without error and
 * describes the same.
 * The whole input, up to a NUL, is also an https_proxy value for
 * cfg_proxy_parse(), whose answer must be consistent: a host when valid,
 * user and password together, nothing held when refused.
 * Inputs are capped at 64KiB: the loader's own caps are 1MiB a file and 4MiB
 * together, but large inputs only slow the fuzzer down without reaching new
 * code.
 */
#define _GNU_SOURCE	/* memmem() */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"

#define INPUT_MAX	(64 * 1024)
#define MAX_FILES	6
#define SEP		"\n===\n"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[MAX_FILES] = {
	"fuzz.yaml", "conf.d/10-a.yaml", "conf.d/20-b.yaml", "conf.d/30-c.yaml",
	"conf.d/40-d.yaml", "conf.d/50-e.yaml",
};

struct walk {
	const struct cfg	*cfg;
	size_t			 sum;
};

static void
touch(const struct cfg_key *key, const char *value, void *arg)
{
	struct walk *w = arg;
	bool known = key->file == NULL;

	w->sum += strlen(key->path) + (value ? strlen(value) : 0);
	for (size_t i = 0; !known && i < w->cfg->nfiles; i++)
		known = key->file == w->cfg->files[i];
	if (!known || (key->file == NULL) != (key->line == 0))
		abort();
}

/* Every message starts with "NAME:" for one of the first n names. */
static void
check_diag(const struct cfg_diag *d, size_t n)
{
	if (d->count == 0)
		abort();
	for (size_t i = 0; i < d->count; i++) {
		bool named = false;

		for (size_t k = 0; k < n && !named; k++) {
			size_t len = strlen(names[k]);

			named = strncmp(d->msgs[i], names[k], len) == 0 &&
			    d->msgs[i][len] == ':';
		}
		if (!named)
			abort();
	}
}

static void
check_proxy(const uint8_t *data, size_t size)
{
	char *url = strndup((const char *)data, size), err[256];
	struct cfg_proxy px;

	if (url == NULL)
		return;
	if (cfg_proxy_parse(url, &px, err, sizeof(err)) == CFG_OK) {
		if (px.url.host == NULL || (px.username == NULL) !=
		    (px.password == NULL))
			abort();
		cfg_proxy_clear(&px);
	} else if (px.url.host != NULL || px.username != NULL ||
	    px.password != NULL) {
		abort();
	}
	free(url);
}

/* Split data at each SEP; the last part takes what is left. */
static size_t
split(const uint8_t *data, size_t size, struct cfg_source *src)
{
	const char *p = (const char *)data, *end = p + size, *sep;
	size_t n = 0;

	while (n + 1 < MAX_FILES && (sep = memmem(p, (size_t)(end - p), SEP,
	    strlen(SEP))) != NULL) {
		src[n] = (struct cfg_source){ names[n], p, (size_t)(sep - p) };
		n++;
		p = sep + strlen(SEP);
	}
	src[n] = (struct cfg_source){ names[n], p, (size_t)(end - p) };
	return n + 1;
}

/* text loads back as one file into a config that cfg_describe() renders
 * as want. */
static void
check_reload(const char *text, const char *want)
{
	struct cfg_diag d = { 0 };
	struct cfg *again = NULL;
	enum cfg_status st;
	char *got;

	st = cfg_load_mem("again.yaml", text, strlen(text), &again, &d);
	if (st == CFG_INVALID || st == CFG_IO)
		abort();
	if (st == CFG_OK) {
		if ((got = cfg_describe(again)) != NULL &&
		    strcmp(got, want) != 0)
			abort();
		free(got);
	}
	cfg_free(again);
	cfg_diag_clear(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_source src[MAX_FILES];
	struct cfg_diag d = { 0 };
	struct cfg *cfg = NULL;
	char *first = NULL, *annotated = NULL;
	struct walk w = { NULL, 0 };
	enum cfg_status st;
	size_t n;

	if (size > INPUT_MAX)
		return 0;
	check_proxy(data, size);
	n = split(data, size, src);
	st = cfg_load_sources(src, n, CFG_LOAD_ORIGINS, &cfg, &d);
	if (st == CFG_INVALID)
		check_diag(&d, n);
	if (st != CFG_OK)
		goto done;
	if (cfg->nfiles != n)
		abort();
	w.cfg = cfg;
	cfg_walk(cfg, touch, &w);
	if ((first = cfg_describe(cfg)) == NULL ||
	    (annotated = cfg_describe_origins(cfg)) == NULL)
		goto done;
	check_reload(first, first);
	check_reload(annotated, first);

done:
	free(annotated);
	free(first);
	cfg_free(cfg);
	cfg_diag_clear(&d);
	return 0;
}
