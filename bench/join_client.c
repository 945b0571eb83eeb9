/* join-bench: the joiners. Each thread runs one libuv loop that drives its
 * share of the concurrent joins.
 *
 * A join does what `swarmpki join` does before it writes anything. It
 * generates a key and CSR, connects without trusting the manager, fetches
 * the trust bundle and pins it by the token's digest, and verifies the
 * manager's chain from that handshake against it. Then it sends the join
 * request on the same connection and checks the certificate that comes
 * back. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "bench/join_bench.h"
#include "ca/ca.h"
#include "net/net.h"

volatile int bench_interrupted;

enum step { STEP_IDLE, STEP_BUNDLE, STEP_JOIN };

/* State every thread of one run shares. */
typedef struct shared {
    const bench_run_opts *opts;
    atomic_uint_fast64_t claimed; /* joins started so far */
    uint64_t deadline_ns;         /* 0 when the run is bounded by a count */
    char digest[CA_DIGEST_LEN + 1];
} shared;

typedef struct worker worker;

typedef struct joiner {
    worker *w;
    uv_timer_t timer; /* the deadline of a step, or the start of the next join */
    net_conn *conn;
    enum step step;
    const char *addr;
    uint64_t started_ns;
    ca_buf key;
    ca_buf csr;
    unsigned char key_hash[32];
    char *bundle;      /* the pinned trust bundle */
    ca_bundle *roots;  /* the same, parsed */
    net_msg resp;
    int have_resp;
    char error[BENCH_ERROR_SIZE];
    char hostname[64];
} joiner;

struct worker {
    shared *sh;
    int index;
    uv_loop_t loop;
    pthread_t thread;
    net_tls *tls_unverified; /* for fetching the bundle */
    net_tls *tls_pinned;     /* verifies the manager against pinned_bundle */
    char *pinned_bundle;
    joiner *joiners;
    int count;
    int loop_ready;
    int ran; /* the thread ran the loop, so every handle is closed */
    uint64_t last_done_ns;
    bench_run_result result;
    size_t latency_cap;
    char setup_error[BENCH_ERROR_SIZE];
};

static void begin_join(joiner *j);

