/* Message codec: round trips, and a decoder that rejects bad input. */
#include <net/net.h>

#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static char *dup_text(const char *s)
{
    char *out = malloc(strlen(s) + 1);

    assert_non_null(out);
    strcpy(out, s);
    return out;
}

static char *filled(size_t len, char fill)
{
    char *out = malloc(len + 1);

    assert_non_null(out);
    memset(out, fill, len);
    out[len] = '\0';
    return out;
}

static void set_list(net_msg *m, uint32_t n, size_t item_len)
{
    m->list = calloc(n > 0 ? n : 1, sizeof(char *));
    assert_non_null(m->list);
    for (uint32_t i = 0; i < n; i++) {
        m->list[i] = filled(item_len, (char)('a' + i % 26));
    }
    m->list_len = n;
}

/* Fills m with a message of the given type carrying its required fields
 * and, for JOIN_REQ, the optional addr. A Raft bin is not a valid Raft
 * message, because net_msg does not look inside it. */
static void sample(uint32_t type, net_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->id = UINT64_C(0x0123456789abcdef) + type;
    switch (type) {
    case NET_MSG_ERROR:
    case NET_MSG_CONTROL_RESP:
        m->code = -42;
        m->text = dup_text("something failed");
        break;
    case NET_MSG_BUNDLE_RESP:
        m->bundle_pem = dup_text("-----BEGIN CERTIFICATE-----\nAAAA\n");
        break;
    case NET_MSG_JOIN_REQ:
        m->token = dup_text("SWMTKN-1-abc-def");
        m->csr_pem = dup_text("-----BEGIN CERTIFICATE REQUEST-----\n");
        m->hostname = dup_text("host-1");
        m->addr = dup_text("10.0.0.1:4242");
        break;
    case NET_MSG_JOIN_RESP:
        m->node_id = dup_text("node0000000000000000000001");
        m->role = dup_text("swarm-worker");
        m->cluster_id = dup_text("cluster00000000000000000001");
        m->cert_pem = dup_text("cert");
        m->bundle_pem = dup_text("bundle");
        m->index = UINT64_C(0x1234567890abcdef);
        break;
    case NET_MSG_HEARTBEAT_REQ:
        m->hostname = dup_text("host-2");
        break;
    case NET_MSG_HEARTBEAT_RESP:
        m->period_ms = 5000;
        set_list(m, 3, 12);
        break;
    case NET_MSG_RENEW_REQ:
        m->csr_pem = dup_text("csr");
        break;
    case NET_MSG_RENEW_RESP:
        m->cert_pem = dup_text("cert");
        m->bundle_pem = dup_text("bundle");
        break;
    case NET_MSG_CONTROL_REQ:
        set_list(m, 2, 5);
        break;
    case NET_MSG_RAFT:
        m->bin_len = 5;
        m->bin = malloc(m->bin_len);
        assert_non_null(m->bin);
        memcpy(m->bin, "\x00\x01raft", m->bin_len);
        break;
    case NET_MSG_MEMBER_REQ:
        m->raft_id = UINT64_C(0xfedcba9876543210);
        m->addr = dup_text("10.0.0.2:4242");
        break;
    default:
        break;
    }
}

static void assert_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

static void assert_same_msg(const net_msg *a, const net_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->code, b->code);
    assert_int_equal(a->period_ms, b->period_ms);
    assert_same_str(a->text, b->text);
    assert_same_str(a->token, b->token);
    assert_same_str(a->csr_pem, b->csr_pem);
    assert_same_str(a->cert_pem, b->cert_pem);
    assert_same_str(a->bundle_pem, b->bundle_pem);
    assert_same_str(a->node_id, b->node_id);
    assert_same_str(a->role, b->role);
    assert_same_str(a->cluster_id, b->cluster_id);
    assert_same_str(a->hostname, b->hostname);
    assert_same_str(a->addr, b->addr);
    assert_int_equal(a->list_len, b->list_len);
    for (uint32_t i = 0; i < a->list_len; i++) {
        assert_string_equal(a->list[i], b->list[i]);
    }
    assert_int_equal(a->raft_id, b->raft_id);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->bin_len, b->bin_len);
    assert_int_equal(a->bin == NULL, b->bin == NULL);
    if (a->bin_len > 0) {
        assert_memory_equal(a->bin, b->bin, a->bin_len);
    }
    assert_same_str(a->origin_cn, b->origin_cn);
    assert_same_str(a->origin_ou, b->origin_ou);
    assert_same_str(a->origin_org, b->origin_org);
    assert_same_str(a->origin_addr, b->origin_addr);
}

