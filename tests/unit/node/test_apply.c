/* The state machine: apply_command on a real store in a fresh directory.
 * Every command goes through store_command_encode and store_command_decode
 * first, so apply_command gets each field as a log entry carries it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "helpers.h"
#include "node/apply.h"
#include "store/store.h"

/* A fixed clock: apply must not depend on the time, and neither do the
 * records these tests build. */
#define NOW 1700000000
#define EXPIRY 7776000

#define CLUSTER_ID "c00000000000000000000000a"
#define OTHER_CLUSTER_ID "c00000000000000000000000b"
#define MANAGER_ID "m000000000000000000000001"
#define WORKER_ID "w000000000000000000000001"
#define OTHER_WORKER_ID "w000000000000000000000002"

#define SERIAL_MANAGER "0100000000000000000000000000000000000001"
#define SERIAL_WORKER "0200000000000000000000000000000000000002"
#define SERIAL_RETRY "0300000000000000000000000000000000000003"

#define HASH_MANAGER 0xa1
#define HASH_WORKER 0xb2
#define HASH_OTHER 0xc3

/* The root CA and tokens, made once for the group. */
static struct {
    ca_buf root_cert;
    ca_buf root_key;
    char worker_token[CA_TOKEN_LEN + 1];
    char manager_token[CA_TOKEN_LEN + 1];
    char old_worker_token[CA_TOKEN_LEN + 1]; /* valid form, never current */
} keys;

struct apply_fixture {
    char dir[TEMP_DIR_SIZE];
    store *s;
};

static int keys_setup(void **state)
{
    char errmsg[CA_ERRMSG_SIZE] = "";
    const char *bundle;

    if (ca_root_create(NOW, &keys.root_cert, &keys.root_key, errmsg) != 0) {
        print_error("ca_root_create: %s\n", errmsg);
        return -1;
    }
    bundle = keys.root_cert.data;
    if (ca_token_generate(bundle, keys.root_cert.len, keys.worker_token, errmsg) != 0 ||
        ca_token_generate(bundle, keys.root_cert.len, keys.manager_token, errmsg) != 0 ||
        ca_token_generate(bundle, keys.root_cert.len, keys.old_worker_token, errmsg) != 0) {
        print_error("ca_token_generate: %s\n", errmsg);
        return -1;
    }
    return 0;
}

static int keys_teardown(void **state)
{
    ca_buf_free(&keys.root_cert);
    ca_buf_free(&keys.root_key);
    return 0;
}

static int store_setup(void **state)
{
    struct apply_fixture *f = calloc(1, sizeof(*f));
    char errmsg[STORE_ERRMSG_SIZE] = "";

    assert_non_null(f);
    make_temp_dir(f->dir);
    if (store_open(f->dir, &f->s, errmsg) != 0) {
        print_error("store_open %s: %s\n", f->dir, errmsg);
        remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    struct apply_fixture *f = *state;

    store_close(f->s);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---- commands ---- */

static char *dup_text(const char *text)
{
    char *copy = strdup(text);

    assert_non_null(copy);
    return copy;
}

/* A stand-in certificate: apply stores and returns it without parsing. */
static char *placeholder_pem(const char *serial)
{
    char pem[160];

    snprintf(pem, sizeof(pem), "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n",
             serial);
    return dup_text(pem);
}

static void fill_node(store_node *n, const char *id, int role, const char *serial)
{
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->role = role;
    n->desired_role = role;
    snprintf(n->hostname, sizeof(n->hostname), "host-%s", id);
    snprintf(n->serial, sizeof(n->serial), "%s", serial);
    n->cert_not_after = NOW + EXPIRY;
    n->created = NOW;
    n->updated = NOW;
}

static void fill_cert(store_cert *c, const char *serial, const char *node_id, int role,
                      unsigned char hash_byte)
{
    snprintf(c->serial, sizeof(c->serial), "%s", serial);
    snprintf(c->node_id, sizeof(c->node_id), "%s", node_id);
    c->role = role;
    c->not_before = NOW - CA_BACKDATE;
    c->not_after = NOW + EXPIRY;
    memset(c->key_hash, hash_byte, sizeof(c->key_hash));
    c->cert_pem = placeholder_pem(serial);
}

/* CLUSTER_INIT for cluster_id with the group's root as bundle and signer. */
static void make_init(store_command *cmd, const char *cluster_id)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_CLUSTER_INIT;
    snprintf(cmd->cluster.id, sizeof(cmd->cluster.id), "%s", cluster_id);
    cmd->cluster.bundle_pem = dup_text(keys.root_cert.data);
    cmd->cluster.signer_cert_pem = dup_text(keys.root_cert.data);
    cmd->cluster.signer_key_pem = dup_text(keys.root_key.data);
    snprintf(cmd->cluster.worker_token, sizeof(cmd->cluster.worker_token), "%s",
             keys.worker_token);
    snprintf(cmd->cluster.manager_token, sizeof(cmd->cluster.manager_token), "%s",
             keys.manager_token);
    cmd->cluster.cert_expiry = EXPIRY;
    cmd->cluster.created = NOW;
    fill_node(&cmd->node, MANAGER_ID, STORE_ROLE_MANAGER, SERIAL_MANAGER);
    fill_cert(&cmd->cert, SERIAL_MANAGER, MANAGER_ID, STORE_ROLE_MANAGER, HASH_MANAGER);
}

static void make_issue(store_command *cmd, const char *node_id, int role, const char *serial,
                       unsigned char hash_byte, const char *token)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->type = STORE_CMD_ISSUE;
    fill_node(&cmd->node, node_id, role, serial);
    fill_cert(&cmd->cert, serial, node_id, role, hash_byte);
    snprintf(cmd->token, sizeof(cmd->token), "%s", token);
}

