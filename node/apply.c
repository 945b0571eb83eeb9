#include "node/apply.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

void apply_result_clear(apply_result *r)
{
    free(r->cert_pem);
    memset(r, 0, sizeof(*r));
}

const char *apply_status_text(int status)
{
    switch (status) {
    case APPLY_OK:
        return "applied";
    case APPLY_TOKEN_ROTATED:
        return "the join token was rotated before the request was committed";
    case APPLY_REMOVED:
        return "the node was removed from the cluster";
    case APPLY_CONFLICT:
        return "this key already has a certificate for another role, or the serial is taken";
    case APPLY_NO_CLUSTER:
        return "the cluster is not initialized";
    case APPLY_EXISTS:
        return "the cluster is already initialized";
    }
    return "unknown result";
}

static int apply_init(store_txn *txn, const store_command *cmd, apply_result *result,
                      char *errmsg)
{
    store_cluster existing;
    int rv = store_cluster_get(txn, &existing, errmsg);

    if (rv == 0) {
        store_cluster_free(&existing);
        result->status = APPLY_EXISTS;
        return 0;
    }
    if (rv != STORE_ENOTFOUND) {
        return rv;
    }
    rv = store_cluster_put(txn, &cmd->cluster, errmsg);
    if (rv == 0) {
        rv = store_node_put(txn, &cmd->node, errmsg);
    }
    if (rv == 0) {
        rv = store_cert_put(txn, &cmd->cert, errmsg);
    }
    return rv;
}

/* Fills result from the certificate already issued for the same key. */
static int answer_existing(store_cert *existing, int role, uint64_t raft_id,
                           apply_result *result)
{
    if (existing->role != role) {
        result->status = APPLY_CONFLICT;
        return 0;
    }
    memcpy(result->node_id, existing->node_id, sizeof(result->node_id));
    result->role = existing->role;
    result->raft_id = raft_id;
    result->cert_pem = existing->cert_pem;
    existing->cert_pem = NULL;
    return 0;
}

static int apply_issue(store_txn *txn, const store_command *cmd, apply_result *result,
                       char *errmsg)
{
    store_cluster cluster;
    store_cert existing;
    int64_t prune_after;
    const char *current;
    int rv;

    rv = store_cluster_get(txn, &cluster, errmsg);
    if (rv == STORE_ENOTFOUND) {
        result->status = APPLY_NO_CLUSTER;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    current = cmd->node.role == STORE_ROLE_MANAGER ? cluster.manager_token : cluster.worker_token;
    rv = ca_token_equal(cmd->token, current);
    store_cluster_free(&cluster);
    if (!rv) {
        result->status = APPLY_TOKEN_ROTATED;
        return 0;
    }

    /* A retried join carries the same key: respond with what is on record. */
    rv = store_cert_by_key(txn, cmd->cert.key_hash, &existing, errmsg);
    if (rv == 0) {
        store_node node = {0};
        rv = store_node_get(txn, existing.node_id, &node, errmsg);
        if (rv != 0 && rv != STORE_ENOTFOUND) {
            store_cert_free(&existing);
            return rv;
        }
        rv = answer_existing(&existing, cmd->node.role, node.raft_id, result);
        store_cert_free(&existing);
        return rv;
    }
    if (rv != STORE_ENOTFOUND) {
        return rv;
    }

    /* Serials are 20 random bytes, so a repeat means a broken generator:
     * refuse it rather than overwrite another node's record. */
    rv = store_cert_get(txn, cmd->cert.serial, &existing, errmsg);
    if (rv == 0) {
        store_cert_free(&existing);
        result->status = APPLY_CONFLICT;
        return 0;
    }
    if (rv != STORE_ENOTFOUND) {
        return rv;
    }

    rv = store_removed_get(txn, cmd->node.id, &prune_after, errmsg);
    if (rv == 0) {
        result->status = APPLY_REMOVED;
        return 0;
    }
    if (rv != STORE_ENOTFOUND) {
        return rv;
    }

    rv = store_node_put(txn, &cmd->node, errmsg);
    if (rv == 0) {
        rv = store_cert_put(txn, &cmd->cert, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    memcpy(result->node_id, cmd->node.id, sizeof(result->node_id));
    result->role = cmd->node.role;
    result->raft_id = cmd->node.raft_id;

    /* The decoder accepts a nil certificate, which leaves cert_pem NULL. */
    if (cmd->cert.cert_pem == NULL) {
        return 0;
    }
    result->cert_pem = strdup(cmd->cert.cert_pem);
    return result->cert_pem == NULL ? STORE_ENOMEM : 0;
}

static int apply_expiry(store_txn *txn, const store_command *cmd, apply_result *result,
                        char *errmsg)
{
    store_cluster cluster;
    int rv = store_cluster_get(txn, &cluster, errmsg);

    if (rv == STORE_ENOTFOUND) {
        result->status = APPLY_NO_CLUSTER;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    cluster.cert_expiry = cmd->cert_expiry;
    rv = store_cluster_put(txn, &cluster, errmsg);
    store_cluster_free(&cluster);
    return rv;
}

/* Records status transitions; nodes removed meanwhile are skipped. */
static int apply_status(store_txn *txn, const store_command *cmd, char *errmsg)
{
    for (uint32_t i = 0; i < cmd->status_count; i++) {
        store_node node;
        int rv = store_node_get(txn, cmd->status_ids[i], &node, errmsg);

        if (rv == STORE_ENOTFOUND) {
            continue;
        }
        if (rv != 0) {
            return rv;
        }
        node.status = cmd->statuses[i];
        node.updated = cmd->updated;
        rv = store_node_put(txn, &node, errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int apply_remove(store_txn *txn, const store_command *cmd, char *errmsg)
{
    int rv = store_node_delete(txn, cmd->node.id, errmsg);

    if (rv != 0 && rv != STORE_ENOTFOUND) {
        return rv;
    }
    return store_removed_put(txn, cmd->node.id, cmd->prune_after, errmsg);
}

int apply_command(store_txn *txn, const store_command *cmd, apply_result *result,
                  char *errmsg)
{
    memset(result, 0, sizeof(*result));
    switch (cmd->type) {
    case STORE_CMD_CLUSTER_INIT:
        return apply_init(txn, cmd, result, errmsg);
    case STORE_CMD_ISSUE:
        return apply_issue(txn, cmd, result, errmsg);
    case STORE_CMD_SET_EXPIRY:
        return apply_expiry(txn, cmd, result, errmsg);
    case STORE_CMD_NODE_STATUS:
        return apply_status(txn, cmd, errmsg);
    case STORE_CMD_REMOVE:
        return apply_remove(txn, cmd, errmsg);
    }
    /* The decoder rejects unknown types, so this is our own bug. */
    return STORE_EINVALID;
}
