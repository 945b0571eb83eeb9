/* The cluster, nodes, certs, certs_by_key and removed tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

struct table_fixture {
    struct fixture *f;
    store_txn *txn;
    char errmsg[STORE_ERRMSG_SIZE];
};

static int table_setup(void **state)
{
    struct table_fixture *tf = calloc(1, sizeof(*tf));
    void *inner;

    if (tf == NULL || fixture_setup(&inner) != 0) {
        free(tf);
        return -1;
    }
    tf->f = inner;
    if (store_txn_begin(tf->f->s, 1, &tf->txn, tf->errmsg) != 0) {
        fixture_teardown(&inner);
        free(tf);
        return -1;
    }
    *state = tf;
    return 0;
}

static int table_teardown(void **state)
{
    struct table_fixture *tf = *state;
    void *inner = tf->f;

    store_txn_abort(tf->txn);
    fixture_teardown(&inner);
    free(tf);
    return 0;
}

/* Commits, reopens the store and begins a new write transaction. */
static void commit_reopen(struct table_fixture *tf)
{
    assert_int_equal(store_txn_commit(tf->txn, tf->errmsg), 0);
    tf->txn = NULL;
    reopen(tf->f);
    assert_int_equal(store_txn_begin(tf->f->s, 1, &tf->txn, tf->errmsg), 0);
}

/* Closes the store, plants key -> value in table, reopens. */
static void plant(struct table_fixture *tf, const char *table, const void *key,
                  size_t klen, const void *value, size_t vlen)
{
    store_txn_abort(tf->txn);
    tf->txn = NULL;
    store_close(tf->f->s);
    tf->f->s = NULL;
    raw_put(tf->f->dir, table, key, klen, value, vlen);
    reopen(tf->f);
    assert_int_equal(store_txn_begin(tf->f->s, 0, &tf->txn, tf->errmsg), 0);
}

/* Plants a node record built from fields under key id. */
static void plant_node(struct table_fixture *tf, const char *id,
                       const struct craft *fields, size_t n)
{
    msgpack_sbuffer sbuf;

    msgpack_sbuffer_init(&sbuf);
    craft_pack(&sbuf, fields, n);
    plant(tf, "nodes", id, strlen(id), sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
}

/* ---- cluster ---- */

static void cluster_round_trip(void **state)
{
    struct table_fixture *tf = *state;
    store_cluster in, out;

    assert_int_equal(store_cluster_get(tf->txn, &out, tf->errmsg), STORE_ENOTFOUND);
    fill_cluster(&in);
    assert_int_equal(store_cluster_put(tf->txn, &in, tf->errmsg), 0);
    commit_reopen(tf);

    assert_int_equal(store_cluster_get(tf->txn, &out, tf->errmsg), 0);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.bundle_pem, in.bundle_pem);
    assert_string_equal(out.signer_cert_pem, in.signer_cert_pem);
    assert_string_equal(out.signer_key_pem, in.signer_key_pem);
    assert_string_equal(out.worker_token, in.worker_token);
    assert_string_equal(out.manager_token, in.manager_token);
    assert_int_equal(out.cert_expiry, in.cert_expiry);
    assert_int_equal(out.created, in.created);
    store_cluster_free(&out);
    store_cluster_free(&in);
}

static void cluster_null_pems(void **state)
{
    struct table_fixture *tf = *state;
    store_cluster in, out;

    fill_cluster(&in);
    free(in.signer_key_pem);
    in.signer_key_pem = NULL;
    assert_int_equal(store_cluster_put(tf->txn, &in, tf->errmsg), 0);
    assert_int_equal(store_cluster_get(tf->txn, &out, tf->errmsg), 0);
    assert_null(out.signer_key_pem);
    assert_non_null(out.bundle_pem);
    store_cluster_free(&out);
    store_cluster_free(&in);
}

