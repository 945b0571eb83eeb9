/* Raft metadata (hard state, applied index) in the meta table, and the
 * Raft log: key = 8-byte big-endian index, value = msgpack [term, type,
 * data]. Big-endian keys make LMDB's byte order the index order. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

#define HARD_STATE_KEY "hard_state"
#define APPLIED_KEY    "applied"

static MDB_val string_key(const char *key)
{
    return (MDB_val){strlen(key), (void *)key};
}

/* ---- meta ---- */

int store_meta_put(store_txn *txn, const char *key, struct store_buf *buf, char *errmsg)
{
    MDB_val k = string_key(key);
    MDB_val v = {buf->len, buf->data};
    int rc = mdb_put(txn->txn, txn->s->meta, &k, &v, 0);
    char action[64];

    store_buf_free(buf);
    if (rc != 0) {
        snprintf(action, sizeof(action), "write meta key %s", key);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

int store_meta_get(store_txn *txn, const char *key, MDB_val *v, char *errmsg)
{
    MDB_val k = string_key(key);
    int rc = mdb_get(txn->txn, txn->s->meta, &k, v);
    char action[64];

    if (rc == MDB_NOTFOUND) {
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        snprintf(action, sizeof(action), "read meta key %s", key);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

int store_meta_delete(store_txn *txn, const char *key, char *errmsg)
{
    MDB_val k = string_key(key);
    int rc = mdb_del(txn->txn, txn->s->meta, &k, NULL);
    char action[64];

    if (rc != 0 && rc != MDB_NOTFOUND) {
        snprintf(action, sizeof(action), "delete meta key %s", key);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

int store_meta_get_uint(store_txn *txn, const char *key, uint64_t *out, char *errmsg)
{
    MDB_val v;
    int rv = store_meta_get(txn, key, &v, errmsg);

    if (rv != 0) {
        return rv;
    }
    rv = store_uint_decode(v.mv_data, v.mv_size, out);
    if (rv == STORE_ENOMEM) {
        return store_error(errmsg, rv, "out of memory reading meta key %s", key);
    }
    if (rv != 0) {
        return store_error(errmsg, rv,
                           "corrupt record in table meta key \"%s\": not an unsigned "
                           "integer",
                           key);
    }
    return 0;
}

int store_meta_put_uint(store_txn *txn, const char *key, uint64_t value, char *errmsg)
{
    struct store_buf buf;

    if (store_uint_encode(value, &buf) != 0) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory encoding meta key %s",
                           key);
    }
    return store_meta_put(txn, key, &buf, errmsg);
}

int store_hard_state_get(store_txn *txn, store_hard_state *out, char *errmsg)
{
    MDB_val v;
    int rv = store_meta_get(txn, HARD_STATE_KEY, &v, errmsg);

    memset(out, 0, sizeof(*out));
    if (rv == STORE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    return store_record_decode(&store_layout_hard_state, v.mv_data, v.mv_size, out,
                               "record in table meta key \"" HARD_STATE_KEY "\"", errmsg);
}

int store_hard_state_put(store_txn *txn, const store_hard_state *hs, char *errmsg)
{
    struct store_buf buf;
    int rv = store_record_encode(&store_layout_hard_state, hs,
                                 "record for table meta key \"" HARD_STATE_KEY "\"", &buf,
                                 errmsg);

    if (rv != 0) {
        return rv;
    }
    return store_meta_put(txn, HARD_STATE_KEY, &buf, errmsg);
}

int store_applied_get(store_txn *txn, uint64_t *out, char *errmsg)
{
    int rv = store_meta_get_uint(txn, APPLIED_KEY, out, errmsg);

    if (rv == STORE_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    return rv;
}

int store_applied_put(store_txn *txn, uint64_t index, char *errmsg)
{
    return store_meta_put_uint(txn, APPLIED_KEY, index, errmsg);
}

/* ---- log ---- */

void store_entry_free(store_entry *e)
{
    if (e == NULL) {
        return;
    }
    free(e->data);
    e->data = NULL;
    e->len = 0;
}

static int key_index(const MDB_val *k, uint64_t *out, char *errmsg)
{
    if (k->mv_size != 8) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt key in table log: %zu bytes, expected 8", k->mv_size);
    }
    *out = store_be64_decode(k->mv_data);
    return 0;
}

static bool entry_type_known(uint64_t type)
{
    return type == STORE_ENTRY_NORMAL || type == STORE_ENTRY_EMPTY ||
           type == STORE_ENTRY_MEMBERSHIP;
}

/* Reads the first or last index (op MDB_FIRST or MDB_LAST), 0 for an empty
 * log. */
static int log_edge(store_txn *txn, MDB_cursor_op op, uint64_t *out, char *errmsg)
{
    MDB_cursor *cursor;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn->txn, txn->s->log, &cursor);

    if (rc != 0) {
        return store_txn_error(txn, rc, "open a log cursor", errmsg);
    }
    rc = mdb_cursor_get(cursor, &k, &v, op);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc != 0) {
        return store_txn_error(txn, rc, "read the log bounds", errmsg);
    }
    return key_index(&k, out, errmsg);
}

int store_log_bounds(store_txn *txn, uint64_t *first, uint64_t *last, char *errmsg)
{
    int rv = log_edge(txn, MDB_FIRST, first, errmsg);

    if (rv == 0) {
        rv = log_edge(txn, MDB_LAST, last, errmsg);
    }
    return rv;
}

/* Checks every entry before anything is written, so that a rejected append
 * leaves the transaction as it was and still committable. */
static int check_entries(const store_entry *entries, size_t n, uint64_t last,
                         char *errmsg)
{
    uint64_t expected = last == 0 ? entries[0].index : last + 1;

    for (size_t i = 0; i < n; i++, expected++) {
        const store_entry *e = &entries[i];

        if (e->index == 0 || e->index != expected) {
            return store_error(errmsg, STORE_EINVALID,
                               "cannot append log entry %llu: expected index %llu, the "
                               "one after the last (log indexes start at 1)",
                               (unsigned long long)e->index,
                               (unsigned long long)(expected == 0 ? 1 : expected));
        }
        if (!entry_type_known(e->type)) {
            return store_error(errmsg, STORE_EINVALID,
                               "cannot append log entry %llu: unknown entry type %u",
                               (unsigned long long)e->index, (unsigned)e->type);
        }
        if ((e->data == NULL && e->len > 0) || e->len > UINT32_MAX) {
            return store_error(
                errmsg, STORE_EINVALID,
                "cannot append log entry %llu: data of %zu bytes is missing "
                "or over the 4 GiB msgpack limit",
                (unsigned long long)e->index, e->len);
        }
    }
    return 0;
}

static int encode_entry(const store_entry *e, struct store_buf *out)
{
    msgpack_packer pk;

    store_buf_init(out, &pk);
    if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_uint64(&pk, e->term) != 0 ||
        msgpack_pack_uint64(&pk, e->type) != 0 || msgpack_pack_bin(&pk, e->len) != 0 ||
        msgpack_pack_bin_body(&pk, e->data, e->len) != 0) {
        store_buf_free(out);
        return STORE_ENOMEM;
    }
    return 0;
}

int store_log_append(store_txn *txn, const store_entry *entries, size_t n, char *errmsg)
{
    uint64_t last;
    int rv;

    if (n == 0) {
        return 0;
    }
    rv = log_edge(txn, MDB_LAST, &last, errmsg);
    if (rv == 0) {
        rv = check_entries(entries, n, last, errmsg);
    }
    if (rv != 0) {
        return rv;
    }

    for (size_t i = 0; i < n; i++) {
        unsigned char key[8];
        struct store_buf buf;
        MDB_val k = {sizeof(key), key};
        MDB_val v;
        int rc;

        if (encode_entry(&entries[i], &buf) != 0) {
            return store_error(errmsg, STORE_ENOMEM,
                               "out of memory encoding log entry %llu",
                               (unsigned long long)entries[i].index);
        }
        store_be64_encode(entries[i].index, key);
        v = (MDB_val){buf.len, buf.data};

        /* MDB_APPEND puts at the end of the tree without a search, which is
         * valid because the keys were checked to grow. */
        rc = mdb_put(txn->txn, txn->s->log, &k, &v, MDB_APPEND);
        store_buf_free(&buf);
        if (rc != 0) {
            return store_txn_error(txn, rc, "append to the log", errmsg);
        }
    }
    return 0;
}

int store_log_truncate(store_txn *txn, uint64_t from, char *errmsg)
{
    MDB_cursor *cursor;
    MDB_val k, v;
    uint64_t index = 0;
    int rc = mdb_cursor_open(txn->txn, txn->s->log, &cursor);
    int rv = 0;

    if (rc != 0) {
        return store_txn_error(txn, rc, "open a log cursor", errmsg);
    }

    /* Delete from the end, so that the cursor never has to step past a
     * deleted entry. */
    while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST)) == 0) {
        rv = key_index(&k, &index, errmsg);
        if (rv != 0 || index < from) {
            break;
        }
        rc = mdb_cursor_del(cursor, 0);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cursor);
    if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND) {
        rv = store_txn_error(txn, rc, "truncate the log", errmsg);
    }
    return rv;
}

