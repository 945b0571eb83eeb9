/* join-bench: join throughput and latency of a swarmpki cluster.
 *
 * Starts N managers with the real swarmpki executable on 127.0.0.1, or uses
 * a running cluster given by --manager and --token. Then runs K concurrent
 * joiners. Each generates a key and CSR, pins the trust bundle by the
 * token's digest, joins as a worker and verifies the certificate it gets.
 * Prints joins per second, latency percentiles, failed joins, and the
 * managers' CPU time per join. Run with --help for the options. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/join_bench.h"
#include "net/net.h"

#ifndef SWARMPKI_BIN
#define SWARMPKI_BIN ""
#endif

typedef struct options {
    int managers;
    int concurrency;
    int threads;
    uint64_t joins;
    double seconds;
    uint64_t warmup;
    int bundle_per_join;
    uint32_t timeout_ms;
    const char *swarmpki;
    const char *parent_dir;
    const char *external[BENCH_MAX_MANAGERS];
    int external_count;
    const char *token;
    int keep;
} options;

/* CPU milliseconds of each manager and of this process at one moment. */
typedef struct cpu_sample {
    double manager_ms[BENCH_MAX_MANAGERS];
    double self_ms;
} cpu_sample;

static const char usage_text[] =
    "Usage: join-bench [OPTIONS]\n"
    "\n"
    "Measures how many workers per second a swarmpki cluster on 127.0.0.1 can\n"
    "join, with each joiner doing what `swarmpki join` does before it writes files.\n"
    "\n"
    "Options:\n"
    "  --managers N        managers to start, 1 to 7 (default 3)\n"
    "  --concurrency K     joins in flight at any time (default 16)\n"
    "  --joins M           measured joins (default 2000)\n"
    "  --seconds S         start measured joins for S seconds instead of a count\n"
    "  --warmup W          joins before the measurement, not counted (default 200)\n"
    "  --threads T         joiner threads, each with its own event loop (default 1)\n"
    "  --bundle MODE       per-join: fetch and pin the trust bundle before every join\n"
    "                      (default, as a new node does); once: once per joiner\n"
    "  --timeout-ms MS     limit for connecting and for each answer (default 10000)\n"
    "  --swarmpki PATH     swarmpki executable (default: the one built with join-bench)\n"
    "  --dir DIR           where to create the data directories (default $TMPDIR or "
    "/tmp)\n"
    "  --keep              keep the data directories and logs after the run\n"
    "  --manager HOST:PORT use a running cluster instead (repeat for each manager;\n"
    "                      needs --token; manager CPU is then not measured)\n"
    "  --token TOKEN       the worker join token of that cluster\n"
    "\n"
    "Exit status: 0 when every measured join succeeded, 1 when the cluster or the\n"
    "joiners could not start, 2 for a usage error, 3 when a measured join failed.\n";

static void on_signal(int signum)
{
    bench_interrupted = 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "join-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'join-bench --help' for usage.\n");
    return 2;
}

static int parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min ||
        v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Finds the swarmpki built in the same tree: the path CMake recorded, else
 * ../node/swarmpki next to this executable. */
static const char *default_swarmpki(char *buf, size_t size)
{
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (SWARMPKI_BIN[0] != '\0' && access(SWARMPKI_BIN, X_OK) == 0) {
        return SWARMPKI_BIN;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        return NULL;
    }
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL) {
        return NULL;
    }
    *slash = '\0';
    snprintf(buf, size, "%s/../node/swarmpki", self);
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* Parses the option at argv[*i] if it is one that takes a value. Returns 1
 * when it was, 0 when it is not such an option, and 2 after printing a
 * usage error. */
