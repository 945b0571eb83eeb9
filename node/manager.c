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
static int authorize(node_daemon *d, peer *p, const net_peer *who, int manager_only,
                     uint64_t id)
{
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
        resp.raft_id = result->raft_id;
        resp.index = result->index;
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

    static const unsigned char unset[32];

    if (ca_random_id(node_id, errmsg) != 0) {
        return NET_STATUS_INTERNAL;
    }
    leaf.node_id = node_id;
    leaf.role_ou = role_ou(role);
    leaf.cluster_id = d->conf.cluster_id;
    leaf.now = now;
    leaf.expiry = d->cluster.cert_expiry;

    /* One parse of the CSR checks and signs it. The key hash is filled once
     * the CSR passed its checks, so an unset hash means a bad CSR rather
     * than a signing failure. */
    memset(cmd->cert.key_hash, 0, sizeof(cmd->cert.key_hash));
    if (ca_csr_sign(d->signer, m->csr_pem, strlen(m->csr_pem), &leaf, cmd->cert.key_hash,
                    &issued, errmsg) != 0) {
        return memcmp(cmd->cert.key_hash, unset, sizeof(unset)) == 0 ? NET_STATUS_BAD_CSR
                                                                     : NET_STATUS_INTERNAL;
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

/* A new manager needs an address no member uses, and a fresh Raft id. */
static int check_manager_join(node_daemon *d, peer *p, net_msg *m, uint64_t *member_id)
{
    const char *addrs[CONF_MAX_MANAGERS];
    size_t count = manager_addresses(d, addrs, CONF_MAX_MANAGERS);
    char text[256];

    if (m->addr == NULL || m->addr[0] == '\0') {
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST,
                           "a manager must join with --listen-addr HOST:PORT");
        return -1;
    }
    if (net_addr_is_unspecified(m->addr)) {
        snprintf(text, sizeof(text),
                 "the advertised address %s is not one other nodes can connect to; pass "
                 "--advertise-addr with this host's address",
                 m->addr);
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST, text);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(addrs[i], m->addr) == 0) {
            snprintf(text, sizeof(text),
                     "the address %s is already used by a manager of this cluster; choose "
                     "another --advertise-addr",
                     m->addr);
            log_event(LOG_WARN, "manager join rejected: address in use", "addr=%s", m->addr);
            daemon_reply_error(p, m->id, NET_STATUS_DENIED, text);
            return -1;
        }
    }
    /* Random 63-bit ids: removed ids are never reused in practice, and the
     * core rejects one that was. */
    do {
        if (uv_random(NULL, NULL, member_id, sizeof(*member_id), 0, NULL) != 0) {
            daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "no randomness available");
            return -1;
        }
        *member_id &= INT64_MAX;
    } while (*member_id == 0 || *member_id == d->conf.raft_id);
    return 0;
}

