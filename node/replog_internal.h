/* Private to replog.c and replog_storage.c. */
#ifndef SWARMPKI_NODE_REPLOG_INTERNAL_H
#define SWARMPKI_NODE_REPLOG_INTERNAL_H

#include "node/replog.h"

/* An encoded message waiting for its update to be durable. */
typedef struct held_message {
    uint64_t to;
    unsigned char *data;
    size_t len;
} held_message;

/* One Raft update, copied out of the core so it survives the next step. */
typedef struct captured {
    struct captured *next;
    int hard_state_changed;
    uint64_t term;
    uint64_t vote;

    int has_snapshot;
    int install;
    store_snapshot_meta snapshot_meta;
    uint64_t snapshot_offset;
    unsigned char *snapshot_data;
    size_t snapshot_len;

    store_entry *entries;
    size_t n_entries;
    uint64_t compact_index;

    held_message *held;
    size_t n_held;

    store_entry *committed;
    size_t n_committed;
    apply_result *results; /* one per committed entry, filled by the write */
    int *applied;          /* 1 where the write applied that entry */
} captured;

/* One write on a worker thread: the captured updates, in order. */
typedef struct job {
    uv_work_t req;
    struct replog *log;
    captured *first;
    uint64_t applied_before;
    uint64_t applied;
    int status;
    char errmsg[STORE_ERRMSG_SIZE];
    int take_snapshot;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    unsigned char *snapshot_config;
    size_t snapshot_config_len;
    int reload; /* re-read cluster and manager records */
    store_cluster cluster;
    int have_cluster;
    store_node *managers;
    size_t n_managers;
    int have_managers;
} job;

typedef struct proposal {
    struct proposal *next;
    uint64_t index;
    uint64_t term;
    replog_done_cb cb;
    void *arg;
} proposal;

struct replog {
    uv_loop_t *loop;
    store *store;
    struct raft *raft;
    struct raft_storage storage;
    replog_options opts;
    replog_callbacks cb;
    uv_timer_t tick;

    captured *queue_head; /* captured, waiting for the next write */
    captured *queue_tail;
    job *in_flight;
    proposal *proposals; /* in index order */
    proposal *proposals_tail;

    uint64_t applied;
    uint64_t snapshot_index;
    int snapshot_pending;
    int reload_pending;
    int state;
    uint64_t leader;
    uint64_t term;

    void (*ready)(void *arg, int status, const char *errmsg);
    void *ready_arg;
    int closing;
    void (*close_done)(void *arg);
    void *close_arg;
};

void replog_storage_init(struct replog *log);

/* Worker-thread half (replog_write.c). */
void replog_write(uv_work_t *req);
void captured_free(captured *c);

#endif
