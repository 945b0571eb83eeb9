/* Installing staged snapshot data that is damaged or hostile: every case
 * must fail with STORE_ECORRUPT before touching the tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A store with put_old_state's state, and a small valid snapshot taken in
 * another store. */
struct input {
    struct fixture *f;
    unsigned char *data;
    store_snapshot_meta meta;
    char errmsg[STORE_ERRMSG_SIZE];
};

static int input_setup(void **state)
{
    struct input *in = calloc(1, sizeof(*in));
    void *f = NULL;
    void *source = NULL;

    if (in == NULL || fixture_setup(&f) != 0 || fixture_setup(&source) != 0) {
        free(in);
        return -1;
    }
    in->f = f;
    put_old_state(in->f->s);

    fill_state(((struct fixture *)source)->s, 2, 2, 100);
    take_snapshot(((struct fixture *)source)->s, 40, 3);
    in->data = read_snapshot(((struct fixture *)source)->s, 40, 4096, &in->meta);
    fixture_teardown(&source);
    *state = in;
    return 0;
}

static int input_teardown(void **state)
{
    struct input *in = *state;
    void *f = in->f;

    expect_old_state(in->f->s);
    fixture_teardown(&f);
    free(in->data);
    store_snapshot_meta_free(&in->meta);
    free(in);
    return 0;
}

/* Stages len bytes of data in txn and installs them with the fixture's
 * metadata but size len. */
static int try_install(store_txn *txn, struct input *in, const unsigned char *data,
                       size_t len)
{
    store_snapshot_meta meta = in->meta;
    int rv = store_snapshot_stage(txn, 0, data, len, in->errmsg);

    assert_int_equal(rv, 0);
    meta.size = len;
    return store_snapshot_install(txn, &meta, in->errmsg);
}

/* Every proper prefix fails. All run in one transaction, which still
 * commits at the end because failed installs write nothing. */
static void input_truncated(void **state)
{
    struct input *in = *state;
    store_txn *txn;

    print_message("  %llu prefixes\n", (unsigned long long)in->meta.size);
    assert_int_equal(store_txn_begin(in->f->s, 1, &txn, in->errmsg), 0);
    for (size_t cut = 0; cut < in->meta.size; cut++) {
        int rv = try_install(txn, in, in->data, cut);

        if (rv != STORE_ECORRUPT) {
            print_error("prefix of %zu bytes: %d, %s\n", cut, rv, in->errmsg);
        }
        assert_int_equal(rv, STORE_ECORRUPT);
        assert_non_null(strstr(in->errmsg, "cannot install snapshot 40: "));
    }
    assert_int_equal(store_txn_commit(txn, in->errmsg), 0);
}

/* Flipped bytes may leave data that still installs, but never crash, leak
 * or give another error. */
static void input_mutations(void **state)
{
    struct input *in = *state;
    uint64_t rng = test_seed("input_mutations");
    unsigned char *copy = malloc(in->meta.size);
    int installed = 0;

    assert_non_null(copy);
    for (int round = 0; round < 1500; round++) {
        store_txn *txn;
        int rv;

        memcpy(copy, in->data, in->meta.size);
        for (int flips = 1 + (int)(next_random(&rng) % 3); flips > 0; flips--) {
            copy[next_random(&rng) % in->meta.size] = (unsigned char)next_random(&rng);
        }
        assert_int_equal(store_txn_begin(in->f->s, 1, &txn, in->errmsg), 0);
        rv = try_install(txn, in, copy, in->meta.size);
        assert_true(rv == 0 || rv == STORE_ECORRUPT);
        installed += rv == 0;
        store_txn_abort(txn);
    }
    print_message("  %d of 1500 mutations still installed\n", installed);
    free(copy);
}

static void input_random(void **state)
{
    struct input *in = *state;
    uint64_t rng = test_seed("input_random");
    unsigned char data[3000];
    store_txn *txn;

    /* Half the rounds keep the real header frame, which gets further. */
    assert_true(in->meta.size > 40);
    assert_int_equal(store_txn_begin(in->f->s, 1, &txn, in->errmsg), 0);
    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(next_random(&rng) % sizeof(data));
        size_t keep = round % 2 == 0 && len > 40 ? 40 : 0;

        memcpy(data, in->data, keep);
        for (size_t i = keep; i < len; i++) {
            data[i] = (unsigned char)next_random(&rng);
        }
        assert_int_equal(try_install(txn, in, data, len), STORE_ECORRUPT);
    }
    store_txn_abort(txn);
}

