/* A TLS listener on its own thread, serving a joining manager's key until
 * the join response has arrived. */
#include "node/join_listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ca/ca.h"
#include "net/net.h"
#include "node/util.h"

struct join_listener {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t stop;
    net_server *server;
};

static void *on_accept(net_server *s, net_conn *c, void *data)
{
    (void)s;
    (void)c;
    return data;
}

/* The leader only completes the handshake, so any message is dropped. */
static void on_msg(net_conn *c, net_msg *m, void *conn_data)
{
    (void)c;
    (void)conn_data;
    net_msg_clear(m);
}

static void on_close(net_conn *c, int status, const char *reason, void *conn_data)
{
    (void)c;
    (void)status;
    (void)reason;
    (void)conn_data;
}

static void on_reject(net_server *s, const char *peer_addr, const char *reason, void *data)
{
    (void)s;
    (void)peer_addr;
    (void)reason;
    (void)data;
}

static void on_server_stopped(void *data)
{
    (void)data;
}

static void on_stop(uv_async_t *async)
{
    join_listener *l = async->data;

    net_server_stop(l->server, on_server_stopped, l);
    uv_close((uv_handle_t *)&l->stop, NULL);
}

static void run_loop(void *arg)
{
    join_listener *l = arg;

    uv_run(&l->loop, UV_RUN_DEFAULT);
}

int join_listener_start(const char *listen_addr, const char *key_pem, size_t key_len,
                        const char *bundle_pem, join_listener **out, char *errmsg)
{
    static const net_server_cb callbacks = {on_accept, on_msg, on_close, on_reject};
    join_listener *l = calloc(1, sizeof(*l));
    char why[NET_ERRMSG_SIZE] = "";
    ca_buf cert = {0};
    net_tls *tls = NULL;
    int rv;

    *out = NULL;
    if (l == NULL || uv_loop_init(&l->loop) != 0) {
        free(l);
        snprintf(errmsg, JOIN_LISTENER_ERRMSG_SIZE, "cannot create an event loop");
        return -1;
    }
    rv = ca_join_cert_create(key_pem, key_len, util_now(), &cert, why);
    rv = rv ? rv : net_tls_new(1, cert.data, key_pem, bundle_pem, &tls, why);
    rv = rv ? rv : net_server_start(&l->loop, listen_addr, tls, &callbacks, l, &l->server, why);
    net_tls_free(tls);
    ca_buf_free(&cert);
    if (rv != 0) {
        snprintf(errmsg, JOIN_LISTENER_ERRMSG_SIZE, "cannot listen on %s during the join: %s",
                 listen_addr, why);
        uv_run(&l->loop, UV_RUN_DEFAULT);
        uv_loop_close(&l->loop);
        free(l);
        return -1;
    }
    uv_async_init(&l->loop, &l->stop, on_stop);
    l->stop.data = l;
    if (uv_thread_create(&l->thread, run_loop, l) != 0) {
        /* Nothing runs the loop yet, so this thread may stop it. */
        on_stop(&l->stop);
        uv_run(&l->loop, UV_RUN_DEFAULT);
        uv_loop_close(&l->loop);
        free(l);
        snprintf(errmsg, JOIN_LISTENER_ERRMSG_SIZE, "cannot start a thread for the listener");
        return -1;
    }
    *out = l;
    return 0;
}

void join_listener_stop(join_listener *l)
{
    if (l == NULL) {
        return;
    }
    uv_async_send(&l->stop);
    uv_thread_join(&l->thread);
    uv_loop_close(&l->loop);
    free(l);
}
