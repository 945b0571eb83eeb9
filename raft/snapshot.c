/* Snapshots: compaction after a local snapshot, chunked sending to a follower
 * that needs compacted entries, and receiving and installing one. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

/* The application stored a snapshot covering entries up to index; keep
 * snapshot_trailing entries behind it for followers that lag a little. */
int take_snapshot(struct raft *r, raft_index index, raft_term term)
{
    raft_term t;
    raft_index first;

    if (index > r->applied || index <= r->log.snap_index || log_term(r, index, &t) != 0 ||
        t != term) {
        return RAFT_EINVAL;
    }
    config_compact(r, index);
    r->log.snap_index = index;
    r->log.snap_term = term;
    first = index > r->opt.snapshot_trailing ? index - r->opt.snapshot_trailing + 1 : 1;
    if (first > r->log.first) {
        r->log.first = first;
        r->u->compact_index = first - 1;
    }
    trace(r, index, 0, "took snapshot");
    return 0;
}

/* Hands the arrays of a configuration to the garbage list so that a message
 * or update may point at them until the next step. */
static int config_to_garbage(struct raft *r, struct raft_config *c)
{
    int rv = add_garbage(r, c->servers);

    if (rv != 0) {
        raft_config_free(c);
        return rv;
    }
    rv = add_garbage(r, c->removed);
    if (rv != 0) {
        free(c->removed);
    }
    return rv;
}

int send_snapshot_chunk(struct raft *r, struct progress *p)
{
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .to = p->id};
    struct raft_snapshot_meta meta = {0};
    struct raft_snapshot_chunk *c = &m.snapshot;
    int rv;

    if (r->st.snapshot_meta(r->st.user, &meta) != 0 || meta.index == 0) {
        raft_config_free(&meta.config);
        trace(r, 0, p->id, "follower needs a snapshot but none is stored");
        return 0;
    }
    rv = config_to_garbage(r, &meta.config);
    if (rv != 0) {
        return rv;
    }
    if (p->mode != PROGRESS_SNAPSHOT || p->snap_index != meta.index ||
        p->snap_offset > meta.size) {
        p->mode = PROGRESS_SNAPSHOT;
        p->snap_index = meta.index;
        p->snap_offset = 0;
        p->n_inflight = 0;
        trace(r, meta.index, p->id, "sending snapshot");
    }

    c->index = meta.index;
    c->term = meta.term;
    c->config = meta.config;
    c->size = meta.size;
    c->offset = p->snap_offset;
    c->len = meta.size - c->offset;
    if (c->len > r->opt.snapshot_chunk_bytes) {
        c->len = r->opt.snapshot_chunk_bytes;
    }
    c->data = malloc(c->len > 0 ? c->len : 1);
    if (c->data == NULL || add_garbage(r, c->data) != 0) {
        free(c->data);
        return RAFT_ENOMEM;
    }
    rv = r->st.snapshot_read(r->st.user, c->index, c->offset, c->data, c->len);
    if (rv != 0) {
        p->snap_index = 0; /* replaced meanwhile; start over with the new one */
        return 0;
    }
    p->last_send = r->now;
    return send_message(r, &m);
}

static bool chunk_valid(const struct raft_snapshot_chunk *c)
{
    return c->index > 0 && c->term > 0 && c->offset <= c->size &&
           c->len <= c->size - c->offset && (c->len == 0 || c->data != NULL) &&
           (c->len > 0 || c->offset == c->size) && raft_config_check(&c->config) == 0;
}

/* Completes a received snapshot: the log is replaced and the snapshot's
 * configuration takes effect (Raft dissertation, chapter 5). */
static int install(struct raft *r, const struct raft_snapshot_chunk *c)
{
    struct raft_config config;
    size_t i;
    int rv;

    rv = raft_config_copy(&config, &c->config);
    if (rv != 0) {
        return rv;
    }
    log_reset_to_snapshot(r, c->index, c->term);
    raft_config_free(&r->base_config);
    r->base_config = config;
    for (i = 0; i < r->n_configs; i++) {
        raft_config_free(&r->configs[i].config);
    }
    r->n_configs = 0;
    r->commit = c->index;
    r->applied = c->index;
    r->recv_snap_index = 0;
    trace(r, c->index, 0, "installed snapshot");
    return 0;
}