/* Parses the value of log entry index. On success the caller destroys u,
 * whose fields point into v: fields[0] is the term, fields[1] the entry
 * type and fields[2] the data. */
static int parse_entry(const MDB_val *v, uint64_t index, msgpack_unpacked *u,
                       const msgpack_object **fields, char *errmsg)
{
    const msgpack_object *f;
    int rv = store_msgpack_parse(v->mv_data, v->mv_size, u);

    if (rv == STORE_ENOMEM) {
        return store_error(errmsg, rv, "out of memory reading log entry %llu",
                           (unsigned long long)index);
    }
    if (rv != 0) {
        return store_error(errmsg, rv, "corrupt log entry %llu: not one msgpack value",
                           (unsigned long long)index);
    }
    f = u->data.via.array.ptr;

    /* Elements after the third are for later formats and are skipped. */
    if (u->data.type != MSGPACK_OBJECT_ARRAY || u->data.via.array.size < 3 ||
        f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || !entry_type_known(f[1].via.u64) ||
        f[2].type != MSGPACK_OBJECT_BIN) {
        msgpack_unpacked_destroy(u);
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt log entry %llu: not an array of term, known entry "
                           "type and data",
                           (unsigned long long)index);
    }
    *fields = f;
    return 0;
}

/* Fills out, whose index is set, from value v. */
static int decode_entry(const MDB_val *v, store_entry *out, char *errmsg)
{
    const msgpack_object *fields;
    msgpack_unpacked u;
    int rv = parse_entry(v, out->index, &u, &fields, errmsg);

    if (rv != 0) {
        return rv;
    }
    out->term = fields[0].via.u64;
    out->type = (uint32_t)fields[1].via.u64;
    out->len = fields[2].via.bin.size;
    if (out->len > 0) {
        out->data = malloc(out->len);
        if (out->data == NULL) {
            msgpack_unpacked_destroy(&u);
            out->len = 0;
            return store_error(errmsg, STORE_ENOMEM,
                               "out of memory reading log entry %llu",
                               (unsigned long long)out->index);
        }
        memcpy(out->data, fields[2].via.bin.ptr, out->len);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}

/* Looks up entry index; STORE_ENOTFOUND without a message if it is not in
 * the log. */
static int entry_value(store_txn *txn, uint64_t index, MDB_val *v, char *errmsg)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key};
    int rc;

    store_be64_encode(index, key);
    rc = mdb_get(txn->txn, txn->s->log, &k, v);
    if (rc == MDB_NOTFOUND) {
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        return store_txn_error(txn, rc, "read the log", errmsg);
    }
    return 0;
}

