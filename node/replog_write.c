/* The worker-thread half of the replicated log: one LMDB write transaction
 * per batch of Raft updates. It persists hard state, snapshot chunks and
 * entries in update order, applies the committed entries with the applied
 * index, takes a snapshot when asked, and commits with one fsync. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/replog_internal.h"

void captured_free(captured *c)
{
    for (size_t i = 0; i < c->n_entries; i++) {
        store_entry_free(&c->entries[i]);
    }
    for (size_t i = 0; i < c->n_committed; i++) {
        store_entry_free(&c->committed[i]);
        apply_result_clear(&c->results[i]);
    }
    for (size_t i = 0; i < c->n_held; i++) {
        free(c->held[i].data);
    }
    store_snapshot_meta_free(&c->snapshot_meta);
    free(c->snapshot_data);
    free(c->entries);
    free(c->committed);
    free(c->results);
    free(c->applied);
    free(c->held);
    free(c);
}

static int persist_snapshot(job *j, store_txn *txn, captured *c)
{
    int rv = store_snapshot_stage(txn, c->snapshot_offset, c->snapshot_data, c->snapshot_len,
                                  j->errmsg);

    if (rv != 0 || !c->install) {
        return rv;
    }
    rv = store_snapshot_install(txn, &c->snapshot_meta, j->errmsg);
    if (rv == 0) {
        j->applied = c->snapshot_meta.index;
        j->reload = 1;
    }
    return rv;
}

static int persist_update(job *j, store_txn *txn, captured *c)
{
    int rv = 0;

    if (c->hard_state_changed) {
        store_hard_state hs = {.term = c->term, .vote = c->vote, .commit = 0};
        rv = store_hard_state_put(txn, &hs, j->errmsg);
    }
    if (rv == 0 && c->has_snapshot) {
        rv = persist_snapshot(j, txn, c);
    }
    if (rv == 0 && c->n_entries > 0) {
        /* A new suffix replaces whatever the log held from its first index. */
        rv = store_log_truncate(txn, c->entries[0].index, j->errmsg);
        if (rv == 0) {
            rv = store_log_append(txn, c->entries, c->n_entries, j->errmsg);
        }
    }
    if (rv == 0 && c->compact_index > 0) {
        rv = store_log_compact(txn, c->compact_index, j->errmsg);
    }
    return rv;
}

static int touches_managers(const store_command *cmd)
{
    return cmd->type == STORE_CMD_CLUSTER_INIT || cmd->type == STORE_CMD_REMOVE ||
           (cmd->type == STORE_CMD_ISSUE && cmd->node.role == STORE_ROLE_MANAGER);
}

static int apply_committed(job *j, store_txn *txn, captured *c)
{
    for (size_t i = 0; i < c->n_committed; i++) {
        store_entry *e = &c->committed[i];
        store_command cmd;
        int rv;

        /* An installed snapshot already contains these entries. */
        if (e->index <= j->applied) {
            continue;
        }
        if (e->type == STORE_ENTRY_NORMAL) {
            rv = store_command_decode(e->data, e->len, &cmd, j->errmsg);
            if (rv == 0) {
                rv = apply_command(txn, &cmd, &c->results[i], j->errmsg);
                j->reload |= touches_managers(&cmd) || cmd.type == STORE_CMD_SET_EXPIRY;
                store_command_free(&cmd);
            }
            if (rv != 0) {
                return rv;
            }
        }
        c->applied[i] = 1;
        j->applied = e->index;
    }
    return 0;
}

static int collect_manager(const store_node *n, void *arg)
{
    job *j = arg;
    store_node *grown;

    if (n->role != STORE_ROLE_MANAGER) {
        return 0;
    }
    grown = realloc(j->managers, (j->n_managers + 1) * sizeof(*grown));
    if (grown == NULL) {
        return STORE_ENOMEM;
    }
    j->managers = grown;
    j->managers[j->n_managers++] = *n;
    return 0;
}

/* Reads what the loop thread caches: the cluster record and the managers. */
static int reload(job *j, store_txn *txn)
{
    int rv = store_cluster_get(txn, &j->cluster, j->errmsg);

    if (rv == STORE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    j->have_cluster = 1;
    rv = store_node_each(txn, collect_manager, j, j->errmsg);
    j->have_managers = rv == 0;
    return rv;
}

static int write_batch(job *j, store_txn *txn)
{
    int rv = 0;

    for (captured *c = j->first; rv == 0 && c != NULL; c = c->next) {
        rv = persist_update(j, txn, c);
        if (rv == 0) {
            rv = apply_committed(j, txn, c);
        }
    }
    if (rv == 0 && j->applied != j->applied_before) {
        rv = store_applied_put(txn, j->applied, j->errmsg);
    }
    if (rv == 0 && j->take_snapshot) {
        rv = store_snapshot_take(txn, j->snapshot_index, j->snapshot_term, j->snapshot_config,
                                 j->snapshot_config_len, j->errmsg);
    }
    if (rv == 0 && j->reload) {
        rv = reload(j, txn);
    }
    return rv;
}

void replog_write(uv_work_t *req)
{
    job *j = req->data;
    store_txn *txn;
    int rv;

    j->applied = j->applied_before;
    rv = store_txn_begin(j->log->store, 1, &txn, j->errmsg);
    if (rv == 0) {
        rv = write_batch(j, txn);
        if (rv == 0) {
            rv = store_txn_commit(txn, j->errmsg);
        } else {
            store_txn_abort(txn);
        }
    }
    if (rv != 0) {
        /* Nothing of the batch is durable or applied. */
        j->applied = j->applied_before;
        for (captured *c = j->first; c != NULL; c = c->next) {
            memset(c->applied, 0, c->n_committed * sizeof(*c->applied));
        }
    }
    j->status = rv;
}
