/* The manager as a Raft member: start-up and readiness, the callbacks of
 * the replicated log, joining the configuration, the leader's periodic
 * duties (node status, learner promotion), forwarding to the leader and a
 * stop that hands leadership over first. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/daemon.h"
#include "node/log.h"
#include "node/util.h"

/* How long a restarted manager waits for a leader before it reports ready
 * anyway (a minority cannot elect one), and how long a stopping leader
 * waits for the transfer. */
#define READY_WAIT_MS 3000
/* How long a start waits for the manager to catch up and reach the others. */
#define SETTLE_WAIT_MS 2000
#define TRANSFER_WAIT_MS 3000
/* A member request retries this often until the leader accepts it. */
#define MEMBER_RETRY_MS 1000

static void check_ready(node_daemon *d);
static void finish_stop(node_daemon *d);

/* ---- callbacks of the replicated log ---- */

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
    check_ready(d);
}

static void on_managers(void *arg, store_node *managers, size_t count)
{
    node_daemon *d = arg;

    free(d->managers);
    d->managers = managers;
    d->manager_count = count;
    if (d->peers != NULL) {
        peers_update(d->peers, managers, count);
    }
}

static void on_send(void *arg, uint64_t to, const unsigned char *data, size_t len)
{
    node_daemon *d = arg;

    if (d->peers != NULL) {
        peers_send_raft(d->peers, to, data, len);
    }
}


static void on_state(void *arg, int state, uint64_t leader, uint64_t term)
{
    node_daemon *d = arg;

    if (state == RAFT_LEADER && d->leader_since_ms == 0) {
        d->leader_since_ms = uv_now(d->loop);
        log_event(LOG_INFO, "became the leader", "term=%llu", (unsigned long long)term);
    } else if (state != RAFT_LEADER && d->leader_since_ms != 0) {
        d->leader_since_ms = 0;
        log_event(LOG_INFO, "no longer the leader", "term=%llu leader=%llx",
                  (unsigned long long)term, (unsigned long long)leader);
    }
    if (d->transferring == 1 && state != RAFT_LEADER) {
        finish_stop(d);
        return;
    }
    check_ready(d);
}

/* ---- readiness and membership ---- */

static int in_config(node_daemon *d)
{
    return d->log != NULL && raft_config_get(replog_config(d->log), d->conf.raft_id) != NULL;
}

/* Returns 1 once this manager has applied every entry it has seen committed
 * and reaches every other member. */
static int settled(node_daemon *d)
{
    const struct raft_config *c = replog_config(d->log);

    if (replog_applied(d->log) < replog_commit(d->log)) {
        return 0;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->servers[i].id != d->conf.raft_id && !peers_reachable(d->peers, c->servers[i].id)) {
            return 0;
        }
    }
    return 1;
}

static void check_ready(node_daemon *d)
{
    uint64_t now = uv_now(d->loop);
    uint64_t waited = now - d->started_ms;

    d->member = in_config(d);
    if (d->announced || !d->log_ready || !d->member || !d->have_cluster) {
        return;
    }
    if (replog_leader(d->log) == 0 && waited < READY_WAIT_MS) {
        return;
    }
    /* A start that returns while this manager still catches up, or before
     * its links are up, leaves info and node ls showing members as down.
     * So it waits for that, but only SETTLE_WAIT_MS, because a member may
     * really be down. */
    if (d->settling_since_ms == 0) {
        d->settling_since_ms = now;
    }
    if (!settled(d) && now - d->settling_since_ms < SETTLE_WAIT_MS) {
        return;
    }
    if (strcmp(d->cluster.id, d->conf.cluster_id) != 0) {
        char message[DAEMON_ERRMSG_SIZE];
        snprintf(message, sizeof(message), "%s/store belongs to cluster %s, not %s",
                 d->data_dir, d->cluster.id, d->conf.cluster_id);
        d->announced = 1;
        daemon_ready(d, -1, message);
        return;
    }
    d->announced = 1;
    daemon_ready(d, 0, NULL);
}

static void log_ready(void *arg, int status, const char *errmsg)
{
    node_daemon *d = arg;
    char message[DAEMON_ERRMSG_SIZE];

    if (status != 0) {
        snprintf(message, sizeof(message), "replay the log in %s/store: %s", d->data_dir,
                 errmsg ? errmsg : store_strerror(status));
        d->announced = 1;
        daemon_ready(d, -1, message);
        return;
    }
    log_event(LOG_INFO, "replicated log replayed", "applied=%llu",
              (unsigned long long)replog_applied(d->log));
    d->log_ready = 1;
    check_ready(d);
}

