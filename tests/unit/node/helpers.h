/* Shared helpers of the node unit tests: temporary directories and the
 * test groups that main.c runs. */
#ifndef SWARMPKI_TEST_NODE_HELPERS_H
#define SWARMPKI_TEST_NODE_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define TEMP_DIR_SIZE 64

/* Makes a new directory under $TMPDIR (or /tmp when that is unset or too
 * long), failing the test on error. */
void make_temp_dir(char out[TEMP_DIR_SIZE]);

/* Removes path and everything under it. A missing path is not an error. */
void remove_tree(const char *path);

/* Returns the number of entries in the directory path other than "." and
 * "..", or -1 if it cannot be opened. */
int count_entries(const char *path);

/* Writes text to path with plain stdio, failing the test on error, so
 * that tests of readers do not depend on the writer under test. */
void write_text(const char *path, const char *text);

/* Each returns the number of failed tests of its group. */
int run_duration_tests(void);
int run_file_tests(void);
int run_sbuf_tests(void);
int run_conf_tests(void);
int run_sessions_tests(void);
int run_apply_tests(void);

#endif
