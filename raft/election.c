/* Leader election: timeouts, pre-vote, votes and leadership transfer targets. */
#include <stdlib.h>

#include "raft/internal.h"

void become_follower(struct raft *r, raft_term term, raft_id leader)
{
    bool was_leader = r->state == RAFT_LEADER;

    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (was_leader) {
        fail_reads(r);
        progress_free_all(r);
        r->transfer_target = 0;
        r->promote_pending = 0;
    }
    r->state = RAFT_FOLLOWER;
    r->leader = leader;
    r->n_granted = 0;
    r->n_rejected = 0;
    if (leader != 0) {
        r->leader_contact = r->now;
    }
    reset_election_timer(r);
    if (was_leader) {
        trace(r, 0, leader, "stepped down");
    }
}

int become_leader(struct raft *r)
{
    int rv;

    r->state = RAFT_LEADER;
    r->leader = r->id;
    r->transfer_target = 0;
    r->promote_pending = 0;
    r->n_pending_reads = 0;
    rv = progress_rebuild(r);
    if (rv != 0) {
        return rv;
    }
    trace(r, 0, 0, "became leader");

    /* A new leader commits entries of earlier terms only through an entry of
     * its own term, so it appends one at once (Raft dissertation 3.6.2 and chapter 6). */
    rv = append_local(r, RAFT_ENTRY_NOOP, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    r->term_start = log_last(&r->log);
    r->quorum_deadline = r->now + election_min_ms(r);
    r->heartbeat_deadline = r->now + (uint64_t)r->opt.heartbeat_ticks * r->opt.tick_ms;
    return broadcast_append(r, false);
}

static int last_entry(const struct raft *r, raft_index *index, raft_term *term)
{
    *index = log_last(&r->log);
    return log_term(r, *index, term);
}

static int count_vote(struct raft *r, raft_id from, bool granted)
{
    size_t i;
    raft_id *g;

    if (!granted) {
        r->n_rejected++;
        return 0;
    }
    for (i = 0; i < r->n_granted; i++) {
        if (r->granted[i] == from) {
            return 0;
        }
    }
    g = realloc(r->granted, (r->n_granted + 1) * sizeof(*g));
    if (g == NULL) {
        return RAFT_ENOMEM;
    }
    r->granted = g;
    r->granted[r->n_granted++] = from;
    return 0;
}

static int request_votes(struct raft *r, bool pre_vote, bool transfer)
{
    const struct raft_config *c = config_current(r);
    struct raft_message m = {.type = RAFT_MSG_VOTE};
    size_t i;
    int rv;

    rv = last_entry(r, &m.vote.last_index, &m.vote.last_term);
    if (rv != 0) {
        return rv;
    }
    m.vote.pre_vote = pre_vote;
    m.vote.transfer = transfer;
    /* A pre-vote checks whether the next term could be won without bumping our
     * own, so a partitioned server cannot inflate terms (Raft dissertation, chapter 9).
     */
    m.term = pre_vote ? r->term + 1 : r->term;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER || c->servers[i].id == r->id) {
            continue;
        }
        m.to = c->servers[i].id;
        rv = send_message(r, &m);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int start_election(struct raft *r, bool pre_vote, bool transfer)
{
    int rv;

    if (!is_voter(r, r->id)) {
        reset_election_timer(r);
        return 0;
    }
    r->state = pre_vote ? RAFT_PRE_CANDIDATE : RAFT_CANDIDATE;
    r->leader = 0;
    if (!pre_vote) {
        r->term++;
        r->vote = r->id;
    }
    r->n_granted = 0;
    r->n_rejected = 0;
    reset_election_timer(r);
    trace(r, 0, 0, pre_vote ? "started pre-vote" : "started election");

    rv = count_vote(r, r->id, true);
    if (rv != 0) {
        return rv;
    }
    if (r->n_granted >= quorum_size(r)) {
        return pre_vote ? start_election(r, false, transfer) : become_leader(r);
    }
    return request_votes(r, pre_vote, transfer);
}

int election_tick(struct raft *r)
{
    if (r->now < r->election_deadline) {
        return 0;
    }
    return start_election(r, r->opt.pre_vote, false);
}

/* The election restriction: vote only for a candidate whose log is at least as
 * up-to-date as ours (Raft dissertation, chapter 3). */
static bool log_up_to_date(const struct raft *r, const struct raft_vote *v)
{
    raft_index index;
    raft_term term;

    if (last_entry(r, &index, &term) != 0) {
        return false;
    }
    return v->last_term > term || (v->last_term == term && v->last_index >= index);
}

int recv_vote(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp = {.type = RAFT_MSG_VOTE_RESP, .to = m->from};
    bool granted;

    if (m->vote.pre_vote) {
        granted = m->term > r->term && log_up_to_date(r, &m->vote);
        resp.term = granted ? m->term : r->term;
    } else {
        granted = (r->vote == 0 || r->vote == m->from) && log_up_to_date(r, &m->vote);
        if (granted) {
            r->vote = m->from;
            reset_election_timer(r);
        }
    }
    resp.vote_resp.granted = granted;
    resp.vote_resp.pre_vote = m->vote.pre_vote;
    trace(r, m->vote.last_index, m->from,
          granted ? (m->vote.pre_vote ? "granted pre-vote" : "granted vote")
                  : (m->vote.pre_vote ? "rejected pre-vote" : "rejected vote"));
    return send_message(r, &resp);
}

int recv_vote_resp(struct raft *r, const struct raft_message *m)
{
    bool pre = m->vote_resp.pre_vote;
    int rv;

    if (pre ? r->state != RAFT_PRE_CANDIDATE : r->state != RAFT_CANDIDATE) {
        return 0;
    }
    if (pre && m->vote_resp.granted && m->term != r->term + 1) {
        return 0;
    }
    if (!is_voter(r, m->from)) {
        return 0;
    }
    rv = count_vote(r, m->from, m->vote_resp.granted);
    if (rv != 0) {
        return rv;
    }
    if (r->n_granted >= quorum_size(r)) {
        return pre ? start_election(r, false, false) : become_leader(r);
    }
    if (r->n_rejected >= quorum_size(r)) {
        become_follower(r, r->term, 0);
    }
    return 0;
}

/* The leader asks us to campaign at once, skipping pre-vote, to hand over
 * leadership (Raft dissertation, chapter 3). */
int recv_timeout_now(struct raft *r, const struct raft_message *m)
{
    if (r->state != RAFT_FOLLOWER || m->from != r->leader) {
        trace(r, 0, m->from, "ignored timeout-now not from the leader");
        return 0;
    }
    trace(r, 0, m->from, "received leadership transfer");
    return start_election(r, false, true);
}
