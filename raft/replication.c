/* Log replication: the leader's per-follower progress, append messages,
 * commitment, and the follower's handling of appends. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

#define MAX_ENTRIES_PER_APPEND 4096

struct progress *progress_get(struct raft *r, raft_id id)
{
    size_t i;

    for (i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

void progress_free_all(struct raft *r)
{
    size_t i;

    for (i = 0; i < r->n_prs; i++) {
        free(r->prs[i].inflight);
    }
    free(r->prs);
    r->prs = NULL;
    r->n_prs = 0;
}

static void inflight_clear(struct progress *p)
{
    p->n_inflight = 0;
    p->inflight_head = 0;
}

static void inflight_push(struct raft *r, struct progress *p, raft_index last)
{
    uint32_t slot = (p->inflight_head + p->n_inflight) % r->opt.max_inflight;

    p->inflight[slot] = last;
    p->n_inflight++;
}

static void inflight_free_to(struct raft *r, struct progress *p, raft_index match)
{
    while (p->n_inflight > 0 && p->inflight[p->inflight_head] <= match) {
        p->inflight_head = (p->inflight_head + 1) % r->opt.max_inflight;
        p->n_inflight--;
    }
}

static void progress_reset(struct raft *r, struct progress *p, raft_index next)
{
    p->mode = PROGRESS_PROBE;
    p->next = next > p->match ? next : p->match + 1;
    inflight_clear(p);
    p->last_send = 0;
    (void)r;
}

static int progress_init(struct raft *r, struct progress *p, const struct raft_server *s)
{
    memset(p, 0, sizeof(*p));
    p->id = s->id;
    p->role = s->role;
    p->inflight = calloc(r->opt.max_inflight, sizeof(*p->inflight));
    if (p->inflight == NULL) {
        return RAFT_ENOMEM;
    }
    p->match = s->id == r->id ? r->log.stable : 0;
    progress_reset(r, p, log_last(&r->log) + 1);
    p->last_ack = r->now;
    p->active = true;
    return 0;
}

/* Matches the progress array to the current configuration, keeping the state
 * of members that stay. */
int progress_rebuild(struct raft *r)
{
    const struct raft_config *c = config_current(r);
    struct progress *prs, *old;
    size_t i, j;

    prs = calloc(c->n > 0 ? c->n : 1, sizeof(*prs));
    if (prs == NULL) {
        return RAFT_ENOMEM;
    }
    for (i = 0; i < c->n; i++) {
        old = progress_get(r, c->servers[i].id);
        if (old != NULL) {
            prs[i] = *old;
            prs[i].role = c->servers[i].role;
            old->inflight = NULL;
        } else if (progress_init(r, &prs[i], &c->servers[i]) != 0) {
            for (j = 0; j < i; j++) {
                free(prs[j].inflight);
            }
            free(prs);
            return RAFT_ENOMEM;
        }
    }
    progress_free_all(r);
    r->prs = prs;
    r->n_prs = c->n;
    if (r->transfer_target != 0 && !is_voter(r, r->transfer_target)) {
        r->transfer_target = 0;
    }
    return 0;
}

int append_local(struct raft *r, uint8_t type, const uint8_t *data, size_t len)
{
    struct raft_entry e = {.term = r->term, .type = type, .len = len};

    e.index = log_last(&r->log) + 1;
    e.data = (uint8_t *)data;
    return log_append(r, &e);
}

static uint64_t resend_ms(const struct raft *r)
{
    return election_min_ms(r) / 2;
}

/* Sends entries from p->next, or an empty append when there are none. */
static int send_entries(struct raft *r, struct progress *p, raft_index prev)
{
    struct raft_message m = {.type = RAFT_MSG_APPEND, .to = p->id};
    raft_index last = log_last(&r->log);
    size_t cap = 0, n = 0;
    int rv;

    rv = log_term(r, prev, &m.append.prev_term);
    if (rv == RAFT_ECOMPACTED || (rv == 0 && prev + 1 < r->log.first)) {
        return send_snapshot_chunk(r, p);
    }
    if (rv != 0) {
        return rv;
    }
    if (prev == p->next - 1 && p->next <= last) {
        cap = (size_t)(last - p->next + 1);
        cap = cap < MAX_ENTRIES_PER_APPEND ? cap : MAX_ENTRIES_PER_APPEND;
        m.append.entries = malloc(cap * sizeof(*m.append.entries));
        if (m.append.entries == NULL || add_garbage(r, m.append.entries) != 0) {
            free(m.append.entries);
            return RAFT_ENOMEM;
        }
        rv = log_get(r, p->next, last + 1, r->opt.max_append_bytes, m.append.entries, cap,
                     &n);
        if (rv != 0) {
            return rv;
        }
    }
    m.append.prev_index = prev;
    m.append.commit = r->commit;
    m.append.seq = r->seq;
    m.append.n_entries = n;
    rv = send_message(r, &m);
    if (rv != 0) {
        return rv;
    }
    p->last_send = r->now;
    /* A follower that accepts this append commits up to the last index it
     * carries, no further. */
    p->sent_commit = r->commit < prev + n ? r->commit : prev + n;
    if (p->mode == PROGRESS_REPLICATE && n > 0) {
        p->next = prev + n + 1;
        inflight_push(r, p, prev + n);
    } else if (p->mode == PROGRESS_PROBE) {
        inflight_clear(p);
        inflight_push(r, p, prev + n);
    }
    return 0;
}

