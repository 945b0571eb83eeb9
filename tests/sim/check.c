/* Safety checks. Each records what the cluster has done so far and fails the
 * run the first time a Raft safety property (Raft dissertation, chapter 3)
 * does not hold. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Grows a zero-filled array so that index need is valid. */
static void grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t cap2 = *cap == 0 ? 1024 : *cap;
    void *p;

    if (need < *cap) {
        return;
    }
    while (cap2 <= need) {
        cap2 *= 2;
    }
    p = realloc(*arr, cap2 * elem);
    if (p == NULL) {
        abort();
    }
    memset((char *)p + *cap * elem, 0, (cap2 - *cap) * elem);
    *arr = p;
    *cap = cap2;
}

#define GROW(s, field, capfield, need)                                                   \
    grow((void **)&(s)->field, &(s)->capfield, (size_t)(need), sizeof(*(s)->field))

/* Leader Completeness: a leader of term T contains every entry committed in a
 * term before T. The newest such entry suffices, because Log Matching then
 * covers everything before it. */
static void check_leader_completeness(struct sim *s, struct sim_node *n, raft_term term)
{
    raft_index i = s->gcommit;
    raft_term t;

    while (i > 0 && s->committed[i].commit_term >= term) {
        i--;
    }
    if (i == 0 || i <= raft_snapshot_index(n->r)) {
        return;
    }
    if (raft_term_at(n->r, i, &t) != 0 || t != s->committed[i].term) {
        sim_fail(
            s, "leader completeness: leader %llu of term %llu lacks committed entry %llu",
            (unsigned long long)n->id, (unsigned long long)term, (unsigned long long)i);
    }
}

static void record_anchor(struct sim *s, struct sim_node *n, raft_index c, raft_term t)
{
    const struct raft_config *cfg = raft_config_of(n->r);
    size_t i;

    s->anchor_index = c;
    s->anchor_term = t;
    s->n_anchor_voters = 0;
    for (i = 0; i < cfg->n && s->n_anchor_voters < SIM_MAX_NODES; i++) {
        if (cfg->servers[i].role == RAFT_VOTER) {
            s->anchor_voters[s->n_anchor_voters++] = cfg->servers[i].id;
        }
    }
}

/* Every server agrees on the entries it has recorded as committed. */
static void check_commit(struct sim *s, struct sim_node *n)
{
    raft_index c = raft_commit_index(n->r), i;
    raft_term term = raft_term_of(n->r), t = 0;

    if (c < n->commit_seen) {
        sim_fail(s, "node %llu: commit index went back from %llu to %llu",
                 (unsigned long long)n->id, (unsigned long long)n->commit_seen,
                 (unsigned long long)c);
        return;
    }
    GROW(s, committed, cap_committed, c + 1);
    for (i = n->commit_seen + 1; i <= c; i++) {
        if (i <= raft_snapshot_index(n->r)) {
            continue;
        }
        if (raft_term_at(n->r, i, &t) != 0) {
            sim_fail(s, "node %llu: committed entry %llu is missing from its log",
                     (unsigned long long)n->id, (unsigned long long)i);
            return;
        }
        if (s->committed[i].term == 0) {
            s->committed[i].term = t;
            s->committed[i].commit_term = term;
        } else if (s->committed[i].term != t) {
            sim_fail(s, "committed entries differ at index %llu: term %llu and term %llu",
                     (unsigned long long)i, (unsigned long long)s->committed[i].term,
                     (unsigned long long)t);
            return;
        }
    }
    if (c > s->gcommit) {
        s->gcommit = c;
    }
    if (c > n->commit_seen && raft_state_of(n->r) == RAFT_LEADER && t != 0) {
        record_anchor(s, n, c, t);
    }
    n->commit_seen = c;
}

void check_after_step(struct sim *s, struct sim_node *n, const struct raft_update *u)
{
    raft_term term = raft_term_of(n->r);

    if (u->state_changed && u->state == RAFT_LEADER) {
        GROW(s, leaders, cap_leaders, term + 1);
        if (s->leaders[term] != 0 && s->leaders[term] != n->id) {
            sim_fail(s, "election safety: nodes %llu and %llu both leaders in term %llu",
                     (unsigned long long)s->leaders[term], (unsigned long long)n->id,
                     (unsigned long long)term);
        }
        s->leaders[term] = n->id;
        s->n_elections++;
        sim_log(s, "n%llu leader of term %llu", (unsigned long long)n->id,
                (unsigned long long)term);
    }
    check_commit(s, n);
    if (u->state_changed && u->state == RAFT_LEADER) {
        check_leader_completeness(s, n, term);
    }
}

/* Log Matching over durable logs: an (index, term) pair names one entry and
 * one prefix, so its chain hash must be the same on every node. */