/* Signs the CSR of m and proposes the ISSUE entry; join_done responds. */
static void issue_join(node_daemon *d, peer *p, net_msg *m, int role, uint64_t member_id)
{
    store_command cmd = {0};
    char errmsg[CA_ERRMSG_SIZE] = "";
    join_request *req;
    int status;

    status = build_issue(d, m, role, &cmd, errmsg);
    if (role == STORE_ROLE_MANAGER) {
        cmd.node.raft_id = member_id;
        snprintf(cmd.node.addr, sizeof(cmd.node.addr), "%s", m->addr);
    }
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

/* A manager join waiting for the probe of its advertised address. */
typedef struct join_probe {
    node_daemon *daemon;
    peer *peer;
    net_msg msg; /* the join request, moved here */
    uint64_t member_id;
} join_probe;

static void join_probe_done(void *arg, int status, const char *errmsg)
{
    join_probe *jp = arg;
    node_daemon *d = jp->daemon;
    char text[640];

    if (status != 0) {
        snprintf(text, sizeof(text),
                 "the leader cannot reach the new manager at its advertised address %s: %s; "
                 "the joining node listens on its --listen-addr, so check that "
                 "--advertise-addr leads there and that the other managers can connect to it",
                 jp->msg.addr, errmsg ? errmsg : "no response");
        log_event(LOG_WARN, "manager join rejected: address not reachable", "peer=%s error=%s",
                  jp->peer->identity.addr, log_quote(text));
        daemon_reply_error(jp->peer, jp->msg.id, NET_STATUS_DENIED, text);
    } else if (d->stopping || !manager_is_leader(d)) {
        daemon_reply_error(jp->peer, jp->msg.id, NET_STATUS_UNAVAILABLE,
                           "leadership changed during the join; retry");
    } else {
        issue_join(d, jp->peer, &jp->msg, STORE_ROLE_MANAGER, jp->member_id);
    }
    peer_unref(jp->peer);
    net_msg_clear(&jp->msg);
    free(jp);
}

/* Checks, before anything is signed or recorded, that the new manager's
 * advertised address reaches the joining process: it serves a certificate
 * for its CSR's key there while it joins. A wrong address or a closed port
 * thus fails the join instead of leaving a manager that can never become a
 * member. Takes over m. */
static void probe_manager_join(node_daemon *d, peer *p, net_msg *m, uint64_t member_id)
{
    unsigned char key_hash[32];
    char errmsg[CA_ERRMSG_SIZE] = "";
    join_probe *jp;

    if (ca_csr_check(m->csr_pem, strlen(m->csr_pem), key_hash, errmsg) != 0) {
        log_event(LOG_WARN, "join rejected", "peer=%s error=%s", p->identity.addr,
                  log_quote(errmsg));
        daemon_reply_error(p, m->id, NET_STATUS_BAD_CSR, errmsg);
        return;
    }
    jp = calloc(1, sizeof(*jp));
    if (jp == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    jp->daemon = d;
    jp->peer = p;
    jp->member_id = member_id;
    jp->msg = *m;
    memset(m, 0, sizeof(*m));
    peer_ref(p);
    if (peers_probe_key(d->peers, jp->msg.addr, key_hash, join_probe_done, jp) != 0) {
        join_probe_done(jp, -1, "no connection could be opened");
    }
}

static void handle_join(node_daemon *d, peer *p, net_msg *m, const net_peer *who)
{
    uint64_t member_id = 0;
    int role;

    if (check_token(d, p, m, &role) != 0) {
        return;
    }
    if (role == STORE_ROLE_MANAGER) {
        if (check_manager_join(d, p, m, &member_id) == 0) {
            probe_manager_join(d, p, m, member_id);
        }
        return;
    }
    issue_join(d, p, m, role, 0);
}

void manager_heartbeat(node_daemon *d, peer *p, net_msg *m, const net_peer *who)
{
    net_msg resp = {.type = NET_MSG_HEARTBEAT_RESP, .id = m->id};
    const char *addrs[CONF_MAX_MANAGERS];
    session *s;

    if (authorize(d, p, who, 0, m->id) != 0) {
        return;
    }
    s = sessions_upsert(&d->sessions, who->common_name);
    if (s == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    if (!s->ready) {
        log_event(LOG_INFO, "node session is up", "peer_node=%s peer=%s", s->node_id,
                  who->addr);
    }
    s->ready = 1;
    s->last_seen_ms = uv_now(d->loop);
    snprintf(s->hostname, sizeof(s->hostname), "%s", m->hostname ? m->hostname : "");

    resp.period_ms = d->heartbeat_ms;
    resp.list = (char **)addrs;
    resp.list_len = (uint32_t)manager_addresses(d, addrs, CONF_MAX_MANAGERS);
    daemon_reply(p, &resp);
}

/* The identity a request speaks for: the peer's own, or for a request a
 * manager forwarded, the origin it names. */
static void request_identity(node_daemon *d, peer *p, const net_msg *m, net_peer *who)
{
    *who = p->identity;
    if (m->origin_cn == NULL || !p->identity.has_cert ||
        strcmp(p->identity.org_unit, CA_ROLE_MANAGER_OU) != 0 ||
        strcmp(p->identity.org, d->conf.cluster_id) != 0) {
        return;
    }
    memset(who, 0, sizeof(*who));
    who->has_cert = m->origin_ou != NULL && m->origin_org != NULL;
    snprintf(who->common_name, sizeof(who->common_name), "%s", m->origin_cn);
    snprintf(who->org_unit, sizeof(who->org_unit), "%s", m->origin_ou ? m->origin_ou : "");
    snprintf(who->org, sizeof(who->org), "%s", m->origin_org ? m->origin_org : "");
    snprintf(who->addr, sizeof(who->addr), "%s", m->origin_addr ? m->origin_addr : "");
}

/* Decodes a Raft message and hands it to the core; returns the sender's
 * member id, or 0 when the message was dropped. */
uint64_t manager_receive_raft(node_daemon *d, const net_msg *m, const char *sender)
{
    struct raft_message rm;
    char errmsg[NET_ERRMSG_SIZE] = "";
    uint64_t from;

    if (d->log == NULL || d->stopping) {
        return 0;
    }
    if (net_raft_decode(m->bin, m->bin_len, &rm, errmsg) != 0) {
        log_event(LOG_WARN, "invalid Raft message", "cn=%s error=%s", log_quote(sender),
                  log_quote(errmsg));
        return 0;
    }
    from = rm.from;
    replog_receive(d->log, &rm);
    net_raft_free(&rm);
    return from;
}

static int is_member_node(node_daemon *d, const char *node_id)
{
    for (size_t i = 0; i < d->manager_count; i++) {
        if (strcmp(d->managers[i].id, node_id) == 0) {
            return 1;
        }
    }
    return 0;
}

static void handle_raft(node_daemon *d, peer *p, net_msg *m)
{
    uint64_t from;

    if (authorize(d, p, &p->identity, 1, m->id) != 0) {
        return;
    }
    /* A removed manager keeps a valid certificate until it expires; its
     * record is gone, so its Raft traffic is refused. */
    if (d->managers != NULL && !is_member_node(d, p->identity.common_name)) {
        log_event(LOG_WARN, "request rejected", "peer=%s cn=%s reason=%s", p->identity.addr,
                  log_quote(p->identity.common_name), log_quote("not a manager of this cluster"));
        net_conn_close(p->conn);
        return;
    }
    from = manager_receive_raft(d, m, p->identity.common_name);
    if (from != 0 && peers_node_id(d->peers, from) == NULL) {
        peers_note_inbound(d->peers, from, p);
    }
}

/* Requests that change state go to the leader; elsewhere they are
 * forwarded. Returns 1 when the request was forwarded or an error was sent. */
static int route_to_leader(node_daemon *d, peer *p, net_msg *m)
{
    if (manager_is_leader(d)) {
        return 0;
    }
    manager_forward(d, p, m);
    return 1;
}

void manager_handle(node_daemon *d, peer *p, net_msg *m)
{
    net_peer who;

    if (m->type == NET_MSG_RAFT && !d->stopping && d->log != NULL) {
        handle_raft(d, p, m);
        return;
    }
    if (!d->have_cluster || d->stopping) {
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE, "the manager is not ready");
        return;
    }
    request_identity(d, p, m, &who);
    switch (m->type) {
    case NET_MSG_BUNDLE_REQ:
        handle_bundle(d, p, m);
        break;
    case NET_MSG_RAFT:
        handle_raft(d, p, m);
        break;
    case NET_MSG_JOIN_REQ:
        if (!route_to_leader(d, p, m)) {
            handle_join(d, p, m, &who);
        }
        break;
    case NET_MSG_HEARTBEAT_REQ:
        if (!route_to_leader(d, p, m)) {
            manager_heartbeat(d, p, m, &who);
        }
        break;
    case NET_MSG_MEMBER_REQ:
        if (authorize(d, p, &who, 1, m->id) == 0 && !route_to_leader(d, p, m)) {
            manager_member_request(d, p, m, &who);
        }
        break;
    case NET_MSG_CONTROL_REQ:
        /* A follower forwards `update` to the leader as a control request. */
        if (authorize(d, p, &p->identity, 1, m->id) == 0 && !route_to_leader(d, p, m)) {
            control_handle(d, p, m);
        }
        break;
    default:
        log_event(LOG_WARN, "unexpected message type", "peer=%s type=%u", p->identity.addr,
                  m->type);
        daemon_reply_error(p, m->id, NET_STATUS_BAD_REQUEST, "unexpected message type");
        break;
    }
}

