/*
 * fuzz_scenario.c - libFuzzer target: the stress harness's scenario parser
 * (harness/scenario.c: INI reading, sweep and range expansion, units,
 * ${VAR} expansion, validation and did-you-mean messages).
 *
 * scenario_load() reads a path, so each input is written to one memfd and
 * parsed through /proc/self/fd/N.  The run matrix is built but nothing is
 * run.  Built and run by scripts/fuzz (`make fuzz`).
 *
 * The parser is a one-shot command-line parser that keeps what it parsed
 * (section names, points) for the life of the process, as `stress` does,
 * and does not free everything on its error paths: scripts/fuzz runs this
 * target with leak detection off, and this file frees the run matrix.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

/*
 * Free what the parser left in @sc: each point's string values (one
 * strdup per point and key) and the section names the points share.  What
 * the parser drops on error paths stays allocated (a command-line parser
 * exits soon after); it is small enough for runs of minutes.
 */
static void free_scenario(struct scenario *sc)
{
	const char *last = NULL;

	for (size_t k = 0; k < sc->npoints; k++) {
		struct point *pt = &sc->points[k];

		for (int id = 0; id < NOPTS; id++) {
			char **s;

			if (options[id].type <= OT_DURATION)
				continue;
			s = (char **)((char *)&pt->cfg + options[id].offset);
			free(*s);
		}
		/* points of one section are consecutive */
		if (pt->section != last) {
			last = pt->section;
			free((char *)pt->section);
		}
	}
	free(sc->points);
	free(sc->path);
	free(sc->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct overrides ov = { NULL, NULL, NULL };
	struct scenario sc;

	if (fd < 0) {
		fd = memfd_create("scenario.ini", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		/* ${VAR} expansion: one variable set, the rest unset */
		setenv("FUZZ_WORKERS", "2", 1);
	}
	/* Bound the input: a scenario is a small text file, and sweeps of
	 * sweeps grow the run matrix multiplicatively. */
	if (size > 4096)
		return 0;
	if (ftruncate(fd, 0) != 0 ||
	    (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	scenario_load(path, &ov, &sc);
	free_scenario(&sc);
	return 0;
}
