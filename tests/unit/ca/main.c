/* Runs one group of ca unit tests, named by the first argument, or all. */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"base36", run_base36_tests}, {"token", run_token_tests},   {"csr", run_csr_tests},
    {"issue", run_issue_tests},   {"verify", run_verify_tests},
};

int main(int argc, char **argv)
{
    size_t count = sizeof groups / sizeof groups[0];
    int failures = 0;
    int found = 0;
    size_t i;

    for (i = 0; i < count; i++) {
        if (argc < 2 || strcmp(argv[1], groups[i].name) == 0) {
            failures += groups[i].run();
            found = 1;
        }
    }
    if (!found) {
        fprintf(stderr,
                "unknown test group %s; use base36, token, csr, issue or verify\n",
                argv[1]);
        return 2;
    }
    return failures == 0 ? 0 : 1;
}
