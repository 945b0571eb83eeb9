#include "node/setup.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>
#include <uv.h>

#include "ca/ca.h"
#include "raft/raft.h"
#include "net/net.h"
#include "node/conf.h"
#include "node/join_listener.h"
#include "node/util.h"
#include "store/store.h"

/* How long a joiner waits for the manager, per request, and how it retries
 * while the cluster has no leader (about 10 s in all). */
#define JOIN_TIMEOUT_MS 10000
#define JOIN_RETRIES 40
#define JOIN_RETRY_MS 250

/* What a failed setup must undo. */
typedef struct undo {
    char data_dir[PATH_MAX];
    int created_dir;
    int created_certs;
} undo;

int setup_has_node(const char *data_dir)
{
    char path[PATH_MAX];

    if (conf_path(path, sizeof(path), data_dir, "node.conf") != 0) {
        return 0;
    }
    return access(path, F_OK) == 0;
}

static int reject_existing(const char *data_dir, char *errmsg)
{
    snprintf(errmsg, SETUP_ERRMSG_SIZE,
             "%s already contains a swarmpki node; start it with `swarmpki run --data-dir %s`, "
             "or choose an empty directory",
             data_dir, data_dir);
    return -1;
}

static void remove_file(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

/* Removes what this setup wrote; files that were there before stay. */
static void undo_setup(const undo *u)
{
    remove_file(u->data_dir, "certificates/swarm-root-ca.crt");
    remove_file(u->data_dir, "certificates/swarm-node.crt");
    remove_file(u->data_dir, "certificates/swarm-node.key");
    remove_file(u->data_dir, "store/store.mdb");
    remove_file(u->data_dir, "store/store.mdb-lock");
    remove_file(u->data_dir, "node.conf");
    if (u->created_certs) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/certificates", u->data_dir);
        rmdir(path);
    }
    if (u->created_dir) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/store", u->data_dir);
        rmdir(path);
        rmdir(u->data_dir);
    }
}

/* Creates the data directory and certificates/ (mode 0700) as needed. */
static int prepare_dir(const char *data_dir, undo *u, char *errmsg)
{
    char path[PATH_MAX + 16];
    struct stat st;

    memset(u, 0, sizeof(*u));
    snprintf(u->data_dir, sizeof(u->data_dir), "%s", data_dir);
    if (setup_has_node(data_dir)) {
        return reject_existing(data_dir, errmsg);
    }
    u->created_dir = stat(data_dir, &st) != 0;
    if (util_mkdir_p(data_dir, 0700, errmsg) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/certificates", data_dir);
    u->created_certs = stat(path, &st) != 0;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "create directory %s: %s", path, strerror(errno));
        undo_setup(u);
        return -1;
    }
    return 0;
}

static int write_cert_file(const char *data_dir, const char *name, const char *text,
                           unsigned mode, char *errmsg)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/certificates/%s", data_dir, name);
    return util_file_write(path, text, strlen(text), mode, errmsg);
}

static int write_identity(const char *data_dir, const char *bundle, const char *cert,
                          const char *key, char *errmsg)
{
    if (write_cert_file(data_dir, "swarm-root-ca.crt", bundle, 0644, errmsg) != 0 ||
        write_cert_file(data_dir, "swarm-node.key", key, 0600, errmsg) != 0 ||
        write_cert_file(data_dir, "swarm-node.crt", cert, 0644, errmsg) != 0) {
        return -1;
    }
    return 0;
}

/* ---- init ---- */

typedef struct init_material {
    ca_buf root_cert;
    ca_buf root_key;
    ca_buf node_key;
    ca_buf csr;
    ca_issued issued;
    store_command cmd;
} init_material;

static void free_material(init_material *m)
{
    ca_buf_free(&m->root_cert);
    ca_buf_free(&m->root_key);
    ca_buf_free(&m->node_key);
    ca_buf_free(&m->csr);
    ca_issued_free(&m->issued);
    /* cmd borrows the PEM buffers above; only its fixed fields remain. */
    memset(&m->cmd, 0, sizeof(m->cmd));
}

