#include "node/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "node/daemon.h"
#include "node/log.h"

#define CONNECT_TIMEOUT_MS 3000

typedef struct forward {
    struct forward *next;
    uint64_t id;
    peers_response_cb cb;
    void *arg;
} forward;

typedef struct link {
    peers *owner;
    uint64_t raft_id;
    char node_id[26];
    char addr[128];
    net_conn *conn;
    int connected;
    int dropped; /* no longer a member: freed once its connection closes */
    uint64_t last_attempt_ms;
    forward *forwards;
    uint64_t next_id;
} link;

typedef struct probe {
    peers *owner;
    char node_id[26];          /* the expected CN, or empty to check key_hash */
    unsigned char key_hash[32]; /* the expected public key, when node_id is empty */
    peers_probe_cb cb;
    void *arg;
    int status;
    char errmsg[NET_ERRMSG_SIZE];
} probe;

/* A member known only by its inbound connection. */
typedef struct inbound {
    uint64_t raft_id;
    peer *peer;
} inbound;

#define MAX_INBOUND 16

struct peers {
    node_daemon *daemon;
    inbound inbound[MAX_INBOUND];
    net_tls *tls;
    net_tls *probe_tls; /* verifies nothing, for key probes; made on first use */
    link **links;
    size_t count;
    int open_conns;
    int stopping;
    void (*done)(void *arg);
    void *done_arg;
};

int peers_create(node_daemon *d, net_tls *tls, peers **out)
{
    peers *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return -1;
    }
    p->daemon = d;
    p->tls = tls;
    *out = p;
    return 0;
}

static link *find(const peers *p, uint64_t id)
{
    for (size_t i = 0; i < p->count; i++) {
        if (p->links[i]->raft_id == id) {
            return p->links[i];
        }
    }
    return NULL;
}

static void fail_forwards(link *l, const char *why)
{
    forward *f = l->forwards;

    l->forwards = NULL;
    while (f != NULL) {
        forward *next = f->next;
        f->cb(f->arg, NULL, why);
        free(f);
        f = next;
    }
}

static void maybe_done(peers *p)
{
    if (p->stopping && p->open_conns == 0 && p->done != NULL) {
        void (*done)(void *) = p->done;
        void *arg = p->done_arg;
        net_tls_free(p->probe_tls);
        free(p->links);
        free(p);
        done(arg);
    }
}

/* ---- link callbacks ---- */

static void link_connected(net_conn *c, int status, const char *errmsg, void *data)
{
    link *l = data;
    net_peer who;

    if (status != 0) {
        log_event(LOG_DEBUG, "connecting to manager failed", "peer_node=%s addr=%s error=%s",
                  l->node_id, l->addr, log_quote(errmsg));
        return;
    }
    net_conn_peer(c, &who);
    if (strcmp(who.common_name, l->node_id) != 0 ||
        strcmp(who.org, l->owner->daemon->conf.cluster_id) != 0) {
        log_event(LOG_WARN, "manager address responded with another identity",
                  "peer_node=%s addr=%s cn=%s", l->node_id, l->addr, log_quote(who.common_name));
        net_conn_close(c);
        return;
    }
    l->connected = 1;
    log_event(LOG_INFO, "connected to manager", "peer_node=%s addr=%s", l->node_id, l->addr);
}

static void link_message(net_conn *c, net_msg *m, void *data)
{
    link *l = data;
    forward **at = &l->forwards;

    if (m->type == NET_MSG_RAFT) {
        /* A member that does not know our address yet replies here. */
        manager_receive_raft(l->owner->daemon, m, l->node_id);
        net_msg_clear(m);
        return;
    }
    while (*at != NULL && (*at)->id != m->id) {
        at = &(*at)->next;
    }
    if (*at == NULL) {
        net_msg_clear(m);
        return;
    }
    forward *f = *at;
    *at = f->next;
    f->cb(f->arg, m, NULL);
    free(f);
}

static void link_closed(net_conn *c, int status, const char *reason, void *data)
{
    link *l = data;
    peers *p = l->owner;

    if (l->connected) {
        log_event(LOG_WARN, "connection to manager lost", "peer_node=%s addr=%s reason=%s",
                  l->node_id, l->addr, log_quote(reason ? reason : "closed"));
    }
    l->conn = NULL;
    l->connected = 0;
    fail_forwards(l, reason ? reason : "the connection to the leader closed");
    p->open_conns--;
    if (l->dropped) {
        free(l);
    }
    maybe_done(p);
}

static void link_connect(link *l)
{
    static const net_conn_cb callbacks = {link_connected, link_message, link_closed};
    peers *p = l->owner;
    uint64_t now = uv_now(p->daemon->loop);
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (l->conn != NULL || p->stopping || now - l->last_attempt_ms < PEERS_RETRY_MS) {
        return;
    }
    l->last_attempt_ms = now;
    if (net_connect(p->daemon->loop, l->addr, p->tls, CONNECT_TIMEOUT_MS, &callbacks, l,
                    &l->conn, errmsg) != 0) {
        l->conn = NULL;
        log_event(LOG_DEBUG, "connecting to manager failed", "peer_node=%s addr=%s error=%s",
                  l->node_id, l->addr, log_quote(errmsg));
        return;
    }
    p->open_conns++;
}

