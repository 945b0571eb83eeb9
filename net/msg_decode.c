/* Message decoding on the bounded msgpack reader of unpack.c: memory is
 * allocated only for fields that are accepted, after their bounds are
 * checked, and unknown values are skipped without allocating. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Maximum length of a key worth comparing. Longer keys match no field and
 * are skipped. */
#define MAX_KEY_LEN 16
/* Return value of read_key for a key that no field uses. */
#define KEY_UNKNOWN NET_F_COUNT

/* Reads a string of at most max bytes into a malloc'ed, NUL-terminated copy.
 * A NUL inside is rejected because C callers would see a shorter string. */
static int read_str(net_unpacker *r, const char *what, uint64_t max, char **out,
                    char *errmsg)
{
    const unsigned char *p;
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in %s", what);
    }
    if (h.kind != NET_HEAD_STR) {
        return net__fail(errmsg, NET_EPROTO, "%s is not a string", what);
    }
    if (h.size > max) {
        return net__fail(errmsg, NET_EPROTO, "%s is %llu bytes, over its limit of %llu",
                         what, (unsigned long long)h.size, (unsigned long long)max);
    }
    if (net__unpack_take(r, (size_t)h.size, &p) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in %s", what);
    }
    if (memchr(p, '\0', (size_t)h.size) != NULL) {
        return net__fail(errmsg, NET_EPROTO, "%s contains a NUL byte", what);
    }
    *out = malloc((size_t)h.size + 1);
    if (*out == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory decoding %s", what);
    }
    memcpy(*out, p, (size_t)h.size);
    (*out)[h.size] = '\0';
    return 0;
}