/* A manager that joined sends the leader, through any manager in its
 * node.conf, a request to add it to the Raft configuration. */
typedef struct member_call {
    node_daemon *d;
} member_call;

static void member_connected(net_conn *c, int status, const char *errmsg, void *data)
{
    member_call *call = data;
    node_daemon *d = call->d;
    net_msg m = {.type = NET_MSG_MEMBER_REQ, .id = 1};
    char why[NET_ERRMSG_SIZE] = "";

    if (status != 0) {
        return;
    }
    m.raft_id = d->conf.raft_id;
    m.addr = d->conf.advertise_addr;
    if (net_conn_send(c, &m, why) != 0) {
        net_conn_close(c);
    }
}

static void member_answered(net_conn *c, net_msg *m, void *data)
{
    if (m->type == NET_MSG_OK) {
        log_event(LOG_INFO, "the leader added this manager to the cluster", NULL);
    } else {
        log_event(LOG_WARN, "joining the Raft configuration failed; retrying", "error=%s",
                  log_quote(m->text ? m->text : "unexpected response"));
    }
    net_msg_clear(m);
    net_conn_close(c);
}

static int member_calls;

static void member_closed(net_conn *c, int status, const char *reason, void *data)
{
    member_calls--;
    free(data);
}

static void request_membership(node_daemon *d)
{
    static const net_conn_cb callbacks = {member_connected, member_answered, member_closed};
    static unsigned attempt;
    const char *addr = d->conf.managers[attempt++ % (unsigned)d->conf.manager_count];
    char errmsg[NET_ERRMSG_SIZE] = "";
    member_call *call = calloc(1, sizeof(*call));
    net_conn *c;

    if (call == NULL || member_calls > 0) {
        free(call);
        return;
    }
    call->d = d;
    if (net_connect(d->loop, addr, d->client_tls, MEMBER_RETRY_MS * 3, &callbacks, call, &c,
                    errmsg) != 0) {
        log_event(LOG_WARN, "cannot reach a manager to join Raft", "manager=%s error=%s", addr,
                  log_quote(errmsg));
        free(call);
        return;
    }
    member_calls++;
}

/* ---- the leader's side of a member request ---- */

typedef struct member_probe {
    node_daemon *d;
    peer *peer;
    uint64_t id;
    uint64_t raft_id;
    char addr[128];
} member_probe;

static void probe_done(void *arg, int status, const char *errmsg)
{
    member_probe *mp = arg;
    node_daemon *d = mp->d;
    char text[384];
    int rv;

    if (status != 0) {
        snprintf(text, sizeof(text), "the leader cannot reach the new manager at %s: %s",
                 mp->addr, errmsg ? errmsg : "no answer");
        log_event(LOG_WARN, "member request rejected", "raft_id=%llx error=%s",
                  (unsigned long long)mp->raft_id, log_quote(text));
        daemon_reply_error(mp->peer, mp->id, NET_STATUS_UNAVAILABLE, text);
    } else if (d->log == NULL || !manager_is_leader(d)) {
        daemon_reply_error(mp->peer, mp->id, NET_STATUS_UNAVAILABLE,
                           "leadership changed; retry");
    } else if ((rv = replog_change(d->log, RAFT_CHANGE_ADD_LEARNER, mp->raft_id)) != 0) {
        snprintf(text, sizeof(text), "adding the manager failed: %s", raft_strerror(rv));
        daemon_reply_error(mp->peer, mp->id,
                           rv == RAFT_EBUSY ? NET_STATUS_UNAVAILABLE : NET_STATUS_DENIED, text);
    } else {
        net_msg ok = {.type = NET_MSG_OK, .id = mp->id};
        log_event(LOG_INFO, "adding manager as a learner", "raft_id=%llx addr=%s",
                  (unsigned long long)mp->raft_id, mp->addr);
        daemon_reply(mp->peer, &ok);
    }
    peer_unref(mp->peer);
    free(mp);
}

