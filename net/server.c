/* Servers: a TCP listener with TLS, or a Unix socket without, and the
 * connections they accept. */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 128

static void link_conn(net_server *s, net_conn *c)
{
    c->server = s;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
}

static void unlink_conn(net_server *s, net_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
}

static void report_reject(net_server *s, const char *peer, const char *reason)
{
    if (s->cb.on_reject != NULL) {
        s->cb.on_reject(s, peer, reason, s->data);
    }
}

void net__server_accept(net_conn *c)
{
    net_server *s = c->server;
    void *conn_data = NULL;

    c->accepted = true;
    c->cb.on_msg = s->cb.on_msg;
    c->cb.on_close = s->cb.on_close;
    if (s->cb.on_accept != NULL) {
        conn_data = s->cb.on_accept(s, c, s->data);
    }
    c->data = conn_data;
}

void net__server_conn_closed(net_conn *c)
{
    net_server *s = c->server;

    if (c->silent) {
        /* nothing to report */
    } else if (c->accepted) {
        if (c->cb.on_close != NULL) {
            c->cb.on_close(c, c->close_status, c->close_reason, c->data);
        }
    } else if (c->close_status != 0) {
        report_reject(s, c->name, c->close_reason);
    }
    unlink_conn(s, c);
}

void net__server_maybe_done(net_server *s)
{
    void (*done)(void *) = s->done;
    void *done_data = s->done_data;

    if (!s->stopping || s->listener_open || s->conns != NULL) {
        return;
    }
    SSL_CTX_free(s->ctx);
    free(s->unix_path);
    free(s);
    if (done != NULL) {
        done(done_data);
    }
}

static void on_listener_closed(uv_handle_t *handle)
{
    net_server *s = handle->data;

    s->listener_open = false;
    if (s->unix_path != NULL) {
        unlink(s->unix_path);
    }
    net__server_maybe_done(s);
}

/* Sets up one accepted connection. Failures go to on_reject. */
static void accept_conn(net_server *s, net_conn *c)
{
    struct sockaddr_storage peer;
    char err[NET_ERRMSG_SIZE];
    int len = sizeof(peer);
    int rv;

    link_conn(s, c);
    c->use_tls = s->ctx != NULL;
    snprintf(c->name, sizeof(c->name), "unknown");
    rv = uv_accept(&s->listener.stream, &c->io.stream);
    if (rv != 0) {
        net__conn_fail(c, NET_EIO, false, "accept failed: %s", uv_strerror(rv));
        return;
    }
    if (!c->use_tls) {
        snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
    } else if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&peer, &len) == 0) {
        net__addr_format((struct sockaddr *)&peer, c->peer_addr, sizeof(c->peer_addr));
    } else {
        snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
    }
    snprintf(c->name, sizeof(c->name), "%s", c->peer_addr);

    if (c->use_tls) {
        rv = net__session_init(&c->tls, s->ctx, true, err);
        if (rv != 0) {
            net__conn_fail(c, rv, false, "%s", err);
            return;
        }
        net__conn_arm_timer(c, s->handshake_timeout_ms);
    }
    c->state = NET_CONN_HANDSHAKE;
    net__conn_start(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    net_server *s = listener->data;
    char err[NET_ERRMSG_SIZE];
    net_conn *c;

    if (s->stopping) {
        return;
    }
    if (status < 0) {
        snprintf(err, sizeof(err), "accept failed: %s", uv_strerror(status));
        report_reject(s, "unknown", err);
        return;
    }
    /* NOTE: when this fails, uv_accept is never called for the pending
     * connection, and libuv then stops watching this listener (uv__server_io
     * in libuv's src/unix/stream.c). The number of open connections has no
     * limit either, so only the handshake timeout bounds how long an
     * unauthenticated peer keeps one open. */
    if (net__conn_new(s->loop, s->ctx == NULL, &c, err) != 0) {
        report_reject(s, "unknown", err);
        return;
    }
    accept_conn(s, c);
}

