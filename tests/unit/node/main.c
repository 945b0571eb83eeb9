/* The node unit tests. Without an argument every group runs. With one,
 * only the group of that name runs, so ctest lists each group as a test of
 * its own. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

static const struct group {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"duration", run_duration_tests}, {"file", run_file_tests},
    {"sbuf", run_sbuf_tests},         {"conf", run_conf_tests},
    {"sessions", run_sessions_tests}, {"apply", run_apply_tests},
};

int main(int argc, char **argv)
{
    size_t n = sizeof(groups) / sizeof(groups[0]);
    int failed = 0;
    int matched = 0;

    /* The kernel applies the umask to the modes the code requests; 022
     * keeps the modes these tests check whole, so a failing mode check
     * points at the code and not at the shell that ran the tests. */
    umask(022);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], groups[i].name) != 0) {
            continue;
        }
        matched++;
        failed += groups[i].run();
    }
    if (matched == 0) {
        fprintf(stderr, "unknown test group \"%s\"; use one of:", argv[1]);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, " %s", groups[i].name);
        }
        fprintf(stderr, "\n");
        return 2;
    }
    return failed == 0 ? 0 : 1;
}
