/* Start-up, serving and clean stop of a node. */
#include "node/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "node/log.h"
#include "node/util.h"

#define PEM_MAX (256 * 1024)
#define STATUS_CHECK_MS 1000

void peer_ref(peer *p)
{
    p->refs++;
}

void peer_unref(peer *p)
{
    if (--p->refs == 0) {
        free(p);
    }
}

void daemon_reply(peer *p, net_msg *m)
{
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (p->conn == NULL) {
        return;
    }
    if (net_conn_send(p->conn, m, errmsg) != 0) {
        log_event(LOG_WARN, "sending a response failed", "peer=%s error=%s", p->identity.addr,
                  log_quote(errmsg));
        net_conn_close(p->conn);
    }
}

void daemon_reply_error(peer *p, uint64_t id, int32_t code, const char *text)
{
    net_msg m = {0};

    if (net_msg_error(&m, id, code, text) == 0) {
        daemon_reply(p, &m);
    }
    net_msg_clear(&m);
}

/* ---- connections ---- */

static void *on_accept(net_server *s, net_conn *c, void *data)
{
    node_daemon *d = data;
    peer *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        log_event(LOG_ERROR, "out of memory accepting a connection", NULL);
        net_conn_close(c);
        return NULL;
    }
    p->daemon = d;
    p->conn = c;
    p->refs = 1;
    net_conn_peer(c, &p->identity);
    return p;
}

static void on_peer_msg(net_conn *c, net_msg *m, void *conn_data)
{
    peer *p = conn_data;

    if (p != NULL) {
        manager_handle(p->daemon, p, m);
    }
    net_msg_clear(m);
}

static void on_control_msg(net_conn *c, net_msg *m, void *conn_data)
{
    peer *p = conn_data;

    if (p != NULL) {
        control_handle(p->daemon, p, m);
    }
    net_msg_clear(m);
}

static void on_peer_close(net_conn *c, int status, const char *reason, void *conn_data)
{
    peer *p = conn_data;

    if (p == NULL) {
        return;
    }
    if (status != 0 && status != NET_ECLOSED) {
        log_event(LOG_WARN, "connection closed", "peer=%s cn=%s reason=%s", p->identity.addr,
                  log_quote(p->identity.common_name), log_quote(reason));
    }
    p->conn = NULL;
    peer_unref(p);
}

static void on_reject(net_server *s, const char *peer_addr, const char *reason, void *data)
{
    log_event(LOG_WARN, "connection rejected", "peer=%s reason=%s", peer_addr,
              log_quote(reason));
}

/* ---- start-up ---- */

/* Takes an exclusive lock on swarmpki.pid and writes this process's id. */
static int lock_pid_file(const char *data_dir, int *fd_out, char *errmsg)
{
    char path[PATH_MAX + 16];
    char text[32];
    int fd;

    snprintf(path, sizeof(path), "%s/swarmpki.pid", data_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = read(fd, text, sizeof(text) - 1);
        text[n > 0 ? n : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        snprintf(errmsg, DAEMON_ERRMSG_SIZE,
                 "another swarmpki process (pid %s) is running with data directory %s; stop "
                 "it with `swarmpki stop --data-dir %s`",
                 text[0] ? text : "unknown", data_dir, data_dir);
        close(fd);
        return -1;
    }
    snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, strlen(text), 0) < 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static int read_pem(node_daemon *d, const char *name, ca_buf *out, char *errmsg)
{
    char path[PATH_MAX + 64];
    int rv;

    snprintf(path, sizeof(path), "%s/certificates/%s", d->data_dir, name);
    rv = util_file_read(path, PEM_MAX, &out->data, &out->len, errmsg);
    if (rv == -2) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "%s is missing; the data directory is incomplete",
                 path);
    }
    return rv == 0 ? 0 : -1;
}

