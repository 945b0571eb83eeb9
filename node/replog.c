/* The loop-thread half of the replicated log: steps the Raft core, copies
 * each update out of it, hands batches to replog_write on a worker thread,
 * and afterwards sends the held messages, completes proposals and reports
 * what became durable. */
#include "node/replog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "node/log.h"
#include "node/replog_internal.h"

/* A failed write (a full disk, say) is retried after this delay; nothing of
 * it was acted on, so retrying is safe. */
#define WRITE_RETRY_MS 1000

static void kick(replog *log);
static int handle_update(replog *log, struct raft_update *u);

void replog_options_default(replog_options *o)
{
    struct raft_options core;

    /* Timing and trailing entries follow the Raft core's defaults. */
    raft_options_default(&core);
    memset(o, 0, sizeof(*o));
    o->tick_ms = core.tick_ms;
    o->heartbeat_ticks = core.heartbeat_ticks;
    o->election_ticks_min = core.election_ticks_min;
    o->election_ticks_max = core.election_ticks_max;
    o->snapshot_every = 10000;
    o->snapshot_trailing = core.snapshot_trailing;
}

static void trace(void *user, const struct raft_trace *t)
{
    log_event(LOG_DEBUG, t->msg, "term=%llu index=%llu peer=%llx",
              (unsigned long long)t->term, (unsigned long long)t->index,
              (unsigned long long)t->peer);
}

/* Steps the core and takes its update; returns the step's error. */
static int step(replog *log, struct raft_event *e)
{
    struct raft_update u;
    int rv;

    e->now = uv_now(log->loop);
    rv = raft_step(log->raft, e, &u);
    if (handle_update(log, &u) != 0) {
        log_event(LOG_ERROR, "out of memory while handling a Raft update", NULL);
    }
    return rv;
}

/* ---- proposals ---- */

static void finish_proposal(proposal *p, int status, const char *errmsg, apply_result *result)
{
    apply_result empty = {0};

    p->cb(p->arg, status, errmsg, result ? result : &empty);
    free(p);
}

/* Fails every waiting proposal: after a leadership change they may or may
 * not commit, and their requests are safe to retry. */
static void fail_proposals(replog *log, const char *why)
{
    proposal *p = log->proposals;

    log->proposals = log->proposals_tail = NULL;
    while (p != NULL) {
        proposal *next = p->next;
        finish_proposal(p, STORE_EINVALID, why, NULL);
        p = next;
    }
}

static void resolve_proposals(replog *log, captured *c)
{
    for (size_t i = 0; i < c->n_committed; i++) {
        const store_entry *e = &c->committed[i];

        while (log->proposals != NULL && log->proposals->index <= e->index) {
            proposal *p = log->proposals;
            log->proposals = p->next;
            if (log->proposals == NULL) {
                log->proposals_tail = NULL;
            }
            if (p->index == e->index && p->term == e->term && c->applied[i]) {
                c->results[i].index = e->index;
                finish_proposal(p, 0, NULL, &c->results[i]);
            } else {
                finish_proposal(p, STORE_EINVALID,
                                "the entry was replaced after a leader change; retry", NULL);
            }
        }
    }
}

/* ---- capturing updates ---- */

static int copy_entries(const struct raft_entry *in, size_t n, store_entry **out)
{
    *out = calloc(n ? n : 1, sizeof(**out));
    if (*out == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        store_entry *e = &(*out)[i];
        e->index = in[i].index;
        e->term = in[i].term;
        e->type = in[i].type;
        e->len = in[i].len;
        e->data = malloc(in[i].len ? in[i].len : 1);
        if (e->data == NULL) {
            return -1;
        }
        if (in[i].len > 0) {
            memcpy(e->data, in[i].data, in[i].len);
        }
    }
    return 0;
}

static int encode_message(const struct raft_message *m, held_message *out)
{
    char errmsg[NET_ERRMSG_SIZE] = "";

    out->to = m->to;
    if (net_raft_encode(m, &out->data, &out->len, errmsg) != 0) {
        log_event(LOG_ERROR, "encoding a Raft message failed", "to=%llx error=%s",
                  (unsigned long long)m->to, log_quote(errmsg));
        return -1;
    }
    return 0;
}