/* Creates the root CA, tokens and this manager's certificate. */
static int create_material(const setup_init_opts *o, init_material *m, setup_init_result *out,
                           char *errmsg)
{
    ca_signer *signer = NULL;
    ca_leaf_request leaf = {0};
    int64_t now = util_now();
    int rv;

    rv = ca_random_id(out->cluster_id, errmsg);
    rv = rv ? rv : ca_random_id(out->node_id, errmsg);
    rv = rv ? rv : ca_root_create(now, &m->root_cert, &m->root_key, errmsg);
    rv = rv ? rv : ca_token_generate(m->root_cert.data, m->root_cert.len, out->worker_token, errmsg);
    rv = rv ? rv : ca_token_generate(m->root_cert.data, m->root_cert.len, out->manager_token, errmsg);
    rv = rv ? rv : ca_key_generate(&m->node_key, errmsg);
    rv = rv ? rv : ca_csr_create(m->node_key.data, m->node_key.len, &m->csr, errmsg);
    rv = rv ? rv : ca_signer_open(m->root_cert.data, m->root_cert.len, m->root_key.data,
                                  m->root_key.len, &signer, errmsg);
    if (rv != 0) {
        return -1;
    }
    leaf.node_id = out->node_id;
    leaf.role_ou = CA_ROLE_MANAGER_OU;
    leaf.cluster_id = out->cluster_id;
    leaf.now = now;
    leaf.expiry = o->cert_expiry;
    rv = ca_csr_check(m->csr.data, m->csr.len, m->cmd.cert.key_hash, errmsg);
    rv = rv ? rv : ca_sign(signer, m->csr.data, m->csr.len, &leaf, &m->issued, errmsg);
    ca_signer_close(signer);
    return rv == 0 ? 0 : -1;
}

/* Fills the CLUSTER_INIT command; it borrows the material's buffers. */
static void build_init_command(const setup_init_opts *o, init_material *m,
                               const setup_init_result *r)
{
    store_command *cmd = &m->cmd;
    int64_t now = util_now();
    char hostname[256] = "";

    if (gethostname(hostname, sizeof(hostname) - 1) != 0) {
        snprintf(hostname, sizeof(hostname), "unknown");
    }
    cmd->type = STORE_CMD_CLUSTER_INIT;
    memcpy(cmd->cluster.id, r->cluster_id, sizeof(cmd->cluster.id));
    cmd->cluster.bundle_pem = m->root_cert.data;
    cmd->cluster.signer_cert_pem = m->root_cert.data;
    cmd->cluster.signer_key_pem = m->root_key.data;
    memcpy(cmd->cluster.worker_token, r->worker_token, sizeof(cmd->cluster.worker_token));
    memcpy(cmd->cluster.manager_token, r->manager_token, sizeof(cmd->cluster.manager_token));
    cmd->cluster.cert_expiry = o->cert_expiry;
    cmd->cluster.created = now;

    memcpy(cmd->node.id, r->node_id, sizeof(cmd->node.id));
    cmd->node.role = cmd->node.desired_role = STORE_ROLE_MANAGER;
    snprintf(cmd->node.hostname, sizeof(cmd->node.hostname), "%s", hostname);
    snprintf(cmd->node.addr, sizeof(cmd->node.addr), "%s", r->advertise_addr);
    memcpy(cmd->node.serial, m->issued.serial, sizeof(cmd->node.serial));
    cmd->node.cert_not_after = m->issued.not_after;
    cmd->node.created = cmd->node.updated = now;

    memcpy(cmd->cert.serial, m->issued.serial, sizeof(cmd->cert.serial));
    memcpy(cmd->cert.node_id, r->node_id, sizeof(cmd->cert.node_id));
    cmd->cert.role = STORE_ROLE_MANAGER;
    cmd->cert.not_before = m->issued.not_before;
    cmd->cert.not_after = m->issued.not_after;
    cmd->cert.cert_pem = m->issued.cert_pem.data;
}