/* Loads and cross-checks this node's certificate, key and trust bundle. */
static int load_identity(node_daemon *d, char *errmsg)
{
    char path[PATH_MAX + 64];
    char why[CA_ERRMSG_SIZE] = "";

    if (read_pem(d, "swarm-node.crt", &d->cert_pem, errmsg) != 0 ||
        read_pem(d, "swarm-node.key", &d->key_pem, errmsg) != 0 ||
        read_pem(d, "swarm-root-ca.crt", &d->bundle_pem, errmsg) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/certificates/swarm-node.crt", d->data_dir);
    if (ca_cert_read(d->cert_pem.data, d->cert_pem.len, &d->cert_info, why) != 0 ||
        ca_key_matches_cert(d->key_pem.data, d->key_pem.len, d->cert_pem.data, d->cert_pem.len,
                            why) != 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "%s: %s", path, why);
        return -1;
    }
    if (strcmp(d->cert_info.common_name, d->conf.node_id) != 0 ||
        strcmp(d->cert_info.org, d->conf.cluster_id) != 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE,
                 "%s is for node %s of cluster %s, but node.conf names node %s of cluster %s",
                 path, d->cert_info.common_name, d->cert_info.org, d->conf.node_id,
                 d->conf.cluster_id);
        return -1;
    }
    if (ca_verify_chain(d->cert_pem.data, d->cert_pem.len, d->bundle_pem.data, d->bundle_pem.len,
                        util_now(), NULL, why) != 0) {
        /* Still start: an operator needs the node up to see and fix this. */
        log_event(LOG_WARN, "this node's certificate does not verify", "file=%s error=%s", path,
                  log_quote(why));
    }
    return 0;
}

static int start_servers(node_daemon *d, char *errmsg)
{
    static const net_server_cb peer_cb = {on_accept, on_peer_msg, on_peer_close, on_reject};
    static const net_server_cb control_cb = {on_accept, on_control_msg, on_peer_close,
                                             on_reject};
    char path[PATH_MAX + 16];
    int is_manager = d->conf.role == NODE_ROLE_MANAGER;

    if (net_tls_new(is_manager, d->cert_pem.data, d->key_pem.data, d->bundle_pem.data,
                    is_manager ? &d->server_tls : &d->client_tls, errmsg) != 0) {
        return -1;
    }
    if (is_manager && d->conf.listen_addr[0] == '\0') {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "%s/node.conf has no listen_addr", d->data_dir);
        return -1;
    }
    if (is_manager && net_server_start(d->loop, d->conf.listen_addr, d->server_tls, &peer_cb,
                                       d, &d->server, errmsg) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/control.sock", d->data_dir);
    return net_server_start(d->loop, path, NULL, &control_cb, d, &d->control, errmsg);
}

/* Writes the start-up result to the parent of a detached node. The parent
 * reads until the pipe closes. After a failure the pipe stays open until
 * daemon_run has removed the pid file, because a parent that reports the
 * failure must find the data directory free again. */
static void tell_parent(node_daemon *d, const char *text, int close_now)
{
    if (d->ready_fd < 0) {
        return;
    }
    if (write(d->ready_fd, text, strlen(text)) < 0) {
        /* The parent went away; nothing to tell. */
    }
    if (close_now) {
        close(d->ready_fd);
        d->ready_fd = -1;
    }
}

void daemon_ready(node_daemon *d, int status, const char *errmsg)
{
    char line[DAEMON_ERRMSG_SIZE + 2];

    if (status != 0) {
        log_event(LOG_ERROR, "start failed", "error=%s", log_quote(errmsg));
        snprintf(line, sizeof(line), "%s\n", errmsg);
        tell_parent(d, line, 0);
        d->exit_status = 1;
        daemon_stop(d);
        return;
    }
    log_event(LOG_INFO, "node is ready", "cluster=%s listen=%s", d->conf.cluster_id,
              d->conf.role == NODE_ROLE_MANAGER ? d->conf.listen_addr : "-");
    tell_parent(d, "ok\n", 1);
}

/* ---- stop ---- */

void daemon_stop(node_daemon *d)
{
    if (d->stopping) {
        return;
    }
    /* A leader hands over first; finishing the transfer calls this again. */
    if (d->conf.role == NODE_ROLE_MANAGER && d->exit_status == 0 && manager_begin_stop(d)) {
        return;
    }
    d->stopping = 1;
    log_event(LOG_INFO, "stopping", NULL);
    if (d->handles_started) {
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->status_timer, NULL);
    }
    if (d->server != NULL) {
        net_server_stop(d->server, NULL, NULL);
        d->server = NULL;
    }
    if (d->control != NULL) {
        net_server_stop(d->control, NULL, NULL);
        d->control = NULL;
    }
    worker_stop(d);
    manager_stop(d);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    node_daemon *d = handle->data;

    log_event(LOG_INFO, "signal received", "signal=%d", signum);
    daemon_stop(d);
}

