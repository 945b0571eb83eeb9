/* The manager's side of the peer protocol: trust bundle, joins and
 * heartbeats. Joins are signed here on the loop thread and recorded through
 * the replicated log; the response is sent once the entry is applied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/daemon.h"
#include "node/log.h"
#include "node/util.h"

typedef struct join_request {
    node_daemon *daemon;
    peer *peer;
    uint64_t id;
    int role;
} join_request;

static const char *role_ou(int role)
{
    return role == STORE_ROLE_MANAGER ? CA_ROLE_MANAGER_OU : CA_ROLE_WORKER_OU;
}

static const char *role_name(int role)
{
    return role == STORE_ROLE_MANAGER ? "manager" : "worker";
}

/* Checks that the peer's certificate belongs to a node of this cluster
 * whose role may make the request. */
static int authorize(node_daemon *d, peer *p, int manager_only, uint64_t id)
{
    const net_peer *who = &p->identity;
    const char *why = NULL;

    if (!who->has_cert) {
        why = "this request needs a node certificate";
    } else if (strcmp(who->org, d->conf.cluster_id) != 0) {
        why = "the certificate belongs to another cluster";
    } else if (manager_only && strcmp(who->org_unit, CA_ROLE_MANAGER_OU) != 0) {
        why = "this request needs a manager certificate";
    } else if (strlen(who->common_name) != CA_ID_LEN) {
        why = "the certificate's common name is not a node id";
    } else if (strcmp(who->org_unit, CA_ROLE_MANAGER_OU) != 0 &&
               strcmp(who->org_unit, CA_ROLE_WORKER_OU) != 0) {
        why = "the certificate has no node role";
    }
    /* TODO: reject certificates of removed nodes once node removal exists. */
    if (why == NULL) {
        return 0;
    }
    log_event(LOG_WARN, "request rejected", "peer=%s cn=%s reason=%s", who->addr,
              log_quote(who->common_name), log_quote(why));
    daemon_reply_error(p, id, NET_STATUS_DENIED, why);
    return -1;
}

