/* Blocking requests for the command line: a connection on a private loop
 * that carries one request at a time. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer addresses are cut short in messages only. */
#define NET_CALLER_ADDR_SIZE 160

struct net_caller {
    uv_loop_t loop;
    uv_timer_t timer;
    net_conn *conn; /* NULL once the connection has closed */
    char addr[NET_CALLER_ADDR_SIZE];
    char **peer_chain;
    bool connected;
    bool waiting;   /* a caller waits for the next message */
    bool broken;    /* a receive timed out or failed, so nothing more is read */
    net_msg *resp;
    net_msg *queued; /* messages received while no caller waited, oldest first */
    size_t queued_count;
    size_t queued_cap;
    uint32_t step_ms; /* the time limit of the current request */
    int status;     /* the failure of the current step; 0 while none */
    char errmsg[NET_ERRMSG_SIZE];
};

static void step_fail(net_caller *cl, int status, const char *reason)
{
    if (cl->status == 0) {
        cl->status = status;
        snprintf(cl->errmsg, sizeof(cl->errmsg), "%s", reason);
    }
}

static void on_connect(net_conn *c, int status, const char *errmsg, void *data)
{
    net_caller *cl = data;

    if (status != 0) {
        step_fail(cl, status, errmsg);
        return;
    }
    cl->connected = true;
    if (cl->peer_chain != NULL) {
        *cl->peer_chain = net_conn_peer_chain(c);
    }
}

static void on_msg(net_conn *c, net_msg *m, void *data)
{
    net_caller *cl = data;

    if (cl->waiting) {
        *cl->resp = *m;
        memset(m, 0, sizeof(*m));
        cl->waiting = false;
        return;
    }

    /* One read can carry several frames, such as the parts of a long
     * response, so later ones wait here for the next receive. */
    if (cl->queued_count == cl->queued_cap) {
        size_t cap = cl->queued_cap ? cl->queued_cap * 2 : 4;
        net_msg *grown = realloc(cl->queued, cap * sizeof(*grown));
        if (grown == NULL) {
            net_msg_clear(m);
            step_fail(cl, NET_ENOMEM, "out of memory while receiving");
            net_conn_close(c);
            return;
        }
        cl->queued = grown;
        cl->queued_cap = cap;
    }
    cl->queued[cl->queued_count++] = *m;
    memset(m, 0, sizeof(*m));
}

static void on_close(net_conn *c, int status, const char *reason, void *data)
{
    net_caller *cl = data;

    (void)c;
    cl->conn = NULL;
    step_fail(cl, status != 0 ? status : NET_ECLOSED,
              reason != NULL && reason[0] ? reason : "the peer closed the connection");
}

static void on_deadline(uv_timer_t *timer)
{
    net_caller *cl = timer->data;
    char seconds[16];
    char reason[NET_ERRMSG_SIZE];

    net__format_seconds(cl->step_ms, seconds, sizeof(seconds));
    snprintf(reason, sizeof(reason), "no answer from %s within %s s; check that the node runs",
             cl->addr, seconds);
    step_fail(cl, NET_ETIMEOUT, reason);
    if (cl->conn != NULL) {
        net_conn_close(cl->conn);
    }
}

/* Runs the loop until *done equals want or the current step failed, for at
 * most timeout_ms when that is not 0. */