static void assert_cleared(const net_msg *m)
{
    net_msg zero;

    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(m, &zero, sizeof(zero));
}

/* Encodes m, checks the length prefix and returns the frame. */
static unsigned char *encode(const net_msg *m, size_t *len)
{
    unsigned char *frame;
    char err[NET_ERRMSG_SIZE];
    uint32_t prefix;

    assert_int_equal(net_msg_encode(m, &frame, len, err), 0);
    assert_true(*len > 4);
    prefix = (uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 |
             (uint32_t)frame[2] << 8 | frame[3];
    assert_int_equal(prefix, *len - 4);
    return frame;
}

/* ---- hand-built maps ---- */

typedef struct wire {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} wire;

static void wire_begin(wire *w, size_t pairs)
{
    msgpack_sbuffer_init(&w->sbuf);
    msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&w->pk, pairs);
}

static void put_key(wire *w, const char *key)
{
    msgpack_pack_str_with_body(&w->pk, key, strlen(key));
}

static void put_uint(wire *w, const char *key, uint64_t value)
{
    put_key(w, key);
    msgpack_pack_uint64(&w->pk, value);
}

static void put_int(wire *w, const char *key, int64_t value)
{
    put_key(w, key);
    msgpack_pack_int64(&w->pk, value);
}

static void put_str(wire *w, const char *key, const char *value, size_t len)
{
    put_key(w, key);
    msgpack_pack_str_with_body(&w->pk, value, len);
}

static int wire_decode(wire *w, net_msg *m, char *err)
{
    int rv = net_msg_decode((const unsigned char *)w->sbuf.data, w->sbuf.size, m, err);

    msgpack_sbuffer_destroy(&w->sbuf);
    return rv;
}

/* A HEARTBEAT_REQ header: "t", "id" and "host", then extra pairs. */
static void heartbeat_begin(wire *w, size_t extra_pairs)
{
    wire_begin(w, 3 + extra_pairs);
    put_uint(w, "t", NET_MSG_HEARTBEAT_REQ);
    put_uint(w, "id", 7);
    put_str(w, "host", "h", 1);
}

static void expect_reject(wire *w, const char *needle)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_msg m;

    assert_int_equal(wire_decode(w, &m, err), NET_EPROTO);
    assert_cleared(&m);
    if (strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
}

static void expect_accept(wire *w, net_msg *m)
{
    char err[NET_ERRMSG_SIZE] = "";

    if (wire_decode(w, m, err) != 0) {
        fail_msg("decode failed: %s", err);
    }
}

/* ---- tests ---- */

static void test_round_trip_every_type(void **state)
{
    for (uint32_t type = 1; type <= NET_MSG_TYPE_MAX; type++) {
        net_msg in;
        net_msg out;
        size_t len;
        unsigned char *frame;

        sample(type, &in);
        frame = encode(&in, &len);
        assert_int_equal(net_msg_decode(frame + 4, len - 4, &out, NULL), 0);
        assert_same_msg(&in, &out);
        net_msg_clear(&in);
        net_msg_clear(&out);
        free(frame);
    }
}