/* Writes the first log entry; the daemon applies it when it starts. */
/* Draws a random nonzero 63-bit Raft member id. */
static int new_raft_id(uint64_t *id, char *errmsg)
{
    do {
        if (uv_random(NULL, NULL, id, sizeof(*id), 0, NULL) != 0) {
            snprintf(errmsg, SETUP_ERRMSG_SIZE, "no randomness available for a Raft id");
            return -1;
        }
        *id &= INT64_MAX;
    } while (*id == 0);
    return 0;
}

/* Records the first configuration, this manager alone as a voter, as an
 * empty snapshot at index 0, where the Raft core looks for it. */
static int write_bootstrap(store_txn *txn, uint64_t member_id, char *errmsg)
{
    struct raft_server self = {.id = member_id, .role = RAFT_VOTER};
    struct raft_config config = {.servers = &self, .n = 1};
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rv;

    if (raft_config_encode(&config, &bytes, &len) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "encode the first Raft configuration: out of memory");
        return -1;
    }
    rv = store_snapshot_take(txn, 0, 0, bytes, len, errmsg);
    free(bytes);
    return rv;
}

static int write_store(const char *data_dir, const store_command *cmd, uint64_t member_id,
                       char *errmsg)
{
    char path[PATH_MAX + 16];
    store_hard_state hs = {.term = 1, .vote = 0, .commit = 1};
    store_entry entry = {.index = 1, .term = 1, .type = STORE_ENTRY_NORMAL};
    store_txn *txn = NULL;
    store *st = NULL;
    int rv;

    snprintf(path, sizeof(path), "%s/store", data_dir);
    rv = store_command_encode(cmd, &entry.data, &entry.len, errmsg);
    rv = rv ? rv : store_open(path, &st, errmsg);
    rv = rv ? rv : store_txn_begin(st, 1, &txn, errmsg);
    if (rv == 0) {
        rv = store_hard_state_put(txn, &hs, errmsg);
        rv = rv ? rv : write_bootstrap(txn, member_id, errmsg);
        rv = rv ? rv : store_log_append(txn, &entry, 1, errmsg);
        if (rv == 0) {
            rv = store_txn_commit(txn, errmsg);
        } else {
            store_txn_abort(txn);
        }
    }
    if (st != NULL) {
        store_close(st);
    }
    free(entry.data);
    return rv == 0 ? 0 : -1;
}

/* Binds the listen address once, so that a busy or foreign address fails
 * init before anything is written. */
static int check_listen_addr(const char *addr, char *errmsg)
{
    struct sockaddr_storage sa;
    char why[NET_ERRMSG_SIZE] = "";
    int one = 1;
    int fd;
    int rv;

    if (net_addr_parse(addr, &sa, why) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "invalid --listen-addr: %s", why);
        return -1;
    }
    fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "create a socket for %s: %s", addr, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    rv = bind(fd, (struct sockaddr *)&sa,
              sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (rv != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "cannot listen on %s: %s; choose a free address",
                 addr, strerror(errno));
    }
    close(fd);
    return rv == 0 ? 0 : -1;
}

