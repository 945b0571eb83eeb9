/* Raft messages on the wire, carried in the bin field of a NET_MSG_RAFT.
 *
 * A message is one msgpack array:
 *
 *   [format, type, from, to, term, body]
 *
 * format is WIRE_FORMAT, and body is an array whose layout depends on type:
 *
 *   APPEND         [prev_index, prev_term, commit, seq, entries]
 *                  entries: [[term, index, type, data], ...]
 *   APPEND_RESP    [reject, index, hint_index, hint_term, seq]
 *   VOTE           [last_index, last_term, pre_vote, transfer]
 *   VOTE_RESP      [granted, pre_vote]
 *   SNAPSHOT       [index, term, size, offset, config, data]
 *                  config: [[[id, role], ...], [removed id, ...]]
 *   SNAPSHOT_RESP  [index, offset, done, match]
 *   TIMEOUT_NOW    []
 *
 * Numbers are unsigned integers, flags are msgpack booleans, data is a
 * msgpack bin value, and every fixed array has exactly the length shown.
 * The decoder enforces all of this and the bounds in internal.h, and
 * allocates only after a count has passed its bound. The scalar fields at
 * the start of each body are listed once, in the layouts table, for both
 * directions. */
#include "internal.h"

#include <assert.h>
#include <msgpack.h>
#include <openssl/crypto.h>
#include <raft/raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layout version. It changes whenever the layout above changes, so that
 * a peer running another layout is rejected instead of misread. */
#define WIRE_FORMAT 1

/* Minimum encoded size of one entry: a fixarray header, three fixints and an
 * empty bin 8. The decoder checks a claimed entry count against this before
 * it allocates. */
#define MIN_ENTRY_BYTES 6
/* Minimum encoded sizes of one server ([id, role]) and of one removed id. */
#define MIN_SERVER_BYTES 3
#define MIN_ID_BYTES     1

/* ---- Body layouts ---- */

/* One number or flag of a body, at offset in the union member of struct
 * raft_message that the type uses. */
typedef struct scalar {
    const char *name; /* for error messages */
    bool is_flag;
    size_t offset;
    size_t size;
} scalar;

/* Expand to a scalar's initializer without its braces, which keeps the
 * tables readable after clang-format. */
#define NUMBER(type, member)                                                             \
    "field \"" #member "\"", false, offsetof(struct type, member),                       \
        sizeof(((struct type *)0)->member)
#define FLAG(type, member)                                                               \
    "field \"" #member "\"", true, offsetof(struct type, member),                        \
        sizeof(((struct type *)0)->member)

static const scalar append_scalars[] = {
    {NUMBER(raft_append, prev_index)},
    {NUMBER(raft_append, prev_term)},
    {NUMBER(raft_append, commit)},
    {NUMBER(raft_append, seq)},
};
static const scalar append_resp_scalars[] = {
    {FLAG(raft_append_resp, reject)},       {NUMBER(raft_append_resp, index)},
    {NUMBER(raft_append_resp, hint_index)}, {NUMBER(raft_append_resp, hint_term)},
    {NUMBER(raft_append_resp, seq)},
};
static const scalar vote_scalars[] = {
    {NUMBER(raft_vote, last_index)},
    {NUMBER(raft_vote, last_term)},
    {FLAG(raft_vote, pre_vote)},
    {FLAG(raft_vote, transfer)},
};
static const scalar vote_resp_scalars[] = {
    {FLAG(raft_vote_resp, granted)},
    {FLAG(raft_vote_resp, pre_vote)},
};
static const scalar snapshot_scalars[] = {
    {NUMBER(raft_snapshot_chunk, index)},
    {NUMBER(raft_snapshot_chunk, term)},
    {NUMBER(raft_snapshot_chunk, size)},
    {NUMBER(raft_snapshot_chunk, offset)},
};
static const scalar snapshot_resp_scalars[] = {
    {NUMBER(raft_snapshot_resp, index)},
    {NUMBER(raft_snapshot_resp, offset)},
    {FLAG(raft_snapshot_resp, done)},
    {NUMBER(raft_snapshot_resp, match)},
};

/* The scalars of a body, then extra elements: the entries of an append, the
 * configuration and data of a snapshot chunk. */