static int value_option(options *o, int argc, char **argv, int *i)
{
    const char *name = argv[*i];
    const char *value;
    uint64_t n;

    static const char *const names[] = {"--managers",   "--concurrency", "--threads",
                                        "--joins",      "--warmup",      "--seconds",
                                        "--timeout-ms", "--bundle",      "--manager",
                                        "--swarmpki",   "--dir",         "--token"};
    int known = 0;

    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        known = known || strcmp(name, names[k]) == 0;
    }
    if (!known) {
        return 0;
    }
    if (*i + 1 >= argc) {
        return usage_error("%s needs a value", name);
    }
    value = argv[++*i];

    if (strcmp(name, "--managers") == 0) {
        if (parse_count(value, 1, BENCH_MAX_MANAGERS, &n) != 0) {
            return usage_error("--managers must be 1 to 7, not \"%s\"", value);
        }
        o->managers = (int)n;
    } else if (strcmp(name, "--concurrency") == 0) {
        if (parse_count(value, 1, 10000, &n) != 0) {
            return usage_error("--concurrency must be 1 to 10000, not \"%s\"", value);
        }
        o->concurrency = (int)n;
    } else if (strcmp(name, "--threads") == 0) {
        if (parse_count(value, 1, 64, &n) != 0) {
            return usage_error("--threads must be 1 to 64, not \"%s\"", value);
        }
        o->threads = (int)n;
    } else if (strcmp(name, "--joins") == 0) {
        if (parse_count(value, 1, 100000000, &o->joins) != 0) {
            return usage_error("--joins must be a positive count, not \"%s\"", value);
        }
    } else if (strcmp(name, "--warmup") == 0) {
        if (parse_count(value, 0, 100000000, &o->warmup) != 0) {
            return usage_error("--warmup must be a count, not \"%s\"", value);
        }
    } else if (strcmp(name, "--seconds") == 0) {
        char *end;
        o->seconds = strtod(value, &end);
        if (end == value || *end != '\0' || !(o->seconds > 0 && o->seconds <= 86400)) {
            return usage_error("--seconds must be above 0 and at most 86400, not \"%s\"",
                               value);
        }
    } else if (strcmp(name, "--timeout-ms") == 0) {
        if (parse_count(value, 1, 3600000, &n) != 0) {
            return usage_error("--timeout-ms must be 1 to 3600000, not \"%s\"", value);
        }
        o->timeout_ms = (uint32_t)n;
    } else if (strcmp(name, "--bundle") == 0) {
        if (strcmp(value, "per-join") != 0 && strcmp(value, "once") != 0) {
            return usage_error("--bundle must be per-join or once, not \"%s\"", value);
        }
        o->bundle_per_join = strcmp(value, "per-join") == 0;
    } else if (strcmp(name, "--manager") == 0) {
        char why[NET_ERRMSG_SIZE] = "";

        if (o->external_count == BENCH_MAX_MANAGERS) {
            return usage_error("at most 7 --manager options, \"%s\" is one too many",
                               value);
        }
        if (net_addr_check(value, why) != 0) {
            return usage_error("--manager: %s", why);
        }
        for (int k = 0; k < o->external_count; k++) {
            if (strcmp(o->external[k], value) == 0) {
                return usage_error("--manager %s is given twice", value);
            }
        }
        o->external[o->external_count++] = value;
    } else if (strcmp(name, "--swarmpki") == 0) {
        o->swarmpki = value;
    } else if (strcmp(name, "--dir") == 0) {
        o->parent_dir = value;
    } else {
        o->token = value;
    }
    return 1;
}

static int parse_options(options *o, int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    int rv;

    *o = (options){.managers = 3,
                   .concurrency = 16,
                   .threads = 1,
                   .joins = 2000,
                   .warmup = 200,
                   .bundle_per_join = 1,
                   .timeout_ms = 10000,
                   .parent_dir = tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (strcmp(argv[i], "--keep") == 0) {
            o->keep = 1;
            continue;
        }
        rv = value_option(o, argc, argv, &i);
        if (rv == 0) {
            return usage_error("unexpected argument \"%s\"", argv[i]);
        }
        if (rv != 1) {
            return rv;
        }
    }
    if (o->seconds > 0) {
        o->joins = 0;
    }
    if ((o->external_count > 0) != (o->token != NULL)) {
        return usage_error("--manager and --token go together");
    }
    if (o->token != NULL &&
        strlen(o->token) >= sizeof(((bench_cluster *)0)->worker_token)) {
        return usage_error("--token is %zu characters long, too long for a join token",
                           strlen(o->token));
    }
    if (o->threads > o->concurrency) {
        o->threads = o->concurrency;
    }
    return 0;
}

/* Fills c from the options: a running cluster, or one started now. */
static int prepare_cluster(const options *o, bench_cluster *c)
{
    char path[PATH_MAX];
    char errmsg[BENCH_ERROR_SIZE] = "";
    const char *bin = o->swarmpki;

    memset(c, 0, sizeof(*c));
    if (o->external_count > 0) {
        for (int i = 0; i < o->external_count; i++) {
            snprintf(c->managers[i].addr, BENCH_ADDR_SIZE, "%s", o->external[i]);
        }
        c->count = o->external_count;
        snprintf(c->worker_token, sizeof(c->worker_token), "%s", o->token);
        return 0;
    }

    if (bin == NULL) {
        bin = default_swarmpki(path, sizeof(path));
    }
    if (bin == NULL || access(bin, X_OK) != 0) {
        fprintf(stderr,
                "join-bench: cannot find an executable swarmpki%s%s; build the swarmpki "
                "target or pass --swarmpki PATH\n",
                bin ? " at " : "", bin ? bin : "");
        return -1;
    }
    snprintf(c->swarmpki, sizeof(c->swarmpki), "%s", bin);
    if (bench_cluster_start(c, o->parent_dir, o->managers, errmsg) != 0) {
        fprintf(stderr, "join-bench: %s\n", errmsg);
        return -1;
    }
    return 0;
}