static void handle_bundle(node_daemon *d, peer *p, net_msg *m)
{
    net_msg resp = {.type = NET_MSG_BUNDLE_RESP, .id = m->id};

    resp.bundle_pem = strdup(d->cluster.bundle_pem);
    if (resp.bundle_pem == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    daemon_reply(p, &resp);
    net_msg_clear(&resp);
}

/* Decides the role a join token grants. Returns 0, or -1 after sending
 * the joiner an error with the reason. */
static int check_token(node_daemon *d, peer *p, net_msg *m, int *role)
{
    char digest[CA_DIGEST_LEN + 1];
    char secret[CA_SECRET_LEN + 1];
    char expected[CA_DIGEST_LEN + 1];
    char errmsg[CA_ERRMSG_SIZE] = "";

    if (ca_token_parse(m->token, digest, secret, errmsg) != 0) {
        log_event(LOG_WARN, "join rejected: malformed token", "peer=%s error=%s",
                  p->identity.addr, log_quote(errmsg));
        daemon_reply_error(p, m->id, NET_STATUS_TOKEN_INVALID, errmsg);
        return -1;
    }
    memset(secret, 0, sizeof(secret));
    if (ca_token_equal(m->token, d->cluster.worker_token)) {
        *role = STORE_ROLE_WORKER;
        return 0;
    }
    if (ca_token_equal(m->token, d->cluster.manager_token)) {
        *role = STORE_ROLE_MANAGER;
        return 0;
    }
    ca_digest_base36(d->cluster.bundle_pem, strlen(d->cluster.bundle_pem), expected);
    if (strcmp(digest, expected) != 0) {
        log_event(LOG_WARN, "join rejected: token is for another root CA", "peer=%s digest=%s",
                  p->identity.addr, digest);
        daemon_reply_error(p, m->id, NET_STATUS_TOKEN_INVALID,
                           "the join token's root CA digest does not match this cluster's "
                           "root CA; get a current token with `swarmpki join-token`");
        return -1;
    }
    log_event(LOG_WARN, "join rejected: token secret does not match", "peer=%s",
              p->identity.addr);
    daemon_reply_error(p, m->id, NET_STATUS_TOKEN_INVALID,
                       "the join token's secret does not match a current worker or manager "
                       "token; it may have been rotated. Get a current token with "
                       "`swarmpki join-token`");
    return -1;
}

static void join_done(void *arg, int status, const char *errmsg, apply_result *result)
{
    join_request *req = arg;
    node_daemon *d = req->daemon;
    net_msg resp = {.type = NET_MSG_JOIN_RESP, .id = req->id};

    if (status != 0) {
        log_event(LOG_ERROR, "join failed", "peer=%s error=%s", req->peer->identity.addr,
                  log_quote(errmsg));
        daemon_reply_error(req->peer, req->id, NET_STATUS_UNAVAILABLE, errmsg);
    } else if (result->status == APPLY_OK && result->cert_pem == NULL) {
        log_event(LOG_ERROR, "join applied without a certificate on record", "peer=%s",
                  req->peer->identity.addr);
        daemon_reply_error(req->peer, req->id, NET_STATUS_INTERNAL,
                           "the certificate record is empty; retry the join");
    } else if (result->status != APPLY_OK) {
        log_event(LOG_WARN, "join rejected when applied", "peer=%s reason=%s",
                  req->peer->identity.addr, log_quote(apply_status_text(result->status)));
        daemon_reply_error(req->peer, req->id,
                           result->status == APPLY_TOKEN_ROTATED ? NET_STATUS_TOKEN_INVALID
                                                                 : NET_STATUS_DENIED,
                           apply_status_text(result->status));
    } else {
        resp.node_id = strdup(result->node_id);
        resp.role = strdup(role_name(result->role));
        resp.cluster_id = strdup(d->conf.cluster_id);
        resp.cert_pem = result->cert_pem;
        result->cert_pem = NULL;
        resp.bundle_pem = strdup(d->cluster.bundle_pem);
        if (!resp.node_id || !resp.role || !resp.cluster_id || !resp.bundle_pem) {
            daemon_reply_error(req->peer, req->id, NET_STATUS_INTERNAL, "out of memory");
        } else {
            log_event(LOG_INFO, "node joined", "joined=%s joined_role=%s peer=%s",
                      resp.node_id, resp.role, req->peer->identity.addr);
            daemon_reply(req->peer, &resp);
        }
        net_msg_clear(&resp);
    }
    peer_unref(req->peer);
    free(req);
}

/* Signs the CSR and builds the ISSUE command; returns 0 or a NET_STATUS_*. */
static int build_issue(node_daemon *d, net_msg *m, int role, store_command *cmd, char *errmsg)
{
    ca_leaf_request leaf = {0};
    ca_issued issued = {0};
    char node_id[CA_ID_LEN + 1];
    int64_t now = util_now();

    if (ca_csr_check(m->csr_pem, strlen(m->csr_pem), cmd->cert.key_hash, errmsg) != 0) {
        return NET_STATUS_BAD_CSR;
    }
    if (ca_random_id(node_id, errmsg) != 0) {
        return NET_STATUS_INTERNAL;
    }
    leaf.node_id = node_id;
    leaf.role_ou = role_ou(role);
    leaf.cluster_id = d->conf.cluster_id;
    leaf.now = now;
    leaf.expiry = d->cluster.cert_expiry;
    if (ca_sign(d->signer, m->csr_pem, strlen(m->csr_pem), &leaf, &issued, errmsg) != 0) {
        return NET_STATUS_INTERNAL;
    }

    cmd->type = STORE_CMD_ISSUE;
    memcpy(cmd->node.id, node_id, sizeof(cmd->node.id));
    cmd->node.role = cmd->node.desired_role = role;
    snprintf(cmd->node.hostname, sizeof(cmd->node.hostname), "%s", m->hostname ? m->hostname : "");
    memcpy(cmd->node.serial, issued.serial, sizeof(cmd->node.serial));
    cmd->node.cert_not_after = issued.not_after;
    cmd->node.created = cmd->node.updated = now;
    memcpy(cmd->cert.serial, issued.serial, sizeof(cmd->cert.serial));
    memcpy(cmd->cert.node_id, node_id, sizeof(cmd->cert.node_id));
    cmd->cert.role = role;
    cmd->cert.not_before = issued.not_before;
    cmd->cert.not_after = issued.not_after;
    cmd->cert.cert_pem = issued.cert_pem.data;
    issued.cert_pem.data = NULL;
    ca_issued_free(&issued);
    snprintf(cmd->token, sizeof(cmd->token), "%s", m->token);
    return 0;
}

static void handle_join(node_daemon *d, peer *p, net_msg *m)
{
    store_command cmd = {0};
    char errmsg[CA_ERRMSG_SIZE] = "";
    join_request *req;
    int role;
    int status;

    if (check_token(d, p, m, &role) != 0) {
        return;
    }
    if (role == STORE_ROLE_MANAGER) {
        log_event(LOG_WARN, "join rejected: manager join", "peer=%s", p->identity.addr);
        daemon_reply_error(p, m->id, NET_STATUS_UNSUPPORTED,
                           "joining as a manager is not supported yet; use the worker token");
        return;
    }
    status = build_issue(d, m, role, &cmd, errmsg);
    if (status != 0) {
        log_event(LOG_WARN, "join rejected", "peer=%s error=%s", p->identity.addr,
                  log_quote(errmsg));
        daemon_reply_error(p, m->id, status, errmsg);
        store_command_free(&cmd);
        return;
    }

    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        store_command_free(&cmd);
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    req->daemon = d;
    req->peer = p;
    req->id = m->id;
    req->role = role;
    peer_ref(p);
    if (replog_propose(d->log, &cmd, join_done, req, errmsg) != 0) {
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE, errmsg);
        peer_unref(p);
        free(req);
    }
    store_command_free(&cmd);
}

