/* Scenario tests of the Raft core: each drives one server by hand through a
 * known hard case and checks the exact outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct raft_message vote_msg(raft_id from, raft_term term, raft_index last_index,
                                    raft_term last_term, bool pre_vote)
{
    struct raft_message m = {.type = RAFT_MSG_VOTE, .from = from, .to = 1, .term = term};

    m.vote.last_index = last_index;
    m.vote.last_term = last_term;
    m.vote.pre_vote = pre_vote;
    return m;
}

static struct raft_message ack(raft_id from, raft_term term, raft_index index,
                               uint64_t seq)
{
    struct raft_message m = {
        .type = RAFT_MSG_APPEND_RESP, .from = from, .to = 1, .term = term};

    m.append_resp.index = index;
    m.append_resp.seq = seq;
    return m;
}

static void vote_rejects_shorter_log(void **state)
{
    const raft_term terms[] = {1, 1, 2};
    struct node n;
    struct raft_message m;
    const struct raft_message *resp;

    (void)state;
    node_init(&n, 1, 3, terms, 3, 2, NULL);

    m = vote_msg(2, 3, 2, 2, false); /* same last term, shorter */
    node_recv(&n, &m);
    resp = find_msg(&n, RAFT_MSG_VOTE_RESP, 2, 0);
    assert_non_null(resp);
    assert_false(resp->vote_resp.granted);

    m = vote_msg(3, 3, 9, 1, false); /* longer but older last term */
    node_recv(&n, &m);
    resp = find_msg(&n, RAFT_MSG_VOTE_RESP, 3, 0);
    assert_non_null(resp);
    assert_false(resp->vote_resp.granted);
    assert_int_equal(n.st.vote, 0);
    node_close(&n);
}

static void vote_granted_once_per_term(void **state)
{
    const raft_term terms[] = {1, 1, 2};
    struct node n;
    struct raft_message m;

    (void)state;
    node_init(&n, 1, 3, terms, 3, 2, NULL);
    m = vote_msg(2, 3, 3, 2, false);
    node_recv(&n, &m);
    assert_true(find_msg(&n, RAFT_MSG_VOTE_RESP, 2, 0)->vote_resp.granted);
    assert_true(n.u.hard_state_changed);
    assert_int_equal(n.st.vote, 2);
    assert_int_equal(n.st.term, 3);

    m = vote_msg(3, 3, 3, 2, false);
    node_recv(&n, &m);
    assert_false(find_msg(&n, RAFT_MSG_VOTE_RESP, 3, 0)->vote_resp.granted);
    node_close(&n);
}

static void prevote_keeps_term(void **state)
{
    struct node n;
    struct raft_message m = vote_msg(2, 5, 0, 0, true);

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 4, NULL);
    node_recv(&n, &m);
    assert_true(find_msg(&n, RAFT_MSG_VOTE_RESP, 2, 0)->vote_resp.granted);
    assert_int_equal(raft_term_of(n.r), 4);
    assert_false(n.u.hard_state_changed);
    node_close(&n);
}

/* The Raft dissertation's figure on earlier-term commitment (chapter 3): an
 * entry of term 2 stored on a majority is not committed by a term-4 leader
 * until an entry of term 4 is too. */
static void earlier_term_not_committed_by_count(void **state)
{
    const raft_term terms[] = {1, 2};
    struct node n;
    struct raft_message m;

    (void)state;
    node_init(&n, 1, 5, terms, 2, 3, NULL);
    node_elect(&n, 3);
    assert_int_equal(raft_state_of(n.r), RAFT_LEADER);
    assert_int_equal(raft_term_of(n.r), 4);
    assert_int_equal(raft_last_index(n.r), 3); /* the no-op of term 4 */

    m = ack(2, 4, 2, 0);
    node_recv(&n, &m);
    m = ack(3, 4, 2, 0);
    node_recv(&n, &m);
    assert_int_equal(raft_commit_index(n.r), 0);

    node_persisted(&n); /* not the no-op's update, so nothing changes */
    {
        struct raft_event e = {.type = RAFT_EVENT_PERSISTED};
        e.persisted.index = 3;
        e.persisted.term = 4;
        node_step(&n, &e);
    }
    m = ack(2, 4, 3, 0);
    node_recv(&n, &m);
    assert_int_equal(raft_commit_index(n.r), 0);
    m = ack(3, 4, 3, 0);
    node_recv(&n, &m);
    assert_int_equal(raft_commit_index(n.r), 3);
    assert_int_equal(n.u.n_committed, 3);
    node_close(&n);
}

