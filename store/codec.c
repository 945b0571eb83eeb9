/* msgpack encoding of store records: a byte buffer that wipes what it frees,
 * a bounded parser, and the field-table codec behind every table. */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <store/internal.h>

/* ---- buffer ---- */

static void wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        explicit_bzero(p, n);
    }
}

/* The msgpack_packer_write callback: returns 0, or -1 when out of memory. */
static int buf_write(void *data, const char *bytes, size_t len)
{
    struct store_buf *b = data;

    if (len == 0) {
        return 0;
    }
    if (len > b->cap - b->len) {
        size_t need = b->len + len;
        size_t cap = b->cap > 0 ? b->cap : 256;
        unsigned char *p;

        if (need < b->len) {
            return -1;
        }
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                return -1;
            }
            cap *= 2;
        }

        /* Copy and wipe rather than realloc, which could leave a copy of a
         * key PEM in freed memory. */
        p = malloc(cap);
        if (p == NULL) {
            return -1;
        }
        if (b->len > 0) {
            memcpy(p, b->data, b->len);
        }
        wipe(b->data, b->cap);
        free(b->data);
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    return 0;
}

void store_buf_init(struct store_buf *b, msgpack_packer *pk)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    msgpack_packer_init(pk, b, buf_write);
}

void store_buf_free(struct store_buf *b)
{
    wipe(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ---- bounded parsing ---- */

/* Deepest nesting of containers accepted. A command nests two maps deep
 * (the command and a record in it), and msgpack-c 4.0 stops at 32. */
#define MAX_DEPTH 8

enum head_kind { HEAD_BYTES, HEAD_EXT, HEAD_ARRAY, HEAD_MAP, HEAD_INVALID };

/* The shape of one msgpack header byte: what follows it, and either the
 * width of a big-endian length field or the length itself. */
struct head {
    enum head_kind kind;
    unsigned width; /* bytes of the length field, 0 when n is final */
    uint64_t n;     /* payload bytes, or elements for arrays, or pairs for maps */
};

static struct head classify(unsigned char b)
{
    static const unsigned char fixed_sizes[] = {
        [0xca - 0xca] = 4, [0xcb - 0xca] = 8, [0xcc - 0xca] = 1,  [0xcd - 0xca] = 2,
        [0xce - 0xca] = 4, [0xcf - 0xca] = 8, [0xd0 - 0xca] = 1,  [0xd1 - 0xca] = 2,
        [0xd2 - 0xca] = 4, [0xd3 - 0xca] = 8, [0xd4 - 0xca] = 2,  [0xd5 - 0xca] = 3,
        [0xd6 - 0xca] = 5, [0xd7 - 0xca] = 9, [0xd8 - 0xca] = 17,
    };

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        return (struct head){HEAD_BYTES, 0, 0};
    }
    if (b <= 0x8f) {
        return (struct head){HEAD_MAP, 0, b & 0x0fu};
    }
    if (b <= 0x9f) {
        return (struct head){HEAD_ARRAY, 0, b & 0x0fu};
    }
    if (b <= 0xbf) {
        return (struct head){HEAD_BYTES, 0, b & 0x1fu};
    }
    switch (b) {
    case 0xc4:
    case 0xd9:
        return (struct head){HEAD_BYTES, 1, 0};
    case 0xc5:
    case 0xda:
        return (struct head){HEAD_BYTES, 2, 0};
    case 0xc6:
    case 0xdb:
        return (struct head){HEAD_BYTES, 4, 0};
    case 0xc7:
        return (struct head){HEAD_EXT, 1, 0};
    case 0xc8:
        return (struct head){HEAD_EXT, 2, 0};
    case 0xc9:
        return (struct head){HEAD_EXT, 4, 0};
    case 0xdc:
        return (struct head){HEAD_ARRAY, 2, 0};
    case 0xdd:
        return (struct head){HEAD_ARRAY, 4, 0};
    case 0xde:
        return (struct head){HEAD_MAP, 2, 0};
    case 0xdf:
        return (struct head){HEAD_MAP, 4, 0};
    }
    if (b >= 0xca && b <= 0xd8) {
        return (struct head){HEAD_BYTES, 0, fixed_sizes[b - 0xca]};
    }
    return (struct head){HEAD_INVALID, 0, 0}; /* 0xc1, never used */
}

/* Walks one msgpack value without building it. msgpack-c allocates the
 * element array of a container from the count in its header before it
 * reads the elements, so a 5-byte header could request 4 G elements. The
 * walk rejects any count larger than the bytes left, because each element
 * takes at least one byte, which bounds that allocation by the input size.
 * It also rejects nesting deeper than MAX_DEPTH, which msgpack-c would
 * report as out of memory. */
static int check_value(const unsigned char *p, size_t len)
{
    uint64_t left[MAX_DEPTH]; /* values still to read in each open container */
    uint64_t pending = 1;     /* values still to read in all of them */
    size_t depth = 0;
    size_t pos = 0;

    while (pending > 0) {
        struct head h;
        uint64_t count = 0;

        if (pos >= len) {
            return -1;
        }
        h = classify(p[pos++]);
        pending--;
        if (h.kind == HEAD_INVALID || h.width > len - pos) {
            return -1;
        }
        for (unsigned i = 0; i < h.width; i++) {
            h.n = (h.n << 8) | p[pos++];
        }

        if (h.kind == HEAD_BYTES || h.kind == HEAD_EXT) {
            uint64_t skip = h.kind == HEAD_EXT ? h.n + 1 : h.n; /* ext adds a type byte */

            if (skip > len - pos) {
                return -1;
            }
            pos += (size_t)skip;
        } else {
            count = h.kind == HEAD_MAP ? 2 * h.n : h.n;
        }

        if (count > 0) {
            if (depth == MAX_DEPTH) {
                return -1;
            }
            left[depth++] = count;
            pending += count;
        } else {
            /* A complete value may complete its containers too. */
            while (depth > 0 && --left[depth - 1] == 0) {
                depth--;
            }
        }
        if (pending > len - pos) {
            return -1;
        }
    }
    return pos == len ? 0 : -1;
}

int store_msgpack_parse(const void *data, size_t len, msgpack_unpacked *out)
{
    size_t off = 0;
    msgpack_unpack_return ret;

    if (data == NULL || check_value(data, len) != 0) {
        return STORE_ECORRUPT;
    }
    msgpack_unpacked_init(out);
    ret = msgpack_unpack_next(out, data, len, &off);
    if (ret == MSGPACK_UNPACK_SUCCESS && off == len) {
        return 0;
    }
    msgpack_unpacked_destroy(out);
    return ret == MSGPACK_UNPACK_NOMEM_ERROR ? STORE_ENOMEM : STORE_ECORRUPT;
}

int store_uint_encode(uint64_t value, struct store_buf *out)
{
    msgpack_packer pk;

    store_buf_init(out, &pk);
    if (msgpack_pack_uint64(&pk, value) != 0) {
        store_buf_free(out);
        return STORE_ENOMEM;
    }
    return 0;
}

int store_uint_decode(const void *data, size_t len, uint64_t *out)
{
    msgpack_unpacked u;
    int rv = store_msgpack_parse(data, len, &u);

    if (rv != 0) {
        return rv;
    }
    rv = STORE_ECORRUPT;
    if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = u.data.via.u64;
        rv = 0;
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}

/* ---- layouts: the map keys below are the on-disk format ---- */

static const struct store_field hard_state_fields[] = {
    STORE_FIELD(store_hard_state, "term", term, STORE_FIELD_U64),
    STORE_FIELD(store_hard_state, "vote", vote, STORE_FIELD_U64),
    STORE_FIELD(store_hard_state, "commit", commit, STORE_FIELD_U64),
};
const struct store_layout store_layout_hard_state =
    STORE_LAYOUT(store_hard_state, hard_state_fields);

static const struct store_field cluster_fields[] = {
    STORE_FIELD(store_cluster, "id", id, STORE_FIELD_STR),
    STORE_FIELD(store_cluster, "bundle", bundle_pem, STORE_FIELD_PEM),
    STORE_FIELD(store_cluster, "signer_cert", signer_cert_pem, STORE_FIELD_PEM),
    STORE_FIELD(store_cluster, "signer_key", signer_key_pem, STORE_FIELD_KEY_PEM),
    STORE_FIELD(store_cluster, "worker_token", worker_token, STORE_FIELD_STR),
    STORE_FIELD(store_cluster, "manager_token", manager_token, STORE_FIELD_STR),
    STORE_FIELD(store_cluster, "cert_expiry", cert_expiry, STORE_FIELD_I64),
    STORE_FIELD(store_cluster, "created", created, STORE_FIELD_I64),
};
const struct store_layout store_layout_cluster =
    STORE_LAYOUT(store_cluster, cluster_fields);

static const struct store_field node_fields[] = {
    STORE_FIELD(store_node, "id", id, STORE_FIELD_STR),
    STORE_FIELD(store_node, "role", role, STORE_FIELD_ROLE),
    STORE_FIELD(store_node, "desired_role", desired_role, STORE_FIELD_ROLE),
    STORE_FIELD(store_node, "hostname", hostname, STORE_FIELD_STR),
    STORE_FIELD(store_node, "addr", addr, STORE_FIELD_STR),
    STORE_FIELD(store_node, "serial", serial, STORE_FIELD_STR),
    STORE_FIELD(store_node, "cert_not_after", cert_not_after, STORE_FIELD_I64),
    STORE_FIELD(store_node, "created", created, STORE_FIELD_I64),
    STORE_FIELD(store_node, "updated", updated, STORE_FIELD_I64),
    STORE_FIELD_OPTIONAL(store_node, "raft_id", raft_id, STORE_FIELD_U64),
    STORE_FIELD_OPTIONAL(store_node, "status", status, STORE_FIELD_STATUS),
};
const struct store_layout store_layout_node = STORE_LAYOUT(store_node, node_fields);

static const struct store_field cert_fields[] = {
    STORE_FIELD(store_cert, "serial", serial, STORE_FIELD_STR),
    STORE_FIELD(store_cert, "node_id", node_id, STORE_FIELD_STR),
    STORE_FIELD(store_cert, "role", role, STORE_FIELD_ROLE),
    STORE_FIELD(store_cert, "not_before", not_before, STORE_FIELD_I64),
    STORE_FIELD(store_cert, "not_after", not_after, STORE_FIELD_I64),
    STORE_FIELD(store_cert, "key_hash", key_hash, STORE_FIELD_HASH),
    STORE_FIELD(store_cert, "cert", cert_pem, STORE_FIELD_PEM),
};
const struct store_layout store_layout_cert = STORE_LAYOUT(store_cert, cert_fields);

/* ---- encoding ---- */

static int check_field(const struct store_field *f, const void *rec, const char *where,
                       char *errmsg)
{
    const char *base = (const char *)rec + f->offset;

    switch (f->kind) {
    case STORE_FIELD_STR:
        if (strnlen(base, f->size) == f->size) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: field \"%s\" is not a NUL-terminated string "
                               "of at most %zu bytes",
                               where, f->name, f->size - 1);
        }
        return 0;
    case STORE_FIELD_ID: {
        size_t len = strnlen(base, f->size);

        if (len == 0 || len == f->size) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: field \"%s\" is not a NUL-terminated string "
                               "of 1 to %zu bytes",
                               where, f->name, f->size - 1);
        }
        return 0;
    }
    case STORE_FIELD_STATUS: {
        int status = *(const int *)base;

        if (status < STORE_STATUS_UNKNOWN || status > STORE_STATUS_DOWN) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: field \"%s\" is status %d; use one of "
                               "STORE_STATUS_UNKNOWN, _READY or _DOWN",
                               where, f->name, status);
        }
        return 0;
    }
    case STORE_FIELD_CUSTOM:
        return f->custom->check(rec, where, errmsg);
    case STORE_FIELD_PEM:
    case STORE_FIELD_KEY_PEM: {
        const char *pem = *(char *const *)base;

        if (pem != NULL && strnlen(pem, STORE_PEM_MAX + 1) > STORE_PEM_MAX) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: field \"%s\" is longer than %d bytes", where,
                               f->name, STORE_PEM_MAX);
        }
        return 0;
    }
    case STORE_FIELD_ROLE: {
        int role = *(const int *)base;

        if (role != STORE_ROLE_WORKER && role != STORE_ROLE_MANAGER) {
            return store_error(errmsg, STORE_EINVALID,
                               "invalid %s: field \"%s\" is role %d; use "
                               "STORE_ROLE_WORKER or STORE_ROLE_MANAGER",
                               where, f->name, role);
        }
        return 0;
    }
    case STORE_FIELD_RECORD:
        return store_record_check(f->sub, base, where, errmsg);
    default:
        return 0;
    }
}