static void handle_heartbeat(node_daemon *d, peer *p, net_msg *m)
{
    net_msg resp = {.type = NET_MSG_HEARTBEAT_RESP, .id = m->id};
    session *s;
    char *managers[1];

    if (authorize(d, p, 0, m->id) != 0) {
        return;
    }
    s = sessions_upsert(&d->sessions, p->identity.common_name);
    if (s == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    if (!s->ready) {
        log_event(LOG_INFO, "node is ready", "peer_node=%s peer=%s", s->node_id,
                  p->identity.addr);
    }
    s->ready = 1;
    s->last_seen_ms = uv_now(d->loop);
    snprintf(s->hostname, sizeof(s->hostname), "%s", m->hostname ? m->hostname : "");

    managers[0] = d->conf.advertise_addr;
    resp.period_ms = d->heartbeat_ms;
    resp.list = managers;
    resp.list_len = 1;
    daemon_reply(p, &resp);
}

void manager_handle(node_daemon *d, peer *p, net_msg *m)
{
    if (!d->have_cluster || d->stopping) {
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE, "the manager is not ready");
        return;
    }
    switch (m->type) {
    case NET_MSG_BUNDLE_REQ:
        handle_bundle(d, p, m);
        break;
    case NET_MSG_JOIN_REQ:
        handle_join(d, p, m);
        break;
    case NET_MSG_HEARTBEAT_REQ:
        handle_heartbeat(d, p, m);
        break;
    default:
        log_event(LOG_WARN, "unexpected message type", "peer=%s type=%u", p->identity.addr,
                  m->type);
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST, "unexpected message type");
        break;
    }
}

