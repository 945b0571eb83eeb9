/* The replicated log as node/ drives it: a state change becomes a log
 * entry, is made durable in the LMDB log, is committed, and is applied to
 * the tables in one transaction with the applied index.
 *
 * This build has one voter, so an entry commits as soon as it is durable.
 * Durable writes run on libuv's worker threads: all proposals queued while
 * a write is in flight go into the next batch, one transaction and one
 * fsync for the batch. Every function here runs on the loop thread. */
#ifndef SWARMPKI_NODE_REPLOG_H
#define SWARMPKI_NODE_REPLOG_H

#include <uv.h>

#include "node/apply.h"
#include "store/store.h"

typedef struct replog replog;

/* Called once per proposal: status 0 when its entry was applied (result
 * filled; the callee may take result->cert_pem), else a negative STORE_E*
 * code with a message, and the entry may or may not be committed later. */
typedef void (*replog_done_cb)(void *arg, int status, const char *errmsg,
                               apply_result *result);

/* Called on the loop thread after each batch that changed the cluster
 * record, with a copy the callee owns. */
typedef void (*replog_cluster_cb)(void *arg, store_cluster *cluster);

/* Reads the log bounds, hard state and applied index of st. */
int replog_open(uv_loop_t *loop, store *st, replog_cluster_cb on_cluster, void *arg,
                replog **out, char *errmsg);

/* Applies committed entries that were not applied yet (after a crash), then
 * calls ready once with 0 or an error. */
int replog_start(replog *log, void (*ready)(void *arg, int status, const char *errmsg),
                 void *arg);

/* Encodes cmd into a new entry and queues it. cb is called exactly once if
 * this returns 0, never if it fails. */
int replog_propose(replog *log, const store_command *cmd, replog_done_cb cb, void *arg,
                   char *errmsg);

/* Fails queued proposals, waits for the write in flight, frees the log and
 * then calls done. */
void replog_close(replog *log, void (*done)(void *arg), void *arg);

/* Returns the index of the last applied entry. */
uint64_t replog_applied(const replog *log);

#endif
