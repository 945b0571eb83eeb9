/* Messages between managers: NET_MSG_RAFT, NET_MSG_MEMBER_REQ, NET_MSG_OK,
 * raft_id and the origin fields, through the message codec and over a real
 * TLS connection on 127.0.0.1. */
#include "certs.h"
#include "harness.h"

#include <msgpack.h>
#include <raft/raft.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CALL_TIMEOUT_MS 10000

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

static unsigned char *pattern(size_t len, unsigned salt)
{
    unsigned char *data = malloc(len > 0 ? len : 1);

    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        data[i] = (unsigned char)(i * 13 + salt);
    }
    return data;
}

/* The identity of a worker whose request a manager forwards. */
static void set_origin(net_msg *m)
{
    m->origin_cn = dup_text("node0000000000000000000042");
    m->origin_ou = dup_text("swarm-worker");
    m->origin_org = dup_text("cluster00000000000000000001");
    m->origin_addr = dup_text("192.0.2.7:50123");
}

/* A RAFT message whose bin is an encoded append with two entries. */
static void raft_msg(net_msg *m, uint64_t id)
{
    struct raft_entry entries[2] = {
        {5, 11, RAFT_ENTRY_NORMAL, NULL, 300},
        {5, 12, RAFT_ENTRY_NOOP, NULL, 0},
    };
    struct raft_message r;
    char err[NET_ERRMSG_SIZE] = "";

    entries[0].data = pattern(entries[0].len, 1);
    memset(&r, 0, sizeof(r));
    r.type = RAFT_MSG_APPEND;
    r.from = 1;
    r.to = 2;
    r.term = 5;
    r.append.prev_index = 10;
    r.append.prev_term = 4;
    r.append.commit = 9;
    r.append.entries = entries;
    r.append.n_entries = 2;

    memset(m, 0, sizeof(*m));
    m->type = NET_MSG_RAFT;
    m->id = id;
    if (net_raft_encode(&r, &m->bin, &m->bin_len, err) != 0) {
        fail_msg("net_raft_encode failed: %s", err);
    }
    free(entries[0].data);
}

static void member_req(net_msg *m, uint64_t id)
{
    memset(m, 0, sizeof(*m));
    m->type = NET_MSG_MEMBER_REQ;
    m->id = id;
    m->raft_id = UINT64_MAX - 1;
    m->addr = dup_text("10.0.0.3:4242");
}

static void assert_same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

/* Compares the fields this file sets, because test_msg.c covers the
 * others. */
static void assert_same_msg(const net_msg *a, const net_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->raft_id, b->raft_id);
    assert_same_str(a->addr, b->addr);
    assert_int_equal(a->bin == NULL, b->bin == NULL);
    assert_int_equal(a->bin_len, b->bin_len);
    if (a->bin_len > 0) {
        assert_memory_equal(a->bin, b->bin, a->bin_len);
    }
    assert_same_str(a->origin_cn, b->origin_cn);
    assert_same_str(a->origin_ou, b->origin_ou);
    assert_same_str(a->origin_org, b->origin_org);
    assert_same_str(a->origin_addr, b->origin_addr);
}

/* Encodes and decodes m. The caller clears out. */
static void round_trip(const net_msg *m, net_msg *out)
{
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *frame;
    size_t len;

    if (net_msg_encode(m, &frame, &len, err) != 0) {
        fail_msg("net_msg_encode failed: %s", err);
    }
    if (net_msg_decode(frame + 4, len - 4, out, err) != 0) {
        fail_msg("net_msg_decode failed: %s", err);
    }
    free(frame);
}

/* ---- hand-built maps ---- */

typedef struct wire {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} wire;

static void put_key(wire *w, const char *key)
{
    msgpack_pack_str_with_body(&w->pk, key, strlen(key));
}

/* A RAFT map with "t" and "id", then extra pairs that the caller packs. */
static void raft_begin(wire *w, size_t extra_pairs)
{
    msgpack_sbuffer_init(&w->sbuf);
    msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&w->pk, 2 + extra_pairs);
    put_key(w, "t");
    msgpack_pack_uint32(&w->pk, NET_MSG_RAFT);
    put_key(w, "id");
    msgpack_pack_uint32(&w->pk, 3);
}