static void cluster_free_zeroes(void **state)
{
    store_cluster c;
    (void)state;

    fill_cluster(&c);
    store_cluster_free(&c);
    assert_null(c.signer_key_pem);
    assert_null(c.bundle_pem);
    assert_int_equal(c.worker_token[0], 0);
    assert_int_equal(c.manager_token[84], 0);
    store_cluster_free(&c); /* a second free is harmless */
}

static void cluster_pem_too_long(void **state)
{
    struct table_fixture *tf = *state;
    store_cluster c;

    fill_cluster(&c);
    free(c.bundle_pem);
    c.bundle_pem = malloc(64 * 1024 + 2);
    assert_non_null(c.bundle_pem);
    memset(c.bundle_pem, 'A', 64 * 1024 + 1);
    c.bundle_pem[64 * 1024 + 1] = '\0';
    assert_int_equal(store_cluster_put(tf->txn, &c, tf->errmsg), STORE_EINVALID);
    assert_non_null(strstr(tf->errmsg, "\"bundle\""));
    store_cluster_free(&c);
}

/* ---- nodes ---- */

static void node_put_get_delete(void **state)
{
    struct table_fixture *tf = *state;
    store_node in, out;

    fill_node(&in, "abcdefghijklmnopqrstuvwxy", STORE_ROLE_MANAGER);
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), 0);
    commit_reopen(tf);

    assert_int_equal(store_node_get(tf->txn, in.id, &out, tf->errmsg), 0);
    assert_memory_equal(&out, &in, sizeof(in));

    in.role = STORE_ROLE_WORKER;
    in.updated = 1800000000;
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), 0);
    assert_int_equal(store_node_get(tf->txn, in.id, &out, tf->errmsg), 0);
    assert_int_equal(out.role, STORE_ROLE_WORKER);
    assert_int_equal(out.updated, 1800000000);

    assert_int_equal(store_node_delete(tf->txn, in.id, tf->errmsg), 0);
    assert_int_equal(store_node_get(tf->txn, in.id, &out, tf->errmsg), STORE_ENOTFOUND);
    assert_int_equal(store_node_delete(tf->txn, in.id, tf->errmsg), STORE_ENOTFOUND);
}

static void node_put_invalid(void **state)
{
    struct table_fixture *tf = *state;
    store_node n;

    fill_node(&n, "node-a", STORE_ROLE_WORKER);
    memset(n.hostname, 'h', sizeof(n.hostname));
    assert_int_equal(store_node_put(tf->txn, &n, tf->errmsg), STORE_EINVALID);
    assert_non_null(strstr(tf->errmsg, "\"hostname\""));

    fill_node(&n, "node-a", STORE_ROLE_WORKER);
    n.desired_role = 0;
    assert_int_equal(store_node_put(tf->txn, &n, tf->errmsg), STORE_EINVALID);
    assert_non_null(strstr(tf->errmsg, "\"desired_role\""));

    fill_node(&n, "", STORE_ROLE_WORKER);
    assert_int_equal(store_node_put(tf->txn, &n, tf->errmsg), STORE_EINVALID);

    fill_node(&n, "node-a", STORE_ROLE_WORKER);
    memset(n.id, 'x', sizeof(n.id));
    assert_int_equal(store_node_put(tf->txn, &n, tf->errmsg), STORE_EINVALID);
    assert_int_equal(store_node_get(tf->txn, NULL, &n, tf->errmsg), STORE_EINVALID);
}

static void node_raft_id_status(void **state)
{
    struct table_fixture *tf = *state;
    store_node in, out;

    fill_node(&in, "node-m", STORE_ROLE_MANAGER);
    in.raft_id = UINT64_MAX - 3;
    in.status = STORE_STATUS_DOWN;
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), 0);
    commit_reopen(tf);
    assert_int_equal(store_node_get(tf->txn, "node-m", &out, tf->errmsg), 0);
    assert_int_equal(out.raft_id, UINT64_MAX - 3);
    assert_int_equal(out.status, STORE_STATUS_DOWN);

    in.status = STORE_STATUS_READY;
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), 0);
    assert_int_equal(store_node_get(tf->txn, "node-m", &out, tf->errmsg), 0);
    assert_int_equal(out.status, STORE_STATUS_READY);

    in.status = 3;
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), STORE_EINVALID);
    assert_non_null(strstr(tf->errmsg, "\"status\""));
    in.status = -1;
    assert_int_equal(store_node_put(tf->txn, &in, tf->errmsg), STORE_EINVALID);
}

