/* One seeded run: clients and faults for a number of events, then the faults
 * heal and a new proposal must commit within a bounded time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Virtual time the cluster gets after healing to elect a leader and commit a
 * proposal: 30 s is 15 to 30 election timeouts at the default options. */
#define LIVENESS_MS     30000
#define MARKER_RETRY_MS 1000

static int random_node(struct sim *s, bool alive)
{
    int tries, i;

    for (tries = 0; tries < 4 * s->n_nodes; tries++) {
        i = (int)sim_range(s, 0, (uint64_t)s->n_nodes - 1);
        if (!alive || s->nodes[i].alive) {
            return i;
        }
    }
    return -1;
}

static void propose(struct sim *s, int i, uint64_t payload, size_t pad)
{
    uint8_t buf[64] = {0};
    struct raft_entry entry = {.type = RAFT_ENTRY_NORMAL, .data = buf, .len = 8 + pad};
    struct raft_event e = {.type = RAFT_EVENT_PROPOSE};
    size_t k;

    memcpy(buf, &payload, 8);
    for (k = 8; k < entry.len; k++) {
        buf[k] = (uint8_t)sim_random(s);
    }
    e.propose.entries = &entry;
    e.propose.n = 1;
    sim_step(s, i, &e);
}

static void client(struct sim *s)
{
    int leader = sim_leader(s), i, n;

    if (sim_range(s, 1, 20) == 1) {
        leader = random_node(s, true); /* may be a follower: must be rejected cleanly */
    }
    if (leader < 0) {
        return;
    }
    n = (int)sim_range(s, 1, 4);
    for (i = 0; i < n; i++) {
        propose(s, leader, s->next_payload++, (size_t)sim_range(s, 0, 40));
    }
    if (sim_range(s, 1, 8) == 1) {
        struct raft_event e = {.type = RAFT_EVENT_READ};
        e.read.id = s->next_payload++;
        check_read_request(s, e.read.id);
        sim_step(s, leader, &e);
    }
}

static void change_membership(struct sim *s)
{
    int leader = sim_leader(s), i;
    const struct raft_config *c;
    struct raft_event e = {.type = RAFT_EVENT_CHANGE};
    size_t voters = 0, k;
    raft_id learner = 0, victim = 0;

    if (leader < 0) {
        return;
    }
    c = raft_config_of(s->nodes[leader].r);
    for (k = 0; k < c->n; k++) {
        if (c->servers[k].role == RAFT_VOTER) {
            voters++;
            if (c->servers[k].id != s->nodes[leader].id && sim_range(s, 0, c->n) == 0) {
                victim = c->servers[k].id;
            }
        } else {
            learner = c->servers[k].id;
        }
    }
    if (learner != 0) {
        e.change.type =
            sim_range(s, 1, 4) == 1 ? RAFT_CHANGE_REMOVE : RAFT_CHANGE_PROMOTE;
        e.change.id = learner;
    } else if (voters >= (size_t)s->params.nodes && victim != 0) {
        e.change.type = RAFT_CHANGE_REMOVE;
        e.change.id = victim;
    } else if (voters < (size_t)s->params.nodes && s->n_nodes < SIM_MAX_NODES) {
        i = sim_add_node(s, false);
        e.change.type = RAFT_CHANGE_ADD_LEARNER;
        e.change.id = s->nodes[i].id;
    } else {
        return;
    }
    sim_log(s, "client: membership change %d of n%llu", e.change.type,
            (unsigned long long)e.change.id);
    sim_step(s, leader, &e);
}

static void partition(struct sim *s)
{
    bool side[SIM_MAX_NODES];
    int a, b;

    for (a = 0; a < s->n_nodes; a++) {
        side[a] = sim_range(s, 0, 1) == 1;
    }
    for (a = 0; a < s->n_nodes; a++) {
        for (b = 0; b < s->n_nodes; b++) {
            s->cut[a][b] = side[a] != side[b];
        }
    }
    sim_log(s, "chaos: partition");
}

