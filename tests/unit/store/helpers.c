#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

void make_temp_dir(char out[64])
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || strlen(base) > 30) {
        base = "/tmp";
    }
    snprintf(out, 64, "%s/swarmpki-store-XXXXXX", base);
    assert_non_null(mkdtemp(out));
}

void remove_tree(const char *path)
{
    struct stat st;
    DIR *dir;
    struct dirent *entry;
    char child[512];

    if (lstat(path, &st) != 0) {
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    dir = opendir(path);
    if (dir != NULL) {
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
                continue;
            }
            snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        closedir(dir);
    }
    rmdir(path);
}

int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char errmsg[STORE_ERRMSG_SIZE] = "";

    assert_non_null(f);
    make_temp_dir(f->dir);
    snprintf(f->path, sizeof(f->path), "%s/store.mdb", f->dir);
    if (store_open(f->dir, &f->s, errmsg) != 0) {
        print_error("store_open: %s\n", errmsg);
        remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int fixture_teardown(void **state)
{
    struct fixture *f = *state;

    store_close(f->s);
    remove_tree(f->dir);
    free(f);
    return 0;
}

void reopen(struct fixture *f)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    int rv;

    store_close(f->s);
    f->s = NULL;
    rv = store_open(f->dir, &f->s, errmsg);
    if (rv != 0) {
        print_error("store_open: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
}

void raw_put(const char *dir, const char *table, const void *key, size_t klen,
             const void *value, size_t vlen)
{
    char path[128];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, (void *)value};

    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Opens the LMDB environment of the closed store in dir. */
static MDB_env *raw_open(const char *dir)
{
    char path[128];
    MDB_env *env;

    snprintf(path, sizeof(path), "%s/store.mdb", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
    return env;
}

void raw_drop(const char *dir, const char *table)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;

    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    /* Check that the table is gone. */
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

size_t raw_count(const char *dir, const char *table)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;

    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, table, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}

size_t raw_expect_same(const char *a, const char *b, const char *table)
{
    MDB_env *env_a = raw_open(a);
    MDB_env *env_b = raw_open(b);
    MDB_txn *txn_a, *txn_b;
    MDB_dbi dbi_a, dbi_b;
    MDB_cursor *cur_a, *cur_b;
    MDB_val ka, va, kb, vb;
    size_t rows = 0;
    int rc_a, rc_b;

    assert_int_equal(mdb_txn_begin(env_a, NULL, MDB_RDONLY, &txn_a), 0);
    assert_int_equal(mdb_txn_begin(env_b, NULL, MDB_RDONLY, &txn_b), 0);
    assert_int_equal(mdb_dbi_open(txn_a, table, 0, &dbi_a), 0);
    assert_int_equal(mdb_dbi_open(txn_b, table, 0, &dbi_b), 0);
    assert_int_equal(mdb_cursor_open(txn_a, dbi_a, &cur_a), 0);
    assert_int_equal(mdb_cursor_open(txn_b, dbi_b, &cur_b), 0);
    rc_a = mdb_cursor_get(cur_a, &ka, &va, MDB_FIRST);
    rc_b = mdb_cursor_get(cur_b, &kb, &vb, MDB_FIRST);
    while (rc_a == 0 && rc_b == 0) {
        assert_int_equal(ka.mv_size, kb.mv_size);
        assert_memory_equal(ka.mv_data, kb.mv_data, ka.mv_size);
        assert_int_equal(va.mv_size, vb.mv_size);
        assert_memory_equal(va.mv_data, vb.mv_data, va.mv_size);
        rows++;
        rc_a = mdb_cursor_get(cur_a, &ka, &va, MDB_NEXT);
        rc_b = mdb_cursor_get(cur_b, &kb, &vb, MDB_NEXT);
    }
    if (rc_a != rc_b) {
        print_error("table %s: one store has more rows than the other after %zu\n", table,
                    rows);
    }
    assert_int_equal(rc_a, MDB_NOTFOUND);
    assert_int_equal(rc_b, MDB_NOTFOUND);
    mdb_cursor_close(cur_a);
    mdb_cursor_close(cur_b);
    mdb_txn_abort(txn_a);
    mdb_txn_abort(txn_b);
    mdb_env_close(env_a);
    mdb_env_close(env_b);
    return rows;
}

uint64_t test_seed(const char *test_name)
{
    const char *env = getenv("SWARMPKI_TEST_SEED");
    uint64_t seed;

    if (env != NULL && env[0] != '\0') {
        seed = strtoull(env, NULL, 10);
    } else {
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    if (seed == 0) {
        seed = 1; /* xorshift stays at 0 forever */
    }
    print_message("%s: seed %llu (replay with SWARMPKI_TEST_SEED=%llu)\n", test_name,
                  (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

void fill_node(store_node *n, const char *id, int role)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->role = role;
    n->desired_role = role;
    snprintf(n->hostname, sizeof(n->hostname), "host-%s", id);
    if (role == STORE_ROLE_MANAGER) {
        snprintf(n->addr, sizeof(n->addr), "127.0.0.1:4242");
    }
    snprintf(n->serial, sizeof(n->serial), "%040d", 7);
    n->cert_not_after = 1900000000;
    n->created = 1700000000;
    n->updated = -5; /* negative values must survive too */
}

void fill_cert(store_cert *c, const char *serial, const char *node_id,
               unsigned char hash_byte)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->serial, sizeof(c->serial), "%s", serial);
    snprintf(c->node_id, sizeof(c->node_id), "%s", node_id);
    c->role = STORE_ROLE_WORKER;
    c->not_before = 1700000000;
    c->not_after = 1707776000;
    memset(c->key_hash, hash_byte, sizeof(c->key_hash));
    c->key_hash[31] = 0x01;
    c->cert_pem =
        strdup("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    assert_non_null(c->cert_pem);
}

void fill_cluster(store_cluster *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", "0123456789abcdefghijklmno");
    c->bundle_pem =
        strdup("-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n");
    c->signer_cert_pem =
        strdup("-----BEGIN CERTIFICATE-----\nSIG\n-----END CERTIFICATE-----\n");
    c->signer_key_pem =
        strdup("-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n");
    assert_non_null(c->bundle_pem);
    assert_non_null(c->signer_cert_pem);
    assert_non_null(c->signer_key_pem);
    memset(c->worker_token, 'w', 85);
    memset(c->manager_token, 'm', 85);
    c->cert_expiry = 2160 * 3600;
    c->created = 1700000000;
}

const unsigned char test_config[5] = {0x92, 0x01, 0x00, 0xff, 0x7f};

/* A PEM-shaped text of exactly len bytes, len >= 64. */
static char *make_pem(size_t len)
{
    static const char head[] = "-----BEGIN CERTIFICATE-----\n";
    static const char tail[] = "-----END CERTIFICATE-----\n";
    char *pem = malloc(len + 1);

    assert_non_null(pem);
    assert_true(len >= sizeof(head) + sizeof(tail));
    memcpy(pem, head, sizeof(head) - 1);
    for (size_t i = sizeof(head) - 1; i < len - (sizeof(tail) - 1); i++) {
        pem[i] = (i % 65 == 64) ? '\n' : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"[i % 32];
    }
    memcpy(pem + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    pem[len] = '\0';
    return pem;
}

void fill_state(store *s, size_t nodes, size_t certs, size_t pem_len)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    char *pem = make_pem(pem_len);
    store_cluster cluster;
    store_txn *txn;
    int rv;

    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    fill_cluster(&cluster);
    assert_int_equal(store_cluster_put(txn, &cluster, errmsg), 0);
    store_cluster_free(&cluster);

    for (size_t i = 0; i < nodes; i++) {
        store_node n;
        char id[26];

        snprintf(id, sizeof(id), "node-%06zu", i);
        fill_node(&n, id, i % 2 ? STORE_ROLE_WORKER : STORE_ROLE_MANAGER);
        n.raft_id = i % 2 ? 0 : i + 1;
        n.status = (int)(i % 3);
        assert_int_equal(store_node_put(txn, &n, errmsg), 0);
    }
    for (size_t i = 0; i < certs; i++) {
        store_cert c;
        char serial[41];

        snprintf(serial, sizeof(serial), "%040zx", i * 7919);
        fill_cert(&c, serial, "node-000001", 0x33);
        for (int b = 0; b < 4; b++) {
            c.key_hash[b] = (unsigned char)(i >> (8 * b));
        }
        free(c.cert_pem);
        c.cert_pem = pem;
        rv = store_cert_put(txn, &c, errmsg);
        c.cert_pem = NULL;
        store_cert_free(&c);
        assert_int_equal(rv, 0);
    }
    assert_int_equal(store_removed_put(txn, "gone-a", 1800000000, errmsg), 0);
    assert_int_equal(store_removed_put(txn, "gone-b", -1, errmsg), 0);
    assert_int_equal(store_removed_put(txn, "gone-c", 0, errmsg), 0);
    rv = store_txn_commit(txn, errmsg);
    if (rv != 0) {
        print_error("commit: %s\n", errmsg);
    }
    assert_int_equal(rv, 0);
    free(pem);
}

void take_snapshot(store *s, uint64_t index, uint64_t term)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn;
    int rv;

    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    rv = store_snapshot_take(txn, index, term, test_config, sizeof(test_config), errmsg);
    if (rv != 0) {
        print_error("store_snapshot_take: %s\n", errmsg);
        store_txn_abort(txn);
    }
    assert_int_equal(rv, 0);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
}

unsigned char *read_snapshot(store *s, uint64_t index, size_t piece,
                             store_snapshot_meta *meta)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    unsigned char *data;
    store_txn *txn;

    assert_int_equal(store_txn_begin(s, 0, &txn, errmsg), 0);
    assert_int_equal(store_snapshot_meta_get(txn, meta, errmsg), 0);
    assert_int_equal(meta->index, index);
    data = malloc(meta->size > 0 ? meta->size : 1);
    assert_non_null(data);
    for (uint64_t off = 0; off < meta->size; off += piece) {
        size_t n = meta->size - off < piece ? (size_t)(meta->size - off) : piece;
        int rv = store_snapshot_read(txn, index, off, data + off, n, errmsg);

        if (rv != 0) {
            print_error("store_snapshot_read: %s\n", errmsg);
        }
        assert_int_equal(rv, 0);
    }
    store_txn_abort(txn);
    return data;
}

void stage_snapshot(store *s, const unsigned char *data, size_t len, size_t piece)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    store_txn *txn;

    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    assert_int_equal(
        store_snapshot_stage(txn, 0, data, len < piece ? len : piece, errmsg), 0);
    for (size_t off = piece; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        int rv = store_snapshot_stage(txn, off, data + off, n, errmsg);

        if (rv != 0) {
            print_error("store_snapshot_stage: %s\n", errmsg);
        }
        assert_int_equal(rv, 0);
    }
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
}

int install_snapshot(store *s, const store_snapshot_meta *meta, char *errmsg)
{
    store_txn *txn;
    int rv;

    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    rv = store_snapshot_install(txn, meta, errmsg);
    if (rv == 0) {
        rv = store_txn_commit(txn, errmsg);
        assert_int_equal(rv, 0);
    } else {
        store_txn_abort(txn);
    }
    return rv;
}

void put_old_state(store *s)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    unsigned char byte = 1;
    store_txn *txn;
    store_node n;

    fill_node(&n, "old-node", STORE_ROLE_WORKER);
    assert_int_equal(store_txn_begin(s, 1, &txn, errmsg), 0);
    assert_int_equal(store_node_put(txn, &n, errmsg), 0);
    assert_int_equal(store_removed_put(txn, "old-removed", 5, errmsg), 0);
    for (uint64_t i = 1; i <= 10; i++) {
        store_entry e = {i, 1, STORE_ENTRY_NORMAL, &byte, 1};

        assert_int_equal(store_log_append(txn, &e, 1, errmsg), 0);
    }
    assert_int_equal(store_applied_put(txn, 3, errmsg), 0);
    assert_int_equal(store_txn_commit(txn, errmsg), 0);
}

