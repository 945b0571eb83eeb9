/* Raft message codec: round trips of every message type, and a decoder that
 * rejects truncated, malformed, mutated and oversized input without crashing
 * or allocating for counts the input cannot hold.
 *
 * The executable is linked with --wrap=malloc and --wrap=calloc, so the
 * tests can see the largest allocation and make the n-th allocation fail. */
#include <net/internal.h> /* NET_RAFT_MAX_ENTRIES, NET_RAFT_MAX_IDS */
#include <net/net.h>
#include <raft/raft.h>

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* ---- allocation tracking ---- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);

static struct {
    bool tracking;
    size_t largest;   /* bytes of the largest request while tracking */
    long allocations; /* requests while tracking */
    long fail_at;     /* the request number that fails, or -1 */
} alloc;

static bool alloc_note(size_t bytes)
{
    if (!alloc.tracking) {
        return true;
    }
    if (bytes > alloc.largest) {
        alloc.largest = bytes;
    }
    return alloc.allocations++ != alloc.fail_at;
}

void *__wrap_malloc(size_t size)
{
    return alloc_note(size) ? __real_malloc(size) : NULL;
}

void *__wrap_calloc(size_t count, size_t size)
{
    size_t bytes = count != 0 && size > SIZE_MAX / count ? SIZE_MAX : count * size;

    return alloc_note(bytes) ? __real_calloc(count, size) : NULL;
}

/* Starts counting allocations. With fail_at -1 every allocation succeeds. */
static void track_allocations(long fail_at)
{
    alloc.tracking = true;
    alloc.largest = 0;
    alloc.allocations = 0;
    alloc.fail_at = fail_at;
}

static void stop_tracking(void)
{
    alloc.tracking = false;
}

/* ---- sample messages ---- */

static uint8_t *pattern(size_t len, unsigned salt)
{
    uint8_t *data = malloc(len > 0 ? len : 1);

    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 31 + salt);
    }
    return data;
}

/* Voters 1 to 3, two learners (one with a 64-bit id), three removed ids. */
static void sample_config(struct raft_config *c)
{
    static const raft_id removed[] = {5, 6, UINT64_MAX};

    memset(c, 0, sizeof(*c));
    assert_int_equal(raft_config_add(c, 1, RAFT_VOTER), 0);
    assert_int_equal(raft_config_add(c, 2, RAFT_VOTER), 0);
    assert_int_equal(raft_config_add(c, 3, RAFT_VOTER), 0);
    assert_int_equal(raft_config_add(c, 4, RAFT_LEARNER), 0);
    assert_int_equal(raft_config_add(c, UINT64_C(1) << 40, RAFT_LEARNER), 0);
    c->removed = malloc(sizeof(removed));
    assert_non_null(c->removed);
    memcpy(c->removed, removed, sizeof(removed));
    c->n_removed = 3;
}

static void header(struct raft_message *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = 1;
    m->to = UINT64_C(0xfedcba9876543210);
    m->term = 77;
}

/* Entries with data of several sizes, around the msgpack bin 8, 16 and 32
 * boundaries when big is set, one NOOP without data and one CONFIG entry
 * that carries an encoded configuration. */
static void sample_append(struct raft_message *m, bool big)
{
    static const size_t small_sizes[] = {0, 1, 31, 255, 256, 0};
    static const size_t big_sizes[] = {0, 1, 255, 65535, 65536, 0};
    const size_t *sizes = big ? big_sizes : small_sizes;
    const size_t n = 6;
    struct raft_config config;

    header(m, RAFT_MSG_APPEND);
    m->append.prev_index = 1000;
    m->append.prev_term = 76;
    m->append.commit = 999;
    m->append.seq = UINT64_MAX;
    m->append.entries = calloc(n, sizeof(struct raft_entry));
    assert_non_null(m->append.entries);
    m->append.n_entries = n;
    for (size_t i = 0; i < n; i++) {
        struct raft_entry *e = &m->append.entries[i];

        e->term = 77;
        e->index = 1001 + i;
        e->type = i == 0 ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL;
        e->len = sizes[i];
        e->data = e->len > 0 ? pattern(e->len, (unsigned)i) : NULL;
    }

    sample_config(&config);
    m->append.entries[n - 1].type = RAFT_ENTRY_CONFIG;
    assert_int_equal(raft_config_encode(&config, &m->append.entries[n - 1].data,
                                        &m->append.entries[n - 1].len),
                     0);
    raft_config_free(&config);
}

static void sample_heartbeat(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_APPEND);
    m->append.prev_index = 5;
    m->append.prev_term = 4;
    m->append.commit = 3;
    m->append.seq = 2;
}

