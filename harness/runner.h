/*
 * runner.h - run one point of the matrix: fork, place, gate, measure.
 */
#ifndef STRESS_RUNNER_H
#define STRESS_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"

struct result {
	char timestamp[32];  /* UTC, ISO 8601, when the run started */
	double duration_s;   /* measured wall time */
	uint64_t ops;
	double ops_per_s, ns_per_op;
	uint64_t lat_samples, p50, p90, p99, p999, max;
	double cv;
	uint64_t waits, timeouts, kills, recoveries, violations;
	double user_s, sys_s;
	int64_t vol_cs, invol_cs;
	int mem_node;
	char *cpus;          /* CPU each worker last ran on, ';'-separated */
	char *nodes;         /* node of each of those CPUs */
	bool oversubscribed;
	const char *status;  /* ok, violations, worker_died, hung, ... */
	bool failed;         /* counts for exit status 1 */
};

/* Machine facts gathered once. */
struct env {
	int ncpus;           /* CPUs this process may use */
	int cpus[1024];
	int numa_nodes;
	bool numa;           /* libnuma usable */
};

void env_init(struct env *env);

/*
 * env_check - refuse points the machine cannot run (a CPU that does not
 * exist, a node without memory).  Prints file:line messages; returns the
 * number of problems (exit status 3).
 */
int env_check(const struct env *env, const char *file,
	      const struct point *pt);

/* Run @pt once; fills @res (free its strings with result_free). */
void run_point(const struct env *env, const struct point *pt,
	       struct result *res);
void result_free(struct result *res);

/* Set by SIGINT/SIGTERM: finish the current run as "interrupted". */
extern volatile int stress_interrupted;

#endif
