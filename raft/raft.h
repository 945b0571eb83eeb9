/* Raft consensus core: a pure state machine with no I/O, clock or randomness
 * of its own.
 *
 * The caller feeds events to raft_step() and carries out the update it fills.
 * Everything durable lives behind the read-only struct raft_storage, which the
 * caller also writes as each update instructs. Rules cited as "Raft
 * dissertation" refer to Diego Ongaro, "Consensus: Bridging Theory and
 * Practice", Stanford 2014. */
#ifndef SWARMPKI_RAFT_H
#define SWARMPKI_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id; /* server id; 0 means none */
typedef uint64_t raft_index;
typedef uint64_t raft_term;

/* Error codes: every function that can fail returns 0 or one of these. */
enum {
    RAFT_ENOMEM = -1,     /* the C allocator failed */
    RAFT_EINVAL = -2,     /* an argument is out of range */
    RAFT_ENOTLEADER = -3, /* the request needs the leader */
    RAFT_EBUSY = -4,      /* a membership change or transfer is in progress */
    RAFT_EREMOVED = -5,   /* the id was removed from the cluster earlier */
    RAFT_ECOMPACTED = -6, /* the entry was compacted into a snapshot */
    RAFT_ESTORAGE = -7,   /* a storage callback failed or returned bad data */
    RAFT_ENOTFOUND = -8,  /* no such entry, member or snapshot */
    RAFT_ECORRUPT = -9,   /* encoded bytes are malformed */
};

/* Returns a one-sentence static description of an error code. */
const char *raft_strerror(int code);

/* ---- Log entries and configurations ---- */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* an application command */
    RAFT_ENTRY_NOOP = 2, /* appended by each new leader (Raft dissertation, chapter 6) */
    RAFT_ENTRY_CONFIG = 3, /* data is an encoded struct raft_config */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type; /* enum raft_entry_type */
    uint8_t *data;
    size_t len;
};

enum raft_role {
    RAFT_VOTER = 1,
    RAFT_LEARNER = 2, /* receives entries but neither votes nor counts for commit */
};

struct raft_server {
    raft_id id;
    uint8_t role; /* enum raft_role */
};

/* A cluster membership. removed lists every id ever removed, so that a
 * removed server can never rejoin under the same id. */
struct raft_config {
    struct raft_server *servers;
    size_t n;
    raft_id *removed;
    size_t n_removed;
};

/* Adds server id with role to c; fails with RAFT_EINVAL if id is 0, present
 * or removed. */
int raft_config_add(struct raft_config *c, raft_id id, int role);

/* Returns the server entry for id in c, or NULL. */
const struct raft_server *raft_config_get(const struct raft_config *c, raft_id id);

/* Copies src into dst (which must be zeroed or freed); dst owns its arrays. */
int raft_config_copy(struct raft_config *dst, const struct raft_config *src);

/* Frees the arrays of c and zeroes it. */
void raft_config_free(struct raft_config *c);

/* Encodes c into a malloc'd buffer *buf of *len bytes owned by the caller. */
int raft_config_encode(const struct raft_config *c, uint8_t **buf, size_t *len);

/* Decodes len bytes into c (zeroed on entry, owned by the caller on
 * success); returns RAFT_ECORRUPT for truncated, oversized or duplicate ids. */
int raft_config_decode(const uint8_t *buf, size_t len, struct raft_config *c);

/* Returns 0 if c has unique non-zero ids, no removed id among its servers and
 * at least one voter, else RAFT_EINVAL. */
int raft_config_check(const struct raft_config *c);

/* ---- Snapshots ---- */

struct raft_snapshot_meta {
    raft_index index; /* last log index the snapshot covers; 0 for none */
    raft_term term;   /* term of that entry */
    struct raft_config config;
    uint64_t size; /* bytes of snapshot data */
};

/* ---- Storage ----
 *
 * The core only reads storage; the caller writes it as updates instruct.
 * Callbacks return 0 or a negative RAFT_E code. Entry data returned by
 * `entries` is malloc'd by the storage and freed by the core. */
struct raft_storage {
    void *user;

    /* Fills the durable current term and vote (both 0 on a new server). */
    int (*hard_state)(void *user, raft_term *term, raft_id *vote);

    /* Fills the latest durable snapshot's metadata; a server with none
     * reports index 0, term 0 and the bootstrap configuration (empty for a
     * server that will join an existing cluster). The core frees config. */
    int (*snapshot_meta)(void *user, struct raft_snapshot_meta *meta);

    /* Reads len bytes at offset of the snapshot whose last index is index;
     * returns RAFT_ENOTFOUND if that is no longer the latest snapshot. */
    int (*snapshot_read)(void *user, raft_index index, uint64_t offset, uint8_t *buf,
                         size_t len);

    /* Index of the first stored entry; last_index + 1 when the log is empty. */
    raft_index (*first_index)(void *user);

    /* Index of the last stored entry; the snapshot index when none is stored. */
    raft_index (*last_index)(void *user);