/* An idle leader sends each follower the new commit index as soon as that
 * follower has the entry, instead of at the next heartbeat. */
static void commit_reaches_idle_followers(void **state)
{
    const struct raft_message *sent;
    struct raft_message m;
    struct node n;
    raft_term term;

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    node_persisted(&n); /* the leader's own no-op at index 1 */
    term = raft_term_of(n.r);

    /* Node 2's ack commits the no-op at index 1: node 2 hears of it at once. */
    m = ack(2, term, 1, 0);
    node_recv(&n, &m);
    assert_int_equal(raft_commit_index(n.r), 1);
    sent = find_msg(&n, RAFT_MSG_APPEND, 2, 0);
    assert_non_null(sent);
    assert_int_equal(sent->append.commit, 1);
    assert_int_equal(sent->append.n_entries, 0);
    assert_int_equal(sent->append.prev_index, 1);
    assert_null(find_msg(&n, RAFT_MSG_APPEND, 3, 0));

    /* Node 3 acks after the commit and receives the commit index too. */
    m = ack(3, term, 1, 0);
    node_recv(&n, &m);
    sent = find_msg(&n, RAFT_MSG_APPEND, 3, 0);
    assert_non_null(sent);
    assert_int_equal(sent->append.commit, 1);
    assert_int_equal(sent->append.n_entries, 0);

    /* A repeated ack brings no second notice. */
    m = ack(2, term, 1, 0);
    node_recv(&n, &m);
    assert_int_equal(count_msgs(&n, RAFT_MSG_APPEND, 2), 0);
    node_close(&n);
}

static void partitioned_leader_steps_down(void **state)
{
    struct node n;
    int i;

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    assert_int_equal(raft_state_of(n.r), RAFT_LEADER);
    for (i = 0; i < 25 && raft_state_of(n.r) == RAFT_LEADER; i++) {
        node_tick(&n, 100);
    }
    assert_int_equal(raft_state_of(n.r), RAFT_FOLLOWER);
    assert_true(i <= 21); /* within one election timeout of 10 ticks, twice over */
    node_close(&n);
}

static void leader_with_quorum_stays(void **state)
{
    struct node n;
    struct raft_message m;
    int i;

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    for (i = 0; i < 40; i++) {
        node_tick(&n, 100);
        m = ack(2, raft_term_of(n.r), 0, 0);
        node_recv(&n, &m);
    }
    assert_int_equal(raft_state_of(n.r), RAFT_LEADER);
    node_close(&n);
}

static void removed_member_is_ignored(void **state)
{
    struct node n;
    struct raft_message m = vote_msg(4, 9, 100, 9, false);
    struct raft_message app = {.type = RAFT_MSG_APPEND, .from = 4, .to = 1, .term = 9};

    (void)state;
    node_setup(&n, 3, NULL, 0, 2);
    n.st.snap.config.removed = malloc(sizeof(raft_id));
    n.st.snap.config.removed[0] = 4;
    n.st.snap.config.n_removed = 1;
    node_start(&n, 1, NULL);

    node_recv(&n, &m);
    assert_int_equal(n.u.n_messages, 0);
    assert_int_equal(raft_term_of(n.r), 2);
    node_recv(&n, &app);
    assert_int_equal(n.u.n_messages, 0);
    assert_int_equal(raft_leader_of(n.r), 0);
    node_close(&n);
}

static struct raft_message append_msg(raft_index prev, raft_term prev_term,
                                      raft_term term, struct raft_entry *entries,
                                      size_t n, raft_index commit)
{
    struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = term};

    m.append.prev_index = prev;
    m.append.prev_term = prev_term;
    m.append.entries = entries;
    m.append.n_entries = n;
    m.append.commit = commit;
    return m;
}

static struct raft_message chunk_msg(uint64_t offset, size_t len,
                                     const struct raft_config *c, uint8_t *data)
{
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2};

    m.snapshot.index = 10;
    m.snapshot.term = 2;
    m.snapshot.config = *c;
    m.snapshot.size = 8;
    m.snapshot.offset = offset;
    m.snapshot.len = len;
    m.snapshot.data = data + offset;
    return m;
}

/* A snapshot installed while an earlier append is still being written: the
 * late persisted report must not resurrect the replaced entries. */
