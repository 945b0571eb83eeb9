/* Messages: the field table, encoding with msgpack-c, and freeing. */
#include "internal.h"

#include <msgpack.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_BIT(index) (UINT32_C(1) << (index))

const net_field net__fields[NET_F_COUNT] = {
    [NET_F_TYPE] = {"t", NET_FIELD_UINT, offsetof(net_msg, type), UINT32_MAX},
    [NET_F_ID] = {"id", NET_FIELD_UINT, offsetof(net_msg, id), UINT64_MAX},
    [NET_F_CODE] = {"code", NET_FIELD_INT32, offsetof(net_msg, code), 0},
    [NET_F_PERIOD] = {"period", NET_FIELD_UINT, offsetof(net_msg, period_ms), UINT32_MAX},
    [NET_F_TEXT] = {"text", NET_FIELD_STR, offsetof(net_msg, text), NET_MAX_TEXT},
    [NET_F_TOKEN] = {"token", NET_FIELD_STR, offsetof(net_msg, token), NET_MAX_SHORT},
    [NET_F_CSR] = {"csr", NET_FIELD_STR, offsetof(net_msg, csr_pem), NET_MAX_PEM},
    [NET_F_CERT] = {"cert", NET_FIELD_STR, offsetof(net_msg, cert_pem), NET_MAX_PEM},
    [NET_F_BUNDLE] = {"bundle", NET_FIELD_STR, offsetof(net_msg, bundle_pem),
                      NET_MAX_PEM},
    [NET_F_NODE] = {"node", NET_FIELD_STR, offsetof(net_msg, node_id), NET_MAX_SHORT},
    [NET_F_ROLE] = {"role", NET_FIELD_STR, offsetof(net_msg, role), NET_MAX_SHORT},
    [NET_F_CLUSTER] = {"cluster", NET_FIELD_STR, offsetof(net_msg, cluster_id),
                       NET_MAX_SHORT},
    [NET_F_HOST] = {"host", NET_FIELD_STR, offsetof(net_msg, hostname), NET_MAX_SHORT},
    [NET_F_ADDR] = {"addr", NET_FIELD_STR, offsetof(net_msg, addr), NET_MAX_SHORT},
    [NET_F_LIST] = {"list", NET_FIELD_LIST, offsetof(net_msg, list), NET_MAX_LIST},
    [NET_F_RAFT_ID] = {"raft", NET_FIELD_UINT, offsetof(net_msg, raft_id), UINT64_MAX},
    [NET_F_BIN] = {"bin", NET_FIELD_BIN, offsetof(net_msg, bin), NET_MAX_BIN},
    [NET_F_ORIGIN_CN] = {"origin_cn", NET_FIELD_STR, offsetof(net_msg, origin_cn),
                         NET_MAX_SHORT},
    [NET_F_ORIGIN_OU] = {"origin_ou", NET_FIELD_STR, offsetof(net_msg, origin_ou),
                         NET_MAX_SHORT},
    [NET_F_ORIGIN_ORG] = {"origin_org", NET_FIELD_STR, offsetof(net_msg, origin_org),
                          NET_MAX_SHORT},
    [NET_F_ORIGIN_ADDR] = {"origin_addr", NET_FIELD_STR, offsetof(net_msg, origin_addr),
                           NET_MAX_SHORT},
    [NET_F_INDEX] = {"index", NET_FIELD_UINT, offsetof(net_msg, index), UINT64_MAX},
};

uint32_t net__required_fields(uint32_t type)
{
    /* Every message carries its type and request id. The optional fields
     * are JOIN_REQ's addr and JOIN_RESP's raft_id, which only joining
     * managers use, JOIN_RESP's index, and the origin_* fields of
     * forwarded requests. */
    static const uint32_t by_type[NET_MSG_TYPE_MAX + 1] = {
        [NET_MSG_ERROR] = FIELD_BIT(NET_F_CODE) | FIELD_BIT(NET_F_TEXT),
        [NET_MSG_BUNDLE_REQ] = 0,
        [NET_MSG_BUNDLE_RESP] = FIELD_BIT(NET_F_BUNDLE),
        [NET_MSG_JOIN_REQ] =
            FIELD_BIT(NET_F_TOKEN) | FIELD_BIT(NET_F_CSR) | FIELD_BIT(NET_F_HOST),
        [NET_MSG_JOIN_RESP] = FIELD_BIT(NET_F_NODE) | FIELD_BIT(NET_F_ROLE) |
                              FIELD_BIT(NET_F_CLUSTER) | FIELD_BIT(NET_F_CERT) |
                              FIELD_BIT(NET_F_BUNDLE),
        [NET_MSG_HEARTBEAT_REQ] = FIELD_BIT(NET_F_HOST),
        [NET_MSG_HEARTBEAT_RESP] = FIELD_BIT(NET_F_PERIOD) | FIELD_BIT(NET_F_LIST),
        [NET_MSG_RENEW_REQ] = FIELD_BIT(NET_F_CSR),
        [NET_MSG_RENEW_RESP] = FIELD_BIT(NET_F_CERT) | FIELD_BIT(NET_F_BUNDLE),
        [NET_MSG_CONTROL_REQ] = FIELD_BIT(NET_F_LIST),
        [NET_MSG_CONTROL_RESP] = FIELD_BIT(NET_F_CODE) | FIELD_BIT(NET_F_TEXT),
        [NET_MSG_RAFT] = FIELD_BIT(NET_F_BIN),
        [NET_MSG_MEMBER_REQ] = FIELD_BIT(NET_F_RAFT_ID) | FIELD_BIT(NET_F_ADDR),
        [NET_MSG_OK] = 0,
    };

    if (type == 0 || type > NET_MSG_TYPE_MAX) {
        return 0;
    }
    return FIELD_BIT(NET_F_TYPE) | FIELD_BIT(NET_F_ID) | by_type[type];
}