void manager_member_request(node_daemon *d, peer *p, net_msg *m, const net_peer *who)
{
    const struct raft_server *s = raft_config_get(replog_config(d->log), m->raft_id);
    uint64_t on_record = peers_find_node(d->peers, who->common_name);
    member_probe *mp;

    if (s != NULL) {
        net_msg ok = {.type = NET_MSG_OK, .id = m->id};
        daemon_reply(p, &ok);
        return;
    }
    if (on_record == 0 || on_record != m->raft_id) {
        log_event(LOG_WARN, "member request rejected: unknown manager", "cn=%s raft_id=%llx",
                  who->common_name, (unsigned long long)m->raft_id);
        daemon_reply_error(p, m->id, NET_STATUS_DENIED,
                           "no manager with this node id and Raft id was admitted");
        return;
    }
    mp = calloc(1, sizeof(*mp));
    if (mp == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return;
    }
    mp->d = d;
    mp->peer = p;
    mp->id = m->id;
    mp->raft_id = m->raft_id;
    snprintf(mp->addr, sizeof(mp->addr), "%s", peers_addr(d->peers, on_record));
    peer_ref(p);
    if (peers_probe(d->peers, mp->addr, who->common_name, probe_done, mp) != 0) {
        probe_done(mp, -1, "could not open a connection");
    }
}

/* ---- routing ---- */

int manager_is_leader(node_daemon *d)
{
    return d->log != NULL && replog_state(d->log) == RAFT_LEADER;
}

void manager_no_leader(node_daemon *d, char *out, size_t size)
{
    const struct raft_config *c = replog_config(d->log);
    size_t voters = 0;
    size_t reachable = 0;

    for (size_t i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        reachable += c->servers[i].id == d->conf.raft_id ||
                     peers_reachable(d->peers, c->servers[i].id);
    }
    snprintf(out, size,
             "the cluster has no leader: this manager reaches %zu of %zu managers and a "
             "leader needs %zu; retry once a majority is up, or see `swarmpki init "
             "--force-new-cluster --help` if it is lost for good",
             reachable, voters, voters / 2 + 1);
}

typedef struct relay {
    node_daemon *daemon;
    peer *origin;
    uint64_t id;
} relay;

/* A join response from the leader, held until this manager has applied the
 * entry that issued the certificate, so that a node ls here right after the
 * join lists the new node. */
typedef struct parked_relay {
    struct parked_relay *next;
    peer *origin;
    net_msg msg;
    uint64_t since_ms;
} parked_relay;

/* How long a join response waits for this manager to apply its entry. A
 * manager that lags this far sends it anyway: the join itself succeeded. */
#define PARK_MAX_MS 2000

/* Sends the parked responses whose entries are applied, or every one when
 * all is set or once they waited PARK_MAX_MS. */
static void flush_parked(node_daemon *d, int all)
{
    uint64_t applied = d->log != NULL ? replog_applied(d->log) : 0;
    uint64_t now = uv_now(d->loop);
    parked_relay **link = &d->parked_relays;

    while (*link != NULL) {
        parked_relay *pr = *link;

        if (!all && pr->msg.index > applied && now - pr->since_ms < PARK_MAX_MS) {
            link = &pr->next;
            continue;
        }
        *link = pr->next;
        daemon_reply(pr->origin, &pr->msg);
        net_msg_clear(&pr->msg);
        peer_unref(pr->origin);
        free(pr);
    }
}

static void on_applied(void *arg, uint64_t index)
{
    node_daemon *d = arg;

    (void)index;
    if (d->parked_relays != NULL) {
        flush_parked(d, 0);
    }
    if (!d->announced) {
        check_ready(d);
    }
}

/* Holds m until this manager applied m->index. Returns 0 when parked (m is
 * taken over), -1 when m should go out now.
 * NOTE: only join responses carry an index, so an `update` forwarded from
 * here is answered before this manager applied it, and info here may show
 * the old value for a moment. */
static int park_relay(node_daemon *d, peer *origin, net_msg *m)
{
    parked_relay *pr;

    if (m->type != NET_MSG_JOIN_RESP || m->index == 0 || d->log == NULL || d->stopping ||
        m->index <= replog_applied(d->log)) {
        return -1;
    }
    pr = calloc(1, sizeof(*pr));
    if (pr == NULL) {
        return -1;
    }
    pr->origin = origin;
    pr->msg = *m;
    memset(m, 0, sizeof(*m));
    pr->since_ms = uv_now(d->loop);
    peer_ref(origin);
    pr->next = d->parked_relays;
    d->parked_relays = pr;
    return 0;
}

