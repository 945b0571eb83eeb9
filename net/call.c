/* net_call: one request and its response on a private loop, for the command
 * line. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct call {
    const char *addr;
    const net_msg *req;
    net_msg *resp;
    char **peer_chain;
    uint32_t timeout_ms;
    uv_timer_t timer;
    net_conn *conn;
    bool answered;
    int status; /* first failure; 0 while none */
    char errmsg[NET_ERRMSG_SIZE];
} call;

static void call_fail(call *st, int status, const char *reason)
{
    if (st->answered || st->status != 0) {
        return;
    }
    st->status = status;
    snprintf(st->errmsg, sizeof(st->errmsg), "%s", reason);
}

static void on_connect(net_conn *c, int status, const char *errmsg, void *data)
{
    call *st = data;
    char err[NET_ERRMSG_SIZE];

    if (status != 0) {
        call_fail(st, status, errmsg);
        return;
    }
    if (st->peer_chain != NULL) {
        *st->peer_chain = net_conn_peer_chain(c);
    }
    status = net_conn_send(c, st->req, err);
    if (status != 0) {
        call_fail(st, status, err);
        net_conn_close(c);
    }
}

static void on_msg(net_conn *c, net_msg *m, void *data)
{
    call *st = data;

    if (st->answered) {
        net_msg_clear(m);
        return;
    }
    *st->resp = *m;
    memset(m, 0, sizeof(*m));
    st->answered = true;
    net_conn_close(c);
}

static void on_close(net_conn *c, int status, const char *reason, void *data)
{
    call *st = data;

    call_fail(st, status != 0 ? status : NET_ECLOSED, reason);
    st->conn = NULL;
    uv_close((uv_handle_t *)&st->timer, NULL);
}

static void on_deadline(uv_timer_t *timer)
{
    call *st = timer->data;
    char seconds[16];
    char reason[NET_ERRMSG_SIZE];

    net__format_seconds(st->timeout_ms, seconds, sizeof(seconds));
    snprintf(reason, sizeof(reason),
             "no answer from %s within %s s; check that the node runs", st->addr,
             seconds);
    call_fail(st, NET_ETIMEOUT, reason);
    if (st->conn != NULL) {
        net_conn_close(st->conn);
    }
}

int net_call(const char *addr, net_tls *tls, const net_msg *req, uint32_t timeout_ms,
             net_msg *resp, char **peer_chain, char *errmsg)
{
    static const net_conn_cb callbacks = {on_connect, on_msg, on_close};
    call st;
    uv_loop_t loop;
    int rv;

    memset(&st, 0, sizeof(st));
    st.addr = addr;
    st.req = req;
    st.resp = resp;
    st.peer_chain = peer_chain;
    st.timeout_ms = timeout_ms;
    memset(resp, 0, sizeof(*resp));
    if (peer_chain != NULL) {
        *peer_chain = NULL;
    }
    rv = uv_loop_init(&loop);
    if (rv != 0) {
        return net__fail(errmsg, NET_EIO, "cannot create an event loop: %s",
                         uv_strerror(rv));
    }
    uv_timer_init(&loop, &st.timer);
    st.timer.data = &st;

    rv = net_connect(&loop, addr, tls, timeout_ms, &callbacks, &st, &st.conn, errmsg);
    if (rv == 0) {
        uv_timer_start(&st.timer, on_deadline, timeout_ms, 0);
    } else {
        uv_close((uv_handle_t *)&st.timer, NULL);
    }

    /* Runs until every handle, the connection's included, has closed. */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rv != 0) {
        return rv;
    }
    if (!st.answered) {
        if (peer_chain != NULL) {
            free(*peer_chain);
            *peer_chain = NULL;
        }
        return net__fail(errmsg, st.status, "%s", st.errmsg);
    }
    return 0;
}