/* Sends what p needs: in REPLICATE mode, new entries while the pipeline has
 * room, else a heartbeat; in PROBE mode, one append per heartbeat interval. */
int send_append(struct raft *r, struct progress *p, bool heartbeat)
{
    raft_index last = log_last(&r->log);

    if (p->id == r->id) {
        return 0;
    }
    switch (p->mode) {
    case PROGRESS_SNAPSHOT:
        if (heartbeat && r->now >= p->last_send + resend_ms(r)) {
            return send_snapshot_chunk(r, p);
        }
        return 0;
    case PROGRESS_REPLICATE:
        if (p->next <= last && p->n_inflight < r->opt.max_inflight) {
            return send_entries(r, p, p->next - 1);
        }
        return heartbeat ? send_entries(r, p, p->match) : 0;
    default:
        if (!heartbeat && p->n_inflight > 0) {
            return 0;
        }
        return send_entries(r, p, p->next - 1);
    }
}

int broadcast_append(struct raft *r, bool heartbeat)
{
    size_t i;
    int rv;

    for (i = 0; i < r->n_prs; i++) {
        rv = send_append(r, &r->prs[i], heartbeat);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Fills the pipeline of a follower in REPLICATE mode. */
static int replicate(struct raft *r, struct progress *p)
{
    uint32_t i;
    int rv;

    for (i = 0; i < r->opt.max_inflight; i++) {
        raft_index next = p->next;
        rv = send_append(r, p, false);
        if (rv != 0 || p->mode != PROGRESS_REPLICATE || p->next == next) {
            return rv;
        }
    }
    return 0;
}

static void sort_desc(raft_index *v, size_t n)
{
    size_t i, j;

    for (i = 1; i < n; i++) {
        raft_index x = v[i];
        for (j = i; j > 0 && v[j - 1] < x; j--) {
            v[j] = v[j - 1];
        }
        v[j] = x;
    }
}

/* Sends p an empty append when it has committed entries whose commit no
 * append has carried to it yet, and no entries are due to it that would
 * carry the commit index anyway. Without this an idle leader's followers
 * learn of a commit only at the next heartbeat, which delays applying, and
 * reads on them, by up to a heartbeat interval. */
static int notify_commit(struct raft *r, struct progress *p)
{
    raft_index known = r->commit < p->match ? r->commit : p->match;

    if (p->id == r->id || p->mode != PROGRESS_REPLICATE || p->next <= log_last(&r->log) ||
        p->sent_commit >= known) {
        return 0;
    }
    return send_entries(r, p, p->match);
}

/* The leader commits the highest index stored on a quorum of voters, but only
 * if that entry is of its current term; earlier entries are then committed
 * indirectly (Raft dissertation 3.6.2). */
int maybe_commit(struct raft *r)
{
    raft_index *matches, candidate;
    size_t n = 0, i, q = quorum_size(r);
    raft_term term;

    matches = malloc((r->n_prs + 1) * sizeof(*matches));
    if (matches == NULL) {
        return RAFT_ENOMEM;
    }
    for (i = 0; i < r->n_prs; i++) {
        if (r->prs[i].role == RAFT_VOTER) {
            matches[n++] = r->prs[i].id == r->id ? r->log.stable : r->prs[i].match;
        }
    }
    sort_desc(matches, n);
    candidate = n >= q ? matches[q - 1] : 0;
    free(matches);

    if (candidate <= r->commit || log_term(r, candidate, &term) != 0 || term != r->term) {
        return 0;
    }
    r->commit = candidate;
    trace(r, candidate, 0, "committed");
    check_reads(r);
    for (i = 0; i < r->n_prs; i++) {
        int rv = notify_commit(r, &r->prs[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return maybe_promote(r);
}

int after_match(struct raft *r, struct progress *p)
{
    int rv = maybe_commit(r);

    if (rv == 0) {
        rv = maybe_send_timeout_now(r, p);
    }
    if (rv == 0) {
        rv = maybe_promote(r);
    }
    return rv;
}

/* Picks where to probe after a rejection: the highest index at or below the
 * follower's hint whose term is at most the hint's term, which skips a whole
 * conflicting term per round trip (Raft dissertation 5.4.2 describes the
 * idea). */
static raft_index probe_after_reject(struct raft *r, const struct progress *p,
                                     const struct raft_append_resp *a)
{
    raft_index i = a->hint_index < a->index ? a->hint_index : a->index;
    raft_term t;

    if (i > log_last(&r->log)) {
        i = log_last(&r->log);
    }
    while (i > p->match && log_term(r, i, &t) == 0 && t > a->hint_term) {
        i--;
    }
    return i + 1;
}

static int handle_reject(struct raft *r, struct progress *p,
                         const struct raft_append_resp *a)
{
    if (a->index <= p->match || a->index >= p->next ||
        (p->mode == PROGRESS_PROBE && a->index != p->next - 1) ||
        p->mode == PROGRESS_SNAPSHOT) {
        return 0; /* stale: the reply to an append sent before the last change */
    }
    trace(r, a->index, p->id, "append rejected");
    progress_reset(r, p, probe_after_reject(r, p, a));
    return send_append(r, p, false);
}

int recv_append_resp(struct raft *r, const struct raft_message *m)
{
    const struct raft_append_resp *a = &m->append_resp;
    struct progress *p = progress_get(r, m->from);
    int rv;

    if (r->state != RAFT_LEADER || p == NULL) {
        return 0;
    }
    p->active = true;
    if (a->seq > p->acked_seq && a->seq <= r->seq) {
        p->acked_seq = a->seq;
        check_reads(r);
    }
    if (a->reject) {
        return handle_reject(r, p, a);
    }
    if (a->index > log_last(&r->log)) {
        trace(r, a->index, p->id, "dropped append response beyond the log");
        return 0;
    }
    if (a->index > p->match) {
        p->match = a->index;
        p->last_ack = r->now;
        inflight_free_to(r, p, p->match);
    }
    if (p->mode == PROGRESS_PROBE) {
        p->mode = PROGRESS_REPLICATE;
        p->next = p->match + 1;
        p->last_ack = r->now;
        inflight_clear(p);
    } else if (p->next <= p->match) {
        p->next = p->match + 1;
    }
    if (p->mode == PROGRESS_REPLICATE) {
        rv = replicate(r, p);
        if (rv != 0) {
            return rv;
        }
    }
    rv = after_match(r, p);
    if (rv != 0) {
        return rv;
    }
    /* A follower whose ack came after the commit still needs the commit
     * index. after_match may have promoted a learner, which rebuilds the
     * progress array, so p is looked up again. */
    p = progress_get(r, m->from);
    return p != NULL && r->state == RAFT_LEADER ? notify_commit(r, p) : 0;
}

static int check_quorum(struct raft *r)
{
    size_t i, active = 0;

    for (i = 0; i < r->n_prs; i++) {
        struct progress *p = &r->prs[i];
        if (p->role == RAFT_VOTER && (p->active || p->id == r->id)) {
            active++;
        }
        p->active = false;
    }
    r->quorum_deadline = r->now + election_min_ms(r);
    if (active < quorum_size(r)) {
        /* A leader cut off from a quorum steps down so clients find the real
         * leader (Raft dissertation 6.2). */
        trace(r, 0, 0, "lost contact with a quorum");
        become_follower(r, r->term, 0);
    }
    return 0;
}

int leader_tick(struct raft *r)
{
    size_t i;

    if (r->opt.check_quorum && r->now >= r->quorum_deadline) {
        check_quorum(r);
        if (r->state != RAFT_LEADER) {
            return 0;
        }
    }
    if (r->transfer_target != 0 && r->now >= r->transfer_deadline) {
        trace(r, 0, r->transfer_target, "leadership transfer timed out");
        r->transfer_target = 0;
    }
    if (r->now < r->heartbeat_deadline) {
        return 0;
    }
    r->heartbeat_deadline = r->now + (uint64_t)r->opt.heartbeat_ticks * r->opt.tick_ms;
    for (i = 0; i < r->n_prs; i++) {
        struct progress *p = &r->prs[i];
        /* A lost append would stall the pipeline, so after resend_ms without
         * progress the follower is probed again from its match. */
        if (p->mode == PROGRESS_REPLICATE && p->n_inflight > 0 &&
            r->now >= p->last_ack + resend_ms(r)) {
            progress_reset(r, p, p->match + 1);
        }
        int rv = send_append(r, p, true);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
