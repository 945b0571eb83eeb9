/* A bounded reader of the msgpack format, shared by the message decoder and
 * the Raft codec.
 *
 * msgpack-c's unpacker allocates room for a container's claimed element
 * count before it reads the elements, so a 5-byte array header can make it
 * request 2^32 objects. This reader never allocates: it returns one header at
 * a time, and the decoders allocate only for values they accept, after
 * checking their bounds. Format bytes follow the msgpack specification
 * (https://github.com/msgpack/msgpack/blob/master/spec.md). */
#include "internal.h"

#include <string.h>

int net__unpack_take(net_unpacker *u, size_t n, const unsigned char **out)
{
    if (u->left < n) {
        return -1;
    }
    *out = u->p;
    u->p += n;
    u->left -= n;
    return 0;
}

static int take_be(net_unpacker *u, size_t n, uint64_t *value)
{
    const unsigned char *p;

    if (net__unpack_take(u, n, &p) != 0) {
        return -1;
    }
    *value = 0;
    for (size_t k = 0; k < n; k++) {
        *value = (*value << 8) | p[k];
    }
    return 0;
}

/* Reads a signed integer of n bytes. A value >= 0 reads as NET_HEAD_UINT. */
static int take_signed(net_unpacker *u, size_t n, net_head *h)
{
    uint64_t raw;
    int64_t value;

    if (take_be(u, n, &raw) != 0) {
        return -1;
    }
    if (n < 8 && (raw & (UINT64_C(1) << (8 * n - 1)))) {
        raw |= ~UINT64_C(0) << (8 * n); /* sign-extend */
    }
    memcpy(&value, &raw, sizeof(value));
    if (value >= 0) {
        h->kind = NET_HEAD_UINT;
        h->u = (uint64_t)value;
    } else {
        h->kind = NET_HEAD_NEGATIVE;
        h->i = value;
    }
    return 0;
}

static int sized(net_unpacker *u, enum net_head_kind kind, size_t width, net_head *h)
{
    h->kind = kind;
    return take_be(u, width, &h->size);
}

/* Reads the header for format bytes 0xc0..0xdf. Within each family, the
 * width of the size or value field doubles with each format byte. */
static int read_long_head(net_unpacker *u, unsigned char b, net_head *h)
{
    h->kind = NET_HEAD_OPAQUE;
    h->size = 0;
    if (b == 0xc0) {
        h->kind = NET_HEAD_NIL;
        return 0;
    }
    if (b == 0xc2 || b == 0xc3) { /* false, true */
        h->kind = NET_HEAD_BOOL;
        h->u = b == 0xc3;
        return 0;
    }
    if (b >= 0xc4 && b <= 0xc6) { /* bin 8, 16, 32 */
        return sized(u, NET_HEAD_BIN, (size_t)1 << (b - 0xc4), h);
    }
    if (b >= 0xc7 && b <= 0xc9) { /* ext 8, 16, 32: size, then a type byte */
        int rv = sized(u, NET_HEAD_OPAQUE, (size_t)1 << (b - 0xc7), h);

        h->size += 1;
        return rv;
    }
    if (b == 0xca || b == 0xcb) { /* float 32, float 64 */
        h->size = b == 0xca ? 4 : 8;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) { /* uint 8, 16, 32, 64 */
        h->kind = NET_HEAD_UINT;
        return take_be(u, (size_t)1 << (b - 0xcc), &h->u);
    }
    if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64 */
        return take_signed(u, (size_t)1 << (b - 0xd0), h);
    }
    if (b >= 0xd4 && b <= 0xd8) { /* fixext 1, 2, 4, 8, 16, after a type byte */
        h->size = 1 + ((uint64_t)1 << (b - 0xd4));
        return 0;
    }
    if (b >= 0xd9 && b <= 0xdb) { /* str 8, 16, 32 */
        return sized(u, NET_HEAD_STR, (size_t)1 << (b - 0xd9), h);
    }
    if (b == 0xdc || b == 0xdd) { /* array 16, 32 */
        return sized(u, NET_HEAD_ARRAY, (size_t)2 << (b - 0xdc), h);
    }
    if (b == 0xde || b == 0xdf) { /* map 16, 32 */
        return sized(u, NET_HEAD_MAP, (size_t)2 << (b - 0xde), h);
    }
    return -1; /* 0xc1, which the format never uses */
}

int net__unpack_head(net_unpacker *u, net_head *h)
{
    const unsigned char *p;
    unsigned char b;

    if (net__unpack_take(u, 1, &p) != 0) {
        return -1;
    }
    b = *p;
    memset(h, 0, sizeof(*h));
    if (b <= 0x7f) {
        h->kind = NET_HEAD_UINT;
        h->u = b;
    } else if (b <= 0x8f) {
        h->kind = NET_HEAD_MAP;
        h->size = b & 0x0f;
    } else if (b <= 0x9f) {
        h->kind = NET_HEAD_ARRAY;
        h->size = b & 0x0f;
    } else if (b <= 0xbf) {
        h->kind = NET_HEAD_STR;
        h->size = b & 0x1f;
    } else if (b >= 0xe0) {
        h->kind = NET_HEAD_NEGATIVE;
        h->i = (int64_t)b - 256;
    } else {
        return read_long_head(u, b, h);
    }
    return 0;
}

/* Nesting is tracked as a count of values still to skip, so deep nesting
 * costs no stack. Each value takes at least one byte, so a false count
 * fails at the end of the input. */
int net__unpack_skip(net_unpacker *u)
{
    uint64_t to_skip = 1;
    const unsigned char *p;
    net_head h;

    while (to_skip > 0) {
        if (net__unpack_head(u, &h) != 0) {
            return -1;
        }
        to_skip--;
        if (h.kind == NET_HEAD_STR || h.kind == NET_HEAD_BIN ||
            h.kind == NET_HEAD_OPAQUE) {
            if (h.size > u->left || net__unpack_take(u, (size_t)h.size, &p) != 0) {
                return -1;
            }
        } else if (h.kind == NET_HEAD_ARRAY) {
            to_skip += h.size;
        } else if (h.kind == NET_HEAD_MAP) {
            to_skip += 2 * h.size;
        }
    }
    return 0;
}
