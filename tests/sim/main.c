/* raft-sim: runs the Raft core through many seeded faulty schedules.
 * The last line of output is "seeds=N violations=V" followed by totals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static void usage(void)
{
    fprintf(
        stderr,
        "usage: raft-sim [--seeds N] [--first-seed S] [--nodes K] [--steps M]\n"
        "                [--no-liveness] [--verbose]\n"
        "  --seeds N       number of seeds to run (default 100)\n"
        "  --first-seed S  first seed; seeds S .. S+N-1 run (default 1)\n"
        "  --nodes K       initial cluster size, 1 to 9 (default 3)\n"
        "  --steps M       simulated events per seed before faults heal (default 3000)\n"
        "  --no-liveness   skip the check that a proposal commits after healing\n"
        "  --verbose       print every event of every seed\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    *out = strtoull(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static void report(const struct sim *s)
{
    unsigned i, n = s->ring_pos < SIM_RING ? s->ring_pos : SIM_RING;

    printf("seed=%llu nodes=%d steps=%llu violation: %s\n", (unsigned long long)s->seed,
           s->params.nodes, (unsigned long long)s->params.steps, s->violation);
    printf("last events:\n");
    for (i = 0; i < n; i++) {
        printf("  %s\n", s->ring[(s->ring_pos - n + i) % SIM_RING]);
    }
    printf("replay: raft-sim --seeds 1 --first-seed %llu --nodes %d --steps %llu%s\n",
           (unsigned long long)s->seed, s->params.nodes,
           (unsigned long long)s->params.steps,
           s->params.liveness ? "" : " --no-liveness");
}

int main(int argc, char **argv)
{
    struct sim_params p = {.nodes = 3, .steps = 3000, .liveness = true};
    uint64_t seeds = 100, first = 1, v, violations = 0, i;
    uint64_t events = 0, committed = 0, elections = 0, installs = 0, crashes = 0;
    struct sim *s = malloc(sizeof(*s));
    clock_t start = clock();
    int a;

    for (a = 1; a < argc; a++) {
        const char *arg = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(arg, "--verbose") == 0) {
            p.verbose = true;
        } else if (strcmp(arg, "--no-liveness") == 0) {
            p.liveness = false;
        } else if (strcmp(arg, "--seeds") == 0 && parse_u64(val, &seeds) == 0) {
            a++;
        } else if (strcmp(arg, "--first-seed") == 0 && parse_u64(val, &first) == 0) {
            a++;
        } else if (strcmp(arg, "--steps") == 0 && parse_u64(val, &p.steps) == 0) {
            a++;
        } else if (strcmp(arg, "--nodes") == 0 && parse_u64(val, &v) == 0 && v >= 1 &&
                   v <= 9) {
            p.nodes = (int)v;
            a++;
        } else {
            fprintf(stderr, "raft-sim: invalid argument '%s'\n", arg);
            usage();
            return 2;
        }
    }
    if (s == NULL) {
        return 2;
    }

    for (i = 0; i < seeds; i++) {
        if (sim_run_seed(first + i, &p, s) != 0) {
            violations++;
            report(s);
        }
        events += s->steps;
        committed += s->n_committed_entries;
        elections += s->n_elections;
        installs += s->n_snapshots_installed;
        crashes += s->n_crashes;
        sim_close(s);
    }
    free(s);
    printf(
        "seeds=%llu violations=%llu nodes=%d events=%llu committed=%llu elections=%llu "
        "snapshot_installs=%llu crashes=%llu cpu_s=%.1f\n",
        (unsigned long long)seeds, (unsigned long long)violations, p.nodes,
        (unsigned long long)events, (unsigned long long)committed,
        (unsigned long long)elections, (unsigned long long)installs,
        (unsigned long long)crashes, (double)(clock() - start) / CLOCKS_PER_SEC);
    return violations > 0 ? 1 : 0;
}