static void chaos(struct sim *s)
{
    struct raft_event e = {.type = RAFT_EVENT_TRANSFER};
    int a, b, leader;

    switch (sim_range(s, 0, 13)) {
    case 0:
        partition(s);
        break;
    case 1:
        a = random_node(s, false);
        b = random_node(s, false);
        s->cut[a][b] = a != b;
        sim_log(s, "chaos: one-way cut n%d -> n%d", a + 1, b + 1);
        break;
    case 2:
    case 3:
        memset(s->cut, 0, sizeof(s->cut));
        sim_log(s, "chaos: network healed");
        break;
    case 4:
    case 5:
        a = random_node(s, true);
        if (a >= 0) {
            sim_crash(s, a);
            sim_schedule(s, s->now + sim_range(s, 50, 3000), SIM_RESTART, a, NULL);
        }
        break;
    case 6:
        s->loss_pct = (uint32_t)sim_range(s, 0, 20);
        s->dup_pct = (uint32_t)sim_range(s, 0, 10);
        s->latency_max = s->latency_min + (uint32_t)sim_range(s, 0, 120);
        sim_log(s, "chaos: loss %u%% dup %u%%", s->loss_pct, s->dup_pct);
        break;
    case 7:
    case 8:
        change_membership(s);
        break;
    case 9:
        leader = sim_leader(s);
        if (leader >= 0) {
            e.transfer.target =
                sim_range(s, 0, 1) ? 0 : sim_range(s, 1, (uint64_t)s->n_nodes);
            sim_log(s, "client: transfer leadership to n%llu",
                    (unsigned long long)e.transfer.target);
            sim_step(s, leader, &e);
        }
        break;
    case 11:
    case 12:
        /* Crashing leaders shortly after they replicated to a minority
         * exposes commitment bugs, as in the Raft dissertation's figure on
         * committing entries from earlier terms (chapter 3). */
        leader = sim_leader(s);
        if (leader >= 0) {
            sim_crash(s, leader);
            sim_schedule(s, s->now + sim_range(s, 20, 600), SIM_RESTART, leader, NULL);
        }
        break;
    case 10:
        leader = sim_leader(s);
        for (a = 0; leader >= 0 && a < s->n_nodes; a++) {
            s->cut[leader][a] = s->cut[a][leader] = a != leader;
        }
        sim_log(s, "chaos: leader isolated");
        break;
    default:
        break;
    }
}

static void heal(struct sim *s)
{
    int i;

    memset(s->cut, 0, sizeof(s->cut));
    s->loss_pct = 0;
    s->dup_pct = 0;
    for (i = 0; i < s->n_nodes; i++) {
        if (!s->nodes[i].alive) {
            sim_restart(s, i);
        }
    }
    sim_log(s, "all faults healed");
}

/* Returns the virtual time a healed cluster may need to catch every member up:
 * the entries some member lacks, each costing at worst one round trip per
 * pipeline slot (a tiny byte limit allows one entry per message). */
static uint64_t catch_up_ms(struct sim *s)
{
    raft_index top = 0, bottom = UINT64_MAX;
    uint64_t rtt = 2 * (uint64_t)s->latency_max + s->disk_max + s->opt.tick_ms;
    int i;

    for (i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].alive) {
            raft_index last = raft_last_index(s->nodes[i].r);
            raft_index commit = raft_commit_index(s->nodes[i].r);
            top = last > top ? last : top;
            bottom = commit < bottom ? commit : bottom;
        }
    }
    return top > bottom ? (top - bottom) * rtt / s->opt.max_inflight : 0;
}

/* After healing, some leader must commit a new proposal in bounded time. */
static void check_liveness(struct sim *s)
{
    uint64_t budget, deadline, next_try = s->now;
    struct sim_event ev;

    heal(s);
    s->healed = true;
    budget = LIVENESS_MS + catch_up_ms(s);
    deadline = s->now + budget;
    s->marker = s->next_payload++;
    while (!s->violated && !s->marker_applied && s->now <= deadline && sim_pop(s, &ev)) {
        /* Clients stop too, so a backlog cannot hide a stuck cluster. */
        if (ev.kind != SIM_CHAOS && ev.kind != SIM_CLIENT) {
            sim_handle(s, &ev);
        }
        if (s->now >= next_try && sim_leader(s) >= 0) {
            propose(s, sim_leader(s), s->marker, 0);
            next_try = s->now + MARKER_RETRY_MS;
        }
    }
    if (!s->violated && !s->marker_applied) {
        sim_fail(s, "liveness: no proposal committed within %llu ms after faults healed",
                 (unsigned long long)budget);
    }
}

int sim_run_seed(uint64_t seed, const struct sim_params *p, struct sim *s)
{
    struct sim_event ev;

    sim_init(s, seed, p);
    sim_schedule(s, sim_range(s, 200, 1000), SIM_CHAOS, -1, NULL);
    sim_schedule(s, sim_range(s, 10, 100), SIM_CLIENT, -1, NULL);
    while (!s->violated && s->steps < p->steps && sim_pop(s, &ev)) {
        s->steps++;
        if (ev.kind == SIM_CHAOS) {
            chaos(s);
            sim_schedule(s, s->now + sim_range(s, 50, s->chaos_max_ms), SIM_CHAOS, -1,
                         NULL);
        } else if (ev.kind == SIM_CLIENT) {
            client(s);
            sim_schedule(s, s->now + sim_range(s, 20, 200), SIM_CLIENT, -1, NULL);
        } else {
            sim_handle(s, &ev);
        }
    }
    if (!s->violated && p->liveness) {
        check_liveness(s);
    }
    return s->violated ? 1 : 0;
}