int setup_init(const setup_init_opts *o, setup_init_result *out, char *errmsg)
{
    init_material m = {0};
    node_conf conf = {0};
    undo u;
    int rv;

    memset(out, 0, sizeof(*out));
    snprintf(out->advertise_addr, sizeof(out->advertise_addr), "%s",
             o->advertise_addr ? o->advertise_addr : o->listen_addr);
    if (setup_has_node(o->data_dir)) {
        return reject_existing(o->data_dir, errmsg);
    }
    if (check_listen_addr(o->listen_addr, errmsg) != 0) {
        return -1;
    }
    if (prepare_dir(o->data_dir, &u, errmsg) != 0) {
        return -1;
    }
    /* A store left by an init that failed half-way contains no node. */
    remove_file(o->data_dir, "store/store.mdb");
    remove_file(o->data_dir, "store/store.mdb-lock");

    rv = create_material(o, &m, out, errmsg);
    if (rv == 0) {
        rv = new_raft_id(&conf.raft_id, errmsg);
    }
    if (rv == 0) {
        build_init_command(o, &m, out);
        m.cmd.node.raft_id = conf.raft_id;
        rv = write_store(o->data_dir, &m.cmd, conf.raft_id, errmsg);
    }
    if (rv == 0) {
        rv = write_identity(o->data_dir, m.root_cert.data, m.issued.cert_pem.data,
                            m.node_key.data, errmsg);
    }
    if (rv == 0) {
        conf.role = NODE_ROLE_MANAGER;
        memcpy(conf.node_id, out->node_id, sizeof(conf.node_id));
        memcpy(conf.cluster_id, out->cluster_id, sizeof(conf.cluster_id));
        snprintf(conf.listen_addr, sizeof(conf.listen_addr), "%s", o->listen_addr);
        snprintf(conf.advertise_addr, sizeof(conf.advertise_addr), "%s", out->advertise_addr);
        snprintf(conf.managers[0], CONF_ADDR_SIZE, "%s", out->advertise_addr);
        conf.manager_count = 1;
        rv = conf_save(o->data_dir, &conf, errmsg);
    }
    free_material(&m);
    if (rv != 0) {
        undo_setup(&u);
    }
    return rv;
}

/* ---- join ---- */

typedef struct join_state {
    char digest[CA_DIGEST_LEN + 1];
    char *bundle;          /* the pinned trust bundle, as PEM */
    ca_bundle *roots;      /* the same, parsed */
    net_caller *conn;      /* open from the bundle request to the join response */
    ca_buf key;
    ca_buf csr;
    unsigned char key_hash[32];
    net_msg resp;
} join_state;

static void free_join(join_state *s)
{
    net_caller_close(s->conn);
    ca_bundle_close(s->roots);
    free(s->bundle);
    ca_buf_free(&s->key);
    ca_buf_free(&s->csr);
    net_msg_clear(&s->resp);
}

/* Checks the bundle a manager sent and pins it: its digest must be the
 * token's, and the chain the manager presented in the handshake of the same
 * connection must verify against it. That proves the connection reaches a
 * manager of the cluster the token names, so the join request may follow
 * on it. Takes over resp's bundle on success. */
static int pin_bundle(const char *addr, net_msg *resp, join_state *s, char *errmsg)
{
    const void *leaf;
    const void *chain;
    char actual[CA_DIGEST_LEN + 1];
    char why[CA_ERRMSG_SIZE] = "";
    int rv;

    if (resp->type != NET_MSG_BUNDLE_RESP) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "the manager at %s did not send its root CA: %s",
                 addr, resp->text ? resp->text : "unexpected answer");
        return -1;
    }
    ca_digest_base36(resp->bundle_pem, strlen(resp->bundle_pem), actual);
    if (strcmp(actual, s->digest) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "the manager's root CA does not match the join token: the token expects "
                 "digest %s but the manager at %s has %s; check the token and the address",
                 s->digest, addr, actual);
        return -1;
    }
    net_caller_peer_x509(s->conn, &leaf, &chain);
    if (leaf == NULL) {
        snprintf(why, sizeof(why), "it sent no certificate");
        rv = -1;
    } else {
        rv = ca_bundle_open(resp->bundle_pem, strlen(resp->bundle_pem), &s->roots, why);
        rv = rv ? rv
                : ca_verify_x509(s->roots, leaf, chain, util_now(), CA_ROLE_MANAGER_OU, why);
    }
    if (rv != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "the manager at %s presented a certificate that its own root CA does not "
                 "verify: %s",
                 addr, why);
        return -1;
    }
    s->bundle = resp->bundle_pem;
    resp->bundle_pem = NULL;
    return 0;
}

/* Connects without trusting the manager yet, fetches the trust bundle and
 * pins it. The connection stays open for the join request. */
