/* Private to store/: the handles behind store and store_txn, the error
 * helpers and the msgpack record codec that the files of this module
 * share. */
#ifndef SWARMPKI_STORE_INTERNAL_H
#define SWARMPKI_STORE_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <lmdb.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include <store/store.h>

/* Upper bound, in bytes, of one PEM text in a record. A trust bundle
 * contains two roots during a rotation and a certificate PEM a short chain,
 * so real values stay far below it. */
#define STORE_PEM_MAX (64 * 1024)

struct store {
    MDB_env *env;
    MDB_dbi meta;         /* format version, Raft hard state, applied index */
    MDB_dbi log;          /* 8-byte big-endian index -> [term, type, data] */
    MDB_dbi cluster;      /* "cluster" -> the cluster record */
    MDB_dbi nodes;        /* node id -> node record */
    MDB_dbi certs;        /* serial -> certificate record */
    MDB_dbi certs_by_key; /* 32-byte public-key hash -> {serial} */
    MDB_dbi removed;      /* node id -> {prune_after} */
    MDB_dbi snapshot;     /* 8-byte big-endian chunk number -> snapshot data */
    MDB_dbi staging;      /* the same for a snapshot being received */
    char path[PATH_MAX];  /* the data file, for messages */
};

struct store_txn {
    MDB_txn *txn;
    store *s;
    int failed; /* STORE_E* code of an earlier LMDB failure, 0 if none */
};

