/* The Raft log, hard state and applied index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

struct log_fixture {
    struct fixture *f;
    store_txn *txn;
    char errmsg[STORE_ERRMSG_SIZE];
};

static int log_setup(void **state)
{
    struct log_fixture *lf = calloc(1, sizeof(*lf));
    void *inner;

    if (lf == NULL || fixture_setup(&inner) != 0) {
        free(lf);
        return -1;
    }
    lf->f = inner;
    if (store_txn_begin(lf->f->s, 1, &lf->txn, lf->errmsg) != 0) {
        fixture_teardown(&inner);
        free(lf);
        return -1;
    }
    *state = lf;
    return 0;
}

static int log_teardown(void **state)
{
    struct log_fixture *lf = *state;
    void *inner = lf->f;

    store_txn_abort(lf->txn);
    fixture_teardown(&inner);
    free(lf);
    return 0;
}

/* Appends entries first..last of term 1, each with data "entry-<index>". */
static int append_range(struct log_fixture *lf, uint64_t first, uint64_t last)
{
    size_t n = (size_t)(last - first + 1);
    store_entry *entries = calloc(n, sizeof(*entries));
    char(*texts)[32] = calloc(n, sizeof(*texts));
    int rv;

    assert_non_null(entries);
    assert_non_null(texts);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(texts[i], sizeof(texts[i]), "entry-%llu",
                           (unsigned long long)(first + i));

        entries[i] = (store_entry){first + i, 1, STORE_ENTRY_NORMAL,
                                   (unsigned char *)texts[i], (size_t)len};
    }
    rv = store_log_append(lf->txn, entries, n, lf->errmsg);
    free(entries);
    free(texts);
    return rv;
}

static void expect_bounds(struct log_fixture *lf, uint64_t first, uint64_t last)
{
    uint64_t got_first = 99, got_last = 99;

    assert_int_equal(store_log_bounds(lf->txn, &got_first, &got_last, lf->errmsg), 0);
    assert_int_equal(got_first, first);
    assert_int_equal(got_last, last);
}

static void log_append_get(void **state)
{
    struct log_fixture *lf = *state;
    unsigned char payload[] = {0, 1, 2, 0xff};
    store_entry in[3] = {
        {1, 3, STORE_ENTRY_NORMAL, payload, sizeof(payload)},
        {2, 3, STORE_ENTRY_EMPTY, NULL, 0},
        {3, 4, STORE_ENTRY_MEMBERSHIP, payload, 1},
    };
    store_entry out;

    assert_int_equal(store_log_append(lf->txn, in, 3, lf->errmsg), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_log_get(lf->txn, in[i].index, &out, lf->errmsg), 0);
        assert_int_equal(out.index, in[i].index);
        assert_int_equal(out.term, in[i].term);
        assert_int_equal(out.type, in[i].type);
        assert_int_equal(out.len, in[i].len);
        if (in[i].len > 0) {
            assert_memory_equal(out.data, in[i].data, in[i].len);
        } else {
            assert_null(out.data);
        }
        store_entry_free(&out);
    }
    assert_int_equal(store_log_get(lf->txn, 4, &out, lf->errmsg), STORE_ENOTFOUND);
    assert_int_equal(store_log_get(lf->txn, 0, &out, lf->errmsg), STORE_ENOTFOUND);
}

static void log_survives_reopen(void **state)
{
    struct log_fixture *lf = *state;
    store_entry e;

    assert_int_equal(append_range(lf, 1, 300), 0);
    assert_int_equal(store_txn_commit(lf->txn, lf->errmsg), 0);
    lf->txn = NULL;
    reopen(lf->f);
    assert_int_equal(store_txn_begin(lf->f->s, 0, &lf->txn, lf->errmsg), 0);
    expect_bounds(lf, 1, 300);
    assert_int_equal(store_log_get(lf->txn, 256, &e, lf->errmsg), 0);
    assert_int_equal(e.len, strlen("entry-256"));
    assert_memory_equal(e.data, "entry-256", e.len);
    store_entry_free(&e);
}

static void log_bounds_empty(void **state)
{
    struct log_fixture *lf = *state;

    expect_bounds(lf, 0, 0);
}

static void log_bounds_order(void **state)
{
    struct log_fixture *lf = *state;

    /* 255 -> 256 changes the low byte's order; big-endian keys keep it. */
    assert_int_equal(append_range(lf, 250, 260), 0);
    expect_bounds(lf, 250, 260);
    assert_int_equal(append_range(lf, 261, 70000), 0);
    expect_bounds(lf, 250, 70000);
}