/* A record written before raft_id and status existed reads with both 0. */
static void node_old_record(void **state)
{
    struct table_fixture *tf = *state;
    struct craft fields[16];
    size_t n = craft_node(fields, "node-old");
    store_node out;

    plant_node(tf, "node-old", fields, n);
    assert_int_equal(store_node_get(tf->txn, "node-old", &out, tf->errmsg), 0);
    assert_string_equal(out.hostname, "host");
    assert_int_equal(out.updated, 1700000001);
    assert_int_equal(out.raft_id, 0);
    assert_int_equal(out.status, STORE_STATUS_UNKNOWN);
}

static void node_bad_status(void **state)
{
    struct table_fixture *tf = *state;
    const struct craft cases[] = {
        {"status", CRAFT_UINT, NULL, 0, 3},   {"status", CRAFT_INT, NULL, 0, -1},
        {"status", CRAFT_STR, "ready", 5, 0}, {"raft_id", CRAFT_INT, NULL, 0, -7},
        {"raft_id", CRAFT_NIL, NULL, 0, 0},
    };
    store_node out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct craft fields[16];
        size_t n = craft_node(fields, "node-a");

        fields[n++] = cases[i];
        plant_node(tf, "node-a", fields, n);
        print_message("  case %zu: field %s\n", i, cases[i].key);
        assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg),
                         STORE_ECORRUPT);
        assert_non_null(strstr(tf->errmsg, cases[i].key));
    }
}

struct collected {
    char ids[8][26];
    int count;
    int stop_at; /* return 1 when count reaches it, 0 for never */
};

static int collect_node(const store_node *n, void *arg)
{
    struct collected *c = arg;

    snprintf(c->ids[c->count], sizeof(c->ids[0]), "%s", n->id);
    c->count++;
    return c->count == c->stop_at ? 17 : 0;
}

static void node_each_order(void **state)
{
    struct table_fixture *tf = *state;
    static const char *ids[] = {"node-c", "node-a", "node-e", "node-b", "node-d"};
    struct collected all = {.stop_at = 0};
    struct collected two = {.stop_at = 2};
    struct collected none = {.stop_at = 0};
    store_node n;

    assert_int_equal(store_node_each(tf->txn, collect_node, &none, tf->errmsg), 0);
    assert_int_equal(none.count, 0);
    for (size_t i = 0; i < 5; i++) {
        fill_node(&n, ids[i], STORE_ROLE_WORKER);
        assert_int_equal(store_node_put(tf->txn, &n, tf->errmsg), 0);
    }

    assert_int_equal(store_node_each(tf->txn, collect_node, &all, tf->errmsg), 0);
    assert_int_equal(all.count, 5);
    assert_string_equal(all.ids[0], "node-a");
    assert_string_equal(all.ids[4], "node-e");

    assert_int_equal(store_node_each(tf->txn, collect_node, &two, tf->errmsg), 17);
    assert_int_equal(two.count, 2);
    assert_string_equal(two.ids[1], "node-b");
}

static void node_overlong_hostname(void **state)
{
    struct table_fixture *tf = *state;
    struct craft fields[16];
    char hostname[300];
    size_t n = craft_node(fields, "node-a");
    store_node out;

    memset(hostname, 'h', sizeof(hostname));
    craft_set(fields, n, (struct craft){"hostname", CRAFT_STR, hostname, 256, 0});
    plant_node(tf, "node-a", fields, n);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "table nodes"));
    assert_non_null(strstr(tf->errmsg, "\"node-a\""));
    assert_non_null(strstr(tf->errmsg, "\"hostname\""));

    /* 255 bytes is the limit and fits. */
    craft_set(fields, n, (struct craft){"hostname", CRAFT_STR, hostname, 255, 0});
    plant_node(tf, "node-a", fields, n);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), 0);
    assert_int_equal(strlen(out.hostname), 255);
}

