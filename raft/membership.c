/* Membership changes, one server at a time, and leadership transfer. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

/* Appends config as a configuration entry; it takes effect at once. */
static int propose_config(struct raft *r, const struct raft_config *config)
{
    uint8_t *buf;
    size_t len;
    int rv;

    rv = raft_config_encode(config, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = append_local(r, RAFT_ENTRY_CONFIG, buf, len);
    free(buf);
    if (rv != 0) {
        return rv;
    }
    r->u->proposed_index = log_last(&r->log);
    return broadcast_append(r, false);
}

/* Single-server changes are safe only one at a time (Raft dissertation,
 * chapter 4), and only after the leader committed an entry of its term: the
 * fix that the dissertation's errata give for a change racing a leader change. */
static int check_can_change(const struct raft *r)
{
    if (r->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0 || config_index(r) > r->commit ||
        r->commit < r->term_start) {
        return RAFT_EBUSY;
    }
    return 0;
}

static size_t count_voters(const struct raft_config *c)
{
    size_t i, n = 0;

    for (i = 0; i < c->n; i++) {
        n += c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

static int remove_server(struct raft *r, struct raft_config *c, raft_id id)
{
    const struct raft_server *s = raft_config_get(c, id);
    raft_id *removed;
    size_t pos;

    if (s == NULL) {
        return RAFT_ENOTFOUND;
    }
    /* The leader leaves by transferring leadership first, so it never has to
     * manage a configuration that excludes itself. */
    if (id == r->id || (s->role == RAFT_VOTER && count_voters(c) == 1)) {
        return RAFT_EINVAL;
    }
    pos = (size_t)(s - c->servers);
    memmove(&c->servers[pos], &c->servers[pos + 1],
            (c->n - pos - 1) * sizeof(*c->servers));
    c->n--;
    removed = realloc(c->removed, (c->n_removed + 1) * sizeof(*removed));
    if (removed == NULL) {
        return RAFT_ENOMEM;
    }
    c->removed = removed;
    c->removed[c->n_removed++] = id;
    return 0;
}

/* Proposes the pending promotion once the learner's match reached the
 * leader's last index at the time of the request. */
int maybe_promote(struct raft *r)
{
    struct raft_config c;
    struct progress *p;
    size_t i;
    int rv;

    if (r->promote_pending == 0 || check_can_change(r) != 0) {
        return 0;
    }
    p = progress_get(r, r->promote_pending);
    if (p == NULL || p->role != RAFT_LEARNER) {
        r->promote_pending = 0;
        return 0;
    }
    if (p->match < r->promote_bar) {
        return 0;
    }
    rv = raft_config_copy(&c, config_current(r));
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < c.n; i++) {
        if (c.servers[i].id == p->id) {
            c.servers[i].role = RAFT_VOTER;
        }
    }
    trace(r, p->match, p->id, "promoting caught-up learner");
    r->promote_pending = 0;
    rv = propose_config(r, &c);
    raft_config_free(&c);
    return rv;
}

static int request_promote(struct raft *r, raft_id id)
{
    const struct raft_server *s = raft_config_get(config_current(r), id);

    if (s == NULL) {
        return RAFT_ENOTFOUND;
    }
    if (s->role != RAFT_LEARNER || r->promote_pending != 0) {
        return s->role != RAFT_LEARNER ? RAFT_EINVAL : RAFT_EBUSY;
    }
    r->promote_pending = id;
    r->promote_bar = log_last(&r->log);
    return maybe_promote(r);
}

int change_membership(struct raft *r, uint8_t type, raft_id id)
{
    struct raft_config c;
    int rv;

    rv = check_can_change(r);
    if (rv != 0) {
        return rv;
    }
    if (type == RAFT_CHANGE_PROMOTE) {
        return request_promote(r, id);
    }
    if (type != RAFT_CHANGE_ADD_LEARNER && type != RAFT_CHANGE_REMOVE) {
        return RAFT_EINVAL;
    }
    if (type == RAFT_CHANGE_ADD_LEARNER && is_removed(r, id)) {
        return RAFT_EREMOVED;
    }
    rv = raft_config_copy(&c, config_current(r));
    if (rv != 0) {
        return rv;
    }
    if (type == RAFT_CHANGE_ADD_LEARNER) {
        rv = raft_config_add(&c, id, RAFT_LEARNER);
    } else {
        rv = remove_server(r, &c, id);
    }
    if (rv == 0) {
        trace(r, 0, id,
              type == RAFT_CHANGE_ADD_LEARNER ? "adding learner" : "removing server");
        rv = propose_config(r, &c);
    }
    raft_config_free(&c);
    return rv;
}

int maybe_send_timeout_now(struct raft *r, struct progress *p)
{
    struct raft_message m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = p->id};

    if (r->transfer_target != p->id || p->match != log_last(&r->log)) {
        return 0;
    }
    trace(r, p->match, p->id, "sent timeout-now to transfer target");
    return send_message(r, &m);
}

static raft_id most_up_to_date_voter(const struct raft *r)
{
    raft_id best = 0;
    raft_index match = 0;
    size_t i;

    for (i = 0; i < r->n_prs; i++) {
        const struct progress *p = &r->prs[i];
        if (p->id != r->id && p->role == RAFT_VOTER && (best == 0 || p->match > match)) {
            best = p->id;
            match = p->match;
        }
    }
    return best;
}

/* Stops accepting proposals, brings the target up to date, then sends it TIMEOUT_NOW to
 * campaign (Raft dissertation, chapter 3); gives up after an election timeout. */
int start_transfer(struct raft *r, raft_id target)
{
    struct progress *p;

    if (r->state != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_EBUSY;
    }
    if (target == 0) {
        target = most_up_to_date_voter(r);
        if (target == 0) {
            return RAFT_ENOTFOUND;
        }
    }
    p = progress_get(r, target);
    if (target == r->id || p == NULL || p->role != RAFT_VOTER) {
        return RAFT_EINVAL;
    }
    r->transfer_target = target;
    r->transfer_deadline = r->now + election_min_ms(r);
    trace(r, 0, target, "started leadership transfer");
    if (p->match == log_last(&r->log)) {
        return maybe_send_timeout_now(r, p);
    }
    return send_append(r, p, false);
}
