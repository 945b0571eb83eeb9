/* store: the node's LMDB database. It holds the replicated log, Raft
 * metadata and the tables that applying the log builds (cluster, nodes,
 * certificates, removed nodes), all encoded with msgpack.
 *
 * Threading: a store may be used from several threads. A write transaction
 * blocks on disk (its commit fsyncs), so node/ runs it on a worker thread,
 * never on the event-loop thread. Read transactions are cheap and may run
 * anywhere. A transaction belongs to the thread that began it.
 *
 * Errors: functions return 0 or a negative STORE_E* code and, when errmsg
 * is not NULL, write one sentence (at most STORE_ERRMSG_SIZE bytes) naming
 * the file or key at fault. STORE_ENOTFOUND is not an error for the caller
 * to report; it writes no message.
 *
 * Memory: records read from a store are copies owned by the caller and
 * released with the matching *_free function. */
#ifndef SWARMPKI_STORE_H
#define SWARMPKI_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_ERRMSG_SIZE 256

/* The on-disk format this build writes and accepts. */
#define STORE_FORMAT_VERSION 1

enum {
    STORE_ENOMEM = -1,
    STORE_EIO = -2,       /* LMDB or the file system failed */
    STORE_ECORRUPT = -3,  /* a record or file that does not decode */
    STORE_EVERSION = -4,  /* a data directory written by another format */
    STORE_ENOTFOUND = -5, /* no such record */
    STORE_EFULL = -6,     /* the map or the disk is full */
    STORE_EINVALID = -7,  /* a caller's value out of bounds */
};

const char *store_strerror(int code);

typedef struct store store;
typedef struct store_txn store_txn;

/* Opens or creates the database in directory dir (mode 0700, files 0600).
 * An existing database must carry STORE_FORMAT_VERSION, else
 * STORE_EVERSION; one that does not open as LMDB gives STORE_ECORRUPT. Both
 * messages name the file. */
int store_open(const char *dir, store **out, char *errmsg);
void store_close(store *s);

/* Begins a transaction; write is 0 for read-only. Only one write
 * transaction runs at a time; a second waits. */
int store_txn_begin(store *s, int write, store_txn **out, char *errmsg);

/* Commits and makes durable (fsync) every change of the transaction, then
 * frees it, also on failure. A write rejected with STORE_EINVALID changes
 * nothing, so the transaction still commits, as after the rejections that
 * the snapshot functions below name. After any other failed write this
 * refuses to commit and returns that write's error. */
int store_txn_commit(store_txn *txn, char *errmsg);

/* Drops the transaction's changes and frees it. */
void store_txn_abort(store_txn *txn);

/* ---- Raft metadata and log ---- */

typedef struct store_hard_state {
    uint64_t term;
    uint64_t vote;   /* Raft id voted for in term, 0 for none */
    uint64_t commit; /* highest index known committed */
} store_hard_state;

/* A missing hard state reads as all zeros. */
int store_hard_state_get(store_txn *txn, store_hard_state *out, char *errmsg);
int store_hard_state_put(store_txn *txn, const store_hard_state *hs, char *errmsg);

/* The index of the last entry applied to the tables, 0 if none. */
int store_applied_get(store_txn *txn, uint64_t *out, char *errmsg);
int store_applied_put(store_txn *txn, uint64_t index, char *errmsg);

/* One log entry; data is an encoded store_command or empty. */
typedef struct store_entry {
    uint64_t index;
    uint64_t term;
    uint32_t type; /* STORE_ENTRY_* */
    unsigned char *data;
    size_t len;
} store_entry;

enum {
    STORE_ENTRY_NORMAL = 1, /* carries a store_command */
    STORE_ENTRY_EMPTY = 2,  /* a leader's no-op */
    STORE_ENTRY_MEMBERSHIP = 3,
};

void store_entry_free(store_entry *e);

/* Appends entries whose indexes follow the last one. An entry whose index
 * is not last + 1 gives STORE_EINVALID, and then none of the entries is
 * written. An empty log, as after a snapshot, takes any first index >= 1. */
int store_log_append(store_txn *txn, const store_entry *entries, size_t n, char *errmsg);

/* Deletes every entry with index >= from (a conflicting suffix). */
int store_log_truncate(store_txn *txn, uint64_t from, char *errmsg);

/* Reads one entry; STORE_ENOTFOUND if it is not in the log. */
int store_log_get(store_txn *txn, uint64_t index, store_entry *out, char *errmsg);

/* The first and last indexes in the log, both 0 when it is empty. */
int store_log_bounds(store_txn *txn, uint64_t *first, uint64_t *last, char *errmsg);