int store_log_get(store_txn *txn, uint64_t index, store_entry *out, char *errmsg)
{
    MDB_val v;
    int rv;

    memset(out, 0, sizeof(*out));
    rv = entry_value(txn, index, &v, errmsg);
    if (rv != 0) {
        return rv;
    }
    out->index = index;
    return decode_entry(&v, out, errmsg);
}

int store_log_term(store_txn *txn, uint64_t index, uint64_t *term, char *errmsg)
{
    const msgpack_object *fields;
    msgpack_unpacked u;
    MDB_val v;
    int rv = entry_value(txn, index, &v, errmsg);

    *term = 0;
    if (rv == 0) {
        rv = parse_entry(&v, index, &u, &fields, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    *term = fields[0].via.u64;
    msgpack_unpacked_destroy(&u);
    return 0;
}

static void free_entries(store_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        store_entry_free(&entries[i]);
    }
}

/* Reads entries from the cursor's current position on, as
 * store_log_range describes. The first has index lo. */
static int read_range(store_txn *txn, MDB_cursor *cursor, uint64_t lo, uint64_t hi,
                      size_t max_bytes, store_entry *out, size_t cap, size_t *n,
                      char *errmsg)
{
    MDB_val k, v;
    size_t bytes = 0;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);

    while (rc == 0 && *n < cap) {
        store_entry *e = &out[*n];
        int rv = key_index(&k, &e->index, errmsg);

        if (rv == 0 && e->index != lo + *n) {
            rv = store_error(
                errmsg, STORE_ECORRUPT, "corrupt table log: entry %llu follows %llu",
                (unsigned long long)e->index, (unsigned long long)(lo + *n - 1));
        }
        if (rv != 0 || e->index >= hi) {
            return rv;
        }
        rv = decode_entry(&v, e, errmsg);
        if (rv != 0) {
            return rv;
        }
        /* bytes exceeds max_bytes only when the first entry alone does. */
        if (*n > 0 && (bytes > max_bytes || e->len > max_bytes - bytes)) {
            store_entry_free(e);
            return 0;
        }
        bytes += e->len;
        (*n)++;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_txn_error(txn, rc, "read the log", errmsg);
    }
    return 0;
}