/* Each case replaces one field of a valid node record with a bad value. */
static void node_bad_fields(void **state)
{
    struct table_fixture *tf = *state;
    static const char long_id[] = "abcdefghijklmnopqrstuvwxyz"; /* 26 bytes */
    static const char hash[32] = {0};
    const struct craft cases[] = {
        {"id", CRAFT_STR, long_id, 26, 0},
        {"addr", CRAFT_STR, "127.0.0.1\0:1", 12, 0},
        {"addr", CRAFT_INT, NULL, 0, 5},
        {"serial", CRAFT_BIN, hash, 32, 0},
        {"serial", CRAFT_NIL, NULL, 0, 0},
        {"role", CRAFT_UINT, NULL, 0, 3},
        {"role", CRAFT_INT, NULL, 0, -1},
        {"role", CRAFT_STR, "worker", 6, 0},
        {"created", CRAFT_STR, "now", 3, 0},
        {"created", CRAFT_UINT, NULL, 0, (int64_t)-1}, /* packs as 2^64 - 1 */
        {"id", CRAFT_STR, "node-b", 6, 0},             /* does not match the key */
    };
    store_node out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct craft fields[16];
        size_t n = craft_node(fields, "node-a");

        craft_set(fields, n, cases[i]);
        plant_node(tf, "node-a", fields, n);
        print_message("  case %zu: field %s\n", i, cases[i].key);
        assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg),
                         STORE_ECORRUPT);
        assert_non_null(strstr(tf->errmsg, "table nodes"));
        assert_non_null(strstr(tf->errmsg, cases[i].key));
    }
}

static void node_missing_field(void **state)
{
    struct table_fixture *tf = *state;
    struct craft fields[16];
    size_t n = craft_node(fields, "node-a");
    store_node out;

    /* Drop the last field, "updated". */
    plant_node(tf, "node-a", fields, n - 1);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "\"updated\" is missing"));
}

static void node_duplicate_field(void **state)
{
    struct table_fixture *tf = *state;
    struct craft fields[16];
    size_t n = craft_node(fields, "node-a");
    store_node out;

    fields[n++] = (struct craft){"hostname", CRAFT_STR, "other", 5, 0};
    plant_node(tf, "node-a", fields, n);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "twice"));
}

static void node_unknown_field(void **state)
{
    struct table_fixture *tf = *state;
    struct craft fields[16];
    size_t n = craft_node(fields, "node-a");
    store_node out;

    /* A field that a later format added is skipped. */
    fields[n++] = (struct craft){"labels", CRAFT_STR, "zone=a", 6, 0};
    plant_node(tf, "node-a", fields, n);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), 0);
    assert_string_equal(out.hostname, "host");
}

static void node_not_a_map(void **state)
{
    struct table_fixture *tf = *state;
    static const unsigned char array[] = {0x91, 0x01};
    static const unsigned char huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    store_node out;

    plant(tf, "nodes", "node-a", 6, array, sizeof(array));
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
    plant(tf, "nodes", "node-a", 6, huge_map, sizeof(huge_map));
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
    plant(tf, "nodes", "node-a", 6, "", 0);
    assert_int_equal(store_node_get(tf->txn, "node-a", &out, tf->errmsg), STORE_ECORRUPT);
}

static void node_each_corrupt(void **state)
{
    struct table_fixture *tf = *state;
    struct collected all = {.stop_at = 0};
    static const unsigned char key[] = {0x01, 0xfe};

    plant(tf, "nodes", key, sizeof(key), "\x91\x01", 2);
    assert_int_equal(store_node_each(tf->txn, collect_node, &all, tf->errmsg),
                     STORE_ECORRUPT);
    assert_int_equal(all.count, 0);
    assert_non_null(strstr(tf->errmsg, "key 0x01fe"));
}

/* ---- certificates ---- */