static void put_bin(wire *w, const void *data, size_t len)
{
    put_key(w, "bin");
    msgpack_pack_bin_with_body(&w->pk, data, len);
}

static int wire_decode(wire *w, net_msg *m, char *err)
{
    int rv = net_msg_decode((const unsigned char *)w->sbuf.data, w->sbuf.size, m, err);

    msgpack_sbuffer_destroy(&w->sbuf);
    return rv;
}

static void expect_reject(wire *w, const char *needle)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_msg m;

    assert_int_equal(wire_decode(w, &m, err), NET_EPROTO);
    assert_null(m.bin);
    if (strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
}

/* ---- the codec ---- */

static void test_raft_round_trip(void **state)
{
    struct raft_message r;
    net_msg in;
    net_msg out;

    raft_msg(&in, 21);
    set_origin(&in);
    round_trip(&in, &out);
    assert_same_msg(&in, &out);

    assert_int_equal(net_raft_decode(out.bin, out.bin_len, &r, NULL), 0);
    assert_int_equal(r.type, RAFT_MSG_APPEND);
    assert_int_equal(r.append.n_entries, 2);
    assert_int_equal(r.append.entries[0].len, 300);
    assert_int_equal(r.append.entries[0].data[299], (unsigned char)(299 * 13 + 1));
    net_raft_free(&r);
    net_msg_clear(&in);
    net_msg_clear(&out);
}

static void test_member_req_round_trip(void **state)
{
    net_msg in;
    net_msg out;

    member_req(&in, 22);
    set_origin(&in);
    round_trip(&in, &out);
    assert_same_msg(&in, &out);
    net_msg_clear(&in);
    net_msg_clear(&out);
}

static void test_ok_carries_nothing(void **state)
{
    net_msg in;
    net_msg out;

    memset(&in, 0, sizeof(in));
    in.type = NET_MSG_OK;
    in.id = 23;
    round_trip(&in, &out);
    assert_same_msg(&in, &out);
    assert_null(out.text);
    assert_null(out.bin);
    net_msg_clear(&out);
}

static void test_join_resp_raft_id(void **state)
{
    static const unsigned char raft_key[] = {0xa4, 'r', 'a', 'f', 't'};
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *frame;
    size_t len;
    net_msg in;
    net_msg out;

    memset(&in, 0, sizeof(in));
    in.type = NET_MSG_JOIN_RESP;
    in.id = 24;
    in.node_id = dup_text("node0000000000000000000003");
    in.role = dup_text("swarm-manager");
    in.cluster_id = dup_text("cluster00000000000000000001");
    in.cert_pem = dup_text("cert");
    in.bundle_pem = dup_text("bundle");

    /* A worker's JOIN_RESP has no "raft" key on the wire. */
    assert_int_equal(net_msg_encode(&in, &frame, &len, err), 0);
    for (size_t i = 0; i + sizeof(raft_key) <= len; i++) {
        assert_memory_not_equal(frame + i, raft_key, sizeof(raft_key));
    }
    free(frame);
    round_trip(&in, &out);
    assert_int_equal(out.raft_id, 0);
    net_msg_clear(&out);

    in.raft_id = 4;
    round_trip(&in, &out);
    assert_int_equal(out.raft_id, 4);
    net_msg_clear(&out);
    net_msg_clear(&in);
}

/* The origin fields are optional on every type. */
static void test_origin_on_every_type(void **state)
{
    for (uint32_t type = 1; type <= NET_MSG_TYPE_MAX; type++) {
        net_msg in;
        net_msg out;

        /* Every field is set, so every type's required fields are too. */
        memset(&in, 0, sizeof(in));
        in.type = type;
        in.id = type;
        in.text = dup_text("text");
        in.token = dup_text("SWMTKN-1-a-b");
        in.csr_pem = dup_text("csr");
        in.cert_pem = dup_text("cert");
        in.bundle_pem = dup_text("bundle");
        in.node_id = dup_text("node");
        in.role = dup_text("swarm-manager");
        in.cluster_id = dup_text("cluster");
        in.hostname = dup_text("host");
        in.addr = dup_text("10.0.0.9:4242");
        in.raft_id = 9;
        in.bin = pattern(3, 0);
        in.bin_len = 3;
        set_origin(&in);

        round_trip(&in, &out);
        assert_same_msg(&in, &out);
        net_msg_clear(&in);
        net_msg_clear(&out);
    }
}