int store_log_range(store_txn *txn, uint64_t lo, uint64_t hi, size_t max_bytes,
                    store_entry *out, size_t cap, size_t *n, char *errmsg)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key};
    MDB_val v;
    MDB_cursor *cursor;
    int rc;
    int rv;

    *n = 0;
    if (lo >= hi || cap == 0) {
        return store_error(errmsg, STORE_EINVALID,
                           "invalid log range: from %llu up to %llu with room for %zu "
                           "entries; expected a non-empty range and room",
                           (unsigned long long)lo, (unsigned long long)hi, cap);
    }
    memset(out, 0, cap * sizeof(*out));

    rc = mdb_cursor_open(txn->txn, txn->s->log, &cursor);
    if (rc != 0) {
        return store_txn_error(txn, rc, "open a log cursor", errmsg);
    }
    store_be64_encode(lo, key);
    rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
        rv = STORE_ENOTFOUND;
    } else if (rc != 0) {
        rv = store_txn_error(txn, rc, "read the log", errmsg);
    } else {
        rv = read_range(txn, cursor, lo, hi, max_bytes, out, cap, n, errmsg);
    }
    mdb_cursor_close(cursor);
    if (rv != 0) {
        free_entries(out, *n);
        *n = 0;
    }
    return rv;
}

int store_log_compact(store_txn *txn, uint64_t upto, char *errmsg)
{
    MDB_cursor *cursor;
    MDB_val k, v;
    uint64_t index = 0;
    int rc = mdb_cursor_open(txn->txn, txn->s->log, &cursor);
    int rv = 0;

    if (rc != 0) {
        return store_txn_error(txn, rc, "open a log cursor", errmsg);
    }

    /* Each deletion moves the cursor to the next entry, which MDB_FIRST
     * then reads again. */
    while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)) == 0) {
        rv = key_index(&k, &index, errmsg);
        if (rv != 0 || index > upto) {
            break;
        }
        rc = mdb_cursor_del(cursor, 0);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cursor);
    if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND) {
        rv = store_txn_error(txn, rc, "compact the log", errmsg);
    }
    return rv;
}
