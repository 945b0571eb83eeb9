/* The storage callbacks of a simulated node: the core reads its durable
 * state through them, as node/ would read LMDB. */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static uint8_t *copy_bytes(const uint8_t *p, size_t n)
{
    uint8_t *q;

    if (n == 0) {
        return NULL;
    }
    q = malloc(n);
    if (q == NULL) {
        abort();
    }
    memcpy(q, p, n);
    return q;
}

raft_index sim_disk_last(const struct sim_disk *d)
{
    return d->first + d->n - 1;
}

static int st_hard_state(void *user, raft_term *term, raft_id *vote)
{
    struct sim_node *n = user;

    *term = n->disk.term;
    *vote = n->disk.vote;
    return 0;
}

static int st_snapshot_meta(void *user, struct raft_snapshot_meta *meta)
{
    struct sim_node *n = user;

    *meta = n->disk.snap;
    return raft_config_copy(&meta->config, &n->disk.snap.config);
}

static int st_snapshot_read(void *user, raft_index index, uint64_t offset, uint8_t *buf,
                            size_t len)
{
    struct sim_node *n = user;

    if (index != n->disk.snap.index || offset + len > n->disk.snap.size) {
        return RAFT_ENOTFOUND;
    }
    memcpy(buf, n->disk.snap_data + offset, len);
    return 0;
}

static raft_index st_first_index(void *user)
{
    return ((struct sim_node *)user)->disk.first;
}

static raft_index st_last_index(void *user)
{
    return sim_disk_last(&((struct sim_node *)user)->disk);
}

static int st_term(void *user, raft_index index, raft_term *term)
{
    struct sim_disk *d = &((struct sim_node *)user)->disk;

    if (index < d->first || index > sim_disk_last(d)) {
        return RAFT_ENOTFOUND;
    }
    *term = d->entries[index - d->first].term;
    return 0;
}

static int st_entries(void *user, raft_index lo, raft_index hi, size_t max_bytes,
                      struct raft_entry *out, size_t cap, size_t *n)
{
    struct sim_disk *d = &((struct sim_node *)user)->disk;
    size_t k = 0, bytes = 0;

    if (lo < d->first || hi > sim_disk_last(d) + 1 || lo >= hi) {
        return RAFT_ENOTFOUND;
    }
    while (lo + k < hi && k < cap) {
        const struct sim_entry *e = &d->entries[lo + k - d->first];
        if (k > 0 && bytes + e->len > max_bytes) {
            break;
        }
        out[k].index = lo + k;
        out[k].term = e->term;
        out[k].type = e->type;
        out[k].len = e->len;
        out[k].data = copy_bytes(e->data, e->len);
        bytes += e->len;
        k++;
    }
    *n = k;
    return 0;
}

void sim_storage_init(struct raft_storage *st, struct sim_node *n)
{
    memset(st, 0, sizeof(*st));
    st->user = n;
    st->hard_state = st_hard_state;
    st->snapshot_meta = st_snapshot_meta;
    st->snapshot_read = st_snapshot_read;
    st->first_index = st_first_index;
    st->last_index = st_last_index;
    st->term = st_term;
    st->entries = st_entries;
}
