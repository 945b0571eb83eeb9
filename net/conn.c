/* Connections: reading, writing, and the open and close sequence, shared by
 * client and server sides.
 *
 * A connection owns two libuv handles (the stream and a timer) and, while a
 * name resolves, a getaddrinfo request. refs counts them. The callback of
 * the last one to finish reports on_close (or on_reject) and frees the
 * memory, so no callback runs on freed memory. */
#include "internal.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One uv_write and the buffer it sends, freed together in on_write. */
typedef struct write_req {
    uv_write_t req;
    unsigned char *buf;
    size_t len;
} write_req;

static void on_handle_closed(uv_handle_t *handle)
{
    net__conn_release(handle->data);
}

static void close_handles(net_conn *c)
{
    if (!uv_is_closing(&c->io.handle)) {
        uv_close(&c->io.handle, on_handle_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&c->timer)) {
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
}

static void wipe_free(unsigned char *buf, size_t len)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    net_conn *c = req->handle->data;

    /* Plaintext writes on a Unix socket may carry a join token. */
    wipe_free(w->buf, w->len);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        net__conn_fail(c, NET_EIO, false, "write to %s failed: %s", c->name,
                       uv_strerror(status));
    }
}

/* Queues buf for the socket and takes ownership of it. */
static int write_raw(net_conn *c, unsigned char *buf, size_t len)
{
    write_req *w;
    uv_buf_t b;

    if (uv_is_closing(&c->io.handle) || len > UINT32_MAX) {
        wipe_free(buf, len);
        return NET_ECLOSED;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        wipe_free(buf, len);
        return NET_ENOMEM;
    }
    w->buf = buf;
    w->len = len;
    b = uv_buf_init((char *)buf, (unsigned int)len);
    if (uv_write(&w->req, &c->io.stream, &b, 1, on_write) != 0) {
        wipe_free(buf, len);
        free(w);
        return NET_EIO;
    }
    return 0;
}

/* Sends whatever ciphertext OpenSSL produced: handshake records, alerts,
 * application data. A failure closes the connection. */
static void flush_tls(net_conn *c)
{
    unsigned char *out;
    size_t len;
    int rv;

    rv = net__session_take_output(&c->tls, &out, &len);
    if (rv == 0 && out != NULL) {
        rv = write_raw(c, out, len);
    }
    if (rv != 0 && rv != NET_ECLOSED) {
        net__conn_fail(c, rv, false, "cannot send to %s: %s", c->name, net_strerror(rv));
    }
}

/* Sends one encoded frame on an open connection and takes ownership of it. */
static int send_frame(net_conn *c, unsigned char *frame, size_t len, char *errmsg)
{
    char reason[NET_ERRMSG_SIZE];
    int rv;

    if (!c->use_tls) {
        rv = write_raw(c, frame, len);
    } else {
        rv = net__session_write(&c->tls, frame, len, reason, sizeof(reason));
        wipe_free(frame, len);
        if (rv != 0) {
            net__conn_fail(c, NET_ETLS, false, "TLS write to %s failed: %s", c->name,
                           reason);
            return net__fail(errmsg, NET_ETLS, "TLS write to %s failed: %s", c->name,
                             reason);
        }
        flush_tls(c);
        rv = c->state == NET_CONN_CLOSING ? NET_ECLOSED : 0;
    }
    if (rv != 0) {
        return net__fail(errmsg, rv, "cannot queue a frame for %s: %s", c->name,
                         net_strerror(rv));
    }
    return 0;
}

/* Keeps a frame sent before the connection opened. */
static int queue_pending(net_conn *c, unsigned char *frame, size_t len, char *errmsg)
{
    unsigned char *grown = malloc(c->pending_len + len);

    if (grown == NULL) {
        wipe_free(frame, len);
        return net__fail(errmsg, NET_ENOMEM, "out of memory queueing a frame for %s",
                         c->name);
    }
    if (c->pending_len > 0) {
        memcpy(grown, c->pending, c->pending_len);
    }
    memcpy(grown + c->pending_len, frame, len);
    wipe_free(c->pending, c->pending_len);
    wipe_free(frame, len);
    c->pending = grown;
    c->pending_len += len;
    return 0;
}

