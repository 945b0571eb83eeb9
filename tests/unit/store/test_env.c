/* Opening, file checks, the map size and transactions. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "helpers.h"

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    if (len > 0) {
        assert_int_equal(fwrite(data, 1, len, fp), len);
    }
    assert_int_equal(fclose(fp), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *data;
    FILE *fp = fopen(path, "rb");

    assert_non_null(fp);
    assert_int_equal(fstat(fileno(fp), &st), 0);
    data = malloc((size_t)st.st_size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
    fclose(fp);
    *len = (size_t)st.st_size;
    return data;
}

static void put_node(store *s, const char *id)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn;
    store_node n;

    fill_node(&n, id, STORE_ROLE_WORKER);
    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    assert_int_equal(store_node_put(txn, &n, errmsg), 0);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
}

static int node_exists(store *s, const char *id)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn;
    store_node n;
    int rv;

    assert_int_equal(store_txn_begin(s, 0, &txn, errmsg), 0);
    rv = store_node_get(txn, id, &n, errmsg);
    store_txn_abort(txn);
    assert_true(rv == 0 || rv == STORE_ENOTFOUND);
    return rv == 0;
}

/* Opens the store in dir and expects failure with code and the file path
 * in the message. */
static void expect_open_error(const char *dir, int code)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    char path[128];
    store *s = NULL;
    int rv = store_open(dir, &s, errmsg);

    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    print_message("  store_open: %d, %s\n", rv, errmsg);
    assert_int_equal(rv, code);
    assert_null(s);
    assert_non_null(strstr(errmsg, path));
}

static void open_modes(void **state)
{
    char base[64];
    char dir[96];
    char path[128];
    char errmsg[STORE_ERRMSG_SIZE] = "";
    struct stat st;
    store *s;
    (void)state;

    make_temp_dir(base);
    snprintf(dir, sizeof(dir), "%s/data", base);
    assert_int_equal(store_open(dir, &s, errmsg), 0);

    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    snprintf(path, sizeof(path), "%s/store.mdb-lock", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    store_close(s);
    remove_tree(base);
}

static void open_reopen_keeps(void **state)
{
    struct fixture *f = *state;

    put_node(f->s, "node-a");
    reopen(f);
    assert_true(node_exists(f->s, "node-a"));
    reopen(f);
    assert_true(node_exists(f->s, "node-a"));
}

static void open_other_format(void **state)
{
    struct fixture *f = *state;
    const unsigned char two[] = {0x02}; /* msgpack positive fixint 2 */
    char errmsg[STORE_ERRMSG_SIZE] = "";
    int rv;

    store_close(f->s);
    f->s = NULL;
    raw_put(f->dir, "meta", "format", 6, two, sizeof(two));
    rv = store_open(f->dir, &f->s, errmsg);
    print_message("  store_open: %s\n", errmsg);
    assert_int_equal(rv, STORE_EVERSION);
    assert_non_null(strstr(errmsg, f->path));
    assert_non_null(strstr(errmsg, "version 2"));
    assert_non_null(strstr(errmsg, "version 1"));
}

static void open_unreadable_format(void **state)
{
    struct fixture *f = *state;
    const unsigned char text[] = {0xa1, 'x'}; /* a string, not a number */

    store_close(f->s);
    f->s = NULL;
    raw_put(f->dir, "meta", "format", 6, text, sizeof(text));
    expect_open_error(f->dir, STORE_ECORRUPT);
}

/* An LMDB file that swarmpki did not write: it has no meta table. */
static void open_foreign_lmdb(void **state)
{
    char dir[64];
    char path[96];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {3, "key"};
    MDB_val v = {5, "value"};
    (void)state;

    make_temp_dir(dir);
    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    expect_open_error(dir, STORE_ECORRUPT);
    remove_tree(dir);
}

static void open_garbage(void **state)
{
    static const size_t sizes[] = {1, 100, 4095, 4096, 8192, 12288, 65536, 1 << 20};
    uint64_t rng = test_seed("open_garbage");
    char dir[64];
    char path[96];
    (void)state;

    make_temp_dir(dir);
    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *data = malloc(sizes[i]);

        assert_non_null(data);
        for (size_t j = 0; j < sizes[i]; j++) {
            data[j] = (unsigned char)next_random(&rng);
        }
        write_file(path, data, sizes[i]);
        free(data);
        print_message("  %zu random bytes\n", sizes[i]);
        expect_open_error(dir, STORE_ECORRUPT);
    }
    remove_tree(dir);
}

static void open_zero_length(void **state)
{
    char dir[64];
    char path[96];
    (void)state;

    make_temp_dir(dir);
    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    write_file(path, "", 0);
    expect_open_error(dir, STORE_ECORRUPT);
    remove_tree(dir);
}

