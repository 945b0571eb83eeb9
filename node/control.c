/* The daemon's side of the control socket. The command line sends a
 * CONTROL_REQ whose list contains a command word and its already validated
 * arguments; the daemon responds with an exit status and the text to print.
 * Commands that read the tables run on a worker thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/daemon.h"
#include "node/log.h"
#include "node/util.h"

/* The largest part of a long response, well under NET_MAX_TEXT. A node is
 * one line of about 300 bytes in either format. */
#define CONTROL_PART_SIZE (512 * 1024)

typedef struct control_job {
    uv_work_t req;
    node_daemon *daemon;
    peer *peer;
    uint64_t id;
    int json;
    char inspect_id[64]; /* empty for node ls */
    store_node *nodes;
    size_t count;
    size_t cap;
    int status;
    char errmsg[STORE_ERRMSG_SIZE];
} control_job;

static void reply_text(peer *p, uint64_t id, int code, char *text)
{
    net_msg resp = {.type = NET_MSG_CONTROL_RESP, .id = id, .code = code, .text = text};
    daemon_reply(p, &resp);
}

static void reply_string(peer *p, uint64_t id, int code, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL) {
        daemon_reply_error(p, id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    reply_text(p, id, code, copy);
    free(copy);
}

/* Sends text of len bytes as the successful response to request id. Text
 * longer than one message is cut after a newline into parts of at most
 * CONTROL_PART_SIZE bytes, each sent with code NET_CONTROL_PART, and the
 * last part carries exit status 0. */
static void reply_parts(peer *p, uint64_t id, char *text, size_t len)
{
    while (len > CONTROL_PART_SIZE) {
        size_t cut = CONTROL_PART_SIZE;
        char saved;

        while (cut > 0 && text[cut - 1] != '\n') {
            cut--;
        }
        if (cut == 0) {
            cut = CONTROL_PART_SIZE; /* one line longer than a part */
        }
        saved = text[cut];
        text[cut] = '\0';
        reply_text(p, id, NET_CONTROL_PART, text);
        text[cut] = saved;
        text += cut;
        len -= cut;
    }
    reply_text(p, id, 0, text);
}

static int collect_node(const store_node *n, void *arg)
{
    control_job *job = arg;

    if (job->inspect_id[0] != '\0' && strcmp(job->inspect_id, n->id) != 0) {
        return 0;
    }
    if (job->count == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 16;
        store_node *grown = realloc(job->nodes, cap * sizeof(*grown));
        if (grown == NULL) {
            return STORE_ENOMEM;
        }
        job->nodes = grown;
        job->cap = cap;
    }
    job->nodes[job->count++] = *n;
    return 0;
}

static void read_nodes(uv_work_t *req)
{
    control_job *job = req->data;
    store_txn *txn;

    job->status = store_txn_begin(job->daemon->store, 0, &txn, job->errmsg);
    if (job->status != 0) {
        return;
    }
    job->status = store_node_each(txn, collect_node, job, job->errmsg);
    if (job->status == STORE_ENOMEM) {
        snprintf(job->errmsg, sizeof(job->errmsg), "list nodes: out of memory");
    }
    store_txn_abort(txn);
}

static const char *manager_status(node_daemon *d, const store_node *n);

/* Workers: the status the leader recorded in the log, the same on every
 * manager. Managers: whether this manager reaches them. */
static const char *node_status(node_daemon *d, const store_node *n)
{

    if (strcmp(n->id, d->conf.node_id) == 0) {
        return "ready";
    }
    if (n->role == STORE_ROLE_MANAGER) {
        return strcmp(manager_status(d, n), "unreachable") == 0 ? "down" : "ready";
    }
    return n->status == STORE_STATUS_READY ? "ready" : "down";
}

/* Leader, reachable or unreachable, as this manager observes the member; empty
 * for workers. */
static const char *manager_status(node_daemon *d, const store_node *n)
{
    uint64_t leader = d->log ? replog_leader(d->log) : 0;

    if (n->role != STORE_ROLE_MANAGER) {
        return "";
    }
    if (n->raft_id != 0 && n->raft_id == leader) {
        return "leader";
    }
    if (n->raft_id == d->conf.raft_id || peers_reachable(d->peers, n->raft_id)) {
        return "reachable";
    }
    return "unreachable";
}

static int format_json_node(node_daemon *d, util_sbuf *b, const store_node *n)
{
    char expiry[32];
    char created[32];
    int rv = 0;

    util_time_format(n->cert_not_after, expiry, sizeof(expiry));
    util_time_format(n->created, created, sizeof(created));
    rv |= util_sbuf_printf(b, "{\"id\": \"%s\", \"hostname\": ", n->id);
    rv |= util_sbuf_json_string(b, n->hostname);
    rv |= util_sbuf_printf(b,
                           ", \"role\": \"%s\", \"status\": \"%s\", \"self\": %s, "
                           "\"cert_serial\": \"%s\", \"cert_expiry\": \"%s\", "
                           "\"created\": \"%s\", \"manager_status\": \"%s\", "
                           "\"addr\": \"%s\"}",
                           n->role == STORE_ROLE_MANAGER ? "manager" : "worker",
                           node_status(d, n), strcmp(n->id, d->conf.node_id) == 0 ? "true" : "false",
                           n->serial, expiry, created, manager_status(d, n), n->addr);
    return rv;
}

static int format_nodes(control_job *job, util_sbuf *b)
{
    node_daemon *d = job->daemon;
    int rv = 0;

    if (job->json || job->inspect_id[0] != '\0') {
        int many = job->inspect_id[0] == '\0';
        rv |= util_sbuf_printf(b, many ? "[" : "");
        for (size_t i = 0; i < job->count; i++) {
            rv |= util_sbuf_printf(b, i ? ",\n " : "");
            rv |= format_json_node(d, b, &job->nodes[i]);
        }
        return rv | util_sbuf_printf(b, many ? "]\n" : "\n");
    }
    rv |= util_sbuf_printf(b, "%-27s %-20s %-8s %-6s %-11s %-40s %s\n", "ID", "HOSTNAME",
                           "ROLE", "STATUS", "MANAGER", "CERT SERIAL", "CERT EXPIRY");
    for (size_t i = 0; i < job->count; i++) {
        const store_node *n = &job->nodes[i];
        char expiry[32];
        util_time_format(n->cert_not_after, expiry, sizeof(expiry));
        rv |= util_sbuf_printf(b, "%s%s %-20s %-8s %-6s %-11s %-40s %s\n", n->id,
                               strcmp(n->id, d->conf.node_id) == 0 ? " *" : "  ", n->hostname,
                               n->role == STORE_ROLE_MANAGER ? "manager" : "worker",
                               node_status(d, n), manager_status(d, n), n->serial, expiry);
    }
    return rv;
}

static void nodes_read(uv_work_t *req, int status)
{
    control_job *job = req->data;
    util_sbuf b = {0};

    if (status != 0 || job->status != 0) {
        reply_string(job->peer, job->id, 1, job->status ? job->errmsg : "list nodes: cancelled");
    } else if (job->inspect_id[0] != '\0' && job->count == 0) {
        char text[128];
        snprintf(text, sizeof(text), "node %s not found; `swarmpki node ls` lists the nodes",
                 job->inspect_id);
        reply_string(job->peer, job->id, 1, text);
    } else if (format_nodes(job, &b) != 0) {
        reply_string(job->peer, job->id, 1, "format node list: out of memory");
    } else {
        reply_parts(job->peer, job->id, b.data, b.len);
    }
    util_sbuf_free(&b);
    peer_unref(job->peer);
    free(job->nodes);
    free(job);
}

static void start_node_read(node_daemon *d, peer *p, net_msg *m, int json, const char *inspect)
{
    control_job *job = calloc(1, sizeof(*job));

    if (job == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    job->daemon = d;
    job->peer = p;
    job->id = m->id;
    job->json = json;
    snprintf(job->inspect_id, sizeof(job->inspect_id), "%s", inspect ? inspect : "");
    job->req.data = job;
    peer_ref(p);
    if (uv_queue_work(d->loop, &job->req, read_nodes, nodes_read) != 0) {
        peer_unref(p);
        free(job);
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "could not queue the node list");
    }
}

static int format_raft(node_daemon *d, util_sbuf *b)
{
    const struct raft_config *c = replog_config(d->log);
    uint64_t leader = replog_leader(d->log);
    int rv = 0;

    rv |= util_sbuf_printf(b, "Raft:         term %llu, leader %s, commit %llu, applied %llu\n",
                           (unsigned long long)replog_term(d->log),
                           leader == 0 ? "none" : leader == d->conf.raft_id ? "this manager"
                           : peers_addr(d->peers, leader) ? peers_addr(d->peers, leader)
                                                          : "unknown",
                           (unsigned long long)replog_commit(d->log),
                           (unsigned long long)replog_applied(d->log));
    rv |= util_sbuf_printf(b, "Members:\n");
    for (size_t i = 0; i < c->n; i++) {
        uint64_t id = c->servers[i].id;
        int self = id == d->conf.raft_id;
        const char *addr = self ? d->conf.advertise_addr : peers_addr(d->peers, id);
        const char *node = self ? d->conf.node_id : peers_node_id(d->peers, id);
        rv |= util_sbuf_printf(b, "  %016llx  %-25s  %-21s  %-7s  %s%s\n", (unsigned long long)id,
                               node ? node : "-", addr ? addr : "-",
                               c->servers[i].role == RAFT_VOTER ? "voter" : "learner",
                               self || peers_reachable(d->peers, id) ? "reachable" : "unreachable",
                               id == leader ? ", leader" : "");
    }
    return rv;
}

static void info(node_daemon *d, peer *p, uint64_t id)
{
    util_sbuf b = {0};
    char expiry[32];
    char manager_state[192] = "";
    int rv = 0;

    util_time_format(d->cert_info.not_after, expiry, sizeof(expiry));
    rv |= util_sbuf_printf(&b, "Cluster ID:   %s\nNode ID:      %s\nRole:         %s\n",
                           d->conf.cluster_id, d->conf.node_id, conf_role_name(d->conf.role));
    if (d->conf.role == NODE_ROLE_MANAGER) {
        char lifetime[32];
        util_duration_format(d->have_cluster ? d->cluster.cert_expiry : 0, lifetime,
                             sizeof(lifetime));
        rv |= util_sbuf_printf(&b, "Manager:      %s (this node)\nListen:       %s\n",
                               d->conf.advertise_addr, d->conf.listen_addr);
        rv |= util_sbuf_printf(&b, "Cert expiry for new certificates: %s\n", lifetime);
        rv |= format_raft(d, &b);
    } else {
        worker_describe(d, manager_state, sizeof(manager_state));
        rv |= util_sbuf_printf(&b, "Manager:      %s\n", manager_state);
    }
    rv |= util_sbuf_printf(&b, "Certificate:  serial %s, expires %s\n", d->cert_info.serial,
                           expiry);
    if (rv != 0) {
        daemon_reply_error(p, id, NET_STATUS_INTERNAL, "out of memory");
    } else {
        reply_text(p, id, 0, b.data);
    }
    util_sbuf_free(&b);
}

typedef struct pending_reply {
    peer *peer;
    uint64_t id;
    int64_t expiry;
} pending_reply;

static void expiry_done(void *arg, int status, const char *errmsg, apply_result *result)
{
    pending_reply *r = arg;
    char lifetime[32];

    if (status != 0) {
        reply_string(r->peer, r->id, 1, errmsg);
    } else if (result->status != APPLY_OK) {
        reply_string(r->peer, r->id, 1, apply_status_text(result->status));
    } else {
        util_duration_format(r->expiry, lifetime, sizeof(lifetime));
        log_event(LOG_INFO, "certificate expiry updated", "cert_expiry=%s", lifetime);
        reply_string(r->peer, r->id, 0, "");
    }
    peer_unref(r->peer);
    free(r);
}

static void update_expiry(node_daemon *d, peer *p, uint64_t id, const char *value)
{
    store_command cmd = {.type = STORE_CMD_SET_EXPIRY};
    char errmsg[STORE_ERRMSG_SIZE];
    pending_reply *r;
    char *end;
    long long seconds = strtoll(value, &end, 10);

    /* The command line checked the value; a daemon checks again. */
    if (*end != '\0' || seconds < CA_MIN_CERT_EXPIRY) {
        reply_string(p, id, 1, "certificate expiry must be at least 1h");
        return;
    }
    cmd.cert_expiry = seconds;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        daemon_reply_error(p, id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    r->peer = p;
    r->id = id;
    r->expiry = seconds;
    peer_ref(p);
    if (replog_propose(d->log, &cmd, expiry_done, r, errmsg) != 0) {
        peer_unref(p);
        free(r);
        reply_string(p, id, 1, errmsg);
    }
}

static void join_token(node_daemon *d, peer *p, uint64_t id, const char *role)
{
    const char *token = strcmp(role, "manager") == 0 ? d->cluster.manager_token
                                                     : d->cluster.worker_token;
    reply_string(p, id, 0, token);
}

/* Commands that only a manager can serve. */
static int manager_command(node_daemon *d, peer *p, net_msg *m, const char *cmd)
{
    const char *arg = m->list_len > 1 ? m->list[1] : "";

    if (strcmp(cmd, "node-ls") == 0) {
        start_node_read(d, p, m, strcmp(arg, "json") == 0, NULL);
    } else if (strcmp(cmd, "node-inspect") == 0 && m->list_len > 1) {
        start_node_read(d, p, m, 1, arg);
    } else if (strcmp(cmd, "join-token") == 0 && m->list_len > 1) {
        join_token(d, p, m->id, arg);
    } else if (strcmp(cmd, "update-cert-expiry") == 0 && m->list_len > 1) {
        if (manager_is_leader(d)) {
            update_expiry(d, p, m->id, arg);
        } else {
            manager_forward(d, p, m);
        }
    } else {
        return -1;
    }
    return 0;
}

void control_handle(node_daemon *d, peer *p, net_msg *m)
{
    const char *cmd;

    if (m->type != NET_MSG_CONTROL_REQ || m->list_len == 0) {
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST, "expected a control request");
        return;
    }
    cmd = m->list[0];
    if (strcmp(cmd, "info") == 0) {
        info(d, p, m->id);
        return;
    }
    if (strcmp(cmd, "stop") == 0) {
        log_event(LOG_INFO, "stop requested on the control socket", NULL);
        reply_string(p, m->id, 0, "");
        daemon_stop(d);
        return;
    }
    if (d->conf.role != NODE_ROLE_MANAGER) {
        reply_string(p, m->id, 1,
                     "this node is a worker; run this command against a manager's data "
                     "directory");
        return;
    }
    if (!d->have_cluster || d->stopping) {
        reply_string(p, m->id, 1, "the manager is not ready; try again in a moment");
        return;
    }
    if (manager_command(d, p, m, cmd) != 0) {
        log_event(LOG_WARN, "unknown control command", "command=%s", log_quote(cmd));
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST, "unknown control command");
    }
}