static void make_worker_issue(store_command *cmd, const char *node_id, const char *serial,
                              unsigned char hash_byte)
{
    make_issue(cmd, node_id, STORE_ROLE_WORKER, serial, hash_byte, keys.worker_token);
}

/* ---- applying and reading ---- */

/* Encodes and decodes cmd like a log entry, applies it in one write
 * transaction and commits. Returns the result status. */
static int apply_one(struct apply_fixture *f, const store_command *cmd, apply_result *result)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command decoded;
    unsigned char *data;
    size_t len;
    store_txn *txn;
    int rv;

    rv = store_command_encode(cmd, &data, &len, errmsg);
    if (rv != 0) {
        print_error("store_command_encode: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
    rv = store_command_decode(data, len, &decoded, errmsg);
    free(data);
    if (rv != 0) {
        print_error("store_command_decode: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);

    assert_int_equal(store_txn_begin(f->s, 1, &txn, errmsg), 0);
    rv = apply_command(txn, &decoded, result, errmsg);
    store_command_free(&decoded);
    if (rv != 0) {
        print_error("apply_command: %s\n", errmsg);
        store_txn_abort(txn);
    }
    assert_int_equal(rv, 0);
    rv = store_txn_commit(txn, errmsg);
    if (rv != 0) {
        print_error("store_txn_commit: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
    return result->status;
}

/* Applies a fresh CLUSTER_INIT and checks that it was accepted. */
static void init_cluster(struct apply_fixture *f)
{
    store_command cmd;
    apply_result result;

    make_init(&cmd, CLUSTER_ID);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);
    apply_result_clear(&result);
    store_command_free(&cmd);
}

static store_txn *begin_read(struct apply_fixture *f)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn = NULL;

    assert_int_equal(store_txn_begin(f->s, 0, &txn, errmsg), 0);
    return txn;
}

/* Returns the store_node_get code for id: 0 or STORE_ENOTFOUND. */
static int node_lookup(struct apply_fixture *f, const char *id, store_node *out)
{
    store_txn *txn = begin_read(f);
    int rv = store_node_get(txn, id, out, NULL);

    store_txn_abort(txn);
    return rv;
}

static int count_node(const store_node *n, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int node_count(struct apply_fixture *f)
{
    store_txn *txn = begin_read(f);
    int n = 0;

    assert_int_equal(store_node_each(txn, count_node, &n, NULL), 0);
    store_txn_abort(txn);
    return n;
}

/* Returns the store_cert_get code for serial. The record goes to *out, or
 * is freed when out is NULL. */
static int cert_lookup(struct apply_fixture *f, const char *serial, store_cert *out)
{
    store_txn *txn = begin_read(f);
    store_cert cert;
    int rv = store_cert_get(txn, serial, &cert, NULL);

    store_txn_abort(txn);
    if (rv == 0 && out != NULL) {
        *out = cert;
    } else if (rv == 0) {
        store_cert_free(&cert);
    }
    return rv;
}

static int cert_by_key(struct apply_fixture *f, unsigned char hash_byte, store_cert *out)
{
    unsigned char hash[32];
    store_txn *txn = begin_read(f);
    int rv;

    memset(hash, hash_byte, sizeof(hash));
    rv = store_cert_by_key(txn, hash, out, NULL);
    store_txn_abort(txn);
    return rv;
}

static void read_cluster(struct apply_fixture *f, store_cluster *out)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn = begin_read(f);
    int rv = store_cluster_get(txn, out, errmsg);

    store_txn_abort(txn);
    if (rv != 0) {
        print_error("store_cluster_get: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

/* A rejected entry hands nothing back. */
static void expect_empty_result(const apply_result *result)
{
    assert_string_equal(result->node_id, "");
    assert_null(result->cert_pem);
}

/* ---- CLUSTER_INIT ---- */

static void apply_init_creates(void **state)
{
    struct apply_fixture *f = *state;
    store_cluster cluster;
    store_node node;
    store_cert cert;

    init_cluster(f);

    read_cluster(f, &cluster);
    assert_string_equal(cluster.id, CLUSTER_ID);
    assert_string_equal(cluster.worker_token, keys.worker_token);
    assert_string_equal(cluster.manager_token, keys.manager_token);
    assert_string_equal(cluster.bundle_pem, keys.root_cert.data);
    assert_int_equal(cluster.cert_expiry, EXPIRY);
    store_cluster_free(&cluster);

    assert_int_equal(node_lookup(f, MANAGER_ID, &node), 0);
    assert_int_equal(node.role, STORE_ROLE_MANAGER);
    assert_string_equal(node.serial, SERIAL_MANAGER);

    assert_int_equal(cert_by_key(f, HASH_MANAGER, &cert), 0);
    assert_string_equal(cert.serial, SERIAL_MANAGER);
    assert_string_equal(cert.node_id, MANAGER_ID);
    store_cert_free(&cert);
}

static void apply_init_twice(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;
    store_cluster cluster;

    init_cluster(f);

    /* A second cluster with its own first manager changes nothing. */
    make_init(&cmd, OTHER_CLUSTER_ID);
    snprintf(cmd.node.id, sizeof(cmd.node.id), "%s", OTHER_WORKER_ID);
    snprintf(cmd.cert.node_id, sizeof(cmd.cert.node_id), "%s", OTHER_WORKER_ID);
    snprintf(cmd.cert.serial, sizeof(cmd.cert.serial), "%s", SERIAL_RETRY);
    memset(cmd.cert.key_hash, HASH_OTHER, sizeof(cmd.cert.key_hash));
    cmd.cluster.cert_expiry = 3600;

    assert_int_equal(apply_one(f, &cmd, &result), APPLY_EXISTS);
    expect_empty_result(&result);
    apply_result_clear(&result);
    store_command_free(&cmd);

    read_cluster(f, &cluster);
    assert_string_equal(cluster.id, CLUSTER_ID);
    assert_int_equal(cluster.cert_expiry, EXPIRY);
    store_cluster_free(&cluster);
    assert_int_equal(node_count(f), 1);
    assert_int_equal(cert_lookup(f, SERIAL_RETRY, NULL), STORE_ENOTFOUND);
}

/* ---- ISSUE ---- */

static void apply_issue_creates(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;
    store_node node;
    store_cert cert;

    init_cluster(f);
    make_worker_issue(&cmd, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);

    assert_string_equal(result.node_id, WORKER_ID);
    assert_int_equal(result.role, STORE_ROLE_WORKER);
    assert_non_null(result.cert_pem);
    assert_string_equal(result.cert_pem, cmd.cert.cert_pem);

    assert_int_equal(node_lookup(f, WORKER_ID, &node), 0);
    assert_int_equal(node.role, STORE_ROLE_WORKER);
    assert_int_equal(node.desired_role, STORE_ROLE_WORKER);
    assert_string_equal(node.serial, SERIAL_WORKER);
    assert_string_equal(node.hostname, "host-" WORKER_ID);
    assert_int_equal(node_count(f), 2);

    assert_int_equal(cert_lookup(f, SERIAL_WORKER, &cert), 0);
    assert_string_equal(cert.node_id, WORKER_ID);
    assert_int_equal(cert.role, STORE_ROLE_WORKER);
    assert_string_equal(cert.cert_pem, cmd.cert.cert_pem);
    store_cert_free(&cert);

    assert_int_equal(cert_by_key(f, HASH_WORKER, &cert), 0);
    assert_string_equal(cert.serial, SERIAL_WORKER);
    store_cert_free(&cert);

    apply_result_clear(&result);
    store_command_free(&cmd);
}

static void apply_issue_signed(void **state)
{
    struct apply_fixture *f = *state;
    char errmsg[CA_ERRMSG_SIZE] = "";
    ca_buf key = {0};
    ca_buf csr = {0};
    ca_signer *signer = NULL;
    ca_issued issued = {0};
    ca_leaf_request leaf = {WORKER_ID, CA_ROLE_WORKER_OU, CLUSTER_ID, NOW, EXPIRY};
    store_command cmd;
    apply_result result;
    store_cert cert;

    /* The leader's side: a real CSR, checked and signed by the root. */
    init_cluster(f);
    assert_int_equal(ca_key_generate(&key, errmsg), 0);
    assert_int_equal(ca_csr_create(key.data, key.len, &csr, errmsg), 0);
    make_worker_issue(&cmd, WORKER_ID, SERIAL_WORKER, 0);
    assert_int_equal(ca_csr_check(csr.data, csr.len, cmd.cert.key_hash, errmsg), 0);
    assert_int_equal(ca_signer_open(keys.root_cert.data, keys.root_cert.len,
                                    keys.root_key.data, keys.root_key.len, &signer, errmsg),
                     0);
    assert_int_equal(ca_sign(signer, csr.data, csr.len, &leaf, &issued, errmsg), 0);
    snprintf(cmd.node.serial, sizeof(cmd.node.serial), "%s", issued.serial);
    snprintf(cmd.cert.serial, sizeof(cmd.cert.serial), "%s", issued.serial);
    cmd.cert.not_before = issued.not_before;
    cmd.cert.not_after = issued.not_after;
    free(cmd.cert.cert_pem);
    cmd.cert.cert_pem = dup_text(issued.cert_pem.data);

    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);
    assert_string_equal(result.cert_pem, issued.cert_pem.data);
    assert_int_equal(cert_by_key(f, 0, &cert), STORE_ENOTFOUND);
    assert_int_equal(cert_lookup(f, issued.serial, &cert), 0);
    assert_string_equal(cert.cert_pem, issued.cert_pem.data);
    assert_memory_equal(cert.key_hash, cmd.cert.key_hash, 32);
    store_cert_free(&cert);

    apply_result_clear(&result);
    store_command_free(&cmd);
    ca_issued_free(&issued);
    ca_signer_close(signer);
    ca_buf_free(&csr);
    ca_buf_free(&key);
}

static void apply_issue_rotated(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;
    store_node node;
    store_cert cert;

    init_cluster(f);
    make_issue(&cmd, WORKER_ID, STORE_ROLE_WORKER, SERIAL_WORKER, HASH_WORKER,
               keys.old_worker_token);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_TOKEN_ROTATED);
    expect_empty_result(&result);

    assert_int_equal(node_lookup(f, WORKER_ID, &node), STORE_ENOTFOUND);
    assert_int_equal(node_count(f), 1);
    assert_int_equal(cert_lookup(f, SERIAL_WORKER, NULL), STORE_ENOTFOUND);
    assert_int_equal(cert_by_key(f, HASH_WORKER, &cert), STORE_ENOTFOUND);

    apply_result_clear(&result);
    store_command_free(&cmd);
}

static void apply_issue_other_role_token(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;

    /* The manager token does not approve a worker, nor the reverse. */
    init_cluster(f);
    make_issue(&cmd, WORKER_ID, STORE_ROLE_WORKER, SERIAL_WORKER, HASH_WORKER,
               keys.manager_token);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_TOKEN_ROTATED);
    apply_result_clear(&result);
    store_command_free(&cmd);

    make_issue(&cmd, WORKER_ID, STORE_ROLE_MANAGER, SERIAL_WORKER, HASH_WORKER,
               keys.worker_token);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_TOKEN_ROTATED);
    apply_result_clear(&result);
    store_command_free(&cmd);

    assert_int_equal(node_count(f), 1);
}

static void apply_issue_manager(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;
    store_node node;

    init_cluster(f);
    make_issue(&cmd, OTHER_WORKER_ID, STORE_ROLE_MANAGER, SERIAL_WORKER, HASH_WORKER,
               keys.manager_token);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);
    assert_int_equal(result.role, STORE_ROLE_MANAGER);
    assert_int_equal(node_lookup(f, OTHER_WORKER_ID, &node), 0);
    assert_int_equal(node.role, STORE_ROLE_MANAGER);
    apply_result_clear(&result);
    store_command_free(&cmd);
}

static void apply_issue_retry(void **state)
{
    struct apply_fixture *f = *state;
    store_command first;
    store_command retry;
    apply_result result;
    store_node node;

    init_cluster(f);
    make_worker_issue(&first, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    assert_int_equal(apply_one(f, &first, &result), APPLY_OK);
    apply_result_clear(&result);

    /* The retry was signed again by the leader, with a new node id and
     * serial, but carries the same key. */
    make_worker_issue(&retry, OTHER_WORKER_ID, SERIAL_RETRY, HASH_WORKER);
    assert_int_equal(apply_one(f, &retry, &result), APPLY_OK);
    assert_string_equal(result.node_id, WORKER_ID);
    assert_int_equal(result.role, STORE_ROLE_WORKER);
    assert_non_null(result.cert_pem);
    assert_string_equal(result.cert_pem, first.cert.cert_pem);

    assert_int_equal(node_count(f), 2);
    assert_int_equal(node_lookup(f, OTHER_WORKER_ID, &node), STORE_ENOTFOUND);
    assert_int_equal(cert_lookup(f, SERIAL_RETRY, NULL), STORE_ENOTFOUND);
    assert_int_equal(cert_lookup(f, SERIAL_WORKER, NULL), 0);

    apply_result_clear(&result);
    store_command_free(&retry);
    store_command_free(&first);
}

static void apply_issue_conflict(void **state)
{
    struct apply_fixture *f = *state;
    store_command first;
    store_command other;
    apply_result result;
    store_node node;
    store_cert cert;

    init_cluster(f);
    make_worker_issue(&first, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    assert_int_equal(apply_one(f, &first, &result), APPLY_OK);
    apply_result_clear(&result);

    /* The same key, approved by the manager token this time. */
    make_issue(&other, OTHER_WORKER_ID, STORE_ROLE_MANAGER, SERIAL_RETRY, HASH_WORKER,
               keys.manager_token);
    assert_int_equal(apply_one(f, &other, &result), APPLY_CONFLICT);
    expect_empty_result(&result);

    assert_int_equal(node_count(f), 2);
    assert_int_equal(node_lookup(f, OTHER_WORKER_ID, &node), STORE_ENOTFOUND);
    assert_int_equal(cert_lookup(f, SERIAL_RETRY, NULL), STORE_ENOTFOUND);
    assert_int_equal(cert_by_key(f, HASH_WORKER, &cert), 0);
    assert_string_equal(cert.serial, SERIAL_WORKER);
    assert_int_equal(cert.role, STORE_ROLE_WORKER);
    store_cert_free(&cert);

    apply_result_clear(&result);
    store_command_free(&other);
    store_command_free(&first);
}

static void apply_issue_no_cluster(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;

    make_worker_issue(&cmd, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_NO_CLUSTER);
    expect_empty_result(&result);
    assert_int_equal(node_count(f), 0);
    assert_int_equal(cert_lookup(f, SERIAL_WORKER, NULL), STORE_ENOTFOUND);
    apply_result_clear(&result);
    store_command_free(&cmd);
}

static void apply_issue_removed(void **state)
{
    struct apply_fixture *f = *state;
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd;
    apply_result result;
    store_txn *txn;
    store_node node;
    store_cert cert;

    init_cluster(f);
    assert_int_equal(store_txn_begin(f->s, 1, &txn, errmsg), 0);
    assert_int_equal(store_removed_put(txn, WORKER_ID, NOW + EXPIRY, errmsg), 0);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);

    make_worker_issue(&cmd, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_REMOVED);
    expect_empty_result(&result);
    assert_int_equal(node_lookup(f, WORKER_ID, &node), STORE_ENOTFOUND);
    assert_int_equal(cert_by_key(f, HASH_WORKER, &cert), STORE_ENOTFOUND);
    apply_result_clear(&result);
    store_command_free(&cmd);
}

static void apply_issue_no_pem(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd;
    apply_result result;

    /* The decoder accepts an ISSUE whose certificate is nil; applying it
     * must not crash the manager. */
    init_cluster(f);
    make_worker_issue(&cmd, WORKER_ID, SERIAL_WORKER, HASH_WORKER);
    free(cmd.cert.cert_pem);
    cmd.cert.cert_pem = NULL;
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);
    assert_null(result.cert_pem);
    apply_result_clear(&result);
    store_command_free(&cmd);
}

/* ---- SET_EXPIRY and the rest ---- */

static void apply_expiry_updates(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd = {.type = STORE_CMD_SET_EXPIRY, .cert_expiry = 7200};
    apply_result result;
    store_cluster cluster;

    init_cluster(f);
    assert_int_equal(apply_one(f, &cmd, &result), APPLY_OK);
    apply_result_clear(&result);

    read_cluster(f, &cluster);
    assert_int_equal(cluster.cert_expiry, 7200);

    /* The rest of the record is unchanged. */
    assert_string_equal(cluster.id, CLUSTER_ID);
    assert_string_equal(cluster.worker_token, keys.worker_token);
    assert_string_equal(cluster.manager_token, keys.manager_token);
    assert_string_equal(cluster.signer_key_pem, keys.root_key.data);
    assert_int_equal(cluster.created, NOW);
    store_cluster_free(&cluster);
}

static void apply_expiry_no_cluster(void **state)
{
    struct apply_fixture *f = *state;
    store_command cmd = {.type = STORE_CMD_SET_EXPIRY, .cert_expiry = 7200};
    apply_result result;
    store_txn *txn;
    store_cluster cluster;

    assert_int_equal(apply_one(f, &cmd, &result), APPLY_NO_CLUSTER);
    apply_result_clear(&result);

    txn = begin_read(f);
    assert_int_equal(store_cluster_get(txn, &cluster, NULL), STORE_ENOTFOUND);
    store_txn_abort(txn);
}

static void apply_unknown_type(void **state)
{
    struct apply_fixture *f = *state;
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_command cmd = {.type = 99};
    apply_result result;
    store_txn *txn;

    assert_int_equal(store_txn_begin(f->s, 1, &txn, errmsg), 0);
    assert_int_equal(apply_command(txn, &cmd, &result, errmsg), STORE_EINVALID);
    store_txn_abort(txn);
}

static void apply_status_texts(void **state)
{
    static const int statuses[] = {APPLY_OK,         APPLY_TOKEN_ROTATED, APPLY_REMOVED,
                                   APPLY_CONFLICT,   APPLY_NO_CLUSTER,    APPLY_EXISTS};
    size_t n = sizeof(statuses) / sizeof(statuses[0]);

    /* Every status has its own text, and an unknown one still has one. */
    for (size_t i = 0; i < n; i++) {
        assert_non_null(apply_status_text(statuses[i]));
        assert_true(strlen(apply_status_text(statuses[i])) > 0);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(apply_status_text(statuses[i]),
                                    apply_status_text(statuses[j]));
        }
    }
    assert_non_null(apply_status_text(-1));
}

