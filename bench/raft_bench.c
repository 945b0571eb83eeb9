/* Raft core benchmark: a 3-node cluster in memory (no disk, no sockets)
 * commits small proposals in batches. Prints entries committed per second
 * and CPU nanoseconds per committed entry for the whole process, that is all
 * three cores plus the in-memory storage and message copies.
 *
 * usage: raft-bench [ENTRIES [BATCH [BYTES]]]  (defaults 500000 64 64) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft/raft.h>

#define NODES 3

struct store {
    raft_term term;
    raft_id vote;
    struct raft_entry *log; /* log[i] has index i + 1 */
    size_t n, cap;
    struct raft_config config;
};

struct work {
    int node;
    struct raft_event ev;
    struct raft_message *msg;
};

static struct store stores[NODES];
static struct raft *rafts[NODES];
static struct work *queue;
static size_t q_head, q_len, q_cap;
static uint64_t committed_on_leader;

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "raft-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static int st_hard_state(void *user, raft_term *term, raft_id *vote)
{
    struct store *s = user;

    *term = s->term;
    *vote = s->vote;
    return 0;
}

static int st_snapshot_meta(void *user, struct raft_snapshot_meta *meta)
{
    struct store *s = user;

    memset(meta, 0, sizeof(*meta));
    return raft_config_copy(&meta->config, &s->config);
}

static int st_snapshot_read(void *user, raft_index index, uint64_t offset, uint8_t *buf,
                            size_t len)
{
    return RAFT_ENOTFOUND;
}

static raft_index st_first(void *user)
{
    return 1;
}

static raft_index st_last(void *user)
{
    return ((struct store *)user)->n;
}

static int st_term(void *user, raft_index index, raft_term *term)
{
    struct store *s = user;

    if (index < 1 || index > s->n) {
        return RAFT_ENOTFOUND;
    }
    *term = s->log[index - 1].term;
    return 0;
}

static int st_entries(void *user, raft_index lo, raft_index hi, size_t max_bytes,
                      struct raft_entry *out, size_t cap, size_t *n)
{
    struct store *s = user;
    size_t k = 0, bytes = 0;

    if (lo < 1 || hi > s->n + 1) {
        return RAFT_ENOTFOUND;
    }
    for (; lo + k < hi && k < cap; k++) {
        const struct raft_entry *e = &s->log[lo + k - 1];
        if (k > 0 && bytes + e->len > max_bytes) {
            break;
        }
        out[k] = *e;
        out[k].data = xmalloc(e->len);
        if (e->len > 0) {
            memcpy(out[k].data, e->data, e->len);
        }
        bytes += e->len;
    }
    *n = k;
    return 0;
}

static void push(int node, const struct raft_event *ev, struct raft_message *msg)
{
    if (q_len == q_cap) {
        size_t i, cap = q_cap == 0 ? 1024 : q_cap * 2;
        struct work *q = xmalloc(cap * sizeof(*q));
        for (i = 0; i < q_len; i++) {
            q[i] = queue[(q_head + i) % q_cap];
        }
        free(queue);
        queue = q;
        q_cap = cap;
        q_head = 0;
    }
    queue[(q_head + q_len) % q_cap] = (struct work){.node = node, .ev = *ev, .msg = msg};
    q_len++;
}

static struct raft_message *copy_message(const struct raft_message *m)
{
    struct raft_message *c = xmalloc(sizeof(*c));
    size_t i;

    *c = *m;
    if (m->type == RAFT_MSG_APPEND && m->append.n_entries > 0) {
        c->append.entries = xmalloc(m->append.n_entries * sizeof(*c->append.entries));
        for (i = 0; i < m->append.n_entries; i++) {
            c->append.entries[i] = m->append.entries[i];
            c->append.entries[i].data = xmalloc(m->append.entries[i].len);
            if (m->append.entries[i].len > 0) {
                memcpy(c->append.entries[i].data, m->append.entries[i].data,
                       m->append.entries[i].len);
            }
        }
    }
    return c;
}

static void free_message(struct raft_message *m)
{
    size_t i;

    if (m == NULL) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND) {
        for (i = 0; i < m->append.n_entries; i++) {
            free(m->append.entries[i].data);
        }
        free(m->append.entries);
    }
    free(m);
}

/* Persists, sends and applies one update, as node/ will, with a disk that
 * completes every write at once. */