int store_record_check(const struct store_layout *l, const void *rec, const char *where,
                       char *errmsg)
{
    for (size_t i = 0; i < l->n; i++) {
        int rv = check_field(&l->fields[i], rec, where, errmsg);

        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int pack_string(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);

    if (msgpack_pack_str(pk, len) != 0) {
        return -1;
    }
    return msgpack_pack_str_body(pk, s, len);
}

static int pack_field(msgpack_packer *pk, const struct store_field *f, const void *rec)
{
    const char *base = (const char *)rec + f->offset;

    switch (f->kind) {
    case STORE_FIELD_STR:
    case STORE_FIELD_ID:
        return pack_string(pk, base);
    case STORE_FIELD_STATUS:
        return msgpack_pack_int64(pk, *(const int *)base);
    case STORE_FIELD_CUSTOM:
        return f->custom->pack(pk, rec);
    case STORE_FIELD_PEM:
    case STORE_FIELD_KEY_PEM: {
        const char *pem = *(char *const *)base;

        return pem == NULL ? msgpack_pack_nil(pk) : pack_string(pk, pem);
    }
    case STORE_FIELD_I64:
        return msgpack_pack_int64(pk, *(const int64_t *)base);
    case STORE_FIELD_U64:
        return msgpack_pack_uint64(pk, *(const uint64_t *)base);
    case STORE_FIELD_U32:
        return msgpack_pack_uint64(pk, *(const uint32_t *)base);
    case STORE_FIELD_ROLE:
        return msgpack_pack_int64(pk, *(const int *)base);
    case STORE_FIELD_HASH:
        if (msgpack_pack_bin(pk, f->size) != 0) {
            return -1;
        }
        return msgpack_pack_bin_body(pk, base, f->size);
    case STORE_FIELD_RECORD:
        return store_record_pack(pk, f->sub, base) == 0 ? 0 : -1;
    }
    return -1;
}

int store_record_pack(msgpack_packer *pk, const struct store_layout *l, const void *rec)
{
    if (msgpack_pack_map(pk, l->n) != 0) {
        return STORE_ENOMEM;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct store_field *f = &l->fields[i];

        if (pack_string(pk, f->name) != 0 || pack_field(pk, f, rec) != 0) {
            return STORE_ENOMEM;
        }
    }
    return 0;
}

int store_record_encode(const struct store_layout *l, const void *rec, const char *where,
                        struct store_buf *out, char *errmsg)
{
    msgpack_packer pk;
    int rv = store_record_check(l, rec, where, errmsg);

    if (rv != 0) {
        return rv;
    }
    store_buf_init(out, &pk);
    rv = store_record_pack(&pk, l, rec);
    if (rv != 0) {
        store_buf_free(out);
        return store_error(errmsg, rv, "out of memory encoding %s", where);
    }
    return 0;
}