/* ---- Replicated tables ---- */

/* The cluster record, one per store. */
typedef struct store_cluster {
    char id[26];
    char *bundle_pem;      /* trust bundle: the roots nodes accept */
    char *signer_cert_pem; /* the certificate that signs leaves */
    char *signer_key_pem;  /* its private key */
    char worker_token[86];
    char manager_token[86];
    int64_t cert_expiry; /* lifetime of new certificates, seconds */
    int64_t created;     /* seconds since the Unix epoch */
} store_cluster;

void store_cluster_free(store_cluster *c);
int store_cluster_get(store_txn *txn, store_cluster *out, char *errmsg);
int store_cluster_put(store_txn *txn, const store_cluster *c, char *errmsg);

enum { STORE_ROLE_WORKER = 1, STORE_ROLE_MANAGER = 2 };

typedef struct store_node {
    char id[26];
    int role;
    int desired_role;
    char hostname[256];
    char addr[128]; /* advertised HOST:PORT, empty for workers */
    char serial[41];
    int64_t cert_not_after;
    int64_t created;
    int64_t updated;
    uint64_t raft_id; /* managers: the Raft member id, 0 for workers */
    int status;       /* STORE_STATUS_*, as last recorded by a leader */
} store_node;

enum { STORE_STATUS_UNKNOWN = 0, STORE_STATUS_READY = 1, STORE_STATUS_DOWN = 2 };

int store_node_get(store_txn *txn, const char *id, store_node *out, char *errmsg);
int store_node_put(store_txn *txn, const store_node *n, char *errmsg);
int store_node_delete(store_txn *txn, const char *id, char *errmsg);

/* Calls visit for every node in id order until it returns non-zero, which
 * is then returned. */
int store_node_each(store_txn *txn, int (*visit)(const store_node *n, void *arg),
                    void *arg, char *errmsg);

typedef struct store_cert {
    char serial[41];
    char node_id[26];
    int role;
    int64_t not_before;
    int64_t not_after;
    unsigned char key_hash[32]; /* SHA-256 of the CSR's SubjectPublicKeyInfo */
    char *cert_pem;
} store_cert;

void store_cert_free(store_cert *c);
int store_cert_get(store_txn *txn, const char *serial, store_cert *out, char *errmsg);

/* Looks a certificate up by the hash of its public key. */
int store_cert_by_key(store_txn *txn, const unsigned char key_hash[32], store_cert *out,
                      char *errmsg);

/* Stores the certificate and indexes it by serial and by key hash. */
int store_cert_put(store_txn *txn, const store_cert *c, char *errmsg);

/* A removed node and when its record may be pruned. */
int store_removed_get(store_txn *txn, const char *id, int64_t *prune_after, char *errmsg);
int store_removed_put(store_txn *txn, const char *id, int64_t prune_after, char *errmsg);

/* Deletes a removed node's record once prune_after has passed;
 * STORE_ENOTFOUND if there is none. */
int store_removed_delete(store_txn *txn, const char *id, char *errmsg);

/* Calls visit for every removed node in id order until it returns non-zero,
 * which is then returned. visit must not write to the removed table, so a
 * pruner collects the ids first and deletes them afterwards. */
int store_removed_each(store_txn *txn,
                       int (*visit)(const char *id, int64_t prune_after, void *arg),
                       void *arg, char *errmsg);

/* ---- Commands: what a normal log entry carries ---- */

enum {
    STORE_CMD_CLUSTER_INIT = 1, /* cluster record + first manager + its cert */
    STORE_CMD_ISSUE = 2,        /* a node record + the certificate issued to it */
    STORE_CMD_SET_EXPIRY = 3,   /* new certificate lifetime */
    STORE_CMD_NODE_STATUS = 4,  /* status transitions of nodes, from the leader */
    STORE_CMD_REMOVE = 5,       /* a node leaves: removed table entry, record deleted */
};

/* A decoded command. Which fields are set depends on type; the others are
 * zero. Owned pointers are freed by store_command_free. */
typedef struct store_command {
    uint32_t type;
    store_cluster cluster; /* CLUSTER_INIT */
    store_node node;       /* CLUSTER_INIT, ISSUE */
    store_cert cert;       /* CLUSTER_INIT, ISSUE */
    char token[86];        /* ISSUE: the token that approved the join */
    int64_t cert_expiry;   /* SET_EXPIRY */
    /* NODE_STATUS: parallel heap arrays of node ids and their new statuses
     * (STORE_STATUS_READY or _DOWN), at most STORE_MAX_STATUS items;
     * updated is the leader's time. store_command_free frees the arrays. */
    char (*status_ids)[26];
    int *statuses;
    uint32_t status_count;
    int64_t updated;
    /* REMOVE: node.id names the node; prune_after is when its removed-table
     * entry may go (expiry of its last certificate plus a grace period). */
    int64_t prune_after;
} store_command;

