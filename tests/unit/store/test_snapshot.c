/* Snapshots: taking, reading, staging and installing them, at scale too,
 * and opening a store written before snapshots existed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

#define CHUNK_SIZE (64 * 1024) /* STORE_CHUNK_SIZE in store/internal.h */

static const char *const replicated[] = {"cluster", "nodes", "certs", "certs_by_key",
                                         "removed"};

/* Two stores: a takes snapshots and b installs them. */
struct pair {
    struct fixture *a;
    struct fixture *b;
    char errmsg[STORE_ERRMSG_SIZE];
};

static int pair_setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    void *a = NULL;
    void *b = NULL;

    if (p == NULL || fixture_setup(&a) != 0) {
        free(p);
        return -1;
    }
    if (fixture_setup(&b) != 0) {
        fixture_teardown(&a);
        free(p);
        return -1;
    }
    p->a = a;
    p->b = b;
    *state = p;
    return 0;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    void *a = p->a;
    void *b = p->b;

    fixture_teardown(&a);
    fixture_teardown(&b);
    free(p);
    return 0;
}

/* Closes both stores, expects every replicated table to be the same in
 * both, and reopens them. Returns the number of rows. */
static size_t expect_same_tables(struct pair *p)
{
    size_t rows = 0;

    store_close(p->a->s);
    store_close(p->b->s);
    p->a->s = NULL;
    p->b->s = NULL;
    for (size_t i = 0; i < sizeof(replicated) / sizeof(replicated[0]); i++) {
        rows += raw_expect_same(p->a->dir, p->b->dir, replicated[i]);
    }
    reopen(p->a);
    reopen(p->b);
    return rows;
}

static void expect_applied(store *s, uint64_t applied, uint64_t first, uint64_t last)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    uint64_t got = 99, got_first = 99, got_last = 99;
    store_txn *txn;

    assert_int_equal(store_txn_begin(s, 0, &txn, errmsg), 0);
    assert_int_equal(store_applied_get(txn, &got, errmsg), 0);
    assert_int_equal(store_log_bounds(txn, &got_first, &got_last, errmsg), 0);
    store_txn_abort(txn);
    assert_int_equal(got, applied);
    assert_int_equal(got_first, first);
    assert_int_equal(got_last, last);
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

static size_t chunks_for(uint64_t size)
{
    return (size_t)((size + CHUNK_SIZE - 1) / CHUNK_SIZE);
}

/* ---- taking and reading ---- */

static void snapshot_none(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    unsigned char buf[4];
    store_txn *txn;

    assert_int_equal(store_txn_begin(p->a->s, 0, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, &meta, p->errmsg), STORE_ENOTFOUND);
    assert_null(meta.config);
    assert_int_equal(store_snapshot_read(txn, 0, 0, buf, 0, p->errmsg), STORE_ENOTFOUND);
    store_txn_abort(txn);
}

static void snapshot_take_meta(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    store_txn *txn;

    fill_state(p->a->s, 5, 40, 700);
    take_snapshot(p->a->s, 42, 7);
    reopen(p->a);

    assert_int_equal(store_txn_begin(p->a->s, 0, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, &meta, p->errmsg), 0);
    store_txn_abort(txn);
    assert_int_equal(meta.index, 42);
    assert_int_equal(meta.term, 7);
    assert_int_equal(meta.config_len, sizeof(test_config));
    assert_memory_equal(meta.config, test_config, sizeof(test_config));

    /* 40 certificates of 700 bytes take more than one chunk. */
    assert_true(meta.size > 40 * 700);
    store_close(p->a->s);
    p->a->s = NULL;
    assert_int_equal(raw_count(p->a->dir, "snapshot"), chunks_for(meta.size));
    reopen(p->a);
    store_snapshot_meta_free(&meta);
    assert_null(meta.config);
}

