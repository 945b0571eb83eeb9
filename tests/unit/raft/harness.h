/* A single Raft server driven by hand: in-memory storage that persists each
 * update at once, and helpers to build messages and find them in updates. */
#ifndef SWARMPKI_TEST_RAFT_HARNESS_H
#define SWARMPKI_TEST_RAFT_HARNESS_H

#include <raft/raft.h>

struct mem_store {
    raft_term term;
    raft_id vote;
    struct raft_snapshot_meta snap;
    uint8_t snap_data[64];
    raft_index first;
    struct raft_entry log[256]; /* log[i] has index first + i */
    size_t n;
};

struct node {
    struct mem_store st;
    struct raft *r;
    struct raft_update u;
    uint64_t now;
};

/* Creates server id with voters 1..voters, the given log terms preloaded
 * (terms[i] is the term of index i + 1) and the durable current term. */
void node_init(struct node *n, raft_id id, int voters, const raft_term *terms,
               size_t n_terms, raft_term term, struct raft_options *opt);

/* The two halves of node_init, for tests that edit the store in between. */
void node_setup(struct node *n, int voters, const raft_term *terms, size_t n_terms,
                raft_term term);
void node_start(struct node *n, raft_id id, struct raft_options *opt);
void node_close(struct node *n);

/* Steps one event and persists the update at once; returns raft_step's result. */
int node_step(struct node *n, struct raft_event *e);
int node_tick(struct node *n, uint64_t ms);
int node_recv(struct node *n, const struct raft_message *m);

/* Reports the update's entries persisted. */
void node_persisted(struct node *n);

/* Elects server 1 leader with votes from servers 2..votes. */
void node_elect(struct node *n, int votes);

/* Returns the i-th message of type to id in the last update, or NULL. */
const struct raft_message *find_msg(const struct node *n, uint8_t type, raft_id to,
                                    int i);
int count_msgs(const struct node *n, uint8_t type, raft_id to);

#endif
