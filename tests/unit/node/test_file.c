/* Files in the data directory: atomic writes, bounded reads and mkdir -p,
 * each in a fresh temporary directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "node/util.h"

struct dir_fixture {
    char dir[TEMP_DIR_SIZE];
    char path[TEMP_DIR_SIZE + 64];
};

static int dir_setup(void **state)
{
    struct dir_fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    make_temp_dir(f->dir);
    snprintf(f->path, sizeof(f->path), "%s/swarm-node.key", f->dir);
    *state = f;
    return 0;
}

static int dir_teardown(void **state)
{
    struct dir_fixture *f = *state;

    remove_tree(f->dir);
    free(f);
    return 0;
}

static void write_ok(const char *path, const char *text, unsigned mode)
{
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int rv = util_file_write(path, text, strlen(text), mode, errmsg);

    if (rv != 0) {
        print_error("util_file_write %s: %s\n", path, errmsg);
    }
    assert_int_equal(rv, 0);
}

/* Reads path with plain stdio, so the checks do not depend on the reader
 * under test. */
static void expect_content(const char *path, const char *expected)
{
    char buf[256];
    FILE *f = fopen(path, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_int_equal(n, strlen(expected));
    assert_string_equal(buf, expected);
}

static unsigned file_mode(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

/* ---- util_file_write ---- */

static void file_write_content(void **state)
{
    struct dir_fixture *f = *state;

    write_ok(f->path, "secret key\n", 0600);
    expect_content(f->path, "secret key\n");
}

static void file_write_empty(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";

    assert_int_equal(util_file_write(f->path, "", 0, 0600, errmsg), 0);
    expect_content(f->path, "");
}

static void file_write_mode_0600(void **state)
{
    struct dir_fixture *f = *state;

    write_ok(f->path, "key", 0600);
    assert_int_equal(file_mode(f->path), 0600);
}

static void file_write_mode_0644(void **state)
{
    struct dir_fixture *f = *state;

    write_ok(f->path, "certificate", 0644);
    assert_int_equal(file_mode(f->path), 0644);
}

static void file_write_mode_umask(void **state)
{
    struct dir_fixture *f = *state;
    mode_t saved = umask(077);

    /* The requested mode wins over a stricter umask. */
    write_ok(f->path, "certificate", 0644);
    umask(saved);
    assert_int_equal(file_mode(f->path), 0644);
}

static void file_write_replaces(void **state)
{
    struct dir_fixture *f = *state;

    write_ok(f->path, "the old and longer content\n", 0600);
    write_ok(f->path, "new\n", 0644);
    expect_content(f->path, "new\n");
    assert_int_equal(file_mode(f->path), 0644);
}

static void file_write_no_temporary(void **state)
{
    struct dir_fixture *f = *state;

    write_ok(f->path, "one", 0600);
    write_ok(f->path, "two", 0600);
    assert_int_equal(count_entries(f->dir), 1);
}

static void file_write_stale_temporary(void **state)
{
    struct dir_fixture *f = *state;
    char stale[sizeof(f->path) + 32];

    /* A process that crashed between creating its temporary file and the
     * rename leaves the file behind. A daemon that runs as process 1 of a
     * container has the same process id after every restart. */
    snprintf(stale, sizeof(stale), "%s.tmp-%ld", f->path, (long)getpid());
    write_text(stale, "half written");
    write_ok(f->path, "whole", 0600);
    expect_content(f->path, "whole");
}

static void file_write_missing_dir(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->dir) + 32];

    snprintf(path, sizeof(path), "%s/missing/node.conf", f->dir);
    assert_int_equal(util_file_write(path, "x", 1, 0600, errmsg), -1);
    assert_non_null(strstr(errmsg, path));
    assert_int_equal(count_entries(f->dir), 0);
}

static void file_write_onto_dir(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";

    /* The temporary file is written, then the rename onto a directory
     * fails: the temporary must go and the directory must stay. */
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(util_file_write(f->path, "x", 1, 0600, errmsg), -1);
    assert_non_null(strstr(errmsg, f->path));
    assert_int_equal(count_entries(f->dir), 1);
    assert_int_equal(count_entries(f->path), 0);
}

static void file_write_readonly_dir(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    int rv;

    /* Root may write into a read-only directory, so for root
     * file_write_not_dir covers the failure instead. */
    if (geteuid() == 0) {
        skip();
    }
    write_ok(f->path, "old", 0600);
    assert_int_equal(chmod(f->dir, 0500), 0);
    rv = util_file_write(f->path, "new", 3, 0600, errmsg);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(rv, -1);
    assert_non_null(strstr(errmsg, f->path));
    assert_non_null(strstr(errmsg, strerror(EACCES)));
    expect_content(f->path, "old");
    assert_int_equal(count_entries(f->dir), 1);
}

static void file_write_not_dir(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->path) + 32];

    /* A regular file where a directory should be gives ENOTDIR, also for
     * root. */
    write_ok(f->path, "a file", 0600);
    snprintf(path, sizeof(path), "%s/node.conf", f->path);
    assert_int_equal(util_file_write(path, "x", 1, 0600, errmsg), -1);
    assert_non_null(strstr(errmsg, path));
    assert_non_null(strstr(errmsg, strerror(ENOTDIR)));
    expect_content(f->path, "a file");
    assert_int_equal(count_entries(f->dir), 1);
}