static void snapshot_read_pieces(void **state)
{
    struct pair *p = *state;
    static const size_t pieces[] = {
        1, 7, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1};
    store_snapshot_meta meta;
    unsigned char *whole;
    unsigned char buf[8];
    store_txn *txn;

    fill_state(p->a->s, 3, 120, 900);
    take_snapshot(p->a->s, 9, 2);
    whole = read_snapshot(p->a->s, 9, (size_t)1 << 30, &meta);
    assert_true(meta.size > 2 * CHUNK_SIZE);

    /* The header frame: a length, then ["swarmpki-snapshot", 1]. */
    assert_int_equal(whole[0], 0);
    assert_int_equal(whole[1], 0);
    assert_memory_equal(whole + 6, "swarmpki-snapshot", 17);

    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        store_snapshot_meta again;
        unsigned char *data = read_snapshot(p->a->s, 9, pieces[i], &again);

        print_message("  pieces of %zu bytes\n", pieces[i]);
        assert_int_equal(again.size, meta.size);
        assert_memory_equal(data, whole, meta.size);
        free(data);
        store_snapshot_meta_free(&again);
    }

    assert_int_equal(store_txn_begin(p->a->s, 0, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_read(txn, 8, 0, buf, 1, p->errmsg), STORE_ENOTFOUND);
    assert_int_equal(store_snapshot_read(txn, 9, meta.size - 1, buf, 2, p->errmsg),
                     STORE_EINVALID);
    assert_non_null(strstr(p->errmsg, "snapshot 9"));
    assert_int_equal(store_snapshot_read(txn, 9, meta.size + 1, buf, 0, p->errmsg),
                     STORE_EINVALID);
    assert_int_equal(store_snapshot_read(txn, 9, UINT64_MAX, buf, 8, p->errmsg),
                     STORE_EINVALID);
    assert_int_equal(store_snapshot_read(txn, 9, meta.size, buf, 0, p->errmsg), 0);
    assert_int_equal(store_snapshot_read(txn, 9, meta.size - 1, buf, 1, p->errmsg), 0);
    assert_int_equal(buf[0], whole[meta.size - 1]);
    store_txn_abort(txn);
    free(whole);
    store_snapshot_meta_free(&meta);
}