/* Marks workers down once they missed DAEMON_MISSED_HEARTBEATS. */
void manager_check_sessions(node_daemon *d)
{
    uint64_t now = uv_now(d->loop);
    uint64_t limit = (uint64_t)d->heartbeat_ms * DAEMON_MISSED_HEARTBEATS;

    for (size_t i = 0; i < d->sessions.cap; i++) {
        session *s = &d->sessions.slots[i];
        if (s->node_id[0] != '\0' && s->ready && now - s->last_seen_ms > limit) {
            s->ready = 0;
            log_event(LOG_WARN, "node is down: heartbeats missed", "peer_node=%s missed_ms=%llu",
                      s->node_id, (unsigned long long)(now - s->last_seen_ms));
        }
    }
}

static void on_cluster(void *arg, store_cluster *cluster)
{
    node_daemon *d = arg;
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_signer *signer = NULL;

    if (ca_signer_open(cluster->signer_cert_pem, strlen(cluster->signer_cert_pem),
                       cluster->signer_key_pem, strlen(cluster->signer_key_pem), &signer,
                       errmsg) != 0) {
        /* Keep serving with the previous signer rather than none. */
        log_event(LOG_ERROR, "the replicated signing certificate does not load", "error=%s",
                  log_quote(errmsg));
        store_cluster_free(cluster);
        return;
    }
    if (d->signer != NULL) {
        ca_signer_close(d->signer);
    }
    if (d->have_cluster) {
        store_cluster_free(&d->cluster);
    }
    d->signer = signer;
    d->cluster = *cluster;
    d->have_cluster = 1;
}

static void log_ready(void *arg, int status, const char *errmsg)
{
    node_daemon *d = arg;
    char message[DAEMON_ERRMSG_SIZE];

    if (status == 0 && !d->have_cluster) {
        status = STORE_ECORRUPT;
        errmsg = "the store holds no cluster record; the data directory is incomplete";
    }
    if (status != 0) {
        snprintf(message, sizeof(message), "replay the log in %s/store: %s", d->data_dir,
                 errmsg ? errmsg : store_strerror(status));
        daemon_ready(d, -1, message);
        return;
    }
    if (strcmp(d->cluster.id, d->conf.cluster_id) != 0) {
        snprintf(message, sizeof(message), "%s/store belongs to cluster %s, not %s", d->data_dir,
                 d->cluster.id, d->conf.cluster_id);
        daemon_ready(d, -1, message);
        return;
    }
    log_event(LOG_INFO, "replicated log replayed", "applied=%llu",
              (unsigned long long)replog_applied(d->log));
    daemon_ready(d, 0, NULL);
}

int manager_start(node_daemon *d, char *errmsg)
{
    char path[PATH_MAX + 16];
    int rv;

    snprintf(path, sizeof(path), "%s/store", d->data_dir);
    rv = store_open(path, &d->store, errmsg);
    if (rv != 0) {
        return -1;
    }
    rv = replog_open(d->loop, d->store, on_cluster, d, &d->log, errmsg);
    if (rv == 0) {
        rv = replog_start(d->log, log_ready, d);
        if (rv != 0) {
            snprintf(errmsg, DAEMON_ERRMSG_SIZE, "start the replicated log: %s",
                     store_strerror(rv));
        }
    }
    return rv == 0 ? 0 : -1;
}

static void log_closed(void *arg)
{
    node_daemon *d = arg;

    d->log = NULL;
    store_close(d->store);
    d->store = NULL;
    daemon_close_done(d);
}

void manager_stop(node_daemon *d)
{
    if (d->log != NULL) {
        d->pending_closes++;
        replog_close(d->log, log_closed, d);
    } else if (d->store != NULL) {
        store_close(d->store);
        d->store = NULL;
    }
}

void manager_free(node_daemon *d)
{
    if (d->signer != NULL) {
        ca_signer_close(d->signer);
        d->signer = NULL;
    }
    if (d->have_cluster) {
        store_cluster_free(&d->cluster);
        d->have_cluster = 0;
    }
    sessions_free(&d->sessions);
}
