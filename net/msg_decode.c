/* Message decoding: a bounded reader of the msgpack format.
 *
 * msgpack-c's unpacker allocates room for a container's claimed element
 * count before it reads the elements, so a 5-byte array header can make it
 * request 2^32 objects. This reader allocates only for fields it accepts,
 * after checking their bounds, and skips unknown values without allocating.
 * Format bytes follow the msgpack specification
 * (https://github.com/msgpack/msgpack/blob/master/spec.md). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Maximum length of a key worth comparing. Longer keys match no field and
 * are skipped. */
#define MAX_KEY_LEN 16
/* Return value of read_key for a key that no field uses. */
#define KEY_UNKNOWN NET_F_COUNT

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

/* HEAD_OPAQUE covers bin, ext and float values, which no field uses, and
 * HEAD_SCALAR covers nil and booleans. */
enum head_kind {
    HEAD_UINT,
    HEAD_NEGATIVE,
    HEAD_STR,
    HEAD_OPAQUE,
    HEAD_ARRAY,
    HEAD_MAP,
    HEAD_SCALAR
};

/* The header of one value. For strings and opaque values, size is the number
 * of payload bytes that follow. For arrays and maps, it is the number of
 * elements or pairs. */
typedef struct head {
    enum head_kind kind;
    uint64_t u;
    int64_t i;
    uint64_t size;
} head;

static int take(reader *r, size_t n, const unsigned char **out)
{
    if (r->left < n) {
        return -1;
    }
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int take_be(reader *r, size_t n, uint64_t *value)
{
    const unsigned char *p;

    if (take(r, n, &p) != 0) {
        return -1;
    }
    *value = 0;
    for (size_t k = 0; k < n; k++) {
        *value = (*value << 8) | p[k];
    }
    return 0;
}

/* Reads a signed integer of n bytes. A value >= 0 reads as HEAD_UINT. */
static int take_signed(reader *r, size_t n, head *h)
{
    uint64_t raw;
    int64_t value;

    if (take_be(r, n, &raw) != 0) {
        return -1;
    }
    if (n < 8 && (raw & (UINT64_C(1) << (8 * n - 1)))) {
        raw |= ~UINT64_C(0) << (8 * n); /* sign-extend */
    }
    memcpy(&value, &raw, sizeof(value));
    if (value >= 0) {
        h->kind = HEAD_UINT;
        h->u = (uint64_t)value;
    } else {
        h->kind = HEAD_NEGATIVE;
        h->i = value;
    }
    return 0;
}

static int sized(reader *r, enum head_kind kind, size_t width, head *h)
{
    h->kind = kind;
    return take_be(r, width, &h->size);
}

/* Reads the header for format bytes 0xc0..0xdf. Within each family, the
 * width of the size or value field doubles with each format byte. */
static int read_long_head(reader *r, unsigned char b, head *h)
{
    h->kind = HEAD_OPAQUE;
    h->size = 0;
    if (b == 0xc0 || b == 0xc2 || b == 0xc3) { /* nil, false, true */
        h->kind = HEAD_SCALAR;
        return 0;
    }
    if (b >= 0xc4 && b <= 0xc6) { /* bin 8, 16, 32 */
        return sized(r, HEAD_OPAQUE, (size_t)1 << (b - 0xc4), h);
    }
    if (b >= 0xc7 && b <= 0xc9) { /* ext 8, 16, 32: size, then a type byte */
        int rv = sized(r, HEAD_OPAQUE, (size_t)1 << (b - 0xc7), h);

        h->size += 1;
        return rv;
    }
    if (b == 0xca || b == 0xcb) { /* float 32, float 64 */
        h->size = b == 0xca ? 4 : 8;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) { /* uint 8, 16, 32, 64 */
        h->kind = HEAD_UINT;
        return take_be(r, (size_t)1 << (b - 0xcc), &h->u);
    }
    if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64 */
        return take_signed(r, (size_t)1 << (b - 0xd0), h);
    }
    if (b >= 0xd4 && b <= 0xd8) { /* fixext 1, 2, 4, 8, 16, after a type byte */
        h->size = 1 + ((uint64_t)1 << (b - 0xd4));
        return 0;
    }
    if (b >= 0xd9 && b <= 0xdb) { /* str 8, 16, 32 */
        return sized(r, HEAD_STR, (size_t)1 << (b - 0xd9), h);
    }
    if (b == 0xdc || b == 0xdd) { /* array 16, 32 */
        return sized(r, HEAD_ARRAY, (size_t)2 << (b - 0xdc), h);
    }
    if (b == 0xde || b == 0xdf) { /* map 16, 32 */
        return sized(r, HEAD_MAP, (size_t)2 << (b - 0xde), h);
    }
    return -1; /* 0xc1, which the format never uses */
}

