/* The worker's session with a manager: a mutually authenticated
 * connection carrying heartbeats. When the connection fails, the worker
 * reconnects with exponential backoff, moving through the known managers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include "node/daemon.h"
#include "node/log.h"
#include "node/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 10000

struct worker_session {
    node_daemon *daemon;
    net_conn *conn;
    int connected;
    int manager_index;
    uint32_t backoff_ms;
    uint32_t period_ms;
    uint64_t last_response_ms;
    uint64_t next_id;
    uv_timer_t timer;
    char hostname[256];
};

static void connect_manager(worker_session *w);

static void schedule(worker_session *w, uint64_t delay_ms, uint64_t repeat_ms);

static void send_heartbeat(worker_session *w)
{
    net_msg m = {.type = NET_MSG_HEARTBEAT_REQ, .id = ++w->next_id, .hostname = w->hostname};
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (net_conn_send(w->conn, &m, errmsg) != 0) {
        log_event(LOG_WARN, "sending heartbeat failed", "manager=%s error=%s",
                  w->daemon->conf.managers[w->manager_index], log_quote(errmsg));
        net_conn_close(w->conn);
    }
}

static void on_timer(uv_timer_t *timer)
{
    worker_session *w = timer->data;
    uint64_t now = uv_now(w->daemon->loop);

    if (w->conn == NULL) {
        connect_manager(w);
        return;
    }
    if (!w->connected) {
        return;
    }
    if (now - w->last_response_ms > (uint64_t)w->period_ms * DAEMON_MISSED_HEARTBEATS) {
        log_event(LOG_WARN, "heartbeat responses timed out; reconnecting", "manager=%s",
                  w->daemon->conf.managers[w->manager_index]);
        net_conn_close(w->conn);
        return;
    }
    send_heartbeat(w);
}

static void schedule(worker_session *w, uint64_t delay_ms, uint64_t repeat_ms)
{
    uv_timer_start(&w->timer, on_timer, delay_ms, repeat_ms);
}

static void on_connect(net_conn *c, int status, const char *errmsg, void *data)
{
    worker_session *w = data;

    if (status != 0) {
        log_event(LOG_WARN, "connecting to manager failed", "manager=%s error=%s",
                  w->daemon->conf.managers[w->manager_index], log_quote(errmsg));
        return;
    }
    w->connected = 1;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->last_response_ms = uv_now(w->daemon->loop);
    log_event(LOG_INFO, "session established", "manager=%s",
              w->daemon->conf.managers[w->manager_index]);
    send_heartbeat(w);
    schedule(w, w->period_ms, w->period_ms);
}

/* Writes node.conf on a worker thread, so a restarted worker can reach every
 * manager, not just the one it joined through. */
typedef struct conf_write {
    uv_work_t req;
    char data_dir[PATH_MAX];
    node_conf conf;
    int status;
    char errmsg[UTIL_ERRMSG_SIZE];
} conf_write;

static void write_conf(uv_work_t *req)
{
    conf_write *cw = req->data;

    cw->status = conf_save(cw->data_dir, &cw->conf, cw->errmsg);
}

static void conf_written(uv_work_t *req, int status)
{
    conf_write *cw = req->data;

    if (status != 0 || cw->status != 0) {
        log_event(LOG_WARN, "saving the manager list failed", "error=%s",
                  log_quote(cw->status ? cw->errmsg : "cancelled"));
    }
    free(cw);
}

static void save_conf(worker_session *w)
{
    conf_write *cw = calloc(1, sizeof(*cw));

    if (cw == NULL) {
        return;
    }
    snprintf(cw->data_dir, sizeof(cw->data_dir), "%s", w->daemon->data_dir);
    cw->conf = w->daemon->conf;
    cw->req.data = cw;
    if (uv_queue_work(w->daemon->loop, &cw->req, write_conf, conf_written) != 0) {
        free(cw);
    }
}

static void learn_managers(worker_session *w, const net_msg *m)
{
    node_conf *conf = &w->daemon->conf;
    int count = (int)(m->list_len < CONF_MAX_MANAGERS ? m->list_len : CONF_MAX_MANAGERS);
    int changed = count != conf->manager_count;

    if (count == 0) {
        return;
    }
    for (int i = 0; i < count && !changed; i++) {
        changed = strcmp(conf->managers[i], m->list[i]) != 0;
    }
    if (!changed) {
        return;
    }
    /* Keep talking to the current manager: find it in the new list. */
    const char *current = conf->managers[w->manager_index];
    int index = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(m->list[i], current) == 0) {
            index = i;
        }
    }
    for (int i = 0; i < count; i++) {
        snprintf(conf->managers[i], CONF_ADDR_SIZE, "%s", m->list[i]);
    }
    conf->manager_count = count;
    w->manager_index = index;
    log_event(LOG_INFO, "manager list updated", "managers=%d", count);
    save_conf(w);
}