#define STORE_MAX_STATUS 4096

void store_command_free(store_command *cmd);

/* Encodes cmd into a new heap buffer that the caller frees with free(). */
int store_command_encode(const store_command *cmd, unsigned char **out, size_t *len,
                         char *errmsg);

/* Decodes bytes from a log entry; every field's type and bound is checked
 * and bad input gives STORE_ECORRUPT. */
int store_command_decode(const unsigned char *data, size_t len, store_command *out,
                         char *errmsg);

/* ---- Raft storage ----
 *
 * The Raft core reads the log, hard state and snapshot through these; the
 * daemon writes them as the core's updates instruct. Log entry types are the
 * core's: 1 normal (a store_command), 2 no-op, 3 configuration. */

/* Reads consecutive entries from lo up to (not including) hi into out, at
 * most cap of them, stopping before their data would exceed max_bytes but
 * always returning at least one. The caller frees each with
 * store_entry_free. STORE_ENOTFOUND if lo is not in the log;
 * STORE_EINVALID if lo >= hi or cap is 0. On failure *n is 0. */
int store_log_range(store_txn *txn, uint64_t lo, uint64_t hi, size_t max_bytes,
                    store_entry *out, size_t cap, size_t *n, char *errmsg);

/* Reads the term of the entry at index without copying its data;
 * STORE_ENOTFOUND if it is not in the log. */
int store_log_term(store_txn *txn, uint64_t index, uint64_t *term, char *errmsg);

/* Deletes every entry with index <= upto (compaction behind a snapshot).
 * An upto past the last entry empties the log. */
int store_log_compact(store_txn *txn, uint64_t upto, char *errmsg);

/* The latest snapshot: the last index and term it covers, the encoded Raft
 * configuration at that index (opaque bytes owned by the struct) and the
 * size of its data. */
typedef struct store_snapshot_meta {
    uint64_t index;
    uint64_t term;
    unsigned char *config;
    size_t config_len;
    uint64_t size;
} store_snapshot_meta;

void store_snapshot_meta_free(store_snapshot_meta *meta);

/* STORE_ENOTFOUND when no snapshot was taken or installed. */
int store_snapshot_meta_get(store_txn *txn, store_snapshot_meta *out, char *errmsg);

/* Serializes every replicated table (cluster, nodes, certs, certs_by_key,
 * removed) as of txn into the snapshot area, replacing the previous
 * snapshot, and records the metadata (index, term, config; size is
 * computed). The caller takes it at the applied index. STORE_EINVALID for
 * a bad config changes nothing. Any other failure, such as STORE_ECORRUPT
 * for a row that does not decode, has partly overwritten the previous
 * snapshot, so the transaction can then only be aborted. */
int store_snapshot_take(store_txn *txn, uint64_t index, uint64_t term,
                        const unsigned char *config, size_t config_len, char *errmsg);

/* Copies len bytes at offset of the current snapshot's data into buf.
 * STORE_ENOTFOUND if the current snapshot does not cover index exactly;
 * STORE_EINVALID if the range passes the end. */
int store_snapshot_read(store_txn *txn, uint64_t index, uint64_t offset, unsigned char *buf,
                        size_t len, char *errmsg);

/* Writes a received chunk into the staging area. Offset 0 starts a new
 * staged snapshot; a chunk must start where the staged data ends, else
 * STORE_EINVALID, which changes nothing. After any other failure the
 * transaction can only be aborted. */
int store_snapshot_stage(store_txn *txn, uint64_t offset, const unsigned char *data,
                         size_t len, char *errmsg);

/* Replaces the replicated tables with the staged snapshot, whose size must
 * equal meta->size and whose bytes must decode, makes it the current
 * snapshot with meta, sets the applied index to meta->index and deletes the
 * whole log. Every row is checked before anything is written, so
 * STORE_ECORRUPT for bad staged data and STORE_EINVALID for bad meta change
 * nothing. A failure while writing (STORE_EFULL, STORE_EIO, STORE_ENOMEM)
 * leaves the transaction half done: the caller must abort it, and
 * store_txn_commit refuses it. */
int store_snapshot_install(store_txn *txn, const store_snapshot_meta *meta, char *errmsg);

#endif
