/* Receiving a snapshot: its data is staged chunk by chunk in table
 * staging, then checked whole and installed in place of the replicated
 * tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

#define STAGED_KEY "snapshot_staged" /* bytes staged so far */

/* ---- staging ---- */

/* Returns the number of bytes staged, 0 when nothing is. */
static int staged_size(store_txn *txn, uint64_t *out, char *errmsg)
{
    int rv = store_meta_get_uint(txn, STAGED_KEY, out, errmsg);

    if (rv == STORE_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    return rv;
}

static int append_staged(store_txn *txn, uint64_t staged, const unsigned char *data,
                         size_t len, char *errmsg)
{
    struct store_chunk_writer w;
    int rv = store_chunk_writer_init(&w, txn, txn->s->staging, "staging", staged, errmsg);

    if (rv == 0) {
        rv = store_chunk_write(&w, data, len, errmsg);
    }
    if (rv == 0) {
        rv = store_chunk_writer_finish(&w, errmsg);
    }
    store_chunk_writer_free(&w);
    if (rv == 0) {
        rv = store_meta_put_uint(txn, STAGED_KEY, staged + len, errmsg);
    }
    return rv;
}

int store_snapshot_stage(store_txn *txn, uint64_t offset, const unsigned char *data,
                         size_t len, char *errmsg)
{
    uint64_t staged = 0;
    int rc;
    int rv;

    if (data == NULL && len > 0) {
        return store_error(errmsg, STORE_EINVALID,
                           "cannot stage %zu bytes of snapshot data from a NULL buffer",
                           len);
    }
    if (offset != 0) {
        rv = staged_size(txn, &staged, errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    if (offset != staged) {
        return store_error(errmsg, STORE_EINVALID,
                           "cannot stage snapshot data at offset %llu: the staged data "
                           "ends at byte %llu; send the next chunk from there, or start "
                           "again at offset 0",
                           (unsigned long long)offset, (unsigned long long)staged);
    }
    if (len > UINT64_MAX - offset) {
        return store_error(errmsg, STORE_EINVALID,
                           "cannot stage %zu bytes at offset %llu: the size overflows",
                           len, (unsigned long long)offset);
    }

    if (offset == 0) {
        rc = mdb_drop(txn->txn, txn->s->staging, 0);
        if (rc != 0) {
            return store_txn_error(txn, rc, "empty table staging", errmsg);
        }
    }
    rv = append_staged(txn, staged, data, len, errmsg);
    return rv == 0 ? 0 : store_txn_fail(txn, rv);
}

/* ---- walking the staged data ---- */

/* Called for each row of the staged data; a non-zero return stops the
 * walk. k and v point into a buffer that stays valid during the call. */
typedef int (*row_fn)(store_txn *txn, size_t table, const MDB_val *k, const MDB_val *v,
                      void *arg, char *errmsg);

struct walk {
    struct store_chunk_reader r;
    uint64_t at; /* offset of the current frame, for messages */
    msgpack_unpacked u;
    bool parsed; /* u contains a value to destroy */
};

static int corrupt(const struct walk *w, const char *detail, char *errmsg)
{
    return store_error(errmsg, STORE_ECORRUPT,
                       "corrupt staged data: the frame at byte %llu %s",
                       (unsigned long long)w->at, detail);
}

/* Reads and parses the next frame into w->u. */
static int next_frame(struct walk *w, char *errmsg)
{
    const unsigned char *frame;
    size_t len;
    int rv;

    if (w->parsed) {
        msgpack_unpacked_destroy(&w->u);
        w->parsed = false;
    }
    w->at = w->r.offset;
    rv = store_chunk_read_frame(&w->r, STORE_SNAPSHOT_FRAME_MAX, &frame, &len, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = store_msgpack_parse(frame, len, &w->u);
    if (rv == STORE_ENOMEM) {
        return store_error(errmsg, rv, "out of memory reading a staged snapshot");
    }
    if (rv != 0) {
        return corrupt(w, "is not one msgpack value", errmsg);
    }
    w->parsed = true;
    return 0;
}

static bool is_str(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Matches [name, unsigned integer], the shape of the header and trailer. */
static bool is_mark(const msgpack_object *o, const char *name)
{
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
           is_str(&o->via.array.ptr[0], name) &&
           o->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static int check_header(struct walk *w, char *errmsg)
{
    char detail[128];
    uint64_t version;
    int rv = next_frame(w, errmsg);

    if (rv != 0) {
        return rv;
    }
    if (!is_mark(&w->u.data, STORE_SNAPSHOT_MAGIC)) {
        return corrupt(w, "is not the header [\"" STORE_SNAPSHOT_MAGIC "\", version]",
                       errmsg);
    }
    version = w->u.data.via.array.ptr[1].via.u64;
    if (version != STORE_SNAPSHOT_VERSION) {
        snprintf(detail, sizeof(detail),
                 "names format version %llu, but this build reads %d",
                 (unsigned long long)version, STORE_SNAPSHOT_VERSION);
        return corrupt(w, detail, errmsg);
    }
    return 0;
}

/* Finds the replicated table that row o names and its key and value. */
static int split_row(const struct walk *w, size_t *table, MDB_val *k, MDB_val *v,
                     char *errmsg)
{
    const msgpack_object *o = &w->u.data;
    const msgpack_object *f = o->via.array.ptr;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3 ||
        f[1].type != MSGPACK_OBJECT_BIN || f[2].type != MSGPACK_OBJECT_BIN) {
        return corrupt(w, "is not a row [table, key, value] or the trailer", errmsg);
    }
    for (*table = 0; *table < STORE_REPLICATED_COUNT; (*table)++) {
        if (is_str(&f[0], store_replicated_tables[*table].name)) {
            *k = (MDB_val){f[1].via.bin.size, (void *)f[1].via.bin.ptr};
            *v = (MDB_val){f[2].via.bin.size, (void *)f[2].via.bin.ptr};
            return 0;
        }
    }
    return corrupt(w, "names no replicated table", errmsg);
}

/* Walks every row of the size bytes staged, checking the header, the
 * trailer's row count and that nothing follows it. */
static int walk_staged(store_txn *txn, uint64_t size, row_fn fn, void *arg, char *errmsg)
{
    struct walk w = {.parsed = false};
    uint64_t rows = 0;
    int rv =
        store_chunk_reader_init(&w.r, txn, txn->s->staging, "staging", size, 0, errmsg);

    if (rv == 0) {
        rv = check_header(&w, errmsg);
    }
    while (rv == 0) {
        size_t table;
        MDB_val k, v;

        if (w.r.offset == size) {
            rv = store_error(errmsg, STORE_ECORRUPT,
                             "corrupt staged data: it ends at byte %llu without the "
                             "trailer",
                             (unsigned long long)size);
            break;
        }
        rv = next_frame(&w, errmsg);
        if (rv != 0 || is_mark(&w.u.data, STORE_SNAPSHOT_END)) {
            break;
        }
        rv = split_row(&w, &table, &k, &v, errmsg);
        if (rv == 0) {
            rv = fn(txn, table, &k, &v, arg, errmsg);
        }
        rows++;
    }
    if (rv == 0 && w.u.data.via.array.ptr[1].via.u64 != rows) {
        rv = corrupt(&w, "is a trailer whose row count differs from the rows before it",
                     errmsg);
    }
    if (rv == 0 && w.r.offset != size) {
        rv = corrupt(&w, "is a trailer followed by more data", errmsg);
    }
    if (w.parsed) {
        msgpack_unpacked_destroy(&w.u);
    }
    store_chunk_reader_free(&w.r);
    return rv;
}

/* ---- checking, then replacing ---- */

/* The order of rows so far: LMDB's default key order within a table, which
 * compares bytes and puts a prefix first. */
struct order {
    bool any;
    size_t table;
    unsigned char key[512];
    size_t len;
};

static int compare_keys(const MDB_val *a, const unsigned char *b, size_t blen)
{
    size_t n = a->mv_size < blen ? a->mv_size : blen;
    int c = memcmp(a->mv_data, b, n);

    if (c != 0) {
        return c;
    }
    return a->mv_size < blen ? -1 : a->mv_size > blen;
}

/* Checks that a row decodes and follows the one before it, so that the
 * second pass can append it. */
static int check_row(store_txn *txn, size_t table, const MDB_val *k, const MDB_val *v,
                     void *arg, char *errmsg)
{
    struct order *o = arg;
    int rv = store_row_check(table, k, v, errmsg);

    if (rv != 0) {
        return rv;
    }

    /* store_row_check bounds every key well below sizeof(o->key). */
    if (o->any && (table < o->table ||
                   (table == o->table && compare_keys(k, o->key, o->len) <= 0))) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt staged data: a row of table %s is out of order or "
                           "repeated",
                           store_replicated_tables[table].name);
    }
    o->any = true;
    o->table = table;
    memcpy(o->key, k->mv_data, k->mv_size);
    o->len = k->mv_size;
    return 0;
}

static MDB_dbi table_dbi(store_txn *txn, size_t table)
{
    return *(const MDB_dbi *)((const char *)txn->s +
                              store_replicated_tables[table].dbi_offset);
}

static int put_row(store_txn *txn, size_t table, const MDB_val *k, const MDB_val *v,
                   void *arg, char *errmsg)
{
    char action[64];
    MDB_val key = *k;
    MDB_val value = *v;

    /* check_row made sure that keys ascend, which MDB_APPEND needs. */
    int rc = mdb_put(txn->txn, table_dbi(txn, table), &key, &value, MDB_APPEND);

    (void)arg;
    if (rc != 0) {
        snprintf(action, sizeof(action), "write table %s",
                 store_replicated_tables[table].name);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

/* Empties a table of this store. */
static int empty_table(store_txn *txn, MDB_dbi dbi, const char *name, char *errmsg)
{
    char action[64];
    int rc = mdb_drop(txn->txn, dbi, 0);

    if (rc != 0) {
        snprintf(action, sizeof(action), "empty table %s", name);
        return store_txn_error(txn, rc, action, errmsg);
    }
    return 0;
}

/* Replaces the tables with the checked staged data and makes it the
 * current snapshot. */
static int replace(store_txn *txn, const store_snapshot_meta *meta, char *errmsg)
{
    int rv = 0;

    for (size_t i = 0; rv == 0 && i < STORE_REPLICATED_COUNT; i++) {
        rv = empty_table(txn, table_dbi(txn, i), store_replicated_tables[i].name, errmsg);
    }
    if (rv == 0) {
        rv = walk_staged(txn, meta->size, put_row, NULL, errmsg);
    }
    if (rv == 0) {
        rv = store_chunk_copy(txn, txn->s->staging, "staging", txn->s->snapshot,
                              "snapshot", meta->size, errmsg);
    }
    if (rv == 0) {
        rv = empty_table(txn, txn->s->staging, "staging", errmsg);
    }
    if (rv == 0) {
        rv = store_meta_delete(txn, STAGED_KEY, errmsg);
    }
    if (rv == 0) {
        rv = store_snapshot_meta_put(txn, meta, errmsg);
    }
    if (rv == 0) {
        rv = store_applied_put(txn, meta->index, errmsg);
    }
    if (rv == 0) {
        rv = empty_table(txn, txn->s->log, "log", errmsg);
    }
    return rv;
}

int store_snapshot_install(store_txn *txn, const store_snapshot_meta *meta, char *errmsg)
{
    struct order order = {.any = false};
    uint64_t staged;
    int rv = store_snapshot_meta_check(meta, errmsg);

    if (rv == 0) {
        rv = staged_size(txn, &staged, errmsg);
    }
    if (rv == 0 && staged != meta->size) {
        rv = store_error(errmsg, STORE_ECORRUPT,
                         "%llu bytes are staged, but the snapshot has %llu; stage all of "
                         "it from offset 0",
                         (unsigned long long)staged, (unsigned long long)meta->size);
    }

    /* The first pass only reads, so a failure leaves everything as it was. */
    if (rv == 0) {
        rv = walk_staged(txn, meta->size, check_row, &order, errmsg);
    }
    if (rv != 0) {
        return store_error_prefix(errmsg, rv, "cannot install snapshot %llu",
                                  (unsigned long long)meta->index);
    }

    /* The second pass decodes the same bytes again, so it can fail only in
     * LMDB or for memory. Its writes are then half done, and the
     * transaction must not commit. */
    rv = replace(txn, meta, errmsg);
    if (rv != 0) {
        store_txn_fail(txn, rv);
        return store_error_prefix(errmsg, rv, "cannot install snapshot %llu",
                                  (unsigned long long)meta->index);
    }
    return 0;
}
