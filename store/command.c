/* Commands, the payload of normal log entries: a msgpack map with the
 * command type and the fields that type uses. */
#include <string.h>

#include <store/internal.h>

#define RECORD_FIELD(key, member, layout)                                                \
    {                                                                                    \
        key, STORE_FIELD_RECORD, offsetof(store_command, member),                        \
            sizeof(((store_command *)0)->member), layout                                 \
    }

static const struct store_field cluster_init_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("cluster", cluster, &store_layout_cluster),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
};

static const struct store_field issue_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
    STORE_FIELD(store_command, "token", token, STORE_FIELD_STR),
};

static const struct store_field set_expiry_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    STORE_FIELD(store_command, "cert_expiry", cert_expiry, STORE_FIELD_I64),
};

/* Every field of every type, for freeing a command of any type. */
static const struct store_field all_fields[] = {
    STORE_FIELD(store_command, "type", type, STORE_FIELD_U32),
    RECORD_FIELD("cluster", cluster, &store_layout_cluster),
    RECORD_FIELD("node", node, &store_layout_node),
    RECORD_FIELD("cert", cert, &store_layout_cert),
    STORE_FIELD(store_command, "token", token, STORE_FIELD_STR),
    STORE_FIELD(store_command, "cert_expiry", cert_expiry, STORE_FIELD_I64),
};

static const struct store_layout cluster_init_layout =
    STORE_LAYOUT(store_command, cluster_init_fields);
static const struct store_layout issue_layout = STORE_LAYOUT(store_command, issue_fields);
static const struct store_layout set_expiry_layout =
    STORE_LAYOUT(store_command, set_expiry_fields);
static const struct store_layout all_layout = STORE_LAYOUT(store_command, all_fields);

static const struct store_layout *layout_for(uint64_t type)
{
    switch (type) {
    case STORE_CMD_CLUSTER_INIT:
        return &cluster_init_layout;
    case STORE_CMD_ISSUE:
        return &issue_layout;
    case STORE_CMD_SET_EXPIRY:
        return &set_expiry_layout;
    }
    return NULL;
}

void store_command_free(store_command *cmd)
{
    if (cmd != NULL) {
        store_record_free(&all_layout, cmd);
    }
}

int store_command_encode(const store_command *cmd, unsigned char **out, size_t *len,
                         char *errmsg)
{
    const struct store_layout *l = layout_for(cmd->type);
    struct store_buf buf;
    int rv;

    *out = NULL;
    *len = 0;
    if (l == NULL) {
        return store_error(errmsg, STORE_EINVALID, "invalid command: unknown type %u",
                           (unsigned)cmd->type);
    }
    rv = store_record_encode(l, cmd, "command", &buf, errmsg);
    if (rv != 0) {
        return rv;
    }
    *out = buf.data;
    *len = buf.len;
    return 0;
}

/* Finds the type, which selects the fields to decode. */
static int find_type(const msgpack_object *o, uint64_t *type, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return store_error(errmsg, STORE_ECORRUPT, "corrupt command: not a msgpack map");
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *key = &o->via.map.ptr[i].key;
        const msgpack_object *val = &o->via.map.ptr[i].val;

        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == 4 &&
            memcmp(key->via.str.ptr, "type", 4) == 0) {
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                break;
            }
            *type = val->via.u64;
            return 0;
        }
    }
    return store_error(errmsg, STORE_ECORRUPT,
                       "corrupt command: field \"type\" is missing or not an unsigned "
                       "integer");
}

int store_command_decode(const unsigned char *data, size_t len, store_command *out,
                         char *errmsg)
{
    const struct store_layout *l;
    msgpack_unpacked u;
    uint64_t type = 0;
    int rv;

    memset(out, 0, sizeof(*out));
    rv = store_msgpack_parse(data, len, &u);
    if (rv == STORE_ENOMEM) {
        return store_error(errmsg, rv, "out of memory decoding a command");
    }
    if (rv != 0) {
        return store_error(errmsg, rv, "corrupt command: not one complete msgpack value");
    }

    rv = find_type(&u.data, &type, errmsg);
    if (rv == 0) {
        l = layout_for(type);
        if (l == NULL) {
            rv = store_error(errmsg, STORE_ECORRUPT, "corrupt command: unknown type %llu",
                             (unsigned long long)type);
        } else {
            rv = store_record_unpack(&u.data, l, out, "command", errmsg);
        }
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}
