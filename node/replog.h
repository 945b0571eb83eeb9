/* The replicated log as node/ drives it: the Raft core from raft/, persisted
 * in the LMDB store, with messages sent through callbacks.
 *
 * Every Raft update is carried out in the order the core requires: persist,
 * then send, then apply, then report persisted. Persisting and applying run
 * on libuv's worker threads: all updates produced while a write is in
 * flight go into the next write, one LMDB transaction and one fsync for the
 * batch. Committed entries are applied in that same transaction, with the
 * applied index. Append messages that do not depend on a new term or vote
 * go out at once, so the leader replicates while its own write runs.
 *
 * Every function here runs on the loop thread. */
#ifndef SWARMPKI_NODE_REPLOG_H
#define SWARMPKI_NODE_REPLOG_H

#include <uv.h>

#include "node/apply.h"
#include "raft/raft.h"
#include "store/store.h"

typedef struct replog replog;

typedef struct replog_options {
    uint64_t raft_id;
    uint32_t tick_ms;            /* default 100 */
    uint32_t heartbeat_ticks;    /* default 1 */
    uint32_t election_ticks_min; /* default 10 */
    uint32_t election_ticks_max; /* default 20 */
    uint64_t snapshot_every;     /* applied entries between snapshots, default 10000 */
    uint64_t snapshot_trailing;  /* entries kept behind a snapshot, default 500 */
} replog_options;

void replog_options_default(replog_options *o);

typedef struct replog_callbacks {
    void *arg;
    /* The cluster record changed; the callee owns *cluster. */
    void (*cluster)(void *arg, store_cluster *cluster);
    /* The manager records changed; the callee owns the array. */
    void (*managers)(void *arg, store_node *managers, size_t count);
    /* Send an encoded Raft message (net_raft_encode) to member to. */
    void (*send)(void *arg, uint64_t to, const unsigned char *data, size_t len);
    /* The Raft state, leader or term changed. */
    void (*state)(void *arg, int state, uint64_t leader, uint64_t term);
    /* Entries up to index are applied now; may be NULL. */
    void (*applied)(void *arg, uint64_t index);
} replog_callbacks;

/* Called once per proposal: status 0 when its entry was applied (result
 * filled; the callee may take result->cert_pem), else a negative STORE_E*
 * code with a message. After an error the entry may still be committed
 * later, so requests built on it must be safe to retry. */
typedef void (*replog_done_cb)(void *arg, int status, const char *errmsg,
                               apply_result *result);

/* Opens the Raft core over st. */
int replog_open(uv_loop_t *loop, store *st, const replog_options *opts,
                const replog_callbacks *cb, replog **out, char *errmsg);

/* Applies committed entries left from before a restart, starts the tick
 * timer, then calls ready once with 0 or an error. */
int replog_start(replog *log, void (*ready)(void *arg, int status, const char *errmsg),
                 void *arg);

/* Proposes cmd. Only the leader accepts proposals: elsewhere this fails
 * with RAFT_ENOTLEADER and the caller forwards the request. cb is called
 * exactly once if this returns 0, never if it fails. */
int replog_propose(replog *log, const store_command *cmd, replog_done_cb cb, void *arg,
                   char *errmsg);

/* Hands a message from another member to the core. */
void replog_receive(replog *log, const struct raft_message *m);

/* Leader only: a membership change (RAFT_CHANGE_*) or a leadership
 * transfer (target 0: the most up-to-date voter). Returns 0 or a RAFT_E*
 * code. */
int replog_change(replog *log, int type, uint64_t member_id);
int replog_transfer(replog *log, uint64_t target);

/* Fails waiting proposals, waits for the write in flight, frees the log and
 * then calls done. */
void replog_close(replog *log, void (*done)(void *arg), void *arg);

/* Read-only views of the core for `info` and routing. */
int replog_state(const replog *log);
uint64_t replog_leader(const replog *log);
uint64_t replog_term(const replog *log);
uint64_t replog_commit(const replog *log);
uint64_t replog_applied(const replog *log);
const struct raft_config *replog_config(const replog *log);
uint64_t replog_match(const replog *log, uint64_t member_id);

#endif
