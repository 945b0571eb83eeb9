/* Unix socket servers, address parsing, and net_call failures. */
#include "certs.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define WAIT_MS 5000

typedef struct tmp_dir {
    char path[64];
    char sock[128];
} tmp_dir;

static int setup_dir(void **state)
{
    tmp_dir *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return -1;
    }
    snprintf(d->path, sizeof(d->path), "/tmp/swarmpki-net-XXXXXX");
    if (mkdtemp(d->path) == NULL) {
        free(d);
        return -1;
    }
    snprintf(d->sock, sizeof(d->sock), "%s/control.sock", d->path);
    *state = d;
    return 0;
}

static int teardown_dir(void **state)
{
    tmp_dir *d = *state;

    unlink(d->sock);
    rmdir(d->path);
    free(d);
    return 0;
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", text, needle);
    }
}

static void start_unix(fixture *f, const char *path)
{
    char err[NET_ERRMSG_SIZE] = "";

    if (fixture_start(f, path, NULL, 0, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
}

static void control_req(net_msg *m, char **args, uint32_t n)
{
    memset(m, 0, sizeof(*m));
    m->type = NET_MSG_CONTROL_REQ;
    m->id = 5;
    m->list = args;
    m->list_len = n;
}

/* ---- Unix sockets ---- */

static void test_unix_request_response(void **state)
{
    tmp_dir *d = *state;
    char arg0[] = "node";
    char arg1[] = "ls";
    char *args[] = {arg0, arg1};
    char err[NET_ERRMSG_SIZE] = "";
    char *chain = (char *)"unchanged";
    net_msg req;
    net_msg resp;
    fixture f;

    start_unix(&f, d->sock);
    control_req(&req, args, 2);
    if (net_call(d->sock, NULL, &req, WAIT_MS, &resp, &chain, err) != 0) {
        fail_msg("net_call failed: %s", err);
    }
    assert_null(chain);
    assert_int_equal(resp.type, NET_MSG_CONTROL_RESP);
    assert_int_equal(resp.id, 5);
    assert_int_equal(resp.code, 2);
    assert_string_equal(resp.text, "node");
    net_msg_clear(&resp);

    assert_int_equal(fixture_wait(&f, &f.accepts, 1, WAIT_MS), 1);
    assert_int_equal(f.last_peer.has_cert, 0);
    assert_string_equal(f.last_peer.addr, "unix");
    assert_int_equal(fixture_wait(&f, &f.closes, 1, WAIT_MS), 1);
    assert_int_equal(fixture_stop(&f), 0);
    assert_int_equal(f.done, 1);
}

/* A caller connection carries a response in parts and then another
 * request; after a receive times out it rejects further use. */
static void test_caller_parts_and_timeout(void **state)
{
    tmp_dir *d = *state;
    char word_parts[] = "parts";
    char word_three[] = "3";
    char word_node[] = "node";
    char *parts_args[] = {word_parts, word_three};
    char *node_args[] = {word_node};
    char err[NET_ERRMSG_SIZE] = "";
    net_caller *cl = NULL;
    net_msg req;
    net_msg resp;
    uint64_t started;
    fixture f;

    start_unix(&f, d->sock);
    assert_int_equal(net_caller_open(d->sock, NULL, WAIT_MS, &cl, NULL, err), 0);

    control_req(&req, parts_args, 2);
    assert_int_equal(net_caller_call(cl, &req, WAIT_MS, &resp, err), 0);
    assert_int_equal(resp.code, NET_CONTROL_PART);
    assert_string_equal(resp.text, "part 1\n");
    net_msg_clear(&resp);
    assert_int_equal(net_caller_receive(cl, WAIT_MS, &resp, err), 0);
    assert_int_equal(resp.code, NET_CONTROL_PART);
    assert_string_equal(resp.text, "part 2\n");
    net_msg_clear(&resp);
    assert_int_equal(net_caller_receive(cl, WAIT_MS, &resp, err), 0);
    assert_int_equal(resp.code, 0);
    assert_string_equal(resp.text, "part 3\n");
    net_msg_clear(&resp);

    control_req(&req, node_args, 1);
    assert_int_equal(net_caller_call(cl, &req, WAIT_MS, &resp, err), 0);
    assert_int_equal(resp.code, 1);
    assert_string_equal(resp.text, "node");
    net_msg_clear(&resp);

    /* Nothing more comes, so the receive times out. */
    started = now_ms();
    assert_int_equal(net_caller_receive(cl, 300, &resp, err), NET_ETIMEOUT);
    assert_true(now_ms() - started >= 250);
    assert_contains(err, "0.3 s");
    assert_null(resp.text);
    assert_int_not_equal(net_caller_call(cl, &req, WAIT_MS, &resp, err), 0);

    net_caller_close(cl);
    assert_int_equal(fixture_wait(&f, &f.closes, 1, WAIT_MS), 1);
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_unix_socket_mode(void **state)
{
    tmp_dir *d = *state;
    mode_t old_mask = umask(0);
    struct stat st;
    fixture f;

    /* With umask 0, bind alone would leave the socket world-writable. */
    start_unix(&f, d->sock);
    umask(old_mask);
    assert_int_equal(lstat(d->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fixture_stop(&f), 0);
    assert_int_equal(access(d->sock, F_OK), -1);
}

static void test_unix_stale_socket_replaced(void **state)
{
    tmp_dir *d = *state;
    struct sockaddr_un sun;
    net_msg req;
    net_msg resp;
    fixture f;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    /* A socket file whose process is gone: bound, never listening. */
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", d->sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    assert_int_equal(access(d->sock, F_OK), 0);

    start_unix(&f, d->sock);
    control_req(&req, NULL, 0);
    assert_int_equal(net_call(d->sock, NULL, &req, WAIT_MS, &resp, NULL, NULL), 0);
    assert_int_equal(resp.code, 0);
    net_msg_clear(&resp);
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_unix_regular_file_kept(void **state)
{
    tmp_dir *d = *state;
    char err[NET_ERRMSG_SIZE] = "";
    fixture f;
    int fd = open(d->sock, O_CREAT | O_WRONLY, 0600);

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(fixture_start(&f, d->sock, NULL, 0, err), NET_EADDR);
    assert_contains(err, "is not a socket");
    assert_int_equal(access(d->sock, F_OK), 0);
}

static void test_unix_live_socket_kept(void **state)
{
    static const net_server_cb no_callbacks = {NULL, NULL, NULL, NULL};
    tmp_dir *d = *state;
    char err[NET_ERRMSG_SIZE] = "";
    net_server *second = NULL;
    fixture f;
    uv_loop_t loop;

    start_unix(&f, d->sock);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(
        net_server_start(&loop, d->sock, NULL, &no_callbacks, NULL, &second, err),
        NET_EADDR);
    assert_contains(err, "another process listens");
    assert_null(second);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_unix_split_and_batched(void **state)
{
    tmp_dir *d = *state;
    char arg[] = "x";
    char *args[] = {arg};
    unsigned char *frame;
    unsigned char *batch;
    size_t len;
    net_msg m;
    fixture f;
    int fd;

    control_req(&m, args, 1);
    assert_int_equal(net_msg_encode(&m, &frame, &len, NULL), 0);
    batch = malloc(len * 20);
    assert_non_null(batch);
    for (int i = 0; i < 20; i++) {
        memcpy(batch + (size_t)i * len, frame, len);
    }

    start_unix(&f, d->sock);
    fd = raw_connect_unix(d->sock);
    assert_true(fd >= 0);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(raw_write(NULL, fd, frame + i, 1), 0);
        uv_sleep(1);
    }
    assert_int_equal(raw_read_msg(NULL, fd, &m), 0);
    assert_int_equal(m.code, 1);
    net_msg_clear(&m);

    assert_int_equal(raw_write(NULL, fd, batch, len * 20), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(raw_read_msg(NULL, fd, &m), 0);
        assert_string_equal(m.text, "x");
        net_msg_clear(&m);
    }
    close(fd);
    free(frame);
    free(batch);
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_unix_bad_frame_closes(void **state)
{
    static const unsigned char oversized[] = {0x7f, 0xff, 0xff, 0xff};
    tmp_dir *d = *state;
    fixture f;
    int fd;

    start_unix(&f, d->sock);
    fd = raw_connect_unix(d->sock);
    assert_true(fd >= 0);
    assert_int_equal(raw_write(NULL, fd, oversized, sizeof(oversized)), 0);
    assert_int_equal(fixture_wait(&f, &f.closes, 1, WAIT_MS), 1);
    assert_int_equal(f.last_close_status, NET_ETOOBIG);
    assert_contains(f.last_close_reason, "frame from unix rejected");
    assert_int_equal(raw_wait_closed(fd), 1);
    close(fd);
    assert_int_equal(fixture_stop(&f), 0);
}

static void test_unix_path_too_long(void **state)
{
    static const net_server_cb no_callbacks = {NULL, NULL, NULL, NULL};
    char path[200];
    char err[NET_ERRMSG_SIZE] = "";
    net_server *s = NULL;
    net_msg req;
    net_msg resp;
    uv_loop_t loop;

    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(net_server_start(&loop, path, NULL, &no_callbacks, NULL, &s, err),
                     NET_EADDR);
    assert_contains(err, "longer than");
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    control_req(&req, NULL, 0);
    assert_int_equal(net_call(path, NULL, &req, 1000, &resp, NULL, err), NET_EADDR);
}

/* ---- stopping while a graceful close waits ---- */

typedef struct flood {
    int accepts;
    int closes;
    int last_status;
    int done;
} flood;

static flood fl;

/* Queues far more than the socket buffers take, to a peer that never
 * reads, then closes: the graceful close waits for writes that cannot
 * finish. */
static void *flood_accept(net_server *s, net_conn *c, void *data)
{
    net_msg m;

    fl.accepts++;
    memset(&m, 0, sizeof(m));
    m.type = NET_MSG_CONTROL_RESP;
    m.text = malloc(NET_MAX_TEXT + 1);
    assert_non_null(m.text);
    memset(m.text, 'f', NET_MAX_TEXT);
    m.text[NET_MAX_TEXT] = '\0';
    for (int i = 0; i < 32; i++) {
        assert_int_equal(net_conn_send(c, &m, NULL), 0);
    }
    net_msg_clear(&m);
    net_conn_close(c);
    return NULL;
}

static void flood_close(net_conn *c, int status, const char *reason, void *data)
{
    fl.closes++;
    fl.last_status = status;
}

static void flood_done(void *data)
{
    fl.done++;
}

static void test_stop_cuts_graceful_close(void **state)
{
    static const net_server_cb callbacks = {flood_accept, NULL, flood_close, NULL};
    tmp_dir *d = *state;
    char err[NET_ERRMSG_SIZE] = "";
    net_server *s = NULL;
    uv_loop_t loop;
    uint64_t started;
    int fd;

    memset(&fl, 0, sizeof(fl));
    assert_int_equal(uv_loop_init(&loop), 0);
    if (net_server_start(&loop, d->sock, NULL, &callbacks, NULL, &s, err) != 0) {
        fail_msg("server start failed: %s", err);
    }
    /* The kernel completes a Unix connect from its backlog, before the
     * loop accepts. */
    fd = raw_connect_unix(d->sock);
    assert_true(fd >= 0);
    while (fl.accepts == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(fl.closes, 0);

    started = now_ms();
    net_server_stop(s, flood_done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(now_ms() - started < 2000);
    assert_int_equal(fl.done, 1);
    assert_int_equal(fl.closes, 1);
    assert_int_equal(fl.last_status, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

/* ---- net_call failures ---- */

static void test_call_refused(void **state)
{
    char addr[64];
    char err[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    net_msg req;
    net_msg resp;
    uint64_t started = now_ms();
    int port = free_port();

    assert_true(port > 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    control_req(&req, NULL, 0);
    assert_int_equal(net_tls_new(0, NULL, NULL, NULL, &tls, err), 0);
    assert_int_equal(net_call(addr, tls, &req, 10000, &resp, NULL, err), NET_ECONNECT);
    net_tls_free(tls);
    assert_true(now_ms() - started < 2000);
    assert_contains(err, addr);
    assert_contains(err, "refused");
    assert_int_equal(resp.type, 0);
}

static void test_call_missing_unix_socket(void **state)
{
    tmp_dir *d = *state;
    char err[NET_ERRMSG_SIZE] = "";
    net_msg req;
    net_msg resp;

    control_req(&req, NULL, 0);
    assert_int_equal(net_call(d->sock, NULL, &req, 1000, &resp, NULL, err), NET_ECONNECT);
    assert_contains(err, d->sock);
}

static void test_call_timeout(void **state)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char addr[64];
    char err[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    net_msg req;
    net_msg resp;
    uint64_t started;
    int listener = socket(AF_INET, SOCK_STREAM, 0);

    /* The kernel completes the TCP handshake for a listening socket, but no
     * process ever accepts, so the TLS handshake gets no response. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(listener, 4), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));

    assert_int_equal(net_tls_new(0, NULL, NULL, NULL, &tls, err), 0);
    control_req(&req, NULL, 0);
    started = now_ms();
    assert_int_equal(net_call(addr, tls, &req, 400, &resp, NULL, err), NET_ETIMEOUT);
    assert_true(now_ms() - started >= 350);
    assert_true(now_ms() - started < 3000);
    assert_contains(err, addr);
    assert_contains(err, "0.4 s");
    net_tls_free(tls);
    close(listener);
}

/* ---- addresses ---- */

static void test_addr_parse_valid(void **state)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    char err[NET_ERRMSG_SIZE] = "";

    assert_int_equal(net_addr_parse("127.0.0.1:4242", &ss, err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(v4->sin_port), 4242);
    assert_int_equal(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);

    assert_int_equal(net_addr_parse("[::1]:65535", &ss, err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(v6->sin6_port), 65535);

    assert_int_equal(net_addr_parse("0.0.0.0:1", &ss, err), 0);
    assert_int_equal(ntohs(v4->sin_port), 1);

    /* Resolved from /etc/hosts, without any query on the network. */
    assert_int_equal(net_addr_parse("localhost:80", &ss, err), 0);
    assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* Unspecified hosts can be listened on but not connected to. */
static void test_addr_unspecified(void **state)
{
    char err[NET_ERRMSG_SIZE] = "";

    (void)state;
    assert_int_equal(net_addr_is_unspecified("0.0.0.0:2377"), 1);
    assert_int_equal(net_addr_is_unspecified("[::]:2377"), 1);
    assert_int_equal(net_addr_is_unspecified("[0:0::0]:2377"), 1);
    assert_int_equal(net_addr_is_unspecified("127.0.0.1:2377"), 0);
    assert_int_equal(net_addr_is_unspecified("[::1]:2377"), 0);
    assert_int_equal(net_addr_is_unspecified("localhost:2377"), 0);
    assert_int_equal(net_addr_is_unspecified("0.0.0.0"), 0); /* not HOST:PORT at all */
    assert_int_equal(net_addr_check("0.0.0.0:2377", err), 0);
    assert_int_equal(net_addr_check("host:0", err), NET_EADDR);
    assert_int_equal(net_addr_check("[nonsense]:1", err), NET_EADDR);
}

static void test_addr_parse_invalid(void **state)
{
    static const char *bad[] = {
        "",       "127.0.0.1",       "127.0.0.1:",    "127.0.0.1:0",
        ":80",    "127.0.0.1:65536", "127.0.0.1:-1",  "127.0.0.1:8x",
        "::1:80", "[::1]80",         "[::1]",         "[foo]:80",
        "[]:80",  "1.2.3.4:123456",  "127.0.0.1: 80", "[127.0.0.1]:80",
    };
    struct sockaddr_storage ss;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[NET_ERRMSG_SIZE] = "";
        int rv = net_addr_parse(bad[i], &ss, err);

        if (rv != NET_EADDR || strlen(err) == 0) {
            fail_msg("\"%s\": rv %d, error \"%s\"", bad[i], rv, err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unix_request_response, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_caller_parts_and_timeout, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_socket_mode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_stale_socket_replaced, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_regular_file_kept, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_live_socket_kept, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_split_and_batched, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_unix_bad_frame_closes, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_unix_path_too_long),
        cmocka_unit_test_setup_teardown(test_stop_cuts_graceful_close, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_call_refused),
        cmocka_unit_test_setup_teardown(test_call_missing_unix_socket, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_call_timeout),
        cmocka_unit_test(test_addr_parse_valid),
        cmocka_unit_test(test_addr_unspecified),
        cmocka_unit_test(test_addr_parse_invalid),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("net_local", tests, NULL, NULL);
}