/* ---- member table ---- */

static void drop(peers *p, link *l)
{
    l->dropped = 1;
    fail_forwards(l, "the manager left the cluster");
    if (l->conn != NULL) {
        net_conn_close(l->conn);
    } else {
        free(l);
    }
}

void peers_update(peers *p, const store_node *managers, size_t count)
{
    link **links = calloc(count ? count : 1, sizeof(*links));
    size_t n = 0;

    if (links == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const store_node *m = &managers[i];
        link *l = find(p, m->raft_id);

        if (m->raft_id == 0 || m->raft_id == p->daemon->conf.raft_id) {
            continue;
        }
        if (l != NULL && strcmp(l->addr, m->addr) != 0) {
            /* Moved: reconnect to the new address. */
            snprintf(l->addr, sizeof(l->addr), "%s", m->addr);
            if (l->conn != NULL) {
                net_conn_close(l->conn);
            }
        }
        if (l == NULL) {
            l = calloc(1, sizeof(*l));
            if (l == NULL) {
                continue;
            }
            l->owner = p;
            l->raft_id = m->raft_id;
            snprintf(l->node_id, sizeof(l->node_id), "%s", m->id);
            snprintf(l->addr, sizeof(l->addr), "%s", m->addr);
        }
        links[n++] = l;
    }
    for (size_t i = 0; i < p->count; i++) {
        int kept = 0;
        for (size_t k = 0; k < n; k++) {
            kept |= links[k] == p->links[i];
        }
        if (!kept) {
            drop(p, p->links[i]);
        }
    }
    free(p->links);
    p->links = links;
    p->count = n;
}

void peers_note_inbound(peers *p, uint64_t from, peer *in)
{
    inbound *slot = NULL;

    /* A message can stop the node while it is handled (a leader that handed
     * over); a reference taken after peers_stop would never be released. */
    if (p->stopping) {
        return;
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        if (p->inbound[i].raft_id == from || (slot == NULL && p->inbound[i].raft_id == 0)) {
            slot = &p->inbound[i];
            if (p->inbound[i].raft_id == from) {
                break;
            }
        }
    }
    if (slot == NULL || slot->peer == in) {
        return;
    }
    if (slot->peer != NULL) {
        peer_unref(slot->peer);
    }
    slot->raft_id = from;
    slot->peer = in;
    peer_ref(in);
}

/* Replies over the connection the member opened, when there is no link. */
static void send_inbound(peers *p, uint64_t to, net_msg *m)
{
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        if (p->inbound[i].raft_id == to && p->inbound[i].peer->conn != NULL) {
            daemon_reply(p->inbound[i].peer, m);
            return;
        }
    }
}

static void release_inbound(peers *p)
{
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        if (p->inbound[i].peer != NULL) {
            peer_unref(p->inbound[i].peer);
        }
        p->inbound[i].peer = NULL;
        p->inbound[i].raft_id = 0;
    }
}

void peers_send_raft(peers *p, uint64_t to, const unsigned char *data, size_t len)
{
    link *l = find(p, to);
    net_msg m = {.type = NET_MSG_RAFT};
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (p->stopping) {
        return;
    }
    if (l == NULL) {
        m.bin = (unsigned char *)data;
        m.bin_len = len;
        send_inbound(p, to, &m);
        return;
    }
    if (!l->connected) {
        link_connect(l);
        return;
    }
    m.bin = (unsigned char *)data;
    m.bin_len = len;
    if (net_conn_send(l->conn, &m, errmsg) != 0) {
        net_conn_close(l->conn);
    }
}

int peers_forward(peers *p, uint64_t to, net_msg *req, peers_response_cb cb, void *arg)
{
    link *l = find(p, to);
    forward *f;
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (l == NULL || p->stopping) {
        return -1;
    }
    if (!l->connected) {
        link_connect(l);
        return -1;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    f->id = ++l->next_id;
    f->cb = cb;
    f->arg = arg;
    req->id = f->id;
    if (net_conn_send(l->conn, req, errmsg) != 0) {
        free(f);
        return -1;
    }
    f->next = l->forwards;
    l->forwards = f;
    return 0;
}

int peers_reachable(const peers *p, uint64_t id)
{
    link *l = find(p, id);

    return l != NULL && l->connected;
}

void peers_tick(peers *p)
{
    for (size_t i = 0; i < p->count; i++) {
        link_connect(p->links[i]);
    }
}

const char *peers_addr(const peers *p, uint64_t id)
{
    link *l = find(p, id);
    return l ? l->addr : NULL;
}

const char *peers_node_id(const peers *p, uint64_t id)
{
    link *l = find(p, id);
    return l ? l->node_id : NULL;
}

uint64_t peers_find_node(const peers *p, const char *node_id)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->links[i]->node_id, node_id) == 0) {
            return p->links[i]->raft_id;
        }
    }
    return 0;
}

