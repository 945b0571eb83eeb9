#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char *copy_text(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);

    if (out != NULL) {
        memcpy(out, s, len + 1);
    }
    return out;
}

/* HEARTBEAT_REQ: the peer identity the server saw, as a list.
 * CONTROL_REQ: the number of arguments as code, the first one as text;
 * for the arguments "parts" and N, N responses in parts (see below).
 * BUNDLE_REQ: a fixed bundle. RAFT and MEMBER_REQ: the request itself, sent
 * back unchanged. Anything else: an error. */
void echo_answer(net_conn *c, net_msg *req)
{
    net_peer peer;
    net_msg resp;
    char err[NET_ERRMSG_SIZE];

    if (req->type == NET_MSG_RAFT || req->type == NET_MSG_MEMBER_REQ) {
        if (net_conn_send(c, req, err) != 0) {
            fprintf(stderr, "echo server: %s\n", err);
        }
        net_msg_clear(req);
        return;
    }
    memset(&resp, 0, sizeof(resp));
    resp.id = req->id;
    if (req->type == NET_MSG_HEARTBEAT_REQ) {
        net_conn_peer(c, &peer);
        const char *items[5] = {peer.has_cert ? "cert" : "none", peer.common_name,
                                peer.org_unit, peer.org, peer.addr};
        resp.type = NET_MSG_HEARTBEAT_RESP;
        resp.period_ms = 1000;
        resp.list = calloc(5, sizeof(char *));
        for (int i = 0; resp.list != NULL && i < 5; i++) {
            resp.list[i] = copy_text(items[i]);
            resp.list_len = (uint32_t)i + 1;
        }
    } else if (req->type == NET_MSG_CONTROL_REQ && req->list_len == 2 &&
               strcmp(req->list[0], "parts") == 0) {
        /* N responses: N - 1 parts, then the last one with code 0. */
        int count = atoi(req->list[1]);
        char text[32];

        resp.type = NET_MSG_CONTROL_RESP;
        for (int i = 1; i < count; i++) {
            snprintf(text, sizeof(text), "part %d\n", i);
            resp.code = NET_CONTROL_PART;
            resp.text = text;
            if (net_conn_send(c, &resp, err) != 0) {
                fprintf(stderr, "echo server: %s\n", err);
            }
        }
        snprintf(text, sizeof(text), "part %d\n", count);
        resp.code = 0;
        resp.text = copy_text(text);
    } else if (req->type == NET_MSG_CONTROL_REQ) {
        resp.type = NET_MSG_CONTROL_RESP;
        resp.code = (int32_t)req->list_len;
        resp.text = copy_text(req->list_len > 0 ? req->list[0] : "");
    } else if (req->type == NET_MSG_BUNDLE_REQ) {
        resp.type = NET_MSG_BUNDLE_RESP;
        resp.bundle_pem = copy_text("bundle");
    } else {
        net_msg_error(&resp, req->id, NET_STATUS_UNSUPPORTED, "unexpected message type");
    }
    if (net_conn_send(c, &resp, err) != 0) {
        fprintf(stderr, "echo server: %s\n", err);
    }
    net_msg_clear(&resp);
    net_msg_clear(req);
}

static void *on_accept(net_server *s, net_conn *c, void *data)
{
    fixture *f = data;

    uv_mutex_lock(&f->lock);
    f->accepts++;
    net_conn_peer(c, &f->last_peer);
    uv_mutex_unlock(&f->lock);
    return f;
}

static void on_msg(net_conn *c, net_msg *m, void *data)
{
    fixture *f = data;

    uv_mutex_lock(&f->lock);
    f->msgs++;
    uv_mutex_unlock(&f->lock);
    echo_answer(c, m);
}

static void on_close(net_conn *c, int status, const char *reason, void *data)
{
    fixture *f = data;

    uv_mutex_lock(&f->lock);
    f->closes++;
    f->last_close_status = status;
    snprintf(f->last_close_reason, sizeof(f->last_close_reason), "%s", reason);
    uv_mutex_unlock(&f->lock);
}