/* Writes a formatted message to errmsg (when not NULL) and returns code. */
int store_error(char *errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts a formatted context and ": " before the message in errmsg (when
 * not NULL) and returns code. */
int store_error_prefix(char *errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Translates LMDB or errno code rc, returned while doing action on store s,
 * into a STORE_E* code and writes a message naming the file. */
int store_lmdb_error(const store *s, int rc, const char *action, char *errmsg);

/* Same as store_lmdb_error, and marks the transaction failed, because LMDB
 * accepts no further writes in a transaction after such an error. */
int store_txn_error(store_txn *txn, int rc, const char *action, char *errmsg);

/* Marks the transaction failed with code, which it returns, so that
 * store_txn_commit refuses it. For a write that stopped halfway for a
 * reason LMDB does not know of, such as bad data. */
int store_txn_fail(store_txn *txn, int code);

/* Reads a meta key whose value is one unsigned integer; STORE_ENOTFOUND when the key
 * is missing. */
int store_meta_get_uint(store_txn *txn, const char *key, uint64_t *out, char *errmsg);
int store_meta_put_uint(store_txn *txn, const char *key, uint64_t value, char *errmsg);

struct store_buf;

/* Reads or writes the raw value of a meta key. A value read stays valid
 * until the next write in txn. get returns STORE_ENOTFOUND for a missing
 * key; put frees buf. */
int store_meta_get(store_txn *txn, const char *key, MDB_val *v, char *errmsg);
int store_meta_put(store_txn *txn, const char *key, struct store_buf *buf, char *errmsg);

/* Deletes a meta key; a missing key is not an error. */
int store_meta_delete(store_txn *txn, const char *key, char *errmsg);

/* The 8-byte big-endian keys of the log and snapshot tables, whose byte
 * order is then the numeric order. */
static inline void store_be64_encode(uint64_t value, unsigned char key[8])
{
    for (int i = 7; i >= 0; i--) {
        key[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

static inline uint64_t store_be64_decode(const unsigned char key[8])
{
    uint64_t value = 0;

    for (int i = 0; i < 8; i++) {
        value = (value << 8) | key[i];
    }
    return value;
}

/* ---- msgpack buffers ---- */

/* A growable byte buffer that a msgpack packer writes to. It wipes every
 * block it lets go of, because records may carry the signer key. */
struct store_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
};

void store_buf_init(struct store_buf *b, msgpack_packer *pk);
void store_buf_free(struct store_buf *b);

/* Parses data as exactly one msgpack value. Returns 0, STORE_ECORRUPT for
 * bytes that are not one complete value, or STORE_ENOMEM; writes no
 * message. On success the caller destroys out, whose strings point into
 * data. */
int store_msgpack_parse(const void *data, size_t len, msgpack_unpacked *out);

int store_uint_encode(uint64_t value, struct store_buf *out);

/* Decodes one msgpack unsigned integer; STORE_ECORRUPT without a message on
 * anything else. */
int store_uint_decode(const void *data, size_t len, uint64_t *out);

/* ---- records: C structs described by field tables, stored as msgpack maps ---- */

enum store_field_kind {
    STORE_FIELD_STR,     /* char[size]: at most size - 1 bytes, no NUL inside */
    STORE_FIELD_PEM,     /* char *: NULL (msgpack nil) or at most STORE_PEM_MAX bytes */
    STORE_FIELD_KEY_PEM, /* as STORE_FIELD_PEM, and wiped before it is freed */
    STORE_FIELD_I64,     /* int64_t */
    STORE_FIELD_U64,     /* uint64_t */
    STORE_FIELD_U32,     /* uint32_t */
    STORE_FIELD_ROLE,    /* int: STORE_ROLE_WORKER or STORE_ROLE_MANAGER */
    STORE_FIELD_HASH,    /* unsigned char[32], a msgpack bin of 32 bytes */
    STORE_FIELD_RECORD,  /* a nested struct described by sub */
    STORE_FIELD_ID,      /* as STORE_FIELD_STR, and not empty */
    STORE_FIELD_STATUS,  /* int: one of STORE_STATUS_* */
    STORE_FIELD_CUSTOM,  /* coded by the callbacks of custom */
};

struct store_layout;

/* The codec of a field whose value spans several members of its record or
 * owns memory of a shape the other kinds do not cover. Each callback gets
 * the whole record:
 * - check returns 0, or STORE_EINVALID with a message "invalid <where>: ...";
 * - pack returns 0, or -1 when out of memory;
 * - unpack returns 0, STORE_ENOMEM, or STORE_ECORRUPT with a message
 *   "corrupt <where>: ...", and may leave memory behind on failure;
 * - release frees that memory or a decoded value and zeroes the members. */
struct store_custom {
    int (*check)(const void *rec, const char *where, char *errmsg);
    int (*pack)(msgpack_packer *pk, const void *rec);
    int (*unpack)(const msgpack_object *o, void *rec, const char *where, char *errmsg);
    void (*release)(void *rec);
};

struct store_field {
    const char *name; /* the msgpack map key: part of the on-disk format */
    enum store_field_kind kind;
    size_t offset;
    size_t size;
    const struct store_layout *sub;    /* for STORE_FIELD_RECORD */
    const struct store_custom *custom; /* for STORE_FIELD_CUSTOM */
    bool optional; /* missing decodes as zero: records from before the field lack it */
};

/* A record is a msgpack map from field name to value. Decoding skips keys
 * it does not know, so a record written by a later format that added
 * fields still reads. Every field listed here must be present unless it is
 * optional. */
struct store_layout {
    const struct store_field *fields;
    size_t n; /* at most 32 */
    size_t size;
};

/* A field table entry for member of struct type, stored under map key key. */
#define STORE_FIELD(type, key, member, field_kind)                                       \
    {                                                                                    \
        .name = key, .kind = field_kind, .offset = offsetof(type, member),               \
        .size = sizeof(((type *)0)->member)                                              \
    }

/* The same for a field that records written by an earlier version lack. */
#define STORE_FIELD_OPTIONAL(type, key, member, field_kind)                              \
    {                                                                                    \
        .name = key, .kind = field_kind, .offset = offsetof(type, member),               \
        .size = sizeof(((type *)0)->member), .optional = true                            \
    }

/* A nested record: member of struct type, described by layout. */
#define STORE_FIELD_SUB(type, key, member, layout)                                       \
    {                                                                                    \
        .name = key, .kind = STORE_FIELD_RECORD, .offset = offsetof(type, member),       \
        .size = sizeof(((type *)0)->member), .sub = layout                               \
    }

/* A field coded by the callbacks codec. */
#define STORE_FIELD_CODEC(key, codec)                                                    \
    {                                                                                    \
        .name = key, .kind = STORE_FIELD_CUSTOM, .custom = codec                         \
    }
#define STORE_LAYOUT(type, fields)                                                       \
    {                                                                                    \
        fields, sizeof(fields) / sizeof(fields[0]), sizeof(type)                         \
    }

extern const struct store_layout store_layout_hard_state;
extern const struct store_layout store_layout_cluster;
extern const struct store_layout store_layout_node;
extern const struct store_layout store_layout_cert;

/* Checks that rec can be encoded: strings terminated within their arrays,
 * PEM texts within STORE_PEM_MAX, roles known. STORE_EINVALID otherwise,
 * with a message that starts "invalid <where>". */
int store_record_check(const struct store_layout *l, const void *rec, const char *where,
                       char *errmsg);

/* Packs rec as a msgpack map; returns 0 or STORE_ENOMEM. */
int store_record_pack(msgpack_packer *pk, const struct store_layout *l, const void *rec);

/* Fills rec, which it zeroes first, from map o. Bad bytes give
 * STORE_ECORRUPT with a message that starts "corrupt <where>" and never
 * contains a field's value. On failure rec has nothing left to free. */
int store_record_unpack(const msgpack_object *o, const struct store_layout *l, void *rec,
                        const char *where, char *errmsg);

/* Frees the heap fields of rec, wiping key PEMs first, then zeroes rec. */
void store_record_free(const struct store_layout *l, void *rec);

/* store_record_check, then store_record_pack into out, a new buffer that
 * the caller frees with store_buf_free. */
int store_record_encode(const struct store_layout *l, const void *rec, const char *where,
                        struct store_buf *out, char *errmsg);

/* store_msgpack_parse, then store_record_unpack. */
int store_record_decode(const struct store_layout *l, const void *data, size_t len,
                        void *rec, const char *where, char *errmsg);

/* ---- replicated tables as raw rows, for snapshots ---- */

/* The replicated tables in the order a snapshot lists them. */
enum { STORE_REPLICATED_COUNT = 5 };

struct store_replicated {
    const char *name;
    size_t dbi_offset; /* of the MDB_dbi in struct store */
};

extern const struct store_replicated store_replicated_tables[STORE_REPLICATED_COUNT];

/* Checks that the raw row k -> v of store_replicated_tables[table] would
 * read back: the key has the table's shape and the value decodes and names
 * the key. Returns 0, STORE_ENOMEM, or STORE_ECORRUPT with a message naming
 * the table and key. */
int store_row_check(size_t table, const MDB_val *k, const MDB_val *v, char *errmsg);

/* ---- byte streams stored as chunks: snapshot data ---- */

/* Bytes per chunk. LMDB stores a value larger than about half a page on
 * contiguous overflow pages. Cutting a stream of tens of MB into chunks
 * makes each value need a short run of pages (16 where pages are 4 KiB)
 * instead of one run of thousands. */
#define STORE_CHUNK_SIZE (64 * 1024)

/* A stream of size bytes is stored in a table as chunks keyed by 8-byte
 * big-endian chunk number from 0. Every chunk but the last contains
 * STORE_CHUNK_SIZE bytes. */

/* Appends to the stream in a table. Chunks are buffered and written when
 * full or at store_chunk_writer_finish. */
struct store_chunk_writer {
    store_txn *txn;
    MDB_dbi dbi;
    const char *table;    /* for messages */
    unsigned char *chunk; /* the chunk being filled, STORE_CHUNK_SIZE bytes */
    size_t fill;          /* bytes in chunk */
    uint64_t total;       /* bytes in the stream, including those in chunk */
};

/* Prepares w to append after the size bytes already in the stream,
 * reading its partial last chunk back. STORE_ECORRUPT if that chunk is
 * missing or of the wrong length. */
int store_chunk_writer_init(struct store_chunk_writer *w, store_txn *txn, MDB_dbi dbi,
                            const char *table, uint64_t size, char *errmsg);
int store_chunk_write(struct store_chunk_writer *w, const void *data, size_t len,
                      char *errmsg);

/* Writes the partial last chunk, if any. */
int store_chunk_writer_finish(struct store_chunk_writer *w, char *errmsg);

/* Wipes and frees the buffer; also after a failure. */
void store_chunk_writer_free(struct store_chunk_writer *w);

/* Reads the stream in a table from a given offset. Every byte is copied out
 * of LMDB at once, so the caller may write to the transaction between
 * reads. */
struct store_chunk_reader {
    store_txn *txn;
    MDB_dbi dbi;
    const char *table; /* for messages */
    uint64_t size;     /* bytes in the stream */
    uint64_t offset;   /* of the next byte to read */
    unsigned char *chunk;
    size_t chunk_len;
    uint64_t chunk_no; /* of the chunk in chunk, valid when chunk_len > 0 */
    unsigned char *frame;
    size_t frame_cap;
};

int store_chunk_reader_init(struct store_chunk_reader *r, store_txn *txn, MDB_dbi dbi,
                            const char *table, uint64_t size, uint64_t offset,
                            char *errmsg);

/* Copies the next len bytes into dst. STORE_ECORRUPT if the stream ends
 * first or a chunk is missing or of the wrong length. */
int store_chunk_read(struct store_chunk_reader *r, void *dst, size_t len, char *errmsg);

/* Reads the next frame: a 4-byte big-endian length, at most max, then that
 * many bytes, which *frame points to until the next call. */
int store_chunk_read_frame(struct store_chunk_reader *r, size_t max,
                           const unsigned char **frame, size_t *len, char *errmsg);

/* Wipes and frees the buffers. */
void store_chunk_reader_free(struct store_chunk_reader *r);

/* Replaces the stream in table dst with the one of size bytes in src. */
int store_chunk_copy(store_txn *txn, MDB_dbi src, const char *src_table, MDB_dbi dst,
                     const char *dst_table, uint64_t size, char *errmsg);

/* ---- snapshots ---- */

/* Snapshot data is a stream of frames, each a 4-byte big-endian length and
 * one msgpack value of that length:
 *
 *   [STORE_SNAPSHOT_MAGIC, STORE_SNAPSHOT_VERSION]   the header
 *   [table name, key bin, value bin]                 one frame per row
 *   ["end", number of rows]                          the trailer
 *
 * Rows come table by table in the order of store_replicated_tables, each
 * table in LMDB's key order, and carry the stored value bytes unchanged. */
#define STORE_SNAPSHOT_MAGIC   "swarmpki-snapshot"
#define STORE_SNAPSHOT_VERSION 1
#define STORE_SNAPSHOT_END     "end"

/* Upper bound of one frame. The largest row, the cluster record, contains
 * three PEM texts of at most STORE_PEM_MAX bytes, two tokens and an id. */
#define STORE_SNAPSHOT_FRAME_MAX (1024 * 1024)

/* Checks that meta can be recorded: STORE_EINVALID for a configuration
 * that is NULL with a length or longer than the limit. */
int store_snapshot_meta_check(const store_snapshot_meta *meta, char *errmsg);
int store_snapshot_meta_put(store_txn *txn, const store_snapshot_meta *meta,
                            char *errmsg);

#endif