static int read_list(net_unpacker *r, net_msg *m, char *errmsg)
{
    char what[32];
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"list\"");
    }
    if (h.kind != NET_HEAD_ARRAY) {
        return net__fail(errmsg, NET_EPROTO, "field \"list\" is not an array");
    }
    if (h.size > NET_MAX_LIST) {
        return net__fail(errmsg, NET_EPROTO,
                         "field \"list\" has %llu items, over its limit of %d",
                         (unsigned long long)h.size, NET_MAX_LIST);
    }
    if (h.size == 0) {
        return 0;
    }
    m->list = calloc((size_t)h.size, sizeof(*m->list));
    if (m->list == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory decoding field \"list\"");
    }
    for (uint32_t i = 0; i < h.size; i++) {
        snprintf(what, sizeof(what), "list item %u", i);
        /* Counted before reading so net_msg_clear frees a partial list. */
        m->list_len = i + 1;
        int rv = read_str(r, what, NET_MAX_SHORT, &m->list[i], errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Reads the bin field. An empty value still gets a 1-byte buffer, so bin is
 * non-NULL exactly when the field was present. */
static int read_bin(net_unpacker *r, const net_field *f, net_msg *m, char *errmsg)
{
    const unsigned char *p;
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    if (h.kind != NET_HEAD_BIN) {
        return net__fail(errmsg, NET_EPROTO, "field \"%s\" is not a msgpack bin value",
                         f->key);
    }
    if (h.size > f->max) {
        return net__fail(errmsg, NET_EPROTO,
                         "field \"%s\" is %llu bytes, over its limit of %llu", f->key,
                         (unsigned long long)h.size, (unsigned long long)f->max);
    }
    if (net__unpack_take(r, (size_t)h.size, &p) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    m->bin = malloc(h.size > 0 ? (size_t)h.size : 1);
    if (m->bin == NULL) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory decoding field \"%s\"",
                         f->key);
    }
    memcpy(m->bin, p, (size_t)h.size);
    m->bin_len = (size_t)h.size;
    return 0;
}

static int read_uint(net_unpacker *r, const net_field *f, net_msg *m, char *errmsg)
{
    void *member = (char *)m + f->offset;
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    if (h.kind != NET_HEAD_UINT) {
        return net__fail(errmsg, NET_EPROTO, "field \"%s\" is not an unsigned integer",
                         f->key);
    }
    if (h.u > f->max) {
        return net__fail(errmsg, NET_EPROTO,
                         "field \"%s\" is %llu, over its maximum %llu", f->key,
                         (unsigned long long)h.u, (unsigned long long)f->max);
    }
    if (f->max == UINT64_MAX) {
        *(uint64_t *)member = h.u;
    } else {
        *(uint32_t *)member = (uint32_t)h.u;
    }
    return 0;
}

static int read_int32(net_unpacker *r, const net_field *f, net_msg *m, char *errmsg)
{
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    if (h.kind == NET_HEAD_UINT && h.u <= INT32_MAX) {
        m->code = (int32_t)h.u;
        return 0;
    }
    if (h.kind == NET_HEAD_NEGATIVE && h.i >= INT32_MIN) {
        m->code = (int32_t)h.i;
        return 0;
    }
    return net__fail(errmsg, NET_EPROTO, "field \"%s\" is not a 32-bit signed integer",
                     f->key);
}

static int read_field(net_unpacker *r, int index, net_msg *m, char *errmsg)
{
    const net_field *f = &net__fields[index];
    char what[32];

    switch (f->kind) {
    case NET_FIELD_UINT:
        return read_uint(r, f, m, errmsg);
    case NET_FIELD_INT32:
        return read_int32(r, f, m, errmsg);
    case NET_FIELD_LIST:
        return read_list(r, m, errmsg);
    case NET_FIELD_BIN:
        return read_bin(r, f, m, errmsg);
    case NET_FIELD_STR:
        break;
    }
    snprintf(what, sizeof(what), "field \"%s\"", f->key);
    return read_str(r, what, f->max, (char **)((char *)m + f->offset), errmsg);
}

/* Returns the field index of a known key, KEY_UNKNOWN for a key to skip, or
 * NET_EPROTO. */
static int read_key(net_unpacker *r, char *errmsg)
{
    const unsigned char *p;
    net_head h;

    if (net__unpack_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in a key");
    }
    if (h.kind != NET_HEAD_STR) {
        return net__fail(errmsg, NET_EPROTO, "message has a key that is not a string");
    }
    if (h.size > r->left || net__unpack_take(r, (size_t)h.size, &p) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in a key");
    }
    if (h.size > MAX_KEY_LEN) {
        return KEY_UNKNOWN;
    }
    for (int i = 0; i < NET_F_COUNT; i++) {
        const char *key = net__fields[i].key;

        if (strlen(key) == h.size && memcmp(key, p, (size_t)h.size) == 0) {
            return i;
        }
    }
    return KEY_UNKNOWN;
}

static int check_required(const net_msg *m, uint32_t seen, char *errmsg)
{
    uint32_t required;

    if (!(seen & (UINT32_C(1) << NET_F_TYPE))) {
        return net__fail(errmsg, NET_EPROTO, "message lacks its type field \"t\"");
    }
    required = net__required_fields(m->type);
    if (required == 0) {
        return net__fail(errmsg, NET_EPROTO,
                         "field \"t\" is %u, not a known message type (1 to %d)", m->type,
                         NET_MSG_TYPE_MAX);
    }
    for (int i = 0; i < NET_F_COUNT; i++) {
        if ((required & (UINT32_C(1) << i)) && !(seen & (UINT32_C(1) << i))) {
            return net__fail(errmsg, NET_EPROTO,
                             "message type %u lacks its required field \"%s\"", m->type,
                             net__fields[i].key);
        }
    }
    return 0;
}

static int decode_map(net_unpacker *r, net_msg *out, char *errmsg)
{
    uint32_t seen = 0;
    net_head h;

    if (net__unpack_head(r, &h) != 0 || h.kind != NET_HEAD_MAP) {
        return net__fail(errmsg, NET_EPROTO, "message is not a msgpack map");
    }
    for (uint64_t pair = 0; pair < h.size; pair++) {
        int index = read_key(r, errmsg);
        int rv;

        if (index < 0) {
            return index;
        }
        if (index == KEY_UNKNOWN) {
            rv = net__unpack_skip(r);
            if (rv != 0) {
                rv = net__fail(errmsg, NET_EPROTO,
                               "message is truncated in an unknown field");
            }
        } else if (seen & (UINT32_C(1) << index)) {
            rv = net__fail(errmsg, NET_EPROTO, "message contains field \"%s\" twice",
                           net__fields[index].key);
        } else {
            seen |= UINT32_C(1) << index;
            rv = read_field(r, index, out, errmsg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (r->left != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is followed by %zu extra bytes",
                         r->left);
    }
    return check_required(out, seen, errmsg);
}

int net_msg_decode(const unsigned char *data, size_t len, net_msg *out, char *errmsg)
{
    net_unpacker r = {data, len};
    int rv;

    memset(out, 0, sizeof(*out));
    rv = decode_map(&r, out, errmsg);
    if (rv != 0) {
        net_msg_clear(out);
        return rv == NET_ENOMEM ? NET_ENOMEM : NET_EPROTO;
    }
    return 0;
}