static void sample_append_reject(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_APPEND_RESP);
    m->append_resp.reject = true;
    m->append_resp.index = 1000;
    m->append_resp.hint_index = 900;
    m->append_resp.hint_term = 70;
    m->append_resp.seq = 12;
}

static void sample_append_accept(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_APPEND_RESP);
    m->append_resp.index = UINT64_MAX;
    m->append_resp.seq = 1;
}

static void sample_vote(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_VOTE);
    m->vote.last_index = 123456789;
    m->vote.last_term = 76;
}

static void sample_transfer_pre_vote(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_VOTE);
    m->vote.last_index = 1;
    m->vote.last_term = 1;
    m->vote.pre_vote = true;
    m->vote.transfer = true;
}

static void sample_vote_resp(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_VOTE_RESP);
    m->vote_resp.granted = true;
    m->vote_resp.pre_vote = true;
}

static void sample_snapshot(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_SNAPSHOT);
    m->snapshot.index = 10000;
    m->snapshot.term = 70;
    sample_config(&m->snapshot.config);
    m->snapshot.size = UINT64_C(1) << 33;
    m->snapshot.offset = 262144;
    m->snapshot.len = big ? 262144 : 100;
    m->snapshot.data = pattern(m->snapshot.len, 7);
}

/* The final chunk of an empty snapshot: no data, offset equal to size. */
static void sample_snapshot_empty(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_SNAPSHOT);
    m->snapshot.index = 1;
    m->snapshot.term = 1;
    assert_int_equal(raft_config_add(&m->snapshot.config, 9, RAFT_VOTER), 0);
}

static void sample_snapshot_resp(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_SNAPSHOT_RESP);
    m->snapshot_resp.index = 10000;
    m->snapshot_resp.offset = 524288;
    m->snapshot_resp.done = true;
    m->snapshot_resp.match = 10000;
}

static void sample_timeout_now(struct raft_message *m, bool big)
{
    header(m, RAFT_MSG_TIMEOUT_NOW);
}

static void (*const samples[])(struct raft_message *m, bool big) = {
    sample_append,        sample_heartbeat,   sample_append_reject,
    sample_append_accept, sample_vote,        sample_transfer_pre_vote,
    sample_vote_resp,     sample_snapshot,    sample_snapshot_empty,
    sample_snapshot_resp, sample_timeout_now,
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

/* ---- comparisons ---- */

static void assert_same_data(const uint8_t *sent, const uint8_t *got, size_t len)
{
    if (len == 0) {
        assert_null(got);
        return;
    }
    assert_memory_equal(sent, got, len);
}

static void assert_same_entries(const struct raft_append *a, const struct raft_append *b)
{
    assert_int_equal(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        assert_same_data(a->entries[i].data, b->entries[i].data, a->entries[i].len);
    }
}

static void assert_same_config(const struct raft_config *a, const struct raft_config *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->servers[i].id, b->servers[i].id);
        assert_int_equal(a->servers[i].role, b->servers[i].role);
    }
    assert_int_equal(a->n_removed, b->n_removed);
    for (size_t i = 0; i < a->n_removed; i++) {
        assert_int_equal(a->removed[i], b->removed[i]);
    }
}

static void assert_same_body(const struct raft_message *a, const struct raft_message *b)
{
    switch (a->type) {
    case RAFT_MSG_APPEND:
        assert_int_equal(a->append.prev_index, b->append.prev_index);
        assert_int_equal(a->append.prev_term, b->append.prev_term);
        assert_int_equal(a->append.commit, b->append.commit);
        assert_int_equal(a->append.seq, b->append.seq);
        assert_same_entries(&a->append, &b->append);
        break;
    case RAFT_MSG_APPEND_RESP:
        assert_int_equal(a->append_resp.reject, b->append_resp.reject);
        assert_int_equal(a->append_resp.index, b->append_resp.index);
        assert_int_equal(a->append_resp.hint_index, b->append_resp.hint_index);
        assert_int_equal(a->append_resp.hint_term, b->append_resp.hint_term);
        assert_int_equal(a->append_resp.seq, b->append_resp.seq);
        break;
    case RAFT_MSG_VOTE:
        assert_int_equal(a->vote.last_index, b->vote.last_index);
        assert_int_equal(a->vote.last_term, b->vote.last_term);
        assert_int_equal(a->vote.pre_vote, b->vote.pre_vote);
        assert_int_equal(a->vote.transfer, b->vote.transfer);
        break;
    case RAFT_MSG_VOTE_RESP:
        assert_int_equal(a->vote_resp.granted, b->vote_resp.granted);
        assert_int_equal(a->vote_resp.pre_vote, b->vote_resp.pre_vote);
        break;
    case RAFT_MSG_SNAPSHOT:
        assert_int_equal(a->snapshot.index, b->snapshot.index);
        assert_int_equal(a->snapshot.term, b->snapshot.term);
        assert_same_config(&a->snapshot.config, &b->snapshot.config);
        assert_int_equal(a->snapshot.size, b->snapshot.size);
        assert_int_equal(a->snapshot.offset, b->snapshot.offset);
        assert_int_equal(a->snapshot.len, b->snapshot.len);
        assert_same_data(a->snapshot.data, b->snapshot.data, a->snapshot.len);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        assert_int_equal(a->snapshot_resp.index, b->snapshot_resp.index);
        assert_int_equal(a->snapshot_resp.offset, b->snapshot_resp.offset);
        assert_int_equal(a->snapshot_resp.done, b->snapshot_resp.done);
        assert_int_equal(a->snapshot_resp.match, b->snapshot_resp.match);
        break;
    default:
        break;
    }
}