/* ---- hand-made streams ---- */

static void add_frame(msgpack_sbuffer *stream, const msgpack_sbuffer *frame)
{
    unsigned char prefix[4] = {
        (unsigned char)(frame->size >> 24), (unsigned char)(frame->size >> 16),
        (unsigned char)(frame->size >> 8), (unsigned char)frame->size};

    msgpack_sbuffer_write(stream, (const char *)prefix, sizeof(prefix));
    msgpack_sbuffer_write(stream, frame->data, frame->size);
}

static void add_mark(msgpack_sbuffer *stream, const char *name, uint64_t n)
{
    msgpack_sbuffer frame;
    msgpack_packer pk;

    msgpack_sbuffer_init(&frame);
    msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&pk, name, strlen(name));
    msgpack_pack_uint64(&pk, n);
    add_frame(stream, &frame);
    msgpack_sbuffer_destroy(&frame);
}

static void add_row(msgpack_sbuffer *stream, const char *table, const void *key,
                    size_t klen, const void *value, size_t vlen)
{
    msgpack_sbuffer frame;
    msgpack_packer pk;

    msgpack_sbuffer_init(&frame);
    msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, table, strlen(table));
    msgpack_pack_bin_with_body(&pk, key, klen);
    msgpack_pack_bin_with_body(&pk, value, vlen);
    add_frame(stream, &frame);
    msgpack_sbuffer_destroy(&frame);
}

/* A nodes row for id whose record names record_id. */
static void add_node(msgpack_sbuffer *stream, const char *id, const char *record_id)
{
    struct craft fields[16];
    size_t n = craft_node(fields, record_id);
    msgpack_sbuffer value;

    msgpack_sbuffer_init(&value);
    craft_pack(&value, fields, n);
    add_row(stream, "nodes", id, strlen(id), value.data, value.size);
    msgpack_sbuffer_destroy(&value);
}

static void add_removed(msgpack_sbuffer *stream, const char *id)
{
    static const unsigned char value[] = {0x81, 0xab, 'p', 'r', 'u', 'n', 'e',
                                          '_',  'a',  'f', 't', 'e', 'r', 0x05};

    add_row(stream, "removed", id, strlen(id), value, sizeof(value));
}

static void add_raw(msgpack_sbuffer *stream, const void *bytes, size_t len)
{
    msgpack_sbuffer_write(stream, bytes, len);
}

static void add_header(msgpack_sbuffer *s)
{
    add_mark(s, "swarmpki-snapshot", 1);
}

/* Two valid rows: node-a, then removed node gone. */
static void add_good_rows(msgpack_sbuffer *s)
{
    add_node(s, "node-a", "node-a");
    add_removed(s, "gone");
}

static void build_baseline(msgpack_sbuffer *s)
{
    add_header(s);
    add_good_rows(s);
    add_mark(s, "end", 2);
}

static void build_bad_magic(msgpack_sbuffer *s)
{
    add_mark(s, "swarmpki-snapshoT", 1);
    add_good_rows(s);
    add_mark(s, "end", 2);
}

static void build_version_2(msgpack_sbuffer *s)
{
    add_mark(s, "swarmpki-snapshot", 2);
    add_good_rows(s);
    add_mark(s, "end", 2);
}

static void build_no_header(msgpack_sbuffer *s)
{
    add_good_rows(s);
    add_mark(s, "end", 2);
}

static void build_unknown_table(msgpack_sbuffer *s)
{
    add_header(s);
    add_row(s, "users", "a", 1, "\x80", 1);
    add_mark(s, "end", 1);
}

static void build_keys_descend(msgpack_sbuffer *s)
{
    add_header(s);
    add_node(s, "node-b", "node-b");
    add_node(s, "node-a", "node-a");
    add_mark(s, "end", 2);
}

static void build_key_repeated(msgpack_sbuffer *s)
{
    add_header(s);
    add_node(s, "node-a", "node-a");
    add_node(s, "node-a", "node-a");
    add_mark(s, "end", 2);
}

/* A prefix sorts first in LMDB's order, so "node-a" must precede
 * "node-a0". */
static void build_prefix_after(msgpack_sbuffer *s)
{
    add_header(s);
    add_node(s, "node-a0", "node-a0");
    add_node(s, "node-a", "node-a");
    add_mark(s, "end", 2);
}