static void test_round_trip_limits(void **state)
{
    net_msg in;
    net_msg out;
    size_t len;
    unsigned char *frame;

    memset(&in, 0, sizeof(in));
    in.type = NET_MSG_JOIN_RESP;
    in.id = UINT64_MAX;
    in.code = INT32_MIN;
    in.period_ms = UINT32_MAX;
    in.text = filled(NET_MAX_TEXT, 't');
    in.token = filled(NET_MAX_SHORT, 'k');
    in.node_id = filled(NET_MAX_SHORT, 'n');
    in.role = dup_text("");
    in.cluster_id = filled(NET_MAX_SHORT, 'c');
    in.cert_pem = filled(NET_MAX_PEM, 'p');
    in.bundle_pem = filled(NET_MAX_PEM, 'b');
    in.csr_pem = filled(NET_MAX_PEM, 'r');
    set_list(&in, NET_MAX_LIST, NET_MAX_SHORT);

    frame = encode(&in, &len);
    assert_int_equal(net_msg_decode(frame + 4, len - 4, &out, NULL), 0);
    assert_same_msg(&in, &out);
    net_msg_clear(&in);
    net_msg_clear(&out);
    free(frame);
}

static void test_decode_wrong_types(void **state)
{
    wire w;

    wire_begin(&w, 3);
    put_str(&w, "t", "6", 1);
    put_uint(&w, "id", 1);
    put_str(&w, "host", "h", 1);
    expect_reject(&w, "\"t\"");

    wire_begin(&w, 3);
    put_uint(&w, "t", 6);
    put_int(&w, "id", -1);
    put_str(&w, "host", "h", 1);
    expect_reject(&w, "\"id\"");

    wire_begin(&w, 3);
    put_uint(&w, "t", 6);
    put_str(&w, "id", "1", 1);
    put_str(&w, "host", "h", 1);
    expect_reject(&w, "\"id\"");

    heartbeat_begin(&w, 1);
    put_uint(&w, "code", UINT64_C(1) << 31);
    expect_reject(&w, "\"code\"");

    heartbeat_begin(&w, 1);
    put_int(&w, "code", INT64_C(-2147483649));
    expect_reject(&w, "\"code\"");

    heartbeat_begin(&w, 1);
    put_str(&w, "code", "0", 1);
    expect_reject(&w, "\"code\"");

    heartbeat_begin(&w, 1);
    put_uint(&w, "period", UINT64_C(1) << 32);
    expect_reject(&w, "\"period\"");

    heartbeat_begin(&w, 1);
    put_uint(&w, "text", 5);
    expect_reject(&w, "\"text\"");

    heartbeat_begin(&w, 1);
    put_key(&w, "csr");
    msgpack_pack_bin_with_body(&w.pk, "abc", 3);
    expect_reject(&w, "\"csr\"");

    heartbeat_begin(&w, 1);
    put_key(&w, "token");
    msgpack_pack_nil(&w.pk);
    expect_reject(&w, "\"token\"");

    heartbeat_begin(&w, 1);
    put_str(&w, "list", "a", 1);
    expect_reject(&w, "\"list\"");

    heartbeat_begin(&w, 1);
    put_key(&w, "list");
    msgpack_pack_array(&w.pk, 2);
    msgpack_pack_str_with_body(&w.pk, "a", 1);
    msgpack_pack_uint8(&w.pk, 1);
    expect_reject(&w, "list item 1");

    wire_begin(&w, 4);
    put_uint(&w, "t", 6);
    put_uint(&w, "id", 1);
    put_str(&w, "host", "h", 1);
    msgpack_pack_uint8(&w.pk, 1); /* a key that is not a string */
    msgpack_pack_uint8(&w.pk, 1);
    expect_reject(&w, "key");
}

static void test_decode_unknown_type(void **state)
{
    const uint64_t types[] = {0, NET_MSG_TYPE_MAX + 1, 255, UINT64_MAX};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        wire w;

        wire_begin(&w, 2);
        put_uint(&w, "t", types[i]);
        put_uint(&w, "id", 1);
        expect_reject(&w, "\"t\"");
    }
}