static void assert_same_raft(const struct raft_message *a, const struct raft_message *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_same_body(a, b);
}

static void assert_zeroed(const struct raft_message *m)
{
    struct raft_message zero;

    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(m, &zero, sizeof(zero));
}

static unsigned char *encode(const struct raft_message *m, size_t *len)
{
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *bytes;

    if (net_raft_encode(m, &bytes, len, err) != 0) {
        fail_msg("net_raft_encode failed: %s", err);
    }
    return bytes;
}

static void decode_ok(const unsigned char *bytes, size_t len, struct raft_message *out)
{
    char err[NET_ERRMSG_SIZE] = "";

    if (net_raft_decode(bytes, len, out, err) != 0) {
        fail_msg("net_raft_decode failed: %s", err);
    }
}

/* ---- hand-built input ---- */

typedef struct wire {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} wire;

/* Starts [format, type, from, to, term, body] up to the body. */
static void wire_begin(wire *w, uint64_t format, uint64_t type)
{
    msgpack_sbuffer_init(&w->sbuf);
    msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&w->pk, 6);
    msgpack_pack_uint64(&w->pk, format);
    msgpack_pack_uint64(&w->pk, type);
    msgpack_pack_uint64(&w->pk, 1);
    msgpack_pack_uint64(&w->pk, 2);
    msgpack_pack_uint64(&w->pk, 3);
}

static void put_uints(wire *w, int n, ...)
{
    va_list ap;

    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_uint64(&w->pk, va_arg(ap, uint64_t));
    }
    va_end(ap);
}

/* Decodes w, frees it and returns the decoder's result. */
static int wire_decode(wire *w, struct raft_message *m, char *err)
{
    int rv = net_raft_decode((const unsigned char *)w->sbuf.data, w->sbuf.size, m, err);

    msgpack_sbuffer_destroy(&w->sbuf);
    return rv;
}

