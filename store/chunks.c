/* Byte streams stored as fixed-size chunks in a table, with a reader of
 * length-prefixed frames. Snapshot data is such a stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

/* Buffers hold snapshot data, which contains the signer key, so they are
 * wiped before they are freed. */
static void free_wiped(unsigned char *p, size_t n)
{
    if (p != NULL) {
        explicit_bzero(p, n);
        free(p);
    }
}

/* Reads chunk n, which must hold expected bytes, into buf. */
static int load_chunk(store_txn *txn, MDB_dbi dbi, const char *table, uint64_t n,
                      size_t expected, unsigned char *buf, char *errmsg)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key};
    MDB_val v;
    char action[64];
    int rc;

    store_be64_encode(n, key);
    rc = mdb_get(txn->txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt table %s: chunk %llu of the snapshot data is missing",
                           table, (unsigned long long)n);
    }
    if (rc != 0) {
        snprintf(action, sizeof(action), "read table %s", table);
        return store_txn_error(txn, rc, action, errmsg);
    }
    if (v.mv_size != expected) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt table %s: chunk %llu of the snapshot data is %zu "
                           "bytes, expected %zu",
                           table, (unsigned long long)n, v.mv_size, expected);
    }
    memcpy(buf, v.mv_data, expected);
    return 0;
}

/* ---- writing ---- */

int store_chunk_writer_init(struct store_chunk_writer *w, store_txn *txn, MDB_dbi dbi,
                            const char *table, uint64_t size, char *errmsg)
{
    size_t partial = (size_t)(size % STORE_CHUNK_SIZE);

    *w = (struct store_chunk_writer){txn, dbi, table, NULL, 0, size};
    w->chunk = malloc(STORE_CHUNK_SIZE);
    if (w->chunk == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory writing table %s", table);
    }
    if (partial > 0) {
        w->fill = partial;
        return load_chunk(txn, dbi, table, size / STORE_CHUNK_SIZE, partial, w->chunk,
                          errmsg);
    }
    return 0;
}

static int flush_chunk(struct store_chunk_writer *w, char *errmsg)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key};
    MDB_val v = {w->fill, w->chunk};
    char action[64];
    int rc;

    if (w->fill == 0) {
        return 0;
    }

    /* The chunk starts at total - fill, a multiple of the chunk size. A
     * partial chunk read back by init is overwritten in place. */
    store_be64_encode((w->total - w->fill) / STORE_CHUNK_SIZE, key);
    rc = mdb_put(w->txn->txn, w->dbi, &k, &v, 0);
    if (rc != 0) {
        snprintf(action, sizeof(action), "write table %s", w->table);
        return store_txn_error(w->txn, rc, action, errmsg);
    }
    w->fill = 0;
    return 0;
}