static void open_truncated(void **state)
{
    struct fixture *f = *state;
    unsigned char *data;
    size_t len;
    long page = sysconf(_SC_PAGESIZE);

    /* Enough records for the file to span many pages. */
    for (int i = 0; i < 200; i++) {
        char id[26];

        snprintf(id, sizeof(id), "node-%03d", i);
        put_node(f->s, id);
    }
    store_close(f->s);
    f->s = NULL;
    data = read_file(f->path, &len);
    assert_true(len > (size_t)page * 8);

    size_t cuts[] = {len - (size_t)page,
                     len / 2,
                     (size_t)page * 2 + 1,
                     (size_t)page * 2,
                     (size_t)page + 10,
                     (size_t)page,
                     100,
                     1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        unlink(f->path);
        write_file(f->path, data, cuts[i]);
        print_message("  %zu of %zu bytes\n", cuts[i], len);
        expect_open_error(f->dir, STORE_ECORRUPT);
    }

    /* The whole file still opens, so the errors came from the cuts. */
    write_file(f->path, data, len);
    free(data);
    reopen(f);
    assert_true(node_exists(f->s, "node-199"));
}

static void open_missing_parent(void **state)
{
    char base[64];
    char dir[96];
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store *s = NULL;
    (void)state;

    make_temp_dir(base);
    snprintf(dir, sizeof(dir), "%s/no/such", base);
    assert_int_equal(store_open(dir, &s, errmsg), STORE_EIO);
    assert_null(s);
    assert_non_null(strstr(errmsg, dir));
    remove_tree(base);
}

static void open_dir_is_file(void **state)
{
    char base[64];
    char dir[96];
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store *s = NULL;
    (void)state;

    make_temp_dir(base);
    snprintf(dir, sizeof(dir), "%s/file", base);
    write_file(dir, "x", 1);
    assert_int_equal(store_open(dir, &s, errmsg), STORE_EIO);
    assert_non_null(strstr(errmsg, "not a directory"));
    remove_tree(base);
}

static void map_size_invalid(void **state)
{
    static const char *values[] = {"abc", "12x", "-1048576", "1000",
                                   "99999999999999999999"};
    char dir[64];
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store *s = NULL;
    (void)state;

    make_temp_dir(dir);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        setenv("SWARMPKI_STORE_MAP_SIZE", values[i], 1);
        assert_int_equal(store_open(dir, &s, errmsg), STORE_EINVALID);
        assert_non_null(strstr(errmsg, "SWARMPKI_STORE_MAP_SIZE"));
    }
    unsetenv("SWARMPKI_STORE_MAP_SIZE");
    remove_tree(dir);
}

/* Appends 16 entries of 2 KiB per transaction until the map is full. */
static uint64_t fill_until_full(store *s, unsigned char data[16][2048], char *errmsg)
{
    uint64_t committed = 0;
    int rv = 0;

    for (int batch = 0; batch < 1000 && rv == 0; batch++) {
        store_entry entries[16];
        store_txn *txn;

        for (int i = 0; i < 16; i++) {
            uint64_t index = committed + 1 + (uint64_t)i;

            memset(data[i], (int)(index & 0xff), 2048);
            entries[i] = (store_entry){index, 1, STORE_ENTRY_NORMAL, data[i], 2048};
        }
        assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
        rv = store_log_append(txn, entries, 16, errmsg);
        if (rv != 0) {
            store_txn_abort(txn);
            break;
        }
        rv = store_txn_commit(txn, errmsg);
        if (rv == 0) {
            committed += 16;
        }
    }
    print_message("  full after %llu entries: %s\n", (unsigned long long)committed,
                  errmsg);
    assert_int_equal(rv, STORE_EFULL);
    return committed;
}

/* Fills a 1 MiB map, then checks that every committed entry survives and
 * that a larger map accepts more. */
