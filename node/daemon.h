/* The running node: one libuv loop that serves peers over TLS and the
 * operator over the control socket. A manager also owns the store and the
 * replicated log; a worker keeps a session with a manager. */
#ifndef SWARMPKI_NODE_DAEMON_H
#define SWARMPKI_NODE_DAEMON_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "ca/ca.h"
#include "net/net.h"
#include "node/conf.h"
#include "node/peers.h"
#include "node/replog.h"
#include "store/store.h"

#define DAEMON_ERRMSG_SIZE 256

/* How often workers send heartbeats unless SWARMPKI_HEARTBEAT_MS sets
 * another period, and how many may be missed before a worker counts as down. */
#define DAEMON_HEARTBEAT_MS 5000
#define DAEMON_MISSED_HEARTBEATS 3

/* A worker's session, as tracked by its manager. */
typedef struct session {
    char node_id[26];
    char hostname[256];
    uint64_t last_seen_ms; /* loop time, 0 when never seen */
    int ready;
    int recorded; /* STORE_STATUS_* last proposed to the log */
} session;

typedef struct session_table {
    session *slots;
    size_t cap; /* a power of two */
    size_t count;
} session_table;

/* One accepted connection, kept alive by the requests it still waits for. */
typedef struct peer {
    struct node_daemon *daemon;
    net_conn *conn; /* NULL once closed */
    net_peer identity;
    int refs;
} peer;

typedef struct worker_session worker_session;

typedef struct node_daemon {
    uv_loop_t *loop;
    char data_dir[PATH_MAX];
    node_conf conf;
    int ready_fd; /* -1 unless a parent waits for readiness */
    int stopping;
    int handles_started;
    int exit_status;
    uint32_t heartbeat_ms;

    /* This node's certificate chain, key and trust bundle, as PEM. */
    ca_buf cert_pem;
    ca_buf key_pem;
    ca_buf bundle_pem;
    ca_cert_info cert_info;

    net_tls *server_tls;
    net_tls *client_tls;
    net_server *server;  /* managers: the TLS listener */
    net_server *control; /* the control socket */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t status_timer;

    /* Manager state. */
    store *store;
    replog *log;
    struct peers *peers;
    store_cluster cluster; /* latest applied cluster record */
    int have_cluster;
    ca_signer *signer;
    session_table sessions;
    store_node *managers; /* manager records, as last applied */
    size_t manager_count;
    int member;           /* this manager is in the Raft configuration */
    int log_ready;        /* the log replayed what was committed before */
    int announced;        /* daemon_ready was called */
    uint64_t settling_since_ms; /* loop time start-up began waiting to settle */
    uint64_t leader_since_ms; /* loop time this node became leader, 0 otherwise */
    uint64_t started_ms;
    int transferring;     /* 1 while a stopping leader hands over, 2 after */
    uv_timer_t stop_timer;
    int status_scan_running;
    struct parked_relay *parked_relays; /* join responses waiting for their entry */

    /* Worker state. */
    worker_session *worker;
} node_daemon;

/* Runs the node stored in data_dir until it stops; returns the process exit
 * status. When ready_fd >= 0, writes "ok\n" to it once the node serves, or
 * one line of error text if start-up fails, then closes it. */
int daemon_run(const char *data_dir, int ready_fd);

/* Starts a clean stop: leaves the loop once every handle is closed. */
void daemon_stop(node_daemon *d);

/* Reports the end of start-up: status 0 once the node serves, else -1 with
 * a message. A failed start stops the node with exit status 1. */
void daemon_ready(node_daemon *d, int status, const char *errmsg);

/* Sends m on p's connection if it is still open; errors are logged. */
void daemon_reply(peer *p, net_msg *m);
void daemon_reply_error(peer *p, uint64_t id, int32_t code, const char *text);
void peer_ref(peer *p);
void peer_unref(peer *p);

/* Manager side: requests (manager.c) and the Raft member (manager_raft.c). */
int manager_start(node_daemon *d, char *errmsg);
void manager_handle(node_daemon *d, peer *p, net_msg *m);
void manager_tick(node_daemon *d);
void manager_stop(node_daemon *d);
void manager_free(node_daemon *d);
/* Starts a clean stop of a leader: hands leadership to another voter first.
 * Returns 1 when the stop waits for the transfer, 0 to stop at once. */
int manager_begin_stop(node_daemon *d);
/* Returns 1 if this manager leads; otherwise writes the no-leader or
 * forwarding situation into errmsg and returns 0. */
int manager_is_leader(node_daemon *d);
/* Writes "the cluster has no leader: N of M managers reachable ..." */
void manager_no_leader(node_daemon *d, char *out, size_t size);
/* Forwards m to the leader and relays its response to p; returns -1 after
 * sending p an error itself. */
int manager_forward(node_daemon *d, peer *p, net_msg *m);
/* Fills out with the advertised addresses of all managers; returns count. */
size_t manager_addresses(node_daemon *d, const char **out, size_t max);
/* Handles a heartbeat for the identity given (leader only). */
void manager_heartbeat(node_daemon *d, peer *p, net_msg *m, const net_peer *who);
/* Proposes status transitions and promotions; called every second. */
void manager_leader_duties(node_daemon *d);
/* Leader side of NET_MSG_MEMBER_REQ: probes the new manager, then adds it
 * as a learner; promotion follows once it has caught up. */
uint64_t manager_receive_raft(node_daemon *d, const net_msg *m, const char *sender);
void manager_member_request(node_daemon *d, peer *p, net_msg *m, const net_peer *who);

/* Sessions (sessions.c). */
session *sessions_find(session_table *t, const char *node_id);
session *sessions_upsert(session_table *t, const char *node_id);
void sessions_free(session_table *t);

/* Worker side (worker.c). */
int worker_start(node_daemon *d, char *errmsg);
void worker_stop(node_daemon *d);
/* Describes the session for `info`: manager address and state. */
void worker_describe(node_daemon *d, char *out, size_t size);

/* Control socket commands (control.c). */
void control_handle(node_daemon *d, peer *p, net_msg *m);

#endif
