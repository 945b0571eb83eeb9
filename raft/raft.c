/* Lifecycle, the step function and the update it fills. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

const char *raft_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case RAFT_ENOMEM:
        return "out of memory";
    case RAFT_EINVAL:
        return "invalid argument";
    case RAFT_ENOTLEADER:
        return "this server is not the leader";
    case RAFT_EBUSY:
        return "a membership change or leadership transfer is in progress";
    case RAFT_EREMOVED:
        return "the server id was removed from the cluster and cannot be reused";
    case RAFT_ECOMPACTED:
        return "the log entry was compacted into a snapshot";
    case RAFT_ESTORAGE:
        return "storage failed or returned inconsistent data";
    case RAFT_ENOTFOUND:
        return "no such entry, member or snapshot";
    case RAFT_ECORRUPT:
        return "encoded data is malformed";
    default:
        return "unknown error";
    }
}

void raft_options_default(struct raft_options *o)
{
    memset(o, 0, sizeof(*o));
    o->tick_ms = 100;
    o->heartbeat_ticks = 1;
    o->election_ticks_min = 10;
    o->election_ticks_max = 20;
    o->max_inflight = 64;
    o->max_append_bytes = 1 << 20;
    o->snapshot_chunk_bytes = 256 << 10;
    o->snapshot_trailing = 500;
    o->pre_vote = true;
    o->check_quorum = true;
}

void trace(struct raft *r, raft_index index, raft_id peer, const char *msg)
{
    struct raft_trace t;

    if (r->opt.trace == NULL) {
        return;
    }
    t.node = r->id;
    t.term = r->term;
    t.index = index != 0 ? index : log_last(&r->log);
    t.peer = peer;
    t.msg = msg;
    r->opt.trace(r->opt.trace_user, &t);
}

/* splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): the only randomness, seeded by the caller. */
static uint64_t next_random(struct raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t election_min_ms(const struct raft *r)
{
    return (uint64_t)r->opt.election_ticks_min * r->opt.tick_ms;
}

/* Randomized timeouts make split votes rare (Raft dissertation, chapter 3). */
void reset_election_timer(struct raft *r)
{
    uint64_t span = r->opt.election_ticks_max - r->opt.election_ticks_min;
    uint64_t ticks = r->opt.election_ticks_min + next_random(r) % span;

    r->election_deadline = r->now + ticks * r->opt.tick_ms;
}

int add_garbage(struct raft *r, void *p)
{
    struct scratch *s = &r->out;

    if (p == NULL) {
        return 0;
    }
    if (s->n_garbage == s->cap_garbage) {
        size_t cap = s->cap_garbage == 0 ? 64 : s->cap_garbage * 2;
        void **g = realloc(s->garbage, cap * sizeof(*g));
        if (g == NULL) {
            return RAFT_ENOMEM;
        }
        s->garbage = g;
        s->cap_garbage = cap;
    }
    s->garbage[s->n_garbage++] = p;
    return 0;
}

int send_message(struct raft *r, const struct raft_message *m)
{
    struct scratch *s = &r->out;

    if (s->n_msgs == s->cap_msgs) {
        size_t cap = s->cap_msgs == 0 ? 16 : s->cap_msgs * 2;
        struct raft_message *msgs = realloc(s->msgs, cap * sizeof(*msgs));
        if (msgs == NULL) {
            return RAFT_ENOMEM;
        }
        s->msgs = msgs;
        s->cap_msgs = cap;
    }
    s->msgs[s->n_msgs] = *m;
    s->msgs[s->n_msgs].from = r->id;
    if (m->term == 0) {
        s->msgs[s->n_msgs].term = r->term;
    }
    s->n_msgs++;
    return 0;
}

static int push_read(struct raft *r, uint64_t id, raft_index index, bool ok)
{
    struct scratch *s = &r->out;

    if (s->n_reads == s->cap_reads) {
        size_t cap = s->cap_reads == 0 ? 8 : s->cap_reads * 2;
        struct raft_read *reads = realloc(s->reads, cap * sizeof(*reads));
        if (reads == NULL) {
            return RAFT_ENOMEM;
        }
        s->reads = reads;
        s->cap_reads = cap;
    }
    s->reads[s->n_reads].id = id;
    s->reads[s->n_reads].index = index;
    s->reads[s->n_reads].ok = ok;
    s->n_reads++;
    return 0;
}

void fail_reads(struct raft *r)
{
    size_t i;

    for (i = 0; i < r->n_pending_reads; i++) {
        (void)push_read(r, r->pending_reads[i].id, 0, false);
    }
    r->n_pending_reads = 0;
}

/* A read is confirmed once a quorum acknowledged a heartbeat round sent after
 * the request, and the leader has committed an entry of its term (Raft
 * dissertation, chapter 6). */
void check_reads(struct raft *r)
{
    size_t i, k = 0;

    if (r->state != RAFT_LEADER || r->commit < r->term_start) {
        return;
    }
    for (i = 0; i < r->n_pending_reads; i++) {
        struct pending_read *p = &r->pending_reads[i];
        size_t acks = is_voter(r, r->id) ? 1 : 0, j;
        for (j = 0; j < r->n_prs; j++) {
            struct progress *pr = &r->prs[j];
            acks += pr->role == RAFT_VOTER && pr->id != r->id && pr->acked_seq >= p->seq;
        }
        if (acks >= quorum_size(r)) {
            (void)push_read(r, p->id, p->index != 0 ? p->index : r->commit, true);
        } else {
            r->pending_reads[k++] = *p;
        }
    }
    r->n_pending_reads = k;
}

static int request_read(struct raft *r, uint64_t id)
{
    struct pending_read *p;

    if (r->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->n_pending_reads == r->cap_pending_reads) {
        size_t cap = r->cap_pending_reads == 0 ? 8 : r->cap_pending_reads * 2;
        p = realloc(r->pending_reads, cap * sizeof(*p));
        if (p == NULL) {
            return RAFT_ENOMEM;
        }
        r->pending_reads = p;
        r->cap_pending_reads = cap;
    }
    p = &r->pending_reads[r->n_pending_reads++];
    p->id = id;
    p->seq = ++r->seq;
    p->index = r->commit >= r->term_start ? r->commit : 0;
    check_reads(r);
    return broadcast_append(r, true);
}

static int propose(struct raft *r, const struct raft_entry *entries, size_t n)
{
    size_t i;
    int rv;

    if (r->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_EBUSY;
    }
    for (i = 0; i < n; i++) {
        if (entries[i].type != RAFT_ENTRY_NORMAL ||
            (entries[i].len > 0 && !entries[i].data)) {
            return RAFT_EINVAL;
        }
    }
    r->u->proposed_index = log_last(&r->log) + 1;
    for (i = 0; i < n; i++) {
        rv = append_local(r, RAFT_ENTRY_NORMAL, entries[i].data, entries[i].len);
        if (rv != 0) {
            return rv;
        }
    }
    return broadcast_append(r, false);
}

/* Applies the term rules common to every message (Raft dissertation,
 * chapters 3, 4 and 9). Returns true if the message should be processed further. */
static bool check_term(struct raft *r, const struct raft_message *m)
{
    bool vote = m->type == RAFT_MSG_VOTE;
    bool in_lease = r->opt.check_quorum &&
                    (r->state == RAFT_LEADER ||
                     (r->leader != 0 && r->now < r->leader_contact + election_min_ms(r)));

    if (m->term > r->term) {
        /* A server that heard from a leader within the minimum election timeout
         * ignores vote requests, so a removed or partitioned server cannot
         * disrupt a working cluster (Raft dissertation, chapter 4). */
        if (vote && in_lease && !m->vote.transfer) {
            trace(r, 0, m->from, "ignored vote request inside leader lease");
            return false;
        }
        if ((vote && m->vote.pre_vote) ||
            (m->type == RAFT_MSG_VOTE_RESP && m->vote_resp.pre_vote &&
             m->vote_resp.granted)) {
            return true;
        }
        bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT;
        become_follower(r, m->term, from_leader ? m->from : 0);
        if (m->type == RAFT_MSG_VOTE_RESP) {
            return false;
        }
        return true;
    }
    if (m->term < r->term) {
        struct raft_message resp = {.to = m->from};
        /* Tell a stale leader or pre-candidate about the newer term so that it
         * steps down; other stale messages are dropped. */
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
            resp.type = RAFT_MSG_APPEND_RESP;
            resp.append_resp.reject = true;
            (void)send_message(r, &resp);
        } else if (vote && m->vote.pre_vote) {
            resp.type = RAFT_MSG_VOTE_RESP;
            resp.vote_resp.pre_vote = true;
            (void)send_message(r, &resp);
        }
        return false;
    }
    return true;
}