static void send_now(replog *log, const struct raft_message *m)
{
    held_message h;

    if (encode_message(m, &h) == 0) {
        log->cb.send(log->cb.arg, h.to, h.data, h.len);
        free(h.data);
    }
}

static int capture_snapshot(captured *c, const struct raft_snapshot_write *s)
{
    c->has_snapshot = 1;
    c->install = s->install;
    c->snapshot_offset = s->offset;
    c->snapshot_len = s->len;
    c->snapshot_data = malloc(s->len ? s->len : 1);
    c->snapshot_meta.index = s->meta.index;
    c->snapshot_meta.term = s->meta.term;
    c->snapshot_meta.size = s->meta.size;
    if (c->snapshot_data == NULL) {
        return -1;
    }
    if (s->len > 0) {
        memcpy(c->snapshot_data, s->data, s->len);
    }
    return raft_config_encode(&s->meta.config, &c->snapshot_meta.config,
                              &c->snapshot_meta.config_len);
}

/* Copies what must wait for the disk; sends what need not. */
static int capture(replog *log, const struct raft_update *u, captured *c)
{
    c->hard_state_changed = u->hard_state_changed;
    c->term = u->term;
    c->vote = u->vote;
    c->compact_index = u->compact_index;
    if (u->has_snapshot && capture_snapshot(c, &u->snapshot) != 0) {
        return -1;
    }
    if (u->n_entries > 0 && copy_entries(u->entries, u->n_entries, &c->entries) != 0) {
        return -1;
    }
    c->n_entries = u->n_entries;
    if (u->n_committed > 0) {
        if (copy_entries(u->committed, u->n_committed, &c->committed) != 0) {
            return -1;
        }
        c->results = calloc(u->n_committed, sizeof(*c->results));
        c->applied = calloc(u->n_committed, sizeof(*c->applied));
        if (c->results == NULL || c->applied == NULL) {
            return -1;
        }
    }
    c->n_committed = u->n_committed;
    c->held = calloc(u->n_messages ? u->n_messages : 1, sizeof(*c->held));
    if (c->held == NULL) {
        return -1;
    }
    for (size_t i = 0; i < u->n_messages; i++) {
        const struct raft_message *m = &u->messages[i];
        if (!u->hard_state_changed && m->type == RAFT_MSG_APPEND) {
            send_now(log, m);
        } else if (encode_message(m, &c->held[c->n_held]) == 0) {
            c->n_held++;
        }
    }
    return 0;
}

static int needs_disk(const captured *c)
{
    return c->hard_state_changed || c->has_snapshot || c->n_entries > 0 ||
           c->compact_index > 0 || c->n_committed > 0;
}

static void note_state(replog *log, const struct raft_update *u)
{
    int was_leader = log->state == RAFT_LEADER;

    if (!u->state_changed && raft_term_of(log->raft) == log->term) {
        return;
    }
    log->state = raft_state_of(log->raft);
    log->leader = raft_leader_of(log->raft);
    log->term = raft_term_of(log->raft);
    if (was_leader && log->state != RAFT_LEADER) {
        fail_proposals(log, "this manager lost the leadership; retry");
    }
    if (log->cb.state != NULL) {
        log->cb.state(log->cb.arg, log->state, log->leader, log->term);
    }
}

static int handle_update(replog *log, struct raft_update *u)
{
    captured *c = calloc(1, sizeof(*c));
    int rv = 0;

    if (c == NULL || capture(log, u, c) != 0) {
        if (c != NULL) {
            captured_free(c);
        }
        c = NULL;
        rv = -1;
    }

    /* After the capture: the state callback may step the core again, which
     * invalidates u. */
    note_state(log, u);
    if (c == NULL) {
        return rv;
    }

    /* Nothing to write and nothing ahead of it: send at once. */
    if (!needs_disk(c) && log->queue_head == NULL && log->in_flight == NULL) {
        for (size_t i = 0; i < c->n_held; i++) {
            log->cb.send(log->cb.arg, c->held[i].to, c->held[i].data, c->held[i].len);
        }
        captured_free(c);
        return 0;
    }
    if (log->queue_tail != NULL) {
        log->queue_tail->next = c;
    } else {
        log->queue_head = c;
    }
    log->queue_tail = c;
    kick(log);
    return 0;
}