typedef struct layout {
    const char *name;
    const scalar *scalars;
    size_t n_scalars;
    size_t n_extra;
} layout;

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const layout layouts[RAFT_MSG_TIMEOUT_NOW + 1] = {
    [RAFT_MSG_APPEND] = {"append body", append_scalars, COUNT(append_scalars), 1},
    [RAFT_MSG_APPEND_RESP] = {"append response body", append_resp_scalars,
                              COUNT(append_resp_scalars), 0},
    [RAFT_MSG_VOTE] = {"vote body", vote_scalars, COUNT(vote_scalars), 0},
    [RAFT_MSG_VOTE_RESP] = {"vote response body", vote_resp_scalars,
                            COUNT(vote_resp_scalars), 0},
    [RAFT_MSG_SNAPSHOT] = {"snapshot body", snapshot_scalars, COUNT(snapshot_scalars), 2},
    [RAFT_MSG_SNAPSHOT_RESP] = {"snapshot response body", snapshot_resp_scalars,
                                COUNT(snapshot_resp_scalars), 0},
    [RAFT_MSG_TIMEOUT_NOW] = {"timeout-now body", NULL, 0, 0},
};

/* The offset of a message's body. All members of the union start at the
 * same address, so the layouts' offsets apply from there. */
#define BODY_OFFSET offsetof(struct raft_message, append)

static bool type_known(uint64_t type)
{
    return type >= RAFT_MSG_APPEND && type <= RAFT_MSG_TIMEOUT_NOW;
}

/* ---- Freeing ---- */

static void free_data(uint8_t *data, size_t len)
{
    /* Entries and snapshots can carry the cluster's CA signing key. */
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
    }
    free(data);
}

void net_raft_free(struct raft_message *m)
{
    if (m == NULL) {
        return;
    }
    if (m->type == RAFT_MSG_APPEND && m->append.entries != NULL) {
        for (size_t i = 0; i < m->append.n_entries; i++) {
            free_data(m->append.entries[i].data, m->append.entries[i].len);
        }
        free(m->append.entries);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        raft_config_free(&m->snapshot.config);
        free_data(m->snapshot.data, m->snapshot.len);
    }
    memset(m, 0, sizeof(*m));
}

/* ---- Checks before encoding ---- */

static bool entry_type_known(uint64_t type)
{
    return type == RAFT_ENTRY_NORMAL || type == RAFT_ENTRY_NOOP ||
           type == RAFT_ENTRY_CONFIG;
}

static bool role_known(uint64_t role)
{
    return role == RAFT_VOTER || role == RAFT_LEARNER;
}

static int check_append(const struct raft_append *a, char *errmsg)
{
    size_t total = 0;

    if (a->n_entries > NET_RAFT_MAX_ENTRIES) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft append has %zu entries, over the limit of %d",
                         a->n_entries, NET_RAFT_MAX_ENTRIES);
    }
    if (a->n_entries > 0 && a->entries == NULL) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft append has n_entries %zu but entries is NULL",
                         a->n_entries);
    }
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];

        if (!entry_type_known(e->type)) {
            return net__fail(errmsg, NET_EINVALID,
                             "Raft entry %zu has type %u, not a known entry type", i,
                             e->type);
        }
        if (e->len > 0 && e->data == NULL) {
            return net__fail(errmsg, NET_EINVALID,
                             "Raft entry %zu has len %zu but data is NULL", i, e->len);
        }
        if (e->len > NET_MAX_BIN - total) {
            return net__fail(errmsg, NET_ETOOBIG,
                             "Raft append entries reach past %u bytes at entry %zu, so "
                             "send fewer entries per message",
                             (unsigned)NET_MAX_BIN, i);
        }
        total += e->len;
    }
    return 0;
}

static int check_config(const struct raft_config *c, char *errmsg)
{
    if (c->n > NET_RAFT_MAX_IDS || c->n_removed > NET_RAFT_MAX_IDS) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft configuration has %zu servers and %zu removed ids, over "
                         "the limit of %d for each",
                         c->n, c->n_removed, NET_RAFT_MAX_IDS);
    }
    if ((c->n > 0 && c->servers == NULL) || (c->n_removed > 0 && c->removed == NULL)) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft configuration has a count above 0 but a NULL array");
    }
    for (size_t i = 0; i < c->n; i++) {
        if (!role_known(c->servers[i].role)) {
            return net__fail(errmsg, NET_EINVALID,
                             "Raft server %llu has role %u, not a known role",
                             (unsigned long long)c->servers[i].id, c->servers[i].role);
        }
    }
    return 0;
}