static void snapshot_take_bad_config(void **state)
{
    struct pair *p = *state;
    unsigned char *big = calloc(64 * 1024 + 1, 1);
    store_snapshot_meta meta;
    store_txn *txn;

    assert_non_null(big);
    fill_state(p->a->s, 1, 1, 100);
    take_snapshot(p->a->s, 5, 1);

    /* Both are rejected before any write, so the transaction commits and
     * the snapshot at index 5 stays. */
    assert_int_equal(store_txn_begin(p->a->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_take(txn, 6, 1, NULL, 3, p->errmsg), STORE_EINVALID);
    assert_non_null(strstr(p->errmsg, "config"));
    assert_int_equal(store_snapshot_take(txn, 6, 1, big, 64 * 1024 + 1, p->errmsg),
                     STORE_EINVALID);
    assert_non_null(strstr(p->errmsg, "max 65536"));
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
    free(read_snapshot(p->a->s, 5, 1000, &meta));
    store_snapshot_meta_free(&meta);

    /* The largest configuration and an empty one are accepted. */
    assert_int_equal(store_txn_begin(p->a->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_take(txn, 6, 1, big, 64 * 1024, p->errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, &meta, p->errmsg), 0);
    assert_int_equal(meta.config_len, 64 * 1024);
    store_snapshot_meta_free(&meta);
    assert_int_equal(store_snapshot_take(txn, 7, 1, NULL, 0, p->errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, &meta, p->errmsg), 0);
    assert_int_equal(meta.config_len, 0);
    assert_null(meta.config);
    store_txn_abort(txn);
    free(big);
}

/* A second snapshot replaces the first, chunks included. */
static void snapshot_take_replaces(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta first, second;
    unsigned char *data;
    store_txn *txn;

    fill_state(p->a->s, 400, 100, 700);
    take_snapshot(p->a->s, 100, 1);
    free(read_snapshot(p->a->s, 100, 1 << 20, &first));

    assert_int_equal(store_txn_begin(p->a->s, 1, &txn, p->errmsg), 0);
    for (int i = 0; i < 395; i++) {
        char id[26];

        snprintf(id, sizeof(id), "node-%06d", i);
        assert_int_equal(store_node_delete(txn, id, p->errmsg), 0);
    }
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
    take_snapshot(p->a->s, 200, 2);
    data = read_snapshot(p->a->s, 200, 1 << 20, &second);
    assert_true(second.size < first.size);
    assert_true(chunks_for(second.size) < chunks_for(first.size));

    store_close(p->a->s);
    p->a->s = NULL;
    assert_int_equal(raw_count(p->a->dir, "snapshot"), chunks_for(second.size));
    reopen(p->a);

    stage_snapshot(p->b->s, data, second.size, 10000);
    assert_int_equal(install_snapshot(p->b->s, &second, p->errmsg), 0);
    assert_int_equal(expect_same_tables(p), 1 + 5 + 2 * 100 + 3);
    free(data);
    store_snapshot_meta_free(&first);
    store_snapshot_meta_free(&second);
}

/* A snapshot taken in a write transaction contains that transaction's
 * uncommitted writes. */
static void snapshot_take_sees_txn(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    unsigned char *data;
    store_txn *txn;
    store_node n;

    fill_state(p->a->s, 2, 2, 100);
    fill_node(&n, "node-fresh", STORE_ROLE_WORKER);
    assert_int_equal(store_txn_begin(p->a->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_node_put(txn, &n, p->errmsg), 0);
    assert_int_equal(store_applied_put(txn, 77, p->errmsg), 0);
    assert_int_equal(
        store_snapshot_take(txn, 77, 3, test_config, sizeof(test_config), p->errmsg), 0);
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);

    data = read_snapshot(p->a->s, 77, 4096, &meta);
    stage_snapshot(p->b->s, data, meta.size, 4096);
    assert_int_equal(install_snapshot(p->b->s, &meta, p->errmsg), 0);
    assert_true(node_exists(p->b->s, "node-fresh"));
    free(data);
    store_snapshot_meta_free(&meta);
}

/* ---- installing ---- */

static void snapshot_install_copy(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta, installed;
    unsigned char *data, *copy;
    unsigned char byte = 1;
    store_entry next = {501, 4, STORE_ENTRY_NORMAL, &byte, 1};
    store_txn *txn;

    fill_state(p->a->s, 20, 150, 800);
    put_old_state(p->b->s);
    take_snapshot(p->a->s, 500, 4);
    data = read_snapshot(p->a->s, 500, 65000, &meta);

    /* Pieces that do not line up with chunks. */
    stage_snapshot(p->b->s, data, meta.size, 1000);
    assert_int_equal(install_snapshot(p->b->s, &meta, p->errmsg), 0);

    assert_int_equal(expect_same_tables(p), 1 + 20 + 2 * 150 + 3);
    assert_false(node_exists(p->b->s, "old-node"));
    expect_applied(p->b->s, 500, 0, 0);

    /* b now serves the same snapshot, and staging is empty. */
    copy = read_snapshot(p->b->s, 500, 70000, &installed);
    assert_int_equal(installed.size, meta.size);
    assert_int_equal(installed.term, 4);
    assert_int_equal(installed.config_len, sizeof(test_config));
    assert_memory_equal(installed.config, test_config, sizeof(test_config));
    assert_memory_equal(copy, data, meta.size);

    /* The log continues after the snapshot. */
    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_log_append(txn, &next, 1, p->errmsg), 0);
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
    expect_applied(p->b->s, 500, 501, 501);

    store_close(p->b->s);
    p->b->s = NULL;
    assert_int_equal(raw_count(p->b->dir, "staging"), 0);
    reopen(p->b);

    free(data);
    free(copy);
    store_snapshot_meta_free(&meta);
    store_snapshot_meta_free(&installed);
}

/* Staging across transactions, as chunks arrive one by one. */
static void snapshot_stage_per_txn(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    unsigned char *data;
    const size_t piece = 30000;

    fill_state(p->a->s, 4, 100, 700);
    take_snapshot(p->a->s, 30, 2);
    data = read_snapshot(p->a->s, 30, piece, &meta);
    for (size_t off = 0; off < meta.size; off += piece) {
        size_t n = meta.size - off < piece ? (size_t)(meta.size - off) : piece;
        store_txn *txn;

        assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
        assert_int_equal(store_snapshot_stage(txn, off, data + off, n, p->errmsg), 0);
        assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
        reopen(p->b);
    }
    assert_int_equal(install_snapshot(p->b->s, &meta, p->errmsg), 0);
    assert_int_equal(expect_same_tables(p), 1 + 4 + 2 * 100 + 3);
    free(data);
    store_snapshot_meta_free(&meta);
}

static void snapshot_stage_offsets(void **state)
{
    struct pair *p = *state;
    unsigned char bytes[200];
    store_txn *txn;

    memset(bytes, 0xab, sizeof(bytes));
    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 5, bytes, 10, p->errmsg), STORE_EINVALID);
    assert_non_null(strstr(p->errmsg, "offset 5"));
    assert_int_equal(store_snapshot_stage(txn, 0, bytes, 100, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 100, bytes, 50, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 120, bytes, 10, p->errmsg),
                     STORE_EINVALID);
    assert_non_null(strstr(p->errmsg, "ends at byte 150"));
    assert_int_equal(store_snapshot_stage(txn, 200, bytes, 10, p->errmsg),
                     STORE_EINVALID);
    assert_int_equal(store_snapshot_stage(txn, 150, NULL, 10, p->errmsg), STORE_EINVALID);
    assert_int_equal(store_snapshot_stage(txn, 150, NULL, 0, p->errmsg), 0);

    /* Rejected chunks write nothing, so the transaction commits. */
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 150, bytes, 50, p->errmsg), 0);

    /* Offset 0 starts again. */
    assert_int_equal(store_snapshot_stage(txn, 0, bytes, 10, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 200, bytes, 10, p->errmsg),
                     STORE_EINVALID);
    assert_int_equal(store_snapshot_stage(txn, 10, bytes, 10, p->errmsg), 0);
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
}