static void on_next_join(uv_timer_t *timer)
{
    begin_join(timer->data);
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static void set_error(joiner *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first error of a join, because later ones follow from it. */
static void set_error(joiner *j, const char *fmt, ...)
{
    va_list ap;

    if (j->error[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof(j->error), fmt, ap);
    va_end(ap);
}

/* ---- results ---- */

/* Adds count failures with this text to its kind. A new text gets a kind
 * while fewer than BENCH_MAX_ERRORS exist, else it counts as other_errors. */
static void add_error(bench_run_result *r, const char *text, uint64_t count)
{
    for (int i = 0; i < r->error_kinds; i++) {
        if (strcmp(r->errors[i], text) == 0) {
            r->error_counts[i] += count;
            return;
        }
    }
    if (r->error_kinds < BENCH_MAX_ERRORS) {
        snprintf(r->errors[r->error_kinds], BENCH_ERROR_SIZE, "%s", text);
        r->error_counts[r->error_kinds++] = count;
        return;
    }
    r->other_errors += count;
}

static void record_error(bench_run_result *r, const char *text)
{
    r->failed++;
    add_error(r, text, 1);
}

static void record_success(worker *w, uint64_t latency_ns)
{
    bench_run_result *r = &w->result;

    if (r->succeeded == w->latency_cap) {
        size_t cap = w->latency_cap ? w->latency_cap * 2 : 4096;
        uint64_t *grown = realloc(r->latency_us, cap * sizeof(*grown));
        if (grown == NULL) {
            record_error(r, "out of memory while recording latencies");
            return;
        }
        r->latency_us = grown;
        w->latency_cap = cap;
    }
    r->latency_us[r->succeeded++] = latency_ns / 1000;
}

/* Ends the current join, records it, and schedules the next one from a
 * timer so that a run of immediate failures cannot recurse. */
static void finish_join(joiner *j, int ok)
{
    worker *w = j->w;
    uint64_t now = now_ns();

    if (ok) {
        record_success(w, now - j->started_ns);
    } else {
        record_error(&w->result, j->error[0] ? j->error : "failed without a reason");
    }
    if (now > w->last_done_ns) {
        w->last_done_ns = now;
    }

    ca_buf_free(&j->key);
    ca_buf_free(&j->csr);
    net_msg_clear(&j->resp);
    j->have_resp = 0;
    if (w->sh->opts->bundle_per_join) {
        free(j->bundle);
        j->bundle = NULL;
        ca_bundle_close(j->roots);
        j->roots = NULL;
    }
    j->step = STEP_IDLE;
    uv_timer_start(&j->timer, on_next_join, 0, 0);
}

/* ---- checks ---- */

/* Pins the bundle the manager sent. Its digest must be the token's, and
 * the chain the manager presented must verify against it. */
static int check_bundle(joiner *j, net_conn *c)
{
    const void *leaf;
    const void *chain;
    shared *sh = j->w->sh;
    net_msg *r = &j->resp;
    char actual[CA_DIGEST_LEN + 1];
    char detail[CA_ERRMSG_SIZE] = "";

    if (r->type != NET_MSG_BUNDLE_RESP) {
        set_error(j, "the manager at %s did not send the trust bundle: code %d: %s",
                  j->addr, r->code, r->text ? r->text : "unexpected message type");
        return -1;
    }
    ca_digest_base36(r->bundle_pem, strlen(r->bundle_pem), actual);
    if (strcmp(actual, sh->digest) != 0) {
        set_error(j, "the trust bundle of %s has digest %s, but the token expects %s",
                  j->addr, actual, sh->digest);
        return -1;
    }
    ca_bundle_close(j->roots);
    j->roots = NULL;
    net_conn_peer_x509(c, &leaf, &chain);
    if (leaf == NULL ||
        ca_bundle_open(r->bundle_pem, strlen(r->bundle_pem), &j->roots, detail) != 0 ||
        ca_verify_x509(j->roots, leaf, chain, time(NULL), CA_ROLE_MANAGER_OU, detail) != 0) {
        set_error(j, "the certificate of %s does not verify against its trust bundle: %s",
                  j->addr, leaf != NULL ? detail : "it sent none");
        return -1;
    }
    free(j->bundle);
    j->bundle = r->bundle_pem;
    r->bundle_pem = NULL;
    return 0;
}

/* Checks the issued certificate as a joining node would before using it. */
static int check_issued(joiner *j)
{
    net_msg *r = &j->resp;
    ca_cert_info info;
    char detail[CA_ERRMSG_SIZE] = "";

    if (r->type != NET_MSG_JOIN_RESP) {
        set_error(j, "the manager at %s rejected the join: code %d: %s", j->addr, r->code,
                  r->text ? r->text : "unexpected message type");
        return -1;
    }
    if (strcmp(r->bundle_pem, j->bundle) != 0) {
        set_error(j, "the manager at %s returned another trust bundle than it sent",
                  j->addr);
        return -1;
    }
    if (ca_verify_issued(j->roots, r->cert_pem, strlen(r->cert_pem), j->key_hash,
                         time(NULL), CA_ROLE_WORKER_OU, &info, detail) != 0) {
        set_error(j, "the certificate from %s is not valid for this join: %s", j->addr,
                  detail);
        return -1;
    }
    if (strcmp(info.common_name, r->node_id) != 0 ||
        strcmp(info.org, r->cluster_id) != 0 ||
        strcmp(info.org_unit, CA_ROLE_WORKER_OU) != 0 || strcmp(r->role, "worker") != 0 ||
        strlen(info.common_name) != CA_ID_LEN) {
        set_error(
            j,
            "the certificate from %s names CN %s OU %s O %s, but the response announced "
            "%s %s of cluster %s",
            j->addr, info.common_name, info.org_unit, info.org, r->role, r->node_id,
            r->cluster_id);
        return -1;
    }
    return 0;
}

/* ---- connections ---- */

static void on_deadline(uv_timer_t *timer)
{
    joiner *j = timer->data;

    set_error(j, "no response from %s within %u ms", j->addr, j->w->sh->opts->timeout_ms);
    if (j->conn != NULL) {
        net_conn_close(j->conn);
    }
}

/* Sends the request of the current step and restarts its deadline. */
static void send_step(joiner *j, net_conn *c)
{
    net_msg req = {.id = j->step == STEP_BUNDLE ? 1 : 2};
    char detail[NET_ERRMSG_SIZE] = "";

    if (j->step == STEP_BUNDLE) {
        req.type = NET_MSG_BUNDLE_REQ;
    } else {
        req.type = NET_MSG_JOIN_REQ;
        req.token = (char *)j->w->sh->opts->cluster->worker_token;
        req.csr_pem = j->csr.data;
        req.hostname = j->hostname;
    }
    if (net_conn_send(c, &req, detail) != 0) {
        set_error(j, "cannot send to %s: %s", j->addr, detail);
        net_conn_close(c);
        return;
    }
    uv_timer_start(&j->timer, on_deadline, j->w->sh->opts->timeout_ms, 0);
}

static void on_connect(net_conn *c, int status, const char *errmsg, void *data)
{
    joiner *j = data;

    if (status != 0) {
        set_error(j, "%s", errmsg);
        return;
    }
    send_step(j, c);
}

static void on_msg(net_conn *c, net_msg *m, void *data)
{
    joiner *j = data;

    if (j->have_resp) {
        net_msg_clear(m);
        return;
    }
    j->resp = *m;
    memset(m, 0, sizeof(*m));
    if (j->step == STEP_BUNDLE) {
        /* With the bundle pinned, the join request follows on this connection. */
        int rv = check_bundle(j, c);
        net_msg_clear(&j->resp);
        if (rv != 0) {
            net_conn_close(c);
            return;
        }
        j->step = STEP_JOIN;
        send_step(j, c);
        return;
    }
    j->have_resp = 1;
    net_conn_close(c);
}

static void on_close(net_conn *c, int status, const char *reason, void *data)
{
    joiner *j = data;

    j->conn = NULL;
    uv_timer_stop(&j->timer);
    if (!j->have_resp) {
        set_error(j, "%s",
                  reason != NULL && reason[0] ? reason
                                              : "the manager closed the "
                                                "connection");
        finish_join(j, 0);
        return;
    }
    finish_join(j, check_issued(j) == 0);
}

/* Returns the TLS settings that verify a manager against j's bundle,
 * building them again only when the bundle differs from the last one. */
static net_tls *pinned_tls(joiner *j)
{
    worker *w = j->w;
    char detail[NET_ERRMSG_SIZE] = "";
    net_tls *tls = NULL;
    char *copy;

    if (w->pinned_bundle != NULL && strcmp(w->pinned_bundle, j->bundle) == 0) {
        return w->tls_pinned;
    }
    copy = strdup(j->bundle);
    if (copy == NULL || net_tls_new(0, NULL, NULL, j->bundle, &tls, detail) != 0) {
        set_error(j, "cannot build TLS settings for the trust bundle: %s",
                  copy ? detail : "out of memory");
        free(copy);
        return NULL;
    }
    /* Connections hold their own reference to the old settings. */
    net_tls_free(w->tls_pinned);
    free(w->pinned_bundle);
    w->tls_pinned = tls;
    w->pinned_bundle = copy;
    return tls;
}

static int open_step(joiner *j, enum step step)
{
    static const net_conn_cb callbacks = {on_connect, on_msg, on_close};
    worker *w = j->w;
    uint32_t timeout_ms = w->sh->opts->timeout_ms;
    char detail[NET_ERRMSG_SIZE] = "";
    net_tls *tls = step == STEP_BUNDLE ? w->tls_unverified : pinned_tls(j);

    if (tls == NULL) {
        return -1;
    }
    j->step = step;
    if (net_connect(&w->loop, j->addr, tls, timeout_ms, &callbacks, j, &j->conn,
                    detail) != 0) {
        set_error(j, "%s", detail);
        return -1;
    }
    uv_timer_start(&j->timer, on_deadline, timeout_ms, 0);
    return 0;
}

/* ---- the join loop ---- */

/* Claims the next join of the run and returns its number, or -1 when the
 * run is over. */
static int64_t claim_join(shared *sh)
{
    uint64_t n;

    if (bench_interrupted) {
        return -1;
    }
    if (sh->deadline_ns != 0) {
        if (now_ns() >= sh->deadline_ns) {
            return -1;
        }
        return (int64_t)atomic_fetch_add(&sh->claimed, 1);
    }
    n = atomic_fetch_add(&sh->claimed, 1);
    return n < sh->opts->joins ? (int64_t)n : -1;
}

static void begin_join(joiner *j)
{
    shared *sh = j->w->sh;
    const bench_cluster *c = sh->opts->cluster;
    char detail[CA_ERRMSG_SIZE] = "";
    int64_t n = claim_join(sh);

    if (n < 0) {
        uv_close((uv_handle_t *)&j->timer, NULL);
        return;
    }
    /* Consecutive joins go to consecutive managers. */
    j->addr = c->managers[n % c->count].addr;
    j->error[0] = '\0';
    j->started_ns = now_ns();
    if (ca_key_and_csr_generate(&j->key, &j->csr, j->key_hash, detail) != 0) {
        set_error(j, "cannot create a key and CSR: %s", detail);
        finish_join(j, 0);
        return;
    }
    if (open_step(j, j->bundle == NULL ? STEP_BUNDLE : STEP_JOIN) != 0) {
        finish_join(j, 0);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    for (int i = 0; i < w->count; i++) {
        begin_join(&w->joiners[i]);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->ran = 1;
    return NULL;
}

static int worker_init(worker *w, shared *sh, int index, int count)
{
    char detail[NET_ERRMSG_SIZE] = "";
    int rv;

    w->sh = sh;
    w->index = index;
    w->count = count;
    rv = uv_loop_init(&w->loop);
    if (rv != 0) {
        snprintf(w->setup_error, sizeof(w->setup_error),
                 "cannot create an event loop: %s", uv_strerror(rv));
        return -1;
    }
    w->loop_ready = 1;
    if (net_tls_new(0, NULL, NULL, NULL, &w->tls_unverified, detail) != 0) {
        snprintf(w->setup_error, sizeof(w->setup_error), "cannot build TLS settings: %s",
                 detail);
        return -1;
    }
    w->joiners = calloc((size_t)count, sizeof(*w->joiners));
    if (w->joiners == NULL) {
        snprintf(w->setup_error, sizeof(w->setup_error), "out of memory");
        return -1;
    }
    for (int i = 0; i < count; i++) {
        joiner *j = &w->joiners[i];
        j->w = w;
        uv_timer_init(&w->loop, &j->timer);
        j->timer.data = j;
        snprintf(j->hostname, sizeof(j->hostname), "join-bench-%d-%d", index, i);
    }
    return 0;
}

static void worker_free(worker *w)
{
    if (w->loop_ready) {
        /* A worker whose thread never started still has its timers open. */
        if (!w->ran) {
            for (int i = 0; w->joiners != NULL && i < w->count; i++) {
                uv_close((uv_handle_t *)&w->joiners[i].timer, NULL);
            }
            uv_run(&w->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&w->loop);
    }
    for (int i = 0; w->joiners != NULL && i < w->count; i++) {
        free(w->joiners[i].bundle);
        ca_bundle_close(w->joiners[i].roots);
    }
    free(w->joiners);
    net_tls_free(w->tls_unverified);
    net_tls_free(w->tls_pinned);
    free(w->pinned_bundle);
}

/* Adds a thread's counts and texts to the total. */
static void merge_result(bench_run_result *total, const bench_run_result *part)
{
    if (part->succeeded > 0) {
        memcpy(total->latency_us + total->succeeded, part->latency_us,
               part->succeeded * sizeof(uint64_t));
        total->succeeded += part->succeeded;
    }
    total->failed += part->failed;
    total->other_errors += part->other_errors;
    for (int i = 0; i < part->error_kinds; i++) {
        add_error(total, part->errors[i], part->error_counts[i]);
    }
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int collect(worker *workers, int threads, uint64_t start_ns, bench_run_result *out)
{
    uint64_t total = 0;
    uint64_t last = start_ns;

    for (int t = 0; t < threads; t++) {
        total += workers[t].result.succeeded;
        if (workers[t].last_done_ns > last) {
            last = workers[t].last_done_ns;
        }
    }
    out->latency_us = malloc((total ? total : 1) * sizeof(uint64_t));
    if (out->latency_us == NULL) {
        return -1;
    }
    for (int t = 0; t < threads; t++) {
        merge_result(out, &workers[t].result);
    }
    qsort(out->latency_us, out->succeeded, sizeof(uint64_t), compare_u64);
    out->wall_s = (double)(last - start_ns) / 1e9;
    return 0;
}

int bench_run(const bench_run_opts *opts, bench_run_result *out, char *errmsg)
{
    char secret[CA_SECRET_LEN + 1];
    char detail[CA_ERRMSG_SIZE] = "";
    shared sh = {.opts = opts};
    worker *workers;
    uint64_t start_ns;
    int started = 0;
    int rv = 0;

    memset(out, 0, sizeof(*out));
    if (ca_token_parse(opts->cluster->worker_token, sh.digest, secret, detail) != 0) {
        snprintf(errmsg, BENCH_ERROR_SIZE, "invalid worker token: %s", detail);
        return -1;
    }
    memset(secret, 0, sizeof(secret));
    workers = calloc((size_t)opts->threads, sizeof(*workers));
    if (workers == NULL) {
        snprintf(errmsg, BENCH_ERROR_SIZE, "out of memory");
        return -1;
    }

    for (int t = 0; t < opts->threads && rv == 0; t++) {
        int count =
            opts->concurrency / opts->threads + (t < opts->concurrency % opts->threads);
        rv = worker_init(&workers[t], &sh, t, count);
        if (rv != 0) {
            snprintf(errmsg, BENCH_ERROR_SIZE, "%s", workers[t].setup_error);
        }
    }

    start_ns = now_ns();
    if (opts->seconds > 0) {
        sh.deadline_ns = start_ns + (uint64_t)(opts->seconds * 1e9);
    }
    for (int t = 0; t < opts->threads && rv == 0; t++) {
        if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0) {
            snprintf(errmsg, BENCH_ERROR_SIZE, "cannot start joiner thread %d", t);
            /* The threads already running end their joins as usual. */
            bench_interrupted = 1;
            rv = -1;
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++) {
        pthread_join(workers[t].thread, NULL);
    }

    if (rv == 0 && collect(workers, opts->threads, start_ns, out) != 0) {
        snprintf(errmsg, BENCH_ERROR_SIZE, "out of memory while collecting latencies");
        rv = -1;
    }
    for (int t = 0; t < opts->threads; t++) {
        free(workers[t].result.latency_us);
        worker_free(&workers[t]);
    }
    free(workers);
    return rv;
}

void bench_run_result_free(bench_run_result *r)
{
    free(r->latency_us);
    memset(r, 0, sizeof(*r));
}