static int listen_tcp(net_server *s, const char *addr, char *errmsg)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    int rv;

    rv = net__addr_resolve(addr, true, &sa, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = uv_tcp_init(s->loop, &s->listener.tcp);
    if (rv != 0) {
        return net__fail(errmsg, NET_EIO, "cannot create a socket for %s: %s", addr,
                         uv_strerror(rv));
    }
    s->listener_open = true;
    rv = uv_tcp_bind(&s->listener.tcp, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen(&s->listener.stream, LISTEN_BACKLOG, on_connection);
    }
    if (rv != 0) {
        return net__fail(
            errmsg, NET_EADDR,
            "cannot listen on %s: %s; choose a free port or stop the process "
            "that uses it",
            addr, uv_strerror(rv));
    }
    if (uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&sa, &len) == 0) {
        s->port =
            ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                          : ((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    return 0;
}

/* Removes a socket file left by a process that is gone. A file that is not
 * a socket, or a socket that still accepts connections, stays. */
static int remove_stale_socket(const char *path, char *errmsg)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;
    int live;

    if (lstat(path, &st) != 0) {
        return 0;
    }
    if (!S_ISSOCK(st.st_mode)) {
        return net__fail(errmsg, NET_EADDR,
                         "%s exists and is not a socket; move it away or choose another "
                         "path",
                         path);
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return net__fail(errmsg, NET_EIO, "cannot create a socket to probe %s: %s", path,
                         strerror(errno));
    }
    live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    if (live) {
        return net__fail(
            errmsg, NET_EADDR,
            "another process listens on %s; stop it before starting this node", path);
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        return net__fail(errmsg, NET_EIO, "cannot remove the stale socket %s: %s", path,
                         strerror(errno));
    }
    return 0;
}

static int listen_unix(net_server *s, const char *path, char *errmsg)
{
    int rv;

    rv = net__unix_path_check(path, errmsg);
    if (rv == 0) {
        rv = remove_stale_socket(path, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    rv = uv_pipe_init(s->loop, &s->listener.pipe, 0);
    if (rv != 0) {
        return net__fail(errmsg, NET_EIO, "cannot create a socket for %s: %s", path,
                         uv_strerror(rv));
    }
    s->listener_open = true;
    rv = uv_pipe_bind(&s->listener.pipe, path);
    if (rv != 0) {
        return net__fail(errmsg, NET_EADDR, "cannot bind the Unix socket %s: %s", path,
                         uv_strerror(rv));
    }
    s->unix_path = strdup(path);

    /* No client can connect before uv_listen, so the mode is in place before
     * the first connection. */
    if (s->unix_path == NULL || chmod(path, 0600) != 0) {
        return net__fail(errmsg, NET_EIO, "cannot restrict %s to mode 0600: %s", path,
                         s->unix_path == NULL ? "out of memory" : strerror(errno));
    }
    rv = uv_listen(&s->listener.stream, LISTEN_BACKLOG, on_connection);
    if (rv != 0) {
        return net__fail(errmsg, NET_EIO, "cannot listen on the Unix socket %s: %s", path,
                         uv_strerror(rv));
    }
    return 0;
}

static int check_arguments(uv_loop_t *loop, const char *addr, const net_tls *tls,
                           const net_server_cb *cb, net_server **out, char *errmsg)
{
    if (loop == NULL || addr == NULL || cb == NULL || out == NULL) {
        return net__fail(errmsg, NET_EINVALID,
                         "net_server_start needs a loop, an address, callbacks and an "
                         "output");
    }
    if (tls != NULL && !tls->is_server) {
        return net__fail(errmsg, NET_EINVALID,
                         "TLS settings made for a client cannot serve %.100s", addr);
    }
    return 0;
}

int net_server_start(uv_loop_t *loop, const char *addr, net_tls *tls,
                     const net_server_cb *cb, void *data, net_server **out, char *errmsg)
{
    net_server *s;
    int rv;

    rv = check_arguments(loop, addr, tls, cb, out, errmsg);
    if (rv != 0) {
        return rv;
    }
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory starting a server on %.100s",
                         addr);
    }
    s->loop = loop;
    s->cb = *cb;
    s->data = data;
    s->handshake_timeout_ms = NET_HANDSHAKE_TIMEOUT_MS;
    s->listener.handle.data = s;
    if (tls != NULL) {
        SSL_CTX_up_ref(tls->ctx);
        s->ctx = tls->ctx;
    }

    rv = tls != NULL ? listen_tcp(s, addr, errmsg) : listen_unix(s, addr, errmsg);
    if (rv != 0) {
        /* An initialized handle belongs to the loop until it is closed. Its
         * close callback frees the server without calling any callback. */
        s->stopping = true;
        if (s->listener_open) {
            uv_close(&s->listener.handle, on_listener_closed);
        } else {
            net__server_maybe_done(s);
        }
        return rv;
    }
    *out = s;
    return 0;
}

void net_server_set_tls(net_server *s, net_tls *tls)
{
    /* A Unix socket server cannot take TLS, and client settings cannot
     * authenticate a server: both are bugs in the caller. */
    assert(s->ctx != NULL);
    assert(tls != NULL);
    assert(tls->is_server);
    if (s->ctx == NULL || tls == NULL || !tls->is_server) {
        return;
    }
    SSL_CTX_up_ref(tls->ctx);
    SSL_CTX_free(s->ctx);
    s->ctx = tls->ctx;
}

void net_server_set_handshake_timeout(net_server *s, uint32_t timeout_ms)
{
    s->handshake_timeout_ms = timeout_ms > 0 ? timeout_ms : NET_HANDSHAKE_TIMEOUT_MS;
}

int net_server_port(const net_server *s)
{
    return s->port;
}

void net_server_stop(net_server *s, void (*done)(void *data), void *data)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    s->done = done;
    s->done_data = data;
    uv_close(&s->listener.handle, on_listener_closed);

    /* Closing frees nothing before the loop runs the close callbacks, so
     * walking the list while closing is safe. */
    for (net_conn *c = s->conns; c != NULL; c = c->next) {
        net__conn_abort(c, "server stopped");
    }
    net__server_maybe_done(s);
}
