/* TLS servers and clients on 127.0.0.1: mutual TLS, rejected peers, bad
 * frames, timeouts, and stopping a server with open connections. */
#include "certs.h"
#include "harness.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define CALL_TIMEOUT_MS 5000
#define WAIT_MS         5000

/* One PKI for the whole group: a root and a foreign root, each with leaves. */
static struct {
    test_cert *root;
    test_cert *foreign_root;
    test_cert *server;
    test_cert *server_no_san;
    test_cert *server_cn_only;
    test_cert *foreign_server;
    test_cert *client;
    test_cert *foreign_client;
    net_tls *server_tls;
    net_tls *server_no_san_tls;
    net_tls *server_cn_only_tls;
    net_tls *foreign_server_tls;
    net_tls *client_tls;         /* certificate and bundle */
    net_tls *anonymous_tls;      /* bundle only */
    net_tls *blind_tls;          /* neither: verifies nothing */
    net_tls *foreign_client_tls; /* certificate from the foreign root */
} pki;

static net_tls *make_tls(int is_server, const test_cert *id, const test_cert *root)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    int rv = net_tls_new(is_server, id != NULL ? id->cert_pem : NULL,
                         id != NULL ? id->key_pem : NULL,
                         root != NULL ? root->cert_pem : NULL, &tls, err);

    if (rv != 0) {
        fprintf(stderr, "net_tls_new: %s\n", err);
    }
    return tls;
}

static int setup_pki(void **state)
{
    pki.root = test_cert_root("swarm-ca");
    pki.foreign_root = test_cert_root("swarm-ca");
    if (pki.root == NULL || pki.foreign_root == NULL) {
        return -1;
    }
    pki.server = test_cert_leaf(pki.root, "manager-1", "swarm-manager", "cluster-1",
                                "DNS:swarm-manager,DNS:manager-1,DNS:swarm-ca");
    pki.server_no_san = test_cert_leaf(pki.root, "manager-2", "swarm-manager",
                                       "cluster-1", "DNS:swarm-worker,DNS:manager-2");
    /* The right name, but only as the common name, with no SAN at all. */
    pki.server_cn_only =
        test_cert_leaf(pki.root, "swarm-manager", "swarm-manager", "cluster-1", NULL);
    pki.foreign_server = test_cert_leaf(pki.foreign_root, "manager-3", "swarm-manager",
                                        "cluster-9", "DNS:swarm-manager");
    pki.client = test_cert_leaf(pki.root, "node-a", "swarm-worker", "cluster-1",
                                "DNS:swarm-worker,DNS:node-a");
    pki.foreign_client = test_cert_leaf(pki.foreign_root, "node-z", "swarm-worker",
                                        "cluster-9", "DNS:swarm-worker");
    if (!pki.server || !pki.server_no_san || !pki.server_cn_only || !pki.foreign_server ||
        !pki.client || !pki.foreign_client) {
        return -1;
    }
    pki.server_tls = make_tls(1, pki.server, pki.root);
    pki.server_no_san_tls = make_tls(1, pki.server_no_san, pki.root);
    pki.server_cn_only_tls = make_tls(1, pki.server_cn_only, pki.root);
    pki.foreign_server_tls = make_tls(1, pki.foreign_server, pki.foreign_root);
    pki.client_tls = make_tls(0, pki.client, pki.root);
    pki.anonymous_tls = make_tls(0, NULL, pki.root);
    pki.blind_tls = make_tls(0, NULL, NULL);
    pki.foreign_client_tls = make_tls(0, pki.foreign_client, pki.root);
    if (!pki.server_tls || !pki.server_no_san_tls || !pki.server_cn_only_tls ||
        !pki.foreign_server_tls || !pki.client_tls || !pki.anonymous_tls ||
        !pki.blind_tls || !pki.foreign_client_tls) {
        return -1;
    }
    return 0;
}