static int fetch_bundle(const char *addr, join_state *s, char *errmsg)
{
    net_msg req = {.type = NET_MSG_BUNDLE_REQ, .id = 1};
    net_msg resp = {0};
    char why[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    int rv;

    rv = net_tls_new(0, NULL, NULL, NULL, &tls, why);
    rv = rv ? rv : net_caller_open(addr, tls, JOIN_TIMEOUT_MS, &s->conn, NULL, why);
    net_tls_free(tls);
    rv = rv ? rv : net_caller_call(s->conn, &req, JOIN_TIMEOUT_MS, &resp, why);
    if (rv != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "cannot reach the manager at %s: %s; check the address and that the manager "
                 "runs",
                 addr, why);
    } else {
        rv = pin_bundle(addr, &resp, s, errmsg);
    }
    net_msg_clear(&resp);
    if (rv != 0) {
        net_caller_close(s->conn);
        s->conn = NULL;
    }
    return rv;
}

static int send_join_once(const char *addr, const net_msg *req, join_state *s,
                          char *errmsg);

/* Sends the join, retrying for a while when the cluster is electing a
 * leader: the request is idempotent, keyed by the CSR's public key. */
static int send_join(const char *addr, const char *token, const char *advertise,
                     join_state *s, char *errmsg)
{
    net_msg req = {.type = NET_MSG_JOIN_REQ, .id = 2};
    char hostname[256] = "";

    if (gethostname(hostname, sizeof(hostname) - 1) != 0) {
        snprintf(hostname, sizeof(hostname), "unknown");
    }
    req.token = (char *)token;
    req.csr_pem = s->csr.data;
    req.hostname = hostname;
    req.addr = (char *)advertise;

    for (int attempt = 0;; attempt++) {
        int rv = send_join_once(addr, &req, s, errmsg);

        if (rv == 0 || s->resp.type != NET_MSG_ERROR ||
            s->resp.code != NET_STATUS_UNAVAILABLE || attempt >= JOIN_RETRIES) {
            return rv;
        }
        net_msg_clear(&s->resp);
        nanosleep(&(struct timespec){.tv_nsec = JOIN_RETRY_MS * 1000000L}, NULL);
    }
}

static int send_join_once(const char *addr, const net_msg *req, join_state *s, char *errmsg)
{
    char why[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    int rv = 0;

    /* A connection that closed while the cluster had no leader is opened
     * again, this time verifying the manager against the pinned bundle. */
    if (s->conn == NULL) {
        rv = net_tls_new(0, NULL, NULL, s->bundle, &tls, why);
        rv = rv ? rv : net_caller_open(addr, tls, JOIN_TIMEOUT_MS, &s->conn, NULL, why);
        net_tls_free(tls);
    }
    rv = rv ? rv : net_caller_call(s->conn, req, JOIN_TIMEOUT_MS, &s->resp, why);
    if (rv != 0) {
        net_caller_close(s->conn);
        s->conn = NULL;
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "join through %s failed: %s", addr, why);
        return -1;
    }
    if (s->resp.type == NET_MSG_ERROR) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "the manager at %s rejected the join: %s", addr,
                 s->resp.text ? s->resp.text : "no reason given");
        return -1;
    }
    if (s->resp.type != NET_MSG_JOIN_RESP) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "the manager at %s sent an unexpected answer", addr);
        return -1;
    }
    return 0;
}

