/* The simulated cluster: in-memory disks, a lossy network, the event queue,
 * and carrying out each update in the order raft.h prescribes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SNAP_HEADER 24

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "raft-sim: out of memory\n");
        abort();
    }
    return p;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *q;

    if (n == 0) {
        return NULL;
    }
    q = xmalloc(n);
    memcpy(q, p, n);
    return q;
}

/* splitmix64, as in the core; the simulator keeps its own stream. */
uint64_t sim_random(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Returns a value in [lo, hi]. */
uint64_t sim_range(struct sim *s, uint64_t lo, uint64_t hi)
{
    return lo + sim_random(s) % (hi - lo + 1);
}

uint64_t sim_hash(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

uint64_t sim_hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

void sim_log(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    char *line = s->ring[s->ring_pos % SIM_RING];
    int k = snprintf(line, sizeof(s->ring[0]), "t=%llu ", (unsigned long long)s->now);

    va_start(ap, fmt);
    vsnprintf(line + k, sizeof(s->ring[0]) - (size_t)k, fmt, ap);
    va_end(ap);
    s->ring_pos++;
    if (s->params.verbose) {
        printf("%s\n", line);
    }
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
    va_list ap;

    if (s->violated) {
        return;
    }
    s->violated = true;
    va_start(ap, fmt);
    vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
    va_end(ap);
}

/* ---- Event queue: a binary heap ordered by (time, seq) ---- */

static bool ev_less(const struct sim_event *a, const struct sim_event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void sim_schedule(struct sim *s, uint64_t at, uint8_t kind, int node,
                  struct raft_message *msg)
{
    struct sim_event ev = {
        .time = at, .seq = s->seq++, .kind = kind, .node = node, .msg = msg};
    size_t i;

    if (node >= 0) {
        ev.incarnation = s->nodes[node].incarnation;
    }
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap == 0 ? 256 : s->cap_heap * 2;
        s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
        if (s->heap == NULL) {
            abort();
        }
    }
    i = s->n_heap++;
    while (i > 0 && ev_less(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
}

bool sim_pop(struct sim *s, struct sim_event *ev)
{
    struct sim_event last;
    size_t i = 0;

    if (s->n_heap == 0) {
        return false;
    }
    *ev = s->heap[0];
    last = s->heap[--s->n_heap];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap) {
            break;
        }
        if (c + 1 < s->n_heap && ev_less(&s->heap[c + 1], &s->heap[c])) {
            c++;
        }
        if (!ev_less(&s->heap[c], &last)) {
            break;
        }
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = last;
    if (ev->time > s->now) {
        s->now = ev->time;
    }
    return true;
}

/* ---- Deep copies of what the core hands out ---- */

static void copy_entries(struct raft_entry **dst, const struct raft_entry *src, size_t n)
{
    size_t i;

    *dst = NULL;
    if (n == 0) {
        return;
    }
    *dst = xmalloc(n * sizeof(**dst));
    for (i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        (*dst)[i].data = dup_bytes(src[i].data, src[i].len);
    }
}

static void free_entries(struct raft_entry *e, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(e[i].data);
    }
    free(e);
}

static struct raft_message *copy_message(const struct raft_message *m)
{
    struct raft_message *c = xmalloc(sizeof(*c));

    *c = *m;
    if (m->type == RAFT_MSG_APPEND) {
        copy_entries(&c->append.entries, m->append.entries, m->append.n_entries);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        c->snapshot.data = dup_bytes(m->snapshot.data, m->snapshot.len);
        if (raft_config_copy(&c->snapshot.config, &m->snapshot.config) != 0) {
            abort();
        }
    }
    return c;
}

void sim_free_message(struct raft_message *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND) {
        free_entries(m->append.entries, m->append.n_entries);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        free(m->snapshot.data);
        raft_config_free(&m->snapshot.config);
    }
    free(m);
}

static void copy_update(struct raft_update *dst, const struct raft_update *u)
{
    size_t i;

    *dst = *u;
    copy_entries(&dst->entries, u->entries, u->n_entries);
    copy_entries(&dst->committed, u->committed, u->n_committed);
    dst->messages = NULL;
    dst->n_messages = 0;
    dst->reads = NULL;
    if (u->n_reads > 0) {
        dst->reads = xmalloc(u->n_reads * sizeof(*u->reads));
        memcpy(dst->reads, u->reads, u->n_reads * sizeof(*u->reads));
    }
    if (u->has_snapshot) {
        dst->snapshot.data = dup_bytes(u->snapshot.data, u->snapshot.len);
        if (raft_config_copy(&dst->snapshot.meta.config, &u->snapshot.meta.config) != 0) {
            abort();
        }
    }
    for (i = 0; i < u->n_messages; i++) {
        if (dst->n_messages == 0) {
            dst->messages = xmalloc(u->n_messages * sizeof(struct raft_message *));
        }
        ((struct raft_message **)dst->messages)[dst->n_messages++] =
            copy_message(&u->messages[i]);
    }
}

static void free_update(struct raft_update *u)
{
    size_t i;

    free_entries(u->entries, u->n_entries);
    free_entries(u->committed, u->n_committed);
    free(u->reads);
    if (u->has_snapshot) {
        free((uint8_t *)u->snapshot.data);
        raft_config_free(&u->snapshot.meta.config);
    }
    for (i = 0; i < u->n_messages; i++) {
        sim_free_message(((struct raft_message **)u->messages)[i]);
    }
    free(u->messages);
}

/* ---- Network ---- */

static int node_index(const struct sim *s, raft_id id)
{
    if (id == 0 || id > (raft_id)s->n_nodes) {
        return -1;
    }
    return (int)(id - 1);
}

/* Sends m from node from: the simulated network loses, duplicates and delays
 * it; a random delay per copy reorders messages. Takes ownership of m. */
static void net_send(struct sim *s, int from, struct raft_message *m)
{
    int to = node_index(s, m->to);
    uint64_t delay;

    if (to < 0 || s->cut[from][to] || sim_range(s, 1, 100) <= s->loss_pct) {
        sim_free_message(m);
        return;
    }
    if (sim_range(s, 1, 100) <= s->dup_pct) {
        delay = sim_range(s, s->latency_min, s->latency_max);
        sim_schedule(s, s->now + delay, SIM_DELIVER, to, copy_message(m));
    }
    delay = sim_range(s, s->latency_min, s->latency_max);
    sim_schedule(s, s->now + delay, SIM_DELIVER, to, m);
}

/* ---- The application: a hash chain over applied commands ---- */

static void encode_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t decode_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static uint64_t chain_at(struct sim *s, struct sim_node *n, raft_index index)
{
    struct sim_disk *d = &n->disk;

    if (index >= d->first && index <= sim_disk_last(d)) {
        return d->entries[index - d->first].chain;
    }
    if (index == d->snap.index) {
        return d->snap_chain;
    }
    sim_fail(s, "node %llu: no stored entry at index %llu to chain from",
             (unsigned long long)n->id, (unsigned long long)index);
    return 0;
}

/* Takes a snapshot of the application state at its applied index, stores it
 * and tells the core, as node/ will do. */
static void maybe_snapshot(struct sim *s, int i)
{
    struct sim_node *n = &s->nodes[i];
    struct sim_disk *d = &n->disk;
    struct raft_snapshot_meta meta;
    struct raft_event e = {.type = RAFT_EVENT_SNAPSHOT};
    size_t size, k;

    if (!n->alive || d->applied < d->snap.index + n->snapshot_every ||
        d->applied <= raft_snapshot_index(n->r)) {
        return; /* too early, or an installed snapshot is still being written */
    }
    if (raft_snapshot_meta_at(n->r, d->applied, &meta) != 0) {
        sim_fail(s, "node %llu: no snapshot metadata at applied index %llu",
                 (unsigned long long)n->id, (unsigned long long)d->applied);
        return;
    }
    size = SNAP_HEADER + (size_t)(d->applied % 5) * 400;
    free(d->snap_data);
    d->snap_data = xmalloc(size);
    encode_u64(d->snap_data, d->applied);
    encode_u64(d->snap_data + 8, d->app_hash);
    d->snap_chain = chain_at(s, n, d->applied);
    encode_u64(d->snap_data + 16, d->snap_chain);
    for (k = SNAP_HEADER; k < size; k++) {
        d->snap_data[k] = (uint8_t)(d->app_hash >> (k % 8));
    }
    raft_config_free(&d->snap.config);
    d->snap = meta;
    d->snap.size = size;
    sim_log(s, "n%llu snapshot at %llu", (unsigned long long)n->id,
            (unsigned long long)meta.index);
    e.snapshot.index = meta.index;
    e.snapshot.term = meta.term;
    if (sim_step(s, i, &e) != 0) {
        sim_fail(s, "node %llu: snapshot event rejected", (unsigned long long)n->id);
    }
}

/* ---- Carrying out an update ---- */

static void write_snapshot(struct sim *s, struct sim_node *n,
                           const struct raft_snapshot_write *w)
{
    struct sim_disk *d = &n->disk;
    size_t i;

    if (w->meta.size > d->stage_size) {
        d->stage = realloc(d->stage, w->meta.size);
        d->stage_size = w->meta.size;
    }
    if (w->len > 0) {
        memcpy(d->stage + w->offset, w->data, w->len);
    }
    if (!w->install) {
        return;
    }
    if (w->meta.size < SNAP_HEADER || decode_u64(d->stage) != w->meta.index) {
        sim_fail(s, "node %llu: installed snapshot data is corrupt",
                 (unsigned long long)n->id);
        return;
    }
    check_install(s, n, w->meta.index, decode_u64(d->stage + 8));
    raft_config_free(&d->snap.config);
    d->snap = w->meta;
    raft_config_copy(&d->snap.config, &w->meta.config);
    free(d->snap_data);
    d->snap_data = dup_bytes(d->stage, w->meta.size);
    d->snap_chain = decode_u64(d->stage + 16);
    d->applied = w->meta.index;
    d->app_hash = decode_u64(d->stage + 8);
    for (i = 0; i < d->n; i++) {
        free(d->entries[i].data);
    }
    d->n = 0;
    d->first = w->meta.index + 1;
    s->n_snapshots_installed++;
    sim_log(s, "n%llu installed snapshot %llu", (unsigned long long)n->id,
            (unsigned long long)w->meta.index);
}

static void write_entries(struct sim *s, struct sim_node *n, const struct raft_update *u)
{
    struct sim_disk *d = &n->disk;
    raft_index start = u->entries[0].index;
    uint64_t chain;
    size_t i;

    if (start < d->first || start > sim_disk_last(d) + 1) {
        sim_fail(s, "node %llu: entries at %llu do not attach to stored log [%llu, %llu]",
                 (unsigned long long)n->id, (unsigned long long)start,
                 (unsigned long long)d->first, (unsigned long long)sim_disk_last(d));
        return;
    }
    for (i = (size_t)(start - d->first); i < d->n; i++) {
        free(d->entries[i].data);
    }
    d->n = (size_t)(start - d->first);
    chain = chain_at(s, n, start - 1);
    if (d->n + u->n_entries > d->cap) {
        d->cap = (d->n + u->n_entries) * 2;
        d->entries = realloc(d->entries, d->cap * sizeof(*d->entries));
    }
    for (i = 0; i < u->n_entries; i++) {
        const struct raft_entry *e = &u->entries[i];
        struct sim_entry *se = &d->entries[d->n++];
        se->term = e->term;
        se->type = e->type;
        se->len = e->len;
        se->data = dup_bytes(e->data, e->len);
        chain = sim_hash(sim_hash(sim_hash(chain, e->term), e->type),
                         sim_hash_bytes(e->data, e->len));
        se->chain = chain;
        check_durable_append(s, n, e->index, se);
    }
}

static void compact(struct sim_node *n, raft_index upto)
{
    struct sim_disk *d = &n->disk;
    size_t k, i;

    if (upto < d->first) {
        return;
    }
    if (upto > sim_disk_last(d)) {
        upto = sim_disk_last(d);
    }
    k = (size_t)(upto - d->first + 1);
    for (i = 0; i < k; i++) {
        free(d->entries[i].data);
    }
    memmove(d->entries, d->entries + k, (d->n - k) * sizeof(*d->entries));
    d->n -= k;
    d->first = upto + 1;
}

static void apply(struct sim *s, struct sim_node *n, const struct raft_update *u)
{
    size_t i;

    for (i = 0; i < u->n_committed; i++) {
        const struct raft_entry *e = &u->committed[i];
        check_apply(s, n, e);
        n->disk.applied = e->index;
        n->disk.app_hash = sim_hash(sim_hash(n->disk.app_hash, e->term),
                                    sim_hash_bytes(e->data, e->len));
        if (e->type == RAFT_ENTRY_NORMAL && e->len >= 8 &&
            decode_u64(e->data) == s->marker && s->marker != 0) {
            s->marker_applied = true;
        }
    }
    for (i = 0; i < u->n_reads; i++) {
        check_read_result(s, n, &u->reads[i]);
    }
}

/* Completes one update: persist, send, apply, report persisted. */
static void complete(struct sim *s, int idx, struct raft_update *u)
{
    struct sim_node *n = &s->nodes[idx];
    size_t i;

    if (u->hard_state_changed) {
        n->disk.term = u->term;
        n->disk.vote = u->vote;
    }
    if (u->has_snapshot) {
        write_snapshot(s, n, &u->snapshot);
    }
    if (u->n_entries > 0) {
        write_entries(s, n, u);
    }
    if (u->compact_index > 0) {
        compact(n, u->compact_index);
    }
    for (i = 0; i < u->n_messages; i++) {
        net_send(s, idx, ((struct raft_message **)u->messages)[i]);
        ((struct raft_message **)u->messages)[i] = NULL;
    }
    apply(s, n, u);
    if (u->n_entries > 0) {
        struct raft_event e = {.type = RAFT_EVENT_PERSISTED};
        e.persisted.index = u->entries[u->n_entries - 1].index;
        e.persisted.term = u->entries[u->n_entries - 1].term;
        sim_step(s, idx, &e);
    }
    maybe_snapshot(s, idx);
    check_durable_commit(s);
}

/* Queues the update behind earlier ones; APPEND messages go out at once when
 * the hard state did not change, as raft.h allows. */
static void enqueue(struct sim *s, int idx, const struct raft_update *u)
{
    struct sim_node *n = &s->nodes[idx];
    struct sim_pending *p = xmalloc(sizeof(*p));
    bool writes = u->hard_state_changed || u->has_snapshot || u->n_entries > 0;
    struct raft_message **msgs;
    size_t i, k = 0;

    copy_update(&p->u, u);
    msgs = (struct raft_message **)p->u.messages;
    for (i = 0; i < p->u.n_messages; i++) {
        if (!u->hard_state_changed && msgs[i]->type == RAFT_MSG_APPEND) {
            net_send(s, idx, msgs[i]);
        } else {
            msgs[k++] = msgs[i];
        }
    }
    p->u.n_messages = k;
    p->next = NULL;

    if (!writes && n->head == NULL) {
        complete(s, idx, &p->u);
        free_update(&p->u);
        free(p);
        return;
    }
    if (n->disk_free_at < s->now) {
        n->disk_free_at = s->now;
    }
    if (writes) {
        n->disk_free_at += sim_range(s, s->disk_min, s->disk_max);
    }
    p->done_at = n->disk_free_at;
    if (n->tail != NULL) {
        n->tail->next = p;
    } else {
        n->head = p;
    }
    n->tail = p;
    sim_schedule(s, p->done_at, SIM_DISK, idx, NULL);
}

static void trace_cb(void *user, const struct raft_trace *t)
{
    struct sim *s = user;

    sim_log(s, "n%llu term=%llu index=%llu peer=%llu %s", (unsigned long long)t->node,
            (unsigned long long)t->term, (unsigned long long)t->index,
            (unsigned long long)t->peer, t->msg);
}

int sim_step(struct sim *s, int idx, struct raft_event *e)
{
    struct sim_node *n = &s->nodes[idx];
    struct raft_update u;
    int rv;

    if (!n->alive) {
        return RAFT_EINVAL;
    }
    e->now = s->now;
    rv = raft_step(n->r, e, &u);
    if (rv != 0 && (e->type == RAFT_EVENT_TICK || e->type == RAFT_EVENT_RECEIVE ||
                    e->type == RAFT_EVENT_PERSISTED)) {
        sim_fail(s, "node %llu: raft_step failed on event %d: %s",
                 (unsigned long long)n->id, e->type, raft_strerror(rv));
    }
    check_after_step(s, n, &u);
    /* A leader that crashes right after winning, having replicated an entry of
     * an earlier term but not yet its own no-op, is the schedule of the Raft
     * dissertation's figure on committing entries of earlier terms (chapter
     * 3), so it is made frequent on purpose. */
    if (u.state_changed && u.state == RAFT_LEADER && !s->healed &&
        sim_range(s, 1, 3) == 1) {
        sim_schedule(s,
                     s->now + sim_range(s, 1, 2 * (uint64_t)s->latency_max + s->disk_max),
                     SIM_CRASH, idx, NULL);
    }
    enqueue(s, idx, &u);
    return rv;
}

/* ---- Node lifecycle ---- */

void sim_restart(struct sim *s, int idx)
{
    struct sim_node *n = &s->nodes[idx];
    struct raft_options o = s->opt;
    struct raft_storage st;
    int rv;

    o.id = n->id;
    o.seed = s->seed ^ (n->incarnation << 32);
    o.applied = n->disk.applied;
    o.trace = trace_cb;
    o.trace_user = s;
    sim_storage_init(&st, n);
    rv = raft_init(&n->r, &o, &st);
    if (rv != 0) {
        sim_fail(s, "node %llu: restart failed: %s", (unsigned long long)n->id,
                 raft_strerror(rv));
        return;
    }
    n->alive = true;
    n->commit_seen = raft_commit_index(n->r);
    sim_log(s, "n%llu started", (unsigned long long)n->id);
    sim_schedule(s, s->now + sim_range(s, 1, s->opt.tick_ms), SIM_TICK, idx, NULL);
}

void sim_crash(struct sim *s, int idx)
{
    struct sim_node *n = &s->nodes[idx];
    struct sim_pending *p, *next;

    if (!n->alive) {
        return;
    }
    raft_close(n->r);
    n->r = NULL;
    n->alive = false;
    n->incarnation++;
    for (p = n->head; p != NULL; p = next) {
        next = p->next;
        free_update(&p->u);
        free(p);
    }
    n->head = n->tail = NULL;
    n->disk_free_at = 0;
    s->n_crashes++;
    sim_log(s, "n%llu crashed; unsynced writes lost", (unsigned long long)n->id);
}

/* Adds a node; a bootstrap node's disk contains the initial configuration of
 * all bootstrap nodes, a joining node starts empty. */
int sim_add_node(struct sim *s, bool bootstrap)
{
    int idx = s->n_nodes;
    struct sim_node *n;
    int i;

    if (idx >= SIM_MAX_NODES) {
        return -1;
    }
    n = &s->nodes[idx];
    memset(n, 0, sizeof(*n));
    n->id = ++s->next_id;
    n->disk.first = 1;
    n->snapshot_every = sim_range(s, 8, 60);
    s->n_nodes++;
    if (bootstrap) {
        for (i = 0; i < s->params.nodes; i++) {
            raft_config_add(&n->disk.snap.config, (raft_id)i + 1, RAFT_VOTER);
        }
    }
    sim_restart(s, idx);
    return idx;
}

int sim_leader(struct sim *s)
{
    int i, best = -1;

    for (i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->alive && raft_state_of(n->r) == RAFT_LEADER &&
            (best < 0 || raft_term_of(n->r) > raft_term_of(s->nodes[best].r))) {
            best = i;
        }
    }
    return best;
}