static void test_decode_overlong_fields(void **state)
{
    static const struct {
        const char *key;
        size_t limit;
    } fields[] = {
        {"text", NET_MAX_TEXT},  {"token", NET_MAX_SHORT},   {"csr", NET_MAX_PEM},
        {"cert", NET_MAX_PEM},   {"bundle", NET_MAX_PEM},    {"node", NET_MAX_SHORT},
        {"role", NET_MAX_SHORT}, {"cluster", NET_MAX_SHORT}, {"addr", NET_MAX_SHORT},
        {"origin_cn", NET_MAX_SHORT}, {"origin_ou", NET_MAX_SHORT},
        {"origin_org", NET_MAX_SHORT}, {"origin_addr", NET_MAX_SHORT},
    };
    char *big = filled(NET_MAX_TEXT + 1, 'x');

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        net_msg m;
        wire w;

        heartbeat_begin(&w, 1);
        put_str(&w, fields[i].key, big, fields[i].limit);
        expect_accept(&w, &m);
        net_msg_clear(&m);

        heartbeat_begin(&w, 1);
        put_str(&w, fields[i].key, big, fields[i].limit + 1);
        expect_reject(&w, "over its limit");
    }
    free(big);
}

static void test_decode_overlong_host(void **state)
{
    char host[NET_MAX_SHORT + 1];
    wire w;

    memset(host, 'h', sizeof(host));
    wire_begin(&w, 3);
    put_uint(&w, "t", NET_MSG_HEARTBEAT_REQ);
    put_uint(&w, "id", 1);
    put_str(&w, "host", host, sizeof(host));
    expect_reject(&w, "\"host\"");
}

static void put_list(wire *w, uint32_t items, size_t item_len)
{
    char item[NET_MAX_SHORT + 1];

    memset(item, 'i', sizeof(item));
    put_key(w, "list");
    msgpack_pack_array(&w->pk, items);
    for (uint32_t i = 0; i < items; i++) {
        msgpack_pack_str_with_body(&w->pk, item, item_len);
    }
}

static void test_decode_list_bounds(void **state)
{
    net_msg m;
    wire w;

    heartbeat_begin(&w, 1);
    put_list(&w, NET_MAX_LIST, NET_MAX_SHORT);
    expect_accept(&w, &m);
    assert_int_equal(m.list_len, NET_MAX_LIST);
    net_msg_clear(&m);

    heartbeat_begin(&w, 1);
    put_list(&w, NET_MAX_LIST + 1, 1);
    expect_reject(&w, "over its limit");

    heartbeat_begin(&w, 1);
    put_list(&w, 3, NET_MAX_SHORT + 1);
    expect_reject(&w, "list item 0");
}

/* Unpacks our own encoding (trusted input) and packs it again without one
 * key, to build a message that lacks a field. */
static void repack_without(const unsigned char *body, size_t len, const char *skip,
                           wire *w)
{
    msgpack_unpacked u;
    msgpack_object_map *map;
    size_t kept = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)body, len, NULL),
                     MSGPACK_UNPACK_SUCCESS);
    map = &u.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        msgpack_object_str *k = &map->ptr[i].key.via.str;

        kept += !(k->size == strlen(skip) && memcmp(k->ptr, skip, k->size) == 0);
    }
    assert_int_equal(kept, map->size - 1);
    wire_begin(w, kept);
    for (uint32_t i = 0; i < map->size; i++) {
        msgpack_object_str *k = &map->ptr[i].key.via.str;

        if (k->size == strlen(skip) && memcmp(k->ptr, skip, k->size) == 0) {
            continue;
        }
        msgpack_pack_object(&w->pk, map->ptr[i].key);
        msgpack_pack_object(&w->pk, map->ptr[i].val);
    }
    msgpack_unpacked_destroy(&u);
}

