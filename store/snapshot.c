/* Snapshots: their metadata in table meta, taking one from the replicated
 * tables into table snapshot, and reading its data back in pieces for a
 * follower. The data format is described in internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

#define META_KEY   "snapshot"
#define META_WHERE "record in table meta key \"" META_KEY "\""

/* Upper bound of the encoded Raft configuration. A configuration lists a
 * few managers with an id and an address each, so real ones stay far
 * below it. */
#define CONFIG_MAX (64 * 1024)

/* ---- metadata ---- */

static int config_check(const void *rec, const char *where, char *errmsg)
{
    const store_snapshot_meta *meta = rec;

    if (meta->config == NULL && meta->config_len > 0) {
        return store_error(errmsg, STORE_EINVALID,
                           "invalid %s: config is NULL but config_len is %zu", where,
                           meta->config_len);
    }
    if (meta->config_len > CONFIG_MAX) {
        return store_error(errmsg, STORE_EINVALID,
                           "invalid %s: the configuration is %zu bytes, max %d", where,
                           meta->config_len, CONFIG_MAX);
    }
    return 0;
}

static int config_pack(msgpack_packer *pk, const void *rec)
{
    const store_snapshot_meta *meta = rec;

    if (msgpack_pack_bin(pk, meta->config_len) != 0) {
        return -1;
    }
    return msgpack_pack_bin_body(pk, meta->config, meta->config_len);
}

static int config_unpack(const msgpack_object *o, void *rec, const char *where,
                         char *errmsg)
{
    store_snapshot_meta *meta = rec;

    if (o->type != MSGPACK_OBJECT_BIN) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"config\" is not a byte string", where);
    }
    if (o->via.bin.size > CONFIG_MAX) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt %s: field \"config\" is %u bytes, max %d", where,
                           o->via.bin.size, CONFIG_MAX);
    }
    if (o->via.bin.size == 0) {
        return 0;
    }
    meta->config = malloc(o->via.bin.size);
    if (meta->config == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory decoding %s", where);
    }
    memcpy(meta->config, o->via.bin.ptr, o->via.bin.size);
    meta->config_len = o->via.bin.size;
    return 0;
}

static void config_release(void *rec)
{
    store_snapshot_meta *meta = rec;

    free(meta->config);
    meta->config = NULL;
    meta->config_len = 0;
}

static const struct store_custom config_codec = {config_check, config_pack, config_unpack,
                                                 config_release};

static const struct store_field meta_fields[] = {
    STORE_FIELD(store_snapshot_meta, "index", index, STORE_FIELD_U64),
    STORE_FIELD(store_snapshot_meta, "term", term, STORE_FIELD_U64),
    STORE_FIELD_CODEC("config", &config_codec),
    STORE_FIELD(store_snapshot_meta, "size", size, STORE_FIELD_U64),
};
static const struct store_layout meta_layout =
    STORE_LAYOUT(store_snapshot_meta, meta_fields);

void store_snapshot_meta_free(store_snapshot_meta *meta)
{
    if (meta != NULL) {
        store_record_free(&meta_layout, meta);
    }
}

int store_snapshot_meta_check(const store_snapshot_meta *meta, char *errmsg)
{
    return store_record_check(&meta_layout, meta, "snapshot metadata", errmsg);
}

int store_snapshot_meta_get(store_txn *txn, store_snapshot_meta *out, char *errmsg)
{
    MDB_val v;
    int rv = store_meta_get(txn, META_KEY, &v, errmsg);

    memset(out, 0, sizeof(*out));
    if (rv != 0) {
        return rv;
    }
    return store_record_decode(&meta_layout, v.mv_data, v.mv_size, out, META_WHERE,
                               errmsg);
}

int store_snapshot_meta_put(store_txn *txn, const store_snapshot_meta *meta, char *errmsg)
{
    struct store_buf buf;
    int rv = store_record_encode(&meta_layout, meta, META_WHERE, &buf, errmsg);

    if (rv != 0) {
        return rv;
    }
    return store_meta_put(txn, META_KEY, &buf, errmsg);
}

/* ---- taking ---- */

/* Writes the frame in buf, then empties buf for the next one. */
static int write_frame(struct store_chunk_writer *w, struct store_buf *buf, char *errmsg)
{
    unsigned char prefix[4];
    size_t len = buf->len;
    int rv;

    buf->len = 0;
    if (len > STORE_SNAPSHOT_FRAME_MAX) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "a row is %zu bytes, over the frame limit of %d", len,
                           STORE_SNAPSHOT_FRAME_MAX);
    }
    prefix[0] = (unsigned char)(len >> 24);
    prefix[1] = (unsigned char)(len >> 16);
    prefix[2] = (unsigned char)(len >> 8);
    prefix[3] = (unsigned char)len;
    rv = store_chunk_write(w, prefix, sizeof(prefix), errmsg);
    if (rv == 0) {
        rv = store_chunk_write(w, buf->data, len, errmsg);
    }
    return rv;
}

/* Packs [s, n] for the header and the trailer. */
static int pack_mark(msgpack_packer *pk, const char *s, uint64_t n)
{
    size_t len = strlen(s);

    if (msgpack_pack_array(pk, 2) != 0 || msgpack_pack_str(pk, len) != 0 ||
        msgpack_pack_str_body(pk, s, len) != 0) {
        return -1;
    }
    return msgpack_pack_uint64(pk, n);
}

