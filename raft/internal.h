/* Private state of the Raft core, shared by the files of raft/. */
#ifndef SWARMPKI_RAFT_INTERNAL_H
#define SWARMPKI_RAFT_INTERNAL_H

#include "raft/raft.h"

/* The log as the core reads it: the snapshot, then stored entries
 * [first, stable], then entries still in memory (stable, last] that the caller
 * was asked to persist. Stored entries above stable are stale and never read. */
struct raft_log {
    raft_index first;
    raft_index snap_index;
    raft_term snap_term;
    raft_index stable;
    struct raft_entry *mem; /* mem[0] has index stable + 1 */
    size_t n_mem;
    size_t cap_mem;
};

/* A configuration entry in the log above the snapshot. */
struct raft_config_at {
    raft_index index;
    struct raft_config config;
};

enum progress_mode {
    PROGRESS_PROBE = 1,     /* one append at a time until a match is found */
    PROGRESS_REPLICATE = 2, /* pipelined appends up to max_inflight */
    PROGRESS_SNAPSHOT = 3,  /* sending the snapshot in chunks */
};

/* The leader's view of one other member (Raft dissertation, chapter 3). */
struct progress {
    raft_id id;
    uint8_t role;
    uint8_t mode;
    raft_index match;
    raft_index next;
    raft_index *inflight; /* ring of last indexes of appends in flight */
    uint32_t n_inflight;
    uint32_t inflight_head;
    uint64_t last_send; /* ms; for resending a probe or chunk */
    uint64_t last_ack;  /* ms; last time match advanced or a probe got a reply */
    bool active;        /* heard from since the last check-quorum round */
    uint64_t acked_seq; /* highest read barrier round acknowledged */
    raft_index snap_index;
    uint64_t snap_offset;
    raft_index sent_commit; /* the commit index the last append let p learn */
};

struct pending_read {
    uint64_t id;
    raft_index index; /* 0 until the leader has committed an entry of its term */
    uint64_t seq;
};

/* Growable output arrays of the update under construction. */
struct scratch {
    struct raft_message *msgs;
    size_t n_msgs, cap_msgs;
    struct raft_entry *committed;
    size_t cap_committed;
    struct raft_read *reads;
    size_t n_reads, cap_reads;
    void **garbage; /* freed at the start of the next step */
    size_t n_garbage, cap_garbage;
};

struct raft {
    struct raft_options opt;
    struct raft_storage st;
    raft_id id;

    uint8_t state;
    raft_term term;
    raft_id vote;
    raft_id leader;
    uint64_t now;
    uint64_t rng;

    struct raft_log log;
    raft_index commit;
    raft_index applied;

    struct raft_config base_config; /* configuration at the snapshot */
    struct raft_config_at *configs; /* configuration entries above it, ascending */
    size_t n_configs;

    uint64_t election_deadline;
    uint64_t heartbeat_deadline;
    uint64_t quorum_deadline;
    uint64_t leader_contact; /* ms of the last message from the current leader */

    raft_id *granted; /* votes (or pre-votes) received this election */
    size_t n_granted;
    size_t n_rejected;

    struct progress *prs;
    size_t n_prs;
    raft_index term_start; /* index of this leader's no-op entry */
    uint64_t seq;
    struct pending_read *pending_reads;
    size_t n_pending_reads, cap_pending_reads;
    raft_id transfer_target;
    uint64_t transfer_deadline;
    raft_id promote_pending; /* learner to promote once its match reaches promote_bar */
    raft_index promote_bar;

    raft_index recv_snap_index; /* snapshot being received, 0 for none */
    raft_term recv_snap_term;
    uint64_t recv_snap_offset;

    struct scratch out;
    struct raft_update *u;
    raft_index persist_from; /* lowest memory index changed during this step */
    uint8_t prev_state;
    raft_id prev_leader;
};

/* raft.c */
void trace(struct raft *r, raft_index index, raft_id peer, const char *msg);
/* Queues m from this server; a zero term is replaced by the current term. */
int send_message(struct raft *r, const struct raft_message *m);
int add_garbage(struct raft *r, void *p);
uint64_t election_min_ms(const struct raft *r);
void reset_election_timer(struct raft *r);
void fail_reads(struct raft *r);

/* log.c */
raft_index log_last(const struct raft_log *l);
int log_term(const struct raft *r, raft_index index, raft_term *term);
const struct raft_entry *log_mem_at(const struct raft_log *l, raft_index index);
int log_append(struct raft *r, const struct raft_entry *e);
int log_truncate(struct raft *r, raft_index from);
int log_get(struct raft *r, raft_index lo, raft_index hi, size_t max_bytes,
            struct raft_entry *out, size_t cap, size_t *n);
void log_persisted(struct raft *r, raft_index index, raft_term term);
void log_reset_to_snapshot(struct raft *r, raft_index index, raft_term term);
void log_free(struct raft *r);
int log_load(struct raft *r);

/* config.c */
const struct raft_config *config_current(const struct raft *r);
raft_index config_index(const struct raft *r);
const struct raft_config *config_at(const struct raft *r, raft_index index);
int config_push(struct raft *r, raft_index index, const struct raft_config *c);
void config_drop_from(struct raft *r, raft_index from);
void config_compact(struct raft *r, raft_index index);
bool is_voter(const struct raft *r, raft_id id);
bool is_removed(const struct raft *r, raft_id id);
size_t quorum_size(const struct raft *r);

/* election.c */
void become_follower(struct raft *r, raft_term term, raft_id leader);
int become_leader(struct raft *r);
int start_election(struct raft *r, bool pre_vote, bool transfer);
int election_tick(struct raft *r);
int recv_vote(struct raft *r, const struct raft_message *m);
int recv_vote_resp(struct raft *r, const struct raft_message *m);
int recv_timeout_now(struct raft *r, const struct raft_message *m);

/* replication.c */
struct progress *progress_get(struct raft *r, raft_id id);
int progress_rebuild(struct raft *r);
void progress_free_all(struct raft *r);
int send_append(struct raft *r, struct progress *p, bool heartbeat);
int broadcast_append(struct raft *r, bool heartbeat);
int maybe_commit(struct raft *r);
int recv_append(struct raft *r, const struct raft_message *m);
int recv_append_resp(struct raft *r, const struct raft_message *m);
int leader_tick(struct raft *r);
int append_local(struct raft *r, uint8_t type, const uint8_t *data, size_t len);
void check_reads(struct raft *r);
int after_match(struct raft *r, struct progress *p);

/* snapshot.c */
int send_snapshot_chunk(struct raft *r, struct progress *p);
int recv_snapshot(struct raft *r, const struct raft_message *m);
int recv_snapshot_resp(struct raft *r, const struct raft_message *m);
int take_snapshot(struct raft *r, raft_index index, raft_term term);

/* membership.c */
int change_membership(struct raft *r, uint8_t type, raft_id id);
int maybe_promote(struct raft *r);
int start_transfer(struct raft *r, raft_id target);
int maybe_send_timeout_now(struct raft *r, struct progress *p);

#endif