static void test_bin_at_limit(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *frame;
    size_t len;
    net_msg in;
    net_msg out;

    memset(&in, 0, sizeof(in));
    in.type = NET_MSG_RAFT;
    in.bin = pattern(NET_MAX_BIN, 5);
    in.bin_len = NET_MAX_BIN;
    set_origin(&in);
    round_trip(&in, &out);
    assert_same_msg(&in, &out);
    net_msg_clear(&out);

    in.bin_len = NET_MAX_BIN + 1;
    assert_int_equal(net_msg_encode(&in, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "\"bin\""));
    in.bin_len = NET_MAX_BIN;
    net_msg_clear(&in);
}

static void test_bin_over_limit_rejected(void **state)
{
    unsigned char *big = calloc(NET_MAX_BIN + 1, 1);
    wire w;

    assert_non_null(big);
    raft_begin(&w, 1);
    put_bin(&w, big, NET_MAX_BIN + 1);
    expect_reject(&w, "over its limit");
    free(big);
}

static void test_bin_empty_or_missing(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *frame;
    size_t len;
    net_msg in;
    net_msg out;

    memset(&in, 0, sizeof(in));
    in.type = NET_MSG_RAFT;
    in.bin = malloc(1);
    assert_non_null(in.bin);
    round_trip(&in, &out);
    assert_non_null(out.bin);
    assert_int_equal(out.bin_len, 0);
    net_msg_clear(&out);
    net_msg_clear(&in);

    in.type = NET_MSG_RAFT;
    assert_int_equal(net_msg_encode(&in, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "\"bin\""));

    in.bin_len = 5;
    assert_int_equal(net_msg_encode(&in, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "bin is NULL"));
}

static void test_decode_new_fields_checked(void **state)
{
    char nul_text[] = {'a', '\0', 'b'};
    wire w;

    raft_begin(&w, 1);
    put_key(&w, "bin");
    msgpack_pack_str_with_body(&w.pk, "abc", 3);
    expect_reject(&w, "\"bin\" is not a msgpack bin value");

    raft_begin(&w, 2);
    put_bin(&w, "x", 1);
    put_bin(&w, "y", 1);
    expect_reject(&w, "twice");

    raft_begin(&w, 2);
    put_bin(&w, "x", 1);
    put_key(&w, "raft");
    msgpack_pack_int64(&w.pk, -1);
    expect_reject(&w, "\"raft\"");

    raft_begin(&w, 2);
    put_bin(&w, "x", 1);
    put_key(&w, "origin_cn");
    msgpack_pack_bin_with_body(&w.pk, "node", 4);
    expect_reject(&w, "\"origin_cn\"");

    raft_begin(&w, 2);
    put_bin(&w, "x", 1);
    put_key(&w, "origin_ou");
    msgpack_pack_str_with_body(&w.pk, nul_text, sizeof(nul_text));
    expect_reject(&w, "NUL");

    raft_begin(&w, 3);
    put_bin(&w, "x", 1);
    put_key(&w, "origin_addr");
    msgpack_pack_str_with_body(&w.pk, "a", 1);
    put_key(&w, "origin_addr");
    msgpack_pack_str_with_body(&w.pk, "b", 1);
    expect_reject(&w, "twice");
}

static void test_origin_over_limit(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    unsigned char *frame;
    size_t len;
    net_msg m;

    member_req(&m, 1);
    m.origin_org = filled(NET_MAX_SHORT + 1, 'o');
    assert_int_equal(net_msg_encode(&m, &frame, &len, err), NET_EINVALID);
    assert_non_null(strstr(err, "origin_org"));
    net_msg_clear(&m);
}

/* ---- over TLS ---- */

static struct {
    test_cert *root;
    test_cert *server;
    test_cert *client;
    net_tls *server_tls;
    net_tls *client_tls;
} pki;

