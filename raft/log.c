/* The log view: snapshot, stored entries and entries not yet durable. */
#include <stdlib.h>
#include <string.h>

#include "raft/internal.h"

raft_index log_last(const struct raft_log *l)
{
    return l->stable + l->n_mem;
}

const struct raft_entry *log_mem_at(const struct raft_log *l, raft_index index)
{
    if (index <= l->stable || index > log_last(l)) {
        return NULL;
    }
    return &l->mem[index - l->stable - 1];
}

int log_term(const struct raft *r, raft_index index, raft_term *term)
{
    const struct raft_log *l = &r->log;
    const struct raft_entry *e;

    if (index == 0) {
        *term = 0;
        return 0;
    }
    if (index == l->snap_index) {
        *term = l->snap_term;
        return 0;
    }
    if (index > log_last(l)) {
        return RAFT_ENOTFOUND;
    }
    e = log_mem_at(l, index);
    if (e != NULL) {
        *term = e->term;
        return 0;
    }
    if (index < l->first) {
        return RAFT_ECOMPACTED;
    }
    if (r->st.term(r->st.user, index, term) != 0) {
        return RAFT_ESTORAGE;
    }
    return 0;
}

static int mem_reserve(struct raft_log *l, size_t n)
{
    struct raft_entry *mem;
    size_t cap;

    if (n <= l->cap_mem) {
        return 0;
    }
    cap = l->cap_mem == 0 ? 64 : l->cap_mem;
    while (cap < n) {
        cap *= 2;
    }
    mem = realloc(l->mem, cap * sizeof(*mem));
    if (mem == NULL) {
        return RAFT_ENOMEM;
    }
    l->mem = mem;
    l->cap_mem = cap;
    return 0;
}

/* Appends a copy of e, which must have index last + 1; a configuration entry
 * takes effect at once (Raft dissertation, chapter 4). */
int log_append(struct raft *r, const struct raft_entry *e)
{
    struct raft_log *l = &r->log;
    struct raft_entry *dst;
    struct raft_config c = {0};
    int rv;

    if (e->index != log_last(l) + 1) {
        return RAFT_EINVAL;
    }
    rv = mem_reserve(l, l->n_mem + 1);
    if (rv != 0) {
        return rv;
    }

    if (e->type == RAFT_ENTRY_CONFIG) {
        rv = raft_config_decode(e->data, e->len, &c);
        if (rv == 0) {
            rv = config_push(r, e->index, &c);
        }
        raft_config_free(&c);
        if (rv != 0) {
            return rv;
        }
    }

    dst = &l->mem[l->n_mem];
    *dst = *e;
    dst->data = NULL;
    if (e->len > 0) {
        dst->data = malloc(e->len);
        if (dst->data == NULL) {
            if (e->type == RAFT_ENTRY_CONFIG) {
                config_drop_from(r, e->index);
            }
            return RAFT_ENOMEM;
        }
        memcpy(dst->data, e->data, e->len);
    }
    l->n_mem++;
    if (e->index < r->persist_from) {
        r->persist_from = e->index;
    }
    return 0;
}

/* Moves the data of mem[from_pos..n_mem) to the garbage list and shortens mem. */
static int mem_discard_tail(struct raft *r, size_t from_pos)
{
    struct raft_log *l = &r->log;
    size_t i;
    int rv;

    for (i = from_pos; i < l->n_mem; i++) {
        rv = add_garbage(r, l->mem[i].data);
        if (rv != 0) {
            return rv;
        }
        l->mem[i].data = NULL;
    }
    l->n_mem = from_pos;
    return 0;
}

/* Deletes entries at index >= from; from must be above the commit index
 * because committed entries are never removed (Raft dissertation, chapter 3). */
int log_truncate(struct raft *r, raft_index from)
{
    struct raft_log *l = &r->log;
    int rv;

    if (from > log_last(l)) {
        return 0;
    }
    if (from > l->stable) {
        rv = mem_discard_tail(r, (size_t)(from - l->stable - 1));
    } else {
        rv = mem_discard_tail(r, 0);
        l->stable = from - 1;
    }
    if (rv != 0) {
        return rv;
    }
    if (from < r->persist_from) {
        r->persist_from = from;
    }
    config_drop_from(r, from);
    return 0;
}

static size_t entry_cost(const struct raft_entry *e)
{
    return e->len + 32;
}

/* Fills out with entries [lo, hi) but at most cap and about max_bytes,
 * always at least one. Stored entries' data is freed at the next step. */
int log_get(struct raft *r, raft_index lo, raft_index hi, size_t max_bytes,
            struct raft_entry *out, size_t cap, size_t *n)
{
    struct raft_log *l = &r->log;
    size_t k = 0, bytes = 0, i;
    int rv;

    *n = 0;
    if (lo < l->first || hi > log_last(l) + 1 || lo >= hi || cap == 0) {
        return lo >= hi ? 0 : RAFT_ECOMPACTED;
    }