/* ---- batches ---- */

static void retry_write(uv_timer_t *timer);

static void finish_job_updates(replog *log, job *j)
{
    captured *c = j->first;

    while (c != NULL) {
        captured *next = c->next;
        struct raft_event e = {.type = RAFT_EVENT_PERSISTED};

        for (size_t i = 0; i < c->n_held; i++) {
            log->cb.send(log->cb.arg, c->held[i].to, c->held[i].data, c->held[i].len);
        }
        resolve_proposals(log, c);
        if (c->n_entries > 0) {
            e.persisted.index = c->entries[c->n_entries - 1].index;
            e.persisted.term = c->entries[c->n_entries - 1].term;
            step(log, &e);
        } else if (c->install) {
            e.persisted.index = c->snapshot_meta.index;
            e.persisted.term = c->snapshot_meta.term;
            step(log, &e);
        }
        captured_free(c);
        c = next;
    }
}

static void deliver_reload(replog *log, job *j)
{
    if (j->have_cluster && log->cb.cluster != NULL) {
        log->cb.cluster(log->cb.arg, &j->cluster);
    } else if (j->have_cluster) {
        store_cluster_free(&j->cluster);
    }
    if (j->have_managers && log->cb.managers != NULL) {
        log->cb.managers(log->cb.arg, j->managers, j->n_managers);
    } else {
        free(j->managers);
    }
}

/* Plans a snapshot at the applied index once enough entries piled up. */
static void plan_snapshot(replog *log, job *next)
{
    struct raft_snapshot_meta meta;

    if (log->applied < log->snapshot_index + log->opts.snapshot_every || log->snapshot_pending) {
        return;
    }
    if (raft_snapshot_meta_at(log->raft, log->applied, &meta) != 0) {
        return;
    }
    if (raft_config_encode(&meta.config, &next->snapshot_config,
                           &next->snapshot_config_len) == 0) {
        next->take_snapshot = 1;
        next->snapshot_index = meta.index;
        next->snapshot_term = meta.term;
        log->snapshot_pending = 1;
    }
    raft_config_free(&meta.config);
}

static void after_write(uv_work_t *req, int status)
{
    job *j = req->data;
    replog *log = j->log;
    int rv = status != 0 ? STORE_EIO : j->status;

    if (rv != 0) {
        /* Keep the batch: it is retried as it is, ahead of newer updates. */
        log_event(LOG_ERROR, "writing the Raft log failed; retrying", "error=%s",
                  log_quote(j->errmsg));
        free(j->snapshot_config);
        j->take_snapshot = 0;
        j->snapshot_config = NULL;
        log->snapshot_pending = 0;
        if (!log->closing) {
            uv_timer_start(&log->tick, retry_write, WRITE_RETRY_MS, 0);
            return;
        }
        j->applied = log->applied;
    }
    log->applied = j->applied;
    if (j->take_snapshot && rv == 0) {
        struct raft_event e = {.type = RAFT_EVENT_SNAPSHOT};
        e.snapshot.index = j->snapshot_index;
        e.snapshot.term = j->snapshot_term;
        log->snapshot_index = j->snapshot_index;
        log->snapshot_pending = 0;
        log_event(LOG_INFO, "snapshot taken", "index=%llu",
                  (unsigned long long)j->snapshot_index);
        step(log, &e);
    }
    deliver_reload(log, j);
    if (rv == 0) {
        finish_job_updates(log, j);
    }
    if (rv == 0 && j->applied > j->applied_before && log->cb.applied != NULL) {
        log->cb.applied(log->cb.arg, log->applied);
    }
    if (log->ready != NULL) {
        void (*ready)(void *, int, const char *) = log->ready;
        log->ready = NULL;
        ready(log->ready_arg, rv, rv ? j->errmsg : NULL);
    }
    free(j->snapshot_config);
    free(j);

    /* Only now may the next batch start, or a close requested by one of
     * the callbacks above free the log. */
    log->in_flight = NULL;
    kick(log);
}