static char **str_member(const net_msg *m, const net_field *f)
{
    return (char **)((char *)m + f->offset);
}

void net_msg_clear(net_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->token != NULL) {
        OPENSSL_cleanse(m->token, strlen(m->token));
    }
    for (int i = 0; i < NET_F_COUNT; i++) {
        if (net__fields[i].kind == NET_FIELD_STR) {
            free(*str_member(m, &net__fields[i]));
        }
    }
    for (uint32_t i = 0; i < m->list_len && m->list != NULL; i++) {
        free(m->list[i]);
    }
    free(m->list);

    /* Raft entries and snapshots can carry the cluster's CA signing key. */
    if (m->bin != NULL) {
        OPENSSL_cleanse(m->bin, m->bin_len);
    }
    free(m->bin);
    memset(m, 0, sizeof(*m));
}

int net_msg_error(net_msg *m, uint64_t id, int32_t code, const char *text)
{
    const char *body = text != NULL ? text : "";
    size_t len = strnlen(body, NET_MAX_TEXT + 1);

    memset(m, 0, sizeof(*m));
    if (len > NET_MAX_TEXT) {
        len = NET_MAX_TEXT;
    }
    m->text = malloc(len + 1);
    if (m->text == NULL) {
        return NET_ENOMEM;
    }
    memcpy(m->text, body, len);
    m->text[len] = '\0';
    m->type = NET_MSG_ERROR;
    m->id = id;
    m->code = code;
    return 0;
}

/* Decides which fields go on the wire: strings and bin when they are set,
 * numbers and the list when the type requires them or when they are not
 * zero. */
static uint32_t present_fields(const net_msg *m)
{
    uint32_t required = net__required_fields(m->type);
    uint32_t present = FIELD_BIT(NET_F_TYPE) | FIELD_BIT(NET_F_ID);

    for (int i = 0; i < NET_F_COUNT; i++) {
        if (net__fields[i].kind == NET_FIELD_STR && *str_member(m, &net__fields[i])) {
            present |= FIELD_BIT(i);
        }
    }
    if (m->code != 0 || (required & FIELD_BIT(NET_F_CODE))) {
        present |= FIELD_BIT(NET_F_CODE);
    }
    if (m->period_ms != 0 || (required & FIELD_BIT(NET_F_PERIOD))) {
        present |= FIELD_BIT(NET_F_PERIOD);
    }
    if (m->list_len != 0 || (required & FIELD_BIT(NET_F_LIST))) {
        present |= FIELD_BIT(NET_F_LIST);
    }
    if (m->raft_id != 0 || (required & FIELD_BIT(NET_F_RAFT_ID))) {
        present |= FIELD_BIT(NET_F_RAFT_ID);
    }
    if (m->index != 0) {
        present |= FIELD_BIT(NET_F_INDEX);
    }
    if (m->bin != NULL || m->bin_len != 0) {
        present |= FIELD_BIT(NET_F_BIN);
    }
    return present;
}

static int check_outgoing_bin(const net_msg *m, char *errmsg)
{
    if (m->bin_len > NET_MAX_BIN) {
        return net__fail(errmsg, NET_EINVALID,
                         "field \"bin\" is %zu bytes, over its limit of %u", m->bin_len,
                         (unsigned)NET_MAX_BIN);
    }
    if (m->bin_len > 0 && m->bin == NULL) {
        return net__fail(errmsg, NET_EINVALID, "bin_len is %zu but bin is NULL",
                         m->bin_len);
    }
    return 0;
}

/* Rejects a message that its peer would reject, so the error shows up at
 * the sender, where the bug is. */
