/* The replicated tables: cluster, nodes, certs with their certs_by_key
 * index, and removed nodes. Values are msgpack maps described by the
 * layouts in codec.c and below. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <store/internal.h>

#define CLUSTER_KEY "cluster"
#define WHERE_SIZE  160

#define ID_MAX     (sizeof(((store_node *)0)->id) - 1)
#define SERIAL_MAX (sizeof(((store_cert *)0)->serial) - 1)

/* certs_by_key value: the serial of the certificate issued for a key. */
struct key_index {
    char serial[SERIAL_MAX + 1];
};

static const struct store_field key_index_fields[] = {
    STORE_FIELD(struct key_index, "serial", serial, STORE_FIELD_ID),
};
static const struct store_layout key_index_layout =
    STORE_LAYOUT(struct key_index, key_index_fields);

struct removed {
    int64_t prune_after; /* seconds since the Unix epoch */
};

static const struct store_field removed_fields[] = {
    STORE_FIELD(struct removed, "prune_after", prune_after, STORE_FIELD_I64),
};
static const struct store_layout removed_layout =
    STORE_LAYOUT(struct removed, removed_fields);

/* ---- generic table access ---- */

/* Describes a record for messages: the key in quotes when it is printable
 * ASCII, else its first 32 bytes in hex. Hash keys of certs_by_key are
 * always shown in hex. */
static void describe(char *out, const char *table, const MDB_val *k)
{
    const unsigned char *p = k->mv_data;
    bool printable =
        k->mv_size > 0 && k->mv_size <= 64 && strcmp(table, "certs_by_key") != 0;
    int n;

    for (size_t i = 0; i < k->mv_size && printable; i++) {
        printable = p[i] > 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\';
    }
    if (printable) {
        snprintf(out, WHERE_SIZE, "record in table %s key \"%.*s\"", table,
                 (int)k->mv_size, (const char *)p);
        return;
    }
    n = snprintf(out, WHERE_SIZE, "record in table %s key 0x", table);
    for (size_t i = 0; i < k->mv_size && i < 32 && n > 0 && n + 3 < WHERE_SIZE; i++) {
        n += snprintf(out + n, WHERE_SIZE - (size_t)n, "%02x", p[i]);
    }
}

/* Makes a key of the string id, which must be 1 to max bytes. */
static int string_key(const char *table, const char *id, size_t max, MDB_val *k,
                      char *errmsg)
{
    size_t len = id == NULL ? 0 : strnlen(id, max + 1);

    if (len == 0 || len > max) {
        return store_error(
            errmsg, STORE_EINVALID,
            "invalid key for table %s: expected a string of 1 to %zu bytes", table, max);
    }
    *k = (MDB_val){len, (void *)id};
    return 0;
}

/* Checks that the string field of a record equals its key. */
static int check_key_field(const MDB_val *k, const char *value, const char *field,
                           const char *where, char *errmsg)
{
    if (strlen(value) != k->mv_size || memcmp(value, k->mv_data, k->mv_size) != 0) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"%s\" does not match the key", where,
                           field);
    }
    return 0;
}

static int table_get(store_txn *txn, MDB_dbi dbi, const char *table, const MDB_val *k,
                     const struct store_layout *l, void *rec, char *errmsg)
{
    char where[WHERE_SIZE];
    char action[64];
    MDB_val key = *k;
    MDB_val v;
    int rc;

    memset(rec, 0, l->size);
    rc = mdb_get(txn->txn, dbi, &key, &v);
    if (rc == MDB_NOTFOUND) {
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        snprintf(action, sizeof(action), "read table %s", table);
        return store_txn_error(txn, rc, action, errmsg);
    }
    describe(where, table, k);
    return store_record_decode(l, v.mv_data, v.mv_size, rec, where, errmsg);
}

