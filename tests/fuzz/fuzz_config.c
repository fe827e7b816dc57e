/* tests/fuzz/fuzz_config.c - libFuzzer target for dnsd's option parser:
 * config_parse() with --config naming a memory file that holds the input up
 * to its first NUL; what follows the NUL is split at newlines into up to 32
 * command-line arguments placed after it (so flags and file compete as at
 * startup). --help/-h/--version and further --config arguments are left
 * out (they print usage or read other files). The result must be 0 or
 * -EINVAL, and a parsed config must hold what its contract says: at most
 * CONFIG_LIST_MAX entries per list, every entry a string.
 *
 * The parser's error lines are muted (GSLB_FUZZ_VERBOSE=1 shows them).
 * Seeds: tests/fuzz/corpus/config. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/config.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CF_ARGS 32

static int cf_fd = -1;

static void cf_lists_ok(const struct config *c)
{
	const struct {
		const char *const *v;
		size_t n;
	} lists[] = {
		{ c->listen, c->n_listen }, { c->zone, c->n_zone },
		{ c->rrl_whitelist, c->n_rrl_whitelist },
	};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		if (lists[i].n > CONFIG_LIST_MAX)
			abort();
		for (size_t k = 0; k < lists[i].n; k++)
			if (!lists[i].v[k])
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char args[4096];
	char path[64], *argv[CF_ARGS + 2];
	const uint8_t *nul = memchr(data, 0, size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	int argc = 0, rc;
	struct config c;

	if (size > 64 * 1024)
		return 0;
	fu_memfile("fuzz-config", &cf_fd, data, flen, path, sizeof(path));
	argv[argc++] = (char *)"--config";
	argv[argc++] = path;
	if (nul) {
		size_t alen = size - flen - 1;

		if (alen >= sizeof(args))
			alen = sizeof(args) - 1;
		memcpy(args, nul + 1, alen);
		args[alen] = 0;
		for (char *a = args, *next; a && argc < CF_ARGS + 2; a = next) {
			if ((next = strchr(a, '\n')))
				*next++ = 0;
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ||
			    strcmp(a, "--version") == 0 ||
			    strncmp(a, "--config", 8) == 0)
				continue;
			argv[argc++] = a;
		}
	}
	config_init(&c);
	fu_quiet_begin();
	rc = config_parse(&c, argc, argv);
	fu_quiet_end();
	if (rc != 0 && rc != -EINVAL) {
		fprintf(stderr, "fuzz_config: config_parse returned %d\n", rc);
		abort();
	}
	cf_lists_ok(&c);
	config_fini(&c);
	return 0;
}