static void run_until(net_caller *cl, const bool *done, bool want, uint32_t timeout_ms)
{
    if (timeout_ms != 0) {
        cl->step_ms = timeout_ms;
        uv_timer_start(&cl->timer, on_deadline, timeout_ms, 0);
    }
    while (*done != want && cl->status == 0 && cl->conn != NULL) {
        uv_run(&cl->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&cl->timer);
}

int net_caller_open(const char *addr, net_tls *tls, uint32_t timeout_ms, net_caller **out,
                    char **peer_chain, char *errmsg)
{
    static const net_conn_cb callbacks = {on_connect, on_msg, on_close};
    net_caller *cl = calloc(1, sizeof(*cl));
    int rv;

    *out = NULL;
    if (peer_chain != NULL) {
        *peer_chain = NULL;
    }
    if (cl == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory");
    }
    rv = uv_loop_init(&cl->loop);
    if (rv != 0) {
        free(cl);
        return net__fail(errmsg, NET_EIO, "cannot create an event loop: %s",
                         uv_strerror(rv));
    }
    uv_timer_init(&cl->loop, &cl->timer);
    cl->timer.data = cl;
    snprintf(cl->addr, sizeof(cl->addr), "%s", addr);
    cl->peer_chain = peer_chain;

    rv = net_connect(&cl->loop, addr, tls, timeout_ms, &callbacks, cl, &cl->conn, errmsg);
    if (rv != 0) {
        cl->conn = NULL;
        net_caller_close(cl);
        return rv;
    }
    /* net_connect enforces timeout_ms on the connection and handshake. */
    run_until(cl, &cl->connected, true, 0);
    cl->peer_chain = NULL;
    if (!cl->connected || cl->status != 0) {
        rv = cl->status != 0 ? cl->status : NET_ECLOSED;
        net__fail(errmsg, rv, "%s", cl->status != 0 ? cl->errmsg : "the connection closed");
        if (peer_chain != NULL) {
            free(*peer_chain);
            *peer_chain = NULL;
        }
        net_caller_close(cl);
        return rv;
    }
    *out = cl;
    return 0;
}

void net_caller_peer_x509(const net_caller *cl, const void **leaf, const void **chain)
{
    *leaf = NULL;
    *chain = NULL;
    if (cl->conn != NULL) {
        net_conn_peer_x509(cl->conn, leaf, chain);
    }
}

int net_caller_receive(net_caller *cl, uint32_t timeout_ms, net_msg *resp, char *errmsg)
{
    memset(resp, 0, sizeof(*resp));
    if (cl->queued_count > 0) {
        *resp = cl->queued[0];
        cl->queued_count--;
        memmove(cl->queued, cl->queued + 1, cl->queued_count * sizeof(*cl->queued));
        return 0;
    }
    if (cl->conn == NULL || cl->broken) {
        return net__fail(errmsg, cl->status != 0 ? cl->status : NET_ECLOSED, "%s",
                         cl->errmsg[0] ? cl->errmsg : "the connection is closed");
    }
    cl->status = 0;
    cl->errmsg[0] = '\0';
    cl->resp = resp;
    cl->waiting = true;
    run_until(cl, &cl->waiting, false, timeout_ms);
    cl->resp = NULL;
    if (cl->waiting) {
        cl->waiting = false;
        cl->broken = true;
        if (cl->conn != NULL) {
            /* A late response must not pass for the next request's. */
            net_conn_close(cl->conn);
        }
        net_msg_clear(resp);
        return net__fail(errmsg, cl->status != 0 ? cl->status : NET_ECLOSED, "%s",
                         cl->errmsg[0] ? cl->errmsg : "the connection closed");
    }
    return 0;
}

int net_caller_call(net_caller *cl, const net_msg *req, uint32_t timeout_ms, net_msg *resp,
                    char *errmsg)
{
    int rv;

    memset(resp, 0, sizeof(*resp));
    if (cl->conn == NULL || cl->broken) {
        return net__fail(errmsg, cl->status != 0 ? cl->status : NET_ECLOSED, "%s",
                         cl->errmsg[0] ? cl->errmsg : "the connection is closed");
    }
    rv = net_conn_send(cl->conn, req, errmsg);
    if (rv != 0) {
        return rv;
    }
    return net_caller_receive(cl, timeout_ms, resp, errmsg);
}

void net_caller_close(net_caller *cl)
{
    if (cl == NULL) {
        return;
    }
    if (cl->conn != NULL) {
        net_conn_close(cl->conn);
    }
    uv_close((uv_handle_t *)&cl->timer, NULL);
    /* Runs until every handle, the connection's included, has closed. */
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&cl->loop);
    for (size_t i = 0; i < cl->queued_count; i++) {
        net_msg_clear(&cl->queued[i]);
    }
    free(cl->queued);
    free(cl);
}

int net_call(const char *addr, net_tls *tls, const net_msg *req, uint32_t timeout_ms,
             net_msg *resp, char **peer_chain, char *errmsg)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    net_caller *cl = NULL;
    uint64_t now;
    int rv;

    memset(resp, 0, sizeof(*resp));
    rv = net_caller_open(addr, tls, timeout_ms, &cl, peer_chain, errmsg);
    if (rv != 0) {
        return rv;
    }
    /* One deadline covers the connection and the response. */
    now = uv_hrtime();
    rv = net_caller_call(cl, req, now < deadline ? (uint32_t)((deadline - now) / 1000000u) + 1 : 1,
                         resp, errmsg);
    net_caller_close(cl);
    if (rv != 0 && peer_chain != NULL) {
        free(*peer_chain);
        *peer_chain = NULL;
    }
    return rv;
}