static void build_tables_descend(msgpack_sbuffer *s)
{
    add_header(s);
    add_removed(s, "gone");
    add_node(s, "node-a", "node-a");
    add_mark(s, "end", 2);
}

static void build_count_wrong(msgpack_sbuffer *s)
{
    add_header(s);
    add_good_rows(s);
    add_mark(s, "end", 3);
}

static void build_after_trailer(msgpack_sbuffer *s)
{
    add_header(s);
    add_good_rows(s);
    add_mark(s, "end", 2);
    add_raw(s, "\x00", 1);
}

static void build_trailer_first(msgpack_sbuffer *s)
{
    add_header(s);
    add_mark(s, "end", 0);
    add_good_rows(s);
}

static void build_no_trailer(msgpack_sbuffer *s)
{
    add_header(s);
    add_good_rows(s);
}

static void build_row_pair(msgpack_sbuffer *s)
{
    add_header(s);
    add_mark(s, "nodes", 1);
    add_mark(s, "end", 1);
}

/* A row whose key is a string rather than a byte string. */
static void build_key_str(msgpack_sbuffer *s)
{
    msgpack_sbuffer frame;
    msgpack_packer pk;

    add_header(s);
    msgpack_sbuffer_init(&frame);
    msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, "removed", 7);
    msgpack_pack_str_with_body(&pk, "gone", 4);
    msgpack_pack_bin_with_body(&pk, "\x80", 1);
    add_frame(s, &frame);
    msgpack_sbuffer_destroy(&frame);
    add_mark(s, "end", 1);
}

static void build_frame_huge(msgpack_sbuffer *s)
{
    static const unsigned char frame[] = {0x00, 0x20, 0x00, 0x00, 0xc0}; /* 2 MiB */

    add_header(s);
    add_raw(s, frame, sizeof(frame));
}

static void build_frame_past_end(msgpack_sbuffer *s)
{
    static const unsigned char frame[] = {0x00, 0x00, 0x00, 0x64, 0x92, 0x01}; /* 100 */

    add_header(s);
    add_raw(s, frame, sizeof(frame));
}

static void build_not_msgpack(msgpack_sbuffer *s)
{
    static const unsigned char frame[] = {0x00, 0x00, 0x00, 0x01, 0xc1};

    add_header(s);
    add_raw(s, frame, sizeof(frame));
    add_mark(s, "end", 0);
}

static void build_two_values(msgpack_sbuffer *s)
{
    static const unsigned char frame[] = {0x00, 0x00, 0x00, 0x02, 0xc0, 0xc0};

    add_header(s);
    add_raw(s, frame, sizeof(frame));
    add_mark(s, "end", 0);
}

static void build_id_mismatch(msgpack_sbuffer *s)
{
    add_header(s);
    add_node(s, "node-0", "node-1");
    add_mark(s, "end", 1);
}

static void build_key_nul(msgpack_sbuffer *s)
{
    static const unsigned char value[] = {0x81, 0xab, 'p', 'r', 'u', 'n', 'e',
                                          '_',  'a',  'f', 't', 'e', 'r', 0x05};

    add_header(s);
    add_row(s, "removed", "go\0ne", 5, value, sizeof(value));
    add_mark(s, "end", 1);
}

static void build_cluster_key(msgpack_sbuffer *s)
{
    add_header(s);
    add_row(s, "cluster", "other", 5, "\x80", 1);
    add_mark(s, "end", 1);
}

static void build_hash_key_short(msgpack_sbuffer *s)
{
    static const unsigned char hash[31] = {0};

    add_header(s);
    add_row(s, "certs_by_key", hash, sizeof(hash), "\x80", 1);
    add_mark(s, "end", 1);
}

static void build_bad_role(msgpack_sbuffer *s)
{
    struct craft fields[16];
    size_t n = craft_node(fields, "node-a");
    msgpack_sbuffer value;

    craft_set(fields, n, (struct craft){"role", CRAFT_UINT, NULL, 0, 9});
    msgpack_sbuffer_init(&value);
    craft_pack(&value, fields, n);
    add_header(s);
    add_row(s, "nodes", "node-a", 6, value.data, value.size);
    add_mark(s, "end", 1);
    msgpack_sbuffer_destroy(&value);
}

static void build_empty(msgpack_sbuffer *s)
{
    (void)s;
}