static void on_reject(net_server *s, const char *peer, const char *reason, void *data)
{
    fixture *f = data;

    uv_mutex_lock(&f->lock);
    f->rejects++;
    snprintf(f->last_reject, sizeof(f->last_reject), "%s", reason);
    uv_mutex_unlock(&f->lock);
}

static void on_done(void *data)
{
    fixture *f = data;

    uv_mutex_lock(&f->lock);
    f->done++;
    uv_mutex_unlock(&f->lock);
}

static void on_wake(uv_async_t *async)
{
    fixture *f = async->data;

    net_server_stop(f->server, on_done, f);
    uv_close((uv_handle_t *)async, NULL);
}

static void run_loop(void *arg)
{
    fixture *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
}

int fixture_start(fixture *f, const char *addr, net_tls *tls, uint32_t handshake_ms,
                  char *errmsg)
{
    static const net_server_cb callbacks = {on_accept, on_msg, on_close, on_reject};
    int rv;

    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    uv_mutex_init(&f->lock);
    uv_async_init(&f->loop, &f->wake, on_wake);
    f->wake.data = f;
    rv = net_server_start(&f->loop, addr, tls, &callbacks, f, &f->server, errmsg);
    if (rv != 0) {
        uv_close((uv_handle_t *)&f->wake, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
        uv_mutex_destroy(&f->lock);
        return rv;
    }
    if (handshake_ms != 0) {
        net_server_set_handshake_timeout(f->server, handshake_ms);
    }
    f->port = net_server_port(f->server);
    if (tls != NULL) {
        snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", f->port);
    } else {
        snprintf(f->addr, sizeof(f->addr), "%s", addr);
    }
    uv_thread_create(&f->thread, run_loop, f);
    return 0;
}

int fixture_stop(fixture *f)
{
    int rv;

    uv_async_send(&f->wake);
    uv_thread_join(&f->thread);
    rv = uv_loop_close(&f->loop);
    uv_mutex_destroy(&f->lock);
    return rv;
}

int fixture_wait(fixture *f, const int *counter, int value, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int seen;

    for (;;) {
        uv_mutex_lock(&f->lock);
        seen = *counter;
        uv_mutex_unlock(&f->lock);
        if (seen >= value || now_ms() >= deadline) {
            return seen;
        }
        uv_sleep(5);
    }
}

int fixture_count(fixture *f, const int *counter)
{
    int seen;

    uv_mutex_lock(&f->lock);
    seen = *counter;
    uv_mutex_unlock(&f->lock);
    return seen;
}

static void set_timeouts(int fd)
{
    struct timeval tv = {5, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int raw_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;

    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    set_timeouts(fd);
    return fd;
}

int raw_connect_unix(const char *path)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

int raw_wait_closed(int fd)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n == 0) {
            return 1;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
        }
    }
}

SSL *raw_tls(int fd, const char *cert_pem, const char *key_pem, SSL_CTX **ctx_out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;

    *ctx_out = ctx;
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (cert_pem != NULL) {
        BIO *cb = BIO_new_mem_buf(cert_pem, -1);
        BIO *kb = BIO_new_mem_buf(key_pem, -1);
        X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);

        SSL_CTX_use_certificate(ctx, cert);
        SSL_CTX_use_PrivateKey(ctx, key);
        X509_free(cert);
        EVP_PKEY_free(key);
        BIO_free(cb);
        BIO_free(kb);
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static int read_exact(SSL *ssl, int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = ssl != NULL ? SSL_read(ssl, buf + got, (int)(len - got))
                            : (int)recv(fd, buf + got, len - got, 0);
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int raw_read_msg(SSL *ssl, int fd, net_msg *m)
{
    unsigned char head[4];
    unsigned char *body;
    uint32_t len;
    int rv;

    if (read_exact(ssl, fd, head, 4) != 0) {
        return -1;
    }
    len = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 |
          head[3];
    body = malloc(len > 0 ? len : 1);
    if (body == NULL || read_exact(ssl, fd, body, len) != 0) {
        free(body);
        return -1;
    }
    rv = net_msg_decode(body, len, m, NULL);
    free(body);
    return rv == 0 ? 0 : -1;
}

int raw_write(SSL *ssl, int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        int n = ssl != NULL ? SSL_write(ssl, p, (int)len)
                            : (int)send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