static void expect_reject(wire *w, const char *needle)
{
    char err[NET_ERRMSG_SIZE] = "";
    struct raft_message m;

    assert_int_equal(wire_decode(w, &m, err), NET_EPROTO);
    assert_zeroed(&m);
    if (strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
}

static void expect_accept(wire *w)
{
    char err[NET_ERRMSG_SIZE] = "";
    struct raft_message m;

    if (wire_decode(w, &m, err) != 0) {
        fail_msg("decode failed: %s", err);
    }
    net_raft_free(&m);
}

/* An append body up to its entries array, which the caller packs. */
static void append_begin(wire *w)
{
    wire_begin(w, 1, RAFT_MSG_APPEND);
    msgpack_pack_array(&w->pk, 5);
    put_uints(w, 4, UINT64_C(1), UINT64_C(1), UINT64_C(1), UINT64_C(1));
}

/* A snapshot body up to its config, which the caller packs. */
static void snapshot_begin(wire *w, uint64_t size, uint64_t offset)
{
    wire_begin(w, 1, RAFT_MSG_SNAPSHOT);
    msgpack_pack_array(&w->pk, 6);
    put_uints(w, 4, UINT64_C(10), UINT64_C(2), size, offset);
}

/* Packs len bytes of chunk data after the config. */
static void snapshot_end(wire *w, size_t len)
{
    static const char data[64] = {0};

    assert_true(len <= sizeof(data));
    msgpack_pack_bin_with_body(&w->pk, data, len);
}

/* ---- round trips ---- */

static void test_round_trip_every_type(void **state)
{
    for (size_t i = 0; i < N_SAMPLES; i++) {
        struct raft_message in;
        struct raft_message out;
        unsigned char *bytes;
        size_t len;

        samples[i](&in, true);
        bytes = encode(&in, &len);
        assert_true(len <= NET_MAX_BIN);
        decode_ok(bytes, len, &out);
        assert_same_raft(&in, &out);
        net_raft_free(&in);
        net_raft_free(&out);
        assert_zeroed(&out);
        free(bytes);
    }
}

static void test_round_trip_decoded_config(void **state)
{
    struct raft_message in;
    struct raft_message out;
    struct raft_config expected;
    struct raft_config config;
    const struct raft_entry *e;
    unsigned char *bytes;
    size_t len;

    sample_append(&in, false);
    bytes = encode(&in, &len);
    decode_ok(bytes, len, &out);
    e = &out.append.entries[out.append.n_entries - 1];
    assert_int_equal(e->type, RAFT_ENTRY_CONFIG);
    assert_int_equal(raft_config_decode(e->data, e->len, &config), 0);
    assert_int_equal(raft_config_check(&config), 0);
    sample_config(&expected);
    assert_same_config(&expected, &config);
    raft_config_free(&expected);
    raft_config_free(&config);
    net_raft_free(&in);
    net_raft_free(&out);
    free(bytes);
}

static void test_entry_count_limit(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    struct raft_message in;
    struct raft_message out;
    unsigned char *bytes;
    size_t len;

    header(&in, RAFT_MSG_APPEND);
    in.append.entries = calloc(NET_RAFT_MAX_ENTRIES + 1, sizeof(struct raft_entry));
    assert_non_null(in.append.entries);
    for (size_t i = 0; i <= NET_RAFT_MAX_ENTRIES; i++) {
        in.append.entries[i].term = 1;
        in.append.entries[i].index = i + 1;
        in.append.entries[i].type = RAFT_ENTRY_NOOP;
    }

    in.append.n_entries = NET_RAFT_MAX_ENTRIES;
    bytes = encode(&in, &len);
    decode_ok(bytes, len, &out);
    assert_int_equal(out.append.n_entries, NET_RAFT_MAX_ENTRIES);
    assert_int_equal(out.append.entries[NET_RAFT_MAX_ENTRIES - 1].index,
                     NET_RAFT_MAX_ENTRIES);
    net_raft_free(&out);
    free(bytes);

    in.append.n_entries = NET_RAFT_MAX_ENTRIES + 1;
    assert_int_equal(net_raft_encode(&in, &bytes, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "entries"));
    net_raft_free(&in);
}

static void test_entry_count_over_limit(void **state)
{
    wire w;

    append_begin(&w);
    msgpack_pack_array(&w.pk, NET_RAFT_MAX_ENTRIES + 1);
    for (size_t i = 0; i <= NET_RAFT_MAX_ENTRIES; i++) {
        msgpack_pack_array(&w.pk, 4);
        put_uints(&w, 3, UINT64_C(1), (uint64_t)i + 1, (uint64_t)RAFT_ENTRY_NOOP);
        msgpack_pack_bin(&w.pk, 0);
    }
    expect_reject(&w, "over the limit");
}

/* ---- rejected input ---- */

static void test_decode_every_prefix(void **state)
{
    for (size_t i = 0; i < N_SAMPLES; i++) {
        struct raft_message m;
        unsigned char *bytes;
        size_t len;

        samples[i](&m, false);
        bytes = encode(&m, &len);
        net_raft_free(&m);
        for (size_t cut = 0; cut < len; cut++) {
            assert_int_equal(net_raft_decode(bytes, cut, &m, NULL), NET_EPROTO);
            assert_zeroed(&m);
        }
        free(bytes);
    }
}

static void test_decode_trailing_bytes(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    struct raft_message m;
    unsigned char *bytes;
    unsigned char *longer;
    size_t len;

    sample_vote(&m, false);
    bytes = encode(&m, &len);
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, bytes, len);
    longer[len] = 0xc0;
    assert_int_equal(net_raft_decode(longer, len + 1, &m, err), NET_EPROTO);
    assert_zeroed(&m);
    assert_non_null(strstr(err, "extra bytes"));
    free(longer);
    free(bytes);
}

static void test_decode_over_max_bin(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    struct raft_message m;
    unsigned char *big = calloc(NET_MAX_BIN + 1, 1);

    assert_non_null(big);
    assert_int_equal(net_raft_decode(big, NET_MAX_BIN + 1, &m, err), NET_EPROTO);
    assert_zeroed(&m);
    assert_non_null(strstr(err, "over the limit"));
    free(big);
}