static int teardown_pki(void **state)
{
    net_tls_free(pki.server_tls);
    net_tls_free(pki.server_no_san_tls);
    net_tls_free(pki.server_cn_only_tls);
    net_tls_free(pki.foreign_server_tls);
    net_tls_free(pki.client_tls);
    net_tls_free(pki.anonymous_tls);
    net_tls_free(pki.blind_tls);
    net_tls_free(pki.foreign_client_tls);
    test_cert_free(pki.root);
    test_cert_free(pki.foreign_root);
    test_cert_free(pki.server);
    test_cert_free(pki.server_no_san);
    test_cert_free(pki.server_cn_only);
    test_cert_free(pki.foreign_server);
    test_cert_free(pki.client);
    test_cert_free(pki.foreign_client);
    return 0;
}

static void start(fixture *f, net_tls *tls, uint32_t handshake_ms)
{
    char err[NET_ERRMSG_SIZE] = "";

    if (fixture_start(f, "127.0.0.1:0", tls, handshake_ms, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
    assert_true(f->port > 0);
}

static void stop(fixture *f)
{
    assert_int_equal(fixture_stop(f), 0);
    assert_int_equal(f->done, 1);
}

static void heartbeat(net_msg *m, uint64_t id, char *host)
{
    memset(m, 0, sizeof(*m));
    m->type = NET_MSG_HEARTBEAT_REQ;
    m->id = id;
    m->hostname = host;
}

static int call(fixture *f, net_tls *tls, net_msg *resp, char **chain, char *err)
{
    char host[] = "worker-host";
    net_msg req;

    heartbeat(&req, 42, host);
    return net_call(f->addr, tls, &req, CALL_TIMEOUT_MS, resp, chain, err);
}

static void expect_call_ok(fixture *f, net_tls *tls, net_msg *resp)
{
    char err[NET_ERRMSG_SIZE] = "";

    if (call(f, tls, resp, NULL, err) != 0) {
        fail_msg("net_call failed: %s", err);
    }
    assert_int_equal(resp->type, NET_MSG_HEARTBEAT_RESP);
    assert_int_equal(resp->id, 42);
    assert_int_equal(resp->list_len, 5);
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", text, needle);
    }
}

/* ---- identities ---- */

static void test_mutual_tls_request(void **state)
{
    fixture f;
    net_msg resp;

    start(&f, pki.server_tls, 0);
    expect_call_ok(&f, pki.client_tls, &resp);
    assert_string_equal(resp.list[0], "cert");
    assert_string_equal(resp.list[1], "node-a");
    assert_string_equal(resp.list[2], "swarm-worker");
    assert_string_equal(resp.list[3], "cluster-1");
    assert_contains(resp.list[4], "127.0.0.1:");
    net_msg_clear(&resp);

    assert_int_equal(fixture_wait(&f, &f.closes, 1, WAIT_MS), 1);
    assert_int_equal(f.last_close_status, NET_ECLOSED);
    assert_int_equal(f.last_peer.has_cert, 1);
    assert_string_equal(f.last_peer.common_name, "node-a");
    assert_int_equal(fixture_count(&f, &f.rejects), 0);
    stop(&f);
}

static void test_client_without_cert(void **state)
{
    fixture f;
    net_msg resp;

    start(&f, pki.server_tls, 0);
    expect_call_ok(&f, pki.anonymous_tls, &resp);
    assert_string_equal(resp.list[0], "none");
    assert_string_equal(resp.list[1], "");
    net_msg_clear(&resp);
    assert_int_equal(fixture_wait(&f, &f.accepts, 1, WAIT_MS), 1);
    assert_int_equal(f.last_peer.has_cert, 0);
    stop(&f);
}

static void test_foreign_client_rejected(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    net_msg resp;

    start(&f, pki.server_tls, 0);
    assert_int_not_equal(call(&f, pki.foreign_client_tls, &resp, NULL, err), 0);
    assert_int_equal(resp.type, 0);
    assert_int_equal(fixture_wait(&f, &f.rejects, 1, WAIT_MS), 1);
    assert_contains(f.last_reject, "TLS handshake with 127.0.0.1:");
    assert_contains(f.last_reject, "certificate");
    assert_int_equal(fixture_count(&f, &f.accepts), 0);

    /* The server keeps serving. */
    expect_call_ok(&f, pki.client_tls, &resp);
    net_msg_clear(&resp);
    assert_int_equal(fixture_count(&f, &f.accepts), 1);
    stop(&f);
}

static void test_server_without_manager_san(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    net_msg resp;

    start(&f, pki.server_no_san_tls, 0);
    assert_int_equal(call(&f, pki.client_tls, &resp, NULL, err), NET_ETLS);
    assert_contains(err, "swarm-manager");
    assert_int_equal(fixture_count(&f, &f.accepts), 0);
    stop(&f);
}

static void test_server_name_only_in_cn(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    net_msg resp;

    start(&f, pki.server_cn_only_tls, 0);
    assert_int_equal(call(&f, pki.client_tls, &resp, NULL, err), NET_ETLS);
    assert_contains(err, "swarm-manager");
    stop(&f);
}

static void test_server_from_foreign_root(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    net_msg resp;

    start(&f, pki.foreign_server_tls, 0);
    assert_int_equal(call(&f, pki.client_tls, &resp, NULL, err), NET_ETLS);
    assert_contains(err, "certificate verify failed");
    stop(&f);
}

static void test_blind_client_gets_chain(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    char *chain = NULL;
    fixture f;
    net_msg resp;

    start(&f, pki.server_no_san_tls, 0);
    assert_int_equal(call(&f, pki.blind_tls, &resp, &chain, err), 0);
    assert_non_null(chain);
    assert_string_equal(chain, pki.server_no_san->cert_pem);
    net_msg_clear(&resp);
    free(chain);
    stop(&f);
}

/* A caller exposes the parsed certificate and chain the server presented,
 * for as long as it is open. */
static void test_caller_peer_x509(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_caller *cl = NULL;
    const void *leaf = NULL;
    const void *chain = NULL;
    X509 *expected;
    BIO *bio;
    fixture f;

    bio = BIO_new_mem_buf(pki.server_no_san->cert_pem, -1);
    expected = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(expected);

    start(&f, pki.server_no_san_tls, 0);
    assert_int_equal(net_caller_open(f.addr, pki.blind_tls, CALL_TIMEOUT_MS, &cl, NULL, err), 0);
    net_caller_peer_x509(cl, &leaf, &chain);
    assert_non_null(leaf);
    assert_int_equal(X509_cmp(leaf, expected), 0);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), expected), 0);
    net_caller_close(cl);
    X509_free(expected);
    stop(&f);
}