static void relay_response(void *arg, net_msg *m, const char *errmsg)
{
    relay *r = arg;
    char text[256];

    if (m == NULL) {
        snprintf(text, sizeof(text), "forwarding to the leader failed: %s; retry",
                 errmsg ? errmsg : "connection lost");
        daemon_reply_error(r->origin, r->id, NET_STATUS_UNAVAILABLE, text);
    } else {
        m->id = r->id;
        if (park_relay(r->daemon, r->origin, m) != 0) {
            daemon_reply(r->origin, m);
        }
        net_msg_clear(m);
    }
    peer_unref(r->origin);
    free(r);
}

int manager_forward(node_daemon *d, peer *p, net_msg *m)
{
    uint64_t leader = d->log ? replog_leader(d->log) : 0;
    char text[256];
    relay *r;

    if (m->origin_cn != NULL && strcmp(p->identity.org_unit, CA_ROLE_MANAGER_OU) == 0) {
        /* Forwarded once already: the sender thought we lead. */
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE,
                           "leadership is changing; retry in a moment");
        return -1;
    }
    if (leader == 0 || leader == d->conf.raft_id) {
        manager_no_leader(d, text, sizeof(text));
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE, text);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        daemon_reply_error(p, m->id, NET_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    r->daemon = d;
    r->origin = p;
    r->id = m->id;
    if (p->identity.has_cert) {
        m->origin_cn = strdup(p->identity.common_name);
        m->origin_ou = strdup(p->identity.org_unit);
        m->origin_org = strdup(p->identity.org);
    } else {
        m->origin_cn = strdup("");
    }
    m->origin_addr = strdup(p->identity.addr);
    peer_ref(p);
    if (peers_forward(d->peers, leader, m, relay_response, r) != 0) {
        peer_unref(p);
        free(r);
        snprintf(text, sizeof(text),
                 "the leader (%s) is not reachable from this manager; retry in a moment",
                 peers_addr(d->peers, leader) ? peers_addr(d->peers, leader) : "unknown");
        daemon_reply_error(p, m->id, NET_STATUS_UNAVAILABLE, text);
        return -1;
    }
    return 0;
}

size_t manager_addresses(node_daemon *d, const char **out, size_t max)
{
    size_t n = 0;

    if (max > 0) {
        out[n++] = d->conf.advertise_addr;
    }
    if (d->peers != NULL) {
        n += peers_addresses(d->peers, out + n, max - n);
    }
    return n;
}

/* ---- the leader's periodic duties ---- */

static void promote_learners(node_daemon *d)
{
    const struct raft_config *c = replog_config(d->log);

    for (size_t i = 0; i < c->n; i++) {
        if (c->servers[i].role == RAFT_LEARNER) {
            /* EBUSY while another change is pending: try again next time. */
            replog_change(d->log, RAFT_CHANGE_PROMOTE, c->servers[i].id);
            return;
        }
    }
}

typedef struct status_batch {
    node_daemon *d;
    store_command cmd;
} status_batch;

static void status_done(void *arg, int status, const char *errmsg, apply_result *result)
{
    status_batch *b = arg;

    if (status != 0) {
        /* Forget what was proposed, so the next round proposes it again. */
        for (uint32_t i = 0; i < b->cmd.status_count; i++) {
            session *s = sessions_find(&b->d->sessions, b->cmd.status_ids[i]);
            if (s != NULL) {
                s->recorded = STORE_STATUS_UNKNOWN;
            }
        }
    }
    store_command_free(&b->cmd);
    free(b);
}

static int add_status(status_batch *b, const char *id, int status)
{
    uint32_t n = b->cmd.status_count;

    if (n >= STORE_MAX_STATUS) {
        return -1;
    }
    snprintf(b->cmd.status_ids[n], sizeof(b->cmd.status_ids[n]), "%s", id);
    b->cmd.statuses[n] = status;
    b->cmd.status_count++;
    return 0;
}

/* Proposes every ready/down transition the sessions show since the last
 * round, so that every manager lists the same status. */