    if (lo <= l->stable) {
        raft_index top = hi < l->stable + 1 ? hi : l->stable + 1;
        rv = r->st.entries(r->st.user, lo, top, max_bytes, out, cap, &k);
        if (rv != 0 || k == 0 || k > cap || k > top - lo) {
            return RAFT_ESTORAGE;
        }
        for (i = 0; i < k; i++) {
            if (add_garbage(r, out[i].data) != 0) {
                for (; i < k; i++) {
                    free(out[i].data);
                }
                return RAFT_ENOMEM;
            }
            if (out[i].index != lo + i) {
                return RAFT_ESTORAGE;
            }
            bytes += entry_cost(&out[i]);
        }
        if (lo + k < top) {
            *n = k;
            return 0;
        }
    }

    for (i = 0; k < cap && lo + k < hi; i++) {
        const struct raft_entry *e = log_mem_at(l, lo + k);
        if (k > 0 && bytes + entry_cost(e) > max_bytes) {
            break;
        }
        out[k++] = *e;
        bytes += entry_cost(e);
    }
    *n = k;
    return 0;
}

/* Records that the caller made entries up to (index, term) durable. A report
 * about entries replaced since is ignored, because (index, term) names a
 * unique entry (Log Matching, Raft dissertation chapter 3). */
void log_persisted(struct raft *r, raft_index index, raft_term term)
{
    struct raft_log *l = &r->log;
    const struct raft_entry *e = log_mem_at(l, index);
    size_t k, i;

    if (e == NULL || e->term != term) {
        trace(r, index, 0, "ignored stale persisted report");
        return;
    }
    k = (size_t)(index - l->stable);
    for (i = 0; i < k; i++) {
        if (add_garbage(r, l->mem[i].data) != 0) {
            /* NOTE: out of memory here only delays freeing; the entries stay in memory.
             */
            return;
        }
    }
    memmove(l->mem, l->mem + k, (l->n_mem - k) * sizeof(*l->mem));
    l->n_mem -= k;
    l->stable = index;
}

/* Replaces the whole log by a snapshot ending at (index, term). */
void log_reset_to_snapshot(struct raft *r, raft_index index, raft_term term)
{
    struct raft_log *l = &r->log;
    size_t i;

    for (i = 0; i < l->n_mem; i++) {
        if (add_garbage(r, l->mem[i].data) != 0) {
            free(l->mem[i].data);
        }
    }
    l->n_mem = 0;
    l->first = index + 1;
    l->stable = index;
    l->snap_index = index;
    l->snap_term = term;
    r->persist_from = UINT64_MAX;
}

void log_free(struct raft *r)
{
    size_t i;

    for (i = 0; i < r->log.n_mem; i++) {
        free(r->log.mem[i].data);
    }
    free(r->log.mem);
    memset(&r->log, 0, sizeof(r->log));
}

/* Collects the configuration entries above the snapshot. This reads every
 * stored entry once at start; snapshots bound how many there are. */
static int load_configs(struct raft *r)
{
    struct raft_entry batch[64];
    raft_index i = r->log.snap_index + 1;
    size_t n, k;
    int rv = 0;

    if (i < r->log.first) {
        i = r->log.first;
    }
    while (i <= r->log.stable && rv == 0) {
        rv = r->st.entries(r->st.user, i, r->log.stable + 1, 1 << 20, batch, 64, &n);
        if (rv != 0 || n == 0 || n > 64) {
            return RAFT_ESTORAGE;
        }
        for (k = 0; k < n; k++) {
            struct raft_config c = {0};
            if (rv == 0 && batch[k].index != i + k) {
                rv = RAFT_ESTORAGE;
            }
            if (rv == 0 && batch[k].type == RAFT_ENTRY_CONFIG) {
                rv = raft_config_decode(batch[k].data, batch[k].len, &c);
                rv = rv == 0 ? config_push(r, batch[k].index, &c) : RAFT_ESTORAGE;
                raft_config_free(&c);
            }
            free(batch[k].data);
        }
        i += n;
    }
    return rv;
}

/* Reads the log bounds, snapshot and configurations from storage. */
int log_load(struct raft *r)
{
    struct raft_snapshot_meta meta = {0};
    struct raft_log *l = &r->log;
    raft_index last;
    int rv;

    rv = r->st.snapshot_meta(r->st.user, &meta);
    if (rv != 0) {
        raft_config_free(&meta.config);
        return RAFT_ESTORAGE;
    }
    r->base_config = meta.config;
    l->snap_index = meta.index;
    l->snap_term = meta.term;
    l->first = r->st.first_index(r->st.user);
    last = r->st.last_index(r->st.user);
    l->stable = last > meta.index ? last : meta.index;
    if (l->first == 0 || l->first > meta.index + 1) {
        return RAFT_ESTORAGE;
    }
    return load_configs(r);
}