static bool chunk_in_range(const struct raft_snapshot_chunk *s)
{
    return s->offset <= s->size && s->len <= s->size - s->offset;
}

static int range_error(const struct raft_snapshot_chunk *s, int code, char *errmsg)
{
    return net__fail(errmsg, code,
                     "Raft snapshot chunk at offset %llu with %zu bytes reaches past the "
                     "snapshot size %llu",
                     (unsigned long long)s->offset, s->len, (unsigned long long)s->size);
}

/* The decoder rejects a chunk that reaches past the snapshot's size, so the
 * encoder rejects it too, where the bug is. */
static int check_snapshot(const struct raft_snapshot_chunk *s, char *errmsg)
{
    if (s->len > 0 && s->data == NULL) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft snapshot chunk has len %zu but data is NULL", s->len);
    }
    if (s->len > NET_MAX_BIN) {
        return net__fail(errmsg, NET_ETOOBIG,
                         "Raft snapshot chunk of %zu bytes is over the limit of %u",
                         s->len, (unsigned)NET_MAX_BIN);
    }
    if (!chunk_in_range(s)) {
        return range_error(s, NET_EINVALID, errmsg);
    }
    return check_config(&s->config, errmsg);
}

static int check_outgoing(const struct raft_message *m, char *errmsg)
{
    if (!type_known(m->type)) {
        return net__fail(errmsg, NET_EINVALID,
                         "Raft message type %u is not between 1 and %d", m->type,
                         RAFT_MSG_TIMEOUT_NOW);
    }
    if (m->type == RAFT_MSG_APPEND) {
        return check_append(&m->append, errmsg);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        return check_snapshot(&m->snapshot, errmsg);
    }
    return 0;
}

/* ---- Encoding ---- */

/* Each pack function returns 0, or -1 when msgpack-c ran out of memory. */

static int pack_bin(msgpack_packer *pk, const uint8_t *data, size_t len)
{
    if (msgpack_pack_bin(pk, len) != 0) {
        return -1;
    }
    return len > 0 ? msgpack_pack_bin_body(pk, data, len) : 0;
}

static int pack_scalars(msgpack_packer *pk, const unsigned char *body, const layout *l)
{
    for (size_t i = 0; i < l->n_scalars; i++) {
        const scalar *f = &l->scalars[i];
        uint64_t number;
        bool flag;
        int rv;

        if (f->is_flag) {
            assert(f->size == sizeof(flag));
            memcpy(&flag, body + f->offset, sizeof(flag));
            rv = flag ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        } else {
            assert(f->size == sizeof(number));
            memcpy(&number, body + f->offset, sizeof(number));
            rv = msgpack_pack_uint64(pk, number);
        }
        if (rv != 0) {
            return -1;
        }
    }
    return 0;
}

static int pack_entries(msgpack_packer *pk, const struct raft_append *a)
{
    if (msgpack_pack_array(pk, a->n_entries) != 0) {
        return -1;
    }
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];

        if (msgpack_pack_array(pk, 4) != 0 || msgpack_pack_uint64(pk, e->term) != 0 ||
            msgpack_pack_uint64(pk, e->index) != 0 ||
            msgpack_pack_uint8(pk, e->type) != 0 || pack_bin(pk, e->data, e->len) != 0) {
            return -1;
        }
    }
    return 0;
}