/* An install whose staged size differs from the metadata changes nothing,
 * and its transaction may still commit. */
static void snapshot_install_size(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    unsigned char *data;
    store_txn *txn;

    fill_state(p->a->s, 3, 10, 500);
    put_old_state(p->b->s);
    take_snapshot(p->a->s, 60, 2);
    data = read_snapshot(p->a->s, 60, 4096, &meta);

    stage_snapshot(p->b->s, data, meta.size - 1, 4096);
    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_install(txn, &meta, p->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(p->errmsg, "cannot install snapshot 60: "));
    assert_non_null(strstr(p->errmsg, "are staged"));
    assert_int_equal(store_txn_commit(txn, p->errmsg), 0);
    expect_old_state(p->b->s);

    /* Nothing staged at all. */
    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_stage(txn, 0, data, 0, p->errmsg), 0);
    assert_int_equal(store_snapshot_install(txn, &meta, p->errmsg), STORE_ECORRUPT);
    store_txn_abort(txn);
    free(data);
    store_snapshot_meta_free(&meta);
}

/* An install that fails halfway, here for a full map, leaves a
 * transaction that refuses to commit, so the store keeps its old state. */
static void snapshot_install_full(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    char commit_msg[STORE_ERRMSG_SIZE] = "";
    unsigned char *data;
    store_txn *txn;
    int rv;

    fill_state(p->a->s, 3, 700, 700);
    take_snapshot(p->a->s, 80, 2);
    data = read_snapshot(p->a->s, 80, 1 << 20, &meta);

    /* The staged copy fits in 2 MiB, but not the tables and the snapshot
     * copy on top of it. */
    store_close(p->b->s);
    p->b->s = NULL;
    setenv("SWARMPKI_STORE_MAP_SIZE", "2097152", 1);
    reopen(p->b);
    unsetenv("SWARMPKI_STORE_MAP_SIZE");
    put_old_state(p->b->s);
    stage_snapshot(p->b->s, data, meta.size, 1 << 20);

    assert_int_equal(store_txn_begin(p->b->s, 1, &txn, p->errmsg), 0);
    rv = store_snapshot_install(txn, &meta, p->errmsg);
    print_message("  install: %s\n", p->errmsg);
    assert_int_equal(rv, STORE_EFULL);
    assert_int_equal(store_txn_commit(txn, commit_msg), STORE_EFULL);
    assert_non_null(strstr(commit_msg, "nothing was written"));

    reopen(p->b);
    expect_old_state(p->b->s);
    free(data);
    store_snapshot_meta_free(&meta);
}

/* A take that fails after emptying the old snapshot's chunks leaves a
 * transaction that refuses to commit. */