static void test_decode_bad_header(void **state)
{
    static const uint64_t bad_types[] = {0, RAFT_MSG_TIMEOUT_NOW + 1, 255,
                                         UINT64_C(1) << 40};
    wire w;

    msgpack_sbuffer_init(&w.sbuf);
    msgpack_packer_init(&w.pk, &w.sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&w.pk, 0);
    expect_reject(&w, "not an array");

    msgpack_sbuffer_init(&w.sbuf);
    msgpack_packer_init(&w.pk, &w.sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&w.pk, 5);
    put_uints(&w, 5, UINT64_C(1), (uint64_t)RAFT_MSG_TIMEOUT_NOW, UINT64_C(1),
              UINT64_C(2), UINT64_C(3));
    expect_reject(&w, "has 5 elements instead of 6");

    wire_begin(&w, 2, RAFT_MSG_TIMEOUT_NOW);
    msgpack_pack_array(&w.pk, 0);
    expect_reject(&w, "format 2");

    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        wire_begin(&w, 1, bad_types[i]);
        msgpack_pack_array(&w.pk, 0);
        expect_reject(&w, "not between 1 and 7");
    }

    msgpack_sbuffer_init(&w.sbuf);
    msgpack_packer_init(&w.pk, &w.sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&w.pk, 6);
    put_uints(&w, 3, UINT64_C(1), (uint64_t)RAFT_MSG_TIMEOUT_NOW, UINT64_C(1));
    msgpack_pack_int64(&w.pk, -2);
    expect_reject(&w, "\"to\" is not an unsigned integer");

    wire_begin(&w, 1, RAFT_MSG_TIMEOUT_NOW);
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_nil(&w.pk);
    expect_reject(&w, "timeout-now body has 1 elements");
}

static void test_decode_strict_bools(void **state)
{
    wire w;

    wire_begin(&w, 1, RAFT_MSG_VOTE);
    msgpack_pack_array(&w.pk, 4);
    put_uints(&w, 3, UINT64_C(1), UINT64_C(1), UINT64_C(1));
    msgpack_pack_true(&w.pk);
    expect_reject(&w, "\"pre_vote\" is not a boolean");

    wire_begin(&w, 1, RAFT_MSG_VOTE);
    msgpack_pack_array(&w.pk, 4);
    put_uints(&w, 2, UINT64_C(1), UINT64_C(1));
    msgpack_pack_false(&w.pk);
    msgpack_pack_nil(&w.pk);
    expect_reject(&w, "\"transfer\" is not a boolean");

    wire_begin(&w, 1, RAFT_MSG_APPEND_RESP);
    msgpack_pack_array(&w.pk, 5);
    put_uints(&w, 5, UINT64_C(0), UINT64_C(1), UINT64_C(1), UINT64_C(1), UINT64_C(1));
    expect_reject(&w, "\"reject\" is not a boolean");

    wire_begin(&w, 1, RAFT_MSG_VOTE_RESP);
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_str_with_body(&w.pk, "true", 4);
    msgpack_pack_true(&w.pk);
    expect_reject(&w, "\"granted\" is not a boolean");

    wire_begin(&w, 1, RAFT_MSG_SNAPSHOT_RESP);
    msgpack_pack_array(&w.pk, 4);
    put_uints(&w, 3, UINT64_C(1), UINT64_C(1), UINT64_C(1));
    msgpack_pack_uint64(&w.pk, 1);
    expect_reject(&w, "\"done\" is not a boolean");
}

static void test_decode_bad_entries(void **state)
{
    static const uint64_t bad_types[] = {0, RAFT_ENTRY_CONFIG + 1, 255, 256};
    wire w;

    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        append_begin(&w);
        msgpack_pack_array(&w.pk, 1);
        msgpack_pack_array(&w.pk, 4);
        put_uints(&w, 3, UINT64_C(1), UINT64_C(2), bad_types[i]);
        msgpack_pack_bin(&w.pk, 0);
        expect_reject(&w, "not a known type (entry 0 of 1)");
    }

    append_begin(&w);
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_array(&w.pk, 4);
    put_uints(&w, 3, UINT64_C(1), UINT64_C(2), (uint64_t)RAFT_ENTRY_NORMAL);
    msgpack_pack_bin_with_body(&w.pk, "ab", 2);
    msgpack_pack_array(&w.pk, 4);
    put_uints(&w, 3, UINT64_C(1), UINT64_C(3), (uint64_t)RAFT_ENTRY_NORMAL);
    msgpack_pack_str_with_body(&w.pk, "ab", 2);
    expect_reject(&w, "\"data\" is not a msgpack bin value (entry 1 of 2)");

    append_begin(&w);
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_array(&w.pk, 3);
    put_uints(&w, 3, UINT64_C(1), UINT64_C(2), (uint64_t)RAFT_ENTRY_NOOP);
    msgpack_pack_bin(&w.pk, 0); /* so that the entry count passes its check */
    expect_reject(&w, "entry has 3 elements instead of 4");

    append_begin(&w);
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_array(&w.pk, 4);
    msgpack_pack_int64(&w.pk, -1);
    put_uints(&w, 2, UINT64_C(2), (uint64_t)RAFT_ENTRY_NOOP);
    msgpack_pack_bin(&w.pk, 0);
    expect_reject(&w, "\"term\" is not an unsigned integer");

    append_begin(&w);
    msgpack_pack_map(&w.pk, 0);
    expect_reject(&w, "\"entries\" is not an array");
}