static void sample_cpu(const bench_cluster *c, cpu_sample *s)
{
    struct rusage ru;

    for (int i = 0; i < c->count; i++) {
        s->manager_ms[i] =
            c->managers[i].pid > 0 ? bench_process_cpu_ms(c->managers[i].pid) : -1;
    }
    getrusage(RUSAGE_SELF, &ru);
    s->self_ms = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3 +
                 (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
}

/* Returns the latency at quantile q (nearest rank) in milliseconds. */
static double percentile_ms(const bench_run_result *r, double q)
{
    size_t rank;

    if (r->succeeded == 0) {
        return 0;
    }
    rank = (size_t)ceil(q * (double)r->succeeded);
    if (rank < 1) {
        rank = 1;
    }
    return (double)r->latency_us[rank - 1] / 1000.0;
}

static void print_failures(const bench_run_result *r)
{
    for (int i = 0; i < r->error_kinds; i++) {
        printf("  %llu x %s\n", (unsigned long long)r->error_counts[i], r->errors[i]);
    }
    if (r->other_errors > 0) {
        printf("  %llu x other errors\n", (unsigned long long)r->other_errors);
    }
}

/* Prints each manager's CPU time per successful join, the leader's and the
 * sum over all managers. */
static void print_cpu(const bench_cluster *c, int leader, const cpu_sample *before,
                      const cpu_sample *after, const bench_run_result *r)
{
    double joins = r->succeeded > 0 ? (double)r->succeeded : 1;
    double total = 0;
    int known = 1;

    if (!c->started) {
        printf("manager CPU: not measured (a cluster that join-bench did not start)\n");
        return;
    }
    printf("manager CPU ms per join:");
    for (int i = 0; i < c->count; i++) {
        double used = after->manager_ms[i] - before->manager_ms[i];
        if (before->manager_ms[i] < 0 || after->manager_ms[i] < 0) {
            known = 0;
            printf(" m%d unknown,", i + 1);
            continue;
        }
        total += used;
        printf(" m%d%s %.3f,", i + 1, i == leader ? " (leader)" : "", used / joins);
    }
    if (known) {
        printf(" all managers %.3f\n", total / joins);
    } else {
        printf(" all managers unknown\n");
    }
}

/* Prints how many cores the managers and the joiners kept busy on
 * average, which shows whether the machine itself was the limit. */
static void print_cores(const bench_cluster *c, const cpu_sample *before,
                        const cpu_sample *after, double wall_s)
{
    double managers_ms = 0;
    long online = sysconf(_SC_NPROCESSORS_ONLN);

    if (wall_s <= 0) {
        return;
    }
    for (int i = 0; c->started && i < c->count; i++) {
        managers_ms += after->manager_ms[i] - before->manager_ms[i];
    }
    printf("cores busy on average: ");
    if (c->started) {
        printf("managers %.2f, ", managers_ms / (wall_s * 1000));
    }
    printf("join-bench %.2f, of %ld online\n",
           (after->self_ms - before->self_ms) / (wall_s * 1000), online);
}

static void print_report(const options *o, const bench_cluster *c, int leader,
                         const cpu_sample *before, const cpu_sample *after,
                         const bench_run_result *r, uint64_t commits)
{
    double rate = r->wall_s > 0 ? (double)r->succeeded / r->wall_s : 0;
    double joins = r->succeeded > 0 ? (double)r->succeeded : 1;

    printf("joins: %llu succeeded, %llu failed in %.2f s: %.1f joins/s\n",
           (unsigned long long)r->succeeded, (unsigned long long)r->failed, r->wall_s,
           rate);
    printf("latency ms: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           percentile_ms(r, 0.50), percentile_ms(r, 0.99), percentile_ms(r, 0.999),
           percentile_ms(r, 1.0));
    if (r->failed > 0) {
        printf("failures:\n");
        print_failures(r);
    }
    if (r->succeeded > 0) {
        print_cpu(c, leader, before, after, r);
        printf("join-bench CPU ms per join: %.3f\n",
               (after->self_ms - before->self_ms) / joins);
    }
    print_cores(c, before, after, r->wall_s);
    if (commits > 0) {
        printf("Raft log entries committed during the run: %llu\n",
               (unsigned long long)commits);
    }

    /* One line with every figure, for scripts. */
    printf(
        "result %s=%d concurrency=%d threads=%d bundle=%s joins=%llu failed=%llu "
        "wall_s=%.3f joins_per_s=%.1f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f",
        c->started ? "managers" : "manager_addrs", c->count, o->concurrency, o->threads, o->bundle_per_join ? "per-join" : "once",
        (unsigned long long)r->succeeded, (unsigned long long)r->failed, r->wall_s, rate,
        percentile_ms(r, 0.50), percentile_ms(r, 0.99), percentile_ms(r, 0.999));
    if (c->started && leader >= 0 && before->manager_ms[leader] >= 0) {
        double total = 0;
        for (int i = 0; i < c->count; i++) {
            total += after->manager_ms[i] - before->manager_ms[i];
        }
        printf(" leader_cpu_ms=%.3f managers_cpu_ms=%.3f",
               (after->manager_ms[leader] - before->manager_ms[leader]) / joins,
               total / joins);
    }
    printf(" bench_cpu_ms=%.3f\n", (after->self_ms - before->self_ms) / joins);
}

/* Runs the warm-up and the measured joins and prints the report. Returns
 * 0, 1 when the joiners could not run, or 3 when a measured join failed. */
static int measure(const options *o, const bench_cluster *c)
{
    bench_run_opts run = {.cluster = c,
                          .concurrency = o->concurrency,
                          .threads = o->threads,
                          .bundle_per_join = o->bundle_per_join,
                          .timeout_ms = o->timeout_ms};
    bench_run_result warm = {0};
    bench_run_result r = {0};
    char errmsg[BENCH_ERROR_SIZE] = "";
    cpu_sample before;
    cpu_sample after;
    uint64_t commit_before;
    uint64_t commit_after;
    int leader = bench_cluster_leader(c);
    int rv;

    if (!c->started) {
        printf("join-bench: managers given with --manager:");
        for (int i = 0; i < c->count; i++) {
            printf(" %s", c->managers[i].addr);
        }
        printf("\n");
    }
    printf("join-bench: %d %s%s%s, concurrency %d, %d thread%s, bundle %s, "
           "warm-up %llu\n",
           c->count,
           c->started ? (c->count == 1 ? "manager" : "managers")
                      : (c->count == 1 ? "manager address" : "manager addresses"),
           leader >= 0 ? ", leader " : "",
           leader >= 0 ? c->managers[leader].addr : "", o->concurrency, o->threads,
           o->threads == 1 ? "" : "s",
           o->bundle_per_join ? "per join" : "once per joiner",
           (unsigned long long)o->warmup);
    fflush(stdout);

    if (o->warmup > 0) {
        run.joins = o->warmup;
        if (bench_run(&run, &warm, errmsg) != 0) {
            fprintf(stderr, "join-bench: %s\n", errmsg);
            return 1;
        }
        printf("warm-up: %llu succeeded, %llu failed\n",
               (unsigned long long)warm.succeeded, (unsigned long long)warm.failed);
        print_failures(&warm);
        if (warm.succeeded == 0 && warm.failed > 0) {
            /* A cluster that rejects every join gives no figure worth measuring. */
            fprintf(stderr, "join-bench: every warm-up join failed; see the reasons above\n");
            bench_run_result_free(&warm);
            return 3;
        }
        bench_run_result_free(&warm);
    }
    if (bench_interrupted) {
        fprintf(stderr, "join-bench: interrupted before the measured joins\n");
        return 1;
    }

    run.joins = o->joins;
    run.seconds = o->seconds;
    commit_before = bench_cluster_commit(c, leader);
    sample_cpu(c, &before);
    if (bench_run(&run, &r, errmsg) != 0) {
        fprintf(stderr, "join-bench: %s\n", errmsg);
        return 1;
    }
    sample_cpu(c, &after);
    commit_after = bench_cluster_commit(c, leader);

    if (c->started && bench_cluster_leader(c) != leader) {
        printf("note: the leader changed during the run, so leader CPU mixes two "
               "managers\n");
    }
    print_report(o, c, leader, &before, &after, &r,
                 commit_after > commit_before ? commit_after - commit_before : 0);
    rv = r.failed > 0 || r.succeeded == 0 ? 3 : 0;
    bench_run_result_free(&r);
    return rv;
}

int main(int argc, char **argv)
{
    struct sigaction stop = {.sa_handler = on_signal};
    bench_cluster cluster;
    options o;
    int rv;

    rv = parse_options(&o, argc, argv);
    if (rv != 0) {
        return rv == 1 ? 0 : rv;
    }
    /* net writes with write(2), so a manager that goes away must give EPIPE
     * instead of ending the benchmark. */
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGTERM, &stop, NULL);

    if (prepare_cluster(&o, &cluster) != 0) {
        return 1;
    }
    rv = measure(&o, &cluster);
    bench_cluster_stop(&cluster, o.keep);
    return rv;
}
