/* The state machine: applies one committed command to the replicated
 * tables. Applying is a pure function of the command and the tables: no
 * clock, no randomness, no signing. It re-checks what may have changed since
 * the leader proposed (is the token still current, is the key already
 * certified) so that every manager reaches the same tables. */
#ifndef SWARMPKI_NODE_APPLY_H
#define SWARMPKI_NODE_APPLY_H

#include "store/store.h"

/* Outcome of applying one entry; anything but APPLY_OK left the tables
 * unchanged. */
enum apply_status {
    APPLY_OK = 0,
    APPLY_TOKEN_ROTATED = 1, /* the approving token is no longer current */
    APPLY_REMOVED = 2,       /* the node was removed */
    APPLY_CONFLICT = 3,      /* the key has a certificate for another role, or the serial is taken */
    APPLY_NO_CLUSTER = 4,
    APPLY_EXISTS = 5,        /* the cluster is already initialized */
};

/* What applying one entry produced, for the request that proposed it. */
typedef struct apply_result {
    int status;
    /* ISSUE: the certificate on record for the CSR's key, which is an
     * earlier one when the request was a retry. */
    char node_id[26];
    int role;
    uint64_t raft_id; /* managers: the member id on record */
    char *cert_pem;   /* heap, or NULL */
    uint64_t index;   /* the log index of the entry, set when its proposal finishes */
} apply_result;

void apply_result_clear(apply_result *r);

const char *apply_status_text(int status);

/* Applies cmd inside the write transaction txn. Returns 0 with *result
 * filled (also for a rejected entry, which leaves the tables unchanged), or
 * a negative STORE_E* code when the store failed. After a failure the
 * caller must abort the transaction. */
int apply_command(store_txn *txn, const store_command *cmd, apply_result *result,
                  char *errmsg);

#endif