static int receive(struct raft *r, const struct raft_message *m)
{
    if (m->from == 0 || m->from == r->id || m->to != r->id) {
        trace(r, 0, m->from, "dropped misaddressed message");
        return 0;
    }
    if (is_removed(r, m->from)) {
        trace(r, 0, m->from, "dropped message from removed server");
        return 0;
    }
    if (!check_term(r, m)) {
        return 0;
    }
    switch (m->type) {
    case RAFT_MSG_APPEND:
        return recv_append(r, m);
    case RAFT_MSG_APPEND_RESP:
        return recv_append_resp(r, m);
    case RAFT_MSG_VOTE:
        return recv_vote(r, m);
    case RAFT_MSG_VOTE_RESP:
        return recv_vote_resp(r, m);
    case RAFT_MSG_SNAPSHOT:
        return recv_snapshot(r, m);
    case RAFT_MSG_SNAPSHOT_RESP:
        return recv_snapshot_resp(r, m);
    case RAFT_MSG_TIMEOUT_NOW:
        return recv_timeout_now(r, m);
    default:
        trace(r, 0, m->from, "dropped message of unknown type");
        return 0;
    }
}

static int persisted(struct raft *r, raft_index index, raft_term term)
{
    struct progress *self;

    log_persisted(r, index, term);
    if (r->state != RAFT_LEADER) {
        return 0;
    }
    self = progress_get(r, r->id);
    if (self != NULL && r->log.stable > self->match) {
        self->match = r->log.stable;
        return maybe_commit(r);
    }
    return 0;
}