static void map_full(void **state)
{
    char dir[64];
    char errmsg[STORE_ERRMSG_SIZE] = "";
    char commit_msg[STORE_ERRMSG_SIZE] = "";
    unsigned char data[16][2048];
    uint64_t committed, first, last;
    store_txn *txn;
    store *s;
    int rv = 0;
    (void)state;

    make_temp_dir(dir);
    setenv("SWARMPKI_STORE_MAP_SIZE", "1048576", 1);
    assert_int_equal(store_open(dir, &s, errmsg), 0);
    committed = fill_until_full(s, data, errmsg);
    assert_true(committed > 0);
    assert_non_null(strstr(errmsg, "is full"));
    assert_non_null(strstr(errmsg, "SWARMPKI_STORE_MAP_SIZE"));

    /* Single small entries in one transaction until a put fails: LMDB then
     * refuses the commit, and the store names the earlier failure. */
    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    for (uint64_t i = committed + 1; rv == 0 && i < committed + 100000; i++) {
        store_entry e = {i, 1, STORE_ENTRY_NORMAL, data[0], 100};

        rv = store_log_append(txn, &e, 1, errmsg);
    }
    assert_int_equal(rv, STORE_EFULL);
    assert_int_equal(store_txn_commit(txn, commit_msg), STORE_EFULL);
    assert_non_null(strstr(commit_msg, "earlier write"));
    store_close(s);

    /* Reopen with the default map: everything committed is there. */
    unsetenv("SWARMPKI_STORE_MAP_SIZE");
    assert_int_equal(store_open(dir, &s, errmsg), 0);
    assert_int_equal(store_txn_begin(s, 0, &txn, errmsg), 0);
    assert_int_equal(store_log_bounds(txn, &first, &last, errmsg), 0);
    assert_int_equal(first, 1);
    assert_int_equal(last, committed);
    for (uint64_t i = 1; i <= committed; i++) {
        store_entry e;

        assert_int_equal(store_log_get(txn, i, &e, errmsg), 0);
        assert_int_equal(e.len, 2048);
        assert_int_equal(e.data[0], i & 0xff);
        assert_int_equal(e.data[2047], i & 0xff);
        store_entry_free(&e);
    }
    store_txn_abort(txn);

    /* The larger map takes more. */
    store_entry more = {committed + 1, 1, STORE_ENTRY_NORMAL, data[0], 2048};
    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    assert_int_equal(store_log_append(txn, &more, 1, errmsg), 0);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
    store_close(s);
    remove_tree(dir);
}

static void txn_abort_drops(void **state)
{
    struct fixture *f = *state;
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn;
    store_node n;

    fill_node(&n, "node-a", STORE_ROLE_WORKER);
    assert_int_equal(store_txn_begin(f->s, 1, &txn, errmsg), 0);
    assert_int_equal(store_node_put(txn, &n, errmsg), 0);
    assert_int_equal(store_applied_put(txn, 9, errmsg), 0);
    store_txn_abort(txn);

    assert_false(node_exists(f->s, "node-a"));
    reopen(f);
    assert_false(node_exists(f->s, "node-a"));
}

/* A put rejected by the store's own checks leaves the transaction usable:
 * the writes before it commit. */
static void txn_commit_after_rejected(void **state)
{
    struct fixture *f = *state;
    char errmsg[STORE_ERRMSG_SIZE] = "";
    unsigned char byte = 1;
    store_entry gap = {5, 1, STORE_ENTRY_NORMAL, &byte, 1};
    store_entry first = {1, 1, STORE_ENTRY_NORMAL, &byte, 1};
    store_cert cert;
    store_txn *txn;
    store_node good, bad;

    fill_node(&good, "node-a", STORE_ROLE_WORKER);
    fill_node(&bad, "node-b", STORE_ROLE_WORKER);
    bad.role = 7;
    fill_cert(&cert, "", "node-b", 0x10);

    assert_int_equal(store_txn_begin(f->s, 1, &txn, errmsg), 0);
    assert_int_equal(store_node_put(txn, &good, errmsg), 0);
    assert_int_equal(store_log_append(txn, &first, 1, errmsg), 0);
    assert_int_equal(store_node_put(txn, &bad, errmsg), STORE_EINVALID);
    assert_int_equal(store_log_append(txn, &gap, 1, errmsg), STORE_EINVALID);
    assert_int_equal(store_cert_put(txn, &cert, errmsg), STORE_EINVALID);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
    store_cert_free(&cert);

    reopen(f);
    assert_true(node_exists(f->s, "node-a"));
    assert_false(node_exists(f->s, "node-b"));
}

static void strerror_distinct(void **state)
{
    static const int codes[] = {STORE_ENOMEM,   STORE_EIO,       STORE_ECORRUPT,
                                STORE_EVERSION, STORE_ENOTFOUND, STORE_EFULL,
                                STORE_EINVALID};
    (void)state;

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_string_not_equal(store_strerror(codes[i]), store_strerror(-100));
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(store_strerror(codes[i]), store_strerror(codes[j]));
        }
    }
}

int run_env_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_modes),
        cmocka_unit_test_setup_teardown(open_reopen_keeps, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(open_other_format, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(open_unreadable_format, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(open_foreign_lmdb),
        cmocka_unit_test(open_garbage),
        cmocka_unit_test(open_zero_length),
        cmocka_unit_test_setup_teardown(open_truncated, fixture_setup, fixture_teardown),
        cmocka_unit_test(open_missing_parent),
        cmocka_unit_test(open_dir_is_file),
        cmocka_unit_test(map_size_invalid),
        cmocka_unit_test(map_full),
        cmocka_unit_test_setup_teardown(txn_abort_drops, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(txn_commit_after_rejected, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(strerror_distinct),
    };

    return cmocka_run_group_tests_name("store env", tests, NULL, NULL);
}
