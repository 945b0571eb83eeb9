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