static void on_status_timer(uv_timer_t *timer)
{
    node_daemon *d = timer->data;

    if (d->conf.role == NODE_ROLE_MANAGER) {
        manager_tick(d);
    }
}

static uint32_t heartbeat_period(void)
{
    const char *text = getenv("SWARMPKI_HEARTBEAT_MS");
    long value = text ? strtol(text, NULL, 10) : 0;

    return value >= 100 && value <= 600000 ? (uint32_t)value : DAEMON_HEARTBEAT_MS;
}

static int start(node_daemon *d, char *errmsg)
{
    int rv = conf_load(d->data_dir, &d->conf, errmsg);

    if (rv == -2) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE,
                 "%s holds no swarmpki node (node.conf is missing); create one with "
                 "`swarmpki init` or `swarmpki join`",
                 d->data_dir);
        return -1;
    }
    if (rv != 0 || load_identity(d, errmsg) != 0) {
        return -1;
    }
    log_set_identity(d->conf.node_id, conf_role_name(d->conf.role));

    uv_signal_init(d->loop, &d->sigterm);
    uv_signal_init(d->loop, &d->sigint);
    uv_timer_init(d->loop, &d->status_timer);
    d->sigterm.data = d->sigint.data = d->status_timer.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_timer_start(&d->status_timer, on_status_timer, STATUS_CHECK_MS, STATUS_CHECK_MS);
    d->handles_started = 1;

    if (d->conf.role == NODE_ROLE_MANAGER) {
        /* Listen first: Raft traffic and the leader's reachability check
         * for a new manager arrive before it is ready. */
        if (start_servers(d, errmsg) != 0) {
            return -1;
        }
        return manager_start(d, errmsg);
    }
    if (start_servers(d, errmsg) != 0 || worker_start(d, errmsg) != 0) {
        return -1;
    }
    daemon_ready(d, 0, NULL);
    return 0;
}

static void free_daemon(node_daemon *d)
{
    manager_free(d);
    net_tls_free(d->server_tls);
    net_tls_free(d->client_tls);
    ca_buf_free(&d->cert_pem);
    ca_buf_free(&d->key_pem);
    ca_buf_free(&d->bundle_pem);
    free(d);
}

int daemon_run(const char *data_dir, int ready_fd)
{
    node_daemon *d = calloc(1, sizeof(*d));
    char errmsg[DAEMON_ERRMSG_SIZE] = "";
    char path[PATH_MAX + 16];
    uv_loop_t loop;
    int pid_fd = -1;
    int status;

    if (d == NULL || uv_loop_init(&loop) != 0) {
        fprintf(stderr, "swarmpki: out of memory\n");
        free(d);
        return 1;
    }
    snprintf(d->data_dir, sizeof(d->data_dir), "%s", data_dir);
    d->loop = &loop;
    loop.data = d;
    d->ready_fd = ready_fd;
    d->heartbeat_ms = heartbeat_period();
    signal(SIGPIPE, SIG_IGN);

    if (lock_pid_file(data_dir, &pid_fd, errmsg) != 0 || start(d, errmsg) != 0) {
        daemon_ready(d, -1, errmsg);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    status = d->exit_status;
    ready_fd = d->ready_fd;
    log_event(LOG_INFO, "stopped", "status=%d", status);

    if (uv_loop_close(&loop) != 0) {
        log_event(LOG_WARN, "handles were still open at exit", NULL);
    }
    if (pid_fd >= 0) {
        /* Only the process that holds the lock owns these files. */
        snprintf(path, sizeof(path), "%s/control.sock", data_dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/swarmpki.pid", data_dir);
        unlink(path);
        close(pid_fd);
    }
    if (ready_fd >= 0) {
        close(ready_fd);
    }
    free_daemon(d);
    return status;
}