void check_durable_append(struct sim *s, struct sim_node *n, raft_index index,
                          const struct sim_entry *e)
{
    size_t mask, i;

    if (s->n_chains * 2 >= s->cap_chains) {
        struct sim_chain_slot *old = s->chains;
        size_t cap = s->cap_chains, k;
        s->cap_chains = cap == 0 ? 4096 : cap * 2;
        s->chains = calloc(s->cap_chains, sizeof(*s->chains));
        if (s->chains == NULL) {
            abort();
        }
        s->n_chains = 0;
        for (k = 0; k < cap; k++) {
            if (old[k].index != 0) {
                struct sim_entry tmp = {.term = old[k].term, .chain = old[k].chain};
                check_durable_append(s, n, old[k].index, &tmp);
            }
        }
        free(old);
    }
    mask = s->cap_chains - 1;
    i = (size_t)sim_hash(index, e->term) & mask;
    while (s->chains[i].index != 0 &&
           (s->chains[i].index != index || s->chains[i].term != e->term)) {
        i = (i + 1) & mask;
    }
    if (s->chains[i].index == 0) {
        s->chains[i].index = index;
        s->chains[i].term = e->term;
        s->chains[i].chain = e->chain;
        s->n_chains++;
    } else if (s->chains[i].chain != e->chain) {
        sim_fail(
            s,
            "log matching: node %llu stored entry %llu of term %llu with a different "
            "prefix or content",
            (unsigned long long)n->id, (unsigned long long)index,
            (unsigned long long)e->term);
    }
}

/* State Machine Safety: every node applies the same entry at each index, in
 * order, without gaps or going back. */
void check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
    struct sim_applied *a;
    uint64_t data_hash = sim_hash_bytes(e->data, e->len);
    uint64_t app_hash = sim_hash(sim_hash(n->disk.app_hash, e->term), data_hash);

    if (e->index != n->disk.applied + 1) {
        sim_fail(s, "node %llu applied index %llu after %llu", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)n->disk.applied);
        return;
    }
    GROW(s, applied, cap_applied, e->index + 1);
    a = &s->applied[e->index];
    if (!a->set) {
        a->set = true;
        a->term = e->term;
        a->data_hash = data_hash;
        a->app_hash = app_hash;
        s->n_committed_entries++;
    } else if (a->term != e->term || a->data_hash != data_hash ||
               a->app_hash != app_hash) {
        sim_fail(
            s, "state machine safety: node %llu applied a different entry at index %llu",
            (unsigned long long)n->id, (unsigned long long)e->index);
    }
}

void check_install(struct sim *s, struct sim_node *n, raft_index index, uint64_t app_hash)
{
    if (index <= n->disk.applied) {
        sim_fail(s,
                 "node %llu: installing snapshot %llu would move applied index %llu back",
                 (unsigned long long)n->id, (unsigned long long)index,
                 (unsigned long long)n->disk.applied);
        return;
    }
    if (index >= s->cap_applied || !s->applied[index].set ||
        s->applied[index].app_hash != app_hash) {
        sim_fail(s, "node %llu: installed snapshot %llu differs from the applied state",
                 (unsigned long long)n->id, (unsigned long long)index);
    }
}

void check_read_request(struct sim *s, uint64_t id)
{
    if (s->n_reads == s->cap_reads) {
        s->cap_reads = s->cap_reads == 0 ? 16 : s->cap_reads * 2;
        s->reads = realloc(s->reads, s->cap_reads * sizeof(*s->reads));
        if (s->reads == NULL) {
            abort();
        }
    }
    s->reads[s->n_reads].id = id;
    s->reads[s->n_reads].min_index = s->gcommit;
    s->n_reads++;
}

/* Linearizable reads: a confirmed read index covers every entry committed
 * before the read was requested. */
void check_read_result(struct sim *s, struct sim_node *n, const struct raft_read *rd)
{
    size_t i;

    for (i = 0; i < s->n_reads; i++) {
        if (s->reads[i].id != rd->id) {
            continue;
        }
        if (rd->ok && rd->index < s->reads[i].min_index) {
            sim_fail(s,
                     "stale read: node %llu confirmed read %llu at index %llu, but %llu "
                     "was committed before it was requested",
                     (unsigned long long)n->id, (unsigned long long)rd->id,
                     (unsigned long long)rd->index,
                     (unsigned long long)s->reads[i].min_index);
        }
        s->reads[i] = s->reads[--s->n_reads];
        return;
    }
}

/* The entry a leader last committed stays durable on a majority of the voters
 * it counted, whatever crashes lost. */
void check_durable_commit(struct sim *s)
{
    size_t i, count = 0;

    if (s->anchor_index == 0) {
        return;
    }
    for (i = 0; i < s->n_anchor_voters; i++) {
        raft_id id = s->anchor_voters[i];
        const struct sim_disk *d;
        if (id == 0 || id > (raft_id)s->n_nodes) {
            continue;
        }
        d = &s->nodes[id - 1].disk;
        if (d->snap.index >= s->anchor_index) {
            count++;
        } else if (s->anchor_index >= d->first && s->anchor_index < d->first + d->n &&
                   d->entries[s->anchor_index - d->first].term == s->anchor_term) {
            count++;
        }
    }
    if (count < s->n_anchor_voters / 2 + 1) {
        sim_fail(s,
                 "committed entry %llu (term %llu) is durable on only %zu of %zu voters",
                 (unsigned long long)s->anchor_index, (unsigned long long)s->anchor_term,
                 count, s->n_anchor_voters);
    }
}

void check_free(struct sim *s)
{
    free(s->leaders);
    free(s->committed);
    free(s->applied);
    free(s->chains);
    free(s->reads);
}
