#include "node/replog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/log.h"

typedef struct proposal {
    struct proposal *next;
    store_entry entry;
    replog_done_cb cb;
    void *arg;
    int status;
    char errmsg[STORE_ERRMSG_SIZE];
    apply_result result;
} proposal;

typedef struct batch {
    uv_work_t req;
    replog *log;
    proposal **items; /* in index order */
    size_t count;
    uint64_t first_index;
    int persist_status;
    int apply_status;
    char errmsg[STORE_ERRMSG_SIZE];
    uint64_t applied; /* after the batch */
    store_cluster cluster;
    int have_cluster;
} batch;

struct replog {
    uv_loop_t *loop;
    store *store;
    replog_cluster_cb on_cluster;
    void *cb_arg;
    uint64_t term;
    uint64_t last_index;
    uint64_t applied;
    proposal *queue_head;
    proposal *queue_tail;
    batch *in_flight;
    int closing;
    void (*ready)(void *arg, int status, const char *errmsg);
    void *ready_arg;
    void (*close_done)(void *arg);
    void *close_arg;
};

static void kick(replog *log);

int replog_open(uv_loop_t *loop, store *st, replog_cluster_cb on_cluster, void *arg,
                replog **out, char *errmsg)
{
    replog *log = calloc(1, sizeof(*log));
    store_hard_state hs;
    store_txn *txn;
    uint64_t first;
    int rv;

    if (log == NULL) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "open replicated log: out of memory");
        return STORE_ENOMEM;
    }
    rv = store_txn_begin(st, 0, &txn, errmsg);
    if (rv != 0) {
        free(log);
        return rv;
    }
    rv = store_hard_state_get(txn, &hs, errmsg);
    if (rv == 0) {
        rv = store_log_bounds(txn, &first, &log->last_index, errmsg);
    }
    if (rv == 0) {
        rv = store_applied_get(txn, &log->applied, errmsg);
    }
    store_txn_abort(txn);
    if (rv != 0) {
        free(log);
        return rv;
    }

    log->loop = loop;
    log->store = st;
    log->on_cluster = on_cluster;
    log->cb_arg = arg;
    log->term = hs.term ? hs.term : 1;
    *out = log;
    return 0;
}

uint64_t replog_applied(const replog *log)
{
    return log->applied;
}

static proposal *find_item(batch *b, uint64_t index)
{
    if (index < b->first_index || index >= b->first_index + b->count) {
        return NULL;
    }
    return b->items[index - b->first_index];
}

/* Worker thread: one transaction appends the batch and makes it durable. */
static int persist_batch(batch *b)
{
    store_entry *entries;
    store_txn *txn;
    int rv;

    if (b->count == 0) {
        return 0;
    }
    entries = calloc(b->count, sizeof(*entries));
    if (entries == NULL) {
        snprintf(b->errmsg, sizeof(b->errmsg), "persist log entries: out of memory");
        return STORE_ENOMEM;
    }
    for (size_t i = 0; i < b->count; i++) {
        entries[i] = b->items[i]->entry;
    }
    rv = store_txn_begin(b->log->store, 1, &txn, b->errmsg);
    if (rv == 0) {
        rv = store_log_append(txn, entries, b->count, b->errmsg);
        if (rv == 0) {
            rv = store_txn_commit(txn, b->errmsg);
        } else {
            store_txn_abort(txn);
        }
    }
    free(entries);
    return rv;
}