static void on_msg(net_conn *c, net_msg *m, void *data)
{
    worker_session *w = data;

    if (m->type == NET_MSG_HEARTBEAT_RESP) {
        w->last_response_ms = uv_now(w->daemon->loop);
        if (m->period_ms >= 100 && m->period_ms != w->period_ms) {
            w->period_ms = m->period_ms;
            schedule(w, w->period_ms, w->period_ms);
        }
        learn_managers(w, m);
    } else if (m->type == NET_MSG_ERROR) {
        log_event(LOG_WARN, "manager rejected the session", "manager=%s code=%d error=%s",
                  w->daemon->conf.managers[w->manager_index], m->code, log_quote(m->text));
    }
    net_msg_clear(m);
}

static void timer_closed(uv_handle_t *handle)
{
    worker_session *w = handle->data;
    node_daemon *d = w->daemon;

    free(w);
    d->worker = NULL;
}

/* The timer is closed last, once the connection is gone, so that no
 * callback can see a freed session. */
static void close_timer(worker_session *w)
{
    uv_close((uv_handle_t *)&w->timer, timer_closed);
}

static void on_close(net_conn *c, int status, const char *reason, void *data)
{
    worker_session *w = data;
    uint32_t jitter;

    if (w->connected && w->daemon->stopping) {
        log_event(LOG_INFO, "session closed", "manager=%s",
                  w->daemon->conf.managers[w->manager_index]);
    } else if (w->connected) {
        log_event(LOG_WARN, "session lost", "manager=%s reason=%s",
                  w->daemon->conf.managers[w->manager_index], log_quote(reason ? reason : "closed"));
    }
    w->conn = NULL;
    w->connected = 0;
    if (w->daemon->stopping) {
        close_timer(w);
        return;
    }

    /* Back off exponentially, with up to 25% jitter so that many workers
     * of a restarted manager do not reconnect in lockstep. */
    jitter = (uint32_t)(rand() % (int)(w->backoff_ms / 4 + 1));
    schedule(w, w->backoff_ms + jitter, 0);
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
    w->manager_index = (w->manager_index + 1) % w->daemon->conf.manager_count;
}

static void connect_manager(worker_session *w)
{
    static const net_conn_cb callbacks = {on_connect, on_msg, on_close};
    node_daemon *d = w->daemon;
    const char *addr = d->conf.managers[w->manager_index];
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (net_connect(d->loop, addr, d->client_tls, CONNECT_TIMEOUT_MS, &callbacks, w, &w->conn,
                    errmsg) != 0) {
        log_event(LOG_WARN, "connecting to manager failed", "manager=%s error=%s", addr,
                  log_quote(errmsg));
        w->conn = NULL;
        on_close(NULL, -1, errmsg, w);
    }
}

int worker_start(node_daemon *d, char *errmsg)
{
    worker_session *w;

    if (d->conf.manager_count == 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "%s/node.conf lists no manager address",
                 d->data_dir);
        return -1;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "start worker session: out of memory");
        return -1;
    }
    w->daemon = d;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->period_ms = d->heartbeat_ms;
    if (gethostname(w->hostname, sizeof(w->hostname) - 1) != 0) {
        snprintf(w->hostname, sizeof(w->hostname), "unknown");
    }
    uv_timer_init(d->loop, &w->timer);
    w->timer.data = w;
    d->worker = w;
    connect_manager(w);
    return 0;
}

void worker_stop(node_daemon *d)
{
    worker_session *w = d->worker;

    if (w == NULL) {
        return;
    }
    if (w->conn != NULL) {
        net_conn_close(w->conn);
    } else {
        close_timer(w);
    }
}

void worker_describe(node_daemon *d, char *out, size_t size)
{
    worker_session *w = d->worker;

    if (w == NULL) {
        snprintf(out, size, "%s (stopped)", d->conf.managers[0]);
        return;
    }
    snprintf(out, size, "%s (%s)", d->conf.managers[w->manager_index],
             w->connected ? "connected" : "reconnecting");
}