static int submit(replog *log, job *j)
{
    j->log = log;
    j->req.data = j;
    j->applied_before = log->applied;
    if (uv_queue_work(log->loop, &j->req, replog_write, after_write) != 0) {
        return -1;
    }
    log->in_flight = j;
    return 0;
}

static void restart_tick(replog *log);

static void retry_write(uv_timer_t *timer)
{
    replog *log = timer->data;
    job *j = log->in_flight;

    restart_tick(log);
    if (j != NULL && submit(log, j) != 0) {
        uv_timer_start(&log->tick, retry_write, WRITE_RETRY_MS, 0);
    }
}

static void free_log(replog *log);

static void kick(replog *log)
{
    job *j;

    if (log->in_flight != NULL) {
        return;
    }
    if (log->closing) {
        free_log(log);
        return;
    }
    if (log->queue_head == NULL && !log->reload_pending &&
        log->applied < log->snapshot_index + log->opts.snapshot_every) {
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        log_event(LOG_ERROR, "out of memory while batching Raft updates", NULL);
        return;
    }
    j->first = log->queue_head;
    log->queue_head = log->queue_tail = NULL;
    j->reload = log->reload_pending;
    log->reload_pending = 0;
    plan_snapshot(log, j);
    if (j->first == NULL && !j->take_snapshot && !j->reload) {
        free(j);
        return;
    }
    if (submit(log, j) != 0) {
        log_event(LOG_ERROR, "could not queue a Raft log write", NULL);
        log->queue_head = j->first;
        for (log->queue_tail = j->first; log->queue_tail && log->queue_tail->next;
             log->queue_tail = log->queue_tail->next) {
        }
        free(j->snapshot_config);
        log->snapshot_pending = 0;
        free(j);
    }
}

/* ---- lifecycle ---- */

static void on_tick(uv_timer_t *timer)
{
    replog *log = timer->data;
    struct raft_event e = {.type = RAFT_EVENT_TICK};

    step(log, &e);
}

static void restart_tick(replog *log)
{
    uv_timer_start(&log->tick, on_tick, log->opts.tick_ms, log->opts.tick_ms);
}

int replog_open(uv_loop_t *loop, store *st, const replog_options *opts,
                const replog_callbacks *cb, replog **out, char *errmsg)
{
    replog *log = calloc(1, sizeof(*log));
    struct raft_options ro;
    store_snapshot_meta meta;
    store_txn *txn;
    int rv;

    if (log == NULL) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "open the replicated log: out of memory");
        return STORE_ENOMEM;
    }
    log->loop = loop;
    log->store = st;
    log->opts = *opts;
    log->cb = *cb;
    replog_storage_init(log);

    rv = store_txn_begin(st, 0, &txn, errmsg);
    if (rv == 0) {
        rv = store_applied_get(txn, &log->applied, errmsg);
        if (rv == 0 && store_snapshot_meta_get(txn, &meta, NULL) == 0) {
            log->snapshot_index = meta.index;
            store_snapshot_meta_free(&meta);
        }
        store_txn_abort(txn);
    }
    if (rv != 0) {
        free(log);
        return rv;
    }

    raft_options_default(&ro);
    ro.id = opts->raft_id;
    ro.seed = opts->raft_id ^ (uint64_t)uv_hrtime();
    ro.tick_ms = opts->tick_ms;
    ro.heartbeat_ticks = opts->heartbeat_ticks;
    ro.election_ticks_min = opts->election_ticks_min;
    ro.election_ticks_max = opts->election_ticks_max;
    ro.snapshot_trailing = opts->snapshot_trailing;
    ro.applied = log->applied;
    ro.trace = trace;
    rv = raft_init(&log->raft, &ro, &log->storage);
    if (rv != 0) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "start Raft from the store: %s", raft_strerror(rv));
        free(log);
        return STORE_ECORRUPT;
    }
    log->state = raft_state_of(log->raft);
    log->term = raft_term_of(log->raft);
    uv_timer_init(loop, &log->tick);
    log->tick.data = log;
    *out = log;
    return 0;
}

