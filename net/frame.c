/* Frame reassembly: a 4-byte big-endian length, then that many bytes. */
#include "internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* One frame at the limit with its prefix, plus the chunk that completed it
 * and the start of the next frame. The buffer never needs more. */
#define READER_MAX (4 + (size_t)NET_MAX_FRAME + NET_READ_CHUNK)

/* An idle reader keeps a buffer up to this size. A larger one, left over
 * from a big frame, is freed. */
#define READER_KEEP 65536

static void wipe_free(unsigned char *buf, size_t len)
{
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
}

/* Moves the unread bytes to the front and makes room for extra more bytes.
 * Frames may carry join tokens, so a buffer is wiped before it is freed. */
static int make_room(net_frame_reader *r, size_t extra)
{
    size_t unread = r->len - r->start;
    size_t need = unread + extra;
    size_t cap = r->cap;
    unsigned char *grown;

    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, unread);
        r->start = 0;
        r->len = unread;
    }
    if (need <= r->cap) {
        return 0;
    }
    if (cap < 4096) {
        cap = 4096;
    }
    while (cap < need) {
        cap *= 2;
    }
    if (cap > READER_MAX) {
        cap = READER_MAX;
    }
    grown = malloc(cap);
    if (grown == NULL) {
        return NET_ENOMEM;
    }
    if (r->len > 0) {
        memcpy(grown, r->buf, r->len);
    }
    wipe_free(r->buf, r->cap);
    r->buf = grown;
    r->cap = cap;
    return 0;
}

int net__frame_append(net_frame_reader *r, const void *data, size_t len, char *errmsg)
{
    if (r->len - r->start + len > READER_MAX) {
        return net__fail(errmsg, NET_ETOOBIG,
                         "more than %zu bytes arrived without a complete frame",
                         READER_MAX);
    }
    if (make_room(r, len) != 0) {
        return net__fail(errmsg, NET_ENOMEM, "out of memory buffering %zu received bytes",
                         len);
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

int net__frame_next(net_frame_reader *r, const unsigned char **body, size_t *len,
                    char *errmsg)
{
    const unsigned char *p = r->buf + r->start;
    size_t unread = r->len - r->start;
    uint32_t frame_len;

    if (unread < 4) {
        if (unread == 0 && r->cap > READER_KEEP) {
            wipe_free(r->buf, r->cap);
            memset(r, 0, sizeof(*r));
        }
        return 0;
    }
    frame_len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (frame_len == 0) {
        return net__fail(errmsg, NET_EPROTO, "frame has length 0");
    }
    if (frame_len > NET_MAX_FRAME) {
        return net__fail(errmsg, NET_ETOOBIG, "frame length %u is over the limit of %u",
                         frame_len, NET_MAX_FRAME);
    }
    if (unread - 4 < frame_len) {
        return 0;
    }
    *body = p + 4;
    *len = frame_len;
    r->start += 4 + (size_t)frame_len;
    return 1;
}

void net__frame_free(net_frame_reader *r)
{
    wipe_free(r->buf, r->cap);
    memset(r, 0, sizeof(*r));
}