static void snapshot_during_append(void **state)
{
    struct raft_entry e[3] = {{.term = 2, .index = 1, .type = RAFT_ENTRY_NORMAL},
                              {.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL},
                              {.term = 2, .index = 3, .type = RAFT_ENTRY_NORMAL}};
    uint8_t data[8] = "snapshot";
    struct node n;
    struct raft_message m;
    struct raft_event done = {.type = RAFT_EVENT_PERSISTED};
    const struct raft_message *resp;

    (void)state;
    node_init(&n, 2, 3, NULL, 0, 2, NULL);
    m = append_msg(0, 0, 2, e, 3, 0);
    node_recv(&n, &m);
    assert_int_equal(n.u.n_entries, 3);

    m = chunk_msg(0, 4, &n.st.snap.config, data);
    node_recv(&n, &m);
    assert_true(n.u.has_snapshot);
    assert_false(n.u.snapshot.install);
    assert_int_equal(find_msg(&n, RAFT_MSG_SNAPSHOT_RESP, 1, 0)->snapshot_resp.offset, 4);

    m = chunk_msg(6, 2, &n.st.snap.config, data); /* out of order */
    node_recv(&n, &m);
    assert_false(n.u.has_snapshot);
    assert_int_equal(find_msg(&n, RAFT_MSG_SNAPSHOT_RESP, 1, 0)->snapshot_resp.offset, 4);

    m = chunk_msg(4, 4, &n.st.snap.config, data);
    node_recv(&n, &m);
    assert_true(n.u.snapshot.install);
    resp = find_msg(&n, RAFT_MSG_SNAPSHOT_RESP, 1, 0);
    assert_true(resp->snapshot_resp.done);
    assert_int_equal(resp->snapshot_resp.match, 10);
    assert_int_equal(raft_last_index(n.r), 10);
    assert_int_equal(raft_commit_index(n.r), 10);

    done.persisted.index = 3;
    done.persisted.term = 2;
    node_step(&n, &done);
    assert_int_equal(raft_last_index(n.r), 10);
    assert_int_equal(n.u.n_committed, 0);

    e[0].index = 11;
    m = append_msg(10, 2, 2, e, 1, 11);
    node_recv(&n, &m);
    resp = find_msg(&n, RAFT_MSG_APPEND_RESP, 1, 0);
    assert_false(resp->append_resp.reject);
    assert_int_equal(resp->append_resp.index, 11);
    node_close(&n);
}

/* The follower's hint skips the whole conflicting term 3. */
static void reject_hint_skips_term(void **state)
{
    const raft_term terms[] = {1, 1, 1, 1, 1, 3, 3, 3, 3, 3};
    struct node n;
    struct raft_message m = append_msg(10, 2, 4, NULL, 0, 0);
    const struct raft_message *resp;

    (void)state;
    node_init(&n, 2, 3, terms, 10, 3, NULL);
    node_recv(&n, &m);
    resp = find_msg(&n, RAFT_MSG_APPEND_RESP, 1, 0);
    assert_true(resp->append_resp.reject);
    assert_int_equal(resp->append_resp.hint_index, 5);
    assert_int_equal(resp->append_resp.hint_term, 1);
    node_close(&n);
}

/* A heartbeat proves the log only up to prev_index, so the follower must not
 * commit the stale entries after it even if the leader's commit is higher. */
static void follower_commit_bounded(void **state)
{
    const raft_term terms[] = {1, 1, 1, 1, 1};
    struct node n;
    struct raft_message m = append_msg(2, 1, 2, NULL, 0, 5);

    (void)state;
    node_init(&n, 2, 3, terms, 5, 1, NULL);
    node_recv(&n, &m);
    assert_false(find_msg(&n, RAFT_MSG_APPEND_RESP, 1, 0)->append_resp.reject);
    assert_int_equal(raft_commit_index(n.r), 2);
    node_close(&n);
}

static void malformed_append_dropped(void **state)
{
    struct raft_entry e[2] = {{.term = 2, .index = 1, .type = RAFT_ENTRY_NORMAL},
                              {.term = 2, .index = 3, .type = RAFT_ENTRY_NORMAL}};
    struct node n;
    struct raft_message m = append_msg(0, 0, 2, e, 2, 0);

    (void)state;
    node_init(&n, 2, 3, NULL, 0, 1, NULL);
    node_recv(&n, &m);
    assert_int_equal(n.u.n_messages, 0);
    assert_int_equal(raft_last_index(n.r), 0);

    e[1].index = 2;
    e[1].term = 5; /* above the message's term */
    node_recv(&n, &m);
    assert_int_equal(n.u.n_messages, 0);
    node_close(&n);
}