void expect_old_state(store *s)
{
    char errmsg[STORE_ERRMSG_SIZE] = "";
    uint64_t applied = 99, first = 99, last = 99;
    int64_t prune_after = 0;
    store_txn *txn;
    store_node n;

    assert_int_equal(store_txn_begin(s, 0, &txn, errmsg), 0);
    assert_int_equal(store_node_get(txn, "old-node", &n, errmsg), 0);
    assert_int_equal(store_removed_get(txn, "old-removed", &prune_after, errmsg), 0);
    assert_int_equal(store_applied_get(txn, &applied, errmsg), 0);
    assert_int_equal(store_log_bounds(txn, &first, &last, errmsg), 0);
    store_txn_abort(txn);
    assert_int_equal(prune_after, 5);
    assert_int_equal(applied, 3);
    assert_int_equal(first, 1);
    assert_int_equal(last, 10);
}

size_t craft_node(struct craft out[16], const char *id)
{
    static const char serial[] = "0000000000000000000000000000000000000007";
    size_t n = 0;

    out[n++] = (struct craft){"id", CRAFT_STR, id, strlen(id), 0};
    out[n++] = (struct craft){"role", CRAFT_UINT, NULL, 0, STORE_ROLE_WORKER};
    out[n++] = (struct craft){"desired_role", CRAFT_UINT, NULL, 0, STORE_ROLE_WORKER};
    out[n++] = (struct craft){"hostname", CRAFT_STR, "host", 4, 0};
    out[n++] = (struct craft){"addr", CRAFT_STR, "", 0, 0};
    out[n++] = (struct craft){"serial", CRAFT_STR, serial, strlen(serial), 0};
    out[n++] = (struct craft){"cert_not_after", CRAFT_INT, NULL, 0, 1900000000};
    out[n++] = (struct craft){"created", CRAFT_INT, NULL, 0, 1700000000};
    out[n++] = (struct craft){"updated", CRAFT_INT, NULL, 0, 1700000001};
    return n;
}

static void pack_craft(msgpack_packer *pk, const struct craft *c)
{
    switch (c->kind) {
    case CRAFT_STR:
        msgpack_pack_str_with_body(pk, c->bytes, c->len);
        break;
    case CRAFT_INT:
        msgpack_pack_int64(pk, c->i);
        break;
    case CRAFT_UINT:
        msgpack_pack_uint64(pk, (uint64_t)c->i);
        break;
    case CRAFT_BIN:
        msgpack_pack_bin_with_body(pk, c->bytes, c->len);
        break;
    case CRAFT_NIL:
        msgpack_pack_nil(pk);
        break;
    }
}

void craft_pack(msgpack_sbuffer *sbuf, const struct craft *fields, size_t n)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_str_with_body(&pk, fields[i].key, strlen(fields[i].key));
        pack_craft(&pk, &fields[i]);
    }
}

void craft_set(struct craft *fields, size_t n, struct craft value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].key, value.key) == 0) {
            fields[i] = value;
            return;
        }
    }
    fail_msg("no field %s to replace", value.key);
}
