/*
 * libFuzzer target for the config loader (lib/config): arbitrary bytes go to
 * cfg_load_mem(). A refusal must come with messages that name the file; an
 * accepted config must walk cleanly and survive the round trip: what
 * cfg_describe() writes loads back without error and describes the same.
 * The same bytes, up to a NUL, are also an https_proxy value for
 * cfg_proxy_parse(), whose answer must be consistent: a host when valid,
 * user and password together, nothing held when refused.
 * Inputs are capped at 64KiB: the loader's own cap is 1MiB, but large inputs
 * only slow the fuzzer down without reaching new code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"

#define INPUT_MAX	(64 * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
touch(const struct cfg_key *key, const char *value, void *arg)
{
	size_t *sum = arg;

	*sum += strlen(key->path) + (value ? strlen(value) : 0);
}

static void
check_diag(const struct cfg_diag *d, const char *name)
{
	size_t len = strlen(name);

	if (d->count == 0)
		abort();
	for (size_t i = 0; i < d->count; i++)
		if (strncmp(d->msgs[i], name, len) != 0 ||
		    d->msgs[i][len] != ':')
			abort();
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg = NULL, *again = NULL;
	char *first = NULL, *second = NULL;
	enum cfg_status st;
	size_t sum = 0;

	if (size > INPUT_MAX)
		return 0;
	check_proxy(data, size);
	st = cfg_load_mem("fuzz.yaml", data, size, &cfg, &d);
	if (st == CFG_INVALID)
		check_diag(&d, "fuzz.yaml");
	if (st != CFG_OK)
		goto done;
	cfg_walk(cfg, touch, &sum);
	if ((first = cfg_describe(cfg)) == NULL)
		goto done;
	st = cfg_load_mem("again.yaml", first, strlen(first), &again, &d);
	if (st == CFG_INVALID)
		abort();
	if (st == CFG_OK && ((second = cfg_describe(again)) == NULL ||
	    strcmp(first, second) != 0))
		abort();

done:
	free(second);
	free(first);
	cfg_free(again);
	cfg_free(cfg);
	cfg_diag_clear(&d);
	return 0;
}