static int pack_row(msgpack_packer *pk, const char *table, const MDB_val *k,
                    const MDB_val *v)
{
    size_t len = strlen(table);

    if (msgpack_pack_array(pk, 3) != 0 || msgpack_pack_str(pk, len) != 0 ||
        msgpack_pack_str_body(pk, table, len) != 0 ||
        msgpack_pack_bin(pk, k->mv_size) != 0 ||
        msgpack_pack_bin_body(pk, k->mv_data, k->mv_size) != 0 ||
        msgpack_pack_bin(pk, v->mv_size) != 0) {
        return -1;
    }
    return msgpack_pack_bin_body(pk, v->mv_data, v->mv_size);
}

/* The state of a snapshot being taken. */
struct taking {
    store_txn *txn;
    struct store_chunk_writer w;
    struct store_buf buf; /* the frame being packed */
    msgpack_packer pk;
    uint64_t rows;
};

/* Checks every row of table t and writes it as a frame. Each row is packed
 * into buf before the next write to the transaction, which may move the
 * bytes the cursor returned. */
static int take_table(struct taking *t, size_t table, char *errmsg)
{
    const struct store_replicated *r = &store_replicated_tables[table];
    MDB_dbi dbi = *(const MDB_dbi *)((const char *)t->txn->s + r->dbi_offset);
    MDB_cursor *cursor;
    MDB_val k, v;
    char action[64];
    int rv = 0;
    int rc = mdb_cursor_open(t->txn->txn, dbi, &cursor);

    snprintf(action, sizeof(action), "read table %s", r->name);
    if (rc != 0) {
        return store_txn_error(t->txn, rc, action, errmsg);
    }
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
        rv = store_row_check(table, &k, &v, errmsg);
        if (rv == 0 && pack_row(&t->pk, r->name, &k, &v) != 0) {
            rv = store_error(errmsg, STORE_ENOMEM, "out of memory taking a snapshot");
        }
        if (rv == 0) {
            rv = write_frame(&t->w, &t->buf, errmsg);
        }
        if (rv != 0) {
            break;
        }
        t->rows++;
    }
    mdb_cursor_close(cursor);
    if (rv == 0 && rc != MDB_NOTFOUND) {
        rv = store_txn_error(t->txn, rc, action, errmsg);
    }
    return rv;
}

/* Writes the header, every row and the trailer. */
static int take_all(struct taking *t, char *errmsg)
{
    int rv = 0;

    if (pack_mark(&t->pk, STORE_SNAPSHOT_MAGIC, STORE_SNAPSHOT_VERSION) != 0) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory taking a snapshot");
    }
    rv = write_frame(&t->w, &t->buf, errmsg);
    for (size_t i = 0; rv == 0 && i < STORE_REPLICATED_COUNT; i++) {
        rv = take_table(t, i, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    if (pack_mark(&t->pk, STORE_SNAPSHOT_END, t->rows) != 0) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory taking a snapshot");
    }
    rv = write_frame(&t->w, &t->buf, errmsg);
    if (rv == 0) {
        rv = store_chunk_writer_finish(&t->w, errmsg);
    }
    return rv;
}

int store_snapshot_take(store_txn *txn, uint64_t index, uint64_t term,
                        const unsigned char *config, size_t config_len, char *errmsg)
{
    store_snapshot_meta meta = {index, term, (unsigned char *)config, config_len, 0};
    struct taking t;
    int rc;
    int rv = store_snapshot_meta_check(&meta, errmsg);

    if (rv != 0) {
        return rv;
    }
    rc = mdb_drop(txn->txn, txn->s->snapshot, 0);
    if (rc != 0) {
        return store_txn_error(txn, rc, "empty table snapshot", errmsg);
    }

    memset(&t, 0, sizeof(t));
    t.txn = txn;
    store_buf_init(&t.buf, &t.pk);
    rv = store_chunk_writer_init(&t.w, txn, txn->s->snapshot, "snapshot", 0, errmsg);
    if (rv == 0) {
        rv = take_all(&t, errmsg);
    }
    meta.size = t.w.total;
    store_chunk_writer_free(&t.w);
    store_buf_free(&t.buf);
    if (rv == 0) {
        rv = store_snapshot_meta_put(txn, &meta, errmsg);
    }

    /* The old snapshot's data is gone, so committing now would leave its
     * metadata pointing at nothing. */
    if (rv != 0) {
        store_txn_fail(txn, rv);
        return store_error_prefix(errmsg, rv, "cannot take snapshot %llu",
                                  (unsigned long long)index);
    }
    return 0;
}

/* ---- reading ---- */

int store_snapshot_read(store_txn *txn, uint64_t index, uint64_t offset,
                        unsigned char *buf, size_t len, char *errmsg)
{
    store_snapshot_meta meta;
    struct store_chunk_reader r;
    int rv = store_snapshot_meta_get(txn, &meta, errmsg);

    if (rv != 0) {
        return rv;
    }
    if (meta.index != index) {
        store_snapshot_meta_free(&meta);
        return STORE_ENOTFOUND;
    }
    if (offset > meta.size || len > meta.size - offset) {
        rv = store_error(errmsg, STORE_EINVALID,
                         "cannot read %zu bytes at offset %llu of snapshot %llu: it has "
                         "%llu bytes",
                         len, (unsigned long long)offset, (unsigned long long)index,
                         (unsigned long long)meta.size);
    }
    if (rv == 0 && len > 0) {
        rv = store_chunk_reader_init(&r, txn, txn->s->snapshot, "snapshot", meta.size,
                                     offset, errmsg);
        if (rv == 0) {
            rv = store_chunk_read(&r, buf, len, errmsg);
        }
        store_chunk_reader_free(&r);
    }
    store_snapshot_meta_free(&meta);
    return rv;
}
