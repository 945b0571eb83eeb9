#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int st_hard_state(void *user, raft_term *term, raft_id *vote)
{
    struct mem_store *s = user;

    *term = s->term;
    *vote = s->vote;
    return 0;
}

static int st_snapshot_meta(void *user, struct raft_snapshot_meta *meta)
{
    struct mem_store *s = user;

    *meta = s->snap;
    return raft_config_copy(&meta->config, &s->snap.config);
}

static int st_snapshot_read(void *user, raft_index index, uint64_t offset, uint8_t *buf,
                            size_t len)
{
    struct mem_store *s = user;

    if (index != s->snap.index || offset + len > sizeof(s->snap_data)) {
        return RAFT_ENOTFOUND;
    }
    memcpy(buf, s->snap_data + offset, len);
    return 0;
}

static raft_index st_first(void *user)
{
    return ((struct mem_store *)user)->first;
}

static raft_index st_last(void *user)
{
    struct mem_store *s = user;

    return s->first + s->n - 1;
}

static int st_term(void *user, raft_index index, raft_term *term)
{
    struct mem_store *s = user;

    if (index < s->first || index >= s->first + s->n) {
        return RAFT_ENOTFOUND;
    }
    *term = s->log[index - s->first].term;
    return 0;
}

static int st_entries(void *user, raft_index lo, raft_index hi, size_t max_bytes,
                      struct raft_entry *out, size_t cap, size_t *n)
{
    struct mem_store *s = user;
    size_t k = 0;

    (void)max_bytes;
    if (lo < s->first || hi > s->first + s->n) {
        return RAFT_ENOTFOUND;
    }
    for (; lo + k < hi && k < cap; k++) {
        out[k] = s->log[lo + k - s->first];
        out[k].data = NULL;
        if (out[k].len > 0) {
            out[k].data = malloc(out[k].len);
            memcpy(out[k].data, s->log[lo + k - s->first].data, out[k].len);
        }
    }
    *n = k;
    return 0;
}

static void store_put(struct mem_store *s, const struct raft_entry *e)
{
    struct raft_entry *dst = &s->log[e->index - s->first];

    free(dst->data);
    *dst = *e;
    dst->data = NULL;
    if (e->len > 0) {
        dst->data = malloc(e->len);
        memcpy(dst->data, e->data, e->len);
    }
}

static void persist(struct node *n)
{
    struct mem_store *s = &n->st;
    const struct raft_update *u = &n->u;
    size_t i;

    if (u->hard_state_changed) {
        s->term = u->term;
        s->vote = u->vote;
    }
    if (u->has_snapshot && u->snapshot.install) {
        for (i = 0; i < s->n; i++) {
            free(s->log[i].data);
            s->log[i].data = NULL;
        }
        raft_config_free(&s->snap.config);
        s->snap = u->snapshot.meta;
        raft_config_copy(&s->snap.config, &u->snapshot.meta.config);
        s->first = u->snapshot.meta.index + 1;
        s->n = 0;
    }
    if (u->n_entries > 0) {
        raft_index start = u->entries[0].index;
        for (i = (size_t)(start - s->first); i < s->n; i++) {
            free(s->log[i].data);
            s->log[i].data = NULL;
        }
        s->n = (size_t)(start - s->first);
        for (i = 0; i < u->n_entries; i++) {
            store_put(s, &u->entries[i]);
            s->n++;
        }
    }
}

void node_setup(struct node *n, int voters, const raft_term *terms, size_t n_terms,
                raft_term term)
{
    size_t i;
    int v;

    memset(n, 0, sizeof(*n));
    n->st.first = 1;
    n->st.term = term;
    for (v = 1; v <= voters; v++) {
        raft_config_add(&n->st.snap.config, (raft_id)v, RAFT_VOTER);
    }
    for (i = 0; i < n_terms; i++) {
        n->st.log[i].index = i + 1;
        n->st.log[i].term = terms[i];
        n->st.log[i].type = RAFT_ENTRY_NORMAL;
    }
    n->st.n = n_terms;
}

void node_start(struct node *n, raft_id id, struct raft_options *opt)
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

    if (opt != NULL) {
        o = *opt;
    } else {
        raft_options_default(&o);
    }
    o.id = id;
    o.seed = 42;
    st.user = &n->st;
    if (raft_init(&n->r, &o, &st) != 0) {
        abort();
    }
}

void node_init(struct node *n, raft_id id, int voters, const raft_term *terms,
               size_t n_terms, raft_term term, struct raft_options *opt)
{
    node_setup(n, voters, terms, n_terms, term);
    node_start(n, id, opt);
}

void node_close(struct node *n)
{
    size_t i;

    raft_close(n->r);
    for (i = 0; i < n->st.n; i++) {
        free(n->st.log[i].data);
    }
    raft_config_free(&n->st.snap.config);
}

int node_step(struct node *n, struct raft_event *e)
{
    int rv;

    e->now = n->now;
    rv = raft_step(n->r, e, &n->u);
    persist(n);
    return rv;
}

int node_tick(struct node *n, uint64_t ms)
{
    struct raft_event e = {.type = RAFT_EVENT_TICK};

    n->now += ms;
    return node_step(n, &e);
}

int node_recv(struct node *n, const struct raft_message *m)
{
    struct raft_event e = {.type = RAFT_EVENT_RECEIVE, .message = m};

    return node_step(n, &e);
}

void node_persisted(struct node *n)
{
    struct raft_event e = {.type = RAFT_EVENT_PERSISTED};

    if (n->u.n_entries == 0) {
        return;
    }
    e.persisted.index = n->u.entries[n->u.n_entries - 1].index;
    e.persisted.term = n->u.entries[n->u.n_entries - 1].term;
    node_step(n, &e);
}

void node_elect(struct node *n, int votes)
{
    struct raft_message m = {.type = RAFT_MSG_VOTE_RESP, .to = 1};
    int v;

    node_tick(n, 3000); /* past the largest election timeout: pre-vote starts */
    m.vote_resp.granted = true;
    m.vote_resp.pre_vote = true;
    m.term = raft_term_of(n->r) + 1;
    for (v = 2; v <= votes && raft_state_of(n->r) == RAFT_PRE_CANDIDATE; v++) {
        m.from = (raft_id)v;
        node_recv(n, &m);
    }
    m.vote_resp.pre_vote = false;
    m.term = raft_term_of(n->r);
    for (v = 2; v <= votes && raft_state_of(n->r) == RAFT_CANDIDATE; v++) {
        m.from = (raft_id)v;
        node_recv(n, &m);
    }
}

const struct raft_message *find_msg(const struct node *n, uint8_t type, raft_id to, int i)
{
    size_t k;

    for (k = 0; k < n->u.n_messages; k++) {
        const struct raft_message *m = &n->u.messages[k];
        if (m->type == type && (to == 0 || m->to == to) && i-- == 0) {
            return m;
        }
    }
    return NULL;
}

int count_msgs(const struct node *n, uint8_t type, raft_id to)
{
    int c = 0;

    while (find_msg(n, type, to, c) != NULL) {
        c++;
    }
    return c;
}
