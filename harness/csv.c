/*
 * csv.c - results as CSV (RFC 4180 quoting), one row per run.
 *
 * The columns are one table below: the header, the row writer (a switch
 * over the same enum) and doc/csv-schema.md all come from it, and a test
 * checks the committed document against `stress --csv-doc`.  Columns are
 * only ever appended; removing or renaming one bumps CSV_SCHEMA_VERSION.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <numa.h>

#include "csv.h"
#include "gitrev.h"
#include "shmpool.h"
#include "workload.h"

#define CSV_COLUMNS(X)                                                        \
	X(schema_version, "Version of this column layout.")                   \
	X(timestamp, "UTC start time of the run, ISO 8601.")                  \
	X(host, "Host name.")                                                 \
	X(cpu_model, "CPU model name from /proc/cpuinfo.")                    \
	X(ncpus, "CPUs online.")                                              \
	X(numa_nodes, "NUMA nodes configured.")                               \
	X(kernel, "Kernel release (uname -r).")                               \
	X(version, "shmpool version the harness ran against, and the git "    \
		   "revision it was built from (`0.1.0+g1a2b3c4`, "          \
		   "`-dirty` when the tree had changes).")                    \
	X(compiler, "Compiler that built the harness.")                       \
	X(scenario, "Scenario file name without .ini.")                       \
	X(section, "Section of the scenario (the experiment).")              \
	X(workload, "Workload name (stress --list).")                         \
	X(variant, "Pool variant (raw, i64, i32, f64, str).")                 \
	X(op, "Operation, for workloads that have one; empty otherwise.")     \
	X(workers, "Workers: processes, or threads (see mode).")               \
	X(batch, "Slots per alloc_n/free_n call.")                            \
	X(capacity, "Slots in the pool.")                                     \
	X(elem_size, "Bytes per slot (str: max length).")                     \
	X(slots, "atomic/floor: counters hit; crash_recover: slots held "      \
		 "per worker.")                                                \
	X(hold_ns, "blocking: hold time per slot, ns.")                       \
	X(pin, "CPU placement policy as written.")                            \
	X(mem, "Pool memory policy as written.")                              \
	X(backing, "Pool backing (anon, memfd, file).")                       \
	X(mem_node, "NUMA node of the pool's first data page after the run "  \
		    "(floor: of its shared words); -1 unknown.")               \
	X(cpus, "CPU each worker was on when it finished, ';'-separated, in " \
		"worker order (-1: the worker was killed).")                   \
	X(nodes, "NUMA node of each of those CPUs.")                          \
	X(oversubscribed, "1 if workers exceed the CPUs available.")          \
	X(rep, "Repetition number, from 1.")                                  \
	X(ops_target, "Ops per worker of an ops-based run; 0 = time-based.")  \
	X(duration_s, "Measured wall time, seconds (time-based: after "       \
		      "warmup; ops-based: start gate to the last worker "      \
		      "done).")                                                \
	X(ops, "Ops completed in the measured time, all workers.")           \
	X(ops_per_s, "ops / duration_s.")                                     \
	X(ns_per_op, "Average time one worker spent per op: workers x 1e9 / " \
		     "ops_per_s.  Equals the latency of one op for one "       \
		     "worker.")                                                \
	X(lat_samples, "Latency samples taken (every latency_sample-th op; "  \
		       "blocking: every wait).")                               \
	X(lat_p50_ns, "Median sampled latency, ns (log-linear histogram, "    \
		      "bucket midpoint, at most 3% off; timer cost "           \
		      "subtracted).")                                          \
	X(lat_p90_ns, "90th percentile, ns.")                                 \
	X(lat_p99_ns, "99th percentile, ns.")                                 \
	X(lat_p999_ns, "99.9th percentile, ns.")                              \
	X(lat_max_ns, "Largest sample, ns (exact).")                          \
	X(fairness_cv, "Coefficient of variation (stddev / mean) of the "     \
		       "per-worker op counts; 0 = perfectly fair.")            \
	X(waits, "Allocations that found the pool full and slept.")          \
	X(timeouts, "Allocations that timed out.")                            \
	X(kills, "Workers SIGKILLed by the harness (crash_recover).")         \
	X(recoveries, "Slots given back by shmpool_recover_stale.")           \
	X(violations, "Invariant violations found (any > 0 fails the run).")  \
	X(user_s, "User CPU seconds of the workers in the measured phase "    \
		  "(crash_recover: of the incarnations that were not "         \
		  "killed).")                                                  \
	X(sys_s, "System CPU seconds of the workers in the measured phase "   \
		 "(near 0: the fast path stays out of the kernel).")           \
	X(vol_cs, "Voluntary context switches of the workers (measured).")   \
	X(invol_cs, "Involuntary context switches of the workers "            \
		    "(measured).")                                             \
	X(status, "ok, or why the run failed: violations, worker_died, "      \
		  "worker_failed, hung, setup_failed, verify_failed, "         \
		  "env_error, interrupted.")                                  \
	X(backend, "What implemented alloc/free (alloc_free, "                \
		   "alloc_set_get_free): shmpool, "                          \
		   "mutex, urcu, floor; empty for workloads without the key.")    \
	X(mode, "Workers as `processes` or `threads` (then user_s, sys_s "  \
		"and the context switches are per thread, RUSAGE_THREAD).")  \
	X(hugepages, "Pool memory: off; thp (MADV_HUGEPAGE advice; the "    \
		     "kernel may ignore it); or on (explicit huge pages: "   \
		     "SHMPOOL_HUGETLB, MAP_HUGETLB).  See doc/backends.md.") \
	X(prefault, "on: every page of the pool's data was faulted in "      \
		    "before the start gate.")                                  \
	X(cache, "Slots per worker's slot cache of the pool (0: none).")

enum csv_col {
#define X(name, doc) COL_##name,
	CSV_COLUMNS(X)
#undef X
	NCOLS
};

static const char *const col_names[] = {
#define X(name, doc) #name,
	CSV_COLUMNS(X)
#undef X
};

static const char *const col_docs[] = {
#define X(name, doc) doc,
	CSV_COLUMNS(X)
#undef X
};

void hostinfo_init(struct hostinfo *h)
{
	struct utsname u;
	memset(h, 0, sizeof(*h));
	gethostname(h->host, sizeof(h->host) - 1);
	if (uname(&u) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
	h->ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	h->numa_nodes = numa_available() < 0 ? 1 : numa_num_configured_nodes();
	snprintf(h->version, sizeof(h->version), "%s+g%s", shmpool_version(),
		 STRESS_GIT_REV);
#ifdef __VERSION__
	snprintf(h->compiler, sizeof(h->compiler), "%s", __VERSION__);
#endif
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		char *v = strchr(line, ':');
		if (v == NULL)
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(h->cpu_model, sizeof(h->cpu_model), "%s", v);
		break;
	}
	if (f)
		fclose(f);
}

static void put_str(FILE *f, const char *s)
{
	if (s[strcspn(s, ",\"\n\r")] == '\0') {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

int csv_open(struct csv *c, const char *path, const char *scenario)
{
	memset(c, 0, sizeof(*c));
	if (path) {
		c->f = fopen(path, "w");
		if (c->f == NULL) {
			fprintf(stderr, "stress: %s: %s\n", path,
				strerror(errno));
			return -1;
		}
		c->path = strdup(path);
	} else {
		char stamp[32], buf[512];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		if (mkdir("results", 0777) != 0 && errno != EEXIST) {
			fprintf(stderr, "stress: mkdir results: %s\n",
				strerror(errno));
			return -1;
		}
		for (int n = 0; n < 1000; n++) {
			if (n == 0)
				snprintf(buf, sizeof(buf),
					 "results/%s-%s.csv", scenario, stamp);
			else
				snprintf(buf, sizeof(buf),
					 "results/%s-%s-%d.csv", scenario,
					 stamp, n);
			int fd = open(buf, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0 && errno == EEXIST)
				continue;
			if (fd < 0) {
				fprintf(stderr, "stress: %s: %s\n", buf,
					strerror(errno));
				return -1;
			}
			c->f = fdopen(fd, "w");
			c->path = strdup(buf);
			break;
		}
		if (c->f == NULL) {
			fprintf(stderr, "stress: no free name for %s\n", buf);
			return -1;
		}
	}
	for (int i = 0; i < NCOLS; i++)
		fprintf(c->f, "%s%s", i ? "," : "", col_names[i]);
	fputc('\n', c->f);
	fflush(c->f);
	return 0;
}

void csv_row(struct csv *c, const struct hostinfo *h, const char *scenario,
	     const struct point *pt, unsigned rep, const struct result *res)
{
	const struct config *g = &pt->cfg;
	FILE *f = c->f;
#define U(x) fprintf(f, "%llu", (unsigned long long)(x))
#define I(x) fprintf(f, "%lld", (long long)(x))
#define S(x) put_str(f, (x))
	for (int i = 0; i < NCOLS; i++) {
		if (i)
			fputc(',', f);
		switch ((enum csv_col)i) {
		case COL_schema_version:
			fprintf(f, "%d", CSV_SCHEMA_VERSION);
			break;
		case COL_timestamp: S(res->timestamp); break;
		case COL_host: S(h->host); break;
		case COL_cpu_model: S(h->cpu_model); break;
		case COL_ncpus: fprintf(f, "%d", h->ncpus); break;
		case COL_numa_nodes: fprintf(f, "%d", h->numa_nodes); break;
		case COL_kernel: S(h->kernel); break;
		case COL_version: S(h->version); break;
		case COL_compiler: S(h->compiler); break;
		case COL_scenario: S(scenario); break;
		case COL_section: S(pt->section); break;
		case COL_workload: S(pt->wl->name); break;
		case COL_variant: S(g->variant); break;
		case COL_op: S(pt->wl->ops ? g->op : ""); break;
		case COL_workers: I(g->workers); break;
		case COL_batch: I(g->batch); break;
		case COL_capacity: I(g->capacity); break;
		case COL_elem_size: I(g->elem_size); break;
		case COL_slots: I(g->slots); break;
		case COL_hold_ns: I(g->hold); break;
		case COL_pin: S(g->pin); break;
		case COL_mem: S(g->mem); break;
		case COL_backing: S(g->backing); break;
		case COL_mem_node: fprintf(f, "%d", res->mem_node); break;
		case COL_cpus: S(res->cpus ? res->cpus : ""); break;
		case COL_nodes: S(res->nodes ? res->nodes : ""); break;
		case COL_oversubscribed:
			fprintf(f, "%d", res->oversubscribed);
			break;
		case COL_rep: fprintf(f, "%u", rep); break;
		case COL_ops_target: I(g->ops); break;
		case COL_duration_s: fprintf(f, "%.6f", res->duration_s); break;
		case COL_ops: U(res->ops); break;
		case COL_ops_per_s: fprintf(f, "%.1f", res->ops_per_s); break;
		case COL_ns_per_op: fprintf(f, "%.3f", res->ns_per_op); break;
		case COL_lat_samples: U(res->lat_samples); break;
		case COL_lat_p50_ns: U(res->p50); break;
		case COL_lat_p90_ns: U(res->p90); break;
		case COL_lat_p99_ns: U(res->p99); break;
		case COL_lat_p999_ns: U(res->p999); break;
		case COL_lat_max_ns: U(res->max); break;
		case COL_fairness_cv: fprintf(f, "%.4f", res->cv); break;
		case COL_waits: U(res->waits); break;
		case COL_timeouts: U(res->timeouts); break;
		case COL_kills: U(res->kills); break;
		case COL_recoveries: U(res->recoveries); break;
		case COL_violations: U(res->violations); break;
		case COL_user_s: fprintf(f, "%.3f", res->user_s); break;
		case COL_sys_s: fprintf(f, "%.3f", res->sys_s); break;
		case COL_vol_cs: I(res->vol_cs); break;
		case COL_invol_cs: I(res->invol_cs); break;
		case COL_status: S(res->status); break;
		case COL_backend:
			S(strstr(pt->wl->keys, "backend") ? g->backend : "");
			break;
		case COL_mode: S(g->mode); break;
		case COL_hugepages: S(g->hugepages); break;
		case COL_prefault: S(g->prefault); break;
		case COL_cache: I(g->cache); break;
		case NCOLS: break;
		}
	}
	fputc('\n', f);
	fflush(f);
#undef U
#undef I
#undef S
}

int csv_close(struct csv *c)
{
	int rc = 0;
	if (c->f && fclose(c->f) != 0)
		rc = -1;
	c->f = NULL;
	free(c->path);
	c->path = NULL;
	return rc;
}

void csv_doc(FILE *f)
{
	fprintf(f,
		"<!-- Generated by `stress --csv-doc` from harness/csv.c; do "
		"not edit.  tests/stress_doc.sh fails when it is stale. -->\n"
		"# stress CSV schema (version %d)\n\n"
		"`stress` writes one row per run (one repetition of one sweep "
		"point) to `results/<scenario>-<UTC time>.csv` (a `-N` suffix "
		"is added rather than overwrite a file) or to the file given "
		"with `-o`.  The first line is the header.  Fields are quoted "
		"as RFC 4180 says when they hold a comma or a quote.  Columns "
		"are only ever appended: a reader should select them by name.  "
		"Files from different hosts can be concatenated (drop the "
		"repeated headers): the host columns tell the rows apart.\n\n"
		"Latency figures are sampled (`latency_sample`): every Nth op "
		"of each worker is timed with CLOCK_MONOTONIC, the timer's own "
		"cost (the fastest of 1000 back-to-back reads at the start of "
		"the run) is subtracted, and the samples go to per-worker "
		"log-linear histograms in shared memory that are added "
		"bucket by bucket, so the percentiles are exact over all "
		"workers up to the bucket width (3%%).  For `blocking` they "
		"are wake latencies instead: from the latest free to the "
		"waiter's return, one per wait.\n\n"
		"| # | column | meaning |\n|---|---|---|\n", CSV_SCHEMA_VERSION);
	for (int i = 0; i < NCOLS; i++)
		fprintf(f, "| %d | `%s` | %s |\n", i + 1, col_names[i],
			col_docs[i]);
}