    /* Fills the term of the stored entry at index. */
    int (*term)(void *user, raft_index index, raft_term *term);

    /* Fills out[0..*n) with consecutive entries starting at lo and below hi,
     * at most cap of them, stopping before the total data would exceed
     * max_bytes but always returning at least one entry. */
    int (*entries)(void *user, raft_index lo, raft_index hi, size_t max_bytes,
                   struct raft_entry *out, size_t cap, size_t *n);
};

/* ---- Messages between servers ---- */

enum raft_message_type {
    RAFT_MSG_APPEND = 1, /* AppendEntries; with no entries, a heartbeat */
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3, /* RequestVote or pre-vote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_SNAPSHOT = 5, /* one chunk of InstallSnapshot */
    RAFT_MSG_SNAPSHOT_RESP = 6,
    RAFT_MSG_TIMEOUT_NOW = 7, /* leadership transfer: campaign at once */
};

struct raft_append {
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit;
    uint64_t seq; /* read barrier round, echoed by the follower */
    struct raft_entry *entries;
    size_t n_entries;
};

struct raft_append_resp {
    bool reject;
    raft_index index;      /* success: last index known to match; reject: prev_index */
    raft_index hint_index; /* reject: where the leader should probe next */
    raft_term hint_term;   /* reject: term of the conflicting entry, 0 if log too short */
    uint64_t seq;
};

struct raft_vote {
    raft_index last_index;
    raft_term last_term;
    bool pre_vote;
    bool transfer; /* sent because of TIMEOUT_NOW: voters ignore the leader lease */
};

struct raft_vote_resp {
    bool granted;
    bool pre_vote;
};

struct raft_snapshot_chunk {
    raft_index index; /* snapshot metadata, repeated in every chunk */
    raft_term term;
    struct raft_config config;
    uint64_t size;
    uint64_t offset;
    uint8_t *data;
    size_t len;
};

struct raft_snapshot_resp {
    raft_index index; /* snapshot being acknowledged */
    uint64_t offset;  /* next offset expected */
    bool done;        /* no more chunks needed */
    raft_index match; /* done: last index known to match the leader */
};

struct raft_message {
    uint8_t type; /* enum raft_message_type */
    raft_id from;
    raft_id to;
    raft_term term;
    union {
        struct raft_append append;
        struct raft_append_resp append_resp;
        struct raft_vote vote;
        struct raft_vote_resp vote_resp;
        struct raft_snapshot_chunk snapshot;
        struct raft_snapshot_resp snapshot_resp;
    };
};

/* ---- Events into raft_step ---- */

enum raft_event_type {
    RAFT_EVENT_TICK = 1,      /* time passed; drives elections and heartbeats */
    RAFT_EVENT_RECEIVE = 2,   /* a message arrived */
    RAFT_EVENT_PROPOSE = 3,   /* leader: append commands */
    RAFT_EVENT_PERSISTED = 4, /* entries up to (index, term) are durable */
    RAFT_EVENT_SNAPSHOT =
        5,                 /* the application stored a snapshot (raft_snapshot_meta_at) */
    RAFT_EVENT_CHANGE = 6, /* leader: membership change request */
    RAFT_EVENT_TRANSFER = 7, /* leader: hand leadership to another voter */
    RAFT_EVENT_READ = 8,     /* leader: read barrier request */
};

enum raft_change_type {
    RAFT_CHANGE_ADD_LEARNER = 1,
    RAFT_CHANGE_PROMOTE = 2, /* proposed once the learner has caught up */
    RAFT_CHANGE_REMOVE = 3,
};

struct raft_event {
    uint8_t type; /* enum raft_event_type */
    uint64_t now; /* current time in ms; earlier values than seen before are ignored */
    union {
        const struct raft_message *message;
        struct {
            const struct raft_entry *entries; /* type, data and len are read */
            size_t n;
        } propose;
        struct {
            raft_index index;
            raft_term term;
        } persisted;
        struct {
            raft_index index; /* must not exceed the applied index */
            raft_term term;
        } snapshot;
        struct {
            uint8_t type; /* enum raft_change_type */
            raft_id id;
        } change;
        struct {
            raft_id target; /* 0: the most up-to-date voter */
        } transfer;
        struct {
            uint64_t id; /* caller's handle, returned in struct raft_read */
        } read;
    };
};

/* ---- The update out of raft_step ---- */

enum raft_state {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE = 2,
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4,
};

/* Outcome of a read barrier: the read may be served once the application has
 * applied index. ok is false when leadership was lost first. */
struct raft_read {
    uint64_t id;
    raft_index index;
    bool ok;
};

/* A snapshot chunk received from the leader, to be written at offset into a
 * staging area. When install is set, the staged snapshot is complete: the
 * caller replaces its state with it and deletes every log entry. */
struct raft_snapshot_write {
    struct raft_snapshot_meta meta;
    uint64_t offset;
    const uint8_t *data;
    size_t len;
    bool install;
};