static int dispatch(struct raft *r, const struct raft_event *e)
{
    switch (e->type) {
    case RAFT_EVENT_TICK:
        return r->state == RAFT_LEADER ? leader_tick(r) : election_tick(r);
    case RAFT_EVENT_RECEIVE:
        return e->message != NULL ? receive(r, e->message) : RAFT_EINVAL;
    case RAFT_EVENT_PROPOSE:
        return propose(r, e->propose.entries, e->propose.n);
    case RAFT_EVENT_PERSISTED:
        return persisted(r, e->persisted.index, e->persisted.term);
    case RAFT_EVENT_SNAPSHOT:
        return take_snapshot(r, e->snapshot.index, e->snapshot.term);
    case RAFT_EVENT_CHANGE:
        return change_membership(r, e->change.type, e->change.id);
    case RAFT_EVENT_TRANSFER:
        return start_transfer(r, e->transfer.target);
    case RAFT_EVENT_READ:
        return request_read(r, e->read.id);
    default:
        return RAFT_EINVAL;
    }
}

/* Lists the committed entries that are durable here: a server applies only
 * what its own log contains durably, so a restart never finds applied > last. */
static int fill_committed(struct raft *r, struct raft_update *u)
{
    raft_index top = r->commit < r->log.stable ? r->commit : r->log.stable;
    struct scratch *s = &r->out;
    size_t n, total = 0;
    int rv;

    if (top <= r->applied) {
        return 0;
    }
    if (top - r->applied > s->cap_committed) {
        size_t cap = (size_t)(top - r->applied);
        struct raft_entry *c = realloc(s->committed, cap * sizeof(*c));
        if (c == NULL) {
            return RAFT_ENOMEM;
        }
        s->committed = c;
        s->cap_committed = cap;
    }
    while (r->applied < top) {
        rv = log_get(r, r->applied + 1, top + 1, SIZE_MAX, s->committed + total,
                     s->cap_committed - total, &n);
        if (rv != 0 || n == 0) {
            return rv != 0 ? rv : RAFT_ESTORAGE;
        }
        total += n;
        r->applied += n;
    }
    u->committed = s->committed;
    u->n_committed = total;
    return 0;
}

static int finish_update(struct raft *r, struct raft_update *u, raft_term term,
                         raft_id vote)
{
    u->hard_state_changed = r->term != term || r->vote != vote;
    u->term = r->term;
    u->vote = r->vote;
    if (r->persist_from <= log_last(&r->log)) {
        u->entries = (struct raft_entry *)log_mem_at(&r->log, r->persist_from);
        u->n_entries = (size_t)(log_last(&r->log) - r->persist_from + 1);
    }
    u->messages = r->out.msgs;
    u->n_messages = r->out.n_msgs;
    u->state = r->state;
    u->leader = r->leader;
    u->state_changed = r->state != r->prev_state || r->leader != r->prev_leader;
    r->prev_state = r->state;
    r->prev_leader = r->leader;
    if (r->state == RAFT_LEADER) {
        check_reads(r);
    }
    u->reads = r->out.reads;
    u->n_reads = r->out.n_reads;
    return fill_committed(r, u);
}

static void start_step(struct raft *r, struct raft_update *u)
{
    size_t i;

    for (i = 0; i < r->out.n_garbage; i++) {
        free(r->out.garbage[i]);
    }
    r->out.n_garbage = 0;
    r->out.n_msgs = 0;
    r->out.n_reads = 0;
    memset(u, 0, sizeof(*u));
    r->u = u;
    r->persist_from = UINT64_MAX;
}