/* Checks the issued certificate before anything is written. */
static int check_issued(const char *addr, join_state *s, setup_join_result *out, char *errmsg)
{
    ca_cert_info info;
    char why[CA_ERRMSG_SIZE] = "";
    const net_msg *r = &s->resp;

    if (strcmp(r->bundle_pem, s->bundle) != 0 ||
        ca_verify_issued(s->roots, r->cert_pem, strlen(r->cert_pem), s->key_hash, util_now(),
                         NULL, &info, why) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "the manager at %s returned a certificate that does not match the request: %s",
                 addr, why[0] ? why : "the trust bundle changed during the join");
        return -1;
    }
    if (strcmp(info.common_name, r->node_id) != 0 || strcmp(info.org, r->cluster_id) != 0 ||
        strlen(info.common_name) != CA_ID_LEN || strlen(info.org) != CA_ID_LEN) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "the certificate from %s names node %s of cluster %s, not the node the "
                 "manager announced",
                 addr, info.common_name, info.org);
        return -1;
    }
    if (strcmp(info.org_unit, CA_ROLE_MANAGER_OU) == 0 && r->raft_id == 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "the manager at %s issued a manager certificate without a Raft id", addr);
        return -1;
    }
    memcpy(out->node_id, info.common_name, sizeof(out->node_id));
    memcpy(out->cluster_id, info.org, sizeof(out->cluster_id));
    snprintf(out->role, sizeof(out->role), "%s",
             strcmp(info.org_unit, CA_ROLE_MANAGER_OU) == 0 ? "manager" : "worker");
    return 0;
}

int setup_join(const char *data_dir, const char *token, const char *manager_addr,
               const char *listen_addr, const char *advertise_addr, setup_join_result *out,
               char *errmsg)
{
    char secret[CA_SECRET_LEN + 1];
    char why[CA_ERRMSG_SIZE] = "";
    char listener_error[JOIN_LISTENER_ERRMSG_SIZE] = "";
    join_listener *listener = NULL;
    join_state s = {0};
    node_conf conf = {0};
    undo u;
    int rv;

    memset(out, 0, sizeof(*out));
    if (ca_token_parse(token, s.digest, secret, why) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "invalid join token: %s", why);
        return -1;
    }
    memset(secret, 0, sizeof(secret));
    if (setup_has_node(data_dir)) {
        return reject_existing(data_dir, errmsg);
    }

    /* Nothing is written until the manager has issued a certificate. */
    rv = fetch_bundle(manager_addr, &s, errmsg);
    if (rv == 0 && ca_key_and_csr_generate(&s.key, &s.csr, s.key_hash, why) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "create the node key: %s", why);
        rv = -1;
    }
    if (rv == 0 && listen_addr != NULL) {
        rv = check_listen_addr(listen_addr, errmsg);
    }
    /* A new manager serves its key on the listen address while the leader
     * checks that the advertised address reaches it. */
    if (rv == 0 && listen_addr != NULL &&
        join_listener_start(listen_addr, s.key.data, s.key.len, s.bundle, &listener,
                            listener_error) != 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "%s", listener_error);
        rv = -1;
    }
    rv = rv ? rv : send_join(manager_addr, token, advertise_addr ? advertise_addr : listen_addr,
                             &s, errmsg);
    join_listener_stop(listener);
    rv = rv ? rv : check_issued(manager_addr, &s, out, errmsg);
    if (rv != 0) {
        free_join(&s);
        return -1;
    }

    if (prepare_dir(data_dir, &u, errmsg) != 0) {
        free_join(&s);
        return -1;
    }
    rv = write_identity(data_dir, s.bundle, s.resp.cert_pem, s.key.data, errmsg);
    if (rv == 0) {
        conf.role = strcmp(out->role, "manager") == 0 ? NODE_ROLE_MANAGER : NODE_ROLE_WORKER;
        memcpy(conf.node_id, out->node_id, sizeof(conf.node_id));
        memcpy(conf.cluster_id, out->cluster_id, sizeof(conf.cluster_id));
        snprintf(conf.managers[0], CONF_ADDR_SIZE, "%s", manager_addr);
        conf.manager_count = 1;
        if (conf.role == NODE_ROLE_MANAGER) {
            conf.raft_id = s.resp.raft_id;
            snprintf(conf.listen_addr, sizeof(conf.listen_addr), "%s", listen_addr);
            snprintf(conf.advertise_addr, sizeof(conf.advertise_addr), "%s",
                     advertise_addr ? advertise_addr : listen_addr);
        }
        rv = conf_save(data_dir, &conf, errmsg);
    }
    if (rv != 0) {
        undo_setup(&u);
    }
    free_join(&s);
    return rv;
}

/* ---- force-new-cluster ---- */