/* Everything one raft_step call asks the caller to do. The caller must carry
 * out updates one after another in the order raft_step returned them, and
 * each update in this order:
 *
 *   1. Persist: the hard state (term, vote) if hard_state_changed; then the
 *      snapshot chunk (and install it if install is set); then the entries,
 *      first deleting stored entries at index >= entries[0].index. Entries up
 *      to compact_index may be deleted at leisure.
 *   2. Send the messages. Every message waits until step 1 of its own update
 *      and of all earlier updates is durable, with one exception: when
 *      hard_state_changed is false, RAFT_MSG_APPEND messages may be sent at
 *      once, so a leader replicates while its own disk write runs. Because of
 *      this rule a follower acknowledges only entries that are durable.
 *   3. Apply the committed entries in order, and answer the reads.
 *   4. Step RAFT_EVENT_PERSISTED with the last entry's index and term.
 *
 * Everything an update points to is owned by the core and stays valid until
 * the next raft_step or raft_close call. */
struct raft_update {
    bool hard_state_changed;
    raft_term term;
    raft_id vote;

    bool has_snapshot;
    struct raft_snapshot_write snapshot;

    struct raft_entry *entries;
    size_t n_entries;
    raft_index compact_index; /* 0: nothing to compact */

    struct raft_message *messages;
    size_t n_messages;

    struct raft_entry *committed;
    size_t n_committed;

    struct raft_read *reads;
    size_t n_reads;

    bool state_changed; /* state or leader differ from the previous update */
    uint8_t state;      /* enum raft_state */
    raft_id leader;     /* 0 when unknown */

    raft_index proposed_index; /* PROPOSE: index given to the first entry */
};

/* ---- Tracing ---- */

/* One notable transition, reported synchronously from inside raft_step. */
struct raft_trace {
    raft_id node;
    raft_term term;
    raft_index index; /* the log index the event concerns, else the last index */
    raft_id peer;     /* the other server involved, 0 if none */
    const char *msg;  /* static text, e.g. "became leader" */
};

/* ---- Configuration and lifecycle ---- */

struct raft_options {
    raft_id id;
    uint64_t seed;                /* seeds the election timeout generator */
    uint32_t tick_ms;             /* length of one tick (default 100) */
    uint32_t heartbeat_ticks;     /* default 1 */
    uint32_t election_ticks_min;  /* randomized timeout range, default 10.. */
    uint32_t election_ticks_max;  /* ..20 ticks, exclusive */
    uint32_t max_inflight;        /* append messages in flight per follower, default 64 */
    size_t max_append_bytes;      /* entry bytes per append message, default 1 MiB */
    size_t snapshot_chunk_bytes;  /* default 256 KiB */
    raft_index snapshot_trailing; /* entries kept behind a snapshot, default 500 */
    bool pre_vote;                /* default on */
    bool check_quorum;            /* default on */
    raft_index applied;           /* application's durable applied index at start */
    void (*trace)(void *user, const struct raft_trace *t);
    void *trace_user;
};

/* Fills o with the defaults above; the caller sets id, seed and applied. */
void raft_options_default(struct raft_options *o);

struct raft;

/* Creates a server from durable storage in *out; storage must outlive it.
 * Returns RAFT_EINVAL for bad options, RAFT_ESTORAGE for inconsistent
 * storage (for example applied beyond the stored log). */
int raft_init(struct raft **out, const struct raft_options *opt,
              const struct raft_storage *storage);

/* Frees the server and everything its last update pointed to. */
void raft_close(struct raft *r);

/* Processes one event and fills u as documented at struct raft_update, also
 * when it returns an error. A rejected request (for example PROPOSE on a
 * follower) returns its error and changes nothing. Messages from peers are
 * never rejected: a malformed or stale one is dropped and traced. After
 * RAFT_ENOMEM or RAFT_ESTORAGE the server may be half-way through an event,
 * so the caller should close it and start again from storage. */
int raft_step(struct raft *r, const struct raft_event *e, struct raft_update *u);

/* Fills meta with the term and configuration at index (applied, not yet
 * compacted), for the application to store beside its snapshot data. meta's
 * config is owned by the caller. */
int raft_snapshot_meta_at(const struct raft *r, raft_index index,
                          struct raft_snapshot_meta *meta);

/* ---- Read-only accessors ---- */

raft_id raft_id_of(const struct raft *r);
uint8_t raft_state_of(const struct raft *r);
raft_id raft_leader_of(const struct raft *r);
raft_term raft_term_of(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_applied_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
raft_index raft_snapshot_index(const struct raft *r);

/* Fills *term with the term of the entry at index in the server's current
 * log (including entries not yet durable); RAFT_ECOMPACTED below it. */
int raft_term_at(const struct raft *r, raft_index index, raft_term *term);

/* Returns the latest configuration in the log (it takes effect when
 * appended, Raft dissertation chapter 4). */
const struct raft_config *raft_config_of(const struct raft *r);

/* Returns the match index the leader holds for id, or 0. */
raft_index raft_match_of(const struct raft *r, raft_id id);

#endif
