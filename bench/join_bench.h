/* join-bench: pieces shared by the option parsing and report
 * (join_bench.c), the cluster it starts (join_cluster.c) and the joiners
 * (join_client.c). Private to bench/. */
#ifndef SWARMPKI_BENCH_JOIN_BENCH_H
#define SWARMPKI_BENCH_JOIN_BENCH_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_MANAGERS 7
#define BENCH_ADDR_SIZE    64
/* Distinct failure texts kept for the report. */
#define BENCH_MAX_ERRORS 5
#define BENCH_ERROR_SIZE 320

/* ---- The cluster under test ---- */

typedef struct bench_manager {
    char data_dir[PATH_MAX];
    char addr[BENCH_ADDR_SIZE];
    pid_t pid; /* 0 when unknown, as for a cluster the benchmark did not start */
} bench_manager;

typedef struct bench_cluster {
    char swarmpki[PATH_MAX]; /* the swarmpki executable */
    /* The mkdtemp directory, empty for a cluster this process did not start. */
    char base_dir[PATH_MAX];
    bench_manager managers[BENCH_MAX_MANAGERS];
    int count;
    int started; /* 1 when this process started the managers and must stop them */
    char worker_token[128];
} bench_cluster;

/* Starts count managers on free 127.0.0.1 ports with data directories
 * under a new directory in parent_dir, waits until every manager is a
 * reachable voter, and reads the worker token. On failure the managers
 * already started are stopped and the directory removed. Returns 0 or -1
 * with a message in errmsg (BENCH_ERROR_SIZE bytes). */
int bench_cluster_start(bench_cluster *c, const char *parent_dir, int count,
                        char *errmsg);

/* Stops the managers this process started (`swarmpki stop`, then SIGKILL
 * by pid if that fails) and removes the directory unless keep is set. */
void bench_cluster_stop(bench_cluster *c, int keep);

/* Returns the index of the manager that leads, or -1 if none is known.
 * Only works for a cluster this process started. */
int bench_cluster_leader(const bench_cluster *c);

/* Returns the leader's Raft commit index, or 0 if it cannot be read. */
uint64_t bench_cluster_commit(const bench_cluster *c, int leader);

/* Returns the CPU time (user plus system, all threads) of process pid in
 * milliseconds, or -1 if /proc cannot be read. */
double bench_process_cpu_ms(pid_t pid);

/* ---- The joiners ---- */

typedef struct bench_run_opts {
    const bench_cluster *cluster;
    int concurrency;     /* joins in flight at any time */
    int threads;         /* event-loop threads sharing the joins */
    uint64_t joins;      /* joins to start, or 0 when seconds is set */
    double seconds;      /* start joins until this much time has passed */
    int bundle_per_join; /* fetch and pin the trust bundle before every join */
    uint32_t timeout_ms; /* for each connection and for each response */
} bench_run_opts;

typedef struct bench_run_result {
    uint64_t succeeded;
    uint64_t failed;
    double wall_s;        /* first join started to last join finished */
    uint64_t *latency_us; /* one per successful join, sorted, released with free() */
    uint64_t error_counts[BENCH_MAX_ERRORS];
    char errors[BENCH_MAX_ERRORS][BENCH_ERROR_SIZE];
    int error_kinds;
    uint64_t other_errors; /* failures whose text is not among errors */
} bench_run_result;

/* Runs the joins that opts describes and fills out. Returns 0, or -1 with a
 * message when the joiners could not start (no thread, no loop, invalid TLS
 * settings). Failed joins are counted in out, not returned. */
int bench_run(const bench_run_opts *opts, bench_run_result *out, char *errmsg);

void bench_run_result_free(bench_run_result *r);

/* Set by SIGINT or SIGTERM: the joiners start no new join. */
extern volatile int bench_interrupted;

#endif