static int stage_chunk(struct raft *r, const struct raft_snapshot_chunk *c)
{
    struct raft_snapshot_write *w = &r->u->snapshot;
    uint8_t *data = NULL;
    int rv;

    if (c->len > 0) {
        data = malloc(c->len);
        if (data == NULL || add_garbage(r, data) != 0) {
            free(data);
            return RAFT_ENOMEM;
        }
        memcpy(data, c->data, c->len);
    }
    rv = raft_config_copy(&w->meta.config, &c->config);
    if (rv == 0) {
        rv = config_to_garbage(r, &w->meta.config);
    }
    if (rv != 0) {
        return rv;
    }
    w->meta.index = c->index;
    w->meta.term = c->term;
    w->meta.size = c->size;
    w->offset = c->offset;
    w->data = data;
    w->len = c->len;
    w->install = c->offset + c->len == c->size;
    r->u->has_snapshot = true;
    r->recv_snap_offset = c->offset + c->len;
    return w->install ? install(r, c) : 0;
}

/* Returns true if the snapshot is not needed because the log already covers
 * it, and fills the response for that case. */
static bool already_covered(struct raft *r, const struct raft_snapshot_chunk *c,
                            struct raft_snapshot_resp *resp)
{
    raft_term t;

    if (c->index <= r->commit) {
        resp->done = true;
        resp->match = r->commit;
        return true;
    }
    if (log_term(r, c->index, &t) == 0 && t == c->term) {
        /* The entry at index matches, hence so does everything before it
         * (Log Matching), and the snapshot proves it committed. */
        r->commit = c->index;
        resp->done = true;
        resp->match = c->index;
        return true;
    }
    return false;
}

int recv_snapshot(struct raft *r, const struct raft_message *m)
{
    const struct raft_snapshot_chunk *c = &m->snapshot;
    struct raft_message resp = {.type = RAFT_MSG_SNAPSHOT_RESP, .to = m->from};
    struct raft_snapshot_resp *sr = &resp.snapshot_resp;
    int rv;

    if (!chunk_valid(c)) {
        trace(r, c->index, m->from, "dropped malformed snapshot chunk");
        return 0;
    }
    if (r->state != RAFT_FOLLOWER) {
        become_follower(r, m->term, m->from);
    }
    r->leader = m->from;
    r->leader_contact = r->now;
    reset_election_timer(r);
    sr->index = c->index;

    if (already_covered(r, c, sr)) {
        return send_message(r, &resp);
    }
    if (c->offset == 0) {
        r->recv_snap_index = c->index;
        r->recv_snap_term = c->term;
        r->recv_snap_offset = 0;
    }
    if (r->recv_snap_index != c->index || r->recv_snap_term != c->term ||
        r->recv_snap_offset != c->offset) {
        /* Out of order or from another snapshot: ask for the expected chunk. */
        sr->offset = r->recv_snap_index == c->index && r->recv_snap_term == c->term
                         ? r->recv_snap_offset
                         : 0;
        return send_message(r, &resp);
    }
    rv = stage_chunk(r, c);
    if (rv != 0) {
        return rv;
    }
    sr->offset = r->recv_snap_offset;
    if (r->u->snapshot.install) {
        sr->done = true;
        sr->match = c->index;
    }
    return send_message(r, &resp);
}

int recv_snapshot_resp(struct raft *r, const struct raft_message *m)
{
    const struct raft_snapshot_resp *sr = &m->snapshot_resp;
    struct progress *p = progress_get(r, m->from);
    int rv;

    if (r->state != RAFT_LEADER || p == NULL) {
        return 0;
    }
    p->active = true;
    if (sr->done) {
        if (sr->match > log_last(&r->log)) {
            trace(r, sr->match, p->id, "dropped snapshot response beyond the log");
            return 0;
        }
        if (sr->match > p->match) {
            p->match = sr->match;
            p->last_ack = r->now;
        }
        if (p->mode == PROGRESS_SNAPSHOT) {
            p->mode = PROGRESS_PROBE;
            p->next = p->match + 1;
            p->n_inflight = 0;
            trace(r, p->match, p->id, "snapshot transfer finished");
        }
        rv = send_append(r, p, false);
        return rv != 0 ? rv : after_match(r, p);
    }
    if (p->mode != PROGRESS_SNAPSHOT || sr->index != p->snap_index) {
        return 0;
    }
    p->snap_offset = sr->offset;
    p->last_ack = r->now;
    return send_snapshot_chunk(r, p);
}