static void propose_statuses(node_daemon *d)
{
    uint64_t now = uv_now(d->loop);
    uint64_t limit = (uint64_t)d->heartbeat_ms * DAEMON_MISSED_HEARTBEATS;
    status_batch *b = calloc(1, sizeof(*b));
    char errmsg[STORE_ERRMSG_SIZE];

    if (b == NULL) {
        return;
    }
    b->d = d;
    b->cmd.type = STORE_CMD_NODE_STATUS;
    b->cmd.updated = util_now();
    b->cmd.status_ids = calloc(STORE_MAX_STATUS, sizeof(*b->cmd.status_ids));
    b->cmd.statuses = calloc(STORE_MAX_STATUS, sizeof(*b->cmd.statuses));
    for (size_t i = 0; b->cmd.statuses && b->cmd.status_ids && i < d->sessions.cap; i++) {
        session *s = &d->sessions.slots[i];
        if (s->node_id[0] == '\0') {
            continue;
        }
        if (s->ready && now - s->last_seen_ms > limit) {
            s->ready = 0;
            log_event(LOG_WARN, "node is down: heartbeats missed", "peer_node=%s", s->node_id);
        }
        int want = s->ready ? STORE_STATUS_READY : STORE_STATUS_DOWN;
        if (want != s->recorded && add_status(b, s->node_id, want) == 0) {
            s->recorded = want;
        }
    }
    if (b->cmd.status_count == 0 ||
        replog_propose(d->log, &b->cmd, status_done, b, errmsg) != 0) {
        if (b->cmd.status_count > 0) {
            status_done(b, -1, NULL, NULL);
            return;
        }
        store_command_free(&b->cmd);
        free(b);
    }
}

/* Nodes recorded ready that no session has seen since this manager became
 * leader are down, unless they reconnect within the grace period. */
typedef struct ready_scan {
    uv_work_t req;
    node_daemon *d;
    char (*ids)[26];
    size_t count;
    size_t cap;
} ready_scan;

static int collect_ready(const store_node *n, void *arg)
{
    ready_scan *scan = arg;

    if (n->status != STORE_STATUS_READY || n->role != STORE_ROLE_WORKER) {
        return 0;
    }
    if (scan->count == scan->cap) {
        size_t cap = scan->cap ? scan->cap * 2 : 64;
        void *grown = realloc(scan->ids, cap * sizeof(*scan->ids));
        if (grown == NULL) {
            return STORE_ENOMEM;
        }
        scan->ids = grown;
        scan->cap = cap;
    }
    memcpy(scan->ids[scan->count++], n->id, sizeof(scan->ids[0]));
    return 0;
}

static void scan_ready(uv_work_t *req)
{
    ready_scan *scan = req->data;
    store_txn *txn;

    if (store_txn_begin(scan->d->store, 0, &txn, NULL) == 0) {
        store_node_each(txn, collect_ready, scan, NULL);
        store_txn_abort(txn);
    }
}

static void scan_done(uv_work_t *req, int status)
{
    ready_scan *scan = req->data;
    node_daemon *d = scan->d;

    d->status_scan_running = 0;
    for (size_t i = 0; status == 0 && !d->stopping && i < scan->count; i++) {
        if (sessions_find(&d->sessions, scan->ids[i]) == NULL) {
            session *s = sessions_upsert(&d->sessions, scan->ids[i]);
            if (s != NULL) {
                /* Known ready on record, not seen: the next round marks it down. */
                s->ready = 0;
                s->recorded = STORE_STATUS_READY;
            }
        }
    }
    free(scan->ids);
    free(scan);
}

static void start_ready_scan(node_daemon *d)
{
    ready_scan *scan;
    uint64_t limit = (uint64_t)d->heartbeat_ms * DAEMON_MISSED_HEARTBEATS;

    if (d->status_scan_running || uv_now(d->loop) - d->leader_since_ms < limit) {
        return;
    }
    scan = calloc(1, sizeof(*scan));
    if (scan == NULL) {
        return;
    }
    scan->d = d;
    scan->req.data = scan;
    if (uv_queue_work(d->loop, &scan->req, scan_ready, scan_done) == 0) {
        d->status_scan_running = 1;
    } else {
        free(scan);
    }
}

void manager_leader_duties(node_daemon *d)
{
    promote_learners(d);
    propose_statuses(d);
    start_ready_scan(d);
}

void manager_tick(node_daemon *d)
{
    if (d->parked_relays != NULL) {
        flush_parked(d, d->stopping);
    }
    if (d->log == NULL || d->stopping) {
        return;
    }
    check_ready(d);
    peers_tick(d->peers);
    if (!d->member && d->log_ready) {
        request_membership(d);
    }
    if (manager_is_leader(d) && d->have_cluster) {
        manager_leader_duties(d);
    }
}

/* ---- start and stop ---- */