int store_chunk_write(struct store_chunk_writer *w, const void *data, size_t len,
                      char *errmsg)
{
    const unsigned char *p = data;

    while (len > 0) {
        size_t n = STORE_CHUNK_SIZE - w->fill;

        if (n > len) {
            n = len;
        }
        memcpy(w->chunk + w->fill, p, n);
        w->fill += n;
        w->total += n;
        p += n;
        len -= n;
        if (w->fill == STORE_CHUNK_SIZE) {
            int rv = flush_chunk(w, errmsg);

            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

int store_chunk_writer_finish(struct store_chunk_writer *w, char *errmsg)
{
    return flush_chunk(w, errmsg);
}

void store_chunk_writer_free(struct store_chunk_writer *w)
{
    free_wiped(w->chunk, STORE_CHUNK_SIZE);
    w->chunk = NULL;
}

/* ---- reading ---- */

int store_chunk_reader_init(struct store_chunk_reader *r, store_txn *txn, MDB_dbi dbi,
                            const char *table, uint64_t size, uint64_t offset,
                            char *errmsg)
{
    memset(r, 0, sizeof(*r));
    r->txn = txn;
    r->dbi = dbi;
    r->table = table;
    r->size = size;
    r->offset = offset;
    r->chunk = malloc(STORE_CHUNK_SIZE);
    if (r->chunk == NULL) {
        return store_error(errmsg, STORE_ENOMEM, "out of memory reading table %s", table);
    }
    return 0;
}

static int ends_early(const struct store_chunk_reader *r, char *errmsg)
{
    return store_error(errmsg, STORE_ECORRUPT,
                       "corrupt snapshot data in table %s: it ends at byte %llu, inside "
                       "a frame",
                       r->table, (unsigned long long)r->size);
}

int store_chunk_read(struct store_chunk_reader *r, void *dst, size_t len, char *errmsg)
{
    unsigned char *p = dst;

    if (r->offset > r->size || len > r->size - r->offset) {
        return ends_early(r, errmsg);
    }
    while (len > 0) {
        uint64_t n = r->offset / STORE_CHUNK_SIZE;
        size_t pos = (size_t)(r->offset % STORE_CHUNK_SIZE);
        size_t take;

        if (r->chunk_len == 0 || r->chunk_no != n) {
            uint64_t left = r->size - n * STORE_CHUNK_SIZE;
            size_t expected = left < STORE_CHUNK_SIZE ? (size_t)left : STORE_CHUNK_SIZE;
            int rv = load_chunk(r->txn, r->dbi, r->table, n, expected, r->chunk, errmsg);

            if (rv != 0) {
                r->chunk_len = 0;
                return rv;
            }
            r->chunk_no = n;
            r->chunk_len = expected;
        }
        take = r->chunk_len - pos < len ? r->chunk_len - pos : len;
        memcpy(p, r->chunk + pos, take);
        p += take;
        len -= take;
        r->offset += take;
    }
    return 0;
}

int store_chunk_read_frame(struct store_chunk_reader *r, size_t max,
                           const unsigned char **frame, size_t *len, char *errmsg)
{
    unsigned char prefix[4];
    uint32_t n;
    int rv = store_chunk_read(r, prefix, sizeof(prefix), errmsg);

    if (rv != 0) {
        return rv;
    }
    n = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 | (uint32_t)prefix[2] << 8 |
        prefix[3];
    if (n > max) {
        return store_error(errmsg, STORE_ECORRUPT,
                           "corrupt snapshot data in table %s: the frame at byte %llu is "
                           "%u bytes, max %zu",
                           r->table, (unsigned long long)(r->offset - 4), (unsigned)n,
                           max);
    }

    /* Grow only after checking the length against the bytes left, so a
     * damaged length cannot make the reader allocate more than the stream
     * holds. */
    if (n > r->size - r->offset) {
        return ends_early(r, errmsg);
    }
    if (n > r->frame_cap) {
        unsigned char *bigger = malloc(n);

        if (bigger == NULL) {
            return store_error(errmsg, STORE_ENOMEM, "out of memory reading table %s",
                               r->table);
        }
        free_wiped(r->frame, r->frame_cap);
        r->frame = bigger;
        r->frame_cap = n;
    }
    rv = store_chunk_read(r, r->frame, n, errmsg);
    *frame = r->frame;
    *len = n;
    return rv;
}

void store_chunk_reader_free(struct store_chunk_reader *r)
{
    free_wiped(r->chunk, STORE_CHUNK_SIZE);
    free_wiped(r->frame, r->frame_cap);
    r->chunk = NULL;
    r->frame = NULL;
    r->frame_cap = 0;
}

int store_chunk_copy(store_txn *txn, MDB_dbi src, const char *src_table, MDB_dbi dst,
                     const char *dst_table, uint64_t size, char *errmsg)
{
    struct store_chunk_reader r;
    struct store_chunk_writer w;
    char action[64];
    int rc = mdb_drop(txn->txn, dst, 0);
    int rv;

    memset(&r, 0, sizeof(r));
    memset(&w, 0, sizeof(w));
    if (rc != 0) {
        snprintf(action, sizeof(action), "empty table %s", dst_table);
        return store_txn_error(txn, rc, action, errmsg);
    }
    rv = store_chunk_reader_init(&r, txn, src, src_table, size, 0, errmsg);
    if (rv == 0) {
        rv = store_chunk_writer_init(&w, txn, dst, dst_table, 0, errmsg);
    }

    /* Each chunk is read straight into the writer's empty buffer, so its
     * bytes are out of LMDB before the write that could move them. */
    while (rv == 0 && r.offset < size) {
        uint64_t left = size - r.offset;
        size_t n = left < STORE_CHUNK_SIZE ? (size_t)left : STORE_CHUNK_SIZE;

        rv = store_chunk_read(&r, w.chunk, n, errmsg);
        if (rv == 0) {
            w.fill = n;
            w.total += n;
            rv = store_chunk_writer_finish(&w, errmsg);
        }
    }
    store_chunk_reader_free(&r);
    store_chunk_writer_free(&w);
    return rv;
}