static int check_outgoing(const net_msg *m, uint32_t present, char *errmsg)
{
    uint32_t required = net__required_fields(m->type);

    if (required == 0) {
        return net__fail(errmsg, NET_EINVALID, "message type %u is not between 1 and %d",
                         m->type, NET_MSG_TYPE_MAX);
    }
    for (int i = 0; i < NET_F_COUNT; i++) {
        const net_field *f = &net__fields[i];

        if ((required & FIELD_BIT(i)) && !(present & FIELD_BIT(i))) {
            return net__fail(errmsg, NET_EINVALID,
                             "message type %u lacks its required field \"%s\"", m->type,
                             f->key);
        }
        if (f->kind == NET_FIELD_STR && (present & FIELD_BIT(i)) &&
            strlen(*str_member(m, f)) > f->max) {
            return net__fail(errmsg, NET_EINVALID,
                             "field \"%s\" is longer than its limit of %llu bytes",
                             f->key, (unsigned long long)f->max);
        }
    }
    if (m->list_len > NET_MAX_LIST) {
        return net__fail(errmsg, NET_EINVALID, "list has %u items, over the limit of %d",
                         m->list_len, NET_MAX_LIST);
    }
    if (m->list_len > 0 && m->list == NULL) {
        return net__fail(errmsg, NET_EINVALID, "list_len is %u but list is NULL",
                         m->list_len);
    }
    for (uint32_t i = 0; i < m->list_len; i++) {
        if (m->list[i] == NULL || strlen(m->list[i]) > NET_MAX_SHORT) {
            return net__fail(errmsg, NET_EINVALID,
                             "list item %u is missing or longer than %d bytes", i,
                             NET_MAX_SHORT);
        }
    }
    return check_outgoing_bin(m, errmsg);
}

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);

    if (msgpack_pack_str(pk, len) != 0) {
        return -1;
    }
    return msgpack_pack_str_body(pk, s, len);
}

static int pack_field(msgpack_packer *pk, const net_msg *m, int index)
{
    const net_field *f = &net__fields[index];

    if (pack_str(pk, f->key) != 0) {
        return -1;
    }
    switch (index) {
    case NET_F_TYPE:
        return msgpack_pack_uint32(pk, m->type);
    case NET_F_ID:
        return msgpack_pack_uint64(pk, m->id);
    case NET_F_CODE:
        return msgpack_pack_int32(pk, m->code);
    case NET_F_PERIOD:
        return msgpack_pack_uint32(pk, m->period_ms);
    case NET_F_RAFT_ID:
        return msgpack_pack_uint64(pk, m->raft_id);
    case NET_F_INDEX:
        return msgpack_pack_uint64(pk, m->index);
    case NET_F_BIN:
        if (msgpack_pack_bin(pk, m->bin_len) != 0) {
            return -1;
        }
        return m->bin_len > 0 ? msgpack_pack_bin_body(pk, m->bin, m->bin_len) : 0;
    case NET_F_LIST:
        if (msgpack_pack_array(pk, m->list_len) != 0) {
            return -1;
        }
        for (uint32_t i = 0; i < m->list_len; i++) {
            if (pack_str(pk, m->list[i]) != 0) {
                return -1;
            }
        }
        return 0;
    default:
        return pack_str(pk, *str_member(m, f));
    }
}

/* NOTE: a message over msgpack-c's initial 8 KiB buffer makes
 * msgpack_sbuffer_write call realloc, which can leave an earlier copy of a
 * token or of key material in a bin value in freed memory. */
void net__sbuffer_wipe(struct msgpack_sbuffer *sbuf)
{
    if (sbuf->data != NULL) {
        OPENSSL_cleanse(sbuf->data, sbuf->size);
    }
    msgpack_sbuffer_destroy(sbuf);
}

int net_msg_encode(const net_msg *m, unsigned char **out, size_t *len, char *errmsg)
{
    static const char no_length[4] = {0};
    uint32_t present = present_fields(m);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    size_t body_len;
    int rv;

    *out = NULL;
    *len = 0;
    rv = check_outgoing(m, present, errmsg);
    if (rv != 0) {
        return rv;
    }

    /* The length prefix is patched in once the body size is known. */
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    rv = msgpack_sbuffer_write(&sbuf, no_length, sizeof(no_length));
    if (rv == 0) {
        rv = msgpack_pack_map(&pk, (size_t)__builtin_popcount(present));
    }
    for (int i = 0; i < NET_F_COUNT && rv == 0; i++) {
        if (present & FIELD_BIT(i)) {
            rv = pack_field(&pk, m, i);
        }
    }
    if (rv != 0) {
        net__sbuffer_wipe(&sbuf);
        return net__fail(errmsg, NET_ENOMEM,
                         "out of memory encoding a message of type %u", m->type);
    }

    body_len = sbuf.size - sizeof(no_length);
    if (body_len > NET_MAX_FRAME) {
        net__sbuffer_wipe(&sbuf);
        return net__fail(errmsg, NET_ETOOBIG,
                         "message of type %u encodes to %zu bytes, over the frame limit "
                         "of %u",
                         m->type, body_len, NET_MAX_FRAME);
    }
    sbuf.data[0] = (char)(body_len >> 24);
    sbuf.data[1] = (char)(body_len >> 16);
    sbuf.data[2] = (char)(body_len >> 8);
    sbuf.data[3] = (char)body_len;
    *len = sbuf.size;
    *out = (unsigned char *)msgpack_sbuffer_release(&sbuf);
    return 0;
}