static void read_raft_options(node_daemon *d, replog_options *o)
{
    const char *tick = getenv("SWARMPKI_RAFT_TICK_MS");
    const char *election = getenv("SWARMPKI_RAFT_ELECTION_TICKS");
    const char *every = getenv("SWARMPKI_SNAPSHOT_EVERY");

    replog_options_default(o);
    o->raft_id = d->conf.raft_id;
    if (d->conf.raft_tick_ms != 0) {
        o->tick_ms = d->conf.raft_tick_ms;
    }
    if (d->conf.raft_election_ticks != 0) {
        o->election_ticks_min = d->conf.raft_election_ticks;
        o->election_ticks_max = d->conf.raft_election_ticks * 2;
    }
    if (tick != NULL && atoi(tick) >= 10) {
        o->tick_ms = (uint32_t)atoi(tick);
    }
    if (election != NULL && atoi(election) >= 3) {
        o->election_ticks_min = (uint32_t)atoi(election);
        o->election_ticks_max = o->election_ticks_min * 2;
    }
    if (every != NULL && atoll(every) >= 10) {
        o->snapshot_every = (uint64_t)atoll(every);
        o->snapshot_trailing = o->snapshot_every / 20 + 1;
    }
}

int manager_start(node_daemon *d, char *errmsg)
{
    const replog_callbacks cb = {d, on_cluster, on_managers, on_send, on_state, on_applied};
    char path[PATH_MAX + 16];
    replog_options opts;
    int rv;

    if (d->conf.raft_id == 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE,
                 "%s/node.conf has no raft_id; this data directory was made by an older "
                 "swarmpki",
                 d->data_dir);
        return -1;
    }
    d->started_ms = uv_now(d->loop);
    if (net_tls_new(0, d->cert_pem.data, d->key_pem.data, d->bundle_pem.data, &d->client_tls,
                    errmsg) != 0 ||
        peers_create(d, d->client_tls, &d->peers) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/store", d->data_dir);
    if (store_open(path, &d->store, errmsg) != 0) {
        return -1;
    }
    read_raft_options(d, &opts);
    rv = replog_open(d->loop, d->store, &opts, &cb, &d->log, errmsg);
    if (rv == 0 && replog_start(d->log, log_ready, d) != 0) {
        snprintf(errmsg, DAEMON_ERRMSG_SIZE, "start the replicated log in %s", path);
        rv = -1;
    }
    return rv == 0 ? 0 : -1;
}

static void log_closed(void *arg)
{
    node_daemon *d = arg;

    d->log = NULL;
    store_close(d->store);
    d->store = NULL;
}

static void peers_closed(void *arg)
{
    node_daemon *d = arg;

    d->peers = NULL;
}

void manager_stop(node_daemon *d)
{
    flush_parked(d, 1);
    if (d->peers != NULL) {
        peers_stop(d->peers, peers_closed, d);
    }
    if (d->log != NULL) {
        replog_close(d->log, log_closed, d);
    } else if (d->store != NULL) {
        store_close(d->store);
        d->store = NULL;
    }
}

static void finish_stop(node_daemon *d)
{
    if (d->transferring != 1) {
        return;
    }
    d->transferring = 2;
    uv_timer_stop(&d->stop_timer);
    uv_close((uv_handle_t *)&d->stop_timer, NULL);
    log_event(LOG_INFO, "leadership handed over; stopping", "leader=%llx",
              (unsigned long long)(d->log ? replog_leader(d->log) : 0));
    daemon_stop(d);
}

static void transfer_timeout(uv_timer_t *timer)
{
    node_daemon *d = timer->data;

    log_event(LOG_WARN, "leadership transfer timed out; stopping anyway", NULL);
    finish_stop(d);
}

int manager_begin_stop(node_daemon *d)
{
    const struct raft_config *c;
    int others = 0;

    if (d->transferring || !manager_is_leader(d)) {
        return 0;
    }
    c = replog_config(d->log);
    for (size_t i = 0; i < c->n; i++) {
        others += c->servers[i].role == RAFT_VOTER && c->servers[i].id != d->conf.raft_id;
    }
    if (others == 0 || replog_transfer(d->log, 0) != 0) {
        return 0;
    }
    log_event(LOG_INFO, "handing leadership to another manager before stopping", NULL);
    d->transferring = 1;
    uv_timer_init(d->loop, &d->stop_timer);
    d->stop_timer.data = d;
    uv_timer_start(&d->stop_timer, transfer_timeout, TRANSFER_WAIT_MS, 0);
    return 1;
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
    free(d->managers);
    d->managers = NULL;
    sessions_free(&d->sessions);
}