static net_tls *make_tls(int is_server, const test_cert *id, const test_cert *root)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;

    if (net_tls_new(is_server, id->cert_pem, id->key_pem, root->cert_pem, &tls, err) !=
        0) {
        fprintf(stderr, "net_tls_new: %s\n", err);
    }
    return tls;
}

static int setup_pki(void **state)
{
    pki.root = test_cert_root("swarm-ca");
    if (pki.root == NULL) {
        return -1;
    }
    pki.server = test_cert_leaf(pki.root, "manager-1", "swarm-manager", "cluster-1",
                                "DNS:swarm-manager,DNS:manager-1,DNS:swarm-ca");
    pki.client = test_cert_leaf(pki.root, "manager-2", "swarm-manager", "cluster-1",
                                "DNS:swarm-manager,DNS:manager-2,DNS:swarm-ca");
    if (pki.server == NULL || pki.client == NULL) {
        return -1;
    }
    pki.server_tls = make_tls(1, pki.server, pki.root);
    pki.client_tls = make_tls(0, pki.client, pki.root);
    return pki.server_tls != NULL && pki.client_tls != NULL ? 0 : -1;
}

static int teardown_pki(void **state)
{
    net_tls_free(pki.server_tls);
    net_tls_free(pki.client_tls);
    test_cert_free(pki.root);
    test_cert_free(pki.server);
    test_cert_free(pki.client);
    return 0;
}

/* Sends req to an echo server over TLS with a manager certificate and
 * checks that the same message comes back. */
static void expect_echo(const net_msg *req)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_msg resp;
    fixture f;

    if (fixture_start(&f, "127.0.0.1:0", pki.server_tls, 0, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
    if (net_call(f.addr, pki.client_tls, req, CALL_TIMEOUT_MS, &resp, NULL, err) != 0) {
        fail_msg("net_call failed: %s", err);
    }
    assert_same_msg(req, &resp);
    net_msg_clear(&resp);
    assert_int_equal(fixture_count(&f, &f.msgs), 1);
    assert_int_equal(f.last_peer.has_cert, 1);
    assert_string_equal(f.last_peer.org_unit, "swarm-manager");
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_raft_over_tls(void **state)
{
    net_msg m;

    raft_msg(&m, 31);
    set_origin(&m);
    expect_echo(&m);
    net_msg_clear(&m);
}

static void test_member_req_over_tls(void **state)
{
    net_msg m;

    member_req(&m, 32);
    set_origin(&m);
    expect_echo(&m);
    net_msg_clear(&m);
}

/* The largest bin with every origin field at its limit still fits a frame. */
static void test_largest_raft_over_tls(void **state)
{
    net_msg m;

    memset(&m, 0, sizeof(m));
    m.type = NET_MSG_RAFT;
    m.id = UINT64_MAX;
    m.bin = pattern(NET_MAX_BIN, 9);
    m.bin_len = NET_MAX_BIN;
    m.origin_cn = filled(NET_MAX_SHORT, 'c');
    m.origin_ou = filled(NET_MAX_SHORT, 'u');
    m.origin_org = filled(NET_MAX_SHORT, 'o');
    m.origin_addr = filled(NET_MAX_SHORT, 'a');
    expect_echo(&m);
    net_msg_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_round_trip),
        cmocka_unit_test(test_member_req_round_trip),
        cmocka_unit_test(test_ok_carries_nothing),
        cmocka_unit_test(test_join_resp_raft_id),
        cmocka_unit_test(test_origin_on_every_type),
        cmocka_unit_test(test_bin_at_limit),
        cmocka_unit_test(test_bin_over_limit_rejected),
        cmocka_unit_test(test_bin_empty_or_missing),
        cmocka_unit_test(test_decode_new_fields_checked),
        cmocka_unit_test(test_origin_over_limit),
        cmocka_unit_test(test_raft_over_tls),
        cmocka_unit_test(test_member_req_over_tls),
        cmocka_unit_test(test_largest_raft_over_tls),
    };

    return cmocka_run_group_tests_name("net_raft_msg", tests, setup_pki, teardown_pki);
}