static void propose_one(struct node *n, size_t len, int expect)
{
    uint8_t buf[256] = {0};
    struct raft_entry e = {.type = RAFT_ENTRY_NORMAL, .data = buf, .len = len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};

    ev.propose.entries = &e;
    ev.propose.n = 1;
    assert_int_equal(node_step(n, &ev), expect);
}

/* Replicate mode keeps at most max_inflight appends outstanding. */
static void pipeline_is_bounded(void **state)
{
    struct raft_options o;
    struct node n;
    struct raft_message m;
    int i, sent = 0;

    (void)state;
    raft_options_default(&o);
    o.max_inflight = 3;
    node_init(&n, 1, 3, NULL, 0, 1, &o);
    node_elect(&n, 2);
    m = ack(2, raft_term_of(n.r), 1, 0); /* node 2 has the no-op: replicate mode */
    node_recv(&n, &m);
    for (i = 0; i < 10; i++) {
        propose_one(&n, 10, 0);
        sent += count_msgs(&n, RAFT_MSG_APPEND, 2);
    }
    assert_int_equal(sent, 3);
    node_close(&n);
}

static void append_respects_byte_limit(void **state)
{
    struct raft_options o;
    struct node n;
    struct raft_message m;
    uint8_t buf[100] = {0};
    struct raft_entry e[5];
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    const struct raft_message *a;
    int i;

    (void)state;
    raft_options_default(&o);
    o.max_append_bytes = 200;
    node_init(&n, 1, 3, NULL, 0, 1, &o);
    node_elect(&n, 2);
    m = ack(2, raft_term_of(n.r), 1, 0);
    node_recv(&n, &m);
    for (i = 0; i < 5; i++) {
        e[i].type = RAFT_ENTRY_NORMAL;
        e[i].data = buf;
        e[i].len = sizeof(buf);
    }
    ev.propose.entries = e;
    ev.propose.n = 5;
    assert_int_equal(node_step(&n, &ev), 0);
    a = find_msg(&n, RAFT_MSG_APPEND, 2, 0);
    assert_non_null(a);
    assert_true(a->append.n_entries >= 1);
    assert_true(a->append.n_entries <= 2);
    node_close(&n);
}

static void transfer_sends_timeout_now(void **state)
{
    struct node n;
    struct raft_message m;
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    m = ack(2, raft_term_of(n.r), 1, 0);
    node_recv(&n, &m);
    ev.transfer.target = 2;
    assert_int_equal(node_step(&n, &ev), 0);
    assert_non_null(find_msg(&n, RAFT_MSG_TIMEOUT_NOW, 2, 0));
    propose_one(&n, 4, RAFT_EBUSY);
    node_close(&n);
}

static void timeout_now_starts_election(void **state)
{
    struct node n;
    struct raft_message hb = append_msg(0, 0, 3, NULL, 0, 0);
    struct raft_message tn = {
        .type = RAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 3};
    const struct raft_message *v;

    (void)state;
    node_init(&n, 2, 3, NULL, 0, 3, NULL);
    node_recv(&n, &hb);
    node_recv(&n, &tn);
    assert_int_equal(raft_state_of(n.r), RAFT_CANDIDATE);
    assert_int_equal(raft_term_of(n.r), 4);
    v = find_msg(&n, RAFT_MSG_VOTE, 3, 0);
    assert_non_null(v);
    assert_true(v->vote.transfer);
    assert_false(v->vote.pre_vote);
    node_close(&n);
}

static void read_barrier_needs_quorum(void **state)
{
    struct node n;
    struct raft_message m;
    struct raft_event ev = {.type = RAFT_EVENT_READ};
    const struct raft_message *hb;

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    node_persisted(&n);
    m = ack(2, raft_term_of(n.r), 1, 0);
    node_recv(&n, &m);
    assert_int_equal(raft_commit_index(n.r), 1);

    ev.read.id = 77;
    assert_int_equal(node_step(&n, &ev), 0);
    assert_int_equal(n.u.n_reads, 0);
    hb = find_msg(&n, RAFT_MSG_APPEND, 3, 0);
    assert_non_null(hb);

    m = ack(3, raft_term_of(n.r), 1, hb->append.seq);
    node_recv(&n, &m);
    assert_int_equal(n.u.n_reads, 1);
    assert_int_equal(n.u.reads[0].id, 77);
    assert_true(n.u.reads[0].ok);
    assert_int_equal(n.u.reads[0].index, 1);
    node_close(&n);
}

static void change(struct node *n, uint8_t type, raft_id id, int expect)
{
    struct raft_event ev = {.type = RAFT_EVENT_CHANGE};

    ev.change.type = type;
    ev.change.id = id;
    assert_int_equal(node_step(n, &ev), expect);
}