static int table_put(store_txn *txn, MDB_dbi dbi, const char *table, const MDB_val *k,
                     const struct store_layout *l, const void *rec, char *errmsg)
{
    char where[WHERE_SIZE];
    char action[64];
    struct store_buf buf;
    MDB_val key = *k;
    MDB_val v;
    int rc;
    int rv;

    describe(where, table, k);
    rv = store_record_encode(l, rec, where, &buf, errmsg);
    if (rv != 0) {
        return rv;
    }
    v = (MDB_val){buf.len, buf.data};
    rc = mdb_put(txn->txn, dbi, &key, &v, 0);
    store_buf_free(&buf);
    if (rc != 0) {
        snprintf(action, sizeof(action), "write table %s", table);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

static int table_delete(store_txn *txn, MDB_dbi dbi, const char *table, const MDB_val *k,
                        char *errmsg)
{
    char action[64];
    MDB_val key = *k;
    int rc = mdb_del(txn->txn, dbi, &key, NULL);

    if (rc == MDB_NOTFOUND) {
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        snprintf(action, sizeof(action), "delete from table %s", table);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

/* Called for each decoded record; where describes it for messages. A
 * non-zero return stops the walk and is returned from table_each. */
typedef int (*row_visit)(const MDB_val *k, void *rec, const char *where, void *arg);

/* Walks a table in key order, decoding each value into rec. */
static int table_each(store_txn *txn, MDB_dbi dbi, const char *table,
                      const struct store_layout *l, void *rec, row_visit visit, void *arg,
                      char *errmsg)
{
    char where[WHERE_SIZE];
    char action[64];
    MDB_cursor *cursor;
    MDB_val k, v;
    int rv = 0;
    int rc = mdb_cursor_open(txn->txn, dbi, &cursor);

    snprintf(action, sizeof(action), "read table %s", table);
    if (rc != 0) {
        return store_txn_error(txn, rc, action, errmsg);
    }
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
        describe(where, table, &k);
        rv = store_record_decode(l, v.mv_data, v.mv_size, rec, where, errmsg);
        if (rv != 0) {
            break;
        }
        rv = visit(&k, rec, where, arg);
        store_record_free(l, rec);
        if (rv != 0) {
            break;
        }
    }
    mdb_cursor_close(cursor);
    if (rv == 0 && rc != MDB_NOTFOUND) {
        rv = store_txn_error(txn, rc, action, errmsg);
    }
    return rv;
}

/* ---- cluster ---- */

void store_cluster_free(store_cluster *c)
{
    if (c != NULL) {
        store_record_free(&store_layout_cluster, c);
    }
}

int store_cluster_get(store_txn *txn, store_cluster *out, char *errmsg)
{
    MDB_val k = {strlen(CLUSTER_KEY), CLUSTER_KEY};

    return table_get(txn, txn->s->cluster, "cluster", &k, &store_layout_cluster, out,
                     errmsg);
}

int store_cluster_put(store_txn *txn, const store_cluster *c, char *errmsg)
{
    MDB_val k = {strlen(CLUSTER_KEY), CLUSTER_KEY};

    return table_put(txn, txn->s->cluster, "cluster", &k, &store_layout_cluster, c,
                     errmsg);
}

/* ---- nodes ---- */

int store_node_get(store_txn *txn, const char *id, store_node *out, char *errmsg)
{
    char where[WHERE_SIZE];
    MDB_val k = {0, NULL};
    int rv = string_key("nodes", id, ID_MAX, &k, errmsg);

    if (rv != 0) {
        memset(out, 0, sizeof(*out));
        return rv;
    }
    rv = table_get(txn, txn->s->nodes, "nodes", &k, &store_layout_node, out, errmsg);
    if (rv == 0) {
        describe(where, "nodes", &k);
        rv = check_key_field(&k, out->id, "id", where, errmsg);
    }
    return rv;
}

int store_node_put(store_txn *txn, const store_node *n, char *errmsg)
{
    MDB_val k = {0, NULL};
    int rv = string_key("nodes", n->id, ID_MAX, &k, errmsg);

    if (rv != 0) {
        return rv;
    }
    return table_put(txn, txn->s->nodes, "nodes", &k, &store_layout_node, n, errmsg);
}

int store_node_delete(store_txn *txn, const char *id, char *errmsg)
{
    MDB_val k = {0, NULL};
    int rv = string_key("nodes", id, ID_MAX, &k, errmsg);

    if (rv != 0) {
        return rv;
    }
    return table_delete(txn, txn->s->nodes, "nodes", &k, errmsg);
}

struct node_walk {
    int (*visit)(const store_node *n, void *arg);
    void *arg;
    char *errmsg;
};

static int visit_node(const MDB_val *k, void *rec, const char *where, void *arg)
{
    struct node_walk *walk = arg;
    const store_node *n = rec;
    int rv = check_key_field(k, n->id, "id", where, walk->errmsg);

    return rv != 0 ? rv : walk->visit(n, walk->arg);
}

int store_node_each(store_txn *txn, int (*visit)(const store_node *n, void *arg),
                    void *arg, char *errmsg)
{
    struct node_walk walk = {visit, arg, errmsg};
    store_node n;

    return table_each(txn, txn->s->nodes, "nodes", &store_layout_node, &n, visit_node,
                      &walk, errmsg);
}

/* ---- certificates ---- */

void store_cert_free(store_cert *c)
{
    if (c != NULL) {
        store_record_free(&store_layout_cert, c);
    }
}

int store_cert_get(store_txn *txn, const char *serial, store_cert *out, char *errmsg)
{
    char where[WHERE_SIZE];
    MDB_val k = {0, NULL};
    int rv = string_key("certs", serial, SERIAL_MAX, &k, errmsg);

    if (rv != 0) {
        memset(out, 0, sizeof(*out));
        return rv;
    }
    rv = table_get(txn, txn->s->certs, "certs", &k, &store_layout_cert, out, errmsg);
    if (rv == 0) {
        describe(where, "certs", &k);
        rv = check_key_field(&k, out->serial, "serial", where, errmsg);
    }
    if (rv != 0) {
        store_cert_free(out);
    }
    return rv;
}

int store_cert_by_key(store_txn *txn, const unsigned char key_hash[32], store_cert *out,
                      char *errmsg)
{
    char where[WHERE_SIZE];
    MDB_val k = {32, (void *)key_hash};
    struct key_index index;
    int rv = table_get(txn, txn->s->certs_by_key, "certs_by_key", &k, &key_index_layout,
                       &index, errmsg);

    memset(out, 0, sizeof(*out));
    if (rv != 0) {
        return rv;
    }

    /* The index and the certificate are written in one transaction, so a
     * dangling or mismatched entry means the file is damaged. */
    describe(where, "certs_by_key", &k);
    rv = store_cert_get(txn, index.serial, out, errmsg);
    if (rv == STORE_ENOTFOUND || rv == STORE_EINVALID) {
        return store_error(
            errmsg, STORE_ECORRUPT,
            "corrupt %s: it names serial \"%s\", which is not in table certs", where,
            index.serial);
    }
    if (rv == 0 && memcmp(out->key_hash, key_hash, 32) != 0) {
        store_cert_free(out);
        rv = store_error(errmsg, STORE_ECORRUPT,
                         "corrupt %s: certificate %s has another key hash", where,
                         index.serial);
    }
    return rv;
}

int store_cert_put(store_txn *txn, const store_cert *c, char *errmsg)
{
    MDB_val k = {0, NULL};
    MDB_val hash = {32, (void *)c->key_hash};
    struct key_index index;
    int rv = string_key("certs", c->serial, SERIAL_MAX, &k, errmsg);

    if (rv != 0) {
        return rv;
    }

    /* table_put checks the record before it writes, so a rejected
     * certificate leaves both tables unchanged. */
    memset(&index, 0, sizeof(index));
    memcpy(index.serial, c->serial, k.mv_size);
    rv = table_put(txn, txn->s->certs, "certs", &k, &store_layout_cert, c, errmsg);
    if (rv == 0) {
        rv = table_put(txn, txn->s->certs_by_key, "certs_by_key", &hash,
                       &key_index_layout, &index, errmsg);
    }
    return rv;
}

/* ---- removed nodes ---- */

int store_removed_get(store_txn *txn, const char *id, int64_t *prune_after, char *errmsg)
{
    struct removed rec;
    MDB_val k = {0, NULL};
    int rv = string_key("removed", id, ID_MAX, &k, errmsg);

    if (rv == 0) {
        rv =
            table_get(txn, txn->s->removed, "removed", &k, &removed_layout, &rec, errmsg);
    }
    *prune_after = rv == 0 ? rec.prune_after : 0;
    return rv;
}

int store_removed_put(store_txn *txn, const char *id, int64_t prune_after, char *errmsg)
{
    struct removed rec = {prune_after};
    MDB_val k = {0, NULL};
    int rv = string_key("removed", id, ID_MAX, &k, errmsg);

    if (rv != 0) {
        return rv;
    }
    return table_put(txn, txn->s->removed, "removed", &k, &removed_layout, &rec, errmsg);
}

int store_removed_delete(store_txn *txn, const char *id, char *errmsg)
{
    MDB_val k = {0, NULL};
    int rv = string_key("removed", id, ID_MAX, &k, errmsg);

    if (rv != 0) {
        return rv;
    }
    return table_delete(txn, txn->s->removed, "removed", &k, errmsg);
}

struct removed_walk {
    int (*visit)(const char *id, int64_t prune_after, void *arg);
    void *arg;
    char *errmsg;
};

static int visit_removed(const MDB_val *k, void *rec, const char *where, void *arg)
{
    struct removed_walk *walk = arg;
    const struct removed *r = rec;
    char id[ID_MAX + 1];

    if (k->mv_size == 0 || k->mv_size > ID_MAX || memchr(k->mv_data, '\0', k->mv_size)) {
        return store_error(walk->errmsg, STORE_ECORRUPT,
                           "corrupt %s: the key is not a node id of 1 to %zu bytes",
                           where, ID_MAX);
    }
    memcpy(id, k->mv_data, k->mv_size);
    id[k->mv_size] = '\0';
    return walk->visit(id, r->prune_after, walk->arg);
}

int store_removed_each(store_txn *txn,
                       int (*visit)(const char *id, int64_t prune_after, void *arg),
                       void *arg, char *errmsg)
{
    struct removed_walk walk = {visit, arg, errmsg};
    struct removed rec;

    return table_each(txn, txn->s->removed, "removed", &removed_layout, &rec,
                      visit_removed, &walk, errmsg);
}

/* ---- raw rows, for snapshots ---- */

const struct store_replicated store_replicated_tables[STORE_REPLICATED_COUNT] = {
    {"cluster", offsetof(store, cluster)},
    {"nodes", offsetof(store, nodes)},
    {"certs", offsetof(store, certs)},
    {"certs_by_key", offsetof(store, certs_by_key)},
    {"removed", offsetof(store, removed)},
};

/* The shape of a row of each replicated table, in the order of
 * store_replicated_tables. */
struct row_shape {
    const struct store_layout *layout;
    size_t key_min;
    size_t key_max;
    bool key_is_text;     /* a string without NUL, as opposed to a hash */
    const char *only_key; /* the one key the table may have, or NULL */
    const char *field;    /* the string field that must equal the key, or NULL */
    size_t field_offset;
};

static const struct row_shape row_shapes[STORE_REPLICATED_COUNT] = {
    {&store_layout_cluster, 1, 64, true, CLUSTER_KEY, NULL, 0},
    {&store_layout_node, 1, ID_MAX, true, NULL, "id", offsetof(store_node, id)},
    {&store_layout_cert, 1, SERIAL_MAX, true, NULL, "serial",
     offsetof(store_cert, serial)},
    {&key_index_layout, 32, 32, false, NULL, NULL, 0},
    {&removed_layout, 1, ID_MAX, true, NULL, NULL, 0},
};

static int check_row_key(size_t table, const MDB_val *k, const char *where, char *errmsg)
{
    const struct row_shape *shape = &row_shapes[table];

    if (k->mv_size < shape->key_min || k->mv_size > shape->key_max ||
        (shape->key_is_text && memchr(k->mv_data, '\0', k->mv_size) != NULL)) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: the key is not %zu to %zu bytes%s", where,
                           shape->key_min, shape->key_max,
                           shape->key_is_text ? " without NUL" : "");
    }
    if (shape->only_key != NULL &&
        (k->mv_size != strlen(shape->only_key) ||
         memcmp(k->mv_data, shape->only_key, k->mv_size) != 0)) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: the only key this table may have is \"%s\"",
                           where, shape->only_key);
    }
    return 0;
}

int store_row_check(size_t table, const MDB_val *k, const MDB_val *v, char *errmsg)
{
    const struct row_shape *shape = &row_shapes[table];
    char where[WHERE_SIZE];
    union {
        store_cluster cluster;
        store_node node;
        store_cert cert;
        struct key_index key_index;
        struct removed removed;
    } rec;
    int rv;

    describe(where, store_replicated_tables[table].name, k);
    rv = check_row_key(table, k, where, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = store_record_decode(shape->layout, v->mv_data, v->mv_size, &rec, where, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (shape->field != NULL) {
        rv = check_key_field(k, (const char *)&rec + shape->field_offset, shape->field,
                             where, errmsg);
    }
    store_record_free(shape->layout, &rec);
    return rv;
}