static void cert_put_get(void **state)
{
    struct table_fixture *tf = *state;
    store_cert in, out;

    fill_cert(&in, "3f0000000000000000000000000000000000000a", "node-a", 0xab);
    assert_int_equal(store_cert_get(tf->txn, in.serial, &out, tf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_cert_put(tf->txn, &in, tf->errmsg), 0);
    commit_reopen(tf);

    assert_int_equal(store_cert_get(tf->txn, in.serial, &out, tf->errmsg), 0);
    assert_string_equal(out.serial, in.serial);
    assert_string_equal(out.node_id, in.node_id);
    assert_int_equal(out.role, in.role);
    assert_int_equal(out.not_before, in.not_before);
    assert_int_equal(out.not_after, in.not_after);
    assert_memory_equal(out.key_hash, in.key_hash, 32);
    assert_string_equal(out.cert_pem, in.cert_pem);
    store_cert_free(&out);
    store_cert_free(&in);
}

static void cert_by_key(void **state)
{
    struct table_fixture *tf = *state;
    store_cert first, second, out;
    unsigned char unknown[32] = {0};

    fill_cert(&first, "01", "node-a", 0x11);
    fill_cert(&second, "02", "node-b", 0x22);
    assert_int_equal(store_cert_put(tf->txn, &first, tf->errmsg), 0);
    assert_int_equal(store_cert_put(tf->txn, &second, tf->errmsg), 0);
    commit_reopen(tf);

    assert_int_equal(store_cert_by_key(tf->txn, first.key_hash, &out, tf->errmsg), 0);
    assert_string_equal(out.serial, "01");
    store_cert_free(&out);
    assert_int_equal(store_cert_by_key(tf->txn, second.key_hash, &out, tf->errmsg), 0);
    assert_string_equal(out.serial, "02");
    store_cert_free(&out);
    assert_int_equal(store_cert_by_key(tf->txn, unknown, &out, tf->errmsg),
                     STORE_ENOTFOUND);
    assert_null(out.cert_pem);

    store_cert_free(&first);
    store_cert_free(&second);
}

static void cert_by_key_dangling(void **state)
{
    struct table_fixture *tf = *state;
    static const unsigned char index[] = {0x81, 0xa6, 's',  'e', 'r', 'i',
                                          'a',  'l',  0xa2, '9', '9'};
    unsigned char hash[32];
    store_cert out;

    memset(hash, 0x5a, sizeof(hash));
    plant(tf, "certs_by_key", hash, sizeof(hash), index, sizeof(index));
    assert_int_equal(store_cert_by_key(tf->txn, hash, &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "certs_by_key"));
    assert_non_null(strstr(tf->errmsg, "5a5a5a"));
    assert_null(out.cert_pem);
}

static void cert_pem_too_long(void **state)
{
    struct table_fixture *tf = *state;
    store_cert c, out;
    char *pem = malloc(64 * 1024 + 1);

    assert_non_null(pem);
    memset(pem, 'P', 64 * 1024 + 1);
    fill_cert(&c, "01", "node-a", 0x11);
    struct craft fields[] = {
        {"serial", CRAFT_STR, "01", 2, 0},
        {"node_id", CRAFT_STR, "node-a", 6, 0},
        {"role", CRAFT_UINT, NULL, 0, STORE_ROLE_WORKER},
        {"not_before", CRAFT_INT, NULL, 0, 1},
        {"not_after", CRAFT_INT, NULL, 0, 2},
        {"key_hash", CRAFT_BIN, (const char *)c.key_hash, 32, 0},
        {"cert", CRAFT_STR, pem, 64 * 1024 + 1, 0},
    };
    msgpack_sbuffer sbuf;

    msgpack_sbuffer_init(&sbuf);
    craft_pack(&sbuf, fields, 7);
    plant(tf, "certs", "01", 2, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    assert_int_equal(store_cert_get(tf->txn, "01", &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "\"cert\""));
    assert_null(out.cert_pem);

    /* A hash of the wrong size. */
    fields[5].len = 31;
    fields[6].len = 10;
    msgpack_sbuffer_init(&sbuf);
    craft_pack(&sbuf, fields, 7);
    plant(tf, "certs", "01", 2, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    assert_int_equal(store_cert_get(tf->txn, "01", &out, tf->errmsg), STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "\"key_hash\""));
    assert_null(out.cert_pem);

    store_cert_free(&c);
    free(pem);
}

/* ---- removed nodes ---- */

struct removed_seen {
    char ids[4][26];
    int64_t prune_after[4];
    int count;
};

static int collect_removed(const char *id, int64_t prune_after, void *arg)
{
    struct removed_seen *seen = arg;

    snprintf(seen->ids[seen->count], sizeof(seen->ids[0]), "%s", id);
    seen->prune_after[seen->count] = prune_after;
    seen->count++;
    return 0;
}

static void removed_put_get_delete(void **state)
{
    struct table_fixture *tf = *state;
    struct removed_seen seen = {.count = 0};
    int64_t prune_after = 1;

    assert_int_equal(store_removed_get(tf->txn, "node-a", &prune_after, tf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_removed_put(tf->txn, "node-b", 2000000000, tf->errmsg), 0);
    assert_int_equal(store_removed_put(tf->txn, "node-a", -3, tf->errmsg), 0);
    commit_reopen(tf);

    assert_int_equal(store_removed_get(tf->txn, "node-a", &prune_after, tf->errmsg), 0);
    assert_int_equal(prune_after, -3);
    assert_int_equal(store_removed_each(tf->txn, collect_removed, &seen, tf->errmsg), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.ids[0], "node-a");
    assert_string_equal(seen.ids[1], "node-b");
    assert_int_equal(seen.prune_after[1], 2000000000);

    assert_int_equal(store_removed_delete(tf->txn, "node-a", tf->errmsg), 0);
    assert_int_equal(store_removed_delete(tf->txn, "node-a", tf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_removed_get(tf->txn, "node-a", &prune_after, tf->errmsg),
                     STORE_ENOTFOUND);
    assert_int_equal(store_removed_put(tf->txn, "", 1, tf->errmsg), STORE_EINVALID);
}

static void removed_corrupt(void **state)
{
    struct table_fixture *tf = *state;
    static const unsigned char text[] = {0x81, 0xab, 'p', 'r', 'u', 'n',  'e', '_',
                                         'a',  'f',  't', 'e', 'r', 0xa1, 'x'};
    struct removed_seen seen = {.count = 0};
    int64_t prune_after;

    plant(tf, "removed", "node-a", 6, text, sizeof(text));
    assert_int_equal(store_removed_get(tf->txn, "node-a", &prune_after, tf->errmsg),
                     STORE_ECORRUPT);
    assert_non_null(strstr(tf->errmsg, "table removed"));
    assert_non_null(strstr(tf->errmsg, "\"prune_after\""));
    assert_int_equal(store_removed_each(tf->txn, collect_removed, &seen, tf->errmsg),
                     STORE_ECORRUPT);
    assert_int_equal(seen.count, 0);
}

int run_table_tests(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, table_setup, table_teardown)
    const struct CMUnitTest tests[] = {
        T(cluster_round_trip),
        T(cluster_null_pems),
        cmocka_unit_test(cluster_free_zeroes),
        T(cluster_pem_too_long),
        T(node_put_get_delete),
        T(node_put_invalid),
        T(node_raft_id_status),
        T(node_old_record),
        T(node_bad_status),
        T(node_each_order),
        T(node_overlong_hostname),
        T(node_bad_fields),
        T(node_missing_field),
        T(node_duplicate_field),
        T(node_unknown_field),
        T(node_not_a_map),
        T(node_each_corrupt),
        T(cert_put_get),
        T(cert_by_key),
        T(cert_by_key_dangling),
        T(cert_pem_too_long),
        T(removed_put_get_delete),
        T(removed_corrupt),
    };
#undef T

    return cmocka_run_group_tests_name("store tables", tests, NULL, NULL);
}