void sim_handle(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = ev->node >= 0 ? &s->nodes[ev->node] : NULL;
    struct raft_event e = {0};

    switch (ev->kind) {
    case SIM_DELIVER:
        if (n->alive) {
            e.type = RAFT_EVENT_RECEIVE;
            e.message = ev->msg;
            sim_step(s, ev->node, &e);
        }
        sim_free_message(ev->msg);
        break;
    case SIM_TICK:
        if (n->alive && ev->incarnation == n->incarnation) {
            e.type = RAFT_EVENT_TICK;
            sim_step(s, ev->node, &e);
            sim_schedule(s, s->now + s->opt.tick_ms, SIM_TICK, ev->node, NULL);
        }
        break;
    case SIM_DISK:
        if (n->alive && ev->incarnation == n->incarnation && n->head != NULL) {
            struct sim_pending *p = n->head;
            n->head = p->next;
            if (n->head == NULL) {
                n->tail = NULL;
            }
            complete(s, ev->node, &p->u);
            free_update(&p->u);
            free(p);
        }
        break;
    case SIM_CRASH:
        if (n->alive && ev->incarnation == n->incarnation && !s->healed) {
            sim_crash(s, ev->node);
            sim_schedule(s, s->now + sim_range(s, 20, 600), SIM_RESTART, ev->node, NULL);
        }
        break;
    case SIM_RESTART:
        if (!n->alive) {
            sim_restart(s, ev->node);
        }
        break;
    default:
        break;
    }
}