static void log_truncate_suffix(void **state)
{
    struct log_fixture *lf = *state;
    store_entry e;
    unsigned char byte = 9;
    store_entry replacement = {3, 2, STORE_ENTRY_NORMAL, &byte, 1};

    assert_int_equal(append_range(lf, 1, 5), 0);
    assert_int_equal(store_log_truncate(lf->txn, 3, lf->errmsg), 0);
    expect_bounds(lf, 1, 2);
    assert_int_equal(store_log_get(lf->txn, 3, &e, lf->errmsg), STORE_ENOTFOUND);

    /* The conflicting suffix is replaced by entries of a later term. */
    assert_int_equal(store_log_append(lf->txn, &replacement, 1, lf->errmsg), 0);
    assert_int_equal(store_log_get(lf->txn, 3, &e, lf->errmsg), 0);
    assert_int_equal(e.term, 2);
    store_entry_free(&e);
}

static void log_truncate_edges(void **state)
{
    struct log_fixture *lf = *state;

    assert_int_equal(append_range(lf, 10, 20), 0);
    assert_int_equal(store_log_truncate(lf->txn, 21, lf->errmsg), 0);
    expect_bounds(lf, 10, 20);
    assert_int_equal(store_log_truncate(lf->txn, 20, lf->errmsg), 0);
    expect_bounds(lf, 10, 19);
    assert_int_equal(store_log_truncate(lf->txn, 1, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);
    assert_int_equal(store_log_truncate(lf->txn, 1, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);
}

static void log_append_gap(void **state)
{
    struct log_fixture *lf = *state;
    store_entry e;

    assert_int_equal(append_range(lf, 1, 3), 0);
    assert_int_equal(append_range(lf, 5, 5), STORE_EINVALID);
    assert_non_null(strstr(lf->errmsg, "expected index 4"));
    assert_int_equal(append_range(lf, 3, 3), STORE_EINVALID);
    assert_int_equal(append_range(lf, 1, 1), STORE_EINVALID);
    expect_bounds(lf, 1, 3);
    assert_int_equal(store_log_get(lf->txn, 5, &e, lf->errmsg), STORE_ENOTFOUND);
}

static void log_append_batch_gap(void **state)
{
    struct log_fixture *lf = *state;
    unsigned char byte = 1;
    store_entry batch[3] = {
        {1, 1, STORE_ENTRY_NORMAL, &byte, 1},
        {2, 1, STORE_ENTRY_NORMAL, &byte, 1},
        {4, 1, STORE_ENTRY_NORMAL, &byte, 1},
    };

    /* The whole batch is rejected, including the entries before the gap. */
    assert_int_equal(store_log_append(lf->txn, batch, 3, lf->errmsg), STORE_EINVALID);
    expect_bounds(lf, 0, 0);
    assert_int_equal(store_txn_commit(lf->txn, lf->errmsg), 0);
    lf->txn = NULL;
    assert_int_equal(store_txn_begin(lf->f->s, 0, &lf->txn, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);
}

static void log_append_after_snapshot(void **state)
{
    struct log_fixture *lf = *state;
    unsigned char byte = 1;
    store_entry zero = {0, 1, STORE_ENTRY_NORMAL, &byte, 1};

    assert_int_equal(store_log_append(lf->txn, &zero, 1, lf->errmsg), STORE_EINVALID);
    assert_int_equal(append_range(lf, 10001, 10003), 0);
    expect_bounds(lf, 10001, 10003);
    assert_int_equal(append_range(lf, 10005, 10005), STORE_EINVALID);
}

static void log_append_bad_entry(void **state)
{
    struct log_fixture *lf = *state;
    store_entry bad_type = {1, 1, 9, NULL, 0};
    store_entry no_data = {1, 1, STORE_ENTRY_NORMAL, NULL, 5};

    assert_int_equal(store_log_append(lf->txn, &bad_type, 1, lf->errmsg), STORE_EINVALID);
    assert_int_equal(store_log_append(lf->txn, &no_data, 1, lf->errmsg), STORE_EINVALID);
    assert_int_equal(store_log_append(lf->txn, NULL, 0, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);
}

/* Appends entries first..last of term 2 with len bytes of data each. */
static void append_sized(struct log_fixture *lf, uint64_t first, uint64_t last,
                         size_t len)
{
    unsigned char *data = malloc(len > 0 ? len : 1);

    assert_non_null(data);
    for (uint64_t i = first; i <= last; i++) {
        store_entry e = {i, 2, STORE_ENTRY_NORMAL, data, len};

        memset(data, (int)(i & 0xff), len);
        assert_int_equal(store_log_append(lf->txn, &e, 1, lf->errmsg), 0);
    }
    free(data);
}

static void free_range(store_entry *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_entry_free(&out[i]);
    }
}

static void log_range_reads(void **state)
{
    struct log_fixture *lf = *state;
    store_entry out[8];
    size_t n = 99;

    assert_int_equal(append_range(lf, 5, 20), 0);
    assert_int_equal(store_log_range(lf->txn, 7, 10, 1 << 20, out, 8, &n, lf->errmsg), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char text[32];
        int len = snprintf(text, sizeof(text), "entry-%zu", 7 + i);

        assert_int_equal(out[i].index, 7 + i);
        assert_int_equal(out[i].term, 1);
        assert_int_equal(out[i].type, STORE_ENTRY_NORMAL);
        assert_int_equal(out[i].len, (size_t)len);
        assert_memory_equal(out[i].data, text, out[i].len);
    }
    free_range(out, n);

    /* cap limits the count; hi past the end stops at the last entry. */
    assert_int_equal(store_log_range(lf->txn, 5, 100, 1 << 20, out, 4, &n, lf->errmsg),
                     0);
    assert_int_equal(n, 4);
    assert_int_equal(out[3].index, 8);
    free_range(out, n);
    assert_int_equal(store_log_range(lf->txn, 18, 100, 1 << 20, out, 8, &n, lf->errmsg),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].index, 20);
    free_range(out, n);
}

static void log_range_max_bytes(void **state)
{
    struct log_fixture *lf = *state;
    store_entry out[16];
    size_t n = 0;

    append_sized(lf, 1, 10, 100);

    /* 350 bytes hold three entries of 100; the fourth would pass it. */
    assert_int_equal(store_log_range(lf->txn, 1, 11, 350, out, 16, &n, lf->errmsg), 0);
    assert_int_equal(n, 3);
    free_range(out, n);

    /* A budget of exactly 300 bytes still fits three. */
    assert_int_equal(store_log_range(lf->txn, 1, 11, 300, out, 16, &n, lf->errmsg), 0);
    assert_int_equal(n, 3);
    free_range(out, n);

    /* An entry larger than max_bytes still comes back alone. */
    assert_int_equal(store_log_range(lf->txn, 4, 11, 10, out, 16, &n, lf->errmsg), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].index, 4);
    assert_int_equal(out[0].len, 100);
    assert_int_equal(out[0].data[99], 4);
    free_range(out, n);
    assert_int_equal(store_log_range(lf->txn, 4, 11, 0, out, 16, &n, lf->errmsg), 0);
    assert_int_equal(n, 1);
    free_range(out, n);
}

/* Empty entries add no bytes, so they fit after a full budget. */
static void log_range_empty_entries(void **state)
{
    struct log_fixture *lf = *state;
    store_entry out[8];
    size_t n = 0;

    append_sized(lf, 1, 1, 100);
    append_sized(lf, 2, 4, 0);
    append_sized(lf, 5, 5, 1);
    assert_int_equal(store_log_range(lf->txn, 1, 6, 100, out, 8, &n, lf->errmsg), 0);
    assert_int_equal(n, 4);
    assert_null(out[1].data);
    free_range(out, n);
}

static void log_range_missing(void **state)
{
    struct log_fixture *lf = *state;
    store_entry out[4];
    size_t n = 99;

    assert_int_equal(store_log_range(lf->txn, 1, 2, 100, out, 4, &n, lf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_int_equal(append_range(lf, 10, 12), 0);
    assert_int_equal(store_log_range(lf->txn, 9, 12, 100, out, 4, &n, lf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_log_range(lf->txn, 13, 14, 100, out, 4, &n, lf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_log_range(lf->txn, 11, 11, 100, out, 4, &n, lf->errmsg),
                     STORE_EINVALID);
    assert_int_equal(store_log_range(lf->txn, 11, 12, 100, out, 0, &n, lf->errmsg),
                     STORE_EINVALID);
    assert_int_equal(n, 0);
}

/* Closes the fixture's store, plants key -> value in table, and reopens. */
static void plant(struct log_fixture *lf, const char *table, const void *key, size_t klen,
                  const void *value, size_t vlen);

static void commit(struct log_fixture *lf)
{
    assert_int_equal(store_txn_commit(lf->txn, lf->errmsg), 0);
    lf->txn = NULL;
}

/* A corrupt entry inside a range fails the whole read and leaks nothing. */
static void log_range_corrupt(void **state)
{
    struct log_fixture *lf = *state;
    static const unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 3};
    store_entry out[8];
    size_t n = 99;

    assert_int_equal(append_range(lf, 1, 5), 0);
    commit(lf);
    plant(lf, "log", key, sizeof(key), "\x92\x01\x01", 3);
    assert_int_equal(store_log_range(lf->txn, 1, 6, 1 << 20, out, 8, &n, lf->errmsg),
                     STORE_ECORRUPT);
    assert_int_equal(n, 0);
    assert_non_null(strstr(lf->errmsg, "log entry 3"));
}

/* A missing entry in the middle of the log is a gap that a range reports. */
static void log_range_gap(void **state)
{
    struct log_fixture *lf = *state;
    static const unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    store_entry out[8];
    size_t n = 99;

    assert_int_equal(append_range(lf, 1, 5), 0);
    commit(lf);
    plant(lf, "log", key, sizeof(key), "\x93\x01\x01\xc4\x00", 5);
    assert_int_equal(store_log_range(lf->txn, 4, 20, 1 << 20, out, 8, &n, lf->errmsg),
                     STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "entry 9 follows 5"));
    assert_int_equal(n, 0);
}

static void log_term_reads(void **state)
{
    struct log_fixture *lf = *state;
    store_entry e[2] = {{1, 4, STORE_ENTRY_EMPTY, NULL, 0},
                        {2, UINT64_MAX, STORE_ENTRY_NORMAL, (unsigned char *)"x", 1}};
    uint64_t term = 99;

    assert_int_equal(store_log_term(lf->txn, 1, &term, lf->errmsg), STORE_ENOTFOUND);
    assert_int_equal(term, 0);
    assert_int_equal(store_log_append(lf->txn, e, 2, lf->errmsg), 0);
    assert_int_equal(store_log_term(lf->txn, 1, &term, lf->errmsg), 0);
    assert_int_equal(term, 4);
    assert_int_equal(store_log_term(lf->txn, 2, &term, lf->errmsg), 0);
    assert_int_equal(term, UINT64_MAX);
    assert_int_equal(store_log_term(lf->txn, 3, &term, lf->errmsg), STORE_ENOTFOUND);
}

static void log_term_corrupt(void **state)
{
    struct log_fixture *lf = *state;
    static const unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    static const unsigned char negative_term[] = {0x93, 0xff, 0x01, 0xc4, 0x00};
    uint64_t term = 99;

    plant(lf, "log", key, sizeof(key), negative_term, sizeof(negative_term));
    assert_int_equal(store_log_term(lf->txn, 2, &term, lf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "log entry 2"));
    assert_int_equal(term, 0);
}

static void log_compact_prefix(void **state)
{
    struct log_fixture *lf = *state;
    store_entry e;

    assert_int_equal(append_range(lf, 1, 300), 0);
    assert_int_equal(store_log_compact(lf->txn, 0, lf->errmsg), 0);
    expect_bounds(lf, 1, 300);
    assert_int_equal(store_log_compact(lf->txn, 256, lf->errmsg), 0);
    expect_bounds(lf, 257, 300);
    assert_int_equal(store_log_get(lf->txn, 256, &e, lf->errmsg), STORE_ENOTFOUND);
    assert_int_equal(store_log_get(lf->txn, 257, &e, lf->errmsg), 0);
    store_entry_free(&e);

    /* Compacting below the first index changes nothing. */
    assert_int_equal(store_log_compact(lf->txn, 100, lf->errmsg), 0);
    expect_bounds(lf, 257, 300);
    assert_int_equal(append_range(lf, 301, 301), 0);
    expect_bounds(lf, 257, 301);
}

static void log_compact_past_end(void **state)
{
    struct log_fixture *lf = *state;

    assert_int_equal(append_range(lf, 1, 50), 0);
    assert_int_equal(store_log_compact(lf->txn, 50, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);
    assert_int_equal(append_range(lf, 1, 50), 0);
    assert_int_equal(store_log_compact(lf->txn, UINT64_MAX, lf->errmsg), 0);
    expect_bounds(lf, 0, 0);

    /* The empty log then takes any first index, as after a snapshot. */
    assert_int_equal(append_range(lf, 1001, 1002), 0);
    expect_bounds(lf, 1001, 1002);
    assert_int_equal(store_txn_commit(lf->txn, lf->errmsg), 0);
    lf->txn = NULL;
    assert_int_equal(store_txn_begin(lf->f->s, 0, &lf->txn, lf->errmsg), 0);
    expect_bounds(lf, 1001, 1002);
}

static void meta_round_trip(void **state)
{
    struct log_fixture *lf = *state;
    store_hard_state hs = {7, 3, 42};
    store_hard_state got;
    uint64_t applied = 99;

    assert_int_equal(store_hard_state_get(lf->txn, &got, lf->errmsg), 0);
    assert_int_equal(got.term, 0);
    assert_int_equal(got.vote, 0);
    assert_int_equal(got.commit, 0);
    assert_int_equal(store_applied_get(lf->txn, &applied, lf->errmsg), 0);
    assert_int_equal(applied, 0);

    /* Both in one transaction, as node/ writes them. */
    assert_int_equal(store_hard_state_put(lf->txn, &hs, lf->errmsg), 0);
    assert_int_equal(store_applied_put(lf->txn, UINT64_MAX - 1, lf->errmsg), 0);
    assert_int_equal(store_txn_commit(lf->txn, lf->errmsg), 0);
    lf->txn = NULL;
    reopen(lf->f);

    assert_int_equal(store_txn_begin(lf->f->s, 0, &lf->txn, lf->errmsg), 0);
    assert_int_equal(store_hard_state_get(lf->txn, &got, lf->errmsg), 0);
    assert_int_equal(got.term, 7);
    assert_int_equal(got.vote, 3);
    assert_int_equal(got.commit, 42);
    assert_int_equal(store_applied_get(lf->txn, &applied, lf->errmsg), 0);
    assert_int_equal(applied, UINT64_MAX - 1);
}

/* Closes the fixture's store, plants key -> value in table, and reopens. */
static void plant(struct log_fixture *lf, const char *table, const void *key, size_t klen,
                  const void *value, size_t vlen)
{
    store_txn_abort(lf->txn);
    lf->txn = NULL;
    store_close(lf->f->s);
    lf->f->s = NULL;
    raw_put(lf->f->dir, table, key, klen, value, vlen);
    reopen(lf->f);
    assert_int_equal(store_txn_begin(lf->f->s, 0, &lf->txn, lf->errmsg), 0);
}

static void log_corrupt_value(void **state)
{
    struct log_fixture *lf = *state;
    static const unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    static const unsigned char wrong_type[] = {0x93, 0x01, 0x09, 0xc4, 0x00}; /* type 9 */
    store_entry e;

    plant(lf, "log", key, sizeof(key), "\xc1garbage", 8);
    assert_int_equal(store_log_get(lf->txn, 7, &e, lf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "log entry 7"));
    assert_null(e.data);

    plant(lf, "log", key, sizeof(key), wrong_type, sizeof(wrong_type));
    assert_int_equal(store_log_get(lf->txn, 7, &e, lf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "log entry 7"));
}

static void log_corrupt_key(void **state)
{
    struct log_fixture *lf = *state;
    uint64_t first, last;

    plant(lf, "log", "abc", 3, "\x93\x01\x01\xc4\x00", 5);
    assert_int_equal(store_log_bounds(lf->txn, &first, &last, lf->errmsg),
                     STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "table log"));
}

static void meta_corrupt_hard_state(void **state)
{
    struct log_fixture *lf = *state;
    static const unsigned char negative_term[] = {
        0x83, 0xa4, 't',  'e', 'r', 'm', 0xff, 0xa4, 'v', 'o',  't',
        'e',  0x00, 0xa6, 'c', 'o', 'm', 'm',  'i',  't', 0x00,
    };
    store_hard_state hs;

    plant(lf, "meta", "hard_state", 10, negative_term, sizeof(negative_term));
    assert_int_equal(store_hard_state_get(lf->txn, &hs, lf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(lf->errmsg, "hard_state"));
    assert_non_null(strstr(lf->errmsg, "\"term\""));
}

int run_log_tests(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, log_setup, log_teardown)
    const struct CMUnitTest tests[] = {
        T(log_append_get),       T(log_survives_reopen),     T(log_bounds_empty),
        T(log_bounds_order),     T(log_truncate_suffix),     T(log_truncate_edges),
        T(log_append_gap),       T(log_append_batch_gap),    T(log_append_after_snapshot),
        T(log_append_bad_entry), T(meta_round_trip),         T(log_corrupt_value),
        T(log_corrupt_key),      T(meta_corrupt_hard_state), T(log_range_reads),
        T(log_range_max_bytes),  T(log_range_empty_entries), T(log_range_missing),
        T(log_range_corrupt),    T(log_range_gap),           T(log_term_reads),
        T(log_term_corrupt),     T(log_compact_prefix),      T(log_compact_past_end),
    };
#undef T

    return cmocka_run_group_tests_name("store log", tests, NULL, NULL);
}