static int pack_config(msgpack_packer *pk, const struct raft_config *c)
{
    if (msgpack_pack_array(pk, 2) != 0 || msgpack_pack_array(pk, c->n) != 0) {
        return -1;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (msgpack_pack_array(pk, 2) != 0 ||
            msgpack_pack_uint64(pk, c->servers[i].id) != 0 ||
            msgpack_pack_uint8(pk, c->servers[i].role) != 0) {
            return -1;
        }
    }
    if (msgpack_pack_array(pk, c->n_removed) != 0) {
        return -1;
    }
    for (size_t i = 0; i < c->n_removed; i++) {
        if (msgpack_pack_uint64(pk, c->removed[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static int pack_message(msgpack_packer *pk, const struct raft_message *m)
{
    const layout *l = &layouts[m->type];

    if (msgpack_pack_array(pk, 6) != 0 || msgpack_pack_uint8(pk, WIRE_FORMAT) != 0 ||
        msgpack_pack_uint8(pk, m->type) != 0 || msgpack_pack_uint64(pk, m->from) != 0 ||
        msgpack_pack_uint64(pk, m->to) != 0 || msgpack_pack_uint64(pk, m->term) != 0) {
        return -1;
    }

    if (msgpack_pack_array(pk, l->n_scalars + l->n_extra) != 0 ||
        pack_scalars(pk, (const unsigned char *)m + BODY_OFFSET, l) != 0) {
        return -1;
    }
    if (m->type == RAFT_MSG_APPEND) {
        return pack_entries(pk, &m->append);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        if (pack_config(pk, &m->snapshot.config) != 0) {
            return -1;
        }
        return pack_bin(pk, m->snapshot.data, m->snapshot.len);
    }
    return 0;
}

int net_raft_encode(const struct raft_message *m, unsigned char **out, size_t *len,
                    char *errmsg)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    int rv;

    *out = NULL;
    *len = 0;
    rv = check_outgoing(m, errmsg);
    if (rv != 0) {
        return rv;
    }

    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    if (pack_message(&pk, m) != 0) {
        net__sbuffer_wipe(&sbuf);
        return net__fail(errmsg, NET_ENOMEM,
                         "out of memory encoding a Raft message of type %u", m->type);
    }

    /* The data fits (check_outgoing), but the headers around it may not. */
    if (sbuf.size > NET_MAX_BIN) {
        net__sbuffer_wipe(&sbuf);
        return net__fail(errmsg, NET_ETOOBIG,
                         "Raft message of type %u encodes to %zu bytes, over the limit "
                         "of %u",
                         m->type, sbuf.size, (unsigned)NET_MAX_BIN);
    }
    *len = sbuf.size;
    *out = (unsigned char *)msgpack_sbuffer_release(&sbuf);
    return 0;
}

/* ---- Decoding ---- */

/* In the readers below, name is the value's name in error messages, as in
 * "field \"term\"". */

static int truncated(char *errmsg, const char *name)
{
    return net__fail(errmsg, NET_EPROTO, "Raft message is truncated in %s", name);
}

static int read_uint(net_unpacker *u, const char *name, uint64_t *out, char *errmsg)
{
    net_head h;

    if (net__unpack_head(u, &h) != 0) {
        return truncated(errmsg, name);
    }
    if (h.kind != NET_HEAD_UINT) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s is not an unsigned integer", name);
    }
    *out = h.u;
    return 0;
}

static int read_bool(net_unpacker *u, const char *name, bool *out, char *errmsg)
{
    net_head h;

    if (net__unpack_head(u, &h) != 0) {
        return truncated(errmsg, name);
    }
    if (h.kind != NET_HEAD_BOOL) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s is not a boolean", name);
    }
    *out = h.u != 0;
    return 0;
}

/* Reads the header of an array that must have exactly length elements. */
static int read_fixed(net_unpacker *u, const char *name, uint64_t length, char *errmsg)
{
    net_head h;

    if (net__unpack_head(u, &h) != 0) {
        return truncated(errmsg, name);
    }
    if (h.kind != NET_HEAD_ARRAY) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s is not an array", name);
    }
    if (h.size != length) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s has %llu elements instead of %llu",
                         name, (unsigned long long)h.size, (unsigned long long)length);
    }
    return 0;
}

/* Reads the header of an array of at most max items, each at least
 * min_bytes long, so that a false count fails before any allocation. */
static int read_count(net_unpacker *u, const char *name, uint64_t max, size_t min_bytes,
                      size_t *count, char *errmsg)
{
    net_head h;

    if (net__unpack_head(u, &h) != 0) {
        return truncated(errmsg, name);
    }
    if (h.kind != NET_HEAD_ARRAY) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s is not an array", name);
    }
    if (h.size > max) {
        return net__fail(errmsg, NET_EPROTO,
                         "Raft %s has %llu items, over the limit of %llu", name,
                         (unsigned long long)h.size, (unsigned long long)max);
    }
    if (h.size > u->left / min_bytes) {
        return net__fail(errmsg, NET_EPROTO,
                         "Raft %s claims %llu items but only %zu bytes follow", name,
                         (unsigned long long)h.size, u->left);
    }
    *count = (size_t)h.size;
    return 0;
}