struct crafted {
    const char *label;
    void (*build)(msgpack_sbuffer *s);
    const char *expected; /* in the message, or NULL when the install succeeds */
};

static const struct crafted crafted_cases[] = {
    {"baseline", build_baseline, NULL},
    {"bad magic", build_bad_magic, "is not the header"},
    {"version 2", build_version_2, "format version 2"},
    {"no header", build_no_header, "is not the header"},
    {"unknown table", build_unknown_table, "names no replicated table"},
    {"keys descend", build_keys_descend, "table nodes is out of order"},
    {"key repeated", build_key_repeated, "out of order or repeated"},
    {"prefix after", build_prefix_after, "out of order"},
    {"tables descend", build_tables_descend, "table nodes is out of order"},
    {"count wrong", build_count_wrong, "row count"},
    {"after trailer", build_after_trailer, "followed by more data"},
    {"trailer first", build_trailer_first, "followed by more data"},
    {"no trailer", build_no_trailer, "without the trailer"},
    {"row pair", build_row_pair, "is not a row"},
    {"key str", build_key_str, "is not a row"},
    {"frame huge", build_frame_huge, "max 1048576"},
    {"frame past end", build_frame_past_end, "inside a frame"},
    {"not msgpack", build_not_msgpack, "not one msgpack value"},
    {"two values", build_two_values, "not one msgpack value"},
    {"id mismatch", build_id_mismatch, "does not match the key"},
    {"key NUL", build_key_nul, "without NUL"},
    {"cluster key", build_cluster_key, "only key"},
    {"hash key short", build_hash_key_short, "32 to 32 bytes"},
    {"bad role", build_bad_role, "\"role\""},
    {"empty", build_empty, "inside a frame"},
};

static void input_crafted(void **state)
{
    struct input *in = *state;

    for (size_t i = 0; i < sizeof(crafted_cases) / sizeof(crafted_cases[0]); i++) {
        const struct crafted *c = &crafted_cases[i];
        msgpack_sbuffer stream;
        store_txn *txn;
        int rv;

        msgpack_sbuffer_init(&stream);
        c->build(&stream);
        in->errmsg[0] = '\0';
        assert_int_equal(store_txn_begin(in->f->s, 1, &txn, in->errmsg), 0);
        rv = try_install(txn, in, (const unsigned char *)stream.data, stream.size);
        print_message("  %s: %d %s\n", c->label, rv, in->errmsg);
        if (c->expected == NULL) {
            assert_int_equal(rv, 0);
        } else {
            assert_int_equal(rv, STORE_ECORRUPT);
            assert_non_null(strstr(in->errmsg, "cannot install snapshot 40: "));
            assert_non_null(strstr(in->errmsg, c->expected));
        }
        store_txn_abort(txn);
        msgpack_sbuffer_destroy(&stream);
    }
}

/* The baseline case installs, and only its rows remain. */
static void input_baseline_installs(void **state)
{
    struct input *in = *state;
    store_snapshot_meta meta = in->meta;
    msgpack_sbuffer stream;
    int64_t prune_after = 0;
    store_txn *txn;
    store_node n;

    msgpack_sbuffer_init(&stream);
    build_baseline(&stream);
    meta.size = stream.size;
    meta.config = NULL;
    meta.config_len = 0;
    stage_snapshot(in->f->s, (const unsigned char *)stream.data, stream.size, 7);
    assert_int_equal(install_snapshot(in->f->s, &meta, in->errmsg), 0);
    msgpack_sbuffer_destroy(&stream);

    assert_int_equal(store_txn_begin(in->f->s, 0, &txn, in->errmsg), 0);
    assert_int_equal(store_node_get(txn, "node-a", &n, in->errmsg), 0);
    assert_int_equal(store_node_get(txn, "old-node", &n, in->errmsg), STORE_ENOTFOUND);
    assert_int_equal(store_removed_get(txn, "gone", &prune_after, in->errmsg), 0);
    assert_int_equal(prune_after, 5);
    store_txn_abort(txn);

    /* Put the old state back for the teardown's check. */
    put_old_state(in->f->s);
}

int run_snapshot_input_tests(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, input_setup, input_teardown)
    const struct CMUnitTest tests[] = {
        T(input_truncated), T(input_mutations),         T(input_random),
        T(input_crafted),   T(input_baseline_installs),
    };
#undef T

    return cmocka_run_group_tests_name("store snapshot input", tests, NULL, NULL);
}