int replog_start(replog *log, void (*ready)(void *arg, int status, const char *errmsg),
                 void *arg)
{
    log->ready = ready;
    log->ready_arg = arg;
    log->reload_pending = 1;
    restart_tick(log);
    kick(log);
    return log->in_flight != NULL ? 0 : STORE_EIO;
}

int replog_propose(replog *log, const store_command *cmd, replog_done_cb cb, void *arg,
                   char *errmsg)
{
    struct raft_event e = {.type = RAFT_EVENT_PROPOSE};
    struct raft_entry entry = {.type = RAFT_ENTRY_NORMAL};
    proposal *p;
    int rv;

    if (log->closing) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "the node is shutting down");
        return STORE_EINVALID;
    }
    if (log->state != RAFT_LEADER) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "this manager is not the leader");
        return RAFT_ENOTLEADER;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "propose: out of memory");
        return STORE_ENOMEM;
    }
    rv = store_command_encode(cmd, &entry.data, &entry.len, errmsg);
    if (rv != 0) {
        free(p);
        return rv;
    }
    e.propose.entries = &entry;
    e.propose.n = 1;
    {
        struct raft_update u;
        e.now = uv_now(log->loop);
        rv = raft_step(log->raft, &e, &u);
        if (rv == 0) {
            p->index = u.proposed_index;
            p->term = raft_term_of(log->raft);
        }
        handle_update(log, &u);
    }
    free(entry.data);
    if (rv != 0) {
        snprintf(errmsg, STORE_ERRMSG_SIZE, "propose: %s", raft_strerror(rv));
        free(p);
        return rv == RAFT_ENOTLEADER ? RAFT_ENOTLEADER : STORE_EINVALID;
    }
    p->cb = cb;
    p->arg = arg;
    if (log->proposals_tail != NULL) {
        log->proposals_tail->next = p;
    } else {
        log->proposals = p;
    }
    log->proposals_tail = p;
    return 0;
}

void replog_receive(replog *log, const struct raft_message *m)
{
    struct raft_event e = {.type = RAFT_EVENT_RECEIVE, .message = m};

    if (!log->closing) {
        step(log, &e);
    }
}

int replog_change(replog *log, int type, uint64_t member_id)
{
    struct raft_event e = {.type = RAFT_EVENT_CHANGE};

    e.change.type = (uint8_t)type;
    e.change.id = member_id;
    return step(log, &e);
}

int replog_transfer(replog *log, uint64_t target)
{
    struct raft_event e = {.type = RAFT_EVENT_TRANSFER};

    e.transfer.target = target;
    return step(log, &e);
}

static void tick_closed(uv_handle_t *handle)
{
    replog *log = handle->data;
    void (*done)(void *) = log->close_done;
    void *arg = log->close_arg;

    raft_close(log->raft);
    free(log);
    done(arg);
}

static void free_log(replog *log)
{
    captured *c = log->queue_head;

    while (c != NULL) {
        captured *next = c->next;
        captured_free(c);
        c = next;
    }
    log->queue_head = log->queue_tail = NULL;
    if (!uv_is_closing((uv_handle_t *)&log->tick)) {
        uv_close((uv_handle_t *)&log->tick, tick_closed);
    }
}

void replog_close(replog *log, void (*done)(void *arg), void *arg)
{
    log->closing = 1;
    log->close_done = done;
    log->close_arg = arg;
    uv_timer_stop(&log->tick);
    fail_proposals(log, "the node is shutting down");
    kick(log);
}

int replog_state(const replog *log)
{
    return log->state;
}

uint64_t replog_leader(const replog *log)
{
    return log->leader;
}

uint64_t replog_term(const replog *log)
{
    return log->term;
}

uint64_t replog_commit(const replog *log)
{
    return raft_commit_index(log->raft);
}

uint64_t replog_applied(const replog *log)
{
    return log->applied;
}

const struct raft_config *replog_config(const replog *log)
{
    return raft_config_of(log->raft);
}

uint64_t replog_match(const replog *log, uint64_t member_id)
{
    return raft_match_of(log->raft, member_id);
}