int sim_init(struct sim *s, uint64_t seed, const struct sim_params *p)
{
    int i;

    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng = seed * 0x2545f4914f6cdd1dULL + 1;
    s->params = *p;
    raft_options_default(&s->opt);
    s->opt.max_inflight = (uint32_t)sim_range(s, 1, 8);
    s->opt.max_append_bytes =
        (size_t)(sim_range(s, 0, 1) ? sim_range(s, 1, 100) : sim_range(s, 100, 4096));
    s->opt.snapshot_chunk_bytes = (size_t)sim_range(s, 100, 1500);
    s->opt.snapshot_trailing = sim_range(s, 0, 20);
    s->latency_min = (uint32_t)sim_range(s, 1, 10);
    s->latency_max = s->latency_min + (uint32_t)sim_range(s, 0, 60);
    s->disk_min = (uint32_t)sim_range(s, 1, 5);
    s->disk_max = s->disk_min + (uint32_t)sim_range(s, 0, 30);
    s->loss_pct = (uint32_t)sim_range(s, 0, 10);
    s->dup_pct = (uint32_t)sim_range(s, 0, 10);
    s->chaos_max_ms = (uint32_t)sim_range(s, 300, 1500);
    s->next_payload = 1;
    for (i = 0; i < p->nodes; i++) {
        sim_add_node(s, true);
    }
    return s->violated ? -1 : 0;
}

void sim_close(struct sim *s)
{
    struct sim_event ev;
    int i;
    size_t k;

    for (i = 0; i < s->n_nodes; i++) {
        struct sim_disk *d = &s->nodes[i].disk;
        sim_crash(s, i);
        for (k = 0; k < d->n; k++) {
            free(d->entries[k].data);
        }
        free(d->entries);
        free(d->snap_data);
        free(d->stage);
        raft_config_free(&d->snap.config);
    }
    while (sim_pop(s, &ev)) {
        sim_free_message(ev.msg);
    }
    free(s->heap);
    check_free(s);
}