static void test_decode_bad_config(void **state)
{
    static const uint64_t bad_roles[] = {0, RAFT_LEARNER + 1, 256};
    wire w;

    for (size_t i = 0; i < sizeof(bad_roles) / sizeof(bad_roles[0]); i++) {
        snapshot_begin(&w, 4, 0);
        msgpack_pack_array(&w.pk, 2);
        msgpack_pack_array(&w.pk, 1);
        msgpack_pack_array(&w.pk, 2);
        put_uints(&w, 2, UINT64_C(7), bad_roles[i]);
        msgpack_pack_array(&w.pk, 0);
        snapshot_end(&w, 4);
        expect_reject(&w, "not a known role");
    }

    snapshot_begin(&w, 4, 0);
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_array(&w.pk, 3);
    put_uints(&w, 3, UINT64_C(7), (uint64_t)RAFT_VOTER, UINT64_C(0));
    msgpack_pack_array(&w.pk, 0);
    snapshot_end(&w, 4);
    expect_reject(&w, "server has 3 elements");

    snapshot_begin(&w, 4, 0);
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_array(&w.pk, 0);
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_uint64(&w.pk, 5);
    msgpack_pack_int64(&w.pk, -5);
    snapshot_end(&w, 4);
    expect_reject(&w, "removed id is not an unsigned integer");

    snapshot_begin(&w, 4, 0);
    msgpack_pack_array(&w.pk, 3);
    msgpack_pack_array(&w.pk, 0);
    msgpack_pack_array(&w.pk, 0);
    msgpack_pack_array(&w.pk, 0);
    snapshot_end(&w, 4);
    expect_reject(&w, "\"config\" has 3 elements");
}

static void put_empty_config(wire *w)
{
    msgpack_pack_array(&w->pk, 2);
    msgpack_pack_array(&w->pk, 1);
    msgpack_pack_array(&w->pk, 2);
    put_uints(w, 2, UINT64_C(1), (uint64_t)RAFT_VOTER);
    msgpack_pack_array(&w->pk, 0);
}

static void test_decode_chunk_bounds(void **state)
{
    static const struct {
        uint64_t size;
        uint64_t offset;
        size_t len;
        bool ok;
    } cases[] = {
        {10, 0, 10, true},
        {10, 6, 4, true},
        {10, 10, 0, true},
        {0, 0, 0, true},
        {10, 7, 4, false},
        {10, 11, 0, false},
        {UINT64_MAX, UINT64_MAX, 1, false},
        {3, 0, 4, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wire w;

        snapshot_begin(&w, cases[i].size, cases[i].offset);
        put_empty_config(&w);
        snapshot_end(&w, cases[i].len);
        if (cases[i].ok) {
            expect_accept(&w);
        } else {
            expect_reject(&w, "reaches past the snapshot size");
        }
    }
}

/* Each case claims far more items than its input contains. The decoder must
 * reject it before allocating room for them. */
static void test_decode_oversized_counts(void **state)
{
    static const uint32_t counts[] = {UINT32_MAX, NET_RAFT_MAX_ENTRIES + 1,
                                      NET_RAFT_MAX_IDS + 1, 50000, 1000};
    const size_t small = 4096;

    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        /* where: 0 the entries, 1 the servers, 2 the removed ids */
        for (int where = 0; where < 3; where++) {
            uint32_t limit;
            wire w;

            if (where == 0) {
                append_begin(&w);
                msgpack_pack_array(&w.pk, counts[i]);
            } else {
                snapshot_begin(&w, 4, 0);
                msgpack_pack_array(&w.pk, 2);
                if (where == 2) {
                    msgpack_pack_array(&w.pk, 0);
                }
                msgpack_pack_array(&w.pk, counts[i]);
            }
            put_uints(&w, 4, UINT64_C(1), UINT64_C(2), UINT64_C(3), UINT64_C(4));

            limit = where == 0 ? NET_RAFT_MAX_ENTRIES : NET_RAFT_MAX_IDS;
            track_allocations(-1);
            expect_reject(&w, counts[i] > limit ? "over the limit" : "bytes follow");
            stop_tracking();
            if (alloc.largest > small) {
                fail_msg("count %u at place %d: allocated %zu bytes", counts[i], where,
                         alloc.largest);
            }
        }
    }
}