static void test_decode_missing_required(void **state)
{
    static const char *required[NET_MSG_TYPE_MAX + 1][8] = {
        [NET_MSG_ERROR] = {"t", "id", "code", "text"},
        [NET_MSG_BUNDLE_REQ] = {"t", "id"},
        [NET_MSG_BUNDLE_RESP] = {"t", "id", "bundle"},
        [NET_MSG_JOIN_REQ] = {"t", "id", "token", "csr", "host"},
        [NET_MSG_JOIN_RESP] = {"t", "id", "node", "role", "cluster", "cert", "bundle"},
        [NET_MSG_HEARTBEAT_REQ] = {"t", "id", "host"},
        [NET_MSG_HEARTBEAT_RESP] = {"t", "id", "period", "list"},
        [NET_MSG_RENEW_REQ] = {"t", "id", "csr"},
        [NET_MSG_RENEW_RESP] = {"t", "id", "cert", "bundle"},
        [NET_MSG_CONTROL_REQ] = {"t", "id", "list"},
        [NET_MSG_CONTROL_RESP] = {"t", "id", "code", "text"},
        [NET_MSG_RAFT] = {"t", "id", "bin"},
        [NET_MSG_MEMBER_REQ] = {"t", "id", "raft", "addr"},
        [NET_MSG_OK] = {"t", "id"},
    };

    for (uint32_t type = 1; type <= NET_MSG_TYPE_MAX; type++) {
        net_msg m;
        size_t len;
        unsigned char *frame;

        sample(type, &m);
        frame = encode(&m, &len);
        net_msg_clear(&m);
        for (int k = 0; required[type][k] != NULL; k++) {
            wire w;

            repack_without(frame + 4, len - 4, required[type][k], &w);
            expect_reject(&w, required[type][k]);
        }
        free(frame);
    }
}

static void test_decode_optional_addr(void **state)
{
    net_msg m;
    size_t len;
    unsigned char *frame;
    wire w;

    sample(NET_MSG_JOIN_REQ, &m);
    frame = encode(&m, &len);
    net_msg_clear(&m);
    repack_without(frame + 4, len - 4, "addr", &w);
    expect_accept(&w, &m);
    assert_null(m.addr);
    assert_non_null(m.token);
    net_msg_clear(&m);
    free(frame);
}

static void test_decode_every_prefix(void **state)
{
    for (uint32_t type = 1; type <= NET_MSG_TYPE_MAX; type++) {
        net_msg m;
        size_t len;
        unsigned char *frame;

        sample(type, &m);
        frame = encode(&m, &len);
        net_msg_clear(&m);
        for (size_t cut = 0; cut < len - 4; cut++) {
            assert_int_equal(net_msg_decode(frame + 4, cut, &m, NULL), NET_EPROTO);
            assert_cleared(&m);
        }
        free(frame);
    }
}

static void test_decode_duplicate_key(void **state)
{
    wire w;

    heartbeat_begin(&w, 1);
    put_str(&w, "host", "other", 5);
    expect_reject(&w, "twice");

    wire_begin(&w, 4);
    put_uint(&w, "t", NET_MSG_HEARTBEAT_REQ);
    put_uint(&w, "id", 1);
    put_uint(&w, "id", 2);
    put_str(&w, "host", "h", 1);
    expect_reject(&w, "twice");
}

static void test_decode_skips_unknown_keys(void **state)
{
    static const unsigned char ext[] = {1, 2, 3, 4};
    net_msg m;
    wire w;

    heartbeat_begin(&w, 7);
    put_uint(&w, "future", 99);
    put_key(&w, "nested");
    msgpack_pack_map(&w.pk, 2);
    put_str(&w, "host", "not-this-one", 12);
    put_key(&w, "deeper");
    msgpack_pack_array(&w.pk, 3);
    msgpack_pack_nil(&w.pk);
    msgpack_pack_true(&w.pk);
    msgpack_pack_double(&w.pk, 1.5);
    put_key(&w, "blob");
    msgpack_pack_bin_with_body(&w.pk, "xyz", 3);
    put_key(&w, "ext");
    msgpack_pack_ext_with_body(&w.pk, ext, sizeof(ext), 5);
    put_key(&w, "float");
    msgpack_pack_float(&w.pk, 2.5f);
    put_key(&w, "a key much longer than any known key");
    msgpack_pack_false(&w.pk);
    put_int(&w, "neg", -5);
    expect_accept(&w, &m);
    assert_int_equal(m.type, NET_MSG_HEARTBEAT_REQ);
    assert_string_equal(m.hostname, "h");
    net_msg_clear(&m);
}