static void commit_last(struct node *n)
{
    struct raft_message m = ack(2, raft_term_of(n->r), raft_last_index(n->r), 0);
    struct raft_event e = {.type = RAFT_EVENT_PERSISTED};

    e.persisted.index = raft_last_index(n->r);
    raft_term_at(n->r, e.persisted.index, &e.persisted.term);
    node_step(n, &e);
    node_recv(n, &m);
}

static void membership_one_at_a_time(void **state)
{
    struct node n;
    struct raft_message m;
    const struct raft_server *s;

    (void)state;
    node_init(&n, 1, 3, NULL, 0, 1, NULL);
    node_elect(&n, 2);
    change(&n, RAFT_CHANGE_ADD_LEARNER, 4, RAFT_EBUSY); /* no-op not committed yet */
    commit_last(&n);

    change(&n, RAFT_CHANGE_ADD_LEARNER, 4, 0);
    s = raft_config_get(raft_config_of(n.r), 4);
    assert_non_null(s);
    assert_int_equal(s->role, RAFT_LEARNER);
    change(&n, RAFT_CHANGE_REMOVE, 3, RAFT_EBUSY);
    commit_last(&n);

    change(&n, RAFT_CHANGE_PROMOTE, 4, 0);
    assert_int_equal(raft_config_get(raft_config_of(n.r), 4)->role, RAFT_LEARNER);
    m = ack(4, raft_term_of(n.r), raft_last_index(n.r), 0);
    m.from = 4;
    node_recv(&n, &m);
    assert_int_equal(raft_config_get(raft_config_of(n.r), 4)->role, RAFT_VOTER);
    commit_last(&n);
    m = ack(4, raft_term_of(n.r), raft_last_index(n.r), 0);
    node_recv(&n, &m);

    change(&n, RAFT_CHANGE_REMOVE, 1, RAFT_EINVAL); /* the leader itself */
    change(&n, RAFT_CHANGE_REMOVE, 4, 0);
    assert_null(raft_config_get(raft_config_of(n.r), 4));
    commit_last(&n);
    change(&n, RAFT_CHANGE_ADD_LEARNER, 4, RAFT_EREMOVED);
    node_close(&n);
}

static void config_decode_rejects_malformed(void **state)
{
    struct raft_config c = {0}, d;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(raft_config_add(&c, 1, RAFT_VOTER), 0);
    assert_int_equal(raft_config_add(&c, 2, RAFT_LEARNER), 0);
    assert_int_equal(raft_config_add(&c, 2, RAFT_VOTER), RAFT_EINVAL);
    assert_int_equal(raft_config_encode(&c, &buf, &len), 0);

    assert_int_equal(raft_config_decode(buf, len, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.servers[1].role, RAFT_LEARNER);
    raft_config_free(&d);

    assert_int_equal(raft_config_decode(buf, len - 1, &d), RAFT_ECORRUPT);
    assert_int_equal(raft_config_decode(buf, len + 0, &d), 0);
    raft_config_free(&d);
    buf[1 + 4 + 9] = 1; /* second id becomes 1: a duplicate */
    buf[1 + 4 + 9 + 1] = 0;
    assert_int_equal(raft_config_decode(buf, len, &d), RAFT_ECORRUPT);
    buf[0] = 9;
    assert_int_equal(raft_config_decode(buf, len, &d), RAFT_ECORRUPT);
    free(buf);
    raft_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vote_rejects_shorter_log),
        cmocka_unit_test(vote_granted_once_per_term),
        cmocka_unit_test(prevote_keeps_term),
        cmocka_unit_test(earlier_term_not_committed_by_count),
        cmocka_unit_test(commit_reaches_idle_followers),
        cmocka_unit_test(partitioned_leader_steps_down),
        cmocka_unit_test(leader_with_quorum_stays),
        cmocka_unit_test(removed_member_is_ignored),
        cmocka_unit_test(snapshot_during_append),
        cmocka_unit_test(reject_hint_skips_term),
        cmocka_unit_test(follower_commit_bounded),
        cmocka_unit_test(malformed_append_dropped),
        cmocka_unit_test(pipeline_is_bounded),
        cmocka_unit_test(append_respects_byte_limit),
        cmocka_unit_test(transfer_sends_timeout_now),
        cmocka_unit_test(timeout_now_starts_election),
        cmocka_unit_test(read_barrier_needs_quorum),
        cmocka_unit_test(membership_one_at_a_time),
        cmocka_unit_test(config_decode_rejects_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