static void snapshot_take_corrupt_row(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    store_txn *txn;

    fill_state(p->a->s, 3, 3, 100);
    take_snapshot(p->a->s, 10, 1);
    store_close(p->a->s);
    p->a->s = NULL;
    raw_put(p->a->dir, "nodes", "node-bad", 8, "\x91\x01", 2);
    reopen(p->a);

    assert_int_equal(store_txn_begin(p->a->s, 1, &txn, p->errmsg), 0);
    assert_int_equal(
        store_snapshot_take(txn, 11, 1, test_config, sizeof(test_config), p->errmsg),
        STORE_ECORRUPT);
    assert_non_null(strstr(p->errmsg, "cannot take snapshot 11: "));
    assert_non_null(strstr(p->errmsg, "table nodes key \"node-bad\""));
    assert_int_equal(store_txn_commit(txn, p->errmsg), STORE_ECORRUPT);

    /* The snapshot at index 10 is whole. */
    free(read_snapshot(p->a->s, 10, 1000, &meta));
    store_snapshot_meta_free(&meta);
}

/* A store written before the snapshot tables existed opens, gains them,
 * and takes snapshots. */
static void snapshot_old_store(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    store_txn *txn;

    fill_state(p->a->s, 2, 2, 100);
    store_close(p->a->s);
    p->a->s = NULL;
    raw_drop(p->a->dir, "snapshot");
    raw_drop(p->a->dir, "staging");
    reopen(p->a);

    assert_int_equal(store_txn_begin(p->a->s, 0, &txn, p->errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, &meta, p->errmsg), STORE_ENOTFOUND);
    store_txn_abort(txn);
    assert_true(node_exists(p->a->s, "node-000001"));
    take_snapshot(p->a->s, 3, 1);
    free(read_snapshot(p->a->s, 3, 100, &meta));
    store_snapshot_meta_free(&meta);
}

/* ---- scale ---- */

/* Certificates in the scale test: a cluster of thousands of nodes with
 * several renewals each. */
#define SCALE_CERTS 20000

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void snapshot_scale(void **state)
{
    struct pair *p = *state;
    store_snapshot_meta meta;
    struct timespec start;
    unsigned char *data;
    double take_ms, install_ms;
    unsigned char hash[32];
    char serial[41];
    store_cert cert;
    store_txn *txn;

    fill_state(p->a->s, 50, SCALE_CERTS, 700);
    clock_gettime(CLOCK_MONOTONIC, &start);
    take_snapshot(p->a->s, 1000000, 9);
    take_ms = elapsed_ms(&start);

    data = read_snapshot(p->a->s, 1000000, 1 << 20, &meta);
    stage_snapshot(p->b->s, data, meta.size, 1 << 20);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_int_equal(install_snapshot(p->b->s, &meta, p->errmsg), 0);
    install_ms = elapsed_ms(&start);
    print_message("  %d certificates, %llu bytes: take %.0f ms, install %.0f ms "
                  "(both with their commit)\n",
                  SCALE_CERTS, (unsigned long long)meta.size, take_ms, install_ms);

    assert_int_equal(expect_same_tables(p), 1 + 50 + 2 * SCALE_CERTS + 3);

    /* The last certificate, found through its key hash as fill_state made it. */
    memset(hash, 0x33, sizeof(hash));
    hash[31] = 0x01;
    for (int b = 0; b < 4; b++) {
        hash[b] = (unsigned char)((SCALE_CERTS - 1) >> (8 * b));
    }
    snprintf(serial, sizeof(serial), "%040zx", (size_t)(SCALE_CERTS - 1) * 7919);
    assert_int_equal(store_txn_begin(p->b->s, 0, &txn, p->errmsg), 0);
    assert_int_equal(store_cert_by_key(txn, hash, &cert, p->errmsg), 0);
    store_txn_abort(txn);
    assert_string_equal(cert.serial, serial);
    assert_int_equal(strlen(cert.cert_pem), 700);
    store_cert_free(&cert);
    free(data);
    store_snapshot_meta_free(&meta);
}

int run_snapshot_tests(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, pair_setup, pair_teardown)
    const struct CMUnitTest tests[] = {
        T(snapshot_none),          T(snapshot_take_meta),
        T(snapshot_read_pieces),   T(snapshot_take_bad_config),
        T(snapshot_take_replaces), T(snapshot_take_sees_txn),
        T(snapshot_install_copy),  T(snapshot_stage_per_txn),
        T(snapshot_stage_offsets), T(snapshot_install_size),
        T(snapshot_install_full),  T(snapshot_take_corrupt_row),
        T(snapshot_old_store),     T(snapshot_scale),
    };
#undef T

    return cmocka_run_group_tests_name("store snapshots", tests, NULL, NULL);
}