static void test_decode_signed_formats(void **state)
{
    /* {"t": int8 6, "id": int64 9, "host": "h"}: non-negative values in
     * signed formats, which other encoders may produce. */
    static const unsigned char body[] = {0x83, 0xa1, 't', 0xd0, 0x06, 0xa2, 'i',  'd',
                                         0xd3, 0,    0,   0,    0,    0,    0,    0,
                                         9,    0xa4, 'h', 'o',  's',  't',  0xa1, 'h'};
    net_msg m;

    assert_int_equal(net_msg_decode(body, sizeof(body), &m, NULL), 0);
    assert_int_equal(m.type, NET_MSG_HEARTBEAT_REQ);
    assert_int_equal(m.id, 9);
    net_msg_clear(&m);
}

static void test_decode_bad_shapes(void **state)
{
    static const struct {
        const char *name;
        unsigned char bytes[16];
        size_t len;
        const char *needle;
    } cases[] = {
        {"empty", {0}, 0, "not a msgpack map"},
        {"array", {0x91, 0x01}, 2, "not a msgpack map"},
        {"string", {0xa1, 'x'}, 2, "not a msgpack map"},
        {"reserved byte", {0xc1}, 1, "not a msgpack map"},
        {"map32 claiming 2^32-1 pairs", {0xdf, 0xff, 0xff, 0xff, 0xff}, 5, "truncated"},
        {"unknown key with array32 header",
         {0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff},
         8,
         "truncated"},
        {"list with array32 header",
         {0x81, 0xa4, 'l', 'i', 's', 't', 0xdd, 0xff, 0xff, 0xff, 0xff},
         11,
         "over its limit"},
        {"str32 key claiming 4 GiB",
         {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff},
         6,
         "truncated"},
        {"nul in string", {0x81, 0xa4, 'h', 'o', 's', 't', 0xa2, 'a', 0}, 9, "NUL"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[NET_ERRMSG_SIZE] = "";
        net_msg m;
        int rv = net_msg_decode(cases[i].bytes, cases[i].len, &m, err);

        if (rv != NET_EPROTO || strstr(err, cases[i].needle) == NULL) {
            fail_msg("case \"%s\": rv %d, error \"%s\"", cases[i].name, rv, err);
        }
        assert_cleared(&m);
    }
}

static void test_decode_trailing_bytes(void **state)
{
    net_msg m;
    size_t len;
    unsigned char *frame;
    unsigned char *longer;

    sample(NET_MSG_BUNDLE_REQ, &m);
    frame = encode(&m, &len);
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, frame, len);
    longer[len] = 0xc0;
    assert_int_equal(net_msg_decode(longer + 4, len - 3, &m, NULL), NET_EPROTO);
    free(longer);
    free(frame);
}

