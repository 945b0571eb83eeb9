/* Client connections: resolving a name, connecting, then the client side of
 * the TLS handshake, all on the caller's loop and within one deadline. */
#include "internal.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

static void on_connected(uv_connect_t *req, int status)
{
    net_conn *c = req->handle->data;
    struct sockaddr_storage peer;
    int len = sizeof(peer);

    if (status == UV_ECANCELED || c->state == NET_CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        /* Callers add what to check, because only they know what should
         * listen there. */
        net__conn_fail(c, NET_ECONNECT, false, "connection to %s failed: %s", c->name,
                       uv_strerror(status));
        return;
    }
    if (!c->use_tls) {
        snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
    } else if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&peer, &len) == 0) {
        net__addr_format((struct sockaddr *)&peer, c->peer_addr, sizeof(c->peer_addr));
    }
    net__conn_start(c);
}

static int connect_tcp(net_conn *c, const struct sockaddr_storage *sa, char *errmsg)
{
    int rv = uv_tcp_connect(&c->connect_req, &c->io.tcp, (const struct sockaddr *)sa,
                            on_connected);

    if (rv != 0) {
        return net__fail(errmsg, NET_ECONNECT, "connection to %s failed: %s", c->name,
                         uv_strerror(rv));
    }
    c->state = NET_CONN_CONNECTING;
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    net_conn *c = req->data;
    struct sockaddr_storage sa;
    char err[NET_ERRMSG_SIZE];

    if (c->state == NET_CONN_CLOSING) {
        /* closed or timed out while resolving */
    } else if (status < 0 || res == NULL || res->ai_addrlen > sizeof(sa)) {
        net__conn_fail(c, NET_EADDR, false,
                       "cannot resolve %s: %s; check the name or use an IP address",
                       c->name, status < 0 ? uv_strerror(status) : "no address");
    } else {
        memset(&sa, 0, sizeof(sa));
        memcpy(&sa, res->ai_addr, res->ai_addrlen);
        if (connect_tcp(c, &sa, err) != 0) {
            net__conn_fail(c, NET_ECONNECT, false, "%s", err);
        }
    }
    uv_freeaddrinfo(res);
    net__conn_release(c);
}

/* Connects at once to an IP literal. A host name is resolved on libuv's
 * thread pool first, so that DNS does not block the loop. */
static int start_tcp(net_conn *c, const char *addr, char *errmsg)
{
    struct addrinfo hints;
    struct sockaddr_storage sa;
    char host[NET_MAX_SHORT + 1];
    char port_text[8];
    uint16_t port;
    int rv;

    rv = net__addr_split(addr, false, host, sizeof(host), &port, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (net__addr_numeric(host, port, &sa) == 0) {
        return connect_tcp(c, &sa, errmsg);
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port_text, sizeof(port_text), "%u", port);
    c->resolve_req.data = c;
    rv = uv_getaddrinfo(c->loop, &c->resolve_req, on_resolved, host, port_text, &hints);
    if (rv != 0) {
        return net__fail(errmsg, NET_EADDR, "cannot resolve %s: %s", addr,
                         uv_strerror(rv));
    }
    c->refs++;
    c->state = NET_CONN_RESOLVING;
    return 0;
}

static int check_arguments(uv_loop_t *loop, const char *addr, const net_tls *tls,
                           uint32_t timeout_ms, const net_conn_cb *cb, net_conn **out,
                           char *errmsg)
{
    if (loop == NULL || addr == NULL || cb == NULL || out == NULL) {
        return net__fail(errmsg, NET_EINVALID,
                         "net_connect needs a loop, an address, callbacks and an output");
    }
    if (timeout_ms == 0) {
        return net__fail(errmsg, NET_EINVALID,
                         "connect timeout for %.100s is 0; give it in milliseconds",
                         addr);
    }
    if (tls != NULL && tls->is_server) {
        return net__fail(errmsg, NET_EINVALID,
                         "TLS settings made for a server cannot open a connection to "
                         "%.100s",
                         addr);
    }
    if (tls == NULL) {
        return net__unix_path_check(addr, errmsg);
    }
    return 0;
}

int net_connect(uv_loop_t *loop, const char *addr, net_tls *tls, uint32_t timeout_ms,
                const net_conn_cb *cb, void *data, net_conn **out, char *errmsg)
{
    net_conn *c;
    int rv;

    rv = check_arguments(loop, addr, tls, timeout_ms, cb, out, errmsg);
    if (rv != 0) {
        return rv;
    }
    *out = NULL;
    rv = net__conn_new(loop, tls == NULL, &c, errmsg);
    if (rv != 0) {
        return rv;
    }
    c->is_client = true;
    c->use_tls = tls != NULL;
    c->cb = *cb;
    c->data = data;
    snprintf(c->name, sizeof(c->name), "%s", addr);

    if (tls != NULL) {
        rv = net__session_init(&c->tls, tls->ctx, false, errmsg);
    }
    if (rv == 0 && tls != NULL) {
        rv = start_tcp(c, addr, errmsg);
    } else if (rv == 0) {
        /* Reports every error, even an immediate one, through on_connected. */
        uv_pipe_connect(&c->connect_req, &c->io.pipe, addr, on_connected);
        c->state = NET_CONN_CONNECTING;
    }
    if (rv != 0) {
        net__conn_discard(c);
        return rv;
    }
    net__conn_arm_timer(c, timeout_ms);
    *out = c;
    return 0;
}