static int apply_entry(batch *b, store_txn *txn, const store_entry *entry)
{
    store_command cmd;
    apply_result scratch;
    proposal *item = find_item(b, entry->index);
    apply_result *result = item ? &item->result : &scratch;
    int rv;

    if (entry->type != STORE_ENTRY_NORMAL) {
        return 0;
    }
    rv = store_command_decode(entry->data, entry->len, &cmd, b->errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = apply_command(txn, &cmd, result, b->errmsg);
    store_command_free(&cmd);
    if (result == &scratch) {
        apply_result_clear(&scratch);
    }
    return rv;
}

/* Worker thread: applies every committed entry not yet applied, in one
 * transaction that also records the applied index. With one voter, all
 * durable entries are committed. */
static int apply_committed(batch *b)
{
    uint64_t applied = b->log->applied;
    uint64_t first;
    uint64_t last;
    store_txn *txn;
    int rv;

    rv = store_txn_begin(b->log->store, 1, &txn, b->errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = store_log_bounds(txn, &first, &last, b->errmsg);
    for (uint64_t i = applied + 1; rv == 0 && i <= last; i++) {
        store_entry entry;
        rv = store_log_get(txn, i, &entry, b->errmsg);
        if (rv == 0) {
            rv = apply_entry(b, txn, &entry);
            store_entry_free(&entry);
        }
        if (rv == 0) {
            applied = i;
        }
    }
    if (rv == 0 && applied != b->log->applied) {
        rv = store_applied_put(txn, applied, b->errmsg);
    }
    if (rv == 0) {
        int found = store_cluster_get(txn, &b->cluster, b->errmsg);
        b->have_cluster = found == 0;
        rv = found == STORE_ENOTFOUND ? 0 : found;
    }
    if (rv != 0) {
        store_txn_abort(txn);
        return rv;
    }
    rv = store_txn_commit(txn, b->errmsg);
    if (rv == 0) {
        b->applied = applied;
    }
    return rv;
}

static void work(uv_work_t *req)
{
    batch *b = req->data;

    b->applied = b->log->applied;
    b->persist_status = persist_batch(b);
    if (b->persist_status == 0) {
        b->apply_status = apply_committed(b);
    }
}

static void finish_item(proposal *item, int status, const char *errmsg)
{
    item->cb(item->arg, status, errmsg, &item->result);
    apply_result_clear(&item->result);
    free(item->entry.data);
    free(item);
}

static void after_work(uv_work_t *req, int status)
{
    batch *b = req->data;
    replog *log = b->log;
    int rv = b->persist_status ? b->persist_status : b->apply_status;

    if (status != 0 && rv == 0) {
        rv = STORE_EIO;
        snprintf(b->errmsg, sizeof(b->errmsg), "log write was cancelled");
    }
    if (b->persist_status != 0) {
        /* Nothing of the batch reached the log: its indexes are free again. */
        log->last_index = b->first_index - 1;
        log_event(LOG_ERROR, "persisting log entries failed", "entries=%zu error=%s", b->count,
                  log_quote(b->errmsg));
    } else if (b->apply_status != 0) {
        log_event(LOG_ERROR, "applying committed entries failed; retrying with the next batch",
                  "applied=%llu error=%s", (unsigned long long)log->applied,
                  log_quote(b->errmsg));
    }
    log->applied = b->applied;

    if (b->have_cluster && log->on_cluster != NULL) {
        log->on_cluster(log->cb_arg, &b->cluster);
    } else if (b->have_cluster) {
        store_cluster_free(&b->cluster);
    }
    for (size_t i = 0; i < b->count; i++) {
        finish_item(b->items[i], rv, rv ? b->errmsg : NULL);
    }
    if (log->ready != NULL) {
        void (*ready)(void *, int, const char *) = log->ready;
        log->ready = NULL;
        ready(log->ready_arg, rv, rv ? b->errmsg : NULL);
    }
    free(b->items);
    free(b);

    /* Only now may the next batch start, or a close requested by one of
     * the callbacks above free the log. */
    log->in_flight = NULL;
    kick(log);
}

static int submit(replog *log, batch *b)
{
    int rv;

    b->log = log;
    b->req.data = b;
    rv = uv_queue_work(log->loop, &b->req, work, after_work);
    if (rv == 0) {
        log->in_flight = b;
    }
    return rv;
}

/* Takes every queued proposal into one batch, unless a batch is in flight. */
static void kick(replog *log)
{
    size_t count = 0;
    batch *b;

    if (log->in_flight != NULL) {
        return;
    }
    if (log->closing) {
        if (log->close_done != NULL) {
            void (*done)(void *) = log->close_done;
            void *arg = log->close_arg;
            free(log);
            done(arg);
        }
        return;
    }
    if (log->queue_head == NULL) {
        return;
    }
    b = calloc(1, sizeof(*b));
    for (proposal *p = log->queue_head; p != NULL; p = p->next) {
        count++;
    }
    if (b != NULL) {
        b->items = calloc(count, sizeof(*b->items));
    }
    if (b == NULL || b->items == NULL) {
        /* Leave the queue as it is; the next proposal tries again. */
        free(b);
        log_event(LOG_ERROR, "out of memory while batching log entries", NULL);
        return;
    }
    b->first_index = log->last_index + 1;
    for (proposal *p = log->queue_head; p != NULL; p = p->next) {
        p->entry.index = ++log->last_index;
        p->entry.term = log->term;
        b->items[b->count++] = p;
    }
    log->queue_head = log->queue_tail = NULL;
    if (submit(log, b) != 0) {
        log->last_index = b->first_index - 1;
        for (size_t i = 0; i < b->count; i++) {
            finish_item(b->items[i], STORE_EIO, "could not queue the log write");
        }
        free(b->items);
        free(b);
    }
}

int replog_start(replog *log, void (*ready)(void *arg, int status, const char *errmsg),
                 void *arg)
{
    batch *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        return STORE_ENOMEM;
    }
    log->ready = ready;
    log->ready_arg = arg;
    if (submit(log, b) != 0) {
        free(b);
        log->ready = NULL;
        return STORE_EIO;
    }
    return 0;
}

int replog_propose(replog *log, const store_command *cmd, replog_done_cb cb, void *arg,
                   char *errmsg)
{
    proposal *p;
    int rv;

    if (log->closing) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "the node is shutting down");
        return STORE_EINVALID;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "queue log entry: out of memory");
        return STORE_ENOMEM;
    }
    rv = store_command_encode(cmd, &p->entry.data, &p->entry.len, errmsg);
    if (rv != 0) {
        free(p);
        return rv;
    }
    p->entry.type = STORE_ENTRY_NORMAL;
    p->cb = cb;
    p->arg = arg;
    if (log->queue_tail != NULL) {
        log->queue_tail->next = p;
    } else {
        log->queue_head = p;
    }
    log->queue_tail = p;
    kick(log);
    return 0;
}

void replog_close(replog *log, void (*done)(void *arg), void *arg)
{
    proposal *p = log->queue_head;

    log->closing = 1;
    log->close_done = done;
    log->close_arg = arg;
    log->queue_head = log->queue_tail = NULL;
    while (p != NULL) {
        proposal *next = p->next;
        finish_item(p, STORE_EINVALID, "the node is shutting down");
        p = next;
    }
    kick(log);
}
