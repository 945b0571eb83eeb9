/* Deterministic Raft cluster simulator: simulated disks, network and clock
 * around the real core, with the Raft safety properties checked after every
 * event. Everything random comes from one seed, so a seed replays exactly. */
#ifndef SWARMPKI_SIM_H
#define SWARMPKI_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft/raft.h>

#define SIM_MAX_NODES 32
#define SIM_RING      48 /* recent events kept for a failure report */

struct sim_entry {
    raft_term term;
    uint8_t type;
    uint8_t *data;
    size_t len;
    uint64_t chain; /* hash of this entry and every entry before it */
};

/* What survives a crash: written only when a simulated write completes. */
struct sim_disk {
    raft_term term;
    raft_id vote;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;
    uint64_t snap_chain;
    raft_index first;
    struct sim_entry *entries; /* entries[0] has index first */
    size_t n, cap;
    uint8_t *stage; /* snapshot being received */
    size_t stage_size;
    raft_index applied; /* the application's state, durable as it applies */
    uint64_t app_hash;
};

/* One update waiting for its simulated disk write to complete. */
struct sim_pending {
    uint64_t done_at;
    struct raft_update u; /* deep copy */
    struct sim_pending *next;
};

struct sim_node {
    raft_id id;
    bool alive;
    uint64_t incarnation;
    struct raft *r;
    struct sim_disk disk;
    struct sim_pending *head, *tail;
    uint64_t disk_free_at;
    raft_index commit_seen;
    raft_index snapshot_every;
};

enum sim_event_kind {
    SIM_DELIVER = 1,
    SIM_TICK,
    SIM_DISK,
    SIM_RESTART,
    SIM_CHAOS,
    SIM_CLIENT,
    SIM_CRASH, /* crash the node if it has not restarted since this was scheduled */
};

struct sim_event {
    uint64_t time;
    uint64_t seq;
    uint8_t kind;
    int node;
    uint64_t incarnation;
    struct raft_message *msg;
};

struct sim_applied {
    raft_term term;
    uint64_t data_hash;
    uint64_t app_hash;
    bool set;
};

struct sim_committed {
    raft_term term;
    raft_term commit_term; /* term of the server that first reported it committed */
};

struct sim_params {
    int nodes;
    uint64_t steps;
    bool verbose;
    bool liveness;
};

struct sim {
    uint64_t seed;
    uint64_t rng;
    uint64_t now;
    uint64_t seq;
    struct sim_params params;
    struct raft_options opt;

    struct sim_node nodes[SIM_MAX_NODES];
    int n_nodes;
    raft_id next_id;

    struct sim_event *heap;
    size_t n_heap, cap_heap;

    /* network */
    bool cut[SIM_MAX_NODES][SIM_MAX_NODES]; /* cut[a][b]: a's messages to b are lost */
    uint32_t loss_pct, dup_pct, latency_min, latency_max;
    uint32_t disk_min, disk_max;
    uint32_t chaos_max_ms; /* faults arrive every 50 ms to this */
    bool healed;           /* the fault phase is over */

    /* global records for the checks */
    raft_id *leaders; /* by term */
    size_t cap_leaders;
    struct sim_committed *committed; /* by index */
    size_t cap_committed;
    raft_index gcommit;
    raft_index anchor_index; /* last index a leader committed, and its voters */
    raft_term anchor_term;
    raft_id anchor_voters[SIM_MAX_NODES];
    size_t n_anchor_voters;
    struct sim_applied *applied; /* by index */
    size_t cap_applied;
    struct sim_chain_slot *chains;
    size_t cap_chains, n_chains;
    struct sim_read *reads;
    size_t n_reads, cap_reads;

    /* client */
    uint64_t next_payload;
    uint64_t marker; /* payload number the liveness phase waits for; 0 if none */
    bool marker_applied;

    /* outcome */
    bool violated;
    char violation[256];
    char ring[SIM_RING][200];
    unsigned ring_pos;
    uint64_t steps;
    uint64_t n_committed_entries, n_elections, n_snapshots_installed, n_crashes;
};

struct sim_chain_slot {
    raft_index index;
    raft_term term;
    uint64_t chain;
};

struct sim_read {
    uint64_t id;
    raft_index min_index;
};

/* cluster.c */
uint64_t sim_random(struct sim *s);
uint64_t sim_range(struct sim *s, uint64_t lo, uint64_t hi);
int sim_init(struct sim *s, uint64_t seed, const struct sim_params *p);
void sim_close(struct sim *s);
int sim_add_node(struct sim *s, bool bootstrap);
void sim_schedule(struct sim *s, uint64_t at, uint8_t kind, int node,
                  struct raft_message *msg);
bool sim_pop(struct sim *s, struct sim_event *ev);
void sim_handle(struct sim *s, struct sim_event *ev);
int sim_step(struct sim *s, int node, struct raft_event *e);
void sim_crash(struct sim *s, int node);
void sim_restart(struct sim *s, int node);
int sim_leader(struct sim *s);
void sim_log(struct sim *s, const char *fmt, ...);
void sim_fail(struct sim *s, const char *fmt, ...);
uint64_t sim_hash(uint64_t h, uint64_t v);
uint64_t sim_hash_bytes(const uint8_t *p, size_t n);
void sim_free_message(struct raft_message *m);

/* storage.c */
raft_index sim_disk_last(const struct sim_disk *d);
void sim_storage_init(struct raft_storage *st, struct sim_node *n);

/* check.c */
void check_after_step(struct sim *s, struct sim_node *n, const struct raft_update *u);
void check_durable_append(struct sim *s, struct sim_node *n, raft_index index,
                          const struct sim_entry *e);
void check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void check_install(struct sim *s, struct sim_node *n, raft_index index,
                   uint64_t app_hash);
void check_read_request(struct sim *s, uint64_t id);
void check_read_result(struct sim *s, struct sim_node *n, const struct raft_read *rd);
void check_durable_commit(struct sim *s);
void check_free(struct sim *s);

/* driver.c */
int sim_run_seed(uint64_t seed, const struct sim_params *p, struct sim *out_stats);

#endif