/* ---- util_file_read ---- */

static void file_read_content(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 0;

    write_text(f->path, "line one\nline two\n");
    assert_int_equal(util_file_read(f->path, 1024, &data, &len, errmsg), 0);
    assert_int_equal(len, 18);
    assert_string_equal(data, "line one\nline two\n");
    free(data);
}

static void file_read_binary(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    const char bytes[] = {'a', '\0', 'b', '\n'};
    char *data = NULL;
    size_t len = 0;

    assert_int_equal(util_file_write(f->path, bytes, sizeof(bytes), 0600, errmsg), 0);
    assert_int_equal(util_file_read(f->path, 16, &data, &len, errmsg), 0);
    assert_int_equal(len, sizeof(bytes));
    assert_memory_equal(data, bytes, sizeof(bytes));
    assert_int_equal(data[len], '\0');
    free(data);
}

static void file_read_empty(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 99;

    write_text(f->path, "");
    assert_int_equal(util_file_read(f->path, 16, &data, &len, errmsg), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
}

static void file_read_at_limit(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 0;

    write_text(f->path, "0123456789");
    assert_int_equal(util_file_read(f->path, 10, &data, &len, errmsg), 0);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789");
    free(data);
}

static void file_read_over_limit(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 0;

    write_text(f->path, "0123456789a");
    assert_int_equal(util_file_read(f->path, 10, &data, &len, errmsg), -1);
    assert_null(data);
    assert_non_null(strstr(errmsg, f->path));
    assert_non_null(strstr(errmsg, "10 bytes"));
}

static void file_read_missing(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 0;

    assert_int_equal(util_file_read(f->path, 10, &data, &len, errmsg), -2);
    assert_null(data);
    assert_string_equal(errmsg, "");
}

static void file_read_directory(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char *data = NULL;
    size_t len = 0;

    assert_int_equal(util_file_read(f->dir, 10, &data, &len, errmsg), -1);
    assert_null(data);
    assert_non_null(strstr(errmsg, f->dir));
}

/* ---- util_mkdir_p ---- */

static void mkdir_nested(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->dir) + 32];
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/c", f->dir);
    assert_int_equal(util_mkdir_p(path, 0700, errmsg), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);

    /* The parents get the same mode. */
    snprintf(path, sizeof(path), "%s/a", f->dir);
    assert_int_equal(file_mode(path), 0700);
}

static void mkdir_existing(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->dir) + 32];

    snprintf(path, sizeof(path), "%s/certificates", f->dir);
    assert_int_equal(util_mkdir_p(path, 0700, errmsg), 0);
    assert_int_equal(util_mkdir_p(path, 0700, errmsg), 0);
    assert_int_equal(count_entries(f->dir), 1);
}

static void mkdir_trailing_slash(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->dir) + 32];
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/", f->dir);
    assert_int_equal(util_mkdir_p(path, 0700, errmsg), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static void mkdir_under_file(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";
    char path[sizeof(f->path) + 32];

    write_text(f->path, "a file");
    snprintf(path, sizeof(path), "%s/sub", f->path);
    assert_int_equal(util_mkdir_p(path, 0700, errmsg), -1);
    assert_non_null(strstr(errmsg, f->path));
    assert_non_null(strstr(errmsg, strerror(ENOTDIR)));
}

static void mkdir_file_exists(void **state)
{
    struct dir_fixture *f = *state;
    char errmsg[UTIL_ERRMSG_SIZE] = "";

    /* A regular file by the requested name is not a directory. */
    write_text(f->path, "a file");
    assert_int_equal(util_mkdir_p(f->path, 0700, errmsg), -1);
    assert_non_null(strstr(errmsg, f->path));
    assert_non_null(strstr(errmsg, strerror(ENOTDIR)));
}

int run_file_tests(void)
{
#define DIR_TEST(name) cmocka_unit_test_setup_teardown(name, dir_setup, dir_teardown)
    const struct CMUnitTest tests[] = {
        DIR_TEST(file_write_content),
        DIR_TEST(file_write_empty),
        DIR_TEST(file_write_mode_0600),
        DIR_TEST(file_write_mode_0644),
        DIR_TEST(file_write_mode_umask),
        DIR_TEST(file_write_replaces),
        DIR_TEST(file_write_no_temporary),
        DIR_TEST(file_write_stale_temporary),
        DIR_TEST(file_write_missing_dir),
        DIR_TEST(file_write_onto_dir),
        DIR_TEST(file_write_readonly_dir),
        DIR_TEST(file_write_not_dir),
        DIR_TEST(file_read_content),
        DIR_TEST(file_read_binary),
        DIR_TEST(file_read_empty),
        DIR_TEST(file_read_at_limit),
        DIR_TEST(file_read_over_limit),
        DIR_TEST(file_read_missing),
        DIR_TEST(file_read_directory),
        DIR_TEST(mkdir_nested),
        DIR_TEST(mkdir_existing),
        DIR_TEST(mkdir_trailing_slash),
        DIR_TEST(mkdir_under_file),
        DIR_TEST(mkdir_file_exists),
    };
#undef DIR_TEST

    return cmocka_run_group_tests_name("file", tests, NULL, NULL);
}