static int read_head(reader *r, head *h)
{
    const unsigned char *p;
    unsigned char b;

    if (take(r, 1, &p) != 0) {
        return -1;
    }
    b = *p;
    memset(h, 0, sizeof(*h));
    if (b <= 0x7f) {
        h->kind = HEAD_UINT;
        h->u = b;
    } else if (b <= 0x8f) {
        h->kind = HEAD_MAP;
        h->size = b & 0x0f;
    } else if (b <= 0x9f) {
        h->kind = HEAD_ARRAY;
        h->size = b & 0x0f;
    } else if (b <= 0xbf) {
        h->kind = HEAD_STR;
        h->size = b & 0x1f;
    } else if (b >= 0xe0) {
        h->kind = HEAD_NEGATIVE;
        h->i = (int64_t)b - 256;
    } else {
        return read_long_head(r, b, h);
    }
    return 0;
}

/* Skips one value of any shape. Nesting is tracked as a count of values
 * still to skip, so deep nesting costs no stack. Each value takes at least
 * one byte, so a false count fails at the end of the input. */
static int skip_value(reader *r)
{
    uint64_t to_skip = 1;
    const unsigned char *p;
    head h;

    while (to_skip > 0) {
        if (read_head(r, &h) != 0) {
            return -1;
        }
        to_skip--;
        if (h.kind == HEAD_STR || h.kind == HEAD_OPAQUE) {
            if (h.size > r->left || take(r, (size_t)h.size, &p) != 0) {
                return -1;
            }
        } else if (h.kind == HEAD_ARRAY) {
            to_skip += h.size;
        } else if (h.kind == HEAD_MAP) {
            to_skip += 2 * h.size;
        }
    }
    return 0;
}

/* Reads a string of at most max bytes into a malloc'ed, NUL-terminated copy.
 * A NUL inside is rejected because C callers would see a shorter string. */
static int read_str(reader *r, const char *what, uint64_t max, char **out, char *errmsg)
{
    const unsigned char *p;
    head h;

    if (read_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in %s", what);
    }
    if (h.kind != HEAD_STR) {
        return net__fail(errmsg, NET_EPROTO, "%s is not a string", what);
    }
    if (h.size > max) {
        return net__fail(errmsg, NET_EPROTO, "%s is %llu bytes, over its limit of %llu",
                         what, (unsigned long long)h.size, (unsigned long long)max);
    }
    if (take(r, (size_t)h.size, &p) != 0) {
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

static int read_list(reader *r, net_msg *m, char *errmsg)
{
    char what[32];
    head h;

    if (read_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"list\"");
    }
    if (h.kind != HEAD_ARRAY) {
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

static int read_uint(reader *r, const net_field *f, net_msg *m, char *errmsg)
{
    void *member = (char *)m + f->offset;
    head h;

    if (read_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    if (h.kind != HEAD_UINT) {
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

static int read_int32(reader *r, const net_field *f, net_msg *m, char *errmsg)
{
    head h;

    if (read_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in field \"%s\"",
                         f->key);
    }
    if (h.kind == HEAD_UINT && h.u <= INT32_MAX) {
        m->code = (int32_t)h.u;
        return 0;
    }
    if (h.kind == HEAD_NEGATIVE && h.i >= INT32_MIN) {
        m->code = (int32_t)h.i;
        return 0;
    }
    return net__fail(errmsg, NET_EPROTO, "field \"%s\" is not a 32-bit signed integer",
                     f->key);
}

static int read_field(reader *r, int index, net_msg *m, char *errmsg)
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
    case NET_FIELD_STR:
        break;
    }
    snprintf(what, sizeof(what), "field \"%s\"", f->key);
    return read_str(r, what, f->max, (char **)((char *)m + f->offset), errmsg);
}

/* Returns the field index of a known key, KEY_UNKNOWN for a key to skip, or
 * NET_EPROTO. */
static int read_key(reader *r, char *errmsg)
{
    const unsigned char *p;
    head h;

    if (read_head(r, &h) != 0) {
        return net__fail(errmsg, NET_EPROTO, "message is truncated in a key");
    }
    if (h.kind != HEAD_STR) {
        return net__fail(errmsg, NET_EPROTO, "message has a key that is not a string");
    }
    if (h.size > r->left || take(r, (size_t)h.size, &p) != 0) {
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

static int decode_map(reader *r, net_msg *out, char *errmsg)
{
    uint32_t seen = 0;
    head h;

    if (read_head(r, &h) != 0 || h.kind != HEAD_MAP) {
        return net__fail(errmsg, NET_EPROTO, "message is not a msgpack map");
    }
    for (uint64_t pair = 0; pair < h.size; pair++) {
        int index = read_key(r, errmsg);
        int rv;

        if (index < 0) {
            return index;
        }
        if (index == KEY_UNKNOWN) {
            rv = skip_value(r);
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
    reader r = {data, len};
    int rv;

    memset(out, 0, sizeof(*out));
    rv = decode_map(&r, out, errmsg);
    if (rv != 0) {
        net_msg_clear(out);
        return rv == NET_ENOMEM ? NET_ENOMEM : NET_EPROTO;
    }
    return 0;
}