static void apply_result_cleared(void **state)
{
    apply_result result = {.status = APPLY_OK, .role = STORE_ROLE_WORKER};

    snprintf(result.node_id, sizeof(result.node_id), "%s", WORKER_ID);
    result.cert_pem = dup_text("pem");
    apply_result_clear(&result);
    assert_null(result.cert_pem);
    assert_string_equal(result.node_id, "");
    assert_int_equal(result.role, 0);
}

int run_apply_tests(void)
{
#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, store_setup, store_teardown)
    const struct CMUnitTest tests[] = {
        STORE_TEST(apply_init_creates),
        STORE_TEST(apply_init_twice),
        STORE_TEST(apply_issue_creates),
        STORE_TEST(apply_issue_signed),
        STORE_TEST(apply_issue_rotated),
        STORE_TEST(apply_issue_other_role_token),
        STORE_TEST(apply_issue_manager),
        STORE_TEST(apply_issue_retry),
        STORE_TEST(apply_issue_conflict),
        STORE_TEST(apply_issue_no_cluster),
        STORE_TEST(apply_issue_removed),
        STORE_TEST(apply_issue_no_pem),
        STORE_TEST(apply_expiry_updates),
        STORE_TEST(apply_expiry_no_cluster),
        STORE_TEST(apply_unknown_type),
        cmocka_unit_test(apply_status_texts),
        cmocka_unit_test(apply_result_cleared),
    };
#undef STORE_TEST

    return cmocka_run_group_tests_name("apply", tests, keys_setup, keys_teardown);
}