/* Copies a bin value into a malloc'ed buffer. An empty value leaves *data
 * NULL. */
static int read_bin(net_unpacker *u, const char *name, uint8_t **data, size_t *len,
                    char *errmsg)
{
    const unsigned char *p;
    net_head h;

    if (net__unpack_head(u, &h) != 0) {
        return truncated(errmsg, name);
    }
    if (h.kind != NET_HEAD_BIN) {
        return net__fail(errmsg, NET_EPROTO, "Raft %s is not a msgpack bin value", name);
    }
    if (h.size > u->left || net__unpack_take(u, (size_t)h.size, &p) != 0) {
        return truncated(errmsg, name);
    }
    if (h.size == 0) {
        return 0;
    }
    *data = malloc((size_t)h.size);
    if (*data == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory decoding Raft %s", name);
    }
    memcpy(*data, p, (size_t)h.size);
    *len = (size_t)h.size;
    return 0;
}

static int read_scalars(net_unpacker *u, unsigned char *body, const layout *l,
                        char *errmsg)
{
    for (size_t i = 0; i < l->n_scalars; i++) {
        const scalar *f = &l->scalars[i];
        uint64_t number = 0;
        bool flag = false;
        int rv;

        if (f->is_flag) {
            assert(f->size == sizeof(flag));
            rv = read_bool(u, f->name, &flag, errmsg);
            if (rv == 0) {
                memcpy(body + f->offset, &flag, sizeof(flag));
            }
        } else {
            assert(f->size == sizeof(number));
            rv = read_uint(u, f->name, &number, errmsg);
            if (rv == 0) {
                memcpy(body + f->offset, &number, sizeof(number));
            }
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int decode_entry(net_unpacker *u, struct raft_entry *e, char *errmsg)
{
    uint64_t type;
    int rv;

    rv = read_fixed(u, "entry", 4, errmsg);
    if (rv == 0) {
        rv = read_uint(u, "entry field \"term\"", &e->term, errmsg);
    }
    if (rv == 0) {
        rv = read_uint(u, "entry field \"index\"", &e->index, errmsg);
    }
    if (rv == 0) {
        rv = read_uint(u, "entry field \"type\"", &type, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    if (!entry_type_known(type)) {
        return net__fail(errmsg, NET_EPROTO, "Raft entry type %llu is not a known type",
                         (unsigned long long)type);
    }
    e->type = (uint8_t)type;
    return read_bin(u, "entry field \"data\"", &e->data, &e->len, errmsg);
}

static int decode_entries(net_unpacker *u, struct raft_append *a, char *errmsg)
{
    char cause[NET_ERRMSG_SIZE] = "";
    size_t n;
    int rv;

    rv = read_count(u, "field \"entries\"", NET_RAFT_MAX_ENTRIES, MIN_ENTRY_BYTES, &n,
                    errmsg);
    if (rv != 0 || n == 0) {
        return rv;
    }
    a->entries = calloc(n, sizeof(*a->entries));
    if (a->entries == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory for %zu Raft entries", n);
    }
    a->n_entries = n;

    for (size_t i = 0; i < n; i++) {
        rv = decode_entry(u, &a->entries[i], cause);
        if (rv != 0) {
            return net__fail(errmsg, rv, "%s (entry %zu of %zu)", cause, i, n);
        }
    }
    return 0;
}

static int decode_server(net_unpacker *u, struct raft_server *s, char *errmsg)
{
    uint64_t role;
    int rv;

    rv = read_fixed(u, "server", 2, errmsg);
    if (rv == 0) {
        rv = read_uint(u, "server id", &s->id, errmsg);
    }
    if (rv == 0) {
        rv = read_uint(u, "server role", &role, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    if (!role_known(role)) {
        return net__fail(errmsg, NET_EPROTO,
                         "Raft server %llu has role %llu, not a known role",
                         (unsigned long long)s->id, (unsigned long long)role);
    }
    s->role = (uint8_t)role;
    return 0;
}

static int decode_servers(net_unpacker *u, struct raft_config *c, char *errmsg)
{
    size_t n;
    int rv;

    rv = read_count(u, "field \"servers\"", NET_RAFT_MAX_IDS, MIN_SERVER_BYTES, &n,
                    errmsg);
    if (rv != 0 || n == 0) {
        return rv;
    }
    c->servers = calloc(n, sizeof(*c->servers));
    if (c->servers == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory for %zu Raft servers", n);
    }
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        rv = decode_server(u, &c->servers[i], errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Decodes the arrays only, because the Raft core checks whether the ids
 * form a valid configuration (raft_config_check). */
static int decode_config(net_unpacker *u, struct raft_config *c, char *errmsg)
{
    size_t n = 0;
    int rv;

    rv = read_fixed(u, "field \"config\"", 2, errmsg);
    if (rv == 0) {
        rv = decode_servers(u, c, errmsg);
    }
    if (rv == 0) {
        rv = read_count(u, "field \"removed\"", NET_RAFT_MAX_IDS, MIN_ID_BYTES, &n,
                        errmsg);
    }
    if (rv != 0 || n == 0) {
        return rv;
    }

    c->removed = calloc(n, sizeof(*c->removed));
    if (c->removed == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory for %zu removed Raft ids", n);
    }
    c->n_removed = n;
    for (size_t i = 0; i < n; i++) {
        rv = read_uint(u, "removed id", &c->removed[i], errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int decode_snapshot_rest(net_unpacker *u, struct raft_snapshot_chunk *s,
                                char *errmsg)
{
    int rv;

    rv = decode_config(u, &s->config, errmsg);
    if (rv == 0) {
        rv = read_bin(u, "field \"data\"", &s->data, &s->len, errmsg);
    }
    if (rv == 0 && !chunk_in_range(s)) {
        rv = range_error(s, NET_EPROTO, errmsg);
    }
    return rv;
}

static int decode_body(net_unpacker *u, struct raft_message *m, char *errmsg)
{
    const layout *l = &layouts[m->type];
    int rv;

    rv = read_fixed(u, l->name, l->n_scalars + l->n_extra, errmsg);
    if (rv == 0) {
        rv = read_scalars(u, (unsigned char *)m + BODY_OFFSET, l, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    if (m->type == RAFT_MSG_APPEND) {
        return decode_entries(u, &m->append, errmsg);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        return decode_snapshot_rest(u, &m->snapshot, errmsg);
    }
    return 0;
}

/* Reads the outer array up to the body and sets m->type first, because
 * net_raft_free frees a partly decoded body by its type. */
static int decode_header(net_unpacker *u, struct raft_message *m, char *errmsg)
{
    uint64_t format;
    uint64_t type;
    int rv;

    rv = read_fixed(u, "message", 6, errmsg);
    if (rv == 0) {
        rv = read_uint(u, "field \"format\"", &format, errmsg);
    }
    if (rv == 0 && format != WIRE_FORMAT) {
        rv = net__fail(errmsg, NET_EPROTO,
                       "Raft message format %llu is not the supported format %d",
                       (unsigned long long)format, WIRE_FORMAT);
    }
    if (rv == 0) {
        rv = read_uint(u, "field \"type\"", &type, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    if (!type_known(type)) {
        return net__fail(errmsg, NET_EPROTO,
                         "Raft message type %llu is not between 1 and %d",
                         (unsigned long long)type, RAFT_MSG_TIMEOUT_NOW);
    }
    m->type = (uint8_t)type;

    rv = read_uint(u, "field \"from\"", &m->from, errmsg);
    if (rv == 0) {
        rv = read_uint(u, "field \"to\"", &m->to, errmsg);
    }
    if (rv == 0) {
        rv = read_uint(u, "field \"term\"", &m->term, errmsg);
    }
    return rv;
}

int net_raft_decode(const unsigned char *data, size_t len, struct raft_message *out,
                    char *errmsg)
{
    net_unpacker u = {data, len};
    int rv;

    memset(out, 0, sizeof(*out));
    if (len > NET_MAX_BIN) {
        return net__fail(errmsg, NET_EPROTO,
                         "Raft message of %zu bytes is over the limit of %u", len,
                         (unsigned)NET_MAX_BIN);
    }
    rv = decode_header(&u, out, errmsg);
    if (rv == 0) {
        rv = decode_body(&u, out, errmsg);
    }
    if (rv == 0 && u.left != 0) {
        rv = net__fail(errmsg, NET_EPROTO, "Raft message is followed by %zu extra bytes",
                       u.left);
    }
    if (rv != 0) {
        net_raft_free(out);
        return rv == NET_ENOMEM ? NET_ENOMEM : NET_EPROTO;
    }
    return 0;
}
