/* Private to store/: the handles behind store and store_txn, the error
 * helpers and the msgpack record codec that the files of this module
 * share. */
#ifndef SWARMPKI_STORE_INTERNAL_H
#define SWARMPKI_STORE_INTERNAL_H

#include <limits.h>
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

/* Translates LMDB or errno code rc, returned while doing action on store s,
 * into a STORE_E* code and writes a message naming the file. */
int store_lmdb_error(const store *s, int rc, const char *action, char *errmsg);

/* Same as store_lmdb_error, and marks the transaction failed, because LMDB
 * accepts no further writes in a transaction after such an error. */
int store_txn_error(store_txn *txn, int rc, const char *action, char *errmsg);

/* Reads a meta key whose value is one unsigned integer; STORE_ENOTFOUND when the key
 * is missing. */
int store_meta_get_uint(store_txn *txn, const char *key, uint64_t *out, char *errmsg);
int store_meta_put_uint(store_txn *txn, const char *key, uint64_t value, char *errmsg);

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
};

struct store_layout;

struct store_field {
    const char *name; /* the msgpack map key: part of the on-disk format */
    enum store_field_kind kind;
    size_t offset;
    size_t size;
    const struct store_layout *sub; /* for STORE_FIELD_RECORD */
};

/* A record is a msgpack map from field name to value. Decoding skips keys
 * it does not know, so a record written by a later format that added
 * fields still reads. Every field listed here must be present. */
struct store_layout {
    const struct store_field *fields;
    size_t n; /* at most 32 */
    size_t size;
};

/* A field table entry for member of struct type, stored under map key key. */
#define STORE_FIELD(type, key, member, kind)                                             \
    {                                                                                    \
        key, kind, offsetof(type, member), sizeof(((type *)0)->member), NULL             \
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

#endif