static void test_decode_unknown_shapes(void **state)
{
    static const struct {
        const char *name;
        unsigned char bytes[16];
        size_t len;
    } cases[] = {
        {"empty", {0}, 0},
        {"reserved byte", {0xc1}, 1},
        {"nil", {0xc0}, 1},
        {"array32 of 2^32-1", {0xdd, 0xff, 0xff, 0xff, 0xff}, 5},
        {"float format", {0x96, 0xca, 0, 0, 0, 0}, 6},
        {"bin32 of 4 GiB as type", {0x96, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff}, 7},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct raft_message m;
        int rv = net_raft_decode(cases[i].bytes, cases[i].len, &m, NULL);

        if (rv != NET_EPROTO) {
            fail_msg("case \"%s\": rv %d", cases[i].name, rv);
        }
        assert_zeroed(&m);
    }
}

/* ---- random input ---- */

static uint32_t next_random(uint32_t *state)
{
    /* xorshift32: reproducible from the printed seed */
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static uint32_t test_seed(const char *test_name)
{
    const char *env = getenv("NET_TEST_SEED");
    uint32_t seed = env != NULL ? (uint32_t)strtoul(env, NULL, 10) : (uint32_t)time(NULL);

    print_message("%s seed %u (rerun with NET_TEST_SEED=%u)\n", test_name, seed, seed);
    return seed != 0 ? seed : 1;
}

/* A decoded message must encode again and decode to the same message. */
static void decode_must_not_crash(const unsigned char *data, size_t len)
{
    struct raft_message m;
    struct raft_message again;
    unsigned char *bytes;
    size_t bytes_len;
    int rv = net_raft_decode(data, len, &m, NULL);

    if (rv != 0) {
        assert_int_equal(rv, NET_EPROTO);
        assert_zeroed(&m);
        return;
    }
    bytes = encode(&m, &bytes_len);
    assert_true(bytes_len <= len);
    decode_ok(bytes, bytes_len, &again);
    assert_same_raft(&m, &again);
    net_raft_free(&m);
    net_raft_free(&again);
    free(bytes);
}

static void test_decode_random_bytes(void **state)
{
    uint32_t rng = test_seed("random Raft decode");
    unsigned char buf[512];

    for (int round = 0; round < 20000; round++) {
        size_t len = next_random(&rng) % sizeof(buf);

        for (size_t i = 0; i < len; i++) {
            buf[i] = (unsigned char)next_random(&rng);
        }
        /* A valid header makes the body reachable for some rounds. */
        if (len >= 2 && round % 2 == 0) {
            buf[0] = 0x96;
            buf[1] = 0x01;
        }
        decode_must_not_crash(buf, len);
    }
}

static void test_decode_mutations(void **state)
{
    uint32_t rng = test_seed("mutated Raft decode");

    for (int round = 0; round < 20000; round++) {
        size_t sample_index = next_random(&rng) % N_SAMPLES;
        int flips = 1 + (int)(next_random(&rng) % 4);
        struct raft_message m;
        unsigned char *bytes;
        size_t len;

        samples[sample_index](&m, false);
        bytes = encode(&m, &len);
        net_raft_free(&m);
        for (int k = 0; k < flips; k++) {
            bytes[next_random(&rng) % len] = (unsigned char)next_random(&rng);
        }
        decode_must_not_crash(bytes, len);
        free(bytes);
    }
}

/* ---- allocation failures and encoder checks ---- */

/* Fails each allocation of the decoder in turn: every failure must give
 * NET_ENOMEM with a zeroed message, and LeakSanitizer checks that nothing
 * allocated before it leaks. */
static void test_decode_out_of_memory(void **state)
{
    static void (*const picks[])(struct raft_message * m, bool big) = {sample_append,
                                                                       sample_snapshot};

    for (size_t p = 0; p < sizeof(picks) / sizeof(picks[0]); p++) {
        struct raft_message m;
        unsigned char *bytes;
        size_t len;
        long fail_at;
        int rv;

        picks[p](&m, false);
        bytes = encode(&m, &len);
        net_raft_free(&m);
        for (fail_at = 0;; fail_at++) {
            track_allocations(fail_at);
            rv = net_raft_decode(bytes, len, &m, NULL);
            stop_tracking();
            if (rv == 0) {
                break;
            }
            assert_int_equal(rv, NET_ENOMEM);
            assert_zeroed(&m);
        }
        assert_true(fail_at > 1);
        net_raft_free(&m);
        free(bytes);
    }
}

static void expect_encode_error(const struct raft_message *m, int code,
                                const char *needle)
{
    unsigned char *bytes = (unsigned char *)"unchanged";
    char err[NET_ERRMSG_SIZE] = "";
    size_t len = 1;

    assert_int_equal(net_raft_encode(m, &bytes, &len, err), code);
    assert_null(bytes);
    assert_int_equal(len, 0);
    if (strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
}

static void test_encode_rejects_invalid(void **state)
{
    struct raft_message m;
    struct raft_entry entry = {1, 1, RAFT_ENTRY_NORMAL, NULL, 5};

    header(&m, 0);
    expect_encode_error(&m, NET_EINVALID, "not between 1 and 7");
    m.type = RAFT_MSG_TIMEOUT_NOW + 1;
    expect_encode_error(&m, NET_EINVALID, "not between 1 and 7");

    header(&m, RAFT_MSG_APPEND);
    m.append.entries = &entry;
    m.append.n_entries = 1;
    expect_encode_error(&m, NET_EINVALID, "data is NULL");
    entry.len = 0;
    entry.type = 0;
    expect_encode_error(&m, NET_EINVALID, "not a known entry type");
    m.append.entries = NULL;
    expect_encode_error(&m, NET_EINVALID, "entries is NULL");

    sample_snapshot(&m, false);
    m.snapshot.config.servers[1].role = 3;
    expect_encode_error(&m, NET_EINVALID, "not a known role");
    m.snapshot.config.servers[1].role = RAFT_VOTER;
    m.snapshot.offset = m.snapshot.size - m.snapshot.len + 1;
    expect_encode_error(&m, NET_EINVALID, "reaches past");
    m.snapshot.offset = 0;
    m.snapshot.config.n_removed = NET_RAFT_MAX_IDS + 1;
    expect_encode_error(&m, NET_EINVALID, "over the limit");
    m.snapshot.config.n_removed = 3;
    net_raft_free(&m);
}

static void test_encode_size_limit(void **state)
{
    struct raft_entry entries[2] = {{1, 1, RAFT_ENTRY_NORMAL, NULL, 0},
                                    {1, 2, RAFT_ENTRY_NORMAL, NULL, 0}};
    uint8_t *data = pattern(NET_MAX_BIN, 3);
    struct raft_message m;
    struct raft_message out;
    unsigned char *bytes;
    size_t len;

    header(&m, RAFT_MSG_APPEND);
    m.append.entries = entries;
    m.append.n_entries = 1;

    /* The data alone fits, but not with the headers around it. */
    entries[0].data = data;
    entries[0].len = NET_MAX_BIN;
    expect_encode_error(&m, NET_ETOOBIG, "over the limit");

    entries[1].data = data;
    entries[1].len = 1;
    m.append.n_entries = 2;
    expect_encode_error(&m, NET_ETOOBIG, "fewer entries");

    entries[0].len = NET_MAX_BIN - 64;
    m.append.n_entries = 1;
    bytes = encode(&m, &len);
    assert_true(len <= NET_MAX_BIN);
    decode_ok(bytes, len, &out);
    assert_same_raft(&m, &out);
    net_raft_free(&out);
    free(bytes);

    header(&m, RAFT_MSG_SNAPSHOT);
    m.snapshot.data = data;
    m.snapshot.len = NET_MAX_BIN + 1;
    m.snapshot.size = UINT64_MAX;
    expect_encode_error(&m, NET_ETOOBIG, "over the limit");
    free(data);
}

static void test_free_zeroed_message(void **state)
{
    struct raft_message m;

    net_raft_free(NULL);
    for (uint8_t type = 0; type <= RAFT_MSG_TIMEOUT_NOW; type++) {
        memset(&m, 0, sizeof(m));
        m.type = type;
        net_raft_free(&m);
        assert_zeroed(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_decoded_config),
        cmocka_unit_test(test_entry_count_limit),
        cmocka_unit_test(test_entry_count_over_limit),
        cmocka_unit_test(test_decode_every_prefix),
        cmocka_unit_test(test_decode_trailing_bytes),
        cmocka_unit_test(test_decode_over_max_bin),
        cmocka_unit_test(test_decode_bad_header),
        cmocka_unit_test(test_decode_strict_bools),
        cmocka_unit_test(test_decode_bad_entries),
        cmocka_unit_test(test_decode_bad_config),
        cmocka_unit_test(test_decode_chunk_bounds),
        cmocka_unit_test(test_decode_oversized_counts),
        cmocka_unit_test(test_decode_unknown_shapes),
        cmocka_unit_test(test_decode_random_bytes),
        cmocka_unit_test(test_decode_mutations),
        cmocka_unit_test(test_decode_out_of_memory),
        cmocka_unit_test(test_encode_rejects_invalid),
        cmocka_unit_test(test_encode_size_limit),
        cmocka_unit_test(test_free_zeroed_message),
    };

    return cmocka_run_group_tests_name("net_raft_codec", tests, NULL, NULL);
}