static uint32_t next_random(uint32_t *state)
{
    /* xorshift32: reproducible from the printed seed */
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static void decode_must_not_crash(const unsigned char *data, size_t len)
{
    net_msg m;
    int rv = net_msg_decode(data, len, &m, NULL);

    if (rv == 0) {
        net_msg_clear(&m);
    } else {
        assert_int_equal(rv, NET_EPROTO);
        assert_cleared(&m);
    }
}

static void test_decode_random_bytes(void **state)
{
    const char *env = getenv("NET_TEST_SEED");
    uint32_t seed = env != NULL ? (uint32_t)strtoul(env, NULL, 10) : (uint32_t)time(NULL);
    uint32_t rng = seed != 0 ? seed : 1;
    unsigned char buf[512];

    print_message("random decode seed %u (rerun with NET_TEST_SEED=%u)\n", seed, seed);
    for (int round = 0; round < 20000; round++) {
        size_t len = next_random(&rng) % sizeof(buf);

        for (size_t i = 0; i < len; i++) {
            buf[i] = (unsigned char)next_random(&rng);
        }
        decode_must_not_crash(buf, len);
    }

    /* Mutations of valid messages reach deeper into the decoder. */
    for (int round = 0; round < 20000; round++) {
        uint32_t type = 1 + next_random(&rng) % NET_MSG_TYPE_MAX;
        int flips = 1 + (int)(next_random(&rng) % 4);
        net_msg m;
        size_t len;
        unsigned char *frame;

        sample(type, &m);
        frame = encode(&m, &len);
        net_msg_clear(&m);
        for (int k = 0; k < flips; k++) {
            frame[4 + next_random(&rng) % (len - 4)] = (unsigned char)next_random(&rng);
        }
        decode_must_not_crash(frame + 4, len - 4);
        free(frame);
    }
}

static void test_encode_rejects_invalid(void **state)
{
    unsigned char *frame = (unsigned char *)"unchanged";
    char err[NET_ERRMSG_SIZE];
    size_t len = 1;
    net_msg m;

    memset(&m, 0, sizeof(m));
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);
    assert_null(frame);
    assert_int_equal(len, 0);

    m.type = NET_MSG_TYPE_MAX + 1;
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);

    m.type = NET_MSG_JOIN_REQ;
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "token"));

    sample(NET_MSG_HEARTBEAT_REQ, &m);
    m.token = filled(NET_MAX_SHORT + 1, 'k');
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "token"));
    net_msg_clear(&m);

    sample(NET_MSG_CONTROL_REQ, &m);
    m.list_len = NET_MAX_LIST + 1;
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);
    m.list_len = 2;
    net_msg_clear(&m);
}

static void test_msg_error_fields(void **state)
{
    net_msg m;

    assert_int_equal(net_msg_error(&m, 77, NET_STATUS_DENIED, "not allowed"), 0);
    assert_int_equal(m.type, NET_MSG_ERROR);
    assert_int_equal(m.id, 77);
    assert_int_equal(m.code, NET_STATUS_DENIED);
    assert_string_equal(m.text, "not allowed");
    net_msg_clear(&m);
    assert_cleared(&m);

    assert_int_equal(net_msg_error(&m, 1, NET_STATUS_INTERNAL, NULL), 0);
    assert_string_equal(m.text, "");
    net_msg_clear(&m);
}

static void test_strerror_every_code(void **state)
{
    const char *unknown = net_strerror(12345);

    for (int code = NET_ETOOBIG; code <= 0; code++) {
        assert_string_not_equal(net_strerror(code), unknown);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_limits),
        cmocka_unit_test(test_decode_wrong_types),
        cmocka_unit_test(test_decode_unknown_type),
        cmocka_unit_test(test_decode_overlong_fields),
        cmocka_unit_test(test_decode_overlong_host),
        cmocka_unit_test(test_decode_list_bounds),
        cmocka_unit_test(test_decode_missing_required),
        cmocka_unit_test(test_decode_optional_addr),
        cmocka_unit_test(test_decode_every_prefix),
        cmocka_unit_test(test_decode_duplicate_key),
        cmocka_unit_test(test_decode_skips_unknown_keys),
        cmocka_unit_test(test_decode_signed_formats),
        cmocka_unit_test(test_decode_bad_shapes),
        cmocka_unit_test(test_decode_trailing_bytes),
        cmocka_unit_test(test_decode_random_bytes),
        cmocka_unit_test(test_encode_rejects_invalid),
        cmocka_unit_test(test_msg_error_fields),
        cmocka_unit_test(test_strerror_every_code),
    };

    return cmocka_run_group_tests_name("net_msg", tests, NULL, NULL);
}