size_t peers_addresses(const peers *p, const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < p->count && n < max; i++) {
        out[n++] = p->links[i]->addr;
    }
    return n;
}

/* ---- probes ---- */

/* Decides a key probe: the certificate served at the address must carry
 * the expected public key, which proves the holder of that key listens
 * there. */
static void check_probe_key(probe *pr, net_conn *c)
{
    unsigned char served[32];
    const void *leaf;
    const void *chain;
    char why[CA_ERRMSG_SIZE] = "";

    net_conn_peer_x509(c, &leaf, &chain);
    if (leaf == NULL || ca_x509_key_hash(leaf, served, why) != 0) {
        pr->status = -1;
        snprintf(pr->errmsg, sizeof(pr->errmsg), "the address presented no usable certificate%s%s",
                 why[0] ? ": " : "", why);
    } else if (memcmp(served, pr->key_hash, sizeof(served)) != 0) {
        pr->status = -1;
        snprintf(pr->errmsg, sizeof(pr->errmsg),
                 "another process listens there, not the joining node");
    } else {
        pr->status = 0;
    }
}

static void probe_connected(net_conn *c, int status, const char *errmsg, void *data)
{
    probe *pr = data;
    net_peer who;

    if (status != 0) {
        pr->status = -1;
        snprintf(pr->errmsg, sizeof(pr->errmsg), "%s", errmsg);
        return;
    }
    if (pr->node_id[0] == '\0') {
        check_probe_key(pr, c);
        net_conn_close(c);
        return;
    }
    net_conn_peer(c, &who);
    if (strcmp(who.common_name, pr->node_id) != 0) {
        pr->status = -1;
        snprintf(pr->errmsg, sizeof(pr->errmsg), "the address answered as node %s",
                 who.common_name);
    } else {
        pr->status = 0;
    }
    net_conn_close(c);
}

static void probe_message(net_conn *c, net_msg *m, void *data)
{
    net_msg_clear(m);
}

static void probe_closed(net_conn *c, int status, const char *reason, void *data)
{
    probe *pr = data;
    peers *p = pr->owner;

    if (pr->status > 0) {
        pr->status = -1;
        snprintf(pr->errmsg, sizeof(pr->errmsg), "%s", reason ? reason : "closed");
    }
    pr->cb(pr->arg, pr->status, pr->status ? pr->errmsg : NULL);
    free(pr);
    p->open_conns--;
    maybe_done(p);
}

/* Connects to addr with tls for the probe pr, which is freed on failure. */
static int start_probe(peers *p, probe *pr, const char *addr, net_tls *tls)
{
    static const net_conn_cb callbacks = {probe_connected, probe_message, probe_closed};
    net_conn *c;
    char errmsg[NET_ERRMSG_SIZE] = "";

    pr->owner = p;
    pr->status = 1; /* not decided yet */
    if (net_connect(p->daemon->loop, addr, tls, CONNECT_TIMEOUT_MS, &callbacks, pr, &c,
                    errmsg) != 0) {
        free(pr);
        return -1;
    }
    p->open_conns++;
    return 0;
}

int peers_probe(peers *p, const char *addr, const char *node_id, peers_probe_cb cb, void *arg)
{
    probe *pr = calloc(1, sizeof(*pr));

    if (pr == NULL || p->stopping) {
        free(pr);
        return -1;
    }
    snprintf(pr->node_id, sizeof(pr->node_id), "%s", node_id);
    pr->cb = cb;
    pr->arg = arg;
    return start_probe(p, pr, addr, p->tls);
}

int peers_probe_key(peers *p, const char *addr, const unsigned char key_hash[32],
                    peers_probe_cb cb, void *arg)
{
    probe *pr = calloc(1, sizeof(*pr));
    char errmsg[NET_ERRMSG_SIZE] = "";

    if (pr == NULL || p->stopping) {
        free(pr);
        return -1;
    }
    if (p->probe_tls == NULL && net_tls_new(0, NULL, NULL, NULL, &p->probe_tls, errmsg) != 0) {
        log_event(LOG_ERROR, "cannot build TLS settings for probes", "error=%s",
                  log_quote(errmsg));
        free(pr);
        return -1;
    }
    memcpy(pr->key_hash, key_hash, sizeof(pr->key_hash));
    pr->cb = cb;
    pr->arg = arg;
    return start_probe(p, pr, addr, p->probe_tls);
}

void peers_stop(peers *p, void (*done)(void *arg), void *arg)
{
    p->stopping = 1;
    release_inbound(p);
    p->done = done;
    p->done_arg = arg;
    for (size_t i = 0; i < p->count; i++) {
        link *l = p->links[i];
        fail_forwards(l, "the node is shutting down");
        if (l->conn != NULL) {
            l->dropped = 1;
            net_conn_close(l->conn);
        } else {
            free(l);
        }
    }
    p->count = 0;
    maybe_done(p);
}