/* ---- bad bytes before and after the handshake ---- */

static void test_garbage_instead_of_hello(void **state)
{
    static const char request[] = "GET / HTTP/1.1\r\nHost: swarm\r\n\r\n";
    fixture f;
    net_msg resp;
    int fd;

    start(&f, pki.server_tls, 0);
    fd = raw_connect(f.port);
    assert_true(fd >= 0);
    assert_int_equal(raw_write(NULL, fd, request, sizeof(request) - 1), 0);
    assert_int_equal(fixture_wait(&f, &f.rejects, 1, WAIT_MS), 1);
    assert_contains(f.last_reject, "TLS handshake");
    assert_int_equal(raw_wait_closed(fd), 1);
    close(fd);

    expect_call_ok(&f, pki.client_tls, &resp);
    net_msg_clear(&resp);
    stop(&f);
}

static void test_stalled_handshake_closed(void **state)
{
    static const unsigned char partial_record[] = {0x16, 0x03, 0x01, 0x00, 0x80};
    uint64_t started;
    fixture f;
    int fd;

    start(&f, pki.server_tls, 300);
    fd = raw_connect(f.port);
    assert_true(fd >= 0);
    started = now_ms();
    assert_int_equal(raw_write(NULL, fd, partial_record, sizeof(partial_record)), 0);
    assert_int_equal(fixture_wait(&f, &f.rejects, 1, WAIT_MS), 1);
    assert_true(now_ms() - started >= 250);
    assert_contains(f.last_reject, "did not finish within 0.3 s");
    assert_int_equal(raw_wait_closed(fd), 1);
    assert_int_equal(fixture_count(&f, &f.accepts), 0);
    close(fd);
    stop(&f);
}

/* Opens a raw TLS connection without a certificate and sends bytes as
 * plaintext after the handshake. */