static void handle(int i, const struct raft_update *u)
{
    struct store *s = &stores[i];
    struct raft_event done = {.type = RAFT_EVENT_PERSISTED};
    size_t k;

    if (u->hard_state_changed) {
        s->term = u->term;
        s->vote = u->vote;
    }
    if (u->n_entries > 0) {
        raft_index start = u->entries[0].index;
        for (k = start - 1; k < s->n; k++) {
            free(s->log[k].data);
        }
        s->n = start - 1;
        if (s->n + u->n_entries > s->cap) {
            s->cap = (s->n + u->n_entries) * 2;
            s->log = realloc(s->log, s->cap * sizeof(*s->log));
        }
        for (k = 0; k < u->n_entries; k++) {
            struct raft_entry *e = &s->log[s->n++];
            *e = u->entries[k];
            e->data = xmalloc(e->len);
            if (e->len > 0) {
                memcpy(e->data, u->entries[k].data, e->len);
            }
        }
        done.persisted.index = u->entries[u->n_entries - 1].index;
        done.persisted.term = u->entries[u->n_entries - 1].term;
    }
    for (k = 0; k < u->n_messages; k++) {
        struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
        push((int)(u->messages[k].to - 1), &ev, copy_message(&u->messages[k]));
    }
    if (u->state == RAFT_LEADER) {
        committed_on_leader += u->n_committed;
    }
    if (u->n_entries > 0) {
        push(i, &done, NULL);
    }
}

static int step(int i, struct raft_event *ev)
{
    struct raft_update u;
    int rv = raft_step(rafts[i], ev, &u);

    handle(i, &u);
    return rv;
}

static void drain(void)
{
    while (q_len > 0) {
        struct work w = queue[q_head];
        q_head = (q_head + 1) % q_cap;
        q_len--;
        if (w.msg != NULL) {
            w.ev.message = w.msg;
        }
        step(w.node, &w.ev);
        free_message(w.msg);
    }
}

static double now_s(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(void)
{
    struct raft_storage st = {
        .hard_state = st_hard_state,
        .snapshot_meta = st_snapshot_meta,
        .snapshot_read = st_snapshot_read,
        .first_index = st_first,
        .last_index = st_last,
        .term = st_term,
        .entries = st_entries,
    };
    struct raft_options o;
    struct raft_event tick = {.type = RAFT_EVENT_TICK, .now = 0};
    int i, j;

    raft_options_default(&o);
    for (i = 0; i < NODES; i++) {
        for (j = 0; j < NODES; j++) {
            raft_config_add(&stores[i].config, (raft_id)j + 1, RAFT_VOTER);
        }
        o.id = (raft_id)i + 1;
        o.seed = 7;
        st.user = &stores[i];
        if (raft_init(&rafts[i], &o, &st) != 0) {
            fprintf(stderr, "raft-bench: raft_init failed\n");
            exit(1);
        }
    }
    /* Node 1 times out first and wins; the others stay below their timeout. */
    tick.now = 2500;
    step(0, &tick);
    drain();
    if (raft_state_of(rafts[0]) != RAFT_LEADER) {
        fprintf(stderr, "raft-bench: no leader elected\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 500000;
    size_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 64;
    size_t bytes = argc > 3 ? strtoull(argv[3], NULL, 10) : 64;
    struct raft_entry *entries;
    uint8_t *payload;
    double wall, cpu;
    uint64_t proposed = 0, base;
    size_t k;
    int i;

    if (total == 0 || batch == 0 || bytes < 8) {
        fprintf(stderr, "usage: raft-bench [ENTRIES [BATCH [BYTES>=8]]]\n");
        return 2;
    }
    setup();
    base = committed_on_leader;
    payload = xmalloc(bytes);
    memset(payload, 0xab, bytes);
    entries = xmalloc(batch * sizeof(*entries));
    for (k = 0; k < batch; k++) {
        entries[k] =
            (struct raft_entry){.type = RAFT_ENTRY_NORMAL, .data = payload, .len = bytes};
    }

    wall = now_s(CLOCK_MONOTONIC);
    cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
    while (proposed < total) {
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE, .now = 2500};
        ev.propose.entries = entries;
        ev.propose.n = batch;
        if (step(0, &ev) != 0) {
            fprintf(stderr, "raft-bench: proposal rejected\n");
            return 1;
        }
        proposed += batch;
        drain();
    }
    wall = now_s(CLOCK_MONOTONIC) - wall;
    cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu;

    total = committed_on_leader - base;
    printf("nodes=%d batch=%zu entry_bytes=%zu committed=%llu wall_s=%.3f "
           "entries_per_s=%.0f cpu_ns_per_entry=%.0f\n",
           NODES, batch, bytes, (unsigned long long)total, wall, (double)total / wall,
           cpu * 1e9 / (double)total);
    for (i = 0; i < NODES; i++) {
        raft_close(rafts[i]);
        for (k = 0; k < stores[i].n; k++) {
            free(stores[i].log[k].data);
        }
        free(stores[i].log);
        raft_config_free(&stores[i].config);
    }
    free(queue);
    free(entries);
    free(payload);
    return 0;
}
