/* The Raft core's read-only view of the LMDB store. Each callback runs a
 * short read transaction on the loop thread: LMDB reads are served from the
 * memory map, and the entries the core requests are the recently written
 * ones, so these reads rarely touch the disk. */
#include <stdlib.h>
#include <string.h>

#include "node/log.h"
#include "node/replog_internal.h"

static int begin(replog *log, store_txn **txn)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";

    if (store_txn_begin(log->store, 0, txn, errmsg) != 0) {
        log_event(LOG_ERROR, "reading the Raft log failed", "error=%s", log_quote(errmsg));
        return RAFT_ESTORAGE;
    }
    return 0;
}

static int read_hard_state(void *user, raft_term *term, raft_id *vote)
{
    replog *log = user;
    store_hard_state hs;
    store_txn *txn;
    int rv = begin(log, &txn);

    if (rv != 0) {
        return rv;
    }
    rv = store_hard_state_get(txn, &hs, NULL);
    store_txn_abort(txn);
    if (rv != 0) {
        return RAFT_ESTORAGE;
    }
    *term = hs.term;
    *vote = hs.vote;
    return 0;
}

static int read_snapshot_meta(void *user, struct raft_snapshot_meta *meta)
{
    replog *log = user;
    store_snapshot_meta m;
    store_txn *txn;
    int rv = begin(log, &txn);

    memset(meta, 0, sizeof(*meta));
    if (rv != 0) {
        return rv;
    }
    rv = store_snapshot_meta_get(txn, &m, NULL);
    store_txn_abort(txn);
    if (rv == STORE_ENOTFOUND) {
        /* A manager that joined and was never sent a snapshot starts with
         * an empty configuration and waits for the leader. */
        return 0;
    }
    if (rv != 0) {
        return RAFT_ESTORAGE;
    }
    meta->index = m.index;
    meta->term = m.term;
    meta->size = m.size;
    rv = m.config_len ? raft_config_decode(m.config, m.config_len, &meta->config) : 0;
    store_snapshot_meta_free(&m);
    return rv == 0 ? 0 : RAFT_ESTORAGE;
}

static int read_snapshot(void *user, raft_index index, uint64_t offset, uint8_t *buf,
                         size_t len)
{
    replog *log = user;
    store_txn *txn;
    int rv = begin(log, &txn);

    if (rv != 0) {
        return rv;
    }
    rv = store_snapshot_read(txn, index, offset, buf, len, NULL);
    store_txn_abort(txn);
    if (rv == STORE_ENOTFOUND) {
        return RAFT_ENOTFOUND;
    }
    return rv == 0 ? 0 : RAFT_ESTORAGE;
}

static void read_bounds(replog *log, uint64_t *first, uint64_t *last)
{
    store_snapshot_meta m;
    store_txn *txn;

    *first = *last = 0;
    if (begin(log, &txn) != 0) {
        return;
    }
    store_log_bounds(txn, first, last, NULL);
    if (*last == 0 && store_snapshot_meta_get(txn, &m, NULL) == 0) {
        /* An empty log continues right after the snapshot. */
        *last = m.index;
        *first = m.index + 1;
        store_snapshot_meta_free(&m);
    } else if (*last == 0) {
        *first = 1;
    }
    store_txn_abort(txn);
}

static raft_index read_first_index(void *user)
{
    uint64_t first;
    uint64_t last;

    read_bounds(user, &first, &last);
    return first;
}

static raft_index read_last_index(void *user)
{
    uint64_t first;
    uint64_t last;

    read_bounds(user, &first, &last);
    return last;
}

static int read_term(void *user, raft_index index, raft_term *term)
{
    replog *log = user;
    store_txn *txn;
    int rv = begin(log, &txn);

    if (rv != 0) {
        return rv;
    }
    rv = store_log_term(txn, index, term, NULL);
    store_txn_abort(txn);
    if (rv == STORE_ENOTFOUND) {
        return RAFT_ENOTFOUND;
    }
    return rv == 0 ? 0 : RAFT_ESTORAGE;
}

static int read_entries(void *user, raft_index lo, raft_index hi, size_t max_bytes,
                        struct raft_entry *out, size_t cap, size_t *n)
{
    replog *log = user;
    store_entry *entries;
    store_txn *txn;
    int rv;

    *n = 0;
    entries = calloc(cap ? cap : 1, sizeof(*entries));
    if (entries == NULL) {
        return RAFT_ENOMEM;
    }
    rv = begin(log, &txn);
    if (rv == 0) {
        rv = store_log_range(txn, lo, hi, max_bytes, entries, cap, n, NULL);
        store_txn_abort(txn);
        if (rv == STORE_ENOTFOUND) {
            rv = RAFT_ENOTFOUND;
        } else if (rv != 0) {
            rv = RAFT_ESTORAGE;
        }
    }
    /* The core frees entry data with free(), as the store allocated it. */
    for (size_t i = 0; rv == 0 && i < *n; i++) {
        out[i].index = entries[i].index;
        out[i].term = entries[i].term;
        out[i].type = (uint8_t)entries[i].type;
        out[i].data = entries[i].data;
        out[i].len = entries[i].len;
    }
    if (rv != 0) {
        for (size_t i = 0; i < *n; i++) {
            store_entry_free(&entries[i]);
        }
        *n = 0;
    }
    free(entries);
    return rv;
}

void replog_storage_init(replog *log)
{
    log->storage.user = log;
    log->storage.hard_state = read_hard_state;
    log->storage.snapshot_meta = read_snapshot_meta;
    log->storage.snapshot_read = read_snapshot;
    log->storage.first_index = read_first_index;
    log->storage.last_index = read_last_index;
    log->storage.term = read_term;
    log->storage.entries = read_entries;
}