int raft_step(struct raft *r, const struct raft_event *e, struct raft_update *u)
{
    raft_term term = r->term;
    raft_id vote = r->vote;
    int rv, rv2;

    start_step(r, u);
    if (e->now > r->now) {
        r->now = e->now;
    }
    rv = dispatch(r, e);
    rv2 = finish_update(r, u, term, vote);
    return rv != 0 ? rv : rv2;
}

static int check_options(const struct raft_options *o)
{
    if (o->id == 0 || o->tick_ms == 0 || o->heartbeat_ticks == 0 ||
        o->election_ticks_min <= o->heartbeat_ticks ||
        o->election_ticks_max <= o->election_ticks_min || o->max_inflight == 0 ||
        o->max_append_bytes == 0 || o->snapshot_chunk_bytes == 0) {
        return RAFT_EINVAL;
    }
    return 0;
}

static int load(struct raft *r)
{
    int rv;

    rv = r->st.hard_state(r->st.user, &r->term, &r->vote);
    if (rv != 0) {
        return RAFT_ESTORAGE;
    }
    rv = log_load(r);
    if (rv != 0) {
        return rv;
    }
    r->applied = r->opt.applied > r->log.snap_index ? r->opt.applied : r->log.snap_index;
    if (r->applied > r->log.stable) {
        return RAFT_ESTORAGE;
    }
    r->commit = r->applied;
    return 0;
}

int raft_init(struct raft **out, const struct raft_options *opt,
              const struct raft_storage *storage)
{
    struct raft *r;
    int rv;

    rv = check_options(opt);
    if (rv != 0 || storage == NULL) {
        return RAFT_EINVAL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return RAFT_ENOMEM;
    }
    r->opt = *opt;
    r->st = *storage;
    r->id = opt->id;
    r->rng = opt->seed ^ (opt->id * 0x2545f4914f6cdd1dULL);
    r->state = RAFT_FOLLOWER;
    r->prev_state = RAFT_FOLLOWER;
    r->persist_from = UINT64_MAX;

    rv = load(r);
    if (rv != 0) {
        raft_close(r);
        return rv;
    }
    reset_election_timer(r);
    trace(r, 0, 0, "started");
    *out = r;
    return 0;
}

void raft_close(struct raft *r)
{
    size_t i;

    if (r == NULL) {
        return;
    }
    for (i = 0; i < r->out.n_garbage; i++) {
        free(r->out.garbage[i]);
    }
    free(r->out.garbage);
    free(r->out.msgs);
    free(r->out.committed);
    free(r->out.reads);
    log_free(r);
    raft_config_free(&r->base_config);
    for (i = 0; i < r->n_configs; i++) {
        raft_config_free(&r->configs[i].config);
    }
    free(r->configs);
    progress_free_all(r);
    free(r->granted);
    free(r->pending_reads);
    free(r);
}

int raft_snapshot_meta_at(const struct raft *r, raft_index index,
                          struct raft_snapshot_meta *meta)
{
    int rv;

    memset(meta, 0, sizeof(*meta));
    if (index > r->applied || index < r->log.snap_index) {
        return RAFT_EINVAL;
    }
    rv = log_term(r, index, &meta->term);
    if (rv != 0) {
        return rv;
    }
    meta->index = index;
    return raft_config_copy(&meta->config, config_at(r, index));
}

raft_id raft_id_of(const struct raft *r)
{
    return r->id;
}

uint8_t raft_state_of(const struct raft *r)
{
    return r->state;
}

raft_id raft_leader_of(const struct raft *r)
{
    return r->leader;
}

raft_term raft_term_of(const struct raft *r)
{
    return r->term;
}

raft_index raft_commit_index(const struct raft *r)
{
    return r->commit;
}

raft_index raft_applied_index(const struct raft *r)
{
    return r->applied;
}

raft_index raft_last_index(const struct raft *r)
{
    return log_last(&r->log);
}

raft_index raft_snapshot_index(const struct raft *r)
{
    return r->log.snap_index;
}

int raft_term_at(const struct raft *r, raft_index index, raft_term *term)
{
    return log_term(r, index, term);
}

const struct raft_config *raft_config_of(const struct raft *r)
{
    return config_current(r);
}

raft_index raft_match_of(const struct raft *r, raft_id id)
{
    size_t i;

    for (i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            return r->prs[i].match;
        }
    }
    return 0;
}
