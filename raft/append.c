/* The follower's side of AppendEntries. */
#include <stdlib.h>

#include "raft/internal.h"

/* Bound on the backward scan for a rejection hint; a shorter scan only makes
 * the leader probe more times. */
#define HINT_SCAN_MAX 4096

/* Checks what a peer sent before anything is changed: indexes must follow
 * prev_index, terms must not decrease nor exceed the leader's term, and
 * configuration entries must decode to a valid configuration. */
static bool entries_valid(const struct raft_message *m)
{
    const struct raft_append *a = &m->append;
    raft_term prev_term = a->prev_term;
    size_t i;

    if (a->n_entries > 0 && a->entries == NULL) {
        return false;
    }
    for (i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        struct raft_config c;
        if (e->index != a->prev_index + 1 + i || e->term < prev_term ||
            e->term > m->term || e->term == 0 || (e->len > 0 && e->data == NULL)) {
            return false;
        }
        if (e->type == RAFT_ENTRY_CONFIG) {
            if (raft_config_decode(e->data, e->len, &c) != 0) {
                return false;
            }
            bool ok = raft_config_check(&c) == 0;
            raft_config_free(&c);
            if (!ok) {
                return false;
            }
        } else if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP) {
            return false;
        }
        prev_term = e->term;
    }
    return true;
}

/* Fills the rejection hint: the highest index at or below prev_index whose
 * term is at most the leader's prev_term, so the leader can skip every entry
 * of a conflicting term in one round trip. */
static int fill_hint(struct raft *r, const struct raft_append *a,
                     struct raft_append_resp *resp)
{
    raft_index i = a->prev_index, last = log_last(&r->log);
    raft_term t = 0;
    unsigned steps = 0;
    int rv;

    if (i > last) {
        i = last;
    }
    for (;;) {
        rv = log_term(r, i, &t);
        if (rv != 0) {
            return rv;
        }
        if (t <= a->prev_term || i <= r->commit || steps++ >= HINT_SCAN_MAX) {
            break;
        }
        i--;
    }
    resp->hint_index = i;
    resp->hint_term = t;
    return 0;
}

/* Appends the entries after prev, skipping those already present and deleting
 * a conflicting suffix first (Raft dissertation, chapter 3). */
static int merge_entries(struct raft *r, const struct raft_append *a, raft_index prev)
{
    size_t i;
    int rv;

    for (i = (size_t)(prev - a->prev_index); i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        raft_term t;
        if (e->index <= log_last(&r->log)) {
            rv = log_term(r, e->index, &t);
            if (rv != 0) {
                return rv;
            }
            if (t == e->term) {
                continue;
            }
            rv = log_truncate(r, e->index);
            if (rv != 0) {
                return rv;
            }
            trace(r, e->index, 0, "truncated conflicting entries");
        }
        rv = log_append(r, e);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static void follow(struct raft *r, const struct raft_message *m)
{
    if (r->state != RAFT_FOLLOWER) {
        become_follower(r, m->term, m->from);
    }
    if (r->leader != m->from) {
        r->leader = m->from;
        trace(r, 0, m->from, "following leader");
    }
    r->leader_contact = r->now;
    reset_election_timer(r);
}

int recv_append(struct raft *r, const struct raft_message *m)
{
    const struct raft_append *a = &m->append;
    struct raft_message resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    raft_index prev = a->prev_index, last_new;
    raft_term t;
    int rv;

    if (!entries_valid(m)) {
        trace(r, a->prev_index, m->from, "dropped malformed append");
        return 0;
    }
    follow(r, m);
    resp.append_resp.seq = a->seq;
    last_new = a->prev_index + a->n_entries;

    /* Entries up to the commit index are known to match the leader's. */
    if (prev < r->commit) {
        prev = last_new < r->commit ? last_new : r->commit;
    } else if (prev > log_last(&r->log) || (rv = log_term(r, prev, &t)) != 0 ||
               t != a->prev_term) {
        resp.append_resp.reject = true;
        resp.append_resp.index = a->prev_index;
        rv = fill_hint(r, a, &resp.append_resp);
        if (rv != 0) {
            return rv;
        }
        trace(r, a->prev_index, m->from, "rejected append");
        return send_message(r, &resp);
    }

    rv = merge_entries(r, a, prev);
    if (rv != 0) {
        return rv;
    }
    /* Commit no further than the last entry this message proved to match. */
    if (a->commit > r->commit && last_new > r->commit) {
        r->commit = a->commit < last_new ? a->commit : last_new;
    }
    resp.append_resp.index = last_new;
    return send_message(r, &resp);
}