typedef struct other_managers {
    char (*ids)[26];
    size_t count;
    const char *self;
} other_managers;

static int collect_others(const store_node *n, void *arg)
{
    other_managers *o = arg;
    void *grown;

    if (n->role != STORE_ROLE_MANAGER || strcmp(n->id, o->self) == 0) {
        return 0;
    }
    grown = realloc(o->ids, (o->count + 1) * sizeof(*o->ids));
    if (grown == NULL) {
        return STORE_ENOMEM;
    }
    o->ids = grown;
    memcpy(o->ids[o->count++], n->id, sizeof(o->ids[0]));
    return 0;
}

/* Rewrites the store of a stopped manager so that it restarts as the only
 * member: the other managers are removed, everything applied is kept in a
 * snapshot, and log entries not yet applied are dropped, since they may
 * never have been committed. */
static int rewrite_membership(store_txn *txn, const node_conf *conf, char *errmsg)
{
    other_managers others = {.self = conf->node_id};
    uint64_t applied = 0;
    uint64_t term = 0;
    uint64_t first;
    uint64_t last;
    int64_t prune_after = util_now() + 90LL * 24 * 3600;
    int rv;

    rv = store_applied_get(txn, &applied, errmsg);
    rv = rv ? rv : store_node_each(txn, collect_others, &others, errmsg);
    for (size_t i = 0; rv == 0 && i < others.count; i++) {
        rv = store_node_delete(txn, others.ids[i], errmsg);
        rv = rv ? rv : store_removed_put(txn, others.ids[i], prune_after, errmsg);
    }
    free(others.ids);
    if (rv == 0 && applied > 0 && store_log_term(txn, applied, &term, NULL) != 0) {
        store_snapshot_meta meta;
        if (store_snapshot_meta_get(txn, &meta, NULL) == 0) {
            term = meta.term;
            store_snapshot_meta_free(&meta);
        }
    }
    rv = rv ? rv : store_log_bounds(txn, &first, &last, errmsg);
    if (rv == 0 && last > 0) {
        rv = store_log_truncate(txn, first, errmsg);
    }
    if (rv == 0) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        struct raft_server self = {.id = conf->raft_id, .role = RAFT_VOTER};
        struct raft_config config = {.servers = &self, .n = 1};
        if (raft_config_encode(&config, &bytes, &len) != 0) {
            snprintf(errmsg, SETUP_ERRMSG_SIZE, "encode the new configuration: out of memory");
            return -1;
        }
        rv = store_snapshot_take(txn, applied, term, bytes, len, errmsg);
        free(bytes);
    }
    return rv;
}

int setup_node_running(const char *data_dir)
{
    char path[PATH_MAX + 16];
    int fd;
    int running;

    snprintf(path, sizeof(path), "%s/swarmpki.pid", data_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    /* The running node holds an exclusive lock on its pid file. */
    running = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return running;
}

int setup_force_new_cluster(const char *data_dir, char *errmsg)
{
    char path[PATH_MAX + 16];
    node_conf conf;
    store *st = NULL;
    store_txn *txn = NULL;
    int rv;

    rv = conf_load(data_dir, &conf, errmsg);
    if (rv == -2) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE, "%s contains no swarmpki node", data_dir);
        return -1;
    }
    if (rv != 0) {
        return -1;
    }
    if (conf.role != NODE_ROLE_MANAGER || conf.raft_id == 0) {
        snprintf(errmsg, SETUP_ERRMSG_SIZE,
                 "%s is not a manager's data directory; --force-new-cluster needs one",
                 data_dir);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/store", data_dir);
    rv = store_open(path, &st, errmsg);
    rv = rv ? rv : store_txn_begin(st, 1, &txn, errmsg);
    if (rv == 0) {
        rv = rewrite_membership(txn, &conf, errmsg);
        if (rv == 0) {
            rv = store_txn_commit(txn, errmsg);
        } else {
            store_txn_abort(txn);
        }
    }
    if (st != NULL) {
        store_close(st);
    }
    return rv == 0 ? 0 : -1;
}