static void send_after_handshake(fixture *f, const void *bytes, size_t len, int expected,
                                 const char *needle)
{
    SSL_CTX *ctx;
    SSL *ssl;
    int closes = fixture_count(f, &f->closes);
    char buf[16];
    int fd;

    fd = raw_connect(f->port);
    assert_true(fd >= 0);
    ssl = raw_tls(fd, NULL, NULL, &ctx);
    assert_non_null(ssl);
    assert_int_equal(raw_write(ssl, -1, bytes, len), 0);
    assert_int_equal(fixture_wait(f, &f->closes, closes + 1, WAIT_MS), closes + 1);
    assert_int_equal(f->last_close_status, expected);
    assert_contains(f->last_close_reason, needle);
    assert_true(SSL_read(ssl, buf, sizeof(buf)) <= 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

static void test_bad_frames_close(void **state)
{
    static const unsigned char all_ones[] = {0xff, 0xff, 0xff, 0xff};
    static const unsigned char just_over[] = {0x00, 0x40, 0x00, 0x01};
    static const unsigned char zero[] = {0, 0, 0, 0};
    static const unsigned char bad_body[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
    fixture f;
    net_msg resp;

    assert_int_equal(NET_MAX_FRAME, 0x400000);
    start(&f, pki.server_tls, 0);
    send_after_handshake(&f, all_ones, sizeof(all_ones), NET_ETOOBIG, "over the limit");
    send_after_handshake(&f, just_over, sizeof(just_over), NET_ETOOBIG, "4194305");
    send_after_handshake(&f, zero, sizeof(zero), NET_EPROTO, "length 0");
    send_after_handshake(&f, bad_body, sizeof(bad_body), NET_EPROTO, "message from");
    assert_int_equal(fixture_count(&f, &f.rejects), 0);

    expect_call_ok(&f, pki.client_tls, &resp);
    net_msg_clear(&resp);
    stop(&f);
}

/* ---- reassembly ---- */

static void test_many_frames_one_write(void **state)
{
    enum { COUNT = 50 };
    char host[] = "h";
    unsigned char *all = NULL;
    size_t all_len = 0;
    SSL_CTX *ctx;
    SSL *ssl;
    fixture f;
    int fd;

    for (int i = 0; i < COUNT; i++) {
        unsigned char *frame;
        size_t len;
        net_msg m;

        heartbeat(&m, (uint64_t)i + 1, host);
        assert_int_equal(net_msg_encode(&m, &frame, &len, NULL), 0);
        all = realloc(all, all_len + len);
        assert_non_null(all);
        memcpy(all + all_len, frame, len);
        all_len += len;
        free(frame);
    }

    start(&f, pki.server_tls, 0);
    fd = raw_connect(f.port);
    ssl = raw_tls(fd, pki.client->cert_pem, pki.client->key_pem, &ctx);
    assert_non_null(ssl);
    assert_int_equal(raw_write(ssl, -1, all, all_len), 0);
    for (int i = 0; i < COUNT; i++) {
        net_msg resp;

        assert_int_equal(raw_read_msg(ssl, -1, &resp), 0);
        assert_int_equal(resp.id, (uint64_t)i + 1);
        net_msg_clear(&resp);
    }
    assert_int_equal(fixture_count(&f, &f.msgs), COUNT);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    free(all);
    stop(&f);
}

static void test_frame_split_across_writes(void **state)
{
    char host[200];
    unsigned char *frame;
    size_t len;
    SSL_CTX *ctx;
    SSL *ssl;
    net_msg m;
    fixture f;
    int fd;

    memset(host, 'x', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    heartbeat(&m, 9, host);
    assert_int_equal(net_msg_encode(&m, &frame, &len, NULL), 0);

    start(&f, pki.server_tls, 0);
    fd = raw_connect(f.port);
    ssl = raw_tls(fd, NULL, NULL, &ctx);
    assert_non_null(ssl);
    for (size_t i = 0; i < len; i++) {
        /* one TLS record, and one TCP segment, per byte */
        assert_int_equal(raw_write(ssl, -1, frame + i, 1), 0);
    }
    assert_int_equal(raw_read_msg(ssl, -1, &m), 0);
    assert_int_equal(m.id, 9);
    net_msg_clear(&m);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    free(frame);
    stop(&f);
}

static void test_frame_at_size_limit(void **state)
{
    /* {"t": 6, "id": 7, "host": "h", "pad": bin32} filled to NET_MAX_FRAME */
    static const unsigned char head[] = {0x84, 0xa1, 't', 6,   0xa2, 'i', 'd',
                                         7,    0xa4, 'h', 'o', 's',  't', 0xa1,
                                         'h',  0xa3, 'p', 'a', 'd',  0xc6};
    size_t pad = NET_MAX_FRAME - sizeof(head) - 4;
    size_t total = 4 + NET_MAX_FRAME;
    unsigned char *frame = calloc(1, total);
    SSL_CTX *ctx;
    SSL *ssl;
    net_msg m;
    fixture f;
    int fd;

    assert_non_null(frame);
    frame[0] = (unsigned char)(NET_MAX_FRAME >> 24);
    frame[1] = (unsigned char)(NET_MAX_FRAME >> 16);
    frame[2] = (unsigned char)(NET_MAX_FRAME >> 8);
    frame[3] = (unsigned char)NET_MAX_FRAME;
    memcpy(frame + 4, head, sizeof(head));
    frame[4 + sizeof(head)] = (unsigned char)(pad >> 24);
    frame[5 + sizeof(head)] = (unsigned char)(pad >> 16);
    frame[6 + sizeof(head)] = (unsigned char)(pad >> 8);
    frame[7 + sizeof(head)] = (unsigned char)pad;

    start(&f, pki.server_tls, 0);
    fd = raw_connect(f.port);
    ssl = raw_tls(fd, NULL, NULL, &ctx);
    assert_non_null(ssl);
    assert_int_equal(raw_write(ssl, -1, frame, total), 0);
    assert_int_equal(raw_read_msg(ssl, -1, &m), 0);
    assert_int_equal(m.id, 7);
    net_msg_clear(&m);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    free(frame);
    stop(&f);
}

/* ---- one loop: clients and server together ---- */

typedef struct counts {
    int connects;
    int connect_failures;
    int closes;
    int last_status;
    char *chain;
} counts;

typedef struct loop_state {
    counts server_side[4];
    counts client_side[4];
    int accepts;
    int rejects;
    int done;
} loop_state;

static loop_state ls;

static void *ls_accept(net_server *s, net_conn *c, void *data)
{
    counts *slot = &ls.server_side[ls.accepts < 4 ? ls.accepts : 3];

    ls.accepts++;
    slot->connects++;
    return slot;
}

static void ls_close(net_conn *c, int status, const char *reason, void *data)
{
    counts *slot = data;

    slot->closes++;
    slot->last_status = status;
}

static void ls_reject(net_server *s, const char *peer, const char *reason, void *data)
{
    ls.rejects++;
}

static void ls_connect(net_conn *c, int status, const char *errmsg, void *data)
{
    counts *slot = data;

    if (status != 0) {
        slot->connect_failures++;
        return;
    }
    slot->connects++;
    slot->chain = net_conn_peer_chain(c);
}

static void ls_done(void *data)
{
    ls.done++;
}

static void ls_msg(net_conn *c, net_msg *m, void *data)
{
    echo_answer(c, m);
}

static const net_server_cb ls_server_cb = {ls_accept, ls_msg, ls_close, ls_reject};
static const net_conn_cb ls_client_cb = {ls_connect, NULL, ls_close};

static net_server *ls_start(uv_loop_t *loop, net_tls *tls, char *addr, size_t size)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_server *s = NULL;

    memset(&ls, 0, sizeof(ls));
    assert_int_equal(uv_loop_init(loop), 0);
    if (net_server_start(loop, "127.0.0.1:0", tls, &ls_server_cb, NULL, &s, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
    snprintf(addr, size, "127.0.0.1:%d", net_server_port(s));
    return s;
}

static net_conn *ls_connect_client(uv_loop_t *loop, const char *addr, net_tls *tls, int i)
{
    char err[NET_ERRMSG_SIZE] = "";
    net_conn *c = NULL;

    if (net_connect(loop, addr, tls, CALL_TIMEOUT_MS, &ls_client_cb, &ls.client_side[i],
                    &c, err) != 0) {
        fail_msg("net_connect failed: %s", err);
    }
    return c;
}

/* Runs the loop until *counter reaches value or WAIT_MS pass. */
static void run_until(uv_loop_t *loop, const int *counter, int value)
{
    uint64_t deadline = now_ms() + WAIT_MS;

    while (*counter < value && now_ms() < deadline) {
        uv_run(loop, UV_RUN_ONCE);
    }
    assert_int_equal(*counter, value);
}

static void test_stop_closes_every_conn(void **state)
{
    enum { CLIENTS = 3 };
    uv_loop_t loop;
    char addr[64];
    net_server *s = ls_start(&loop, pki.server_tls, addr, sizeof(addr));

    for (int i = 0; i < CLIENTS; i++) {
        ls_connect_client(&loop, addr, pki.client_tls, i);
    }
    run_until(&loop, &ls.accepts, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        run_until(&loop, &ls.client_side[i].connects, 1);
    }

    net_server_stop(s, ls_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ls.done, 1);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(ls.server_side[i].closes, 1);
        assert_int_equal(ls.server_side[i].last_status, 0);
        assert_int_equal(ls.client_side[i].closes, 1);
        assert_int_not_equal(ls.client_side[i].last_status, 0);
        free(ls.client_side[i].chain);
    }
    assert_int_equal(ls.rejects, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_client_close_status(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    uv_loop_t loop;
    char addr[64];
    net_server *s = ls_start(&loop, pki.server_tls, addr, sizeof(addr));
    net_conn *c = ls_connect_client(&loop, addr, pki.anonymous_tls, 0);
    net_msg m;
    char host[] = "h";

    run_until(&loop, &ls.client_side[0].connects, 1);
    run_until(&loop, &ls.accepts, 1);
    net_conn_close(c);
    heartbeat(&m, 1, host);
    assert_int_equal(net_conn_send(c, &m, err), NET_ECLOSED);
    run_until(&loop, &ls.server_side[0].closes, 1);
    assert_int_equal(ls.server_side[0].last_status, NET_ECLOSED);
    assert_int_equal(ls.client_side[0].closes, 1);
    assert_int_equal(ls.client_side[0].last_status, 0);
    assert_int_equal(ls.client_side[0].connect_failures, 0);
    free(ls.client_side[0].chain);

    net_server_stop(s, ls_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ls.done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_set_tls_applies_to_new_conns(void **state)
{
    uv_loop_t loop;
    char addr[64];
    net_server *s = ls_start(&loop, pki.server_tls, addr, sizeof(addr));

    ls_connect_client(&loop, addr, pki.blind_tls, 0);
    run_until(&loop, &ls.client_side[0].connects, 1);
    net_server_set_tls(s, pki.server_no_san_tls);
    ls_connect_client(&loop, addr, pki.blind_tls, 1);
    run_until(&loop, &ls.client_side[1].connects, 1);

    assert_string_equal(ls.client_side[0].chain, pki.server->cert_pem);
    assert_string_equal(ls.client_side[1].chain, pki.server_no_san->cert_pem);
    free(ls.client_side[0].chain);
    free(ls.client_side[1].chain);
    net_server_stop(s, ls_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ls.client_side[0].closes, 1);
    assert_int_equal(ls.client_side[1].closes, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_connect_timeout_in_loop(void **state)
{
    uv_loop_t loop;
    char addr[64];
    net_server *s = ls_start(&loop, pki.server_tls, addr, sizeof(addr));
    char err[NET_ERRMSG_SIZE] = "";
    net_conn *c = NULL;
    uint64_t started = now_ms();

    /* The server is never given loop time before the deadline, so the
     * handshake cannot finish: the client must time out by itself. */
    net_server_set_handshake_timeout(s, 60000);
    assert_int_equal(net_connect(&loop, addr, pki.client_tls, 200, &ls_client_cb,
                                 &ls.client_side[0], &c, err),
                     0);
    uv_sleep(300);
    run_until(&loop, &ls.client_side[0].closes, 1);
    assert_int_equal(ls.client_side[0].connect_failures, 1);
    assert_int_equal(ls.client_side[0].last_status, NET_ETIMEOUT);
    assert_true(now_ms() - started >= 200);
    net_server_stop(s, ls_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ls.done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_host_name_resolved(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    net_msg resp;

    /* "localhost" comes from /etc/hosts. The server resolves it the same
     * way, so both ends agree on the address family. */
    if (fixture_start(&f, "localhost:0", pki.server_tls, 0, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
    snprintf(f.addr, sizeof(f.addr), "localhost:%d", f.port);
    expect_call_ok(&f, pki.client_tls, &resp);
    net_msg_clear(&resp);
    stop(&f);
}

static void test_close_while_resolving(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";
    uv_loop_t loop;
    net_conn *c = NULL;

    memset(&ls, 0, sizeof(ls));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(net_connect(&loop, "localhost:9", pki.client_tls, 5000,
                                 &ls_client_cb, &ls.client_side[0], &c, err),
                     0);
    net_conn_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ls.client_side[0].closes, 1);
    assert_int_equal(ls.client_side[0].last_status, 0);
    assert_int_equal(ls.client_side[0].connects, 0);
    assert_int_equal(ls.client_side[0].connect_failures, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- settings ---- */

static void test_tls_new_rejects_bad_input(void **state)
{
    char err[NET_ERRMSG_SIZE];
    net_tls *tls = NULL;

    err[0] = '\0';
    assert_int_equal(
        net_tls_new(0, "not a PEM", pki.client->key_pem, pki.root->cert_pem, &tls, err),
        NET_EINVALID);
    assert_null(tls);
    assert_true(strlen(err) > 0);

    assert_int_equal(net_tls_new(0, pki.client->cert_pem, NULL, NULL, &tls, err),
                     NET_EINVALID);
    assert_int_equal(
        net_tls_new(0, pki.client->cert_pem, pki.server->key_pem, NULL, &tls, err),
        NET_EINVALID);
    assert_contains(err, "does not match");
    assert_int_equal(
        net_tls_new(1, pki.server->cert_pem, pki.server->key_pem, NULL, &tls, err),
        NET_EINVALID);
    assert_int_equal(net_tls_new(1, NULL, NULL, pki.root->cert_pem, &tls, err),
                     NET_EINVALID);
    assert_int_equal(net_tls_new(0, NULL, NULL, "no certificate here", &tls, err),
                     NET_EINVALID);
    assert_contains(err, "trust bundle");
    assert_null(tls);
}

static void test_wrong_side_settings(void **state)
{
    static const net_server_cb server_cb = {NULL, NULL, NULL, NULL};
    char err[NET_ERRMSG_SIZE] = "";
    uv_loop_t loop;
    net_server *s = NULL;
    net_conn *c = NULL;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(
        net_server_start(&loop, "127.0.0.1:0", pki.client_tls, &server_cb, NULL, &s, err),
        NET_EINVALID);
    assert_null(s);
    assert_int_equal(net_connect(&loop, "127.0.0.1:1", pki.server_tls, 1000,
                                 &ls_client_cb, NULL, &c, err),
                     NET_EINVALID);
    assert_int_equal(net_connect(&loop, "127.0.0.1", pki.client_tls, 1000, &ls_client_cb,
                                 NULL, &c, err),
                     NET_EADDR);
    assert_null(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_tls_request),
        cmocka_unit_test(test_client_without_cert),
        cmocka_unit_test(test_foreign_client_rejected),
        cmocka_unit_test(test_server_without_manager_san),
        cmocka_unit_test(test_server_name_only_in_cn),
        cmocka_unit_test(test_server_from_foreign_root),
        cmocka_unit_test(test_blind_client_gets_chain),
        cmocka_unit_test(test_caller_peer_x509),
        cmocka_unit_test(test_garbage_instead_of_hello),
        cmocka_unit_test(test_stalled_handshake_closed),
        cmocka_unit_test(test_bad_frames_close),
        cmocka_unit_test(test_many_frames_one_write),
        cmocka_unit_test(test_frame_split_across_writes),
        cmocka_unit_test(test_frame_at_size_limit),
        cmocka_unit_test(test_stop_closes_every_conn),
        cmocka_unit_test(test_client_close_status),
        cmocka_unit_test(test_set_tls_applies_to_new_conns),
        cmocka_unit_test(test_connect_timeout_in_loop),
        cmocka_unit_test(test_host_name_resolved),
        cmocka_unit_test(test_close_while_resolving),
        cmocka_unit_test(test_tls_new_rejects_bad_input),
        cmocka_unit_test(test_wrong_side_settings),
    };

    /* A peer that closes first turns our next write into SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("net_tls", tests, setup_pki, teardown_pki);
}