/* NOTE: nothing bounds the bytes queued for a peer that reads slowly;
 * callers must not send faster than their peers read. */
int net_conn_send(net_conn *c, const net_msg *m, char *errmsg)
{
    unsigned char *frame;
    size_t len;
    int rv;

    if (c->state == NET_CONN_CLOSING) {
        return net__fail(errmsg, NET_ECLOSED,
                         "connection to %s is closed; open a new one to send", c->name);
    }
    rv = net_msg_encode(m, &frame, &len, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (c->state != NET_CONN_OPEN) {
        return queue_pending(c, frame, len, errmsg);
    }
    return send_frame(c, frame, len, errmsg);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    close_handles(req->handle->data);
}

static void on_close_deadline(uv_timer_t *timer)
{
    close_handles(timer->data);
}

/* Closes the handles of a connection that was in state before. A graceful
 * close first lets libuv flush queued writes and shut down the write side,
 * within NET_CLOSE_TIMEOUT_MS. */
static void begin_close(net_conn *c, enum net_conn_state before, bool graceful)
{
    bool connected = before == NET_CONN_HANDSHAKE || before == NET_CONN_OPEN;

    if (before == NET_CONN_RESOLVING) {
        /* Fails when getaddrinfo already runs. Its callback then finds
         * the closing state and only drops its reference. */
        uv_cancel((uv_req_t *)&c->resolve_req);
    }
    if (connected) {
        uv_read_stop(&c->io.stream);
    }
    if (graceful && connected && !uv_is_closing(&c->io.handle) &&
        uv_shutdown(&c->shutdown_req, &c->io.stream, on_shutdown) == 0) {
        uv_timer_stop(&c->timer);
        uv_timer_start(&c->timer, on_close_deadline, NET_CLOSE_TIMEOUT_MS, 0);
        return;
    }
    close_handles(c);
}

void net__conn_fail(net_conn *c, int status, bool graceful, const char *fmt, ...)
{
    enum net_conn_state before = c->state;
    bool report_connect = c->is_client && before != NET_CONN_OPEN && status != 0;
    va_list ap;

    if (before == NET_CONN_CLOSING) {
        return;
    }
    /* Closing from here on, so a failure while flushing does not recurse. */
    c->state = NET_CONN_CLOSING;
    c->close_status = status;
    va_start(ap, fmt);
    vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
    va_end(ap);

    if (graceful && c->use_tls) {
        if (status == 0) {
            net__session_shutdown(&c->tls);
        }
        flush_tls(c);
    }
    begin_close(c, before, graceful);
    if (report_connect && c->cb.on_connect != NULL) {
        c->cb.on_connect(c, status, c->close_reason, c->data);
    }
}

void net__conn_abort(net_conn *c, const char *reason)
{
    if (c->state == NET_CONN_CLOSING) {
        /* cuts short a graceful close that still waits for its writes */
        close_handles(c);
        return;
    }
    net__conn_fail(c, 0, false, "%s", reason);
}

void net__conn_discard(net_conn *c)
{
    c->silent = true;
    c->state = NET_CONN_CLOSING;
    close_handles(c);
}

void net_conn_close(net_conn *c)
{
    if (c == NULL) {
        return;
    }
    net__conn_fail(c, 0, true, "connection to %s closed on request", c->name);
}

static void free_conn(net_conn *c)
{
    if (c->tls.ssl != NULL) {
        net__session_free(&c->tls);
    }
    net__frame_free(&c->reader);
    wipe_free(c->pending, c->pending_len);
    free(c);
}

void net__conn_release(net_conn *c)
{
    net_server *server = c->server;

    if (--c->refs > 0) {
        return;
    }
    if (server != NULL) {
        net__server_conn_closed(c);
    } else if (!c->silent && c->cb.on_close != NULL) {
        c->cb.on_close(c, c->close_status, c->close_reason, c->data);
    }
    free_conn(c);
    if (server != NULL) {
        net__server_maybe_done(server);
    }
}

static void on_timer(uv_timer_t *timer)
{
    net_conn *c = timer->data;
    char seconds[16];

    if (c->state == NET_CONN_OPEN || c->state == NET_CONN_CLOSING) {
        return;
    }
    net__format_seconds(c->timeout_ms, seconds, sizeof(seconds));
    if (c->is_client) {
        net__conn_fail(c, NET_ETIMEOUT, false,
                       "connection to %s timed out after %s s; check that the address is "
                       "right and the node runs",
                       c->name, seconds);
    } else {
        net__conn_fail(c, NET_ETIMEOUT, false,
                       "TLS handshake with %s did not finish within %s s", c->name,
                       seconds);
    }
}

int net__conn_new(uv_loop_t *loop, bool is_pipe, net_conn **out, char *errmsg)
{
    net_conn *c = calloc(1, sizeof(*c));
    int rv;

    *out = NULL;
    if (c == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory creating a connection");
    }
    c->loop = loop;
    rv = is_pipe ? uv_pipe_init(loop, &c->io.pipe, 0) : uv_tcp_init(loop, &c->io.tcp);
    if (rv != 0) {
        free(c);
        return net__fail(errmsg, NET_EIO, "cannot create a socket handle: %s",
                         uv_strerror(rv));
    }
    /* Requests are small and wait for their response, so Nagle's algorithm
     * would hold each one back until the peer's delayed ACK (about 40 ms).
     * libuv keeps the setting until the socket exists, on connect or
     * accept. */
    if (!is_pipe) {
        uv_tcp_nodelay(&c->io.tcp, 1);
    }
    /* uv_timer_init always returns 0 (libuv src/timer.c). */
    uv_timer_init(loop, &c->timer);
    c->io.handle.data = c;
    c->timer.data = c;
    c->refs = 2;
    *out = c;
    return 0;
}

static void dispatch(net_conn *c, net_msg *m)
{
    if (c->cb.on_msg != NULL) {
        c->cb.on_msg(c, m, c->data);
    } else {
        net_msg_clear(m);
    }
}

/* Splits plaintext into frames and hands each decoded message on, until the
 * bytes run out or a callback closes the connection. */
static void receive_plaintext(net_conn *c, const unsigned char *data, size_t len)
{
    char err[NET_ERRMSG_SIZE];
    const unsigned char *body;
    size_t body_len;
    net_msg m;
    int rv;

    rv = net__frame_append(&c->reader, data, len, err);
    if (rv != 0) {
        net__conn_fail(c, rv, true, "frame from %s rejected: %s", c->name, err);
        return;
    }
    while (c->state == NET_CONN_OPEN) {
        rv = net__frame_next(&c->reader, &body, &body_len, err);
        if (rv == 0) {
            return;
        }
        if (rv < 0) {
            net__conn_fail(c, rv, true, "frame from %s rejected: %s", c->name, err);
            return;
        }
        rv = net_msg_decode(body, body_len, &m, err);
        if (rv != 0) {
            net__conn_fail(c, rv, true, "message from %s rejected: %s", c->name, err);
            return;
        }
        dispatch(c, &m);
    }
}

/* Decrypts everything buffered. The read buffer is free to reuse as the
 * plaintext buffer because its ciphertext already went into the rbio. */
static void drain_tls(net_conn *c)
{
    char reason[NET_ERRMSG_SIZE];
    int n;

    while (c->state == NET_CONN_OPEN) {
        n = net__session_read(&c->tls, c->read_buf, sizeof(c->read_buf), reason,
                              sizeof(reason));
        if (n == 0) {
            return;
        }
        if (n == NET_ECLOSED) {
            net__conn_fail(c, NET_ECLOSED, true, "%s closed the connection", c->name);
            return;
        }
        if (n < 0) {
            net__conn_fail(c, NET_ETLS, true, "TLS error on the connection with %s: %s",
                           c->name, reason);
            return;
        }
        receive_plaintext(c, c->read_buf, (size_t)n);
    }
}

static void flush_pending(net_conn *c)
{
    unsigned char *frames = c->pending;
    size_t len = c->pending_len;

    if (frames == NULL) {
        return;
    }
    c->pending = NULL;
    c->pending_len = 0;
    if (send_frame(c, frames, len, NULL) != 0) {
        net__conn_fail(c, NET_EIO, false, "cannot send queued frames to %s", c->name);
    }
}

/* The connection is ready for frames: after the TLS handshake, or right
 * after connect or accept on a Unix socket. Frames queued earlier go first. */
static void conn_open(net_conn *c)
{
    c->state = NET_CONN_OPEN;
    uv_timer_stop(&c->timer);
    if (c->use_tls) {
        c->verified = net__session_peer_verified(&c->tls);
    }
    flush_pending(c);
    if (c->state != NET_CONN_OPEN) {
        return;
    }
    if (c->server != NULL) {
        net__server_accept(c);
    } else if (c->cb.on_connect != NULL) {
        c->cb.on_connect(c, 0, "", c->data);
    }
}

static void receive_ciphertext(net_conn *c, const unsigned char *data, size_t len)
{
    char reason[NET_ERRMSG_SIZE];
    int rv;

    if (net__session_feed(&c->tls, data, len) != 0) {
        net__conn_fail(c, NET_ENOMEM, false, "out of memory reading from %s", c->name);
        return;
    }
    if (c->state == NET_CONN_HANDSHAKE) {
        rv = net__session_handshake(&c->tls, reason, sizeof(reason));
        if (rv < 0) {
            /* graceful, so that the peer receives the alert with the reason */
            net__conn_fail(c, NET_ETLS, true, "TLS handshake with %s failed: %s", c->name,
                           reason);
            return;
        }
        flush_tls(c);
        if (rv == 0) {
            return;
        }
        conn_open(c);
    }
    drain_tls(c);
    if (c->state == NET_CONN_OPEN) {
        flush_tls(c);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    net_conn *c = handle->data;

    *buf = uv_buf_init((char *)c->read_buf, sizeof(c->read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    net_conn *c = stream->data;

    if (nread == 0 || c->state == NET_CONN_CLOSING) {
        return;
    }
    if (nread == UV_EOF) {
        net__conn_fail(c, NET_ECLOSED, false, "%s closed the connection%s", c->name,
                       c->state == NET_CONN_HANDSHAKE ? " during the TLS handshake" : "");
        return;
    }
    if (nread < 0) {
        net__conn_fail(c, NET_EIO, false, "read from %s failed: %s", c->name,
                       uv_strerror((int)nread));
        return;
    }
    if (c->use_tls) {
        receive_ciphertext(c, (const unsigned char *)buf->base, (size_t)nread);
    } else {
        receive_plaintext(c, (const unsigned char *)buf->base, (size_t)nread);
    }
}

void net__conn_start(net_conn *c)
{
    char reason[NET_ERRMSG_SIZE];
    int rv;

    rv = uv_read_start(&c->io.stream, on_alloc, on_read);
    if (rv != 0) {
        net__conn_fail(c, NET_EIO, false, "cannot read from %s: %s", c->name,
                       uv_strerror(rv));
        return;
    }
    if (!c->use_tls) {
        conn_open(c);
        return;
    }
    c->state = NET_CONN_HANDSHAKE;
    if (c->is_client) {
        /* Produces the ClientHello. */
        rv = net__session_handshake(&c->tls, reason, sizeof(reason));
        if (rv < 0) {
            net__conn_fail(c, NET_ETLS, false, "TLS handshake with %s failed: %s",
                           c->name, reason);
            return;
        }
        flush_tls(c);
    }
}

void net__conn_arm_timer(net_conn *c, uint32_t timeout_ms)
{
    c->timeout_ms = timeout_ms;
    uv_timer_start(&c->timer, on_timer, timeout_ms, 0);
}

void net_conn_set_data(net_conn *c, void *data)
{
    c->data = data;
}

void *net_conn_data(const net_conn *c)
{
    return c->data;
}
